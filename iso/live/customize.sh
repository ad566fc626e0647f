#!/bin/sh
# mmdebstrap customize hook for the live root: consoles, units, composefs tools.
#   customize.sh ROOT
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$1

cp -a "$here/files/." "$root/"
chmod 0755 "$root/usr/local/bin/obelisk"

# composefs as scripts/setup built it (Debian trixie has no binary package of it).
for tool in bin/mkcomposefs bin/composefs-info sbin/mount.composefs; do
	install -D -m 0755 "$COMPOSEFS_PREFIX/$tool" "$root/usr/local/$tool"
done
mkdir -p "$root/usr/local/lib/x86_64-linux-gnu"
cp -a "$COMPOSEFS_PREFIX"/lib/x86_64-linux-gnu/libcomposefs.so.1* "$root/usr/local/lib/x86_64-linux-gnu/"
chroot "$root" ldconfig
if chroot "$root" ldd /usr/local/bin/mkcomposefs | grep 'not found'; then
	echo "customize.sh: mkcomposefs lacks libraries in the live root" >&2
	exit 1
fi

chroot "$root" systemctl enable obelisk-live.service systemd-networkd.service systemd-resolved.service
# systemd-firstboot would wait for answers on the console of every live boot.
ln -sf /dev/null "$root/etc/systemd/system/systemd-firstboot.service"
echo obelisk-live >"$root/etc/hostname"
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
rm -rf "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin "$root/var/log/"*.log
