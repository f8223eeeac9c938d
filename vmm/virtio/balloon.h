/* virtio memory balloon (VIRTIO 1.x section 5.5): the guest gives pages back (inflate) and takes
 * them again (deflate); vmm returns what it is given to the host. Optionally guest memory
 * statistics (STATS_VQ), deflate on OOM, and free page reporting (pages the guest frees go back to
 * the host as they come). */
#ifndef VMM_VIRTIO_BALLOON_H
#define VMM_VIRTIO_BALLOON_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio/virtio.h"

#define BALLOON_QUEUE_SIZE 128
#define BALLOON_PAGE       4096 /* PFNs are in 4 KiB units whatever the guest's page size */

/* Feature bits (5.5.3). */
#define VIRTIO_BALLOON_F_MUST_TELL_HOST 0
#define VIRTIO_BALLOON_F_STATS_VQ       1
#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM 2
#define VIRTIO_BALLOON_F_FREE_PAGE_HINT 3
#define VIRTIO_BALLOON_F_PAGE_POISON    4
#define VIRTIO_BALLOON_F_PAGE_REPORTING 5

/* Queue indices (5.5.2). */
#define BALLOON_Q_INFLATE   0
#define BALLOON_Q_DEFLATE   1
#define BALLOON_Q_STATS     2
#define BALLOON_Q_FREE_PAGE 3
#define BALLOON_Q_REPORTING 4
#define BALLOON_QUEUES      5

/* Statistics tags (5.5.6.3.1): the index into balloon_stats.val. */
#define BALLOON_NR_STATS 10

struct balloon_config {
	uint64_t size;           /* bytes the balloon asks for at start */
	bool deflate_on_oom;     /* offer DEFLATE_ON_OOM */
	bool free_page_reporting; /* offer PAGE_REPORTING */
	unsigned stats_period;   /* seconds; 0: no statistics queue */
};

struct balloon_stats {
	uint64_t val[BALLOON_NR_STATS];
	uint16_t have;       /* bit t: the guest reports tag t */
	uint64_t updated_ns; /* CLOCK_MONOTONIC of the last report; 0: none yet */
};

/* The config space (5.5.4): little-endian always, legacy interface included. */
struct virtio_balloon_config {
	uint32_t num_pages;
	uint32_t actual;
	uint32_t free_page_hint_cmd_id;
	uint32_t poison_val;
};

/* What the host may read of the balloon, all of it at one moment. */
struct balloon_info {
	uint64_t target, actual; /* bytes: the host's target, what the driver says it gave */
	struct balloon_stats stats;
	uint64_t inflated, deflated, reported; /* pages */
	uint64_t refused;                      /* PFNs outside RAM or in the hole */
};

struct balloon_dev {
	struct virtio_dev vdev;
	struct virtio_balloon_config config;
	uint32_t target_pages; /* num_pages as the host set it (the driver may not change it) */
	/* Which queue does what, from the features at DRIVER_OK: Linux numbers the queues it uses
	 * without gaps (the reporting queue is 3, or 2 without statistics), the spec fixes 4. */
	int role[BALLOON_QUEUES];
	int timer_fd;         /* the statistics period, in the device's loop */
	bool stats_held;      /* stats_elem is the guest's buffer, used at the next period */
	bool stats_first;     /* legacy: the first buffer is not filled in yet (5.5.6.3.2) */
	struct balloon_stats stats;
	uint64_t inflated, deflated, reported; /* pages, for counters */
	uint64_t refused;     /* PFNs outside RAM or in the hole */
	struct virtq_elem *elem, *stats_elem;
};

/* 0 or -errno (a message is logged). */
int balloon_init(struct balloon_dev *b, const char *name, const struct balloon_config *cfg,
		 const struct guest_mem *mem, struct event_loop *loop);
/* Safe on a zeroed or half-initialised device. */
void balloon_destroy(struct balloon_dev *b);
/* The balloon's target, in bytes (whole 4 KiB pages; more than RAM is clipped). Any thread. */
void balloon_set_target(struct balloon_dev *b, uint64_t bytes);
/* The target, what the driver says it has given (config actual), its last statistics and the
 * counters, under one lock. Any thread. */
void balloon_get(struct balloon_dev *b, struct balloon_info *out);

#endif
