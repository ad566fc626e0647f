"""The bootloader step: kernel discovery, kernel arguments, BLS entries, systemd-boot on the ESP."""
