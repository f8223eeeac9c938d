/* ACPI tables: found the way Linux finds them, checksummed, linked, describing every vCPU, and
 * accepted by ACPICA's own disassembler (iasl -d, from acpica-tools). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "boot/acpi.h"
#include "boot/boot.h"

#define MiB (1ULL << 20)

static uint32_t le32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/* Returns a checked pointer to the table at gpa after verifying its length and checksum. */
static uint8_t *table(struct guest_mem *m, uint64_t gpa, const char *sig)
{
	uint8_t *h = gmem_ptr(m, gpa, 36);
	uint32_t len;

	assert_non_null(h);
	assert_memory_equal(h, sig, 4);
	len = le32(h + 4);
	assert_true(len >= 36 && gpa + len <= BOOT_ACPI_END);
	assert_int_equal(acpi_sum(h, len), 0);
	return h;
}

/* Linux scans the BIOS area on 16-byte boundaries for the RSDP signature. */
static uint8_t *find_rsdp(struct guest_mem *m)
{
	for (uint64_t a = BOOT_ACPI_ADDR; a < BOOT_ACPI_END; a += 16) {
		uint8_t *p = gmem_ptr(m, a, 36);
		if (!memcmp(p, "RSD PTR ", 8))
			return p;
	}
	return NULL;
}

struct tables {
	uint8_t *rsdp, *xsdt, *fadt, *dsdt, *madt;
};

static void walk(struct guest_mem *m, struct tables *t)
{
	uint32_t n;

	t->rsdp = find_rsdp(m);
	assert_non_null(t->rsdp);
	assert_int_equal(acpi_sum(t->rsdp, 20), 0);
	assert_int_equal(acpi_sum(t->rsdp, 36), 0);
	assert_int_equal(t->rsdp[15], 2); /* revision 2: use the XSDT */
	t->xsdt = table(m, le64(t->rsdp + 24), "XSDT");
	n = (le32(t->xsdt + 4) - 36) / 8;
	assert_int_equal(n, 2);
	t->fadt = table(m, le64(t->xsdt + 36), "FACP");
	t->madt = table(m, le64(t->xsdt + 44), "APIC");
	assert_int_equal(le32(t->fadt + 40), le64(t->fadt + 140)); /* DSDT and X_DSDT agree */
	t->dsdt = table(m, le64(t->fadt + 140), "DSDT");
}

static void tables_are_linked_and_checksummed(void **state)
{
	struct guest_mem m;
	struct tables t;
	uint64_t rsdp;

	assert_int_equal(gmem_init(&m, 64 * MiB), 0);
	assert_int_equal(acpi_build(&m, &(struct boot_args){ .cpus = 3 }, &rsdp), 0);
	walk(&m, &t);
	assert_ptr_equal(gmem_ptr(&m, rsdp, 36), t.rsdp);

	/* FADT: hardware-reduced, with sleep control/status and reset registers in port I/O. */
	assert_int_equal(le32(t.fadt + 4), 276);
	assert_true(le32(t.fadt + 112) & (1U << 20));
	assert_true(le32(t.fadt + 112) & (1U << 10));
	assert_int_equal(t.fadt[116], 1); /* reset register: system I/O */
	assert_int_equal(le64(t.fadt + 120), ACPI_RESET_PORT);
	assert_int_equal(t.fadt[128], ACPI_RESET_VALUE);
	assert_int_equal(le64(t.fadt + 248), ACPI_SLEEP_CTL_PORT);
	assert_int_equal(le64(t.fadt + 260), ACPI_SLEEP_STS_PORT);
	gmem_free(&m);
}

/* Walks the MADT's entries: one enabled local APIC per vCPU with APIC ID = index, one IOAPIC. */
static void madt_lists_every_vcpu(void **state)
{
	static const unsigned counts[] = { 1, 2, 7, 254 };

	for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
		struct guest_mem m;
		struct tables t;
		uint64_t rsdp;
		unsigned lapics = 0, ioapics = 0;
		uint32_t len;

		assert_int_equal(gmem_init(&m, 64 * MiB), 0);
		assert_int_equal(acpi_build(&m, &(struct boot_args){ .cpus = counts[c] }, &rsdp), 0);
		walk(&m, &t);
		len = le32(t.madt + 4);
		assert_int_equal(le32(t.madt + 36), LAPIC_ADDR);
		for (uint32_t off = 44; off < len; off += t.madt[off + 1]) {
			assert_true(t.madt[off + 1] >= 2 && off + t.madt[off + 1] <= len);
			if (t.madt[off] == 0) {
				assert_int_equal(t.madt[off + 3], lapics); /* APIC ID */
				assert_int_equal(le32(t.madt + off + 4), 1);
				lapics++;
			} else if (t.madt[off] == 1) {
				assert_int_equal(le32(t.madt + off + 4), IOAPIC_ADDR);
				assert_int_equal(le32(t.madt + off + 8), 0); /* GSI base */
				ioapics++;
			}
		}
		assert_int_equal(lapics, counts[c]);
		assert_int_equal(ioapics, 1);
		gmem_free(&m);
	}
}

static void rejects_impossible_counts(void **state)
{
	struct guest_mem m;
	uint64_t rsdp;

	assert_int_equal(gmem_init(&m, 64 * MiB), 0);
	assert_int_equal(acpi_build(&m, &(struct boot_args){ .cpus = 0 }, &rsdp), -EINVAL);
	assert_int_equal(acpi_build(&m, &(struct boot_args){ .cpus = 256 }, &rsdp), -EINVAL);
	gmem_free(&m);
}

static void dump(const char *dir, const char *name, const uint8_t *t)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.dat", dir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(t, 1, le32(t + 4), f), le32(t + 4));
	assert_int_equal(fclose(f), 0);
}

/* iasl must disassemble every table with no errors or warnings (and it checks checksums). */
static void iasl_disassembles_cleanly(void **state)
{
	char dir[] = "/tmp/vmm-test-acpi-XXXXXX", cmd[512], line[512];
	static const char *const names[] = { "xsdt", "facp", "dsdt", "apic" };
	struct guest_mem m;
	struct tables t;
	uint64_t rsdp;
	FILE *p;
	int problems = 0;

	assert_non_null(mkdtemp(dir));
	assert_int_equal(gmem_init(&m, 64 * MiB), 0);
	assert_int_equal(acpi_build(&m, &(struct boot_args){ .cpus = 2 }, &rsdp), 0);
	walk(&m, &t);
	dump(dir, "xsdt", t.xsdt);
	dump(dir, "facp", t.fadt);
	dump(dir, "dsdt", t.dsdt);
	dump(dir, "apic", t.madt);
	for (size_t i = 0; i < 4; i++) {
		snprintf(cmd, sizeof(cmd), "cd %s && iasl -d %s.dat 2>&1; echo \"exit=$?\"", dir,
			 names[i]);
		p = popen(cmd, "r");
		assert_non_null(p);
		while (fgets(line, sizeof(line), p)) {
			/* iasl's summary says "0 Errors, 0 Warnings"-style lines only on compile; on
			 * disassembly any diagnostic names itself. */
			if (strstr(line, "rror") || strstr(line, "arning") || strstr(line, "nvalid") ||
			    (!strncmp(line, "exit=", 5) && strcmp(line, "exit=0\n"))) {
				fprintf(stderr, "iasl %s: %s", names[i], line);
				problems++;
			}
		}
		assert_int_equal(pclose(p), 0);
		snprintf(cmd, sizeof(cmd), "%s/%s.dsl", dir, names[i]);
		assert_int_equal(access(cmd, R_OK), 0); /* it wrote the disassembly */
	}
	assert_int_equal(problems, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	gmem_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tables_are_linked_and_checksummed),
		cmocka_unit_test(madt_lists_every_vcpu),
		cmocka_unit_test(rejects_impossible_counts),
		cmocka_unit_test(iasl_disassembles_cleanly),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
