/* The 9P transport device without a transport: the test plays the driver, building rings in guest
 * memory, and sends 9P messages through the queue as Linux's 9pnet_virtio does (the request
 * readable, room for the reply writable), framed in odd ways, and across a reset. The 9P server
 * itself, and the framing of every message type it serves, is test_p9.c's. Every test runs on
 * packed and on split rings. */
#include <dirent.h>
#include <errno.h>
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
#include "virtio/9p.h"

#include "driver_ring.h"

#define SCAT_R_GPA TEST_GPA(0x200000)
#define SCAT_W_GPA TEST_GPA(0x280000)
#define REPLY_GPA  (DATA_GPA + 0x8000)
#define P9_RLERROR  7
#define P9_TVERSION 100
#define P9_TATTACH  104

struct fx {
	char dir[64];
	struct guest_mem mem;
	struct event_loop loop;
	struct v9p_dev v;
	struct tq q;
};

static void fake_signal(struct virtio_dev *d, int q)
{
}

static const struct virtio_transport_ops fake_transport = { .signal = fake_signal };

/* What a driver does after every reset: features (MOUNT_TAG and the ring layout), the queue,
 * DRIVER_OK. */
static void driver_start(struct fx *f)
{
	struct virtio_dev *d = &f->v.vdev;

	pthread_mutex_lock(&d->lock);
	tq_negotiate(d, 1u << VIRTIO_9P_MOUNT_TAG);
	tq_setup(d, 0, &f->q, &f->mem);
	virtio_set_status(d, d->status | VIRTIO_STATUS_DRIVER_OK);
	assert_true(virtio_live(d));
	pthread_mutex_unlock(&d->lock);
}

static void fx_setup(struct fx *f)
{
	memset(f, 0, sizeof(*f));
	strcpy(f->dir, "/tmp/vmm-9p-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(gmem_init(&f->mem, 4 << 20), 0);
	assert_int_equal(event_loop_init(&f->loop, "test"), 0);
	assert_int_equal(v9p_init(&f->v, "fs0", f->dir, "share", false, "--fs path=test", &f->mem,
				  &f->loop),
			 0);
	f->v.vdev.transport = &fake_transport;
	driver_start(f);
}

static void fx_teardown(struct fx *f)
{
	v9p_destroy(&f->v);
	event_loop_destroy(&f->loop);
	gmem_free(&f->mem);
	assert_int_equal(rmdir(f->dir), 0);
}

static unsigned ncuts(const uint32_t *c, unsigned max)
{
	unsigned n = 0;

	while (n < max && c[n])
		n++;
	return n;
}

/* Sends the message msg[0..len) cut as rc says (zero-ended), with room for the reply cut as wc
 * says; returns the reply's length, the reply in rep. */
static uint32_t rpc_framed(struct fx *f, const uint8_t *msg, size_t len, const uint32_t *rc,
			   const uint32_t *wc, uint8_t *rep, size_t cap)
{
	unsigned rn = ncuts(rc, 4), wn = ncuts(wc, 4);
	struct tbuf b[8];
	uint32_t id, used;
	uint16_t head;

	assert_int_equal(tq_scatter(&f->q, SCAT_R_GPA, msg, rc, rn, false, b), len);
	assert_true(tq_scatter(&f->q, SCAT_W_GPA, NULL, wc, wn, true, b + rn) <= cap);
	head = tq_add(&f->q, b, rn + wn);
	virtio_process(&f->v.vdev, 0);
	assert_true(tq_used(&f->q, &id, &used));
	assert_int_equal(id, head);
	assert_true(used <= cap);
	tq_gather(&f->q, b + rn, wn, rep, used);
	assert_true(virtio_live(&f->v.vdev));
	return used;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The tag in the configuration area: le16 length, then the bytes. */
static void config_holds_the_tag(void **state)
{
	struct fx f;
	uint8_t c[8];

	fx_setup(&f);
	assert_true(virtio_get_features(&f.v.vdev, 0) & 1u << VIRTIO_9P_MOUNT_TAG);
	assert_int_equal(f.v.vdev.config_len, 2 + 5);
	virtio_config_read(&f.v.vdev, 0, c, 7);
	assert_memory_equal(c, "\5\0share", 7);
	fx_teardown(&f);
}

/* Any layout (2.7.4): a message cut inside its size, its type and tag, its fields and strings,
 * and its reply spread over writable buffers as they fall, served the same every time. */
static void any_layout(void **state)
{
	static const uint32_t tv_cuts[][4] = { { 21 }, { 3, 4, 14 }, { 1, 1, 1, 18 }, { 12, 9 } };
	static const uint32_t rv_cuts[][4] = { { 64 }, { 5, 2, 57 }, { 1, 63 }, { 11, 4, 6, 43 } };
	static const uint32_t ta_cuts[][4] = { { 24 }, { 6, 10, 8 }, { 20, 4 }, { 2, 2, 2, 18 } };
	/* Tversion: size, type 100, tag NOTAG, msize 8192, "9P2000.L". */
	uint8_t tv[21] = { 21, 0, 0, 0, 100, 0xff, 0xff, 0, 0x20, 0, 0, 8, 0 };
	/* Tattach: size, type 104, tag 1, fid 0, afid NOFID, uname "u", aname "", n_uname. */
	uint8_t ta[24] = { 24, 0, 0, 0, 104, 1, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 1, 0, 'u',
			   0, 0 };
	uint8_t rep[64];
	struct fx f;

	memcpy(tv + 13, "9P2000.L", 8);
	put32(ta + 20, (uint32_t)getuid());
	fx_setup(&f);
	for (unsigned c = 0; c < 4; c++) {
		uint32_t len = rpc_framed(&f, tv, sizeof(tv), tv_cuts[c], rv_cuts[c], rep,
					  sizeof(rep));

		assert_int_equal(len, 21);
		assert_int_equal(get32(rep), 21);
		assert_int_equal(rep[4], 101); /* Rversion */
		assert_int_equal(get32(rep + 7), 8192);
		assert_memory_equal(rep + 11, "\10\0009P2000.L", 10);
	}
	for (unsigned c = 0; c < 4; c++) {
		uint32_t len = rpc_framed(&f, ta, sizeof(ta), ta_cuts[c], rv_cuts[c], rep,
					  sizeof(rep));

		assert_int_equal(len, 20);
		assert_int_equal(rep[4], 105); /* Rattach */
		assert_int_equal(rep[5], 1);
		assert_int_equal(rep[7], 0x80); /* the root's qid: a directory */
		/* Clunk fid 0 for the next attach: Tclunk framed in three. */
		uint8_t tc[11] = { 11, 0, 0, 0, 120, 2, 0, 0, 0, 0, 0 };
		len = rpc_framed(&f, tc, sizeof(tc), (const uint32_t[]){ 2, 5, 4, 0 },
				 (const uint32_t[]){ 3, 8, 0 }, rep, sizeof(rep));
		assert_int_equal(len, 7);
		assert_int_equal(rep[4], 121); /* Rclunk */
	}
	fx_teardown(&f);
}

/* A message as one readable buffer, the reply room as one writable: size[4] type[1] tag[2],
 * then the body. */
static size_t put_str(uint8_t *p, const char *s)
{
	uint16_t n = (uint16_t)strlen(s);

	memcpy(p, &n, 2);
	memcpy(p + 2, s, n);
	return 2u + n;
}

/* Sends the message (type, then body of len bytes) as one chain; returns the reply's type. */
static uint8_t send(struct fx *f, uint8_t type, const uint8_t *body, uint32_t len)
{
	uint8_t *m = gp(&f->q, DATA_GPA, 7 + len);
	uint32_t size = 7 + len, id, used;
	uint16_t tag = 1;

	memcpy(m, &size, 4);
	m[4] = type;
	memcpy(m + 5, &tag, 2);
	memcpy(m + 7, body, len);
	tq_add(&f->q, (struct tbuf[]){ { DATA_GPA, size, false }, { REPLY_GPA, 8192, true } }, 2);
	virtio_process(&f->v.vdev, 0);
	assert_true(tq_used(&f->q, &id, &used));
	assert_true(used >= 7);
	return *(uint8_t *)gp(&f->q, REPLY_GPA + 4, 1);
}

static uint8_t tversion(struct fx *f)
{
	uint8_t b[64];
	uint32_t msize = 65536;

	memcpy(b, &msize, 4);
	return send(f, P9_TVERSION, b, (uint32_t)(4 + put_str(b + 4, "9P2000.L")));
}

static uint8_t tattach(struct fx *f, uint32_t fid)
{
	uint8_t b[64];
	uint32_t nofid = ~0u, uid = 0;
	size_t n = 0;

	memcpy(b, &fid, 4);
	memcpy(b + 4, &nofid, 4);
	n = 8 + put_str(b + 8, "");
	n += put_str(b + n, "");
	memcpy(b + n, &uid, 4);
	return send(f, P9_TATTACH, b, (uint32_t)(n + 4));
}

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* A driver's reset arrives on a vCPU thread, whose sandbox allows no close(): the session's
 * descriptors must be let go on the device's own thread, before the next session's first request
 * (a Linux guest powering off with the share still mounted as its root resets the device). */
static void reset_leaves_the_fids_to_the_device_thread(void **state)
{
	struct fx f;
	int before, attached;

	fx_setup(&f);
	assert_int_equal(tversion(&f), P9_TVERSION + 1);
	before = open_fds();
	assert_int_equal(tattach(&f, 7), P9_TATTACH + 1);
	attached = open_fds();
	assert_true(attached > before);

	pthread_mutex_lock(&f.v.vdev.lock);
	virtio_reset(&f.v.vdev);
	pthread_mutex_unlock(&f.v.vdev.lock);
	assert_int_equal(open_fds(), attached); /* nothing closed on the resetting thread */

	driver_start(&f);
	assert_int_equal(tversion(&f), P9_TVERSION + 1);
	assert_int_equal(open_fds(), before); /* the old session's fid is gone */
	assert_int_equal(tattach(&f, 7), P9_TATTACH + 1); /* and its number free again */
	fx_teardown(&f);
}

/* Without a new Tversion, the old session's fids are still gone: an attach is refused until the
 * driver has agreed a version again. */
static void reset_ends_the_session(void **state)
{
	struct fx f;

	fx_setup(&f);
	assert_int_equal(tversion(&f), P9_TVERSION + 1);
	assert_int_equal(tattach(&f, 7), P9_TATTACH + 1);
	pthread_mutex_lock(&f.v.vdev.lock);
	virtio_reset(&f.v.vdev);
	pthread_mutex_unlock(&f.v.vdev.lock);
	driver_start(&f);
	assert_int_equal(tattach(&f, 8), P9_RLERROR);
	fx_teardown(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(config_holds_the_tag),
		cmocka_unit_test(any_layout),
		cmocka_unit_test(reset_leaves_the_fids_to_the_device_thread),
		cmocka_unit_test(reset_ends_the_session),
	};

	return RUN_ON_BOTH_RINGS(tests);
}
