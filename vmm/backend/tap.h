/* A Linux tap device (drivers/net/tun.c) as a network backend: one file descriptor per queue,
 * each frame preceded by a 10-byte struct virtio_net_hdr (IFF_VNET_HDR), so checksum and
 * segmentation offloads pass between the guest and the host's network stack untouched. */
#ifndef VMM_BACKEND_TAP_H
#define VMM_BACKEND_TAP_H

#include <net/if.h>
#include <stdbool.h>

#define TAP_MAX_QUEUES 16
#define TAP_VNET_HDR   10 /* the header on the tap's frames: struct virtio_net_hdr, no num_buffers */
#define TAP_LINK_BUDGET 16 /* rtnetlink reads per tap_link_update */

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
	/* The link: whether the tap can carry frames now, i.e. it is up and has its carrier
	 * (IFF_UP and IFF_LOWER_UP: a tap has its carrier while a queue is attached, loses it
	 * with `ip link set TAP carrier off`, and is down after `ip link set TAP down`). Asked
	 * for when it is opened, then followed on link_fd, an rtnetlink socket that hears of
	 * every link change (RTMGRP_LINK); whoever serves the tap watches link_fd and calls
	 * tap_link_update. Without link_watched (no rtnetlink, or a stand-in tap in a test) the
	 * link is taken as always up. */
	bool link_watched;
	int link_fd;
	int ifindex;
	bool link_down;
	bool link_lost; /* a message may have been lost: ask the kernel once all is read */
};

/* Opens tap device `name` with nr_queues queues (a multi_queue tap when more than one), or
 * creates one when name is "" (needs CAP_NET_ADMIN), brings it up and logs its name. `what` names
 * the option in messages, which say how to fix the problem (`ip tuntap add ...`). 0 or -errno. */
int tap_open(struct tap *t, const char *name, unsigned nr_queues, const char *what);
void tap_close(struct tap *t);
/* TUNSETOFFLOAD: the device-wide offloads (TAP_OFFLOAD_*) of frames the tap hands us, within
 * t->offloads (none: nothing to do, and so a tap stand-in, a socket, works in tests). */
int tap_set_offloads(struct tap *t, unsigned offloads);
/* TUNSETVNETHDRSZ: the header before each frame, TAP_VNET_HDR as tap_open leaves it, or the 12
 * bytes of a guest's header with num_buffers when the kernel's vhost-net hands the tap the
 * guest's frames as they are. 0 or -errno. */
int tap_set_vnet_hdr(struct tap *t, int len);
/* Attaches queue q to the device, or detaches it: the kernel steers no frames to a detached
 * queue, and its fd must not be read. A single-queue tap has nothing to do. 0 or -errno. */
int tap_enable_queue(struct tap *t, unsigned q, bool enable);
/* The device's MTU (SIOCGIFMTU), or -errno. */
int tap_get_mtu(const struct tap *t);

/* Opens link_fd for t->name and asks for the link's state now (tap_open does; tests call it on
 * other devices). 0 or -errno, and then the link is taken as always up. */
int tap_link_watch(struct tap *t);
/* Closes link_fd (tap_close does). */
void tap_close_link(struct tap *t);
/* Takes in what link_fd holds, at most TAP_LINK_BUDGET reads a call (watch it level-triggered:
 * the rest waits for the next turn): link_down follows the messages about this tap. 1 when
 * link_down changed, else 0. Messages lost to a full socket buffer make it ask the kernel for the
 * tap's state again (tap_link_query), once the buffer is read. Only from the thread that serves
 * the tap. */
int tap_link_update(struct tap *t);
/* Asks the kernel for the tap's state; the answer arrives on link_fd. 0 or -errno. */
int tap_link_query(struct tap *t);

#endif
