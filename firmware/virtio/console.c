#include "virtio/console.h"
#include "lib/mem.h"

int virtio_console_init(struct virtio_console *c, struct virtio_dev *d,
			const struct virtio_ring_opts *opts)
{
	int ret;

	c->dev = d;
	/* Neither SIZE nor MULTIPORT (5.3.3): one port, port 0, on queues 0 and 1 (5.3.2). */
	if ((ret = virtio_negotiate(d, 0, opts)) ||
	    (ret = virtio_queue_setup(d, &c->rx, 0, opts)) ||
	    (ret = virtio_queue_setup(d, &c->tx, 1, opts)))
		return ret;
	/* The receiveq gets buffers for input before the device goes live (5.3.5). Nothing here
	 * reads them: they show the device-writable direction, and wait. */
	c->rx_buf = mem_alloc(CONSOLE_RX_BUFS * CONSOLE_RX_SIZE, 16);
	if (!c->rx_buf)
		return VIRTIO_ERR_NOMEM;
	for (unsigned i = 0; i < CONSOLE_RX_BUFS; i++) {
		uint8_t *p = c->rx_buf + i * CONSOLE_RX_SIZE;
		struct vq_buf b = {
			.addr = (uintptr_t)p,
			.len = CONSOLE_RX_SIZE,
			.device_writes = true,
		};

		if ((ret = vq_add_chain(&c->rx, &b, 1, p)))
			return ret;
	}
	if ((ret = virtio_driver_ok(d)))
		return ret;
	/* Kicks only once the device is live (3.1.1). */
	vq_kick(&c->rx);
	return 0;
}

int virtio_console_write(struct virtio_console *c, const char *s, uint32_t len)
{
	struct vq_buf b = { .addr = (uintptr_t)s, .len = len, .device_writes = false };
	void *token;
	uint32_t written;
	int ret;

	/* Output is one device-readable buffer in the transmitq (5.3.6). */
	if ((ret = vq_add_chain(&c->tx, &b, 1, (void *)s)))
		return ret;
	vq_kick(&c->tx);
	if ((ret = vq_wait_used(&c->tx, &token, &written)))
		return ret;
	return token == s ? 0 : VIRTIO_ERR_RING;
}
