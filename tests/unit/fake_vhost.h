/* The kernel's vhost, replaced, for the tests of the devices that use backend/vhost.c. A test
 * that includes this is linked with -Wl,--wrap=ioctl: the "/dev/vhost-*" descriptors it hands a
 * device are eventfds registered with fake_vhost_new, and __wrap_ioctl answers their requests as
 * Linux 6.1's vhost does (its rules where they matter: no ring change while a backend is set),
 * keeping what it was told per ring and a log of the requests in order. Any other descriptor's
 * request goes to fake_other_ioctl when set (a stand-in tap's), else to the real ioctl. */
#ifndef VMM_TEST_FAKE_VHOST_H
#define VMM_TEST_FAKE_VHOST_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <linux/vhost.h>
#include <sys/eventfd.h>

#include "memory.h"

#define MAX_FAKES 4
#define B(bit)    (1ULL << (bit))

/* VHOST_FEATURES of Linux 6.1 (NOTIFY_ON_EMPTY, INDIRECT_DESC, EVENT_IDX, LOG_ALL, ANY_LAYOUT,
 * VERSION_1) and ACCESS_PLATFORM, which every 6.1 vhost device answers; no packed ring. */
#define KERNEL_61_RINGS                                                                            \
	(B(24) | B(VIRTIO_F_INDIRECT_DESC) | B(VIRTIO_F_EVENT_IDX) | B(26) |                      \
	 B(VIRTIO_F_ANY_LAYOUT) | B(VIRTIO_F_VERSION_1) | B(33))

struct fake_ring {
	unsigned num, base;
	bool num_set, base_set;
	struct vhost_vring_addr addr;
	bool addr_set;
	int kick, call, err, backend;
};

/* One /dev/vhost-* as the test's kernel sees it. */
struct fake {
	int fd;
	bool owner;
	uint64_t features, acked;
	bool features_set;
	struct vhost_memory_region regions[GMEM_MAX_REGIONS];
	unsigned nregions;
	struct fake_ring ring[2];
	bool running;  /* vhost-vsock: VHOST_VSOCK_SET_RUNNING 1 */
	uint64_t cid;  /* vhost-vsock: VHOST_VSOCK_SET_GUEST_CID */
	char log[1024]; /* the requests in order, by short name and ring */
};

static struct {
	struct fake fakes[MAX_FAKES];
	unsigned nr;
	uint64_t kernel_features;
	unsigned long fail_req; /* this request fails with EIO */
} vk;

/* Requests to descriptors that are not fakes; returns -errno, or 1 for "not mine". */
static int (*fake_other_ioctl)(int fd, unsigned long req, void *arg);

int __real_ioctl(int fd, unsigned long req, ...);

/* A new fake device whose kernel offers `features`; returns its descriptor. */
static int fake_vhost_new(void)
{
	struct fake *f = &vk.fakes[vk.nr++];

	assert_true(vk.nr <= MAX_FAKES);
	memset(f, 0, sizeof(*f));
	f->fd = eventfd(0, EFD_CLOEXEC);
	assert_true(f->fd >= 0);
	for (int r = 0; r < 2; r++)
		f->ring[r].kick = f->ring[r].call = f->ring[r].err = f->ring[r].backend = -1;
	return f->fd;
}

static struct fake *fake_of(int fd)
{
	for (unsigned i = 0; i < vk.nr; i++) {
		if (vk.fakes[i].fd == fd)
			return &vk.fakes[i];
	}
	return NULL;
}

static void note(struct fake *f, const char *what, unsigned index)
{
	size_t at = strlen(f->log);

	snprintf(f->log + at, sizeof(f->log) - at, "%s%s%u", at ? " " : "", what, index);
}

static int fake_ioctl(struct fake *f, unsigned long req, void *arg)
{
	struct vhost_vring_state *s = arg;
	struct vhost_vring_file *file = arg;
	struct vhost_vring_addr *a = arg;
	struct fake_ring *r = NULL;
	unsigned idx = 0;

	if (req == vk.fail_req)
		return -EIO;
	if (req == VHOST_SET_VRING_NUM || req == VHOST_SET_VRING_BASE ||
	    req == VHOST_GET_VRING_BASE)
		idx = s->index;
	else if (req == VHOST_SET_VRING_ADDR)
		idx = a->index;
	else if (req == VHOST_SET_VRING_KICK || req == VHOST_SET_VRING_CALL ||
		 req == VHOST_SET_VRING_ERR || req == VHOST_NET_SET_BACKEND)
		idx = file->index;
	if (idx >= 2)
		return -ENOBUFS;
	r = &f->ring[idx];
	switch (req) {
	case VHOST_SET_OWNER:
		if (f->owner)
			return -EBUSY;
		f->owner = true;
		note(f, "owner", 0);
		return 0;
	case VHOST_GET_FEATURES:
		*(uint64_t *)arg = vk.kernel_features;
		return 0;
	case VHOST_SET_FEATURES:
		if (*(uint64_t *)arg & ~vk.kernel_features)
			return -EOPNOTSUPP;
		f->acked = *(uint64_t *)arg;
		f->features_set = true;
		note(f, "features", 0);
		return 0;
	case VHOST_SET_MEM_TABLE: {
		const struct vhost_memory *m = arg;

		assert_true(m->nregions <= GMEM_MAX_REGIONS);
		f->nregions = m->nregions;
		memcpy(f->regions, m->regions, m->nregions * sizeof(m->regions[0]));
		note(f, "mem", 0);
		return 0;
	}
	case VHOST_VSOCK_SET_GUEST_CID:
		f->cid = *(uint64_t *)arg;
		note(f, "cid", 0);
		return 0;
	case VHOST_VSOCK_SET_RUNNING:
		/* The kernel checks that both rings can be reached before it serves them. */
		if (*(int *)arg && !(f->ring[0].addr_set && f->ring[1].addr_set))
			return -EFAULT;
		f->running = *(int *)arg;
		note(f, f->running ? "run" : "halt", 0);
		return 0;
	}
	/* The kernel's rule: a ring with a backend (vhost-net's tap, vhost-vsock running) cannot
	 * be resized or moved. */
	if ((req == VHOST_SET_VRING_NUM || req == VHOST_SET_VRING_BASE ||
	     req == VHOST_SET_VRING_ADDR) && (r->backend >= 0 || f->running))
		return -EBUSY;
	switch (req) {
	case VHOST_SET_VRING_NUM:
		r->num = s->num;
		r->num_set = true;
		note(f, "num", idx);
		return 0;
	case VHOST_SET_VRING_BASE:
		r->base = s->num;
		r->base_set = true;
		note(f, "base", idx);
		return 0;
	case VHOST_GET_VRING_BASE:
		s->num = r->base;
		note(f, "getbase", idx);
		return 0;
	case VHOST_SET_VRING_ADDR:
		r->addr = *a;
		r->addr_set = true;
		note(f, "addr", idx);
		return 0;
	case VHOST_SET_VRING_KICK:
		r->kick = file->fd;
		note(f, file->fd < 0 ? "unkick" : "kick", idx);
		return 0;
	case VHOST_SET_VRING_CALL:
		r->call = file->fd;
		note(f, "call", idx);
		return 0;
	case VHOST_SET_VRING_ERR:
		r->err = file->fd;
		note(f, "err", idx);
		return 0;
	case VHOST_NET_SET_BACKEND:
		r->backend = file->fd;
		note(f, file->fd < 0 ? "detach" : "backend", idx);
		return 0;
	}
	return -ENOTTY;
}

int __wrap_ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;
	struct fake *f;
	int ret = 1;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if ((f = fake_of(fd)))
		ret = fake_ioctl(f, req, arg);
	else if (fake_other_ioctl)
		ret = fake_other_ioctl(fd, req, arg);
	if (ret == 1)
		return __real_ioctl(fd, req, arg);
	if (ret < 0) {
		errno = -ret;
		return -1;
	}
	return 0;
}

/* Empties the log of every fake. */
static inline void fake_log_clear(void)
{
	for (unsigned i = 0; i < vk.nr; i++)
		vk.fakes[i].log[0] = 0;
}

#endif
