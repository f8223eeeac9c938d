#include "virtio/rng.h"
#include "event.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <unistd.h>

/* One queue_notify run fills at most this much, then re-kicks itself, so a driver that posts a
 * full ring of large buffers cannot hold the I/O thread (and the devices sharing it) for long. */
#define RNG_MAX_BATCH (1024 * 1024)

/* The source became readable again: run the queue, whose held request is waiting for it. */
static void rng_source_ready(void *opaque, uint32_t events)
{
	struct rng_dev *r = opaque;

	virtio_kick(&r->vdev, 0);
}

/* A character device with nothing to give right now: wake the queue when it has some. */
static void rng_wait_source(struct rng_dev *r)
{
	uint32_t ev = EPOLLIN | EPOLLONESHOT;

	if (!r->vdev.loop)
		return;
	if ((r->watching ? event_mod : event_add)(r->vdev.loop, r->fd, ev, rng_source_ready, r) ==
	    0)
		r->watching = true;
}

/* Reads entropy into iov[0..n); returns the count, 0 when the source has nothing now. The spec
 * wants at least one byte per request (5.4.6.1), so a request the source cannot serve waits
 * (rng_queue_notify holds it) rather than completing empty. */
static size_t rng_read(struct rng_dev *r, const struct iovec *iov, unsigned n)
{
	size_t done = 0;
	ssize_t got = 0;

	if (r->fd >= 0) {
		/* One read of a file or device per request, into all its buffers: it gives what it
		 * has, however the driver split them. */
		do
			got = readv(r->fd, iov, (int)n);
		while (got < 0 && errno == EINTR);
		if (got > 0)
			return (size_t)got; /* a short read: the driver takes what came */
	} else {
		/* getrandom blocks only before the host's pool is initialised, long before a VM
		 * runs; it fills one buffer a call. */
		for (unsigned i = 0; i < n; i++) {
			do
				got = getrandom(iov[i].iov_base, iov[i].iov_len, 0);
			while (got < 0 && errno == EINTR);
			if (got <= 0)
				break;
			done += (size_t)got;
			if ((size_t)got < iov[i].iov_len)
				break;
		}
		if (done)
			return done;
	}
	if (got < 0 && errno == EAGAIN) {
		rng_wait_source(r);
	} else if (!r->warned) {
		/* A regular file that has run out, or an error: repeating bytes would hand the guest
		 * entropy it has already seen, so its requests wait, and its reads of /dev/hwrng
		 * block. */
		log_warn("%s: %s: %s; entropy requests wait", r->vdev.name,
			 r->path ? r->path : "getrandom", got == 0 ? "used up" : strerror(errno));
		r->warned = true;
	}
	return 0;
}

/* Fills the chain's writable buffers, at most RNG_MAX_REQUEST bytes; returns the bytes written. */
static size_t rng_fill(struct rng_dev *r, const struct virtq_elem *e)
{
	struct iovec iov[IOV_MAX];
	unsigned n = iov_slice(e->iov + e->out_num, e->in_num, 0, RNG_MAX_REQUEST, iov, IOV_MAX);

	return rng_read(r, iov, n);
}

static void rng_queue_notify(struct virtio_dev *d, unsigned q)
{
	struct rng_dev *r = d->priv;
	struct virtq *vq = &d->queues[q].vq;
	struct virtq_elem *e = r->elem;
	size_t batch = 0;
	bool pushed = false;

	for (;;) {
		int ret = r->held ? 1 : virtq_pop(vq, e);

		if (ret < 0) {
			virtio_fail(d, "requestq: malformed ring: %s", strerror(-ret));
			return;
		}
		if (ret == 0) {
			if (virtq_enable_notify(vq, true))
				continue; /* buffers came while notifications were re-enabled */
			break;
		}
		/* The chain shape is guest-controlled: the spec allows only writable buffers. */
		if (e->out_num || !e->in_num) {
			virtio_fail(d, "requestq: request with %u readable and %u writable buffers",
				    e->out_num, e->in_num);
			return;
		}
		size_t len = rng_fill(r, e);
		/* Nothing from the source: keep the request for the next kick or readable source. */
		r->held = len == 0;
		if (r->held)
			break;
		virtq_push(vq, e, (uint32_t)len);
		pushed = true;
		batch += len;
		if (batch >= RNG_MAX_BATCH) {
			virtio_kick(d, q); /* the rest on the next turn of the loop */
			break;
		}
	}
	if (pushed)
		virtio_notify(d, q);
}

static int rng_start(struct virtio_dev *d)
{
	return 0;
}

/* The only buffer the device may hold is a request the source could not serve. */
static void rng_reset(struct virtio_dev *d)
{
	((struct rng_dev *)d->priv)->held = false;
}

static void rng_queue_stop(struct virtio_dev *d, unsigned q)
{
	rng_reset(d);
}

static const struct virtio_dev_ops rng_ops = {
	.name = "rng",
	.device_id = VIRTIO_ID_RNG,
	.pci_class = 0x00ff00, /* unclassified device, "other" */
	.start = rng_start,
	.queue_notify = rng_queue_notify,
	.reset = rng_reset,
	.queue_stop = rng_queue_stop,
};

int rng_init(struct rng_dev *r, const char *name, const char *source, const char *what,
	     const struct guest_mem *mem, struct event_loop *loop)
{
	int ret;

	memset(r, 0, sizeof(*r));
	r->fd = -1;
	r->elem = malloc(sizeof(*r->elem));
	if (!r->elem)
		return -ENOMEM;
	if (source) {
		/* NONBLOCK: a character device that runs dry (a slow hardware RNG) says EAGAIN
		 * instead of stalling the I/O thread, and is watched until it has more. */
		r->fd = open(source, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (r->fd < 0) {
			ret = -errno;
			log_error("%s: %s", what, strerror(-ret));
			return ret;
		}
		r->path = strdup(source);
		if (!r->path) {
			rng_destroy(r);
			return -ENOMEM;
		}
	}
	/* No feature bits and no configuration area (5.4.3, 5.4.4). */
	ret = virtio_dev_init(&r->vdev, &rng_ops, r, name, mem, loop, 0, 1, RNG_QUEUE_SIZE);
	if (ret) {
		log_error("%s: %s", name, strerror(-ret));
		rng_destroy(r);
	}
	return ret;
}

void rng_destroy(struct rng_dev *r)
{
	if (r->watching)
		event_del(r->vdev.loop, r->fd);
	r->watching = false;
	virtio_dev_destroy(&r->vdev);
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	free(r->path);
	r->path = NULL;
	free(r->elem);
	r->elem = NULL;
}
