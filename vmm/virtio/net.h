/* virtio network device (VIRTIO 1.x section 5.1) on a tap device (backend/tap): one receive and
 * one transmit queue per queue pair, each pair on its own tap queue, and the control queue.
 *
 * Frames go through the tap with their virtio_net_hdr, so checksum and segmentation offloads
 * pass between the guest and the host's stack: what the guest can receive (GUEST_*) becomes the
 * tap's TUNSETOFFLOAD; what the guest sends (HOST_*) the tap takes as it is, once checked.
 *
 * Receive copies each frame from the tap into as many receive buffers as it needs (MRG_RXBUF).
 * When the driver has not given enough, the frame waits in the pair's buffer and the tap queue
 * is not read until the driver adds buffers: a slow guest slows the sender (the tap's queue fills
 * and the host drops there, as on a real link), never a frame already taken.
 *
 * With net_set_vhost, the kernel's vhost-net moves the frames instead, one /dev/vhost-net per
 * queue pair on that pair's tap queue (backend/vhost.h); vmm keeps the control queue, the link
 * status and the configuration area. */
#ifndef VMM_VIRTIO_NET_H
#define VMM_VIRTIO_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/tap.h"
#include "backend/vhost.h"
#include "virtio/virtio.h"

#define NET_QUEUE_SIZE     256
#define NET_CTRL_SIZE      64
#define NET_MAX_PAIRS      TAP_MAX_QUEUES
#define NET_MAC_TABLE      64 /* filter entries per table; more means "accept all of that kind" */
#define NET_CTRL_MAX       (8 + 2 * (4 + 6 * 256)) /* the longest control command we read */
/* The longest frame either way: a 64 KiB GSO packet, its Ethernet and VLAN headers. */
#define NET_MAX_FRAME      (65535 + 14 + 4)
#define NET_BUDGET         256 /* frames per queue per turn, rx and tx: the others get theirs */
#define NET_TX_HOLD_US     200 /* transmit completions: at most one signal this often (tx_signal) */

/* Feature bits (5.1.3). */
#define VIRTIO_NET_F_CSUM                0
#define VIRTIO_NET_F_GUEST_CSUM          1
#define VIRTIO_NET_F_CTRL_GUEST_OFFLOADS 2
#define VIRTIO_NET_F_MTU                 3
#define VIRTIO_NET_F_MAC                 5
#define VIRTIO_NET_F_GUEST_TSO4          7
#define VIRTIO_NET_F_GUEST_TSO6          8
#define VIRTIO_NET_F_GUEST_ECN           9
#define VIRTIO_NET_F_GUEST_UFO           10
#define VIRTIO_NET_F_HOST_TSO4           11
#define VIRTIO_NET_F_HOST_TSO6           12
#define VIRTIO_NET_F_HOST_ECN            13
#define VIRTIO_NET_F_HOST_UFO            14
#define VIRTIO_NET_F_MRG_RXBUF           15
#define VIRTIO_NET_F_STATUS              16
#define VIRTIO_NET_F_CTRL_VQ             17
#define VIRTIO_NET_F_CTRL_RX             18
#define VIRTIO_NET_F_MQ                  22
#define VIRTIO_NET_F_CTRL_MAC_ADDR       23

#define VIRTIO_NET_S_LINK_UP 1 /* status: the tap is up and has its carrier */

/* struct virtio_net_hdr flags and gso_type (5.1.6). */
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_GSO_NONE     0
#define VIRTIO_NET_HDR_GSO_TCPV4    1
#define VIRTIO_NET_HDR_GSO_UDP      3
#define VIRTIO_NET_HDR_GSO_TCPV6    4
#define VIRTIO_NET_HDR_GSO_ECN      0x80

/* Control queue classes and commands (5.1.6.5). */
#define VIRTIO_NET_OK                       0
#define VIRTIO_NET_ERR                      1
#define VIRTIO_NET_CTRL_RX                  0
#define VIRTIO_NET_CTRL_RX_PROMISC          0
#define VIRTIO_NET_CTRL_RX_ALLMULTI         1
#define VIRTIO_NET_CTRL_MAC                 1
#define VIRTIO_NET_CTRL_MAC_TABLE_SET       0
#define VIRTIO_NET_CTRL_MAC_ADDR_SET        1
#define VIRTIO_NET_CTRL_MQ                  4
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET     0
#define VIRTIO_NET_CTRL_GUEST_OFFLOADS      5
#define VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET  0

/* The configuration area up to mtu (speed/duplex and RSS belong to features not offered). */
struct virtio_net_config {
	uint8_t mac[6];
	uint16_t status;
	uint16_t max_virtqueue_pairs;
	uint16_t mtu;
} __attribute__((packed));

/* The header before every frame; num_buffers exists for VERSION_1 or MRG_RXBUF drivers. */
struct virtio_net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
} __attribute__((packed));

struct net_dev;

struct net_stats {
	uint64_t rx_packets, rx_bytes, rx_dropped; /* dropped: did not fit, or bad from the tap */
	uint64_t rx_copied; /* frames longer than the buffers first taken: part went through rxbuf */
	uint64_t rx_filtered;                      /* not for us (MAC filter) */
	uint64_t tx_packets, tx_bytes, tx_dropped; /* dropped: malformed chain or header, tap error */
};

struct net_pair {
	struct net_dev *net;
	unsigned index;
	int tap_fd;
	bool active;   /* one of the first curr_pairs: its tap queue is attached and read */
	bool waiting;  /* rxbuf holds a frame the receive queue had no room for */
	size_t rx_len; /* bytes in rxbuf: the tap's header and the frame; 0 when empty */
	uint8_t *rxbuf;
	struct virtq_elem *elem, *first; /* scratch: any chain, the frame's first chain */
	struct virtq_used *used;         /* the chains of one frame: up to the queue size */
	struct iovec *rx_iov;            /* receive: the tap's header, the chains taken, rxbuf */
	size_t rx_hint;                  /* receive: the recent frame length, buffers to take */
	struct iovec *iov;               /* transmit: our header and the frame's buffers */
	struct net_stats stats;
	bool warned;  /* a tap error was logged */
	int tx_timer; /* timerfd: the end of a transmit signal's hold */
	bool tx_held; /* used transmit buffers wait for tx_timer to be signalled */
};

struct net_dev {
	struct virtio_dev vdev;
	struct tap *tap; /* the caller's; open for as long as the device lives */
	struct vhost *vhost; /* max_pairs of them with net_set_vhost, else NULL */
	unsigned max_pairs, curr_pairs;
	struct net_pair *pairs;
	bool link_registered; /* the tap's link_fd is in the loop */
	uint8_t mac[6];       /* the one the device was made with: reset goes back to it */
	unsigned offloads;    /* TAP_OFFLOAD_* in force */
	unsigned hdr_len;     /* the guest's header: 10 (legacy without MRG_RXBUF) or 12 */
	uint64_t tx_hold_ns;  /* NET_TX_HOLD_US; 0 signals every batch at once (unit tests) */
	/* Receive filter (CTRL_RX): reset is promiscuous, which a driver without CTRL_RX needs. */
	bool promisc, allmulti, uni_overflow, multi_overflow;
	unsigned nr_uni, nr_multi;
	uint8_t uni[NET_MAC_TABLE][6], multi[NET_MAC_TABLE][6];
	struct virtq_elem *ctrl_elem;
	uint8_t *ctrl_buf;
	struct virtio_net_config config;
	struct virtio_net_config shadow; /* config as the device last set it: undoes bad writes */
};

/* A device over `tap` (opened by the caller, closed after net_destroy) with the tap's queues as
 * queue pairs. mac: the address the guest gets. mtu: 0 for the tap's. 0 or -errno. */
int net_init(struct net_dev *n, const char *name, struct tap *tap, const uint8_t mac[6],
	     unsigned mtu, const struct guest_mem *mem, struct event_loop *loop);
/* The kernel's vhost-net serves the queue pairs: vhost_fds[i] (open /dev/vhost-net descriptors,
 * max_pairs of them, each taken and closed here, also on failure) on tap queue i. Call after
 * net_init, before the guest runs. The offer loses what vhost-net cannot honour: the ring bits
 * the kernel lacks (the packed ring on Linux 6.1) and CTRL_RX, whose receive filter is vmm's
 * and vmm no longer sees the frames. 0 or -errno. */
int net_set_vhost(struct net_dev *n, const int *vhost_fds);
/* Logs the counters (info level) and frees the device (not the tap). The loop must be stopped.
 * Safe on a zeroed or half-initialised device. */
void net_destroy(struct net_dev *n);

/* For tests and the fuzzer: whether a frame to this destination passes the receive filter. */
bool net_rx_accept(const struct net_dev *n, const uint8_t dest[6]);

#endif
