/* AML encoding (ACPI 6.5 section 20.2) and resource descriptors (section 6.4). */
#include "arch/x86/aml.h"

#include <errno.h>
#include <string.h>

#define AML_ZERO          0x00
#define AML_ONE           0x01
#define AML_NAME_OP       0x08
#define AML_BYTE_PREFIX   0x0a
#define AML_WORD_PREFIX   0x0b
#define AML_DWORD_PREFIX  0x0c
#define AML_STRING_PREFIX 0x0d
#define AML_QWORD_PREFIX  0x0e
#define AML_SCOPE_OP      0x10
#define AML_BUFFER_OP     0x11
#define AML_PACKAGE_OP    0x12
#define AML_METHOD_OP     0x14
#define AML_ARG0_OP       0x68
#define AML_NOTIFY_OP     0x86
#define AML_LEQUAL_OP     0x93
#define AML_IF_OP         0xa0
#define AML_DUAL_NAME     0x2e
#define AML_MULTI_NAME    0x2f
#define AML_EXT_OP        0x5b
#define AML_DEVICE_OP     0x82 /* after AML_EXT_OP */
#define AML_ROOT_CHAR     '\\'
#define AML_ONES          0xff

/* Resource descriptor tags */
#define RD_IRQ_NOFLAGS    0x22 /* small, 2 bytes of mask */
#define RD_IO             0x47 /* small, 7 bytes */
#define RD_END            0x79 /* small, 1 byte of checksum */
#define RD_MEMORY32_FIXED 0x86
#define RD_DWORD_ADDRESS  0x87
#define RD_WORD_ADDRESS   0x88
#define RD_EXT_INTERRUPT  0x89

/* Address space descriptors: resource types and general flags (section 6.4.3.5) */
#define RD_ADDR_MEMORY    0
#define RD_ADDR_IO        1
#define RD_ADDR_BUS       2
#define RD_ADDR_MIN_FIXED (1 << 2)
#define RD_ADDR_MAX_FIXED (1 << 3)
#define RD_IO_ENTIRE      3        /* ISA and non-ISA ports */
#define RD_MEM_RW         (1 << 0) /* non-cacheable: _MEM 0 */
#define RD_INT_CONSUMER   (1 << 0)
#define RD_INT_EDGE       (1 << 1)

void aml_init(struct aml *a, uint8_t *buf, size_t cap)
{
	memset(a, 0, sizeof(*a));
	a->buf = buf;
	a->cap = cap;
}

static void aml_fail(struct aml *a, int err)
{
	if (!a->err)
		a->err = err;
}

static void aml_insert(struct aml *a, size_t pos, const void *p, size_t n)
{
	if (a->err)
		return;
	if (n > a->cap - a->len) {
		aml_fail(a, -ENOSPC);
		return;
	}
	memmove(a->buf + pos + n, a->buf + pos, a->len - pos);
	memcpy(a->buf + pos, p, n);
	a->len += n;
}

static void aml_bytes(struct aml *a, const void *p, size_t n)
{
	aml_insert(a, a->len, p, n);
}

static void aml_byte(struct aml *a, uint8_t b)
{
	aml_bytes(a, &b, 1);
}

static void aml_le(struct aml *a, uint64_t v, unsigned n)
{
	uint8_t b[8];

	for (unsigned i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	aml_bytes(a, b, n);
}

long aml_finish(struct aml *a)
{
	if (!a->err && a->depth)
		aml_fail(a, -EINVAL);
	return a->err ? a->err : (long)a->len;
}

static size_t encode_integer(uint64_t v, uint8_t *out)
{
	unsigned n;

	if (v == 0 || v == 1 || v == UINT64_MAX) {
		out[0] = v == 0 ? AML_ZERO : v == 1 ? AML_ONE : AML_ONES;
		return 1;
	}
	if (v <= 0xff) {
		out[0] = AML_BYTE_PREFIX;
		n = 1;
	} else if (v <= 0xffff) {
		out[0] = AML_WORD_PREFIX;
		n = 2;
	} else if (v <= 0xffffffff) {
		out[0] = AML_DWORD_PREFIX;
		n = 4;
	} else {
		out[0] = AML_QWORD_PREFIX;
		n = 8;
	}
	for (unsigned i = 0; i < n; i++)
		out[1 + i] = (uint8_t)(v >> (8 * i));
	return 1 + n;
}

void aml_integer(struct aml *a, uint64_t v)
{
	uint8_t b[9];

	aml_bytes(a, b, encode_integer(v, b));
}

void aml_string(struct aml *a, const char *s)
{
	aml_byte(a, AML_STRING_PREFIX);
	aml_bytes(a, s, strlen(s) + 1);
}

static bool eisa_letter(char c)
{
	return c >= 'A' && c <= 'Z';
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void aml_eisaid(struct aml *a, const char *id)
{
	uint32_t v = 0;

	if (strlen(id) != 7 || !eisa_letter(id[0]) || !eisa_letter(id[1]) || !eisa_letter(id[2])) {
		aml_fail(a, -EINVAL);
		return;
	}
	/* Three 5-bit letters ('A' is 1), then the product number, stored big-endian. */
	v = (uint32_t)(id[0] - '@') << 26 | (uint32_t)(id[1] - '@') << 21 |
	    (uint32_t)(id[2] - '@') << 16;
	for (int i = 3; i < 7; i++) {
		int d = hex_digit(id[i]);
		if (d < 0) {
			aml_fail(a, -EINVAL);
			return;
		}
		v |= (uint32_t)d << (4 * (6 - i));
	}
	/* Always a DWord, even when it would fit a shorter prefix: that is what an EisaId is. */
	aml_byte(a, AML_DWORD_PREFIX);
	aml_le(a, __builtin_bswap32(v), 4);
}

static bool name_char(char c, bool first)
{
	return c == '_' || (c >= 'A' && c <= 'Z') || (!first && c >= '0' && c <= '9');
}

/* NameString: an optional root prefix, then NameSegs of four characters joined by the dual or
 * multi name prefix. */
static void aml_namestring(struct aml *a, const char *name)
{
	uint8_t segs[4 * 16];
	unsigned nr = 0;

	if (*name == AML_ROOT_CHAR) {
		aml_byte(a, AML_ROOT_CHAR);
		name++;
	}
	while (*name) {
		size_t n = strcspn(name, ".");

		if (n == 0 || n > 4 || nr == 16 || !name_char(name[0], true)) {
			aml_fail(a, -EINVAL);
			return;
		}
		memset(&segs[4 * nr], '_', 4);
		for (size_t i = 0; i < n; i++) {
			if (!name_char(name[i], false)) {
				aml_fail(a, -EINVAL);
				return;
			}
			segs[4 * nr + i] = (uint8_t)name[i];
		}
		nr++;
		name += n;
		if (*name == '.' && !*++name) {
			aml_fail(a, -EINVAL);
			return;
		}
	}
	if (nr == 0) {
		aml_byte(a, AML_ZERO); /* NullName */
		return;
	}
	if (nr == 2) {
		aml_byte(a, AML_DUAL_NAME);
	} else if (nr > 2) {
		aml_byte(a, AML_MULTI_NAME);
		aml_byte(a, (uint8_t)nr);
	}
	aml_bytes(a, segs, 4 * nr);
}

void aml_name(struct aml *a, const char *name)
{
	aml_byte(a, AML_NAME_OP);
	aml_namestring(a, name);
}

static void aml_open(struct aml *a, bool buffer)
{
	if (a->depth == AML_MAX_DEPTH) {
		aml_fail(a, -EINVAL);
		return;
	}
	a->open[a->depth].start = a->len;
	a->open[a->depth].buffer = buffer;
	a->depth++;
}

void aml_end(struct aml *a)
{
	size_t start, body;
	uint8_t pkg[4];
	unsigned n;

	if (!a->depth) {
		aml_fail(a, -EINVAL);
		return;
	}
	a->depth--;
	start = a->open[a->depth].start;
	if (a->open[a->depth].buffer) {
		uint8_t b[9];
		aml_insert(a, start, b, encode_integer(a->len - start, b));
	}
	if (a->err)
		return;
	/* PkgLength counts its own bytes: one byte holds up to 63, else the first byte says how
	 * many follow and carries the low nibble. */
	body = a->len - start;
	if (body + 1 <= 0x3f) {
		n = 1;
		pkg[0] = (uint8_t)(body + 1);
	} else {
		for (n = 2; n <= 4 && body + n >= (1UL << (4 + 8 * (n - 1))); n++)
			;
		if (n > 4) {
			aml_fail(a, -ENOSPC);
			return;
		}
		body += n;
		pkg[0] = (uint8_t)((n - 1) << 6 | (body & 0xf));
		for (unsigned i = 1; i < n; i++)
			pkg[i] = (uint8_t)(body >> (4 + 8 * (i - 1)));
	}
	aml_insert(a, start, pkg, n);
}

void aml_scope_begin(struct aml *a, const char *name)
{
	aml_byte(a, AML_SCOPE_OP);
	aml_open(a, false);
	aml_namestring(a, name);
}

void aml_device_begin(struct aml *a, const char *name)
{
	aml_byte(a, AML_EXT_OP);
	aml_byte(a, AML_DEVICE_OP);
	aml_open(a, false);
	aml_namestring(a, name);
}

void aml_package_begin(struct aml *a, uint8_t elements)
{
	aml_byte(a, AML_PACKAGE_OP);
	aml_open(a, false);
	aml_byte(a, elements);
}

void aml_method_begin(struct aml *a, const char *name, unsigned args, bool serialized)
{
	if (args > 7)
		aml_fail(a, -EINVAL);
	aml_byte(a, AML_METHOD_OP);
	aml_open(a, false);
	aml_namestring(a, name);
	aml_byte(a, (uint8_t)((args & 7) | (serialized ? 1 << 3 : 0))); /* MethodFlags */
}

void aml_if_begin(struct aml *a)
{
	aml_byte(a, AML_IF_OP);
	aml_open(a, false);
}

void aml_lequal(struct aml *a)
{
	aml_byte(a, AML_LEQUAL_OP);
}

void aml_arg(struct aml *a, unsigned n)
{
	if (n > 6)
		aml_fail(a, -EINVAL);
	aml_byte(a, (uint8_t)(AML_ARG0_OP + (n % 7)));
}

void aml_notify(struct aml *a, const char *object, uint64_t value)
{
	aml_byte(a, AML_NOTIFY_OP);
	aml_namestring(a, object);
	aml_integer(a, value);
}

void aml_rt_begin(struct aml *a)
{
	aml_byte(a, AML_BUFFER_OP);
	aml_open(a, true);
}

void aml_rt_end(struct aml *a)
{
	/* Checksum 0: "treated as if the checksum operation succeeded" (6.4.2.9). */
	aml_byte(a, RD_END);
	aml_byte(a, 0);
	aml_end(a);
}

void aml_rt_io(struct aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t len)
{
	aml_byte(a, RD_IO);
	aml_byte(a, 1); /* 16-bit decode */
	aml_le(a, min, 2);
	aml_le(a, max, 2);
	aml_byte(a, align);
	aml_byte(a, len);
}

void aml_rt_irq_noflags(struct aml *a, unsigned irq)
{
	if (irq > 15) {
		aml_fail(a, -EINVAL);
		return;
	}
	aml_byte(a, RD_IRQ_NOFLAGS);
	aml_le(a, 1U << irq, 2);
}

void aml_rt_memory32_fixed(struct aml *a, uint32_t base, uint32_t len)
{
	aml_byte(a, RD_MEMORY32_FIXED);
	aml_le(a, 9, 2);
	aml_byte(a, 1); /* read-write */
	aml_le(a, base, 4);
	aml_le(a, len, 4);
}

void aml_rt_interrupt(struct aml *a, uint32_t gsi, bool level)
{
	aml_byte(a, RD_EXT_INTERRUPT);
	aml_le(a, 6, 2);
	aml_byte(a, RD_INT_CONSUMER | (level ? 0 : RD_INT_EDGE)); /* active-high, exclusive */
	aml_byte(a, 1);
	aml_le(a, gsi, 4);
}

/* Word and DWord address space descriptors: type, flags, then granularity, min, max,
 * translation and length, each of `size` bytes. */
static void aml_rt_address(struct aml *a, uint8_t tag, unsigned size, uint8_t type,
			   uint8_t type_flags, uint32_t min, uint32_t max)
{
	aml_byte(a, tag);
	aml_le(a, 3 + 5 * size, 2);
	aml_byte(a, type);
	aml_byte(a, RD_ADDR_MIN_FIXED | RD_ADDR_MAX_FIXED); /* producer, positive decode */
	aml_byte(a, type_flags);
	aml_le(a, 0, size);
	aml_le(a, min, size);
	aml_le(a, max, size);
	aml_le(a, 0, size);
	aml_le(a, (uint64_t)max - min + 1, size);
}

void aml_rt_word_bus(struct aml *a, uint16_t min, uint16_t max)
{
	aml_rt_address(a, RD_WORD_ADDRESS, 2, RD_ADDR_BUS, 0, min, max);
}

void aml_rt_word_io(struct aml *a, uint16_t min, uint16_t max)
{
	aml_rt_address(a, RD_WORD_ADDRESS, 2, RD_ADDR_IO, RD_IO_ENTIRE, min, max);
}

void aml_rt_dword_memory(struct aml *a, uint32_t min, uint32_t max)
{
	aml_rt_address(a, RD_DWORD_ADDRESS, 4, RD_ADDR_MEMORY, RD_MEM_RW, min, max);
}
