/* The Linux x86 boot protocol (Documentation/arch/x86/boot.rst), 64-bit entry: the kernel is
 * loaded, boot_params filled, and the vCPU starts in long mode with an identity map. ELF64 images
 * (vmlinux, the firmware test guests) are loaded at their physical addresses instead. */
#include "arch/x86/layout.h"
#include "arch/x86/acpi.h"
#include "arch/x86/mptable.h"
#include "log.h"

#include <asm/bootparam.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HDRS_MAGIC         0x53726448 /* "HdrS" */
#define MIN_PROTOCOL       0x020c     /* 2.12: xloadflags, and with it XLF_KERNEL_64 */
#define DEFAULT_INITRD_MAX 0x37ffffffU
#define PAGE_SIZE          4096ULL
#define E820_TYPE_RAM      1
#define E820_TYPE_RESERVED 2

static const uint64_t boot_gdt[BOOT_GDT_ENTRIES] = {
	0,
	0,
	0x00af9b000000ffffULL, /* 0x10: 64-bit code, present, DPL 0 */
	0x00cf93000000ffffULL, /* 0x18: data, 4 GiB flat, writable */
};

uint64_t boot_gdt_entry(unsigned index)
{
	return index < BOOT_GDT_ENTRIES ? boot_gdt[index] : 0;
}

struct loaded {
	uint64_t entry;
	uint64_t end;         /* first byte above everything the kernel occupies, now or later */
	uint64_t written;     /* first byte above what was copied into guest memory */
	uint32_t initrd_max;  /* highest address the initrd may reach */
	uint32_t cmdline_max; /* bytes of command line, without the NUL */
};

static int load_bzimage(struct guest_mem *m, const char *what, const struct boot_file *k,
			struct boot_params *bp, struct loaded *out)
{
	struct setup_header *h = &bp->hdr;
	size_t hdr_end, setup_size;
	uint64_t need;

	if (k->size < 0x202 + 2 + 0x40) {
		log_error("%s: too small to be a bzImage", what);
		return -ENOEXEC;
	}
	/* The header runs from 0x1f1 to 0x202 plus the byte at 0x201 (the jump's offset). */
	hdr_end = 0x202 + k->data[0x201];
	if (hdr_end > 0x1f1 + sizeof(*h))
		hdr_end = 0x1f1 + sizeof(*h);
	memcpy(h, k->data + 0x1f1, hdr_end - 0x1f1);
	if (h->version < MIN_PROTOCOL) {
		log_error("%s: boot protocol %u.%02u is too old; vmm needs 2.12 or later "
			  "(a 64-bit entry point)",
			  what, h->version >> 8, h->version & 0xff);
		return -ENOEXEC;
	}
	if (!(h->loadflags & LOADED_HIGH) || !(h->xloadflags & XLF_KERNEL_64)) {
		log_error("%s: not a 64-bit kernel (no %s in the boot header)", what,
			  !(h->loadflags & LOADED_HIGH) ? "LOADED_HIGH" : "XLF_KERNEL_64");
		return -ENOEXEC;
	}
	setup_size = ((size_t)(h->setup_sects ? h->setup_sects : 4) + 1) * 512;
	if (setup_size >= k->size) {
		log_error("%s: setup_sects %u runs past the end of the file", what,
			  h->setup_sects);
		return -ENOEXEC;
	}
	/* The decompressor runs in place at 1 MiB and extracts to pref_address (16 MiB for
	 * Debian's kernels); both must be RAM. */
	need = BOOT_KERNEL_ADDR + (k->size - setup_size);
	if (h->pref_address + h->init_size > need)
		need = h->pref_address + h->init_size;
	if (need > gmem_low_end(m)) {
		log_error("%s: the kernel needs %llu MiB of RAM below 3 GiB; raise --memory",
			  what, (unsigned long long)((need + (1 << 20) - 1) >> 20));
		return -EFBIG;
	}
	if (boot_put(m, BOOT_KERNEL_ADDR, k->data + setup_size, k->size - setup_size))
		return -ERANGE;
	h->type_of_loader = 0xff;
	h->loadflags &= (uint8_t) ~(KEEP_SEGMENTS | QUIET_FLAG);
	h->code32_start = BOOT_KERNEL_ADDR;
	out->entry = BOOT_KERNEL_ADDR + 0x200; /* startup_64 */
	out->end = need;
	out->written = BOOT_KERNEL_ADDR + (k->size - setup_size);
	out->initrd_max = h->initrd_addr_max ? h->initrd_addr_max : DEFAULT_INITRD_MAX;
	out->cmdline_max = h->cmdline_size ? h->cmdline_size : 255;
	return 0;
}

static int load_elf(struct guest_mem *m, const char *what, const struct boot_file *k,
		    struct boot_params *bp, struct loaded *out)
{
	const Elf64_Ehdr *eh = (const void *)k->data;
	uint64_t end = BOOT_KERNEL_ADDR;
	bool any = false;

	if (k->size < sizeof(*eh) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_ident[EI_DATA] != ELFDATA2LSB || eh->e_machine != EM_X86_64 ||
	    (eh->e_type != ET_EXEC && eh->e_type != ET_DYN)) {
		log_error("%s: an ELF file, but not a little-endian x86-64 executable", what);
		return -ENOEXEC;
	}
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phoff > k->size ||
	    (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > k->size - eh->e_phoff) {
		log_error("%s: the ELF program headers lie outside the file", what);
		return -ENOEXEC;
	}
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;
		uint8_t *dst;

		memcpy(&ph, k->data + eh->e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		if (ph.p_filesz > ph.p_memsz || ph.p_offset > k->size ||
		    ph.p_filesz > k->size - ph.p_offset) {
			log_error("%s: segment %u lies outside the file", what, i);
			return -ENOEXEC;
		}
		/* Below 1 MiB live the boot structures and ACPI tables. */
		dst = ph.p_paddr >= BOOT_KERNEL_ADDR ? gmem_ptr(m, ph.p_paddr, ph.p_memsz) : NULL;
		if (!dst) {
			log_error("%s: segment %u at %#llx+%#llx is not in guest RAM above "
				  "1 MiB (raise --memory?)",
				  what, i, (unsigned long long)ph.p_paddr,
				  (unsigned long long)ph.p_memsz);
			return -EFBIG;
		}
		memcpy(dst, k->data + ph.p_offset, ph.p_filesz);
		memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
		if (ph.p_paddr + ph.p_memsz > end)
			end = ph.p_paddr + ph.p_memsz;
		any = true;
	}
	if (!any) {
		log_error("%s: the ELF file has nothing to load", what);
		return -ENOEXEC;
	}
	/* A boot_params that a vmlinux accepts: it checks only the magic numbers. */
	bp->hdr.boot_flag = 0xaa55;
	bp->hdr.header = HDRS_MAGIC;
	bp->hdr.type_of_loader = 0xff;
	bp->hdr.kernel_alignment = 0x1000000;
	out->entry = eh->e_entry;
	out->end = end;
	out->written = end;
	out->initrd_max = DEFAULT_INITRD_MAX;
	out->cmdline_max = BOOT_CMDLINE_MAX - 1;
	return 0;
}

static void e820_add(struct boot_params *bp, uint64_t addr, uint64_t size, uint32_t type)
{
	if (size && bp->e820_entries < E820_MAX_ENTRIES_ZEROPAGE)
		bp->e820_table[bp->e820_entries++] =
			(struct boot_e820_entry){ .addr = addr, .size = size, .type = type };
}

/*
 * The whole "BIOS": what runs at F000:FFF0. With hardware-reduced ACPI and no EFI, Linux reboots
 * by jumping there in real mode (its BOOT_EFI -> BOOT_BIOS fallback) before it would try the ACPI
 * reset register, so the reset vector pulses the i8042 reset line:
 *   mov al, 0xfe; out 0x64, al; cli; 1: hlt; jmp 1b
 */
static const uint8_t reset_stub[] = { 0xb0, 0xfe, 0xe6, 0x64, 0xfa, 0xf4, 0xeb, 0xfd };

/* Conventional memory below the EBDA, the BIOS area reserved up to 1 MiB, RAM up to the 32-bit
 * hole, the exit device's page, and RAM above 4 GiB. */
static void e820_fill(const struct guest_mem *m, struct boot_params *bp)
{
	uint64_t low = gmem_low_end(m);

	e820_add(bp, 0, BOOT_EBDA_START, E820_TYPE_RAM);
	e820_add(bp, BOOT_EBDA_START, BOOT_KERNEL_ADDR - BOOT_EBDA_START, E820_TYPE_RESERVED);
	e820_add(bp, BOOT_KERNEL_ADDR, low - BOOT_KERNEL_ADDR, E820_TYPE_RAM);
	e820_add(bp, PCI_ECAM_BASE, PCI_ECAM_SIZE, E820_TYPE_RESERVED); /* Linux checks MCFG's */
	e820_add(bp, EXITDEV_MMIO_ADDR, EXITDEV_MMIO_SIZE, E820_TYPE_RESERVED);
	for (int i = 0; i < m->nr; i++)
		if (m->r[i].gpa >= MEM_HOLE_END)
			e820_add(bp, m->r[i].gpa, m->r[i].size, E820_TYPE_RAM);
}

/* PML4 -> PDPT -> four page directories of 2 MiB pages: the first 4 GiB, identity mapped. */
static int write_page_tables(struct guest_mem *m)
{
	uint64_t *pml4 = gmem_ptr(m, BOOT_PML4_ADDR, PAGE_SIZE);
	uint64_t *pdpt = gmem_ptr(m, BOOT_PDPT_ADDR, PAGE_SIZE);
	uint64_t *pd = gmem_ptr(m, BOOT_PD_ADDR, 4 * PAGE_SIZE);

	if (!pml4 || !pdpt || !pd)
		return -ERANGE;
	memset(pml4, 0, PAGE_SIZE);
	memset(pdpt, 0, PAGE_SIZE);
	pml4[0] = BOOT_PDPT_ADDR | 0x3; /* present, writable */
	for (uint64_t i = 0; i < 4; i++)
		pdpt[i] = (BOOT_PD_ADDR + i * PAGE_SIZE) | 0x3;
	for (uint64_t i = 0; i < 4 * 512; i++)
		pd[i] = (i << 21) | 0x83; /* present, writable, 2 MiB page */
	return 0;
}

static int load_initrd(struct guest_mem *m, const struct boot_args *a, const struct loaded *k,
		       struct boot_params *bp)
{
	uint64_t top = gmem_low_end(m), start;
	size_t size;
	void *dst;
	int fd, ret;

	if ((uint64_t)k->initrd_max + 1 < top)
		top = (uint64_t)k->initrd_max + 1;
	fd = boot_open(a->initrd_what, a->initrd, top > k->end ? top - k->end : 0, &size);
	if (fd < 0)
		return fd;
	/* No initramfs at all, most likely from a build that failed: say so rather than boot on. */
	if (!size) {
		log_error("%s: an empty file, not an initramfs (--initrd none boots without one)",
			  a->initrd_what);
		close(fd);
		return -EINVAL;
	}
	/* As high as allowed, page aligned, clear of everything the kernel will use. */
	start = (top - size) & ~(PAGE_SIZE - 1);
	if (start < k->end) {
		log_error("%s: %zu bytes do not fit in guest memory above the kernel; "
			  "raise --memory",
			  a->initrd_what, size);
		close(fd);
		return -EFBIG;
	}
	/* Straight into guest memory: an initrd can be large, and a copy through the heap would
	 * cost its size twice at start-up. */
	if (!(dst = gmem_ptr(m, start, size))) {
		close(fd);
		return -ERANGE;
	}
	if ((ret = boot_read(a->initrd_what, fd, dst, size)))
		return ret;
	bp->hdr.ramdisk_image = (uint32_t)start;
	bp->hdr.ramdisk_size = (uint32_t)size;
	return 0;
}

int boot_load(struct guest_mem *m, const struct boot_args *a, struct boot_info *out)
{
	static const uint8_t elf_magic[4] = { ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3 };
	struct boot_params *bp;
	struct loaded k = { 0 };
	struct boot_file img;
	uint64_t rsdp;
	size_t cmdlen = strlen(a->cmdline);
	int ret;

	if (gmem_low_end(m) < 2 * BOOT_KERNEL_ADDR) {
		log_error("--memory: at least 2 MiB of RAM are needed to boot");
		return -EINVAL;
	}
	bp = gmem_ptr(m, BOOT_PARAMS_ADDR, sizeof(*bp));
	if (!bp)
		return -ERANGE;
	memset(bp, 0, sizeof(*bp));
	if ((ret = boot_read_file(a->kernel_what, a->kernel, gmem_low_end(m), &img)))
		return ret;
	if (img.size >= 4 && !memcmp(img.data, elf_magic, 4))
		ret = load_elf(m, a->kernel_what, &img, bp, &k);
	else if (img.size >= 0x206 && !memcmp(img.data + 0x202, "HdrS", 4))
		ret = load_bzimage(m, a->kernel_what, &img, bp, &k);
	else {
		log_error("%s: not a kernel (neither a bzImage nor an ELF64 image)",
			  a->kernel_what);
		ret = -ENOEXEC;
	}
	free(img.data);
	if (ret)
		return ret;

	if (cmdlen > k.cmdline_max || cmdlen >= BOOT_CMDLINE_MAX) {
		log_error("--cmdline: %zu bytes, but this kernel accepts at most %u", cmdlen,
			  k.cmdline_max < BOOT_CMDLINE_MAX ? k.cmdline_max
							 : (unsigned)BOOT_CMDLINE_MAX - 1);
		return -E2BIG;
	}
	if ((ret = boot_put(m, BOOT_CMDLINE_ADDR, a->cmdline, cmdlen + 1)))
		return ret;
	bp->hdr.cmd_line_ptr = BOOT_CMDLINE_ADDR;
	bp->hdr.cmdline_size = (uint32_t)cmdlen + 1;

	if (a->initrd && (ret = load_initrd(m, a, &k, bp)))
		return ret;
	e820_fill(m, bp);
	if ((ret = acpi_build(m, a, &rsdp))) {
		log_error("ACPI tables do not fit below 1 MiB");
		return ret;
	}
	bp->acpi_rsdp_addr = rsdp;
	if ((ret = mptable_build(m, a->cpus))) {
		log_error("the MP table does not fit below the ACPI tables");
		return ret;
	}
	if ((ret = write_page_tables(m)) || (ret = boot_put(m, BOOT_GDT_ADDR, boot_gdt, sizeof(boot_gdt))) ||
	    (ret = boot_put(m, BOOT_RESET_VECTOR, reset_stub, sizeof(reset_stub))))
		return ret;
	out->entry = k.entry;
	out->arg = BOOT_PARAMS_ADDR;
	out->stack = BOOT_STACK_TOP;
	out->written_end = k.written;
	out->initrd_gpa = bp->hdr.ramdisk_image;
	out->initrd_size = bp->hdr.ramdisk_size;
	return 0;
}

