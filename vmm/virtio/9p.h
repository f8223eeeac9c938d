/* virtio-9p, "9P transport" (device ID 9 in the standard's list, section 5; the standard names it
 * but does not define it: the layout here is Linux's and QEMU's, include/uapi/linux/virtio_9p.h):
 * a host directory the guest mounts with `mount -t 9p -o trans=virtio TAG DIR`. One request queue; each chain is one 9P
 * message (the driver's readable buffers) and room for its reply (its writable ones), served by
 * the 9P2000.L server in backend/p9.c on the device's own I/O thread. */
#ifndef VMM_VIRTIO_9P_H
#define VMM_VIRTIO_9P_H

#include <stdbool.h>

#include "backend/p9.h"
#include "virtio/virtio.h"

#define VIRTIO_9P_MOUNT_TAG   0   /* feature: the configuration area holds the mount tag */
#define V9P_QUEUE_SIZE        128 /* as Linux's VIRTQUEUE_NUM: its requests' scatter lists */
#define V9P_MAX_TAG           255 /* bytes in a mount tag */

struct v9p_dev {
	struct virtio_dev vdev; /* what the transports attach to */
	struct p9_server srv;
	struct virtq_elem *elem; /* the chain being served (large: not on the stack) */
	bool ended;              /* reset: the session is cleared before the next request */
	uint8_t config[2 + V9P_MAX_TAG]; /* tag_len (le16), then the tag, no NUL */
};

/* Serves dir as the mount tag `tag`; readonly refuses every change. A directory that cannot be
 * opened is a configuration error: one message that `what` begins ("--fs path=DIR"), -errno. */
int v9p_init(struct v9p_dev *f, const char *name, const char *dir, const char *tag, bool readonly,
	     const char *what, const struct guest_mem *mem, struct event_loop *loop);
/* Safe on a zeroed or half-initialised device. */
void v9p_destroy(struct v9p_dev *f);

#endif
