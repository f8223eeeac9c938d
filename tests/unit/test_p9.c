/* The 9P2000.L server (backend/p9.c) driven as a guest's client drives it: the test marshals
 * T-messages, serves them with p9_serve from exact-size heap buffers (so ASan sees any access past
 * them), parses the R-messages, and checks every change on the host. Each test has a fresh
 * mkdtemp share and a directory beside it, "outside", that the guest must never reach. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include <cap-ng.h>
#include <cmocka.h>

#include "backend/p9.h"
#include "log.h"

/* Message types, as Linux's include/net/9p/9p.h numbers them. */
enum {
	RLERROR = 7,
	TSTATFS = 8,
	TLOPEN = 12,
	TLCREATE = 14,
	TSYMLINK = 16,
	TMKNOD = 18,
	TRENAME = 20,
	TREADLINK = 22,
	TGETATTR = 24,
	TSETATTR = 26,
	TXATTRWALK = 30,
	TXATTRCREATE = 32,
	TREADDIR = 40,
	TFSYNC = 50,
	TLOCK = 52,
	TGETLOCK = 54,
	TLINK = 70,
	TMKDIR = 72,
	TRENAMEAT = 74,
	TUNLINKAT = 76,
	TVERSION = 100,
	TAUTH = 102,
	TATTACH = 104,
	TFLUSH = 108,
	TWALK = 110,
	TREAD = 116,
	TWRITE = 118,
	TCLUNK = 120,
	TREMOVE = 122,
};

#define NOFID     0xffffffffu
#define QTDIR     0x80
#define QTSYMLINK 0x02
#define QTFILE    0x00
/* Tsetattr's valid bits */
#define ATTR_MODE      0x1
#define ATTR_SIZE      0x8
#define ATTR_ATIME     0x10
#define ATTR_MTIME     0x20
#define ATTR_MTIME_SET 0x100
#define AT_REMOVEDIR_L 0x200

#define MSIZE 65536 /* what the fixture's session agrees on */
#define BUF   (P9_MAX_MSIZE + 4096)
#define ROOT  0 /* the fixture's attached fid */
#define SECRET "not the guest's\n"

struct qid {
	uint8_t type;
	uint32_t version;
	uint64_t path;
};

struct attr {
	uint64_t valid;
	struct qid qid;
	uint32_t mode, uid, gid;
	uint64_t nlink, rdev, size, blksize, blocks;
	uint64_t atime_sec, atime_nsec, mtime_sec, mtime_nsec;
};

struct fx {
	bool plain; /* the share opened as without CAP_SYS_ADMIN: no detached mount */
	char dir[64], out[64]; /* the share; a directory beside it */
	char outname[64];      /* out's last component */
	struct p9_server s;
	unsigned fds; /* the process's descriptors before the test */
	struct stat secret; /* out/secret, as setup made it */
	struct qid root;
	uint32_t msize;
	/* the request being built */
	uint8_t *req;
	size_t len;
	uint8_t type;
	uint16_t tag;
	/* the last reply, gathered from the writable buffers, and where parsing is */
	uint8_t *rep;
	size_t rep_len, at;
	/* what the last reply said */
	unsigned nwqid;
	struct qid qids[16];
	uint32_t count;
	char str[PATH_MAX];
};

/* ---- host side ---- */

static unsigned count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* A path beneath the share (or anywhere, when name starts with '/'), in one of four buffers. */
static const char *hp(struct fx *f, const char *name)
{
	static char bufs[4][PATH_MAX];
	static unsigned i;
	char *b = bufs[i++ % 4];

	if (name[0] == '/')
		snprintf(b, PATH_MAX, "%s", name);
	else
		snprintf(b, PATH_MAX, "%s/%s", f->dir, name);
	return b;
}

static void hput(struct fx *f, const char *name, const void *data, size_t n)
{
	int fd = open(hp(f, name), O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	close(fd);
}

static size_t hget(struct fx *f, const char *name, void *buf, size_t cap)
{
	int fd = open(hp(f, name), O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, cap);
	assert_true(n >= 0);
	close(fd);
	return (size_t)n;
}

static struct stat hstat(struct fx *f, const char *name)
{
	struct stat st;

	assert_int_equal(lstat(hp(f, name), &st), 0);
	return st;
}

static bool hexists(struct fx *f, const char *name)
{
	struct stat st;

	return lstat(hp(f, name), &st) == 0;
}

static uint8_t pattern(size_t i, unsigned seed)
{
	return (uint8_t)(i * 31 + seed + (i >> 8));
}

/* Whether the file system under the share keeps user.* attributes. */
static bool user_xattrs(struct fx *f)
{
	bool ok;

	hput(f, ".probe", "", 0);
	ok = setxattr(hp(f, ".probe"), "user.probe", "1", 1, 0) == 0;
	unlink(hp(f, ".probe"));
	return ok;
}

/* Nothing changed in the directory beside the share. */
static void outside_untouched(struct fx *f)
{
	char path[PATH_MAX], buf[64];
	struct dirent *de;
	struct stat st;
	unsigned n = 0;
	DIR *d;
	int fd;

	assert_non_null(d = opendir(f->out));
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			assert_string_equal(de->d_name, "secret"), n++;
	closedir(d);
	assert_int_equal(n, 1);
	snprintf(path, sizeof(path), "%s/secret", f->out);
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_mode, f->secret.st_mode);
	assert_int_equal(st.st_nlink, 1);
	assert_int_equal(st.st_uid, f->secret.st_uid);
	assert_int_equal(st.st_size, strlen(SECRET));
	assert_int_equal(st.st_mtim.tv_sec, f->secret.st_mtim.tv_sec);
	assert_int_equal(st.st_mtim.tv_nsec, f->secret.st_mtim.tv_nsec);
	assert_int_equal(listxattr(path, buf, sizeof(buf)), 0);
	assert_true((fd = open(path, O_RDONLY)) >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf)), strlen(SECRET));
	assert_memory_equal(buf, SECRET, strlen(SECRET));
	close(fd);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* ---- the client ---- */

static void put_le(struct fx *f, uint64_t v, unsigned n)
{
	assert_true(f->len + n <= BUF);
	for (unsigned i = 0; i < n; i++)
		f->req[f->len++] = (uint8_t)(v >> (8 * i));
}

static void put_str(struct fx *f, const char *s)
{
	size_t n = strlen(s);

	put_le(f, n, 2);
	assert_true(f->len + n <= BUF);
	memcpy(f->req + f->len, s, n);
	f->len += n;
}

/* A new request: size (set when it is sent), type, a new tag. */
static void begin(struct fx *f, uint8_t type)
{
	f->len = 0;
	f->type = type;
	f->tag++;
	put_le(f, 0, 4);
	put_le(f, type, 1);
	put_le(f, f->tag, 2);
}

static void set_size(struct fx *f, uint32_t size)
{
	for (unsigned i = 0; i < 4; i++)
		f->req[i] = (uint8_t)(size >> (8 * i));
}

/* Serves the request in req[0..len) as it is (its size field is not touched): cut into readable
 * buffers of the sizes rq[0..nrq) and one more for what they leave, the reply into writable
 * buffers of the sizes rs[0..nrs). Each buffer is a heap block of exactly its size; the writable
 * bytes past the reply must be as they were. Returns p9_serve's result; the reply is in rep. */
static size_t serve_cut(struct fx *f, const size_t *rq, unsigned nrq, const size_t *rs,
			unsigned nrs)
{
	struct iovec in[17], out[16];
	size_t at = 0, room = 0, ret, done = 0;
	unsigned ni = 0;

	assert_true(nrq <= 16 && nrs <= 16);
	for (unsigned i = 0; i <= nrq; i++) {
		size_t n = i < nrq ? rq[i] : f->len - at;

		if (i == nrq && !n && ni)
			break;
		assert_true(at + n <= f->len);
		assert_non_null(in[ni].iov_base = malloc(n ? n : 1));
		memcpy(in[ni].iov_base, f->req + at, n);
		in[ni++].iov_len = n;
		at += n;
	}
	for (unsigned i = 0; i < nrs; i++) {
		assert_non_null(out[i].iov_base = malloc(rs[i] ? rs[i] : 1));
		memset(out[i].iov_base, 0xa5, rs[i]);
		out[i].iov_len = rs[i];
		room += rs[i];
	}
	ret = p9_serve(&f->s, in, ni, out, nrs);
	assert_true(ret <= room);
	for (unsigned i = 0; i < nrs; i++) {
		for (size_t k = 0; k < rs[i]; k++, done++) {
			uint8_t b = ((uint8_t *)out[i].iov_base)[k];

			if (done < ret)
				f->rep[done] = b;
			else
				assert_int_equal(b, 0xa5);
		}
		free(out[i].iov_base);
	}
	for (unsigned i = 0; i < ni; i++)
		free(in[i].iov_base);
	f->rep_len = ret;
	f->at = 0;
	return ret;
}

static uint64_t get_le(struct fx *f, unsigned n)
{
	uint64_t v = 0;

	assert_true(f->at + n <= f->rep_len);
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)f->rep[f->at + i] << (8 * i);
	f->at += n;
	return v;
}

static void get_str(struct fx *f, char *buf, size_t cap)
{
	size_t n = get_le(f, 2);

	assert_true(n < cap && f->at + n <= f->rep_len);
	memcpy(buf, f->rep + f->at, n);
	buf[n] = '\0';
	f->at += n;
}

static struct qid get_qid(struct fx *f)
{
	struct qid q;

	q.type = (uint8_t)get_le(f, 1);
	q.version = (uint32_t)get_le(f, 4);
	q.path = get_le(f, 8);
	return q;
}

static void qid_equal(struct qid a, struct qid b)
{
	assert_int_equal(a.type, b.type);
	assert_int_equal(a.version, b.version);
	assert_int_equal(a.path, b.path);
}

/* The reply's header after serve_cut returned n: the request's R-type (returns 0) or Rlerror
 * (returns its errno), the size n says, the request's tag. */
static int reply(struct fx *f, size_t n)
{
	uint8_t type;

	assert_true(n >= 7);
	assert_int_equal(get_le(f, 4), n);
	type = (uint8_t)get_le(f, 1);
	assert_int_equal(get_le(f, 2), f->tag);
	if (type == RLERROR) {
		assert_int_equal(n, 11);
		return (int)get_le(f, 4);
	}
	assert_int_equal(type, f->type + 1);
	return 0;
}

/* The request, its size set, in one buffer; the reply into one of msize bytes. */
static int rpc(struct fx *f)
{
	size_t room = f->msize ? f->msize : 4096;

	set_size(f, (uint32_t)f->len);
	return reply(f, serve_cut(f, NULL, 0, &room, 1));
}

/* The reply was read to its end. */
static void done(struct fx *f)
{
	assert_int_equal(f->at, f->rep_len);
}

static int t_version(struct fx *f, uint32_t msize, const char *version)
{
	int err;

	begin(f, TVERSION);
	put_le(f, msize, 4);
	put_str(f, version);
	if (!(err = rpc(f))) {
		f->msize = (uint32_t)get_le(f, 4);
		get_str(f, f->str, sizeof(f->str));
		done(f);
	}
	return err;
}

static int t_attach(struct fx *f, uint32_t fid, uint32_t afid, uint32_t uid, struct qid *q)
{
	int err;

	begin(f, TATTACH);
	put_le(f, fid, 4);
	put_le(f, afid, 4);
	put_str(f, "user");
	put_str(f, "");
	put_le(f, uid, 4);
	if (!(err = rpc(f))) {
		struct qid got = get_qid(f);

		if (q)
			*q = got;
		done(f);
	}
	return err;
}

static int t_walkv(struct fx *f, uint32_t fid, uint32_t newfid, unsigned n,
		   const char *const *names)
{
	int err;

	begin(f, TWALK);
	put_le(f, fid, 4);
	put_le(f, newfid, 4);
	put_le(f, n, 2);
	for (unsigned i = 0; i < n; i++)
		put_str(f, names[i]);
	f->nwqid = 0;
	if (!(err = rpc(f))) {
		f->nwqid = (unsigned)get_le(f, 2);
		assert_true(f->nwqid <= n);
		for (unsigned i = 0; i < f->nwqid; i++)
			f->qids[i] = get_qid(f);
		done(f);
	}
	return err;
}

#define NAMES(...) (sizeof((const char *[]){ __VA_ARGS__ }) / sizeof(const char *))
#define t_walk(f, fid, newfid, ...)                                                     \
	t_walkv(f, fid, newfid, NAMES(__VA_ARGS__), (const char *const[]){ __VA_ARGS__ })

static int t_clone(struct fx *f, uint32_t fid, uint32_t newfid)
{
	return t_walkv(f, fid, newfid, 0, NULL);
}

static int t_clunk(struct fx *f, uint32_t fid)
{
	int err;

	begin(f, TCLUNK);
	put_le(f, fid, 4);
	if (!(err = rpc(f)))
		done(f);
	return err;
}

static int t_getattr(struct fx *f, uint32_t fid, struct attr *a)
{
	struct attr got;
	int err;

	begin(f, TGETATTR);
	put_le(f, fid, 4);
	put_le(f, 0x3fff, 8);
	if ((err = rpc(f)))
		return err;
	got.valid = get_le(f, 8);
	got.qid = get_qid(f);
	got.mode = (uint32_t)get_le(f, 4);
	got.uid = (uint32_t)get_le(f, 4);
	got.gid = (uint32_t)get_le(f, 4);
	got.nlink = get_le(f, 8);
	got.rdev = get_le(f, 8);
	got.size = get_le(f, 8);
	got.blksize = get_le(f, 8);
	got.blocks = get_le(f, 8);
	got.atime_sec = get_le(f, 8);
	got.atime_nsec = get_le(f, 8);
	got.mtime_sec = get_le(f, 8);
	got.mtime_nsec = get_le(f, 8);
	for (unsigned i = 0; i < 6; i++)
		get_le(f, 8); /* ctime, btime, gen, data_version */
	done(f);
	if (a)
		*a = got;
	return 0;
}

/* Whether fid is one the server holds. */
static bool has_fid(struct fx *f, uint32_t fid)
{
	int err = t_getattr(f, fid, NULL);

	assert_true(err == 0 || err == EBADF);
	return err == 0;
}

/* Rlopen and Rlcreate: qid and iounit. */
static int opened(struct fx *f, int err, struct qid *q)
{
	if (!err) {
		struct qid got = get_qid(f);

		if (q)
			*q = got;
		assert_int_equal(get_le(f, 4), 0);
		done(f);
	}
	return err;
}

static int t_lopen(struct fx *f, uint32_t fid, uint32_t flags)
{
	begin(f, TLOPEN);
	put_le(f, fid, 4);
	put_le(f, flags, 4);
	return opened(f, rpc(f), NULL);
}

static int t_lcreate(struct fx *f, uint32_t fid, const char *name, uint32_t flags, uint32_t mode,
		     uint32_t gid, struct qid *q)
{
	begin(f, TLCREATE);
	put_le(f, fid, 4);
	put_str(f, name);
	put_le(f, flags, 4);
	put_le(f, mode, 4);
	put_le(f, gid, 4);
	return opened(f, rpc(f), q);
}

/* Rmkdir, Rsymlink, Rmknod: a qid. */
static int made(struct fx *f, int err, struct qid *q)
{
	if (!err) {
		struct qid got = get_qid(f);

		if (q)
			*q = got;
		done(f);
	}
	return err;
}

static int t_mkdir(struct fx *f, uint32_t dfid, const char *name, uint32_t mode, uint32_t gid,
		   struct qid *q)
{
	begin(f, TMKDIR);
	put_le(f, dfid, 4);
	put_str(f, name);
	put_le(f, mode, 4);
	put_le(f, gid, 4);
	return made(f, rpc(f), q);
}

static int t_symlink(struct fx *f, uint32_t dfid, const char *name, const char *target,
		     struct qid *q)
{
	begin(f, TSYMLINK);
	put_le(f, dfid, 4);
	put_str(f, name);
	put_str(f, target);
	put_le(f, getgid(), 4);
	return made(f, rpc(f), q);
}

static int t_mknod(struct fx *f, uint32_t dfid, const char *name, uint32_t mode, uint32_t maj,
		   uint32_t min, struct qid *q)
{
	begin(f, TMKNOD);
	put_le(f, dfid, 4);
	put_str(f, name);
	put_le(f, mode, 4);
	put_le(f, maj, 4);
	put_le(f, min, 4);
	put_le(f, getgid(), 4);
	return made(f, rpc(f), q);
}

static int t_readlink(struct fx *f, uint32_t fid)
{
	int err;

	begin(f, TREADLINK);
	put_le(f, fid, 4);
	if (!(err = rpc(f))) {
		get_str(f, f->str, sizeof(f->str));
		done(f);
	}
	return err;
}

/* Replies with no fields. */
static int empty(struct fx *f, int err)
{
	if (!err)
		done(f);
	return err;
}

static int t_link(struct fx *f, uint32_t dfid, uint32_t fid, const char *name)
{
	begin(f, TLINK);
	put_le(f, dfid, 4);
	put_le(f, fid, 4);
	put_str(f, name);
	return empty(f, rpc(f));
}

static int t_renameat(struct fx *f, uint32_t ofid, const char *oname, uint32_t nfid,
		      const char *nname)
{
	begin(f, TRENAMEAT);
	put_le(f, ofid, 4);
	put_str(f, oname);
	put_le(f, nfid, 4);
	put_str(f, nname);
	return empty(f, rpc(f));
}

static int t_unlinkat(struct fx *f, uint32_t dfid, const char *name, uint32_t flags)
{
	begin(f, TUNLINKAT);
	put_le(f, dfid, 4);
	put_str(f, name);
	put_le(f, flags, 4);
	return empty(f, rpc(f));
}

static int t_setattr(struct fx *f, uint32_t fid, uint32_t valid, uint32_t mode, uint64_t size,
		     uint64_t mtime_sec, uint64_t mtime_nsec)
{
	begin(f, TSETATTR);
	put_le(f, fid, 4);
	put_le(f, valid, 4);
	put_le(f, mode, 4);
	put_le(f, getuid(), 4);
	put_le(f, getgid(), 4);
	put_le(f, size, 8);
	put_le(f, 0, 8);
	put_le(f, 0, 8);
	put_le(f, mtime_sec, 8);
	put_le(f, mtime_nsec, 8);
	return empty(f, rpc(f));
}

static int t_xattrwalk(struct fx *f, uint32_t fid, uint32_t newfid, const char *name,
		       uint64_t *size)
{
	int err;

	begin(f, TXATTRWALK);
	put_le(f, fid, 4);
	put_le(f, newfid, 4);
	put_str(f, name);
	if (!(err = rpc(f))) {
		*size = get_le(f, 8);
		done(f);
	}
	return err;
}

static int t_xattrcreate(struct fx *f, uint32_t fid, const char *name, uint64_t size,
			 uint32_t flags)
{
	begin(f, TXATTRCREATE);
	put_le(f, fid, 4);
	put_str(f, name);
	put_le(f, size, 8);
	put_le(f, flags, 4);
	return empty(f, rpc(f));
}

static void build_write(struct fx *f, uint32_t fid, uint64_t off, const void *data, uint32_t n)
{
	begin(f, TWRITE);
	put_le(f, fid, 4);
	put_le(f, off, 8);
	put_le(f, n, 4);
	assert_true(f->len + n <= BUF);
	memcpy(f->req + f->len, data, n);
	f->len += n;
	set_size(f, (uint32_t)f->len);
}

/* Rwrite's count in f->count. */
static int written(struct fx *f, int err)
{
	if (!err) {
		f->count = (uint32_t)get_le(f, 4);
		done(f);
	}
	return err;
}

static int t_write(struct fx *f, uint32_t fid, uint64_t off, const void *data, uint32_t n)
{
	build_write(f, fid, off, data, n);
	return written(f, rpc(f));
}

static void build_read(struct fx *f, uint32_t fid, uint64_t off, uint32_t count)
{
	begin(f, TREAD);
	put_le(f, fid, 4);
	put_le(f, off, 8);
	put_le(f, count, 4);
	set_size(f, (uint32_t)f->len);
}

/* Rread: its count in f->count, the data copied to buf. */
static int data_read(struct fx *f, int err, void *buf)
{
	if (!err) {
		f->count = (uint32_t)get_le(f, 4);
		assert_int_equal(f->rep_len - f->at, f->count);
		memcpy(buf, f->rep + f->at, f->count);
		f->at += f->count;
	}
	return err;
}

static int t_read(struct fx *f, uint32_t fid, uint64_t off, uint32_t count, void *buf)
{
	build_read(f, fid, off, count);
	return data_read(f, rpc(f), buf);
}

static int t_readdir(struct fx *f, uint32_t fid, uint64_t off, uint32_t count)
{
	int err;

	begin(f, TREADDIR);
	put_le(f, fid, 4);
	put_le(f, off, 8);
	put_le(f, count, 4);
	if (!(err = rpc(f))) {
		f->count = (uint32_t)get_le(f, 4);
		assert_int_equal(f->rep_len - f->at, f->count);
	}
	return err;
}

/* ---- fixture ---- */

/* Opens the share. As root vmm serves it from a detached nodev, nosuid clone of its mount, which
 * alone keeps `..` in and makes a read-only share read-only; the plain fixture opens it as vmm
 * does without CAP_SYS_ADMIN (dropped from the effective set for the call), so that the server's
 * own checks are tested by themselves too. */
static void fx_open(struct fx *f, bool readonly)
{
	bool admin = false;

	if (f->plain) {
		capng_get_caps_process();
		admin = capng_have_capability(CAPNG_EFFECTIVE, CAP_SYS_ADMIN);
		capng_update(CAPNG_DROP, CAPNG_EFFECTIVE, CAP_SYS_ADMIN);
		assert_true(capng_apply(CAPNG_SELECT_CAPS) >= 0);
	}
	assert_int_equal(p9_open(&f->s, "fs0", f->dir, readonly, "--fs path=test"), 0);
	if (admin) {
		capng_update(CAPNG_ADD, CAPNG_EFFECTIVE, CAP_SYS_ADMIN);
		assert_true(capng_apply(CAPNG_SELECT_CAPS) >= 0);
	}
	if (f->plain)
		assert_false(f->s.detached);
}

static void fx_session(struct fx *f)
{
	assert_int_equal(t_version(f, MSIZE, "9P2000.L"), 0);
	assert_int_equal(f->msize, MSIZE);
	assert_int_equal(t_attach(f, ROOT, NOFID, getuid(), &f->root), 0);
}

static int fx_setup(void **state, bool plain)
{
	struct fx *f = calloc(1, sizeof(*f));
	char path[PATH_MAX];
	int fd;

	assert_non_null(f);
	f->plain = plain;
	assert_non_null(f->req = malloc(BUF));
	assert_non_null(f->rep = malloc(BUF));
	f->fds = count_fds();
	strcpy(f->dir, "/tmp/vmm-p9-XXXXXX");
	strcpy(f->out, "/tmp/vmm-p9-out-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_non_null(mkdtemp(f->out));
	strcpy(f->outname, strrchr(f->out, '/') + 1);
	snprintf(path, sizeof(path), "%s/secret", f->out);
	assert_true((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600)) >= 0);
	assert_int_equal(write(fd, SECRET, strlen(SECRET)), strlen(SECRET));
	close(fd);
	assert_int_equal(lstat(path, &f->secret), 0);
	fx_open(f, false);
	fx_session(f);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return fx_setup(state, false);
}

static int setup_plain(void **state)
{
	return fx_setup(state, true);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	p9_close(&f->s);
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	nftw(f->out, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	assert_int_equal(count_fds(), f->fds); /* the server closed every descriptor */
	free(f->req);
	free(f->rep);
	free(f);
	return 0;
}

/* The share again, served read-only. */
static void fx_readonly(struct fx *f)
{
	p9_close(&f->s);
	fx_open(f, true);
	fx_session(f);
}

/* ---- version and attach ---- */

static void version_negotiation(void **state)
{
	struct fx *f = *state;

	/* A new server serves nothing before Tversion. */
	p9_reset(&f->s);
	f->msize = 0;
	assert_int_equal(t_attach(f, 1, NOFID, 0, NULL), EPROTO);
	assert_int_equal(t_getattr(f, ROOT, NULL), EPROTO);

	/* msize is clamped to what the server takes; too small is refused. */
	assert_int_equal(t_version(f, 1u << 30, "9P2000.L"), 0);
	assert_int_equal(f->msize, P9_MAX_MSIZE);
	assert_string_equal(f->str, "9P2000.L");
	assert_int_equal(t_version(f, P9_MIN_MSIZE - 1, "9P2000.L"), EINVAL);
	assert_int_equal(t_version(f, P9_MIN_MSIZE, "9P2000.L"), 0);
	assert_int_equal(f->msize, P9_MIN_MSIZE);
	assert_int_equal(t_version(f, 12345, "9P2000.L"), 0);
	assert_int_equal(f->msize, 12345);

	/* Other protocols: "unknown". */
	assert_int_equal(t_version(f, 8192, "9P2000.u"), 0);
	assert_string_equal(f->str, "unknown");
	assert_int_equal(t_version(f, 8192, "9P2000"), 0);
	assert_string_equal(f->str, "unknown");

	/* A new Tversion ends the session: its fids are gone. */
	assert_int_equal(t_version(f, MSIZE, "9P2000.L"), 0);
	assert_int_equal(t_attach(f, 7, NOFID, getuid(), NULL), 0);
	assert_true(has_fid(f, 7));
	assert_int_equal(t_version(f, MSIZE, "9P2000.L"), 0);
	assert_false(has_fid(f, 7));
	assert_int_equal(f->s.nr_fids, 0);

	/* And a reset ends it too. */
	p9_reset(&f->s);
	assert_int_equal(t_getattr(f, 7, NULL), EPROTO);
}

/* A Tversion in a dialect the server does not speak leaves no session: only Tversion is
 * served until one names 9P2000.L. */
static void version_unknown_leaves_no_session(void **state)
{
	struct fx *f = *state;
	struct qid q;

	assert_int_equal(t_version(f, MSIZE, "9P2000.u"), 0);
	assert_string_equal(f->str, "unknown");
	assert_int_equal(t_attach(f, 1, NOFID, getuid(), NULL), EPROTO);
	assert_int_equal(t_getattr(f, ROOT, NULL), EPROTO);
	assert_int_equal(t_version(f, MSIZE, "9P2000"), 0);
	assert_string_equal(f->str, "unknown");
	assert_int_equal(t_attach(f, 1, NOFID, getuid(), NULL), EPROTO);
	assert_int_equal(f->s.nr_fids, 0);
	/* Then the right dialect opens one, as if nothing had come before. */
	assert_int_equal(t_version(f, MSIZE, "9P2000.L"), 0);
	assert_string_equal(f->str, "9P2000.L");
	assert_int_equal(f->msize, MSIZE);
	assert_int_equal(t_attach(f, 1, NOFID, getuid(), &q), 0);
	qid_equal(q, f->root);
	assert_true(has_fid(f, 1));
}

static void attach(void **state)
{
	struct fx *f = *state;
	struct stat st = hstat(f, f->dir);
	struct qid q;

	assert_int_equal(f->root.type, QTDIR);
	assert_int_equal(f->root.path, st.st_ino);
	assert_int_equal(t_attach(f, 1, NOFID, getuid(), &q), 0);
	qid_equal(q, f->root);
	assert_int_equal(t_attach(f, 1, NOFID, getuid(), NULL), EBADF); /* in use */
	assert_int_equal(t_attach(f, 2, 5, getuid(), NULL), EINVAL);    /* no authentication */
	assert_int_equal(t_attach(f, NOFID, NOFID, getuid(), NULL), EBADF);
	assert_false(has_fid(f, 2));
	assert_int_equal(f->s.nr_fids, 2);
}

/* ---- walk ---- */

static void walk(void **state)
{
	struct fx *f = *state;
	struct attr a;
	const char *many[17];

	assert_int_equal(mkdir(hp(f, "a"), 0755), 0);
	hput(f, "a/b", "x", 1);

	assert_int_equal(t_walk(f, ROOT, 1, "a", "b"), 0);
	assert_int_equal(f->nwqid, 2);
	assert_int_equal(f->qids[0].type, QTDIR);
	assert_int_equal(f->qids[0].path, hstat(f, "a").st_ino);
	assert_int_equal(f->qids[1].type, QTFILE);
	assert_int_equal(f->qids[1].path, hstat(f, "a/b").st_ino);
	assert_int_equal(t_getattr(f, 1, &a), 0);
	qid_equal(a.qid, f->qids[1]);

	/* A partial walk: the qids found, and no new fid. */
	assert_int_equal(t_walk(f, ROOT, 2, "a", "missing", "b"), 0);
	assert_int_equal(f->nwqid, 1);
	assert_int_equal(f->qids[0].path, hstat(f, "a").st_ino);
	assert_false(has_fid(f, 2));
	assert_int_equal(t_walk(f, ROOT, 2, "a", "b", "c"), 0); /* through a file */
	assert_int_equal(f->nwqid, 2);
	assert_false(has_fid(f, 2));
	/* The first name missing is an error. */
	assert_int_equal(t_walk(f, ROOT, 2, "missing"), ENOENT);
	assert_false(has_fid(f, 2));

	/* No names: a clone. */
	assert_int_equal(t_clone(f, ROOT, 3), 0);
	assert_int_equal(f->nwqid, 0);
	assert_int_equal(t_getattr(f, 3, &a), 0);
	qid_equal(a.qid, f->root);

	/* `..`: the root's is the root, a subdirectory's its parent. */
	assert_int_equal(t_walk(f, ROOT, 4, ".."), 0);
	assert_int_equal(f->nwqid, 1);
	qid_equal(f->qids[0], f->root);
	assert_int_equal(t_walk(f, ROOT, 5, "a", "..", "a", ".."), 0);
	assert_int_equal(f->nwqid, 4);
	qid_equal(f->qids[1], f->root);
	qid_equal(f->qids[3], f->root);

	/* The fid itself moves when newfid is fid. */
	assert_int_equal(t_walk(f, 3, 3, "a"), 0);
	assert_int_equal(t_getattr(f, 3, &a), 0);
	assert_int_equal(a.qid.path, hstat(f, "a").st_ino);

	/* Names that are not one name. */
	assert_int_equal(t_walk(f, ROOT, 6, "a/b"), EINVAL);
	assert_int_equal(t_walk(f, ROOT, 6, "."), EINVAL);
	assert_int_equal(t_walk(f, ROOT, 6, ""), EINVAL);
	assert_int_equal(t_walk(f, ROOT, 6, "a", "."), 0); /* found up to there */
	assert_int_equal(f->nwqid, 1);
	assert_false(has_fid(f, 6));
	/* More than 16 names, an unknown fid, a newfid in use. */
	for (unsigned i = 0; i < 17; i++)
		many[i] = "..";
	assert_int_equal(t_walkv(f, ROOT, 6, 17, many), EINVAL);
	assert_int_equal(t_walkv(f, ROOT, 6, 16, many), 0);
	assert_int_equal(f->nwqid, 16);
	assert_int_equal(t_walk(f, 99, 7, "a"), EBADF);
	assert_int_equal(t_walk(f, ROOT, 1, "a"), EBADF);
	assert_int_equal(t_clone(f, ROOT, NOFID), EBADF);
	assert_false(has_fid(f, 7));
}

/* A name of 255 bytes is one; 256 is not. */
static void long_names(void **state)
{
	struct fx *f = *state;
	char name[300];

	memset(name, 'n', 255);
	name[255] = '\0';
	hput(f, name, "", 0);
	assert_int_equal(t_walk(f, ROOT, 1, name), 0);
	assert_int_equal(f->qids[0].path, hstat(f, name).st_ino);
	memset(name, 'n', 256);
	name[256] = '\0';
	assert_int_equal(t_walk(f, ROOT, 2, name), EINVAL);
	assert_int_equal(t_lcreate(f, ROOT, name, O_RDWR, 0644, 0, NULL), EINVAL);
}

/* ---- attributes ---- */

static void getattr_matches_host(void **state)
{
	struct fx *f = *state;
	uint8_t data[1234];
	struct attr a;
	struct stat st;

	memset(data, 7, sizeof(data));
	hput(f, "file", data, sizeof(data));
	assert_int_equal(chmod(hp(f, "file"), 0640), 0);
	assert_int_equal(link(hp(f, "file"), hp(f, "file2")), 0);
	st = hstat(f, "file");
	assert_int_equal(t_walk(f, ROOT, 1, "file"), 0);
	assert_int_equal(t_getattr(f, 1, &a), 0);
	assert_int_equal(a.valid, 0x7ff);
	assert_int_equal(a.qid.type, QTFILE);
	assert_int_equal(a.qid.path, st.st_ino);
	assert_int_equal(a.mode, S_IFREG | 0640);
	assert_int_equal(a.uid, st.st_uid);
	assert_int_equal(a.gid, st.st_gid);
	assert_int_equal(a.nlink, 2);
	assert_int_equal(a.size, 1234);
	assert_int_equal(a.blksize, st.st_blksize);
	assert_int_equal(a.blocks, st.st_blocks);
	assert_int_equal(a.mtime_sec, st.st_mtim.tv_sec);
	assert_int_equal(a.mtime_nsec, st.st_mtim.tv_nsec);
	assert_int_equal(a.atime_sec, st.st_atim.tv_sec);

	st = hstat(f, f->dir);
	assert_int_equal(t_getattr(f, ROOT, &a), 0);
	assert_int_equal(a.mode, st.st_mode);
	assert_true(S_ISDIR(a.mode));
	assert_int_equal(a.qid.type, QTDIR);
	assert_int_equal(t_getattr(f, 42, &a), EBADF);
}

static void setattr(void **state)
{
	struct fx *f = *state;
	struct stat before, st;
	time_t now;

	hput(f, "file", "0123456789", 10);
	assert_int_equal(mkdir(hp(f, "dir"), 0755), 0);
	assert_int_equal(t_walk(f, ROOT, 1, "file"), 0);
	assert_int_equal(t_walk(f, ROOT, 2, "dir"), 0);

	assert_int_equal(t_setattr(f, 1, ATTR_MODE, 0604, 0, 0, 0), 0);
	assert_int_equal(hstat(f, "file").st_mode, S_IFREG | 0604);
	assert_int_equal(t_setattr(f, 1, ATTR_MODE, 06755, 0, 0, 0), 0); /* setuid, setgid go */
	assert_int_equal(hstat(f, "file").st_mode, S_IFREG | 0755);
	/* A directory keeps setgid (it says whose group new files get). */
	assert_int_equal(t_setattr(f, 2, ATTR_MODE, 02750, 0, 0, 0), 0);
	assert_int_equal(hstat(f, "dir").st_mode, S_IFDIR | 02750);

	assert_int_equal(t_setattr(f, 1, ATTR_SIZE, 0, 5, 0, 0), 0);
	assert_int_equal(hstat(f, "file").st_size, 5);
	assert_int_equal(t_setattr(f, 1, ATTR_SIZE, 0, 100000, 0, 0), 0);
	assert_int_equal(hstat(f, "file").st_size, 100000);
	assert_int_equal(t_setattr(f, 2, ATTR_SIZE, 0, 0, 0, 0), EISDIR);
	assert_int_equal(t_setattr(f, 1, ATTR_SIZE, 0, 1ull << 63, 0, 0), EFBIG);

	before = hstat(f, "file");
	assert_int_equal(t_setattr(f, 1, ATTR_MTIME | ATTR_MTIME_SET, 0, 0, 1234567890, 123456789),
			 0);
	st = hstat(f, "file");
	assert_int_equal(st.st_mtim.tv_sec, 1234567890);
	assert_int_equal(st.st_mtim.tv_nsec, 123456789);
	assert_int_equal(st.st_atim.tv_sec, before.st_atim.tv_sec); /* not asked for */
	assert_int_equal(st.st_atim.tv_nsec, before.st_atim.tv_nsec);
	assert_int_equal(st.st_size, 100000);
	assert_int_equal(t_setattr(f, 1, ATTR_MTIME | ATTR_MTIME_SET, 0, 0, 1, 1000000000), EINVAL);
	assert_int_equal(hstat(f, "file").st_mtim.tv_sec, 1234567890);
	/* Without _SET: the server's clock. */
	now = time(NULL);
	assert_int_equal(t_setattr(f, 1, ATTR_MTIME | ATTR_ATIME, 0, 0, 5, 5), 0);
	st = hstat(f, "file");
	assert_true(st.st_mtim.tv_sec >= now && st.st_mtim.tv_sec <= now + 5);
	assert_true(st.st_atim.tv_sec >= now && st.st_atim.tv_sec <= now + 5);
}

static void statfs_matches_host(void **state)
{
	struct fx *f = *state;
	struct statfs st;

	assert_int_equal(statfs(f->dir, &st), 0);
	begin(f, TSTATFS);
	put_le(f, ROOT, 4);
	assert_int_equal(rpc(f), 0);
	assert_int_equal(get_le(f, 4), (uint32_t)st.f_type);
	assert_int_equal(get_le(f, 4), st.f_bsize);
	assert_int_equal(get_le(f, 8), st.f_blocks);
	get_le(f, 8); /* bfree, bavail, files, ffree: they move */
	get_le(f, 8);
	assert_int_equal(get_le(f, 8), st.f_files);
	get_le(f, 8);
	get_le(f, 8); /* fsid */
	assert_int_equal(get_le(f, 4), st.f_namelen);
	done(f);

	begin(f, TSTATFS);
	put_le(f, 9, 4);
	assert_int_equal(rpc(f), EBADF);
}

/* ---- reading and writing ---- */

/* O_APPEND reaches the host: a write lands at the file's end there, whatever offset the client
 * sent (a host process may have appended meanwhile). */
static void append_at_host_end(void **state)
{
	struct fx *f = *state;
	char buf[16];

	hput(f, "log", "abc", 3);
	assert_int_equal(t_walk(f, ROOT, 1, "log"), 0);
	assert_int_equal(t_lopen(f, 1, O_WRONLY | O_APPEND), 0);
	hput(f, "log", "abcdef", 6); /* the host appended after the guest opened it */
	assert_int_equal(t_write(f, 1, 3, "xy", 2), 0);
	assert_int_equal(hget(f, "log", buf, sizeof(buf)), 8);
	assert_memory_equal(buf, "abcdefxy", 8);
}

static void read_write_split(void **state)
{
	struct fx *f = *state;
	enum { SIZE = 20000, OFF = 12345, N = 7001 };
	static uint8_t before[SIZE], data[N], host[SIZE + 10], back[N + 2];
	const size_t rq[] = { 3, 10, 9, 1, 5000 };        /* header and fields cut anywhere */
	const size_t rs_w[] = { 5, 6 };                   /* Rwrite's 11 bytes in two */
	const size_t rs_r[] = { 2, 9, 1, 4000, 3100, 7 }; /* Rread's header in three */

	for (size_t i = 0; i < SIZE; i++)
		before[i] = pattern(i, 1);
	for (size_t i = 0; i < N; i++)
		data[i] = pattern(i, 2);
	hput(f, "data", before, SIZE);
	assert_int_equal(t_walk(f, ROOT, 1, "data"), 0);
	assert_int_equal(t_lopen(f, 1, O_RDWR), 0);

	build_write(f, 1, OFF, data, N);
	assert_int_equal(reply(f, serve_cut(f, rq, 5, rs_w, 2)), 0);
	assert_int_equal(written(f, 0), 0);
	assert_int_equal(f->count, N);
	assert_int_equal(hget(f, "data", host, sizeof(host)), SIZE);
	assert_memory_equal(host, before, OFF);
	assert_memory_equal(host + OFF, data, N);
	assert_memory_equal(host + OFF + N, before + OFF + N, SIZE - OFF - N);

	/* Read back from one byte before, into pieces. */
	build_read(f, 1, OFF - 1, N + 2);
	assert_int_equal(data_read(f, reply(f, serve_cut(f, rq, 2, rs_r, 6)), back), 0);
	assert_int_equal(f->count, N + 2);
	assert_int_equal(back[0], before[OFF - 1]);
	assert_memory_equal(back + 1, data, N);
	assert_int_equal(back[N + 1], before[OFF + N]);

	/* Past the end: nothing; a write there grows the file. */
	assert_int_equal(t_read(f, 1, SIZE, 100, back), 0);
	assert_int_equal(f->count, 0);
	assert_int_equal(t_write(f, 1, SIZE + 3, "xyz", 3), 0);
	assert_int_equal(f->count, 3);
	assert_int_equal(hget(f, "data", host, sizeof(host)), SIZE + 6);
	assert_memory_equal(host + SIZE, "\0\0\0xyz", 6);

	/* A file opened to read is not written; an unopened fid is neither. */
	assert_int_equal(t_walk(f, ROOT, 2, "data"), 0);
	assert_int_equal(t_read(f, 2, 0, 10, back), EBADF);
	assert_int_equal(t_write(f, 2, 0, "x", 1), EBADF);
	assert_int_equal(t_lopen(f, 2, O_RDONLY), 0);
	assert_int_equal(t_lopen(f, 2, O_RDONLY), EBADF); /* opened already */
	assert_int_equal(t_write(f, 2, 0, "x", 1), EBADF);
	assert_int_equal(t_read(f, 2, 0, 10, back), 0);
	assert_int_equal(f->count, 10);
	assert_memory_equal(back, before, 10);
	/* A directory is opened to read only, and read with Treaddir. */
	assert_int_equal(t_clone(f, ROOT, 3), 0);
	assert_int_equal(t_lopen(f, 3, O_RDWR), EISDIR);
	assert_int_equal(t_lopen(f, 3, O_RDONLY), 0);
	assert_int_equal(t_read(f, 3, 0, 10, back), EISDIR);
	assert_int_equal(t_write(f, 3, 0, "x", 1), EISDIR);
	/* O_TRUNC truncates. */
	assert_int_equal(t_walk(f, ROOT, 4, "data"), 0);
	assert_int_equal(t_lopen(f, 4, O_WRONLY | O_TRUNC), 0);
	assert_int_equal(hstat(f, "data").st_size, 0);
	/* fsync on an open fid; not on a walked one. */
	begin(f, TFSYNC);
	put_le(f, 4, 4);
	put_le(f, 0, 4);
	assert_int_equal(empty(f, rpc(f)), 0);
	begin(f, TFSYNC);
	put_le(f, ROOT, 4);
	put_le(f, 0, 4);
	assert_int_equal(rpc(f), EBADF);
}

/* Tfsync's datasync field is part of the message: without it the message is short. */
static void fsync_truncated(void **state)
{
	struct fx *f = *state;

	hput(f, "file", "data", 4);
	assert_int_equal(t_walk(f, ROOT, 1, "file"), 0);
	assert_int_equal(t_lopen(f, 1, O_RDWR), 0);
	begin(f, TFSYNC);
	put_le(f, 1, 4);
	assert_int_equal(rpc(f), EINVAL);
	begin(f, TFSYNC);
	put_le(f, 1, 2);
	assert_int_equal(rpc(f), EINVAL);
	/* The whole message, to the same fid. */
	begin(f, TFSYNC);
	put_le(f, 1, 4);
	put_le(f, 1, 4);
	assert_int_equal(empty(f, rpc(f)), 0);
}

/* Tread puts its data straight into the writable buffers: never past them. */
static void read_stays_in_buffers(void **state)
{
	struct fx *f = *state;
	static uint8_t data[8192];
	const size_t rs[] = { 7, 4, 10 };
	const size_t exact[] = { 11 };
	const size_t small[] = { 11 + 100 };

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = pattern(i, 3);
	hput(f, "data", data, sizeof(data));
	assert_int_equal(t_walk(f, ROOT, 1, "data"), 0);
	assert_int_equal(t_lopen(f, 1, O_RDONLY), 0);

	/* 21 bytes of room: 10 of data. */
	build_read(f, 1, 3, 4096);
	assert_int_equal(serve_cut(f, NULL, 0, rs, 3), 21);
	assert_int_equal(data_read(f, reply(f, 21), f->str), 0);
	assert_int_equal(f->count, 10);
	assert_memory_equal(f->str, data + 3, 10);
	/* Room for the header alone: no data. */
	build_read(f, 1, 0, 4096);
	assert_int_equal(data_read(f, reply(f, serve_cut(f, NULL, 0, exact, 1)), f->str), 0);
	assert_int_equal(f->count, 0);
	/* More than msize asked: msize - 11 given. */
	assert_int_equal(t_version(f, P9_MIN_MSIZE, "9P2000.L"), 0);
	assert_int_equal(t_attach(f, ROOT, NOFID, getuid(), NULL), 0);
	assert_int_equal(t_walk(f, ROOT, 1, "data"), 0);
	assert_int_equal(t_lopen(f, 1, O_RDONLY), 0);
	assert_int_equal(t_read(f, 1, 0, 8192, f->str), 0);
	assert_int_equal(f->count, P9_MIN_MSIZE - 11);
	assert_memory_equal(f->str, data, P9_MIN_MSIZE - 11);
	build_read(f, 1, 100, 0xffffffff);
	assert_int_equal(data_read(f, reply(f, serve_cut(f, NULL, 0, small, 1)), f->str), 0);
	assert_int_equal(f->count, 100);
	assert_memory_equal(f->str, data + 100, 100);
}

/* ---- making and removing files ---- */

static void lcreate(void **state)
{
	struct fx *f = *state;
	mode_t old = umask(077);
	char buf[8];
	struct qid q;
	struct stat st;

	assert_int_equal(t_clone(f, ROOT, 1), 0);
	assert_int_equal(t_lcreate(f, 1, "new", O_RDWR, 0666, getgid(), &q), 0);
	st = hstat(f, "new");
	assert_int_equal(st.st_mode, S_IFREG | 0666); /* past the umask */
	assert_int_equal(q.type, QTFILE);
	assert_int_equal(q.path, st.st_ino);
	/* The fid is the new file, open. */
	assert_int_equal(t_write(f, 1, 0, "abc", 3), 0);
	assert_int_equal(hget(f, "new", buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "abc", 3);
	assert_int_equal(t_lcreate(f, 1, "again", O_RDWR, 0666, 0, NULL), EBADF);

	/* setuid and setgid are dropped. */
	assert_int_equal(t_clone(f, ROOT, 2), 0);
	assert_int_equal(t_lcreate(f, 2, "suid", O_WRONLY, 06755, getgid(), NULL), 0);
	assert_int_equal(hstat(f, "suid").st_mode, S_IFREG | 0755);
	assert_int_equal(t_clone(f, ROOT, 3), 0);
	assert_int_equal(t_lcreate(f, 3, "sticky", O_RDONLY, 01600, getgid(), NULL), 0);
	assert_int_equal(hstat(f, "sticky").st_mode, S_IFREG | 01600);

	/* A name that exists (even a dangling symlink) is EEXIST, never followed. */
	assert_int_equal(symlink(hp(f, "/tmp/vmm-p9-nowhere"), hp(f, "dangling")), 0);
	assert_int_equal(t_clone(f, ROOT, 4), 0);
	assert_int_equal(t_lcreate(f, 4, "new", O_RDWR, 0644, 0, NULL), EEXIST);
	assert_int_equal(t_lcreate(f, 4, "dangling", O_RDWR, 0644, 0, NULL), EEXIST);
	assert_false(hexists(f, "/tmp/vmm-p9-nowhere"));
	assert_int_equal(t_lcreate(f, 4, "a/b", O_RDWR, 0644, 0, NULL), EINVAL);
	assert_int_equal(t_lcreate(f, 4, "..", O_RDWR, 0644, 0, NULL), EINVAL);
	assert_int_equal(t_lcreate(f, 4, "", O_RDWR, 0644, 0, NULL), EINVAL);

	/* vmm as root gives the file to the attached user and the asked group. */
	if (geteuid() == 0) {
		assert_int_equal(t_attach(f, 5, NOFID, 1234, NULL), 0);
		assert_int_equal(t_lcreate(f, 5, "theirs", O_RDWR, 0640, 5678, NULL), 0);
		st = hstat(f, "theirs");
		assert_int_equal(st.st_uid, 1234);
		assert_int_equal(st.st_gid, 5678);
		assert_int_equal(st.st_mode, S_IFREG | 0640);
	}
	umask(old);
}

static void mkdir_symlink_link_rename_unlink(void **state)
{
	struct fx *f = *state;
	mode_t old = umask(077);
	char target[PATH_MAX];
	struct qid q;
	struct stat st;
	ssize_t n;

	/* mkdir: the mode as asked, setgid kept on a directory. */
	assert_int_equal(t_mkdir(f, ROOT, "d", 0775, getgid(), &q), 0);
	st = hstat(f, "d");
	assert_int_equal(st.st_mode, S_IFDIR | 0775);
	assert_int_equal(q.type, QTDIR);
	assert_int_equal(q.path, st.st_ino);
	assert_int_equal(t_mkdir(f, ROOT, "g", 06750, getgid(), NULL), 0);
	assert_int_equal(hstat(f, "g").st_mode, S_IFDIR | 02750);
	assert_int_equal(t_mkdir(f, ROOT, "d", 0775, getgid(), NULL), EEXIST);
	assert_int_equal(t_mkdir(f, ROOT, "x/y", 0775, getgid(), NULL), EINVAL);
	assert_int_equal(t_mkdir(f, ROOT, "..", 0775, getgid(), NULL), EINVAL);

	/* symlink and readlink: the target is text. */
	assert_int_equal(t_symlink(f, ROOT, "sl", "d/nowhere/../x", &q), 0);
	assert_int_equal(q.type, QTSYMLINK);
	n = readlink(hp(f, "sl"), target, sizeof(target));
	assert_int_equal(n, 14);
	assert_memory_equal(target, "d/nowhere/../x", 14);
	assert_int_equal(t_walk(f, ROOT, 1, "sl"), 0);
	assert_int_equal(f->qids[0].type, QTSYMLINK);
	assert_int_equal(t_readlink(f, 1), 0);
	assert_string_equal(f->str, "d/nowhere/../x");
	assert_int_equal(t_readlink(f, ROOT), ENOENT); /* not a symlink: readlinkat's "" says so */
	assert_int_equal(t_symlink(f, ROOT, "empty", "", NULL), EINVAL);
	assert_int_equal(t_symlink(f, ROOT, "sl", "y", NULL), EEXIST);

	/* link: the same inode under another name. */
	hput(f, "file", "data", 4);
	assert_int_equal(t_walk(f, ROOT, 2, "file"), 0);
	assert_int_equal(t_walk(f, ROOT, 3, "d"), 0);
	assert_int_equal(t_link(f, 3, 2, "hard"), 0);
	assert_int_equal(hstat(f, "d/hard").st_ino, hstat(f, "file").st_ino);
	assert_int_equal(hstat(f, "file").st_nlink, 2);
	assert_int_equal(t_link(f, 3, 2, "hard"), EEXIST);
	assert_int_equal(t_link(f, ROOT, 3, "dirlink"), EPERM); /* a directory */
	assert_false(hexists(f, "dirlink"));

	/* renameat between directories. */
	assert_int_equal(t_renameat(f, ROOT, "file", 3, "moved"), 0);
	assert_false(hexists(f, "file"));
	assert_int_equal(hstat(f, "d/moved").st_ino, hstat(f, "d/hard").st_ino);
	assert_int_equal(t_renameat(f, ROOT, "missing", 3, "x"), ENOENT);
	assert_int_equal(t_renameat(f, ROOT, "g", ROOT, "g2"), 0);
	assert_true(S_ISDIR(hstat(f, "g2").st_mode));

	/* unlinkat: files, and directories with AT_REMOVEDIR. */
	assert_int_equal(t_unlinkat(f, 3, "moved", 0), 0);
	assert_false(hexists(f, "d/moved"));
	assert_int_equal(t_unlinkat(f, 3, "moved", 0), ENOENT);
	assert_int_equal(t_unlinkat(f, ROOT, "g2", 0), EISDIR);
	assert_int_equal(t_unlinkat(f, ROOT, "d", AT_REMOVEDIR_L), ENOTEMPTY);
	assert_int_equal(t_unlinkat(f, ROOT, "g2", AT_REMOVEDIR_L), 0);
	assert_false(hexists(f, "g2"));
	assert_int_equal(t_unlinkat(f, ROOT, "sl", 0), 0);
	assert_false(hexists(f, "sl"));
	assert_int_equal(t_unlinkat(f, ROOT, "..", AT_REMOVEDIR_L), EINVAL);
	assert_int_equal(t_unlinkat(f, ROOT, ".", AT_REMOVEDIR_L), EINVAL);
	assert_true(hexists(f, f->dir));

	/* Tremove is not Linux's: the fid goes, the file stays. */
	begin(f, TREMOVE);
	put_le(f, 2, 4);
	assert_int_equal(rpc(f), EOPNOTSUPP);
	assert_false(has_fid(f, 2));
	assert_true(hexists(f, "d/hard"));
	umask(old);
}

static void mknod_fifo_and_devices(void **state)
{
	struct fx *f = *state;
	uint64_t size;
	struct attr a;
	struct qid q;
	struct stat st;

	assert_int_equal(t_mknod(f, ROOT, "fifo", S_IFIFO | 0640, 0, 0, &q), 0);
	st = hstat(f, "fifo");
	assert_int_equal(st.st_mode, S_IFIFO | 0640);
	assert_int_equal(q.path, st.st_ino);
	assert_int_equal(t_walk(f, ROOT, 1, "fifo"), 0);
	assert_int_equal(t_getattr(f, 1, &a), 0);
	assert_int_equal(a.mode, S_IFIFO | 0640);
	assert_int_equal(t_lopen(f, 1, O_RDONLY), ENXIO); /* never opened by the server */
	assert_int_equal(t_lopen(f, 1, O_WRONLY), ENXIO);
	assert_int_equal(t_mknod(f, ROOT, "fifo", S_IFIFO | 0640, 0, 0, NULL), EEXIST);
	assert_int_equal(t_mknod(f, ROOT, "dir", S_IFDIR | 0755, 0, 0, NULL), EINVAL);
	assert_int_equal(t_mknod(f, ROOT, "a/b", S_IFIFO | 0640, 0, 0, NULL), EINVAL);
	assert_false(hexists(f, "dir"));

	if (!user_xattrs(f)) {
		skip();
		return;
	}
	/* A character device is an empty regular file on the host, a device to the guest. */
	assert_int_equal(t_mknod(f, ROOT, "null", S_IFCHR | 0666, 1, 3, &q), 0);
	st = hstat(f, "null");
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, 0);
	assert_int_equal(st.st_rdev, 0);
	assert_int_equal(q.path, st.st_ino);
	assert_int_equal(t_walk(f, ROOT, 2, "null"), 0);
	assert_int_equal(t_getattr(f, 2, &a), 0);
	assert_int_equal(a.mode, S_IFCHR | 0666);
	assert_int_equal(a.rdev, makedev(1, 3));
	/* Its mode changes in the attribute; the mark is not the guest's to read. */
	assert_int_equal(t_setattr(f, 2, ATTR_MODE, 0600, 0, 0, 0), 0);
	assert_int_equal(t_getattr(f, 2, &a), 0);
	assert_int_equal(a.mode, S_IFCHR | 0600);
	assert_int_equal(a.rdev, makedev(1, 3));
	assert_int_equal(t_xattrwalk(f, 2, 3, "user.vmm.node", &size), ENODATA);
	assert_int_equal(t_xattrcreate(f, 2, "user.vmm.node", 1, 0), EOPNOTSUPP);

	assert_int_equal(t_mknod(f, ROOT, "sda1", S_IFBLK | 0660, 8, 1, NULL), 0);
	assert_true(S_ISREG(hstat(f, "sda1").st_mode));
	assert_int_equal(t_walk(f, ROOT, 4, "sda1"), 0);
	assert_int_equal(t_getattr(f, 4, &a), 0);
	assert_int_equal(a.mode, S_IFBLK | 0660);
	assert_int_equal(a.rdev, makedev(8, 1));
}

/* The list of attribute names leaves out vmm's own mark on a device node; the guest's own
 * attributes on the node are listed. */
static void xattr_list_hides_node_mark(void **state)
{
	struct fx *f = *state;
	char buf[256], host[256];
	ssize_t n_host;
	uint64_t size;
	bool listed = false;
	struct attr a;

	if (!user_xattrs(f)) {
		skip();
		return;
	}
	assert_int_equal(t_mknod(f, ROOT, "null", S_IFCHR | 0666, 1, 3, NULL), 0);
	assert_int_equal(t_walk(f, ROOT, 1, "null"), 0);
	assert_int_equal(t_xattrcreate(f, 1, "user.x", 3, 0), 0);
	assert_int_equal(t_write(f, 1, 0, "abc", 3), 0);
	assert_int_equal(t_clunk(f, 1), 0);
	/* On the host the node has both. */
	n_host = listxattr(hp(f, "null"), host, sizeof(host));
	assert_true(n_host > 0);
	assert_non_null(memmem(host, (size_t)n_host, "user.vmm.node", 14));
	assert_non_null(memmem(host, (size_t)n_host, "user.x", 7));

	assert_int_equal(t_walk(f, ROOT, 1, "null"), 0);
	assert_int_equal(t_xattrwalk(f, 1, 2, "", &size), 0);
	assert_int_equal(size, (uint64_t)n_host - 14); /* all of the host's list but the mark */
	assert_int_equal(t_read(f, 2, 0, sizeof(buf), buf), 0);
	assert_int_equal(f->count, size);
	for (size_t at = 0; at < size; at += strlen(buf + at) + 1) {
		assert_non_null(memchr(buf + at, 0, size - at)); /* every name NUL-terminated */
		assert_string_not_equal(buf + at, "user.vmm.node");
		listed |= !strcmp(buf + at, "user.x");
	}
	assert_true(listed);
	assert_int_equal(t_clunk(f, 2), 0);
	/* By name, the mark is not there; the guest's attribute is. */
	assert_int_equal(t_xattrwalk(f, 1, 2, "user.vmm.node", &size), ENODATA);
	assert_false(has_fid(f, 2));
	assert_int_equal(t_xattrwalk(f, 1, 2, "user.x", &size), 0);
	assert_int_equal(size, 3);
	assert_int_equal(t_clunk(f, 2), 0);
	/* And the node is still a device to the guest. */
	assert_int_equal(t_getattr(f, 1, &a), 0);
	assert_int_equal(a.mode, S_IFCHR | 0666);
	assert_int_equal(a.rdev, makedev(1, 3));
}

static void readdir_in_pieces(void **state)
{
	struct fx *f = *state;
	enum { FILES = 300 };
	unsigned seen[FILES] = { 0 }, dots = 0, dotdots = 0, calls = 0;
	uint64_t off = 0;
	char name[300];

	for (unsigned i = 0; i < FILES; i++) {
		snprintf(name, sizeof(name), "file-%03u", i);
		hput(f, name, "", 0);
	}
	assert_int_equal(t_clone(f, ROOT, 1), 0);
	assert_int_equal(t_readdir(f, 1, 0, 4096), EBADF); /* not opened */
	assert_int_equal(t_lopen(f, 1, O_RDONLY), 0);
	for (;;) {
		unsigned entries = 0;

		uint32_t count = 150 + calls * 7 % 100; /* whole entries only, however they fall */

		assert_true(++calls < 1000);
		assert_int_equal(t_readdir(f, 1, off, count), 0);
		assert_true(f->count <= count);
		if (!f->count)
			break;
		while (f->at < f->rep_len) {
			struct qid q = get_qid(f);
			unsigned i;

			off = get_le(f, 8);
			get_le(f, 1); /* type */
			get_str(f, name, sizeof(name));
			entries++;
			if (!strcmp(name, ".")) {
				dots++;
				continue;
			}
			if (!strcmp(name, "..")) {
				dotdots++;
				continue;
			}
			assert_int_equal(sscanf(name, "file-%u", &i), 1);
			assert_true(i < FILES);
			seen[i]++;
			assert_int_equal(q.type, QTFILE);
			assert_int_equal(q.path, hstat(f, name).st_ino);
		}
		assert_true(entries > 0);
	}
	assert_true(calls > 20); /* small pieces indeed */
	assert_int_equal(dots, 1);
	assert_int_equal(dotdots, 1);
	for (unsigned i = 0; i < FILES; i++)
		assert_int_equal(seen[i], 1);
}

static void xattrs(void **state)
{
	struct fx *f = *state;
	uint64_t size;
	char buf[256];

	if (!user_xattrs(f)) {
		skip();
		return;
	}
	hput(f, "file", "", 0);
	assert_int_equal(t_walk(f, ROOT, 1, "file"), 0);
	assert_int_equal(t_xattrcreate(f, 1, "user.test", 11, 0), 0);
	assert_int_equal(t_write(f, 1, 0, "hello", 5), 0);
	assert_int_equal(f->count, 5);
	assert_int_equal(t_write(f, 1, 5, " world", 6), 0);
	assert_int_equal(t_clunk(f, 1), 0);
	assert_int_equal(getxattr(hp(f, "file"), "user.test", buf, sizeof(buf)), 11);
	assert_memory_equal(buf, "hello world", 11);

	assert_int_equal(t_walk(f, ROOT, 2, "file"), 0);
	assert_int_equal(t_xattrwalk(f, 2, 3, "user.test", &size), 0);
	assert_int_equal(size, 11);
	assert_int_equal(t_read(f, 3, 0, 100, buf), 0);
	assert_int_equal(f->count, 11);
	assert_memory_equal(buf, "hello world", 11);
	assert_int_equal(t_read(f, 3, 6, 100, buf), 0);
	assert_int_equal(f->count, 5);
	assert_memory_equal(buf, "world", 5);
	assert_int_equal(t_read(f, 3, 11, 100, buf), 0);
	assert_int_equal(f->count, 0);
	assert_int_equal(t_walk(f, 3, 4, "x"), EINVAL); /* not a file's fid */
	assert_int_equal(t_clunk(f, 3), 0);
	/* The list of names. */
	assert_int_equal(t_xattrwalk(f, 2, 3, "", &size), 0);
	assert_true(size >= 10 && size < sizeof(buf));
	assert_int_equal(t_read(f, 3, 0, sizeof(buf), buf), 0);
	assert_int_equal(f->count, size);
	assert_non_null(memmem(buf, size, "user.test", 10)); /* with its NUL */
	assert_int_equal(t_clunk(f, 3), 0);
	assert_int_equal(t_xattrwalk(f, 2, 3, "user.missing", &size), ENODATA);
	assert_false(has_fid(f, 3));

	/* Only user.* is the guest's. */
	assert_int_equal(t_xattrcreate(f, 2, "trusted.x", 1, 0), EOPNOTSUPP);
	assert_int_equal(t_xattrcreate(f, 2, "security.capability", 1, 0), EOPNOTSUPP);
	assert_int_equal(t_xattrcreate(f, 2, "user.big", P9_MAX_XATTR + 1, 0), E2BIG);
	assert_int_equal(t_xattrcreate(f, 2, "user.x", 1, 4), EINVAL);
	/* XATTR_CREATE on a name that exists fails at the clunk. */
	assert_int_equal(t_xattrcreate(f, 2, "user.test", 1, XATTR_CREATE), 0);
	assert_int_equal(t_write(f, 2, 0, "x", 1), 0);
	assert_int_equal(t_clunk(f, 2), EEXIST);
	/* Size 0 with XATTR_REPLACE removes it. */
	assert_int_equal(t_walk(f, ROOT, 2, "file"), 0);
	assert_int_equal(t_xattrcreate(f, 2, "user.test", 0, XATTR_REPLACE), 0);
	assert_int_equal(t_clunk(f, 2), 0);
	assert_int_equal(getxattr(hp(f, "file"), "user.test", buf, sizeof(buf)), -1);
	assert_int_equal(errno, ENODATA);
}

/* A value is written up to the size Txattrcreate gave, not past it. */
static void xattr_write_past_its_size(void **state)
{
	struct fx *f = *state;
	static uint8_t big[5000];
	char buf[16];

	if (!user_xattrs(f)) {
		skip();
		return;
	}
	memset(big, 'b', sizeof(big));
	hput(f, "file", "", 0);
	assert_int_equal(t_walk(f, ROOT, 1, "file"), 0);
	assert_int_equal(t_xattrcreate(f, 1, "user.small", 4, 0), 0);
	assert_int_equal(t_write(f, 1, 0, big, sizeof(big)), EINVAL);
	assert_int_equal(t_write(f, 1, 0, "ab", 2), 0);
	assert_int_equal(t_write(f, 1, 2, "cde", 3), EINVAL);
	assert_int_equal(t_write(f, 1, 2, "cd", 2), 0);
	assert_int_equal(t_write(f, 1, 4, "e", 1), EINVAL);
	assert_int_equal(t_clunk(f, 1), 0);
	assert_int_equal(getxattr(hp(f, "file"), "user.small", buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "abcd", 4);
	/* Size 0: nothing may be written. */
	assert_int_equal(t_walk(f, ROOT, 1, "file"), 0);
	assert_int_equal(t_xattrcreate(f, 1, "user.empty", 0, 0), 0);
	assert_int_equal(t_write(f, 1, 0, "x", 1), EINVAL);
	assert_int_equal(t_clunk(f, 1), 0);
	assert_int_equal(getxattr(hp(f, "file"), "user.empty", buf, sizeof(buf)), 0);
}

/* A value shorter than Txattrcreate declared is not set: the clunk says EINVAL and the host
 * file keeps what it had. */
static void xattr_short_value_not_set(void **state)
{
	struct fx *f = *state;
	char buf[16];

	if (!user_xattrs(f)) {
		skip();
		return;
	}
	hput(f, "file", "", 0);
	assert_int_equal(t_walk(f, ROOT, 1, "file"), 0);
	assert_int_equal(t_xattrcreate(f, 1, "user.short", 5, 0), 0);
	assert_int_equal(t_write(f, 1, 0, "ab", 2), 0);
	assert_int_equal(t_clunk(f, 1), EINVAL);
	assert_false(has_fid(f, 1)); /* the fid is gone all the same */
	assert_int_equal(getxattr(hp(f, "file"), "user.short", buf, sizeof(buf)), -1);
	assert_int_equal(errno, ENODATA);
	/* Nothing written at all. */
	assert_int_equal(t_walk(f, ROOT, 1, "file"), 0);
	assert_int_equal(t_xattrcreate(f, 1, "user.none", 3, 0), 0);
	assert_int_equal(t_clunk(f, 1), EINVAL);
	assert_int_equal(getxattr(hp(f, "file"), "user.none", buf, sizeof(buf)), -1);
	assert_int_equal(errno, ENODATA);
	/* An attribute that exists is neither replaced nor removed by a short value. */
	assert_int_equal(setxattr(hp(f, "file"), "user.keep", "old", 3, 0), 0);
	assert_int_equal(t_walk(f, ROOT, 1, "file"), 0);
	assert_int_equal(t_xattrcreate(f, 1, "user.keep", 4, XATTR_REPLACE), 0);
	assert_int_equal(t_write(f, 1, 0, "ne", 2), 0);
	assert_int_equal(t_clunk(f, 1), EINVAL);
	assert_int_equal(t_walk(f, ROOT, 1, "file"), 0);
	assert_int_equal(t_xattrcreate(f, 1, "user.keep", 4, XATTR_REPLACE), 0);
	assert_int_equal(t_clunk(f, 1), EINVAL);
	assert_int_equal(getxattr(hp(f, "file"), "user.keep", buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "old", 3);
}

/* Reading a value at any offset gives what is there, or nothing. */
static void xattr_read_at_any_offset(void **state)
{
	struct fx *f = *state;
	uint64_t size;
	char buf[16];

	if (!user_xattrs(f)) {
		skip();
		return;
	}
	hput(f, "file", "", 0);
	assert_int_equal(setxattr(hp(f, "file"), "user.v", "value", 5, 0), 0);
	assert_int_equal(t_walk(f, ROOT, 1, "file"), 0);
	assert_int_equal(t_xattrwalk(f, 1, 2, "user.v", &size), 0);
	assert_int_equal(size, 5);
	assert_int_equal(t_read(f, 2, 1ull << 40, 10, buf), 0);
	assert_int_equal(f->count, 0);
	assert_int_equal(t_read(f, 2, UINT64_MAX - 2, 10, buf), 0);
	assert_int_equal(f->count, 0);
	assert_int_equal(t_read(f, 2, 4, 10, buf), 0);
	assert_int_equal(f->count, 1);
	assert_int_equal(buf[0], 'e');
}

/* ---- a read-only share ---- */

static void readonly_refuses_changes(void **state)
{
	struct fx *f = *state;
	struct stat st, now;
	char buf[16];

	hput(f, "file", "data", 4);
	assert_int_equal(mkdir(hp(f, "d"), 0755), 0);
	st = hstat(f, "file");
	fx_readonly(f);

	assert_int_equal(t_clone(f, ROOT, 1), 0);
	assert_int_equal(t_lcreate(f, 1, "new", O_RDWR, 0644, 0, NULL), EROFS);
	assert_int_equal(t_mkdir(f, ROOT, "newdir", 0755, 0, NULL), EROFS);
	assert_int_equal(t_symlink(f, ROOT, "sl", "file", NULL), EROFS);
	assert_int_equal(t_mknod(f, ROOT, "fifo", S_IFIFO | 0644, 0, 0, NULL), EROFS);
	assert_int_equal(t_walk(f, ROOT, 2, "file"), 0);
	assert_int_equal(t_link(f, ROOT, 2, "hard"), EROFS);
	assert_int_equal(t_renameat(f, ROOT, "file", ROOT, "moved"), EROFS);
	assert_int_equal(t_unlinkat(f, ROOT, "file", 0), EROFS);
	assert_int_equal(t_unlinkat(f, ROOT, "d", AT_REMOVEDIR_L), EROFS);
	assert_int_equal(t_setattr(f, 2, ATTR_MODE, 0600, 0, 0, 0), EROFS);
	assert_int_equal(t_setattr(f, 2, ATTR_SIZE, 0, 0, 0, 0), EROFS);
	assert_int_equal(t_setattr(f, 2, ATTR_MTIME | ATTR_MTIME_SET, 0, 0, 1, 0), EROFS);
	assert_int_equal(t_xattrcreate(f, 2, "user.x", 1, 0), EROFS);
	assert_int_equal(t_lopen(f, 2, O_WRONLY), EROFS);
	assert_int_equal(t_lopen(f, 2, O_RDWR), EROFS);
	assert_int_equal(t_lopen(f, 2, O_RDONLY | O_TRUNC), EROFS);
	/* Reading is what it is for. */
	assert_int_equal(t_lopen(f, 2, O_RDONLY), 0);
	assert_int_equal(t_read(f, 2, 0, 16, buf), 0);
	assert_int_equal(f->count, 4);
	assert_memory_equal(buf, "data", 4);
	assert_int_equal(t_write(f, 2, 0, "x", 1), EBADF);

	now = hstat(f, "file");
	assert_int_equal(now.st_mode, st.st_mode);
	assert_int_equal(now.st_size, 4);
	assert_int_equal(now.st_mtim.tv_sec, st.st_mtim.tv_sec);
	assert_int_equal(now.st_mtim.tv_nsec, st.st_mtim.tv_nsec);
	assert_int_equal(now.st_nlink, 1);
	assert_false(hexists(f, "new"));
	assert_false(hexists(f, "newdir"));
	assert_false(hexists(f, "sl"));
	assert_false(hexists(f, "fifo"));
	assert_false(hexists(f, "moved"));
	assert_true(hexists(f, "d"));
}

/* ---- escapes ---- */

static void dotdot_stays_at_the_root(void **state)
{
	struct fx *f = *state;
	const char *up[16];
	struct attr a;

	for (unsigned i = 0; i < 16; i++)
		up[i] = "..";
	assert_int_equal(t_walkv(f, ROOT, 1, 16, up), 0);
	assert_int_equal(f->nwqid, 16);
	for (unsigned i = 0; i < 16; i++)
		qid_equal(f->qids[i], f->root);
	assert_int_equal(t_walkv(f, 1, 1, 16, up), 0);
	assert_int_equal(t_getattr(f, 1, &a), 0);
	qid_equal(a.qid, f->root);

	/* Were `..` the share's parent, the directory beside the share would be found. */
	assert_int_equal(t_walk(f, ROOT, 2, "..", f->outname, "secret"), 0);
	assert_int_equal(f->nwqid, 1);
	assert_false(has_fid(f, 2));
	assert_int_equal(mkdir(hp(f, "sub"), 0755), 0);
	assert_int_equal(t_walk(f, ROOT, 2, "sub", "..", "..", "..", f->outname), 0);
	assert_int_equal(f->nwqid, 4);
	qid_equal(f->qids[3], f->root);
	assert_false(has_fid(f, 2));
	assert_int_equal(t_walk(f, 1, 2, "..", "..", "etc", "passwd"), 0);
	assert_int_equal(f->nwqid, 2);
	assert_false(has_fid(f, 2));
	outside_untouched(f);
}

static void symlinks_lead_nowhere(void **state)
{
	struct fx *f = *state;
	char path[PATH_MAX];
	struct attr a;
	uint64_t size;

	snprintf(path, sizeof(path), "../%s/secret", f->outname);
	assert_int_equal(symlink("/etc", hp(f, "abs")), 0);
	assert_int_equal(symlink("../../..", hp(f, "rel")), 0);
	assert_int_equal(symlink(path, hp(f, "relsecret")), 0);
	snprintf(path, sizeof(path), "%s/secret", f->out);
	assert_int_equal(symlink(path, hp(f, "abssecret")), 0);
	snprintf(path, sizeof(path), "/proc/self/cwd");
	assert_int_equal(symlink(path, hp(f, "magic")), 0);

	/* Not through one: the walk stops at the link. */
	assert_int_equal(t_walk(f, ROOT, 1, "abs", "passwd"), 0);
	assert_int_equal(f->nwqid, 1);
	assert_int_equal(f->qids[0].type, QTSYMLINK);
	assert_false(has_fid(f, 1));
	assert_int_equal(t_walk(f, ROOT, 1, "rel", "etc", "passwd"), 0);
	assert_int_equal(f->nwqid, 1);
	assert_false(has_fid(f, 1));
	assert_int_equal(t_walk(f, ROOT, 1, "magic", "etc"), 0);
	assert_int_equal(f->nwqid, 1);
	assert_false(has_fid(f, 1));
	/* To one, it is the link; a walk from there goes nowhere. */
	assert_int_equal(t_walk(f, ROOT, 1, "abs"), 0);
	assert_int_equal(t_walk(f, 1, 2, "passwd"), ENOTDIR);
	assert_int_equal(t_walk(f, 1, 2, ".."), ENOTDIR);
	assert_int_equal(t_getattr(f, 1, &a), 0);
	assert_int_equal(a.mode & S_IFMT, S_IFLNK);
	assert_int_equal(t_lopen(f, 1, O_RDONLY), ELOOP);
	assert_int_equal(t_readlink(f, 1), 0);
	assert_string_equal(f->str, "/etc");

	/* The links to a file outside: not opened, not changed, not linked, no attributes. */
	assert_int_equal(t_walk(f, ROOT, 3, "abssecret"), 0);
	assert_int_equal(t_walk(f, ROOT, 4, "relsecret"), 0);
	for (uint32_t fid = 3; fid <= 4; fid++) {
		assert_int_equal(t_lopen(f, fid, O_RDONLY), ELOOP);
		assert_int_equal(t_lopen(f, fid, O_RDWR | O_TRUNC), ELOOP);
		assert_int_equal(t_setattr(f, fid, ATTR_MODE, 0777, 0, 0, 0), EOPNOTSUPP);
		assert_int_equal(t_setattr(f, fid, ATTR_SIZE, 0, 0, 0, 0), EINVAL);
		t_setattr(f, fid, ATTR_MTIME | ATTR_MTIME_SET, 0, 0, 1, 0); /* the link's own */
		assert_int_equal(t_xattrcreate(f, fid, "user.x", 1, 0), EPERM);
		assert_int_equal(t_xattrwalk(f, fid, 5, "user.x", &size), ENODATA);
		assert_int_equal(t_read(f, fid, 0, 10, path), EBADF);
	}
	/* A hard link to a symlink is a symlink. */
	if (t_link(f, ROOT, 3, "hard") == 0)
		assert_true(S_ISLNK(hstat(f, "hard").st_mode));
	outside_untouched(f);
}

static void names_stay_in_their_directory(void **state)
{
	struct fx *f = *state;
	char up[PATH_MAX];

	snprintf(up, sizeof(up), "../%s/secret", f->outname);
	hput(f, "file", "x", 1);
	assert_int_equal(t_walk(f, ROOT, 1, "file"), 0);
	/* Tlink: one name, in a directory of the share. */
	assert_int_equal(t_link(f, ROOT, 1, "../escaped"), EINVAL);
	assert_int_equal(t_link(f, ROOT, 1, up), EINVAL);
	assert_int_equal(t_link(f, ROOT, 1, ".."), EINVAL);
	assert_int_equal(t_link(f, 1, 1, "x"), ENOTDIR);
	/* Trenameat: the same for both names. */
	assert_int_equal(t_renameat(f, ROOT, "file", ROOT, "../escaped"), EINVAL);
	assert_int_equal(t_renameat(f, ROOT, "file", ROOT, "a/b"), EINVAL);
	assert_int_equal(t_renameat(f, ROOT, up, ROOT, "stolen"), EINVAL);
	assert_int_equal(t_renameat(f, ROOT, "..", ROOT, "x"), EINVAL);
	assert_int_equal(t_renameat(f, ROOT, ".", ROOT, "x"), EINVAL);
	assert_int_equal(t_unlinkat(f, ROOT, up, 0), EINVAL);
	assert_int_equal(hstat(f, "file").st_nlink, 1);
	assert_false(hexists(f, "stolen"));
	assert_false(hexists(f, "x"));
	outside_untouched(f);
}

static void directory_swapped_for_symlink(void **state)
{
	struct fx *f = *state;
	struct stat d;

	assert_int_equal(mkdir(hp(f, "d"), 0755), 0);
	hput(f, "d/secret", "inside", 6);
	d = hstat(f, "d");
	assert_int_equal(t_walk(f, ROOT, 1, "d"), 0);
	assert_int_equal(t_walk(f, ROOT, 2, "d", "secret"), 0);
	assert_int_equal(f->nwqid, 2);
	assert_int_equal(t_clunk(f, 2), 0);

	/* The host swaps d for links out of the share. */
	assert_int_equal(rename(hp(f, "d"), hp(f, "d.old")), 0);
	assert_int_equal(symlink(f->out, hp(f, "d")), 0);
	assert_int_equal(t_walk(f, ROOT, 2, "d", "secret"), 0);
	assert_int_equal(f->nwqid, 1);
	assert_int_equal(f->qids[0].type, QTSYMLINK);
	assert_false(has_fid(f, 2));
	assert_int_equal(unlink(hp(f, "d")), 0);
	assert_int_equal(symlink("/", hp(f, "d")), 0);
	assert_int_equal(t_walk(f, ROOT, 2, "d", "etc"), 0);
	assert_int_equal(f->nwqid, 1);
	assert_false(has_fid(f, 2));

	/* The fid walked before holds the directory itself, still in the share. */
	assert_int_equal(t_walk(f, 1, 2, "secret"), 0);
	assert_int_equal(f->qids[0].path, hstat(f, "d.old/secret").st_ino);
	assert_int_equal(t_walk(f, 1, 3, ".."), 0);
	qid_equal(f->qids[0], f->root);
	assert_int_equal(d.st_ino, hstat(f, "d.old").st_ino);
	/* Gone on the host: nothing to find beneath it. */
	assert_int_equal(unlink(hp(f, "d.old/secret")), 0);
	assert_int_equal(rmdir(hp(f, "d.old")), 0);
	assert_int_equal(t_walk(f, 1, 4, "secret"), ENOENT);
	outside_untouched(f);
}

/* ---- bounds ---- */

/* The fids from `start` on, to P9_MAX_FIDS: the last is refused, and the bound holds after a
 * clunk. The numbers are spread over the hash buckets. */
static void fill_fids(struct fx *f, unsigned start)
{
	for (uint32_t fid = start; fid < P9_MAX_FIDS; fid++)
		assert_int_equal(t_clone(f, ROOT, fid * 7919), 0);
	assert_int_equal(f->s.nr_fids, P9_MAX_FIDS);
	assert_int_equal(t_clone(f, ROOT, 1), EMFILE);
	assert_int_equal(t_attach(f, 1, NOFID, getuid(), NULL), EMFILE);
	assert_int_equal(t_xattrwalk(f, ROOT, 1, "", &(uint64_t){ 0 }), EMFILE);
	assert_false(has_fid(f, 1));
	assert_int_equal(f->s.nr_fids, P9_MAX_FIDS);
	assert_int_equal(t_clunk(f, (P9_MAX_FIDS - 1) * 7919), 0);
	assert_int_equal(t_clone(f, ROOT, 1), 0);
	assert_int_equal(t_clone(f, ROOT, 2), EMFILE);
}

/* Each fid holds a descriptor: with P9_MAX_FIDS of them the guest is refused more (EMFILE). The
 * process needs a descriptor limit past P9_MAX_FIDS for that; where it may not raise its own
 * (no CAP_SYS_RESOURCE over a lower hard limit), the server is made to count all but the last
 * few fids as held, which tests the same bound and its bookkeeping with few descriptors. */
static void too_many_fids(void **state)
{
	struct fx *f = *state;
	struct rlimit old, want;
	unsigned fake = 0;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	want.rlim_cur = want.rlim_max = P9_MAX_FIDS + 256;
	if (old.rlim_max > want.rlim_max)
		want.rlim_max = old.rlim_max;
	assert_int_equal(t_version(f, P9_MIN_MSIZE, "9P2000.L"), 0); /* small replies: faster */
	assert_int_equal(t_attach(f, ROOT, NOFID, getuid(), NULL), 0);
	if (setrlimit(RLIMIT_NOFILE, &want)) {
		print_message("descriptor limit %lu: counting %u fids as held\n",
			      (unsigned long)old.rlim_max, P9_MAX_FIDS - 64);
		fake = P9_MAX_FIDS - 64;
		f->s.nr_fids += fake;
	}
	f->s.max_fids = P9_MAX_FIDS; /* what p9_open allows with a limit this high */
	fill_fids(f, 1 + fake);
	f->s.nr_fids -= fake;
	/* A new session lets them all go. */
	assert_int_equal(t_version(f, MSIZE, "9P2000.L"), 0);
	assert_int_equal(f->s.nr_fids, 0);
	if (!fake)
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
}

static void bad_message_sizes(void **state)
{
	struct fx *f = *state;
	const size_t room = MSIZE, tiny = 10, eleven = 11;
	size_t short_rq = 10;
	uint8_t *big;

	/* A size past the readable bytes. */
	begin(f, TGETATTR);
	put_le(f, ROOT, 4);
	put_le(f, 0x7ff, 8);
	set_size(f, (uint32_t)f->len + 1);
	assert_int_equal(reply(f, serve_cut(f, NULL, 0, &room, 1)), EINVAL);
	set_size(f, 0xffffffff);
	assert_int_equal(reply(f, serve_cut(f, NULL, 0, &room, 1)), EINVAL);
	/* The size right but the bytes cut short of it: fewer readable. */
	set_size(f, (uint32_t)f->len);
	f->len = short_rq;
	assert_int_equal(reply(f, serve_cut(f, &short_rq, 1, &room, 1)), EINVAL);
	/* Smaller than a header. */
	begin(f, TGETATTR);
	put_le(f, ROOT, 4);
	put_le(f, 0x7ff, 8);
	set_size(f, 6);
	assert_int_equal(reply(f, serve_cut(f, NULL, 0, &room, 1)), EINVAL);
	/* A header cut short: no tag to answer with but NOTAG. */
	f->len = 5;
	assert_int_equal(serve_cut(f, NULL, 0, &room, 1), 11);
	assert_int_equal(get_le(f, 4), 11);
	assert_int_equal(get_le(f, 1), RLERROR);
	assert_int_equal(get_le(f, 2), 0xffff);
	assert_int_equal(get_le(f, 4), EINVAL);
	/* Fields missing from a whole message. */
	begin(f, TGETATTR);
	put_le(f, ROOT, 4);
	assert_int_equal(rpc(f), EINVAL);

	/* Past msize, though all there. */
	assert_non_null(big = calloc(1, MSIZE));
	hput(f, "file", "", 0);
	assert_int_equal(t_walk(f, ROOT, 1, "file"), 0);
	assert_int_equal(t_lopen(f, 1, O_RDWR), 0);
	build_write(f, 1, 0, big, MSIZE - 23 + 1);
	assert_int_equal(f->len, MSIZE + 1);
	assert_int_equal(reply(f, serve_cut(f, NULL, 0, &room, 1)), EINVAL);
	build_write(f, 1, 0, big, MSIZE - 23);
	assert_int_equal(written(f, reply(f, serve_cut(f, NULL, 0, &room, 1))), 0);
	assert_int_equal(f->count, MSIZE - 23);
	free(big);

	/* No room for even an error: nothing written (the buffers are checked untouched). */
	begin(f, TGETATTR);
	put_le(f, ROOT, 4);
	put_le(f, 0x7ff, 8);
	set_size(f, (uint32_t)f->len);
	assert_int_equal(serve_cut(f, NULL, 0, &tiny, 1), 0);
	assert_int_equal(serve_cut(f, NULL, 0, NULL, 0), 0);
	/* Room for an error only: the reply does not fit. */
	assert_int_equal(reply(f, serve_cut(f, NULL, 0, &eleven, 1)), ENOBUFS);
	/* Unknown and refused types. */
	begin(f, 99);
	assert_int_equal(rpc(f), EOPNOTSUPP);
	begin(f, TAUTH);
	put_le(f, 1, 4);
	put_str(f, "u");
	put_str(f, "");
	put_le(f, 0, 4);
	assert_int_equal(rpc(f), EOPNOTSUPP);
	begin(f, TFLUSH);
	put_le(f, 1, 2);
	assert_int_equal(empty(f, rpc(f)), 0);
}

static void write_count_past_data(void **state)
{
	struct fx *f = *state;
	static uint8_t data[100];
	const size_t room = MSIZE;
	char buf[16];

	memset(data, 'w', sizeof(data));
	hput(f, "file", "original", 8);
	assert_int_equal(t_walk(f, ROOT, 1, "file"), 0);
	assert_int_equal(t_lopen(f, 1, O_RDWR), 0);

	/* count says 100, the message holds 50: the size field honest. */
	build_write(f, 1, 0, data, 50);
	f->req[19] = 100;
	assert_int_equal(reply(f, serve_cut(f, NULL, 0, &room, 1)), EINVAL);
	/* The size field says 123 but only 73 bytes are there. */
	build_write(f, 1, 0, data, 100);
	f->len = 73;
	assert_int_equal(reply(f, serve_cut(f, NULL, 0, &room, 1)), EINVAL);
	/* count past 4 GiB - 23 does not wrap. */
	build_write(f, 1, 0, data, 50);
	f->req[19] = f->req[20] = f->req[21] = f->req[22] = 0xff;
	assert_int_equal(reply(f, serve_cut(f, NULL, 0, &room, 1)), EINVAL);
	assert_int_equal(hget(f, "file", buf, sizeof(buf)), 8);
	assert_memory_equal(buf, "original", 8);
	/* A count shorter than the data: that much is written. */
	build_write(f, 1, 0, data, 50);
	f->req[19] = 3;
	assert_int_equal(written(f, reply(f, serve_cut(f, NULL, 0, &room, 1))), 0);
	assert_int_equal(f->count, 3);
	assert_int_equal(hget(f, "file", buf, sizeof(buf)), 8);
	assert_memory_equal(buf, "wwwginal", 8);
}

/* In a mount of the kernel's own file systems beneath the share (here proc), directories can be
 * walked to and listed, and nothing else: a file is not opened (EACCES), a link not read, nothing
 * is made or changed; and such a file system cannot be the share itself. Needs the right to mount
 * (root): skipped without it. */
static void kernel_fs_looked_at_only(void **state)
{
	struct fx *f = *state;
	struct p9_server other;

	assert_int_equal(mkdir(hp(f, "proc"), 0755), 0);
	if (mount("proc", hp(f, "proc"), "proc", 0, NULL)) {
		print_message("cannot mount proc (%s): skipped\n", strerror(errno));
		skip();
	}
	/* The server again, so that its clone of the mount has proc in it. */
	p9_close(&f->s);
	fx_open(f, false);
	fx_session(f);
	assert_int_equal(t_walk(f, ROOT, 1, "proc"), 0);
	assert_int_equal(t_lopen(f, 1, O_RDONLY), 0); /* a directory: listed */
	assert_int_equal(t_readdir(f, 1, 0, 4096), 0);
	assert_true(f->count > 0);
	assert_int_equal(t_walk(f, ROOT, 2, "proc", "self"), 0);
	assert_int_equal(t_readlink(f, 2), EACCES);
	assert_int_equal(t_walk(f, ROOT, 3, "proc", "cpuinfo"), 0);
	assert_int_equal(t_lopen(f, 3, O_RDONLY), EACCES);
	assert_int_equal(t_walk(f, ROOT, 4, "proc", "sys", "kernel", "hostname"), 0);
	assert_int_equal(t_lopen(f, 4, O_WRONLY), EACCES);
	assert_int_equal(t_walk(f, ROOT, 5, "proc"), 0);
	assert_int_equal(t_mkdir(f, 5, "x", 0755, 0, NULL), EACCES);
	/* Back out through "..": the share's own files open again. */
	assert_int_equal(t_walk(f, 5, 6, ".."), 0);
	assert_int_equal(t_lcreate(f, 6, "file", O_RDWR, 0644, 0, NULL), 0);
	assert_int_equal(p9_open(&other, "fs1", hp(f, "proc"), true, "--fs path=proc"), -EINVAL);
	p9_close(&f->s);
	assert_int_equal(umount2(hp(f, "proc"), MNT_DETACH), 0);
	fx_open(f, false);
	fx_session(f);
	assert_int_equal(t_walk(f, ROOT, 1, "proc"), 0); /* an empty directory again */
}

/* Every test on both fixtures: the share as root serves it, and as anyone else. */
#define TEST(t)                                                                         \
	cmocka_unit_test_setup_teardown(t, setup, teardown),                            \
		{ #t " (not detached)", t, setup_plain, teardown, NULL }

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(version_negotiation),
		TEST(kernel_fs_looked_at_only),
		TEST(version_unknown_leaves_no_session),
		TEST(attach),
		TEST(walk),
		TEST(long_names),
		TEST(getattr_matches_host),
		TEST(setattr),
		TEST(statfs_matches_host),
		TEST(read_write_split),
		TEST(append_at_host_end),
		TEST(fsync_truncated),
		TEST(read_stays_in_buffers),
		TEST(lcreate),
		TEST(mkdir_symlink_link_rename_unlink),
		TEST(mknod_fifo_and_devices),
		TEST(xattr_list_hides_node_mark),
		TEST(readdir_in_pieces),
		TEST(xattrs),
		TEST(xattr_write_past_its_size),
		TEST(xattr_short_value_not_set),
		TEST(xattr_read_at_any_offset),
		TEST(readonly_refuses_changes),
		TEST(dotdot_stays_at_the_root),
		TEST(symlinks_lead_nowhere),
		TEST(names_stay_in_their_directory),
		TEST(directory_swapped_for_symlink),
		TEST(too_many_fids),
		TEST(bad_message_sizes),
		TEST(write_count_past_data),
	};

	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
