#include "bus/pci.h"
#include "arch.h"
#include "log.h"
#include "vm.h"

#include <errno.h>
#include <string.h>

#define PCI_CONFIG_ENABLE 0x80000000u
/* 0xcf8 bits that exist: enable, bus, device, function, dword register. */
#define PCI_CONFIG_ADDR_MASK 0x80fffffcu

static bool overlaps(uint32_t a, uint32_t alen, uint32_t b, uint32_t blen)
{
	return a < b + blen && b < a + alen;
}

static uint64_t pow2_at_least(uint64_t v)
{
	uint64_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

void pci_dev_init(struct pci_dev *d, const char *name, uint16_t vendor, uint16_t device,
		  uint32_t class_code, uint8_t revision, void *opaque)
{
	memset(d, 0, sizeof(*d));
	d->name = name;
	d->opaque = opaque;
	for (unsigned i = 0; i < PCI_NR_BARS; i++)
		d->bar[i].mapped = PCI_BAR_UNMAPPED;
	pci_put16(d->cfg + PCI_VENDOR_ID, vendor);
	pci_put16(d->cfg + PCI_DEVICE_ID, device);
	d->cfg[PCI_REVISION_ID] = revision;
	d->cfg[PCI_CLASS_PROG] = (uint8_t)class_code;
	d->cfg[PCI_CLASS_PROG + 1] = (uint8_t)(class_code >> 8);
	d->cfg[PCI_CLASS_PROG + 2] = (uint8_t)(class_code >> 16);
	d->cfg[PCI_INTERRUPT_PIN] = 1;
	pci_put16(d->wmask + PCI_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
						  PCI_COMMAND_PARITY | PCI_COMMAND_SERR |
						  PCI_COMMAND_INTX_DISABLE);
	d->wmask[PCI_CACHE_LINE_SIZE] = 0xff;
	d->wmask[PCI_INTERRUPT_LINE] = 0xff;
	d->cap_free = PCI_CAP_START;
}

int pci_dev_set_bar(struct pci_dev *d, unsigned n, enum pci_bar_type type, uint64_t size,
		    bus_io_fn fn, void *opaque)
{
	uint8_t *reg, *mask;
	struct pci_bar *b;

	if (n >= PCI_NR_BARS || !fn || size == 0 || (type == PCI_BAR_MEM64 && n + 1 >= PCI_NR_BARS))
		return -EINVAL;
	reg = d->cfg + PCI_BASE_ADDRESS_0 + 4 * n;
	mask = d->wmask + PCI_BASE_ADDRESS_0 + 4 * n;
	b = &d->bar[n];
	switch (type) {
	case PCI_BAR_IO:
		/* x86 ports are 16 bits: 256 bytes is the most an I/O BAR may decode. */
		size = pow2_at_least(size < 4 ? 4 : size);
		if (size > 256)
			return -EINVAL;
		pci_put32(reg, PCI_BAR_IO_FLAG);
		pci_put32(mask, (uint32_t)~(size - 1) & ~3u);
		break;
	case PCI_BAR_MEM32:
		size = pow2_at_least(size < 16 ? 16 : size);
		if (size > 0x80000000ULL)
			return -EINVAL;
		pci_put32(reg, 0);
		pci_put32(mask, (uint32_t)~(size - 1) & ~0xfu);
		break;
	case PCI_BAR_MEM64:
		size = pow2_at_least(size < 16 ? 16 : size);
		pci_put32(reg, PCI_BAR_MEM64_FLAG);
		pci_put32(mask, (uint32_t)~(size - 1) & ~0xfu);
		pci_put32(reg + 4, 0);
		pci_put32(mask + 4, (uint32_t)(~(size - 1) >> 32));
		break;
	default:
		return -EINVAL;
	}
	b->type = type;
	b->size = size;
	b->fn = fn;
	b->opaque = opaque;
	return 0;
}

int pci_cap_add(struct pci_dev *d, const void *cap, uint8_t len)
{
	unsigned off = (d->cap_free + 3u) & ~3u;

	if (len < 2 || off + len > PCI_CFG_SIZE)
		return -ENOSPC;
	memcpy(d->cfg + off, cap, len);
	d->cfg[off + 1] = 0;
	if (d->cap_last)
		d->cfg[d->cap_last + 1] = (uint8_t)off;
	else
		d->cfg[PCI_CAPABILITY_LIST] = (uint8_t)off;
	d->cfg[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
	d->cap_last = (uint8_t)off;
	d->cap_free = (uint8_t)(off + len);
	return (int)off;
}

/* The address the guest programmed into BAR n (both halves of a 64-bit one). */
static uint64_t pci_bar_addr(const struct pci_dev *d, unsigned n)
{
	const uint8_t *reg = d->cfg + PCI_BASE_ADDRESS_0 + 4 * n;

	switch (d->bar[n].type) {
	case PCI_BAR_IO:
		return pci_get32(reg) & ~3u;
	case PCI_BAR_MEM32:
		return pci_get32(reg) & ~0xfu;
	case PCI_BAR_MEM64:
		return (pci_get32(reg) & ~0xfu) | (uint64_t)pci_get32(reg + 4) << 32;
	default:
		return 0;
	}
}

/* Address 0 is what an unassigned BAR holds; sizing leaves an I/O BAR beyond 16 bits. */
static bool pci_bar_addr_ok(const struct pci_bar *b, uint64_t addr)
{
	if (addr == 0 || addr + (b->size - 1) < addr)
		return false;
	return b->type != PCI_BAR_IO || addr + b->size <= 0x10000;
}

/* Puts BAR n where the registers and the command word say, if that changed. Host lock held. */
static void pci_bar_update(struct pci_dev *d, unsigned n)
{
	struct pci_bar *b = &d->bar[n];
	bool io = b->type == PCI_BAR_IO;
	struct bus *bus;
	uint16_t cmd = pci_get16(d->cfg + PCI_COMMAND);
	uint64_t addr = pci_bar_addr(d, n), want = PCI_BAR_UNMAPPED, old = b->mapped;
	int ret;

	if (b->type == PCI_BAR_NONE || !d->host)
		return;
	bus = io ? &d->host->vm->pio : &d->host->vm->mmio;
	if ((cmd & (io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY)) && pci_bar_addr_ok(b, addr))
		want = addr;
	if (want == old)
		return;
	/* A vCPU may still be in the handler for the old range (bus.c drops its lock before the
	 * call): harmless, its offset is inside the BAR and the device outlives the vCPUs. */
	if (old != PCI_BAR_UNMAPPED)
		bus_unregister(bus, old);
	b->mapped = PCI_BAR_UNMAPPED;
	if (want != PCI_BAR_UNMAPPED) {
		/* Overlaps are the guest's mistake: the BAR then decodes nothing until it moves. */
		ret = bus_register(bus, want, b->size, b->fn, b->opaque, d->name);
		if (ret)
			log_debug("pci %s: BAR%u at %#llx not mapped: %s", d->name, n,
				  (unsigned long long)want, strerror(-ret));
		else
			b->mapped = want;
	}
	if (b->mapped != old && d->bar_moved)
		d->bar_moved(d, n, old, b->mapped);
}

static void pci_dev_config(struct pci_dev *d, uint32_t reg, uint8_t *data, uint32_t len,
			   bool is_write)
{
	uint32_t n = reg < PCI_CFG_SIZE ? PCI_CFG_SIZE - reg : 0;

	if (n > len)
		n = len;
	if (!is_write) {
		if (n && d->cfg_read)
			d->cfg_read(d, reg, n);
		if (n) /* past the 256 bytes, not even a pointer into them may be formed */
			memcpy(data, d->cfg + reg, n);
		memset(data + n, 0, len - n);
		return;
	}
	if (!n)
		return;
	for (uint32_t i = 0; i < n; i++) {
		uint8_t m = d->wmask[reg + i];

		d->cfg[reg + i] = (uint8_t)((d->cfg[reg + i] & ~m) | (data[i] & m));
	}
	if (overlaps(reg, n, PCI_COMMAND, 2) ||
	    overlaps(reg, n, PCI_BASE_ADDRESS_0, 4 * PCI_NR_BARS))
		for (unsigned i = 0; i < PCI_NR_BARS; i++)
			pci_bar_update(d, i);
	if (d->cfg_write)
		d->cfg_write(d, reg, n);
}

static void pci_config_locked(struct pci_host *h, unsigned slot, uint32_t reg, uint8_t *data,
			      uint32_t len, bool is_write)
{
	struct pci_dev *d = slot < PCI_SLOTS ? h->slots[slot] : NULL;

	if (!d || len > 8 || reg + len > PCI_ECAM_FN) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pci_dev_config(d, reg, data, len, is_write);
}

void pci_host_reset(struct pci_host *h)
{
	pthread_mutex_lock(&h->lock);
	for (unsigned slot = 1; slot < PCI_SLOTS; slot++) {
		struct pci_dev *d = h->slots[slot];
		uint8_t *init, cap;

		if (!d)
			continue;
		init = d->cfg_init;
		pci_config_locked(h, slot, PCI_COMMAND, init + PCI_COMMAND, 2, true);
		for (unsigned off = PCI_BASE_ADDRESS_0; off < PCI_BASE_ADDRESS_0 + 4 * PCI_NR_BARS;
		     off += 4)
			pci_config_locked(h, slot, off, init + off, 4, true);
		/* The capability list is the device's own and fixed: walk the initial copy. */
		cap = init[PCI_CAPABILITY_LIST] & ~3;
		for (unsigned n = 0; cap && n < PCI_CFG_SIZE / 4; n++, cap = init[cap + 1] & ~3) {
			if (init[cap] == PCI_CAP_ID_MSIX)
				pci_config_locked(h, slot, cap + 2u, init + cap + 2, 2, true);
		}
	}
	pthread_mutex_unlock(&h->lock);
}

void pci_config_access(struct pci_host *h, unsigned slot, uint32_t reg, uint8_t *data,
		       uint32_t len, bool is_write)
{
	pthread_mutex_lock(&h->lock);
	pci_config_locked(h, slot, reg, data, len, is_write);
	pthread_mutex_unlock(&h->lock);
}

/* Ports 0xcf8-0xcff. Only a dword access at 0xcf8 is the address register (Linux probes type 1
 * by writing a byte to 0xcfb and expecting the dword to survive); 0xcfc-0xcff read or write the
 * selected dword at their byte offset. */
void pci_config_port_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct pci_host *h = opaque;
	uint32_t addr;

	pthread_mutex_lock(&h->lock);
	if (offset < 4) {
		if (offset == 0 && len == 4 && is_write)
			h->config_address = pci_get32(data) & PCI_CONFIG_ADDR_MASK;
		else if (offset == 0 && len == 4)
			pci_put32(data, h->config_address);
		else if (!is_write)
			memset(data, 0xff, len);
		goto out;
	}
	addr = h->config_address;
	/* Bus 0 function 0 only; the bus routes nothing that runs past 0xcff. */
	if (!(addr & PCI_CONFIG_ENABLE) || (addr >> 16 & 0xff) || (addr >> 8 & 7)) {
		if (!is_write)
			memset(data, 0xff, len);
		goto out;
	}
	pci_config_locked(h, addr >> 11 & 31, (addr & 0xfc) + (uint32_t)(offset - 4), data, len,
			  is_write);
out:
	pthread_mutex_unlock(&h->lock);
}

/* ECAM: offset = device << 15 | function << 12 | register, bus 0 only (the range is 1 MiB). */
void pci_ecam_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct pci_host *h = opaque;
	uint32_t reg = offset & (PCI_ECAM_FN - 1);

	if ((offset >> 12 & 7) || offset >= PCI_ECAM_SIZE) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pci_config_access(h, (unsigned)(offset >> 15), reg, data, len, is_write);
}

int pci_host_init(struct pci_host *h, struct vm *vm)
{
	int ret;

	memset(h, 0, sizeof(*h));
	h->vm = vm;
	h->next_mmio = PCI_MMIO_BASE;
	h->next_io = PCI_IO_BASE;
	pthread_mutex_init(&h->lock, NULL);
	pci_dev_init(&h->bridge, "host-bridge", PCI_HOST_VENDOR, PCI_HOST_DEVICE, PCI_HOST_CLASS, 0,
		     h);
	h->bridge.cfg[PCI_INTERRUPT_PIN] = 0;
	h->bridge.wmask[PCI_INTERRUPT_LINE] = 0;
	h->bridge.host = h;
	h->slots[0] = &h->bridge;
	ret = bus_register(&vm->pio, PCI_CONFIG_PORT, 8, pci_config_port_io, h, "pci-config");
	if (ret)
		goto err;
	ret = bus_register(&vm->mmio, PCI_ECAM_BASE, PCI_ECAM_SIZE, pci_ecam_io, h, "pci-ecam");
	if (ret) {
		bus_unregister(&vm->pio, PCI_CONFIG_PORT);
		goto err;
	}
	return 0;
err:
	log_error("pci: cannot claim the configuration mechanisms: %s", strerror(-ret));
	pthread_mutex_destroy(&h->lock);
	return ret;
}

void pci_host_destroy(struct pci_host *h)
{
	if (!h->vm)
		return;
	bus_unregister(&h->vm->pio, PCI_CONFIG_PORT);
	bus_unregister(&h->vm->mmio, PCI_ECAM_BASE);
	pthread_mutex_destroy(&h->lock);
	h->vm = NULL;
}

/* Naturally aligned bump allocation inside a window; BARs are never freed back. */
static int pci_window_alloc(uint64_t *next, uint64_t end, uint64_t size, uint64_t *addr)
{
	uint64_t a = (*next + size - 1) & ~(size - 1);

	if (a < *next || a + size > end)
		return -ENOSPC;
	*addr = a;
	*next = a + size;
	return 0;
}

int pci_dev_add(struct pci_host *h, struct pci_dev *d)
{
	uint16_t cmd = 0;
	unsigned slot;
	int ret = 0;

	pthread_mutex_lock(&h->lock);
	for (slot = 1; slot < PCI_SLOTS && h->slots[slot]; slot++)
		;
	if (slot == PCI_SLOTS) {
		log_error("pci %s: all %u slots are taken", d->name, PCI_SLOTS - 1);
		ret = -ENOSPC;
		goto out;
	}
	for (unsigned i = 0; i < PCI_NR_BARS; i++) {
		struct pci_bar *b = &d->bar[i];
		uint8_t *reg = d->cfg + PCI_BASE_ADDRESS_0 + 4 * i;
		bool io = b->type == PCI_BAR_IO;
		uint64_t addr;

		if (b->type == PCI_BAR_NONE)
			continue;
		if (io)
			ret = pci_window_alloc(&h->next_io, PCI_IO_BASE + PCI_IO_SIZE, b->size,
					       &addr);
		else
			ret = pci_window_alloc(&h->next_mmio, PCI_MMIO_BASE + PCI_MMIO_SIZE,
					       b->size, &addr);
		if (ret) {
			log_error("pci %s: no room for BAR%u (%#llx bytes) in the %s window",
				  d->name, i, (unsigned long long)b->size, io ? "I/O" : "memory");
			goto out;
		}
		pci_put32(reg, (pci_get32(reg) & (io ? 3u : 0xfu)) | (uint32_t)addr);
		if (b->type == PCI_BAR_MEM64)
			pci_put32(reg + 4, (uint32_t)(addr >> 32));
		cmd |= io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY;
	}
	d->slot = slot;
	d->host = h;
	d->cfg[PCI_INTERRUPT_LINE] = (uint8_t)PCI_INTX_GSI(slot, 0);
	/* No firmware runs: decoding is on from the start, as a BIOS would leave it. */
	pci_put16(d->cfg + PCI_COMMAND, pci_get16(d->cfg + PCI_COMMAND) | cmd);
	h->slots[slot] = d;
	memcpy(d->cfg_init, d->cfg, sizeof(d->cfg_init));
	for (unsigned i = 0; i < PCI_NR_BARS; i++) {
		struct pci_bar *b = &d->bar[i];

		pci_bar_update(d, i);
		if (b->type != PCI_BAR_NONE && b->mapped == PCI_BAR_UNMAPPED) {
			log_error("pci %s: BAR%u overlaps another device", d->name, i);
			ret = -EBUSY;
		}
	}
out:
	pthread_mutex_unlock(&h->lock);
	if (ret && d->host)
		pci_dev_remove(h, d);
	return ret;
}

void pci_dev_remove(struct pci_host *h, struct pci_dev *d)
{
	pthread_mutex_lock(&h->lock);
	if (d->host == h && d->slot && h->slots[d->slot] == d) {
		/* Decoding off unmaps every BAR and tells the device, like a guest would. */
		pci_put16(d->cfg + PCI_COMMAND, pci_get16(d->cfg + PCI_COMMAND) &
							 ~(PCI_COMMAND_IO | PCI_COMMAND_MEMORY));
		for (unsigned i = 0; i < PCI_NR_BARS; i++)
			pci_bar_update(d, i);
		h->slots[d->slot] = NULL;
	}
	d->slot = 0;
	d->host = NULL;
	pthread_mutex_unlock(&h->lock);
}
