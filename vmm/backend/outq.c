#include "backend/outq.h"
#include "event.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define OUTQ_EXIT_WAIT_MS 5000 /* at exit, how long a reader may make no progress */

int outq_init(struct outq *q, int fd, size_t cap, const char *what, struct event_loop *loop,
	      void (*room)(void *opaque), void *opaque)
{
	struct stat st;
	char path[32];
	int flags;

	memset(q, 0, sizeof(*q));
	q->fd = q->own_fd = -1;
	q->what = what;
	q->loop = loop;
	q->room = room;
	q->opaque = opaque;
	pthread_mutex_init(&q->lock, NULL);
	if (fd < 0)
		return 0;
	q->fd = fd;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISREG(st.st_mode) || !loop) {
		q->direct = true;
		return 0;
	}
	if (S_ISSOCK(st.st_mode)) {
		q->socket = true;
	} else if ((flags = fcntl(fd, F_GETFL)) >= 0 && (flags & O_NONBLOCK)) {
		/* Non-blocking already: a description of vmm's own (a pty's master), which reopening
		 * would not give back (it would open a new pty). */
	} else {
		/* A description of our own, so O_NONBLOCK stays ours (the shell's stdout keeps
		 * blocking). Without /proc, the shared one, written as before. */
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		q->own_fd = open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (q->own_fd < 0) {
			log_debug("%s: cannot reopen fd %d without blocking (%s): writes may wait",
				  what, fd, strerror(errno));
			q->direct = true;
			return 0;
		}
		q->fd = q->own_fd;
	}
	q->cap = cap;
	q->buf = malloc(cap);
	return q->buf ? 0 : -ENOMEM;
}

/* One write that never waits: bytes taken, 0 when the fd is full, or -errno. */
static ssize_t put(struct outq *q, const uint8_t *p, size_t len)
{
	ssize_t n;

	do
		n = q->socket ? send(q->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL) : write(q->fd, p, len);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return 0;
	return n < 0 ? -errno : n;
}

static void fail_locked(struct outq *q, int err)
{
	if (!q->failed)
		log_warn("%s: output lost: %s", q->what, strerror(err));
	q->failed = true;
	q->len = 0;
}

/* Writes queued bytes until the fd is full. Lock held. */
static void flush_locked(struct outq *q)
{
	while (q->len && !q->failed) {
		size_t chunk = q->cap - q->head < q->len ? q->cap - q->head : q->len;
		ssize_t n = put(q, q->buf + q->head, chunk);

		if (n < 0) {
			fail_locked(q, (int)-n);
			return;
		}
		if (n == 0)
			return;
		q->head = (q->head + (size_t)n) % q->cap;
		q->len -= (size_t)n;
	}
}

static void ready(void *opaque, uint32_t events);

/* Watches for the fd taking more while bytes are queued. Lock held. */
static void arm_locked(struct outq *q)
{
	int ret;

	if (q->armed || !q->len || q->failed)
		return;
	if (q->registered)
		ret = event_mod(q->loop, q->fd, EPOLLOUT | EPOLLONESHOT, ready, q);
	else
		ret = event_add(q->loop, q->fd, EPOLLOUT | EPOLLONESHOT, ready, q);
	if (ret) {
		fail_locked(q, -ret);
		return;
	}
	q->registered = q->armed = true;
}

static void ready(void *opaque, uint32_t events)
{
	struct outq *q = opaque;
	bool tell;

	pthread_mutex_lock(&q->lock);
	q->armed = false;
	flush_locked(q);
	arm_locked(q);
	tell = q->waiting && (q->failed || q->len < q->cap);
	if (tell)
		q->waiting = false;
	pthread_mutex_unlock(&q->lock);
	if (tell && q->room)
		q->room(q->opaque);
}

static size_t write_direct(struct outq *q, const uint8_t *p, size_t len)
{
	size_t done = 0;

	while (done < len && !q->failed) {
		ssize_t n;

		do
			n = write(q->fd, p + done, len - done);
		while (n < 0 && errno == EINTR);
		if (n <= 0)
			fail_locked(q, n < 0 ? errno : EIO);
		else
			done += (size_t)n;
	}
	return len;
}

size_t outq_write(struct outq *q, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t done = 0;

	pthread_mutex_lock(&q->lock);
	if (q->fd < 0 || q->failed) {
		done = len;
		goto out;
	}
	if (q->direct) {
		done = write_direct(q, p, len);
		goto out;
	}
	if (!q->len) { /* nothing queued: straight to the fd, no copy */
		ssize_t n = put(q, p, len);

		if (n < 0) {
			fail_locked(q, (int)-n);
			done = len;
			goto out;
		}
		done = (size_t)n;
	}
	while (done < len && q->len < q->cap) {
		size_t tail = (q->head + q->len) % q->cap;
		size_t k = q->cap - tail < q->cap - q->len ? q->cap - tail : q->cap - q->len;

		if (k > len - done)
			k = len - done;
		memcpy(q->buf + tail, p + done, k);
		q->len += k;
		done += k;
	}
	if (q->len == q->cap) /* full: the writer will wait for room (THRE, a held chain) */
		q->waiting = true;
	arm_locked(q);
out:
	pthread_mutex_unlock(&q->lock);
	return done;
}

size_t outq_room(struct outq *q)
{
	size_t room;

	pthread_mutex_lock(&q->lock);
	room = q->fd < 0 || q->failed || q->direct ? SIZE_MAX : q->cap - q->len;
	pthread_mutex_unlock(&q->lock);
	return room;
}

void outq_destroy(struct outq *q)
{
	if (!q->what)
		return; /* never initialised */
	pthread_mutex_lock(&q->lock);
	while (q->len && !q->failed) {
		size_t before = q->len;
		struct pollfd pfd = { q->fd, POLLOUT, 0 };

		flush_locked(q);
		if (!q->len || q->failed)
			break;
		if (q->len == before && poll(&pfd, 1, OUTQ_EXIT_WAIT_MS) <= 0) {
			log_warn("%s: %zu bytes of output not written: nobody reads them", q->what,
				 q->len);
			break;
		}
	}
	pthread_mutex_unlock(&q->lock);
	if (q->registered && q->loop)
		event_del(q->loop, q->fd);
	if (q->own_fd >= 0)
		close(q->own_fd);
	free(q->buf);
	pthread_mutex_destroy(&q->lock);
	memset(q, 0, sizeof(*q));
	q->fd = q->own_fd = -1;
}
