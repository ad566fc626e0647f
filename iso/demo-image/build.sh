#!/bin/sh
# Build the obelisk demo root filesystem as a tarball: Debian trixie minbase with a kernel,
# systemd and obelisk's composefs initramfs support.
#
#   build.sh OUTPUT.tar
#
# Environment: SOURCE_DATE_EPOCH (fixed mtimes, so the composefs image id is reproducible),
# OBELISK (the obelisk command, default `obelisk`), DEBIAN_MIRROR.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=$1
: "${SOURCE_DATE_EPOCH:?set SOURCE_DATE_EPOCH for a reproducible image}"
: "${OBELISK:=obelisk}"
: "${DEBIAN_MIRROR:=http://deb.debian.org/debian}"
export SOURCE_DATE_EPOCH OBELISK

include=$(grep -v '^#' "$here/packages" | tr -s '\n' ',' | sed 's/^,//; s/,$//')

exec mmdebstrap \
	--variant=minbase \
	--mode=root \
	--format=tar \
	--skip=cleanup/apt/lists \
	--include="$include" \
	--customize-hook="\"$here/customize.sh\" \"\$1\"" \
	trixie "$out" "$DEBIAN_MIRROR"
