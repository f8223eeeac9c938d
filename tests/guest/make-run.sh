#!/bin/bash
# `make run`: boots a small default guest (Debian's cloud kernel and a busybox initramfs) to a
# shell on this terminal. Ctrl-A x or `poweroff -f` leaves.
set -euo pipefail
cd "$(dirname "$0")/../.."
tests/deps.sh --install
tests/guest/prepare.sh
exec env NESTED_TTY=1 tests/nested/run.sh -- build/vmm --kernel build/guest/vmlinuz --initrd build/guest/initrd.img \
	--cmdline "console=ttyS0 quiet" "$@"
