/* Guest memory: layout from the architecture's RAM_BASE around its hole (x86's 32-bit hole; arm64
 * has none) and the bounds of every translation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "arch.h"
#include "memory.h"

static void small_ram_is_one_region(void **state)
{
	struct guest_mem m;

	assert_int_equal(gmem_init(&m, 64 << 20), 0);
	assert_int_equal(m.nr, 1);
	assert_int_equal(m.r[0].gpa, RAM_BASE);
	assert_int_equal(gmem_low_end(&m), RAM_BASE + (64 << 20));
	assert_non_null(gmem_ptr(&m, RAM_BASE, 64 << 20));
	assert_ptr_equal(gmem_ptr(&m, RAM_BASE + 0x1000, 8), m.r[0].host + 0x1000);
	assert_null(gmem_ptr(&m, RAM_BASE + (64 << 20) - 4, 8)); /* straddles the end */
	assert_null(gmem_ptr(&m, RAM_BASE + (64 << 20), 0));     /* a bare address past the end */
	if (RAM_BASE)
		assert_null(gmem_ptr(&m, RAM_BASE - 8, 8)); /* below RAM */
	assert_null(gmem_ptr(&m, UINT64_MAX - 2, 8));  /* wraps */
	assert_null(gmem_ptr(&m, 16, UINT64_MAX));
	gmem_free(&m);
}

/* RAM starts on a 2 MiB boundary (for huge pages), whatever its size, and all of it is usable. */
static void ram_is_2m_aligned(void **state)
{
	static const uint64_t sizes[] = { 64 << 20, (64 << 20) + 4096, 4096 };

	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct guest_mem m;
		uint8_t *p;

		assert_int_equal(gmem_init(&m, sizes[i]), 0);
		assert_int_equal((uintptr_t)m.mapping & ((2 << 20) - 1), 0);
		p = gmem_ptr(&m, RAM_BASE, sizes[i]);
		assert_ptr_equal(p, m.mapping);
		p[0] = 1;
		p[sizes[i] - 1] = 2;
		assert_int_equal(p[0] + p[sizes[i] - 1], 3);
		gmem_free(&m);
	}
}

/* Past the hole's start, RAM goes on above it; with no hole (arm64) it is one region. */
static void large_ram_skips_the_hole(void **state)
{
	struct guest_mem m;
	uint64_t size = 5ULL << 30;

	assert_int_equal(gmem_init(&m, size), 0);
	if (MEM_HOLE_START == UINT64_MAX) {
		assert_int_equal(m.nr, 1);
		assert_int_equal(gmem_low_end(&m), RAM_BASE + size);
		assert_non_null(gmem_ptr(&m, RAM_BASE + size - 8, 8));
		assert_null(gmem_ptr(&m, RAM_BASE + size - 8, 9));
		gmem_free(&m);
		return;
	}
	assert_int_equal(m.nr, 2);
	assert_int_equal(gmem_low_end(&m), MEM_HOLE_START);
	assert_int_equal(m.r[1].gpa, MEM_HOLE_END);
	assert_int_equal(m.r[0].size + m.r[1].size, size);
	assert_null(gmem_ptr(&m, MEM_HOLE_START, 1));
	assert_null(gmem_ptr(&m, MEM_HOLE_START - 4, 8)); /* no range spans two regions */
	assert_ptr_equal(gmem_ptr(&m, MEM_HOLE_END, 4096), m.r[1].host);
	assert_non_null(gmem_ptr(&m, MEM_HOLE_END + m.r[1].size - 8, 8));
	assert_null(gmem_ptr(&m, MEM_HOLE_END + m.r[1].size - 8, 9));
	gmem_free(&m);
}

static void bad_sizes_are_rejected(void **state)
{
	struct guest_mem m;

	assert_int_equal(gmem_init(&m, 0), -22);
	assert_int_equal(gmem_init(&m, (1 << 20) + 1), -22); /* not whole pages */
	assert_int_equal(gmem_init(&m, UINT64_MAX - 4095), -22);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(small_ram_is_one_region),
		cmocka_unit_test(ram_is_2m_aligned),
		cmocka_unit_test(large_ram_skips_the_hole),
		cmocka_unit_test(bad_sizes_are_rejected),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
