#!/bin/bash
# bench/disk.sh [RUNS]: virtio-blk throughput and IOPS in the guest, vmm against QEMU, same run.
#
# Both boot the same kernel and busybox initramfs with one virtio-blk-pci disk on the same raw
# image (on tmpfs, so that the host's disk does not decide the figures: what is measured is the
# path guest -> VMM -> host kernel and back). In the guest, tests/guest/diskbench.c reads and writes
# the disk with O_DIRECT, one request at a time: sequential 1 MiB (MB/s) and random 4 KiB (IOPS).
# QEMU runs with `-drive ...,format=raw,aio=io_uring` and `-device virtio-blk-pci`, the closest to
# what vmm does. RUNS runs (default 3) of one vmm boot and one QEMU boot; medians and vmm/QEMU
# ratios (above 1 is vmm faster). Without a usable /dev/kvm each run is inside a nested guest of
# its own (bench/lib.sh), as the guest tests are: the absolute figures are then those of a nested
# guest, and only the ratios mean much.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
guest=$PWD/build/guest

if [[ -z ${VMM_TEST_INSIDE:-} ]]; then
	runs=${1:-3} label_width=10
	bench_runs "$runs" 600 "$0"
	echo "disk benchmark: $runs runs each, interleaved; medians (MB/s for seq, IOPS for rand)"
	header
	for m in seqwrite seqread randwrite randread; do
		row $m $m
	done
	exit 0
fi

mib=64 secs=5
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
img=$dir/disk.img
# Written, not sparse: tmpfs would otherwise charge its page allocation to whichever writes first.
head -c $((mib * 2 << 20)) /dev/zero >"$img"
kernel=$guest/vmlinuz initrd=$guest/initrd.img
cmdline="console=ttyS0 quiet vmmtest=bench=vda:$mib:$secs,poweroff"
vmm=(build/vmm --kernel "$kernel" --initrd "$initrd" --memory 512M --cpus 1 --cmdline "$cmdline"
	--disk "path=$img" --timeout 300
	${BENCH_VMM_ARGS:-})
qemu=(qemu-system-x86_64 -M q35 -enable-kvm -cpu host -m 512M -smp 1 -nodefaults -no-user-config
	-display none -no-reboot -serial stdio -kernel "$kernel" -initrd "$initrd" -append "$cmdline"
	-drive "file=$img,if=none,id=d0,format=raw,aio=io_uring" -device virtio-blk-pci,drive=d0)

# measure NAME: the guest's "VMMBENCH metric=value" lines as "RESULT NAME metric value", for the
# command in the array NAME (vmm or qemu).
measure() {
	local -n cmd=$1
	timeout 300 "${cmd[@]}" </dev/null 2>&1 | sed -n "s/^VMMBENCH \([a-z]*\)=\([0-9.]*\).*/RESULT $1 \1 \2/p"
}

out=$(pair measure)
echo "$out"
echo "RUN" $(sed 's/^RESULT //' <<<"$out" | tr '\n' ' ')
