/* libFuzzer target for the virtio console with MULTIPORT (virtio/console.c) as a guest drives it:
 * the control messages it transmits (DEVICE_READY, PORT_READY, PORT_OPEN, events it should not
 * send, port ids out of range, short messages), the control receive buffers it posts, each port's
 * receive and transmit chains, and when it kicks, resets or stops a queue; and as the host side
 * drives it: a client that connects to a socket port, sends, reads and hangs up. Input:
 *
 *   0      ports: 2 + value % 3
 *   1      port i's host side in bits 2i-2i+1: 0 none, 1 a file, 2 a unix socket, 3 a file
 *   2      bit 0 a legacy driver (no FEATURES_OK: the device takes feature word 0 at DRIVER_OK)
 *   3      unused
 *   4-11   feature words 0 and 1 as BEGIN writes them (le32 each, unfiltered)
 *   12-13  L, le16: bytes of operations
 *   14-15  unused
 *   16-    L bytes of operations, then guest RAM at address 0 (a heap buffer of exactly its size)
 *
 * An operation is one byte, the operation in its low nibble and an argument `a` in its high one
 * (a queue or port index, a count), then its own bytes, cut short where the input ends:
 *
 *   0 KICK      virtio_process(a): the doorbell served at once, as the I/O thread would
 *   1 RUN       event_loop_run_once(loop, 0) a + 1 times: the host sides' events
 *   2 IDLE      run the loop until nothing is ready (it must get there)
 *   3 RESET     status 0
 *   4 STOP      virtio_queue_stop(a), as virtio-mmio's QueueReady 0
 *   5 ENABLE    size, desc, avail, used (le16 each): queue a set up there and enabled; ignored
 *               while it is enabled, as the transports ignore such writes
 *   6 BEGIN     ACKNOWLEDGE | DRIVER, the header's feature words, FEATURES_OK (not legacy)
 *   7 GO        DRIVER_OK
 *   8 STATUS    one byte, written to the status as it is
 *   9 POKE      addr (le16), n (one byte), n bytes: the driver writes its memory
 *   10 FEATURES le32 written to the driver's feature word a (0 or 1: what the transports pass)
 *   11 CONNECT  a client connects to socket port a
 *   12 SEND     n (one byte), n bytes: port a's client writes them
 *   13 RECV     port a's client reads what there is
 *   14 HANGUP   port a's client closes
 *   15          nothing
 *
 * Checks: nothing crashes or leaks (the sanitizers, and the process's descriptors are the same
 * after destroy); between operations, a stopped device holds no control message and no port
 * ready or open; a file port never holds a transmit chain (its output never waits); the loop goes
 * idle. And a file port receives exactly what the guest transmitted on it: before a kick of its
 * transmit queue the harness replays the handler on a copy of guest RAM (the pops, pushes and
 * re-enabled notifications port_tx makes for an output that never waits), taking the bytes of
 * each chain it gives back; afterwards the device's ring state and guest RAM must equal the
 * replay's, and at the end each file must hold the concatenation. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "event.h"
#include "log.h"
#include "virtio/console.h"
#include "fuzz.h"

#define MAX_PORTS 4
/* A guest makes the device write far more than its RAM with a chain that names one buffer many
 * times. The harness skips a kick that would take a file past this (a bound of the harness, like
 * a time limit, not of the device). */
#define FILE_MAX (256 * 1024)

enum { BE_NONE, BE_FILE, BE_SOCKET };

struct port_state {
	int kind;
	char path[64];
	int file_fd;   /* BE_FILE: ours, to read the file back */
	uint8_t *want; /* BE_FILE: what the guest transmitted */
	size_t want_len;
	int client; /* BE_SOCKET: the host's client, or -1 */
};

static struct virtq_elem *elem; /* large: not on the stack */
static uint8_t *copy;		/* guest RAM for the replay */
static uint8_t *file_buf;	/* a file read back */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_set_level(LOG_ERROR);
	elem = malloc(sizeof(*elem));
	file_buf = malloc(FILE_MAX + 1);
	check(elem && file_buf);
	return 0;
}

static void *rebase(void *p, uint8_t *from, uint8_t *to)
{
	return p ? to + ((uint8_t *)p - from) : NULL;
}

/* port_tx for an output that never waits, on a copy of the queue and of guest RAM: the chains
 * it gives back, their readable bytes appended to ps->want. False (nothing appended) when they
 * would take the file past FILE_MAX. */
static bool replay_tx(const struct virtq *vq, uint8_t *ram, size_t ram_size, struct virtq *sh,
		      struct port_state *ps)
{
	struct guest_mem m = {.nr = 1, .ram_size = ram_size};
	size_t len = ps->want_len;

	memcpy(copy, ram, ram_size);
	m.r[0] = (struct gmem_region){.gpa = 0, .size = ram_size, .host = copy};
	*sh = *vq;
	sh->mem = &m;
	sh->desc = rebase(vq->desc, ram, copy);
	sh->avail = rebase(vq->avail, ram, copy);
	sh->used = rebase(vq->used, ram, copy);
	/* Each pass pops a chain or ends; a handler that never returned would be a hang of the
	 * I/O thread. */
	for (unsigned i = 0;; i++) {
		int ret;

		check(i < 1u << 20);
		ret = virtq_pop(sh, elem);
		if (ret < 0)
			break;
		if (ret == 0) {
			if (virtq_enable_notify(sh, true))
				continue;
			break;
		}
		if (elem->in_num)
			break; /* a writable buffer: the device fails, writing nothing */
		for (unsigned k = 0; k < elem->out_num; k++) {
			size_t n = elem->iov[k].iov_len;

			if (n > FILE_MAX - len)
				return false;
			memcpy(ps->want + len, elem->iov[k].iov_base, n);
			len += n;
		}
		virtq_push(sh, elem, 0);
	}
	sh->mem = NULL;
	ps->want_len = len;
	return true;
}

/* The port whose transmit queue q is, when a kick of q would reach port_tx (console_queue_notify
 * and virtio_process's conditions), or NULL. */
static struct console_port *tx_port(struct console_dev *c, unsigned q)
{
	struct virtio_dev *d = &c->vdev;
	bool multiport = d->driver_features & (1ULL << VIRTIO_CONSOLE_F_MULTIPORT);
	unsigned id = q < 2 ? 0 : (q - 2) / 2;

	if (q >= d->nr_queues || !virtio_live(d) || !d->queues[q].vq.enabled ||
	    d->queues[q].vq.broken || !(q & 1) || q == 3 || id >= c->nr_ports || (id && !multiport))
		return NULL;
	return &c->ports[id];
}

static void op_kick(struct console_dev *c, struct port_state *ps, unsigned q, uint8_t *ram,
		    size_t ram_size)
{
	struct console_port *p = tx_port(c, q);
	struct virtq sh, *vq;

	if (!p || ps[p->id].kind != BE_FILE) {
		virtio_process(&c->vdev, q);
		return;
	}
	vq = &c->vdev.queues[q].vq;
	if (!replay_tx(vq, ram, ram_size, &sh, &ps[p->id]))
		return;
	virtio_process(&c->vdev, q);
	check(vq->last_avail == sh.last_avail && vq->used_idx == sh.used_idx);
	check(vq->avail_wrap == sh.avail_wrap && vq->used_wrap == sh.used_wrap);
	check(vq->broken == sh.broken);
	check(!memcmp(ram, copy, ram_size));
}

static void host_op(struct port_state *ps, unsigned nr_ports, unsigned op, unsigned a,
		    struct fuzz_driver *f)
{
	static uint8_t buf[65536];
	struct port_state *s = a < nr_ports ? &ps[a] : NULL;
	unsigned n;

	if (op == 12) {
		n = fuzz_take(f, 1);
		for (unsigned i = 0; i < n; i++)
			buf[i] = (uint8_t)fuzz_take(f, 1);
		if (s && s->client >= 0)
			send(s->client, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		return;
	}
	if (!s || s->kind != BE_SOCKET)
		return;
	if (op == 11 && s->client < 0) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};

		strcpy(sa.sun_path, s->path);
		s->client = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		check(s->client >= 0);
		/* A second client waits in the backlog; one more than that is refused. */
		if (connect(s->client, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EAGAIN) {
			close(s->client);
			s->client = -1;
		}
	} else if (op == 13 && s->client >= 0) {
		for (int i = 0; i < 64 && recv(s->client, buf, sizeof(buf), MSG_DONTWAIT) > 0; i++)
			;
	} else if (op == 14 && s->client >= 0) {
		close(s->client);
		s->client = -1;
	}
}

/* The codes, in this file's input format, of the operations fuzz.h does; run_op does the rest
 * (0 here), or nothing. */
static const uint8_t shared_ops[16] = {
	[1] = FUZZ_OP_RUN,   [3] = FUZZ_OP_RESET, [4] = FUZZ_OP_STOP,   [5] = FUZZ_OP_ENABLE,
	[6] = FUZZ_OP_BEGIN, [7] = FUZZ_OP_GO,    [8] = FUZZ_OP_STATUS, [9] = FUZZ_OP_POKE,
	[10] = FUZZ_OP_FEATURES,
};

static void run_op(struct console_dev *c, struct port_state *ps, struct fuzz_driver *f)
{
	uint8_t b = (uint8_t)fuzz_take(f, 1);
	unsigned a = b >> 4, op = b & 15;

	switch (op) {
	case 0:
		op_kick(c, ps, a, f->ram, f->mem.ram_size);
		break;
	case 2:
		fuzz_idle(&f->loop);
		break;
	case 11:
	case 12:
	case 13:
	case 14:
		host_op(ps, c->nr_ports, op, a, f);
		break;
	default:
		fuzz_driver_op(f, shared_ops[op], a);
	}
}

static void check_state(const struct console_dev *c, const struct port_state *ps)
{
	check(c->ctrl_len <= c->ctrl_cap);
	/* Reset dropped the control messages and every port's readiness; nothing brings them back
	 * before the driver starts the device again. */
	if (!c->started)
		check(!c->ctrl_len);
	for (unsigned i = 0; i < c->nr_ports; i++) {
		const struct console_port *p = &c->ports[i];

		if (!c->started)
			check(!p->ready && !p->guest_open);
		if (ps[i].kind == BE_FILE)
			check(!p->tx_held);
		check(!p->registered || p->in_fd >= 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[MAX_PORTS] = {NULL, "p1", "p2", "p3"};
	struct console_port_cfg cfg[MAX_PORTS];
	struct port_state ps[MAX_PORTS];
	struct fuzz_driver f;
	struct console_dev c;
	unsigned nr_ports;

	if (!fuzz_driver_begin(&f, data, size))
		return 0;
	check((copy = malloc(f.mem.ram_size)) != NULL);
	nr_ports = 2 + data[0] % 3;
	for (unsigned i = 0; i < nr_ports; i++) {
		static const int kinds[4] = {BE_NONE, BE_FILE, BE_SOCKET, BE_FILE};
		struct port_state *s = &ps[i];

		*s = (struct port_state){
		    .kind = kinds[(data[1] >> (2 * i)) & 3], .file_fd = -1, .client = -1};
		snprintf(s->path, sizeof(s->path), "/tmp/vmm-fuzz-console-%d-%u%s", (int)getpid(),
			 i, s->kind == BE_SOCKET ? ".sock" : "");
		cfg[i] = (struct console_port_cfg){
		    .name = names[i],
		    .kind = s->kind == BE_FILE	   ? CONSOLE_FILE
			    : s->kind == BE_SOCKET ? CONSOLE_SOCKET
						   : CONSOLE_NONE,
		    .path = s->kind == BE_NONE ? NULL : s->path,
		};
		if (s->kind == BE_FILE)
			check((s->want = malloc(FILE_MAX)) != NULL);
	}
	check(console_init(&c, "console0", cfg, nr_ports, &f.mem, &f.loop, NULL, NULL) == 0);
	fuzz_driver_attach(&f, &c.vdev, data[2] & 1);
	/* The files were made (truncated) by init: keep a way to read them back, and no name. */
	for (unsigned i = 0; i < nr_ports; i++) {
		if (ps[i].kind != BE_FILE)
			continue;
		check((ps[i].file_fd = open(ps[i].path, O_RDONLY | O_CLOEXEC)) >= 0);
		unlink(ps[i].path);
	}

	while (fuzz_driver_next(&f)) {
		run_op(&c, ps, &f);
		check_state(&c, ps);
	}
	for (unsigned i = 0; i < nr_ports; i++) {
		if (ps[i].client >= 0)
			close(ps[i].client);
	}
	fuzz_idle(&f.loop);
	console_destroy(&c);

	for (unsigned i = 0; i < nr_ports; i++) {
		struct port_state *s = &ps[i];

		if (s->kind == BE_SOCKET) {
			struct stat st;

			check(stat(s->path, &st) < 0 && errno == ENOENT); /* destroy removed it */
		}
		if (s->kind != BE_FILE)
			continue;
		check(pread(s->file_fd, file_buf, FILE_MAX + 1, 0) == (ssize_t)s->want_len);
		check(!memcmp(file_buf, s->want, s->want_len));
		close(s->file_fd);
		free(s->want);
	}
	free(copy);
	fuzz_driver_end(&f);
	return 0;
}
