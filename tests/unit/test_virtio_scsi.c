/* The virtio SCSI controller without a transport, over real image files: the test plays the
 * driver, building rings in guest memory, and runs the event loop by hand so the disk I/O
 * completes on this thread. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "event.h"
#include "memory.h"
#include "virtio/scsi.h"

#include "driver_ring.h"

#define DISK_BYTES (1 << 20)
#define REQ_GPA	   DATA_GPA	       /* request header, then data-out */
#define RESP_GPA   (DATA_GPA + 0x8000) /* response, then data-in */
#define CTRL_GPA   (DATA_GPA + 0xc000)
#define RESP_LEN   (12 + 96)
#define HDR_LEN	   (19 + 32)

/* ---- fixture ---- */

struct fx {
	struct guest_mem mem;
	struct event_loop loop;
	char path[2][32];
	struct disk disk[2];
	struct disk *disks[2];
	struct scsi_dev s;
	struct tq q[4]; /* controlq, eventq, request queues */
	unsigned nr_queues; /* virtqueues */
	unsigned rq;        /* the request queue run() uses */
	int signals;
};

static struct fx *cur; /* the transport's signal has no opaque of its own */

static void fake_signal(struct virtio_dev *d, int q)
{
	if (q >= 0)
		cur->signals++;
}

static const struct virtio_transport_ops fake_transport = {.signal = fake_signal};

static void driver_init(struct fx *f);

static void fx_setup_queues(struct fx *f, unsigned nr_luns, bool readonly, unsigned nr_rq)
{
	struct virtio_dev *d = &f->s.vdev;

	memset(f, 0, sizeof(*f));
	cur = f;
	assert_int_equal(gmem_init(&f->mem, 4 << 20), 0);
	assert_int_equal(event_loop_init(&f->loop, "test"), 0);
	for (unsigned i = 0; i < nr_luns; i++) {
		int fd;

		snprintf(f->path[i], sizeof(f->path[i]), "/tmp/vmm-scsi-XXXXXX");
		fd = mkstemp(f->path[i]);
		assert_true(fd >= 0);
		assert_int_equal(ftruncate(fd, DISK_BYTES), 0);
		close(fd);
		assert_int_equal(disk_open(&f->disk[i], f->path[i], readonly, "test"), 0);
		f->disks[i] = &f->disk[i];
	}
	f->nr_queues = 2 + nr_rq;
	f->rq = 2;
	assert_int_equal(scsi_init(&f->s, "scsi0", f->disks, nr_luns, nr_rq, &f->mem, &f->loop), 0);
	d->transport = &fake_transport;
	driver_init(f);
}

static void fx_setup(struct fx *f, unsigned nr_luns, bool readonly)
{
	fx_setup_queues(f, nr_luns, readonly, 1);
}

/* What the driver does after a reset: features, queues, DRIVER_OK. */
static void driver_init(struct fx *f)
{
	struct virtio_dev *d = &f->s.vdev;

	pthread_mutex_lock(&d->lock);
	virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	/* No device bits: INOUT, HOTPLUG, CHANGE and T10_PI are not offered. */
	assert_int_equal(virtio_get_features(d, 0) & 0xffffff, 0);
	virtio_set_driver_features(d, 1, (uint32_t)((test_ring_features() >> 32) | 1));
	virtio_set_status(d, d->status | VIRTIO_STATUS_FEATURES_OK);
	for (unsigned q = 0; q < f->nr_queues; q++)
		tq_setup(d, q, &f->q[q], &f->mem);
	virtio_set_status(d, d->status | VIRTIO_STATUS_DRIVER_OK);
	assert_true(virtio_live(d));
	pthread_mutex_unlock(&d->lock);
}

static void fx_teardown(struct fx *f)
{
	scsi_destroy(&f->s);
	for (unsigned i = 0; i < 2; i++) {
		if (!f->disks[i])
			continue;
		disk_close(&f->disk[i]);
		unlink(f->path[i]);
	}
	event_loop_destroy(&f->loop);
	gmem_free(&f->mem);
}

static uint8_t *mem(struct fx *f, uint64_t gpa, size_t len)
{
	return gp(&f->q[0], gpa, len);
}

/* Runs the loop until queue q has a used element or a second has passed. */
static bool wait_used(struct fx *f, unsigned q, uint32_t *id, uint32_t *len)
{
	for (int i = 0; i < 100; i++) {
		if (tq_used(&f->q[q], id, len))
			return true;
		event_loop_run_once(&f->loop, 10);
	}
	return false;
}

/* The file's bytes at off. */
static void file_read(struct fx *f, unsigned lun, uint64_t off, void *buf, size_t len)
{
	int fd = open(f->path[lun], O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, off), (ssize_t)len);
	close(fd);
}

static bool file_is_zero(struct fx *f, unsigned lun)
{
	static uint8_t buf[DISK_BYTES];

	file_read(f, lun, 0, buf, sizeof(buf));
	for (size_t i = 0; i < sizeof(buf); i++)
		if (buf[i])
			return false;
	return true;
}

struct req {
	uint8_t lun[8];
	uint64_t tag;
	uint8_t cdb[16];
	const void *out; /* data-out */
	uint32_t out_len;
	uint32_t in_len;   /* data-in */
	uint32_t resp_len; /* writable bytes for the response, RESP_LEN unless set */
	uint32_t hdr_len;  /* readable header bytes, HDR_LEN unless set */
	bool no_resp;	   /* no writable buffer at all */
};

static struct req lun(unsigned n)
{
	struct req r = {.lun = {1, 0, 0x40 | (uint8_t)(n >> 8), (uint8_t)n}};

	return r;
}

/* Posts one request: the header (and data-out) in one readable buffer, the response and data-in
 * in two writable ones. Does not run the queue. */
static uint16_t post(struct fx *f, const struct req *r)
{
	uint8_t *h = mem(f, REQ_GPA, HDR_LEN + 0x4000);
	struct tbuf b[3];
	unsigned n = 0;
	uint32_t hdr = r->hdr_len ? r->hdr_len : HDR_LEN;
	uint32_t resp = r->resp_len ? r->resp_len : RESP_LEN;

	memset(h, 0, HDR_LEN);
	memcpy(h, r->lun, 8);
	memcpy(h + 8, &r->tag, 8);
	memcpy(h + 19, r->cdb, 16);
	if (r->out_len)
		memcpy(h + HDR_LEN, r->out, r->out_len);
	if (hdr + r->out_len)
		b[n++] = (struct tbuf){REQ_GPA, hdr + r->out_len, false};
	memset(mem(f, RESP_GPA, RESP_LEN + 0x4000), 0xee, RESP_LEN + 0x4000);
	if (!r->no_resp)
		b[n++] = (struct tbuf){RESP_GPA, resp, true};
	if (r->in_len)
		b[n++] = (struct tbuf){RESP_GPA + RESP_LEN, r->in_len, true};
	return tq_add(&f->q[f->rq], b, n);
}

struct resp {
	uint32_t sense_len, resid;
	uint8_t status, response;
	uint8_t sense[18];
	uint32_t used;
};

/* Posts, runs the request queue, waits for the answer. */
static struct resp run(struct fx *f, const struct req *r)
{
	struct resp a;
	uint32_t id;
	uint16_t head = post(f, r);
	uint8_t *p = mem(f, RESP_GPA, RESP_LEN);

	virtio_process(&f->s.vdev, f->rq);
	assert_true(wait_used(f, f->rq, &id, &a.used));
	assert_int_equal(id, head);
	memcpy(&a.sense_len, p, 4);
	memcpy(&a.resid, p + 4, 4);
	a.status = p[10];
	a.response = p[11];
	memcpy(a.sense, p + 12, 18);
	return a;
}

static uint8_t *data_in(struct fx *f)
{
	return mem(f, RESP_GPA + RESP_LEN, 0x4000);
}

static void rw10(struct req *r, uint8_t op, uint32_t lba, uint16_t nb)
{
	memset(r->cdb, 0, sizeof(r->cdb));
	r->cdb[0] = op;
	r->cdb[2] = (uint8_t)(lba >> 24);
	r->cdb[3] = (uint8_t)(lba >> 16);
	r->cdb[4] = (uint8_t)(lba >> 8);
	r->cdb[5] = (uint8_t)lba;
	r->cdb[7] = (uint8_t)(nb >> 8);
	r->cdb[8] = (uint8_t)nb;
}

/* ---- tests ---- */

static void config_layout(void **state)
{
	struct fx f;
	struct virtio_scsi_config c;
	uint32_t v = 200;

	fx_setup(&f, 2, false);
	pthread_mutex_lock(&f.s.vdev.lock);
	virtio_config_read(&f.s.vdev, 0, (uint8_t *)&c, sizeof(c));
	assert_int_equal(sizeof(c), 36);
	assert_int_equal(c.num_queues, 1);
	assert_int_equal(c.seg_max, SCSI_QUEUE_SIZE - 2);
	assert_int_equal(c.sense_size, 96);
	assert_int_equal(c.cdb_size, 32);
	assert_int_equal(c.event_info_size, 16);
	assert_int_equal(c.max_channel, 0);
	assert_int_equal(c.max_target, 0);
	assert_int_equal(c.max_lun, 1);
	/* The driver may change sense_size and cdb_size, nothing else; reset restores them. */
	virtio_config_write(&f.s.vdev, offsetof(struct virtio_scsi_config, sense_size),
			    (uint8_t *)&v, 4);
	virtio_config_write(&f.s.vdev, offsetof(struct virtio_scsi_config, max_lun), (uint8_t *)&v,
			    4);
	virtio_config_read(&f.s.vdev, 0, (uint8_t *)&c, sizeof(c));
	assert_int_equal(c.sense_size, 200);
	assert_int_equal(c.max_lun, 1);
	virtio_reset(&f.s.vdev);
	virtio_config_read(&f.s.vdev, 0, (uint8_t *)&c, sizeof(c));
	assert_int_equal(c.sense_size, 96);
	pthread_mutex_unlock(&f.s.vdev.lock);
	fx_teardown(&f);
}

static void write_then_read_lands_in_the_file(void **state)
{
	struct fx f;
	uint8_t pattern[1024], back[1024];
	struct req r = lun(0);
	struct resp a;

	for (unsigned i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)(i * 13 + 7);
	fx_setup(&f, 1, false);
	rw10(&r, 0x2a, 3, 2);
	r.out = pattern;
	r.out_len = sizeof(pattern);
	a = run(&f, &r);
	assert_int_equal(a.response, 0);
	assert_int_equal(a.status, 0);
	assert_int_equal(a.sense_len, 0);
	assert_int_equal(a.resid, 0);
	file_read(&f, 0, 3 * 512, back, sizeof(back));
	assert_memory_equal(back, pattern, sizeof(back));

	r = lun(0);
	rw10(&r, 0x28, 3, 2);
	r.in_len = 4096;
	a = run(&f, &r);
	assert_int_equal(a.response, 0);
	assert_int_equal(a.status, 0);
	assert_int_equal(a.resid, 4096 - 1024);
	assert_int_equal(a.used, RESP_LEN + 1024);
	assert_memory_equal(data_in(&f), pattern, sizeof(pattern));
	assert_int_equal(data_in(&f)[1024], 0xee); /* nothing past the transfer */

	/* SYNCHRONIZE CACHE goes to the disk and completes GOOD. */
	r = lun(0);
	r.cdb[0] = 0x35;
	a = run(&f, &r);
	assert_int_equal(a.response, 0);
	assert_int_equal(a.status, 0);
	assert_true(f.signals > 0);
	fx_teardown(&f);
}

static void unmap_punches_a_hole(void **state)
{
	struct fx f;
	static uint8_t ones[4096], back[4096], zero[4096];
	uint8_t list[24] = {0, 22, 0, 16};
	struct req r = lun(0);
	struct resp a;

	memset(ones, 0xff, sizeof(ones));
	fx_setup(&f, 1, false);
	rw10(&r, 0x2a, 0, 8);
	r.out = ones;
	r.out_len = sizeof(ones);
	assert_int_equal(run(&f, &r).status, 0);
	/* UNMAP blocks 2-5. */
	list[8 + 7] = 2;
	list[8 + 11] = 4;
	r = lun(0);
	r.cdb[0] = 0x42;
	r.cdb[8] = sizeof(list);
	r.out = list;
	r.out_len = sizeof(list);
	a = run(&f, &r);
	assert_int_equal(a.response, 0);
	assert_int_equal(a.status, 0);
	file_read(&f, 0, 0, back, sizeof(back));
	assert_memory_equal(back, ones, 1024);
	assert_memory_equal(back + 1024, zero, 2048);
	assert_memory_equal(back + 3072, ones, 1024);
	fx_teardown(&f);
}

static void luns_and_targets(void **state)
{
	struct fx f;
	struct req r = lun(0);
	struct resp a;

	fx_setup(&f, 2, false);
	/* REPORT LUNS on LUN 0 lists both. */
	r.cdb[0] = 0xa0;
	r.cdb[9] = 64;
	r.in_len = 64;
	a = run(&f, &r);
	assert_int_equal(a.response, 0);
	assert_int_equal(a.status, 0);
	assert_int_equal(data_in(&f)[3], 16);
	assert_int_equal(data_in(&f)[8 + 1], 0);
	assert_int_equal(data_in(&f)[16 + 1], 1);

	/* LUN 1 is a disk; LUN 2 does not exist: INQUIRY says so (qualifier 3), anything else
	 * is CHECK CONDITION / LOGICAL UNIT NOT SUPPORTED. */
	r = lun(1);
	r.cdb[0] = 0x12;
	r.cdb[4] = 36;
	r.in_len = 36;
	a = run(&f, &r);
	assert_int_equal(data_in(&f)[0], 0x00);
	r = lun(2);
	r.cdb[0] = 0x12;
	r.cdb[4] = 36;
	r.in_len = 36;
	a = run(&f, &r);
	assert_int_equal(a.response, 0);
	assert_int_equal(data_in(&f)[0], 0x7f);
	r = lun(2);
	a = run(&f, &r); /* TEST UNIT READY */
	assert_int_equal(a.response, 0);
	assert_int_equal(a.status, 2);
	assert_int_equal(a.sense_len, 18);
	assert_int_equal(a.sense[2], 5);
	assert_int_equal(a.sense[12], 0x25);

	/* Target 1 and a LUN of another format: the target does not exist. */
	r = lun(0);
	r.lun[1] = 1;
	a = run(&f, &r);
	assert_int_equal(a.response, 3); /* BAD_TARGET */
	r = lun(0);
	r.lun[0] = 0;
	a = run(&f, &r);
	assert_int_equal(a.response, 3);
	assert_true(virtio_live(&f.s.vdev));
	fx_teardown(&f);
}

static void bad_requests_write_nothing(void **state)
{
	struct fx f;
	static uint8_t ones[8192];
	struct req r;
	struct resp a;

	memset(ones, 0xff, sizeof(ones));
	fx_setup(&f, 1, false);
	/* Past the end of the disk. */
	r = lun(0);
	rw10(&r, 0x2a, DISK_BYTES / 512 - 1, 2);
	r.out = ones;
	r.out_len = 1024;
	a = run(&f, &r);
	assert_int_equal(a.response, 0);
	assert_int_equal(a.status, 2);
	assert_int_equal(a.sense[12], 0x21);
	/* Less data-out than the CDB says. */
	r = lun(0);
	rw10(&r, 0x2a, 0, 8);
	r.out = ones;
	r.out_len = 1024;
	a = run(&f, &r);
	assert_int_equal(a.response, 1); /* OVERRUN */
	/* Data both ways without VIRTIO_SCSI_F_INOUT. */
	r = lun(0);
	rw10(&r, 0x2a, 0, 1);
	r.out = ones;
	r.out_len = 512;
	r.in_len = 512;
	a = run(&f, &r);
	assert_int_equal(a.response, 9); /* FAILURE */
	/* To a target that does not exist. */
	r = lun(0);
	r.lun[1] = 7;
	rw10(&r, 0x2a, 0, 1);
	r.out = ones;
	r.out_len = 512;
	a = run(&f, &r);
	assert_int_equal(a.response, 3);
	/* The CDB cut short by a smaller cdb_size: WRITE(10) in 6 bytes. */
	pthread_mutex_lock(&f.s.vdev.lock);
	f.s.config.cdb_size = 6;
	pthread_mutex_unlock(&f.s.vdev.lock);
	r = lun(0);
	rw10(&r, 0x2a, 0, 1);
	r.hdr_len = 19 + 6;
	a = run(&f, &r);
	assert_int_equal(a.status, 2);
	assert_int_equal(a.sense[12], 0x24);
	assert_true(virtio_live(&f.s.vdev));
	assert_true(file_is_zero(&f, 0));
	fx_teardown(&f);
}

static void read_only_lun_is_data_protect(void **state)
{
	struct fx f;
	static uint8_t ones[512];
	struct req r = lun(0);
	struct resp a;

	memset(ones, 0xff, sizeof(ones));
	fx_setup(&f, 1, true);
	rw10(&r, 0x2a, 0, 1);
	r.out = ones;
	r.out_len = 512;
	a = run(&f, &r);
	assert_int_equal(a.status, 2);
	assert_int_equal(a.sense[2], 7);
	assert_int_equal(a.sense[12], 0x27);
	assert_true(file_is_zero(&f, 0));
	fx_teardown(&f);
}

static void short_header_needs_reset(void **state)
{
	struct fx f;
	struct req r = lun(0);
	uint32_t id, len;

	fx_setup(&f, 1, false);
	rw10(&r, 0x2a, 0, 1);
	r.hdr_len = HDR_LEN - 1; /* one byte of CDB missing */
	post(&f, &r);
	virtio_process(&f.s.vdev, 2);
	assert_true(f.s.vdev.status & VIRTIO_STATUS_NEEDS_RESET);
	assert_false(wait_used(&f, 2, &id, &len));
	assert_true(file_is_zero(&f, 0));
	fx_teardown(&f);
}

static void missing_response_needs_reset(void **state)
{
	struct fx f;
	struct req r = lun(0);
	uint32_t id, len;

	fx_setup(&f, 1, false);
	r.no_resp = true; /* TEST UNIT READY with nowhere to answer */
	post(&f, &r);
	virtio_process(&f.s.vdev, 2);
	assert_true(f.s.vdev.status & VIRTIO_STATUS_NEEDS_RESET);
	assert_false(wait_used(&f, 2, &id, &len));
	fx_teardown(&f);
}

static void short_response_gets_what_fits(void **state)
{
	struct fx f;
	struct req r = lun(5);
	struct resp a;

	fx_setup(&f, 1, false);
	r.resp_len = 14; /* the header and two bytes of sense */
	a = run(&f, &r);
	assert_int_equal(a.used, 14);
	assert_int_equal(a.status, 2);
	assert_int_equal(a.sense_len, 18);
	assert_int_equal(mem(&f, RESP_GPA, 16)[14], 0xee);
	assert_true(virtio_live(&f.s.vdev));
	fx_teardown(&f);
}

/* One control request; returns its response byte. */
static uint8_t ctrl(struct fx *f, uint32_t type, uint32_t subtype, const uint8_t *l, bool wait,
		    uint32_t *event_actual)
{
	uint8_t *m = mem(f, CTRL_GPA, 64);
	uint32_t id, len;
	unsigned in_len = type == 0 ? 1 : 5;
	unsigned out_len = type == 0 ? 24 : 16;
	struct tbuf b[2] = {{CTRL_GPA, out_len, false}, {CTRL_GPA + 32, in_len, true}};

	memset(m, 0, 64);
	memcpy(m, &type, 4);
	if (type == 0) {
		memcpy(m + 4, &subtype, 4);
		memcpy(m + 8, l, 8);
	} else {
		memcpy(m + 4, l, 8);
	}
	memset(m + 32, 0xee, 8);
	tq_add(&f->q[0], b, 2);
	virtio_process(&f->s.vdev, 0);
	if (!wait)
		return tq_used(&f->q[0], &id, &len) ? m[32] : 0xff;
	assert_true(wait_used(f, 0, &id, &len));
	assert_int_equal(len, in_len);
	if (event_actual)
		memcpy(event_actual, m + 32, 4);
	return m[32 + in_len - 1];
}

static void task_management(void **state)
{
	struct fx f;
	struct req r = lun(0), other;
	uint32_t id, len, actual = 1;

	fx_setup(&f, 2, false);
	assert_int_equal(ctrl(&f, 0, 5, r.lun, true, NULL), 0);	  /* LUN reset: COMPLETE */
	assert_int_equal(ctrl(&f, 0, 4, r.lun, true, NULL), 0);	  /* I_T nexus reset */
	assert_int_equal(ctrl(&f, 0, 7, r.lun, true, NULL), 0);	  /* QUERY TASK SET: none */
	assert_int_equal(ctrl(&f, 0, 99, r.lun, true, NULL), 11); /* unknown: REJECTED */
	other = lun(9);
	assert_int_equal(ctrl(&f, 0, 5, other.lun, true, NULL), 12); /* INCORRECT_LUN */
	other = lun(0);
	other.lun[1] = 3;
	assert_int_equal(ctrl(&f, 0, 5, other.lun, true, NULL), 3); /* BAD_TARGET */
	assert_int_equal(ctrl(&f, 1, 0, r.lun, true, &actual), 0);  /* AN query: no events */
	assert_int_equal(actual, 0);

	/* A reset of a LUN with a read in flight waits for it: the read's answer comes first. */
	rw10(&r, 0x28, 0, 8);
	r.in_len = 4096;
	uint16_t head = post(&f, &r);

	virtio_process(&f.s.vdev, 2);
	assert_int_equal(ctrl(&f, 0, 5, r.lun, false, NULL), 0xff); /* held */
	assert_true(wait_used(&f, 2, &id, &len));
	assert_int_equal(id, head);
	assert_true(wait_used(&f, 0, &id, &len));
	assert_int_equal(mem(&f, CTRL_GPA + 32, 1)[0], 0);
	/* The control queue goes on after it. */
	assert_int_equal(ctrl(&f, 0, 1, r.lun, true, NULL), 0);
	fx_teardown(&f);
}

static void reset_drops_answers_in_flight(void **state)
{
	struct fx f;
	struct req r = lun(0);
	uint32_t id, len;
	static uint8_t ones[4096];
	struct resp a;

	memset(ones, 0x5a, sizeof(ones));
	fx_setup(&f, 1, false);
	rw10(&r, 0x2a, 0, 8);
	r.out = ones;
	r.out_len = 4096;
	post(&f, &r);
	virtio_process(&f.s.vdev, 2);
	assert_int_equal(f.s.lun_busy[0], 1);
	pthread_mutex_lock(&f.s.vdev.lock);
	virtio_reset(&f.s.vdev);
	pthread_mutex_unlock(&f.s.vdev.lock);
	assert_int_equal(f.s.lun_busy[0], 0);
	/* The write finished on the disk before reset returned; its answer is not given. */
	uint8_t back[4096];

	file_read(&f, 0, 0, back, sizeof(back));
	assert_memory_equal(back, ones, sizeof(back));
	/* The driver starts again; the old completion comes and goes without an answer, and new
	 * requests work. */
	driver_init(&f);
	assert_false(wait_used(&f, 2, &id, &len));
	r = lun(0);
	rw10(&r, 0x28, 0, 1);
	r.in_len = 512;
	a = run(&f, &r);
	assert_int_equal(a.response, 0);
	assert_int_equal(a.status, 0);
	assert_memory_equal(data_in(&f), ones, 512);
	fx_teardown(&f);
}

/* The driver stops one queue (virtio-mmio QueueReady 0) and sets it up anew. A request queue
 * with a read in flight: the read's answer is dropped, and a LUN reset held for it is answered
 * once it is done. The control queue with a LUN reset held: the held one is dropped, and the new
 * ring's requests are answered at once rather than queued behind a request the driver took back. */
static void queue_stop_drops_what_it_held(void **state)
{
	struct fx f;
	struct req r = lun(0);
	uint32_t id, len, actual = 1;

	fx_setup(&f, 1, false);
	rw10(&r, 0x28, 0, 8);
	r.in_len = 4096;
	post(&f, &r);
	virtio_process(&f.s.vdev, 2);
	assert_int_equal(ctrl(&f, 0, 5, r.lun, false, NULL), 0xff); /* held for the read */
	pthread_mutex_lock(&f.s.vdev.lock);
	virtio_queue_stop(&f.s.vdev, 2);
	tq_setup(&f.s.vdev, 2, &f.q[2], &f.mem);
	pthread_mutex_unlock(&f.s.vdev.lock);
	assert_true(wait_used(&f, 0, &id, &len));
	assert_int_equal(mem(&f, CTRL_GPA + 32, 1)[0], 0); /* FUNCTION COMPLETE */
	assert_false(tq_used(&f.q[2], &id, &len));
	assert_int_equal(f.s.lun_busy[0], 0);

	post(&f, &r);
	virtio_process(&f.s.vdev, 2);
	assert_int_equal(ctrl(&f, 0, 5, r.lun, false, NULL), 0xff);
	pthread_mutex_lock(&f.s.vdev.lock);
	virtio_queue_stop(&f.s.vdev, 0);
	tq_setup(&f.s.vdev, 0, &f.q[0], &f.mem);
	pthread_mutex_unlock(&f.s.vdev.lock);
	assert_int_equal(ctrl(&f, 1, 0, r.lun, false, &actual), 0); /* AN query, answered now */
	assert_true(wait_used(&f, 2, &id, &len)); /* the read, answered where it was asked */
	assert_false(tq_used(&f.q[0], &id, &len)); /* and the dropped reset never */
	assert_true(virtio_live(&f.s.vdev));
	fx_teardown(&f);
}

static void second_request_queue(void **state)
{
	struct fx f;
	static uint8_t pattern[512];
	struct req r = lun(0);
	struct resp a;
	uint32_t id, len, n;

	memset(pattern, 0x3c, sizeof(pattern));
	fx_setup_queues(&f, 1, false, 2);
	pthread_mutex_lock(&f.s.vdev.lock);
	virtio_config_read(&f.s.vdev, 0, (uint8_t *)&n, 4);
	pthread_mutex_unlock(&f.s.vdev.lock);
	assert_int_equal(n, 2); /* num_queues */
	f.rq = 3;
	rw10(&r, 0x2a, 100, 1);
	r.out = pattern;
	r.out_len = sizeof(pattern);
	a = run(&f, &r);
	assert_int_equal(a.response, 0);
	assert_int_equal(a.status, 0);
	assert_false(tq_used(&f.q[2], &id, &len)); /* answered where it was asked */
	f.rq = 2;
	r = lun(0);
	rw10(&r, 0x28, 100, 1);
	r.in_len = 512;
	a = run(&f, &r);
	assert_int_equal(a.status, 0);
	assert_memory_equal(data_in(&f), pattern, sizeof(pattern));
	fx_teardown(&f);
}

static void bad_geometry_is_refused(void **state)
{
	struct scsi_dev s;
	struct disk d = { .fd = -1, .size = 1 << 20 };
	struct disk *disks[1] = { &d };

	assert_int_equal(scsi_init(&s, "scsi0", disks, 0, 1, NULL, NULL), -EINVAL);
	scsi_destroy(&s);
	assert_int_equal(scsi_init(&s, "scsi0", disks, 1, SCSI_MAX_REQ_QUEUES + 1, NULL, NULL),
			 -EINVAL);
	scsi_destroy(&s);
}

/* ---- framing ---- */

#define SCAT_R_GPA TEST_GPA(0x200000)
#define SCAT_W_GPA TEST_GPA(0x280000)
#define NCUT(a)	   (unsigned)(sizeof(a) / sizeof((a)[0]))

static unsigned ncuts(const uint32_t *c, unsigned max)
{
	unsigned n = 0;

	while (n < max && c[n])
		n++;
	return n;
}

/* One chain on queue q framed as the cuts say (2.7.4; a legacy driver's with ANY_LAYOUT): the
 * readable stream `out` cut by rc, the writable stream by wc, every buffer somewhere of its own.
 * Returns the used length; the writable stream comes back in in[0..in_len). */
static uint32_t framed(struct fx *f, unsigned q, const void *out, const uint32_t *rc,
		       const uint32_t *wc, uint8_t *in, size_t in_len)
{
	unsigned rn = ncuts(rc, 4), wn = ncuts(wc, 4);
	struct tbuf b[8];
	uint32_t id, len;
	uint16_t head;

	tq_scatter(&f->q[q], SCAT_R_GPA, out, rc, rn, false, b);
	assert_int_equal(tq_scatter(&f->q[q], SCAT_W_GPA, NULL, wc, wn, true, b + rn), in_len);
	head = tq_add(&f->q[q], b, rn + wn);
	virtio_process(&f->s.vdev, q);
	assert_true(wait_used(f, q, &id, &len));
	assert_int_equal(id, head);
	tq_gather(&f->q[q], b + rn, wn, in, in_len);
	assert_false(f->s.vdev.status & VIRTIO_STATUS_NEEDS_RESET);
	return len;
}

/* Requests framed in odd ways: the request header (LUN, tag, CDB) split anywhere, sharing a buffer
 * with the data-out; the response header split, sharing a buffer with the data-in; control
 * requests and their responses split too. The device must see the same request every time. */
static void any_layout(void **state)
{
	static const uint32_t wr_cuts[][4] = { { HDR_LEN + 1024 },
					       { 8, 11, 32 + 1024 },
					       { 1, HDR_LEN - 1, 1024 },
					       { 19 + 5, 27 + 100, 924 },
					       { 30, 21 + 512, 512 } };
	static const uint32_t resp_cuts[][4] = { { RESP_LEN }, { 12, 96 }, { 5, 103 },
						 { 11, 1, 96 } };
	static const uint32_t hdr_cuts[][4] = { { HDR_LEN }, { 2, 49 }, { 19, 32 }, { 25, 26 } };
	static const uint32_t rd_cuts[][4] = { { RESP_LEN + 1024 },
					       { 12, 96 + 1024 },
					       { RESP_LEN + 10, 1014 },
					       { 7, 101, 1024 },
					       { 100, 8 + 512, 512 } };
	static const uint32_t tmf_cuts[][4] = { { 24 }, { 4, 20 }, { 1, 3, 20 }, { 10, 14 } };
	uint8_t msg[HDR_LEN + 1024], data[1024], in[RESP_LEN + 1024], back[1024];
	struct req r = lun(0);
	struct fx f;
	uint32_t used;

	fx_setup(&f, 1, false);
	for (unsigned c = 0; c < NCUT(wr_cuts); c++) {
		for (unsigned i = 0; i < sizeof(data); i++)
			data[i] = (uint8_t)(i * 11 + c * 29 + 3);
		rw10(&r, 0x2a, 5, 2);
		memset(msg, 0, HDR_LEN);
		memcpy(msg, r.lun, 8);
		memcpy(msg + 19, r.cdb, 16);
		memcpy(msg + HDR_LEN, data, sizeof(data));
		used = framed(&f, f.rq, msg, wr_cuts[c], resp_cuts[c % NCUT(resp_cuts)], in,
			      RESP_LEN);
		assert_int_equal(used, 12); /* the response without sense */
		assert_int_equal(in[11], 0); /* response OK */
		assert_int_equal(in[10], 0); /* status GOOD */
		assert_memory_equal(in, "\0\0\0\0\0\0\0\0", 8); /* no sense, no residual */
		file_read(&f, 0, 5 * 512, back, sizeof(back));
		assert_memory_equal(back, data, sizeof(data));
	}
	for (unsigned c = 0; c < NCUT(rd_cuts); c++) {
		rw10(&r, 0x28, 5, 2);
		memset(msg, 0, HDR_LEN);
		memcpy(msg, r.lun, 8);
		memcpy(msg + 19, r.cdb, 16);
		used = framed(&f, f.rq, msg, hdr_cuts[c % NCUT(hdr_cuts)], rd_cuts[c], in,
			      sizeof(in));
		assert_int_equal(used, RESP_LEN + 1024);
		assert_int_equal(in[11], 0);
		assert_int_equal(in[10], 0);
		assert_memory_equal(in + RESP_LEN, data, sizeof(data));
	}
	for (unsigned c = 0; c < NCUT(tmf_cuts); c++) {
		uint8_t m[24] = { 0, 0, 0, 0, 5 }; /* TMF, LOGICAL UNIT RESET */

		memcpy(m + 8, r.lun, 8);
		used = framed(&f, 0, m, tmf_cuts[c], (const uint32_t[]){ 1, 0 }, in, 1);
		assert_int_equal(used, 1);
		assert_int_equal(in[0], 0); /* FUNCTION COMPLETE */
	}
	{
		uint8_t m[16] = { 1 }; /* AN query */

		memcpy(m + 4, r.lun, 8);
		used = framed(&f, 0, m, (const uint32_t[]){ 3, 13, 0 },
			      (const uint32_t[]){ 4, 1, 0 }, in, 5);
		assert_int_equal(used, 5);
		assert_memory_equal(in, "\0\0\0\0\0", 5);
	}
	fx_teardown(&f);
}

/* The device puts sense_size and cdb_size back at reset (5.6.4): a change of the area, which the
 * generation shows. */
static void reset_moves_the_generation(void **state)
{
	struct fx f;
	uint32_t v = htole32(200), gen;

	fx_setup(&f, 1, false);
	pthread_mutex_lock(&f.s.vdev.lock);
	virtio_config_write(&f.s.vdev, offsetof(struct virtio_scsi_config, cdb_size),
			    (uint8_t *)&v, 4);
	gen = virtio_config_generation(&f.s.vdev);
	virtio_reset(&f.s.vdev);
	assert_int_equal(f.s.config.cdb_size, htole32(32));
	assert_int_not_equal(virtio_config_generation(&f.s.vdev), gen);
	/* Nothing to put back: no change. */
	gen = virtio_config_generation(&f.s.vdev);
	virtio_reset(&f.s.vdev);
	assert_int_equal(virtio_config_generation(&f.s.vdev), gen);
	pthread_mutex_unlock(&f.s.vdev.lock);
	fx_teardown(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(config_layout),
		cmocka_unit_test(write_then_read_lands_in_the_file),
		cmocka_unit_test(unmap_punches_a_hole),
		cmocka_unit_test(luns_and_targets),
		cmocka_unit_test(bad_requests_write_nothing),
		cmocka_unit_test(read_only_lun_is_data_protect),
		cmocka_unit_test(short_header_needs_reset),
		cmocka_unit_test(missing_response_needs_reset),
		cmocka_unit_test(short_response_gets_what_fits),
		cmocka_unit_test(task_management),
		cmocka_unit_test(reset_drops_answers_in_flight),
		cmocka_unit_test(queue_stop_drops_what_it_held),
		cmocka_unit_test(second_request_queue),
		cmocka_unit_test(bad_geometry_is_refused),
		cmocka_unit_test(any_layout),
		cmocka_unit_test(reset_moves_the_generation),
	};
	return RUN_ON_BOTH_RINGS(tests);
}
