/* What the process may do once it is set up (docs/security.md): no capabilities, no_new_privs,
 * Landlock on the files named on the command line, and one seccomp allowlist per kind of thread.
 *
 * Order: sandbox_prepare() while anything may still be opened and allocated, sandbox_lock() once
 * every file, device and socket is open and before the first thread starts (capabilities,
 * no_new_privs and Landlock are per thread, and a thread inherits them from its creator), then
 * each thread calls sandbox_enter() with its role before it touches anything a guest controls,
 * the main thread last, once it has started the others. Without sandbox_prepare() (--sandbox off)
 * sandbox_enter() does nothing. */
#ifndef VMM_SANDBOX_H
#define VMM_SANDBOX_H

#include <stdbool.h>

enum sandbox_role {
	SANDBOX_MAIN,  /* signals, --timeout, stopping and tearing down */
	SANDBOX_VCPU,  /* KVM_RUN and the exits it returns */
	SANDBOX_IO,    /* the shared I/O loop: doorbells, entropy, console, UART output */
	SANDBOX_DISK,  /* a virtio-blk disk's or the SCSI controller's loop: io_uring */
	SANDBOX_NET,   /* a virtio-net device's loop: its tap */
	SANDBOX_INPUT, /* the terminal's input thread */
	SANDBOX_API,   /* the control socket's server */
	SANDBOX_FS,    /* a shared directory's loop: its 9P server's file system calls */
	SANDBOX_ROLES
};

/* A file vmm uses after setup, and how. */
enum sandbox_access {
	SANDBOX_READ,
	SANDBOX_READ_WRITE,
	SANDBOX_REMOVE, /* a socket vmm made, removed at exit: files in its directory may go */
	SANDBOX_TREE,   /* a shared directory: anything beneath it */
	SANDBOX_TREE_READ, /* a read-only shared directory: reading anything beneath it */
};
struct sandbox_path {
	const char *path;
	enum sandbox_access access;
};

/* Builds each role's filter and the table of system call names the SIGSYS handler prints, and
 * installs that handler. restore, if not NULL, is called on the way out of a blocked call (it puts
 * the terminal back; it may use ioctl(TCSETSF) and nothing else). 0 or -errno. */
int sandbox_prepare(void (*restore)(void));
/* Drops every capability, sets no_new_privs and, where the kernel has Landlock, limits the
 * filesystem to paths[], each as its access says. 0 or -errno; a kernel without Landlock is not
 * an error (logged at info). With a shared directory among paths[], the capabilities a file
 * server needs to act for the guest's users (CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH,
 * CAP_FOWNER, CAP_FSETID), where vmm has them, are kept for the SANDBOX_FS threads alone: every
 * other thread drops them as it enters its sandbox. */
int sandbox_lock(const struct sandbox_path *paths, unsigned n);
/* The calling thread takes role's filter; name says which thread it is in the message a blocked
 * call prints. A thread that cannot enter its sandbox ends the process with exit 1 and a message:
 * it must never go on without one. */
void sandbox_enter(enum sandbox_role role, const char *name);

#endif
