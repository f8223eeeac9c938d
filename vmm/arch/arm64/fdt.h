/* The arm64 machine as the guest kernel learns it: a flattened device tree (the devicetree
 * specification, and Linux's Documentation/devicetree/bindings for each node), written with
 * libfdt's sequential-write API. Plain data in, a blob out: no KVM, no guest memory, so it is
 * built and tested on any host. docs/boot.md lists the nodes. */
#ifndef VMM_ARCH_ARM64_FDT_H
#define VMM_ARCH_ARM64_FDT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The phandles the tree's references use (cells of interrupt-parent, interrupt-map, clocks,
 * msi-map). Any distinct non-zero values would do. */
enum arm64_fdt_phandle {
	ARM64_FDT_PHANDLE_GIC = 1,
	ARM64_FDT_PHANDLE_ITS = 2,
	ARM64_FDT_PHANDLE_CLK = 3, /* the 24 MHz apb-pclk the PL011, PL031 and PL061 name */
	ARM64_FDT_PHANDLE_GPIO = 4, /* the PL061, whose pin gpio-keys names */
};

#define ARM64_FDT_KEY_POWER 116 /* Linux's input event code KEY_POWER */

/* The interrupt flags of the GIC bindings' third cell (Linux's IRQ_TYPE_*). */
#define ARM64_FDT_IRQ_EDGE_RISING 1
#define ARM64_FDT_IRQ_LEVEL_HIGH  4
#define ARM64_FDT_IRQ_LEVEL_LOW   8

/* The GIC bindings' first cell. */
#define ARM64_FDT_IRQ_SPI 0
#define ARM64_FDT_IRQ_PPI 1

/* Private peripheral interrupts, numbered as the device tree writes them (INTID - 16). */
#define ARM64_PPI_GIC_MAINT   9  /* the virtual GIC's maintenance interrupt */
#define ARM64_PPI_TIMER_HYP   10 /* EL2 physical timer */
#define ARM64_PPI_TIMER_VIRT  11 /* EL1 virtual timer: the one a KVM guest uses */
#define ARM64_PPI_TIMER_SEC   13 /* secure EL1 physical timer */
#define ARM64_PPI_TIMER_PHYS  14 /* non-secure EL1 physical timer */

#define ARM64_GICV2_MAX_CPUS 8 /* a GICv2 interrupt targets a CPU by one bit of 8 */

struct arm64_region {
	uint64_t base, size;
};

enum arm64_gic_version { ARM64_GIC_V3, ARM64_GIC_V2 };
enum arm64_uart_kind { ARM64_UART_PL011, ARM64_UART_16550 };
enum arm64_psci_conduit { ARM64_PSCI_HVC, ARM64_PSCI_SMC }; /* HVC: KVM answers PSCI calls */

/* Interrupt numbers below named `spi` are SPI numbers as the device tree writes them: the GIC's
 * INTID - 32. */
struct arm64_fdt_mmio {
	struct arm64_region reg;
	uint32_t spi;
	bool edge; /* edge-rising rather than level-high */
};

/* A PCI window: the bridge forwards CPU addresses [cpu, cpu + size) to bus addresses from pci. */
struct arm64_pci_window {
	uint64_t cpu, pci, size;
};

struct arm64_machine {
	const char *model; /* NULL: "vmm" */
	struct arm64_region ram;
	unsigned nr_cpus;
	/* nr_cpus values of MPIDR_EL1 (what KVM_GET_ONE_REG gives), of which only the affinity
	 * fields count. NULL: KVM's default for vCPU i, Aff0 = i % 16, Aff1 = i / 16 % 256,
	 * Aff2 = i / 4096. */
	const uint64_t *mpidr;
	enum arm64_psci_conduit psci;
	struct {
		enum arm64_gic_version version;
		struct arm64_region dist;
		/* v3: the redistributor regions (64 KiB × 2 per vCPU, KVM's layout), 1 or more */
		const struct arm64_region *redist;
		unsigned nr_redist;
		struct arm64_region its; /* v3: the ITS's 128 KiB frame; size 0: none */
		struct arm64_region cpu; /* v2: the CPU interface */
	} gic;
	struct {
		enum arm64_uart_kind kind;
		struct arm64_region reg;
		uint32_t spi; /* level-high */
	} uart;
	struct {
		struct arm64_region reg; /* size 0: none */
		uint32_t spi;            /* level-high */
	} rtc;
	struct {
		struct arm64_region reg; /* a PL061; size 0: none, and no power button */
		uint32_t spi;            /* level-high */
		uint32_t power_pin;      /* the pin gpio-keys reports as KEY_POWER */
	} gpio;
	struct arm64_region pvpanic; /* QEMU's pvpanic-mmio; size 0: none */
	const char *bootargs;       /* NULL: none */
	struct arm64_region initrd; /* size 0: none */
	const struct arm64_fdt_mmio *mmio; /* virtio-mmio devices */
	unsigned nr_mmio;
	struct {
		struct arm64_region ecam; /* size 0: no PCI; 1 MiB per bus, 1 to 256 buses */
		struct arm64_pci_window io, mem32;
		struct arm64_pci_window mem64; /* 64-bit prefetchable; size 0: none */
		/* INTA-INTD (pin 0-3) of slot s raise SPI intx_spi + (s + pin) % 4, level-high;
		 * the interrupt-map lists slots 0 to nr_slots - 1 (1 to 32). */
		uint32_t intx_spi;
		unsigned nr_slots;
	} pci;
};

/* An upper bound of the blob's size for m: a buffer this large never gets -ENOSPC. */
size_t arm64_fdt_size(const struct arm64_machine *m);

/* Writes m's device tree into buf. 0, -ENOSPC when size is too small, -EINVAL for a description
 * the bindings cannot express (no CPU, more than 8 on a GICv2, an ECAM that is not whole buses,
 * more than 32 PCI slots, no redistributor, a power button on a pin a PL061 lacks).
 * fdt_totalsize(buf) is then the blob's length. */
int arm64_fdt_build(const struct arm64_machine *m, void *buf, size_t size);

#endif
