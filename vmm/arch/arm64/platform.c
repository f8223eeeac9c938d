/* arm64's platform devices: the exit device, the PL031 (ARM's PrimeCell RTC, DDI 0224: a
 * seconds counter the guest reads at boot; its alarm interrupt is never raised), the PL061 whose
 * pin 3 is the power button (pl061.c), pvpanic, and PCI's I/O space as an MMIO window. Power off
 * and reset are PSCI calls, which KVM turns into system events (cpu/vcpu.c). */
#include "arch.h"

#include <string.h>
#include <time.h>

#define PL031_DR   0x00 /* data: the counter, read only */
#define PL031_MR   0x04 /* match */
#define PL031_LR   0x08 /* load: sets the counter */
#define PL031_CR   0x0c /* control: bit 0, the counter runs (always, here) */
#define PL031_IMSC 0x10 /* interrupt mask */
#define PL031_RIS  0x14 /* raw interrupt status */
#define PL031_MIS  0x18 /* masked interrupt status */
#define PL031_ICR  0x1c /* interrupt clear */
#define PL031_ID   0xfe0 /* peripheral and PrimeCell IDs, which the AMBA bus probes: 8 bytes */

static const uint8_t pl031_id[8] = { 0x31, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1 };

void platform_init(struct platform *p, void (*event)(void *, enum platform_event, int),
		   void *opaque, struct irq_line line)
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	p->sink = (struct platform_sink){ event, opaque };
	p->rtc_control = 1;
	pl061_init(&p->gpio, line);
}

void platform_destroy(struct platform *p)
{
	pl061_destroy(&p->gpio);
	pthread_mutex_destroy(&p->lock);
}

/* The device tree gives the pin to gpio-keys as KEY_POWER. */
void platform_power_button(struct platform *p)
{
	pl061_press(&p->gpio, POWER_BUTTON_PIN);
}

/* 32-bit registers; other widths read as 0 and are ignored. */
void platform_pl031_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct platform *p = opaque;
	uint32_t v = 0;

	if (len != 4) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	pthread_mutex_lock(&p->lock);
	if (is_write) {
		memcpy(&v, data, 4);
		if (offset == PL031_LR)
			p->rtc_offset = (int64_t)v - (int64_t)time(NULL);
		else if (offset == PL031_MR)
			p->rtc_match = v;
		else if (offset == PL031_CR)
			p->rtc_control = 1; /* it cannot be stopped (bit 0 is write-once-set) */
		else if (offset == PL031_IMSC)
			p->rtc_mask = v & 1;
	} else {
		if (offset == PL031_DR)
			v = (uint32_t)((int64_t)time(NULL) + p->rtc_offset);
		else if (offset == PL031_MR)
			v = p->rtc_match;
		else if (offset == PL031_LR)
			v = (uint32_t)((int64_t)time(NULL) + p->rtc_offset);
		else if (offset == PL031_CR)
			v = p->rtc_control;
		else if (offset == PL031_IMSC)
			v = p->rtc_mask;
		else if (offset >= PL031_ID && offset < PL031_ID + 4 * sizeof(pl031_id) && !(offset & 3))
			v = pl031_id[(offset - PL031_ID) / 4];
		memcpy(data, &v, 4);
	}
	pthread_mutex_unlock(&p->lock);
}

/* PCI's I/O space: port p is the byte at PCI_PIO_WINDOW + p. */
static void pio_window_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			  bool is_write)
{
	bus_access(((struct platform *)opaque)->pio, offset, data, len, is_write);
}

int platform_register(struct platform *p, struct bus *pio, struct bus *mmio)
{
	int ret;

	p->pio = pio;
	if ((ret = bus_register(mmio, EXITDEV_MMIO_ADDR, EXITDEV_MMIO_SIZE, platform_exit_io, p,
				"exit")) ||
	    (ret = bus_register(mmio, RTC_BASE, RTC_SIZE, platform_pl031_io, p, "pl031")) ||
	    (ret = bus_register(mmio, GPIO_BASE, GPIO_SIZE, pl061_io, &p->gpio, "pl061")) ||
	    (ret = bus_register(mmio, PVPANIC_BASE, PVPANIC_SIZE, platform_pvpanic_io, p,
				"pvpanic")) ||
	    (ret = bus_register(mmio, PCI_PIO_WINDOW, PCI_PIO_WINDOW_SIZE, pio_window_io, p,
				"pci-io")))
		return ret;
	return 0;
}
