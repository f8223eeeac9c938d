#!/bin/bash
# bench/disk.sh [RUNS]: virtio-blk throughput and IOPS in the guest, vmm against QEMU, same run.
#
# Both boot the same kernel and busybox initramfs with one virtio-blk-pci disk on the same raw
# image (on tmpfs, so that the host's disk does not decide the figures: what is measured is the
# path guest -> VMM -> host kernel and back). In the guest, tests/guest/diskbench.c reads and writes
# the disk with O_DIRECT, one request at a time: sequential 1 MiB (MB/s) and random 4 KiB (IOPS).
# QEMU runs with `-drive ...,format=raw,aio=io_uring` and `-device virtio-blk-pci`, the closest to
# what vmm does. RUNS runs each (default 3), interleaved; medians and vmm/QEMU ratios (above 1 is
# vmm faster). Without a usable /dev/kvm it runs inside the nested harness, like the guest tests:
# the absolute figures are then those of a nested guest, and only the ratios mean much.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
guest=$PWD/build/guest

if [[ -z ${VMM_TEST_INSIDE:-} ]]; then
	make -s build/vmm
	tests/guest/prepare.sh
	exec tests/nested/run.sh --timeout 3600 -- env VMM_TEST_INSIDE=1 "$0" "$runs"
fi

mib=64 secs=5
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
img=$dir/disk.img
truncate -s $((mib * 2))M "$img"
kernel=$guest/vmlinuz initrd=$guest/initrd.img
cmdline="console=ttyS0 quiet vmmtest=bench=vda:$mib:$secs,poweroff"
vmm=(build/vmm --kernel "$kernel" --initrd "$initrd" --memory 512M --cpus 1 --cmdline "$cmdline"
	--disk "path=$img" --timeout 600)
qemu=(qemu-system-x86_64 -M q35 -enable-kvm -cpu host -m 512M -smp 1 -nodefaults -no-user-config
	-display none -no-reboot -serial stdio -kernel "$kernel" -initrd "$initrd" -append "$cmdline"
	-drive "file=$img,if=none,id=d0,format=raw,aio=io_uring" -device virtio-blk-pci,drive=d0)

# measure CMD...: the guest's "VMMBENCH name=value" lines as "name value".
measure() {
	timeout 600 "$@" </dev/null 2>&1 | sed -n 's/^VMMBENCH \([a-z]*\)=\([0-9.]*\).*/\1 \2/p'
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

results=$dir/results
for ((i = 1; i <= runs; i++)); do
	measure "${vmm[@]}" | sed 's/^/vmm /' >>"$results"
	measure "${qemu[@]}" | sed 's/^/qemu /' >>"$results"
	echo "run $i/$runs:" $(tail -n 8 "$results" | tr '\n' ' ')
done
echo "disk benchmark: $runs runs each, interleaved; medians (MB/s for seq, IOPS for rand)"
printf '%-10s %10s %10s %8s\n' "" vmm qemu vmm/qemu
for m in seqwrite seqread randwrite randread; do
	v=$(awk -v m=$m '$1 == "vmm" && $2 == m { print $3 }' "$results" | median)
	q=$(awk -v m=$m '$1 == "qemu" && $2 == m { print $3 }' "$results" | median)
	awk -v m=$m -v a="$v" -v b="$q" 'BEGIN { printf "%-10s %10.1f %10.1f %8.2f\n", m, a, b, (b > 0 ? a / b : 0) }'
done
