#include "virtio/blk.h"
#include "log.h"

#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static_assert(sizeof(struct virtio_blk_config) == 60, "virtio_blk_config layout (5.2.4)");
static_assert(offsetof(struct virtio_blk_config, num_queues) == 34, "num_queues offset");
static_assert(offsetof(struct virtio_blk_config, write_zeroes_may_unmap) == 56, "wz offset");

/* One discard or write-zeroes segment, checked and turned into bytes. */
struct blk_seg {
	uint64_t off, len;
	bool unmap;
};

/* A request between pop and push. */
struct blk_req {
	struct blk_queue *q;
	struct virtq_used chain; /* what virtq_push_many needs of it; .len: bytes written into it
				  * on success, status included */
	uint32_t type;
	uint8_t *status;  /* the chain's last writable byte */
	uint64_t off;     /* read/write: the byte offset on the disk */
	struct blk_seg *segs; /* discard / write-zeroes */
	unsigned nseg, seg;   /* segments, and the one under way */
	unsigned niov;
	struct iovec iov[]; /* read/write: the data buffers */
};

static void blk_run(struct blk_queue *q);

static uint8_t status_of(int result)
{
	if (result >= 0)
		return VIRTIO_BLK_S_OK;
	/* A file system without ZERO_RANGE or hole punching: the command, not the disk, failed. */
	return result == -EOPNOTSUPP ? VIRTIO_BLK_S_UNSUPP : VIRTIO_BLK_S_IOERR;
}

/* Writes the status, gives the chain back and frees the request. Lock held. */
static void req_finish(struct blk_req *r, uint8_t status)
{
	struct blk_queue *q = r->q;
	struct virtio_dev *d = &q->blk->vdev;

	*r->status = status;
	if (status != VIRTIO_BLK_S_OK)
		r->chain.len = 1;
	virtq_push_many(&d->queues[q->index].vq, &r->chain, 1);
	q->need_notify = true;
	free(r->segs);
	free(r);
}

static void notify(struct blk_queue *q)
{
	if (q->need_notify)
		virtio_notify(&q->blk->vdev, q->index);
	q->need_notify = false;
}

/* The disk queue's batch of completions is over: one interrupt for all of it. */
static void blk_batch_done(void *opaque)
{
	struct blk_queue *q = opaque;
	struct virtio_dev *d = &q->blk->vdev;

	pthread_mutex_lock(&d->lock);
	if (virtio_live(d))
		notify(q);
	pthread_mutex_unlock(&d->lock);
}

static void io_error(struct blk_req *r, int result)
{
	struct blk_dev *b = r->q->blk;
	static const char *const what[] = {
		[VIRTIO_BLK_T_IN] = "read", [VIRTIO_BLK_T_OUT] = "write",
		[VIRTIO_BLK_T_FLUSH] = "flush", [VIRTIO_BLK_T_DISCARD] = "discard",
		[VIRTIO_BLK_T_WRITE_ZEROES] = "write-zeroes",
	};
	const char *w = r->type < sizeof(what) / sizeof(what[0]) && what[r->type] ? what[r->type]
										    : "request";

	/* The guest sees IOERR; the user sees why, once, and the rest at debug level. */
	if (result == -EOPNOTSUPP)
		log_debug("%s: %s: not supported by %s", b->vdev.name, w, b->disk->path);
	else if (!b->warned)
		log_warn("%s: %s failed on %s: %s (further errors at debug level)", b->vdev.name, w,
			 b->disk->path, strerror(-result));
	else
		log_debug("%s: %s failed: %s", b->vdev.name, w, strerror(-result));
	if (result != -EOPNOTSUPP)
		b->warned = true;
}

static int seg_submit(struct blk_req *r);

static void blk_done(void *opaque, int result)
{
	struct blk_req *r = opaque;
	struct blk_queue *q = r->q;
	struct blk_dev *b = q->blk;
	struct virtio_dev *d = &b->vdev;

	pthread_mutex_lock(&d->lock);
	q->inflight--;
	if (!virtq_current(&d->queues[q->index].vq, r->chain.epoch) || !virtio_live(d)) {
		/* Reset, the queue stopped (or NEEDS_RESET) since it was popped: the driver no
		 * longer owns these buffers the way it did. The I/O itself finished; only the
		 * answer is dropped. */
		log_debug("%s: completion after reset dropped", d->name);
		free(r->segs);
		free(r);
		/* Its slot is free: a request of the rings set up since may wait for one. */
		if (q->held && virtio_live(d))
			blk_run(q);
		goto out;
	}
	if (result < 0)
		io_error(r, result);
	if (result >= 0 && ++r->seg < r->nseg) {
		/* The next segment of a discard or write-zeroes: the slot just freed is ours. */
		int ret = seg_submit(r);

		if (ret == 0) {
			q->inflight++;
			disk_io_submit(&q->io);
			goto out;
		}
		io_error(r, ret);
		result = ret;
	}
	req_finish(r, status_of(result));
	if (q->held)
		blk_run(q); /* a slot is free again: take up the queue where it stopped */
out:
	pthread_mutex_unlock(&d->lock);
}

static int seg_submit(struct blk_req *r)
{
	struct blk_seg *s = &r->segs[r->seg];

	if (r->type == VIRTIO_BLK_T_DISCARD)
		return disk_discard(&r->q->io, s->off, s->len, blk_done, r);
	return disk_write_zeroes(&r->q->io, s->off, s->len, s->unmap, blk_done, r);
}

/* Hands a parsed request to the disk. 0, -EAGAIN (the ring is full: hold it), or another
 * -errno (the request is answered with an error). */
static int req_submit(struct blk_req *r)
{
	struct blk_queue *q = r->q;
	int ret;

	switch (r->type) {
	case VIRTIO_BLK_T_IN:
		ret = disk_readv(&q->io, r->off, r->iov, r->niov, blk_done, r);
		break;
	case VIRTIO_BLK_T_OUT:
		ret = disk_writev(&q->io, r->off, r->iov, r->niov, blk_done, r);
		break;
	case VIRTIO_BLK_T_FLUSH:
		ret = disk_flush(&q->io, blk_done, r);
		break;
	default:
		ret = seg_submit(r);
		break;
	}
	if (ret == 0)
		q->inflight++;
	return ret;
}

/* Whether [sector * 512, + len), len whole sectors, lies inside the disk the guest sees, with no
 * overflow. */
static bool range_ok(const struct blk_dev *b, uint64_t sector, uint64_t len)
{
	uint64_t capacity = le64toh(b->config.capacity);

	/* In sectors, so that neither sector * 512 nor sector + count can wrap. */
	return len % DISK_SECTOR == 0 && sector <= capacity &&
	       len / DISK_SECTOR <= capacity - sector;
}

static struct blk_req *req_new(struct blk_queue *q, const struct virtq_elem *e, uint32_t type,
			       unsigned niov)
{
	struct blk_req *r = calloc(1, sizeof(*r) + niov * sizeof(r->iov[0]));
	const struct iovec *last = &e->iov[e->out_num + e->in_num - 1];

	if (!r)
		return NULL;
	r->q = q;
	r->chain = virtq_used_of(e, 1);
	r->type = type;
	r->status = (uint8_t *)last->iov_base + last->iov_len - 1;
	return r;
}

/* Discard and write-zeroes segments: all checked before any is done, so that a request that is
 * wrong anywhere touches nothing. Returns a status, VIRTIO_BLK_S_OK when r->segs is ready. */
static uint8_t parse_segments(struct blk_req *r, const struct virtq_elem *e)
{
	struct blk_dev *b = r->q->blk;
	bool discard = r->type == VIRTIO_BLK_T_DISCARD;
	uint64_t bytes = e->out_len - sizeof(struct virtio_blk_outhdr);
	uint32_t max_seg = le32toh(discard ? b->config.max_discard_seg
					  : b->config.max_write_zeroes_seg);
	uint32_t max_sectors = le32toh(discard ? b->config.max_discard_sectors
					       : b->config.max_write_zeroes_sectors);
	uint8_t st = VIRTIO_BLK_S_OK;
	unsigned n;

	if (bytes == 0 || bytes % sizeof(struct virtio_blk_discard_write_zeroes) ||
	    bytes / sizeof(struct virtio_blk_discard_write_zeroes) > max_seg)
		return VIRTIO_BLK_S_IOERR;
	n = (unsigned)(bytes / sizeof(struct virtio_blk_discard_write_zeroes));
	r->segs = calloc(n, sizeof(*r->segs));
	if (!r->segs)
		return VIRTIO_BLK_S_IOERR;
	for (unsigned i = 0; i < n; i++) {
		struct virtio_blk_discard_write_zeroes s;
		uint64_t sector;
		uint32_t num, flags;

		virtq_elem_read(e, sizeof(struct virtio_blk_outhdr) + i * sizeof(s), &s, sizeof(s));
		sector = le64toh(s.sector);
		num = le32toh(s.num_sectors);
		flags = le32toh(s.flags);
		/* 5.2.6.2: an unknown flag, or unmap on a discard, is UNSUPP; that wins over a bad
		 * range in another segment. */
		if (flags & ~(discard ? 0u : (uint32_t)VIRTIO_BLK_WZ_F_UNMAP))
			return VIRTIO_BLK_S_UNSUPP;
		if (num > max_sectors || !range_ok(b, sector, (uint64_t)num * DISK_SECTOR))
			st = VIRTIO_BLK_S_IOERR;
		if (num == 0)
			continue; /* nothing to do: no fallocate of length 0 */
		r->segs[r->nseg++] = (struct blk_seg){
			.off = sector * DISK_SECTOR,
			.len = (uint64_t)num * DISK_SECTOR,
			.unmap = flags & VIRTIO_BLK_WZ_F_UNMAP,
		};
	}
	/* The alignment in the configuration is a hint for the driver's splitting (5.2.4); a hole
	 * punched at any sector still reads as zeros, so it is not enforced. */
	return st;
}

/* Parses one chain. Returns the request to submit, or NULL when it was answered here (or the
 * device failed). Every value below comes from the guest. */
static struct blk_req *req_parse(struct blk_queue *q, const struct virtq_elem *e)
{
	struct blk_dev *b = q->blk;
	struct virtio_dev *d = &b->vdev;
	const size_t hdr_len = sizeof(struct virtio_blk_outhdr);
	struct virtio_blk_outhdr hdr;
	struct blk_req *r;
	uint8_t st = VIRTIO_BLK_S_OK;
	uint64_t len = 0, sector;

	/* Without a writable byte there is nowhere to answer: the chain is not a request. */
	if (e->in_num == 0) {
		virtio_fail(d, "requestq %u: request without a writable status byte", q->index);
		return NULL;
	}
	/* The largest request carries the segments of a read or write; anything else fits. */
	r = req_new(q, e, 0, e->out_num > e->in_num ? e->out_num : e->in_num);
	if (!r) {
		virtio_fail(d, "requestq %u: out of memory for a request", q->index);
		return NULL;
	}
	/* The header must be readable and whole; a header in a writable buffer reads short. */
	if (e->out_len < hdr_len) {
		st = VIRTIO_BLK_S_IOERR;
		goto answer;
	}
	virtq_elem_read(e, 0, &hdr, hdr_len);
	r->type = le32toh(hdr.type);
	sector = le64toh(hdr.sector);
	/* 5.2.6.3: FLUSH_OUT was a legacy synonym of FLUSH (no driver of VERSION_1 sends it). */
	if (r->type == VIRTIO_BLK_T_FLUSH_OUT && !(d->driver_features & 1ULL << VIRTIO_F_VERSION_1))
		r->type = VIRTIO_BLK_T_FLUSH;

	switch (r->type) {
	case VIRTIO_BLK_T_IN:
		len = e->in_len - 1; /* all writable bytes but the status */
		break;
	case VIRTIO_BLK_T_OUT:
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		/* 5.2.6.2: no write reaches a read-only disk. */
		if (b->disk->readonly) {
			st = VIRTIO_BLK_S_IOERR;
			goto answer;
		}
		len = e->out_len - hdr_len; /* all readable bytes after the header */
		break;
	case VIRTIO_BLK_T_FLUSH:
		/* Nothing a read-only disk could have to make stable. */
		if (b->disk->readonly)
			goto answer;
		return r;
	case VIRTIO_BLK_T_GET_ID:
		if (e->in_len - 1 < BLK_ID_BYTES) {
			st = VIRTIO_BLK_S_IOERR;
			goto answer;
		}
		virtq_elem_write(e, 0, b->id, BLK_ID_BYTES);
		r->chain.len = BLK_ID_BYTES + 1;
		goto answer;
	default:
		st = VIRTIO_BLK_S_UNSUPP; /* GET_LIFETIME, SECURE_ERASE, zones, legacy SCSI... */
		goto answer;
	}

	if (r->type == VIRTIO_BLK_T_DISCARD || r->type == VIRTIO_BLK_T_WRITE_ZEROES) {
		uint64_t bit = r->type == VIRTIO_BLK_T_DISCARD ? VIRTIO_BLK_F_DISCARD
							       : VIRTIO_BLK_F_WRITE_ZEROES;

		if (!(d->driver_features & (1ULL << bit)))
			st = VIRTIO_BLK_S_UNSUPP; /* not negotiated: the limits were never agreed */
		else
			st = parse_segments(r, e);
		if (st != VIRTIO_BLK_S_OK || r->nseg == 0)
			goto answer;
		return r;
	}
	/* Reads and writes: whole sectors, inside the disk, no longer than we can report. */
	if (len % DISK_SECTOR || len > BLK_MAX_DATA || !range_ok(b, sector, len)) {
		st = VIRTIO_BLK_S_IOERR;
		goto answer;
	}
	if (len == 0)
		goto answer;
	r->off = sector * DISK_SECTOR;
	if (r->type == VIRTIO_BLK_T_IN) {
		r->niov = iov_slice(e->iov + e->out_num, e->in_num, 0, len, r->iov, e->in_num);
		r->chain.len = (uint32_t)len + 1;
	} else {
		r->niov = iov_slice(e->iov, e->out_num, hdr_len, len, r->iov, e->out_num);
	}
	return r;
answer:
	req_finish(r, st);
	return NULL;
}

/* The queue handler: pops and submits until the ring is empty or the disk queue is full. */
static void blk_run(struct blk_queue *q)
{
	struct virtio_dev *d = &q->blk->vdev;
	struct virtq *vq = &d->queues[q->index].vq;

	while (virtio_live(d)) {
		struct blk_req *r = q->held;
		int ret;

		if (!r) {
			ret = virtio_pop(d, q->index, q->elem);
			if (ret < 0)
				break; /* the core put the device in NEEDS_RESET */
			if (ret == 0) {
				if (virtq_enable_notify(vq, true))
					continue; /* buffers came while notifications were off */
				break;
			}
			r = req_parse(q, q->elem);
			if (!r)
				continue;
		}
		q->held = NULL;
		ret = req_submit(r);
		if (ret == -EAGAIN) {
			/* Every slot is in flight: wait for a completion, which runs us again. */
			q->held = r;
			break;
		}
		if (ret < 0) {
			io_error(r, ret);
			req_finish(r, status_of(ret));
		}
	}
	disk_io_submit(&q->io);
	notify(q);
}

static void blk_queue_notify(struct virtio_dev *d, unsigned index)
{
	struct blk_dev *b = d->priv;

	blk_run(&b->queues[index]);
}

static bool blk_has(const struct virtio_dev *d, unsigned bit)
{
	return d->driver_features >> bit & 1;
}

/* The cache mode, as `writeback` shows it: the requests queued from now on follow it (each takes
 * the mode when it is queued: one in flight when the driver switches may end either way, as
 * 5.2.6.2 allows). Lock held. */
static void set_cache_mode(struct blk_dev *b, bool writeback)
{
	b->writeback = writeback;
	b->config.writeback = writeback;
	for (unsigned i = 0; b->queues && i < b->nr_queues; i++)
		b->queues[i].io.write_through = !writeback;
}

/* 5.2.5.2: with CONFIG_WCE but not FLUSH, `writeback` starts at 0, and the driver may read it from
 * FEATURES_OK on. (A legacy driver has no FEATURES_OK: its mode is settled at DRIVER_OK.) */
static void blk_features_ok(struct virtio_dev *d)
{
	if (blk_has(d, VIRTIO_BLK_F_CONFIG_WCE) && !blk_has(d, VIRTIO_BLK_F_FLUSH))
		set_cache_mode(d->priv, false);
}

/* Without CONFIG_WCE, the cache is writeback if and only if the driver negotiated FLUSH
 * (5.2.6.2): a driver that cannot flush gets every write on stable storage before its
 * completion. With it, the driver chose through `writeback`, which stays as it is (for a legacy
 * driver too, 5.2.5.3). Nothing is in flight before DRIVER_OK. */
static int blk_start(struct virtio_dev *d)
{
	if (!blk_has(d, VIRTIO_BLK_F_CONFIG_WCE))
		set_cache_mode(d->priv, blk_has(d, VIRTIO_BLK_F_FLUSH));
	return 0;
}

/* Lock held, the queue already reset (the core's order): requests in flight cannot be recalled
 * from the kernel, so wait for them, so that none writes into guest memory the driver has taken
 * back; their answers are dropped (the queue's epoch moved on). Returns how many there were. */
static unsigned queue_abandon(struct blk_queue *q)
{
	unsigned abandoned = q->inflight;

	if (q->held) {
		free(q->held->segs);
		free(q->held);
		q->held = NULL;
		abandoned++;
	}
	if (disk_io_drain(&q->io))
		log_error("%s: queue %u: requests still in flight after reset", q->blk->vdev.name,
			  q->index);
	q->need_notify = false;
	return abandoned;
}

static void blk_reset(struct virtio_dev *d)
{
	struct blk_dev *b = d->priv;
	unsigned abandoned = 0;

	for (unsigned i = 0; i < b->nr_queues; i++)
		abandoned += queue_abandon(&b->queues[i]);
	set_cache_mode(b, true); /* FLUSH is offered: writeback until the driver says otherwise */
	if (abandoned)
		virtio_log(d, LOG_INFO, "%s: reset with %u requests under way: they finished on the "
			   "disk, the driver gets no answer", d->name, abandoned);
}

static void blk_queue_stop(struct virtio_dev *d, unsigned q)
{
	struct blk_dev *b = d->priv;
	unsigned abandoned = queue_abandon(&b->queues[q]);

	if (abandoned)
		virtio_log(d, LOG_INFO, "%s: queue %u stopped with %u requests under way: they "
			   "finished on the disk, the driver gets no answer", d->name, q, abandoned);
}

static void config_init(struct blk_dev *b)
{
	struct virtio_blk_config *c = &b->config;
	const struct disk *disk = b->disk;
	uint32_t pb = disk->phys_block / DISK_SECTOR; /* a power of two, see disk_open */
	uint8_t exp = 0;

	while ((1u << exp) < pb)
		exp++;
	memset(c, 0, sizeof(*c));
	c->capacity = htole64(disk->size / DISK_SECTOR);
	c->size_max = htole32(BLK_SIZE_MAX);
	c->seg_max = htole32(BLK_SEG_MAX);
	c->blk_size = htole32(DISK_SECTOR);
	c->physical_block_exp = exp;
	c->min_io_size = htole16((uint16_t)pb);
	/* No optimal size: an image file has no stripe, and a value here makes mkfs.xfs and md
	 * align to it. */
	c->opt_io_size = 0;
	c->writeback = b->writeback;
	c->num_queues = htole16((uint16_t)b->nr_queues);
	if (disk->can_discard) {
		c->max_discard_sectors = htole32(BLK_MAX_DWZ_SECTORS);
		c->max_discard_seg = htole32(BLK_MAX_DWZ_SEG);
		c->discard_sector_alignment = htole32(pb);
	}
	if (disk->can_write_zeroes) {
		c->max_write_zeroes_sectors = htole32(BLK_MAX_DWZ_SECTORS);
		c->max_write_zeroes_seg = htole32(BLK_MAX_DWZ_SEG);
		c->write_zeroes_may_unmap = disk->can_discard;
	}
}

/* Only `writeback` is writable, and only with CONFIG_WCE (as far as the driver has accepted it:
 * a legacy driver may write it before DRIVER_OK), to 0 or 1; any other byte written, or another
 * value, is undone. */
static void blk_config_write(struct virtio_dev *d, uint32_t off, uint32_t len)
{
	struct blk_dev *b = d->priv;
	const uint32_t at = offsetof(struct virtio_blk_config, writeback);
	uint8_t v = b->config.writeback;
	bool mode = off <= at && at - off < len;

	config_init(b); /* every field as the device has it, `writeback` too */
	if (!mode || v == b->writeback)
		return;
	if (!blk_has(d, VIRTIO_BLK_F_CONFIG_WCE) || v > 1) {
		virtio_log(d, LOG_DEBUG,
			   "%s: writeback %u written without CONFIG_WCE or out of range; ignored",
			   d->name, v);
		return;
	}
	set_cache_mode(b, v);
	virtio_log(d, LOG_INFO, "%s: the driver set the cache to %s", d->name,
		   v ? "writeback" : "write-through");
}

static const struct virtio_dev_ops blk_ops = {
	.name = "blk",
	.device_id = VIRTIO_ID_BLOCK,
	.pci_class = 0x018000, /* mass storage, "other" */
	.start = blk_start,
	.features_ok = blk_features_ok,
	.queue_notify = blk_queue_notify,
	.config_write = blk_config_write,
	.reset = blk_reset,
	.queue_stop = blk_queue_stop,
};

int blk_init(struct blk_dev *b, const char *name, struct disk *disk, const char *serial,
	     unsigned nr_queues, const struct guest_mem *mem, struct event_loop *loop)
{
	uint64_t features = 1ULL << VIRTIO_BLK_F_SIZE_MAX | 1ULL << VIRTIO_BLK_F_SEG_MAX |
			    1ULL << VIRTIO_BLK_F_BLK_SIZE | 1ULL << VIRTIO_BLK_F_FLUSH |
			    1ULL << VIRTIO_BLK_F_TOPOLOGY | 1ULL << VIRTIO_BLK_F_MQ |
			    1ULL << VIRTIO_BLK_F_CONFIG_WCE;
	int ret;

	memset(b, 0, sizeof(*b));
	if (serial && strlen(serial) > BLK_ID_BYTES) {
		log_error("%s: serial \"%s\" is longer than %d bytes", name, serial, BLK_ID_BYTES);
		return -EINVAL;
	}
	if (nr_queues < 1 || nr_queues > BLK_MAX_QUEUES) {
		log_error("%s: %u queues: between 1 and %d", name, nr_queues, BLK_MAX_QUEUES);
		return -EINVAL;
	}
	if (serial)
		memcpy(b->id, serial, strlen(serial)); /* NUL-padded by the memset */
	b->disk = disk;
	b->nr_queues = nr_queues;
	b->writeback = true; /* FLUSH is offered (5.2.5.2); write_through starts false to match */
	if (disk->readonly)
		features |= 1ULL << VIRTIO_BLK_F_RO;
	if (disk->can_discard && !disk->readonly)
		features |= 1ULL << VIRTIO_BLK_F_DISCARD;
	if (disk->can_write_zeroes && !disk->readonly)
		features |= 1ULL << VIRTIO_BLK_F_WRITE_ZEROES;
	config_init(b);
	b->queues = calloc(nr_queues, sizeof(*b->queues));
	if (!b->queues) {
		ret = -ENOMEM;
		goto fail;
	}
	ret = virtio_dev_init(&b->vdev, &blk_ops, b, name, mem, loop, features, nr_queues,
			      BLK_QUEUE_SIZE);
	if (ret)
		goto fail;
	b->vdev.config = (uint8_t *)&b->config;
	b->vdev.config_len = sizeof(b->config);
	for (unsigned i = 0; i < nr_queues; i++) {
		struct blk_queue *q = &b->queues[i];

		q->blk = b;
		q->index = i;
		q->elem = malloc(sizeof(*q->elem));
		if (!q->elem) {
			ret = -ENOMEM;
			goto fail;
		}
		/* One slot per descriptor the ring can hold: a driver that follows the spec never
		 * finds the disk queue full. */
		ret = disk_io_init(&q->io, disk, loop, BLK_QUEUE_SIZE);
		if (ret)
			goto fail;
		disk_io_set_batch_fn(&q->io, blk_batch_done, q);
	}
	return 0;
fail:
	log_error("%s: %s", name, strerror(-ret));
	blk_destroy(b);
	return ret;
}

void blk_destroy(struct blk_dev *b)
{
	if (b->vdev.ops) {
		/* Completions that still come in only free their requests. */
		pthread_mutex_lock(&b->vdev.lock);
		for (unsigned i = 0; i < b->vdev.nr_queues; i++)
			virtq_reset(&b->vdev.queues[i].vq);
		pthread_mutex_unlock(&b->vdev.lock);
	}
	for (unsigned i = 0; b->queues && i < b->nr_queues; i++) {
		struct blk_queue *q = &b->queues[i];

		disk_io_destroy(&q->io);
		if (q->held) {
			free(q->held->segs);
			free(q->held);
		}
		free(q->elem);
	}
	free(b->queues);
	b->queues = NULL;
	b->nr_queues = 0;
	virtio_dev_destroy(&b->vdev);
}
