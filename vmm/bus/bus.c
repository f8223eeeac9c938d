#include "bus/bus.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void bus_init(struct bus *b, const char *name)
{
	memset(b, 0, sizeof(*b));
	b->name = name;
	pthread_rwlock_init(&b->lock, NULL);
}

void bus_destroy(struct bus *b)
{
	free(b->ranges);
	pthread_rwlock_destroy(&b->lock);
	memset(b, 0, sizeof(*b));
}

/* Index of the first range whose end is above addr (ranges are sorted and disjoint). */
static size_t bus_search(const struct bus *b, uint64_t addr)
{
	size_t lo = 0, hi = b->nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (b->ranges[mid].base + (b->ranges[mid].len - 1) < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int bus_register(struct bus *b, uint64_t base, uint64_t len, bus_io_fn fn, void *opaque,
		 const char *name)
{
	size_t i;
	int ret = 0;

	if (len == 0 || base + (len - 1) < base || !fn)
		return -EINVAL;
	pthread_rwlock_wrlock(&b->lock);
	i = bus_search(b, base);
	if (i < b->nr && b->ranges[i].base <= base + (len - 1)) {
		ret = -EBUSY;
		goto out;
	}
	if (b->nr == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		struct bus_range *r = realloc(b->ranges, cap * sizeof(*r));
		if (!r) {
			ret = -ENOMEM;
			goto out;
		}
		b->ranges = r;
		b->cap = cap;
	}
	memmove(&b->ranges[i + 1], &b->ranges[i], (b->nr - i) * sizeof(b->ranges[0]));
	b->ranges[i] = (struct bus_range){ base, len, fn, opaque, name };
	b->nr++;
out:
	pthread_rwlock_unlock(&b->lock);
	return ret;
}

int bus_unregister(struct bus *b, uint64_t base)
{
	size_t i;
	int ret = -ENOENT;

	pthread_rwlock_wrlock(&b->lock);
	i = bus_search(b, base);
	if (i < b->nr && b->ranges[i].base == base) {
		memmove(&b->ranges[i], &b->ranges[i + 1], (b->nr - i - 1) * sizeof(b->ranges[0]));
		b->nr--;
		ret = 0;
	}
	pthread_rwlock_unlock(&b->lock);
	return ret;
}

bool bus_access(struct bus *b, uint64_t addr, uint8_t *data, uint32_t len, bool is_write)
{
	struct bus_range r = { 0 };
	size_t i;

	/* The range is copied out and the lock dropped before the handler runs, so that a handler
	 * may move ranges on its own bus (a PCI BAR write through ECAM moves a memory BAR). This is
	 * safe because devices live until the vCPUs have stopped: a handler can be called a last
	 * time just after its range was unregistered, and must cope (pci.c checks the BAR). */
	pthread_rwlock_rdlock(&b->lock);
	i = bus_search(b, addr);
	if (i < b->nr && b->ranges[i].base <= addr && len &&
	    addr - b->ranges[i].base + len <= b->ranges[i].len)
		r = b->ranges[i];
	pthread_rwlock_unlock(&b->lock);
	if (r.fn) {
		r.fn(r.opaque, addr - r.base, data, len, is_write);
		return true;
	}
	log_debug("%s: unhandled %s of %u bytes at %#llx", b->name, is_write ? "write" : "read", len,
		  (unsigned long long)addr);
	if (!is_write)
		memset(data, 0xff, len);
	return false;
}
