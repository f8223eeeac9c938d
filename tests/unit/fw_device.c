#include "fw_device.h"
#include "memory.h"
#include "virtio/virtqueue.h"

#include <errno.h>
#include <stdlib.h>

struct fw_device {
	struct guest_mem mem;
	struct virtq q;
	struct virtq_elem *held; /* q.size chains taken in one turn */
	struct virtq_used *used;
	unsigned bad;
};

struct fw_device *fw_device_new(void *ram, size_t len)
{
	struct fw_device *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->mem.r[0] = (struct gmem_region){ .gpa = (uintptr_t)ram, .size = len, .host = ram };
	d->mem.nr = 1;
	d->mem.ram_size = len;
	return d;
}

void fw_device_free(struct fw_device *d)
{
	free(d->held);
	free(d->used);
	free(d);
}

int fw_device_enable(struct fw_device *d, uint64_t features, uint16_t size, uint64_t desc,
		     uint64_t driver, uint64_t device)
{
	free(d->held);
	free(d->used);
	d->held = calloc(size, sizeof(*d->held));
	d->used = calloc(size, sizeof(*d->used));
	if (!d->held || !d->used)
		return -ENOMEM;
	virtq_reset(&d->q);
	d->q.size = size;
	d->q.desc_gpa = desc;
	d->q.avail_gpa = driver;
	d->q.used_gpa = device;
	return virtq_enable(&d->q, &d->mem, features);
}

/* Checks the readable bytes and fills the writable ones; returns the bytes written. */
static uint32_t serve(struct fw_device *d, const struct virtq_elem *e)
{
	uint8_t first = 0, k = 0;
	uint32_t fill = e->in_len > 1 ? (uint32_t)e->in_len - 1 : (uint32_t)e->in_len, done = 0;

	for (unsigned i = 0; i < e->out_num; i++) {
		const uint8_t *p = e->iov[i].iov_base;

		for (size_t j = 0; j < e->iov[i].iov_len; j++, k++) {
			if (i == 0 && j == 0)
				first = p[0];
			d->bad += p[j] != (uint8_t)(first + k);
		}
	}
	for (unsigned i = e->out_num; i < e->out_num + e->in_num && done < fill; i++) {
		uint8_t *p = e->iov[i].iov_base;

		for (size_t j = 0; j < e->iov[i].iov_len && done < fill; j++, done++)
			p[j] = (uint8_t)(0x5a + done);
	}
	return fill;
}

int fw_device_run(struct fw_device *d, bool reverse, void (*between)(void *), void *ctx,
		  bool *notify, unsigned *pending)
{
	int served = 0, ret = 0;

	for (;;) {
		unsigned n = 0;

		while (n < d->q.size && (ret = virtq_pop(&d->q, &d->held[n])) == 1)
			n++;
		if (ret < 0)
			return ret;
		for (unsigned i = 0; i < n; i++) {
			unsigned k = reverse ? n - 1 - i : i;

			d->used[k] = virtq_used_of(&d->held[k], serve(d, &d->held[k]));
			virtq_push_many(&d->q, &d->used[k], 1);
			between(ctx);
		}
		served += (int)n;
		if (!virtq_enable_notify(&d->q, true))
			break;
	}
	*pending = d->q.pending_used;
	*notify = virtq_should_notify(&d->q);
	return served;
}

unsigned fw_device_bad_bytes(const struct fw_device *d)
{
	return d->bad;
}
