#!/bin/bash
# bench/hangs.sh [RUNS] [MODES]: how often the guest tests' boots hang or fail, under vmm and under
# QEMU, in the same nested guests: whose a hang is, by measurement.
#
# Each run is a nested guest of its own (tests/nested/run.sh; with a hardware /dev/kvm it is just
# this machine) in which the device boots of the guest tests (tests/guest/run-all.sh: every virtio
# device on one transport, with the same kernels, initramfs, steps and host ends) run once under
# build/vmm and once under QEMU (q35's virtio-pci, microvm's virtio-mmio: run-all.sh's qemu_cmd),
# for each kernel and each transport mode in MODES (default "pci mmio"), vmm first on odd runs and
# QEMU first on even ones, with limits calibrated at the start of each run. RUNS runs (default 10).
#
# Each boot is counted as ok (exit 0 after its last step), or by what went wrong and in which step
# (the last "VMMTEST step=" it began): hang (ended at its limit), panic (its kernel panicked),
# fail (another exit status), or one of run-all.sh's emulated-CPU signatures (fault). A run whose
# nested guest itself fails (run.sh's 125: its clock stopped, it panicked) counts against the VMM
# that was booting then, as "harness", and the run is tried once more. The table at the end gives
# each VMM's counts per kernel and mode; a guest that was stuck printed where (vmmtest.dump), and
# the logs of every boot that did not end ok are kept in build/guest/hangs/, with every boot's
# outcome so far (results).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
modes=${2:-pci mmio}
flavours=${VMM_TEST_FLAVOURS:-cloud generic}
keep=$PWD/build/guest/hangs

if [[ -z ${VMM_TEST_INSIDE:-} ]]; then
	runs=${1:-10}
	make -s build/vmm build/firmware/hello.elf
	tests/guest/prepare.sh $flavours
	rm -rf "$keep"
	mkdir -p "$keep"
	results=$keep/results # "VMM BOOT OUTCOME" lines, kept if the bench is cut short
	for ((i = 1; i <= runs; i++)); do
		for try in 1 2; do
			rc=0
			out=$(tests/nested/run.sh --timeout 7200 -- env VMM_TEST_INSIDE=1 BENCH_RUN=$i \
				VMM_TEST_FLAVOURS="$flavours" "$0" "" "$modes" 2>&1) || rc=$?
			sed -n 's/^RESULT //p' <<<"$out" >>"$results"
			echo "run $i/$runs: $(grep -c '^RESULT' <<<"$out") boots:$(sed -n 's/^RESULT [^ ]* [^ ]* \([^o].*\)/ \1/p' <<<"$out" | sort | uniq -c | tr -s ' \n' ' ')"
			[[ $rc == 125 ]] || break
			# The nested guest failed: the boot that was running then is the harness's.
			echo "$out" >"$keep/run$i-try$try.out"
			now=$(sed -n 's/^NOW //p' <<<"$out" | tail -n 1)
			why=$(grep '^nested: ' <<<"$out" | grep -v -e 'no /dev/kvm' -e 'not hardware KVM' | head -n 1)
			echo "${now:-? ?} harness:$(cut -c9-50 <<<"$why" | tr ' ' _)" >>"$results"
			echo "run $i/$runs: the nested guest failed during ${now:-?}: ${why:-?}"
		done
	done
	echo "hangs: $runs runs; each VMM's boots per kernel and mode, and what the ones not ok did"
	printf '%-6s %-14s %6s %6s  %s\n' vmm boot boots ok "not ok (outcome:step, count)"
	sort "$results" | awk '
		{ k = $1 " " $2; n[k]++; if ($3 == "ok") ok[k]++; else bad[k] = bad[k] " " $3 }
		END { for (k in n) { split(k, a, " "); printf "%-6s %-14s %6d %6d %s\n", a[1], a[2], n[k], ok[k], bad[k] } }' |
		sort | while read -r who boot n ok rest; do
		printf '%-6s %-14s %6s %6s  %s\n' "$who" "$boot" "$n" "$ok" \
			"$(tr ' ' '\n' <<<"$rest" | sed '/^$/d' | sort | uniq -c | awk '{ printf "%s %s, ", $2, $1 }' | sed 's/, $//')"
	done
	exit 0
fi

# Inside: one run. The limits first, as run-all.sh makes them.
rm -rf build/guest/logs/calibrate
VMM_TEST_GROUP=calibrate tests/guest/run-all.sh >/dev/null
read -r limits <build/guest/logs/calibrate/limits
# boots WHO: this kernel's device boots under WHO (vmm or qemu), one RESULT line each.
boots() {
	local who=$1 g name s step what
	for g in pci mmio; do
		[[ " $modes " == *" $g"* ]] || continue
		echo "NOW $who $g-$f"
		VMM_TEST_GROUP=$g-$f VMM_TEST_MODES="$modes" VMM_TEST_RECORD=1 VMM_TEST_LIMITS="$limits" \
			VMM_TEST_VMM=${who/vmm/} tests/guest/run-all.sh >/dev/null
		for s in build/guest/logs/$g-$f/*.status; do
			name=$(basename "$s" .status)
			step=$(grep -h -o 'VMMTEST step=[^ ]*' "build/guest/logs/$g-$f/$name".* 2>/dev/null | tail -n 1)
			step=${step#VMMTEST step=}
			case $(<"$s") in
			0) what=ok ;;
			124) what=hang:$step ;;
			*) what=fail$(<"$s"):$step ;;
			esac
			[[ -e ${s%.status}.panicked ]] && what=panic:$step
			[[ -s ${s%.status}.fault ]] && what="fault:$(tr ' ' _ <"${s%.status}.fault"):$step"
			echo "RESULT $who ${name#"$f"-}-$f $what"
			if [[ $what != ok ]]; then
				mkdir -p "$keep/run$BENCH_RUN-$who"
				cp "build/guest/logs/$g-$f/$name".* "$keep/run$BENCH_RUN-$who/"
			fi
		done
	done
}
for f in $flavours; do pair boots; done
