/* The firmware's driver-side rings (firmware/virtio/: split.c, packed.c, virtqueue.c) against
 * vmm's device side (vmm/virtio/virtqueue.c, through fw_device.c), in one process: the two halves
 * of every ring layout and feature must agree. A random mix of chains (1 to 4 buffers, readable
 * and writable, 1 to 64 bytes each) is added, kicked, served and reclaimed (some while the device
 * is still writing, as a polling driver does), tens of thousands of times, so that the rings go
 * round many times and split's 16-bit indices wrap. The device runs
 * only when kicked, as an ioeventfd wakes vmm's I/O thread, and then takes everything there is: so
 * a kick the driver suppressed that the device needed leaves chains behind, which fails. Checked
 * on every chain: it comes back once, with the bytes the device wrote and the length it said;
 * the device saw the bytes the driver wrote; and a used buffer notification is due exactly when
 * the driver asked for one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "fw_device.h"
#include "virtio/virtqueue.h"

#define RAM_SIZE (4u << 20)
#define MAX_BUFS 4
#define MAX_LEN  64

/* The firmware's arena (firmware/lib/mem.c), for the test: the device's guest RAM. */
static uint8_t *ram;
static size_t ram_used;

void *mem_alloc(size_t size, size_t align)
{
	size_t start = (ram_used + align - 1) & ~(align - 1);

	if (start > RAM_SIZE || size > RAM_SIZE - start)
		return NULL;
	ram_used = start + size;
	return memset(ram + start, 0, size);
}

size_t mem_mark(void)
{
	return ram_used;
}

void mem_release(size_t mark)
{
	ram_used = mark;
}

/* The device never gives up here: NEEDS_RESET would be a malformed ring, which fw_device_run
 * reports itself. */
bool virtio_needs_reset(struct virtio_dev *d)
{
	return false;
}

static bool kicked;

static void notify(struct virtio_dev *d, struct vq *vq)
{
	kicked = true; /* the eventfd is set; the device runs when the test says */
}

static const struct virtio_transport transport = { .name = "test", .notify = notify };

/* One chain in flight, and what the driver knows of it. */
struct chain {
	struct vq_buf buf[MAX_BUFS];
	unsigned n;
	uint32_t writable;
	bool in_flight;
};

static uint32_t rnd_state;

static uint32_t rnd(uint32_t n)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 17;
	rnd_state ^= rnd_state << 5;
	return rnd_state % n;
}

static void make_chain(struct chain *c, uint8_t *space)
{
	unsigned readable;
	uint8_t seed = (uint8_t)rnd(256), k = 0;

	c->n = 1 + rnd(MAX_BUFS);
	readable = rnd(c->n + 1);
	c->writable = 0;
	for (unsigned i = 0; i < c->n; i++) {
		uint32_t len = 1 + rnd(MAX_LEN);

		c->buf[i] = (struct vq_buf){
			.addr = (uintptr_t)(space + i * MAX_LEN),
			.len = len,
			.device_writes = i >= readable,
		};
		memset(space + i * MAX_LEN, 0, MAX_LEN);
		if (i >= readable)
			c->writable += len;
		else
			for (uint32_t j = 0; j < len; j++)
				space[i * MAX_LEN + j] = (uint8_t)(seed + k++);
	}
}

/* What the device wrote must be len bytes of 0x5a, 0x5b, ..., len as fw_device_run says. */
static void check_used(struct chain *c, uint32_t len)
{
	uint32_t want = c->writable > 1 ? c->writable - 1 : c->writable, k = 0;

	assert_true(c->in_flight);
	assert_int_equal(len, want);
	for (unsigned i = 0; i < c->n; i++) {
		const uint8_t *p = (const uint8_t *)(uintptr_t)c->buf[i].addr;

		for (uint32_t j = 0; c->buf[i].device_writes && j < c->buf[i].len && k < len; j++)
			assert_int_equal(p[j], (uint8_t)(0x5a + k++));
	}
	c->in_flight = false;
}

/* Takes back up to max used chains, checking each (and that vq_has_used said there was one);
 * *done counts them. */
static void reclaim(struct vq *vq, unsigned *done, unsigned max)
{
	for (unsigned i = 0; i < max; i++) {
		bool has = vq_has_used(vq);
		void *token;
		uint32_t len;
		int ret = vq_get_used(vq, &token, &len);

		assert_int_equal(ret, has ? 1 : 0);
		if (ret != 1)
			break;
		check_used(token, len);
		(*done)++;
	}
}

/* The driver polling while the device works: now and then it takes back what is there. */
struct poller {
	struct vq *vq;
	unsigned *done;
};

static void poll_between(void *ctx)
{
	struct poller *p = ctx;

	reclaim(p->vq, p->done, rnd(3));
}

struct config {
	bool packed, indirect, event_idx;
	uint16_t size;
	unsigned requests;
};

static void run(const struct config *cfg)
{
	struct virtio_ring_opts opts = {
		.packed = cfg->packed,
		.indirect = cfg->indirect,
		.event_idx = cfg->event_idx,
	};
	struct virtio_dev dev = { .t = &transport };
	uint64_t features = (cfg->packed ? 1ull << VIRTIO_F_RING_PACKED : 0) |
			    (cfg->indirect ? 1ull << VIRTIO_F_INDIRECT_DESC : 0) |
			    (cfg->event_idx ? 1ull << VIRTIO_F_EVENT_IDX : 0);
	struct fw_device *d;
	struct chain *chains;
	uint8_t *space;
	struct vq vq;
	unsigned added = 0, done = 0, served_total = 0, steps = 0;
	struct poller poller = { .vq = &vq, .done = &done };

	ram = aligned_alloc(4096, RAM_SIZE);
	assert_non_null(ram);
	ram_used = 0;
	rnd_state = 0x9e3779b9u ^ cfg->size ^ (unsigned)cfg->packed << 8 ^
		    (unsigned)cfg->indirect << 9 ^ (unsigned)cfg->event_idx << 10;
	kicked = false;
	assert_int_equal(vq_init(&vq, &dev, 0, cfg->size, &opts), 0);
	chains = calloc(cfg->size, sizeof(*chains));
	space = mem_alloc((size_t)cfg->size * MAX_BUFS * MAX_LEN, 16);
	assert_non_null(chains);
	assert_non_null(space);
	d = fw_device_new(ram, RAM_SIZE);
	assert_non_null(d);
	assert_int_equal(fw_device_enable(d, features, vq.size, vq.desc_addr, vq.driver_addr,
					  vq.device_addr),
			 0);

	/* Far more steps than needed: a run that stops making progress (a kick lost) ends. */
	while (done < cfg->requests && steps++ < 64 * cfg->requests) {
		unsigned what = rnd(16);

		if (what < 8 && added < cfg->requests) {
			/* Add a chain in a free slot of ours (a token per slot). */
			unsigned slot = rnd(cfg->size);
			int ret;

			if (chains[slot].in_flight)
				continue;
			make_chain(&chains[slot], space + (size_t)slot * MAX_BUFS * MAX_LEN);
			ret = vq_add_chain(&vq, chains[slot].buf, chains[slot].n, &chains[slot]);
			if (ret == VIRTIO_ERR_FULL)
				continue;
			assert_int_equal(ret, 0);
			chains[slot].in_flight = true;
			added++;
		} else if (what < 11) {
			vq_kick(&vq);
		} else if (what < 13 && kicked) {
			/* The I/O thread wakes and serves, while the driver keeps reclaiming. A
			 * notification is due exactly when the driver asked for one: without
			 * EVENT_IDX for anything used; with it, when the entry it names (the next
			 * one it will read) is among those the device just wrote, or (packed) a
			 * whole ring's worth went by. */
			uint16_t old = (uint16_t)served_total;
			unsigned pending;
			bool notify, want;
			int served;

			kicked = false;
			served = fw_device_run(d, rnd(2), poll_between, &poller, &notify, &pending);
			assert_true(served >= 0);
			served_total += (unsigned)served;
			if (!vq.interrupts || served == 0)
				want = false;
			else if (!cfg->event_idx || (cfg->packed && pending >= vq.size))
				want = true;
			else
				want = vq_need_event((uint16_t)done, (uint16_t)served_total, old);
			assert_int_equal(notify, want);
		} else if (what < 15) {
			reclaim(&vq, &done, cfg->size);
		} else {
			vq_interrupts(&vq, rnd(2));
		}
	}
	/* Everything came back: no kick the device needed was left out. */
	assert_int_equal(added, done);
	assert_int_equal(vq.num_free, vq.size);
	assert_int_equal(fw_device_bad_bytes(d), 0);
	fw_device_free(d);
	free(chains);
	free(ram);
}

#define CASE(name, ...)                                                                            \
	static void name(void **state)                                                             \
	{                                                                                          \
		run(&(struct config){ __VA_ARGS__ });                                              \
	}

/* Split rings long enough for the 16-bit indices to wrap; packed ones of odd sizes, so that laps
 * end inside chains; legacy PCI's 256 too. */
CASE(split_plain, .size = 8, .requests = 70000)
CASE(split_indirect, .size = 8, .indirect = true, .requests = 70000)
CASE(split_event_idx, .size = 8, .event_idx = true, .requests = 70000)
CASE(split_all, .size = 8, .indirect = true, .event_idx = true, .requests = 70000)
CASE(split_256, .size = 256, .indirect = true, .event_idx = true, .requests = 20000)
CASE(packed_plain, .packed = true, .size = 7, .requests = 20000)
CASE(packed_indirect, .packed = true, .size = 7, .indirect = true, .requests = 20000)
CASE(packed_event_idx, .packed = true, .size = 5, .event_idx = true, .requests = 20000)
CASE(packed_all, .packed = true, .size = 7, .indirect = true, .event_idx = true,
     .requests = 20000)
CASE(packed_256, .packed = true, .size = 256, .indirect = true, .event_idx = true,
     .requests = 20000)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(split_plain),	    cmocka_unit_test(split_indirect),
		cmocka_unit_test(split_event_idx),  cmocka_unit_test(split_all),
		cmocka_unit_test(split_256),	    cmocka_unit_test(packed_plain),
		cmocka_unit_test(packed_indirect),  cmocka_unit_test(packed_event_idx),
		cmocka_unit_test(packed_all),	    cmocka_unit_test(packed_256),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
