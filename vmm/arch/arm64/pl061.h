/* The PL061, ARM's PrimeCell GPIO controller (DDI 0190): eight pins, each an input or an output,
 * whose edges or levels raise one interrupt line. arm64's power button is its pin 3, which the
 * device tree gives to Linux's gpio-keys as KEY_POWER (as QEMU's `virt` board does). Plain code:
 * built and unit-tested on every host. */
#ifndef VMM_ARCH_ARM64_PL061_H
#define VMM_ARCH_ARM64_PL061_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus/irq.h"

#define PL061_SIZE    0x1000
#define PL061_NR_PINS 8

struct pl061 {
	pthread_mutex_t lock;
	struct irq_line line; /* level-high: some enabled pin's interrupt is pending */
	bool level;           /* the line as last set */
	/* The guest's registers. */
	uint8_t data; /* what the guest drives on its output pins */
	uint8_t dir;  /* 1: output */
	uint8_t is;   /* interrupt sense, 1: level */
	uint8_t ibe;  /* 1: both edges */
	uint8_t iev;  /* 1: rising edge or high level */
	uint8_t ie;   /* 1: the pin's interrupt is enabled */
	uint8_t ris;  /* raw interrupt status */
	uint8_t afsel;
	/* vmm's side. */
	uint8_t in;   /* the levels on the input pins */
	uint8_t held; /* pins pressed: let go once the guest has read them high */
};

void pl061_init(struct pl061 *g, struct irq_line line);
void pl061_destroy(struct pl061 *g);
/* The bus handler; opaque is the struct pl061. Registers are 8 bits wide (Linux's driver uses
 * readb/writeb); a wider access reads the register into its first byte, zeros elsewhere. */
void pl061_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
/* A key on an input pin is pressed: the pin goes high, and low again once the guest has read it
 * high, so that its driver sees both the press and the release however long it takes to look
 * (an edge each way). A press while the pin is still held is one press. Any thread. */
void pl061_press(struct pl061 *g, unsigned pin);

#endif
