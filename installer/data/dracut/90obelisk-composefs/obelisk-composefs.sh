#!/bin/sh
# shellcheck disable=SC2013  # /proc/cmdline is one line of words
# obelisk: switch /sysroot to a composefs deployment in a systemd initrd (DESIGN.md 3.4).
# The new root is assembled beside /sysroot, then the physical root moves under it and the
# assembled tree moves onto /sysroot, so initrd-switch-root finds it where it expects a root.
set -eu

id=""
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	composefs=*) id="${arg#composefs=}" ;;
	esac
done
[ -n "$id" ] || exit 0

fail() {
	echo "obelisk-composefs: $*" >&2
	exit 1
}

case "$id" in
*[!0-9a-f]*) fail "composefs=$id is not a lowercase hex digest" ;;
esac
[ "${#id}" -eq 64 ] || fail "composefs=$id is not 64 hex digits"

image="/sysroot/composefs/images/$id"
deploy="/sysroot/state/deploy/$id"
lower=/run/obelisk/erofs
newroot=/run/obelisk/newroot
[ -e "$image" ] || fail "no image $image on the root filesystem"
[ -d "$deploy/etc" ] || fail "no deployment state $deploy/etc"

mkdir -p "$lower" "$newroot"
# systemd makes / shared; mounts under a shared parent cannot be moved.
mount --make-rprivate /

# From the file itself where the kernel can (>= 6.12; X-mount.noloop keeps util-linux >= 2.41
# from adding a loop anyway): a loop device under the root could never be detached at shutdown.
if ! mount -t erofs -o ro,X-mount.noloop "$image" "$lower" 2>/dev/null; then
	dev=$(losetup -r -f --show "$image")
	mount -t erofs -o ro "$dev" "$lower"
fi

opts="ro,lowerdir=$lower::/sysroot/composefs/objects,metacopy=on,redirect_dir=on"
meta=""
[ -f /sysroot/composefs/meta.json ] && meta=$(cat /sysroot/composefs/meta.json)
case "$meta" in
*'"verity": true'* | *'"verity":true'*) opts="$opts,verity=require" ;;
esac
[ -e /sysroot/composefs/verity ] && opts="$opts,verity=require"

mount -t overlay -o "$opts" overlay "$newroot"
# The overlay keeps its own reference to the EROFS: its mount point is not needed any more.
umount "$lower"
mount --bind "$deploy/etc" "$newroot/etc"
mount --bind "$deploy/var" "$newroot/var"
[ -d "$newroot/sysroot" ] || fail "the image has no /sysroot directory"
mount --move /sysroot "$newroot/sysroot"
mount --move "$newroot" /sysroot
