#!/bin/bash
# shellcheck disable=SC2154  # moddir, initdir, systemdsystemunitdir and SYSTEMCTL come from dracut
# obelisk: composefs root switch for dracut's systemd initrd (DESIGN.md 3.4).
# Not boot-tested by obelisk's suite (no Fedora image here); the initramfs-tools flavour is.

check() {
	return 0
}

depends() {
	echo systemd
	return 0
}

installkernel() {
	instmods erofs overlay loop
}

install() {
	inst_multiple losetup mount mkdir cat
	inst_script "$moddir/obelisk-composefs.sh" /usr/lib/obelisk/obelisk-composefs.sh
	inst_simple "$moddir/obelisk-composefs.service" \
		"${systemdsystemunitdir}/obelisk-composefs.service"
	$SYSTEMCTL -q --root "$initdir" add-wants initrd-root-fs.target obelisk-composefs.service
}
