/* x86 vCPUs: what a restart puts back, and the CPUID helpers (exposed for unit tests). */
#ifndef VMM_X86_CPU_H
#define VMM_X86_CPU_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#define VCPU_RESET_MSRS 20

/* A vCPU as vcpu_create left it: what a restart puts back. */
struct vcpu_state {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_fpu fpu;
	struct kvm_lapic_state lapic;
	struct kvm_mp_state mp;
	struct kvm_vcpu_events events;
	struct kvm_xcrs xcrs;
	bool has_xcrs;
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[VCPU_RESET_MSRS];
	} msrs;
};

/* The entry of leaf fn (and subleaf idx, where it counts), or NULL. */
struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx);
/* Fills the topology CPUID leaves for vCPU `index` of `count`. Exposed for unit tests. */
void cpuid_set_topology(struct kvm_cpuid2 *cpuid, unsigned index, unsigned count);

#endif
