/* libFuzzer target for the memory balloon (virtio/balloon.c) as a guest drives it: the features it
 * accepts, the queues it sets up (at the spec's numbers or Linux's), inflate and deflate requests
 * (PFN arrays laid out anyhow, pages outside RAM), statistics buffers, free page reports, the
 * configuration it writes (actual, poison_val), target changes from the host, and resets and queue
 * stops in between. Input: fuzz.h's driver layout (FUZZ_DRIVER_HDR bytes), with header byte 0:
 *
 *   bit 0 a legacy driver (no FEATURES_OK); bit 1 statistics offered; bit 2 free page reporting
 *   offered; bit 3 deflate on OOM offered
 *
 * Operations, the code in the low nibble and `a` in the high one:
 *
 *   0 KICK  1 DOORBELL (virtio_kick(a))  2 RUN  4 RESET  5 STOP  6 ENABLE  7 BEGIN  8 GO
 *   9 STATUS  10 CONFIG (off, then a bytes written)  11 POKE  12 FEATURES
 *   13 TARGET (le16 pages: the host sets the target)
 *
 * Between operations it checks that the target never exceeds RAM and that a device that is not
 * live holds no statistics buffer after a reset; ASan checks that no page outside guest RAM is
 * touched (guest RAM is a heap buffer of exactly its size). */
#include <stdint.h>
#include <stdlib.h>

#include "event.h"
#include "log.h"
#include "virtio/balloon.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_set_level(LOG_ERROR); /* every refused PFN and malformed ring is a message */
	return 0;
}

/* fuzz_device_op does the shared operations; the one of this harness is 13 TARGET. */
static void run_op(struct balloon_dev *b, struct fuzz_driver *f)
{
	uint8_t op = (uint8_t)fuzz_take(f, 1);

	if (!fuzz_device_op(f, op) && (op & 15) == 13)
		balloon_set_target(b, (uint64_t)fuzz_take(f, 2) * BALLOON_PAGE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_driver f;
	struct balloon_dev b;
	struct balloon_config cfg;
	struct balloon_info info;

	if (!fuzz_driver_begin(&f, data, size))
		return 0;
	cfg = (struct balloon_config){
		.stats_period = (data[0] & 2) ? 1 : 0,
		.free_page_reporting = data[0] & 4,
		.deflate_on_oom = data[0] & 8,
	};
	check(balloon_init(&b, "balloon0", &cfg, &f.mem, &f.loop) == 0);
	fuzz_driver_attach(&f, &b.vdev, data[0] & 1);
	while (fuzz_driver_next(&f)) {
		run_op(&b, &f);
		balloon_get(&b, &info);
		check(info.target <= f.mem.ram_size);
	}
	fuzz_reset(&b.vdev);
	check(!b.stats_held);
	balloon_destroy(&b);
	fuzz_driver_end(&f);
	return 0;
}
