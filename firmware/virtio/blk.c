#include "virtio/blk.h"
#include "lib/mem.h"

int virtio_blk_init(struct virtio_blk *b, struct virtio_dev *d,
		    const struct virtio_ring_opts *opts)
{
	int ret;

	b->dev = d;
	/* RO, which a driver should accept when offered (5.2.6.1), and FLUSH, since we can send
	 * flushes (5.2.5.1); not MQ, so one queue, requestq (5.2.2). */
	if ((ret = virtio_negotiate(d, BIT(VIRTIO_BLK_F_RO) | BIT(VIRTIO_BLK_F_FLUSH), opts)) ||
	    (ret = virtio_queue_setup(d, &b->vq, 0, opts)))
		return ret;
	/* capacity, the first field of struct virtio_blk_config (5.2.4). */
	b->capacity = virtio_config64(d, 0);
	/* One request at a time, so one header and one status byte serve all. */
	b->hdr = mem_alloc(sizeof(*b->hdr), 16);
	b->status = mem_alloc(1, 1);
	if (!b->hdr || !b->status)
		return VIRTIO_ERR_NOMEM;
	return virtio_driver_ok(d);
}

/* One request (5.2.6): the header the device reads, the data, the status byte it writes; the
 * header and the status each in a descriptor of their own, as legacy devices need (5.2.6.4). */
static int request(struct virtio_blk *b, uint32_t type, uint64_t sector, const struct vq_buf *data,
		   unsigned n)
{
	struct vq_buf chain[VQ_MAX_CHAIN];
	void *token;
	uint32_t len;
	int ret;

	if (n + 2 > VQ_MAX_CHAIN)
		return VIRTIO_ERR_INVAL;
	*b->hdr = (struct virtio_blk_req_hdr){ .type = type, .sector = sector };
	*b->status = 0xff; /* no status the device has: we see it write one */
	chain[0] = (struct vq_buf){ .addr = (uintptr_t)b->hdr, .len = sizeof(*b->hdr) };
	for (unsigned i = 0; i < n; i++)
		chain[1 + i] = data[i];
	chain[n + 1] = (struct vq_buf){
		.addr = (uintptr_t)b->status,
		.len = 1,
		.device_writes = true,
	};
	if ((ret = vq_add_chain(&b->vq, chain, n + 2, b->hdr)))
		return ret;
	vq_kick(&b->vq);
	if ((ret = vq_wait_used(&b->vq, &token, &len)))
		return ret;
	/* The used length is not checked beyond what the ring checks: legacy drivers should
	 * ignore it (5.2.6.3), and the status byte says it all. */
	return token == b->hdr ? *(volatile uint8_t *)b->status : VIRTIO_ERR_RING;
}

int virtio_blk_rw(struct virtio_blk *b, bool write, uint64_t sector, struct vq_buf *data,
		  unsigned n)
{
	uint64_t bytes = 0;

	for (unsigned i = 0; i < n; i++) {
		data[i].device_writes = !write;
		bytes += data[i].len;
	}
	/* Whole sectors, however the buffers cut them, and none past the end (5.2.6.1). */
	if (bytes % SECTOR || sector > b->capacity || bytes / SECTOR > b->capacity - sector)
		return VIRTIO_ERR_INVAL;
	return request(b, write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, sector, data, n);
}

int virtio_blk_flush(struct virtio_blk *b)
{
	if (!virtio_has(b->dev, VIRTIO_BLK_F_FLUSH))
		return VIRTIO_ERR_INVAL;
	/* Sector 0 and no data (5.2.6.1). */
	return request(b, VIRTIO_BLK_T_FLUSH, 0, NULL, 0);
}
