#include "backend/vhost.h"
#include "event.h"
#include "log.h"

#include <errno.h>
#include <linux/vhost.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int vh_ioctl(struct vhost *vh, unsigned long req, void *arg)
{
	return ioctl(vh->fd, req, arg) < 0 ? -errno : 0;
}

static int ring_file(struct vhost *vh, unsigned long req, unsigned index, int fd)
{
	struct vhost_vring_file f = { .index = index, .fd = fd };

	return vh_ioctl(vh, req, &f);
}

static struct vhost_ring *ring_of(struct vhost *vh, unsigned q)
{
	for (unsigned i = 0; i < vh->nr_rings; i++) {
		if (vh->rings[i].q == q)
			return &vh->rings[i];
	}
	return NULL;
}

static unsigned ring_index(const struct vhost *vh, const struct vhost_ring *r)
{
	return (unsigned)(r - vh->rings);
}

/* The kernel used buffers and the driver wants to hear of it (the kernel checked EVENT_IDX). */
static void call_ready(void *opaque, uint32_t events)
{
	struct vhost_ring *r = opaque;
	struct virtio_dev *d = r->vh->dev;
	uint64_t v;

	(void)events;
	if (read(r->call_fd, &v, sizeof(v)) != sizeof(v))
		return;
	pthread_mutex_lock(&d->lock);
	/* A signal left from before a reset is for nobody. */
	if (virtio_live(d) && r->running)
		virtio_signal_queue(d, r->q);
	pthread_mutex_unlock(&d->lock);
}

/* The kernel met a ring it cannot use (an address outside the memory table, a malformed chain):
 * the guest broke the device: NEEDS_RESET, whose `failed` op (the device type's) stops the rings. */
static void err_ready(void *opaque, uint32_t events)
{
	struct vhost *vh = opaque;
	struct virtio_dev *d = vh->dev;
	uint64_t v;

	(void)events;
	if (read(vh->err_fd, &v, sizeof(v)) != sizeof(v))
		return;
	pthread_mutex_lock(&d->lock);
	if (virtio_live(d)) {
		virtio_fail(d, "vhost: the kernel found a malformed ring among queues %u-%u",
			    vh->rings[0].q, vh->rings[vh->nr_rings - 1].q);
	}
	pthread_mutex_unlock(&d->lock);
}

static int set_mem_table(struct vhost *vh)
{
	const struct guest_mem *m = vh->dev->mem;
	struct vhost_memory *t;
	int ret;

	t = calloc(1, sizeof(*t) + GMEM_MAX_REGIONS * sizeof(t->regions[0]));
	if (!t)
		return -ENOMEM;
	/* Guest RAM and nothing else: every address the kernel takes from a ring is translated
	 * through these regions, so a guest cannot point it at the rest of vmm's memory. */
	for (int i = 0; i < m->nr && i < GMEM_MAX_REGIONS; i++) {
		t->regions[i].guest_phys_addr = m->r[i].gpa;
		t->regions[i].memory_size = m->r[i].size;
		t->regions[i].userspace_addr = (uint64_t)(uintptr_t)m->r[i].host;
		t->nregions++;
	}
	ret = vh_ioctl(vh, VHOST_SET_MEM_TABLE, t);
	free(t);
	return ret;
}

static int new_eventfd(void)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	return fd < 0 ? -errno : fd;
}

int vhost_open(struct vhost *vh, int fd, struct virtio_dev *d, unsigned first_q,
	       unsigned nr_rings, int backend_fd)
{
	int ret;

	memset(vh, 0, sizeof(*vh));
	vh->fd = fd;
	vh->dev = d;
	vh->backend_fd = backend_fd;
	vh->err_fd = -1;
	for (unsigned i = 0; i < VHOST_MAX_RINGS; i++)
		vh->rings[i] = (struct vhost_ring){ .vh = vh, .q = first_q + i, .call_fd = -1,
						     .kernel_call = -1 };
	if (nr_rings == 0 || nr_rings > VHOST_MAX_RINGS || first_q + nr_rings > d->nr_queues) {
		ret = -EINVAL;
		goto fail;
	}
	vh->nr_rings = nr_rings;
	if ((ret = vh_ioctl(vh, VHOST_SET_OWNER, NULL)) ||
	    (ret = vh_ioctl(vh, VHOST_GET_FEATURES, &vh->features)) ||
	    (ret = set_mem_table(vh)))
		goto fail;
	if ((vh->err_fd = new_eventfd()) < 0) {
		ret = vh->err_fd;
		goto fail;
	}
	for (unsigned i = 0; i < nr_rings; i++) {
		if ((vh->rings[i].call_fd = new_eventfd()) < 0) {
			ret = vh->rings[i].call_fd;
			goto fail;
		}
	}
	vh->registered = true;
	if (d->loop && (ret = event_add(d->loop, vh->err_fd, EPOLLIN, err_ready, vh)))
		goto fail;
	for (unsigned i = 0; i < nr_rings; i++) {
		if (d->loop && (ret = event_add(d->loop, vh->rings[i].call_fd, EPOLLIN, call_ready,
						&vh->rings[i])))
			goto fail;
	}
	return 0;
fail:
	log_error("%s: vhost for queues %u-%u: %s", d->name, first_q, first_q + nr_rings - 1,
		  strerror(-ret));
	vhost_close(vh);
	return ret;
}

void vhost_close(struct vhost *vh)
{
	struct virtio_dev *d = vh->dev;

	if (!d)
		return; /* zeroed: never opened */
	pthread_mutex_lock(&d->lock);
	vhost_stop(vh);
	pthread_mutex_unlock(&d->lock);
	for (unsigned i = 0; i < VHOST_MAX_RINGS; i++) {
		if (vh->rings[i].call_fd < 0)
			continue;
		if (vh->registered && d->loop)
			event_del(d->loop, vh->rings[i].call_fd);
		close(vh->rings[i].call_fd);
		vh->rings[i].call_fd = -1;
	}
	if (vh->err_fd >= 0) {
		if (vh->registered && d->loop)
			event_del(d->loop, vh->err_fd);
		close(vh->err_fd);
	}
	if (vh->fd >= 0)
		close(vh->fd);
	vh->fd = vh->err_fd = -1;
	vh->registered = false;
	vh->dev = NULL;
}

uint64_t vhost_offer(const struct vhost *vh, uint64_t offer, uint64_t governed)
{
	return offer & ~((VHOST_RING_FEATURES | governed) & ~vh->features);
}

/* The three parts of a split ring of `size` entries (2.7), as host addresses inside guest RAM. */
static int ring_addr(struct vhost *vh, const struct virtq *vq, unsigned index,
		     struct vhost_vring_addr *a)
{
	const struct guest_mem *m = vh->dev->mem;
	void *desc = gmem_ptr(m, vq->desc_gpa, 16ULL * vq->size);
	void *avail = gmem_ptr(m, vq->avail_gpa, 6 + 2ULL * vq->size);
	void *used = gmem_ptr(m, vq->used_gpa, 6 + 8ULL * vq->size);

	/* virtio_queue_enable checked these already; they are checked again here because what
	 * the kernel is given it uses without asking. */
	if (!desc || !avail || !used)
		return -EFAULT;
	*a = (struct vhost_vring_addr){
		.index = index,
		.desc_user_addr = (uint64_t)(uintptr_t)desc,
		.avail_user_addr = (uint64_t)(uintptr_t)avail,
		.used_user_addr = (uint64_t)(uintptr_t)used,
	};
	return 0;
}

/* The ring's interrupt: the transport's irqfd when it has one for the queue, else the relay. */
static int set_call(struct vhost *vh, struct vhost_ring *r, bool force)
{
	int fd = virtio_queue_irqfd(vh->dev, r->q), ret;

	if (fd < 0)
		fd = r->call_fd;
	if (fd == r->kernel_call && !force)
		return 0;
	if ((ret = ring_file(vh, VHOST_SET_VRING_CALL, ring_index(vh, r), fd)))
		return ret;
	r->kernel_call = fd;
	return 0;
}

void vhost_irq_route(struct vhost *vh)
{
	struct virtio_dev *d = vh->dev;
	int ret;

	for (unsigned i = 0; i < vh->nr_rings; i++) {
		struct vhost_ring *r = &vh->rings[i];

		/* A ring that failed here keeps signalling the old eventfd: the relay is right
		 * everywhere, an irqfd that is no longer right gets an interrupt the driver finds
		 * nothing for. Worth a message, not the device. */
		if (r->running && (ret = set_call(vh, r, false)))
			virtio_log(d, LOG_WARN, "%s: vhost: queue %u: VHOST_SET_VRING_CALL: %s",
				   d->name, r->q, strerror(-ret));
	}
}

static int ring_start(struct vhost *vh, struct vhost_ring *r)
{
	struct virtio_dev *d = vh->dev;
	struct virtio_queue *vq = &d->queues[r->q];
	unsigned index = ring_index(vh, r);
	struct vhost_vring_state num = { .index = index, .num = vq->vq.size };
	struct vhost_vring_state base = { .index = index, .num = 0 };
	struct vhost_vring_addr addr;
	const char *step;
	int ret;

	if (r->running)
		return 0;
	/* The kernel of Debian 12 has no packed ring, and vhost_offer left it out when the kernel
	 * lacks it: a queue that is packed here is a bug, not the guest's doing. */
	if (vq->vq.packed) {
		ret = -EOPNOTSUPP;
		step = "packed ring";
		goto fail;
	}
	if ((ret = ring_addr(vh, &vq->vq, index, &addr))) {
		step = "ring addresses";
		goto fail;
	}
	/* Ordered as the kernel wants them: size, base and addresses while no backend is set,
	 * then the doorbell and interrupt, the backend last. */
	step = "VHOST_SET_VRING_NUM";
	if ((ret = vh_ioctl(vh, VHOST_SET_VRING_NUM, &num)))
		goto fail;
	step = "VHOST_SET_VRING_BASE";
	if ((ret = vh_ioctl(vh, VHOST_SET_VRING_BASE, &base)))
		goto fail;
	step = "VHOST_SET_VRING_ADDR";
	if ((ret = vh_ioctl(vh, VHOST_SET_VRING_ADDR, &addr)))
		goto fail;
	step = "VHOST_SET_VRING_CALL";
	if ((ret = set_call(vh, r, true)))
		goto fail;
	step = "VHOST_SET_VRING_ERR";
	if ((ret = ring_file(vh, VHOST_SET_VRING_ERR, index, vh->err_fd)))
		goto fail;
	/* vmm's loop lets go of the doorbell before the kernel polls it: never both. */
	step = "the doorbell";
	if ((ret = virtio_queue_lend_kick(d, r->q)))
		goto fail;
	r->running = true;
	step = "VHOST_SET_VRING_KICK";
	if ((ret = ring_file(vh, VHOST_SET_VRING_KICK, index, vq->kick_fd)))
		goto fail_running;
	step = "VHOST_NET_SET_BACKEND";
	if (vh->backend_fd >= 0 &&
	    (ret = ring_file(vh, VHOST_NET_SET_BACKEND, index, vh->backend_fd)))
		goto fail_running;
	return 0;
fail_running:
	log_error("%s: vhost: queue %u: %s: %s", d->name, r->q, step, strerror(-ret));
	vhost_ring_stop(vh, r->q);
	return ret;
fail:
	log_error("%s: vhost: queue %u: %s: %s", d->name, r->q, step, strerror(-ret));
	return ret;
}

int vhost_start(struct vhost *vh)
{
	struct virtio_dev *d = vh->dev;
	uint64_t features = d->driver_features & vh->features;
	int ret;

	/* Only what the kernel knows of: a device type's own bits (virtio-net's offloads) are the
	 * tap's business, not vhost's. Never VHOST_NET_F_VIRTIO_NET_HDR: left out, the header goes
	 * to and from the tap as the guest wrote it. It is bit 27, a legacy driver's ANY_LAYOUT,
	 * which is therefore not passed on either (vhost-net takes any layout regardless). */
	features &= ~(1ULL << VHOST_NET_F_VIRTIO_NET_HDR);
	if ((ret = vh_ioctl(vh, VHOST_SET_FEATURES, &features))) {
		log_error("%s: vhost: VHOST_SET_FEATURES %#llx: %s", d->name,
			  (unsigned long long)features, strerror(-ret));
		return ret;
	}
	for (unsigned i = 0; i < vh->nr_rings; i++) {
		if (!d->queues[vh->rings[i].q].vq.enabled)
			continue; /* started at its first kick if the driver enables it later */
		if ((ret = ring_start(vh, &vh->rings[i]))) {
			vhost_stop(vh);
			return ret;
		}
	}
	return 0;
}

int vhost_ring_start(struct vhost *vh, unsigned q)
{
	struct vhost_ring *r = ring_of(vh, q);

	if (!r || !vh->dev->queues[q].vq.enabled)
		return -EINVAL;
	return ring_start(vh, r);
}

void vhost_ring_stop(struct vhost *vh, unsigned q)
{
	struct vhost_ring *r = ring_of(vh, q);
	struct virtio_dev *d = vh->dev;
	struct vhost_vring_state base;
	unsigned index;
	int ret;

	if (!r || !r->running)
		return;
	index = ring_index(vh, r);
	base = (struct vhost_vring_state){ .index = index };
	/* The backend off first: the kernel's worker stops using the ring; then it lets go of the
	 * doorbell, and only then does vmm's loop watch it again. A failure here is the kernel's
	 * (the fd is ours and valid); it is logged, and the doorbell still comes back. */
	if (vh->backend_fd >= 0 && (ret = ring_file(vh, VHOST_NET_SET_BACKEND, index, -1)))
		log_warn("%s: vhost: queue %u: detaching the backend: %s", d->name, q,
			 strerror(-ret));
	if ((ret = vh_ioctl(vh, VHOST_GET_VRING_BASE, &base)))
		log_debug("%s: vhost: queue %u: VHOST_GET_VRING_BASE: %s", d->name, q,
			  strerror(-ret));
	if ((ret = ring_file(vh, VHOST_SET_VRING_KICK, index, VHOST_FILE_UNBIND)))
		log_warn("%s: vhost: queue %u: unbinding the doorbell: %s", d->name, q,
			 strerror(-ret));
	r->running = false;
	if ((ret = virtio_queue_reclaim_kick(d, q)))
		log_warn("%s: queue %u: doorbell not watched again: %s", d->name, q,
			 strerror(-ret));
}

void vhost_stop(struct vhost *vh)
{
	for (unsigned i = 0; i < vh->nr_rings; i++)
		vhost_ring_stop(vh, vh->rings[i].q);
}

bool vhost_ring_running(const struct vhost *vh, unsigned q)
{
	for (unsigned i = 0; i < vh->nr_rings; i++) {
		if (vh->rings[i].q == q)
			return vh->rings[i].running;
	}
	return false;
}
