/* The virtio-mmio transport (VIRTIO 1.x section 4.2): a 4 KiB register window on the MMIO bus,
 * one level-triggered interrupt line, and the QueueNotify doorbell bound to each queue's eventfd.
 * Version 2 is the modern interface; version 1 (4.2.4) is the legacy one, with page-based
 * QueuePFN rings, for old guests. The ACPI DSDT announces each window (boot/acpi.c). */
#ifndef VMM_VIRTIO_MMIO_H
#define VMM_VIRTIO_MMIO_H

#include <stdbool.h>
#include <stdint.h>

struct vm;
struct virtio_dev;
struct virtio_mmio_queue;

/* Register offsets (4.2.2; the legacy names of 4.2.4 in comments). */
#define VIRTIO_MMIO_MAGIC_VALUE         0x000
#define VIRTIO_MMIO_VERSION             0x004
#define VIRTIO_MMIO_DEVICE_ID           0x008
#define VIRTIO_MMIO_VENDOR_ID           0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES     0x010 /* HostFeatures */
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES     0x020 /* GuestFeatures */
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_GUEST_PAGE_SIZE     0x028 /* legacy only */
#define VIRTIO_MMIO_QUEUE_SEL           0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX       0x034
#define VIRTIO_MMIO_QUEUE_NUM           0x038
#define VIRTIO_MMIO_QUEUE_ALIGN         0x03c /* legacy only */
#define VIRTIO_MMIO_QUEUE_PFN           0x040 /* legacy only */
#define VIRTIO_MMIO_QUEUE_READY         0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY        0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS    0x060
#define VIRTIO_MMIO_INTERRUPT_ACK       0x064
#define VIRTIO_MMIO_STATUS              0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW      0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH     0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW    0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH   0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW    0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH   0x0a4
#define VIRTIO_MMIO_SHM_SEL             0x0ac
#define VIRTIO_MMIO_SHM_LEN_LOW         0x0b0
#define VIRTIO_MMIO_SHM_LEN_HIGH        0x0b4
#define VIRTIO_MMIO_SHM_BASE_LOW        0x0b8
#define VIRTIO_MMIO_SHM_BASE_HIGH       0x0bc
#define VIRTIO_MMIO_QUEUE_RESET         0x0c0
#define VIRTIO_MMIO_CONFIG_GENERATION   0x0fc
#define VIRTIO_MMIO_CONFIG              0x100

#define VIRTIO_MMIO_MAGIC               0x74726976 /* "virt" */
#define VIRTIO_MMIO_VENDOR              0x554d4551 /* "QEMU": Linux takes any; this one is usual */

struct virtio_mmio {
	struct vm *vm;
	struct virtio_dev *dev;
	uint64_t base;
	uint32_t gsi;
	bool legacy; /* version 1 register map */
	bool registered, irqfd; /* what create set up, for destroy */
	bool bad_access_logged;

	/* Driver-visible transport state, back to initial on device reset. Guarded by d->lock. */
	uint32_t device_features_sel, driver_features_sel;
	uint32_t queue_sel;
	uint32_t shm_sel;
	uint32_t guest_page_size; /* legacy */
	struct virtio_mmio_queue *queues; /* one per device queue */
};

/* Puts device d (already set up by its type with virtio_dev_init) behind a register window at
 * [base, base + VIRTIO_MMIO_SIZE) on vm->mmio with interrupt line gsi: sets d->transport, binds
 * each queue's doorbell with an ioeventfd and the line with a level-triggered irqfd. A VM without
 * a KVM fd (unit tests) gets neither: doorbell writes then come through the bus. legacy selects
 * the version 1 interface. 0 or -errno (nothing is left registered then). */
int virtio_mmio_create(struct virtio_mmio *t, struct vm *vm, struct virtio_dev *d, uint64_t base,
		       uint32_t gsi, bool legacy);
/* Unbinds and unregisters everything create did; safe on a zeroed transport. Call before
 * virtio_dev_destroy(). */
void virtio_mmio_destroy(struct virtio_mmio *t);

#endif
