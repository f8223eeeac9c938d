/* The memory balloon without a transport: the test plays the driver, builds rings in guest memory
 * and checks what the host side did with the pages (their contents read back through guest RAM). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "event.h"
#include "memory.h"
#include "virtio/balloon.h"

#include "driver_ring.h"

#define PAGE_GPA  TEST_GPA(0x100000) /* pages the tests give away: clear of rings and data */
#define RAM_SIZE  (4 << 20)

struct fx {
	struct guest_mem mem;
	struct event_loop loop;
	struct balloon_dev b;
	struct tq q[BALLOON_QUEUES];
	int signals, config_signals;
};

static struct fx *cur;

static void fake_signal(struct virtio_dev *d, int q)
{
	if (q < 0)
		cur->config_signals++;
	else
		cur->signals++;
}

static const struct virtio_transport_ops fake_transport = { .signal = fake_signal };

/* The device with cfg, the driver accepting `accept` of its bits and setting up the queues (the
 * bits of `queues`) at the indices given; not yet DRIVER_OK (fx_go). */
static void fx_begin(struct fx *f, const struct balloon_config *cfg, uint32_t accept,
		     unsigned queues)
{
	struct virtio_dev *d = &f->b.vdev;

	memset(f, 0, sizeof(*f));
	cur = f;
	assert_int_equal(gmem_init(&f->mem, RAM_SIZE), 0);
	assert_int_equal(event_loop_init(&f->loop, "test"), 0);
	assert_int_equal(balloon_init(&f->b, "balloon0", cfg, &f->mem, &f->loop), 0);
	d->transport = &fake_transport;
	pthread_mutex_lock(&d->lock);
	assert_int_equal(virtio_get_features(d, 0) & accept, accept);
	tq_negotiate(d, accept);
	for (unsigned q = 0; q < BALLOON_QUEUES; q++) {
		if (queues >> q & 1)
			tq_setup(d, q, &f->q[q], &f->mem);
	}
	pthread_mutex_unlock(&d->lock);
}

static void fx_go(struct fx *f)
{
	struct virtio_dev *d = &f->b.vdev;

	pthread_mutex_lock(&d->lock);
	virtio_set_status(d, d->status | VIRTIO_STATUS_DRIVER_OK);
	assert_true(virtio_live(d));
	pthread_mutex_unlock(&d->lock);
}

static void fx_setup(struct fx *f, const struct balloon_config *cfg, uint32_t accept,
		     unsigned queues)
{
	fx_begin(f, cfg, accept, queues);
	fx_go(f);
}

static void fx_teardown(struct fx *f)
{
	balloon_destroy(&f->b);
	event_loop_destroy(&f->loop);
	gmem_free(&f->mem);
}

static uint8_t *page(struct fx *f, unsigned i)
{
	return gp(&f->q[0], PAGE_GPA + (uint64_t)i * BALLOON_PAGE, BALLOON_PAGE);
}

static bool all(const uint8_t *p, uint8_t v)
{
	for (unsigned i = 0; i < BALLOON_PAGE; i++) {
		if (p[i] != v)
			return false;
	}
	return true;
}

/* Writes n PFNs at DATA_GPA and offers them on queue q, in the buffers lens[] cut them into. */
static void offer_pfns(struct fx *f, unsigned q, const uint32_t *pfns, unsigned n,
		       const uint32_t *lens, unsigned nlens)
{
	struct tbuf b[8];
	uint64_t at = DATA_GPA;

	memcpy(gp(&f->q[q], DATA_GPA, n * 4), pfns, n * 4);
	for (unsigned i = 0; i < nlens; i++) {
		b[i] = (struct tbuf){ at, lens[i], false };
		at += lens[i];
	}
	tq_add(&f->q[q], b, nlens);
}

static struct balloon_stats stats_of(struct balloon_dev *b)
{
	struct balloon_info i;

	balloon_get(b, &i);
	return i.stats;
}

static const struct balloon_config plain = { 0 };

static void inflate_gives_pages_back_and_refuses_what_is_not_ram(void **state)
{
	struct fx f;
	uint32_t id, len;
	uint32_t pfn0 = PAGE_GPA / BALLOON_PAGE;
	/* Two contiguous pages, one apart, one past the end of RAM, one that is not RAM (x86's
	 * 32-bit hole; past arm64's 4 MiB of RAM from 1 GiB). */
	const uint32_t pfns[] = { pfn0, pfn0 + 1, pfn0 + 3, TEST_GPA(RAM_SIZE) / BALLOON_PAGE,
				  0xc0000000u / BALLOON_PAGE };
	const uint32_t lens[] = { sizeof(pfns) };

	fx_setup(&f, &plain, 0, 3);
	for (unsigned i = 0; i < 4; i++)
		memset(page(&f, i), 0xaa, BALLOON_PAGE);
	offer_pfns(&f, BALLOON_Q_INFLATE, pfns, 5, lens, 1);
	virtio_process(&f.b.vdev, BALLOON_Q_INFLATE);
	assert_true(tq_used(&f.q[0], &id, &len));
	assert_int_equal(len, 0);
	assert_true(f.signals > 0);
	assert_true(all(page(&f, 0), 0)); /* given back: reads as zeros */
	assert_true(all(page(&f, 1), 0));
	assert_true(all(page(&f, 2), 0xaa)); /* not in the request */
	assert_true(all(page(&f, 3), 0));
	assert_int_equal(f.b.inflated, 3);
	assert_int_equal(f.b.refused, 2);
	assert_true(virtio_live(&f.b.vdev));
	fx_teardown(&f);
}

/* Any layout: the PFN array cut inside a number, over three buffers. */
static void pfns_split_anywhere_are_read_whole(void **state)
{
	struct fx f;
	uint32_t id, len;
	uint32_t pfn0 = PAGE_GPA / BALLOON_PAGE;
	const uint32_t pfns[] = { pfn0, pfn0 + 2 };
	const uint32_t lens[] = { 3, 2, 3 };

	fx_setup(&f, &plain, 0, 3);
	memset(page(&f, 0), 0xaa, BALLOON_PAGE);
	memset(page(&f, 1), 0xaa, BALLOON_PAGE);
	memset(page(&f, 2), 0xaa, BALLOON_PAGE);
	offer_pfns(&f, BALLOON_Q_INFLATE, pfns, 2, lens, 3);
	virtio_process(&f.b.vdev, BALLOON_Q_INFLATE);
	assert_true(tq_used(&f.q[0], &id, &len));
	assert_true(all(page(&f, 0), 0));
	assert_true(all(page(&f, 1), 0xaa));
	assert_true(all(page(&f, 2), 0));
	fx_teardown(&f);
}

/* Any layout (2.7.4): PFNs cut inside a number, each piece in a buffer somewhere of its own, and
 * statistics entries cut inside a tag or a value, read whole. */
static void any_layout(void **state)
{
	struct balloon_config c = { .stats_period = 60 };
	static const uint32_t pfn_cuts[][4] = { { 3, 2, 3 }, { 1, 7 }, { 5, 1, 1, 1 } };
	static const uint32_t stat_cuts[][4] = { { 7, 13, 10 }, { 1, 29 }, { 30 } };
	uint32_t pfn0 = PAGE_GPA / BALLOON_PAGE, id, len;
	struct tbuf b[4];
	uint8_t buf[30];
	struct fx f;

	fx_setup(&f, &c, 1u << VIRTIO_BALLOON_F_STATS_VQ, 7);
	for (unsigned k = 0; k < 3; k++) {
		const uint32_t pfns[2] = { pfn0 + 3 * k, pfn0 + 3 * k + 2 };
		unsigned n = pfn_cuts[k][3] ? 4 : pfn_cuts[k][2] ? 3 : 2;

		for (unsigned i = 0; i < 3; i++)
			memset(page(&f, 3 * k + i), 0xaa, BALLOON_PAGE);
		tq_scatter(&f.q[0], TEST_GPA(0x200000), pfns, pfn_cuts[k], n, false, b);
		tq_add(&f.q[0], b, n);
		virtio_process(&f.b.vdev, BALLOON_Q_INFLATE);
		assert_true(tq_used(&f.q[0], &id, &len));
		assert_true(all(page(&f, 3 * k), 0));
		assert_true(all(page(&f, 3 * k + 1), 0xaa));
		assert_true(all(page(&f, 3 * k + 2), 0));
	}
	for (unsigned k = 0; k < 3; k++) {
		const uint16_t tags[] = { 4, 5, 6 };
		const uint64_t vals[] = { 1000 + k, 2000 + k, 3000 + k };
		unsigned n = stat_cuts[k][2] ? 3 : stat_cuts[k][1] ? 2 : 1;
		struct balloon_stats st;

		for (unsigned i = 0; i < 3; i++) {
			memcpy(buf + 10 * i, &tags[i], 2);
			memcpy(buf + 10 * i + 2, &vals[i], 8);
		}
		tq_scatter(&f.q[2], TEST_GPA(0x300000), buf, stat_cuts[k], n, false, b);
		tq_add(&f.q[2], b, n);
		virtio_process(&f.b.vdev, BALLOON_Q_STATS);
		st = stats_of(&f.b);
		assert_int_equal(st.have, 1 << 4 | 1 << 5 | 1 << 6);
		for (unsigned i = 0; i < 3; i++)
			assert_int_equal(st.val[4 + i], vals[i]);
	}
	assert_false(f.b.vdev.status & VIRTIO_STATUS_NEEDS_RESET);
	fx_teardown(&f);
}

/* num_pages (the host's), actual (the driver's) and their reset are changes of the configuration
 * area: the generation moves with each, and 256 target changes between two of the driver's reads
 * do not bring it back to the value it read (8 bits on virtio-pci). */
static void config_changes_move_the_generation(void **state)
{
	struct fx f;
	uint32_t a = htole32(5);
	uint8_t gen;

	fx_setup(&f, &plain, 0, 3);
	gen = (uint8_t)virtio_config_generation(&f.b.vdev);
	for (unsigned i = 0; i < 256; i++)
		balloon_set_target(&f.b, (1 + i % 2) << 20);
	assert_int_not_equal((uint8_t)virtio_config_generation(&f.b.vdev), gen);
	assert_int_equal(f.config_signals, 256);
	gen = (uint8_t)virtio_config_generation(&f.b.vdev);
	pthread_mutex_lock(&f.b.vdev.lock);
	virtio_config_write(&f.b.vdev, offsetof(struct virtio_balloon_config, actual),
			    (uint8_t *)&a, 4);
	pthread_mutex_unlock(&f.b.vdev.lock);
	assert_int_not_equal((uint8_t)virtio_config_generation(&f.b.vdev), gen);
	gen = (uint8_t)virtio_config_generation(&f.b.vdev);
	pthread_mutex_lock(&f.b.vdev.lock);
	virtio_reset(&f.b.vdev); /* actual back to 0 */
	pthread_mutex_unlock(&f.b.vdev.lock);
	assert_int_equal(f.b.config.actual, 0);
	assert_int_not_equal((uint8_t)virtio_config_generation(&f.b.vdev), gen);
	fx_teardown(&f);
}

static void a_partial_pfn_needs_reset(void **state)
{
	struct fx f;
	const uint32_t pfns[] = { PAGE_GPA / BALLOON_PAGE, 0 };
	const uint32_t lens[] = { 6 };

	fx_setup(&f, &plain, 0, 3);
	offer_pfns(&f, BALLOON_Q_INFLATE, pfns, 2, lens, 1);
	virtio_process(&f.b.vdev, BALLOON_Q_INFLATE);
	assert_false(virtio_live(&f.b.vdev));
	assert_true(f.b.vdev.status & VIRTIO_STATUS_NEEDS_RESET);
	fx_teardown(&f);
}

static void deflate_leaves_the_pages_to_the_guest(void **state)
{
	struct fx f;
	uint32_t id, len;
	const uint32_t pfns[] = { PAGE_GPA / BALLOON_PAGE };
	const uint32_t lens[] = { 4 };

	fx_setup(&f, &plain, 0, 3);
	memset(page(&f, 0), 0x55, BALLOON_PAGE);
	offer_pfns(&f, BALLOON_Q_DEFLATE, pfns, 1, lens, 1);
	virtio_process(&f.b.vdev, BALLOON_Q_DEFLATE);
	assert_true(tq_used(&f.q[1], &id, &len));
	assert_true(all(page(&f, 0), 0x55));
	assert_int_equal(f.b.deflated, 1);
	fx_teardown(&f);
}

static void the_target_is_in_pages_and_tells_the_driver(void **state)
{
	struct balloon_config c = { .size = 1 << 20 };
	struct fx f;
	struct balloon_info info;
	uint64_t target, actual;
	uint32_t gen;

	fx_setup(&f, &c, 0, 3);
	assert_int_equal(le32toh(f.b.config.num_pages), 256);
	gen = f.b.vdev.config_generation;
	balloon_set_target(&f.b, 2 << 20);
	assert_int_equal(le32toh(f.b.config.num_pages), 512);
	assert_int_not_equal(f.b.vdev.config_generation, gen);
	assert_int_equal(f.config_signals, 1);
	balloon_set_target(&f.b, 1ULL << 40); /* more than RAM: all of it */
	assert_int_equal(le32toh(f.b.config.num_pages), RAM_SIZE / BALLOON_PAGE);
	/* actual is the driver's, written through the configuration area. */
	uint32_t a = htole32(100);
	pthread_mutex_lock(&f.b.vdev.lock);
	virtio_config_write(&f.b.vdev, offsetof(struct virtio_balloon_config, actual),
			    (uint8_t *)&a, 4);
	pthread_mutex_unlock(&f.b.vdev.lock);
	balloon_get(&f.b, &info);
	target = info.target;
	actual = info.actual;
	assert_int_equal(actual, 100 * BALLOON_PAGE);
	assert_int_equal(target, RAM_SIZE);
	/* num_pages is the device's: a driver that writes it changes nothing (fuzz_balloon). */
	uint32_t all[2] = { 0xffffffff, htole32(7) };
	pthread_mutex_lock(&f.b.vdev.lock);
	virtio_config_write(&f.b.vdev, 0, (uint8_t *)all, 8);
	pthread_mutex_unlock(&f.b.vdev.lock);
	balloon_get(&f.b, &info);
	target = info.target;
	actual = info.actual;
	assert_int_equal(target, RAM_SIZE);
	assert_int_equal(actual, 7 * BALLOON_PAGE);
	fx_teardown(&f);
}

/* Statistics: the driver's buffer is read and kept; each period gives it back. */
static void statistics_are_read_and_the_buffer_given_back_each_period(void **state)
{
	struct balloon_config c = { .stats_period = 1 };
	struct fx f;
	struct balloon_stats s;
	uint32_t id, len;
	uint8_t buf[30];
	const uint16_t tags[] = { 4, 5, 99 }; /* MEMFREE, MEMTOT, and one nobody knows */
	const uint64_t vals[] = { 1000, 2000, 3 };

	fx_setup(&f, &c, 1u << VIRTIO_BALLOON_F_STATS_VQ, 7);
	for (unsigned i = 0; i < 3; i++) {
		memcpy(buf + 10 * i, &tags[i], 2);
		memcpy(buf + 10 * i + 2, &vals[i], 8);
	}
	memcpy(gp(&f.q[2], DATA_GPA, sizeof(buf)), buf, sizeof(buf));
	tq_add(&f.q[2], &(struct tbuf){ DATA_GPA, sizeof(buf), false }, 1);
	virtio_process(&f.b.vdev, BALLOON_Q_STATS);
	assert_false(tq_used(&f.q[2], &id, &len)); /* kept */
	s = stats_of(&f.b);
	assert_int_equal(s.have, 1 << 4 | 1 << 5);
	assert_int_equal(s.val[4], 1000);
	assert_int_equal(s.val[5], 2000);
	assert_true(s.updated_ns > 0);
	/* The period (1 s): the loop runs the timer, and the buffer comes back used. */
	for (int i = 0; i < 3 && !tq_used(&f.q[2], &id, &len); i++)
		event_loop_run_once(&f.loop, 1500);
	assert_int_equal(len, 0);
	assert_false(f.b.stats_held);
	fx_teardown(&f);
}

/* Linux posts its first statistics buffer, and kicks, before DRIVER_OK: it is read all the same. */
static void a_statistics_buffer_from_before_driver_ok_is_read(void **state)
{
	struct balloon_config c = { .stats_period = 60 };
	struct fx f;
	struct balloon_stats s;
	uint8_t buf[10] = { 4, 0 };
	const uint64_t free_mem = 12345;

	fx_begin(&f, &c, 1u << VIRTIO_BALLOON_F_STATS_VQ, 7);
	memcpy(buf + 2, &free_mem, 8);
	memcpy(gp(&f.q[2], DATA_GPA, sizeof(buf)), buf, sizeof(buf));
	tq_add(&f.q[2], &(struct tbuf){ DATA_GPA, sizeof(buf), false }, 1);
	virtio_kick(&f.b.vdev, BALLOON_Q_STATS); /* before DRIVER_OK: not served */
	event_loop_run_once(&f.loop, 0);
	s = stats_of(&f.b);
	assert_int_equal(s.have, 0);
	fx_go(&f);
	event_loop_run_once(&f.loop, 1000); /* the kick start() makes */
	s = stats_of(&f.b);
	assert_int_equal(s.have, 1 << 4);
	assert_int_equal(s.val[4], 12345);
	fx_teardown(&f);
}

/* Free page reporting: at index 4 (the spec's) or right after the queues in use (Linux's). */
static void reported_ranges_go_back_on_either_queue_number(void **state)
{
	struct balloon_config c = { .free_page_reporting = true, .stats_period = 1 };
	const unsigned qs[] = { BALLOON_Q_REPORTING, 3 };

	for (unsigned i = 0; i < 2; i++) {
		struct fx f;
		uint32_t id, len;
		unsigned q = qs[i];

		fx_setup(&f, &c,
			 1u << VIRTIO_BALLOON_F_STATS_VQ | 1u << VIRTIO_BALLOON_F_PAGE_REPORTING,
			 7 | 1u << q);
		for (unsigned p = 0; p < 4; p++)
			memset(page(&f, p), 0xaa, BALLOON_PAGE);
		/* Pages 0-1 whole; the second range is not page-aligned: only page 3 is whole. */
		const struct tbuf b[2] = {
			{ PAGE_GPA, 2 * BALLOON_PAGE, true },
			{ PAGE_GPA + 2 * BALLOON_PAGE + 16, 2 * BALLOON_PAGE - 16, true },
		};
		tq_add(&f.q[q], b, 2);
		virtio_process(&f.b.vdev, q);
		assert_true(tq_used(&f.q[q], &id, &len));
		assert_true(all(page(&f, 0), 0));
		assert_true(all(page(&f, 1), 0));
		assert_true(all(page(&f, 2), 0xaa));
		assert_true(all(page(&f, 3), 0));
		assert_int_equal(f.b.reported, 3);
		fx_teardown(&f);
	}
}

/* PAGE_POISON with a value that is not 0: reported pages must keep it, so they stay. */
static void poisoned_reports_are_kept(void **state)
{
	struct balloon_config c = { .free_page_reporting = true };
	struct fx f;
	uint32_t id, len, poison = htole32(0xaaaaaaaa);

	fx_setup(&f, &c,
		 1u << VIRTIO_BALLOON_F_PAGE_REPORTING | 1u << VIRTIO_BALLOON_F_PAGE_POISON,
		 3 | 1u << 2);
	pthread_mutex_lock(&f.b.vdev.lock);
	virtio_config_write(&f.b.vdev, offsetof(struct virtio_balloon_config, poison_val),
			    (uint8_t *)&poison, 4);
	pthread_mutex_unlock(&f.b.vdev.lock);
	memset(page(&f, 0), 0xaa, BALLOON_PAGE);
	tq_add(&f.q[2], &(struct tbuf){ PAGE_GPA, BALLOON_PAGE, true }, 1);
	virtio_process(&f.b.vdev, 2); /* reporting, numbered as Linux does without statistics */
	assert_true(tq_used(&f.q[2], &id, &len));
	assert_true(all(page(&f, 0), 0xaa));
	assert_int_equal(f.b.reported, 1); /* counted as reported all the same */
	fx_teardown(&f);
}

static void a_queue_without_a_role_needs_reset(void **state)
{
	struct fx f;

	fx_setup(&f, &plain, 0, 3 | 1u << 2);
	tq_add(&f.q[2], &(struct tbuf){ DATA_GPA, 10, false }, 1);
	virtio_process(&f.b.vdev, 2);
	assert_false(virtio_live(&f.b.vdev));
	fx_teardown(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(inflate_gives_pages_back_and_refuses_what_is_not_ram),
		cmocka_unit_test(pfns_split_anywhere_are_read_whole),
		cmocka_unit_test(a_partial_pfn_needs_reset),
		cmocka_unit_test(deflate_leaves_the_pages_to_the_guest),
		cmocka_unit_test(the_target_is_in_pages_and_tells_the_driver),
		cmocka_unit_test(statistics_are_read_and_the_buffer_given_back_each_period),
		cmocka_unit_test(a_statistics_buffer_from_before_driver_ok_is_read),
		cmocka_unit_test(reported_ranges_go_back_on_either_queue_number),
		cmocka_unit_test(poisoned_reports_are_kept),
		cmocka_unit_test(a_queue_without_a_role_needs_reset),
		cmocka_unit_test(any_layout),
		cmocka_unit_test(config_changes_move_the_generation),
	};

	return RUN_ON_BOTH_RINGS(tests);
}
