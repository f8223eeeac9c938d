/* vmm's device side of one virtqueue, for test_fw_rings.c: the firmware's driver-side headers and
 * vmm's cannot meet in one translation unit (each has its virtio/virtqueue.h), so the device is
 * reached through these few calls with plain types. Guest physical addresses are host addresses
 * here, as the firmware's identity map makes them. */
#ifndef VMM_TEST_FW_DEVICE_H
#define VMM_TEST_FW_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fw_device;

/* A device whose guest RAM is [ram, ram + len), at guest addresses equal to the host's. */
struct fw_device *fw_device_new(void *ram, size_t len);
void fw_device_free(struct fw_device *d);
/* The queue as a transport hands it over: its size, three areas and the negotiated features.
 * 0 or -errno (virtq_enable's). */
int fw_device_enable(struct fw_device *d, uint64_t features, uint16_t size, uint64_t desc,
		     uint64_t driver, uint64_t device);
/* One run of a queue handler after a kick, as vmm's devices do it: take every available chain,
 * check each readable byte is the one before it plus one, write len - 1 bytes (all of a 1-byte
 * chain, none of a chain with nothing writable) of 0x5a, 0x5b, ... into its writable buffers, give
 * them back one by one (last taken first, when `reverse`) calling between(ctx) after each, as a
 * driver polling at the same time would look in, re-enable notifications and go on while more
 * came; then decide on the notification. Returns the chains served, or -errno for a malformed
 * ring; *notify: whether a used buffer notification is due; *pending: the used entries (packed:
 * ring slots) it was decided on. */
int fw_device_run(struct fw_device *d, bool reverse, void (*between)(void *), void *ctx,
		  bool *notify, unsigned *pending);
/* Readable bytes that broke the pattern, so far. */
unsigned fw_device_bad_bytes(const struct fw_device *d);

#endif
