/* Port I/O, device registers and memory barriers for the freestanding firmware (x86-64).
 *
 * The firmware runs on vmm's identity map of the first 4 GiB, so a pointer is a guest physical
 * address: what the rings hold and what the transports are told is the pointer's value. */
#ifndef FW_IO_H
#define FW_IO_H

#include <stdint.h>

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint16_t inw(uint16_t port)
{
	uint16_t v;

	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;

	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

/* Registers in memory space: one access of exactly the width asked each (virtio-mmio, for one,
 * accepts only 32-bit accesses to its registers, 4.2.2.2). */
static inline uint8_t mmio_read8(uintptr_t a)
{
	return *(volatile uint8_t *)a;
}

static inline uint16_t mmio_read16(uintptr_t a)
{
	return *(volatile uint16_t *)a;
}

static inline uint32_t mmio_read32(uintptr_t a)
{
	return *(volatile uint32_t *)a;
}

static inline void mmio_write8(uintptr_t a, uint8_t v)
{
	*(volatile uint8_t *)a = v;
}

static inline void mmio_write16(uintptr_t a, uint16_t v)
{
	*(volatile uint16_t *)a = v;
}

static inline void mmio_write32(uintptr_t a, uint32_t v)
{
	*(volatile uint32_t *)a = v;
}

/* Shared memory fields the other side may read or write at any time (ring indices, flags, event
 * indices): read and written exactly once, where the code says. */
#define READ_ONCE(x)     (*(const volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))

/* Barriers between driver and device over the rings (the spec's "suitable memory barrier").
 * x86 orders stores with stores and loads with loads, so for those two only the compiler has to
 * be stopped; a store followed by a load of another location may still pass it, which only mfence
 * prevents. Each use says which pair it orders. */
static inline void virtio_wmb(void)
{
	__asm__ volatile("" : : : "memory");
}

static inline void virtio_rmb(void)
{
	__asm__ volatile("" : : : "memory");
}

static inline void virtio_mb(void)
{
	__asm__ volatile("mfence" : : : "memory");
}

static inline void cpu_relax(void)
{
	__asm__ volatile("pause" : : : "memory");
}

#endif
