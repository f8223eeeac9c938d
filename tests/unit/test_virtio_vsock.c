/* The socket device (virtio/vsock.c) with the kernel's vhost-vsock replaced (fake_vhost.h): what
 * the driver sees (CID, features), the order of requests the kernel gets at DRIVER_OK, reset and
 * a queue stopped alone, and the event queue, which vmm keeps and never uses. */
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "event.h"
#include "memory.h"
#include "virtio/vsock.h"

#include "fake_vhost.h"
/* linux/vhost.h brought the kernel's names for these; the test driver has its own. */
#undef VRING_PACKED_DESC_F_AVAIL
#undef VRING_PACKED_DESC_F_USED
#include "driver_ring.h"

#define BUF_GPA TEST_GPA(0x20000)

/* Linux 6.1's vhost-vsock: its ring bits and SEQPACKET. */
#define KERNEL_VSOCK (KERNEL_61_RINGS | B(VIRTIO_VSOCK_F_SEQPACKET))

struct fx {
	struct guest_mem mem;
	struct event_loop loop;
	struct vsock_dev v;
	struct virtio_dev *d;
	struct fake *fk;
	struct tq q[VSOCK_QUEUES];
	int signals[VSOCK_QUEUES];
};

static struct fx *cur;

static void fake_signal(struct virtio_dev *d, int q)
{
	if (q >= 0)
		cur->signals[q]++;
}

static const struct virtio_transport_ops fake_transport = { .signal = fake_signal };

static void pump(struct fx *f)
{
	int i, r;

	for (i = 0; (r = event_loop_run_once(&f->loop, 0)) > 0; i++)
		assert_true(i < 1000);
	assert_int_equal(r, 0);
}

static void fx_init(struct fx *f, uint64_t kernel)
{
	int fd;

	memset(f, 0, sizeof(*f));
	memset(&vk, 0, sizeof(vk));
	cur = f;
	vk.kernel_features = kernel;
	assert_int_equal(gmem_init(&f->mem, 4 << 20), 0);
	assert_int_equal(event_loop_init(&f->loop, "test"), 0);
	fd = fake_vhost_new();
	f->fk = &vk.fakes[0];
	assert_int_equal(vsock_init(&f->v, "vsock0", 42, fd, &f->mem, &f->loop), 0);
	f->d = &f->v.vdev;
	f->d->transport = &fake_transport;
}

static void fx_teardown(struct fx *f)
{
	vsock_destroy(&f->v);
	event_loop_destroy(&f->loop);
	gmem_free(&f->mem);
}

/* Features, every queue set up, DRIVER_OK, as Linux's driver does. */
static void fx_go(struct fx *f)
{
	struct virtio_dev *d = f->d;

	pthread_mutex_lock(&d->lock);
	tq_negotiate(d, virtio_get_features(d, 0));
	assert_true(d->status & VIRTIO_STATUS_FEATURES_OK);
	for (unsigned q = 0; q < VSOCK_QUEUES; q++)
		tq_setup(d, q, &f->q[q], &f->mem);
	virtio_set_status(d, d->status | VIRTIO_STATUS_DRIVER_OK);
	pthread_mutex_unlock(&d->lock);
	pump(f);
}

static bool live(struct fx *f)
{
	return virtio_live(f->d);
}

/* The configuration area is the CID, le64; the offer is the kernel's SEQPACKET and ring bits,
 * never the packed ring it lacks, and neither STREAM nor NO_IMPLIED_STREAM, which 6.1's
 * vhost-vsock would refuse in VHOST_SET_FEATURES. */
static void config_and_offer(void **state)
{
	struct fx f;
	uint8_t cfg[8];
	uint64_t cid;

	fx_init(&f, KERNEL_VSOCK);
	assert_string_equal(f.fk->log, "owner0 mem0");
	pthread_mutex_lock(&f.d->lock);
	virtio_config_read(f.d, 0, cfg, sizeof(cfg));
	pthread_mutex_unlock(&f.d->lock);
	memcpy(&cid, cfg, sizeof(cid));
	assert_int_equal(le64toh(cid), 42);
	assert_int_equal(f.d->config_len, 8);
	assert_int_equal(f.d->ops->device_id, 19);
	assert_true(f.d->features & B(VIRTIO_VSOCK_F_SEQPACKET));
	assert_true(f.d->features & B(VIRTIO_F_VERSION_1));
	assert_true(f.d->features & B(VIRTIO_F_EVENT_IDX));
	assert_false(f.d->features & B(VIRTIO_F_RING_PACKED));
	assert_false(f.d->features & B(VIRTIO_VSOCK_F_STREAM));
	assert_false(f.d->features & B(VIRTIO_VSOCK_F_NO_IMPLIED_STREAM));
	fx_teardown(&f);

	/* A kernel before 5.14: no SEQPACKET, and the guest is not told of it. */
	fx_init(&f, KERNEL_61_RINGS);
	assert_false(f.d->features & B(VIRTIO_VSOCK_F_SEQPACKET));
	fx_teardown(&f);
}

/* DRIVER_OK: the negotiated features, each of rx and tx set up as the kernel's rings 0 and 1,
 * and only then the sockets' traffic on. The event queue stays vmm's. */
static void start_sequence(void **state)
{
	struct fx f;

	fx_init(&f, KERNEL_VSOCK);
	fake_log_clear();
	fx_go(&f);
	assert_true(live(&f));
	assert_string_equal(f.fk->log, "features0 num0 base0 addr0 call0 err0 kick0 "
				       "num1 base1 addr1 call1 err1 kick1 run0");
	assert_true(f.fk->running);
	assert_true(f.fk->acked & B(VIRTIO_VSOCK_F_SEQPACKET));
	assert_int_equal(f.fk->ring[0].kick, f.d->queues[VSOCK_RXQ].kick_fd);
	assert_int_equal(f.fk->ring[1].kick, f.d->queues[VSOCK_TXQ].kick_fd);
	assert_true(f.d->queues[VSOCK_RXQ].kick_lent && f.d->queues[VSOCK_TXQ].kick_lent);
	assert_false(f.d->queues[VSOCK_EVENTQ].kick_lent);
	assert_int_equal(f.fk->ring[0].addr.desc_user_addr,
			 (uint64_t)(uintptr_t)gmem_ptr(&f.mem, f.q[0].desc, 1));
	fx_teardown(&f);
}

/* The driver's event buffers wait in the ring: vmm pops none, whatever it is kicked with. */
static void event_queue_kept(void **state)
{
	struct fx f;
	struct tbuf b = { .gpa = BUF_GPA, .len = 8, .write = true };
	uint32_t id, len;

	fx_init(&f, KERNEL_VSOCK);
	fx_go(&f);
	tq_add(&f.q[VSOCK_EVENTQ], &b, 1);
	virtio_kick(f.d, VSOCK_EVENTQ);
	pump(&f);
	assert_false(tq_used(&f.q[VSOCK_EVENTQ], &id, &len));
	assert_int_equal(f.signals[VSOCK_EVENTQ], 0);
	assert_true(live(&f));
	fx_teardown(&f);
}

/* Reset: the traffic off before the rings are taken back; the doorbells are vmm's again. A
 * second start does it all again. */
static void reset_and_restart(void **state)
{
	struct fx f;

	fx_init(&f, KERNEL_VSOCK);
	fx_go(&f);
	fake_log_clear();
	pthread_mutex_lock(&f.d->lock);
	virtio_set_status(f.d, 0);
	pthread_mutex_unlock(&f.d->lock);
	assert_string_equal(f.fk->log, "halt0 getbase0 unkick0 getbase1 unkick1");
	assert_false(f.fk->running);
	assert_false(f.d->queues[VSOCK_RXQ].kick_lent || f.d->queues[VSOCK_TXQ].kick_lent);
	fx_go(&f);
	assert_true(f.fk->running);
	assert_true(live(&f));
	fx_teardown(&f);
}

/* virtio-mmio: the driver stops tx alone. The traffic stops (the kernel needs both rings), tx
 * is vmm's; once the driver has set it up again, its first kick hands it back and the traffic
 * resumes, with the kick passed on to the kernel. */
static void queue_stop_and_again(void **state)
{
	struct fx f;
	uint64_t v;

	fx_init(&f, KERNEL_VSOCK);
	fx_go(&f);
	fake_log_clear();
	pthread_mutex_lock(&f.d->lock);
	virtio_queue_stop(f.d, VSOCK_TXQ);
	pthread_mutex_unlock(&f.d->lock);
	assert_string_equal(f.fk->log, "halt0 getbase1 unkick1");
	assert_false(f.fk->running);
	assert_false(f.d->queues[VSOCK_TXQ].kick_lent);
	assert_true(f.d->queues[VSOCK_RXQ].kick_lent);
	fake_log_clear();
	pthread_mutex_lock(&f.d->lock);
	tq_setup(f.d, VSOCK_TXQ, &f.q[VSOCK_TXQ], &f.mem);
	pthread_mutex_unlock(&f.d->lock);
	virtio_kick(f.d, VSOCK_TXQ);
	pump(&f);
	assert_string_equal(f.fk->log, "num1 base1 addr1 call1 err1 kick1 run0");
	assert_true(f.fk->running);
	assert_true(live(&f));
	/* The kick vmm's loop took was passed on to the doorbell the kernel now watches. */
	assert_int_equal(read(f.d->queues[VSOCK_TXQ].kick_fd, &v, sizeof(v)), sizeof(v));
	fx_teardown(&f);
}

/* The kernel refuses to run: DRIVER_OK leaves the device in NEEDS_RESET, its rings vmm's. */
static void start_failure(void **state)
{
	struct fx f;

	fx_init(&f, KERNEL_VSOCK);
	vk.fail_req = VHOST_VSOCK_SET_RUNNING;
	fx_go(&f);
	assert_true(f.d->status & VIRTIO_STATUS_NEEDS_RESET);
	assert_false(f.fk->running);
	assert_false(f.d->queues[VSOCK_RXQ].kick_lent || f.d->queues[VSOCK_TXQ].kick_lent);
	vk.fail_req = 0;
	pthread_mutex_lock(&f.d->lock);
	virtio_set_status(f.d, 0);
	pthread_mutex_unlock(&f.d->lock);
	fx_go(&f);
	assert_true(live(&f));
	fx_teardown(&f);
}

/* NEEDS_RESET found by the core, not by the socket device: on virtio-mmio the driver sets the
 * event queue up again too large. The kernel's rings stop as vmm's own queues do: the traffic
 * off, then both rings back with vmm. */
static void failure_stops_rings(void **state)
{
	struct fx f;
	struct virtio_queue *eq;

	fx_init(&f, KERNEL_VSOCK);
	fx_go(&f);
	fake_log_clear();
	eq = &f.d->queues[VSOCK_EVENTQ];
	pthread_mutex_lock(&f.d->lock);
	virtio_queue_stop(f.d, VSOCK_EVENTQ);
	eq->vq.size = eq->max_size * 2;
	assert_int_equal(virtio_queue_enable(f.d, VSOCK_EVENTQ), -EINVAL);
	pthread_mutex_unlock(&f.d->lock);
	assert_true(f.d->status & VIRTIO_STATUS_NEEDS_RESET);
	assert_string_equal(f.fk->log, "halt0 getbase0 unkick0 getbase1 unkick1");
	assert_false(f.fk->running);
	assert_false(f.d->queues[VSOCK_RXQ].kick_lent || f.d->queues[VSOCK_TXQ].kick_lent);
	/* The driver's reset, and it all works again. */
	pthread_mutex_lock(&f.d->lock);
	virtio_set_status(f.d, 0);
	pthread_mutex_unlock(&f.d->lock);
	fx_go(&f);
	assert_true(live(&f));
	assert_true(f.fk->running);
	fx_teardown(&f);
}

/* Interrupts the kernel signals are the transport's (no direct irqfd here: relayed). */
static void call_relayed(void **state)
{
	struct fx f;
	uint64_t one = 1;

	fx_init(&f, KERNEL_VSOCK);
	fx_go(&f);
	assert_int_equal(write(f.fk->ring[0].call, &one, sizeof(one)), sizeof(one));
	pump(&f);
	assert_int_equal(f.signals[VSOCK_RXQ], 1);
	assert_int_equal(f.signals[VSOCK_TXQ], 0);
	fx_teardown(&f);
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(config_and_offer),   cmocka_unit_test(start_sequence),
		cmocka_unit_test(event_queue_kept),   cmocka_unit_test(reset_and_restart),
		cmocka_unit_test(queue_stop_and_again), cmocka_unit_test(start_failure),
		cmocka_unit_test(call_relayed),       cmocka_unit_test(failure_stops_rings),
	};

	/* Split rings only: the kernel has no packed ring, and the device does not offer it. */
	test_ring_packed = false;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
