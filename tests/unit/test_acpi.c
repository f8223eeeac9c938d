/* ACPI tables: found the way Linux finds them, checksummed, linked, describing every vCPU, and
 * accepted by ACPICA's own disassembler (iasl -d, from acpica-tools). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arch/x86/acpi.h"
#include "arch/x86/aml.h"
#include "arch/x86/layout.h"

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
	uint8_t *rsdp, *xsdt, *fadt, *dsdt, *madt, *mcfg;
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
	assert_int_equal(n, 3);
	t->fadt = table(m, le64(t->xsdt + 36), "FACP");
	t->madt = table(m, le64(t->xsdt + 44), "APIC");
	t->mcfg = table(m, le64(t->xsdt + 52), "MCFG");
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

	/* MCFG: one ECAM allocation, segment 0, bus 0 only. */
	assert_int_equal(le32(t.mcfg + 4), 60);
	assert_int_equal(le64(t.mcfg + 44), PCI_ECAM_BASE);
	assert_int_equal(t.mcfg[52] | t.mcfg[53] << 8, 0);
	assert_int_equal(t.mcfg[54], 0);
	assert_int_equal(t.mcfg[55], 0);
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

static void rejects_bad_mmio_lists(void **state)
{
	struct boot_mmio_dev d[VIRTIO_MMIO_MAX + 1] = { { VIRTIO_MMIO_BASE, VIRTIO_MMIO_SIZE, 5 } };
	struct boot_args a = { .cpus = 1, .mmio = d, .nr_mmio = VIRTIO_MMIO_MAX + 1 };
	struct guest_mem m;
	uint64_t rsdp;

	for (unsigned i = 1; i <= VIRTIO_MMIO_MAX; i++)
		d[i] = (struct boot_mmio_dev){ VIRTIO_MMIO_BASE + i * VIRTIO_MMIO_SIZE,
					       VIRTIO_MMIO_SIZE, 5 };
	assert_int_equal(gmem_init(&m, 64 * MiB), 0);
	assert_int_equal(acpi_build(&m, &a, &rsdp), -EINVAL);
	a.nr_mmio = 1;
	assert_int_equal(acpi_build(&m, &a, &rsdp), 0);
	/* Memory32Fixed cannot describe a window that ends above 4 GiB. */
	d[0].base = 0xfffff800;
	assert_int_equal(acpi_build(&m, &a, &rsdp), -EINVAL);
	d[0] = (struct boot_mmio_dev){ VIRTIO_MMIO_BASE, 0, 5 };
	assert_int_equal(acpi_build(&m, &a, &rsdp), -EINVAL);
	a = (struct boot_args){ .cpus = 1, .nr_mmio = 1 };
	assert_int_equal(acpi_build(&m, &a, &rsdp), -EINVAL);
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

/* Runs cmd in dir; every output line that matches is a problem, printed. */
static int run_iasl(const char *dir, const char *args, const char *ok_line)
{
	char cmd[512], line[512];
	int problems = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "cd %s && iasl %s 2>&1; echo \"exit=$?\"", dir, args);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (fgets(line, sizeof(line), p)) {
		/* On disassembly any diagnostic names itself; a compile ends with a summary that
		 * must say zero of everything. */
		if (ok_line && strstr(line, ok_line))
			continue;
		if (strstr(line, "rror") || strstr(line, "arning") || strstr(line, "nvalid") ||
		    (!strncmp(line, "exit=", 5) && strcmp(line, "exit=0\n"))) {
			fprintf(stderr, "iasl %s: %s", args, line);
			problems++;
		}
	}
	assert_int_equal(pclose(p), 0);
	return problems;
}

/* The disassembly of dir/name.dsl without comments or white space, so that one pattern matches
 * a whole multi-line object. Caller frees. */
static char *dsl_squashed(const char *dir, const char *name)
{
	char path[256], line[1024];
	size_t cap = 1 << 20, len = 0;
	char *out = malloc(cap);
	FILE *f;

	assert_non_null(out);
	snprintf(path, sizeof(path), "%s/%s.dsl", dir, name);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		char *c = strstr(line, "//");
		bool in_comment = false;

		if (c)
			*c = 0;
		for (char *q = line; *q; q++) {
			if (!in_comment && q[0] == '/' && q[1] == '*') {
				in_comment = true;
			} else if (in_comment && q[0] == '*' && q[1] == '/') {
				in_comment = false;
				q++;
			} else if (!in_comment && *q != ' ' && *q != '\t' && *q != '\n') {
				assert_true(len + 1 < cap);
				out[len++] = *q;
			}
		}
	}
	out[len] = 0;
	assert_int_equal(fclose(f), 0);
	return out;
}

static unsigned count(const char *hay, const char *needle)
{
	unsigned n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static void expect(const char *dsl, const char *needle)
{
	if (!strstr(dsl, needle))
		fail_msg("disassembly lacks %s", needle);
}

/* How iasl prints a small integer. */
static const char *asl_int(unsigned v, char *buf, size_t size)
{
	if (v == 0)
		return "Zero";
	if (v == 1)
		return "One";
	snprintf(buf, size, "0x%02X", v);
	return buf;
}

static void check_dsdt(const char *dsl, const struct boot_mmio_dev *mmio, unsigned nr)
{
	static const unsigned slots[] = { 1, 2, 7, 8, 17, 31 };
	char want[512], b1[16];

	expect(dsl, "Scope(\\_SB){Device(COM1)");
	expect(dsl, "Device(PCI0){Name(_HID,EisaId(\"PNP0A08\"))Name(_CID,EisaId(\"PNP0A03\"))"
		    "Name(_SEG,Zero)Name(_BBN,Zero)Name(_UID,Zero)");
	expect(dsl, "WordBusNumber(ResourceProducer,MinFixed,MaxFixed,PosDecode,0x0000,0x0000,"
		    "0x0000,0x0000,0x0001,,,)");
	expect(dsl, "IO(Decode16,0x0CF8,0x0CF8,0x01,0x08,)");
	snprintf(want, sizeof(want),
		 "WordIO(ResourceProducer,MinFixed,MaxFixed,PosDecode,EntireRange,0x0000,0x%04X,"
		 "0x%04X,0x0000,0x%04X,", PCI_IO_BASE, PCI_IO_BASE + PCI_IO_SIZE - 1, PCI_IO_SIZE);
	expect(dsl, want);
	snprintf(want, sizeof(want),
		 "DWordMemory(ResourceProducer,PosDecode,MinFixed,MaxFixed,NonCacheable,ReadWrite,"
		 "0x00000000,0x%08llX,0x%08llX,0x00000000,0x%08llX,", PCI_MMIO_BASE,
		 PCI_MMIO_BASE + PCI_MMIO_SIZE - 1, PCI_MMIO_SIZE);
	expect(dsl, want);

	/* _PRT: 31 slots x 4 pins, each a GSI entry with source Zero. */
	expect(dsl, "Name(_PRT,Package(0x7C){Package(0x04){0x0001FFFF,Zero,Zero,0x11}");
	assert_int_equal(count(dsl, "Package(0x04){0x00"), 31 * 4);
	assert_int_equal(count(dsl, ",Zero,0x1"), 31 * 4); /* source Zero, GSI 16-23 */
	for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
		for (unsigned pin = 0; pin < 4; pin++) {
			snprintf(want, sizeof(want), "Package(0x04){0x%04XFFFF,%s,Zero,0x%02X}",
				 slots[i], asl_int(pin, b1, sizeof(b1)),
				 PCI_INTX_GSI(slots[i], pin));
			expect(dsl, want);
		}
	}
	assert_null(strstr(dsl, "0x0000FFFF")); /* slot 0, the host bridge, has no INTx */
	expect(dsl, "{0x0008FFFF,0x03,Zero,0x13}"); /* 16 + (8 + 3) % 8 */

	/* The ECAM window, reserved by a motherboard-resources device. */
	snprintf(want, sizeof(want),
		 "Name(_HID,EisaId(\"PNP0C02\"))Name(_CRS,ResourceTemplate(){Memory32Fixed("
		 "ReadWrite,0x%08llX,0x%08llX,)})", PCI_ECAM_BASE, PCI_ECAM_SIZE);
	expect(dsl, want);

	/* The power button: a PNP0C0C device, and the GED whose edge-triggered interrupt runs _EVT,
	 * which notifies it (vm.power-button). */
	expect(dsl, "Device(PWRB){Name(_HID,EisaId(\"PNP0C0C\"))Name(_UID,Zero)}");
	snprintf(want, sizeof(want),
		 "Device(GED){Name(_HID,\"ACPI0013\")Name(_UID,Zero)Name(_CRS,ResourceTemplate(){"
		 "Interrupt(ResourceConsumer,Edge,ActiveHigh,Exclusive,,,){0x%08X,}})"
		 "Method(_EVT,1,Serialized){If((Arg0==0x%02X)){Notify(\\_SB.PWRB,0x80)}}}",
		 ACPI_GED_GSI, ACPI_GED_GSI);
	expect(dsl, want);
	/* pvpanic, as QEMU has it: what Linux's pvpanic-mmio binds. */
	expect(dsl, "Device(PEVT){Name(_HID,\"QEMU0001\")Name(_CRS,ResourceTemplate(){"
		    "IO(Decode16,0x0505,0x0505,0x01,0x01,)})}");

	assert_int_equal(count(dsl, "\"LNRO0005\""), nr);
	for (unsigned n = 0; n < nr; n++) {
		snprintf(want, sizeof(want),
			 "Device(VR%02u){Name(_HID,\"LNRO0005\")Name(_UID,%s)Name(_CRS,"
			 "ResourceTemplate(){Memory32Fixed(ReadWrite,0x%08llX,0x%08llX,)"
			 "Interrupt(ResourceConsumer,Level,ActiveHigh,Exclusive,,,){0x%08X,}})}",
			 n, asl_int(n, b1, sizeof(b1)), (unsigned long long)mmio[n].base,
			 (unsigned long long)mmio[n].size, mmio[n].gsi);
		expect(dsl, want);
	}
}

/* iasl must disassemble every table with no errors or warnings (and it checks checksums); the
 * DSDT's disassembly must compile back cleanly and say what we meant. */
static void iasl_disassembles_cleanly(void **state)
{
	static const char *const names[] = { "xsdt", "facp", "dsdt", "apic", "mcfg" };
	static const unsigned counts[] = { 0, 1, VIRTIO_MMIO_MAX };
	static const uint32_t gsis[] = VIRTIO_MMIO_GSIS;
	struct boot_mmio_dev mmio[VIRTIO_MMIO_MAX];
	char dir[] = "/tmp/vmm-test-acpi-XXXXXX", cmd[512];
	int problems = 0;
	char *dsl;

	_Static_assert(sizeof(gsis) / sizeof(gsis[0]) == VIRTIO_MMIO_MAX, "one GSI per device");
	for (unsigned i = 0; i < VIRTIO_MMIO_MAX; i++)
		mmio[i] = (struct boot_mmio_dev){ VIRTIO_MMIO_BASE + i * VIRTIO_MMIO_SIZE,
						  VIRTIO_MMIO_SIZE, gsis[i] };
	assert_non_null(mkdtemp(dir));
	for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
		struct boot_args a = { .cpus = 2, .mmio = mmio, .nr_mmio = counts[c] };
		struct guest_mem m;
		struct tables t;
		uint64_t rsdp;

		assert_int_equal(gmem_init(&m, 64 * MiB), 0);
		assert_int_equal(acpi_build(&m, &a, &rsdp), 0);
		walk(&m, &t);
		dump(dir, "xsdt", t.xsdt);
		dump(dir, "facp", t.fadt);
		dump(dir, "dsdt", t.dsdt);
		dump(dir, "apic", t.madt);
		dump(dir, "mcfg", t.mcfg);
		gmem_free(&m);
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			snprintf(cmd, sizeof(cmd), "-d %s.dat", names[i]);
			problems += run_iasl(dir, cmd, NULL);
			snprintf(cmd, sizeof(cmd), "%s/%s.dsl", dir, names[i]);
			assert_int_equal(access(cmd, R_OK), 0); /* it wrote the disassembly */
		}
		problems += run_iasl(dir, "-p recompiled dsdt.dsl",
				     "0 Errors, 0 Warnings, 0 Remarks");
		dsl = dsl_squashed(dir, "dsdt");
		check_dsdt(dsl, mmio, counts[c]);
		free(dsl);
		dsl = dsl_squashed(dir, "mcfg");
		expect(dsl, "[02Ch00448]BaseAddress:00000000E0000000");
		expect(dsl, "SegmentGroupNumber:0000");
		expect(dsl, "StartBusNumber:00");
		expect(dsl, "EndBusNumber:00");
		free(dsl);
	}
	assert_int_equal(problems, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* PkgLength (ACPI 6.5, 20.2.4): one byte up to 63, then 2, 3 bytes, counting themselves. */
static void aml_package_lengths(void **state)
{
	static const unsigned elements[] = { 0, 60, 61, 62, 2000, 2047, 2048, 100000 };
	static uint8_t buf[1 << 20];

	for (size_t i = 0; i < sizeof(elements) / sizeof(elements[0]); i++) {
		struct aml a;
		uint32_t pkglen, nbytes;
		long len;

		/* A Scope holding `elements` two-byte Byte constants after its NameSeg. */
		aml_init(&a, buf, sizeof(buf));
		aml_scope_begin(&a, "TEST");
		for (unsigned e = 0; e < elements[i]; e++)
			aml_integer(&a, 0x10);
		aml_end(&a);
		len = aml_finish(&a);
		assert_true(len > 0);
		assert_int_equal(buf[0], 0x10);
		nbytes = (buf[1] >> 6) + 1;
		pkglen = nbytes == 1 ? buf[1] & 0x3f : buf[1] & 0xf;
		for (unsigned b = 1; b < nbytes; b++)
			pkglen |= (uint32_t)buf[1 + b] << (4 + 8 * (b - 1));
		assert_int_equal(pkglen, len - 1);
		assert_int_equal(pkglen, nbytes + 4 + 2 * elements[i]);
		assert_memory_equal(buf + 1 + nbytes, "TEST", 4);
	}
}

static void aml_errors_are_reported(void **state)
{
	uint8_t buf[64];
	struct aml a;

	aml_init(&a, buf, sizeof(buf));
	aml_package_begin(&a, 1);
	assert_int_equal(aml_finish(&a), -EINVAL); /* still open */

	aml_init(&a, buf, 8);
	aml_name(&a, "_HID");
	aml_string(&a, "LNRO0005");
	assert_int_equal(aml_finish(&a), -ENOSPC);

	aml_init(&a, buf, sizeof(buf));
	aml_name(&a, "TOOLONG");
	assert_int_equal(aml_finish(&a), -EINVAL);

	aml_init(&a, buf, sizeof(buf));
	aml_eisaid(&a, "PNP0A0G");
	assert_int_equal(aml_finish(&a), -EINVAL);

	/* Short segments are padded, paths get a dual-name prefix, EisaId is always a DWord. */
	aml_init(&a, buf, sizeof(buf));
	aml_name(&a, "\\_SB.PCI0");
	aml_eisaid(&a, "PNP0000");
	aml_name(&a, "_S5");
	assert_int_equal(aml_finish(&a), 1 + 1 + 1 + 8 + 5 + 1 + 4);
	assert_memory_equal(buf, "\x08\\\x2e_SB_PCI0\x0c\x41\xd0\x00\x00\x08_S5_", 21);

	/* A method with an If: MethodOp, PkgLength, name, flags (1 argument, Serialized); IfOp,
	 * PkgLength, LEqual (Arg0, 3); Notify (\_SB.PWRB, 0x80). */
	aml_init(&a, buf, sizeof(buf));
	aml_method_begin(&a, "_EVT", 1, true);
	aml_if_begin(&a);
	aml_lequal(&a);
	aml_arg(&a, 0);
	aml_integer(&a, 3);
	aml_notify(&a, "\\_SB.PWRB", 0x80);
	aml_end(&a);
	aml_end(&a);
	assert_int_equal(aml_finish(&a), 26);
	assert_memory_equal(buf, "\x14\x19_EVT\x09\xa0\x12\x93\x68\x0a\x03\x86\\\x2e_SB_PWRB\x0a\x80",
			    26);
	aml_init(&a, buf, sizeof(buf));
	aml_method_begin(&a, "_EVT", 8, false); /* at most 7 arguments */
	aml_end(&a);
	assert_int_equal(aml_finish(&a), -EINVAL);
	aml_init(&a, buf, sizeof(buf));
	aml_arg(&a, 7); /* Arg0 to Arg6 */
	assert_int_equal(aml_finish(&a), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tables_are_linked_and_checksummed),
		cmocka_unit_test(madt_lists_every_vcpu),
		cmocka_unit_test(rejects_impossible_counts),
		cmocka_unit_test(rejects_bad_mmio_lists),
		cmocka_unit_test(iasl_disassembles_cleanly),
		cmocka_unit_test(aml_package_lengths),
		cmocka_unit_test(aml_errors_are_reported),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
