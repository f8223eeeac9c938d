/* The MP table (Intel MultiProcessor Specification 1.4, chapter 4).
 *
 * Linux uses the ACPI tables when it has them and then ignores the MP table's contents, but a
 * kernel built with CONFIG_X86_MPPARSE (Debian's generic one) looks for the MP floating pointer
 * first: in the first KiB of RAM, in the last KiB below 640 KiB, then in the BIOS area
 * 0xf0000-0xfffff, 16 bytes at a time, mapping and unmapping the rest of the range at each step.
 * When nothing is found that is tens of thousands of TLB flushes, seconds of boot under nested
 * virtualisation with shadow paging. A floating pointer at the start of the EBDA (639 KiB, where
 * Firecracker and kvmtool put theirs too) ends the search at its first step of the second range.
 *
 * Since a kernel booted with acpi=off does use it, the table says what the MADT and the DSDT say:
 * every vCPU (APIC ID = index, vCPU 0 the bootstrap processor), the IOAPIC with the MADT's ID,
 * the ISA interrupts identity-mapped onto its first 16 pins (the MADT has no overrides), each PCI
 * slot's INTA-INTD on the pins the DSDT's _PRT gives, and the 8259's ExtINT and NMI on every local
 * APIC's LINT0 and LINT1. It lies in the range e820 reserves below 1 MiB, before the ACPI tables. */
#include "arch/x86/mptable.h"
#include "arch/x86/acpi.h"
#include "arch/x86/layout.h"

#include <errno.h>
#include <string.h>

struct mpf_intel { /* the floating pointer structure, 4.1 */
	char signature[4];
	uint32_t physptr;
	uint8_t length; /* in 16-byte units: 1 */
	uint8_t specification;
	uint8_t checksum;
	uint8_t feature1; /* 0: a configuration table is present */
	uint8_t feature2, feature3, feature4, feature5;
} __attribute__((packed));

struct mpc_table { /* the configuration table header, 4.2 */
	char signature[4];
	uint16_t length; /* of the base table, header included */
	uint8_t spec;
	uint8_t checksum;
	char oem[8];
	char productid[12];
	uint32_t oemptr;
	uint16_t oemsize;
	uint16_t oemcount; /* entries */
	uint32_t lapic;
	uint16_t reserved;
	uint8_t ext_checksum, ext_reserved;
} __attribute__((packed));

struct mpc_cpu { /* 4.3.1 */
	uint8_t type, apicid, apicver, cpuflag;
	uint32_t cpufeature;
	uint32_t featureflag;
	uint32_t reserved[2];
} __attribute__((packed));

struct mpc_bus { /* 4.3.2 */
	uint8_t type, busid;
	char bustype[6];
} __attribute__((packed));

struct mpc_ioapic { /* 4.3.3 */
	uint8_t type, apicid, apicver, flags;
	uint32_t apicaddr;
} __attribute__((packed));

struct mpc_intsrc { /* 4.3.4 and 4.3.5: I/O and local interrupt assignments */
	uint8_t type, irqtype;
	uint16_t irqflag; /* 0: the bus's polarity and trigger mode */
	uint8_t srcbus, srcbusirq, dstapic, dstirq;
} __attribute__((packed));

_Static_assert(sizeof(struct mpf_intel) == 16, "MP floating pointer");
_Static_assert(sizeof(struct mpc_table) == 44, "MP configuration table header");
_Static_assert(sizeof(struct mpc_cpu) == 20, "MP processor entry");
_Static_assert(sizeof(struct mpc_bus) == 8 && sizeof(struct mpc_ioapic) == 8 &&
		       sizeof(struct mpc_intsrc) == 8,
	       "MP 8-byte entries");

enum { MP_PROCESSOR, MP_BUS, MP_IOAPIC, MP_INTSRC, MP_LINTSRC };
enum { MP_INT, MP_NMI, MP_SMI, MP_EXTINT };

#define MP_SPEC_1_4     4
#define MP_CPU_ENABLED  1
#define MP_CPU_BSP      2
#define MP_APIC_VERSION 0x14 /* KVM's local APIC */
#define MP_IOAPIC_VER   0x11 /* KVM's IOAPIC */
#define MP_FEATURE_FPU  (1U << 0)
#define MP_FEATURE_APIC (1U << 9)
#define MP_ISA_BUS      0
#define MP_PCI_BUS      1
#define MP_ALL_LAPICS   0xff
#define ISA_IRQS        16
#define PCI_SLOTS       32 /* slot 0 is the host bridge, which has no interrupt */

/* Appends one entry at *p and counts it. */
static void add(uint8_t **p, uint16_t *count, const void *entry, size_t len)
{
	memcpy(*p, entry, len);
	*p += len;
	(*count)++;
}

int mptable_build(struct guest_mem *m, unsigned cpus)
{
	uint64_t size = sizeof(struct mpf_intel) + sizeof(struct mpc_table) +
			cpus * sizeof(struct mpc_cpu) + 2 * sizeof(struct mpc_bus) +
			sizeof(struct mpc_ioapic) +
			(ISA_IRQS + (PCI_SLOTS - 1) * 4 + 2) * sizeof(struct mpc_intsrc);
	uint8_t ioapic_id = (uint8_t)cpus; /* as in the MADT */
	struct mpf_intel *mpf;
	struct mpc_table *mpc;
	uint16_t count = 0;
	uint8_t *p;

	if (cpus == 0 || cpus > 254)
		return -EINVAL;
	if (BOOT_EBDA_START + size > BOOT_ACPI_ADDR || !(mpf = gmem_ptr(m, BOOT_EBDA_START, size)))
		return -ENOSPC;
	memset(mpf, 0, size);
	mpc = (struct mpc_table *)(mpf + 1);
	p = (uint8_t *)(mpc + 1);

	for (unsigned i = 0; i < cpus; i++) {
		struct mpc_cpu c = {
			.type = MP_PROCESSOR,
			.apicid = (uint8_t)i,
			.apicver = MP_APIC_VERSION,
			.cpuflag = MP_CPU_ENABLED | (i == 0 ? MP_CPU_BSP : 0),
			.featureflag = MP_FEATURE_FPU | MP_FEATURE_APIC,
		};
		add(&p, &count, &c, sizeof(c));
	}
	add(&p, &count, &(struct mpc_bus){ MP_BUS, MP_ISA_BUS, "ISA   " }, sizeof(struct mpc_bus));
	add(&p, &count, &(struct mpc_bus){ MP_BUS, MP_PCI_BUS, "PCI   " }, sizeof(struct mpc_bus));
	add(&p, &count,
	    &(struct mpc_ioapic){ MP_IOAPIC, ioapic_id, MP_IOAPIC_VER, 1, (uint32_t)IOAPIC_ADDR },
	    sizeof(struct mpc_ioapic));
	for (uint8_t irq = 0; irq < ISA_IRQS; irq++)
		add(&p, &count,
		    &(struct mpc_intsrc){ MP_INTSRC, MP_INT, 0, MP_ISA_BUS, irq, ioapic_id, irq },
		    sizeof(struct mpc_intsrc));
	/* A PCI source IRQ is the device number in bits 6:2 and the pin (0 = INTA) in bits 1:0. */
	for (uint8_t slot = 1; slot < PCI_SLOTS; slot++)
		for (uint8_t pin = 0; pin < 4; pin++)
			add(&p, &count,
			    &(struct mpc_intsrc){ MP_INTSRC, MP_INT, 0, MP_PCI_BUS,
						  (uint8_t)(slot << 2 | pin), ioapic_id,
						  (uint8_t)PCI_INTX_GSI(slot, pin) },
			    sizeof(struct mpc_intsrc));
	add(&p, &count,
	    &(struct mpc_intsrc){ MP_LINTSRC, MP_EXTINT, 0, MP_ISA_BUS, 0, MP_ALL_LAPICS, 0 },
	    sizeof(struct mpc_intsrc));
	add(&p, &count,
	    &(struct mpc_intsrc){ MP_LINTSRC, MP_NMI, 0, MP_ISA_BUS, 0, MP_ALL_LAPICS, 1 },
	    sizeof(struct mpc_intsrc));

	memcpy(mpc->signature, "PCMP", 4);
	mpc->length = (uint16_t)(p - (uint8_t *)mpc);
	mpc->spec = MP_SPEC_1_4;
	memcpy(mpc->oem, "VMM     ", 8);
	memcpy(mpc->productid, "vmm         ", 12);
	mpc->oemcount = count;
	mpc->lapic = (uint32_t)LAPIC_ADDR;
	mpc->checksum = (uint8_t)-acpi_sum(mpc, mpc->length);

	memcpy(mpf->signature, "_MP_", 4);
	mpf->physptr = (uint32_t)(BOOT_EBDA_START + sizeof(*mpf));
	mpf->length = 1;
	mpf->specification = MP_SPEC_1_4;
	mpf->checksum = (uint8_t)-acpi_sum(mpf, sizeof(*mpf));
	return 0;
}
