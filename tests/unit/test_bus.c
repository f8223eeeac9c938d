/* The buses: registration, overlap rejection, routing with offsets, and unowned accesses. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "bus/bus.h"

struct seen {
	uint64_t offset;
	uint32_t len;
	bool is_write;
	uint8_t value;
	int calls;
};

static void record(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct seen *s = opaque;

	s->offset = offset;
	s->len = len;
	s->is_write = is_write;
	s->calls++;
	if (is_write)
		s->value = data[0];
	else
		memset(data, 0x5a, len);
}

static void overlaps_are_rejected(void **state)
{
	struct bus b;
	struct seen s = { 0 };

	bus_init(&b, "test");
	assert_int_equal(bus_register(&b, 0x100, 0x10, record, &s, "a"), 0);
	assert_int_equal(bus_register(&b, 0x10f, 1, record, &s, "tail"), -EBUSY);
	assert_int_equal(bus_register(&b, 0xf8, 0x9, record, &s, "head"), -EBUSY);
	assert_int_equal(bus_register(&b, 0x0, 0x1000, record, &s, "cover"), -EBUSY);
	assert_int_equal(bus_register(&b, 0x104, 2, record, &s, "inside"), -EBUSY);
	assert_int_equal(bus_register(&b, 0xf0, 0x10, record, &s, "before"), 0);
	assert_int_equal(bus_register(&b, 0x110, 0x10, record, &s, "after"), 0);
	assert_int_equal(bus_register(&b, 0x200, 0, record, &s, "empty"), -EINVAL);
	assert_int_equal(bus_register(&b, UINT64_MAX - 1, 4, record, &s, "wraps"), -EINVAL);
	assert_int_equal(b.nr, 3);
	assert_int_equal(bus_unregister(&b, 0x100), 0);
	assert_int_equal(bus_unregister(&b, 0x100), -ENOENT);
	assert_int_equal(bus_register(&b, 0x108, 4, record, &s, "reuse"), 0);
	bus_destroy(&b);
}

static void accesses_reach_the_owner_with_offsets(void **state)
{
	struct bus b;
	struct seen lo = { 0 }, hi = { 0 };
	uint8_t data[4] = { 0x42 };

	bus_init(&b, "test");
	assert_int_equal(bus_register(&b, 0x3f8, 8, record, &lo, "uart"), 0);
	assert_int_equal(bus_register(&b, 0x1000, 0x100, record, &hi, "big"), 0);
	assert_true(bus_access(&b, 0x3fd, data, 1, true));
	assert_int_equal(lo.calls, 1);
	assert_int_equal(lo.offset, 5);
	assert_int_equal(lo.value, 0x42);
	assert_true(bus_access(&b, 0x10fc, data, 4, false));
	assert_int_equal(hi.offset, 0xfc);
	assert_int_equal(hi.len, 4);
	assert_memory_equal(data, "\x5a\x5a\x5a\x5a", 4);
	assert_int_equal(lo.calls + hi.calls, 2);
	bus_destroy(&b);
}

static void unowned_reads_all_ones_and_drops_writes(void **state)
{
	struct bus b;
	struct seen s = { 0 };
	uint8_t data[4] = { 1, 2, 3, 4 };

	bus_init(&b, "test");
	assert_int_equal(bus_register(&b, 0x100, 4, record, &s, "a"), 0);
	assert_false(bus_access(&b, 0x200, data, 4, false));
	assert_memory_equal(data, "\xff\xff\xff\xff", 4);
	assert_false(bus_access(&b, 0x200, data, 4, true));
	/* An access that straddles the end of a range belongs to nobody. */
	assert_false(bus_access(&b, 0x102, data, 4, false));
	assert_memory_equal(data, "\xff\xff\xff\xff", 4);
	assert_int_equal(s.calls, 0);
	bus_destroy(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(overlaps_are_rejected),
		cmocka_unit_test(accesses_reach_the_owner_with_offsets),
		cmocka_unit_test(unowned_reads_all_ones_and_drops_writes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
