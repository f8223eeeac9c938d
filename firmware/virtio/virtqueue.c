/* What the two ring layouts share: allocation, the checks on a chain, and the calls that pick the
 * layout. The layouts themselves are in split.c and packed.c. */
#include "virtio/virtqueue.h"
#include "lib/io.h"
#include "lib/mem.h"

int vq_init(struct vq *vq, struct virtio_dev *d, uint16_t index, uint16_t size,
	    const struct virtio_ring_opts *opts)
{
	memset(vq, 0, sizeof(*vq));
	vq->dev = d;
	vq->index = index;
	vq->size = size;
	vq->packed_ring = opts->packed;
	vq->indirect = opts->indirect;
	vq->event_idx = opts->event_idx;
	vq->num_free = size;
	vq->token = mem_alloc(size * sizeof(*vq->token), 8);
	vq->writable = mem_alloc(size * sizeof(*vq->writable), 4);
	/* One indirect table per chain that can be in flight, so none is ever shared. */
	if (vq->indirect)
		vq->tables = mem_alloc((size_t)size * VQ_MAX_CHAIN * sizeof(struct virtq_desc), 16);
	if (!vq->token || !vq->writable || (vq->indirect && !vq->tables))
		return VIRTIO_ERR_NOMEM;
	return vq->packed_ring ? packed_init(vq) : split_init(vq);
}

/* What any chain must be: 1 to VQ_MAX_CHAIN buffers and no more than the ring's size (2.7.5.3.1,
 * 2.8.17), none empty, the device-readable ones before the device-writable ones (2.7.4.2, 2.8.17),
 * and a token to know it by. Sets the bytes the device may write, the most it can say it used. */
int vq_chain_check(const struct vq *vq, const struct vq_buf *bufs, unsigned n, const void *token,
		   uint32_t *writable)
{
	*writable = 0;
	if (n == 0 || n > VQ_MAX_CHAIN || n > vq->size || !token)
		return VIRTIO_ERR_INVAL;
	for (unsigned i = 0; i < n; i++) {
		if (bufs[i].len == 0 || (i && bufs[i - 1].device_writes && !bufs[i].device_writes))
			return VIRTIO_ERR_INVAL;
		if (bufs[i].device_writes)
			*writable += bufs[i].len;
	}
	return 0;
}

int vq_add_chain(struct vq *vq, const struct vq_buf *bufs, unsigned n, void *token)
{
	return vq->packed_ring ? packed_add_chain(vq, bufs, n, token)
			  : split_add_chain(vq, bufs, n, token);
}

bool vq_kick(struct vq *vq)
{
	bool needed;

	if (!vq->added)
		return false;
	needed = vq->packed_ring ? packed_kick_needed(vq) : split_kick_needed(vq);
	if (needed) {
		vq->dev->t->notify(vq->dev, vq);
		vq->kicks++;
	}
	return needed;
}

int vq_get_used(struct vq *vq, void **token, uint32_t *len)
{
	return vq->packed_ring ? packed_get_used(vq, token, len) : split_get_used(vq, token, len);
}

bool vq_has_used(struct vq *vq)
{
	return vq->packed_ring ? packed_has_used(vq) : split_has_used(vq);
}

int vq_wait_used(struct vq *vq, void **token, uint32_t *len)
{
	for (unsigned spins = 1;; spins++) {
		int ret = vq_get_used(vq, token, len);

		if (ret)
			return ret < 0 ? ret : 0;
		/* A ring read costs nothing; a register read is an exit to vmm. So only now and
		 * then ask whether the device gave up on us. A device that just never answers is
		 * for vmm's --timeout to end. */
		if (spins % 4096 == 0 && virtio_needs_reset(vq->dev))
			return VIRTIO_ERR_DEVICE;
		cpu_relax();
	}
}

void vq_interrupts(struct vq *vq, bool on)
{
	if (vq->packed_ring)
		packed_interrupts(vq, on);
	else
		split_interrupts(vq, on);
}
