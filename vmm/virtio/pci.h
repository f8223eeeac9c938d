/* The virtio-pci transport (VIRTIO 1.x section 4.1): a virtio device as a PCI function with the
 * modern capabilities, MSI-X, INTx, and on request the legacy register block of a transitional
 * device.
 *
 * Layout:
 *   BAR0  I/O, transitional only: the legacy registers, device config at 20 (24 with MSI-X on);
 *         0x40, or the power of two that holds 24 + the config size when that is more (at
 *         most 0x100: a device with more than 232 bytes of config cannot be transitional)
 *   BAR1  mem32 (at least 4 KiB): MSI-X table at 0, PBA at VIRTIO_PCI_PBA_OFF
 *   BAR4  mem64, 16 KiB: common config at 0x0, ISR at 0x1000, device config at 0x2000,
 *         doorbells at 0x3000 + 4 * queue (notify_off_multiplier 4, queue_notify_off = index)
 * Capabilities: COMMON, NOTIFY, ISR, DEVICE (when the type has a config area), PCI_CFG, MSI-X
 * with nr_queues + 1 vectors.
 *
 * All transport state is guarded by the virtio device's lock; the configuration space inside
 * `pci` by the host's lock, which is taken first. */
#ifndef VMM_VIRTIO_PCI_H
#define VMM_VIRTIO_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "bus/pci.h"
#include "virtio/virtio.h"

#define VIRTIO_PCI_VENDOR 0x1af4

/* Modern capability types (4.1.4). */
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG    3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
#define VIRTIO_PCI_CAP_PCI_CFG    5

#define VIRTIO_PCI_LEGACY_BAR 0
#define VIRTIO_PCI_MSIX_BAR   1
#define VIRTIO_PCI_MODERN_BAR 4

#define VIRTIO_PCI_COMMON_OFF  0x0000
#define VIRTIO_PCI_COMMON_LEN  0x40 /* the whole struct, through admin_queue_num */
#define VIRTIO_PCI_ISR_OFF     0x1000
#define VIRTIO_PCI_DEVICE_OFF  0x2000
#define VIRTIO_PCI_NOTIFY_OFF  0x3000
#define VIRTIO_PCI_NOTIFY_MULT 4
#define VIRTIO_PCI_MODERN_SIZE 0x4000
#define VIRTIO_PCI_PBA_OFF     0x800 /* in BAR1, for up to 128 vectors; further out beyond */

/* Common configuration (4.1.4.3) field offsets. */
#define VIRTIO_PCI_COMMON_DFSELECT      0x00
#define VIRTIO_PCI_COMMON_DF            0x04
#define VIRTIO_PCI_COMMON_GFSELECT      0x08
#define VIRTIO_PCI_COMMON_GF            0x0c
#define VIRTIO_PCI_COMMON_MSIX          0x10
#define VIRTIO_PCI_COMMON_NUMQ          0x12
#define VIRTIO_PCI_COMMON_STATUS        0x14
#define VIRTIO_PCI_COMMON_CFGGENERATION 0x15
#define VIRTIO_PCI_COMMON_Q_SELECT      0x16
#define VIRTIO_PCI_COMMON_Q_SIZE        0x18
#define VIRTIO_PCI_COMMON_Q_MSIX        0x1a
#define VIRTIO_PCI_COMMON_Q_ENABLE      0x1c
#define VIRTIO_PCI_COMMON_Q_NOFF        0x1e
#define VIRTIO_PCI_COMMON_Q_DESCLO      0x20
#define VIRTIO_PCI_COMMON_Q_DESCHI      0x24
#define VIRTIO_PCI_COMMON_Q_AVAILLO     0x28
#define VIRTIO_PCI_COMMON_Q_AVAILHI     0x2c
#define VIRTIO_PCI_COMMON_Q_USEDLO      0x30
#define VIRTIO_PCI_COMMON_Q_USEDHI      0x34
/* The fields of features vmm does not offer (NOTIF_CONFIG_DATA, RING_RESET, ADMIN_VQ): read 0,
 * writes ignored. */
#define VIRTIO_PCI_COMMON_Q_NDATA       0x38
#define VIRTIO_PCI_COMMON_Q_RESET       0x3a
#define VIRTIO_PCI_COMMON_ADM_Q_IDX     0x3c
#define VIRTIO_PCI_COMMON_ADM_Q_NUM     0x3e

/* Legacy register block (4.1.4.8) in BAR0. */
#define VIRTIO_PCI_LEGACY_HOST_FEATURES  0x00
#define VIRTIO_PCI_LEGACY_GUEST_FEATURES 0x04
#define VIRTIO_PCI_LEGACY_QUEUE_PFN      0x08
#define VIRTIO_PCI_LEGACY_QUEUE_NUM      0x0c
#define VIRTIO_PCI_LEGACY_QUEUE_SEL      0x0e
#define VIRTIO_PCI_LEGACY_QUEUE_NOTIFY   0x10
#define VIRTIO_PCI_LEGACY_STATUS         0x12
#define VIRTIO_PCI_LEGACY_ISR            0x13
#define VIRTIO_PCI_LEGACY_CONFIG_VECTOR  0x14 /* these two only while MSI-X is enabled */
#define VIRTIO_PCI_LEGACY_QUEUE_VECTOR   0x16
#define VIRTIO_PCI_LEGACY_CONFIG         20
#define VIRTIO_PCI_LEGACY_CONFIG_MSIX    24
#define VIRTIO_PCI_LEGACY_PFN_SHIFT      12
#define VIRTIO_PCI_LEGACY_ALIGN          4096
#define VIRTIO_PCI_LEGACY_MIN_SIZE       0x40 /* BAR0's least size; more for a large config */
#define VIRTIO_PCI_LEGACY_MAX_SIZE       0x100 /* the most an I/O BAR decodes */

/* MSI-X (PCI 3.0 6.8.2): the capability's message control bits and a table entry. */
#define PCI_MSIX_FLAGS_ENABLE  0x8000
#define PCI_MSIX_FLAGS_MASKALL 0x4000
#define PCI_MSIX_ENTRY_SIZE    16
#define PCI_MSIX_ENTRY_CTRL    12
#define PCI_MSIX_ENTRY_MASKED  1

struct virtio_pci_vector {
	uint32_t addr_lo, addr_hi, data, ctrl; /* the table entry as the guest wrote it */
	bool pending;                          /* the PBA bit: fired while masked */
	int fd;                                /* eventfd: irqfd of gsi */
	uint32_t gsi;
	bool has_gsi;
};

struct virtio_pci {
	struct pci_dev pci;
	struct virtio_dev *vdev;
	struct pci_host *host;
	struct vm *vm;

	uint32_t dfselect, gfselect;
	uint16_t queue_sel;
	uint16_t config_vector;

	unsigned nr_vectors;
	struct virtio_pci_vector *vectors;
	uint32_t pba_off;
	bool msix_enabled, msix_masked; /* the message control word, mirrored */
	bool intx_disabled;             /* the command register's bit, mirrored */

	int msix_cap, cfg_cap; /* offsets in configuration space */
	uint32_t legacy_size;  /* BAR0 bytes, 0 when not transitional */
};

/* Makes d (already set up by its type with virtio_dev_init) a PCI function on h: transitional
 * with the legacy block when `legacy`, else modern only. Sets d->transport, d->transport_priv and
 * d->legacy. On success *out is the transport, to pass to virtio_pci_destroy. 0 or -errno. */
int virtio_pci_create(struct pci_host *h, struct virtio_dev *d, bool legacy,
		      struct virtio_pci **out);
/* Takes the function off the bus, unbinds its eventfds and frees it. Call before
 * virtio_dev_destroy, with the device's I/O thread stopped or the device idle; NULL is fine. */
void virtio_pci_destroy(struct virtio_pci *vp);

/* BAR handlers, exposed for the unit tests. */
void virtio_pci_modern_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			  bool is_write);
void virtio_pci_msix_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
void virtio_pci_legacy_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			  bool is_write);

#endif
