/* The x86 VM's own state: the CPUID KVM offers, and the interrupt controllers as created (PIC,
 * IOAPIC, PIT), which a restart puts back. */
#ifndef VMM_X86_MACHINE_H
#define VMM_X86_MACHINE_H

#include <linux/kvm.h>

struct arch_vm {
	struct kvm_cpuid2 *cpuid;  /* KVM_GET_SUPPORTED_CPUID, patched per vCPU */
	struct kvm_irqchip chips[3]; /* PIC master, PIC slave, IOAPIC as created */
	struct kvm_pit_state2 pit;   /* the PIT as created */
};

#endif
