#include "arch/x86/platform.h"
#include "arch/x86/acpi.h"
#include "arch/x86/layout.h"
#include "log.h"

#include <string.h>
#include <time.h>

/* CMOS RTC registers. */
enum {
	RTC_SEC = 0x00, RTC_MIN = 0x02, RTC_HOUR = 0x04, RTC_WDAY = 0x06, RTC_MDAY = 0x07,
	RTC_MON = 0x08, RTC_YEAR = 0x09, RTC_REG_A = 0x0a, RTC_REG_B = 0x0b, RTC_REG_C = 0x0c,
	RTC_REG_D = 0x0d, RTC_CENTURY = 0x32,
};
#define RTC_B_24H    0x02
#define RTC_B_BINARY 0x04
#define RTC_D_VRT    0x80 /* "valid RAM and time": the battery is fine */

#define ACPI_SLP_EN       0x20
#define ACPI_SLP_TYP(v)   (((v) >> 2) & 7)

void platform_init(struct platform *p, void (*event)(void *, enum platform_event, int),
		   void *opaque, struct irq_line ged)
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	p->sink = (struct platform_sink){ event, opaque };
	p->ged = ged;
	p->cmos[RTC_REG_A] = 0x26; /* 32.768 kHz time base, 1024 Hz periodic rate: the usual values */
	p->cmos[RTC_REG_B] = RTC_B_24H;
	p->cmos[RTC_REG_D] = RTC_D_VRT;
}

void platform_destroy(struct platform *p)
{
	pthread_mutex_destroy(&p->lock);
}

void platform_power_button(struct platform *p)
{
	irq_line_set(&p->ged, 1);
	irq_line_set(&p->ged, 0);
}


void platform_i8042_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct platform *p = opaque;

	if (!is_write) {
		/* Status 0: no data to read, input buffer empty, so drivers see no keyboard and never
		 * wait on it; the data port reads 0 too. */
		memset(data, 0, len);
		return;
	}
	if (offset == I8042_CMD - I8042_DATA && data[0] == I8042_RESET) {
		log_info("i8042: guest pulsed the reset line");
		p->sink.event(p->sink.opaque, PLATFORM_RESET, 0);
	}
}

void platform_acpi_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct platform *p = opaque;
	uint8_t v = data[0];

	if (!is_write) {
		memset(data, 0, len); /* sleep status: never woken, nothing pending */
		return;
	}
	if (offset == 0 && (v & ACPI_SLP_EN)) {
		if (ACPI_SLP_TYP(v) == ACPI_S5_SLP_TYP) {
			log_info("ACPI: guest powered off");
			p->sink.event(p->sink.opaque, PLATFORM_POWEROFF, 0);
		} else {
			log_debug("ACPI: sleep type %u not supported, ignored", ACPI_SLP_TYP(v));
		}
	} else if (offset == ACPI_RESET_PORT - ACPI_SLEEP_CTL_PORT && v == ACPI_RESET_VALUE) {
		log_info("ACPI: guest reset");
		p->sink.event(p->sink.opaque, PLATFORM_RESET, 0);
	}
}

static uint8_t rtc_encode(const struct platform *p, int v)
{
	if (p->cmos[RTC_REG_B] & RTC_B_BINARY)
		return (uint8_t)v;
	return (uint8_t)((v / 10) << 4 | (v % 10));
}

/* Called with the lock held: the clock registers are read from the host's UTC time. */
static uint8_t cmos_read(struct platform *p, uint8_t reg)
{
	time_t now = time(NULL);
	struct tm tm;
	int hour;

	if (reg > RTC_YEAR && reg != RTC_CENTURY) {
		uint8_t v = p->cmos[reg];
		if (reg == RTC_REG_C) /* interrupt flags clear on read; none are raised here */
			p->cmos[reg] = 0;
		return v;
	}
	gmtime_r(&now, &tm);
	switch (reg) {
	case RTC_SEC:
		return rtc_encode(p, tm.tm_sec > 59 ? 59 : tm.tm_sec);
	case RTC_MIN:
		return rtc_encode(p, tm.tm_min);
	case RTC_HOUR:
		if (p->cmos[RTC_REG_B] & RTC_B_24H)
			return rtc_encode(p, tm.tm_hour);
		hour = tm.tm_hour % 12 ? tm.tm_hour % 12 : 12;
		return (uint8_t)(rtc_encode(p, hour) | (tm.tm_hour >= 12 ? 0x80 : 0));
	case RTC_WDAY:
		return rtc_encode(p, tm.tm_wday + 1);
	case RTC_MDAY:
		return rtc_encode(p, tm.tm_mday);
	case RTC_MON:
		return rtc_encode(p, tm.tm_mon + 1);
	case RTC_YEAR:
		return rtc_encode(p, tm.tm_year % 100);
	case RTC_CENTURY:
		return rtc_encode(p, (tm.tm_year + 1900) / 100);
	default: /* the alarm registers (1, 3, 5) */
		return p->cmos[reg];
	}
}

void platform_cmos_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct platform *p = opaque;

	pthread_mutex_lock(&p->lock);
	if (offset == 0) {
		if (is_write)
			p->cmos_index = data[0] & (CMOS_SIZE - 1); /* bit 7 masks NMIs: ignored */
		else
			data[0] = 0xff; /* the index register is write-only */
	} else if (is_write) {
		uint8_t reg = p->cmos_index;
		/* The time registers follow the host; C and D are read-only; A keeps UIP clear. */
		if (reg == RTC_REG_A)
			p->cmos[reg] = data[0] & 0x7f;
		else if (reg == RTC_REG_B || (reg > RTC_REG_D && reg != RTC_CENTURY))
			p->cmos[reg] = data[0];
		else if (reg == 1 || reg == 3 || reg == 5)
			p->cmos[reg] = data[0];
	} else {
		data[0] = cmos_read(p, p->cmos_index);
	}
	pthread_mutex_unlock(&p->lock);
}

int platform_register(struct platform *p, struct bus *pio, struct bus *mmio)
{
	int ret;

	if ((ret = bus_register(pio, EXITDEV_PORT, 1, platform_exit_io, p, "exit")) ||
	    (ret = bus_register(mmio, EXITDEV_MMIO_ADDR, EXITDEV_MMIO_SIZE, platform_exit_io, p,
				"exit")) ||
	    (ret = bus_register(pio, I8042_DATA, I8042_CMD - I8042_DATA + 1, platform_i8042_io, p,
				"i8042")) ||
	    (ret = bus_register(pio, ACPI_SLEEP_CTL_PORT, ACPI_RESET_PORT - ACPI_SLEEP_CTL_PORT + 1,
				platform_acpi_io, p, "acpi")) ||
	    (ret = bus_register(pio, CMOS_PORT, 2, platform_cmos_io, p, "cmos")) ||
	    (ret = bus_register(pio, PVPANIC_PORT, 1, platform_pvpanic_io, p, "pvpanic")))
		return ret;
	return 0;
}
