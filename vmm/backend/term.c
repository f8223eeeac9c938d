#include "backend/term.h"
#include "log.h"
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <termios.h>
#include <unistd.h>

#define CTRL_A 0x01

/* The terminal is process-wide state, and atexit handlers take no argument: one saved copy. */
static struct termios saved_termios;
static int saved_fd = -1;

void term_restore(void)
{
	if (saved_fd >= 0) {
		tcsetattr(saved_fd, TCSAFLUSH, &saved_termios);
		saved_fd = -1;
	}
}

static int term_set_raw(int fd)
{
	struct termios raw;

	if (tcgetattr(fd, &saved_termios) < 0)
		return -errno;
	raw = saved_termios;
	cfmakeraw(&raw);
	/* Ctrl-C and Ctrl-Z belong to the guest, as in QEMU; Ctrl-A x is the way out. */
	if (tcsetattr(fd, TCSAFLUSH, &raw) < 0)
		return -errno;
	saved_fd = fd;
	atexit(term_restore);
	return 0;
}

int term_init(struct term *t, int in_fd, bool user, int (*input)(void *, const uint8_t *, size_t),
	      void (*quit)(void *), void *opaque)
{
	memset(t, 0, sizeof(*t));
	t->in_fd = in_fd;
	t->input = input;
	t->quit = quit;
	t->opaque = opaque;
	t->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (t->stop_fd < 0)
		return -errno;
	t->is_tty = user && isatty(in_fd);
	if (t->is_tty) {
		int ret = term_set_raw(in_fd);
		if (ret) {
			log_warn("cannot put the terminal in raw mode: %s", strerror(-ret));
			t->is_tty = false;
		}
	}
	return 0;
}

int term_open_pty(int *master, int *slave, char *name, size_t size)
{
	struct termios tio;
	int ret;

	*slave = -1;
	*master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (*master < 0)
		return -errno;
	if (grantpt(*master) < 0 || unlockpt(*master) < 0)
		goto fail;
	if ((ret = ptsname_r(*master, name, size))) {
		errno = ret;
		goto fail;
	}
	*slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (*slave < 0)
		goto fail;
	if (tcgetattr(*master, &tio) == 0) {
		cfmakeraw(&tio);
		tcsetattr(*master, TCSANOW, &tio);
	}
	if (fcntl(*master, F_SETFL, O_NONBLOCK) < 0)
		goto fail;
	return 0;
fail:
	ret = -errno;
	close(*master);
	if (*slave >= 0)
		close(*slave);
	*master = *slave = -1;
	return ret;
}

static void term_help(void)
{
	log_msg(LOG_ERROR, "console escapes: Ctrl-A x quit, Ctrl-A Ctrl-A send Ctrl-A, Ctrl-A h help");
}

int term_feed(struct term *t, const uint8_t *buf, size_t len)
{
	size_t start = 0;

	if (!t->is_tty)
		return t->input(t->opaque, buf, len) ? -1 : 0;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = buf[i];

		if (!t->escape) {
			if (c == CTRL_A) {
				if (i > start && t->input(t->opaque, buf + start, i - start))
					return -1;
				t->escape = true;
				start = i + 1;
			}
			continue;
		}
		t->escape = false;
		start = i + 1;
		if (c == 'x' || c == 'X') {
			if (t->quit)
				t->quit(t->opaque);
			return 1;
		} else if (c == 'h' || c == 'H' || c == '?') {
			term_help();
		} else if (c == CTRL_A) {
			if (t->input(t->opaque, &c, 1))
				return -1;
		} else {
			/* Not an escape after all: pass both bytes on. */
			uint8_t two[2] = { CTRL_A, c };
			if (t->input(t->opaque, two, 2))
				return -1;
		}
	}
	if (len > start && t->input(t->opaque, buf + start, len - start))
		return -1;
	return 0;
}

static void *term_thread(void *arg)
{
	struct term *t = arg;
	uint8_t buf[256];

	pthread_setname_np(pthread_self(), "console");
	sandbox_enter(SANDBOX_INPUT, "console");
	for (;;) {
		struct pollfd pfd[2] = { { t->stop_fd, POLLIN, 0 }, { t->in_fd, POLLIN, 0 } };
		ssize_t n;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[0].revents)
			break;
		n = read(t->in_fd, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) /* end of input: the guest keeps running, it just gets no more */
			break;
		if (term_feed(t, buf, (size_t)n))
			break;
	}
	return NULL;
}

int term_start(struct term *t)
{
	int ret = pthread_create(&t->thread, NULL, term_thread, t);

	if (ret)
		return -ret;
	t->started = true;
	return 0;
}

void term_stop(struct term *t)
{
	uint64_t one = 1;

	if (t->started) {
		if (write(t->stop_fd, &one, sizeof(one)) < 0)
			log_warn("term: %s", strerror(errno));
		pthread_join(t->thread, NULL);
		t->started = false;
	}
	if (t->stop_fd >= 0)
		close(t->stop_fd);
	t->stop_fd = -1;
	term_restore();
}
