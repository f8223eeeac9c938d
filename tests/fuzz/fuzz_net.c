/* libFuzzer target for the network device: the guest controls the rings, every frame it sends,
 * every buffer it gives for receiving and every control command; the host side controls the
 * frames that come from the tap (and their virtio_net_hdr). Input:
 *
 *   0      bit 0 RING_PACKED, bit 1 EVENT_IDX, bit 2 INDIRECT_DESC; bit 3 a legacy driver (no
 *          VERSION_1 or FEATURES_OK, split rings); bit 4 the driver resets the device after the
 *          first round and sets it up again; bit 5 a configuration write in the first round
 *   1      rounds of kicks and frames, 1 + value % 4
 *   2-5    the device's feature bits 0-31 the driver accepts (le32; what was not offered is
 *          dropped), so the header length, MRG_RXBUF, the offloads and the control queue vary
 *   6-8    queue sizes of receiveq, transmitq, controlq: packed 1 + value % 32, split
 *          1 << (value % 6)
 *   9      the configuration write: offset value % 16, length 1 + (value >> 4) % 8, its bytes
 *          from byte 10 on
 *   10-27  desc, driver area, device area of receiveq, transmitq, controlq: le16 each
 *   28-29  L, le16: bytes of tap frames after the header
 *   30-31  unused
 *   32-    L bytes of tap frames, each a le16 length and that many bytes (the tap's 10-byte
 *          header, then the Ethernet frame); frame i is written in round i % rounds
 *   32+L-  guest RAM at address 0, in a heap buffer of exactly its size
 *
 * The tap is a SOCK_SEQPACKET socket pair, as in the unit test. Each round writes its frames,
 * kicks the transmit, control and receive queues and runs the event loop until nothing is
 * ready. It checks that the device never crashes or leaks (the sanitizers), that the loop goes
 * idle (no handler kicks itself for ever), and what the host sees: one message per frame counted
 * as sent, each with the tap's header and a frame of 14 bytes to NET_MAX_FRAME whose offloads
 * the driver negotiated and whose checksum offsets lie inside it; receive counters that never
 * exceed the frames written; a filter that never holds more than NET_MAC_TABLE addresses; a
 * configuration area whose only changing field is the MAC. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "event.h"
#include "log.h"
#include "virtio/net.h"
#include "fuzz.h"

#define HDR      32
#define NQ       3
#define ETH_HLEN 14

static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* Every malformed ring is an error message; keep the rest quiet. */
	log_set_level(LOG_ERROR);
	return 0;
}

static uint16_t qsize(const uint8_t *h, unsigned q)
{
	uint8_t v = h[6 + q];

	return (h[0] & 1) && !(h[0] & 8) ? 1u + v % 32 : 1u << (v % 6);
}

/* The driver's side of setup: features, the queues, DRIVER_OK. */
static void driver_setup(struct net_dev *n, const uint8_t *h)
{
	struct virtio_dev *d = &n->vdev;
	uint32_t f0 = virtio_get_features(d, 0) & le(h + 2, 4);
	bool legacy = h[0] & 8;

	pthread_mutex_lock(&d->lock);
	d->legacy_driver = legacy;
	virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	f0 &= ~(1u << VIRTIO_F_EVENT_IDX | 1u << VIRTIO_F_INDIRECT_DESC);
	if (h[0] & 2)
		f0 |= 1u << VIRTIO_F_EVENT_IDX;
	if (h[0] & 4)
		f0 |= 1u << VIRTIO_F_INDIRECT_DESC;
	virtio_set_driver_features(d, 0, f0);
	if (!legacy) {
		virtio_set_driver_features(d, 1, 1u | ((h[0] & 1) ? 1u << (VIRTIO_F_RING_PACKED - 32)
								  : 0));
		virtio_set_status(d, d->status | VIRTIO_STATUS_FEATURES_OK);
	}
	for (unsigned q = 0; q < NQ; q++) {
		/* The control queue exists for the driver only with CTRL_VQ. */
		if (q == 2 && !(f0 & 1u << VIRTIO_NET_F_CTRL_VQ))
			break;
		d->queues[q].vq.size = qsize(h, q);
		d->queues[q].vq.desc_gpa = le(h + 10 + 6 * q, 2);
		d->queues[q].vq.avail_gpa = le(h + 12 + 6 * q, 2);
		d->queues[q].vq.used_gpa = le(h + 14 + 6 * q, 2);
		virtio_queue_enable(d, q);
	}
	virtio_set_status(d, d->status | VIRTIO_STATUS_DRIVER_OK);
	pthread_mutex_unlock(&d->lock);
}

/* Writes the frames of round r (of `rounds`) to the tap; returns how many went. */
static unsigned host_send(int fd, const uint8_t *p, size_t len, unsigned r, unsigned rounds)
{
	unsigned i = 0, sent = 0;

	while (len >= 2) {
		size_t flen = le(p, 2);

		if (flen > len - 2)
			flen = len - 2;
		if (i++ % rounds == r && send(fd, p + 2, flen, MSG_DONTWAIT) == (ssize_t)flen)
			sent++;
		p += 2 + flen;
		len -= 2 + flen;
	}
	return sent;
}

static bool has(uint64_t features, unsigned bit)
{
	return features >> bit & 1;
}

/* Reads what the device sent to the tap and checks each message; returns how many. */
static unsigned host_recv(int fd, uint64_t features)
{
	static uint8_t m[TAP_VNET_HDR + NET_MAX_FRAME + 1];
	unsigned count = 0;
	ssize_t r;

	while ((r = recv(fd, m, sizeof(m), MSG_DONTWAIT)) >= 0) {
		struct virtio_net_hdr h;
		size_t flen = (size_t)r - TAP_VNET_HDR;
		unsigned gso;

		check(r >= TAP_VNET_HDR + ETH_HLEN && flen <= NET_MAX_FRAME);
		memcpy(&h, m, TAP_VNET_HDR);
		gso = h.gso_type & ~VIRTIO_NET_HDR_GSO_ECN;
		/* Only NEEDS_CSUM, with CSUM, and a checksum field inside the frame. */
		check(!(h.flags & ~VIRTIO_NET_HDR_F_NEEDS_CSUM));
		if (h.flags)
			check(has(features, VIRTIO_NET_F_CSUM) &&
			      (size_t)h.csum_start + h.csum_offset + 2 <= flen);
		check(h.hdr_len <= flen);
		if (gso == VIRTIO_NET_HDR_GSO_NONE) {
			check(!(h.gso_type & VIRTIO_NET_HDR_GSO_ECN));
		} else {
			check(h.gso_size && h.flags);
			check(gso == VIRTIO_NET_HDR_GSO_TCPV4 ? has(features, VIRTIO_NET_F_HOST_TSO4)
			      : gso == VIRTIO_NET_HDR_GSO_TCPV6 ? has(features, VIRTIO_NET_F_HOST_TSO6)
			      : gso == VIRTIO_NET_HDR_GSO_UDP   ? has(features, VIRTIO_NET_F_HOST_UFO)
								: false);
			if (h.gso_type & VIRTIO_NET_HDR_GSO_ECN)
				check(has(features, VIRTIO_NET_F_HOST_ECN));
		}
		count++;
	}
	check(errno == EAGAIN);
	return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct guest_mem mem = { 0 };
	struct event_loop loop;
	struct tap tap = { .name = "fuzz0", .nr_queues = 1 };
	struct net_dev n;
	struct net_stats *s;
	struct virtio_net_config c;
	unsigned rounds, written = 0, received = 0;
	size_t flen;
	uint8_t *ram;
	int sv[2];

	if (!(ram = fuzz_ram_after(&mem, data, size, HDR, 28, &flen)))
		return 0;
	rounds = 1 + data[1] % 4;

	check(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	for (unsigned i = 0; i < TAP_MAX_QUEUES; i++)
		tap.fds[i] = i ? -1 : sv[0];
	check(event_loop_init(&loop, "fuzz") == 0);
	check(net_init(&n, "net0", &tap, mac, 1500, &mem, &loop) == 0);
	n.tx_hold_ns = 0; /* every signal at once: the same run each time */
	s = &n.pairs[0].stats;
	driver_setup(&n, data);
	for (unsigned r = 0; r < rounds; r++) {
		written += host_send(sv[1], data + HDR, flen, r, rounds);
		if (r == 0 && (data[0] & 32)) {
			pthread_mutex_lock(&n.vdev.lock);
			virtio_config_write(&n.vdev, data[9] % 16, data + 10, 1 + (data[9] >> 4) % 8);
			pthread_mutex_unlock(&n.vdev.lock);
		}
		virtio_process(&n.vdev, 1); /* transmit, control (commands before frames), receive */
		virtio_process(&n.vdev, 2);
		virtio_process(&n.vdev, 0);
		fuzz_idle(&loop);
		received += host_recv(sv[1], n.vdev.driver_features);
		if (r == 0 && (data[0] & 16)) {
			fuzz_reset(&n.vdev);
			driver_setup(&n, data);
			fuzz_idle(&loop);
		}
	}
	/* Every frame counted as sent is on the tap, once; no frame is counted twice on receive. */
	check(received == s->tx_packets);
	check(s->rx_packets + s->rx_dropped + s->rx_filtered <= written);
	check(n.nr_uni <= NET_MAC_TABLE && n.nr_multi <= NET_MAC_TABLE);
	check(n.curr_pairs == 1 && n.pairs[0].rx_len <= TAP_VNET_HDR + NET_MAX_FRAME);
	virtio_config_read(&n.vdev, 0, (uint8_t *)&c, sizeof(c));
	check(c.status == VIRTIO_NET_S_LINK_UP && c.max_virtqueue_pairs == 1 && c.mtu == 1500);

	net_destroy(&n);
	close(sv[0]);
	close(sv[1]);
	event_loop_destroy(&loop);
	free(ram);
	return 0;
}
