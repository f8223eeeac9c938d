#!/bin/bash
# tests/deps.sh [--install]: the Debian packages that building and testing vmm need.
# Prints the missing ones as an apt-get line and exits 1; with --install, as root, installs them.
# On an x86 machine that includes the arm64 group (make cross-arm64 and run-all.sh's arm64 group in
# tests/nested/run-arm64.sh's nested guest): the cross compiler, the arm64 builds of the libraries
# vmm links, qemu-system-aarch64, mmdebstrap, and Debian's arm64 architecture in dpkg, so that
# apt-get download and mmdebstrap find the arm64 kernels and root tree (fetched into the test cache
# by tests/guest/kernels.sh and tests/nested/arm64-root.sh, never installed here).
# Why each is here: docs/architecture.md (libraries) and docs/testing.md (test tools).
set -euo pipefail

install='' arm64=''
for a; do
	case $a in
	--install) install=1 ;;
	*) echo "usage: $0 [--install]" >&2; exit 2 ;;
	esac
done
[[ $(dpkg --print-architecture) != amd64 ]] || arm64=1

packages=(
	gcc make libc6-dev linux-libc-dev # the compiler and the KVM API headers
	libinih-dev                       # config files
	liburing-dev                      # disk I/O: io_uring for the block devices
	libseccomp-dev libcap-ng-dev      # the sandbox: seccomp filters, dropping capabilities
	libmicrohttpd-dev libjansson-dev  # the control socket: HTTP server, JSON
	libfdt-dev                        # the arm64 device tree, written with libfdt
	libcmocka-dev                     # unit tests
	clang libclang-rt-dev             # make fuzz: libFuzzer (the runtime is only "recommended")
	acpica-tools                      # iasl: the unit tests disassemble the ACPI tables
	device-tree-compiler              # dtc: the unit tests decompile the arm64 device tree
	busybox-static cpio               # the test guests' initramfs
	kmod xz-utils zstd                # depmod and module decompression for test initramfs
	qemu-system-x86                   # nested harness without /dev/kvm, and the QEMU side of bench/
	socat                             # the guest tests talk to virtio console ports on unix sockets
	iproute2                          # ip tuntap and ss: the network tests' tap and listeners
)
[[ -z $arm64 ]] || packages+=(
	qemu-system-arm                             # qemu-system-aarch64: the arm64 nested harness
	gcc-aarch64-linux-gnu libc6-dev-arm64-cross # make cross-arm64; kvmcheck and the test programs
	libinih-dev:arm64 liburing-dev:arm64 libseccomp-dev:arm64 libcap-ng-dev:arm64 # ... and what
	libmicrohttpd-dev:arm64 libjansson-dev:arm64 libfdt1:arm64 # vmm links (libfdt-dev is one arch's)
	mmdebstrap                                  # unpacks the arm64 root tree
)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
foreign=
[[ -z $arm64 ]] || dpkg --print-foreign-architectures | grep -qx arm64 || foreign=1
[[ ${#missing[@]} == 0 && -z $foreign ]] && exit 0
if [[ -n $install && $(id -u) == 0 ]]; then
	if [[ -n $foreign ]]; then
		echo "deps: adding dpkg's arm64 architecture" >&2
		dpkg --add-architecture arm64
	fi
	apt-get update -qq
	if [[ ${#missing[@]} != 0 ]]; then
		echo "deps: installing ${missing[*]}" >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
	exit 0
fi
echo "deps: missing packages; install them with:" >&2
[[ -z $foreign ]] || echo "  sudo dpkg --add-architecture arm64 && sudo apt-get update" >&2
[[ ${#missing[@]} == 0 ]] || echo "  sudo apt-get install ${missing[*]}" >&2
exit 1
