/* Memory for the firmware: the few string functions the compiler may call on its own, and one
 * arena that rings and buffers come from. */
#ifndef FW_MEM_H
#define FW_MEM_H

#include <stddef.h>
#include <stdint.h>

void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

/* size zeroed bytes aligned to align (a power of 2), or NULL when the arena is used up. Never
 * freed one by one: mem_release() gives back all that came after a mem_mark(). */
void *mem_alloc(size_t size, size_t align);
size_t mem_mark(void);
void mem_release(size_t mark);

#endif
