/*
 * virtio-test: the firmware test guest for virtio, and firmware/virtio/'s drivers at work.
 *
 * Finds an entropy device, a console and a block device on the transport its command line names,
 * drives them with split or packed rings, with indirect descriptors and event index on and off,
 * checks what comes back, prints a line per check on the UART and leaves through the exit device:
 * 0 once every check passed, else the number of the check that failed (the table below). It is
 * entered like hello.c: in 64-bit mode, rsi pointing at boot_params.
 *
 * tests/guest/run-all.sh boots it on each transport mode with `--rng --console file=F --disk
 * path=IMG`, IMG a 1 MiB image of "HOSTDATA\n" lines, and checks on the host what the guest left
 * in F and IMG.
 *
 * Command line, words in any order:
 *   transport=pci|mmio    where the devices are (default pci)
 *   legacy=on|off         what vmm was given with --legacy: transitional PCI devices, virtio-mmio
 *                         version 1 (default off). Checked: a device of the other kind fails 10,
 *                         20 or 30
 *   driver=modern|legacy  the interface to drive them through (default: legacy with legacy=on).
 *                         A transitional PCI device has both; a version 1 window only the
 *                         legacy one
 *   ring=split|packed     the ring layout (default split; the legacy interface knows split only)
 *   indirect=on|off       VIRTIO_F_INDIRECT_DESC; when not given, rounds with and without
 *   event_idx=on|off      VIRTIO_F_EVENT_IDX; likewise
 *   sectors=N             the disk's size in 512-byte sectors, to check its capacity against
 *   console=...           ignored (vmm's default command line is console=ttyS0)
 *
 * Each round (up to four: indirect x event_idx) resets the three devices and sets them up again
 * with its features, then:
 *   entropy  2 x size + 5 requests in batches that leave three slots free, so that the ring goes
 *            round several times and no lap ends where a batch does; every buffer comes back once
 *            with 1 to 16 bytes, and not all the bytes are equal. The ISR shows no used buffer
 *            notification while they are suppressed (the driver polls), one when the driver asks
 *            for one, and none once it says so again (rng_request_isr says why it is exact);
 *            virtio_rng_read works
 *   console  "virtio-test round N through the console: ..." to port 0, given back by the device
 *   block    capacity (not read-only; = sectors= when given); sector 0 holds the host's
 *            "HOSTDATA\n" lines; "virtio-test round N: ..." written to sector N, read back into
 *            two buffers of 256 bytes (a chain of four), the same; a flush
 * Rings are 8 entries (split) or 7 (packed, which need not be a power of 2: laps then end inside
 * chains too); a legacy PCI device says its own size (256).
 *
 * Exit status:
 *    0  every check passed
 *    1  the command line is not understood
 *   10  entropy device: none found on the transport, of the kind legacy= says
 *   11  entropy: feature negotiation (a ring feature asked for not offered; FEATURES_OK refused)
 *   12  entropy: queue setup or DRIVER_OK (queue absent or refused; the device needs reset)
 *   13  entropy: requests (a buffer not given back, given back twice, with 0 or too many bytes)
 *   14  entropy: every byte the same
 *   15  entropy: no used buffer notification although the driver asked for one
 *   16  entropy: a used buffer notification although the driver suppressed them
 *   20  console: none found
 *   21  console: feature negotiation
 *   22  console: queue setup or DRIVER_OK
 *   23  console: the line written to port 0 not given back
 *   30  block device: none found
 *   31  block: feature negotiation
 *   32  block: queue setup or DRIVER_OK
 *   33  block: capacity not as the host made the disk, or read-only
 *   34  block: reading sector 0 failed, or it is not the host's data
 *   35  block: writing a sector failed
 *   36  block: reading it back failed, or it is not what was written
 *   37  block: flush failed (or FLUSH not offered)
 */
#include <stdbool.h>
#include <stdint.h>

#include "lib/io.h"
#include "lib/mem.h"
#include "lib/print.h"
#include "virtio/blk.h"
#include "virtio/console.h"
#include "virtio/rng.h"

#define BP_CMD_LINE_PTR 0x228 /* struct boot_params: hdr.cmd_line_ptr */
#define MAX_DEVICES     16
#define RNG_BUF         16
#define LINE            128

struct options {
	bool mmio, legacy, driver_legacy, packed;
	int indirect, event_idx; /* -1: both, one round each */
	uint64_t sectors;        /* 0: not given */
};

/* Our own stack, 64 KiB: vmm's is a few KiB below boot_params. */
uint8_t fw_stack[65536] __attribute__((aligned(16)));
static unsigned passed;

__attribute__((noreturn)) void fw_main(uint64_t unused, const uint8_t *boot_params);

__asm__(".section .text.start, \"ax\"\n"
	".global _start\n"
	"_start:\n"
	"	lea fw_stack+65536(%rip), %rsp\n"
	"	call fw_main\n" /* rsi, boot_params, is still its second argument */
	".previous\n");

/* One check: a line on the UART, and on failure the exit with its status. */
__attribute__((format(printf, 3, 4))) static void check(bool ok, uint8_t status,
							const char *fmt, ...)
{
	va_list ap;

	print("virtio-test: %s ", ok ? "ok:" : "FAIL:");
	va_start(ap, fmt);
	vprint(fmt, ap);
	va_end(ap);
	print("\n");
	if (!ok) {
		print("virtio-test: exit status %u\n", status);
		fw_exit(status);
	}
	passed++;
}

/* Whether word (up to a blank) is key=value; *value is what follows '='. */
static bool option(const char *word, const char *key, const char **value)
{
	while (*key)
		if (*word++ != *key++)
			return false;
	if (*word++ != '=')
		return false;
	*value = word;
	return true;
}

static bool is(const char *value, const char *want)
{
	while (*want)
		if (*value++ != *want++)
			return false;
	return *value == ' ' || *value == '\0';
}

/* on/off into *b (a bool or -1 meaning "both"). */
static bool on_off(const char *v, int *b)
{
	if (is(v, "on") || is(v, "off")) {
		*b = is(v, "on");
		return true;
	}
	return false;
}

static bool parse(const char *s, struct options *o)
{
	int legacy = 0, packed = 0, driver = -1;
	const char *v;

	*o = (struct options){ .indirect = -1, .event_idx = -1 };
	while (*s) {
		bool ok = true;

		if (*s == ' ') {
			s++;
			continue;
		}
		if (option(s, "console", &v))
			ok = true; /* vmm's default command line, console=ttyS0: not ours */
		else if (option(s, "transport", &v))
			ok = (o->mmio = is(v, "mmio")) || is(v, "pci");
		else if (option(s, "legacy", &v))
			ok = on_off(v, &legacy);
		else if (option(s, "driver", &v))
			ok = (driver = is(v, "legacy")) || is(v, "modern");
		else if (option(s, "ring", &v))
			ok = (packed = is(v, "packed")) || is(v, "split");
		else if (option(s, "indirect", &v))
			ok = on_off(v, &o->indirect);
		else if (option(s, "event_idx", &v))
			ok = on_off(v, &o->event_idx);
		else if (option(s, "sectors", &v))
			for (o->sectors = 0; *v >= '0' && *v <= '9'; v++)
				o->sectors = o->sectors * 10 + (uint64_t)(*v - '0');
		else
			ok = false;
		if (!ok) {
			print("virtio-test: not understood on the command line: %s\n", s);
			return false;
		}
		while (*s && *s != ' ')
			s++;
	}
	o->legacy = legacy;
	o->packed = packed;
	o->driver_legacy = driver < 0 ? o->legacy : driver;
	/* A version 1 window has only the legacy interface, and the legacy interface only split
	 * rings. */
	if ((o->mmio && o->driver_legacy != o->legacy) || (o->driver_legacy && !o->legacy) ||
	    (o->driver_legacy && o->packed)) {
		print("virtio-test: no such combination: transport=%s legacy=%s driver=%s "
		      "ring=%s\n",
		      o->mmio ? "mmio" : "pci", o->legacy ? "on" : "off",
		      o->driver_legacy ? "legacy" : "modern", o->packed ? "packed" : "split");
		return false;
	}
	return true;
}

static const char *on(bool b)
{
	return b ? "on" : "off";
}

/* The first device of the type, which must be of the kind legacy= says. */
static struct virtio_dev *find(struct virtio_dev *devs, int n, uint16_t id, const struct options *o,
			       uint8_t status)
{
	const char *kind = o->mmio ? (o->legacy ? "version 1" : "version 2")
				   : (o->legacy ? "transitional" : "modern");

	for (int i = 0; i < n; i++) {
		bool right = devs[i].legacy_kind == o->legacy;

		if (devs[i].id != id)
			continue;
		check(right, status, "%s: found at %s %s, %s, driven by %s", virtio_type_name(id),
		      o->mmio ? "mmio" : "pci", devs[i].where,
		      right ? kind : "not of the kind asked for", devs[i].t->name);
		return &devs[i];
	}
	check(false, status, "%s: no %s device on %s", virtio_type_name(id), kind,
	      o->mmio ? "mmio" : "pci");
	return NULL;
}

/* A driver's init: its result says which step failed; status + 1 features, status + 2 the
 * rest. */
static void check_setup(int ret, struct virtio_dev *d, struct vq *vq, uint8_t status)
{
	check(ret != VIRTIO_ERR_FEATURES, status + 1, "%s: features %#lx", virtio_type_name(d->id),
	      d->features);
	check(ret == 0, status + 2, "%s: queues of %u and DRIVER_OK (error %d)",
	      virtio_type_name(d->id), vq->size, ret);
}

/* One entropy request, and the ISR once it is used, read before the buffer is taken back: taking
 * it back moves the driver's event index along, which would race the device's decision on this
 * one. vmm's entropy device uses the buffer and decides on the notification in one turn under the
 * device's lock, which every register access takes too: so this ISR read comes after the
 * decision. Returns the ISR; *ret: 0 or the error. */
static uint8_t rng_request_isr(struct virtio_rng *r, uint8_t *buf, int *ret)
{
	struct vq_buf b = { .addr = (uintptr_t)buf, .len = RNG_BUF, .device_writes = true };
	void *token;
	uint32_t len;
	uint8_t isr;

	if ((*ret = vq_add_chain(&r->vq, &b, 1, buf)))
		return 0;
	vq_kick(&r->vq);
	for (unsigned spins = 1; !vq_has_used(&r->vq); spins++) {
		if (spins % 4096 == 0 && virtio_needs_reset(r->dev)) {
			*ret = VIRTIO_ERR_DEVICE;
			return 0;
		}
		cpu_relax();
	}
	isr = r->dev->t->isr(r->dev);
	*ret = vq_wait_used(&r->vq, &token, &len);
	if (!*ret && (token != buf || len == 0 || len > RNG_BUF))
		*ret = VIRTIO_ERR_RING;
	return isr;
}

static void test_rng(struct virtio_rng *r)
{
	struct vq *vq = &r->vq;
	unsigned total = 2u * vq->size + 5, batch = vq->size > 3 ? vq->size - 3u : 1u, done = 0;
	uint8_t (*buf)[RNG_BUF] = mem_alloc((size_t)vq->size * RNG_BUF, 16), first = 0;
	bool all_equal = true;
	uint64_t bytes = 0;
	uint8_t isr;
	int ret = 0;

	while (done < total && ret == 0) {
		unsigned k = total - done < batch ? total - done : batch;

		for (unsigned i = 0; i < k && ret == 0; i++) {
			struct vq_buf b = { .addr = (uintptr_t)buf[i], .len = RNG_BUF,
					    .device_writes = true };

			ret = vq_add_chain(vq, &b, 1, buf[i]);
		}
		vq_kick(vq);
		for (unsigned i = 0; i < k && ret == 0; i++) {
			void *token;
			uint32_t len;
			unsigned slot;

			if ((ret = vq_wait_used(vq, &token, &len)))
				break;
			slot = (unsigned)(((uint8_t *)token - buf[0]) / RNG_BUF);
			if (slot >= k || len == 0 || len > RNG_BUF) {
				ret = VIRTIO_ERR_RING;
				break;
			}
			if (!bytes)
				first = buf[slot][0];
			for (unsigned j = 0; j < len; j++)
				all_equal &= buf[slot][j] == first;
			bytes += len;
			done++;
		}
	}
	check(ret == 0, 13,
	      "entropy: %u requests in batches of %u through a ring of %u, %lu bytes, %u kicks "
	      "(error %d)",
	      done, batch, vq->size, bytes, vq->kicks, ret);
	check(!all_equal, 14, "entropy: the bytes are not all %#x", first);
	/* Notifications: the ISR says whether the device sent one since it was last read. */
	isr = r->dev->t->isr(r->dev);
	check(!(isr & VIRTIO_ISR_QUEUE), 16, "entropy: none while suppressed (ISR %#x)", isr);
	vq_interrupts(vq, true);
	isr = rng_request_isr(r, buf[0], &ret);
	check(ret == 0 && (isr & VIRTIO_ISR_QUEUE), 15,
	      "entropy: a used buffer notification when asked for (ISR %#x, error %d)", isr, ret);
	vq_interrupts(vq, false);
	isr = rng_request_isr(r, buf[0], &ret);
	check(ret == 0 && !(isr & VIRTIO_ISR_QUEUE), 16,
	      "entropy: none once suppressed again (ISR %#x, error %d)", isr, ret);
	/* And the driver's own call. */
	ret = virtio_rng_read(r, buf[0], RNG_BUF);
	check(ret > 0 && ret <= RNG_BUF, 13, "entropy: virtio_rng_read gave %d bytes", ret);
}

static void test_console(struct virtio_console *c, unsigned round, const char *mode)
{
	char *line = mem_alloc(LINE, 16);
	unsigned len = sprint(line, LINE, "virtio-test round %u through the console: %s\n", round,
			      mode);
	int ret = virtio_console_write(c, line, len);

	check(ret == 0, 23, "console: %u bytes to port 0 (error %d)", len, ret);
}

/* Sector 0 as tests/guest/run-all.sh's mkimage makes it: "HOSTDATA\n" again and again. */
static bool host_data(const uint8_t *p)
{
	for (unsigned i = 0; i < SECTOR; i++)
		if (p[i] != "HOSTDATA\n"[i % 9])
			return false;
	return true;
}

static void test_blk(struct virtio_blk *b, const struct options *o, unsigned round,
		     const char *mode)
{
	uint8_t *out = mem_alloc(SECTOR, 16), *in = mem_alloc(SECTOR, 16);
	struct vq_buf whole = { .addr = (uintptr_t)out, .len = SECTOR },
		      one = { .addr = (uintptr_t)in, .len = SECTOR },
		      two[2] = { { .addr = (uintptr_t)in, .len = SECTOR / 2 },
				 { .addr = (uintptr_t)in + SECTOR / 2, .len = SECTOR / 2 } };
	unsigned len;
	int st;

	check(!virtio_has(b->dev, VIRTIO_BLK_F_RO) && b->capacity >= 1 + round &&
		      (!o->sectors || b->capacity == o->sectors),
	      33, "block: capacity %lu sectors%s", b->capacity,
	      virtio_has(b->dev, VIRTIO_BLK_F_RO) ? ", read-only" : "");
	st = virtio_blk_rw(b, false, 0, &one, 1);
	check(st == VIRTIO_BLK_S_OK && host_data(in), 34,
	      "block: sector 0 holds the host's data (status %d)", st);
	/* The round's line, then blanks, then a newline: a sector the host can grep. */
	len = sprint((char *)out, SECTOR, "virtio-test round %u: %s\n", round, mode);
	memset(out + len, ' ', SECTOR - 1 - len);
	out[SECTOR - 1] = '\n';
	st = virtio_blk_rw(b, true, round, &whole, 1);
	check(st == VIRTIO_BLK_S_OK, 35, "block: sector %u written (status %d)", round, st);
	memset(in, 0, SECTOR);
	st = virtio_blk_rw(b, false, round, two, 2);
	check(st == VIRTIO_BLK_S_OK && memcmp(in, out, SECTOR) == 0, 36,
	      "block: sector %u read back in two halves, the same (status %d)", round, st);
	st = virtio_blk_flush(b);
	check(st == VIRTIO_BLK_S_OK, 37, "block: flush (status %d)", st);
}

static void round_run(struct virtio_dev *rd, struct virtio_dev *cd, struct virtio_dev *bd,
		      const struct options *o, unsigned round, bool indirect, bool event_idx)
{
	static struct virtio_rng rng;
	static struct virtio_console con;
	static struct virtio_blk blk;
	struct virtio_ring_opts ring = {
		.packed = o->packed,
		.indirect = indirect,
		.event_idx = event_idx,
		.size = o->packed ? 7 : 8,
	};
	char mode[LINE];
	size_t mark = mem_mark();

	sprint(mode, sizeof(mode), "%s %s driver, %s ring, indirect=%s event_idx=%s",
	       o->mmio ? "mmio" : "pci", o->driver_legacy ? "legacy" : "modern",
	       o->packed ? "packed" : "split", on(indirect), on(event_idx));
	print("virtio-test: round %u: %s\n", round, mode);
	check_setup(virtio_rng_init(&rng, rd, &ring), rd, &rng.vq, 10);
	test_rng(&rng);
	check_setup(virtio_console_init(&con, cd, &ring), cd, &con.tx, 20);
	test_console(&con, round, mode);
	check_setup(virtio_blk_init(&blk, bd, &ring), bd, &blk.vq, 30);
	test_blk(&blk, o, round, mode);
	/* The devices let go of the rings before their memory goes back for the next round. */
	virtio_reset(rd);
	virtio_reset(cd);
	virtio_reset(bd);
	mem_release(mark);
}

void fw_main(uint64_t unused, const uint8_t *boot_params)
{
	uint32_t cmdline_addr = *(const uint32_t *)(boot_params + BP_CMD_LINE_PTR);
	const char *cmdline = (const char *)(uintptr_t)cmdline_addr;
	static struct virtio_dev devs[MAX_DEVICES];
	struct virtio_dev *rd, *cd, *bd;
	struct options o;
	unsigned round = 0;
	int n;

	print("virtio-test: command line: %s\n", cmdline);
	if (!parse(cmdline, &o))
		fw_exit(1);
	n = o.mmio ? virtio_mmio_find(devs, MAX_DEVICES)
		   : virtio_pci_find(devs, MAX_DEVICES, o.driver_legacy);
	for (int i = 0; i < n; i++)
		print("virtio-test: %s %s: %s, %s\n", o.mmio ? "mmio" : "pci", devs[i].where,
		      virtio_type_name(devs[i].id), devs[i].t->name);
	rd = find(devs, n, VIRTIO_ID_RNG, &o, 10);
	cd = find(devs, n, VIRTIO_ID_CONSOLE, &o, 20);
	bd = find(devs, n, VIRTIO_ID_BLOCK, &o, 30);
	for (int event_idx = 0; event_idx < 2; event_idx++)
		for (int indirect = 0; indirect < 2; indirect++)
			if ((o.indirect < 0 || o.indirect == indirect) &&
			    (o.event_idx < 0 || o.event_idx == event_idx))
				round_run(rd, cd, bd, &o, ++round, indirect, event_idx);
	print("virtio-test: all %u checks passed\n", passed);
	fw_exit(0);
}
