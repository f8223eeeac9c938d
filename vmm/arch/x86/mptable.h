/* The MP table (Intel MultiProcessor Specification 1.4): a floating pointer at the start of the
 * EBDA and the configuration table after it, describing what the ACPI tables describe. */
#ifndef VMM_MPTABLE_H
#define VMM_MPTABLE_H

#include <stdint.h>

#include "memory.h"

/* Writes the floating pointer at BOOT_EBDA_START and the configuration table for `cpus` vCPUs
 * after it, ending below BOOT_ACPI_ADDR. 0, or -EINVAL for a count the MADT would refuse too. */
int mptable_build(struct guest_mem *m, unsigned cpus);

#endif
