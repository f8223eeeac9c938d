/* What the libFuzzer targets share: little-endian fields from the input, and a check that traps
 * (the fuzzer reports a trap as a crash, with the input that caused it). */
#ifndef VMM_FUZZ_H
#define VMM_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline uint32_t le(const uint8_t *p, int n)
{
	uint32_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static inline void check(bool ok)
{
	if (!ok)
		__builtin_trap();
}

#endif
