#include "virtio/9p.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Requests one queue_notify serves before it re-kicks itself, so that a guest that keeps the
 * ring full cannot hold the thread (and a device stop) for long. */
#define V9P_BATCH 64

static void v9p_queue_notify(struct virtio_dev *d, unsigned q)
{
	struct v9p_dev *f = d->priv;
	struct virtq_elem *e = f->elem;
	bool pushed = false;

	if (f->ended) {
		p9_reset(&f->srv);
		f->ended = false;
	}
	for (unsigned n = 0;; n++) {
		int ret;
		size_t len;

		if (n == V9P_BATCH) {
			virtio_kick(d, q); /* the rest on the next turn of the loop */
			break;
		}
		if ((ret = virtio_pop(d, q, e)) <= 0) {
			if (ret == 0 && virtq_enable_notify(&d->queues[q].vq, true))
				continue; /* buffers came while notifications were re-enabled */
			break;
		}
		if (!e->out_num || !e->in_num) {
			virtio_fail(d, "request with %u readable and %u writable buffers", e->out_num,
				    e->in_num);
			return;
		}
		len = p9_serve(&f->srv, e->iov, e->out_num, e->iov + e->out_num, e->in_num);
		if (!len) {
			virtio_fail(d, "request with no room for a reply");
			return;
		}
		virtq_push(&d->queues[q].vq, e, (uint32_t)len);
		pushed = true;
	}
	if (pushed)
		virtio_notify(d, q);
}

static int v9p_start(struct virtio_dev *d)
{
	return 0;
}

/* A reset ends the 9P session: the driver starts again with Tversion. The reset comes on the
 * thread of whoever wrote the status (a vCPU's), which does no file work and whose sandbox has no
 * close(): the fids are let go on the device's own thread, before the new session's first request
 * (or at exit). */
static void v9p_reset(struct virtio_dev *d)
{
	((struct v9p_dev *)d->priv)->ended = true;
}

static void v9p_log_state(struct virtio_dev *d)
{
	p9_log_state(&((struct v9p_dev *)d->priv)->srv);
}

static const struct virtio_dev_ops v9p_ops = {
	.name = "9p",
	.device_id = VIRTIO_ID_9P,
	.pci_class = 0x000200, /* as QEMU's virtio-9p-pci (base 0x00, sub 0x02) */
	.start = v9p_start,
	.queue_notify = v9p_queue_notify,
	.reset = v9p_reset,
	.log_state = v9p_log_state,
};

int v9p_init(struct v9p_dev *f, const char *name, const char *dir, const char *tag, bool readonly,
	     const char *what, const struct guest_mem *mem, struct event_loop *loop)
{
	size_t len = strlen(tag);
	int ret;

	memset(f, 0, sizeof(*f));
	f->srv.root = f->srv.proc_fd = -1;
	if (!len || len > V9P_MAX_TAG)
		return -EINVAL; /* config_parse checked it */
	if (!(f->elem = malloc(sizeof(*f->elem))))
		return -ENOMEM;
	if ((ret = p9_open(&f->srv, name, dir, readonly, what))) {
		v9p_destroy(f);
		return ret;
	}
	f->config[0] = (uint8_t)len;
	f->config[1] = (uint8_t)(len >> 8);
	memcpy(f->config + 2, tag, len);
	ret = virtio_dev_init(&f->vdev, &v9p_ops, f, name, mem, loop, 1ull << VIRTIO_9P_MOUNT_TAG, 1,
			      V9P_QUEUE_SIZE);
	if (ret) {
		log_error("%s: %s", name, strerror(-ret));
		v9p_destroy(f);
		return ret;
	}
	f->vdev.config = f->config;
	f->vdev.config_len = (uint32_t)(2 + len);
	log_info("%s: %s as tag %s%s%s", name, dir, tag, readonly ? ", read-only" : "",
		 f->srv.detached ? "" : " (not detached: vmm may not clone mounts)");
	return 0;
}

void v9p_destroy(struct v9p_dev *f)
{
	virtio_dev_destroy(&f->vdev);
	p9_close(&f->srv);
	free(f->elem);
	f->elem = NULL;
}
