/* Output to a host fd that nobody has to wait for: a guest's console or serial output going to a
 * pipe nobody reads, or a terminal stopped with Ctrl-S, must not stop a vCPU or the I/O thread
 * (and every device it serves). A bounded byte queue sits in front of a non-blocking writer; the
 * event loop drains it when the fd takes more and then tells the device there is room again, so
 * the device can hold the guest back (its virtqueue, its UART's THRE bit) rather than lose bytes.
 *
 * Where the fd can make a writer wait (a pipe, FIFO, terminal or socket), writes go through a
 * description of its own (the fd reopened through /proc/self/fd with O_NONBLOCK, or send() with
 * MSG_DONTWAIT on a socket), so the description vmm shares with its parent (the shell's stdout)
 * is never made non-blocking. A regular file never makes anyone wait for a reader: it is written
 * at once, as before. */
#ifndef VMM_OUTQ_H
#define VMM_OUTQ_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_loop;

struct outq {
	int fd;      /* where bytes go; -1: discarded */
	int own_fd;  /* the reopened description, closed by outq_destroy; -1 when none */
	bool direct; /* a regular file (or no way to reopen): written at once, never queued */
	bool socket; /* send() with MSG_DONTWAIT */
	const char *what; /* for messages: "serial", "console0" */
	struct event_loop *loop;
	void (*room)(void *opaque); /* there is room again (loop thread, no outq lock held) */
	void *opaque;

	pthread_mutex_t lock;
	uint8_t *buf;
	size_t cap, head, len; /* bytes queued: buf[head .. head + len) modulo cap */
	bool armed;            /* the fd's EPOLLOUT watch is on */
	bool registered;
	bool waiting;          /* someone found it full: call room when it drains */
	bool failed;           /* a write failed for good: said once, the rest is discarded */
};

/* Sets up output to fd (-1: discard) with a queue of cap bytes, drained on loop. 0 or -errno. */
int outq_init(struct outq *q, int fd, size_t cap, const char *what, struct event_loop *loop,
	      void (*room)(void *opaque), void *opaque);
/* Takes as much of buf as fits now (written at once where the fd takes it, the rest queued) and
 * returns how much. When that leaves the queue full (less than len taken, or no room left),
 * room() is called once there is space again. Any thread. A discarded or failed output, and a
 * direct one, take everything. */
size_t outq_write(struct outq *q, const void *buf, size_t len);
/* Bytes that would be taken now. */
size_t outq_room(struct outq *q);
/* Writes what is still queued, waiting a few seconds at most for a reader that makes no
 * progress (what is left then is dropped, with a message), and frees. The loop must be stopped.
 * Safe on a zeroed outq. */
void outq_destroy(struct outq *q);

#endif
