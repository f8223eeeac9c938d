/* virtio socket device (VIRTIO 1.x section 5.10) on the kernel's vhost-vsock: sockets of the
 * AF_VSOCK family between the guest (its CID in the configuration area) and the host (CID 2),
 * without a network. The kernel's vhost worker moves the packets of the rx and tx queues
 * between the guest's rings and the host's sockets; vmm keeps the transport, the configuration
 * area and the event queue, whose only event (VIRTIO_VSOCK_EVENT_TRANSPORT_RESET, after a
 * migration or a snapshot restored) vmm never has cause to send: the driver's event buffers stay
 * in the ring, unused. */
#ifndef VMM_VIRTIO_VSOCK_H
#define VMM_VIRTIO_VSOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/vhost.h"
#include "virtio/virtio.h"

#define VSOCK_QUEUE_SIZE 256
#define VSOCK_RXQ        0
#define VSOCK_TXQ        1
#define VSOCK_EVENTQ     2
#define VSOCK_QUEUES     3

/* Feature bits (5.10.3). */
#define VIRTIO_VSOCK_F_STREAM            0
#define VIRTIO_VSOCK_F_SEQPACKET         1
#define VIRTIO_VSOCK_F_NO_IMPLIED_STREAM 2

/* CIDs the guest may have (5.10.4): not 0, 1 (reserved), 2 (the host), and the upper 32 bits
 * zero with 0xffffffff reserved. */
#define VSOCK_CID_MIN 3
#define VSOCK_CID_MAX 0xfffffffeULL

struct vsock_dev {
	struct virtio_dev vdev; /* what the transports attach to */
	struct vhost vhost;     /* rx and tx, as vhost-vsock's rings 0 and 1 */
	uint64_t cid;
	uint8_t config[8]; /* struct virtio_vsock_config: le64 guest_cid */
	bool running;      /* VHOST_VSOCK_SET_RUNNING 1 is in force */
};

/* Opens /dev/vhost-vsock (before the sandbox closes the door) and claims the guest's CID on it:
 * the kernel gives each CID to one descriptor, host-wide. 0 and the descriptor in *fd, or -errno
 * with one message beginning `what` ("--vsock cid=N"): a missing module, no access, or a CID in
 * use (-EADDRINUSE) are the user's to fix. */
int vsock_open_vhost(uint64_t cid, const char *what, int *fd);
/* vhost_fd: from vsock_open_vhost with the same cid, taken (closed by vsock_destroy, also on
 * failure). 0 or -errno. */
int vsock_init(struct vsock_dev *v, const char *name, uint64_t cid, int vhost_fd,
	       const struct guest_mem *mem, struct event_loop *loop);
/* Safe on a zeroed or half-initialised device. */
void vsock_destroy(struct vsock_dev *v);

#endif
