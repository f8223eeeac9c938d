/* The MP table: found where Linux's default_find_smp_config looks first, checked as its
 * smp_check_mpc does, and saying what the MADT and the DSDT say. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "arch/x86/acpi.h"
#include "arch/x86/layout.h"
#include "arch/x86/mptable.h"

#define MiB (1ULL << 20)

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Linux's scan of [base, base + len): 16-byte steps, "_MP_", length 1, a zero checksum. */
static const uint8_t *scan(struct guest_mem *m, uint64_t base, uint64_t len)
{
	for (uint64_t a = base; a < base + len; a += 16) {
		const uint8_t *p = gmem_ptr(m, a, 16);
		if (p && !memcmp(p, "_MP_", 4) && p[8] == 1 && acpi_sum(p, 16) == 0)
			return p;
	}
	return NULL;
}

struct parsed {
	unsigned cpus, bsp, buses, ioapics, isa_irqs, pci_irqs, lints;
	int ioapic_id;
	uint8_t isa_pin[16];
	uint8_t pci_pin[32][4];
};

static void parse(struct guest_mem *m, struct parsed *r)
{
	const uint8_t *mpf, *mpc, *e;
	uint16_t len, count;

	memset(r, 0, sizeof(*r));
	memset(r->pci_pin, 0xff, sizeof(r->pci_pin));
	/* The first range Linux scans is empty; the second holds the pointer at its first step. */
	assert_null(scan(m, 0, 0x400));
	mpf = scan(m, 639 * 0x400, 0x400);
	assert_non_null(mpf);
	assert_ptr_equal(mpf, gmem_ptr(m, 639 * 0x400, 16));
	assert_int_equal(mpf[9], 4); /* specification 1.4 */
	assert_int_equal(mpf[11], 0); /* feature1: the table, not a default configuration */
	mpc = gmem_ptr(m, le32(mpf + 4), 44);
	assert_non_null(mpc);
	assert_memory_equal(mpc, "PCMP", 4);
	len = le16(mpc + 4);
	count = le16(mpc + 34);
	assert_int_equal(mpc[6], 4);
	assert_int_equal(le32(mpc + 36), LAPIC_ADDR);
	assert_true(le32(mpf + 4) + len <= BOOT_ACPI_ADDR);
	mpc = gmem_ptr(m, le32(mpf + 4), len);
	assert_non_null(mpc);
	assert_int_equal(acpi_sum(mpc, len), 0);

	e = mpc + 44;
	for (unsigned i = 0; i < count; i++) {
		assert_true(e < mpc + len);
		switch (e[0]) {
		case 0: /* processor */
			assert_int_equal(e[1], r->cpus); /* APIC ID = vCPU index */
			assert_true(e[3] & 1);
			if (e[3] & 2)
				r->bsp++, assert_int_equal(e[1], 0);
			r->cpus++;
			e += 20;
			continue;
		case 1:
			assert_true(!memcmp(e + 2, "ISA   ", 6) || !memcmp(e + 2, "PCI   ", 6));
			r->buses++;
			break;
		case 2:
			assert_int_equal(le32(e + 4), IOAPIC_ADDR);
			r->ioapic_id = e[1];
			r->ioapics++;
			break;
		case 3:
			/* type, irqtype, flags (2), source bus, its IRQ, IOAPIC ID, pin */
			assert_int_equal(e[6], r->ioapic_id);
			if (e[4] == 0) { /* the ISA bus */
				r->isa_pin[e[5]] = e[7];
				r->isa_irqs++;
			} else {
				r->pci_pin[e[5] >> 2][e[5] & 3] = e[7];
				r->pci_irqs++;
			}
			break;
		case 4:
			assert_int_equal(e[6], 0xff); /* every local APIC */
			r->lints++;
			break;
		default:
			fail_msg("entry type %u", e[0]);
		}
		e += 8;
	}
	assert_ptr_equal(e, mpc + len);
}

static void found_first_and_consistent(void **state)
{
	static const unsigned counts[] = { 1, 2, 7, 254 };
	struct guest_mem m;
	struct parsed r;

	(void)state;
	for (unsigned c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
		assert_int_equal(gmem_init(&m, 64 * MiB), 0);
		assert_int_equal(mptable_build(&m, counts[c]), 0);
		parse(&m, &r);
		assert_int_equal(r.cpus, counts[c]);
		assert_int_equal(r.bsp, 1);
		assert_int_equal(r.buses, 2);
		assert_int_equal(r.ioapics, 1);
		assert_int_equal(r.ioapic_id, counts[c]); /* the MADT's IOAPIC ID */
		assert_int_equal(r.isa_irqs, 16);
		for (unsigned irq = 0; irq < 16; irq++)
			assert_int_equal(r.isa_pin[irq], irq);
		assert_int_equal(r.pci_irqs, 31 * 4);
		for (unsigned slot = 1; slot < 32; slot++)
			for (unsigned pin = 0; pin < 4; pin++)
				assert_int_equal(r.pci_pin[slot][pin], PCI_INTX_GSI(slot, pin));
		assert_int_equal(r.lints, 2);
		gmem_free(&m);
	}
}

static void rejects_impossible_counts(void **state)
{
	struct guest_mem m;

	(void)state;
	assert_int_equal(gmem_init(&m, 64 * MiB), 0);
	assert_int_equal(mptable_build(&m, 0), -EINVAL);
	assert_int_equal(mptable_build(&m, 255), -EINVAL);
	gmem_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(found_first_and_consistent),
		cmocka_unit_test(rejects_impossible_counts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
