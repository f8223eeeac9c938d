/* virtio SCSI host (VIRTIO 1.x section 5.6): one target (0) whose logical units 0..n-1 are disk
 * images, a control queue for task management, an event queue and one or more request queues.
 * The SCSI commands themselves are scsi_disk.c; this file is the transport and the I/O. */
#ifndef VMM_VIRTIO_SCSI_H
#define VMM_VIRTIO_SCSI_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/disk.h"
#include "virtio/scsi_disk.h"
#include "virtio/virtio.h"

#define SCSI_QUEUE_SIZE	    128
#define SCSI_MAX_REQ_QUEUES 16
#define SCSI_SENSE_SIZE	    96 /* the defaults the spec fixes for sense_size and cdb_size */
#define SCSI_CDB_SIZE	    32

/* Queue indices (5.6.2). */
#define SCSI_CONTROLQ 0
#define SCSI_EVENTQ   1
#define SCSI_REQUESTQ 2 /* the first request queue */

struct virtio_scsi_config {
	uint32_t num_queues;
	uint32_t seg_max;
	uint32_t max_sectors;
	uint32_t cmd_per_lun;
	uint32_t event_info_size;
	uint32_t sense_size;
	uint32_t cdb_size;
	uint16_t max_channel;
	uint16_t max_target;
	uint32_t max_lun;
} __attribute__((packed));

struct scsi_req;

/* One request queue: its own disk_io per LUN, so queues never wait for each other. */
struct scsi_rq {
	struct scsi_dev *s;
	unsigned index;		/* 0 for the first request queue (virtqueue 2) */
	struct disk_io *io;	/* [nr_luns] */
	struct scsi_req **reqs; /* every request ever allocated, at most the queue size */
	unsigned nr_reqs;
	struct scsi_req *free;		   /* idle requests */
	struct scsi_req *wait, *wait_tail; /* popped, waiting for a disk slot (-EAGAIN) */
	bool need_notify; /* answers pushed since the driver was last interrupted */
	bool starved;	  /* the handler stopped: every request was in use */
};

struct scsi_dev {
	struct virtio_dev vdev; /* what the transports attach to */
	struct virtio_scsi_config config;
	unsigned nr_luns, nr_rq;
	struct disk **disks;	 /* [nr_luns], the caller's */
	struct scsi_disk *luns;	 /* [nr_luns], what the command layer sees */
	struct scsi_rq *rq;	 /* [nr_rq] */
	unsigned *lun_busy;	 /* [nr_luns]: requests popped and not yet completed */
	unsigned epoch;		 /* bumped by reset: older requests' answers are dropped */
	struct virtq_elem *ctrl; /* the control request being handled (large: not on the stack) */
	bool tmf_held;		 /* ctrl is a TMF waiting for requests of tmf_lun to complete */
	int tmf_lun;		 /* -1: of every LUN */
};

/* luns: nr_luns (1..SCSI_MAX_LUNS) open disks, LUN i is luns[i]; they stay the caller's and must
 * outlive the device. nr_queues: request queues, 1..SCSI_MAX_REQ_QUEUES. 0 or -errno, with a
 * message naming the device. */
int scsi_init(struct scsi_dev *s, const char *name, struct disk **luns, unsigned nr_luns,
	      unsigned nr_queues, const struct guest_mem *mem, struct event_loop *loop);
/* Waits for the I/O in flight, then frees. The loop must not be serving the device any more
 * (stopped). Safe on a zeroed or half-initialised device. No lock held. */
void scsi_destroy(struct scsi_dev *s);

#endif
