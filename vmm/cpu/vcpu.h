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
	unsigned index; /* x86: also the APIC ID */
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
	bool report;   /* --timeout expired: log where this vCPU is (vcpu_report) */
	bool reported; /* it did: not again when it stops */
	struct vcpu_state *initial; /* the architecture's, for a restart (arch_vcpu_keep), or NULL */
};

/* Creates vCPU `index`, set up by the architecture (arch_vcpu_init). 0 or -errno. */
int vcpu_create(struct vcpu *c, struct vm *vm, unsigned index, const struct boot_info *boot);
int vcpu_start(struct vcpu *c);
/* Makes a running or about-to-run KVM_RUN return promptly. */
void vcpu_kick(struct vcpu *c);
/* --timeout expired: the vCPU logs its registers, code and stack (info) as it is now
 * (arch_vcpu_dump), then arch_vcpu_timeout (x86: vCPU 0 takes an NMI). */
void vcpu_report(struct vcpu *c);
void vcpu_join(struct vcpu *c);
void vcpu_destroy(struct vcpu *c);

#endif
