/* What the libFuzzer targets share: little-endian fields from the input, and a check that traps
 * (the fuzzer reports a trap as a crash, with the input that caused it). */
#ifndef VMM_FUZZ_H
#define VMM_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "memory.h"

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

/* The input after its hdr-byte header as guest RAM from address 0: a heap copy of exactly that
 * size, so ASan sees any access past it. NULL when there is none; the caller frees it. */
static inline uint8_t *fuzz_ram(struct guest_mem *mem, const uint8_t *data, size_t size,
				size_t hdr)
{
	uint8_t *ram;

	if (size <= hdr || !(ram = malloc(size - hdr)))
		return NULL;
	memcpy(ram, data + hdr, size - hdr);
	*mem = (struct guest_mem){ .nr = 1, .ram_size = size - hdr };
	mem->r[0] = (struct gmem_region){ .gpa = 0, .size = size - hdr, .host = ram };
	return ram;
}

#endif
