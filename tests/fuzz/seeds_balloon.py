#!/usr/bin/env python3
# Writes the seed corpus of fuzz_balloon into tests/fuzz/corpus/balloon/: a 16-byte header, a list
# of operations and a 32 KiB guest RAM image (see fuzz_balloon.c). Each seed brings the balloon up
# as Linux does and then: inflates and deflates pages (one array, and one cut inside a PFN, with
# PFNs past RAM), sends statistics (the first buffer on a legacy driver too), reports free ranges
# at the spec's queue number and at Linux's, with and without a poison value, changes the target,
# and resets or stops a queue with the statistics buffer held. Run from the top of the tree.
import os
import struct

from rings import Driver

RAM = 32768
PAGE = 4096
QSIZE = 8
LEGACY, STATS, REPORTING, OOM = 1, 2, 4, 8
F_STATS, F_OOM, F_POISON, F_REPORTING = 1 << 1, 1 << 2, 1 << 4, 1 << 5
VERSION_1, PACKED = 1, 1 << 2  # feature word 1
INFLATE, DEFLATE, STATSQ = 0, 1, 2
OUT = os.path.join("tests", "fuzz", "corpus", "balloon")

(KICK, DOORBELL, RUN, _, RESET, STOP, ENABLE, BEGIN, GO, STATUS, CONFIG, POKE, FEATURES,
 TARGET) = range(14)


class Input(Driver):
    CODES = dict(kick=KICK, run=RUN, reset=RESET, stop=STOP, enable=ENABLE, begin=BEGIN, go=GO,
                 status=STATUS, poke=POKE, features=FEATURES)

    def __init__(self, flags, f0=0, f1=VERSION_1, queues=(INFLATE, DEFLATE)):
        super().__init__(RAM, bool(f1 & PACKED) and not flags & LEGACY, f0, f1, queues,
                         lambda q: QSIZE)
        self.flags = flags
        self.buf = 3 * PAGE  # rings and buffers after the three pages given away

    def pfns(self, q, pfns, cuts=None):
        self.rings[q].add(self.pieces(struct.pack("<%dI" % len(pfns), *pfns), cuts))
        self.kick(q)

    def stats(self, q, pairs):
        data = b"".join(struct.pack("<HQ", t, v) for t, v in pairs)
        self.rings[q].add(self.pieces(data))
        self.kick(q)

    def report(self, q, ranges):
        self.rings[q].add([(a, n, True) for a, n in ranges])
        self.kick(q)

    def config(self, off, data):
        self.op(CONFIG, len(data), bytes([off]) + data)

    def target(self, pages):
        self.op(TARGET, 0, struct.pack("<H", pages))

    def write(self, name):
        self.save(os.path.join(OUT, name), bytes([self.flags, 0, 0, 0]))


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.unlink(os.path.join(OUT, f))

    for name, f1 in (("split", VERSION_1), ("packed", VERSION_1 | PACKED)):
        m = Input(0, 0, f1)
        m.up()
        m.target(2)
        m.pfns(INFLATE, [0, 1, 2, RAM // PAGE, 0xC0000])
        m.pfns(DEFLATE, [1, 2], cuts=[3, 2])
        m.config(4, struct.pack("<I", 1))
        m.target(0xFFFF)
        m.write("inflate-deflate-" + name)

    # Statistics, the buffer kept and replaced; reporting at Linux's number (3) and the spec's (4).
    for q in (3, 4):
        m = Input(STATS | REPORTING | OOM, F_STATS | F_OOM | F_REPORTING, VERSION_1,
                  (INFLATE, DEFLATE, STATSQ, q))
        m.up()
        m.stats(STATSQ, [(4, 1000), (5, 2000), (99, 1)])
        m.stats(STATSQ, [(6, 3)])
        m.report(q, [(0, PAGE), (PAGE + 8, PAGE)])
        m.stop(STATSQ)
        m.reset()
        m.write("stats-report-q%d" % q)

    # Reporting without statistics (Linux: queue 2), with a poison value set.
    m = Input(REPORTING, F_REPORTING | F_POISON, VERSION_1, (INFLATE, DEFLATE, STATSQ))
    m.begin()
    m.config(12, struct.pack("<I", 0xAAAAAAAA))
    for q in (INFLATE, DEFLATE, STATSQ):
        m.ring(q)
        m.enable(q)
    m.go()
    m.report(STATSQ, [(0, 2 * PAGE)])
    m.write("report-poisoned")

    # A legacy driver: its first statistics buffer is ignored.
    m = Input(LEGACY | STATS, F_STATS, 0, (INFLATE, DEFLATE, STATSQ))
    m.up()
    m.stats(STATSQ, [(4, 1)])
    m.stats(STATSQ, [(4, 2)])
    m.pfns(INFLATE, [2])
    m.write("legacy-stats")


if __name__ == "__main__":
    main()
