/* What the libFuzzer targets share: little-endian fields from the input, a check that traps (the
 * fuzzer reports a trap as a crash, with the input that caused it), guest RAM from the input, the
 * temporary disks of the storage targets, and the driver operations of the targets that drive a
 * device register by register. */
#ifndef VMM_FUZZ_H
#define VMM_FUZZ_H

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/disk.h"
#include "event.h"
#include "memory.h"
#include "virtio/virtio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional: what a target sets up once, before the first input (libFuzzer and replay.c call it). */
int LLVMFuzzerInitialize(int *argc, char ***argv);

static inline uint32_t le(const uint8_t *p, int n)
{
	uint32_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static inline void check(bool ok)
{
	if (!ok)
		__builtin_trap();
}

/* The input after its hdr-byte header as guest RAM from address 0: a heap copy of exactly that
 * size, so ASan sees any access past it. NULL when there is none; the caller frees it. */
static inline uint8_t *fuzz_ram(struct guest_mem *mem, const uint8_t *data, size_t size,
				size_t hdr)
{
	uint8_t *ram;

	if (size <= hdr || !(ram = malloc(size - hdr)))
		return NULL;
	memcpy(ram, data + hdr, size - hdr);
	*mem = (struct guest_mem){ .nr = 1, .ram_size = size - hdr };
	mem->r[0] = (struct gmem_region){ .gpa = 0, .size = size - hdr, .host = ram };
	return ram;
}

/* An input of a hdr-byte header, *len bytes (the le16 at len_at in the header, cut to what the
 * input has), then guest RAM as fuzz_ram() makes it. NULL when there is no RAM. */
static inline uint8_t *fuzz_ram_after(struct guest_mem *mem, const uint8_t *data, size_t size,
				      size_t hdr, size_t len_at, size_t *len)
{
	if (size < hdr)
		return NULL;
	*len = le(data + len_at, 2);
	if (*len > size - hdr)
		*len = size - hdr;
	return fuzz_ram(mem, data, size, hdr + *len);
}

/* Runs the loop until nothing is ready; a loop that never gets there spins the I/O thread (a
 * handler that wakes itself for ever). */
static inline void fuzz_idle(struct event_loop *loop)
{
	int i, r;

	for (i = 0; (r = event_loop_run_once(loop, 0)) > 0; i++)
		check(i < 1000);
	check(r == 0);
}

/* The process's open descriptors: the same before an input and after it, or something leaked. */
static inline unsigned fuzz_count_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	unsigned n = 0;

	check(dir != NULL);
	while (readdir(dir))
		n++;
	closedir(dir);
	return n;
}

/* ---- Disks ----
 *
 * The storage targets' disks are small temporary files opened once, all with the same bytes at
 * the start, so that a check after each input can tell that nothing was written outside them. */

#define FUZZ_DISK_SIZE (64 * 1024)

/* What every disk holds when it is made. */
static inline const uint8_t *fuzz_disk_bytes(void)
{
	static uint8_t bytes[FUZZ_DISK_SIZE];
	static bool done;

	if (!done) {
		for (unsigned i = 0; i < FUZZ_DISK_SIZE; i++)
			bytes[i] = (uint8_t)(i * 7 + 1);
		done = true;
	}
	return bytes;
}

/* A temporary file of fuzz_disk_bytes(), opened as d and unlinked at once: only the fd lives on,
 * so nothing is left in /tmp however the fuzzer ends. tag names the file while it has a name. */
static inline void fuzz_disk_open(struct disk *d, const char *tag, bool ro)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/vmm-fuzz-%s-XXXXXX", tag);
	check((fd = mkstemp(path)) >= 0);
	check(write(fd, fuzz_disk_bytes(), FUZZ_DISK_SIZE) == FUZZ_DISK_SIZE);
	close(fd);
	check(disk_open(d, path, ro, "fuzz") == 0);
	unlink(path);
}

/* Nothing was written outside d: its size never changes, and if `kept` (a read-only disk the
 * input used) it holds the bytes it was made with. */
static inline void fuzz_disk_check(const struct disk *d, bool kept)
{
	static uint8_t now[FUZZ_DISK_SIZE];
	struct stat st;

	check(fstat(d->fd, &st) == 0 && st.st_size == FUZZ_DISK_SIZE);
	if (!kept)
		return;
	check(pread(d->fd, now, FUZZ_DISK_SIZE, 0) == FUZZ_DISK_SIZE);
	check(memcmp(now, fuzz_disk_bytes(), FUZZ_DISK_SIZE) == 0);
}

/* ---- A device driven as a guest's driver does ---- */

/* Status 0, under the lock as the transports write it. */
static inline void fuzz_reset(struct virtio_dev *d)
{
	pthread_mutex_lock(&d->lock);
	virtio_reset(d);
	pthread_mutex_unlock(&d->lock);
}

/* fuzz_scsictl and fuzz_console share an input layout: a FUZZ_DRIVER_HDR-byte header whose bytes
 * 4-11 are the feature words BEGIN writes (le32 each) and 12-13 L (le16), then L bytes of
 * operations, then guest RAM. An operation is one byte, its code in the low nibble and an argument
 * `a` in the high one, then its own bytes, cut short where the input ends. Each harness numbers
 * its operations in its own format; those it shares with the other are enum fuzz_op, done here
 * as the transports would do them. */
#define FUZZ_DRIVER_HDR 16
#define FUZZ_MAX_OPS	256

struct fuzz_driver {
	struct virtio_dev *dev;	/* from fuzz_driver_attach(), with legacy */
	struct event_loop loop;
	struct guest_mem mem;
	uint8_t *ram;		/* mem's one region */
	uint32_t features[2];	/* what BEGIN writes */
	bool legacy;		/* a legacy driver: BEGIN without FEATURES_OK */
	const uint8_t *ops;	/* the operations still to come */
	size_t ops_len;
	unsigned done;		/* operations begun */
	unsigned fds;		/* the process's descriptors before the input */
};

enum fuzz_op {
	FUZZ_OP_OWN,		/* not a shared one: the harness's own, or nothing */
	FUZZ_OP_KICK,		/* virtio_process(a): served at once, as by the I/O thread */
	FUZZ_OP_RUN,		/* event_loop_run_once(loop, 0) a + 1 times */
	FUZZ_OP_RESET,		/* status 0 */
	FUZZ_OP_STOP,		/* virtio_queue_stop(a), as virtio-mmio's QueueReady 0 */
	FUZZ_OP_ENABLE,		/* size, desc, avail, used (le16 each): queue a set up, enabled */
	FUZZ_OP_BEGIN,		/* ACKNOWLEDGE | DRIVER, feature words, FEATURES_OK (not legacy) */
	FUZZ_OP_GO,		/* DRIVER_OK */
	FUZZ_OP_STATUS,		/* one byte, written to the status as it is */
	FUZZ_OP_POKE,		/* addr (le16), n (one byte), n bytes: the driver writes RAM */
	FUZZ_OP_FEATURES,	/* le32 written to the driver's feature word a */
};

/* Starts an input in that layout: its header and RAM, and the I/O loop for the device. False,
 * with nothing to undo, when it has no RAM. */
static inline bool fuzz_driver_begin(struct fuzz_driver *f, const uint8_t *data, size_t size)
{
	*f = (struct fuzz_driver){ 0 };
	if (!(f->ram = fuzz_ram_after(&f->mem, data, size, FUZZ_DRIVER_HDR, 12, &f->ops_len)))
		return false;
	f->features[0] = le(data + 4, 4);
	f->features[1] = le(data + 8, 4);
	f->ops = data + FUZZ_DRIVER_HDR;
	f->fds = fuzz_count_fds();
	check(event_loop_init(&f->loop, "fuzz") == 0);
	return true;
}

static inline void fuzz_no_signal(struct virtio_dev *d, int q)
{
}

/* The device the harness made on f's RAM and loop, and whether the driver is a legacy one (the
 * harness's own header bytes say). The device's interrupts go nowhere (the driver here polls),
 * but there is a transport to send them, so that the notify paths run. */
static inline void fuzz_driver_attach(struct fuzz_driver *f, struct virtio_dev *d, bool legacy)
{
	static const struct virtio_transport_ops polled = { .signal = fuzz_no_signal };

	d->transport = &polled;
	f->dev = d;
	f->legacy = legacy;
}

/* Whether to do another operation: there is one, and fewer than FUZZ_MAX_OPS were done (a bound
 * on the time an input takes). */
static inline bool fuzz_driver_next(struct fuzz_driver *f)
{
	return f->ops_len && f->done++ < FUZZ_MAX_OPS;
}

/* Ends the input once the device is destroyed: the loop and RAM go, and no descriptor may be
 * left open. */
static inline void fuzz_driver_end(struct fuzz_driver *f)
{
	event_loop_destroy(&f->loop);
	free(f->ram);
	check(fuzz_count_fds() == f->fds);
}

/* The next n (at most 4) operation bytes as a le value, consumed; what the input lacks reads as
 * 0. */
static inline uint32_t fuzz_take(struct fuzz_driver *f, unsigned n)
{
	uint8_t b[4] = { 0 };
	unsigned k = n < f->ops_len ? n : (unsigned)f->ops_len;

	memcpy(b, f->ops, k);
	f->ops += k;
	f->ops_len -= k;
	return le(b, n);
}

/* Register writes, with the lock held as the transport holds it. */
static inline void fuzz_driver_write(struct fuzz_driver *f, enum fuzz_op op, unsigned a)
{
	struct virtio_dev *d = f->dev;

	switch (op) {
	case FUZZ_OP_RESET:
		virtio_reset(d);
		break;
	case FUZZ_OP_STOP:
		virtio_queue_stop(d, a);
		break;
	case FUZZ_OP_ENABLE: {
		uint16_t size = fuzz_take(f, 2);
		uint64_t desc = fuzz_take(f, 2), avail = fuzz_take(f, 2), used = fuzz_take(f, 2);

		/* The transports ignore such writes to an enabled queue. */
		if (a >= d->nr_queues || d->queues[a].vq.enabled)
			break;
		d->queues[a].vq.size = size;
		d->queues[a].vq.desc_gpa = desc;
		d->queues[a].vq.avail_gpa = avail;
		d->queues[a].vq.used_gpa = used;
		virtio_queue_enable(d, a);
		break;
	}
	case FUZZ_OP_BEGIN:
		d->legacy_driver = f->legacy;
		virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
		virtio_set_driver_features(d, 0, f->features[0]);
		if (f->legacy)
			break;
		virtio_set_driver_features(d, 1, f->features[1]);
		virtio_set_status(d, d->status | VIRTIO_STATUS_FEATURES_OK);
		break;
	case FUZZ_OP_GO:
		virtio_set_status(d, d->status | VIRTIO_STATUS_DRIVER_OK);
		break;
	case FUZZ_OP_STATUS:
		virtio_set_status(d, (uint8_t)fuzz_take(f, 1));
		break;
	case FUZZ_OP_FEATURES: {
		uint32_t v = fuzz_take(f, 4);

		/* Only words 0 and 1 reach the core: both transports drop other selectors (and
		 * virtio_set_driver_features shifts by 32 * sel before its own check). */
		if (a < 2)
			virtio_set_driver_features(d, a, v);
		break;
	}
	default:
		break;
	}
}

/* Does shared operation op with argument a, its bytes taken from the operations. */
static inline void fuzz_driver_op(struct fuzz_driver *f, enum fuzz_op op, unsigned a)
{
	switch (op) {
	case FUZZ_OP_OWN:
		return;
	case FUZZ_OP_KICK:
		virtio_process(f->dev, a);
		return;
	case FUZZ_OP_RUN:
		for (unsigned i = 0; i <= a; i++)
			event_loop_run_once(&f->loop, 0);
		return;
	case FUZZ_OP_POKE: {
		uint32_t addr = fuzz_take(f, 2), n = fuzz_take(f, 1);

		for (uint32_t i = 0; i < n; i++) {
			uint8_t v = (uint8_t)fuzz_take(f, 1);

			if (addr + i < f->mem.ram_size)
				f->ram[addr + i] = v;
		}
		return;
	}
	default:
		pthread_mutex_lock(&f->dev->lock);
		fuzz_driver_write(f, op, a);
		pthread_mutex_unlock(&f->dev->lock);
	}
}

/* The numbering fuzz_scsictl and fuzz_balloon give their operations: 0 KICK, 1 DOORBELL
 * (virtio_kick(a): served when the loop next runs), 2 RUN, 4 RESET, 5 STOP, 6 ENABLE, 7 BEGIN,
 * 8 GO, 9 STATUS, 10 CONFIG (off, one byte, then a bytes written to the configuration area at
 * off), 11 POKE, 12 FEATURES; 3 and 13-15 are each harness's own. Does the operation whose byte
 * is op and returns true, or returns false for one of the harness's own. */
static inline bool fuzz_device_op(struct fuzz_driver *f, uint8_t op)
{
	static const uint8_t shared[16] = {
		[0] = FUZZ_OP_KICK,   [2] = FUZZ_OP_RUN,   [4] = FUZZ_OP_RESET, [5] = FUZZ_OP_STOP,
		[6] = FUZZ_OP_ENABLE, [7] = FUZZ_OP_BEGIN, [8] = FUZZ_OP_GO,    [9] = FUZZ_OP_STATUS,
		[11] = FUZZ_OP_POKE,  [12] = FUZZ_OP_FEATURES,
	};
	struct virtio_dev *d = f->dev;
	unsigned a = op >> 4;
	uint8_t buf[16];

	switch (op & 15) {
	case 1:
		virtio_kick(d, a);
		return true;
	case 10: {
		uint32_t off = fuzz_take(f, 1);

		for (unsigned i = 0; i < a; i++)
			buf[i] = (uint8_t)fuzz_take(f, 1);
		pthread_mutex_lock(&d->lock);
		virtio_config_write(d, off, buf, a);
		pthread_mutex_unlock(&d->lock);
		return true;
	}
	default:
		if (shared[op & 15] == FUZZ_OP_OWN)
			return false;
		fuzz_driver_op(f, shared[op & 15], a);
		return true;
	}
}

#endif
