#!/bin/bash
# bench/net.sh [RUNS]: virtio-net TCP throughput in the guest, vmm against QEMU, same run.
#
# Both boot the same kernel and busybox initramfs with one virtio-net-pci device on a tap, in a
# network namespace of its own where tests/guest/nethost.sh is the host's end (tap0 at 10.0.2.2,
# socat). In the guest, tests/guest/netbench.c reads 128 MiB the host sends over one TCP connection
# (host to guest), then sends 128 MiB that the host throws away (guest to host), 256 KiB per system
# call (the host's sender too: docs/testing.md says why), timed with the monotonic clock until the
# host has closed, so every byte has arrived. QEMU runs with `-netdev tap,...,vhost=off` and
# `-device virtio-net-pci`: the device in the VMM's process, as in vmm. Beside that, in the same
# run, both with vhost-net (the data path in the host kernel's vhost worker): vmm with
# `--net tap=tap0,vhost=on` and QEMU with `-netdev tap,...,vhost=on`, where /dev/vhost-net is there
# (without it, those columns say "-"). RUNS runs (default 3)
# of those boots; medians in MB/s and vmm/QEMU ratios (above 1 is vmm faster), in-process and
# vhost side by side, then what each direction cost the guest (netbench.c: interrupts, CPU time),
# the why of a ratio.
# Without a usable /dev/kvm each run is inside a nested guest of its own (bench/lib.sh), as the
# guest tests are: the absolute figures are then those of a nested guest, only the ratios mean
# much, and they vary from run to run by a fifth or more (docs/testing.md), so take 15 runs or so.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
guest=$PWD/build/guest
mib=128

if [[ -z ${VMM_TEST_INSIDE:-} ]]; then
	runs=${1:-3} label_width=26
	bench_runs "$runs" 600 "$0"
	grep -q '^[a-z]*_vhost ' "$results" && pairs="vmm:qemu vmm_vhost:qemu_vhost"
	echo "net benchmark: $runs runs each, interleaved; medians in MB/s ($mib MiB each way, one TCP stream)"
	header
	row host-to-guest rx
	row guest-to-host tx
	echo "what it cost the guest, medians: its virtio-net interrupts, and its CPU time not idle (%)"
	row "host-to-guest interrupts" rx_irqs
	row "host-to-guest CPU busy" rx_busy
	row "guest-to-host interrupts" tx_irqs
	row "guest-to-host CPU busy" tx_busy
	exit 0
fi

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
head -c $((mib << 20)) /dev/zero >"$dir/data"
kernel=$guest/vmlinuz initrd=$guest/initrd.img
cmdline="console=ttyS0 quiet vmmtest=netbench=$mib,poweroff"
vmm=(build/vmm --kernel "$kernel" --initrd "$initrd" --memory 512M --cpus 1 --cmdline "$cmdline"
	--timeout 120 ${BENCH_VMM_ARGS:-})
qemu=(qemu-system-x86_64 -M q35 -enable-kvm -cpu host -m 512M -smp 1 -nodefaults -no-user-config
	-display none -no-reboot -serial stdio -kernel "$kernel" -initrd "$initrd" -append "$cmdline"
	-device virtio-net-pci,netdev=n0)
vmm_vhost=("${vmm[@]}" --net tap=tap0,vhost=on)
vmm+=(--net tap=tap0)
qemu_vhost=("${qemu[@]}" -netdev tap,id=n0,ifname=tap0,script=no,downscript=no,vhost=on)
qemu+=(-netdev tap,id=n0,ifname=tap0,script=no,downscript=no,vhost=off)

# measure NAME: runs the command in the array NAME (vmm, qemu, vmm_vhost or qemu_vhost) on tap0, in
# a namespace of its own with nethost.sh as the host's end, and prints the guest's figures as
# "RESULT NAME METRIC VALUE" (rx and tx in MB/s, and rx_irqs, rx_busy... from netbench.c) if it
# moved all the data, and adds them to the "RUN" line.
measure() {
	local name=$1 out
	local -n cmd=$1
	out=$(NET_SINK=null unshare --net tests/guest/nethost.sh "$dir" 1 timeout 120 "${cmd[@]}" </dev/null 2>&1 |
		sed -n 's/^VMMBENCH \([a-z_]*\)=\([0-9.]*\).*/\1 \2/p') || true
	if [[ $out == *"rxbytes $((mib << 20))"* && $out == *$'\ntx '* ]]; then
		grep -v rxbytes <<<"$out" | sed "s/^/RESULT $name /"
		run+=" $name "$(grep -E '^(rx|tx) ' <<<"$out" | tr '\n' ' ')
	else
		run+=" $name: no figures (the guest did not move all the data)"
	fi
}

run=
pair measure
if [[ -c /dev/vhost-net ]]; then
	pair measure vmm_vhost qemu_vhost
else
	run+=" (no /dev/vhost-net: no vhost figures)"
fi
echo "RUN$run"
