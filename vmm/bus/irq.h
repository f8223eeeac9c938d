/* An interrupt line as a device sees it: the device says the level, the owner of the line (the VM,
 * or a unit test) decides what that means. */
#ifndef VMM_IRQ_H
#define VMM_IRQ_H

#include <stdint.h>

struct irq_line {
	void (*set)(void *opaque, uint32_t gsi, int level);
	void *opaque;
	uint32_t gsi;
};

static inline void irq_line_set(const struct irq_line *l, int level)
{
	if (l->set)
		l->set(l->opaque, l->gsi, level);
}

#endif
