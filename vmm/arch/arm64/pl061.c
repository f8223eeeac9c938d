#include "arch/arm64/pl061.h"

#include <string.h>

#define PL061_DATA   0x000 /* to 0x3fc: address bits 9:2 mask the pins an access touches */
#define PL061_DIR    0x400
#define PL061_IS     0x404
#define PL061_IBE    0x408
#define PL061_IEV    0x40c
#define PL061_IE     0x410
#define PL061_RIS    0x414
#define PL061_MIS    0x418
#define PL061_IC     0x41c
#define PL061_AFSEL  0x420
#define PL061_ID     0xfe0 /* peripheral and PrimeCell IDs, which the AMBA bus probes: 8 bytes */

static const uint8_t pl061_id[8] = { 0x61, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1 };

void pl061_init(struct pl061 *g, struct irq_line line)
{
	memset(g, 0, sizeof(*g));
	pthread_mutex_init(&g->lock, NULL);
	g->line = line;
}

void pl061_destroy(struct pl061 *g)
{
	pthread_mutex_destroy(&g->lock);
}

/* What each pin shows: the guest's level on an output, vmm's on an input. */
static uint8_t pins(const struct pl061 *g)
{
	return (uint8_t)((g->data & g->dir) | (g->in & ~g->dir));
}

/* With the lock held, after anything that may change the pins (from `before`), the sense or the
 * mask: an edge the sense asks for latches its pin's raw status; a level-sensitive pin's raw
 * status is its level; the line is high while an enabled pin's status is. */
static void update(struct pl061 *g, uint8_t before)
{
	uint8_t now = pins(g), changed = before ^ now;
	/* an edge: both ways (IBE), or the way IEV names (1: to high) */
	uint8_t edge = (uint8_t)(changed & ~g->is & (g->ibe | ~(g->iev ^ now)));
	uint8_t level = (uint8_t)(g->is & ~(g->iev ^ now));
	bool high;

	g->ris = (uint8_t)(((g->ris | edge) & ~g->is) | level);
	high = (g->ris & g->ie) != 0;
	if (high != g->level) {
		g->level = high;
		irq_line_set(&g->line, high);
	}
}

static uint8_t read_reg(struct pl061 *g, uint64_t offset)
{
	if (offset < PL061_DIR) {
		uint8_t mask = (uint8_t)(offset >> 2), v = pins(g) & mask;
		uint8_t seen = v & g->held & (uint8_t)~g->dir;

		/* A held key the guest has now seen pressed is let go. */
		if (seen) {
			uint8_t before = pins(g);

			g->held &= (uint8_t)~seen;
			g->in &= (uint8_t)~seen;
			update(g, before);
		}
		return v;
	}
	switch (offset) {
	case PL061_DIR:
		return g->dir;
	case PL061_IS:
		return g->is;
	case PL061_IBE:
		return g->ibe;
	case PL061_IEV:
		return g->iev;
	case PL061_IE:
		return g->ie;
	case PL061_RIS:
		return g->ris;
	case PL061_MIS:
		return g->ris & g->ie;
	case PL061_AFSEL:
		return g->afsel;
	}
	if (offset >= PL061_ID && offset < PL061_ID + 4 * sizeof(pl061_id))
		return pl061_id[(offset - PL061_ID) / 4];
	return 0; /* GPIOIC is write-only; the rest is reserved */
}

static void write_reg(struct pl061 *g, uint64_t offset, uint8_t v)
{
	uint8_t before = pins(g);

	if (offset < PL061_DIR) {
		uint8_t mask = (uint8_t)(offset >> 2);

		g->data = (uint8_t)((g->data & ~mask) | (v & mask));
	} else {
		switch (offset) {
		case PL061_DIR:
			g->dir = v;
			break;
		case PL061_IS:
			g->is = v;
			break;
		case PL061_IBE:
			g->ibe = v;
			break;
		case PL061_IEV:
			g->iev = v;
			break;
		case PL061_IE:
			g->ie = v;
			break;
		case PL061_IC: /* clears latched edges; a level stays while it holds */
			g->ris &= (uint8_t)~v;
			break;
		case PL061_AFSEL:
			g->afsel = v;
			break;
		default:
			return; /* read-only or reserved */
		}
	}
	update(g, before);
}

void pl061_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct pl061 *g = opaque;
	bool reg = !(offset & 3) && offset < PL061_SIZE;

	pthread_mutex_lock(&g->lock);
	if (is_write) {
		if (reg && len)
			write_reg(g, offset, data[0]);
	} else {
		memset(data, 0, len);
		if (reg && len)
			data[0] = read_reg(g, offset);
	}
	pthread_mutex_unlock(&g->lock);
}

void pl061_press(struct pl061 *g, unsigned pin)
{
	uint8_t bit = (uint8_t)(1u << (pin % PL061_NR_PINS)), before;

	pthread_mutex_lock(&g->lock);
	before = pins(g);
	g->in |= bit;
	g->held |= bit;
	update(g, before);
	pthread_mutex_unlock(&g->lock);
}
