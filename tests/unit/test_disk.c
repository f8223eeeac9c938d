/* The disk backend against real temporary files: opening and locking, sizes, and every kind of
 * request through io_uring, completed by hand with disk_io_complete (or through an event loop). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "backend/disk.h"
#include "event.h"

#define IMG_SIZE (1 << 20)

struct done {
	int calls;
	int result;
};

static void on_done(void *opaque, int result)
{
	struct done *d = opaque;

	d->calls++;
	d->result = result;
}

/* A temporary image of `size` bytes, filled with a byte pattern (so that holes are visible). */
static void make_image(char *path, size_t size)
{
	int fd;
	uint8_t *buf = malloc(size);

	strcpy(path, "/var/tmp/vmm-disk-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	for (size_t i = 0; i < size; i++)
		buf[i] = (uint8_t)(i * 13 + 7);
	assert_int_equal(write(fd, buf, size), (ssize_t)size);
	close(fd);
	free(buf);
}

static void file_read(const char *path, uint64_t off, void *buf, size_t len)
{
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

/* Runs fn with stderr going to a buffer, which it returns (static). */
static const char *stderr_of(int (*fn)(void *), void *arg, int *ret)
{
	static char out[4096];
	char path[] = "/tmp/vmm-disk-err-XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	ssize_t n;

	assert_true(fd >= 0 && saved >= 0);
	fflush(stderr);
	dup2(fd, 2);
	*ret = fn(arg);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, out, sizeof(out) - 1, 0);
	out[n > 0 ? n : 0] = 0;
	close(fd);
	unlink(path);
	return out;
}

struct open_args {
	struct disk *d;
	const char *path;
	bool ro;
};

static int do_open(void *p)
{
	struct open_args *a = p;

	return disk_open(a->d, a->path, a->ro, "--disk path=test");
}

/* ---- opening ---- */

static void second_writer_is_refused_with_a_message(void **state)
{
	char path[64];
	struct disk a, b;
	int ret;

	make_image(path, IMG_SIZE);
	assert_int_equal(disk_open(&a, path, false, "--disk path=a"), 0);
	const char *err = stderr_of(do_open, &(struct open_args){ &b, path, false }, &ret);
	assert_int_equal(ret, -EBUSY);
	assert_non_null(strstr(err, "is in use by another process (locked)"));
	assert_non_null(strstr(err, path));
	/* A reader is refused too: the writer holds the image exclusively. */
	assert_int_equal(disk_open(&b, path, true, "--disk path=b"), -EBUSY);
	disk_close(&b);
	disk_close(&a);
	/* Unlocked by the close. */
	assert_int_equal(disk_open(&b, path, false, "--disk path=b"), 0);
	disk_close(&b);
	unlink(path);
}

static void readers_share(void **state)
{
	char path[64];
	struct disk a, b, c;

	make_image(path, IMG_SIZE);
	assert_int_equal(disk_open(&a, path, true, "a"), 0);
	assert_int_equal(disk_open(&b, path, true, "b"), 0);
	assert_true(a.readonly && b.readonly);
	assert_false(a.can_discard || a.can_write_zeroes);
	assert_int_equal(disk_open(&c, path, false, "c"), -EBUSY);
	disk_close(&a);
	disk_close(&b);
	disk_close(&c);
	unlink(path);
}

/* Issue 20: a writable disk on an image that may only be read says that readonly=on would do.
 * Root may open any file for writing, so the open runs as nobody in a child; a missing image
 * gets no such hint. */
static void unwritable_image_hints_readonly(void **state)
{
	char path[64];
	struct disk d;
	int ret, status;
	pid_t pid;

	make_image(path, IMG_SIZE); /* in /var/tmp, which nobody may pass */
	assert_int_equal(chmod(path, 0444), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		const char *err;

		if (!geteuid() && (setgroups(0, NULL) || setresgid(65534, 65534, 65534) ||
				   setresuid(65534, 65534, 65534)))
			_exit(3);
		err = stderr_of(do_open, &(struct open_args){ &d, path, false }, &ret);
		if (ret != -EACCES || !strstr(err, "--disk path=test: Permission denied (it can be "
						   "read: add readonly=on"))
			_exit(1);
		disk_close(&d);
		_exit(disk_open(&d, path, true, "x") ? 2 : 0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	unlink(path);
	const char *err = stderr_of(do_open, &(struct open_args){ &d, path, false }, &ret);
	assert_int_equal(ret, -ENOENT);
	assert_null(strstr(err, "readonly=on"));
}

/* Issue 20: the same image twice was "in use by another process (locked)"; devices_check asks
 * this first. By inode, so another name (a link, a symlink, a relative path) is the same file. */
static void same_file(void **state)
{
	char path[64], link_path[80], sym_path[80], other[64];
	struct disk d;

	make_image(path, IMG_SIZE);
	make_image(other, IMG_SIZE);
	snprintf(link_path, sizeof(link_path), "%s.link", path);
	snprintf(sym_path, sizeof(sym_path), "%s.sym", path);
	assert_int_equal(link(path, link_path), 0);
	assert_int_equal(symlink(path, sym_path), 0);
	assert_int_equal(disk_open(&d, path, true, "d"), 0);
	assert_true(disk_same_file(&d, path));
	assert_true(disk_same_file(&d, link_path));
	assert_true(disk_same_file(&d, sym_path));
	assert_false(disk_same_file(&d, other));
	assert_false(disk_same_file(&d, "/nonexistent/vmm.img"));
	disk_close(&d);
	unlink(sym_path);
	unlink(link_path);
	unlink(path);
	unlink(other);
}

static void sizes(void **state)
{
	char path[64];
	struct disk d;

	make_image(path, IMG_SIZE + 100);
	assert_int_equal(disk_open(&d, path, false, "d"), 0);
	assert_int_equal(d.size, IMG_SIZE + 100);
	assert_true(d.phys_block >= DISK_SECTOR && !(d.phys_block & (d.phys_block - 1)));
	assert_true(d.can_discard && d.can_write_zeroes);
	assert_false(d.readonly);
	disk_close(&d);
	unlink(path);
}

static void bad_paths(void **state)
{
	char dir[] = "/tmp/vmm-disk-XXXXXX", fifo[64];
	struct disk d;

	assert_int_equal(disk_open(&d, "/nonexistent/vmm.img", false, "x"), -ENOENT);
	disk_close(&d);
	assert_int_equal(disk_open(&d, "/tmp", true, "x"), -EISDIR);
	disk_close(&d);
	assert_int_equal(disk_open(&d, "/tmp", false, "x"), -EISDIR);
	disk_close(&d);
	/* A FIFO would block a plain open until a writer came. */
	assert_non_null(mkdtemp(dir));
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_int_equal(disk_open(&d, fifo, true, "x"), -EINVAL);
	disk_close(&d);
	unlink(fifo);
	rmdir(dir);
	assert_int_equal(disk_open(&d, "/dev/null", true, "x"), -EINVAL);
	disk_close(&d);
}

static void zeroed_things_are_safe_to_free(void **state)
{
	struct disk d;
	struct disk_io io;

	int before = fcntl(0, F_GETFD);

	memset(&d, 0, sizeof(d));
	memset(&io, 0, sizeof(io));
	disk_io_destroy(&io);
	disk_close(&d);
	assert_int_equal(fcntl(0, F_GETFD), before); /* a zeroed fd of 0 is not ours to close */
}

/* ---- requests ---- */

struct fx {
	char path[64];
	struct disk d;
	struct disk_io io;
};

static void fx_setup(struct fx *f, bool ro, unsigned depth)
{
	make_image(f->path, IMG_SIZE);
	assert_int_equal(disk_open(&f->d, f->path, ro, "test"), 0);
	assert_int_equal(disk_io_init(&f->io, &f->d, NULL, depth), 0);
}

static void fx_teardown(struct fx *f)
{
	disk_io_destroy(&f->io);
	disk_close(&f->d);
	unlink(f->path);
}

static void write_then_read_scattered(void **state)
{
	struct fx f;
	uint8_t src[1536], dst[1536], file[1536];
	struct done w = { 0 }, r = { 0 };

	fx_setup(&f, false, 8);
	for (unsigned i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i ^ 0x5c);
	struct iovec wv[3] = { { src, 100 }, { src + 100, 1 }, { src + 101, 1435 } };
	assert_int_equal(disk_writev(&f.io, 4096 + 512, wv, 3, on_done, &w), 0);
	assert_int_equal(f.io.queued, 1);
	disk_io_submit(&f.io);
	assert_int_equal(disk_io_complete(&f.io, 1), 1);
	assert_int_equal(w.calls, 1);
	assert_int_equal(w.result, 1536);
	file_read(f.path, 4096 + 512, file, sizeof(file));
	assert_memory_equal(file, src, sizeof(src));

	memset(dst, 0, sizeof(dst));
	struct iovec rv[2] = { { dst, 1000 }, { dst + 1000, 536 } };
	assert_int_equal(disk_readv(&f.io, 4096 + 512, rv, 2, on_done, &r), 0);
	disk_io_submit(&f.io);
	assert_int_equal(disk_io_complete(&f.io, 1), 1);
	assert_int_equal(r.result, 1536);
	assert_memory_equal(dst, src, sizeof(src));
	assert_int_equal(f.io.inflight, 0);
	fx_teardown(&f);
}

static void flush_completes(void **state)
{
	struct fx f;
	struct done fl = { 0, -1 };

	fx_setup(&f, false, 4);
	assert_int_equal(disk_flush(&f.io, on_done, &fl), 0);
	disk_io_submit(&f.io);
	assert_int_equal(disk_io_complete(&f.io, 1), 1);
	assert_int_equal(fl.calls, 1);
	assert_int_equal(fl.result, 0);
	fx_teardown(&f);
}

static bool is_hole(const char *path, off_t off)
{
	int fd = open(path, O_RDONLY);
	off_t h = lseek(fd, off, SEEK_HOLE);

	close(fd);
	return h == off;
}

static void discard_punches_a_hole(void **state)
{
	struct fx f;
	struct done dd = { 0, -1 };
	static uint8_t buf[65536], zero[65536];

	fx_setup(&f, false, 4);
	fsync(f.d.fd);
	assert_false(is_hole(f.path, 65536));
	assert_int_equal(disk_discard(&f.io, 65536, 65536, on_done, &dd), 0);
	disk_io_submit(&f.io);
	disk_io_complete(&f.io, 1);
	assert_int_equal(dd.result, 0);
	assert_true(is_hole(f.path, 65536));
	file_read(f.path, 65536, buf, sizeof(buf));
	assert_memory_equal(buf, zero, sizeof(buf));
	/* The bytes around it are untouched and the size kept. */
	file_read(f.path, 65535, buf, 1);
	assert_int_equal(buf[0], (uint8_t)(65535 * 13 + 7));
	file_read(f.path, 131072, buf, 1);
	assert_int_equal(buf[0], (uint8_t)(131072 * 13 + 7));
	struct stat st;
	assert_int_equal(stat(f.path, &st), 0);
	assert_int_equal(st.st_size, IMG_SIZE);
	fx_teardown(&f);
}

static void write_zeroes_with_and_without_unmap(void **state)
{
	struct fx f;
	struct done a = { 0, -1 }, b = { 0, -1 };
	static uint8_t buf[8192], zero[8192];

	fx_setup(&f, false, 4);
	fsync(f.d.fd);
	assert_int_equal(disk_write_zeroes(&f.io, 8192, 8192, false, on_done, &a), 0);
	assert_int_equal(disk_write_zeroes(&f.io, 65536, 8192, true, on_done, &b), 0);
	disk_io_submit(&f.io);
	assert_int_equal(disk_io_complete(&f.io, 2), 2);
	/* ZERO_RANGE is missing on some file systems: that is the one acceptable failure. */
	assert_true(a.result == 0 || a.result == -EOPNOTSUPP);
	if (a.result == 0) {
		file_read(f.path, 8192, buf, sizeof(buf));
		assert_memory_equal(buf, zero, sizeof(buf));
	}
	assert_int_equal(b.result, 0);
	file_read(f.path, 65536, buf, sizeof(buf));
	assert_memory_equal(buf, zero, sizeof(buf));
	assert_true(is_hole(f.path, 65536));
	fx_teardown(&f);
}

/* The SQE a request was last prepared in (queued, or already submitted). */
static const struct io_uring_sqe *last_sqe(struct fx *f)
{
	return &f->io.ring.sq.sqes[(f->io.ring.sq.sqe_tail - 1) & *f->io.ring.sq.kring_mask];
}

/* Write-through (virtio-blk without FLUSH, hostile-guest defect 4): a write goes with RWF_DSYNC,
 * and a fallocate is followed by an fdatasync before it completes; without it, neither. */
static void write_through_is_on_stable_storage_when_done(void **state)
{
	struct fx f;
	uint8_t src[512] = { 1, 2, 3 };
	struct iovec v = { src, sizeof(src) };
	struct done w = { 0, -1 }, z = { 0, -1 };
	unsigned tail;

	fx_setup(&f, false, 4);
	assert_int_equal(disk_writev(&f.io, 0, &v, 1, on_done, &w), 0);
	assert_int_equal(last_sqe(&f)->rw_flags, 0);
	f.io.write_through = true;
	assert_int_equal(disk_writev(&f.io, 512, &v, 1, on_done, &w), 0);
	assert_int_equal(last_sqe(&f)->opcode, IORING_OP_WRITEV);
	assert_int_equal(last_sqe(&f)->rw_flags, RWF_DSYNC);
	disk_io_submit(&f.io);
	assert_int_equal(disk_io_complete(&f.io, 2), 2);
	assert_int_equal(w.result, 512);
	tail = f.io.ring.sq.sqe_tail;
	assert_int_equal(disk_discard(&f.io, 65536, 4096, on_done, &z), 0);
	disk_io_submit(&f.io);
	assert_int_equal(disk_io_complete(&f.io, 1), 1);
	assert_int_equal(z.calls, 1);
	assert_int_equal(z.result, 0);
	assert_int_equal(f.io.ring.sq.sqe_tail - tail, 2); /* the fallocate, then... */
	assert_int_equal(last_sqe(&f)->opcode, IORING_OP_FSYNC); /* ...the fdatasync */
	assert_int_equal(last_sqe(&f)->fsync_flags, IORING_FSYNC_DATASYNC);
	f.io.write_through = false;
	tail = f.io.ring.sq.sqe_tail;
	assert_int_equal(disk_discard(&f.io, 65536, 4096, on_done, &z), 0);
	disk_io_submit(&f.io);
	assert_int_equal(disk_io_complete(&f.io, 1), 1);
	assert_int_equal(f.io.ring.sq.sqe_tail - tail, 1);
	fx_teardown(&f);
}

static void ranges_are_checked(void **state)
{
	struct fx f;
	uint8_t buf[1024];
	struct iovec v = { buf, sizeof(buf) };
	struct iovec two[2] = { { buf, 512 }, { buf, SIZE_MAX - 100 } };
	struct done d = { 0 };

	fx_setup(&f, false, 4);
	assert_int_equal(disk_readv(&f.io, IMG_SIZE - 1024, &v, 1, on_done, &d), 0);
	assert_int_equal(disk_readv(&f.io, IMG_SIZE - 512, &v, 1, on_done, &d), -EINVAL);
	assert_int_equal(disk_writev(&f.io, IMG_SIZE, &v, 1, on_done, &d), -EINVAL);
	assert_int_equal(disk_readv(&f.io, UINT64_MAX - 100, &v, 1, on_done, &d), -EINVAL);
	assert_int_equal(disk_readv(&f.io, 0, two, 2, on_done, &d), -EINVAL); /* length wraps */
	assert_int_equal(disk_readv(&f.io, 0, &v, 0, on_done, &d), -EINVAL);
	assert_int_equal(disk_discard(&f.io, IMG_SIZE - 512, 1024, on_done, &d), -EINVAL);
	assert_int_equal(disk_discard(&f.io, UINT64_MAX - 511, 1024, on_done, &d), -EINVAL);
	assert_int_equal(disk_write_zeroes(&f.io, 512, UINT64_MAX, true, on_done, &d), -EINVAL);
	assert_int_equal(f.io.queued, 1); /* only the first */
	disk_io_submit(&f.io);
	disk_io_complete(&f.io, 1);
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.result, 1024);
	fx_teardown(&f);
}

/* Someone truncates the image under us: the read comes back short, is continued, makes no
 * progress, and fails, rather than leaving part of the buffer stale. */
static void shrunk_file_is_an_error(void **state)
{
	struct fx f;
	uint8_t buf[1024];
	struct iovec v[2] = { { buf, 300 }, { buf + 300, 724 } };
	struct done d = { 0 };

	fx_setup(&f, false, 4);
	assert_int_equal(truncate(f.path, IMG_SIZE - 256), 0);
	memset(buf, 0xee, sizeof(buf));
	assert_int_equal(disk_readv(&f.io, IMG_SIZE - 1024, v, 2, on_done, &d), 0);
	disk_io_submit(&f.io);
	assert_int_equal(disk_io_complete(&f.io, 1), 1);
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.result, -EIO);
	/* What could be read was read, across the two buffers. */
	for (unsigned i = 0; i < 768; i++)
		assert_int_equal(buf[i], (uint8_t)((IMG_SIZE - 1024 + i) * 13 + 7));
	fx_teardown(&f);
}

static void readonly_refuses_writes(void **state)
{
	struct fx f;
	uint8_t buf[512], before[512], after[512];
	struct iovec v = { buf, sizeof(buf) };
	struct done d = { 0, -1 };

	fx_setup(&f, true, 4);
	memset(buf, 0xaa, sizeof(buf));
	file_read(f.path, 0, before, sizeof(before));
	assert_int_equal(disk_writev(&f.io, 0, &v, 1, on_done, &d), -EINVAL);
	assert_int_equal(disk_discard(&f.io, 0, 512, on_done, &d), -EINVAL);
	assert_int_equal(disk_write_zeroes(&f.io, 0, 512, false, on_done, &d), -EINVAL);
	/* Reads and flushes are fine. */
	assert_int_equal(disk_readv(&f.io, 0, &v, 1, on_done, &d), 0);
	assert_int_equal(disk_flush(&f.io, on_done, &d), 0);
	disk_io_submit(&f.io);
	assert_int_equal(disk_io_complete(&f.io, 2), 2);
	assert_memory_equal(buf, before, sizeof(buf));
	file_read(f.path, 0, after, sizeof(after));
	assert_memory_equal(before, after, sizeof(after));
	fx_teardown(&f);
}

static void full_queue_says_eagain(void **state)
{
	struct fx f;
	uint8_t buf[3][512];
	struct iovec v[3] = { { buf[0], 512 }, { buf[1], 512 }, { buf[2], 512 } };
	struct done d = { 0 };

	fx_setup(&f, false, 2);
	assert_int_equal(disk_readv(&f.io, 0, &v[0], 1, on_done, &d), 0);
	assert_int_equal(disk_flush(&f.io, on_done, &d), 0);
	assert_int_equal(disk_readv(&f.io, 512, &v[1], 1, on_done, &d), -EAGAIN);
	assert_int_equal(disk_discard(&f.io, 0, 512, on_done, &d), -EAGAIN);
	disk_io_submit(&f.io);
	assert_int_equal(f.io.inflight + f.io.queued, 2);
	/* Still full until the completions are reaped. */
	assert_int_equal(disk_io_complete(&f.io, 2), 2);
	assert_int_equal(d.calls, 2);
	assert_int_equal(disk_readv(&f.io, 512, &v[1], 1, on_done, &d), 0);
	assert_int_equal(disk_readv(&f.io, 1024, &v[2], 1, on_done, &d), 0);
	disk_io_submit(&f.io);
	assert_int_equal(disk_io_complete(&f.io, 2), 2);
	assert_int_equal(d.calls, 4);
	fx_teardown(&f);
}

/* A callback that queues another request into the slot its own completion freed. */
struct chain {
	struct disk_io *io;
	struct iovec v;
	int left, calls;
};

static void chain_next(void *opaque, int result)
{
	struct chain *c = opaque;

	assert_int_equal(result, 512);
	c->calls++;
	if (c->left-- > 0) {
		assert_int_equal(disk_readv(c->io, 0, &c->v, 1, chain_next, c), 0);
		disk_io_submit(c->io);
	}
}

static void destroy_waits_for_everything(void **state)
{
	struct fx f;
	uint8_t buf[512];
	struct chain c = { &f.io, { buf, 512 }, 3, 0 };
	struct done d = { 0 };

	fx_setup(&f, false, 1);
	assert_int_equal(disk_readv(&f.io, 0, &c.v, 1, chain_next, &c), 0);
	disk_io_submit(&f.io);
	/* Nothing reaped yet: destroy waits, runs the callback, and the ones it queues. */
	disk_io_destroy(&f.io);
	assert_int_equal(c.calls, 4);
	/* And an unsubmitted request is submitted and waited for as well. */
	assert_int_equal(disk_io_init(&f.io, &f.d, NULL, 4), 0);
	assert_int_equal(disk_flush(&f.io, on_done, &d), 0);
	fx_teardown(&f);
	assert_int_equal(d.calls, 1);
}

static void drain_waits_without_calling_back(void **state)
{
	struct fx f;
	uint8_t buf[4][512];
	struct done d = { 0 };

	fx_setup(&f, false, 4);
	for (int i = 0; i < 4; i++) {
		struct iovec v = { buf[i], 512 };
		assert_int_equal(disk_readv(&f.io, 512 * i, &v, 1, on_done, &d), 0);
	}
	disk_io_submit(&f.io);
	assert_int_equal(disk_io_drain(&f.io), 0);
	assert_int_equal(f.io.inflight + f.io.queued, 0);
	assert_int_equal(d.calls, 0);
	/* The data is there already; the callbacks come with the next completion run. */
	uint8_t want[512];
	file_read(f.path, 1536, want, 512);
	assert_memory_equal(buf[3], want, 512);
	assert_int_equal(disk_io_complete(&f.io, 0), 4);
	assert_int_equal(d.calls, 4);
	fx_teardown(&f);
}

static int batches;

static void count_batch(void *opaque)
{
	batches++;
}

static void event_loop_runs_completions(void **state)
{
	struct fx f;
	struct event_loop loop;
	uint8_t buf[2][512];
	struct iovec v[2] = { { buf[0], 512 }, { buf[1], 512 } };
	struct done d = { 0 };

	make_image(f.path, IMG_SIZE);
	assert_int_equal(event_loop_init(&loop, "test"), 0);
	assert_int_equal(disk_open(&f.d, f.path, false, "test"), 0);
	assert_int_equal(disk_io_init(&f.io, &f.d, &loop, 8), 0);
	disk_io_set_batch_fn(&f.io, count_batch, NULL);
	batches = 0;
	assert_int_equal(disk_readv(&f.io, 0, &v[0], 1, on_done, &d), 0);
	assert_int_equal(disk_readv(&f.io, 512, &v[1], 1, on_done, &d), 0);
	disk_io_submit(&f.io);
	for (int i = 0; i < 100 && d.calls < 2; i++)
		assert_true(event_loop_run_once(&loop, 1000) >= 0);
	assert_int_equal(d.calls, 2);
	assert_true(batches >= 1 && batches <= 2);
	fx_teardown(&f);
	event_loop_destroy(&loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(second_writer_is_refused_with_a_message),
		cmocka_unit_test(readers_share),
		cmocka_unit_test(unwritable_image_hints_readonly),
		cmocka_unit_test(same_file),
		cmocka_unit_test(sizes),
		cmocka_unit_test(bad_paths),
		cmocka_unit_test(zeroed_things_are_safe_to_free),
		cmocka_unit_test(write_then_read_scattered),
		cmocka_unit_test(flush_completes),
		cmocka_unit_test(discard_punches_a_hole),
		cmocka_unit_test(write_zeroes_with_and_without_unmap),
		cmocka_unit_test(write_through_is_on_stable_storage_when_done),
		cmocka_unit_test(ranges_are_checked),
		cmocka_unit_test(shrunk_file_is_an_error),
		cmocka_unit_test(readonly_refuses_writes),
		cmocka_unit_test(full_queue_says_eagain),
		cmocka_unit_test(destroy_waits_for_everything),
		cmocka_unit_test(drain_waits_without_calling_back),
		cmocka_unit_test(event_loop_runs_completions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
