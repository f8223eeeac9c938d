#!/bin/bash
# bench/fs.sh [RUNS]: a shared directory (virtio-9p) in the guest, vmm against QEMU, same run.
#
# Both boot the generic kernel (the cloud kernel has no 9P) and the busybox initramfs with one
# virtio-9p-pci device on the same directory (on tmpfs, so that the host's disk does not decide the
# figures: what is measured is the path guest -> VMM -> host kernel and back). QEMU runs with
# `-fsdev local,security_model=passthrough -device virtio-9p-pci`, the closest to what vmm does
# as root. In the guest (mkinitrd.sh's fsbench step, mounted with Linux's defaults: 9P2000.L,
# msize 128 KiB, no cache): a 64 MiB file read and written with 1 MiB blocks (MB/s), then 500
# files of 4 KiB read with cat and copied with cp -r (files/s). RUNS runs (default 3) of one vmm
# boot and one QEMU boot; medians and vmm/QEMU ratios (above 1 is vmm faster). Without a usable
# /dev/kvm each run is inside a nested guest of its own (bench/lib.sh), as the guest tests are: the
# absolute figures are then those of a nested guest, and only the ratios mean much.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
guest=$PWD/build/guest

if [[ -z ${VMM_TEST_INSIDE:-} ]]; then
	runs=${1:-3} label_width=11
	BENCH_FLAVOURS=generic bench_runs "$runs" 900 "$0"
	echo "fs benchmark: $runs runs each, interleaved; medians (MB/s for big, files/s for small)"
	header
	for m in bigread bigwrite smallread smallwrite; do
		row $m $m
	done
	exit 0
fi

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# fill: the share as each boot finds it, made again before each.
fill() {
	rm -rf "$dir/share"
	mkdir -p "$dir/share/tree"
	head -c $((64 << 20)) /dev/urandom >"$dir/share/big.data"
	head -c $((500 * 4096)) /dev/urandom | split -a 3 -b 4096 - "$dir/share/tree/f"
}
kernel=$guest/vmlinuz-generic initrd=$guest/initrd.img
cmdline="console=ttyS0 quiet vmmtest=fsbench=share,poweroff"
vmm=(build/vmm --kernel "$kernel" --initrd "$initrd" --memory 512M --cpus 1 --cmdline "$cmdline"
	--fs "path=$dir/share,tag=share" --timeout 600 ${BENCH_VMM_ARGS:-})
qemu=(qemu-system-x86_64 -M q35 -enable-kvm -cpu host -m 512M -smp 1 -nodefaults -no-user-config
	-display none -no-reboot -serial stdio -kernel "$kernel" -initrd "$initrd" -append "$cmdline"
	-fsdev "local,id=fs0,path=$dir/share,security_model=passthrough"
	-device virtio-9p-pci,fsdev=fs0,mount_tag=share)

# measure NAME: the guest's "VMMBENCH metric=value" lines as "RESULT NAME metric value", for the
# command in the array NAME (vmm or qemu).
measure() {
	local -n cmd=$1
	fill
	timeout 600 "${cmd[@]}" </dev/null 2>&1 | sed -n "s/^VMMBENCH \([a-z]*\)=\([0-9.]*\).*/RESULT $1 \1 \2/p"
}

out=$(pair measure)
echo "$out"
echo "RUN" $(sed 's/^RESULT //' <<<"$out" | tr '\n' ' ')
