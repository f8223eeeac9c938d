#!/usr/bin/env python3
# Writes the seed corpus of fuzz_console into tests/fuzz/corpus/console/: a 16-byte header, a list
# of operations and a 12 KiB guest RAM image (see fuzz_console.c). Each seed brings a multiport
# console up as Linux does (control receive buffers, DEVICE_READY, PORT_READY and PORT_OPEN for
# each port) and then does one interesting thing: output on file ports on each ring layout;
# input and output through a socket client; control messages a driver should not send, short
# ones, port ids out of range; control receive buffers that come late, are too small or are
# readable; a client that stops reading (the chain held) and a reset or queue stop then; a client
# that hangs up; chains that name one buffer many times; a driver without MULTIPORT, a legacy
# one. Run from the top of the tree.
import os
import struct

from rings import Driver

RAM = 12288
QSIZE = 16
NONE, FILE, SOCKET = 0, 1, 2
LEGACY = 1
MULTIPORT, INDIRECT_DESC, EVENT_IDX = 1 << 1, 1 << 28, 1 << 29
VERSION_1, PACKED = 1, 1 << 2  # feature word 1
CTRL_RX, CTRL_TX = 2, 3
DEVICE_READY, DEVICE_ADD, PORT_READY, CONSOLE_PORT = 0, 1, 3, 4
RESIZE, PORT_OPEN, PORT_NAME = 5, 6, 7
OUT = os.path.join("tests", "fuzz", "corpus", "console")

(KICK, RUN, IDLE, RESET, STOP, ENABLE, BEGIN, GO, STATUS, POKE, FEATURES, CONNECT, SEND, RECV,
 HANGUP) = range(15)


def rxq(port):
    return 2 * port + 2 if port else 0


def txq(port):
    return rxq(port) + 1


class Input(Driver):
    CODES = dict(kick=KICK, run=RUN, reset=RESET, stop=STOP, enable=ENABLE, begin=BEGIN, go=GO,
                 status=STATUS, poke=POKE, features=FEATURES)

    def __init__(self, kinds, f0=MULTIPORT, f1=VERSION_1, flags=0):
        super().__init__(RAM, bool(f1 & PACKED) and not flags & LEGACY, f0, f1,
                         range(2 * len(kinds) + 2 if f0 & MULTIPORT else 2),
                         lambda q: 32 if q == CTRL_RX else QSIZE)
        self.kinds, self.flags = kinds, flags

    def idle(self):
        self.op(IDLE)

    def connect(self, port):
        self.op(CONNECT, port)

    def send(self, port, data):
        self.op(SEND, port, bytes([len(data)]) + data)

    def recv(self, port):
        self.op(RECV, port)

    def hangup(self, port):
        self.op(HANGUP, port)

    # ---- buffers ----

    def writable(self, q, n, size, hold):
        """n chains of one writable buffer of size bytes on queue q."""
        for _ in range(n):
            self.rings[q].add([self.alloc(size) + (True,)], hold=hold)

    def ctrl_rx(self, n, size=16, hold=False):
        self.writable(CTRL_RX, n, size, hold)

    def ctrl(self, id_, event, value=1, hold=False, length=8, cut=None):
        m = struct.pack("<IHH", id_, event, value)[:length]
        if cut:
            bufs = [self.alloc(m[:cut]) + (False,), self.alloc(m[cut:]) + (False,)]
        else:
            bufs = [self.alloc(m) + (False,)]
        self.rings[CTRL_TX].add(bufs, hold=hold)

    def hello(self, ports=None):
        """What Linux sends once its rings are up: DEVICE_READY, then PORT_READY and PORT_OPEN
        for each port, with control receive buffers for the device's answers."""
        self.ctrl_rx(24)
        self.kick(CTRL_RX)
        self.ctrl(0, DEVICE_READY)
        for p in range(len(self.kinds)) if ports is None else ports:
            self.ctrl(p, PORT_READY)
            self.ctrl(p, PORT_OPEN)
        self.kick(CTRL_TX)

    def rx(self, port, n, size=64, hold=False):
        self.writable(rxq(port), n, size, hold)

    def tx(self, port, data, cuts=None, indirect=False, writable=0, hold=False):
        self.rings[txq(port)].add(self.pieces(data, cuts, writable), indirect, hold)

    def write(self, name):
        kinds = sum(k << 2 * i for i, k in enumerate(self.kinds))
        head = struct.pack("<BBBx", len(self.kinds) - 2, kinds, self.flags)
        self.save(os.path.join(OUT, name), head)


def text(s, n=0):
    return (s * (1 + n // max(len(s), 1)))[:n] if n else s


def slow_client(m, fill, chains):
    """Port 1's client connected but not reading, and that many chains on port 1's transmit queue,
    kicked: each 63 x 4 KiB of fill through one indirect table, so that a few fill the socket.
    Returns the chain, to add again."""
    m.ring(txq(1), 64)
    m.up()
    m.hello()
    m.connect(1)
    m.run()
    buf = m.alloc(text(fill, 4096))
    chain = [(m.table([buf + (False,)] * 63), 63 * 16, None)]
    for _ in range(chains):
        m.rings[txq(1)].add(chain)
    m.kick(txq(1))
    return chain


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.unlink(os.path.join(OUT, f))

    # Output on file ports, input and output through a socket client, on each layout.
    for name, f0, f1, ind in [("split", 0, VERSION_1, False),
                              ("split-event-idx", EVENT_IDX, VERSION_1, False),
                              ("packed-indirect", INDIRECT_DESC | EVENT_IDX, VERSION_1 | PACKED,
                               True)]:
        m = Input([FILE, FILE, SOCKET, NONE], MULTIPORT | f0, f1)
        m.up()
        m.hello()
        m.tx(0, b"hello from hvc0\n")
        m.tx(1, b"three pieces of one line\n", cuts=[5, 7], indirect=ind)
        m.tx(1, b"and another\n")
        m.tx(3, b"into the void\n")
        m.kick(txq(0))
        m.kick(txq(1))
        m.kick(txq(3))
        m.connect(2)
        m.run()
        m.rx(2, 3)
        m.kick(rxq(2))
        m.send(2, b"typed on the host\n")
        m.run(2)
        m.tx(2, b"to the client\n", indirect=ind)
        m.kick(txq(2))
        m.recv(2)
        m.hangup(2)
        m.run()
        m.kick(CTRL_RX)
        m.idle()
        m.write("multiport-" + name)

    # Port 0 on a socket: the client connects and types before the driver is up; the input
    # waits until the port is open and has buffers.
    m = Input([SOCKET, FILE], MULTIPORT | EVENT_IDX, VERSION_1 | PACKED)
    m.connect(0)
    m.send(0, b"early input\n")
    m.run()
    m.up()
    m.rx(0, 2, 16)
    m.kick(rxq(0))
    m.hello()
    m.run(2)
    m.send(0, text(b"more input ", 100))
    m.run(2)
    m.tx(1, b"file port\n")
    m.kick(txq(1))
    m.idle()
    m.write("socket-port0-early-input")

    # Control messages a driver should not send, one split over two buffers, and finally a port
    # id out of range (NEEDS_RESET); then a short message, an id far out of range, and a
    # message with no readable byte, each after a reset.
    m = Input([FILE, NONE])
    m.up()
    m.ctrl_rx(24)
    m.kick(CTRL_RX)
    m.ctrl(0, DEVICE_READY, 0)
    m.ctrl(0, DEVICE_READY)
    m.ctrl(0, DEVICE_READY)
    for ev in (DEVICE_ADD, CONSOLE_PORT, RESIZE, PORT_NAME, 99):
        m.ctrl(1, ev)
    m.ctrl(1, PORT_READY, 0)
    m.ctrl(1, PORT_READY, cut=4)
    m.ctrl(1, PORT_OPEN, 0)
    m.ctrl(1, PORT_OPEN)
    m.ctrl(2, PORT_READY)
    m.kick(CTRL_TX)
    for make in (lambda: m.ctrl(0, DEVICE_READY, length=4),
                 lambda: m.ctrl(0xFFFFFFFF, PORT_OPEN),
                 lambda: m.rings[CTRL_TX].add([m.alloc(8) + (True,)])):
        m.reset()
        m.ring(CTRL_TX)
        m.up()
        make()
        m.kick(CTRL_TX)
    m.write("ctrl-odd-messages")

    # No control receive buffers while the driver asks for more messages than the device keeps
    # (PORT_READY again and again): some are dropped; then the buffers come.
    m = Input([FILE, FILE, FILE, SOCKET])
    m.ring(CTRL_TX, 32)
    m.up()
    m.ctrl_rx(30, hold=True)
    m.ctrl(0, DEVICE_READY)
    for _ in range(6):
        for p in range(4):
            m.ctrl(p, PORT_READY)
    m.ctrl(3, PORT_OPEN)
    m.kick(CTRL_TX)
    m.connect(3)
    m.run()
    m.hangup(3)
    m.run()
    m.rings[CTRL_RX].publish(10)
    m.kick(CTRL_RX)
    m.rings[CTRL_RX].publish()
    m.kick(CTRL_RX)
    m.write("ctrl-rx-late")

    # Control receive buffers too small for a message, readable, and too small for a name.
    m = Input([NONE, FILE])
    m.up()
    m.rings[CTRL_RX].add([m.alloc(4) + (True,)])
    m.ctrl(0, DEVICE_READY)
    m.kick(CTRL_RX)
    m.kick(CTRL_TX)
    m.reset()
    m.ring(CTRL_RX)
    m.ring(CTRL_TX)
    m.up()
    m.rings[CTRL_RX].add([m.alloc(16) + (False,), m.alloc(16) + (True,)])
    m.ctrl(0, DEVICE_READY)
    m.kick(CTRL_TX)
    m.reset()
    m.ring(CTRL_RX)
    m.ring(CTRL_TX)
    m.up()
    m.ctrl_rx(2, 8)
    m.ctrl(1, PORT_READY)
    m.kick(CTRL_TX)
    m.kick(CTRL_RX)
    m.write("ctrl-rx-bad")

    # A client that does not read: chains of 63 x 4 KiB (one indirect table) fill the socket and
    # one stays held; then a reset, or a stop of the transmit queue, with it held.
    for how in ("reset", "stop"):
        m = Input([NONE, SOCKET], MULTIPORT | INDIRECT_DESC,
                  VERSION_1 | (PACKED if how == "stop" else 0))
        slow_client(m, b"0123456789abcdef", 6)
        m.run(2)
        if how == "reset":
            m.reset()
            m.ring(CTRL_RX)
            m.ring(CTRL_TX)
            m.up()
            m.hello()
        else:
            m.stop(txq(1))
            m.ring(txq(1))
            m.enable(txq(1))
            m.tx(1, b"after the stop\n")
            m.kick(txq(1))
        m.recv(1)
        m.run(3)
        m.recv(1)
        m.idle()
        m.write("socket-held-tx-" + how)

    # A held chain resumed as the client reads; then one held when the client hangs up (the
    # rest of it is discarded and the chain given back).
    m = Input([NONE, SOCKET], MULTIPORT | INDIRECT_DESC)
    chain = slow_client(m, b"fedcba9876543210", 4)
    for _ in range(3):
        m.recv(1)
        m.run(2)
    m.recv(1)
    m.idle()
    for _ in range(4):
        m.rings[txq(1)].add(chain)
    m.kick(txq(1))
    m.run()
    m.hangup(1)
    m.run(2)
    m.idle()
    m.connect(1)
    m.run()
    m.idle()
    m.write("socket-held-tx-resume-hangup")

    # A malformed ring on each kind of queue (a zero-length buffer), one after another, with a
    # reset and new rings in between.
    m = Input([FILE, SOCKET], MULTIPORT, VERSION_1 | PACKED)
    m.up()
    m.ctrl_rx(1)
    m.rings[CTRL_RX].add([(m.alloc(16)[0], 0, True)])
    m.ctrl(0, DEVICE_READY)
    m.kick(CTRL_TX)
    m.kick(CTRL_RX)
    for q in (CTRL_TX, txq(0), rxq(1)):
        m.reset()
        for r in (CTRL_RX, CTRL_TX, txq(0), rxq(1)):
            m.ring(r)
        m.up()
        m.hello()
        m.connect(1)
        m.run()
        m.send(1, b"x")
        m.rings[q].add([(m.alloc(16)[0], 0, q != CTRL_TX and q != txq(0))])
        m.kick(q)
        m.run()
        m.hangup(1)
        m.run()
    m.write("malformed-rings")

    # A client that sends and hangs up while the guest reads; the receive queue stopped and set
    # up again; a second client.
    m = Input([NONE, SOCKET])
    m.up()
    m.hello()
    m.connect(1)
    m.run()
    m.rx(1, 4, 8)
    m.kick(rxq(1))
    m.send(1, text(b"abcdefgh", 40))
    m.hangup(1)
    m.run(3)
    m.stop(rxq(1))
    m.ring(rxq(1))
    m.enable(rxq(1))
    m.connect(1)
    m.run()
    m.send(1, b"second client\n")
    m.rx(1, 2, 32)
    m.kick(rxq(1))
    m.run(2)
    m.idle()
    m.write("socket-hangup-stop-rx")

    # A file port given chains that name one buffer many times (one indirect table), and one
    # kick more than the harness lets a file take.
    m = Input([FILE, FILE], MULTIPORT | INDIRECT_DESC)
    m.ring(txq(1), 32)
    m.up()
    m.hello()
    buf = m.alloc(text(b"The quick brown fox. ", 2048))
    t = m.table([buf + (False,)] * 31)
    for _ in range(3):
        m.rings[txq(1)].add([(t, 31 * 16, None)])
    for _ in range(2):
        m.rings[txq(1)].add([(t, 31 * 16, None)], hold=True)
    m.kick(txq(1))
    m.rings[txq(1)].publish()
    m.kick(txq(1))
    m.tx(0, b"small\n")
    m.kick(txq(0))
    m.write("file-big-chains")

    # A driver that declines MULTIPORT: port 0 alone; kicks of the other queues do nothing.
    m = Input([FILE, FILE, SOCKET], 0)
    m.up(range(8))
    m.tx(0, b"single port\n")
    m.kick(txq(0))
    m.connect(2)
    m.run()
    for q in range(2, 8):
        m.kick(q)
    m.idle()
    m.write("no-multiport")

    m = Input([SOCKET, NONE], 0, VERSION_1 | PACKED)
    m.up()
    m.connect(0)
    m.run()
    m.rx(0, 2, 8)
    m.kick(rxq(0))
    m.send(0, b"hvc0 input without multiport\n")
    m.run(3)
    m.tx(0, b"hvc0 output\n")
    m.kick(txq(0))
    m.recv(0)
    m.rx(0, 2, 64)
    m.kick(rxq(0))
    m.run()
    m.idle()
    m.write("no-multiport-socket-port0")

    # A legacy driver (split rings, feature word 0).
    m = Input([FILE, FILE], MULTIPORT | EVENT_IDX, flags=LEGACY)
    m.up()
    m.hello()
    m.tx(0, b"legacy hvc0\n")
    m.tx(1, b"legacy port\n")
    m.kick(txq(0))
    m.kick(txq(1))
    m.write("legacy-driver")

    # Output published a chain at a time, the driver rewriting a buffer it has not published yet
    # (the file gets what the chain holds when the device reads it).
    m = Input([FILE, FILE, NONE], MULTIPORT | EVENT_IDX)
    m.up()
    m.hello()
    for i in range(4):
        m.tx(1, b"line %d\n" % i, hold=True)
    r = m.rings[txq(1)]
    r.publish(1)
    m.kick(txq(1))
    r.publish(1)
    m.kick(txq(1))
    addr = r.q.desc + 16 * 2   # the third chain's buffer
    buf = struct.unpack_from("<Q", m.ram, addr)[0]
    m.poke(buf, b"LINE")
    r.publish()
    m.kick(txq(1))
    m.kick(txq(1))
    m.write("file-staged-tx")

    # A transmit chain with a writable buffer; after a reset, a receive chain with a readable one
    # where input is waiting.
    m = Input([FILE, SOCKET])
    m.up()
    m.hello()
    m.tx(0, b"ok\n")
    m.tx(0, b"bad\n", writable=16)
    m.kick(txq(0))
    m.reset()
    m.ring(CTRL_RX)
    m.ring(CTRL_TX)
    m.ring(rxq(1))
    m.up()
    m.hello()
    m.connect(1)
    m.run()
    m.send(1, b"input\n")
    m.rings[rxq(1)].add([m.alloc(8) + (False,), m.alloc(8) + (True,)])
    m.kick(rxq(1))
    m.run(2)
    m.write("bad-chains")

    # Reset with control messages queued (no receive buffers), then the driver starts again:
    # the ports are added again. The control queues stopped and set up again midway.
    m = Input([FILE, SOCKET, FILE])
    m.up()
    m.ctrl(0, DEVICE_READY)
    m.ctrl(0, PORT_READY)
    m.kick(CTRL_TX)
    m.reset()
    m.ring(CTRL_RX)
    m.ring(CTRL_TX)
    m.up()
    m.ctrl_rx(4)
    m.kick(CTRL_RX)
    m.ctrl(0, DEVICE_READY)
    m.ctrl(1, PORT_READY)
    m.kick(CTRL_TX)
    m.stop(CTRL_RX)
    m.stop(CTRL_TX)
    m.connect(1)
    m.run()
    m.ring(CTRL_RX)
    m.ring(CTRL_TX)
    m.enable(CTRL_RX)
    m.enable(CTRL_TX)
    m.ctrl_rx(12)
    m.kick(CTRL_RX)
    m.ctrl(2, PORT_READY)
    m.ctrl(1, PORT_OPEN)
    m.kick(CTRL_TX)
    m.tx(2, b"after the stop\n")
    m.kick(txq(2))
    m.idle()
    m.write("reset-and-stop-ctrl")

    # Status writes out of order: DRIVER_OK without FEATURES_OK, bits cleared, FAILED.
    m = Input([FILE, NONE])
    m.status(3)
    m.status(7)
    m.kick(txq(0))
    m.reset()
    m.up()
    m.status(3)
    m.tx(0, b"still running\n")
    m.kick(txq(0))
    m.status(0x8F)
    m.write("status-order")


main()
