/* The small devices an arm64 guest has beside the UART: the exit device's MMIO page, a PL031
 * real-time clock that shows the host's time, a PL061 GPIO controller for the power button,
 * pvpanic's MMIO page, and the window through which the guest reaches PCI's I/O space (arm64 has
 * no port I/O of its own). */
#ifndef VMM_ARM64_PLATFORM_H
#define VMM_ARM64_PLATFORM_H

#include <pthread.h>
#include <stdint.h>

#include "bus/bus.h"
#include "bus/irq.h"
#include "bus/platform.h"
#include "arch/arm64/pl061.h"

struct platform {
	struct platform_sink sink; /* first: the exit device's handler takes either */
	struct bus *pio;           /* PCI's I/O space, behind the window */
	struct pl061 gpio;         /* its own lock */
	pthread_mutex_t lock;
	int64_t rtc_offset; /* what the guest loaded (RTCLR) minus the host's time then */
	uint32_t rtc_match, rtc_control, rtc_mask;
};

/* Bus handlers, exposed for the unit tests. */
void platform_pl031_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

#endif
