#!/usr/bin/env python3
# Writes the seed corpus of fuzz_scsi into tests/fuzz/corpus/scsi/: one file per command the layer
# implements (and a few it refuses), each a 14-byte header (see fuzz_scsi.c), the CDB, then
# data-out. Run from the top of the tree.
import os
import struct

OUT = os.path.join("tests", "fuzz", "corpus", "scsi")
RO, DISCARD, ZEROES, MISSING, WLUN, FAIL = 1, 2, 4, 8, 16, 32
MIB = 1 << 20


def seed(name, cdb, data_in=0, data_out=b"", flags=DISCARD | ZEROES | FAIL, size=MIB,
         cdb_len=None, split_in=0, split_out=0):
    cdb = bytes(cdb)
    hdr = struct.pack("<BQBHBB", flags, size, len(cdb) if cdb_len is None else cdb_len,
                      data_in, split_in, split_out)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(hdr + cdb + bytes(data_out))


def unmap_list(ranges):
    descs = b"".join(struct.pack(">QI4x", lba, nb) for lba, nb in ranges)
    return struct.pack(">HH4x", 6 + len(descs), len(descs)) + descs


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.unlink(os.path.join(OUT, f))
    seed("inquiry", [0x12, 0, 0, 0, 96, 0], 96)
    seed("inquiry-short-buf", [0x12, 0, 0, 0, 255, 0], 10, split_in=3)
    for page in (0x00, 0x80, 0x83, 0xB0, 0xB1, 0xB2, 0x89):
        seed("inquiry-vpd-%02x" % page, [0x12, 1, page, 0, 255, 0], 255)
    seed("test-unit-ready", [0, 0, 0, 0, 0, 0])
    seed("request-sense", [0x03, 0, 0, 0, 252, 0], 252)
    seed("read-capacity10", [0x25] + [0] * 9, 8)
    seed("read-capacity10-huge", [0x25] + [0] * 9, 8, size=(1 << 42) + 512)
    seed("read-capacity16", [0x9E, 0x10] + [0] * 11 + [32, 0, 0], 32)
    seed("read6-zero-len", [0x08, 0, 0, 0, 0, 0], 65535)
    seed("read6", [0x08, 0, 0, 8, 1, 0], 512)
    seed("write6", [0x0A, 0, 0, 8, 1, 0], 0, bytes(512))
    seed("read10", [0x28, 0, 0, 0, 0, 4, 0, 0, 8, 0], 4096, split_in=100)
    seed("read10-end", [0x28, 0, 0, 0, 0x07, 0xFF, 0, 0, 2, 0], 1024)
    seed("write10-fua", [0x2A, 0x08, 0, 0, 0, 4, 0, 0, 2, 0], 0, bytes(1024), split_out=7)
    seed("write10-ro", [0x2A, 0, 0, 0, 0, 4, 0, 0, 2, 0], 0, bytes(1024), flags=RO)
    seed("read12", [0xA8, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0], 1024)
    seed("write12", [0xAA, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0], 0, bytes(1024))
    seed("read16", [0x88, 0] + [0] * 7 + [9, 0, 0, 0, 2, 0, 0], 1024)
    seed("write16", [0x8A, 0] + [0] * 7 + [9, 0, 0, 0, 2, 0, 0], 0, bytes(1024))
    seed("read16-wrap", [0x88, 0] + [0xFF] * 8 + [0, 0, 0, 2, 0, 0], 1024)
    seed("read10-truncated", [0x28, 0, 0, 0, 0, 4, 0, 0, 8, 0], 4096, cdb_len=6)
    seed("sync-cache10", [0x35] + [0] * 9)
    seed("sync-cache16", [0x91] + [0] * 15)
    seed("verify10", [0x2F, 0, 0, 0, 0, 0, 0, 0, 8, 0])
    seed("mode-sense6-caching", [0x1A, 0, 0x08, 0, 255, 0], 255)
    seed("mode-sense6-all-dbd", [0x1A, 0x08, 0x3F, 0, 255, 0], 255)
    seed("mode-sense6-ro", [0x1A, 0, 0x3F, 0xFF, 255, 0], 255, flags=RO)
    seed("mode-sense10-llba", [0x5A, 0x10, 0x0A, 0, 0, 0, 0, 1, 0, 0], 256)
    seed("mode-sense10-changeable", [0x5A, 0, 0x7F, 0, 0, 0, 0, 0, 40, 0], 40)
    seed("report-luns", [0xA0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0], 256, split_in=12)
    seed("report-luns-missing", [0xA0, 0, 2, 0, 0, 0, 0, 0, 1, 0, 0, 0], 256,
         flags=MISSING)
    seed("inquiry-missing", [0x12, 0, 0, 0, 96, 0], 96, flags=MISSING)
    seed("inquiry-wlun", [0x12, 0, 0, 0, 96, 0], 96, flags=MISSING | WLUN)
    seed("unmap", [0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0], 0, unmap_list([(8, 8)]))
    seed("unmap-many", [0x42, 0, 0, 0, 0, 0, 0, 1, 8, 0], 0,
         unmap_list([(i * 10, 2) for i in range(16)]), split_out=20)
    seed("unmap-out-of-range", [0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0], 0,
         unmap_list([(2046, 8)]))
    seed("write-same16-unmap", [0x93, 0x08] + [0] * 7 + [16, 0, 0, 0, 32, 0, 0], 0, bytes(512))
    seed("write-same16-ndob", [0x93, 0x09] + [0] * 7 + [16, 0, 0, 0, 32, 0, 0])
    seed("write-same10", [0x41, 0, 0, 0, 0, 1, 0, 0, 4, 0], 0, bytes(512), flags=ZEROES)
    seed("start-stop", [0x1B, 0, 0, 0, 1, 0])
    seed("bad-opcode", [0xC0] + [0] * 15, 64)


if __name__ == "__main__":
    main()
