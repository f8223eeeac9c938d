#!/bin/bash
# tests/guest/kernels.sh [generic|cloud|arm64|cloud-arm64]...  (default: generic cloud)
#
# Makes sure Debian's current kernel of each flavour (linux-image-amd64 = generic,
# linux-image-cloud-amd64 = cloud; linux-image-arm64:arm64 = arm64 and linux-image-cloud-arm64:arm64
# = cloud-arm64, for tests/nested/run-arm64.sh, which need `dpkg --add-architecture arm64`: only
# unpacked here, never installed) is downloaded and unpacked outside the source tree,
# in ${VMM_TEST_CACHE:-/var/cache/vmm-test}/kernels/<flavour>/ with
#   vmlinuz                  symlink to boot/vmlinuz-<version> (arm64: an uncompressed Image)
#   version                  the kernel release, e.g. 6.1.0-56-amd64
#   lib/modules/<version>/   the modules, with modules.dep (depmod is run here)
# and prints each flavour's directory. Once unpacked, a flavour is not looked at again;
# delete its directory to fetch the current one. Fetching needs root (apt-get download).
set -euo pipefail

cache=${VMM_TEST_CACHE:-/var/cache/vmm-test}/kernels
[[ $# -gt 0 ]] || set -- generic cloud

fetch() { # flavour meta-package
	local dir=$cache/$1 pkg tmp deb ver
	pkg=$(apt-cache depends "$2" | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
	if [[ -z $pkg ]]; then
		echo "kernels.sh: cannot resolve $2 (apt-get update?)" >&2
		[[ $2 != *:arm64 ]] || echo "kernels.sh: arm64 needs dpkg's arm64 architecture: tests/deps.sh --install" >&2
		return 1
	fi
	tmp=$(mktemp -d "$cache/.tmp.XXXXXX")
	# apt-get download writes into the current directory; as root it may warn about _apt.
	(cd "$tmp" && apt-get download -q=2 "$pkg" 2>&1) | { grep -v -e 'sandbox' -e '^$' >&2 || true; }
	deb=$(echo "$tmp"/*.deb)
	[[ -f $deb ]] || { rm -rf "$tmp"; echo "kernels.sh: apt-get download $pkg failed" >&2; return 1; }
	dpkg-deb -x "$deb" "$tmp/root"
	ver=$(cd "$tmp/root/boot" && echo vmlinuz-*)
	ver=${ver#vmlinuz-}
	[[ -d $tmp/root/lib/modules/$ver ]] || { rm -rf "$tmp"; echo "kernels.sh: $deb has no modules for $ver" >&2; return 1; }
	depmod -b "$tmp/root" "$ver"
	ln -s "boot/vmlinuz-$ver" "$tmp/root/vmlinuz"
	echo "$ver" >"$tmp/root/version"
	rm -rf "$dir"
	mv "$tmp/root" "$dir"
	rm -rf "$tmp"
}

for flavour; do
	case $flavour in
	generic) meta=linux-image-amd64 ;;
	cloud) meta=linux-image-cloud-amd64 ;;
	arm64) meta=linux-image-arm64:arm64 ;;
	cloud-arm64) meta=linux-image-cloud-arm64:arm64 ;;
	*) echo "usage: $0 [generic|cloud|arm64|cloud-arm64]..." >&2; exit 2 ;;
	esac
	if [[ ! -f $cache/$flavour/version || ! -e $cache/$flavour/vmlinuz ]]; then
		if [[ $(id -u) != 0 ]]; then
			echo "kernels.sh: the $flavour kernel is not in $cache yet; fetch it as root once:" >&2
			echo "  sudo VMM_TEST_CACHE=${VMM_TEST_CACHE:-/var/cache/vmm-test} $0 $flavour" >&2
			exit 1
		fi
		mkdir -p "$cache"
		# One fetch at a time; whoever waited re-checks before fetching again.
		exec 9>"$cache/.lock"
		flock 9
		[[ -f $cache/$flavour/version ]] || fetch "$flavour" "$meta"
		exec 9>&-
	fi
	echo "$cache/$flavour"
done
