/* What each architecture provides. Everything else in vmm (buses, virtio, backends, config, the
 * API, the sandbox, the vCPU loop) is shared; one architecture's directory, vmm/arch/<arch>/, is
 * built in, chosen by the compiler's target (the Makefile's ARCH). docs/architecture.md says what
 * is where. */
#ifndef VMM_ARCH_H
#define VMM_ARCH_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#include "boot.h" /* boot_load, which each architecture's boot.c implements */

#if defined(__x86_64__)
#include "arch/x86/layout.h"   /* the memory map */
#include "arch/x86/machine.h"  /* struct arch_vm, ARCH_*_IOCTLS */
#include "arch/x86/platform.h" /* the platform devices */
#define ARCH_IRQ_PINS   24                   /* the IOAPIC's pins: GSIs below are theirs */
#define ARCH_IRQ_ROUTES (16 + ARCH_IRQ_PINS) /* arch_irq_routes' most: the PIC's too */
#define ARCH_UART_MMIO  0                    /* ttyS0 on port I/O, COM1, IRQ 4 */
#define ARCH_UART_ADDR  UART_COM1_PORT /* bus/uart.h */
#define ARCH_UART_GSI   UART_COM1_IRQ
#define ARCH_PLATFORM_GSI ACPI_GED_GSI /* the platform devices' line (the power button) */
#define ARCH_PIO_WINDOW 0              /* port I/O is the CPU's own */
#elif defined(__aarch64__)
#include "arch/arm64/layout.h"
#include "arch/arm64/machine.h"
#include "arch/arm64/platform.h"
#define ARCH_IRQ_PINS   NR_SPIS
#define ARCH_IRQ_ROUTES NR_SPIS
#define ARCH_UART_MMIO  1
#define ARCH_UART_ADDR  UART_MMIO_BASE
#define ARCH_UART_GSI   UART_GSI
#define ARCH_PLATFORM_GSI GPIO_GSI /* the PL061's line (the power button) */
#define ARCH_PIO_WINDOW PCI_PIO_WINDOW /* port p is MMIO at ARCH_PIO_WINDOW + p */
#else
#error "vmm is built for x86-64 and arm64"
#endif

struct vm;
struct vcpu;
struct vm_config;

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
/* The vCPUs and devices exist: what must come after them (arm64: the GIC's initialisation, and
 * the device tree, which says what the host's KVM gave). 0 or -errno (logged). */
int arch_vm_finish(struct vm *vm, const struct vm_config *cfg, const struct boot_info *boot);
/* A restart: the interrupt controllers as arch_vm_init left them. */
void arch_vm_reset(struct vm *vm);
void arch_vm_destroy(struct vm *vm);
/* The default GSI routes (the interrupt controller's pins) into e, at most ARCH_IRQ_ROUTES;
 * returns how many. MSI routes follow them from VM_MSI_GSI_BASE. */
unsigned arch_irq_routes(struct kvm_irq_routing_entry *e);
/* KVM_IRQ_LINE's irq field for GSI gsi. */
uint32_t arch_irq_line(uint32_t gsi);
/* vm.pause, every vCPU parked: keeps the guest's clock as it is now (x86: kvmclock; arm64: the
 * virtual counter) in vm->arch. 0 or -errno, logged (the guest's clock then jumps by the pause). */
int arch_clock_save(struct vm *vm);
/* vm.resume, the vCPUs still parked: the guest's clock goes on from what arch_clock_save kept,
 * so that no time passed for the guest (as QEMU does). 0 or -errno, logged. */
int arch_clock_restore(struct vm *vm);

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
