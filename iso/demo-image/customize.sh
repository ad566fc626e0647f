#!/bin/sh
# mmdebstrap customize hook: make the root bootable from composefs and observable on ttyS0.
#   customize.sh ROOT
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$1

# obelisk's initramfs support (hook, local-bottom script, FSTYPE, /sysroot), then a fresh
# initramfs that contains it.
# shellcheck disable=SC2086  # OBELISK may be `python -m installer`
$OBELISK image add-boot-support --fstype ext4 "$root"
chroot "$root" update-initramfs -u -k all

cp -a "$here/files/." "$root/"
chmod 0755 "$root/usr/libexec/obelisk-demo-check"
chroot "$root" systemctl enable obelisk-demo-check.service
# systemd-firstboot would wait for answers on the serial console of a first boot.
ln -sf /dev/null "$root/etc/systemd/system/systemd-firstboot.service"
echo obelisk-demo >"$root/etc/hostname"
# Every install gets its own machine id on first boot.
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
# Keep the image small and reproducible. mmdebstrap's own list cleanup (skipped in build.sh) runs
# apt, which leaves lists/partial root's or _apt's depending on whether its download sandbox can
# reach the temp dir: empty the lists here and give both partial dirs the owner apt gives them.
find "$root/var/lib/apt/lists" -mindepth 1 -maxdepth 1 ! -name partial -exec rm -rf {} +
chroot "$root" chown _apt:root /var/lib/apt/lists/partial /var/cache/apt/archives/partial
rm -rf "$root/var/cache/apt/"*.bin "$root/var/log/"*.log
