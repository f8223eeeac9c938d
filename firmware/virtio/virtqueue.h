/* Virtqueues, driver side: the split ring (2.7) and the packed ring (2.8), each with indirect
 * descriptors and event suppression (EVENT_IDX).
 *
 * A request goes through three calls, and each layout has its own version of each:
 *   add a chain       vq_add_chain   split_add_chain     packed_add_chain
 *   notify            vq_kick        split_kick_needed   packed_kick_needed
 *   reclaim a buffer  vq_get_used    split_get_used      packed_get_used
 * and vq_interrupts() says whether the driver wants used buffer notifications.
 *
 * Not thread-safe, and needs none: the firmware has one CPU and no interrupts. */
#ifndef FW_VIRTQUEUE_H
#define FW_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio/virtio.h"

/* Descriptor flags (2.7.5, 2.8). */
#define VIRTQ_DESC_F_NEXT     1
#define VIRTQ_DESC_F_WRITE    2 /* device-writable (else device-readable) */
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_DESC_F_AVAIL    (1 << 7) /* packed only */
#define VIRTQ_DESC_F_USED     (1 << 15)

/* Split ring event suppression (2.7.7, 2.7.10). */
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY     1

/* Packed ring event suppression (2.8.10, 2.8.14). */
#define RING_EVENT_FLAGS_ENABLE  0
#define RING_EVENT_FLAGS_DISABLE 1
#define RING_EVENT_FLAGS_DESC    2
#define RING_EVENT_WRAP_SHIFT    15

/* The most buffers one of our chains has: an indirect table has room for this many. */
#define VQ_MAX_CHAIN 8

/* The split ring's three parts, as the spec lays them out. */
struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[]; /* size entries, then used_event (EVENT_IDX) */
};

struct virtq_used_elem {
	uint32_t id; /* the head of the chain */
	uint32_t len; /* bytes the device wrote into it */
};

struct virtq_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[]; /* size entries, then avail_event (EVENT_IDX) */
};

/* The packed ring's descriptor and event suppression structure. */
struct pvirtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t id;
	uint16_t flags;
};

struct pvirtq_event_suppress {
	uint16_t off_wrap; /* descriptor offset, and the wrap counter in bit 15 */
	uint16_t flags;    /* RING_EVENT_FLAGS_* */
};

/* One buffer of a chain: where it is, how long, and whether the device writes it (those come
 * after the ones it reads, 2.7.4.2). */
struct vq_buf {
	uint64_t addr;
	uint32_t len;
	bool device_writes;
};

struct vq {
	struct virtio_dev *dev;
	uint16_t index;
	uint16_t size;
	bool packed_ring, indirect, event_idx;
	bool interrupts;   /* used buffer notifications wanted (vq_interrupts) */
	uint16_t num_free; /* descriptors (split) or ring slots (packed) not in use */
	uint16_t added;    /* descriptors (packed) or chains (split) added since the last kick */
	/* Per chain, indexed by its head (split) or its buffer id (packed): the caller's token
	 * (NULL: not in flight), the bytes the device may write, and its indirect table. */
	void **token;
	uint32_t *writable;
	void *tables; /* VQ_MAX_CHAIN descriptors per chain, when indirect */
	/* What the transport tells the device, and where to notify it. */
	uint64_t desc_addr, driver_addr, device_addr;
	uintptr_t notify_addr;
	/* Counts, for the curious: chains added, and the kicks that were sent. */
	uint32_t chains, kicks;
	union {
		struct {
			struct virtq_desc *desc;
			struct virtq_avail *avail;
			struct virtq_used *used;
			uint16_t free_head;  /* first of the free descriptors, linked by next */
			uint16_t avail_idx;  /* our copy of avail->idx */
			uint16_t last_used;  /* the used ring's next entry for us to read */
		} split;
		struct {
			struct pvirtq_desc *desc;
			struct pvirtq_event_suppress *driver; /* ours: used buffer notifications */
			struct pvirtq_event_suppress *device; /* the device's: our kicks */
			uint16_t next_avail; /* slot of the next descriptor we make available */
			uint16_t next_used;  /* slot where the device writes the next used one */
			bool avail_wrap;     /* Driver Ring Wrap Counter (2.8.1) */
			bool used_wrap;      /* the Device Ring Wrap Counter we expect there */
			uint16_t free_id;    /* first free buffer id, linked by next_id */
			uint16_t *next_id;
			uint16_t *ndesc; /* per buffer id: ring slots its chain takes */
		} packed;
	};
};

/* Allocates vq's rings and tables for size entries (zeroed, as both layouts must start). */
int vq_init(struct vq *vq, struct virtio_dev *d, uint16_t index, uint16_t size,
	    const struct virtio_ring_opts *opts);

/* Makes bufs[0..n) one chain the device may use at once; token (not NULL) comes back with it
 * from vq_get_used. VIRTIO_ERR_FULL when the ring has no room for it. */
int vq_add_chain(struct vq *vq, const struct vq_buf *bufs, unsigned n, void *token);
/* Notifies the device of the chains added since the last kick, unless it said it does not need
 * to hear (event suppression); returns whether it did. */
bool vq_kick(struct vq *vq);
/* One used chain: 1 with its token and the bytes the device wrote, 0 when there is none yet,
 * VIRTIO_ERR_RING when the device gave back what was not in flight or wrote more than it held. */
int vq_get_used(struct vq *vq, void **token, uint32_t *len);
/* Whether there is a used chain to take, without taking it. */
bool vq_has_used(struct vq *vq);
/* vq_get_used until there is one: 0, or VIRTIO_ERR_DEVICE if the device gives up (NEEDS_RESET)
 * and VIRTIO_ERR_RING as vq_get_used. */
int vq_wait_used(struct vq *vq, void **token, uint32_t *len);
/* on: a used buffer notification is wanted for each buffer used from now on; off: none (we poll,
 * which is how every queue starts). */
void vq_interrupts(struct vq *vq, bool on);

/* The layouts' own versions, for readers who want to see one on its own; *_init lays out the
 * rings of a vq that vq_init has filled in. */
int split_init(struct vq *vq);
int split_add_chain(struct vq *vq, const struct vq_buf *bufs, unsigned n, void *token);
bool split_kick_needed(struct vq *vq);
bool split_has_used(struct vq *vq);
int split_get_used(struct vq *vq, void **token, uint32_t *len);
void split_interrupts(struct vq *vq, bool on);
int packed_init(struct vq *vq);
int packed_add_chain(struct vq *vq, const struct vq_buf *bufs, unsigned n, void *token);
bool packed_kick_needed(struct vq *vq);
bool packed_has_used(struct vq *vq);
int packed_get_used(struct vq *vq, void **token, uint32_t *len);
void packed_interrupts(struct vq *vq, bool on);

/* For split.c and packed.c: checks a chain and says how much of it the device may write. */
int vq_chain_check(const struct vq *vq, const struct vq_buf *bufs, unsigned n, const void *token,
		   uint32_t *writable);

/* The event index rule (2.7.7, 2.7.10; Linux's vring_need_event): whether the entry `event` is
 * among those just added or used, [old_idx, new_idx), in 16-bit arithmetic so that it wraps. */
static inline bool vq_need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

#endif
