/* Virtqueues, device side: split rings (VIRTIO 1.x 2.7, "Split Virtqueues") and packed rings (2.8,
 * "Packed Virtqueues"). virtq_enable() checks a queue's rings once, when the driver enables it;
 * then one request, as a device model handles it:
 *   virtq_pop()            takes the next chain the driver made available: reads the avail index
 *                          (split) or the next descriptor's flags (packed), then copies and
 *                          checks each descriptor into a virtq_elem of host iovecs;
 *   virtq_elem_read/write  the device model reads the request, writes its answer;
 *   virtq_push()           gives the chain back: the used element (split) or used descriptor
 *                          (packed) first, then the used index or the first descriptor's flags,
 *                          so the driver sees all of it or none;
 *   virtq_should_notify()  whether the driver's suppression asks for an interrupt now;
 *   virtq_enable_notify()  the device's own suppression, turned back on before it sleeps.
 * docs/virtio-request.md follows one request through the driver's side and this one.
 *
 * The guest writes the rings while we read them, so:
 *  - a field the driver may change concurrently (avail idx, ring entries, packed flags, event
 *    suppression) is read once, with an __atomic load;
 *  - a descriptor is copied out once (desc_copy) and only the copy is checked and used;
 *  - the barriers are the ones VIRTIO 1.x 2.7.13 / 2.8.21 ask of the device, named where they are.
 * The host is x86: little-endian like the rings, so fields are used as they are. A legacy driver
 * writes them in its own byte order (2.7.3), which on an x86 guest is the same. */
#include "virtio/virtqueue.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* A descriptor as the packed ring lays it out (2.8.13: addr, len, id, flags). A split descriptor
 * has flags before next (2.7.5): desc_copy swaps those two, so the code sees one shape. */
struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t id_or_next; /* packed: buffer id; split: next */
	uint16_t flags;
};

/* The split rings' headers: flags, idx, then the ring (VIRTIO 1.x 2.7.6, 2.7.8). */
#define RING_FLAGS 0
#define RING_IDX   2
#define RING_ENTS  4
#define USED_ELEM  8 /* struct virtq_used_elem: le32 id, le32 len */

/* Packed event suppression area (2.8.10): le16 off_wrap, le16 flags. */
#define EVT_OFF_WRAP 0
#define EVT_FLAGS    2
#define WRAP_BIT     15

static uint16_t *field16(void *base, size_t off)
{
	return (uint16_t *)((uint8_t *)base + off);
}

static uint16_t load16(void *base, size_t off)
{
	return __atomic_load_n(field16(base, off), __ATOMIC_RELAXED);
}

static void store16(void *base, size_t off, uint16_t v)
{
	__atomic_store_n(field16(base, off), v, __ATOMIC_RELAXED);
}

/* One read of the guest's descriptor. The compiler barrier keeps the compiler from reading guest
 * memory again in place of the copy, so a check on the copy holds for every later use. */
static void desc_copy(const struct virtq *q, struct desc *d, const void *p)
{
	memcpy(d, p, sizeof(*d));
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (!q->packed) {
		uint16_t flags = d->id_or_next;

		d->id_or_next = d->flags;
		d->flags = flags;
	}
}

static int fail(struct virtq *q, int err)
{
	q->broken = true;
	return err;
}

void virtq_reset(struct virtq *q)
{
	uint32_t epoch = q->epoch;

	memset(q, 0, sizeof(*q));
	q->epoch = epoch + 1;
}

/* Host address of a ring area, or NULL unless it is wholly in RAM and aligned as the spec's tables
 * (2.7, 2.8.10.1) require; aligned fields also make our __atomic accesses legal. */
static void *ring_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len, uint64_t align)
{
	if (gpa & (align - 1))
		return NULL;
	return gmem_ptr(mem, gpa, len);
}

int virtq_enable(struct virtq *q, const struct guest_mem *mem, uint64_t features)
{
	uint64_t n = q->size;

	if (q->broken)
		return -EIO;
	q->packed = features & (1ULL << VIRTIO_F_RING_PACKED);
	q->event_idx = features & (1ULL << VIRTIO_F_EVENT_IDX);
	q->indirect = features & (1ULL << VIRTIO_F_INDIRECT_DESC);
	/* Sizes: 1..32768 for both layouts (ours stop at VIRTQ_MAX_SIZE), a power of 2 for split.
	 */
	if (n == 0 || n > VIRTQ_MAX_SIZE || (!q->packed && (n & (n - 1))))
		return fail(q, -EINVAL);
	q->desc = ring_ptr(mem, q->desc_gpa, 16 * n, 16);
	if (q->packed) {
		q->avail = ring_ptr(mem, q->avail_gpa, 4, 4);
		q->used = ring_ptr(mem, q->used_gpa, 4, 4);
	} else {
		/* Both sizes include the trailing used_event / avail_event, as the table does. */
		q->avail = ring_ptr(mem, q->avail_gpa, 6 + 2 * n, 2);
		q->used = ring_ptr(mem, q->used_gpa, 6 + USED_ELEM * n, 4);
	}
	if (!q->desc || !q->avail || !q->used)
		return fail(q, -EFAULT);
	q->mem = mem;
	q->last_avail = 0;
	q->used_idx = 0;
	q->avail_wrap = true; /* both wrap counters start at 1 (2.8.1) */
	q->used_wrap = true;
	q->signalled_used = 0;
	q->signalled_valid = false;
	q->pending_used = 0;
	q->enabled = true;
	return 0;
}

/* Appends one buffer to the chain, checking everything the driver controls about it. */
static int add_buf(struct virtq *q, struct virtq_elem *e, const struct desc *d)
{
	bool write = d->flags & VIRTQ_DESC_F_WRITE;
	unsigned n = e->out_num + e->in_num;
	void *p;

	/* No empty buffers: the device models assume every buffer holds at least a byte. */
	if (d->len == 0)
		return -EINVAL;
	/* At most size buffers, indirect ones included (2.7.5.3.1): this bounds every chain walk,
	 * so loops end, and keeps iov[] in range. */
	if (n >= q->size)
		return -EINVAL;
	/* Readable buffers come first (2.7.4.2): the device model relies on that split. */
	if (!write && e->in_num)
		return -EINVAL;
	/* In RAM, in one region; gmem_ptr() also rejects an address + length that wraps. */
	p = gmem_ptr(q->mem, d->addr, d->len);
	if (!p)
		return -EFAULT;
	e->iov[n] = (struct iovec){ .iov_base = p, .iov_len = d->len };
	if (write) {
		e->in_num++;
		e->in_len += d->len;
	} else {
		e->out_num++;
		e->out_len += d->len;
	}
	return 0;
}

/* Checks the descriptor that refers to an indirect table and returns the table's host address
 * and number of entries. */
static int indirect_table(struct virtq *q, const struct desc *d, void **table, unsigned *n)
{
	/* Only with the feature, and a table ends its chain: INDIRECT with NEXT is forbidden. */
	if (!q->indirect || (d->flags & VIRTQ_DESC_F_NEXT))
		return -EINVAL;
	/* Whole descriptors, at least one. Entries past the chain's end are never read. */
	if (d->len == 0 || d->len % sizeof(struct desc))
		return -EINVAL;
	*table = gmem_ptr(q->mem, d->addr, d->len);
	if (!*table)
		return -EFAULT;
	*n = d->len / sizeof(struct desc);
	return 0;
}

static int pop_split(struct virtq *q, struct virtq_elem *e)
{
	uint16_t avail_idx, head;
	void *table = q->desc;
	unsigned n = q->size, idx;
	bool in_table = false;
	struct desc d;
	int err;

	avail_idx = load16(q->avail, RING_IDX);
	/* More than a ring's worth available is a driver that lost count (2.7.6). */
	if ((uint16_t)(avail_idx - q->last_avail) > q->size)
		return -EINVAL;
	if (avail_idx == q->last_avail)
		return 0;
	/* Read barrier: the ring entry and descriptors were written before idx (2.7.13). */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	/* The entry the driver filled for this index: the head of its chain (2.7.6). */
	head = load16(q->avail, RING_ENTS + 2 * (q->last_avail & (q->size - 1)));

	/* Every pass adds a buffer, which add_buf() bounds, or enters the one indirect table: so
	 * the walk ends, loops included. */
	for (idx = head;;) {
		/* Head and next indices stay inside their table. */
		if (idx >= n)
			return -EINVAL;
		desc_copy(q, &d, (uint8_t *)table + idx * sizeof(d));
		if (!in_table)
			e->ndesc++;
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			/* One table per chain, never one inside another (2.7.5.3.1). */
			if (in_table)
				return -EINVAL;
			err = indirect_table(q, &d, &table, &n);
			if (err)
				return err;
			in_table = true;
			idx = 0;
			continue;
		}
		err = add_buf(q, e, &d);
		if (err)
			return err;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		idx = d.id_or_next;
	}
	e->id = head; /* what the used element will name */
	q->last_avail++;
	return 1;
}

/* Whether a packed descriptor's flags say available in the driver's lap `wrap` (2.8.1): AVAIL
 * equal to the wrap counter and USED its inverse. */
static bool packed_avail(uint16_t flags, bool wrap)
{
	return !!(flags & VIRTQ_DESC_F_AVAIL) == wrap && !!(flags & VIRTQ_DESC_F_USED) != wrap;
}

static int pop_packed(struct virtq *q, struct virtq_elem *e)
{
	uint16_t slot = q->last_avail, flags;
	bool wrap = q->avail_wrap;
	struct desc d, t;
	void *table;
	unsigned n, ndesc = 0;
	int err;

	/* The acquire load is the read barrier: the driver makes the first descriptor available
	 * after writing the rest of the list (2.8.6), so the rest is visible once this is. */
	flags = __atomic_load_n(field16(q->desc, slot * sizeof(d) + offsetof(struct desc, flags)),
				__ATOMIC_ACQUIRE);
	if (!packed_avail(flags, wrap))
		return 0;
	/* Every pass adds a buffer, which add_buf() bounds to the ring's size, or ends the list
	 * with a table: so a list that runs round the ring into its own head ends. */
	for (;;) {
		desc_copy(q, &d, (uint8_t *)q->desc + slot * sizeof(d));
		if (++ndesc == 1)
			d.flags = flags; /* the flags we checked, not a second read */
		if (++slot == q->size) {
			slot = 0;
			wrap = !wrap;
		}
		if (!(d.flags & VIRTQ_DESC_F_INDIRECT)) {
			err = add_buf(q, e, &d);
			if (err)
				return err;
			if (d.flags & VIRTQ_DESC_F_NEXT)
				continue;
			break;
		}
		/* A list holds descriptors of one type (2.8.5): a table stands alone. */
		if (ndesc > 1)
			return -EINVAL;
		err = indirect_table(q, &d, &table, &n);
		if (err)
			return err;
		for (unsigned i = 0; i < n; i++) {
			desc_copy(q, &t, (uint8_t *)table + i * sizeof(t));
			/* No table inside a table; NEXT is meaningless here and ignored (2.8.7). */
			if (t.flags & VIRTQ_DESC_F_INDIRECT)
				return -EINVAL;
			err = add_buf(q, e, &t);
			if (err)
				return err;
		}
		break;
	}
	e->id = d.id_or_next; /* the buffer id is in the list's last descriptor */
	e->ndesc = ndesc;
	q->last_avail = slot;
	q->avail_wrap = wrap;
	return 1;
}

int virtq_pop(struct virtq *q, struct virtq_elem *e)
{
	int ret;

	if (q->broken)
		return -EIO;
	if (!q->enabled)
		return 0;
	e->id = 0;
	e->ndesc = 0;
	e->epoch = q->epoch;
	e->out_num = e->in_num = 0;
	e->out_len = e->in_len = 0;
	ret = q->packed ? pop_packed(q, e) : pop_split(q, e);
	return ret < 0 ? fail(q, ret) : ret;
}

/* Saturating: past half the index space every event index has been crossed anyway. */
static void add_pending(struct virtq *q, unsigned n)
{
	q->pending_used = q->pending_used + n > 0x8000 ? 0x8000 : q->pending_used + n;
}

/* Writes one used entry without publishing it: split, the ring element at used_idx + i; packed,
 * the descriptor at *slot, whose flags are stored only when `publish`. Returns the flags. */
static uint16_t put_used(struct virtq *q, const struct virtq_used *u, uint16_t i, uint16_t *slot,
			 bool *wrap, bool publish)
{
	uint8_t *p;
	uint16_t flags;

	if (!q->packed) {
		p = (uint8_t *)q->used + RING_ENTS +
		    USED_ELEM * ((uint16_t)(q->used_idx + i) & (q->size - 1));
		__atomic_store_n((uint32_t *)p, u->id, __ATOMIC_RELAXED);
		__atomic_store_n((uint32_t *)(p + 4), u->len, __ATOMIC_RELAXED);
		return 0;
	}
	p = (uint8_t *)q->desc + *slot * sizeof(struct desc);
	__atomic_store_n((uint32_t *)(p + offsetof(struct desc, len)), u->len, __ATOMIC_RELAXED);
	store16(p, offsetof(struct desc, id_or_next), u->id);
	/* Used: AVAIL and USED equal our wrap counter; WRITE says len is meaningful (2.8.4). */
	flags = (*wrap ? VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED : 0) |
		(u->len ? VIRTQ_DESC_F_WRITE : 0);
	/* Flags last, with release: the driver sees id and len once it sees the descriptor used. */
	if (publish)
		__atomic_store_n(field16(p, offsetof(struct desc, flags)), flags, __ATOMIC_RELEASE);
	/* Skip the rest of the list's slots (2.8.6); 1 <= ndesc <= size (used_fits), so one
	 * subtraction wraps. */
	*slot += u->ndesc;
	if (*slot >= q->size) {
		*slot -= q->size;
		*wrap = !*wrap;
	}
	return flags;
}

/* Whether u can be one of the chains this ring holds now: the second wall behind the devices,
 * which must never hand in more than that. A chain that cannot be (split: a head at or past the
 * size; packed: 0 or more than size descriptors) would be written outside the ring or break the
 * driver's view of it. */
static bool used_fits(const struct virtq *q, const struct virtq_used *u)
{
	return q->packed ? u->ndesc > 0 && u->ndesc <= q->size : u->id < q->size;
}

unsigned virtq_push_many(struct virtq *q, const struct virtq_used *u, unsigned n)
{
	uint16_t slot = q->used_idx, first_flags = 0;
	bool wrap = q->used_wrap;
	unsigned slots = 0, k = 0;

	if (q->broken || !q->enabled)
		return 0;
	for (unsigned i = 0; i < n; i++) {
		if (u[i].epoch == q->epoch && !used_fits(q, &u[i])) {
			q->broken = true;
			return 0;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		uint16_t f;

		/* Popped before a reset or a queue stop: the driver took the buffers back and may
		 * have set up other rings since. Dropped. */
		if (u[i].epoch != q->epoch)
			continue;
		f = put_used(q, &u[i], (uint16_t)k, &slot, &wrap, k > 0);
		if (k++ == 0)
			first_flags = f;
		slots += u[i].ndesc;
	}
	if (!k)
		return 0;
	if (!q->packed) {
		/* The elements went at used_idx, used_idx + 1, ...; the index moves once, after all
		 * of them. The release store orders them before it (2.7.8.2: len before idx). */
		q->used_idx += (uint16_t)k;
		__atomic_store_n(field16(q->used, RING_IDX), q->used_idx, __ATOMIC_RELEASE);
		add_pending(q, k);
		return k;
	}
	/* put_used stored the flags of every entry but the first as it went; the first entry's
	 * flags go last (2.8.9), so the driver sees all of them or none. */
	__atomic_store_n(field16((uint8_t *)q->desc + q->used_idx * sizeof(struct desc),
				 offsetof(struct desc, flags)),
			 first_flags, __ATOMIC_RELEASE);
	q->used_idx = slot;
	q->used_wrap = wrap;
	add_pending(q, slots);
	return k;
}

void virtq_push(struct virtq *q, const struct virtq_elem *e, uint32_t len)
{
	struct virtq_used u = virtq_used_of(e, len);

	virtq_push_many(q, &u, 1);
}

bool virtq_current(const struct virtq *q, uint32_t epoch)
{
	return q->enabled && epoch == q->epoch;
}

void virtq_unpop(struct virtq *q, uint16_t ndesc)
{
	if (q->broken || !q->enabled)
		return;
	if (!q->packed) {
		q->last_avail--;
		return;
	}
	if (q->last_avail >= ndesc) {
		q->last_avail -= ndesc;
	} else {
		q->last_avail += q->size - ndesc;
		q->avail_wrap = !q->avail_wrap;
	}
}

/* vring_need_event (2.7.7): whether `event` lies in the indices [old, new) just used. */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

static bool packed_should_notify(const struct virtq *q, uint16_t pending)
{
	uint16_t flags = load16(q->avail, EVT_FLAGS) & 3, off_wrap;
	int event;

	if (flags == VIRTQ_EVENT_F_DISABLE)
		return false;
	/* DESC means something only with EVENT_IDX; without it, and for the reserved value 3,
	 * interrupt: a spurious interrupt is harmless, a missing one hangs the driver. */
	if (flags != VIRTQ_EVENT_F_DESC || !q->event_idx || pending >= q->size)
		return true;
	off_wrap = load16(q->avail, EVT_OFF_WRAP);
	event = off_wrap & ~(1u << WRAP_BIT);
	/* An offset in the lap before ours counts from one ring earlier. */
	if (!!(off_wrap >> WRAP_BIT) != q->used_wrap)
		event -= q->size;
	return need_event(event, q->used_idx, q->used_idx - pending);
}

bool virtq_notify_due(const struct virtq *q)
{
	uint16_t pending = q->pending_used;

	if (q->broken || !q->enabled || !pending)
		return false;
	/* Full barrier: the used idx / flags we published must be visible before we read the
	 * driver's suppression, or we can miss the interrupt it is about to ask for (2.7.7). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (q->packed)
		return packed_should_notify(q, pending);
	if (!q->event_idx)
		return !(load16(q->avail, RING_FLAGS) & VIRTQ_AVAIL_F_NO_INTERRUPT);
	return pending >= 0x8000 ||
	       need_event(load16(q->avail, RING_ENTS + 2 * q->size), q->used_idx,
			  q->used_idx - pending);
}

bool virtq_should_notify(struct virtq *q)
{
	bool notify = virtq_notify_due(q);

	q->pending_used = 0;
	if (notify) {
		q->signalled_used = q->used_idx;
		q->signalled_valid = true;
	}
	return notify;
}

bool virtq_enable_notify(struct virtq *q, bool enable)
{
	uint16_t flags;

	if (q->broken || !q->enabled)
		return false;
	if (q->packed) {
		if (enable && q->event_idx)
			store16(q->used, EVT_OFF_WRAP, q->last_avail | q->avail_wrap << WRAP_BIT);
		flags = VIRTQ_EVENT_F_DISABLE;
		if (enable)
			flags = q->event_idx ? VIRTQ_EVENT_F_DESC : VIRTQ_EVENT_F_ENABLE;
		store16(q->used, EVT_FLAGS, flags);
	} else if (q->event_idx) {
		/* With EVENT_IDX flags stay 0 (2.7.10); a kick comes when the driver fills the
		 * entry we expect next. Disabling leaves the old avail_event: at worst a spurious
		 * kick. */
		if (enable)
			store16(q->used, RING_ENTS + USED_ELEM * q->size, q->last_avail);
	} else {
		store16(q->used, RING_FLAGS, enable ? 0 : VIRTQ_USED_F_NO_NOTIFY);
	}
	if (!enable)
		return false;
	/* Full barrier: the driver checks our flag after adding buffers, we check for buffers after
	 * writing the flag; with both ordered, one of us sees the other. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (q->packed)
		return packed_avail(load16(q->desc, q->last_avail * sizeof(struct desc) +
							offsetof(struct desc, flags)),
					q->avail_wrap);
	return load16(q->avail, RING_IDX) != q->last_avail;
}

int virtq_describe(const struct virtq *q, char *buf, size_t len)
{
	if (!q->enabled)
		return snprintf(buf, len, "disabled");
	if (q->packed)
		return snprintf(buf, len,
				"packed, size %u%s: next avail slot %u (wrap %u), next used slot %u "
				"(wrap %u, signalled %u%s); driver event flags %u off_wrap %#x, device "
				"event flags %u off_wrap %#x; %u used not yet signalled",
				q->size, q->broken ? ", broken" : "", q->last_avail, q->avail_wrap,
				q->used_idx, q->used_wrap, q->signalled_used,
				q->signalled_valid ? "" : ", none", load16(q->avail, EVT_FLAGS),
				load16(q->avail, EVT_OFF_WRAP), load16(q->used, EVT_FLAGS),
				load16(q->used, EVT_OFF_WRAP), q->pending_used);
	return snprintf(buf, len,
			"split, size %u%s: avail idx %u (taken %u), used idx %u (signalled %u%s); "
			"avail flags %u used_event %u, used flags %u avail_event %u; %u used not yet "
			"signalled",
			q->size, q->broken ? ", broken" : "", load16(q->avail, RING_IDX), q->last_avail,
			load16(q->used, RING_IDX), q->signalled_used, q->signalled_valid ? "" : ", none",
			load16(q->avail, RING_FLAGS), load16(q->avail, RING_ENTS + 2 * q->size),
			load16(q->used, RING_FLAGS), load16(q->used, RING_ENTS + USED_ELEM * q->size),
			q->pending_used);
}

size_t iov_copy(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len, bool to_iov)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		size_t k;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		k = iov[i].iov_len - off < len - done ? iov[i].iov_len - off : len - done;
		if (to_iov)
			memcpy((uint8_t *)iov[i].iov_base + off, (uint8_t *)buf + done, k);
		else
			memcpy((uint8_t *)buf + done, (uint8_t *)iov[i].iov_base + off, k);
		done += k;
		off = 0;
	}
	return done;
}

size_t virtq_elem_read(const struct virtq_elem *e, size_t off, void *buf, size_t len)
{
	return iov_copy(e->iov, e->out_num, off, buf, len, false);
}

size_t virtq_elem_write(const struct virtq_elem *e, size_t off, const void *buf, size_t len)
{
	return iov_copy(e->iov + e->out_num, e->in_num, off, (void *)buf, len, true);
}

unsigned iov_slice(const struct iovec *iov, unsigned n, size_t skip, size_t len,
		   struct iovec *out, unsigned max)
{
	unsigned k = 0;

	for (unsigned i = 0; i < n && len && k < max; i++) {
		size_t l = iov[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		l -= skip;
		if (l > len)
			l = len;
		out[k].iov_base = (uint8_t *)iov[i].iov_base + skip;
		out[k++].iov_len = l;
		len -= l;
		skip = 0;
	}
	return k;
}
