/* The x86 VM's own state: the CPUID KVM offers, and the interrupt controllers as created (PIC,
 * IOAPIC, PIT), which a restart puts back. */
#ifndef VMM_X86_MACHINE_H
#define VMM_X86_MACHINE_H

#include <linux/kvm.h>

struct arch_vm {
	struct kvm_cpuid2 *cpuid;  /* KVM_GET_SUPPORTED_CPUID, patched per vCPU */
	struct kvm_irqchip chips[3]; /* PIC master, PIC slave, IOAPIC as created */
	struct kvm_pit_state2 pit;   /* the PIT as created */
	struct kvm_clock_data clock; /* kvmclock at vm.pause */
};

/* x86's KVM requests by thread (sandbox.c). A vCPU's: the register dump of --timeout and of a
 * failure (with the translation of rip and rsp), --timeout's NMI, and vm.pause telling the
 * guest's watchdogs (kvmclock). A restart's, on main: the PIC, IOAPIC and PIT as created, and
 * each vCPU's initial state. */
#define ARCH_VCPU_IOCTLS KVM_GET_REGS, KVM_GET_SREGS, KVM_TRANSLATE, KVM_NMI, KVM_KVMCLOCK_CTRL
#define ARCH_RESTART_IOCTLS                                                                       \
	KVM_SET_IRQCHIP, KVM_SET_PIT2, KVM_SET_REGS, KVM_SET_SREGS, KVM_SET_FPU, KVM_SET_XCRS,    \
		KVM_SET_LAPIC, KVM_SET_MSRS, KVM_SET_VCPU_EVENTS, KVM_SET_MP_STATE
/* vm.pause's and vm.resume's (the API's thread; --on-panic pause's, main): kvmclock. */
#define ARCH_CLOCK_IOCTLS KVM_GET_CLOCK, KVM_SET_CLOCK

#endif
