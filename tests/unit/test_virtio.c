/* The device core: feature negotiation, the status state machine, reset, the configuration area,
 * NEEDS_RESET, doorbells and the ISR, driven as a transport would with a dummy device type. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_gpa.h"
#include "virtio/virtio.h"

#define RAM        (1 << 20)
#define DUMMY_FEAT (1ULL << 3)

struct dummy {
	struct virtio_dev d;
	uint8_t config[8];
	int starts, resets, notifies, config_writes, start_ret;
	int signals_q, signals_cfg, transport_resets;
	struct guest_mem mem;
};

static int dummy_start(struct virtio_dev *d)
{
	struct dummy *x = d->priv;

	x->starts++;
	return x->start_ret;
}

static void dummy_notify(struct virtio_dev *d, unsigned q)
{
	((struct dummy *)d->priv)->notifies++;
}

static void dummy_config_write(struct virtio_dev *d, uint32_t off, uint32_t len)
{
	((struct dummy *)d->priv)->config_writes++;
}

static void dummy_reset(struct virtio_dev *d)
{
	((struct dummy *)d->priv)->resets++;
}

static const struct virtio_dev_ops dummy_ops = {
	.name = "dummy",
	.device_id = 0xfffe,
	.start = dummy_start,
	.queue_notify = dummy_notify,
	.config_write = dummy_config_write,
	.reset = dummy_reset,
};

static void t_signal(struct virtio_dev *d, int q)
{
	struct dummy *x = d->priv;

	if (q < 0)
		x->signals_cfg++;
	else
		x->signals_q++;
}

static void t_reset(struct virtio_dev *d)
{
	((struct dummy *)d->priv)->transport_resets++;
}

static const struct virtio_transport_ops transport = { .signal = t_signal, .reset = t_reset };

static int setup(void **state)
{
	struct dummy *x = calloc(1, sizeof(*x));

	assert_non_null(x);
	assert_int_equal(gmem_init(&x->mem, RAM), 0);
	assert_int_equal(virtio_dev_init(&x->d, &dummy_ops, x, "dummy0", &x->mem, NULL, DUMMY_FEAT,
					 2, 64),
			 0);
	x->d.config = x->config;
	x->d.config_len = sizeof(x->config);
	x->d.transport = &transport;
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct dummy *x = *state;

	virtio_dev_destroy(&x->d);
	gmem_free(&x->mem);
	free(x);
	return 0;
}

static void accept(struct virtio_dev *d, uint64_t f)
{
	virtio_set_driver_features(d, 0, (uint32_t)f);
	virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	virtio_set_driver_features(d, 1, (uint32_t)(f >> 32));
}

static bool fd_readable(int fd)
{
	uint64_t v;

	return read(fd, &v, sizeof(v)) == sizeof(v);
}

static void features_offered(void **state)
{
	struct dummy *x = *state;
	uint64_t f = virtio_get_features(&x->d, 0) | (uint64_t)virtio_get_features(&x->d, 1) << 32;

	assert_true(f & DUMMY_FEAT);
	assert_true(f & (1ULL << VIRTIO_F_VERSION_1));
	assert_true(f & (1ULL << VIRTIO_F_RING_PACKED));
	assert_true(f & (1ULL << VIRTIO_F_EVENT_IDX));
	assert_true(f & (1ULL << VIRTIO_F_INDIRECT_DESC));
	assert_int_equal(virtio_get_features(&x->d, 2), 0);
}

/* Feature words past the second do not exist: a write to one changes nothing (and, found by
 * fuzz_scsictl, computed its mask with a shift by 64 before it looked at the selector). */
static void feature_words_past_the_second(void **state)
{
	struct dummy *x = *state;
	struct virtio_dev *d = &x->d;

	virtio_set_driver_features(d, 0, 0x10);
	for (unsigned sel = 2; sel < 40; sel += 7)
		virtio_set_driver_features(d, sel, 0xffffffff);
	assert_int_equal(d->driver_features, 0x10);
	assert_int_equal(virtio_get_features(d, 2), 0);
}

static void features_ok_rules(void **state)
{
	struct dummy *x = *state;
	uint8_t base = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;

	/* A bit that was not offered: refused, the driver reads FEATURES_OK back as clear. */
	accept(&x->d, (1ULL << VIRTIO_F_VERSION_1) | (1ULL << 5));
	virtio_set_status(&x->d, base | VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(x->d.status, base);
	/* No VERSION_1 from a modern driver: refused. */
	virtio_reset(&x->d);
	accept(&x->d, DUMMY_FEAT);
	virtio_set_status(&x->d, base | VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(x->d.status, base);
	/* A proper subset with VERSION_1: accepted; later feature writes are ignored. */
	virtio_reset(&x->d);
	accept(&x->d, DUMMY_FEAT | (1ULL << VIRTIO_F_VERSION_1));
	virtio_set_status(&x->d, base | VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(x->d.status, base | VIRTIO_STATUS_FEATURES_OK);
	virtio_set_driver_features(&x->d, 0, 0);
	assert_int_equal(x->d.driver_features, DUMMY_FEAT | (1ULL << VIRTIO_F_VERSION_1));
	virtio_set_status(&x->d, base | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(x->starts, 1);
	assert_true(virtio_live(&x->d));
}

static void driver_ok_without_features_ok(void **state)
{
	struct dummy *x = *state;

	accept(&x->d, 1ULL << VIRTIO_F_VERSION_1);
	virtio_set_status(&x->d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
					 VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(x->starts, 0);
	assert_true(x->d.status & VIRTIO_STATUS_NEEDS_RESET);
	assert_false(virtio_live(&x->d));
	/* Told with a configuration interrupt, once. */
	assert_int_equal(x->signals_cfg, 1);
	virtio_fail(&x->d, "again");
	assert_int_equal(x->signals_cfg, 1);
}

static void legacy_driver(void **state)
{
	struct dummy *x = *state;

	/* No FEATURES_OK step; unoffered bits are dropped rather than refused. */
	x->d.legacy_driver = true;
	accept(&x->d, DUMMY_FEAT | (1ULL << 7));
	virtio_set_status(&x->d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
					 VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(x->starts, 1);
	assert_int_equal(x->d.driver_features, DUMMY_FEAT);
	assert_true(virtio_live(&x->d));
}

/* A transitional device offers ANY_LAYOUT on the legacy interface (6.3), and a legacy driver that
 * takes it runs with it; the modern interface never shows it, so a modern driver that accepts it
 * anyway is refused like any bit not offered (VERSION_1 means any layout already). */
static void any_layout_is_offered_to_legacy_drivers_only(void **state)
{
	struct dummy *x = *state;
	uint8_t base = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;
	uint32_t legacy = virtio_get_legacy_features(&x->d);

	assert_true(legacy & 1u << VIRTIO_F_ANY_LAYOUT);
	assert_int_equal(legacy & ~(1u << VIRTIO_F_ANY_LAYOUT), virtio_get_features(&x->d, 0));
	assert_false(virtio_get_features(&x->d, 0) & 1u << VIRTIO_F_ANY_LAYOUT);
	assert_false(x->d.features & 1ULL << VIRTIO_F_ANY_LAYOUT);

	x->d.legacy_driver = true;
	accept(&x->d, DUMMY_FEAT | 1ULL << VIRTIO_F_ANY_LAYOUT);
	virtio_set_status(&x->d, base | VIRTIO_STATUS_DRIVER_OK);
	assert_true(virtio_live(&x->d));
	assert_int_equal(x->d.driver_features, DUMMY_FEAT | 1ULL << VIRTIO_F_ANY_LAYOUT);

	virtio_reset(&x->d);
	x->d.legacy_driver = false;
	accept(&x->d, DUMMY_FEAT | 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_F_ANY_LAYOUT);
	virtio_set_status(&x->d, base | VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(x->d.status, base);
}

static void status_bits_only_grow(void **state)
{
	struct dummy *x = *state;

	virtio_set_status(&x->d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	virtio_set_status(&x->d, VIRTIO_STATUS_ACKNOWLEDGE); /* clears DRIVER: ignored */
	assert_int_equal(x->d.status, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	/* NEEDS_RESET is the device's bit. */
	virtio_set_status(&x->d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
					 VIRTIO_STATUS_NEEDS_RESET);
	assert_false(x->d.status & VIRTIO_STATUS_NEEDS_RESET);
	virtio_set_status(&x->d, x->d.status | VIRTIO_STATUS_FAILED);
	assert_true(x->d.status & VIRTIO_STATUS_FAILED);
}

static void reset_restores_everything(void **state)
{
	struct dummy *x = *state;
	struct virtq *q = &x->d.queues[1].vq;

	accept(&x->d, DUMMY_FEAT | (1ULL << VIRTIO_F_VERSION_1));
	virtio_set_status(&x->d, x->d.status | VIRTIO_STATUS_FEATURES_OK);
	q->size = 16;
	q->desc_gpa = TEST_GPA(0x1000);
	q->avail_gpa = TEST_GPA(0x2000);
	q->used_gpa = TEST_GPA(0x3000);
	x->d.queues[1].msix_vector = 1;
	assert_int_equal(virtio_queue_enable(&x->d, 1), 0);
	assert_true(q->enabled);
	virtio_raise_isr(&x->d, VIRTIO_ISR_QUEUE);
	virtio_set_status(&x->d, 0);
	assert_int_equal(x->resets, 1);
	assert_int_equal(x->transport_resets, 1);
	assert_int_equal(x->d.status, 0);
	assert_int_equal(x->d.driver_features, 0);
	assert_int_equal(x->d.isr, 0);
	assert_false(q->enabled);
	assert_int_equal(q->size, 64);
	assert_int_equal(q->desc_gpa, 0);
	assert_int_equal(x->d.queues[1].msix_vector, VIRTIO_NO_VECTOR);
}

static void bad_queues_need_reset(void **state)
{
	struct dummy *x = *state;
	struct virtq *q = &x->d.queues[0].vq;

	/* Above the maximum size. */
	q->size = 128;
	assert_int_equal(virtio_queue_enable(&x->d, 0), -EINVAL);
	assert_true(x->d.status & VIRTIO_STATUS_NEEDS_RESET);
	assert_false(q->enabled);
	virtio_reset(&x->d);
	/* A used ring beyond RAM. */
	q->size = 64;
	q->desc_gpa = TEST_GPA(0x1000);
	q->avail_gpa = TEST_GPA(0x2000);
	q->used_gpa = TEST_GPA(RAM - 8);
	assert_int_equal(virtio_queue_enable(&x->d, 0), -EFAULT);
	assert_true(x->d.status & VIRTIO_STATUS_NEEDS_RESET);
	/* And a queue that does not exist. */
	assert_int_equal(virtio_queue_enable(&x->d, 2), -EINVAL);
}

static void config_area(void **state)
{
	struct dummy *x = *state;
	uint8_t buf[4];
	uint32_t gen = x->d.config_generation;

	memcpy(x->config, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	virtio_config_read(&x->d, 6, buf, 2);
	assert_memory_equal(buf, "\x07\x08", 2);
	virtio_config_read(&x->d, 6, buf, 4); /* runs past the end: zeros */
	assert_memory_equal(buf, "\0\0\0\0", 4);
	virtio_config_read(&x->d, UINT32_MAX, buf, 4);
	assert_memory_equal(buf, "\0\0\0\0", 4);
	virtio_config_write(&x->d, 7, (const uint8_t *)"ab", 2); /* past the end: dropped */
	assert_int_equal(x->config_writes, 0);
	assert_int_equal(x->config[7], 8);
	virtio_config_write(&x->d, 0, (const uint8_t *)"ab", 2);
	assert_int_equal(x->config_writes, 1);
	assert_memory_equal(x->config, "ab", 2);
	/* A change the device makes: new generation; no interrupt before DRIVER_OK. */
	gen = virtio_config_generation(&x->d);
	virtio_config_changed(&x->d);
	assert_int_equal(virtio_config_generation(&x->d), gen + 1);
	assert_int_equal(x->signals_cfg, 0);
}

/* The generation as a driver sees it: after any change to the area (the device's own, or a write
 * of the driver's that changed a byte), the generation it reads differs from the one it read
 * before; with no change it stays, so a driver's read loop ends. */
static void generation_moves_with_every_change(void **state)
{
	struct dummy *x = *state;
	uint32_t gen = virtio_config_generation(&x->d);

	assert_int_equal(virtio_config_generation(&x->d), gen);
	assert_true(virtio_config_set(&x->d, 2, "xy", 2));
	assert_memory_equal(x->config + 2, "xy", 2);
	assert_int_not_equal(virtio_config_generation(&x->d), gen);
	gen = virtio_config_generation(&x->d);
	/* The same bytes again: no change, no new generation. */
	assert_false(virtio_config_set(&x->d, 2, "xy", 2));
	assert_int_equal(virtio_config_generation(&x->d), gen);
	virtio_config_write(&x->d, 0, x->config, 4);
	assert_int_equal(virtio_config_generation(&x->d), gen);
	/* A driver's write that changes the area. */
	virtio_config_write(&x->d, 0, (const uint8_t *)"\x99", 1);
	assert_int_not_equal(virtio_config_generation(&x->d), gen);
	gen = virtio_config_generation(&x->d);
	/* Outside the area: nothing. */
	x->config[7] = 8;
	assert_false(virtio_config_set(&x->d, 7, "ab", 2));
	assert_int_equal(x->config[7], 8);
	assert_int_equal(virtio_config_generation(&x->d), gen);
}

/* 4.1.4.3.1: virtio-pci shows 8 bits of the generation, so however many changes the device makes
 * while a driver reads the area (a host setting the balloon in a loop), the value the driver reads
 * afterwards must not have come round to the one it read before. */
static void generation_cannot_wrap_back(void **state)
{
	struct dummy *x = *state;
	static const unsigned runs[] = { 1, 2, 255, 256, 257, 511, 512, 1000, 65536 };

	for (unsigned r = 0; r < sizeof(runs) / sizeof(runs[0]); r++) {
		uint8_t before = (uint8_t)virtio_config_generation(&x->d);

		for (unsigned i = 0; i < runs[r]; i++) {
			uint8_t v = (uint8_t)(x->config[0] + 1); /* a change every time */

			if (i % 2)
				virtio_config_changed(&x->d);
			else
				virtio_config_set(&x->d, 0, &v, 1);
		}
		assert_int_not_equal((uint8_t)virtio_config_generation(&x->d), before);
	}
	/* And a driver that reads between every change sees each one. */
	for (unsigned i = 0; i < 600; i++) {
		uint8_t before = (uint8_t)virtio_config_generation(&x->d);
		uint8_t v = (uint8_t)(x->config[1] + 1);

		virtio_config_set(&x->d, 1, &v, 1);
		assert_int_not_equal((uint8_t)virtio_config_generation(&x->d), before);
	}
}

static void doorbell_and_isr(void **state)
{
	struct dummy *x = *state;

	/* A kick reaches the type only while the device is live and the queue enabled. */
	virtio_kick(&x->d, 0);
	assert_true(fd_readable(x->d.queues[0].kick_fd));
	virtio_process(&x->d, 0);
	assert_int_equal(x->notifies, 0);
	x->d.legacy_driver = true;
	virtio_set_status(&x->d, VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK);
	virtio_process(&x->d, 0);
	assert_int_equal(x->notifies, 0); /* queue 0 not enabled */
	x->d.queues[0].vq.size = 8;
	x->d.queues[0].vq.desc_gpa = TEST_GPA(0x1000);
	x->d.queues[0].vq.avail_gpa = TEST_GPA(0x2000);
	x->d.queues[0].vq.used_gpa = TEST_GPA(0x3000);
	assert_int_equal(virtio_queue_enable(&x->d, 0), 0);
	virtio_process(&x->d, 0);
	assert_int_equal(x->notifies, 1);
	virtio_kick(&x->d, 5); /* no such queue: nothing */
	/* ISR: bits accumulate, the line's eventfd fires, a read clears. */
	virtio_raise_isr(&x->d, VIRTIO_ISR_QUEUE);
	virtio_raise_isr(&x->d, VIRTIO_ISR_CONFIG);
	assert_true(fd_readable(x->d.isr_fd));
	assert_int_equal(virtio_read_isr(&x->d), VIRTIO_ISR_QUEUE | VIRTIO_ISR_CONFIG);
	assert_int_equal(virtio_read_isr(&x->d), 0);
	/* NEEDS_RESET stops the queues. */
	virtio_fail(&x->d, "test");
	virtio_process(&x->d, 0);
	assert_int_equal(x->notifies, 1);
}

static void start_failure_needs_reset(void **state)
{
	struct dummy *x = *state;

	x->start_ret = -EIO;
	x->d.legacy_driver = true;
	virtio_set_status(&x->d, VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(x->starts, 1);
	assert_true(x->d.status & VIRTIO_STATUS_NEEDS_RESET);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(features_offered, setup, teardown),
		cmocka_unit_test_setup_teardown(feature_words_past_the_second, setup, teardown),
		cmocka_unit_test_setup_teardown(features_ok_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(driver_ok_without_features_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(legacy_driver, setup, teardown),
		cmocka_unit_test_setup_teardown(status_bits_only_grow, setup, teardown),
		cmocka_unit_test_setup_teardown(reset_restores_everything, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_queues_need_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(config_area, setup, teardown),
		cmocka_unit_test_setup_teardown(generation_moves_with_every_change, setup,
						teardown),
		cmocka_unit_test_setup_teardown(generation_cannot_wrap_back, setup, teardown),
		cmocka_unit_test_setup_teardown(any_layout_is_offered_to_legacy_drivers_only, setup,
						teardown),
		cmocka_unit_test_setup_teardown(doorbell_and_isr, setup, teardown),
		cmocka_unit_test_setup_teardown(start_failure_needs_reset, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
