/* Virtqueues, device side: rings built in guest memory the way a driver builds them, then popped,
 * pushed and notified through the API; and every malformed shape a hostile driver can make. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "test_gpa.h"
#include "virtio/virtqueue.h"

#define RAM	  (1u << 20)
#define RAM_END	  TEST_GPA(RAM)	    /* the first address past guest RAM */
#define DESC_GPA  TEST_GPA(0x1000)  /* descriptor table / packed ring */
#define AVAIL_GPA TEST_GPA(0x10000) /* avail ring / packed driver event suppression */
#define USED_GPA  TEST_GPA(0x20000) /* used ring / packed device event suppression */
#define BUF_GPA	  TEST_GPA(0x40000) /* buffers */
#define IND_GPA	  TEST_GPA(0x80000) /* indirect tables, 4 KiB each */

#define ALL_FEATURES ((1ull << VIRTIO_F_INDIRECT_DESC) | (1ull << VIRTIO_F_EVENT_IDX))
#define PACKED	     (1ull << VIRTIO_F_RING_PACKED)

struct vdesc { /* a descriptor; set_desc() writes it in the ring's layout */
	uint64_t addr;
	uint32_t len;
	uint16_t id_or_next;
	uint16_t flags;
};

struct buf {
	uint64_t addr;
	uint32_t len;
	bool write;
};

/* The driver's side of one queue. */
struct drv {
	struct guest_mem mem;
	struct virtq q;
	struct virtq_elem e;
	uint16_t size;
	/* split */
	uint16_t avail_idx, next_desc, used_seen;
	/* packed */
	uint16_t next_slot, used_slot, next_id;
	bool wrap, used_wrap;
	bool packed;
	uint16_t ndesc_of[VIRTQ_MAX_SIZE]; /* descriptors each buffer id took */
	unsigned tables;		   /* indirect tables handed out */
};

static void *host(struct drv *d, uint64_t gpa)
{
	return d->mem.r[0].host + (gpa - RAM_BASE);
}

static uint16_t *u16_at(struct drv *d, uint64_t gpa)
{
	return host(d, gpa);
}

static struct vdesc *desc_at(struct drv *d, uint64_t table, unsigned i)
{
	return host(d, table + 16 * i);
}

/* Split descriptors are addr, len, flags, next (2.7.5); packed ones addr, len, id, flags (2.8.13). */
static void set_desc(struct drv *d, uint64_t table, unsigned i, struct vdesc v)
{
	struct vdesc *p = desc_at(d, table, i);

	if (!d->packed) {
		uint16_t next = v.id_or_next;

		v.id_or_next = v.flags;
		v.flags = next;
	}
	*p = v;
}

static struct drv *drv_new(uint16_t size, uint64_t features)
{
	struct drv *d = calloc(1, sizeof(*d));

	assert_non_null(d);
	assert_int_equal(gmem_init(&d->mem, RAM), 0);
	d->size = size;
	d->wrap = d->used_wrap = true;
	d->packed = features & PACKED;
	d->q.size = size;
	d->q.desc_gpa = DESC_GPA;
	d->q.avail_gpa = AVAIL_GPA;
	d->q.used_gpa = USED_GPA;
	assert_int_equal(virtq_enable(&d->q, &d->mem, features), 0);
	return d;
}

static void drv_free(struct drv *d)
{
	gmem_free(&d->mem);
	free(d);
}

/* An indirect table holding bufs; split entries are chained with NEXT as Linux does. */
static uint64_t put_table(struct drv *d, const struct buf *b, int n, bool packed)
{
	uint64_t t = IND_GPA + 0x1000 * (d->tables++ % 64);

	for (int i = 0; i < n; i++) {
		uint16_t more = !packed && i < n - 1 ? VIRTQ_DESC_F_NEXT : 0;
		set_desc(d, t, i, (struct vdesc){ b[i].addr, b[i].len, packed ? 0 : i + 1,
						   (b[i].write ? VIRTQ_DESC_F_WRITE : 0) | more });
	}
	return t;
}

/* Split: puts a head into the avail ring and publishes idx, with the driver's write barrier. */
static void split_publish(struct drv *d, uint16_t head)
{
	*u16_at(d, AVAIL_GPA + 4 + 2 * (d->avail_idx % d->size)) = head;
	__atomic_store_n(u16_at(d, AVAIL_GPA + 2), ++d->avail_idx, __ATOMIC_RELEASE);
}

/* Split: adds a chain of bufs (or one indirect descriptor referring to them) and returns its
 * head. */
static uint16_t split_add(struct drv *d, const struct buf *b, int n, bool indirect)
{
	uint16_t head = d->next_desc;

	if (indirect) {
		uint64_t t = put_table(d, b, n, false);

		set_desc(d, DESC_GPA, head, (struct vdesc){ t, 16 * n, 0, VIRTQ_DESC_F_INDIRECT });
		d->next_desc = (head + 1) % d->size;
	} else {
		for (int i = 0; i < n; i++) {
			uint16_t at = d->next_desc, next = (at + 1) % d->size;
			uint16_t flags = (b[i].write ? VIRTQ_DESC_F_WRITE : 0) |
					 (i < n - 1 ? VIRTQ_DESC_F_NEXT : 0);

			set_desc(d, DESC_GPA, at, (struct vdesc){ b[i].addr, b[i].len, next, flags });
			d->next_desc = next;
		}
	}
	split_publish(d, head);
	return head;
}

/* Split: the next used element, if the device wrote one. */
static bool split_used(struct drv *d, uint32_t *id, uint32_t *len)
{
	uint32_t *el;

	if (__atomic_load_n(u16_at(d, USED_GPA + 2), __ATOMIC_ACQUIRE) == d->used_seen)
		return false;
	el = host(d, USED_GPA + 4 + 8 * (d->used_seen++ % d->size));
	*id = el[0];
	*len = el[1];
	return true;
}

static uint16_t avail_bits(bool wrap)
{
	return wrap ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED;
}

/* Packed: writes descs (flags without AVAIL/USED) at the next slots, the first one's flags last,
 * and returns the buffer id. */
static uint16_t packed_add_raw(struct drv *d, const struct vdesc *v, int n)
{
	uint16_t id = d->next_id, slot = d->next_slot, head_flags = 0;
	bool wrap = d->wrap;

	d->next_id = (id + 1) % d->size;
	d->ndesc_of[id] = n;
	for (int i = 0; i < n; i++) {
		struct vdesc *p = desc_at(d, DESC_GPA, slot);
		uint16_t flags = v[i].flags | avail_bits(wrap);

		*p = (struct vdesc){ v[i].addr, v[i].len, id, i ? flags : p->flags };
		if (!i)
			head_flags = flags;
		if (++slot == d->size) {
			slot = 0;
			wrap = !wrap;
		}
	}
	__atomic_store_n(&desc_at(d, DESC_GPA, d->next_slot)->flags, head_flags, __ATOMIC_RELEASE);
	d->next_slot = slot;
	d->wrap = wrap;
	return id;
}

static uint16_t packed_add(struct drv *d, const struct buf *b, int n, bool indirect)
{
	struct vdesc v[16];

	if (indirect) {
		v[0] = (struct vdesc){ put_table(d, b, n, true), 16 * n, 0, VIRTQ_DESC_F_INDIRECT };
		return packed_add_raw(d, v, 1);
	}
	for (int i = 0; i < n; i++)
		v[i] = (struct vdesc){ b[i].addr, b[i].len, 0,
				      (b[i].write ? VIRTQ_DESC_F_WRITE : 0) |
					  (i < n - 1 ? VIRTQ_DESC_F_NEXT : 0) };
	return packed_add_raw(d, v, n);
}

/* Packed: the next used descriptor, if the device wrote one; skips the list's other slots. */
static bool packed_used(struct drv *d, uint32_t *id, uint32_t *len, uint16_t *flags)
{
	struct vdesc *p = desc_at(d, DESC_GPA, d->used_slot);
	uint16_t f = __atomic_load_n(&p->flags, __ATOMIC_ACQUIRE);

	if (!!(f & VIRTQ_DESC_F_USED) != d->used_wrap)
		return false;
	assert_int_equal(!!(f & VIRTQ_DESC_F_AVAIL), d->used_wrap);
	*id = p->id_or_next;
	*len = p->len;
	*flags = f;
	d->used_slot += d->ndesc_of[*id];
	if (d->used_slot >= d->size) {
		d->used_slot -= d->size;
		d->used_wrap = !d->used_wrap;
	}
	return true;
}

/* ---- normal chains ---- */

static void split_chain_out_then_in(void **state)
{
	struct drv *d = drv_new(8, 0);
	struct buf b[] = { { BUF_GPA, 3, false },
			   { BUF_GPA + 0x100, 5, false },
			   { BUF_GPA + 0x200, 16, true } };
	uint8_t out[8], in[20];
	uint32_t id, len;
	uint16_t head;

	memcpy(host(d, BUF_GPA), "abc", 3);
	memcpy(host(d, BUF_GPA + 0x100), "defgh", 5);
	head = split_add(d, b, 3, false);
	assert_int_equal(virtq_pop(&d->q, &d->e), 1);
	assert_int_equal(d->e.id, head);
	assert_int_equal(d->e.out_num, 2);
	assert_int_equal(d->e.in_num, 1);
	assert_int_equal(d->e.out_len, 8);
	assert_int_equal(d->e.in_len, 16);
	assert_ptr_equal(d->e.iov[0].iov_base, host(d, BUF_GPA));
	assert_ptr_equal(d->e.iov[2].iov_base, host(d, BUF_GPA + 0x200));
	/* Reads span the two readable buffers from an offset; writes go to the writable one only.
	 */
	assert_int_equal(virtq_elem_read(&d->e, 2, out, sizeof(out)), 6);
	assert_memory_equal(out, "cdefgh", 6);
	assert_int_equal(virtq_elem_read(&d->e, 8, out, 1), 0);
	memset(in, 'x', sizeof(in));
	assert_int_equal(virtq_elem_write(&d->e, 4, in, sizeof(in)), 12);
	assert_memory_equal(host(d, BUF_GPA + 0x204), in, 12);
	assert_int_equal(*(uint8_t *)host(d, BUF_GPA + 0x203), 0);
	assert_int_equal(virtq_pop(&d->q, &d->e), 0);

	assert_false(split_used(d, &id, &len));
	virtq_push(&d->q, &d->e, 16);
	assert_true(split_used(d, &id, &len));
	assert_int_equal(id, head);
	assert_int_equal(len, 16);
	assert_false(split_used(d, &id, &len));
	drv_free(d);
}

static void split_several_chains_used_out_of_order(void **state)
{
	struct drv *d = drv_new(8, 0);
	struct buf b = { BUF_GPA, 64, true };
	struct virtq_elem *e = calloc(3, sizeof(*e));
	uint16_t heads[3];
	uint32_t id, len;

	for (int i = 0; i < 3; i++)
		heads[i] = split_add(d, &b, 1, false);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(virtq_pop(&d->q, &e[i]), 1);
		assert_int_equal(e[i].id, heads[i]);
		assert_int_equal(e[i].in_num, 1);
	}
	assert_int_equal(virtq_pop(&d->q, &d->e), 0);
	for (int i = 2; i >= 0; i--)
		virtq_push(&d->q, &e[i], i);
	for (int i = 2; i >= 0; i--) {
		assert_true(split_used(d, &id, &len));
		assert_int_equal(id, heads[i]);
		assert_int_equal(len, i);
	}
	free(e);
	drv_free(d);
}

/* 70000 chains through a 4-entry ring: avail and used idx wrap past 65535; with EVENT_IDX a
 * used_event of "this entry" interrupts across the wrap and a stale one does not. */
static void split_indices_wrap(void **state)
{
	struct drv *d = drv_new(4, ALL_FEATURES);
	struct buf b[] = { { BUF_GPA, 4, false }, { BUF_GPA + 0x10, 4, true } };
	uint16_t *used_event = u16_at(d, AVAIL_GPA + 4 + 2 * 4);
	uint32_t id, len;

	for (unsigned i = 0; i < 70000; i++) {
		uint16_t head = split_add(d, b, 1 + i % 2, i % 3 == 0);

		assert_int_equal(virtq_pop(&d->q, &d->e), 1);
		assert_int_equal(d->e.id, head);
		assert_int_equal(d->e.out_num + d->e.in_num, 1 + i % 2);
		*used_event = i % 5 ? (uint16_t)i : (uint16_t)(i - 2);
		virtq_push(&d->q, &d->e, i % 2 ? 4 : 0);
		assert_int_equal(virtq_should_notify(&d->q), i % 5 != 0);
		assert_true(split_used(d, &id, &len));
		assert_int_equal(id, head);
	}
	assert_int_equal(d->q.last_avail, (uint16_t)70000);
	assert_int_equal(*u16_at(d, USED_GPA + 2), (uint16_t)70000);
	drv_free(d);
}

static void packed_chain_out_then_in(void **state)
{
	struct drv *d = drv_new(8, PACKED);
	struct buf b[] = { { BUF_GPA, 3, false },
			   { BUF_GPA + 0x100, 5, false },
			   { BUF_GPA + 0x200, 16, true } };
	uint8_t out[8];
	uint32_t id, len;
	uint16_t flags, bid;

	memcpy(host(d, BUF_GPA), "abc", 3);
	memcpy(host(d, BUF_GPA + 0x100), "defgh", 5);
	bid = packed_add(d, b, 3, false);
	assert_int_equal(virtq_pop(&d->q, &d->e), 1);
	assert_int_equal(d->e.id, bid);
	assert_int_equal(d->e.ndesc, 3);
	assert_int_equal(d->e.out_num, 2);
	assert_int_equal(d->e.in_num, 1);
	assert_int_equal(d->e.in_len, 16);
	assert_int_equal(virtq_elem_read(&d->e, 0, out, sizeof(out)), 8);
	assert_memory_equal(out, "abcdefgh", 8);
	assert_int_equal(d->q.last_avail, 3);

	virtq_push(&d->q, &d->e, 7);
	assert_int_equal(virtq_pop(&d->q, &d->e), 0);
	assert_true(packed_used(d, &id, &len, &flags));
	assert_int_equal(id, bid);
	assert_int_equal(len, 7);
	assert_int_equal(flags, VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED | VIRTQ_DESC_F_WRITE);
	assert_int_equal(d->q.used_idx, 3);
	/* Nothing written: no WRITE flag on the used descriptor. */
	bid = packed_add(d, b, 1, false);
	assert_int_equal(virtq_pop(&d->q, &d->e), 1);
	virtq_push(&d->q, &d->e, 0);
	assert_true(packed_used(d, &id, &len, &flags));
	assert_int_equal(id, bid);
	assert_int_equal(flags, VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED);
	drv_free(d);
}

/* A 5-entry ring (not a power of 2) with lists of 1 to 3 descriptors and indirect ones, for
 * 3000 rounds: the wrap counters flip hundreds of times, the used descriptors follow. */
static void packed_wrap_counters(void **state)
{
	struct drv *d = drv_new(5, PACKED | ALL_FEATURES);
	struct buf b[] = { { BUF_GPA, 4, false },
			   { BUF_GPA + 0x10, 4, false },
			   { BUF_GPA + 0x20, 4, true } };
	unsigned flips = 0;
	bool wrap = d->q.avail_wrap;
	uint32_t id, len;
	uint16_t flags;

	for (unsigned i = 0; i < 3000; i++) {
		int n = 1 + i % 3;
		uint16_t bid = packed_add(d, b + 3 - n, n, i % 7 == 0);

		assert_int_equal(virtq_pop(&d->q, &d->e), 1);
		assert_int_equal(d->e.id, bid);
		assert_int_equal(d->e.ndesc, i % 7 == 0 ? 1 : n);
		assert_int_equal(d->e.out_num, n - 1);
		assert_int_equal(d->e.in_num, 1);
		virtq_push(&d->q, &d->e, i % 4);
		assert_int_equal(virtq_pop(&d->q, &d->e), 0);
		assert_true(packed_used(d, &id, &len, &flags));
		assert_int_equal(id, bid);
		assert_int_equal(len, i % 4);
		assert_int_equal(d->q.used_wrap, d->used_wrap);
		assert_int_equal(d->q.used_idx, d->used_slot);
		flips += d->q.avail_wrap != wrap;
		wrap = d->q.avail_wrap;
	}
	assert_true(flips > 500);
	assert_int_equal(d->q.last_avail, d->next_slot);
	drv_free(d);
}

static void packed_several_lists_used_out_of_order(void **state)
{
	struct drv *d = drv_new(8, PACKED);
	struct buf b[] = { { BUF_GPA, 8, false }, { BUF_GPA + 0x100, 8, true } };
	struct virtq_elem *e = calloc(3, sizeof(*e));
	uint16_t ids[3];
	uint32_t id, len;
	uint16_t flags;

	for (int i = 0; i < 3; i++)
		ids[i] = packed_add(d, b, 2, false);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(virtq_pop(&d->q, &e[i]), 1);
		assert_int_equal(e[i].id, ids[i]);
	}
	for (int i = 2; i >= 0; i--)
		virtq_push(&d->q, &e[i], 1);
	for (int i = 2; i >= 0; i--) {
		assert_true(packed_used(d, &id, &len, &flags));
		assert_int_equal(id, ids[i]);
	}
	assert_int_equal(d->q.used_idx, 6);
	free(e);
	drv_free(d);
}

static void split_indirect(void **state)
{
	struct drv *d = drv_new(4, ALL_FEATURES);
	struct buf b[6];
	uint16_t head;

	for (int i = 0; i < 6; i++)
		b[i] = (struct buf){ BUF_GPA + 0x100 * i, 10 + i, i >= 4 };
	/* A table with more entries than the ring has is fine as long as the chain fits: 4 here. */
	head = split_add(d, b + 2, 4, true);
	assert_int_equal(virtq_pop(&d->q, &d->e), 1);
	assert_int_equal(d->e.id, head);
	assert_int_equal(d->e.out_num, 2);
	assert_int_equal(d->e.in_num, 2);
	assert_int_equal(d->e.out_len, 12 + 13);
	assert_ptr_equal(d->e.iov[3].iov_base, host(d, BUF_GPA + 0x500));
	/* Direct descriptors followed by an indirect one (2.7.5.3.2 says a device handles it). */
	set_desc(d, DESC_GPA, 1, (struct vdesc){ BUF_GPA, 10, 2, VIRTQ_DESC_F_NEXT });
	set_desc(d, DESC_GPA, 2, (struct vdesc){ put_table(d, b + 4, 2, false), 32, 0,
						  VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE });
	split_publish(d, 1);
	assert_int_equal(virtq_pop(&d->q, &d->e), 1);
	assert_int_equal(d->e.id, 1);
	assert_int_equal(d->e.out_num, 1);
	assert_int_equal(d->e.in_num, 2);
	assert_int_equal(d->e.in_len, 14 + 15);
	drv_free(d);
}

/* The largest queue with a table of as many buffers fills iov[] exactly; one more is refused. */
static void split_indirect_fills_the_largest_queue(void **state)
{
	static struct buf b[VIRTQ_MAX_SIZE + 1];
	struct drv *d = drv_new(VIRTQ_MAX_SIZE, ALL_FEATURES);

	for (int i = 0; i <= VIRTQ_MAX_SIZE; i++)
		b[i] = (struct buf){ BUF_GPA + i, 1, i >= 10 };
	split_add(d, b, VIRTQ_MAX_SIZE, true);
	assert_int_equal(virtq_pop(&d->q, &d->e), 1);
	assert_int_equal(d->e.out_num, 10);
	assert_int_equal(d->e.in_num, VIRTQ_MAX_SIZE - 10);
	assert_ptr_equal(d->e.iov[VIRTQ_MAX_SIZE - 1].iov_base,
			 host(d, BUF_GPA + VIRTQ_MAX_SIZE - 1));
	split_add(d, b, VIRTQ_MAX_SIZE + 1, true);
	assert_int_equal(virtq_pop(&d->q, &d->e), -EINVAL);
	drv_free(d);
}

static void packed_indirect(void **state)
{
	struct drv *d = drv_new(4, PACKED | ALL_FEATURES);
	struct buf b[4];
	uint32_t id, len;
	uint16_t flags, bid;

	for (int i = 0; i < 4; i++)
		b[i] = (struct buf){ BUF_GPA + 0x100 * i, 10 + i, i >= 1 };
	bid = packed_add(d, b, 4, true);
	assert_int_equal(virtq_pop(&d->q, &d->e), 1);
	assert_int_equal(d->e.id, bid);
	assert_int_equal(d->e.ndesc, 1);
	assert_int_equal(d->e.out_num, 1);
	assert_int_equal(d->e.in_num, 3);
	assert_int_equal(d->e.in_len, 11 + 12 + 13);
	assert_ptr_equal(d->e.iov[2].iov_base, host(d, BUF_GPA + 0x200));
	virtq_push(&d->q, &d->e, 30);
	assert_true(packed_used(d, &id, &len, &flags));
	assert_int_equal(id, bid);
	assert_int_equal(len, 30);
	assert_int_equal(d->q.used_idx, 1);
	drv_free(d);
}

/* ---- notification suppression ---- */

static void split_no_interrupt_flag(void **state)
{
	struct drv *d = drv_new(8, 0);
	struct buf b = { BUF_GPA, 8, false };

	assert_false(virtq_should_notify(&d->q)); /* nothing used yet */
	split_add(d, &b, 1, false);
	assert_int_equal(virtq_pop(&d->q, &d->e), 1);
	virtq_push(&d->q, &d->e, 0);
	*u16_at(d, AVAIL_GPA) = VIRTQ_AVAIL_F_NO_INTERRUPT;
	assert_false(virtq_should_notify(&d->q));
	virtq_push(&d->q, &d->e, 0);
	*u16_at(d, AVAIL_GPA) = 0;
	assert_true(virtq_notify_due(&d->q)); /* asking does not report it */
	assert_true(virtq_notify_due(&d->q));
	assert_true(virtq_should_notify(&d->q));
	assert_false(virtq_should_notify(&d->q)); /* the batch was reported */
	assert_false(virtq_notify_due(&d->q));
	drv_free(d);
}

static void split_used_event(void **state)
{
	struct drv *d = drv_new(8, ALL_FEATURES);
	struct buf b = { BUF_GPA, 8, false };
	struct virtq_elem *e = calloc(4, sizeof(*e));
	uint16_t *used_event = u16_at(d, AVAIL_GPA + 4 + 2 * 8);

	for (int i = 0; i < 4; i++) {
		split_add(d, &b, 1, false);
		assert_int_equal(virtq_pop(&d->q, &e[i]), 1);
	}
	/* With EVENT_IDX the flags are ignored (2.7.7). */
	*u16_at(d, AVAIL_GPA) = VIRTQ_AVAIL_F_NO_INTERRUPT;
	*used_event = 1; /* interrupt when entry 1 is used, i.e. idx goes 1 -> 2 */
	virtq_push(&d->q, &e[0], 0);
	assert_false(virtq_should_notify(&d->q));
	virtq_push(&d->q, &e[1], 0);
	assert_true(virtq_should_notify(&d->q));
	assert_int_equal(d->q.signalled_used, 2);
	/* A batch: idx 2 -> 4 crosses used_event 3, not 5. */
	*used_event = 5;
	virtq_push(&d->q, &e[2], 0);
	virtq_push(&d->q, &e[3], 0);
	assert_false(virtq_should_notify(&d->q));
	*used_event = 3;
	for (int i = 0; i < 2; i++) {
		split_add(d, &b, 1, false);
		assert_int_equal(virtq_pop(&d->q, &e[i]), 1);
	}
	virtq_push(&d->q, &e[0], 0);
	virtq_push(&d->q, &e[1], 0);
	assert_false(virtq_should_notify(&d->q)); /* 4 -> 6: 3 was before the batch */
	*used_event = 6;
	split_add(d, &b, 1, false);
	assert_int_equal(virtq_pop(&d->q, &e[0]), 1);
	virtq_push(&d->q, &e[0], 0);
	assert_true(virtq_should_notify(&d->q));
	free(e);
	drv_free(d);
}

/* The state line names both sides' indices and event fields, as they are. */
static void describe_rings(void **state)
{
	struct drv *d = drv_new(8, ALL_FEATURES);
	struct buf b = { BUF_GPA, 8, false };
	char s[320];

	for (int i = 0; i < 3; i++)
		split_add(d, &b, 1, false);
	assert_int_equal(virtq_pop(&d->q, &d->e), 1);
	virtq_push(&d->q, &d->e, 0);
	*u16_at(d, AVAIL_GPA + 4 + 2 * 8) = 7; /* used_event */
	virtq_enable_notify(&d->q, true);     /* avail_event = 1 */
	assert_in_range(virtq_describe(&d->q, s, sizeof(s)), 1, sizeof(s) - 1);
	assert_string_equal(s, "split, size 8: avail idx 3 (taken 1), used idx 1 (signalled 0, none); "
			       "avail flags 0 used_event 7, used flags 0 avail_event 1; 1 used not "
			       "yet signalled");
	drv_free(d);

	d = drv_new(4, PACKED | ALL_FEATURES);
	packed_add(d, &b, 1, false);
	assert_int_equal(virtq_pop(&d->q, &d->e), 1);
	virtq_enable_notify(&d->q, true);
	virtq_describe(&d->q, s, sizeof(s));
	assert_string_equal(s, "packed, size 4: next avail slot 1 (wrap 1), next used slot 0 (wrap 1, "
			       "signalled 0, none); "
			       "driver event flags 0 off_wrap 0, device event flags 2 off_wrap "
			       "0x8001; 0 used not yet signalled");
	d->q.enabled = false;
	virtq_describe(&d->q, s, sizeof(s));
	assert_string_equal(s, "disabled");
	drv_free(d);
}

static void split_enable_notify(void **state)
{
	struct drv *d = drv_new(8, 0);
	struct buf b = { BUF_GPA, 8, false };
	uint16_t *used_flags = u16_at(d, USED_GPA), *avail_event = u16_at(d, USED_GPA + 4 + 8 * 8);

	assert_false(virtq_enable_notify(&d->q, false));
	assert_int_equal(*used_flags, VIRTQ_USED_F_NO_NOTIFY);
	assert_false(virtq_enable_notify(&d->q, true));
	assert_int_equal(*used_flags, 0);
	/* A buffer that arrived while notifications were off: enabling reports it. */
	virtq_enable_notify(&d->q, false);
	split_add(d, &b, 1, false);
	assert_true(virtq_enable_notify(&d->q, true));
	assert_int_equal(virtq_pop(&d->q, &d->e), 1);
	assert_false(virtq_enable_notify(&d->q, true));
	drv_free(d);

	d = drv_new(8, ALL_FEATURES);
	used_flags = u16_at(d, USED_GPA);
	avail_event = u16_at(d, USED_GPA + 4 + 8 * 8);
	for (int i = 0; i < 3; i++) {
		split_add(d, &b, 1, false);
		assert_int_equal(virtq_pop(&d->q, &d->e), 1);
	}
	assert_false(virtq_enable_notify(&d->q, true));
	assert_int_equal(*avail_event, 3); /* kick me when you fill entry 3 */
	assert_int_equal(*used_flags, 0);
	split_add(d, &b, 1, false);
	assert_true(virtq_enable_notify(&d->q, true));
	assert_false(virtq_enable_notify(&d->q, false));
	assert_int_equal(*used_flags, 0); /* EVENT_IDX: the device keeps flags 0 */
	drv_free(d);
}

static void packed_driver_event_suppression(void **state)
{
	struct drv *d = drv_new(4, PACKED | ALL_FEATURES);
	struct buf b = { BUF_GPA, 8, false };
	uint16_t *off_wrap = u16_at(d, AVAIL_GPA), *flags = u16_at(d, AVAIL_GPA + 2);
	struct virtq_elem *e = calloc(4, sizeof(*e));

	for (int i = 0; i < 4; i++) {
		packed_add(d, &b, 1, false);
		assert_int_equal(virtq_pop(&d->q, &e[i]), 1);
	}
	*flags = VIRTQ_EVENT_F_DISABLE;
	virtq_push(&d->q, &e[0], 0);
	assert_false(virtq_should_notify(&d->q));
	*flags = VIRTQ_EVENT_F_ENABLE;
	virtq_push(&d->q, &e[1], 0);
	assert_true(virtq_should_notify(&d->q));
	/* DESC: interrupt when slot 3 of this lap (wrap 1) is used. Slot 2 is not it. */
	*flags = VIRTQ_EVENT_F_DESC;
	*off_wrap = 3 | 1 << 15;
	virtq_push(&d->q, &e[2], 0);
	assert_false(virtq_should_notify(&d->q));
	virtq_push(&d->q, &e[3], 0); /* uses slot 3 and wraps: used_wrap is now 0 */
	assert_false(d->q.used_wrap);
	assert_true(virtq_should_notify(&d->q));
	/* Next lap: slot 1 with wrap 0. A batch over slots 0 and 1 crosses it; the next batch, over
	 * slots 2 and 3, does not (that slot 1 is now a lap behind). */
	for (int i = 0; i < 4; i++) {
		packed_add(d, &b, 1, false);
		assert_int_equal(virtq_pop(&d->q, &e[i]), 1);
	}
	*off_wrap = 1;
	virtq_push(&d->q, &e[0], 0);
	virtq_push(&d->q, &e[1], 0);
	assert_true(virtq_should_notify(&d->q));
	*off_wrap = 1;
	virtq_push(&d->q, &e[2], 0);
	virtq_push(&d->q, &e[3], 0);
	assert_false(virtq_should_notify(&d->q));
	free(e);
	drv_free(d);

	/* Without EVENT_IDX, DESC is not valid and the device interrupts. */
	d = drv_new(4, PACKED);
	packed_add(d, &b, 1, false);
	assert_int_equal(virtq_pop(&d->q, &d->e), 1);
	*u16_at(d, AVAIL_GPA + 2) = VIRTQ_EVENT_F_DESC;
	*u16_at(d, AVAIL_GPA) = 3 | 1 << 15;
	virtq_push(&d->q, &d->e, 0);
	assert_true(virtq_should_notify(&d->q));
	drv_free(d);
}

static void packed_enable_notify(void **state)
{
	struct drv *d = drv_new(4, PACKED);
	struct buf b = { BUF_GPA, 8, false };
	uint16_t *off_wrap = u16_at(d, USED_GPA), *flags = u16_at(d, USED_GPA + 2);

	assert_false(virtq_enable_notify(&d->q, false));
	assert_int_equal(*flags, VIRTQ_EVENT_F_DISABLE);
	assert_false(virtq_enable_notify(&d->q, true));
	assert_int_equal(*flags, VIRTQ_EVENT_F_ENABLE);
	virtq_enable_notify(&d->q, false);
	packed_add(d, &b, 1, false);
	assert_true(virtq_enable_notify(&d->q, true));
	drv_free(d);

	d = drv_new(4, PACKED | ALL_FEATURES);
	off_wrap = u16_at(d, USED_GPA);
	flags = u16_at(d, USED_GPA + 2);
	for (int i = 0; i < 5; i++) { /* ends at slot 1 of the second lap */
		packed_add(d, &b, 1, false);
		assert_int_equal(virtq_pop(&d->q, &d->e), 1);
		virtq_push(&d->q, &d->e, 0);
	}
	assert_false(virtq_enable_notify(&d->q, true));
	assert_int_equal(*flags, VIRTQ_EVENT_F_DESC);
	assert_int_equal(*off_wrap, 1); /* slot 1, wrap counter 0 */
	packed_add(d, &b, 1, false);
	assert_true(virtq_enable_notify(&d->q, true));
	assert_false(virtq_enable_notify(&d->q, false));
	assert_int_equal(*flags, VIRTQ_EVENT_F_DISABLE);
	drv_free(d);
}

/* ---- enable and reset ---- */

static void enable_rejects_bad_sizes_and_rings(void **state)
{
	static const struct {
		bool packed;
		uint16_t size;
		uint64_t desc, avail, used;
		int err;
	} cases[] = {
		{ false, 0, DESC_GPA, AVAIL_GPA, USED_GPA, -EINVAL },
		{ false, 3, DESC_GPA, AVAIL_GPA, USED_GPA, -EINVAL },    /* split: power of 2 */
		{ false, 2048, DESC_GPA, AVAIL_GPA, USED_GPA, -EINVAL }, /* > VIRTQ_MAX_SIZE */
		{ true, 0, DESC_GPA, AVAIL_GPA, USED_GPA, -EINVAL },
		{ true, VIRTQ_MAX_SIZE + 1, DESC_GPA, AVAIL_GPA, USED_GPA, -EINVAL },
		{ false, 8, RAM_END - 16 * 8 + 16, AVAIL_GPA, USED_GPA, -EFAULT }, /* outside RAM */
		{ false, 8, DESC_GPA, RAM_END - 6 - 2 * 8 + 2, USED_GPA, -EFAULT },
		{ false, 8, DESC_GPA, AVAIL_GPA, RAM_END - 6 - 8 * 8 + 2, -EFAULT },
		{ false, 8, DESC_GPA, AVAIL_GPA, UINT64_MAX - 8, -EFAULT },
		{ false, 8, DESC_GPA + 8, AVAIL_GPA, USED_GPA, -EFAULT }, /* misaligned: 16 */
		{ false, 8, DESC_GPA, AVAIL_GPA + 1, USED_GPA, -EFAULT }, /* 2 */
		{ false, 8, DESC_GPA, AVAIL_GPA, USED_GPA + 2, -EFAULT }, /* 4 */
		{ true, 8, RAM_END - 16 * 8 + 16, AVAIL_GPA, USED_GPA, -EFAULT },
		{ true, 8, DESC_GPA, RAM_END, USED_GPA, -EFAULT },
		{ true, 8, DESC_GPA, AVAIL_GPA, RAM_END, -EFAULT },
		{ true, 8, DESC_GPA + 8, AVAIL_GPA, USED_GPA, -EFAULT },
		{ true, 8, DESC_GPA, AVAIL_GPA + 2, USED_GPA, -EFAULT },
		{ true, 8, DESC_GPA, AVAIL_GPA, USED_GPA + 2, -EFAULT },
	};
	struct guest_mem mem;
	struct virtq q;

	assert_int_equal(gmem_init(&mem, RAM), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		virtq_reset(&q);
		q.size = cases[i].size;
		q.desc_gpa = cases[i].desc;
		q.avail_gpa = cases[i].avail;
		q.used_gpa = cases[i].used;
		assert_int_equal(virtq_enable(&q, &mem, cases[i].packed ? PACKED : 0),
				 cases[i].err);
		assert_true(q.broken);
		assert_false(q.enabled);
		assert_int_equal(virtq_pop(&q, NULL), -EIO); /* never looks at the element */
		assert_int_equal(virtq_enable(&q, &mem, 0), -EIO);
	}
	/* The largest rings that fit end exactly at the end of RAM; packed sizes need no power
	 * of 2. */
	virtq_reset(&q);
	q.size = VIRTQ_MAX_SIZE;
	q.desc_gpa = RAM_END - 16 * VIRTQ_MAX_SIZE;
	q.avail_gpa = RAM_END - 6 - 2 * VIRTQ_MAX_SIZE;
	q.used_gpa = RAM_END - 6 - 8 * VIRTQ_MAX_SIZE - 2;
	assert_int_equal(virtq_enable(&q, &mem, 0), 0);
	virtq_reset(&q);
	q.size = 3;
	q.desc_gpa = DESC_GPA;
	q.avail_gpa = RAM_END - 4;
	q.used_gpa = USED_GPA;
	assert_int_equal(virtq_enable(&q, &mem, PACKED), 0);
	assert_true(q.packed);
	gmem_free(&mem);
}

static void reset_and_disabled_queue(void **state)
{
	struct drv *d = drv_new(8, ALL_FEATURES);
	struct buf b = { BUF_GPA, 8, false };

	split_add(d, &b, 1, false);
	virtq_reset(&d->q);
	assert_false(d->q.enabled);
	assert_int_equal(d->q.size, 0);
	assert_int_equal(d->q.desc_gpa, 0);
	assert_int_equal(d->q.last_avail, 0);
	assert_false(d->q.event_idx);
	assert_null(d->q.mem);
	/* Not enabled: empty, and nothing is written. */
	assert_int_equal(virtq_pop(&d->q, &d->e), 0);
	virtq_push(&d->q, &d->e, 8);
	assert_false(virtq_should_notify(&d->q));
	assert_false(virtq_enable_notify(&d->q, true));
	assert_int_equal(*u16_at(d, USED_GPA + 2), 0);
	drv_free(d);
}

/* ---- malformed rings ---- */

/* Each builder makes one malformed shape in a fresh queue of 4 entries with every feature. Then:
 * pop returns err and marks the queue broken; it then returns -EIO; push, should_notify and
 * enable_notify write nothing; and the used ring is as the driver left it. */
static void check_bad(bool packed, void (*build)(struct drv *), int err)
{
	struct drv *d = drv_new(4, ALL_FEATURES | (packed ? PACKED : 0));
	uint8_t before[64];

	build(d);
	memcpy(before, host(d, USED_GPA), sizeof(before));
	assert_int_equal(virtq_pop(&d->q, &d->e), err);
	assert_true(d->q.broken);
	assert_int_equal(d->q.last_avail, 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(virtq_pop(&d->q, &d->e), -EIO);
	virtq_push(&d->q, &d->e, 1);
	assert_false(virtq_should_notify(&d->q));
	assert_false(virtq_enable_notify(&d->q, true));
	assert_memory_equal(before, host(d, USED_GPA), sizeof(before));
	if (packed)
		assert_int_equal(desc_at(d, DESC_GPA, 0)->flags & VIRTQ_DESC_F_USED, 0);
	drv_free(d);
}

static void split_desc(struct drv *d, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		       uint16_t next)
{
	set_desc(d, DESC_GPA, i, (struct vdesc){ addr, len, next, flags });
}

static void ind_desc(struct drv *d, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	set_desc(d, IND_GPA, i, (struct vdesc){ addr, len, next, flags });
}

#define N VIRTQ_DESC_F_NEXT
#define W VIRTQ_DESC_F_WRITE
#define I VIRTQ_DESC_F_INDIRECT

/* Split shapes. */
static void s_loop(struct drv *d)
{
	split_desc(d, 0, BUF_GPA, 8, N, 1);
	split_desc(d, 1, BUF_GPA, 8, N, 0);
	split_publish(d, 0);
}

static void s_self_loop(struct drv *d)
{
	split_desc(d, 2, BUF_GPA, 8, N | W, 2);
	split_publish(d, 2);
}

static void s_too_long(struct drv *d) /* 3 direct + 2 indirect buffers in a 4-entry queue */
{
	split_desc(d, 0, BUF_GPA, 8, N, 1);
	split_desc(d, 1, BUF_GPA, 8, N, 2);
	split_desc(d, 2, BUF_GPA, 8, N, 3);
	split_desc(d, 3, IND_GPA, 32, I, 0);
	ind_desc(d, 0, BUF_GPA, 8, N, 1);
	ind_desc(d, 1, BUF_GPA, 8, 0, 0);
	split_publish(d, 0);
}

static void s_big_table(struct drv *d) /* a chain of 5 in an indirect table, queue of 4 */
{
	for (int i = 0; i < 5; i++)
		ind_desc(d, i, BUF_GPA, 8, i < 4 ? N : 0, i + 1);
	split_desc(d, 0, IND_GPA, 5 * 16, I, 0);
	split_publish(d, 0);
}

/* Index 4 is past the table of 4; what lies there in memory would be a fine descriptor. */
static void s_next_range(struct drv *d)
{
	split_desc(d, 4, BUF_GPA, 8, 0, 0);
	split_desc(d, 0, BUF_GPA, 8, N, 4);
	split_publish(d, 0);
}

static void s_head_range(struct drv *d)
{
	split_desc(d, 4, BUF_GPA, 8, 0, 0);
	split_publish(d, 4);
}

static void s_ind_partial(struct drv *d)
{
	ind_desc(d, 0, BUF_GPA, 8, 0, 0);
	split_desc(d, 0, IND_GPA, 24, I, 0);
	split_publish(d, 0);
}

static void s_ind_empty(struct drv *d)
{
	split_desc(d, 0, IND_GPA, 0, I, 0);
	split_publish(d, 0);
}

static void s_ind_nested(struct drv *d)
{
	ind_desc(d, 0, BUF_GPA, 8, N, 1);
	ind_desc(d, 1, IND_GPA + 0x100, 16, I, 0);
	set_desc(d, IND_GPA + 0x100, 0, (struct vdesc){ BUF_GPA, 8, 0, 0 }); /* a fine table */
	split_desc(d, 0, IND_GPA, 32, I, 0);
	split_publish(d, 0);
}

static void s_ind_self(struct drv *d) /* a table whose entry is the table: nesting forever */
{
	ind_desc(d, 0, IND_GPA, 16, I, 0);
	split_desc(d, 0, IND_GPA, 16, I, 0);
	split_publish(d, 0);
}

static void s_ind_outside(struct drv *d)
{
	split_desc(d, 0, RAM_END - 16, 32, I, 0);
	split_publish(d, 0);
}

static void s_ind_loop(struct drv *d)
{
	ind_desc(d, 0, BUF_GPA, 8, N, 1);
	ind_desc(d, 1, BUF_GPA, 8, N, 0);
	split_desc(d, 0, IND_GPA, 32, I, 0);
	split_publish(d, 0);
}

static void s_ind_next_range(struct drv *d)
{
	ind_desc(d, 2, BUF_GPA, 8, 0, 0);
	ind_desc(d, 0, BUF_GPA, 8, N, 2); /* the table has 2 entries */
	split_desc(d, 0, IND_GPA, 32, I, 0);
	split_publish(d, 0);
}

static void s_ind_no_feature(struct drv *d)
{
	d->q.indirect = false; /* as if the driver had not accepted INDIRECT_DESC */
	ind_desc(d, 0, BUF_GPA, 8, 0, 0);
	split_desc(d, 0, IND_GPA, 16, I, 0);
	split_publish(d, 0);
}

static void s_ind_next(struct drv *d)
{
	ind_desc(d, 0, BUF_GPA, 8, 0, 0);
	split_desc(d, 0, IND_GPA, 16, I | N, 1);
	split_desc(d, 1, BUF_GPA, 8, 0, 0);
	split_publish(d, 0);
}

static void s_buf_outside(struct drv *d)
{
	split_desc(d, 0, BUF_GPA, 8, N, 1);
	split_desc(d, 1, RAM_END - 4, 8, W, 0); /* straddles the end of RAM */
	split_publish(d, 0);
}

static void s_ind_buf_outside(struct drv *d)
{
	ind_desc(d, 0, RAM_END, 1, 0, 0);
	split_desc(d, 0, IND_GPA, 16, I, 0);
	split_publish(d, 0);
}

static void s_buf_wraps(struct drv *d)
{
	split_desc(d, 0, UINT64_MAX - 7, 16, 0, 0);
	split_publish(d, 0);
}

static void s_zero_len(struct drv *d)
{
	split_desc(d, 0, BUF_GPA, 8, N, 1);
	split_desc(d, 1, BUF_GPA, 0, W, 0);
	split_publish(d, 0);
}

static void s_idx_jump(struct drv *d)
{
	split_desc(d, 0, BUF_GPA, 8, 0, 0);
	*u16_at(d, AVAIL_GPA + 2) = 5; /* 5 new entries in a ring of 4 */
}

static void s_idx_back(struct drv *d)
{
	*u16_at(d, AVAIL_GPA + 2) = 0xffff; /* "decremented": 65535 ahead */
}

static void s_read_after_write(struct drv *d)
{
	split_desc(d, 0, BUF_GPA, 8, W | N, 1);
	split_desc(d, 1, BUF_GPA + 8, 8, 0, 0);
	split_publish(d, 0);
}

static void s_ind_read_after_write(struct drv *d)
{
	ind_desc(d, 0, BUF_GPA, 8, W | N, 1);
	ind_desc(d, 1, BUF_GPA + 8, 8, 0, 0);
	split_desc(d, 0, IND_GPA, 32, I, 0);
	split_publish(d, 0);
}

/* Packed shapes: descriptors at slots 0.. of the first lap. */
static void p_add(struct drv *d, const struct vdesc *v, int n)
{
	packed_add_raw(d, v, n);
}

static void p_too_long(struct drv *d) /* NEXT on every descriptor of the ring */
{
	struct vdesc v[4];

	for (int i = 0; i < 4; i++)
		v[i] = (struct vdesc){ BUF_GPA, 8, 0, N };
	p_add(d, v, 4);
}

static void p_big_table(struct drv *d)
{
	for (int i = 0; i < 5; i++)
		ind_desc(d, i, BUF_GPA, 8, 0, 0);
	p_add(d, &(struct vdesc){ IND_GPA, 5 * 16, 0, I }, 1);
}

static void p_ind_partial(struct drv *d)
{
	ind_desc(d, 0, BUF_GPA, 8, 0, 0);
	p_add(d, &(struct vdesc){ IND_GPA, 20, 0, I }, 1);
}

static void p_ind_empty(struct drv *d)
{
	p_add(d, &(struct vdesc){ IND_GPA, 0, 0, I }, 1);
}

static void p_ind_nested(struct drv *d)
{
	ind_desc(d, 0, BUF_GPA, 8, 0, 0);
	ind_desc(d, 1, IND_GPA + 0x100, 16, I, 0);
	p_add(d, &(struct vdesc){ IND_GPA, 32, 0, I }, 1);
}

static void p_ind_outside(struct drv *d)
{
	p_add(d, &(struct vdesc){ RAM_END - 16, 32, 0, I }, 1);
}

static void p_ind_no_feature(struct drv *d)
{
	d->q.indirect = false;
	ind_desc(d, 0, BUF_GPA, 8, 0, 0);
	p_add(d, &(struct vdesc){ IND_GPA, 16, 0, I }, 1);
}

static void p_ind_next(struct drv *d)
{
	ind_desc(d, 0, BUF_GPA, 8, 0, 0);
	p_add(d, (struct vdesc[]){ { IND_GPA, 16, 0, I | N }, { BUF_GPA, 8, 0, 0 } }, 2);
}

static void p_ind_after_direct(struct drv *d) /* a list holds one type of descriptor */
{
	ind_desc(d, 0, BUF_GPA, 8, 0, 0);
	p_add(d, (struct vdesc[]){ { BUF_GPA, 8, 0, N }, { IND_GPA, 16, 0, I } }, 2);
}

static void p_buf_outside(struct drv *d)
{
	p_add(d, (struct vdesc[]){ { BUF_GPA, 8, 0, N }, { RAM_END - 4, 8, 0, W } }, 2);
}

static void p_ind_buf_outside(struct drv *d)
{
	ind_desc(d, 0, BUF_GPA, 8, 0, 0);
	ind_desc(d, 1, RAM_END, 1, W, 0);
	p_add(d, &(struct vdesc){ IND_GPA, 32, 0, I }, 1);
}

static void p_buf_wraps(struct drv *d)
{
	p_add(d, &(struct vdesc){ UINT64_MAX - 7, 16, 0, 0 }, 1);
}

static void p_zero_len(struct drv *d)
{
	p_add(d, (struct vdesc[]){ { BUF_GPA, 8, 0, N }, { BUF_GPA, 0, 0, W } }, 2);
}

static void p_read_after_write(struct drv *d)
{
	p_add(d, (struct vdesc[]){ { BUF_GPA, 8, 0, W | N }, { BUF_GPA, 8, 0, 0 } }, 2);
}

static void p_ind_read_after_write(struct drv *d)
{
	ind_desc(d, 0, BUF_GPA, 8, W, 0);
	ind_desc(d, 1, BUF_GPA, 8, 0, 0);
	p_add(d, &(struct vdesc){ IND_GPA, 32, 0, I }, 1);
}

#define BAD(layout, packed, shape, err)                                                            \
	static void layout##_bad_##shape(void **state)                                             \
	{                                                                                          \
		check_bad(packed, layout##_##shape, err);                                          \
	}
#define BAD_SPLIT(shape, err)  BAD(s, false, shape, err)
#define BAD_PACKED(shape, err) BAD(p, true, shape, err)

BAD_SPLIT(loop, -EINVAL)
BAD_SPLIT(self_loop, -EINVAL)
BAD_SPLIT(too_long, -EINVAL)
BAD_SPLIT(big_table, -EINVAL)
BAD_SPLIT(next_range, -EINVAL)
BAD_SPLIT(head_range, -EINVAL)
BAD_SPLIT(ind_partial, -EINVAL)
BAD_SPLIT(ind_empty, -EINVAL)
BAD_SPLIT(ind_nested, -EINVAL)
BAD_SPLIT(ind_self, -EINVAL)
BAD_SPLIT(ind_outside, -EFAULT)
BAD_SPLIT(ind_loop, -EINVAL)
BAD_SPLIT(ind_next_range, -EINVAL)
BAD_SPLIT(ind_no_feature, -EINVAL)
BAD_SPLIT(ind_next, -EINVAL)
BAD_SPLIT(buf_outside, -EFAULT)
BAD_SPLIT(ind_buf_outside, -EFAULT)
BAD_SPLIT(buf_wraps, -EFAULT)
BAD_SPLIT(zero_len, -EINVAL)
BAD_SPLIT(idx_jump, -EINVAL)
BAD_SPLIT(idx_back, -EINVAL)
BAD_SPLIT(read_after_write, -EINVAL)
BAD_SPLIT(ind_read_after_write, -EINVAL)
BAD_PACKED(too_long, -EINVAL)
BAD_PACKED(big_table, -EINVAL)
BAD_PACKED(ind_partial, -EINVAL)
BAD_PACKED(ind_empty, -EINVAL)
BAD_PACKED(ind_nested, -EINVAL)
BAD_PACKED(ind_outside, -EFAULT)
BAD_PACKED(ind_no_feature, -EINVAL)
BAD_PACKED(ind_next, -EINVAL)
BAD_PACKED(ind_after_direct, -EINVAL)
BAD_PACKED(buf_outside, -EFAULT)
BAD_PACKED(ind_buf_outside, -EFAULT)
BAD_PACKED(buf_wraps, -EFAULT)
BAD_PACKED(zero_len, -EINVAL)
BAD_PACKED(read_after_write, -EINVAL)
BAD_PACKED(ind_read_after_write, -EINVAL)

/* A malformed chain after good ones: the good ones come out, then the error, then nothing. */
static void good_then_bad(void **state)
{
	struct drv *d = drv_new(8, 0);
	struct buf b = { BUF_GPA, 8, true };
	uint32_t id, len;

	split_add(d, &b, 1, false);
	split_desc(d, 5, BUF_GPA, 8, N, 5);
	split_publish(d, 5);
	split_add(d, &b, 1, false);
	assert_int_equal(virtq_pop(&d->q, &d->e), 1);
	virtq_push(&d->q, &d->e, 8);
	assert_true(virtq_should_notify(&d->q));
	assert_int_equal(virtq_pop(&d->q, &d->e), -EINVAL);
	assert_int_equal(d->q.last_avail, 1);
	assert_int_equal(virtq_pop(&d->q, &d->e), -EIO);
	assert_true(split_used(d, &id, &len));
	assert_false(split_used(d, &id, &len));
	virtq_reset(&d->q);
	assert_false(d->q.broken);
	drv_free(d);
}

/* ---- several chains used at once, and chains put back ---- */

/* Split: three chains given back with one virtq_push_many are one used idx step of 3, their
 * elements in order, wrapping round the ring's end; n = 0 writes nothing. The interrupt check
 * sees all three (EVENT_IDX: a used_event inside the batch interrupts, one past it does not). */
static void split_push_many(void **state)
{
	struct drv *d = drv_new(4, ALL_FEATURES);
	struct buf b[] = { { BUF_GPA, 8, false }, { BUF_GPA + 0x100, 64, true } };
	struct virtq_elem *e = calloc(3, sizeof(*e));
	uint16_t *used_event = u16_at(d, AVAIL_GPA + 4 + 2 * 4);
	struct virtq_used u[3];
	uint16_t heads[3];
	uint32_t id, len;

	/* Two chains first, so that the batch's elements straddle the end of the used ring. */
	for (int i = 0; i < 2; i++) {
		split_add(d, b + 1, 1, false);
		assert_int_equal(virtq_pop(&d->q, &d->e), 1);
		virtq_push(&d->q, &d->e, 1);
		assert_true(split_used(d, &id, &len));
	}
	virtq_should_notify(&d->q);
	for (unsigned round = 0; round < 3; round++) {
		for (int i = 0; i < 3; i++)
			heads[i] = split_add(d, b + (i == 1 ? 0 : 1), i == 1 ? 2 : 1, i == 2);
		for (int i = 0; i < 3; i++) {
			assert_int_equal(virtq_pop(&d->q, &e[i]), 1);
			u[i] = virtq_used_of(&e[i], 10 * (i + 1));
		}
		uint16_t before = *u16_at(d, USED_GPA + 2);

		virtq_push_many(&d->q, u, 0);
		assert_int_equal(*u16_at(d, USED_GPA + 2), before);
		assert_false(virtq_should_notify(&d->q));
		/* round 0: used_event inside the batch; 1: the entry after it; 2: its last one. */
		*used_event = (uint16_t)(before + (round == 0 ? 1 : round == 1 ? 3 : 2));
		virtq_push_many(&d->q, u, 3);
		assert_int_equal(*u16_at(d, USED_GPA + 2), (uint16_t)(before + 3));
		assert_int_equal(d->q.used_idx, (uint16_t)(before + 3));
		assert_int_equal(virtq_should_notify(&d->q), round != 1);
		for (int i = 0; i < 3; i++) {
			assert_true(split_used(d, &id, &len));
			assert_int_equal(id, heads[i]);
			assert_int_equal(len, 10 * (i + 1));
		}
		assert_false(split_used(d, &id, &len));
	}
	free(e);
	drv_free(d);
}

/* Packed: lists of 1 to 3 descriptors (some indirect), 1 to 3 at a time, given back with one
 * virtq_push_many in a 5-entry ring for 2000 rounds: the batch often runs over the ring's end,
 * where the used wrap counter flips inside it; the driver finds every list, in order, with the
 * flags of its own lap. (That the first descriptor's flags are stored last, so that the driver
 * sees the batch whole or not at all, is an ordering no single thread can observe: the end state
 * and the slot accounting are what this checks.) */
static void packed_push_many(void **state)
{
	struct drv *d = drv_new(5, PACKED | ALL_FEATURES);
	struct buf b[] = { { BUF_GPA, 4, false },
			   { BUF_GPA + 0x10, 4, false },
			   { BUF_GPA + 0x20, 4, true } };
	struct virtq_elem *e = calloc(3, sizeof(*e));
	unsigned flips = 0, across = 0;

	for (unsigned i = 0; i < 2000; i++) {
		struct virtq_used u[3];
		uint16_t ids[3], start = d->q.used_idx;
		unsigned k = 1 + i % 3, slots = 0;
		bool wrap = d->q.used_wrap;

		for (unsigned j = 0; j < k; j++) {
			/* At most 5 slots in flight: lists of (i + j) % 2 + 1 descriptors, or one
			 * indirect descriptor holding all three. */
			bool ind = (i + j) % 5 == 0;
			int n = ind ? 3 : 1 + (int)((i + j) % 2);

			ids[j] = packed_add(d, b + 3 - n, n, ind);
			slots += ind ? 1 : n;
		}
		assert_true(slots <= 5);
		for (unsigned j = 0; j < k; j++) {
			assert_int_equal(virtq_pop(&d->q, &e[j]), 1);
			assert_int_equal(e[j].id, ids[j]);
			u[j] = virtq_used_of(&e[j], (uint32_t)(i + j) % 7);
		}
		assert_int_equal(virtq_pop(&d->q, &d->e), 0);
		virtq_push_many(&d->q, u, k);
		for (unsigned j = 0; j < k; j++) {
			uint32_t id, len;
			uint16_t flags;

			assert_true(packed_used(d, &id, &len, &flags));
			assert_int_equal(id, ids[j]);
			assert_int_equal(len, (i + j) % 7);
			assert_int_equal(!!(flags & VIRTQ_DESC_F_WRITE), len != 0);
		}
		assert_int_equal(d->q.used_idx, d->used_slot);
		assert_int_equal(d->q.used_wrap, d->used_wrap);
		assert_int_equal(d->q.pending_used, slots);
		assert_true(virtq_should_notify(&d->q));
		across += start + slots > 5;
		flips += wrap != d->q.used_wrap;
	}
	assert_true(across > 300);
	assert_true(flips > 300);
	free(e);
	drv_free(d);
}

static void assert_same_chain(const struct virtq_elem *a, const struct virtq_elem *b)
{
	assert_int_equal(a->id, b->id);
	assert_int_equal(a->ndesc, b->ndesc);
	assert_int_equal(a->out_num, b->out_num);
	assert_int_equal(a->in_num, b->in_num);
	assert_int_equal(a->out_len, b->out_len);
	assert_int_equal(a->in_len, b->in_len);
	for (unsigned i = 0; i < a->out_num + a->in_num; i++) {
		assert_ptr_equal(a->iov[i].iov_base, b->iov[i].iov_base);
		assert_int_equal(a->iov[i].iov_len, b->iov[i].iov_len);
	}
}

/* Split: chains popped and put back (the last first) come out again, the same chains in the same
 * order; over 70000 rounds in a 4-entry ring the avail index wraps past the ring's end and past
 * 65535. Putting back only the last chain gives that one again. */
static void split_unpop(void **state)
{
	struct drv *d = drv_new(4, ALL_FEATURES);
	struct buf b[] = { { BUF_GPA, 4, false }, { BUF_GPA + 0x10, 4, true } };
	struct virtq_elem *e = calloc(3, sizeof(*e));
	struct virtq_elem *again = calloc(1, sizeof(*again));

	for (unsigned i = 0; i < 70000; i++) {
		uint16_t heads[2], last = d->q.last_avail;
		struct virtq_used u[2];
		uint32_t id, len;

		for (int j = 0; j < 2; j++) {
			int n = 1 + (int)((i + j) % 2);

			heads[j] = split_add(d, b + 2 - n, n, (i + j) % 3 == 0);
		}
		for (int j = 0; j < 2; j++) {
			assert_int_equal(virtq_pop(&d->q, &e[j]), 1);
			assert_int_equal(e[j].id, heads[j]);
		}
		assert_int_equal(virtq_pop(&d->q, &d->e), 0);
		virtq_unpop(&d->q, e[1].ndesc);
		virtq_unpop(&d->q, e[0].ndesc);
		assert_int_equal(d->q.last_avail, last);
		/* The driver's notification check sees them as available again. */
		assert_true(virtq_enable_notify(&d->q, true));
		for (int j = 0; j < 2; j++) {
			assert_int_equal(virtq_pop(&d->q, again), 1);
			assert_same_chain(again, &e[j]);
		}
		virtq_unpop(&d->q, e[1].ndesc);
		assert_int_equal(virtq_pop(&d->q, again), 1);
		assert_same_chain(again, &e[1]);
		assert_int_equal(virtq_pop(&d->q, again), 0);
		for (int j = 0; j < 2; j++)
			u[j] = virtq_used_of(&e[j], 4);
		virtq_push_many(&d->q, u, 2);
		for (int j = 0; j < 2; j++) {
			assert_true(split_used(d, &id, &len));
			assert_int_equal(id, heads[j]);
		}
	}
	assert_int_equal(d->q.last_avail, (uint16_t)140000);
	free(again);
	free(e);
	drv_free(d);
}

/* Packed: lists of 1 to 3 descriptors (and indirect ones) in a 5-entry ring, popped two at a
 * time, put back and popped again for 3000 rounds: putting back a list that ran over the ring's
 * end turns the avail wrap counter back, and the next pop finds the same lists. */
static void packed_unpop_across_wrap(void **state)
{
	struct drv *d = drv_new(5, PACKED | ALL_FEATURES);
	struct buf b[] = { { BUF_GPA, 4, false },
			   { BUF_GPA + 0x10, 4, false },
			   { BUF_GPA + 0x20, 4, true } };
	struct virtq_elem *e = calloc(2, sizeof(*e));
	struct virtq_elem *again = calloc(1, sizeof(*again));
	unsigned back_over_wrap = 0;

	for (unsigned i = 0; i < 3000; i++) {
		uint16_t ids[2], last = d->q.last_avail;
		bool wrap = d->q.avail_wrap;
		struct virtq_used u[2];

		for (int j = 0; j < 2; j++) {
			/* 1 + 2 or 2 + 1 descriptors, or 1 indirect: at most 5 slots in flight. */
			int n = 1 + (int)(i + j) % 2;
			bool ind = (i + j) % 7 == 0;

			ids[j] = packed_add(d, b + 3 - n, n, ind);
		}
		for (int j = 0; j < 2; j++) {
			assert_int_equal(virtq_pop(&d->q, &e[j]), 1);
			assert_int_equal(e[j].id, ids[j]);
		}
		assert_int_equal(virtq_pop(&d->q, &d->e), 0);
		for (int j = 1; j >= 0; j--) {
			back_over_wrap += d->q.last_avail < e[j].ndesc;
			virtq_unpop(&d->q, e[j].ndesc);
		}
		assert_int_equal(d->q.last_avail, last);
		assert_int_equal(d->q.avail_wrap, wrap);
		assert_true(virtq_enable_notify(&d->q, true));
		for (int j = 0; j < 2; j++) {
			assert_int_equal(virtq_pop(&d->q, again), 1);
			assert_same_chain(again, &e[j]);
		}
		assert_int_equal(virtq_pop(&d->q, again), 0);
		assert_int_equal(d->q.last_avail, d->next_slot);
		assert_int_equal(d->q.avail_wrap, d->wrap);
		for (int j = 0; j < 2; j++)
			u[j] = virtq_used_of(&e[j], 4);
		virtq_push_many(&d->q, u, 2);
		for (int j = 0; j < 2; j++) {
			uint32_t id, len;
			uint16_t flags;

			assert_true(packed_used(d, &id, &len, &flags));
			assert_int_equal(id, ids[j]);
		}
	}
	assert_true(back_over_wrap > 500);
	free(again);
	free(e);
	drv_free(d);
}

/* A broken or disabled queue: neither call writes or moves anything. */
static void push_many_and_unpop_on_a_dead_queue(void **state)
{
	struct drv *d = drv_new(4, 0);
	struct buf b = { BUF_GPA, 8, true };
	struct virtq_used u = { 0, 1, 8, 0 };

	split_add(d, &b, 1, false);
	assert_int_equal(virtq_pop(&d->q, &d->e), 1);
	*u16_at(d, AVAIL_GPA + 2) = 9; /* runs ahead by more than the ring: broken */
	assert_int_equal(virtq_pop(&d->q, &d->e), -EINVAL);
	virtq_unpop(&d->q, 1);
	assert_int_equal(d->q.last_avail, 1);
	virtq_push_many(&d->q, &u, 1);
	assert_int_equal(*u16_at(d, USED_GPA + 2), 0);
	virtq_reset(&d->q);
	virtq_unpop(&d->q, 1);
	virtq_push_many(&d->q, &u, 1);
	assert_int_equal(d->q.last_avail, 0);
	assert_int_equal(*u16_at(d, USED_GPA + 2), 0);
	drv_free(d);
}

/* ---- chains from before a reset, and what does not fit the ring ---- */

/* A PROT_NONE page right after guest RAM: a write past the end faults instead of landing in
 * whatever the host has there. */
static void guard_after_ram(struct drv *d)
{
	void *end = d->mem.r[0].host + RAM;

	assert_true(mmap(end, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
			 -1, 0) == end);
}

/* The driver stops a queue while the device holds three chains of three descriptors, then sets it
 * up again with one entry in the last 16 bytes of RAM. The old chains' completions must not reach
 * the new ring: pushed there with their old descriptor counts they ran past its end, and past
 * RAM's (defect 1 of the hostile-guest review). */
static void stale_chains_are_never_pushed(bool packed)
{
	struct drv *d = drv_new(8, ALL_FEATURES | (packed ? PACKED : 0));
	struct buf b[3] = { { BUF_GPA, 16, false }, { BUF_GPA + 16, 16, true },
			    { BUF_GPA + 32, 1, true } };
	struct virtq_used u[3];
	uint8_t before[16];

	guard_after_ram(d);
	for (int i = 0; i < 3; i++) {
		packed ? packed_add(d, b, 3, false) : split_add(d, b, 3, false);
		assert_int_equal(virtq_pop(&d->q, &d->e), 1);
		u[i] = virtq_used_of(&d->e, 17);
	}
	virtq_reset(&d->q);
	d->q.size = 1;
	d->q.desc_gpa = RAM_END - 16;
	d->q.avail_gpa = packed ? USED_GPA + 0x100 : RAM_END - 16 - 0x100;
	d->q.used_gpa = packed ? USED_GPA + 0x200 : USED_GPA + 0x200;
	memset(host(d, RAM_END - 16), 0, 16);
	memset(host(d, USED_GPA + 0x200), 0, 16);
	assert_int_equal(virtq_enable(&d->q, &d->mem, ALL_FEATURES | (packed ? PACKED : 0)), 0);
	memcpy(before, host(d, RAM_END - 16), 16);
	for (int i = 0; i < 3; i++)
		virtq_push(&d->q, &d->e, 17); /* d->e: the last chain popped */
	assert_int_equal(virtq_push_many(&d->q, u, 3), 0);
	assert_memory_equal(host(d, RAM_END - 16), before, 16);
	assert_int_equal(*u16_at(d, USED_GPA + 0x200 + 2), 0); /* split: used idx */
	assert_false(d->q.broken);
	assert_false(virtq_should_notify(&d->q));
	assert_int_equal(d->q.used_idx, 0);
	munmap(d->mem.r[0].host + RAM, 4096);
	drv_free(d);
}

static void split_stale_chains_are_never_pushed(void **state)
{
	stale_chains_are_never_pushed(false);
}

static void packed_stale_chains_are_never_pushed(void **state)
{
	stale_chains_are_never_pushed(true);
}

/* Whatever a device hands in, the ring writes only what fits it: a packed chain of 0 or more than
 * size descriptors, or a split head past the size, is refused, breaks the queue, and writes
 * nothing, not even the entries beside it. */
static void push_refuses_what_does_not_fit(void **state)
{
	static const struct {
		bool packed;
		uint16_t ndesc, id; /* what replaces the chain's own, or 0xffff: kept */
	} cases[] = {
		{ true, 5, 0xffff }, /* packed: more descriptors than the ring has */
		{ true, 0, 0xffff }, /* packed: none at all */
		{ false, 0xffff, 4 }, /* split: no such head */
	};

	for (unsigned c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct drv *d = drv_new(4, ALL_FEATURES | (cases[c].packed ? PACKED : 0));
		struct buf b = { BUF_GPA, 8, true };
		struct virtq_used u[2];

		cases[c].packed ? packed_add(d, &b, 1, false) : split_add(d, &b, 1, false);
		assert_int_equal(virtq_pop(&d->q, &d->e), 1);
		u[0] = u[1] = virtq_used_of(&d->e, 8);
		if (cases[c].ndesc != 0xffff)
			u[1].ndesc = cases[c].ndesc;
		if (cases[c].id != 0xffff)
			u[1].id = cases[c].id;
		assert_int_equal(virtq_push_many(&d->q, u, 2), 0);
		assert_true(d->q.broken);
		assert_int_equal(d->q.used_idx, 0);
		if (cases[c].packed)
			assert_int_equal(desc_at(d, DESC_GPA, 0)->flags & VIRTQ_DESC_F_USED, 0);
		else
			assert_int_equal(*u16_at(d, USED_GPA + 2), 0);
		drv_free(d);
	}
}

#define T(f) cmocka_unit_test(f)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(split_chain_out_then_in),
		T(split_several_chains_used_out_of_order),
		T(split_indices_wrap),
		T(packed_chain_out_then_in),
		T(packed_wrap_counters),
		T(packed_several_lists_used_out_of_order),
		T(split_indirect),
		T(split_indirect_fills_the_largest_queue),
		T(packed_indirect),
		T(split_no_interrupt_flag),
		T(split_used_event),
		T(describe_rings),
		T(split_enable_notify),
		T(packed_driver_event_suppression),
		T(packed_enable_notify),
		T(enable_rejects_bad_sizes_and_rings),
		T(reset_and_disabled_queue),
		T(good_then_bad),
		T(split_push_many),
		T(packed_push_many),
		T(split_unpop),
		T(packed_unpop_across_wrap),
		T(push_many_and_unpop_on_a_dead_queue),
		T(split_stale_chains_are_never_pushed),
		T(packed_stale_chains_are_never_pushed),
		T(push_refuses_what_does_not_fit),
		T(s_bad_loop),
		T(s_bad_self_loop),
		T(s_bad_too_long),
		T(s_bad_big_table),
		T(s_bad_next_range),
		T(s_bad_head_range),
		T(s_bad_ind_partial),
		T(s_bad_ind_empty),
		T(s_bad_ind_nested),
		T(s_bad_ind_self),
		T(s_bad_ind_outside),
		T(s_bad_ind_loop),
		T(s_bad_ind_next_range),
		T(s_bad_ind_no_feature),
		T(s_bad_ind_next),
		T(s_bad_buf_outside),
		T(s_bad_ind_buf_outside),
		T(s_bad_buf_wraps),
		T(s_bad_zero_len),
		T(s_bad_idx_jump),
		T(s_bad_idx_back),
		T(s_bad_read_after_write),
		T(s_bad_ind_read_after_write),
		T(p_bad_too_long),
		T(p_bad_big_table),
		T(p_bad_ind_partial),
		T(p_bad_ind_empty),
		T(p_bad_ind_nested),
		T(p_bad_ind_outside),
		T(p_bad_ind_no_feature),
		T(p_bad_ind_next),
		T(p_bad_ind_after_direct),
		T(p_bad_buf_outside),
		T(p_bad_ind_buf_outside),
		T(p_bad_buf_wraps),
		T(p_bad_zero_len),
		T(p_bad_read_after_write),
		T(p_bad_ind_read_after_write),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
