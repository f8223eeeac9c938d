/* The arm64 machine's device tree, written front to back with libfdt's sequential-write API. Node
 * names and unit addresses follow the usual virt-machine style (memory@40000000, pl011@9000000),
 * and `dtc -I dtb -O dts` reads the result without a warning (test_fdt checks). */
#include "arch/arm64/fdt.h"

#include <errno.h>
#include <libfdt.h>
#include <stdio.h>
#include <string.h>

#define MiB                (1ULL << 20)
#define GIC_ADDRESS_CELLS  2 /* the GIC's #address-cells: its unit address in interrupt-map */
#define MPIDR_AFFINITY     0xff00ffffffULL /* Aff3 (39:32), Aff2, Aff1, Aff0 (23:0) */
#define APB_PCLK_HZ        24000000
#define UART_16550_HZ      1843200
#define PCI_IRQ_MAP_CELLS  10 /* child: 3 address + 1 pin; GIC phandle; 2 address; 3 interrupt */
#define PCI_SPACE_IO       0x01000000U /* phys.hi of a PCI address: the space code (bits 25:24) */
#define PCI_SPACE_MEM32    0x02000000U
#define PCI_SPACE_MEM64_PF 0x43000000U /* 64-bit, prefetchable */

/* A writer that keeps the first libfdt error and ignores every call after it: each node below is
 * then a flat list of properties, and the error is looked at once, at the end. */
struct dt {
	void *fdt;
	int err; /* 0 or the first -FDT_ERR_* */
};

static void dt_status(struct dt *d, int err)
{
	if (!d->err && err)
		d->err = err;
}

static void begin(struct dt *d, const char *name)
{
	if (!d->err)
		dt_status(d, fdt_begin_node(d->fdt, name));
}

/* A node with a unit address: name@base, in hex without leading zeros. */
static void begin_at(struct dt *d, const char *name, uint64_t base)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "%s@%llx", name, (unsigned long long)base);
	begin(d, buf);
}

static void end(struct dt *d)
{
	if (!d->err)
		dt_status(d, fdt_end_node(d->fdt));
}

static void prop(struct dt *d, const char *name, const void *val, size_t len)
{
	if (!d->err)
		dt_status(d, fdt_property(d->fdt, name, val, (int)len));
}

/* A list of strings "a\0b": a string literal, whose size counts every NUL but the implied last. */
#define prop_strs(d, name, lit) prop(d, name, lit, sizeof(lit))

static void prop_str(struct dt *d, const char *name, const char *s)
{
	prop(d, name, s, strlen(s) + 1);
}

static void prop_empty(struct dt *d, const char *name)
{
	prop(d, name, NULL, 0);
}

static void prop_u32(struct dt *d, const char *name, uint32_t v)
{
	if (!d->err)
		dt_status(d, fdt_property_u32(d->fdt, name, v));
}

static void prop_u64(struct dt *d, const char *name, uint64_t v)
{
	if (!d->err)
		dt_status(d, fdt_property_u64(d->fdt, name, v));
}

/* Room for a property of n cells, filled with put_cell; NULL after an error. The buffer may have
 * any alignment, hence the memcpy. */
static void *prop_alloc(struct dt *d, const char *name, size_t n)
{
	void *val = NULL;

	if (!d->err)
		dt_status(d, fdt_property_placeholder(d->fdt, name, (int)(n * 4), &val));
	return d->err ? NULL : val;
}

static void put_cell(void *val, size_t i, uint32_t v)
{
	fdt32_t be = cpu_to_fdt32(v);

	memcpy((char *)val + i * 4, &be, 4);
}

/* n cells given in host order. */
static void prop_cells(struct dt *d, const char *name, const uint32_t *cells, size_t n)
{
	void *val = prop_alloc(d, name, n);

	for (size_t i = 0; val && i < n; i++)
		put_cell(val, i, cells[i]);
}

/* A region as 4 cells at cell 4 * i: 64-bit address and size (the root's #address-cells and
 * #size-cells). */
static void put_region(void *val, size_t i, const struct arm64_region *r)
{
	put_cell(val, 4 * i, (uint32_t)(r->base >> 32));
	put_cell(val, 4 * i + 1, (uint32_t)r->base);
	put_cell(val, 4 * i + 2, (uint32_t)(r->size >> 32));
	put_cell(val, 4 * i + 3, (uint32_t)r->size);
}

static void prop_reg(struct dt *d, const struct arm64_region *r)
{
	void *val = prop_alloc(d, "reg", 4);

	if (val)
		put_region(val, 0, r);
}

static void prop_irq(struct dt *d, uint32_t type, uint32_t num, uint32_t flags)
{
	prop_cells(d, "interrupts", (uint32_t[]){ type, num, flags }, 3);
}

static uint64_t cpu_mpidr(const struct arm64_machine *m, unsigned i)
{
	if (m->mpidr)
		return m->mpidr[i] & MPIDR_AFFINITY;
	/* KVM's reset value: 16 vCPUs to a cluster. */
	return (i % 16) | (uint64_t)(i / 16 % 256) << 8 | (uint64_t)(i / 4096 % 256) << 16;
}

/* On a GICv2 a PPI's flags also say which CPUs have it (bits 15:8, one per CPU): all of them. */
static uint32_t ppi_flags(const struct arm64_machine *m, uint32_t flags)
{
	if (m->gic.version == ARM64_GIC_V2)
		flags |= ((1U << m->nr_cpus) - 1) << 8;
	return flags;
}

static const char *uart_node(const struct arm64_machine *m)
{
	return m->uart.kind == ARM64_UART_PL011 ? "pl011" : "serial";
}

static void write_chosen(struct dt *d, const struct arm64_machine *m)
{
	char path[64];

	begin(d, "chosen");
	if (m->bootargs)
		prop_str(d, "bootargs", m->bootargs);
	if (m->initrd.size) {
		prop_u64(d, "linux,initrd-start", m->initrd.base);
		prop_u64(d, "linux,initrd-end", m->initrd.base + m->initrd.size);
	}
	if (m->uart.reg.size) {
		snprintf(path, sizeof(path), "/%s@%llx", uart_node(m),
			 (unsigned long long)m->uart.reg.base);
		prop_str(d, "stdout-path", path);
	}
	end(d);
}

static void write_cpus(struct dt *d, const struct arm64_machine *m)
{
	uint32_t cells = 1;

	/* One cell holds Aff2-Aff0; Aff3 needs two. */
	for (unsigned i = 0; i < m->nr_cpus; i++)
		if (cpu_mpidr(m, i) >> 32)
			cells = 2;
	begin(d, "cpus");
	prop_u32(d, "#address-cells", cells);
	prop_u32(d, "#size-cells", 0);
	for (unsigned i = 0; i < m->nr_cpus; i++) {
		uint64_t id = cpu_mpidr(m, i);

		begin_at(d, "cpu", id);
		prop_str(d, "device_type", "cpu");
		prop_str(d, "compatible", "arm,arm-v8");
		prop_str(d, "enable-method", "psci");
		if (cells == 2)
			prop_u64(d, "reg", id);
		else
			prop_u32(d, "reg", (uint32_t)id);
		end(d);
	}
	end(d);
}

static void write_gic(struct dt *d, const struct arm64_machine *m)
{
	begin_at(d, "intc", m->gic.dist.base);
	if (m->gic.version == ARM64_GIC_V3) {
		void *val;

		prop_str(d, "compatible", "arm,gic-v3");
		/* The distributor, then each redistributor region. */
		if ((val = prop_alloc(d, "reg", 4 * (1 + (size_t)m->gic.nr_redist)))) {
			put_region(val, 0, &m->gic.dist);
			for (unsigned i = 0; i < m->gic.nr_redist; i++)
				put_region(val, 1 + i, &m->gic.redist[i]);
		}
		if (m->gic.nr_redist > 1)
			prop_u32(d, "#redistributor-regions", m->gic.nr_redist);
	} else {
		void *val;

		prop_str(d, "compatible", "arm,cortex-a15-gic");
		/* The distributor, then the CPU interface. */
		if ((val = prop_alloc(d, "reg", 8))) {
			put_region(val, 0, &m->gic.dist);
			put_region(val, 1, &m->gic.cpu);
		}
	}
	prop_u32(d, "#interrupt-cells", 3);
	prop_empty(d, "interrupt-controller");
	/* Address cells for the ITS below, and for interrupt-map's parent unit address. */
	prop_u32(d, "#address-cells", GIC_ADDRESS_CELLS);
	prop_u32(d, "#size-cells", 2);
	prop_empty(d, "ranges");
	prop_irq(d, ARM64_FDT_IRQ_PPI, ARM64_PPI_GIC_MAINT,
		 ppi_flags(m, ARM64_FDT_IRQ_LEVEL_HIGH));
	prop_u32(d, "phandle", ARM64_FDT_PHANDLE_GIC);
	if (m->gic.version == ARM64_GIC_V3 && m->gic.its.size) {
		begin_at(d, "its", m->gic.its.base);
		prop_str(d, "compatible", "arm,gic-v3-its");
		prop_empty(d, "msi-controller");
		prop_u32(d, "#msi-cells", 1);
		prop_reg(d, &m->gic.its);
		prop_u32(d, "phandle", ARM64_FDT_PHANDLE_ITS);
		end(d);
	}
	end(d);
}

static void write_timer(struct dt *d, const struct arm64_machine *m)
{
	/* The order is the binding's: secure, non-secure physical, virtual, hypervisor. */
	static const uint32_t ppis[] = { ARM64_PPI_TIMER_SEC, ARM64_PPI_TIMER_PHYS,
					 ARM64_PPI_TIMER_VIRT, ARM64_PPI_TIMER_HYP };
	uint32_t cells[3 * 4];

	for (unsigned i = 0; i < 4; i++) {
		cells[3 * i] = ARM64_FDT_IRQ_PPI;
		cells[3 * i + 1] = ppis[i];
		cells[3 * i + 2] = ppi_flags(m, ARM64_FDT_IRQ_LEVEL_LOW);
	}
	begin(d, "timer");
	prop_str(d, "compatible", "arm,armv8-timer");
	prop_cells(d, "interrupts", cells, 3 * 4);
	/* The timer keeps counting in every power state a KVM vCPU has. */
	prop_empty(d, "always-on");
	end(d);
}

/* The PL011, PL031 and PL061 name the APB clock of the AMBA bus; Linux's drivers want it to exist. */
static void write_clock(struct dt *d)
{
	begin(d, "apb-pclk");
	prop_str(d, "compatible", "fixed-clock");
	prop_u32(d, "#clock-cells", 0);
	prop_u32(d, "clock-frequency", APB_PCLK_HZ);
	prop_str(d, "clock-output-names", "clk24mhz");
	prop_u32(d, "phandle", ARM64_FDT_PHANDLE_CLK);
	end(d);
}

static void write_uart(struct dt *d, const struct arm64_machine *m)
{
	begin_at(d, uart_node(m), m->uart.reg.base);
	if (m->uart.kind == ARM64_UART_PL011) {
		prop_strs(d, "compatible", "arm,pl011\0arm,primecell");
		prop_strs(d, "clock-names", "uartclk\0apb_pclk");
		prop_cells(d, "clocks",
			   (uint32_t[]){ ARM64_FDT_PHANDLE_CLK, ARM64_FDT_PHANDLE_CLK }, 2);
	} else {
		prop_str(d, "compatible", "ns16550a");
		prop_u32(d, "clock-frequency", UART_16550_HZ);
		prop_u32(d, "reg-shift", 0);
	}
	prop_reg(d, &m->uart.reg);
	prop_irq(d, ARM64_FDT_IRQ_SPI, m->uart.spi, ARM64_FDT_IRQ_LEVEL_HIGH);
	end(d);
}

static void write_rtc(struct dt *d, const struct arm64_machine *m)
{
	begin_at(d, "pl031", m->rtc.reg.base);
	prop_strs(d, "compatible", "arm,pl031\0arm,primecell");
	prop_reg(d, &m->rtc.reg);
	prop_irq(d, ARM64_FDT_IRQ_SPI, m->rtc.spi, ARM64_FDT_IRQ_LEVEL_HIGH);
	prop_str(d, "clock-names", "apb_pclk");
	prop_u32(d, "clocks", ARM64_FDT_PHANDLE_CLK);
	end(d);
}

/* The PL061 (Linux's gpio-pl061) and the power button on its pin: gpio-keys (Linux's
 * Documentation/devicetree/bindings/input/gpio-keys.yaml) reports the pin going high as
 * KEY_POWER pressed, and low as released. */
static void write_gpio(struct dt *d, const struct arm64_machine *m)
{
	begin_at(d, "pl061", m->gpio.reg.base);
	prop_strs(d, "compatible", "arm,pl061\0arm,primecell");
	prop_reg(d, &m->gpio.reg);
	prop_irq(d, ARM64_FDT_IRQ_SPI, m->gpio.spi, ARM64_FDT_IRQ_LEVEL_HIGH);
	prop_empty(d, "gpio-controller");
	prop_u32(d, "#gpio-cells", 2);
	prop_str(d, "clock-names", "apb_pclk");
	prop_u32(d, "clocks", ARM64_FDT_PHANDLE_CLK);
	prop_u32(d, "phandle", ARM64_FDT_PHANDLE_GPIO);
	end(d);
	begin(d, "gpio-keys");
	prop_str(d, "compatible", "gpio-keys");
	begin(d, "poweroff");
	prop_str(d, "label", "GPIO Key Poweroff");
	prop_u32(d, "linux,code", ARM64_FDT_KEY_POWER);
	/* the pin, active high (the second cell's flags: 0) */
	prop_cells(d, "gpios", (uint32_t[]){ ARM64_FDT_PHANDLE_GPIO, m->gpio.power_pin, 0 }, 3);
	end(d);
	end(d);
}

/* pvpanic (Linux's pvpanic-mmio, of its "qemu,pvpanic-mmio" binding): one byte register. */
static void write_pvpanic(struct dt *d, const struct arm64_machine *m)
{
	begin_at(d, "pvpanic", m->pvpanic.base);
	prop_str(d, "compatible", "qemu,pvpanic-mmio");
	prop_reg(d, &m->pvpanic);
	end(d);
}

static void write_virtio_mmio(struct dt *d, const struct arm64_fdt_mmio *v)
{
	begin_at(d, "virtio_mmio", v->reg.base);
	prop_str(d, "compatible", "virtio,mmio");
	prop_reg(d, &v->reg);
	prop_irq(d, ARM64_FDT_IRQ_SPI, v->spi,
		 v->edge ? ARM64_FDT_IRQ_EDGE_RISING : ARM64_FDT_IRQ_LEVEL_HIGH);
	prop_empty(d, "dma-coherent");
	end(d);
}

/* One entry of ranges: a PCI address (3 cells), a CPU address (2), a size (2). */
static void put_range(void *val, size_t entry, uint32_t space, const struct arm64_pci_window *w)
{
	uint32_t cells[7] = { space,
			      (uint32_t)(w->pci >> 32),
			      (uint32_t)w->pci,
			      (uint32_t)(w->cpu >> 32),
			      (uint32_t)w->cpu,
			      (uint32_t)(w->size >> 32),
			      (uint32_t)w->size };

	for (size_t i = 0; i < 7; i++)
		put_cell(val, entry * 7 + i, cells[i]);
}

static void write_pci(struct dt *d, const struct arm64_machine *m)
{
	size_t nr_ranges = m->pci.mem64.size ? 3 : 2;
	size_t map_cells = (size_t)m->pci.nr_slots * 4 * PCI_IRQ_MAP_CELLS;
	void *val;

	begin_at(d, "pcie", m->pci.ecam.base);
	prop_str(d, "compatible", "pci-host-ecam-generic");
	prop_str(d, "device_type", "pci");
	prop_u32(d, "#address-cells", 3);
	prop_u32(d, "#size-cells", 2);
	prop_u32(d, "#interrupt-cells", 1);
	prop_cells(d, "bus-range", (uint32_t[]){ 0, (uint32_t)(m->pci.ecam.size / MiB - 1) }, 2);
	prop_reg(d, &m->pci.ecam);
	prop_u32(d, "linux,pci-domain", 0);
	prop_empty(d, "dma-coherent");
	if ((val = prop_alloc(d, "ranges", 7 * nr_ranges))) {
		put_range(val, 0, PCI_SPACE_IO, &m->pci.io);
		put_range(val, 1, PCI_SPACE_MEM32, &m->pci.mem32);
		if (nr_ranges == 3)
			put_range(val, 2, PCI_SPACE_MEM64_PF, &m->pci.mem64);
	}
	/* Match the device number (phys.hi bits 15:11) and the pin; every slot has an entry. */
	prop_cells(d, "interrupt-map-mask", (uint32_t[]){ 0xf800, 0, 0, 7 }, 4);
	if ((val = prop_alloc(d, "interrupt-map", map_cells))) {
		size_t c = 0;

		for (uint32_t slot = 0; slot < m->pci.nr_slots; slot++) {
			for (uint32_t pin = 0; pin < 4; pin++) {
				uint32_t entry[PCI_IRQ_MAP_CELLS] = {
					slot << 11,
					0,
					0,
					pin + 1, /* INTA is 1 */
					ARM64_FDT_PHANDLE_GIC,
					0,
					0, /* the GIC's unit address: GIC_ADDRESS_CELLS of 0 */
					ARM64_FDT_IRQ_SPI,
					m->pci.intx_spi + (slot + pin) % 4,
					ARM64_FDT_IRQ_LEVEL_HIGH,
				};

				for (size_t i = 0; i < PCI_IRQ_MAP_CELLS; i++)
					put_cell(val, c++, entry[i]);
			}
		}
	}
	/* MSIs through the ITS; the device ID is the requester ID (bus, device, function). */
	if (m->gic.version == ARM64_GIC_V3 && m->gic.its.size)
		prop_cells(d, "msi-map", (uint32_t[]){ 0, ARM64_FDT_PHANDLE_ITS, 0, 0x10000 }, 4);
	end(d);
}

static int check(const struct arm64_machine *m)
{
	if (!m->nr_cpus)
		return -EINVAL;
	if (m->gic.version == ARM64_GIC_V2 && m->nr_cpus > ARM64_GICV2_MAX_CPUS)
		return -EINVAL;
	if (m->gic.version == ARM64_GIC_V3 && (!m->gic.nr_redist || !m->gic.redist))
		return -EINVAL;
	if (m->nr_mmio && !m->mmio)
		return -EINVAL;
	if (m->gpio.reg.size && m->gpio.power_pin >= 8) /* a PL061 has 8 pins */
		return -EINVAL;
	if (m->pci.ecam.size && (m->pci.ecam.size % MiB || m->pci.ecam.size > 256 * MiB ||
				 !m->pci.nr_slots || m->pci.nr_slots > 32))
		return -EINVAL;
	return 0;
}

size_t arm64_fdt_size(const struct arm64_machine *m)
{
	/* Every node but those counted below, every property name, the header: about 2.5 KiB
	 * measured for the largest such tree (GICv3 with an ITS, PL011, RTC, GPIO and its key,
	 * pvpanic, PCI without its map). Then each repeated node at its largest, rounded up: a CPU with a 64-bit reg, a
	 * redistributor region, a virtio-mmio device with a 48-bit address, a slot's 4 entries. */
	size_t size = 4096;

	size += (m->model ? strlen(m->model) : 0) + (m->bootargs ? strlen(m->bootargs) : 0) + 8;
	size += (size_t)m->nr_cpus * 128;
	size += (size_t)m->gic.nr_redist * 16;
	size += (size_t)m->nr_mmio * 128;
	size += (size_t)m->pci.nr_slots * 4 * PCI_IRQ_MAP_CELLS * 4;
	return size;
}

int arm64_fdt_build(const struct arm64_machine *m, void *buf, size_t size)
{
	struct dt d = { .fdt = buf };
	int ret;

	if ((ret = check(m)))
		return ret;
	if (size > INT32_MAX)
		size = INT32_MAX;
	dt_status(&d, fdt_create(buf, (int)size));
	dt_status(&d, d.err ? 0 : fdt_finish_reservemap(buf));

	begin(&d, "");
	prop_str(&d, "compatible", "linux,dummy-virt");
	prop_str(&d, "model", m->model ? m->model : "vmm");
	prop_u32(&d, "#address-cells", 2);
	prop_u32(&d, "#size-cells", 2);
	prop_u32(&d, "interrupt-parent", ARM64_FDT_PHANDLE_GIC);

	write_chosen(&d, m);
	begin_at(&d, "memory", m->ram.base);
	prop_str(&d, "device_type", "memory");
	prop_reg(&d, &m->ram);
	end(&d);
	write_cpus(&d, m);
	begin(&d, "psci");
	prop_strs(&d, "compatible", "arm,psci-1.0\0arm,psci-0.2");
	prop_str(&d, "method", m->psci == ARM64_PSCI_SMC ? "smc" : "hvc");
	end(&d);
	write_timer(&d, m);
	write_gic(&d, m);
	if ((m->uart.reg.size && m->uart.kind == ARM64_UART_PL011) || m->rtc.reg.size ||
	    m->gpio.reg.size)
		write_clock(&d);
	if (m->uart.reg.size)
		write_uart(&d, m);
	if (m->rtc.reg.size)
		write_rtc(&d, m);
	if (m->gpio.reg.size)
		write_gpio(&d, m);
	if (m->pvpanic.size)
		write_pvpanic(&d, m);
	for (unsigned i = 0; i < m->nr_mmio; i++)
		write_virtio_mmio(&d, &m->mmio[i]);
	if (m->pci.ecam.size)
		write_pci(&d, m);
	end(&d);

	dt_status(&d, d.err ? 0 : fdt_finish(buf));
	if (d.err == -FDT_ERR_NOSPACE)
		return -ENOSPC;
	return d.err ? -EINVAL : 0;
}
