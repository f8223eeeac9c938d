#!/usr/bin/env python3
# Writes the seed corpus of fuzz_net into tests/fuzz/corpus/net/: a 32-byte header (see fuzz_net.c),
# frames from the tap, and a 10 KiB guest RAM image holding the receive, transmit and control
# rings. Well-formed inputs (frames sent with and without offloads, over several descriptors and
# indirect tables; receive buffers, merged ones included; every control command; the legacy
# 10-byte header; a reset) and malformed ones (bad transmit headers, a writable buffer in a
# transmit chain, a receive chain with a readable buffer, a command without an ack byte). Every
# frame that needs several receive buffers finds them: a frame that has to wait for more is
# the device's business, not the seeds'. Run from the top of the tree.
import os
import struct

from rings import Queue, Ram

RAM = 10240
RINGS = [(0x000, 0x200, 0x280), (0x400, 0x600, 0x680), (0x800, 0xa00, 0xa80)]  # rx, tx, ctrl
BUF = 0xc00
PACKED, EVENT_IDX, INDIRECT_DESC, LEGACY, RESET, CONFIG = 1, 2, 4, 8, 16, 32
QSIZES = [16, 16, 32]  # rx, tx, ctrl (which holds 64 at most)

# Device feature bits (net.h).
CSUM, GUEST_CSUM, CTRL_GUEST_OFFLOADS, MTU, MAC_F = 0, 1, 2, 3, 5
GUEST_TSO4, GUEST_TSO6, GUEST_ECN, HOST_TSO4, HOST_TSO6, HOST_ECN = 7, 8, 9, 11, 12, 13
MRG_RXBUF, STATUS, CTRL_VQ, CTRL_RX, CTRL_MAC_ADDR = 15, 16, 17, 18, 23
ALL = sum(1 << b for b in (CSUM, GUEST_CSUM, CTRL_GUEST_OFFLOADS, MTU, MAC_F, GUEST_TSO4,
                           GUEST_TSO6, GUEST_ECN, HOST_TSO4, HOST_TSO6, HOST_ECN, MRG_RXBUF,
                           STATUS, CTRL_VQ, CTRL_RX, CTRL_MAC_ADDR))
NO_MRG = ALL & ~(1 << MRG_RXBUF)

NEEDS_CSUM, DATA_VALID = 1, 2
GSO_NONE, GSO_TCPV4, GSO_UDP, GSO_TCPV6, GSO_ECN = 0, 1, 3, 4, 0x80
CTRL_RX_CLASS, CTRL_MAC, CTRL_MQ, CTRL_GUEST_OFFLOADS_CLASS = 0, 1, 4, 5

MAC = bytes([0x52, 0x54, 0x00, 0x12, 0x34, 0x56])
OTHER = bytes([0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc])
BCAST = b"\xff" * 6
MCAST = bytes([0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb])
OUT = os.path.join("tests", "fuzz", "corpus", "net")


def frame(dst, n, seed=0):
    """An Ethernet frame of n bytes to dst."""
    body = bytes((i * 7 + seed * 13 + 1) & 0xff for i in range(n - 14))
    return dst + bytes([2, 0, 0, 0, 0, 1, 0x08, 0x00]) + body


def vhdr(flags=0, gso=GSO_NONE, hdr_len=0, gso_size=0, csum_start=0, csum_offset=0):
    """struct virtio_net_hdr without num_buffers: the tap's 10 bytes."""
    return struct.pack("<BBHHHH", flags, gso, hdr_len, gso_size, csum_start, csum_offset)


class Input(Ram):
    def __init__(self, flags=0, features=NO_MRG, rounds=1, config=0):
        super().__init__(RAM, BUF, bool(flags & PACKED) and not flags & LEGACY)
        self.flags, self.features, self.rounds, self.config = flags, features, rounds - 1, config
        self.hlen = 12 if not flags & LEGACY or features & (1 << MRG_RXBUF) else 10
        self.frames = b""
        self.q = [Queue(self, desc, avail, n) for (desc, avail, _), n in zip(RINGS, QSIZES)]

    def chain(self, qi, bufs, indirect=False):
        """bufs: [(addr, len, write)] as one chain of queue qi."""
        self.q[qi].chain(bufs, indirect)

    def rx(self, n, size=1526):
        """n receive buffers."""
        for _ in range(n):
            self.chain(0, [self.alloc(size) + (True,)])

    def tx(self, h, fr, cuts=None, indirect=False, writable=0):
        """A frame behind the driver's header, cut into pieces of the given sizes."""
        data = (h + b"\0\0")[:self.hlen] + fr
        self.chain(1, self.pieces(data, cuts, writable), indirect)

    def ctrl(self, cls, cmd, data=b"", ack=True, split=False):
        """A command: class, command and data in one buffer (or split after the command)."""
        if split:
            bufs = [self.alloc(bytes([cls, cmd])) + (False,), self.alloc(data) + (False,)]
        else:
            bufs = [self.alloc(bytes([cls, cmd]) + data) + (False,)]
        if ack:
            bufs.append(self.alloc(1) + (True,))
        self.chain(2, bufs)

    def host(self, h, fr):
        """A frame from the tap: its 10-byte header, then the frame."""
        m = h + fr
        self.frames += struct.pack("<H", len(m)) + m

    def write(self, name):
        sizes = [n - 1 if self.packed else n.bit_length() - 1 for n in QSIZES]
        addrs = [a for ring in RINGS for a in ring]
        hdr = struct.pack("<BBIBBBB9HHH", self.flags, self.rounds, self.features, *sizes,
                          self.config, *addrs, len(self.frames), 0)
        assert len(hdr) == 32
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(hdr + self.frames + bytes(self.ram))


def mac_table(uni, multi):
    return (struct.pack("<I", len(uni)) + b"".join(uni) +
            struct.pack("<I", len(multi)) + b"".join(multi))


def main():
    os.makedirs(OUT, exist_ok=True)
    tcp = frame(OTHER, 200)

    # Frames each way, with and without offloads, on each layout.
    for flags, name in [(0, "split"), (PACKED, "packed"), (EVENT_IDX | INDIRECT_DESC, "split-indirect"),
                        (PACKED | EVENT_IDX | INDIRECT_DESC, "packed-indirect")]:
        x = Input(flags, rounds=2)
        ind = bool(flags & INDIRECT_DESC)
        x.tx(vhdr(), frame(OTHER, 60))
        x.tx(vhdr(NEEDS_CSUM | DATA_VALID, GSO_NONE, 54, 0, 34, 16), tcp, [4, 5, 3, 20, 100],
             indirect=ind)
        x.tx(vhdr(NEEDS_CSUM, GSO_TCPV4, 54, 1448, 34, 16), tcp, [12, 100])
        x.tx(vhdr(NEEDS_CSUM, GSO_TCPV6 | GSO_ECN, 74, 1428, 54, 16), tcp, indirect=ind)
        x.rx(3)
        x.host(vhdr(DATA_VALID), frame(MAC, 60))
        x.host(vhdr(), frame(BCAST, 300, 1))
        x.host(vhdr(), frame(OTHER, 1514, 2))
        x.host(vhdr(), frame(MAC, 100, 3))  # waits: the three buffers are used
        x.write(name + "-frames")

    # Merged receive buffers (no MTU: longer frames): two frames over two buffers each.
    for flags, name in [(0, "split"), (PACKED, "packed")]:
        x = Input(flags, ALL & ~(1 << MTU))
        x.rx(4)
        x.host(vhdr(), frame(MAC, 2000, 4))
        x.host(vhdr(), frame(MAC, 1600, 5))
        x.host(vhdr(), frame(MAC, 60, 6))  # waits for a buffer
        x.write(name + "-mergeable")

    # A buffer too small without MRG_RXBUF; frames the tap should not have sent.
    x = Input(0, NO_MRG)
    x.rx(1, 64)
    x.rx(2)
    x.host(vhdr(), frame(MAC, 100, 7))                               # too big for 64
    x.host(vhdr(NEEDS_CSUM, GSO_TCPV4, 54, 1448, 34, 16), tcp)       # GSO: the tap has none
    x.host(vhdr(NEEDS_CSUM, GSO_NONE, 0, 0, 34, 16), tcp)            # NEEDS_CSUM likewise
    x.host(vhdr(0, 2), tcp)                                          # unknown GSO type
    x.host(vhdr(), frame(MAC, 13)[:13])                              # runt
    x.host(vhdr(), frame(MAC, 1519, 8))                              # longer than the MTU
    x.host(vhdr(), frame(MAC, 60, 9))
    x.write("rx-dropped")

    # The legacy driver's 10-byte header, both ways.
    x = Input(LEGACY, NO_MRG & ~(1 << CTRL_GUEST_OFFLOADS))
    x.tx(vhdr(), frame(OTHER, 60))
    x.tx(vhdr(NEEDS_CSUM, GSO_NONE, 0, 0, 34, 16), tcp, [6, 4, 50])
    x.rx(2)
    x.host(vhdr(), frame(MAC, 80, 10))
    x.ctrl(CTRL_RX_CLASS, 0, b"\0")
    x.write("legacy")

    # The control queue: every command, then frames through the filter it made.
    x = Input(0, NO_MRG, rounds=1)
    x.ctrl(CTRL_RX_CLASS, 0, b"\0")                                   # PROMISC off
    x.ctrl(CTRL_RX_CLASS, 1, b"\1", split=True)                       # ALLMULTI on
    x.ctrl(CTRL_RX_CLASS, 1, b"\0")
    x.ctrl(CTRL_RX_CLASS, 0, b"\2")                                   # bad value
    x.ctrl(CTRL_MAC, 0, mac_table([OTHER], [MCAST]))                 # MAC_TABLE_SET
    x.ctrl(CTRL_MAC, 0, mac_table([bytes([2, 0, 0, 0, 0, i]) for i in range(65)], []))
    x.ctrl(CTRL_MAC, 0, mac_table([OTHER], [MCAST]))
    x.ctrl(CTRL_MAC, 0, struct.pack("<I", 5) + OTHER)                # count past the data
    x.ctrl(CTRL_MAC, 1, bytes([0x52, 0x54, 0, 1, 2, 3]))             # MAC_ADDR_SET
    x.ctrl(CTRL_GUEST_OFFLOADS_CLASS, 0, struct.pack("<Q", (1 << GUEST_CSUM) | (1 << GUEST_TSO4)))
    x.ctrl(CTRL_GUEST_OFFLOADS_CLASS, 0, struct.pack("<Q", 1 << 10))  # UFO: not offered
    x.ctrl(CTRL_MQ, 0, struct.pack("<H", 1))                          # MQ: not offered
    x.ctrl(9, 9)
    x.rx(6, 256)
    for dst in (MAC, OTHER, BCAST, MCAST, bytes([0x52, 0x54, 0, 1, 2, 3]), bytes([0x33, 0x33, 0, 0, 0, 1]),
                bytes([0x52, 0, 0, 0, 0, 9])):
        x.host(vhdr(), frame(dst, 60))
    x.write("ctrl-filter")

    # Bad transmit headers and chains: each dropped, the device fine.
    x = Input(PACKED, NO_MRG & ~(1 << HOST_ECN))
    x.tx(vhdr(), frame(OTHER, 60), writable=64)                      # a writable buffer
    x.tx(vhdr(), frame(OTHER, 13)[:13])                              # too short
    x.tx(vhdr(NEEDS_CSUM, GSO_NONE, 0, 0, 190, 9), tcp)              # checksum past the end
    x.tx(vhdr(NEEDS_CSUM, 5, 54, 1448, 34, 16), tcp)                 # unknown GSO type
    x.tx(vhdr(NEEDS_CSUM, GSO_TCPV4, 54, 0, 34, 16), tcp)            # no segment size
    x.tx(vhdr(0, GSO_TCPV4, 54, 1448, 0, 0), tcp)                    # GSO without NEEDS_CSUM
    x.tx(vhdr(NEEDS_CSUM, GSO_TCPV4 | GSO_ECN, 54, 1448, 34, 16), tcp)  # ECN not negotiated
    x.tx(vhdr(NEEDS_CSUM, GSO_UDP, 42, 1472, 34, 6), tcp)            # UFO not offered
    x.tx(vhdr(0, 0, 5000), tcp)                                      # hdr_len past the frame
    x.write("tx-malformed")

    # NEEDS_RESET: a receive chain with a readable buffer; a command without an ack byte.
    x = Input(0, NO_MRG)
    x.chain(0, [x.alloc(16) + (False,), x.alloc(1526) + (True,)])
    x.host(vhdr(), frame(MAC, 60))
    x.write("rx-readable")
    x = Input(PACKED, NO_MRG)
    x.ctrl(CTRL_RX_CLASS, 0, b"\0", ack=False)
    x.tx(vhdr(), frame(OTHER, 60))
    x.write("ctrl-no-ack")

    # A reset after the first round, with a frame waiting; a configuration write (the MAC).
    x = Input(RESET | CONFIG, NO_MRG, rounds=2, config=(5 << 4) | 0)
    x.tx(vhdr(), frame(OTHER, 60))
    x.ctrl(CTRL_RX_CLASS, 0, b"\0")
    x.host(vhdr(), frame(MAC, 60, 11))
    x.host(vhdr(), frame(MAC, 70, 12))
    x.rx(1)
    x.write("reset")
    x = Input(LEGACY | CONFIG, NO_MRG, config=(5 << 4) | 0)
    x.rx(1)
    x.host(vhdr(), frame(MAC, 60))
    x.write("legacy-config-write")


main()
