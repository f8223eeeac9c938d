/* The VM's devices: which exist, built from the configuration, and their host-side backends. */
#ifndef VMM_DEVICES_H
#define VMM_DEVICES_H

#include "arch.h"
#include "bus/irq.h"

#include <stdbool.h>

struct vm;
struct vm_config;
struct virtio_dev;
struct balloon_dev;

/* The virtio-mmio devices the configuration asks for, in the order devices_create makes them, with
 * their windows and interrupt lines: the ACPI tables describe exactly these. Returns how many, or
 * -EINVAL with one message when there are more than VIRTIO_MMIO_MAX. */
int devices_mmio_layout(const struct vm_config *cfg, struct boot_mmio_dev out[VIRTIO_MMIO_MAX]);

/* The UART's host side, opened by main before KVM: where its output goes, a copy of it (--serial
 * ...,log=FILE) and where its input comes from (-1: none of that); a pty's slave, held open. */
struct serial_host {
	int out, log, in;
	int pty_slave;
};

/* Before KVM is opened, so that bad input is exit 2 on any host: opens (and closes) the images
 * and taps devices_create will open, and checks the files it will open or create, with the
 * messages devices_create would give. Finds an image given twice. 0 or -errno, with a message. */
int devices_check(const struct vm_config *cfg);

/* Creates the devices the configuration asks for and puts them on the VM's buses. `irq` is the
 * VM's interrupt line with gsi 0; a device sets its own gsi. serial's descriptors stay the
 * caller's. 0 or -errno, with a message. */
int devices_create(struct vm *vm, const struct vm_config *cfg, struct irq_line irq,
		   const struct serial_host *serial);
/* Starts the host side (input threads): 0 or -errno. */
int devices_start(struct vm *vm);
/* Stops the host side; the vCPUs have stopped. Safe after a failed or missing start. */
void devices_stop(struct vm *vm);
/* vm.pause and vm.resume: the device threads (the I/O loop, each disk's and net's) park between
 * two requests, and run on. The terminals' input threads do not: what is typed waits in the
 * UART's FIFO or for the console's buffers, and Ctrl-A x still stops the VM. */
void devices_pause(struct vm *vm);
void devices_resume(struct vm *vm);
/* The guest reset itself (ACPI, i8042, KVM's reset event) or vm.reboot asked: a restart with
 * --on-reboot restart, else the end (status 0). Any thread. */
void devices_guest_reset(struct vm *vm);
/* A restart, with the vCPUs parked and the device threads running: every virtio device reset as
 * its driver would reset it, the PCI functions' registers and the UART as at power-on. The host
 * side (files, taps, sockets, ptys) stays as it is. */
void devices_reset(struct vm *vm);
/* vm.power-button: the ACPI power button is pressed (the guest decides what follows). */
void devices_power_button(struct vm *vm);
/* The host terminal changed size: tell the console that has it. */
void devices_resize(struct vm *vm);
/* Logs each virtio device's state (info level): what a stuck guest waits for. */
void devices_log_state(struct vm *vm);
/* The virtio devices one by one, for the control socket: the next after *i (start at 0), and
 * whether it is on virtio-mmio; NULL after the last. Any thread, once created. */
struct virtio_dev *devices_next(struct vm *vm, unsigned *i, bool *mmio);
/* The balloon, or NULL. */
struct balloon_dev *devices_balloon(struct vm *vm);
/* Frees everything; safe on a NULL or half-created set. */
void devices_destroy(struct vm *vm);

#endif
