#include "bus/uart.h"

#include <string.h>

/* Register offsets (with LCR.DLAB clear unless noted). */
enum { RBR_THR_DLL = 0, IER_DLM = 1, IIR_FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

#define IER_RDI  0x01 /* receive data available */
#define IER_THRI 0x02 /* transmitter holding register empty */
#define IER_MASK 0x0f
#define IIR_NONE 0x01
#define IIR_THRI 0x02
#define IIR_RDI  0x04
#define IIR_FIFO 0xc0
#define FCR_ON   0x01
#define FCR_CLR_RX 0x02
#define LCR_DLAB 0x80
#define MCR_DTR  0x01
#define MCR_RTS  0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08 /* on a PC, gates the interrupt line */
#define MCR_LOOP 0x10
#define MCR_MASK 0x1f
#define LSR_DR   0x01
#define LSR_OE   0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MSR_CTS  0x10
#define MSR_DSR  0x20
#define MSR_RI   0x40
#define MSR_DCD  0x80

static void uart_update_irq(struct uart *u);

/* The host took queued output: the transmitter is free again, with its interrupt. */
static void uart_out_room(void *opaque)
{
	struct uart *u = opaque;

	pthread_mutex_lock(&u->lock);
	u->thre_pending = true;
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

/* The registers at power-on, the receive FIFO empty. */
static void uart_power_on(struct uart *u)
{
	u->ier = u->lcr = u->mcr = u->lsr_err = u->scr = u->dll = u->dlm = 0;
	u->msr = MSR_DCD | MSR_DSR | MSR_CTS; /* a modem that is always there */
	u->fifo_on = u->thre_pending = false;
	u->rx_head = u->rx_count = 0;
}

int uart_init(struct uart *u, struct irq_line irq, int out_fd, int log_fd,
	      struct event_loop *loop)
{
	int ret;

	memset(u, 0, sizeof(*u));
	pthread_mutex_init(&u->lock, NULL);
	pthread_cond_init(&u->room, NULL);
	u->irq = irq;
	uart_power_on(u);
	if ((ret = outq_init(&u->out, out_fd, UART_OUT_QUEUE, "serial", loop, uart_out_room, u)))
		return ret;
	/* The log follows the console and never paces it: what a slow log cannot take is lost. */
	return outq_init(&u->log, log_fd, UART_OUT_QUEUE, "serial log", loop, NULL, NULL);
}

void uart_reset(struct uart *u)
{
	pthread_mutex_lock(&u->lock);
	uart_power_on(u);
	uart_update_irq(u);
	pthread_cond_broadcast(&u->room); /* input that waited for room has it */
	pthread_mutex_unlock(&u->lock);
}

void uart_destroy(struct uart *u)
{
	outq_destroy(&u->out);
	outq_destroy(&u->log);
	pthread_cond_destroy(&u->room);
	pthread_mutex_destroy(&u->lock);
}

/* Whether THR can take a byte: the output queue has room. */
static bool uart_thr_empty(struct uart *u)
{
	return (u->mcr & MCR_LOOP) || outq_room(&u->out) > 0;
}

/* The highest-priority pending interrupt, as IIR reports it. Called with the lock held. */
static uint8_t uart_iir(const struct uart *u)
{
	if ((u->ier & IER_RDI) && u->rx_count)
		return IIR_RDI;
	if ((u->ier & IER_THRI) && u->thre_pending)
		return IIR_THRI;
	return IIR_NONE;
}

static void uart_update_irq(struct uart *u)
{
	int level = uart_iir(u) != IIR_NONE && (u->mcr & MCR_OUT2) && !(u->mcr & MCR_LOOP);

	if (level != u->irq_level) {
		u->irq_level = level;
		irq_line_set(&u->irq, level);
	}
}

/* Adds one byte to the receive FIFO; a full FIFO overruns (the byte is lost, LSR says so). */
static bool uart_push(struct uart *u, uint8_t c)
{
	if (u->rx_count == UART_FIFO_SIZE) {
		u->lsr_err |= LSR_OE;
		return false;
	}
	u->rx[(u->rx_head + u->rx_count) % UART_FIFO_SIZE] = c;
	u->rx_count++;
	return true;
}

static void uart_transmit(struct uart *u, uint8_t c)
{
	if (u->mcr & MCR_LOOP)
		uart_push(u, c);
	else if (outq_write(&u->out, &c, 1)) /* taken unless the guest ignored THRE: then lost */
		outq_write(&u->log, &c, 1);
	/* Empty again at once while the queue has room; otherwise when the host takes more
	 * (uart_out_room). */
	u->thre_pending = uart_thr_empty(u);
}

static uint8_t uart_read(struct uart *u, unsigned reg)
{
	uint8_t v = 0, iir;

	switch (reg) {
	case RBR_THR_DLL:
		if (u->lcr & LCR_DLAB)
			return u->dll;
		if (u->rx_count) {
			v = u->rx[u->rx_head];
			u->rx_head = (u->rx_head + 1) % UART_FIFO_SIZE;
			u->rx_count--;
			pthread_cond_broadcast(&u->room);
		}
		return v;
	case IER_DLM:
		return (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
	case IIR_FCR:
		iir = uart_iir(u);
		if (iir == IIR_THRI) /* reading IIR acknowledges the THRE interrupt */
			u->thre_pending = false;
		return iir | (u->fifo_on ? IIR_FIFO : 0);
	case LCR:
		return u->lcr;
	case MCR:
		return u->mcr;
	case LSR:
		v = (uart_thr_empty(u) ? LSR_THRE | LSR_TEMT : 0) | (u->rx_count ? LSR_DR : 0) |
		    u->lsr_err;
		u->lsr_err = 0;
		return v;
	case MSR:
		if (u->mcr & MCR_LOOP) /* the modem outputs come back as inputs */
			return (uint8_t)(((u->mcr & MCR_RTS) ? MSR_CTS : 0) |
					 ((u->mcr & MCR_DTR) ? MSR_DSR : 0) |
					 ((u->mcr & MCR_OUT1) ? MSR_RI : 0) |
					 ((u->mcr & MCR_OUT2) ? MSR_DCD : 0));
		return u->msr;
	default:
		return u->scr;
	}
}

static void uart_write(struct uart *u, unsigned reg, uint8_t v)
{
	switch (reg) {
	case RBR_THR_DLL:
		if (u->lcr & LCR_DLAB)
			u->dll = v;
		else
			uart_transmit(u, v);
		break;
	case IER_DLM:
		if (u->lcr & LCR_DLAB) {
			u->dlm = v;
			break;
		}
		/* Enabling THRI while the transmitter is empty raises it at once, as on a 16550. */
		if ((v & IER_THRI) && !(u->ier & IER_THRI))
			u->thre_pending = uart_thr_empty(u);
		u->ier = v & IER_MASK;
		break;
	case IIR_FCR:
		u->fifo_on = v & FCR_ON;
		if (v & FCR_CLR_RX) {
			u->rx_count = 0;
			pthread_cond_broadcast(&u->room);
		}
		break;
	case LCR:
		u->lcr = v;
		break;
	case MCR:
		u->mcr = v & MCR_MASK;
		break;
	case SCR:
		u->scr = v;
		break;
	default: /* LSR and MSR are read-only */
		break;
	}
}

void uart_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct uart *u = opaque;

	if (len != 1 || offset >= UART_NR_REGS) { /* the 8250 is byte-wide */
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&u->lock);
	if (is_write)
		uart_write(u, (unsigned)offset, data[0]);
	else
		data[0] = uart_read(u, (unsigned)offset);
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

size_t uart_receive(struct uart *u, const uint8_t *buf, size_t len)
{
	size_t n = 0;

	pthread_mutex_lock(&u->lock);
	while (n < len && u->rx_count < UART_FIFO_SIZE)
		uart_push(u, buf[n++]);
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return n;
}

int uart_receive_all(struct uart *u, const uint8_t *buf, size_t len)
{
	int ret = 0;

	pthread_mutex_lock(&u->lock);
	while (len) {
		while (u->rx_count == UART_FIFO_SIZE && !u->shutdown)
			pthread_cond_wait(&u->room, &u->lock);
		if (u->shutdown) {
			ret = -1;
			break;
		}
		while (len && u->rx_count < UART_FIFO_SIZE) {
			uart_push(u, *buf++);
			len--;
		}
		uart_update_irq(u);
	}
	pthread_mutex_unlock(&u->lock);
	return ret;
}

void uart_shutdown(struct uart *u)
{
	pthread_mutex_lock(&u->lock);
	u->shutdown = true;
	pthread_cond_broadcast(&u->room);
	pthread_mutex_unlock(&u->lock);
}
