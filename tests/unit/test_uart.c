/* The 16550A: registers as Linux's 8250 driver probes them, interrupts, FIFOs and host input. */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "bus/uart.h"
#include "event.h"

struct fixture {
	struct uart u;
	struct event_loop loop;
	int pipe[2];
	int log[2]; /* --serial ...,log=: a pipe nobody has to read */
	int level, edges;
};

static void irq_set(void *opaque, uint32_t gsi, int level)
{
	struct fixture *f = opaque;

	assert_int_equal(gsi, UART_COM1_IRQ);
	if (level && !f->level)
		f->edges++;
	f->level = level;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_int_equal(pipe(f->pipe), 0);
	assert_int_equal(pipe(f->log), 0);
	assert_int_equal(event_loop_init(&f->loop, "test"), 0);
	assert_int_equal(uart_init(&f->u, (struct irq_line){ irq_set, f, UART_COM1_IRQ }, f->pipe[1],
				   f->log[1], &f->loop),
			 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	close(f->pipe[0]); /* a reader that is gone: the exit flush does not wait for it */
	close(f->log[0]);
	uart_destroy(&f->u);
	event_loop_destroy(&f->loop);
	close(f->pipe[1]);
	close(f->log[1]);
	free(f);
	return 0;
}

static uint8_t in(struct fixture *f, unsigned reg)
{
	uint8_t v = 0;

	uart_io(&f->u, reg, &v, 1, false);
	return v;
}

static void out(struct fixture *f, unsigned reg, uint8_t v)
{
	uart_io(&f->u, reg, &v, 1, true);
}

static void registers_as_the_8250_probe_sees_them(void **state)
{
	struct fixture *f = *state;

	out(f, 7, 0xa5); /* scratch */
	assert_int_equal(in(f, 7), 0xa5);
	out(f, 3, 0x80); /* DLAB: divisor latch */
	out(f, 0, 0x01);
	out(f, 1, 0x02);
	assert_int_equal(in(f, 0), 0x01);
	assert_int_equal(in(f, 1), 0x02);
	out(f, 3, 0x03); /* 8N1, DLAB off: IER is back */
	assert_int_equal(in(f, 3), 0x03);
	assert_int_equal(in(f, 1), 0x00);
	assert_int_equal(in(f, 2), 0x01); /* no interrupt, FIFOs off */
	out(f, 2, 0x07);                  /* FIFOs on and cleared */
	assert_int_equal(in(f, 2) & 0xc0, 0xc0); /* a 16550A */
	assert_int_equal(in(f, 5), 0x60);        /* transmitter empty, no data */
	/* Loopback: the modem outputs come back on MSR, as the autoconfig test expects. */
	out(f, 4, 0x1a); /* LOOP | OUT2 | RTS */
	assert_int_equal(in(f, 6) & 0xf0, 0x90);
	out(f, 4, 0x00);
	assert_int_equal(in(f, 6) & 0xb0, 0xb0); /* DCD, DSR, CTS: a cable is always there */
	/* Accesses wider than a byte or past the registers are not the UART's. */
	uint8_t wide[2] = { 0 };
	uart_io(&f->u, 0, wide, 2, false);
	assert_int_equal(wide[0], 0xff);
}

static void output_reaches_the_host_and_thre_interrupts(void **state)
{
	struct fixture *f = *state;
	char buf[8];

	out(f, 4, 0x08); /* OUT2: the interrupt line is connected */
	out(f, 1, 0x02); /* THRI on an empty transmitter interrupts at once */
	assert_int_equal(f->level, 1);
	assert_int_equal(in(f, 2) & 0x0f, 0x02);
	assert_int_equal(f->level, 0); /* reading IIR acknowledged it */
	assert_int_equal(in(f, 2) & 0x0f, 0x01);
	out(f, 0, 'h');
	out(f, 0, 'i');
	assert_int_equal(read(f->pipe[0], buf, sizeof(buf)), 2);
	assert_memory_equal(buf, "hi", 2);
	assert_int_equal(read(f->log[0], buf, sizeof(buf)), 2); /* and the same in the log */
	assert_memory_equal(buf, "hi", 2);
	assert_int_equal(f->level, 1); /* empty again after the byte left */
	assert_int_equal(f->edges, 2);
	out(f, 1, 0x00);
	assert_int_equal(f->level, 0);
	/* Without OUT2 the line stays quiet whatever is pending. */
	out(f, 4, 0x00);
	out(f, 1, 0x02);
	assert_int_equal(in(f, 2) & 0x0f, 0x02);
	assert_int_equal(f->level, 0);
}

/* Hostile-guest defect 5: output to a pipe nobody reads blocked the vCPU on its write. Now the
 * vCPU never waits: once the pipe and the queue are full the transmitter is busy (THRE clear), as
 * on a real line, and when the host takes more THRE comes back with its interrupt; nothing the
 * guest wrote while THRE was set is lost. */
static void a_reader_that_does_not_read_never_stops_the_vcpu(void **state)
{
	struct fixture *f = *state;
	static uint8_t got[1 << 20];
	size_t sent = 0, have = 0;

	alarm(20); /* before the fix this test blocked in write(): fail rather than hang */
	out(f, 4, 0x08);
	out(f, 1, 0x02);
	in(f, 2);
	while (in(f, 5) & 0x20) /* what the 8250 driver does: write while THRE is set */
		out(f, 0, (uint8_t)(sent++ * 7));
	assert_true(sent >= UART_OUT_QUEUE && sent < sizeof(got));
	assert_int_equal(f->level, 0); /* no THRE interrupt while busy */
	while (have < sent) {
		ssize_t n = read(f->pipe[0], got + have, sizeof(got) - have);

		assert_true(n > 0);
		have += (size_t)n;
		event_loop_run_once(&f->loop, 100);
	}
	assert_true(in(f, 5) & 0x20);
	assert_int_equal(f->level, 1); /* THRE came back with its interrupt */
	for (size_t i = 0; i < sent; i++)
		assert_int_equal(got[i], (uint8_t)(i * 7));
	alarm(0);
}

/* The log copies the console and never paces it: a log nobody reads loses what does not fit,
 * and the console still gets everything. */
static void a_log_nobody_reads_never_holds_the_console_back(void **state)
{
	enum { TOTAL = 256 << 10 }; /* more than a pipe and the log's queue hold */
	struct fixture *f = *state;
	static uint8_t got[1 << 20];
	size_t sent = 0, have = 0, logged = 0;
	ssize_t n;

	alarm(20);
	assert_int_equal(fcntl(f->pipe[0], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(fcntl(f->log[0], F_SETFL, O_NONBLOCK), 0);
	while (sent < TOTAL || have < sent) {
		while ((in(f, 5) & 0x20) && sent < TOTAL)
			out(f, 0, (uint8_t)(sent++ * 3));
		while (have < sent && (n = read(f->pipe[0], got + have, sizeof(got) - have)) > 0)
			have += (size_t)n;
		event_loop_run_once(&f->loop, 0);
	}
	for (size_t i = 0; i < sent; i++)
		assert_int_equal(got[i], (uint8_t)(i * 3));
	while ((n = read(f->log[0], got, sizeof(got))) > 0 && logged < sent)
		logged += (size_t)n;
	assert_true(logged > 0 && logged < sent); /* the start, not the whole */
	alarm(0);
}

/* A restart: registers as after uart_init, the FIFO empty, the line low. */
static void reset_is_power_on(void **state)
{
	struct fixture *f = *state;
	uint8_t data[4] = "abcd";

	out(f, 4, 0x08);
	out(f, 1, 0x01);
	out(f, 3, 0x03);
	out(f, 7, 0x5a);
	assert_int_equal(uart_receive(&f->u, data, sizeof(data)), sizeof(data));
	assert_int_equal(f->level, 1);
	uart_reset(&f->u);
	assert_int_equal(f->level, 0);
	assert_int_equal(in(f, 1), 0);
	assert_int_equal(in(f, 3), 0);
	assert_int_equal(in(f, 4), 0);
	assert_int_equal(in(f, 7), 0);
	assert_int_equal(in(f, 5) & 0x01, 0); /* no data ready */
	assert_int_equal(in(f, 6) & 0xb0, 0xb0); /* the modem is still there */
}

static void input_fills_the_fifo_and_interrupts(void **state)
{
	struct fixture *f = *state;
	uint8_t data[20];

	for (unsigned i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)('a' + i);
	out(f, 4, 0x08);
	out(f, 1, 0x01); /* receive interrupt */
	assert_int_equal(f->level, 0);
	assert_int_equal(uart_receive(&f->u, data, sizeof(data)), UART_FIFO_SIZE);
	assert_int_equal(f->level, 1);
	assert_int_equal(in(f, 2) & 0x0f, 0x04);
	for (unsigned i = 0; i < UART_FIFO_SIZE; i++) {
		assert_int_equal(in(f, 5) & 0x01, 0x01);
		assert_int_equal(in(f, 0), 'a' + i);
	}
	assert_int_equal(in(f, 5) & 0x01, 0x00);
	assert_int_equal(f->level, 0);
	assert_int_equal(in(f, 0), 0); /* an empty FIFO reads 0 */
	/* Loopback keeps output off the host and brings it back as input. */
	out(f, 4, 0x18);
	out(f, 0, 'z');
	assert_int_equal(in(f, 0), 'z');
}

struct feeder {
	struct uart *u;
	const uint8_t *buf;
	size_t len;
	int ret;
};

static void *feed(void *arg)
{
	struct feeder *fd = arg;

	fd->ret = uart_receive_all(fd->u, fd->buf, fd->len);
	return NULL;
}

static void blocking_input_waits_for_the_guest(void **state)
{
	struct fixture *f = *state;
	uint8_t data[3 * UART_FIFO_SIZE];
	struct feeder fd = { &f->u, data, sizeof(data), 99 };
	pthread_t t;

	for (unsigned i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)i;
	assert_int_equal(pthread_create(&t, NULL, feed, &fd), 0);
	/* The guest drains the FIFO byte by byte: nothing may be lost or reordered. */
	for (unsigned i = 0; i < sizeof(data); i++) {
		while (!(in(f, 5) & 0x01))
			sched_yield();
		assert_int_equal(in(f, 0), i);
	}
	pthread_join(t, NULL);
	assert_int_equal(fd.ret, 0);
	/* After shutdown a writer blocked on a full FIFO gives up instead of hanging. */
	uart_receive(&f->u, data, UART_FIFO_SIZE);
	fd.ret = 99;
	assert_int_equal(pthread_create(&t, NULL, feed, &fd), 0);
	uart_shutdown(&f->u);
	pthread_join(t, NULL);
	assert_int_equal(fd.ret, -1);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN); /* as vmm: a reader that is gone is an error, not the end */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(registers_as_the_8250_probe_sees_them, setup, teardown),
		cmocka_unit_test_setup_teardown(output_reaches_the_host_and_thre_interrupts, setup,
						teardown),
		cmocka_unit_test_setup_teardown(a_reader_that_does_not_read_never_stops_the_vcpu, setup,
						teardown),
		cmocka_unit_test_setup_teardown(a_log_nobody_reads_never_holds_the_console_back, setup,
						teardown),
		cmocka_unit_test_setup_teardown(reset_is_power_on, setup, teardown),
		cmocka_unit_test_setup_teardown(input_fills_the_fifo_and_interrupts, setup, teardown),
		cmocka_unit_test_setup_teardown(blocking_input_waits_for_the_guest, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
