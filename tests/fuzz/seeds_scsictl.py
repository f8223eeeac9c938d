#!/usr/bin/env python3
# Writes the seed corpus of fuzz_scsictl into tests/fuzz/corpus/scsictl/: a 16-byte header, a list
# of operations and a 14 KiB guest RAM image (see fuzz_scsictl.c). Each seed brings the controller
# up as a driver does and then does one interesting thing: I/O on each ring layout, LUN and queue;
# every task management function and AN request; a TMF held for I/O in flight; a reset or a queue
# stop with requests in flight or a TMF held; configuration writes before and after DRIVER_OK;
# malformed control and request chains; refused features; requests published a few at a time
# while others complete; a queue whose 128 requests are all busy. Run from the top of the tree.
import os
import struct

from rings import Driver

RAM = 14336
QSIZE = 32
CTRL, EVENT, RQ0, RQ1 = 0, 1, 2, 3
TWO_LUNS, LAST_RO, TWO_RQ, LEGACY = 1, 2, 4, 8
INDIRECT_DESC, EVENT_IDX = 1 << 28, 1 << 29
VERSION_1, PACKED = 1, 1 << 2  # feature word 1
RESP = 12 + 96
OUT = os.path.join("tests", "fuzz", "corpus", "scsictl")

(KICK, DOORBELL, RUN, DRAIN, RESET, STOP, ENABLE, BEGIN, GO, STATUS, CONFIG, POKE,
 FEATURES) = range(13)

TMF_ABORT_TASK, TMF_ABORT_TASK_SET, TMF_CLEAR_ACA, TMF_CLEAR_TASK_SET = 0, 1, 2, 3
TMF_I_T_NEXUS_RESET, TMF_LOGICAL_UNIT_RESET, TMF_QUERY_TASK, TMF_QUERY_TASK_SET = 4, 5, 6, 7

# Config offsets (struct virtio_scsi_config).
CFG_NUM_QUEUES, CFG_SENSE_SIZE, CFG_CDB_SIZE, CFG_MAX_LUN = 0, 20, 24, 32


def lun_addr(lun, target=0):
    """The request's 8-byte LUN field for a target's LUN."""
    return bytes([1, target, 0x40 | lun >> 8, lun & 0xff, 0, 0, 0, 0])


class Input(Driver):
    CODES = dict(kick=KICK, run=RUN, reset=RESET, stop=STOP, enable=ENABLE, begin=BEGIN, go=GO,
                 status=STATUS, poke=POKE, features=FEATURES)

    def __init__(self, flags=0, f0=0, f1=VERSION_1):
        super().__init__(RAM, bool(f1 & PACKED) and not flags & LEGACY, f0, f1, (CTRL, EVENT, RQ0),
                         lambda q: QSIZE)
        self.flags = flags

    def doorbell(self, q):
        self.op(DOORBELL, q)

    def drain(self):
        self.op(DRAIN)

    def config(self, off, data):
        self.op(CONFIG, len(data), bytes([off]) + data)

    # ---- requests ----

    def req(self, q, cdb, lun=0, dout=b"", din=0, resp=RESP, cdb_size=32, target=0, addr=None,
            tag=0, split=False, indirect=False, hold=False, hdr_len=None, din_cuts=1):
        """One SCSI command on request queue q: header and CDB (and data-out, in the same
        buffer unless split), then the response and data-in as writable buffers."""
        addr = addr or lun_addr(lun, target)
        cdb = bytes(cdb).ljust(cdb_size, b"\0")[:cdb_size]
        hdr = addr + struct.pack("<QBBB", tag, 0, 0, 0) + cdb
        if hdr_len is not None:
            hdr = hdr[:hdr_len]
        if split or not dout:
            bufs = [self.alloc(hdr) + (False,)]
            if dout:
                bufs.append(self.alloc(dout) + (False,))
        else:
            bufs = [self.alloc(hdr + dout) + (False,)]
        if resp:
            bufs.append(self.alloc(resp) + (True,))
        for i in range(din_cuts if din else 0):
            n = din // din_cuts if i < din_cuts - 1 else din - din // din_cuts * (din_cuts - 1)
            bufs.append(self.alloc(n) + (True,))
        self.rings[q].add(bufs, indirect, hold)

    def ctrl(self, m, out_len, in_len, hold):
        """A control request: the first out_len bytes of m, then in_len writable ones if any."""
        bufs = [self.alloc(m[:out_len]) + (False,)]
        if in_len:
            bufs.append(self.alloc(in_len) + (True,))
        self.rings[CTRL].add(bufs, hold=hold)

    def tmf(self, subtype, lun=0, tag=0, target=0, addr=None, out_len=24, in_len=1, hold=False):
        addr = addr or lun_addr(lun, target)
        self.ctrl(struct.pack("<II", 0, subtype) + addr + struct.pack("<Q", tag), out_len, in_len,
                  hold)

    def an(self, type_, lun=0, events=0x7f, out_len=16, in_len=5, hold=False):
        self.ctrl(struct.pack("<I", type_) + lun_addr(lun) + struct.pack("<I", events), out_len,
                  in_len, hold)

    def write(self, name):
        self.save(os.path.join(OUT, name), struct.pack("<B3x", self.flags))


def rw10(op, lba, nb, flags=0):
    return struct.pack(">BBIBHB", op, flags, lba, 0, nb, 0)


def rw16(op, lba, nb, flags=0):
    return struct.pack(">BBQIBB", op, flags, lba, nb, 0, 0)


READ10, WRITE10, READ16, WRITE16 = 0x28, 0x2A, 0x88, 0x8A
TUR = bytes(6)
INQUIRY = bytes([0x12, 0, 0, 0, 36, 0])
READ_CAP10 = bytes([0x25] + [0] * 9)
SYNC_CACHE10 = bytes([0x35] + [0] * 9)
REPORT_LUNS = bytes([0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0])
FUA = 0x08
WLUN = bytes([0xC1, 0x01, 0, 0, 0, 0, 0, 0])


def pattern(n, seed=0):
    return bytes((i * 13 + seed * 7 + 5) & 0xFF for i in range(n))


def unmap(ranges):
    descs = b"".join(struct.pack(">QI4x", lba, nb) for lba, nb in ranges)
    data = struct.pack(">HH4x", 6 + len(descs), len(descs)) + descs
    return bytes([0x42, 0, 0, 0, 0, 0, 0, 0, len(data), 0]), data


def io_mix(m, q, lun=0, indirect=False, split=False, seed=0):
    m.req(q, TUR, lun)
    m.req(q, INQUIRY, lun, din=36, indirect=indirect)
    m.req(q, READ_CAP10, lun, din=8)
    m.req(q, rw10(WRITE10, 3, 2), lun, dout=pattern(1024, seed), indirect=indirect, split=split)
    m.req(q, rw10(READ10, 3, 2), lun, din=1024, indirect=indirect, din_cuts=3 if split else 1)
    m.req(q, SYNC_CACHE10, lun)


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.unlink(os.path.join(OUT, f))

    # I/O on each layout.
    m = Input()
    m.up()
    io_mix(m, RQ0)
    m.kick(RQ0)
    m.drain()
    m.write("split-io")

    m = Input(TWO_LUNS | LAST_RO | TWO_RQ, f1=VERSION_1 | PACKED)
    m.up((CTRL, EVENT, RQ0, RQ1))
    m.req(RQ0, rw10(WRITE10, 0, 1), 0, dout=pattern(512))
    m.req(RQ0, rw10(READ10, 8, 2), 1, din=1024)
    m.req(RQ1, rw10(WRITE10, 0, 1), 1, dout=pattern(512))  # read-only LUN: DATA PROTECT
    m.req(RQ1, REPORT_LUNS, 0, din=64)
    m.req(RQ1, INQUIRY, 1, din=36)
    m.kick(RQ0)
    m.kick(RQ1)
    m.run()
    m.drain()
    m.write("packed-2luns-2queues")

    m = Input(f0=INDIRECT_DESC | EVENT_IDX)
    m.up()
    io_mix(m, RQ0, indirect=True, split=True, seed=1)
    m.kick(RQ0)
    m.run()
    m.drain()
    m.write("split-indirect-event-idx")

    m = Input(f0=INDIRECT_DESC | EVENT_IDX, f1=VERSION_1 | PACKED)
    m.up()
    io_mix(m, RQ0, indirect=True, split=True, seed=2)
    m.kick(RQ0)
    m.drain()
    m.write("packed-indirect-event-idx")

    m = Input(LEGACY, f0=INDIRECT_DESC | EVENT_IDX)
    m.up()
    io_mix(m, RQ0, seed=3)
    m.doorbell(RQ0)
    m.run()
    m.drain()
    m.write("legacy-driver")

    # Every control request the controller answers at once.
    for packed in (False, True):
        m = Input(TWO_LUNS, f1=VERSION_1 | (PACKED if packed else 0))
        m.up()
        for sub in range(8):
            m.tmf(sub, 0, tag=sub)
        m.tmf(99)                              # unknown function: REJECTED
        m.tmf(TMF_LOGICAL_UNIT_RESET, 9)       # INCORRECT_LUN
        m.tmf(TMF_LOGICAL_UNIT_RESET, target=3)  # BAD_TARGET
        m.tmf(TMF_I_T_NEXUS_RESET, 7)          # the nexus reset ignores the LUN
        m.tmf(TMF_QUERY_TASK, addr=WLUN)
        m.an(1)                                # AN query
        m.an(2, 1)                             # AN subscribe
        m.an(5, in_len=1)                      # unknown type: FAILURE
        m.kick(CTRL)
        m.write("ctrl-all-" + ("packed" if packed else "split"))

    # A LUN reset held for the I/O in flight; queries answered while it is under way.
    m = Input(TWO_LUNS)
    m.up()
    for i in range(4):
        m.req(RQ0, rw10(WRITE10, 8 * i, 2), 0, dout=pattern(1024, i), tag=10 + i)
    m.req(RQ0, rw10(READ10, 0, 2), 1, din=1024, tag=20)
    m.tmf(TMF_QUERY_TASK, 0, tag=11)
    m.tmf(TMF_QUERY_TASK_SET, 1)
    m.tmf(TMF_ABORT_TASK, 0, tag=12)
    m.tmf(TMF_LOGICAL_UNIT_RESET, 0)
    m.an(1)
    m.kick(RQ0)
    m.kick(CTRL)
    m.run()
    m.kick(CTRL)
    m.drain()
    m.kick(CTRL)
    m.write("tmf-held-for-io")

    # Reset with requests in flight, then the driver starts again on new rings.
    for packed in (False, True):
        m = Input(f1=VERSION_1 | (PACKED if packed else 0))
        m.up()
        for i in range(3):
            m.req(RQ0, rw10(WRITE10, 16 * i, 2), dout=pattern(1024, i))
        m.tmf(TMF_I_T_NEXUS_RESET)
        m.kick(RQ0)
        m.kick(CTRL)
        m.reset()
        m.ring(CTRL)
        m.ring(RQ0)
        m.up()
        m.req(RQ0, rw10(READ10, 0, 2), din=1024)
        m.tmf(TMF_LOGICAL_UNIT_RESET)
        m.run()
        m.kick(RQ0)
        m.kick(CTRL)
        m.drain()
        m.write("reset-in-flight-" + ("packed" if packed else "split"))

    # A request queue stopped with reads in flight and a LUN reset held for them; set up again
    # elsewhere.
    m = Input(TWO_RQ)
    m.up((CTRL, EVENT, RQ0, RQ1))
    m.req(RQ0, rw10(READ10, 0, 4), din=2048)
    m.req(RQ1, rw10(READ10, 4, 2), din=1024)
    m.tmf(TMF_LOGICAL_UNIT_RESET)
    m.kick(RQ0)
    m.kick(RQ1)
    m.kick(CTRL)
    m.stop(RQ0)
    m.ring(RQ0)
    m.enable(RQ0)
    m.req(RQ0, INQUIRY, din=36)
    m.kick(RQ0)
    m.run()
    m.drain()
    m.write("stop-requestq-in-flight")

    # The control queue stopped with a TMF held; a new ring's request is answered at once.
    m = Input(f1=VERSION_1 | PACKED)
    m.up()
    m.req(RQ0, rw10(READ10, 0, 8), din=4096)
    m.tmf(TMF_ABORT_TASK_SET)
    m.kick(RQ0)
    m.kick(CTRL)
    m.stop(CTRL)
    m.ring(CTRL)
    m.enable(CTRL)
    m.an(1)
    m.kick(CTRL)
    m.drain()
    m.write("stop-controlq-held")

    # cdb_size and sense_size written before DRIVER_OK and while requests run; fields the driver
    # may not change; writes across and past the end of the area; reset puts the defaults back.
    m = Input()
    m.begin()
    for q in (CTRL, EVENT, RQ0):
        m.ring(q)
        m.enable(q)
    m.config(CFG_SENSE_SIZE, struct.pack("<I", 32))
    m.config(CFG_CDB_SIZE, struct.pack("<I", 16))
    m.go()
    m.req(RQ0, rw10(WRITE10, 2, 1), dout=pattern(512), cdb_size=16, resp=12 + 32)
    m.req(RQ0, rw10(READ10, 2, 1), din=512, cdb_size=16, resp=12 + 32)
    m.req(RQ0, TUR, 5, cdb_size=16, resp=12 + 32)  # missing LUN: sense in 32 bytes
    m.kick(RQ0)
    m.config(CFG_CDB_SIZE, struct.pack("<I", 6))
    m.config(CFG_SENSE_SIZE, struct.pack("<I", 0))
    m.req(RQ0, bytes([0x08, 0, 0, 2, 1, 0]), din=512, cdb_size=6, resp=12, hold=True)
    m.req(RQ0, rw10(READ10, 2, 1), din=512, cdb_size=6, resp=12, hold=True)  # cut short
    m.rings[RQ0].publish()
    m.kick(RQ0)
    m.config(CFG_NUM_QUEUES, struct.pack("<I", 7))
    m.config(CFG_MAX_LUN, struct.pack("<I", 9))
    m.config(CFG_SENSE_SIZE + 2, bytes([1, 0, 0, 0, 0]))  # across sense_size and cdb_size
    m.config(34, bytes(4))                                # past the end
    m.config(CFG_SENSE_SIZE, struct.pack("<I", 200))
    # Now sense_size is 200 and cdb_size 0 (the write across them cleared its low bytes).
    m.req(RQ0, TUR, 3, cdb_size=0, resp=12 + 200, hold=True)
    m.rings[RQ0].publish()
    m.kick(RQ0)
    m.drain()
    m.reset()
    m.ring(RQ0)
    m.up()
    m.req(RQ0, INQUIRY, din=36)
    m.kick(RQ0)
    m.drain()
    m.write("config-writes")

    # Short control requests: each puts the device in NEEDS_RESET; the driver resets it and goes
    # on with the next on a new ring.
    m = Input()
    m.up()
    m.tmf(TMF_LOGICAL_UNIT_RESET, out_len=20)
    m.kick(CTRL)
    for make in (lambda: m.an(1, in_len=4), lambda: m.an(2, out_len=12),
                 lambda: m.tmf(TMF_ABORT_TASK, in_len=0), lambda: m.tmf(0, out_len=2)):
        m.reset()
        m.ring(CTRL)
        m.up()
        make()
        m.kick(CTRL)
    m.reset()
    m.ring(CTRL)
    m.up()
    m.an(7, in_len=0)
    m.kick(CTRL)
    m.write("ctrl-short")

    # Malformed and refused requests.
    m = Input(TWO_LUNS)
    m.up()
    m.req(RQ0, TUR, 5, resp=14)                                       # what fits of the sense
    m.req(RQ0, rw10(WRITE10, 0, 1), dout=pattern(512), din=512)       # both ways: FAILURE
    m.req(RQ0, rw10(WRITE10, 0, 1), target=1, dout=pattern(512))      # BAD_TARGET
    m.req(RQ0, REPORT_LUNS, addr=WLUN, din=64)                        # the well-known LUN
    m.req(RQ0, INQUIRY, 5, din=36)                                    # a LUN that is not there
    m.req(RQ0, rw10(WRITE10, 0, 8), dout=pattern(1024))               # less data than said
    m.req(RQ0, rw10(READ10, 127, 2), din=1024)                        # past the end
    m.req(RQ0, TUR, hdr_len=19 + 31)                                  # one CDB byte short
    m.kick(RQ0)
    m.reset()
    m.ring(RQ0)
    m.up()
    m.req(RQ0, TUR, resp=0)                                           # nowhere to answer
    m.kick(RQ0)
    m.write("bad-requests")

    # UNMAP of several ranges, WRITE SAME with UNMAP, FUA writes, 16-byte CDBs, two queues.
    m = Input(TWO_RQ | TWO_LUNS, f1=VERSION_1 | PACKED)
    m.up((CTRL, EVENT, RQ0, RQ1))
    cdb, data = unmap([(8, 4), (32, 8), (100, 2)])
    m.req(RQ0, cdb, dout=data)
    m.req(RQ1, bytes([0x93, 0x08]) + struct.pack(">QI", 40, 4) + bytes(2), dout=bytes(512))
    m.req(RQ0, rw10(WRITE10, 50, 1, FUA), dout=pattern(512, 4))
    m.req(RQ1, rw16(WRITE16, 60, 1, FUA), 1, dout=pattern(512, 5))
    m.req(RQ1, rw16(READ16, 60, 1), 1, din=512)
    cdb, data = unmap([(120, 16)])                                     # past the end
    m.req(RQ0, cdb, dout=data)
    m.kick(RQ1)
    m.kick(RQ0)
    m.run(2)
    m.drain()
    m.write("unmap-fua-two-queues")

    # The event queue: buffers the device keeps, kicked directly and through the doorbell.
    m = Input()
    m.up()
    ev = m.rings[EVENT]
    for _ in range(4):
        ev.add([m.alloc(16) + (True,)])
    ev.add([m.alloc(16) + (False,)])
    m.req(RQ0, INQUIRY, din=36)
    m.kick(EVENT)
    m.doorbell(EVENT)
    m.doorbell(RQ0)
    m.doorbell(9)
    m.run(3)
    m.stop(EVENT)
    m.drain()
    m.write("event-queue")

    # Features: VERSION_1 missing, then a bit that was not offered (FEATURES_OK refused both
    # times, DRIVER_OK is NEEDS_RESET); then the driver does it by hand, register by register.
    m = Input(f1=0)
    m.up()
    m.req(RQ0, TUR)
    m.kick(RQ0)
    m.reset()
    m.status(3)
    m.features(0, 1)           # INOUT: not offered
    m.features(1, VERSION_1)
    m.status(0xB)
    m.features(0, 0)
    m.status(0xB)
    m.status(0x3)              # clears FEATURES_OK: ignored
    m.enable(CTRL)
    m.enable(EVENT)
    m.enable(RQ0)
    m.enable(RQ0)              # enabled already: ignored
    m.status(0xF)
    m.kick(RQ0)
    m.status(0x8F)             # FAILED
    m.drain()
    m.write("features-by-hand")

    # DRIVER_OK without FEATURES_OK; a queue enabled outside RAM.
    m = Input()
    m.status(3)
    m.status(7)
    m.kick(RQ0)
    m.reset()
    m.begin()
    m.op(ENABLE, RQ0, struct.pack("<HHHH", 16, 0xF000, 0xF100, 0xF140))
    m.go()
    m.write("status-order")

    # Many reads published a few at a time while earlier ones complete, with queries of the task
    # set in between.
    m = Input(TWO_LUNS, f0=EVENT_IDX)
    m.ring(RQ0, 64)
    m.up()
    for i in range(12):
        m.req(RQ0, rw10(READ10, i * 2, 1), i % 2, din=512, tag=i, hold=True)
    for i in range(3):
        m.tmf(TMF_QUERY_TASK_SET, i % 2, hold=True)
    for step in range(3):
        m.rings[RQ0].publish(4)
        m.kick(RQ0)
        m.run(step + 1)
        m.rings[CTRL].publish(1)
        m.kick(CTRL)
    m.drain()
    m.write("staged-reads")

    m = Input(TWO_LUNS, f0=EVENT_IDX, f1=VERSION_1 | PACKED)
    m.up()
    for i in range(12):
        m.req(RQ0, rw10(WRITE10 if i % 3 else READ10, i * 2, 1), i % 2, din=0 if i % 3 else 512,
              dout=pattern(512, i) if i % 3 else b"", tag=i, hold=True)
    m.tmf(TMF_LOGICAL_UNIT_RESET, 1, hold=True)
    for step in range(4):
        m.rings[RQ0].publish(3)
        m.doorbell(RQ0)
        m.run(step % 2 + 1)
        if step == 1:
            m.rings[CTRL].publish()
            m.kick(CTRL)
    m.drain()
    m.write("staged-writes-packed")

    # Every one of a queue's 128 requests busy (128 chains sharing one indirect table, reads
    # not reaped yet), then two more published: the queue starves until completions kick it.
    # Once with the device reset in between, so that the busy ones are stale.
    for reset in (False, True):
        m = Input(f0=INDIRECT_DESC, f1=VERSION_1 | (PACKED if reset else 0))
        m.ring(RQ0, 128)
        m.up()
        hdr = bytes([1, 0, 0x40, 0, 0, 0, 0, 0]) + bytes(11) + rw10(READ10, 0, 1).ljust(32, b"\0")
        t = m.table([m.alloc(hdr) + (False,), m.alloc(RESP) + (True,), m.alloc(512) + (True,)])
        r = m.rings[RQ0]
        for i in range(128):
            r.add([(t, 48, None)], hold=i >= 126)
        m.kick(RQ0)
        if reset:
            m.reset()
            m.up()
        r.publish()
        m.kick(RQ0)
        m.run()
        m.run()
        m.drain()
        m.write("starved-queue" + ("-reset" if reset else ""))

    # I/O on two queues, one stopped while in flight, a nexus reset held for the rest, and a
    # device reset with it still held.
    m = Input(TWO_RQ | TWO_LUNS | LAST_RO)
    m.up((CTRL, EVENT, RQ0, RQ1))
    m.req(RQ0, rw10(WRITE10, 0, 4), 0, dout=pattern(2048, 6))
    m.req(RQ1, rw10(READ10, 0, 4), 1, din=2048)
    m.tmf(TMF_I_T_NEXUS_RESET)
    m.tmf(TMF_QUERY_TASK_SET, 1)
    m.kick(RQ0)
    m.kick(RQ1)
    m.kick(CTRL)
    m.stop(RQ1)
    m.kick(CTRL)
    m.reset()
    m.run()
    m.ring(CTRL)
    m.up((CTRL, EVENT, RQ0, RQ1))  # RQ1 on its old ring: its read comes again
    m.tmf(TMF_CLEAR_TASK_SET, 1)
    m.kick(RQ1)
    m.kick(CTRL)
    m.drain()
    m.write("stop-then-reset-held")


main()
