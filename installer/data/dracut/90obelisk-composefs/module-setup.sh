#!/bin/bash
# shellcheck disable=SC2154  # moddir, initdir, systemdsystemunitdir and SYSTEMCTL come from dracut
# obelisk: composefs root switch for dracut's systemd initrd (DESIGN.md 3.4).
# Boot-tested by obelisk's suite on Debian trixie's dracut (tests/boot/test_images_boot.py).

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
	inst_multiple losetup mount umount mkdir cat
	inst_script "$moddir/obelisk-composefs.sh" /usr/lib/obelisk/obelisk-composefs.sh
	inst_simple "$moddir/obelisk-composefs.service" \
		"${systemdsystemunitdir}/obelisk-composefs.service"
	$SYSTEMCTL -q --root "$initdir" add-wants initrd-root-fs.target obelisk-composefs.service
}
