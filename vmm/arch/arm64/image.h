/* The arm64 Linux Image (Documentation/arch/arm64/booting.rst): its 64-byte header, checked, and
 * where in guest RAM the kernel, the device tree and the initrd go. Pure functions on buffers and
 * numbers: reading the files is the caller's. docs/boot.md has the rules. */
#ifndef VMM_ARCH_ARM64_IMAGE_H
#define VMM_ARCH_ARM64_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARM64_IMAGE_HEADER_SIZE 64
#define ARM64_IMAGE_MAGIC       0x644d5241U /* "ARM\x64", little-endian, at offset 56 */
#define ARM64_KERNEL_ALIGN      0x200000ULL /* the Image goes text_offset above a 2 MiB boundary */
#define ARM64_DTB_MAX           0x200000ULL /* the device tree: at most 2 MiB, 8-byte aligned */
/* Kernels before v3.17 have image_size 0: their text_offset is 0x80000, and how much memory
 * they use past the file is not said. vmm keeps ARM64_IMAGE_OLD_SLACK free after the file. */
#define ARM64_IMAGE_OLD_TEXT_OFFSET 0x80000ULL
#define ARM64_IMAGE_OLD_SLACK       0x2000000ULL /* 32 MiB */

struct arm64_image {
	uint64_t text_offset; /* from the 2 MiB-aligned base to the first byte of the Image */
	uint64_t image_size;  /* bytes from there that the kernel may use */
	bool old;             /* image_size was 0: text_offset and image_size are assumed */
	unsigned page_size;   /* the kernel's page size in bytes; 0: the header does not say */
	/* Flags bit 3: any 2 MiB-aligned base will do as long as the image stays below 2^48;
	 * clear, the base must be as low in RAM as it can be. */
	bool anywhere;
};

/* Checks the header at the start of a kernel file of file_size bytes, of which buf holds the first
 * len. 0, or -ENOEXEC (too short, no magic, a big-endian kernel) or -EINVAL (a header whose
 * text_offset or image_size cannot be right) after one message that begins with `what`
 * ("--kernel PATH"). */
int arm64_image_parse(const char *what, const void *buf, size_t len, uint64_t file_size,
		      struct arm64_image *out);

struct arm64_place {
	uint64_t ram_base, ram_size;           /* one RAM region */
	uint64_t initrd_size;                  /* 0: no initrd */
	const char *kernel_what, *initrd_what; /* how messages name them */
};

/* Where everything goes, from the bottom of RAM: the kernel, the device tree in a 2 MiB block of
 * its own, the initrd. */
struct arm64_layout {
	uint64_t kernel;     /* load address and entry point: 2 MiB-aligned base + text_offset */
	uint64_t kernel_end; /* kernel + image_size: memory the kernel owns from the start */
	uint64_t dtb;        /* 2 MiB aligned; [dtb, dtb + ARM64_DTB_MAX) is the device tree's */
	uint64_t initrd;     /* page aligned; 0 without an initrd */
	uint64_t end;        /* first byte above all of it */
};

/* Places img in RAM. 0, or -E2BIG after one message when RAM is too small (or, for a kernel that
 * set flags bit 3, lies above 2^48), -EINVAL when the RAM region is empty or not within 52-bit
 * physical addresses. */
int arm64_image_place(const struct arm64_image *img, const struct arm64_place *p,
		      struct arm64_layout *out);

#endif
