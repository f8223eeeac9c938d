#include "virtio/scsi_disk.h"

#include <errno.h>
#include <string.h>

/* Operation codes (SPC-4, SBC-3). */
#define TEST_UNIT_READY	    0x00
#define REQUEST_SENSE	    0x03
#define READ_6		    0x08
#define WRITE_6		    0x0a
#define INQUIRY		    0x12
#define MODE_SENSE_6	    0x1a
#define START_STOP_UNIT	    0x1b
#define PREVENT_ALLOW	    0x1e
#define READ_CAPACITY_10    0x25
#define READ_10		    0x28
#define WRITE_10	    0x2a
#define VERIFY_10	    0x2f
#define SYNCHRONIZE_CACHE   0x35
#define WRITE_SAME_10	    0x41
#define UNMAP		    0x42
#define MODE_SENSE_10	    0x5a
#define READ_16		    0x88
#define WRITE_16	    0x8a
#define VERIFY_16	    0x8f
#define SYNCHRONIZE_CACHE16 0x91
#define WRITE_SAME_16	    0x93
#define SERVICE_ACTION_IN   0x9e
#define SAI_READ_CAPACITY16 0x10
#define REPORT_LUNS	    0xa0
#define READ_12		    0xa8
#define WRITE_12	    0xaa
#define VERIFY_12	    0xaf

#define WLUN_REPORT_LUNS 0xc101 /* the well-known LUN's first two bytes */

/* Large enough for the longest answer: REPORT LUNS with SCSI_MAX_LUNS entries and the WLUN. */
#define DATA_MAX (8 + 8 * (SCSI_MAX_LUNS + 1))

static const char vendor[8] = "VMM     ";
static const char product[16] = "VIRTUAL DISK    ";
static const char revision[4] = "1.0 ";

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

static uint64_t iov_total(const struct iovec *iov, unsigned n)
{
	uint64_t t = 0;

	for (unsigned i = 0; i < n; i++)
		t += iov[i].iov_len;
	return t;
}

void scsi_set_sense(struct scsi_result *r, uint8_t key, uint16_t asc)
{
	r->status = SCSI_STATUS_CHECK_CONDITION;
	r->action = SCSI_ACT_NONE;
	r->nr_ranges = 0;
	r->data_in = 0;
	r->resid = r->buf_len;
	memset(r->sense, 0, sizeof(r->sense));
	r->sense[0] = 0x70; /* current error, fixed format */
	r->sense[2] = key;
	r->sense[7] = SCSI_SENSE_LEN - 8; /* additional sense length */
	r->sense[12] = (uint8_t)(asc >> 8);
	r->sense[13] = (uint8_t)asc;
	r->sense_len = SCSI_SENSE_LEN;
}

void scsi_io_failed(struct scsi_result *r, int err)
{
	bool wrote = r->action != SCSI_ACT_READ;

	if (err == -ENOSPC) /* a sparse image whose host file system is full */
		scsi_set_sense(r, SCSI_SENSE_DATA_PROTECT, SCSI_ASC_SPACE_ALLOC_FAILED);
	else if (err == -EOPNOTSUPP) /* the host cannot discard or zero after all */
		scsi_set_sense(r, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_OPCODE);
	else if (r->action == SCSI_ACT_READ || r->action == SCSI_ACT_WRITE)
		scsi_set_sense(r, SCSI_SENSE_MEDIUM_ERROR,
			       wrote ? SCSI_ASC_WRITE_ERROR : SCSI_ASC_UNRECOVERED_READ_ERROR);
	else
		scsi_set_sense(r, SCSI_SENSE_HARDWARE_ERROR, SCSI_ASC_INTERNAL_TARGET_FAILURE);
}

static void invalid_field(struct scsi_result *r)
{
	scsi_set_sense(r, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
}

/* Copies the answer into data-in: at most alloc bytes (the CDB's allocation length) and never
 * more than the buffers hold; a shorter buffer is not an error, the residual says what fit. */
static void data_in(const struct scsi_cmd *c, struct scsi_result *r, const uint8_t *buf, size_t len,
		    uint64_t alloc)
{
	size_t done = 0;

	if (len > alloc)
		len = (size_t)alloc;
	for (unsigned i = 0; i < c->in_num && done < len; i++) {
		size_t n = c->in[i].iov_len;

		if (n > len - done)
			n = len - done;
		memcpy(c->in[i].iov_base, buf + done, n);
		done += n;
	}
	r->data_in = done;
	r->resid = r->buf_len - done;
}

/* Reads the first len bytes of data-out (the caller checked that they are there). */
static void data_out(const struct scsi_cmd *c, uint8_t *buf, size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < c->out_num && done < len; i++) {
		size_t n = c->out[i].iov_len;

		if (n > len - done)
			n = len - done;
		memcpy(buf + done, c->out[i].iov_base, n);
		done += n;
	}
}

/* The CDB length an opcode's group implies (SPC-4 4.2.5.1); 0 for the variable-length and
 * vendor-specific groups, none of which is implemented. */
static size_t cdb_group_len(uint8_t op)
{
	static const uint8_t len[8] = {6, 10, 10, 0, 16, 12, 0, 0};

	return len[op >> 5];
}

/* ---- INQUIRY ---- */

static size_t inquiry_std(uint8_t *b, uint8_t peripheral)
{
	memset(b, 0, 36);
	b[0] = peripheral;
	b[2] = 6;    /* SPC-4 */
	b[3] = 0x12; /* HISUP, response data format 2 */
	b[4] = 36 - 5;
	/* CMDQUE: Linux gives a LUN without it a queue depth of one. */
	b[7] = 0x02;
	memcpy(b + 8, vendor, 8);
	memcpy(b + 16, product, 16);
	memcpy(b + 32, revision, 4);
	return 36;
}

/* Logical blocks per physical block, as a power of two (READ CAPACITY(16) byte 13). */
static uint8_t phys_exponent(const struct scsi_disk *sd)
{
	uint8_t e = 0;

	while (e < 15 && ((uint64_t)SCSI_BLOCK << (e + 1)) <= sd->phys_block &&
	       sd->phys_block % (SCSI_BLOCK << (e + 1)) == 0)
		e++;
	return e;
}

static size_t vpd_page(const struct scsi_disk *sd, uint8_t page, uint8_t *b)
{
	size_t slen = strlen(sd->serial), n;
	bool wsame = sd->can_discard || sd->can_write_zeroes;

	memset(b, 0, 64);
	b[0] = 0x00; /* qualifier 0, direct access */
	b[1] = page;
	switch (page) {
	case 0x00: { /* supported pages, ascending */
		static const uint8_t pages[] = {0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2};

		memcpy(b + 4, pages, sizeof(pages));
		n = 4 + sizeof(pages);
		break;
	}
	case 0x80: /* unit serial number */
		memcpy(b + 4, sd->serial, slen);
		n = 4 + slen;
		break;
	case 0x83:	     /* device identification: one T10 vendor ID designator for the LU */
		b[4] = 0x02; /* code set ASCII */
		b[5] = 0x01; /* association: the logical unit; type: T10 vendor ID */
		b[7] = (uint8_t)(8 + slen);
		memcpy(b + 8, vendor, 8);
		memcpy(b + 16, sd->serial, slen);
		n = 16 + slen;
		break;
	case 0xb0:			 /* block limits */
		b[4] = wsame ? 0x01 : 0; /* WSNZ: WRITE SAME of zero blocks is refused, not "all" */
		put16(b + 6, (uint16_t)(1u << phys_exponent(sd))); /* optimal granularity */
		put32(b + 8, SCSI_MAX_XFER_BLOCKS);
		if (sd->can_discard) {
			put32(b + 20, SCSI_MAX_UNMAP_BLOCKS);
			put32(b + 24, SCSI_MAX_UNMAP_DESC);
			/* Optimal granularity: the host's block, which a hole punch frees whole. */
			put32(b + 28, 1u << phys_exponent(sd));
		}
		if (wsame)
			put64(b + 36, SCSI_MAX_WS_BLOCKS);
		n = 64;
		break;
	case 0xb1:		 /* block device characteristics */
		put16(b + 4, 1); /* medium rotation rate: non-rotating */
		n = 64;
		break;
	case 0xb2: /* logical block provisioning */
		if (sd->can_discard) {
			/* LBPU, LBPWS, LBPWS10, LBPRZ: a punched hole reads as zeros. */
			b[5] = 0x80 | 0x40 | 0x20 | 0x04;
			b[6] = 0x02; /* thin provisioned */
		}
		n = 8;
		break;
	default:
		return 0;
	}
	put16(b + 2, (uint16_t)(n - 4));
	return n;
}

static void inquiry(const struct scsi_disk *sd, const struct scsi_cmd *c, struct scsi_result *r)
{
	const uint8_t *cdb = c->cdb;
	uint8_t b[64];
	size_t n;

	if (cdb[1] & 0x02) /* CMDDT, obsolete */
		return invalid_field(r);
	if (!(cdb[1] & 0x01)) {
		if (cdb[2]) /* a page code without EVPD */
			return invalid_field(r);
		n = inquiry_std(b, 0x00);
	} else if (!(n = vpd_page(sd, cdb[2], b))) {
		return invalid_field(r);
	}
	data_in(c, r, b, n, be16(cdb + 3));
}

/* ---- READ CAPACITY, MODE SENSE, REPORT LUNS, REQUEST SENSE ---- */

static uint64_t last_lba(const struct scsi_disk *sd)
{
	return sd->blocks ? sd->blocks - 1 : 0;
}

static void read_capacity10(const struct scsi_disk *sd, const struct scsi_cmd *c,
			    struct scsi_result *r)
{
	uint8_t b[8];
	uint64_t lba = last_lba(sd);

	/* Too large for 32 bits: all ones sends the initiator to READ CAPACITY(16). */
	put32(b, lba >= 0xffffffff ? 0xffffffff : (uint32_t)lba);
	put32(b + 4, SCSI_BLOCK);
	data_in(c, r, b, sizeof(b), sizeof(b));
}

static void read_capacity16(const struct scsi_disk *sd, const struct scsi_cmd *c,
			    struct scsi_result *r)
{
	uint8_t b[32] = {0};

	put64(b, last_lba(sd));
	put32(b + 8, SCSI_BLOCK);
	b[13] = phys_exponent(sd);
	if (sd->can_discard)
		b[14] = 0x80 | 0x40; /* LBPME, LBPRZ */
	data_in(c, r, b, sizeof(b), be32(c->cdb + 10));
}

/* Appends mode page `page` (current values, or the changeable mask) at b; returns its length. */
static size_t mode_page(const struct scsi_disk *sd, uint8_t page, bool changeable, uint8_t *b)
{
	switch (page) {
	case 0x08: /* caching */
		memset(b, 0, 20);
		b[0] = 0x08;
		b[1] = 18;
		/* WCE: writes reach the host's page cache and need SYNCHRONIZE CACHE to be stable.
		 * Nothing is changeable: there is no MODE SELECT. */
		if (!changeable && !sd->readonly)
			b[2] = 0x04;
		return 20;
	case 0x0a: /* control: all defaults (fixed-format sense, unrestricted reordering off) */
		memset(b, 0, 12);
		b[0] = 0x0a;
		b[1] = 10;
		return 12;
	}
	return 0;
}

static void mode_sense(const struct scsi_disk *sd, const struct scsi_cmd *c, struct scsi_result *r)
{
	const uint8_t *cdb = c->cdb;
	bool ten = cdb[0] == MODE_SENSE_10;
	bool dbd = cdb[1] & 0x08, llba = ten && (cdb[1] & 0x10);
	uint8_t pc = cdb[2] >> 6, page = cdb[2] & 0x3f, subpage = cdb[3];
	size_t hdr = ten ? 8 : 4, n = hdr, bdl = 0;
	uint8_t b[128] = {0};

	if (pc == 3) /* saved values */
		return scsi_set_sense(r, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_SAVING_PARAMS_UNSUP);
	if (subpage && !(page == 0x3f && subpage == 0xff)) /* no subpages beyond "all" */
		return invalid_field(r);
	if (!dbd) {
		uint8_t *d = b + hdr;

		if (llba) {
			put64(d, sd->blocks);
			put32(d + 12, SCSI_BLOCK);
			bdl = 16;
		} else {
			put32(d, sd->blocks > 0xffffffff ? 0xffffffff : (uint32_t)sd->blocks);
			put32(d + 4, SCSI_BLOCK); /* density code 0, then the 24-bit block length */
			bdl = 8;
		}
		n += bdl;
	}
	if (page == 0x3f) {
		n += mode_page(sd, 0x08, pc == 1, b + n);
		n += mode_page(sd, 0x0a, pc == 1, b + n);
	} else {
		size_t len = mode_page(sd, page, pc == 1, b + n);

		if (!len)
			return invalid_field(r);
		n += len;
	}
	if (ten) {
		put16(b, (uint16_t)(n - 2));
		b[3] = sd->readonly ? 0x80 : 0; /* WP; no DPOFUA */
		b[4] = llba ? 0x01 : 0;		/* LONGLBA */
		put16(b + 6, (uint16_t)bdl);
		data_in(c, r, b, n, be16(cdb + 7));
	} else {
		b[0] = (uint8_t)(n - 1);
		b[2] = sd->readonly ? 0x80 : 0;
		b[3] = (uint8_t)bdl;
		data_in(c, r, b, n, cdb[4]);
	}
}

static void report_luns(unsigned nr_luns, const struct scsi_cmd *c, struct scsi_result *r)
{
	uint8_t b[DATA_MAX];
	uint8_t *p = b + 8;
	uint32_t alloc = be32(c->cdb + 6);
	uint8_t select = c->cdb[2];

	/* SPC-4 6.33: SELECT REPORT 0 lists the logical units, 1 the well-known ones, 2 both. */
	if (alloc < 16 || select > 2)
		return invalid_field(r);
	memset(b, 0, sizeof(b));
	if (nr_luns > SCSI_MAX_LUNS)
		nr_luns = SCSI_MAX_LUNS;
	for (unsigned i = 0; select != 1 && i < nr_luns; i++, p += 8)
		p[1] = (uint8_t)i; /* peripheral device addressing, bus 0 */
	if (select) {
		put16(p, WLUN_REPORT_LUNS);
		p += 8;
	}
	put32(b, (uint32_t)(p - b - 8));
	data_in(c, r, b, (size_t)(p - b), alloc);
}

static void request_sense(const struct scsi_cmd *c, struct scsi_result *r, uint8_t key,
			  uint16_t asc)
{
	struct scsi_result s = {.buf_len = r->buf_len};

	/* Only fixed-format sense exists here; DESC asks for descriptor format (SPC-4 6.39). */
	if (c->cdb[1] & 0x01)
		return invalid_field(r);
	/* Nothing is ever pending (there are no deferred errors or unit attentions): the answer is
	 * the sense of "no sense", or why this LUN cannot be addressed. */
	scsi_set_sense(&s, key, asc);
	data_in(c, r, s.sense, SCSI_SENSE_LEN, c->cdb[4]);
}

/* ---- the medium ---- */

/* Checks lba + nb against the capacity. */
static bool in_range(const struct scsi_disk *sd, uint64_t lba, uint64_t nb, struct scsi_result *r)
{
	if (lba > sd->blocks || nb > sd->blocks - lba) {
		scsi_set_sense(r, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
		return false;
	}
	return true;
}

static bool writable(const struct scsi_disk *sd, struct scsi_result *r)
{
	if (sd->readonly) {
		scsi_set_sense(r, SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);
		return false;
	}
	return true;
}

static void read_write(const struct scsi_disk *sd, const struct scsi_cmd *c, struct scsi_result *r,
		       uint64_t out_len, uint64_t in_len)
{
	const uint8_t *cdb = c->cdb;
	uint64_t lba, nb, bytes;
	bool write = false;

	switch (cdb[0]) {
	case WRITE_6:
		write = true;
		/* fall through */
	case READ_6:
		lba = (uint32_t)(cdb[1] & 0x1f) << 16 | be16(cdb + 2);
		nb = cdb[4] ? cdb[4] : 256; /* SBC-3 5.16: 0 means 256 blocks */
		break;
	case WRITE_10:
		write = true;
		/* fall through */
	case READ_10:
		lba = be32(cdb + 2);
		nb = be16(cdb + 7);
		break;
	case WRITE_12:
		write = true;
		/* fall through */
	case READ_12:
		lba = be32(cdb + 2);
		nb = be32(cdb + 6);
		break;
	case WRITE_16:
		write = true;
		/* fall through */
	default:
		lba = be64(cdb + 2);
		nb = be32(cdb + 10);
		break;
	}
	/* RDPROTECT/WRPROTECT: there is no protection information. */
	if (cdb[0] != READ_6 && cdb[0] != WRITE_6 && (cdb[1] & 0xe0))
		return invalid_field(r);
	if (write && !writable(sd, r))
		return;
	if (!in_range(sd, lba, nb, r))
		return;
	if (nb > SCSI_MAX_XFER_BLOCKS)
		return invalid_field(r);
	bytes = nb * SCSI_BLOCK;
	if (bytes > (write ? out_len : in_len)) {
		r->overrun = true; /* the buffers cannot hold the transfer */
		return;
	}
	r->resid = r->buf_len - bytes;
	if (!nb) /* SBC-3: a transfer length of 0 moves nothing and is not an error */
		return;
	r->action = write ? SCSI_ACT_WRITE : SCSI_ACT_READ;
	r->fua = write && (cdb[0] != WRITE_6) && (cdb[1] & 0x08);
	r->range[0].off = lba * SCSI_BLOCK;
	r->range[0].len = bytes;
	r->nr_ranges = 1;
	if (!write)
		r->data_in = bytes;
}

static void sync_cache(const struct scsi_disk *sd, const uint8_t *cdb, struct scsi_result *r)
{
	bool ten = cdb[0] == SYNCHRONIZE_CACHE;
	uint64_t lba = ten ? be32(cdb + 2) : be64(cdb + 2);
	uint64_t nb = ten ? be16(cdb + 7) : be32(cdb + 10);

	/* The range is checked but the whole file is flushed: fdatasync has no finer grain. */
	if (nb == 0)
		nb = lba <= sd->blocks ? sd->blocks - lba : 0; /* to the end of the medium */
	if (!in_range(sd, lba, nb, r))
		return;
	if (!sd->readonly)
		r->action = SCSI_ACT_FLUSH;
}

static void verify(const struct scsi_disk *sd, const uint8_t *cdb, struct scsi_result *r)
{
	uint64_t lba, nb;

	switch (cdb[0]) {
	case VERIFY_10:
		lba = be32(cdb + 2);
		nb = be16(cdb + 7);
		break;
	case VERIFY_12:
		lba = be32(cdb + 2);
		nb = be32(cdb + 6);
		break;
	default:
		lba = be64(cdb + 2);
		nb = be32(cdb + 10);
		break;
	}
	/* BYTCHK: comparing against data-out is not implemented; a plain verify of a file that
	 * reads back is a bounds check. */
	if (cdb[1] & 0x06)
		return invalid_field(r);
	in_range(sd, lba, nb, r);
}

static void unmap(const struct scsi_disk *sd, const struct scsi_cmd *c, struct scsi_result *r,
		  uint64_t out_len)
{
	uint8_t p[8 + 16 * SCSI_MAX_UNMAP_DESC];
	uint32_t plen = be16(c->cdb + 7), ndesc;
	uint64_t total = 0;

	if (c->cdb[1] & 0x01) /* ANCHOR: not supported (ANC_SUP is 0) */
		return invalid_field(r);
	if (!writable(sd, r))
		return;
	if (plen == 0) /* SBC-3 5.28: no parameter list, nothing to do */
		return;
	if (plen < 8)
		return scsi_set_sense(r, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_PARAM_LIST_LENGTH);
	if (plen > out_len) {
		r->overrun = true;
		return;
	}
	data_out(c, p, 8);
	/* The descriptors are what both the list and its own length fields cover; a partial last
	 * descriptor is ignored (SBC-3 5.28.2). */
	uint32_t dlen = be16(p + 2), ulen = be16(p);

	if (ulen + 2u < plen && ulen + 2u >= 8)
		plen = ulen + 2u;
	if (dlen > plen - 8)
		dlen = plen - 8;
	ndesc = dlen / 16;
	if (ndesc > SCSI_MAX_UNMAP_DESC)
		return scsi_set_sense(r, SCSI_SENSE_ILLEGAL_REQUEST,
				      SCSI_ASC_INVALID_FIELD_IN_PARAM);
	data_out(c, p, 8 + 16 * ndesc);
	r->resid = r->buf_len - plen;
	for (uint32_t i = 0; i < ndesc; i++) {
		const uint8_t *d = p + 8 + 16 * i;
		uint64_t lba = be64(d), nb = be32(d + 8);

		if (!in_range(sd, lba, nb, r))
			return;
		total += nb;
		if (total > SCSI_MAX_UNMAP_BLOCKS)
			return scsi_set_sense(r, SCSI_SENSE_ILLEGAL_REQUEST,
					      SCSI_ASC_INVALID_FIELD_IN_PARAM);
		if (!nb)
			continue; /* zero blocks: nothing, not an error */
		r->range[r->nr_ranges].off = lba * SCSI_BLOCK;
		r->range[r->nr_ranges].len = nb * SCSI_BLOCK;
		r->nr_ranges++;
	}
	if (r->nr_ranges)
		r->action = SCSI_ACT_DISCARD;
}

static void write_same(const struct scsi_disk *sd, const struct scsi_cmd *c, struct scsi_result *r,
		       uint64_t out_len)
{
	const uint8_t *cdb = c->cdb;
	bool sixteen = cdb[0] == WRITE_SAME_16;
	bool unmap_bit = cdb[1] & 0x08, ndob = sixteen && (cdb[1] & 0x01);
	uint64_t lba = sixteen ? be64(cdb + 2) : be32(cdb + 2);
	uint64_t nb = sixteen ? be32(cdb + 10) : be16(cdb + 7);
	uint8_t block[SCSI_BLOCK];

	/* ANCHOR unsupported; WRPROTECT without protection information; LBDATA/PBDATA obsolete. */
	if (cdb[1] & 0xf6)
		return invalid_field(r);
	if (!writable(sd, r))
		return;
	if (!in_range(sd, lba, nb, r))
		return;
	/* WSNZ is set: zero blocks would mean "to the end of the medium", which is refused. */
	if (nb == 0 || nb > SCSI_MAX_WS_BLOCKS)
		return invalid_field(r);
	if (!ndob) {
		if (out_len < SCSI_BLOCK) {
			r->overrun = true;
			return;
		}
		data_out(c, block, SCSI_BLOCK);
		/* Only a block of zeros can be replicated by the host (fallocate); Linux never
		 * sends another pattern. */
		for (unsigned i = 0; i < SCSI_BLOCK; i++)
			if (block[i])
				return invalid_field(r);
		r->resid = r->buf_len - SCSI_BLOCK;
	}
	r->range[0].off = lba * SCSI_BLOCK;
	r->range[0].len = nb * SCSI_BLOCK;
	r->nr_ranges = 1;
	if (sd->can_write_zeroes) {
		r->action = SCSI_ACT_WRITE_ZEROES;
		r->unmap = unmap_bit && sd->can_discard;
	} else if (unmap_bit && sd->can_discard) {
		r->action = SCSI_ACT_DISCARD; /* LBPRZ: the hole reads as the zeros asked for */
	} else {
		/* UNMAP clear and no way to write zeros without deallocating. */
		r->nr_ranges = 0;
		invalid_field(r);
	}
}

/* Whether the command reads, writes or sizes the medium. */
static bool needs_medium(uint8_t op)
{
	switch (op) {
	case REQUEST_SENSE:
	case INQUIRY:
	case MODE_SENSE_6:
	case MODE_SENSE_10:
	case REPORT_LUNS:
	case START_STOP_UNIT:
	case PREVENT_ALLOW:
		return false;
	}
	return true;
}

/* The CDB length each implemented opcode needs, or 0 for an opcode not implemented. */
static size_t cdb_needed(const struct scsi_disk *sd, uint8_t op)
{
	switch (op) {
	case TEST_UNIT_READY:
	case REQUEST_SENSE:
	case READ_6:
	case WRITE_6:
	case INQUIRY:
	case MODE_SENSE_6:
	case START_STOP_UNIT:
	case PREVENT_ALLOW:
	case READ_CAPACITY_10:
	case READ_10:
	case WRITE_10:
	case VERIFY_10:
	case SYNCHRONIZE_CACHE:
	case MODE_SENSE_10:
	case READ_16:
	case WRITE_16:
	case VERIFY_16:
	case SYNCHRONIZE_CACHE16:
	case SERVICE_ACTION_IN:
	case REPORT_LUNS:
	case READ_12:
	case WRITE_12:
	case VERIFY_12:
		return cdb_group_len(op);
	/* Offered where the host can deallocate or zero; on a read-only LUN they exist and are
	 * DATA PROTECT, like every other write. */
	case UNMAP:
		return sd->can_discard || sd->readonly ? 10 : 0;
	case WRITE_SAME_10:
	case WRITE_SAME_16:
		return sd->can_discard || sd->can_write_zeroes || sd->readonly ? cdb_group_len(op)
									       : 0;
	}
	return 0;
}

static void result_init(const struct scsi_cmd *c, struct scsi_result *r)
{
	memset(r, 0, sizeof(*r));
	r->buf_len = iov_total(c->out, c->out_num) + iov_total(c->in, c->in_num);
	r->resid = r->buf_len;
}

void scsi_disk_exec(const struct scsi_disk *sd, const struct scsi_cmd *c, struct scsi_result *r)
{
	uint64_t out_len = iov_total(c->out, c->out_num), in_len = iov_total(c->in, c->in_num);
	const uint8_t *cdb = c->cdb;
	size_t need;

	result_init(c, r);
	if (c->cdb_len == 0)
		return invalid_field(r);
	need = cdb_needed(sd, cdb[0]);
	if (!need)
		return scsi_set_sense(r, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_OPCODE);
	if (c->cdb_len < need) /* the transport cut the CDB short */
		return invalid_field(r);
	/* An image smaller than one block: no medium, as a drive without a disc would say, so that
	 * the initiator sees a capacity of 0 rather than a last LBA of 0. */
	if (!sd->blocks && needs_medium(cdb[0]))
		return scsi_set_sense(r, SCSI_SENSE_NOT_READY, SCSI_ASC_MEDIUM_NOT_PRESENT);

	switch (cdb[0]) {
	case TEST_UNIT_READY:
	case START_STOP_UNIT: /* there is no medium to load or eject: accepted */
	case PREVENT_ALLOW:   /* nor one to lock */
		return;
	case REQUEST_SENSE:
		return request_sense(c, r, SCSI_SENSE_NO_SENSE, SCSI_ASC_NONE);
	case INQUIRY:
		return inquiry(sd, c, r);
	case READ_CAPACITY_10:
		return read_capacity10(sd, c, r);
	case SERVICE_ACTION_IN:
		if ((cdb[1] & 0x1f) != SAI_READ_CAPACITY16)
			return invalid_field(r);
		return read_capacity16(sd, c, r);
	case MODE_SENSE_6:
	case MODE_SENSE_10:
		return mode_sense(sd, c, r);
	case REPORT_LUNS:
		return report_luns(sd->nr_luns, c, r);
	case SYNCHRONIZE_CACHE:
	case SYNCHRONIZE_CACHE16:
		return sync_cache(sd, cdb, r);
	case VERIFY_10:
	case VERIFY_12:
	case VERIFY_16:
		return verify(sd, cdb, r);
	case UNMAP:
		return unmap(sd, c, r, out_len);
	case WRITE_SAME_10:
	case WRITE_SAME_16:
		return write_same(sd, c, r, out_len);
	default:
		return read_write(sd, c, r, out_len, in_len);
	}
}

void scsi_target_exec(unsigned nr_luns, bool wlun, const struct scsi_cmd *c, struct scsi_result *r)
{
	uint8_t b[36];

	result_init(c, r);
	if (c->cdb_len == 0)
		return invalid_field(r);
	switch (c->cdb[0]) {
	case INQUIRY:
		if (c->cdb_len < 6)
			return invalid_field(r);
		if (c->cdb[1] & 0x03)
			return scsi_set_sense(r, SCSI_SENSE_ILLEGAL_REQUEST,
					      SCSI_ASC_LUN_NOT_SUPPORTED);
		/* Qualifier 3, type 0x1f: no logical unit here (what Linux's scan stops at); the
		 * well-known LUN is qualifier 0, type 0x1e. */
		inquiry_std(b, wlun ? 0x1e : 0x7f);
		return data_in(c, r, b, sizeof(b), be16(c->cdb + 3));
	case REPORT_LUNS:
		if (c->cdb_len < 12)
			return invalid_field(r);
		return report_luns(nr_luns, c, r);
	case REQUEST_SENSE:
		if (c->cdb_len < 6)
			return invalid_field(r);
		if (wlun)
			return request_sense(c, r, SCSI_SENSE_NO_SENSE, SCSI_ASC_NONE);
		return request_sense(c, r, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LUN_NOT_SUPPORTED);
	case TEST_UNIT_READY:
		if (wlun)
			return;
		/* fall through */
	default:
		return scsi_set_sense(r, SCSI_SENSE_ILLEGAL_REQUEST,
				      wlun ? SCSI_ASC_INVALID_OPCODE : SCSI_ASC_LUN_NOT_SUPPORTED);
	}
}

void scsi_disk_init(struct scsi_disk *sd, const struct disk *d, unsigned nr_luns,
		    const char *serial)
{
	memset(sd, 0, sizeof(*sd));
	sd->blocks = d->size / SCSI_BLOCK;
	sd->phys_block = d->phys_block;
	sd->readonly = d->readonly;
	sd->can_discard = d->can_discard && !d->readonly;
	sd->can_write_zeroes = d->can_write_zeroes && !d->readonly;
	sd->nr_luns = nr_luns;
	/* VPD 0x80 wants printable ASCII; anything else becomes '_'. */
	for (size_t i = 0; serial[i] && i < sizeof(sd->serial) - 1; i++)
		sd->serial[i] = serial[i] > 0x20 && serial[i] < 0x7f ? serial[i] : '_';
}
