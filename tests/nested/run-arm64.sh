#!/bin/bash
# tests/nested/run-arm64.sh [--timeout SEC] -- CMD [ARG]...
#
# NESTED_ARCH=arm64 tests/nested/run.sh: runs CMD on arm64 with a working /dev/kvm, in a
# qemu-system-aarch64 TCG guest on a machine that is not arm64 with KVM. Same exit statuses and
# environment as run.sh (its header says what the arm64 guest is); for example
#   tests/nested/run-arm64.sh --timeout 300 -- kvmcheck
exec env NESTED_ARCH=arm64 "$(dirname "${BASH_SOURCE[0]}")/run.sh" "$@"
