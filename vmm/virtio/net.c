#include "virtio/net.h"
#include "event.h"
#include "log.h"

#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

static_assert(sizeof(struct virtio_net_config) == 12, "virtio_net_config up to mtu (5.1.4)");
static_assert(sizeof(struct virtio_net_hdr) == 12, "virtio_net_hdr with num_buffers (5.1.6)");

#define ETH_HLEN  14
#define VLAN_HLEN 4
/* The tap's header and the longest frame. */
#define RXBUF_SIZE (TAP_VNET_HDR + NET_MAX_FRAME)

/* The guest bits that say what it can receive, and the tap offloads they become. */
static const struct {
	unsigned feature, offload;
} guest_offloads[] = {
	{ VIRTIO_NET_F_GUEST_CSUM, TAP_OFFLOAD_CSUM },
	{ VIRTIO_NET_F_GUEST_TSO4, TAP_OFFLOAD_TSO4 },
	{ VIRTIO_NET_F_GUEST_TSO6, TAP_OFFLOAD_TSO6 },
	{ VIRTIO_NET_F_GUEST_ECN, TAP_OFFLOAD_TSO_ECN },
	{ VIRTIO_NET_F_GUEST_UFO, TAP_OFFLOAD_UFO },
};

static bool has(const struct virtio_dev *d, unsigned bit)
{
	return d->driver_features >> bit & 1;
}

static unsigned rxq(unsigned pair)
{
	return 2 * pair;
}

static unsigned txq(unsigned pair)
{
	return 2 * pair + 1;
}

static unsigned ctrlq(const struct net_dev *n)
{
	return 2 * n->max_pairs;
}

/* VIRTIO_NET_F_GUEST_* bits (as a feature mask) to TAP_OFFLOAD_* bits. Segmentation needs the
 * checksum offload under it, in the tap as in the spec (5.1.3.1). */
static unsigned offloads_of(uint64_t features)
{
	unsigned o = 0;

	for (unsigned i = 0; i < sizeof(guest_offloads) / sizeof(guest_offloads[0]); i++) {
		if (features >> guest_offloads[i].feature & 1)
			o |= guest_offloads[i].offload;
	}
	if (!(o & TAP_OFFLOAD_CSUM))
		o = 0;
	if (!(o & (TAP_OFFLOAD_TSO4 | TAP_OFFLOAD_TSO6)))
		o &= ~TAP_OFFLOAD_TSO_ECN;
	return o;
}

static uint64_t guest_offload_mask(void)
{
	uint64_t m = 0;

	for (unsigned i = 0; i < sizeof(guest_offloads) / sizeof(guest_offloads[0]); i++)
		m |= 1ULL << guest_offloads[i].feature;
	return m;
}

static int set_offloads(struct net_dev *n, unsigned offloads)
{
	int ret = tap_set_offloads(n->tap, offloads);

	if (ret)
		log_warn("%s: %s: TUNSETOFFLOAD: %s", n->vdev.name, n->tap->name, strerror(-ret));
	else
		n->offloads = offloads & n->tap->offloads;
	return ret;
}

/* --- Receive --------------------------------------------------------------------------------- */

bool net_rx_accept(const struct net_dev *n, const uint8_t dest[6])
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

	if (n->promisc)
		return true;
	if (dest[0] & 1) {
		if (!memcmp(dest, bcast, 6) || n->allmulti || n->multi_overflow)
			return true;
		for (unsigned i = 0; i < n->nr_multi; i++) {
			if (!memcmp(dest, n->multi[i], 6))
				return true;
		}
		return false;
	}
	if (!memcmp(dest, n->config.mac, 6) || n->uni_overflow)
		return true;
	for (unsigned i = 0; i < n->nr_uni; i++) {
		if (!memcmp(dest, n->uni[i], 6))
			return true;
	}
	return false;
}

/* The guest's header for the frame in p->rxbuf, from the tap's; false when the frame is one the
 * driver did not ask for (an offload it turned off since, or longer than the MTU). */
static bool rx_header(struct net_pair *p, struct virtio_net_hdr *h, size_t flen)
{
	struct net_dev *n = p->net;
	unsigned gso, need = 0;

	memset(h, 0, sizeof(*h));
	memcpy(h, p->rxbuf, TAP_VNET_HDR);
	h->num_buffers = htole16(1);
	/* Without GUEST_CSUM the flags must be 0 (5.1.6.4.2): the tap sets DATA_VALID anyway. */
	h->flags &= has(&n->vdev, VIRTIO_NET_F_GUEST_CSUM)
			    ? VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID
			    : 0;
	gso = h->gso_type & ~VIRTIO_NET_HDR_GSO_ECN;
	if (gso == VIRTIO_NET_HDR_GSO_TCPV4)
		need = TAP_OFFLOAD_TSO4;
	else if (gso == VIRTIO_NET_HDR_GSO_TCPV6)
		need = TAP_OFFLOAD_TSO6;
	else if (gso == VIRTIO_NET_HDR_GSO_UDP)
		need = TAP_OFFLOAD_UFO;
	else if (gso != VIRTIO_NET_HDR_GSO_NONE)
		return false;
	if (h->gso_type & VIRTIO_NET_HDR_GSO_ECN)
		need |= TAP_OFFLOAD_TSO_ECN;
	if ((n->offloads & need) != need)
		return false;
	if ((h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !(n->offloads & TAP_OFFLOAD_CSUM))
		return false;
	/* 5.1.4.1: no unsegmented frame longer than the MTU the driver accepted. */
	if (gso == VIRTIO_NET_HDR_GSO_NONE && has(&n->vdev, VIRTIO_NET_F_MTU) &&
	    flen > (size_t)le16toh(n->config.mtu) + ETH_HLEN + VLAN_HLEN)
		return false;
	return true;
}

/* Copies the stream "guest header, frame" from byte `off` into e's writable buffers. */
static size_t rx_copy(const struct virtq_elem *e, const struct virtio_net_hdr *h, size_t hlen,
		      const uint8_t *frame, size_t flen, size_t off)
{
	size_t done = 0;

	if (off < hlen)
		done = virtq_elem_write(e, 0, (const uint8_t *)h + off, hlen - off);
	if (off + done >= hlen && done < e->in_len)
		done += virtq_elem_write(e, done, frame + (off + done - hlen), flen - (off + done - hlen));
	return done;
}

/* Takes the receive queue's next chain into e: 1, 0 when there is none, or -errno when the device
 * broke (on a chain a receive buffer cannot be: readable parts, or no room for the header). */
static int rx_pop(struct net_pair *p, struct virtq_elem *e)
{
	struct net_dev *n = p->net;
	int ret = virtio_pop(&n->vdev, rxq(p->index), e);

	if (ret > 0 && (e->out_num || e->in_len < n->hdr_len)) {
		virtio_fail(&n->vdev, "receiveq%u: a buffer with %u readable buffers and %" PRIu64
				      " writable bytes (a header is %u)",
			    p->index, e->out_num, e->in_len, n->hdr_len);
		return -EINVAL;
	}
	return ret;
}

/* Puts the frame in p->rxbuf into the receive queue: 1 when it is done with (placed, or dropped
 * and counted), 0 when the queue has too few buffers (every chain taken is put back), or -errno
 * when the device broke. */
static int rx_place(struct net_pair *p)
{
	struct net_dev *n = p->net;
	struct virtio_dev *d = &n->vdev;
	unsigned q = rxq(p->index), nb = 0;
	struct virtq *vq = &d->queues[q].vq;
	const uint8_t *frame = p->rxbuf + TAP_VNET_HDR;
	size_t flen = p->rx_len - TAP_VNET_HDR, total = n->hdr_len + flen, off = 0;
	bool mrg = has(d, VIRTIO_NET_F_MRG_RXBUF);
	struct virtio_net_hdr h;

	if (!rx_header(p, &h, flen)) {
		p->stats.rx_dropped++;
		return 1;
	}
	while (off < total) {
		struct virtq_elem *e = nb ? p->elem : p->first;
		size_t w;
		int ret;

		if (nb == vq->size) {
			/* A ring's worth of buffers and still no room: they can never hold it. */
			while (nb)
				virtq_unpop(vq, p->used[--nb].ndesc);
			p->stats.rx_dropped++;
			return 1;
		}
		ret = rx_pop(p, e);
		if (ret < 0)
			return ret;
		if (ret == 0) {
			/* Ask for a kick before putting the chains back: then "available" means new
			 * buffers, and with EVENT_IDX avail_event is the slot the driver fills next. */
			if (virtq_enable_notify(vq, true))
				continue;
			while (nb)
				virtq_unpop(vq, p->used[--nb].ndesc);
			return 0;
		}
		w = rx_copy(e, &h, n->hdr_len, frame, flen, off);
		p->used[nb++] = virtq_used_of(e, (uint32_t)w);
		off += w;
		if (!mrg && off < total) {
			/* One buffer per frame without MRG_RXBUF (5.1.6.3.2), and this one is too
			 * small: the driver gets it back empty and the frame is dropped. */
			p->used[0].len = 0;
			virtq_push_many(vq, p->used, 1);
			p->stats.rx_dropped++;
			return 1;
		}
	}
	if (nb > 1) {
		uint16_t v = htole16((uint16_t)nb);

		virtq_elem_write(p->first, offsetof(struct virtio_net_hdr, num_buffers), &v, 2);
	}
	virtq_push_many(vq, p->used, nb);
	p->stats.rx_packets++;
	p->stats.rx_bytes += flen;
	return 1;
}

/* The most iovecs one read of the tap takes (IOV_MAX): its header, the chains', the rest of rxbuf. */
#define RX_IOV 1024

/* Puts back the chains p->used[from..nb) that a frame did not use, the last taken first. */
static void rx_unpop(struct net_pair *p, unsigned from, unsigned nb)
{
	struct virtq *vq = &p->net->vdev.queues[rxq(p->index)].vq;

	while (nb > from)
		virtq_unpop(vq, p->used[--nb].ndesc);
}

/* Reads the next frame from the pair's tap queue straight into the receive queue's buffers, and
 * places it there when it fits: the one copy is the kernel's. It takes the chains available, up to
 * p->rx_hint bytes (one chain without MRG_RXBUF); what does not fit lands in rxbuf after them and
 * is copied into the next chains. When those are too few, the whole frame is gathered into rxbuf
 * (p->rx_len) for rx_place, every chain put back.
 * 1: a frame was placed, dropped, or is in rxbuf; 0: the tap has none; -errno: the device broke. */
static int rx_read(struct net_pair *p)
{
	struct net_dev *n = p->net;
	struct virtio_dev *d = &n->vdev;
	unsigned q = rxq(p->index), nb = 0, niov = 1, k;
	struct virtq *vq = &d->queues[q].vq;
	size_t room = 0, flen, left;
	struct virtio_net_hdr h;
	uint8_t dest[6];
	ssize_t r;

	p->rx_iov[0] = (struct iovec){ p->rxbuf, TAP_VNET_HDR };
	do {
		struct virtq_elem *e = nb ? p->elem : p->first;
		size_t skip = nb ? 0 : n->hdr_len; /* the guest's header is written after the read */
		uint64_t room_e;
		int ret = rx_pop(p, e);

		if (ret < 0)
			return ret;
		if (ret == 0)
			break;
		if (niov + e->in_num + 1 > RX_IOV) {
			virtq_unpop(vq, e->ndesc);
			break;
		}
		for (unsigned i = e->out_num; i < e->out_num + e->in_num; i++) {
			const struct iovec *v = &e->iov[i];

			if (skip >= v->iov_len) {
				skip -= v->iov_len;
				continue;
			}
			p->rx_iov[niov++] = (struct iovec){ (uint8_t *)v->iov_base + skip,
							    v->iov_len - skip };
			skip = 0;
		}
		/* .len is the chain's room for frame bytes until the frame is placed (a frame fills
		 * the chains in order, so room past the longest frame is never reached). */
		room_e = e->in_len - (nb ? 0 : n->hdr_len);
		p->used[nb] = virtq_used_of(e, room_e < NET_MAX_FRAME ? (uint32_t)room_e
								       : NET_MAX_FRAME);
		room += p->used[nb++].len;
	} while (has(d, VIRTIO_NET_F_MRG_RXBUF) && room < p->rx_hint && nb < vq->size);
	if (room < NET_MAX_FRAME)
		p->rx_iov[niov++] = (struct iovec){ p->rxbuf + TAP_VNET_HDR + room,
						    NET_MAX_FRAME - room };
	do
		r = readv(p->tap_fd, p->rx_iov, (int)niov);
	while (r < 0 && errno == EINTR);
	if (r <= 0) {
		rx_unpop(p, 0, nb);
		/* r == 0: not from a tap; a stand-in socket whose peer left. */
		if (r < 0 && errno != EAGAIN && !p->warned) {
			log_warn("%s: reading %s queue %u: %s", d->name, n->tap->name, p->index,
				 strerror(errno));
			p->warned = true;
		}
		return 0;
	}
	if ((size_t)r < TAP_VNET_HDR + ETH_HLEN) {
		rx_unpop(p, 0, nb);
		p->stats.rx_dropped++;
		return 1;
	}
	flen = (size_t)r - TAP_VNET_HDR;
	p->rx_hint = flen >= p->rx_hint ? flen : p->rx_hint - (p->rx_hint - flen) / 8;
	iov_copy(p->rx_iov, niov, TAP_VNET_HDR, dest, sizeof(dest), false);
	if (!net_rx_accept(n, dest)) {
		rx_unpop(p, 0, nb);
		p->stats.rx_filtered++;
		return 1;
	}
	if (flen > room) {
		/* The rest is in rxbuf, after the part the chains took: into more chains with it. */
		size_t read_room = room;

		p->stats.rx_copied++;
		while (room < flen && has(d, VIRTIO_NET_F_MRG_RXBUF) && nb < vq->size) {
			struct virtq_elem *e = nb ? p->elem : p->first;
			int ret = rx_pop(p, e);
			size_t w;

			if (ret < 0)
				return ret;
			if (ret == 0)
				break;
			w = virtq_elem_write(e, nb ? 0 : n->hdr_len, p->rxbuf + TAP_VNET_HDR + room,
					     flen - room);
			p->used[nb++] = virtq_used_of(e, (uint32_t)w);
			room += w;
		}
		if (room < flen) {
			/* Too few: the whole frame into rxbuf, to wait there for the driver's. */
			iov_copy(p->rx_iov + 1, niov - 1, 0, p->rxbuf + TAP_VNET_HDR, read_room,
				 false);
			rx_unpop(p, 0, nb);
			p->rx_len = (size_t)r;
			return 1;
		}
	}
	if (!rx_header(p, &h, flen)) {
		rx_unpop(p, 0, nb);
		p->stats.rx_dropped++;
		return 1;
	}
	for (k = 0, left = flen; left; k++) {
		size_t take = p->used[k].len < left ? p->used[k].len : left;

		p->used[k].len = (uint32_t)(take + (k ? 0 : n->hdr_len));
		left -= take;
	}
	rx_unpop(p, k, nb);
	h.num_buffers = htole16((uint16_t)k);
	virtq_elem_write(p->first, 0, &h, n->hdr_len);
	virtq_push_many(vq, p->used, k);
	p->stats.rx_packets++;
	p->stats.rx_bytes += flen;
	return 1;
}

/* Reads frames from the pair's tap queue into its receive queue until the tap has none (the fd
 * is edge-triggered: that is the only way to hear of more), the driver has no buffers (waiting,
 * until it kicks), or a turn's budget is spent (then it kicks itself). One signal for the whole
 * batch, as the driver's used_event allows: the guest takes the frames that came together in
 * one interrupt, which costs it an exit (bench/net.sh: fewer interrupts than one per frame, and
 * more throughput). Lock held. */
static void rx_run(struct net_pair *p)
{
	struct virtio_dev *d = &p->net->vdev;
	unsigned done = 0;

	while (virtio_live(d) && p->active) {
		if (!p->rx_len && rx_read(p) <= 0)
			break; /* the tap has no frame, or the device broke */
		if (p->rx_len) {
			int ret = rx_place(p);

			if (ret < 0)
				break;
			if (ret == 0) {
				p->waiting = true; /* rx_place asked for the kick that ends it */
				break;
			}
			p->rx_len = 0;
		}
		if (++done == NET_BUDGET) {
			virtio_kick(d, rxq(p->index));
			break;
		}
	}
	if (done)
		virtio_notify(d, rxq(p->index));
}

static void tap_event(void *opaque, uint32_t events)
{
	struct net_pair *p = opaque;
	struct virtio_dev *d = &p->net->vdev;

	pthread_mutex_lock(&d->lock);
	if (virtio_live(d) && p->active && !p->waiting)
		rx_run(p);
	pthread_mutex_unlock(&d->lock);
}

/* --- Transmit -------------------------------------------------------------------------------- */

/* Whether the driver's header for a frame of flen bytes is one it may send and the tap takes. */
static bool tx_header_ok(const struct net_dev *n, const struct virtio_net_hdr *h, size_t flen)
{
	const struct virtio_dev *d = &n->vdev;
	unsigned gso = h->gso_type & ~VIRTIO_NET_HDR_GSO_ECN, feature;

	if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		if (!has(d, VIRTIO_NET_F_CSUM) ||
		    (size_t)le16toh(h->csum_start) + le16toh(h->csum_offset) + 2 > flen)
			return false;
	}
	if (gso == VIRTIO_NET_HDR_GSO_NONE)
		return !(h->gso_type & VIRTIO_NET_HDR_GSO_ECN);
	if (gso == VIRTIO_NET_HDR_GSO_TCPV4)
		feature = VIRTIO_NET_F_HOST_TSO4;
	else if (gso == VIRTIO_NET_HDR_GSO_TCPV6)
		feature = VIRTIO_NET_F_HOST_TSO6;
	else if (gso == VIRTIO_NET_HDR_GSO_UDP)
		feature = VIRTIO_NET_F_HOST_UFO;
	else
		return false;
	if (!has(d, feature) || !h->gso_size || !(h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM))
		return false;
	return !(h->gso_type & VIRTIO_NET_HDR_GSO_ECN) || has(d, VIRTIO_NET_F_HOST_ECN);
}

/* Sends one chain's frame to the tap, or drops it (counted). */
static void tx_one(struct net_pair *p, const struct virtq_elem *e, int fd)
{
	struct net_dev *n = p->net;
	struct virtio_net_hdr h = { 0 }, th;
	size_t flen, skip = n->hdr_len;
	unsigned niov = 1;
	ssize_t r;

	/* Only readable buffers (5.1.6.2), a header and at least an Ethernet header after it. */
	if (e->in_num || e->out_len < n->hdr_len + ETH_HLEN ||
	    e->out_len - n->hdr_len > NET_MAX_FRAME)
		goto drop;
	flen = e->out_len - n->hdr_len;
	virtq_elem_read(e, 0, &h, n->hdr_len);
	if (!tx_header_ok(n, &h, flen))
		goto drop;
	/* What the tap gets is our copy: the guest can change its buffer, not what was checked.
	 * DATA_VALID from a guest means nothing to the host (5.1.6.2.1). hdr_len is a hint. */
	memset(&th, 0, sizeof(th));
	th.flags = h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM;
	th.gso_type = h.gso_type;
	th.hdr_len = le16toh(h.hdr_len) > flen ? htole16((uint16_t)flen) : h.hdr_len;
	th.gso_size = h.gso_size;
	th.csum_start = h.csum_start;
	th.csum_offset = h.csum_offset;
	p->iov[0] = (struct iovec){ &th, TAP_VNET_HDR };
	for (unsigned i = 0; i < e->out_num; i++) {
		const struct iovec *v = &e->iov[i];

		if (skip >= v->iov_len) {
			skip -= v->iov_len;
			continue;
		}
		p->iov[niov++] = (struct iovec){ (uint8_t *)v->iov_base + skip, v->iov_len - skip };
		skip = 0;
	}
	do
		r = writev(fd, p->iov, (int)niov);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		/* The tap down, or its queue full: the frame is lost, as on a wire. */
		if (!p->warned)
			log_warn("%s: writing %s: %s (further errors at debug level)", n->vdev.name,
				 n->tap->name, strerror(errno));
		else
			log_debug("%s: writing %s: %s", n->vdev.name, n->tap->name, strerror(errno));
		p->warned = true;
		p->stats.tx_dropped++;
		return;
	}
	p->stats.tx_packets++;
	p->stats.tx_bytes += flen;
	return;
drop:
	log_debug("%s: transmitq%u: malformed frame dropped (%u readable, %u writable buffers, "
		  "%" PRIu64 " bytes)",
		  n->vdev.name, p->index, e->out_num, e->in_num, e->out_len);
	p->stats.tx_dropped++;
}

static void tx_release(struct net_pair *p)
{
	p->tx_held = false;
	virtio_notify(&p->net->vdev, txq(p->index));
}

/* Transmit interrupt moderation, as a NIC's transmit coalescing: buffers the device has used are
 * signalled at most once per hold (tx_hold_ns), when the timer set by the first of them goes off.
 * The frames went to the tap at once; only the driver's notice that their buffers are free
 * waits, and Linux's driver frees them on its next transmit anyway. Each signal is an interrupt,
 * and one per ACK sent cost the guest an exit each, nested dearly: bench/net.sh took 2x QEMU's
 * transmit interrupts and less throughput both ways without it. Half the ring used ends the
 * hold at once, so a driver that stopped its queue for room is not kept waiting. A hold starts
 * only for buffers the driver wants an interrupt for. Lock held. */
static void tx_signal(struct net_pair *p)
{
	const struct net_dev *n = p->net;
	const struct virtq *vq = &n->vdev.queues[txq(p->index)].vq;
	struct itimerspec its = { .it_value = { (time_t)(n->tx_hold_ns / 1000000000u),
						(long)(n->tx_hold_ns % 1000000000u) } };

	if (!n->tx_hold_ns || vq->pending_used >= vq->size / 2) {
		tx_release(p);
		return;
	}
	if (p->tx_held)
		return; /* the first buffer's timer covers these too */
	/* None asked for (a driver sending a stream sets used_event well ahead): no timer to wake
	 * this thread for nothing. */
	if (!virtq_notify_due(vq) || timerfd_settime(p->tx_timer, 0, &its, NULL)) {
		tx_release(p); /* the timer cannot fail with a valid time; never strand the buffers */
		return;
	}
	p->tx_held = true;
}

static void tx_timer_event(void *opaque, uint32_t events)
{
	struct net_pair *p = opaque;
	struct virtio_dev *d = &p->net->vdev;
	uint64_t expirations;

	(void)events;
	(void)!read(p->tx_timer, &expirations, sizeof(expirations));
	pthread_mutex_lock(&d->lock);
	if (p->tx_held)
		tx_release(p);
	pthread_mutex_unlock(&d->lock);
}

static void tx_run(struct net_pair *p)
{
	struct net_dev *n = p->net;
	struct virtio_dev *d = &n->vdev;
	unsigned q = txq(p->index), done = 0;
	struct virtq *vq = &d->queues[q].vq;
	/* A driver must not use a pair past curr_pairs; if it does, its frames still go out. */
	int fd = p->active ? p->tap_fd : n->pairs[0].tap_fd;
	bool pushed = false;

	virtq_enable_notify(vq, false);
	while (virtio_live(d)) {
		int ret = virtio_pop(d, q, p->elem);

		if (ret < 0)
			break;
		if (ret == 0) {
			if (virtq_enable_notify(vq, true))
				continue;
			break;
		}
		tx_one(p, p->elem, fd);
		virtq_push(vq, p->elem, 0);
		pushed = true;
		if (++done == NET_BUDGET) {
			virtio_kick(d, q); /* the rest on the next turn of the loop */
			break;
		}
	}
	if (pushed)
		tx_signal(p);
}

/* --- Control queue --------------------------------------------------------------------------- */

/* Attaches pairs [0, k) and detaches the rest. Lock held. */
static int set_pairs(struct net_dev *n, unsigned k)
{
	int ret = 0;

	for (unsigned i = 0; i < n->max_pairs; i++) {
		struct net_pair *p = &n->pairs[i];
		bool on = i < k;

		if (on == p->active)
			continue;
		if (i > 0 && (ret = tap_enable_queue(n->tap, i, on))) {
			virtio_log(&n->vdev, LOG_WARN, "%s: %s queue %u: %s", n->vdev.name,
				   on ? "attaching" : "detaching", i, strerror(-ret));
			break;
		}
		p->active = on;
		if (!on) {
			/* The driver may no longer look at this receive queue (5.1.6.5.5). */
			if (p->rx_len)
				p->stats.rx_dropped++;
			p->rx_len = 0;
			p->waiting = false;
		} else {
			virtio_kick(&n->vdev, rxq(i)); /* read what the tap queue may hold */
		}
	}
	n->curr_pairs = k;
	return ret;
}

/* The MAC filter tables of VIRTIO_NET_CTRL_MAC_TABLE_SET: unicast, then multicast, each a le32
 * count and that many addresses, filling the command exactly. */
static uint8_t mac_table_set(struct net_dev *n, const uint8_t *data, size_t len)
{
	unsigned count[2];
	size_t at[2], off = 0;

	for (int t = 0; t < 2; t++) {
		uint32_t c;

		if (len - off < 4)
			return VIRTIO_NET_ERR;
		memcpy(&c, data + off, 4);
		c = le32toh(c);
		off += 4;
		if (c > (len - off) / 6)
			return VIRTIO_NET_ERR;
		count[t] = c;
		at[t] = off;
		off += (size_t)c * 6;
	}
	if (off != len)
		return VIRTIO_NET_ERR;
	/* More addresses than the table holds: accept all of that kind (a filter is a hint). */
	n->uni_overflow = count[0] > NET_MAC_TABLE;
	n->nr_uni = n->uni_overflow ? 0 : count[0];
	memcpy(n->uni, data + at[0], n->nr_uni * 6);
	n->multi_overflow = count[1] > NET_MAC_TABLE;
	n->nr_multi = n->multi_overflow ? 0 : count[1];
	memcpy(n->multi, data + at[1], n->nr_multi * 6);
	return VIRTIO_NET_OK;
}

static uint8_t ctrl_command(struct net_dev *n, uint8_t class, uint8_t cmd, const uint8_t *data,
			    size_t len)
{
	struct virtio_dev *d = &n->vdev;

	switch (class) {
	case VIRTIO_NET_CTRL_RX:
		if (!has(d, VIRTIO_NET_F_CTRL_RX) || len != 1 || data[0] > 1)
			return VIRTIO_NET_ERR;
		if (cmd == VIRTIO_NET_CTRL_RX_PROMISC)
			n->promisc = data[0];
		else if (cmd == VIRTIO_NET_CTRL_RX_ALLMULTI)
			n->allmulti = data[0];
		else
			return VIRTIO_NET_ERR; /* RX_EXTRA is not offered */
		return VIRTIO_NET_OK;
	case VIRTIO_NET_CTRL_MAC:
		if (cmd == VIRTIO_NET_CTRL_MAC_TABLE_SET && has(d, VIRTIO_NET_F_CTRL_RX))
			return mac_table_set(n, data, len);
		if (cmd == VIRTIO_NET_CTRL_MAC_ADDR_SET && has(d, VIRTIO_NET_F_CTRL_MAC_ADDR) &&
		    len == 6) {
			/* Before the command is used (5.1.6.5.2.1); a configuration change. */
			virtio_config_set(d, offsetof(struct virtio_net_config, mac), data, 6);
			n->shadow = n->config;
			return VIRTIO_NET_OK;
		}
		return VIRTIO_NET_ERR;
	case VIRTIO_NET_CTRL_MQ: {
		uint16_t k;

		if (!has(d, VIRTIO_NET_F_MQ) || cmd != VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET || len != 2)
			return VIRTIO_NET_ERR;
		memcpy(&k, data, 2);
		k = le16toh(k);
		if (k < 1 || k > n->max_pairs)
			return VIRTIO_NET_ERR;
		return set_pairs(n, k) ? VIRTIO_NET_ERR : VIRTIO_NET_OK;
	}
	case VIRTIO_NET_CTRL_GUEST_OFFLOADS: {
		uint64_t v;

		if (!has(d, VIRTIO_NET_F_CTRL_GUEST_OFFLOADS) ||
		    cmd != VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET || len != 8)
			return VIRTIO_NET_ERR;
		memcpy(&v, data, 8);
		v = le64toh(v);
		/* Only offloads the driver negotiated (5.1.6.5.6.2). */
		if (v & ~(d->driver_features & guest_offload_mask()))
			return VIRTIO_NET_ERR;
		return set_offloads(n, offloads_of(v)) ? VIRTIO_NET_ERR : VIRTIO_NET_OK;
	}
	}
	return VIRTIO_NET_ERR;
}

static void ctrl_run(struct net_dev *n)
{
	struct virtio_dev *d = &n->vdev;
	unsigned q = ctrlq(n);
	struct virtq_elem *e = n->ctrl_elem;
	bool pushed = false;

	while (virtio_live(d)) {
		int ret = virtio_pop(d, q, e);
		uint8_t ack = VIRTIO_NET_ERR;

		if (ret < 0)
			break;
		if (ret == 0) {
			if (virtq_enable_notify(&d->queues[q].vq, true))
				continue;
			break;
		}
		/* class and command readable, then the ack byte writable (5.1.6.5). */
		if (e->out_len < 2 || !e->in_len) {
			virtio_fail(d, "controlq: a command of %" PRIu64 " readable and %" PRIu64
				       " writable bytes",
				    e->out_len, e->in_len);
			break;
		}
		/* Anything longer than the longest command we know is refused unread. */
		virtq_elem_read(e, 0, n->ctrl_buf, 2);
		if (e->out_len <= NET_CTRL_MAX) {
			size_t len = virtq_elem_read(e, 0, n->ctrl_buf, e->out_len);

			ack = ctrl_command(n, n->ctrl_buf[0], n->ctrl_buf[1], n->ctrl_buf + 2,
					   len - 2);
		}
		if (ack != VIRTIO_NET_OK)
			log_debug("%s: control command %u.%u (%" PRIu64 " bytes) refused", d->name,
				  n->ctrl_buf[0], n->ctrl_buf[1], e->out_len);
		virtq_elem_write(e, 0, &ack, 1);
		virtq_push(&d->queues[q].vq, e, 1);
		pushed = true;
	}
	if (pushed)
		virtio_notify(d, q);
}

/* --- Link ------------------------------------------------------------------------------------ */

/* `status` (5.1.4) says what the tap's link is: LINK_UP while the tap is up and has its carrier.
 * A change is a configuration change: the generation moves on and, once the driver is running,
 * it gets the configuration interrupt (Linux's driver then turns its carrier on or off). Frames
 * still go both ways while it is down, if the tap takes them: the guest's stack stops sending.
 * Lock held. */
static void link_set(struct net_dev *n)
{
	uint16_t status = n->tap->link_down ? 0 : VIRTIO_NET_S_LINK_UP;

	if (le16toh(n->config.status) == status)
		return;
	n->config.status = n->shadow.status = htole16(status);
	log_info("%s: %s: link %s", n->vdev.name, n->tap->name, status ? "up" : "down");
	virtio_config_changed(&n->vdev);
}

/* The tap's rtnetlink socket (backend/tap.h) has news: read it (only this thread does), then
 * tell the driver if the link changed. */
static void link_event(void *opaque, uint32_t events)
{
	struct net_dev *n = opaque;

	(void)events;
	if (!tap_link_update(n->tap))
		return;
	pthread_mutex_lock(&n->vdev.lock);
	link_set(n);
	pthread_mutex_unlock(&n->vdev.lock);
}

/* --- vhost-net ------------------------------------------------------------------------------- */

/* A kick vmm's loop saw on a queue the kernel should serve: the driver enabled it after DRIVER_OK,
 * or again after stopping it (virtio-mmio). Its ring starts, and the kick is passed on. */
static void vhost_kick(struct net_dev *n, unsigned q)
{
	struct vhost *vh = &n->vhost[q / 2];
	int ret;

	if (vhost_ring_running(vh, q))
		return;
	if ((ret = vhost_ring_start(vh, q))) {
		virtio_fail(&n->vdev, "queue %u: vhost-net cannot serve it: %s", q, strerror(-ret));
		return;
	}
	virtio_kick(&n->vdev, q);
}

/* The device is in NEEDS_RESET (a bad control command, a ring the kernel could not take, a queue
 * the transport refused): the kernel's rings stop too, as vmm's own queues do. */
static void net_failed(struct virtio_dev *d)
{
	struct net_dev *n = d->priv;

	for (unsigned i = 0; n->vhost && i < n->max_pairs; i++)
		vhost_stop(&n->vhost[i]);
}

static int vhost_net_start(struct net_dev *n)
{
	struct virtio_dev *d = &n->vdev;
	int ret;

	/* The tap gets the guest's header as it is: the tap's size must be the guest's. */
	if ((ret = tap_set_vnet_hdr(n->tap, (int)n->hdr_len))) {
		log_error("%s: %s: TUNSETVNETHDRSZ %u: %s", d->name, n->tap->name, n->hdr_len,
			  strerror(-ret));
		return ret;
	}
	for (unsigned i = 0; i < n->max_pairs; i++) {
		if ((ret = vhost_start(&n->vhost[i]))) {
			while (i)
				vhost_stop(&n->vhost[--i]);
			return ret;
		}
	}
	return 0;
}

int net_set_vhost(struct net_dev *n, const int *vhost_fds)
{
	struct virtio_dev *d = &n->vdev;
	unsigned opened = 0;
	int ret = 0;

	if (!(n->vhost = calloc(n->max_pairs, sizeof(*n->vhost)))) {
		ret = -ENOMEM;
		goto fail;
	}
	for (; opened < n->max_pairs; opened++) {
		if ((ret = vhost_open(&n->vhost[opened], vhost_fds[opened], d, rxq(opened), 2,
				      n->pairs[opened].tap_fd)))
			goto fail;
	}
	/* vmm no longer reads the tap: the kernel does. */
	for (unsigned i = 0; i < n->max_pairs; i++)
		event_del(d->loop, n->pairs[i].tap_fd);
	pthread_mutex_lock(&d->lock);
	d->features = vhost_offer(&n->vhost[0], d->features, 1ULL << VIRTIO_NET_F_MRG_RXBUF);
	d->features &= ~(1ULL << VIRTIO_NET_F_CTRL_RX);
	pthread_mutex_unlock(&d->lock);
	log_debug("%s: vhost-net features %#llx; offering %#llx", d->name,
		  (unsigned long long)n->vhost[0].features, (unsigned long long)d->features);
	return 0;
fail:
	/* The descriptors not yet taken are closed too, as promised. */
	for (unsigned i = n->vhost ? opened + 1 : 0; i < n->max_pairs; i++)
		close(vhost_fds[i]);
	for (unsigned i = 0; n->vhost && i < opened; i++)
		vhost_close(&n->vhost[i]);
	free(n->vhost);
	n->vhost = NULL;
	return ret;
}

/* --- Device ---------------------------------------------------------------------------------- */

static void net_queue_notify(struct virtio_dev *d, unsigned q)
{
	struct net_dev *n = d->priv;
	struct net_pair *p;

	if (q == ctrlq(n)) {
		ctrl_run(n);
		return;
	}
	p = &n->pairs[q / 2];
	if (n->vhost) {
		vhost_kick(n, q);
		return;
	}
	if (q % 2) {
		tx_run(p);
		return;
	}
	if (!p->active)
		return;
	/* Buffers came: notifications off again while there are buffers to use. */
	p->waiting = false;
	virtq_enable_notify(&d->queues[q].vq, false);
	rx_run(p);
}

static int net_start(struct virtio_dev *d)
{
	struct net_dev *n = d->priv;

	/* The header has num_buffers for a modern driver, or a legacy one with MRG_RXBUF. */
	n->hdr_len = has(d, VIRTIO_F_VERSION_1) || has(d, VIRTIO_NET_F_MRG_RXBUF)
			     ? sizeof(struct virtio_net_hdr)
			     : TAP_VNET_HDR;
	if (set_offloads(n, offloads_of(d->driver_features)))
		return -EIO;
	n->pairs[0].active = true;
	n->curr_pairs = 1;
	if (n->vhost)
		return vhost_net_start(n);
	/* The fds are edge-triggered: frames that came before now need a first read. */
	virtio_kick(d, rxq(0));
	return 0;
}

static void net_reset(struct virtio_dev *d)
{
	struct net_dev *n = d->priv;

	/* The kernel first: when this returns, nothing touches the old rings. */
	for (unsigned i = 0; n->vhost && i < n->max_pairs; i++)
		vhost_stop(&n->vhost[i]);

	for (unsigned i = 0; i < n->max_pairs; i++) {
		struct net_pair *p = &n->pairs[i];

		if (i > 0 && p->active)
			tap_enable_queue(n->tap, i, false);
		p->active = p->waiting = p->tx_held = false;
		p->rx_len = 0;
	}
	n->curr_pairs = 1;
	n->promisc = true;
	n->allmulti = n->uni_overflow = n->multi_overflow = false;
	n->nr_uni = n->nr_multi = 0; /* an empty table (5.1.6.5.2.1) */
	virtio_config_set(d, offsetof(struct virtio_net_config, mac), n->mac, 6);
	n->shadow = n->config;
	set_offloads(n, 0);
}

static void net_irq_route(struct virtio_dev *d)
{
	struct net_dev *n = d->priv;

	for (unsigned i = 0; n->vhost && i < n->max_pairs; i++)
		vhost_irq_route(&n->vhost[i]);
}

static void net_queue_stop(struct virtio_dev *d, unsigned q)
{
	struct net_dev *n = d->priv;

	/* vmm's own queues hold nothing between turns that virtq_push would not drop. */
	if (n->vhost && q != ctrlq(n))
		vhost_ring_stop(&n->vhost[q / 2], q);
}

/* A legacy driver may write the MAC (5.1.4.2); nothing else in the area is writable, so any
 * other write is undone. */
static void net_config_write(struct virtio_dev *d, uint32_t off, uint32_t len)
{
	struct net_dev *n = d->priv;

	if (d->legacy_driver && off + len <= sizeof(n->config.mac))
		n->shadow = n->config;
	else
		n->config = n->shadow;
}

static void net_log_state(struct virtio_dev *d)
{
	struct net_dev *n = d->priv;

	for (unsigned i = 0; i < n->max_pairs; i++) {
		const struct net_pair *p = &n->pairs[i];

		log_info("%s: pair %u: %s%s%s", d->name, i, p->active ? "active" : "inactive",
			 p->waiting ? ", a frame waits for receive buffers" : "",
			 !n->vhost ? ""
			 : vhost_ring_running(&n->vhost[i], rxq(i)) ? ", vhost-net serves it"
								    : ", vhost-net stopped");
	}
}

static const struct virtio_dev_ops net_ops = {
	.name = "net",
	.device_id = VIRTIO_ID_NET,
	.pci_class = 0x020000, /* network controller, Ethernet */
	.start = net_start,
	.queue_notify = net_queue_notify,
	.config_write = net_config_write,
	.reset = net_reset,
	.queue_stop = net_queue_stop,
	.irq_route = net_irq_route,
	.log_state = net_log_state,
	.failed = net_failed,
};

int net_init(struct net_dev *n, const char *name, struct tap *tap, const uint8_t mac[6],
	     unsigned mtu, const struct guest_mem *mem, struct event_loop *loop)
{
	uint64_t features =
		1ULL << VIRTIO_NET_F_CSUM | 1ULL << VIRTIO_NET_F_GUEST_CSUM |
		1ULL << VIRTIO_NET_F_CTRL_GUEST_OFFLOADS | 1ULL << VIRTIO_NET_F_MTU |
		1ULL << VIRTIO_NET_F_MAC | 1ULL << VIRTIO_NET_F_GUEST_TSO4 |
		1ULL << VIRTIO_NET_F_GUEST_TSO6 | 1ULL << VIRTIO_NET_F_GUEST_ECN |
		1ULL << VIRTIO_NET_F_HOST_TSO4 | 1ULL << VIRTIO_NET_F_HOST_TSO6 |
		1ULL << VIRTIO_NET_F_HOST_ECN | 1ULL << VIRTIO_NET_F_MRG_RXBUF |
		1ULL << VIRTIO_NET_F_STATUS | 1ULL << VIRTIO_NET_F_CTRL_VQ |
		1ULL << VIRTIO_NET_F_CTRL_RX | 1ULL << VIRTIO_NET_F_CTRL_MAC_ADDR;
	unsigned pairs = tap->nr_queues;
	int ret, tap_mtu = tap_get_mtu(tap);

	memset(n, 0, sizeof(*n));
	n->tap = tap;
	if (pairs < 1 || pairs > NET_MAX_PAIRS) {
		log_error("%s: %u queue pairs: between 1 and %d", name, pairs, NET_MAX_PAIRS);
		return -EINVAL;
	}
	/* UFO both ways only if this kernel's tap still takes it. */
	if (tap->offloads & TAP_OFFLOAD_UFO)
		features |= 1ULL << VIRTIO_NET_F_GUEST_UFO | 1ULL << VIRTIO_NET_F_HOST_UFO;
	if (pairs > 1)
		features |= 1ULL << VIRTIO_NET_F_MQ;
	if (!mtu)
		mtu = tap_mtu > 0 ? (unsigned)tap_mtu : 1500;
	else if (tap_mtu > 0 && (unsigned)tap_mtu != mtu)
		log_warn("%s: mtu=%u but %s has MTU %d: frames longer than the smaller are lost",
			 name, mtu, tap->name, tap_mtu);
	n->max_pairs = pairs;
	n->curr_pairs = 1;
	memcpy(n->mac, mac, 6);
	memcpy(n->config.mac, mac, 6);
	n->config.status = htole16(tap->link_down ? 0 : VIRTIO_NET_S_LINK_UP);
	if (tap->link_down)
		log_warn("%s: %s is down or has no carrier: the guest sees its link down until it "
			 "is up (ip link set %s up)",
			 name, tap->name, tap->name);
	n->config.max_virtqueue_pairs = htole16((uint16_t)pairs);
	n->config.mtu = htole16((uint16_t)mtu);
	n->shadow = n->config;
	n->promisc = true;
	n->hdr_len = sizeof(struct virtio_net_hdr);
	n->tx_hold_ns = NET_TX_HOLD_US * 1000ULL;
	if (!(n->pairs = calloc(pairs, sizeof(*n->pairs)))) {
		ret = -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < pairs; i++)
		n->pairs[i] = (struct net_pair){ .net = n, .index = i, .tap_fd = tap->fds[i],
						 .tx_timer = -1 };
	if (!(n->ctrl_elem = malloc(sizeof(*n->ctrl_elem))) || !(n->ctrl_buf = malloc(NET_CTRL_MAX))) {
		ret = -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < pairs; i++) {
		struct net_pair *p = &n->pairs[i];

		if ((p->tx_timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) < 0) {
			ret = -errno;
			goto fail;
		}
		if (!(p->rxbuf = malloc(RXBUF_SIZE)) || !(p->elem = malloc(sizeof(*p->elem))) ||
		    !(p->first = malloc(sizeof(*p->first))) ||
		    !(p->used = calloc(NET_QUEUE_SIZE, sizeof(*p->used))) ||
		    !(p->iov = calloc(NET_QUEUE_SIZE + 1, sizeof(*p->iov))) ||
		    !(p->rx_iov = calloc(RX_IOV, sizeof(*p->rx_iov)))) {
			ret = -ENOMEM;
			goto fail;
		}
	}
	ret = virtio_dev_init(&n->vdev, &net_ops, n, name, mem, loop, features, 2 * pairs + 1,
			      NET_QUEUE_SIZE);
	if (ret)
		goto fail;
	n->vdev.queues[ctrlq(n)].max_size = NET_CTRL_SIZE;
	n->vdev.queues[ctrlq(n)].vq.size = NET_CTRL_SIZE;
	n->vdev.config = (uint8_t *)&n->config;
	n->vdev.config_len = sizeof(n->config);
	/* Until the driver asks for more pairs, only the first tap queue gets frames. */
	for (unsigned i = 1; i < pairs; i++) {
		if ((ret = tap_enable_queue(tap, i, false)))
			goto fail;
	}
	for (unsigned i = 0; i < pairs; i++) {
		ret = event_add(loop, n->pairs[i].tap_fd, EPOLLIN | EPOLLET, tap_event, &n->pairs[i]);
		if (!ret)
			ret = event_add(loop, n->pairs[i].tx_timer, EPOLLIN, tx_timer_event,
					&n->pairs[i]);
		if (ret)
			goto fail;
	}
	if (tap->link_watched && (ret = event_add(loop, tap->link_fd, EPOLLIN, link_event, n)))
		goto fail;
	n->link_registered = tap->link_watched;
	return 0;
fail:
	log_error("%s: %s", name, strerror(-ret));
	net_destroy(n);
	return ret;
}

void net_destroy(struct net_dev *n)
{
	for (unsigned i = 0; n->pairs && i < n->max_pairs; i++) {
		struct net_pair *p = &n->pairs[i];
		const struct net_stats *s = &p->stats;

		if (n->vdev.ops) {
			event_del(n->vdev.loop, p->tap_fd);
			if (p->tx_timer >= 0)
				event_del(n->vdev.loop, p->tx_timer);
		}
		if (p->tx_timer >= 0)
			close(p->tx_timer);
		if (n->vhost && n->vdev.queues) {
			/* The frames never passed through vmm: only what it relayed is its own. */
			log_info("%s: pair %u: served by vhost-net; %" PRIu64 " rx and %" PRIu64
				 " tx interrupts relayed by vmm (none where MSI-X goes straight)",
				 n->vdev.name, i, n->vdev.queues[rxq(i)].interrupts,
				 n->vdev.queues[txq(i)].interrupts);
		} else {
			log_info("%s: pair %u: rx %" PRIu64 " packets (%" PRIu64 " bytes, %" PRIu64
				 " copied, %" PRIu64 " dropped, %" PRIu64 " filtered, %" PRIu64
				 " interrupts), tx %" PRIu64 " packets (%" PRIu64 " bytes, %" PRIu64
				 " dropped, %" PRIu64 " interrupts)",
				 n->vdev.name, i, s->rx_packets, s->rx_bytes, s->rx_copied,
				 s->rx_dropped, s->rx_filtered,
				 n->vdev.queues ? n->vdev.queues[rxq(i)].interrupts : 0, s->tx_packets,
				 s->tx_bytes, s->tx_dropped,
				 n->vdev.queues ? n->vdev.queues[txq(i)].interrupts : 0);
		}
		free(p->rxbuf);
		free(p->elem);
		free(p->first);
		free(p->used);
		free(p->iov);
		free(p->rx_iov);
	}
	for (unsigned i = 0; n->vhost && i < n->max_pairs; i++)
		vhost_close(&n->vhost[i]);
	free(n->vhost);
	n->vhost = NULL;
	free(n->pairs);
	n->pairs = NULL;
	if (n->link_registered)
		event_del(n->vdev.loop, n->tap->link_fd);
	n->link_registered = false;
	free(n->ctrl_elem);
	n->ctrl_elem = NULL;
	free(n->ctrl_buf);
	n->ctrl_buf = NULL;
	virtio_dev_destroy(&n->vdev);
}
