/* What each architecture provides. Everything else in vmm (buses, virtio, backends, config, the
 * API, the sandbox, the vCPU loop) is shared; one architecture's directory, vmm/arch/<arch>/, is
 * built in, chosen by the compiler's target (the Makefile's ARCH). docs/architecture.md says what
 * is where. */
#ifndef VMM_ARCH_H
#define VMM_ARCH_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#if defined(__x86_64__)
#include "arch/x86/layout.h"     /* the memory map, the boot path (boot_load) */
#include "arch/x86/machine.h"  /* struct arch_vm */
#include "arch/x86/platform.h" /* the platform devices */
#define ARCH_IRQ_ROUTES (16 + VM_IOAPIC_PINS) /* arch_irq_routes' most */
#else
#error "vmm is built for x86-64 only so far (arm64: issue 24)"
#endif

struct vm;
struct vcpu;
struct boot_info;

/* KVM capabilities the architecture needs beyond the shared list (vm_open_kvm checks both). */
struct vm_cap {
	int cap;
	const char *name;
};
extern const struct vm_cap arch_caps[];
extern const unsigned arch_nr_caps;

/* Right after KVM_CREATE_VM: the in-kernel interrupt controllers and whatever else the
 * architecture's VM needs before memory and vCPUs. 0 or -errno (logged). */
int arch_vm_init(struct vm *vm);
/* A restart: the interrupt controllers as arch_vm_init left them. */
void arch_vm_reset(struct vm *vm);
void arch_vm_destroy(struct vm *vm);
/* The default GSI routes (the interrupt controller's pins) into e, at most ARCH_IRQ_ROUTES;
 * returns how many. MSI routes follow them from VM_MSI_GSI_BASE. */
unsigned arch_irq_routes(struct kvm_irq_routing_entry *e);
/* KVM_IRQ_LINE's irq field for GSI gsi. */
uint32_t arch_irq_line(uint32_t gsi);

/* vCPU c was just created (c->fd, c->run): its registers and the rest for the boot that boot
 * describes. 0 or -errno. */
int arch_vcpu_init(struct vcpu *c, const struct boot_info *boot);
/* Keeps the vCPU's state as it is now (just created) in c->initial, for arch_vcpu_reset. */
int arch_vcpu_keep(struct vcpu *c);
/* A restart: puts back what arch_vcpu_keep kept, the vCPU parked (main does it for each, so that
 * no vCPU runs before all are reset: an x86 AP must not miss the new boot's SIPI). 0 or -1. */
int arch_vcpu_reset(struct vcpu *c);
/* Logs where the vCPU is: registers at error level (error), or registers, code and stack at info
 * level (a --timeout report). On the vCPU's own thread. */
void arch_vcpu_dump(struct vcpu *c, bool error);
/* --timeout expired and this vCPU reported: anything more that shows where the guest hangs. */
void arch_vcpu_timeout(struct vcpu *c);

#endif
