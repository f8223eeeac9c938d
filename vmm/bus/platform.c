/* The exit device and pvpanic, which every architecture's platform has. */
#include "bus/platform.h"
#include "log.h"

#include <string.h>

void platform_exit_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct platform_sink *p = opaque;

	if (!is_write) {
		memset(data, 0, len);
		return;
	}
	if (offset == 0) {
		log_info("exit device: guest asked for status %u", data[0]);
		p->event(p->opaque, PLATFORM_EXIT, data[0]);
	}
}

void platform_pvpanic_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct platform_sink *p = opaque;

	if (!is_write) {
		memset(data, 0, len);
		if (offset == 0 && len)
			data[0] = PVPANIC_PANICKED | PVPANIC_CRASH_LOADED;
		return;
	}
	if (offset != 0 || !len)
		return;
	if (data[0] & PVPANIC_PANICKED)
		p->event(p->opaque, PLATFORM_PANIC, 0);
	else if (data[0] & PVPANIC_CRASH_LOADED)
		p->event(p->opaque, PLATFORM_CRASH_LOADED, 0);
}
