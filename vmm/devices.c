#include "devices.h"
#include "backend/term.h"
#include "bus/platform.h"
#include "bus/uart.h"
#include "config.h"
#include "log.h"
#include "vm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct vm_devices {
	struct vm *vm;
	struct platform platform;
	struct uart uart;
	bool has_term;
	struct term term;
};

static void devices_stop_vm(void *opaque, int status)
{
	vm_request_stop(opaque, status);
}

/* The console's two callbacks share one opaque pointer: the devices. */
static int devices_serial_input(void *opaque, const uint8_t *buf, size_t len)
{
	struct vm_devices *d = opaque;

	return uart_receive_all(&d->uart, buf, len);
}

static void devices_quit(void *opaque)
{
	struct vm_devices *d = opaque;

	log_info("Ctrl-A x: stopping the guest");
	vm_request_stop(d->vm, 0);
}

int devices_create(struct vm *vm, const struct vm_config *cfg, struct irq_line irq,
		   int serial_out)
{
	struct vm_devices *d = calloc(1, sizeof(*d));
	struct irq_line com1 = irq;
	int ret;

	if (!d)
		return -ENOMEM;
	vm->dev = d;
	d->vm = vm;
	platform_init(&d->platform, devices_stop_vm, vm);
	com1.gsi = UART_COM1_IRQ;
	uart_init(&d->uart, com1, serial_out);
	if ((ret = platform_register(&d->platform, &vm->pio, &vm->mmio)) ||
	    (ret = bus_register(&vm->pio, UART_COM1_PORT, UART_NR_REGS, uart_io, &d->uart,
				"ttyS0"))) {
		log_error("platform devices: %s", strerror(-ret));
		return ret;
	}
	if (cfg->serial == SERIAL_STDIO) {
		if ((ret = term_init(&d->term, STDIN_FILENO, devices_serial_input, devices_quit, d)))
			return ret;
		d->has_term = true;
	}
	return 0;
}

int devices_start(struct vm *vm)
{
	struct vm_devices *d = vm->dev;

	return d->has_term ? term_start(&d->term) : 0;
}

void devices_stop(struct vm *vm)
{
	struct vm_devices *d = vm->dev;

	if (!d)
		return;
	uart_shutdown(&d->uart); /* unblocks the input thread if the guest stopped reading */
	if (d->has_term) {
		term_stop(&d->term);
		d->has_term = false;
	}
}

void devices_destroy(struct vm *vm)
{
	struct vm_devices *d = vm->dev;

	if (!d)
		return;
	devices_stop(vm);
	uart_destroy(&d->uart);
	platform_destroy(&d->platform);
	free(d);
	vm->dev = NULL;
}
