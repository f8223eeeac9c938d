/* libFuzzer target for the virtio SCSI controller (virtio/scsi.c) as a guest drives it: the
 * feature bits it accepts, the configuration area it writes (cdb_size, sense_size, and bytes it
 * may not change), the control queue (task management functions, AN query and subscribe, unknown
 * types, short buffers), the event queue and the request queues, and when it kicks each queue,
 * when completions are reaped, and when it resets the device or stops a queue with requests in
 * flight. fuzz_scsi covers the command layer alone; this one covers what sits around it. Input:
 *
 *   0      bit 0 two LUNs; bit 1 the last LUN is read-only; bit 2 two request queues; bit 3 a
 *          legacy driver (no FEATURES_OK: the device takes feature word 0 at DRIVER_OK)
 *   1-3    unused
 *   4-11   feature words 0 and 1 as BEGIN writes them (le32 each, unfiltered)
 *   12-13  L, le16: bytes of operations
 *   14-15  unused
 *   16-    L bytes of operations, then guest RAM at address 0 (a heap buffer of exactly its size)
 *
 * An operation is one byte, the operation in its low nibble and an argument `a` in its high one
 * (a queue index or a count), then the operation's own bytes, cut short where the input ends:
 *
 *   0 KICK      virtio_process(a): the doorbell served at once, as the I/O thread would
 *   1 DOORBELL  virtio_kick(a): served when the loop next runs
 *   2 RUN       event_loop_run_once(loop, 0) a + 1 times: completions reaped as they come
 *   3 DRAIN     run the loop until no disk I/O is in flight (bounded)
 *   4 RESET     status 0
 *   5 STOP      virtio_queue_stop(a), as virtio-mmio's QueueReady 0
 *   6 ENABLE    size, desc, avail, used (le16 each): queue a set up there and enabled; ignored
 *               while it is enabled, as the transports ignore such writes
 *   7 BEGIN     ACKNOWLEDGE | DRIVER, the header's feature words, FEATURES_OK (not legacy)
 *   8 GO        DRIVER_OK
 *   9 STATUS    one byte, written to the status as it is
 *   10 CONFIG   off (one byte), then a bytes written to the configuration area at off
 *   11 POKE     addr (le16), n (one byte), n bytes: the driver writes its memory (publishes
 *               chains, rewrites a header the device may be reading)
 *   12 FEATURES le32 written to the driver's feature word a (0 or 1: what the transports
 *               pass on)
 *   13-15       nothing
 *
 * The LUNs are three small temporary files (two read-write, one read-only), opened once. After
 * every operation it checks what the controller promises in between: a request counted busy on
 * a LUN has its disk operation in flight (so a task management function held for it is released
 * when it completes), a held TMF waits for something, and the configuration fields the driver
 * may not write keep their values. After DRAIN nothing is busy and no TMF is held. At the end it
 * drains, resets (sense_size and cdb_size back to their defaults, nothing busy), destroys, and
 * checks that no descriptor leaked, the files kept their size and the read-only one its bytes. */
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "event.h"
#include "log.h"
#include "virtio/scsi.h"
#include "fuzz.h"

#define HDR	  16
#define DISK_SIZE (64 * 1024)
#define MAX_OPS	  256

enum { RW0, RW1, RO, NR_DISKS };

static struct disk disks[NR_DISKS];
static uint8_t image[DISK_SIZE];

/* A temporary file of DISK_SIZE bytes, unlinked at once: only the fd lives on. */
static void disk_setup(struct disk *d, bool ro)
{
	char path[] = "/tmp/vmm-fuzz-scsictl-XXXXXX";
	int fd = mkstemp(path);

	check(fd >= 0);
	check(write(fd, image, DISK_SIZE) == DISK_SIZE);
	close(fd);
	check(disk_open(d, path, ro, "fuzz") == 0);
	unlink(path);
}

static void once(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	/* Every malformed ring and request is an error message; keep the rest quiet. */
	log_set_level(LOG_ERROR);
	for (unsigned i = 0; i < DISK_SIZE; i++)
		image[i] = (uint8_t)(i * 7 + 1);
	for (unsigned i = 0; i < NR_DISKS; i++)
		disk_setup(&disks[i], i == RO);
}

/* Interrupts go nowhere: the driver here polls. Set so that the notify paths run. */
static void fake_signal(struct virtio_dev *d, int q)
{
}

static const struct virtio_transport_ops fake_transport = {.signal = fake_signal};

static unsigned count_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	unsigned n = 0;

	check(dir != NULL);
	while (readdir(dir))
		n++;
	closedir(dir);
	return n;
}

/* Operations of one disk context not finished: submitted, queued, or reaped with the callback
 * still to run. */
static unsigned io_unfinished(const struct disk_io *io)
{
	return io->inflight + io->queued + io->ndone;
}

/* Disk operations not finished, and requests parked for a slot. */
static unsigned outstanding(const struct scsi_dev *s)
{
	unsigned n = 0;

	for (unsigned q = 0; q < s->nr_rq; q++) {
		n += s->rq[q].wait != NULL;
		for (unsigned l = 0; l < s->nr_luns; l++)
			n += io_unfinished(&s->rq[q].io[l]);
	}
	return n;
}

static void check_config(const struct scsi_dev *s)
{
	const struct virtio_scsi_config *c = &s->config;

	check(c->num_queues == s->nr_rq && c->seg_max == SCSI_QUEUE_SIZE - 2);
	check(c->max_sectors == SCSI_MAX_XFER_BLOCKS && c->cmd_per_lun == SCSI_QUEUE_SIZE);
	check(c->event_info_size == 16 && !c->max_channel && !c->max_target);
	check(c->max_lun == s->nr_luns - 1);
}

/* What holds between any two things the driver does. */
static void check_state(const struct scsi_dev *s)
{
	unsigned busy = 0;
	bool parked = false;

	for (unsigned q = 0; q < s->nr_rq; q++)
		parked |= s->rq[q].wait != NULL;
	for (unsigned l = 0; l < s->nr_luns; l++) {
		unsigned io = 0;

		for (unsigned q = 0; q < s->nr_rq; q++)
			io += io_unfinished(&s->rq[q].io[l]);
		/* A request stays busy only while the disk has it (or it waits for a slot):
		 * otherwise nothing would ever release it, nor a TMF held for its LUN. */
		check(parked || s->lun_busy[l] <= io);
		busy += s->lun_busy[l];
	}
	if (s->tmf_held)
		check(s->tmf_lun >= 0 ? s->lun_busy[s->tmf_lun] > 0 : busy > 0);
	check_config(s);
}

/* Runs the loop until no disk operation is outstanding and nothing else is ready: completions,
 * and the kicks they make for parked or starved requests. */
static void drain(struct scsi_dev *s, struct event_loop *loop)
{
	for (int i = 0; i < 1000; i++) {
		bool busy = outstanding(s) > 0;

		if (event_loop_run_once(loop, busy ? 10 : 0) == 0 && !busy)
			break;
	}
	/* Local files answer in microseconds: anything left is lost. */
	check(!outstanding(s));
	for (unsigned l = 0; l < s->nr_luns; l++)
		check(!s->lun_busy[l]);
	check(!s->tmf_held);
}

/* Operation bytes, consumed as read; what the input lacks reads as 0. */
struct ops {
	const uint8_t *p;
	size_t len;
};

static uint32_t take(struct ops *o, unsigned n)
{
	uint8_t b[4] = {0};
	unsigned k = n < o->len ? n : (unsigned)o->len;

	memcpy(b, o->p, k);
	o->p += k;
	o->len -= k;
	return le(b, n);
}

static void op_enable(struct virtio_dev *d, unsigned q, struct ops *o)
{
	uint16_t size = take(o, 2);
	uint64_t desc = take(o, 2), avail = take(o, 2), used = take(o, 2);

	if (q >= d->nr_queues || d->queues[q].vq.enabled)
		return;
	d->queues[q].vq.size = size;
	d->queues[q].vq.desc_gpa = desc;
	d->queues[q].vq.avail_gpa = avail;
	d->queues[q].vq.used_gpa = used;
	virtio_queue_enable(d, q);
}

static void op_begin(struct virtio_dev *d, const uint8_t *h)
{
	virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	virtio_set_driver_features(d, 0, le(h + 4, 4));
	if (h[0] & 8)
		return;
	virtio_set_driver_features(d, 1, le(h + 8, 4));
	virtio_set_status(d, d->status | VIRTIO_STATUS_FEATURES_OK);
}

static void run_op(struct scsi_dev *s, struct event_loop *loop, const uint8_t *h, struct ops *o,
		   uint8_t *ram, size_t ram_size)
{
	struct virtio_dev *d = &s->vdev;
	uint8_t b = (uint8_t)take(o, 1), buf[16];
	unsigned a = b >> 4;

	switch (b & 15) {
	case 0:
		virtio_process(d, a);
		return;
	case 1:
		virtio_kick(d, a);
		return;
	case 2:
		for (unsigned i = 0; i <= a; i++)
			event_loop_run_once(loop, 0);
		return;
	case 3:
		drain(s, loop);
		return;
	case 12: {
		uint32_t v = take(o, 4);

		/* Only words 0 and 1 reach the core: both transports drop other selectors (and
		 * virtio_set_driver_features shifts by 32 * sel before its own check). */
		if (a >= 2)
			return;
		pthread_mutex_lock(&d->lock);
		virtio_set_driver_features(d, a, v);
		pthread_mutex_unlock(&d->lock);
		return;
	}
	case 11: {
		uint32_t addr = take(o, 2), n = take(o, 1);

		for (uint32_t i = 0; i < n; i++) {
			uint8_t v = (uint8_t)take(o, 1);

			if (addr + i < ram_size)
				ram[addr + i] = v;
		}
		return;
	}
	}
	/* The rest are register writes: the transport holds the lock for them. */
	pthread_mutex_lock(&d->lock);
	switch (b & 15) {
	case 4:
		virtio_reset(d);
		break;
	case 5:
		virtio_queue_stop(d, a);
		break;
	case 6:
		op_enable(d, a, o);
		break;
	case 7:
		d->legacy_driver = h[0] & 8;
		op_begin(d, h);
		break;
	case 8:
		virtio_set_status(d, d->status | VIRTIO_STATUS_DRIVER_OK);
		break;
	case 9:
		virtio_set_status(d, (uint8_t)take(o, 1));
		break;
	case 10: {
		uint32_t off = take(o, 1);

		for (unsigned i = 0; i < a; i++)
			buf[i] = (uint8_t)take(o, 1);
		virtio_config_write(d, off, buf, a);
		break;
	}
	}
	pthread_mutex_unlock(&d->lock);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct guest_mem mem = {0};
	struct disk *luns[2];
	struct event_loop loop;
	struct scsi_dev s;
	struct ops o;
	unsigned nr_luns, fds;
	uint8_t *ram;
	size_t ops_len;

	once();
	if (size < HDR)
		return 0;
	ops_len = le(data + 12, 2);
	if (ops_len > size - HDR)
		ops_len = size - HDR;
	if (!(ram = fuzz_ram(&mem, data, size, HDR + ops_len)))
		return 0;
	nr_luns = (data[0] & 1) ? 2 : 1;
	luns[0] = (data[0] & 3) == 2 ? &disks[RO] : &disks[RW0];
	luns[1] = (data[0] & 2) ? &disks[RO] : &disks[RW1];

	fds = count_fds();
	check(event_loop_init(&loop, "fuzz") == 0);
	check(scsi_init(&s, "scsi0", luns, nr_luns, (data[0] & 4) ? 2 : 1, &mem, &loop) == 0);
	s.vdev.transport = &fake_transport;
	o = (struct ops){data + HDR, ops_len};
	for (unsigned i = 0; i < MAX_OPS && o.len; i++) {
		run_op(&s, &loop, data, &o, ram, size - HDR - ops_len);
		check_state(&s);
	}
	drain(&s, &loop);
	pthread_mutex_lock(&s.vdev.lock);
	virtio_reset(&s.vdev);
	pthread_mutex_unlock(&s.vdev.lock);
	check(s.config.sense_size == SCSI_SENSE_SIZE && s.config.cdb_size == SCSI_CDB_SIZE);
	check(!s.tmf_held && !outstanding(&s));
	for (unsigned l = 0; l < nr_luns; l++)
		check(!s.lun_busy[l]);
	scsi_destroy(&s);
	event_loop_destroy(&loop);
	free(ram);
	check(count_fds() == fds);

	for (unsigned i = 0; i < NR_DISKS; i++) {
		struct stat st;

		check(fstat(disks[i].fd, &st) == 0 && st.st_size == DISK_SIZE);
	}
	{
		static uint8_t now[DISK_SIZE];

		check(pread(disks[RO].fd, now, DISK_SIZE, 0) == DISK_SIZE);
		check(memcmp(now, image, DISK_SIZE) == 0);
	}
	return 0;
}
