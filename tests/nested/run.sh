#!/bin/bash
# tests/nested/run.sh [--timeout SEC] -- CMD [ARG]...
#
# Runs CMD in the current directory with a working /dev/kvm. If a hardware /dev/kvm opens
# here, CMD is simply exec'd. Otherwise CMD runs inside a QEMU TCG guest (Debian's generic kernel,
# -cpu max, which emulates AMD SVM so kvm_amd loads; with npt=0, shadow paging, because the
# emulated nested paging now and then corrupts the memory of both guests) chrooted into this machine's /,
# shared read-only over 9p. Writable inside the guest: $NESTED_RW (default $PWD/build,
# created if missing), /tmp and /dev/shm (both tmpfs, so the host's /tmp is hidden).
# CMD sees VMM_NESTED_TCG=1 there. CMD's stdout and stderr both arrive on stdout; its stdin is /dev/null (or, with NESTED_TTY=1
# and a terminal on stdin, that terminal). The exit status
# is CMD's, or 125 if the nested guest failed or --timeout (default 3600 s) expired: under TCG
# the nested guest very occasionally locks up, and callers may retry on 125. A lockup its kernel
# sees (a CPU stuck in the kernel for a minute) panics it (softlockup_panic), so that 125 comes
# within a minute or so rather than at --timeout.
#
# Environment: NESTED_RW (writable dir), NESTED_MEM (guest MiB, default 4096), NESTED_SMP (its
# CPUs, default 2), NESTED_APPEND (more of its kernel command line; kvm_amd.npt=1 to compare),
# NESTED_ENV (names of variables to pass to CMD; PATH is passed, HOME=/root, TERM=dumb),
# NESTED_FORCE=1 (use the guest even if /dev/kvm works), VMM_TEST_CACHE (kernel/initramfs
# cache, default /var/cache/vmm-test).
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

# A /dev/kvm counts when it opens and is hardware virtualisation (kvm_intel or kvm_amd). Some
# sandboxes offer a software one (kvm_pvm) whose instruction emulator cannot run a stock
# kernel: a Debian guest dies on its first cmpxchg16b or xrstor there.
if [[ -z ${NESTED_FORCE:-} ]] && { : <>/dev/kvm; } 2>/dev/null; then
	[[ -e /sys/module/kvm_intel || -e /sys/module/kvm_amd ]] && exec "$@"
	echo "nested: /dev/kvm here is not hardware KVM (no kvm_intel or kvm_amd);" \
		"running under QEMU TCG with nested SVM (slow)" >&2
elif [[ -z ${NESTED_FORCE:-} ]]; then
	echo "nested: no /dev/kvm here; running under QEMU TCG with nested SVM (slow)" >&2
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/guest/lib.sh
source "$here/../guest/lib.sh"
kdir=$("$here/../guest/kernels.sh" generic)
kver=$(<"$kdir/version")
cache=${VMM_TEST_CACHE:-/var/cache/vmm-test}/nested
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
# As modprobe would: a module's parameters from the command line (kvm_amd.npt=0).
for m in $(cat /modules.order); do
	n=$(basename "$m" .ko | tr - _)
	insmod "/lib/modules/$m" $(for w in $(cat /proc/cmdline); do case $w in "$n".*) echo "${w#*.}" ;; esac; done) ||
		die "insmod $m failed"
done
o=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o "$o" ctl /ctl || die "cannot mount the ctl share"
mount -t 9p -o "ro,$o,cache=loose" host /host || die "cannot mount the host root"
# The RTC has whole seconds only; take the host's clock from a fresh file's mtime.
: >/ctl/clock
chroot /host /bin/date -s "$(stat -c %y /ctl/clock)" >/dev/null
rw=$(cat /ctl/rwdir)
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
mount -t tmpfs tmpfs /host/tmp
[ -c /host/dev/kvm ] || die "no /dev/kvm in the guest: kvm_amd did not load"
cp /ctl/cmd.sh /host/tmp/.nested-cmd.sh
in=/dev/null
[ -e /ctl/tty ] && in=/dev/console
env -i /bin/chroot /host /bin/sh /tmp/.nested-cmd.sh <$in
echo $? >/ctl/status
sync
poweroff -f
EOF
}

mods="kvm_amd 9p 9pnet_virtio virtio_pci tun" # tun: the network tests make taps
hash=$( (guest_init; echo "$mods"; declare -f mods_stage; cat /bin/busybox) | sha256sum | cut -c1-12)
initrd=$cache/initrd-$kver-$hash.cpio
if [[ ! -f $initrd ]]; then
	stage=$(mktemp -d "$cache/.stage.XXXXXX")
	mkdir -p "$stage"/{bin,dev,proc,sys,host,ctl}
	cp /bin/busybox "$stage/bin/busybox"
	guest_init >"$stage/init"
	chmod +x "$stage/init"
	# shellcheck disable=SC2086
	mods_stage "$kdir/lib/modules/$kver" "$stage" $mods
	(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$stage.cpio"
	mv "$stage.cpio" "$initrd"
	rm -rf "$stage"
	find "$cache" -maxdepth 1 -name 'initrd-*.cpio' ! -name "${initrd##*/}" -delete
fi

# Boot the uncompressed ELF through PVH: that skips the firmware's real-mode boot and
# the xz decompressor, ~3 s under TCG. Falls back to the bzImage if extraction fails.
kernel=$cache/vmlinux-$kver
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
for d in "$rw" "$(pwd -P)"; do
	[[ $d/ != /tmp/* ]] || { echo "nested: $d is under /tmp, which is a fresh tmpfs in the guest" >&2; exit 2; }
done
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
timeout "${fg[@]}" "$timeout" qemu-system-x86_64 -M q35 -accel tcg -cpu max -smp ${NESTED_SMP:-2} -m "${NESTED_MEM:-4096}" \
	-nodefaults -no-user-config -display none -no-reboot \
	-chardev stdio,id=con,signal=off -serial chardev:con \
	-kernel "$kernel" -initrd "$initrd" \
	-append "console=ttyS0 quiet loglevel=3 panic=-1 softlockup_panic=1 mitigations=off kvm_amd.npt=0 ${NESTED_APPEND:-}" \
	-virtfs "local,path=/,mount_tag=host,readonly=on,$fs" \
	-virtfs "local,path=${rw//,/,,},mount_tag=rw,$fs" \
	-virtfs "local,path=$ctl,mount_tag=ctl,$fs" <&"$qin" &
qpid=$!
rc=0
wait "$qpid" || rc=$?
qpid=
if [[ $rc == 124 ]]; then
	echo "nested: timed out after $timeout s" >&2
	exit 125
fi
if [[ ! -s $ctl/status ]]; then
	echo "nested: the guest ended without the command's exit status (qemu status $rc)" >&2
	exit 125
fi
exit "$(<"$ctl/status")"
