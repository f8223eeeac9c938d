/* ACPI tables for a hardware-reduced platform: RSDP, XSDT, FADT, DSDT, MADT and MCFG, written into
 * the BIOS area below 1 MiB where Linux finds the RSDP by scanning (and through boot_params). */
#ifndef VMM_ACPI_H
#define VMM_ACPI_H

#include <stdint.h>

#include "arch/x86/layout.h"
#include "memory.h"

#define ACPI_S5_SLP_TYP 5 /* SLP_TYPx the DSDT's _S5_ names; written to the sleep control port */

/* Writes the tables for a->cpus vCPUs, the PCI root bridge (always present) and the virtio-mmio
 * devices a->mmio at BOOT_ACPI_ADDR and returns the RSDP's address in *rsdp. 0, -EINVAL for a
 * bad count, or -ENOSPC when they do not fit below 1 MiB. */
int acpi_build(struct guest_mem *m, const struct boot_args *a, uint64_t *rsdp);

/* The byte sum of a table, which must be 0 mod 256 once its checksum field is set. */
uint8_t acpi_sum(const void *p, uint64_t len);

#endif
