/*
 * NVM command set: Read, Write, Compare, Flush, Write Zeroes, Dataset Management (deallocate).
 * Validates the namespace, the LBA range and the transfer size, describes the data in the
 * host domain (nvme_req_map) and hands it to the namespace's bdev; bit buckets in a read's
 * SGL go through a local bounce buffer so that only the host's data segments are written.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <ferry/accel.h>
#include "nvme_internal.h"

/* The namespace a request works on. Message-based I/O queue requests do not count in
 * ns->inflight (shared by every thread): remove_ns waits for their queues to be gone
 * instead. They remember the bdev for poll_queue. */
static void req_set_ns(struct nvme_req *req, struct nvme_ns *ns)
{
	struct nvme_qio *q = req->qio;
	if (req->ns && !q)
		req->ns->inflight--;
	req->ns = ns;
	if (!ns)
		return;
	if (!q) {
		ns->inflight++;
		return;
	}
	if (q->poll_all)
		return;
	for (uint32_t i = 0; i < q->npoll; i++)
		if (q->poll_bdevs[i] == ns->bdev)
			return;
	if (q->npoll == NVME_POLL_BDEVS)
		q->poll_all = 1;
	else
		q->poll_bdevs[q->npoll++] = ns->bdev;
}

static void io_account(struct nvme_req *req)
{
	struct ferry_nvme_ctrlr *c = req->ctrlr;
	struct nvme_qio *q = req->qio;
	if (q) {
		int rd = req->cmd.opcode == FERRY_NVME_CMD_READ;
		if (!rd && req->cmd.opcode != FERRY_NVME_CMD_WRITE)
			return;
		nvme_stat_add(rd ? &q->st.bytes_read : &q->st.bytes_written, req->xfer_len);
		nvme_stat_add(rd ? &q->st.read_cmds : &q->st.write_cmds, 1);
		return;
	}
	if (req->cmd.opcode == FERRY_NVME_CMD_READ) {
		c->stats.bytes_read += req->xfer_len;
		c->smart_units_read += req->xfer_len;
		c->smart_read_cmds++;
	} else if (req->cmd.opcode == FERRY_NVME_CMD_WRITE) {
		c->stats.bytes_written += req->xfer_len;
		c->smart_units_written += req->xfer_len;
		c->smart_write_cmds++;
	}
}

static void bounce_pushed(void *arg, int status)
{
	struct nvme_req *req = arg;
	nvme_req_async_end(req);
	if (!status)
		io_account(req);
	nvme_req_complete(req, status ? NVME_GEN(FERRY_NVME_SC_DATA_XFER_ERROR) : 0);
}

/* A read whose SGL has bit buckets: push only the data segments of the bounce buffer. */
static void bounce_push(struct nvme_req *req)
{
	uint32_t n = req->walker.iovcnt, j = 0;
	size_t off = 0;
	req->bounce_iov = calloc(n ? n : 1, sizeof(*req->bounce_iov));
	if (!req->bounce_iov) {
		nvme_req_complete(req, NVME_GEN(FERRY_NVME_SC_INTERNAL));
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		size_t len = req->iov[i].iov_len;
		if (req->kind[i] == NVME_WALK_SEG_DATA) {
			req->iov[j] = req->iov[i];
			req->bounce_iov[j].iov_base = req->buf + off;
			req->bounce_iov[j].iov_len = len;
			j++;
		}
		off += len;
	}
	if (j == 0) {
		io_account(req);
		nvme_req_complete(req, 0);
		return;
	}
	req->data.iovcnt = j;
	req->buf_mem = (struct ferry_mem){.iov = req->bounce_iov, .iovcnt = j};
	nvme_req_async_start(req);
	if (ferry_memdomain_push(&req->data, &req->buf_mem, bounce_pushed, req) == 0)
		return;
	nvme_req_async_end(req);
	nvme_req_complete(req, NVME_GEN(FERRY_NVME_SC_DATA_XFER_ERROR));
}

/* The request's bdev I/O has finished: 0 if it succeeded (continue with the next step), -1 if
 * the request was completed with the I/O's error or dropped (stale) and must not be used. */
static int bio_finished(struct nvme_req *req)
{
	nvme_req_async_end(req);
	if (nvme_req_stale(req)) {
		nvme_req_drop(req);
		return -1;
	}
	uint16_t st = nvme_bdev_status(&req->bio);
	if (st) {
		nvme_req_complete(req, st);
		return -1;
	}
	return 0;
}

/* The step after a successful bdev I/O. */
static void bio_continue(struct nvme_req *req)
{
	if (req->next_fn) {
		req->next_fn(req);
		return;
	}
	if (req->walker.has_bucket && req->bio.type == FERRY_BDEV_IO_READ) {
		bounce_push(req);
		return;
	}
	io_account(req);
	nvme_req_complete(req, 0);
}

static void bdev_done(struct ferry_bdev_io *io, void *arg)
{
	struct nvme_req *req = arg;
	if (req->bio_sync) {
		/* Completed inside ferry_bdev_submit(): bio_submit() finishes it on its own stack
		 * level, so that a command of many bdev I/Os does not recurse once per I/O. */
		*req->bio_sync = 1;
		return;
	}
	if (bio_finished(req) == 0)
		bio_continue(req);
}

/*
 * Submit req->bio to the request's namespace; the step after it is @p next (NULL: complete
 * the command). Returns 1 if the bdev completed the I/O synchronously and successfully: the
 * caller then runs the next step itself (the commands of several bdev I/Os loop on this, so
 * the stack depth stays bounded however many I/Os complete synchronously). Returns 0 if the
 * I/O is in flight (bdev_done() continues with @p next later) or the request has been
 * completed (error) or dropped: the caller must not touch it any more.
 */
static int bio_submit(struct nvme_req *req, enum ferry_bdev_io_type type, uint64_t slba,
		      uint64_t nlb, const struct ferry_mem *mem, nvme_req_fn next)
{
	struct ferry_nvme_ctrlr *c = req->ctrlr;
	struct ferry_bdev_io *io = &req->bio;
	memset(io, 0, sizeof(*io));
	io->type = type;
	io->offset_blocks = slba;
	io->num_blocks = nlb;
	if (mem)
		io->mem = *mem;
	if (type == FERRY_BDEV_IO_WRITE && ((req->cmd.cdw12 >> 30) & 1))
		io->flags |= FERRY_BDEV_IO_F_FUA;
	io->cb = bdev_done;
	io->cb_arg = req;
	req->next_fn = next;
	/* With an accel channel, Read/Write data flows through a sequence the bdevs build;
	 * without a sequence (none available) the bdevs move it themselves. */
	struct ferry_accel_chan *chan = req->qio ? req->qio->chan : c->accel_chan;
	if (chan && mem && (type == FERRY_BDEV_IO_READ || type == FERRY_BDEV_IO_WRITE) &&
	    ferry_seq_create(chan, &io->seq) != 0)
		io->seq = NULL;
	int sync_done = 0;
	req->bio_sync = &sync_done;
	nvme_req_async_start(req);
	int rc = ferry_bdev_submit(req->ns->bdev, io);
	req->bio_sync = NULL;
	if (rc) {
		/* Refused: nothing was appended, the sequence is still ours. */
		if (io->seq)
			ferry_seq_abort(io->seq);
		io->seq = NULL;
		nvme_req_async_end(req);
		io->status = rc;
		io->error = FERRY_BDEV_ERR_NONE;
		nvme_req_complete(req, rc == -ENOMEM ? NVME_GEN(FERRY_NVME_SC_INTERNAL)
						     : nvme_bdev_status(io));
		return 0;
	}
	if (!sync_done)
		return 0;
	return bio_finished(req) == 0;
}

/* Submit and, if the bdev completed at once, continue on this stack level. */
static void submit_bio(struct nvme_req *req, enum ferry_bdev_io_type type, uint64_t slba,
		       uint64_t nlb, const struct ferry_mem *mem, nvme_req_fn next)
{
	if (bio_submit(req, type, slba, nlb, mem, next))
		bio_continue(req);
}

static struct nvme_ns *lookup_ns(struct nvme_req *req)
{
	struct nvme_ns *ns = nvme_subsys_ns(req->ctrlr->subsys, req->cmd.nsid);
	if (!ns) {
		nvme_req_complete(req, NVME_GEN(FERRY_NVME_SC_INVALID_NS));
		return NULL;
	}
	req_set_ns(req, ns);
	return ns;
}

static int range_ok(const struct nvme_ns *ns, uint64_t slba, uint64_t nlb)
{
	return slba <= ns->nsze && nlb <= ns->nsze - slba;
}

/* SLBA (CDW10-11) and NLB (CDW12[15:0], 0's based) of an LBA command. */
static void cmd_lba(const struct nvme_req *req, uint64_t *slba, uint64_t *nlb)
{
	*slba = req->cmd.cdw10 | ((uint64_t)req->cmd.cdw11 << 32);
	*nlb = (req->cmd.cdw12 & 0xffff) + 1;
}

/* The LBA range of the command if it lies in @p ns; else completes it with LBA Out of Range. */
static bool cmd_range(struct nvme_req *req, const struct nvme_ns *ns, uint64_t *slba,
		      uint64_t *nlb)
{
	cmd_lba(req, slba, nlb);
	if (range_ok(ns, *slba, *nlb))
		return true;
	nvme_req_complete(req, NVME_GEN(FERRY_NVME_SC_LBA_RANGE));
	return false;
}

/* ---- read / write / compare ----------------------------------------------------------- */

static void rw_exec(struct nvme_req *req)
{
	uint64_t slba, nlb;
	cmd_lba(req, &slba, &nlb);
	enum ferry_bdev_io_type type = req->cmd.opcode == FERRY_NVME_CMD_READ    ? FERRY_BDEV_IO_READ
				       : req->cmd.opcode == FERRY_NVME_CMD_WRITE ? FERRY_BDEV_IO_WRITE
										 : FERRY_BDEV_IO_COMPARE;
	if (req->walker.has_bucket) {
		if (nvme_req_buf(req, req->xfer_len)) {
			nvme_req_complete(req, NVME_GEN(FERRY_NVME_SC_INTERNAL));
			return;
		}
		submit_bio(req, type, slba, nlb, &req->buf_mem, NULL);
		return;
	}
	submit_bio(req, type, slba, nlb, &req->data, NULL);
}

static void rw_start(struct nvme_req *req)
{
	struct nvme_ns *ns = lookup_ns(req);
	if (!ns)
		return;
	uint64_t slba, nlb;
	if (!cmd_range(req, ns, &slba, &nlb))
		return;
	uint64_t len = nlb * ns->lba_bytes;
	if (len > req->ctrlr->max_xfer) {
		nvme_req_complete(req, NVME_GEN(FERRY_NVME_SC_INVALID_FIELD));
		return;
	}
	nvme_req_map(req, len, req->cmd.opcode == FERRY_NVME_CMD_READ, rw_exec);
}

/* ---- flush ----------------------------------------------------------------------------- */

/* Flush of NSID FFFFFFFFh: each namespace in turn. Loops while the flushes complete
 * synchronously; an asynchronous one re-enters through bdev_done(). */
static void flush_next(struct nvme_req *req)
{
	struct ferry_nvme_subsystem *s = req->ctrlr->subsys;
	while (req->idx < s->max_ns) {
		struct nvme_ns *ns = s->ns[req->idx++];
		if (!ns)
			continue;
		req_set_ns(req, ns);
		if (!bio_submit(req, FERRY_BDEV_IO_FLUSH, 0, 0, NULL, flush_next))
			return; /* in flight (or failed: completed) */
	}
	nvme_req_complete(req, 0);
}

static void flush_start(struct nvme_req *req)
{
	if (req->cmd.nsid == 0xffffffff) {
		req->idx = 0;
		flush_next(req);
		return;
	}
	if (!lookup_ns(req))
		return;
	submit_bio(req, FERRY_BDEV_IO_FLUSH, 0, 0, NULL, NULL);
}

/* ---- write zeroes ------------------------------------------------------------------------ */

static void write_zeroes_start(struct nvme_req *req)
{
	struct nvme_ns *ns = lookup_ns(req);
	if (!ns)
		return;
	uint64_t slba, nlb;
	if (!cmd_range(req, ns, &slba, &nlb))
		return;
	submit_bio(req, FERRY_BDEV_IO_WRITE_ZEROES, slba, nlb, NULL, NULL);
}

/* ---- dataset management ------------------------------------------------------------------ */

/* One UNMAP per range, in order. Loops while the unmaps complete synchronously (up to 256
 * ranges: no recursion per range); an asynchronous one re-enters through bdev_done(). */
static void dsm_next(struct nvme_req *req)
{
	const struct ferry_nvme_dsm_range *r = (const struct ferry_nvme_dsm_range *)req->buf;
	for (;;) {
		while (req->idx < req->cnt && r[req->idx].nlb == 0)
			req->idx++;
		if (req->idx == req->cnt) {
			nvme_req_complete(req, 0);
			return;
		}
		uint32_t i = req->idx++;
		if (!bio_submit(req, FERRY_BDEV_IO_UNMAP, r[i].slba, r[i].nlb, NULL, dsm_next))
			return;
	}
}

static void dsm_exec(struct nvme_req *req)
{
	const struct ferry_nvme_dsm_range *r = (const struct ferry_nvme_dsm_range *)req->buf;
	if (!((req->cmd.cdw11 >> 2) & 1)) {
		nvme_req_complete(req, 0); /* only hints (IDR/IDW): nothing to do */
		return;
	}
	for (uint32_t i = 0; i < req->cnt; i++) {
		if (!range_ok(req->ns, r[i].slba, r[i].nlb)) {
			nvme_req_complete(req, NVME_GEN(FERRY_NVME_SC_LBA_RANGE));
			return;
		}
	}
	req->idx = 0;
	dsm_next(req);
}

static void dsm_pull(struct nvme_req *req)
{
	nvme_req_pull_buf(req, dsm_exec);
}

static void dsm_start(struct nvme_req *req)
{
	if (!lookup_ns(req))
		return;
	req->cnt = (req->cmd.cdw10 & 0xff) + 1;
	nvme_req_map(req, (uint64_t)req->cnt * sizeof(struct ferry_nvme_dsm_range), 0, dsm_pull);
}

void nvme_io_start(struct nvme_req *req)
{
	switch (req->cmd.opcode) {
	case FERRY_NVME_CMD_READ:
	case FERRY_NVME_CMD_WRITE:
	case FERRY_NVME_CMD_COMPARE:
		rw_start(req);
		return;
	case FERRY_NVME_CMD_FLUSH:
		flush_start(req);
		return;
	case FERRY_NVME_CMD_WRITE_ZEROES:
		write_zeroes_start(req);
		return;
	case FERRY_NVME_CMD_DSM:
		dsm_start(req);
		return;
	default:
		nvme_req_complete(req, NVME_GEN(FERRY_NVME_SC_INVALID_OPCODE));
		return;
	}
}
