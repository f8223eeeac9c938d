/*
 * The smallest guest vmm boots: prints a line on the 8250 UART at 0x3f8 and leaves through the exit
 * device (port 0xf4) with status 0. The fastest boot test, and a template for guest-side programs.
 * Freestanding: no libc, entered at _start in 64-bit mode with a stack set up by vmm and rsi
 * pointing at boot_params, as a Linux kernel is.
 *
 * The command line (--cmdline) may ask for something else, in its first word:
 *   exit=N  leave with status N through the exit device's port
 *   mmio=N  leave with status N through the exit device's MMIO register
 *   hang    halt for ever, with interrupts off (for --timeout); an NMI (what vmm sends when
 *           --timeout expires) panics as Linux's unknown_nmi_panic does: pvpanic first, then
 *           "vmm firmware: NMI" on the console (Linux flushes its console after the panic
 *           notifiers when printk could not write from the NMI), then it leaves with status 0
 *   panic   say it panicked through pvpanic (port 0x505), as Linux's pvpanic driver does
 *   triple  triple-fault: an exception with an empty IDT (vmm's status for a triple fault)
 *   count   count for ever as fast as it can, printing "vmm firmware: tick N" every 2^20 turns
 *           (vm.pause: a guest whose vCPU is always busy and whose progress the host can see)
 */
#include <stdint.h>

#include "lib/io.h"

#define UART_BASE        0x3f8
#define UART_LSR         5
#define LSR_THRE         0x20
#define EXIT_PORT        0xf4
#define EXIT_MMIO        0xfef00000UL
#define BP_CMD_LINE_PTR  0x228 /* struct boot_params: hdr.cmd_line_ptr */
#define BOOT_CS          0x10  /* the code segment vmm enters the guest with */
#define PVPANIC_PORT     0x505
#define PVPANIC_PANICKED 1

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

/* Whether s starts with prefix; *rest is what follows it. */
static int starts(const char *s, const char *prefix, const char **rest)
{
	while (*prefix)
		if (*s++ != *prefix++)
			return 0;
	*rest = s;
	return 1;
}

static uint8_t number(const char *s)
{
	unsigned v = 0;

	while (*s >= '0' && *s <= '9')
		v = v * 10 + (unsigned)(*s++ - '0');
	return (uint8_t)v;
}

static void put_number(uint64_t v)
{
	char digits[20];
	int n = 0;

	do
		digits[n++] = (char)('0' + v % 10);
	while ((v /= 10) && n < 20);
	while (n)
		putc_uart(digits[--n]);
}

static __attribute__((noreturn)) void count(void)
{
	for (uint64_t i = 0;; i++) {
		if (i & ((1 << 20) - 1)) {
			__asm__ volatile("" : : "r"(i) : "memory"); /* a turn the compiler keeps */
			continue;
		}
		puts_uart("vmm firmware: tick ");
		put_number(i >> 20);
		putc_uart('\n');
	}
}

/* The NMI handler: panics (pvpanic), says so, and leaves. */
struct frame {
	uint64_t rip, cs, rflags, rsp, ss;
};

__attribute__((interrupt)) static void nmi(struct frame *f)
{
	(void)f;
	outb(PVPANIC_PORT, PVPANIC_PANICKED);
	puts_uart("vmm firmware: NMI\n");
	outb(EXIT_PORT, 0);
}

/* An IDT with vector 2 (NMI) only, a 64-bit interrupt gate to nmi(), in idt[6]: _start's
 * stack, which lives for ever (a writable section would make the image's one segment RWX). */
static void idt_setup(uint64_t *idt)
{
	struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} idtr = { 6 * 8 - 1, (uint64_t)(uintptr_t)idt };
	uint64_t h = (uint64_t)(uintptr_t)nmi;

	idt[4] = (h & 0xffff) | (uint64_t)BOOT_CS << 16 | 0x8eULL << 40 | (h >> 16 & 0xffff) << 48;
	idt[5] = h >> 32;
	idt[0] = idt[1] = idt[2] = idt[3] = 0;
	__asm__ volatile("lidt %0" : : "m"(idtr) : "memory");
}

/* rdi is unused; the SysV ABI puts the second argument in rsi, where vmm left boot_params. */
__attribute__((section(".text.start"), noreturn)) void _start(uint64_t rdi, const uint8_t *bp)
{
	const char *cmdline = (const char *)(uintptr_t)*(const uint32_t *)(bp + BP_CMD_LINE_PTR);
	const char *arg;
	uint64_t idt[6];

	(void)rdi;
	puts_uart("vmm firmware: hello\n");
	if (starts(cmdline, "mmio=", &arg))
		mmio_write8(EXIT_MMIO, (uint8_t)number(arg));
	else if (starts(cmdline, "hang", &arg)) {
		__asm__ volatile("cli");
		idt_setup(idt);
	} else if (starts(cmdline, "count", &arg)) {
		count();
	} else if (starts(cmdline, "panic", &arg)) {
		outb(PVPANIC_PORT, PVPANIC_PANICKED);
	} else if (starts(cmdline, "triple", &arg)) {
		struct __attribute__((packed)) {
			uint16_t limit;
			uint64_t base;
		} none = { 0, 0 };

		/* #UD finds no gate, nor does the #GP that follows, nor the #DF: a shutdown. */
		__asm__ volatile("lidt %0; ud2" : : "m"(none));
	}
	else
		outb(EXIT_PORT, starts(cmdline, "exit=", &arg) ? number(arg) : 0);
	for (;;)
		__asm__ volatile("hlt");
}
