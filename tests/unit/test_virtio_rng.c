/* The entropy device without a transport: the test plays the driver, building split rings in guest
 * memory and running the queue handler through the device core. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "event.h"
#include "memory.h"
#include "virtio/rng.h"

#include "driver_ring.h"

/* ---- fixture ---- */

struct fx {
	struct guest_mem mem;
	struct event_loop loop;
	struct rng_dev rng;
	struct tq q;
	int signals;
};

static struct fx *cur; /* the transport's signal has no opaque of its own */

static void fake_signal(struct virtio_dev *d, int q)
{
	if (q == 0)
		cur->signals++;
}

static const struct virtio_transport_ops fake_transport = { .signal = fake_signal };

static int fx_setup(struct fx *f, const char *source)
{
	struct virtio_dev *d = &f->rng.vdev;
	int ret;

	memset(f, 0, sizeof(*f));
	cur = f;
	assert_int_equal(gmem_init(&f->mem, 4 << 20), 0);
	assert_int_equal(event_loop_init(&f->loop, "test"), 0);
	ret = rng_init(&f->rng, "rng0", source, "--rng source", &f->mem, &f->loop);
	if (ret)
		return ret;
	d->transport = &fake_transport;
	pthread_mutex_lock(&d->lock);
	virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	assert_int_equal(virtio_get_features(d, 0), 1u << VIRTIO_F_INDIRECT_DESC |
							  1u << VIRTIO_F_EVENT_IDX);
	/* VERSION_1 and the ring layout: no device bits exist. */
	virtio_set_driver_features(d, 1, (uint32_t)((test_ring_features() >> 32) | 1));
	virtio_set_status(d, d->status | VIRTIO_STATUS_FEATURES_OK);
	tq_setup(d, 0, &f->q, &f->mem);
	virtio_set_status(d, d->status | VIRTIO_STATUS_DRIVER_OK);
	assert_true(virtio_live(d));
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static void fx_teardown(struct fx *f)
{
	rng_destroy(&f->rng);
	event_loop_destroy(&f->loop);
	gmem_free(&f->mem);
}

static uint8_t *data(struct fx *f, uint64_t gpa, size_t len)
{
	return gp(&f->q, gpa, len);
}

/* ---- tests ---- */

static void getrandom_fills_and_differs(void **state)
{
	struct fx f;
	uint32_t id, len;
	static const uint8_t zero[64];

	assert_int_equal(fx_setup(&f, NULL), 0);
	uint16_t h1 = tq_add(&f.q, &(struct tbuf){ DATA_GPA, 64, true }, 1);
	uint16_t h2 = tq_add(&f.q, &(struct tbuf){ DATA_GPA + 64, 64, true }, 1);
	virtio_process(&f.rng.vdev, 0);
	assert_true(tq_used(&f.q, &id, &len));
	assert_int_equal(id, h1);
	assert_int_equal(len, 64);
	assert_true(tq_used(&f.q, &id, &len));
	assert_int_equal(id, h2);
	assert_int_equal(len, 64);
	assert_false(tq_used(&f.q, &id, &len));
	assert_true(f.signals > 0);
	assert_memory_not_equal(data(&f, DATA_GPA, 64), zero, 64);
	assert_memory_not_equal(data(&f, DATA_GPA, 64), data(&f, DATA_GPA + 64, 64), 64);
	fx_teardown(&f);
}

static void chain_of_several_buffers_is_filled(void **state)
{
	struct fx f;
	uint32_t id, len;
	const struct tbuf b[3] = {
		{ DATA_GPA, 10, true }, { DATA_GPA + 100, 1, true }, { DATA_GPA + 200, 300, true }
	};

	assert_int_equal(fx_setup(&f, NULL), 0);
	memset(data(&f, DATA_GPA + 200, 300), 0, 300);
	tq_add(&f.q, b, 3);
	virtio_process(&f.rng.vdev, 0);
	assert_true(tq_used(&f.q, &id, &len));
	assert_int_equal(len, 311);
	/* 300 random bytes that are all zero would be news. */
	static const uint8_t zero[300];
	assert_memory_not_equal(data(&f, DATA_GPA + 200, 300), zero, 300);
	fx_teardown(&f);
}

static void request_is_capped(void **state)
{
	struct fx f;
	uint32_t id, len;

	assert_int_equal(fx_setup(&f, NULL), 0);
	tq_add(&f.q, &(struct tbuf){ DATA_GPA, 3 * RNG_MAX_REQUEST, true }, 1);
	virtio_process(&f.rng.vdev, 0);
	assert_true(tq_used(&f.q, &id, &len));
	assert_int_equal(len, RNG_MAX_REQUEST);
	fx_teardown(&f);
}

static void file_source_gives_its_bytes_then_waits(void **state)
{
	char path[] = "/tmp/vmm-rng-XXXXXX";
	int fd = mkstemp(path);
	uint8_t bytes[100];
	struct fx f;
	uint32_t id, len;

	assert_true(fd >= 0);
	for (unsigned i = 0; i < sizeof(bytes); i++)
		bytes[i] = (uint8_t)(i * 7 + 3);
	assert_int_equal(write(fd, bytes, sizeof(bytes)), sizeof(bytes));
	close(fd);
	assert_int_equal(fx_setup(&f, path), 0);
	tq_add(&f.q, &(struct tbuf){ DATA_GPA, 40, true }, 1);
	tq_add(&f.q, &(struct tbuf){ DATA_GPA + 0x1000, 100, true }, 1);
	tq_add(&f.q, &(struct tbuf){ DATA_GPA + 0x2000, 100, true }, 1);
	virtio_process(&f.rng.vdev, 0);
	assert_true(tq_used(&f.q, &id, &len));
	assert_int_equal(len, 40);
	assert_memory_equal(data(&f, DATA_GPA, 40), bytes, 40);
	assert_true(tq_used(&f.q, &id, &len));
	assert_int_equal(len, 60);
	assert_memory_equal(data(&f, DATA_GPA + 0x1000, 60), bytes + 40, 60);
	/* Used up: the third request waits (the spec wants at least one byte), the device stays
	 * live, and a later kick does not complete it empty either. */
	assert_false(tq_used(&f.q, &id, &len));
	virtio_process(&f.rng.vdev, 0);
	assert_false(tq_used(&f.q, &id, &len));
	assert_true(virtio_live(&f.rng.vdev));
	/* More bytes in the file: the held request gets them. */
	fd = open(path, O_WRONLY | O_APPEND);
	assert_int_equal(write(fd, bytes, 10), 10);
	close(fd);
	virtio_process(&f.rng.vdev, 0);
	assert_true(tq_used(&f.q, &id, &len));
	assert_int_equal(len, 10);
	assert_memory_equal(data(&f, DATA_GPA + 0x2000, 10), bytes, 10);
	fx_teardown(&f);
	unlink(path);
}

/* A request held for lack of entropy when the driver stops the queue (virtio-mmio QueueReady 0)
 * is dropped with it: the bytes that come later go to the queue set up anew, not into the old
 * request (where they were lost, its answer refused by the ring). */
static void queue_stop_drops_the_held_request(void **state)
{
	char path[] = "/tmp/vmm-rng-XXXXXX";
	int fd = mkstemp(path);
	uint8_t bytes[10] = "0123456789";
	struct fx f;
	uint32_t id, len;

	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(fx_setup(&f, path), 0);
	tq_add(&f.q, &(struct tbuf){ DATA_GPA, 40, true }, 1);
	virtio_process(&f.rng.vdev, 0);
	assert_false(tq_used(&f.q, &id, &len)); /* held: the file is empty */
	pthread_mutex_lock(&f.rng.vdev.lock);
	virtio_queue_stop(&f.rng.vdev, 0);
	tq_setup(&f.rng.vdev, 0, &f.q, &f.mem);
	pthread_mutex_unlock(&f.rng.vdev.lock);
	fd = open(path, O_WRONLY | O_APPEND);
	assert_int_equal(write(fd, bytes, sizeof(bytes)), sizeof(bytes));
	close(fd);
	virtio_process(&f.rng.vdev, 0);
	assert_false(tq_used(&f.q, &id, &len));
	uint16_t h = tq_add(&f.q, &(struct tbuf){ DATA_GPA + 0x1000, 40, true }, 1);
	virtio_process(&f.rng.vdev, 0);
	assert_true(tq_used(&f.q, &id, &len));
	assert_int_equal(id, h);
	assert_int_equal(len, sizeof(bytes));
	assert_memory_equal(data(&f, DATA_GPA + 0x1000, sizeof(bytes)), bytes, sizeof(bytes));
	fx_teardown(&f);
	unlink(path);
}

/* A request of writable buffers cut as cut says (zero-ended, at most 4), each at its own address
 * (tq_scatter), served: it comes back whole. Returns the number of buffers; len, the bytes. */
static unsigned request_cut(struct fx *f, const uint32_t *cut, struct tbuf *b, uint32_t *len)
{
	unsigned n = cut[3] ? 4 : cut[2] ? 3 : cut[1] ? 2 : 1;
	size_t want = tq_scatter(&f->q, TEST_GPA(0x200000), NULL, cut, n, true, b);
	uint16_t head = tq_add(&f->q, b, n);
	uint32_t id;

	virtio_process(&f->rng.vdev, 0);
	assert_true(tq_used(&f->q, &id, len));
	assert_int_equal(id, head);
	assert_int_equal(*len, want);
	return n;
}

/* Any layout (2.7.4): a request is its writable bytes however the driver split them. A file or
 * device source fills all of a request's buffers in its one read (it used to fill the first only,
 * so a request cut after one byte got one byte); getrandom fills them all too. */
static void any_layout(void **state)
{
	char path[] = "/tmp/vmm-rng-XXXXXX";
	static const uint32_t cuts[][4] = { { 1, 2, 300 }, { 64 }, { 1, 1, 1, 61 }, { 33, 31 } };
	int fd = mkstemp(path);
	uint8_t bytes[500], got[400];
	struct tbuf b[4];
	uint32_t len;
	struct fx f;

	assert_true(fd >= 0);
	for (unsigned i = 0; i < sizeof(bytes); i++)
		bytes[i] = (uint8_t)(i * 5 + 1);
	assert_int_equal(write(fd, bytes, sizeof(bytes)), sizeof(bytes));
	close(fd);
	assert_int_equal(fx_setup(&f, path), 0);
	size_t at = 0;
	for (unsigned c = 0; c < 4; c++) {
		unsigned n = request_cut(&f, cuts[c], b, &len);

		tq_gather(&f.q, b, n, got, len);
		assert_memory_equal(got, bytes + at, len);
		at += len;
	}
	fx_teardown(&f);
	unlink(path);

	assert_int_equal(fx_setup(&f, NULL), 0);
	for (unsigned c = 0; c < 4; c++)
		request_cut(&f, cuts[c], b, &len);
	fx_teardown(&f);
}

static void missing_source_is_a_config_error(void **state)
{
	struct fx f;

	assert_int_equal(fx_setup(&f, "/nonexistent/vmm-rng-source"), -ENOENT);
	fx_teardown(&f);
}

static void readable_buffer_needs_reset(void **state)
{
	struct fx f;
	uint32_t id, len;
	const struct tbuf b[2] = { { DATA_GPA, 16, false }, { DATA_GPA + 16, 16, true } };

	assert_int_equal(fx_setup(&f, NULL), 0);
	tq_add(&f.q, b, 2);
	virtio_process(&f.rng.vdev, 0);
	assert_true(f.rng.vdev.status & VIRTIO_STATUS_NEEDS_RESET);
	assert_false(tq_used(&f.q, &id, &len));
	fx_teardown(&f);
}

static void no_writable_buffer_needs_reset(void **state)
{
	struct fx f;
	uint32_t id, len;

	assert_int_equal(fx_setup(&f, NULL), 0);
	tq_add(&f.q, &(struct tbuf){ DATA_GPA, 16, false }, 1);
	virtio_process(&f.rng.vdev, 0);
	assert_true(f.rng.vdev.status & VIRTIO_STATUS_NEEDS_RESET);
	assert_false(virtio_live(&f.rng.vdev));
	/* Further kicks do nothing until the driver resets the device. */
	tq_add(&f.q, &(struct tbuf){ DATA_GPA, 16, true }, 1);
	virtio_process(&f.rng.vdev, 0);
	assert_false(tq_used(&f.q, &id, &len));
	fx_teardown(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(getrandom_fills_and_differs),
		cmocka_unit_test(chain_of_several_buffers_is_filled),
		cmocka_unit_test(request_is_capped),
		cmocka_unit_test(file_source_gives_its_bytes_then_waits),
		cmocka_unit_test(queue_stop_drops_the_held_request),
		cmocka_unit_test(any_layout),
		cmocka_unit_test(missing_source_is_a_config_error),
		cmocka_unit_test(readable_buffer_needs_reset),
		cmocka_unit_test(no_writable_buffer_needs_reset),
	};

	return RUN_ON_BOTH_RINGS(tests);
}
