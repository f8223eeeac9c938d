#include "lib/print.h"
#include "lib/io.h"

#include <stdbool.h>

#define UART_BASE 0x3f8
#define UART_LSR  5    /* line status register */
#define LSR_THRE  0x20 /* the transmitter takes a byte */
#define EXIT_PORT 0xf4

/* Where formatted text goes: the UART, or a buffer. */
struct sink {
	char *buf; /* NULL: the UART */
	unsigned size, len;
};

static void put(struct sink *s, char c)
{
	if (!s->buf) {
		while (!(inb(UART_BASE + UART_LSR) & LSR_THRE))
			;
		outb(UART_BASE, (uint8_t)c);
	} else if (s->len + 1 < s->size) {
		s->buf[s->len++] = c;
	}
}

static void put_number(struct sink *s, uint64_t v, unsigned base, unsigned width, char pad)
{
	char digits[24];
	unsigned n = 0;

	do
		digits[n++] = "0123456789abcdef"[v % base];
	while ((v /= base) && n < sizeof(digits));
	while (width > n && width--)
		put(s, pad);
	while (n)
		put(s, digits[--n]);
}

static void format(struct sink *s, const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		unsigned width = 0;
		bool wide = false, alt = false;
		char pad = ' ';
		int64_t v;

		if (*fmt != '%') {
			put(s, *fmt);
			continue;
		}
		if (*++fmt == '#') {
			alt = true;
			fmt++;
		}
		if (*fmt == '0')
			pad = '0';
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (unsigned)(*fmt++ - '0');
		if (*fmt == 'l') {
			wide = true;
			fmt++;
		}
		switch (*fmt) {
		case 's':
			for (const char *p = va_arg(ap, const char *); *p; p++)
				put(s, *p);
			break;
		case 'c':
			put(s, (char)va_arg(ap, int));
			break;
		case 'd':
			v = wide ? va_arg(ap, int64_t) : va_arg(ap, int);
			if (v < 0)
				put(s, '-');
			put_number(s, v < 0 ? -(uint64_t)v : (uint64_t)v, 10, width, pad);
			break;
		case 'u':
		case 'x':
			if (alt && *fmt == 'x') {
				put(s, '0');
				put(s, 'x');
			}
			put_number(s, wide ? va_arg(ap, uint64_t) : va_arg(ap, unsigned),
				   *fmt == 'u' ? 10 : 16, width, pad);
			break;
		case '\0':
			return;
		default:
			put(s, *fmt);
		}
	}
}

void vprint(const char *fmt, va_list ap)
{
	struct sink uart = { 0 };

	format(&uart, fmt, ap);
}

void print(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprint(fmt, ap);
	va_end(ap);
}

unsigned sprint(char *buf, unsigned size, const char *fmt, ...)
{
	struct sink s = { .buf = buf, .size = size };
	va_list ap;

	va_start(ap, fmt);
	format(&s, fmt, ap);
	va_end(ap);
	if (size)
		buf[s.len] = '\0';
	return s.len;
}

void hex_string(char *dst, uint64_t v, unsigned digits)
{
	dst[digits] = '\0';
	while (digits--) {
		dst[digits] = "0123456789abcdef"[v & 0xf];
		v >>= 4;
	}
}

void fw_exit(uint8_t status)
{
	outb(EXIT_PORT, status);
	for (;;) /* vmm has stopped the vCPU already; nothing gets here */
		__asm__ volatile("cli; hlt");
}
