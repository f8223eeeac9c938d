/* The sandbox (docs/security.md has the threat model and each list with its reasons).
 *
 * Each role's allowlist below is what that kind of thread calls once the guest runs, found by
 * tracing every guest test (strace -f) and reading the code paths that tracing cannot reach
 * (errors, the stop). Anything else raises SIGSYS, whose handler names the thread and the call and
 * ends vmm with exit 1. The filters are compiled once, in sandbox_prepare(), and each thread loads
 * its own with one seccomp(2) call, which cannot half-succeed. */
#include "sandbox.h"
#include "arch.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/capability.h>
#include <linux/kvm.h>
#include <linux/landlock.h>
#include <linux/filter.h>
#include <linux/if_tun.h>
#include <linux/seccomp.h>
#include <linux/vhost.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <termios.h>
#include <ucontext.h>
#include <time.h>
#include <unistd.h>

#include <cap-ng.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* How a rule looks at the call's arguments. */
enum check {
	ANY,     /* no argument is looked at */
	NO_EXEC, /* mmap, mprotect: never PROT_EXEC, so no new code can be made */
	KICK,    /* tgkill: only SIGUSR1 (the vCPU kick), only to threads of this process */
	IOCTLS,  /* ioctl: only the requests listed (a 0-terminated list) */
};

struct rule {
	int nr;
	enum check check;
	const unsigned long *ioctls;
};

#define ALLOW(call)            { SCMP_SYS(call), ANY, NULL }
#define ALLOW_IF(call, check)  { SCMP_SYS(call), check, NULL }
#define ALLOW_IOCTLS(list)     { SCMP_SYS(ioctl), IOCTLS, list }

/* Where a call has an older name and a newer one (epoll_wait and epoll_pwait, poll and ppoll,
 * unlink and unlinkat), the lists allow both: arm64 has only the newer, which its C library
 * calls for either. */

/* Every thread: locks, memory, time, log lines, thread and process end. */
static const unsigned long tty_restore_ioctls[] = { TCSETSF, TCGETS, 0 }; /* tcsetattr checks */
static const struct rule common_rules[] = {
	ALLOW(futex),              /* mutexes, condition variables, pthread_join */
	ALLOW(write),              /* log lines on stderr; eventfds (irqfds, loop wakeups) */
	ALLOW_IF(mmap, NO_EXEC),   /* malloc: a thread's arena, large blocks */
	ALLOW_IF(mprotect, NO_EXEC),
	ALLOW(munmap),
	ALLOW(mremap), /* realloc of a large block */
	ALLOW(madvise), /* glibc gives back a finished thread's stack; free() trims */
	ALLOW(brk),
	ALLOW(clock_gettime), /* where the vDSO falls back to the kernel (some clock sources) */
	ALLOW(clock_nanosleep),
	ALLOW(gettimeofday),
	ALLOW(rt_sigprocmask), /* glibc, around thread exit */
	ALLOW(rt_sigreturn),   /* the vCPU kick's handler returns */
	ALLOW(restart_syscall),
	ALLOW(getpid), /* pthread_kill: tgkill needs the process id */
	ALLOW(gettid),
	ALLOW(sched_yield),
	ALLOW(exit),       /* a thread ends */
	ALLOW(exit_group), /* the process ends, also from a blocked call's handler */
	ALLOW_IOCTLS(tty_restore_ioctls), /* that handler puts the terminal back as it was */
};

/* KVM requests a vCPU makes while it runs: the run itself, the architecture's (the register
 * dump of --timeout and of a failure, what --timeout and vm.pause tell the guest: arch.h), the
 * UART's interrupt line, and what a driver's register writes set up (doorbells, interrupt
 * eventfds, MSI routes, a tap's offloads at DRIVER_OK). */
static const unsigned long vcpu_ioctls[] = {
	KVM_RUN, ARCH_VCPU_IOCTLS, KVM_IRQ_LINE,
	KVM_IOEVENTFD, KVM_IRQFD, KVM_SET_GSI_ROUTING, TUNSETOFFLOAD,
	TUNSETQUEUE, /* a virtio-net reset detaches the tap's extra queues */
	/* vhost=on: DRIVER_OK hands the rings to the kernel (the tap's header size follows the
	 * guest's), a reset or a virtio-mmio queue stop takes them back */
	TUNSETVNETHDRSZ, VHOST_SET_FEATURES, VHOST_SET_VRING_NUM, VHOST_SET_VRING_BASE,
	VHOST_SET_VRING_ADDR, VHOST_SET_VRING_CALL, VHOST_SET_VRING_ERR, VHOST_SET_VRING_KICK,
	VHOST_NET_SET_BACKEND, VHOST_GET_VRING_BASE,
	VHOST_VSOCK_SET_RUNNING, /* --vsock: the same, and the sockets' traffic on and off */
	0,
};
static const struct rule vcpu_rules[] = {
	ALLOW_IOCTLS(vcpu_ioctls),
	ALLOW_IF(tgkill, KICK), /* a poweroff stops the other vCPUs */
	ALLOW(epoll_ctl),       /* a queue or port the driver enables gets watched */
	ALLOW(read),            /* eventfds: a doorbell drained when its queue is set up */
	ALLOW(sendto), /* the UART's output queue on a socket (send, MSG_DONTWAIT): vmm's stdout
			* under systemd's journal; and a console port's emergency write */
};

/* The shared I/O loop: doorbells, the entropy device, the console's ttys, files and sockets, the
 * UART's output queue (whose room raises the UART's interrupt line). The socket device's rings
 * are the kernel's (vhost-vsock): a ring error it reports stops them, and a queue the driver
 * enables after DRIVER_OK (or again, after a virtio-mmio queue stop) is handed over at its first
 * kick. */
static const unsigned long io_ioctls[] = {
	KVM_IRQ_LINE, FIONREAD,
	VHOST_SET_VRING_NUM, VHOST_SET_VRING_BASE, VHOST_SET_VRING_ADDR, VHOST_SET_VRING_CALL,
	VHOST_SET_VRING_ERR, VHOST_SET_VRING_KICK, VHOST_GET_VRING_BASE, VHOST_VSOCK_SET_RUNNING,
	0,
};
static const struct rule io_rules[] = {
	ALLOW(epoll_wait), ALLOW(epoll_pwait),
	ALLOW(epoll_ctl), /* watches follow what the guest wants (port input, output room) */
	ALLOW(read),      /* eventfds, console input */
	ALLOW(readv),     /* console input, --rng source=FILE: straight into the guest's buffers */
	ALLOW(getrandom), /* the entropy device's default source */
	ALLOW(sendto),    /* console output to a socket client (send, MSG_DONTWAIT) */
	ALLOW(accept4),   /* a client connects to a console socket= port */
	ALLOW(close),     /* ... and leaves, or a second one is turned away */
	ALLOW_IOCTLS(io_ioctls), /* FIONREAD: how much input a port has waiting */
};

/* A disk's loop (each virtio-blk disk's, the SCSI controller's): requests go to its io_uring,
 * flushes and write-through included, so nothing else touches the image. */
static const struct rule disk_rules[] = {
	ALLOW(epoll_wait), ALLOW(epoll_pwait), ALLOW(epoll_ctl),
	ALLOW(read), /* eventfds: doorbells, the ring's completions */
	ALLOW(io_uring_enter),
};

/* A virtio-net device's loop: packets to and from its tap, the transmit timer, what the control
 * queue changes (offloads, the number of queue pairs), and the tap's link changes, read from an
 * rtnetlink socket opened before (a lost one asked for again with the common write). With
 * vhost=on: a ring error the kernel reports stops the rings, and a queue the driver enables
 * after DRIVER_OK (or again, after a virtio-mmio queue stop) is handed to the kernel at its
 * first kick. */
static const unsigned long net_ioctls[] = {
	TUNSETOFFLOAD, TUNSETQUEUE,
	VHOST_SET_VRING_NUM, VHOST_SET_VRING_BASE, VHOST_SET_VRING_ADDR, VHOST_SET_VRING_CALL,
	VHOST_SET_VRING_ERR, VHOST_SET_VRING_KICK, VHOST_NET_SET_BACKEND, VHOST_GET_VRING_BASE,
	0,
};
static const struct rule net_rules[] = {
	ALLOW(epoll_wait), ALLOW(epoll_pwait), ALLOW(epoll_ctl),
	ALLOW(read), ALLOW(readv), ALLOW(writev), /* eventfds, link changes; packets */
	ALLOW(timerfd_settime),                   /* transmit interrupt coalescing */
	ALLOW_IOCTLS(net_ioctls),
};

/* The terminal's input thread: keys to the UART or the console, Ctrl-A x to stop the VM. */
static const unsigned long input_ioctls[] = { KVM_IRQ_LINE, 0 };
static const struct rule input_rules[] = {
	ALLOW(poll), ALLOW(ppoll), ALLOW(read),
	ALLOW(epoll_ctl),           /* console input waits for the guest's buffers */
	ALLOW_IOCTLS(input_ioctls), /* a key raises the UART's interrupt line */
	ALLOW_IF(tgkill, KICK),     /* Ctrl-A x stops the vCPUs */
};

/* The control socket's thread (libmicrohttpd in external-epoll mode): clients come and go; a
 * balloon target or vm.shutdown reaches the VM through eventfds (write) and the vCPU kick;
 * vm.pause saves the guest's clock and vm.resume sets it back; vm.power-button raises a line. */
static const unsigned long api_ioctls[] = { ARCH_CLOCK_IOCTLS, KVM_IRQ_LINE, 0 };
static const struct rule api_rules[] = {
	ALLOW(epoll_wait), ALLOW(epoll_pwait), ALLOW(epoll_ctl), /* its loop; the server adds and drops clients */
	ALLOW(accept4),                     /* a client connects */
	ALLOW(recvfrom), ALLOW(sendto), ALLOW(sendmsg), /* requests in, replies out */
	ALLOW(shutdown), ALLOW(close),      /* a client is done; the server stops */
	ALLOW(read),                        /* the thread's stop eventfd */
	ALLOW_IF(tgkill, KICK),             /* vm.shutdown and vm.pause stop the vCPUs */
	ALLOW_IOCTLS(api_ioctls),
};

/* A shared directory's loop: its 9P server resolves, opens, reads, writes, makes and removes
 * files beneath the share (descriptors only, never a path from the root: backend/p9.h). */
static const struct rule fs_rules[] = {
	ALLOW(epoll_wait), ALLOW(epoll_pwait), ALLOW(epoll_ctl),
	ALLOW(read),   /* eventfds: doorbells */
	ALLOW(openat2), /* every name the guest sends, resolved beneath its directory */
	ALLOW(openat),  /* an O_PATH descriptor reopened through /proc/self/fd; a walk's ".." */
	ALLOW(close), ALLOW(fcntl), /* a fid cloned (F_DUPFD_CLOEXEC) or clunked */
	ALLOW(newfstatat), ALLOW(fstatfs), ALLOW(getdents64), ALLOW(lseek),
	ALLOW(pread64), ALLOW(preadv), ALLOW(pwrite64), ALLOW(pwritev),
	ALLOW(fsync), ALLOW(ftruncate),
	ALLOW(fchownat), ALLOW(fchmod), ALLOW(fchmodat), ALLOW(utimensat),
	ALLOW(mkdirat), ALLOW(mknodat), ALLOW(symlinkat), ALLOW(readlinkat), ALLOW(linkat),
	ALLOW(unlinkat), ALLOW(renameat), ALLOW(renameat2),
	ALLOW(getxattr), ALLOW(listxattr), ALLOW(setxattr), ALLOW(removexattr),
};

/* The main thread: waits for a signal, the stop or --timeout, then joins the threads and tears
 * down: doorbells and interrupts unbound, rings and guest memory unmapped, descriptors closed,
 * the output queues flushed, the terminal put back. */
static const unsigned long main_ioctls[] = {
	TIOCGWINSZ, /* SIGWINCH: the console learns the terminal's new size */
	KVM_IOEVENTFD, KVM_IRQFD, KVM_SET_GSI_ROUTING,
	ARCH_CLOCK_IOCTLS, /* --on-panic pause: the guest's clock is saved as for vm.pause */
	/* a restart: the devices' reset (a driver's) */
	TUNSETQUEUE, TUNSETOFFLOAD,
	/* ... and vhost=on's rings taken back from the kernel (also at exit) */
	VHOST_NET_SET_BACKEND, VHOST_GET_VRING_BASE, VHOST_SET_VRING_KICK, VHOST_VSOCK_SET_RUNNING,
	/* ... and the architecture's: interrupt controllers as created, each vCPU's initial state */
	ARCH_RESTART_IOCTLS,
	0,
};
static const struct rule main_rules[] = {
	ALLOW(poll), ALLOW(ppoll), ALLOW(read),
	ALLOW_IF(tgkill, KICK),
	ALLOW_IOCTLS(main_ioctls),
	ALLOW(epoll_ctl), ALLOW(close),
	ALLOW(io_uring_enter), /* a disk's requests still in flight are waited for */
	ALLOW(sendto),         /* the console's output queue, flushed at exit */
	ALLOW(unlink), ALLOW(unlinkat), /* a console socket= port's socket goes with vmm */
	ALLOW(timerfd_settime), /* a restart resets the devices: their timers stop */
};

static const struct role_rules {
	const char *name;
	const struct rule *rules;
	unsigned n;
} roles[SANDBOX_ROLES] = {
	[SANDBOX_MAIN] = { "main", main_rules, ARRAY_SIZE(main_rules) },
	[SANDBOX_VCPU] = { "vcpu", vcpu_rules, ARRAY_SIZE(vcpu_rules) },
	[SANDBOX_IO] = { "io", io_rules, ARRAY_SIZE(io_rules) },
	[SANDBOX_DISK] = { "disk", disk_rules, ARRAY_SIZE(disk_rules) },
	[SANDBOX_NET] = { "net", net_rules, ARRAY_SIZE(net_rules) },
	[SANDBOX_INPUT] = { "input", input_rules, ARRAY_SIZE(input_rules) },
	[SANDBOX_API] = { "api", api_rules, ARRAY_SIZE(api_rules) },
	[SANDBOX_FS] = { "fs", fs_rules, ARRAY_SIZE(fs_rules) },
};

/* What sandbox_prepare() built; read-only afterwards, by every thread and the SIGSYS handler. */
#define SYSCALL_NAMES 512
static struct {
	bool on;
	bool fs_caps; /* the process kept the file server's capabilities (sandbox_lock) */
	struct sock_fprog prog[SANDBOX_ROLES];
	char *syscall_name[SYSCALL_NAMES];
	void (*restore)(void);
	int selftest; /* VMM_SANDBOX_SELFTEST: the role that makes a blocked call on entering, or -1 */
} sb = { .selftest = -1 };

static __thread char thread_name[16];

/* An argument comparison, every field given (libseccomp's SCMP_An macros leave one implicit). */
static struct scmp_arg_cmp arg(unsigned n, enum scmp_compare op, scmp_datum_t a, scmp_datum_t b)
{
	return (struct scmp_arg_cmp){ .arg = n, .op = op, .datum_a = a, .datum_b = b };
}

static int add_rule(scmp_filter_ctx ctx, const struct rule *r)
{
	switch (r->check) {
	case ANY:
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 0);
	case NO_EXEC: /* (prot & PROT_EXEC) == 0 */
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 1,
					arg(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	case KICK:
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 2,
					arg(0, SCMP_CMP_EQ, (scmp_datum_t)getpid(), 0),
					arg(2, SCMP_CMP_EQ, SIGUSR1, 0));
	case IOCTLS:
		for (const unsigned long *req = r->ioctls; *req; req++) {
			int ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 1,
						   arg(1, SCMP_CMP_EQ, *req, 0));
			if (ret)
				return ret;
		}
		return 0;
	}
	return -EINVAL;
}

/* The role's filter as a BPF program: libseccomp writes it to a file descriptor, read back here
 * so that entering it later is one system call. */
static int build(enum sandbox_role role, struct sock_fprog *prog)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
	int ret = ctx ? 0 : -ENOMEM, fd = -1;
	off_t size;

	if (!ret)
		ret = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_TRAP);
	for (unsigned i = 0; !ret && i < ARRAY_SIZE(common_rules); i++)
		ret = add_rule(ctx, &common_rules[i]);
	for (unsigned i = 0; !ret && i < roles[role].n; i++)
		ret = add_rule(ctx, &roles[role].rules[i]);
	if (!ret && (fd = memfd_create("vmm-seccomp", MFD_CLOEXEC)) < 0)
		ret = -errno;
	if (!ret)
		ret = seccomp_export_bpf(ctx, fd);
	if (!ret && (size = lseek(fd, 0, SEEK_END)) <= 0)
		ret = -EIO;
	if (!ret && (size % sizeof(struct sock_filter) || size / sizeof(struct sock_filter) > 4096))
		ret = -E2BIG;
	if (!ret) {
		prog->len = (unsigned short)(size / sizeof(struct sock_filter));
		prog->filter = malloc((size_t)size);
		if (!prog->filter)
			ret = -ENOMEM;
		else if (pread(fd, prog->filter, (size_t)size, 0) != size)
			ret = -EIO;
	}
	if (fd >= 0)
		close(fd);
	seccomp_release(ctx);
	return ret;
}

/* Async-signal-safe: a few strings and one number, one write. */
static size_t append(char *buf, size_t at, size_t cap, const char *s)
{
	while (*s && at < cap)
		buf[at++] = *s++;
	return at;
}

/* Ends the process: exit_group directly, past any wrapper that might make calls of its own (and
 * not marked noreturn, which would have ASan check the signal stack first, with sigaltstack). */
static void die(void)
{
	if (sb.restore)
		sb.restore();
	syscall(SYS_exit_group, 1);
}

/* n in hex, "0x..." at the end of buf; returns where it starts. */
static const char *hex(char *buf, size_t size, unsigned long long n)
{
	size_t i = size;

	buf[--i] = '\0';
	do
		buf[--i] = "0123456789abcdef"[n & 15];
	while ((n >>= 4) && i > 2);
	buf[--i] = 'x';
	buf[--i] = '0';
	return &buf[i];
}

/* Argument n (0-2) of the system call a SIGSYS stopped, from the signal's saved registers. */
#if defined(__x86_64__)
#define SYSCALL_ARG(uc, n)                                                                        \
	((unsigned long long)(uc)->uc_mcontext.gregs[(n) == 0 ? REG_RDI : (n) == 1 ? REG_RSI : REG_RDX])
#elif defined(__aarch64__)
#define SYSCALL_ARG(uc, n) ((unsigned long long)(uc)->uc_mcontext.regs[n])
#endif

static void sigsys_handler(int sig, siginfo_t *si, void *ucontext)
{
	char buf[320], num[24];
	size_t at = 0, i = sizeof(num);
	unsigned nr = (unsigned)si->si_syscall;
	const char *name = nr < SYSCALL_NAMES ? sb.syscall_name[nr] : NULL;
	const ucontext_t *uc = ucontext;

	(void)sig;
	num[--i] = '\0';
	do
		num[--i] = (char)('0' + nr % 10);
	while ((nr /= 10) && i > 0);
	at = append(buf, at, sizeof(buf), "vmm: sandbox: thread ");
	at = append(buf, at, sizeof(buf), thread_name[0] ? thread_name : "?");
	at = append(buf, at, sizeof(buf), " made a system call its allowlist does not have: ");
	at = append(buf, at, sizeof(buf), name ? name : "unknown");
	at = append(buf, at, sizeof(buf), " (");
	at = append(buf, at, sizeof(buf), &num[i]);
	/* What it was called with: for ioctl, the request is what the list would need. */
	at = append(buf, at, sizeof(buf), ", arguments ");
	for (unsigned a = 0; a < 3; a++) {
		at = append(buf, at, sizeof(buf), a ? " " : "");
		at = append(buf, at, sizeof(buf), hex(num, sizeof(num), SYSCALL_ARG(uc, a)));
	}
	at = append(buf, at, sizeof(buf), "); stopping\r\n");
	if (write(STDERR_FILENO, buf, at) < 0) {
		/* nothing more to say */
	}
	die();
}

int sandbox_prepare(void (*restore)(void))
{
	struct sigaction sa = { .sa_sigaction = sigsys_handler, .sa_flags = SA_SIGINFO };
	const char *self = getenv("VMM_SANDBOX_SELFTEST");
	int ret;

	for (unsigned r = 0; r < SANDBOX_ROLES; r++) {
		if ((ret = build((enum sandbox_role)r, &sb.prog[r]))) {
			log_error("sandbox: cannot build the %s filter: %s", roles[r].name,
				  strerror(-ret));
			return ret;
		}
		if (self && !strcmp(self, roles[r].name))
			sb.selftest = (int)r;
	}
	for (unsigned nr = 0; nr < SYSCALL_NAMES; nr++)
		sb.syscall_name[nr] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, (int)nr);
	/* glibc reads the time zone on the first gmtime_r (the RTC); read it now, not in a vCPU. */
	tzset();
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0)
		return -errno;
	sb.restore = restore;
	sb.on = true;
	return 0;
}

/* Landlock, as far as this kernel has it: every filesystem right is handled (so denied) except
 * those paths[] get. */
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif

static int landlock(const struct sandbox_path *paths, unsigned n)
{
	struct landlock_ruleset_attr attr = { .handled_access_fs = (1ULL << 13) - 1 };
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	int fd, ret = 0;

	if (abi < 1) {
		log_info("sandbox: this kernel has no Landlock (%s): files are not limited by path",
			 strerror(errno));
		return 0;
	}
	if (abi >= 2)
		attr.handled_access_fs |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		attr.handled_access_fs |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		attr.handled_access_fs |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	/* The ruleset's size is the first version's: newer fields stay unset. */
	fd = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr.handled_access_fs), 0);
	if (fd < 0)
		return -errno;
	for (unsigned i = 0; i < n && !ret; i++) {
		struct landlock_path_beneath_attr rule = {
			.allowed_access = LANDLOCK_ACCESS_FS_READ_FILE,
		};
		char *dir = NULL;
		const char *path = paths[i].path;

		if (paths[i].access == SANDBOX_READ_WRITE)
			rule.allowed_access |= LANDLOCK_ACCESS_FS_WRITE_FILE |
					       (attr.handled_access_fs & LANDLOCK_ACCESS_FS_TRUNCATE);
		if (paths[i].access == SANDBOX_TREE)
			rule.allowed_access = attr.handled_access_fs;
		if (paths[i].access == SANDBOX_TREE_READ)
			rule.allowed_access = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
		if (paths[i].access == SANDBOX_REMOVE) {
			/* Removing is a right of the directory: the socket's own. */
			if (!(dir = strdup(path)))
				return -ENOMEM;
			path = dirname(dir);
			rule.allowed_access = LANDLOCK_ACCESS_FS_REMOVE_FILE;
		}
		rule.parent_fd = open(path, O_PATH | O_CLOEXEC);
		if (rule.parent_fd < 0) {
			ret = -errno;
			log_error("sandbox: %s: %s", path, strerror(errno));
		} else if (syscall(SYS_landlock_add_rule, fd, LANDLOCK_RULE_PATH_BENEATH, &rule, 0)) {
			ret = -errno;
			log_error("sandbox: Landlock rule for %s: %s", path, strerror(errno));
		}
		if (rule.parent_fd >= 0)
			close(rule.parent_fd);
		free(dir);
	}
	if (!ret && syscall(SYS_landlock_restrict_self, fd, 0) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* What a file server needs to act for the guest's users (sandbox.h). */
static const int fs_caps[] = { CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER,
			       CAP_FSETID };

int sandbox_lock(const struct sandbox_path *paths, unsigned n)
{
	bool share = false, keep[ARRAY_SIZE(fs_caps)];
	int ret;

	for (unsigned i = 0; i < n; i++)
		share |= paths[i].access == SANDBOX_TREE || paths[i].access == SANDBOX_TREE_READ;
	/* Capabilities: none left in any set, but the file server's for its threads. Only a
	 * process that has CAP_SETPCAP (root) can empty the bounding set; an ordinary user's
	 * process has nothing else to drop. */
	capng_get_caps_process();
	bool bounding = capng_have_capability(CAPNG_EFFECTIVE, CAP_SETPCAP);
	for (unsigned i = 0; i < ARRAY_SIZE(fs_caps); i++)
		keep[i] = share && capng_have_capability(CAPNG_EFFECTIVE, (unsigned)fs_caps[i]);
	capng_clear(CAPNG_SELECT_BOTH);
	for (unsigned i = 0; i < ARRAY_SIZE(fs_caps); i++) {
		if (keep[i]) {
			capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED,
				     (unsigned)fs_caps[i]);
			sb.fs_caps = true;
		}
	}
	if (capng_apply(bounding ? CAPNG_SELECT_BOTH : CAPNG_SELECT_CAPS) < 0) {
		log_error("sandbox: cannot drop capabilities");
		return -EPERM;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		ret = -errno;
		log_error("sandbox: no_new_privs: %s", strerror(errno));
		return ret;
	}
	if ((ret = landlock(paths, n))) {
		log_error("sandbox: Landlock: %s", strerror(-ret));
		return ret;
	}
	return 0;
}

void sandbox_enter(enum sandbox_role role, const char *name)
{
	sigset_t sys;

	if (!sb.on)
		return;
	strncpy(thread_name, name, sizeof(thread_name) - 1);
	/* SIGSYS must reach the handler: the kernel kills a thread that has it blocked, silently. */
	sigemptyset(&sys);
	sigaddset(&sys, SIGSYS);
	pthread_sigmask(SIG_UNBLOCK, &sys, NULL);
	/* Capabilities are a thread's own: only a file server's thread keeps them. */
	if (sb.fs_caps && role != SANDBOX_FS) {
		struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
		struct __user_cap_data_struct none[2] = { { 0, 0, 0 }, { 0, 0, 0 } };

		if (syscall(SYS_capset, &hdr, none) < 0) {
			log_error("sandbox: thread %s cannot drop its capabilities: %s; stopping",
				  name, strerror(errno));
			die();
		}
	}
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &sb.prog[role]) < 0) {
		log_error("sandbox: thread %s cannot enter its sandbox: %s; stopping", name,
			  strerror(errno));
		die();
	}
	if (sb.selftest == (int)role) /* a test's own blocked call: what an attacker would try */
		syscall(SYS_openat, AT_FDCWD, "/etc/shadow", O_RDONLY);
}
