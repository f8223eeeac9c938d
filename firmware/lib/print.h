/* Output on the 8250 UART at 0x3f8 (the guest's ttyS0, vmm's --serial), text into buffers, and
 * leaving through the exit device. */
#ifndef FW_PRINT_H
#define FW_PRINT_H

#include <stdarg.h>
#include <stdint.h>

/* printf's small brother: %s, %c, %d, %u, %x, with l for 64 bits, # for 0x and an optional
 * width (0 pads with zeros): "%02x", "%#lx", "%5u". Nothing else. */
void print(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vprint(const char *fmt, va_list ap);
/* The same into buf, cut to size - 1 bytes and NUL-terminated; returns the length. */
unsigned sprint(char *buf, unsigned size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Writes v as `digits` hex digits and a NUL at dst. */
void hex_string(char *dst, uint64_t v, unsigned digits);

/* Ends the VM with this status (vmm's exit device, port 0xf4). */
__attribute__((noreturn)) void fw_exit(uint8_t status);

#endif
