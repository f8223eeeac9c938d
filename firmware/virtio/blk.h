/* The block device's driver (5.2): one request queue, requests of a header, data and a status
 * byte. */
#ifndef FW_VIRTIO_BLK_H
#define FW_VIRTIO_BLK_H

#include "virtio/virtqueue.h"

#define VIRTIO_BLK_F_RO    5
#define VIRTIO_BLK_F_FLUSH 9

#define VIRTIO_BLK_T_IN    0
#define VIRTIO_BLK_T_OUT   1
#define VIRTIO_BLK_T_FLUSH 4

#define VIRTIO_BLK_S_OK     0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2

#define SECTOR 512

/* struct virtio_blk_req up to data (5.2.6): what the device reads first. */
struct virtio_blk_req_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct virtio_blk {
	struct virtio_dev *dev;
	struct vq vq;      /* requestq */
	uint64_t capacity; /* in 512-byte sectors */
	struct virtio_blk_req_hdr *hdr;
	uint8_t *status;
};

int virtio_blk_init(struct virtio_blk *b, struct virtio_dev *d,
		    const struct virtio_ring_opts *opts);
/* Reads (write false) or writes the sectors from `sector` on, into or from the buffers data[0..n)
 * (together whole sectors; device_writes is set here) and waits. Returns the
 * request's status byte (VIRTIO_BLK_S_*), or < 0 when the ring or the device failed. */
int virtio_blk_rw(struct virtio_blk *b, bool write, uint64_t sector, struct vq_buf *data,
		  unsigned n);
/* Asks that what was written reach stable storage (VIRTIO_BLK_F_FLUSH); the status, or < 0. */
int virtio_blk_flush(struct virtio_blk *b);

#endif
