/* The small legacy devices a PC guest expects beside the UART: the exit device (port 0xf4 and an
 * MMIO page), the i8042's reset line, the hardware-reduced ACPI sleep and reset registers and
 * power button, a CMOS RTC that shows the host's time, and pvpanic. */
#ifndef VMM_X86_PLATFORM_H
#define VMM_X86_PLATFORM_H

#include <pthread.h>
#include <stdint.h>

#include "bus/bus.h"
#include "bus/irq.h"
#include "bus/platform.h"

#define CMOS_PORT     0x70 /* index at 0x70 (bit 7: NMI disable), data at 0x71 */
#define CMOS_SIZE     128
#define I8042_DATA    0x60
#define I8042_CMD     0x64
#define I8042_RESET   0xfe
#define PVPANIC_PORT  0x505 /* QEMU's pvpanic, ACPI QEMU0001: what Linux's pvpanic-mmio binds */

struct platform {
	struct platform_sink sink; /* first: the exit device's handler takes either */
	struct irq_line ged; /* the Generic Event Device's interrupt (ACPI_GED_GSI) */
	pthread_mutex_t lock;
	uint8_t cmos_index;
	uint8_t cmos[CMOS_SIZE]; /* plain RAM except the clock and status registers */
};


/* platform_power_button: an edge on the GED's interrupt, whose _EVT notifies the PNP0C0C button
 * in the DSDT (acpi.c). */

/* Bus handlers, exposed for the unit tests. */
void platform_i8042_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
void platform_acpi_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
void platform_cmos_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

#endif
