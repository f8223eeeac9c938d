/* An epoll loop on its own thread: the I/O thread. Queue doorbells (ioeventfds), interrupt
 * resamples and host-side file descriptors (ttys, sockets) are served here, never on vCPU threads. */
#ifndef VMM_EVENT_H
#define VMM_EVENT_H

#include "sandbox.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* Called on the loop's thread with the epoll events that fired (EPOLLIN, EPOLLHUP...). */
typedef void (*event_fn)(void *opaque, uint32_t events);

struct event_watches;

struct event_loop {
	const char *name;
	enum sandbox_role role; /* its thread's allowlist: SANDBOX_IO unless its owner says */
	struct event_watches *watches; /* fd -> handler */
	int epfd;
	int stop_fd; /* eventfd: wakes the loop to stop or to park */
	pthread_t thread;
	bool started;
	pthread_mutex_t park_lock; /* guards the three below */
	pthread_cond_t park_cond;
	bool pause, parked, stop;
};

/* 0 or -errno. */
int event_loop_init(struct event_loop *l, const char *name);
/* Watches fd for `events` (EPOLLIN...). The opaque pointer must stay valid until event_del or
 * until the loop is destroyed. Any thread. 0 or -errno. */
int event_add(struct event_loop *l, int fd, uint32_t events, event_fn fn, void *opaque);
int event_mod(struct event_loop *l, int fd, uint32_t events, event_fn fn, void *opaque);
int event_del(struct event_loop *l, int fd);
/* Starts the thread (all signals blocked). 0 or -errno. */
int event_loop_start(struct event_loop *l);
/* Parks the thread between two handlers and returns once it is parked: no handler runs until
 * event_loop_resume (vm.pause). Nothing when the thread never started. Any other thread. */
void event_loop_pause(struct event_loop *l);
void event_loop_resume(struct event_loop *l);
/* Stops and joins the thread, parked or not; safe when it never started. */
void event_loop_stop(struct event_loop *l);
void event_loop_destroy(struct event_loop *l);
/* Runs the handlers of whatever is ready now, waiting at most timeout_ms (-1: forever, 0: not at
 * all): the thread's body, also used by unit tests to run a loop by hand. Returns the number of
 * handlers run, or -errno. */
int event_loop_run_once(struct event_loop *l, int timeout_ms);

#endif
