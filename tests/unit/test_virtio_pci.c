/* The virtio-pci transport, driven the way Linux's virtio_pci drivers drive it: the capability
 * chain, feature negotiation and queue setup through the common configuration, doorbells, MSI-X
 * with masking and pending bits, INTx with the read-to-clear ISR, the PCI_CFG window, BAR moves,
 * and the legacy register block of a transitional device. No KVM: the vm_* calls fail and every
 * interrupt and doorbell is observed on its eventfd. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "bus/pci.h"
#include "test_gpa.h"
#include "virtio/9p.h"
#include "virtio/balloon.h"
#include "virtio/blk.h"
#include "virtio/console.h"
#include "virtio/net.h"
#include "virtio/pci.h"
#include "virtio/scsi.h"
#include "vm.h"

#define DUMMY_FEATURE 5
#define NR_QUEUES     2
#define QUEUE_MAX     16

struct region {
	bool found;
	uint8_t bar;
	uint32_t off, len;
};

struct fixture {
	struct vm vm;
	struct guest_mem mem;
	struct pci_host host;
	struct virtio_dev dev;
	struct virtio_pci *vp;
	uint8_t config[8];
	int config_writes;
	int irq_routes; /* the device's irq_route calls */
	unsigned slot;
	/* What the driver found, as virtio_pci_modern finds it. */
	struct region cap[VIRTIO_PCI_CAP_PCI_CFG + 1];
	uint32_t notify_mult;
	unsigned cfg_cap, msix_cap;
};

static void dummy_config_write(struct virtio_dev *d, uint32_t off, uint32_t len)
{
	struct fixture *f = d->priv;

	f->config_writes++;
}

static void dummy_irq_route(struct virtio_dev *d)
{
	struct fixture *f = d->priv;

	f->irq_routes++;
}

static const struct virtio_dev_ops dummy_ops = {
	.name = "dummy",
	.device_id = VIRTIO_ID_RNG, /* one of the types with a transitional ID */
	.pci_class = 0xff0000,
	.config_write = dummy_config_write,
	.irq_route = dummy_irq_route,
};

static int setup_common(void **state, bool legacy)
{
	struct fixture *f = calloc(1, sizeof(*f));

	f->vm.vm_fd = -1;
	f->vm.kvm_fd = -1;
	pthread_mutex_init(&f->vm.gsi_lock, NULL);
	bus_init(&f->vm.pio, "pio");
	bus_init(&f->vm.mmio, "mmio");
	assert_int_equal(gmem_init(&f->mem, 4 << 20), 0);
	assert_int_equal(pci_host_init(&f->host, &f->vm), 0);
	assert_int_equal(virtio_dev_init(&f->dev, &dummy_ops, f, "dummy0", &f->mem, NULL,
					 1ULL << DUMMY_FEATURE, NR_QUEUES, QUEUE_MAX),
			 0);
	memcpy(f->config, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
	f->dev.config = f->config;
	f->dev.config_len = sizeof(f->config);
	assert_int_equal(virtio_pci_create(&f->host, &f->dev, legacy, &f->vp), 0);
	f->slot = f->vp->pci.slot;
	assert_int_equal(f->slot, 1);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_common(state, false);
}

static int setup_legacy(void **state)
{
	return setup_common(state, true);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	virtio_pci_destroy(f->vp);
	assert_null(f->dev.transport);
	virtio_dev_destroy(&f->dev);
	pci_host_destroy(&f->host);
	assert_int_equal(f->vm.pio.nr, 0);
	assert_int_equal(f->vm.mmio.nr, 0);
	bus_destroy(&f->vm.pio);
	bus_destroy(&f->vm.mmio);
	free(f->vm.routes);
	pthread_mutex_destroy(&f->vm.gsi_lock);
	gmem_free(&f->mem);
	free(f);
	return 0;
}

/* Configuration space through ECAM. */

static uint32_t cfg_read(struct fixture *f, unsigned reg, uint32_t len)
{
	uint8_t b[4] = { 0 };

	assert_true(bus_access(&f->vm.mmio, PCI_ECAM_BASE + ((uint64_t)f->slot << 15) + reg, b, len,
			       false));
	return pci_get32(b);
}

static void cfg_write(struct fixture *f, unsigned reg, uint32_t v, uint32_t len)
{
	uint8_t b[4];

	pci_put32(b, v);
	assert_true(bus_access(&f->vm.mmio, PCI_ECAM_BASE + ((uint64_t)f->slot << 15) + reg, b, len,
			       true));
}

static uint64_t bar_addr(struct fixture *f, unsigned n)
{
	uint32_t lo = cfg_read(f, PCI_BASE_ADDRESS_0 + 4 * n, 4);
	uint64_t hi;

	if (lo & PCI_BAR_IO_FLAG)
		return lo & ~3u;
	hi = (lo & PCI_BAR_MEM64_FLAG) ? cfg_read(f, PCI_BASE_ADDRESS_0 + 4 * n + 4, 4) : 0;
	return (lo & ~0xfu) | hi << 32;
}

/* Sizing as Linux does it: decoding off, all-ones, read back, restore. */
static uint64_t bar_size(struct fixture *f, unsigned n)
{
	uint16_t cmd = (uint16_t)cfg_read(f, PCI_COMMAND, 2);
	uint32_t lo = cfg_read(f, PCI_BASE_ADDRESS_0 + 4 * n, 4), mask;

	cfg_write(f, PCI_COMMAND, 0, 2);
	cfg_write(f, PCI_BASE_ADDRESS_0 + 4 * n, 0xffffffff, 4);
	mask = cfg_read(f, PCI_BASE_ADDRESS_0 + 4 * n, 4);
	cfg_write(f, PCI_BASE_ADDRESS_0 + 4 * n, lo, 4);
	cfg_write(f, PCI_COMMAND, cmd, 2);
	mask &= (lo & PCI_BAR_IO_FLAG) ? ~3u : ~0xfu;
	return mask ? (uint32_t)(~mask + 1) : 0;
}

static uint64_t mem_read(struct fixture *f, uint64_t addr, uint32_t len)
{
	uint8_t b[8] = { 0 };
	uint64_t v = 0;

	assert_true(bus_access(&f->vm.mmio, addr, b, len, false));
	for (uint32_t i = 0; i < len; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

static void mem_write(struct fixture *f, uint64_t addr, uint64_t v, uint32_t len)
{
	uint8_t b[8];

	for (uint32_t i = 0; i < len; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	assert_true(bus_access(&f->vm.mmio, addr, b, len, true));
}

static uint32_t io_read(struct fixture *f, uint64_t off, uint32_t len)
{
	uint8_t b[4] = { 0 };

	assert_true(bus_access(&f->vm.pio, bar_addr(f, 0) + off, b, len, false));
	return pci_get32(b);
}

static void io_write(struct fixture *f, uint64_t off, uint32_t v, uint32_t len)
{
	uint8_t b[4];

	pci_put32(b, v);
	assert_true(bus_access(&f->vm.pio, bar_addr(f, 0) + off, b, len, true));
}

/* Walks the capability list like virtio_pci_find_capability: the first vendor capability of
 * each type wins; the chain is bounded so that a loop would fail the test instead of hanging. */
static void parse_caps(struct fixture *f)
{
	unsigned p, hops = 0;

	assert_true(cfg_read(f, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	for (p = cfg_read(f, PCI_CAPABILITY_LIST, 1); p; p = cfg_read(f, p + 1, 1)) {
		unsigned id = cfg_read(f, p, 1);

		assert_true(++hops < 48);
		assert_true(p >= PCI_CAP_START && p % 4 == 0);
		if (id == PCI_CAP_ID_MSIX)
			f->msix_cap = p;
		if (id != PCI_CAP_ID_VNDR)
			continue;
		unsigned type = cfg_read(f, p + 3, 1);
		assert_true(type >= 1 && type <= VIRTIO_PCI_CAP_PCI_CFG);
		if (f->cap[type].found)
			continue;
		f->cap[type] = (struct region){ true, (uint8_t)cfg_read(f, p + 4, 1),
						cfg_read(f, p + 8, 4), cfg_read(f, p + 12, 4) };
		if (type == VIRTIO_PCI_CAP_NOTIFY_CFG) {
			assert_true(cfg_read(f, p + 2, 1) >= 20);
			f->notify_mult = cfg_read(f, p + 16, 4);
		}
		if (type == VIRTIO_PCI_CAP_PCI_CFG)
			f->cfg_cap = p;
	}
}

static uint64_t region(struct fixture *f, unsigned type, uint32_t off)
{
	if (!f->cap[type].found)
		parse_caps(f);
	assert_true(f->cap[type].found);
	return bar_addr(f, f->cap[type].bar) + f->cap[type].off + off;
}

static uint64_t common(struct fixture *f, uint32_t off)
{
	return region(f, VIRTIO_PCI_CAP_COMMON_CFG, off);
}

static uint64_t doorbell(struct fixture *f, unsigned q)
{
	uint64_t base = region(f, VIRTIO_PCI_CAP_NOTIFY_CFG, 0);

	mem_write(f, common(f, VIRTIO_PCI_COMMON_Q_SELECT), q, 2);
	return base + mem_read(f, common(f, VIRTIO_PCI_COMMON_Q_NOFF), 2) * f->notify_mult;
}

/* Whether an eventfd was signalled (and consumes it). */
static bool fired(int fd)
{
	uint64_t v;

	return read(fd, &v, sizeof(v)) == sizeof(v) && v > 0;
}

static void signal_dev(struct fixture *f, int q)
{
	pthread_mutex_lock(&f->dev.lock);
	f->dev.transport->signal(&f->dev, q);
	pthread_mutex_unlock(&f->dev.lock);
}

static void negotiate(struct fixture *f, uint32_t hi)
{
	mem_write(f, common(f, VIRTIO_PCI_COMMON_STATUS), 0, 1);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_STATUS),
		  VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 1);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_GFSELECT), 0, 4);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_GF), 1u << DUMMY_FEATURE, 4);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_GFSELECT), 1, 4);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_GF), hi, 4);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_STATUS),
		  VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK, 1);
}

static void modern_ids_and_capability_chain(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(cfg_read(f, PCI_VENDOR_ID, 2), VIRTIO_PCI_VENDOR);
	assert_int_equal(cfg_read(f, PCI_DEVICE_ID, 2), 0x1040 + VIRTIO_ID_RNG);
	assert_int_equal(cfg_read(f, PCI_REVISION_ID, 1), 1);
	assert_int_equal(cfg_read(f, PCI_CLASS_PROG, 4) & 0xffffff, 0xff0000);
	assert_int_equal(cfg_read(f, PCI_SUBSYSTEM_VENDOR_ID, 2), VIRTIO_PCI_VENDOR);
	assert_int_equal(cfg_read(f, PCI_SUBSYSTEM_ID, 2), VIRTIO_ID_RNG);
	assert_int_equal(cfg_read(f, PCI_INTERRUPT_PIN, 1), 1);
	assert_int_equal(cfg_read(f, PCI_INTERRUPT_LINE, 1), PCI_INTX_GSI(f->slot, 0));
	assert_false(f->dev.legacy);
	assert_int_equal(bar_addr(f, 0), 0); /* modern only: no I/O BAR */
	parse_caps(f);
	for (unsigned t = VIRTIO_PCI_CAP_COMMON_CFG; t <= VIRTIO_PCI_CAP_PCI_CFG; t++) {
		struct region *r = &f->cap[t];

		assert_true(r->found);
		if (t == VIRTIO_PCI_CAP_PCI_CFG)
			continue;
		/* vp_modern_map_capability's checks: a memory BAR that holds the structure. */
		assert_true(r->bar < PCI_NR_BARS);
		assert_false(cfg_read(f, PCI_BASE_ADDRESS_0 + 4 * r->bar, 4) & PCI_BAR_IO_FLAG);
		assert_true((uint64_t)r->off + r->len <= bar_size(f, r->bar));
	}
	/* struct virtio_pci_common_cfg whole, through admin_queue_num (4.1.4.3). */
	assert_int_equal(f->cap[VIRTIO_PCI_CAP_COMMON_CFG].len, 0x40);
	assert_int_equal(f->cap[VIRTIO_PCI_CAP_DEVICE_CFG].len, sizeof(f->config));
	assert_int_equal(f->cap[VIRTIO_PCI_CAP_COMMON_CFG].off % 4, 0);
	assert_int_equal(f->cap[VIRTIO_PCI_CAP_DEVICE_CFG].off % 4, 0);
	/* Every queue's doorbell fits: queue_notify_off * multiplier + 2 <= length. */
	assert_int_equal(f->notify_mult, 4);
	for (unsigned q = 0; q < NR_QUEUES; q++) {
		mem_write(f, common(f, VIRTIO_PCI_COMMON_Q_SELECT), q, 2);
		assert_int_equal(mem_read(f, common(f, VIRTIO_PCI_COMMON_Q_NOFF), 2), q);
		assert_true(q * f->notify_mult + 2 <= f->cap[VIRTIO_PCI_CAP_NOTIFY_CFG].len);
	}
	/* MSI-X: one vector per queue and one for configuration changes, table and PBA in BAR1. */
	assert_int_not_equal(f->msix_cap, 0);
	assert_int_equal(cfg_read(f, f->msix_cap + 2, 2), NR_QUEUES); /* table size - 1 */
	assert_int_equal(cfg_read(f, f->msix_cap + 4, 4), VIRTIO_PCI_MSIX_BAR);
	assert_int_equal(cfg_read(f, f->msix_cap + 8, 4), VIRTIO_PCI_PBA_OFF | VIRTIO_PCI_MSIX_BAR);
	assert_true(bar_size(f, VIRTIO_PCI_MSIX_BAR) >= 0x1000);
	assert_int_equal(bar_size(f, VIRTIO_PCI_MODERN_BAR), VIRTIO_PCI_MODERN_SIZE);
	assert_int_equal(mem_read(f, common(f, VIRTIO_PCI_COMMON_NUMQ), 2), NR_QUEUES);
}

static void features_are_negotiated_through_common_cfg(void **state)
{
	struct fixture *f = *state;

	mem_write(f, common(f, VIRTIO_PCI_COMMON_DFSELECT), 0, 4);
	assert_int_equal(mem_read(f, common(f, VIRTIO_PCI_COMMON_DF), 4),
			 (uint32_t)f->dev.features);
	assert_true(mem_read(f, common(f, VIRTIO_PCI_COMMON_DF), 4) & (1u << DUMMY_FEATURE));
	mem_write(f, common(f, VIRTIO_PCI_COMMON_DFSELECT), 1, 4);
	assert_true(mem_read(f, common(f, VIRTIO_PCI_COMMON_DF), 4) &
		    (1u << (VIRTIO_F_VERSION_1 - 32)));
	mem_write(f, common(f, VIRTIO_PCI_COMMON_DFSELECT), 2, 4);
	assert_int_equal(mem_read(f, common(f, VIRTIO_PCI_COMMON_DF), 4), 0);

	/* Without VERSION_1 a modern driver is refused: FEATURES_OK does not stick. */
	negotiate(f, 0);
	assert_int_equal(mem_read(f, common(f, VIRTIO_PCI_COMMON_STATUS), 1),
			 VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	assert_false(f->dev.legacy_driver);
	negotiate(f, 1u << (VIRTIO_F_VERSION_1 - 32));
	assert_int_equal(mem_read(f, common(f, VIRTIO_PCI_COMMON_STATUS), 1),
			 VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				 VIRTIO_STATUS_FEATURES_OK);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_GFSELECT), 0, 4);
	assert_int_equal(mem_read(f, common(f, VIRTIO_PCI_COMMON_GF), 4), 1u << DUMMY_FEATURE);
	assert_int_equal(f->dev.driver_features,
			 1ULL << VIRTIO_F_VERSION_1 | 1ULL << DUMMY_FEATURE);
	/* Writing 0 resets, and reads back 0. */
	mem_write(f, common(f, VIRTIO_PCI_COMMON_STATUS), 0, 1);
	assert_int_equal(mem_read(f, common(f, VIRTIO_PCI_COMMON_STATUS), 1), 0);
	assert_int_equal(f->dev.driver_features, 0);
}

/* The tail of the common configuration, fields of features vmm does not offer: there (the
 * capability covers the whole structure), reading 0, and writes change nothing. */
static void common_cfg_tail_reads_zero(void **state)
{
	struct fixture *f = *state;

	negotiate(f, 1u << (VIRTIO_F_VERSION_1 - 32));
	mem_write(f, common(f, VIRTIO_PCI_COMMON_Q_SELECT), 1, 2);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_Q_SIZE), 8, 2);
	for (uint32_t off = VIRTIO_PCI_COMMON_Q_NDATA; off < VIRTIO_PCI_COMMON_LEN; off += 2) {
		mem_write(f, common(f, off), 1, 2);
		assert_int_equal(mem_read(f, common(f, off), 2), 0);
	}
	assert_int_equal(mem_read(f, common(f, VIRTIO_PCI_COMMON_ADM_Q_IDX), 4), 0);
	assert_int_equal(mem_read(f, common(f, VIRTIO_PCI_COMMON_Q_SIZE), 2), 8);
	assert_int_equal(mem_read(f, common(f, VIRTIO_PCI_COMMON_STATUS), 1),
			 VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				 VIRTIO_STATUS_FEATURES_OK);
}

/* config_generation as the driver reads it, 8 bits: it moves with a change of the area and never
 * comes round to the value read before, however many changes came in between. */
static void config_generation_in_common_cfg(void **state)
{
	struct fixture *f = *state;
	uint64_t gen_at = common(f, VIRTIO_PCI_COMMON_CFGGENERATION);
	uint8_t before = (uint8_t)mem_read(f, gen_at, 1), v;

	assert_int_equal(mem_read(f, gen_at, 1), before);
	for (unsigned i = 0; i < 256; i++) {
		pthread_mutex_lock(&f->dev.lock);
		v = (uint8_t)(f->config[3] + 1);
		virtio_config_set(&f->dev, 3, &v, 1);
		pthread_mutex_unlock(&f->dev.lock);
	}
	assert_int_not_equal(mem_read(f, gen_at, 1), before);
	before = (uint8_t)mem_read(f, gen_at, 1);
	/* A driver's write through the device configuration that changes it. */
	mem_write(f, region(f, VIRTIO_PCI_CAP_DEVICE_CFG, 0), 0x5a, 1);
	assert_int_not_equal(mem_read(f, gen_at, 1), before);
	/* Reads of other fields are no reads of the generation: 256 changes, each followed by a
	 * read of device_status, still leave it changed. */
	before = (uint8_t)mem_read(f, gen_at, 1);
	for (unsigned i = 0; i < 256; i++) {
		pthread_mutex_lock(&f->dev.lock);
		v = (uint8_t)(f->config[3] + 1);
		virtio_config_set(&f->dev, 3, &v, 1);
		pthread_mutex_unlock(&f->dev.lock);
		mem_read(f, common(f, VIRTIO_PCI_COMMON_STATUS), 1);
	}
	assert_int_not_equal(mem_read(f, gen_at, 1), before);
	/* A wider read that covers it does count. */
	before = (uint8_t)(mem_read(f, common(f, VIRTIO_PCI_COMMON_STATUS), 2) >> 8);
	assert_int_equal(mem_read(f, gen_at, 1), before);
}

static void queues_are_set_up_and_kicked(void **state)
{
	struct fixture *f = *state;
	struct virtq *vq = &f->dev.queues[1].vq;

	negotiate(f, 1u << (VIRTIO_F_VERSION_1 - 32));
	mem_write(f, common(f, VIRTIO_PCI_COMMON_Q_SELECT), 1, 2);
	assert_int_equal(mem_read(f, common(f, VIRTIO_PCI_COMMON_Q_SIZE), 2), QUEUE_MAX);
	assert_int_equal(mem_read(f, common(f, VIRTIO_PCI_COMMON_Q_ENABLE), 2), 0);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_Q_SIZE), QUEUE_MAX * 2, 2); /* above the max */
	assert_int_equal(mem_read(f, common(f, VIRTIO_PCI_COMMON_Q_SIZE), 2), QUEUE_MAX);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_Q_SIZE), 8, 2);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_Q_DESCLO), (uint32_t)TEST_GPA(0x10000), 4);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_Q_DESCHI), 0, 4);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_Q_AVAILLO), (uint32_t)TEST_GPA(0x11000), 4);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_Q_AVAILHI), 0, 4);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_Q_USEDLO), (uint32_t)TEST_GPA(0x12000), 4);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_Q_USEDHI), 0, 4);
	assert_int_equal(mem_read(f, common(f, VIRTIO_PCI_COMMON_Q_AVAILLO), 4), TEST_GPA(0x11000));
	mem_write(f, common(f, VIRTIO_PCI_COMMON_Q_ENABLE), 1, 2);
	assert_int_equal(mem_read(f, common(f, VIRTIO_PCI_COMMON_Q_ENABLE), 2), 1);
	assert_true(vq->enabled);
	assert_int_equal(vq->size, 8);
	assert_int_equal(vq->desc_gpa, TEST_GPA(0x10000));
	assert_int_equal(vq->used_gpa, TEST_GPA(0x12000));
	/* A live queue keeps its size and rings. */
	mem_write(f, common(f, VIRTIO_PCI_COMMON_Q_SIZE), 4, 2);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_Q_DESCLO), (uint32_t)TEST_GPA(0x20000), 4);
	assert_int_equal(vq->size, 8);
	assert_int_equal(vq->desc_gpa, TEST_GPA(0x10000));
	/* A queue that does not exist reads size 0. */
	mem_write(f, common(f, VIRTIO_PCI_COMMON_Q_SELECT), 7, 2);
	assert_int_equal(mem_read(f, common(f, VIRTIO_PCI_COMMON_Q_SIZE), 2), 0);
	assert_int_equal(mem_read(f, common(f, VIRTIO_PCI_COMMON_Q_MSIX), 2), VIRTIO_NO_VECTOR);

	/* No ioeventfd without KVM: the doorbell write reaches the BAR and kicks queue 1 only. */
	mem_write(f, doorbell(f, 1), 1, 2);
	assert_true(fired(f->dev.queues[1].kick_fd));
	assert_false(fired(f->dev.queues[0].kick_fd));
	mem_write(f, doorbell(f, 0), 0, 2);
	assert_true(fired(f->dev.queues[0].kick_fd));
	assert_false(fired(f->dev.queues[1].kick_fd));
}

static void bad_rings_need_reset(void **state)
{
	struct fixture *f = *state;

	negotiate(f, 1u << (VIRTIO_F_VERSION_1 - 32));
	mem_write(f, common(f, VIRTIO_PCI_COMMON_Q_SELECT), 0, 2);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_Q_DESCLO), 0, 4);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_Q_DESCHI), 0x10, 4); /* far beyond RAM */
	mem_write(f, common(f, VIRTIO_PCI_COMMON_Q_ENABLE), 1, 2);
	assert_int_equal(mem_read(f, common(f, VIRTIO_PCI_COMMON_Q_ENABLE), 2), 0);
	assert_true(mem_read(f, common(f, VIRTIO_PCI_COMMON_STATUS), 1) &
		    VIRTIO_STATUS_NEEDS_RESET);
}

static uint64_t msix_entry(struct fixture *f, unsigned v, unsigned field)
{
	return bar_addr(f, VIRTIO_PCI_MSIX_BAR) + v * PCI_MSIX_ENTRY_SIZE + field;
}

static uint32_t pba(struct fixture *f)
{
	return (uint32_t)mem_read(f, bar_addr(f, VIRTIO_PCI_MSIX_BAR) + VIRTIO_PCI_PBA_OFF, 4);
}

static void msix_vectors_masking_and_pending_bits(void **state)
{
	struct fixture *f = *state;
	int fd1 = f->vp->vectors[1].fd, fd0 = f->vp->vectors[0].fd;

	parse_caps(f);
	/* After reset every entry is masked. */
	assert_int_equal(mem_read(f, msix_entry(f, 1, PCI_MSIX_ENTRY_CTRL), 4), 1);
	cfg_write(f, f->msix_cap + 2, PCI_MSIX_FLAGS_ENABLE, 2);
	assert_int_equal(cfg_read(f, f->msix_cap + 2, 2), PCI_MSIX_FLAGS_ENABLE | NR_QUEUES);
	/* Vectors: config -> 0, queue 0 -> 1; one beyond the table reads back NO_VECTOR. */
	mem_write(f, common(f, VIRTIO_PCI_COMMON_MSIX), 0, 2);
	assert_int_equal(mem_read(f, common(f, VIRTIO_PCI_COMMON_MSIX), 2), 0);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_Q_SELECT), 1, 2);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_Q_MSIX), NR_QUEUES + 1, 2);
	assert_int_equal(mem_read(f, common(f, VIRTIO_PCI_COMMON_Q_MSIX), 2), VIRTIO_NO_VECTOR);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_Q_SELECT), 0, 2);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_Q_MSIX), 1, 2);
	assert_int_equal(mem_read(f, common(f, VIRTIO_PCI_COMMON_Q_MSIX), 2), 1);

	/* The table holds what the driver writes; only the mask bit of the control word. */
	mem_write(f, msix_entry(f, 1, 0), 0xfee00000, 4);
	mem_write(f, msix_entry(f, 1, 4), 0, 4);
	mem_write(f, msix_entry(f, 1, 8), 0x4021, 4);
	assert_int_equal(mem_read(f, msix_entry(f, 1, 0), 8), 0xfee00000);
	assert_int_equal(mem_read(f, msix_entry(f, 1, 8), 4), 0x4021);
	assert_int_equal(f->vp->vectors[1].data, 0x4021);

	/* Masked: the interrupt waits in the PBA and goes out on unmask. */
	signal_dev(f, 0);
	assert_false(fired(fd1));
	assert_int_equal(pba(f), 1u << 1);
	mem_write(f, msix_entry(f, 1, PCI_MSIX_ENTRY_CTRL), 0xfffffffe, 4);
	assert_int_equal(mem_read(f, msix_entry(f, 1, PCI_MSIX_ENTRY_CTRL), 4), 0);
	assert_true(fired(fd1));
	assert_int_equal(pba(f), 0);
	/* Unmasked: straight out. */
	signal_dev(f, 0);
	assert_true(fired(fd1));
	assert_false(fired(f->dev.isr_fd));
	/* The function mask holds every vector. */
	cfg_write(f, f->msix_cap + 2, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL, 2);
	signal_dev(f, 0);
	assert_false(fired(fd1));
	assert_int_equal(pba(f), 1u << 1);
	cfg_write(f, f->msix_cap + 2, PCI_MSIX_FLAGS_ENABLE, 2);
	assert_true(fired(fd1));
	assert_int_equal(pba(f), 0);
	/* A configuration change goes to vector 0, masked so far. */
	signal_dev(f, -1);
	assert_false(fired(fd0));
	assert_int_equal(pba(f), 1u << 0);
	mem_write(f, msix_entry(f, 0, PCI_MSIX_ENTRY_CTRL), 0, 4);
	assert_true(fired(fd0));
	/* Queue 1 has no vector: nothing at all, not even INTx. */
	signal_dev(f, 1);
	for (unsigned v = 0; v < f->vp->nr_vectors; v++)
		assert_false(fired(f->vp->vectors[v].fd));
	assert_false(fired(f->dev.isr_fd));
	assert_int_equal(pba(f), 0);
}

/* A queue's interrupt may bypass vmm (the kernel's vhost writes the irqfd) exactly where vp_fire
 * would write the vector's irqfd at once: MSI-X on, neither the function nor the vector masked.
 * Every change of that tells the device (irq_route), so it can move its writer. */
static void queue_irqfd_follows_msix(void **state)
{
	struct fixture *f = *state;
	int fd1 = f->vp->vectors[1].fd;
	int routes;

	parse_caps(f);
	assert_true(f->vp->vectors[1].has_gsi);
	pthread_mutex_lock(&f->dev.lock);
	assert_int_equal(virtio_queue_irqfd(&f->dev, 0), -1); /* INTx: the ISR first */
	pthread_mutex_unlock(&f->dev.lock);
	cfg_write(f, f->msix_cap + 2, PCI_MSIX_FLAGS_ENABLE, 2);
	assert_int_equal(f->irq_routes, 1);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_Q_SELECT), 0, 2);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_Q_MSIX), 1, 2);
	assert_int_equal(f->irq_routes, 2);
	assert_int_equal(virtio_queue_irqfd(&f->dev, 0), -1); /* vector 1 masked: its PBA bit */
	mem_write(f, msix_entry(f, 1, PCI_MSIX_ENTRY_CTRL), 0, 4);
	assert_int_equal(f->irq_routes, 3);
	assert_int_equal(virtio_queue_irqfd(&f->dev, 0), fd1);
	assert_int_equal(virtio_queue_irqfd(&f->dev, 1), -1); /* no vector */
	/* Writing the same mask bit again changes nothing. */
	mem_write(f, msix_entry(f, 1, PCI_MSIX_ENTRY_CTRL), 0, 4);
	assert_int_equal(f->irq_routes, 3);
	cfg_write(f, f->msix_cap + 2, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL, 2);
	assert_int_equal(f->irq_routes, 4);
	assert_int_equal(virtio_queue_irqfd(&f->dev, 0), -1);
	cfg_write(f, f->msix_cap + 2, PCI_MSIX_FLAGS_ENABLE, 2);
	assert_int_equal(virtio_queue_irqfd(&f->dev, 0), fd1);
	routes = f->irq_routes;
	mem_write(f, msix_entry(f, 1, PCI_MSIX_ENTRY_CTRL), 1, 4);
	assert_int_equal(f->irq_routes, routes + 1);
	assert_int_equal(virtio_queue_irqfd(&f->dev, 0), -1);
	cfg_write(f, f->msix_cap + 2, 0, 2);
	assert_int_equal(f->irq_routes, routes + 2);
	assert_int_equal(virtio_queue_irqfd(&f->dev, 0), -1);
}

static void intx_with_read_to_clear_isr(void **state)
{
	struct fixture *f = *state;
	uint64_t isr = region(f, VIRTIO_PCI_CAP_ISR_CFG, 0);

	/* MSI-X off: the ISR says why, the line is the isr eventfd, and the PCI status register
	 * shows it too. */
	assert_int_equal(cfg_read(f, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, 0);
	signal_dev(f, 0);
	assert_true(fired(f->dev.isr_fd));
	assert_int_equal(cfg_read(f, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, PCI_STATUS_INTERRUPT);
	assert_int_equal(mem_read(f, isr, 1), VIRTIO_ISR_QUEUE);
	assert_int_equal(cfg_read(f, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, 0);
	assert_int_equal(mem_read(f, isr, 1), 0);
	signal_dev(f, -1);
	signal_dev(f, 1);
	assert_true(fired(f->dev.isr_fd));
	assert_int_equal(mem_read(f, isr, 1), VIRTIO_ISR_QUEUE | VIRTIO_ISR_CONFIG);
	assert_int_equal(mem_read(f, isr, 1), 0);
	/* INTx disabled in the command register: the ISR is set, the line stays quiet... */
	cfg_write(f, PCI_COMMAND, cfg_read(f, PCI_COMMAND, 2) | PCI_COMMAND_INTX_DISABLE, 2);
	signal_dev(f, 0);
	assert_false(fired(f->dev.isr_fd));
	/* ...until it is enabled again with the ISR still set. */
	cfg_write(f, PCI_COMMAND, cfg_read(f, PCI_COMMAND, 2) & ~PCI_COMMAND_INTX_DISABLE, 2);
	assert_true(fired(f->dev.isr_fd));
	assert_int_equal(mem_read(f, isr, 1), VIRTIO_ISR_QUEUE);
	for (unsigned v = 0; v < f->vp->nr_vectors; v++)
		assert_false(fired(f->vp->vectors[v].fd));
}

static void device_config_and_the_pci_cfg_window(void **state)
{
	struct fixture *f = *state;
	uint64_t dev = region(f, VIRTIO_PCI_CAP_DEVICE_CFG, 0);
	unsigned c;

	assert_int_equal(mem_read(f, dev, 4), 0x44332211);
	assert_int_equal(mem_read(f, dev + 6, 2), 0x8877);
	mem_write(f, dev + 2, 0xbeef, 2);
	assert_int_equal(f->config_writes, 1);
	assert_int_equal(mem_read(f, dev, 4), 0xbeef2211);
	/* The window: cap.bar, cap.offset, cap.length, then pci_cfg_data. */
	c = f->cfg_cap;
	cfg_write(f, c + 4, VIRTIO_PCI_MODERN_BAR, 1);
	cfg_write(f, c + 8, f->cap[VIRTIO_PCI_CAP_COMMON_CFG].off + VIRTIO_PCI_COMMON_NUMQ, 4);
	cfg_write(f, c + 12, 2, 4);
	assert_int_equal(cfg_read(f, c + 16, 4), NR_QUEUES);
	cfg_write(f, c + 8, f->cap[VIRTIO_PCI_CAP_COMMON_CFG].off + VIRTIO_PCI_COMMON_Q_SELECT, 4);
	cfg_write(f, c + 16, 1, 2);
	assert_int_equal(mem_read(f, common(f, VIRTIO_PCI_COMMON_Q_SELECT), 2), 1);
	cfg_write(f, c + 8, f->cap[VIRTIO_PCI_CAP_DEVICE_CFG].off + 4, 4);
	cfg_write(f, c + 12, 4, 4);
	assert_int_equal(cfg_read(f, c + 16, 4), 0x88776655);
	/* A doorbell through the window. */
	cfg_write(f, c + 8, f->cap[VIRTIO_PCI_CAP_NOTIFY_CFG].off + 4, 4);
	cfg_write(f, c + 12, 2, 4);
	cfg_write(f, c + 16, 1, 2);
	assert_true(fired(f->dev.queues[1].kick_fd));
	/* Misaligned, or a BAR without a structure: nothing. */
	cfg_write(f, c + 8, f->cap[VIRTIO_PCI_CAP_COMMON_CFG].off + 1, 4);
	assert_int_equal(cfg_read(f, c + 16, 4), 0);
	cfg_write(f, c + 4, VIRTIO_PCI_MSIX_BAR, 1);
	cfg_write(f, c + 8, 0, 4);
	assert_int_equal(cfg_read(f, c + 16, 4), 0);
	/* The rest of the capability is read-only. */
	cfg_write(f, c + 3, 0x77, 1);
	assert_int_equal(cfg_read(f, c + 3, 1), VIRTIO_PCI_CAP_PCI_CFG);
}

static void moving_bar4_moves_the_registers_and_doorbells(void **state)
{
	struct fixture *f = *state;
	uint64_t old = bar_addr(f, VIRTIO_PCI_MODERN_BAR), new = PCI_MMIO_BASE + 0x800000;
	uint8_t b[2];

	parse_caps(f);
	cfg_write(f, PCI_BASE_ADDRESS_0 + 4 * VIRTIO_PCI_MODERN_BAR, (uint32_t)new | 4, 4);
	assert_int_equal(bar_addr(f, VIRTIO_PCI_MODERN_BAR), new);
	assert_false(bus_access(&f->vm.mmio, old + VIRTIO_PCI_COMMON_NUMQ, b, 2, false));
	assert_int_equal(mem_read(f, common(f, VIRTIO_PCI_COMMON_NUMQ), 2), NR_QUEUES);
	mem_write(f, doorbell(f, 1), 1, 2);
	assert_true(fired(f->dev.queues[1].kick_fd));
	/* Memory decoding off: gone. */
	cfg_write(f, PCI_COMMAND, PCI_COMMAND_IO, 2);
	assert_false(bus_access(&f->vm.mmio, new + VIRTIO_PCI_NOTIFY_OFF, b, 2, true));
	assert_false(fired(f->dev.queues[0].kick_fd));
}

static void reset_restores_transport_state(void **state)
{
	struct fixture *f = *state;

	parse_caps(f);
	cfg_write(f, f->msix_cap + 2, PCI_MSIX_FLAGS_ENABLE, 2);
	mem_write(f, msix_entry(f, 2, 8), 0x1234, 4);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_MSIX), 2, 2);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_Q_SELECT), 1, 2);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_Q_MSIX), 0, 2);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_DFSELECT), 1, 4);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_STATUS), 0, 1);
	assert_int_equal(mem_read(f, common(f, VIRTIO_PCI_COMMON_MSIX), 2), VIRTIO_NO_VECTOR);
	assert_int_equal(mem_read(f, common(f, VIRTIO_PCI_COMMON_Q_SELECT), 2), 0);
	assert_int_equal(mem_read(f, common(f, VIRTIO_PCI_COMMON_DFSELECT), 4), 0);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_Q_SELECT), 1, 2);
	assert_int_equal(mem_read(f, common(f, VIRTIO_PCI_COMMON_Q_MSIX), 2), VIRTIO_NO_VECTOR);
	/* The MSI-X table and enable belong to PCI, not to the virtio device. */
	assert_int_equal(mem_read(f, msix_entry(f, 2, 8), 4), 0x1234);
	assert_true(cfg_read(f, f->msix_cap + 2, 2) & PCI_MSIX_FLAGS_ENABLE);
}

static void transitional_ids_and_legacy_bar(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(cfg_read(f, PCI_DEVICE_ID, 2), 0x1005);
	assert_int_equal(cfg_read(f, PCI_REVISION_ID, 1), 0);
	assert_int_equal(cfg_read(f, PCI_SUBSYSTEM_ID, 2), VIRTIO_ID_RNG);
	assert_true(f->dev.legacy);
	assert_true(cfg_read(f, PCI_BASE_ADDRESS_0, 4) & PCI_BAR_IO_FLAG);
	assert_int_equal(bar_size(f, 0), VIRTIO_PCI_LEGACY_MIN_SIZE);
	assert_true(bar_addr(f, 0) >= PCI_IO_BASE);
	/* The modern interface is there too. */
	parse_caps(f);
	assert_true(f->cap[VIRTIO_PCI_CAP_COMMON_CFG].found);
	assert_int_equal(mem_read(f, common(f, VIRTIO_PCI_COMMON_NUMQ), 2), NR_QUEUES);
}

/* BAR0 of a transitional device holds the registers and, from 24 while MSI-X is on, the whole
 * configuration area of its type: 0x40, or the power of two that holds 24 + the area. */
static void legacy_bar_holds_the_config(void **state)
{
	struct fixture *f = *state;
	static const struct {
		uint32_t config_len, size;
	} want[] = {
		{ 0, 0x40 }, /* rng */
		{ sizeof(struct virtio_net_config), 0x40 },
		{ sizeof(struct virtio_console_config), 0x40 },
		{ sizeof(struct virtio_balloon_config), 0x40 },
		{ sizeof(struct virtio_scsi_config), 0x40 },
		{ 40, 0x40 },
		{ 41, 0x80 },
		{ sizeof(struct virtio_blk_config), 0x80 },
		{ 2 + 100, 0x80 },  /* 9p with a 100-byte tag */
		{ 2 + 230, 0x100 }, /* the longest tag that fits (CONFIG_TAG_MAX_LEGACY_PCI) */
	};
	unsigned slot = f->slot;

	for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		uint32_t len = want[i].config_len;
		struct virtio_dev d;
		struct virtio_pci *vp;
		uint8_t *config = malloc(len + 1);

		assert_int_equal(virtio_dev_init(&d, &dummy_ops, f, "dummy1", &f->mem, NULL, 0, 1,
						 QUEUE_MAX),
				 0);
		for (uint32_t b = 0; b < len; b++)
			config[b] = (uint8_t)(b + 1);
		d.config = config;
		d.config_len = len;
		assert_int_equal(virtio_pci_create(&f->host, &d, true, &vp), 0);
		f->slot = vp->pci.slot;
		assert_int_equal(bar_size(f, 0), want[i].size);
		cfg_write(f, vp->msix_cap + 2, PCI_MSIX_FLAGS_ENABLE, 2);
		if (len)
			assert_int_equal(io_read(f, VIRTIO_PCI_LEGACY_CONFIG_MSIX + len - 1, 1),
					 config[len - 1]);
		f->slot = slot;
		virtio_pci_destroy(vp);
		virtio_dev_destroy(&d);
		free(config);
	}
	/* More than an I/O BAR can hold: the device cannot be transitional (nor made half). */
	for (uint32_t len = 2 + 231; len <= 2 + V9P_MAX_TAG; len += V9P_MAX_TAG - 231) {
		struct virtio_dev d;
		struct virtio_pci *vp = NULL;
		uint8_t *config = calloc(1, len);

		assert_int_equal(virtio_dev_init(&d, &dummy_ops, f, "dummy1", &f->mem, NULL, 0, 1,
						 QUEUE_MAX),
				 0);
		d.config = config;
		d.config_len = len;
		assert_int_equal(virtio_pci_create(&f->host, &d, true, &vp), -EINVAL);
		assert_null(vp);
		assert_null(d.transport);
		assert_int_equal(virtio_pci_create(&f->host, &d, false, &vp), 0);
		virtio_pci_destroy(vp);
		virtio_dev_destroy(&d);
		free(config);
	}
}

#define LEGACY_PFN ((uint32_t)(TEST_GPA(0x20000) >> 12)) /* the ring's page (4 KiB pages) */

static void legacy_features_queue_pfn_and_notify(void **state)
{
	struct fixture *f = *state;
	struct virtq *vq = &f->dev.queues[0].vq;

	/* The legacy offer is the modern one's bits 0-31 and ANY_LAYOUT (6.3), which the modern
	 * interface does not show. */
	assert_int_equal(io_read(f, VIRTIO_PCI_LEGACY_HOST_FEATURES, 4),
			 (uint32_t)f->dev.features | 1u << VIRTIO_F_ANY_LAYOUT);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_DFSELECT), 0, 4);
	assert_false(mem_read(f, common(f, VIRTIO_PCI_COMMON_DF), 4) & 1u << VIRTIO_F_ANY_LAYOUT);
	assert_int_equal(io_read(f, VIRTIO_PCI_LEGACY_HOST_FEATURES, 4),
			 (uint32_t)f->dev.features | 1u << VIRTIO_F_ANY_LAYOUT);
	assert_true(f->dev.legacy_driver);
	io_write(f, VIRTIO_PCI_LEGACY_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 1);
	io_write(f, VIRTIO_PCI_LEGACY_GUEST_FEATURES,
		 1u << DUMMY_FEATURE | 1u << VIRTIO_F_ANY_LAYOUT, 4);
	assert_int_equal(io_read(f, VIRTIO_PCI_LEGACY_GUEST_FEATURES, 4),
			 1u << DUMMY_FEATURE | 1u << VIRTIO_F_ANY_LAYOUT);
	io_write(f, VIRTIO_PCI_LEGACY_QUEUE_SEL, 0, 2);
	assert_int_equal(io_read(f, VIRTIO_PCI_LEGACY_QUEUE_NUM, 2), QUEUE_MAX);
	assert_int_equal(io_read(f, VIRTIO_PCI_LEGACY_QUEUE_PFN, 4), 0);
	io_write(f, VIRTIO_PCI_LEGACY_QUEUE_PFN, LEGACY_PFN, 4);
	assert_true(vq->enabled);
	assert_int_equal(vq->size, QUEUE_MAX);
	assert_int_equal(vq->desc_gpa, TEST_GPA(0x20000));
	assert_int_equal(vq->avail_gpa, TEST_GPA(0x20000) + 16 * QUEUE_MAX);
	assert_int_equal(vq->used_gpa, TEST_GPA(0x21000));
	assert_int_equal(io_read(f, VIRTIO_PCI_LEGACY_QUEUE_PFN, 4), LEGACY_PFN);
	io_write(f, VIRTIO_PCI_LEGACY_STATUS,
		 VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK, 1);
	/* No FEATURES_OK step for a legacy driver, and no VERSION_1. */
	assert_int_equal(io_read(f, VIRTIO_PCI_LEGACY_STATUS, 1), VIRTIO_STATUS_ACKNOWLEDGE |
									  VIRTIO_STATUS_DRIVER |
									  VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(f->dev.driver_features,
			 1ULL << DUMMY_FEATURE | 1ULL << VIRTIO_F_ANY_LAYOUT);
	io_write(f, VIRTIO_PCI_LEGACY_QUEUE_NOTIFY, 1, 2);
	assert_true(fired(f->dev.queues[1].kick_fd));
	assert_false(fired(f->dev.queues[0].kick_fd));
	/* ISR: read to clear. */
	signal_dev(f, 0);
	assert_true(fired(f->dev.isr_fd));
	assert_int_equal(io_read(f, VIRTIO_PCI_LEGACY_ISR, 1), VIRTIO_ISR_QUEUE);
	assert_int_equal(io_read(f, VIRTIO_PCI_LEGACY_ISR, 1), 0);
	/* PFN 0 lets the queue go: the whole device resets. */
	io_write(f, VIRTIO_PCI_LEGACY_QUEUE_PFN, 0, 4);
	assert_false(vq->enabled);
	assert_int_equal(io_read(f, VIRTIO_PCI_LEGACY_STATUS, 1), 0);
}

/* The review's defect 2: a driver of a transitional device that switches interfaces must not get
 * the device running with features it was never offered. It accepts bits that were not offered
 * and no VERSION_1 through the modern window, sets FEATURES_OK through the legacy one (a legacy
 * access marks it legacy, which skipped the check), then DRIVER_OK through the modern one (which
 * clears the mark). FEATURES_OK must not stick, and the device must not start. */
static void switching_interfaces_cannot_skip_the_feature_check(void **state)
{
	struct fixture *f = *state;
	const uint8_t early = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;

	mem_write(f, common(f, VIRTIO_PCI_COMMON_STATUS), early, 1);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_GFSELECT), 0, 4);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_GF), 1u << DUMMY_FEATURE | 1u << 3, 4);
	io_write(f, VIRTIO_PCI_LEGACY_STATUS, early | VIRTIO_STATUS_FEATURES_OK, 1);
	assert_int_equal(io_read(f, VIRTIO_PCI_LEGACY_STATUS, 1), early);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_STATUS),
		  early | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK, 1);
	assert_false(virtio_live(&f->dev));
	assert_false(f->dev.status & VIRTIO_STATUS_FEATURES_OK);

	/* The same with only offered bits but without VERSION_1: refused too. */
	mem_write(f, common(f, VIRTIO_PCI_COMMON_STATUS), 0, 1);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_STATUS), early, 1);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_GF), 1u << DUMMY_FEATURE, 4);
	io_write(f, VIRTIO_PCI_LEGACY_STATUS, early | VIRTIO_STATUS_FEATURES_OK, 1);
	mem_write(f, common(f, VIRTIO_PCI_COMMON_STATUS),
		  early | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK, 1);
	assert_false(virtio_live(&f->dev));

	/* A legacy driver that accepts a bit not offered starts without it. */
	mem_write(f, common(f, VIRTIO_PCI_COMMON_STATUS), 0, 1);
	io_write(f, VIRTIO_PCI_LEGACY_STATUS, early, 1);
	io_write(f, VIRTIO_PCI_LEGACY_GUEST_FEATURES, 1u << DUMMY_FEATURE | 1u << 3, 4);
	io_write(f, VIRTIO_PCI_LEGACY_STATUS, early | VIRTIO_STATUS_DRIVER_OK, 1);
	assert_true(virtio_live(&f->dev));
	assert_int_equal(f->dev.driver_features, 1ULL << DUMMY_FEATURE);
}

static void legacy_config_moves_with_msix(void **state)
{
	struct fixture *f = *state;

	parse_caps(f);
	assert_int_equal(io_read(f, VIRTIO_PCI_LEGACY_CONFIG, 4), 0x44332211);
	assert_int_equal(io_read(f, VIRTIO_PCI_LEGACY_CONFIG + 5, 1), 0x66);
	io_write(f, VIRTIO_PCI_LEGACY_CONFIG + 1, 0xaa, 1);
	assert_int_equal(f->config[1], 0xaa);
	cfg_write(f, f->msix_cap + 2, PCI_MSIX_FLAGS_ENABLE, 2);
	/* With MSI-X on, 20 and 22 are the vectors and the config starts at 24. */
	assert_int_equal(io_read(f, VIRTIO_PCI_LEGACY_CONFIG_MSIX, 4), 0x4433aa11);
	assert_int_equal(io_read(f, VIRTIO_PCI_LEGACY_CONFIG_VECTOR, 2), VIRTIO_NO_VECTOR);
	io_write(f, VIRTIO_PCI_LEGACY_CONFIG_VECTOR, 0, 2);
	assert_int_equal(io_read(f, VIRTIO_PCI_LEGACY_CONFIG_VECTOR, 2), 0);
	io_write(f, VIRTIO_PCI_LEGACY_QUEUE_SEL, 1, 2);
	io_write(f, VIRTIO_PCI_LEGACY_QUEUE_VECTOR, 9, 2);
	assert_int_equal(io_read(f, VIRTIO_PCI_LEGACY_QUEUE_VECTOR, 2), VIRTIO_NO_VECTOR);
	io_write(f, VIRTIO_PCI_LEGACY_QUEUE_VECTOR, 2, 2);
	assert_int_equal(io_read(f, VIRTIO_PCI_LEGACY_QUEUE_VECTOR, 2), 2);
	assert_int_equal(f->dev.queues[1].msix_vector, 2);
	cfg_write(f, f->msix_cap + 2, 0, 2);
	assert_int_equal(io_read(f, VIRTIO_PCI_LEGACY_CONFIG, 4), 0x4433aa11);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(modern_ids_and_capability_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(features_are_negotiated_through_common_cfg, setup,
						teardown),
		cmocka_unit_test_setup_teardown(common_cfg_tail_reads_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(config_generation_in_common_cfg, setup, teardown),
		cmocka_unit_test_setup_teardown(queues_are_set_up_and_kicked, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_rings_need_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(msix_vectors_masking_and_pending_bits, setup,
						teardown),
		cmocka_unit_test_setup_teardown(intx_with_read_to_clear_isr, setup, teardown),
		cmocka_unit_test_setup_teardown(device_config_and_the_pci_cfg_window, setup,
						teardown),
		cmocka_unit_test_setup_teardown(moving_bar4_moves_the_registers_and_doorbells,
						setup, teardown),
		cmocka_unit_test_setup_teardown(reset_restores_transport_state, setup, teardown),
		cmocka_unit_test_setup_teardown(queue_irqfd_follows_msix, setup, teardown),
		cmocka_unit_test_setup_teardown(transitional_ids_and_legacy_bar, setup_legacy,
						teardown),
		cmocka_unit_test_setup_teardown(legacy_bar_holds_the_config, setup_legacy,
						teardown),
		cmocka_unit_test_setup_teardown(legacy_features_queue_pfn_and_notify, setup_legacy,
						teardown),
		cmocka_unit_test_setup_teardown(switching_interfaces_cannot_skip_the_feature_check,
						setup_legacy, teardown),
		cmocka_unit_test_setup_teardown(legacy_config_moves_with_msix, setup_legacy,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
