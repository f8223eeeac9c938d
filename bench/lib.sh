# bench/lib.sh: what bench/*.sh share, sourced from the tree's top.
#
# BENCH_VMM_ARGS: more options for every vmm boot, word-split (e.g. "--sandbox off", to see what
# the sandbox costs). BENCH_FLAVOURS: the kernels a benchmark boots besides the cloud one.
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
	local runs=$1 timeout=$2 script=$3 i try rc out
	make -s build/vmm
	tests/guest/prepare.sh ${BENCH_FLAVOURS:-} # cloud, and these kernels too
	results=$(mktemp)
	trap 'rm -f "$results"' EXIT
	for ((i = 1; i <= runs; i++)); do
		for try in 1 2; do
			rc=0
			out=$(tests/nested/run.sh --timeout "$timeout" -- env VMM_TEST_INSIDE=1 BENCH_RUN=$i \
				BENCH_VMM_ARGS="${BENCH_VMM_ARGS:-}" "$script") || rc=$?
			[[ $rc == 125 && $try == 1 ]] || break
			echo "run $i/$runs: the nested guest failed; once more"
		done
		sed -n 's/^RESULT //p' <<<"$out" >>"$results"
		echo "run $i/$runs:$(sed -n 's/^RUN//p' <<<"$out")"
		[[ $rc == 0 ]] || echo "run $i/$runs: failed (status $rc)"
	done
}

# pair FN: inside, FN vmm then FN qemu on odd runs, the other way round on even ones, so that
# neither always comes first to a fresh nested guest.
pair() {
	if ((${BENCH_RUN:-1} % 2)); then
		"$1" vmm
		"$1" qemu
	else
		"$1" qemu
		"$1" vmm
	fi
}

# row LABEL METRIC: the medians of METRIC for vmm and QEMU in $results and their ratio, with LABEL
# in a column $label_width wide.
row() {
	local v q
	v=$(awk -v m="$2" '$1 == "vmm" && $2 == m { print $3 }' "$results" | median)
	q=$(awk -v m="$2" '$1 == "qemu" && $2 == m { print $3 }' "$results" | median)
	awk -v f="%-${label_width}s %10.1f %10.1f %8.2f\n" -v m="$1" -v a="$v" -v b="$q" \
		'BEGIN { printf f, m, a, b, (b > 0 ? a / b : 0) }'
}

# header: the table's column heads.
header() { printf "%-${label_width}s %10s %10s %8s\n" "" vmm qemu vmm/qemu; }
