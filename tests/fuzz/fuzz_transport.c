/* libFuzzer target for the virtio transports with a real block device behind them: the input is
 * what a guest does, one register access at a time, to virtio-pci (modern or transitional) or
 * virtio-mmio (version 2 or 1), with the I/O loop run between accesses, so that resets, queue
 * stops, BAR moves and MSI-X changes land while requests are popped, submitted to io_uring or
 * completing. Input:
 *
 *   0      bits 0-1 the transport: 0 virtio-pci modern, 1 virtio-pci transitional (the legacy
 *          I/O BAR too), 2 virtio-mmio version 2, 3 virtio-mmio version 1; bit 2 the read-only
 *          disk; bit 3 two request queues instead of one
 *   1      N, the number of ops
 *   2-3    unused
 *   4-     N ops of 12 bytes:
 *            0      what, value % NR_OPS (enum op)
 *            1      bits 0-1 the access size, 1 << value (port I/O: at most 4); bit 2 a write
 *                   (else a read); bits 4-6 the BAR, value % 6 (OP_BAR)
 *            2-3    le16 offset
 *            4-11   le64 value written (its low bytes, for narrower writes)
 *   4+12N- guest RAM at address 0, in a heap buffer of exactly its size
 *
 * The ops:
 *   OP_ECAM         configuration space through ECAM at PCI_ECAM_BASE + offset: the host bridge
 *                   below 0x8000, the device (slot 1) from 0x8000
 *   OP_CONFIG_PORT  port 0xcf8 + offset % 8: the type 1 address register and its data window
 *   OP_BAR          offset % size into BAR n (of the device in slot 1) where the guest has it
 *                   programmed now: memory BARs on the MMIO bus, the I/O BAR on the port bus
 *                   (whether or not decoding is on: the bus decides what answers). An op on a
 *                   BAR the device does not have does nothing.
 *   OP_MMIO         offset % 4 KiB into the virtio-mmio register window
 *   OP_RUN          the I/O loop once without waiting: doorbells and io_uring completions
 *   OP_SETTLE       the I/O loop until nothing is ready and no request is in flight (bounded)
 *   OP_POKE         the driver writes the value into guest RAM at offset (dropped outside RAM)
 *   OP_EOI          the guest's EOI of the interrupt line (the resample eventfd)
 * A PCI op on an MMIO transport, or the other way round, reaches nothing (the buses answer).
 *
 * The disks are two small temporary files (one read-write, one read-only), opened once; the VM
 * has no KVM fds, so doorbells arrive through the buses and interrupts go to eventfds nobody
 * reads. After the ops, the loop runs until nothing is in flight; then everything is destroyed.
 * It checks that nothing crashes or leaks (the sanitizers; guest RAM is exactly its size), that
 * every request submitted completed and none waits for a doorbell that already rang, and that
 * nothing was written outside the files: their size never changes, the read-only one keeps its
 * bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arch/x86/layout.h"
#include "bus/pci.h"
#include "event.h"
#include "log.h"
#include "virtio/blk.h"
#include "virtio/mmio.h"
#include "virtio/pci.h"
#include "vm.h"
#include "fuzz.h"

#define HDR       4
#define OP_SIZE   12
#define MMIO_BASE VIRTIO_MMIO_BASE
#define MMIO_GSI  5
#define PCI_SLOT  1

enum mode { PCI_MODERN, PCI_TRANSITIONAL, MMIO_V2, MMIO_V1 };

enum op { OP_ECAM, OP_CONFIG_PORT, OP_BAR, OP_MMIO, OP_RUN, OP_SETTLE, OP_POKE, OP_EOI, NR_OPS };

struct fuzz_vm {
	struct vm vm;
	struct guest_mem mem;
	uint8_t *ram;
	struct event_loop loop;
	struct blk_dev blk;
	enum mode mode;
	struct pci_host host;
	struct virtio_pci *vp;
	struct virtio_mmio mmio;
};

static struct disk rw_disk, ro_disk;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* Every malformed ring is an error message; keep the rest quiet. */
	log_set_level(LOG_ERROR);
	fuzz_disk_open(&rw_disk, "transport", false);
	fuzz_disk_open(&ro_disk, "transport", true);
	return 0;
}

static bool inflight(const struct blk_dev *b)
{
	for (unsigned i = 0; i < b->nr_queues; i++)
		if (b->queues[i].inflight)
			return true;
	return false;
}

/* Runs the loop until it has nothing ready and no request is in flight. A local file answers in
 * milliseconds even on a busy machine: the bounds only keep a lost request, or a handler that
 * wakes itself for ever, from hanging the fuzzer. A held request (the disk queue was full) is not
 * waited for here: it moves only when a completion or a doorbell comes, and the final check says
 * whether one still can. */
static void settle(struct fuzz_vm *f)
{
	for (int i = 0; i < 100 && event_loop_run_once(&f->loop, 0) > 0; i++)
		;
	for (int i = 0; i < 300 && inflight(&f->blk); i++)
		event_loop_run_once(&f->loop, 100);
}

/* Where the guest has BAR n now, from the registers it wrote; false for a BAR the device does
 * not have. Sizing leaves all-ones in the register, and that is where the access goes. */
static bool bar_where(struct fuzz_vm *f, unsigned n, uint64_t *addr, uint64_t *size, bool *io)
{
	struct pci_dev *d = &f->vp->pci;
	const uint8_t *reg = d->cfg + PCI_BASE_ADDRESS_0 + 4 * n;

	switch (d->bar[n].type) {
	case PCI_BAR_IO:
		*addr = pci_get32(reg) & ~3u;
		break;
	case PCI_BAR_MEM32:
		*addr = pci_get32(reg) & ~0xfu;
		break;
	case PCI_BAR_MEM64:
		*addr = (pci_get32(reg) & ~0xfu) | (uint64_t)pci_get32(reg + 4) << 32;
		break;
	default:
		return false;
	}
	*size = d->bar[n].size;
	*io = d->bar[n].type == PCI_BAR_IO;
	return true;
}

static void run_op(struct fuzz_vm *f, const uint8_t *op)
{
	uint32_t len = 1u << (op[1] & 3), off = le(op + 2, 2);
	uint32_t plen = len > 4 ? 4 : len; /* x86 port I/O is at most a dword */
	bool is_write = op[1] & 4, io;
	uint64_t addr, size;
	uint8_t data[8];

	/* Reads fill data; a write takes its low len bytes, little-endian like the value. */
	memcpy(data, op + 4, sizeof(data));
	switch (op[0] % NR_OPS) {
	case OP_ECAM:
		bus_access(&f->vm.mmio, PCI_ECAM_BASE + off, data, len, is_write);
		break;
	case OP_CONFIG_PORT:
		bus_access(&f->vm.pio, PCI_CONFIG_PORT + off % 8, data, plen, is_write);
		break;
	case OP_BAR:
		if (!f->vp || !bar_where(f, (op[1] >> 4 & 7) % PCI_NR_BARS, &addr, &size, &io))
			break;
		if (io)
			bus_access(&f->vm.pio, addr + off % size, data, plen, is_write);
		else
			bus_access(&f->vm.mmio, addr + off % size, data, len, is_write);
		break;
	case OP_MMIO:
		bus_access(&f->vm.mmio, MMIO_BASE + off % VIRTIO_MMIO_SIZE, data, len, is_write);
		break;
	case OP_RUN:
		event_loop_run_once(&f->loop, 0);
		break;
	case OP_SETTLE:
		settle(f);
		break;
	case OP_POKE:
		if (off < f->mem.ram_size && len <= f->mem.ram_size - off)
			memcpy(f->ram + off, op + 4, len);
		break;
	case OP_EOI: {
		uint64_t one = 1;

		check(write(f->blk.vdev.resample_fd, &one, sizeof(one)) == sizeof(one));
		break;
	}
	}
}

/* The machine without KVM, as the transports' unit tests build it. */
static void vm_setup(struct fuzz_vm *f, const uint8_t *data)
{
	bool nq2 = data[0] & 8;

	f->vm.kvm_fd = f->vm.vm_fd = -1;
	pthread_mutex_init(&f->vm.gsi_lock, NULL);
	bus_init(&f->vm.pio, "pio");
	bus_init(&f->vm.mmio, "mmio");
	check(event_loop_init(&f->loop, "fuzz") == 0);
	check(blk_init(&f->blk, "blk0", (data[0] & 4) ? &ro_disk : &rw_disk, "fuzz-serial",
		       nq2 ? 2 : 1, &f->mem, &f->loop) == 0);
	switch (f->mode) {
	case PCI_MODERN:
	case PCI_TRANSITIONAL:
		check(pci_host_init(&f->host, &f->vm) == 0);
		check(virtio_pci_create(&f->host, &f->blk.vdev, f->mode == PCI_TRANSITIONAL,
					&f->vp) == 0);
		check(f->vp->pci.slot == PCI_SLOT);
		break;
	case MMIO_V2:
	case MMIO_V1:
		check(virtio_mmio_create(&f->mmio, &f->vm, &f->blk.vdev, MMIO_BASE, MMIO_GSI,
					 f->mode == MMIO_V1) == 0);
		break;
	}
}

static void vm_teardown(struct fuzz_vm *f)
{
	/* The transports first (they unbind from the device), then the device (it waits for what
	 * is still in flight), then what they were on. */
	if (f->vp) {
		virtio_pci_destroy(f->vp);
		pci_host_destroy(&f->host);
	} else {
		virtio_mmio_destroy(&f->mmio);
	}
	blk_destroy(&f->blk);
	event_loop_destroy(&f->loop);
	check(f->vm.pio.nr == 0 && f->vm.mmio.nr == 0);
	bus_destroy(&f->vm.pio);
	bus_destroy(&f->vm.mmio);
	free(f->vm.routes);
	pthread_mutex_destroy(&f->vm.gsi_lock);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_vm f = { 0 };
	size_t ops;

	if (size < HDR)
		return 0;
	ops = HDR + (size_t)OP_SIZE * data[1];
	if (!(f.ram = fuzz_ram(&f.mem, data, size, ops)))
		return 0;
	f.mode = (enum mode)(data[0] & 3);
	vm_setup(&f, data);

	for (size_t at = HDR; at < ops; at += OP_SIZE)
		run_op(&f, data + at);
	settle(&f);
	/* Nothing lost: every request submitted came back, and a request held for a free disk
	 * slot has a completion still to come that would take it up, unless the device stopped
	 * serving its queues (NEEDS_RESET, or no DRIVER_OK). */
	for (unsigned i = 0; i < f.blk.nr_queues; i++) {
		struct blk_queue *q = &f.blk.queues[i];

		check(!q->inflight && (!q->held || !virtio_live(&f.blk.vdev)));
	}

	vm_teardown(&f);
	free(f.ram);

	fuzz_disk_check(&rw_disk, false);
	fuzz_disk_check(&ro_disk, data[0] & 4);
	return 0;
}
