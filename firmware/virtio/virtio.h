/* The driver's side of virtio (VIRTIO 1.x, ../shared/virtio-spec; section numbers below are its
 * own): a device found on a transport, and the steps that bring it up.
 *
 * A transport (pci.c: modern and legacy; mmio.c: version 2 and 1) finds devices and fills a
 * struct virtio_dev with its ops table; everything above it (feature negotiation here, the rings
 * in virtqueue.c, the drivers in rng.c, console.c and blk.c) goes through that table only.
 *
 * Polling only: the firmware runs with interrupts off and asks for no interrupts (no MSI-X, INTx
 * disabled in PCI's command register, virtio-mmio's line left unrouted). The ring code still
 * keeps every notification rule, and the ISR shows the used buffer notifications a device sends,
 * so a test can see them without taking one. */
#ifndef FW_VIRTIO_H
#define FW_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

/* Device types (5). */
#define VIRTIO_ID_BLOCK   2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG     4

/* Device status (2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER      2
#define VIRTIO_STATUS_DRIVER_OK   4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED      0x80

/* The reserved feature bits the rings use (6). */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1     32
#define VIRTIO_F_RING_PACKED   34
#define BIT(n)                 (1ULL << (n))

/* ISR bits (4.1.4.5, 4.2.2 InterruptStatus). */
#define VIRTIO_ISR_QUEUE  1
#define VIRTIO_ISR_CONFIG 2

/* What can go wrong, as the functions below return it (0: fine). */
#define VIRTIO_ERR_FEATURES (-1) /* a feature we need is not offered, or FEATURES_OK refused */
#define VIRTIO_ERR_QUEUE    (-2) /* a queue is absent, too small, or was refused */
#define VIRTIO_ERR_DEVICE   (-3) /* the device says NEEDS_RESET */
#define VIRTIO_ERR_RING     (-4) /* a used entry for a buffer we did not make available */
#define VIRTIO_ERR_FULL     (-5) /* no room in the ring for the chain */
#define VIRTIO_ERR_NOMEM    (-6) /* the arena is used up */
#define VIRTIO_ERR_INVAL    (-7) /* a request we may not make (no buffers, too many, too far) */

struct vq;
struct virtio_dev;

/* One transport's registers (4.1 PCI, 4.2 MMIO), behind the same calls. */
struct virtio_transport {
	const char *name; /* "pci", "pci legacy", "mmio" */
	uint8_t (*get_status)(struct virtio_dev *d);
	void (*set_status)(struct virtio_dev *d, uint8_t status); /* 0 resets */
	uint64_t (*get_features)(struct virtio_dev *d);           /* what the device offers */
	void (*set_features)(struct virtio_dev *d, uint64_t features);
	/* The configuration area: one access of width 1, 2 or 4 bytes at off; and its generation
	 * (2.5), 0 where the interface has none (legacy). */
	uint32_t (*config_read)(struct virtio_dev *d, unsigned off, unsigned width);
	uint32_t (*config_generation)(struct virtio_dev *d);
	/* The queue's maximum size, 0 if it does not exist or is already in use. */
	uint16_t (*queue_max)(struct virtio_dev *d, unsigned index);
	/* Tells the device where vq's rings are and enables it; fills vq's notify address. */
	void (*queue_enable)(struct virtio_dev *d, struct vq *vq);
	/* An available buffer notification for vq (a "kick"). */
	void (*notify)(struct virtio_dev *d, struct vq *vq);
	/* Reads (and acknowledges) the ISR: which notifications the device has sent since. */
	uint8_t (*isr)(struct virtio_dev *d);
	/* The legacy interfaces take the queue size the device says (PCI) or place the used ring at
	 * a fixed alignment: both lay out a split ring in one piece (2.7.2). */
	bool fixed_queue_size;
};

struct virtio_dev {
	const struct virtio_transport *t;
	uint16_t id;       /* the device type, VIRTIO_ID_* */
	bool legacy;       /* driven through the legacy interface: no FEATURES_OK, bits 0-31 */
	bool legacy_kind;  /* the device is transitional (PCI) or version 1 (MMIO) */
	char where[16];    /* "00:01.0", "0xd0000000": for messages */
	uint64_t features; /* negotiated */
	union {
		struct {
			/* Modern: the structures the capabilities point at (4.1.4). */
			uintptr_t common, isr, device, notify;
			uint32_t notify_mult;
			uint16_t io; /* legacy: BAR0's I/O ports (4.1.4.8) */
		} pci;
		struct {
			uintptr_t base;
			uint32_t version; /* 2, or 1 for the legacy register map */
		} mmio;
	};
};

/* How a driver wants its rings: the layout, the ring features, and a size (the most each queue
 * gets; a legacy PCI device has the last word). */
struct virtio_ring_opts {
	bool packed, indirect, event_idx;
	uint16_t size;
};

/* Finds the virtio devices on a transport, at most max; returns how many. legacy: use the legacy
 * interface (PCI: the transitional devices' I/O BAR). */
int virtio_pci_find(struct virtio_dev *devs, int max, bool legacy);
int virtio_mmio_find(struct virtio_dev *devs, int max);

/* Device initialisation (3.1.1), in three steps: reset, ACKNOWLEDGE, DRIVER and the features
 * (the device's own `want` that it offers, plus what opts asks of the rings, which must be
 * offered); then the driver sets up its queues; then DRIVER_OK. */
int virtio_negotiate(struct virtio_dev *d, uint64_t want, const struct virtio_ring_opts *opts);
int virtio_queue_setup(struct virtio_dev *d, struct vq *vq, unsigned index,
		       const struct virtio_ring_opts *opts);
int virtio_driver_ok(struct virtio_dev *d);

/* Writes 0 to the status and waits until the device says it is reset (2.4). */
void virtio_reset(struct virtio_dev *d);
bool virtio_needs_reset(struct virtio_dev *d);
bool virtio_has(const struct virtio_dev *d, unsigned bit);

/* Configuration fields of 1, 2, 4 and 8 bytes, read consistently with the generation (2.5.1). */
uint8_t virtio_config8(struct virtio_dev *d, unsigned off);
uint16_t virtio_config16(struct virtio_dev *d, unsigned off);
uint32_t virtio_config32(struct virtio_dev *d, unsigned off);
uint64_t virtio_config64(struct virtio_dev *d, unsigned off);

const char *virtio_type_name(uint16_t id);

#endif
