/* The PL061 GPIO controller (arm64's power button) through its registers, as Linux's gpio-pl061
 * and gpio-keys drive it: data masking, directions, each interrupt sense, the line, and a key
 * press seen through to its release. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "arch/arm64/pl061.h"

#define DIR   0x400
#define IS    0x404
#define IBE   0x408
#define IEV   0x40c
#define IE    0x410
#define RIS   0x414
#define MIS   0x418
#define IC    0x41c
#define AFSEL 0x420
#define PIN   3
#define BIT   (1u << PIN)

static int line = -1, sets; /* the line's level as last set, and how many times it was set */

static void line_set(void *opaque, uint32_t gsi, int level)
{
	assert_int_equal(gsi, 7);
	line = level;
	sets++;
}

static struct pl061 g;

static int setup(void **state)
{
	line = -1;
	sets = 0;
	pl061_init(&g, (struct irq_line){ line_set, NULL, 7 });
	return 0;
}

static int teardown(void **state)
{
	pl061_destroy(&g);
	return 0;
}

static void put(uint64_t offset, uint8_t v)
{
	pl061_io(&g, offset, &v, 1, true);
}

static uint8_t get(uint64_t offset)
{
	uint8_t v = 0xee;

	pl061_io(&g, offset, &v, 1, false);
	return v;
}

/* The data register of all 8 pins: address bits 9:2 are the mask. */
static uint8_t data(void)
{
	return get(0xff << 2);
}

/* The AMBA bus finds a PL061 by its peripheral ID (0x00041061 under Linux's mask) and the
 * PrimeCell ID. */
static void ids_probe_as_pl061(void **state)
{
	static const uint8_t want[8] = { 0x61, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1 };
	uint32_t periph = 0;

	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(get(0xfe0 + 4 * i), want[i]);
	for (unsigned i = 0; i < 4; i++)
		periph |= (uint32_t)get(0xfe0 + 4 * i) << (8 * i);
	assert_int_equal(periph & 0x000fffff, 0x00041061);
	assert_int_equal(get(IC), 0);   /* write-only */
	assert_int_equal(get(0x500), 0); /* reserved */
}

/* Outputs read back what the guest wrote, through the address mask; inputs show vmm's level. */
static void data_masks_and_directions(void **state)
{
	put(DIR, 0x0f);
	put(0xff << 2, 0xff);
	assert_int_equal(data(), 0x0f); /* pins 4-7 are inputs, low */
	put(0x01 << 2, 0x00);           /* only pin 0 */
	assert_int_equal(data(), 0x0e);
	assert_int_equal(get(0x06 << 2), 0x06); /* pins 1 and 2 only */
	put(DIR, 0x00);
	assert_int_equal(data(), 0x00); /* all inputs now */
	assert_int_equal(get(DIR), 0x00);
	put(AFSEL, 0x55);
	assert_int_equal(get(AFSEL), 0x55);
	assert_int_equal(sets, 0); /* nothing enabled: the line never moved */
}

/* gpio-keys on a PL061: both edges, enabled; the guest's handler reads MIS and clears with IC. */
static void key_press_and_release(void **state)
{
	put(IBE, BIT);
	put(IE, BIT);
	assert_int_equal(sets, 0);

	pl061_press(&g, PIN);
	assert_int_equal(line, 1);
	assert_int_equal(get(RIS), BIT);
	assert_int_equal(get(MIS), BIT);
	put(IC, BIT);
	assert_int_equal(line, 0);
	assert_int_equal(get(RIS), 0);

	/* A second press before the guest has looked is the same press. */
	pl061_press(&g, PIN);
	assert_int_equal(line, 0);
	assert_int_equal(get(RIS), 0);

	/* A read of other pins lets nothing go. */
	assert_int_equal(get(0x01 << 2), 0);
	assert_int_equal(line, 0);

	/* The driver reads the pin: pressed. It goes low at once: the release's edge. */
	assert_int_equal(get(BIT << 2), BIT);
	assert_int_equal(line, 1);
	assert_int_equal(get(MIS), BIT);
	put(IC, BIT);
	assert_int_equal(line, 0);
	assert_int_equal(data(), 0);

	/* And the next press is a press again. */
	pl061_press(&g, PIN);
	assert_int_equal(line, 1);
	assert_int_equal(data(), BIT);
}

/* Edges the sense does not ask for latch nothing; a masked pin's status is raw only. */
static void one_edge_only(void **state)
{
	put(IEV, BIT); /* rising only */
	put(IE, BIT);
	pl061_press(&g, PIN);
	assert_int_equal(line, 1);
	put(IC, BIT);
	assert_int_equal(data(), BIT); /* released: a falling edge, not asked for */
	assert_int_equal(get(RIS), 0);
	assert_int_equal(line, 0);

	put(IEV, 0); /* falling only */
	pl061_press(&g, PIN);
	assert_int_equal(line, 0);
	assert_int_equal(data(), BIT);
	assert_int_equal(line, 1);
	put(IC, BIT);

	put(IE, 0); /* masked: the status latches, the line stays low */
	pl061_press(&g, PIN);
	assert_int_equal(data(), BIT); /* released: the falling edge asked for */
	assert_int_equal(line, 0);
	assert_int_equal(get(RIS), BIT);
	assert_int_equal(get(MIS), 0);
	put(IE, BIT); /* unmasked: the latched edge raises it */
	assert_int_equal(line, 1);
}

/* A level-sensitive pin is pending while its level holds, whatever IC says. */
static void level_sense(void **state)
{
	put(IS, BIT);
	put(IEV, BIT); /* high level */
	put(IE, BIT);
	assert_int_equal(line, -1); /* low: never set */
	pl061_press(&g, PIN);
	assert_int_equal(line, 1);
	put(IC, BIT);
	assert_int_equal(line, 1); /* still high */
	assert_int_equal(data(), BIT);
	assert_int_equal(line, 0); /* released */
	put(IEV, 0);               /* low level: pending now */
	assert_int_equal(line, 1);
	assert_int_equal(get(RIS), BIT);
}

/* Output pins the guest drives raise their interrupts too; unaligned and wide accesses. */
static void outputs_and_odd_accesses(void **state)
{
	uint8_t wide[4] = { 0xaa, 0xbb, 0xcc, 0xdd };

	put(DIR, 0x01);
	put(IEV, 0x01);
	put(IE, 0x01);
	put(0x01 << 2, 0x01);
	assert_int_equal(line, 1);
	put(IC, 0x01);
	assert_int_equal(line, 0);

	pl061_io(&g, DIR + 1, wide, 1, true); /* unaligned: ignored */
	assert_int_equal(get(DIR), 0x01);
	assert_int_equal(get(DIR + 2), 0);
	pl061_io(&g, DIR, wide, 4, false); /* wide: the register in the first byte */
	assert_memory_equal(wide, ((uint8_t[]){ 0x01, 0, 0, 0 }), 4);
	pl061_io(&g, 0x1000, wide, 1, false); /* past the page */
	assert_int_equal(wide[0], 0);
	pl061_press(&g, PIN + 8); /* pin numbers wrap within the 8 */
	assert_int_equal(data() & BIT, BIT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(ids_probe_as_pl061, setup, teardown),
		cmocka_unit_test_setup_teardown(data_masks_and_directions, setup, teardown),
		cmocka_unit_test_setup_teardown(key_press_and_release, setup, teardown),
		cmocka_unit_test_setup_teardown(one_edge_only, setup, teardown),
		cmocka_unit_test_setup_teardown(level_sense, setup, teardown),
		cmocka_unit_test_setup_teardown(outputs_and_odd_accesses, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
