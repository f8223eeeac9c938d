/* Address-space routing: one bus for port I/O, one for MMIO. A device claims [base, base + len) and
 * gets every access inside it, with the offset from base. */
#ifndef VMM_BUS_H
#define VMM_BUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Called on a vCPU thread. For reads, fill data[0..len); for writes, data holds the value. */
typedef void (*bus_io_fn)(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

struct bus_range {
	uint64_t base, len;
	bus_io_fn fn;
	void *opaque;
	const char *name;
};

struct bus {
	const char *name;
	pthread_rwlock_t lock;
	struct bus_range *ranges; /* sorted by base, never overlapping */
	size_t nr, cap;
};

void bus_init(struct bus *b, const char *name);
void bus_destroy(struct bus *b);
/* 0, -EINVAL for an empty or wrapping range, -EBUSY when it overlaps a registered one. */
int bus_register(struct bus *b, uint64_t base, uint64_t len, bus_io_fn fn, void *opaque,
		 const char *name);
/* Removes the range that starts at base: 0 or -ENOENT. */
int bus_unregister(struct bus *b, uint64_t base);
/* Routes an access. Returns false when no single range holds all of [addr, addr + len); a read
 * then sees all-ones and a write is dropped, both done here. */
bool bus_access(struct bus *b, uint64_t addr, uint8_t *data, uint32_t len, bool is_write);

#endif
