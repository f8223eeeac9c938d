#include "memory.h"
#include "arch.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

/* Guest RAM starts on a 2 MiB boundary and asks for transparent huge pages, as QEMU's does: then
 * the host can back it with 2 MiB pages and KVM map those whole (EPT/NPT entries, or shadow pages
 * when nested), which saves TLB misses and faults. Nested, a boot of bench/net.sh's guest took
 * 9% fewer page-fault exits (docs/architecture.md). Without THP (`never`) it is plain memory. */
#define GMEM_ALIGN (2ULL << 20)

int gmem_init(struct guest_mem *m, uint64_t ram_size)
{
	uint64_t below = MEM_HOLE_START - RAM_BASE; /* RAM that fits below the hole */
	uint64_t low = ram_size < below ? ram_size : below, head;
	uint8_t *p;

	memset(m, 0, sizeof(*m));
	if (ram_size == 0 || (ram_size & 4095) || ram_size > UINT64_MAX - GMEM_ALIGN)
		return -EINVAL;
	p = mmap(NULL, ram_size + GMEM_ALIGN, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	/* Keep the aligned ram_size bytes; give back what is before and after them. */
	head = -(uintptr_t)p & (GMEM_ALIGN - 1);
	if (head)
		munmap(p, head);
	p += head;
	munmap(p + ram_size, GMEM_ALIGN - head);
	madvise(p, ram_size, MADV_HUGEPAGE); /* a hint: fails only where THP is not built in */
	m->mapping = p;
	m->ram_size = ram_size;
	m->r[m->nr++] = (struct gmem_region){ .gpa = RAM_BASE, .size = low, .host = p };
	if (ram_size > low)
		m->r[m->nr++] = (struct gmem_region){
			.gpa = MEM_HOLE_END, .size = ram_size - low, .host = (uint8_t *)p + low
		};
	return 0;
}

void gmem_clear(struct guest_mem *m)
{
	/* A private anonymous mapping: discarded pages come back as zeros. */
	if (m->mapping)
		madvise(m->mapping, m->ram_size, MADV_DONTNEED);
}

void gmem_free(struct guest_mem *m)
{
	if (m->mapping)
		munmap(m->mapping, m->ram_size);
	memset(m, 0, sizeof(*m));
}

void *gmem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	if (len == 0)
		len = 1;
	for (int i = 0; i < m->nr; i++) {
		const struct gmem_region *r = &m->r[i];
		/* Written so that no sum can wrap: gpa - r->gpa is in range once gpa >= r->gpa. */
		if (gpa >= r->gpa && gpa - r->gpa < r->size && len <= r->size - (gpa - r->gpa))
			return r->host + (gpa - r->gpa);
	}
	return NULL;
}

uint64_t gmem_low_end(const struct guest_mem *m)
{
	return m->nr ? m->r[0].gpa + m->r[0].size : 0;
}
