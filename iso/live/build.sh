#!/bin/sh
# Build the live root of the obelisk installer ISO: Debian trixie with live-boot, the tools
# obelisk's engine runs, and the consoles that start it.
#
#   build.sh OUTDIR
#
# Writes OUTDIR/base.squashfs (the root), OUTDIR/vmlinuz and OUTDIR/initrd.img (live-boot's
# initramfs). obelisk itself (and its Python dependencies) is not in it: it comes as a second
# squashfs layer on the medium, so a code change does not rebuild this root.
#
# Environment: SOURCE_DATE_EPOCH (fixed mtimes), COMPOSEFS_PREFIX (where scripts/setup installed
# composefs: mkcomposefs and its library are copied from there), DEBIAN_MIRROR.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=$1
: "${SOURCE_DATE_EPOCH:?set SOURCE_DATE_EPOCH for a reproducible root}"
: "${COMPOSEFS_PREFIX:=/usr/local}"
: "${DEBIAN_MIRROR:=http://deb.debian.org/debian}"
export SOURCE_DATE_EPOCH COMPOSEFS_PREFIX

include=$(grep -v '^#' "$here/packages" | tr -s '\n' ',' | sed 's/^,//; s/,$//')
root="$out/root"
rm -rf "$root"
mmdebstrap \
	--variant=minbase \
	--mode=root \
	--format=directory \
	--include="$include" \
	--customize-hook="\"$here/customize.sh\" \"\$1\"" \
	trixie "$root" "$DEBIAN_MIRROR"

cp "$root"/boot/vmlinuz-* "$out/vmlinuz"
cp "$root"/boot/initrd.img-* "$out/initrd.img"
mksquashfs "$root" "$out/base.squashfs" -noappend -comp zstd -quiet -e boot
rm -rf "$root"
