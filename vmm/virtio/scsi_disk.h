/* A SCSI direct-access logical unit (SPC-4 / SBC-3) over a disk image: the command layer of the
 * virtio-scsi controller, with no virtio and no I/O in it.
 *
 * scsi_disk_exec() takes one CDB with the command's data-out bytes and data-in buffer, answers
 * everything it can from the disk's geometry (INQUIRY, READ CAPACITY, MODE SENSE...), and for
 * commands that touch the image (READ, WRITE, SYNCHRONIZE CACHE, UNMAP, WRITE SAME) checks every
 * field and bound and tells the caller which byte ranges to transfer. The caller submits those
 * asynchronously (disk_readv, disk_writev...) and reports a failure with scsi_io_failed(). So
 * the layer is pure: the unit tests and the fuzzer run it without a file. */
#ifndef VMM_VIRTIO_SCSI_DISK_H
#define VMM_VIRTIO_SCSI_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "backend/disk.h"

#define SCSI_BLOCK     DISK_SECTOR /* the logical block the LUN reports */
#define SCSI_SENSE_LEN 18	   /* fixed-format sense data, all the layer produces */
#define SCSI_MAX_LUNS  256	   /* one-byte (peripheral) LUNs: what REPORT LUNS can list here */
/* Block limits (VPD page 0xB0), enforced as well as reported. */
#define SCSI_MAX_XFER_BLOCKS  0xffff   /* one READ or WRITE: just under 32 MiB */
#define SCSI_MAX_UNMAP_DESC   16       /* Linux sends one descriptor per UNMAP */
#define SCSI_MAX_UNMAP_BLOCKS 0x400000 /* 2 GiB per UNMAP command */
#define SCSI_MAX_WS_BLOCKS    0x400000 /* and per WRITE SAME */

/* SAM-5 status codes. */
#define SCSI_STATUS_GOOD	    0x00
#define SCSI_STATUS_CHECK_CONDITION 0x02

/* SPC-4 sense keys. */
#define SCSI_SENSE_NO_SENSE	   0x0
#define SCSI_SENSE_NOT_READY	   0x2
#define SCSI_SENSE_MEDIUM_ERROR	   0x3
#define SCSI_SENSE_HARDWARE_ERROR  0x4
#define SCSI_SENSE_ILLEGAL_REQUEST 0x5
#define SCSI_SENSE_UNIT_ATTENTION  0x6
#define SCSI_SENSE_DATA_PROTECT	   0x7
#define SCSI_SENSE_ABORTED_COMMAND 0xb

/* Additional sense code and qualifier, asc << 8 | ascq. */
#define SCSI_ASC_NONE			 0x0000
#define SCSI_ASC_WRITE_ERROR		 0x0c00
#define SCSI_ASC_UNRECOVERED_READ_ERROR	 0x1100
#define SCSI_ASC_PARAM_LIST_LENGTH	 0x1a00
#define SCSI_ASC_INVALID_OPCODE		 0x2000
#define SCSI_ASC_LBA_OUT_OF_RANGE	 0x2100
#define SCSI_ASC_INVALID_FIELD_IN_CDB	 0x2400
#define SCSI_ASC_LUN_NOT_SUPPORTED	 0x2500
#define SCSI_ASC_INVALID_FIELD_IN_PARAM	 0x2600
#define SCSI_ASC_WRITE_PROTECTED	 0x2700
#define SCSI_ASC_SPACE_ALLOC_FAILED	 0x2707
#define SCSI_ASC_MEDIUM_NOT_PRESENT	 0x3a00
#define SCSI_ASC_SAVING_PARAMS_UNSUP	 0x3900
#define SCSI_ASC_INTERNAL_TARGET_FAILURE 0x4400

/* What one logical unit looks like to the command layer: a copy of the disk's geometry, so the
 * layer never needs the file. */
struct scsi_disk {
	uint64_t blocks; /* capacity in SCSI_BLOCK blocks (a partial last block is not seen) */
	uint32_t
	    phys_block;	  /* bytes; reported as logical blocks per physical block when sensible */
	bool readonly;	  /* writes are DATA PROTECT; MODE SENSE shows WP */
	bool can_discard; /* UNMAP and WRITE SAME with UNMAP are offered */
	bool can_write_zeroes; /* WRITE SAME of zeros is offered */
	unsigned nr_luns;      /* LUNs 0..nr_luns-1 on the same target, for REPORT LUNS */
	char serial[21];       /* VPD page 0x80 and the T10 designator of page 0x83 */
};

/* Fills sd from disk d (size, readonly, discard support). serial is cut to 20 bytes. */
void scsi_disk_init(struct scsi_disk *sd, const struct disk *d, unsigned nr_luns,
		    const char *serial);

/* One command as the transport delivered it. The buffers are the data areas only. */
struct scsi_cmd {
	const uint8_t *cdb;
	size_t cdb_len; /* what the transport carried; a CDB shorter than its opcode needs fails */
	const struct iovec *out; /* data-out */
	unsigned out_num;
	const struct iovec *in; /* data-in */
	unsigned in_num;
};

/* What the caller must do before it completes the command. */
enum scsi_action {
	SCSI_ACT_NONE,	       /* nothing: the result is final */
	SCSI_ACT_READ,	       /* read range[0] into the first range[0].len bytes of data-in */
	SCSI_ACT_WRITE,	       /* write the first range[0].len bytes of data-out at range[0] */
	SCSI_ACT_FLUSH,	       /* make earlier writes stable */
	SCSI_ACT_DISCARD,      /* deallocate each range (UNMAP, or WRITE SAME with UNMAP) */
	SCSI_ACT_WRITE_ZEROES, /* zero range[0]; `unmap` says it may be deallocated */
};

struct scsi_range {
	uint64_t off, len; /* bytes, always inside the disk */
};

struct scsi_result {
	uint8_t status;	   /* SCSI_STATUS_* */
	bool overrun;	   /* the command needs more data than the buffers hold: not run */
	uint8_t sense_len; /* 0 or SCSI_SENSE_LEN */
	uint8_t sense[SCSI_SENSE_LEN];
	uint64_t data_in; /* bytes written to data-in (for READ: once the transfer succeeds) */
	uint64_t resid;	  /* data buffer bytes not transferred, out and in together */
	uint64_t buf_len; /* data-out plus data-in bytes the command came with */
	enum scsi_action action;
	bool fua;   /* WRITE with FUA: flush before completing */
	bool unmap; /* WRITE_ZEROES may deallocate */
	unsigned nr_ranges;
	struct scsi_range range[SCSI_MAX_UNMAP_DESC];
};

/* Runs one command for the logical unit sd; never writes past the data-in buffers, and reads
 * data-out only within its buffers. */
void scsi_disk_exec(const struct scsi_disk *sd, const struct scsi_cmd *c, struct scsi_result *r);

/* A command for a LUN that does not exist on an existing target (SPC-4 8.2 / SAM-5 5.9.6):
 * INQUIRY answers peripheral qualifier 3, REPORT LUNS lists the target's nr_luns LUNs, REQUEST
 * SENSE returns LOGICAL UNIT NOT SUPPORTED, anything else is CHECK CONDITION with that sense.
 * wlun: the REPORT LUNS well-known logical unit, which answers INQUIRY as type 0x1e. */
void scsi_target_exec(unsigned nr_luns, bool wlun, const struct scsi_cmd *c, struct scsi_result *r);

/* CHECK CONDITION with fixed-format sense. */
void scsi_set_sense(struct scsi_result *r, uint8_t key, uint16_t asc);
/* The caller's transfer for r->action failed with -errno err: CHECK CONDITION with a sense that
 * says which (medium error on a read or write, out of space, unsupported...) and nothing
 * transferred. */
void scsi_io_failed(struct scsi_result *r, int err);

#endif
