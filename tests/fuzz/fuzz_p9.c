/* libFuzzer target for the 9P server (backend/p9.c): what a guest's driver puts in the queue, one
 * 9P message per chain, and how the chain is cut. Input:
 *
 *   0     bit 0: the read-only server; bit 1: the harness opens the session first (Tversion of
 *         msize 8192, Tattach of fid 0 as uid 0), so that an input can go straight to requests
 *   1-    records, each len[2] rcut[1] wroom[1] wcut[1] then len bytes of message (cut to what
 *         the input holds). The message is served as it is (its size field is the input's) from
 *         readable buffers of rcut bytes each (0: one buffer), and the reply goes to writable
 *         buffers of wcut bytes each (0: one) holding wroom bytes in all: 1-15 that many, 16-255
 *         (wroom - 15) * 64, 0 8 KiB + 64. At most 16 buffers each way: the last takes the rest.
 *         Every buffer is a heap block of exactly its size, so ASan sees any access past one.
 *
 * The share is made once per process in /tmp: files, a subdirectory, a FIFO, an attribute,
 * symlinks inside the share, to /etc, to /proc and to a directory beside it. After each input
 * the session is reset (no fid and no descriptor may be left), and the share is made again if
 * the input sent the read-write server a request that may change it, so inputs are independent.
 * It checks each reply's header (its size the one returned, the request's tag, the request's
 * type + 1 or Rlerror with an errno), that no writable byte past the reply changed, that the
 * directory beside the share is untouched, and that the read-only share, or an input of requests
 * that change nothing, leaves the share exactly as it was. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "backend/p9.h"
#include "log.h"
#include "fuzz.h"

#define MAX_PIECES   16
#define ROOM_DEFAULT (8192 + 64) /* a reply of the harness's msize, and some */
#define RLERROR      7
#define SUBDIR       (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) /* the harness's walks */

static char base[] = "/tmp/vmm-fuzz-p9-XXXXXX";
static char share[PATH_MAX], outside[PATH_MAX];
static int share_fd = -1;
static struct p9_server rw, ro;
static struct stat secret0, outside0;
static uint64_t tree0; /* the share's fingerprint, as made */
static struct iovec blocks[2][MAX_PIECES]; /* the request's buffers, the reply's (block()) */

/* Requests that change nothing in the share (Tclunk sets an attribute only after
 * Txattrcreate, which is not one of them). */
static bool changes_nothing(uint8_t type)
{
	switch (type) {
	case 8:   /* Tstatfs */
	case 22:  /* Treadlink */
	case 24:  /* Tgetattr */
	case 30:  /* Txattrwalk */
	case 40:  /* Treaddir */
	case 50:  /* Tfsync */
	case 52:  /* Tlock */
	case 54:  /* Tgetlock */
	case 100: /* Tversion */
	case 104: /* Tattach */
	case 108: /* Tflush */
	case 110: /* Twalk */
	case 116: /* Tread */
	case 120: /* Tclunk */
		return true;
	default:
		return false;
	}
}

/* ---- the share ---- */

static void put_file(const char *name, size_t n, mode_t mode)
{
	uint8_t buf[4096];
	int fd = openat(share_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);

	check(fd >= 0 && n <= sizeof(buf));
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)(i * 7 + 1);
	check(write(fd, buf, n) == (ssize_t)n);
	check(fchmod(fd, mode) == 0);
	close(fd);
}

static void make_tree(void)
{
	char path[PATH_MAX + 16];

	put_file("file", 4096, 0644);
	put_file("empty", 0, 0600);
	check(mkdirat(share_fd, "sub", 0755) == 0);
	put_file("sub/inner", 100, 0644);
	check(mkdirat(share_fd, "sub/deeper", 0700) == 0);
	check(symlinkat("file", share_fd, "link") == 0);
	check(symlinkat("/etc", share_fd, "etc") == 0);
	check(symlinkat("/proc/self/root", share_fd, "proc") == 0);
	check(symlinkat("../outside", share_fd, "up") == 0);
	snprintf(path, sizeof(path), "%s/secret", outside);
	check(symlinkat(path, share_fd, "secret") == 0);
	check(mkfifoat(share_fd, "fifo", 0644) == 0);
	snprintf(path, sizeof(path), "%s/file", share);
	setxattr(path, "user.seed", "seed", 4, 0); /* where the file system keeps them */
}

/* dir's entries from the first, on a descriptor of their own (a dup would share dir's offset). */
static DIR *opendir_at(int dir)
{
	int fd = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;

	check(d != NULL);
	return d;
}

/* Removes everything beneath dir (a descriptor it keeps), whatever modes the guest left. */
static void empty_dir(int dir)
{
	bool again = true;

	while (again) {
		DIR *d = opendir_at(dir);
		struct dirent *de;

		again = false;
		while ((de = readdir(d))) {
			int sub;

			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			again = true;
			if (!unlinkat(dir, de->d_name, 0))
				continue;
			sub = openat(dir, de->d_name, SUBDIR);
			check(sub >= 0);
			fchmod(sub, 0700);
			empty_dir(sub);
			close(sub);
			check(unlinkat(dir, de->d_name, AT_REMOVEDIR) == 0);
		}
		closedir(d);
	}
}

/* The share's root as made (its mode and attributes), then its tree again. */
static void reset_tree(void)
{
	char names[4096];
	ssize_t n;

	empty_dir(share_fd);
	check(fchmod(share_fd, 0755) == 0);
	n = flistxattr(share_fd, names, sizeof(names));
	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1)
		if (!strncmp(names + i, "user.", 5))
			check(fremovexattr(share_fd, names + i) == 0);
	make_tree();
}

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	return h * 0xff51afd7ed558ccdull;
}

static uint64_t stat_hash(const char *name, const struct stat *st)
{
	uint64_t h = 0;

	for (const char *p = name; *p; p++)
		h = mix(h, (uint8_t)*p);
	h = mix(h, st->st_ino);
	h = mix(h, st->st_mode);
	h = mix(h, st->st_nlink);
	h = mix(h, st->st_uid);
	h = mix(h, st->st_gid);
	h = mix(h, (uint64_t)st->st_size);
	h = mix(h, (uint64_t)st->st_mtim.tv_sec);
	h = mix(h, (uint64_t)st->st_mtim.tv_nsec);
	h = mix(h, (uint64_t)st->st_ctim.tv_sec); /* attributes and links change it */
	return mix(h, (uint64_t)st->st_ctim.tv_nsec);
}

/* The entries beneath dir and what stat says of each (not atime), in any order. */
static uint64_t fingerprint(int dir)
{
	DIR *d = opendir_at(dir);
	struct dirent *de;
	uint64_t sum = 0;

	while ((de = readdir(d))) {
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		check(fstatat(dir, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0);
		sum += stat_hash(de->d_name, &st);
		if (S_ISDIR(st.st_mode)) {
			int sub = openat(dir, de->d_name, SUBDIR);

			check(sub >= 0);
			sum += mix(fingerprint(sub), 1);
			close(sub);
		}
	}
	closedir(d);
	return sum;
}

static uint64_t share_fingerprint(void)
{
	struct stat st;

	check(fstat(share_fd, &st) == 0);
	return stat_hash("", &st) + fingerprint(share_fd);
}

/* The directory beside the share and its one file are as made. */
static void check_outside(void)
{
	char path[PATH_MAX + 16];
	struct stat st;

	check(stat(outside, &st) == 0);
	check(stat_hash("", &st) == stat_hash("", &outside0));
	snprintf(path, sizeof(path), "%s/secret", outside);
	check(stat(path, &st) == 0);
	check(stat_hash("", &st) == stat_hash("", &secret0));
}

static void cleanup(void)
{
	int fd;

	p9_close(&rw);
	p9_close(&ro);
	for (unsigned i = 0; i < 2 * MAX_PIECES; i++)
		free(blocks[i / MAX_PIECES][i % MAX_PIECES].iov_base);
	if (share_fd >= 0)
		close(share_fd);
	if ((fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		empty_dir(fd);
		close(fd);
		rmdir(base);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path[PATH_MAX + 16];
	int fd;

	log_set_level(LOG_ERROR);
	check(mkdtemp(base) != NULL);
	atexit(cleanup);
	snprintf(share, sizeof(share), "%s/share", base);
	snprintf(outside, sizeof(outside), "%s/outside", base);
	check(mkdir(share, 0755) == 0 && mkdir(outside, 0755) == 0);
	snprintf(path, sizeof(path), "%s/secret", outside);
	check((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) >= 0);
	check(write(fd, "not the guest's\n", 16) == 16);
	close(fd);
	check(stat(path, &secret0) == 0);
	check((share_fd = open(share, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0);
	reset_tree();
	check(stat(outside, &outside0) == 0);
	tree0 = share_fingerprint();
	check(p9_open(&rw, "fuzz-rw", share, false, "fuzz") == 0);
	check(p9_open(&ro, "fuzz-ro", share, true, "fuzz") == 0);
	return 0;
}

/* ---- requests ---- */

/* A heap block of exactly len bytes for buffer i of a side, kept from one message to the next
 * while the size is the same: fresh ones for every message would cost a page fault per page
 * (ASan's quarantine hands out new memory), most of the time spent. */
static void *block(unsigned side, unsigned i, size_t len)
{
	struct iovec *b = &blocks[side][i];

	if (!b->iov_base || b->iov_len != len) {
		free(b->iov_base);
		b->iov_base = malloc(len ? len : 1);
		b->iov_len = len;
		check(b->iov_base != NULL);
	}
	return b->iov_base;
}

/* Cuts len bytes into blocks of `cut` bytes each (0: one block), the last taking the rest: the
 * request's (side 0), holding src's bytes, or the reply's (side 1), holding 0xa5. Returns the
 * count of blocks. */
static unsigned cut_iov(struct iovec *iov, unsigned side, const uint8_t *src, size_t len,
			size_t cut)
{
	unsigned n = 0;
	size_t at = 0;

	do {
		size_t k = len - at;

		if (cut && k > cut && n < MAX_PIECES - 1)
			k = cut;
		iov[n].iov_base = block(side, n, k);
		if (src)
			memcpy(iov[n].iov_base, src + at, k);
		else
			memset(iov[n].iov_base, 0xa5, k);
		iov[n++].iov_len = k;
		at += k;
	} while (at < len);
	return n;
}

/* Serves one message and checks the reply. */
static void serve(struct p9_server *s, const uint8_t *msg, size_t len, unsigned rcut,
		  unsigned wroom, unsigned wcut)
{
	size_t room = wroom == 0 ? ROOM_DEFAULT : wroom < 16 ? wroom : (size_t)(wroom - 15) * 64;
	struct iovec in[MAX_PIECES], out[MAX_PIECES];
	unsigned nin = cut_iov(in, 0, msg, len, rcut), nout = cut_iov(out, 1, NULL, room, wcut);
	uint8_t hdr[11];
	size_t ret = p9_serve(s, in, nin, out, nout), at = 0;

	check(ret <= room);
	check(room < 11 ? ret == 0 : ret >= 7);
	if (ret) {
		uint16_t tag = len >= 7 ? (uint16_t)le(msg + 5, 2) : 0xffff;

		check(iov_copy(out, nout, 0, hdr, ret < 11 ? ret : 11, false) ==
		      (ret < 11 ? ret : 11));
		check(le(hdr, 4) == ret);
		check(le(hdr + 5, 2) == tag);
		if (hdr[4] == RLERROR) {
			check(ret == 11);
			check(le(hdr + 7, 4) > 0 && le(hdr + 7, 4) < 4096);
		} else {
			check(len >= 7 && hdr[4] == (uint8_t)(msg[4] + 1));
		}
	}
	/* Past the reply, every writable byte is as it was. */
	for (unsigned i = 0; i < nout; i++) {
		const uint8_t *p = out[i].iov_base;
		size_t k = at < ret ? ret - at : 0, n = out[i].iov_len;

		if (k < n)
			check(p[k] == 0xa5 && !memcmp(p + k, p + k + 1, n - k - 1));
		at += n;
	}
}

/* Tversion (msize 8192, 9P2000.L) and Tattach of fid 0, as a driver opens the session. */
static void open_session(struct p9_server *s)
{
	static const uint8_t version[] = { 21, 0, 0, 0, 100, 0xff, 0xff, 0, 0x20, 0, 0,
					   8,  0, '9', 'P', '2', '0', '0', '0', '.', 'L' };
	static const uint8_t attach[] = { 24,	0, 0, 0, 104, 1, 0, 0, 0, 0, 0, 0xff,
					  0xff, 0xff, 0xff, 1, 0, 'u', 0, 0, 0, 0, 0, 0 };

	serve(s, version, sizeof(version), 0, 0, 0);
	serve(s, attach, sizeof(attach), 0, 0, 0);
	check(s->msize == 8192 && s->nr_fids == 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct p9_server *s;
	bool changed = false;
	size_t at = 1;
	unsigned fds;

	if (size < 1)
		return 0;
	fds = fuzz_count_fds();
	s = (data[0] & 1) ? &ro : &rw;
	if (data[0] & 2)
		open_session(s);
	while (at + 5 <= size) {
		size_t len = le(data + at, 2);
		unsigned rcut = data[at + 2], wroom = data[at + 3], wcut = data[at + 4];

		at += 5;
		if (len > size - at)
			len = size - at;
		if (len >= 5 && !changes_nothing(data[at + 4]))
			changed = true;
		serve(s, data + at, len, rcut, wroom, wcut);
		at += len;
	}
	p9_reset(s);
	check(s->nr_fids == 0 && s->msize == 0);
	check(fuzz_count_fds() == fds);
	check_outside();
	if (s == &rw && changed) {
		reset_tree();
		tree0 = share_fingerprint();
	} else {
		check(share_fingerprint() == tree0);
	}
	return 0;
}
