/* The kernel's vhost (drivers/vhost/) as the datapath of a virtio device: the kernel's worker
 * thread reads the guest's rings and moves the data, vmm keeps everything else (the transport,
 * status and features, configuration, any queue the kernel does not serve).
 *
 * One struct vhost is one /dev/vhost-* descriptor serving a run of the device's queues as its
 * rings 0, 1, ... (virtio-net: one per queue pair, receive and transmit). Once for any device:
 *   - at setup (before the sandbox): VHOST_SET_OWNER, VHOST_GET_FEATURES, and the memory table,
 *     guest RAM as memory.h maps it, so the kernel can reach nothing else;
 *   - at the driver's DRIVER_OK (vhost_start, on a vCPU thread): the negotiated features, then
 *     per enabled queue its size, base 0, the rings' host addresses, the doorbell (the queue's
 *     kick_fd, taken out of vmm's loop while the kernel owns it), the interrupt eventfd and the
 *     error eventfd, and last the device's backend (vhost-net: the tap queue);
 *   - at reset, a queue stop, or a ring error the kernel reports: the backend detached, the
 *     doorbell given back to vmm's loop.
 *
 * Interrupts: where the transport has an eventfd that interrupts the driver with nothing more to
 * do (virtio_queue_irqfd: an unmasked MSI-X vector's irqfd), the kernel writes it and KVM injects
 * the interrupt, with no vmm thread in between. Everywhere else (INTx and virtio-mmio, whose ISR
 * byte must be set before the line rises; a masked vector, whose pending bit must be set; no
 * vector) the kernel signals a per-ring eventfd that vmm's loop watches, and vmm sends the
 * transport's interrupt (virtio_signal_queue). The transport says when its answer may have
 * changed (the type's irq_route op calls vhost_irq_route), and the kernel is told the new one.
 * The kernel does the EVENT_IDX suppression itself, so each signal is one the driver asked for.
 *
 * Locking: every function but vhost_open and vhost_close runs with the device's lock held. */
#ifndef VMM_BACKEND_VHOST_H
#define VMM_BACKEND_VHOST_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio/virtio.h"

#define VHOST_MAX_RINGS 2

/* The bits of a device's offer that the kernel's ring code must honour, whatever the device type:
 * the ring layout and the descriptor formats. vhost_offer drops those the kernel lacks. */
#define VHOST_RING_FEATURES                                                                        \
	((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_INDIRECT_DESC) |                         \
	 (1ULL << VIRTIO_F_EVENT_IDX) | (1ULL << VIRTIO_F_RING_PACKED) |                           \
	 (1ULL << VIRTIO_F_ANY_LAYOUT))

struct vhost;

struct vhost_ring {
	struct vhost *vh;
	unsigned q;       /* the device's queue index */
	int call_fd;      /* eventfd: the kernel's "used buffers" for this ring, relayed by vmm */
	int kernel_call;  /* what the kernel signals now: call_fd or the transport's irqfd */
	bool running;     /* the kernel serves the queue (it has the kick_fd) */
};

struct vhost {
	int fd;
	struct virtio_dev *dev;
	uint64_t features; /* VHOST_GET_FEATURES */
	int backend_fd;    /* vhost-net: the tap queue attached to every ring; -1 for none */
	int err_fd;        /* eventfd: the kernel found a ring it cannot use */
	unsigned nr_rings;
	struct vhost_ring rings[VHOST_MAX_RINGS];
	bool registered; /* call_fds and err_fd are in the device's loop */
};

/* Takes fd (an open /dev/vhost-*; closed by vhost_close, also on failure) to serve queues
 * [first_q, first_q + nr_rings) of d as its rings: VHOST_SET_OWNER, VHOST_GET_FEATURES, the
 * memory table, the eventfds watched in d->loop. backend_fd: what VHOST_NET_SET_BACKEND attaches
 * (kept open by the caller), or -1 when the device type has no such call. 0 or -errno. */
int vhost_open(struct vhost *vh, int fd, struct virtio_dev *d, unsigned first_q,
	       unsigned nr_rings, int backend_fd);
/* Stops the rings and closes what vhost_open made. Safe on a zeroed struct; the loop must be
 * stopped or the device idle. */
void vhost_close(struct vhost *vh);

/* A device's offer without the ring bits (VHOST_RING_FEATURES and the type's own `governed`
 * ones, e.g. virtio-net's MRG_RXBUF) that the kernel does not support. */
uint64_t vhost_offer(const struct vhost *vh, uint64_t offer, uint64_t governed);

/* DRIVER_OK: tells the kernel the negotiated features (those it knows of) and starts every ring
 * whose queue the driver enabled. 0 or -errno (logged); the rings started stay so until
 * vhost_stop. */
int vhost_start(struct vhost *vh);
/* Starts the ring of device queue q (an enabled queue not yet running: after a queue stop and a
 * new enable). 0 or -errno (logged). */
int vhost_ring_start(struct vhost *vh, unsigned q);
/* Reset: every ring stopped, doorbells back with vmm. */
void vhost_stop(struct vhost *vh);
/* The driver stopped device queue q alone: its ring stops, its doorbell is vmm's again. Nothing
 * when q is not one of this vhost's rings or not running. */
void vhost_ring_stop(struct vhost *vh, unsigned q);
/* The transport's interrupt routing may have changed: each running ring's interrupt goes to the
 * transport's irqfd where there is one, else to vmm's relay. */
void vhost_irq_route(struct vhost *vh);
/* Whether device queue q is one of this vhost's rings, and running. */
bool vhost_ring_running(const struct vhost *vh, unsigned q);

#endif
