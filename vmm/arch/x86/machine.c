/* The x86 VM: KVM's private pages, the in-kernel PIC, IOAPIC and PIT, their routes, and the CPUID
 * KVM offers. */
#include "arch.h"
#include "arch/x86/cpu.h"
#include "log.h"
#include "vm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

/* Below the 4 GiB boundary and inside the hole, never RAM: KVM's private pages for VMX. */
#define KVM_TSS_ADDR          0xfffbd000ULL
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000ULL

const struct vm_cap arch_caps[] = {
	{ KVM_CAP_HLT, "KVM_CAP_HLT" },
	{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
	{ KVM_CAP_SET_IDENTITY_MAP_ADDR, "KVM_CAP_SET_IDENTITY_MAP_ADDR" },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
	{ KVM_CAP_PIT2, "KVM_CAP_PIT2" },
};
const unsigned arch_nr_caps = sizeof(arch_caps) / sizeof(arch_caps[0]);

static int get_cpuid(struct vm *vm)
{
	for (unsigned n = 64; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		if (!c)
			return -ENOMEM;
		c->nent = n;
		if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			/* KVM emulates the TSC deadline timer but leaves offering it to the VMM
			 * (KVM_CAP_TSC_DEADLINE_TIMER). QEMU and Firecracker offer it too. */
			struct kvm_cpuid_entry2 *leaf1 = cpuid_find(c, 1, 0);

			if (leaf1 &&
			    ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0)
				leaf1->ecx |= 1U << 24;
			vm->arch.cpuid = c;
			return 0;
		}
		free(c);
		if (errno != E2BIG)
			return -errno;
	}
	return -E2BIG;
}

#define KVM_TRY(call, what)                                                                        \
	do {                                                                                       \
		if ((call) < 0) {                                                                  \
			int err_ = -errno;                                                         \
			log_error("%s: %s", what, strerror(errno));                                \
			return err_;                                                               \
		}                                                                                  \
	} while (0)

int arch_vm_init(struct vm *vm)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	uint64_t idmap = KVM_IDENTITY_MAP_ADDR;
	int ret;

	KVM_TRY(ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, KVM_TSS_ADDR), "KVM_SET_TSS_ADDR");
	KVM_TRY(ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap), "KVM_SET_IDENTITY_MAP_ADDR");
	KVM_TRY(ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0), "KVM_CREATE_IRQCHIP");
	KVM_TRY(ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit), "KVM_CREATE_PIT2");
	for (unsigned i = 0; i < 3; i++) { /* as they are now, for a restart */
		vm->arch.chips[i].chip_id = i;
		KVM_TRY(ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &vm->arch.chips[i]), "KVM_GET_IRQCHIP");
	}
	KVM_TRY(ioctl(vm->vm_fd, KVM_GET_PIT2, &vm->arch.pit), "KVM_GET_PIT2");
	if ((ret = get_cpuid(vm))) {
		log_error("KVM_GET_SUPPORTED_CPUID: %s", strerror(-ret));
		return ret;
	}
	return 0;
}

int arch_vm_finish(struct vm *vm, const struct vm_config *cfg, const struct boot_info *boot)
{
	return 0; /* the ACPI and MP tables were written with the kernel (boot_load) */
}

void arch_vm_reset(struct vm *vm)
{
	for (unsigned i = 0; i < 3; i++)
		if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &vm->arch.chips[i]) < 0)
			log_warn("restart: KVM_SET_IRQCHIP %u: %s", i, strerror(errno));
	if (ioctl(vm->vm_fd, KVM_SET_PIT2, &vm->arch.pit) < 0)
		log_warn("restart: KVM_SET_PIT2: %s", strerror(errno));
}

void arch_vm_destroy(struct vm *vm)
{
	free(vm->arch.cpuid);
	vm->arch.cpuid = NULL;
}

/* GSI n to IOAPIC pin n, and to the PIC for n < 16 but 2 (the cascade). */
unsigned arch_irq_routes(struct kvm_irq_routing_entry *e)
{
	unsigned n = 0;

	for (uint32_t gsi = 0; gsi < ARCH_IRQ_PINS; gsi++) {
		if (gsi < 16 && gsi != 2)
			e[n++] = (struct kvm_irq_routing_entry){
				.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
				.u.irqchip = { gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
					       gsi % 8 }
			};
		e[n++] = (struct kvm_irq_routing_entry){
			.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
			.u.irqchip = { KVM_IRQCHIP_IOAPIC, gsi }
		};
	}
	return n;
}

uint32_t arch_irq_line(uint32_t gsi)
{
	return gsi;
}

int arch_clock_save(struct vm *vm)
{
	int ret = ioctl(vm->vm_fd, KVM_GET_CLOCK, &vm->arch.clock) < 0 ? -errno : 0;

	if (ret)
		log_warn("vm.pause: KVM_GET_CLOCK: %s; the guest's clock will jump", strerror(-ret));
	return ret;
}

int arch_clock_restore(struct vm *vm)
{
	struct kvm_clock_data c = { .clock = vm->arch.clock.clock };
	int ret = ioctl(vm->vm_fd, KVM_SET_CLOCK, &c) < 0 ? -errno : 0;

	if (ret)
		log_warn("vm.resume: KVM_SET_CLOCK: %s; the guest's clock jumps", strerror(-ret));
	return ret;
}
