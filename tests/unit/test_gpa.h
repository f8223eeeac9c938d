/* The unit tests' guest addresses: offsets into RAM, which starts at RAM_BASE (0 on x86, 1 GiB on
 * arm64), so that the same tests run on either. */
#ifndef VMM_TEST_GPA_H
#define VMM_TEST_GPA_H

#include <stdint.h>

#include "arch.h"

#define TEST_GPA(off) (RAM_BASE + (uint64_t)(off))

#endif
