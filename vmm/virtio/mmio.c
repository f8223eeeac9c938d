/* virtio-mmio: the register window (VIRTIO 1.x 4.2.2, legacy 4.2.4) in front of the device core.
 *
 * Every register access arrives on a vCPU thread and runs under d->lock. The driver controls
 * every value written here: selectors are checked against the queue count before use, a queue's
 * size and addresses can change only while it is disabled, and a ring the driver places outside
 * RAM is refused by the core (NEEDS_RESET), never dereferenced here. */
#include "virtio/mmio.h"
#include "arch.h"
#include "log.h"
#include "virtio/virtio.h"
#include "vm.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Linux writes PAGE_SIZE to both before it sets up a legacy queue; for a driver that does not,
 * 4 KiB is the only sensible guess. */
#define LEGACY_DEFAULT_PAGE  4096
#define LEGACY_DEFAULT_ALIGN 4096

struct virtio_mmio_queue {
	uint32_t align; /* legacy QueueAlign */
	uint32_t pfn;   /* legacy QueuePFN: non-zero while the queue is in use */
	bool ioeventfd; /* its doorbell is bound */
};

static void mmio_signal(struct virtio_dev *d, int q)
{
	virtio_raise_isr(d, q >= 0 ? VIRTIO_ISR_QUEUE : VIRTIO_ISR_CONFIG);
}

/* Transport state back to initial: at create and on every device reset. */
static void transport_reset(struct virtio_mmio *t)
{
	t->device_features_sel = 0;
	t->driver_features_sel = 0;
	t->queue_sel = 0;
	t->shm_sel = 0;
	t->guest_page_size = LEGACY_DEFAULT_PAGE;
	for (unsigned q = 0; q < t->dev->nr_queues; q++) {
		t->queues[q].align = LEGACY_DEFAULT_ALIGN;
		t->queues[q].pfn = 0;
	}
}

static void mmio_reset(struct virtio_dev *d)
{
	struct virtio_mmio *t = d->transport_priv;

	transport_reset(t);
	/* A version 1 window only ever has a legacy driver behind it, even should the core's reset
	 * ever clear the flag (as a transitional PCI device, whose next driver may be modern, would
	 * want). */
	if (t->legacy)
		d->legacy = d->legacy_driver = true;
}

static const struct virtio_transport_ops mmio_ops = {
	.signal = mmio_signal,
	.reset = mmio_reset,
};

/* The selected queue, or NULL when QueueSel is out of range. */
static struct virtio_queue *selected(struct virtio_mmio *t)
{
	struct virtio_dev *d = t->dev;

	return t->queue_sel < d->nr_queues ? &d->queues[t->queue_sel] : NULL;
}

/* Disables one queue (QueueReady or QueuePFN written 0), as a device reset would. */
static void queue_stop(struct virtio_mmio *t, struct virtio_queue *vq)
{
	virtio_queue_stop(t->dev, vq->index);
	t->queues[vq->index].pfn = 0;
}

/* Legacy feature words: a legacy device has no feature bits from 32 up (VERSION_1 is exactly
 * what a legacy driver cannot accept), so only word 0 exists, as in QEMU's legacy window. */
static uint32_t features_read(struct virtio_mmio *t)
{
	if (t->device_features_sel > (t->legacy ? 0U : 1U))
		return 0;
	if (t->legacy)
		return virtio_get_legacy_features(t->dev);
	return virtio_get_features(t->dev, t->device_features_sel);
}

static void features_write(struct virtio_mmio *t, uint32_t val)
{
	if (t->driver_features_sel > (t->legacy ? 0U : 1U))
		return;
	virtio_set_driver_features(t->dev, t->driver_features_sel, val);
}

static bool power_of_2(uint32_t v)
{
	return v && !(v & (v - 1));
}

/* QueuePFN: the legacy split ring lies in one piece from pfn * GuestPageSize (2.7.2): the
 * descriptor table, the available ring with used_event, then at the next QueueAlign boundary the
 * used ring. The core checks that all of it is RAM. */
static void legacy_queue_pfn(struct virtio_mmio *t, struct virtio_queue *vq, uint32_t pfn)
{
	struct virtio_mmio_queue *mq = &t->queues[vq->index];
	uint64_t desc, avail, used, size = vq->vq.size;

	if (pfn == 0) {
		queue_stop(t, vq);
		return;
	}
	if (vq->vq.enabled)
		return; /* the driver must write 0 first */
	if (!power_of_2(t->guest_page_size) || !power_of_2(mq->align)) {
		virtio_fail(t->dev, "queue %u: GuestPageSize %u or QueueAlign %u not a power of 2",
			    vq->index, t->guest_page_size, mq->align);
		return;
	}
	desc = (uint64_t)pfn * t->guest_page_size;
	avail = desc + 16 * size;
	used = (avail + 2 * (3 + size) + mq->align - 1) & ~((uint64_t)mq->align - 1);
	vq->vq.desc_gpa = desc;
	vq->vq.avail_gpa = avail;
	vq->vq.used_gpa = used;
	if (virtio_queue_enable(t->dev, vq->index) == 0)
		mq->pfn = pfn;
}

/* Registers below Config are 32 bits wide and 32-bit aligned (4.2.2.2). */
static uint32_t reg_read(struct virtio_mmio *t, uint64_t off)
{
	struct virtio_dev *d = t->dev;
	struct virtio_queue *vq = selected(t);

	switch (off) {
	case VIRTIO_MMIO_MAGIC_VALUE:
		return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION:
		return t->legacy ? 1 : 2;
	case VIRTIO_MMIO_DEVICE_ID:
		return d->ops->device_id;
	case VIRTIO_MMIO_VENDOR_ID:
		return VIRTIO_MMIO_VENDOR;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		return features_read(t);
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
		return vq ? vq->max_size : 0;
	case VIRTIO_MMIO_INTERRUPT_STATUS:
		return d->isr;
	case VIRTIO_MMIO_STATUS:
		return d->status;
	}
	if (t->legacy) {
		switch (off) {
		case VIRTIO_MMIO_QUEUE_PFN:
			return vq ? t->queues[vq->index].pfn : 0;
		}
		return 0;
	}
	switch (off) {
	case VIRTIO_MMIO_QUEUE_READY:
		return vq ? vq->vq.enabled : 0;
	case VIRTIO_MMIO_SHM_LEN_LOW:
	case VIRTIO_MMIO_SHM_LEN_HIGH:
	case VIRTIO_MMIO_SHM_BASE_LOW:
	case VIRTIO_MMIO_SHM_BASE_HIGH:
		return 0xffffffff; /* no shared memory regions: length and base read as -1 */
	case VIRTIO_MMIO_CONFIG_GENERATION:
		return virtio_config_generation(d);
	}
	return 0; /* write-only or reserved (QueueReset: VIRTIO_F_RING_RESET is not offered) */
}

static void set_low(uint64_t *v, uint32_t val)
{
	*v = (*v & ~0xffffffffULL) | val;
}

static void set_high(uint64_t *v, uint32_t val)
{
	*v = (*v & 0xffffffffULL) | (uint64_t)val << 32;
}

/* Queue registers of a modern window, ignored while the queue is enabled (4.2.2.3). */
static void queue_write(struct virtio_mmio *t, struct virtio_queue *vq, uint64_t off, uint32_t val)
{
	struct virtq *q = &vq->vq;

	if (off == VIRTIO_MMIO_QUEUE_READY) {
		if (val && !q->enabled)
			virtio_queue_enable(t->dev, vq->index);
		else if (!val && q->enabled)
			queue_stop(t, vq);
		return;
	}
	if (q->enabled)
		return;
	switch (off) {
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
		set_low(&q->desc_gpa, val);
		break;
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
		set_high(&q->desc_gpa, val);
		break;
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
		set_low(&q->avail_gpa, val);
		break;
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
		set_high(&q->avail_gpa, val);
		break;
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
		set_low(&q->used_gpa, val);
		break;
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
		set_high(&q->used_gpa, val);
		break;
	}
}

static void reg_write(struct virtio_mmio *t, uint64_t off, uint32_t val)
{
	struct virtio_dev *d = t->dev;
	struct virtio_queue *vq = selected(t);

	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
		t->device_features_sel = val;
		return;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		features_write(t, val);
		return;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
		t->driver_features_sel = val;
		return;
	case VIRTIO_MMIO_QUEUE_SEL:
		t->queue_sel = val;
		return;
	case VIRTIO_MMIO_QUEUE_NUM:
		/* Saturated rather than truncated, so that enabling sees a size above the maximum
		 * and refuses it (NEEDS_RESET) instead of a wrapped value that happens to fit. */
		if (vq && !vq->vq.enabled)
			vq->vq.size = val > UINT16_MAX ? UINT16_MAX : (uint16_t)val;
		return;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		/* Reached only when no ioeventfd caught the write. */
		if (val < d->nr_queues)
			virtio_kick(d, val);
		return;
	case VIRTIO_MMIO_INTERRUPT_ACK:
		/* The line itself drops at the guest's EOI once no bit is left (resample). */
		d->isr &= (uint8_t)~val;
		return;
	case VIRTIO_MMIO_STATUS:
		virtio_set_status(d, (uint8_t)val);
		return;
	}
	if (t->legacy) {
		switch (off) {
		case VIRTIO_MMIO_GUEST_PAGE_SIZE:
			t->guest_page_size = val;
			break;
		case VIRTIO_MMIO_QUEUE_ALIGN:
			if (vq)
				t->queues[vq->index].align = val;
			break;
		case VIRTIO_MMIO_QUEUE_PFN:
			if (vq)
				legacy_queue_pfn(t, vq, val);
			break;
		}
		return;
	}
	switch (off) {
	case VIRTIO_MMIO_SHM_SEL:
		t->shm_sel = val;
		return;
	case VIRTIO_MMIO_QUEUE_READY:
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
		if (vq)
			queue_write(t, vq, off, val);
		return;
	}
}

static void mmio_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct virtio_mmio *t = opaque;
	struct virtio_dev *d = t->dev;
	uint32_t val;

	pthread_mutex_lock(&d->lock);
	if (off >= VIRTIO_MMIO_CONFIG) {
		/* The device area: byte, word and dword accesses at any offset; the core bounds them
		 * against the type's config length. */
		if (len == 1 || len == 2 || len == 4) {
			if (is_write)
				virtio_config_write(d, (uint32_t)(off - VIRTIO_MMIO_CONFIG), data, len);
			else
				virtio_config_read(d, (uint32_t)(off - VIRTIO_MMIO_CONFIG), data, len);
			goto out;
		}
	} else if (len == 4 && !(off & 3)) {
		if (is_write) {
			memcpy(&val, data, 4);
			reg_write(t, off, val);
		} else {
			val = reg_read(t, off);
			memcpy(data, &val, 4);
		}
		goto out;
	}
	if (!t->bad_access_logged) {
		log_debug("%s: ignoring %u-byte %s at virtio-mmio offset %#llx", d->name, len,
			  is_write ? "write" : "read", (unsigned long long)off);
		t->bad_access_logged = true;
	}
	if (!is_write)
		memset(data, 0, len);
out:
	pthread_mutex_unlock(&d->lock);
}

/* Logs a failed KVM binding: expected without a VM (unit tests), worth a warning otherwise. */
static void binding_failed(struct virtio_mmio *t, const char *what, int err)
{
	if (t->vm->vm_fd < 0)
		log_debug("%s: no %s (%s): no KVM VM", t->dev->name, what, strerror(-err));
	else
		log_warn("%s: %s: %s", t->dev->name, what, strerror(-err));
}

int virtio_mmio_create(struct virtio_mmio *t, struct vm *vm, struct virtio_dev *d, uint64_t base,
		       uint32_t gsi, bool legacy)
{
	int ret;

	memset(t, 0, sizeof(*t));
	t->vm = vm;
	t->dev = d;
	t->base = base;
	t->gsi = gsi;
	t->legacy = legacy;
	t->queues = calloc(d->nr_queues ? d->nr_queues : 1, sizeof(*t->queues));
	if (!t->queues)
		return -ENOMEM;

	transport_reset(t);

	ret = bus_register(&vm->mmio, base, VIRTIO_MMIO_SIZE, mmio_io, t, d->name);
	if (ret) {
		log_error("%s: cannot register virtio-mmio window at %#llx: %s", d->name,
			  (unsigned long long)base, strerror(-ret));
		goto fail;
	}
	t->registered = true;

	pthread_mutex_lock(&d->lock);
	d->transport = &mmio_ops;
	d->transport_priv = t;
	if (legacy)
		d->legacy = d->legacy_driver = true;
	pthread_mutex_unlock(&d->lock);

	/* Each queue's doorbell is the same register with the queue index as the value. Without
	 * the binding the write traps and reaches mmio_io, which kicks the same eventfd. */
	for (unsigned q = 0; q < d->nr_queues; q++) {
		uint64_t match = q;

		ret = vm_ioeventfd(vm, base + VIRTIO_MMIO_QUEUE_NOTIFY, 4, false, &match,
				   d->queues[q].kick_fd, true);
		if (ret)
			binding_failed(t, "queue doorbell ioeventfd", ret);
		else
			t->queues[q].ioeventfd = true;
	}

	/* Level-triggered: the line stays up until the guest's EOI; the resample then lets the
	 * core raise it again while InterruptStatus is not yet acknowledged. */
	ret = vm_irqfd(vm, gsi, d->isr_fd, d->resample_fd, true);
	if (ret && vm->vm_fd >= 0) {
		log_error("%s: cannot route interrupt line %u: %s", d->name, gsi, strerror(-ret));
		goto fail;
	}
	if (ret)
		binding_failed(t, "interrupt irqfd", ret);
	else
		t->irqfd = true;
	return 0;

fail:
	virtio_mmio_destroy(t);
	return ret;
}

void virtio_mmio_destroy(struct virtio_mmio *t)
{
	struct virtio_dev *d = t->dev;

	if (!d)
		return;
	if (t->irqfd)
		vm_irqfd(t->vm, t->gsi, d->isr_fd, d->resample_fd, false);
	for (unsigned q = 0; t->queues && q < d->nr_queues; q++) {
		uint64_t match = q;

		if (t->queues[q].ioeventfd)
			vm_ioeventfd(t->vm, t->base + VIRTIO_MMIO_QUEUE_NOTIFY, 4, false, &match,
				     d->queues[q].kick_fd, false);
	}
	if (t->registered)
		bus_unregister(&t->vm->mmio, t->base);
	pthread_mutex_lock(&d->lock);
	if (d->transport_priv == t) {
		d->transport = NULL;
		d->transport_priv = NULL;
	}
	pthread_mutex_unlock(&d->lock);
	free(t->queues);
	memset(t, 0, sizeof(*t));
}
