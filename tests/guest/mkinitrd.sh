#!/bin/bash
# tests/guest/mkinitrd.sh OUT.cpio.gz [KERNEL-DIR]...
#
# Builds the test guests' initramfs: busybox-static, the virtio modules of each kernel in
# KERNEL-DIR (as kernels.sh unpacks them) in /lib/modules/VERSION with depmod's index, and an /init
# that loads the drivers of the devices the guest has, as udev would (busybox modprobe, from the
# devices' modalias, with the kernel command line's MODULE.PARAM=VALUE), then does what the
# kernel command line's `vmmtest=` asks, as comma-separated steps run in order:
#   report    print "VMMTEST nproc=N", "tsc-deadline=N" (CPUs with it), "date=SECONDS",
#             "acpi-errors=N" and "memtotal-mb=N"
#   poweroff  poweroff -f                     reboot     reboot -f
#   panic     crash the kernel (sysrq c): vmm hears of it through pvpanic
#   restart=DEV  without the mark "RESTARTED" at 48 MiB on DEV: "VMMTEST restart=first", write
#             it, reboot -f; with it: "VMMTEST restart=second", and on to the next step
#   panicrestart=DEV  the same, but the first boot panics (sysrq c) instead of rebooting
#   exit=N    write byte N to the exit device's port 0xf4 (with outb.c: the cloud kernel has no
#             /dev/port)
#   devmem=N  write byte N to the exit device's MMIO register with busybox devmem (at 0xfef00000,
#             or the command line's vmmtest.exitdev=ADDR: arm64's is elsewhere)
#   hang      wait forever (for --timeout)    shell      an interactive shell (make run)
#   irqs      print /proc/interrupts and the serial driver's counters (for debugging)
#   dmesg     print the kernel's log (likewise)
#   virtio    print "VMMTEST virtio=ID:DRIVER:V1:PACKED" for each virtio device (VERSION_1 and
#             RING_PACKED negotiated: 0 or 1), then how many virtio interrupts are MSI-X and how
#             many are IOAPIC (arm64: GIC) lines ("VMMTEST virtio-msi=N", "VMMTEST virtio-intx=N")
#   rng       read /dev/hwrng twice: "VMMTEST rng-current=NAME", "VMMTEST rng=fresh" if the reads
#             differ and are not all zeros
#   hvc       write "VMMTEST-HVC-OUT" to hvc0, print "VMMTEST hvc-ready", read a line from hvc0
#             and print it as "VMMTEST hvc-in=LINE"
#   disk=DEV  block device DEV (vda, sda...), whose image the host filled with "HOSTDATA\n"
#             lines: "VMMTEST disk-DEV-host=ok" when its first MiB reads so; writes 4 MiB of
#             "GUESTDATA\n" lines at 8 MiB with dd conv=fsync, drops the caches, reads them back:
#             "VMMTEST disk-DEV-rw=ok"; prints "VMMTEST disk-DEV-serial=S" and
#             "VMMTEST disk-DEV-ro=0|1" and "VMMTEST disk-DEV-queues=N" (blk-mq hardware
#             queues) from sysfs; a virtio disk's cache is write-through for that write (its
#             cache_type, then back): "VMMTEST disk-DEV-cache=write through/write back"
#   rodisk=DEV  a read-only DEV: "VMMTEST rodisk-DEV-ro=1" from sysfs, and "...-refused=ok" when
#             a write fails
#   discard=DEV  blkdiscard 16 MiB at 32 MiB: "VMMTEST discard-DEV=ok" when it succeeds
#   sync=DEV  like disk's write, then "VMMTEST synced" and wait forever (the host kills vmm)
#   bench=DEV:MIB:SECONDS  run diskbench on DEV (bench/disk.sh): "VMMBENCH name=value" lines
#   link      eth0's carrier as the host takes tap0 down and up again: "VMMTEST link-ready
#             carrier=C", then (within 30 s each) "VMMTEST link-down=C" and "VMMTEST link-up=C"
#   oom       print "VMMTEST oom-ready", read a line from hvc0 (the host waits for the balloon to
#             fill), write 256 MiB to a tmpfs: "VMMTEST oom-written=ok" if that worked, "VMMTEST
#             oom-done", then read a line from hvc0 (the host reads the balloon's counters)
#   clock     print "VMMTEST clock-ready up=UPTIME source=CLOCKSOURCE", read a line from hvc0 (the
#             host pauses the VM before it writes it), print "VMMTEST clock-after up=UPTIME"
#   powerbutton  load the ACPI button driver (arm64: gpio-keys) and evdev, start busybox acpid
#             with an action for the power button that prints "VMMTEST power-button=pressed" and
#             powers off, print "VMMTEST powerbutton-ready" once acpid listens, and wait
#   hvcsize   print hvc0's window size as "VMMTEST hvc-size=ROWSxCOLS"
#   port=NAME find the virtio console port NAME, link it as /dev/virtio-ports/NAME (udev's job),
#             write "VMMTEST-PORT-OUT" to it, read a line and print "VMMTEST port-in=LINE"
#   net       eth0 up at 10.0.2.15/24 (the host's end, tests/guest/nethost.sh, is 10.0.2.2):
#             prints "VMMTEST net-queues=rx-0 ... tx-N" (eth0's queues in sysfs), "net-mac=MAC" and
#             "net-mtu=N", then "VMMTEST net-ping=ok" when the host answers ping
#   netrx     reads the host's TCP port 5001 to its end with nc into /tmp/net.data: "VMMTEST
#             net-rx-bytes=N", "VMMTEST net-rx-md5=SUM"
#   nettx     sends /tmp/net.data to the host's port 5002 with nc: "VMMTEST net-tx=done"
#   nettx2    sends it twice at once, to ports 5003 and 5004, from an nc pinned to CPU 0 and one
#             pinned to CPU 1 (each stream then takes its CPU's transmit queue): "VMMTEST
#             net-tx2=done", and each virtio queue interrupt's count as "VMMTEST net-irq-QUEUE=N"
#   netbench=MIB  eth0 up as for net, then netbench.c (bench/net.sh): the host's port 5001 to its
#             end, then MIB MiB to port 5002: "VMMBENCH name=value" lines
#   vsock-listen=PORT:MIB  vsock.c on virtio-vsock: listen on PORT, read what the host's one
#             connection sends until it shuts its side, then send MIB MiB of vsock.c's pattern back:
#             "VMMTEST vsock-cid=N" (the guest's own), "vsock-listening=PORT", "vsock-rx-bytes=N",
#             "vsock-rx-md5=SUM", "vsock-tx-bytes=N", "vsock-tx-md5=SUM", "vsock-done=ok"
#   vsock-connect=CID:PORT:MIB  the same over a connection the guest makes to CID:PORT (the host
#             is CID 2), "vsock-connected=PORT" for "vsock-listening"
#   share=TAG mount the virtio-9p share TAG (run-all.sh's share_prepare made it) on /mnt/TAG and
#             work in it, printing "VMMTEST share-KEY=VALUE" lines the host checks with what it
#             finds in the directory afterwards (share_check): the host's file's md5, a file the
#             guest writes and its md5, mkdir/rename/symlink/link/unlink/chown/chmod, a tree of
#             files (run-all.sh's) counted and copied with cp -a, and the escapes (symlinks out made by
#             the host and by the guest, a hard link, a directory swapped for a symlink in a loop)
#   roshare=TAG  mount the read-only share TAG: "VMMTEST roshare-md5=SUM" of its file, and
#             "VMMTEST roshare-refused=ok" when creating, writing, removing and chmod all fail
#   usershare=TAG  a share served by vmm as an ordinary user: make a file and a directory,
#             chown and chmod the file ("VMMTEST usershare-made=ok"), print its owner as the
#             guest sees it ("usershare-owner=UID"), and "usershare-denied=ok" when a file the
#             host's root keeps to itself cannot be read, even by the guest's root
#   fsbench=TAG  bench/fs.sh: in the share TAG, read big.data (dd, 1 MiB blocks) and write
#             new.data as big (dd, conv=fsync), read every file of tree/ (cat) and copy tree/ to
#             copy/ (cp -r): "VMMBENCH name=value" lines, MB/s and files/s
#   ciroot=TAG  the kernel-CI flow (docs/usage.md): mount the share TAG read-only as the new
#             root and switch_root to it, running the command line's vmmtest.init=PROGRAM
#   rwroot=TAG  the same with the share mounted writable (a busybox root: vmmtest.init=/sbin/init)
# vmmtest.dump=SECONDS: if the steps are not done that long after init started, print where each
# process waits (its kernel stack) and have the kernel show its blocked tasks and every CPU's
# backtrace (sysrq w and l), for a boot the host is about to end at --timeout.
# With no vmmtest= it runs a shell. It prints "VMMTEST-READY" first, the moment init starts, then
# "VMMTEST step=NAME t=UPTIME" as it starts each step (init: loading the modules), so a log shows
# where a boot's time went and in which step it stopped.
set -euo pipefail

out=${1:?usage: $0 OUT.cpio.gz [KERNEL-DIR]...}
shift
. "$(dirname "$0")/lib.sh"
virtio_modules="virtio_pci virtio_mmio virtio-rng virtio_console virtio_blk virtio_scsi sd_mod virtio_net virtio_balloon vmw_vsock_virtio_transport"
# For another architecture (arm64): CC its cross compiler, BUSYBOX its busybox-static, KERNEL-DIR
# its kernels.
busybox=${BUSYBOX:-/bin/busybox}
[[ -x $busybox ]] || { echo "mkinitrd.sh: $busybox missing: apt-get install busybox-static" >&2; exit 1; }
if ldd "$busybox" >/dev/null 2>&1; then
	echo "mkinitrd.sh: $busybox is dynamically linked: apt-get install busybox-static" >&2
	exit 1
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,dev,proc,sys,tmp,root}
cp "$busybox" "$stage/bin/busybox"
if [[ $(${CC:-cc} -dumpmachine) == x86_64* ]]; then # port I/O is x86's
	${CC:-cc} -O2 -static -o "$stage/bin/outb" "$(dirname "$0")/outb.c"
fi
${CC:-cc} -O2 -static -o "$stage/bin/diskbench" "$(dirname "$0")/diskbench.c"
${CC:-cc} -O2 -static -o "$stage/bin/netbench" "$(dirname "$0")/netbench.c"
${CC:-cc} -O2 -static -o "$stage/bin/vsock" "$(dirname "$0")/vsock.c" -lm
for kdir; do
	ver=$(cat "$kdir/version")
	# shellcheck disable=SC2086 # one word per module
	# virtio-9p where the kernel has it (the cloud kernel has no 9P at all)
	extra_modules=
	grep -q '/9pnet_virtio\.ko' "$kdir/lib/modules/$ver/modules.dep" && extra_modules="9pnet_virtio 9p"
	# pvpanic where the kernel has it (arm64's cloud kernel has none), and gpio-keys: arm64's
	# power button (the PL061's pin; the cloud kernel has none, x86's is ACPI's button)
	grep -qs 'pvpanic-mmio' "$kdir/lib/modules/$ver"/modules.{dep,builtin} && extra_modules+=" pvpanic-mmio"
	grep -q '/gpio_keys\.ko' "$kdir/lib/modules/$ver/modules.dep" && extra_modules+=" gpio_keys"
	mods_stage "$kdir/lib/modules/$ver" "$stage/mods" $virtio_modules button evdev $extra_modules
	mkdir -p "$stage/lib/modules/$ver"
	mv "$stage"/mods/lib/modules/* "$stage/mods/modules.order" "$stage/lib/modules/$ver/"
	cp "$kdir/lib/modules/$ver"/modules.builtin{,.modinfo} "$stage/lib/modules/$ver/"
	rm -r "$stage/mods"
	depmod -b "$stage" "$ver"
done
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
uptime() { cut -d' ' -f1 /proc/uptime; }
echo "VMMTEST step=init t=$(uptime)"
echo init >/tmp/step
read -r cmdline </proc/cmdline
# vmmtest.dump=SECONDS: a boot still in its steps that long after init started is about to be
# ended at --timeout: say where each process is waiting, and where each CPU is (sysrq w and l).
stuck() {
	echo "VMMTEST stuck: still in step $(cat /tmp/step) after $1 s: processes, blocked tasks, CPUs"
	for p in /proc/[0-9]*; do
		[ -s $p/cmdline ] || continue # a kernel thread
		echo "VMMTEST stuck: $(tr '\0' ' ' <$p/cmdline)[$(cut -d' ' -f3 $p/stat)] in $(cat $p/wchan)"
		sed 's/^/    /' $p/stack
	done
	echo 8 >/proc/sys/kernel/printk
	echo w >/proc/sysrq-trigger
	echo l >/proc/sysrq-trigger
}
for arg in $cmdline; do
	case $arg in
	vmmtest.dump=*) (sleep ${arg#*=} && stuck ${arg#*=}) & ;;
	vmmtest.exitdev=*) exitdev=${arg#*=} ;;
	esac
done
# The drivers of the devices there are, as udev would load them from their modalias: the virtio
# transports for the PCI and ACPI devices, then the drivers of the virtio devices those find (they
# appear as the transport probes), and sd_mod for virtio-scsi's disks, which its scan finds later.
# One modprobe a round: each process costs tens of milliseconds in a nested guest.
load() { [ $# = 0 ] || modprobe -q -a "$@"; }
load $(cat /sys/bus/pci/devices/*/modalias /sys/bus/platform/devices/*/modalias 2>/dev/null)
load $(cat /sys/bus/virtio/devices/*/modalias 2>/dev/null)
[ -d /sys/module/virtio_scsi ] && modprobe sd_mod
# eth0 up at 10.0.2.15/24, once it is there (the driver binds as its module loads, but be sure).
net_up() {
	for i in $(seq 50); do [ -e /sys/class/net/eth0 ] && break; sleep 0.1; done
	ip link set lo up
	ip addr add 10.0.2.15/24 dev eth0
	ip link set eth0 up
}
# share_mount TAG DIR [OPTION]: mount the virtio-9p share TAG on DIR (made if missing).
share_mount() {
	mkdir -p $2
	modprobe 9p
	mount -t 9p -o trans=virtio,version=9p2000.L${3:+,$3} "$1" $2
}
# share TAG: the share step (see the list at the top).
share_test() {
	local m=/mnt/$1 r out
	share_mount "$1" $m && echo "VMMTEST share-mount=ok"
	echo "VMMTEST share-host-md5=$(md5sum <$m/host.data | cut -d' ' -f1)"
	dd if=/dev/urandom of=/tmp/guest.data bs=1M count=8 2>/dev/null
	cp /tmp/guest.data $m/guest.data
	echo "VMMTEST share-guest-md5=$(md5sum </tmp/guest.data | cut -d' ' -f1)"
	# What the host made: a directory, a symlink, a file to remove.
	[ "$(readlink $m/host-link)" = host.data ] && [ "$(cat $m/host-dir/inner)" = inner ] &&
		[ "$(md5sum <$m/host-link)" = "$(md5sum <$m/host.data)" ] && echo "VMMTEST share-host-made=ok"
	# What the guest makes, for the host to find.
	mkdir $m/gdir && mkdir $m/gdir/sub && echo text >$m/gdir/sub/f && mv $m/gdir $m/grenamed &&
		ln -s grenamed/sub $m/glink && ln $m/grenamed/sub/f $m/grenamed/hard &&
		chown 1234:5678 $m/grenamed/sub/f && chmod 640 $m/grenamed/sub/f && rm $m/host-remove-me &&
		mkfifo $m/gfifo && [ "$(cat $m/glink/f)" = text ] && echo "VMMTEST share-guest-made=ok"
	echo "VMMTEST share-tree=$(find $m/tree | wc -l)"
	echo "VMMTEST share-listed t=$(uptime)"
	cp -a $m/tree $m/tree-copy && echo "VMMTEST share-tree-copy=ok"
	echo "VMMTEST share-copied t=$(uptime)"
	# Escapes: the host's symlinks out lead into the guest's own files, never the host's.
	out=$(cat $m/secret-abs $m/secret-rel $m/shadow-link $m/../../secret 2>/dev/null)
	case $out in *HOSTSECRET*) echo "VMMTEST share-escape-read=leaked" ;; *) echo "VMMTEST share-escape-read=none" ;; esac
	ln -s /etc/shadow $m/g-abs
	ln -s ../../../../../../etc $m/g-rel
	echo guest >$m/g-rel/vmm-escape 2>/dev/null
	ln $m/secret-abs $m/g-hard 2>/dev/null
	ln /init $m/g-hard-init 2>/dev/null && echo "VMMTEST share-escape-hardlink=made"
	# A directory swapped for a symlink out, again and again, while files are made through it.
	mkdir $m/race
	(
		while [ ! -e /tmp/race.stop ]; do
			mv $m/race $m/race.d 2>/dev/null
			ln -s "$(cat $m/outside-path)" $m/race 2>/dev/null
			rm -f $m/race 2>/dev/null
			mv $m/race.d $m/race 2>/dev/null
		done
	) &
	r=$!
	for i in $(seq 100); do
		echo race >$m/race/vmm-escape-$i 2>/dev/null
		cat $m/race/secret 2>/dev/null
	done | grep -c HOSTSECRET | sed 's/^/VMMTEST share-escape-race-read=/'
	touch /tmp/race.stop
	wait $r
	sync
	umount $m && echo "VMMTEST share-umount=ok"
}
steps=shell
for arg in $cmdline; do
	case $arg in vmmtest=*) steps=${arg#vmmtest=} ;; esac
done
for step in $(echo "$steps" | tr , ' '); do
	echo "VMMTEST step=$step t=$(uptime)"
	echo "$step" >/tmp/step
	case $step in
	report)
		echo "VMMTEST nproc=$(nproc)"
		echo "VMMTEST tsc-deadline=$(grep -c -w tsc_deadline_timer /proc/cpuinfo)"
		echo "VMMTEST date=$(date -u +%s)"
		echo "VMMTEST acpi-errors=$(dmesg | grep -c -i -E 'ACPI( BIOS)? (Error|Warning)')"
		echo "VMMTEST memtotal-mb=$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)"
		;;
	irqs) cat /proc/interrupts /proc/tty/driver/serial ;; # for debugging
	dmesg) dmesg ;;                                       # likewise
	virtio)
		for d in /sys/bus/virtio/devices/*; do
			[ -e $d/driver ] || continue
			echo "VMMTEST virtio=$(cat $d/device):$(basename $(readlink $d/driver)):$(cut -c33 $d/features):$(cut -c35 $d/features)"
		done
		# x86: PCI-MSI and IO-APIC; arm64: ITS-MSI and the GIC's lines (GICv3, GIC-0 for v2)
		echo "VMMTEST virtio-msi=$(grep -c -E '(PCI|ITS)-MSI.*virtio' /proc/interrupts)"
		echo "VMMTEST virtio-intx=$(grep -c -E '(IO-APIC|GICv3|GIC-0).*virtio' /proc/interrupts)"
		;;
	rng)
		echo "VMMTEST rng-current=$(cat /sys/class/misc/hw_random/rng_current)"
		a=$(head -c 64 /dev/hwrng | md5sum)
		b=$(head -c 64 /dev/hwrng | md5sum)
		z=$(head -c 64 /dev/zero | md5sum)
		[ "$a" != "$b" ] && [ "$a" != "$z" ] && echo "VMMTEST rng=fresh"
		;;
	hvc)
		exec 4<>/dev/hvc0
		stty -F /dev/hvc0 -echo
		echo VMMTEST-HVC-OUT >&4
		echo "VMMTEST hvc-ready"
		read -r line <&4
		echo "VMMTEST hvc-in=$line"
		exec 4>&-
		;;
	balloon)
		# Free page reporting: 512 MiB written to a tmpfs and freed; the host measures its
		# memory after each and says so on hvc0.
		exec 4<>/dev/hvc0
		mkdir -p /tmp/balloon
		mount -t tmpfs -o size=600m balloon /tmp/balloon
		dd if=/dev/zero of=/tmp/balloon/fill bs=1M count=512 2>/dev/null
		echo "VMMTEST balloon-filled"
		read -r line <&4
		rm /tmp/balloon/fill
		umount /tmp/balloon
		echo "VMMTEST balloon-freed"
		read -r line <&4
		echo "VMMTEST balloon-host=$line"
		exec 4>&-
		;;
	inflate)
		# The balloon driven from the host (run-all.sh's balloon boots): 768 MiB written to a
		# tmpfs and freed; the host inflates the balloon to 512 MiB, then deflates it; the
		# guest says what it sees at each turn, and writes the 768 MiB once more at the end.
		exec 4<>/dev/hvc0
		stty -F /dev/hvc0 -echo
		mkdir -p /tmp/balloon
		mount -t tmpfs -o size=900m balloon /tmp/balloon
		dd if=/dev/zero of=/tmp/balloon/fill bs=1M count=768 2>/dev/null
		rm /tmp/balloon/fill
		echo "VMMTEST inflate-freed memtotal=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)"
		read -r line <&4
		echo "VMMTEST inflated memtotal=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)"
		echo "VMMTEST meminfo $(awk '{ printf "%s%s ", $1, $2 }' /proc/meminfo)"
		read -r line <&4
		dd if=/dev/zero of=/tmp/balloon/fill bs=1M count=768 2>/dev/null && echo "VMMTEST reused=ok"
		echo "VMMTEST deflated memtotal=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)"
		rm /tmp/balloon/fill
		umount /tmp/balloon
		exec 4>&-
		;;
	oom)
		# DEFLATE_ON_OOM: the balloon holds most of RAM (--balloon size=); 256 MiB written to a
		# tmpfs must come from it, which Linux's driver gives back when the kernel would
		# otherwise kill (its OOM notifier) rather than wait for the host.
		exec 4<>/dev/hvc0
		stty -F /dev/hvc0 -echo
		echo "VMMTEST oom-ready"
		read -r line <&4
		mkdir -p /tmp/oom
		mount -t tmpfs -o size=400m oom /tmp/oom
		dd if=/dev/zero of=/tmp/oom/fill bs=1M count=256 2>/dev/null && echo "VMMTEST oom-written=ok"
		echo "VMMTEST oom-done"
		read -r line <&4
		rm /tmp/oom/fill
		umount /tmp/oom
		exec 4>&-
		;;
	clock)
		# vm.pause as the guest sees it: the host pauses it for a while between clock-ready and
		# its line on hvc0, and compares how much time passed here with how much passed there.
		exec 4<>/dev/hvc0
		stty -F /dev/hvc0 -echo
		echo "VMMTEST clock-ready up=$(uptime) source=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
		read -r line <&4
		echo "VMMTEST clock-after up=$(uptime)"
		exec 4>&-
		;;
	powerbutton)
		# vm.power-button: KEY_POWER from the button driver (x86: the DSDT's PNP0C0C, notified
		# by the GED) or gpio-keys (arm64: the PL061's pin) reaches busybox acpid, which runs
		# /etc/acpi/PWRF/00000080.
		modprobe -q -a button gpio_keys evdev
		mkdir -p /etc/acpi/PWRF
		printf '#!/bin/sh\necho "VMMTEST power-button=pressed" >/dev/console\npoweroff -f\n' \
			>/etc/acpi/PWRF/00000080
		chmod +x /etc/acpi/PWRF/00000080
		for i in $(seq 50); do [ -e /dev/input/event0 ] && break; sleep 0.1; done
		acpid -d -c /etc/acpi -p /tmp/acpid.pid 2>/tmp/acpid.log &
		for i in $(seq 50); do ls -l /proc/$!/fd 2>/dev/null | grep -q /dev/input/ && break; sleep 0.1; done
		echo "VMMTEST powerbutton-ready $(ls /dev/input 2>/dev/null | tr '\n' ' ')"
		while :; do sleep 3600; done
		;;
	disk=*)
		d=${step#disk=}
		want=$(yes HOSTDATA | head -c 1048576 | md5sum)
		[ "$(head -c 1048576 /dev/$d | md5sum)" = "$want" ] && echo "VMMTEST disk-$d-host=ok"
		# virtio-blk's CONFIG_WCE: the write below with the device's cache write-through
		c=/sys/block/$d/cache_type
		[ -f $c ] && echo "write through" >$c 2>/dev/null && wt=$(cat $c)
		yes GUESTDATA | head -c 4194304 | dd of=/dev/$d bs=1M seek=8 conv=fsync 2>/dev/null
		[ -f $c ] && echo "write back" >$c 2>/dev/null && echo "VMMTEST disk-$d-cache=$wt/$(cat $c)"
		echo 3 >/proc/sys/vm/drop_caches
		want=$(yes GUESTDATA | head -c 4194304 | md5sum)
		got=$(dd if=/dev/$d bs=1M skip=8 count=4 2>/dev/null | md5sum)
		[ "$got" = "$want" ] && echo "VMMTEST disk-$d-rw=ok"
		echo "VMMTEST disk-$d-serial=$(cat /sys/block/$d/serial 2>/dev/null)"
		echo "VMMTEST disk-$d-ro=$(cat /sys/block/$d/ro)"
		echo "VMMTEST disk-$d-queues=$(ls /sys/block/$d/mq | wc -l)"
		;;
	rodisk=*)
		d=${step#rodisk=}
		echo "VMMTEST rodisk-$d-ro=$(cat /sys/block/$d/ro)"
		yes X | head -c 4096 | dd of=/dev/$d bs=4096 count=1 conv=fsync 2>/dev/null ||
			echo "VMMTEST rodisk-$d-refused=ok"
		;;
	discard=*)
		d=${step#discard=}
		blkdiscard -o 33554432 -l 16777216 /dev/$d && echo "VMMTEST discard-$d=ok"
		;;
	sync=*)
		d=${step#sync=}
		yes GUESTDATA | head -c 4194304 | dd of=/dev/$d bs=1M seek=8 conv=fsync 2>/dev/null &&
			echo "VMMTEST synced"
		while :; do sleep 3600; done
		;;
	bench=*)
		set -- $(echo "${step#bench=}" | tr : ' ')
		diskbench /dev/$1 $2 $3
		;;
	hvcsize)
		# The size comes a moment after the driver bound, and hvc applies it to an open tty
		# in the background: hold hvc0 open and ask again, a bounded while. (busybox stty
		# prints "rows N; columns M;" with -a; its `size` fails on a 0x0 terminal.)
		for i in $(seq 50); do [ -e /dev/hvc0 ] && exec 6<>/dev/hvc0 && break; sleep 0.1; done
		for i in $(seq 50); do
			size=$(stty -a <&6 2>/dev/null | sed -n 's/.*rows \([0-9]*\); columns \([0-9]*\).*/\1x\2/p')
			[ -n "$size" ] && [ "$size" != 0x0 ] && break
			sleep 0.1
		done
		exec 6>&-
		echo "VMMTEST hvc-size=$size"
		;;
	port=*)
		name=${step#port=}
		for f in /sys/class/virtio-ports/*/name; do
			[ "$(cat $f)" = "$name" ] || continue
			mkdir -p /dev/virtio-ports
			dev=${f%/name}
			ln -sf ../${dev##*/} /dev/virtio-ports/$name
		done
		exec 5<>/dev/virtio-ports/$name
		echo VMMTEST-PORT-OUT >&5
		read -r line <&5
		echo "VMMTEST port-in=$line"
		exec 5>&-
		;;
	net)
		net_up
		echo "VMMTEST net-queues=$(ls /sys/class/net/eth0/queues | tr '\n' ' ')"
		echo "VMMTEST net-mac=$(cat /sys/class/net/eth0/address)"
		echo "VMMTEST net-mtu=$(cat /sys/class/net/eth0/mtu)"
		ping -c 1 -W 10 10.0.2.2 >/dev/null && echo "VMMTEST net-ping=ok"
		;;
	link)
		c=/sys/class/net/eth0/carrier
		echo "VMMTEST link-ready carrier=$(cat $c)"
		for i in $(seq 300); do [ "$(cat $c)" = 0 ] && break; sleep 0.1; done
		echo "VMMTEST link-down=$(cat $c)"
		for i in $(seq 300); do [ "$(cat $c)" = 1 ] && break; sleep 0.1; done
		echo "VMMTEST link-up=$(cat $c)"
		;;
	netrx)
		nc 10.0.2.2 5001 </dev/null >/tmp/net.data
		echo "VMMTEST net-rx-bytes=$(wc -c </tmp/net.data)"
		echo "VMMTEST net-rx-md5=$(md5sum </tmp/net.data | cut -d' ' -f1)"
		;;
	nettx) nc 10.0.2.2 5002 </tmp/net.data && echo "VMMTEST net-tx=done" ;;
	nettx2)
		taskset -c 0 nc 10.0.2.2 5003 </tmp/net.data &
		a=$!
		taskset -c 1 nc 10.0.2.2 5004 </tmp/net.data &
		b=$!
		wait $a && wait $b && echo "VMMTEST net-tx2=done"
		awk '$NF ~ /-(input|output)\.[0-9]+$/ {
			n = 0; for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) n += $i
			q = $NF; sub(/.*-/, "", q); print "VMMTEST net-irq-" q "=" n }' /proc/interrupts
		;;
	netbench=*)
		net_up
		netbench 10.0.2.2 5001 5002 ${step#netbench=}
		;;
	vsock-listen=* | vsock-connect=*)
		# The driver binds as its module loads (from the device's modalias), but be sure.
		modprobe -q vmw_vsock_virtio_transport
		for i in $(seq 50); do [ -e /dev/vsock ] && break; sleep 0.1; done
		set -- $(echo "${step#*=}" | tr : ' ')
		case $step in
		vsock-listen=*) vsock listen "$@" ;;
		*) vsock connect "$@" ;;
		esac
		;;
	share=*)
		share_test "${step#share=}"
		;;
	roshare=*)
		m=/mnt/${step#roshare=}
		share_mount "${step#roshare=}" $m
		echo "VMMTEST roshare-md5=$(md5sum <$m/ro.data | cut -d' ' -f1)"
		! touch $m/new 2>/dev/null && ! echo x 2>/dev/null >>$m/ro.data && ! rm $m/ro.data 2>/dev/null &&
			! mkdir $m/dir 2>/dev/null && ! chmod 777 $m/ro.data 2>/dev/null &&
			echo "VMMTEST roshare-refused=ok"
		umount $m
		;;
	usershare=*)
		m=/mnt/user
		share_mount "${step#usershare=}" $m
		echo guest >$m/made && mkdir $m/dir && chown 1234:1234 $m/made && chmod 640 $m/made &&
			echo "VMMTEST usershare-made=ok"
		echo "VMMTEST usershare-owner=$(stat -c %u $m/made)"
		cat $m/root-only >/dev/null 2>&1 || echo "VMMTEST usershare-denied=ok"
		umount $m
		;;
	fsbench=*)
		m=/mnt/bench
		share_mount "${step#fsbench=}" $m
		ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
		mib=$(($(wc -c <$m/big.data) >> 20))
		n=$(ls $m/tree | wc -l)
		a=$(ms); dd if=$m/big.data of=/dev/null bs=1M 2>/dev/null; b=$(ms)
		echo "VMMBENCH bigread=$((mib * 1000 / (b - a + 1)))"
		a=$(ms); dd if=/dev/zero of=$m/new.data bs=1M count=$mib conv=fsync 2>/dev/null; b=$(ms)
		echo "VMMBENCH bigwrite=$((mib * 1000 / (b - a + 1)))"
		a=$(ms); cat $m/tree/* >/dev/null; b=$(ms)
		echo "VMMBENCH smallread=$((n * 1000 / (b - a + 1)))"
		a=$(ms); cp -r $m/tree $m/copy; b=$(ms)
		echo "VMMBENCH smallwrite=$((n * 1000 / (b - a + 1)))"
		umount $m
		;;
	ciroot=* | rwroot=*)
		opt=
		[ "${step%%=*}" = ciroot ] && opt=ro
		share_mount "${step#*=}" /newroot $opt
		init=
		for arg in $cmdline; do
			case $arg in vmmtest.init=*) init=${arg#*=} ;; esac
		done
		echo "VMMTEST ciroot-switch t=$(uptime)"
		for d in dev proc sys; do mount --move /$d /newroot/$d; done
		exec switch_root /newroot "$init"
		;;
	poweroff) poweroff -f ;;
	panic) echo c >/proc/sysrq-trigger ;;
	restart=* | panicrestart=*)
		# --on-reboot restart (--on-panic restart): the first boot leaves a mark on the disk
		# and reboots (panics); the boot after the restart finds it there (RAM was cleared)
		# and goes on with the next steps.
		d=${step#*=}
		if [ "$(dd if=/dev/$d bs=512 skip=98304 count=1 2>/dev/null | head -c 9)" = RESTARTED ]; then
			echo "VMMTEST restart=second"
		else
			echo "VMMTEST restart=first"
			printf RESTARTED | dd of=/dev/$d bs=512 seek=98304 conv=fsync 2>/dev/null
			case $step in
			panic*) echo c >/proc/sysrq-trigger ;;
			*) reboot -f ;;
			esac
		fi
		;;
	reboot) reboot -f ;;
	exit=*) outb 0xf4 "${step#exit=}" ;;
	devmem=*) devmem "${exitdev:-0xfef00000}" 8 "${step#devmem=}" ;;
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
