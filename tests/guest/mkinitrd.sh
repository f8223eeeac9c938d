#!/bin/bash
# tests/guest/mkinitrd.sh OUT.cpio.gz
#
# Builds the test guests' initramfs: busybox-static and an /init that does what the kernel
# command line's `vmmtest=` asks, as comma-separated steps run in order:
#   report    print "VMMTEST nproc=N", "date=SECONDS", "acpi-errors=N" and "memtotal-mb=N"
#   poweroff  poweroff -f                     reboot     reboot -f
#   exit=N    write byte N to the exit device's port 0xf4 (with outb.c: the cloud kernel has no
#             /dev/port)
#   devmem=N  write byte N to the exit device's MMIO register with busybox devmem
#   hang      wait forever (for --timeout)    shell      an interactive shell (make run)
#   irqs      print /proc/interrupts and the serial driver's counters (for debugging)
# With no vmmtest= it runs a shell. It prints "VMMTEST-READY" first, the moment init starts.
set -euo pipefail

out=${1:?usage: $0 OUT.cpio.gz}
busybox=/bin/busybox
[[ -x $busybox ]] || { echo "mkinitrd.sh: $busybox missing: apt-get install busybox-static" >&2; exit 1; }
if ldd "$busybox" >/dev/null 2>&1; then
	echo "mkinitrd.sh: $busybox is dynamically linked: apt-get install busybox-static" >&2
	exit 1
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,dev,proc,sys,tmp,root}
cp "$busybox" "$stage/bin/busybox"
${CC:-cc} -O2 -static -o "$stage/bin/outb" "$(dirname "$0")/outb.c"
cat >"$stage/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
# The kernel found no /dev/console in this initramfs (cpio as non-root cannot make device
# nodes), so init started without stdio: take the console now.
exec </dev/console >/dev/console 2>&1
echo VMMTEST-READY
steps=shell
for arg in $(cat /proc/cmdline); do
	case $arg in vmmtest=*) steps=${arg#vmmtest=} ;; esac
done
for step in $(echo "$steps" | tr , ' '); do
	case $step in
	report)
		echo "VMMTEST nproc=$(nproc)"
		echo "VMMTEST date=$(date -u +%s)"
		echo "VMMTEST acpi-errors=$(dmesg | grep -c -i -E 'ACPI( BIOS)? (Error|Warning)')"
		echo "VMMTEST memtotal-mb=$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)"
		;;
	irqs) cat /proc/interrupts /proc/tty/driver/serial ;; # for debugging
	poweroff) poweroff -f ;;
	reboot) reboot -f ;;
	exit=*) outb 0xf4 "${step#exit=}" ;;
	devmem=*) devmem 0xfef00000 8 "${step#devmem=}" ;;
	hang) while :; do sleep 3600; done ;;
	shell)
		echo "busybox shell; 'poweroff -f' or Ctrl-A x to leave"
		setsid cttyhack sh -l
		poweroff -f
		;;
	*) echo "VMMTEST unknown step $step" ;;
	esac
done
# Every step returned: nothing may follow, so stop.
poweroff -f
INIT
chmod +x "$stage/init"
mkdir -p "$(dirname "$out")"
(cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -1) >"$out.tmp"
mv "$out.tmp" "$out"
