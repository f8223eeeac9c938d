/* The virtio-mmio transport, driven the way a guest drives it: 32-bit register accesses through
 * the MMIO bus, in front of the real device core and a tiny device type. No KVM: the VM has no fd,
 * so doorbells come through the bus and interrupts are seen on the device's eventfds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_gpa.h"
#include "log.h"
#include "virtio/mmio.h"
#include "virtio/virtio.h"
#include "vm.h"

#define MiB         (1ULL << 20)
#define BASE        (VIRTIO_MMIO_BASE + VIRTIO_MMIO_SIZE)
#define GSI         6
#define DUMMY_ID    42
#define DUMMY_F_ONE 5 /* the type's own feature bit */
#define NR_QUEUES   2
#define QUEUE_MAX   64

struct dummy {
	uint8_t config[8];
	unsigned starts, resets, config_writes;
	uint32_t last_write_off, last_write_len;
};

static int dummy_start(struct virtio_dev *d)
{
	((struct dummy *)d->priv)->starts++;
	return 0;
}

static void dummy_config_write(struct virtio_dev *d, uint32_t off, uint32_t len)
{
	struct dummy *s = d->priv;

	s->config_writes++;
	s->last_write_off = off;
	s->last_write_len = len;
}

static void dummy_reset(struct virtio_dev *d)
{
	((struct dummy *)d->priv)->resets++;
}

static const struct virtio_dev_ops dummy_ops = {
	.name = "dummy",
	.device_id = DUMMY_ID,
	.start = dummy_start,
	.config_write = dummy_config_write,
	.reset = dummy_reset,
};

struct fixture {
	struct guest_mem mem;
	struct vm vm;
	struct dummy dummy;
	struct virtio_dev d;
	struct virtio_mmio t;
};

static int setup(void **state, bool legacy)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(gmem_init(&f->mem, 64 * MiB), 0);
	f->vm.kvm_fd = f->vm.vm_fd = -1;
	bus_init(&f->vm.mmio, "mmio");
	assert_int_equal(virtio_dev_init(&f->d, &dummy_ops, &f->dummy, "dummy0", &f->mem, NULL,
					 1ULL << DUMMY_F_ONE, NR_QUEUES, QUEUE_MAX),
			 0);
	memcpy(f->dummy.config, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
	f->d.config = f->dummy.config;
	f->d.config_len = sizeof(f->dummy.config);
	assert_int_equal(virtio_mmio_create(&f->t, &f->vm, &f->d, BASE, GSI, legacy), 0);
	*state = f;
	return 0;
}

static int setup_v2(void **state)
{
	return setup(state, false);
}

static int setup_v1(void **state)
{
	return setup(state, true);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	virtio_mmio_destroy(&f->t);
	virtio_dev_destroy(&f->d);
	bus_destroy(&f->vm.mmio);
	gmem_free(&f->mem);
	free(f);
	return 0;
}

static uint32_t rd(struct fixture *f, uint64_t off)
{
	uint32_t v;

	assert_true(bus_access(&f->vm.mmio, BASE + off, (uint8_t *)&v, 4, false));
	return v;
}

static void wr(struct fixture *f, uint64_t off, uint32_t v)
{
	assert_true(bus_access(&f->vm.mmio, BASE + off, (uint8_t *)&v, 4, true));
}

/* Whether an eventfd has been signalled; drains it. */
static bool fired(int fd)
{
	uint64_t v;

	return read(fd, &v, sizeof(v)) == sizeof(v);
}

static void identity_v2(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(rd(f, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	assert_int_equal(rd(f, VIRTIO_MMIO_VERSION), 2);
	assert_int_equal(rd(f, VIRTIO_MMIO_DEVICE_ID), DUMMY_ID);
	assert_int_equal(rd(f, VIRTIO_MMIO_VENDOR_ID), 0x554d4551);
	assert_ptr_equal(f->d.transport_priv, &f->t);
	assert_false(f->d.legacy);
	/* No shared memory regions: length and base read as all-ones. */
	wr(f, VIRTIO_MMIO_SHM_SEL, 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_SHM_LEN_LOW), 0xffffffff);
	assert_int_equal(rd(f, VIRTIO_MMIO_SHM_LEN_HIGH), 0xffffffff);
	assert_int_equal(rd(f, VIRTIO_MMIO_SHM_BASE_LOW), 0xffffffff);
	assert_int_equal(rd(f, VIRTIO_MMIO_SHM_BASE_HIGH), 0xffffffff);
}

static void identity_v1(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(rd(f, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	assert_int_equal(rd(f, VIRTIO_MMIO_VERSION), 1);
	assert_int_equal(rd(f, VIRTIO_MMIO_DEVICE_ID), DUMMY_ID);
	assert_int_equal(rd(f, VIRTIO_MMIO_VENDOR_ID), 0x554d4551);
	assert_true(f->d.legacy && f->d.legacy_driver);
	/* Version 2 registers do not exist in the legacy map. */
	assert_int_equal(rd(f, VIRTIO_MMIO_SHM_LEN_LOW), 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_CONFIG_GENERATION), 0);
}

static void set_status(struct fixture *f, uint32_t bits)
{
	wr(f, VIRTIO_MMIO_STATUS, rd(f, VIRTIO_MMIO_STATUS) | bits);
}

static void features_v2(void **state)
{
	struct fixture *f = *state;
	uint32_t lo, hi;

	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	lo = rd(f, VIRTIO_MMIO_DEVICE_FEATURES);
	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	hi = rd(f, VIRTIO_MMIO_DEVICE_FEATURES);
	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
	assert_int_equal(rd(f, VIRTIO_MMIO_DEVICE_FEATURES), 0);
	assert_true(lo & (1U << DUMMY_F_ONE));
	assert_true(lo & (1U << VIRTIO_F_EVENT_IDX));
	assert_false(lo & (1U << VIRTIO_F_ANY_LAYOUT)); /* legacy only: VERSION_1 implies it */
	assert_true(hi & (1U << (VIRTIO_F_VERSION_1 - 32)));

	/* Without VERSION_1 a modern device refuses FEATURES_OK. */
	set_status(f, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, 1U << DUMMY_F_ONE);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, 0);
	set_status(f, VIRTIO_STATUS_FEATURES_OK);
	assert_false(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK);

	/* After a reset, with VERSION_1, it is accepted; later feature writes are ignored. */
	wr(f, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS), 0);
	set_status(f, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, 1U << DUMMY_F_ONE);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, 1U << (VIRTIO_F_VERSION_1 - 32));
	set_status(f, VIRTIO_STATUS_FEATURES_OK);
	assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(f->d.driver_features,
			 (1ULL << DUMMY_F_ONE) | (1ULL << VIRTIO_F_VERSION_1));
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, 0);
	assert_true(f->d.driver_features & (1ULL << DUMMY_F_ONE));
	set_status(f, VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(f->dummy.starts, 1);
}

static void features_v1(void **state)
{
	struct fixture *f = *state;

	/* A legacy window shows no bits from 32 up: no VERSION_1, no RING_PACKED. */
	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	assert_int_equal(rd(f, VIRTIO_MMIO_DEVICE_FEATURES), 0);
	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	assert_true(rd(f, VIRTIO_MMIO_DEVICE_FEATURES) & (1U << DUMMY_F_ONE));
	/* A legacy device offers ANY_LAYOUT (6.3). */
	assert_true(rd(f, VIRTIO_MMIO_DEVICE_FEATURES) & (1U << VIRTIO_F_ANY_LAYOUT));

	/* No FEATURES_OK step: DRIVER_OK starts the device with what the driver wrote. */
	set_status(f, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, 1U << (VIRTIO_F_VERSION_1 - 32));
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, 1U << DUMMY_F_ONE | 1U << VIRTIO_F_ANY_LAYOUT);
	set_status(f, VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(f->dummy.starts, 1);
	assert_int_equal(f->d.driver_features, 1ULL << DUMMY_F_ONE | 1ULL << VIRTIO_F_ANY_LAYOUT);
	assert_false(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
}

static void queue_addr(struct fixture *f, uint32_t lo, uint64_t gpa)
{
	wr(f, lo, (uint32_t)gpa);
	wr(f, lo + 4, (uint32_t)(gpa >> 32));
}

static void setup_queue_v2(struct fixture *f, unsigned q, uint64_t desc)
{
	wr(f, VIRTIO_MMIO_QUEUE_SEL, q);
	wr(f, VIRTIO_MMIO_QUEUE_NUM, 32);
	queue_addr(f, VIRTIO_MMIO_QUEUE_DESC_LOW, desc);
	queue_addr(f, VIRTIO_MMIO_QUEUE_DRIVER_LOW, desc + 0x1000);
	queue_addr(f, VIRTIO_MMIO_QUEUE_DEVICE_LOW, desc + 0x2000);
}

static void queues_v2(void **state)
{
	struct fixture *f = *state;
	struct virtq *vq = &f->d.queues[1].vq;

	set_status(f, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(f, VIRTIO_MMIO_QUEUE_SEL, 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_NUM_MAX), QUEUE_MAX);
	wr(f, VIRTIO_MMIO_QUEUE_SEL, NR_QUEUES); /* no such queue */
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 0);
	wr(f, VIRTIO_MMIO_QUEUE_READY, 1);

	setup_queue_v2(f, 1, TEST_GPA(0x100000));
	queue_addr(f, VIRTIO_MMIO_QUEUE_DEVICE_LOW, 0x1234500000ULL); /* high half is kept */
	assert_int_equal(vq->used_gpa, 0x1234500000ULL);
	queue_addr(f, VIRTIO_MMIO_QUEUE_DEVICE_LOW, TEST_GPA(0x102000));
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 0);
	wr(f, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 1);
	assert_true(vq->enabled);
	assert_int_equal(vq->size, 32);
	assert_int_equal(vq->desc_gpa, TEST_GPA(0x100000));
	assert_int_equal(vq->avail_gpa, TEST_GPA(0x101000));
	assert_int_equal(vq->used_gpa, TEST_GPA(0x102000));
	assert_false(f->d.queues[0].vq.enabled);

	/* While ready, the queue's size and addresses stay as they were. */
	wr(f, VIRTIO_MMIO_QUEUE_NUM, 16);
	wr(f, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)TEST_GPA(0x200000));
	assert_int_equal(vq->size, 32);
	assert_int_equal(vq->desc_gpa, TEST_GPA(0x100000));

	/* QueueReady 0 takes it down, as Linux does when it deletes a queue. */
	wr(f, VIRTIO_MMIO_QUEUE_READY, 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_false(vq->enabled);
	assert_int_equal(vq->size, QUEUE_MAX);
	assert_false(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
}

static void bad_queues_need_reset(void **state)
{
	struct fixture *f = *state;

	/* A ring outside RAM is refused. */
	set_status(f, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	setup_queue_v2(f, 0, 0x4000000000ULL);
	wr(f, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);

	/* So is a size above QueueNumMax. */
	wr(f, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS), 0);
	setup_queue_v2(f, 0, TEST_GPA(0x100000));
	wr(f, VIRTIO_MMIO_QUEUE_NUM, 0x10000 + 32); /* not 32 */
	wr(f, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
}

/* The review's defect 3: a driver that resets the device and hands it a bad ring, 1,000 times,
 * got 1,000 error lines. Now at most LOG_LIMIT_BURST, and the count of the rest is said. */
static void a_reset_loop_cannot_flood_the_log(void **state)
{
	struct fixture *f = *state;
	FILE *cap = tmpfile();
	int saved = dup(2);
	char line[512], last[512] = "";
	unsigned lines = 0, needs_reset = 0;

	assert_non_null(cap);
	fflush(stderr);
	dup2(fileno(cap), 2);
	for (int i = 0; i < 1000; i++) {
		wr(f, VIRTIO_MMIO_STATUS, 0);
		set_status(f, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
		setup_queue_v2(f, 0, 0x4000000000ULL);
		wr(f, VIRTIO_MMIO_QUEUE_READY, 1);
		needs_reset += !!(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	}
	log_limit_flush(&f->d.log_limit);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(cap);
	while (fgets(line, sizeof(line), cap)) {
		lines++;
		snprintf(last, sizeof(last), "%s", line);
	}
	fclose(cap);
	assert_int_equal(needs_reset, 1000); /* every loop still failed the device */
	assert_int_equal(lines, LOG_LIMIT_BURST + 1);
	assert_non_null(strstr(last, "device needs reset"));
	assert_non_null(strstr(last, "(the last of 990 like it not shown)"));
}

#define PFN_4K ((uint32_t)(TEST_GPA(0x120000) >> 12)) /* a legacy ring's page number */

static void queues_v1_pfn(void **state)
{
	struct fixture *f = *state;
	struct virtq *vq = &f->d.queues[0].vq;

	wr(f, VIRTIO_MMIO_GUEST_PAGE_SIZE, 4096);
	wr(f, VIRTIO_MMIO_QUEUE_SEL, 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_PFN), 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_NUM_MAX), QUEUE_MAX);
	wr(f, VIRTIO_MMIO_QUEUE_NUM, 16);
	wr(f, VIRTIO_MMIO_QUEUE_ALIGN, 4096);
	/* QueueReady is not a legacy register. */
	wr(f, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_false(vq->enabled);
	wr(f, VIRTIO_MMIO_QUEUE_PFN, PFN_4K);
	assert_true(vq->enabled);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_PFN), PFN_4K);
	/* 16 descriptors, then flags, idx, 16 entries and used_event, then the next 4 KiB. */
	assert_int_equal(vq->desc_gpa, TEST_GPA(0x120000));
	assert_int_equal(vq->avail_gpa, TEST_GPA(0x120000) + 16 * 16);
	assert_int_equal(vq->used_gpa, TEST_GPA(0x121000));
	assert_false(vq->packed);

	/* Another page size and alignment, on queue 1. */
	wr(f, VIRTIO_MMIO_GUEST_PAGE_SIZE, 0x10000);
	wr(f, VIRTIO_MMIO_QUEUE_SEL, 1);
	wr(f, VIRTIO_MMIO_QUEUE_NUM, 64);
	wr(f, VIRTIO_MMIO_QUEUE_ALIGN, 4);
	wr(f, VIRTIO_MMIO_QUEUE_PFN, (uint32_t)(TEST_GPA(0x200000) >> 16));
	assert_true(f->d.queues[1].vq.enabled);
	assert_int_equal(f->d.queues[1].vq.desc_gpa, TEST_GPA(0x200000));
	assert_int_equal(f->d.queues[1].vq.avail_gpa, TEST_GPA(0x200000) + 64 * 16);
	assert_int_equal(f->d.queues[1].vq.used_gpa, TEST_GPA(0x200000) + 64 * 16 + 6 + 2 * 64 + 2);

	/* 0 stops the queue. */
	wr(f, VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(f, VIRTIO_MMIO_QUEUE_PFN, 0);
	assert_false(vq->enabled);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_PFN), 0);
	assert_false(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);

	/* An alignment that is not a power of 2 is the driver's error. */
	wr(f, VIRTIO_MMIO_QUEUE_ALIGN, 3000);
	wr(f, VIRTIO_MMIO_QUEUE_PFN, PFN_4K);
	assert_false(vq->enabled);
	assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
}

static void notify_kicks(void **state)
{
	struct fixture *f = *state;

	assert_false(fired(f->d.queues[0].kick_fd));
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	assert_false(fired(f->d.queues[0].kick_fd));
	assert_true(fired(f->d.queues[1].kick_fd));
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_true(fired(f->d.queues[0].kick_fd));
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, NR_QUEUES); /* no such queue: nothing */
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0xffffffff);
	assert_false(fired(f->d.queues[0].kick_fd));
	assert_false(fired(f->d.queues[1].kick_fd));
}

static void interrupt_status_and_ack(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	assert_false(fired(f->d.isr_fd));
	f->d.transport->signal(&f->d, 1);
	assert_true(fired(f->d.isr_fd));
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_ISR_QUEUE);
	/* Reading does not clear it; only InterruptACK does, bit by bit. */
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_ISR_QUEUE);
	f->d.transport->signal(&f->d, -1);
	assert_true(fired(f->d.isr_fd));
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_ISR_QUEUE | VIRTIO_ISR_CONFIG);
	wr(f, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_ISR_QUEUE);
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_ISR_CONFIG);
	wr(f, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_ISR_CONFIG);
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
}

static void config_access(void **state)
{
	struct fixture *f = *state;
	uint8_t b[8];
	uint32_t gen;

	memset(b, 0xee, sizeof(b));
	assert_true(bus_access(&f->vm.mmio, BASE + VIRTIO_MMIO_CONFIG + 1, b, 1, false));
	assert_int_equal(b[0], 0x22);
	assert_true(bus_access(&f->vm.mmio, BASE + VIRTIO_MMIO_CONFIG + 2, b, 2, false));
	assert_memory_equal(b, "\x33\x44", 2);
	assert_int_equal(rd(f, VIRTIO_MMIO_CONFIG + 4), 0x88776655);
	/* Past the end, and 8-byte accesses, read as zeros. */
	assert_int_equal(rd(f, VIRTIO_MMIO_CONFIG + 8), 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_CONFIG + 6), 0);
	memset(b, 0xee, sizeof(b));
	assert_true(bus_access(&f->vm.mmio, BASE + VIRTIO_MMIO_CONFIG, b, 8, false));
	assert_memory_equal(b, "\0\0\0\0\0\0\0\0", 8);

	b[0] = 0xab;
	assert_true(bus_access(&f->vm.mmio, BASE + VIRTIO_MMIO_CONFIG + 3, b, 1, true));
	assert_int_equal(f->dummy.config[3], 0xab);
	assert_int_equal(f->dummy.config_writes, 1);
	assert_int_equal(f->dummy.last_write_off, 3);
	assert_int_equal(f->dummy.last_write_len, 1);
	wr(f, VIRTIO_MMIO_CONFIG + 4, 0x01020304);
	assert_memory_equal(f->dummy.config + 4, "\x04\x03\x02\x01", 4);
	assert_int_equal(f->dummy.last_write_len, 4);

	gen = rd(f, VIRTIO_MMIO_CONFIG_GENERATION);
	assert_int_equal(rd(f, VIRTIO_MMIO_CONFIG_GENERATION), gen);
	pthread_mutex_lock(&f->d.lock);
	virtio_config_changed(&f->d);
	pthread_mutex_unlock(&f->d.lock);
	assert_int_not_equal(rd(f, VIRTIO_MMIO_CONFIG_GENERATION), gen);
	/* The driver's own write that changes the area moves it too; one that does not, not. */
	gen = rd(f, VIRTIO_MMIO_CONFIG_GENERATION);
	wr(f, VIRTIO_MMIO_CONFIG + 4, 0x01020304);
	assert_int_equal(rd(f, VIRTIO_MMIO_CONFIG_GENERATION), gen);
	wr(f, VIRTIO_MMIO_CONFIG + 4, 0x01020305);
	assert_int_not_equal(rd(f, VIRTIO_MMIO_CONFIG_GENERATION), gen);
	/* And a device change in the area: the generation read after it differs. */
	gen = rd(f, VIRTIO_MMIO_CONFIG_GENERATION);
	pthread_mutex_lock(&f->d.lock);
	virtio_config_set(&f->d, 0, "\x7f", 1);
	pthread_mutex_unlock(&f->d.lock);
	assert_int_not_equal(rd(f, VIRTIO_MMIO_CONFIG_GENERATION), gen);
	assert_int_equal(rd(f, VIRTIO_MMIO_CONFIG) & 0xff, 0x7f);
}

static void status_zero_resets(void **state)
{
	struct fixture *f = *state;

	set_status(f, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	setup_queue_v2(f, 1, TEST_GPA(0x100000));
	wr(f, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_true(f->d.queues[1].vq.enabled);
	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	f->d.transport->signal(&f->d, 0);

	wr(f, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(f->dummy.resets, 1);
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS), 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	assert_false(f->d.queues[1].vq.enabled);
	assert_int_equal(f->d.queues[1].vq.size, QUEUE_MAX);
	/* The selectors are back to 0 too. */
	assert_int_equal(f->t.queue_sel, 0);
	assert_int_equal(f->t.device_features_sel, 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 0);
	wr(f, VIRTIO_MMIO_QUEUE_SEL, 1);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 0);
}

static void status_zero_resets_v1(void **state)
{
	struct fixture *f = *state;

	wr(f, VIRTIO_MMIO_GUEST_PAGE_SIZE, 4096);
	wr(f, VIRTIO_MMIO_QUEUE_SEL, 1);
	wr(f, VIRTIO_MMIO_QUEUE_PFN, PFN_4K);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_PFN), PFN_4K);
	wr(f, VIRTIO_MMIO_STATUS, 0);
	wr(f, VIRTIO_MMIO_QUEUE_SEL, 1);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_PFN), 0);
	assert_false(f->d.queues[1].vq.enabled);
	assert_true(f->d.legacy_driver);
}

static void narrow_register_access_ignored(void **state)
{
	struct fixture *f = *state;
	uint8_t b[4];

	memset(b, 0xee, sizeof(b));
	assert_true(bus_access(&f->vm.mmio, BASE + VIRTIO_MMIO_MAGIC_VALUE, b, 1, false));
	assert_int_equal(b[0], 0);
	memset(b, 0xee, sizeof(b));
	assert_true(bus_access(&f->vm.mmio, BASE + VIRTIO_MMIO_MAGIC_VALUE, b, 2, false));
	assert_memory_equal(b, "\0\0", 2);
	/* An unaligned dword is not a register either. */
	memset(b, 0xee, sizeof(b));
	assert_true(bus_access(&f->vm.mmio, BASE + VIRTIO_MMIO_MAGIC_VALUE + 2, b, 4, false));
	assert_memory_equal(b, "\0\0\0\0", 4);

	b[0] = 1;
	b[1] = 0;
	assert_true(bus_access(&f->vm.mmio, BASE + VIRTIO_MMIO_QUEUE_SEL, b, 2, true));
	assert_int_equal(f->t.queue_sel, 0);
	b[0] = VIRTIO_STATUS_ACKNOWLEDGE;
	assert_true(bus_access(&f->vm.mmio, BASE + VIRTIO_MMIO_STATUS, b, 1, true));
	assert_int_equal(f->d.status, 0);
	b[0] = 0;
	assert_true(bus_access(&f->vm.mmio, BASE + VIRTIO_MMIO_QUEUE_NOTIFY, b, 1, true));
	assert_false(fired(f->d.queues[0].kick_fd));
	/* The same accesses as dwords work. */
	wr(f, VIRTIO_MMIO_QUEUE_SEL, 1);
	assert_int_equal(f->t.queue_sel, 1);
	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	assert_int_equal(f->d.status, VIRTIO_STATUS_ACKNOWLEDGE);
}

static void create_and_destroy(void **state)
{
	struct fixture *f = *state;
	struct virtio_mmio other;
	uint32_t v;

	/* The window is taken: a second transport there fails and leaves nothing behind. */
	assert_int_equal(virtio_mmio_create(&other, &f->vm, &f->d, BASE + 0x800, GSI, false),
			 -EBUSY);
	assert_ptr_equal(f->d.transport_priv, &f->t);
	assert_int_equal(f->vm.mmio.nr, 1);
	assert_false(bus_access(&f->vm.mmio, BASE + VIRTIO_MMIO_SIZE, (uint8_t *)&v, 4, false));

	virtio_mmio_destroy(&f->t);
	assert_false(bus_access(&f->vm.mmio, BASE, (uint8_t *)&v, 4, false));
	assert_null(f->d.transport);
	assert_int_equal(f->vm.mmio.nr, 0);
	virtio_mmio_destroy(&f->t); /* twice is harmless */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(identity_v2, setup_v2, teardown),
		cmocka_unit_test_setup_teardown(identity_v1, setup_v1, teardown),
		cmocka_unit_test_setup_teardown(features_v2, setup_v2, teardown),
		cmocka_unit_test_setup_teardown(features_v1, setup_v1, teardown),
		cmocka_unit_test_setup_teardown(queues_v2, setup_v2, teardown),
		cmocka_unit_test_setup_teardown(bad_queues_need_reset, setup_v2, teardown),
		cmocka_unit_test_setup_teardown(a_reset_loop_cannot_flood_the_log, setup_v2, teardown),
		cmocka_unit_test_setup_teardown(queues_v1_pfn, setup_v1, teardown),
		cmocka_unit_test_setup_teardown(notify_kicks, setup_v2, teardown),
		cmocka_unit_test_setup_teardown(notify_kicks, setup_v1, teardown),
		cmocka_unit_test_setup_teardown(interrupt_status_and_ack, setup_v2, teardown),
		cmocka_unit_test_setup_teardown(interrupt_status_and_ack, setup_v1, teardown),
		cmocka_unit_test_setup_teardown(config_access, setup_v2, teardown),
		cmocka_unit_test_setup_teardown(status_zero_resets, setup_v2, teardown),
		cmocka_unit_test_setup_teardown(status_zero_resets_v1, setup_v1, teardown),
		cmocka_unit_test_setup_teardown(narrow_register_access_ignored, setup_v2, teardown),
		cmocka_unit_test_setup_teardown(narrow_register_access_ignored, setup_v1, teardown),
		cmocka_unit_test_setup_teardown(create_and_destroy, setup_v2, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
