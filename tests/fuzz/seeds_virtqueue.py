#!/usr/bin/env python3
# Writes the seed corpus of fuzz_virtqueue into tests/fuzz/corpus/virtqueue/: well-formed split and
# packed rings (chains, indirect tables, event suppression) and malformed ones, each a 16-byte
# header (see fuzz_virtqueue.c) and a 2 KiB guest RAM image. Run from the top of the tree.
import os
import struct

from rings import AVAIL_F, INDIRECT, NEXT, USED_F, WRITE, Ram

RAM = 2048
DESC, AVAIL, USED, TABLE, BUF = 0x000, 0x100, 0x180, 0x200, 0x300
PACKED, EVENT_IDX, INDIRECT_DESC = 1, 2, 4
OUT = os.path.join("tests", "fuzz", "corpus", "virtqueue")


class Ring(Ram):
    def __init__(self, size, features, packed=False, raw_size=False, rounds=16, hold=False):
        super().__init__(RAM, BUF, packed)
        self.size = size
        qsize = size if packed or raw_size else size.bit_length() - 1
        if raw_size:
            qsize |= 0x8000
        self.hdr = [features | (PACKED if packed else 0), qsize, (rounds - 1) | (0x40 if hold else 0),
                    DESC, AVAIL, USED]
        self.next, self.avail_idx, self.slot, self.wrap = 0, 0, 0, True

    def bufs(self, spec):
        """spec: 'o16 i32' -> [(addr, len, write)], carved from the buffer area."""
        out = []
        for s in spec.split():
            n = int(s[1:])
            out.append((self.buf, n, s[0] == "i"))
            self.buf += n
        return out

    def table(self, spec, chained, at=TABLE):
        for i, (a, n, w) in enumerate(self.bufs(spec)):
            more = NEXT if chained and i < len(spec.split()) - 1 else 0
            self.put(at + 16 * i, a, n, i + 1 if chained else 0, (WRITE if w else 0) | more)
        return at, 16 * len(spec.split())

    def split(self, descs):
        """descs: [(addr, len, flags)] chained at the next free indices; publishes the head."""
        head = self.next
        for i, (a, n, f) in enumerate(descs):
            nxt = (self.next + 1) % self.size
            self.put(DESC + 16 * self.next, a, n, nxt, f | (NEXT if i < len(descs) - 1 else 0))
            self.next = nxt
        self.publish(head)

    def publish(self, head, idx=None):
        struct.pack_into("<H", self.ram, AVAIL + 4 + 2 * (self.avail_idx % self.size), head)
        self.avail_idx += 1
        struct.pack_into("<H", self.ram, AVAIL + 2, self.avail_idx if idx is None else idx)

    def chain(self, spec):
        self.split([(a, n, WRITE if w else 0) for a, n, w in self.bufs(spec)])

    def packed_list(self, descs, bid):
        for i, (a, n, f) in enumerate(descs):
            bits = AVAIL_F if self.wrap else USED_F
            self.put(DESC + 16 * self.slot, a, n, bid, f | bits | (NEXT if i < len(descs) - 1 else 0))
            self.slot += 1
            if self.slot == self.size:
                self.slot, self.wrap = 0, not self.wrap

    def write(self, name):
        h = self.hdr
        data = struct.pack("<BHBIII", h[0], h[1], h[2], h[3], h[4], h[5]) + bytes(self.ram)
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


def main():
    os.makedirs(OUT, exist_ok=True)

    r = Ring(8, 0)
    r.chain("o16 i32"), r.chain("o8"), r.chain("i64"), r.chain("o4 o4 i4 i4"), r.chain("o4 o16")
    r.write("split-chains")

    r = Ring(8, EVENT_IDX, hold=True)
    for _ in range(5):
        r.chain("o8 i8")
    struct.pack_into("<H", r.ram, AVAIL + 4 + 2 * 8, 2)  # used_event
    r.write("split-event-idx-out-of-order")

    r = Ring(8, INDIRECT_DESC | EVENT_IDX)
    t, n = r.table("o16 i8 i8", chained=True)
    r.split([(t, n, INDIRECT)])
    a, n, _ = r.bufs("o12")[0]
    t, tn = r.table("i20", chained=True, at=TABLE + 0x80)
    r.split([(a, n, 0), (t, tn, INDIRECT)])  # direct then indirect: valid
    r.write("split-indirect")

    r = Ring(1, 0, rounds=64)
    r.chain("o8 ")
    r.write("split-size1")

    r = Ring(8, 0, packed=True)
    r.packed_list([(a, n, WRITE if w else 0) for a, n, w in r.bufs("o16 i32")], 0)
    r.packed_list([(a, n, 0) for a, n, _ in r.bufs("o8")], 1)
    r.packed_list([(a, n, WRITE) for a, n, _ in r.bufs("i8 i8 i8")], 2)
    r.write("packed-lists")

    r = Ring(5, EVENT_IDX, packed=True)
    for i, spec in enumerate(["o4 i4", "o4 i4", "i4"]):  # fills the 5 slots
        r.packed_list([(a, n, WRITE if w else 0) for a, n, w in r.bufs(spec)], i)
    struct.pack_into("<HH", r.ram, AVAIL, 3 | 1 << 15, 2)  # driver area: DESC at slot 3, wrap 1
    r.write("packed-event-idx-wrap")

    r = Ring(4, INDIRECT_DESC, packed=True)
    t, n = r.table("o16 i8 i8 i8", chained=False)
    r.packed_list([(t, n, INDIRECT)], 0)
    r.write("packed-indirect")

    r = Ring(3, INDIRECT_DESC | EVENT_IDX, packed=True, rounds=64)
    r.packed_list([(a, n, 0) for a, n, _ in r.bufs("o8")], 0)
    r.write("packed-size3")

    # Malformed split rings.
    def bad_split(name, build, features=INDIRECT_DESC | EVENT_IDX, size=8, **kw):
        r = Ring(size, features, **kw)
        build(r)
        r.write("bad-split-" + name)

    bad_split("loop", lambda r: (r.put(DESC, BUF, 8, 1, NEXT), r.put(DESC + 16, BUF, 8, 0, NEXT),
                                 r.publish(0)))
    bad_split("next-range", lambda r: (r.put(DESC, BUF, 8, 8, NEXT), r.publish(0)))
    bad_split("head-range", lambda r: (r.put(DESC, BUF, 8, 0, 0), r.publish(9)))
    bad_split("zero-len", lambda r: r.split([(BUF, 8, 0), (BUF, 0, WRITE)]))
    bad_split("idx-jump", lambda r: r.publish(0, idx=9))
    bad_split("read-after-write", lambda r: r.split([(BUF, 8, WRITE), (BUF, 8, 0)]))
    bad_split("indirect-next", lambda r: (r.table("o8", False), r.split([(TABLE, 16, INDIRECT | NEXT),
                                                                         (BUF, 8, 0)])))
    bad_split("indirect-nested", lambda r: (r.put(TABLE, TABLE, 16, 0, INDIRECT),
                                            r.split([(TABLE, 16, INDIRECT)])))
    bad_split("indirect-outside", lambda r: r.split([(RAM - 16, 32, INDIRECT)]))
    bad_split("buf-outside", lambda r: r.split([(RAM - 4, 8, 0)]))
    bad_split("misaligned-avail", lambda r: (r.chain("o8"), r.hdr.__setitem__(4, AVAIL + 1)))
    bad_split("used-outside", lambda r: (r.chain("o8"), r.hdr.__setitem__(5, RAM - 8)))
    bad_split("size-3", lambda r: r.chain("o8"), size=3, raw_size=True)

    # Malformed packed rings.
    def bad_packed(name, build, size=4):
        r = Ring(size, INDIRECT_DESC | EVENT_IDX, packed=True)
        build(r)
        r.write("bad-packed-" + name)

    bad_packed("too-long", lambda r: r.packed_list([(BUF, 8, NEXT)] * 4, 0))
    bad_packed("indirect-partial", lambda r: (r.table("o8 o8", False),
                                              r.packed_list([(TABLE, 24, INDIRECT)], 0)))
    bad_packed("indirect-empty", lambda r: r.packed_list([(TABLE, 0, INDIRECT)], 0))
    bad_packed("indirect-after-direct", lambda r: (r.table("o8", False), r.packed_list(
        [(BUF, 8, 0), (TABLE, 16, INDIRECT)], 0)))
    bad_packed("indirect-nested", lambda r: (r.table("o8", False), r.put(TABLE + 16, TABLE, 16, 0, INDIRECT),
                                             r.packed_list([(TABLE, 32, INDIRECT)], 0)))
    bad_packed("buf-wraps", lambda r: r.packed_list([(2**64 - 8, 16, 0)], 0))
    bad_packed("read-after-write", lambda r: r.packed_list([(BUF, 8, WRITE), (BUF, 8, 0)], 0))


main()
