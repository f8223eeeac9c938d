/* The block device without a transport: the test plays the driver, building rings in guest
 * memory, and the disk is a temporary file served through io_uring and a real event loop. Every
 * test runs on packed and on split rings. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "arch.h"
#include "event.h"
#include "memory.h"
#include "virtio/blk.h"
#include "virtio/mmio.h"
#include "vm.h"

#include "driver_ring.h"

#define IMG_SIZE   (1 << 20)
#define IMG_SECTORS (IMG_SIZE / 512)
#define HDR_GPA    DATA_GPA
#define STATUS_GPA (DATA_GPA + 0x100)
#define BUF_GPA    (DATA_GPA + 0x1000)
#define BUF2_GPA   (DATA_GPA + 0x20000)

/* ---- fixture ---- */

struct fx {
	char path[64];
	struct guest_mem mem;
	struct event_loop loop;
	struct disk disk;
	struct blk_dev blk;
	struct tq q;
	uint8_t *before; /* the image as it was at setup */
	int signals;
};

static struct fx *cur; /* the transport's signal has no opaque of its own */

static void fake_signal(struct virtio_dev *d, int q)
{
	if (q >= 0)
		cur->signals++;
}

static const struct virtio_transport_ops fake_transport = { .signal = fake_signal };

static void file_read(const char *path, uint64_t off, void *buf, size_t len)
{
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static uint8_t pattern(uint64_t i)
{
	return (uint8_t)(i * 13 + 7);
}

/* Feature negotiation and queue setup, as a driver does after every reset. */
static void negotiate(struct fx *f, unsigned nq, struct tq *qs)
{
	struct virtio_dev *d = &f->blk.vdev;

	pthread_mutex_lock(&d->lock);
	tq_negotiate(d, virtio_get_features(d, 0));
	assert_true(d->status & VIRTIO_STATUS_FEATURES_OK);
	for (unsigned i = 0; i < nq; i++)
		tq_setup(d, i, &qs[i], &f->mem);
	virtio_set_status(d, d->status | VIRTIO_STATUS_DRIVER_OK);
	assert_true(virtio_live(d));
	pthread_mutex_unlock(&d->lock);
}

static void fx_setup_opts(struct fx *f, bool ro, const char *serial, unsigned nq, struct tq *qs)
{
	int fd;

	memset(f, 0, sizeof(*f));
	cur = f;
	strcpy(f->path, "/var/tmp/vmm-blk-XXXXXX");
	fd = mkstemp(f->path);
	assert_true(fd >= 0);
	f->before = malloc(IMG_SIZE);
	for (size_t i = 0; i < IMG_SIZE; i++)
		f->before[i] = pattern(i);
	assert_int_equal(write(fd, f->before, IMG_SIZE), IMG_SIZE);
	fsync(fd);
	close(fd);
	assert_int_equal(gmem_init(&f->mem, 4 << 20), 0);
	assert_int_equal(event_loop_init(&f->loop, "test"), 0);
	assert_int_equal(disk_open(&f->disk, f->path, ro, "--disk path=test"), 0);
	assert_int_equal(blk_init(&f->blk, "blk0", &f->disk, serial, nq, &f->mem, &f->loop), 0);
	f->blk.vdev.transport = &fake_transport;
	negotiate(f, nq, qs ? qs : &f->q);
}

/* Whether the fixture's file system zeroes ranges in place (FALLOC_FL_ZERO_RANGE, which
 * WRITE_ZEROES without UNMAP needs; tmpfs has none, and vmm then answers UNSUPP): asked of the file
 * system itself, on a file of its own beside the images, not read from the device's answer. */
static bool fs_zeroes_ranges(void)
{
	char path[] = "/var/tmp/vmm-blk-XXXXXX";
	int fd = mkstemp(path), ret;

	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(ftruncate(fd, 4096), 0);
	ret = fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 0, 4096);
	assert_true(ret == 0 || errno == EOPNOTSUPP);
	close(fd);
	return ret == 0;
}

static void fx_setup(struct fx *f)
{
	fx_setup_opts(f, false, "serial-0", 1, NULL);
}

static void fx_teardown(struct fx *f)
{
	blk_destroy(&f->blk);
	disk_close(&f->disk);
	event_loop_destroy(&f->loop);
	gmem_free(&f->mem);
	unlink(f->path);
	free(f->before);
}

static uint8_t *gmem(struct fx *f, uint64_t gpa, size_t len)
{
	return gp(&f->q, gpa, len);
}

static void put_hdr(struct fx *f, uint32_t type, uint64_t sector)
{
	struct virtio_blk_outhdr h = { .type = type, .sector = sector };

	memcpy(gmem(f, HDR_GPA, sizeof(h)), &h, sizeof(h));
}

/* Runs the event loop until queue t has a used element (true) or a while has passed. */
static bool wait_used(struct fx *f, struct tq *t, uint32_t *id, uint32_t *len)
{
	for (int i = 0; i < 200; i++) {
		if (tq_used(t, id, len))
			return true;
		assert_true(event_loop_run_once(&f->loop, i < 100 ? 10 : 50) >= 0);
	}
	return false;
}

/* Makes the chain available, kicks, and waits for it: returns the status byte at status_gpa. */
static uint8_t run(struct fx *f, const struct tbuf *b, unsigned n, uint64_t status_gpa,
		   uint32_t *used)
{
	uint32_t id, len;
	uint16_t head;

	*gmem(f, status_gpa, 1) = 0xee;
	head = tq_add(&f->q, b, n);
	virtio_process(&f->blk.vdev, 0);
	assert_true(wait_used(f, &f->q, &id, &len));
	assert_int_equal(id, head);
	if (used)
		*used = len;
	return *gmem(f, status_gpa, 1);
}

/* A request of header + one data buffer + status. */
static uint8_t simple(struct fx *f, uint32_t type, uint64_t sector, uint32_t data_len,
		      bool data_write, uint32_t *used)
{
	const struct tbuf b[3] = {
		{ HDR_GPA, 16, false },
		{ BUF_GPA, data_len, data_write },
		{ STATUS_GPA, 1, true },
	};

	put_hdr(f, type, sector);
	if (data_len)
		return run(f, b, 3, STATUS_GPA, used);
	const struct tbuf nb[2] = { b[0], b[2] };
	return run(f, nb, 2, STATUS_GPA, used);
}

/* Discard / write-zeroes with the given segments. */
static uint8_t dwz(struct fx *f, uint32_t type, const struct virtio_blk_discard_write_zeroes *s,
		   unsigned n)
{
	const struct tbuf b[3] = {
		{ HDR_GPA, 16, false },
		{ BUF_GPA, (uint32_t)(n * sizeof(*s)), false },
		{ STATUS_GPA, 1, true },
	};

	put_hdr(f, type, 0);
	memcpy(gmem(f, BUF_GPA, n * sizeof(*s)), s, n * sizeof(*s));
	return run(f, b, 3, STATUS_GPA, NULL);
}

static void assert_file_unchanged(struct fx *f)
{
	uint8_t *now = malloc(IMG_SIZE);
	struct stat st;

	file_read(f->path, 0, now, IMG_SIZE);
	assert_memory_equal(now, f->before, IMG_SIZE);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_size, IMG_SIZE);
	free(now);
}

static bool is_hole(const char *path, off_t off)
{
	int fd = open(path, O_RDONLY);
	off_t h = lseek(fd, off, SEEK_HOLE);

	close(fd);
	return h == off;
}

/* ---- configuration ---- */

static void features_and_config(void **state)
{
	struct fx f;
	struct virtio_blk_config c;
	uint64_t feat;

	fx_setup(&f);
	feat = f.blk.vdev.features;
	for (int bit = 0; bit < 24; bit++) {
		bool want = bit == VIRTIO_BLK_F_SIZE_MAX || bit == VIRTIO_BLK_F_SEG_MAX ||
			    bit == VIRTIO_BLK_F_BLK_SIZE || bit == VIRTIO_BLK_F_FLUSH ||
			    bit == VIRTIO_BLK_F_TOPOLOGY || bit == VIRTIO_BLK_F_MQ ||
			    bit == VIRTIO_BLK_F_DISCARD || bit == VIRTIO_BLK_F_WRITE_ZEROES ||
			    bit == VIRTIO_BLK_F_CONFIG_WCE;
		assert_int_equal(!!(feat & (1ULL << bit)), want);
	}
	assert_int_equal(f.blk.vdev.config_len, 60);
	virtio_config_read(&f.blk.vdev, 0, (uint8_t *)&c, sizeof(c));
	assert_int_equal(c.capacity, IMG_SECTORS);
	assert_int_equal(c.seg_max, BLK_QUEUE_SIZE - 2);
	assert_int_equal(c.size_max, BLK_SIZE_MAX);
	assert_true((uint64_t)c.seg_max * c.size_max < (1ULL << 31));
	assert_int_equal(c.blk_size, 512);
	assert_int_equal(512u << c.physical_block_exp, f.disk.phys_block);
	assert_int_equal(c.min_io_size, f.disk.phys_block / 512);
	assert_int_equal(c.num_queues, 1);
	assert_int_equal(c.max_discard_seg, BLK_MAX_DWZ_SEG);
	assert_int_equal(c.max_discard_sectors, BLK_MAX_DWZ_SECTORS);
	assert_int_equal(c.discard_sector_alignment, f.disk.phys_block / 512);
	assert_int_equal(c.max_write_zeroes_seg, BLK_MAX_DWZ_SEG);
	assert_int_equal(c.max_write_zeroes_sectors, BLK_MAX_DWZ_SECTORS);
	assert_int_equal(c.write_zeroes_may_unmap, 1);
	assert_int_equal(c.unused0, 0);
	assert_int_equal(c.writeback, 1); /* FLUSH is offered and the driver took it */
	fx_teardown(&f);
}

static void readonly_config(void **state)
{
	struct fx f;
	uint64_t feat;

	fx_setup_opts(&f, true, NULL, 1, NULL);
	feat = f.blk.vdev.features;
	assert_true(feat & (1ULL << VIRTIO_BLK_F_RO));
	assert_false(feat & (1ULL << VIRTIO_BLK_F_DISCARD));
	assert_false(feat & (1ULL << VIRTIO_BLK_F_WRITE_ZEROES));
	assert_true(feat & (1ULL << VIRTIO_BLK_F_FLUSH));
	assert_int_equal(f.blk.config.max_discard_seg, 0);
	fx_teardown(&f);
}

static void bad_init_arguments(void **state)
{
	struct fx f;
	struct blk_dev b;

	fx_setup(&f);
	assert_int_equal(blk_init(&b, "blk1", &f.disk, "123456789012345678901", 1, &f.mem, NULL),
			 -EINVAL);
	blk_destroy(&b);
	assert_int_equal(blk_init(&b, "blk1", &f.disk, NULL, 0, &f.mem, NULL), -EINVAL);
	blk_destroy(&b);
	assert_int_equal(blk_init(&b, "blk1", &f.disk, NULL, BLK_MAX_QUEUES + 1, &f.mem, NULL),
			 -EINVAL);
	blk_destroy(&b);
	fx_teardown(&f);
}

/* ---- requests that work ---- */

static void write_then_read_pattern(void **state)
{
	struct fx f;
	uint8_t src[1536], file[1536];
	uint32_t used;

	fx_setup(&f);
	for (unsigned i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i * 31 + 1);
	/* Header and data split at odd places, several segments. */
	memcpy(gmem(&f, BUF_GPA, 100), src, 100);
	memcpy(gmem(&f, BUF_GPA + 0x1000, 1000), src + 100, 1000);
	memcpy(gmem(&f, BUF_GPA + 0x3000, 436), src + 1100, 436);
	put_hdr(&f, VIRTIO_BLK_T_OUT, 5);
	const struct tbuf w[6] = {
		{ HDR_GPA, 10, false },        { HDR_GPA + 10, 6, false },
		{ BUF_GPA, 100, false },       { BUF_GPA + 0x1000, 1000, false },
		{ BUF_GPA + 0x3000, 436, false }, { STATUS_GPA, 1, true },
	};
	assert_int_equal(run(&f, w, 6, STATUS_GPA, &used), VIRTIO_BLK_S_OK);
	assert_int_equal(used, 1);
	file_read(f.path, 5 * 512, file, sizeof(file));
	assert_memory_equal(file, src, sizeof(src));
	/* The rest of the file is as it was. */
	memcpy(f.before + 5 * 512, src, sizeof(src));
	assert_file_unchanged(&f);

	/* Read it back into other odd pieces; the status shares the last buffer. */
	memset(gmem(&f, BUF2_GPA, 0x4000), 0, 0x4000);
	put_hdr(&f, VIRTIO_BLK_T_IN, 5);
	const struct tbuf r[4] = {
		{ HDR_GPA, 16, false },
		{ BUF2_GPA, 700, true },
		{ BUF2_GPA + 0x1000, 1, true },
		{ BUF2_GPA + 0x2000, 836, true },
	};
	assert_int_equal(run(&f, r, 4, BUF2_GPA + 0x2000 + 835, &used), VIRTIO_BLK_S_OK);
	assert_int_equal(used, 1537);
	assert_memory_equal(gmem(&f, BUF2_GPA, 700), src, 700);
	assert_memory_equal(gmem(&f, BUF2_GPA + 0x1000, 1), src + 700, 1);
	assert_memory_equal(gmem(&f, BUF2_GPA + 0x2000, 835), src + 701, 835);
	assert_true(f.signals > 0);
	fx_teardown(&f);
}

static void read_last_sector_and_empty_read(void **state)
{
	struct fx f;
	uint32_t used;

	fx_setup(&f);
	assert_int_equal(simple(&f, VIRTIO_BLK_T_IN, IMG_SECTORS - 1, 512, true, &used),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(used, 513);
	assert_memory_equal(gmem(&f, BUF_GPA, 512), f.before + IMG_SIZE - 512, 512);
	/* No data at all: nothing to do, but not an error. */
	assert_int_equal(simple(&f, VIRTIO_BLK_T_IN, 0, 0, true, &used), VIRTIO_BLK_S_OK);
	assert_int_equal(used, 1);
	fx_teardown(&f);
}

static void flush(void **state)
{
	struct fx f;
	uint32_t used;

	fx_setup(&f);
	assert_int_equal(simple(&f, VIRTIO_BLK_T_FLUSH, 0, 0, false, &used), VIRTIO_BLK_S_OK);
	assert_int_equal(used, 1);
	fx_teardown(&f);
}

/* 5.2.6.3: a legacy driver's FLUSH_OUT (5) is a flush; from a driver of VERSION_1 it is an
 * unknown type. */
static void flush_out_is_a_legacy_flush(void **state)
{
	struct fx f;
	uint32_t used;

	fx_setup(&f);
	assert_int_equal(simple(&f, VIRTIO_BLK_T_FLUSH_OUT, 0, 0, false, &used),
			 VIRTIO_BLK_S_UNSUPP);
	f.blk.vdev.driver_features &= ~(1ULL << VIRTIO_F_VERSION_1); /* as a legacy driver's */
	assert_int_equal(simple(&f, VIRTIO_BLK_T_FLUSH_OUT, 0, 0, false, &used), VIRTIO_BLK_S_OK);
	assert_int_equal(used, 1);
	f.blk.vdev.driver_features |= 1ULL << VIRTIO_F_VERSION_1;
	fx_teardown(&f);
}

static void get_id(void **state)
{
	struct fx f;
	uint32_t used;
	static const char id20[] = "ABCDEFGHIJKLMNOPQRST";

	/* Exactly 20 bytes: no NUL, and nothing past them is touched. */
	fx_setup_opts(&f, false, id20, 1, NULL);
	memset(gmem(&f, BUF_GPA, 32), 0x77, 32);
	assert_int_equal(simple(&f, VIRTIO_BLK_T_GET_ID, 0, 32, true, &used), VIRTIO_BLK_S_OK);
	assert_int_equal(used, 21);
	assert_memory_equal(gmem(&f, BUF_GPA, 20), id20, 20);
	assert_int_equal(*gmem(&f, BUF_GPA + 20, 1), 0x77);
	/* A 21-byte buffer holds the id and the status. */
	const struct tbuf one[2] = { { HDR_GPA, 16, false }, { BUF2_GPA, 21, true } };
	put_hdr(&f, VIRTIO_BLK_T_GET_ID, 0);
	assert_int_equal(run(&f, one, 2, BUF2_GPA + 20, &used), VIRTIO_BLK_S_OK);
	assert_memory_equal(gmem(&f, BUF2_GPA, 20), id20, 20);
	fx_teardown(&f);

	/* Shorter: NUL-padded to 20. */
	fx_setup_opts(&f, false, "short", 1, NULL);
	memset(gmem(&f, BUF_GPA, 20), 0x77, 20);
	assert_int_equal(simple(&f, VIRTIO_BLK_T_GET_ID, 0, 20, true, &used), VIRTIO_BLK_S_OK);
	assert_memory_equal(gmem(&f, BUF_GPA, 20), "short\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 20);
	fx_teardown(&f);

	/* None: an empty id. */
	fx_setup_opts(&f, false, NULL, 1, NULL);
	memset(gmem(&f, BUF_GPA, 20), 0x77, 20);
	assert_int_equal(simple(&f, VIRTIO_BLK_T_GET_ID, 0, 20, true, &used), VIRTIO_BLK_S_OK);
	assert_memory_equal(gmem(&f, BUF_GPA, 20), "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 20);
	fx_teardown(&f);
}

static void readonly_refuses_writes(void **state)
{
	struct fx f;
	const struct virtio_blk_discard_write_zeroes s = { .sector = 0, .num_sectors = 8 };

	fx_setup_opts(&f, true, NULL, 1, NULL);
	memset(gmem(&f, BUF_GPA, 4096), 0xaa, 4096);
	assert_int_equal(simple(&f, VIRTIO_BLK_T_OUT, 0, 4096, false, NULL), VIRTIO_BLK_S_IOERR);
	assert_int_equal(dwz(&f, VIRTIO_BLK_T_DISCARD, &s, 1), VIRTIO_BLK_S_IOERR);
	assert_int_equal(dwz(&f, VIRTIO_BLK_T_WRITE_ZEROES, &s, 1), VIRTIO_BLK_S_IOERR);
	/* Reads work and a flush has nothing to do. */
	assert_int_equal(simple(&f, VIRTIO_BLK_T_FLUSH, 0, 0, false, NULL), VIRTIO_BLK_S_OK);
	assert_int_equal(simple(&f, VIRTIO_BLK_T_IN, 0, 4096, true, NULL), VIRTIO_BLK_S_OK);
	assert_memory_equal(gmem(&f, BUF_GPA, 4096), f.before, 4096);
	assert_true(virtio_live(&f.blk.vdev));
	assert_file_unchanged(&f);
	fx_teardown(&f);
}

static void discard_makes_a_hole(void **state)
{
	struct fx f;
	static const uint8_t zero[65536];
	const struct virtio_blk_discard_write_zeroes s[2] = {
		{ .sector = 128, .num_sectors = 128 },
		{ .sector = 512, .num_sectors = 0 }, /* empty: nothing to do */
	};

	fx_setup(&f);
	assert_false(is_hole(f.path, 65536));
	assert_int_equal(dwz(&f, VIRTIO_BLK_T_DISCARD, s, 2), VIRTIO_BLK_S_OK);
	assert_true(is_hole(f.path, 65536));
	memset(gmem(&f, BUF_GPA, 65536), 0x55, 65536);
	assert_int_equal(simple(&f, VIRTIO_BLK_T_IN, 128, 65536, true, NULL), VIRTIO_BLK_S_OK);
	assert_memory_equal(gmem(&f, BUF_GPA, 65536), zero, 65536);
	memset(f.before + 65536, 0, 65536);
	assert_file_unchanged(&f);
	fx_teardown(&f);
}

static void write_zeroes(void **state)
{
	struct fx f;
	const struct virtio_blk_discard_write_zeroes s[2] = {
		{ .sector = 16, .num_sectors = 16 },
		{ .sector = 256, .num_sectors = 128, .flags = VIRTIO_BLK_WZ_F_UNMAP },
	};
	uint8_t st;

	fx_setup(&f);
	st = dwz(&f, VIRTIO_BLK_T_WRITE_ZEROES, s, 2);
	/* Some file systems (tmpfs) have no ZERO_RANGE: the guest is told it is unsupported. */
	if (!fs_zeroes_ranges()) {
		assert_int_equal(st, VIRTIO_BLK_S_UNSUPP);
		fx_teardown(&f);
		skip();
	}
	assert_int_equal(st, VIRTIO_BLK_S_OK);
	assert_true(is_hole(f.path, 256 * 512)); /* unmap allowed: deallocated */
	memset(f.before + 16 * 512, 0, 16 * 512);
	memset(f.before + 256 * 512, 0, 128 * 512);
	assert_file_unchanged(&f);
	fx_teardown(&f);
}

static void two_queues(void **state)
{
	struct fx f;
	struct tq qs[2];
	uint32_t id, len;
	uint16_t head;

	fx_setup_opts(&f, false, NULL, 2, qs);
	f.q = qs[0];
	assert_int_equal(f.blk.config.num_queues, 2);
	put_hdr(&f, VIRTIO_BLK_T_IN, 3);
	const struct tbuf b[3] = {
		{ HDR_GPA, 16, false }, { BUF_GPA, 512, true }, { STATUS_GPA, 1, true } };
	*gmem(&f, STATUS_GPA, 1) = 0xee;
	head = tq_add(&qs[1], b, 3);
	virtio_process(&f.blk.vdev, 1);
	assert_true(wait_used(&f, &qs[1], &id, &len));
	assert_int_equal(id, head);
	assert_int_equal(len, 513);
	assert_int_equal(*gmem(&f, STATUS_GPA, 1), VIRTIO_BLK_S_OK);
	assert_memory_equal(gmem(&f, BUF_GPA, 512), f.before + 3 * 512, 512);
	assert_false(tq_used(&qs[0], &id, &len));
	fx_teardown(&f);
}

/* ---- malformed requests: answered with an error, or NEEDS_RESET; never a write ---- */

static void header_split_short(void **state)
{
	struct fx f;
	const struct tbuf b[3] = {
		{ HDR_GPA, 8, false }, { BUF_GPA, 512, false }, { STATUS_GPA, 1, true } };

	fx_setup(&f);
	/* A header may span buffers, so a write with an 8-byte header buffer takes its sector
	 * from the data, and has 504 bytes of data left: not whole sectors. */
	put_hdr(&f, VIRTIO_BLK_T_OUT, 0);
	memset(gmem(&f, BUF_GPA, 512), 0, 512);
	assert_int_equal(run(&f, b, 3, STATUS_GPA, NULL), VIRTIO_BLK_S_IOERR);
	assert_file_unchanged(&f);
	fx_teardown(&f);
}

static void header_too_short(void **state)
{
	struct fx f;
	uint32_t used;
	const struct tbuf b[2] = { { HDR_GPA, 15, false }, { STATUS_GPA, 1, true } };

	fx_setup(&f);
	put_hdr(&f, VIRTIO_BLK_T_FLUSH, 0);
	assert_int_equal(run(&f, b, 2, STATUS_GPA, &used), VIRTIO_BLK_S_IOERR);
	assert_int_equal(used, 1);
	assert_true(virtio_live(&f.blk.vdev));
	fx_teardown(&f);
}

static void header_in_writable_buffer(void **state)
{
	struct fx f;
	const struct tbuf b[3] = {
		{ HDR_GPA, 16, true }, { BUF_GPA, 512, true }, { STATUS_GPA, 1, true } };

	fx_setup(&f);
	put_hdr(&f, VIRTIO_BLK_T_OUT, 0);
	assert_int_equal(run(&f, b, 3, STATUS_GPA, NULL), VIRTIO_BLK_S_IOERR);
	assert_true(virtio_live(&f.blk.vdev));
	assert_file_unchanged(&f);
	fx_teardown(&f);
}

static void no_writable_byte_needs_reset(void **state)
{
	struct fx f;
	uint32_t id, len;
	/* A write whose status byte is readable: the device has nowhere to answer. */
	const struct tbuf b[3] = {
		{ HDR_GPA, 16, false }, { BUF_GPA, 512, false }, { STATUS_GPA, 1, false } };

	fx_setup(&f);
	put_hdr(&f, VIRTIO_BLK_T_OUT, 0);
	memset(gmem(&f, BUF_GPA, 512), 0xaa, 512);
	tq_add(&f.q, b, 3);
	virtio_process(&f.blk.vdev, 0);
	assert_true(f.blk.vdev.status & VIRTIO_STATUS_NEEDS_RESET);
	assert_false(wait_used(&f, &f.q, &id, &len));
	/* Nothing more until reset: a good request is not served. */
	tq_add(&f.q, (struct tbuf[]){ { HDR_GPA, 16, false }, { STATUS_GPA, 1, true } }, 2);
	virtio_process(&f.blk.vdev, 0);
	assert_false(tq_used(&f.q, &id, &len));
	assert_file_unchanged(&f);
	fx_teardown(&f);
}

static void header_only_needs_reset(void **state)
{
	struct fx f;
	uint32_t id, len;

	fx_setup(&f);
	put_hdr(&f, VIRTIO_BLK_T_IN, 0);
	tq_add(&f.q, &(struct tbuf){ HDR_GPA, 16, false }, 1);
	virtio_process(&f.blk.vdev, 0);
	assert_true(f.blk.vdev.status & VIRTIO_STATUS_NEEDS_RESET);
	assert_false(tq_used(&f.q, &id, &len));
	fx_teardown(&f);
}

static void sectors_out_of_range(void **state)
{
	struct fx f;

	fx_setup(&f);
	memset(gmem(&f, BUF_GPA, 1024), 0xaa, 1024);
	assert_int_equal(simple(&f, VIRTIO_BLK_T_IN, IMG_SECTORS - 1, 1024, true, NULL),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(simple(&f, VIRTIO_BLK_T_OUT, IMG_SECTORS - 1, 1024, false, NULL),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(simple(&f, VIRTIO_BLK_T_OUT, IMG_SECTORS, 512, false, NULL),
			 VIRTIO_BLK_S_IOERR);
	/* sector * 512 wraps to a small offset. */
	assert_int_equal(simple(&f, VIRTIO_BLK_T_OUT, (UINT64_MAX / 512) + 1, 512, false, NULL),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(simple(&f, VIRTIO_BLK_T_OUT, 1ULL << 55, 512, false, NULL),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(simple(&f, VIRTIO_BLK_T_OUT, UINT64_MAX, 512, false, NULL),
			 VIRTIO_BLK_S_IOERR);
	assert_true(virtio_live(&f.blk.vdev));
	assert_file_unchanged(&f);
	fx_teardown(&f);
}

static void partial_sectors(void **state)
{
	struct fx f;

	fx_setup(&f);
	memset(gmem(&f, BUF_GPA, 1024), 0xaa, 1024);
	assert_int_equal(simple(&f, VIRTIO_BLK_T_OUT, 0, 500, false, NULL), VIRTIO_BLK_S_IOERR);
	assert_int_equal(simple(&f, VIRTIO_BLK_T_OUT, 0, 513, false, NULL), VIRTIO_BLK_S_IOERR);
	assert_int_equal(simple(&f, VIRTIO_BLK_T_IN, 0, 513, true, NULL), VIRTIO_BLK_S_IOERR);
	assert_file_unchanged(&f);
	fx_teardown(&f);
}

static void unknown_types(void **state)
{
	struct fx f;

	fx_setup(&f);
	assert_int_equal(simple(&f, 99, 0, 512, false, NULL), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(simple(&f, 10 /* GET_LIFETIME */, 0, 8, true, NULL),
			 VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(simple(&f, 14 /* SECURE_ERASE */, 0, 16, false, NULL),
			 VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(simple(&f, 0x80000001 /* legacy barrier write */, 0, 512, false, NULL),
			 VIRTIO_BLK_S_UNSUPP);
	assert_true(virtio_live(&f.blk.vdev));
	assert_file_unchanged(&f);
	fx_teardown(&f);
}

static void get_id_buffer_too_small(void **state)
{
	struct fx f;
	uint32_t used;

	fx_setup(&f);
	memset(gmem(&f, BUF_GPA, 20), 0x77, 20);
	assert_int_equal(simple(&f, VIRTIO_BLK_T_GET_ID, 0, 19, true, &used), VIRTIO_BLK_S_IOERR);
	assert_int_equal(used, 1);
	assert_int_equal(*gmem(&f, BUF_GPA, 1), 0x77);
	/* A readable buffer for the id does not count. */
	assert_int_equal(simple(&f, VIRTIO_BLK_T_GET_ID, 0, 20, false, &used), VIRTIO_BLK_S_IOERR);
	fx_teardown(&f);
}

#define SEG(...) ((struct virtio_blk_discard_write_zeroes){ __VA_ARGS__ })

static void bad_discard_and_write_zeroes(void **state)
{
	struct fx f;
	struct virtio_blk_discard_write_zeroes s[BLK_MAX_DWZ_SEG + 1];

	fx_setup(&f);
	for (unsigned i = 0; i < BLK_MAX_DWZ_SEG + 1; i++)
		s[i] = SEG(.sector = 8 * i, .num_sectors = 8);
	/* One segment too many. */
	assert_int_equal(dwz(&f, VIRTIO_BLK_T_DISCARD, s, BLK_MAX_DWZ_SEG + 1),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(dwz(&f, VIRTIO_BLK_T_WRITE_ZEROES, s, BLK_MAX_DWZ_SEG + 1),
			 VIRTIO_BLK_S_IOERR);
	/* One segment too long (the disk is smaller, but the limit comes first). */
	s[1].num_sectors = BLK_MAX_DWZ_SECTORS + 1;
	assert_int_equal(dwz(&f, VIRTIO_BLK_T_DISCARD, s, 2), VIRTIO_BLK_S_IOERR);
	/* Past the end, and wrapping. */
	s[1] = SEG(.sector = IMG_SECTORS - 4, .num_sectors = 8);
	assert_int_equal(dwz(&f, VIRTIO_BLK_T_DISCARD, s, 2), VIRTIO_BLK_S_IOERR);
	s[1] = SEG(.sector = UINT64_MAX - 3, .num_sectors = 8);
	assert_int_equal(dwz(&f, VIRTIO_BLK_T_WRITE_ZEROES, s, 2), VIRTIO_BLK_S_IOERR);
	/* Flags: unknown bits, and unmap on a discard, are UNSUPP. */
	s[1] = SEG(.sector = 64, .num_sectors = 8, .flags = 2);
	assert_int_equal(dwz(&f, VIRTIO_BLK_T_DISCARD, s, 2), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(dwz(&f, VIRTIO_BLK_T_WRITE_ZEROES, s, 2), VIRTIO_BLK_S_UNSUPP);
	s[1].flags = VIRTIO_BLK_WZ_F_UNMAP;
	assert_int_equal(dwz(&f, VIRTIO_BLK_T_DISCARD, s, 2), VIRTIO_BLK_S_UNSUPP);
	s[1].flags = 0x80000000;
	assert_int_equal(dwz(&f, VIRTIO_BLK_T_WRITE_ZEROES, s, 2), VIRTIO_BLK_S_UNSUPP);
	/* Not a whole number of segments, or none. */
	const struct tbuf b[3] = {
		{ HDR_GPA, 16, false }, { BUF_GPA, 24, false }, { STATUS_GPA, 1, true } };
	put_hdr(&f, VIRTIO_BLK_T_DISCARD, 0);
	assert_int_equal(run(&f, b, 3, STATUS_GPA, NULL), VIRTIO_BLK_S_IOERR);
	assert_int_equal(simple(&f, VIRTIO_BLK_T_DISCARD, 0, 0, false, NULL), VIRTIO_BLK_S_IOERR);
	/* In every case the good first segment was not done either. */
	assert_true(virtio_live(&f.blk.vdev));
	assert_file_unchanged(&f);
	fx_teardown(&f);
}

/* ---- reset and a full disk queue ---- */

static void reset_waits_for_requests_in_flight(void **state)
{
	struct fx f;
	uint32_t id, len;
	uint8_t file[65536];

	fx_setup(&f);
	memset(gmem(&f, BUF_GPA, 65536), 0x3c, 65536);
	put_hdr(&f, VIRTIO_BLK_T_OUT, 0);
	*gmem(&f, STATUS_GPA, 1) = 0xee;
	tq_add(&f.q, (struct tbuf[]){ { HDR_GPA, 16, false }, { BUF_GPA, 65536, false },
				      { STATUS_GPA, 1, true } }, 3);
	virtio_process(&f.blk.vdev, 0);
	assert_int_equal(f.blk.queues[0].inflight, 1);
	/* The driver resets before the completion was reaped. */
	pthread_mutex_lock(&f.blk.vdev.lock);
	virtio_set_status(&f.blk.vdev, 0);
	pthread_mutex_unlock(&f.blk.vdev.lock);
	/* The write reached the file before reset returned... */
	file_read(f.path, 0, file, sizeof(file));
	for (unsigned i = 0; i < sizeof(file); i++)
		assert_int_equal(file[i], 0x3c);
	/* ...and its answer is dropped, not pushed into the rings of the driver that set the
	 * device up again before the completion was reaped. */
	negotiate(&f, 1, &f.q);
	for (int i = 0; i < 5; i++)
		event_loop_run_once(&f.loop, 10);
	assert_int_equal(f.blk.queues[0].inflight, 0);
	assert_int_equal(*gmem(&f, STATUS_GPA, 1), 0xee);
	assert_false(tq_used(&f.q, &id, &len));
	/* The device works. */
	assert_int_equal(simple(&f, VIRTIO_BLK_T_IN, 0, 512, true, NULL), VIRTIO_BLK_S_OK);
	assert_memory_equal(gmem(&f, BUF_GPA, 512), file, 512);
	fx_teardown(&f);
}

/* The review's defect 1, as a guest makes it over virtio-mmio: with reads in flight in io_uring,
 * the driver stops the queue (QueueReady 0) and sets it up again with one entry whose ring is the
 * last 16 bytes of RAM. The stale completions must not be pushed there: with their old
 * descriptor counts they ran the packed ring's slot past its end and wrote past RAM's (a
 * PROT_NONE page here). The device then works on the queue set up anew. */
static void queue_stopped_with_requests_in_flight(void **state)
{
	uint64_t ram_end = TEST_GPA(4 << 20), ring = ram_end - 16, base = VIRTIO_MMIO_BASE;
	struct virtio_mmio t = { 0 };
	struct vm vm = { .kvm_fd = -1, .vm_fd = -1 };
	uint8_t before[16];
	uint32_t v, id, len;
	struct fx f;
	void *guard;

	fx_setup(&f);
	guard = (uint8_t *)f.mem.mapping + ram_end;
	assert_true(mmap(guard, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
			 -1, 0) == guard);
	bus_init(&vm.mmio, "mmio");
	assert_int_equal(virtio_mmio_create(&t, &vm, &f.blk.vdev, base, 5, false), 0);
	for (unsigned i = 0; i < 4; i++) {
		put_hdr(&f, VIRTIO_BLK_T_IN, i);
		tq_add(&f.q, (struct tbuf[]){ { HDR_GPA, 16, false },
					      { BUF_GPA + 0x1000 * i, 4096, true },
					      { STATUS_GPA + i, 1, true } }, 3);
	}
	v = 0; /* QueueNotify: the doorbell, as the guest rings it */
	assert_true(bus_access(&vm.mmio, base + VIRTIO_MMIO_QUEUE_NOTIFY, (uint8_t *)&v, 4, true));
	virtio_process(&f.blk.vdev, 0);
	assert_int_equal(f.blk.queues[0].inflight, 4);
	memset(gmem(&f, ring, 16), 0, 16);
	memcpy(before, gmem(&f, ring, 16), 16);
	const uint32_t regs[][2] = {
		{ VIRTIO_MMIO_QUEUE_SEL, 0 },
		{ VIRTIO_MMIO_QUEUE_READY, 0 },
		{ VIRTIO_MMIO_QUEUE_NUM, 1 },
		{ VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)ring },
		{ VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)(DATA_GPA + 0x40000) },
		{ VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)(DATA_GPA + 0x40100) },
		{ VIRTIO_MMIO_QUEUE_READY, 1 },
	};
	for (unsigned i = 0; i < sizeof(regs) / sizeof(regs[0]); i++)
		assert_true(bus_access(&vm.mmio, base + regs[i][0], (uint8_t *)&regs[i][1], 4, true));
	assert_true(f.blk.vdev.queues[0].vq.enabled);
	assert_int_equal(f.blk.vdev.queues[0].vq.size, 1);
	for (int i = 0; i < 5; i++)
		event_loop_run_once(&f.loop, 10);
	assert_int_equal(f.blk.queues[0].inflight, 0);
	assert_memory_equal(gmem(&f, ring, 16), before, 16);
	if (!test_packed())
		assert_int_equal(*(uint16_t *)gmem(&f, DATA_GPA + 0x40100 + 2, 2), 0); /* used idx */
	assert_true(virtio_live(&f.blk.vdev));
	/* The queue set up anew works; the old chains are never answered. */
	pthread_mutex_lock(&f.blk.vdev.lock);
	virtio_queue_stop(&f.blk.vdev, 0);
	tq_setup(&f.blk.vdev, 0, &f.q, &f.mem);
	pthread_mutex_unlock(&f.blk.vdev.lock);
	assert_int_equal(simple(&f, VIRTIO_BLK_T_IN, 0, 512, true, NULL), VIRTIO_BLK_S_OK);
	assert_memory_equal(gmem(&f, BUF_GPA, 512), f.before, 512);
	assert_false(tq_used(&f.q, &id, &len));
	virtio_mmio_destroy(&t);
	bus_destroy(&vm.mmio);
	fx_teardown(&f);
	munmap(guard, 4096);
}

/* Hostile-guest defect 4: the cache is writeback only if the driver negotiated FLUSH. A driver
 * that did not gets write-through: its completed writes are on stable storage (disk.c's test
 * shows what write-through does to each request). */
static void without_flush_writes_go_through(void **state)
{
	struct virtio_dev *d;
	struct fx f;

	fx_setup(&f);
	d = &f.blk.vdev;
	assert_true(d->driver_features & (1ULL << VIRTIO_BLK_F_FLUSH));
	assert_false(f.blk.queues[0].io.write_through);
	pthread_mutex_lock(&d->lock);
	virtio_set_status(d, 0);
	tq_negotiate(d, virtio_get_features(d, 0) & ~(1u << VIRTIO_BLK_F_FLUSH));
	tq_setup(d, 0, &f.q, &f.mem);
	virtio_set_status(d, d->status | VIRTIO_STATUS_DRIVER_OK);
	pthread_mutex_unlock(&d->lock);
	assert_true(virtio_live(d));
	assert_true(f.blk.queues[0].io.write_through);
	memset(gmem(&f, BUF_GPA, 512), 0x77, 512);
	assert_int_equal(simple(&f, VIRTIO_BLK_T_OUT, 3, 512, false, NULL), VIRTIO_BLK_S_OK);
	uint8_t file[512];
	file_read(f.path, 3 * 512, file, sizeof(file));
	assert_memory_equal(file, gmem(&f, BUF_GPA, 512), 512);
	fx_teardown(&f);
}

/* The SQE the queue's ring was last given, and how many it has been given. */
static const struct io_uring_sqe *last_sqe(struct fx *f)
{
	struct io_uring *ring = &f->blk.queues[0].io.ring;

	return &ring->sq.sqes[(ring->sq.sqe_tail - 1) & *ring->sq.kring_mask];
}

static unsigned sqes(struct fx *f)
{
	return f->blk.queues[0].io.ring.sq.sqe_tail;
}

/* The driver writes `writeback` (CONFIG_WCE), as Linux's cache_type attribute does. */
static void set_writeback(struct fx *f, uint8_t v)
{
	pthread_mutex_lock(&f->blk.vdev.lock);
	virtio_config_write(&f->blk.vdev, offsetof(struct virtio_blk_config, writeback), &v, 1);
	pthread_mutex_unlock(&f->blk.vdev.lock);
}

static uint8_t writeback(struct fx *f)
{
	uint8_t v;

	virtio_config_read(&f->blk.vdev, offsetof(struct virtio_blk_config, writeback), &v, 1);
	return v;
}

/* CONFIG_WCE: the driver switches the cache to write-through at run time. From then on a write
 * is handed to the kernel with RWF_DSYNC (its completion, and so the status, comes only once the
 * data is on stable storage), and a write-zeroes is followed by an fdatasync before its status is
 * written; back in writeback mode, neither. Seen in the requests the queue gives its ring. */
static void config_wce_switches_to_write_through(void **state)
{
	const struct virtio_blk_discard_write_zeroes z = { .sector = 8, .num_sectors = 8 };
	struct fx f;
	unsigned before;
	bool zeroes = fs_zeroes_ranges();

	fx_setup(&f);
	assert_true(f.blk.vdev.driver_features & (1ULL << VIRTIO_BLK_F_CONFIG_WCE));
	assert_int_equal(writeback(&f), 1);
	memset(gmem(&f, BUF_GPA, 512), 0x5a, 512);
	assert_int_equal(simple(&f, VIRTIO_BLK_T_OUT, 1, 512, false, NULL), VIRTIO_BLK_S_OK);
	assert_int_equal(last_sqe(&f)->opcode, IORING_OP_WRITEV);
	assert_int_equal(last_sqe(&f)->rw_flags, 0);

	set_writeback(&f, 0);
	assert_int_equal(writeback(&f), 0);
	before = sqes(&f);
	assert_int_equal(simple(&f, VIRTIO_BLK_T_OUT, 2, 512, false, NULL), VIRTIO_BLK_S_OK);
	assert_int_equal(sqes(&f) - before, 1);
	assert_int_equal(last_sqe(&f)->opcode, IORING_OP_WRITEV);
	assert_int_equal(last_sqe(&f)->rw_flags, RWF_DSYNC);
	/* As in write_zeroes: a file system without ZERO_RANGE (tmpfs) makes them UNSUPP. */
	before = sqes(&f);
	if (!zeroes) {
		assert_int_equal(dwz(&f, VIRTIO_BLK_T_WRITE_ZEROES, &z, 1), VIRTIO_BLK_S_UNSUPP);
	} else {
		assert_int_equal(dwz(&f, VIRTIO_BLK_T_WRITE_ZEROES, &z, 1), VIRTIO_BLK_S_OK);
		assert_int_equal(sqes(&f) - before, 2); /* the fallocate, then, before the status... */
		assert_int_equal(last_sqe(&f)->opcode, IORING_OP_FSYNC); /* ...the fdatasync */
		assert_int_equal(last_sqe(&f)->fsync_flags, IORING_FSYNC_DATASYNC);
	}

	set_writeback(&f, 1);
	assert_int_equal(writeback(&f), 1);
	before = sqes(&f);
	assert_int_equal(simple(&f, VIRTIO_BLK_T_OUT, 3, 512, false, NULL), VIRTIO_BLK_S_OK);
	assert_int_equal(last_sqe(&f)->rw_flags, 0);
	if (zeroes) {
		assert_int_equal(dwz(&f, VIRTIO_BLK_T_WRITE_ZEROES, &z, 1), VIRTIO_BLK_S_OK);
		assert_int_equal(sqes(&f) - before, 2); /* one write, one fallocate: no fdatasync */
		assert_int_equal(last_sqe(&f)->opcode, IORING_OP_FALLOCATE);
	}
	fx_teardown(&f);
}

/* Only `writeback` is writable, only to 0 or 1, and only by a driver that took CONFIG_WCE; a
 * reset goes back to writeback. */
static void config_wce_writes_checked(void **state)
{
	struct virtio_blk_config c, before;
	struct virtio_dev *d;
	uint8_t junk[8] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	struct fx f;

	fx_setup(&f);
	d = &f.blk.vdev;
	virtio_config_read(d, 0, (uint8_t *)&before, sizeof(before));
	set_writeback(&f, 2);
	assert_int_equal(writeback(&f), 1);
	assert_false(f.blk.queues[0].io.write_through);
	pthread_mutex_lock(&d->lock);
	virtio_config_write(d, 0, junk, sizeof(junk)); /* capacity */
	virtio_config_write(d, 30, junk, 4);           /* opt_io_size's end, writeback, unused0 */
	pthread_mutex_unlock(&d->lock);
	virtio_config_read(d, 0, (uint8_t *)&c, sizeof(c));
	assert_memory_equal(&c, &before, sizeof(c)); /* 0xff is no mode: all undone */
	set_writeback(&f, 0);
	assert_true(f.blk.queues[0].io.write_through);
	pthread_mutex_lock(&d->lock);
	virtio_reset(d);
	pthread_mutex_unlock(&d->lock);
	assert_int_equal(writeback(&f), 1);
	assert_false(f.blk.queues[0].io.write_through);
	/* A driver that did not take CONFIG_WCE cannot change the mode. */
	pthread_mutex_lock(&d->lock);
	tq_negotiate(d, virtio_get_features(d, 0) & ~(1u << VIRTIO_BLK_F_CONFIG_WCE));
	tq_setup(d, 0, &f.q, &f.mem);
	virtio_set_status(d, d->status | VIRTIO_STATUS_DRIVER_OK);
	pthread_mutex_unlock(&d->lock);
	set_writeback(&f, 0);
	assert_int_equal(writeback(&f), 1);
	assert_false(f.blk.queues[0].io.write_through);
	fx_teardown(&f);
}

/* 5.2.5.2: with CONFIG_WCE and without FLUSH, `writeback` is 0 as soon as the driver may read it
 * (FEATURES_OK, before DRIVER_OK), and the device is write-through. */
static void config_wce_without_flush_starts_write_through(void **state)
{
	struct virtio_dev *d;
	struct fx f;

	fx_setup(&f);
	d = &f.blk.vdev;
	pthread_mutex_lock(&d->lock);
	virtio_set_status(d, 0);
	virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	virtio_set_driver_features(d, 0, virtio_get_features(d, 0) & ~(1u << VIRTIO_BLK_F_FLUSH));
	virtio_set_driver_features(d, 1, (uint32_t)((test_ring_features() >> 32) | 1));
	assert_int_equal(writeback(&f), 1);
	virtio_set_status(d, d->status | VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(writeback(&f), 0);
	tq_setup(d, 0, &f.q, &f.mem);
	virtio_set_status(d, d->status | VIRTIO_STATUS_DRIVER_OK);
	pthread_mutex_unlock(&d->lock);
	assert_true(virtio_live(d));
	assert_int_equal(writeback(&f), 0);
	assert_true(f.blk.queues[0].io.write_through);
	fx_teardown(&f);
}

/* The legacy interface (5.2.5.3): no FEATURES_OK. A driver with CONFIG_WCE (and FLUSH) may write
 * `writeback` before DRIVER_OK and keeps what it wrote; one without CONFIG_WCE (nor FLUSH) gets
 * the mode FLUSH gives, at DRIVER_OK. */
static void config_wce_legacy_driver(void **state)
{
	struct virtio_dev *d;
	struct fx f;

	fx_setup(&f);
	d = &f.blk.vdev;
	for (int wce = 1; wce >= 0; wce--) {
		uint32_t feat = virtio_get_features(d, 0);

		if (!wce)
			feat &= ~(1u << VIRTIO_BLK_F_CONFIG_WCE | 1u << VIRTIO_BLK_F_FLUSH);
		pthread_mutex_lock(&d->lock);
		virtio_set_status(d, 0);
		d->legacy_driver = true;
		virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
		virtio_set_driver_features(d, 0, feat);
		pthread_mutex_unlock(&d->lock);
		assert_int_equal(writeback(&f), 1);
		set_writeback(&f, 0); /* taken only with CONFIG_WCE */
		assert_int_equal(writeback(&f), wce ? 0 : 1);
		pthread_mutex_lock(&d->lock);
		virtio_set_status(d, d->status | VIRTIO_STATUS_DRIVER_OK);
		pthread_mutex_unlock(&d->lock);
		assert_true(virtio_live(d));
		/* Either way write-through: chosen (though FLUSH would make it writeback), or for
		 * want of FLUSH. */
		assert_int_equal(writeback(&f), 0);
		assert_true(f.blk.queues[0].io.write_through);
	}
	d->legacy_driver = false;
	fx_teardown(&f);
}

static void republish(struct fx *f)
{
	uint16_t *ring = gp(&f->q, f->q.avail + 4 + 2 * (f->q.avail_idx % RING_SIZE), 2);

	*ring = 0;
	__atomic_store_n((uint16_t *)gp(&f->q, f->q.avail + 2, 2), ++f->q.avail_idx,
			 __ATOMIC_RELEASE);
	virtio_process(&f->blk.vdev, 0);
}

/* A hostile split driver makes the same chain available again and again without waiting for
 * it: more requests than the disk queue holds. The device holds the one that does not fit and
 * carries on when a slot frees; every request is answered. */
static void more_requests_than_the_disk_queue(void **state)
{
	struct fx f;
	const unsigned total = BLK_QUEUE_SIZE + 40;
	uint16_t used_idx;

	if (test_packed())
		skip(); /* a packed ring cannot offer a chain twice */
	fx_setup(&f);
	put_hdr(&f, VIRTIO_BLK_T_IN, 0);
	tq_add(&f.q, (struct tbuf[]){ { HDR_GPA, 16, false }, { BUF_GPA, 512, true },
				      { STATUS_GPA, 1, true } }, 3);
	virtio_process(&f.blk.vdev, 0);
	/* Nothing is reaped while the loop does not run: the disk queue fills up. */
	unsigned n = 1;
	for (; n < total && !f.blk.queues[0].held; n++)
		republish(&f);
	assert_int_equal(n, BLK_QUEUE_SIZE + 1);
	assert_int_equal(f.blk.queues[0].inflight, BLK_QUEUE_SIZE);
	for (int i = 0; i < 200 && (f.blk.queues[0].inflight || f.blk.queues[0].held); i++)
		event_loop_run_once(&f.loop, 10);
	assert_null(f.blk.queues[0].held);
	for (; n < total; n++)
		republish(&f);
	for (int i = 0; i < 200; i++) {
		used_idx = __atomic_load_n((uint16_t *)gp(&f.q, f.q.used + 2, 2), __ATOMIC_ACQUIRE);
		if (used_idx == total)
			break;
		event_loop_run_once(&f.loop, 10);
	}
	assert_int_equal(used_idx, total);
	assert_null(f.blk.queues[0].held);
	assert_true(virtio_live(&f.blk.vdev));
	fx_teardown(&f);
}

/* Found by the transport fuzzer: every disk slot holds a request when the driver stops the queue
 * and sets it up again; its first new request finds no slot and is held. The old requests'
 * completions, dropped, freed their slots without taking the held one up: it waited, the device
 * live and nothing in flight, until the driver rang again. */
static void held_request_goes_on_after_stale_completions(void **state)
{
	struct fx f;
	uint32_t id, len;
	uint16_t head;

	if (test_packed())
		skip(); /* filling the disk queue needs a chain offered again and again (split) */
	fx_setup(&f);
	put_hdr(&f, VIRTIO_BLK_T_IN, 0);
	tq_add(&f.q, (struct tbuf[]){ { HDR_GPA, 16, false }, { BUF_GPA, 512, true },
				      { STATUS_GPA, 1, true } }, 3);
	virtio_process(&f.blk.vdev, 0);
	while (f.blk.queues[0].inflight < BLK_QUEUE_SIZE)
		republish(&f);
	pthread_mutex_lock(&f.blk.vdev.lock);
	virtio_queue_stop(&f.blk.vdev, 0); /* waits for the disk; the callbacks come later */
	tq_setup(&f.blk.vdev, 0, &f.q, &f.mem);
	pthread_mutex_unlock(&f.blk.vdev.lock);
	*gmem(&f, STATUS_GPA + 1, 1) = 0xee;
	head = tq_add(&f.q, (struct tbuf[]){ { HDR_GPA, 16, false }, { BUF_GPA, 512, true },
					     { STATUS_GPA + 1, 1, true } }, 3);
	virtio_process(&f.blk.vdev, 0);
	assert_non_null(f.blk.queues[0].held); /* no slot yet */
	assert_true(wait_used(&f, &f.q, &id, &len)); /* no other kick */
	assert_int_equal(id, head);
	assert_int_equal(*gmem(&f, STATUS_GPA + 1, 1), VIRTIO_BLK_S_OK);
	assert_null(f.blk.queues[0].held);
	fx_teardown(&f);
}

/* ---- framing ---- */

#define SCAT_R_GPA TEST_GPA(0x200000)
#define SCAT_W_GPA TEST_GPA(0x280000)

/* One request framed as the cuts say (2.7.4; a legacy driver's with ANY_LAYOUT): its readable
 * stream `out` (header, then any data) cut into rn buffers, its writable stream (data read, then
 * the status byte) into wn, every buffer somewhere of its own. Returns the used length; the
 * writable stream comes back in in[0..in_len). */
static uint32_t framed(struct fx *f, const void *out, const uint32_t *rc, unsigned rn,
		       const uint32_t *wc, unsigned wn, uint8_t *in, size_t in_len)
{
	struct tbuf b[12];
	uint32_t id, len;
	uint16_t head;
	size_t wlen;

	assert_true(rn + wn <= 12);
	tq_scatter(&f->q, SCAT_R_GPA, out, rc, rn, false, b);
	wlen = tq_scatter(&f->q, SCAT_W_GPA, NULL, wc, wn, true, b + rn);
	assert_int_equal(wlen, in_len);
	head = tq_add(&f->q, b, rn + wn);
	virtio_process(&f->blk.vdev, 0);
	assert_true(wait_used(f, &f->q, &id, &len));
	assert_int_equal(id, head);
	tq_gather(&f->q, b + rn, wn, in, in_len);
	assert_false(f->blk.vdev.status & VIRTIO_STATUS_NEEDS_RESET);
	return len;
}

#define NCUT(a) (unsigned)(sizeof(a) / sizeof((a)[0]))

/* Every request type framed in odd ways: the header in one buffer with the data, split anywhere
 * (across two or three buffers, one byte at a time), the status byte sharing a buffer with the data
 * read or the ID; the device must read the same request whatever the framing. */
static void any_layout(void **state)
{
	struct fx f;
	struct virtio_blk_outhdr h = { .type = VIRTIO_BLK_T_OUT, .sector = 3 };
	uint8_t msg[16 + 1024], data[1024], in[1024 + 1], file[1024];
	static const uint32_t one[] = { 1 };
	static const uint32_t wr[][4] = { { 16 + 1024 },
					  { 1, 15, 1024 },
					  { 7, 9 + 100, 924 },
					  { 15, 1, 512, 512 },
					  { 16, 1000, 24 } };
	static const uint32_t hdr_cuts[][3] = { { 16 }, { 3, 13 }, { 1, 1, 14 } };
	static const uint32_t rd[][3] = { { 1025 }, { 1024, 1 }, { 100, 925 }, { 1, 1024 },
					  { 511, 2, 512 } };
	static const uint32_t id_cuts[][3] = { { 21 }, { 7, 14 }, { 20, 1 }, { 1, 19, 1 } };
	static const uint32_t dwz_cuts[][3] = { { 32 }, { 20, 12 }, { 5, 14, 13 } };
	uint32_t used;

	fx_setup(&f);
	for (unsigned c = 0; c < NCUT(wr); c++) {
		unsigned n = wr[c][3] ? 4 : wr[c][2] ? 3 : wr[c][1] ? 2 : 1;

		for (unsigned i = 0; i < sizeof(data); i++)
			data[i] = (uint8_t)(i * 7 + c * 31 + 5);
		memcpy(msg, &h, 16);
		memcpy(msg + 16, data, sizeof(data));
		used = framed(&f, msg, wr[c], n, one, 1, in, 1);
		assert_int_equal(used, 1);
		assert_int_equal(in[0], VIRTIO_BLK_S_OK);
		file_read(f.path, 3 * 512, file, sizeof(file));
		assert_memory_equal(file, data, sizeof(data));
	}
	for (unsigned c = 0; c < NCUT(rd); c++) {
		const uint32_t *hc = hdr_cuts[c % NCUT(hdr_cuts)];
		unsigned hn = hc[2] ? 3 : hc[1] ? 2 : 1, n = rd[c][2] ? 3 : rd[c][1] ? 2 : 1;
		struct virtio_blk_outhdr r = { .type = VIRTIO_BLK_T_IN, .sector = 3 };

		used = framed(&f, &r, hc, hn, rd[c], n, in, sizeof(in));
		assert_int_equal(used, sizeof(in));
		assert_memory_equal(in, data, sizeof(data));
		assert_int_equal(in[1024], VIRTIO_BLK_S_OK);
	}
	for (unsigned c = 0; c < NCUT(id_cuts); c++) {
		struct virtio_blk_outhdr r = { .type = VIRTIO_BLK_T_GET_ID };
		unsigned n = id_cuts[c][2] ? 3 : id_cuts[c][1] ? 2 : 1;

		used = framed(&f, &r, (const uint32_t[]){ 4, 12 }, 2, id_cuts[c], n, in, 21);
		assert_int_equal(used, 21);
		assert_memory_equal(in, "serial-0\0\0\0\0\0\0\0\0\0\0\0\0", 20);
		assert_int_equal(in[20], VIRTIO_BLK_S_OK);
	}
	{
		struct virtio_blk_outhdr r = { .type = VIRTIO_BLK_T_FLUSH };

		used = framed(&f, &r, (const uint32_t[]){ 8, 8 }, 2, one, 1, in, 1);
		assert_int_equal(in[0], VIRTIO_BLK_S_OK);
	}
	for (unsigned c = 0; c < NCUT(dwz_cuts); c++) {
		struct virtio_blk_outhdr r = { .type = VIRTIO_BLK_T_DISCARD };
		struct virtio_blk_discard_write_zeroes seg = { .sector = 128 + 8 * c,
							      .num_sectors = 8 };
		unsigned n = dwz_cuts[c][2] ? 3 : dwz_cuts[c][1] ? 2 : 1;

		memcpy(msg, &r, 16);
		memcpy(msg + 16, &seg, 16);
		assert_false(is_hole(f.path, (off_t)seg.sector * 512));
		used = framed(&f, msg, dwz_cuts[c], n, one, 1, in, 1);
		assert_int_equal(in[0], VIRTIO_BLK_S_OK);
		assert_true(is_hole(f.path, (off_t)seg.sector * 512));
	}
	fx_teardown(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(features_and_config),
		cmocka_unit_test(readonly_config),
		cmocka_unit_test(bad_init_arguments),
		cmocka_unit_test(write_then_read_pattern),
		cmocka_unit_test(read_last_sector_and_empty_read),
		cmocka_unit_test(flush),
		cmocka_unit_test(flush_out_is_a_legacy_flush),
		cmocka_unit_test(get_id),
		cmocka_unit_test(readonly_refuses_writes),
		cmocka_unit_test(discard_makes_a_hole),
		cmocka_unit_test(write_zeroes),
		cmocka_unit_test(two_queues),
		cmocka_unit_test(header_split_short),
		cmocka_unit_test(header_too_short),
		cmocka_unit_test(header_in_writable_buffer),
		cmocka_unit_test(no_writable_byte_needs_reset),
		cmocka_unit_test(header_only_needs_reset),
		cmocka_unit_test(sectors_out_of_range),
		cmocka_unit_test(partial_sectors),
		cmocka_unit_test(unknown_types),
		cmocka_unit_test(get_id_buffer_too_small),
		cmocka_unit_test(bad_discard_and_write_zeroes),
		cmocka_unit_test(reset_waits_for_requests_in_flight),
		cmocka_unit_test(queue_stopped_with_requests_in_flight),
		cmocka_unit_test(without_flush_writes_go_through),
		cmocka_unit_test(config_wce_switches_to_write_through),
		cmocka_unit_test(config_wce_writes_checked),
		cmocka_unit_test(config_wce_without_flush_starts_write_through),
		cmocka_unit_test(config_wce_legacy_driver),
		cmocka_unit_test(more_requests_than_the_disk_queue),
		cmocka_unit_test(held_request_goes_on_after_stale_completions),
		cmocka_unit_test(any_layout),
	};
	return RUN_ON_BOTH_RINGS(tests);
}
