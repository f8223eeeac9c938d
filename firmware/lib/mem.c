#include "lib/mem.h"

/* The string instructions: short, and no loop that the compiler could turn back into a call to
 * the very function it is in. */
void *memset(void *dst, int c, size_t n)
{
	void *d = dst;

	__asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
	return dst;
}

void *memcpy(void *dst, const void *src, size_t n)
{
	void *d = dst;

	__asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;

	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

/* 1 MiB in .bss (vmm's ELF loader zeroes it): the rings of a few devices, their indirect tables
 * and the test's buffers need a fraction of it. */
static uint8_t arena[1 << 20] __attribute__((aligned(4096)));
static size_t arena_used;

void *mem_alloc(size_t size, size_t align)
{
	size_t start = (arena_used + align - 1) & ~(align - 1);

	if (start > sizeof(arena) || size > sizeof(arena) - start)
		return NULL;
	arena_used = start + size;
	/* Zeroed every time: memory given back by mem_release() holds old rings. */
	return memset(arena + start, 0, size);
}

size_t mem_mark(void)
{
	return arena_used;
}

void mem_release(size_t mark)
{
	arena_used = mark;
}
