/* The arm64 Image header and where a kernel, its device tree and its initrd go in guest RAM, after
 * Documentation/arch/arm64/booting.rst. Everything is laid out upwards from the lowest 2 MiB
 * boundary in RAM: the kernel wants to be low (below its base, kernels before v4.6 cannot use
 * memory, and flags bit 3 clear asks for the lowest base), and packing the device tree and initrd
 * just above it keeps them within what older kernels reach (the DTB within 512 MiB of the kernel
 * before v4.2; the initrd in a 32 GiB window with the kernel, always). */
#include "arch/arm64/image.h"
#include "log.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

#define MiB               (1ULL << 20)
#define GiB               (1ULL << 30)
#define PA_LIMIT          (1ULL << 52) /* the largest physical address space arm64 has */
#define PA_LIMIT_ANYWHERE (1ULL << 48) /* flags bit 3: the whole image below this */
#define INITRD_WINDOW     (32 * GiB)   /* kernel and initrd in one 1 GiB-aligned window */
#define FLAG_BE           (1ULL << 0)
#define FLAG_PAGE_SIZE(f) (((f) >> 1) & 3)
#define FLAG_ANYWHERE     (1ULL << 3)

static uint64_t le64_at(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

static uint32_t le32_at(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

/* a + b, or UINT64_MAX when that wraps: a wrapped end would look like a small one. */
static uint64_t add(uint64_t a, uint64_t b)
{
	uint64_t s;

	return __builtin_add_overflow(a, b, &s) ? UINT64_MAX : s;
}

static uint64_t align_2m(uint64_t v)
{
	return add(v, ARM64_KERNEL_ALIGN - 1) & ~(ARM64_KERNEL_ALIGN - 1);
}

static unsigned long long mib_up(uint64_t bytes)
{
	return (unsigned long long)(add(bytes, MiB - 1) / MiB);
}

int arm64_image_parse(const char *what, const void *buf, size_t len, uint64_t file_size,
		      struct arm64_image *out)
{
	static const unsigned page_sizes[4] = { 0, 4096, 16384, 65536 };
	const uint8_t *h = buf;
	uint64_t flags;

	if (len < ARM64_IMAGE_HEADER_SIZE || file_size < ARM64_IMAGE_HEADER_SIZE) {
		log_error("%s: too small to be an arm64 Image (%llu bytes; its header alone is %u)",
			  what, (unsigned long long)(len < file_size ? len : file_size),
			  ARM64_IMAGE_HEADER_SIZE);
		return -ENOEXEC;
	}
	if (le32_at(h + 56) != ARM64_IMAGE_MAGIC) {
		log_error("%s: not an arm64 Image (no \"ARM\\x64\" magic at offset 56)", what);
		return -ENOEXEC;
	}
	memset(out, 0, sizeof(*out));
	out->text_offset = le64_at(h + 8);
	out->image_size = le64_at(h + 16);
	flags = le64_at(h + 24);
	/* Before v3.17 there were no flags and text_offset was in the kernel's byte order: a
	 * big-endian one of those shows as 0x80000 byte-swapped. */
	if ((flags & FLAG_BE) ||
	    (!out->image_size &&
	     out->text_offset == __builtin_bswap64(ARM64_IMAGE_OLD_TEXT_OFFSET))) {
		log_error("%s: a big-endian kernel; vmm boots little-endian kernels only", what);
		return -ENOEXEC;
	}
	if (!out->image_size) {
		/* booting.rst: image_size 0 means text_offset 0x80000 and an unknown size. */
		out->old = true;
		out->text_offset = ARM64_IMAGE_OLD_TEXT_OFFSET;
		out->image_size = add(file_size, ARM64_IMAGE_OLD_SLACK);
	} else if (out->image_size < file_size) {
		log_error("%s: the header's image_size (%llu bytes) is smaller than the file "
			  "(%llu bytes)",
			  what, (unsigned long long)out->image_size, (unsigned long long)file_size);
		return -EINVAL;
	}
	/* Linux's text_offset is 0 since v5.8 and was below 2 MiB before (0x80000, or random in
	 * 4 KiB steps): a larger one is a damaged header. */
	if (out->text_offset >= ARM64_KERNEL_ALIGN) {
		log_error("%s: the header's text_offset %#llx is not below 2 MiB", what,
			  (unsigned long long)out->text_offset);
		return -EINVAL;
	}
	out->page_size = page_sizes[FLAG_PAGE_SIZE(flags)];
	out->anywhere = flags & FLAG_ANYWHERE;
	return 0;
}

int arm64_image_place(const struct arm64_image *img, const struct arm64_place *p,
		      struct arm64_layout *out)
{
	uint64_t ram_end = add(p->ram_base, p->ram_size), base;

	if (!p->ram_size || ram_end > PA_LIMIT) {
		log_error("--memory: RAM at %#llx, %llu MiB, is not within 52-bit physical "
			  "addresses",
			  (unsigned long long)p->ram_base, mib_up(p->ram_size));
		return -EINVAL;
	}
	memset(out, 0, sizeof(*out));
	base = align_2m(p->ram_base);
	out->kernel = base + img->text_offset;
	out->kernel_end = add(out->kernel, img->image_size);
	if (out->kernel_end > ram_end) {
		log_error("%s: the kernel needs %llu MiB of RAM; raise --memory", p->kernel_what,
			  mib_up(out->kernel_end - p->ram_base));
		return -E2BIG;
	}
	if (img->anywhere && out->kernel_end > PA_LIMIT_ANYWHERE) {
		log_error("%s: the kernel must lie below 2^48 (its flags bit 3), but RAM starts at "
			  "%#llx",
			  p->kernel_what, (unsigned long long)p->ram_base);
		return -E2BIG;
	}
	/* A 2 MiB block of its own: 8-byte aligned, never across a 2 MiB boundary, and sharing no
	 * block that the kernel maps with other attributes. */
	out->dtb = align_2m(out->kernel_end);
	out->end = add(out->dtb, ARM64_DTB_MAX);
	if (out->end > ram_end) {
		log_error("%s: the kernel and its device tree need %llu MiB of RAM; raise --memory",
			  p->kernel_what, mib_up(out->end - p->ram_base));
		return -E2BIG;
	}
	if (!p->initrd_size)
		return 0;
	out->initrd = out->end;
	out->end = add(out->initrd, p->initrd_size);
	if (out->end > ram_end) {
		log_error("%s: %llu bytes do not fit in guest memory above the kernel and the "
			  "device tree (%llu MiB of RAM needed); raise --memory",
			  p->initrd_what, (unsigned long long)p->initrd_size,
			  mib_up(out->end - p->ram_base));
		return -E2BIG;
	}
	if (out->end - (out->kernel & ~(GiB - 1)) > INITRD_WINDOW) {
		log_error("%s: %llu bytes: the initrd and the kernel must fit in one 32 GiB window",
			  p->initrd_what, (unsigned long long)p->initrd_size);
		return -E2BIG;
	}
	return 0;
}
