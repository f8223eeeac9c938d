#!/bin/bash
# bench/boot.sh [RUNS]: boot time of vmm against QEMU's microvm, side by side in one run.
#
# Boots the same kernel (Debian's cloud kernel) and busybox initramfs with build/vmm and with
# `qemu-system-x86_64 -M microvm -enable-kvm`, interleaved, RUNS times each (default 7), and prints
# the medians of time-to-init (until /init prints VMMTEST-READY on the serial console) and
# time-to-exit (until the process has exited after the guest powered off), and vmm/QEMU ratios.
# Without a usable /dev/kvm it runs inside the nested harness, like the guest tests: the absolute
# figures are then those of a nested guest, and only the ratios mean much.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-7}
guest=$PWD/build/guest

if [[ -z ${VMM_TEST_INSIDE:-} ]]; then
	make -s build/vmm
	tests/guest/prepare.sh
	exec tests/nested/run.sh --timeout 1800 -- env VMM_TEST_INSIDE=1 "$0" "$runs"
fi

kernel=$guest/vmlinuz initrd=$guest/initrd.img
cmdline="console=ttyS0 quiet vmmtest=poweroff"
vmm=(build/vmm --kernel "$kernel" --initrd "$initrd" --memory 512M --cpus 1 --cmdline "$cmdline")
qemu=(qemu-system-x86_64 -M microvm -enable-kvm -cpu host -m 512M -smp 1 -nodefaults
	-no-user-config -display none -no-reboot -serial stdio
	-kernel "$kernel" -initrd "$initrd" -append "$cmdline")

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
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

results=$(mktemp)
trap 'rm -f "$results"' EXIT
measure "${vmm[@]}" >/dev/null # warm the page cache for both
measure "${qemu[@]}" >/dev/null
for ((i = 1; i <= runs; i++)); do
	v=$(measure "${vmm[@]}")
	q=$(measure "${qemu[@]}")
	printf 'vmm %s\nqemu %s\n' "$v" "$q" >>"$results"
	echo "run $i/$runs: init/exit ms: vmm $v, qemu $q"
done
vi=$(awk '$1 == "vmm" { print $2 }' "$results" | median)
ve=$(awk '$1 == "vmm" { print $3 }' "$results" | median)
qi=$(awk '$1 == "qemu" { print $2 }' "$results" | median)
qe=$(awk '$1 == "qemu" { print $3 }' "$results" | median)
echo "boot benchmark: $runs runs each, interleaved; medians in ms"
printf '%-14s %10s %10s %8s\n' "" vmm qemu vmm/qemu
awk -v a="$vi" -v b="$qi" 'BEGIN { printf "%-14s %10.1f %10.1f %8.2f\n", "time-to-init", a, b, a / b }'
awk -v a="$ve" -v b="$qe" 'BEGIN { printf "%-14s %10.1f %10.1f %8.2f\n", "time-to-exit", a, b, a / b }'
