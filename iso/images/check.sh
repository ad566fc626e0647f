#!/bin/sh
# Test layer only (tests/boot/test_images_boot.py): report how the system booted on ttyS0, then
# power off, so the test reads the whole shutdown without a login.
out=/dev/ttyS0
dmesg --console-level emerg 2>/dev/null || true
for target in / /etc /var /sysroot; do
	echo "OBELISK-CHECK $target $(findmnt -rn -M "$target" -o SOURCE,FSTYPE,OPTIONS | head -n1)" >"$out"
done
for user in $(getent passwd | awk -F: '$3 >= 1000 && $3 < 60000 {print $1}'); do
	home=$(getent passwd "$user" | cut -d: -f6)
	real=$(realpath "$home")
	echo "OBELISK-HOME $user $home $real $(stat -c '%U %a' "$real") groups=$(id -Gn "$user" | tr ' ' ,)" >"$out"
done
echo "OBELISK-CMDLINE $(cat /proc/cmdline)" >"$out"
echo "OBELISK-BOOTED $(hostname)" >"$out"
systemctl --no-block poweroff
