/* vCPUs: one thread each running KVM_RUN and dispatching exits to the buses. */
#ifndef VMM_VCPU_H
#define VMM_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct vm;
struct boot_info;

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

struct vcpu {
	struct vm *vm;
	unsigned index; /* also the APIC ID */
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
	bool report;   /* --timeout expired: log where this vCPU is, vCPU 0 then takes an NMI */
	bool reported; /* it did: not again when it stops */
	struct vcpu_state *initial; /* for a restart, or NULL */
};

/* Creates vCPU `index`: CPUID, MSRs, FPU and LAPIC. Only vCPU 0 (the BSP) gets the boot
 * registers; the others wait in KVM for INIT/SIPI from the guest. 0 or -errno. */
int vcpu_create(struct vcpu *c, struct vm *vm, unsigned index, const struct boot_info *boot);
int vcpu_start(struct vcpu *c);
/* Keeps the vCPU's state as it is now (just created) for vcpu_reset. 0 or -errno. */
int vcpu_keep(struct vcpu *c);
/* A restart: puts back what vcpu_keep kept, the vCPU parked (main does it for each, so that no
 * vCPU runs before all are reset: an AP must not miss the new boot's SIPI). 0 or -1. */
int vcpu_reset(struct vcpu *c);
/* Makes a running or about-to-run KVM_RUN return promptly. */
void vcpu_kick(struct vcpu *c);
/* --timeout expired: the vCPU logs its registers, code and stack (info) as it is now, and vCPU 0
 * is then sent an NMI, which a Linux guest booted with unknown_nmi_panic answers with a panic
 * and its backtrace, even when it hangs with interrupts off (no sysrq could reach it then). */
void vcpu_report(struct vcpu *c);
void vcpu_join(struct vcpu *c);
void vcpu_destroy(struct vcpu *c);

/* The entry of leaf fn (and subleaf idx, where it counts), or NULL. */
struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx);
/* Fills the topology CPUID leaves for vCPU `index` of `count`. Exposed for unit tests. */
void cpuid_set_topology(struct kvm_cpuid2 *cpuid, unsigned index, unsigned count);

#endif
