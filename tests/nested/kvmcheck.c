/*
 * kvmcheck [EXITS]: proves that /dev/kvm runs an arm64 guest (default EXITS: 1000). It makes a VM
 * with one vCPU (KVM_ARM_PREFERRED_TARGET, KVM_ARM_VCPU_INIT), one page of guest memory at
 * 0x10000 holding a loop that stores a counter, starting at 0xdeadbeef, to 0x100000, where no
 * memory is, points the vCPU's PC at it and runs it: every store must come back as a
 * KVM_EXIT_MMIO write of 4 bytes at 0x100000 with the next value. It prints the mean round trip
 * of an exit and exits 0; 1 with a message at the first thing that is not so.
 *
 * kvmcheck gic: prints the interrupt controllers this KVM can give a VM, asked with
 * KVM_CREATE_DEVICE_TEST: "v3 its" (a GICv3 with an ITS, for MSIs), "v3", "v2" or "none". The
 * arm64 guest tests compare it with the device tree vmm wrote.
 *
 * Built static for arm64 by tests/nested/run.sh (NESTED_ARCH=arm64), which puts it in the
 * nested guest's root as /usr/local/bin/kvmcheck: `tests/nested/run-arm64.sh -- kvmcheck`.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define CODE_GPA 0x10000UL
#define MMIO_GPA 0x100000UL
#define FIRST	 0xdeadbeefU

/* Assembled with aarch64-linux-gnu-as. */
static const uint32_t code[] = {
    0xd297dde0, /* mov  x0, #0xbeef */
    0xf2bbd5a0, /* movk x0, #0xdead, lsl #16 */
    0xd2a00201, /* mov  x1, #0x100000 */
    0xb9000020, /* 1: str w0, [x1] */
    0x11000400, /* add  w0, w0, #1 */
    0x17fffffe, /* b    1b */
};

static int fail(const char *what)
{
	fprintf(stderr, "kvmcheck: %s: %s\n", what, strerror(errno));
	return 1;
}

/* can_create: whether VM can have a device of TYPE. */
static int can_create(int vm, uint32_t type)
{
	struct kvm_create_device dev = {.type = type, .flags = KVM_CREATE_DEVICE_TEST};

	return ioctl(vm, KVM_CREATE_DEVICE, &dev) == 0;
}

static int gic(int vm)
{
	if (can_create(vm, KVM_DEV_TYPE_ARM_VGIC_V3))
		puts(can_create(vm, KVM_DEV_TYPE_ARM_VGIC_ITS) ? "v3 its" : "v3");
	else
		puts(can_create(vm, KVM_DEV_TYPE_ARM_VGIC_V2) ? "v2" : "none");
	return 0;
}

int main(int argc, char **argv)
{
	int want_gic = argc > 1 && strcmp(argv[1], "gic") == 0;
	long exits = argc > 1 && !want_gic ? strtol(argv[1], NULL, 0) : 1000;
	long page = sysconf(_SC_PAGESIZE);
	struct kvm_vcpu_init init;
	struct kvm_run *run;
	struct timespec t0, t1;
	uint64_t pc = CODE_GPA;
	void *mem;
	int kvm, vm, vcpu, size;

	if (exits < 1) {
		fprintf(stderr, "usage: kvmcheck [EXITS] | kvmcheck gic\n");
		return 2;
	}
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		return fail("open /dev/kvm");
	if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
		return fail("KVM_GET_API_VERSION");
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		return fail("KVM_CREATE_VM");
	if (want_gic)
		return gic(vm);
	mem = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return fail("mmap");
	memcpy(mem, code, sizeof(code));
	struct kvm_userspace_memory_region region = {
	    .slot = 0,
	    .guest_phys_addr = CODE_GPA,
	    .memory_size = page,
	    .userspace_addr = (uintptr_t)mem,
	};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return fail("KVM_SET_USER_MEMORY_REGION");
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		return fail("KVM_CREATE_VCPU");
	size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size < (int)sizeof(*run))
		return fail("KVM_GET_VCPU_MMAP_SIZE");
	run = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		return fail("mmap kvm_run");
	if (ioctl(vm, KVM_ARM_PREFERRED_TARGET, &init) < 0)
		return fail("KVM_ARM_PREFERRED_TARGET");
	if (ioctl(vcpu, KVM_ARM_VCPU_INIT, &init) < 0)
		return fail("KVM_ARM_VCPU_INIT");
	/* After KVM_ARM_VCPU_INIT the vCPU is at EL1 with its MMU off: addresses are physical. */
	struct kvm_one_reg reg = {
	    .id =
		KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(regs.pc),
	    .addr = (uintptr_t)&pc,
	};
	if (ioctl(vcpu, KVM_SET_ONE_REG, &reg) < 0)
		return fail("KVM_SET_ONE_REG pc");

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < exits; i++) {
		uint32_t want = FIRST + (uint32_t)i, got;

		if (ioctl(vcpu, KVM_RUN, 0) < 0)
			return fail("KVM_RUN");
		if (run->exit_reason != KVM_EXIT_MMIO) {
			fprintf(stderr, "kvmcheck: exit %ld: reason %u, not KVM_EXIT_MMIO (%u)\n",
				i, run->exit_reason, KVM_EXIT_MMIO);
			return 1;
		}
		memcpy(&got, run->mmio.data, sizeof(got));
		if (run->mmio.phys_addr != MMIO_GPA || !run->mmio.is_write || run->mmio.len != 4 ||
		    got != want) {
			fprintf(stderr,
				"kvmcheck: exit %ld: MMIO %s of %u bytes at 0x%llx, value 0x%x;"
				" expected a write of 4 bytes at 0x%lx, value 0x%x\n",
				i, run->mmio.is_write ? "write" : "read", run->mmio.len,
				(unsigned long long)run->mmio.phys_addr, got, MMIO_GPA, want);
			return 1;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double us = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1e3 / exits;
	printf("kvmcheck: ok: %ld MMIO write exits at 0x%lx, values 0x%x.., target %u, %.1f us per "
	       "exit\n",
	       exits, MMIO_GPA, FIRST, init.target, us);
	return 0;
}
