#!/bin/bash
# tests/nested/run.sh [--timeout SEC] -- CMD [ARG]...
# NESTED_ARCH=arm64 tests/nested/run.sh [--timeout SEC] -- CMD [ARG]...   (= tests/nested/run-arm64.sh)
#
# Runs CMD in the current directory with a working /dev/kvm. If a hardware /dev/kvm opens
# here, CMD is simply exec'd. Otherwise CMD runs inside a QEMU TCG guest (Debian's generic kernel,
# -cpu max, which emulates AMD SVM so kvm_amd loads, as a Zen CPU (family 23): TCG's own family 15
# is a K8's, for which every Linux (the test guests too, which see the same CPUID) scans all of PCI
# configuration space twice for an AGP bridge at boot, about 1.5 s a boot there; with npt=0,
# shadow paging, because the emulated nested paging now and then corrupts the memory of both
# guests, and vgif=0, because with the emulated virtual GIF an interrupt now and then arrives
# right after VMRUN, where GIF holds it off on a real CPU; idle=poll, because TCG now and then
# left a halted CPU deaf to its interrupts for good) chrooted into this machine's /,
# shared read-only over 9p. Writable inside the guest: $NESTED_RW (default $PWD/build,
# created if missing), /tmp and /dev/shm (both tmpfs, so the host's /tmp is hidden there; a
# tree under the host's /tmp is shared on its own, so CMD still finds it).
# Its init holds one KVM vCPU for the whole run, never run, so that KVM does not rewrite its own
# code at every test VM, which TCG does not always survive (kvmpin.c).
# CMD sees VMM_NESTED_TCG=1 there. CMD's stdout and stderr both arrive on stdout; its stdin is /dev/null (or, with NESTED_TTY=1
# and a terminal on stdin, that terminal).
#
# NESTED_ARCH=arm64: CMD runs on arm64, with an arm64 /dev/kvm. Directly on an arm64 machine where
# /dev/kvm opens; otherwise inside a qemu-system-aarch64 TCG guest (-M virt,virtualization=on,
# gic-version=3, so its kernel starts at EL2 and its built-in KVM works; -cpu max,pauth-impdef=on,
# whose pointer authentication is 3-4 times cheaper to emulate than the architected one) booted from
# Debian's generic arm64 kernel (the cloud one has no 9p), chrooted into an arm64 root tree of
# Debian's packages (tests/nested/arm64-root.sh) shared read-only under a tmpfs overlay (writable
# there, nothing reaches the cache), with the current directory (read-only) and $NESTED_RW
# (writable) at their own paths, and /usr/local/bin/kvmcheck (kvmcheck.c: proves that a vCPU runs
# and exits). The guest's console is also saved in $NESTED_LOG (default $NESTED_RW/nested-arm64.log).
# Needs tests/deps.sh's arm64 group (tests/deps.sh --install, on x86).
#
# Exit status: CMD's; 124 if --timeout (default 3600 s) expired while the nested guest was alive
# (whatever CMD was doing, it is CMD's failure); 125 if the nested guest itself failed, shown by
# one of: its clock stopped (run.sh reads the guest kernel's jiffies through QEMU's monitor every
# few seconds; when it has not moved for $NESTED_STALL seconds, default 60, the guest's kernel is
# stuck with its timers dead, and run.sh prints each of its CPUs' rip, named from its kallsyms,
# and ends it), its kernel panicked (a CPU stuck in its kernel for a minute panics it:
# softlockup_panic), or it ended without CMD's exit status. Callers may retry on 125, never on 124.
# 2: a bad command line, or (arm64) a package or cache that is missing: nothing ran.
#
# Environment: NESTED_ARCH (x86_64, the default, or arm64), NESTED_RW (writable dir), NESTED_MEM
# (guest MiB, default 4096; arm64 2048), NESTED_SMP (its CPUs, default 2), NESTED_CPU (its -cpu),
# NESTED_GIC (arm64: its GIC, QEMU virt's gic-version: default 3; 2 for a GICv2, where KVM has
# no GICv3 and no ITS to give a VM: `kvmcheck gic` says which it has), NESTED_ARM64_BUILD=1
# (arm64: the root tree with gcc, make and the -dev packages, arm64-root.sh --build, so that CMD
# can build and test vmm natively: an arm64 machine for `make check`),
# NESTED_APPEND (more of its kernel command line; kvm_amd.npt=1 to compare), NESTED_LOG (a file
# for a copy of its console; arm64's default above),
# NESTED_ENV (names of variables to pass to CMD; PATH is passed, HOME=/root, TERM=dumb),
# NESTED_STALL (seconds), NESTED_FORCE=1 (use the guest even if /dev/kvm works), VMM_TEST_CACHE
# (kernel/initramfs cache, default /var/cache/vmm-test).
set -euo pipefail

timeout=3600
while [[ $# -gt 0 ]]; do
	case $1 in
	--timeout) timeout=$2; shift 2 ;;
	--) shift; break ;;
	*) break ;;
	esac
done
[[ $# -gt 0 ]] || { echo "usage: $0 [--timeout SEC] -- CMD [ARG]..." >&2; exit 2; }
arch=${NESTED_ARCH:-x86_64}
case $arch in
x86_64 | amd64) arch=x86_64 ;;
arm64 | aarch64) arch=arm64 ;;
*) echo "nested: NESTED_ARCH=$arch: x86_64 or arm64" >&2; exit 2 ;;
esac

# A /dev/kvm counts when it opens and is hardware virtualisation (kvm_intel or kvm_amd). Some
# sandboxes offer a software one (kvm_pvm) whose instruction emulator cannot run a stock
# kernel: a Debian guest dies on its first cmpxchg16b or xrstor there.
# (-c first: a redirection to a missing /dev/kvm would create a file there.)
if [[ $arch == arm64 ]]; then
	# An arm64 /dev/kvm is one on an arm64 machine.
	if [[ -z ${NESTED_FORCE:-} && $(uname -m) == aarch64 && -c /dev/kvm ]] && { : <>/dev/kvm; } 2>/dev/null; then
		exec "$@"
	fi
	[[ -n ${NESTED_FORCE:-} ]] || echo "nested: no arm64 /dev/kvm here; running under QEMU TCG with EL2 (slow)" >&2
elif [[ -z ${NESTED_FORCE:-} && -c /dev/kvm ]] && { : <>/dev/kvm; } 2>/dev/null; then
	[[ -e /sys/module/kvm_intel || -e /sys/module/kvm_amd ]] && exec "$@"
	echo "nested: /dev/kvm here is not hardware KVM (no kvm_intel or kvm_amd);" \
		"running under QEMU TCG with nested SVM (slow)" >&2
elif [[ -z ${NESTED_FORCE:-} ]]; then
	echo "nested: no /dev/kvm here; running under QEMU TCG with nested SVM (slow)" >&2
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/guest/lib.sh
source "$here/../guest/lib.sh"
if [[ $arch == arm64 ]]; then
	missing=()
	for c in qemu-system-aarch64 aarch64-linux-gnu-gcc; do
		command -v "$c" >/dev/null || missing+=("$c")
	done
	if [[ ${#missing[@]} != 0 ]]; then
		echo "nested: no ${missing[*]} here; install the arm64 group: tests/deps.sh --install" >&2
		exit 2
	fi
	kdir=$("$here/../guest/kernels.sh" arm64) || exit 2
	root=$("$here/arm64-root.sh" ${NESTED_ARM64_BUILD:+--build}) || exit 2
	cache=${VMM_TEST_CACHE:-/var/cache/vmm-test}/arm64
	# The arm64 tree's busybox-static; kvmcheck for CMD, from the cross-compiler.
	busybox=$root/bin/busybox prog=kvmcheck cc=aarch64-linux-gnu-gcc
else
	kdir=$("$here/../guest/kernels.sh" generic)
	cache=${VMM_TEST_CACHE:-/var/cache/vmm-test}/nested
	busybox=/bin/busybox prog=kvmpin cc=${CC:-cc}
fi
kver=$(<"$kdir/version")
mkdir -p "$cache"

# The guest's /init. It finds its parameters on the "ctl" share: rwdir (path of the
# writable share inside the host root) and cmd.sh (what to run); it leaves "status" there.
guest_init() {
	cat <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
stty -onlcr  # the host turns \n into \r\n itself if its stdout is a terminal
mount -t proc proc /proc
mount -t sysfs sys /sys
die() {
	echo "nested: $*"
	dmesg | tail -n 25
	poweroff -f
}
# As modprobe would: a module's parameters from the command line (kvm_amd.npt=0 vgif=0).
for m in $(cat /modules.order); do
	n=$(basename "$m" .ko | tr - _)
	insmod "/lib/modules/$m" $(for w in $(cat /proc/cmdline); do case $w in "$n".*) echo "${w#*.}" ;; esac; done) ||
		die "insmod $m failed"
done
o=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o "$o" ctl /ctl || die "cannot mount the ctl share"
# For run.sh's watchdog, which reads jiffies from outside through QEMU's monitor: where it is in
# guest-physical memory (kallsyms' address less _text's, from where /proc/iomem has the kernel's
# code), and the text symbols that name a stuck CPU's rip. Not where kallsyms has no data symbols
# (Debian's arm64 kernels: no CONFIG_KALLSYMS_ALL): the heartbeats below watch alone there.
# (x86's "Kernel code" begins at _text, arm64's at _stext.)
sym() { grep -m1 " $1\$" /proc/kallsyms | cut -d' ' -f1; }
code=$(grep -m1 'Kernel code' /proc/iomem | sed 's/^ *\([0-9a-f]*\)-.*/\1/')
grep ' [tT] ' /proc/kallsyms >/ctl/kallsyms.tmp && mv /ctl/kallsyms.tmp /ctl/kallsyms &
text=_text
[ "$(uname -m)" = aarch64 ] && text=_stext
j=$(sym jiffies_64)
[ -z "$j" ] || echo "$j $(sym $text) $code" >/ctl/jiffies
if [ -e /ctl/overlay ]; then
	# arm64: the root tree read-only under a tmpfs, so that paths can be made in it (the
	# current directory's, where its share goes) and written (nothing reaches the host).
	mkdir -p /lower /upper
	mount -t 9p -o "ro,$o,cache=loose" host /lower || die "cannot mount the root tree"
	mount -t tmpfs tmpfs /upper && mkdir /upper/data /upper/work
	mount -t overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work overlay /host ||
		die "cannot mount the root tree's overlay"
else
	mount -t 9p -o "ro,$o,cache=loose" host /host || die "cannot mount the host root"
fi
# The RTC has whole seconds only; take the host's clock from a fresh file's mtime.
: >/ctl/clock
chroot /host /bin/date -s "$(stat -c %y /ctl/clock)" >/dev/null
mount -t tmpfs tmpfs /host/tmp
# A tree under the host's /tmp, which the tmpfs above hides: its own share, at its own path.
if [ -s /ctl/treedir ]; then
	tree=$(cat /ctl/treedir)
	mkdir -p "/host$tree"
	mount -t 9p -o "ro,$o,cache=loose" tree "/host$tree" || die "cannot mount $tree"
fi
rw=$(cat /ctl/rwdir)
mkdir -p "/host$rw" 2>/dev/null
mount -t 9p -o "$o,cache=mmap" rw "/host$rw" || die "cannot mount $rw"
mount -t proc proc /host/proc
mount -t sysfs sys /host/sys
mount -t devtmpfs dev /host/dev
mkdir -p /host/dev/pts /host/dev/shm
ln -sf /proc/self/fd /host/dev/fd  # what udev would make: bash's <(...) needs it
ln -sf /proc/self/fd/0 /host/dev/stdin
ln -sf /proc/self/fd/1 /host/dev/stdout
ln -sf /proc/self/fd/2 /host/dev/stderr
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /host/dev/pts
mount -t tmpfs tmpfs /host/dev/shm
[ -c /host/dev/kvm ] || die "no /dev/kvm in the guest: its KVM did not start (kvm_amd, or arm64's EL2)"
# x86: a vCPU held for the whole run, so that KVM does not rewrite its code at every test VM, which
# TCG does not always survive (kvmpin.c). arm64: kvmcheck, for CMD.
if [ -x /bin/kvmpin ]; then
	kvmpin || die "kvmpin failed"
fi
if [ -x /bin/kvmcheck ]; then
	mkdir -p /host/usr/local/bin && cp /bin/kvmcheck /host/usr/local/bin/
fi
# A heartbeat per CPU for run.sh's watchdog: a CPU that stops for good (TCG has left one halted,
# deaf to the interrupts that would wake it) freezes everything queued on it, the command too,
# while the clock goes on on the others.
n=0
while [ "$n" -lt "$(grep -c ^processor /proc/cpuinfo)" ]; do
	taskset -c "$n" sh -c "while :; do : >/ctl/beat$n; sleep 5; done" </dev/null >/dev/null 2>&1 &
	n=$((n + 1))
done
cp /ctl/cmd.sh /host/tmp/.nested-cmd.sh
in=/dev/null
[ -e /ctl/tty ] && in=/dev/console
env -i /bin/chroot /host /bin/sh /tmp/.nested-cmd.sh <$in
echo $? >/ctl/status
sync
poweroff -f
EOF
}

# tun: the network tests make taps; vhost_net and vhost_vsock: /dev/vhost-net and /dev/vhost-vsock
# for vhost=on and --vsock (mods_stage adds vhost, vhost_iotlb, tap, vsock and
# vmw_vsock_virtio_transport_common before them). vhost_vsock also makes this kernel the vsock host,
# CID 2, for the tests' socat.
# arm64: KVM is built in, and overlay is for the root tree.
mods="kvm_amd 9p 9pnet_virtio virtio_pci tun vhost_net vhost_vsock"
[[ $arch == x86_64 ]] || mods="overlay 9p 9pnet_virtio virtio_pci tun vhost_net vhost_vsock"
hash=$( (guest_init; echo "$mods"; declare -f mods_stage; cat "$busybox" "$here/$prog.c") | sha256sum | cut -c1-12)
initrd=$cache/initrd-$kver-$hash.cpio
if [[ ! -f $initrd ]]; then
	stage=$(mktemp -d "$cache/.stage.XXXXXX")
	mkdir -p "$stage"/{bin,dev,proc,sys,host,ctl}
	cp "$busybox" "$stage/bin/busybox"
	$cc -O2 -static -o "$stage/bin/$prog" "$here/$prog.c"
	guest_init >"$stage/init"
	chmod +x "$stage/init"
	# shellcheck disable=SC2086
	mods_stage "$kdir/lib/modules/$kver" "$stage" $mods
	(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$stage.cpio"
	mv "$stage.cpio" "$initrd"
	rm -rf "$stage"
	find "$cache" -maxdepth 1 -name 'initrd-*.cpio' ! -name "${initrd##*/}" -delete
fi

# x86: boot the uncompressed ELF through PVH: that skips the firmware's real-mode boot and
# the xz decompressor, ~3 s under TCG. Falls back to the bzImage if extraction fails.
# (arm64's vmlinuz is an uncompressed Image already.)
kernel=$cache/vmlinux-$kver
[[ $arch == x86_64 ]] || kernel=$kdir/vmlinuz
if [[ ! -f $kernel ]]; then
	off=$(LC_ALL=C grep -m1 -obUaP '\xfd7zXZ\x00' "$kdir/vmlinuz" | tr -d '\0' || true)
	off=${off%%:*}
	tmp=$(mktemp "$cache/.vmlinux.XXXXXX")
	if [[ -n $off ]] && xz -dc --single-stream <(tail -c +$((off + 1)) "$kdir/vmlinuz") >"$tmp" 2>/dev/null &&
		[[ $(head -c4 "$tmp") == $'\x7fELF' ]]; then
		mv "$tmp" "$kernel"
		find "$cache" -maxdepth 1 -name 'vmlinux-*' ! -name "${kernel##*/}" -delete
	else
		rm -f "$tmp"
		kernel=$kdir/vmlinuz
	fi
fi

rw=${NESTED_RW:-$PWD/build}
mkdir -p "$rw"
rw=$(cd "$rw" && pwd -P)
tree=$(pwd -P)
# arm64: the current directory is always shared (the root tree is not this machine's /).
[[ $tree/ == /tmp/* || $arch == arm64 ]] || tree=
ctl=$(mktemp -d)
qpid=
# shellcheck disable=SC2317  # called from the trap
cleanup() {
	[[ -z $qpid ]] || kill "$qpid" 2>/dev/null || true
	rm -rf "$ctl"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

q() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
# NESTED_TTY=1 on a terminal: CMD reads the terminal (through QEMU's serial port), for `make run`.
term=dumb qin=9 fg=()
if [[ -n ${NESTED_TTY:-} && -t 0 ]]; then
	: >"$ctl/tty"
	term=${TERM:-vt100}
	fg=(--foreground) # QEMU must stay in the terminal's foreground process group to read it
	exec 9<&0
else
	exec 9</dev/null
fi
echo "$rw" >"$ctl/rwdir"
[[ -z $tree ]] || echo "$tree" >"$ctl/treedir"
[[ $arch == x86_64 ]] || : >"$ctl/overlay"
{
	echo "export PATH=$(q "$PATH") HOME=/root TERM=$(q "$term") VMM_NESTED_TCG=1"
	for v in ${NESTED_ENV:-}; do
		[[ $v =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || { echo "nested: bad name in NESTED_ENV: $v" >&2; exit 2; }
		[[ -z ${!v+set} ]] || echo "export $v=$(q "${!v}")"
	done
	echo "cd $(q "$PWD") || exit 1"
	printf 'exec'
	for a; do printf ' %s' "$(q "$a")"; done
	echo
} >"$ctl/cmd.sh"

fs=security_model=none,multidevs=remap
top=/
[[ $arch == x86_64 ]] || top=$root
shares=(-virtfs "local,path=${top//,/,,},mount_tag=host,readonly=on,$fs"
	-virtfs "local,path=${rw//,/,,},mount_tag=rw,$fs"
	-virtfs "local,path=$ctl,mount_tag=ctl,$fs")
[[ -z $tree ]] || shares+=(-virtfs "local,path=${tree//,/,,},mount_tag=tree,readonly=on,$fs")
append="quiet loglevel=3 panic=-1 softlockup_panic=1 mitigations=off"
if [[ $arch == arm64 ]]; then
	# shellcheck disable=SC2054 # the commas are within QEMU options
	machine=(qemu-system-aarch64 -M "virt,virtualization=on,gic-version=${NESTED_GIC:-3}" -accel tcg
		-cpu "${NESTED_CPU:-max,pauth-impdef=on}" -smp "${NESTED_SMP:-2}" -m "${NESTED_MEM:-2048}")
	append="console=ttyAMA0 $append"
	log=${NESTED_LOG-$rw/nested-arm64.log}
else
	# shellcheck disable=SC2206 # NESTED_SMP unquoted, as it always was
	machine=(qemu-system-x86_64 -M q35 -accel tcg -cpu "${NESTED_CPU:-max,family=23,model=1}" -smp ${NESTED_SMP:-2} -m "${NESTED_MEM:-4096}")
	# idle=poll: an idle CPU of its spins instead of halting. QEMU 7.2's TCG now and then left one
	# halted for good with interrupts on and deliverable ones pending in its local APIC (an NMI did
	# not wake it either), mostly in the 2-vCPU kernel-CI boot over virtio-9p; without HLT that
	# did not come back (docs/testing.md).
	append="console=ttyS0 $append kvm_amd.npt=0 kvm_amd.vgif=0 idle=poll"
	log=${NESTED_LOG:-}
fi
con=stdio,id=con,signal=off
[[ -z $log ]] || con+=",logfile=${log//,/,,}"
timeout "${fg[@]}" "$timeout" "${machine[@]}" \
	-nodefaults -no-user-config -display none -no-reboot \
	-chardev "$con" -serial chardev:con -monitor "unix:$ctl/mon,server=on,wait=off" \
	-kernel "$kernel" -initrd "$initrd" \
	-append "$append ${NESTED_APPEND:-}" \
	"${shares[@]}" <&"$qin" &
qpid=$!

# monitor CMD: QEMU's answer to a human-monitor command, without its banner and prompts.
monitor() {
	printf '%s\n' "$1" | socat -t 2 - "UNIX-CONNECT:$ctl/mon" 2>/dev/null | tr -d '\r' |
		grep -v -e '^QEMU .* monitor' -e '^(qemu)' || true
}
# jiffies: the nested guest kernel's jiffies_64, or nothing before its init has said where it is.
jiffies_at=
jiffies() {
	local virt text code
	if [[ -z $jiffies_at ]]; then
		read -r virt text code 2>/dev/null <"$ctl/jiffies" && [[ -n $code ]] || return 0
		jiffies_at=$(printf '0x%x' $((0x$virt - 0x$text + 0x$code)))
	fi
	monitor "xp /1gx $jiffies_at" | sed -n 's/^[0-9a-f]*: *\(0x[0-9a-f]*\).*/\1/p'
}
# stuck_cpus: each vCPU of the nested guest, its rip (arm64: pc) named from the guest's kallsyms (a
# rip that is not in its kernel is a test guest's, run by the CPU on its behalf). arm64's registers
# do not say whether a CPU is halted.
regs='s/^RIP=\([0-9a-f]*\) RFL=\([0-9a-f]*\) .*HLT=\([01]\).*/\1 \3 \2/p'
[[ $arch == x86_64 ]] || regs='s/^ *PC=\([0-9a-f]*\) .*/\1 0 0/p'
stuck_cpus() {
	local cpu rip sym state
	monitor 'info registers -a' | sed -n "s/^CPU#\([0-9]*\).*/\1/p; $regs" |
		paste -d' ' - - | while read -r cpu rip hlt rfl; do
		sym=$( { cat "$ctl/kallsyms" 2>/dev/null; echo "$rip ~ ~rip"; } | LC_ALL=C sort | grep -B1 '~rip$' | head -n 1)
		[[ $sym == *'~rip' ]] && sym= || sym=$(printf '%s+0x%x' "${sym##* }" $((0x$rip - 0x${sym%% *})))
		state=
		[[ $hlt == 1 ]] && state=", halted"
		[[ $arch == x86_64 ]] && state+=", interrupts $( ((0x$rfl & 0x200)) && echo on || echo off)"
		echo "nested: CPU $cpu: rip $rip ${sym:-(not in its kernel)}$state"
		# What should wake it: its local APIC's pending (IRR) and in-service (ISR) vectors,
		# the priority that holds them back (TPR, PPR), its timer.
		if [[ $arch == x86_64 ]]; then
			monitor "info lapic $cpu" | grep -E '^(LVTT|Timer|ISR|IRR|APR)' | sed "s/^/nested:   CPU $cpu /"
		fi
	done
}

# give_up STATUS WHY: says WHY and where each CPU of the nested guest is, stops it, exits STATUS.
give_up() {
	echo "nested: $2" >&2
	stuck_cpus >&2
	kill "$qpid" 2>/dev/null
	wait "$qpid" 2>/dev/null
	exit "$1"
}

# Wait for QEMU; meanwhile, every 5 s, the guest's jiffies. Once the command's status is in, the
# guest has a minute to power off: one that cannot (a CPU of its stopped for good, which the
# poweroff waits for; the clock runs on the others) is stopped, and the status stands.
stall=${NESTED_STALL:-60} last= since=$SECONDS tick=0 done_at=
while kill -0 "$qpid" 2>/dev/null; do
	sleep 1
	((++tick % 5 == 0)) || continue
	if [[ -s $ctl/status ]]; then
		: "${done_at:=$SECONDS}"
		if ((SECONDS - done_at >= 60)); then
			give_up "$(<"$ctl/status")" "the nested guest did not power off in 60 s after the command ended; stopped:"
		fi
	fi
	for b in "$ctl"/beat*; do
		[[ -e $b ]] || continue
		age=$(($(date +%s) - $(stat -c %Y "$b" 2>/dev/null || date +%s)))
		if ((age >= stall)) && [[ ! -s $ctl/status ]]; then
			give_up 125 "CPU ${b##*beat} of the nested guest stopped: its heartbeat is $age s old, and what is queued on it stands still:"
		fi
	done
	now=$(jiffies)
	if [[ -z $now || $now != "$last" ]]; then
		last=$now since=$SECONDS
	elif ((SECONDS - since >= stall)); then
		give_up 125 "the nested guest's clock stopped: jiffies $now for $stall s; its kernel is stuck:"
	fi
done
rc=0
wait "$qpid" || rc=$?
qpid=
if [[ $rc == 124 ]]; then
	echo "nested: timed out after $timeout s, the nested guest still running" >&2
	exit 124
fi
if [[ ! -s $ctl/status ]]; then
	echo "nested: the guest ended without the command's exit status (qemu status $rc)" >&2
	exit 125
fi
exit "$(<"$ctl/status")"
