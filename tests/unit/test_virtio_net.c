/* The network device without a transport: the test plays the driver (rings in guest memory, the
 * device core's calls) and the host. The tap is a SOCK_SEQPACKET socket pair, which keeps message
 * boundaries as a tap keeps frames: the test holds the other end, writes "tap header + frame" to
 * make a frame arrive and reads what the device sent. The stand-in takes no offloads, so
 * tap_set_offloads does nothing. The event loop is run by hand. Every test runs on packed and on
 * split rings (a legacy driver has split rings only). */
#include <errno.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <cmocka.h>

#include "event.h"
#include "memory.h"
#include "virtio/net.h"

#include "driver_ring.h"

#define RXQ   0
#define TXQ   1
#define CTRLQ 2
#define NQ    3

#define F(bit) (1u << VIRTIO_NET_F_##bit)
/* What a Linux driver takes of the offer, but MRG_RXBUF and MTU, which tests add when they want
 * them; the ring bits are the core's. */
#define DEFAULT                                                                                    \
	(F(CSUM) | F(GUEST_CSUM) | F(CTRL_GUEST_OFFLOADS) | F(MAC) | F(GUEST_TSO4) |               \
	 F(GUEST_TSO6) | F(GUEST_ECN) | F(HOST_TSO4) | F(HOST_TSO6) | F(HOST_ECN) | F(STATUS) |    \
	 F(CTRL_VQ) | F(CTRL_RX) | F(CTRL_MAC_ADDR))
#define GUEST_OFFLOADS (F(GUEST_CSUM) | F(GUEST_TSO4) | F(GUEST_TSO6) | F(GUEST_ECN))
#define RING_BITS      (1u << VIRTIO_F_INDIRECT_DESC | 1u << VIRTIO_F_EVENT_IDX)

static const uint8_t MAC[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static const uint8_t NEWMAC[6] = { 0x52, 0x54, 0x00, 0x65, 0x43, 0x21 };
static const uint8_t OTHER[6] = { 0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc };
static const uint8_t BCAST[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static const uint8_t MCAST[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb };
static const uint8_t MCAST2[6] = { 0x33, 0x33, 0x00, 0x00, 0x00, 0x01 };

/* ---- fixture ---- */

struct nfx {
	struct guest_mem mem;
	struct event_loop loop;
	struct tap tap;
	struct net_dev net;
	struct virtio_dev *d;
	struct tq q[NQ];
	int host; /* the test's end of the tap's socket pair */
	uint64_t next_gpa;
	bool rx_spare; /* rx_passes() posted a buffer that no frame took yet */
	int signals[NQ], config_signals;
	uint64_t rx_at_signal; /* frames received when the receive queue was last signalled */
};

static struct nfx *cur; /* the transport's signal has no opaque of its own */

static void fake_signal(struct virtio_dev *d, int q)
{
	if (q < 0)
		cur->config_signals++;
	else if (q < NQ)
		cur->signals[q]++;
	if (q == RXQ)
		cur->rx_at_signal = cur->net.pairs[0].stats.rx_packets;
}

static const struct virtio_transport_ops fake_transport = { .signal = fake_signal };

/* A hang in a device handler (an endless loop) fails the run instead of stopping it. */
static void hung(int sig)
{
	static const char m[] = "test_virtio_net: a device handler did not return in 10 s\n";

	(void)!write(STDERR_FILENO, m, sizeof(m) - 1);
	_exit(1);
}

/* Everything but the device: guest memory, the loop, the stand-in tap. */
static void nfx_prepare(struct nfx *f, unsigned nr_queues, unsigned offloads)
{
	int sv[2];

	memset(f, 0, sizeof(*f));
	cur = f;
	f->next_gpa = DATA_GPA;
	f->d = &f->net.vdev;
	assert_int_equal(gmem_init(&f->mem, 16 << 20), 0);
	assert_int_equal(event_loop_init(&f->loop, "test"), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv),
			 0);
	strcpy(f->tap.name, "test0");
	f->tap.nr_queues = nr_queues;
	for (unsigned i = 0; i < TAP_MAX_QUEUES; i++)
		f->tap.fds[i] = i ? -1 : sv[0];
	f->tap.offloads = offloads;
	f->host = sv[1];
}

static int nfx_init_opts(struct nfx *f, unsigned nr_queues, unsigned offloads, unsigned mtu)
{
	int ret;

	nfx_prepare(f, nr_queues, offloads);
	ret = net_init(&f->net, "net0", &f->tap, MAC, mtu, &f->mem, &f->loop);
	f->net.tx_hold_ns = 0; /* transmit signals at once, but in tx_hold */
	return ret;
}

static void nfx_teardown(struct nfx *f)
{
	net_destroy(&f->net);
	close(f->tap.fds[0]);
	close(f->host);
	event_loop_destroy(&f->loop);
	gmem_free(&f->mem);
}

/* Runs the loop by hand until nothing is ready. */
static void pump(struct nfx *f)
{
	int i, r;

	alarm(10);
	for (i = 0; (r = event_loop_run_once(&f->loop, 0)) > 0; i++)
		assert_true(i < 1000);
	assert_true(r == 0);
	alarm(0);
}

/* The driver's side of initialisation (3.1.1): `features` of the device's own bits (with the
 * core's ring bits), modern or legacy (no FEATURES_OK, no bits past 31, split rings). */
static void nfx_go_legacy(struct nfx *f, uint32_t features, bool legacy)
{
	struct virtio_dev *d = f->d;
	bool packed = test_ring_packed;
	unsigned nq = features & F(CTRL_VQ) ? NQ : 2;

	d->transport = &fake_transport;
	d->legacy_driver = legacy;
	pthread_mutex_lock(&d->lock);
	virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	assert_int_equal(features & ~(legacy ? virtio_get_legacy_features(d)
					       : virtio_get_features(d, 0)),
			 0);
	virtio_set_driver_features(d, 0, features | RING_BITS);
	if (!legacy) {
		virtio_set_driver_features(d, 1, (uint32_t)((test_ring_features() >> 32) | 1));
		virtio_set_status(d, d->status | VIRTIO_STATUS_FEATURES_OK);
		assert_true(d->status & VIRTIO_STATUS_FEATURES_OK);
	}
	test_ring_packed = packed && !legacy;
	for (unsigned q = 0; q < nq; q++)
		tq_setup(d, q, &f->q[q], &f->mem);
	test_ring_packed = packed;
	f->rx_spare = false;
	virtio_set_status(d, d->status | VIRTIO_STATUS_DRIVER_OK);
	assert_true(virtio_live(d));
	pthread_mutex_unlock(&d->lock);
	pump(f); /* the start's first look at the tap */
}

static void nfx_go(struct nfx *f, uint32_t features)
{
	nfx_go_legacy(f, features, false);
}

static void nfx_start(struct nfx *f, uint32_t features)
{
	assert_int_equal(nfx_init_opts(f, 1, 0, 1500), 0);
	nfx_go(f, features);
}

static void nfx_reset(struct nfx *f)
{
	pthread_mutex_lock(&f->d->lock);
	virtio_set_status(f->d, 0);
	pthread_mutex_unlock(&f->d->lock);
	assert_int_equal(f->d->status, 0);
}

static bool needs_reset(struct nfx *f)
{
	return f->d->status & VIRTIO_STATUS_NEEDS_RESET;
}

static struct net_stats *stats(struct nfx *f)
{
	return &f->net.pairs[0].stats;
}

static uint64_t nfx_alloc(struct nfx *f, size_t len)
{
	uint64_t gpa = f->next_gpa;

	f->next_gpa += (len + 15) & ~(size_t)15;
	return gpa;
}

static uint8_t *gptr(struct nfx *f, uint64_t gpa, size_t len)
{
	return gp(&f->q[0], gpa, len);
}

static void kick(struct nfx *f, unsigned q)
{
	alarm(10);
	virtio_process(f->d, q);
	pump(f);
}

/* ---- frames ---- */

static uint8_t pattern(size_t i, unsigned seed)
{
	return (uint8_t)(i * 7 + seed * 13 + 1);
}

/* An Ethernet frame of len bytes to dst whose payload is a pattern of `seed` (len < 14: the
 * start of one). */
static void frame_fill(uint8_t *b, size_t len, const uint8_t dst[6], unsigned seed)
{
	uint8_t eth[14] = { [6] = 0x02, [11] = 0x01, [12] = 0x08, [13] = 0x00 };

	memcpy(eth, dst, 6);
	memcpy(b, eth, len < 14 ? len : 14);
	for (size_t i = 14; i < len; i++)
		b[i] = pattern(i, seed);
}

/* The tap hands the device a frame: its 10-byte header (h, or zeros) and len bytes to dst. */
static void host_send(struct nfx *f, const struct virtio_net_hdr *h, const uint8_t dst[6],
		      size_t len, unsigned seed)
{
	uint8_t *m = calloc(1, TAP_VNET_HDR + len);

	assert_non_null(m);
	if (h)
		memcpy(m, h, TAP_VNET_HDR);
	frame_fill(m + TAP_VNET_HDR, len, dst, seed);
	assert_int_equal(send(f->host, m, TAP_VNET_HDR + len, MSG_DONTWAIT), TAP_VNET_HDR + len);
	free(m);
	pump(f);
}

/* A receive buffer of len bytes, without a kick. */
static uint16_t post_rx(struct nfx *f, uint32_t len)
{
	uint64_t gpa = nfx_alloc(f, len);

	memset(gptr(f, gpa, len), 0xee, len);
	return tq_add(&f->q[RXQ], &(struct tbuf){ gpa, len, true }, 1);
}

/* Whether a driver that just added the buffers between avail positions old and the current one
 * would notify the device, as Linux's virtqueue_kick_prepare decides it from the device's event
 * suppression (EVENT_IDX is negotiated: split avail_event, packed off_wrap or flags). */
static bool driver_would_kick(struct nfx *f, unsigned q, uint16_t old)
{
	struct tq *t = &f->q[q];
	uint16_t new, event;

	if (!t->packed) {
		new = t->avail_idx;
		event = *(uint16_t *)gp(t, t->used + 4 + 8 * RING_SIZE, 2);
	} else {
		uint16_t off_wrap = *(uint16_t *)gp(t, t->used, 2);
		uint16_t flags = *(uint16_t *)gp(t, t->used + 2, 2);

		if (flags != 2) /* not VRING_PACKED_EVENT_FLAG_DESC */
			return flags != 1;
		new = t->next_desc;
		event = off_wrap & 0x7fff;
		if (!!(off_wrap >> 15) != t->avail_wrap)
			event -= RING_SIZE;
	}
	return (uint16_t)(new - event - 1) < (uint16_t)(new - old);
}

/* Receive buffers of len bytes, and a kick if the device asked for one (as a driver does). */
static bool post_rx_notify(struct nfx *f, unsigned n, uint32_t len)
{
	uint16_t old = f->q[RXQ].packed ? f->q[RXQ].next_desc : f->q[RXQ].avail_idx;
	bool notify;

	for (unsigned i = 0; i < n; i++)
		post_rx(f, len);
	notify = driver_would_kick(f, RXQ, old);
	if (notify)
		kick(f, RXQ);
	return notify;
}

/* Used receive buffer `id` holds a header (hlen bytes, into *h) and exactly this frame. */
static void check_rx(struct nfx *f, uint32_t id, uint32_t len, unsigned hlen,
		     const uint8_t dst[6], size_t flen, unsigned seed, struct virtio_net_hdr *h)
{
	uint8_t *want = malloc(flen);
	uint8_t *p;

	assert_int_equal(len, hlen + flen);
	p = gptr(f, f->q[RXQ].gpa[id], len);
	memset(h, 0, sizeof(*h));
	memcpy(h, p, hlen);
	frame_fill(want, flen, dst, seed);
	assert_memory_equal(p + hlen, want, flen);
	free(want);
}

static void expect_rx(struct nfx *f, unsigned hlen, const uint8_t dst[6], size_t flen,
		      unsigned seed, struct virtio_net_hdr *h)
{
	uint32_t id, len;

	assert_true(tq_used(&f->q[RXQ], &id, &len));
	check_rx(f, id, len, hlen, dst, flen, seed, h);
}

static void expect_no_rx(struct nfx *f)
{
	uint32_t id, len;

	assert_false(tq_used(&f->q[RXQ], &id, &len));
}

/* A plain frame to dst goes through the receive filter into a buffer (posted when none waits). */
static bool rx_passes(struct nfx *f, const uint8_t dst[6], unsigned seed)
{
	struct virtio_net_hdr h;
	uint32_t id, len;
	uint64_t filtered = stats(f)->rx_filtered;

	if (!f->rx_spare) {
		post_rx(f, 2048);
		kick(f, RXQ);
		f->rx_spare = true;
	}
	host_send(f, NULL, dst, 60, seed);
	if (!tq_used(&f->q[RXQ], &id, &len)) {
		assert_int_equal(stats(f)->rx_filtered, filtered + 1);
		assert_false(net_rx_accept(&f->net, dst));
		return false;
	}
	check_rx(f, id, len, sizeof(h), dst, 60, seed, &h);
	assert_int_equal(stats(f)->rx_filtered, filtered);
	assert_true(net_rx_accept(&f->net, dst));
	f->rx_spare = false;
	return true;
}

/* The driver sends a chain; it comes back used, with nothing written. */
static void tx_chain(struct nfx *f, const struct tbuf *b, unsigned n)
{
	uint16_t head = tq_add(&f->q[TXQ], b, n);
	uint32_t id, len;

	kick(f, TXQ);
	assert_true(tq_used(&f->q[TXQ], &id, &len));
	assert_int_equal(id, head);
	assert_int_equal(len, 0);
	assert_false(needs_reset(f));
}

static uint64_t put(struct nfx *f, const void *data, size_t len)
{
	uint64_t gpa = nfx_alloc(f, len);

	memcpy(gptr(f, gpa, len), data, len);
	return gpa;
}

/* One frame in one readable buffer behind the driver's header (of the negotiated length). */
static void tx_frame(struct nfx *f, const struct virtio_net_hdr *h, const uint8_t *frame,
		     size_t flen)
{
	unsigned hlen = f->net.hdr_len;
	uint8_t *m = malloc(hlen + flen);
	uint64_t gpa;

	memcpy(m, h, hlen);
	memcpy(m + hlen, frame, flen);
	gpa = put(f, m, hlen + flen);
	free(m);
	tx_chain(f, &(struct tbuf){ gpa, (uint32_t)(hlen + flen), false }, 1);
}

/* The next message on the tap is this header (the tap's 10 bytes) and this frame. */
static void expect_tap(struct nfx *f, const struct virtio_net_hdr *want, const uint8_t *frame,
		       size_t flen)
{
	size_t cap = TAP_VNET_HDR + NET_MAX_FRAME + 64;
	uint8_t *m = malloc(cap);

	assert_int_equal(recv(f->host, m, cap, MSG_DONTWAIT), TAP_VNET_HDR + flen);
	assert_memory_equal(m, want, TAP_VNET_HDR);
	assert_memory_equal(m + TAP_VNET_HDR, frame, flen);
	free(m);
}

static void expect_tap_empty(struct nfx *f)
{
	uint8_t m[16];

	assert_int_equal(recv(f->host, m, sizeof(m), MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
}

/* A control command (class, command, data in one readable buffer; the ack in a writable one of
 * ack_len bytes); returns the ack, checking that exactly one byte was used. */
static uint8_t ctrl_ack(struct nfx *f, uint8_t class, uint8_t cmd, const void *data, size_t len,
			uint32_t ack_len)
{
	uint8_t *m = malloc(2 + len);
	uint64_t ack = nfx_alloc(f, ack_len);
	uint32_t id, used;
	uint16_t head;

	m[0] = class;
	m[1] = cmd;
	if (len)
		memcpy(m + 2, data, len);
	memset(gptr(f, ack, ack_len), 0xee, ack_len);
	const struct tbuf b[2] = { { put(f, m, 2 + len), (uint32_t)(2 + len), false },
				   { ack, ack_len, true } };
	free(m);
	head = tq_add(&f->q[CTRLQ], b, 2);
	kick(f, CTRLQ);
	assert_true(tq_used(&f->q[CTRLQ], &id, &used));
	assert_int_equal(id, head);
	assert_int_equal(used, 1);
	for (uint32_t i = 1; i < ack_len; i++)
		assert_int_equal(*gptr(f, ack + i, 1), 0xee);
	assert_false(needs_reset(f));
	return *gptr(f, ack, 1);
}

static uint8_t ctrl(struct nfx *f, uint8_t class, uint8_t cmd, const void *data, size_t len)
{
	return ctrl_ack(f, class, cmd, data, len, 1);
}

static uint8_t ctrl_u8(struct nfx *f, uint8_t class, uint8_t cmd, uint8_t v)
{
	return ctrl(f, class, cmd, &v, 1);
}

/* VIRTIO_NET_CTRL_MAC_TABLE_SET: nu unicast then nm multicast addresses. */
static uint8_t mac_table(struct nfx *f, const uint8_t (*uni)[6], uint32_t nu,
			 const uint8_t (*multi)[6], uint32_t nm)
{
	size_t len = 8 + 6 * (nu + nm);
	uint8_t *m = malloc(len);
	uint8_t ack;

	memcpy(m, &nu, 4);
	if (nu)
		memcpy(m + 4, uni, 6 * nu);
	memcpy(m + 4 + 6 * nu, &nm, 4);
	if (nm)
		memcpy(m + 8 + 6 * nu, multi, 6 * nm);
	ack = ctrl(f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, m, len);
	free(m);
	return ack;
}

static struct virtio_net_hdr hdr(uint8_t flags, uint8_t gso, uint16_t hdr_len, uint16_t gso_size,
				 uint16_t csum_start, uint16_t csum_offset)
{
	return (struct virtio_net_hdr){ flags, gso, hdr_len, gso_size, csum_start, csum_offset, 0 };
}

/* ---- the offer ---- */

static void features_and_config(void **state)
{
	struct nfx f;
	struct virtio_net_config c;
	uint8_t past[4];
	int tap_mtu;

	assert_int_equal(nfx_init_opts(&f, 1, 0, 0), 0);
	for (unsigned bit = 0; bit < 28; bit++) {
		bool want = bit == VIRTIO_NET_F_CSUM || bit == VIRTIO_NET_F_GUEST_CSUM ||
			    bit == VIRTIO_NET_F_CTRL_GUEST_OFFLOADS || bit == VIRTIO_NET_F_MTU ||
			    bit == VIRTIO_NET_F_MAC || bit == VIRTIO_NET_F_GUEST_TSO4 ||
			    bit == VIRTIO_NET_F_GUEST_TSO6 || bit == VIRTIO_NET_F_GUEST_ECN ||
			    bit == VIRTIO_NET_F_HOST_TSO4 || bit == VIRTIO_NET_F_HOST_TSO6 ||
			    bit == VIRTIO_NET_F_HOST_ECN || bit == VIRTIO_NET_F_MRG_RXBUF ||
			    bit == VIRTIO_NET_F_STATUS || bit == VIRTIO_NET_F_CTRL_VQ ||
			    bit == VIRTIO_NET_F_CTRL_RX || bit == VIRTIO_NET_F_CTRL_MAC_ADDR;
		/* Not MQ with one pair, nor UFO from a tap without it, nor RX_EXTRA, VLAN... */
		assert_int_equal(!!(f.d->features & (1ULL << bit)), want);
	}
	assert_true(f.d->features & (1ULL << VIRTIO_F_VERSION_1));
	assert_true(f.d->features & (1ULL << VIRTIO_F_RING_PACKED));
	assert_int_equal(f.d->nr_queues, 3);
	assert_int_equal(f.d->queues[CTRLQ].max_size, NET_CTRL_SIZE);
	assert_int_equal(f.d->queues[RXQ].max_size, NET_QUEUE_SIZE);
	assert_int_equal(f.d->config_len, sizeof(c));
	virtio_config_read(f.d, 0, (uint8_t *)&c, sizeof(c));
	assert_memory_equal(c.mac, MAC, 6);
	assert_int_equal(c.status, VIRTIO_NET_S_LINK_UP);
	assert_int_equal(c.max_virtqueue_pairs, 1);
	/* mtu=0: the tap's, or 1500 when it has none (the stand-in has no interface). */
	tap_mtu = tap_get_mtu(&f.tap);
	assert_int_equal(c.mtu, tap_mtu > 0 ? tap_mtu : 1500);
	memset(past, 0x55, sizeof(past));
	virtio_config_read(f.d, sizeof(c), past, sizeof(past));
	assert_memory_equal(past, "\0\0\0\0", 4);
	nfx_teardown(&f);

	/* An MTU given; a tap that takes UFO makes it offered both ways (not started: the stand-in
	 * would refuse TUNSETOFFLOAD). */
	assert_int_equal(nfx_init_opts(&f, 1, TAP_OFFLOAD_CSUM | TAP_OFFLOAD_UFO, 9000), 0);
	virtio_config_read(f.d, 0, (uint8_t *)&c, sizeof(c));
	assert_int_equal(c.mtu, 9000);
	assert_true(f.d->features & F(GUEST_UFO));
	assert_true(f.d->features & F(HOST_UFO));
	assert_false(f.d->features & F(MQ));
	nfx_teardown(&f);

	/* Queue pairs: 1 to TAP_MAX_QUEUES; a failed init leaves nothing behind. */
	assert_int_equal(nfx_init_opts(&f, 0, 0, 0), -EINVAL);
	nfx_teardown(&f);
	assert_int_equal(nfx_init_opts(&f, TAP_MAX_QUEUES + 1, 0, 0), -EINVAL);
	nfx_teardown(&f);
}

/* ---- receive ---- */

static void rx_frame(void **state)
{
	struct nfx f;
	struct virtio_net_hdr h, tap = hdr(VIRTIO_NET_HDR_F_DATA_VALID, 0, 0, 0, 0, 0);

	/* Without GUEST_CSUM the header's flags are 0, whatever the tap said (5.1.6.4.2). */
	nfx_start(&f, DEFAULT & ~GUEST_OFFLOADS);
	assert_int_equal(f.net.hdr_len, 12);
	post_rx(&f, 2048);
	post_rx(&f, 2048);
	kick(&f, RXQ);
	expect_no_rx(&f);
	host_send(&f, &tap, MAC, 60, 1);
	expect_rx(&f, 12, MAC, 60, 1, &h);
	assert_int_equal(h.flags, 0);
	assert_int_equal(h.gso_type, VIRTIO_NET_HDR_GSO_NONE);
	assert_int_equal(h.num_buffers, 1);
	expect_no_rx(&f);
	assert_true(f.signals[RXQ] > 0);
	/* Any destination: the filter starts promiscuous. The biggest frame without MTU. */
	host_send(&f, NULL, OTHER, 2048 - 12, 2);
	expect_rx(&f, 12, OTHER, 2048 - 12, 2, &h);
	assert_int_equal(stats(&f)->rx_packets, 2);
	assert_int_equal(stats(&f)->rx_bytes, 60 + 2048 - 12);
	assert_int_equal(stats(&f)->rx_dropped, 0);

	/* With it, DATA_VALID reaches the driver. */
	nfx_reset(&f);
	nfx_go(&f, DEFAULT);
	post_rx(&f, 2048);
	kick(&f, RXQ);
	host_send(&f, &tap, MAC, 100, 3);
	expect_rx(&f, 12, MAC, 100, 3, &h);
	assert_int_equal(h.flags, VIRTIO_NET_HDR_F_DATA_VALID);
	assert_int_equal(h.num_buffers, 1);
	nfx_teardown(&f);
}

/* The header is 10 bytes for a legacy driver without MRG_RXBUF, 12 with it. */
static void rx_legacy_header(void **state)
{
	struct nfx f;
	struct virtio_net_hdr h;

	assert_int_equal(nfx_init_opts(&f, 1, 0, 1500), 0);
	nfx_go_legacy(&f, DEFAULT, true);
	assert_int_equal(f.net.hdr_len, 10);
	post_rx(&f, 100);
	kick(&f, RXQ);
	host_send(&f, NULL, MAC, 90, 4); /* exactly fills the buffer */
	expect_rx(&f, 10, MAC, 90, 4, &h);
	assert_int_equal(h.flags, 0);

	nfx_reset(&f);
	nfx_go_legacy(&f, DEFAULT | F(MRG_RXBUF), true);
	assert_int_equal(f.net.hdr_len, 12);
	post_rx(&f, 2048);
	kick(&f, RXQ);
	host_send(&f, NULL, MAC, 90, 5);
	expect_rx(&f, 12, MAC, 90, 5, &h);
	assert_int_equal(h.num_buffers, 1);
	nfx_teardown(&f);
}

/* MRG_RXBUF: a 4000-byte frame over three 1526-byte buffers, used together, every one full but
 * the last; num_buffers says 3. A fourth buffer is left for the next frame. */
static void rx_mergeable(void **state)
{
	struct nfx f;
	uint8_t want[4000];
	uint16_t heads[4];
	size_t off = 0;
	uint32_t id, len;
	struct virtio_net_hdr h;

	nfx_start(&f, DEFAULT | F(MRG_RXBUF));
	for (int i = 0; i < 4; i++)
		heads[i] = post_rx(&f, 1526);
	kick(&f, RXQ);
	host_send(&f, NULL, MAC, 4000, 6);
	frame_fill(want, sizeof(want), MAC, 6);
	for (int i = 0; i < 3; i++) {
		uint8_t *p;

		assert_true(tq_used(&f.q[RXQ], &id, &len));
		assert_int_equal(id, heads[i]);
		assert_int_equal(len, i < 2 ? 1526 : 12 + 4000 - 2 * 1526);
		p = gptr(&f, f.q[RXQ].gpa[id], len);
		if (i == 0) {
			memcpy(&h, p, 12);
			assert_int_equal(h.num_buffers, 3);
			assert_int_equal(h.flags, 0);
			p += 12;
			len -= 12;
		}
		assert_memory_equal(p, want + off, len);
		off += len;
	}
	assert_int_equal(off, 4000);
	expect_no_rx(&f);
	assert_int_equal(stats(&f)->rx_packets, 1);
	assert_int_equal(stats(&f)->rx_bytes, 4000);
	/* One frame, one interrupt. */
	assert_int_equal(f.signals[RXQ], 1);
	host_send(&f, NULL, MAC, 100, 7);
	expect_rx(&f, 12, MAC, 100, 7, &h);
	assert_int_equal(h.num_buffers, 1);
	nfx_teardown(&f);
}

/* The driver asks to be signalled once n more of queue q's one-descriptor buffers are used
 * (EVENT_IDX: split used_event, packed driver event suppression by descriptor). */
static void want_signal_after(struct nfx *f, unsigned q, uint16_t n)
{
	struct tq *t = &f->q[q];

	if (!t->packed) {
		*(uint16_t *)gp(t, t->avail + 4 + 2 * RING_SIZE, 2) = (uint16_t)(t->last_used + n - 1);
	} else {
		unsigned off = t->last_used + n - 1u;
		bool wrap = t->used_wrap ^ (off >= RING_SIZE);

		*(uint16_t *)gp(t, t->avail, 2) = (uint16_t)(off % RING_SIZE | (unsigned)wrap << 15);
		*(uint16_t *)gp(t, t->avail + 2, 2) = 2; /* VRING_PACKED_EVENT_FLAG_DESC */
	}
}

/* Frames that arrive together get one signal, once all of them are used, when the driver's event
 * falls among them; none when it lies beyond them. */
static void rx_signal_per_batch(void **state)
{
	struct nfx f;
	struct virtio_net_hdr h;
	uint8_t m[TAP_VNET_HDR + 100] = { 0 };

	nfx_start(&f, DEFAULT);
	for (int i = 0; i < 8; i++)
		post_rx(&f, 2048);
	kick(&f, RXQ);
	for (unsigned batch = 0; batch < 2; batch++) {
		/* First batch: the driver asks after its second frame; then after the sixth, of 3. */
		want_signal_after(&f, RXQ, batch ? 6 : 2);
		f.signals[RXQ] = 0;
		for (unsigned seed = 1; seed <= 3; seed++) {
			frame_fill(m + TAP_VNET_HDR, 100, MAC, seed);
			assert_int_equal(send(f.host, m, sizeof(m), MSG_DONTWAIT), sizeof(m));
		}
		pump(&f); /* all three in one wake-up */
		assert_int_equal(stats(&f)->rx_packets, 3 * (batch + 1));
		assert_int_equal(f.signals[RXQ], batch ? 0 : 1);
		if (!batch)
			assert_int_equal(f.rx_at_signal, 3);
		for (unsigned seed = 1; seed <= 3; seed++)
			expect_rx(&f, 12, MAC, 100, seed, &h);
	}
	nfx_teardown(&f);
}

/* Takes the next `n` used buffers (each laid out contiguously from its head's address) as one
 * merged frame of flen bytes, and checks the header's num_buffers and the data. */
static void expect_rx_merged(struct nfx *f, unsigned n, size_t flen, unsigned seed)
{
	uint8_t *got = malloc(12 + flen), *want = malloc(flen);
	size_t off = 0;
	struct virtio_net_hdr h;

	for (unsigned i = 0; i < n; i++) {
		uint32_t id, len;

		assert_true(tq_used(&f->q[RXQ], &id, &len));
		assert_in_range(len, 1, 12 + flen - off);
		memcpy(got + off, gptr(f, f->q[RXQ].gpa[id], len), len);
		off += len;
	}
	assert_int_equal(off, 12 + flen);
	memcpy(&h, got, 12);
	assert_int_equal(h.num_buffers, n);
	frame_fill(want, flen, MAC, seed);
	assert_memory_equal(got + 12, want, flen);
	free(got);
	free(want);
}

/* Frames are read from the tap straight into the driver's buffers, as many as the recent frames
 * needed; the rest of a frame longer than those is copied from the device's own buffer into the
 * next ones. Either way the data, the chains used and their order are the same, and the chains
 * taken but not needed go back. The first two chains are split so that the header spans three
 * descriptors. */
static void rx_direct(void **state)
{
	struct nfx f;

	nfx_start(&f, DEFAULT | F(MRG_RXBUF));
	for (int i = 0; i < 8; i++) {
		uint64_t gpa = nfx_alloc(&f, 1526);
		const struct tbuf split[3] = { { gpa, 5, true },
					       { gpa + 5, 4, true },
					       { gpa + 9, 1517, true } };

		memset(gptr(&f, gpa, 1526), 0xee, 1526);
		if (i < 2)
			tq_add(&f.q[RXQ], split, 3);
		else
			tq_add(&f.q[RXQ], &(struct tbuf){ gpa, 1526, true }, 1);
	}
	kick(&f, RXQ);
	host_send(&f, NULL, MAC, 4000, 30); /* longer than any before: copied */
	expect_rx_merged(&f, 3, 4000, 30);
	assert_int_equal(stats(&f)->rx_copied, 1);
	host_send(&f, NULL, MAC, 4000, 31); /* straight into three buffers */
	expect_rx_merged(&f, 3, 4000, 31);
	host_send(&f, NULL, MAC, 100, 32); /* two buffers taken, one used */
	expect_rx_merged(&f, 1, 100, 32);
	host_send(&f, NULL, MAC, 100, 33);
	expect_rx_merged(&f, 1, 100, 33);
	expect_no_rx(&f);
	assert_int_equal(stats(&f)->rx_copied, 1);
	assert_int_equal(stats(&f)->rx_packets, 4);
	assert_int_equal(stats(&f)->rx_bytes, 8200);
	/* The ring is empty: the next frame waits in the device's buffer for the driver's. */
	host_send(&f, NULL, MAC, 1000, 34);
	expect_no_rx(&f);
	assert_int_equal(stats(&f)->rx_copied, 2);
	assert_true(post_rx_notify(&f, 1, 1526));
	expect_rx_merged(&f, 1, 1000, 34);
	/* A frame longer than the buffers read into takes more for its rest; three are too few for
	 * this one: all of it waits in the device's buffer, and arrives whole with a fourth. */
	for (int i = 0; i < 3; i++)
		post_rx(&f, 1526);
	host_send(&f, NULL, MAC, 6000, 35);
	expect_no_rx(&f);
	assert_int_equal(stats(&f)->rx_copied, 3);
	assert_true(post_rx_notify(&f, 1, 1526));
	expect_rx_merged(&f, 4, 6000, 35);
	expect_no_rx(&f);
	nfx_teardown(&f);
}

/* With MTU negotiated, no frame longer than MTU + Ethernet and VLAN headers reaches the driver. */
static void rx_mtu(void **state)
{
	struct nfx f;
	struct virtio_net_hdr h;

	nfx_start(&f, DEFAULT | F(MTU) | F(MRG_RXBUF));
	post_rx(&f, 2048);
	post_rx(&f, 2048);
	kick(&f, RXQ);
	host_send(&f, NULL, MAC, 1500 + 18 + 1, 8);
	expect_no_rx(&f);
	assert_int_equal(stats(&f)->rx_dropped, 1);
	host_send(&f, NULL, MAC, 1500 + 18, 9);
	expect_rx(&f, 12, MAC, 1518, 9, &h);
	nfx_teardown(&f);
}

/* No buffers: the frame waits (nothing lost), and those behind it keep their order. The device
 * asks the driver for a kick when it waits, and the driver's next buffers bring one. */
static void rx_waits_for_buffers(void **state)
{
	struct nfx f;
	struct virtio_net_hdr h;

	nfx_start(&f, DEFAULT);
	host_send(&f, NULL, MAC, 60, 10);
	host_send(&f, NULL, MAC, 61, 11);
	host_send(&f, NULL, MAC, 62, 12);
	expect_no_rx(&f);
	assert_int_equal(stats(&f)->rx_packets, 0);
	assert_int_equal(stats(&f)->rx_dropped, 0);
	assert_true(post_rx_notify(&f, 1, 2048));
	expect_rx(&f, 12, MAC, 60, 10, &h);
	expect_no_rx(&f);
	/* A frame coming while the device waits changes nothing. */
	host_send(&f, NULL, MAC, 63, 13);
	expect_no_rx(&f);
	assert_true(post_rx_notify(&f, 3, 2048));
	expect_rx(&f, 12, MAC, 61, 11, &h);
	expect_rx(&f, 12, MAC, 62, 12, &h);
	expect_rx(&f, 12, MAC, 63, 13, &h);
	expect_no_rx(&f);
	assert_int_equal(stats(&f)->rx_packets, 4);
	assert_int_equal(stats(&f)->rx_dropped, 0);
	/* Waiting again: the next buffer brings a kick again. */
	host_send(&f, NULL, MAC, 64, 14);
	assert_true(post_rx_notify(&f, 1, 2048));
	expect_rx(&f, 12, MAC, 64, 14, &h);
	nfx_teardown(&f);
}

/* MRG_RXBUF, and fewer buffers than the frame needs: the chains taken go back and the frame
 * waits until the driver has added enough; each buffer added meanwhile brings a kick. */
static void rx_mergeable_waits_for_enough_buffers(void **state)
{
	struct nfx f;
	uint32_t id, len;
	struct virtio_net_hdr h;

	nfx_start(&f, DEFAULT | F(MRG_RXBUF));
	post_rx(&f, 1526);
	kick(&f, RXQ);
	host_send(&f, NULL, MAC, 4000, 15);
	expect_no_rx(&f);
	assert_true(post_rx_notify(&f, 1, 1526));
	expect_no_rx(&f);
	assert_true(post_rx_notify(&f, 1, 1526));
	for (int i = 0; i < 3; i++)
		assert_true(tq_used(&f.q[RXQ], &id, &len));
	expect_no_rx(&f);
	memcpy(&h, gptr(&f, f.q[RXQ].gpa[0], 12), 12);
	assert_int_equal(h.num_buffers, 3);
	assert_int_equal(stats(&f)->rx_packets, 1);
	assert_int_equal(stats(&f)->rx_dropped, 0);
	nfx_teardown(&f);
}

/* MRG_RXBUF, and a frame that the whole ring of buffers cannot hold: dropped, every buffer put
 * back for the frames after it. */
static void rx_frame_larger_than_the_ring(void **state)
{
	struct nfx f;
	struct virtio_net_hdr h;
	uint16_t first = 0;
	uint32_t id, len;

	nfx_start(&f, DEFAULT | F(MRG_RXBUF));
	for (int i = 0; i < RING_SIZE; i++) {
		uint16_t head = post_rx(&f, 100);

		if (i == 0)
			first = head;
	}
	kick(&f, RXQ);
	host_send(&f, NULL, MAC, 12 + RING_SIZE * 100 - 12 + 1, 22);
	expect_no_rx(&f);
	assert_int_equal(stats(&f)->rx_dropped, 1);
	assert_false(needs_reset(&f));
	host_send(&f, NULL, MAC, 88, 23);
	assert_true(tq_used(&f.q[RXQ], &id, &len));
	assert_int_equal(id, first);
	check_rx(&f, id, len, 12, MAC, 88, 23, &h);
	assert_int_equal(h.num_buffers, 1);
	nfx_teardown(&f);
}

/* Frames that came before the driver was ready are read when it is (the tap's fd is
 * edge-triggered: the device must look once at start). */
static void rx_frame_from_before_start(void **state)
{
	struct nfx f;
	struct virtio_net_hdr h;

	assert_int_equal(nfx_init_opts(&f, 1, 0, 1500), 0);
	host_send(&f, NULL, MAC, 60, 24);
	nfx_go(&f, DEFAULT);
	expect_no_rx(&f);
	post_rx(&f, 2048);
	kick(&f, RXQ);
	expect_rx(&f, 12, MAC, 60, 24, &h);
	nfx_teardown(&f);
}

/* Without MRG_RXBUF a frame gets one buffer: one too small comes back empty, the frame dropped. */
static void rx_buffer_too_small(void **state)
{
	struct nfx f;
	struct virtio_net_hdr h;
	uint32_t id, len;
	uint16_t small;

	nfx_start(&f, DEFAULT);
	small = post_rx(&f, 100);
	post_rx(&f, 2048);
	kick(&f, RXQ);
	host_send(&f, NULL, MAC, 89, 15); /* 12 + 89 = 101 */
	assert_true(tq_used(&f.q[RXQ], &id, &len));
	assert_int_equal(id, small);
	assert_int_equal(len, 0);
	assert_int_equal(stats(&f)->rx_dropped, 1);
	assert_int_equal(stats(&f)->rx_packets, 0);
	host_send(&f, NULL, MAC, 89, 16);
	expect_rx(&f, 12, MAC, 89, 16, &h);
	assert_false(needs_reset(&f));
	nfx_teardown(&f);
}

/* A receive chain with a readable buffer, or too short for the header, is a driver bug. */
static void rx_bad_chain_needs_reset(void **state)
{
	struct nfx f;
	struct virtio_net_hdr h;

	nfx_start(&f, DEFAULT);
	const struct tbuf b[2] = { { nfx_alloc(&f, 16), 16, false },
				   { nfx_alloc(&f, 2048), 2048, true } };
	tq_add(&f.q[RXQ], b, 2);
	kick(&f, RXQ);
	host_send(&f, NULL, MAC, 60, 17);
	assert_true(needs_reset(&f));
	assert_true(f.config_signals > 0);
	expect_no_rx(&f);

	/* After a reset the device works again. The frame it held when it failed (17, read when
	 * the rings were set up) is gone; the one it never read (18) waited in the tap. */
	nfx_reset(&f);
	nfx_go(&f, DEFAULT | F(MRG_RXBUF));
	post_rx(&f, 11); /* shorter than the 12-byte header */
	kick(&f, RXQ);
	host_send(&f, NULL, MAC, 60, 18);
	assert_true(needs_reset(&f));
	expect_no_rx(&f);

	nfx_reset(&f);
	nfx_go(&f, DEFAULT);
	for (int i = 0; i < 3; i++)
		post_rx(&f, 2048);
	kick(&f, RXQ);
	host_send(&f, NULL, MAC, 60, 19);
	expect_rx(&f, 12, MAC, 60, 18, &h);
	expect_rx(&f, 12, MAC, 60, 19, &h);
	expect_no_rx(&f);
	nfx_teardown(&f);
}

/* The tap takes no offloads here: what it hands over with one (GSO, NEEDS_CSUM) is dropped, as is
 * a frame without a whole Ethernet header; the buffer waits for the next good frame. */
static void rx_dropped_from_tap(void **state)
{
	struct nfx f;
	struct virtio_net_hdr h;
	const struct virtio_net_hdr bad[] = {
		hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, 54, 1448, 34, 16),
		hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV6, 74, 1428, 54, 16),
		hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_UDP, 42, 1472, 34, 6),
		hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0, 34, 16),
		hdr(0, VIRTIO_NET_HDR_GSO_ECN, 0, 0, 0, 0),
		hdr(0, 2, 0, 0, 0, 0),
	};
	uint8_t runt[TAP_VNET_HDR + 13] = { 0 };

	nfx_start(&f, DEFAULT);
	post_rx(&f, 2048);
	kick(&f, RXQ);
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		host_send(&f, &bad[i], MAC, 200, 20);
		expect_no_rx(&f);
		assert_int_equal(stats(&f)->rx_dropped, i + 1);
	}
	assert_int_equal(send(f.host, runt, sizeof(runt), MSG_DONTWAIT), sizeof(runt));
	pump(&f);
	expect_no_rx(&f);
	assert_int_equal(stats(&f)->rx_dropped, 7);
	host_send(&f, NULL, MAC, 200, 21);
	expect_rx(&f, 12, MAC, 200, 21, &h);
	assert_int_equal(stats(&f)->rx_packets, 1);
	assert_false(needs_reset(&f));
	nfx_teardown(&f);
}

/* The receive filter of CTRL_RX and CTRL_MAC, through the receive path. */
static void rx_filter(void **state)
{
	struct nfx f;
	const uint8_t uni[1][6] = { { 0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc } };
	const uint8_t multi[1][6] = { { 0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb } };
	struct virtio_net_config c;

	nfx_start(&f, DEFAULT);
	/* Promiscuous from the start. */
	assert_true(rx_passes(&f, OTHER, 1));
	assert_true(rx_passes(&f, MCAST, 2));
	assert_int_equal(ctrl_u8(&f, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, 0),
			 VIRTIO_NET_OK);
	assert_true(rx_passes(&f, MAC, 3));
	assert_false(rx_passes(&f, OTHER, 4));
	assert_true(rx_passes(&f, BCAST, 5));
	assert_false(rx_passes(&f, MCAST, 6));
	assert_int_equal(stats(&f)->rx_filtered, 2);
	/* ALLMULTI: every multicast, still no other unicast. */
	assert_int_equal(ctrl_u8(&f, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_ALLMULTI, 1),
			 VIRTIO_NET_OK);
	assert_true(rx_passes(&f, MCAST, 7));
	assert_true(rx_passes(&f, MCAST2, 8));
	assert_false(rx_passes(&f, OTHER, 9));
	assert_int_equal(ctrl_u8(&f, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_ALLMULTI, 0),
			 VIRTIO_NET_OK);
	assert_false(rx_passes(&f, MCAST2, 10));
	/* The tables: what is in them passes. */
	assert_int_equal(mac_table(&f, uni, 1, multi, 1), VIRTIO_NET_OK);
	assert_true(rx_passes(&f, OTHER, 11));
	assert_true(rx_passes(&f, MCAST, 12));
	assert_false(rx_passes(&f, MCAST2, 13));
	assert_true(rx_passes(&f, MAC, 14));
	assert_true(rx_passes(&f, BCAST, 15));
	/* A new address: in the configuration area at once, and the filter follows it. */
	assert_int_equal(ctrl(&f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, NEWMAC, 6),
			 VIRTIO_NET_OK);
	virtio_config_read(f.d, 0, (uint8_t *)&c, sizeof(c));
	assert_memory_equal(c.mac, NEWMAC, 6);
	assert_true(rx_passes(&f, NEWMAC, 16));
	assert_false(rx_passes(&f, MAC, 17));
	/* Empty tables again; promiscuous again. */
	assert_int_equal(mac_table(&f, NULL, 0, NULL, 0), VIRTIO_NET_OK);
	assert_false(rx_passes(&f, OTHER, 18));
	assert_int_equal(ctrl_u8(&f, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, 1),
			 VIRTIO_NET_OK);
	assert_true(rx_passes(&f, OTHER, 19));
	assert_false(needs_reset(&f));
	nfx_teardown(&f);
}

/* More addresses than a table holds: all of that kind pass; exactly NET_MAC_TABLE is a table. */
static void mac_table_overflow(void **state)
{
	static uint8_t many[NET_MAC_TABLE + 1][6];
	struct nfx f;

	for (unsigned i = 0; i < NET_MAC_TABLE + 1; i++) {
		memcpy(many[i], OTHER, 6);
		many[i][5] = (uint8_t)i;
	}
	nfx_start(&f, DEFAULT);
	assert_int_equal(ctrl_u8(&f, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, 0),
			 VIRTIO_NET_OK);
	assert_int_equal(mac_table(&f, (const uint8_t(*)[6])many, NET_MAC_TABLE, NULL, 0),
			 VIRTIO_NET_OK);
	assert_false(f.net.uni_overflow);
	assert_int_equal(f.net.nr_uni, NET_MAC_TABLE);
	assert_true(net_rx_accept(&f.net, many[NET_MAC_TABLE - 1]));
	assert_false(net_rx_accept(&f.net, many[NET_MAC_TABLE]));
	assert_true(rx_passes(&f, many[0], 1));
	assert_false(rx_passes(&f, many[NET_MAC_TABLE], 2));

	assert_int_equal(mac_table(&f, (const uint8_t(*)[6])many, NET_MAC_TABLE + 1, NULL, 0),
			 VIRTIO_NET_OK);
	assert_true(f.net.uni_overflow);
	assert_true(rx_passes(&f, many[NET_MAC_TABLE], 3));
	assert_true(rx_passes(&f, (const uint8_t[6]){ 0x02, 9, 9, 9, 9, 9 }, 4));
	assert_false(rx_passes(&f, MCAST, 5));

	/* Multicast addresses in the table (bit 0 of the first byte set). */
	for (unsigned i = 0; i < NET_MAC_TABLE + 1; i++)
		many[i][0] |= 1;
	assert_int_equal(mac_table(&f, NULL, 0, (const uint8_t(*)[6])many, NET_MAC_TABLE + 1),
			 VIRTIO_NET_OK);
	assert_false(f.net.uni_overflow);
	assert_true(f.net.multi_overflow);
	assert_true(rx_passes(&f, MCAST2, 6));
	assert_false(rx_passes(&f, OTHER, 7));
	nfx_teardown(&f);
}

/* ---- transmit ---- */

static void tx_frame_reaches_tap(void **state)
{
	struct nfx f;
	uint8_t frame[100];
	struct virtio_net_hdr h, want;

	frame_fill(frame, sizeof(frame), OTHER, 30);
	nfx_start(&f, DEFAULT);
	/* NEEDS_CSUM goes on (CSUM negotiated), DATA_VALID does not; num_buffers is the guest's. */
	h = hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID, 0, 54, 0, 34, 16);
	h.num_buffers = 0x1234;
	tx_frame(&f, &h, frame, sizeof(frame));
	want = hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 54, 0, 34, 16);
	expect_tap(&f, &want, frame, sizeof(frame));
	assert_int_equal(stats(&f)->tx_packets, 1);
	assert_int_equal(stats(&f)->tx_bytes, 100);
	assert_true(f.signals[TXQ] > 0);
	/* hdr_len is a hint: clamped to the frame. */
	h = hdr(VIRTIO_NET_HDR_F_DATA_VALID, 0, 500, 0, 0, 0);
	tx_frame(&f, &h, frame, sizeof(frame));
	want = hdr(0, 0, 100, 0, 0, 0);
	expect_tap(&f, &want, frame, sizeof(frame));
	/* The checksum field ends exactly at the frame's end: fine. */
	h = hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0, 90, 8);
	tx_frame(&f, &h, frame, sizeof(frame));
	expect_tap(&f, &h, frame, sizeof(frame));
	/* The segmentation offloads negotiated, as they are. */
	h = hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, 54, 1448, 34, 16);
	tx_frame(&f, &h, frame, sizeof(frame));
	expect_tap(&f, &h, frame, sizeof(frame));
	h = hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV6 | VIRTIO_NET_HDR_GSO_ECN, 74,
		1428, 54, 16);
	tx_frame(&f, &h, frame, sizeof(frame));
	expect_tap(&f, &h, frame, sizeof(frame));
	expect_tap_empty(&f);
	assert_int_equal(stats(&f)->tx_packets, 5);
	assert_int_equal(stats(&f)->tx_dropped, 0);

	/* Several chains in one kick go out in order. */
	const struct tbuf b[3] = {
		{ nfx_alloc(&f, 12 + 100), 12 + 60, false },
		{ nfx_alloc(&f, 12 + 100), 12 + 70, false },
		{ nfx_alloc(&f, 12 + 100), 12 + 80, false },
	};
	for (int i = 0; i < 3; i++) {
		memset(gptr(&f, b[i].gpa, 12), 0, 12);
		frame_fill(gptr(&f, b[i].gpa + 12, 100), 100, OTHER, 31 + i);
		tq_add(&f.q[TXQ], &b[i], 1);
	}
	kick(&f, TXQ);
	want = hdr(0, 0, 0, 0, 0, 0);
	for (int i = 0; i < 3; i++) {
		uint32_t id, len;

		assert_true(tq_used(&f.q[TXQ], &id, &len));
		frame_fill(frame, 100, OTHER, 31 + i);
		expect_tap(&f, &want, frame, 60 + 10 * i);
	}
	nfx_teardown(&f);
}

/* The header split over three descriptors and the frame over five, or sharing one with them. */
static void tx_scattered(void **state)
{
	struct nfx f;
	uint8_t m[12 + 100], frame[100];
	struct virtio_net_hdr h = hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 14, 0, 14, 6), want;
	static const uint32_t cut[] = { 4, 5, 3, 1, 13, 7, 50, 29 };
	struct tbuf b[8];
	size_t off = 0;

	nfx_start(&f, DEFAULT);
	frame_fill(frame, sizeof(frame), BCAST, 40);
	memcpy(m, &h, 12);
	memcpy(m + 12, frame, sizeof(frame));
	for (int i = 0; i < 8; i++) {
		b[i] = (struct tbuf){ put(&f, m + off, cut[i]), cut[i], false };
		off += cut[i];
	}
	assert_int_equal(off, sizeof(m));
	tx_chain(&f, b, 8);
	want = h;
	expect_tap(&f, &want, frame, sizeof(frame));

	/* Header and the frame's first 20 bytes in one buffer, the rest in another. */
	b[0] = (struct tbuf){ put(&f, m, 32), 32, false };
	b[1] = (struct tbuf){ put(&f, m + 32, sizeof(m) - 32), sizeof(m) - 32, false };
	tx_chain(&f, b, 2);
	expect_tap(&f, &want, frame, sizeof(frame));
	assert_int_equal(stats(&f)->tx_packets, 2);
	nfx_teardown(&f);
}

/* Transmit interrupt moderation (tx_signal): the frames reach the tap at once, but their used
 * buffers wait for the hold's timer, one signal for all; half the ring used is signalled at once. */
static void tx_hold(void **state)
{
	struct nfx f;
	struct net_pair *p;
	uint8_t frame[60];
	struct virtio_net_hdr h = hdr(0, 0, 0, 0, 0, 0);
	struct itimerspec its;
	uint8_t m[sizeof(h) + sizeof(frame)];
	uint64_t gpa;
	uint32_t id, len;

	frame_fill(frame, sizeof(frame), OTHER, 1);
	nfx_start(&f, DEFAULT);
	p = &f.net.pairs[0];
	f.net.tx_hold_ns = 60000000000ULL; /* a minute: only the test ends a hold */
	want_signal_after(&f, TXQ, 1);
	f.signals[TXQ] = 0;
	for (int i = 0; i < 2; i++) {
		tx_frame(&f, &h, frame, sizeof(frame)); /* used at once (tx_chain checks) */
		expect_tap(&f, &h, frame, sizeof(frame));
		assert_int_equal(f.signals[TXQ], 0);
	}
	assert_int_equal(timerfd_gettime(p->tx_timer, &its), 0);
	assert_true(its.it_value.tv_sec > 0 || its.it_value.tv_nsec > 0);
	/* The timer goes off: one signal for both. */
	its = (struct itimerspec){ .it_value = { 0, 1 } };
	assert_int_equal(timerfd_settime(p->tx_timer, 0, &its, NULL), 0);
	alarm(10);
	assert_true(event_loop_run_once(&f.loop, 5000) > 0);
	alarm(0);
	assert_int_equal(f.signals[TXQ], 1);

	/* A driver that wants no interrupt for it (its event lies beyond): no hold, no timer. */
	want_signal_after(&f, TXQ, 3);
	f.signals[TXQ] = 0;
	tx_frame(&f, &h, frame, sizeof(frame));
	expect_tap(&f, &h, frame, sizeof(frame));
	assert_false(p->tx_held);
	assert_int_equal(timerfd_gettime(p->tx_timer, &its), 0);
	assert_true(its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0);
	assert_int_equal(f.signals[TXQ], 0);

	/* Half the ring in one kick. */
	want_signal_after(&f, TXQ, 1);
	f.signals[TXQ] = 0;
	memcpy(m, &h, sizeof(h));
	memcpy(m + sizeof(h), frame, sizeof(frame));
	gpa = put(&f, m, sizeof(m));
	for (int i = 0; i < RING_SIZE / 2; i++)
		tq_add(&f.q[TXQ], &(struct tbuf){ gpa, sizeof(m), false }, 1);
	kick(&f, TXQ);
	assert_int_equal(f.signals[TXQ], 1);
	for (int i = 0; i < RING_SIZE / 2; i++) {
		assert_true(tq_used(&f.q[TXQ], &id, &len));
		expect_tap(&f, &h, frame, sizeof(frame));
	}
	nfx_teardown(&f);
}

static void tx_legacy_header(void **state)
{
	struct nfx f;
	uint8_t frame[60];
	struct virtio_net_hdr h = hdr(0, 0, 0, 0, 0, 0);

	frame_fill(frame, sizeof(frame), OTHER, 41);
	assert_int_equal(nfx_init_opts(&f, 1, 0, 1500), 0);
	nfx_go_legacy(&f, DEFAULT, true);
	tx_frame(&f, &h, frame, sizeof(frame)); /* 10 bytes of header */
	expect_tap(&f, &h, frame, sizeof(frame));
	nfx_reset(&f);
	nfx_go_legacy(&f, DEFAULT | F(MRG_RXBUF), true);
	tx_frame(&f, &h, frame, sizeof(frame)); /* 12 */
	expect_tap(&f, &h, frame, sizeof(frame));
	assert_int_equal(stats(&f)->tx_packets, 2);
	nfx_teardown(&f);
}

/* A frame the device must not send: dropped and counted, the chain returned, the device fine. */
static void tx_dropped(struct nfx *f, const struct virtio_net_hdr *h, size_t flen)
{
	uint64_t before = stats(f)->tx_dropped, sent = stats(f)->tx_packets;
	uint8_t *frame = malloc(flen);

	frame_fill(frame, flen, OTHER, 50);
	tx_frame(f, h, frame, flen);
	free(frame);
	assert_int_equal(stats(f)->tx_dropped, before + 1);
	assert_int_equal(stats(f)->tx_packets, sent);
	expect_tap_empty(f);
	assert_true(virtio_live(f->d));
}

static void tx_malformed(void **state)
{
	struct nfx f;
	struct virtio_net_hdr none = hdr(0, 0, 0, 0, 0, 0), h;
	uint8_t frame[100];

	nfx_start(&f, DEFAULT);
	/* A writable buffer in a transmit chain (5.1.6.2), after a frame that is fine. */
	memcpy(frame, &none, 12);
	frame_fill(frame + 12, 60, OTHER, 52);
	const struct tbuf w[2] = { { put(&f, frame, 72), 72, false },
				   { nfx_alloc(&f, 64), 64, true } };
	tx_chain(&f, w, 2);
	assert_int_equal(stats(&f)->tx_dropped, 1);
	/* Shorter than a header and an Ethernet header. */
	tx_dropped(&f, &none, 13);
	tx_chain(&f, &(struct tbuf){ put(&f, &none, 11), 11, false }, 1);
	assert_int_equal(stats(&f)->tx_dropped, 3);
	/* Longer than the longest frame. */
	tx_dropped(&f, &none, NET_MAX_FRAME + 1);
	/* The checksum field past the frame's end. */
	h = hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0, 90, 9);
	tx_dropped(&f, &h, 100);
	h = hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0, 0xffff, 0xffff);
	tx_dropped(&f, &h, 100);
	/* Unknown GSO types, GSO without a segment size or without NEEDS_CSUM, ECN alone. */
	static const uint8_t unknown[] = { 2, 5, 0x42, 0x7f, VIRTIO_NET_HDR_GSO_ECN | 2 };
	for (unsigned i = 0; i < sizeof(unknown); i++) {
		h = hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, unknown[i], 54, 1448, 34, 16);
		tx_dropped(&f, &h, 100);
	}
	h = hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, 54, 0, 34, 16);
	tx_dropped(&f, &h, 100);
	h = hdr(0, VIRTIO_NET_HDR_GSO_TCPV4, 54, 1448, 0, 0);
	tx_dropped(&f, &h, 100);
	h = hdr(0, VIRTIO_NET_HDR_GSO_ECN, 0, 0, 0, 0);
	tx_dropped(&f, &h, 100);
	/* UDP (UFO) was not offered: the tap has none. */
	h = hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_UDP, 42, 1472, 34, 6);
	tx_dropped(&f, &h, 100);
	assert_false(needs_reset(&f));
	/* The queue still works. */
	frame_fill(frame, sizeof(frame), OTHER, 51);
	tx_frame(&f, &none, frame, sizeof(frame));
	expect_tap(&f, &none, frame, sizeof(frame));

	/* What needs a feature the driver did not take. */
	nfx_reset(&f);
	nfx_go(&f, DEFAULT & ~(F(CSUM) | F(HOST_TSO4) | F(HOST_TSO6) | F(HOST_ECN)));
	h = hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0, 34, 16);
	tx_dropped(&f, &h, 100);
	h = hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, 54, 1448, 34, 16);
	tx_dropped(&f, &h, 100);
	nfx_reset(&f);
	nfx_go(&f, DEFAULT & ~(F(HOST_TSO6) | F(HOST_ECN)));
	h = hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV6, 74, 1428, 54, 16);
	tx_dropped(&f, &h, 100);
	h = hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN, 54,
		1448, 34, 16);
	tx_dropped(&f, &h, 100);
	h = hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, 54, 1448, 34, 16);
	tx_frame(&f, &h, frame, sizeof(frame));
	expect_tap(&f, &h, frame, sizeof(frame));
	assert_false(needs_reset(&f));
	nfx_teardown(&f);
}

/* The tap's queue full (here: the socket's send buffer, made small): frames are lost as on a
 * wire, chains still come back, and what was sent is what the host gets. */
static void tx_tap_full(void **state)
{
	enum { FLEN = 20000 };
	struct nfx f;
	uint8_t *m = calloc(1, 12 + FLEN), *got = malloc(TAP_VNET_HDR + FLEN + 1);
	int sndbuf = 65536; /* the kernel doubles it: room for about six frames */
	unsigned n = 0;

	nfx_start(&f, DEFAULT);
	assert_int_equal(setsockopt(f.tap.fds[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
	frame_fill(m + 12, FLEN, OTHER, 60);
	for (int i = 0; i < RING_SIZE; i++)
		tq_add(&f.q[TXQ], &(struct tbuf){ put(&f, m, 12 + FLEN), 12 + FLEN, false }, 1);
	kick(&f, TXQ);
	for (int i = 0; i < RING_SIZE; i++) {
		uint32_t id, len;

		assert_true(tq_used(&f.q[TXQ], &id, &len));
	}
	assert_int_equal(stats(&f)->tx_packets + stats(&f)->tx_dropped, RING_SIZE);
	assert_true(stats(&f)->tx_packets > 0);
	assert_true(stats(&f)->tx_dropped > 0);
	while (recv(f.host, got, TAP_VNET_HDR + FLEN + 1, MSG_DONTWAIT) == TAP_VNET_HDR + FLEN) {
		assert_memory_equal(got + TAP_VNET_HDR, m + 12, FLEN);
		n++;
	}
	assert_int_equal(n, stats(&f)->tx_packets);
	assert_false(needs_reset(&f));
	free(m);
	free(got);
	nfx_teardown(&f);
}

/* ---- control queue ---- */

static void ctrl_rx_commands(void **state)
{
	struct nfx f;
	uint8_t two[2] = { 0, 0 };

	nfx_start(&f, DEFAULT);
	for (uint8_t cmd = 0; cmd < 2; cmd++) {
		assert_int_equal(ctrl_u8(&f, VIRTIO_NET_CTRL_RX, cmd, 0), VIRTIO_NET_OK);
		assert_int_equal(ctrl_u8(&f, VIRTIO_NET_CTRL_RX, cmd, 1), VIRTIO_NET_OK);
		assert_int_equal(ctrl_u8(&f, VIRTIO_NET_CTRL_RX, cmd, 2), VIRTIO_NET_ERR);
		assert_int_equal(ctrl(&f, VIRTIO_NET_CTRL_RX, cmd, two, 2), VIRTIO_NET_ERR);
		assert_int_equal(ctrl(&f, VIRTIO_NET_CTRL_RX, cmd, NULL, 0), VIRTIO_NET_ERR);
	}
	assert_true(f.net.promisc);
	assert_true(f.net.allmulti);
	assert_int_equal(ctrl_u8(&f, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, 0),
			 VIRTIO_NET_OK);
	assert_false(f.net.promisc);
	/* ALLUNI and the rest belong to RX_EXTRA, not offered. */
	assert_int_equal(ctrl_u8(&f, VIRTIO_NET_CTRL_RX, 2, 1), VIRTIO_NET_ERR);
	assert_int_equal(ctrl_u8(&f, VIRTIO_NET_CTRL_RX, 5, 1), VIRTIO_NET_ERR);
	/* The ack is the first writable byte, whatever the buffer's size; one byte is used. */
	assert_int_equal(ctrl_ack(&f, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, "\1", 1, 8),
			 VIRTIO_NET_OK);
	/* Class and command in a descriptor of their own, then the data. */
	uint64_t ack = nfx_alloc(&f, 1);
	const struct tbuf b[4] = { { put(&f, "\0", 1), 1, false },
				   { put(&f, "\1", 1), 1, false },
				   { put(&f, "\0", 1), 1, false },
				   { ack, 1, true } };
	uint32_t id, len;

	*gptr(&f, ack, 1) = 0xee;
	tq_add(&f.q[CTRLQ], b, 4);
	kick(&f, CTRLQ);
	assert_true(tq_used(&f.q[CTRLQ], &id, &len));
	assert_int_equal(len, 1);
	assert_int_equal(*gptr(&f, ack, 1), VIRTIO_NET_OK);
	assert_false(f.net.allmulti);
	assert_true(f.signals[CTRLQ] > 0);
	nfx_teardown(&f);

	/* Without CTRL_RX: no RX class, no MAC tables. */
	nfx_start(&f, DEFAULT & ~F(CTRL_RX));
	assert_int_equal(ctrl_u8(&f, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, 0),
			 VIRTIO_NET_ERR);
	assert_int_equal(mac_table(&f, NULL, 0, NULL, 0), VIRTIO_NET_ERR);
	assert_true(f.net.promisc);
	nfx_teardown(&f);
}

static void ctrl_mac_commands(void **state)
{
	struct nfx f;
	const uint8_t two[2][6] = { { 0x52, 0, 0, 0, 0, 1 }, { 0x52, 0, 0, 0, 0, 2 } };
	uint8_t m[64], big[NET_CTRL_MAX];
	uint32_t n;
	struct virtio_net_config c;

	nfx_start(&f, DEFAULT);
	assert_int_equal(mac_table(&f, two, 2, two, 1), VIRTIO_NET_OK);
	assert_int_equal(f.net.nr_uni, 2);
	assert_int_equal(f.net.nr_multi, 1);
	/* A count past the data, bytes after the tables, a missing multicast count: refused, and
	 * the tables stay as they were. */
	n = 3;
	memcpy(m, &n, 4);
	memcpy(m + 4, two, 12);
	n = 0;
	memcpy(m + 16, &n, 4);
	assert_int_equal(ctrl(&f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, m, 20),
			 VIRTIO_NET_ERR);
	n = 2;
	memcpy(m, &n, 4);
	assert_int_equal(ctrl(&f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, m, 21),
			 VIRTIO_NET_ERR);
	assert_int_equal(ctrl(&f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, m, 16),
			 VIRTIO_NET_ERR);
	assert_int_equal(ctrl(&f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, m, 3),
			 VIRTIO_NET_ERR);
	n = 0xffffffff;
	memcpy(m, &n, 4);
	assert_int_equal(ctrl(&f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, m, 20),
			 VIRTIO_NET_ERR);
	n = 0;
	memcpy(m, &n, 4);
	n = 0x40000000; /* 6 * n wraps a 32-bit product */
	memcpy(m + 4, &n, 4);
	assert_int_equal(ctrl(&f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, m, 8),
			 VIRTIO_NET_ERR);
	assert_int_equal(f.net.nr_uni, 2);
	assert_int_equal(f.net.nr_multi, 1);
	/* A command longer than any well-formed one: refused unread. */
	memset(big, 0, sizeof(big));
	n = (sizeof(big) - 8) / 6;
	memcpy(big, &n, 4);
	assert_int_equal(ctrl(&f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, big,
			      sizeof(big)),
			 VIRTIO_NET_ERR);
	assert_int_equal(f.net.nr_uni, 2);
	/* The longest one we read: two full tables of 256. */
	n = 256;
	memcpy(big, &n, 4);
	memcpy(big + 4 + 6 * 256, &n, 4);
	assert_int_equal(ctrl(&f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, big,
			      8 + 12 * 256),
			 VIRTIO_NET_OK);
	assert_true(f.net.uni_overflow && f.net.multi_overflow);
	/* MAC_ADDR_SET: exactly six bytes. */
	assert_int_equal(ctrl(&f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, NEWMAC, 5),
			 VIRTIO_NET_ERR);
	assert_int_equal(ctrl(&f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, m, 7),
			 VIRTIO_NET_ERR);
	virtio_config_read(f.d, 0, (uint8_t *)&c, sizeof(c));
	assert_memory_equal(c.mac, MAC, 6);
	assert_int_equal(ctrl(&f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, NEWMAC, 6),
			 VIRTIO_NET_OK);
	virtio_config_read(f.d, 0, (uint8_t *)&c, sizeof(c));
	assert_memory_equal(c.mac, NEWMAC, 6);
	assert_int_equal(ctrl(&f, VIRTIO_NET_CTRL_MAC, 2, NULL, 0), VIRTIO_NET_ERR);
	nfx_teardown(&f);

	/* Without CTRL_MAC_ADDR. */
	nfx_start(&f, DEFAULT & ~F(CTRL_MAC_ADDR));
	assert_int_equal(ctrl(&f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, NEWMAC, 6),
			 VIRTIO_NET_ERR);
	virtio_config_read(f.d, 0, (uint8_t *)&c, sizeof(c));
	assert_memory_equal(c.mac, MAC, 6);
	nfx_teardown(&f);
}

static void ctrl_other_commands(void **state)
{
	struct nfx f;
	uint64_t v;
	uint16_t pairs = 1;

	nfx_start(&f, DEFAULT & ~F(GUEST_ECN));
	/* GUEST_OFFLOADS_SET: the negotiated ones, or fewer. */
	v = 1ULL << VIRTIO_NET_F_GUEST_CSUM | 1ULL << VIRTIO_NET_F_GUEST_TSO4;
	assert_int_equal(ctrl(&f, VIRTIO_NET_CTRL_GUEST_OFFLOADS,
			      VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET, &v, 8),
			 VIRTIO_NET_OK);
	v = 0;
	assert_int_equal(ctrl(&f, VIRTIO_NET_CTRL_GUEST_OFFLOADS,
			      VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET, &v, 8),
			 VIRTIO_NET_OK);
	const uint64_t refused[] = { 1ULL << VIRTIO_NET_F_GUEST_ECN, 1ULL << VIRTIO_NET_F_GUEST_UFO,
				     1ULL << VIRTIO_NET_F_CSUM, 1ULL << VIRTIO_NET_F_HOST_TSO4,
				     1ULL << 63 };
	for (unsigned i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		v = refused[i] | 1ULL << VIRTIO_NET_F_GUEST_CSUM;
		assert_int_equal(ctrl(&f, VIRTIO_NET_CTRL_GUEST_OFFLOADS,
				      VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET, &v, 8),
				 VIRTIO_NET_ERR);
	}
	v = 1ULL << VIRTIO_NET_F_GUEST_CSUM;
	assert_int_equal(ctrl(&f, VIRTIO_NET_CTRL_GUEST_OFFLOADS,
			      VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET, &v, 4),
			 VIRTIO_NET_ERR);
	assert_int_equal(ctrl(&f, VIRTIO_NET_CTRL_GUEST_OFFLOADS, 1, &v, 8), VIRTIO_NET_ERR);
	/* MQ was not offered (one pair). */
	assert_int_equal(ctrl(&f, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &pairs, 2),
			 VIRTIO_NET_ERR);
	assert_int_equal(f.net.curr_pairs, 1);
	/* Classes we do not know: VLAN (2), ANNOUNCE (3), anything. */
	assert_int_equal(ctrl(&f, 2, 0, "\0\0", 2), VIRTIO_NET_ERR);
	assert_int_equal(ctrl(&f, 3, 0, NULL, 0), VIRTIO_NET_ERR);
	assert_int_equal(ctrl(&f, 0xff, 0xff, "x", 1), VIRTIO_NET_ERR);
	nfx_teardown(&f);

	nfx_start(&f, DEFAULT & ~F(CTRL_GUEST_OFFLOADS));
	v = 0;
	assert_int_equal(ctrl(&f, VIRTIO_NET_CTRL_GUEST_OFFLOADS,
			      VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET, &v, 8),
			 VIRTIO_NET_ERR);
	nfx_teardown(&f);
}

/* A command without a writable byte for the ack, or without class and command. */
static void ctrl_malformed_needs_reset(void **state)
{
	struct nfx f;

	nfx_start(&f, DEFAULT);
	tq_add(&f.q[CTRLQ], &(struct tbuf){ put(&f, "\0\0\1", 3), 3, false }, 1);
	kick(&f, CTRLQ);
	assert_true(needs_reset(&f));
	nfx_reset(&f);
	nfx_go(&f, DEFAULT);
	const struct tbuf b[2] = { { put(&f, "\0", 1), 1, false }, { nfx_alloc(&f, 1), 1, true } };
	tq_add(&f.q[CTRLQ], b, 2);
	kick(&f, CTRLQ);
	assert_true(needs_reset(&f));
	nfx_reset(&f);
	nfx_go(&f, DEFAULT);
	assert_int_equal(ctrl_u8(&f, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, 0),
			 VIRTIO_NET_OK);
	nfx_teardown(&f);
}

/* ---- reset and the configuration area ---- */

static void reset_restores(void **state)
{
	struct nfx f;
	const uint8_t uni[1][6] = { { 0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc } };
	struct virtio_net_config c;
	struct virtio_net_hdr h;

	nfx_start(&f, DEFAULT);
	assert_int_equal(ctrl_u8(&f, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, 0),
			 VIRTIO_NET_OK);
	assert_int_equal(ctrl_u8(&f, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_ALLMULTI, 1),
			 VIRTIO_NET_OK);
	assert_int_equal(mac_table(&f, uni, 1, uni, 1), VIRTIO_NET_OK);
	assert_int_equal(ctrl(&f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, NEWMAC, 6),
			 VIRTIO_NET_OK);
	host_send(&f, NULL, NEWMAC, 60, 70); /* waits: no buffers */
	assert_int_equal(f.net.pairs[0].rx_len, TAP_VNET_HDR + 60);

	nfx_reset(&f);
	assert_true(f.net.promisc);
	assert_false(f.net.allmulti);
	assert_int_equal(f.net.nr_uni, 0);
	assert_int_equal(f.net.nr_multi, 0);
	assert_int_equal(f.net.pairs[0].rx_len, 0);
	virtio_config_read(f.d, 0, (uint8_t *)&c, sizeof(c));
	assert_memory_equal(c.mac, MAC, 6);
	assert_int_equal(c.status, VIRTIO_NET_S_LINK_UP);

	/* A frame while the device is reset waits in the tap for the next start. */
	host_send(&f, NULL, OTHER, 61, 72);
	nfx_go(&f, DEFAULT);
	post_rx(&f, 2048);
	post_rx(&f, 2048);
	kick(&f, RXQ);
	expect_rx(&f, 12, OTHER, 61, 72, &h); /* and the one from before the reset is gone */
	expect_no_rx(&f);
	host_send(&f, NULL, OTHER, 60, 71);
	expect_rx(&f, 12, OTHER, 60, 71, &h);
	nfx_teardown(&f);
}

/* A legacy driver may write the MAC (5.1.4.2); every other write is undone. */
static void config_write(void **state)
{
	struct nfx f;
	struct virtio_net_config c;
	static const uint8_t st[2] = { 0, 0 };

	assert_int_equal(nfx_init_opts(&f, 1, 0, 1500), 0);
	nfx_go_legacy(&f, DEFAULT, true);
	virtio_config_write(f.d, 0, NEWMAC, 6);
	virtio_config_read(f.d, 0, (uint8_t *)&c, sizeof(c));
	assert_memory_equal(c.mac, NEWMAC, 6);
	assert_int_equal(ctrl_u8(&f, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, 0),
			 VIRTIO_NET_OK);
	assert_true(net_rx_accept(&f.net, NEWMAC));
	assert_false(net_rx_accept(&f.net, MAC));
	/* Byte by byte too, as the legacy register block allows. */
	for (unsigned i = 0; i < 6; i++)
		virtio_config_write(f.d, i, &OTHER[i], 1);
	virtio_config_read(f.d, 0, (uint8_t *)&c, sizeof(c));
	assert_memory_equal(c.mac, OTHER, 6);
	/* The status, and a write across the MAC's end, are undone whole. */
	virtio_config_write(f.d, 6, st, 2);
	virtio_config_write(f.d, 4, NEWMAC, 4);
	virtio_config_read(f.d, 0, (uint8_t *)&c, sizeof(c));
	assert_memory_equal(c.mac, OTHER, 6);
	assert_int_equal(c.status, VIRTIO_NET_S_LINK_UP);
	assert_int_equal(c.mtu, 1500);
	/* Reset: back to the address the device was made with. */
	nfx_reset(&f);
	virtio_config_read(f.d, 0, (uint8_t *)&c, sizeof(c));
	assert_memory_equal(c.mac, MAC, 6);

	/* A modern driver's write is undone. */
	nfx_go(&f, DEFAULT);
	virtio_config_write(f.d, 0, NEWMAC, 6);
	virtio_config_write(f.d, 10, st, 2);
	virtio_config_read(f.d, 0, (uint8_t *)&c, sizeof(c));
	assert_memory_equal(c.mac, MAC, 6);
	assert_int_equal(c.mtu, 1500);
	assert_true(net_rx_accept(&f.net, OTHER)); /* promiscuous */
	nfx_teardown(&f);
}

/* 5.1.4, 2.5: the MAC the driver sets with CTRL_MAC_ADDR_SET is a change of the configuration
 * area, so the generation a driver reads afterwards differs from the one it read before, and
 * never comes round to it however many times the MAC changes in between. */
static void mac_set_moves_the_generation(void **state)
{
	struct nfx f;
	struct virtio_net_config c;
	uint8_t gen;

	nfx_start(&f, DEFAULT);
	gen = (uint8_t)virtio_config_generation(f.d);
	assert_int_equal(ctrl(&f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, NEWMAC, 6),
			 VIRTIO_NET_OK);
	virtio_config_read(f.d, 0, (uint8_t *)&c, sizeof(c));
	assert_memory_equal(c.mac, NEWMAC, 6);
	assert_int_not_equal((uint8_t)virtio_config_generation(f.d), gen);
	/* The same address again changes nothing. */
	gen = (uint8_t)virtio_config_generation(f.d);
	assert_int_equal(ctrl(&f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, NEWMAC, 6),
			 VIRTIO_NET_OK);
	assert_int_equal((uint8_t)virtio_config_generation(f.d), gen);
	/* 256 changes between two reads: still a different value. */
	for (unsigned i = 0; i < 256; i++)
		assert_int_equal(ctrl(&f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET,
				      i % 2 ? NEWMAC : OTHER, 6),
				 VIRTIO_NET_OK);
	assert_int_not_equal((uint8_t)virtio_config_generation(f.d), gen);
	/* Reset puts the device's address back: a change too. */
	gen = (uint8_t)virtio_config_generation(f.d);
	nfx_reset(&f);
	virtio_config_read(f.d, 0, (uint8_t *)&c, sizeof(c));
	assert_memory_equal(c.mac, MAC, 6);
	assert_int_not_equal((uint8_t)virtio_config_generation(f.d), gen);
	/* A modern driver's write is undone: no change; a legacy one's is kept: a change. */
	nfx_go(&f, DEFAULT);
	gen = (uint8_t)virtio_config_generation(f.d);
	virtio_config_write(f.d, 0, NEWMAC, 6);
	assert_int_equal((uint8_t)virtio_config_generation(f.d), gen);
	nfx_reset(&f);
	nfx_go_legacy(&f, DEFAULT, true);
	gen = (uint8_t)virtio_config_generation(f.d);
	virtio_config_write(f.d, 0, NEWMAC, 6);
	assert_int_not_equal((uint8_t)virtio_config_generation(f.d), gen);
	nfx_teardown(&f);
}

/* A receive chain of writable buffers of these lengths; their addresses in gpa[]. */
static uint16_t post_rx_split(struct nfx *f, const uint32_t *lens, unsigned n, uint64_t *gpa)
{
	struct tbuf b[8];

	assert_true(n <= 8);
	for (unsigned i = 0; i < n; i++) {
		gpa[i] = nfx_alloc(f, lens[i]);
		memset(gptr(f, gpa[i], lens[i]), 0xee, lens[i]);
		b[i] = (struct tbuf){ gpa[i], lens[i], true };
	}
	return tq_add(&f->q[RXQ], b, n);
}

/* Any layout (2.7.4; a legacy driver with ANY_LAYOUT, 5.1.6 legacy framing): the header in a
 * descriptor with the frame, split over several, or with the frame's start; on transmit, receive
 * and the control queue. */
static void any_layout(void **state)
{
	static const struct {
		uint32_t features;
		bool legacy;
		unsigned hlen;
	} drivers[] = {
		{ DEFAULT | 1u << VIRTIO_F_ANY_LAYOUT, true, 10 },
		{ DEFAULT | F(MRG_RXBUF) | 1u << VIRTIO_F_ANY_LAYOUT, true, 12 },
		{ DEFAULT, false, 12 },
	};
	struct nfx f;

	assert_int_equal(nfx_init_opts(&f, 1, 0, 1500), 0);
	for (unsigned k = 0; k < sizeof(drivers) / sizeof(drivers[0]); k++) {
		unsigned hlen = drivers[k].hlen;
		struct virtio_net_hdr h = hdr(0, 0, 0, 0, 0, 0), got;
		uint8_t frame[80], m[12 + 80], rx[12 + 80];
		/* Transmit cuts: inside the header, at its end + 3 (the frame's start with it). */
		const uint32_t cuts[][4] = { { 1, 2, hlen - 3 + 20, 80 - 20 },
					     { hlen + 3, 1, 70, 6 },
					     { 5, hlen - 5 + 80, 0, 0 } };
		const uint32_t rx_cuts[][3] = { { 4, hlen - 4 + 7, 80 - 7 + 50 },
						{ hlen + 80, 0, 0 },
						{ 1, hlen, 200 } };
		uint64_t gpa[8];
		uint32_t id, len;

		if (k)
			nfx_reset(&f);
		nfx_go_legacy(&f, drivers[k].features, drivers[k].legacy);
		assert_int_equal(f.net.hdr_len, hlen);
		if (drivers[k].legacy)
			assert_true(f.d->driver_features & 1ULL << VIRTIO_F_ANY_LAYOUT);
		frame_fill(frame, sizeof(frame), BCAST, 50 + k);
		memcpy(m, &h, hlen);
		memcpy(m + hlen, frame, sizeof(frame));
		for (unsigned c = 0; c < 3; c++) {
			struct tbuf b[4];
			unsigned n = 0;
			size_t off = 0;

			for (unsigned i = 0; i < 4 && cuts[c][i]; i++, n++) {
				b[i] = (struct tbuf){ put(&f, m + off, cuts[c][i]), cuts[c][i],
						      false };
				off += cuts[c][i];
			}
			assert_int_equal(off, hlen + sizeof(frame));
			tx_chain(&f, b, n);
			expect_tap(&f, &h, frame, sizeof(frame));
		}
		/* Receive: the header and frame spread over the chain's buffers as they fall. */
		for (unsigned c = 0; c < 3; c++) {
			unsigned n = rx_cuts[c][1] ? (rx_cuts[c][2] ? 3 : 2) : 1;
			uint16_t head = post_rx_split(&f, rx_cuts[c], n, gpa);
			size_t off = 0;

			kick(&f, RXQ);
			host_send(&f, NULL, MAC, sizeof(frame), 60 + c);
			assert_true(tq_used(&f.q[RXQ], &id, &len));
			assert_int_equal(id, head);
			assert_int_equal(len, hlen + sizeof(frame));
			for (unsigned i = 0; i < n && off < len; i++) {
				uint32_t take = rx_cuts[c][i] < len - off ? rx_cuts[c][i]
									   : (uint32_t)(len - off);

				memcpy(rx + off, gptr(&f, gpa[i], take), take);
				off += take;
			}
			memset(&got, 0, sizeof(got));
			memcpy(&got, rx, hlen);
			assert_int_equal(got.flags, 0);
			assert_int_equal(got.gso_type, VIRTIO_NET_HDR_GSO_NONE);
			if (hlen == 12)
				assert_int_equal(got.num_buffers, 1);
			frame_fill(frame, sizeof(frame), MAC, 60 + c);
			assert_memory_equal(rx + hlen, frame, sizeof(frame));
		}
		/* Control: MAC_ADDR_SET with the class alone, the command with two bytes of the
		 * address, the rest; and MAC_TABLE_SET cut inside a count. */
		{
			uint8_t cmd[2 + 6] = { VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET };
			uint64_t ack = nfx_alloc(&f, 1);
			struct virtio_net_config c;

			memcpy(cmd + 2, OTHER, 6);
			const struct tbuf b[4] = { { put(&f, cmd, 1), 1, false },
						   { put(&f, cmd + 1, 3), 3, false },
						   { put(&f, cmd + 4, 4), 4, false },
						   { ack, 1, true } };
			*gptr(&f, ack, 1) = 0xee;
			tq_add(&f.q[CTRLQ], b, 4);
			kick(&f, CTRLQ);
			assert_true(tq_used(&f.q[CTRLQ], &id, &len));
			assert_int_equal(len, 1);
			assert_int_equal(*gptr(&f, ack, 1), VIRTIO_NET_OK);
			virtio_config_read(f.d, 0, (uint8_t *)&c, sizeof(c));
			assert_memory_equal(c.mac, OTHER, 6);
		}
		{
			uint8_t cmd[2 + 4 + 6 + 4] = { VIRTIO_NET_CTRL_MAC,
						       VIRTIO_NET_CTRL_MAC_TABLE_SET, 1, 0, 0, 0 };
			uint64_t ack = nfx_alloc(&f, 1);

			memcpy(cmd + 6, NEWMAC, 6); /* one unicast address, no multicast */
			const struct tbuf b[3] = { { put(&f, cmd, 4), 4, false },
						   { put(&f, cmd + 4, sizeof(cmd) - 4),
						     sizeof(cmd) - 4, false },
						   { ack, 1, true } };
			*gptr(&f, ack, 1) = 0xee;
			tq_add(&f.q[CTRLQ], b, 3);
			kick(&f, CTRLQ);
			assert_true(tq_used(&f.q[CTRLQ], &id, &len));
			assert_int_equal(*gptr(&f, ack, 1), VIRTIO_NET_OK);
			assert_int_equal(f.net.nr_uni, 1);
			assert_memory_equal(f.net.uni[0], NEWMAC, 6);
		}
		assert_false(needs_reset(&f));
	}
	nfx_teardown(&f);
}

/* As the kernel tells the tap's rtnetlink socket: one RTM_NEWLINK for interface `index`. */
static void link_message(int fd, int index, unsigned flags)
{
	struct {
		struct nlmsghdr h;
		struct ifinfomsg i;
	} m = { { sizeof(m), RTM_NEWLINK, 0, 0, 0 }, { AF_UNSPEC, 0, 1, index, flags, 0 } };

	assert_int_equal(write(fd, &m, sizeof(m)), sizeof(m));
}

static uint16_t link_status(struct nfx *f)
{
	struct virtio_net_config c;

	virtio_config_read(f->d, 0, (uint8_t *)&c, sizeof(c));
	return c.status;
}

/* `status` follows the tap's link: it starts as the tap is (here down), and each change the
 * tap's rtnetlink socket reports is a configuration change (the generation moves on; the driver
 * gets the interrupt once it runs). A driver's write cannot bring back an old state. */
static void link_state_follows_the_tap(void **state)
{
	const unsigned up = IFF_UP | IFF_RUNNING | 0x10000; /* IFF_LOWER_UP: the carrier */
	struct nfx f;
	uint32_t gen;
	int sv[2];

	nfx_prepare(&f, 1, 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	f.tap.link_watched = true;
	f.tap.link_fd = sv[0];
	f.tap.ifindex = 5;
	f.tap.link_down = true;
	assert_int_equal(net_init(&f.net, "net0", &f.tap, MAC, 1500, &f.mem, &f.loop), 0);
	assert_int_equal(link_status(&f), 0);
	nfx_go(&f, DEFAULT);
	gen = virtio_config_generation(f.d); /* as the driver reads it */
	f.config_signals = 0;

	link_message(sv[1], 5, up);
	pump(&f);
	assert_int_equal(link_status(&f), VIRTIO_NET_S_LINK_UP);
	assert_int_equal(virtio_config_generation(f.d), ++gen);
	assert_int_equal(f.config_signals, 1);
	/* A driver's write to the area is undone to the link as it is now. */
	virtio_config_write(f.d, 6, (const uint8_t[2]){ 0, 0 }, 2);
	assert_int_equal(link_status(&f), VIRTIO_NET_S_LINK_UP);
	link_message(sv[1], 6, 0); /* another interface */
	link_message(sv[1], 5, IFF_UP | IFF_RUNNING); /* up, no carrier: down */
	pump(&f);
	assert_int_equal(link_status(&f), 0);
	assert_int_equal(virtio_config_generation(f.d), ++gen);
	assert_int_equal(f.config_signals, 2);
	link_message(sv[1], 5, IFF_UP | IFF_RUNNING); /* no change: nothing to tell */
	pump(&f);
	assert_int_equal(virtio_config_generation(f.d), gen);
	assert_int_equal(f.config_signals, 2);
	virtio_config_write(f.d, 6, (const uint8_t[2]){ VIRTIO_NET_S_LINK_UP, 0 }, 2);
	assert_int_equal(link_status(&f), 0);
	/* Before DRIVER_OK: the generation moves, there is no interrupt. */
	nfx_reset(&f);
	link_message(sv[1], 5, up);
	pump(&f);
	assert_int_equal(link_status(&f), VIRTIO_NET_S_LINK_UP);
	assert_int_not_equal(virtio_config_generation(f.d), gen);
	assert_int_equal(f.config_signals, 2);
	nfx_teardown(&f);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(features_and_config),
		cmocka_unit_test(rx_frame),
		cmocka_unit_test(rx_legacy_header),
		cmocka_unit_test(rx_mergeable),
		cmocka_unit_test(rx_direct),
		cmocka_unit_test(rx_signal_per_batch),
		cmocka_unit_test(rx_mtu),
		cmocka_unit_test(rx_waits_for_buffers),
		cmocka_unit_test(rx_mergeable_waits_for_enough_buffers),
		cmocka_unit_test(rx_frame_larger_than_the_ring),
		cmocka_unit_test(rx_frame_from_before_start),
		cmocka_unit_test(rx_buffer_too_small),
		cmocka_unit_test(rx_bad_chain_needs_reset),
		cmocka_unit_test(rx_dropped_from_tap),
		cmocka_unit_test(rx_filter),
		cmocka_unit_test(mac_table_overflow),
		cmocka_unit_test(tx_frame_reaches_tap),
		cmocka_unit_test(tx_scattered),
		cmocka_unit_test(tx_hold),
		cmocka_unit_test(tx_legacy_header),
		cmocka_unit_test(tx_malformed),
		cmocka_unit_test(tx_tap_full),
		cmocka_unit_test(ctrl_rx_commands),
		cmocka_unit_test(ctrl_mac_commands),
		cmocka_unit_test(ctrl_other_commands),
		cmocka_unit_test(ctrl_malformed_needs_reset),
		cmocka_unit_test(reset_restores),
		cmocka_unit_test(config_write),
		cmocka_unit_test(mac_set_moves_the_generation),
		cmocka_unit_test(any_layout),
		cmocka_unit_test(link_state_follows_the_tap),
	};

	signal(SIGALRM, hung);
	return RUN_ON_BOTH_RINGS(tests);
}
