/* vCPUs: one thread each running KVM_RUN and dispatching exits to the buses. */
#ifndef VMM_VCPU_H
#define VMM_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct vm;
struct boot_info;

struct vcpu {
	struct vm *vm;
	unsigned index; /* also the APIC ID */
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
	bool report;   /* --timeout expired: log where this vCPU is, vCPU 0 then takes an NMI */
	bool reported; /* it did: not again when it stops */
};

/* Creates vCPU `index`: CPUID, MSRs, FPU and LAPIC. Only vCPU 0 (the BSP) gets the boot
 * registers; the others wait in KVM for INIT/SIPI from the guest. 0 or -errno. */
int vcpu_create(struct vcpu *c, struct vm *vm, unsigned index, const struct boot_info *boot);
int vcpu_start(struct vcpu *c);
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
