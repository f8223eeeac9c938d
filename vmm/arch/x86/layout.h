/* x86's machine: its memory map, and what its boot path (boot.c: bzImage or ELF64, initrd,
 * command line, boot_params with the e820 map, ACPI and MP tables, page tables, GDT) shares with
 * the vCPU setup. The boot API itself is vmm/boot.h. */
#ifndef VMM_X86_LAYOUT_H
#define VMM_X86_LAYOUT_H

#include <stdint.h>

#include "boot.h"
#include "memory.h"

/* RAM starts at 0; what does not fit below the 32-bit hole starts at 4 GiB. */
#define RAM_BASE       0ULL
#define MEM_HOLE_START 0xc0000000ULL  /* 32-bit PCI/MMIO hole: [3 GiB, 4 GiB) is never RAM */
#define MEM_HOLE_END   0x100000000ULL

/* Low-memory layout. Everything below 1 MiB that is not RAM in the e820 map is marked reserved. */
#define BOOT_GDT_ADDR       0x0500ULL  /* GDT: null, null, code64 (0x10), data (0x18) */
#define BOOT_GDT_CODE       0x10
#define BOOT_GDT_DATA       0x18
#define BOOT_GDT_ENTRIES    4
#define BOOT_PARAMS_ADDR    0x7000ULL  /* struct boot_params, the "zero page" (rsi at entry) */
#define BOOT_PML4_ADDR      0x9000ULL  /* identity map of the first 4 GiB with 2 MiB pages: */
#define BOOT_PDPT_ADDR      0xa000ULL  /*   PML4, PDPT, then 4 page directories at 0xb000 */
#define BOOT_PD_ADDR        0xb000ULL
#define BOOT_CMDLINE_ADDR   0x20000ULL
#define BOOT_CMDLINE_MAX    0x10000ULL
#define BOOT_EBDA_START     0x9fc00ULL /* RAM ends here below 1 MiB */
#define BOOT_ACPI_ADDR      0xe0000ULL /* RSDP, then the other tables, up to 1 MiB */
#define BOOT_ACPI_END       0xffff0ULL /* the reset stub lives above */
#define BOOT_RESET_VECTOR   0xffff0ULL /* F000:FFF0, where a real-mode restart jumps */
#define BOOT_KERNEL_ADDR    0x100000ULL /* bzImage protected-mode code is loaded here */
#define BOOT_STACK_TOP      0x8ff0ULL  /* initial rsp (between boot_params and the page tables) */

/* Platform devices whose addresses the tables and the boot path must agree on. */
#define EXITDEV_PORT        0xf4
#define EXITDEV_MMIO_ADDR   0xfef00000ULL /* 4 KiB, reserved in e820; byte 0 is the exit register */
#define EXITDEV_MMIO_SIZE   0x1000ULL
#define ACPI_SLEEP_CTL_PORT 0x600 /* HW-reduced ACPI sleep control register (1 byte) */
#define ACPI_SLEEP_STS_PORT 0x601 /* HW-reduced ACPI sleep status register (1 byte) */
#define ACPI_RESET_PORT     0x602 /* FADT reset register (1 byte), value ACPI_RESET_VALUE */
#define ACPI_RESET_VALUE    0x0f
#define ACPI_GED_GSI        3 /* the Generic Event Device's interrupt: the power button */
#define IOAPIC_ADDR         0xfec00000ULL
#define LAPIC_ADDR          0xfee00000ULL

/* PCI and virtio-mmio, in the 32-bit hole; the DSDT and MCFG describe exactly these. */
#define PCI_MMIO_BASE        0xc0000000ULL /* memory BARs: the root bridge's 32-bit window */
#define PCI_MMIO_SIZE        0x10000000ULL
#define PCI_IO_BASE          0x1000        /* I/O BARs: the root bridge's I/O window */
#define PCI_IO_SIZE          0xf000
#define PCI_ECAM_BASE        0xe0000000ULL /* enhanced configuration access, bus 0 only */
#define PCI_ECAM_SIZE        0x100000ULL
#define PCI_CONFIG_PORT      0xcf8         /* type 1 configuration: address at 0xcf8, data 0xcfc */
#define PCI_INTX_GSI_BASE    16            /* INTx of slot s, pin p (0 = INTA): 16 + (s + p) % 8 */
#define PCI_INTX_GSI(s, p)   (PCI_INTX_GSI_BASE + ((s) + (p)) % 8)
#define VIRTIO_MMIO_BASE     0xd0000000ULL /* virtio-mmio device n at BASE + n * SIZE */
#define VIRTIO_MMIO_SIZE     0x1000ULL
/* virtio-mmio device n has GSI VIRTIO_MMIO_GSIS[n]: the ISA lines nothing else uses. */
#define VIRTIO_MMIO_GSIS     { 5, 6, 7, 9, 10, 11, 12, 13, 14, 15 }
#define VIRTIO_MMIO_MAX      10

/* Descriptor `index` of the boot GDT, so that the vCPU's hidden segment state matches it. */
uint64_t boot_gdt_entry(unsigned index);

#endif
