# bench/lib.sh: what bench/*.sh share, sourced from the tree's top.
#
# BENCH_VMM_ARGS: more options for every vmm boot, word-split (e.g. "--sandbox off", to see what
# the sandbox costs). BENCH_FLAVOURS: the kernels a benchmark boots besides the cloud one.
# BENCH_ARCH: x86_64 (the default) or, where the script's $arches has it, arm64: the runs are then
# in the arm64 nested guest (tests/nested/run.sh's NESTED_ARCH=arm64), with build/arm64/vmm (make
# cross-arm64; build/vmm on an arm64 machine) and the arm64 guest (tests/guest/prepare.sh --arm64).
#
# A benchmark runs in two parts. Outside (VMM_TEST_INSIDE unset), bench_runs builds vmm and the test
# guest, then runs the script again once per run, each time in a nested guest of its own
# (tests/nested/run.sh; with a hardware /dev/kvm it just runs it), so that a nested guest that
# locks up for good (TCG does, now and then: status 125) costs one run, which is tried once more,
# and not the whole benchmark. Inside, the script does one run (a vmm boot and a QEMU boot, in the
# order pair gives) and prints "RESULT NAME METRIC VALUE" lines (NAME: vmm or qemu), and a
# "RUN ..." line for people.

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# bench_runs RUNS TIMEOUT SCRIPT: the outside part, TIMEOUT seconds per run; the results are left
# in the file $results as "NAME METRIC VALUE" lines.
bench_runs() {
	local runs=$1 timeout=$2 script=$3 arch=${BENCH_ARCH:-x86_64} i try rc out
	if [[ " ${arches:-x86_64} " != *" $arch "* ]]; then
		echo "$script: BENCH_ARCH=$arch: not one of ${arches:-x86_64}" >&2
		exit 2
	elif [[ $arch == arm64 ]]; then
		if [[ $(uname -m) == aarch64 ]]; then
			make -s build/vmm
		else
			make -s cross-arm64 # build/arm64/vmm
		fi
		tests/guest/prepare.sh --arm64
	else
		make -s build/vmm
		tests/guest/prepare.sh ${BENCH_FLAVOURS:-} # cloud, and these kernels too
	fi
	results=$(mktemp)
	trap 'rm -f "$results"' EXIT
	for ((i = 1; i <= runs; i++)); do
		for try in 1 2; do
			rc=0
			out=$(NESTED_ARCH=$arch tests/nested/run.sh --timeout "$timeout" -- env \
				VMM_TEST_INSIDE=1 BENCH_RUN=$i BENCH_ARCH="$arch" \
				BENCH_VMM_ARGS="${BENCH_VMM_ARGS:-}" "$script") || rc=$?
			[[ $rc == 125 && $try == 1 ]] || break
			echo "run $i/$runs: the nested guest failed; once more"
		done
		sed -n 's/^RESULT //p' <<<"$out" >>"$results"
		echo "run $i/$runs:$(sed -n 's/^RUN//p' <<<"$out")"
		[[ $rc == 0 ]] || echo "run $i/$runs: failed (status $rc)"
	done
}

# pair FN [A B]: inside, FN A then FN B (default vmm and qemu) on odd runs, the other way round
# on even ones, so that neither always comes first to a fresh nested guest.
pair() {
	local a=${2:-vmm} b=${3:-qemu}
	if ((${BENCH_RUN:-1} % 2)); then
		"$1" "$a"
		"$1" "$b"
	else
		"$1" "$b"
		"$1" "$a"
	fi
}

# figure NAME METRIC: the median of METRIC for NAME in $results; nothing if it has none.
figure() {
	local v
	v=$(awk -v n="$1" -v m="$2" '$1 == n && $2 == m { print $3 }' "$results")
	[[ -z $v ]] || median <<<"$v"
}

# row LABEL METRIC: for each pair A:B of names in $pairs (default vmm:qemu), the medians of METRIC
# for A and B and their ratio ("-" for a name without figures), with LABEL in a column
# $label_width wide.
row() {
	local p
	printf "%-${label_width}s" "$1"
	for p in ${pairs:-vmm:qemu}; do
		awk -v a="$(figure "${p%:*}" "$2")" -v b="$(figure "${p#*:}" "$2")" 'BEGIN {
			if (a == "") printf " %10s", "-"; else printf " %10.1f", a
			if (b == "") printf " %10s", "-"; else printf " %10.1f", b
			if (a == "" || b == "" || b <= 0) printf " %8s", "-"; else printf " %8.2f", a / b }'
	done
	echo
}

# header: the table's column heads, a pair's names with "_" as a blank.
header() {
	local p
	printf "%-${label_width}s" ""
	for p in ${pairs:-vmm:qemu}; do
		printf " %10s %10s %8s" "${p%:*}" "${p#*:}" "vmm/qemu"
	done | tr _ ' '
	echo
}
