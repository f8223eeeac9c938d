/* The PCI host bridge (segment 0, bus 0 only) and the generic part of a PCI function: its 256-byte
 * configuration space with write masks, its BARs and their placement on the buses, and the
 * capability list.
 *
 * Configuration space is reached through ports 0xcf8/0xcfc (type 1) and through ECAM. Only
 * function 0 of each slot exists; slot 0 is the host bridge itself, devices take slots 1 to 31.
 * There is no firmware: the host bridge places every BAR inside the root bridge's windows
 * (PCI_MMIO_BASE, PCI_IO_BASE) and turns decoding on, and the guest may move them later.
 *
 * Locking: h->lock serialises every configuration access, BAR move and slot change. Device
 * callbacks (cfg_read, cfg_write, bar_moved) run with it held; they may take their device's own
 * lock, never the other way round. BAR handlers run on vCPU threads without h->lock. */
#ifndef VMM_PCI_H
#define VMM_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus/bus.h"

struct vm;

#define PCI_SLOTS     32
#define PCI_NR_BARS   6
#define PCI_CFG_SIZE  256  /* conventional configuration space of one function */
#define PCI_ECAM_FN   4096 /* ECAM bytes per function; beyond PCI_CFG_SIZE everything reads 0 */

/* Configuration header (type 0) offsets and the bits used here. */
#define PCI_VENDOR_ID           0x00
#define PCI_DEVICE_ID           0x02
#define PCI_COMMAND             0x04
#define PCI_COMMAND_IO          0x1
#define PCI_COMMAND_MEMORY      0x2
#define PCI_COMMAND_MASTER      0x4
#define PCI_COMMAND_PARITY      0x40
#define PCI_COMMAND_SERR        0x100
#define PCI_COMMAND_INTX_DISABLE 0x400
#define PCI_STATUS              0x06
#define PCI_STATUS_INTERRUPT    0x08
#define PCI_STATUS_CAP_LIST     0x10
#define PCI_REVISION_ID         0x08
#define PCI_CLASS_PROG          0x09 /* class code: prog-if, subclass, base class (3 bytes) */
#define PCI_CACHE_LINE_SIZE     0x0c
#define PCI_HEADER_TYPE         0x0e
#define PCI_BASE_ADDRESS_0      0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID        0x2e
#define PCI_CAPABILITY_LIST     0x34
#define PCI_INTERRUPT_LINE      0x3c
#define PCI_INTERRUPT_PIN       0x3d
#define PCI_CAP_START           0x40 /* first byte after the header: capabilities go here */

#define PCI_BAR_IO_FLAG      0x1 /* BAR bit 0: I/O space */
#define PCI_BAR_MEM64_FLAG   0x4 /* BAR bits 2:1 = 2: 64-bit memory */
#define PCI_BAR_PREFETCH     0x8

#define PCI_CAP_ID_VNDR 0x09
#define PCI_CAP_ID_MSIX 0x11

/* The bridge's own identity: a Q35-like host bridge. */
#define PCI_HOST_VENDOR 0x8086
#define PCI_HOST_DEVICE 0x29c0
#define PCI_HOST_CLASS  0x060000

/* bar_moved() addresses when the BAR is not on the bus. */
#define PCI_BAR_UNMAPPED UINT64_MAX

enum pci_bar_type { PCI_BAR_NONE, PCI_BAR_IO, PCI_BAR_MEM32, PCI_BAR_MEM64 };

struct pci_bar {
	enum pci_bar_type type; /* a 64-bit BAR also uses the next BAR's register */
	uint64_t size;          /* a power of two: at least 4 (I/O) or 16 (memory) */
	bus_io_fn fn;           /* accesses with the offset inside the BAR */
	void *opaque;
	uint64_t mapped;        /* where it is on the bus now, or PCI_BAR_UNMAPPED */
};

struct pci_host;

struct pci_dev {
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE]; /* bits the guest may change; everything else is read-only */
	uint8_t cfg_init[PCI_CFG_SIZE]; /* as pci_dev_add left it: what pci_host_reset puts back */
	struct pci_bar bar[PCI_NR_BARS];
	const char *name;
	void *opaque; /* the device model's, for the callbacks below */

	/* All optional, all called with the host lock held. cfg_read runs before a read of
	 * [off, off + len) so that it can refresh the bytes; cfg_write runs after a write was
	 * merged into cfg[] through wmask. bar_moved says that a BAR left old and is now at new
	 * (either may be PCI_BAR_UNMAPPED): move what is bound to its addresses (ioeventfds). */
	void (*cfg_read)(struct pci_dev *d, uint32_t off, uint32_t len);
	void (*cfg_write)(struct pci_dev *d, uint32_t off, uint32_t len);
	void (*bar_moved)(struct pci_dev *d, unsigned bar, uint64_t old_addr, uint64_t new_addr);

	uint8_t cap_last, cap_free; /* the capability list's tail and the first free byte */

	/* Set by pci_dev_add. */
	struct pci_host *host;
	unsigned slot; /* 0 when not on the bus */
};

struct pci_host {
	struct vm *vm; /* only its pio and mmio buses */
	pthread_mutex_t lock;
	uint32_t config_address; /* the last value written to 0xcf8 */
	struct pci_dev *slots[PCI_SLOTS];
	struct pci_dev bridge; /* slot 0 */
	uint64_t next_mmio, next_io; /* BAR allocation cursors inside the windows */
};

/* Registers 0xcf8-0xcff on vm->pio and ECAM on vm->mmio, and puts the host bridge in slot 0.
 * 0 or -errno. */
int pci_host_init(struct pci_host *h, struct vm *vm);
/* Unregisters the configuration mechanisms. The devices must have been removed. */
void pci_host_destroy(struct pci_host *h);

/* Clears *d and gives it the identity, class (base << 16 | sub << 8 | prog-if) and revision, no
 * BARs, no capabilities, interrupt pin INTA. */
void pci_dev_init(struct pci_dev *d, const char *name, uint16_t vendor, uint16_t device,
		  uint32_t class_code, uint8_t revision, void *opaque);
/* Declares BAR n before pci_dev_add. size is rounded up to a power of two (and to the type's
 * minimum); an I/O BAR holds at most 256 bytes. A 64-bit BAR takes n and n + 1. 0 or -EINVAL. */
int pci_dev_set_bar(struct pci_dev *d, unsigned n, enum pci_bar_type type, uint64_t size,
		    bus_io_fn fn, void *opaque);
/* Appends a capability (cap[0] is its ID, cap[1] is overwritten with the link) and returns its
 * offset in configuration space, or -ENOSPC. The caller may then mark bytes writable in wmask. */
int pci_cap_add(struct pci_dev *d, const void *cap, uint8_t len);

/* Takes the next free slot, sets the interrupt line, places the BARs, enables decoding and maps
 * them. 0, -ENOSPC (no slot or no room in a window) or -EBUSY (a BAR overlaps a range already on
 * the bus); on error the device is not on the bus. */
int pci_dev_add(struct pci_host *h, struct pci_dev *d);
/* Unmaps the BARs and frees the slot. */
void pci_dev_remove(struct pci_host *h, struct pci_dev *d);

/* Configuration access to function 0 of slot, as the guest sees it through either mechanism:
 * all-ones for an absent function, zeros beyond PCI_CFG_SIZE. [reg, reg + len) must lie inside
 * PCI_ECAM_FN; len is at most 8. */
/* A restart: every device's command register, BARs and MSI-X control as pci_dev_add left them,
 * written as the guest would write them (so BARs move back and the device models hear of it). */
void pci_host_reset(struct pci_host *h);
void pci_config_access(struct pci_host *h, unsigned slot, uint32_t reg, uint8_t *data,
		       uint32_t len, bool is_write);

/* Bus handlers, exposed for the unit tests. */
void pci_config_port_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
void pci_ecam_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/* Little-endian helpers for configuration bytes. */
static inline uint16_t pci_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t pci_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void pci_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void pci_put32(uint8_t *p, uint32_t v)
{
	pci_put16(p, (uint16_t)v);
	pci_put16(p + 2, (uint16_t)(v >> 16));
}

#endif
