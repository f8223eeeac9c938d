/* virtio block device (VIRTIO 1.x section 5.2): one or more request queues over a disk image
 * (backend/disk), read and written asynchronously through io_uring, one ring per queue. */
#ifndef VMM_VIRTIO_BLK_H
#define VMM_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/disk.h"
#include "virtio/virtio.h"

#define BLK_QUEUE_SIZE 256
#define BLK_MAX_QUEUES 16
/* seg_max: a chain holds at most the queue size of descriptors, two of which are the header and
 * the status byte (Linux sizes its requests from this). */
#define BLK_SEG_MAX (BLK_QUEUE_SIZE - 2)
/* size_max: we have no limit of our own on one buffer; this one keeps seg_max * size_max (and so
 * any request that honours both) under 1 GiB, which a completion's int result can report. */
#define BLK_SIZE_MAX (4u << 20)
/* The data of one read or write, whatever the driver negotiated: longer is IOERR. */
#define BLK_MAX_DATA (1u << 30)
/* Discard and write-zeroes: segments per request (done one after the other) and sectors per
 * segment (2 GiB: a bounded amount of work for one fallocate). */
#define BLK_MAX_DWZ_SEG     32
#define BLK_MAX_DWZ_SECTORS (1u << 22)
#define BLK_ID_BYTES        20 /* GET_ID: the serial, NUL-padded, no NUL when 20 long */

/* Feature bits (5.2.3). GEOMETRY, LIFETIME, SECURE_ERASE and ZONED are not offered. */
#define VIRTIO_BLK_F_SIZE_MAX     1
#define VIRTIO_BLK_F_SEG_MAX      2
#define VIRTIO_BLK_F_RO           5
#define VIRTIO_BLK_F_BLK_SIZE     6
#define VIRTIO_BLK_F_FLUSH        9
#define VIRTIO_BLK_F_TOPOLOGY     10
#define VIRTIO_BLK_F_CONFIG_WCE   11
#define VIRTIO_BLK_F_MQ           12
#define VIRTIO_BLK_F_DISCARD      13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Request types (5.2.6). */
#define VIRTIO_BLK_T_IN           0
#define VIRTIO_BLK_T_OUT          1
#define VIRTIO_BLK_T_FLUSH        4
#define VIRTIO_BLK_T_FLUSH_OUT    5 /* legacy: FLUSH's synonym */
#define VIRTIO_BLK_T_GET_ID       8
#define VIRTIO_BLK_T_DISCARD      11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

/* Status byte values. */
#define VIRTIO_BLK_S_OK     0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_WZ_F_UNMAP 1 /* struct virtio_blk_discard_write_zeroes flags */

/* The configuration area up to the write-zeroes fields (the secure-erase and zoned ones belong to
 * features not offered). Little-endian; x86 hosts and guests only. */
struct virtio_blk_config {
	uint64_t capacity; /* 512-byte sectors */
	uint32_t size_max;
	uint32_t seg_max;
	uint16_t cylinders; /* geometry: not offered, 0 */
	uint8_t heads;
	uint8_t sectors;
	uint32_t blk_size;
	uint8_t physical_block_exp; /* topology */
	uint8_t alignment_offset;
	uint16_t min_io_size;
	uint32_t opt_io_size;
	uint8_t writeback; /* CONFIG_WCE: 1 writeback, 0 write-through; the driver may write it */
	uint8_t unused0;
	uint16_t num_queues;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap;
	uint8_t unused1[3];
} __attribute__((packed));

/* The request header, readable, at the start of every chain. */
struct virtio_blk_outhdr {
	uint32_t type;
	uint32_t reserved; /* legacy ioprio: ignored */
	uint64_t sector;
} __attribute__((packed));

/* One segment of a discard or write-zeroes request. */
struct virtio_blk_discard_write_zeroes {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
} __attribute__((packed));

struct blk_dev;
struct blk_req;

struct blk_queue {
	struct blk_dev *blk;
	unsigned index;
	struct disk_io io;      /* this queue's own io_uring, depth BLK_QUEUE_SIZE */
	struct virtq_elem *elem; /* scratch for popping (large: not on the stack) */
	struct blk_req *held;    /* popped, not yet submitted: the ring was full (-EAGAIN) */
	unsigned inflight;       /* requests submitted whose callback has not run */
	bool need_notify;        /* used buffers pushed since the last virtio_notify */
};

struct blk_dev {
	struct virtio_dev vdev; /* what the transports attach to */
	struct disk *disk;      /* the caller's; open for as long as the device lives */
	char id[BLK_ID_BYTES];  /* GET_ID answer: the serial, NUL-padded */
	unsigned nr_queues;
	struct blk_queue *queues;
	bool warned; /* an I/O error was logged at warn level; later ones at debug */
	bool writeback; /* the cache mode: writes may sit in the page cache until a flush */
	struct virtio_blk_config config;
};

/* A device over `disk`, which the caller opened with disk_open (so that a bad path is found while
 * reading the configuration) and closes after blk_destroy. serial: NULL or up to 20 bytes, the
 * guest's /sys/block/vdX/serial. nr_queues: 1..BLK_MAX_QUEUES request queues; every queue has
 * its own io_uring, and all are served on `loop`. 0 or -errno, with a message. */
int blk_init(struct blk_dev *b, const char *name, struct disk *disk, const char *serial,
	     unsigned nr_queues, const struct guest_mem *mem, struct event_loop *loop);
/* Waits for the requests in flight, then frees the device (not the disk). Call it before guest
 * memory goes away, with the loop stopped. Safe on a zeroed or half-initialised device. */
void blk_destroy(struct blk_dev *b);

#endif
