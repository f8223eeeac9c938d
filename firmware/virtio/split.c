/* The split ring, driver side (2.7): a descriptor table, an available ring the driver writes and a
 * used ring the device writes.
 *
 * Free descriptors are kept in a list linked by their own next fields, as the spec suggests
 * (2.7.13.1): a chain of n descriptors is then the first n of the list, already linked, and goes
 * back to the list's front in one step when the device is done with it. */
#include "lib/io.h"
#include "lib/mem.h"
#include "virtio/virtqueue.h"

#define PAGE 4096

/* The two event indices sit past the end of the rings (2.7.6, 2.7.8). */
static uint16_t *used_event(struct vq *vq)
{
	return &vq->split.avail->ring[vq->size];
}

static uint16_t *avail_event(struct vq *vq)
{
	return (uint16_t *)&vq->split.used->ring[vq->size];
}

/* One piece of memory in the legacy layout (2.7.2): the descriptors, the available ring right
 * after them, the used ring at the next page. The modern transports take the three addresses
 * apart and accept this layout too; the legacy ones know only this one. */
int split_init(struct vq *vq)
{
	size_t n = vq->size, avail = 16 * n;
	size_t used = (avail + 6 + 2 * n + PAGE - 1) & ~(size_t)(PAGE - 1);
	uint8_t *ring;

	if (n & (n - 1))
		return VIRTIO_ERR_QUEUE; /* a split ring's size is a power of 2 */
	ring = mem_alloc(used + 6 + 8 * n, PAGE);
	if (!ring)
		return VIRTIO_ERR_NOMEM;
	vq->split.desc = (struct virtq_desc *)ring;
	vq->split.avail = (struct virtq_avail *)(ring + avail);
	vq->split.used = (struct virtq_used *)(ring + used);
	for (uint16_t i = 0; i < n; i++)
		vq->split.desc[i].next = i + 1; /* the free list: every descriptor, in order */
	vq->split.free_head = 0;
	vq->desc_addr = (uintptr_t)vq->split.desc;
	vq->driver_addr = (uintptr_t)vq->split.avail;
	vq->device_addr = (uintptr_t)vq->split.used;
	/* We poll: no used buffer notifications until asked for. */
	split_interrupts(vq, false);
	return 0;
}

/* Add a chain (2.7.13): its descriptors, its head in the available ring, then idx. */
int split_add_chain(struct vq *vq, const struct vq_buf *bufs, unsigned n, void *token)
{
	struct virtq_desc *desc = vq->split.desc;
	/* With more than one buffer and the feature, one descriptor pointing at a table that holds
	 * them (2.7.5.3): the ring then takes as many chains as it has descriptors. */
	bool indirect = vq->indirect && n > 1;
	uint16_t head = vq->split.free_head, last = head;
	uint32_t writable;
	int ret;

	if ((ret = vq_chain_check(vq, bufs, n, token, &writable)))
		return ret;
	if ((indirect ? 1 : n) > vq->num_free)
		return VIRTIO_ERR_FULL;
	if (indirect) {
		struct virtq_desc *table = (struct virtq_desc *)vq->tables + head * VQ_MAX_CHAIN;

		for (unsigned i = 0; i < n; i++)
			table[i] = (struct virtq_desc){
				.addr = bufs[i].addr,
				.len = bufs[i].len,
				.flags = (bufs[i].device_writes ? VIRTQ_DESC_F_WRITE : 0) |
					 (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0),
				.next = (uint16_t)(i + 1),
			};
		desc[head].addr = (uintptr_t)table;
		desc[head].len = n * sizeof(*table);
		desc[head].flags = VIRTQ_DESC_F_INDIRECT; /* and no NEXT: a table ends its chain */
	} else {
		/* The free list's links are the chain's: only the flags say where it ends. */
		for (unsigned i = 0, d = head; i < n; i++, d = desc[d].next) {
			desc[d].addr = bufs[i].addr;
			desc[d].len = bufs[i].len;
			desc[d].flags = (bufs[i].device_writes ? VIRTQ_DESC_F_WRITE : 0) |
					(i + 1 < n ? VIRTQ_DESC_F_NEXT : 0);
			last = (uint16_t)d;
		}
	}
	vq->split.free_head = desc[last].next;
	vq->num_free -= indirect ? 1 : n;
	vq->token[head] = token;
	vq->writable[head] = writable;
	/* The head into the next entry of the available ring (2.7.13.2); the descriptors and the
	 * entry must be visible before idx says they are there (2.7.13.3.1). */
	vq->split.avail->ring[vq->split.avail_idx & (vq->size - 1)] = head;
	virtio_wmb();
	WRITE_ONCE(vq->split.avail->idx, ++vq->split.avail_idx);
	vq->added++;
	vq->chains++;
	return 0;
}

/* Notify: whether the device wants to hear of the chains added since the last kick (2.7.10). */
bool split_kick_needed(struct vq *vq)
{
	uint16_t new_idx = vq->split.avail_idx, old_idx = new_idx - vq->added;

	vq->added = 0;
	/* Our idx store must be seen before we read the device's suppression, or both sides may
	 * decide the other will look: a kick lost, a request never served (2.7.13.4.1). */
	virtio_mb();
	/* With EVENT_IDX, kick when the entry the device waits for (avail_event) is among those
	 * just added; without, unless it set NO_NOTIFY. */
	if (vq->event_idx)
		return vq_need_event(READ_ONCE(*avail_event(vq)), new_idx, old_idx);
	return !(READ_ONCE(vq->split.used->flags) & VIRTQ_USED_F_NO_NOTIFY);
}

/* Whether the device's idx has passed the next used entry for us to read. */
bool split_has_used(struct vq *vq)
{
	return READ_ONCE(vq->split.used->idx) != vq->split.last_used;
}

/* Reclaim a used buffer (2.7.14): the next used entry, if there is one. */
int split_get_used(struct vq *vq, void **token, uint32_t *len)
{
	struct virtq_used_elem e;
	uint16_t d, n = 1;

	if (!split_has_used(vq))
		return 0;
	/* The device wrote the entry before idx (2.7.8.2): read it only after idx. */
	virtio_rmb();
	e.id = READ_ONCE(vq->split.used->ring[vq->split.last_used & (vq->size - 1)].id);
	e.len = READ_ONCE(vq->split.used->ring[vq->split.last_used & (vq->size - 1)].len);
	/* The device's word against what we gave it: a head in flight, and no more written than
	 * its buffers hold. */
	if (e.id >= vq->size || !vq->token[e.id] || e.len > vq->writable[e.id])
		return VIRTIO_ERR_RING;
	/* The whole chain back to the free list's front; the device never writes the table, so
	 * its NEXT flags are still ours. */
	for (d = (uint16_t)e.id; vq->split.desc[d].flags & VIRTQ_DESC_F_NEXT && n < vq->size; n++)
		d = vq->split.desc[d].next;
	vq->split.desc[d].next = vq->split.free_head;
	vq->split.free_head = (uint16_t)e.id;
	vq->num_free += n;
	*token = vq->token[e.id];
	*len = e.len;
	vq->token[e.id] = NULL;
	vq->split.last_used++;
	/* used_event counts from last_used: move it along. (A driver that sleeps until the
	 * notification would then read idx once more, in case the device wrote the entry before
	 * it saw the new used_event.) */
	if (vq->event_idx)
		split_interrupts(vq, vq->interrupts);
	return 1;
}

/* Used buffer notifications (2.7.7). Without EVENT_IDX, a flag the device should honour. With it,
 * flags stay 0 and used_event names the used entry to be told of: `on`, the next one we will
 * read; off, one half the index space ahead of it. The device cannot get that far: no more than
 * the ring's size of buffers can be used ahead of us. (Not the entry just behind, as one might
 * think: the device may be writing a batch that started before it, and would cross it.) */
void split_interrupts(struct vq *vq, bool on)
{
	vq->interrupts = on;
	if (vq->event_idx)
		WRITE_ONCE(*used_event(vq), (uint16_t)(vq->split.last_used + (on ? 0 : 0x7fff)));
	else
		WRITE_ONCE(vq->split.avail->flags, on ? 0 : VIRTQ_AVAIL_F_NO_INTERRUPT);
}
