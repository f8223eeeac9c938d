# What the seed writers share (imported by seeds_*.py): guest RAM with a buffer area, and the driver's
# side of a virtqueue in it, split or packed.
import struct

NEXT, WRITE, INDIRECT, AVAIL_F, USED_F = 1, 2, 4, 1 << 7, 1 << 15


class Ram:
    def __init__(self, size, buf, packed):
        self.ram = bytearray(size)
        self.buf, self.packed = buf, packed

    def alloc(self, data):
        """Copies data (bytes) or reserves n bytes (int) in the buffer area; returns (addr, len)."""
        n = data if isinstance(data, int) else len(data)
        at = self.buf
        if not isinstance(data, int):
            self.ram[at:at + n] = data
        self.buf += (n + 15) & ~15
        assert self.buf <= len(self.ram), "RAM full"
        return at, n

    def put(self, at, addr, length, x, flags):
        """A descriptor at at: x is the next index (split) or the buffer id (packed), which the two
        layouts order apart."""
        if self.packed:
            struct.pack_into("<QIHH", self.ram, at, addr, length, x, flags)
        else:
            struct.pack_into("<QIHH", self.ram, at, addr, length, flags, x)


class Queue:
    """A queue of size entries: its descriptors at desc, and (split) the available ring at avail."""

    def __init__(self, ram, desc, avail, size):
        self.ram, self.desc, self.avail, self.size = ram, desc, avail, size
        self.next, self.avail_idx, self.wrap, self.bid = 0, 0, True, 0

    def chain(self, bufs, indirect=False):
        """bufs: [(addr, len, write)] as one chain, in an indirect table if asked; made available."""
        m = self.ram
        if indirect:
            t, _ = m.alloc(16 * len(bufs))
            for i, (a, n, w) in enumerate(bufs):
                more = NEXT if i < len(bufs) - 1 and not m.packed else 0
                m.put(t + 16 * i, a, n, i + 1 if more else 0, (WRITE if w else 0) | more)
            bufs = [(t, 16 * len(bufs), None)]
        head = self.next
        for i, (a, n, w) in enumerate(bufs):
            f = INDIRECT if w is None else (WRITE if w else 0)
            if i < len(bufs) - 1:
                f |= NEXT
            if m.packed:
                f |= AVAIL_F if self.wrap else USED_F
                m.put(self.desc + 16 * self.next, a, n, self.bid, f)
            else:
                m.put(self.desc + 16 * self.next, a, n, (self.next + 1) % self.size, f)
            self.next += 1
            if self.next == self.size:
                self.next, self.wrap = 0, not self.wrap
        self.bid += 1
        if not m.packed:
            struct.pack_into("<H", m.ram, self.avail + 4 + 2 * (self.avail_idx % self.size), head)
            self.avail_idx += 1
            struct.pack_into("<H", m.ram, self.avail + 2, self.avail_idx)
