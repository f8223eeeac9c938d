/* Loading the guest, as every architecture does it: boot_load (vmm/arch/<arch>/boot.c) writes the
 * kernel, initrd, command line and the machine's description into guest memory before the first
 * KVM_RUN; the rest (vmm/boot.c) is shared: reading the files, copying through guest memory's
 * door, and the copy a restart boots again from. */
#ifndef VMM_BOOT_H
#define VMM_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "memory.h"

/* The devices the ACPI tables describe, decided from the configuration before anything boots. */
struct boot_mmio_dev {
	uint64_t base, size;
	uint32_t gsi;
};

struct boot_args {
	const char *kernel; /* path */
	const char *initrd; /* path, or NULL */
	/* How messages name them: "--kernel PATH", or the config file line they came from. */
	const char *kernel_what, *initrd_what;
	const char *cmdline;
	unsigned cpus;
	const struct boot_mmio_dev *mmio; /* virtio-mmio devices, each a DSDT entry */
	unsigned nr_mmio;
};

struct boot_info {
	uint64_t entry;       /* where vCPU 0 starts (x86: rip, 64-bit mode, identity-mapped) */
	uint64_t arg;         /* what it is given (x86: rsi, the boot_params) */
	uint64_t stack;       /* x86: rsp */
	uint64_t written_end; /* boot_load wrote below this (tables, kernel)... */
	uint64_t initrd_gpa, initrd_size; /* ... and the initrd here */
};

/* What boot_load wrote into guest memory, kept so that a restart (--on-reboot restart) can boot
 * again from a cleared RAM without opening the files, which the sandbox has closed off. */
struct boot_image {
	uint8_t *low;    /* [RAM_BASE, + low_len): x86: the tables below 1 MiB and the kernel */
	uint64_t low_len;
	uint8_t *initrd; /* initrd_size bytes at initrd_gpa */
	uint64_t initrd_gpa, initrd_size;
};


/* Loads everything and fills *out (each architecture's boot.c). On bad input (missing file, not a kernel, initrd too large,
 * command line too long) logs one message naming the file and returns a negative errno: main
 * exits 2. */
int boot_load(struct guest_mem *m, const struct boot_args *a, struct boot_info *out);
/* Keeps a copy of what boot_load wrote (info says where). 0 or -ENOMEM. */
int boot_keep(const struct guest_mem *m, const struct boot_info *info, struct boot_image *img);
/* Clears guest RAM and writes the kept copy back: the memory of a machine just booted. */
void boot_reload(struct guest_mem *m, const struct boot_image *img);
void boot_image_free(struct boot_image *img);


/* A whole file read into memory the caller frees. */
struct boot_file {
	uint8_t *data;
	size_t size;
};
/* Opens a regular file no larger than max (a larger one could never fit the guest): the fd, or a
 * negative errno after one message that `what` begins ("--kernel PATH"). */
int boot_open(const char *what, const char *path, uint64_t max, size_t *size);
/* Reads exactly size bytes into dst, and closes fd. 0 or -errno, with a message. */
int boot_read(const char *what, int fd, void *dst, size_t size);
/* boot_open and boot_read into a buffer of its own (the kernel: its header decides where it
 * goes). */
int boot_read_file(const char *what, const char *path, uint64_t max, struct boot_file *img);
/* Copies into guest memory through the checked door; the caller has already decided the range.
 * 0, or -ERANGE when [gpa, gpa + len) is not RAM. */
int boot_put(struct guest_mem *m, uint64_t gpa, const void *src, uint64_t len);

#endif
