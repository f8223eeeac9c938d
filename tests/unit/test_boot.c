/* The boot path: synthetic bzImage and ELF64 images loaded into guest memory, and the boot_params,
 * e820 map, command line and initrd placement they produce; bad images rejected. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <asm/bootparam.h>
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arch/x86/layout.h"

#define MiB (1ULL << 20)

static char dir[] = "/tmp/vmm-test-boot-XXXXXX";

static char *write_tmp(const char *name, const void *data, size_t len)
{
	char *path;
	FILE *f;

	assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	return path;
}

/* A bzImage with 4 setup sectors and a recognisable protected-mode payload. */
struct bz {
	uint8_t *data;
	size_t size;
	struct setup_header *h;
};

static struct bz make_bzimage(size_t payload)
{
	struct bz b;
	size_t setup = 5 * 512;

	b.size = setup + payload;
	b.data = calloc(1, b.size);
	assert_non_null(b.data);
	b.h = (struct setup_header *)(b.data + 0x1f1);
	b.h->setup_sects = 4;
	b.h->boot_flag = 0xaa55;
	b.h->header = 0x53726448;
	b.h->version = 0x020f;
	b.h->loadflags = LOADED_HIGH;
	b.h->xloadflags = XLF_KERNEL_64;
	b.h->initrd_addr_max = 0x7fffffff;
	b.h->cmdline_size = 2048;
	b.h->pref_address = 16 * MiB;
	b.h->init_size = 4 * MiB;
	b.data[0x201] = (uint8_t)(0x1f1 + sizeof(struct setup_header) - 0x202);
	for (size_t i = setup; i < b.size; i++)
		b.data[i] = (uint8_t)(i * 7);
	return b;
}

struct boot_run {
	struct guest_mem m;
	struct boot_info info;
	struct boot_params *bp;
	int ret;
};

static void run(struct boot_run *r, uint64_t ram, const char *kernel, const char *initrd,
		const char *cmdline)
{
	struct boot_args a = { .kernel = kernel, .initrd = initrd, .kernel_what = "--kernel K",
			       .initrd_what = "--initrd I", .cmdline = cmdline, .cpus = 2 };

	assert_int_equal(gmem_init(&r->m, ram), 0);
	r->ret = boot_load(&r->m, &a, &r->info);
	r->bp = gmem_ptr(&r->m, BOOT_PARAMS_ADDR, sizeof(*r->bp));
}

static void bzimage_boot_params(void **state)
{
	struct bz b = make_bzimage(8192);
	uint8_t initrd[10000];
	char *k, *i;
	struct boot_run r;

	for (size_t n = 0; n < sizeof(initrd); n++)
		initrd[n] = (uint8_t)(n ^ 0x5a);
	k = write_tmp("bz", b.data, b.size);
	i = write_tmp("initrd", initrd, sizeof(initrd));
	run(&r, 64 * MiB, k, i, "console=ttyS0 quiet");
	assert_int_equal(r.ret, 0);
	assert_int_equal(r.info.entry, BOOT_KERNEL_ADDR + 0x200);
	assert_int_equal(r.info.arg, BOOT_PARAMS_ADDR);
	assert_memory_equal(gmem_ptr(&r.m, BOOT_KERNEL_ADDR, 8192), b.data + 5 * 512, 8192);

	assert_int_equal(r.bp->hdr.type_of_loader, 0xff);
	assert_int_equal(r.bp->hdr.version, 0x020f); /* the header was copied */
	assert_int_equal(r.bp->hdr.cmd_line_ptr, BOOT_CMDLINE_ADDR);
	assert_string_equal((char *)gmem_ptr(&r.m, BOOT_CMDLINE_ADDR, 20), "console=ttyS0 quiet");

	/* The initrd sits page aligned at the top of RAM, above the decompressed kernel. */
	assert_int_equal(r.bp->hdr.ramdisk_size, sizeof(initrd));
	assert_int_equal(r.bp->hdr.ramdisk_image % 4096, 0);
	assert_true(r.bp->hdr.ramdisk_image >= 20 * MiB);
	assert_true(r.bp->hdr.ramdisk_image + sizeof(initrd) <= 64 * MiB);
	assert_true(64 * MiB - (r.bp->hdr.ramdisk_image + sizeof(initrd)) < 4096);
	assert_memory_equal(gmem_ptr(&r.m, r.bp->hdr.ramdisk_image, sizeof(initrd)), initrd,
			    sizeof(initrd));

	assert_int_not_equal(r.bp->acpi_rsdp_addr, 0);
	assert_memory_equal(gmem_ptr(&r.m, r.bp->acpi_rsdp_addr, 8), "RSD PTR ", 8);
	/* The reset vector holds the stub that turns a real-mode restart into an i8042 reset. */
	assert_memory_equal(gmem_ptr(&r.m, BOOT_RESET_VECTOR, 4), "\xb0\xfe\xe6\x64", 4);
	assert_int_equal(*(uint64_t *)gmem_ptr(&r.m, BOOT_GDT_ADDR + BOOT_GDT_CODE, 8),
			 boot_gdt_entry(BOOT_GDT_CODE >> 3));
	assert_int_equal(*(uint64_t *)gmem_ptr(&r.m, BOOT_PML4_ADDR, 8), BOOT_PDPT_ADDR | 3);
	/* 2 MiB page 1 maps 2 MiB: present, writable, large. */
	assert_int_equal(*(uint64_t *)gmem_ptr(&r.m, BOOT_PD_ADDR + 8, 8), (2 * MiB) | 0x83);

	/* A restart: what boot_load wrote is kept, RAM is cleared, and the same comes back. */
	struct boot_image img;
	uint8_t *ram = gmem_ptr(&r.m, 0, 64 * MiB), *before = malloc(64 * MiB);

	assert_non_null(before);
	memcpy(before, ram, 64 * MiB);
	assert_int_equal(r.info.written_end, BOOT_KERNEL_ADDR + 8192);
	assert_int_equal(boot_keep(&r.m, &r.info, &img), 0);
	memset(gmem_ptr(&r.m, r.info.initrd_gpa, sizeof(initrd)), 0x66, sizeof(initrd));
	memset(gmem_ptr(&r.m, 0, 32 * MiB), 0x77, 32 * MiB); /* the old boot's leftovers */
	boot_reload(&r.m, &img);
	assert_memory_equal(ram, before, 64 * MiB);
	boot_image_free(&img);
	free(before);
	gmem_free(&r.m);
	free(b.data);
	free(k);
	free(i);
}

static void e820_small_and_large(void **state)
{
	struct bz b = make_bzimage(512);
	char *k = write_tmp("bz", b.data, b.size);
	struct boot_run r;
	const struct boot_e820_entry *e;

	run(&r, 64 * MiB, k, NULL, "");
	assert_int_equal(r.ret, 0);
	e = r.bp->e820_table;
	assert_int_equal(r.bp->e820_entries, 5);
	assert_true(e[0].addr == 0 && e[0].size == BOOT_EBDA_START && e[0].type == 1);
	assert_true(e[1].addr == BOOT_EBDA_START && e[1].addr + e[1].size == MiB && e[1].type == 2);
	assert_true(e[2].addr == MiB && e[2].size == 63 * MiB && e[2].type == 1);
	assert_true(e[3].addr == PCI_ECAM_BASE && e[3].size == PCI_ECAM_SIZE && e[3].type == 2);
	assert_true(e[4].addr == EXITDEV_MMIO_ADDR && e[4].size == EXITDEV_MMIO_SIZE &&
		    e[4].type == 2);
	assert_int_equal(r.bp->hdr.ramdisk_image, 0);
	gmem_free(&r.m);

	/* 5 GiB: 3 GiB below the hole, 2 GiB from 4 GiB up. */
	run(&r, 5ULL << 30, k, NULL, "");
	assert_int_equal(r.ret, 0);
	e = r.bp->e820_table;
	assert_int_equal(r.bp->e820_entries, 6);
	assert_true(e[2].addr == MiB && e[2].addr + e[2].size == MEM_HOLE_START);
	assert_true(e[5].addr == MEM_HOLE_END && e[5].size == 2ULL << 30 && e[5].type == 1);
	for (int n = 1; n < r.bp->e820_entries; n++) /* sorted, no overlaps */
		assert_true(e[n - 1].addr + e[n - 1].size <= e[n].addr);
	gmem_free(&r.m);
	free(b.data);
	free(k);
}

static void initrd_respects_initrd_addr_max(void **state)
{
	struct bz b = make_bzimage(512);
	uint8_t initrd[4096] = { 1 };
	char *k, *i;
	struct boot_run r;

	b.h->initrd_addr_max = 32 * MiB - 1;
	k = write_tmp("bz", b.data, b.size);
	i = write_tmp("initrd", initrd, sizeof(initrd));
	run(&r, 64 * MiB, k, i, "");
	assert_int_equal(r.ret, 0);
	assert_int_equal(r.bp->hdr.ramdisk_image + r.bp->hdr.ramdisk_size, 32 * MiB);
	gmem_free(&r.m);
	free(b.data);
	free(k);
	free(i);
}

static void rejects_bad_images(void **state)
{
	struct bz b = make_bzimage(512);
	struct boot_run r;
	char *k, *big, *text;
	char longline[3000];
	FILE *f;

	text = write_tmp("text", "hello, I am not a kernel\n", 25);
	run(&r, 64 * MiB, text, NULL, "");
	assert_int_equal(r.ret, -ENOEXEC);
	gmem_free(&r.m);

	run(&r, 64 * MiB, "/nonexistent/vmlinuz", NULL, "");
	assert_int_equal(r.ret, -ENOENT);
	gmem_free(&r.m);

	run(&r, 64 * MiB, dir, NULL, ""); /* a directory */
	assert_int_equal(r.ret, -EINVAL);
	gmem_free(&r.m);

	b.h->version = 0x020b;
	k = write_tmp("old", b.data, b.size);
	run(&r, 64 * MiB, k, NULL, "");
	assert_int_equal(r.ret, -ENOEXEC);
	gmem_free(&r.m);
	free(k);

	b.h->version = 0x020f;
	b.h->xloadflags = 0;
	k = write_tmp("k32", b.data, b.size);
	run(&r, 64 * MiB, k, NULL, "");
	assert_int_equal(r.ret, -ENOEXEC);
	gmem_free(&r.m);
	free(k);

	b.h->xloadflags = XLF_KERNEL_64;
	b.h->init_size = 100 * MiB; /* needs more RAM than the guest has */
	k = write_tmp("huge", b.data, b.size);
	run(&r, 64 * MiB, k, NULL, "");
	assert_int_equal(r.ret, -EFBIG);
	gmem_free(&r.m);
	free(k);

	b.h->init_size = 4 * MiB;
	b.h->cmdline_size = 16;
	k = write_tmp("bz", b.data, b.size);
	/* cmdline_size counts the bytes without the terminating NUL. */
	run(&r, 64 * MiB, k, NULL, "0123456789abcdefg");
	assert_int_equal(r.ret, -E2BIG);
	gmem_free(&r.m);
	run(&r, 64 * MiB, k, NULL, "0123456789abcdef");
	assert_int_equal(r.ret, 0);
	gmem_free(&r.m);

	memset(longline, 'x', sizeof(longline) - 1);
	longline[sizeof(longline) - 1] = 0;
	b.h->cmdline_size = 2048;
	free(k);
	k = write_tmp("bz", b.data, b.size);
	run(&r, 64 * MiB, k, NULL, longline);
	assert_int_equal(r.ret, -E2BIG);
	gmem_free(&r.m);

	/* An initrd larger than the RAM left above the kernel (sparse, so it costs nothing). */
	assert_true(asprintf(&big, "%s/big", dir) > 0);
	f = fopen(big, "wb");
	assert_non_null(f);
	assert_int_equal(ftruncate(fileno(f), 48 * MiB), 0);
	fclose(f);
	run(&r, 64 * MiB, k, big, "");
	assert_int_equal(r.ret, -EFBIG);
	gmem_free(&r.m);
	run(&r, 128 * MiB, k, big, ""); /* the same initrd fits in more memory */
	assert_int_equal(r.ret, 0);
	gmem_free(&r.m);

	free(b.data);
	free(k);
	free(big);
	free(text);
}

/* An ELF64 executable with one PT_LOAD segment of 16 file bytes and 64 memory bytes. */
static char *make_elf(const char *name, unsigned char cls, uint64_t paddr)
{
	struct {
		Elf64_Ehdr eh;
		Elf64_Phdr ph;
		uint8_t code[16];
	} img = { 0 };

	memcpy(img.eh.e_ident, ELFMAG, SELFMAG);
	img.eh.e_ident[EI_CLASS] = cls;
	img.eh.e_ident[EI_DATA] = ELFDATA2LSB;
	img.eh.e_type = ET_EXEC;
	img.eh.e_machine = EM_X86_64;
	img.eh.e_entry = paddr + 4;
	img.eh.e_phoff = offsetof(__typeof__(img), ph);
	img.eh.e_phentsize = sizeof(Elf64_Phdr);
	img.eh.e_phnum = 1;
	img.ph.p_type = PT_LOAD;
	img.ph.p_offset = offsetof(__typeof__(img), code);
	img.ph.p_paddr = paddr;
	img.ph.p_vaddr = 0xffffffff80000000ULL + paddr; /* ignored: loaded at paddr */
	img.ph.p_filesz = sizeof(img.code);
	img.ph.p_memsz = 64;
	memset(img.code, 0xcc, sizeof(img.code));
	return write_tmp(name, &img, sizeof(img));
}

static void elf64_loads_at_paddr(void **state)
{
	char *k = make_elf("elf", ELFCLASS64, 2 * MiB);
	struct boot_run r;
	uint8_t *p;

	run(&r, 64 * MiB, k, NULL, "");
	assert_int_equal(r.ret, 0);
	assert_int_equal(r.info.entry, 2 * MiB + 4);
	p = gmem_ptr(&r.m, 2 * MiB, 64);
	for (int n = 0; n < 64; n++)
		assert_int_equal(p[n], n < 16 ? 0xcc : 0);
	assert_int_equal(r.bp->hdr.boot_flag, 0xaa55);
	assert_int_equal(r.bp->hdr.cmd_line_ptr, BOOT_CMDLINE_ADDR);
	gmem_free(&r.m);
	free(k);

	k = make_elf("low", ELFCLASS64, 0x1000); /* would overwrite the boot structures */
	run(&r, 64 * MiB, k, NULL, "");
	assert_int_equal(r.ret, -EFBIG);
	gmem_free(&r.m);
	free(k);

	k = make_elf("high", ELFCLASS64, 100 * MiB); /* beyond RAM */
	run(&r, 64 * MiB, k, NULL, "");
	assert_int_equal(r.ret, -EFBIG);
	gmem_free(&r.m);
	free(k);

	k = make_elf("elf32", ELFCLASS32, 2 * MiB);
	run(&r, 64 * MiB, k, NULL, "");
	assert_int_equal(r.ret, -ENOEXEC);
	gmem_free(&r.m);
	free(k);
}

/* Issue 20: an empty initrd was exit 2 without a word (its zero bytes did not fit "at the top of
 * RAM"). Now one message that names it. */
static void empty_initrd_is_named(void **state)
{
	struct bz b = make_bzimage(512);
	char *k = write_tmp("bz", b.data, b.size), *i = write_tmp("empty", "", 0);
	char path[] = "/tmp/vmm-test-boot-err-XXXXXX", err[512];
	int fd = mkstemp(path), saved = dup(2);
	struct boot_run r;
	ssize_t n;

	assert_true(fd >= 0 && saved >= 0);
	fflush(stderr);
	dup2(fd, 2);
	run(&r, 64 * MiB, k, i, "");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, err, sizeof(err) - 1, 0);
	err[n > 0 ? n : 0] = 0;
	close(fd);
	unlink(path);
	assert_int_equal(r.ret, -EINVAL);
	assert_non_null(strstr(err, "vmm: --initrd I: an empty file, not an initramfs"));
	assert_non_null(strchr(err, '\n'));
	assert_string_equal(strchr(err, '\n'), "\n"); /* one line */
	gmem_free(&r.m);
	free(b.data);
	free(k);
	free(i);
}

static int cleanup(void **state)
{
	char cmd[64];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bzimage_boot_params),
		cmocka_unit_test(e820_small_and_large),
		cmocka_unit_test(initrd_respects_initrd_addr_max),
		cmocka_unit_test(rejects_bad_images),
		cmocka_unit_test(empty_initrd_is_named),
		cmocka_unit_test(elf64_loads_at_paddr),
	};

	if (!mkdtemp(dir))
		return 1;
	return cmocka_run_group_tests(tests, NULL, cleanup);
}
