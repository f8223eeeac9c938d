#include "virtio/virtio.h"
#include "event.h"
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* The ring features every device offers: the virtqueue code handles all of them. */
#define VIRTIO_CORE_FEATURES                                                                       \
	((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_INDIRECT_DESC) |                         \
	 (1ULL << VIRTIO_F_EVENT_IDX) | (1ULL << VIRTIO_F_RING_PACKED))

static void eventfd_signal(int fd)
{
	uint64_t one = 1;

	/* EAGAIN means the counter is already non-zero: the reader will wake anyway. */
	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("eventfd write: %s", strerror(errno));
}

static bool eventfd_drain(int fd)
{
	uint64_t v;

	return read(fd, &v, sizeof(v)) == sizeof(v);
}

static void kick_ready(void *opaque, uint32_t events)
{
	struct virtio_queue *vq = opaque;

	if (eventfd_drain(vq->kick_fd))
		virtio_process(vq->dev, vq->index);
}

/* The guest's EOI of the level-triggered line: KVM dropped it; raise it again while the ISR still
 * says there is something to look at (the driver has not read it yet). */
static void resample_ready(void *opaque, uint32_t events)
{
	struct virtio_dev *d = opaque;

	if (!eventfd_drain(d->resample_fd))
		return;
	pthread_mutex_lock(&d->lock);
	if (d->isr && !d->line_masked)
		eventfd_signal(d->isr_fd);
	pthread_mutex_unlock(&d->lock);
}

static int new_eventfd(int *fd)
{
	*fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return *fd < 0 ? -errno : 0;
}

int virtio_dev_init(struct virtio_dev *d, const struct virtio_dev_ops *ops, void *priv,
		    const char *name, const struct guest_mem *mem, struct event_loop *loop,
		    uint64_t features, unsigned nr_queues, uint16_t max_size)
{
	int ret;

	memset(d, 0, sizeof(*d));
	d->isr_fd = d->resample_fd = -1;
	d->ops = ops;
	d->priv = priv;
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->mem = mem;
	d->loop = loop;
	d->features = features | VIRTIO_CORE_FEATURES;
	pthread_mutex_init(&d->lock, NULL);
	if (nr_queues == 0 || max_size == 0 || max_size > VIRTQ_MAX_SIZE)
		return -EINVAL;
	d->queues = calloc(nr_queues, sizeof(*d->queues));
	if (!d->queues)
		return -ENOMEM;
	d->nr_queues = nr_queues;
	for (unsigned i = 0; i < nr_queues; i++) {
		struct virtio_queue *vq = &d->queues[i];

		vq->kick_fd = -1;
		vq->dev = d;
		vq->index = i;
		vq->max_size = max_size;
		vq->vq.size = max_size;
		vq->msix_vector = VIRTIO_NO_VECTOR;
	}
	for (unsigned i = 0; i < nr_queues; i++) {
		struct virtio_queue *vq = &d->queues[i];

		if ((ret = new_eventfd(&vq->kick_fd)))
			return ret;
		if (loop && (ret = event_add(loop, vq->kick_fd, EPOLLIN, kick_ready, vq)))
			return ret;
	}
	if ((ret = new_eventfd(&d->isr_fd)) || (ret = new_eventfd(&d->resample_fd)))
		return ret;
	if (loop && (ret = event_add(loop, d->resample_fd, EPOLLIN, resample_ready, d)))
		return ret;
	return 0;
}

void virtio_dev_destroy(struct virtio_dev *d)
{
	if (!d->ops)
		return; /* never initialised: a zeroed struct's fds are 0, not ours to close */
	log_limit_flush(&d->log_limit);
	for (unsigned i = 0; d->queues && i < d->nr_queues; i++) {
		if (d->queues[i].kick_fd < 0)
			continue;
		if (d->loop && !d->queues[i].kick_lent)
			event_del(d->loop, d->queues[i].kick_fd);
		close(d->queues[i].kick_fd);
	}
	free(d->queues);
	d->queues = NULL;
	d->nr_queues = 0;
	if (d->resample_fd >= 0) {
		if (d->loop)
			event_del(d->loop, d->resample_fd);
		close(d->resample_fd);
	}
	if (d->isr_fd >= 0)
		close(d->isr_fd);
	d->isr_fd = d->resample_fd = -1;
	pthread_mutex_destroy(&d->lock);
	d->ops = NULL;
}

uint32_t virtio_get_features(struct virtio_dev *d, unsigned sel)
{
	return sel < 2 ? (uint32_t)(d->features >> (32 * sel)) : 0;
}

uint32_t virtio_get_legacy_features(struct virtio_dev *d)
{
	/* Every device type takes its requests framed any way (each parses the chain as a byte
	 * stream), so a legacy driver may lay them out as it likes too. */
	return (uint32_t)d->features | 1u << VIRTIO_F_ANY_LAYOUT;
}

void virtio_set_driver_features(struct virtio_dev *d, unsigned sel, uint32_t val)
{
	uint64_t mask;

	if (sel >= 2)
		return;
	mask = 0xffffffffULL << (32 * sel);
	if (d->status & (VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK)) {
		log_debug("%s: feature write after FEATURES_OK ignored", d->name);
		return;
	}
	/* Kept as written: FEATURES_OK checks them against what was offered. */
	d->driver_features = (d->driver_features & ~mask) | ((uint64_t)val << (32 * sel));
}

/* A modern driver's feature choice (FEATURES_OK): only offered bits, VERSION_1 among them. */
static bool features_acceptable(struct virtio_dev *d)
{
	uint64_t extra = d->driver_features & ~d->features;

	if (extra) {
		virtio_log(d, LOG_WARN,
			   "%s: driver accepted features %#llx that were not offered: FEATURES_OK "
			   "refused", d->name, (unsigned long long)extra);
		return false;
	}
	if (!(d->driver_features & (1ULL << VIRTIO_F_VERSION_1))) {
		virtio_log(d, LOG_WARN, "%s: a modern driver must accept VERSION_1: FEATURES_OK refused",
			   d->name);
		return false;
	}
	return true;
}

/* A legacy driver has no FEATURES_OK step and cannot be refused: it sees bits 0-31 only, and what
 * it accepted beyond the offer is dropped at DRIVER_OK. */
static void legacy_features(struct virtio_dev *d)
{
	uint64_t offer = virtio_get_legacy_features(d);
	uint64_t extra = d->driver_features & ~offer;

	if (extra)
		virtio_log(d, LOG_WARN, "%s: driver accepted features %#llx that were not offered; "
			   "ignored", d->name, (unsigned long long)extra);
	d->driver_features &= offer;
}

void virtio_set_status(struct virtio_dev *d, uint8_t status)
{
	uint8_t added = status & ~d->status;

	if (status == 0) {
		virtio_reset(d);
		return;
	}
	if (d->status & ~status & ~VIRTIO_STATUS_NEEDS_RESET) {
		log_debug("%s: status %#x clears bits of %#x; ignored", d->name, status, d->status);
		return;
	}
	/* NEEDS_RESET is the device's to set; the driver cannot. */
	added &= ~VIRTIO_STATUS_NEEDS_RESET;
	/* Checked whichever interface sets it: a transitional device's driver may switch between
	 * the legacy and the modern one, and none of its paths may skip the check. */
	if ((added & VIRTIO_STATUS_FEATURES_OK) && !features_acceptable(d))
		added &= ~VIRTIO_STATUS_FEATURES_OK; /* the driver reads it back and gives up */
	d->status |= added;
	if ((added & VIRTIO_STATUS_FEATURES_OK) && d->ops->features_ok)
		d->ops->features_ok(d);
	if (added & VIRTIO_STATUS_FAILED)
		virtio_log(d, LOG_INFO, "%s: the driver gave up on the device (status FAILED)",
			   d->name);
	if (!(added & VIRTIO_STATUS_DRIVER_OK))
		return;
	/* The device runs with what was checked: the modern offer (FEATURES_OK, set only after
	 * features_acceptable) or, for a driver on the legacy interface that never set it, the
	 * legacy one. A driver on the modern interface must have come through FEATURES_OK. */
	if (d->legacy_driver && !(d->status & VIRTIO_STATUS_FEATURES_OK))
		legacy_features(d);
	else if (!(d->status & VIRTIO_STATUS_FEATURES_OK)) {
		virtio_fail(d, "DRIVER_OK without FEATURES_OK");
		return;
	}
	if (d->ops->start) {
		int ret = d->ops->start(d);
		if (ret)
			virtio_fail(d, "cannot start: %s", strerror(-ret));
	}
}

static void queue_reset(struct virtio_queue *vq)
{
	virtq_reset(&vq->vq);
	vq->vq.size = vq->max_size;
}

void virtio_reset(struct virtio_dev *d)
{
	/* The queues first: whatever the type's reset waits for can no longer reach them. */
	for (unsigned i = 0; i < d->nr_queues; i++) {
		queue_reset(&d->queues[i]);
		d->queues[i].msix_vector = VIRTIO_NO_VECTOR;
	}
	if (d->ops->reset)
		d->ops->reset(d);
	d->driver_features = 0;
	d->status = 0;
	d->isr = 0;
	if (d->transport && d->transport->reset)
		d->transport->reset(d);
}

void virtio_config_read(struct virtio_dev *d, uint32_t off, uint8_t *data, uint32_t len)
{
	memset(data, 0, len);
	if (off < d->config_len && len <= d->config_len - off)
		memcpy(data, d->config + off, len);
}

/* The configuration generation must differ from the value the driver read before its reads of the
 * area whenever the area changed in between (2.5, 4.1.4.3.1), and virtio-pci shows only 8 bits
 * of it: a counter bumped on every change would come back to the driver's value after 256 changes
 * (a host that sets the balloon target in a loop), and the driver would take a torn read for a
 * whole one. So the generation moves at most once between two reads of it by the driver: the
 * first change after a read bumps it, later ones find it already moved (fresh) and leave it. The
 * value a driver reads after its reads of the area is then the one it read before, or that plus
 * one, never the same value come round again, however many changes happened in between. (The
 * spec's own suggestion, a bump on the driver's next read of the area, bounds the bumps by the
 * driver's reads of the area instead, which 256 one-byte reads would still wrap.) */
static void config_bump(struct virtio_dev *d)
{
	if (d->config_generation_fresh)
		return;
	d->config_generation++;
	d->config_generation_fresh = true;
}

uint32_t virtio_config_generation(struct virtio_dev *d)
{
	d->config_generation_fresh = false;
	return d->config_generation;
}

void virtio_config_write(struct virtio_dev *d, uint32_t off, const uint8_t *data, uint32_t len)
{
	uint8_t before[64];
	bool changed;

	if (!d->ops->config_write || off >= d->config_len || len > d->config_len - off || !len) {
		log_debug("%s: config write of %u bytes at %u ignored", d->name, len, off);
		return;
	}
	/* Transports write at most 8 bytes at once; a longer write is compared as written. */
	changed = memcmp(d->config + off, data, len) != 0;
	if (len <= sizeof(before))
		memcpy(before, d->config + off, len);
	memcpy(d->config + off, data, len);
	d->ops->config_write(d, off, len);
	/* What the type kept of it (it may put read-only fields back) is what the driver sees. */
	if (len <= sizeof(before))
		changed = memcmp(before, d->config + off, len) != 0;
	if (changed)
		config_bump(d);
}

bool virtio_config_set(struct virtio_dev *d, uint32_t off, const void *data, uint32_t len)
{
	if (off > d->config_len || len > d->config_len - off) {
		log_error("%s: configuration bytes %u-%u set outside the %u-byte area", d->name,
			  off, off + len, d->config_len);
		return false;
	}
	if (!len || !memcmp(d->config + off, data, len))
		return false;
	memcpy(d->config + off, data, len);
	config_bump(d);
	return true;
}

void virtio_queue_stop(struct virtio_dev *d, unsigned q)
{
	if (q >= d->nr_queues)
		return;
	queue_reset(&d->queues[q]);
	if (d->ops->queue_stop)
		d->ops->queue_stop(d, q);
}

int virtio_queue_enable(struct virtio_dev *d, unsigned q)
{
	struct virtio_queue *vq;
	int ret;

	if (q >= d->nr_queues)
		return -EINVAL;
	vq = &d->queues[q];
	if (vq->vq.size > vq->max_size) {
		virtio_fail(d, "queue %u: size %u above the maximum %u", q, vq->vq.size,
			    vq->max_size);
		return -EINVAL;
	}
	ret = virtq_enable(&vq->vq, d->mem, d->driver_features);
	if (ret)
		virtio_fail(d, "queue %u: size %u, rings at %#llx/%#llx/%#llx: %s", q, vq->vq.size,
			    (unsigned long long)vq->vq.desc_gpa, (unsigned long long)vq->vq.avail_gpa,
			    (unsigned long long)vq->vq.used_gpa,
			    ret == -EFAULT ? "outside guest RAM or misaligned" : "bad size");
	return ret;
}

int virtio_queue_lend_kick(struct virtio_dev *d, unsigned q)
{
	struct virtio_queue *vq;
	int ret;

	if (q >= d->nr_queues)
		return -EINVAL;
	vq = &d->queues[q];
	if (vq->kick_lent)
		return 0;
	if (d->loop && (ret = event_del(d->loop, vq->kick_fd)))
		return ret;
	vq->kick_lent = true;
	return 0;
}

int virtio_queue_reclaim_kick(struct virtio_dev *d, unsigned q)
{
	struct virtio_queue *vq;
	int ret;

	if (q >= d->nr_queues)
		return -EINVAL;
	vq = &d->queues[q];
	if (!vq->kick_lent)
		return 0;
	/* Level-triggered: a kick the kernel left unread is served at once. */
	if (d->loop && (ret = event_add(d->loop, vq->kick_fd, EPOLLIN, kick_ready, vq)))
		return ret;
	vq->kick_lent = false;
	return 0;
}

void virtio_kick(struct virtio_dev *d, unsigned q)
{
	if (q < d->nr_queues)
		eventfd_signal(d->queues[q].kick_fd);
}

void virtio_process(struct virtio_dev *d, unsigned q)
{
	pthread_mutex_lock(&d->lock);
	if (q < d->nr_queues && virtio_live(d) && d->queues[q].vq.enabled &&
	    !d->queues[q].vq.broken && d->ops->queue_notify) {
		d->queues[q].kicks++;
		d->ops->queue_notify(d, q);
	}
	pthread_mutex_unlock(&d->lock);
}

int virtio_pop(struct virtio_dev *d, unsigned q, struct virtq_elem *e)
{
	int ret = virtq_pop(&d->queues[q].vq, e);

	if (ret < 0)
		virtio_fail(d, "queue %u: malformed descriptor ring (%s)", q,
			    ret == -EFAULT ? "address outside guest RAM" : "bad chain");
	return ret;
}

void virtio_notify(struct virtio_dev *d, unsigned q)
{
	if (q < d->nr_queues && virtq_should_notify(&d->queues[q].vq) && d->transport) {
		d->queues[q].interrupts++;
		d->transport->signal(d, (int)q);
	}
}

int virtio_queue_irqfd(struct virtio_dev *d, unsigned q)
{
	if (q >= d->nr_queues || !d->transport || !d->transport->queue_irqfd)
		return -1;
	return d->transport->queue_irqfd(d, q);
}

void virtio_irq_route_changed(struct virtio_dev *d)
{
	if (d->ops->irq_route)
		d->ops->irq_route(d);
}

void virtio_signal_queue(struct virtio_dev *d, unsigned q)
{
	if (q < d->nr_queues && d->transport) {
		d->queues[q].interrupts++;
		d->transport->signal(d, (int)q);
	}
}

void virtio_config_changed(struct virtio_dev *d)
{
	config_bump(d);
	if ((d->status & VIRTIO_STATUS_DRIVER_OK) && d->transport)
		d->transport->signal(d, -1);
}

void virtio_raise_isr(struct virtio_dev *d, uint8_t bit)
{
	d->isr |= bit;
	eventfd_signal(d->isr_fd);
}

uint8_t virtio_read_isr(struct virtio_dev *d)
{
	uint8_t isr = d->isr;

	d->isr = 0;
	return isr;
}

void virtio_log_state(struct virtio_dev *d)
{
	char ring[320], irq[80];

	pthread_mutex_lock(&d->lock);
	log_info("%s: status %#x, features %#" PRIx64 ", ISR %#x", d->name, d->status,
		 d->driver_features, d->isr);
	for (unsigned q = 0; q < d->nr_queues; q++) {
		if (!d->queues[q].vq.enabled)
			continue;
		virtq_describe(&d->queues[q].vq, ring, sizeof(ring));
		irq[0] = 0;
		if (d->transport && d->transport->describe)
			d->transport->describe(d, q, irq, sizeof(irq));
		log_info("%s: queue %u: %s; %" PRIu64 " wake-ups, %" PRIu64 " interrupts%s%s", d->name,
			 q, ring, d->queues[q].kicks, d->queues[q].interrupts, irq[0] ? ", " : "", irq);
	}
	if (d->ops->log_state)
		d->ops->log_state(d);
	pthread_mutex_unlock(&d->lock);
}

void virtio_fail(struct virtio_dev *d, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (d->status & VIRTIO_STATUS_NEEDS_RESET)
		return; /* logged once per reset */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	virtio_log(d, LOG_ERROR, "%s: %s: device needs reset", d->name, msg);
	d->status |= VIRTIO_STATUS_NEEDS_RESET;
	if (d->ops->failed)
		d->ops->failed(d);
	/* 2.1.2: after DRIVER_OK, the device sends a configuration change notification. */
	if ((d->status & VIRTIO_STATUS_DRIVER_OK) && d->transport)
		d->transport->signal(d, -1);
}

bool virtio_live(const struct virtio_dev *d)
{
	return (d->status & VIRTIO_STATUS_DRIVER_OK) && !(d->status & VIRTIO_STATUS_NEEDS_RESET);
}
