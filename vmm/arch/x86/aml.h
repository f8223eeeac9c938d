/* A small AML writer (ACPI 6.5 chapter 20, resource descriptors from chapter 6.4): just the terms
 * the DSDT needs, written into a caller's buffer.
 *
 * Packages nest: aml_*_begin() opens a term whose PkgLength is only known at its end, and
 * aml_end() closes the innermost one. Errors (no room, too deep, unbalanced) are sticky and
 * reported once by aml_finish(), so a table is written without checking every call. */
#ifndef VMM_AML_H
#define VMM_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AML_MAX_DEPTH 8

struct aml {
	uint8_t *buf;
	size_t len, cap;
	int err; /* first error: -ENOSPC or -EINVAL */
	unsigned depth;
	struct {
		size_t start; /* where the PkgLength goes: just after the opcode */
		bool buffer;  /* a Buffer: its BufferSize goes after the PkgLength */
	} open[AML_MAX_DEPTH];
};

void aml_init(struct aml *a, uint8_t *buf, size_t cap);
/* The length written, or the first error. Every opened term must have been closed. */
long aml_finish(struct aml *a);

/* Names are ASL-style paths: "\\_SB.PCI0", "_HID", "COM1"; segments shorter than four characters
 * are padded with '_' as ASL does. */
void aml_name(struct aml *a, const char *name); /* Name (name, <the next term>) */
void aml_scope_begin(struct aml *a, const char *name);
void aml_device_begin(struct aml *a, const char *name);
void aml_package_begin(struct aml *a, uint8_t elements);
/* Method (name, args, Serialized or NotSerialized) { ... } */
void aml_method_begin(struct aml *a, const char *name, unsigned args, bool serialized);
/* If (predicate) { ... }: the predicate is the first term written after it. */
void aml_if_begin(struct aml *a);
void aml_end(struct aml *a);

/* Expressions and statements: LEqual (the two terms that follow), ArgN, Notify (object, value). */
void aml_lequal(struct aml *a);
void aml_arg(struct aml *a, unsigned n);
void aml_notify(struct aml *a, const char *object, uint64_t value);

/* Data objects, each in the shortest encoding (Zero, One, Ones, Byte..QWord). */
void aml_integer(struct aml *a, uint64_t v);
void aml_string(struct aml *a, const char *s);
/* EisaId ("PNP0A08"): three letters and four hex digits compressed into a DWord. */
void aml_eisaid(struct aml *a, const char *id);

/* ResourceTemplate () { ... }: a Buffer of resource descriptors closed by an end tag. */
void aml_rt_begin(struct aml *a);
void aml_rt_end(struct aml *a);
/* IO (Decode16, min, max, align, len) */
void aml_rt_io(struct aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t len);
/* IRQNoFlags () { irq } */
void aml_rt_irq_noflags(struct aml *a, unsigned irq);
/* Memory32Fixed (ReadWrite, base, len) */
void aml_rt_memory32_fixed(struct aml *a, uint32_t base, uint32_t len);
/* Interrupt (ResourceConsumer, Level or Edge, ActiveHigh, Exclusive) { gsi } */
void aml_rt_interrupt(struct aml *a, uint32_t gsi, bool level);
/* WordBusNumber / WordIO (EntireRange) / DWordMemory (NonCacheable, ReadWrite): a bridge's
 * window, ResourceProducer, MinFixed, MaxFixed, PosDecode, no translation. */
void aml_rt_word_bus(struct aml *a, uint16_t min, uint16_t max);
void aml_rt_word_io(struct aml *a, uint16_t min, uint16_t max);
void aml_rt_dword_memory(struct aml *a, uint32_t min, uint32_t max);

#endif
