#!/bin/bash
# tests/nested/arm64-root.sh: makes sure the arm64 root tree for the arm64 nested harness
# (tests/nested/run-arm64.sh) is unpacked, and prints its directory,
# ${VMM_TEST_CACHE:-/var/cache/vmm-test}/arm64/root-HASH (HASH: of the package list below).
#
# The tree is Debian's arm64 packages below, with their dependencies, unpacked by
# `mmdebstrap --variant=extract` (dpkg-deb -x of each .deb: no maintainer script runs, so
# nothing of arm64 has to run on this machine), plus /etc/passwd and /etc/group from
# base-passwd and awk's link to mawk. The nested guest mounts it read-only over 9p, under a tmpfs overlay, and runs
# the command chrooted there. Once unpacked, a tree is not looked at again; delete it to fetch
# the current packages. Unpacking needs root (as kernels.sh's fetch does).
set -euo pipefail

cache=${VMM_TEST_CACHE:-/var/cache/vmm-test}/arm64
packages=(
	libc6 dash bash coreutils bsdutils util-linux procps psmisc findutils grep sed mawk
	device-tree-compiler # dtc: the arm64 group reads --dump-dtb's file back
	diffutils base-passwd usr-is-merged # usr-is-merged: or usrmerge, which brings perl
	busybox-static cpio kmod xz-utils zstd # the test guests' initramfs, as on the host
	socat iproute2 netcat-openbsd          # the guest tests' host ends
	qemu-system-arm                        # bench/boot.sh's reference: qemu-system-aarch64
	# what vmm links (docs/architecture.md)
	libinih1 liburing2 libseccomp2 libcap-ng0 libmicrohttpd12 libjansson4 libfdt1
)
hash=$(printf '%s\n' "${packages[@]}" awk-link | sha256sum | cut -c1-12) # and the fix-ups below
dir=$cache/root-$hash
if [[ ! -f $dir/.done ]]; then
	if [[ $(id -u) != 0 ]]; then
		echo "arm64-root.sh: the arm64 root tree is not in $cache yet; unpack it as root once:" >&2
		echo "  sudo VMM_TEST_CACHE=${VMM_TEST_CACHE:-/var/cache/vmm-test} $0" >&2
		exit 1
	fi
	command -v mmdebstrap >/dev/null || {
		echo "arm64-root.sh: no mmdebstrap; install the arm64 group: tests/deps.sh --install" >&2
		exit 1
	}
	mkdir -p "$cache"
	# One unpack at a time; whoever waited re-checks before unpacking again.
	exec 9>"$cache/.lock"
	flock 9
	if [[ ! -f $dir/.done ]]; then
		# shellcheck disable=SC1091 # the host's
		suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
		tmp=$(mktemp -d "$cache/.tmp.XXXXXX")
		trap 'rm -rf "$tmp"' EXIT
		echo "arm64-root.sh: unpacking Debian $suite arm64 into $dir" >&2
		list=$(IFS=,; echo "${packages[*]}")
		mmdebstrap -q --variant=extract --architectures=arm64 --include="$list" "$suite" "$tmp/root" >&2
		for f in passwd group; do
			[[ -e $tmp/root/etc/$f ]] || cp "$tmp/root/usr/share/base-passwd/$f.master" "$tmp/root/etc/$f"
		done
		# awk, which the alternatives system would have linked (no maintainer script ran)
		[[ -e $tmp/root/usr/bin/awk ]] || ln -s mawk "$tmp/root/usr/bin/awk"
		: >"$tmp/root/.done"
		rm -rf "$dir"
		mv "$tmp/root" "$dir"
		find "$cache" -mindepth 1 -maxdepth 1 -name 'root-*' ! -name "${dir##*/}" -exec rm -rf {} +
	fi
	exec 9>&-
fi
echo "$dir"
