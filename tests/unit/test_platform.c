/* The platform devices: exit device, i8042 reset, ACPI sleep and reset registers and power
 * button, CMOS RTC, pvpanic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "arch/x86/acpi.h"
#include "arch/x86/layout.h"
#include "arch/x86/platform.h"

static int stops, last_status;
static enum platform_event last_event;
static char levels[8]; /* the GED line's levels as set, in order */

static void ged_set(void *opaque, uint32_t gsi, int level)
{
	size_t n = strlen(levels);

	assert_int_equal(gsi, ACPI_GED_GSI);
	assert_true(n < sizeof(levels) - 1);
	levels[n] = (char)('0' + level);
}

static void stop(void *opaque, enum platform_event ev, int status)
{
	stops++;
	last_event = ev;
	last_status = status;
}

static void put(struct bus *b, uint64_t addr, uint8_t v)
{
	assert_true(bus_access(b, addr, &v, 1, true));
}

static uint8_t get(struct bus *b, uint64_t addr)
{
	uint8_t v = 0;

	assert_true(bus_access(b, addr, &v, 1, false));
	return v;
}

struct buses {
	struct platform p;
	struct bus pio, mmio;
};

static struct buses *make(void)
{
	struct buses *b = calloc(1, sizeof(*b));

	stops = 0;
	last_status = -1;
	memset(levels, 0, sizeof(levels));
	platform_init(&b->p, stop, NULL, (struct irq_line){ ged_set, NULL, ACPI_GED_GSI });
	bus_init(&b->pio, "pio");
	bus_init(&b->mmio, "mmio");
	assert_int_equal(platform_register(&b->p, &b->pio, &b->mmio), 0);
	return b;
}

static void unmake(struct buses *b)
{
	bus_destroy(&b->pio);
	bus_destroy(&b->mmio);
	platform_destroy(&b->p);
	free(b);
}

static void exit_device_on_port_and_mmio(void **state)
{
	struct buses *b = make();

	put(&b->pio, EXITDEV_PORT, 42);
	assert_int_equal(stops, 1);
	assert_int_equal(last_event, PLATFORM_EXIT);
	assert_int_equal(last_status, 42);
	put(&b->mmio, EXITDEV_MMIO_ADDR, 7);
	assert_int_equal(last_status, 7);
	put(&b->mmio, EXITDEV_MMIO_ADDR + 4, 9); /* only byte 0 is the register */
	assert_int_equal(stops, 2);
	assert_int_equal(get(&b->mmio, EXITDEV_MMIO_ADDR), 0);
	unmake(b);
}

/* The GED's interrupt is edge-triggered (its _CRS says so): one press is one rising edge, and
 * the line is low again for the next. Nothing else happens on the host side. */
static void power_button_is_one_edge(void **state)
{
	struct buses *b = make();

	platform_power_button(&b->p);
	assert_string_equal(levels, "10");
	platform_power_button(&b->p);
	assert_string_equal(levels, "1010");
	assert_int_equal(stops, 0);
	unmake(b);
}

static void reset_and_poweroff_stop_with_zero(void **state)
{
	struct buses *b = make();

	assert_int_equal(get(&b->pio, I8042_CMD), 0); /* no keyboard, never busy */
	put(&b->pio, I8042_CMD, 0xd1);                 /* other commands do nothing */
	assert_int_equal(stops, 0);
	put(&b->pio, I8042_CMD, I8042_RESET);
	assert_int_equal(stops, 1);
	assert_int_equal(last_event, PLATFORM_RESET);
	assert_int_equal(last_status, 0);

	put(&b->pio, ACPI_SLEEP_CTL_PORT, ACPI_S5_SLP_TYP << 2); /* no SLP_EN: nothing */
	put(&b->pio, ACPI_SLEEP_CTL_PORT, 0x20 | (1 << 2));       /* S1 is not supported */
	assert_int_equal(stops, 1);
	put(&b->pio, ACPI_SLEEP_CTL_PORT, 0x20 | (ACPI_S5_SLP_TYP << 2));
	assert_int_equal(stops, 2);
	assert_int_equal(last_event, PLATFORM_POWEROFF);
	assert_int_equal(get(&b->pio, ACPI_SLEEP_STS_PORT), 0);
	put(&b->pio, ACPI_RESET_PORT, 0x01);
	assert_int_equal(stops, 2);
	put(&b->pio, ACPI_RESET_PORT, ACPI_RESET_VALUE);
	assert_int_equal(stops, 3);
	assert_int_equal(last_event, PLATFORM_RESET);
	assert_int_equal(last_status, 0);
	unmake(b);
}

/* pvpanic: the port says which events it takes (Linux keeps only those), a panic is an event,
 * a crash kernel taking over is another, and a write of neither is nothing. */
static void pvpanic_reports_panics(void **state)
{
	struct buses *b = make();

	assert_int_equal(get(&b->pio, PVPANIC_PORT), PVPANIC_PANICKED | PVPANIC_CRASH_LOADED);
	put(&b->pio, PVPANIC_PORT, 0);
	put(&b->pio, PVPANIC_PORT, 0x04);
	assert_int_equal(stops, 0);
	put(&b->pio, PVPANIC_PORT, PVPANIC_CRASH_LOADED);
	assert_int_equal(stops, 1);
	assert_int_equal(last_event, PLATFORM_CRASH_LOADED);
	put(&b->pio, PVPANIC_PORT, PVPANIC_PANICKED);
	assert_int_equal(stops, 2);
	assert_int_equal(last_event, PLATFORM_PANIC);
	unmake(b);
}

/* The handler arm64's MMIO page shares: only byte 0 is the register. */
static void pvpanic_is_byte_zero(void **state)
{
	struct platform_sink sink = { stop, NULL };
	uint8_t v[4] = { 0xee, 0xee, 0xee, 0xee };

	stops = 0;
	platform_pvpanic_io(&sink, 0, v, 4, false);
	assert_memory_equal(v, ((uint8_t[]){ PVPANIC_PANICKED | PVPANIC_CRASH_LOADED, 0, 0, 0 }), 4);
	platform_pvpanic_io(&sink, 1, v, 1, false);
	assert_int_equal(v[0], 0);
	v[0] = PVPANIC_PANICKED;
	platform_pvpanic_io(&sink, 1, v, 1, true);
	assert_int_equal(stops, 0);
	platform_pvpanic_io(&sink, 0, v, 1, true);
	assert_int_equal(stops, 1);
	assert_int_equal(last_event, PLATFORM_PANIC);
}

static uint8_t cmos(struct buses *b, uint8_t reg)
{
	put(&b->pio, CMOS_PORT, reg);
	return get(&b->pio, CMOS_PORT + 1);
}

static int bcd(uint8_t v)
{
	return (v >> 4) * 10 + (v & 0xf);
}

static void rtc_shows_the_host_time(void **state)
{
	struct buses *b = make();
	time_t before = time(NULL), after;
	struct tm tm, rtc = { 0 };

	assert_int_equal(cmos(b, 0x0a) & 0x80, 0); /* never "update in progress" */
	assert_int_equal(cmos(b, 0x0b), 0x02);      /* 24-hour, BCD */
	assert_int_equal(cmos(b, 0x0d), 0x80);      /* the battery is good */
	rtc.tm_sec = bcd(cmos(b, 0x00));
	rtc.tm_min = bcd(cmos(b, 0x02));
	rtc.tm_hour = bcd(cmos(b, 0x04));
	rtc.tm_mday = bcd(cmos(b, 0x07));
	rtc.tm_mon = bcd(cmos(b, 0x08)) - 1;
	rtc.tm_year = bcd(cmos(b, 0x32)) * 100 + bcd(cmos(b, 0x09)) - 1900;
	after = time(NULL);
	gmtime_r(&before, &tm);
	time_t t = timegm(&rtc);
	assert_true(t >= before - 1 && t <= after + 1);

	put(&b->pio, CMOS_PORT, 0x0b); /* binary mode */
	put(&b->pio, CMOS_PORT + 1, 0x06);
	gmtime_r(&after, &tm);
	assert_int_equal(cmos(b, 0x09), tm.tm_year % 100);
	put(&b->pio, CMOS_PORT, 0x40); /* ordinary CMOS RAM keeps what is written */
	put(&b->pio, CMOS_PORT + 1, 0x77);
	assert_int_equal(cmos(b, 0x40), 0x77);
	put(&b->pio, CMOS_PORT, 0x0d); /* D is read-only */
	put(&b->pio, CMOS_PORT + 1, 0x00);
	assert_int_equal(cmos(b, 0x0d), 0x80);
	unmake(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(exit_device_on_port_and_mmio),
		cmocka_unit_test(reset_and_poweroff_stop_with_zero),
		cmocka_unit_test(power_button_is_one_edge),
		cmocka_unit_test(pvpanic_reports_panics),
		cmocka_unit_test(pvpanic_is_byte_zero),
		cmocka_unit_test(rtc_shows_the_host_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
