#include "virtio/console.h"
#include "event.h"
#include "log.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

/* Chains one input event moves at most, so that one busy port leaves room for the others. */
#define CONSOLE_RX_BATCH 16

static void port_event(void *opaque, uint32_t events);
static void port_listen_event(void *opaque, uint32_t events);
static void port_tx(struct console_port *p);

static bool console_has(const struct console_dev *c, unsigned bit)
{
	return c->vdev.driver_features & (1ULL << bit);
}

/* Queue layout (5.3.2): port 0 is 0/1, control 2/3, port n >= 1 is 2n + 2 / 2n + 3. */
static unsigned port_rxq(const struct console_port *p)
{
	return p->id ? 2 * p->id + 2 : 0;
}

static struct virtq *port_vq(struct console_port *p, bool tx)
{
	return &p->c->vdev.queues[port_rxq(p) + tx].vq;
}

/* Whether input may go to the guest now: the device runs, the port's receiveq is set up and, with
 * multiport, the guest has the port open (Linux throws away data that reaches a closed port). */
static bool port_rx_open(struct console_port *p)
{
	struct console_dev *c = p->c;

	if (!c->started || !virtio_live(&c->vdev) || !port_vq(p, false)->enabled)
		return false;
	if (!console_has(c, VIRTIO_CONSOLE_F_MULTIPORT))
		return p->id == 0;
	return p->guest_open;
}

/* Arms the port's host fd in the loop for what the port can do now: EPOLLIN while input can go
 * somewhere, EPOLLOUT while output waits for a slow socket client.
 *
 * Every watch is one-shot and re-armed here after each event. Pausing must not mean removing
 * (the loop keeps removed watches until it is destroyed, and pauses come with every burst of
 * input) nor just masking (epoll reports a hang-up even for an empty mask, so a peer that closed
 * with unread input would make the loop spin): a disarmed one-shot watch stays quiet. */
static void port_update_watch(struct console_port *p)
{
	struct event_loop *loop = p->c->vdev.loop;
	uint32_t want = 0;
	int ret;

	if (p->in_fd < 0 || !loop)
		return;
	if (!p->input_eof && !p->rx_waiting && port_rx_open(p))
		want |= EPOLLIN;
	if (p->tx_held && p->out_fd >= 0)
		want |= EPOLLOUT;
	if (p->registered && want == p->armed)
		return;
	if (!p->registered)
		ret = event_add(loop, p->in_fd, want | EPOLLONESHOT, port_event, p);
	else
		ret = event_mod(loop, p->in_fd, want | EPOLLONESHOT, port_event, p);
	if (ret) {
		log_warn("%s: port %u: %s", p->c->vdev.name, p->id, strerror(-ret));
		return;
	}
	p->registered = true;
	p->armed = want;
}

static void port_unwatch(struct console_port *p)
{
	if (p->registered)
		event_del(p->c->vdev.loop, p->in_fd);
	p->registered = false;
	p->armed = 0;
}

/* The listener is armed while no client is connected: one client at a time, the next one waits
 * in the backlog. One-shot, for the same reason as above. */
static void port_arm_listen(struct console_port *p)
{
	struct event_loop *loop = p->c->vdev.loop;
	uint32_t ev = EPOLLIN | EPOLLONESHOT;
	int ret;

	if (p->listen_fd < 0 || !loop)
		return;
	if (p->listen_registered)
		ret = event_mod(loop, p->listen_fd, ev, port_listen_event, p);
	else
		ret = event_add(loop, p->listen_fd, ev, port_listen_event, p);
	if (ret)
		log_warn("%s: %s: %s", p->c->vdev.name, p->path, strerror(-ret));
	else
		p->listen_registered = true;
}

/* ---- control queues (multiport) ---- */

static size_t ctrl_msg_len(struct console_dev *c, const struct console_ctrl_msg *m)
{
	if (m->event == VIRTIO_CONSOLE_PORT_NAME)
		return sizeof(struct virtio_console_control) + strlen(c->ports[m->id].name);
	if (m->event == VIRTIO_CONSOLE_RESIZE)
		return sizeof(struct virtio_console_control) + 4;
	return sizeof(struct virtio_console_control);
}

/* Hands queued control messages to the driver while it has control receive buffers. */
static void ctrl_flush(struct console_dev *c)
{
	struct virtio_dev *d = &c->vdev;
	struct virtq *vq;
	struct virtq_elem *e = c->ctrl_rx_elem;
	unsigned done = 0;

	if (!console_has(c, VIRTIO_CONSOLE_F_MULTIPORT) || !c->started || !virtio_live(d) ||
	    !d->queues[2].vq.enabled)
		return;
	vq = &d->queues[2].vq;
	while (done < c->ctrl_len) {
		const struct console_ctrl_msg *m = &c->ctrl[done];
		struct virtio_console_control hdr = {
			.id = htole32(m->id), .event = htole16(m->event), .value = htole16(m->value)
		};
		size_t len = ctrl_msg_len(c, m);
		int ret = virtq_pop(vq, e);

		if (ret < 0) {
			virtio_fail(d, "control receiveq: malformed ring: %s", strerror(-ret));
			return;
		}
		if (ret == 0) {
			if (virtq_enable_notify(vq, true))
				continue;
			break; /* the rest goes when the driver adds buffers */
		}
		/* Linux posts page-sized buffers; a buffer that cannot hold a whole message (a
		 * name is at most CONSOLE_MAX_NAME bytes) is the driver's error. */
		if (e->out_num) {
			virtio_fail(d, "control receiveq: chain with %u readable buffers", e->out_num);
			return;
		}
		if (e->in_len < len) {
			virtio_fail(d, "control receiveq: %llu-byte buffer for a %zu-byte message",
				    (unsigned long long)e->in_len, len);
			return;
		}
		virtq_elem_write(e, 0, &hdr, sizeof(hdr));
		if (m->event == VIRTIO_CONSOLE_PORT_NAME) {
			const char *name = c->ports[m->id].name;
			virtq_elem_write(e, sizeof(hdr), name, strlen(name));
		} else if (m->event == VIRTIO_CONSOLE_RESIZE) {
			/* cols then rows, as the spec has it; Linux read them the other way round
			 * until 5326ab737a47. */
			uint16_t size[2] = { c->config.cols, c->config.rows };
			virtq_elem_write(e, sizeof(hdr), size, sizeof(size));
		}
		virtq_push(vq, e, (uint32_t)len);
		done++;
	}
	if (done) {
		memmove(c->ctrl, c->ctrl + done, (c->ctrl_len - done) * sizeof(*c->ctrl));
		c->ctrl_len -= done;
		virtio_notify(d, 2);
	}
}

/* Queues a control message for the driver. PORT_OPEN and RESIZE replace a queued message of the
 * same kind for the same port, so host-side churn (a client reconnecting in a loop) cannot grow the
 * queue; the rest is bounded by what the driver asks for, and beyond the capacity dropped. */
static void ctrl_send(struct console_dev *c, uint32_t id, uint16_t event, uint16_t value)
{
	if (event == VIRTIO_CONSOLE_PORT_OPEN || event == VIRTIO_CONSOLE_RESIZE) {
		for (unsigned i = 0; i < c->ctrl_len; i++) {
			if (c->ctrl[i].id == id && c->ctrl[i].event == event) {
				c->ctrl[i].value = value;
				ctrl_flush(c);
				return;
			}
		}
	}
	if (c->ctrl_len == c->ctrl_cap) {
		if (!c->ctrl_warned)
			log_warn("%s: the driver takes no control messages; dropping some",
				 c->vdev.name);
		c->ctrl_warned = true;
		return;
	}
	c->ctrl[c->ctrl_len++] = (struct console_ctrl_msg){ id, event, value };
	ctrl_flush(c);
}

static bool port_host_connected(const struct console_port *p)
{
	return p->kind == CONSOLE_SOCKET ? p->out_fd >= 0 : p->kind != CONSOLE_NONE || !p->id;
}

/* Tells the driver about the port's host side after it said the port is ready. */
static void port_announce(struct console_port *p)
{
	struct console_dev *c = p->c;

	if (p->id == 0) {
		ctrl_send(c, 0, VIRTIO_CONSOLE_CONSOLE_PORT, 1);
		if (console_has(c, VIRTIO_CONSOLE_F_SIZE))
			ctrl_send(c, 0, VIRTIO_CONSOLE_RESIZE, 0);
	} else {
		ctrl_send(c, p->id, VIRTIO_CONSOLE_PORT_NAME, 0);
	}
	if (port_host_connected(p))
		ctrl_send(c, p->id, VIRTIO_CONSOLE_PORT_OPEN, 1);
}

static void port_guest_opened(struct console_port *p)
{
	if (p->kind == CONSOLE_STDIO)
		pthread_cond_broadcast(&p->c->rx_cond);
	port_update_watch(p);
}

/* Driver-to-device control messages. The header and the port id come from the guest: a short
 * message or an id beyond max_nr_ports is a driver error. */
static void ctrl_handle(struct console_dev *c)
{
	struct virtio_dev *d = &c->vdev;
	struct virtq *vq = &d->queues[3].vq;
	struct virtq_elem *e = c->ctrl_tx_elem;
	bool pushed = false;

	while (virtio_live(d)) { /* a reply may have failed the device */
		struct virtio_console_control hdr;
		struct console_port *p = NULL;
		int ret = virtq_pop(vq, e);

		if (ret < 0) {
			virtio_fail(d, "control transmitq: malformed ring: %s", strerror(-ret));
			return;
		}
		if (ret == 0) {
			if (virtq_enable_notify(vq, true))
				continue;
			break;
		}
		if (virtq_elem_read(e, 0, &hdr, sizeof(hdr)) < sizeof(hdr)) {
			virtio_fail(d, "control message of %llu bytes",
				    (unsigned long long)e->out_len);
			return;
		}
		uint32_t id = le32toh(hdr.id);
		uint16_t event = le16toh(hdr.event), value = le16toh(hdr.value);
		if (event == VIRTIO_CONSOLE_PORT_READY || event == VIRTIO_CONSOLE_PORT_OPEN) {
			if (id >= c->nr_ports) {
				virtio_fail(d, "control message %u for port %u of %u", event, id,
					    c->nr_ports);
				return;
			}
			p = &c->ports[id];
		}
		/* Messages may produce replies into the control receiveq: give this buffer back
		 * first, the order the driver would see from a real device. */
		virtq_push(vq, e, 0);
		pushed = true;
		switch (event) {
		case VIRTIO_CONSOLE_DEVICE_READY:
			if (!value) {
				virtio_log(d, LOG_WARN, "%s: the driver failed to set up", d->name);
				break;
			}
			/* Each port is added once per driver (5.3.6.2: not again for a port that
			 * exists): a second DEVICE_READY adds nothing. */
			if (c->ports_added)
				break;
			c->ports_added = true;
			for (unsigned i = 0; i < c->nr_ports; i++)
				ctrl_send(c, i, VIRTIO_CONSOLE_DEVICE_ADD, 0);
			break;
		case VIRTIO_CONSOLE_PORT_READY:
			if (!value) {
				virtio_log(d, LOG_WARN, "%s: the driver failed to add port %u",
					   d->name, id);
				break;
			}
			p->ready = true;
			port_announce(p);
			break;
		case VIRTIO_CONSOLE_PORT_OPEN:
			p->guest_open = value != 0;
			if (p->guest_open)
				port_guest_opened(p);
			else
				port_update_watch(p);
			break;
		default:
			/* Device-to-driver events sent back, or events from a newer spec: no harm
			 * done, nothing to do. */
			log_debug("%s: control event %u from the driver ignored", d->name, event);
			break;
		}
	}
	if (pushed)
		virtio_notify(d, 3);
}

/* ---- host side ---- */

/* Ends a socket client: output is discarded and the listener takes the next client. */
static void port_disconnect(struct console_port *p)
{
	struct console_dev *c = p->c;

	if (p->kind != CONSOLE_SOCKET || p->in_fd < 0)
		return;
	port_unwatch(p);
	close(p->in_fd);
	p->in_fd = p->out_fd = -1;
	p->input_eof = false;
	log_info("%s: port %s: client left", c->vdev.name, p->name ? p->name : "0");
	if (p->ready && console_has(c, VIRTIO_CONSOLE_F_MULTIPORT))
		ctrl_send(c, p->id, VIRTIO_CONSOLE_PORT_OPEN, 0);
	port_arm_listen(p);
}

static void port_input_ended(struct console_port *p, int err)
{
	if (p->kind == CONSOLE_SOCKET) {
		port_disconnect(p);
		return;
	}
	if (err)
		log_warn("%s: port %u input: %s", p->c->vdev.name, p->id, strerror(err));
	p->input_eof = true;
	port_update_watch(p);
}

/* A receive chain for the port: the one held from before, or the next one. 1 when there is one,
 * 0 when the guest has none posted (rx_waiting is then set until its next kick), or -1 when the
 * device failed. */
static int port_rx_get(struct console_port *p)
{
	struct virtq *vq = port_vq(p, false);
	int ret;

	if (p->rx_held)
		return 1;
	for (;;) {
		ret = virtq_pop(vq, p->rx_elem);
		if (ret > 0)
			break;
		if (ret < 0) {
			virtio_fail(&p->c->vdev, "port %u receiveq: malformed ring: %s", p->id,
				    strerror(-ret));
			return -1;
		}
		if (!virtq_enable_notify(vq, true)) {
			p->rx_waiting = true;
			return 0;
		}
	}
	/* Guest-controlled shape: a receiveq takes writable buffers only (5.3.6.1). */
	if (p->rx_elem->out_num || !p->rx_elem->in_num) {
		virtio_fail(&p->c->vdev, "port %u receiveq: chain with %u readable buffers", p->id,
			    p->rx_elem->out_num);
		return -1;
	}
	p->rx_held = true;
	return 1;
}

static void port_rx_done(struct console_port *p, size_t len)
{
	virtq_push(port_vq(p, false), p->rx_elem, (uint32_t)len);
	p->rx_held = false;
	virtio_notify(&p->c->vdev, port_rxq(p));
}

/* Moves input from the port's fd straight into receive chains. A chain is taken before reading so
 * that nothing read is ever without a place to go; when there is none, reading stops until the
 * guest kicks the receiveq (the fd's unread bytes wait in the kernel, the peer feels it). */
static void port_rx(struct console_port *p)
{
	for (unsigned n = 0; n < CONSOLE_RX_BATCH; n++) {
		struct virtq_elem *e = p->rx_elem;
		ssize_t len;

		if (p->in_fd < 0 || p->input_eof || !port_rx_open(p) || port_rx_get(p) <= 0)
			break;
		len = readv(p->in_fd, e->iov, e->in_num < IOV_MAX ? (int)e->in_num : IOV_MAX);
		if (len < 0 && errno == EINTR)
			continue;
		if (len < 0 && errno == EAGAIN)
			break;
		if (len <= 0) {
			port_input_ended(p, len < 0 ? errno : 0);
			break;
		}
		port_rx_done(p, (size_t)len);
	}
	port_update_watch(p);
}

/* Writes the held transmit chain from tx_off on. 0 when it is done with (written or discarded),
 * -EAGAIN when the host side cannot take more now (the chain stays held; EPOLLOUT on a socket,
 * or the output queue's room callback, resumes it).
 *
 * Per host side: the I/O thread never waits for a reader. stdio and files go through an output
 * queue (backend/outq.h): a pipe nobody reads fills it, then the chain stays in the guest's ring
 * and the guest's writer blocks. A socket client gets the same backpressure without a queue.
 * Nothing is lost either way. A pty with nobody attached would fill up and never drain, and
 * Linux's console writer spins until the host uses its buffer, so what does not fit in the pty
 * is dropped (as a serial line with no one listening). */
static int port_write(struct console_port *p)
{
	const struct virtq_elem *e = p->tx_elem;
	size_t pos = 0;

	for (unsigned i = 0; i < e->out_num && p->out_fd >= 0; i++) {
		const uint8_t *base = e->iov[i].iov_base;
		size_t len = e->iov[i].iov_len;

		if (pos + len <= p->tx_off) {
			pos += len;
			continue;
		}
		size_t skip = p->tx_off - pos;
		int err = 0;
		if (p->kind == CONSOLE_SOCKET || p->kind == CONSOLE_PTY) {
			while (skip < len) {
				ssize_t n = p->kind == CONSOLE_SOCKET
						    ? send(p->out_fd, base + skip, len - skip,
							   MSG_NOSIGNAL | MSG_DONTWAIT)
						    : write(p->out_fd, base + skip, len - skip);
				if (n < 0 && errno == EINTR)
					continue;
				if (n < 0 && errno == EAGAIN && p->kind == CONSOLE_SOCKET)
					return -EAGAIN;
				if (n < 0 && errno == EAGAIN) {
					if (!p->out_warned)
						log_warn("%s: nobody reads the pty: output dropped",
							 p->c->vdev.name);
					p->out_warned = true;
					return 0;
				}
				if (n < 0) {
					err = errno;
					break;
				}
				skip += (size_t)n;
				p->tx_off += (size_t)n;
			}
		} else {
			size_t n = outq_write(&p->out, base + skip, len - skip);

			p->tx_off += n;
			if (n < len - skip)
				return -EAGAIN;
		}
		if (err) {
			if (p->kind == CONSOLE_SOCKET) {
				port_disconnect(p);
			} else {
				if (!p->out_warned)
					log_warn("%s: port %u output: %s", p->c->vdev.name, p->id,
						 strerror(err));
				p->out_warned = true;
			}
			return 0;
		}
		pos += len;
	}
	return 0;
}

static void port_tx(struct console_port *p)
{
	struct virtio_dev *d = &p->c->vdev;
	struct virtq *vq = port_vq(p, true);
	struct virtq_elem *e = p->tx_elem;
	bool pushed = false;

	for (;;) {
		if (!p->tx_held) {
			int ret = virtq_pop(vq, e);

			if (ret < 0) {
				virtio_fail(d, "port %u transmitq: malformed ring: %s", p->id,
					    strerror(-ret));
				return;
			}
			if (ret == 0) {
				if (virtq_enable_notify(vq, true))
					continue;
				break;
			}
			/* Guest-controlled shape: a transmitq takes readable buffers only. */
			if (e->in_num) {
				virtio_fail(d, "port %u transmitq: chain with %u writable buffers",
					    p->id, e->in_num);
				return;
			}
			p->tx_held = true;
			p->tx_off = 0;
		}
		if (port_write(p) == -EAGAIN)
			break;
		virtq_push(vq, e, 0);
		p->tx_held = false;
		pushed = true;
	}
	if (pushed)
		virtio_notify(d, port_rxq(p) + 1);
	port_update_watch(p);
}

/* The loop's callback for a port's fd (pty master, socket client). */
static void port_event(void *opaque, uint32_t events)
{
	struct console_port *p = opaque;
	struct virtio_dev *d = &p->c->vdev;

	pthread_mutex_lock(&d->lock);
	p->armed = 0; /* one-shot: the event disarmed the watch */
	if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && p->tx_held && virtio_live(d))
		port_tx(p);
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		port_rx(p);
	/* A client that left while its input could not go anywhere: if it left nothing unread,
	 * let the next one in now rather than when the guest next reads the port. */
	if ((events & (EPOLLHUP | EPOLLERR)) && p->kind == CONSOLE_SOCKET && p->in_fd >= 0) {
		int unread = 0;

		if (ioctl(p->in_fd, FIONREAD, &unread) < 0 || unread == 0)
			port_disconnect(p);
	}
	if (p->tx_held && p->out_fd < 0 && virtio_live(d))
		port_tx(p); /* the client left: finish the chain it was taking */
	port_update_watch(p);
	pthread_mutex_unlock(&d->lock);
}

/* A client connects to a socket port (the listener is armed only while there is none). */
static void port_listen_event(void *opaque, uint32_t events)
{
	struct console_port *p = opaque;
	struct console_dev *c = p->c;
	int fd;

	pthread_mutex_lock(&c->vdev.lock);
	if (p->in_fd >= 0)
		goto out;
	fd = accept4(p->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			log_warn("%s: %s: accept: %s", c->vdev.name, p->path, strerror(errno));
		port_arm_listen(p);
		goto out;
	}
	p->in_fd = p->out_fd = fd;
	p->input_eof = false;
	p->out_warned = false;
	log_info("%s: port %s: client connected", c->vdev.name, p->name ? p->name : "0");
	if (p->ready && c->started && virtio_live(&c->vdev) &&
	    console_has(c, VIRTIO_CONSOLE_F_MULTIPORT))
		ctrl_send(c, p->id, VIRTIO_CONSOLE_PORT_OPEN, 1);
	port_update_watch(p);
out:
	pthread_mutex_unlock(&c->vdev.lock);
}

/* term's thread delivers typed bytes for port 0 and blocks here, on rx_cond, while the guest has
 * no receive buffer: input waits in the terminal instead of being dropped. */
static int console_stdio_input(void *opaque, const uint8_t *buf, size_t len)
{
	struct console_dev *c = opaque;
	struct console_port *p = &c->ports[0];
	int ret;

	pthread_mutex_lock(&c->vdev.lock);
	while (len && !c->stopping) {
		if (!port_rx_open(p) || port_rx_get(p) <= 0) {
			pthread_cond_wait(&c->rx_cond, &c->vdev.lock);
			continue;
		}
		size_t n = virtq_elem_write(p->rx_elem, 0, buf, len);
		port_rx_done(p, n);
		buf += n;
		len -= n;
	}
	ret = c->stopping ? -1 : 0;
	pthread_mutex_unlock(&c->vdev.lock);
	return ret;
}

/* term has one opaque pointer for both callbacks: input needs the device, quit the caller's. */
static void console_quit(void *opaque)
{
	struct console_dev *c = opaque;

	if (c->quit)
		c->quit(c->quit_opaque);
}

/* ---- device ops ---- */

static void console_queue_notify(struct virtio_dev *d, unsigned q)
{
	struct console_dev *c = d->priv;
	struct console_port *p;

	if (q == 2 || q == 3) {
		if (!console_has(c, VIRTIO_CONSOLE_F_MULTIPORT))
			return;
		if (q == 2)
			ctrl_flush(c);
		else
			ctrl_handle(c);
		return;
	}
	unsigned id = q < 2 ? 0 : (q - 2) / 2;
	if (id >= c->nr_ports || (id && !console_has(c, VIRTIO_CONSOLE_F_MULTIPORT)))
		return;
	p = &c->ports[id];
	if (q & 1) {
		port_tx(p);
		return;
	}
	/* New receive buffers: input may flow again. */
	p->rx_waiting = false;
	if (p->kind == CONSOLE_STDIO)
		pthread_cond_broadcast(&c->rx_cond);
	port_update_watch(p);
}

static int console_start_op(struct virtio_dev *d)
{
	struct console_dev *c = d->priv;

	c->started = true;
	for (unsigned i = 0; i < c->nr_ports; i++) {
		c->ports[i].rx_waiting = false;
		port_update_watch(&c->ports[i]);
	}
	if (c->has_term)
		pthread_cond_broadcast(&c->rx_cond);
	/* Without multiport, Linux reads cols and rows only on a configuration change: make one, so
	 * hvc0 starts with the terminal's size. (With multiport a RESIZE follows PORT_READY.) */
	if (console_has(c, VIRTIO_CONSOLE_F_SIZE) && !console_has(c, VIRTIO_CONSOLE_F_MULTIPORT))
		virtio_config_changed(d);
	return 0;
}

/* Drops every chain and the queued control messages; host fds and clients stay, but no input is
 * read until the driver starts the device again (and, with multiport, opens the port). */
static void console_reset(struct virtio_dev *d)
{
	struct console_dev *c = d->priv;

	c->started = false;
	c->ports_added = false;
	c->ctrl_len = 0;
	for (unsigned i = 0; i < c->nr_ports; i++) {
		struct console_port *p = &c->ports[i];

		p->rx_held = p->tx_held = false;
		p->rx_waiting = false;
		p->ready = p->guest_open = false;
		port_update_watch(p);
	}
}

/* The chain a port held from a stopped queue is dropped; output already written stays written. */
static void console_queue_stop(struct virtio_dev *d, unsigned q)
{
	struct console_dev *c = d->priv;

	for (unsigned i = 0; i < c->nr_ports; i++) {
		struct console_port *p = &c->ports[i];

		if (q == port_rxq(p))
			p->rx_held = p->rx_waiting = false;
		else if (q == port_rxq(p) + 1)
			p->tx_held = false;
		else
			continue;
		port_update_watch(p);
	}
}

/* EMERG_WRITE (5.3.4): a byte for port 0's host side, written at once by the vCPU that wrote
 * emerg_wr, whatever state the device is in (it is for output before the queues exist and after
 * they broke). It never waits: what the host side cannot take now (a pty nobody reads, a socket
 * client that does not read, a full output queue) is lost. It may land inside the output of a
 * transmit chain that waits for a slow reader. Lock held. */
static void emerg_write(struct console_port *p, uint8_t ch)
{
	ssize_t n = 1;

	if (p->out_fd < 0)
		return;
	if (p->kind == CONSOLE_STDIO || p->kind == CONSOLE_FILE)
		n = outq_write(&p->out, &ch, 1) == 1 ? 1 : 0;
	else /* a pty's master or a socket client: both non-blocking; SIGPIPE is ignored */
		while ((n = write(p->out_fd, &ch, 1)) < 0 && errno == EINTR)
			;
	if (n != 1 && !p->out_warned) {
		log_warn("%s: port 0 cannot take emergency output now: dropped", p->c->vdev.name);
		p->out_warned = true;
	}
}

/* Only emerg_wr may be written (and reads back 0): its lower byte is output. Every other byte
 * written is undone. */
static void console_config_write(struct virtio_dev *d, uint32_t off, uint32_t len)
{
	struct console_dev *c = d->priv;
	const uint32_t at = offsetof(struct virtio_console_config, emerg_wr);
	uint8_t ch = ((uint8_t *)&c->config)[at];
	bool emerg = off <= at && at - off < len;

	c->config = c->shadow;
	if (emerg)
		emerg_write(&c->ports[0], ch);
}

static const struct virtio_dev_ops console_ops = {
	.name = "console",
	.device_id = VIRTIO_ID_CONSOLE,
	.pci_class = 0x078000, /* simple communication controller, other */
	.start = console_start_op,
	.queue_notify = console_queue_notify,
	.config_write = console_config_write,
	.reset = console_reset,
	.queue_stop = console_queue_stop,
};

/* ---- setup ---- */

static const char *port_opt(const struct console_port *p)
{
	return p->name ? p->name : "port 0";
}

static int port_open_pty(struct console_dev *c, struct console_port *p)
{
	char slave[64];
	int ret = term_open_pty(&p->in_fd, &p->pty_slave, slave, sizeof(slave));

	if (ret)
		return ret;
	p->out_fd = p->in_fd;
	if (p->id == 0)
		log_notice("console: %s", slave);
	else
		log_notice("console port %s: %s", p->name, slave);
	return 0;
}

/* A stale socket file (nobody listening: a previous run died) is replaced; a live one is not. */
static int port_open_socket(struct console_port *p)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int ret;

	if (strlen(p->path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, p->path);
	p->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->listen_fd < 0)
		return -errno;
	ret = bind(p->listen_fd, (struct sockaddr *)&sa, sizeof(sa));
	if (ret < 0 && errno == EADDRINUSE) {
		struct stat st;
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (probe >= 0 && stat(p->path, &st) == 0 && S_ISSOCK(st.st_mode) &&
		    connect(probe, (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
		    errno == ECONNREFUSED) {
			unlink(p->path);
			ret = bind(p->listen_fd, (struct sockaddr *)&sa, sizeof(sa));
		} else {
			errno = EADDRINUSE;
		}
		if (probe >= 0)
			close(probe);
	}
	if (ret < 0 || listen(p->listen_fd, 1) < 0) {
		ret = -errno;
		close(p->listen_fd);
		p->listen_fd = -1;
		return ret;
	}
	return 0;
}

/* The output queue has room again: the chain it was full for goes on. */
static void port_out_room(void *opaque)
{
	struct console_port *p = opaque;
	struct virtio_dev *d = &p->c->vdev;

	pthread_mutex_lock(&d->lock);
	if (p->tx_held && virtio_live(d))
		port_tx(p);
	pthread_mutex_unlock(&d->lock);
}

static int port_open(struct console_dev *c, struct console_port *p)
{
	switch (p->kind) {
	case CONSOLE_NONE:
		return 0;
	case CONSOLE_STDIO:
		p->out_fd = STDOUT_FILENO;
		return 0;
	case CONSOLE_PTY:
		return port_open_pty(c, p);
	case CONSOLE_FILE:
		/* Truncated, as --serial file= does: the log of this run. */
		p->out_fd = open(p->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		return p->out_fd < 0 ? -errno : 0;
	case CONSOLE_SOCKET:
		return port_open_socket(p);
	}
	return -EINVAL;
}

static int port_check_cfg(const struct console_port_cfg *ports, unsigned i)
{
	const struct console_port_cfg *pc = &ports[i];

	if (!i && pc->name) {
		log_error("--console: port 0 is the console and has no name");
		return -EINVAL;
	}
	if (i && (!pc->name || !pc->name[0] || strlen(pc->name) > CONSOLE_MAX_NAME ||
		  strchr(pc->name, '/'))) {
		log_error("--console name=%s: a port name is 1 to %d bytes without '/'",
			  pc->name ? pc->name : "", CONSOLE_MAX_NAME);
		return -EINVAL;
	}
	for (unsigned j = 1; j < i; j++) {
		if (!strcmp(ports[j].name, pc->name)) {
			log_error("--console name=%s: two ports with that name", pc->name);
			return -EINVAL;
		}
	}
	if (i && pc->kind == CONSOLE_STDIO) {
		log_error("--console name=%s: only port 0 can use the terminal", pc->name);
		return -EINVAL;
	}
	if ((pc->kind == CONSOLE_FILE || pc->kind == CONSOLE_SOCKET) &&
	    (!pc->path || !pc->path[0])) {
		log_error("--console %s%s: %s= needs a path", pc->name ? "name=" : "",
			  pc->name ? pc->name : "", pc->kind == CONSOLE_FILE ? "file" : "socket");
		return -EINVAL;
	}
	return 0;
}

/* F_SIZE: the terminal port 0 shows on. A fresh pty reports 0x0, which is no size for a console:
 * it starts as 80x24 until whoever attaches sets its own. */
static int console_winsize_fd(struct console_dev *c)
{
	struct console_port *p = &c->ports[0];

	if (p->kind == CONSOLE_PTY) {
		struct winsize ws;

		if (ioctl(p->in_fd, TIOCGWINSZ, &ws) == 0 && (!ws.ws_col || !ws.ws_row)) {
			ws.ws_col = 80;
			ws.ws_row = 24;
			ioctl(p->in_fd, TIOCSWINSZ, &ws);
		}
		return p->in_fd;
	}
	if (p->kind == CONSOLE_STDIO) {
		if (isatty(STDOUT_FILENO))
			return STDOUT_FILENO;
		if (isatty(STDIN_FILENO))
			return STDIN_FILENO;
	}
	return -1;
}

static void console_read_size(struct console_dev *c)
{
	struct winsize ws;
	uint16_t cols, rows;

	if (c->winsize_fd < 0 || ioctl(c->winsize_fd, TIOCGWINSZ, &ws) < 0)
		return;
	cols = htole16(ws.ws_col);
	rows = htole16(ws.ws_row);
	if (!c->vdev.config) { /* at init, before the area is the device's */
		c->config.cols = cols;
		c->config.rows = rows;
		c->shadow = c->config;
		return;
	}
	/* A change: through the core, which moves the generation. */
	virtio_config_set(&c->vdev, offsetof(struct virtio_console_config, cols), &cols, 2);
	virtio_config_set(&c->vdev, offsetof(struct virtio_console_config, rows), &rows, 2);
	c->shadow = c->config;
}

int console_init(struct console_dev *c, const char *name, const struct console_port_cfg *ports,
		 unsigned nr_ports, const struct guest_mem *mem, struct event_loop *loop,
		 void (*quit)(void *), void *quit_opaque)
{
	/* EMERG_WRITE always: with no host side on port 0 its output is discarded, as hvc0's is. */
	uint64_t features = 1ULL << VIRTIO_CONSOLE_F_EMERG_WRITE;
	int ret;

	memset(c, 0, sizeof(*c));
	c->winsize_fd = -1;
	if (!nr_ports || nr_ports > CONSOLE_MAX_PORTS) {
		log_error("--console: %u ports; a console has 1 to %d", nr_ports,
			  CONSOLE_MAX_PORTS);
		return -EINVAL;
	}
	c->ports = calloc(nr_ports, sizeof(*c->ports));
	c->ctrl_cap = 4 * nr_ports + 8;
	c->ctrl = calloc(c->ctrl_cap, sizeof(*c->ctrl));
	c->ctrl_rx_elem = malloc(sizeof(*c->ctrl_rx_elem));
	c->ctrl_tx_elem = malloc(sizeof(*c->ctrl_tx_elem));
	if (!c->ports || !c->ctrl || !c->ctrl_rx_elem || !c->ctrl_tx_elem) {
		ret = -ENOMEM;
		goto fail;
	}
	c->nr_ports = nr_ports;
	for (unsigned i = 0; i < nr_ports; i++) {
		struct console_port *p = &c->ports[i];

		p->c = c;
		p->id = i;
		p->in_fd = p->out_fd = p->listen_fd = p->pty_slave = -1;
	}
	if (pthread_cond_init(&c->rx_cond, NULL)) {
		ret = -ENOMEM;
		goto fail;
	}
	c->cond_init = true;
	for (unsigned i = 0; i < nr_ports; i++) {
		struct console_port *p = &c->ports[i];

		if ((ret = port_check_cfg(ports, i)))
			goto fail;
		p->kind = ports[i].kind;
		p->name = ports[i].name ? strdup(ports[i].name) : NULL;
		p->path = ports[i].path ? strdup(ports[i].path) : NULL;
		p->rx_elem = malloc(sizeof(*p->rx_elem));
		p->tx_elem = malloc(sizeof(*p->tx_elem));
		if ((ports[i].name && !p->name) || (ports[i].path && !p->path) || !p->rx_elem ||
		    !p->tx_elem) {
			ret = -ENOMEM;
			goto fail;
		}
		if ((ret = port_open(c, p))) {
			if (p->path)
				log_error("%s: %s", ports[i].what ? ports[i].what : p->path,
					  strerror(-ret));
			else
				log_error("--console %s: %s", port_opt(p), strerror(-ret));
			goto fail;
		}
	}
	c->winsize_fd = console_winsize_fd(c);
	if (c->winsize_fd >= 0) {
		features |= 1ULL << VIRTIO_CONSOLE_F_SIZE;
		console_read_size(c);
	}
	if (nr_ports > 1) {
		features |= 1ULL << VIRTIO_CONSOLE_F_MULTIPORT;
		c->config.max_nr_ports = htole32(nr_ports);
	}
	c->shadow = c->config;
	ret = virtio_dev_init(&c->vdev, &console_ops, c, name, mem, loop, features,
			      nr_ports > 1 ? 2 * nr_ports + 2 : 2, CONSOLE_QUEUE_SIZE);
	if (ret) {
		log_error("%s: %s", name, strerror(-ret));
		goto fail;
	}
	c->vdev.config = (uint8_t *)&c->config;
	c->vdev.config_len = sizeof(c->config);
	if (c->ports[0].kind == CONSOLE_STDIO) {
		c->quit = quit;
		c->quit_opaque = quit_opaque;
		ret = term_init(&c->term, STDIN_FILENO, true, console_stdio_input, console_quit, c);
		if (ret) {
			log_error("--console stdio: %s", strerror(-ret));
			goto fail;
		}
		c->has_term = true;
	}
	for (unsigned i = 0; i < nr_ports; i++) {
		struct console_port *p = &c->ports[i];

		/* stdio and files: through an output queue on the device's loop. */
		if ((p->kind == CONSOLE_STDIO || p->kind == CONSOLE_FILE) &&
		    (ret = outq_init(&p->out, p->out_fd, CONSOLE_OUT_QUEUE, c->vdev.name, loop,
				     port_out_room, p))) {
			log_error("--console %s: %s", port_opt(p), strerror(-ret));
			goto fail;
		}
		port_arm_listen(p);
		port_update_watch(p); /* a pty: registered, not armed until start */
	}
	return 0;
fail:
	console_destroy(c);
	return ret;
}

int console_start(struct console_dev *c)
{
	int ret;

	if (!c->has_term)
		return 0;
	ret = term_start(&c->term);
	if (ret)
		log_error("%s: terminal input: %s", c->vdev.name, strerror(-ret));
	return ret;
}

void console_stop(struct console_dev *c)
{
	if (!c->has_term)
		return;
	pthread_mutex_lock(&c->vdev.lock);
	c->stopping = true;
	pthread_cond_broadcast(&c->rx_cond); /* the input thread may wait for the guest */
	pthread_mutex_unlock(&c->vdev.lock);
	term_stop(&c->term);
	c->has_term = false;
}

void console_destroy(struct console_dev *c)
{
	console_stop(c);
	for (unsigned i = 0; c->ports && i < c->nr_ports; i++) {
		struct console_port *p = &c->ports[i];

		port_unwatch(p);
		outq_destroy(&p->out); /* writes what waits, briefly, before the fd goes */
		if (p->listen_registered)
			event_del(c->vdev.loop, p->listen_fd);
		if (p->in_fd >= 0)
			close(p->in_fd);
		if (p->out_fd >= 0 && p->out_fd != p->in_fd && p->out_fd != STDOUT_FILENO)
			close(p->out_fd);
		if (p->pty_slave >= 0)
			close(p->pty_slave);
		if (p->listen_fd >= 0) {
			close(p->listen_fd);
			unlink(p->path);
		}
		free(p->name);
		free(p->path);
		free(p->rx_elem);
		free(p->tx_elem);
	}
	virtio_dev_destroy(&c->vdev);
	free(c->ports);
	free(c->ctrl);
	free(c->ctrl_rx_elem);
	free(c->ctrl_tx_elem);
	if (c->cond_init)
		pthread_cond_destroy(&c->rx_cond);
	memset(c, 0, sizeof(*c));
	c->winsize_fd = -1;
}

void console_resize(struct console_dev *c)
{
	struct virtio_dev *d = &c->vdev;

	if (c->winsize_fd < 0)
		return;
	pthread_mutex_lock(&d->lock);
	console_read_size(c);
	if (c->started && virtio_live(d) && console_has(c, VIRTIO_CONSOLE_F_SIZE)) {
		/* With multiport the size of port 0 travels as a control message (5.3.6.2);
		 * Linux only reads the configuration area without. */
		if (console_has(c, VIRTIO_CONSOLE_F_MULTIPORT)) {
			if (c->ports[0].ready)
				ctrl_send(c, 0, VIRTIO_CONSOLE_RESIZE, 0);
		} else {
			virtio_config_changed(d);
		}
	}
	pthread_mutex_unlock(&d->lock);
}
