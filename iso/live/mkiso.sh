#!/bin/sh
# Assemble the hybrid obelisk live ISO (BIOS + UEFI, dd-able) from a staged medium tree.
#
#   mkiso.sh TREE OUTPUT.iso
#
# TREE holds live/ (vmlinuz, initrd.img, the squashfs layers, filesystem.module) and obelisk/
# (the embedded images). grub-mkrescue adds GRUB for i386-pc (El Torito BIOS record) and
# x86_64-efi (an El Torito FAT image it writes with mtools, no vfat mount) and the isohybrid
# MBR/GPT, so the same file boots from a CD and from a USB stick.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tree=$1
out=$2
: "${SOURCE_DATE_EPOCH:?set SOURCE_DATE_EPOCH}"
mkdir -p "$tree/boot/grub"
cp "$here/grub.cfg" "$tree/boot/grub/grub.cfg"
grub-mkrescue --quiet --compress=xz -o "$out" "$tree" -- \
	-volid OBELISK_LIVE -volume_date uuid "$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y%m%d%H%M%S00)"
