/* Device initialisation and the configuration area, the same on every transport. */
#include "virtio/virtio.h"
#include "lib/io.h"
#include "virtio/virtqueue.h"

bool virtio_has(const struct virtio_dev *d, unsigned bit)
{
	return d->features & BIT(bit);
}

static void add_status(struct virtio_dev *d, uint8_t bit)
{
	d->t->set_status(d, d->t->get_status(d) | bit);
}

void virtio_reset(struct virtio_dev *d)
{
	d->t->set_status(d, 0);
	/* The reset is over when the status reads 0 again (2.4.2; for PCI a MUST, 4.1.4.3.2): the
	 * rings given to the device before are ours again only then. */
	while (d->t->get_status(d) != 0)
		cpu_relax();
	d->features = 0;
}

bool virtio_needs_reset(struct virtio_dev *d)
{
	return d->t->get_status(d) & VIRTIO_STATUS_NEEDS_RESET;
}

int virtio_negotiate(struct virtio_dev *d, uint64_t want, const struct virtio_ring_opts *opts)
{
	uint64_t need = 0, offered;

	/* 3.1.1, steps 1-3: reset; we have seen the device; we can drive it. */
	virtio_reset(d);
	add_status(d, VIRTIO_STATUS_ACKNOWLEDGE);
	add_status(d, VIRTIO_STATUS_DRIVER);
	/* Step 4: the features. The ring features the caller asked for are needed: a device that
	 * does not offer them cannot run this driver's rings as asked. A modern driver must accept
	 * VERSION_1 (6.1); a legacy interface shows bits 0-31 only, and has neither it nor the
	 * packed ring. */
	if (opts->packed)
		need |= BIT(VIRTIO_F_RING_PACKED);
	if (opts->indirect)
		need |= BIT(VIRTIO_F_INDIRECT_DESC);
	if (opts->event_idx)
		need |= BIT(VIRTIO_F_EVENT_IDX);
	if (!d->legacy)
		need |= BIT(VIRTIO_F_VERSION_1);
	offered = d->t->get_features(d);
	if ((offered & need) != need) {
		add_status(d, VIRTIO_STATUS_FAILED);
		return VIRTIO_ERR_FEATURES;
	}
	d->features = need | (want & offered);
	d->t->set_features(d, d->features);
	/* Legacy: no FEATURES_OK; the features are taken as written (3.1.2). */
	if (d->legacy)
		return 0;
	/* Steps 5-6: FEATURES_OK, and read back whether the device keeps it: it clears it when it
	 * cannot work with our choice. */
	add_status(d, VIRTIO_STATUS_FEATURES_OK);
	if (!(d->t->get_status(d) & VIRTIO_STATUS_FEATURES_OK)) {
		add_status(d, VIRTIO_STATUS_FAILED);
		return VIRTIO_ERR_FEATURES;
	}
	return 0;
}

int virtio_queue_setup(struct virtio_dev *d, struct vq *vq, unsigned index,
		       const struct virtio_ring_opts *opts)
{
	uint16_t max = d->t->queue_max(d, index), size = opts->size;
	int ret;

	if (max == 0)
		return VIRTIO_ERR_QUEUE;
	/* The legacy PCI interface has no size register to write: its size is the device's. */
	if (d->t->fixed_queue_size || size > max)
		size = max;
	if ((ret = vq_init(vq, d, (uint16_t)index, size, opts)))
		return ret;
	d->t->queue_enable(d, vq);
	/* vmm refuses rings it cannot use (not in RAM, misaligned, a bad size) with NEEDS_RESET. */
	return virtio_needs_reset(d) ? VIRTIO_ERR_QUEUE : 0;
}

int virtio_driver_ok(struct virtio_dev *d)
{
	/* 3.1.1 step 8: the device is live; from here on we may notify it. */
	add_status(d, VIRTIO_STATUS_DRIVER_OK);
	return virtio_needs_reset(d) ? VIRTIO_ERR_DEVICE : 0;
}

/* A field of up to 8 bytes, read again while the generation moved under us (2.5.1): a wider field
 * takes two reads, and the device may change it between them. */
static uint64_t config_read(struct virtio_dev *d, unsigned off, unsigned len)
{
	uint32_t gen;
	uint64_t v;

	do {
		gen = d->t->config_generation(d);
		if (len == 8)
			v = d->t->config_read(d, off, 4) |
			    (uint64_t)d->t->config_read(d, off + 4, 4) << 32;
		else
			v = d->t->config_read(d, off, len);
	} while (gen != d->t->config_generation(d));
	return v;
}

uint8_t virtio_config8(struct virtio_dev *d, unsigned off)
{
	return (uint8_t)config_read(d, off, 1);
}

uint16_t virtio_config16(struct virtio_dev *d, unsigned off)
{
	return (uint16_t)config_read(d, off, 2);
}

uint32_t virtio_config32(struct virtio_dev *d, unsigned off)
{
	return (uint32_t)config_read(d, off, 4);
}

uint64_t virtio_config64(struct virtio_dev *d, unsigned off)
{
	return config_read(d, off, 8);
}

const char *virtio_type_name(uint16_t id)
{
	switch (id) {
	case VIRTIO_ID_BLOCK:
		return "block";
	case VIRTIO_ID_CONSOLE:
		return "console";
	case VIRTIO_ID_RNG:
		return "entropy";
	default:
		return "other";
	}
}
