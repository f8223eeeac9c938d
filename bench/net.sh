#!/bin/bash
# bench/net.sh [RUNS]: virtio-net TCP throughput in the guest, vmm against QEMU, same run.
#
# Both boot the same kernel and busybox initramfs with one virtio-net-pci device on a tap, in a
# network namespace of its own where tests/guest/nethost.sh is the host's end (tap0 at 10.0.2.2,
# socat). In the guest, tests/guest/netbench.c reads 128 MiB the host sends over one TCP connection
# (host to guest), then sends 128 MiB that the host throws away (guest to host), 256 KiB per system
# call (the host's sender too: docs/testing.md says why), timed with the monotonic clock until the
# host has closed, so every byte has arrived. QEMU runs with `-netdev tap,...,vhost=off` and
# `-device virtio-net-pci`: the device in the VMM's process, as in vmm. RUNS runs each (default
# 3), interleaved; medians in MB/s and vmm/QEMU ratios (above 1 is vmm faster), then what each
# direction cost the guest (netbench.c: interrupts, CPU time), the why of a ratio. Without a usable
# /dev/kvm it runs inside the nested harness, like the guest tests: the absolute figures are then
# those of a nested guest, and only the ratios mean much.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
guest=$PWD/build/guest

if [[ -z ${VMM_TEST_INSIDE:-} ]]; then
	make -s build/vmm
	tests/guest/prepare.sh
	exec tests/nested/run.sh --timeout 3600 -- env VMM_TEST_INSIDE=1 "$0" "$runs"
fi

mib=128
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
head -c $((mib << 20)) /dev/zero >"$dir/data"
kernel=$guest/vmlinuz initrd=$guest/initrd.img
cmdline="console=ttyS0 quiet vmmtest=netbench=$mib,poweroff"
vmm=(build/vmm --kernel "$kernel" --initrd "$initrd" --memory 512M --cpus 1 --cmdline "$cmdline"
	--net tap=tap0 --timeout 600)
qemu=(qemu-system-x86_64 -M q35 -enable-kvm -cpu host -m 512M -smp 1 -nodefaults -no-user-config
	-display none -no-reboot -serial stdio -kernel "$kernel" -initrd "$initrd" -append "$cmdline"
	-netdev tap,id=n0,ifname=tap0,script=no,downscript=no,vhost=off -device virtio-net-pci,netdev=n0)

# measure NAME CMD...: runs CMD on tap0, in a namespace of its own with nethost.sh as the host's
# end, and appends the guest's figures to $results as "NAME METRIC VALUE" (rx and tx in MB/s, and
# rx_irqs, rx_busy... from netbench.c), if it moved all the data.
measure() {
	local name=$1 out
	shift
	out=$(NET_SINK=null unshare --net tests/guest/nethost.sh "$dir" 1 timeout 600 "$@" </dev/null 2>&1 |
		sed -n 's/^VMMBENCH \([a-z_]*\)=\([0-9.]*\).*/\1 \2/p') || true
	if [[ $out == *"rxbytes $((mib << 20))"* && $out == *$'\ntx '* ]]; then
		grep -v rxbytes <<<"$out" | sed "s/^/$name /" >>"$results"
		echo -n " $name" $(grep -E '^(rx|tx) ' <<<"$out")
	else
		echo -n " $name: no figures (the guest did not move all the data)"
	fi
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

results=$dir/results
: >"$results"
for ((i = 1; i <= runs; i++)); do
	echo -n "run $i/$runs (MB/s):"
	measure vmm "${vmm[@]}"
	measure qemu "${qemu[@]}"
	echo
done
echo "net benchmark: $runs runs each, interleaved; medians in MB/s ($mib MiB each way, one TCP stream)"
# row LABEL METRIC: the medians of METRIC for vmm and QEMU, and their ratio.
row() {
	local v q
	v=$(awk -v m="$2" '$1 == "vmm" && $2 == m { print $3 }' "$results" | median)
	q=$(awk -v m="$2" '$1 == "qemu" && $2 == m { print $3 }' "$results" | median)
	awk -v m="$1" -v a="$v" -v b="$q" 'BEGIN { printf "%-26s %10.1f %10.1f %8.2f\n", m, a, b, (b > 0 ? a / b : 0) }'
}
printf '%-26s %10s %10s %8s\n' "" vmm qemu vmm/qemu
row host-to-guest rx
row guest-to-host tx
echo "what it cost the guest, medians: its virtio-net interrupts, and its CPU time not idle (%)"
row "host-to-guest interrupts" rx_irqs
row "host-to-guest CPU busy" rx_busy
row "guest-to-host interrupts" tx_irqs
row "guest-to-host CPU busy" tx_busy
