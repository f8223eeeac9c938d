#include "virtio/vsock.h"
#include "log.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/vhost.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* The kernel serves the sockets only with both rings: VHOST_VSOCK_SET_RUNNING 1 hands it the two
 * (it checks both), 0 takes both back. So it is on exactly while both rings are the kernel's and
 * the driver has not reset the device; a queue stopped alone (virtio-mmio) stops the sockets'
 * traffic until the driver has set it up again. 0 or -errno (logged). */
static int set_running(struct vsock_dev *v, bool on)
{
	int arg = on;

	if (on == v->running)
		return 0;
	if (ioctl(v->vhost.fd, VHOST_VSOCK_SET_RUNNING, &arg) < 0) {
		int ret = -errno;

		log_error("%s: VHOST_VSOCK_SET_RUNNING %d: %s", v->vdev.name, arg, strerror(-ret));
		return ret;
	}
	v->running = on;
	return 0;
}

/* Both rings are the kernel's: the sockets' traffic may flow. */
static int run_if_ready(struct vsock_dev *v)
{
	if (!vhost_ring_running(&v->vhost, VSOCK_RXQ) || !vhost_ring_running(&v->vhost, VSOCK_TXQ))
		return 0;
	return set_running(v, true);
}

/* The sockets' traffic off, then the rings back with vmm. */
static void stop_rings(struct vsock_dev *v)
{
	set_running(v, false);
	vhost_stop(&v->vhost);
}

static void vsock_queue_notify(struct virtio_dev *d, unsigned q)
{
	struct vsock_dev *v = d->priv;
	int ret;

	/* The event queue: the driver's buffers wait there for an event vmm never sends. */
	if (q == VSOCK_EVENTQ || vhost_ring_running(&v->vhost, q))
		return;
	/* An rx or tx queue the driver enabled after DRIVER_OK, or again after stopping it: the
	 * kernel takes it now, and the kick is passed on. */
	if ((ret = vhost_ring_start(&v->vhost, q)) || (ret = run_if_ready(v))) {
		virtio_fail(d, "queue %u: vhost-vsock cannot serve it: %s", q, strerror(-ret));
		return; /* vsock_failed stopped the rings */
	}
	virtio_kick(d, q);
}

static int vsock_start(struct virtio_dev *d)
{
	struct vsock_dev *v = d->priv;
	int ret;

	if ((ret = vhost_start(&v->vhost)))
		return ret;
	if ((ret = run_if_ready(v)))
		vhost_stop(&v->vhost);
	return ret;
}

static void vsock_reset(struct virtio_dev *d)
{
	stop_rings(d->priv);
}

/* NEEDS_RESET, whoever found it: the kernel's rings stop, as vmm's own queues do. */
static void vsock_failed(struct virtio_dev *d)
{
	stop_rings(d->priv);
}

static void vsock_queue_stop(struct virtio_dev *d, unsigned q)
{
	struct vsock_dev *v = d->priv;

	if (q == VSOCK_EVENTQ)
		return;
	/* Both rings stop serving sockets before this one goes back to vmm. */
	set_running(v, false);
	vhost_ring_stop(&v->vhost, q);
}

static void vsock_irq_route(struct virtio_dev *d)
{
	vhost_irq_route(&((struct vsock_dev *)d->priv)->vhost);
}

static void vsock_log_state(struct virtio_dev *d)
{
	struct vsock_dev *v = d->priv;

	log_info("%s: CID %llu; vhost-vsock %s (rx %s, tx %s)", d->name, (unsigned long long)v->cid,
		 v->running ? "running" : "stopped",
		 vhost_ring_running(&v->vhost, VSOCK_RXQ) ? "the kernel's" : "vmm's",
		 vhost_ring_running(&v->vhost, VSOCK_TXQ) ? "the kernel's" : "vmm's");
}

static const struct virtio_dev_ops vsock_ops = {
	.name = "vsock",
	.device_id = VIRTIO_ID_VSOCK,
	.pci_class = 0x028000, /* network controller, other */
	.start = vsock_start,
	.queue_notify = vsock_queue_notify,
	.reset = vsock_reset,
	.queue_stop = vsock_queue_stop,
	.irq_route = vsock_irq_route,
	.log_state = vsock_log_state,
	.failed = vsock_failed,
};

int vsock_open_vhost(uint64_t cid, const char *what, int *fd)
{
	int ret;

	if ((*fd = open("/dev/vhost-vsock", O_RDWR | O_CLOEXEC)) < 0) {
		ret = -errno;
		log_error("%s: /dev/vhost-vsock: %s%s", what, strerror(-ret),
			  ret == -ENOENT ? " (load the module: modprobe vhost_vsock)"
			  : ret == -EACCES ? " (vmm's user needs read and write access to it)"
					   : "");
		return ret;
	}
	if (ioctl(*fd, VHOST_VSOCK_SET_GUEST_CID, &cid) < 0) {
		ret = -errno;
		if (ret == -EADDRINUSE)
			log_error("%s: CID %llu is in use by another VM on this host", what,
				  (unsigned long long)cid);
		else
			log_error("%s: VHOST_VSOCK_SET_GUEST_CID: %s", what, strerror(-ret));
		close(*fd);
		*fd = -1;
		return ret;
	}
	return 0;
}

int vsock_init(struct vsock_dev *v, const char *name, uint64_t cid, int vhost_fd,
	       const struct guest_mem *mem, struct event_loop *loop)
{
	uint64_t le_cid = htole64(cid);
	int ret;

	memset(v, 0, sizeof(*v));
	v->cid = cid;
	/* Streams are what every vhost-vsock serves, without a bit (5.10.3: none negotiated means
	 * STREAM); SEQPACKET where the kernel has it (Linux 5.14 on). STREAM and
	 * NO_IMPLIED_STREAM are not offered: Linux 6.1's vhost-vsock knows neither, and a bit it
	 * does not know fails its VHOST_SET_FEATURES. */
	ret = virtio_dev_init(&v->vdev, &vsock_ops, v, name, mem, loop,
			      1ULL << VIRTIO_VSOCK_F_SEQPACKET, VSOCK_QUEUES, VSOCK_QUEUE_SIZE);
	if (ret) {
		log_error("%s: %s", name, strerror(-ret));
		close(vhost_fd);
		vsock_destroy(v);
		return ret;
	}
	if ((ret = vhost_open(&v->vhost, vhost_fd, &v->vdev, VSOCK_RXQ, 2, -1))) {
		vsock_destroy(v); /* vhost_open said why, and closed vhost_fd */
		return ret;
	}
	pthread_mutex_lock(&v->vdev.lock);
	v->vdev.features = vhost_offer(&v->vhost, v->vdev.features,
				       1ULL << VIRTIO_VSOCK_F_SEQPACKET);
	pthread_mutex_unlock(&v->vdev.lock);
	memcpy(v->config, &le_cid, sizeof(le_cid));
	v->vdev.config = v->config;
	v->vdev.config_len = sizeof(v->config);
	return 0;
}

void vsock_destroy(struct vsock_dev *v)
{
	if (v->vhost.dev) {
		pthread_mutex_lock(&v->vdev.lock);
		set_running(v, false);
		pthread_mutex_unlock(&v->vdev.lock);
	}
	vhost_close(&v->vhost);
	v->vdev.config = NULL;
	virtio_dev_destroy(&v->vdev);
}
