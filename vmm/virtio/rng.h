/* virtio entropy device (VIRTIO 1.x section 5.4): one request queue whose writable buffers the
 * device fills with random bytes from getrandom(2) or from a file or character device. */
#ifndef VMM_VIRTIO_RNG_H
#define VMM_VIRTIO_RNG_H

#include <stdbool.h>

#include "virtio/virtio.h"

#define RNG_QUEUE_SIZE 256
/* Bytes one request gets at most; the driver reads the used length, so a short fill is fine. */
#define RNG_MAX_REQUEST (64 * 1024)

struct rng_dev {
	struct virtio_dev vdev; /* what the transports attach to */
	int fd;                 /* the source, or -1 for getrandom(2) */
	char *path;             /* the source's path, for messages */
	bool warned;            /* the source ran out or failed: logged once */
	bool held;              /* elem is a request the source could not serve yet */
	bool watching;          /* fd is in the event loop, waiting to become readable */
	struct virtq_elem *elem; /* the chain being filled (large: not on the stack) */
};

/* source: NULL for getrandom(2), else a path opened for reading now. A path that cannot be opened
 * is a configuration error: one message that `what` begins ("--rng source=PATH"), and -errno. */
int rng_init(struct rng_dev *r, const char *name, const char *source, const char *what,
	     const struct guest_mem *mem, struct event_loop *loop);
/* Safe on a zeroed or half-initialised device. */
void rng_destroy(struct rng_dev *r);

#endif
