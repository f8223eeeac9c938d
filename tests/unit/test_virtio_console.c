/* The console device without a transport: the test plays the driver (rings in guest memory, the
 * device core's calls), the host side is a file, a pty, a pipe on stdin or a unix socket, and the
 * event loop is run by hand. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "event.h"
#include "memory.h"
#include "virtio/console.h"

#include "driver_ring.h"

/* ---- fixture ---- */

#define NQ 8 /* queues of a console with three ports */

struct cfx {
	struct guest_mem mem;
	struct event_loop loop;
	struct console_dev con;
	struct virtio_dev *d;
	struct tq q[NQ];
	unsigned nq;
	uint64_t next_gpa;
	int signals[NQ];
	int config_signals;
};

static struct cfx *cur; /* the transport's signal has no opaque of its own */

static void fake_signal(struct virtio_dev *d, int q)
{
	if (q < 0)
		__atomic_fetch_add(&cur->config_signals, 1, __ATOMIC_RELAXED);
	else if (q < NQ)
		__atomic_fetch_add(&cur->signals[q], 1, __ATOMIC_RELAXED);
}

static const struct virtio_transport_ops fake_transport = { .signal = fake_signal };

static void count_quit(void *opaque)
{
	(*(int *)opaque)++;
}

static int quits;

static int cfx_init(struct cfx *f, const struct console_port_cfg *ports, unsigned n)
{
	memset(f, 0, sizeof(*f));
	cur = f;
	f->next_gpa = DATA_GPA;
	assert_int_equal(gmem_init(&f->mem, 8 << 20), 0);
	assert_int_equal(event_loop_init(&f->loop, "test"), 0);
	f->d = &f->con.vdev;
	return console_init(&f->con, "console0", ports, n, &f->mem, &f->loop, count_quit, &quits);
}

/* The driver's side of initialisation (3.1.1), accepting `features` of the device's own bits. */
static void cfx_go(struct cfx *f, uint32_t features)
{
	struct virtio_dev *d = f->d;

	d->transport = &fake_transport;
	f->nq = (features & (1u << VIRTIO_CONSOLE_F_MULTIPORT)) ? 2 * f->con.nr_ports + 2 : 2;
	assert_true(f->nq <= NQ);
	pthread_mutex_lock(&d->lock);
	tq_negotiate(d, features);
	assert_true(d->status & VIRTIO_STATUS_FEATURES_OK);
	for (unsigned q = 0; q < f->nq; q++)
		tq_setup(d, q, &f->q[q], &f->mem);
	virtio_set_status(d, d->status | VIRTIO_STATUS_DRIVER_OK);
	assert_true(virtio_live(d));
	pthread_mutex_unlock(&d->lock);
}

static void cfx_teardown(struct cfx *f)
{
	console_destroy(&f->con);
	event_loop_destroy(&f->loop);
	gmem_free(&f->mem);
}

static uint64_t cfx_alloc(struct cfx *f, size_t len)
{
	uint64_t gpa = f->next_gpa;

	f->next_gpa += (len + 15) & ~(size_t)15;
	return gpa;
}

static void *cfx_ptr(struct cfx *f, uint64_t gpa, size_t len)
{
	void *p = gmem_ptr(&f->mem, gpa, len);

	assert_non_null(p);
	return p;
}

/* A receive buffer of len bytes on queue q, and the kick that tells the device. */
static void post_rx(struct cfx *f, unsigned q, uint32_t len)
{
	tq_add(&f->q[q], &(struct tbuf){ cfx_alloc(f, len), len, true }, 1);
	virtio_process(f->d, q);
}

static void send_tx(struct cfx *f, unsigned q, const void *data, uint32_t len)
{
	uint64_t gpa = cfx_alloc(f, len);

	memcpy(cfx_ptr(f, gpa, len), data, len);
	tq_add(&f->q[q], &(struct tbuf){ gpa, len, false }, 1);
	virtio_process(f->d, q);
}

/* The next used receive buffer of queue q must hold exactly `want`. */
static void expect_rx(struct cfx *f, unsigned q, const char *want)
{
	uint32_t id, len;

	assert_true(tq_used(&f->q[q], &id, &len));
	assert_int_equal(len, strlen(want));
	assert_memory_equal(cfx_ptr(f, f->q[q].gpa[id], len), want, len);
}

static void send_ctrl(struct cfx *f, uint32_t id, uint16_t event, uint16_t value)
{
	struct virtio_console_control m = { id, event, value };

	send_tx(f, 3, &m, sizeof(m));
}

/* The next control message from the device must be this one (name: PORT_NAME's payload). Returns
 * where it is, for a look at the rest. */
static uint64_t expect_ctrl(struct cfx *f, uint32_t id, uint16_t event, uint16_t value,
			const char *name)
{
	struct virtio_console_control m;
	uint32_t bid, len;

	assert_true(tq_used(&f->q[2], &bid, &len));
	memcpy(&m, cfx_ptr(f, f->q[2].gpa[bid], sizeof(m)), sizeof(m));
	assert_int_equal(m.id, id);
	assert_int_equal(m.event, event);
	assert_int_equal(m.value, value);
	if (name) {
		assert_int_equal(len, sizeof(m) + strlen(name));
		assert_memory_equal(cfx_ptr(f, f->q[2].gpa[bid] + sizeof(m), strlen(name)), name,
				    strlen(name));
	} else {
		assert_int_equal(len, event == VIRTIO_CONSOLE_RESIZE ? sizeof(m) + 4 : sizeof(m));
	}
	return f->q[2].gpa[bid];
}

static void expect_no_ctrl(struct cfx *f)
{
	uint32_t bid, len;

	assert_false(tq_used(&f->q[2], &bid, &len));
}

/* Waits (bounded) for the next used element of q: for work done by another thread. */
static bool wait_used(struct tq *t, uint32_t *id, uint32_t *len)
{
	for (int i = 0; i < 5000; i++) {
		if (tq_used(t, id, len))
			return true;
		usleep(1000);
	}
	return false;
}

static char *tmp_path(char *buf, size_t len, const char *what)
{
	snprintf(buf, len, "/tmp/vmm-test-%d-%s", (int)getpid(), what);
	unlink(buf);
	return buf;
}

static void read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, len - 1);
	assert_true(n >= 0);
	buf[n] = 0;
	close(fd);
}

static int connect_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	strcpy(sa.sun_path, path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* ---- tests ---- */

static void tx_reaches_file(void **state)
{
	char path[64], out[64];
	const struct console_port_cfg port = { NULL, CONSOLE_FILE,
					       tmp_path(path, sizeof(path), "tx"), NULL };
	struct cfx f;
	uint32_t id, len;

	assert_int_equal(cfx_init(&f, &port, 1), 0);
	/* A file is no terminal and there are no named ports: of the console's feature bits, only
	 * EMERG_WRITE, which is always offered. */
	assert_int_equal(virtio_get_features(f.d, 0) & 7, 1u << VIRTIO_CONSOLE_F_EMERG_WRITE);
	cfx_go(&f, 0);
	const struct tbuf b[2] = { { cfx_alloc(&f, 6), 6, false }, { cfx_alloc(&f, 5), 5, false } };
	memcpy(cfx_ptr(&f, b[0].gpa, 6), "hello ", 6);
	memcpy(cfx_ptr(&f, b[1].gpa, 5), "world", 5);
	tq_add(&f.q[1], b, 2);
	send_tx(&f, 1, "!\n", 2);
	assert_true(tq_used(&f.q[1], &id, &len));
	assert_int_equal(len, 0);
	assert_true(tq_used(&f.q[1], &id, &len));
	assert_true(f.signals[1] > 0);
	read_file(path, out, sizeof(out));
	assert_string_equal(out, "hello world!\n");
	cfx_teardown(&f);
	unlink(path);
}

static void pty_input_waits_for_buffers(void **state)
{
	const struct console_port_cfg port = { NULL, CONSOLE_PTY, NULL, NULL };
	struct cfx f;
	struct winsize ws = { .ws_row = 30, .ws_col = 100 };
	char out[16];
	int slave;

	assert_int_equal(cfx_init(&f, &port, 1), 0);
	/* A terminal: the size is offered, a fresh pty starts at 80x24. */
	assert_true(virtio_get_features(f.d, 0) & (1u << VIRTIO_CONSOLE_F_SIZE));
	assert_false(virtio_get_features(f.d, 0) & (1u << VIRTIO_CONSOLE_F_MULTIPORT));
	assert_int_equal(f.con.config.cols, 80);
	assert_int_equal(f.con.config.rows, 24);
	slave = open(ptsname(f.con.ports[0].in_fd), O_RDWR | O_NOCTTY);
	assert_true(slave >= 0);
	cfx_go(&f, 1u << VIRTIO_CONSOLE_F_SIZE);

	/* Typed before the guest posted a buffer: the device looks once, then stops watching. */
	assert_int_equal(write(slave, "abc", 3), 3);
	assert_int_equal(event_loop_run_once(&f.loop, 2000), 1);
	assert_int_equal(event_loop_run_once(&f.loop, 0), 0);
	/* A two-byte buffer takes two bytes; the third waits for the next buffer. */
	post_rx(&f, 0, 2);
	assert_int_equal(event_loop_run_once(&f.loop, 2000), 1);
	expect_rx(&f, 0, "ab");
	assert_int_equal(event_loop_run_once(&f.loop, 0), 0);
	post_rx(&f, 0, 16);
	assert_int_equal(event_loop_run_once(&f.loop, 2000), 1);
	expect_rx(&f, 0, "c");
	assert_true(f.signals[0] >= 2);

	/* Output goes to whoever holds the pty. */
	send_tx(&f, 1, "out", 3);
	assert_int_equal(read(slave, out, sizeof(out)), 3);
	assert_memory_equal(out, "out", 3);

	/* A resize reaches the configuration area and the driver hears of it. */
	assert_int_equal(ioctl(slave, TIOCSWINSZ, &ws), 0);
	console_resize(&f.con);
	assert_int_equal(f.con.config.cols, 100);
	assert_int_equal(f.con.config.rows, 30);
	/* One at start (Linux reads the size only on a change), one for the resize. */
	assert_int_equal(f.config_signals, 2);

	/* After a reset the buffer posted above is gone and input waits for the next driver. */
	pthread_mutex_lock(&f.d->lock);
	virtio_set_status(f.d, 0);
	pthread_mutex_unlock(&f.d->lock);
	assert_int_equal(write(slave, "z", 1), 1);
	assert_int_equal(event_loop_run_once(&f.loop, 0), 0);
	cfx_go(&f, 0);
	post_rx(&f, 0, 16);
	assert_int_equal(event_loop_run_once(&f.loop, 2000), 1);
	expect_rx(&f, 0, "z");
	close(slave);
	cfx_teardown(&f);
}

static void stdio_input_waits_for_buffers(void **state)
{
	const struct console_port_cfg port = { NULL, CONSOLE_STDIO, NULL, NULL };
	struct cfx f;
	uint32_t id, len;
	int p[2], saved = dup(STDIN_FILENO);

	assert_int_equal(pipe(p), 0);
	assert_int_equal(dup2(p[0], STDIN_FILENO), STDIN_FILENO);
	close(p[0]);
	assert_int_equal(cfx_init(&f, &port, 1), 0);
	cfx_go(&f, 0);
	assert_int_equal(console_start(&f.con), 0);

	/* term's thread takes "hello" and waits: there is no buffer yet. */
	assert_int_equal(write(p[1], "hello", 5), 5);
	post_rx(&f, 0, 3);
	assert_true(wait_used(&f.q[0], &id, &len));
	assert_int_equal(len, 3);
	assert_memory_equal(cfx_ptr(&f, f.q[0].gpa[id], 3), "hel", 3);
	post_rx(&f, 0, 16);
	assert_true(wait_used(&f.q[0], &id, &len));
	assert_int_equal(len, 2);
	assert_memory_equal(cfx_ptr(&f, f.q[0].gpa[id], 2), "lo", 2);

	/* Stopping ends the thread even while it waits for the guest. */
	assert_int_equal(write(p[1], "more", 4), 4);
	console_stop(&f.con);
	assert_false(tq_used(&f.q[0], &id, &len));
	cfx_teardown(&f);
	close(p[1]);
	assert_int_equal(dup2(saved, STDIN_FILENO), STDIN_FILENO);
	close(saved);
}

/* Ctrl-A x on the terminal reaches the caller's quit callback with the caller's pointer. */
static void stdio_escape_quits(void **state)
{
	const struct console_port_cfg port = { NULL, CONSOLE_STDIO, NULL, NULL };
	struct cfx f;
	int p[2], saved = dup(STDIN_FILENO);

	assert_int_equal(pipe(p), 0);
	assert_int_equal(dup2(p[0], STDIN_FILENO), STDIN_FILENO);
	close(p[0]);
	assert_int_equal(cfx_init(&f, &port, 1), 0);
	f.con.term.is_tty = true; /* escapes are only looked for when a person types */
	quits = 0;
	assert_int_equal(term_feed(&f.con.term, (const uint8_t *)"\001x", 2), 1);
	assert_int_equal(quits, 1);
	cfx_teardown(&f);
	close(p[1]);
	assert_int_equal(dup2(saved, STDIN_FILENO), STDIN_FILENO);
	close(saved);
}

/* With multiport, port 0's size travels in RESIZE messages: cols, then rows (5.3.6.2). */
static void multiport_resize_message(void **state)
{
	const struct console_port_cfg ports[2] = { { NULL, CONSOLE_PTY, NULL, NULL },
						   { "n", CONSOLE_NONE, NULL, NULL } };
	struct winsize ws = { .ws_row = 43, .ws_col = 132 };
	uint16_t size[2];
	struct cfx f;
	int slave;

	assert_int_equal(cfx_init(&f, ports, 2), 0);
	assert_int_equal(virtio_get_features(f.d, 0) & 7, 7);
	slave = open(ptsname(f.con.ports[0].in_fd), O_RDWR | O_NOCTTY);
	assert_true(slave >= 0);
	cfx_go(&f, 1u << VIRTIO_CONSOLE_F_SIZE | 1u << VIRTIO_CONSOLE_F_MULTIPORT);
	for (int i = 0; i < 8; i++)
		post_rx(&f, 2, 64);
	send_ctrl(&f, 0, VIRTIO_CONSOLE_DEVICE_READY, 1);
	expect_ctrl(&f, 0, VIRTIO_CONSOLE_DEVICE_ADD, 0, NULL);
	expect_ctrl(&f, 1, VIRTIO_CONSOLE_DEVICE_ADD, 0, NULL);
	send_ctrl(&f, 0, VIRTIO_CONSOLE_PORT_READY, 1);
	expect_ctrl(&f, 0, VIRTIO_CONSOLE_CONSOLE_PORT, 1, NULL);
	memcpy(size, cfx_ptr(&f, expect_ctrl(&f, 0, VIRTIO_CONSOLE_RESIZE, 0, NULL) + 8, 4), 4);
	assert_int_equal(size[0], 80);
	assert_int_equal(size[1], 24);
	expect_ctrl(&f, 0, VIRTIO_CONSOLE_PORT_OPEN, 1, NULL);
	send_ctrl(&f, 1, VIRTIO_CONSOLE_PORT_READY, 1);
	expect_ctrl(&f, 1, VIRTIO_CONSOLE_PORT_NAME, 0, "n");
	expect_no_ctrl(&f); /* nothing behind port 1 */

	assert_int_equal(ioctl(slave, TIOCSWINSZ, &ws), 0);
	console_resize(&f.con);
	memcpy(size, cfx_ptr(&f, expect_ctrl(&f, 0, VIRTIO_CONSOLE_RESIZE, 0, NULL) + 8, 4), 4);
	assert_int_equal(size[0], 132);
	assert_int_equal(size[1], 43);
	assert_int_equal(f.config_signals, 0);
	close(slave);
	cfx_teardown(&f);
}

static void multiport_handshake_and_socket_port(void **state)
{
	char logp[64], sockp[64], out[64];
	const struct console_port_cfg ports[3] = {
		{ NULL, CONSOLE_NONE, NULL, NULL },
		{ "org.vmm.log", CONSOLE_FILE, tmp_path(logp, sizeof(logp), "log"), NULL },
		{ "org.vmm.sock", CONSOLE_SOCKET, tmp_path(sockp, sizeof(sockp), "sock"), NULL },
	};
	struct cfx f;
	int cl;

	assert_int_equal(cfx_init(&f, ports, 3), 0);
	assert_int_equal(virtio_get_features(f.d, 0) & 7,
			 1u << VIRTIO_CONSOLE_F_MULTIPORT | 1u << VIRTIO_CONSOLE_F_EMERG_WRITE);
	assert_int_equal(f.con.config.max_nr_ports, 3);
	cfx_go(&f, 1u << VIRTIO_CONSOLE_F_MULTIPORT);
	for (int i = 0; i < 14; i++)
		post_rx(&f, 2, 64);

	send_ctrl(&f, 0, VIRTIO_CONSOLE_DEVICE_READY, 1);
	expect_ctrl(&f, 0, VIRTIO_CONSOLE_DEVICE_ADD, 0, NULL);
	expect_ctrl(&f, 1, VIRTIO_CONSOLE_DEVICE_ADD, 0, NULL);
	expect_ctrl(&f, 2, VIRTIO_CONSOLE_DEVICE_ADD, 0, NULL);
	expect_no_ctrl(&f);
	send_ctrl(&f, 0, VIRTIO_CONSOLE_PORT_READY, 1);
	expect_ctrl(&f, 0, VIRTIO_CONSOLE_CONSOLE_PORT, 1, NULL);
	expect_ctrl(&f, 0, VIRTIO_CONSOLE_PORT_OPEN, 1, NULL);
	send_ctrl(&f, 1, VIRTIO_CONSOLE_PORT_READY, 1);
	expect_ctrl(&f, 1, VIRTIO_CONSOLE_PORT_NAME, 0, "org.vmm.log");
	expect_ctrl(&f, 1, VIRTIO_CONSOLE_PORT_OPEN, 1, NULL);
	send_ctrl(&f, 2, VIRTIO_CONSOLE_PORT_READY, 1);
	expect_ctrl(&f, 2, VIRTIO_CONSOLE_PORT_NAME, 0, "org.vmm.sock");
	expect_no_ctrl(&f); /* no client yet: the host side is closed */
	/* A second DEVICE_READY adds no port twice (5.3.6.2). */
	send_ctrl(&f, 0, VIRTIO_CONSOLE_DEVICE_READY, 1);
	expect_no_ctrl(&f);

	/* Port 1 writes to its file. */
	send_tx(&f, 5, "log line\n", 9);
	read_file(logp, out, sizeof(out));
	assert_string_equal(out, "log line\n");

	/* A client connects: the guest hears the host side opened; it leaves: closed. */
	cl = connect_unix(sockp);
	assert_int_equal(event_loop_run_once(&f.loop, 2000), 1);
	expect_ctrl(&f, 2, VIRTIO_CONSOLE_PORT_OPEN, 1, NULL);
	close(cl);
	assert_int_equal(event_loop_run_once(&f.loop, 2000), 1);
	expect_ctrl(&f, 2, VIRTIO_CONSOLE_PORT_OPEN, 0, NULL);
	assert_int_equal(event_loop_run_once(&f.loop, 0), 0);
	cl = connect_unix(sockp);
	assert_int_equal(event_loop_run_once(&f.loop, 2000), 1);
	expect_ctrl(&f, 2, VIRTIO_CONSOLE_PORT_OPEN, 1, NULL);

	/* Nothing reaches a port the guest has not opened. */
	post_rx(&f, 6, 16);
	assert_int_equal(write(cl, "ping", 4), 4);
	assert_int_equal(event_loop_run_once(&f.loop, 0), 0);
	send_ctrl(&f, 2, VIRTIO_CONSOLE_PORT_OPEN, 1);
	assert_int_equal(event_loop_run_once(&f.loop, 2000), 1);
	expect_rx(&f, 6, "ping");
	send_tx(&f, 7, "pong", 4);
	assert_int_equal(read(cl, out, sizeof(out)), 4);
	assert_memory_equal(out, "pong", 4);

	/* The client leaves (seen once the guest has a buffer to read into): closed again. */
	post_rx(&f, 6, 16);
	close(cl);
	assert_int_equal(event_loop_run_once(&f.loop, 2000), 1);
	expect_ctrl(&f, 2, VIRTIO_CONSOLE_PORT_OPEN, 0, NULL);
	/* Output with nobody connected is discarded, and completed. */
	send_tx(&f, 7, "lost", 4);
	uint32_t id, len;
	assert_true(tq_used(&f.q[7], &id, &len));
	assert_true(tq_used(&f.q[7], &id, &len));
	/* The next client is taken. */
	cl = connect_unix(sockp);
	assert_int_equal(event_loop_run_once(&f.loop, 2000), 1);
	expect_ctrl(&f, 2, VIRTIO_CONSOLE_PORT_OPEN, 1, NULL);
	close(cl);
	cfx_teardown(&f);
	assert_int_equal(access(sockp, F_OK), -1);
	unlink(logp);
}

/* Reads len bytes from the host end fd into buf, turning the device's loop as the reader makes
 * room, as a slow reader would. */
static void read_all(struct cfx *f, int fd, uint8_t *buf, size_t len)
{
	size_t have = 0;

	while (have < len) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t n;

		assert_int_equal(poll(&pfd, 1, 2000), 1);
		n = read(fd, buf + have, len - have);
		assert_true(n > 0);
		have += (size_t)n;
		event_loop_run_once(&f->loop, 0);
	}
}

/* A client that does not read: the guest's output waits in its ring, none of it is lost. */
static void socket_backpressure_loses_nothing(void **state)
{
	char sockp[64];
	const struct console_port_cfg ports[2] = {
		{ NULL, CONSOLE_NONE, NULL, NULL },
		{ "big", CONSOLE_SOCKET, tmp_path(sockp, sizeof(sockp), "big"), NULL },
	};
	enum { CHUNK = 256 * 1024, TOTAL = 4 * CHUNK };
	struct tbuf b[4];
	struct cfx f;
	uint8_t *got = malloc(TOTAL);
	uint32_t id, len;
	int cl;

	assert_non_null(got);
	assert_int_equal(cfx_init(&f, ports, 2), 0);
	cfx_go(&f, 1u << VIRTIO_CONSOLE_F_MULTIPORT);
	cl = connect_unix(sockp);
	assert_int_equal(event_loop_run_once(&f.loop, 2000), 1);
	for (int i = 0; i < 4; i++) {
		b[i] = (struct tbuf){ cfx_alloc(&f, CHUNK), CHUNK, false };
		uint8_t *p = cfx_ptr(&f, b[i].gpa, CHUNK);
		for (int j = 0; j < CHUNK; j++)
			p[j] = (uint8_t)((i * CHUNK + j) * 2654435761u >> 24);
	}
	tq_add(&f.q[5], b, 4);
	virtio_process(f.d, 5);
	assert_false(tq_used(&f.q[5], &id, &len)); /* more than a socket buffer holds */
	read_all(&f, cl, got, TOTAL);
	assert_true(tq_used(&f.q[5], &id, &len));
	for (int i = 0; i < 4; i++)
		assert_memory_equal(got + i * CHUNK, cfx_ptr(&f, b[i].gpa, CHUNK), CHUNK);
	close(cl);
	free(got);
	cfx_teardown(&f);
}

/* A chain held for a client that does not read, when the driver stops the transmitq
 * (virtio-mmio QueueReady 0) and sets it up anew: the rest of the old chain is never read from
 * guest memory (the driver has taken it back) and never pushed; the new queue's output goes out. */
static void queue_stop_drops_the_held_transmit_chain(void **state)
{
	char sockp[64];
	const struct console_port_cfg ports[2] = {
		{ NULL, CONSOLE_NONE, NULL, NULL },
		{ "big", CONSOLE_SOCKET, tmp_path(sockp, sizeof(sockp), "stop"), NULL },
	};
	enum { TOTAL = 4 << 20 };
	struct cfx f;
	uint8_t *got = malloc(TOTAL);
	size_t have = 0;
	uint32_t id, len;
	uint64_t gpa;
	int cl;

	assert_non_null(got);
	assert_int_equal(cfx_init(&f, ports, 2), 0);
	cfx_go(&f, 1u << VIRTIO_CONSOLE_F_MULTIPORT);
	cl = connect_unix(sockp);
	assert_int_equal(event_loop_run_once(&f.loop, 2000), 1);
	gpa = cfx_alloc(&f, TOTAL);
	memset(cfx_ptr(&f, gpa, TOTAL), 'x', TOTAL);
	tq_add(&f.q[5], &(struct tbuf){ gpa, TOTAL, false }, 1);
	virtio_process(f.d, 5);
	assert_true(f.con.ports[1].tx_held); /* more than a socket buffer holds */
	pthread_mutex_lock(&f.d->lock);
	virtio_queue_stop(f.d, 5);
	tq_setup(f.d, 5, &f.q[5], &f.mem);
	pthread_mutex_unlock(&f.d->lock);
	send_tx(&f, 5, "new", 3);
	for (;;) {
		struct pollfd pfd = { cl, POLLIN, 0 };
		ssize_t n;

		event_loop_run_once(&f.loop, 0);
		if (poll(&pfd, 1, 200) != 1)
			break;
		n = read(cl, got + have, TOTAL - have);
		assert_true(n > 0);
		have += (size_t)n;
	}
	/* What the socket took before the stop, then the new queue's output; nothing after. */
	assert_true(have > 3 && have < TOTAL);
	assert_memory_equal(got + have - 3, "new", 3);
	for (size_t i = 0; i < have - 3; i++)
		assert_int_equal(got[i], 'x');
	assert_true(tq_used(&f.q[5], &id, &len));
	assert_false(tq_used(&f.q[5], &id, &len));
	close(cl);
	free(got);
	cfx_teardown(&f);
}

/* Hostile-guest defect 5: output to a pipe nobody reads blocked the I/O thread in its write (and
 * every device it serves). Now the port's output queue fills, the chain stays held in the guest's
 * ring, the thread goes on; when the reader reads, the output goes on, all of it, in order. */
static void a_reader_that_does_not_read_never_stops_the_io_thread(void **state)
{
	char path[64];
	const struct console_port_cfg port = { NULL, CONSOLE_FILE,
					       tmp_path(path, sizeof(path), "fifo"), NULL };
	enum { TOTAL = 1 << 20 };
	struct cfx f;
	uint8_t *got = malloc(TOTAL), *src;
	uint32_t id, len;
	uint64_t gpa;
	int rfd;

	assert_non_null(got);
	assert_int_equal(mkfifo(path, 0600), 0);
	rfd = open(path, O_RDONLY | O_NONBLOCK);
	assert_true(rfd >= 0);
	assert_int_equal(cfx_init(&f, &port, 1), 0);
	cfx_go(&f, 0);
	alarm(20); /* before the fix the handler below never returned: fail rather than hang */
	gpa = cfx_alloc(&f, TOTAL);
	src = cfx_ptr(&f, gpa, TOTAL);
	for (size_t i = 0; i < TOTAL; i++)
		src[i] = (uint8_t)(i * 2654435761u >> 24);
	tq_add(&f.q[1], &(struct tbuf){ gpa, TOTAL, false }, 1);
	virtio_process(f.d, 1); /* returns although nobody reads */
	assert_true(f.con.ports[0].tx_held);
	assert_false(tq_used(&f.q[1], &id, &len));
	read_all(&f, rfd, got, TOTAL);
	alarm(0);
	assert_memory_equal(got, src, TOTAL);
	assert_true(tq_used(&f.q[1], &id, &len));
	cfx_teardown(&f);
	close(rfd);
	unlink(path);
	free(got);
}

/* A 32-bit write of emerg_wr, as a driver makes it. */
static void emerg(struct cfx *f, uint32_t ch)
{
	pthread_mutex_lock(&f->d->lock);
	virtio_config_write(f->d, offsetof(struct virtio_console_config, emerg_wr),
			    (const uint8_t *)&ch, 4);
	pthread_mutex_unlock(&f->d->lock);
}

/* EMERG_WRITE: the lower byte of each write to emerg_wr is on port 0's host side when the write
 * returns, before the driver has set the device up, after it did and after the device broke;
 * emerg_wr reads 0 and the rest of the area cannot be written. */
static void emergency_write_reaches_port_0(void **state)
{
	char path[64], out[64];
	const struct console_port_cfg port = { NULL, CONSOLE_FILE,
					       tmp_path(path, sizeof(path), "emerg"), NULL };
	struct virtio_console_config c, before;
	const uint8_t junk[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	struct cfx f;

	assert_int_equal(cfx_init(&f, &port, 1), 0);
	virtio_config_read(f.d, 0, (uint8_t *)&before, sizeof(before));
	emerg(&f, 'o');
	emerg(&f, 0x1200 | 'k'); /* only the lower byte */
	read_file(path, out, sizeof(out));
	assert_string_equal(out, "ok");
	cfx_go(&f, 0);
	send_tx(&f, 1, " queue", 6);
	emerg(&f, '!');
	pthread_mutex_lock(&f.d->lock);
	virtio_fail(f.d, "a test breaks it");
	pthread_mutex_unlock(&f.d->lock);
	emerg(&f, '\n');
	read_file(path, out, sizeof(out));
	assert_string_equal(out, "ok queue!\n");
	pthread_mutex_lock(&f.d->lock);
	virtio_config_write(f.d, 0, junk, sizeof(junk)); /* cols, rows, max_nr_ports */
	virtio_config_write(f.d, 9, junk, 3);            /* emerg_wr without its lower byte */
	pthread_mutex_unlock(&f.d->lock);
	virtio_config_read(f.d, 0, (uint8_t *)&c, sizeof(c));
	assert_memory_equal(&c, &before, sizeof(c));
	assert_int_equal(c.emerg_wr, 0);
	read_file(path, out, sizeof(out));
	assert_string_equal(out, "ok queue!\n");
	cfx_teardown(&f);
	unlink(path);
}

/* The same on a socket port 0: the client gets it; with no client it is dropped. */
static void emergency_write_to_a_socket_client(void **state)
{
	char sockp[64], out[8];
	const struct console_port_cfg port = { NULL, CONSOLE_SOCKET,
					       tmp_path(sockp, sizeof(sockp), "esock"), NULL };
	struct cfx f;
	int cl;

	assert_int_equal(cfx_init(&f, &port, 1), 0);
	emerg(&f, 'x'); /* nobody there */
	cl = connect_unix(sockp);
	assert_int_equal(event_loop_run_once(&f.loop, 2000), 1);
	emerg(&f, 'y');
	assert_int_equal(poll(&(struct pollfd){ cl, POLLIN, 0 }, 1, 2000), 1);
	assert_int_equal(read(cl, out, sizeof(out)), 1);
	assert_int_equal(out[0], 'y');
	close(cl);
	cfx_teardown(&f);
}

static void short_control_message_needs_reset(void **state)
{
	const struct console_port_cfg ports[2] = { { NULL, CONSOLE_NONE, NULL, NULL },
						   { "p", CONSOLE_NONE, NULL, NULL } };
	struct cfx f;
	uint32_t four = 0;

	assert_int_equal(cfx_init(&f, ports, 2), 0);
	cfx_go(&f, 1u << VIRTIO_CONSOLE_F_MULTIPORT);
	send_tx(&f, 3, &four, sizeof(four));
	assert_true(f.d->status & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(f.config_signals, 1);
	cfx_teardown(&f);
}

static void control_message_for_missing_port_needs_reset(void **state)
{
	const struct console_port_cfg ports[2] = { { NULL, CONSOLE_NONE, NULL, NULL },
						   { "p", CONSOLE_NONE, NULL, NULL } };
	struct cfx f;

	assert_int_equal(cfx_init(&f, ports, 2), 0);
	cfx_go(&f, 1u << VIRTIO_CONSOLE_F_MULTIPORT);
	send_ctrl(&f, 1, VIRTIO_CONSOLE_PORT_OPEN, 1);
	assert_true(virtio_live(f.d));
	send_ctrl(&f, 2, VIRTIO_CONSOLE_PORT_READY, 1);
	assert_true(f.d->status & VIRTIO_STATUS_NEEDS_RESET);
	cfx_teardown(&f);
}

static void writable_buffer_in_transmitq_needs_reset(void **state)
{
	const struct console_port_cfg port = { NULL, CONSOLE_NONE, NULL, NULL };
	struct cfx f;

	assert_int_equal(cfx_init(&f, &port, 1), 0);
	cfx_go(&f, 0);
	tq_add(&f.q[1], &(struct tbuf){ cfx_alloc(&f, 8), 8, true }, 1);
	virtio_process(f.d, 1);
	assert_true(f.d->status & VIRTIO_STATUS_NEEDS_RESET);
	cfx_teardown(&f);
}

/* ---- framing ---- */

struct chain {
	uint16_t head;
	unsigned n;
	struct tbuf b[4];
};

/* A chain on queue q framed as cuts[0..n) say, each buffer at a place of its own from base
 * (readable ones hold data; writable ones are filled with 0xee), and the kick. */
static void add_framed(struct cfx *f, unsigned q, uint64_t base, const void *data,
		       const uint32_t *cuts, unsigned n, bool write, struct chain *c)
{
	c->n = n;
	tq_scatter(&f->q[q], base, data, cuts, n, write, c->b);
	c->head = tq_add(&f->q[q], c->b, n);
	virtio_process(f->d, q);
}

/* The next used chain of q is one of c[0..nc): its bytes into out; returns the used length. */
static uint32_t used_framed(struct cfx *f, unsigned q, const struct chain *c, unsigned nc,
			    void *out, size_t cap)
{
	uint32_t id, len;

	assert_true(tq_used(&f->q[q], &id, &len));
	for (unsigned i = 0; i < nc; i++) {
		if (c[i].head == id) {
			assert_true(len <= cap);
			assert_int_equal(tq_gather(&f->q[q], c[i].b, c[i].n, out, len), len);
			return len;
		}
	}
	fail_msg("used chain %u was not posted", id);
	return 0;
}

static void expect_ctrl_framed(struct cfx *f, const struct chain *c, unsigned nc, uint32_t id,
			       uint16_t event, uint16_t value, uint32_t extra)
{
	struct virtio_console_control m;
	uint8_t buf[64];
	uint32_t len = used_framed(f, 2, c, nc, buf, sizeof(buf));

	assert_int_equal(len, sizeof(m) + extra);
	memcpy(&m, buf, sizeof(m));
	assert_int_equal(m.id, id);
	assert_int_equal(m.event, event);
	assert_int_equal(m.value, value);
}

/* Any layout on every queue (2.7.4; a legacy driver's with ANY_LAYOUT, whose control queues would
 * otherwise use one buffer a message, 5.3.6.3): control messages from the driver split inside
 * their header, control messages to it and input spread over the buffers of a chain as they fall,
 * output gathered from several. */
static void any_layout(void **state)
{
	const struct console_port_cfg ports[2] = { { NULL, CONSOLE_PTY, NULL, NULL },
						   { "n", CONSOLE_NONE, NULL, NULL } };
	static const uint32_t rx_cuts[] = { 3, 5, 56 };
	struct virtio_console_control m = { 0, VIRTIO_CONSOLE_DEVICE_READY, 1 };
	struct chain rx[5], tx, in;
	uint8_t buf[64];
	int slave;
	struct cfx f;

	assert_int_equal(cfx_init(&f, ports, 2), 0);
	slave = open(ptsname(f.con.ports[0].in_fd), O_RDWR | O_NOCTTY);
	assert_true(slave >= 0);
	cfx_go(&f, 1u << VIRTIO_CONSOLE_F_SIZE | 1u << VIRTIO_CONSOLE_F_MULTIPORT);
	for (unsigned i = 0; i < 2; i++)
		add_framed(&f, 2, TEST_GPA(0x400000) + 0x10000 * i, NULL, rx_cuts, 3, true, &rx[i]);
	add_framed(&f, 3, TEST_GPA(0x480000), &m, (const uint32_t[]){ 3, 5 }, 2, false, &tx);
	assert_true(virtio_live(f.d));
	expect_ctrl_framed(&f, rx, 2, 0, VIRTIO_CONSOLE_DEVICE_ADD, 0, 0);
	expect_ctrl_framed(&f, rx, 2, 1, VIRTIO_CONSOLE_DEVICE_ADD, 0, 0);
	for (unsigned i = 2; i < 5; i++)
		add_framed(&f, 2, TEST_GPA(0x400000) + 0x10000 * i, NULL, rx_cuts, 3, true, &rx[i]);
	m = (struct virtio_console_control){ 0, VIRTIO_CONSOLE_PORT_READY, 1 };
	add_framed(&f, 3, TEST_GPA(0x480000), &m, (const uint32_t[]){ 1, 1, 6 }, 3, false, &tx);
	expect_ctrl_framed(&f, rx, 5, 0, VIRTIO_CONSOLE_CONSOLE_PORT, 1, 0);
	expect_ctrl_framed(&f, rx, 5, 0, VIRTIO_CONSOLE_RESIZE, 0, 4);
	expect_ctrl_framed(&f, rx, 5, 0, VIRTIO_CONSOLE_PORT_OPEN, 1, 0);
	assert_true(virtio_live(f.d));

	/* The guest opens port 0; typed input spreads over a chain of 2, 1 and 13 bytes. */
	m = (struct virtio_console_control){ 0, VIRTIO_CONSOLE_PORT_OPEN, 1 };
	add_framed(&f, 3, TEST_GPA(0x480000), &m, (const uint32_t[]){ 7, 1 }, 2, false, &tx);
	add_framed(&f, 0, TEST_GPA(0x500000), NULL, (const uint32_t[]){ 2, 1, 13 }, 3, true, &in);
	assert_int_equal(write(slave, "abcdef", 6), 6);
	assert_int_equal(event_loop_run_once(&f.loop, 2000), 1);
	assert_int_equal(used_framed(&f, 0, &in, 1, buf, sizeof(buf)), 6);
	assert_memory_equal(buf, "abcdef", 6);
	/* Output from three buffers. */
	add_framed(&f, 1, TEST_GPA(0x580000), "xyzuvw", (const uint32_t[]){ 1, 2, 3 }, 3, false, &tx);
	assert_int_equal(read(slave, buf, sizeof(buf)), 6);
	assert_memory_equal(buf, "xyzuvw", 6);
	assert_true(virtio_live(f.d));
	close(slave);
	cfx_teardown(&f);
}

/* The size is part of the configuration area: a resize is a change of it, and the generation
 * moves whenever it happens, before the driver started the device too (a driver reading the area
 * during its probe must see it), not only when the driver is told. */
static void resize_moves_the_generation(void **state)
{
	const struct console_port_cfg port = { NULL, CONSOLE_PTY, NULL, NULL };
	struct winsize ws = { .ws_row = 50, .ws_col = 120 };
	struct cfx f;
	uint32_t gen;
	int slave;

	assert_int_equal(cfx_init(&f, &port, 1), 0);
	f.d->transport = &fake_transport;
	slave = open(ptsname(f.con.ports[0].in_fd), O_RDWR | O_NOCTTY);
	assert_true(slave >= 0);
	gen = virtio_config_generation(f.d);
	assert_int_equal(ioctl(slave, TIOCSWINSZ, &ws), 0);
	console_resize(&f.con);
	assert_int_equal(f.con.config.cols, 120);
	assert_int_equal(f.con.config.rows, 50);
	assert_int_not_equal(virtio_config_generation(f.d), gen);
	assert_int_equal(f.config_signals, 0); /* no driver to tell yet */
	/* The same size again: no change. */
	gen = virtio_config_generation(f.d);
	console_resize(&f.con);
	assert_int_equal(virtio_config_generation(f.d), gen);
	/* Running: a change and an interrupt. */
	cfx_go(&f, 1u << VIRTIO_CONSOLE_F_SIZE);
	gen = virtio_config_generation(f.d);
	ws.ws_col = 90;
	assert_int_equal(ioctl(slave, TIOCSWINSZ, &ws), 0);
	console_resize(&f.con);
	assert_int_not_equal(virtio_config_generation(f.d), gen);
	assert_int_equal(f.config_signals, 2); /* one at start, one now */
	close(slave);
	cfx_teardown(&f);
}

static void bad_configurations_are_errors(void **state)
{
	char longp[200];
	struct cfx f;
	struct {
		struct console_port_cfg p[2];
		unsigned n;
		int err;
	} cases[] = {
		{ { { NULL, CONSOLE_FILE, "/nonexistent/vmm/console.log", NULL } }, 1, -ENOENT },
		{ { { NULL, CONSOLE_NONE, NULL, NULL }, { "a", CONSOLE_SOCKET, longp, NULL } },
		  2,
		  -ENAMETOOLONG },
		{ { { NULL, CONSOLE_NONE, NULL, NULL }, { "a/b", CONSOLE_NONE, NULL, NULL } },
		  2,
		  -EINVAL },
		{ { { NULL, CONSOLE_NONE, NULL, NULL }, { "a", CONSOLE_STDIO, NULL, NULL } },
		  2,
		  -EINVAL },
		{ { { "x", CONSOLE_NONE, NULL, NULL } }, 1, -EINVAL },
		{ { { NULL, CONSOLE_NONE, NULL, NULL }, { "a", CONSOLE_FILE, NULL, NULL } },
		  2,
		  -EINVAL },
	};

	memset(longp, 'x', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = 0;
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(cfx_init(&f, cases[i].p, cases[i].n), cases[i].err);
		cfx_teardown(&f);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tx_reaches_file),
		cmocka_unit_test(pty_input_waits_for_buffers),
		cmocka_unit_test(stdio_input_waits_for_buffers),
		cmocka_unit_test(stdio_escape_quits),
		cmocka_unit_test(multiport_resize_message),
		cmocka_unit_test(multiport_handshake_and_socket_port),
		cmocka_unit_test(socket_backpressure_loses_nothing),
		cmocka_unit_test(queue_stop_drops_the_held_transmit_chain),
		cmocka_unit_test(a_reader_that_does_not_read_never_stops_the_io_thread),
		cmocka_unit_test(emergency_write_reaches_port_0),
		cmocka_unit_test(emergency_write_to_a_socket_client),
		cmocka_unit_test(short_control_message_needs_reset),
		cmocka_unit_test(control_message_for_missing_port_needs_reset),
		cmocka_unit_test(writable_buffer_in_transmitq_needs_reset),
		cmocka_unit_test(bad_configurations_are_errors),
		cmocka_unit_test(any_layout),
		cmocka_unit_test(resize_moves_the_generation),
	};

	/* The stdio tests swap a pipe in as fd 0 and back: fd 0 must be open to start with. */
	if (fcntl(STDIN_FILENO, F_GETFD) < 0 && open("/dev/null", O_RDONLY) != STDIN_FILENO)
		return 1;
	return RUN_ON_BOTH_RINGS(tests);
}
