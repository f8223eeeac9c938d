/* The arm64 Image header (Documentation/arch/arm64/booting.rst): good headers read, bad ones
 * refused with a message that says what is wrong, and the kernel, device tree and initrd placed in
 * RAM without overlapping. Synthetic headers: no kernel file needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arch/arm64/image.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

#define RAM_BASE 0x40000000ULL /* where the virt machines have RAM */

struct header {
	uint8_t b[ARM64_IMAGE_HEADER_SIZE];
};

static struct header header(uint64_t text_offset, uint64_t image_size, uint64_t flags)
{
	struct header h = { { 0 } };
	uint64_t v;
	uint32_t magic = htole32(ARM64_IMAGE_MAGIC);

	memcpy(h.b, "\x00\x00\x00\x14", 4); /* code0: a branch, never looked at */
	v = htole64(text_offset);
	memcpy(h.b + 8, &v, 8);
	v = htole64(image_size);
	memcpy(h.b + 16, &v, 8);
	v = htole64(flags);
	memcpy(h.b + 24, &v, 8);
	memcpy(h.b + 56, &magic, 4);
	return h;
}

/* stderr while a call runs, so that a test can read the message it printed. */
struct capture {
	char path[40];
	int fd, saved;
	char text[1024];
};

static void capture_start(struct capture *c)
{
	strcpy(c->path, "/tmp/vmm-test-arm64-image-XXXXXX");
	c->fd = mkstemp(c->path);
	c->saved = dup(2);
	assert_true(c->fd >= 0 && c->saved >= 0);
	fflush(stderr);
	dup2(c->fd, 2);
}

static const char *capture_end(struct capture *c)
{
	ssize_t n;

	fflush(stderr);
	dup2(c->saved, 2);
	close(c->saved);
	n = pread(c->fd, c->text, sizeof(c->text) - 1, 0);
	c->text[n > 0 ? n : 0] = 0;
	close(c->fd);
	unlink(c->path);
	return c->text;
}

/* Parses h as a file of file_size bytes; returns the error and, in msg, what was printed. */
static int parse(const struct header *h, size_t len, uint64_t file_size, struct arm64_image *img,
		 struct capture *msg)
{
	int ret;

	capture_start(msg);
	ret = arm64_image_parse("--kernel K", h->b, len, file_size, img);
	capture_end(msg);
	return ret;
}

/* The message is one line, "vmm: --kernel K: " and then what it must say. */
static void expect_message(const struct capture *c, const char *what, const char *text)
{
	char want[256];

	snprintf(want, sizeof(want), "vmm: %s: ", what);
	if (strncmp(c->text, want, strlen(want)) || !strstr(c->text, text))
		fail_msg("message \"%s\" is not \"%s...%s\"", c->text, want, text);
	assert_string_equal(strchr(c->text, '\n'), "\n");
}

static void parses_a_good_header(void **state)
{
	struct header h = header(0, 30 * MiB, 1 << 1 | 1 << 3); /* 4K pages, anywhere */
	struct arm64_image img;
	struct capture c;

	assert_int_equal(parse(&h, sizeof(h.b), 20 * MiB, &img, &c), 0);
	assert_string_equal(c.text, "");
	assert_int_equal(img.text_offset, 0);
	assert_int_equal(img.image_size, 30 * MiB);
	assert_false(img.old);
	assert_int_equal(img.page_size, 4096);
	assert_true(img.anywhere);

	/* text_offset 0x80000 (kernels before v5.8), image_size equal to the file: fine too. */
	h = header(0x80000, 20 * MiB, 0);
	assert_int_equal(parse(&h, sizeof(h.b), 20 * MiB, &img, &c), 0);
	assert_int_equal(img.text_offset, 0x80000);
	assert_int_equal(img.image_size, 20 * MiB);
	assert_false(img.anywhere);
}

static void decodes_page_size(void **state)
{
	static const unsigned want[4] = { 0, 4096, 16384, 65536 };

	for (uint64_t field = 0; field < 4; field++) {
		/* Bits 1-2; bit 0 (endianness) and bit 3 left alone. */
		struct header h = header(0, 8 * MiB, field << 1 | 1 << 3);
		struct arm64_image img;
		struct capture c;

		assert_int_equal(parse(&h, sizeof(h.b), MiB, &img, &c), 0);
		assert_int_equal(img.page_size, want[field]);
		assert_true(img.anywhere);
	}
}

static void refuses_short_files(void **state)
{
	struct header h = header(0, 8 * MiB, 0);
	struct arm64_image img;
	struct capture c;

	assert_int_equal(parse(&h, 63, 63, &img, &c), -ENOEXEC);
	expect_message(&c, "--kernel K", "too small to be an arm64 Image (63 bytes");
	/* A whole header in the buffer, but the file is said to be shorter. */
	assert_int_equal(parse(&h, sizeof(h.b), 10, &img, &c), -ENOEXEC);
	expect_message(&c, "--kernel K", "too small to be an arm64 Image (10 bytes");
	assert_int_equal(parse(&h, 0, 0, &img, &c), -ENOEXEC);
}

static void refuses_bad_magic(void **state)
{
	struct header h = header(0, 8 * MiB, 0);
	struct arm64_image img;
	struct capture c;

	h.b[59] = 0x65; /* "ARMe" */
	assert_int_equal(parse(&h, sizeof(h.b), MiB, &img, &c), -ENOEXEC);
	expect_message(&c, "--kernel K", "not an arm64 Image (no \"ARM\\x64\" magic at offset 56)");

	/* An x86 bzImage's start is not one either. */
	memset(&h, 0, sizeof(h));
	memcpy(h.b, "MZ", 2);
	assert_int_equal(parse(&h, sizeof(h.b), MiB, &img, &c), -ENOEXEC);
	expect_message(&c, "--kernel K", "not an arm64 Image");
}

static void refuses_big_endian(void **state)
{
	struct header h = header(0, 8 * MiB, 1 << 0 | 1 << 1);
	struct arm64_image img;
	struct capture c;

	assert_int_equal(parse(&h, sizeof(h.b), MiB, &img, &c), -ENOEXEC);
	expect_message(&c, "--kernel K",
		       "a big-endian kernel; vmm boots little-endian kernels only");

	/* Before v3.17 (no flags): text_offset 0x80000 in the kernel's byte order. */
	h = header(__builtin_bswap64(0x80000), 0, 0);
	assert_int_equal(parse(&h, sizeof(h.b), MiB, &img, &c), -ENOEXEC);
	expect_message(&c, "--kernel K", "big-endian");
}

/* image_size 0: a kernel before v3.17. text_offset is 0x80000 and the file plus the slack is
 * kept free. */
static void old_kernel_without_image_size(void **state)
{
	struct header h = header(0x80000, 0, 0);
	struct arm64_image img;
	struct capture c;

	assert_int_equal(parse(&h, sizeof(h.b), 10 * MiB + 3, &img, &c), 0);
	assert_string_equal(c.text, "");
	assert_true(img.old);
	assert_int_equal(img.text_offset, ARM64_IMAGE_OLD_TEXT_OFFSET);
	assert_int_equal(img.image_size, 10 * MiB + 3 + ARM64_IMAGE_OLD_SLACK);
	assert_int_equal(img.page_size, 0);
	assert_false(img.anywhere);
}

static void refuses_inconsistent_headers(void **state)
{
	struct header h = header(0, 2 * MiB - 1, 0);
	struct arm64_image img;
	struct capture c;

	assert_int_equal(parse(&h, sizeof(h.b), 2 * MiB, &img, &c), -EINVAL);
	expect_message(&c, "--kernel K",
		       "the header's image_size (2097151 bytes) is smaller than the file "
		       "(2097152 bytes)");

	h = header(2 * MiB, 8 * MiB, 0);
	assert_int_equal(parse(&h, sizeof(h.b), MiB, &img, &c), -EINVAL);
	expect_message(&c, "--kernel K", "text_offset 0x200000 is not below 2 MiB");
}

static int place(const struct arm64_image *img, uint64_t ram_base, uint64_t ram_size,
		 uint64_t initrd_size, struct arm64_layout *l, struct capture *msg)
{
	struct arm64_place p = {
	    .ram_base = ram_base,
	    .ram_size = ram_size,
	    .initrd_size = initrd_size,
	    .kernel_what = "--kernel K",
	    .initrd_what = "--initrd I",
	};
	int ret;

	capture_start(msg);
	ret = arm64_image_place(img, &p, l);
	capture_end(msg);
	return ret;
}

static int overlap(uint64_t a, uint64_t a_end, uint64_t b, uint64_t b_end)
{
	return a < b_end && b < a_end;
}

/* What every layout must be: the kernel text_offset above a 2 MiB boundary, the DTB 8-byte
 * aligned in one 2 MiB block, nothing overlapping, everything in RAM. */
static void check_layout(const struct arm64_image *img, uint64_t ram_base, uint64_t ram_size,
			 uint64_t initrd_size, const struct arm64_layout *l)
{
	uint64_t ram_end = ram_base + ram_size;

	assert_int_equal((l->kernel - img->text_offset) % (2 * MiB), 0);
	assert_true(l->kernel - img->text_offset >= ram_base);
	assert_int_equal(l->kernel_end, l->kernel + img->image_size);
	assert_int_equal(l->dtb % 8, 0);
	assert_int_equal(l->dtb / (2 * MiB), (l->dtb + ARM64_DTB_MAX - 1) / (2 * MiB));
	assert_false(overlap(l->kernel, l->kernel_end, l->dtb, l->dtb + ARM64_DTB_MAX));
	assert_true(l->dtb + ARM64_DTB_MAX <= ram_end);
	if (!initrd_size) {
		assert_int_equal(l->initrd, 0);
		assert_int_equal(l->end, l->dtb + ARM64_DTB_MAX);
		return;
	}
	assert_int_equal(l->initrd % 4096, 0);
	assert_false(overlap(l->initrd, l->initrd + initrd_size, l->kernel, l->kernel_end));
	assert_false(overlap(l->initrd, l->initrd + initrd_size, l->dtb, l->dtb + ARM64_DTB_MAX));
	assert_int_equal(l->end, l->initrd + initrd_size);
	assert_true(l->end <= ram_end);
}

/* Flags bit 3 clear: the lowest 2 MiB boundary in RAM, text_offset above it. */
static void places_kernel_low(void **state)
{
	struct header h = header(0x80000, 30 * MiB + 5, 0);
	struct arm64_image img;
	struct arm64_layout l;
	struct capture c;

	assert_int_equal(parse(&h, sizeof(h.b), 20 * MiB, &img, &c), 0);
	assert_int_equal(place(&img, RAM_BASE, 256 * MiB, 5 * MiB + 1, &l, &c), 0);
	assert_string_equal(c.text, "");
	check_layout(&img, RAM_BASE, 256 * MiB, 5 * MiB + 1, &l);
	assert_int_equal(l.kernel, RAM_BASE + 0x80000);
	assert_int_equal(l.kernel_end, RAM_BASE + 0x80000 + 30 * MiB + 5);
	assert_int_equal(l.dtb, RAM_BASE + 32 * MiB); /* the next 2 MiB boundary */
	assert_int_equal(l.initrd, RAM_BASE + 34 * MiB);
	assert_int_equal(l.end, RAM_BASE + 39 * MiB + 1);

	/* RAM that does not start on 2 MiB: the first boundary inside it. */
	assert_int_equal(place(&img, RAM_BASE + 0x1000, 256 * MiB, 0, &l, &c), 0);
	check_layout(&img, RAM_BASE + 0x1000, 256 * MiB, 0, &l);
	assert_int_equal(l.kernel, RAM_BASE + 2 * MiB + 0x80000);
	assert_int_equal(l.initrd, 0);
}

/* Flags bit 3 set: any 2 MiB base below 2^48 would do; vmm still takes the lowest (one rule for
 * both), but RAM wholly above 2^48 is refused for such a kernel only. */
static void places_kernel_anywhere(void **state)
{
	struct header h_any = header(0, 40 * MiB, 1 << 3), h_low = header(0, 40 * MiB, 0);
	struct arm64_image any, low;
	struct arm64_layout l;
	struct capture c;

	assert_int_equal(parse(&h_any, sizeof(h_any.b), 20 * MiB, &any, &c), 0);
	assert_int_equal(parse(&h_low, sizeof(h_low.b), 20 * MiB, &low, &c), 0);
	assert_true(any.anywhere);
	assert_false(low.anywhere);

	assert_int_equal(place(&any, RAM_BASE, 128 * MiB, MiB, &l, &c), 0);
	check_layout(&any, RAM_BASE, 128 * MiB, MiB, &l);
	assert_int_equal(l.kernel, RAM_BASE);
	assert_int_equal(l.dtb, RAM_BASE + 40 * MiB);
	assert_int_equal(l.initrd, RAM_BASE + 42 * MiB);

	assert_int_equal(place(&any, 1ULL << 48, 128 * MiB, 0, &l, &c), -E2BIG);
	expect_message(&c, "--kernel K", "the kernel must lie below 2^48");
	assert_int_equal(place(&low, 1ULL << 48, 128 * MiB, 0, &l, &c), 0);
	check_layout(&low, 1ULL << 48, 128 * MiB, 0, &l);
	assert_int_equal(l.kernel, 1ULL << 48);
}

/* Exactly enough RAM works; a page less names what did not fit. */
static void refuses_too_little_ram(void **state)
{
	struct header h = header(0, 30 * MiB, 1 << 1);
	struct arm64_image img;
	struct arm64_layout l;
	struct capture c;
	uint64_t need = 30 * MiB + 2 * MiB + 7 * MiB; /* kernel, DTB block, initrd */

	assert_int_equal(parse(&h, sizeof(h.b), 20 * MiB, &img, &c), 0);
	assert_int_equal(place(&img, RAM_BASE, need, 7 * MiB, &l, &c), 0);
	check_layout(&img, RAM_BASE, need, 7 * MiB, &l);
	assert_int_equal(l.end, RAM_BASE + need);

	assert_int_equal(place(&img, RAM_BASE, need - 4096, 7 * MiB, &l, &c), -E2BIG);
	expect_message(&c, "--initrd I",
		       "7340032 bytes do not fit in guest memory above the kernel and the device "
		       "tree (39 MiB of RAM needed); raise --memory");

	assert_int_equal(place(&img, RAM_BASE, 32 * MiB - 4096, 0, &l, &c), -E2BIG);
	expect_message(&c, "--kernel K",
		       "the kernel and its device tree need 32 MiB of RAM; raise --memory");

	assert_int_equal(place(&img, RAM_BASE, 16 * MiB, 0, &l, &c), -E2BIG);
	expect_message(&c, "--kernel K", "the kernel needs 30 MiB of RAM; raise --memory");

	/* An old kernel's assumed size counts as much as a real one. */
	h = header(0x80000, 0, 0);
	assert_int_equal(parse(&h, sizeof(h.b), 20 * MiB, &img, &c), 0);
	assert_int_equal(place(&img, RAM_BASE, 40 * MiB, 0, &l, &c), -E2BIG);
	expect_message(&c, "--kernel K", "the kernel needs 53 MiB of RAM");
}

/* booting.rst: the initrd within a 1 GiB-aligned window of up to 32 GiB that holds the kernel. */
static void initrd_stays_in_the_kernels_window(void **state)
{
	struct header h = header(0, 30 * MiB, 0);
	struct arm64_image img;
	struct arm64_layout l;
	struct capture c;

	assert_int_equal(parse(&h, sizeof(h.b), 20 * MiB, &img, &c), 0);
	assert_int_equal(place(&img, RAM_BASE, 64 * GiB, 32 * GiB - 32 * MiB, &l, &c), 0);
	check_layout(&img, RAM_BASE, 64 * GiB, 32 * GiB - 32 * MiB, &l);
	assert_int_equal(place(&img, RAM_BASE, 64 * GiB, 32 * GiB - 32 * MiB + 1, &l, &c), -E2BIG);
	expect_message(&c, "--initrd I", "must fit in one 32 GiB window");
}

/* Sizes around every boundary: the layout rules hold whatever the sizes. */
static void layouts_never_overlap(void **state)
{
	static const uint64_t offsets[] = { 0, 0x80000, 0x1ff000 };
	static const uint64_t sizes[] = { 64, 2 * MiB - 1, 2 * MiB, 2 * MiB + 1, 37 * MiB + 4095 };
	static const uint64_t initrds[] = { 0, 1, 4096, 2 * MiB + 1, 100 * MiB };
	static const uint64_t bases[] = { RAM_BASE, 0, 0x80001000 };
	struct capture c;

	for (size_t n = 0; n < 3 * 5 * 5 * 3; n++) {
		struct header h = header(offsets[n % 3], sizes[n / 3 % 5], 1 << 3);
		uint64_t initrd = initrds[n / 15 % 5], base = bases[n / 75];
		struct arm64_image img;
		struct arm64_layout l;

		assert_int_equal(parse(&h, sizeof(h.b), 64, &img, &c), 0);
		assert_int_equal(place(&img, base, GiB, initrd, &l, &c), 0);
		check_layout(&img, base, GiB, initrd, &l);
	}
}

static void refuses_ram_beyond_52_bits(void **state)
{
	struct header h = header(0, 30 * MiB, 0);
	struct arm64_image img;
	struct arm64_layout l;
	struct capture c;

	assert_int_equal(parse(&h, sizeof(h.b), 20 * MiB, &img, &c), 0);
	assert_int_equal(place(&img, UINT64_MAX - MiB, 2 * MiB, 0, &l, &c), -EINVAL);
	expect_message(&c, "--memory", "not within 52-bit physical addresses");
	assert_int_equal(place(&img, RAM_BASE, 0, 0, &l, &c), -EINVAL);
	/* A huge image_size must not wrap into a small end. */
	h = header(0, UINT64_MAX - 4096, 0);
	assert_int_equal(parse(&h, sizeof(h.b), 20 * MiB, &img, &c), 0);
	assert_int_equal(place(&img, RAM_BASE, GiB, 0, &l, &c), -E2BIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(parses_a_good_header),
	    cmocka_unit_test(decodes_page_size),
	    cmocka_unit_test(refuses_short_files),
	    cmocka_unit_test(refuses_bad_magic),
	    cmocka_unit_test(refuses_big_endian),
	    cmocka_unit_test(old_kernel_without_image_size),
	    cmocka_unit_test(refuses_inconsistent_headers),
	    cmocka_unit_test(places_kernel_low),
	    cmocka_unit_test(places_kernel_anywhere),
	    cmocka_unit_test(refuses_too_little_ram),
	    cmocka_unit_test(initrd_stays_in_the_kernels_window),
	    cmocka_unit_test(layouts_never_overlap),
	    cmocka_unit_test(refuses_ram_beyond_52_bits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
