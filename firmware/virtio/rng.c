#include "virtio/rng.h"

int virtio_rng_init(struct virtio_rng *r, struct virtio_dev *d,
		    const struct virtio_ring_opts *opts)
{
	int ret;

	r->dev = d;
	/* No feature bits of its own (5.4.3) and one queue, requestq (5.4.2). */
	if ((ret = virtio_negotiate(d, 0, opts)) || (ret = virtio_queue_setup(d, &r->vq, 0, opts)))
		return ret;
	return virtio_driver_ok(d);
}

int virtio_rng_read(struct virtio_rng *r, void *buf, uint32_t len)
{
	struct vq_buf b = { .addr = (uintptr_t)buf, .len = len, .device_writes = true };
	void *token;
	uint32_t got;
	int ret;

	if ((ret = vq_add_chain(&r->vq, &b, 1, buf)))
		return ret;
	vq_kick(&r->vq);
	if ((ret = vq_wait_used(&r->vq, &token, &got)))
		return ret;
	/* At least one byte in every buffer it gives back (5.4.6.2); the length says how many. */
	return token == buf && got ? (int)got : VIRTIO_ERR_RING;
}
