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
#include <stdint.h>
#include <stdlib.h>

#include "event.h"
#include "log.h"
#include "virtio/scsi.h"
#include "fuzz.h"

enum { RW0, RW1, RO, NR_DISKS };

static struct disk disks[NR_DISKS];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* Every malformed ring and request is an error message; keep the rest quiet. */
	log_set_level(LOG_ERROR);
	for (unsigned i = 0; i < NR_DISKS; i++)
		fuzz_disk_open(&disks[i], "scsictl", i == RO);
	return 0;
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

/* fuzz_device_op does the shared operations; the one of this harness is 3 DRAIN. */
static void run_op(struct scsi_dev *s, struct fuzz_driver *f)
{
	uint8_t op = (uint8_t)fuzz_take(f, 1);

	if (!fuzz_device_op(f, op) && (op & 15) == 3)
		drain(s, &f->loop);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct disk *luns[2];
	struct fuzz_driver f;
	struct scsi_dev s;
	unsigned nr_luns;

	if (!fuzz_driver_begin(&f, data, size))
		return 0;
	nr_luns = (data[0] & 1) ? 2 : 1;
	luns[0] = (data[0] & 3) == 2 ? &disks[RO] : &disks[RW0];
	luns[1] = (data[0] & 2) ? &disks[RO] : &disks[RW1];
	check(scsi_init(&s, "scsi0", luns, nr_luns, (data[0] & 4) ? 2 : 1, &f.mem, &f.loop) == 0);
	fuzz_driver_attach(&f, &s.vdev, data[0] & 8);
	while (fuzz_driver_next(&f)) {
		run_op(&s, &f);
		check_state(&s);
	}
	drain(&s, &f.loop);
	fuzz_reset(&s.vdev);
	check(s.config.sense_size == SCSI_SENSE_SIZE && s.config.cdb_size == SCSI_CDB_SIZE);
	check(!s.tmf_held && !outstanding(&s));
	for (unsigned l = 0; l < nr_luns; l++)
		check(!s.lun_busy[l]);
	scsi_destroy(&s);
	fuzz_driver_end(&f);

	for (unsigned i = 0; i < NR_DISKS; i++)
		fuzz_disk_check(&disks[i], i == RO);
	return 0;
}
