/* The packed ring, driver side (2.8): one ring of descriptors that both sides write, the driver
 * making them available and the device marking them used in their place, plus an event
 * suppression structure for each side.
 *
 * Whose turn a descriptor is shows in two flag bits compared with a wrap counter that flips each
 * time round the ring (2.8.1): available while AVAIL equals the driver's counter and USED does
 * not; used once both equal the device's. A chain of n descriptors takes n slots and gets one
 * buffer id; the device writes one used descriptor for it, and both sides skip the other n - 1. */
#include "lib/io.h"
#include "lib/mem.h"
#include "virtio/virtqueue.h"

int packed_init(struct vq *vq)
{
	uint16_t n = vq->size;
	/* The descriptors, then the driver's and the device's event suppression structures
	 * (alignment 16, 4 and 4: 2.8.10.1). */
	uint8_t *ring = mem_alloc(16 * (size_t)n + 8, 16);

	vq->packed.next_id = mem_alloc(n * sizeof(uint16_t), 2);
	vq->packed.ndesc = mem_alloc(n * sizeof(uint16_t), 2);
	if (!ring || !vq->packed.next_id || !vq->packed.ndesc)
		return VIRTIO_ERR_NOMEM;
	vq->packed.desc = (struct pvirtq_desc *)ring;
	vq->packed.driver = (struct pvirtq_event_suppress *)(ring + 16 * n);
	vq->packed.device = (struct pvirtq_event_suppress *)(ring + 16 * n + 4);
	for (uint16_t id = 0; id < n; id++)
		vq->packed.next_id[id] = id + 1; /* every buffer id free, in order */
	vq->packed.free_id = 0;
	/* Both wrap counters start at 1 (2.8.1); the zeroed ring is then all "not available". */
	vq->packed.avail_wrap = vq->packed.used_wrap = true;
	vq->desc_addr = (uintptr_t)vq->packed.desc;
	vq->driver_addr = (uintptr_t)vq->packed.driver;
	vq->device_addr = (uintptr_t)vq->packed.device;
	packed_interrupts(vq, false); /* we poll */
	return 0;
}

/* Add a chain (2.8.21.1): write its descriptors into the next slots, then make the first one
 * available last, so the device never sees part of a chain (2.8.6). */
int packed_add_chain(struct vq *vq, const struct vq_buf *bufs, unsigned n, void *token)
{
	/* With more than one buffer and the feature: one descriptor pointing at a table (2.8.7). */
	bool indirect = vq->indirect && n > 1;
	unsigned slots = indirect ? 1 : n;
	uint16_t id, slot = vq->packed.next_avail, first = slot, first_flags = 0;
	bool wrap = vq->packed.avail_wrap;
	uint32_t writable;
	int ret;

	if ((ret = vq_chain_check(vq, bufs, n, token, &writable)))
		return ret;
	/* Each chain takes a slot at least, so while there is a free slot there is a free id. */
	if (slots > vq->num_free)
		return VIRTIO_ERR_FULL;
	id = vq->packed.free_id;
	vq->packed.free_id = vq->packed.next_id[id];
	for (unsigned i = 0; i < slots; i++) {
		struct pvirtq_desc *d = &vq->packed.desc[slot];
		uint16_t flags;

		if (indirect) {
			struct pvirtq_desc *table =
				(struct pvirtq_desc *)vq->tables + id * VQ_MAX_CHAIN;

			/* In a table only WRITE means anything; the order is the chain's. */
			for (unsigned k = 0; k < n; k++)
				table[k] = (struct pvirtq_desc){
					.addr = bufs[k].addr,
					.len = bufs[k].len,
					.flags = bufs[k].device_writes ? VIRTQ_DESC_F_WRITE : 0,
				};
			d->addr = (uintptr_t)table;
			d->len = n * sizeof(*table);
			flags = VIRTQ_DESC_F_INDIRECT;
		} else {
			d->addr = bufs[i].addr;
			d->len = bufs[i].len;
			flags = (bufs[i].device_writes ? VIRTQ_DESC_F_WRITE : 0) |
				(i + 1 < slots ? VIRTQ_DESC_F_NEXT : 0);
		}
		/* The device takes the id from the chain's last descriptor; in all of them it costs
		 * nothing. */
		d->id = id;
		/* Available in this lap: AVAIL as our wrap counter, USED the opposite. */
		flags |= wrap ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED;
		if (i == 0)
			first_flags = flags;
		else
			WRITE_ONCE(d->flags, flags);
		if (++slot == vq->size) {
			slot = 0;
			wrap = !wrap; /* flipped after the ring's last descriptor (2.8.1) */
		}
	}
	vq->packed.ndesc[id] = (uint16_t)slots;
	vq->token[id] = token;
	vq->writable[id] = writable;
	vq->packed.next_avail = slot;
	vq->packed.avail_wrap = wrap;
	vq->num_free -= slots;
	vq->added += slots;
	vq->chains++;
	/* The rest of the chain before the first descriptor's flags (2.8.21.1.1). */
	virtio_wmb();
	WRITE_ONCE(vq->packed.desc[first].flags, first_flags);
	return 0;
}

/* Notify: whether the device wants to hear of the descriptors added since the last kick, as its
 * event suppression structure says (2.8.10, 2.8.21.2). */
bool packed_kick_needed(struct vq *vq)
{
	uint16_t new_slot = vq->packed.next_avail, old_slot = new_slot - vq->added;
	uint16_t flags, off_wrap, event;

	vq->added = 0;
	/* The first descriptor's flags must be seen before we read the device's structure, or we
	 * may both wait for the other (2.8.21.2). */
	virtio_mb();
	flags = READ_ONCE(vq->packed.device->flags) & 3;
	if (flags == RING_EVENT_FLAGS_DISABLE)
		return false;
	/* DESC means something only with EVENT_IDX; the reserved value 3 we take as ENABLE: a kick
	 * too many costs a little, one too few hangs. */
	if (flags != RING_EVENT_FLAGS_DESC || !vq->event_idx)
		return true;
	/* The slot the device wants to hear about, and in which lap. Counted from the start of
	 * our current lap (a slot of the lap before is one ring earlier, negative), it compares
	 * with the slots just added [old_slot, new_slot) in the same 16-bit arithmetic as the split
	 * ring's indices. */
	off_wrap = READ_ONCE(vq->packed.device->off_wrap);
	event = off_wrap & ~(1u << RING_EVENT_WRAP_SHIFT);
	if (!!(off_wrap >> RING_EVENT_WRAP_SHIFT) != vq->packed.avail_wrap)
		event -= vq->size;
	return vq_need_event(event, new_slot, old_slot);
}

/* Whether the descriptor at next_used is used in the lap we expect: AVAIL and USED both equal to
 * the wrap counter (2.8.1). */
static bool used_in_lap(uint16_t flags, bool wrap)
{
	return !!(flags & VIRTQ_DESC_F_AVAIL) == wrap && !!(flags & VIRTQ_DESC_F_USED) == wrap;
}

bool packed_has_used(struct vq *vq)
{
	return used_in_lap(READ_ONCE(vq->packed.desc[vq->packed.next_used].flags),
			   vq->packed.used_wrap);
}

/* Reclaim a used buffer (2.8.22): the descriptor at next_used, once the device has marked it
 * used. */
int packed_get_used(struct vq *vq, void **token, uint32_t *len)
{
	struct pvirtq_desc *d = &vq->packed.desc[vq->packed.next_used];
	uint16_t flags = READ_ONCE(d->flags), id;
	bool wrap = vq->packed.used_wrap;
	uint32_t written;

	if (!used_in_lap(flags, wrap))
		return 0;
	/* The device wrote id and len before the flags: read them only after (2.8.22). */
	virtio_rmb();
	id = READ_ONCE(d->id);
	/* len counts only when the device says it wrote something (WRITE, 2.8.4). */
	written = flags & VIRTQ_DESC_F_WRITE ? READ_ONCE(d->len) : 0;
	if (id >= vq->size || !vq->token[id] || written > vq->writable[id])
		return VIRTIO_ERR_RING;
	/* Skip the chain's slots: the device's next used descriptor comes after them (2.8.6). */
	vq->packed.next_used += vq->packed.ndesc[id];
	if (vq->packed.next_used >= vq->size) {
		vq->packed.next_used -= vq->size;
		vq->packed.used_wrap = !wrap;
	}
	vq->num_free += vq->packed.ndesc[id];
	vq->packed.next_id[id] = vq->packed.free_id;
	vq->packed.free_id = id;
	*token = vq->token[id];
	*len = written;
	vq->token[id] = NULL;
	/* With EVENT_IDX the notification is asked for at a slot: move it to the next one. */
	if (vq->interrupts && vq->event_idx)
		packed_interrupts(vq, true);
	return 1;
}

/* Used buffer notifications (2.8.10): DISABLE, ENABLE, or with EVENT_IDX, DESC with the slot and
 * lap of the next used descriptor: "tell me when that one is used". */
void packed_interrupts(struct vq *vq, bool on)
{
	uint16_t flags = RING_EVENT_FLAGS_DISABLE;

	vq->interrupts = on;
	if (on && vq->event_idx) {
		WRITE_ONCE(vq->packed.driver->off_wrap,
			   (uint16_t)(vq->packed.next_used |
				      vq->packed.used_wrap << RING_EVENT_WRAP_SHIFT));
		flags = RING_EVENT_FLAGS_DESC;
	} else if (on) {
		flags = RING_EVENT_FLAGS_ENABLE;
	}
	/* The offset before the flags that make the device read it. */
	virtio_wmb();
	WRITE_ONCE(vq->packed.driver->flags, flags);
}
