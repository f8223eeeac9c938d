/* ACPI tables (ACPI 6.5, chapter 5, and the PCI Firmware Specification's MCFG). The platform is
 * hardware-reduced: no PM1 blocks, no SCI, no FACS; poweroff and reset go through the FADT's sleep
 * control and reset registers, which platform.c implements. The MADT lists every vCPU
 * (the MP table, mptable.c, says the same for kernels that look for one). */
#include "arch/x86/acpi.h"
#include "arch/x86/platform.h"
#include "arch/x86/aml.h"
#include "arch/x86/layout.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

struct acpi_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
} __attribute__((packed));

struct acpi_rsdp {
	char signature[8];
	uint8_t checksum; /* of the first 20 bytes */
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt_address;
	uint32_t length;
	uint64_t xsdt_address;
	uint8_t extended_checksum; /* of all 36 bytes */
	uint8_t reserved[3];
} __attribute__((packed));

/* Generic Address Structure */
struct acpi_gas {
	uint8_t space_id; /* 1: system I/O */
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size; /* 1: byte */
	uint64_t address;
} __attribute__((packed));

struct acpi_fadt {
	struct acpi_header h;
	uint32_t firmware_ctrl;
	uint32_t dsdt;
	uint8_t reserved0;
	uint8_t preferred_pm_profile;
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint8_t acpi_enable, acpi_disable, s4bios_req, pstate_cnt;
	uint32_t pm1a_evt_blk, pm1b_evt_blk, pm1a_cnt_blk, pm1b_cnt_blk, pm2_cnt_blk, pm_tmr_blk;
	uint32_t gpe0_blk, gpe1_blk;
	uint8_t pm1_evt_len, pm1_cnt_len, pm2_cnt_len, pm_tmr_len, gpe0_blk_len, gpe1_blk_len;
	uint8_t gpe1_base, cst_cnt;
	uint16_t p_lvl2_lat, p_lvl3_lat, flush_size, flush_stride;
	uint8_t duty_offset, duty_width, day_alrm, mon_alrm, century;
	uint16_t iapc_boot_arch;
	uint8_t reserved1;
	uint32_t flags;
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t minor_version;
	uint64_t x_firmware_ctrl, x_dsdt;
	struct acpi_gas x_pm1a_evt_blk, x_pm1b_evt_blk, x_pm1a_cnt_blk, x_pm1b_cnt_blk;
	struct acpi_gas x_pm2_cnt_blk, x_pm_tmr_blk, x_gpe0_blk, x_gpe1_blk;
	struct acpi_gas sleep_control_reg, sleep_status_reg;
	uint64_t hypervisor_vendor_id;
} __attribute__((packed));

_Static_assert(sizeof(struct acpi_header) == 36, "ACPI header");
_Static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP");
_Static_assert(sizeof(struct acpi_fadt) == 276, "FADT (ACPI 6.x)");

#define FADT_WBINVD          (1U << 0)
#define FADT_PWR_BUTTON      (1U << 4) /* set: no fixed-feature power button */
#define FADT_SLP_BUTTON      (1U << 5)
#define FADT_RESET_REG_SUP   (1U << 10)
#define FADT_HW_REDUCED_ACPI (1U << 20)
#define IAPC_VGA_NOT_PRESENT (1U << 2)
#define CMOS_CENTURY_INDEX   0x32

#define MADT_PCAT_COMPAT     1U /* the 8259 PICs exist (KVM's in-kernel irqchip has them) */

struct madt_lapic {
	uint8_t type, length, processor_uid, apic_id;
	uint32_t flags; /* 1: enabled */
} __attribute__((packed));

struct madt_ioapic {
	uint8_t type, length, id, reserved;
	uint32_t address, gsi_base;
} __attribute__((packed));

/* PCI Firmware Specification 3.3, 4.1.2: one ECAM allocation per segment and bus range. */
struct acpi_mcfg {
	struct acpi_header h;
	uint64_t reserved;
	struct {
		uint64_t base;
		uint16_t segment;
		uint8_t start_bus, end_bus;
		uint32_t reserved;
	} __attribute__((packed)) alloc;
} __attribute__((packed));

_Static_assert(sizeof(struct acpi_mcfg) == 60, "MCFG with one allocation");

#define ECAM_BUS_SIZE (1ULL << 20) /* 32 devices x 8 functions x 4 KiB */

/* A tiny bump allocator over the ACPI area; every table is 16-byte aligned. */
struct acpi_area {
	struct guest_mem *m;
	uint64_t next;
};

static void *acpi_alloc(struct acpi_area *a, uint64_t len, uint64_t *gpa)
{
	uint64_t at = (a->next + 15) & ~15ULL;
	void *p;

	if (at + len > BOOT_ACPI_END || !(p = gmem_ptr(a->m, at, len)))
		return NULL;
	memset(p, 0, len);
	a->next = at + len;
	*gpa = at;
	return p;
}

uint8_t acpi_sum(const void *p, uint64_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	while (len--)
		sum += *b++;
	return sum;
}

static void acpi_header_init(struct acpi_header *h, const char sig[4], uint32_t len, uint8_t rev)
{
	memcpy(h->signature, sig, 4);
	h->length = len;
	h->revision = rev;
	memcpy(h->oem_id, "VMM   ", 6);
	memcpy(h->oem_table_id, "VMM     ", 8);
	memcpy(h->oem_table_id, sig, 4);
	h->oem_revision = 1;
	memcpy(h->creator_id, "VMM ", 4);
	h->creator_revision = 1;
}

static void acpi_finish(struct acpi_header *h)
{
	h->checksum = 0;
	h->checksum = (uint8_t)-acpi_sum(h, h->length);
}

/* The DSDT's body:
 *
 *   Name (_S5_, Package (4) { 5, 5, 0, 0 })
 *   Scope (\_SB) {
 *     Device (COM1) { _HID PNP0501, _UID 1, _CRS { IO 0x3f8/8, IRQNoFlags { 4 } } }
 *     Device (PCI0) { _HID PNP0A08, _CID PNP0A03, _SEG/_BBN/_UID 0, _CRS { bus 0, the config
 *                     ports, the I/O and memory windows }, _PRT { slot 1-31, pin 0-3 -> GSI } }
 *     Device (MRES) { _HID PNP0C02, _CRS { Memory32Fixed the ECAM window } }
 *     Device (VRnn) { _HID "LNRO0005", _UID n, _CRS { Memory32Fixed, Interrupt { gsi } } }
 *     Device (PWRB) { _HID PNP0C0C }
 *     Device (GED_) { _HID "ACPI0013", _CRS { Interrupt (Edge) { 3 } },
 *                     Method (_EVT, 1) { If (Arg0 == 3) { Notify (\_SB.PWRB, 0x80) } } }
 *     Device (PEVT) { _HID "QEMU0001", _CRS { IO 0x505/1 } }
 *   }
 *
 * COM1 is here because a hardware-reduced ACPI kernel has no legacy PIC and so maps no ISA
 * interrupts by itself: the UART's IRQ 4 reaches the IOAPIC only once ACPI describes it, and
 * Linux's 8250_pnp driver then binds ttyS0 with that interrupt. The same holds for the
 * virtio-mmio lines, which are level-triggered: without the Interrupt descriptor Linux would
 * program those ISA pins edge-triggered.
 *
 * MRES exists because Linux uses the MCFG's ECAM window only when a motherboard-resources
 * device reserves it (arch/x86/pci/mmconfig-shared.c); otherwise it falls back to port 0xcf8.
 * The unit tests disassemble all of this. */
static void dsdt_com1(struct aml *a)
{
	aml_device_begin(a, "COM1");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0501");
	aml_name(a, "_UID");
	aml_integer(a, 1);
	aml_name(a, "_CRS");
	aml_rt_begin(a);
	aml_rt_io(a, 0x3f8, 0x3f8, 0, 8);
	aml_rt_irq_noflags(a, 4);
	aml_rt_end(a);
	aml_end(a);
}

/* GSI-style _PRT entries (6.2.13): the source is Zero and the last field is the GSI itself, so
 * no link devices are needed. Slot 0 is the host bridge, which has no interrupt. */
static void dsdt_pci0(struct aml *a)
{
	aml_device_begin(a, "PCI0");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0A08");
	aml_name(a, "_CID");
	aml_eisaid(a, "PNP0A03");
	aml_name(a, "_SEG");
	aml_integer(a, 0);
	aml_name(a, "_BBN");
	aml_integer(a, 0);
	aml_name(a, "_UID");
	aml_integer(a, 0);
	aml_name(a, "_CRS");
	aml_rt_begin(a);
	aml_rt_word_bus(a, 0, 0);
	aml_rt_io(a, PCI_CONFIG_PORT, PCI_CONFIG_PORT, 1, 8);
	aml_rt_word_io(a, PCI_IO_BASE, PCI_IO_BASE + PCI_IO_SIZE - 1);
	aml_rt_dword_memory(a, (uint32_t)PCI_MMIO_BASE,
			    (uint32_t)(PCI_MMIO_BASE + PCI_MMIO_SIZE - 1));
	aml_rt_end(a);
	aml_name(a, "_PRT");
	aml_package_begin(a, 31 * 4);
	for (unsigned slot = 1; slot < 32; slot++) {
		for (unsigned pin = 0; pin < 4; pin++) {
			aml_package_begin(a, 4);
			aml_integer(a, (uint64_t)slot << 16 | 0xffff); /* any function */
			aml_integer(a, pin);
			aml_integer(a, 0);
			aml_integer(a, PCI_INTX_GSI(slot, pin));
			aml_end(a);
		}
	}
	aml_end(a);
	aml_end(a);

	aml_device_begin(a, "MRES");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0C02");
	aml_name(a, "_CRS");
	aml_rt_begin(a);
	aml_rt_memory32_fixed(a, (uint32_t)PCI_ECAM_BASE, (uint32_t)PCI_ECAM_SIZE);
	aml_rt_end(a);
	aml_end(a);
}

/* "LNRO0005" is the ID Linux's virtio_mmio driver matches in ACPI. */
static void dsdt_virtio_mmio(struct aml *a, unsigned n, const struct boot_mmio_dev *d)
{
	char name[] = { 'V', 'R', (char)('0' + n / 10 % 10), (char)('0' + n % 10), 0 };

	aml_device_begin(a, name);
	aml_name(a, "_HID");
	aml_string(a, "LNRO0005");
	aml_name(a, "_UID");
	aml_integer(a, n);
	aml_name(a, "_CRS");
	aml_rt_begin(a);
	aml_rt_memory32_fixed(a, (uint32_t)d->base, (uint32_t)d->size);
	aml_rt_interrupt(a, d->gsi, true);
	aml_rt_end(a);
	aml_end(a);
}

/* The power button of a hardware-reduced platform (ACPI 6.5, 4.8.2.2.1.2 and 5.6.9): a
 * control-method button, PNP0C0C, and a Generic Event Device whose interrupt makes the OSPM run
 * _EVT with the interrupt's number; _EVT sends the button its "pressed" notification (0x80),
 * which Linux's button driver turns into KEY_POWER. vm.power-button raises that interrupt. */
static void dsdt_power_button(struct aml *a)
{
	aml_device_begin(a, "PWRB");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0C0C");
	aml_name(a, "_UID");
	aml_integer(a, 0);
	aml_end(a);

	aml_device_begin(a, "GED");
	aml_name(a, "_HID");
	aml_string(a, "ACPI0013");
	aml_name(a, "_UID");
	aml_integer(a, 0);
	aml_name(a, "_CRS");
	aml_rt_begin(a);
	aml_rt_interrupt(a, ACPI_GED_GSI, false);
	aml_rt_end(a);
	aml_method_begin(a, "_EVT", 1, true);
	aml_if_begin(a);
	aml_lequal(a);
	aml_arg(a, 0);
	aml_integer(a, ACPI_GED_GSI);
	aml_notify(a, "\\_SB.PWRB", 0x80);
	aml_end(a);
	aml_end(a);
	aml_end(a);
}

/* pvpanic (QEMU's "QEMU0001", one I/O port): Linux's pvpanic-mmio driver binds it through ACPI
 * and writes to the port from its panic notifier. */
static void dsdt_pvpanic(struct aml *a)
{
	aml_device_begin(a, "PEVT");
	aml_name(a, "_HID");
	aml_string(a, "QEMU0001");
	aml_name(a, "_CRS");
	aml_rt_begin(a);
	aml_rt_io(a, PVPANIC_PORT, PVPANIC_PORT, 1, 1);
	aml_rt_end(a);
	aml_end(a);
}

static void dsdt_body(struct aml *a, const struct boot_args *args)
{
	aml_name(a, "_S5_");
	aml_package_begin(a, 4);
	aml_integer(a, ACPI_S5_SLP_TYP); /* SLP_TYPa */
	aml_integer(a, ACPI_S5_SLP_TYP); /* SLP_TYPb */
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_end(a);
	aml_scope_begin(a, "\\_SB");
	dsdt_com1(a);
	dsdt_pci0(a);
	for (unsigned i = 0; i < args->nr_mmio; i++)
		dsdt_virtio_mmio(a, i, &args->mmio[i]);
	dsdt_power_button(a);
	dsdt_pvpanic(a);
	aml_end(a);
}

/* Memory32Fixed can only say where a device is if it is below 4 GiB. */
static int check_mmio(const struct boot_args *args)
{
	if (args->nr_mmio > VIRTIO_MMIO_MAX || (args->nr_mmio && !args->mmio))
		return -EINVAL;
	for (unsigned i = 0; i < args->nr_mmio; i++) {
		const struct boot_mmio_dev *d = &args->mmio[i];
		if (d->size == 0 || d->size > MEM_HOLE_END || d->base > MEM_HOLE_END - d->size)
			return -EINVAL;
	}
	return 0;
}

static void gas_io(struct acpi_gas *g, uint16_t port)
{
	*g = (struct acpi_gas){ .space_id = 1, .bit_width = 8, .access_size = 1, .address = port };
}

int acpi_build(struct guest_mem *m, const struct boot_args *args, uint64_t *rsdp_gpa)
{
	unsigned cpus = args->cpus;
	struct acpi_area a = { m, BOOT_ACPI_ADDR };
	uint64_t xsdt_gpa, fadt_gpa, dsdt_gpa, madt_gpa, mcfg_gpa, room;
	uint32_t madt_len = sizeof(struct acpi_header) + 8 + cpus * sizeof(struct madt_lapic) +
			    sizeof(struct madt_ioapic);
	uint32_t xsdt_len = sizeof(struct acpi_header) + 3 * 8;
	struct acpi_rsdp *rsdp;
	struct acpi_header *xsdt, *dsdt, *madt;
	struct acpi_fadt *fadt;
	struct acpi_mcfg *mcfg;
	uint64_t entries[3];
	struct aml aml;
	long aml_len;
	uint8_t *p;
	int ret;

	if (cpus == 0 || cpus > 255)
		return -EINVAL;
	if ((ret = check_mmio(args)))
		return ret;
	if (!(rsdp = acpi_alloc(&a, sizeof(*rsdp), rsdp_gpa)) ||
	    !(xsdt = acpi_alloc(&a, xsdt_len, &xsdt_gpa)) ||
	    !(fadt = acpi_alloc(&a, sizeof(*fadt), &fadt_gpa)) ||
	    !(madt = acpi_alloc(&a, madt_len, &madt_gpa)) ||
	    !(mcfg = acpi_alloc(&a, sizeof(*mcfg), &mcfg_gpa)))
		return -ENOSPC;

	/* The DSDT comes last and is written in place into whatever room is left, so that its
	 * size need not be known in advance. */
	room = BOOT_ACPI_END - ((a.next + 15) & ~15ULL);
	if (room <= sizeof(*dsdt) || !(dsdt = acpi_alloc(&a, room, &dsdt_gpa)))
		return -ENOSPC;
	aml_init(&aml, (uint8_t *)(dsdt + 1), room - sizeof(*dsdt));
	dsdt_body(&aml, args);
	if ((aml_len = aml_finish(&aml)) < 0)
		return (int)aml_len;
	acpi_header_init(dsdt, "DSDT", (uint32_t)(sizeof(*dsdt) + aml_len), 2);
	acpi_finish(dsdt);

	acpi_header_init(&fadt->h, "FACP", sizeof(*fadt), 6);
	fadt->minor_version = 5;
	fadt->dsdt = (uint32_t)dsdt_gpa;
	fadt->x_dsdt = dsdt_gpa;
	fadt->flags = FADT_WBINVD | FADT_PWR_BUTTON | FADT_SLP_BUTTON | FADT_RESET_REG_SUP |
		      FADT_HW_REDUCED_ACPI;
	fadt->iapc_boot_arch = IAPC_VGA_NOT_PRESENT;
	fadt->century = CMOS_CENTURY_INDEX;
	gas_io(&fadt->reset_reg, ACPI_RESET_PORT);
	fadt->reset_value = ACPI_RESET_VALUE;
	gas_io(&fadt->sleep_control_reg, ACPI_SLEEP_CTL_PORT);
	gas_io(&fadt->sleep_status_reg, ACPI_SLEEP_STS_PORT);
	memcpy(&fadt->hypervisor_vendor_id, "vmm\0\0\0\0\0", 8);
	acpi_finish(&fadt->h);

	acpi_header_init(madt, "APIC", madt_len, 5);
	p = (uint8_t *)(madt + 1);
	memcpy(p, &(uint32_t){ (uint32_t)LAPIC_ADDR }, 4);
	memcpy(p + 4, &(uint32_t){ MADT_PCAT_COMPAT }, 4);
	p += 8;
	for (unsigned i = 0; i < cpus; i++, p += sizeof(struct madt_lapic)) {
		struct madt_lapic l = { 0, sizeof(l), (uint8_t)i, (uint8_t)i, 1 };
		memcpy(p, &l, sizeof(l));
	}
	{
		/* The IOAPIC's ID follows the vCPUs' APIC IDs, as KVM's in-kernel IOAPIC allows. */
		struct madt_ioapic io = { 1, sizeof(io), (uint8_t)cpus, 0, (uint32_t)IOAPIC_ADDR, 0 };
		memcpy(p, &io, sizeof(io));
	}
	acpi_finish(madt);

	acpi_header_init(&mcfg->h, "MCFG", sizeof(*mcfg), 1);
	mcfg->alloc.base = PCI_ECAM_BASE;
	mcfg->alloc.segment = 0;
	mcfg->alloc.start_bus = 0;
	mcfg->alloc.end_bus = (uint8_t)(PCI_ECAM_SIZE / ECAM_BUS_SIZE - 1);
	acpi_finish(&mcfg->h);

	acpi_header_init(xsdt, "XSDT", xsdt_len, 1);
	entries[0] = fadt_gpa;
	entries[1] = madt_gpa;
	entries[2] = mcfg_gpa;
	memcpy(xsdt + 1, entries, sizeof(entries));
	acpi_finish(xsdt);

	memcpy(rsdp->signature, "RSD PTR ", 8);
	memcpy(rsdp->oem_id, "VMM   ", 6);
	rsdp->revision = 2;
	rsdp->length = sizeof(*rsdp);
	rsdp->xsdt_address = xsdt_gpa;
	rsdp->checksum = (uint8_t)-acpi_sum(rsdp, 20);
	rsdp->extended_checksum = (uint8_t)-acpi_sum(rsdp, sizeof(*rsdp));
	return 0;
}
