#!/bin/bash
# tests/deps.sh [--install]: the Debian packages that building and testing vmm need.
# Prints the missing ones as an apt-get line and exits 1; with --install, as root, installs them.
# Why each is here: docs/architecture.md (libraries) and docs/testing.md (test tools).
set -euo pipefail

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
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
[[ ${#missing[@]} == 0 ]] && exit 0
if [[ ${1:-} == --install && $(id -u) == 0 ]]; then
	echo "deps: installing ${missing[*]}" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	exit 0
fi
echo "deps: missing packages; install them with:" >&2
echo "  sudo apt-get install ${missing[*]}" >&2
exit 1
