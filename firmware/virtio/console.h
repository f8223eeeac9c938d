/* The console's driver (5.3), port 0 only: its receiveq and transmitq. */
#ifndef FW_VIRTIO_CONSOLE_H
#define FW_VIRTIO_CONSOLE_H

#include "virtio/virtqueue.h"

#define CONSOLE_RX_BUFS 2
#define CONSOLE_RX_SIZE 64

struct virtio_console {
	struct virtio_dev *dev;
	struct vq rx, tx; /* port 0's receiveq (input) and transmitq (output) */
	uint8_t *rx_buf;  /* CONSOLE_RX_BUFS buffers the device may fill with input */
};

int virtio_console_init(struct virtio_console *c, struct virtio_dev *d,
			const struct virtio_ring_opts *opts);
/* Writes len bytes of s to port 0 and waits until the device has taken them. */
int virtio_console_write(struct virtio_console *c, const char *s, uint32_t len);

#endif
