/* The virtio device core (VIRTIO 1.x chapters 2 and 3), shared by every device type and both
 * transports: device status, feature negotiation, reset, the configuration area with its
 * generation, the ISR byte, the queues and their doorbells.
 *
 * A device type is one ops table plus its state (see rng.c). A transport (pci.c, mmio.c) turns the
 * driver's register accesses into calls here and delivers the interrupts the core asks for.
 *
 * Locking: one mutex per device, d->lock. Transports hold it for every register access, the core
 * holds it while a queue handler runs on the I/O thread, backends take it before touching a queue.
 * So reset, feature and status changes never run beside device work. Every function below expects
 * the lock held, except init, destroy, kick and process. */
#ifndef VMM_VIRTIO_H
#define VMM_VIRTIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "log.h"
#include "memory.h"
#include "virtio/virtqueue.h"

struct event_loop;
struct virtio_dev;

/* Device IDs (section 5). */
#define VIRTIO_ID_NET     1
#define VIRTIO_ID_BLOCK   2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG     4
#define VIRTIO_ID_BALLOON 5
#define VIRTIO_ID_SCSI    8
#define VIRTIO_ID_9P      9
#define VIRTIO_ID_VSOCK   19

/* Device status bits (section 2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER      2
#define VIRTIO_STATUS_DRIVER_OK   4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED      0x80

/* Reserved feature bits the core offers or handles (section 6); the ring bits are in virtqueue.h. */
#define VIRTIO_F_ANY_LAYOUT 27 /* legacy interface only: VERSION_1 implies any layout */
#define VIRTIO_F_VERSION_1  32

/* ISR status bits (4.1.4.5, 4.2.2): what an INTx or virtio-mmio interrupt was for. */
#define VIRTIO_ISR_QUEUE  1
#define VIRTIO_ISR_CONFIG 2

#define VIRTIO_NO_VECTOR 0xffff /* MSI-X: no vector for this source */

struct virtio_dev_ops {
	const char *name;   /* the type, for messages: "rng", "console" */
	uint16_t device_id; /* VIRTIO_ID_* */
	uint32_t pci_class; /* PCI class code, base << 16 | sub << 8 | interface */
	/* The driver set DRIVER_OK; d->driver_features holds what was negotiated and every queue the
	 * driver uses is enabled. 0, or a negative errno that puts the device in NEEDS_RESET. */
	int (*start)(struct virtio_dev *d);
	/* The driver set FEATURES_OK and the core accepted it: d->driver_features is final, and the
	 * driver may read the configuration area for what depends on it before DRIVER_OK.
	 * Optional. */
	void (*features_ok)(struct virtio_dev *d);
	/* Queue q was kicked (I/O thread, lock held; only after start and while not NEEDS_RESET). */
	void (*queue_notify)(struct virtio_dev *d, unsigned q);
	/* The driver wrote the configuration area at [off, off + len), already bounds-checked and
	 * copied into d->config. Optional: without it, writes are ignored (the area is read-only). */
	void (*config_write)(struct virtio_dev *d, uint32_t off, uint32_t len);
	/* Reset: drop every buffer the device holds and return to the state after init. When this
	 * returns, no backend touches a queue until the next start. The queues are already reset
	 * (a new epoch each: chains popped before can no longer be pushed). */
	void (*reset)(struct virtio_dev *d);
	/* The driver stopped queue q alone (virtio-mmio QueueReady or QueuePFN written 0) and may
	 * set it up again, smaller or elsewhere: drop every chain held from it, as reset does for
	 * all. The queue is already reset. Optional: a type that holds no chain between calls of
	 * its handlers needs none (virtq_push would drop a stale one anyway). */
	void (*queue_stop)(struct virtio_dev *d, unsigned q);
	/* Logs (info level) what the device holds or waits for, after the core's queue states. Lock
	 * held. Optional. */
	void (*log_state)(struct virtio_dev *d);
	/* The transport's answer to virtio_queue_irqfd may have changed for some queue (MSI-X
	 * enabled or masked, a vector masked or unmasked, a queue given another vector): a type
	 * whose interrupts something else sends (the kernel's vhost) asks again. Lock held.
	 * Optional. */
	void (*irq_route)(struct virtio_dev *d);
	/* The device was just put in NEEDS_RESET (virtio_fail, from the transport, the core or the
	 * type itself; lock held): the core's own queues stop there, so a type whose queues
	 * something else serves (the kernel's vhost) stops that too. Optional. */
	void (*failed)(struct virtio_dev *d);
};

/* What the core needs from a transport. */
struct virtio_transport_ops {
	/* Deliver an interrupt for queue q (q >= 0: used buffers) or for a configuration change
	 * (q < 0). MSI-X sends the vector; INTx and virtio-mmio call virtio_raise_isr(). */
	void (*signal)(struct virtio_dev *d, int q);
	/* The device was reset: transport state (selectors, vectors) back to initial. Optional. */
	void (*reset)(struct virtio_dev *d);
	/* How queue q's interrupt is delivered now (vector, masked, pending), for virtio_log_state.
	 * Like snprintf. Optional. */
	int (*describe)(struct virtio_dev *d, unsigned q, char *buf, size_t len);
	/* An eventfd that, written, interrupts the driver for queue q with nothing more for the
	 * transport to do (MSI-X on, the function and q's vector unmasked and routed), or -1 when
	 * the transport must see each interrupt (INTx and virtio-mmio set the ISR byte first, a
	 * masked vector its pending bit). It is valid until the device's irq_route is called.
	 * Optional: without it, always -1. */
	int (*queue_irqfd)(struct virtio_dev *d, unsigned q);
};

struct virtio_queue {
	struct virtq vq;
	uint16_t max_size;
	uint16_t msix_vector; /* virtio-pci: the driver's choice, VIRTIO_NO_VECTOR when none */
	int kick_fd;          /* eventfd: the transport binds it to the queue's doorbell */
	bool kick_lent;       /* the kernel's vhost serves kick_fd; vmm's loop does not watch it */
	struct virtio_dev *dev;
	unsigned index;
	uint64_t kicks, interrupts; /* for virtio_log_state: wake-ups served, interrupts sent */
};

struct virtio_dev {
	const struct virtio_dev_ops *ops;
	void *priv; /* the device type's state */
	char name[16]; /* instance name for messages: "rng0", "console0" */
	pthread_mutex_t lock;
	const struct guest_mem *mem;
	struct event_loop *loop;

	uint64_t features;        /* offered: the type's bits plus the core's ring bits (the modern
				   * offer; the legacy one is virtio_get_legacy_features) */
	uint64_t driver_features; /* accepted by the driver; only offered bits are kept */
	uint8_t status;
	bool legacy;          /* the transport offers the legacy interface (transitional / mmio v1) */
	bool legacy_driver;   /* the driver's last access was to it: no FEATURES_OK, no bits >= 32 */
	uint8_t isr;          /* VIRTIO_ISR_* bits, read-to-clear by the driver */
	int isr_fd;           /* eventfd: irqfd of the INTx / mmio line (level, with resample_fd) */
	int resample_fd;      /* eventfd: KVM signals the line's EOI; re-raised while isr != 0 */
	bool line_masked;     /* the transport has the line off (PCI: INTx disabled, or MSI-X) */
	uint32_t config_generation; /* the driver reads it through virtio_config_generation */
	bool config_generation_fresh; /* it moved since the driver last read it */
	uint8_t *config; /* the device-specific configuration area, owned by the type */
	uint32_t config_len;
	unsigned nr_queues;
	struct virtio_queue *queues;

	const struct virtio_transport_ops *transport;
	void *transport_priv;
	struct log_limit log_limit; /* for virtio_log */
};

/* A message the guest can cause as often as it likes (a reset and a bad ring in a loop): at most
 * LOG_LIMIT_BURST of each per device per LOG_LIMIT_INTERVAL_S, the rest counted (log.h). */
#define virtio_log(d, level, ...) log_limited(&(d)->log_limit, level, __VA_ARGS__)

/* Sets up a device with nr_queues queues of at most max_size entries each. `features` are the
 * type's own bits; the core adds VERSION_1 (unless legacy-only callers clear it), INDIRECT_DESC,
 * EVENT_IDX and RING_PACKED. Creates the doorbell and interrupt eventfds and registers them with
 * the loop. 0 or -errno. */
int virtio_dev_init(struct virtio_dev *d, const struct virtio_dev_ops *ops, void *priv,
		    const char *name, const struct guest_mem *mem, struct event_loop *loop,
		    uint64_t features, unsigned nr_queues, uint16_t max_size);
/* Frees what init made; safe on a zeroed or half-initialised device. No lock held. */
void virtio_dev_destroy(struct virtio_dev *d);

/* Feature words as the transports present them (sel 0: bits 0-31, 1: bits 32-63). A driver
 * write after FEATURES_OK is ignored; bits that were not offered are dropped. */
uint32_t virtio_get_features(struct virtio_dev *d, unsigned sel);
/* The one feature word of the legacy interface (transitional PCI BAR0, virtio-mmio version 1):
 * bits 0-31 of the offer plus ANY_LAYOUT, which a transitional device must offer there (section
 * 6.3) and the modern interface never shows (VERSION_1 implies it: 2.7.4). */
uint32_t virtio_get_legacy_features(struct virtio_dev *d);
void virtio_set_driver_features(struct virtio_dev *d, unsigned sel, uint32_t val);

/* A status write. 0 resets the device. Setting FEATURES_OK, through either interface of a
 * transitional device, is refused (the bit stays clear) when the driver accepted a bit that was
 * not offered or did not accept VERSION_1. Setting DRIVER_OK starts the device with what was
 * checked: the features of FEATURES_OK, or for a driver on the legacy interface that never set
 * it, the offered bits among 0-31 it accepted; a driver on the modern interface without
 * FEATURES_OK puts the device in NEEDS_RESET. Bits may only be added, never removed, except by
 * reset: anything else is ignored and logged. */
void virtio_set_status(struct virtio_dev *d, uint8_t status);
void virtio_reset(struct virtio_dev *d);

/* The configuration area as the driver accesses it. Out-of-range bytes read as 0 and are not
 * written. A write that changes the area (after the type's config_write hook had its say) moves
 * the generation. */
void virtio_config_read(struct virtio_dev *d, uint32_t off, uint8_t *data, uint32_t len);
void virtio_config_write(struct virtio_dev *d, uint32_t off, const uint8_t *data, uint32_t len);
/* The device changes its own configuration area, after init: every such change goes through here
 * (or virtio_config_changed), so that the generation moves. Bytes [off, off + len) become data;
 * a range outside the area is a bug and ignored. Returns whether anything changed. */
bool virtio_config_set(struct virtio_dev *d, uint32_t off, const void *data, uint32_t len);
/* The driver reads the configuration generation (virtio-pci shows its low 8 bits, virtio-mmio all
 * 32): what the transports return for the register. */
uint32_t virtio_config_generation(struct virtio_dev *d);

/* The driver stopped queue q (virtio-mmio QueueReady 0, QueuePFN 0): the queue goes back to its
 * state after reset, with its maximum size, and the type drops what it held from it. */
void virtio_queue_stop(struct virtio_dev *d, unsigned q);

/* The transport enables queue q with the addresses and size the driver wrote into
 * d->queues[q].vq. A ring outside RAM puts the device in NEEDS_RESET. 0 or -errno. */
int virtio_queue_enable(struct virtio_dev *d, unsigned q);

/* The kernel's vhost takes over queue q's doorbell (backend/vhost.h): vmm's loop stops watching
 * kick_fd, which stays bound to the doorbell, until virtio_queue_reclaim_kick. Both do nothing
 * when already done. 0 or -errno. */
int virtio_queue_lend_kick(struct virtio_dev *d, unsigned q);
int virtio_queue_reclaim_kick(struct virtio_dev *d, unsigned q);

/* Doorbell: a notify write that did not go through the ioeventfd (or a test) rings the queue's
 * eventfd, so the work still happens on the I/O thread. Any thread, no lock needed. */
void virtio_kick(struct virtio_dev *d, unsigned q);
/* What the I/O thread runs for a kick: the type's queue_notify if the device is live. Takes the
 * lock itself. */
void virtio_process(struct virtio_dev *d, unsigned q);

/* virtq_pop() for device types: a malformed ring also puts the device in NEEDS_RESET, with a
 * message. 1, 0 (empty) or -errno. */
int virtio_pop(struct virtio_dev *d, unsigned q, struct virtq_elem *e);

/* Device types call these after virtq_push(): interrupt the driver for queue q if it wants one. */
void virtio_notify(struct virtio_dev *d, unsigned q);
/* The transport's queue_irqfd for queue q, or -1. */
int virtio_queue_irqfd(struct virtio_dev *d, unsigned q);
/* Transports call it when what queue_irqfd answers may have changed: the type's irq_route. */
void virtio_irq_route_changed(struct virtio_dev *d);
/* Interrupt the driver for queue q now, without looking at the ring's suppression: for a ring
 * served elsewhere (the kernel's vhost decided the driver wants it). */
void virtio_signal_queue(struct virtio_dev *d, unsigned q);
/* Tell the driver its configuration changed (a configuration change notification, after
 * DRIVER_OK). Moves the generation too, for a change made without virtio_config_set. */
void virtio_config_changed(struct virtio_dev *d);
/* For transports without MSI-X: set an ISR bit and raise the line. */
void virtio_raise_isr(struct virtio_dev *d, uint8_t bit);
/* The driver reads the ISR: returns it and clears it (the line drops at the next EOI). */
uint8_t virtio_read_isr(struct virtio_dev *d);

/* Logs (info level) the device's status and each queue's state as both sides see it: what to
 * look at when a guest seems stuck on a device (vmm calls it when --timeout expires). */
void virtio_log_state(struct virtio_dev *d);

/* The guest did something the spec forbids (a malformed ring, a bad request): set NEEDS_RESET,
 * stop processing the device's queues, log once, and tell the driver. */
void virtio_fail(struct virtio_dev *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Whether the device is live: DRIVER_OK and not NEEDS_RESET. */
bool virtio_live(const struct virtio_dev *d);

#endif
