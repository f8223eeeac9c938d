/* The event loop's thread: handlers run on it, and vm.pause parks it between two handlers until
 * resume or stop. */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <cmocka.h>

#include "event.h"

struct fx {
	struct event_loop loop;
	int in;   /* a doorbell the loop watches */
	int done; /* the handler rings this once per doorbell it served */
};

static void handler(void *opaque, uint32_t events)
{
	struct fx *f = opaque;
	uint64_t v, one = 1;

	assert_int_equal(read(f->in, &v, sizeof(v)), sizeof(v));
	assert_int_equal(write(f->done, &one, sizeof(one)), sizeof(one));
}

static int setup(void **state)
{
	static struct fx f;

	alarm(30); /* a loop that never parks or never leaves hangs the test: end it instead */
	assert_int_equal(event_loop_init(&f.loop, "test"), 0);
	f.in = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	f.done = eventfd(0, EFD_CLOEXEC);
	assert_true(f.in >= 0 && f.done >= 0);
	assert_int_equal(event_add(&f.loop, f.in, EPOLLIN, handler, &f), 0);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	event_loop_destroy(&f->loop);
	close(f->in);
	close(f->done);
	alarm(0);
	return 0;
}

static void ring(struct fx *f)
{
	uint64_t one = 1;

	assert_int_equal(write(f->in, &one, sizeof(one)), sizeof(one));
}

/* Served doorbells so far (reads the count, so each is counted once), waiting up to ms for one. */
static uint64_t served(struct fx *f, int ms)
{
	struct pollfd p = { f->done, POLLIN, 0 };
	uint64_t v = 0;

	if (poll(&p, 1, ms) == 1)
		assert_int_equal(read(f->done, &v, sizeof(v)), sizeof(v));
	return v;
}

static bool parked(struct event_loop *l)
{
	bool p;

	pthread_mutex_lock(&l->park_lock);
	p = l->parked;
	pthread_mutex_unlock(&l->park_lock);
	return p;
}

static void paused_loop_serves_nothing_until_resumed(void **state)
{
	struct fx *f = *state;

	assert_int_equal(event_loop_start(&f->loop), 0);
	ring(f);
	assert_int_equal(served(f, 10000), 1);
	event_loop_pause(&f->loop);
	/* Parked when pause returns, and it stays so: a doorbell waits. */
	assert_true(parked(&f->loop));
	ring(f);
	assert_int_equal(served(f, 100), 0);
	assert_true(parked(&f->loop));
	event_loop_pause(&f->loop); /* twice is once */
	assert_true(parked(&f->loop));
	event_loop_resume(&f->loop);
	assert_int_equal(served(f, 10000), 1);
	event_loop_resume(&f->loop); /* not paused: nothing */
	ring(f);
	assert_int_equal(served(f, 10000), 1);
	assert_false(parked(&f->loop));
}

static void a_paused_loop_stops(void **state)
{
	struct fx *f = *state;

	assert_int_equal(event_loop_start(&f->loop), 0);
	event_loop_pause(&f->loop);
	event_loop_stop(&f->loop); /* joins the parked thread */
	assert_false(f->loop.started);
	/* By hand, as unit tests run loops, after the stop: the doorbell is still there. */
	ring(f);
	assert_int_equal(event_loop_run_once(&f->loop, 0), 1);
	assert_int_equal(served(f, 0), 1);
}

static void a_loop_never_started_does_not_pause(void **state)
{
	struct fx *f = *state;

	event_loop_pause(&f->loop); /* returns at once: no thread to park */
	assert_false(parked(&f->loop));
	event_loop_resume(&f->loop);
	ring(f);
	assert_int_equal(event_loop_run_once(&f->loop, 0), 1);
	assert_int_equal(served(f, 0), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(paused_loop_serves_nothing_until_resumed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(a_paused_loop_stops, setup, teardown),
		cmocka_unit_test_setup_teardown(a_loop_never_started_does_not_pause, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
