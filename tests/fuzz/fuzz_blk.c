/* libFuzzer target for the block device: the guest controls the ring and every request in it, so
 * the input is a guest memory image behind a 16-byte header that plays the transport and the
 * driver's setup:
 *
 *   0     bit 0 RING_PACKED, bit 1 EVENT_IDX, bit 2 INDIRECT_DESC; bit 3 the read-only disk;
 *         bit 4 the driver declines DISCARD and WRITE_ZEROES; bit 5 the driver resets the device
 *         after the first round, with requests possibly in flight, and sets it up again
 *   1     queue size: packed 1 + value % 32, split 1 << (value % 6)
 *   2     rounds of kick + completions, 1 + value % 4
 *   3     unused
 *   4-15  desc, avail (driver area) and used (device area) addresses, le32 each
 *   16-   guest RAM at address 0, in a heap buffer of exactly its size
 *
 * The disks are two small temporary files (one read-write, one read-only), opened once. Each
 * round kicks the queue and runs the event loop until every request has completed. It checks
 * that the device never crashes (the sanitizers), that every request it took was answered or
 * dropped by a reset, and that nothing was written outside the files: their size never changes,
 * and the read-only one keeps its bytes. */
#include <stdint.h>
#include <stdlib.h>

#include "event.h"
#include "log.h"
#include "virtio/blk.h"
#include "fuzz.h"

#define HDR 16

static struct disk rw_disk, ro_disk;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* Every malformed ring is an error message; keep the rest quiet. */
	log_set_level(LOG_ERROR);
	fuzz_disk_open(&rw_disk, "blk", false);
	fuzz_disk_open(&ro_disk, "blk", true);
	return 0;
}

/* The driver's side of setup: features, the queue, DRIVER_OK. */
static void driver_setup(struct blk_dev *b, const uint8_t *h, uint16_t qsize)
{
	struct virtio_dev *d = &b->vdev;
	uint32_t f0 = virtio_get_features(d, 0);
	uint32_t f1 = 1; /* VERSION_1 */

	pthread_mutex_lock(&d->lock);
	virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	if (!(h[0] & 2))
		f0 &= ~(1u << VIRTIO_F_EVENT_IDX);
	if (!(h[0] & 4))
		f0 &= ~(1u << VIRTIO_F_INDIRECT_DESC);
	if (h[0] & 16)
		f0 &= ~(1u << VIRTIO_BLK_F_DISCARD | 1u << VIRTIO_BLK_F_WRITE_ZEROES);
	if (h[0] & 1)
		f1 |= 1u << (VIRTIO_F_RING_PACKED - 32);
	virtio_set_driver_features(d, 0, f0);
	virtio_set_driver_features(d, 1, f1);
	virtio_set_status(d, d->status | VIRTIO_STATUS_FEATURES_OK);
	d->queues[0].vq.size = qsize;
	d->queues[0].vq.desc_gpa = le(h + 4, 4);
	d->queues[0].vq.avail_gpa = le(h + 8, 4);
	d->queues[0].vq.used_gpa = le(h + 12, 4);
	virtio_queue_enable(d, 0);
	virtio_set_status(d, d->status | VIRTIO_STATUS_DRIVER_OK);
	pthread_mutex_unlock(&d->lock);
}

/* Runs the loop until the queue has nothing in flight and holds nothing. */
static void complete_all(struct blk_dev *b, struct event_loop *loop)
{
	struct blk_queue *q = &b->queues[0];

	for (int i = 0; i < 10000 && (q->inflight || q->held); i++)
		event_loop_run_once(loop, 100);
	/* A local file answers in microseconds: anything left is a lost request. A device in
	 * NEEDS_RESET may keep the one it held until the reset. */
	check(!q->inflight && (!q->held || !virtio_live(&b->vdev)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct guest_mem mem = { 0 };
	struct event_loop loop;
	struct blk_dev b;
	unsigned rounds;
	uint16_t qsize;
	uint8_t *ram;

	if (!(ram = fuzz_ram(&mem, data, size, HDR)))
		return 0;
	qsize = (data[0] & 1) ? 1u + data[1] % 32 : 1u << (data[1] % 6);
	rounds = 1 + data[2] % 4;

	check(event_loop_init(&loop, "fuzz") == 0);
	check(blk_init(&b, "blk0", (data[0] & 8) ? &ro_disk : &rw_disk, "fuzz-serial", 1, &mem,
		       &loop) == 0);
	driver_setup(&b, data, qsize);
	for (unsigned r = 0; r < rounds; r++) {
		virtio_process(&b.vdev, 0);
		if (r == 0 && (data[0] & 32)) {
			fuzz_reset(&b.vdev);
			driver_setup(&b, data, qsize);
		}
		complete_all(&b, &loop);
	}
	blk_destroy(&b);
	event_loop_destroy(&loop);
	free(ram);

	fuzz_disk_check(&rw_disk, false);
	fuzz_disk_check(&ro_disk, data[0] & 8);
	return 0;
}
