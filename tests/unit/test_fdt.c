/* The arm64 device tree, read back through libfdt's reader as a kernel would: every node and
 * property of several machines (GICv3 with an ITS, GICv2; 1 and 4 CPUs; with and without an
 * initrd; PL011 and 16550), every phandle resolved, and dtc (device-tree-compiler) reading each
 * blob without a warning. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arch/arm64/fdt.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

/* A machine laid out like the usual virt one. */
#define RAM_BASE    0x40000000ULL
#define GIC_DIST    0x08000000ULL
#define GIC_CPU     0x08010000ULL
#define GIC_ITS     0x08080000ULL
#define GIC_REDIST  0x080a0000ULL
#define UART_BASE   0x09000000ULL
#define RTC_BASE    0x09010000ULL
#define GPIO_BASE   0x09040000ULL
#define PANIC_BASE  0x09050000ULL
#define MMIO_BASE   0x0a000000ULL
#define ECAM_BASE   0x4010000000ULL
#define PCI_IO_CPU  0x3eff0000ULL
#define PCI_MEM_CPU 0x10000000ULL
#define PCI_MEM_SZ  0x2eff0000ULL
#define PCI_HI_CPU  0x8000000000ULL
#define UART_SPI    1
#define RTC_SPI     2
#define GPIO_SPI    7
#define INTX_SPI    3
#define MMIO_SPI    16

static const struct arm64_region redist[] = { { GIC_REDIST, 4 * 0x20000 } };
static const struct arm64_fdt_mmio mmio[] = {
	{ { MMIO_BASE, 0x200 }, MMIO_SPI, false },
	{ { MMIO_BASE + 0x200, 0x200 }, MMIO_SPI + 1, true },
	{ { MMIO_BASE + 0x400, 0x200 }, MMIO_SPI + 2, false },
};

struct shape {
	enum arm64_gic_version gic;
	bool its;
	unsigned cpus;
	bool initrd;
	enum arm64_uart_kind uart;
};

static struct arm64_machine machine(struct shape s)
{
	struct arm64_machine m = {
		.model = "vmm test machine",
		.ram = { RAM_BASE, 512 * MiB },
		.nr_cpus = s.cpus,
		.gic = { .version = s.gic, .dist = { GIC_DIST, 0x10000 } },
		.uart = { s.uart, { UART_BASE, 0x1000 }, UART_SPI },
		.rtc = { { RTC_BASE, 0x1000 }, RTC_SPI },
		.gpio = { { GPIO_BASE, 0x1000 }, GPIO_SPI, 3 },
		.pvpanic = { PANIC_BASE, 0x1000 },
		.bootargs = "console=ttyAMA0 earlycon",
		.mmio = mmio,
		.nr_mmio = 3,
		.pci = {
			.ecam = { ECAM_BASE, 256 * MiB },
			.io = { PCI_IO_CPU, 0, 0x10000 },
			.mem32 = { PCI_MEM_CPU, PCI_MEM_CPU, PCI_MEM_SZ },
			.mem64 = { PCI_HI_CPU, PCI_HI_CPU, PCI_HI_CPU },
			.intx_spi = INTX_SPI,
			.nr_slots = 32,
		},
	};

	if (s.gic == ARM64_GIC_V3) {
		m.gic.redist = redist;
		m.gic.nr_redist = 1;
		if (s.its)
			m.gic.its = (struct arm64_region){ GIC_ITS, 0x20000 };
	} else {
		m.gic.cpu = (struct arm64_region){ GIC_CPU, 0x10000 };
	}
	if (s.initrd)
		m.initrd = (struct arm64_region){ RAM_BASE + 64 * MiB, 3 * MiB + 5 };
	return m;
}

/* dtc decompiles the blob; it must say nothing (a warning is a malformed node) and succeed. */
static void dtc_reads_cleanly(const void *fdt)
{
	char path[] = "/tmp/vmm-test-fdt-XXXXXX", cmd[128], out[4096];
	int fd = mkstemp(path);
	size_t n;
	FILE *p;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, fdt, fdt_totalsize(fdt)), fdt_totalsize(fdt));
	close(fd);
	snprintf(cmd, sizeof(cmd), "dtc -I dtb -O dts -o /dev/null %s 2>&1", path);
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = 0;
	if (pclose(p) != 0 || n)
		fail_msg("dtc (device-tree-compiler) on the blob: exit not 0 or output: %s", out);
	unlink(path);
}

/* Builds m into a buffer of the size arm64_fdt_size promises; checks the header and dtc. */
static void *build(const struct arm64_machine *m)
{
	size_t size = arm64_fdt_size(m);
	void *fdt = malloc(size);

	assert_non_null(fdt);
	assert_int_equal(arm64_fdt_build(m, fdt, size), 0);
	assert_int_equal(fdt_check_header(fdt), 0);
	assert_true(fdt_totalsize(fdt) <= size);
	dtc_reads_cleanly(fdt);
	return fdt;
}

static int node(const void *fdt, const char *path)
{
	int off = fdt_path_offset(fdt, path);

	if (off < 0)
		fail_msg("no node %s: %s", path, fdt_strerror(off));
	return off;
}

static const void *prop(const void *fdt, int off, const char *name, int *len)
{
	const void *val = fdt_getprop(fdt, off, name, len);

	if (!val)
		fail_msg("node %s has no %s", fdt_get_name(fdt, off, NULL), name);
	return val;
}

static void no_prop(const void *fdt, int off, const char *name)
{
	if (fdt_getprop(fdt, off, name, NULL))
		fail_msg("node %s has %s", fdt_get_name(fdt, off, NULL), name);
}

/* A property of exactly n cells; cell i in host order. */
static uint32_t cell(const void *val, int i)
{
	fdt32_t be;

	memcpy(&be, (const char *)val + 4 * i, 4);
	return fdt32_to_cpu(be);
}

static void expect_cells(const void *fdt, int off, const char *name, const uint32_t *want,
			 int n)
{
	int len;
	const void *val = prop(fdt, off, name, &len);

	assert_int_equal(len, 4 * n);
	for (int i = 0; i < n; i++)
		if (cell(val, i) != want[i])
			fail_msg("%s/%s cell %d: %#x, not %#x", fdt_get_name(fdt, off, NULL), name,
				 i, cell(val, i), want[i]);
}

#define EXPECT_CELLS(fdt, off, name, ...)                                                          \
	expect_cells(fdt, off, name, (uint32_t[]){ __VA_ARGS__ },                                  \
		     sizeof((uint32_t[]){ __VA_ARGS__ }) / 4)

static void expect_u32(const void *fdt, int off, const char *name, uint32_t v)
{
	expect_cells(fdt, off, name, &v, 1);
}

/* A string, or with a literal "a\0b" a string list, compared with every NUL. */
static void expect_bytes(const void *fdt, int off, const char *name, const char *want, int len)
{
	int got;
	const void *val = prop(fdt, off, name, &got);

	if (got != len || memcmp(val, want, len))
		fail_msg("%s/%s is not \"%s\" (%d bytes)", fdt_get_name(fdt, off, NULL), name, want,
			 len);
}

#define EXPECT_STRS(fdt, off, name, lit) expect_bytes(fdt, off, name, lit, sizeof(lit))

static void expect_empty(const void *fdt, int off, const char *name)
{
	int len;

	prop(fdt, off, name, &len);
	assert_int_equal(len, 0);
}

/* reg as 64-bit address and size pairs (the root's cells). */
static void expect_reg(const void *fdt, int off, const struct arm64_region *r, int n)
{
	uint32_t want[4 * 4];

	assert_true(n <= 4);
	for (int i = 0; i < n; i++) {
		want[4 * i] = (uint32_t)(r[i].base >> 32);
		want[4 * i + 1] = (uint32_t)r[i].base;
		want[4 * i + 2] = (uint32_t)(r[i].size >> 32);
		want[4 * i + 3] = (uint32_t)r[i].size;
	}
	expect_cells(fdt, off, "reg", want, 4 * n);
}

/* The node a one-cell phandle property points at. */
static int follow(const void *fdt, int off, const char *name, int index)
{
	const void *val = prop(fdt, off, name, NULL);
	int target = fdt_node_offset_by_phandle(fdt, cell(val, index));

	if (target < 0)
		fail_msg("%s/%s: phandle %u resolves to nothing", fdt_get_name(fdt, off, NULL),
			 name, cell(val, index));
	return target;
}

static void check_root_and_memory(const void *fdt, const struct arm64_machine *m)
{
	int root = node(fdt, "/"), mem = node(fdt, "/memory@40000000");

	EXPECT_STRS(fdt, root, "compatible", "linux,dummy-virt");
	EXPECT_STRS(fdt, root, "model", "vmm test machine");
	expect_u32(fdt, root, "#address-cells", 2);
	expect_u32(fdt, root, "#size-cells", 2);
	assert_int_equal(follow(fdt, root, "interrupt-parent", 0), node(fdt, "/intc@8000000"));
	EXPECT_STRS(fdt, mem, "device_type", "memory");
	expect_reg(fdt, mem, &m->ram, 1);
}

static void check_chosen(const void *fdt, const struct arm64_machine *m, const char *uart)
{
	int chosen = node(fdt, "/chosen"), len;
	const char *path;

	EXPECT_STRS(fdt, chosen, "bootargs", "console=ttyAMA0 earlycon");
	if (m->initrd.size) {
		/* 64-bit, big-endian: two cells each. */
		EXPECT_CELLS(fdt, chosen, "linux,initrd-start", 0, (uint32_t)m->initrd.base);
		EXPECT_CELLS(fdt, chosen, "linux,initrd-end", 0,
			     (uint32_t)(m->initrd.base + m->initrd.size));
	} else {
		no_prop(fdt, chosen, "linux,initrd-start");
		no_prop(fdt, chosen, "linux,initrd-end");
	}
	path = prop(fdt, chosen, "stdout-path", &len);
	assert_int_equal(len, strlen(path) + 1);
	assert_string_equal(path, uart);
	assert_int_equal(node(fdt, path), node(fdt, uart));
}

static void check_cpus(const void *fdt, const struct arm64_machine *m)
{
	int cpus = node(fdt, "/cpus"), n = 0, child;

	expect_u32(fdt, cpus, "#address-cells", 1);
	expect_u32(fdt, cpus, "#size-cells", 0);
	fdt_for_each_subnode(child, fdt, cpus) {
		char name[16];

		snprintf(name, sizeof(name), "cpu@%x", n);
		assert_string_equal(fdt_get_name(fdt, child, NULL), name);
		EXPECT_STRS(fdt, child, "device_type", "cpu");
		EXPECT_STRS(fdt, child, "compatible", "arm,arm-v8");
		EXPECT_STRS(fdt, child, "enable-method", "psci");
		expect_u32(fdt, child, "reg", n); /* KVM's MPIDR for vCPU n < 16: Aff0 = n */
		n++;
	}
	assert_int_equal(n, m->nr_cpus);

	n = node(fdt, "/psci");
	EXPECT_STRS(fdt, n, "compatible", "arm,psci-1.0\0arm,psci-0.2");
	EXPECT_STRS(fdt, n, "method", "hvc");
}

static void check_timer(const void *fdt, const struct arm64_machine *m)
{
	int timer = node(fdt, "/timer");
	uint32_t f = ARM64_FDT_IRQ_LEVEL_LOW;

	if (m->gic.version == ARM64_GIC_V2)
		f |= ((1U << m->nr_cpus) - 1) << 8;
	EXPECT_STRS(fdt, timer, "compatible", "arm,armv8-timer");
	EXPECT_CELLS(fdt, timer, "interrupts", 1, 13, f, 1, 14, f, 1, 11, f, 1, 10, f);
	expect_empty(fdt, timer, "always-on");
}

static void check_gic(const void *fdt, const struct arm64_machine *m)
{
	int gic = node(fdt, "/intc@8000000");
	int its = fdt_path_offset(fdt, "/intc@8000000/its@8080000");
	uint32_t maint = ARM64_FDT_IRQ_LEVEL_HIGH;

	if (m->gic.version == ARM64_GIC_V3) {
		EXPECT_STRS(fdt, gic, "compatible", "arm,gic-v3");
		expect_reg(fdt, gic, (struct arm64_region[]){ m->gic.dist, redist[0] }, 2);
	} else {
		EXPECT_STRS(fdt, gic, "compatible", "arm,cortex-a15-gic");
		expect_reg(fdt, gic, (struct arm64_region[]){ m->gic.dist, m->gic.cpu }, 2);
		maint |= ((1U << m->nr_cpus) - 1) << 8;
	}
	no_prop(fdt, gic, "#redistributor-regions");
	expect_u32(fdt, gic, "#interrupt-cells", 3);
	expect_empty(fdt, gic, "interrupt-controller");
	expect_u32(fdt, gic, "#address-cells", 2);
	expect_u32(fdt, gic, "#size-cells", 2);
	expect_empty(fdt, gic, "ranges");
	EXPECT_CELLS(fdt, gic, "interrupts", 1, 9, maint);
	assert_int_equal(fdt_node_offset_by_phandle(fdt, ARM64_FDT_PHANDLE_GIC), gic);
	if (!m->gic.its.size) {
		assert_int_equal(its, -FDT_ERR_NOTFOUND);
		assert_int_equal(fdt_first_subnode(fdt, gic), -FDT_ERR_NOTFOUND);
		return;
	}
	assert_true(its >= 0);
	EXPECT_STRS(fdt, its, "compatible", "arm,gic-v3-its");
	expect_empty(fdt, its, "msi-controller");
	expect_u32(fdt, its, "#msi-cells", 1);
	expect_reg(fdt, its, &m->gic.its, 1);
	assert_int_equal(fdt_node_offset_by_phandle(fdt, ARM64_FDT_PHANDLE_ITS), its);
}

static void check_uart_and_rtc(const void *fdt, const struct arm64_machine *m)
{
	int clk = node(fdt, "/apb-pclk"), rtc = node(fdt, "/pl031@9010000"), uart;

	EXPECT_STRS(fdt, clk, "compatible", "fixed-clock");
	expect_u32(fdt, clk, "#clock-cells", 0);
	expect_u32(fdt, clk, "clock-frequency", 24000000);
	if (m->uart.kind == ARM64_UART_PL011) {
		uart = node(fdt, "/pl011@9000000");
		EXPECT_STRS(fdt, uart, "compatible", "arm,pl011\0arm,primecell");
		EXPECT_STRS(fdt, uart, "clock-names", "uartclk\0apb_pclk");
		assert_int_equal(follow(fdt, uart, "clocks", 0), clk);
		assert_int_equal(follow(fdt, uart, "clocks", 1), clk);
		assert_int_equal(fdt_path_offset(fdt, "/serial@9000000"), -FDT_ERR_NOTFOUND);
	} else {
		uart = node(fdt, "/serial@9000000");
		EXPECT_STRS(fdt, uart, "compatible", "ns16550a");
		expect_u32(fdt, uart, "clock-frequency", 1843200);
		expect_u32(fdt, uart, "reg-shift", 0);
		no_prop(fdt, uart, "clocks");
		assert_int_equal(fdt_path_offset(fdt, "/pl011@9000000"), -FDT_ERR_NOTFOUND);
	}
	expect_reg(fdt, uart, &m->uart.reg, 1);
	EXPECT_CELLS(fdt, uart, "interrupts", 0, UART_SPI, 4);

	EXPECT_STRS(fdt, rtc, "compatible", "arm,pl031\0arm,primecell");
	expect_reg(fdt, rtc, &m->rtc.reg, 1);
	EXPECT_CELLS(fdt, rtc, "interrupts", 0, RTC_SPI, 4);
	EXPECT_STRS(fdt, rtc, "clock-names", "apb_pclk");
	assert_int_equal(follow(fdt, rtc, "clocks", 0), clk);
}

/* The PL061, its power button for gpio-keys, and pvpanic. */
static void check_gpio_and_pvpanic(const void *fdt, const struct arm64_machine *m)
{
	int gpio = node(fdt, "/pl061@9040000"), keys = node(fdt, "/gpio-keys"), key, panic;

	EXPECT_STRS(fdt, gpio, "compatible", "arm,pl061\0arm,primecell");
	expect_reg(fdt, gpio, &m->gpio.reg, 1);
	EXPECT_CELLS(fdt, gpio, "interrupts", 0, GPIO_SPI, 4);
	expect_empty(fdt, gpio, "gpio-controller");
	expect_u32(fdt, gpio, "#gpio-cells", 2);
	EXPECT_STRS(fdt, gpio, "clock-names", "apb_pclk");
	assert_int_equal(follow(fdt, gpio, "clocks", 0), node(fdt, "/apb-pclk"));
	EXPECT_STRS(fdt, keys, "compatible", "gpio-keys");
	key = node(fdt, "/gpio-keys/poweroff");
	EXPECT_STRS(fdt, key, "label", "GPIO Key Poweroff");
	expect_u32(fdt, key, "linux,code", 116);
	assert_int_equal(follow(fdt, key, "gpios", 0), gpio);
	EXPECT_CELLS(fdt, key, "gpios", ARM64_FDT_PHANDLE_GPIO, 3, 0);

	panic = node(fdt, "/pvpanic@9050000");
	EXPECT_STRS(fdt, panic, "compatible", "qemu,pvpanic-mmio");
	expect_reg(fdt, panic, &m->pvpanic, 1);
}

static void check_virtio_mmio(const void *fdt)
{
	static const char *const paths[] = { "/virtio_mmio@a000000", "/virtio_mmio@a000200",
					     "/virtio_mmio@a000400" };

	for (int i = 0; i < 3; i++) {
		int dev = node(fdt, paths[i]);

		EXPECT_STRS(fdt, dev, "compatible", "virtio,mmio");
		expect_reg(fdt, dev, &mmio[i].reg, 1);
		EXPECT_CELLS(fdt, dev, "interrupts", 0, MMIO_SPI + i, i == 1 ? 1 : 4);
		expect_empty(fdt, dev, "dma-coherent");
	}
}

/* One interrupt-map entry: the child's slot and pin (1 = INTA), the GIC with 2 cells of unit
 * address, the SPI. */
static void check_intx(const void *fdt, const void *map, int gic, unsigned slot, unsigned pin)
{
	int e = (slot * 4 + pin) * 10;

	assert_int_equal(cell(map, e), slot << 11);
	assert_int_equal(cell(map, e + 1), 0);
	assert_int_equal(cell(map, e + 2), 0);
	assert_int_equal(cell(map, e + 3), pin + 1);
	assert_int_equal(fdt_node_offset_by_phandle(fdt, cell(map, e + 4)), gic);
	assert_int_equal(cell(map, e + 5), 0);
	assert_int_equal(cell(map, e + 6), 0);
	assert_int_equal(cell(map, e + 7), 0); /* SPI */
	assert_int_equal(cell(map, e + 8), INTX_SPI + (slot + pin) % 4);
	assert_int_equal(cell(map, e + 9), 4); /* level-high */
}

static void check_pci(const void *fdt, const struct arm64_machine *m)
{
	int pci = node(fdt, "/pcie@4010000000"), gic = node(fdt, "/intc@8000000"), len;
	const void *map;

	EXPECT_STRS(fdt, pci, "compatible", "pci-host-ecam-generic");
	EXPECT_STRS(fdt, pci, "device_type", "pci");
	expect_u32(fdt, pci, "#address-cells", 3);
	expect_u32(fdt, pci, "#size-cells", 2);
	expect_u32(fdt, pci, "#interrupt-cells", 1);
	EXPECT_CELLS(fdt, pci, "bus-range", 0, 255);
	expect_reg(fdt, pci, &m->pci.ecam, 1);
	expect_u32(fdt, pci, "linux,pci-domain", 0);
	expect_empty(fdt, pci, "dma-coherent");
	EXPECT_CELLS(fdt, pci, "ranges",
		     /* I/O: bus 0, CPU 0x3eff0000, 64 KiB */
		     0x01000000, 0, 0, 0, 0x3eff0000, 0, 0x10000,
		     /* 32-bit memory, identity */
		     0x02000000, 0, 0x10000000, 0, 0x10000000, 0, 0x2eff0000,
		     /* 64-bit prefetchable, 512 GiB at 512 GiB */
		     0x43000000, 0x80, 0, 0x80, 0, 0x80, 0);
	EXPECT_CELLS(fdt, pci, "interrupt-map-mask", 0xf800, 0, 0, 7);
	map = prop(fdt, pci, "interrupt-map", &len);
	assert_int_equal(len, 32 * 4 * 10 * 4);
	check_intx(fdt, map, gic, 0, 0);
	check_intx(fdt, map, gic, 1, 3);
	check_intx(fdt, map, gic, 2, 1);
	check_intx(fdt, map, gic, 31, 3);
	if (m->gic.its.size) {
		EXPECT_CELLS(fdt, pci, "msi-map", 0, ARM64_FDT_PHANDLE_ITS, 0, 0x10000);
		assert_int_equal(follow(fdt, pci, "msi-map", 1),
				 node(fdt, "/intc@8000000/its@8080000"));
	} else {
		no_prop(fdt, pci, "msi-map");
	}
}

static void check_machine(struct shape s)
{
	struct arm64_machine m = machine(s);
	void *fdt = build(&m);

	check_root_and_memory(fdt, &m);
	check_chosen(fdt, &m, s.uart == ARM64_UART_PL011 ? "/pl011@9000000" : "/serial@9000000");
	check_cpus(fdt, &m);
	check_timer(fdt, &m);
	check_gic(fdt, &m);
	check_uart_and_rtc(fdt, &m);
	check_gpio_and_pvpanic(fdt, &m);
	check_virtio_mmio(fdt);
	check_pci(fdt, &m);
	free(fdt);
}

static void gicv3_its_four_cpus_pl011_initrd(void **state)
{
	check_machine((struct shape){ ARM64_GIC_V3, true, 4, true, ARM64_UART_PL011 });
}

static void gicv3_one_cpu_16550(void **state)
{
	check_machine((struct shape){ ARM64_GIC_V3, false, 1, false, ARM64_UART_16550 });
}

static void gicv2_one_cpu_16550(void **state)
{
	check_machine((struct shape){ ARM64_GIC_V2, false, 1, false, ARM64_UART_16550 });
}

static void gicv2_four_cpus_pl011_initrd(void **state)
{
	check_machine((struct shape){ ARM64_GIC_V2, false, 4, true, ARM64_UART_PL011 });
}

/* MPIDRs the caller read from KVM: the affinity fields only, two cells once Aff3 is used; and
 * KVM's default numbering past 16 vCPUs (Aff1 counts clusters of 16). */
static void cpu_ids_are_mpidr_affinity(void **state)
{
	static const uint64_t ids[] = { 0x80000000, 0x80000101, 0x180010203ULL };
	struct arm64_machine m = machine((struct shape){ ARM64_GIC_V3, true, 3, false, 0 });
	void *fdt;
	int cpus;

	m.mpidr = ids; /* bit 31 (RES1) is not affinity */
	fdt = build(&m);
	cpus = node(fdt, "/cpus");
	expect_u32(fdt, cpus, "#address-cells", 2);
	EXPECT_CELLS(fdt, node(fdt, "/cpus/cpu@0"), "reg", 0, 0);
	EXPECT_CELLS(fdt, node(fdt, "/cpus/cpu@101"), "reg", 0, 0x101);
	EXPECT_CELLS(fdt, node(fdt, "/cpus/cpu@100010203"), "reg", 1, 0x10203);
	free(fdt);

	m = machine((struct shape){ ARM64_GIC_V3, true, 17, false, 0 });
	fdt = build(&m);
	expect_u32(fdt, node(fdt, "/cpus"), "#address-cells", 1);
	expect_u32(fdt, node(fdt, "/cpus/cpu@f"), "reg", 15);
	expect_u32(fdt, node(fdt, "/cpus/cpu@100"), "reg", 0x100);
	free(fdt);
}

/* What the caller leaves out is not there; what it chooses is. */
static void optional_parts(void **state)
{
	static const struct arm64_region two[] = { { GIC_REDIST, 0x40000 },
						   { 0x100000000, 0x40000 } };
	struct arm64_machine m = machine((struct shape){ ARM64_GIC_V3, true, 2, false, 1 });
	const void *map;
	void *fdt;
	int pci, len;

	m.rtc.reg.size = 0;
	m.gpio.reg.size = 0;
	m.pvpanic.size = 0;
	m.bootargs = NULL;
	m.model = NULL;
	m.psci = ARM64_PSCI_SMC;
	m.gic.redist = two;
	m.gic.nr_redist = 2;
	m.pci.mem64.size = 0;
	m.pci.nr_slots = 4;
	m.pci.ecam.size = 16 * MiB;
	m.nr_mmio = 0;
	fdt = build(&m);
	assert_int_equal(fdt_path_offset(fdt, "/pl031@9010000"), -FDT_ERR_NOTFOUND);
	assert_int_equal(fdt_path_offset(fdt, "/pl061@9040000"), -FDT_ERR_NOTFOUND);
	assert_int_equal(fdt_path_offset(fdt, "/gpio-keys"), -FDT_ERR_NOTFOUND);
	assert_int_equal(fdt_path_offset(fdt, "/pvpanic@9050000"), -FDT_ERR_NOTFOUND);
	assert_int_equal(fdt_path_offset(fdt, "/apb-pclk"), -FDT_ERR_NOTFOUND); /* 16550 only */
	assert_int_equal(fdt_path_offset(fdt, "/virtio_mmio@a000000"), -FDT_ERR_NOTFOUND);
	no_prop(fdt, node(fdt, "/chosen"), "bootargs");
	EXPECT_STRS(fdt, node(fdt, "/"), "model", "vmm");
	EXPECT_STRS(fdt, node(fdt, "/psci"), "method", "smc");
	expect_reg(fdt, node(fdt, "/intc@8000000"),
		   (struct arm64_region[]){ m.gic.dist, two[0], two[1] }, 3);
	expect_u32(fdt, node(fdt, "/intc@8000000"), "#redistributor-regions", 2);
	pci = node(fdt, "/pcie@4010000000");
	EXPECT_CELLS(fdt, pci, "bus-range", 0, 15);
	prop(fdt, pci, "ranges", &len);
	assert_int_equal(len, 2 * 7 * 4);
	map = prop(fdt, pci, "interrupt-map", &len);
	assert_int_equal(len, 4 * 4 * 10 * 4);
	check_intx(fdt, map, node(fdt, "/intc@8000000"), 3, 2);
	free(fdt);

	/* No UART: no stdout-path. No PCI: no bridge. */
	m.uart.reg.size = 0;
	m.pci.ecam.size = 0;
	fdt = build(&m);
	no_prop(fdt, node(fdt, "/chosen"), "stdout-path");
	assert_int_equal(fdt_path_offset(fdt, "/pcie@4010000000"), -FDT_ERR_NOTFOUND);
	free(fdt);
}

/* Every size short of the blob is -ENOSPC, never a broken blob; its own size is enough. */
static void small_buffer_is_enospc(void **state)
{
	struct arm64_machine m = machine((struct shape){ ARM64_GIC_V3, true, 4, true, 0 });
	void *fdt = build(&m);
	size_t need = fdt_totalsize(fdt);
	char *buf = malloc(need);

	assert_non_null(buf);
	for (size_t size = 0; size < need; size += size < 128 ? 1 : 97)
		assert_int_equal(arm64_fdt_build(&m, buf, size), -ENOSPC);
	assert_int_equal(arm64_fdt_build(&m, buf, need - 1), -ENOSPC);
	assert_int_equal(arm64_fdt_build(&m, buf, need), 0);
	assert_memory_equal(buf, fdt, need);
	free(buf);
	free(fdt);
}

/* arm64_fdt_size bounds the largest machines too (build() builds into exactly that). */
static void size_bound_holds(void **state)
{
	static struct arm64_fdt_mmio many[64];
	static uint64_t ids[512];
	struct arm64_machine m = machine((struct shape){ ARM64_GIC_V3, true, 512, true, 0 });
	char args[2048];
	void *fdt;

	for (unsigned i = 0; i < 64; i++)
		many[i] = (struct arm64_fdt_mmio){ { 0xffffff000000ULL + i * 0x200, 0x200 },
						   100 + i, i % 2 };
	for (unsigned i = 0; i < 512; i++)
		ids[i] = 0xff00000000ULL | (i / 256) << 16 | (i % 256);
	memset(args, 'x', sizeof(args) - 1);
	args[sizeof(args) - 1] = 0;
	m.bootargs = args;
	m.mmio = many;
	m.nr_mmio = 64;
	m.mpidr = ids;
	fdt = build(&m);
	free(fdt);
}

static void refuses_impossible_machines(void **state)
{
	struct arm64_machine m;
	char buf[4096];

	m = machine((struct shape){ ARM64_GIC_V3, true, 0, false, 0 });
	assert_int_equal(arm64_fdt_build(&m, buf, sizeof(buf)), -EINVAL);
	m = machine((struct shape){ ARM64_GIC_V2, false, 9, false, 0 });
	assert_int_equal(arm64_fdt_build(&m, buf, sizeof(buf)), -EINVAL);
	m = machine((struct shape){ ARM64_GIC_V3, true, 1, false, 0 });
	m.gic.nr_redist = 0;
	assert_int_equal(arm64_fdt_build(&m, buf, sizeof(buf)), -EINVAL);
	m = machine((struct shape){ ARM64_GIC_V3, true, 1, false, 0 });
	m.pci.ecam.size = MiB + MiB / 2;
	assert_int_equal(arm64_fdt_build(&m, buf, sizeof(buf)), -EINVAL);
	m = machine((struct shape){ ARM64_GIC_V3, true, 1, false, 0 });
	m.pci.nr_slots = 33;
	assert_int_equal(arm64_fdt_build(&m, buf, sizeof(buf)), -EINVAL);
	m = machine((struct shape){ ARM64_GIC_V3, true, 1, false, 0 });
	m.gpio.power_pin = 8;
	assert_int_equal(arm64_fdt_build(&m, buf, sizeof(buf)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(gicv3_its_four_cpus_pl011_initrd),
		cmocka_unit_test(gicv3_one_cpu_16550),
		cmocka_unit_test(gicv2_one_cpu_16550),
		cmocka_unit_test(gicv2_four_cpus_pl011_initrd),
		cmocka_unit_test(cpu_ids_are_mpidr_affinity),
		cmocka_unit_test(optional_parts),
		cmocka_unit_test(small_buffer_is_enospc),
		cmocka_unit_test(size_bound_holds),
		cmocka_unit_test(refuses_impossible_machines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
