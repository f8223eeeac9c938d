#include "event.h"
#include "log.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* What epoll hands back for an fd. Kept in a list so that destroy frees the ones still added. */
struct event_watch {
	int fd;
	event_fn fn;
	void *opaque;
	struct event_watch *next;
};

struct event_watches {
	pthread_mutex_t lock;
	struct event_watch *head;
	/* Deleted watches: the loop thread may still hold one from an epoll_wait that returned
	 * before the delete, so they are freed only at destroy (their fn is NULL: never run). */
	struct event_watch *dead;
};

int event_loop_init(struct event_loop *l, const char *name)
{
	struct event_watches *w = calloc(1, sizeof(*w));

	memset(l, 0, sizeof(*l));
	l->epfd = l->stop_fd = -1;
	l->name = name;
	l->role = SANDBOX_IO;
	pthread_mutex_init(&l->park_lock, NULL);
	pthread_cond_init(&l->park_cond, NULL);
	if (!w)
		return -ENOMEM;
	pthread_mutex_init(&w->lock, NULL);
	l->watches = w;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->epfd < 0 || l->stop_fd < 0) {
		int ret = -errno;
		event_loop_destroy(l);
		return ret;
	}
	return 0;
}

static struct event_watch **find(struct event_watches *w, int fd)
{
	struct event_watch **p = &w->head;

	while (*p && (*p)->fd != fd)
		p = &(*p)->next;
	return p;
}

static int watch(struct event_loop *l, int op, int fd, uint32_t events, event_fn fn, void *opaque)
{
	struct event_watches *w = l->watches;
	struct event_watch **p, *e;
	struct epoll_event ev = { .events = events };
	int ret = 0;

	pthread_mutex_lock(&w->lock);
	p = find(w, fd);
	e = *p;
	if (op == EPOLL_CTL_ADD) {
		if (e) {
			ret = -EEXIST;
			goto out;
		}
		e = calloc(1, sizeof(*e));
		if (!e) {
			ret = -ENOMEM;
			goto out;
		}
	} else if (!e) {
		ret = -ENOENT;
		goto out;
	}
	ev.data.ptr = e;
	if (epoll_ctl(l->epfd, op, fd, op == EPOLL_CTL_DEL ? NULL : &ev) < 0) {
		ret = -errno;
		if (op == EPOLL_CTL_ADD)
			free(e);
		goto out;
	}
	if (op == EPOLL_CTL_DEL) {
		e->fn = NULL;
		*p = e->next;
		e->next = w->dead;
		w->dead = e;
		goto out;
	}
	e->fd = fd;
	e->fn = fn;
	e->opaque = opaque;
	if (op == EPOLL_CTL_ADD) {
		e->next = w->head;
		w->head = e;
	}
out:
	pthread_mutex_unlock(&w->lock);
	return ret;
}

int event_add(struct event_loop *l, int fd, uint32_t events, event_fn fn, void *opaque)
{
	return watch(l, EPOLL_CTL_ADD, fd, events, fn, opaque);
}

int event_mod(struct event_loop *l, int fd, uint32_t events, event_fn fn, void *opaque)
{
	return watch(l, EPOLL_CTL_MOD, fd, events, fn, opaque);
}

int event_del(struct event_loop *l, int fd)
{
	return watch(l, EPOLL_CTL_DEL, fd, 0, NULL, NULL);
}

int event_loop_run_once(struct event_loop *l, int timeout_ms)
{
	struct epoll_event evs[16];
	struct event_watches *w = l->watches;
	int n, ran = 0;

	n = epoll_wait(l->epfd, evs, 16, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		struct event_watch *e = evs[i].data.ptr;
		event_fn fn;
		void *opaque;

		if (!e) /* the stop eventfd */
			continue;
		pthread_mutex_lock(&w->lock);
		fn = e->fn;
		opaque = e->opaque;
		pthread_mutex_unlock(&w->lock);
		if (fn) {
			fn(opaque, evs[i].events);
			ran++;
		}
	}
	return ran;
}

/* The loop was woken (stop_fd): parks while paused; true when it should stop. */
static bool event_thread_woken(struct event_loop *l)
{
	bool stop;

	pthread_mutex_lock(&l->park_lock);
	while (l->pause && !l->stop) {
		l->parked = true;
		pthread_cond_broadcast(&l->park_cond);
		pthread_cond_wait(&l->park_cond, &l->park_lock);
	}
	l->parked = false;
	stop = l->stop;
	pthread_mutex_unlock(&l->park_lock);
	return stop;
}

static void *event_thread(void *arg)
{
	struct event_loop *l = arg;
	uint64_t v;

	pthread_setname_np(pthread_self(), l->name); /* for top -H, perf and taskset */
	sandbox_enter(l->role, l->name);
	for (;;) {
		int ret = event_loop_run_once(l, -1);
		if (ret < 0) {
			log_error("%s: epoll_wait: %s", l->name, strerror(-ret));
			break;
		}
		if (read(l->stop_fd, &v, sizeof(v)) == sizeof(v) && event_thread_woken(l))
			break;
	}
	return NULL;
}

int event_loop_start(struct event_loop *l)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	sigset_t all, old;
	int ret;

	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->stop_fd, &ev) < 0)
		return -errno;
	l->stop = l->pause = false;
	/* The thread inherits a fully blocked mask: signals belong to main and the vCPUs. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = -pthread_create(&l->thread, NULL, event_thread, l);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret)
		return ret;
	l->started = true;
	return 0;
}

static void wake(struct event_loop *l)
{
	uint64_t one = 1;

	if (write(l->stop_fd, &one, sizeof(one)) < 0)
		log_warn("%s: wake: %s", l->name, strerror(errno));
}

void event_loop_pause(struct event_loop *l)
{
	if (!l->started)
		return;
	pthread_mutex_lock(&l->park_lock);
	l->pause = true;
	pthread_mutex_unlock(&l->park_lock);
	wake(l);
	pthread_mutex_lock(&l->park_lock);
	while (!l->parked && !l->stop)
		pthread_cond_wait(&l->park_cond, &l->park_lock);
	pthread_mutex_unlock(&l->park_lock);
}

void event_loop_resume(struct event_loop *l)
{
	pthread_mutex_lock(&l->park_lock);
	l->pause = false;
	pthread_cond_broadcast(&l->park_cond);
	pthread_mutex_unlock(&l->park_lock);
}

void event_loop_stop(struct event_loop *l)
{
	if (!l->started)
		return;
	pthread_mutex_lock(&l->park_lock);
	l->stop = true;
	pthread_cond_broadcast(&l->park_cond);
	pthread_mutex_unlock(&l->park_lock);
	wake(l);
	pthread_join(l->thread, NULL);
	l->started = false;
}

void event_loop_destroy(struct event_loop *l)
{
	struct event_watches *w = l->watches;

	if (!w)
		return; /* never initialised (a zeroed loop's fds are 0), or init found no memory */
	event_loop_stop(l);
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->stop_fd >= 0)
		close(l->stop_fd);
	if (w) {
		for (struct event_watch *e = w->head, *n; e; e = n) {
			n = e->next;
			free(e);
		}
		for (struct event_watch *e = w->dead, *n; e; e = n) {
			n = e->next;
			free(e);
		}
		pthread_mutex_destroy(&w->lock);
		free(w);
	}
	pthread_mutex_destroy(&l->park_lock);
	pthread_cond_destroy(&l->park_cond);
	l->epfd = l->stop_fd = -1;
	l->watches = NULL;
}
