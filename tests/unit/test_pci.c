/* The PCI host bridge: type 1 and ECAM configuration access, absent functions, byte and word
 * offsets, read-only fields, BAR sizing, placement, relocation and decode control, capabilities. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "arch.h"
#include "bus/pci.h"
#include "vm.h"

struct dummy {
	struct pci_dev pci;
	uint64_t last_offset;
	int calls;
	int moves;
	unsigned moved_bar;
	uint64_t moved_old, moved_new;
};

struct fixture {
	struct vm vm;
	struct pci_host host;
	struct dummy dev, other;
};

static void dummy_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct dummy *d = opaque;

	d->last_offset = offset;
	d->calls++;
	if (!is_write)
		memset(data, 0xa5, len);
}

static void dummy_moved(struct pci_dev *pd, unsigned bar, uint64_t old_addr, uint64_t new_addr)
{
	struct dummy *d = pd->opaque;

	d->moves++;
	d->moved_bar = bar;
	d->moved_old = old_addr;
	d->moved_new = new_addr;
}

/* BAR0 I/O 0x20 bytes, BAR1 mem32 4 KiB, BAR2-3 mem64 16 KiB. */
static void dummy_init(struct dummy *d, const char *name)
{
	pci_dev_init(&d->pci, name, 0x1234, 0x5678, 0xff0000, 7, d);
	d->pci.bar_moved = dummy_moved;
	assert_int_equal(pci_dev_set_bar(&d->pci, 0, PCI_BAR_IO, 0x20, dummy_io, d), 0);
	assert_int_equal(pci_dev_set_bar(&d->pci, 1, PCI_BAR_MEM32, 0x1000, dummy_io, d), 0);
	assert_int_equal(pci_dev_set_bar(&d->pci, 2, PCI_BAR_MEM64, 0x4000, dummy_io, d), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	f->vm.vm_fd = -1;
	f->vm.kvm_fd = -1;
	bus_init(&f->vm.pio, "pio");
	bus_init(&f->vm.mmio, "mmio");
	assert_int_equal(pci_host_init(&f->host, &f->vm), 0);
	dummy_init(&f->dev, "dummy");
	assert_int_equal(pci_dev_add(&f->host, &f->dev.pci), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	pci_dev_remove(&f->host, &f->dev.pci);
	pci_dev_remove(&f->host, &f->other.pci);
	pci_host_destroy(&f->host);
	assert_int_equal(f->vm.pio.nr, 0);
	assert_int_equal(f->vm.mmio.nr, 0);
	bus_destroy(&f->vm.pio);
	bus_destroy(&f->vm.mmio);
	free(f);
	return 0;
}

static uint32_t cf8_value(unsigned bus, unsigned slot, unsigned fn, unsigned reg)
{
	return 0x80000000u | bus << 16 | slot << 11 | fn << 8 | (reg & 0xfc);
}

static void port_select(struct fixture *f, uint32_t addr)
{
	uint8_t b[4];

	pci_put32(b, addr);
	assert_true(bus_access(&f->vm.pio, PCI_CONFIG_PORT, b, 4, true));
}

/* Reads len bytes of register reg through 0xcf8/0xcfc, at the port the byte offset selects. */
static uint32_t port_read(struct fixture *f, unsigned slot, unsigned reg, uint32_t len)
{
	uint8_t b[4] = { 0 };

	port_select(f, cf8_value(0, slot, 0, reg));
	assert_true(bus_access(&f->vm.pio, 0xcfc + (reg & 3), b, len, false));
	return (uint32_t)(pci_get32(b) & (len == 4 ? 0xffffffffu : (1u << (8 * len)) - 1));
}

static void port_write(struct fixture *f, unsigned slot, unsigned reg, uint32_t v, uint32_t len)
{
	uint8_t b[4];

	pci_put32(b, v);
	port_select(f, cf8_value(0, slot, 0, reg));
	assert_true(bus_access(&f->vm.pio, 0xcfc + (reg & 3), b, len, true));
}

static uint64_t ecam_addr(unsigned slot, unsigned fn, unsigned reg)
{
	return PCI_ECAM_BASE + ((uint64_t)slot << 15 | fn << 12 | reg);
}

static uint32_t ecam_read(struct fixture *f, unsigned slot, unsigned fn, unsigned reg,
			  uint32_t len)
{
	uint8_t b[4] = { 0 };

	assert_true(bus_access(&f->vm.mmio, ecam_addr(slot, fn, reg), b, len, false));
	return (uint32_t)(pci_get32(b) & (len == 4 ? 0xffffffffu : (1u << (8 * len)) - 1));
}

static void ecam_write(struct fixture *f, unsigned slot, unsigned reg, uint32_t v, uint32_t len)
{
	uint8_t b[4];

	pci_put32(b, v);
	assert_true(bus_access(&f->vm.mmio, ecam_addr(slot, 0, reg), b, len, true));
}

static void host_bridge_is_in_slot_0(void **state)
{
	struct fixture *f = *state;
	uint32_t ids = PCI_HOST_DEVICE << 16 | PCI_HOST_VENDOR;

	assert_int_equal(port_read(f, 0, PCI_VENDOR_ID, 4), ids);
	assert_int_equal(ecam_read(f, 0, 0, PCI_VENDOR_ID, 4), ids);
	assert_int_equal(port_read(f, 0, 0x08, 4) >> 8, PCI_HOST_CLASS);
	assert_int_equal(ecam_read(f, 0, 0, PCI_HEADER_TYPE, 1), 0);
	/* The device took slot 1, with INTA on its GSI. */
	assert_int_equal(f->dev.pci.slot, 1);
	assert_int_equal(ecam_read(f, 1, 0, PCI_VENDOR_ID, 4), 0x56781234);
	assert_int_equal(port_read(f, 1, PCI_INTERRUPT_PIN, 1), 1);
	assert_int_equal(port_read(f, 1, PCI_INTERRUPT_LINE, 1), PCI_INTX_GSI(1, 0));
	assert_int_equal(ecam_read(f, 1, 0, PCI_CLASS_PROG - 1, 4), 0xff000007);
}

static void absent_functions_read_all_ones(void **state)
{
	struct fixture *f = *state;
	uint8_t b[4];

	assert_int_equal(port_read(f, 5, 0, 4), 0xffffffff);
	assert_int_equal(ecam_read(f, 31, 0, 0, 4), 0xffffffff);
	assert_int_equal(ecam_read(f, 1, 3, 0, 4), 0xffffffff); /* function 3 */
	assert_int_equal(ecam_read(f, 1, 0, 0x100, 4), 0); /* extended space of a present one */
	assert_int_equal(ecam_read(f, 1, 0, 0xffc, 4), 0);
	/* Type 1: another bus, another function, or the enable bit clear. */
	port_select(f, cf8_value(1, 1, 0, 0));
	assert_true(bus_access(&f->vm.pio, 0xcfc, b, 4, false));
	assert_int_equal(pci_get32(b), 0xffffffff);
	port_select(f, cf8_value(0, 1, 2, 0));
	assert_true(bus_access(&f->vm.pio, 0xcfc, b, 4, false));
	assert_int_equal(pci_get32(b), 0xffffffff);
	port_select(f, cf8_value(0, 1, 0, 0) & ~0x80000000u);
	assert_true(bus_access(&f->vm.pio, 0xcfc, b, 4, false));
	assert_int_equal(pci_get32(b), 0xffffffff);
	/* Writes to an absent slot go nowhere and do not disturb the present one. */
	ecam_write(f, 7, PCI_COMMAND, 0, 2);
	assert_int_equal(ecam_read(f, 1, 0, PCI_COMMAND, 2), PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
}

static void address_register_takes_dwords_only(void **state)
{
	struct fixture *f = *state;
	uint8_t b[4];

	port_select(f, cf8_value(0, 1, 0, 0x3c) | 3);
	assert_true(bus_access(&f->vm.pio, PCI_CONFIG_PORT, b, 4, false));
	assert_int_equal(pci_get32(b), cf8_value(0, 1, 0, 0x3c)); /* bits 1:0 read 0 */
	/* Linux's type 1 probe writes a byte at 0xcfb and expects the dword to survive. */
	b[0] = 1;
	assert_true(bus_access(&f->vm.pio, 0xcfb, b, 1, true));
	assert_true(bus_access(&f->vm.pio, PCI_CONFIG_PORT, b, 4, false));
	assert_int_equal(pci_get32(b), cf8_value(0, 1, 0, 0x3c));
}

static void byte_and_word_accesses_use_their_offset(void **state)
{
	struct fixture *f = *state;
	uint8_t b[2];

	assert_int_equal(port_read(f, 1, PCI_DEVICE_ID, 2), 0x5678);
	assert_int_equal(port_read(f, 1, 1, 1), 0x12);
	assert_int_equal(port_read(f, 1, 3, 1), 0x56);
	assert_int_equal(ecam_read(f, 1, 0, 2, 2), 0x5678);
	assert_int_equal(ecam_read(f, 1, 0, 1, 2), 0x7812);
	/* 0xcfd with a word reads bytes 1 and 2 of the selected dword. */
	port_select(f, cf8_value(0, 1, 0, 0));
	assert_true(bus_access(&f->vm.pio, 0xcfd, b, 2, false));
	assert_int_equal(pci_get16(b), 0x7812);
	/* A byte write at 0xcfc + 1 reaches the second byte: the command's high byte. */
	port_write(f, 1, PCI_COMMAND + 1, PCI_COMMAND_INTX_DISABLE >> 8, 1);
	assert_int_equal(ecam_read(f, 1, 0, PCI_COMMAND, 2),
			 PCI_COMMAND_INTX_DISABLE | PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
	port_write(f, 1, PCI_INTERRUPT_LINE, 0x0b, 1);
	assert_int_equal(ecam_read(f, 1, 0, PCI_INTERRUPT_LINE, 1), 0x0b);
}

static void read_only_fields_stay(void **state)
{
	struct fixture *f = *state;

	ecam_write(f, 1, PCI_VENDOR_ID, 0xdeadbeef, 4);
	assert_int_equal(ecam_read(f, 1, 0, PCI_VENDOR_ID, 4), 0x56781234);
	port_write(f, 1, PCI_INTERRUPT_PIN, 4, 1);
	assert_int_equal(port_read(f, 1, PCI_INTERRUPT_PIN, 1), 1);
	port_write(f, 1, 0x08, 0, 4);
	assert_int_equal(port_read(f, 1, 0x08, 4), 0xff000007);
	/* Status: the write-1-to-clear bits are not modelled, writes change nothing. */
	ecam_write(f, 1, PCI_STATUS, 0xffff, 2);
	assert_int_equal(ecam_read(f, 1, 0, PCI_STATUS, 2), 0);
	/* No expansion ROM: sizing it reads back 0. */
	ecam_write(f, 1, 0x30, 0xfffff800, 4);
	assert_int_equal(ecam_read(f, 1, 0, 0x30, 4), 0);
}

static void bars_are_placed_in_the_windows(void **state)
{
	struct fixture *f = *state;
	uint32_t io = port_read(f, 1, PCI_BASE_ADDRESS_0, 4);
	uint32_t m32 = port_read(f, 1, PCI_BASE_ADDRESS_0 + 4, 4);
	uint64_t m64 = port_read(f, 1, PCI_BASE_ADDRESS_0 + 8, 4) |
		       (uint64_t)port_read(f, 1, PCI_BASE_ADDRESS_0 + 12, 4) << 32;

	assert_int_equal(io & 3, PCI_BAR_IO_FLAG);
	assert_true((io & ~3u) >= PCI_IO_BASE && (io & ~3u) + 0x20 <= PCI_IO_BASE + PCI_IO_SIZE);
	assert_int_equal(io & 0x1f & ~3u, 0);
	assert_int_equal(m32 & 0xf, 0);
	assert_true(m32 >= PCI_MMIO_BASE && m32 + 0x1000 <= PCI_MMIO_BASE + PCI_MMIO_SIZE);
	assert_int_equal(m32 & 0xfff, 0);
	assert_int_equal(m64 & 0xf, PCI_BAR_MEM64_FLAG);
	m64 &= ~0xfULL;
	assert_true(m64 >= PCI_MMIO_BASE && m64 + 0x4000 <= PCI_MMIO_BASE + PCI_MMIO_SIZE);
	assert_int_equal(m64 & 0x3fff, 0);
	assert_true(m64 + 0x4000 <= m32 || m32 + 0x1000 <= m64);
	/* Decoding is on, so each BAR answers at its address with the offset inside it. */
	uint8_t b[4];
	assert_true(bus_access(&f->vm.pio, (io & ~3u) + 0x1c, b, 4, false));
	assert_int_equal(f->dev.last_offset, 0x1c);
	assert_true(bus_access(&f->vm.mmio, m64 + 0x3ffc, b, 4, true));
	assert_int_equal(f->dev.last_offset, 0x3ffc);
	assert_true(bus_access(&f->vm.mmio, m32 + 0x10, b, 2, false));
	assert_int_equal(f->dev.last_offset, 0x10);
	assert_int_equal(f->dev.calls, 3);
}

static void bar_sizing_reads_back_the_size_mask(void **state)
{
	struct fixture *f = *state;
	uint32_t io = port_read(f, 1, PCI_BASE_ADDRESS_0, 4);

	/* As Linux sizes: decoding off, all-ones, read back, restore. */
	port_write(f, 1, PCI_COMMAND, 0, 2);
	port_write(f, 1, PCI_BASE_ADDRESS_0, 0xffffffff, 4);
	assert_int_equal(port_read(f, 1, PCI_BASE_ADDRESS_0, 4), 0xffffffe1);
	ecam_write(f, 1, PCI_BASE_ADDRESS_0 + 4, 0xffffffff, 4);
	assert_int_equal(ecam_read(f, 1, 0, PCI_BASE_ADDRESS_0 + 4, 4), 0xfffff000);
	ecam_write(f, 1, PCI_BASE_ADDRESS_0 + 8, 0xffffffff, 4);
	ecam_write(f, 1, PCI_BASE_ADDRESS_0 + 12, 0xffffffff, 4);
	assert_int_equal(ecam_read(f, 1, 0, PCI_BASE_ADDRESS_0 + 8, 4), 0xffffc004);
	assert_int_equal(ecam_read(f, 1, 0, PCI_BASE_ADDRESS_0 + 12, 4), 0xffffffff);
	/* Unused BARs stay 0. */
	ecam_write(f, 1, PCI_BASE_ADDRESS_0 + 16, 0xffffffff, 4);
	assert_int_equal(ecam_read(f, 1, 0, PCI_BASE_ADDRESS_0 + 16, 4), 0);
	port_write(f, 1, PCI_BASE_ADDRESS_0, io, 4);
	assert_int_equal(port_read(f, 1, PCI_BASE_ADDRESS_0, 4), io);
	/* While decoding was off nothing was mapped. */
	assert_int_equal(f->vm.mmio.nr, 1); /* ECAM only */
	assert_int_equal(f->vm.pio.nr, 1);  /* 0xcf8 only */
}

static void moving_a_bar_moves_its_range(void **state)
{
	struct fixture *f = *state;
	uint32_t old = ecam_read(f, 1, 0, PCI_BASE_ADDRESS_0 + 4, 4);
	uint32_t new = (uint32_t)PCI_MMIO_BASE + 0x100000;
	uint8_t b[4];

	f->dev.moves = 0;
	ecam_write(f, 1, PCI_BASE_ADDRESS_0 + 4, new, 4);
	assert_int_equal(f->dev.moves, 1);
	assert_int_equal(f->dev.moved_bar, 1);
	assert_int_equal(f->dev.moved_old, old);
	assert_int_equal(f->dev.moved_new, new);
	assert_false(bus_access(&f->vm.mmio, old + 4, b, 4, false));
	assert_int_equal(pci_get32(b), 0xffffffff);
	assert_true(bus_access(&f->vm.mmio, new + 8, b, 4, false));
	assert_int_equal(f->dev.last_offset, 8);
	assert_int_equal(pci_get32(b), 0xa5a5a5a5);
	/* The same value again moves nothing. */
	ecam_write(f, 1, PCI_BASE_ADDRESS_0 + 4, new, 4);
	assert_int_equal(f->dev.moves, 1);
	/* An I/O BAR through the ports. */
	port_write(f, 1, PCI_BASE_ADDRESS_0, 0x2000, 4);
	assert_int_equal(f->dev.moved_new, 0x2000);
	assert_true(bus_access(&f->vm.pio, 0x2004, b, 1, true));
	assert_int_equal(f->dev.last_offset, 4);
	/* A 64-bit BAR above 4 GiB, one half at a time. */
	ecam_write(f, 1, PCI_BASE_ADDRESS_0 + 12, 0x1, 4);
	assert_int_equal(f->dev.moved_bar, 2);
	assert_int_equal(f->dev.moved_new >> 32, 1);
	assert_true(bus_access(&f->vm.mmio, f->dev.moved_new + 0x20, b, 4, false));
	assert_int_equal(f->dev.last_offset, 0x20);
}

static void decode_off_unmaps(void **state)
{
	struct fixture *f = *state;
	uint32_t m32 = ecam_read(f, 1, 0, PCI_BASE_ADDRESS_0 + 4, 4);
	uint32_t io = ecam_read(f, 1, 0, PCI_BASE_ADDRESS_0, 4) & ~3u;
	uint8_t b[4];

	f->dev.moves = 0;
	ecam_write(f, 1, PCI_COMMAND, PCI_COMMAND_IO, 2);
	assert_int_equal(f->dev.moves, 2); /* both memory BARs */
	assert_int_equal(f->dev.moved_new, PCI_BAR_UNMAPPED);
	assert_false(bus_access(&f->vm.mmio, m32, b, 4, false));
	assert_true(bus_access(&f->vm.pio, io, b, 1, false));
	ecam_write(f, 1, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	assert_int_equal(f->dev.moves, 5); /* the I/O BAR off, both memory BARs back */
	assert_int_equal(f->dev.pci.bar[0].mapped, PCI_BAR_UNMAPPED);
	assert_int_equal(f->dev.pci.bar[1].mapped, m32);
	assert_false(bus_access(&f->vm.pio, io, b, 1, false));
	assert_true(bus_access(&f->vm.mmio, m32, b, 4, false));
}

/* A restart puts the command register and the BARs back where pci_dev_add left them, as the
 * guest's own writes would (the device hears of each move). */
static void reset_puts_bars_and_command_back(void **state)
{
	struct fixture *f = *state;
	uint32_t cmd = ecam_read(f, 1, 0, PCI_COMMAND, 2);
	uint32_t m32 = ecam_read(f, 1, 0, PCI_BASE_ADDRESS_0 + 4, 4);
	uint32_t io = ecam_read(f, 1, 0, PCI_BASE_ADDRESS_0, 4);
	uint8_t b[4];

	ecam_write(f, 1, PCI_BASE_ADDRESS_0 + 4, (uint32_t)PCI_MMIO_BASE + 0x100000, 4);
	port_write(f, 1, PCI_BASE_ADDRESS_0, 0x2000, 4);
	ecam_write(f, 1, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
	pci_host_reset(&f->host);
	assert_int_equal(ecam_read(f, 1, 0, PCI_COMMAND, 2), cmd);
	assert_int_equal(ecam_read(f, 1, 0, PCI_BASE_ADDRESS_0 + 4, 4), m32);
	assert_int_equal(ecam_read(f, 1, 0, PCI_BASE_ADDRESS_0, 4), io);
	assert_int_equal(f->dev.pci.bar[1].mapped, m32);
	assert_true(bus_access(&f->vm.mmio, m32, b, 4, false));
	assert_false(bus_access(&f->vm.mmio, (uint32_t)PCI_MMIO_BASE + 0x100000, b, 4, false));
	assert_true(bus_access(&f->vm.pio, io & ~3u, b, 1, false));
}

static void overlapping_bars_are_not_mapped(void **state)
{
	struct fixture *f = *state;
	uint32_t m32 = ecam_read(f, 1, 0, PCI_BASE_ADDRESS_0 + 4, 4);
	uint8_t b[4];

	dummy_init(&f->other, "other");
	assert_int_equal(pci_dev_add(&f->host, &f->other.pci), 0);
	assert_int_equal(f->other.pci.slot, 2);
	assert_int_equal(ecam_read(f, 2, 0, PCI_INTERRUPT_LINE, 1), PCI_INTX_GSI(2, 0));
	/* Slot 2's mem32 BAR onto slot 1's: refused, slot 1 keeps its range. */
	ecam_write(f, 2, PCI_BASE_ADDRESS_0 + 4, m32, 4);
	assert_int_equal(f->other.moved_new, PCI_BAR_UNMAPPED);
	assert_int_equal(f->other.pci.bar[1].mapped, PCI_BAR_UNMAPPED);
	f->dev.calls = 0;
	assert_true(bus_access(&f->vm.mmio, m32, b, 4, false));
	assert_int_equal(f->dev.calls, 1);
	/* Onto the ECAM window: refused too. */
	ecam_write(f, 2, PCI_BASE_ADDRESS_0 + 4, (uint32_t)PCI_ECAM_BASE, 4);
	assert_int_equal(f->other.pci.bar[1].mapped, PCI_BAR_UNMAPPED);
	assert_int_equal(ecam_read(f, 0, 0, 0, 2), PCI_HOST_VENDOR);
	/* Address 0 means unassigned. */
	ecam_write(f, 2, PCI_BASE_ADDRESS_0 + 4, 0, 4);
	assert_int_equal(f->other.pci.bar[1].mapped, PCI_BAR_UNMAPPED);
	ecam_write(f, 2, PCI_BASE_ADDRESS_0 + 4, (uint32_t)PCI_MMIO_BASE + 0x200000, 4);
	assert_int_equal(f->other.pci.bar[1].mapped, PCI_MMIO_BASE + 0x200000);
}

static void capabilities_are_chained(void **state)
{
	struct pci_dev d;
	uint8_t a[8] = { PCI_CAP_ID_VNDR, 0xee, 8, 1 }, m[12] = { PCI_CAP_ID_MSIX };
	int first, second;

	pci_dev_init(&d, "caps", 1, 2, 0, 0, NULL);
	assert_int_equal(d.cfg[PCI_STATUS] & PCI_STATUS_CAP_LIST, 0);
	first = pci_cap_add(&d, a, sizeof(a));
	second = pci_cap_add(&d, m, sizeof(m));
	assert_int_equal(first, PCI_CAP_START);
	assert_int_equal(second, PCI_CAP_START + 8);
	assert_int_equal(d.cfg[PCI_CAPABILITY_LIST], first);
	assert_int_equal(d.cfg[first + 1], second);
	assert_int_equal(d.cfg[second + 1], 0);
	assert_int_equal(d.cfg[first + 3], 1);
	assert_true(d.cfg[PCI_STATUS] & PCI_STATUS_CAP_LIST);
	for (int i = 0; i < 20; i++)
		pci_cap_add(&d, m, sizeof(m));
	assert_int_equal(pci_cap_add(&d, m, sizeof(m)), -ENOSPC);
	assert_int_equal(pci_dev_set_bar(&d, 5, PCI_BAR_MEM64, 16, dummy_io, NULL), -EINVAL);
	assert_int_equal(pci_dev_set_bar(&d, 0, PCI_BAR_IO, 0x1000, dummy_io, NULL), -EINVAL);
}

static void slots_run_out(void **state)
{
	struct fixture *f = *state;
	struct pci_dev *many = calloc(31, sizeof(*many));
	int added = 0;

	for (int i = 0; i < 31; i++) {
		pci_dev_init(&many[i], "many", 1, 2, 0, 0, NULL);
		if (pci_dev_add(&f->host, &many[i]) == 0)
			added++;
	}
	assert_int_equal(added, 30); /* slot 0 is the bridge, slot 1 the dummy */
	assert_int_equal(many[30].slot, 0);
	for (int i = 0; i < 31; i++)
		pci_dev_remove(&f->host, &many[i]);
	assert_int_equal(ecam_read(f, 2, 0, 0, 4), 0xffffffff);
	free(many);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(host_bridge_is_in_slot_0, setup, teardown),
		cmocka_unit_test_setup_teardown(absent_functions_read_all_ones, setup, teardown),
		cmocka_unit_test_setup_teardown(address_register_takes_dwords_only, setup,
						teardown),
		cmocka_unit_test_setup_teardown(byte_and_word_accesses_use_their_offset, setup,
						teardown),
		cmocka_unit_test_setup_teardown(read_only_fields_stay, setup, teardown),
		cmocka_unit_test_setup_teardown(bars_are_placed_in_the_windows, setup, teardown),
		cmocka_unit_test_setup_teardown(bar_sizing_reads_back_the_size_mask, setup,
						teardown),
		cmocka_unit_test_setup_teardown(moving_a_bar_moves_its_range, setup, teardown),
		cmocka_unit_test_setup_teardown(decode_off_unmaps, setup, teardown),
		cmocka_unit_test_setup_teardown(overlapping_bars_are_not_mapped, setup, teardown),
		cmocka_unit_test_setup_teardown(reset_puts_bars_and_command_back, setup, teardown),
		cmocka_unit_test(capabilities_are_chained),
		cmocka_unit_test_setup_teardown(slots_run_out, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
