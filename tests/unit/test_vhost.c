/* The vhost plumbing (backend/vhost.c) on a virtio-net device, with the kernel replaced
 * (fake_vhost.h: linked with -Wl,--wrap=ioctl, the /dev/vhost-net descriptors it hands the device
 * are answered as a Linux 6.1 vhost-net would, no packed ring). The tap is a socket pair, as in
 * test_virtio_net; its TUNSETVNETHDRSZ and TUNSETQUEUE are answered here. The test plays the driver through the device core and
 * runs the event loop by hand. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/if_tun.h>
#include <linux/vhost.h>
#include <setjmp.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "event.h"
#include "memory.h"
#include "virtio/net.h"

/* linux/vhost.h brought the kernel's names for these; the test driver has its own. */
#undef VRING_PACKED_DESC_F_AVAIL
#undef VRING_PACKED_DESC_F_USED
#include "driver_ring.h"

#include "fake_vhost.h"

#define F(bit) (1ULL << VIRTIO_NET_F_##bit)

/* What Linux 6.1's vhost-net answers to VHOST_GET_FEATURES: the ring bits, its
 * VHOST_NET_F_VIRTIO_NET_HDR and MRG_RXBUF. */
#define KERNEL_61 (KERNEL_61_RINGS | B(VHOST_NET_F_VIRTIO_NET_HDR) | F(MRG_RXBUF))

static int vnet_hdr_sz; /* the stand-in tap's, as TUNSETVNETHDRSZ set it */

/* The stand-in tap is a socket: the tap's own requests are answered here. */
static int tap_ioctl(int fd, unsigned long req, void *arg)
{
	if (req == TUNSETVNETHDRSZ) {
		vnet_hdr_sz = *(int *)arg;
		return 0;
	}
	return req == TUNSETQUEUE ? 0 : 1;
}

/* ---- fixture ---- */

struct vfx {
	struct guest_mem mem;
	struct event_loop loop;
	struct tap tap;
	struct net_dev net;
	struct virtio_dev *d;
	struct tq q[2 * MAX_FAKES + 1];
	int host[MAX_FAKES];
	unsigned pairs;
	int signals[2 * MAX_FAKES + 1], config_signals;
	int irqfd[2 * MAX_FAKES + 1]; /* the transport's direct eventfd per queue, when direct */
	bool direct[2 * MAX_FAKES + 1];
};

static struct vfx *cur;

static void fake_signal(struct virtio_dev *d, int q)
{
	if (q < 0)
		cur->config_signals++;
	else
		cur->signals[q]++;
}

static int fake_queue_irqfd(struct virtio_dev *d, unsigned q)
{
	return cur->direct[q] ? cur->irqfd[q] : -1;
}

static const struct virtio_transport_ops fake_transport = {
	.signal = fake_signal,
	.queue_irqfd = fake_queue_irqfd,
};

static void pump(struct vfx *f)
{
	int i, r;

	for (i = 0; (r = event_loop_run_once(&f->loop, 0)) > 0; i++)
		assert_true(i < 1000);
	assert_int_equal(r, 0);
}

/* A device of `pairs` queue pairs on vhost-net; the kernel has `kernel` features. */
static void vfx_init(struct vfx *f, unsigned pairs, uint64_t kernel)
{
	static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
	int fds[MAX_FAKES];

	memset(f, 0, sizeof(*f));
	memset(&vk, 0, sizeof(vk));
	fake_other_ioctl = tap_ioctl;
	cur = f;
	f->d = &f->net.vdev;
	f->pairs = pairs;
	vk.kernel_features = kernel;
	assert_int_equal(gmem_init(&f->mem, 16 << 20), 0);
	assert_int_equal(event_loop_init(&f->loop, "test"), 0);
	strcpy(f->tap.name, "test0");
	f->tap.nr_queues = pairs;
	for (unsigned i = 0; i < TAP_MAX_QUEUES; i++)
		f->tap.fds[i] = -1;
	for (unsigned i = 0; i < pairs; i++) {
		int sv[2];

		assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC,
					    0, sv), 0);
		f->tap.fds[i] = sv[0];
		f->host[i] = sv[1];
	}
	assert_int_equal(net_init(&f->net, "net0", &f->tap, mac, 1500, &f->mem, &f->loop), 0);
	for (unsigned i = 0; i < pairs; i++)
		fds[i] = fake_vhost_new();
	assert_int_equal(net_set_vhost(&f->net, fds), 0);
	f->d->transport = &fake_transport;
}

static void vfx_teardown(struct vfx *f)
{
	net_destroy(&f->net);
	for (unsigned i = 0; i < f->pairs; i++) {
		close(f->tap.fds[i]);
		close(f->host[i]);
	}
	event_loop_destroy(&f->loop);
	gmem_free(&f->mem);
}

/* The driver's initialisation: features (the device's own bits and the ring bits), every queue
 * set up, DRIVER_OK. Legacy: no FEATURES_OK, bits 0-31 only. */
static void vfx_go(struct vfx *f, uint64_t features, bool legacy)
{
	struct virtio_dev *d = f->d;

	pthread_mutex_lock(&d->lock);
	d->legacy_driver = legacy;
	virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	virtio_set_driver_features(d, 0, (uint32_t)features);
	virtio_set_driver_features(d, 1, legacy ? 0 : (uint32_t)(features >> 32));
	if (!legacy) {
		virtio_set_status(d, d->status | VIRTIO_STATUS_FEATURES_OK);
		assert_true(d->status & VIRTIO_STATUS_FEATURES_OK);
	}
	for (unsigned q = 0; q < d->nr_queues; q++)
		tq_setup(d, q, &f->q[q], &f->mem);
	virtio_set_status(d, d->status | VIRTIO_STATUS_DRIVER_OK);
	pthread_mutex_unlock(&d->lock);
	pump(f);
}

static void vfx_reset(struct vfx *f)
{
	pthread_mutex_lock(&f->d->lock);
	virtio_set_status(f->d, 0);
	pthread_mutex_unlock(&f->d->lock);
}

static bool needs_reset(struct vfx *f)
{
	return f->d->status & VIRTIO_STATUS_NEEDS_RESET;
}

static uint64_t eventfd_count(int fd)
{
	uint64_t v = 0;

	return read(fd, &v, sizeof(v)) == sizeof(v) ? v : 0;
}

static void ring_running(struct vfx *f, unsigned pair, unsigned r)
{
	struct fake *fk = &vk.fakes[pair];
	unsigned q = 2 * pair + r;

	assert_int_equal(fk->ring[r].kick, f->d->queues[q].kick_fd);
	assert_int_equal(fk->ring[r].backend, f->tap.fds[pair]);
	assert_true(f->d->queues[q].kick_lent);
	assert_true(vhost_ring_running(&f->net.vhost[pair], q));
}

static void ring_stopped(struct vfx *f, unsigned pair, unsigned r)
{
	struct fake *fk = &vk.fakes[pair];
	unsigned q = 2 * pair + r;

	assert_int_equal(fk->ring[r].kick, -1);
	assert_int_equal(fk->ring[r].backend, -1);
	assert_false(f->d->queues[q].kick_lent);
	assert_false(vhost_ring_running(&f->net.vhost[pair], q));
}

#define MODERN (F(CSUM) | F(GUEST_CSUM) | F(MRG_RXBUF) | F(CTRL_VQ) | B(VIRTIO_F_VERSION_1) |   \
		B(VIRTIO_F_EVENT_IDX) | B(VIRTIO_F_INDIRECT_DESC))

/* ---- tests ---- */

/* At setup: owner, features asked, the memory table is guest RAM region by region. The offer
 * is vmm's without what the kernel lacks (the packed ring) and without CTRL_RX, whose filter
 * vmm cannot apply to frames it never sees. */
static void setup_and_offer(void **state)
{
	struct vfx f;
	struct fake *fk;

	assert_int_equal(test_ring_features(), 0); /* split rings only, below */
	vfx_init(&f, 1, KERNEL_61);
	fk = &vk.fakes[0];
	assert_true(fk->owner);
	assert_string_equal(fk->log, "owner0 mem0");
	assert_int_equal(fk->nregions, (unsigned)f.mem.nr);
	for (int i = 0; i < f.mem.nr; i++) {
		assert_int_equal(fk->regions[i].guest_phys_addr, f.mem.r[i].gpa);
		assert_int_equal(fk->regions[i].memory_size, f.mem.r[i].size);
		assert_int_equal(fk->regions[i].userspace_addr, (uint64_t)(uintptr_t)f.mem.r[i].host);
	}
	assert_false(f.d->features & B(VIRTIO_F_RING_PACKED));
	assert_false(f.d->features & F(CTRL_RX));
	assert_true(f.d->features & B(VIRTIO_F_VERSION_1));
	assert_true(f.d->features & B(VIRTIO_F_EVENT_IDX));
	assert_true(f.d->features & F(MRG_RXBUF));
	assert_true(f.d->features & F(CTRL_VQ));
	/* vmm's loop no longer reads the tap. */
	assert_int_equal(event_del(&f.loop, f.tap.fds[0]), -ENOENT);
	vfx_teardown(&f);

	/* A kernel without EVENT_IDX and MRG_RXBUF: neither is offered. */
	vfx_init(&f, 1, KERNEL_61 & ~(B(VIRTIO_F_EVENT_IDX) | F(MRG_RXBUF)));
	assert_false(f.d->features & B(VIRTIO_F_EVENT_IDX));
	assert_false(f.d->features & F(MRG_RXBUF));
	assert_true(f.d->features & F(CSUM)); /* the tap's business, not vhost's */
	vfx_teardown(&f);
}

/* DRIVER_OK: the features the kernel knows of (not its NET_HDR bit, not the device's own),
 * the tap's header size, then per ring: size, base 0, the rings' host addresses, interrupt,
 * error, doorbell (vmm's loop lets go of it), backend. The control queue stays vmm's. */
static void start_sequence(void **state)
{
	struct vfx f;
	struct fake *fk;

	vfx_init(&f, 1, KERNEL_61);
	fk = &vk.fakes[0];
	vfx_go(&f, MODERN, false);
	assert_true(virtio_live(f.d));
	assert_string_equal(fk->log, "owner0 mem0 features0 num0 base0 addr0 call0 err0 kick0 "
				     "backend0 num1 base1 addr1 call1 err1 kick1 backend1");
	assert_int_equal(fk->acked, MODERN & KERNEL_61 & ~B(VHOST_NET_F_VIRTIO_NET_HDR));
	assert_int_equal(vnet_hdr_sz, 12);
	for (unsigned r = 0; r < 2; r++) {
		struct virtq *vq = &f.d->queues[r].vq;

		assert_int_equal(fk->ring[r].num, RING_SIZE);
		assert_int_equal(fk->ring[r].base, 0);
		assert_int_equal(fk->ring[r].addr.desc_user_addr,
				 (uint64_t)(uintptr_t)gmem_ptr(&f.mem, vq->desc_gpa, 1));
		assert_int_equal(fk->ring[r].addr.avail_user_addr,
				 (uint64_t)(uintptr_t)gmem_ptr(&f.mem, vq->avail_gpa, 1));
		assert_int_equal(fk->ring[r].addr.used_user_addr,
				 (uint64_t)(uintptr_t)gmem_ptr(&f.mem, vq->used_gpa, 1));
		assert_int_equal(fk->ring[r].call, f.net.vhost[0].rings[r].call_fd);
		assert_int_equal(fk->ring[r].err, f.net.vhost[0].err_fd);
		ring_running(&f, 0, r);
	}
	assert_false(f.d->queues[2].kick_lent);

	/* A kick on a ring the kernel serves stays for the kernel: vmm's loop does not take it. */
	virtio_kick(f.d, 1);
	pump(&f);
	assert_int_equal(eventfd_count(f.d->queues[1].kick_fd), 1);
	vfx_teardown(&f);
}

/* A legacy driver without MRG_RXBUF: the 10-byte header, on the tap too. Its ANY_LAYOUT is bit
 * 27, which vhost-net reads as VHOST_NET_F_VIRTIO_NET_HDR (the kernel would add and strip the
 * header itself): never passed on; vhost-net takes any layout anyway. */
static void start_legacy(void **state)
{
	struct vfx f;

	vfx_init(&f, 1, KERNEL_61);
	vfx_go(&f, F(CSUM) | F(CTRL_VQ) | B(VIRTIO_F_ANY_LAYOUT), true);
	assert_true(virtio_live(f.d));
	assert_int_equal(vnet_hdr_sz, 10);
	assert_true(vk.fakes[0].features_set);
	assert_int_equal(vk.fakes[0].acked, 0);
	ring_running(&f, 0, 0);
	vfx_teardown(&f);
}

/* The kernel's interrupt for a ring becomes the transport's signal for that queue; after a
 * reset, one left over reaches nobody. */
static void call_relayed(void **state)
{
	struct vfx f;
	uint64_t one = 1;

	vfx_init(&f, 1, KERNEL_61);
	vfx_go(&f, MODERN, false);
	assert_int_equal(write(f.net.vhost[0].rings[0].call_fd, &one, 8), 8);
	pump(&f);
	assert_int_equal(f.signals[0], 1);
	assert_int_equal(f.signals[1], 0);
	assert_int_equal(f.d->queues[0].interrupts, 1);
	assert_int_equal(write(f.net.vhost[0].rings[1].call_fd, &one, 8), 8);
	pump(&f);
	assert_int_equal(f.signals[1], 1);

	vfx_reset(&f);
	assert_int_equal(write(f.net.vhost[0].rings[0].call_fd, &one, 8), 8);
	pump(&f);
	assert_int_equal(f.signals[0], 1);
	vfx_teardown(&f);
}

/* Reset: backend off, base read, doorbell unbound and back in vmm's loop, for every ring; a
 * second initialisation starts them again. */
static void reset_and_restart(void **state)
{
	struct vfx f;
	struct fake *fk;

	vfx_init(&f, 1, KERNEL_61);
	fk = &vk.fakes[0];
	vfx_go(&f, MODERN, false);
	fk->log[0] = 0;
	vfx_reset(&f);
	assert_string_equal(fk->log, "detach0 getbase0 unkick0 detach1 getbase1 unkick1");
	ring_stopped(&f, 0, 0);
	ring_stopped(&f, 0, 1);
	/* The doorbell is vmm's again: a kick is drained by its loop (and ignored: not live). */
	virtio_kick(f.d, 0);
	pump(&f);
	assert_int_equal(eventfd_count(f.d->queues[0].kick_fd), 0);

	fk->log[0] = 0;
	vfx_go(&f, MODERN, false);
	assert_true(virtio_live(f.d));
	assert_string_equal(fk->log, "features0 num0 base0 addr0 call0 err0 kick0 backend0 num1 "
				     "base1 addr1 call1 err1 kick1 backend1");
	ring_running(&f, 0, 0);
	ring_running(&f, 0, 1);
	vfx_teardown(&f);
}

/* The driver stops one queue (virtio-mmio QueueReady 0): that ring alone stops and its doorbell
 * comes back. Enabled again, its first kick hands it to the kernel again and is passed on. */
static void queue_stop_and_again(void **state)
{
	struct vfx f;

	vfx_init(&f, 1, KERNEL_61);
	vfx_go(&f, MODERN, false);
	pthread_mutex_lock(&f.d->lock);
	virtio_queue_stop(f.d, 1);
	pthread_mutex_unlock(&f.d->lock);
	ring_stopped(&f, 0, 1);
	ring_running(&f, 0, 0);

	pthread_mutex_lock(&f.d->lock);
	tq_setup(f.d, 1, &f.q[1], &f.mem);
	pthread_mutex_unlock(&f.d->lock);
	assert_false(vhost_ring_running(&f.net.vhost[0], 1));
	virtio_kick(f.d, 1);
	pump(&f);
	ring_running(&f, 0, 1);
	assert_int_equal(eventfd_count(f.d->queues[1].kick_fd), 1); /* for the kernel */
	assert_true(virtio_live(f.d));
	vfx_teardown(&f);
}

/* The kernel reports a ring it cannot use: the device needs reset (the driver is told), the
 * rings stop; the driver's reset and a new start bring it back. */
static void ring_error_needs_reset(void **state)
{
	struct vfx f;
	uint64_t one = 1;

	vfx_init(&f, 1, KERNEL_61);
	vfx_go(&f, MODERN, false);
	assert_int_equal(write(f.net.vhost[0].err_fd, &one, 8), 8);
	pump(&f);
	assert_true(needs_reset(&f));
	assert_int_equal(f.config_signals, 1);
	ring_stopped(&f, 0, 0);
	ring_stopped(&f, 0, 1);
	/* A second report changes nothing. */
	assert_int_equal(write(f.net.vhost[0].err_fd, &one, 8), 8);
	pump(&f);
	assert_int_equal(f.config_signals, 1);

	vfx_reset(&f);
	vfx_go(&f, MODERN, false);
	assert_true(virtio_live(f.d));
	ring_running(&f, 0, 0);
	vfx_teardown(&f);
}

/* A kernel call failing at DRIVER_OK puts the device in NEEDS_RESET with every ring stopped and
 * every doorbell vmm's. */
static void start_failure(void **state)
{
	struct vfx f;

	vfx_init(&f, 1, KERNEL_61);
	vk.fail_req = VHOST_NET_SET_BACKEND;
	vfx_go(&f, MODERN, false);
	assert_true(needs_reset(&f));
	ring_stopped(&f, 0, 0);
	ring_stopped(&f, 0, 1);
	vk.fail_req = 0;
	vfx_reset(&f);

	vk.fail_req = VHOST_SET_VRING_ADDR;
	vfx_go(&f, MODERN, false);
	assert_true(needs_reset(&f));
	ring_stopped(&f, 0, 0);
	vfx_teardown(&f);
}

/* Multiqueue: one vhost-net per pair, each on its own tap queue; the control queue (the last)
 * stays with vmm and still answers. */
static void multiqueue(void **state)
{
	struct vfx f;
	uint8_t ack = 0xff;
	uint16_t pairs = 2;
	uint8_t cmd[4] = { VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET };
	struct tbuf b[2] = { { DATA_GPA, 4, false }, { DATA_GPA + 64, 1, true } };
	uint32_t id, len;

	vfx_init(&f, 2, KERNEL_61);
	assert_int_equal(f.d->nr_queues, 5);
	assert_true(f.d->features & F(MQ));
	vfx_go(&f, MODERN | F(MQ), false);
	for (unsigned p = 0; p < 2; p++) {
		ring_running(&f, p, 0);
		ring_running(&f, p, 1);
	}
	assert_false(f.d->queues[4].kick_lent);

	memcpy(cmd + 2, &pairs, 2);
	memcpy(gmem_ptr(&f.mem, DATA_GPA, 4), cmd, 4);
	memcpy(gmem_ptr(&f.mem, DATA_GPA + 64, 1), &ack, 1);
	tq_add(&f.q[4], b, 2);
	virtio_kick(f.d, 4);
	pump(&f);
	assert_true(tq_used(&f.q[4], &id, &len));
	memcpy(&ack, gmem_ptr(&f.mem, DATA_GPA + 64, 1), 1);
	assert_int_equal(ack, VIRTIO_NET_OK);
	assert_int_equal(f.net.curr_pairs, 2);
	vfx_teardown(&f);
}

/* Where the transport has a direct eventfd for a queue (an unmasked MSI-X vector), the kernel
 * writes it; where not, vmm relays. A change of routing moves the kernel's writer at once, a
 * non-change costs no call, and a stopped ring is left alone. */
static void irq_direct_and_relayed(void **state)
{
	struct vfx f;
	struct fake *fk;

	vfx_init(&f, 1, KERNEL_61);
	fk = &vk.fakes[0];
	f.irqfd[0] = 100; /* never written: only passed on */
	f.irqfd[1] = 101;
	f.direct[0] = true;
	vfx_go(&f, MODERN, false);
	assert_int_equal(fk->ring[0].call, 100);
	assert_int_equal(fk->ring[1].call, f.net.vhost[0].rings[1].call_fd);

	/* The vector is masked: its pending bit needs vmm. */
	fk->log[0] = 0;
	f.direct[0] = false;
	pthread_mutex_lock(&f.d->lock);
	virtio_irq_route_changed(f.d);
	pthread_mutex_unlock(&f.d->lock);
	assert_string_equal(fk->log, "call0");
	assert_int_equal(fk->ring[0].call, f.net.vhost[0].rings[0].call_fd);
	f.direct[1] = true;
	pthread_mutex_lock(&f.d->lock);
	virtio_irq_route_changed(f.d);
	virtio_irq_route_changed(f.d);
	pthread_mutex_unlock(&f.d->lock);
	assert_string_equal(fk->log, "call0 call1");
	assert_int_equal(fk->ring[1].call, 101);

	vfx_reset(&f);
	fk->log[0] = 0;
	f.direct[0] = true;
	pthread_mutex_lock(&f.d->lock);
	virtio_irq_route_changed(f.d);
	pthread_mutex_unlock(&f.d->lock);
	assert_string_equal(fk->log, "");
	vfx_teardown(&f);
}

/* The control queue (vmm's) breaks the device: the kernel's rings stop with it. */
static void ctrl_failure_stops_the_rings(void **state)
{
	struct vfx f;
	struct tbuf b = { DATA_GPA, 4, false }; /* no writable ack byte */

	vfx_init(&f, 1, KERNEL_61);
	vfx_go(&f, MODERN, false);
	tq_add(&f.q[2], &b, 1);
	virtio_kick(f.d, 2);
	pump(&f);
	assert_true(needs_reset(&f));
	ring_stopped(&f, 0, 0);
	ring_stopped(&f, 0, 1);
	vfx_teardown(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(setup_and_offer),
		cmocka_unit_test(start_sequence),
		cmocka_unit_test(start_legacy),
		cmocka_unit_test(call_relayed),
		cmocka_unit_test(reset_and_restart),
		cmocka_unit_test(queue_stop_and_again),
		cmocka_unit_test(ring_error_needs_reset),
		cmocka_unit_test(start_failure),
		cmocka_unit_test(multiqueue),
		cmocka_unit_test(irq_direct_and_relayed),
		cmocka_unit_test(ctrl_failure_stops_the_rings),
	};

	test_ring_packed = false; /* the kernel of Debian 12 has split rings only */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
