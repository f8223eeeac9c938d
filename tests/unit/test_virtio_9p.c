/* The virtio-9p device without a transport: the test plays the driver, sending 9P messages through
 * the queue as Linux's 9pnet_virtio does (the request readable, room for the reply writable). The
 * 9P server itself is test_p9.c's. */
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

#define REPLY_GPA (DATA_GPA + 0x8000)
#define P9_RLERROR 7
#define P9_TVERSION 100
#define P9_TATTACH  104

/* ---- fixture ---- */

struct fx {
	struct guest_mem mem;
	struct event_loop loop;
	struct v9p_dev fs;
	struct tq q;
	char dir[32];
};

static void fake_signal(struct virtio_dev *d, int q)
{
}

static const struct virtio_transport_ops fake_transport = { .signal = fake_signal };

/* What a driver does after every reset: features (MOUNT_TAG and the ring layout), the queue,
 * DRIVER_OK. */
static void driver_start(struct fx *f)
{
	struct virtio_dev *d = &f->fs.vdev;

	pthread_mutex_lock(&d->lock);
	virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	virtio_set_driver_features(d, 0, 1u << VIRTIO_9P_MOUNT_TAG);
	virtio_set_driver_features(d, 1, (uint32_t)((test_ring_features() >> 32) | 1));
	virtio_set_status(d, d->status | VIRTIO_STATUS_FEATURES_OK);
	tq_setup(d, 0, &f->q, &f->mem);
	virtio_set_status(d, d->status | VIRTIO_STATUS_DRIVER_OK);
	assert_true(virtio_live(d));
	pthread_mutex_unlock(&d->lock);
}

static void fx_setup(struct fx *f)
{
	memset(f, 0, sizeof(*f));
	strcpy(f->dir, "/tmp/vmm-v9p-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(gmem_init(&f->mem, 4 << 20), 0);
	assert_int_equal(event_loop_init(&f->loop, "test"), 0);
	assert_int_equal(v9p_init(&f->fs, "fs0", f->dir, "share", false, "--fs path", &f->mem,
				  &f->loop),
			 0);
	f->fs.vdev.transport = &fake_transport;
	driver_start(f);
}

static void fx_teardown(struct fx *f)
{
	v9p_destroy(&f->fs);
	event_loop_destroy(&f->loop);
	gmem_free(&f->mem);
	rmdir(f->dir);
}

/* ---- 9P messages: size[4] type[1] tag[2], then the body ---- */

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
	virtio_process(&f->fs.vdev, 0);
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

/* ---- tests ---- */

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

	pthread_mutex_lock(&f.fs.vdev.lock);
	virtio_reset(&f.fs.vdev);
	pthread_mutex_unlock(&f.fs.vdev.lock);
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
	pthread_mutex_lock(&f.fs.vdev.lock);
	virtio_reset(&f.fs.vdev);
	pthread_mutex_unlock(&f.fs.vdev.lock);
	driver_start(&f);
	assert_int_equal(tattach(&f, 8), P9_RLERROR);
	fx_teardown(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(reset_leaves_the_fids_to_the_device_thread),
		cmocka_unit_test(reset_ends_the_session),
	};

	return RUN_ON_BOTH_RINGS(tests);
}
