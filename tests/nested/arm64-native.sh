#!/bin/bash
# tests/nested/arm64-native.sh [--timeout SEC] [MAKE-ARG]...   (default: check)
#
# `make check` (or make MAKE-ARG...) natively on an arm64 machine, which on x86 is the arm64 nested
# guest (run-arm64.sh) with the root tree that has gcc, make and the -dev packages
# (NESTED_ARM64_BUILD=1, arm64-root.sh --build). A copy of this tree without build/ is made in the
# guest's /tmp, and make runs there as on arm64 hardware: the unit tests built and run for arm64,
# vmm built, and run-all.sh's arm64 group on that guest's own KVM (no further nesting). The guest
# has no network, so the arm64 kernels come from this machine's cache (tests/guest/kernels.sh),
# copied into build/arm64-native/cache, which it sees. make's output: build/arm64-native/make.log.
# Exit status: make's, or run.sh's (124: --timeout, default 5400 s; 125; 2).
set -euo pipefail
cd "$(dirname "$0")/../.."
timeout=5400
if [[ ${1:-} == --timeout ]]; then
	timeout=$2
	shift 2
fi
[[ $# -gt 0 ]] || set -- check
out=$PWD/build/arm64-native
for f in cloud-arm64 arm64; do
	k=$(tests/guest/kernels.sh "$f")
	if ! cmp -s "$k/version" "$out/cache/kernels/$f/version"; then
		rm -rf "$out/cache/kernels/$f"
		mkdir -p "$out/cache/kernels"
		cp -a "$k" "$out/cache/kernels/$f"
	fi
done
# shellcheck disable=SC2016 # expanded in the guest
script='rm -rf /tmp/vmm && mkdir /tmp/vmm && tar --exclude=./build -cf - . | tar -C /tmp/vmm -xf - &&
cd /tmp/vmm && echo "arm64-native: $(uname -m), $(gcc -dumpmachine), make $*" &&
{ VMM_TEST_CACHE=$OUT/cache make -j"$(nproc)" "$@" >"$OUT/make.log" 2>&1; rc=$?
tail -n 5 "$OUT/make.log"; exit $rc; }'
export OUT=$out
NESTED_ARM64_BUILD=1 NESTED_MEM=${NESTED_MEM:-4096} NESTED_ENV=OUT \
	exec tests/nested/run-arm64.sh --timeout "$timeout" -- bash -c "$script" arm64-native "$@"
