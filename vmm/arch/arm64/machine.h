/* The arm64 VM's own state: the in-kernel GIC (v3, with an ITS for MSIs where KVM has one; v2
 * where it has no v3) and what the vCPUs were initialised with. */
#ifndef VMM_ARM64_MACHINE_H
#define VMM_ARM64_MACHINE_H

#include <linux/kvm.h>
#include <stdbool.h>

struct arch_vm {
	int gic_fd;       /* the vGIC device */
	int its_fd;       /* its ITS, or -1 */
	bool gic_v2;      /* no GICv3 in this KVM */
	struct kvm_vcpu_init init; /* KVM_ARM_PREFERRED_TARGET, for every vCPU */
	uint64_t counter;          /* the guest's virtual counter at vm.pause */
};

/* arm64's KVM requests by thread (sandbox.c). A vCPU's: the register dump (KVM_GET_ONE_REG). A
 * restart's, on main: each vCPU initialised again and given its boot registers. */
#define ARCH_VCPU_IOCTLS    KVM_GET_ONE_REG, KVM_KVMCLOCK_CTRL
#define ARCH_RESTART_IOCTLS KVM_ARM_VCPU_INIT, KVM_SET_ONE_REG
/* vm.pause's and vm.resume's (the API's thread; --on-panic pause's, main): the virtual counter. */
#define ARCH_CLOCK_IOCTLS KVM_GET_ONE_REG, KVM_SET_ONE_REG

#endif
