/* Virtqueues, device side: the split ring (VIRTIO 1.x section 2.7) and the packed ring (2.8), with
 * indirect descriptors and event suppression (EVENT_IDX) in both directions.
 *
 * The driver owns the rings and is not trusted. Every guest address and length goes through
 * gmem_ptr(); a chain is bounded by the queue size (indirect descriptors included), so a loop ends;
 * any malformed shape makes virtq_pop() return a negative errno and mark the queue broken, after
 * which it does nothing until virtq_reset(). The caller (the device core) turns that into
 * DEVICE_NEEDS_RESET.
 *
 * A queue is used by one thread at a time (the device's I/O thread, under the device lock). */
#ifndef VMM_VIRTQUEUE_H
#define VMM_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "memory.h"

#define VIRTQ_MAX_SIZE 1024 /* the largest queue any of our devices offers */

/* Ring feature bits (VIRTIO 1.x section 6) that change how a queue is walked. */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_RING_PACKED   34

/* Descriptor flags, both layouts. */
#define VIRTQ_DESC_F_NEXT     1
#define VIRTQ_DESC_F_WRITE    2
#define VIRTQ_DESC_F_INDIRECT 4
/* Packed ring only. */
#define VIRTQ_DESC_F_AVAIL (1 << 7)
#define VIRTQ_DESC_F_USED  (1 << 15)

/* Split ring suppression flags. */
#define VIRTQ_USED_F_NO_NOTIFY     1
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
/* Packed ring event suppression flags (struct pvirtq_event_suppress). */
#define VIRTQ_EVENT_F_ENABLE  0
#define VIRTQ_EVENT_F_DISABLE 1
#define VIRTQ_EVENT_F_DESC    2

struct virtq {
	/* Set by the transport from the driver's writes while the queue is not yet enabled. */
	uint16_t size;      /* entries; split: a power of 2; packed: any value from 1 */
	uint64_t desc_gpa;  /* descriptor table / packed descriptor ring */
	uint64_t avail_gpa; /* split: available ring; packed: driver event suppression area */
	uint64_t used_gpa;  /* split: used ring; packed: device event suppression area */

	/* Set by virtq_enable() from the negotiated features. */
	bool packed, event_idx, indirect;
	bool enabled;
	bool broken; /* a malformed ring was seen: nothing more until virtq_reset() */
	const struct guest_mem *mem;

	/* Device-side ring state. */
	uint16_t last_avail; /* split: next avail index to read; packed: next descriptor slot */
	uint16_t used_idx;   /* split: our used index; packed: next slot to write */
	bool avail_wrap;     /* packed: the driver's wrap counter we expect next */
	bool used_wrap;      /* packed: our wrap counter for the next used descriptor */
	uint16_t signalled_used; /* used index at the last interrupt (EVENT_IDX) */
	bool signalled_valid;    /* false until the first interrupt after enable */
	uint16_t pending_used;   /* used entries (packed: ring slots) since virtq_should_notify() */
	/* Bumped by every virtq_reset() (a device reset, a queue the driver stopped): a chain
	 * popped before carries an older one and is never pushed into the rings set up after. */
	uint32_t epoch;

	/* Host addresses of the three areas, translated and checked once by virtq_enable(). */
	void *desc, *avail, *used;
};

/* One descriptor chain popped from the ring: the driver-readable buffers come first in iov
 * (out_num of them), then the driver-writable ones (in_num). Pointers are host addresses inside
 * guest RAM, already checked. */
struct virtq_elem {
	uint16_t id;    /* split: head index; packed: buffer id, for the used ring */
	uint16_t ndesc; /* packed: descriptors the chain took in the ring (used to skip them) */
	uint32_t epoch; /* the queue's when the chain was popped */
	unsigned out_num, in_num;
	uint64_t out_len, in_len; /* byte totals of each side */
	struct iovec iov[VIRTQ_MAX_SIZE];
};

/* Back to the state after device reset: disabled, no addresses, size 0 (the core then sets the
 * size back to the device's maximum), and a new epoch: no chain popped before is pushed again. */
void virtq_reset(struct virtq *q);

/* Checks that the rings, at their addresses and size, lie in guest RAM and are aligned as the
 * layout requires, and starts using the queue with the negotiated features. 0, or -EINVAL for a bad
 * size, -EFAULT for a ring outside RAM or misaligned; either marks the queue broken (-EIO when it
 * already is). */
int virtq_enable(struct virtq *q, const struct guest_mem *mem, uint64_t features);

/* Takes the next available chain. 1 when *e was filled, 0 when the ring is empty (or the queue
 * is not enabled), or a negative errno for a malformed ring, which also marks the queue broken
 * (a broken queue returns -EIO and reads nothing). *e is scratch unless 1 is returned:
 *   -EFAULT  a ring, descriptor, indirect table or buffer outside RAM, or a buffer whose
 *            address + length wraps;
 *   -EINVAL  a zero-length buffer, a head or next index out of range, a readable buffer after a
 *            writable one, an indirect table whose length is not a whole number of descriptors or
 *            that is nested or empty, an avail index that runs ahead by more than the queue size,
 *            a chain longer than the queue size (which is how loops end), an INDIRECT flag
 *            without the feature or together with NEXT, or (packed) after other descriptors. */
int virtq_pop(struct virtq *q, struct virtq_elem *e);

/* What virtq_push needs of a chain, kept after the virtq_elem is reused. */
struct virtq_used {
	uint16_t id, ndesc; /* the chain's virtq_elem id and ndesc */
	uint32_t len;       /* bytes written into it */
	uint32_t epoch;     /* the chain's virtq_elem epoch */
};

static inline struct virtq_used virtq_used_of(const struct virtq_elem *e, uint32_t len)
{
	return (struct virtq_used){ .id = e->id, .ndesc = e->ndesc, .len = len, .epoch = e->epoch };
}

/* Gives n chains back at once: the driver sees all of them used or none (a received packet
 * spread over several buffers). Whatever the caller passes, only what fits the ring as it is now
 * is written: a chain popped before the queue's last reset (an older epoch) is dropped, since the
 * driver has taken its buffers back and may have set up smaller rings since; a chain that cannot
 * be one of this ring's (split: a head at or past the size; packed: 0 or more than size
 * descriptors) is refused and marks the queue broken. Returns how many were published. */
unsigned virtq_push_many(struct virtq *q, const struct virtq_used *u, unsigned n);
/* One chain: `len` bytes were written into its writable buffers. Does not interrupt. */
void virtq_push(struct virtq *q, const struct virtq_elem *e, uint32_t len);
/* Whether a chain popped from q in `epoch` (its virtq_elem's or virtq_used's) is still the
 * driver's to answer: the queue was not reset or stopped since. For a device that holds chains
 * between kicks, or whose completions come late. */
bool virtq_current(const struct virtq *q, uint32_t epoch);
/* Puts the last chain popped (ndesc: its virtq_elem's) back in the ring, as if never popped:
 * call it for the last popped first. For a device that found it cannot use the chains it took
 * (a received packet that needs more buffers than the driver has given). */
void virtq_unpop(struct virtq *q, uint16_t ndesc);

/* After one or more virtq_push() calls: whether the driver wants an interrupt now (its
 * NO_INTERRUPT flag, used_event index or packed event suppression). Resets the pending count. */
bool virtq_should_notify(struct virtq *q);
/* The same question, asked without resetting anything: for a device that may hold the interrupt
 * back (net's transmit moderation) and wants to know whether one is owed at all. */
bool virtq_notify_due(const struct virtq *q);

/* Asks the driver to notify (kick) us on new buffers, or not to. With EVENT_IDX this publishes
 * avail_event. Returns true when, after enabling, buffers are already available: the caller must
 * then pop again rather than sleep (the driver may have added them before it saw the flag). */
bool virtq_enable_notify(struct virtq *q, bool enable);

/* The ring's state as both sides see it (indices, event suppression), for a log line when a
 * guest seems stuck. Like snprintf. */
int virtq_describe(const struct virtq *q, char *buf, size_t len);

/* Buffer helpers for device models. iov_copy copies between buf and iov[0..n), starting `off`
 * bytes into the iovecs (into them when to_iov); the two others copy from the readable side / into
 * the writable side of a chain. Each returns the bytes copied: fewer than len when the iovecs end. */
size_t iov_copy(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len, bool to_iov);
/* The bytes [skip, skip + len) of iov[0..n) as iovecs of their own in out[0..max) (pointing into
 * the same buffers), for a read or write straight into or out of a chain: the count made. */
unsigned iov_slice(const struct iovec *iov, unsigned n, size_t skip, size_t len,
		   struct iovec *out, unsigned max);
size_t virtq_elem_read(const struct virtq_elem *e, size_t off, void *buf, size_t len);
size_t virtq_elem_write(const struct virtq_elem *e, size_t off, const void *buf, size_t len);

#endif
