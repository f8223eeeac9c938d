/* A Linux tap device (drivers/net/tun.c) as a network backend: one file descriptor per queue,
 * each frame preceded by a 10-byte struct virtio_net_hdr (IFF_VNET_HDR), so checksum and
 * segmentation offloads pass between the guest and the host's network stack untouched. */
#ifndef VMM_BACKEND_TAP_H
#define VMM_BACKEND_TAP_H

#include <net/if.h>
#include <stdbool.h>

#define TAP_MAX_QUEUES 16
#define TAP_VNET_HDR   10 /* the header on the tap's frames: struct virtio_net_hdr, no num_buffers */

/* TUNSETOFFLOAD bits (linux/if_tun.h): what the tap may hand us, i.e. what the guest receives. */
#define TAP_OFFLOAD_CSUM    0x01
#define TAP_OFFLOAD_TSO4    0x02
#define TAP_OFFLOAD_TSO6    0x04
#define TAP_OFFLOAD_TSO_ECN 0x08
#define TAP_OFFLOAD_UFO     0x10

struct tap {
	char name[IFNAMSIZ];
	unsigned nr_queues;
	int fds[TAP_MAX_QUEUES]; /* non-blocking; -1 when closed */
	unsigned offloads;       /* TAP_OFFLOAD_* the tap accepts (UFO is gone from some kernels) */
	bool created;            /* vmm made it: it goes away when the last fd closes */
};

/* Opens tap device `name` with nr_queues queues (a multi_queue tap when more than one), or
 * creates one when name is "" (needs CAP_NET_ADMIN), brings it up and logs its name. `what` names
 * the option in messages, which say how to fix the problem (`ip tuntap add ...`). 0 or -errno. */
int tap_open(struct tap *t, const char *name, unsigned nr_queues, const char *what);
void tap_close(struct tap *t);
/* TUNSETOFFLOAD: the device-wide offloads (TAP_OFFLOAD_*) of frames the tap hands us, within
 * t->offloads (none: nothing to do, and so a tap stand-in, a socket, works in tests). */
int tap_set_offloads(struct tap *t, unsigned offloads);
/* Attaches queue q to the device, or detaches it: the kernel steers no frames to a detached
 * queue, and its fd must not be read. A single-queue tap has nothing to do. 0 or -errno. */
int tap_enable_queue(struct tap *t, unsigned q, bool enable);
/* The device's MTU (SIOCGIFMTU), or -errno. */
int tap_get_mtu(const struct tap *t);

#endif
