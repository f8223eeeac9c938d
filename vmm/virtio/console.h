/* virtio console (VIRTIO 1.x section 5.3): port 0 is the guest's hvc0; named ports (multiport)
 * appear in the guest as /dev/virtio-ports/NAME. Each port has a host side: the terminal, a pty,
 * a file (output only), a unix socket (one client at a time) or nothing. */
#ifndef VMM_VIRTIO_CONSOLE_H
#define VMM_VIRTIO_CONSOLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend/outq.h"
#include "backend/term.h"
#include "virtio/virtio.h"

#define CONSOLE_QUEUE_SIZE 256
#define CONSOLE_MAX_PORTS  32  /* port 0 plus 31 named ports: 66 queues */
#define CONSOLE_MAX_NAME   127 /* bytes of a port name */
#define CONSOLE_OUT_QUEUE  65536 /* stdio and file ports: output held for a slow reader */

/* Feature bits (5.3.3). */
#define VIRTIO_CONSOLE_F_SIZE        0
#define VIRTIO_CONSOLE_F_MULTIPORT   1
#define VIRTIO_CONSOLE_F_EMERG_WRITE 2

/* Control events (5.3.6.2). */
#define VIRTIO_CONSOLE_DEVICE_READY  0
#define VIRTIO_CONSOLE_DEVICE_ADD    1
#define VIRTIO_CONSOLE_DEVICE_REMOVE 2
#define VIRTIO_CONSOLE_PORT_READY    3
#define VIRTIO_CONSOLE_CONSOLE_PORT  4
#define VIRTIO_CONSOLE_RESIZE        5
#define VIRTIO_CONSOLE_PORT_OPEN     6
#define VIRTIO_CONSOLE_PORT_NAME     7

/* The guest sees these little-endian; x86 hosts and guests only. */
struct virtio_console_config {
	uint16_t cols;
	uint16_t rows;
	uint32_t max_nr_ports;
	uint32_t emerg_wr;
} __attribute__((packed));

struct virtio_console_control {
	uint32_t id;
	uint16_t event;
	uint16_t value;
} __attribute__((packed));

enum console_backend {
	CONSOLE_NONE,   /* no host side: output discarded, no input */
	CONSOLE_STDIO,  /* port 0 only: the terminal through backend/term, output to stdout */
	CONSOLE_PTY,    /* a new pseudo-terminal; its name is logged at info */
	CONSOLE_FILE,   /* output to path (truncated), no input */
	CONSOLE_SOCKET, /* a unix stream socket at path; one client at a time */
};

struct console_port_cfg {
	const char *name; /* NULL for port 0; otherwise the guest's /dev/virtio-ports/NAME */
	enum console_backend kind;
	const char *path; /* CONSOLE_FILE, CONSOLE_SOCKET */
	const char *what; /* names path in messages: "--console file=PATH"; NULL: the path alone */
};

struct console_dev;

struct console_port {
	struct console_dev *c;
	unsigned id;
	char *name; /* NULL for port 0 */
	enum console_backend kind;
	char *path;
	int in_fd;        /* read for input; -1: none (no client, file, none, stdio via term) */
	int out_fd;       /* written for output; -1: output is discarded */
	struct outq out;  /* CONSOLE_STDIO, CONSOLE_FILE: how out_fd is written */
	int listen_fd;    /* CONSOLE_SOCKET */
	int pty_slave;    /* CONSOLE_PTY: held open so the master never reads as hung up */
	bool registered;  /* in_fd is in the event loop */
	uint32_t armed;   /* the events its one-shot watch waits for now; 0: disarmed */
	bool listen_registered;
	bool input_eof;   /* the host side's input ended */
	bool rx_waiting;  /* input paused: the guest had no receive buffer; until its next kick */
	bool ready;       /* the driver sent PORT_READY (multiport) */
	bool guest_open;  /* the driver sent PORT_OPEN 1 (multiport) */
	bool out_warned;  /* an output problem was logged */
	struct virtq_elem *rx_elem; /* a popped receive chain not yet filled */
	bool rx_held;
	struct virtq_elem *tx_elem; /* a transmit chain partly written (a slow reader) */
	bool tx_held;
	size_t tx_off;
};

struct console_ctrl_msg {
	uint32_t id;
	uint16_t event, value;
};

struct console_dev {
	struct virtio_dev vdev; /* what the transports attach to */
	struct virtio_console_config config;
	struct virtio_console_config shadow; /* config as the device set it: driver writes undone */
	struct console_port *ports;
	unsigned nr_ports;
	bool started; /* between the start op and reset */
	bool ports_added; /* DEVICE_ADD sent for every port (multiport), until reset */
	int winsize_fd; /* the terminal whose size port 0 reports (F_SIZE), or -1 */

	/* Control messages waiting for a control receive buffer (multiport). */
	struct console_ctrl_msg *ctrl;
	unsigned ctrl_len, ctrl_cap;
	bool ctrl_warned;
	struct virtq_elem *ctrl_rx_elem, *ctrl_tx_elem;

	/* Port 0 on the terminal: term's thread delivers input and waits on rx_cond while the
	 * guest has no receive buffer. */
	bool has_term;
	struct term term;
	void (*quit)(void *); /* Ctrl-A x */
	void *quit_opaque;
	pthread_cond_t rx_cond;
	bool cond_init;
	bool stopping;
};

/* Opens every port's host side. A path that cannot be used is one message naming the --console
 * option and -errno. quit is what Ctrl-A x calls on a terminal. ports[0] is port 0 (name NULL);
 * more ports make it a multiport device. */
int console_init(struct console_dev *c, const char *name, const struct console_port_cfg *ports,
		 unsigned nr_ports, const struct guest_mem *mem, struct event_loop *loop,
		 void (*quit)(void *), void *quit_opaque);
/* Starts the terminal input thread (port 0 on stdio). 0 or -errno. */
int console_start(struct console_dev *c);
/* Stops that thread, even while it waits for the guest. */
void console_stop(struct console_dev *c);
/* Stops, closes everything, removes socket files. Safe on a zeroed or half-initialised device. */
void console_destroy(struct console_dev *c);
/* The terminal changed size (SIGWINCH): tell the guest. Any thread. */
void console_resize(struct console_dev *c);

#endif
