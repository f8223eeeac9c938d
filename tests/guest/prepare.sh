#!/bin/bash
# tests/guest/prepare.sh [FLAVOUR]...: the default guest, for the guest tests, `make run` and bench/.
# Fetches Debian's kernels (kernels.sh; the cloud one always, since configs/ and `make run` boot it),
# builds build/guest/initrd.img (mkinitrd.sh) and links build/guest/vmlinuz-FLAVOUR and
# build/guest/vmlinuz (the cloud kernel) to the cache, and makes build/guest/disk.img.
# --arm64: the arm64 guests instead (run-all.sh's arm64 group): Debian's cloud arm64 kernel
# (build/guest/arm64/vmlinuz) and its generic one, which has 9P (vmlinuz-generic, the nested
# harness's own), and build/guest/arm64/initrd.img, the same initramfs built for arm64 with both
# kernels' modules (its busybox from the arm64 root tree, tests/nested/arm64-root.sh, and its
# programs from the cross compiler; on an arm64 machine, this machine's own busybox and gcc).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [[ ${1:-} == --arm64 ]]; then
	kdir=$(tests/guest/kernels.sh cloud-arm64)
	gdir=$(tests/guest/kernels.sh arm64)
	if [[ $(uname -m) == aarch64 ]]; then
		cc=gcc busybox=/bin/busybox
	else
		cc=aarch64-linux-gnu-gcc busybox=$(tests/nested/arm64-root.sh)/bin/busybox
	fi
	mkdir -p build/guest/arm64
	CC=$cc BUSYBOX=$busybox tests/guest/mkinitrd.sh build/guest/arm64/initrd.img "$kdir" "$gdir"
	# Copies: the arm64 nested guest sees this tree, not the cache
	cp "$kdir/vmlinuz" build/guest/arm64/vmlinuz
	cp "$gdir/vmlinuz" build/guest/arm64/vmlinuz-generic
	exit 0
fi
cache=${VMM_TEST_CACHE:-/var/cache/vmm-test}/kernels
flavours=$(printf '%s\n' cloud "$@" | sort -u)
# shellcheck disable=SC2086 # one word per flavour
tests/guest/kernels.sh $flavours >/dev/null
# shellcheck disable=SC2046 # one word per flavour
tests/guest/mkinitrd.sh build/guest/initrd.img $(printf "$cache/%s " $flavours)
for f in $flavours; do ln -sfn "$cache/$f/vmlinuz" "build/guest/vmlinuz-$f"; done
ln -sfn "$cache/cloud/vmlinuz" build/guest/vmlinuz
# configs/devices.conf's disk: blank, made once (a guest may have written to it since).
[[ -f build/guest/disk.img ]] || truncate -s 64M build/guest/disk.img
