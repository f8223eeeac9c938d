/* ACPI tables (ACPI 6.5, chapter 5). The platform is hardware-reduced: no PM1 blocks, no SCI, no
 * FACS; poweroff and reset go through the FADT's sleep control and reset registers, which
 * vmm/bus/platform.c implements. The MADT lists every vCPU, so SMP works without an MP table. */
#include "boot/acpi.h"
#include "boot/boot.h"

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

/* DefinitionBlock body, hand-assembled AML:
 *
 *   Name (_S5_, Package (4) { 5, 5, 0, 0 })
 *   Scope (\_SB) {
 *     Device (COM1) {
 *       Name (_HID, EisaId ("PNP0501"))
 *       Name (_UID, One)
 *       Name (_CRS, ResourceTemplate () { IO (Decode16, 0x3F8, 0x3F8, 0, 8) IRQNoFlags () { 4 } })
 *     }
 *   }
 *
 * COM1 is here because a hardware-reduced ACPI kernel has no legacy PIC and so maps no ISA
 * interrupts by itself: the UART's IRQ 4 reaches the IOAPIC only once ACPI describes it, and
 * Linux's 8250_pnp driver then binds ttyS0 with that interrupt. The unit tests disassemble this. */
static const uint8_t dsdt_aml[] = {
	0x08, '_', 'S', '5', '_',                     /* NameOp "_S5_" */
	0x12, 0x08, 0x04,                             /* PackageOp, PkgLength 8, 4 elements */
	0x0a, ACPI_S5_SLP_TYP, 0x0a, ACPI_S5_SLP_TYP, /* BytePrefix SLP_TYPa, SLP_TYPb */
	0x00, 0x00,                                   /* Zero, Zero */
	0x10, 0x32, '_', 'S', 'B', '_',               /* ScopeOp, PkgLength 50, "_SB_" */
	0x5b, 0x82, 0x2b, 'C', 'O', 'M', '1',         /* DeviceOp, PkgLength 43, "COM1" */
	0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x05, 0x01, /* DWordPrefix EisaId PNP0501 */
	0x08, '_', 'U', 'I', 'D', 0x01,               /* One */
	0x08, '_', 'C', 'R', 'S', 0x11, 0x10, 0x0a, 0x0d, /* BufferOp, PkgLength 16, 13 bytes: */
	0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x00, 0x08, /*   I/O port 0x3f8, 8 ports, 16-bit decode */
	0x22, 0x10, 0x00,                             /*   IRQ mask: 4 */
	0x79, 0x00,                                   /*   end tag */
};

static void gas_io(struct acpi_gas *g, uint16_t port)
{
	*g = (struct acpi_gas){ .space_id = 1, .bit_width = 8, .access_size = 1, .address = port };
}

int acpi_build(struct guest_mem *m, const struct boot_args *args, uint64_t *rsdp_gpa)
{
	unsigned cpus = args->cpus;
	struct acpi_area a = { m, BOOT_ACPI_ADDR };
	uint64_t xsdt_gpa, fadt_gpa, dsdt_gpa, madt_gpa;
	uint32_t madt_len = sizeof(struct acpi_header) + 8 + cpus * sizeof(struct madt_lapic) +
			    sizeof(struct madt_ioapic);
	uint32_t xsdt_len = sizeof(struct acpi_header) + 2 * 8;
	struct acpi_rsdp *rsdp;
	struct acpi_header *xsdt, *dsdt, *madt;
	struct acpi_fadt *fadt;
	uint64_t entries[2];
	uint8_t *p;

	if (cpus == 0 || cpus > 255)
		return -EINVAL;
	if (!(rsdp = acpi_alloc(&a, sizeof(*rsdp), rsdp_gpa)) ||
	    !(xsdt = acpi_alloc(&a, xsdt_len, &xsdt_gpa)) ||
	    !(fadt = acpi_alloc(&a, sizeof(*fadt), &fadt_gpa)) ||
	    !(dsdt = acpi_alloc(&a, sizeof(*dsdt) + sizeof(dsdt_aml), &dsdt_gpa)) ||
	    !(madt = acpi_alloc(&a, madt_len, &madt_gpa)))
		return -ENOSPC;

	acpi_header_init(dsdt, "DSDT", sizeof(*dsdt) + sizeof(dsdt_aml), 2);
	memcpy(dsdt + 1, dsdt_aml, sizeof(dsdt_aml));
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

	acpi_header_init(xsdt, "XSDT", xsdt_len, 1);
	entries[0] = fadt_gpa;
	entries[1] = madt_gpa;
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
