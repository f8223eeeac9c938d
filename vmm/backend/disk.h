/* Host files behind the block devices (virtio-blk, virtio-scsi): opened once, locked against a
 * second user, and read and written asynchronously through io_uring, so a slow disk never stalls a
 * vCPU or the I/O thread and many requests are in flight at once.
 *
 * A device keeps one struct disk per image and one struct disk_io per virtqueue (its own ring, so
 * queues never wait for each other). Completions are reaped on the event loop's thread, which
 * calls each request's callback; the callback takes the device's lock itself. */
#ifndef VMM_DISK_H
#define VMM_DISK_H

#include <liburing.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

struct event_loop;

#define DISK_SECTOR 512 /* the logical block the guest addresses */

struct disk {
	int fd;
	char *path;
	bool readonly;
	uint64_t size;           /* bytes; the guest sees size / DISK_SECTOR sectors */
	uint32_t phys_block;     /* the host file system's block (st_blksize), for topology */
	/* Whether fallocate(PUNCH_HOLE) / fallocate(ZERO_RANGE) are expected to work. Not probed:
	 * the only cheap probe that answers for sure modifies the file, and nothing may be written
	 * at open. Regular files and block devices on Linux are assumed to support both; a file
	 * system that does not (tmpfs has no ZERO_RANGE) fails the request with -EOPNOTSUPP, which
	 * the devices report to the guest as "unsupported". */
	bool can_discard;
	bool can_write_zeroes;
};

/* Opens path (read-write unless readonly) and takes an open-file-description lock on it: shared
 * for a read-only disk, exclusive otherwise, so a second vmm on a writable image fails. `what`
 * names the option in messages ("--disk path=a.img"). A missing, unreadable or locked file is one
 * message and -errno (main exits 2); one that could be opened read-only says so. Nothing is
 * written to the file. */
int disk_open(struct disk *d, const char *path, bool readonly, const char *what);
/* Warns of an image whose size is not whole sectors, which the guest does not see all of. Once per
 * image: disk_open does not, as an image is opened twice (devices_check, then the device). */
void disk_warn_size(const struct disk *d, const char *what);
/* Whether path is the file (or block device) d has open: an image given twice. */
bool disk_same_file(const struct disk *d, const char *path);
/* Closes (and unlocks). Safe on a zeroed or failed disk. */
void disk_close(struct disk *d);

/* The result of one request: bytes transferred (reads, writes) or 0, or -errno. A read or write
 * always transfers everything it asked for or fails: a short transfer is continued where it
 * stopped, and one that makes no progress (the file shrank under us) is -EIO, so a caller never
 * sees a buffer that is partly stale. */
typedef void (*disk_done_fn)(void *opaque, int result);

struct disk_req; /* one request slot, private to disk.c */

struct disk_io {
	struct disk *disk;
	struct event_loop *loop;
	struct io_uring ring;
	int efd;           /* eventfd the ring signals completions on, watched by loop */
	unsigned depth;    /* requests the ring holds at most */
	unsigned inflight; /* submitted and not yet completed */
	unsigned queued;   /* prepared and not yet submitted (see disk_io_submit) */
	bool ring_init;
	/* Write-through: a write, discard or write-zeroes completes only once it is on stable
	 * storage (RWF_DSYNC; fdatasync after a fallocate). Off: the page cache may hold it until
	 * a flush. The device sets it from its cache mode, which may change at run time; each
	 * request takes the setting in force when it is queued. */
	bool write_through;

	/* Private to disk.c. The lock serialises the ring between the loop's thread, which reaps,
	 * and a thread in disk_io_drain; callbacks run with it released. */
	pthread_mutex_t lock;
	struct disk_req *reqs;   /* depth slots */
	unsigned *free_ids;      /* slots not in use */
	unsigned nfree;
	unsigned *done_ids;      /* completed, callback not yet run */
	unsigned ndone;
	void (*batch_fn)(void *opaque); /* see disk_io_set_batch_fn */
	void *batch_opaque;
};

/* A context for up to `depth` requests in flight, its completions served on loop. 0 or -errno. */
int disk_io_init(struct disk_io *io, struct disk *d, struct event_loop *loop, unsigned depth);
/* Waits for the requests in flight (their callbacks run), then frees the context. Call it with the
 * loop stopped, or at least not serving this context. Safe on a zeroed or failed context. */
void disk_io_destroy(struct disk_io *io);
/* Waits until the kernel has finished every request submitted or queued, without running their
 * callbacks: they run later on the loop's thread (the loop is woken for them). For a device
 * reset, which holds the device lock that the callbacks take: when this returns, no request
 * touches guest memory or the file any more. 0 or -errno. */
int disk_io_drain(struct disk_io *io);
/* Optional: fn(opaque) runs after each batch of callbacks, so that a device interrupts the guest
 * once per batch rather than once per request. */
void disk_io_set_batch_fn(struct disk_io *io, void (*fn)(void *opaque), void *opaque);

/* Queue one request. 0: fn will be called once with the result, on the loop's thread, after
 * disk_io_submit. -EAGAIN: depth requests are in flight; try again after a completion. -EINVAL:
 * the range is outside the disk, or it is read-only and the request writes; nothing was queued.
 * The iovec array is copied; the buffers it points to must stay valid until fn runs. */
int disk_readv(struct disk_io *io, uint64_t off, const struct iovec *iov, unsigned n,
	       disk_done_fn fn, void *opaque);
int disk_writev(struct disk_io *io, uint64_t off, const struct iovec *iov, unsigned n,
		disk_done_fn fn, void *opaque);
/* fdatasync: the writes completed before it are on stable storage when it completes. */
int disk_flush(struct disk_io *io, disk_done_fn fn, void *opaque);
/* Deallocates [off, off + len) (a hole: it reads as zeros afterwards). */
int disk_discard(struct disk_io *io, uint64_t off, uint64_t len, disk_done_fn fn, void *opaque);
/* Zeroes [off, off + len), deallocating it when `unmap` allows. */
int disk_write_zeroes(struct disk_io *io, uint64_t off, uint64_t len, bool unmap, disk_done_fn fn,
		      void *opaque);
/* Submits what was queued since the last call (one system call for a batch). */
void disk_io_submit(struct disk_io *io);
/* Reaps and calls back whatever has completed: what the loop runs, also for unit tests, which may
 * wait for at least `min` completions. Returns how many. */
int disk_io_complete(struct disk_io *io, unsigned min);

#endif
