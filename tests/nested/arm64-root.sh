#!/bin/bash
# tests/nested/arm64-root.sh [--build]: makes sure the arm64 root tree for the arm64 nested harness
# (tests/nested/run-arm64.sh) is unpacked, and prints its directory,
# ${VMM_TEST_CACHE:-/var/cache/vmm-test}/arm64/root-HASH (HASH: of the package list below).
# --build: the same with what building and testing vmm natively needs (gcc, make and the -dev
# packages tests/deps.sh installs on an arm64 machine), in build-HASH: the nested guest is then
# an arm64 machine on which `make check` runs as on real hardware (run.sh's NESTED_ARM64_BUILD=1).
#
# The tree is Debian's arm64 packages below, with their dependencies, unpacked by
# `mmdebstrap --variant=extract` (dpkg-deb -x of each .deb: no maintainer script runs, so
# nothing of arm64 has to run on this machine), plus /etc/passwd and /etc/group from
# base-passwd, and the links the alternatives system would have made: awk to mawk, cc to gcc. The
# nested guest mounts it read-only over 9p, under a tmpfs overlay, and runs the command chrooted
# there. Once unpacked, a tree is not looked at again; delete it to fetch the current packages.
# Unpacking needs root (as kernels.sh's fetch does).
set -euo pipefail

cache=${VMM_TEST_CACHE:-/var/cache/vmm-test}/arm64
name=root
fixups=(awk-link)
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
case ${1:-} in
'') ;;
--build)
	name=build
	fixups+=(cc-link)
	packages+=(
		gcc make libc6-dev linux-libc-dev libinih-dev liburing-dev libseccomp-dev libcap-ng-dev
		libmicrohttpd-dev libjansson-dev libfdt-dev libcmocka-dev
		gzip # mkinitrd.sh's (Essential on a real machine, so in no package's dependencies)
	) ;;
*) echo "usage: $0 [--build]" >&2; exit 2 ;;
esac
hash=$(printf '%s\n' "${packages[@]}" "${fixups[@]}" | sha256sum | cut -c1-12) # and the fix-ups below
dir=$cache/$name-$hash
if [[ ! -f $dir/.done ]]; then
	if [[ $(id -u) != 0 ]]; then
		echo "arm64-root.sh: the arm64 root tree is not in $cache yet; unpack it as root once:" >&2
		echo "  sudo VMM_TEST_CACHE=${VMM_TEST_CACHE:-/var/cache/vmm-test} $0 ${1:-}" >&2
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
		# what the alternatives system would have linked (no maintainer script ran)
		[[ -e $tmp/root/usr/bin/awk ]] || ln -s mawk "$tmp/root/usr/bin/awk"
		[[ ! -e $tmp/root/usr/bin/gcc || -e $tmp/root/usr/bin/cc ]] || ln -s gcc "$tmp/root/usr/bin/cc"
		: >"$tmp/root/.done"
		rm -rf "$dir"
		mv "$tmp/root" "$dir"
		find "$cache" -mindepth 1 -maxdepth 1 -name "$name-*" ! -name "${dir##*/}" -exec rm -rf {} +
	fi
	exec 9>&-
fi
echo "$dir"
