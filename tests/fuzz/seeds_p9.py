#!/usr/bin/env python3
# Writes the seed corpus of fuzz_p9 into tests/fuzz/corpus/p9/: 9P2000.L sessions against the
# share fuzz_p9.c makes (file, empty, sub/inner, sub/deeper/, link -> file, etc -> /etc,
# proc -> /proc/self/root, up -> ../outside, secret -> the file beside the share, fifo), each a
# flags byte and records of len[2] rcut[1] wroom[1] wcut[1] message (see fuzz_p9.c). Messages are
# laid out as Linux's net/9p/protocol.c lays them out. Run from the top of the tree.
import os
import struct

OUT = os.path.join("tests", "fuzz", "corpus", "p9")
RO, SESSION = 1, 2
NOFID = 0xFFFFFFFF
O_RDONLY, O_WRONLY, O_RDWR, O_TRUNC = 0, 1, 2, 0o1000
S_IFIFO, S_IFCHR, S_IFREG = 0o010000, 0o020000, 0o100000
AT_REMOVEDIR = 0x200
XATTR_CREATE, XATTR_REPLACE = 1, 2
ATTR_MODE, ATTR_SIZE, ATTR_ATIME, ATTR_MTIME, ATTR_MTIME_SET = 0x1, 0x8, 0x10, 0x20, 0x100

T = dict(statfs=8, lopen=12, lcreate=14, symlink=16, mknod=18, readlink=22, getattr=24,
         setattr=26, xattrwalk=30, xattrcreate=32, readdir=40, fsync=50, lock=52, getlock=54,
         link=70, mkdir=72, renameat=74, unlinkat=76, version=100, auth=102, attach=104,
         flush=108, walk=110, read=116, write=118, clunk=120, remove=122)


def s(text):
    b = text.encode()
    return struct.pack("<H", len(b)) + b


class Session:
    def __init__(self, flags=0):
        self.flags = flags
        self.records = b""
        self.tag = 0

    def raw(self, msg, rcut=0, wroom=0, wcut=0):
        self.records += struct.pack("<HBBB", len(msg), rcut, wroom, wcut) + msg

    def msg(self, name, body, rcut=0, wroom=0, wcut=0, size=None, tag=None):
        self.tag += 1
        tag = self.tag if tag is None else tag
        n = 7 + len(body) if size is None else size
        self.raw(struct.pack("<IBH", n, T[name], tag) + body, rcut, wroom, wcut)

    # One method per request: its fields, in protocol.c's order.
    def version(self, msize=8192, v="9P2000.L", **kw):
        self.msg("version", struct.pack("<I", msize) + s(v), tag=0xFFFF, **kw)

    def attach(self, fid=0, uid=0, afid=NOFID, **kw):
        self.msg("attach", struct.pack("<II", fid, afid) + s("root") + s("") +
                 struct.pack("<I", uid), **kw)

    def walk(self, fid, newfid, *names, **kw):
        self.msg("walk", struct.pack("<IIH", fid, newfid, len(names)) +
                 b"".join(s(n) for n in names), **kw)

    def lopen(self, fid, flags, **kw):
        self.msg("lopen", struct.pack("<II", fid, flags), **kw)

    def lcreate(self, fid, name, flags, mode, gid=0, **kw):
        self.msg("lcreate", struct.pack("<I", fid) + s(name) +
                 struct.pack("<III", flags, mode, gid), **kw)

    def read(self, fid, off, count, **kw):
        self.msg("read", struct.pack("<IQI", fid, off, count), **kw)

    def write(self, fid, off, data, count=None, **kw):
        self.msg("write", struct.pack("<IQI", fid, off, len(data) if count is None else count) +
                 data, **kw)

    def readdir(self, fid, off, count, **kw):
        self.msg("readdir", struct.pack("<IQI", fid, off, count), **kw)

    def getattr(self, fid, **kw):
        self.msg("getattr", struct.pack("<IQ", fid, 0x3FFF), **kw)

    def setattr(self, fid, valid, mode=0, size=0, mtime=(0, 0), **kw):
        self.msg("setattr", struct.pack("<IIIIIQQQQQ", fid, valid, mode, 0, 0, size, 0, 0,
                                        mtime[0], mtime[1]), **kw)

    def statfs(self, fid, **kw):
        self.msg("statfs", struct.pack("<I", fid), **kw)

    def readlink(self, fid, **kw):
        self.msg("readlink", struct.pack("<I", fid), **kw)

    def mkdir(self, dfid, name, mode=0o755, gid=0, **kw):
        self.msg("mkdir", struct.pack("<I", dfid) + s(name) + struct.pack("<II", mode, gid), **kw)

    def symlink(self, dfid, name, target, gid=0, **kw):
        self.msg("symlink", struct.pack("<I", dfid) + s(name) + s(target) + struct.pack("<I", gid),
                 **kw)

    def mknod(self, dfid, name, mode, major=0, minor=0, gid=0, **kw):
        self.msg("mknod", struct.pack("<I", dfid) + s(name) +
                 struct.pack("<IIII", mode, major, minor, gid), **kw)

    def link(self, dfid, fid, name, **kw):
        self.msg("link", struct.pack("<II", dfid, fid) + s(name), **kw)

    def renameat(self, ofid, oname, nfid, nname, **kw):
        self.msg("renameat", struct.pack("<I", ofid) + s(oname) + struct.pack("<I", nfid) +
                 s(nname), **kw)

    def unlinkat(self, dfid, name, flags=0, **kw):
        self.msg("unlinkat", struct.pack("<I", dfid) + s(name) + struct.pack("<I", flags), **kw)

    def xattrwalk(self, fid, newfid, name, **kw):
        self.msg("xattrwalk", struct.pack("<II", fid, newfid) + s(name), **kw)

    def xattrcreate(self, fid, name, size, flags=0, **kw):
        self.msg("xattrcreate", struct.pack("<I", fid) + s(name) + struct.pack("<QI", size, flags),
                 **kw)

    def fsync(self, fid, **kw):
        self.msg("fsync", struct.pack("<II", fid, 0), **kw)

    def lock(self, fid, **kw):
        self.msg("lock", struct.pack("<IBIQQI", fid, 1, 0, 0, 0, 42) + s("guest"), **kw)

    def getlock(self, fid, **kw):
        self.msg("getlock", struct.pack("<IBQQI", fid, 1, 0, 0, 42) + s("guest"), **kw)

    def clunk(self, fid, **kw):
        self.msg("clunk", struct.pack("<I", fid), **kw)

    def remove(self, fid, **kw):
        self.msg("remove", struct.pack("<I", fid), **kw)

    def flush(self, oldtag, **kw):
        self.msg("flush", struct.pack("<H", oldtag), **kw)

    def save(self, name):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(bytes([self.flags]) + self.records)


def start(flags=0, msize=8192):
    t = Session(flags)
    t.version(msize)
    t.attach(0)
    return t


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.unlink(os.path.join(OUT, f))

    # Reading: what a mount, ls -l, cat and getfattr send.
    t = start()
    t.getattr(0)
    t.statfs(0)
    t.walk(0, 1)
    t.lopen(1, O_RDONLY)
    t.readdir(1, 0, 8168)
    t.readdir(1, 0, 100)
    t.walk(0, 2, "file")
    t.getattr(2)
    t.lopen(2, O_RDONLY)
    t.read(2, 0, 8181)
    t.read(2, 4000, 1000, wcut=7)
    t.walk(0, 3, "sub", "inner")
    t.walk(0, 4, "link")
    t.readlink(4)
    t.walk(0, 5, "file")
    t.xattrwalk(5, 6, "")
    t.read(6, 0, 100)
    t.xattrwalk(5, 7, "user.seed")
    t.read(7, 0, 100)
    t.fsync(2)
    t.lock(2)
    t.getlock(2)
    t.flush(3)
    for fid in range(8):
        t.clunk(fid)
    t.save("session-read")

    # Writing: what touch, echo >, mkdir, mv, ln, setfattr, chmod, truncate and rm send.
    t = start()
    t.walk(0, 1)
    t.lcreate(1, "new", O_RDWR, 0o644)
    t.write(1, 0, b"hello, host\n" * 8, rcut=5)
    t.write(1, 1001, b"at an odd offset", rcut=3, wroom=20, wcut=4)
    t.read(1, 0, 200, wcut=9)
    t.mkdir(0, "dir", 0o2775)
    t.walk(0, 2, "dir")
    t.renameat(0, "new", 2, "moved")
    t.symlink(2, "sl", "moved")
    t.mknod(2, "pipe", S_IFIFO | 0o644)
    t.mknod(2, "null", S_IFCHR | 0o666, 1, 3)
    t.walk(2, 3, "null")
    t.getattr(3)
    t.walk(2, 4, "moved")
    t.link(0, 4, "hard")
    t.setattr(4, ATTR_MODE, 0o4755)
    t.setattr(4, ATTR_SIZE, size=5)
    t.setattr(4, ATTR_MTIME | ATTR_MTIME_SET | ATTR_ATIME, mtime=(1234567890, 5))
    t.walk(0, 5, "empty")
    t.xattrcreate(5, "user.note", 5)
    t.write(5, 0, b"hello")
    t.clunk(5)
    t.walk(0, 5, "empty")
    t.xattrwalk(5, 6, "user.note")
    t.read(6, 0, 5)
    t.walk(0, 7, "empty")
    t.xattrcreate(7, "user.note", 0, XATTR_REPLACE)
    t.clunk(7)
    t.walk(0, 8, "sub", "inner")
    t.lopen(8, O_WRONLY | O_TRUNC)
    t.unlinkat(2, "sl")
    t.unlinkat(2, "pipe")
    t.unlinkat(0, "hard")
    t.unlinkat(0, "dir", AT_REMOVEDIR)
    t.remove(3)
    for fid in range(9):
        t.clunk(fid)
    t.save("session-write")

    # A read-only share: every change refused, reads served.
    t = Session(RO | SESSION)
    t.walk(0, 1)
    t.lcreate(1, "new", O_RDWR, 0o644)
    t.mkdir(0, "dir")
    t.walk(0, 2, "file")
    t.lopen(2, O_RDWR)
    t.lopen(2, O_RDONLY | O_TRUNC)
    t.setattr(2, ATTR_MODE, 0o600)
    t.xattrcreate(2, "user.x", 1)
    t.renameat(0, "file", 0, "other")
    t.unlinkat(0, "empty")
    t.lopen(2, O_RDONLY)
    t.read(2, 0, 4096)
    t.write(2, 0, b"no")
    t.save("readonly")

    # Escapes: `..` from the root, through symlinks, names with '/', link of a symlink.
    t = Session(SESSION)
    t.walk(0, 1, "..", "..", "..", "outside", "secret")
    t.walk(0, 1, "sub", "..", "..", "..", "etc", "passwd")
    t.walk(0, 2, "etc", "passwd")
    t.walk(0, 2, "up", "secret")
    t.walk(0, 2, "proc", "etc")
    t.walk(0, 2, "secret")
    t.lopen(2, O_RDONLY)
    t.setattr(2, ATTR_MODE, 0o777)
    t.link(0, 2, "stolen")
    t.walk(0, 3, "etc")
    t.walk(3, 4, "passwd")
    t.walk(3, 4, "..")
    t.walk(0, 4, "fifo")
    t.lopen(4, O_RDONLY)
    t.walk(0, 5, "sub/inner")
    t.walk(0, 5, ".")
    t.renameat(0, "file", 0, "../file")
    t.renameat(0, "../outside/secret", 0, "mine")
    t.link(0, 1, "../x")
    t.mkdir(0, "..")
    t.symlink(0, "a/b", "/")
    t.unlinkat(0, "..", AT_REMOVEDIR)
    t.save("escapes")

    # Buffers cut small and rooms too small.
    t = Session(SESSION)
    t.walk(0, 1, "file", rcut=1, wcut=1)
    t.lopen(1, O_RDWR, rcut=2, wroom=30, wcut=3)
    t.read(1, 7, 5000, rcut=3, wcut=11)
    t.read(1, 0, 5000, wroom=20, wcut=1)
    t.read(1, 0, 100, wroom=11)
    t.read(1, 0, 100, wroom=10)
    t.getattr(1, wroom=11)
    t.getattr(1, wroom=5)
    t.write(1, 17, bytes(range(256)) * 4, rcut=7, wroom=11, wcut=2)
    t.readdir(0, 0, 8000, wcut=13)
    t.save("split-buffers")

    # Messages that lie: sizes past the bytes or msize, counts past the data, short headers.
    t = Session(SESSION)
    t.walk(0, 1, "file")
    t.lopen(1, O_RDWR)
    t.getattr(1, size=200)
    t.getattr(1, size=3)
    t.raw(b"\x09\x00\x00")
    t.write(1, 0, b"short", count=100)
    t.write(1, 0, bytes(9000))
    t.read(1, 0xFFFFFFFFFFFFFF00, 10)
    t.write(1, 0x7FFFFFFFFFFFFFFF, b"x")
    t.msg("auth", struct.pack("<I", 5) + s("u") + s("") + struct.pack("<I", 0))
    t.msg("walk", struct.pack("<IIH", 0, 9, 17) + s("..") * 17)
    t.raw(struct.pack("<IBH", 7, 99, 1))
    t.save("bad-sizes")

    # Attributes: sizes, offsets and names at their edges (and a write past the declared
    # size, which once wrote past the value's buffer).
    t = Session(SESSION)
    t.walk(0, 1, "file")
    t.xattrcreate(1, "user.small", 4)
    t.write(1, 0, b"x" * 100)
    t.write(1, 0, b"ab")
    t.write(1, 2, b"cd")
    t.write(1, 4, b"e")
    t.clunk(1)
    t.walk(0, 1, "file")
    t.xattrwalk(1, 2, "user.small")
    t.read(2, 0xFFFFFFFFFFFFFFF0, 10)
    t.read(2, 3, 10)
    t.xattrcreate(1, "trusted.x", 1)
    t.xattrcreate(1, "user.vmm.node", 1)
    t.xattrcreate(1, "user.big", 1 << 20)
    t.xattrwalk(1, 3, "user.vmm.node")
    t.xattrcreate(1, "user.new", 3, XATTR_CREATE)
    t.write(1, 0, b"new")
    t.remove(1)
    t.save("xattr-edges")

    # Sessions: requests before Tversion, other versions, msize at its bounds, a new session
    # with fids held.
    t = Session(0)
    t.attach(0)
    t.version(4095)
    t.version(8192, "9P2000.u")
    t.version(1 << 30)
    t.attach(0)
    t.walk(0, 1, "sub")
    t.version(4096)
    t.getattr(1)
    t.attach(0, uid=NOFID)
    t.attach(0)
    t.attach(1, afid=3)
    t.save("versions")

    # Many fids at once, and some of them clunked twice.
    t = Session(SESSION)
    for fid in range(1, 400):
        t.walk(0, fid * 97)
    for fid in range(1, 400, 3):
        t.clunk(fid * 97)
        t.clunk(fid * 97)
    t.save("many-fids")


if __name__ == "__main__":
    main()
