#!/bin/bash
# bench/boot.sh [RUNS]: boot time of vmm against QEMU's microvm, side by side in one run.
#
# Boots the same kernel (Debian's cloud kernel) and busybox initramfs with build/vmm and with
# `qemu-system-x86_64 -M microvm -enable-kvm`, interleaved, RUNS times each (default 7), and prints
# the medians of time-to-init (until /init prints VMMTEST-READY on the serial console) and
# time-to-exit (until the process has exited after the guest powered off), and vmm/QEMU ratios.
# Without a usable /dev/kvm each run is inside a nested guest of its own (bench/lib.sh), as the
# guest tests are: the absolute figures are then those of a nested guest, and only the ratios
# mean much.
#
# BENCH_ARCH=arm64 bench/boot.sh [RUNS]: the same on arm64 (in the arm64 nested guest where there
# is no arm64 /dev/kvm): vmm for arm64 (build/arm64/vmm from make cross-arm64, or build/vmm on an
# arm64 machine) against `qemu-system-aarch64 -M virt -enable-kvm`, booting Debian's cloud arm64
# kernel and the initramfs built for arm64 (tests/guest/prepare.sh --arm64) with the same command
# line but for the console: vmm's UART is a 16550 (ttyS0), QEMU virt's a PL011 (ttyAMA0).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
guest=$PWD/build/guest
arches="x86_64 arm64"

if [[ -z ${VMM_TEST_INSIDE:-} ]]; then
	runs=${1:-7} label_width=14
	bench_runs "$runs" 600 "$0"
	echo "boot benchmark${BENCH_ARCH:+ ($BENCH_ARCH)}: $runs runs each, interleaved;" \
		"medians in ms"
	header
	row time-to-init init
	row time-to-exit exit
	exit 0
fi

if [[ ${BENCH_ARCH:-x86_64} == arm64 ]]; then
	guest+=/arm64 bin=build/vmm
	[[ -x build/arm64/vmm ]] && bin=build/arm64/vmm
	# vmm's UART is a 16550, QEMU virt's a PL011. cryptomgr.notests: as in run-all.sh's arm64
	# group (the crypto self-tests are slow there).
	console=ttyS0 qemu_console=ttyAMA0 cmdline="quiet cryptomgr.notests vmmtest=poweroff"
	qemu=(qemu-system-aarch64 -M virt)
else
	bin=build/vmm console=ttyS0 qemu_console=ttyS0 cmdline="quiet vmmtest=poweroff"
	qemu=(qemu-system-x86_64 -M microvm)
fi
kernel=$guest/vmlinuz initrd=$guest/initrd.img
vmm=("$bin" --kernel "$kernel" --initrd "$initrd" --memory 512M --cpus 1
	--cmdline "console=$console $cmdline" ${BENCH_VMM_ARGS:-})
qemu+=(-enable-kvm -cpu host -m 512M -smp 1 -nodefaults -no-user-config -display none -no-reboot
	-serial stdio -kernel "$kernel" -initrd "$initrd" -append "console=$qemu_console $cmdline")

# measure CMD...: prints "INIT_MS EXIT_MS" for one boot, or fails if the guest never got to init.
measure() {
	local start=$EPOCHREALTIME init='' line
	while IFS= read -r line; do
		[[ -z $init && $line == *VMMTEST-READY* ]] && init=$EPOCHREALTIME
	done < <(timeout 300 "$@" </dev/null 2>&1)
	local end=$EPOCHREALTIME
	[[ -n $init ]] || { echo "bench: '$1' never reached init" >&2; return 1; }
	awk -v s="$start" -v i="$init" -v e="$end" 'BEGIN { printf "%.1f %.1f\n", (i - s) * 1000, (e - s) * 1000 }'
}
# boot NAME: boots the command in the array NAME (vmm or qemu) and prints its figures.
boot() {
	local -n cmd=$1
	local t

	t=($(measure "${cmd[@]}"))
	printf 'RESULT %s init %s\nRESULT %s exit %s\n' "$1" "${t[0]}" "$1" "${t[1]}"
}

measure "${vmm[@]}" >/dev/null # warm the page cache for both
measure "${qemu[@]}" >/dev/null
out=$(pair boot)
echo "$out"
echo "RUN init/exit ms:" $(sed 's/^RESULT //' <<<"$out" | tr '\n' ' ')
