/* Guest physical memory: the map of RAM regions and the only way from a guest address to a host
 * pointer. Every translation carries a length and fails unless the whole range is inside one region. */
#ifndef VMM_MEMORY_H
#define VMM_MEMORY_H

#include <stdint.h>

#define GMEM_MAX_REGIONS 2

struct gmem_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *host;
};

struct guest_mem {
	struct gmem_region r[GMEM_MAX_REGIONS];
	int nr;
	uint64_t ram_size; /* total RAM, sum of the regions */
	void *mapping;     /* one host mapping backs all regions */
};

/* Maps ram_size bytes (MAP_NORESERVE, 2 MiB-aligned, huge pages advised: memory.c) and lays them
 * out from the architecture's RAM_BASE, below and above its hole (MEM_HOLE_START, _END).
 * ram_size: whole 4 KiB pages, as KVM maps them. 0 or -errno. */
int gmem_init(struct guest_mem *m, uint64_t ram_size);
void gmem_free(struct guest_mem *m);
/* Host pointer for [gpa, gpa + len), or NULL unless the range lies wholly inside one region.
 * len 0 is treated as 1 so that a bare address is checked too. */
void *gmem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len);
/* Gives all of guest RAM back to the host: it reads as zeros again (a restart). */
void gmem_clear(struct guest_mem *m);
/* Highest RAM address below the hole, plus one. */
uint64_t gmem_low_end(const struct guest_mem *m);

#endif
