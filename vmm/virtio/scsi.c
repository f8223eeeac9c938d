#include "virtio/scsi.h"
#include "event.h"
#include "log.h"

#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Request header (5.6.6.1) without the CDB: lun[8], id, task_attr, prio, crn. */
#define CMD_HDR_LEN 19
/* Response header before the sense bytes: sense_len, residual, status_qualifier, status,
 * response. */
#define RESP_HDR_LEN 12

/* Responses (5.6.6.1, 5.6.6.2). */
#define S_OK		     0
#define S_OVERRUN	     1
#define S_BAD_TARGET	     3
#define S_FAILURE	     9
#define S_FUNCTION_COMPLETE  0
#define S_FUNCTION_SUCCEEDED 10
#define S_FUNCTION_REJECTED  11
#define S_INCORRECT_LUN	     12

/* Control queue request types and task management functions (5.6.6.2). */
#define T_TMF		       0
#define T_AN_QUERY	       1
#define T_AN_SUBSCRIBE	       2
#define TMF_ABORT_TASK	       0
#define TMF_ABORT_TASK_SET     1
#define TMF_CLEAR_ACA	       2
#define TMF_CLEAR_TASK_SET     3
#define TMF_I_T_NEXUS_RESET    4
#define TMF_LOGICAL_UNIT_RESET 5
#define TMF_QUERY_TASK	       6
#define TMF_QUERY_TASK_SET     7
#define TMF_LEN		       24 /* type, subtype, lun[8], id */
#define AN_LEN		       16 /* type, lun[8], event_requested */
#define AN_RESP_LEN	       5  /* event_actual, response */

#define EVENT_INFO_SIZE 16 /* struct virtio_scsi_event */

enum req_stage { STAGE_IO, STAGE_FUA_FLUSH };

struct scsi_req {
	struct scsi_dev *s;
	struct scsi_req *next; /* free or wait list */
	unsigned q;	       /* request queue, 0-based */
	unsigned lun;
	uint64_t tag;
	unsigned epoch; /* the device's epoch when it was popped */
	bool busy;	/* counted in lun_busy */
	bool submitted; /* a disk operation of it is in flight */
	enum req_stage stage;
	unsigned range;		/* next range of res to submit */
	uint64_t in_off;	/* where data-in starts in the writable part */
	unsigned dout_n, din_n; /* data-out iovecs at iov[0], data-in at iov[dout_n] */
	struct scsi_result res;
	struct iovec iov[VIRTQ_MAX_SIZE];
	struct virtq_elem elem;
};

static struct virtq *rq_vq(struct scsi_dev *s, unsigned q)
{
	return &s->vdev.queues[SCSI_REQUESTQ + q].vq;
}

/* Copies the iovecs of src[0..n) that lie past the first `skip` bytes into dst; returns how
 * many. */
static unsigned iov_tail(const struct iovec *src, unsigned n, uint64_t skip, struct iovec *dst)
{
	unsigned k = 0;

	for (unsigned i = 0; i < n; i++) {
		if (skip >= src[i].iov_len) {
			skip -= src[i].iov_len;
			continue;
		}
		dst[k].iov_base = (uint8_t *)src[i].iov_base + skip;
		dst[k].iov_len = src[i].iov_len - skip;
		skip = 0;
		k++;
	}
	return k;
}

/* Cuts iov[0..n) to its first len bytes (the command layer checked they are there). */
static unsigned iov_cut(struct iovec *iov, unsigned n, uint64_t len)
{
	for (unsigned i = 0; i < n; i++) {
		if (iov[i].iov_len >= len) {
			iov[i].iov_len = len;
			return len ? i + 1 : i;
		}
		len -= iov[i].iov_len;
	}
	return n;
}

/* ---- LUN addressing ---- */

enum lun_kind { LUN_OK, LUN_MISSING, LUN_WELL_KNOWN, LUN_BAD_TARGET };

/* 5.6.6.1: byte 0 is 1, byte 1 the target, bytes 2-3 a single-level LUN (peripheral or flat
 * addressing, which is what Linux sends), bytes 4-7 zero. Or the REPORT LUNS well-known LUN,
 * 0xc1 0x01 and six zeros. Only target 0 exists. */
static enum lun_kind parse_lun(const struct scsi_dev *s, const uint8_t *lun, unsigned *n)
{
	static const uint8_t zero[6];

	if (lun[0] == 0xc1 && lun[1] == 0x01 && !memcmp(lun + 2, zero, 6))
		return LUN_WELL_KNOWN;
	if (lun[0] != 1 || lun[1] != 0)
		return LUN_BAD_TARGET;
	*n = (unsigned)(lun[2] & 0x3f) << 8 | lun[3];
	if ((lun[2] >> 6) > 1 || memcmp(lun + 4, zero, 4) || *n >= s->nr_luns)
		return LUN_MISSING; /* another address method, or a LUN we do not have */
	return LUN_OK;
}

/* ---- requests ---- */

static struct scsi_req *req_get(struct scsi_dev *s, unsigned q)
{
	struct scsi_rq *rq = &s->rq[q];
	struct scsi_req *req = rq->free;

	if (req) {
		rq->free = req->next;
		return req;
	}
	/* Allocated on first use: most queues never see more than a few requests at once. */
	if (rq->nr_reqs >= SCSI_QUEUE_SIZE || !(req = calloc(1, sizeof(*req))))
		return NULL;
	rq->reqs[rq->nr_reqs++] = req;
	req->s = s;
	req->q = q;
	return req;
}

/* Back to the free list; its LUN is no longer busy with it, unless a reset already forgot it. */
static void req_put(struct scsi_req *req)
{
	struct scsi_dev *s = req->s;
	struct scsi_rq *rq = &s->rq[req->q];

	if (req->busy && req->epoch == s->epoch && s->lun_busy[req->lun])
		s->lun_busy[req->lun]--;
	req->busy = false;
	req->next = rq->free;
	rq->free = req;
}

static void tmf_try_answer(struct scsi_dev *s);

/* Writes the response, gives the chain back and frees the request. The driver is interrupted
 * once per batch: at the end of the queue handler or of a batch of disk completions. */
static void req_complete(struct scsi_req *req, uint8_t response)
{
	struct scsi_dev *s = req->s;
	struct virtq *vq = rq_vq(s, req->q);
	const struct scsi_result *r = &req->res;
	uint32_t sense_size = le32toh(s->config.sense_size);
	uint8_t resp[RESP_HDR_LEN + SCSI_SENSE_LEN] = {0};
	uint32_t sense_len = r->sense_len < sense_size ? r->sense_len : sense_size;
	uint64_t resid = r->resid > UINT32_MAX ? UINT32_MAX : r->resid;
	uint64_t used = RESP_HDR_LEN + sense_len;

	if (response == S_OK) {
		uint32_t v = htole32(sense_len);

		memcpy(resp, &v, 4);
		v = htole32((uint32_t)resid);
		memcpy(resp + 4, &v, 4);
		resp[10] = r->status;
		memcpy(resp + RESP_HDR_LEN, r->sense, sense_len);
		if (r->data_in)
			used = req->in_off + r->data_in;
	}
	resp[11] = response;
	if (used > req->elem.in_len)
		used = req->elem.in_len;
	/* A writable part too short for the whole response gets what fits. */
	virtq_elem_write(&req->elem, 0, resp, RESP_HDR_LEN + sense_len);
	virtq_push(vq, &req->elem, (uint32_t)used);
	s->rq[req->q].need_notify = true;
	req_put(req);
	if (s->tmf_held)
		tmf_try_answer(s);
}

static void rq_notify(struct scsi_rq *rq)
{
	if (rq->need_notify)
		virtio_notify(&rq->s->vdev, SCSI_REQUESTQ + rq->index);
	rq->need_notify = false;
}

static void req_done(void *opaque, int result);

/* Submits the next disk operation of req. 0, -EAGAIN (no slot now: try again after a
 * completion), or another -errno. */
static int req_submit(struct scsi_req *req)
{
	struct scsi_dev *s = req->s;
	struct disk_io *io = &s->rq[req->q].io[req->lun];
	const struct scsi_result *r = &req->res;
	const struct scsi_range *rg = &r->range[req->range];
	int ret;

	if (req->stage == STAGE_FUA_FLUSH) {
		ret = disk_flush(io, req_done, req);
	} else {
		switch (r->action) {
		case SCSI_ACT_READ:
			ret = disk_readv(io, rg->off, req->iov + req->dout_n, req->din_n, req_done,
					 req);
			break;
		case SCSI_ACT_WRITE:
			ret = disk_writev(io, rg->off, req->iov, req->dout_n, req_done, req);
			break;
		case SCSI_ACT_FLUSH:
			ret = disk_flush(io, req_done, req);
			break;
		case SCSI_ACT_DISCARD:
			ret = disk_discard(io, rg->off, rg->len, req_done, req);
			break;
		case SCSI_ACT_WRITE_ZEROES:
			ret = disk_write_zeroes(io, rg->off, rg->len, r->unmap, req_done, req);
			break;
		default:
			ret = -EINVAL;
			break;
		}
	}
	req->submitted = ret == 0;
	return ret;
}

/* The disk refused the request outright (not for lack of a slot). */
static void req_fail(struct scsi_req *req, int err)
{
	virtio_log(&req->s->vdev, LOG_WARN, "%s: LUN %u: disk request: %s", req->s->vdev.name,
		   req->lun, strerror(-err));
	scsi_io_failed(&req->res, err);
	req_complete(req, S_OK);
}

/* Starts req's next operation, or parks it until a slot frees, or fails it. */
static void req_continue(struct scsi_req *req)
{
	struct scsi_rq *rq = &req->s->rq[req->q];
	int ret = req_submit(req);

	if (ret == -EAGAIN) {
		req->next = NULL;
		if (rq->wait_tail)
			rq->wait_tail->next = req;
		else
			rq->wait = req;
		rq->wait_tail = req;
		return;
	}
	if (ret)
		req_fail(req, ret);
}

/* A disk operation of req finished (the loop's thread). */
static void req_done(void *opaque, int result)
{
	struct scsi_req *req = opaque;
	struct scsi_dev *s = req->s;
	struct scsi_result *r = &req->res;
	bool more = false;

	pthread_mutex_lock(&s->vdev.lock);
	req->submitted = false;
	if (req->epoch != s->epoch || !virtq_current(rq_vq(s, req->q), req->elem.epoch) ||
	    !virtio_live(&s->vdev)) {
		/* Reset, the queue stopped (or NEEDS_RESET) since it was popped: the buffers are
		 * no longer the driver's to receive an answer in. The I/O itself finished; the
		 * answer is dropped. */
		log_debug("%s: completion after reset dropped", s->vdev.name);
		req_put(req);
		if (s->tmf_held)
			tmf_try_answer(s); /* it may have waited for this one */
		goto out;
	}
	if (result < 0) {
		log_debug("%s: LUN %u: disk error: %s", s->vdev.name, req->lun, strerror(-result));
		scsi_io_failed(r, result);
	} else if (req->stage == STAGE_IO && r->fua) {
		req->stage = STAGE_FUA_FLUSH; /* FUA: the data is stable before the status */
		more = true;
	} else if (req->stage == STAGE_IO && ++req->range < r->nr_ranges) {
		more = true; /* the next range of an UNMAP */
	}
	if (more) {
		req_continue(req);
		disk_io_submit(&s->rq[req->q].io[req->lun]);
	} else {
		req_complete(req, S_OK);
	}
out:
	/* Requests parked for a slot, or not popped for lack of a free request: the queue
	 * handler goes on with them. */
	if (s->rq[req->q].wait || s->rq[req->q].starved)
		virtio_kick(&s->vdev, SCSI_REQUESTQ + req->q);
	pthread_mutex_unlock(&s->vdev.lock);
}

/* After a batch of completions on one of the queue's disk contexts: one interrupt for it. */
static void rq_batch_done(void *opaque)
{
	struct scsi_rq *rq = opaque;

	pthread_mutex_lock(&rq->s->vdev.lock);
	rq_notify(rq);
	pthread_mutex_unlock(&rq->s->vdev.lock);
}

/* Checks the chain, runs the command layer, and completes the request or starts its I/O. */
static void req_start(struct scsi_dev *s, struct scsi_req *req)
{
	struct virtq_elem *e = &req->elem;
	uint32_t cdb_size = le32toh(s->config.cdb_size);
	uint32_t sense_size = le32toh(s->config.sense_size);
	uint64_t hdr_len = CMD_HDR_LEN + (uint64_t)cdb_size;
	uint8_t hdr[CMD_HDR_LEN + SCSI_CDB_SIZE];
	struct scsi_cmd cmd;
	unsigned lun = 0;
	enum lun_kind kind;

	req->epoch = s->epoch;
	req->busy = false;
	req->stage = STAGE_IO;
	req->range = 0;
	memset(&req->res, 0, sizeof(req->res));
	/* The guest controls the chain. It needs the whole header readable (lun, id, attributes
	 * and cdb_size bytes of CDB) and somewhere to write the response. */
	if (!e->in_len || e->out_len < hdr_len) {
		virtio_fail(&s->vdev, "requestq: %llu readable bytes for a %llu-byte header, %llu "
				      "writable", (unsigned long long)e->out_len,
			    (unsigned long long)hdr_len, (unsigned long long)e->in_len);
		req_put(req);
		return;
	}
	cmd.cdb_len = cdb_size < SCSI_CDB_SIZE ? cdb_size : SCSI_CDB_SIZE;
	virtq_elem_read(e, 0, hdr, CMD_HDR_LEN + cmd.cdb_len);
	memcpy(&req->tag, hdr + 8, 8);
	req->tag = le64toh(req->tag);
	req->in_off = RESP_HDR_LEN + (uint64_t)sense_size;
	req->dout_n = iov_tail(e->iov, e->out_num, hdr_len, req->iov);
	req->din_n = iov_tail(e->iov + e->out_num, e->in_num, req->in_off, req->iov + req->dout_n);
	cmd.cdb = hdr + CMD_HDR_LEN;
	cmd.out = req->iov;
	cmd.out_num = req->dout_n;
	cmd.in = req->iov + req->dout_n;
	cmd.in_num = req->din_n;

	kind = parse_lun(s, hdr, &lun);
	if (kind == LUN_BAD_TARGET)
		return req_complete(req, S_BAD_TARGET);
	/* 5.6.6.1: without VIRTIO_SCSI_F_INOUT a request moves data one way only. */
	if (req->dout_n && req->din_n)
		return req_complete(req, S_FAILURE);
	if (kind != LUN_OK) {
		scsi_target_exec(s->nr_luns, kind == LUN_WELL_KNOWN, &cmd, &req->res);
		return req_complete(req, S_OK);
	}
	req->lun = lun;
	req->busy = true;
	s->lun_busy[lun]++;
	scsi_disk_exec(&s->luns[lun], &cmd, &req->res);
	if (req->res.overrun)
		return req_complete(req, S_OVERRUN);
	if (req->res.action == SCSI_ACT_NONE)
		return req_complete(req, S_OK);
	if (req->res.action == SCSI_ACT_READ)
		req->din_n = iov_cut(req->iov + req->dout_n, req->din_n, req->res.range[0].len);
	else if (req->res.action == SCSI_ACT_WRITE)
		req->dout_n = iov_cut(req->iov, req->dout_n, req->res.range[0].len);
	req_continue(req);
}

static void submit_all(struct scsi_dev *s, unsigned q)
{
	for (unsigned l = 0; l < s->nr_luns; l++)
		if (s->rq[q].io[l].queued)
			disk_io_submit(&s->rq[q].io[l]);
}

static void requestq_notify(struct scsi_dev *s, unsigned q)
{
	struct scsi_rq *rq = &s->rq[q];
	struct virtq *vq = rq_vq(s, q);

	/* Parked requests go first, in order; while one still finds no slot, nothing new is
	 * popped (the guest's requests wait in the ring, not in our memory). */
	while (rq->wait) {
		struct scsi_req *req = rq->wait;
		int ret = req_submit(req);

		if (ret == -EAGAIN)
			goto out; /* still no slot: it stays first */
		rq->wait = req->next;
		if (!rq->wait)
			rq->wait_tail = NULL;
		if (ret)
			req_fail(req, ret);
	}
	for (;;) {
		struct scsi_req *req = req_get(s, q);
		int ret;

		rq->starved = !req;
		if (!req)
			break; /* every request is busy: a completion kicks us again */
		ret = virtio_pop(&s->vdev, SCSI_REQUESTQ + q, &req->elem);
		if (ret <= 0) {
			req_put(req);
			if (ret == 0 && virtq_enable_notify(vq, true))
				continue; /* buffers came while notifications were re-enabled */
			break;
		}
		req_start(s, req);
		if (!virtio_live(&s->vdev) || rq->wait)
			break;
	}
out:
	submit_all(s, q);
	rq_notify(rq);
}

/* ---- control queue ---- */

/* Whether the held TMF's requests are done: for resets and aborts the spec wants every
 * affected command completed before the TMF is (5.6.6.2). Requests already in the kernel
 * cannot be cancelled, so the TMF waits for them; they complete normally. */
static bool tmf_ready(const struct scsi_dev *s)
{
	if (s->tmf_lun >= 0)
		return !s->lun_busy[s->tmf_lun];
	for (unsigned l = 0; l < s->nr_luns; l++)
		if (s->lun_busy[l])
			return false;
	return true;
}

static void ctrl_answer(struct scsi_dev *s, const void *resp, size_t len)
{
	struct virtq *vq = &s->vdev.queues[SCSI_CONTROLQ].vq;

	virtq_elem_write(s->ctrl, 0, resp, len);
	virtq_push(vq, s->ctrl, (uint32_t)len);
	virtio_notify(&s->vdev, SCSI_CONTROLQ);
}

static void tmf_try_answer(struct scsi_dev *s)
{
	uint8_t response = S_FUNCTION_COMPLETE;

	if (!tmf_ready(s))
		return;
	s->tmf_held = false;
	ctrl_answer(s, &response, 1);
	virtio_kick(&s->vdev, SCSI_CONTROLQ); /* control requests behind it */
}

/* Whether a request with this tag is busy on the LUN (QUERY TASK). */
static bool task_exists(const struct scsi_dev *s, unsigned lun, uint64_t tag)
{
	for (unsigned q = 0; q < s->nr_rq; q++)
		for (unsigned i = 0; i < s->rq[q].nr_reqs; i++) {
			const struct scsi_req *req = s->rq[q].reqs[i];

			if (req->busy && req->lun == lun && req->tag == tag)
				return true;
		}
	return false;
}

/* One task management function; returns false when it is held until requests complete. */
static bool ctrl_tmf(struct scsi_dev *s, const uint8_t *m)
{
	uint32_t subtype;
	uint64_t tag;
	unsigned lun = 0;
	enum lun_kind kind = parse_lun(s, m + 8, &lun);
	uint8_t response = S_FUNCTION_COMPLETE;

	memcpy(&subtype, m + 4, 4);
	memcpy(&tag, m + 16, 8);
	subtype = le32toh(subtype);
	tag = le64toh(tag);
	if (kind == LUN_BAD_TARGET) {
		response = S_BAD_TARGET;
	} else if (kind != LUN_OK && subtype != TMF_I_T_NEXUS_RESET) {
		/* The nexus reset ignores the LUN; every other function needs one that exists. */
		response = S_INCORRECT_LUN;
	} else {
		switch (subtype) {
		case TMF_ABORT_TASK:
		case TMF_ABORT_TASK_SET:
		case TMF_CLEAR_TASK_SET:
		case TMF_LOGICAL_UNIT_RESET:
		case TMF_I_T_NEXUS_RESET:
			s->tmf_lun = subtype == TMF_I_T_NEXUS_RESET ? -1 : (int)lun;
			if (!tmf_ready(s)) {
				s->tmf_held = true;
				return false;
			}
			break;
		case TMF_CLEAR_ACA: /* there is never an ACA condition: nothing to clear */
			break;
		case TMF_QUERY_TASK:
			if (task_exists(s, lun, tag))
				response = S_FUNCTION_SUCCEEDED;
			break;
		case TMF_QUERY_TASK_SET:
			if (s->lun_busy[lun])
				response = S_FUNCTION_SUCCEEDED;
			break;
		default:
			response = S_FUNCTION_REJECTED;
			break;
		}
	}
	ctrl_answer(s, &response, 1);
	return true;
}

static void controlq_notify(struct scsi_dev *s)
{
	struct virtq *vq = &s->vdev.queues[SCSI_CONTROLQ].vq;

	while (!s->tmf_held) {
		uint8_t m[TMF_LEN];
		uint32_t type;
		int ret = virtio_pop(&s->vdev, SCSI_CONTROLQ, s->ctrl);

		if (ret < 0)
			return;
		if (ret == 0) {
			if (virtq_enable_notify(vq, true))
				continue;
			return;
		}
		/* Guest-controlled: the type, then the whole request of that type readable and
		 * room for its whole response. */
		if (virtq_elem_read(s->ctrl, 0, &type, 4) < 4) {
			virtio_fail(&s->vdev, "controlq: request shorter than its type");
			return;
		}
		type = le32toh(type);
		if (type == T_TMF) {
			if (s->ctrl->out_len < TMF_LEN || s->ctrl->in_len < 1) {
				virtio_fail(&s->vdev, "controlq: short task management request");
				return;
			}
			virtq_elem_read(s->ctrl, 0, m, TMF_LEN);
			ctrl_tmf(s, m);
		} else if (type == T_AN_QUERY || type == T_AN_SUBSCRIBE) {
			/* No asynchronous events are reported: event_actual 0. */
			uint8_t resp[AN_RESP_LEN] = {0, 0, 0, 0, S_OK};

			if (s->ctrl->out_len < AN_LEN || s->ctrl->in_len < AN_RESP_LEN) {
				virtio_fail(&s->vdev, "controlq: short notification request");
				return;
			}
			ctrl_answer(s, resp, sizeof(resp));
		} else {
			uint8_t response = S_FAILURE;

			if (!s->ctrl->in_len) {
				virtio_fail(&s->vdev, "controlq: request type %u: no response "
						      "buffer", type);
				return;
			}
			log_debug("%s: controlq: unknown request type %u", s->vdev.name, type);
			ctrl_answer(s, &response, 1);
		}
	}
}

/* ---- device ops ---- */

static void scsi_queue_notify(struct virtio_dev *d, unsigned q)
{
	struct scsi_dev *s = d->priv;

	if (q == SCSI_CONTROLQ)
		controlq_notify(s);
	else if (q >= SCSI_REQUESTQ)
		requestq_notify(s, q - SCSI_REQUESTQ);
	/* The event queue's buffers stay in the ring: no events are ever reported (no hotplug,
	 * no parameter changes), so there is nothing to take them for. */
}

static int scsi_start(struct virtio_dev *d)
{
	return 0;
}

static void config_defaults(struct scsi_dev *s)
{
	struct virtio_scsi_config *c = &s->config;

	c->num_queues = htole32(s->nr_rq);
	/* Two descriptors go to the header and the response. */
	c->seg_max = htole32(SCSI_QUEUE_SIZE - 2);
	c->max_sectors = htole32(SCSI_MAX_XFER_BLOCKS);
	c->cmd_per_lun = htole32(SCSI_QUEUE_SIZE);
	c->event_info_size = htole32(EVENT_INFO_SIZE);
	c->max_channel = 0;
	c->max_target = 0;
	c->max_lun = htole32(s->nr_luns - 1);
	c->sense_size = htole32(SCSI_SENSE_SIZE);
	c->cdb_size = htole32(SCSI_CDB_SIZE);
}

/* The driver may write sense_size and cdb_size (5.6.4); anything else it wrote is put back. */
static void scsi_config_write(struct virtio_dev *d, uint32_t off, uint32_t len)
{
	struct scsi_dev *s = d->priv;
	struct virtio_scsi_config keep = s->config;

	config_defaults(s);
	s->config.sense_size = keep.sense_size;
	s->config.cdb_size = keep.cdb_size;
}

/* Lock held, the queue already reset: drops the requests of request queue q that wait for a
 * slot, and waits for those in flight (their answers are dropped: the queue's epoch moved on).
 * Returns how many there were. */
static unsigned rq_abandon(struct scsi_dev *s, unsigned q)
{
	struct scsi_rq *rq = &s->rq[q];
	unsigned abandoned = 0;

	while (rq->wait) {
		struct scsi_req *req = rq->wait;

		rq->wait = req->next;
		req_put(req);
		abandoned++;
	}
	rq->wait_tail = NULL;
	for (unsigned i = 0; i < rq->nr_reqs; i++)
		abandoned += rq->reqs[i]->submitted;
	for (unsigned l = 0; l < s->nr_luns; l++)
		if (disk_io_drain(&rq->io[l]))
			log_error("%s: queue %u: requests still in flight after reset", s->vdev.name,
				  q);
	rq->need_notify = false;
	return abandoned;
}

/* The driver stopped one queue (virtio-mmio): a held task management request is dropped with the
 * control queue, a request queue's requests as reset drops them. The LUNs' counts stay right: the
 * requests dropped give their counts back as they are freed. */
static void scsi_queue_stop(struct virtio_dev *d, unsigned q)
{
	struct scsi_dev *s = d->priv;
	unsigned abandoned;

	if (q == SCSI_CONTROLQ) {
		s->tmf_held = false;
		return;
	}
	if (q < SCSI_REQUESTQ)
		return;
	abandoned = rq_abandon(s, q - SCSI_REQUESTQ);
	if (abandoned)
		virtio_log(d, LOG_INFO, "%s: queue %u stopped with %u requests under way: they "
			   "finished on the disk, the driver gets no answer", d->name, q, abandoned);
	if (s->tmf_held)
		tmf_try_answer(s); /* it may have waited for the ones dropped */
}

/* Lock held. Requests in flight cannot be recalled from the kernel: wait until the disk is done
 * with them, so that none writes into guest memory the driver has taken back, and drop their
 * answers (the epoch): their callbacks, still to come on the loop's thread, only free them. */
static void scsi_reset(struct virtio_dev *d)
{
	struct scsi_dev *s = d->priv;
	uint32_t sense_size = htole32(SCSI_SENSE_SIZE), cdb_size = htole32(SCSI_CDB_SIZE);
	unsigned abandoned = 0;

	s->epoch++;
	for (unsigned q = 0; q < s->nr_rq; q++)
		abandoned += rq_abandon(s, q);
	if (abandoned)
		virtio_log(d, LOG_INFO, "%s: reset with %u requests under way: they finished on the "
			   "disk, the driver gets no answer", d->name, abandoned);
	memset(s->lun_busy, 0, s->nr_luns * sizeof(*s->lun_busy));
	s->tmf_held = false;
	/* 5.6.4: sense_size and cdb_size back to 96 and 32, a change of the area. */
	virtio_config_set(d, offsetof(struct virtio_scsi_config, sense_size), &sense_size, 4);
	virtio_config_set(d, offsetof(struct virtio_scsi_config, cdb_size), &cdb_size, 4);
}

static const struct virtio_dev_ops scsi_ops = {
    .name = "scsi",
    .device_id = VIRTIO_ID_SCSI,
    .pci_class = 0x010000, /* mass storage, SCSI controller */
    .start = scsi_start,
    .queue_notify = scsi_queue_notify,
    .config_write = scsi_config_write,
    .reset = scsi_reset,
    .queue_stop = scsi_queue_stop,
};

int scsi_init(struct scsi_dev *s, const char *name, struct disk **luns, unsigned nr_luns,
	      unsigned nr_queues, const struct guest_mem *mem, struct event_loop *loop)
{
	int ret;

	memset(s, 0, sizeof(*s));
	if (nr_luns < 1 || nr_luns > SCSI_MAX_LUNS || nr_queues < 1 ||
	    nr_queues > SCSI_MAX_REQ_QUEUES) {
		log_error("%s: %u LUNs, %u request queues: it takes 1 to %u LUNs and 1 to %u queues",
			  name, nr_luns, nr_queues, SCSI_MAX_LUNS, SCSI_MAX_REQ_QUEUES);
		return -EINVAL;
	}
	s->nr_luns = nr_luns;
	s->disks = luns;
	s->luns = calloc(nr_luns, sizeof(*s->luns));
	s->lun_busy = calloc(nr_luns, sizeof(*s->lun_busy));
	s->rq = calloc(nr_queues, sizeof(*s->rq));
	s->ctrl = malloc(sizeof(*s->ctrl));
	if (!s->luns || !s->lun_busy || !s->rq || !s->ctrl) {
		ret = -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < nr_luns; i++) {
		char serial[32];

		snprintf(serial, sizeof(serial), "%s-%u", name, i);
		scsi_disk_init(&s->luns[i], luns[i], nr_luns, serial);
	}
	for (unsigned q = 0; q < nr_queues; q++) {
		struct scsi_rq *rq = &s->rq[q];

		rq->s = s;
		rq->index = q;
		rq->io = calloc(nr_luns, sizeof(*rq->io));
		rq->reqs = calloc(SCSI_QUEUE_SIZE, sizeof(*rq->reqs));
		s->nr_rq = q + 1; /* what destroy frees */
		if (!rq->io || !rq->reqs) {
			ret = -ENOMEM;
			goto fail;
		}
		/* Depth: a whole queue's worth, so -EAGAIN is the exception. */
		for (unsigned i = 0; i < nr_luns; i++) {
			if ((ret = disk_io_init(&rq->io[i], luns[i], loop, SCSI_QUEUE_SIZE)))
				goto fail;
			disk_io_set_batch_fn(&rq->io[i], rq_batch_done, rq);
		}
	}
	s->nr_rq = nr_queues;
	config_defaults(s);
	ret = virtio_dev_init(&s->vdev, &scsi_ops, s, name, mem, loop, 0, SCSI_REQUESTQ + nr_queues,
			      SCSI_QUEUE_SIZE);
	if (ret)
		goto fail;
	s->vdev.config = (uint8_t *)&s->config;
	s->vdev.config_len = sizeof(s->config);
	return 0;
fail:
	log_error("%s: %s", name, strerror(-ret));
	scsi_destroy(s);
	return ret;
}

void scsi_destroy(struct scsi_dev *s)
{
	/* First the I/O: its callbacks still use the device, and drop their answers (the guest is
	 * going away). */
	s->epoch++;
	for (unsigned q = 0; s->rq && q < s->nr_rq; q++)
		for (unsigned i = 0; s->rq[q].io && i < s->nr_luns; i++)
			disk_io_destroy(&s->rq[q].io[i]);
	virtio_dev_destroy(&s->vdev);
	for (unsigned q = 0; s->rq && q < s->nr_rq; q++) {
		for (unsigned i = 0; i < s->rq[q].nr_reqs; i++)
			free(s->rq[q].reqs[i]);
		free(s->rq[q].reqs);
		free(s->rq[q].io);
	}
	free(s->rq);
	free(s->luns);
	free(s->lun_busy);
	free(s->ctrl);
	memset(s, 0, sizeof(*s));
}
