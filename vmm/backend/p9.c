/* The 9P2000.L server (p9.h has the rules it keeps). Message layouts are those of Linux's
 * include/net/9p/9p.h and net/9p/protocol.c; every integer is little-endian, a string is a
 * 16-bit length and its bytes, a qid is type[1] version[4] path[8]. */
#include "backend/p9.h"
#include "log.h"
#include "virtio/virtqueue.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cap-ng.h>

/* Message types (9P2000.L and the base protocol's). */
enum {
	P9_RLERROR = 7,
	P9_TSTATFS = 8,
	P9_TLOPEN = 12,
	P9_TLCREATE = 14,
	P9_TSYMLINK = 16,
	P9_TMKNOD = 18,
	P9_TRENAME = 20,
	P9_TREADLINK = 22,
	P9_TGETATTR = 24,
	P9_TSETATTR = 26,
	P9_TXATTRWALK = 30,
	P9_TXATTRCREATE = 32,
	P9_TREADDIR = 40,
	P9_TFSYNC = 50,
	P9_TLOCK = 52,
	P9_TGETLOCK = 54,
	P9_TLINK = 70,
	P9_TMKDIR = 72,
	P9_TRENAMEAT = 74,
	P9_TUNLINKAT = 76,
	P9_TVERSION = 100,
	P9_TAUTH = 102,
	P9_TATTACH = 104,
	P9_TFLUSH = 108,
	P9_TWALK = 110,
	P9_TREAD = 116,
	P9_TWRITE = 118,
	P9_TCLUNK = 120,
	P9_TREMOVE = 122,
};

#define P9_HDR     7  /* size[4] type[1] tag[2] */
#define P9_NOFID   0xffffffffu
#define P9_NONUNAME 0xffffffffu
#define P9_MAXWELEM 16 /* names in one walk */
#define QID_SIZE   13
#define QTDIR      0x80
#define QTSYMLINK  0x02
#define QTFILE     0x00

/* Tgetattr's request mask and Rgetattr's valid bits: the basic set (mode ... blocks). */
#define P9_GETATTR_BASIC 0x7ffull
/* Tsetattr's valid bits. */
#define P9_ATTR_MODE      0x1
#define P9_ATTR_UID       0x2
#define P9_ATTR_GID       0x4
#define P9_ATTR_SIZE      0x8
#define P9_ATTR_ATIME     0x10
#define P9_ATTR_MTIME     0x20
#define P9_ATTR_ATIME_SET 0x80
#define P9_ATTR_MTIME_SET 0x100
#define P9_DOTL_AT_REMOVEDIR 0x200
/* Tlock's answer. */
#define P9_LOCK_SUCCESS 0
#define P9_LOCK_TYPE_UNLCK 2

/* A device node the guest made: an empty regular file with this mode bit (meaningless on a
 * regular file) and this attribute, "c|b major minor mode" (p9.h). */
#define NODE_MARK  S_ISVTX
#define NODE_XATTR "user.vmm.node"

enum fid_kind {
	FID_PATH, /* walked to, not opened: an O_PATH descriptor */
	FID_FILE, /* a regular file, opened */
	FID_DIR,  /* a directory, opened for reading its entries */
	FID_XATTR_READ,   /* Txattrwalk: an attribute's value (or the list of names) to read */
	FID_XATTR_CREATE, /* Txattrcreate: a value to write, set at clunk */
};

struct p9_fid {
	uint32_t num;
	enum fid_kind kind;
	int fd;
	uint32_t uid; /* the user the fid was attached as: new files are theirs */
	bool writable;
	bool kernel; /* on one of the kernel's own file systems: a directory to look at, no more */
	/* FID_XATTR_*: the value, its name and flags; xsize is what xbuf holds for a create */
	uint8_t *xbuf;
	size_t xlen, xsize;
	char *xname;
	int xflags;
	struct p9_fid *next;
};

/* ---- Messages ---- */

struct msg {
	uint8_t *p;
	size_t len, at;
	bool bad; /* a read past the end or a write past the room */
};

static uint64_t get(struct msg *m, unsigned n)
{
	uint64_t v = 0;

	if (m->at + n > m->len) {
		m->bad = true;
		return 0;
	}
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)m->p[m->at + i] << (8 * i);
	m->at += n;
	return v;
}

/* A string as a NUL-terminated copy into buf (cap bytes); an embedded NUL or one too long is bad,
 * as a name with either would mean something else to the host than to the guest. */
static void get_str(struct msg *m, char *buf, size_t cap)
{
	size_t n = get(m, 2);

	if (m->bad || m->at + n > m->len || n >= cap || memchr(m->p + m->at, 0, n)) {
		m->bad = true;
		buf[0] = '\0';
		return;
	}
	memcpy(buf, m->p + m->at, n);
	buf[n] = '\0';
	m->at += n;
}

static void put(struct msg *m, uint64_t v, unsigned n)
{
	if (m->at + n > m->len) {
		m->bad = true;
		return;
	}
	for (unsigned i = 0; i < n; i++)
		m->p[m->at + i] = (uint8_t)(v >> (8 * i));
	m->at += n;
}

static void put_bytes(struct msg *m, const void *p, size_t n)
{
	put(m, n, 2);
	if (m->at + n > m->len) {
		m->bad = true;
		return;
	}
	memcpy(m->p + m->at, p, n);
	m->at += n;
}

/* ---- Files ---- */

/* The qid's path: the inode, with the file system's index (0: the root's) in the top byte. */
static uint64_t qid_path(struct p9_server *s, dev_t dev, ino_t ino)
{
	unsigned i;

	if (dev == s->root_dev)
		return ino;
	for (i = 0; i < s->nr_devs && s->devs[i] != dev; i++)
		;
	if (i == s->nr_devs && s->nr_devs < sizeof(s->devs) / sizeof(s->devs[0]))
		s->devs[s->nr_devs++] = dev;
	/* Past the table's end every further file system shares index 255: they may collide
	 * among themselves, never with the ones before. */
	return ino ^ ((uint64_t)(i + 1) << 56);
}

static uint8_t qid_type(mode_t mode)
{
	return S_ISDIR(mode) ? QTDIR : S_ISLNK(mode) ? QTSYMLINK : QTFILE;
}

static void put_qid(struct p9_server *s, struct msg *m, const struct stat *st)
{
	put(m, qid_type(st->st_mode), 1);
	put(m, 0, 4); /* version: 0, the file's contents may change under the guest anyway */
	put(m, qid_path(s, st->st_dev, st->st_ino), 8);
}

static int fd_stat(int fd, struct stat *st)
{
	return fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) ? -errno : 0;
}

/* "/proc/self/fd/N": the file behind fd, for the calls that have no descriptor form. */
static void proc_path(char buf[40], int fd)
{
	snprintf(buf, 40, "/proc/self/fd/%d", fd);
}

/* Opens the file an O_PATH descriptor names, as itself (not a path: no race), with flags. */
static int reopen(struct p9_server *s, int fd, int flags)
{
	char n[16];
	int r;

	snprintf(n, sizeof(n), "%d", fd);
	r = openat(s->proc_fd, n, flags | O_CLOEXEC | O_NOCTTY);
	return r < 0 ? -errno : r;
}

/* One name in a directory, as a guest gives it: never empty, ".", ".." or with a '/'. */
static bool name_ok(const char *name)
{
	return name[0] && strcmp(name, ".") && strcmp(name, "..") && !strchr(name, '/');
}

/* Resolves one name beneath dir without following any symlink: an O_PATH descriptor. */
static int lookup(int dir, const char *name, int flags, mode_t mode)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC),
		.mode = (flags & O_CREAT) ? mode : 0,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	long r = syscall(SYS_openat2, dir, name, &how, sizeof(how));

	return r < 0 ? -errno : (int)r;
}

/* A mode the guest asks for on a file it makes or changes: setuid and setgid are dropped from
 * files (a guest's root must not leave a setuid-root program on the host); a directory keeps
 * setgid, which only says whose group new files get. */
static mode_t safe_mode(mode_t mode, bool dir)
{
	mode &= 07777;
	return dir ? mode & ~(mode_t)S_ISUID : mode & ~(mode_t)(S_ISUID | S_ISGID);
}

/* Gives a file vmm made to the guest's user and group, when vmm may (p9.h); as an ordinary user
 * the file stays vmm's, as QEMU's security_model=none does it. */
static int give(struct p9_server *s, int fd, uid_t uid, gid_t gid)
{
	if (!s->owner)
		return 0;
	return fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) ? -errno : 0;
}

static int set_mode(struct p9_server *s, int fd, mode_t mode)
{
	char n[16];

	snprintf(n, sizeof(n), "%d", fd);
	return fchmodat(s->proc_fd, n, mode, 0) ? -errno : 0;
}

/* A device node made as a marked file (p9.h): its type, numbers and mode from the attribute. */
static bool node_read(int fd, struct stat *st)
{
	char path[40], val[64];
	unsigned maj, min, mode;
	char type;
	ssize_t n;

	if (!S_ISREG(st->st_mode) || !(st->st_mode & NODE_MARK) || st->st_size)
		return false;
	proc_path(path, fd);
	n = getxattr(path, NODE_XATTR, val, sizeof(val) - 1);
	if (n <= 0)
		return false;
	val[n] = '\0';
	if (sscanf(val, "%c %u %u %o", &type, &maj, &min, &mode) != 4 || (type != 'c' && type != 'b'))
		return false;
	st->st_mode = (type == 'c' ? S_IFCHR : S_IFBLK) | (mode & 07777);
	st->st_rdev = makedev(maj, min);
	return true;
}

static int node_write(int fd, mode_t mode, dev_t rdev)
{
	char path[40], val[64];
	int n = snprintf(val, sizeof(val), "%c %u %u %o", S_ISCHR(mode) ? 'c' : 'b', major(rdev),
			 minor(rdev), (unsigned)(mode & 07777));

	proc_path(path, fd);
	return setxattr(path, NODE_XATTR, val, (size_t)n, 0) ? -errno : 0;
}

/* ---- Fids ---- */

static struct p9_fid **fid_slot(struct p9_server *s, uint32_t num)
{
	struct p9_fid **p = &s->fids[num % P9_FID_BUCKETS];

	while (*p && (*p)->num != num)
		p = &(*p)->next;
	return p;
}

static struct p9_fid *fid_get(struct p9_server *s, uint32_t num)
{
	return *fid_slot(s, num);
}

static void fid_free(struct p9_fid *f)
{
	if (f->fd >= 0)
		close(f->fd);
	free(f->xbuf);
	free(f->xname);
	free(f);
}

/* A new fid num holding fd (taken over, also on failure). */
static int fid_new(struct p9_server *s, uint32_t num, int fd, uint32_t uid, struct p9_fid **out)
{
	struct p9_fid **slot = fid_slot(s, num), *f;

	if (num == P9_NOFID || *slot) {
		close(fd);
		return -EBADF;
	}
	if (s->nr_fids >= s->max_fids) {
		if (!s->warned_fids)
			log_warn("%s: the guest holds %u files, the most one share allows; it is "
				 "refused more (EMFILE) until it lets some go",
				 s->name, s->max_fids);
		s->warned_fids = true;
		close(fd);
		return -EMFILE;
	}
	if (!(f = calloc(1, sizeof(*f)))) {
		close(fd);
		return -ENOMEM;
	}
	*f = (struct p9_fid){ .num = num, .kind = FID_PATH, .fd = fd, .uid = uid };
	*slot = f;
	s->nr_fids++;
	*out = f;
	return 0;
}

static void fid_drop(struct p9_server *s, uint32_t num)
{
	struct p9_fid **slot = fid_slot(s, num), *f = *slot;

	if (!f)
		return;
	*slot = f->next;
	s->nr_fids--;
	fid_free(f);
}

static void fids_clear(struct p9_server *s)
{
	for (unsigned b = 0; b < P9_FID_BUCKETS; b++) {
		while (s->fids[b]) {
			struct p9_fid *f = s->fids[b];

			s->fids[b] = f->next;
			fid_free(f);
		}
	}
	s->nr_fids = 0;
}

/* A fid that names a file (walked to or opened): the kinds a path operation takes. */
static int fid_file(struct p9_server *s, uint32_t num, struct p9_fid **out)
{
	struct p9_fid *f = fid_get(s, num);

	if (!f)
		return -EBADF;
	if (f->kind == FID_XATTR_READ || f->kind == FID_XATTR_CREATE)
		return -EINVAL;
	*out = f;
	return 0;
}

/* A directory fid a name is made or removed in: walked to, not opened (as Linux sends them). */
static int fid_dir(struct p9_server *s, uint32_t num, struct p9_fid **out)
{
	int ret = fid_file(s, num, out);

	if (!ret && s->readonly)
		ret = -EROFS;
	if (!ret && (*out)->kernel)
		ret = -EACCES;
	return ret;
}

/* ---- Requests ---- */

/* What a handler has: the request's fields after the header, the reply after its header, and the
 * chain's buffers for the data of a read or a write. */
struct req {
	struct p9_server *s;
	struct msg in, out;
	uint8_t type;
	const struct iovec *data_in; /* Tread's data goes here, from byte P9_HDR + 4 */
	unsigned data_in_n;
	size_t room; /* bytes the writable buffers hold */
	const struct iovec *data_out; /* Twrite's data comes from here, from byte 23 */
	unsigned data_out_n;
	size_t given; /* bytes the readable buffers hold */
	size_t data_len; /* Rread: the data placed straight into the chain */
};

static int op_version(struct req *r)
{
	struct p9_server *s = r->s;
	uint32_t msize = (uint32_t)get(&r->in, 4);
	char version[32];
	uint8_t *in, *out;

	get_str(&r->in, version, sizeof(version));
	if (r->in.bad)
		return -EINVAL;
	if (msize < P9_MIN_MSIZE)
		return -EINVAL;
	if (msize > P9_MAX_MSIZE)
		msize = P9_MAX_MSIZE;
	/* A new session: every fid of the last one goes. */
	fids_clear(s);
	in = realloc(s->in, msize);
	if (in)
		s->in = in;
	out = in ? realloc(s->out, msize) : NULL;
	if (out)
		s->out = out;
	if (!in || !out) {
		/* No session: a later request must not find buffers smaller than msize says. */
		free(s->in);
		free(s->out);
		s->in = s->out = NULL;
		s->msize = 0;
		return -ENOMEM;
	}
	/* The reply goes into the buffer just made. */
	r->out = (struct msg){ .p = s->out, .len = msize < r->room ? msize : r->room, .at = P9_HDR };
	put(&r->out, msize, 4);
	if (strcmp(version, "9P2000.L")) {
		/* No session in a dialect the server does not speak: only Tversion is served. */
		put_bytes(&r->out, "unknown", 7);
		s->msize = 0;
		return 0;
	}
	put_bytes(&r->out, "9P2000.L", 8);
	s->msize = msize;
	return 0;
}

static int op_attach(struct req *r)
{
	struct p9_server *s = r->s;
	uint32_t fid = (uint32_t)get(&r->in, 4), afid = (uint32_t)get(&r->in, 4), uid;
	char uname[256], aname[256];
	struct p9_fid *f;
	struct stat st;
	int fd, ret;

	get_str(&r->in, uname, sizeof(uname));
	get_str(&r->in, aname, sizeof(aname));
	uid = (uint32_t)get(&r->in, 4);
	if (r->in.bad)
		return -EINVAL;
	if (afid != P9_NOFID)
		return -EINVAL; /* no authentication */
	if (uid == P9_NONUNAME)
		uid = 0;
	if ((fd = fcntl(s->root, F_DUPFD_CLOEXEC, 0)) < 0)
		return -errno;
	if ((ret = fid_new(s, fid, fd, uid, &f)) || (ret = fd_stat(f->fd, &st)))
		return ret;
	put_qid(s, &r->out, &st);
	return 0;
}

/* Whether fd is on one of the kernel's own file systems, whose files are knobs and views of the
 * host (and of vmm: /proc/PID/mem), not data: beneath a share, their directories can be listed
 * (the guest mounts its own there), nothing more (p9.h). */
static bool kernel_fs(int fd)
{
	static const unsigned long types[] = {
		0x9fa0,     /* proc */
		0x62656572, /* sysfs */
		0x64626720, /* debugfs */
		0x74726163, /* tracefs */
		0x73636673, /* securityfs */
		0x27e0eb,   /* cgroup */
		0x63677270, /* cgroup2 */
		0xcafe4a11, /* bpf */
		0x62656570, /* configfs */
		0xde5e81e4, /* efivarfs */
		0x6165676c, /* pstore */
		0xf97cff8c, /* selinuxfs */
		0x65735543, /* fusectl */
		0x42494e4d, /* binfmt_misc */
		0x19800202, /* mqueue */
		0x0187,     /* autofs: a walk would mount */
		0x6e736673, /* nsfs */
		0x1cd1,     /* devpts */
	};
	struct statfs st;

	if (fstatfs(fd, &st))
		return true;
	for (unsigned i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if ((unsigned long)st.f_type == types[i])
			return true;
	return false;
}

/* One step of a walk from dir: its O_PATH descriptor, or -errno. */
static int walk_one(struct p9_server *s, int dir, const char *name)
{
	struct stat st;
	int fd;

	if (!strcmp(name, "..")) {
		/* The root's parent is the root (p9.h); any other directory's is beneath it. */
		int ret = fd_stat(dir, &st);

		if (ret)
			return ret;
		if (st.st_dev == s->root_dev && st.st_ino == s->root_ino)
			fd = fcntl(s->root, F_DUPFD_CLOEXEC, 0);
		else
			fd = openat(dir, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
		return fd < 0 ? -errno : fd;
	}
	if (!name_ok(name))
		return -EINVAL;
	return lookup(dir, name, O_PATH, 0);
}

static int op_walk(struct req *r)
{
	struct p9_server *s = r->s;
	uint32_t fid = (uint32_t)get(&r->in, 4), newfid = (uint32_t)get(&r->in, 4);
	unsigned n = (unsigned)get(&r->in, 2), done;
	char names[P9_MAXWELEM][256];
	struct p9_fid *f, *nf;
	struct stat st;
	size_t count_at;
	bool kernel;
	int cur, ret;

	if (r->in.bad || n > P9_MAXWELEM)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++)
		get_str(&r->in, names[i], sizeof(names[i]));
	if (r->in.bad)
		return -EINVAL;
	if ((ret = fid_file(s, fid, &f)))
		return ret;
	if (newfid != fid && fid_get(s, newfid))
		return -EBADF;
	if ((ret = fd_stat(f->fd, &st)))
		return ret;
	if ((cur = fcntl(f->fd, F_DUPFD_CLOEXEC, 0)) < 0)
		return -errno;
	kernel = f->kernel;
	count_at = r->out.at;
	put(&r->out, 0, 2);
	for (done = 0; done < n; done++) {
		dev_t dev = st.st_dev;
		int next = walk_one(s, cur, names[done]);

		if (next >= 0 && (ret = fd_stat(next, &st))) {
			close(next);
			next = ret;
		}
		/* Into another mount, or back out of one: is it one of the kernel's own (p9.h)? */
		if (next >= 0 && st.st_dev != dev)
			kernel = kernel_fs(next);
		if (next < 0) {
			close(cur);
			if (done == 0)
				return next;
			/* A partial walk: the qids of the names that were found, no new fid. */
			r->out.p[count_at] = (uint8_t)done;
			return 0;
		}
		close(cur);
		cur = next;
		put_qid(s, &r->out, &st);
	}
	r->out.p[count_at] = (uint8_t)n;
	if (newfid == fid) {
		/* The fid moves: whatever it had open is closed. */
		close(f->fd);
		f->fd = cur;
		f->kind = FID_PATH;
		f->writable = false;
		f->kernel = kernel;
		return 0;
	}
	if ((ret = fid_new(s, newfid, cur, f->uid, &nf)))
		return ret;
	nf->kernel = kernel;
	return 0;
}

static int op_clunk(struct req *r)
{
	struct p9_server *s = r->s;
	uint32_t fid = (uint32_t)get(&r->in, 4);
	struct p9_fid *f;
	int ret = 0;

	if (r->in.bad)
		return -EINVAL;
	if (!(f = fid_get(s, fid)))
		return -EBADF;
	if (f->kind == FID_XATTR_CREATE) {
		/* The value is complete: set it now (or remove the attribute: size 0, REPLACE). */
		char path[40];

		proc_path(path, f->fd);
		if (f->xlen != f->xsize)
			ret = -EINVAL; /* fewer bytes than Txattrcreate announced: nothing is set */
		else if (f->xlen == 0 && (f->xflags & XATTR_REPLACE))
			ret = removexattr(path, f->xname) ? -errno : 0;
		else
			ret = setxattr(path, f->xname, f->xbuf, f->xlen, f->xflags) ? -errno : 0;
	}
	fid_drop(s, fid);
	return ret;
}

/* Tremove: Linux removes with Tunlinkat; the fid goes either way. */
static int op_remove(struct req *r)
{
	uint32_t fid = (uint32_t)get(&r->in, 4);

	if (r->in.bad)
		return -EINVAL;
	fid_drop(r->s, fid);
	return -EOPNOTSUPP;
}

static int op_getattr(struct req *r)
{
	struct p9_server *s = r->s;
	uint32_t fid = (uint32_t)get(&r->in, 4);
	struct p9_fid *f;
	struct stat st;
	int ret;

	get(&r->in, 8); /* request mask: the basic set is always sent */
	if (r->in.bad)
		return -EINVAL;
	if ((ret = fid_file(s, fid, &f)) || (ret = fd_stat(f->fd, &st)))
		return ret;
	node_read(f->fd, &st);
	put(&r->out, P9_GETATTR_BASIC, 8);
	put_qid(s, &r->out, &st);
	put(&r->out, st.st_mode, 4);
	put(&r->out, st.st_uid, 4);
	put(&r->out, st.st_gid, 4);
	put(&r->out, st.st_nlink, 8);
	put(&r->out, st.st_rdev, 8);
	put(&r->out, (uint64_t)st.st_size, 8);
	put(&r->out, (uint64_t)st.st_blksize, 8);
	put(&r->out, (uint64_t)st.st_blocks, 8);
	put(&r->out, (uint64_t)st.st_atim.tv_sec, 8);
	put(&r->out, (uint64_t)st.st_atim.tv_nsec, 8);
	put(&r->out, (uint64_t)st.st_mtim.tv_sec, 8);
	put(&r->out, (uint64_t)st.st_mtim.tv_nsec, 8);
	put(&r->out, (uint64_t)st.st_ctim.tv_sec, 8);
	put(&r->out, (uint64_t)st.st_ctim.tv_nsec, 8);
	for (unsigned i = 0; i < 4; i++)
		put(&r->out, 0, 8); /* btime, gen, data_version: not in the basic set */
	return 0;
}

static int op_setattr(struct req *r)
{
	struct p9_server *s = r->s;
	uint32_t fid = (uint32_t)get(&r->in, 4), valid = (uint32_t)get(&r->in, 4);
	mode_t mode = (mode_t)get(&r->in, 4);
	uint32_t uid = (uint32_t)get(&r->in, 4), gid = (uint32_t)get(&r->in, 4);
	uint64_t size = get(&r->in, 8);
	struct timespec t[2];
	struct p9_fid *f;
	struct stat st;
	int ret;

	t[0].tv_sec = (time_t)get(&r->in, 8);
	t[0].tv_nsec = (long)get(&r->in, 8);
	t[1].tv_sec = (time_t)get(&r->in, 8);
	t[1].tv_nsec = (long)get(&r->in, 8);
	if (r->in.bad)
		return -EINVAL;
	if ((ret = fid_file(s, fid, &f)) || (ret = fd_stat(f->fd, &st)))
		return ret;
	if (s->readonly)
		return -EROFS;
	if (f->kernel)
		return -EACCES;
	if (valid & P9_ATTR_MODE) {
		struct stat node = st;

		if (node_read(f->fd, &node))
			ret = node_write(f->fd, (node.st_mode & S_IFMT) | (mode & 07777),
					 node.st_rdev);
		else if (S_ISLNK(st.st_mode))
			ret = -EOPNOTSUPP;
		else
			ret = set_mode(s, f->fd, safe_mode(mode, S_ISDIR(st.st_mode)));
		if (ret)
			return ret;
	}
	if (valid & (P9_ATTR_UID | P9_ATTR_GID)) {
		uid_t u = (valid & P9_ATTR_UID) ? uid : (uid_t)-1;
		gid_t g = (valid & P9_ATTR_GID) ? gid : (gid_t)-1;

		if (s->owner && fchownat(f->fd, "", u, g, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW))
			return -errno;
	}
	if (valid & P9_ATTR_SIZE) {
		int fd;

		if (!S_ISREG(st.st_mode))
			return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		if (size > (uint64_t)INT64_MAX)
			return -EFBIG;
		fd = f->kind == FID_FILE && f->writable ? f->fd : reopen(s, f->fd, O_WRONLY);
		if (fd < 0)
			return fd;
		ret = ftruncate(fd, (off_t)size) ? -errno : 0;
		if (fd != f->fd)
			close(fd);
		if (ret)
			return ret;
	}
	if (valid & (P9_ATTR_ATIME | P9_ATTR_MTIME)) {
		if (!(valid & P9_ATTR_ATIME))
			t[0].tv_nsec = UTIME_OMIT;
		else if (!(valid & P9_ATTR_ATIME_SET))
			t[0].tv_nsec = UTIME_NOW;
		if (!(valid & P9_ATTR_MTIME))
			t[1].tv_nsec = UTIME_OMIT;
		else if (!(valid & P9_ATTR_MTIME_SET))
			t[1].tv_nsec = UTIME_NOW;
		for (unsigned i = 0; i < 2; i++)
			if (t[i].tv_nsec != UTIME_OMIT && t[i].tv_nsec != UTIME_NOW &&
			    (t[i].tv_nsec < 0 || t[i].tv_nsec >= 1000000000))
				return -EINVAL;
		if (utimensat(f->fd, "", t, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW))
			return -errno;
	}
	return 0;
}

/* Tlopen's flags as the host's open takes them: the access mode, truncation, appending (each
 * write then lands at the file's end on the host, whatever offset the client computed, so that
 * the guest's and the host's appends do not overwrite each other) and synchronous writes.
 * Creation is Tlcreate's; O_DIRECT's alignment is the guest's buffers' and not the host's to
 * promise; O_NOATIME needs ownership. */
static int open_flags(uint32_t flags)
{
	return (int)(flags & (O_ACCMODE | O_TRUNC | O_APPEND | O_DSYNC | O_SYNC));
}

static int op_lopen(struct req *r)
{
	struct p9_server *s = r->s;
	uint32_t fid = (uint32_t)get(&r->in, 4), flags = (uint32_t)get(&r->in, 4);
	struct stat st, now;
	struct p9_fid *f;
	int fd, ret, how = open_flags(flags);

	if (r->in.bad)
		return -EINVAL;
	if ((ret = fid_file(s, fid, &f)))
		return ret;
	if (f->kind != FID_PATH)
		return -EBADF; /* opened already */
	if ((ret = fd_stat(f->fd, &st)))
		return ret;
	if (f->kernel && !S_ISDIR(st.st_mode))
		return -EACCES;
	/* Only files and directories are ever opened: never a host device, FIFO or socket. */
	if (S_ISDIR(st.st_mode)) {
		if ((how & O_ACCMODE) != O_RDONLY)
			return -EISDIR;
		how = O_RDONLY | O_DIRECTORY;
	} else if (!S_ISREG(st.st_mode)) {
		return S_ISLNK(st.st_mode) ? -ELOOP : -ENXIO;
	} else if (s->readonly && ((how & O_ACCMODE) != O_RDONLY || (how & O_TRUNC))) {
		return -EROFS;
	}
	if ((fd = reopen(s, f->fd, how | O_NONBLOCK)) < 0)
		return fd;
	/* The same file the fid named (paranoia: /proc's link cannot be swapped). */
	if ((ret = fd_stat(fd, &now)) || now.st_ino != st.st_ino || now.st_dev != st.st_dev) {
		close(fd);
		return ret ? ret : -ESTALE;
	}
	close(f->fd);
	f->fd = fd;
	f->kind = S_ISDIR(st.st_mode) ? FID_DIR : FID_FILE;
	f->writable = (how & O_ACCMODE) != O_RDONLY;
	put_qid(s, &r->out, &st);
	put(&r->out, 0, 4); /* iounit: 0, msize decides */
	return 0;
}

static int op_lcreate(struct req *r)
{
	struct p9_server *s = r->s;
	uint32_t fid = (uint32_t)get(&r->in, 4), flags, gid;
	char name[256];
	struct p9_fid *f;
	struct stat st;
	mode_t mode;
	int fd, ret;

	get_str(&r->in, name, sizeof(name));
	flags = (uint32_t)get(&r->in, 4);
	mode = (mode_t)get(&r->in, 4);
	gid = (uint32_t)get(&r->in, 4);
	if (r->in.bad || !name_ok(name))
		return -EINVAL;
	if ((ret = fid_dir(s, fid, &f)))
		return ret;
	if (f->kind != FID_PATH)
		return -EBADF;
	mode = safe_mode(mode, false);
	/* O_EXCL: Tlcreate makes a new file; a name that exists, even a dangling symlink, is
	 * EEXIST, never followed. */
	fd = lookup(f->fd, name, O_CREAT | O_EXCL | open_flags(flags) | O_NONBLOCK, mode);
	if (fd < 0)
		return fd;
	/* The mode exactly as asked: vmm's umask is not the guest's business. */
	if ((ret = give(s, fd, f->uid, gid)) || (ret = fchmod(fd, mode) ? -errno : 0) ||
	    (ret = fd_stat(fd, &st))) {
		close(fd);
		unlinkat(f->fd, name, 0);
		return ret;
	}
	close(f->fd);
	f->fd = fd;
	f->kind = FID_FILE;
	f->writable = (open_flags(flags) & O_ACCMODE) != O_RDONLY;
	put_qid(s, &r->out, &st);
	put(&r->out, 0, 4);
	return 0;
}

/* What Tmkdir, Tsymlink and Tmknod share: the new name's descriptor, given to the guest's user,
 * and its qid in the reply. On failure the name is removed again. */
static int made(struct req *r, struct p9_fid *dir, const char *name, gid_t gid, int remove_flags,
		struct stat *st)
{
	struct p9_server *s = r->s;
	int fd = lookup(dir->fd, name, O_PATH, 0), ret;

	if (fd < 0)
		return fd;
	if ((ret = give(s, fd, dir->uid, gid)) || (ret = fd_stat(fd, st))) {
		close(fd);
		unlinkat(dir->fd, name, remove_flags);
		return ret;
	}
	close(fd);
	put_qid(s, &r->out, st);
	return 0;
}

static int op_mkdir(struct req *r)
{
	struct p9_server *s = r->s;
	uint32_t dfid = (uint32_t)get(&r->in, 4), gid;
	char name[256];
	struct p9_fid *d;
	struct stat st;
	mode_t mode;
	int ret, fd;

	get_str(&r->in, name, sizeof(name));
	mode = safe_mode((mode_t)get(&r->in, 4), true);
	gid = (uint32_t)get(&r->in, 4);
	if (r->in.bad || !name_ok(name))
		return -EINVAL;
	if ((ret = fid_dir(s, dfid, &d)))
		return ret;
	if (mkdirat(d->fd, name, mode))
		return -errno;
	/* The mode exactly as asked, past vmm's umask. */
	if ((fd = lookup(d->fd, name, O_PATH, 0)) >= 0) {
		ret = set_mode(s, fd, mode);
		close(fd);
	}
	if (fd < 0 || ret) {
		unlinkat(d->fd, name, AT_REMOVEDIR);
		return fd < 0 ? fd : ret;
	}
	return made(r, d, name, gid, AT_REMOVEDIR, &st);
}

static int op_symlink(struct req *r)
{
	struct p9_server *s = r->s;
	uint32_t dfid = (uint32_t)get(&r->in, 4), gid;
	char name[256], target[PATH_MAX];
	struct p9_fid *d;
	struct stat st;
	int ret;

	get_str(&r->in, name, sizeof(name));
	get_str(&r->in, target, sizeof(target));
	gid = (uint32_t)get(&r->in, 4);
	if (r->in.bad || !name_ok(name) || !target[0])
		return -EINVAL;
	if ((ret = fid_dir(s, dfid, &d)))
		return ret;
	/* The target is only text: the server never follows a symlink (lookup, p9.h). */
	if (symlinkat(target, d->fd, name))
		return -errno;
	return made(r, d, name, gid, 0, &st);
}

static int op_mknod(struct req *r)
{
	struct p9_server *s = r->s;
	uint32_t dfid = (uint32_t)get(&r->in, 4), maj, min, gid;
	char name[256];
	struct p9_fid *d;
	struct stat st;
	mode_t mode;
	int ret, fd;

	get_str(&r->in, name, sizeof(name));
	mode = (mode_t)get(&r->in, 4);
	maj = (uint32_t)get(&r->in, 4);
	min = (uint32_t)get(&r->in, 4);
	gid = (uint32_t)get(&r->in, 4);
	if (r->in.bad || !name_ok(name))
		return -EINVAL;
	if ((ret = fid_dir(s, dfid, &d)))
		return ret;
	switch (mode & S_IFMT) {
	case S_IFIFO:
	case S_IFSOCK:
	case S_IFREG:
		/* Harmless on the host: vmm never opens them (op_lopen). */
		if (mknodat(d->fd, name, (mode & S_IFMT) | safe_mode(mode, false), 0))
			return -errno;
		if ((fd = lookup(d->fd, name, O_PATH, 0)) < 0)
			return fd;
		ret = set_mode(s, fd, safe_mode(mode, false));
		close(fd);
		break;
	case S_IFCHR:
	case S_IFBLK:
		/* No device on the host: a marked empty file (p9.h). */
		fd = lookup(d->fd, name, O_CREAT | O_EXCL | O_WRONLY, 0600);
		if (fd < 0)
			return fd;
		ret = fchmod(fd, 0600 | NODE_MARK) ? -errno : 0;
		if (!ret)
			ret = node_write(fd, mode, makedev(maj, min));
		close(fd);
		break;
	default:
		return -EINVAL;
	}
	if (ret) {
		unlinkat(d->fd, name, 0);
		return ret;
	}
	return made(r, d, name, gid, 0, &st);
}

static int op_readlink(struct req *r)
{
	struct p9_server *s = r->s;
	uint32_t fid = (uint32_t)get(&r->in, 4);
	char target[PATH_MAX];
	struct p9_fid *f;
	ssize_t n;
	int ret;

	if (r->in.bad)
		return -EINVAL;
	if ((ret = fid_file(s, fid, &f)))
		return ret;
	if (f->kernel)
		return -EACCES;
	n = readlinkat(f->fd, "", target, sizeof(target));
	if (n < 0)
		return -errno;
	put_bytes(&r->out, target, (size_t)n);
	return 0;
}

static int op_link(struct req *r)
{
	struct p9_server *s = r->s;
	uint32_t dfid = (uint32_t)get(&r->in, 4), fid = (uint32_t)get(&r->in, 4);
	char name[256], n[16];
	struct p9_fid *d, *f;
	int ret;

	get_str(&r->in, name, sizeof(name));
	if (r->in.bad || !name_ok(name))
		return -EINVAL;
	if ((ret = fid_dir(s, dfid, &d)) || (ret = fid_file(s, fid, &f)))
		return ret;
	if (f->kernel)
		return -EACCES;
	/* The fid's own file, through /proc: linkat(AT_EMPTY_PATH) would need a capability. */
	snprintf(n, sizeof(n), "%d", f->fd);
	return linkat(s->proc_fd, n, d->fd, name, AT_SYMLINK_FOLLOW) ? -errno : 0;
}

static int op_renameat(struct req *r)
{
	struct p9_server *s = r->s;
	uint32_t ofid = (uint32_t)get(&r->in, 4), nfid;
	char oname[256], nname[256];
	struct p9_fid *o, *n;
	int ret;

	get_str(&r->in, oname, sizeof(oname));
	nfid = (uint32_t)get(&r->in, 4);
	get_str(&r->in, nname, sizeof(nname));
	if (r->in.bad || !name_ok(oname) || !name_ok(nname))
		return -EINVAL;
	if ((ret = fid_dir(s, ofid, &o)) || (ret = fid_dir(s, nfid, &n)))
		return ret;
	return renameat(o->fd, oname, n->fd, nname) ? -errno : 0;
}

static int op_unlinkat(struct req *r)
{
	struct p9_server *s = r->s;
	uint32_t dfid = (uint32_t)get(&r->in, 4), flags;
	char name[256];
	struct p9_fid *d;
	int ret;

	get_str(&r->in, name, sizeof(name));
	flags = (uint32_t)get(&r->in, 4);
	if (r->in.bad || !name_ok(name))
		return -EINVAL;
	if ((ret = fid_dir(s, dfid, &d)))
		return ret;
	return unlinkat(d->fd, name, (flags & P9_DOTL_AT_REMOVEDIR) ? AT_REMOVEDIR : 0) ? -errno
											  : 0;
}

static int op_statfs(struct req *r)
{
	struct p9_server *s = r->s;
	uint32_t fid = (uint32_t)get(&r->in, 4);
	struct p9_fid *f;
	struct statfs st;
	int ret;

	if (r->in.bad)
		return -EINVAL;
	if ((ret = fid_file(s, fid, &f)))
		return ret;
	if (fstatfs(f->fd, &st))
		return -errno;
	put(&r->out, (uint64_t)st.f_type, 4);
	put(&r->out, (uint64_t)st.f_bsize, 4);
	put(&r->out, st.f_blocks, 8);
	put(&r->out, st.f_bfree, 8);
	put(&r->out, st.f_bavail, 8);
	put(&r->out, st.f_files, 8);
	put(&r->out, st.f_ffree, 8);
	put(&r->out, (uint64_t)(uint32_t)st.f_fsid.__val[0] |
			     (uint64_t)(uint32_t)st.f_fsid.__val[1] << 32, 8);
	put(&r->out, (uint64_t)st.f_namelen, 4);
	return 0;
}

static int op_fsync(struct req *r)
{
	struct p9_server *s = r->s;
	uint32_t fid = (uint32_t)get(&r->in, 4);
	struct p9_fid *f;
	int ret;

	get(&r->in, 4); /* datasync: newer clients send it; a full fsync serves both */
	if (r->in.bad)
		return -EINVAL;
	if ((ret = fid_file(s, fid, &f)))
		return ret;
	if (f->kind == FID_PATH)
		return -EBADF;
	return fsync(f->fd) ? -errno : 0;
}

/* Tlock and Tgetlock: Linux takes the lock in the guest's own kernel first and only tells the
 * server; vmm takes no lock on the host (as QEMU), so one guest's locks work among its
 * processes and a host process is not held up by the guest. */
static int op_lock(struct req *r)
{
	struct p9_server *s = r->s;
	uint32_t fid = (uint32_t)get(&r->in, 4);
	struct p9_fid *f;
	int ret;

	if (r->in.bad)
		return -EINVAL;
	if ((ret = fid_file(s, fid, &f)))
		return ret;
	put(&r->out, P9_LOCK_SUCCESS, 1);
	return 0;
}

static int op_getlock(struct req *r)
{
	struct p9_server *s = r->s;
	uint32_t fid = (uint32_t)get(&r->in, 4);
	uint64_t start, length;
	uint32_t proc;
	char client[256];
	struct p9_fid *f;
	int ret;

	get(&r->in, 1);
	start = get(&r->in, 8);
	length = get(&r->in, 8);
	proc = (uint32_t)get(&r->in, 4);
	get_str(&r->in, client, sizeof(client));
	if (r->in.bad)
		return -EINVAL;
	if ((ret = fid_file(s, fid, &f)))
		return ret;
	put(&r->out, P9_LOCK_TYPE_UNLCK, 1); /* nobody holds it, as far as the host goes */
	put(&r->out, start, 8);
	put(&r->out, length, 8);
	put(&r->out, proc, 4);
	put_bytes(&r->out, client, strlen(client));
	return 0;
}

/* Treaddir: entries from the directory's position offset (a cookie an earlier entry gave), as
 * many whole ones as count bytes hold. */
static int op_readdir(struct req *r)
{
	struct p9_server *s = r->s;
	uint32_t fid = (uint32_t)get(&r->in, 4), count;
	uint64_t offset = get(&r->in, 8);
	size_t count_at, start;
	char buf[8192];
	struct p9_fid *f;
	struct stat dir;
	int ret;

	count = (uint32_t)get(&r->in, 4);
	if (r->in.bad)
		return -EINVAL;
	if (!(f = fid_get(s, fid)))
		return -EBADF;
	if (f->kind != FID_DIR)
		return f->kind == FID_PATH ? -EBADF : -ENOTDIR;
	if (offset > (uint64_t)INT64_MAX)
		return -EINVAL;
	if ((ret = fd_stat(f->fd, &dir)))
		return ret;
	if (lseek(f->fd, (off_t)offset, SEEK_SET) < 0)
		return -errno;
	count_at = r->out.at;
	put(&r->out, 0, 4);
	start = r->out.at;
	if (count > r->out.len - start)
		count = (uint32_t)(r->out.len - start);
	for (;;) {
		long n = syscall(SYS_getdents64, f->fd, buf, sizeof(buf));
		long at = 0;

		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		while (at < n) {
			const struct dirent64 *de = (const void *)(buf + at);
			size_t len = strlen(de->d_name);
			uint8_t type = de->d_type == DT_DIR ? QTDIR : de->d_type == DT_LNK ? QTSYMLINK
											  : QTFILE;

			if (r->out.at - start + QID_SIZE + 8 + 1 + 2 + len > count)
				goto full;
			put(&r->out, type, 1);
			put(&r->out, 0, 4);
			put(&r->out, qid_path(s, dir.st_dev, de->d_ino), 8);
			put(&r->out, (uint64_t)de->d_off, 8);
			put(&r->out, de->d_type, 1);
			put_bytes(&r->out, de->d_name, len);
			at += de->d_reclen;
		}
	}
full:
	put(&(struct msg){ .p = r->out.p + count_at, .len = 4 }, r->out.at - start, 4);
	return 0;
}

static int op_read(struct req *r)
{
	struct p9_server *s = r->s;
	uint32_t fid = (uint32_t)get(&r->in, 4), count;
	uint64_t offset = get(&r->in, 8);
	struct iovec iov[VIRTQ_MAX_SIZE];
	struct p9_fid *f;
	unsigned n;
	ssize_t got;

	count = (uint32_t)get(&r->in, 4);
	if (r->in.bad)
		return -EINVAL;
	if (!(f = fid_get(s, fid)))
		return -EBADF;
	/* At most what the reply may hold: msize, and the chain's room. */
	if (count > s->msize - P9_HDR - 4)
		count = s->msize - P9_HDR - 4;
	if (count > r->room - P9_HDR - 4)
		count = (uint32_t)(r->room - P9_HDR - 4);
	if (f->kind == FID_XATTR_READ) {
		size_t avail = offset < f->xlen ? f->xlen - offset : 0;

		if (count > avail)
			count = (uint32_t)avail;
		put(&r->out, count, 4);
		if (r->out.at + count > r->out.len)
			return -EINVAL;
		if (count) /* then offset is inside the value; past it, xbuf + offset is no pointer */
			memcpy(r->out.p + r->out.at, f->xbuf + offset, count);
		r->out.at += count;
		return 0;
	}
	if (f->kind != FID_FILE)
		return f->kind == FID_DIR ? -EISDIR : -EBADF;
	if (offset > (uint64_t)INT64_MAX)
		return -EINVAL;
	/* Straight into the guest's buffers, after the reply's header. */
	n = iov_slice(r->data_in, r->data_in_n, P9_HDR + 4, count, iov, VIRTQ_MAX_SIZE);
	do
		got = n ? preadv(f->fd, iov, (int)n, (off_t)offset) : 0;
	while (got < 0 && errno == EINTR);
	if (got < 0)
		return -errno;
	put(&r->out, (uint64_t)got, 4);
	r->data_len = (size_t)got;
	return 0;
}

static int op_write(struct req *r)
{
	struct p9_server *s = r->s;
	uint32_t fid = (uint32_t)get(&r->in, 4), count;
	uint64_t offset = get(&r->in, 8);
	struct iovec iov[VIRTQ_MAX_SIZE];
	struct p9_fid *f;
	unsigned n;
	ssize_t done;

	count = (uint32_t)get(&r->in, 4);
	if (r->in.bad)
		return -EINVAL;
	/* The data is the rest of the message: it must be there. */
	if ((uint64_t)count + 23 > r->given || (uint64_t)count + 23 > s->msize)
		return -EINVAL;
	if (!(f = fid_get(s, fid)))
		return -EBADF;
	if (f->kind == FID_XATTR_CREATE) {
		/* No further than the size Txattrcreate gave: xbuf holds that much. */
		if (offset != f->xlen || count > f->xsize - f->xlen)
			return -EINVAL;
		iov_copy(r->data_out, r->data_out_n, 23, f->xbuf + f->xlen, count, false);
		f->xlen += count;
		put(&r->out, count, 4);
		return 0;
	}
	if (f->kind != FID_FILE || !f->writable)
		return f->kind == FID_DIR ? -EISDIR : -EBADF;
	if (offset > (uint64_t)INT64_MAX)
		return -EINVAL;
	n = iov_slice(r->data_out, r->data_out_n, 23, count, iov, VIRTQ_MAX_SIZE);
	do
		done = n ? pwritev(f->fd, iov, (int)n, (off_t)offset) : 0;
	while (done < 0 && errno == EINTR);
	if (done < 0)
		return -errno;
	put(&r->out, (uint64_t)done, 4);
	return 0;
}

/* A list of NUL-terminated names (listxattr's) without `name`: its new length. */
static size_t names_without(uint8_t *list, size_t len, const char *name)
{
	size_t at = 0, n = strlen(name) + 1;

	while (at < len) {
		size_t l = strnlen((char *)list + at, len - at) + 1;

		if (l == n && !memcmp(list + at, name, n)) {
			memmove(list + at, list + at + l, len - at - l);
			len -= l;
		} else {
			at += l;
		}
	}
	return len;
}

static int op_xattrwalk(struct req *r)
{
	struct p9_server *s = r->s;
	uint32_t fid = (uint32_t)get(&r->in, 4), newfid = (uint32_t)get(&r->in, 4);
	char name[256], path[40];
	struct p9_fid *f, *nf;
	struct stat st;
	uint8_t *buf, *tmp;
	ssize_t n;
	int fd, ret;

	get_str(&r->in, name, sizeof(name));
	if (r->in.bad)
		return -EINVAL;
	if ((ret = fid_file(s, fid, &f)) || (ret = fd_stat(f->fd, &st)))
		return ret;
	if (!(buf = malloc(P9_MAX_XATTR)))
		return -ENOMEM;
	/* Only files and directories have attributes here: a symlink's would be read through it. */
	proc_path(path, f->fd);
	if ((!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) || f->kernel)
		n = name[0] ? -ENODATA : 0;
	else if (!strcmp(name, NODE_XATTR))
		n = -ENODATA; /* vmm's own mark is not the guest's */
	else if ((n = name[0] ? getxattr(path, name, buf, P9_MAX_XATTR)
			      : listxattr(path, (char *)buf, P9_MAX_XATTR)) < 0)
		n = -errno;
	if (n < 0) {
		free(buf);
		return (int)n;
	}
	if (!name[0])
		n = (ssize_t)names_without(buf, (size_t)n, NODE_XATTR);
	/* Held as long as the fid: only its own size (a guest may hold many). */
	if ((tmp = realloc(buf, n ? (size_t)n : 1)))
		buf = tmp;
	if ((fd = fcntl(f->fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		free(buf);
		return -errno;
	}
	if ((ret = fid_new(s, newfid, fd, f->uid, &nf))) {
		free(buf);
		return ret;
	}
	nf->kind = FID_XATTR_READ;
	nf->xbuf = buf;
	nf->xlen = (size_t)n;
	put(&r->out, (uint64_t)n, 8);
	return 0;
}

static int op_xattrcreate(struct req *r)
{
	struct p9_server *s = r->s;
	uint32_t fid = (uint32_t)get(&r->in, 4), flags;
	uint64_t size;
	char name[256];
	struct p9_fid *f;
	struct stat st;
	int ret;

	get_str(&r->in, name, sizeof(name));
	size = get(&r->in, 8);
	flags = (uint32_t)get(&r->in, 4);
	if (r->in.bad || !name[0])
		return -EINVAL;
	if ((ret = fid_dir(s, fid, &f)) || (ret = fd_stat(f->fd, &st)))
		return ret;
	if (size > P9_MAX_XATTR)
		return -E2BIG;
	if (flags & ~(uint32_t)(XATTR_CREATE | XATTR_REPLACE))
		return -EINVAL;
	/* The guest's users' own attributes only: security.* and trusted.* would be the host's
	 * (file capabilities, SELinux labels), system.* its ACLs, vmm's mark is its own. */
	if (strncmp(name, "user.", 5) || !strcmp(name, NODE_XATTR))
		return -EOPNOTSUPP;
	if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
		return -EPERM;
	if (!(f->xname = strdup(name)) || !(f->xbuf = malloc(size ? size : 1))) {
		free(f->xname);
		f->xname = NULL;
		return -ENOMEM;
	}
	f->kind = FID_XATTR_CREATE;
	f->xlen = 0;
	f->xsize = size;
	f->xflags = (int)flags;
	return 0;
}

static int op_flush(struct req *r)
{
	get(&r->in, 2);
	/* Requests are served one at a time, each to its end: the one named is done. */
	return r->in.bad ? -EINVAL : 0;
}

static int dispatch(struct req *r)
{
	switch (r->type) {
	case P9_TVERSION: return op_version(r);
	case P9_TATTACH: return op_attach(r);
	case P9_TWALK: return op_walk(r);
	case P9_TCLUNK: return op_clunk(r);
	case P9_TREMOVE: return op_remove(r);
	case P9_TGETATTR: return op_getattr(r);
	case P9_TSETATTR: return op_setattr(r);
	case P9_TLOPEN: return op_lopen(r);
	case P9_TLCREATE: return op_lcreate(r);
	case P9_TMKDIR: return op_mkdir(r);
	case P9_TSYMLINK: return op_symlink(r);
	case P9_TMKNOD: return op_mknod(r);
	case P9_TREADLINK: return op_readlink(r);
	case P9_TLINK: return op_link(r);
	case P9_TRENAMEAT: return op_renameat(r);
	case P9_TUNLINKAT: return op_unlinkat(r);
	case P9_TSTATFS: return op_statfs(r);
	case P9_TFSYNC: return op_fsync(r);
	case P9_TLOCK: return op_lock(r);
	case P9_TGETLOCK: return op_getlock(r);
	case P9_TREADDIR: return op_readdir(r);
	case P9_TREAD: return op_read(r);
	case P9_TWRITE: return op_write(r);
	case P9_TXATTRWALK: return op_xattrwalk(r);
	case P9_TXATTRCREATE: return op_xattrcreate(r);
	case P9_TFLUSH: return op_flush(r);
	case P9_TRENAME: /* Linux renames with Trenameat */
	case P9_TAUTH:   /* no authentication */
	default:
		return -EOPNOTSUPP;
	}
}

static size_t iov_total(const struct iovec *iov, unsigned n)
{
	size_t t = 0;

	for (unsigned i = 0; i < n; i++)
		t += iov[i].iov_len;
	return t;
}

size_t p9_serve(struct p9_server *s, const struct iovec *req, unsigned req_n,
		const struct iovec *resp, unsigned resp_n)
{
	uint8_t hdr[P9_HDR], small_in[128], small_out[128];
	size_t given = iov_total(req, req_n), room = iov_total(resp, resp_n), len;
	struct req r = { .s = s, .data_in = resp, .data_in_n = resp_n, .room = room,
			 .data_out = req, .data_out_n = req_n };
	/* Before Tversion only Tversion is served, from buffers just large enough. */
	uint8_t *in = s->msize ? s->in : small_in, *out = s->msize ? s->out : small_out;
	size_t cap = s->msize ? s->msize : sizeof(small_in);
	uint16_t tag = 0xffff;
	uint32_t size;
	int ret = -EINVAL;

	if (room < P9_HDR + 4)
		return 0; /* not even room to say what went wrong */
	if (iov_copy(req, req_n, 0, hdr, P9_HDR, false) == P9_HDR) {
		size = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 |
		       (uint32_t)hdr[3] << 24;
		r.type = hdr[4];
		tag = (uint16_t)(hdr[5] | hdr[6] << 8);
		s->served[r.type & 127]++;
		/* The message must be all there and fit msize. Twrite's data stays in the chain;
		 * every other request is copied whole, so the guest cannot change a field after it
		 * was checked. */
		if (!s->msize && r.type != P9_TVERSION)
			ret = -EPROTO;
		else if (size >= P9_HDR && size <= given && size <= cap) {
			len = r.type == P9_TWRITE && size > 23 ? 23 : size;
			iov_copy(req, req_n, 0, in, len, false);
			r.in = (struct msg){ .p = in, .len = len, .at = P9_HDR };
			r.given = size;
			r.out = (struct msg){ .p = out, .len = cap < room ? cap : room, .at = P9_HDR };
			ret = dispatch(&r);
			if (!ret && r.out.bad)
				ret = -ENOBUFS; /* the reply does not fit the driver's buffers */
		}
	}
	if (ret) {
		uint8_t err[P9_HDR + 4];
		struct msg m = { .p = err, .len = sizeof(err) };

		put(&m, sizeof(err), 4);
		put(&m, P9_RLERROR, 1);
		put(&m, tag, 2);
		put(&m, (uint32_t)-ret, 4);
		iov_copy(resp, resp_n, 0, err, sizeof(err), true);
		return sizeof(err);
	}
	/* The reply's header, then the reply (Rread's data is in the chain already). */
	len = r.out.at;
	{
		struct msg m = { .p = r.out.p, .len = P9_HDR };

		put(&m, len + r.data_len, 4);
		put(&m, r.type + 1u, 1);
		put(&m, tag, 2);
	}
	iov_copy(resp, resp_n, 0, r.out.p, len, true);
	return len + r.data_len;
}

void p9_log_state(const struct p9_server *s)
{
	static const char *const names[128] = {
		[P9_TSTATFS] = "statfs", [P9_TLOPEN] = "lopen", [P9_TLCREATE] = "lcreate",
		[P9_TSYMLINK] = "symlink", [P9_TMKNOD] = "mknod", [P9_TRENAME] = "rename",
		[P9_TREADLINK] = "readlink", [P9_TGETATTR] = "getattr", [P9_TSETATTR] = "setattr",
		[P9_TXATTRWALK] = "xattrwalk", [P9_TXATTRCREATE] = "xattrcreate",
		[P9_TREADDIR] = "readdir", [P9_TFSYNC] = "fsync", [P9_TLOCK] = "lock",
		[P9_TGETLOCK] = "getlock", [P9_TLINK] = "link", [P9_TMKDIR] = "mkdir",
		[P9_TRENAMEAT] = "renameat", [P9_TUNLINKAT] = "unlinkat", [P9_TVERSION] = "version",
		[P9_TAUTH] = "auth", [P9_TATTACH] = "attach", [P9_TFLUSH] = "flush",
		[P9_TWALK] = "walk", [P9_TREAD] = "read", [P9_TWRITE] = "write",
		[P9_TCLUNK] = "clunk", [P9_TREMOVE] = "remove",
	};
	char buf[1024];
	size_t at = 0;

	for (unsigned t = 0; t < 128 && at < sizeof(buf); t++) {
		if (s->served[t])
			at += (size_t)snprintf(buf + at, sizeof(buf) - at, " %s %llu",
					       names[t] ? names[t] : "other",
					       (unsigned long long)s->served[t]);
	}
	log_info("%s: msize %u, %u fids; requests:%s", s->name, s->msize, s->nr_fids,
		 at ? buf : " none");
}

void p9_reset(struct p9_server *s)
{
	fids_clear(s);
	free(s->in);
	free(s->out);
	s->in = s->out = NULL;
	s->msize = 0;
}

/* The share as a detached clone of its mount, nodev and nosuid (read-only for readonly=on), when
 * vmm may make one (p9.h): -errno when it may not, and the caller opens the directory itself. */
static int open_detached(const char *dir, bool readonly)
{
	struct mount_attr attr = {
		.attr_set = MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID | (readonly ? MOUNT_ATTR_RDONLY : 0),
	};
	int fd = (int)syscall(SYS_open_tree, AT_FDCWD, dir,
			      OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);

	if (fd < 0)
		return -errno;
	if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr))) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	return fd;
}

int p9_open(struct p9_server *s, const char *name, const char *dir, bool readonly,
	    const char *what)
{
	struct rlimit rl;
	struct stat st;
	int ret;

	memset(s, 0, sizeof(*s));
	s->root = s->proc_fd = -1;
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->readonly = readonly;
	s->root = open_detached(dir, readonly);
	s->detached = s->root >= 0;
	if (!s->detached)
		s->root = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (s->root < 0) {
		ret = -errno;
		log_error("%s: %s", what, strerror(errno));
		return ret;
	}
	if ((ret = fd_stat(s->root, &st)) || !S_ISDIR(st.st_mode)) {
		log_error("%s: not a directory", what);
		p9_close(s);
		return ret ? ret : -ENOTDIR;
	}
	s->root_dev = st.st_dev;
	s->root_ino = st.st_ino;
	s->proc_fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (s->proc_fd < 0) {
		ret = -errno;
		log_error("%s: /proc/self/fd: %s (the share needs /proc)", what, strerror(errno));
		p9_close(s);
		return ret;
	}
	if (kernel_fs(s->root)) {
		log_error("%s: one of the kernel's own file systems (proc, sysfs, ...): not shared",
			  what);
		p9_close(s);
		return -EINVAL;
	}
	/* Ownership as the guest says, where vmm may give files away. */
	capng_get_caps_process();
	s->owner = capng_have_capability(CAPNG_EFFECTIVE, CAP_CHOWN);
	/* Each fid is a descriptor: as many as the process may have, a quarter of them at most. */
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	s->max_fids = P9_MAX_FIDS;
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur / 4 < P9_MAX_FIDS)
		s->max_fids = rl.rlim_cur / 4 > 64 ? (unsigned)(rl.rlim_cur / 4) : 64;
	return 0;
}

void p9_close(struct p9_server *s)
{
	p9_reset(s);
	if (s->root >= 0)
		close(s->root);
	if (s->proc_fd >= 0)
		close(s->proc_fd);
	s->root = s->proc_fd = -1;
}
