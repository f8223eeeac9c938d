/* virtio over PCI (4.1): finding the devices on bus 0, and the two register interfaces, modern
 * (capabilities pointing into a memory BAR, 4.1.4) and legacy (an I/O BAR, 4.1.4.10).
 *
 * Configuration space is read through ECAM, the memory-mapped window docs/boot.md places at
 * 0xe0000000 (announced by the ACPI MCFG table; ports 0xcf8/0xcfc reach the same registers).
 * vmm places the BARs and turns decoding on before the guest runs, as a BIOS would, so a driver
 * only reads where they are. */
#include "lib/io.h"
#include "lib/mem.h"
#include "lib/print.h"
#include "virtio/virtio.h"
#include "virtio/virtqueue.h"

#define PCI_ECAM_BASE 0xe0000000UL

/* Configuration space registers (PCI Local Bus 3.0). */
#define PCI_VENDOR_ID         0x00
#define PCI_DEVICE_ID         0x02
#define PCI_COMMAND           0x04
#define PCI_STATUS            0x06
#define PCI_REVISION_ID       0x08
#define PCI_BASE_ADDRESS_0    0x10
#define PCI_SUBSYSTEM_ID      0x2e
#define PCI_CAPABILITY_LIST   0x34
#define PCI_COMMAND_IO        0x1
#define PCI_COMMAND_MEMORY    0x2
#define PCI_COMMAND_MASTER    0x4
#define PCI_COMMAND_INTX_OFF  0x400
#define PCI_STATUS_CAP_LIST   0x10
#define PCI_CAP_ID_VNDR       0x09

/* Virtio's PCI IDs (4.1.2). */
#define VIRTIO_PCI_VENDOR     0x1af4
#define VIRTIO_PCI_FIRST      0x1000 /* transitional devices: 0x1000-0x103f */
#define VIRTIO_PCI_MODERN     0x1040 /* modern: 0x1040 + the device type */
#define VIRTIO_PCI_LAST       0x107f

/* struct virtio_pci_cap (4.1.4): cfg_type, bar and offset, then notify_off_multiplier for the
 * notification structure. */
#define CAP_CFG_TYPE          3
#define CAP_BAR               4
#define CAP_OFFSET            8
#define CAP_NOTIFY_MULT       16
#define VIRTIO_PCI_CAP_COMMON 1
#define VIRTIO_PCI_CAP_NOTIFY 2
#define VIRTIO_PCI_CAP_ISR    3
#define VIRTIO_PCI_CAP_DEVICE 4

/* struct virtio_pci_common_cfg (4.1.4.3). */
#define COMMON_DFSELECT   0x00
#define COMMON_DF         0x04
#define COMMON_GFSELECT   0x08
#define COMMON_GF         0x0c
#define COMMON_NUM_QUEUES 0x12
#define COMMON_STATUS     0x14
#define COMMON_GENERATION 0x15
#define COMMON_Q_SELECT   0x16
#define COMMON_Q_SIZE     0x18
#define COMMON_Q_ENABLE   0x1c
#define COMMON_Q_NOTIFY   0x1e
#define COMMON_Q_DESC     0x20
#define COMMON_Q_DRIVER   0x28
#define COMMON_Q_DEVICE   0x30

/* The legacy register block in BAR0 (4.1.4.10); the device configuration follows it, at 20 while
 * MSI-X is off, as it always is here. */
#define LEGACY_HOST_FEATURES  0
#define LEGACY_GUEST_FEATURES 4
#define LEGACY_QUEUE_PFN      8
#define LEGACY_QUEUE_SIZE     12
#define LEGACY_QUEUE_SELECT   14
#define LEGACY_QUEUE_NOTIFY   16
#define LEGACY_STATUS         18
#define LEGACY_ISR            19
#define LEGACY_CONFIG         20
#define LEGACY_PFN_SHIFT      12 /* the queue address is given in 4096-byte pages */

/* Bus 0, function 0 of each slot: vmm puts one device per slot. */
static uintptr_t cfg(unsigned slot, unsigned reg)
{
	return PCI_ECAM_BASE + ((uintptr_t)slot << 15) + reg;
}

/* Where BAR n of the slot is (both halves of a 64-bit one); 0 for an I/O BAR. */
static uintptr_t bar_memory(unsigned slot, unsigned n)
{
	uintptr_t bar = cfg(slot, PCI_BASE_ADDRESS_0 + 4 * n);
	uint32_t lo = mmio_read32(bar);

	if (lo & 1)
		return 0;
	if ((lo & 6) == 4 && n < 5) /* 64-bit: the next BAR holds the high half */
		return (lo & ~0xfu) | (uintptr_t)mmio_read32(bar + 4) << 32;
	return lo & ~0xfu;
}

/* The modern interface. */

static uint8_t modern_get_status(struct virtio_dev *d)
{
	return mmio_read8(d->pci.common + COMMON_STATUS);
}

static void modern_set_status(struct virtio_dev *d, uint8_t status)
{
	mmio_write8(d->pci.common + COMMON_STATUS, status);
}

/* Feature bits come 32 at a time, through a select register. */
static uint64_t modern_get_features(struct virtio_dev *d)
{
	uint64_t f;

	mmio_write32(d->pci.common + COMMON_DFSELECT, 0);
	f = mmio_read32(d->pci.common + COMMON_DF);
	mmio_write32(d->pci.common + COMMON_DFSELECT, 1);
	return f | (uint64_t)mmio_read32(d->pci.common + COMMON_DF) << 32;
}

static void modern_set_features(struct virtio_dev *d, uint64_t f)
{
	mmio_write32(d->pci.common + COMMON_GFSELECT, 0);
	mmio_write32(d->pci.common + COMMON_GF, (uint32_t)f);
	mmio_write32(d->pci.common + COMMON_GFSELECT, 1);
	mmio_write32(d->pci.common + COMMON_GF, (uint32_t)(f >> 32));
}

static uint32_t modern_config_read(struct virtio_dev *d, unsigned off, unsigned width)
{
	uintptr_t a = d->pci.device + off;

	return width == 1 ? mmio_read8(a) : width == 2 ? mmio_read16(a) : mmio_read32(a);
}

static uint32_t modern_config_generation(struct virtio_dev *d)
{
	return mmio_read8(d->pci.common + COMMON_GENERATION);
}

static uint16_t modern_queue_max(struct virtio_dev *d, unsigned index)
{
	if (index >= mmio_read16(d->pci.common + COMMON_NUM_QUEUES))
		return 0;
	mmio_write16(d->pci.common + COMMON_Q_SELECT, (uint16_t)index);
	if (mmio_read16(d->pci.common + COMMON_Q_ENABLE))
		return 0;
	/* Until the driver writes it, queue_size holds the maximum (4.1.4.3). */
	return mmio_read16(d->pci.common + COMMON_Q_SIZE);
}

static void write64(uintptr_t a, uint64_t v)
{
	mmio_write32(a, (uint32_t)v);
	mmio_write32(a + 4, (uint32_t)(v >> 32));
}

/* Select the queue, then its size and three areas, then enable it (4.1.5.1.3). */
static void modern_queue_enable(struct virtio_dev *d, struct vq *vq)
{
	uintptr_t c = d->pci.common;

	mmio_write16(c + COMMON_Q_SELECT, vq->index);
	mmio_write16(c + COMMON_Q_SIZE, vq->size);
	write64(c + COMMON_Q_DESC, vq->desc_addr);
	write64(c + COMMON_Q_DRIVER, vq->driver_addr);
	write64(c + COMMON_Q_DEVICE, vq->device_addr);
	/* The queue's doorbell: cap.offset + queue_notify_off * notify_off_multiplier (4.1.4.4). */
	vq->notify_addr = d->pci.notify + mmio_read16(c + COMMON_Q_NOTIFY) * d->pci.notify_mult;
	mmio_write16(c + COMMON_Q_ENABLE, 1);
}

/* Without VIRTIO_F_NOTIFICATION_DATA, the queue's index, 16 bits (4.1.5.2). */
static void modern_notify(struct virtio_dev *d, struct vq *vq)
{
	mmio_write16(vq->notify_addr, vq->index);
}

/* Reading the ISR clears it (4.1.4.5). */
static uint8_t modern_isr(struct virtio_dev *d)
{
	return mmio_read8(d->pci.isr);
}

static const struct virtio_transport pci_modern = {
	.name = "pci",
	.get_status = modern_get_status,
	.set_status = modern_set_status,
	.get_features = modern_get_features,
	.set_features = modern_set_features,
	.config_read = modern_config_read,
	.config_generation = modern_config_generation,
	.queue_max = modern_queue_max,
	.queue_enable = modern_queue_enable,
	.notify = modern_notify,
	.isr = modern_isr,
};

/* The modern structures, from the vendor capabilities (4.1.4): the first of each type, as the
 * spec asks of a driver; common, notify and ISR must be there, the device configuration only for
 * types that have one. */
static bool modern_setup(struct virtio_dev *d, unsigned slot)
{
	unsigned pos, hops;

	if (!(mmio_read16(cfg(slot, PCI_STATUS)) & PCI_STATUS_CAP_LIST))
		return false;
	/* A list is at most 48 capabilities of 4 bytes in 192: the bound ends a looping one. */
	pos = mmio_read8(cfg(slot, PCI_CAPABILITY_LIST)) & ~3u;
	for (hops = 0; pos && hops < 48; hops++, pos = mmio_read8(cfg(slot, pos + 1)) & ~3u) {
		uint8_t type = mmio_read8(cfg(slot, pos + CAP_CFG_TYPE));
		uint8_t bar = mmio_read8(cfg(slot, pos + CAP_BAR));
		uintptr_t base;

		if (mmio_read8(cfg(slot, pos)) != PCI_CAP_ID_VNDR || bar > 5)
			continue;
		base = bar_memory(slot, bar);
		if (!base)
			continue; /* an I/O BAR: we reach the structures in memory space only */
		base += mmio_read32(cfg(slot, pos + CAP_OFFSET));
		switch (type) {
		case VIRTIO_PCI_CAP_COMMON:
			d->pci.common = d->pci.common ? d->pci.common : base;
			break;
		case VIRTIO_PCI_CAP_NOTIFY:
			if (!d->pci.notify) {
				d->pci.notify = base;
				d->pci.notify_mult = mmio_read32(cfg(slot, pos + CAP_NOTIFY_MULT));
			}
			break;
		case VIRTIO_PCI_CAP_ISR:
			d->pci.isr = d->pci.isr ? d->pci.isr : base;
			break;
		case VIRTIO_PCI_CAP_DEVICE:
			d->pci.device = d->pci.device ? d->pci.device : base;
			break;
		}
	}
	if (!d->pci.common || !d->pci.notify || !d->pci.isr)
		return false;
	d->t = &pci_modern;
	return true;
}

/* The legacy interface: everything in one block of I/O ports. */

static uint8_t legacy_get_status(struct virtio_dev *d)
{
	return inb(d->pci.io + LEGACY_STATUS);
}

static void legacy_set_status(struct virtio_dev *d, uint8_t status)
{
	outb(d->pci.io + LEGACY_STATUS, status);
}

static uint64_t legacy_get_features(struct virtio_dev *d)
{
	return inl(d->pci.io + LEGACY_HOST_FEATURES);
}

static void legacy_set_features(struct virtio_dev *d, uint64_t f)
{
	outl(d->pci.io + LEGACY_GUEST_FEATURES, (uint32_t)f);
}

/* Any width will do here (4.1.4.10); the natural one is used all the same. */
static uint32_t legacy_config_read(struct virtio_dev *d, unsigned off, unsigned width)
{
	uint16_t port = (uint16_t)(d->pci.io + LEGACY_CONFIG + off);

	return width == 1 ? inb(port) : width == 2 ? inw(port) : inl(port);
}

static uint32_t legacy_config_generation(struct virtio_dev *d)
{
	return 0; /* none: a legacy driver reads the configuration and hopes */
}

static uint16_t legacy_queue_max(struct virtio_dev *d, unsigned index)
{
	outw(d->pci.io + LEGACY_QUEUE_SELECT, (uint16_t)index);
	if (inl(d->pci.io + LEGACY_QUEUE_PFN))
		return 0;
	return inw(d->pci.io + LEGACY_QUEUE_SIZE); /* 0: no such queue */
}

/* The whole split ring in one piece from the page given, its used ring at the next 4096-byte
 * boundary (2.7.2); vq_init lays it out so. */
static void legacy_queue_enable(struct virtio_dev *d, struct vq *vq)
{
	outw(d->pci.io + LEGACY_QUEUE_SELECT, vq->index);
	vq->notify_addr = d->pci.io + LEGACY_QUEUE_NOTIFY;
	outl(d->pci.io + LEGACY_QUEUE_PFN, (uint32_t)(vq->desc_addr >> LEGACY_PFN_SHIFT));
}

static void legacy_notify(struct virtio_dev *d, struct vq *vq)
{
	outw((uint16_t)vq->notify_addr, vq->index);
}

static uint8_t legacy_isr(struct virtio_dev *d)
{
	return inb(d->pci.io + LEGACY_ISR);
}

static const struct virtio_transport pci_legacy = {
	.name = "pci legacy",
	.get_status = legacy_get_status,
	.set_status = legacy_set_status,
	.get_features = legacy_get_features,
	.set_features = legacy_set_features,
	.config_read = legacy_config_read,
	.config_generation = legacy_config_generation,
	.queue_max = legacy_queue_max,
	.queue_enable = legacy_queue_enable,
	.notify = legacy_notify,
	.isr = legacy_isr,
	.fixed_queue_size = true,
};

/* A transitional device's legacy registers: BAR0, an I/O BAR. Transitional devices have revision
 * 0 (4.1.2.3), which is all a legacy driver knows. */
static bool legacy_setup(struct virtio_dev *d, unsigned slot)
{
	uint32_t bar0 = mmio_read32(cfg(slot, PCI_BASE_ADDRESS_0));

	if (!d->legacy_kind || mmio_read8(cfg(slot, PCI_REVISION_ID)) != 0 || !(bar0 & 1))
		return false;
	d->pci.io = (uint16_t)(bar0 & ~3u);
	d->legacy = true;
	d->t = &pci_legacy;
	return true;
}

int virtio_pci_find(struct virtio_dev *devs, int max, bool legacy)
{
	int n = 0;

	for (unsigned slot = 0; slot < 32 && n < max; slot++) {
		uint16_t vendor = mmio_read16(cfg(slot, PCI_VENDOR_ID));
		uint16_t device = mmio_read16(cfg(slot, PCI_DEVICE_ID)), command;
		struct virtio_dev *d = &devs[n];

		if (vendor != VIRTIO_PCI_VENDOR || device < VIRTIO_PCI_FIRST ||
		    device > VIRTIO_PCI_LAST)
			continue;
		memset(d, 0, sizeof(*d));
		/* A transitional device says its type in the subsystem device ID (4.1.2.3). */
		d->legacy_kind = device < VIRTIO_PCI_MODERN;
		d->id = d->legacy_kind ? mmio_read16(cfg(slot, PCI_SUBSYSTEM_ID))
				       : device - VIRTIO_PCI_MODERN;
		memcpy(d->where, "00:", 3);
		hex_string(d->where + 3, slot, 2);
		memcpy(d->where + 5, ".0", 3);
		/* The device reads and writes our memory (bus master); we poll, so no INTx. */
		command = mmio_read16(cfg(slot, PCI_COMMAND));
		command |= PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
			   PCI_COMMAND_INTX_OFF;
		mmio_write16(cfg(slot, PCI_COMMAND), command);
		if (legacy ? legacy_setup(d, slot) : modern_setup(d, slot))
			n++;
	}
	return n;
}
