#!/bin/bash
# tests/guest/run-all.sh: the guest tests behind `make check-guest`.
#
# Boots Debian's cloud and generic kernels (fetched once into ${VMM_TEST_CACHE:-/var/cache/vmm-test})
# with a busybox initramfs under build/vmm, and checks what the guest reports and how vmm exits:
# first the virtio firmware guest's drivers on every transport mode; the platform with 1 and 2
# vCPUs, every virtio device in one boot per transport mode, the files in configs/; the firmware
# test guest for what needs no Linux; bad input (exit 2). Without a /dev/kvm that can run them, the
# tests run inside the nested harness (tests/nested/run.sh), and say so.
# Ends with "N passed, N failed"; exit 1 if any failed. docs/testing.md has the whole story.
set -uo pipefail
cd "$(dirname "$0")/../.."
top=$PWD
vmm=$top/build/vmm
guest=$top/build/guest
flavours=${VMM_TEST_FLAVOURS-cloud generic}
cpu_counts=${VMM_TEST_CPUS:-1 2}
# A plain boot's limit is this many times the reference boot's time (at least min_limit s); a boot
# with every device, which also moves 64 MiB each way over the network, gets device_factor times
# that. The reference boots themselves get ref_limit s: a machine that needs longer for a plain
# boot is not one to test on.
limit_factor=8 device_factor=4 min_limit=60 ref_limit=300

if [[ -z ${VMM_TEST_INSIDE:-} ]]; then
	# Host side: everything that needs the network or writes outside build/ happens here.
	# Groups of boots, each in one run of the harness. basic comes first: it boots each kernel
	# once to measure this machine (calibrate), and every later limit follows from that.
	groups="basic"
	for f in $flavours; do groups+=" $f pci-$f mmio-$f"; done
	groups+=" arm64" # vmm for arm64 (make cross-arm64) in an arm64 nested guest
	# On an arm64 machine vmm is arm64's: the arm64 group (with this machine's KVM) is its group;
	# the others boot x86 kernels.
	[[ $(uname -m) != aarch64 ]] || groups=arm64
	groups=${VMM_TEST_GROUPS:-$groups}
	if [[ $groups != arm64 ]]; then
		tests/guest/prepare.sh $flavours || exit 1
	fi
	rm -rf "$guest/logs"
	mkdir -p "$guest/logs"
	if [[ " $groups " == *" arm64 "* ]]; then
		tests/guest/prepare.sh --arm64 || exit 1
	fi
	# (arm64 calibrates itself: an x86 reference boot would say nothing about it)
	[[ -n ${VMM_TEST_BOOT_TIMEOUT:-} || " $groups " == *" basic "* || $groups == arm64 ]] ||
		groups="calibrate $groups"
	max_retries=${VMM_TEST_MAX_RETRIES:-3}
	passed=0 failed=0 retries=0 retried=() limits=
	for f in $flavours; do limits+=" $f=${VMM_TEST_BOOT_TIMEOUT:-$ref_limit}"; done
	for g in $groups; do
		# What the group may take: its boots' limits (each vmm is killed 30 s after its own)
		# and the nested guest's boot. Only a nested guest that is alive runs into it: a stuck
		# one is ended by run.sh's watchdog within a minute or so. (A share boot counts as two
		# device boots.)
		case $g in
		basic | calibrate) boots=$(wc -w <<<"$flavours") device=0 ;;
		arm64) boots=7 device=3 ;; # it calibrates its own limits
		pci-*) boots=0 device=12 ;; # 3 device boots, 3 balloon, 1 oom, 2 shares, 3 vhost
		mmio-*) boots=1 device=5 ;;
		*) boots=$((2 * $(wc -w <<<"$cpu_counts") + 6)) device=1 ;;
		esac
		l=$(sed -n "s/.* ${g#*-}=\([0-9]*\).*/\1/p" <<<" $limits ")
		limit=$((boots * (${l:-$ref_limit} + 30) + device * (device_factor * ${l:-$ref_limit} + 30) + 300))
		for try in 1 2 3; do
			start=$SECONDS
			arch=x86_64
			[[ $g == arm64 ]] && arch=arm64
			NESTED_ARCH=$arch tests/nested/run.sh --timeout $limit -- env VMM_TEST_INSIDE=1 VMM_TEST_GROUP="$g" \
				VMM_TEST_FLAVOURS="$flavours" VMM_TEST_CPUS="$cpu_counts" VMM_TEST_LIMITS="$limits" \
				"$0" 2> >(tee "$guest/logs/$g.nested" >&2)
			rc=$?
			echo "run-all: group $g, try $try: exit status $rc after $((SECONDS - start)) s"
			# 125: the nested guest failed, as run.sh or tcg_fault below showed; anything else
			# (124 too: the group ran out of time while the nested guest was alive) is the
			# group's own result.
			[[ $rc == 125 ]] || break
			cause=$(cat "$guest/logs/$g/cause" 2>/dev/null || grep '^nested: ' "$guest/logs/$g.nested" | tail -n 1)
			retried+=("$g (try $try: ${cause:-no cause given})")
			rm -rf "$guest/logs/$g.try$try"
			mv "$guest/logs/$g" "$guest/logs/$g.try$try" 2>/dev/null
			[[ $try == 3 ]] && break
			retries=$((retries + 1))
			echo "run-all: group $g runs again: $cause"
		done
		if read -r p fl 2>/dev/null <"$guest/logs/$g/count"; then
			passed=$((passed + p)) failed=$((failed + fl))
		else
			failed=$((failed + 1))
			echo "FAIL group-$g: it did not finish (exit status $rc; logs in build/guest/logs/$g*)"
		fi
		if [[ ($g == basic || $g == calibrate) && -z ${VMM_TEST_BOOT_TIMEOUT:-} ]]; then
			if ! read -r limits 2>/dev/null <"$guest/logs/$g/limits"; then
				failed=$((failed + 1))
				echo "FAIL calibration: a reference boot did not finish, so no later boot can be given a limit; stopping (its log is in build/guest/logs/$g/)"
				break
			fi
			while read -r f t l; do
				echo "run-all: calibrated: a plain $f boot took $t s here; its boots get $l s, with every device $((device_factor * l)) s"
			done <"$guest/logs/$g/calibration"
		fi
	done
	if ((${#retried[@]})); then
		echo "run-all: $retries group run(s) repeated because the nested guest failed:"
		printf '    %s\n' "${retried[@]}"
	fi
	if ((retries > max_retries)); then
		failed=$((failed + 1))
		echo "FAIL harness-retries: $retries repeated group runs, more than $max_retries: the nested harness is not reliable enough on this machine to trust the run"
	fi
	echo "$passed passed, $failed failed"
	[[ $failed == 0 ]]
	exit
fi

# Inside: one group, its logs in build/guest/logs/GROUP/.
group=${VMM_TEST_GROUP:?}
# arm64's group runs build/arm64/vmm (make cross-arm64), or on an arm64 machine build/vmm.
[[ $group == arm64 && -x $top/build/arm64/vmm ]] && vmm=$top/build/arm64/vmm
logs=$guest/logs/$group
rm -rf "$logs"
mkdir -p "$logs"
passed=0 failed=0
pass() { passed=$((passed + 1)); echo "PASS $1"; }
fail() {
	failed=$((failed + 1))
	echo "FAIL $1: $2"
	[[ -f $logs/$1.log ]] && tail -n 15 "$logs/$1.log" | sed 's/^/    | /'
	[[ -f $logs/$1.serial ]] && tail -n 10 "$logs/$1.serial" | sed 's/^/    | serial: /'
}
# limit FLAVOUR: the plain boot limit the host calibrated for FLAVOUR's kernel (s).
limit() {
	local l
	l=$(sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<" ${VMM_TEST_LIMITS:-} ")
	echo "${l:-$ref_limit}"
}

# launch NAME CMD...: starts CMD (vmm, perhaps wrapped) in the background, stdin from $stdin
# (default /dev/null), stdout and stderr in $logs/NAME.log; sets $pid. A vmm that does not stop on
# its own --timeout is killed 30 s after the boot's limit $t: one failed test with its log, rather
# than a whole group lost. A guard ends it as soon as its guest's kernel has panicked (no kernel
# test guest comes back from that; it would only wait for --timeout), unless the panic is the one
# --timeout's NMI asked for (vmm says so at any --log-level, and ends that boot itself once the
# guest has printed where it was).
launch() {
	local name=$1
	shift
	rm -f "$logs/$name.panicked"
	timeout -s KILL $((t + 30)) "$@" <"${stdin:-/dev/null}" >"$logs/$name.log" 2>&1 &
	pid=$! launched=$SECONDS
	(
		while kill -0 "$pid" 2>/dev/null; do
			if cat "$logs/$name".* 2>/dev/null | grep -q -e '---\[ end Kernel panic' &&
				! grep -q "pvpanic: the guest panicked (--timeout's NMI)" "$logs/$name.log"; then
				: >"$logs/$name.panicked"
				kill -TERM -- -"$pid" 2>/dev/null # timeout's process group: vmm and its wrappers
				break
			fi
			sleep 0.5
		done
	) &
}
# finish NAME: waits for the launched vmm; sets $status (143 for a panic the guard ended). Not for
# ever: a vmm still there a minute after its SIGKILL is one that cannot run to die (unkillable).
finish() {
	while kill -0 "$pid" 2>/dev/null; do
		if ((SECONDS - launched > t + 90)); then
			unkillable "$1"
			return
		fi
		read -r -t 0.2 -u "$nap" || : # a sleep without a process
	done
	wait "$pid" 2>/dev/null # (not "Killed": the sigkill test kills vmm on purpose)
	status=$?
	echo "$status" >"$logs/$1.status"
	tcg_fault "$1"
}
# unkillable NAME: the launched vmm outlived its SIGKILL by a minute. A process dies when its
# threads next run; these do not. Says where each thread is (state, the CPU it last ran on, what
# it waits in). Seen on the nested harness only: one CPU of the nested guest halted for good,
# deaf to the interrupts that would wake it (TCG), and every thread queued on it stays runnable
# ("R") without ever running: the guest's vCPUs, so its guest stalls (--timeout), then vmm's exit.
# There it is the harness's failure, and the group runs again (exit 125, as tcg_fault). Anywhere
# else it is a failed test (status 137), and the run goes on without that process.
unkillable() {
	local v=$pid task
	# The launched process is timeout(1), vmm under it (perhaps under a wrapper or two).
	for _ in 1 2 3 4; do
		[[ $(cat /proc/"$v"/comm 2>/dev/null) == vmm ]] && break
		v=$(pgrep -n -P "$v")
	done
	{
		echo "run-all: vmm (pid ${v:-?}) still there $((SECONDS - launched - t - 30)) s after its SIGKILL; its threads:"
		for task in /proc/"${v:-none}"/task/*; do
			# stat: the state is field 3, the CPU it last ran on field 39 (after "(comm)").
			echo "  $(cat "$task/comm" 2>/dev/null): $(sed 's/.*) //' "$task/stat" 2>/dev/null |
				awk '{ print "state " $1 ", last on CPU " $37 }'), in $(cat "$task/wchan" 2>/dev/null)"
		done
	} | tee -a "$logs/$1.log"
	status=137
	echo "$status" >"$logs/$1.status"
	# Runnable threads that do not run are the CPU's doing; threads asleep in the kernel
	# (state D: a file system that does not answer) may be vmm's, and that is a failure.
	[[ -n ${VMM_NESTED_TCG:-} ]] && grep -q 'state R' "$logs/$1.log" || return 0
	local what="vmm could not be killed, its threads never scheduled: a CPU of the nested guest stopped"
	if [[ -n ${VMM_TEST_RECORD:-} ]]; then # bench/hangs.sh counts them instead
		echo "$what" >"$logs/$1.fault"
		return 0
	fi
	echo "$1: $what, a failure of the nested harness's emulated CPU" >"$logs/cause"
	echo "run-all: $(<"$logs/cause"); the group runs again"
	exit 125
}
# why NAME: what to say of a boot that did not exit as expected.
why() {
	local w="exit status $status"
	[[ -e $logs/$1.panicked ]] && w+=" (its guest's kernel panicked)"
	[[ $status == 124 ]] && w+=" (--timeout $t; the last step begun: $(grep -h -o 'VMMTEST step=[^ ]*' "$logs/$1".* 2>/dev/null | tail -n 1))"
	echo "$w"
}
# run NAME ARGS...: vmm with ARGS; sets $status.
run() {
	local name=$1
	shift
	launch "$name" "$vmm" "$@"
	finish "$name"
}
# tcg_fault NAME: whether the boot failed in a way only the nested harness's TCG (QEMU emulating
# AMD SVM for the L1 kernel's kvm_amd) causes; then exit 125, like run.sh's, so that the group runs
# again (three tries in all: a failure of vmm's own comes back every time and still fails). Not
# seen on hardware KVM, and vmm is not in their path: interrupt delivery, timers and paging are
# the L1 kernel's KVM on the emulated CPU. Looks at every log of the boot (vmm's messages, the
# serial console). A failure without these marks is the test's as usual. docs/testing.md gives
# how often each was seen, and the same boots under QEMU in the nested guest.
#  - A vCPU loses its timer: it halts and is never woken; the guest's RCU says so ("timer wakeup
#    didn't happen") and the boot hangs until --timeout. The local APIC and its timer are KVM's
#    (in-kernel irqchip); vmm never sees them.
#  - The vCPU's state is not the guest's: at --timeout vmm finds rip and rsp not mapped by the
#    guest's own page tables, CR3 outside its RAM, and rip the same address every time, which is
#    inside __svm_vcpu_run of the nested guest's own kvm_amd. The emulated CPU resumed the guest
#    with its host's state.
#  - An interrupt delivered while the guest has them masked: a double fault on the first
#    instruction of the system call entry (entry_SYSCALL_64+0x0, where SYSCALL has just cleared
#    IF and the stack is still the user's, so the interrupt's frame faults). No guest memory or
#    device state can cause that on a correct CPU.
#  - On a timer interrupt from user mode the kernel finds its GS base 0: it page-faults on its
#    per-CPU data (the fault address is the bare per-CPU offset), faults again in the fault
#    handler and runs off its entry stack ("ENTRY_TRAMPOLINE stack guard page was hit"). No device
#    can change a vCPU's GS base (vmm sets it only at boot); the kernel GS base is one of the
#    registers SVM's VMSAVE/VMLOAD carry across exits.
#  - An interrupt delivered while the guest has them masked, shown by the guest's own backtrace
#    (the panic --timeout's NMI asks for): an external interrupt's entry (asm_sysvec_*,
#    asm_common_interrupt) whose saved EFLAGS has IF (0x200) clear. A CPU delivers none while IF is
#    clear; what follows is a hang whose state no device explains, such as a handler spinning on a
#    seqcount the code it interrupted holds (docs/testing.md).
tcg_fault() {
	local what=
	[[ -n ${VMM_NESTED_TCG:-} ]] || return 0
	if [[ $status == 124 || $status == 137 ]] && tcg_log "$1" -q "timer wakeup didn't happen"; then
		what="a vCPU's timer stopped"
	elif [[ $status == 124 || $status == 137 ]] && tcg_log "$1" -q "code at rip: .* is not mapped"; then
		what="the vCPU holds its host's state"
	elif tcg_log "$1" -q "RIP: 0010:entry_SYSCALL_64+0x0/"; then
		what="an interrupt arrived with interrupts masked"
	elif tcg_log "$1" -q "ENTRY_TRAMPOLINE stack guard page was hit"; then
		what="the guest's kernel lost its GS base"
	elif [[ $status == 124 ]] && masked_interrupt "$1"; then
		what="an interrupt arrived with interrupts masked"
	else
		return 0
	fi
	if [[ -n ${VMM_TEST_RECORD:-} ]]; then # bench/hangs.sh counts them instead
		echo "$what" >"$logs/$1.fault"
		return 0
	fi
	echo "$1: $what, a failure of the nested harness's emulated CPU" >"$logs/cause"
	echo "run-all: $(<"$logs/cause"); the group runs again"
	tail -n 5 "$logs/$1.log" | sed 's/^/    | /'
	exit 125
}
tcg_log() { local name=$1; shift; cat "$logs/$name".* 2>/dev/null | grep "$@"; }
# masked_interrupt NAME: whether the boot's backtraces show an external interrupt taken with IF clear:
# the registers printed after an asm_sysvec_* or asm_common_interrupt frame ("RSP: ... EFLAGS: X").
masked_interrupt() {
	cat "$logs/$1".* 2>/dev/null | awk '
		/ asm_(sysvec_[a-z_0-9]*|common_interrupt)\+/ { entry = 1; next }
		entry && match($0, /EFLAGS: [0-9a-f]+/) {
			entry = 0
			flags = substr($0, RSTART + 8, RLENGTH - 8)
			d = index("0123456789abcdef", substr(flags, length(flags) - 2, 1)) - 1
			if (int(d / 2) % 2 == 0) found = 1 # 0x200 clear
		}
		END { exit !found }'
}
# calibrated START: a reference boot begun at START ($EPOCHREALTIME) has just ended: "SECONDS
# LIMIT", how long it took and the limit a plain boot gets from it (limit_factor times, at least
# min_limit).
calibrated() {
	awk -v s="$1" -v e="$EPOCHREALTIME" -v k=$limit_factor -v m=$min_limit \
		'BEGIN { t = e - s; l = int(t * k + 0.999); printf "%.1f %d\n", t, (l < m ? m : l) }'
}
# expect NAME STATUS ARGS...: vmm must exit with STATUS.
expect() {
	local name=$1 want=$2
	shift 2
	run "$name" "$@"
	if [[ $status == "$want" ]]; then pass "$name"; else fail "$name" "$(why "$name"), expected $want"; fi
}
# put FD TEXT: TEXT (printf's escapes) into FD, a pipe or socket whose reader may be gone: then
# nothing (SIGPIPE is ignored meanwhile; a subshell would not do, it has no coprocess fds).
put() {
	trap '' PIPE
	printf "$2" >&"$1" 2>/dev/null
	trap - PIPE
}
# wait_for FILE PATTERN: until FILE has a line matching PATTERN, or the launched vmm is gone.
wait_for() {
	while kill -0 "$pid" 2>/dev/null && ! grep -q "$2" "$1" 2>/dev/null; do sleep 0.1; done
}
# report NAME KEY: the value the guest printed as "VMMTEST KEY=VALUE".
report() { report_file "$logs/$1.log" "$2"; }
report_file() { sed -n "s/^VMMTEST $2=\([0-9]*\).*/\1/p" "$1" | tail -n 1; }
# serial_input NAME ARGS...: runs vmm with a pipe as its console input and, once the guest's shell
# is up, types on the UART a command that prints and powers off; sets $status.
serial_input() {
	local name=$1
	shift
	mkfifo "$tmp/$name.in"
	stdin=$tmp/$name.in launch "$name" "$vmm" "$@"
	exec 3>"$tmp/$name.in"
	wait_for "$logs/$name.log" '^busybox shell'
	put 3 'echo VMMTEST input=$((6*7))\npoweroff -f\n'
	exec 3>&-
	finish "$name"
}
# mkimage FILE MIB: an image of MIB MiB, fully allocated, the first MiB "HOSTDATA" lines and the
# rest "FILL" lines (so a discard shows as fewer allocated blocks).
mkimage() {
	{ yes HOSTDATA | head -c 1048576; yes FILL | head -c $((($2 - 1) * 1048576)); } >"$1"
}
tmp=$(mktemp -d)
exec {nap}<> <(:) # never readable: `read -t` on it waits without starting a process
trap 'rm -rf "$tmp"' EXIT
# unknown_nmi_panic, panic_print=0x40: the NMI vmm sends when --timeout expires makes the guest
# panic with its backtrace and every other CPU's, which says where a boot hung even with its
# interrupts off (the in-guest dump, vmmtest.dump, needs them on).
base="console=ttyS0 quiet unknown_nmi_panic panic_print=0x40"
host_now() { date -u +%s; }
# since START: seconds from START (an $EPOCHREALTIME) to now, one decimal.
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# kernel_of FLAVOUR, initrd_of FLAVOUR: the test guest's kernel and initramfs for FLAVOUR (cloud,
# generic, or the arm64 group's, prepare.sh --arm64: arm64, the cloud kernel, and arm64-generic).
kernel_of() {
	case $1 in
	arm64) echo "$guest/arm64/vmlinuz" ;;
	arm64-*) echo "$guest/arm64/vmlinuz-${1#arm64-}" ;;
	*) echo "$guest/vmlinuz-$1" ;;
	esac
}
initrd_of() { if [[ $1 == arm64* ]]; then echo "$guest/arm64/initrd.img"; else echo "$guest/initrd.img"; fi; }
# --- Every virtio device in one boot: what device_boot sets up and device_check checks. ---------
net_mac=52:54:00:12:34:56
# device_boot NAME MODE FLAVOUR: one boot with an entropy device, a virtio console with two ports
# (hvc0 on vmm's stdio, a named port test.port on a unix socket), two virtio-blk disks (vda
# read-write with a serial, vdb read-only) and a virtio-scsi LUN (sda) on images in tmpfs, and
# virtio-net on a tap, all on the transport MODE names:
#   pci         modern virtio-pci, packed rings, MSI-X; two vCPUs, so two request queues per disk,
#               and queues=2 on a multi-queue tap; hvc0 on a terminal of 45x123 (multiport: a
#               RESIZE message)
#   pci-legacy  transitional virtio-pci driven by the legacy driver (virtio_pci.force_legacy=1)
#   pci-intx    transitional virtio-pci without MSI (pci=nomsi): INTx lines, shared, and the ISR
#   mmio        virtio-mmio version 2; eth0's MTU 1400 from mtu= (on a tap of that MTU)
#   mmio-v1     virtio-mmio version 1 (legacy); hvc0 alone (no named port) on a terminal of 45x123
#               (the size in the configuration area)
# In the guest, the init steps check each device (mkinitrd.sh); on the host, the console's
# typed line and the port's line are played, tests/guest/nethost.sh is the network's other end
# (in a network namespace of the boot's own). Sets $status.
device_boot() {
	local name=$1 mode=$2 f=$3 sock=$tmp/$1.sock port_in port_out line cmd
	local args=() extra= queues=1 tx=nettx mtu=1500 item= term= port=",port=test.port" link
	case $mode in
	pci) args=(--cpus 2) queues=2 tx=nettx2 term=1 ;;
	pci-legacy) args=(--legacy) extra=virtio_pci.force_legacy=1 ;;
	pci-intx) args=(--legacy) extra=pci=nomsi ;;
	mmio) args=(--transport mmio) mtu=1400 item=,mtu=1400 ;;
	mmio-v1) args=(--transport mmio --legacy) term=1 port= ;;
	esac
	[[ -n $port ]] && args+=(--console "name=test.port,socket=$sock")
	mkimage "$tmp/vda.img" 64
	mkimage "$tmp/vdb.img" 8
	mkimage "$tmp/sda.img" 64
	blocks=$(stat -c %b "$tmp/vda.img")
	rm -f "$tmp"/50*.md5
	t=$((device_factor * $(limit "$f")))
	link=,link # virtio-net's status follows the tap (vmm's; QEMU's follows its own link setting)
	[[ ${VMM_TEST_VMM:-vmm} == qemu ]] && link=
	line="$base $extra vmmtest.dump=$((t * 4 / 5)) vmmtest=virtio,rng,hvc$port,balloon,disk=vda,rodisk=vdb,discard=vda,disk=sda,net,netrx,$tx${term:+,hvcsize}$link,poweroff"
	if [[ ${VMM_TEST_VMM:-vmm} == qemu ]]; then
		qemu_cmd "$name" "$mode" "$f" "$line"
	else
		cmd=("$vmm" --kernel "$(kernel_of "$f")" --initrd "$(initrd_of "$f")" --timeout "$t" --log-level info
			"${args[@]}" --memory 1G --serial "file=$logs/$name.serial" --console stdio --rng
			--balloon free_page_reporting=on,deflate_on_oom=on,stats_period=2
			--disk "path=$tmp/vda.img,serial=VMM-$mode" --disk "path=$tmp/vdb.img,readonly=on"
			--scsi "path=$tmp/sda.img" --net "tap=tap0,mac=$net_mac,queues=$queues$item" --cmdline "$line")
	fi
	if [[ -n $term ]]; then # script(1) makes the terminal; the typed line goes through it
		printf -v line '%q ' "${cmd[@]}"
		cmd=(script -qec "stty rows 45 cols 123; exec $line" /dev/null)
	fi
	mkfifo "$tmp/$name.in"
	NET_MTU=$mtu stdin=$tmp/$name.in launch "$name" unshare --net tests/guest/nethost.sh "$tmp" "$queues" "${cmd[@]}"
	exec 3>"$tmp/$name.in"
	port_in= port_out=
	if [[ -n $port ]]; then
		while kill -0 "$pid" 2>/dev/null && [[ ! -S $sock ]]; do sleep 0.1; done
		coproc PORT { socat "UNIX-CONNECT:$sock" - 2>/dev/null; }
		# Bash forgets the coprocess's fds once it has ended (vmm gone early): keep them.
		port_in=${PORT[0]:-} port_out=${PORT[1]:-}
	fi
	wait_for "$logs/$name.serial" 'VMMTEST hvc-ready'
	put 3 'hvc-in-42\n'
	if [[ -n $port_in ]] && read -r -t "$t" line <&"$port_in"; then
		echo "$line" >"$logs/$name.port-out"
		put "$port_out" 'port-in-42\n'
	fi
	# The balloon's free page reporting, measured from the host: vmm's RSS once the guest has
	# written 512 MiB, then, once it has freed them, until it has fallen by 400 MiB (or the
	# boot's plain limit has passed). The guest waits on hvc0 for each measurement.
	local vpid full freed=0 end
	vpid=$(below "$pid" "${VMM_TEST_VMM:-vmm}" "qemu-system-x86")
	wait_for "$logs/$name.serial" 'VMMTEST balloon-filled'
	full=$(rss_kb "$vpid")
	put 3 'filled\n'
	wait_for "$logs/$name.serial" 'VMMTEST balloon-freed'
	end=$((SECONDS + $(limit "$f")))
	while kill -0 "$pid" 2>/dev/null && ((SECONDS < end)); do
		freed=$(rss_kb "$vpid")
		((${full:-0} - ${freed:-0} >= 409600)) && break
		sleep 0.5
	done
	echo "${full:-0} ${freed:-0}" >"$logs/$name.balloon"
	put 3 'freed\n'
	# The tap's link, taken down and up again in its namespace (vmm's): the guest's eth0 follows.
	if [[ -n $link ]]; then
		wait_for "$logs/$name.serial" 'VMMTEST link-ready'
		nsenter --net="/proc/$vpid/ns/net" ip link set tap0 down
		wait_for "$logs/$name.serial" 'VMMTEST link-down='
		nsenter --net="/proc/$vpid/ns/net" ip link set tap0 up
	fi
	finish "$name"
	exec 3>&-
	[[ -n ${PORT_PID:-} ]] && kill "$PORT_PID" 2>/dev/null
}
# --- virtio-9p: what share_prepare puts in the shares, share_check finds after the guest's steps. -
# share_prepare FILES: $tmp/share (the guest's share= step works in it, on a tree of FILES files),
# $tmp/roshare (readonly=on)
# and $tmp/outside, the host's files beside the share that no escape may reach: a secret, and a
# file the share's symlinks point to by absolute and relative paths, /etc/shadow's too.
share_prepare() {
	local s=$tmp/share i
	rm -rf "$s" "$tmp/roshare" "$tmp/outside"
	mkdir -p "$s/host-dir" "$tmp/roshare" "$tmp/outside"
	echo HOSTSECRET >"$tmp/outside/secret"
	head -c $((8 << 20)) /dev/urandom >"$s/host.data"
	echo inner >"$s/host-dir/inner"
	ln -s host.data "$s/host-link"
	: >"$s/host-remove-me"
	ln -s "$tmp/outside/secret" "$s/secret-abs"
	ln -s ../outside/secret "$s/secret-rel"
	ln -s /etc/shadow "$s/shadow-link"
	echo "$tmp/outside" >"$s/outside-path"
	# $1 files, 40 to a directory, sizes from 1000 bytes, some with other modes, a symlink.
	for i in $(seq 0 $(($1 / 40 - 1))); do
		mkdir "$s/tree/d$i" -p
		head -c $((40 * (1000 + i))) /dev/urandom | split -a 2 -b $((1000 + i)) - "$s/tree/d$i/f"
	done
	chmod 600 "$s"/tree/d1*/fa?
	chmod 755 "$s"/tree/d*2/fb?
	chmod 700 "$s/tree/d3"
	ln -s d0/faa "$s/tree/link"
	head -c 100000 /dev/urandom >"$tmp/roshare/ro.data"
	(cd "$tmp/outside" && find . -printf '%p %s %m\n' | sort && md5sum secret) >"$tmp/outside.before"
	(cd "$tmp/roshare" && find . -printf '%p %s %m\n' | sort && md5sum ro.data) >"$tmp/roshare.before"
	md5sum /etc/shadow /etc/passwd >"$tmp/etc.before" 2>/dev/null
}
# tree_list DIR: each file's type, mode, size, owner and path (and a symlink's target), sorted.
tree_list() { (cd "$1" && find . -printf '%y %m %s %U:%G %p %l\n' | sort -k5); }
# share_boot NAME MODE FLAVOUR [FILES]: a boot with the two shares (and nothing else) on the
# transport MODE names (device_boot's), running the share= and roshare= steps; sets $status. The
# tree has FILES files (default 2000), each made, read, copied and its mode and owner set through
# the share: nested, that is minutes on virtio-mmio, so a share boot gets twice a device boot's limit.
share_boot() {
	local name=$1 mode=$2 f=$3 files=${4:-2000} args=() extra=
	case $mode in
	pci-legacy) args=(--legacy) extra=virtio_pci.force_legacy=1 ;;
	mmio) args=(--transport mmio) ;;
	mmio-v1) args=(--transport mmio --legacy) ;;
	esac
	share_prepare "$files"
	t=$((2 * device_factor * $(limit "$f")))
	launch "$name" "$vmm" --kernel "$(kernel_of "$f")" --initrd "$(initrd_of "$f")" --timeout "$t" --log-level info \
		"${args[@]}" --memory 1G --serial "file=$logs/$name.serial" \
		--fs "path=$tmp/share,tag=share" --fs "path=$tmp/roshare,tag=roshare,readonly=on" \
		--cmdline "$base $extra vmmtest.dump=$((t * 4 / 5)) vmmtest=virtio,share=share,roshare=roshare,poweroff"
	# While the guest works in the share: each thread's name, effective capabilities and
	# seccomp mode. Only the shares' threads (fs) keep the five a file server needs (0x1f).
	local vpid threads
	vpid=$(below "$pid" vmm)
	wait_for "$logs/$name.serial" '^VMMTEST share-mount=ok'
	threads=$(for d in /proc/"$vpid"/task/*; do
		echo "$(cat "$d/comm") $(sed -n 's/^CapEff:\t//p' "$d/status") $(sed -n 's/^Seccomp:\t//p' "$d/status")"
	done 2>/dev/null | sort | uniq -c)
	finish "$name"
	[[ $status == 0 ]] && pass "$name" || fail "$name" "$(why "$name"), expected 0"
	[[ $(grep -c ' fs 000000000000001f 2$' <<<"$threads") == 1 && $(grep -c ' 2$' <<<"$threads") -ge 4 ]] &&
		! grep -v ' fs 000000000000001f 2$' <<<"$threads" | grep -qv ' 0000000000000000 2$' &&
		pass "$name-caps" || fail "$name-caps" "threads (count, name, CapEff, Seccomp): $(tr '\n' ';' <<<"$threads")"
	share_check "$name" "$mode"
}
# serial_value FILE KEY: the value the guest printed as "VMMTEST KEY=VALUE" (the last, without
# the serial line's carriage return).
serial_value() { sed -n "s/^VMMTEST $2=\([^\r]*\).*/\1/p" "$1" | tail -n 1; }
# share_check NAME MODE: the guest's share= and roshare= steps, from the host's side.
share_check() {
	local name=$1 s=$logs/$1.serial d=$tmp/share got v1=1:1
	[[ $2 == pci-legacy || $2 == mmio-v1 ]] && v1=0:0
	grep -q "^VMMTEST virtio=0x0009:9pnet_virtio:$v1\s*$" "$s" && pass "$name-bind" ||
		fail "$name-bind" "9pnet_virtio did not bind with VERSION_1:RING_PACKED=$v1: $(grep 'VMMTEST virtio=' "$s" | tr '\n' ' ')"
	grep -q '^VMMTEST share-mount=ok' "$s" && grep -q '^VMMTEST share-umount=ok' "$s" &&
		pass "$name-mount" || fail "$name-mount" "the share did not mount and unmount"
	got=$(serial_value "$s" share-host-md5)
	[[ -n $got && $got == "$(md5sum <"$d/host.data" | cut -d' ' -f1)" ]] &&
		pass "$name-host-file" || fail "$name-host-file" "the guest read the host's file wrong"
	got=$(serial_value "$s" share-guest-md5)
	[[ -n $got && $(md5sum <"$d/guest.data" 2>/dev/null | cut -d' ' -f1) == "$got" ]] &&
		pass "$name-guest-file" || fail "$name-guest-file" "the guest's file is not in the share intact"
	grep -q '^VMMTEST share-host-made=ok' "$s" && pass "$name-host-made" ||
		fail "$name-host-made" "the guest did not see the host's directory and symlink"
	grep -q '^VMMTEST share-guest-made=ok' "$s" && [[ -d $d/grenamed/sub && ! -e $d/gdir &&
		$(readlink "$d/glink") == grenamed/sub && ! -e $d/host-remove-me && -p $d/gfifo &&
		$(stat -c '%u:%g %a %h' "$d/grenamed/sub/f") == "1234:5678 640 2" &&
		$(stat -c %i "$d/grenamed/hard") == $(stat -c %i "$d/grenamed/sub/f") ]] &&
		pass "$name-guest-made" ||
		fail "$name-guest-made" "what the guest made is not on the host as it made it: $(ls -la "$d" "$d/grenamed" "$d/grenamed/sub" 2>&1 | tr '\n' ' ')"
	got=$(serial_value "$s" share-tree)
	[[ $got == "$(find "$d/tree" | wc -l)" ]] &&
		pass "$name-tree-list" || fail "$name-tree-list" "the guest counted ${got:-no} names in the tree, not $(find "$d/tree" | wc -l)"
	grep -q '^VMMTEST share-tree-copy=ok' "$s" && cmp -s <(tree_list "$d/tree") <(tree_list "$d/tree-copy") &&
		diff -r "$d/tree" "$d/tree-copy" >/dev/null && pass "$name-tree-copy" ||
		fail "$name-tree-copy" "cp -a in the guest did not copy the tree with its sizes, modes and owners: $(diff <(tree_list "$d/tree") <(tree_list "$d/tree-copy") | head -n 5 | tr '\n' ' ')"
	# Escapes: nothing read from outside, nothing written there, symlinks the guest made are
	# only symlinks, the outside file got no new link.
	grep -q '^VMMTEST share-escape-read=none' "$s" && grep -q '^VMMTEST share-escape-race-read=0' "$s" &&
		pass "$name-escape-read" || fail "$name-escape-read" "$(grep 'VMMTEST share-escape' "$s" | tr '\n' ' ')"
	cmp -s "$tmp/outside.before" <(cd "$tmp/outside" && find . -printf '%p %s %m\n' | sort && md5sum secret) &&
		[[ $(stat -c %h "$tmp/outside/secret") == 1 ]] &&
		cmp -s "$tmp/etc.before" <(md5sum /etc/shadow /etc/passwd 2>/dev/null) && [[ ! -e /etc/vmm-escape ]] &&
		! grep -q '^VMMTEST share-escape-hardlink=made' "$s" &&
		[[ $(readlink "$d/g-abs") == /etc/shadow && -L $d/g-rel && -L $d/g-hard ]] &&
		pass "$name-escape-untouched" ||
		fail "$name-escape-untouched" "the host outside the share changed, or the guest's links are not plain links: $(ls -la "$tmp/outside" "$d" 2>&1 | grep -e secret -e 'g-' | tr '\n' ' ')"
	got=$(serial_value "$s" roshare-md5)
	[[ $got == "$(md5sum <"$tmp/roshare/ro.data" | cut -d' ' -f1)" ]] && grep -q '^VMMTEST roshare-refused=ok' "$s" &&
		cmp -s "$tmp/roshare.before" <(cd "$tmp/roshare" && find . -printf '%p %s %m\n' | sort && md5sum ro.data) &&
		pass "$name-readonly" || fail "$name-readonly" "the read-only share was not read, took a change, or changed"
}
# below PID NAME...: the first process below PID (its children, theirs, ...) whose name is one of
# NAME; empty if none.
below() {
	local top=$1
	shift
	ps -e -o pid=,ppid=,comm= | awk -v top="$top" -v names=" $* " '
		{ parent[$1] = $2; name[$1] = $3 }
		END {
			for (p in parent) {
				if (index(names, " " name[p] " ") == 0) continue
				for (q = parent[p]; q > 1; q = parent[q]) if (q == top) { print p; exit }
			}
		}'
}
# rss_kb PID: its resident memory (kB), from /proc.
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
# balloon_boot NAME MODE FLAVOUR: the balloon driven through the control socket, measured from the
# host. 1 GiB of RAM, a balloon with statistics every second and no free page reporting (which
# would give the freed memory back on its own), hvc0 on stdin for the host's go-aheads. The guest
# writes 768 MiB and frees them; the host inflates the balloon to 512 MiB and waits until the
# driver has given it all and vmm's RSS has fallen by 400 MiB (at most the plain boot limit);
# the guest shows its meminfo, which the host compares with the statistics; the host deflates to
# 0 and waits for the driver again; the guest writes 768 MiB again. Sets $status; leaves what it
# measured in $logs/NAME.balloon: RSS before and after inflating (kB), the actual size reached
# (MiB) each way, and the statistics.
balloon_boot() {
	local name=$1 mode=$2 f=$3 sock=$tmp/$1.api args=() extra= end full=0 rss=0 st actual
	case $mode in
	pci-legacy) args=(--legacy) extra=virtio_pci.force_legacy=1 ;;
	mmio) args=(--transport mmio) ;;
	esac
	t=$((device_factor * $(limit "$f")))
	mkfifo "$tmp/$name.in"
	stdin=$tmp/$name.in launch "$name" "$vmm" --kernel "$(kernel_of "$f")" --initrd "$(initrd_of "$f")" \
		--timeout "$t" --log-level info "${args[@]}" --memory 1G --serial "file=$logs/$name.serial" \
		--console stdio --balloon stats_period=1 --api-socket "$sock" \
		--cmdline "$base $extra vmmtest.dump=$((t * 4 / 5)) vmmtest=inflate,clock,powerbutton"
	exec 3>"$tmp/$name.in"
	local vpid
	vpid=$(below "$pid" vmm)
	wait_for "$logs/$name.serial" 'VMMTEST inflate-freed'
	full=$(rss_kb "$vpid")
	"$vmm" ctl "$sock" resize 512M
	end=$((SECONDS + $(limit "$f")))
	while kill -0 "$pid" 2>/dev/null && ((SECONDS < end)); do
		rss=$(rss_kb "$vpid")
		st=$("$vmm" ctl "$sock" balloon-stats)
		actual=$(sed -n 's/.*"actual_mib":\([0-9]*\).*/\1/p' <<<"$st")
		((${actual:-0} >= 512 && ${full:-0} - ${rss:-0} >= 409600)) && break
		sleep 0.5
	done
	echo "rss ${full:-0} ${rss:-0} inflated ${actual:-0}" >"$logs/$name.balloon"
	put 3 'inflated\n'
	wait_for "$logs/$name.serial" 'VMMTEST meminfo'
	# The statistics the driver sends after that (every second): the next two reports.
	sleep 2.5
	echo "stats $("$vmm" ctl "$sock" balloon-stats)" >>"$logs/$name.balloon"
	"$vmm" ctl "$sock" resize 0
	end=$((SECONDS + $(limit "$f")))
	while kill -0 "$pid" 2>/dev/null && ((SECONDS < end)); do
		st=$("$vmm" ctl "$sock" balloon-stats)
		actual=$(sed -n 's/.*"actual_mib":\([0-9]*\).*/\1/p' <<<"$st")
		[[ ${actual:-1} == 0 ]] && break
		sleep 0.5
	done
	echo "deflated ${actual:-?}" >>"$logs/$name.balloon"
	put 3 'deflated\n'
	# vm.pause for 2 s, timed from the host: from the moment it sees clock-ready to
	# the moment it sees clock-after, and how long the VM was paused.
	wait_for "$logs/$name.serial" 'VMMTEST clock-ready'
	local t0 t1 t2 t3
	t0=$(date +%s.%N)
	"$vmm" ctl "$sock" pause
	t1=$(date +%s.%N)
	sleep 2
	t2=$(date +%s.%N)
	"$vmm" ctl "$sock" resume
	put 3 'go\n'
	wait_for "$logs/$name.serial" 'VMMTEST clock-after'
	t3=$(date +%s.%N)
	awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" 'BEGIN { printf "clock host-seen %.3f paused %.3f\n", d - a, c - b }' \
		>>"$logs/$name.balloon"
	"$vmm" ctl "$sock" info >"$logs/$name.info"
	# vm.power-button: acpid in the guest powers it off.
	wait_for "$logs/$name.serial" 'VMMTEST powerbutton-ready'
	"$vmm" ctl "$sock" power-button
	finish "$name"
	exec 3>&-
}
# poison_boot NAME FLAVOUR: free page reporting for a guest that poisons its free pages
# (page_poison=1). Its driver negotiates PAGE_POISON with poison_val 0xaa, so vmm must keep the
# pages it is told are free: a discarded page reads back as zeros, and the guest, checking the
# poison as it allocates the page again, would log "pagealloc: memory corruption". The guest
# writes 512 MiB to a tmpfs and frees them, twice; after the first time the host waits until
# the guest has reported at least 400 MiB, and checks that vmm's RSS has not fallen by 100 MiB.
poison_boot() {
	local name=$1 f=$2 sock=$tmp/$1.api vpid full=0 rss=0 reported=0 end info feat
	t=$((device_factor * $(limit "$f")))
	mkfifo "$tmp/$name.in"
	stdin=$tmp/$name.in launch "$name" "$vmm" --kernel "$(kernel_of "$f")" --initrd "$(initrd_of "$f")" \
		--timeout "$t" --log-level info --memory 1G --serial "file=$logs/$name.serial" \
		--console stdio --balloon free_page_reporting=on --api-socket "$sock" \
		--cmdline "$base page_poison=1 vmmtest.dump=$((t * 4 / 5)) vmmtest=balloon,balloon,poweroff"
	exec 3>"$tmp/$name.in"
	vpid=$(below "$pid" vmm)
	wait_for "$logs/$name.serial" 'VMMTEST balloon-filled'
	full=$(rss_kb "$vpid")
	put 3 'filled\n'
	wait_for "$logs/$name.serial" 'VMMTEST balloon-freed'
	end=$((SECONDS + $(limit "$f")))
	while kill -0 "$pid" 2>/dev/null && ((SECONDS < end && reported < 102400)); do
		reported=$("$vmm" ctl "$sock" counters | sed -n 's/.*"reported_pages":\([0-9]*\).*/\1/p')
		reported=${reported:-0}
		sleep 0.5
	done
	rss=$(rss_kb "$vpid")
	info=$("$vmm" ctl "$sock" info)
	feat=$(sed -n 's/.*"balloon0":{[^}]*"driver_features":"\(0x[0-9a-f]*\)".*/\1/p' <<<"$info")
	put 3 'freed\n'
	wait_for "$logs/$name.serial" 'VMMTEST balloon-filled'
	put 3 'filled\n'
	wait_for "$logs/$name.serial" 'VMMTEST balloon-freed'
	put 3 'freed\n'
	finish "$name"
	exec 3>&-
	[[ $status == 0 ]] && pass "$name-exit" || fail "$name-exit" "$(why "$name")"
	((reported >= 102400 && ${feat:-0} >> 4 & 1)) &&
		pass "$name-reported" || fail "$name-reported" "driver features ${feat:-?} (PAGE_POISON is bit 4); ${reported} pages reported"
	((${full:-0} - ${rss:-0} < 102400)) && pass "$name-kept" ||
		fail "$name-kept" "vmm's RSS ${full:-?} kB -> ${rss:-?} kB: poisoned pages were given back"
	! grep -q 'pagealloc: memory corruption' "$logs/$name.serial" && pass "$name-intact" ||
		fail "$name-intact" "the guest found its free pages' poison gone"
}
# oom_boot NAME FLAVOUR: DEFLATE_ON_OOM under real pressure. 1 GiB of RAM with a balloon of
# 768 MiB from the start (--balloon size=) and deflate_on_oom=on; the guest writes 256 MiB to a
# tmpfs, more than it has outside the balloon, and nothing may be killed: the driver deflates as
# the kernel runs out, and vmm counts the pages it gave back.
oom_boot() {
	local name=$1 f=$2 sock=$tmp/$1.api deflated actual end
	t=$((device_factor * $(limit "$f")))
	mkfifo "$tmp/$name.in"
	stdin=$tmp/$name.in launch "$name" "$vmm" --kernel "$(kernel_of "$f")" --initrd "$(initrd_of "$f")" \
		--timeout "$t" --log-level info --memory 1G --serial "file=$logs/$name.serial" \
		--console stdio --balloon size=768M,deflate_on_oom=on --api-socket "$sock" \
		--cmdline "$base vmmtest.dump=$((t * 4 / 5)) vmmtest=oom,poweroff"
	exec 3>"$tmp/$name.in"
	# The driver fills the balloon as it can; the guest writes once it holds 700 MiB.
	wait_for "$logs/$name.serial" 'VMMTEST oom-ready'
	end=$((SECONDS + $(limit "$f")))
	while kill -0 "$pid" 2>/dev/null && ((SECONDS < end)); do
		actual=$("$vmm" ctl "$sock" balloon-stats | sed -n 's/.*"actual_mib":\([0-9]*\).*/\1/p')
		((${actual:-0} >= 700)) && break
		sleep 0.5
	done
	put 3 'go\n'
	wait_for "$logs/$name.serial" 'VMMTEST oom-done'
	deflated=$("$vmm" ctl "$sock" counters | sed -n 's/.*"deflated_pages":\([0-9]*\).*/\1/p')
	put 3 'done\n'
	finish "$name"
	exec 3>&-
	[[ $status == 0 ]] && grep -q '^VMMTEST oom-written=ok' "$logs/$name.serial" &&
		! grep -q 'Out of memory: Killed' "$logs/$name.serial" && pass "$name-written" ||
		fail "$name-written" "$(why "$name"); the guest could not write 256 MiB, or something was killed"
	((${actual:-0} >= 700 && ${deflated:-0} >= 12800)) && pass "$name-deflated" ||
		fail "$name-deflated" "the balloon reached ${actual:-?} MiB; the driver gave back ${deflated:-?} pages, not 50 MiB"
}
# restart_boot NAME FLAVOUR: --on-reboot restart. The guest (2 vCPUs, a virtio disk and a virtio
# net on a tap) marks its disk and reboots; the same vmm restarts it, and the second boot finds
# the mark, writes and reads its disk and pings the host through the same tap, then powers off.
restart_boot() {
	local name=$1 f=$2 s
	t=$((device_factor * $(limit "$f")))
	mkimage "$tmp/vda.img" 64
	launch "$name" unshare --net tests/guest/nethost.sh "$tmp" 1 "$vmm" --kernel "$(kernel_of "$f")" \
		--initrd "$(initrd_of "$f")" --timeout "$t" --log-level info --cpus 2 --memory 512M \
		--disk "path=$tmp/vda.img" --net "tap=tap0,mac=$net_mac" --on-reboot restart \
		--cmdline "$base vmmtest.dump=$((t * 4 / 5)) vmmtest=restart=vda,disk=vda,net,poweroff"
	finish "$name"
	s=$logs/$name.log
	[[ $status == 0 ]] && pass "$name-exit" || fail "$name-exit" "$(why "$name")"
	[[ $(grep -c '^VMMTEST-READY' "$s") == 2 ]] && grep -q '^VMMTEST restart=first' "$s" &&
		grep -q '^VMMTEST restart=second' "$s" && grep -q 'restart: resetting the devices' "$s" &&
		pass "$name-twice" || fail "$name-twice" "the guest did not boot twice in one vmm"
	grep -q '^VMMTEST disk-vda-rw=ok' "$s" && grep -q '^VMMTEST net-ping=ok' "$s" &&
		pass "$name-devices" || fail "$name-devices" "the disk or the network did not work after the restart"
}
# vhost_missing WHAT: why WHAT (vsock, vhost-net) cannot be tested on this host; empty if it can.
# The nested harness loads both modules, so there a missing device is its failure, not a reason
# to skip (the caller fails the tests instead).
vhost_missing() {
	case $1 in
	vsock) [[ -c /dev/vhost-vsock ]] || echo "no /dev/vhost-vsock on this host (modprobe vhost_vsock)" ;;
	vhost-net) [[ -c /dev/vhost-net ]] || echo "no /dev/vhost-net on this host (modprobe vhost_net)" ;;
	esac
}
# vhost_threads PID: how many vhost workers serve PID: kernel threads named vhost-PID (Linux before
# 6.4) or threads of PID's own with that name (after).
vhost_threads() {
	cat /proc/[0-9]*/comm /proc/"$1"/task/*/comm 2>/dev/null | grep -c -x "vhost-$1"
}
# vhost_boot NAME MODE FLAVOUR VSOCK NET: the vhost devices, those of VSOCK and NET that are not
# empty (vhost_missing says which the host has): virtio-vsock (`--vsock cid=N`; on mmio from a config
# file's [vsock] instead) and virtio-net with vhost=on on a
# tap (queues=2 on pci), on the transport MODE names (device_boot's pci, pci-legacy, mmio). The
# guest runs the network steps as device_boot's do, then vsock.c: it listens on port 1234 for the
# host (socat's VSOCK-CONNECT), then connects to the host's port (VSOCK-LISTEN, CID 2); on each
# connection 64 MiB go one way and then 64 MiB the other. Meanwhile the host counts vmm's vhost
# workers and starts a second vmm with the same CID. Checks as it goes; sets $status.
vhost_boot() {
	local name=$1 mode=$2 f=$3 vsock=$4 net=$5 s=$logs/$1.serial args=() extra= queues=1 tx=nettx mtu=1500
	local item= cid hport lpid main main_launched vpid threads=0 want=0 steps=virtio v1=1 conf
	case $mode in
	pci) args=(--cpus 2) queues=2 tx=nettx2 ;;
	pci-legacy) args=(--legacy) extra=virtio_pci.force_legacy=1 v1=0 ;;
	pci-intx) args=(--legacy) extra=pci=nomsi ;; # INTx: every interrupt relayed by vmm (ISR)
	mmio) args=(--transport mmio) mtu=1400 item=,mtu=1400 ;;
	esac
	t=$((device_factor * $(limit "$f")))
	# A CID and a host port of the boot's own: both are global on the host, not per namespace.
	cid=$((100 + $(cksum <<<"$name" | cut -d' ' -f1) % 10000)) hport=$((20000 + cid))
	if [[ -n $net ]]; then
		args+=(--net "tap=tap0,mac=$net_mac,queues=$queues,vhost=on$item")
		steps+=,net,netrx,$tx,link
		want=$queues # one worker per queue pair's vhost-net
	fi
	if [[ -n $vsock ]]; then
		if [[ $mode == mmio ]]; then
			conf=$tmp/$name.conf
			printf '[vm]\nkernel = %s\n[vsock]\ncid = %s\n' "$(kernel_of "$f")" "$cid" >"$conf"
			args+=(--config "$conf")
		else
			args+=(--vsock "cid=$cid")
		fi
		steps+=,vsock-listen=1234:64,vsock-connect=2:$hport:64
		want=$((want + 1))
		rm -f "$tmp/vsock.h2g" "$tmp/vsock.g2h"
		timeout "$t" socat -t "$t" "VSOCK-LISTEN:$hport" - <"$tmp/data" >"$tmp/vsock.g2h" 2>"$logs/$name.listener" &
		lpid=$!
	fi
	rm -f "$tmp"/50*.md5
	local cmd=("$vmm" --kernel "$(kernel_of "$f")" --initrd "$(initrd_of "$f")" --timeout "$t" --log-level info
		"${args[@]}" --memory 512M --serial "file=$s"
		--cmdline "$base $extra vmmtest.dump=$((t * 4 / 5)) vmmtest=$steps,poweroff")
	if [[ -n $net ]]; then
		NET_MTU=$mtu launch "$name" unshare --net tests/guest/nethost.sh "$tmp" "$queues" "${cmd[@]}"
	else
		launch "$name" "${cmd[@]}"
	fi
	main=$pid main_launched=$launched
	# vmm's vhost workers, counted as soon as its devices are set up (the guest's first step after
	# the driver bound), so that a later step that fails does not hide them.
	if [[ -n $net ]]; then
		wait_for "$s" 'VMMTEST step=net '
	else
		wait_for "$s" 'VMMTEST step=vsock-listen'
	fi
	vpid=$(below "$pid" vmm)
	[[ -z $vpid ]] || threads=$(vhost_threads "$vpid")
	if [[ -n $net ]]; then
		wait_for "$s" 'VMMTEST link-ready'
		if kill -0 "$pid" 2>/dev/null; then
			nsenter --net="/proc/$vpid/ns/net" ip link set tap0 down
			wait_for "$s" 'VMMTEST link-down='
			nsenter --net="/proc/$vpid/ns/net" ip link set tap0 up
		fi
	fi
	if [[ -n $vsock ]]; then
		wait_for "$s" 'VMMTEST vsock-listening'
		# A second VM may not take a CID this one holds: one clear message, exit 2.
		if ! kill -0 "$pid" 2>/dev/null; then
			fail "$f-$mode-vsock-cid-in-use" "the first vmm ended before its guest listened"
		elif run "$name-cid-in-use" --kernel "$(kernel_of "$f")" --timeout 30 --vsock "cid=$cid" &&
			[[ $status == 2 && $(wc -l <"$logs/$name-cid-in-use.log") == 1 ]] &&
			grep -q "$cid" "$logs/$name-cid-in-use.log" && grep -qi 'in use' "$logs/$name-cid-in-use.log"; then
			pass "$f-$mode-vsock-cid-in-use"
		else
			fail "$f-$mode-vsock-cid-in-use" "exit status $status, expected 2 with one line that names CID $cid as in use: $(head -n 3 "$logs/$name-cid-in-use.log" | tr '\n' ' ')"
		fi
		pid=$main launched=$main_launched
		kill -0 "$pid" 2>/dev/null &&
			timeout "$t" socat -t "$t" - "VSOCK-CONNECT:$cid:1234" <"$tmp/data" >"$tmp/vsock.h2g" 2>"$logs/$name.connector"
	fi
	finish "$name"
	[[ -n $vsock ]] && { kill "$lpid" 2>/dev/null; wait "$lpid" 2>/dev/null; }
	[[ $status == 0 ]] && pass "$f-$mode-vhost-exit" || fail "$f-$mode-vhost-exit" "$(why "$name")"
	# vhost has no packed rings: a modern driver has VERSION_1 and split rings.
	[[ -z $net ]] || { grep -q "^VMMTEST virtio=0x0001:virtio_net:$v1:0\s*$" "$s" && pass "$f-$mode-net-vhost-bind" ||
		fail "$f-$mode-net-vhost-bind" "virtio_net did not bind with VERSION_1:RING_PACKED=$v1:0: $(grep 'VMMTEST virtio=' "$s" | tr '\n' ' ')"; }
	[[ -z $net ]] || net_check "$f-$mode-net-vhost" "$s" "$logs/$name.log" "$queues" "$mtu"
	# The data path is the kernel's: vmm has a vhost worker per vhost device (queue pair).
	((threads >= want)) && pass "$f-$mode-vhost-thread" ||
		fail "$f-$mode-vhost-thread" "$threads threads named vhost-$vpid while the guest ran, not $want"
	[[ -n $vsock ]] || return 0
	# vsock has no legacy interface (no transitional device ID): modern even beside --legacy.
	grep -q "^VMMTEST virtio=0x0013:vmw_vsock_virtio_transport:1:0\s*$" "$s" && pass "$f-$mode-vsock-bind" ||
		fail "$f-$mode-vsock-bind" "vmw_vsock_virtio_transport did not bind with VERSION_1:RING_PACKED=1:0: $(grep 'VMMTEST virtio=' "$s" | tr '\n' ' ')"
	[[ $(serial_value "$s" vsock-cid) == "$cid" ]] && pass "$f-$mode-vsock-cid" ||
		fail "$f-$mode-vsock-cid" "the guest's CID is $(serial_value "$s" vsock-cid), not $cid"
	# Each connection's lines, from the guest's listening (or connected) to its done.
	local h2g g2h
	h2g=$(sed -n '/^VMMTEST vsock-listening/,/^VMMTEST vsock-done/p' "$s" | tr -d '\r')
	g2h=$(sed -n '/^VMMTEST vsock-connected/,/^VMMTEST vsock-done/p' "$s" | tr -d '\r')
	vsock_check "$f-$mode-vsock-host-to-guest" "$h2g" "$tmp/vsock.h2g"
	vsock_check "$f-$mode-vsock-guest-to-host" "$g2h" "$tmp/vsock.g2h"
}
# vsock_check NAME LINES FILE: one vsock connection: the guest got the host's 64 MiB ($tmp/data)
# intact, and FILE, what the host got back, is the 64 MiB the guest says it sent.
vsock_check() {
	local rx tx got
	rx=$(sed -n 's/^VMMTEST vsock-rx-md5=//p' <<<"$2")
	tx=$(sed -n 's/^VMMTEST vsock-tx-md5=//p' <<<"$2")
	got=$(md5sum <"$3" 2>/dev/null | cut -c1-32)
	[[ $rx == "$net_md5" && -n $tx && $got == "$tx" && $(stat -c %s "$3") == $((64 << 20)) ]] && pass "$1" ||
		fail "$1" "guest received md5 ${rx:-none} (sent $net_md5); host received $(stat -c %s "$3" 2>/dev/null || echo no) bytes, md5 ${got:-none} (guest sent ${tx:-none})"
}
# balloon_check NAME: what balloon_boot measured, and what the guest saw.
balloon_check() {
	local name=$1 s=$logs/$1.serial b=$logs/$1.balloon full rss inflated m0 m1 m2 free avail
	read -r _ full rss _ inflated <"$b" 2>/dev/null
	[[ $status == 0 ]] && pass "$name-exit" || fail "$name-exit" "$(why "$name")"
	((${inflated:-0} >= 512 && ${full:-0} - ${rss:-0} >= 409600)) && pass "$name-inflate-rss" ||
		fail "$name-inflate-rss" "balloon at ${inflated:-?} MiB; vmm's RSS ${full:-?} kB -> ${rss:-?} kB, not 400 MiB less"
	m0=$(sed -n 's/^VMMTEST inflate-freed memtotal=\([0-9]*\).*/\1/p' "$s")
	m1=$(sed -n 's/^VMMTEST inflated memtotal=\([0-9]*\).*/\1/p' "$s")
	m2=$(sed -n 's/^VMMTEST deflated memtotal=\([0-9]*\).*/\1/p' "$s")
	((${m0:-0} - ${m1:-0} == 524288 && ${m2:-0} == ${m0:-0})) && pass "$name-memtotal" ||
		fail "$name-memtotal" "MemTotal ${m0:-?} kB, inflated ${m1:-?}, deflated ${m2:-?}: not 512 MiB less, then back"
	grep -q '^VMMTEST reused=ok' "$s" && grep -q '^deflated 0$' "$b" && pass "$name-deflate" ||
		fail "$name-deflate" "the balloon did not go back to 0 or the guest could not write 768 MiB again"
	# The pause as the guest saw it: on kvm-clock, or arm64's arch_sys_counter (vmm restores the
	# clock it saved at the pause, as QEMU does), the time the VM was paused is time that did not
	# pass for the guest, so it saw at least that much less than the host (less 0.5 s for what
	# the host's reading of the console adds). On x86's tsc clocksource the guest's time jumps
	# (docs/api.md): not checked.
	local seen paused up0 up1 src
	read -r _ _ seen _ paused < <(grep '^clock ' "$b")
	up0=$(sed -n 's/^VMMTEST clock-ready up=\([0-9.]*\) .*/\1/p' "$s")
	src=$(sed -n 's/^VMMTEST clock-ready .*source=\([a-z_-]*\).*/\1/p' "$s")
	up1=$(sed -n 's/^VMMTEST clock-after up=\([0-9.]*\).*/\1/p' "$s")
	if [[ $src != kvm-clock && $src != arch_sys_counter && -n $src ]]; then
		pass "$name-pause-clock" # the guest's clocksource is $src: nothing to compare
		echo "NOTE $name-pause-clock: the guest's clocksource is $src, not kvm-clock"
	elif [[ -n $up0 && -n $up1 && -n $seen && -n $paused ]] &&
		awk -v s="$seen" -v p="$paused" -v u0="$up0" -v u1="$up1" 'BEGIN { exit !(s - (u1 - u0) >= p - 0.5 && p >= 2) }'; then
		pass "$name-pause-clock"
	else
		fail "$name-pause-clock" "guest time ${up0:-?} -> ${up1:-?} s, host saw ${seen:-?} s with the VM paused ${paused:-?} s ($src)"
	fi
	# vm.info: what Linux's driver negotiated (VERSION_1, bit 32, on the modern interface only;
	# STATS_VQ, bit 1) and the status it set (DRIVER_OK, and FEATURES_OK where modern).
	local dev feat st want=15 v1=1
	[[ $name == *-pci-legacy-* ]] && want=7 v1=0
	dev=$(grep -o '"balloon0":{[^}]*}' "$logs/$name.info")
	feat=$(sed -n 's/.*"driver_features":"\(0x[0-9a-f]*\)".*/\1/p' <<<"$dev")
	st=$(sed -n 's/.*"status":\([0-9]*\).*/\1/p' <<<"$dev")
	[[ -n $feat && $st == "$want" ]] && (( (feat >> 32 & 1) == v1 && (feat >> 1 & 1) )) &&
		pass "$name-info-features" || fail "$name-info-features" "vm.info's balloon0: $dev"
	# (x86's poweroff is ACPI's S5; arm64's is PSCI's SYSTEM_OFF, a KVM system event)
	grep -q '^VMMTEST power-button=pressed' "$s" &&
		grep -q -E 'ACPI: guest powered off|system event shutdown' "$logs/$name.log" &&
		pass "$name-power-button" || fail "$name-power-button" "acpid did not power the guest off after vm.power-button"
	# Statistics against /proc/meminfo: the total exactly (both are the managed pages), free and
	# available within 32 MiB (the guest's own activity between the two).
	local total_kb free_kb avail_kb
	total_kb=$(sed -n 's/^VMMTEST meminfo.* MemTotal:\([0-9]*\) .*/\1/p' "$s")
	free_kb=$(sed -n 's/^VMMTEST meminfo.* MemFree:\([0-9]*\) .*/\1/p' "$s")
	avail_kb=$(sed -n 's/^VMMTEST meminfo.* MemAvailable:\([0-9]*\) .*/\1/p' "$s")
	st=$(sed -n 's/^stats //p' "$b")
	total=$(sed -n 's/.*"total_memory":\([0-9]*\).*/\1/p' <<<"$st")
	free=$(sed -n 's/.*"free_memory":\([0-9]*\).*/\1/p' <<<"$st")
	avail=$(sed -n 's/.*"available_memory":\([0-9]*\).*/\1/p' <<<"$st")
	d_free=$(( ${free:-0} / 1024 - ${free_kb:-0} )) d_avail=$(( ${avail:-0} / 1024 - ${avail_kb:-0} ))
	[[ -n $total && $((total / 1024)) == "$total_kb" ]] && ((d_free < 32768 && d_free > -32768 &&
		d_avail < 32768 && d_avail > -32768)) && pass "$name-stats" ||
		fail "$name-stats" "statistics $st; meminfo total ${total_kb:-?} free ${free_kb:-?} available ${avail_kb:-?} kB"
}
# qemu_cmd NAME MODE FLAVOUR CMDLINE: in cmd, the same boot under QEMU, for bench/hangs.sh (its
# A/B of how often boots hang): the same devices, on q35's virtio-pci (modern, packed rings, or
# transitional) or microvm's virtio-mmio (version 2 or 1), ended after $t s as vmm's --timeout
# would (124). QEMU gives hvc0 no terminal size, and has no queue-pair counters.
qemu_cmd() {
	local name=$1 mode=$2 f=$3 bus=pci machine=q35 cpus=1 p=,packed=on net= g=()
	case $mode in
	pci) cpus=2 ;;
	pci-legacy) p=,disable-legacy=off,disable-modern=off,packed=off ;;
	pci-intx) p=,disable-legacy=off,disable-modern=off,packed=on ;;
	mmio) bus=device machine=microvm g=(-global virtio-mmio.force-legacy=off) ;;
	mmio-v1) bus=device machine=microvm p= g=(-global virtio-mmio.force-legacy=on) ;;
	esac
	((queues > 1)) && net=,mq=on,vectors=$((2 * queues + 2))
	[[ $mtu != 1500 ]] && net+=,host_mtu=$mtu
	cmd=(timeout "$t" qemu-system-x86_64 -M $machine -enable-kvm -cpu host -m 1G -smp $cpus "${g[@]}"
		-nodefaults -no-user-config -display none -no-reboot -serial "file:$logs/$name.serial"
		-kernel "$guest/vmlinuz-$f" -initrd "$guest/initrd.img" -append "$4"
		-device "virtio-rng-$bus$p" -device "virtio-serial-$bus$p"
		-chardev stdio,id=hvc,signal=off -device virtconsole,chardev=hvc
		-drive "file=$tmp/vda.img,format=raw,if=none,id=vda,aio=io_uring,discard=unmap"
		-device "virtio-blk-$bus,drive=vda,serial=VMM-$mode$p"
		-drive "file=$tmp/vdb.img,format=raw,if=none,id=vdb,readonly=on" -device "virtio-blk-$bus,drive=vdb$p"
		-drive "file=$tmp/sda.img,format=raw,if=none,id=sda" -device "virtio-scsi-$bus$p" -device scsi-hd,drive=sda
		-netdev "tap,id=n0,ifname=tap0,script=no,downscript=no,vhost=off,queues=$queues"
		-device "virtio-net-$bus,netdev=n0,mac=$net_mac$net$p"
		-device "virtio-balloon-$bus,free-page-reporting=on,deflate-on-oom=on$p")
	[[ -z $port ]] || cmd+=(-chardev "socket,id=tp,path=$sock,server=on,wait=off"
		-device virtserialport,chardev=tp,name=test.port)
}
# device_check NAME MODE: what the guest said in a device_boot, and what the host saw.
device_check() {
	local name=$1 mode=$2 s=$logs/$1.serial v1=1:1 irq=msi other=intx queues=1 mtu=1500 want_queues q d
	case $mode in
	pci) queues=2 ;;
	pci-legacy) v1=0:0 ;;
	pci-intx) irq=intx other=msi ;;
	mmio) irq=intx other=msi mtu=1400 ;;
	mmio-v1) v1=0:0 irq=intx other=msi ;;
	esac
	# No MSI where the machine has none (arm64 with a GICv2: the arm64 group's no_msi).
	[[ -z ${no_msi:-} ]] || irq=intx other=msi
	[[ $status == 0 ]] && pass "$name-exit" || fail "$name-exit" "$(why "$name")"
	for d in 0x0001:virtio_net 0x0002:virtio_blk 0x0003:virtio_console 0x0004:virtio_rng 0x0005:virtio_balloon 0x0008:virtio_scsi; do
		grep -q "^VMMTEST virtio=$d:$v1\s*$" "$s" && pass "$name-bind-${d#*:}" ||
			fail "$name-bind-${d#*:}" "${d#*:} did not bind with VERSION_1:RING_PACKED=$v1: $(grep 'VMMTEST virtio=' "$s" | tr '\n' ' ')"
	done
	[[ $(report_file "$s" "virtio-$irq") -gt 0 && $(report_file "$s" "virtio-$other") == 0 ]] &&
		pass "$name-$irq" || fail "$name-$irq" "virtio interrupts: $(grep 'VMMTEST virtio-' "$s" | tr '\n' ' ')"
	grep -q 'needs reset' "$logs/$name.log" && fail "$name-no-reset" "a device needed reset" || pass "$name-no-reset"
	# virtio-rng and virtio-console
	grep -q '^VMMTEST rng-current=virtio_rng' "$s" && grep -q '^VMMTEST rng=fresh' "$s" &&
		pass "$name-rng" || fail "$name-rng" "/dev/hwrng did not give fresh bytes from virtio_rng"
	grep -q 'VMMTEST-HVC-OUT' "$logs/$name.log" && pass "$name-hvc-out" || fail "$name-hvc-out" "hvc0 output did not reach stdout"
	grep -q '^VMMTEST hvc-in=hvc-in-42' "$s" && pass "$name-hvc-in" || fail "$name-hvc-in" "typed line did not reach hvc0"
	if [[ $mode == pci || $mode == mmio-v1 ]]; then
		grep -q '^VMMTEST hvc-size=45x123' "$s" && pass "$name-hvc-size" ||
			fail "$name-hvc-size" "hvc0's size is not the terminal's 45x123: $(grep 'VMMTEST hvc-size' "$s")"
	fi
	if [[ $mode != mmio-v1 ]]; then
		grep -q 'VMMTEST-PORT-OUT' "$logs/$name.port-out" 2>/dev/null && pass "$name-port-out" ||
			fail "$name-port-out" "the named port's output did not reach the socket"
		grep -q '^VMMTEST port-in=port-in-42' "$s" && pass "$name-port-in" || fail "$name-port-in" "socket input did not reach the named port"
	fi
	# virtio-balloon: the 512 MiB the guest wrote and freed went back to the host (free page
	# reporting), as vmm's RSS shows.
	local full freed
	read -r full freed <"$logs/$name.balloon" 2>/dev/null
	grep -q '^VMMTEST balloon-host=freed' "$s" && ((${full:-0} - ${freed:-0} >= 409600)) &&
		pass "$name-balloon-reporting" ||
		fail "$name-balloon-reporting" "vmm's RSS went from ${full:-?} kB (512 MiB written) to ${freed:-?} kB (freed), not 400 MiB less"
	# virtio-blk and virtio-scsi
	for d in vda sda; do
		grep -q "^VMMTEST disk-$d-host=ok" "$s" && pass "$name-$d-host-data" || fail "$name-$d-host-data" "the host's data did not read back in the guest"
		grep -q "^VMMTEST disk-$d-rw=ok" "$s" && pass "$name-$d-rw" || fail "$name-$d-rw" "the guest's write did not read back"
		cmp -s <(dd if="$tmp/$d.img" bs=1M skip=8 count=4 2>/dev/null) <(yes GUESTDATA | head -c 4194304) &&
			pass "$name-$d-in-file" || fail "$name-$d-in-file" "the guest's write is not in $d.img"
	done
	grep -q "^VMMTEST disk-vda-serial=VMM-$mode" "$s" && pass "$name-vda-serial" || fail "$name-vda-serial" "no serial VMM-$mode in sysfs"
	# CONFIG_WCE: the driver's cache_type writes reach the device's writeback field, which keeps them
	grep -q '^VMMTEST disk-vda-cache=write through/write back' "$s" && pass "$name-vda-cache-type" ||
		fail "$name-vda-cache-type" "vda's cache did not switch to write-through and back: $(grep -h 'disk-vda-cache' "$s")"
	grep -q "^VMMTEST disk-vda-queues=$queues" "$s" && grep -q "^VMMTEST disk-sda-queues=$queues" "$s" &&
		pass "$name-disk-queues" || fail "$name-disk-queues" "expected $queues request queues per disk: $(grep -h 'queues=' "$s" | tr '\n' ' ')"
	grep -q '^VMMTEST rodisk-vdb-ro=1' "$s" && grep -q '^VMMTEST rodisk-vdb-refused=ok' "$s" &&
		cmp -s "$tmp/vdb.img" <(yes HOSTDATA | head -c 1048576; yes FILL | head -c 7340032) &&
		pass "$name-vdb-readonly" || fail "$name-vdb-readonly" "the read-only disk was not ro=1, took a write, or changed"
	local after
	after=$(stat -c %b "$tmp/vda.img")
	grep -q '^VMMTEST discard-vda=ok' "$s" && ((blocks - after >= 16384)) &&
		pass "$name-vda-discard" || fail "$name-vda-discard" "blkdiscard did not free 16 MiB in the image ($blocks -> $after blocks)"
	net_check "$name-net" "$s" "$logs/$name.log" "$queues" "$mtu" counters
}
# net_check LABEL SERIAL LOG QUEUES MTU [counters]: the network steps of a boot (net,
# netrx, nettx or nettx2, link), as checks named LABEL-*: eth0 comes up with QUEUES queue pairs,
# the MAC and MTU given, pings the host, follows tap0's link, and 64 MiB go each way intact. With
# "counters", also vmm's per-pair counters at exit (which a vhost device, whose frames never pass
# through vmm, does not have).
net_check() {
	local label=$1 s=$2 log=$3 queues=$4 mtu=$5 want_queues q port
	want_queues=
	for ((q = 0; q < queues; q++)); do want_queues+="rx-$q "; done
	for ((q = 0; q < queues; q++)); do want_queues+="tx-$q "; done
	grep -q "^VMMTEST net-queues=$want_queues\s*$" "$s" && pass "$label-queues" ||
		fail "$label-queues" "eth0's queues are not $want_queues: $(grep 'VMMTEST net-queues=' "$s")"
	grep -q "^VMMTEST net-mac=$net_mac\s*$" "$s" && pass "$label-mac" || fail "$label-mac" "eth0's address is not $net_mac"
	grep -q "^VMMTEST net-mtu=$mtu\s*$" "$s" && pass "$label-mtu" || fail "$label-mtu" "eth0's MTU is not $mtu"
	grep -q '^VMMTEST net-ping=ok' "$s" && pass "$label-ping" || fail "$label-ping" "the host did not answer ping"
	if [[ ${VMM_TEST_VMM:-vmm} != qemu ]]; then
		grep -q '^VMMTEST link-ready carrier=1' "$s" && grep -q '^VMMTEST link-down=0' "$s" &&
			grep -q '^VMMTEST link-up=1' "$s" && pass "$label-link" ||
			fail "$label-link" "eth0's carrier did not follow tap0 down and up: $(grep 'VMMTEST link-' "$s" | tr '\n' ' ')"
	fi
	grep -q "^VMMTEST net-rx-md5=$net_md5" "$s" && pass "$label-rx" ||
		fail "$label-rx" "the guest did not receive the host's 64 MiB intact: $(grep 'VMMTEST net-rx' "$s" | tr '\n' ' ')"
	for port in 5002 5003 5004; do
		[[ $port == 5002 && $queues == 1 || $port != 5002 && $queues != 1 ]] || continue
		[[ $(cat "$tmp/$port.md5" 2>/dev/null) == "$net_md5" ]] && pass "$label-tx-$port" ||
			fail "$label-tx-$port" "the host did not receive the guest's 64 MiB intact on port $port"
	done
	if ((queues > 1)) && [[ " ${*:6} " == *" counters "* ]]; then # vmm's counters at exit (info level): each pair carried frames both ways
		for q in 0 1; do
			local rx='' tx=''
			read -r rx tx < <(sed -n "s/^.*net0: pair $q: rx \([0-9]*\) packets.*, tx \([0-9]*\) packets.*/\1 \2/p" "$log")
			[[ ${rx:-0} -ge 100 && ${tx:-0} -ge 100 ]] && pass "$label-pair$q" ||
				fail "$label-pair$q" "pair $q carried too little: $(grep "net0: pair $q:" "$log")"
		done
	fi
}

bad() { # NAME MESSAGE-PATTERN ARGS...
	local name=bad-$1 pattern=$2
	shift 2
	run "$name" "$@"
	if [[ $status != 2 ]]; then
		fail "$name" "exit status $status, expected 2"
	elif [[ $(wc -l <"$logs/$name.log") != 1 ]] || ! grep -q -e "$pattern" "$logs/$name.log"; then
		fail "$name" "expected one line matching '$pattern'"
	else
		pass "$name"
	fi
}
# fw_virtio NAME CMDLINE ARGS...: the virtio firmware guest (firmware/virtio-test.c) with vmm's ARGS
# and an entropy device, a console whose port 0 writes to a file and a 1 MiB disk of HOSTDATA lines.
# It checks what it can see from inside and exits 0 after its four rounds (indirect descriptors and
# event index each off and on); then the host checks what only it sees: each round's line in the
# console's file, each round's sector N on the disk, and nothing else on the disk changed.
fw_virtio() {
	local name=fw-virtio-$1 cmd=$2 img=$tmp/fw-virtio-$1.img bad= r
	shift 2
	mkimage "$img" 1
	cp "$img" "$img.orig"
	expect "$name" 0 --kernel "$fwv" --timeout "$t" --cmdline "$cmd sectors=2048" --rng \
		--console "file=$logs/$name.hvc" --disk "path=$img" "$@"
	[[ $status == 0 ]] || return # the guest said which check failed; the rest would only repeat it
	grep -q '^virtio-test: all [0-9]* checks passed$' "$logs/$name.log" || bad+=" summary"
	for r in 1 2 3 4; do
		grep -q "^virtio-test round $r through the console: " "$logs/$name.hvc" 2>/dev/null ||
			bad+=" console-line-$r"
		dd if="$img" bs=512 skip=$r count=1 status=none | grep -aq "^virtio-test round $r: " ||
			bad+=" sector-$r"
	done
	cmp -s <(head -c 512 "$img") <(head -c 512 "$img.orig") || bad+=" sector-0-changed"
	cmp -s <(tail -c +$((5 * 512 + 1)) "$img") <(tail -c +$((5 * 512 + 1)) "$img.orig") ||
		bad+=" sectors-5-on-changed"
	[[ -z $bad ]] && pass "$name-host" || fail "$name-host" "the host does not see what the guest did:$bad"
}
kernel=$guest/vmlinuz
fw=$top/build/firmware/hello.elf
fwv=$top/build/firmware/virtio-test.elf

case $group in
basic)
# --- The guest side of virtio first: firmware/virtio/'s drivers on each transport mode and ring
# layout. Each boot is short (milliseconds on KVM, seconds nested), and a failure says which check
# failed (its exit status, and its last lines). ---------------------------------------------------
t=$min_limit
fw_virtio pci "transport=pci ring=split"
fw_virtio pci-packed "transport=pci ring=packed"
fw_virtio pci-legacy "transport=pci legacy=on ring=split" --legacy
fw_virtio pci-transitional "transport=pci legacy=on driver=modern ring=packed" --legacy
fw_virtio mmio "transport=mmio ring=split" --transport mmio
fw_virtio mmio-packed "transport=mmio ring=packed" --transport mmio
fw_virtio mmio-v1 "transport=mmio legacy=on ring=split" --transport mmio --legacy
	;;&
basic | calibrate)
# --- The reference boots: each kernel to init and poweroff, one vCPU, no devices. Every later
# limit follows from how long they took: "FLAVOUR SECONDS LIMIT" lines in calibration, and
# VMM_TEST_LIMITS's form in limits once every kernel has one. ------------------------------------
t=${VMM_TEST_BOOT_TIMEOUT:-$ref_limit}
limits=
for f in $flavours; do
	start=$EPOCHREALTIME
	expect "calibrate-$f" 0 --kernel "$guest/vmlinuz-$f" --initrd "$guest/initrd.img" --timeout "$t" \
		--log-level info --cmdline "$base vmmtest=poweroff"
	[[ $status == 0 ]] || continue
	read -r took l < <(calibrated "$start")
	echo "$f $took $l" >>"$logs/calibration"
	limits+=" $f=$l"
done
[[ $(wc -l <"$logs/calibration" 2>/dev/null) == $(wc -w <<<"$flavours") ]] && echo "$limits" >"$logs/limits"
	;;&
calibrate) ;;
basic)
# --- Bad input: one message and exit 2, before any guest runs. --------------------------------
t=$min_limit
truncate -s 200M "$tmp/big.img"
printf '[vm]\nkernel = %s\nbogus = 1\n' "$kernel" >"$tmp/unknown-key.conf"
printf '[vm]\nkernel = %s\nthis line is not a key\n' "$kernel" >"$tmp/malformed.conf"
printf '[vm]\nkernel = %s\ncpus = many\n' "$kernel" >"$tmp/bad-value.conf"
bad no-kernel '--kernel' --cpus 1
bad missing-kernel 'no-such-file' --kernel "$tmp/no-such-file"
bad kernel-is-dir 'not a regular file' --kernel "$tmp"
bad not-a-kernel 'not a kernel' --kernel "$top/README.md"
bad missing-initrd 'no-such-initrd' --kernel "$kernel" --initrd "$tmp/no-such-initrd"
bad initrd-too-big 'do not fit' --kernel "$kernel" --initrd "$tmp/big.img" --memory 128M
bad memory-too-small '--memory' --kernel "$kernel" --memory 1M
bad memory-malformed '--memory' --kernel "$kernel" --memory 12X
bad cpus-zero '--cpus' --kernel "$kernel" --cpus 0
bad cpus-too-many '--cpus' --kernel "$kernel" --cpus 100000
bad serial-file-dir 'no-such-dir/console.log' --kernel "$kernel" --serial "file=$tmp/no-such-dir/console.log"
bad unknown-option "unknown option '--frobnicate'" --kernel "$kernel" --frobnicate
bad missing-config 'nope.conf' --config "$tmp/nope.conf"
bad unknown-key 'unknown-key.conf:3' --config "$tmp/unknown-key.conf"
bad malformed-line 'malformed.conf:3' --config "$tmp/malformed.conf"
bad bad-config-value 'bad-value.conf:3' --config "$tmp/bad-value.conf"
bad transport "--transport 'usb'" --kernel "$kernel" --transport usb
bad console-mode "--console mode 'tty'" --kernel "$kernel" --console tty
bad console-both-stdio 'only one of them' --kernel "$kernel" --console stdio --serial stdio
bad rng-source 'no-such-source' --kernel "$kernel" --rng "source=$tmp/no-such-source"
bad console-socket 'no-such-dir/port.sock' --kernel "$kernel" --console "name=p,socket=$tmp/no-such-dir/port.sock"
bad console-file 'no-such-dir/hvc.log' --kernel "$kernel" --console "file=$tmp/no-such-dir/hvc.log"
bad disk-missing 'no-such.img' --kernel "$kernel" --disk "path=$tmp/no-such.img"
bad disk-dir '--disk path=' --kernel "$kernel" --disk "path=$tmp"
bad disk-no-path 'has no path' --kernel "$kernel" --disk readonly=on
bad scsi-missing 'no-such-lun.img' --kernel "$kernel" --scsi "path=$tmp/no-such-lun.img"
bad net-no-tap 'no network device nosuch0: make it with: ip tuntap add dev nosuch0 mode tap' --kernel "$kernel" --net tap=nosuch0
bad fs-missing "fs path=$tmp/no-such-dir: No such file" --kernel "$kernel" --fs "path=$tmp/no-such-dir,tag=x"
bad fs-no-tag 'number 1 has no tag=TAG' --kernel "$kernel" --fs "path=$tmp"
bad fs-same-tag 'number 1 and 2 have the same tag=x' --kernel "$kernel" --fs "path=$tmp,tag=x" --fs "path=$tmp,tag=x"
bad fs-tag-blank "tag.*a mount tag has no blanks" --kernel "$kernel" --fs "path=$tmp,tag=a b"
bad fs-proc "fs path=/proc: one of the kernel's own file systems" --kernel "$kernel" --fs path=/proc,tag=p
# Issue 20. vmm-no-kvm: vmm with /dev/null bound over /dev/kvm (in a mount namespace of its own),
# as on a host where KVM cannot be used: device backends are checked before vmm opens /dev/kvm.
# vmm-reader: vmm as a user who may not write a mode 0444 file; root may (and the nested guest
# runs these tests as root), so as root it runs as nobody (setpriv, as the user test below does).
cat >"$tmp/vmm-no-kvm" <<END
#!/bin/sh
exec unshare --mount sh -c 'mount --bind /dev/null /dev/kvm && exec "\$0" "\$@"' "$vmm" "\$@"
END
cat >"$tmp/vmm-reader" <<END
#!/bin/sh
[ "\$(id -u)" != 0 ] || exec setpriv --reuid 65534 --regid 65534 --clear-groups -- "$vmm" "\$@"
exec "$vmm" "\$@"
END
chmod +x "$tmp/vmm-no-kvm" "$tmp/vmm-reader"
: >"$tmp/empty-initrd"
printf '[vm]\nkernel = %s\n[disk]\npath = no-such-disk.img\n' "$kernel" >"$tmp/disk-path.conf"
printf '[vm]\nkernel = %s\ninitrd = no-such-initrd\n' "$fw" >"$tmp/initrd-none.conf"
truncate -s 1M "$tmp/twice.img" "$tmp/ro.img"
chmod 444 "$tmp/ro.img"
chmod 711 "$tmp"
bad empty-initrd 'empty-initrd: an empty file, not an initramfs' --kernel "$kernel" --initrd "$tmp/empty-initrd"
bad config-disk-path "disk-path.conf:4: path '.*/no-such-disk.img': No such file" --config "$tmp/disk-path.conf"
vmm=$tmp/vmm-no-kvm bad net-not-tap 'lo is another kind of network device, not a tap' --kernel "$kernel" --net tap=lo
vmm=$tmp/vmm-no-kvm bad disk-twice 'scsi path=.*twice.img: the same image as --disk path=.*twice.img, given twice' --kernel "$kernel" --disk "path=$tmp/twice.img" --scsi "path=$tmp/twice.img"
vmm=$tmp/vmm-reader bad disk-not-writable 'ro.img: Permission denied (it can be read: add readonly=on' --kernel "$fw" --disk "path=$tmp/ro.img"
vmm=$tmp/vmm-reader bad scsi-not-writable 'ro.img: Permission denied (it can be read: add readonly=on' --kernel "$fw" --scsi "path=$tmp/ro.img"
vmm=$tmp/vmm-no-kvm bad no-kvm-disk 'no-such.img: No such file' --kernel "$kernel" --disk "path=$tmp/no-such.img"
vmm=$tmp/vmm-no-kvm bad no-kvm-scsi 'no-such-lun.img: No such file' --kernel "$kernel" --scsi "path=$tmp/no-such-lun.img"
vmm=$tmp/vmm-no-kvm bad no-kvm-net 'no network device nosuch0' --kernel "$kernel" --net tap=nosuch0
vmm=$tmp/vmm-no-kvm bad no-kvm-rng 'no-such-source: No such file' --kernel "$kernel" --rng "source=$tmp/no-such-source"
vmm=$tmp/vmm-no-kvm bad no-kvm-console 'no-such-dir/hvc.log: No such file' --kernel "$kernel" --console "file=$tmp/no-such-dir/hvc.log"
vmm=$tmp/vmm-no-kvm bad no-kvm-fs 'empty-initrd: Not a directory\|empty-initrd: not a directory' --kernel "$kernel" --fs "path=$tmp/empty-initrd,tag=x"
# Issue 23's options: CIDs 0, 1 and 2 are not a guest's (2 is the host's), and vhost= is on or off.
printf '[vm]\nkernel = %s\n[vsock]\ncid = 1\n' "$kernel" >"$tmp/vsock-cid.conf"
bad vsock-cid-reserved 'cid' --kernel "$kernel" --vsock cid=2
bad vsock-config-cid 'vsock-cid.conf:4' --config "$tmp/vsock-cid.conf"
bad net-vhost-value 'vhost' --kernel "$kernel" --net tap=tap0,vhost=maybe
# vmm-no-vhost: vmm on a host without vhost: a /dev of its own (a mount namespace's) with kvm, null
# and net/tun only, and a tap0 (a network namespace's). What needs the kernel's vhost is refused with
# one line, exit 2, not left to a silent fallback; the same net without vhost=on boots.
cat >"$tmp/vmm-no-vhost" <<END
#!/bin/sh
exec unshare --mount --net sh -c 'mount --bind /dev $tmp/dev && mount -t tmpfs -o mode=755 dev /dev &&
	cp -a $tmp/dev/kvm $tmp/dev/null $tmp/dev/net /dev && ip tuntap add dev tap0 mode tap &&
	exec "\$0" "\$@"' "$vmm" "\$@"
END
chmod +x "$tmp/vmm-no-vhost"
mkdir "$tmp/dev"
vmm=$tmp/vmm-no-vhost bad no-vhost-net 'tap0: vhost=on: /dev/vhost-net: No such file or directory (load the module: modprobe vhost_net; or vhost=off)' --kernel "$fw" --net tap=tap0,vhost=on
vmm=$tmp/vmm-no-vhost bad no-vhost-vsock 'vsock cid=7: /dev/vhost-vsock: No such file or directory (load the module: modprobe vhost_vsock)' --kernel "$fw" --vsock cid=7
vmm=$tmp/vmm-no-vhost expect no-vhost-net-off 0 --kernel "$fw" --timeout "$t" --net tap=tap0

# --- The firmware test guest: the fastest boot there is, for what needs no Linux. ---------------
expect firmware 0 --kernel "$fw" --timeout "$t"
grep -q 'vmm firmware: hello' "$logs/firmware.log" && pass firmware-output || fail firmware-output "no greeting"
# vmm's stdout a socket, as under systemd's journal (socat's EXEC gives the program one end of a
# socketpair): the UART's bytes leave through send(), on the vCPU's thread.
socat -u EXEC:"$vmm --kernel $fw --timeout $t",stderr - >"$logs/firmware-stdout-socket.log" 2>&1
grep -q 'vmm firmware: hello' "$logs/firmware-stdout-socket.log" && pass firmware-stdout-socket ||
	fail firmware-stdout-socket "no greeting through a socket: $(tail -n 3 "$logs/firmware-stdout-socket.log" | tr '\n' ' ')"
expect serial-file 0 --kernel "$fw" --serial "file=$logs/serial-file.console"
grep -q 'vmm firmware: hello' "$logs/serial-file.console" && [[ ! -s $logs/serial-file.log ]] &&
	pass serial-file-output || fail serial-file-output "the console did not go (only) to the file"
# --serial stdio,log=FILE: the terminal (here a file) and the log get the same, all of it.
# (Ended by SIGTERM, which vmm does not log at its default level: stdout is the guest's alone.)
launch serial-log "$vmm" --kernel "$fw" --timeout "$t" --cmdline count --serial "stdio,log=$logs/serial-log.copy"
wait_for "$logs/serial-log.log" 'tick 3$'
kill -TERM -- -"$pid" 2>/dev/null
finish serial-log
[[ $status == 143 ]] && grep -q 'tick 3$' "$logs/serial-log.copy" &&
	cmp -s "$logs/serial-log.log" "$logs/serial-log.copy" && pass serial-log-same ||
	fail serial-log-same "the log is not what the terminal got ($(wc -c <"$logs/serial-log.log") and $(wc -c <"$logs/serial-log.copy" 2>/dev/null) bytes)"
# --serial pty: vmm says which pty, and the guest's output is there to read.
launch serial-pty "$vmm" --kernel "$fw" --timeout "$t" --cmdline count --serial pty
wait_for "$logs/serial-pty.log" 'serial: /dev/pts/'
pty=$(sed -n 's/.*serial: \(\/dev\/pts\/[0-9]*\).*/\1/p' "$logs/serial-pty.log")
got=$([[ -n $pty ]] && timeout 10 grep -m 1 -a -o 'tick [0-9]*' "$pty")
kill -TERM -- -"$pid" 2>/dev/null
finish serial-pty
[[ $got == tick* ]] && pass serial-pty || fail serial-pty "nothing read from '${pty:-no pty named}'"
expect serial-none 0 --kernel "$fw" --serial none
[[ ! -s $logs/serial-none.log ]] && pass serial-none-output || fail serial-none-output "output with --serial none"
# --initrd none drops the config file's initrd (one that does not exist).
expect initrd-none 0 --config "$tmp/initrd-none.conf" --initrd none --timeout "$t"
# The exit device: byte N to port 0xf4 or to MMIO 0xfef00000 is exit N; --timeout is 124.
expect exit-port 42 --kernel "$fw" --timeout "$t" --cmdline exit=42
expect exit-mmio 43 --kernel "$fw" --timeout "$t" --cmdline mmio=43 --cpus 2
# Its NMI panics the guest (pvpanic) and the guest says so after: its console still reaches the log.
expect timeout 124 --kernel "$fw" --timeout 2 --cmdline hang
grep -q 'vmm firmware: NMI' "$logs/timeout.log" && pass timeout-nmi ||
	fail timeout-nmi "the guest's report of the NMI sent when --timeout expired is not in the log (no NMI, or vmm stopped at its pvpanic)"
# A guest that dies is never a pass: a triple fault and a panic (pvpanic) have their own statuses.
expect triple-fault 121 --kernel "$fw" --timeout "$t" --cmdline triple
grep -q 'vcpu0: triple fault' "$logs/triple-fault.log" && grep -q 'vcpu0: rip ' "$logs/triple-fault.log" &&
	pass triple-fault-said || fail triple-fault-said "no triple fault with its registers in the log"
expect pvpanic 120 --kernel "$fw" --timeout "$t" --cmdline panic
grep -q 'pvpanic: the guest panicked' "$logs/pvpanic.log" && pass pvpanic-said ||
	fail pvpanic-said "the log does not say the guest panicked"
# --on-panic pause: the VM stays, paused, for a look through the control socket.
launch panic-pause "$vmm" --kernel "$fw" --timeout "$t" --cmdline panic --on-panic pause \
	--api-socket "$tmp/panic.sock"
wait_for "$logs/panic-pause.log" 'pausing it'
for _ in $(seq 100); do
	state=$("$vmm" ctl "$tmp/panic.sock" info 2>/dev/null | grep -o '"state":"[A-Za-z]*"')
	[[ $state == *Paused* ]] && break
	sleep 0.1
done
"$vmm" ctl "$tmp/panic.sock" shutdown
finish panic-pause
[[ $state == *Paused* && $status == 143 ]] && pass panic-pause ||
	fail panic-pause "after the panic: ${state:-no state}; exit status $status after vm.shutdown (expected 143)"
# A second vmm on an image the first has open read-write is refused; the first keeps it. The
# first holds it from before its guest runs: once the firmware has said hello.
mkimage "$tmp/locked.img" 8
launch disk-lock-first "$vmm" --kernel "$fw" --timeout "$t" --cmdline hang --disk "path=$tmp/locked.img" \
	--balloon --api-socket "$tmp/api.sock"
first=$pid
wait_for "$logs/disk-lock-first.log" 'vmm firmware: hello'
# The sandbox as the host sees it, in that first vmm while its guest runs: every thread of it
# filtered (Seccomp 2: the main thread takes its filter last, just after starting the others;
# at least main, io, disk, vcpu0 and api), no_new_privs set, no capability left.
vpid=$(pgrep -P "$first" -x vmm | head -n 1)
sb_threads() { for s in /proc/"$vpid"/task/*/status; do sed -n 's/^Seccomp:\t//p' "$s"; done; }
for _ in $(seq 100); do [[ -n $vpid && $(sb_threads | sort -u) == 2 ]] && break; sleep 0.1; done
sb_status=$(grep -h -e '^Seccomp:' -e '^NoNewPrivs:' -e '^Cap[EPB][a-z]*:' "/proc/$vpid/status" 2>/dev/null | tr '\t\n' ' ')
sb_seen="threads $(sb_threads | wc -l), their Seccomp $(sb_threads | sort -u | tr '\n' ' '); $sb_status"
[[ $(sb_threads | sort -u) == 2 && $(sb_threads | wc -l) -ge 5 ]] &&
	grep -q '^NoNewPrivs:.1$' "/proc/$vpid/status" && grep -q '^CapEff:.0000000000000000$' "/proc/$vpid/status" &&
	grep -q '^CapPrm:.0000000000000000$' "/proc/$vpid/status" && pass sandbox-status ||
	fail sandbox-status "vmm $vpid: $sb_seen"
run disk-locked --kernel "$fw" --disk "path=$tmp/locked.img"
[[ $status == 2 ]] && grep -q 'locked' "$logs/disk-locked.log" && pass disk-locked ||
	fail disk-locked "exit status $status; a second vmm was not refused the image"
# The first vmm's control socket (docs/api.md): `vmm ctl`, and raw requests through socat.
api=$tmp/api.sock
api_raw() { printf "$1" | timeout 20 socat -t 10 - "UNIX-CONNECT:$api" 2>/dev/null | head -n 1; }
[[ $(stat -c %a "$api" 2>/dev/null) == 600 ]] && pass api-socket-mode ||
	fail api-socket-mode "the socket's mode is $(stat -c %a "$api" 2>&1), not 600"
out=$("$vmm" ctl "$api" ping) && [[ $out == *"\"pid\":$vpid"* ]] && pass api-ping ||
	fail api-ping "vmm ctl ping: $out"
out=$("$vmm" ctl "$api" info) && [[ $out == *'"blk0":{'* && $out == *'"balloon0":{'* ]] &&
	pass api-info || fail api-info "vmm ctl info: $out"
"$vmm" ctl "$api" resize 8M && out=$("$vmm" ctl "$api" balloon-stats) &&
	[[ $out == *'"target_pages":2048'* ]] && pass api-resize || fail api-resize "after resize 8M: $out"
# Bad requests: each a 4xx (or vmm ctl's 1 and 2), and the VM runs on: a client that says
# nothing holds no one up, the next ping is answered.
bad_api=
"$vmm" ctl "$api" resize 1T 2>/dev/null && bad_api+=" resize-1T"
"$vmm" ctl "$api" resize x 2>/dev/null; [[ $? == 2 ]] || bad_api+=" usage"
[[ $(api_raw 'PUT /api/v1/vm.resize HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n{"a":') == *' 400 '* ]] ||
	bad_api+=" malformed-json"
[[ $(api_raw 'GET /api/v1/nothing HTTP/1.1\r\nHost: x\r\n\r\n') == *' 404 '* ]] || bad_api+=" unknown-path"
[[ $(api_raw 'DELETE /api/v1/vm.info HTTP/1.1\r\nHost: x\r\n\r\n') == *' 405 '* ]] || bad_api+=" method"
[[ $(api_raw 'HELLO THERE\r\n\r\n') == *' 400 '* ]] || bad_api+=" not-http"
timeout 30 socat -u EXEC:"sleep 20" "UNIX-CONNECT:$api" & # connects, says nothing
sleep 0.5
"$vmm" ctl "$api" ping >/dev/null || bad_api+=" ping-after"
kill -0 "$first" 2>/dev/null || bad_api+=" vmm-gone"
[[ -z $bad_api ]] && pass api-bad-requests || fail api-bad-requests "wrong answers to:$bad_api"
# vm.shutdown: stops at once, as SIGTERM (143), and the socket goes with vmm.
"$vmm" ctl "$api" shutdown
pid=$first finish disk-lock-first
[[ $status == 143 && ! -e $api ]] && pass api-shutdown ||
	fail api-shutdown "exit status $status (expected 143); socket $([[ -e $api ]] && echo left || echo gone)"
# vm.pause and vm.resume on a guest that counts as fast as it can (its vCPU never idles): while
# paused, its console stays as it was and the vCPU thread's CPU time (utime + stime, from /proc)
# does not move; a second pause and a resume of a running VM are 409 (vmm ctl: 1); once resumed,
# it counts on. Then vm.reboot ends vmm as the guest's own reboot does (0).
launch pause "$vmm" --kernel "$fw" --timeout "$t" --cmdline count --serial "file=$logs/pause.serial" --log-level info \
	--api-socket "$tmp/pause.sock"
wait_for "$logs/pause.serial" 'tick 2$'
vpid=$(below "$pid" vmm)
vcpu_time() { awk '$2 == "(vcpu0)" { print $14 + $15 }' /proc/"$vpid"/task/*/stat 2>/dev/null; }
bad_pause=
"$vmm" ctl "$tmp/pause.sock" resume 2>/dev/null && bad_pause+=" resume-while-running"
"$vmm" ctl "$tmp/pause.sock" pause || bad_pause+=" pause"
[[ $("$vmm" ctl "$tmp/pause.sock" info) == *'"state":"Paused"'* ]] || bad_pause+=" state-paused"
"$vmm" ctl "$tmp/pause.sock" pause 2>/dev/null && bad_pause+=" pause-twice"
size0=$(stat -c %s "$logs/pause.serial") cpu0=$(vcpu_time)
sleep 1
size1=$(stat -c %s "$logs/pause.serial") cpu1=$(vcpu_time)
[[ $size1 == "$size0" ]] || bad_pause+=" console-moved($size0->$size1)"
[[ -n $cpu0 && $cpu1 == "$cpu0" ]] || bad_pause+=" vcpu-ran(${cpu0:-?}->${cpu1:-?})"
"$vmm" ctl "$tmp/pause.sock" resume || bad_pause+=" resume"
[[ $("$vmm" ctl "$tmp/pause.sock" info) == *'"state":"Running"'* ]] || bad_pause+=" state-running"
next=$(($(sed -n 's/^vmm firmware: tick \([0-9]*\)$/\1/p' "$logs/pause.serial" | tail -n 1) + 2))
wait_for "$logs/pause.serial" "tick $next\$"
grep -q "tick $next\$" "$logs/pause.serial" || bad_pause+=" no-count-after-resume"
[[ -z $bad_pause ]] && pass api-pause-resume || fail api-pause-resume "wrong:$bad_pause"
"$vmm" ctl "$tmp/pause.sock" reboot
finish pause
[[ $status == 0 ]] && grep -q 'api: vm.reboot' "$logs/pause.log" && pass api-reboot ||
	fail api-reboot "exit status $status after vm.reboot (expected 0, as a guest's reboot)"
# A call outside a thread's allowlist ends vmm with exit 1 and names the thread and the call
# (VMM_SANDBOX_SELFTEST: the vCPU makes one as it starts); --sandbox off says so, and runs.
launch sandbox-blocked env VMM_SANDBOX_SELFTEST=vcpu "$vmm" --kernel "$fw" --timeout "$t"
finish sandbox-blocked
[[ $status == 1 ]] && grep -q 'sandbox: thread vcpu0 made a system call its allowlist does not have: openat (257, ' \
	"$logs/sandbox-blocked.log" && pass sandbox-blocked ||
	fail sandbox-blocked "exit status $status, not 1 with the call named"
expect sandbox-off 7 --kernel "$fw" --timeout "$t" --cmdline exit=7 --sandbox off
grep -q 'warn: --sandbox off' "$logs/sandbox-off.log" && pass sandbox-off-said ||
	fail sandbox-off-said "--sandbox off did not say so"
# An ordinary user (nobody, in /dev/kvm's group) runs a guest with an image and a tap it owns
# (docs/security.md). The nested guest's /dev/kvm has no udev to open it to a group: done here.
[[ -n ${VMM_NESTED_TCG:-} ]] && chmod g+rw /dev/kvm && chmod 0666 /dev/net/tun # as udev has them
kvm_mode=$(stat -c %a /dev/kvm)
if [[ ${kvm_mode: -2:1} == 6 ]]; then
	mkimage "$tmp/user.img" 8
	chown 65534:65534 "$tmp/user.img"
	chmod 711 "$tmp"
	launch user unshare --net sh -c 'ip tuntap add dev tapu0 mode tap user 65534 vnet_hdr &&
		exec setpriv --reuid 65534 --regid 65534 --groups "$0" -- "$@"' "$(stat -c %g /dev/kvm)" \
		"$vmm" --kernel "$fw" --timeout "$t" --cmdline exit=5 --disk "path=$tmp/user.img" --net tap=tapu0
	finish user
	[[ $status == 5 ]] && pass user || fail user "exit status $status as uid 65534, expected 5"
else
	echo "SKIP user: /dev/kvm (mode $kvm_mode) is not open to its group here"
fi
	;;

pci-* | mmio-*)
# --- Every virtio device, on each transport mode, as Linux's own drivers see them. -------------
f=${group#*-}
head -c $((64 << 20)) /dev/urandom >"$tmp/data"
net_md5=$(md5sum <"$tmp/data" | cut -c1-32)
if [[ $group == pci-* ]]; then modes="pci pci-legacy pci-intx"; else modes="mmio mmio-v1"; fi
for mode in ${VMM_TEST_MODES:-$modes}; do
	[[ " $modes " == *" $mode "* ]] || continue
	device_boot "$f-$mode" "$mode" "$f"
	device_check "$f-$mode" "$mode"
done
# The balloon through the control socket: modern and legacy virtio-pci, virtio-mmio; one kernel.
if [[ $f == "${flavours%% *}" && -z ${VMM_TEST_RECORD:-} ]]; then
	for mode in $modes; do
		[[ $mode == pci || $mode == pci-legacy || $mode == mmio ]] || continue
		balloon_boot "$f-$mode-balloon" "$mode" "$f"
		balloon_check "$f-$mode-balloon"
	done
	[[ " $modes " == *" pci "* ]] && oom_boot "$f-pci-balloon-oom" "$f"
fi
# virtio-9p on pci, pci-legacy and mmio, where the kernel has it (the cloud kernel has no 9P).
if [[ $f == generic ]]; then
	for mode in $modes; do
		[[ $mode == pci || $mode == pci-legacy || $mode == mmio ]] && share_boot "$f-$mode-share" "$mode" "$f"
	done
fi
# vhost: virtio-vsock and vhost-net on pci, pci-legacy, pci-intx (no MSI-X: the kernel's
# interrupts all go through vmm, as on mmio, but on PCI's INTx line) and mmio, with the first
# kernel: the devices are the host kernel's and vmm's, the guest's drivers the same in both. (On
# the nested harness these boots are also where its CPU most often fails: the vhost workers'
# interrupts are IPIs to a CPU in guest mode, see docs/testing.md.) A host without /dev/vhost-*
# skips them (SKIP, with the reason); the nested harness must have them.
if [[ $f == "${flavours%% *}" && -z ${VMM_TEST_RECORD:-} ]]; then
	why_vsock=$(vhost_missing vsock) why_net=$(vhost_missing vhost-net) vs= vn=
	[[ -n $why_vsock ]] || vs=on
	[[ -n $why_net ]] || vn=on
	for mode in $modes; do
		[[ $mode == pci || $mode == pci-legacy || $mode == pci-intx || $mode == mmio ]] || continue
		for why in "$why_vsock" "$why_net"; do
			[[ -n $why ]] || continue
			if [[ -n ${VMM_NESTED_TCG:-} ]]; then
				fail "$f-$mode-vhost-device" "$why: the nested harness loads vhost_net and vhost_vsock"
			else
				echo "SKIP $f-$mode-vhost-*: $why"
			fi
		done
		[[ -n $vs$vn ]] && vhost_boot "$f-$mode-vhost" "$mode" "$f" "$vs" "$vn"
	done
fi
# --on-reboot restart, with each kernel.
[[ $group == pci-* && -z ${VMM_TEST_RECORD:-} ]] && restart_boot "$f-pci-restart" "$f"
if [[ $group == mmio-* && $f == "${flavours%% *}" && -z ${VMM_TEST_RECORD:-} ]]; then
	# Crash safety: once the guest's fsync has returned, SIGKILL loses nothing.
	name=$f-disk-sigkill t=$(limit "$f")
	mkimage "$tmp/crash.img" 32
	launch "$name" "$vmm" --kernel "$guest/vmlinuz-$f" --initrd "$guest/initrd.img" --timeout "$t" \
		--disk "path=$tmp/crash.img" --cmdline "$base vmmtest=sync=vda"
	wait_for "$logs/$name.log" '^VMMTEST synced'
	kill -KILL -- -"$pid" 2>/dev/null # timeout and vmm, its process group
	finish "$name"
	grep -q '^VMMTEST synced' "$logs/$name.log" &&
		cmp -s <(dd if="$tmp/crash.img" bs=1M skip=8 count=4 2>/dev/null) <(yes GUESTDATA | head -c 4194304) &&
		pass "$name" || fail "$name" "the data the guest synced is not in the image after SIGKILL"
fi
	;;

arm64)
# --- arm64: the cross-built vmm in an arm64 guest with KVM (run.sh's NESTED_ARCH=arm64), booting
# Debian's cloud arm64 kernel with the test initramfs built for arm64 (prepare.sh --arm64). The
# group's first boot is its reference: the later ones get limit_factor times its time. ----------
a64=$guest/arm64
base="console=ttyS0 quiet panic_print=0x40 cryptomgr.notests vmmtest.exitdev=0x09030000"
common=(--kernel "$a64/vmlinuz" --initrd "$a64/initrd.img" --log-level info)
t=$ref_limit
start=$EPOCHREALTIME
expect arm64-boot 0 "${common[@]}" --timeout "$t" --cmdline "$base vmmtest=poweroff"
read -r took t < <(calibrated "$start")
echo "run-all: a plain arm64 boot took $took s here; its boots get $t s, with devices $((device_factor * t)) s"
for n in 1 2; do
	before=$(host_now)
	expect "arm64-${n}cpu" 0 "${common[@]}" --timeout "$t" --cpus "$n" --cmdline "$base vmmtest=report,poweroff"
	after=$(host_now)
	got=$(report "arm64-${n}cpu" nproc)
	[[ $got == "$n" ]] && pass "arm64-${n}cpu-nproc" || fail "arm64-${n}cpu-nproc" "guest saw '$got' CPUs"
	got=$(report "arm64-${n}cpu" date) # the PL031's time
	[[ -n $got && $got -ge $((before - 5)) && $got -le $((after + 5)) ]] && pass "arm64-${n}cpu-date" ||
		fail "arm64-${n}cpu-date" "guest date '$got' not within [$before, $after]"
done
# The device tree as the guest got it: dtc reads it back without a warning.
expect arm64-dump-dtb 0 "${common[@]}" --timeout "$t" --dump-dtb "$tmp/vm.dtb" --cmdline "$base vmmtest=poweroff"
if dtc -I dtb -O dts -o "$tmp/vm.dts" "$tmp/vm.dtb" 2>"$logs/arm64-dtc.log" && [[ ! -s $logs/arm64-dtc.log ]] &&
	grep -q 'compatible = "pci-host-ecam-generic"' "$tmp/vm.dts"; then
	pass arm64-dtc
else
	fail arm64-dtc "dtc did not read --dump-dtb's file back cleanly: $(head -c 300 "$logs/arm64-dtc.log")"
fi
# The interrupt controller in the tree is the one KVM offers (kvmcheck gic, the nested harness's;
# on an arm64 machine without it, a GICv3 with an ITS is assumed): a GICv3 with the ITS and PCI's
# msi-map, or without an ITS no msi-map (PCI devices then have INTx only), or a GICv2.
gic=$(kvmcheck gic 2>/dev/null || echo "v3 its")
case $gic in
v3*) want=arm,gic-v3 ;;
*) want=arm,cortex-a15-gic ;;
esac
msi_map=$(grep -c 'msi-map' "$tmp/vm.dts" 2>/dev/null)
no_msi= want_map=1
[[ $gic == *its ]] || no_msi=1 want_map=0
if grep -q "compatible = \"$want\"" "$tmp/vm.dts" && [[ ${msi_map:-0} == "$want_map" ]]; then
	pass arm64-gic
else
	fail arm64-gic "KVM offers a GIC $gic; the tree has $(grep -o 'arm,gic-v3"\|arm,cortex-a15-gic"' "$tmp/vm.dts" | head -n 1) and ${msi_map:-no} msi-map"
fi
expect arm64-exit-device 42 "${common[@]}" --timeout "$t" --cmdline "$base vmmtest=devmem=42"
expect arm64-reboot 0 "${common[@]}" --timeout "$t" --cmdline "$base vmmtest=reboot" # --on-reboot exit
mkimage "$tmp/restart.img" 64
run arm64-restart "${common[@]}" --timeout "$t" --on-reboot restart --disk "path=$tmp/restart.img" \
	--serial "file=$logs/arm64-restart.serial" --cmdline "$base vmmtest=restart=vda,poweroff"
[[ $status == 0 ]] && grep -q 'VMMTEST restart=second' "$logs/arm64-restart.serial" && pass arm64-restart ||
	fail arm64-restart "$(why arm64-restart); the second boot's mark: $(grep -c 'VMMTEST restart=second' "$logs/arm64-restart.serial" 2>/dev/null)"
expect arm64-timeout 124 "${common[@]}" --timeout 5 --cmdline "$base vmmtest=hang"
# Every device of device_boot on each transport mode, with Linux's drivers, as on x86 (MSI-X
# through the ITS on pci); then virtio-9p and the vhost devices (vsock and vhost-net).
VMM_TEST_LIMITS+=" arm64=$t"
head -c $((64 << 20)) /dev/urandom >"$tmp/data"
net_md5=$(md5sum <"$tmp/data" | cut -c1-32)
for mode in pci pci-legacy mmio mmio-v1; do
	device_boot "arm64-$mode" "$mode" arm64
	device_check "arm64-$mode" "$mode"
done
# virtio-9p with Debian's generic arm64 kernel (the cloud one has no 9P), given twice the limit;
# a tree of 200 files (cp -a of x86's 2000 took 150 s there). The shares and the vhost devices on
# pci and mmio only: the legacy interface is the same code as on x86, where it is tested with them,
# and on arm64 with every other device (CI's time).
VMM_TEST_LIMITS+=" arm64-generic=$((2 * t))"
for mode in pci mmio; do
	share_boot "arm64-$mode-share" "$mode" arm64-generic 200
done
# The control socket: the balloon, vm.pause keeping the guest's clock (its virtual counter), and
# vm.power-button, the PL061's pin that gpio-keys reports as KEY_POWER (the cloud kernel has no
# gpio-keys: the generic one).
balloon_boot arm64-pci-balloon pci arm64-generic
balloon_check arm64-pci-balloon
# pvpanic's MMIO page: no Debian arm64 kernel has the driver (CONFIG_PVPANIC is off), so the guest
# writes the panic event there itself, as the exit device's test does.
expect arm64-pvpanic 120 "${common[@]}" --timeout "$t" \
	--cmdline "${base/exitdev=0x09030000/exitdev=0x09050000} vmmtest=devmem=1"
grep -q 'pvpanic: the guest panicked' "$logs/arm64-pvpanic.log" && pass arm64-pvpanic-said ||
	fail arm64-pvpanic-said "vmm's log does not say the guest panicked"
for mode in pci mmio; do
	why=$(vhost_missing vsock; vhost_missing vhost-net)
	[[ -z $why ]] || { fail "arm64-$mode-vhost-device" "$why: the nested harness loads vhost_net and vhost_vsock"; continue; }
	vhost_boot "arm64-$mode-vhost" "$mode" arm64 on on
done
	;;
*)
# --- Linux guests: the platform, for one kernel flavour, with 1 and 2 vCPUs. -------------------
f=$group t=$(limit "$f")
for n in $cpu_counts; do
	tn=$f-${n}cpu
	common=(--kernel "$guest/vmlinuz-$f" --initrd "$guest/initrd.img" --cpus "$n" --timeout "$t" --log-level info)
	# The last count's boot has RAM on both sides of the 32-bit hole [3 GiB, 4 GiB).
	mem=512M
	[[ $n == "${cpu_counts##* }" ]] && mem=3584M
	before=$(host_now)
	serial_input "$tn" "${common[@]}" --memory $mem --cmdline "$base vmmtest=report,shell"
	after=$(host_now)
	[[ $status == 0 && $(report "$tn" input) == 42 ]] && pass "$tn-serial-input" ||
		fail "$tn-serial-input" "$(why "$tn"); the typed command did not run or poweroff -f did not end vmm with 0"
	got=$(report "$tn" nproc)
	[[ $got == "$n" ]] && pass "$tn-nproc" || fail "$tn-nproc" "guest saw '${got}' CPUs"
	got=$(report "$tn" tsc-deadline)
	[[ $got == "$n" ]] && pass "$tn-tsc-deadline" || fail "$tn-tsc-deadline" "tsc_deadline_timer on '${got}' CPUs"
	got=$(report "$tn" date)
	if [[ -n $got && $got -ge $((before - 5)) && $got -le $((after + 5)) ]]; then
		pass "$tn-date"
	else
		fail "$tn-date" "guest date '$got' not within [$before, $after]"
	fi
	got=$(report "$tn" acpi-errors)
	if [[ $got == 0 ]] && ! grep -q -E 'ACPI( BIOS)? Error' "$logs/$tn.log"; then
		pass "$tn-no-acpi-errors"
	else
		fail "$tn-no-acpi-errors" "ACPI errors in the guest's log"
	fi
	if [[ $mem == 3584M ]]; then
		got=$(report "$tn" memtotal-mb)
		[[ -n $got && $got -gt 3300 ]] && pass "$tn-large-memory" || fail "$tn-large-memory" "MemTotal ${got:-?} MiB of 3584"
	fi
	expect "$tn-reboot" 0 "${common[@]}" --cmdline "$base vmmtest=reboot"
done
if [[ $f == cloud ]]; then
	# Every example config boots (with the test kernel's command line, which the command line
	# may override, as documented); they name build/guest/vmlinuz, the cloud kernel.
	for conf in "$top"/configs/*.conf; do
		name=config-$(basename "$conf" .conf)
		want=$(sed -n 's/^cpus *= *\([0-9]*\)/\1/p' "$conf")
		expect "$name" 0 --config "$conf" --timeout "$t" --cmdline "$base vmmtest=report,poweroff"
		got=$(report "$name" nproc)
		[[ $got == "${want:-1}" ]] && pass "$name-nproc" || fail "$name-nproc" "guest saw '$got' CPUs, config says ${want:-1}"
	done
fi
# A kernel panic (sysrq c) ends vmm at once with 120 through pvpanic, whatever panic= says.
expect "$f-panic" 120 "${common[@]}" --cmdline "$base vmmtest=panic"
grep -q 'pvpanic: the guest panicked' "$logs/$f-panic.log" && grep -q 'Kernel panic' "$logs/$f-panic.log" &&
	pass "$f-panic-said" || fail "$f-panic-said" "the log lacks the guest's panic or vmm's line about it"
# --on-panic restart: the panicked guest boots again in the same vmm, and powers off (0).
mkimage "$tmp/panic.img" 64
expect "$f-panic-restart" 0 "${common[@]}" --disk "path=$tmp/panic.img" --on-panic restart \
	--cmdline "$base vmmtest=panicrestart=vda,poweroff"
s=$logs/$f-panic-restart.log
grep -q '^VMMTEST restart=first' "$s" && grep -q 'pvpanic: the guest panicked: restarting it' "$s" &&
	grep -q '^VMMTEST restart=second' "$s" && pass "$f-panic-restart-twice" ||
	fail "$f-panic-restart-twice" "the guest did not panic and then boot again in one vmm"
# The kernel-CI flow (docs/usage.md): the host's / read-only as the guest's root over virtio-9p,
# a program of the host's run there, its output written to a writable share, its exit status
# vmm's. The generic kernel has 9P as modules only, so the test initramfs loads them and
# switch_roots (ciroot step); a kernel with 9P built in needs no initramfs at all. The guest also
# runs git status, tar, ls -lR and make -q on this source tree, as the host does, and builds and
# commits a small project in the writable share with the host's gcc, make and git. Timed beside
# the same kernel's plain initramfs boot.
if [[ $f == generic ]]; then
	rm -rf "$tmp/results"
	mkdir -p "$tmp/results/proj"
	printf '#include <stdio.h>\nint main(void) { puts("built in the guest"); return 0; }\n' >"$tmp/results/proj/hello.c"
	printf 'hello: hello.o\n\tcc -o $@ hello.o\nhello.o: hello.c\n\tcc -c -o $@ hello.c\n' >"$tmp/results/proj/Makefile"
	${CC:-cc} -O2 -static -o "$tmp/outb" tests/guest/outb.c
	# What a build tree needs of a file system, run on this tree by both sides: their answers
	# must be the same.
	cat >"$tmp/tree-tools" <<END
#!/bin/sh
PATH=/usr/sbin:/usr/bin:/sbin:/bin
cd $top || exit 1
echo "git-status \$(git status --porcelain 2>&1 | md5sum | cut -c1-32)"
echo "tar \$(tar -cf - Makefile vmm | tar -tvf - | sort | md5sum | cut -c1-32)"
echo "ls \$(ls -lR vmm | md5sum | cut -c1-32)"
make -q all >/dev/null 2>&1
echo "make-q \$?"
END
	chmod +x "$tmp/tree-tools"
	cat >"$tmp/ci-init" <<END
#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t 9p -o trans=virtio,version=9p2000.L results /mnt || exit 1
{ uname -r; sha256sum /etc/os-release; } >/mnt/out 2>&1
read -r t0 _ </proc/uptime
$tmp/tree-tools >/mnt/tree 2>&1
read -r t1 _ </proc/uptime
echo "\$t0 \$t1" >/mnt/tree-time
# Writing a build tree: git init, add and commit, make with gcc, the program run, git status.
cd /mnt/proj && export TMPDIR=/mnt HOME=/mnt &&
	git init -q && git add -A && git -c user.name=guest -c user.email=guest@vmm commit -qm guest &&
	make >/mnt/make.out 2>&1 && ./hello >run.out && git status --porcelain >/mnt/status.out
echo \$? >/mnt/proj.rc
cd /
read -r t2 _ </proc/uptime
echo "\$t1 \$t2" >/mnt/proj-time
sh -c 'exit 3'
rc=\$?
umount /mnt
exec $tmp/outb 0xf4 \$rc
END
	chmod +x "$tmp/ci-init"
	start=$EPOCHREALTIME
	expect "$f-ci-initramfs" 0 "${common[@]}" --cmdline "$base vmmtest=poweroff"
	plain=$(since "$start")
	start=$EPOCHREALTIME
	t=$((3 * t)) # a plain boot's limit three times over: the tools and the build read megabytes of programs
	expect "$f-ci-root" 3 "${common[@]}" --timeout $t --fs path=/,tag=root,readonly=on \
		--fs "path=$tmp/results,tag=results" --cmdline "$base vmmtest=ciroot=root vmmtest.init=$tmp/ci-init"
	t=$((t / 3))
	ci=$(since "$start")
	[[ $(head -n 1 "$tmp/results/out" 2>/dev/null) == "$(cat "$(dirname "$(readlink "$guest/vmlinuz-$f")")/version")" &&
		$(sed -n 2p "$tmp/results/out") == "$(sha256sum /etc/os-release)" ]] && pass "$f-ci-root-output" ||
		fail "$f-ci-root-output" "the command's output is not in the results share: $(head -c 300 "$tmp/results/out" 2>&1)"
	"$tmp/tree-tools" >"$tmp/tree.host" 2>&1
	[[ -s $tmp/tree.host ]] && cmp -s "$tmp/tree.host" "$tmp/results/tree" && pass "$f-ci-root-build-tree" ||
		fail "$f-ci-root-build-tree" "git status, tar, ls -lR and make -q on this tree answered otherwise in the guest: $(diff "$tmp/tree.host" "$tmp/results/tree" 2>&1 | tr '\n' ' ')"
	# The guest's commit and build, as the host's git, make and the host itself find them.
	p=$tmp/results/proj
	[[ $(cat "$tmp/results/proj.rc" 2>/dev/null) == 0 && $(git -C "$p" log --format=%s 2>&1) == guest ]] &&
		git -C "$p" fsck --strict --no-dangling >/dev/null 2>&1 && make -q -C "$p" hello &&
		[[ $("$p/hello") == "built in the guest" && $(cat "$p/run.out") == "built in the guest" ]] &&
		cmp -s "$tmp/results/status.out" <(git -C "$p" status --porcelain) &&
		pass "$f-ci-root-build-writes" ||
		fail "$f-ci-root-build-writes" "git and make in the share (exit status $(cat "$tmp/results/proj.rc" 2>&1)): $(tail -c 300 "$tmp/results/make.out" 2>&1 | tr '\n' ' '); host: $(git -C "$p" log --oneline 2>&1 | head -n 2 | tr '\n' ' ')"
	tools=$(awk '{ printf "%.1f", $2 - $1 }' "$tmp/results/tree-time" 2>/dev/null)
	build=$(awk '{ printf "%.1f", $2 - $1 }' "$tmp/results/proj-time" 2>/dev/null)
	echo "TIME $f-ci-root: $ci s with / over virtio-9p as the root, of which ${tools:-?} s for git status, tar, ls -lR and make -q on the source tree, ${build:-?} s for git commit and make in the writable share; $plain s for the initramfs boot"
	# busybox's init as PID 1 on a writable share as the root: its inittab runs a script that
	# writes into the root, then asks init to power off.
	r=$tmp/bbroot
	rm -rf "$r"
	mkdir -p "$r"/{bin,sbin,etc,dev,proc,sys,tmp}
	cp /bin/busybox "$r/bin/busybox"
	for a in sh cat mkdir mv ln rm sync poweroff; do ln -s busybox "$r/bin/$a"; done
	ln -s ../bin/busybox "$r/sbin/init"
	printf '::once:/etc/rc\n' >"$r/etc/inittab"
	printf '#!/bin/sh\nmkdir /var && echo "$(cat /proc/1/comm)" >/var/made && mv /var/made /booted &&\n\tln -s booted /booted-link && rm -r /var && sync\npoweroff\n' >"$r/etc/rc"
	chmod +x "$r/etc/rc"
	expect "$f-busybox-root" 0 "${common[@]}" --cpus 1 --fs "path=$r,tag=root" \
		--cmdline "$base vmmtest=rwroot=root vmmtest.init=/sbin/init"
	[[ $(cat "$r/booted" 2>/dev/null) == init && $(readlink "$r/booted-link") == booted && ! -e $r/var ]] &&
		pass "$f-busybox-root-writes" || fail "$f-busybox-root-writes" "busybox init's script did not write the root: $(ls -la "$r" 2>&1 | tr '\n' ' ')"
fi
# A share served by vmm as an ordinary user (nobody, in /dev/kvm's group): what the guest makes
# is nobody's on the host, its chown is accepted and changes nothing, and a file the host's root
# keeps to itself stays unread, even by the guest's root (docs/usage.md).
if [[ $f == generic ]]; then
	[[ -n ${VMM_NESTED_TCG:-} ]] && chmod g+rw /dev/kvm # as udev has it
	kvm_mode=$(stat -c %a /dev/kvm)
	if [[ ${kvm_mode: -2:1} == 6 ]]; then
		mkdir "$tmp/ushare"
		echo secret >"$tmp/ushare/root-only"
		chmod 600 "$tmp/ushare/root-only"
		chown 65534:65534 "$tmp/ushare"
		chmod 711 "$tmp"
		launch "$f-user-share" setpriv --reuid 65534 --regid 65534 --groups "$(stat -c %g /dev/kvm)" -- \
			"$vmm" "${common[@]}" --fs "path=$tmp/ushare,tag=u" \
			--cmdline "$base vmmtest=usershare=u,poweroff"
		finish "$f-user-share"
		s=$logs/$f-user-share.log
		[[ $status == 0 ]] && grep -q '^VMMTEST usershare-made=ok' "$s" &&
			[[ $(serial_value "$s" usershare-owner) == 65534 &&
				$(stat -c '%u:%g %a' "$tmp/ushare/made" 2>/dev/null) == "65534:65534 640" &&
				$(cat "$tmp/ushare/made") == guest && -d $tmp/ushare/dir ]] &&
			pass "$f-user-share" || fail "$f-user-share" "$(why "$f-user-share"); on the host: $(ls -ln "$tmp/ushare" 2>&1 | tr '\n' ' ')"
		grep -q '^VMMTEST usershare-denied=ok' "$s" && [[ $(cat "$tmp/ushare/root-only") == secret ]] &&
			pass "$f-user-share-denied" || fail "$f-user-share-denied" "the guest read a file of the host's root's"
	else
		echo "SKIP $f-user-share: /dev/kvm (mode $kvm_mode) is not open to its group here"
	fi
fi
if grep -qs '^CONFIG_PAGE_POISONING=y' "$(dirname "$(readlink "$guest/vmlinuz-$f")")"/boot/config-*; then
	poison_boot "$f-balloon-poison" "$f"
else
	echo "SKIP $f-balloon-poison: the $f kernel has no CONFIG_PAGE_POISONING"
fi
	;;
esac

echo "$passed $failed" >"$logs/count"
