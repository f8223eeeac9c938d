#!/bin/bash
# tests/guest/prepare.sh [FLAVOUR]...: the default guest, for the guest tests, `make run` and bench/.
# Fetches Debian's kernels (kernels.sh; the cloud one always, since configs/ and `make run` boot it),
# builds build/guest/initrd.img (mkinitrd.sh) and links build/guest/vmlinuz-FLAVOUR and
# build/guest/vmlinuz (the cloud kernel) to the cache, and makes build/guest/disk.img.
set -euo pipefail
cd "$(dirname "$0")/../.."
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
