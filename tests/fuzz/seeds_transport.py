#!/usr/bin/env python3
# Writes the seed corpus of fuzz_transport into tests/fuzz/corpus/transport/: a driver's register
# traffic (see fuzz_transport.c for the layout) and a guest RAM image holding its rings and block
# requests. For each transport mode, a well-formed bring-up as Linux's drivers do it (reset,
# ACKNOWLEDGE and DRIVER, features, FEATURES_OK on modern, a queue, DRIVER_OK), requests made
# available and a doorbell, then what a driver may do while they are under way: reset, stop a
# queue and set it up smaller elsewhere (mmio), move BARs and size them (pci), MSI-X on, masked
# and unmasked, INTx disabled, the PCI_CFG window. Run from the top of the tree.
import os
import struct

from rings import Queue, Ram

OUT = os.path.join("tests", "fuzz", "corpus", "transport")

PCI_MODERN, PCI_TRANSITIONAL, MMIO_V2, MMIO_V1 = 0, 1, 2, 3
RO, NQ2 = 4, 8
OP_ECAM, OP_CONFIG_PORT, OP_BAR, OP_MMIO, OP_RUN, OP_SETTLE, OP_POKE, OP_EOI = range(8)
SIZE_CODE = {1: 0, 2: 1, 4: 2, 8: 3}
WRITE = 4

ACK, DRIVER, DRIVER_OK, FEATURES_OK = 1, 2, 4, 8

# virtio-blk feature bits the driver takes (blk.h), and the ring bits (virtio.h, virtqueue.h).
SIZE_MAX, SEG_MAX, F_RO, BLK_SIZE, FLUSH, TOPOLOGY, MQ, DISCARD, WZ = 1, 2, 5, 6, 9, 10, 12, 13, 14
INDIRECT_DESC, EVENT_IDX = 28, 29
BLK = sum(1 << b for b in (SIZE_MAX, SEG_MAX, BLK_SIZE, FLUSH, TOPOLOGY, MQ))
HI_VERSION_1, HI_PACKED = 1, 4

T_IN, T_OUT, T_FLUSH, T_GET_ID, T_DISCARD = 0, 1, 4, 8, 11

# PCI: configuration space (pci.h) and the device's layout (virtio/pci.h), slot 1.
SLOT = 1
COMMAND, BAR0 = 0x04, 0x10
MSIX_CAP, CFG_CAP = 0x98, 0x84  # where virtio_pci_create puts them for a block device
MSIX_ENABLE, MSIX_MASKALL = 0x8000, 0x4000
LEGACY_BAR, MSIX_BAR, MODERN_BAR = 0, 1, 4
ISR_OFF, DEVICE_OFF, NOTIFY_OFF, PBA_OFF = 0x1000, 0x2000, 0x3000, 0x800
C_DFSELECT, C_DF, C_GFSELECT, C_GF, C_MSIX, C_NUMQ, C_STATUS = 0, 4, 8, 12, 0x10, 0x12, 0x14
C_Q_SELECT, C_Q_SIZE, C_Q_MSIX, C_Q_ENABLE, C_Q_NOFF = 0x16, 0x18, 0x1a, 0x1c, 0x1e
C_Q_DESC, C_Q_AVAIL, C_Q_USED = 0x20, 0x28, 0x30
L_HOST_F, L_GUEST_F, L_PFN, L_NUM, L_SEL, L_NOTIFY = 0, 4, 8, 0xc, 0xe, 0x10
L_STATUS, L_ISR = 0x12, 0x13
L_CONFIG_VECTOR, L_QUEUE_VECTOR = 0x14, 0x16

# virtio-mmio registers (mmio.h).
M_MAGIC, M_VERSION, M_DEVICE_ID, M_DEV_F, M_DEV_F_SEL = 0, 4, 8, 0x10, 0x14
M_DRV_F, M_DRV_F_SEL, M_PAGE_SIZE, M_SEL, M_NUM_MAX, M_NUM = 0x20, 0x24, 0x28, 0x30, 0x34, 0x38
M_ALIGN, M_PFN, M_READY, M_NOTIFY, M_INT_STATUS, M_INT_ACK = 0x3c, 0x40, 0x44, 0x50, 0x60, 0x64
M_STATUS, M_CONFIG_GEN, M_CONFIG = 0x70, 0xfc, 0x100
M_DESC, M_DRIVER, M_DEVICE = 0x80, 0x90, 0xa0

# Small rings (desc, avail or driver area, used or device area): A of QA entries for the first
# setup, B of QB for the one after a stop or reset; the requests' buffers above them.
QA, QB = 32, 16
RING_A, RING_B = (0x000, 0x200, 0x280), (0x400, 0x500, 0x540)
BUF = 0x600
PATTERN = bytes((i * 11 + 3) & 0xff for i in range(1024))


class Seed(Ram):
    def __init__(self, mode, ram=0x1400, packed=False, buf=BUF):
        super().__init__(ram, buf, packed)
        self.mode, self.ops = mode, []
        self.queues = {}

    def op(self, what, off=0, size=4, val=None, bar=0):
        flags = SIZE_CODE[size] | (WRITE if val is not None else 0) | bar << 4
        self.ops.append(struct.pack("<BBHQ", what, flags, off, val or 0))

    def run(self, n=1):
        for _ in range(n):
            self.op(OP_RUN)

    def settle(self):
        self.op(OP_SETTLE)

    def poke(self, addr, val, size):
        self.op(OP_POKE, addr, size, val)

    def queue(self, q, rings, size):
        """The driver's side of queue q with (desc, avail, used) rings."""
        self.queues[q] = Queue(self, rings[0], rings[1], size)
        self.queues[q].descs = 0
        return self.queues[q]

    def blk(self, q, type_, sector, data=None, din=0):
        """A request on queue q: header, readable data, din writable bytes, the status byte."""
        bufs = [self.alloc(struct.pack("<IIQ", type_, 0, sector)) + (False,)]
        if data:
            bufs.append(self.alloc(data) + (False,))
        if din:
            bufs.append(self.alloc(din) + (True,))
        bufs.append(self.alloc(1) + (True,))
        self.queues[q].descs += len(bufs)
        assert self.queues[q].descs <= self.queues[q].size, "ring full"
        self.queues[q].chain(bufs)

    def requests(self, q=0, first=0):
        """A write, a read of it back, a flush and GET_ID."""
        self.blk(q, T_OUT, first, PATTERN[:512])
        self.blk(q, T_IN, first, din=512)
        self.blk(q, T_FLUSH, 0)
        self.blk(q, T_GET_ID, 0, din=20)

    def write(self, name, flags=0):
        assert len(self.ops) <= 255, name
        hdr = struct.pack("<BBH", self.mode | flags, len(self.ops), 0)
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(hdr + b"".join(self.ops) + bytes(self.ram))


class Pci(Seed):
    """A driver of the virtio-pci function in slot 1."""

    def ecam(self, reg, size=4, val=None):
        self.op(OP_ECAM, SLOT << 15 | reg, size, val)

    def port_cfg(self, reg, size=4, val=None):
        """Type 1: the address to 0xcf8, then the data at 0xcfc + the byte offset."""
        self.op(OP_CONFIG_PORT, 0, 4, 0x80000000 | SLOT << 11 | reg & 0xfc)
        self.op(OP_CONFIG_PORT, 4 + (reg & 3), size, val)

    def bar(self, n, off, size, val=None):
        self.op(OP_BAR, off, size, val, bar=n)

    def common(self, off, size, val=None):
        self.bar(MODERN_BAR, off, size, val)

    def legacy(self, off, size, val=None):
        self.bar(LEGACY_BAR, off, size, val)

    def identify(self, walk=False):
        self.ecam(0)  # vendor and device
        self.ecam(8)  # revision and class
        if walk:
            self.ecam(0x34, 1)
            for cap in (0x40, 0x50, 0x64, 0x74, CFG_CAP, MSIX_CAP):
                self.ecam(cap)      # ID, next, length, type
                self.ecam(cap + 8)  # offset (vendor caps) or PBA (MSI-X)

    def enable(self, io=False):
        self.ecam(COMMAND, 2, 0x6 | (1 if io else 0))  # memory (and I/O) decoding, bus master

    def msix_enable(self, nvec, unmask=True):
        """Linux's order: enabled with the function masked, the table written, then unmasked."""
        self.ecam(MSIX_CAP + 2, 2, MSIX_ENABLE | MSIX_MASKALL)
        for v in range(nvec):
            self.bar(MSIX_BAR, 16 * v, 4, 0xfee00000)
            self.bar(MSIX_BAR, 16 * v + 4, 4, 0)
            self.bar(MSIX_BAR, 16 * v + 8, 4, 0x4020 + v)
            if unmask:
                self.bar(MSIX_BAR, 16 * v + 12, 4, 0)
        self.ecam(MSIX_CAP + 2, 2, MSIX_ENABLE)

    def modern_start(self, queues, feat=BLK, hi=HI_VERSION_1, msix=False, wide=False):
        """queues: [(index, size, rings)]; the driver's side is built with them."""
        self.common(C_STATUS, 1, 0)
        self.common(C_STATUS, 1)
        self.common(C_STATUS, 1, ACK)
        self.common(C_STATUS, 1, ACK | DRIVER)
        for sel in (0, 1):
            self.common(C_DFSELECT, 4, sel)
            self.common(C_DF, 4)
        self.common(C_GFSELECT, 4, 0)
        self.common(C_GF, 4, feat)
        self.common(C_GFSELECT, 4, 1)
        self.common(C_GF, 4, hi)
        self.common(C_STATUS, 1, ACK | DRIVER | FEATURES_OK)
        self.common(C_STATUS, 1)
        if msix:
            self.common(C_MSIX, 2, 0)
            self.common(C_MSIX, 2)
        for q, size, rings in queues:
            self.queue(q, rings, size)
            self.common(C_Q_SELECT, 2, q)
            self.common(C_Q_SIZE, 2)
            self.common(C_Q_SIZE, 2, size)
            if msix:
                self.common(C_Q_MSIX, 2, 1 + q)
                self.common(C_Q_MSIX, 2)
            for reg, addr in zip((C_Q_DESC, C_Q_AVAIL, C_Q_USED), rings):
                if wide:
                    self.common(reg, 8, addr)
                else:
                    self.common(reg, 4, addr)
                    self.common(reg + 4, 4, 0)
            self.common(C_Q_NOFF, 2)
            self.common(C_Q_ENABLE, 2, 1)
        self.common(C_STATUS, 1, ACK | DRIVER | FEATURES_OK | DRIVER_OK)

    def notify(self, q=0):
        self.bar(MODERN_BAR, NOTIFY_OFF + 4 * q, 2, q)

    def legacy_start(self, pfn, feat=BLK):
        """The legacy driver: no FEATURES_OK, the queue by page frame, its size the maximum."""
        self.legacy(L_STATUS, 1, 0)
        self.legacy(L_STATUS, 1, ACK)
        self.legacy(L_STATUS, 1, ACK | DRIVER)
        self.legacy(L_HOST_F, 4)
        self.legacy(L_GUEST_F, 4, feat)
        self.legacy(L_SEL, 2, 0)
        self.legacy(L_NUM, 2)
        self.legacy(L_PFN, 4, pfn)
        self.legacy(L_STATUS, 1, ACK | DRIVER | DRIVER_OK)

    def size_bar(self, n, via_port=False):
        """Linux's sizing: decoding off, all-ones, read back, the old value, decoding on."""
        cfg = self.port_cfg if via_port else self.ecam
        reg = BAR0 + 4 * n
        cfg(COMMAND, 2, 0)
        cfg(reg)
        cfg(reg, 4, 0xffffffff)
        cfg(reg)
        return cfg, reg


class Mmio(Seed):
    def reg(self, off, val=None, size=4):
        self.op(OP_MMIO, off, size, val)

    def start(self, queues, feat=BLK, hi=HI_VERSION_1):
        self.reg(M_MAGIC)
        self.reg(M_VERSION)
        self.reg(M_DEVICE_ID)
        self.reg(M_STATUS, 0)
        self.reg(M_STATUS, ACK)
        self.reg(M_STATUS, ACK | DRIVER)
        for sel in (0, 1):
            self.reg(M_DEV_F_SEL, sel)
            self.reg(M_DEV_F)
        self.reg(M_DRV_F_SEL, 0)
        self.reg(M_DRV_F, feat)
        self.reg(M_DRV_F_SEL, 1)
        self.reg(M_DRV_F, hi)
        self.reg(M_STATUS, ACK | DRIVER | FEATURES_OK)
        self.reg(M_STATUS)
        for q, size, rings in queues:
            self.setup_queue(q, size, rings)
        self.reg(M_STATUS, ACK | DRIVER | FEATURES_OK | DRIVER_OK)

    def setup_queue(self, q, size, rings):
        self.queue(q, rings, size)
        self.reg(M_SEL, q)
        self.reg(M_READY)
        self.reg(M_NUM_MAX)
        self.reg(M_NUM, size)
        for reg, addr in zip((M_DESC, M_DRIVER, M_DEVICE), rings):
            self.reg(reg, addr)
            self.reg(reg + 4, 0)
        self.reg(M_READY, 1)

    def v1_start(self, size, pfn, page=4096, align=4096, feat=BLK):
        self.reg(M_MAGIC)
        self.reg(M_VERSION)
        self.reg(M_STATUS, 0)
        self.reg(M_STATUS, ACK)
        self.reg(M_STATUS, ACK | DRIVER)
        self.reg(M_DEV_F_SEL, 0)
        self.reg(M_DEV_F)
        self.reg(M_DRV_F_SEL, 0)
        self.reg(M_DRV_F, feat)
        self.v1_queue(size, pfn, page, align)
        self.reg(M_STATUS, ACK | DRIVER | DRIVER_OK)

    def v1_queue(self, size, pfn, page, align):
        desc = pfn * page
        avail = desc + 16 * size
        used = (avail + 2 * (3 + size) + align - 1) & ~(align - 1)
        self.queue(0, (desc, avail, used), size)
        self.reg(M_PAGE_SIZE, page)
        self.reg(M_SEL, 0)
        self.reg(M_PFN)
        self.reg(M_NUM_MAX)
        self.reg(M_NUM, size)
        self.reg(M_ALIGN, align)
        self.reg(M_PFN, pfn)

    def notify(self, q=0):
        self.reg(M_NOTIFY, q)

    def interrupt(self):
        self.reg(M_INT_STATUS)
        self.reg(M_INT_ACK, 3)
        self.op(OP_EOI)


def pci_seeds():
    # Modern, split ring, MSI-X: the whole probe, requests, interrupts, then the device config.
    s = Pci(PCI_MODERN)
    s.identify(walk=True)
    s.enable()
    s.msix_enable(2)
    s.modern_start([(0, QA, RING_A)], feat=BLK | 1 << EVENT_IDX, msix=True)
    s.requests()
    s.notify()
    s.run(2)
    s.settle()
    s.bar(MSIX_BAR, PBA_OFF, 4)
    s.common(DEVICE_OFF, 8)          # capacity
    s.common(DEVICE_OFF + 34, 2)     # num_queues
    s.common(C_NUMQ, 2)
    s.write("pci-modern-msix")

    # Packed ring on INTx: the ISR read after the completions, the line's EOI.
    s = Pci(PCI_MODERN, packed=True)
    s.identify()
    s.enable()
    s.modern_start([(0, QA, RING_A)], feat=BLK | 1 << INDIRECT_DESC, hi=HI_VERSION_1 | HI_PACKED)
    s.requests()
    s.notify()
    s.run()
    s.settle()
    s.ecam(0x06, 2)                  # status: the interrupt bit
    s.common(ISR_OFF, 1)
    s.op(OP_EOI)
    s.run()
    s.write("pci-modern-packed-intx")

    # Reset with requests under way, then a second setup on other rings.
    s = Pci(PCI_MODERN)
    s.enable()
    s.modern_start([(0, QA, RING_A)])
    for i in range(4):
        s.blk(0, T_OUT, 8 * i, PATTERN[:512])
    s.notify()
    s.run()
    s.common(C_STATUS, 1, 0)
    s.common(C_STATUS, 1)
    s.modern_start([(0, QB, RING_B)], wide=True)
    s.requests(first=40)
    s.notify()
    s.settle()
    s.write("pci-modern-reset-inflight")

    # BAR sizing and moves with the device live: BAR4 sized through ECAM and moved (a doorbell at
    # the new place), BAR1 sized through 0xcf8/0xcfc and moved under an MSI-X table in use.
    s = Pci(PCI_MODERN)
    s.enable()
    s.msix_enable(2)
    s.modern_start([(0, QA, RING_A)], msix=True)
    s.requests()
    s.notify()
    s.run()
    cfg, reg = s.size_bar(MODERN_BAR)
    cfg(reg + 4)
    cfg(reg + 4, 4, 0xffffffff)
    cfg(reg + 4)
    cfg(reg, 4, 0xc0100004)          # moved, as a 64-bit BAR
    cfg(reg + 4, 4, 0)
    cfg(COMMAND, 2, 0x6)
    s.blk(0, T_IN, 0, din=1024)
    s.notify()
    s.run()
    cfg, reg = s.size_bar(MSIX_BAR, via_port=True)
    cfg(reg, 4, 0xc0200000)
    cfg(COMMAND, 2, 0x6)
    s.bar(MSIX_BAR, 12, 4, 1)        # vector 0 masked at its new place
    s.bar(MSIX_BAR, 28, 4, 1)
    s.blk(0, T_OUT, 16, PATTERN[:1024])
    s.notify()
    s.settle()
    s.bar(MSIX_BAR, PBA_OFF, 8)
    s.bar(MSIX_BAR, 28, 4, 0)        # unmasked: the pending vector goes out
    s.bar(MSIX_BAR, 16, 8)
    s.write("pci-modern-bar-move")

    # A BAR moved onto another's addresses decodes nothing until it moves away.
    s = Pci(PCI_MODERN)
    s.enable()
    s.modern_start([(0, QA, RING_A)])
    s.requests()
    s.ecam(BAR0 + 4 * MSIX_BAR, 4, 0xc0004000)  # onto BAR4
    s.notify()
    s.run()
    s.ecam(BAR0 + 4 * MODERN_BAR, 4, 0xc0008004)
    s.notify()
    s.ecam(BAR0 + 4 * MSIX_BAR, 4, 0xc0004000)
    s.settle()
    s.write("pci-modern-bar-overlap")

    # Everything through the type 1 ports, MSI-X with the function masked: pending bits, then
    # unmasked.
    s = Pci(PCI_MODERN)
    s.port_cfg(0)
    s.port_cfg(0x34, 1)
    s.port_cfg(COMMAND, 2, 0x6)
    s.port_cfg(MSIX_CAP + 2, 2, MSIX_ENABLE | MSIX_MASKALL)
    for v in range(2):
        s.bar(MSIX_BAR, 16 * v + 8, 4, 0x4030 + v)
        s.bar(MSIX_BAR, 16 * v + 12, 4, 0)
    s.modern_start([(0, QA, RING_A)], feat=BLK | 1 << EVENT_IDX, msix=True)
    s.requests()
    s.notify()
    s.settle()
    s.bar(MSIX_BAR, PBA_OFF, 4)
    s.port_cfg(MSIX_CAP + 2, 2)
    s.port_cfg(MSIX_CAP + 2, 2, MSIX_ENABLE)
    s.bar(MSIX_BAR, PBA_OFF, 4)
    s.op(OP_CONFIG_PORT, 3, 1, 0x80)  # Linux's type 1 probe: a byte at 0xcfb
    s.op(OP_CONFIG_PORT, 0, 4)
    s.write("pci-modern-cf8-msix-masked")

    # The PCI_CFG window: status, a queue and a doorbell through configuration space alone.
    s = Pci(PCI_MODERN)
    s.enable()

    def window(off, size, val=None):
        s.ecam(CFG_CAP + 4, 1, MODERN_BAR)
        s.ecam(CFG_CAP + 8, 4, off)
        s.ecam(CFG_CAP + 12, 4, size)
        s.ecam(CFG_CAP + 16, 4, val)

    window(C_STATUS, 1, 0)
    window(C_STATUS, 1, ACK | DRIVER)
    window(C_GFSELECT, 4, 1)
    window(C_GF, 4, HI_VERSION_1)
    window(C_STATUS, 1, ACK | DRIVER | FEATURES_OK)
    s.queue(0, RING_A, QA)
    window(C_Q_SIZE, 2, QA)
    for reg, addr in zip((C_Q_DESC, C_Q_AVAIL, C_Q_USED), RING_A):
        window(reg, 4, addr)
    window(C_Q_ENABLE, 2, 1)
    window(C_STATUS, 1, ACK | DRIVER | FEATURES_OK | DRIVER_OK)
    s.requests()
    window(NOTIFY_OFF, 2, 0)
    s.run()
    window(ISR_OFF, 1)
    window(DEVICE_OFF, 4)
    s.settle()
    s.write("pci-modern-cfg-window")

    # Two request queues, each with its own vector, a reset while both have requests.
    s = Pci(PCI_MODERN)
    s.enable()
    s.msix_enable(3)
    s.modern_start([(0, QA, RING_A), (1, QB, RING_B)], feat=BLK | 1 << MQ, msix=True)
    s.requests(0)
    s.requests(1, first=20)
    s.notify(0)
    s.notify(1)
    s.run()
    s.ecam(MSIX_CAP + 2, 2, 0)       # MSI-X off under way: INTx again
    s.run()
    s.common(C_STATUS, 1, 0)
    s.settle()
    s.write("pci-modern-2q-reset", NQ2)

    # Requests made available one at a time between doorbells, as a driver does, EVENT_IDX on.
    s = Pci(PCI_MODERN)
    s.enable()
    s.modern_start([(0, QB, RING_A)], feat=BLK | 1 << EVENT_IDX)
    for i in range(4):
        s.blk(0, T_OUT, 8 * i, PATTERN[:512])
    s.poke(RING_A[1] + 2, 1, 2)       # avail.idx: one request so far
    s.notify()
    s.run(2)
    for idx in (2, 3, 4):
        s.poke(RING_A[1] + 2, idx, 2)
        s.notify()
        s.run()
    s.settle()
    s.common(ISR_OFF, 1)
    s.write("pci-modern-event-idx")

    # Transitional with the legacy driver: a queue of the maximum size by page frame, its rings
    # above the first page, which holds the buffers. Three requests made available first, then
    # the ISR and the config; MSI-X on, the legacy vector registers and the config after them;
    # two more requests, and PFN 0 (a reset) while they are under way.
    s = Pci(PCI_TRANSITIONAL, ram=0x3810, buf=0)
    s.identify()
    s.enable(io=True)
    s.queue(0, (0x1000, 0x2000, 0x3000), 256)
    for i in range(4):
        s.blk(0, T_OUT, 8 * i, PATTERN[:512])
    s.blk(0, T_IN, 0, din=512)
    s.poke(0x2002, 3, 2)             # avail.idx
    s.legacy_start(1)
    s.legacy(L_NOTIFY, 2, 0)
    s.settle()
    s.legacy(L_ISR, 1)
    s.legacy(0x20, 4)                # capacity, at 20 without MSI-X
    s.msix_enable(2)
    s.legacy(L_CONFIG_VECTOR, 2, 0)
    s.legacy(L_SEL, 2, 0)
    s.legacy(L_QUEUE_VECTOR, 2, 1)
    s.legacy(L_QUEUE_VECTOR, 2)
    s.legacy(0x24, 4)                # capacity, at 24 with MSI-X
    s.poke(0x2002, 5, 2)
    s.legacy(L_NOTIFY, 2, 0)
    s.run()
    s.legacy(L_PFN, 4, 0)
    s.settle()
    s.write("pci-legacy-pfn")

    # Transitional with the modern driver on INTx, INTx disabled and enabled again while
    # completions come in (Linux with pci=nomsi).
    s = Pci(PCI_TRANSITIONAL)
    s.identify()
    s.enable(io=True)
    s.modern_start([(0, QA, RING_A)])
    s.requests()
    s.ecam(COMMAND, 2, 0x407)        # INTx disabled
    s.notify()
    s.settle()
    s.ecam(0x06, 2)
    s.ecam(COMMAND, 2, 0x7)          # enabled: the owed interrupt goes out
    s.common(ISR_OFF, 1)
    s.legacy(L_ISR, 1)
    s.write("pci-transitional-intx")

    # Read-only disk: writes refused, reads served; the legacy I/O BAR sized and moved.
    s = Pci(PCI_TRANSITIONAL)
    s.enable(io=True)
    s.modern_start([(0, QA, RING_A)], feat=BLK & ~(1 << FLUSH) | 1 << F_RO)
    s.blk(0, T_OUT, 0, PATTERN[:512])
    s.blk(0, T_DISCARD, 0, struct.pack("<QII", 0, 8, 0))
    s.blk(0, T_IN, 0, din=512)
    s.notify()
    s.run()
    cfg, reg = s.size_bar(LEGACY_BAR)
    cfg(reg, 4, 0x2001)
    cfg(COMMAND, 2, 0x7)
    s.legacy(L_STATUS, 1)
    s.settle()
    s.write("pci-transitional-readonly", RO)


def mmio_seeds():
    # Version 2, split ring: requests, the interrupt acknowledged.
    s = Mmio(MMIO_V2)
    s.start([(0, QA, RING_A)], feat=BLK | 1 << DISCARD | 1 << WZ)
    s.requests()
    s.blk(0, T_DISCARD, 0, struct.pack("<QII", 64, 8, 0))
    s.notify()
    s.run(2)
    s.settle()
    s.interrupt()
    s.reg(M_CONFIG)                  # capacity
    s.reg(M_CONFIG + 0x20)           # max_discard_sectors
    s.reg(M_CONFIG_GEN)
    s.write("mmio-v2-split")

    # QueueReady 0 with requests under way, then the queue again, smaller, on other rings.
    s = Mmio(MMIO_V2)
    s.start([(0, QA, RING_A)])
    for i in range(4):
        s.blk(0, T_OUT, 8 * i, PATTERN[:512])
    s.notify()
    s.run()
    s.reg(M_READY, 0)
    s.reg(M_READY)
    s.setup_queue(0, QB, RING_B)
    s.requests(first=40)
    s.notify()
    s.settle()
    s.interrupt()
    s.write("mmio-v2-queue-stop")

    # Packed ring, EVENT_IDX: a reset with requests under way, then set up again.
    s = Mmio(MMIO_V2, packed=True)
    s.start([(0, QA, RING_A)], feat=BLK | 1 << EVENT_IDX, hi=HI_VERSION_1 | HI_PACKED)
    s.requests()
    s.notify()
    s.run()
    s.reg(M_STATUS, 0)
    s.start([(0, QB, RING_B)], hi=HI_VERSION_1 | HI_PACKED)
    s.requests(first=40)
    s.notify()
    s.settle()
    s.write("mmio-v2-packed-reset")

    # Two queues, the second stopped while the first works.
    s = Mmio(MMIO_V2)
    s.start([(0, QA, RING_A), (1, QB, RING_B)], feat=BLK | 1 << MQ)
    s.requests(0)
    s.requests(1, first=20)
    s.notify(0)
    s.notify(1)
    s.run()
    s.reg(M_SEL, 1)
    s.reg(M_READY, 0)
    s.settle()
    s.interrupt()
    s.write("mmio-v2-2q", NQ2)

    # Version 1: Linux's page and alignment (the used ring a page above the descriptors, the
    # requests' buffers between them), PFN 0 with requests under way, then a smaller queue with
    # a small page and alignment at the bottom of RAM.
    s = Mmio(MMIO_V1, ram=0x2110, buf=0x1250)
    s.v1_start(QA, 1)
    for i in range(3):
        s.blk(0, T_OUT, 8 * i, PATTERN[:512])
    s.blk(0, T_IN, 0, din=512)
    s.notify()
    s.run()
    s.interrupt()
    s.reg(M_PFN, 0)
    s.v1_queue(QB, 8, 64, 16)
    s.requests(first=40)
    s.notify()
    s.settle()
    s.reg(M_CONFIG, size=4)
    s.write("mmio-v1")

    # Version 1, read-only disk.
    s = Mmio(MMIO_V1, ram=0x2110, buf=0x1250)
    s.v1_start(QA, 1, feat=BLK | 1 << F_RO)
    s.blk(0, T_OUT, 0, PATTERN[:512])
    s.blk(0, T_IN, 0, din=512)
    s.blk(0, T_FLUSH, 0)
    s.notify()
    s.settle()
    s.interrupt()
    s.write("mmio-v1-readonly", RO)


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if not f.startswith("found-"):  # inputs the fuzzer found are kept by hand
            os.unlink(os.path.join(OUT, f))
    pci_seeds()
    mmio_seeds()


main()
