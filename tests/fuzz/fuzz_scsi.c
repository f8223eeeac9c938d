/* libFuzzer target for the SCSI command layer (scsi_disk.c): the guest controls the CDB, its
 * length (cdb_size), the data-out bytes and the size and shape of the data-in buffers. Input:
 *
 *   0     flags: bit 0 read-only, 1 can discard, 2 can write zeroes, 3 a missing LUN (the target
 *         answers), 4 the well-known LUN, 5 then fail the transfer (scsi_io_failed)
 *   1-8   disk size in bytes, le64 (any: empty, unaligned, huge)
 *   9     CDB length, value % 33
 *   10-11 data-in bytes, le16; 12 where the data-in buffer splits into two iovecs (also the
 *         target's LUN count, 1 + value % 8)
 *   13    where the data-out splits
 *   14-   the CDB, then data-out
 *
 * Data-in and data-out are heap buffers of exactly their size, so ASan sees any access past
 * them. It checks what the callers rely on: data-in never written past its buffers, a residual
 * within the buffers, sense only with CHECK CONDITION, and every range handed over for a
 * transfer inside the disk, within the buffers and never a write on a read-only LUN. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "virtio/scsi_disk.h"

#define HDR 14

/* Splits buf[0..len) into up to two iovecs at `at`; returns how many. */
static unsigned split(uint8_t *buf, size_t len, size_t at, struct iovec *iov)
{
	if (!len)
		return 0;
	at = at % (len + 1);
	if (at == 0 || at == len) {
		iov[0] = (struct iovec){buf, len};
		return 1;
	}
	iov[0] = (struct iovec){buf, at};
	iov[1] = (struct iovec){buf + at, len - at};
	return 2;
}

static void check_ranges(const struct scsi_disk *sd, const struct scsi_result *r, size_t in_len,
			 size_t out_len)
{
	uint64_t disk_bytes = sd->blocks * SCSI_BLOCK, total = 0;

	if (r->action == SCSI_ACT_NONE) {
		check(r->nr_ranges == 0 || r->status == SCSI_STATUS_GOOD);
		return;
	}
	check(r->status == SCSI_STATUS_GOOD && !r->overrun);
	check(!sd->readonly || r->action == SCSI_ACT_READ);
	check(r->nr_ranges <= SCSI_MAX_UNMAP_DESC);
	check(r->action == SCSI_ACT_FLUSH || r->nr_ranges >= 1);
	for (unsigned i = 0; i < r->nr_ranges; i++) {
		const struct scsi_range *g = &r->range[i];

		check(g->len > 0 && g->len % SCSI_BLOCK == 0 && g->off % SCSI_BLOCK == 0);
		check(g->off <= disk_bytes && g->len <= disk_bytes - g->off);
		total += g->len;
	}
	switch (r->action) {
	case SCSI_ACT_READ:
		check(r->nr_ranges == 1 && r->range[0].len <= in_len);
		check(r->data_in == r->range[0].len);
		check(r->range[0].len <= (uint64_t)SCSI_MAX_XFER_BLOCKS * SCSI_BLOCK);
		break;
	case SCSI_ACT_WRITE:
		check(r->nr_ranges == 1 && r->range[0].len <= out_len);
		check(r->range[0].len <= (uint64_t)SCSI_MAX_XFER_BLOCKS * SCSI_BLOCK);
		break;
	case SCSI_ACT_DISCARD:
		check(sd->can_discard);
		check(total <= (uint64_t)SCSI_MAX_UNMAP_BLOCKS * SCSI_BLOCK);
		break;
	case SCSI_ACT_WRITE_ZEROES:
		check(sd->can_write_zeroes && r->nr_ranges == 1);
		check(total <= (uint64_t)SCSI_MAX_WS_BLOCKS * SCSI_BLOCK);
		break;
	default:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct iovec in[2], out[2];
	struct scsi_result r;
	struct scsi_disk sd;
	struct disk d = {.phys_block = 4096};
	uint8_t cdb[32];
	uint8_t *inbuf, *outbuf;
	size_t cdb_len, in_len, out_len;
	uint8_t flags;

	const uint8_t *h = data;

	if (size < HDR)
		return 0;
	flags = data[0];
	for (int i = 8; i >= 1; i--)
		d.size = d.size << 8 | data[i];
	d.readonly = flags & 1;
	d.can_discard = flags & 2;
	d.can_write_zeroes = flags & 4;
	cdb_len = data[9] % 33;
	in_len = (size_t)data[10] | (size_t)data[11] << 8;
	data += HDR;
	size -= HDR;
	if (cdb_len > size)
		cdb_len = size;
	memcpy(cdb, data, cdb_len);
	out_len = size - cdb_len;
	/* Exact-size heap copies: ASan sees a byte past either end. */
	inbuf = malloc(in_len ? in_len : 1);
	outbuf = malloc(out_len ? out_len : 1);
	check(inbuf && outbuf);
	memcpy(outbuf, data + cdb_len, out_len);
	memset(inbuf, 0xa5, in_len);

	scsi_disk_init(&sd, &d, 1 + h[12] % 8, "fuzz");
	struct scsi_cmd c = {.cdb = cdb,
			     .cdb_len = cdb_len,
			     .out = out,
			     .out_num = split(outbuf, out_len, h[13], out),
			     .in = in,
			     .in_num = split(inbuf, in_len, h[12], in)};

	if (flags & 8)
		scsi_target_exec(sd.nr_luns, flags & 16, &c, &r);
	else
		scsi_disk_exec(&sd, &c, &r);

	check(r.buf_len == in_len + out_len);
	check(r.data_in <= in_len && r.resid <= r.buf_len);
	check(r.status == SCSI_STATUS_GOOD || r.status == SCSI_STATUS_CHECK_CONDITION);
	check((r.status == SCSI_STATUS_CHECK_CONDITION) == (r.sense_len == SCSI_SENSE_LEN));
	check(r.sense_len == 0 || (r.sense[0] == 0x70 && r.sense[7] == 10));
	check(!r.overrun || r.action == SCSI_ACT_NONE);
	if (flags & 8)
		check(r.action == SCSI_ACT_NONE);
	check_ranges(&sd, &r, in_len, out_len);
	if (r.action != SCSI_ACT_NONE && (flags & 32)) {
		scsi_io_failed(&r, -EIO);
		check(r.status == SCSI_STATUS_CHECK_CONDITION && r.action == SCSI_ACT_NONE);
		check(r.data_in == 0 && r.resid == r.buf_len);
	}
	free(inbuf);
	free(outbuf);
	return 0;
}
