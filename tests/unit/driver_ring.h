/* The driver's side of a virtqueue, for the device types' unit tests: rings of RING_SIZE entries,
 * split (VIRTIO 1.x 2.7) or packed (2.8) as test_ring_packed says, built in guest memory the way a
 * driver builds them. Include after cmocka.h and the device's header. */
#ifndef VMM_TEST_DRIVER_RING_H
#define VMM_TEST_DRIVER_RING_H

#include "test_gpa.h"

#define RING_SIZE 16
#define RING_GPA  TEST_GPA(0x1000)
#define DATA_GPA  TEST_GPA(0x10000)
#define VRING_PACKED_DESC_F_AVAIL (1 << 7)
#define VRING_PACKED_DESC_F_USED  (1 << 15)

struct tq {
	struct guest_mem *m;
	bool packed;
	uint64_t desc, avail, used;
	uint16_t next_desc, avail_idx, last_used;
	bool avail_wrap, used_wrap;   /* packed */
	uint16_t ndesc[RING_SIZE];    /* packed: descriptors per buffer id */
	uint64_t gpa[RING_SIZE];      /* first buffer of the chain with that head */
};

struct tbuf {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

/* Which layout the rings of this run use: main() runs every test with each. */
static bool test_ring_packed = true;

static bool test_packed(void)
{
	return test_ring_packed;
}

static uint64_t test_ring_features(void)
{
	return test_packed() ? 1ULL << VIRTIO_F_RING_PACKED : 0;
}

static void *gp(struct tq *t, uint64_t gpa, uint64_t len)
{
	void *p = gmem_ptr(t->m, gpa, len);

	assert_non_null(p);
	return p;
}

/* A modern driver's negotiation (3.1.1), lock held: ACKNOWLEDGE and DRIVER, the device bits
 * `low` (0-31), VERSION_1 and the ring layout of this run, then FEATURES_OK. */
static inline void tq_negotiate(struct virtio_dev *d, uint32_t low)
{
	virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	virtio_set_driver_features(d, 0, low);
	virtio_set_driver_features(d, 1, (uint32_t)((test_ring_features() >> 32) | 1));
	virtio_set_status(d, d->status | VIRTIO_STATUS_FEATURES_OK);
}

/* Call with the device's features negotiated and its lock held. */
static void tq_setup(struct virtio_dev *d, unsigned q, struct tq *t, struct guest_mem *m)
{
	memset(t, 0, sizeof(*t));
	t->m = m;
	t->packed = test_packed();
	t->avail_wrap = t->used_wrap = true;
	t->desc = RING_GPA + q * 0x400;
	t->avail = t->desc + 16 * RING_SIZE;
	t->used = t->avail + 0x40;
	memset(gp(t, t->desc, 0x400), 0, 0x400);
	d->queues[q].vq.size = RING_SIZE;
	d->queues[q].vq.desc_gpa = t->desc;
	d->queues[q].vq.avail_gpa = t->avail;
	d->queues[q].vq.used_gpa = t->used;
	assert_int_equal(virtio_queue_enable(d, q), 0);
}

/* Makes the buffers one chain and makes it available; returns its head (the buffer id). */
static uint16_t tq_add(struct tq *t, const struct tbuf *b, unsigned n)
{
	uint16_t head = t->next_desc, first_flags = 0;
	bool wrap = t->avail_wrap;

	for (unsigned i = 0; i < n; i++) {
		uint16_t idx = (uint16_t)((head + i) % RING_SIZE);
		uint8_t *desc = gp(t, t->desc + 16 * idx, 16);
		uint16_t flags = (b[i].write ? 2 : 0) | (i + 1 < n ? 1 : 0);
		uint16_t next = (uint16_t)((idx + 1) % RING_SIZE);

		memcpy(desc, &b[i].gpa, 8);
		memcpy(desc + 8, &b[i].len, 4);
		if (!t->packed) {
			memcpy(desc + 12, &flags, 2);
			memcpy(desc + 14, &next, 2);
			continue;
		}
		flags |= wrap ? VRING_PACKED_DESC_F_AVAIL : VRING_PACKED_DESC_F_USED;
		memcpy(desc + 12, &head, 2); /* the id, which the device reads from the last one */
		if (i == 0)
			first_flags = flags; /* published last, below */
		else
			memcpy(desc + 14, &flags, 2);
		if (next == 0)
			wrap = !wrap;
	}
	t->next_desc = (uint16_t)((head + n) % RING_SIZE);
	t->gpa[head] = b[0].gpa;
	if (t->packed) {
		t->ndesc[head] = (uint16_t)n;
		t->avail_wrap = wrap;
		__atomic_store_n((uint16_t *)gp(t, t->desc + 16 * head + 14, 2), first_flags,
				 __ATOMIC_RELEASE);
		return head;
	}
	uint16_t *ring = gp(t, t->avail + 4 + 2 * (t->avail_idx % RING_SIZE), 2);
	*ring = head;
	__atomic_store_n((uint16_t *)gp(t, t->avail + 2, 2), ++t->avail_idx, __ATOMIC_RELEASE);
	return head;
}

/* The next used element, if the device returned one. */
static bool tq_used(struct tq *t, uint32_t *id, uint32_t *len)
{
	if (t->packed) {
		uint8_t *desc = gp(t, t->desc + 16 * t->last_used, 16);
		uint16_t flags = __atomic_load_n((uint16_t *)(desc + 14), __ATOMIC_ACQUIRE);
		uint16_t bid;

		if (!!(flags & VRING_PACKED_DESC_F_AVAIL) != t->used_wrap ||
		    !!(flags & VRING_PACKED_DESC_F_USED) != t->used_wrap)
			return false;
		memcpy(&bid, desc + 12, 2);
		memcpy(len, desc + 8, 4);
		*id = bid;
		assert_true(bid < RING_SIZE && t->ndesc[bid]);
		t->last_used = (uint16_t)(t->last_used + t->ndesc[bid]);
		if (t->last_used >= RING_SIZE) {
			t->last_used -= RING_SIZE;
			t->used_wrap = !t->used_wrap;
		}
		return true;
	}
	uint16_t idx = __atomic_load_n((uint16_t *)gp(t, t->used + 2, 2), __ATOMIC_ACQUIRE);
	uint32_t *e;

	if (idx == t->last_used)
		return false;
	e = gp(t, t->used + 4 + 8 * (t->last_used % RING_SIZE), 8);
	*id = e[0];
	*len = e[1];
	t->last_used++;
	return true;
}

/* Framing (2.7.4): lays a stream of bytes out as n buffers of the lengths in cuts[], each at an
 * address of its own (base + 0x2000 * i + 3 * i, with 0xa5 bytes around it), so that a device
 * that reads a piece past its buffer's end finds garbage, not the next piece. data NULL (for
 * writable buffers) fills them with 0xee. Fills b[0..n) and returns the bytes laid out. */
static inline size_t tq_scatter(struct tq *t, uint64_t base, const void *data,
				const uint32_t *cuts, unsigned n, bool write, struct tbuf *b)
{
	size_t off = 0;

	for (unsigned i = 0; i < n; i++) {
		uint64_t slot = base + 0x2000ULL * i;

		assert_true(cuts[i] > 0 && cuts[i] + 3 * i < 0x2000);
		memset(gp(t, slot, 0x2000), 0xa5, 0x2000);
		b[i] = (struct tbuf){ slot + 3 * i, cuts[i], write };
		if (data)
			memcpy(gp(t, b[i].gpa, cuts[i]), (const uint8_t *)data + off, cuts[i]);
		else
			memset(gp(t, b[i].gpa, cuts[i]), 0xee, cuts[i]);
		off += cuts[i];
	}
	return off;
}

/* The bytes of buffers b[0..n) one after the other into out, at most len. */
static inline size_t tq_gather(struct tq *t, const struct tbuf *b, unsigned n, void *out,
			       size_t len)
{
	size_t off = 0;

	for (unsigned i = 0; i < n && off < len; i++) {
		size_t k = b[i].len < len - off ? b[i].len : len - off;

		memcpy((uint8_t *)out + off, gp(t, b[i].gpa, k), k);
		off += k;
	}
	return off;
}

/* Runs the tests on packed rings, then again on split rings; returns the failures of both. */
static inline int run_on_both_rings(const struct CMUnitTest *tests, size_t n)
{
	int failed;

	test_ring_packed = true;
	failed = _cmocka_run_group_tests("packed rings", tests, n, NULL, NULL);
	test_ring_packed = false;
	return failed + _cmocka_run_group_tests("split rings", tests, n, NULL, NULL);
}
#define RUN_ON_BOTH_RINGS(tests) run_on_both_rings(tests, sizeof(tests) / sizeof((tests)[0]))

#endif
