/* virtio over MMIO (4.2): register map version 2, and version 1, the legacy one (4.2.4).
 *
 * Linux learns where the windows are from the ACPI DSDT (one LNRO0005 device each) or from
 * virtio_mmio.device= on its command line. A firmware this small takes the places docs/boot.md
 * fixes, 4 KiB windows from 0xd0000000 on, and checks each for the magic value. Every register
 * access is 32 bits wide (4.2.2.2). */
#include "lib/io.h"
#include "lib/mem.h"
#include "lib/print.h"
#include "virtio/virtio.h"
#include "virtio/virtqueue.h"

#define MMIO_BASE    0xd0000000UL
#define MMIO_STRIDE  0x1000
#define MMIO_WINDOWS 10

/* The register map (4.2.2; legacy-only registers 4.2.4). */
#define MMIO_MAGIC_VALUE         0x000
#define MMIO_VERSION             0x004
#define MMIO_DEVICE_ID           0x008
#define MMIO_DEVICE_FEATURES     0x010
#define MMIO_DEVICE_FEATURES_SEL 0x014
#define MMIO_DRIVER_FEATURES     0x020
#define MMIO_DRIVER_FEATURES_SEL 0x024
#define MMIO_GUEST_PAGE_SIZE     0x028 /* version 1 */
#define MMIO_QUEUE_SEL           0x030
#define MMIO_QUEUE_NUM_MAX       0x034
#define MMIO_QUEUE_NUM           0x038
#define MMIO_QUEUE_ALIGN         0x03c /* version 1 */
#define MMIO_QUEUE_PFN           0x040 /* version 1 */
#define MMIO_QUEUE_READY         0x044
#define MMIO_QUEUE_NOTIFY        0x050
#define MMIO_INTERRUPT_STATUS    0x060
#define MMIO_INTERRUPT_ACK       0x064
#define MMIO_STATUS              0x070
#define MMIO_QUEUE_DESC_LOW      0x080
#define MMIO_QUEUE_DESC_HIGH     0x084
#define MMIO_QUEUE_DRIVER_LOW    0x090
#define MMIO_QUEUE_DRIVER_HIGH   0x094
#define MMIO_QUEUE_DEVICE_LOW    0x0a0
#define MMIO_QUEUE_DEVICE_HIGH   0x0a4
#define MMIO_CONFIG_GENERATION   0x0fc
#define MMIO_CONFIG              0x100

#define MMIO_MAGIC       0x74726976 /* "virt" */
#define LEGACY_PAGE_SIZE 4096       /* our GuestPageSize and QueueAlign: as vq_init lays out */

static uint32_t reg(struct virtio_dev *d, unsigned off)
{
	return mmio_read32(d->mmio.base + off);
}

static void set_reg(struct virtio_dev *d, unsigned off, uint32_t v)
{
	mmio_write32(d->mmio.base + off, v);
}

static uint8_t mmio_get_status(struct virtio_dev *d)
{
	return (uint8_t)reg(d, MMIO_STATUS);
}

static void mmio_set_status(struct virtio_dev *d, uint8_t status)
{
	set_reg(d, MMIO_STATUS, status);
}

/* 32 bits at a time; version 1 has only the first word (no VERSION_1, no packed ring). */
static uint64_t mmio_get_features(struct virtio_dev *d)
{
	uint64_t f;

	set_reg(d, MMIO_DEVICE_FEATURES_SEL, 0);
	f = reg(d, MMIO_DEVICE_FEATURES);
	if (d->mmio.version == 1)
		return f;
	set_reg(d, MMIO_DEVICE_FEATURES_SEL, 1);
	return f | (uint64_t)reg(d, MMIO_DEVICE_FEATURES) << 32;
}

static void mmio_set_features(struct virtio_dev *d, uint64_t f)
{
	set_reg(d, MMIO_DRIVER_FEATURES_SEL, 0);
	set_reg(d, MMIO_DRIVER_FEATURES, (uint32_t)f);
	if (d->mmio.version == 1)
		return;
	set_reg(d, MMIO_DRIVER_FEATURES_SEL, 1);
	set_reg(d, MMIO_DRIVER_FEATURES, (uint32_t)(f >> 32));
}

/* The configuration area: accesses of the field's own width (4.2.2.2). */
static uint32_t mmio_config_read(struct virtio_dev *d, unsigned off, unsigned width)
{
	uintptr_t a = d->mmio.base + MMIO_CONFIG + off;

	return width == 1 ? mmio_read8(a) : width == 2 ? mmio_read16(a) : mmio_read32(a);
}

static uint32_t mmio_config_generation(struct virtio_dev *d)
{
	return d->mmio.version == 1 ? 0 : reg(d, MMIO_CONFIG_GENERATION);
}

/* 4.2.3.2 (4.2.4): select the queue; it must not be in use (QueueReady, or QueuePFN in version
 * 1, reads 0); its maximum size, 0 when it does not exist. */
static uint16_t mmio_queue_max(struct virtio_dev *d, unsigned index)
{
	uint32_t max;

	set_reg(d, MMIO_QUEUE_SEL, index);
	if (reg(d, d->mmio.version == 1 ? MMIO_QUEUE_PFN : MMIO_QUEUE_READY))
		return 0;
	max = reg(d, MMIO_QUEUE_NUM_MAX);
	return max > 0x8000 ? 0x8000 : (uint16_t)max; /* the rings' own limit (2.7, 2.8) */
}

static void mmio_queue_enable(struct virtio_dev *d, struct vq *vq)
{
	set_reg(d, MMIO_QUEUE_SEL, vq->index);
	set_reg(d, MMIO_QUEUE_NUM, vq->size);
	vq->notify_addr = d->mmio.base + MMIO_QUEUE_NOTIFY;
	if (d->mmio.version == 1) {
		/* The split ring in one piece, from a page number, the used ring aligned to
		 * QueueAlign (4.2.4, 2.7.2). */
		set_reg(d, MMIO_GUEST_PAGE_SIZE, LEGACY_PAGE_SIZE);
		set_reg(d, MMIO_QUEUE_ALIGN, LEGACY_PAGE_SIZE);
		set_reg(d, MMIO_QUEUE_PFN, (uint32_t)(vq->desc_addr / LEGACY_PAGE_SIZE));
		return;
	}
	set_reg(d, MMIO_QUEUE_DESC_LOW, (uint32_t)vq->desc_addr);
	set_reg(d, MMIO_QUEUE_DESC_HIGH, (uint32_t)(vq->desc_addr >> 32));
	set_reg(d, MMIO_QUEUE_DRIVER_LOW, (uint32_t)vq->driver_addr);
	set_reg(d, MMIO_QUEUE_DRIVER_HIGH, (uint32_t)(vq->driver_addr >> 32));
	set_reg(d, MMIO_QUEUE_DEVICE_LOW, (uint32_t)vq->device_addr);
	set_reg(d, MMIO_QUEUE_DEVICE_HIGH, (uint32_t)(vq->device_addr >> 32));
	set_reg(d, MMIO_QUEUE_READY, 1);
}

/* The queue's index, without VIRTIO_F_NOTIFICATION_DATA (4.2.3.3). */
static void mmio_notify(struct virtio_dev *d, struct vq *vq)
{
	mmio_write32(vq->notify_addr, vq->index);
}

/* InterruptStatus stays set until the driver acknowledges it (4.2.3.4). */
static uint8_t mmio_isr(struct virtio_dev *d)
{
	uint32_t isr = reg(d, MMIO_INTERRUPT_STATUS) & (VIRTIO_ISR_QUEUE | VIRTIO_ISR_CONFIG);

	if (isr)
		set_reg(d, MMIO_INTERRUPT_ACK, isr);
	return (uint8_t)isr;
}

static const struct virtio_transport mmio_transport = {
	.name = "mmio",
	.get_status = mmio_get_status,
	.set_status = mmio_set_status,
	.get_features = mmio_get_features,
	.set_features = mmio_set_features,
	.config_read = mmio_config_read,
	.config_generation = mmio_config_generation,
	.queue_max = mmio_queue_max,
	.queue_enable = mmio_queue_enable,
	.notify = mmio_notify,
	.isr = mmio_isr,
};

int virtio_mmio_find(struct virtio_dev *devs, int max)
{
	int n = 0;

	for (unsigned w = 0; w < MMIO_WINDOWS && n < max; w++) {
		uintptr_t base = MMIO_BASE + w * MMIO_STRIDE;
		struct virtio_dev *d = &devs[n];
		uint32_t version, id;

		/* 4.2.3.1: the magic value and a version we know, then the device ID; ID 0 is a
		 * window with no device behind it, skipped without a word. */
		if (mmio_read32(base + MMIO_MAGIC_VALUE) != MMIO_MAGIC)
			continue;
		version = mmio_read32(base + MMIO_VERSION);
		id = mmio_read32(base + MMIO_DEVICE_ID);
		if ((version != 1 && version != 2) || id == 0)
			continue;
		memset(d, 0, sizeof(*d));
		d->t = &mmio_transport;
		d->id = (uint16_t)id;
		d->mmio.base = base;
		d->mmio.version = version;
		d->legacy = d->legacy_kind = version == 1;
		memcpy(d->where, "0x", 2);
		hex_string(d->where + 2, base, 8);
		n++;
	}
	return n;
}
