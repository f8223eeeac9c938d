/* The arm64 VM: the in-kernel GIC and its ITS, the SPIs' routes, and the device tree, written once
 * the vCPUs exist and KVM has said which GIC it gives (arm64_fdt_build, fdt.c). */
#include "arch.h"
#include "arch/arm64/fdt.h"
#include "arch/arm64/image.h"
#include "cpu/vcpu.h"
#include "config.h"
#include "devices.h"
#include "log.h"
#include "vm.h"

#include <errno.h>
#include <libfdt.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

const struct vm_cap arch_caps[] = {
	{ KVM_CAP_ARM_PSCI_0_2, "KVM_CAP_ARM_PSCI_0_2" },
	{ KVM_CAP_DEVICE_CTRL, "KVM_CAP_DEVICE_CTRL" },
	{ KVM_CAP_ONE_REG, "KVM_CAP_ONE_REG" },
};
const unsigned arch_nr_caps = sizeof(arch_caps) / sizeof(arch_caps[0]);

static int create_device(struct vm *vm, uint32_t type)
{
	struct kvm_create_device dev = { .type = type };

	if (ioctl(vm->vm_fd, KVM_CREATE_DEVICE, &dev) < 0)
		return -errno;
	return (int)dev.fd;
}

static int set_attr(int fd, uint32_t group, uint64_t attr, const void *value, const char *what)
{
	struct kvm_device_attr a = { .group = group, .attr = attr, .addr = (uintptr_t)value };

	if (ioctl(fd, KVM_SET_DEVICE_ATTR, &a) < 0) {
		int ret = -errno;

		log_error("vGIC: %s: %s", what, strerror(errno));
		return ret;
	}
	return 0;
}

/* A GICv3 (distributor, one redistributor frame pair per vCPU) with an ITS where KVM has one;
 * else a GICv2 (at most 8 vCPUs). Addresses now; the initialisation once the vCPUs exist. */
static int create_gic(struct vm *vm)
{
	uint64_t dist = GIC_DIST_BASE, redist = GIC_REDIST_BASE, cpu = GIC_CPU_BASE;
	uint64_t its = GIC_ITS_BASE;
	uint32_t nr_irqs = 32 + NR_SPIS;
	struct arch_vm *a = &vm->arch;
	int fd, ret;

	fd = create_device(vm, KVM_DEV_TYPE_ARM_VGIC_V3);
	if (fd < 0) {
		fd = create_device(vm, KVM_DEV_TYPE_ARM_VGIC_V2);
		if (fd < 0) {
			log_error("KVM_CREATE_DEVICE: this KVM has neither a GICv3 nor a GICv2: %s",
				  strerror(-fd));
			return fd;
		}
		a->gic_v2 = true;
	}
	a->gic_fd = fd;
	if (a->gic_v2 && vm->ncpus > ARM64_GICV2_MAX_CPUS) {
		log_error("--cpus %u: this host's KVM has only a GICv2, which serves at most %u",
			  vm->ncpus, ARM64_GICV2_MAX_CPUS);
		return -EINVAL;
	}
	if (!a->gic_v2 && vm->ncpus > GIC_REDIST_MAX) {
		log_error("--cpus %u: at most %llu on arm64", vm->ncpus,
			  (unsigned long long)GIC_REDIST_MAX);
		return -EINVAL;
	}
	if (a->gic_v2)
		ret = set_attr(fd, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_DIST, &dist,
			       "distributor address") ?:
		      set_attr(fd, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_CPU, &cpu,
			       "CPU interface address");
	else
		ret = set_attr(fd, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, &dist,
			       "distributor address") ?:
		      set_attr(fd, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, &redist,
			       "redistributor address");
	if (ret || (ret = set_attr(fd, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, &nr_irqs, "interrupts")))
		return ret;
	if (a->gic_v2)
		return 0;
	/* MSIs need the ITS; without one, PCI devices have INTx only (no msi-map in the tree). */
	fd = create_device(vm, KVM_DEV_TYPE_ARM_VGIC_ITS);
	if (fd < 0) {
		log_info("vGIC: no ITS in this KVM (%s): PCI interrupts are INTx", strerror(-fd));
		return 0;
	}
	a->its_fd = fd;
	vm->msi_devid = true;
	return set_attr(fd, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_ITS_ADDR_TYPE, &its, "ITS address");
}

int arch_vm_init(struct vm *vm)
{
	vm->arch.gic_fd = vm->arch.its_fd = -1;
	if (ioctl(vm->vm_fd, KVM_ARM_PREFERRED_TARGET, &vm->arch.init) < 0) {
		int ret = -errno;

		log_error("KVM_ARM_PREFERRED_TARGET: %s", strerror(errno));
		return ret;
	}
	/* KVM answers the guest's PSCI calls (CPU_ON, SYSTEM_OFF and _RESET as system events). */
	vm->arch.init.features[0] |= 1U << KVM_ARM_VCPU_PSCI_0_2;
	return create_gic(vm);
}

/* --dump-dtb FILE: the blob, as the guest gets it. */
static int dump(const char *path, const void *blob, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), ret = 0;

	if (fd < 0 || write(fd, blob, len) != (ssize_t)len)
		ret = -errno;
	if (fd >= 0 && close(fd) < 0 && !ret)
		ret = -errno;
	if (ret)
		log_error("--dump-dtb %s: %s", path, strerror(-ret));
	return ret;
}

/* The device tree of this VM, at boot->arg (boot_load kept ARM64_DTB_MAX bytes there). */
static int write_dtb(struct vm *vm, const struct vm_config *cfg, const struct boot_info *boot)
{
	struct boot_mmio_dev devs[VIRTIO_MMIO_MAX];
	struct arm64_fdt_mmio mmio[VIRTIO_MMIO_MAX];
	struct arm64_region redist = { GIC_REDIST_BASE, GIC_REDIST_SIZE * vm->ncpus };
	int n = devices_mmio_layout(cfg, devs), ret;
	struct arm64_machine m = {
		.ram = { vm->mem->r[0].gpa, vm->mem->ram_size },
		.nr_cpus = vm->ncpus,
		.psci = ARM64_PSCI_HVC,
		.gic = {
			.version = vm->arch.gic_v2 ? ARM64_GIC_V2 : ARM64_GIC_V3,
			.dist = { GIC_DIST_BASE, GIC_DIST_SIZE },
			.redist = &redist, .nr_redist = 1,
			.its = { GIC_ITS_BASE, vm->arch.its_fd >= 0 ? GIC_ITS_SIZE : 0 },
			.cpu = { GIC_CPU_BASE, GIC_CPU_SIZE },
		},
		.uart = { ARM64_UART_16550, { UART_MMIO_BASE, UART_MMIO_SIZE }, UART_GSI },
		.rtc = { { RTC_BASE, RTC_SIZE }, RTC_GSI },
		.gpio = { { GPIO_BASE, GPIO_SIZE }, GPIO_GSI, POWER_BUTTON_PIN },
		.pvpanic = { PVPANIC_BASE, PVPANIC_SIZE },
		.bootargs = cfg->cmdline,
		.initrd = { boot->initrd_gpa, boot->initrd_size },
		.mmio = mmio,
		.pci = {
			.ecam = { PCI_ECAM_BASE, PCI_ECAM_SIZE },
			.io = { PCI_PIO_WINDOW, 0, PCI_PIO_WINDOW_SIZE },
			.mem32 = { PCI_MMIO_BASE, PCI_MMIO_BASE, PCI_MMIO_SIZE },
			.intx_spi = PCI_INTX_GSI_BASE,
			.nr_slots = PCI_SLOTS,
		},
	};
	void *dtb = gmem_ptr(vm->mem, boot->arg, ARM64_DTB_MAX);

	if (n < 0 || !dtb)
		return -EINVAL;
	for (int i = 0; i < n; i++)
		mmio[i] = (struct arm64_fdt_mmio){ { devs[i].base, devs[i].size }, devs[i].gsi, false };
	m.nr_mmio = (unsigned)n;
	if ((ret = arm64_fdt_build(&m, dtb, ARM64_DTB_MAX))) {
		log_error("the device tree does not fit in %u KiB: %s", (unsigned)(ARM64_DTB_MAX >> 10),
			  strerror(-ret));
		return ret;
	}
	if (cfg->dump_dtb && (ret = dump(cfg->dump_dtb, dtb, fdt_totalsize(dtb)))) {
		vm->bad_config = true;
		return ret;
	}
	return 0;
}

int arch_vm_finish(struct vm *vm, const struct vm_config *cfg, const struct boot_info *boot)
{
	int ret;

	/* The GIC (and its ITS) once every vCPU exists: KVM sizes the redistributors by them. */
	if ((ret = set_attr(vm->arch.gic_fd, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT,
			    NULL, "initialisation")) ||
	    (vm->arch.its_fd >= 0 &&
	     (ret = set_attr(vm->arch.its_fd, KVM_DEV_ARM_VGIC_GRP_CTRL,
			     KVM_DEV_ARM_VGIC_CTRL_INIT, NULL, "ITS initialisation"))))
		return ret;
	return write_dtb(vm, cfg, boot);
}

/* A restart: the GIC's state is the vCPUs' and the distributor's; the vCPUs are initialised
 * again (arch_vcpu_reset), which resets their redistributors' view. */
void arch_vm_reset(struct vm *vm)
{
}

void arch_vm_destroy(struct vm *vm)
{
	if (vm->arch.its_fd > 0)
		close(vm->arch.its_fd);
	if (vm->arch.gic_fd > 0) /* 0: never created (the struct starts zeroed) */
		close(vm->arch.gic_fd);
	vm->arch.its_fd = vm->arch.gic_fd = -1;
}

/* GSI n is SPI n, as KVM's own default table has it. */
unsigned arch_irq_routes(struct kvm_irq_routing_entry *e)
{
	for (uint32_t gsi = 0; gsi < NR_SPIS; gsi++)
		e[gsi] = (struct kvm_irq_routing_entry){
			.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP, .u.irqchip = { 0, gsi }
		};
	return NR_SPIS;
}

/* KVM_IRQ_LINE's encoding: the type (SPI) and the INTID. */
uint32_t arch_irq_line(uint32_t gsi)
{
	return KVM_ARM_IRQ_TYPE_SPI << KVM_ARM_IRQ_TYPE_SHIFT | (gsi + 32);
}

/* The guest's time is its virtual counter (CNTVCT_EL0: the physical counter less KVM's offset),
 * which the guest's clocksource, arch_sys_counter, reads. Writing KVM_REG_ARM_TIMER_CNT moves
 * the offset so that the counter reads that value now; the offset is the VM's, each vCPU is
 * given the value anyway (as QEMU does). */
static int counter_reg(struct vcpu *c, unsigned long req, uint64_t *value)
{
	struct kvm_one_reg r = { .id = KVM_REG_ARM_TIMER_CNT, .addr = (uintptr_t)value };

	return ioctl(c->fd, req, &r) < 0 ? -errno : 0;
}

int arch_clock_save(struct vm *vm)
{
	int ret = counter_reg(&vm->vcpus[0], KVM_GET_ONE_REG, &vm->arch.counter);

	if (ret)
		log_warn("vm.pause: reading the virtual counter: %s; the guest's clock will jump",
			 strerror(-ret));
	return ret;
}

int arch_clock_restore(struct vm *vm)
{
	int ret = 0;

	for (unsigned i = 0; i < vm->ncpus && !ret; i++)
		ret = counter_reg(&vm->vcpus[i], KVM_SET_ONE_REG, &vm->arch.counter);
	if (ret)
		log_warn("vm.resume: setting the virtual counter: %s; the guest's clock jumps",
			 strerror(-ret));
	return ret;
}
