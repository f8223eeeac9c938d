/* The SCSI command layer on its own: CDBs in, data, sense and transfer ranges out, with a disk
 * geometry and no file. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "virtio/scsi_disk.h"

#define MIB_BLOCKS 2048 /* a 1 MiB disk */
#define GUARD	   0xa5

/* One command with a data-in buffer of in_len bytes (followed by guard bytes that must stay
 * untouched) and data-out bytes. */
struct run {
	uint8_t cdb[16];
	size_t cdb_len;
	uint8_t in[8192 + 64];
	size_t in_len;
	uint8_t out[8192];
	size_t out_len;
	struct scsi_result r;
};

static struct scsi_disk disk(uint64_t blocks, bool ro, bool discard)
{
	struct disk d = {.size = blocks * 512 + 100, /* a partial last block is not seen */
			 .phys_block = 4096,
			 .readonly = ro,
			 .can_discard = discard,
			 .can_write_zeroes = discard};
	struct scsi_disk sd;

	scsi_disk_init(&sd, &d, 3, "scsi0-1");
	return sd;
}

static void exec_on(const struct scsi_disk *sd, struct run *x, bool target, bool wlun)
{
	struct iovec in = {x->in, x->in_len}, out = {x->out, x->out_len};
	struct scsi_cmd c = {.cdb = x->cdb,
			     .cdb_len = x->cdb_len,
			     .out = &out,
			     .out_num = x->out_len ? 1 : 0,
			     .in = &in,
			     .in_num = x->in_len ? 1 : 0};

	memset(x->in, GUARD, sizeof(x->in));
	if (target)
		scsi_target_exec(sd->nr_luns, wlun, &c, &x->r);
	else
		scsi_disk_exec(sd, &c, &x->r);
	for (size_t i = x->in_len; i < sizeof(x->in); i++)
		assert_int_equal(x->in[i], GUARD); /* never past the data-in buffer */
	assert_true(x->r.data_in <= x->in_len);
	assert_int_equal(x->r.resid + x->r.data_in <= x->r.buf_len, true);
}

/* Sets up the CDB from bytes and runs it on sd with a data-in buffer of in_len bytes. */
static struct run *cmd(const struct scsi_disk *sd, size_t in_len, size_t cdb_len, ...)
{
	static struct run x;
	va_list ap;

	memset(&x, 0, sizeof(x));
	va_start(ap, cdb_len);
	for (size_t i = 0; i < cdb_len; i++)
		x.cdb[i] = (uint8_t)va_arg(ap, int);
	va_end(ap);
	x.cdb_len = cdb_len;
	x.in_len = in_len;
	exec_on(sd, &x, false, false);
	return &x;
}

static void assert_good(const struct run *x)
{
	assert_int_equal(x->r.status, SCSI_STATUS_GOOD);
	assert_int_equal(x->r.sense_len, 0);
	assert_false(x->r.overrun);
}

static void assert_sense(const struct run *x, uint8_t key, uint16_t asc)
{
	assert_int_equal(x->r.status, SCSI_STATUS_CHECK_CONDITION);
	assert_int_equal(x->r.sense_len, 18);
	assert_int_equal(x->r.sense[0], 0x70);
	assert_int_equal(x->r.sense[2], key);
	assert_int_equal(x->r.sense[7], 10);
	assert_int_equal(x->r.sense[12] << 8 | x->r.sense[13], asc);
	assert_int_equal(x->r.action, SCSI_ACT_NONE);
	assert_int_equal(x->r.data_in, 0);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/* ---- INQUIRY ---- */

static void inquiry_standard_data(void **state)
{
	struct scsi_disk sd = disk(MIB_BLOCKS, false, false);
	struct run *x = cmd(&sd, 96, 6, 0x12, 0, 0, 0, 96, 0);

	assert_good(x);
	assert_int_equal(x->r.data_in, 36);
	assert_int_equal(x->r.resid, 96 - 36);
	assert_int_equal(x->in[0], 0x00); /* connected, direct access */
	assert_int_equal(x->in[4], 31);
	assert_true(x->in[7] & 0x02); /* CMDQUE */
	assert_memory_equal(x->in + 8, "VMM     ", 8);
	assert_memory_equal(x->in + 16, "VIRTUAL DISK    ", 16);
	assert_int_equal(x->in[36], GUARD);
}

static void inquiry_allocation_length_and_buffer_truncate(void **state)
{
	struct scsi_disk sd = disk(MIB_BLOCKS, false, false);
	struct run *x = cmd(&sd, 96, 6, 0x12, 0, 0, 0, 5, 0);

	assert_good(x);
	assert_int_equal(x->r.data_in, 5);
	assert_int_equal(x->in[5], GUARD);
	/* A buffer smaller than the allocation length: what fits, and the guard bytes stay. */
	x = cmd(&sd, 10, 6, 0x12, 0, 0, 0, 255, 0);
	assert_good(x);
	assert_int_equal(x->r.data_in, 10);
	assert_int_equal(x->r.resid, 0);
	/* No buffer at all. */
	x = cmd(&sd, 0, 6, 0x12, 0, 0, 0, 36, 0);
	assert_good(x);
	assert_int_equal(x->r.data_in, 0);
}

static void inquiry_vpd_pages(void **state)
{
	struct scsi_disk sd = disk(MIB_BLOCKS, false, true);
	static const uint8_t pages[] = {0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2};
	struct run *x = cmd(&sd, 255, 6, 0x12, 1, 0x00, 0, 255, 0);

	assert_good(x);
	assert_int_equal(x->in[1], 0x00);
	assert_int_equal(x->in[3], sizeof(pages));
	assert_memory_equal(x->in + 4, pages, sizeof(pages));

	x = cmd(&sd, 255, 6, 0x12, 1, 0x80, 0, 255, 0);
	assert_good(x);
	assert_int_equal(x->in[3], 7);
	assert_memory_equal(x->in + 4, "scsi0-1", 7);

	x = cmd(&sd, 255, 6, 0x12, 1, 0x83, 0, 255, 0);
	assert_good(x);
	assert_int_equal(x->in[4] & 0x0f, 2); /* ASCII */
	assert_int_equal(x->in[5] & 0x3f, 1); /* logical unit, T10 vendor ID */
	assert_int_equal(x->in[7], 15);
	assert_memory_equal(x->in + 8, "VMM     scsi0-1", 15);

	x = cmd(&sd, 255, 6, 0x12, 1, 0xb0, 0, 255, 0);
	assert_good(x);
	assert_int_equal(x->in[3], 0x3c);
	assert_int_equal(x->in[6] << 8 | x->in[7], 8); /* 4096-byte host blocks */
	assert_int_equal(be32(x->in + 8), SCSI_MAX_XFER_BLOCKS);
	assert_int_equal(be32(x->in + 28), 8);
	assert_int_equal(be32(x->in + 20), SCSI_MAX_UNMAP_BLOCKS);
	assert_int_equal(be32(x->in + 24), SCSI_MAX_UNMAP_DESC);
	assert_int_equal(be64(x->in + 36), SCSI_MAX_WS_BLOCKS);

	x = cmd(&sd, 255, 6, 0x12, 1, 0xb1, 0, 255, 0);
	assert_good(x);
	assert_int_equal(x->in[4] << 8 | x->in[5], 1); /* non-rotating */

	x = cmd(&sd, 255, 6, 0x12, 1, 0xb2, 0, 255, 0);
	assert_good(x);
	assert_true(x->in[5] & 0x80); /* LBPU */
	assert_true(x->in[5] & 0x40); /* LBPWS */

	/* Without discard: no UNMAP limits, no provisioning bits. */
	sd = disk(MIB_BLOCKS, false, false);
	x = cmd(&sd, 255, 6, 0x12, 1, 0xb0, 0, 255, 0);
	assert_int_equal(be32(x->in + 20), 0);
	x = cmd(&sd, 255, 6, 0x12, 1, 0xb2, 0, 255, 0);
	assert_int_equal(x->in[5], 0);

	x = cmd(&sd, 255, 6, 0x12, 1, 0x89, 0, 255, 0); /* ATA information: not here */
	assert_sense(x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	x = cmd(&sd, 255, 6, 0x12, 0, 0x80, 0, 255, 0); /* a page code without EVPD */
	assert_sense(x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
}

/* ---- simple commands ---- */

static void accepted_commands(void **state)
{
	struct scsi_disk sd = disk(MIB_BLOCKS, false, false);

	assert_good(cmd(&sd, 0, 6, 0x00, 0, 0, 0, 0, 0)); /* TEST UNIT READY */
	assert_good(cmd(&sd, 0, 6, 0x1b, 0, 0, 0, 1, 0)); /* START STOP UNIT */
	assert_good(cmd(&sd, 0, 6, 0x1e, 0, 0, 0, 1, 0)); /* PREVENT ALLOW MEDIUM REMOVAL */
	assert_int_equal(cmd(&sd, 0, 6, 0x00, 0, 0, 0, 0, 0)->r.action, SCSI_ACT_NONE);
}

static void request_sense_reports_no_sense(void **state)
{
	struct scsi_disk sd = disk(MIB_BLOCKS, false, false);
	struct run *x = cmd(&sd, 252, 6, 0x03, 0, 0, 0, 252, 0);

	assert_good(x);
	assert_int_equal(x->r.data_in, 18);
	assert_int_equal(x->in[0], 0x70);
	assert_int_equal(x->in[2], SCSI_SENSE_NO_SENSE);
	assert_int_equal(x->in[12], 0);
	x = cmd(&sd, 252, 6, 0x03, 1, 0, 0, 252, 0); /* descriptor format: not supported */
	assert_sense(x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
}

static void read_capacity(void **state)
{
	struct scsi_disk sd = disk(MIB_BLOCKS, false, false);
	struct run *x = cmd(&sd, 8, 10, 0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0);

	assert_good(x);
	assert_int_equal(be32(x->in), MIB_BLOCKS - 1);
	assert_int_equal(be32(x->in + 4), 512);

	x = cmd(&sd, 32, 16, 0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0);
	assert_good(x);
	assert_int_equal(be64(x->in), MIB_BLOCKS - 1);
	assert_int_equal(be32(x->in + 8), 512);
	assert_int_equal(x->in[13] & 0x0f, 3); /* 4096-byte physical blocks */
	assert_int_equal(x->in[14] & 0x80, 0); /* no LBPME without discard */

	sd = disk(MIB_BLOCKS, false, true);
	x = cmd(&sd, 32, 16, 0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 0, 0);
	assert_good(x);
	assert_int_equal(x->r.data_in, 12); /* allocation length */
	x = cmd(&sd, 32, 16, 0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0);
	assert_true(x->in[14] & 0x80); /* LBPME */

	/* Another service action of SERVICE ACTION IN(16). */
	x = cmd(&sd, 32, 16, 0x9e, 0x12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0);
	assert_sense(x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
}

static void read_capacity10_saturates(void **state)
{
	struct scsi_disk sd = disk(0x100000005ULL, false, false);
	struct run *x = cmd(&sd, 8, 10, 0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0);

	assert_good(x);
	assert_int_equal(be32(x->in), 0xffffffff);
	x = cmd(&sd, 32, 16, 0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0);
	assert_int_equal(be64(x->in), 0x100000004ULL);
	/* Exactly 2^32 blocks: the last LBA 0xffffffff is also "too large" for 10 bytes. */
	sd = disk(0x100000000ULL, false, false);
	x = cmd(&sd, 8, 10, 0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0);
	assert_int_equal(be32(x->in), 0xffffffff);
	sd = disk(0xffffffffULL, false, false);
	x = cmd(&sd, 8, 10, 0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0);
	assert_int_equal(be32(x->in), 0xfffffffe);
}

static void empty_image_has_no_medium(void **state)
{
	struct scsi_disk sd = disk(0, false, true);
	struct run *x;

	assert_int_equal(sd.blocks, 0); /* 100 bytes: less than a block */
	x = cmd(&sd, 0, 6, 0x00, 0, 0, 0, 0, 0);
	assert_sense(x, SCSI_SENSE_NOT_READY, SCSI_ASC_MEDIUM_NOT_PRESENT);
	x = cmd(&sd, 8, 10, 0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0);
	assert_sense(x, SCSI_SENSE_NOT_READY, SCSI_ASC_MEDIUM_NOT_PRESENT);
	x = cmd(&sd, 512, 10, 0x28, 0, 0, 0, 0, 0, 0, 0, 0, 0);
	assert_sense(x, SCSI_SENSE_NOT_READY, SCSI_ASC_MEDIUM_NOT_PRESENT);
	/* What describes the unit still answers. */
	assert_good(cmd(&sd, 96, 6, 0x12, 0, 0, 0, 96, 0));
	assert_good(cmd(&sd, 255, 6, 0x1a, 0, 0x3f, 0, 255, 0));
	assert_good(cmd(&sd, 64, 12, 0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0));
}

/* ---- READ and WRITE ---- */

static void read_write_ranges(void **state)
{
	struct scsi_disk sd = disk(MIB_BLOCKS, false, false);
	struct run *x = cmd(&sd, 8192, 10, 0x28, 0, 0, 0, 0, 10, 0, 0, 4, 0);

	assert_good(x);
	assert_int_equal(x->r.action, SCSI_ACT_READ);
	assert_int_equal(x->r.nr_ranges, 1);
	assert_int_equal(x->r.range[0].off, 10 * 512);
	assert_int_equal(x->r.range[0].len, 4 * 512);
	assert_int_equal(x->r.data_in, 2048);
	assert_int_equal(x->r.resid, 8192 - 2048);

	/* READ(6): 21-bit LBA, and length 0 means 256 blocks. */
	sd = disk(0x200000, false, false);
	x = cmd(&sd, 8192, 6, 0x08, 0x01, 0x02, 0x03, 0, 0);
	assert_int_equal(x->r.overrun, true); /* 128 KiB does not fit 8 KiB */
	assert_int_equal(x->r.action, SCSI_ACT_NONE);
	struct run big;

	memset(&big, 0, sizeof(big));
	big.cdb[0] = 0x08;
	big.cdb[1] = 0x01;
	big.cdb[2] = 0x02;
	big.cdb[3] = 0x03;
	big.cdb_len = 6;
	/* The layer only checks that data-in is large enough: give it a sparse view. */
	{
		static uint8_t buf[256 * 512];
		struct iovec in = {buf, sizeof(buf)};
		struct scsi_cmd c = {.cdb = big.cdb, .cdb_len = 6, .in = &in, .in_num = 1};

		scsi_disk_exec(&sd, &c, &big.r);
		assert_int_equal(big.r.status, SCSI_STATUS_GOOD);
		assert_int_equal(big.r.range[0].off, 0x010203ULL * 512);
		assert_int_equal(big.r.range[0].len, 256 * 512);
	}

	/* WRITE(16) with FUA. */
	sd = disk(MIB_BLOCKS, false, false);
	memset(&big, 0, sizeof(big));
	big.cdb_len = 16;
	big.cdb[0] = 0x8a;
	big.cdb[1] = 0x08;
	big.cdb[9] = 7;
	big.cdb[13] = 2;
	big.out_len = 1024;
	exec_on(&sd, &big, false, false);
	assert_good(&big);
	assert_int_equal(big.r.action, SCSI_ACT_WRITE);
	assert_true(big.r.fua);
	assert_int_equal(big.r.range[0].off, 7 * 512);
	assert_int_equal(big.r.range[0].len, 1024);
	assert_int_equal(big.r.data_in, 0);
	assert_int_equal(big.r.resid, 0);

	/* WRITE(12) with too little data-out. */
	memset(&big, 0, sizeof(big));
	big.cdb_len = 12;
	big.cdb[0] = 0xaa;
	big.cdb[9] = 3;
	big.out_len = 1024;
	exec_on(&sd, &big, false, false);
	assert_true(big.r.overrun);
	assert_int_equal(big.r.action, SCSI_ACT_NONE);
}

static void read_lba_bounds(void **state)
{
	struct scsi_disk sd = disk(MIB_BLOCKS, false, false);
	struct run *x;

	/* The last block reads; one more does not. */
	assert_good(cmd(&sd, 512, 10, 0x28, 0, 0, 0, 0x07, 0xff, 0, 0, 1, 0));
	x = cmd(&sd, 1024, 10, 0x28, 0, 0, 0, 0x07, 0xff, 0, 0, 2, 0);
	assert_sense(x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
	/* An LBA near 2^64 that would wrap. */
	x = cmd(&sd, 1024, 16, 0x88, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 2,
		0, 0);
	assert_sense(x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
	/* Transfer length 0 (READ(10)) moves nothing and is no error, even at the end. */
	x = cmd(&sd, 512, 10, 0x28, 0, 0, 0, 0x08, 0x00, 0, 0, 0, 0);
	assert_good(x);
	assert_int_equal(x->r.action, SCSI_ACT_NONE);
	x = cmd(&sd, 512, 10, 0x28, 0, 0, 0, 0x08, 0x01, 0, 0, 0, 0);
	assert_sense(x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
	/* READ(6) length 0 is 256 blocks: past the end of a 100-block disk. */
	sd = disk(100, false, false);
	x = cmd(&sd, 8192, 6, 0x08, 0, 0, 0, 0, 0);
	assert_sense(x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
	/* More than the block limits allow in one command. */
	sd = disk(0x100000, false, false);
	x = cmd(&sd, 8192, 16, 0x88, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0);
	assert_sense(x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	/* RDPROTECT without protection information. */
	x = cmd(&sd, 512, 10, 0x28, 0x20, 0, 0, 0, 0, 0, 0, 1, 0);
	assert_sense(x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
}

static void read_only_lun_refuses_writes(void **state)
{
	struct scsi_disk sd = disk(MIB_BLOCKS, true, true);
	struct run *x;

	x = cmd(&sd, 0, 10, 0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0);
	assert_sense(x, SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);
	x = cmd(&sd, 0, 6, 0x0a, 0, 0, 0, 1, 0);
	assert_sense(x, SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);
	x = cmd(&sd, 0, 16, 0x8a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0);
	assert_sense(x, SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);
	x = cmd(&sd, 0, 10, 0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0);
	assert_sense(x, SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);
	x = cmd(&sd, 0, 16, 0x93, 0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0);
	assert_sense(x, SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);
	/* Reads work, and there is nothing to flush. */
	assert_int_equal(cmd(&sd, 512, 10, 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0)->r.action,
			 SCSI_ACT_READ);
	x = cmd(&sd, 0, 10, 0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0);
	assert_good(x);
	assert_int_equal(x->r.action, SCSI_ACT_NONE);
	/* MODE SENSE shows WP and no write cache. */
	x = cmd(&sd, 255, 6, 0x1a, 0x08, 0x08, 0, 255, 0);
	assert_good(x);
	assert_int_equal(x->in[2], 0x80);
	assert_int_equal(x->in[4 + 2] & 0x04, 0);
}

static void truncated_cdbs_and_bad_opcodes(void **state)
{
	struct scsi_disk sd = disk(MIB_BLOCKS, false, true);
	struct run *x;

	x = cmd(&sd, 512, 6, 0x28, 0, 0, 0, 0, 0); /* READ(10) in 6 bytes */
	assert_sense(x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	x = cmd(&sd, 512, 12, 0x88, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1); /* READ(16) in 12 */
	assert_sense(x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	x = cmd(&sd, 96, 5, 0x12, 0, 0, 0, 96);
	assert_sense(x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	x = cmd(&sd, 96, 0);
	assert_sense(x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	x = cmd(&sd, 96, 9, 0x42, 0, 0, 0, 0, 0, 0, 0, 24); /* UNMAP in 9 */
	assert_sense(x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);

	static const uint8_t unsupported[] = {0x04, 0x15, 0x55, 0x7f, 0x85, 0xa1,
					      0xa3, 0xc0, 0xff, 0x2e, 0x3b};

	for (size_t i = 0; i < sizeof(unsupported); i++) {
		x = cmd(&sd, 96, 16, unsupported[i], 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
		assert_sense(x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_OPCODE);
	}
	/* Without discard or zeroing support, UNMAP and WRITE SAME do not exist. */
	sd = disk(MIB_BLOCKS, false, false);
	x = cmd(&sd, 0, 10, 0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0);
	assert_sense(x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_OPCODE);
	x = cmd(&sd, 0, 10, 0x41, 0x08, 0, 0, 0, 0, 0, 0, 1, 0);
	assert_sense(x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_OPCODE);
}

/* ---- MODE SENSE ---- */

static void mode_sense_pages(void **state)
{
	struct scsi_disk sd = disk(MIB_BLOCKS, false, false);
	struct run *x;

	/* MODE SENSE(6), caching page, with the block descriptor. */
	x = cmd(&sd, 255, 6, 0x1a, 0, 0x08, 0, 255, 0);
	assert_good(x);
	assert_int_equal(x->r.data_in, 4 + 8 + 20);
	assert_int_equal(x->in[0], 4 + 8 + 20 - 1);
	assert_int_equal(x->in[2], 0); /* not write protected, no DPOFUA */
	assert_int_equal(x->in[3], 8);
	assert_int_equal(be32(x->in + 4), MIB_BLOCKS);
	assert_int_equal(be32(x->in + 8) & 0xffffff, 512);
	assert_int_equal(x->in[12], 0x08);
	assert_int_equal(x->in[13], 0x12);
	assert_true(x->in[14] & 0x04); /* WCE */

	/* DBD, all pages: caching then control. */
	x = cmd(&sd, 255, 6, 0x1a, 0x08, 0x3f, 0, 255, 0);
	assert_good(x);
	assert_int_equal(x->in[3], 0);
	assert_int_equal(x->r.data_in, 4 + 20 + 12);
	assert_int_equal(x->in[4], 0x08);
	assert_int_equal(x->in[24], 0x0a);
	assert_int_equal(x->in[25], 0x0a);

	/* The changeable mask: nothing can change. */
	x = cmd(&sd, 255, 6, 0x1a, 0x08, 0x48, 0, 255, 0);
	assert_good(x);
	assert_int_equal(x->in[6], 0);

	/* Allocation length 4: just the header, which still tells the full length. */
	x = cmd(&sd, 255, 6, 0x1a, 0x08, 0x3f, 0, 4, 0);
	assert_good(x);
	assert_int_equal(x->r.data_in, 4);
	assert_int_equal(x->in[0], 4 + 20 + 12 - 1);
	assert_int_equal(x->in[4], GUARD);

	/* MODE SENSE(10) with long LBA block descriptor. */
	x = cmd(&sd, 255, 10, 0x5a, 0x10, 0x0a, 0, 0, 0, 0, 0, 255, 0);
	assert_good(x);
	assert_int_equal(x->in[0] << 8 | x->in[1], 8 + 16 + 12 - 2);
	assert_int_equal(x->in[4] & 1, 1);
	assert_int_equal(x->in[7], 16);
	assert_int_equal(be64(x->in + 8), MIB_BLOCKS);
	assert_int_equal(be32(x->in + 20), 512);
	assert_int_equal(x->in[24], 0x0a);

	/* Saved values, an unknown page, a subpage. */
	x = cmd(&sd, 255, 6, 0x1a, 0, 0xc8, 0, 255, 0);
	assert_sense(x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_SAVING_PARAMS_UNSUP);
	x = cmd(&sd, 255, 6, 0x1a, 0, 0x1c, 0, 255, 0);
	assert_sense(x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	x = cmd(&sd, 255, 6, 0x1a, 0, 0x08, 1, 255, 0);
	assert_sense(x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	assert_good(cmd(&sd, 255, 6, 0x1a, 0, 0x3f, 0xff, 255, 0));
}

/* ---- REPORT LUNS ---- */

static void report_luns(void **state)
{
	struct scsi_disk sd = disk(MIB_BLOCKS, false, false);
	struct run *x = cmd(&sd, 256, 12, 0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0);

	assert_good(x);
	assert_int_equal(x->r.data_in, 8 + 3 * 8);
	assert_int_equal(be32(x->in), 24);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(x->in[8 + 8 * i], 0);
		assert_int_equal(x->in[9 + 8 * i], i);
	}
	/* Allocation length 16: the header still says 24 bytes of list. */
	x = cmd(&sd, 256, 12, 0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0);
	assert_good(x);
	assert_int_equal(x->r.data_in, 16);
	assert_int_equal(be32(x->in), 24);
	/* Under 16 is invalid (SPC-4), and so is an unknown SELECT REPORT. */
	x = cmd(&sd, 256, 12, 0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 0, 0);
	assert_sense(x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	x = cmd(&sd, 256, 12, 0xa0, 0, 0x10, 0, 0, 0, 0, 0, 1, 0, 0, 0);
	assert_sense(x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	/* Well-known LUNs only: the REPORT LUNS one. */
	x = cmd(&sd, 256, 12, 0xa0, 0, 0x01, 0, 0, 0, 0, 0, 1, 0, 0, 0);
	assert_good(x);
	assert_int_equal(be32(x->in), 8);
	assert_int_equal(x->in[8], 0xc1);
	assert_int_equal(x->in[9], 0x01);
}

static void missing_lun_answers(void **state)
{
	struct scsi_disk sd = disk(MIB_BLOCKS, false, false);
	struct run x;

	memset(&x, 0, sizeof(x));
	x.cdb[0] = 0x12;
	x.cdb[4] = 96;
	x.cdb_len = 6;
	x.in_len = 96;
	exec_on(&sd, &x, true, false);
	assert_good(&x);
	assert_int_equal(x.in[0], 0x7f); /* qualifier 3, no device type */
	exec_on(&sd, &x, true, true);
	assert_int_equal(x.in[0], 0x1e); /* the well-known LUN */

	memset(x.cdb, 0, sizeof(x.cdb));
	x.cdb[0] = 0xa0;
	x.cdb[9] = 64;
	x.cdb_len = 12;
	exec_on(&sd, &x, true, false);
	assert_good(&x);
	assert_int_equal(be32(x.in), 24);

	memset(x.cdb, 0, sizeof(x.cdb));
	x.cdb[0] = 0x03;
	x.cdb[4] = 18;
	x.cdb_len = 6;
	exec_on(&sd, &x, true, false);
	assert_good(&x);
	assert_int_equal(x.in[2], SCSI_SENSE_ILLEGAL_REQUEST);
	assert_int_equal(x.in[12], 0x25);

	memset(x.cdb, 0, sizeof(x.cdb));
	x.cdb[0] = 0x00;
	exec_on(&sd, &x, true, false);
	assert_sense(&x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LUN_NOT_SUPPORTED);
	x.cdb[0] = 0x28;
	x.cdb_len = 10;
	exec_on(&sd, &x, true, false);
	assert_sense(&x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LUN_NOT_SUPPORTED);
}

/* ---- SYNCHRONIZE CACHE, VERIFY ---- */

static void sync_cache_and_verify(void **state)
{
	struct scsi_disk sd = disk(MIB_BLOCKS, false, false);
	struct run *x;

	x = cmd(&sd, 0, 10, 0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0);
	assert_good(x);
	assert_int_equal(x->r.action, SCSI_ACT_FLUSH);
	x = cmd(&sd, 0, 16, 0x91, 0, 0, 0, 0, 0, 0, 0, 0x07, 0xff, 0, 0, 0, 1, 0, 0);
	assert_int_equal(x->r.action, SCSI_ACT_FLUSH);
	x = cmd(&sd, 0, 16, 0x91, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x01, 0, 0, 0, 0, 0, 0);
	assert_sense(x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);

	x = cmd(&sd, 0, 10, 0x2f, 0, 0, 0, 0, 0, 0, 0, 8, 0);
	assert_good(x);
	assert_int_equal(x->r.action, SCSI_ACT_NONE);
	x = cmd(&sd, 0, 10, 0x2f, 0, 0, 0, 0x07, 0xff, 0, 0, 2, 0);
	assert_sense(x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
	x = cmd(&sd, 0, 10, 0x2f, 0x02, 0, 0, 0, 0, 0, 0, 1, 0); /* BYTCHK */
	assert_sense(x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
}

/* ---- UNMAP and WRITE SAME ---- */

static struct run *unmap(const struct scsi_disk *sd, uint16_t plen, size_t out_len, unsigned ndesc,
			 const uint64_t *lba, const uint32_t *nb)
{
	static struct run x;

	memset(&x, 0, sizeof(x));
	x.cdb[0] = 0x42;
	x.cdb[7] = (uint8_t)(plen >> 8);
	x.cdb[8] = (uint8_t)plen;
	x.cdb_len = 10;
	x.out_len = out_len;
	x.out[0] = (uint8_t)((6 + 16 * ndesc) >> 8);
	x.out[1] = (uint8_t)(6 + 16 * ndesc);
	x.out[2] = (uint8_t)((16 * ndesc) >> 8);
	x.out[3] = (uint8_t)(16 * ndesc);
	for (unsigned i = 0; i < ndesc; i++) {
		uint8_t *d = x.out + 8 + 16 * i;

		for (int b = 0; b < 8; b++)
			d[b] = (uint8_t)(lba[i] >> (56 - 8 * b));
		for (int b = 0; b < 4; b++)
			d[8 + b] = (uint8_t)(nb[i] >> (24 - 8 * b));
	}
	exec_on(sd, &x, false, false);
	return &x;
}

static void unmap_parameter_list(void **state)
{
	struct scsi_disk sd = disk(MIB_BLOCKS, false, true);
	uint64_t lba[17] = {8, 100};
	uint32_t nb[17] = {8, 0};
	struct run *x;

	x = unmap(&sd, 24, 24, 1, lba, nb);
	assert_good(x);
	assert_int_equal(x->r.action, SCSI_ACT_DISCARD);
	assert_int_equal(x->r.nr_ranges, 1);
	assert_int_equal(x->r.range[0].off, 8 * 512);
	assert_int_equal(x->r.range[0].len, 8 * 512);
	/* A zero-block descriptor is skipped. */
	x = unmap(&sd, 40, 40, 2, lba, nb);
	assert_good(x);
	assert_int_equal(x->r.nr_ranges, 1);
	/* No parameter list: nothing to do. */
	x = unmap(&sd, 0, 0, 0, lba, nb);
	assert_good(x);
	assert_int_equal(x->r.action, SCSI_ACT_NONE);
	/* A list too short for its header. */
	x = unmap(&sd, 6, 24, 1, lba, nb);
	assert_sense(x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_PARAM_LIST_LENGTH);
	/* A parameter list length longer than the data-out buffer. */
	x = unmap(&sd, 40, 24, 1, lba, nb);
	assert_true(x->r.overrun);
	assert_int_equal(x->r.action, SCSI_ACT_NONE);
	/* A range past the end. */
	lba[0] = MIB_BLOCKS - 4;
	x = unmap(&sd, 24, 24, 1, lba, nb);
	assert_sense(x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
	lba[0] = UINT64_MAX - 2;
	x = unmap(&sd, 24, 24, 1, lba, nb);
	assert_sense(x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
	/* More descriptors than the block limits allow. */
	for (int i = 0; i < 17; i++) {
		lba[i] = (uint64_t)i * 10;
		nb[i] = 1;
	}
	x = unmap(&sd, 8 + 16 * 17, 8 + 16 * 17, 17, lba, nb);
	assert_sense(x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_PARAM);
	x = unmap(&sd, 8 + 16 * 16, 8 + 16 * 16, 16, lba, nb);
	assert_good(x);
	assert_int_equal(x->r.nr_ranges, 16);
	/* The list length cuts the descriptors: only what it covers counts. */
	x = unmap(&sd, 8 + 16 * 2 + 5, 8 + 16 * 16, 16, lba, nb);
	assert_good(x);
	assert_int_equal(x->r.nr_ranges, 2);
	/* More blocks than one UNMAP may deallocate. */
	sd = disk(0x1000000, false, true);
	lba[0] = 0;
	nb[0] = SCSI_MAX_UNMAP_BLOCKS;
	lba[1] = SCSI_MAX_UNMAP_BLOCKS;
	nb[1] = 1;
	x = unmap(&sd, 40, 40, 2, lba, nb);
	assert_sense(x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_PARAM);
	/* ANCHOR is not supported. */
	x = unmap(&sd, 24, 24, 1, lba, nb);
	assert_good(x);
	x->cdb[1] = 1;
	exec_on(&sd, x, false, false);
	assert_sense(x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
}

static void write_same(void **state)
{
	struct scsi_disk sd = disk(MIB_BLOCKS, false, true);
	struct run x;

	/* WRITE SAME(16) with UNMAP and a block of zeros. */
	memset(&x, 0, sizeof(x));
	x.cdb[0] = 0x93;
	x.cdb[1] = 0x08;
	x.cdb[9] = 16;
	x.cdb[13] = 32;
	x.cdb_len = 16;
	x.out_len = 512;
	exec_on(&sd, &x, false, false);
	assert_good(&x);
	assert_int_equal(x.r.action, SCSI_ACT_WRITE_ZEROES);
	assert_true(x.r.unmap);
	assert_int_equal(x.r.range[0].off, 16 * 512);
	assert_int_equal(x.r.range[0].len, 32 * 512);
	/* Another pattern cannot be replicated. */
	x.out[100] = 1;
	exec_on(&sd, &x, false, false);
	assert_sense(&x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	/* No data-out block. */
	x.out_len = 100;
	exec_on(&sd, &x, false, false);
	assert_true(x.r.overrun);
	/* NDOB: no data-out needed. */
	x.out_len = 0;
	x.cdb[1] = 0x09;
	exec_on(&sd, &x, false, false);
	assert_good(&x);
	assert_int_equal(x.r.action, SCSI_ACT_WRITE_ZEROES);
	/* Zero blocks (WSNZ) and ranges past the end. */
	x.cdb[13] = 0;
	exec_on(&sd, &x, false, false);
	assert_sense(&x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	x.cdb[8] = 0x07;
	x.cdb[9] = 0xff;
	x.cdb[13] = 2;
	exec_on(&sd, &x, false, false);
	assert_sense(&x, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);

	/* WRITE SAME(10) without UNMAP. */
	memset(&x, 0, sizeof(x));
	x.cdb[0] = 0x41;
	x.cdb[5] = 1;
	x.cdb[8] = 4;
	x.cdb_len = 10;
	x.out_len = 512;
	exec_on(&sd, &x, false, false);
	assert_good(&x);
	assert_int_equal(x.r.action, SCSI_ACT_WRITE_ZEROES);
	assert_false(x.r.unmap);
	assert_int_equal(x.r.range[0].off, 512);
}

static void io_failure_sense(void **state)
{
	struct scsi_disk sd = disk(MIB_BLOCKS, false, true);
	struct run *x = cmd(&sd, 4096, 10, 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0);

	scsi_io_failed(&x->r, -EIO);
	assert_sense(x, SCSI_SENSE_MEDIUM_ERROR, SCSI_ASC_UNRECOVERED_READ_ERROR);
	assert_int_equal(x->r.resid, 4096);
	x = cmd(&sd, 0, 10, 0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0);
	scsi_io_failed(&x->r, -ENOSPC);
	assert_sense(x, SCSI_SENSE_DATA_PROTECT, SCSI_ASC_SPACE_ALLOC_FAILED);
	x = cmd(&sd, 0, 10, 0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0);
	scsi_io_failed(&x->r, -EIO);
	assert_sense(x, SCSI_SENSE_HARDWARE_ERROR, SCSI_ASC_INTERNAL_TARGET_FAILURE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(inquiry_standard_data),
		cmocka_unit_test(inquiry_allocation_length_and_buffer_truncate),
		cmocka_unit_test(inquiry_vpd_pages),
		cmocka_unit_test(accepted_commands),
		cmocka_unit_test(request_sense_reports_no_sense),
		cmocka_unit_test(read_capacity),
		cmocka_unit_test(read_capacity10_saturates),
		cmocka_unit_test(empty_image_has_no_medium),
		cmocka_unit_test(read_write_ranges),
		cmocka_unit_test(read_lba_bounds),
		cmocka_unit_test(read_only_lun_refuses_writes),
		cmocka_unit_test(truncated_cdbs_and_bad_opcodes),
		cmocka_unit_test(mode_sense_pages),
		cmocka_unit_test(report_luns),
		cmocka_unit_test(missing_lun_answers),
		cmocka_unit_test(sync_cache_and_verify),
		cmocka_unit_test(unmap_parameter_list),
		cmocka_unit_test(write_same),
		cmocka_unit_test(io_failure_sense),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
