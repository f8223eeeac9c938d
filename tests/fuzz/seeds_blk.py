#!/usr/bin/env python3
# Writes the seed corpus of fuzz_blk into tests/fuzz/corpus/blk/: rings of block requests, well
# formed (reads, writes, flush, GET_ID, discard, write zeroes; split and packed, direct and
# indirect) and malformed (short header, no status byte, sectors out of range, bad segments...),
# each a 16-byte header (see fuzz_blk.c) and a 4 KiB guest RAM image. Run from the top of the tree.
import os
import struct

from rings import Queue, Ram

RAM = 4096
DESC, AVAIL, USED, BUF = 0x000, 0x200, 0x280, 0x400
PACKED, EVENT_IDX, INDIRECT_DESC, RO, NO_DWZ, RESET = 1, 2, 4, 8, 16, 32
T_IN, T_OUT, T_FLUSH, T_GET_ID, T_DISCARD, T_WZ = 0, 1, 4, 8, 11, 13
SECTORS = 64 * 1024 // 512
OUT = os.path.join("tests", "fuzz", "corpus", "blk")


class Ring(Ram):
    def __init__(self, flags=0, size=32, rounds=1):
        super().__init__(RAM, BUF, bool(flags & PACKED))
        self.flags = flags
        self.qsize = size - 1 if self.packed else size.bit_length() - 1
        self.rounds = rounds - 1
        self.q = Queue(self, DESC, AVAIL, size)

    def blk(self, type_, sector, data=None, din=0, status=True, indirect=False, hdr_len=16):
        """A request: header, readable data, din writable data bytes, status byte."""
        hdr = struct.pack("<IIQ", type_, 0, sector)[:hdr_len]
        bufs = [self.alloc(hdr) + (False,)]
        if data:
            bufs.append(self.alloc(data) + (False,))
        if din:
            bufs.append(self.alloc(din) + (True,))
        if status:
            bufs.append(self.alloc(1) + (True,))
        self.q.chain(bufs, indirect)

    def write(self, name):
        data = struct.pack("<BBBBIII", self.flags, self.qsize, self.rounds, 0, DESC, AVAIL, USED)
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data + bytes(self.ram))


def seg(sector, n, flags=0):
    return struct.pack("<QII", sector, n, flags)


def main():
    os.makedirs(OUT, exist_ok=True)
    pattern = bytes((i * 11) & 0xff for i in range(1024))

    for flags, name in [(0, "split"), (PACKED, "packed"), (EVENT_IDX | INDIRECT_DESC, "split-indirect"),
                        (PACKED | INDIRECT_DESC, "packed-indirect")]:
        r = Ring(flags, rounds=2)
        ind = bool(flags & INDIRECT_DESC)
        r.blk(T_OUT, 3, pattern, indirect=ind)
        r.blk(T_IN, 3, din=1024, indirect=ind)
        r.blk(T_FLUSH, 0)
        r.blk(T_GET_ID, 0, din=20)
        r.blk(T_DISCARD, 0, seg(8, 8) + seg(32, 16))
        r.blk(T_WZ, 0, seg(64, 8) + seg(80, 8, 1))
        r.write(name + "-requests")

    r = Ring(RO)
    r.blk(T_OUT, 0, pattern)
    r.blk(T_DISCARD, 0, seg(0, 8))
    r.blk(T_IN, 0, din=512)
    r.write("readonly-writes")

    r = Ring(RESET, rounds=2)
    for i in range(4):
        r.blk(T_OUT, 8 * i, pattern[:512])
    r.write("reset-in-flight")

    r = Ring(NO_DWZ)
    r.blk(T_DISCARD, 0, seg(8, 8))
    r.blk(T_WZ, 0, seg(8, 8))
    r.write("dwz-not-negotiated")

    r = Ring(0)
    r.blk(T_IN, 0, din=512, hdr_len=8)           # short header
    r.blk(T_IN, SECTORS - 1, din=1024)           # past the end
    r.blk(T_OUT, (1 << 64) // 512 + 0, pattern[:512])  # sector * 512 wraps to 0
    r.blk(T_OUT, 0, pattern[:500])               # not whole sectors
    r.blk(T_GET_ID, 0, din=19)                   # GET_ID buffer too small
    r.blk(99, 0, din=16)                         # unknown type
    r.write("bad-requests")

    r = Ring(0)
    r.blk(T_DISCARD, 0, seg(0, 8, 1))            # unmap on a discard
    r.blk(T_WZ, 0, seg(0, 8, 6))                 # unknown flags
    r.blk(T_DISCARD, 0, b"".join(seg(i, 1) for i in range(33)))  # too many segments
    r.blk(T_WZ, 0, seg(SECTORS - 1, 8))          # past the end
    r.blk(T_DISCARD, 0, seg(0, 8)[:12])          # a partial segment
    r.write("bad-segments")

    r = Ring(PACKED)
    r.blk(T_OUT, 0, pattern[:512], status=False)  # no writable byte: NEEDS_RESET
    r.blk(T_IN, 0, din=512)
    r.write("packed-no-status")

    r = Ring(0, size=2, rounds=4)
    r.blk(T_IN, 0, din=512, status=False)        # the data is the status byte
    r.write("split-size2")


main()
