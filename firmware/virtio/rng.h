/* The entropy device's driver (5.4): one queue, device-writable buffers it fills. */
#ifndef FW_VIRTIO_RNG_H
#define FW_VIRTIO_RNG_H

#include "virtio/virtqueue.h"

struct virtio_rng {
	struct virtio_dev *dev;
	struct vq vq; /* requestq */
};

int virtio_rng_init(struct virtio_rng *r, struct virtio_dev *d,
		    const struct virtio_ring_opts *opts);
/* Up to len bytes of entropy into buf; returns how many came (at least 1), or < 0. */
int virtio_rng_read(struct virtio_rng *r, void *buf, uint32_t len);

#endif
