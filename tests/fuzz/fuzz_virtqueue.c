/* libFuzzer target for the device side of the virtqueue: the guest controls the whole ring, so the
 * input is a guest memory image behind a 16-byte header that plays the transport:
 *
 *   0     features: bit 0 RING_PACKED, bit 1 EVENT_IDX, bit 2 INDIRECT_DESC
 *   1-2   queue size, le16: packed, or split with bit 15 set, use the low 11 bits as they are
 *         (bad sizes included); split otherwise uses 1 << (value % 12)
 *   3     rounds of pop/push, 1 + value % 64; bit 6 also holds chains back and pushes them
 *         in reverse
 *   4-15  desc, avail (driver area) and used (device area) addresses, le32 each
 *   16-   guest RAM at address 0, in a heap buffer of exactly its size
 *
 * Each round pops; touches the first and last byte of every buffer (so ASan sees any that is not
 * in the image); pushes; asks should_notify and enable_notify. It checks what the API promises:
 * iov counts within the queue size, byte totals, and that a broken queue stays broken. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/virtqueue.h"
#include "fuzz.h"

#define HDR      16
#define MAX_HELD 4


/* Every buffer is one range checked by gmem_ptr(); its two ends are inside the image only if
 * the whole range is. */
static void touch(const struct virtq_elem *e, unsigned size)
{
	uint64_t out = 0, in = 0;
	uint8_t b[64];

	check(e->out_num + e->in_num >= 1 && e->out_num + e->in_num <= size);
	for (unsigned i = 0; i < e->out_num + e->in_num; i++) {
		volatile uint8_t *p = e->iov[i].iov_base;
		size_t n = e->iov[i].iov_len;

		check(n > 0);
		if (i < e->out_num) {
			out += n;
			(void)p[0];
			(void)p[n - 1];
		} else {
			in += n;
			p[0] = 0xa5;
			p[n - 1] = 0x5a;
		}
	}
	check(out == e->out_len && in == e->in_len);
	check(virtq_elem_read(e, out > 8 ? out - 8 : 0, b, sizeof(b)) == (out > 8 ? 8 : out));
	memset(b, 0xee, sizeof(b));
	check(virtq_elem_write(e, in / 2, b, sizeof(b)) == (in - in / 2 < 64 ? in - in / 2 : 64));
}

static void rounds_run(struct virtq *q, unsigned rounds, bool hold)
{
	static struct virtq_elem held[MAX_HELD];
	unsigned nheld = 0;
	bool more = virtq_enable_notify(q, true);

	for (unsigned r = 0; r < rounds; r++) {
		struct virtq_elem *e = &held[nheld];
		int ret = virtq_pop(q, e);

		if (ret < 0) {
			check(q->broken && (ret == -EINVAL || ret == -EFAULT));
			check(virtq_pop(q, e) == -EIO);
			virtq_push(q, e, 1);
			check(!virtq_should_notify(q) && !virtq_enable_notify(q, true));
			return;
		}
		/* enable_notify said a chain was there: this pop must see it. */
		check(ret == 1 || !more);
		more = false;
		if (ret == 0) {
			/* Empty: give back what we hold, then look once more as a device would. */
			while (nheld)
				virtq_push(q, &held[--nheld], 1);
			virtq_should_notify(q);
			more = virtq_enable_notify(q, true);
			if (!more)
				return;
			continue;
		}
		touch(e, q->size);
		/* Hold up to MAX_HELD chains, then use them latest first: out of order. */
		if (hold && ++nheld < MAX_HELD)
			continue;
		if (!hold)
			virtq_push(q, e, (uint32_t)(e->in_len > 100 ? 100 : e->in_len));
		while (nheld)
			virtq_push(q, &held[--nheld], 0);
		if (r & 1)
			virtq_should_notify(q);
		more = virtq_enable_notify(q, r & 2) && (r & 2);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct guest_mem mem = { 0 };
	struct virtq q;
	uint64_t features = 0;
	unsigned rounds;
	uint16_t qsize;
	uint8_t *ram;
	int ret;

	if (!(ram = fuzz_ram(&mem, data, size, HDR)))
		return 0;

	if (data[0] & 1)
		features |= 1ULL << VIRTIO_F_RING_PACKED;
	if (data[0] & 2)
		features |= 1ULL << VIRTIO_F_EVENT_IDX;
	if (data[0] & 4)
		features |= 1ULL << VIRTIO_F_INDIRECT_DESC;
	qsize = le(data + 1, 2);
	if ((data[0] & 1) || (qsize & 0x8000))
		qsize &= 0x7ff;
	else
		qsize = 1u << (qsize % 12);
	rounds = 1 + data[3] % 64;

	virtq_reset(&q);
	q.size = qsize;
	q.desc_gpa = le(data + 4, 4);
	q.avail_gpa = le(data + 8, 4);
	q.used_gpa = le(data + 12, 4);
	ret = virtq_enable(&q, &mem, features);
	check(ret == 0 || ret == -EINVAL || ret == -EFAULT);
	if (ret == 0)
		rounds_run(&q, rounds, data[3] & 0x40);
	free(ram);
	return 0;
}
