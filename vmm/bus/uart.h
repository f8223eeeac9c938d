/* A 16550A UART as Linux's 8250 driver sees it (ttyS0 at 0x3f8, IRQ 4): the register file, FIFOs,
 * THRE and receive interrupts, loopback. Output goes to a host fd through a bounded queue
 * (backend/outq.h): a reader that does not keep up never stops the vCPU; while the queue is full
 * the transmitter is busy (LSR.THRE clear) and the guest waits, as on a real line, until the
 * host takes more and THRE comes back with its interrupt. Input comes from the host through
 * uart_receive. */
#ifndef VMM_UART_H
#define VMM_UART_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/outq.h"
#include "bus/irq.h"

#define UART_COM1_PORT 0x3f8
#define UART_COM1_IRQ  4
#define UART_NR_REGS   8
#define UART_FIFO_SIZE 16
#define UART_OUT_QUEUE 4096 /* output bytes held for a slow reader */

struct uart {
	pthread_mutex_t lock;
	pthread_cond_t room; /* signalled when the guest takes a byte from the receive FIFO */
	struct irq_line irq;
	struct outq out;
	struct outq log; /* a copy of the output (--serial ...,log=FILE), never holding it back */
	uint8_t ier, lcr, mcr, lsr_err, msr, scr, dll, dlm;
	bool fifo_on;
	bool thre_pending; /* the "transmitter empty" interrupt, cleared by an IIR read or THR write */
	int irq_level;
	uint8_t rx[UART_FIFO_SIZE];
	unsigned rx_head, rx_count;
	bool shutdown;
};

/* Output to out_fd (-1: discarded) and a copy to log_fd (-1: none), drained on loop. 0 or
 * -errno. */
int uart_init(struct uart *u, struct irq_line irq, int out_fd, int log_fd,
	      struct event_loop *loop);
/* Writes the output still queued (briefly waiting for a reader), then frees. The loop must be
 * stopped. */
void uart_destroy(struct uart *u);
/* A restart: the registers as after uart_init, the receive FIFO empty, the line low. Output still
 * queued for the host stays queued. */
void uart_reset(struct uart *u);
/* The bus handler: offset 0..7 from the base port, one byte per access. */
void uart_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
/* Puts host input into the receive FIFO: returns how many bytes fitted (maybe 0). */
size_t uart_receive(struct uart *u, const uint8_t *buf, size_t len);
/* Same, but waits for the guest to make room until all of buf is in. 0, or -1 after uart_shutdown. */
int uart_receive_all(struct uart *u, const uint8_t *buf, size_t len);
/* Wakes and fails every uart_receive_all, now and later. */
void uart_shutdown(struct uart *u);

#endif
