#include "virtio/rng.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* One queue_notify run fills at most this much, then re-kicks itself, so a driver that posts a
 * full ring of large buffers cannot hold the I/O thread (and the devices sharing it) for long. */
#define RNG_MAX_BATCH (1024 * 1024)

/* Reads up to len bytes of entropy into p; returns the count, 0 when the source gave nothing. */
static size_t rng_read(struct rng_dev *r, uint8_t *p, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n;

		if (r->fd < 0)
			/* Only blocks before the host's pool is initialised, long before a VM runs;
			 * NONBLOCK makes sure the I/O thread never waits for it. */
			n = getrandom(p + done, len - done, GRND_NONBLOCK);
		else
			n = read(r->fd, p + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (errno != EAGAIN && !r->warned) {
				log_warn("%s: reading %s: %s", r->vdev.name,
					 r->path ? r->path : "getrandom", strerror(errno));
				r->warned = true;
			}
			break;
		}
		if (n == 0) {
			/* A regular file used as the source has run out. Repeating it would
			 * hand the guest bytes it has already seen as fresh entropy, and holding
			 * the requests would hang whoever reads /dev/hwrng; so requests complete
			 * with 0 bytes (Linux's hwrng thread then backs off and retries, a reader
			 * of /dev/hwrng sees end of file). The spec asks for at least one byte,
			 * which a finite source cannot promise: say so once. */
			if (!r->warned)
				log_warn("%s: %s is exhausted; entropy requests now get 0 bytes",
					 r->vdev.name, r->path);
			r->warned = true;
			break;
		}
		done += (size_t)n;
		if (r->fd >= 0)
			break; /* a short read from a file or device: the driver takes what came */
	}
	return done;
}

/* Fills the chain's writable buffers, at most RNG_MAX_REQUEST bytes; returns the bytes written. */
static size_t rng_fill(struct rng_dev *r, const struct virtq_elem *e)
{
	size_t done = 0;

	for (unsigned i = e->out_num; i < e->out_num + e->in_num && done < RNG_MAX_REQUEST; i++) {
		size_t want = e->iov[i].iov_len;
		size_t got;

		if (want > RNG_MAX_REQUEST - done)
			want = RNG_MAX_REQUEST - done;
		got = rng_read(r, e->iov[i].iov_base, want);
		done += got;
		if (got < want)
			break;
	}
	return done;
}

static void rng_queue_notify(struct virtio_dev *d, unsigned q)
{
	struct rng_dev *r = d->priv;
	struct virtq *vq = &d->queues[q].vq;
	struct virtq_elem *e = r->elem;
	size_t batch = 0;
	bool pushed = false;

	for (;;) {
		int ret = virtq_pop(vq, e);

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

/* The device holds no buffers between kicks: nothing to drop. */
static void rng_reset(struct virtio_dev *d)
{
}

static const struct virtio_dev_ops rng_ops = {
	.name = "rng",
	.device_id = VIRTIO_ID_RNG,
	.pci_class = 0x00ff00, /* unclassified device, "other" */
	.start = rng_start,
	.queue_notify = rng_queue_notify,
	.reset = rng_reset,
};

int rng_init(struct rng_dev *r, const char *name, const char *source, const struct guest_mem *mem,
	     struct event_loop *loop)
{
	int ret;

	memset(r, 0, sizeof(*r));
	r->fd = -1;
	r->elem = malloc(sizeof(*r->elem));
	if (!r->elem)
		return -ENOMEM;
	if (source) {
		/* NONBLOCK: a character device that runs dry (a slow hardware RNG) gives a short
		 * or empty answer instead of stalling the I/O thread. */
		r->fd = open(source, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (r->fd < 0) {
			ret = -errno;
			log_error("--rng source=%s: %s", source, strerror(-ret));
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
	virtio_dev_destroy(&r->vdev);
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	free(r->path);
	r->path = NULL;
	free(r->elem);
	r->elem = NULL;
}
