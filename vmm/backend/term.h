/* The host terminal side of a console: raw mode on a terminal (restored on every exit path), an
 * input thread feeding a device, and the Ctrl-A escape (Ctrl-A x quits, as in QEMU). */
#ifndef VMM_TERM_H
#define VMM_TERM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct term {
	int in_fd;
	bool is_tty; /* escapes are only recognised when a person is typing */
	bool escape; /* the previous byte was Ctrl-A */
	int stop_fd; /* eventfd that ends the input thread */
	pthread_t thread;
	bool started;
	/* Delivers bytes to the device, blocking until it took them all; nonzero means give up. */
	int (*input)(void *opaque, const uint8_t *buf, size_t len);
	void (*quit)(void *opaque);
	void *opaque;
};

/* user: in_fd is the user's terminal (stdin): raw mode, and the Ctrl-A escapes, when it is a tty.
 * Otherwise (a pty vmm made) bytes go to the device as they come. */
int term_init(struct term *t, int in_fd, bool user, int (*input)(void *, const uint8_t *, size_t),
	      void (*quit)(void *), void *opaque);
int term_start(struct term *t);
void term_stop(struct term *t);
/* Processes one chunk of typed bytes: escapes handled, the rest passed to input. Exposed for
 * tests; returns nonzero once the user asked to quit. */
int term_feed(struct term *t, const uint8_t *buf, size_t len);
/* A new pty for a guest's console: its master (raw, non-blocking) in *master, and its slave
 * held open in *slave, so that the master reports no hang-up (and reads do not fail with EIO)
 * while nobody is attached; the slave's path in name. 0 or -errno. */
int term_open_pty(int *master, int *slave, char *name, size_t size);
/* Puts the terminal back as it was; safe to call more than once and from atexit. */
void term_restore(void);

#endif
