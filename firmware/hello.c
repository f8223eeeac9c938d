/*
 * The smallest guest vmm boots: prints a line on the 8250 UART at 0x3f8 and leaves through the exit
 * device (port 0xf4) with status 0. The fastest boot test, and a template for guest-side programs.
 * Freestanding: no libc, entered at _start in 64-bit mode with a stack set up by vmm.
 */
#include <stdint.h>

#define UART_BASE 0x3f8
#define UART_LSR  5
#define LSR_THRE  0x20
#define EXIT_PORT 0xf4

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static void putc_uart(char c)
{
	while (!(inb(UART_BASE + UART_LSR) & LSR_THRE))
		;
	outb(UART_BASE, (uint8_t)c);
}

static void puts_uart(const char *s)
{
	while (*s)
		putc_uart(*s++);
}

__attribute__((section(".text.start"), noreturn)) void _start(void)
{
	puts_uart("vmm firmware: hello\n");
	outb(EXIT_PORT, 0);
	for (;;)
		__asm__ volatile("hlt");
}
