#include "virtio/balloon.h"
#include "event.h"
#include "log.h"

#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

enum role { ROLE_NONE, ROLE_INFLATE, ROLE_DEFLATE, ROLE_STATS, ROLE_REPORTING };

static const char *const role_name[] = { "?", "inflateq", "deflateq", "statsq", "reporting_vq" };

/* Gives [host, host + len) back to the host: the pages read as zeros when the guest touches them
 * again. The range is guest RAM (checked by the caller) and whole pages. */
static void discard(struct balloon_dev *b, void *host, size_t len)
{
	if (madvise(host, len, MADV_DONTNEED) < 0)
		virtio_log(&b->vdev, LOG_WARN, "%s: madvise: %s", b->vdev.name, strerror(errno));
}

/* A run of PFNs [first, first + n) from an inflate or deflate request. Every page is checked
 * against guest RAM (not the hole, not past the end); one that is not is refused, and logged. */
static void pfn_run(struct balloon_dev *b, uint64_t first, uint64_t n, bool inflate)
{
	const struct guest_mem *m = b->vdev.mem;
	void *host = n ? gmem_ptr(m, first * BALLOON_PAGE, n * BALLOON_PAGE) : NULL;

	if (!n)
		return;
	if (!host) {
		/* Not one region as a whole: page by page, the bad ones refused. */
		for (uint64_t i = 0; i < n; i++) {
			if (gmem_ptr(m, (first + i) * BALLOON_PAGE, BALLOON_PAGE)) {
				pfn_run(b, first + i, 1, inflate);
				continue;
			}
			b->refused++;
			virtio_log(&b->vdev, LOG_WARN, "%s: %s: PFN 0x%llx is not guest RAM: ignored",
				   b->vdev.name, inflate ? "inflateq" : "deflateq",
				   (unsigned long long)(first + i));
		}
		return;
	}
	if (inflate) {
		discard(b, host, n * BALLOON_PAGE);
		b->inflated += n;
	} else {
		b->deflated += n; /* nothing to do: a page comes back when the guest touches it */
	}
}

/* The readable bytes of e as a stream: copies up to len bytes from offset *at; returns how many. */
static size_t chain_read(const struct virtq_elem *e, size_t *at, void *dst, size_t len)
{
	size_t skip = *at, done = 0;

	for (unsigned i = 0; i < e->out_num && done < len; i++) {
		size_t l = e->iov[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		size_t n = l - skip < len - done ? l - skip : len - done;
		memcpy((uint8_t *)dst + done, (uint8_t *)e->iov[i].iov_base + skip, n);
		done += n;
		skip = 0;
	}
	*at += done;
	return done;
}

/* An inflate or deflate request: an array of 32-bit PFNs in its readable buffers, laid out any
 * way (one buffer or split anywhere). Little-endian: the legacy interface uses the guest's byte
 * order, which on x86 is the same. Contiguous PFNs are applied as one run. */
static int pfn_request(struct balloon_dev *b, const struct virtq_elem *e, bool inflate)
{
	uint64_t first = 0, n = 0;
	size_t at = 0;
	uint32_t pfn;

	if (e->out_len % 4)
		return -EINVAL;
	while (chain_read(e, &at, &pfn, sizeof(pfn)) == sizeof(pfn)) {
		uint64_t p = le32toh(pfn);

		if (n && p == first + n) {
			n++;
			continue;
		}
		pfn_run(b, first, n, inflate);
		first = p;
		n = 1;
	}
	pfn_run(b, first, n, inflate);
	return 0;
}

/* Free page reporting: each buffer is a range of free guest memory (the driver adds them as
 * writable buffers; either way is taken). With PAGE_POISON and a non-zero poison_val the pages must
 * keep that value (5.5.6.6.2): they are then left as they are, since discarded pages read as 0. */
static void report(struct balloon_dev *b, const struct virtq_elem *e)
{
	bool keep = (b->vdev.driver_features >> VIRTIO_BALLOON_F_PAGE_POISON & 1) &&
		    le32toh(b->config.poison_val) != 0;

	for (unsigned i = 0; i < e->out_num + e->in_num; i++) {
		uintptr_t start = (uintptr_t)e->iov[i].iov_base, end = start + e->iov[i].iov_len;

		/* Whole pages only: guest RAM is mapped page-aligned, so host and guest agree. */
		start = (start + BALLOON_PAGE - 1) & ~(uintptr_t)(BALLOON_PAGE - 1);
		end &= ~(uintptr_t)(BALLOON_PAGE - 1);
		if (end <= start)
			continue;
		if (!keep)
			discard(b, (void *)start, end - start);
		b->reported += (end - start) / BALLOON_PAGE;
	}
}

/* A statistics buffer: 10-byte entries (le16 tag, le64 value; the guest's order on the legacy
 * interface, the same on x86), any order, unknown tags ignored (5.5.6.3). */
static void stats_take(struct balloon_dev *b, const struct virtq_elem *e)
{
	struct balloon_stats s = { .have = 0 };
	struct timespec ts;
	uint8_t entry[10];
	size_t at = 0;

	if (b->stats_first) {
		b->stats_first = false; /* legacy: the first buffer was never filled in */
		return;
	}
	s = b->stats;
	while (chain_read(e, &at, entry, sizeof(entry)) == sizeof(entry)) {
		uint16_t tag;
		uint64_t val;

		memcpy(&tag, entry, 2);
		memcpy(&val, entry + 2, 8);
		tag = le16toh(tag);
		if (tag < BALLOON_NR_STATS) {
			s.val[tag] = le64toh(val);
			s.have |= (uint16_t)(1u << tag);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	s.updated_ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	b->stats = s;
}

static void balloon_queue_notify(struct virtio_dev *d, unsigned q)
{
	struct balloon_dev *b = d->priv;
	struct virtq *vq = &d->queues[q].vq;
	enum role role = (enum role)b->role[q];
	bool pushed = false;

	if (role == ROLE_NONE) {
		virtio_fail(d, "queue %u: no such queue with the features negotiated", q);
		return;
	}
	for (;;) {
		struct virtq_elem *e = b->elem;
		int ret = virtio_pop(d, q, e);

		if (ret < 0)
			return;
		if (ret == 0) {
			if (virtq_enable_notify(vq, true))
				continue;
			break;
		}
		switch (role) {
		case ROLE_INFLATE:
		case ROLE_DEFLATE:
			if (pfn_request(b, e, role == ROLE_INFLATE)) {
				virtio_fail(d, "%s: %llu bytes of PFNs, not whole 32-bit numbers",
					    role_name[role], (unsigned long long)e->out_len);
				return;
			}
			break;
		case ROLE_REPORTING:
			report(b, e);
			break;
		case ROLE_STATS:
			stats_take(b, e);
			/* The driver keeps one buffer here (5.5.6.3.1): a second gives the first back. */
			if (b->stats_held) {
				virtq_push(vq, b->stats_elem, 0);
				pushed = true;
			}
			b->elem = b->stats_elem; /* this one is kept for the next period */
			b->stats_elem = e;
			b->stats_held = true;
			continue;
		case ROLE_NONE:
			break;
		}
		virtq_push(vq, e, 0);
		pushed = true;
	}
	if (pushed)
		virtio_notify(d, q);
}

/* The statistics period: give the guest its buffer back, which asks it for fresh figures. */
static void stats_tick(void *opaque, uint32_t events)
{
	struct balloon_dev *b = opaque;
	struct virtio_dev *d = &b->vdev;
	uint64_t ticks;

	if (read(b->timer_fd, &ticks, sizeof(ticks)) != sizeof(ticks))
		return;
	pthread_mutex_lock(&d->lock);
	for (unsigned q = 0; q < BALLOON_QUEUES; q++) {
		if (b->role[q] != ROLE_STATS || !b->stats_held || !virtio_live(d))
			continue;
		virtq_push(&d->queues[q].vq, b->stats_elem, 0);
		b->stats_held = false;
		virtio_notify(d, q);
	}
	pthread_mutex_unlock(&d->lock);
}

static int balloon_start(struct virtio_dev *d)
{
	struct balloon_dev *b = d->priv;
	unsigned next = BALLOON_Q_STATS;

	memset(b->role, 0, sizeof(b->role));
	b->role[BALLOON_Q_INFLATE] = ROLE_INFLATE;
	b->role[BALLOON_Q_DEFLATE] = ROLE_DEFLATE;
	if (d->driver_features >> VIRTIO_BALLOON_F_STATS_VQ & 1) {
		/* Linux posts its first statistics buffer, and kicks, before DRIVER_OK (the spec has
		 * the kick after it): a kick then was not served, so look now. */
		virtio_kick(d, next);
		b->role[next++] = ROLE_STATS;
	}
	if (d->driver_features >> VIRTIO_BALLOON_F_PAGE_REPORTING & 1) {
		/* Where the spec puts it, and where Linux does: after the queues it uses. */
		b->role[BALLOON_Q_REPORTING] = ROLE_REPORTING;
		b->role[next] = ROLE_REPORTING;
	}
	b->stats_first = d->legacy_driver;
	return 0;
}

static void balloon_reset(struct virtio_dev *d)
{
	struct balloon_dev *b = d->priv;

	static const uint32_t zero;

	b->stats_held = false;
	memset(b->role, 0, sizeof(b->role));
	virtio_config_set(d, offsetof(struct virtio_balloon_config, actual), &zero, 4);
	virtio_config_set(d, offsetof(struct virtio_balloon_config, poison_val), &zero, 4);
}

static void balloon_queue_stop(struct virtio_dev *d, unsigned q)
{
	struct balloon_dev *b = d->priv;

	if (b->role[q] == ROLE_STATS)
		b->stats_held = false;
}

static void balloon_log_state(struct virtio_dev *d)
{
	struct balloon_dev *b = d->priv;

	log_info("%s: target %u pages, actual %u; inflated %llu, deflated %llu, reported %llu, "
		 "refused %llu; statistics buffer %s",
		 d->name, le32toh(b->config.num_pages), le32toh(b->config.actual),
		 (unsigned long long)b->inflated, (unsigned long long)b->deflated,
		 (unsigned long long)b->reported, (unsigned long long)b->refused,
		 b->stats_held ? "held" : "not held");
}

/* The driver writes actual and poison_val: kept as written (read where they are used). The
 * device's own fields are put back: a driver does not set the host's target. */
static void balloon_config_write(struct virtio_dev *d, uint32_t off, uint32_t len)
{
	struct balloon_dev *b = d->priv;

	b->config.num_pages = htole32(b->target_pages);
	b->config.free_page_hint_cmd_id = 0;
}

static const struct virtio_dev_ops balloon_ops = {
	.name = "balloon",
	.device_id = VIRTIO_ID_BALLOON,
	.pci_class = 0x050000, /* memory controller, RAM (as QEMU's) */
	.start = balloon_start,
	.queue_notify = balloon_queue_notify,
	.config_write = balloon_config_write,
	.reset = balloon_reset,
	.queue_stop = balloon_queue_stop,
	.log_state = balloon_log_state,
};

static uint32_t target_pages(const struct balloon_dev *b, uint64_t bytes)
{
	uint64_t pages = bytes / BALLOON_PAGE, ram = b->vdev.mem->ram_size / BALLOON_PAGE;

	return (uint32_t)(pages < ram ? pages : ram);
}

int balloon_init(struct balloon_dev *b, const char *name, const struct balloon_config *cfg,
		 const struct guest_mem *mem, struct event_loop *loop)
{
	uint64_t features = 0;
	int ret;

	memset(b, 0, sizeof(*b));
	b->timer_fd = -1;
	b->elem = malloc(sizeof(*b->elem));
	b->stats_elem = malloc(sizeof(*b->stats_elem));
	if (!b->elem || !b->stats_elem) {
		balloon_destroy(b);
		return -ENOMEM;
	}
	if (cfg->stats_period)
		features |= 1ULL << VIRTIO_BALLOON_F_STATS_VQ;
	if (cfg->deflate_on_oom)
		features |= 1ULL << VIRTIO_BALLOON_F_DEFLATE_ON_OOM;
	if (cfg->free_page_reporting) /* with PAGE_POISON, so a poisoning guest may report too */
		features |= 1ULL << VIRTIO_BALLOON_F_PAGE_REPORTING |
			    1ULL << VIRTIO_BALLOON_F_PAGE_POISON;
	ret = virtio_dev_init(&b->vdev, &balloon_ops, b, name, mem, loop, features, BALLOON_QUEUES,
			      BALLOON_QUEUE_SIZE);
	if (ret) {
		log_error("%s: %s", name, strerror(-ret));
		balloon_destroy(b);
		return ret;
	}
	b->target_pages = target_pages(b, cfg->size);
	b->config.num_pages = htole32(b->target_pages);
	b->vdev.config = (uint8_t *)&b->config;
	b->vdev.config_len = sizeof(b->config);
	if (cfg->stats_period) {
		/* Set up now, while any call may be made: the thread only reads it (sandbox). */
		struct itimerspec its = { { cfg->stats_period, 0 }, { cfg->stats_period, 0 } };

		b->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (b->timer_fd < 0 || timerfd_settime(b->timer_fd, 0, &its, NULL) < 0 ||
		    (loop && event_add(loop, b->timer_fd, EPOLLIN, stats_tick, b) < 0)) {
			ret = -errno;
			log_error("%s: statistics timer: %s", name, strerror(errno));
			balloon_destroy(b);
			return ret;
		}
	}
	return 0;
}

void balloon_destroy(struct balloon_dev *b)
{
	if (b->timer_fd >= 0) {
		if (b->vdev.loop)
			event_del(b->vdev.loop, b->timer_fd);
		close(b->timer_fd);
	}
	b->timer_fd = -1;
	b->vdev.config = NULL;
	virtio_dev_destroy(&b->vdev);
	free(b->elem);
	free(b->stats_elem);
	b->elem = b->stats_elem = NULL;
}

void balloon_set_target(struct balloon_dev *b, uint64_t bytes)
{
	uint32_t num_pages;

	pthread_mutex_lock(&b->vdev.lock);
	b->target_pages = target_pages(b, bytes);
	num_pages = htole32(b->target_pages);
	virtio_config_set(&b->vdev, offsetof(struct virtio_balloon_config, num_pages), &num_pages,
			  4);
	virtio_config_changed(&b->vdev);
	pthread_mutex_unlock(&b->vdev.lock);
}

void balloon_get(struct balloon_dev *b, struct balloon_info *out)
{
	pthread_mutex_lock(&b->vdev.lock);
	*out = (struct balloon_info){
		.target = (uint64_t)b->target_pages * BALLOON_PAGE,
		.actual = (uint64_t)le32toh(b->config.actual) * BALLOON_PAGE,
		.stats = b->stats,
		.inflated = b->inflated,
		.deflated = b->deflated,
		.reported = b->reported,
		.refused = b->refused,
	};
	pthread_mutex_unlock(&b->vdev.lock);
}
