#include "virtio/pci.h"
#include "arch.h"
#include "log.h"
#include "vm.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* A KVM call that fails on a real VM is worth a warning (the device then works through slower
 * paths, or not at all); without one (unit tests: vm_fd -1) it is expected. */
#define KVM_LOG(vp) ((vp)->vm->vm_fd >= 0 ? LOG_WARN : LOG_DEBUG)

#define VIRTIO_PCI_MODERN_ID_BASE 0x1040

static_assert(VIRTIO_PCI_COMMON_LEN == VIRTIO_PCI_COMMON_ADM_Q_NUM + 2,
	      "struct virtio_pci_common_cfg ends with admin_queue_num (4.1.4.3)");

static uint64_t get_le(const uint8_t *p, uint32_t len)
{
	uint64_t v = 0;

	for (uint32_t i = 0; i < len && i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void put_le(uint8_t *p, uint32_t len, uint64_t v)
{
	for (uint32_t i = 0; i < len && i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static bool overlaps(uint32_t a, uint32_t alen, uint32_t b, uint32_t blen)
{
	return a < b + blen && b < a + alen;
}

/* The transitional device IDs of 4.1.2.1: only these types have a legacy driver to match. */
static int transitional_id(uint16_t device_id)
{
	switch (device_id) {
	case VIRTIO_ID_NET:
		return 0x1000;
	case VIRTIO_ID_BLOCK:
		return 0x1001;
	case VIRTIO_ID_BALLOON:
		return 0x1002;
	case VIRTIO_ID_CONSOLE:
		return 0x1003;
	case VIRTIO_ID_SCSI:
		return 0x1004;
	case VIRTIO_ID_RNG:
		return 0x1005;
	case VIRTIO_ID_9P:
		return 0x1009;
	default:
		return -EINVAL;
	}
}

/* Interrupts. */

static void vp_fire(struct virtio_pci *vp, unsigned v)
{
	struct virtio_pci_vector *vec = &vp->vectors[v];

	if (vp->msix_masked || (vec->ctrl & PCI_MSIX_ENTRY_MASKED)) {
		vec->pending = true;
		return;
	}
	if (eventfd_write(vec->fd, 1))
		log_debug("%s: MSI-X vector %u: %s", vp->vdev->name, v, strerror(errno));
}

/* Pending vectors go out once neither the function nor the vector is masked. */
static void vp_msix_flush(struct virtio_pci *vp)
{
	if (!vp->msix_enabled || vp->msix_masked)
		return;
	for (unsigned v = 0; v < vp->nr_vectors; v++) {
		if (vp->vectors[v].pending && !(vp->vectors[v].ctrl & PCI_MSIX_ENTRY_MASKED)) {
			vp->vectors[v].pending = false;
			vp_fire(vp, v);
		}
	}
}

static void vp_signal(struct virtio_dev *d, int q)
{
	struct virtio_pci *vp = d->transport_priv;
	uint8_t bit = q >= 0 ? VIRTIO_ISR_QUEUE : VIRTIO_ISR_CONFIG;
	uint16_t v;

	if (vp->msix_enabled) {
		/* 4.1.4.5: the config bit is set before any configuration interrupt. */
		if (q < 0)
			d->isr |= VIRTIO_ISR_CONFIG;
		v = q >= 0 ? d->queues[q].msix_vector : vp->config_vector;
		if (v < vp->nr_vectors)
			vp_fire(vp, v);
		return;
	}
	if (vp->intx_disabled) {
		/* The line is masked by the command register; the driver can still poll the ISR. */
		d->isr |= bit;
		return;
	}
	virtio_raise_isr(d, bit);
}

static void vp_reset(struct virtio_dev *d)
{
	struct virtio_pci *vp = d->transport_priv;

	vp->dfselect = 0;
	vp->gfselect = 0;
	vp->queue_sel = 0;
	vp->config_vector = VIRTIO_NO_VECTOR;
	for (unsigned q = 0; q < d->nr_queues; q++)
		d->queues[q].msix_vector = VIRTIO_NO_VECTOR;
}

static int vp_describe(struct virtio_dev *d, unsigned q, char *buf, size_t len)
{
	struct virtio_pci *vp = d->transport_priv;
	uint16_t v = d->queues[q].msix_vector;

	if (!vp->msix_enabled)
		return snprintf(buf, len, "INTx%s", vp->intx_disabled ? " (disabled)" : "");
	if (v >= vp->nr_vectors)
		return snprintf(buf, len, "no MSI-X vector");
	return snprintf(buf, len, "MSI-X vector %u%s%s%s", v, vp->msix_masked ? ", all masked" : "",
			vp->vectors[v].ctrl & PCI_MSIX_ENTRY_MASKED ? ", masked" : "",
			vp->vectors[v].pending ? ", pending" : "");
}

/* Where vp_fire would write the vector's irqfd at once, a writer of that eventfd (the kernel's
 * vhost) may too; wherever it would set the pending bit, or without MSI-X, every interrupt must
 * come through vp_signal. */
static int vp_queue_irqfd(struct virtio_dev *d, unsigned q)
{
	struct virtio_pci *vp = d->transport_priv;
	uint16_t v = d->queues[q].msix_vector;

	if (!vp->msix_enabled || vp->msix_masked || v >= vp->nr_vectors ||
	    (vp->vectors[v].ctrl & PCI_MSIX_ENTRY_MASKED) || !vp->vectors[v].has_gsi)
		return -1;
	return vp->vectors[v].fd;
}

static const struct virtio_transport_ops vp_transport = {
	.signal = vp_signal,
	.reset = vp_reset,
	.describe = vp_describe,
	.queue_irqfd = vp_queue_irqfd,
};

/* A vector the driver asks for: one beyond the table cannot be mapped, which the driver learns by
 * reading back NO_VECTOR (4.1.5.1.2). */
static uint16_t vp_vector(const struct virtio_pci *vp, uint64_t v)
{
	return v < vp->nr_vectors ? (uint16_t)v : VIRTIO_NO_VECTOR;
}

static struct virtio_queue *vp_queue(struct virtio_pci *vp)
{
	return vp->queue_sel < vp->vdev->nr_queues ? &vp->vdev->queues[vp->queue_sel] : NULL;
}

/* Common configuration (4.1.4.3). Device lock held. */

static void vp_common_read(struct virtio_pci *vp, uint32_t off, uint8_t *data, uint32_t len)
{
	struct virtio_dev *d = vp->vdev;
	struct virtio_queue *q = vp_queue(vp);
	uint8_t r[VIRTIO_PCI_COMMON_LEN] = { 0 };

	put_le(r + VIRTIO_PCI_COMMON_DFSELECT, 4, vp->dfselect);
	put_le(r + VIRTIO_PCI_COMMON_DF, 4,
	       vp->dfselect < 2 ? virtio_get_features(d, vp->dfselect) : 0);
	put_le(r + VIRTIO_PCI_COMMON_GFSELECT, 4, vp->gfselect);
	put_le(r + VIRTIO_PCI_COMMON_GF, 4,
	       vp->gfselect < 2 ? (uint32_t)(d->driver_features >> (32 * vp->gfselect)) : 0);
	put_le(r + VIRTIO_PCI_COMMON_MSIX, 2, vp->config_vector);
	put_le(r + VIRTIO_PCI_COMMON_NUMQ, 2, d->nr_queues);
	r[VIRTIO_PCI_COMMON_STATUS] = d->status;
	/* Only a read that shows the driver the generation counts as reading it. */
	if (overlaps(off, len, VIRTIO_PCI_COMMON_CFGGENERATION, 1))
		r[VIRTIO_PCI_COMMON_CFGGENERATION] = (uint8_t)virtio_config_generation(d);
	put_le(r + VIRTIO_PCI_COMMON_Q_SELECT, 2, vp->queue_sel);
	put_le(r + VIRTIO_PCI_COMMON_Q_MSIX, 2, q ? q->msix_vector : VIRTIO_NO_VECTOR);
	if (q) {
		put_le(r + VIRTIO_PCI_COMMON_Q_SIZE, 2, q->vq.size);
		put_le(r + VIRTIO_PCI_COMMON_Q_ENABLE, 2, q->vq.enabled);
		put_le(r + VIRTIO_PCI_COMMON_Q_NOFF, 2, q->index);
		put_le(r + VIRTIO_PCI_COMMON_Q_DESCLO, 8, q->vq.desc_gpa);
		put_le(r + VIRTIO_PCI_COMMON_Q_AVAILLO, 8, q->vq.avail_gpa);
		put_le(r + VIRTIO_PCI_COMMON_Q_USEDLO, 8, q->vq.used_gpa);
	}
	memset(data, 0, len);
	if (off < sizeof(r))
		memcpy(data, r + off, len < sizeof(r) - off ? len : sizeof(r) - off);
}

/* Sets the low or high half (or all, for an 8-byte write) of a 64-bit queue address. */
static void vp_set_addr(uint64_t *addr, uint32_t rel, uint32_t len, uint64_t v)
{
	if (len == 8 && rel == 0)
		*addr = v;
	else if (len == 4 && rel == 0)
		*addr = (*addr & ~0xffffffffULL) | v;
	else if (len == 4 && rel == 4)
		*addr = (*addr & 0xffffffffULL) | v << 32;
}

static void vp_common_write(struct virtio_pci *vp, uint32_t off, const uint8_t *data, uint32_t len)
{
	struct virtio_dev *d = vp->vdev;
	struct virtio_queue *q = vp_queue(vp);
	uint64_t v = get_le(data, len);
	int ret;

	/* Fields are written whole (4.1.3.1); anything else is a driver bug and ignored. */
	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT:
		if (len == 4)
			vp->dfselect = (uint32_t)v;
		return;
	case VIRTIO_PCI_COMMON_GFSELECT:
		if (len == 4)
			vp->gfselect = (uint32_t)v;
		return;
	case VIRTIO_PCI_COMMON_GF:
		if (len == 4 && vp->gfselect < 2)
			virtio_set_driver_features(d, vp->gfselect, (uint32_t)v);
		return;
	case VIRTIO_PCI_COMMON_MSIX:
		if (len == 2)
			vp->config_vector = vp_vector(vp, v);
		return;
	case VIRTIO_PCI_COMMON_STATUS:
		if (len == 1)
			virtio_set_status(d, (uint8_t)v);
		return;
	case VIRTIO_PCI_COMMON_Q_SELECT:
		if (len == 2)
			vp->queue_sel = (uint16_t)v;
		return;
	}
	if (!q) {
		log_debug("%s: write at common config %#x for absent queue %u", d->name, off,
			  vp->queue_sel);
		return;
	}
	if (off == VIRTIO_PCI_COMMON_Q_MSIX && len == 2) {
		q->msix_vector = vp_vector(vp, v);
		virtio_irq_route_changed(d);
		return;
	}
	if (q->vq.enabled) {
		/* A live queue's size and rings change only through reset. */
		log_debug("%s: write at common config %#x for enabled queue %u ignored", d->name,
			  off, q->index);
		return;
	}
	if (off == VIRTIO_PCI_COMMON_Q_SIZE && len == 2) {
		/* The power-of-two rule depends on the ring layout: virtq_enable checks it. */
		if (v <= q->max_size)
			q->vq.size = (uint16_t)v;
		else
			log_debug("%s: queue %u size %llu above %u ignored", d->name, q->index,
				  (unsigned long long)v, q->max_size);
	} else if (off == VIRTIO_PCI_COMMON_Q_ENABLE && len == 2) {
		/* Writing 0 is forbidden to the driver (4.1.4.3.2): ignore it. */
		if (v == 1 && (ret = virtio_queue_enable(d, q->index)))
			log_debug("%s: queue %u not enabled: %s", d->name, q->index,
				  strerror(-ret));
	} else if (off >= VIRTIO_PCI_COMMON_Q_DESCLO && off < VIRTIO_PCI_COMMON_Q_AVAILLO) {
		vp_set_addr(&q->vq.desc_gpa, off - VIRTIO_PCI_COMMON_Q_DESCLO, len, v);
	} else if (off >= VIRTIO_PCI_COMMON_Q_AVAILLO && off < VIRTIO_PCI_COMMON_Q_USEDLO) {
		vp_set_addr(&q->vq.avail_gpa, off - VIRTIO_PCI_COMMON_Q_AVAILLO, len, v);
	} else if (off >= VIRTIO_PCI_COMMON_Q_USEDLO && off < VIRTIO_PCI_COMMON_Q_USEDHI + 4) {
		vp_set_addr(&q->vq.used_gpa, off - VIRTIO_PCI_COMMON_Q_USEDLO, len, v);
	} else {
		log_debug("%s: %u-byte write at common config %#x ignored", d->name, len, off);
	}
}

/* BAR4, the modern registers. Device lock held; doorbells are handled by the caller. */
static void vp_modern_locked(struct virtio_pci *vp, uint32_t off, uint8_t *data, uint32_t len,
			     bool is_write)
{
	struct virtio_dev *d = vp->vdev;

	if (!is_write)
		memset(data, 0, len);
	if (off < VIRTIO_PCI_ISR_OFF) {
		d->legacy_driver = false;
		if (is_write)
			vp_common_write(vp, off, data, len);
		else
			vp_common_read(vp, off, data, len);
	} else if (off < VIRTIO_PCI_DEVICE_OFF) {
		/* Read-to-clear: only a read that covers the ISR byte has the side effect. */
		if (!is_write && off == VIRTIO_PCI_ISR_OFF)
			data[0] = virtio_read_isr(d);
	} else if (off < VIRTIO_PCI_NOTIFY_OFF) {
		if (is_write)
			virtio_config_write(d, off - VIRTIO_PCI_DEVICE_OFF, data, len);
		else
			virtio_config_read(d, off - VIRTIO_PCI_DEVICE_OFF, data, len);
	}
}

/* A doorbell write that no ioeventfd caught (none bound, or a wider write): ring the queue's
 * eventfd ourselves. The address says which queue; the value is not needed. */
static bool vp_doorbell(struct virtio_pci *vp, uint64_t off, bool is_write)
{
	uint64_t q;

	if (off < VIRTIO_PCI_NOTIFY_OFF)
		return false;
	q = (off - VIRTIO_PCI_NOTIFY_OFF) / VIRTIO_PCI_NOTIFY_MULT;
	if (is_write && (off - VIRTIO_PCI_NOTIFY_OFF) % VIRTIO_PCI_NOTIFY_MULT == 0 &&
	    q < vp->vdev->nr_queues)
		virtio_kick(vp->vdev, (unsigned)q);
	return true;
}

void virtio_pci_modern_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			  bool is_write)
{
	struct virtio_pci *vp = opaque;

	if (vp_doorbell(vp, offset, is_write)) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	pthread_mutex_lock(&vp->vdev->lock);
	vp_modern_locked(vp, (uint32_t)offset, data, len, is_write);
	pthread_mutex_unlock(&vp->vdev->lock);
}

/* BAR1: the MSI-X table and PBA, dword by dword. Device lock held. */
static void vp_msix_dword(struct virtio_pci *vp, uint32_t off, uint8_t *data, bool is_write)
{
	uint32_t v = (uint32_t)get_le(data, 4);

	if (!is_write)
		memset(data, 0, 4);
	if (off < vp->nr_vectors * PCI_MSIX_ENTRY_SIZE) {
		unsigned n = off / PCI_MSIX_ENTRY_SIZE;
		struct virtio_pci_vector *vec = &vp->vectors[n];
		uint32_t *field[] = { &vec->addr_lo, &vec->addr_hi, &vec->data, &vec->ctrl };
		unsigned f = off % PCI_MSIX_ENTRY_SIZE / 4;
		bool was_masked = vec->ctrl & PCI_MSIX_ENTRY_MASKED;
		int ret;

		if (!is_write) {
			put_le(data, 4, *field[f]);
			return;
		}
		if (off % PCI_MSIX_ENTRY_SIZE == PCI_MSIX_ENTRY_CTRL) {
			vec->ctrl = v & PCI_MSIX_ENTRY_MASKED; /* the other bits are reserved */
			if (was_masked && !(vec->ctrl & PCI_MSIX_ENTRY_MASKED))
				vp_msix_flush(vp);
			if (was_masked != !!(vec->ctrl & PCI_MSIX_ENTRY_MASKED))
				virtio_irq_route_changed(vp->vdev);
			return;
		}
		if (*field[f] == v)
			return; /* a new route is a KVM_SET_GSI_ROUTING of the whole table */
		*field[f] = v;
		if (vec->has_gsi &&
		    (ret = vm_msi_set(vp->vm, vec->gsi, (uint64_t)vec->addr_hi << 32 | vec->addr_lo,
				      vec->data, vp->pci.slot << 3)))
			log_msg(KVM_LOG(vp), "%s: MSI-X vector %u route: %s", vp->vdev->name, n,
				  strerror(-ret));
		return;
	}
	if (!is_write && off >= vp->pba_off) {
		/* PBA: read-only pending bits, 32 vectors per dword. */
		for (unsigned b = 0; b < 32; b++) {
			uint64_t n = (uint64_t)(off - vp->pba_off) * 8 + b;

			if (n < vp->nr_vectors && vp->vectors[n].pending)
				data[b / 8] |= (uint8_t)(1u << (b % 8));
		}
	}
}

void virtio_pci_msix_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct virtio_pci *vp = opaque;

	/* The PCI spec allows dword and aligned qword accesses; others are undefined: ignored. */
	if ((len != 4 && len != 8) || offset % len) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	pthread_mutex_lock(&vp->vdev->lock);
	for (uint32_t i = 0; i < len; i += 4)
		vp_msix_dword(vp, (uint32_t)offset + i, data + i, is_write);
	pthread_mutex_unlock(&vp->vdev->lock);
}

/* BAR0: the legacy register block (4.1.4.8). */

static void vp_legacy_pfn(struct virtio_pci *vp, uint32_t pfn)
{
	struct virtio_dev *d = vp->vdev;
	struct virtio_queue *q = vp_queue(vp);
	uint64_t desc;
	int ret;

	if (!q)
		return;
	if (pfn == 0) {
		/* Legacy drivers write 0 to let a queue go; with no per-queue reset in the legacy
		 * interface this resets the device, as QEMU does. */
		virtio_reset(d);
		return;
	}
	if (q->vq.enabled) {
		log_debug("%s: queue %u PFN written while enabled, ignored", d->name, q->index);
		return;
	}
	/* The legacy layout: descriptors, the available ring right after them, the used ring at
	 * the next 4096-byte boundary. The size is not negotiable: it is the maximum. */
	desc = (uint64_t)pfn << VIRTIO_PCI_LEGACY_PFN_SHIFT;
	q->vq.size = q->max_size;
	q->vq.desc_gpa = desc;
	q->vq.avail_gpa = desc + 16ULL * q->max_size;
	q->vq.used_gpa = q->vq.avail_gpa + 2ULL * (3 + q->max_size) + VIRTIO_PCI_LEGACY_ALIGN - 1;
	q->vq.used_gpa &= ~(uint64_t)(VIRTIO_PCI_LEGACY_ALIGN - 1);
	ret = virtio_queue_enable(d, q->index);
	if (ret)
		log_debug("%s: legacy queue %u not enabled: %s", d->name, q->index, strerror(-ret));
}

static void vp_legacy_header_write(struct virtio_pci *vp, uint32_t off, uint64_t v, uint32_t len)
{
	struct virtio_dev *d = vp->vdev;
	struct virtio_queue *q = vp_queue(vp);

	if (off == VIRTIO_PCI_LEGACY_GUEST_FEATURES && len == 4) {
		/* Legacy drivers see bits 0-31 only; nothing above is accepted (4.1.4.8). */
		virtio_set_driver_features(d, 0, (uint32_t)v);
		virtio_set_driver_features(d, 1, 0);
	} else if (off == VIRTIO_PCI_LEGACY_QUEUE_PFN && len == 4) {
		vp_legacy_pfn(vp, (uint32_t)v);
	} else if (off == VIRTIO_PCI_LEGACY_QUEUE_SEL && len == 2) {
		vp->queue_sel = (uint16_t)v;
	} else if (off == VIRTIO_PCI_LEGACY_QUEUE_NOTIFY && len == 2) {
		if (v < d->nr_queues)
			virtio_kick(d, (unsigned)v);
	} else if (off == VIRTIO_PCI_LEGACY_STATUS && len == 1) {
		virtio_set_status(d, (uint8_t)v);
	} else if (off == VIRTIO_PCI_LEGACY_CONFIG_VECTOR && len == 2 && vp->msix_enabled) {
		vp->config_vector = vp_vector(vp, v);
	} else if (off == VIRTIO_PCI_LEGACY_QUEUE_VECTOR && len == 2 && vp->msix_enabled && q) {
		q->msix_vector = vp_vector(vp, v);
		virtio_irq_route_changed(d);
	} else {
		log_debug("%s: %u-byte legacy write at %#x ignored", d->name, len, off);
	}
}

void virtio_pci_legacy_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			  bool is_write)
{
	struct virtio_pci *vp = opaque;
	struct virtio_dev *d = vp->vdev;
	uint32_t off = (uint32_t)offset, hdr;
	uint8_t r[VIRTIO_PCI_LEGACY_CONFIG_MSIX] = { 0 };
	struct virtio_queue *q;

	/* Doorbells first and without the lock, like the modern ones. */
	if (is_write && off == VIRTIO_PCI_LEGACY_QUEUE_NOTIFY && len == 2) {
		if (get_le(data, 2) < d->nr_queues)
			virtio_kick(d, (unsigned)get_le(data, 2));
		return;
	}
	pthread_mutex_lock(&d->lock);
	q = vp_queue(vp);
	/* With MSI-X on, the two vector registers push the device config from 20 to 24. */
	hdr = vp->msix_enabled ? VIRTIO_PCI_LEGACY_CONFIG_MSIX : VIRTIO_PCI_LEGACY_CONFIG;
	if (off >= hdr) {
		if (is_write)
			virtio_config_write(d, off - hdr, data, len);
		else
			virtio_config_read(d, off - hdr, data, len);
		goto out;
	}
	d->legacy_driver = true;
	if (is_write) {
		vp_legacy_header_write(vp, off, get_le(data, len), len);
		goto out;
	}
	put_le(r + VIRTIO_PCI_LEGACY_HOST_FEATURES, 4, virtio_get_legacy_features(d));
	put_le(r + VIRTIO_PCI_LEGACY_GUEST_FEATURES, 4, (uint32_t)d->driver_features);
	if (q) {
		put_le(r + VIRTIO_PCI_LEGACY_QUEUE_PFN, 4,
		       q->vq.enabled ? q->vq.desc_gpa >> VIRTIO_PCI_LEGACY_PFN_SHIFT : 0);
		put_le(r + VIRTIO_PCI_LEGACY_QUEUE_NUM, 2, q->max_size);
	}
	put_le(r + VIRTIO_PCI_LEGACY_QUEUE_SEL, 2, vp->queue_sel);
	r[VIRTIO_PCI_LEGACY_STATUS] = d->status;
	if (overlaps(off, len, VIRTIO_PCI_LEGACY_ISR, 1))
		r[VIRTIO_PCI_LEGACY_ISR] = virtio_read_isr(d);
	put_le(r + VIRTIO_PCI_LEGACY_CONFIG_VECTOR, 2, vp->config_vector);
	put_le(r + VIRTIO_PCI_LEGACY_QUEUE_VECTOR, 2, q ? q->msix_vector : VIRTIO_NO_VECTOR);
	memset(data, 0, len);
	memcpy(data, r + off, len < hdr - off ? len : hdr - off);
out:
	pthread_mutex_unlock(&d->lock);
}

/* Configuration space hooks (host lock held). */

/* VIRTIO_PCI_CAP_PCI_CFG: pci_cfg_data is a window of cap.length bytes at cap.offset in
 * cap.bar. The driver must point it inside a structure of BAR4 with an aligned 1, 2 or 4-byte
 * length (4.1.4.9.1); anything else reads as 0 and writes nothing. */
static void vp_cfg_window(struct virtio_pci *vp, bool is_write)
{
	uint8_t *cap = vp->pci.cfg + vp->cfg_cap;
	uint32_t bar = cap[4], off = pci_get32(cap + 8), len = pci_get32(cap + 12);

	if (!is_write)
		memset(cap + 16, 0, 4);
	if (bar != VIRTIO_PCI_MODERN_BAR || (len != 1 && len != 2 && len != 4) || off % len ||
	    off >= VIRTIO_PCI_MODERN_SIZE) {
		log_debug("%s: PCI_CFG window at BAR%u %#x+%u refused", vp->vdev->name, bar, off,
			  len);
		return;
	}
	if (vp_doorbell(vp, off, is_write))
		return;
	pthread_mutex_lock(&vp->vdev->lock);
	vp_modern_locked(vp, off, cap + 16, len, is_write);
	pthread_mutex_unlock(&vp->vdev->lock);
}

static void vp_cfg_read(struct pci_dev *pd, uint32_t off, uint32_t len)
{
	struct virtio_pci *vp = pd->opaque;
	struct virtio_dev *d = vp->vdev;

	if (overlaps(off, len, (uint32_t)vp->cfg_cap + 16, 4))
		vp_cfg_window(vp, false);
	if (overlaps(off, len, PCI_STATUS, 1)) {
		/* 4.1.4.5: without MSI-X, the Interrupt Status bit is the OR of the ISR bits. */
		pthread_mutex_lock(&d->lock);
		pd->cfg[PCI_STATUS] &= (uint8_t)~PCI_STATUS_INTERRUPT;
		if (!vp->msix_enabled && d->isr)
			pd->cfg[PCI_STATUS] |= PCI_STATUS_INTERRUPT;
		pthread_mutex_unlock(&d->lock);
	}
}

static void vp_cfg_write(struct pci_dev *pd, uint32_t off, uint32_t len)
{
	struct virtio_pci *vp = pd->opaque;
	struct virtio_dev *d = vp->vdev;
	uint16_t ctrl = pci_get16(pd->cfg + vp->msix_cap + 2);
	bool intx_was_disabled, msix_was_enabled, msix_was_masked;

	if (overlaps(off, len, (uint32_t)vp->cfg_cap + 16, 4))
		vp_cfg_window(vp, true);
	pthread_mutex_lock(&d->lock);
	intx_was_disabled = vp->intx_disabled;
	msix_was_enabled = vp->msix_enabled;
	msix_was_masked = vp->msix_masked;
	vp->intx_disabled = pci_get16(pd->cfg + PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE;
	vp->msix_enabled = ctrl & PCI_MSIX_FLAGS_ENABLE;
	vp->msix_masked = ctrl & PCI_MSIX_FLAGS_MASKALL;
	d->line_masked = vp->intx_disabled || vp->msix_enabled;
	vp_msix_flush(vp);
	if (vp->msix_enabled != msix_was_enabled || vp->msix_masked != msix_was_masked)
		virtio_irq_route_changed(d);
	/* An interrupt that came while INTx was disabled is still owed. */
	if (intx_was_disabled && !vp->intx_disabled && !vp->msix_enabled && d->isr &&
	    eventfd_write(d->isr_fd, 1))
		log_debug("%s: INTx: %s", d->name, strerror(errno));
	pthread_mutex_unlock(&d->lock);
}

/* BAR4 carries the doorbells, BAR0 the legacy one: their ioeventfds follow the BAR. */
static void vp_bind_doorbells(struct virtio_pci *vp, unsigned bar, uint64_t base, bool assign)
{
	struct virtio_dev *d = vp->vdev;
	int ret;

	for (unsigned q = 0; q < d->nr_queues; q++) {
		uint64_t match = q;
		uint64_t addr = base + VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULT * q;

		if (d->queues[q].kick_fd < 0)
			continue;
		if (bar == VIRTIO_PCI_MODERN_BAR)
			ret = vm_ioeventfd(vp->vm, addr, 2, false, NULL, d->queues[q].kick_fd,
					   assign);
		else
			ret = vm_ioeventfd(vp->vm, base + VIRTIO_PCI_LEGACY_QUEUE_NOTIFY, 2, true,
					   &match, d->queues[q].kick_fd, assign);
		if (ret)
			log_msg(KVM_LOG(vp), "%s: queue %u doorbell at %#llx %s: %s", d->name, q,
				  (unsigned long long)base, assign ? "not bound" : "not unbound",
				  strerror(-ret));
	}
}

static void vp_bar_moved(struct pci_dev *pd, unsigned bar, uint64_t old_addr, uint64_t new_addr)
{
	struct virtio_pci *vp = pd->opaque;

	if (bar != VIRTIO_PCI_MODERN_BAR && bar != VIRTIO_PCI_LEGACY_BAR)
		return;
	if (old_addr != PCI_BAR_UNMAPPED)
		vp_bind_doorbells(vp, bar, old_addr, false);
	if (new_addr != PCI_BAR_UNMAPPED)
		vp_bind_doorbells(vp, bar, new_addr, true);
}

/* Building the function. */

static int vp_add_cap(struct virtio_pci *vp, uint8_t type, uint32_t off, uint32_t len,
		      uint8_t cap_len, uint32_t extra)
{
	uint8_t cap[20] = { PCI_CAP_ID_VNDR, 0, cap_len, type, VIRTIO_PCI_MODERN_BAR };

	pci_put32(cap + 8, off);
	pci_put32(cap + 12, len);
	pci_put32(cap + 16, extra);
	return pci_cap_add(&vp->pci, cap, cap_len);
}

static int vp_add_caps(struct virtio_pci *vp)
{
	struct virtio_dev *d = vp->vdev;
	uint32_t notify_len = VIRTIO_PCI_NOTIFY_MULT * d->nr_queues;
	uint8_t msix[12] = { PCI_CAP_ID_MSIX };
	int ret;

	if ((ret = vp_add_cap(vp, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_COMMON_OFF,
			      VIRTIO_PCI_COMMON_LEN, 16, 0)) < 0 ||
	    (ret = vp_add_cap(vp, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_NOTIFY_OFF, notify_len, 20,
			      VIRTIO_PCI_NOTIFY_MULT)) < 0 ||
	    (ret = vp_add_cap(vp, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR_OFF, 1, 16, 0)) < 0)
		return ret;
	if (d->config_len &&
	    (ret = vp_add_cap(vp, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_DEVICE_OFF, d->config_len,
			      16, 0)) < 0)
		return ret;
	if ((ret = vp_add_cap(vp, VIRTIO_PCI_CAP_PCI_CFG, 0, 0, 20, 0)) < 0)
		return ret;
	vp->cfg_cap = ret;
	/* cap.bar, cap.offset, cap.length and pci_cfg_data are the driver's (4.1.4.9). */
	vp->pci.wmask[ret + 4] = 0xff;
	memset(vp->pci.wmask + ret + 8, 0xff, 12);

	pci_put16(msix + 2, (uint16_t)(vp->nr_vectors - 1));
	pci_put32(msix + 4, VIRTIO_PCI_MSIX_BAR);
	pci_put32(msix + 8, vp->pba_off | VIRTIO_PCI_MSIX_BAR);
	if ((ret = pci_cap_add(&vp->pci, msix, sizeof(msix))) < 0)
		return ret;
	vp->msix_cap = ret;
	vp->pci.wmask[ret + 3] = (PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL) >> 8;
	return 0;
}

static uint64_t pow2_at_least(uint64_t v)
{
	uint64_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

static int vp_add_vectors(struct virtio_pci *vp)
{
	int ret;

	vp->vectors = calloc(vp->nr_vectors, sizeof(*vp->vectors));
	if (!vp->vectors)
		return -ENOMEM;
	for (unsigned v = 0; v < vp->nr_vectors; v++)
		vp->vectors[v].fd = -1;
	for (unsigned v = 0; v < vp->nr_vectors; v++) {
		struct virtio_pci_vector *vec = &vp->vectors[v];

		vec->ctrl = PCI_MSIX_ENTRY_MASKED; /* the state after reset */
		vec->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (vec->fd < 0)
			return -errno;
		/* Without KVM (unit tests) there are no routes; the eventfd still counts. */
		if ((ret = vm_msi_alloc(vp->vm, &vec->gsi))) {
			log_msg(KVM_LOG(vp), "%s: no GSI for MSI-X vector %u: %s", vp->vdev->name, v,
				  strerror(-ret));
			continue;
		}
		vec->has_gsi = true;
		if ((ret = vm_irqfd(vp->vm, vec->gsi, vec->fd, -1, true)))
			log_msg(KVM_LOG(vp), "%s: MSI-X vector %u irqfd: %s", vp->vdev->name, v,
				  strerror(-ret));
	}
	return 0;
}

int virtio_pci_create(struct pci_host *h, struct virtio_dev *d, bool legacy,
		      struct virtio_pci **out)
{
	struct virtio_pci *vp;
	int id = legacy ? transitional_id(d->ops->device_id)
			: VIRTIO_PCI_MODERN_ID_BASE + d->ops->device_id;
	uint32_t table;
	int ret;

	if (id < 0) {
		log_error("%s: a %s device has no transitional PCI ID", d->name, d->ops->name);
		return id;
	}
	vp = calloc(1, sizeof(*vp));
	if (!vp)
		return -ENOMEM;
	vp->vdev = d;
	vp->host = h;
	vp->vm = h->vm;
	vp->config_vector = VIRTIO_NO_VECTOR;
	vp->nr_vectors = d->nr_queues + 1;
	/* Table first, PBA after it: one 4 KiB BAR holds up to 128 vectors. */
	table = vp->nr_vectors * PCI_MSIX_ENTRY_SIZE;
	vp->pba_off = table > VIRTIO_PCI_PBA_OFF ? (table + 7) & ~7u : VIRTIO_PCI_PBA_OFF;

	/* Transitional devices have revision 0 and must name their type in the subsystem ID
	 * (4.1.2.3); modern ones show it too, which costs nothing. */
	pci_dev_init(&vp->pci, d->name, VIRTIO_PCI_VENDOR, (uint16_t)id, d->ops->pci_class,
		     legacy ? 0 : 1, vp);
	pci_put16(vp->pci.cfg + PCI_SUBSYSTEM_VENDOR_ID, VIRTIO_PCI_VENDOR);
	pci_put16(vp->pci.cfg + PCI_SUBSYSTEM_ID, d->ops->device_id);
	vp->pci.cfg_read = vp_cfg_read;
	vp->pci.cfg_write = vp_cfg_write;
	vp->pci.bar_moved = vp_bar_moved;
	if (legacy) {
		/* The registers and, after them at 24 while MSI-X is on, the whole configuration
		 * area: the power of two (a BAR's size) that holds both, at least 0x40. */
		vp->legacy_size = (uint32_t)pow2_at_least(VIRTIO_PCI_LEGACY_CONFIG_MSIX +
							  (uint64_t)d->config_len);
		if (vp->legacy_size < VIRTIO_PCI_LEGACY_MIN_SIZE)
			vp->legacy_size = VIRTIO_PCI_LEGACY_MIN_SIZE;
		if (vp->legacy_size > VIRTIO_PCI_LEGACY_MAX_SIZE) {
			log_error("%s: the legacy interface has room for %u bytes of "
				  "configuration, this device has %u: it can only be modern "
				  "(legacy=off)", d->name,
				  VIRTIO_PCI_LEGACY_MAX_SIZE - VIRTIO_PCI_LEGACY_CONFIG_MSIX,
				  d->config_len);
			ret = -EINVAL;
			goto err_quiet;
		}
		ret = pci_dev_set_bar(&vp->pci, VIRTIO_PCI_LEGACY_BAR, PCI_BAR_IO, vp->legacy_size,
				      virtio_pci_legacy_io, vp);
		if (ret)
			goto err;
	}
	if ((ret = pci_dev_set_bar(&vp->pci, VIRTIO_PCI_MSIX_BAR, PCI_BAR_MEM32,
				   vp->pba_off + (vp->nr_vectors + 63) / 64 * 8 < 0x1000
					   ? 0x1000
					   : vp->pba_off + (vp->nr_vectors + 63) / 64 * 8,
				   virtio_pci_msix_io, vp)) ||
	    (ret = pci_dev_set_bar(&vp->pci, VIRTIO_PCI_MODERN_BAR, PCI_BAR_MEM64,
				   VIRTIO_PCI_MODERN_SIZE, virtio_pci_modern_io, vp)) ||
	    (ret = vp_add_caps(vp)) || (ret = vp_add_vectors(vp)))
		goto err;

	pthread_mutex_lock(&d->lock);
	d->legacy = legacy;
	d->transport = &vp_transport;
	d->transport_priv = vp;
	for (unsigned q = 0; q < d->nr_queues; q++)
		d->queues[q].msix_vector = VIRTIO_NO_VECTOR;
	pthread_mutex_unlock(&d->lock);

	if ((ret = pci_dev_add(h, &vp->pci)))
		goto err;
	/* INTx is level-triggered: the core re-raises it on resample while the ISR is not 0. */
	if (d->isr_fd >= 0 && (ret = vm_irqfd(vp->vm, PCI_INTX_GSI(vp->pci.slot, 0), d->isr_fd,
					      d->resample_fd, true)))
		log_msg(KVM_LOG(vp), "%s: INTx irqfd: %s", d->name, strerror(-ret));
	log_debug("%s: virtio-pci %s in slot %u", d->name, legacy ? "transitional" : "modern",
		  vp->pci.slot);
	*out = vp;
	return 0;
err:
	if (ret == -ENOSPC || ret == -EINVAL)
		log_error("%s: cannot lay out the PCI function: %s", d->name, strerror(-ret));
err_quiet:
	virtio_pci_destroy(vp);
	return ret;
}

void virtio_pci_destroy(struct virtio_pci *vp)
{
	struct virtio_dev *d;
	int ret;

	if (!vp)
		return;
	d = vp->vdev;
	if (vp->pci.slot && d->isr_fd >= 0 &&
	    (ret = vm_irqfd(vp->vm, PCI_INTX_GSI(vp->pci.slot, 0), d->isr_fd, d->resample_fd,
			    false)))
		log_msg(KVM_LOG(vp), "%s: INTx irqfd: %s", d->name, strerror(-ret));
	/* Unmapping the BARs unbinds the doorbells through vp_bar_moved. */
	pci_dev_remove(vp->host, &vp->pci);
	for (unsigned v = 0; vp->vectors && v < vp->nr_vectors; v++) {
		struct virtio_pci_vector *vec = &vp->vectors[v];

		if (vec->has_gsi) {
			vm_irqfd(vp->vm, vec->gsi, vec->fd, -1, false);
			vm_msi_free(vp->vm, vec->gsi);
		}
		if (vec->fd >= 0)
			close(vec->fd);
	}
	free(vp->vectors);
	pthread_mutex_lock(&d->lock);
	if (d->transport_priv == vp) {
		d->transport = NULL;
		d->transport_priv = NULL;
	}
	pthread_mutex_unlock(&d->lock);
	free(vp);
}
