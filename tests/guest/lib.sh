# shellcheck shell=bash
# Shared helpers for the test scripts; source it (bash).
#
#   mods_stage <kernel-moddir> <dest-dir> <module>...
#
# Copies the named modules and everything they depend on (per modules.dep of
# <kernel-moddir>, e.g. .../lib/modules/6.1.0-56-amd64) into <dest-dir>/lib/modules/
# as plain .ko files (xz/zstd/gzip are decompressed so busybox insmod can load them),
# and appends their file names to <dest-dir>/modules.order in load order:
# dependencies first, no duplicates. Modules built into the kernel are skipped;
# a name that is neither a module nor built in is an error. '-' and '_' are the
# same in module names, as for modprobe.

mods_stage() {
	local moddir=$1 dest=$2 rel name
	shift 2
	[[ -f $moddir/modules.dep ]] || { echo "mods_stage: no $moddir/modules.dep (run depmod)" >&2; return 1; }
	mkdir -p "$dest/lib/modules"
	touch "$dest/modules.order"
	# awk resolves the names to paths in load order; bash copies them.
	awk -v want="$*" '
		function norm(p) { sub(/.*\//, "", p); sub(/\.ko(\.[a-z]+)?$/, "", p); gsub(/-/, "_", p); return p }
		function visit(p,   n, i, d) {
			if (p in seen) return
			seen[p] = 1
			n = split(deps[p], d, " ")
			for (i = 1; i <= n; i++) visit(d[i])
			print p
		}
		FILENAME ~ /modules\.builtin$/ { builtin[norm($0)] = 1; next }
		{ p = $1; sub(/:$/, "", p); path[norm(p)] = p; $1 = ""; deps[p] = $0 }
		END {
			n = split(want, w, " ")
			for (i = 1; i <= n; i++) {
				m = norm(w[i])
				if (m in path) visit(path[m])
				else if (!(m in builtin)) { print "mods_stage: no module " w[i] > "/dev/stderr"; exit 1 }
			}
		}' "$moddir/modules.dep" "$moddir/modules.builtin" >"$dest/.mods_stage.list" || return 1
	while read -r rel; do
		name=$(norm_ko "$rel")
		if ! grep -qxF "$name" "$dest/modules.order"; then
			case $rel in
			*.xz) xz -dc "$moddir/$rel" ;;
			*.zst) zstd -qdc "$moddir/$rel" ;;
			*.gz) gzip -dc "$moddir/$rel" ;;
			*) cat "$moddir/$rel" ;;
			esac >"$dest/lib/modules/$name" || return 1
			echo "$name" >>"$dest/modules.order"
		fi
	done <"$dest/.mods_stage.list"
	rm -f "$dest/.mods_stage.list"
}

# kernel/fs/9p/9p.ko.xz -> 9p.ko
norm_ko() {
	local f=${1##*/}
	echo "${f%.ko*}.ko"
}
