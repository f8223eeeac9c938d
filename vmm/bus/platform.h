/* The platform devices' interface, the same on every architecture (each has its own devices:
 * vmm/arch/<arch>/platform.[ch] defines struct platform), and the one they all have: the exit
 * device, a byte N written at its offset 0 ends vmm with status N (a port on x86, an MMIO page
 * everywhere), and pvpanic. */
#ifndef VMM_PLATFORM_H
#define VMM_PLATFORM_H

#include <stdbool.h>
#include <stdint.h>

#include "bus/bus.h"
#include "bus/irq.h"

/* What the guest asked of the machine. */
enum platform_event {
	PLATFORM_POWEROFF,     /* ACPI S5 */
	PLATFORM_RESET,        /* ACPI reset register, i8042 reset line */
	PLATFORM_EXIT,         /* the exit device, with its status */
	PLATFORM_PANIC,        /* pvpanic: the guest panicked */
	PLATFORM_CRASH_LOADED, /* pvpanic: the guest panicked and kexecs its crash kernel */
};

/* Where the events go: the first member of every architecture's struct platform. */
struct platform_sink {
	/* An event, with the exit device's status (0 for the others). Any vCPU thread. */
	void (*event)(void *opaque, enum platform_event ev, int status);
	void *opaque;
};

struct platform;

/* line: the interrupt the platform raises (x86: the ACPI GED's, for the power button). */
void platform_init(struct platform *p, void (*event)(void *, enum platform_event, int),
		   void *opaque, struct irq_line line);
void platform_destroy(struct platform *p);
/* Claims the platform's ports and MMIO pages: 0 or the bus's -errno. */
int platform_register(struct platform *p, struct bus *pio, struct bus *mmio);
/* The power button is pressed. Any thread. */
void platform_power_button(struct platform *p);

/* The exit device's bus handler; opaque is the struct platform_sink (or the platform). */
void platform_exit_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/* pvpanic (QEMU's: an I/O port on x86, an MMIO page on arm64), byte 0: reading says which events
 * the device takes (the driver keeps only those); a write is the guest's panic notifier, and
 * with a crash kernel loaded the guest goes on into it. opaque as for the exit device. */
#define PVPANIC_PANICKED     1 /* the guest panicked */
#define PVPANIC_CRASH_LOADED 2 /* ... and a crash kernel takes over */
void platform_pvpanic_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

#endif
