#!/bin/sh
# A plain Debian trixie root filesystem tarball with a kernel and dracut, and nothing of obelisk:
# the base image that iso/images/Containerfile makes bootable (docs/images.md).
#
#   base.sh OUTPUT.tar
#   podman import OUTPUT.tar localhost/trixie-dracut:base
#
# python3 and python3-zstandard are there for the build step that runs obelisk inside the image.
set -eu
out=$1
: "${SOURCE_DATE_EPOCH:?set SOURCE_DATE_EPOCH for a reproducible image}"
: "${DEBIAN_MIRROR:=http://deb.debian.org/debian}"
export SOURCE_DATE_EPOCH

exec mmdebstrap \
	--variant=minbase \
	--mode=root \
	--format=tar \
	--include=linux-image-cloud-amd64,systemd,systemd-sysv,systemd-boot-efi,dracut,zstd,util-linux,udev,kmod,xfsprogs,btrfs-progs,e2fsprogs,sudo,python3,python3-zstandard \
	--customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
	trixie "$out" "$DEBIAN_MIRROR"
