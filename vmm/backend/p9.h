/* A 9P2000.L file server over one host directory: the host side of virtio-9p (virtio/9p.c), with
 * no virtio in it, so that the unit tests and the fuzzer drive it with plain buffers.
 *
 * The guest is an attacker, and every name it sends is resolved beneath the directory:
 *  - each fid holds a file descriptor (O_PATH until the guest opens it), never a path string, and
 *    a walk takes one component at a time with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 *    RESOLVE_NO_MAGICLINKS), so no `..`, symlink or /proc link leads out, and a directory swapped
 *    for a symlink between two requests is refused, not followed;
 *  - `..` from the share's root stays at the root;
 *  - where vmm may (as root), the share is served from a detached clone of its mount, made with
 *    open_tree(2) and set nodev, nosuid (and read-only for readonly=on) with mount_setattr(2):
 *    the host's devices cannot be opened through it, rename and link cannot leave it (EXDEV), and
 *    `..` cannot climb out of it even if the host moves a directory away;
 *  - only regular files and directories are ever opened, checked on the descriptor the walk
 *    returned (no race); FIFOs, sockets and device nodes the guest makes are what 9P2000.L
 *    expects it can see, but a character or block device is stored as an empty regular file
 *    carrying its type and number in an extended attribute (so it is no device on the host);
 *  - setuid and setgid bits the guest asks for on files are dropped;
 *  - in a mount of the kernel's own file systems (proc, sysfs, debugfs, cgroup, ...) beneath the
 *    share, directories can be walked, looked at and listed (the guest mounts its own there),
 *    and nothing else: no file opened, read, written or changed, no link read; their files are
 *    the host's knobs, and /proc/PID/mem is vmm itself;
 *  - the number of fids, the size of each message (msize), of each extended attribute and of
 *    each directory read are bounded.
 * docs/security.md has the threat model, docs/devices.md what each request does. */
#ifndef VMM_BACKEND_P9_H
#define VMM_BACKEND_P9_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#define P9_MAX_MSIZE  (1u << 20) /* the largest msize the server agrees to */
#define P9_MIN_MSIZE  4096       /* a smaller one could not carry a directory entry's name */
#define P9_MAX_FIDS   32768      /* fids a guest may hold at once: each is a file descriptor */
#define P9_MAX_XATTR  65536      /* an extended attribute's value, as Linux's XATTR_SIZE_MAX */
#define P9_FID_BUCKETS 1024

struct p9_fid;

struct p9_server {
	int root;      /* O_PATH: the share's root, in the detached mount when there is one */
	int proc_fd;   /* /proc/self/fd: reopens an O_PATH descriptor as the file it names */
	dev_t root_dev;
	ino_t root_ino;
	bool readonly; /* every change fails with EROFS */
	bool owner;    /* vmm may give files to the guest's users (CAP_CHOWN): it runs as root */
	bool detached; /* served from a detached nodev, nosuid clone of the mount */
	uint32_t msize;
	uint8_t *in, *out; /* the request's fields and the reply, msize bytes each */
	struct p9_fid *fids[P9_FID_BUCKETS];
	unsigned nr_fids, max_fids; /* max: P9_MAX_FIDS, or a quarter of the descriptor limit */
	dev_t devs[254]; /* file systems met beneath the root: a qid's path is its inode with the
			    file system's index in the top byte, so two of them cannot collide */
	unsigned nr_devs;
	uint64_t served[128]; /* requests by type, for p9_log_state */
	char name[16]; /* for messages: the device's name */
	bool warned_fids;
};

/* Opens the share: dir must be a directory. 0 or -errno (logged, naming what). */
int p9_open(struct p9_server *s, const char *name, const char *dir, bool readonly,
	    const char *what);
void p9_close(struct p9_server *s);
/* Serves one request: the message is in req[0..req_n) (the driver's readable buffers), the reply
 * goes to resp[0..resp_n) (its writable ones). Returns the reply's length, or 0 when the
 * writable buffers cannot hold even an error reply. */
size_t p9_serve(struct p9_server *s, const struct iovec *req, unsigned req_n,
		const struct iovec *resp, unsigned resp_n);
/* Logs (info level) the session's msize, fids and the requests served by type. */
void p9_log_state(const struct p9_server *s);
/* The device was reset: every fid is clunked and the session ends. */
void p9_reset(struct p9_server *s);

#endif
