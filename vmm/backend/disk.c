#include "backend/disk.h"
#include "event.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

enum disk_op { DISK_READ, DISK_WRITE, DISK_FLUSH, DISK_FALLOCATE };

struct disk_req {
	enum disk_op op;
	disk_done_fn fn;
	void *opaque;
	int result;
	uint64_t off;   /* read/write: where the request started; fallocate: the range */
	uint64_t len;   /* read/write: bytes asked for */
	uint64_t done;  /* read/write: bytes transferred so far */
	int mode;       /* fallocate */
	/* Write-through, as io->write_through was when the request was queued: a write goes with
	 * RWF_DSYNC (each part of a short one too); an fdatasync follows a fallocate before it
	 * completes. Taken once, so a mode change cannot leave part of a request volatile. */
	bool sync;
	struct iovec *iov; /* read/write: a copy of the caller's, advanced past what is done */
	unsigned niov, iov_cap;
};

/* An image that may be read but not written (its mode, a read-only file system, an immutable
 * file) still boots read-only: say how. */
static const char *readonly_hint(const char *path, bool readonly, int err)
{
	if (readonly || (err != EACCES && err != EPERM && err != EROFS) || access(path, R_OK))
		return "";
	return " (it can be read: add readonly=on to give the guest a read-only disk)";
}

int disk_open(struct disk *d, const char *path, bool readonly, const char *what)
{
	struct flock fl = { .l_type = readonly ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET };
	struct stat st;
	int ret;

	memset(d, 0, sizeof(*d));
	/* NONBLOCK only for the open itself: a FIFO would otherwise wait for a writer before we
	 * could refuse it. */
	d->fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (d->fd < 0) {
		ret = -errno;
		log_error("%s: %s%s", what, strerror(-ret), readonly_hint(path, readonly, -ret));
		return ret;
	}
	if (fstat(d->fd, &st) < 0) {
		ret = -errno;
		log_error("%s: %s", what, strerror(-ret));
		goto fail;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		ret = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		log_error("%s: %s is %s, not a regular file or block device", what, path,
			  S_ISDIR(st.st_mode) ? "a directory" : "a special file");
		goto fail;
	}
	/* io_uring returns EAGAIN to the caller for an O_NONBLOCK file instead of waiting. */
	if (fcntl(d->fd, F_SETFL, 0) < 0) {
		ret = -errno;
		log_error("%s: %s", what, strerror(-ret));
		goto fail;
	}
	/* An open-file-description lock belongs to this open, not to the process, so it also keeps
	 * two disks of one vmm off the same image, and closing another fd of the file does not drop
	 * it. Advisory: it stops other vmm and QEMU instances, not every writer. */
	if (fcntl(d->fd, F_OFD_SETLK, &fl) < 0) {
		ret = -errno;
		if (ret == -EAGAIN || ret == -EACCES) {
			log_error("%s: %s is in use by another process (locked)", what, path);
			ret = -EBUSY;
		} else {
			log_error("%s: cannot lock %s: %s", what, path, strerror(-ret));
		}
		goto fail;
	}
	d->phys_block = DISK_SECTOR;
	if (S_ISBLK(st.st_mode)) {
		unsigned int pbs = 0;

		if (ioctl(d->fd, BLKGETSIZE64, &d->size) < 0) {
			ret = -errno;
			log_error("%s: cannot read the size of %s: %s", what, path, strerror(-ret));
			goto fail;
		}
		if (ioctl(d->fd, BLKPBSZGET, &pbs) == 0)
			d->phys_block = pbs;
	} else {
		d->size = (uint64_t)st.st_size;
		d->phys_block = (uint32_t)st.st_blksize;
	}
	/* Topology hints only: anything odd falls back to the logical sector. */
	if (d->phys_block < DISK_SECTOR || d->phys_block > (1u << 20) ||
	    (d->phys_block & (d->phys_block - 1)))
		d->phys_block = DISK_SECTOR;
	/* See struct disk: assumed, not probed; a failing request says -EOPNOTSUPP. */
	d->can_discard = d->can_write_zeroes = !readonly;
	d->readonly = readonly;
	d->path = strdup(path);
	if (!d->path) {
		ret = -ENOMEM;
		goto fail;
	}
	return 0;
fail:
	close(d->fd);
	d->fd = -1;
	return ret;
}

void disk_warn_size(const struct disk *d, const char *what)
{
	if (d->size < DISK_SECTOR)
		log_warn("%s: %s is smaller than one sector: the guest sees an empty disk", what,
			 d->path);
	else if (d->size % DISK_SECTOR)
		log_warn("%s: the last %llu bytes of %s are not a whole sector: the guest does not "
			 "see them", what, (unsigned long long)(d->size % DISK_SECTOR), d->path);
}

bool disk_same_file(const struct disk *d, const char *path)
{
	struct stat a, b;

	if (fstat(d->fd, &a) < 0 || stat(path, &b) < 0)
		return false;
	/* Two nodes of one block device are one disk too. */
	if (S_ISBLK(a.st_mode) && S_ISBLK(b.st_mode))
		return a.st_rdev == b.st_rdev;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

void disk_close(struct disk *d)
{
	/* A zeroed disk has fd 0, which is not ours: it is only ours once path is set. */
	if (d->path && d->fd >= 0)
		close(d->fd);
	d->fd = -1;
	free(d->path);
	d->path = NULL;
}

/* ---- requests ---- */

static void ring_signal(struct disk_io *io)
{
	uint64_t one = 1;

	if (write(io->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("disk %s: eventfd: %s", io->disk->path, strerror(errno));
}

/* Fills an SQE for r from where it stands. Lock held; the SQ has room because it has a slot for
 * every request slot and a request has at most one SQE at a time. */
static void prep(struct disk_io *io, struct disk_req *r)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&io->ring);
	int fd = io->disk->fd;

	switch (r->op) {
	case DISK_READ:
		io_uring_prep_readv(sqe, fd, r->iov, r->niov, r->off + r->done);
		break;
	case DISK_WRITE:
		io_uring_prep_writev(sqe, fd, r->iov, r->niov, r->off + r->done);
		if (r->sync)
			sqe->rw_flags = RWF_DSYNC;
		break;
	case DISK_FLUSH:
		io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
		break;
	case DISK_FALLOCATE:
		io_uring_prep_fallocate(sqe, fd, r->mode, (off_t)r->off, (off_t)r->len);
		break;
	}
	io_uring_sqe_set_data(sqe, r);
	io->queued++;
}

static int submit_locked(struct disk_io *io)
{
	unsigned tries = 0;
	int ret;

	while (io->queued) {
		ret = io_uring_submit(&io->ring);
		/* Short of memory for now: again, a few times. What stays queued goes with the next
		 * submit. */
		if ((ret == -EINTR || ret == -EAGAIN || ret == -EBUSY) && ++tries < 100)
			continue;
		if (ret < 0) {
			log_error("disk %s: io_uring submit: %s", io->disk->path, strerror(-ret));
			return ret;
		}
		io->queued -= (unsigned)ret < io->queued ? (unsigned)ret : io->queued;
		io->inflight += (unsigned)ret;
	}
	return 0;
}

/* A read or write moved res bytes: drop them from the front of the iovec array. */
static void iov_advance(struct disk_req *r, size_t res)
{
	unsigned i = 0;

	while (i < r->niov && res >= r->iov[i].iov_len)
		res -= r->iov[i++].iov_len;
	memmove(r->iov, r->iov + i, (r->niov - i) * sizeof(*r->iov));
	r->niov -= i;
	if (r->niov) {
		r->iov[0].iov_base = (uint8_t *)r->iov[0].iov_base + res;
		r->iov[0].iov_len -= res;
	}
}

/* The kernel finished one SQE of r with res. Returns true when r goes on (the rest of a short
 * transfer was queued), false when r->result is final. */
static bool req_step(struct disk_io *io, struct disk_req *r, int res)
{
	if (r->op == DISK_FALLOCATE && res >= 0 && r->sync) {
		/* Write-through: the range's new state is stable before the request completes. */
		r->op = DISK_FLUSH;
		prep(io, r);
		return true;
	}
	if (r->op != DISK_READ && r->op != DISK_WRITE) {
		r->result = res < 0 ? res : 0;
		return false;
	}
	if (res < 0) {
		r->result = res;
		return false;
	}
	/* A short transfer inside the disk's bounds: a signal, memory pressure, or the first part
	 * of a range the file system could only partly serve. Carry on from where it stopped; if
	 * it moved nothing, the file shrank under us (or the device broke) and going on would
	 * spin: an error rather than a buffer that is partly stale. */
	if (res == 0 && r->done < r->len) {
		log_warn("disk %s: %s at %llu made no progress; the file may have shrunk",
			 io->disk->path, r->op == DISK_READ ? "read" : "write",
			 (unsigned long long)(r->off + r->done));
		r->result = -EIO;
		return false;
	}
	r->done += (uint64_t)res;
	if (r->done >= r->len) {
		r->result = (int)r->len;
		return false;
	}
	log_debug("disk %s: short %s, %llu of %llu bytes: continuing", io->disk->path,
		  r->op == DISK_READ ? "read" : "write", (unsigned long long)r->done,
		  (unsigned long long)r->len);
	iov_advance(r, (size_t)res);
	prep(io, r);
	return true;
}

/* Moves every completion the kernel has posted to the done list. Lock held. */
static void reap_locked(struct disk_io *io)
{
	struct io_uring_cqe *cqe;
	bool requeued = false;

	while (io_uring_peek_cqe(&io->ring, &cqe) == 0) {
		struct disk_req *r = io_uring_cqe_get_data(cqe);
		int res = cqe->res;

		io_uring_cqe_seen(&io->ring, cqe);
		io->inflight--;
		if (req_step(io, r, res)) {
			requeued = true;
			continue;
		}
		io->done_ids[io->ndone++] = (unsigned)(r - io->reqs);
	}
	if (requeued)
		submit_locked(io);
}

/* Waits (lock held) until at least `min` requests are done or nothing is in flight. */
static void wait_locked(struct disk_io *io, unsigned min)
{
	struct io_uring_cqe *cqe;

	reap_locked(io);
	while (io->ndone < min && (io->inflight || io->queued)) {
		int ret;

		if (io->queued && submit_locked(io))
			return;
		ret = io_uring_wait_cqe(&io->ring, &cqe);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN) {
			log_error("disk %s: waiting for completions: %s", io->disk->path,
				  strerror(-ret));
			return;
		}
		reap_locked(io);
	}
}

int disk_io_complete(struct disk_io *io, unsigned min)
{
	struct {
		disk_done_fn fn;
		void *opaque;
		int result;
	} batch[32];
	int total = 0;

	pthread_mutex_lock(&io->lock);
	wait_locked(io, min);
	while (io->ndone) {
		unsigned n = 0;

		/* Slots go back before the callbacks run, so that a callback (or the queue it
		 * restarts) can queue a new request at once. */
		while (n < io->ndone && n < 32) {
			unsigned id = io->done_ids[n];
			struct disk_req *r = &io->reqs[id];

			batch[n].fn = r->fn;
			batch[n].opaque = r->opaque;
			batch[n++].result = r->result;
			io->free_ids[io->nfree++] = id;
		}
		/* In the order they completed: the oldest request is answered first. */
		io->ndone -= n;
		memmove(io->done_ids, io->done_ids + n, io->ndone * sizeof(*io->done_ids));
		pthread_mutex_unlock(&io->lock);
		for (unsigned i = 0; i < n; i++)
			batch[i].fn(batch[i].opaque, batch[i].result);
		total += (int)n;
		pthread_mutex_lock(&io->lock);
	}
	pthread_mutex_unlock(&io->lock);
	if (total && io->batch_fn)
		io->batch_fn(io->batch_opaque);
	return total;
}

static void disk_io_ready(void *opaque, uint32_t events)
{
	struct disk_io *io = opaque;
	uint64_t v;

	/* Drained first: a completion posted after the read signals it again. */
	if (read(io->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("disk %s: eventfd: %s", io->disk->path, strerror(errno));
	disk_io_complete(io, 0);
}

int disk_io_drain(struct disk_io *io)
{
	bool pending, stuck;

	if (!io->ring_init)
		return 0;
	pthread_mutex_lock(&io->lock);
	wait_locked(io, io->depth + 1); /* more than can ever be done: until nothing is in flight */
	pending = io->ndone > 0;
	stuck = io->inflight || io->queued;
	pthread_mutex_unlock(&io->lock);
	if (pending)
		ring_signal(io); /* the loop runs their callbacks */
	return stuck ? -EIO : 0;
}

void disk_io_set_batch_fn(struct disk_io *io, void (*fn)(void *opaque), void *opaque)
{
	io->batch_fn = fn;
	io->batch_opaque = opaque;
}

int disk_io_init(struct disk_io *io, struct disk *d, struct event_loop *loop, unsigned depth)
{
	int ret;

	memset(io, 0, sizeof(*io));
	io->efd = -1;
	io->disk = d;
	io->loop = loop;
	io->depth = depth;
	pthread_mutex_init(&io->lock, NULL);
	if (depth == 0 || depth > 4096) {
		ret = -EINVAL;
		goto fail;
	}
	io->reqs = calloc(depth, sizeof(*io->reqs));
	io->free_ids = calloc(depth, sizeof(*io->free_ids));
	io->done_ids = calloc(depth, sizeof(*io->done_ids));
	if (!io->reqs || !io->free_ids || !io->done_ids) {
		ret = -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < depth; i++)
		io->free_ids[i] = depth - 1 - i;
	io->nfree = depth;
	/* As many completion entries as requests (liburing doubles them): the CQ never overflows,
	 * since a request has at most one SQE in the kernel at a time. */
	ret = io_uring_queue_init(depth, &io->ring, 0);
	if (ret < 0)
		goto fail;
	io->ring_init = true;
	io->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (io->efd < 0) {
		ret = -errno;
		goto fail;
	}
	ret = io_uring_register_eventfd(&io->ring, io->efd);
	if (ret < 0)
		goto fail;
	if (loop && (ret = event_add(loop, io->efd, EPOLLIN, disk_io_ready, io))) {
		io->loop = NULL;
		goto fail;
	}
	return 0;
fail:
	log_error("disk %s: cannot set up io_uring: %s", d->path ? d->path : "", strerror(-ret));
	disk_io_destroy(io);
	return ret;
}

void disk_io_destroy(struct disk_io *io)
{
	if (!io->depth)
		return; /* zeroed: never initialised */
	if (io->loop && io->efd >= 0)
		event_del(io->loop, io->efd);
	io->loop = NULL;
	if (io->ring_init) {
		/* Callbacks may queue more (the next segment of a request): until all is quiet. */
		while (io->inflight || io->queued || io->ndone) {
			pthread_mutex_lock(&io->lock);
			submit_locked(io);
			pthread_mutex_unlock(&io->lock);
			if (disk_io_complete(io, 1) <= 0 && (io->inflight || io->queued)) {
				log_error("disk %s: %u requests never completed", io->disk->path,
					  io->inflight + io->queued);
				break;
			}
		}
		io_uring_queue_exit(&io->ring);
	}
	io->ring_init = false;
	if (io->efd >= 0)
		close(io->efd);
	io->efd = -1;
	for (unsigned i = 0; io->reqs && i < io->depth; i++)
		free(io->reqs[i].iov);
	free(io->reqs);
	free(io->free_ids);
	free(io->done_ids);
	io->reqs = NULL;
	io->free_ids = io->done_ids = NULL;
	pthread_mutex_destroy(&io->lock);
	io->depth = 0;
}

/* Whether [off, off + len) lies inside the disk, without wrapping. */
static bool in_range(const struct disk *d, uint64_t off, uint64_t len)
{
	return off <= d->size && len <= d->size - off;
}

/* Takes a free slot (lock held), or NULL when depth requests are under way. */
static struct disk_req *req_get(struct disk_io *io, enum disk_op op, disk_done_fn fn, void *opaque)
{
	struct disk_req *r;

	if (!io->nfree)
		return NULL;
	r = &io->reqs[io->free_ids[--io->nfree]];
	r->op = op;
	r->fn = fn;
	r->opaque = opaque;
	r->result = 0;
	r->off = r->len = r->done = 0;
	r->mode = 0;
	r->niov = 0;
	r->sync = io->write_through && (op == DISK_WRITE || op == DISK_FALLOCATE);
	return r;
}

static int rw(struct disk_io *io, enum disk_op op, uint64_t off, const struct iovec *iov,
	      unsigned n, disk_done_fn fn, void *opaque)
{
	struct disk_req *r;
	uint64_t len = 0;
	int ret = 0;

	for (unsigned i = 0; i < n; i++) {
		if (iov[i].iov_len > UINT64_MAX - len)
			return -EINVAL;
		len += iov[i].iov_len;
	}
	/* The result is an int: a request must be able to report its length. */
	if (n == 0 || n > IOV_MAX || len > INT32_MAX || !in_range(io->disk, off, len) ||
	    (op == DISK_WRITE && io->disk->readonly))
		return -EINVAL;
	pthread_mutex_lock(&io->lock);
	r = req_get(io, op, fn, opaque);
	if (!r) {
		ret = -EAGAIN;
		goto out;
	}
	if (r->iov_cap < n) {
		struct iovec *p = realloc(r->iov, n * sizeof(*p));

		if (!p) {
			io->free_ids[io->nfree++] = (unsigned)(r - io->reqs);
			ret = -ENOMEM;
			goto out;
		}
		r->iov = p;
		r->iov_cap = n;
	}
	memcpy(r->iov, iov, n * sizeof(*iov));
	r->niov = n;
	r->off = off;
	r->len = len;
	prep(io, r);
out:
	pthread_mutex_unlock(&io->lock);
	return ret;
}

int disk_readv(struct disk_io *io, uint64_t off, const struct iovec *iov, unsigned n,
	       disk_done_fn fn, void *opaque)
{
	return rw(io, DISK_READ, off, iov, n, fn, opaque);
}

int disk_writev(struct disk_io *io, uint64_t off, const struct iovec *iov, unsigned n,
		disk_done_fn fn, void *opaque)
{
	return rw(io, DISK_WRITE, off, iov, n, fn, opaque);
}

static int simple(struct disk_io *io, enum disk_op op, int mode, uint64_t off, uint64_t len,
		  disk_done_fn fn, void *opaque)
{
	struct disk_req *r;
	int ret = 0;

	pthread_mutex_lock(&io->lock);
	r = req_get(io, op, fn, opaque);
	if (!r) {
		ret = -EAGAIN;
	} else {
		r->mode = mode;
		r->off = off;
		r->len = len;
		prep(io, r);
	}
	pthread_mutex_unlock(&io->lock);
	return ret;
}

int disk_flush(struct disk_io *io, disk_done_fn fn, void *opaque)
{
	/* A read-only disk has nothing to make stable; fdatasync on it is harmless and cheap. */
	return simple(io, DISK_FLUSH, 0, 0, 0, fn, opaque);
}

int disk_discard(struct disk_io *io, uint64_t off, uint64_t len, disk_done_fn fn, void *opaque)
{
	if (io->disk->readonly || !in_range(io->disk, off, len) || len > INT64_MAX)
		return -EINVAL;
	/* KEEP_SIZE: punching the end of the image must not shrink it. */
	return simple(io, DISK_FALLOCATE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len, fn,
		      opaque);
}

int disk_write_zeroes(struct disk_io *io, uint64_t off, uint64_t len, bool unmap, disk_done_fn fn,
		      void *opaque)
{
	int mode = unmap ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
			 : FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;

	if (io->disk->readonly || !in_range(io->disk, off, len) || len > INT64_MAX)
		return -EINVAL;
	return simple(io, DISK_FALLOCATE, mode, off, len, fn, opaque);
}

void disk_io_submit(struct disk_io *io)
{
	pthread_mutex_lock(&io->lock);
	submit_locked(io);
	pthread_mutex_unlock(&io->lock);
}
