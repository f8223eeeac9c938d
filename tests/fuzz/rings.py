# What the seed writers share (imported by seeds_*.py): guest RAM with a buffer area, and the driver's
# side of a virtqueue in it, split or packed; and for fuzz_scsictl and fuzz_console, a driver's
# operations (fuzz.h's struct fuzz_driver) with rings whose chains it can publish later.
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

    def pieces(self, data, cuts=None, writable=0):
        """data as readable buffers of the sizes in cuts (the last takes the rest), then a writable
        one of writable bytes if asked: [(addr, len, write)]."""
        cuts = cuts or [len(data)]
        bufs, off = [], 0
        for i, c in enumerate(cuts):
            c = len(data) - off if i == len(cuts) - 1 else c
            bufs.append(self.alloc(data[off:off + c]) + (False,))
            off += c
        if writable:
            bufs.append(self.alloc(writable) + (True,))
        return bufs

    def table(self, bufs):
        """An indirect table of bufs [(addr, len, write)] in the buffer area (chains can share
        one); returns its address."""
        t, _ = self.alloc(16 * len(bufs))
        for i, (a, n, w) in enumerate(bufs):
            more = NEXT if i < len(bufs) - 1 and not self.packed else 0
            self.put(t + 16 * i, a, n, i + 1 if more else 0, (WRITE if w else 0) | more)
        return t

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
            bufs = [(m.table(bufs), 16 * len(bufs), None)]
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


class Ring:
    """One virtqueue's ring for a Driver, with chains that can be held back and published later by
    POKE operations (split: the avail index; packed: the head's flags). The RAM image is the
    driver's memory at the start: once a chain is held back, every later one is too."""

    def __init__(self, inp, size):
        self.inp, self.size = inp, size
        self.base = inp.alloc(16 * size)[0]
        if inp.packed:
            self.avail, self.used = inp.alloc(4)[0], inp.alloc(4)[0]
        else:
            self.avail, self.used = inp.alloc(6 + 2 * size)[0], inp.alloc(6 + 8 * size)[0]
        self.q = Queue(inp, self.base, self.avail, size)
        self.ndesc, self.visible, self.frozen, self.held = 0, 0, None, []

    def add(self, bufs, indirect=False, hold=False):
        m, q = self.inp, self.q
        self.ndesc += 1 if indirect else len(bufs)
        assert self.ndesc <= self.size, "ring full"
        assert hold or self.frozen is None, "a chain after one held back must be held too"
        head = q.next
        q.chain(bufs, indirect)
        if not hold:
            self.visible = q.avail_idx
        elif m.packed:
            at = q.desc + 16 * head + 14
            self.held.append((at, bytes(m.ram[at:at + 2])))
            m.ram[at:at + 2] = b"\0\0"
            self.frozen = True
        else:
            self.frozen = self.visible if self.frozen is None else self.frozen
            struct.pack_into("<H", m.ram, q.avail + 2, self.frozen)

    def publish(self, n=None):
        """Makes the first n chains held back (all by default) available."""
        m = self.inp
        if m.packed:
            n = len(self.held) if n is None else n
            for at, flags in self.held[:n]:
                m.poke(at, flags)
            self.held = self.held[n:]
        else:
            self.visible = self.q.avail_idx if n is None else self.visible + n
            m.poke(self.q.avail + 2, struct.pack("<H", self.visible))


class Driver(Ram):
    """An input of fuzz_scsictl or fuzz_console (fuzz.h's struct fuzz_driver): the header's feature
    words, the driver's operations, and guest RAM from address 0 holding its rings. The two number
    the operations they share apart: a subclass gives its harness's code for each in CODES."""

    CODES = {}  # kick, run, reset, stop, enable, begin, go, status, poke, features

    def __init__(self, size, packed, f0, f1, queues, qsize):
        """queues: the ones up() brings up unless told; qsize(q): the size of a new ring for q."""
        super().__init__(size, 0, packed)
        self.f0, self.f1, self.queues, self.qsize = f0, f1, queues, qsize
        self.ops = bytearray()
        self.rings = {}

    def op(self, code, a=0, payload=b""):
        self.ops += bytes([code | a << 4]) + payload

    def kick(self, q):
        self.op(self.CODES["kick"], q)

    def run(self, n=1):
        self.op(self.CODES["run"], n - 1)

    def reset(self):
        self.op(self.CODES["reset"])

    def stop(self, q):
        self.op(self.CODES["stop"], q)

    def begin(self):
        self.op(self.CODES["begin"])

    def go(self):
        self.op(self.CODES["go"])

    def status(self, v):
        self.op(self.CODES["status"], 0, bytes([v]))

    def poke(self, addr, data):
        self.op(self.CODES["poke"], 0, struct.pack("<HB", addr, len(data)) + data)

    def features(self, sel, val):
        self.op(self.CODES["features"], sel, struct.pack("<I", val))

    def ring(self, q, size=None):
        """A new ring for queue q (what ENABLE will use)."""
        r = Ring(self, size or self.qsize(q))
        self.rings[q] = r
        return r

    def enable(self, q):
        r = self.rings[q]
        self.op(self.CODES["enable"], q, struct.pack("<HHHH", r.size, r.base, r.avail, r.used))

    def up(self, queues=None):
        """The driver's bring-up: features, each queue (on a new ring unless it has one), GO."""
        self.begin()
        for q in self.queues if queues is None else queues:
            if q not in self.rings:
                self.ring(q)
            self.enable(q)
        self.go()

    def save(self, path, head):
        """The input: head (the header's first 4 bytes, the harness's own), the feature words and
        the length of the operations, the operations, RAM."""
        hdr = head + struct.pack("<IIH2x", self.f0, self.f1, len(self.ops))
        with open(path, "wb") as f:
            f.write(hdr + bytes(self.ops) + bytes(self.ram))
