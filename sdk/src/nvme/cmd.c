/*
 * NVMe command plumbing shared by the admin and NVM command sets: dispatch, completion
 * (status, DNR, error log, counters), the data pointer walk into a host ::ferry_mem (PRP/SGL
 * list reads go through the host domain's pull), local buffers pushed to / pulled from the
 * command's data, and the mapping of bdev results to NVMe statuses.
 */
#include <stdlib.h>
#include <string.h>
#include "nvme_internal.h"
#include <ferry/module/nvme_ctrlr.h>

/*
 * Record an error; returns the entry's index. @p status is the 15-bit status field as the
 * completion carries it (DNR and More included); the entry stores it in bits 15:1 and the
 * phase tag of the completion in bit 0, which is only known when the completion entry is
 * written (nvme_errlog_posted()).
 */
uint32_t nvme_errlog_add(struct ferry_nvme_ctrlr *c, uint16_t sqid, uint16_t cid,
			 uint16_t status, uint32_t nsid, uint64_t lba, uint64_t *count)
{
	/* The log is shared by the admin thread and the I/O queue threads of a message-based
	 * controller; errors are rare, a mutex is fine here (never on the success path). */
	pthread_mutex_lock(&c->err_lock);
	uint32_t idx = c->errlog_next;
	struct ferry_nvme_error_log *e = &c->errlog[idx];
	memset(e, 0, sizeof(*e));
	e->error_count = ++c->error_count;
	e->sqid = sqid;
	e->cid = cid;
	e->status = (uint16_t)(status << 1);
	e->pel = 0xffff;
	e->lba = lba;
	e->nsid = nsid;
	c->errlog_next = (c->errlog_next + 1) % NVME_ERRLOG_ENTRIES;
	if (c->errlog_count < NVME_ERRLOG_ENTRIES)
		c->errlog_count++;
	if (count)
		*count = c->error_count;
	pthread_mutex_unlock(&c->err_lock);
	return idx;
}

/* The completion of a failed command is written with @p cqe_status (status << 1 | phase):
 * its log entry's Status Information becomes exactly that (NVMe 2.0, Error Information Log
 * Entry bytes 15:14: bits 15:1 the completion's Status Field, bit 0 its Phase Tag), unless
 * 64 newer errors have already overwritten the entry. */
void nvme_errlog_posted(struct nvme_req *req, uint16_t cqe_status)
{
	struct ferry_nvme_ctrlr *c = req->ctrlr;
	if (!req->errlog_count)
		return;
	pthread_mutex_lock(&c->err_lock);
	struct ferry_nvme_error_log *e = &c->errlog[req->errlog_idx];
	if (e->error_count == req->errlog_count)
		e->status = cqe_status;
	pthread_mutex_unlock(&c->err_lock);
	req->errlog_count = 0;
}

/* Statuses the host may retry; everything else carries Do Not Retry. */
static int retryable(uint16_t st)
{
	return st == NVME_GEN(FERRY_NVME_SC_INTERNAL) || st == NVME_GEN(FERRY_NVME_SC_NS_NOT_READY) ||
	       st == NVME_GEN(FERRY_NVME_SC_ABORT_REQUESTED) ||
	       st == NVME_GEN(FERRY_NVME_SC_ABORTED_SQ_DELETION);
}

void nvme_req_complete(struct nvme_req *req, uint16_t status)
{
	struct ferry_nvme_ctrlr *c = req->ctrlr;
	if (nvme_req_stale(req)) {
		nvme_req_drop(req);
		return;
	}
	status &= 0x7ff;
	if (status) {
		if (req->qio)
			nvme_stat_add(&req->qio->st.errors, 1);
		else
			c->stats.errors++;
		uint64_t lba = 0;
		if (!req->admin)
			lba = req->cmd.cdw10 | ((uint64_t)req->cmd.cdw11 << 32);
		FERRY_DBG(NVME_COMP, "controller %u: %s opcode 0x%02x cid %u on SQ %u: %s (0x%03x)",
			  c->cntlid, req->admin ? "admin" : "I/O", req->cmd.opcode, req->cmd.cid,
			  req->sqid, ferry_nvme_status_str(status), status);
		if (!retryable(status))
			status |= FERRY_NVME_STATUS_DNR;
		/* Recorded with DNR, as the completion carries it; the phase tag follows when
		 * the completion entry is written (nvme_errlog_posted()). */
		req->errlog_idx = nvme_errlog_add(c, req->sqid, req->cmd.cid, status,
						  req->cmd.nsid, lba, &req->errlog_count);
	}
	if (req->qio)
		nvme_stat_add(&req->qio->st.io_cmds, 1);
	else if (req->admin)
		c->stats.admin_cmds++;
	else
		c->stats.io_cmds++;
	req->status = status;
	nvme_post(req);
}

void nvme_req_start(struct nvme_req *req)
{
	uint8_t psdt = (uint8_t)(req->cmd.flags >> FERRY_NVME_FLAGS_PSDT_SHIFT);
	if (req->cmd.flags & FERRY_NVME_FLAGS_FUSE_MASK) {
		nvme_req_complete(req, NVME_GEN(FERRY_NVME_SC_INVALID_FIELD));
		return;
	}
	/* PSDT is checked for every command, with data or not (the walker only sees commands
	 * that transfer data): 11b is reserved, and over PCIe admin commands use PRPs only
	 * (NVMe 2.0, Common Command Format: PSDT "shall be cleared to 00b" for admin commands
	 * over a memory-based transport). Both are Invalid Field in Command. */
	if (psdt == 3 || (req->admin && !req->ctrlr->message && psdt != FERRY_NVME_PSDT_PRP)) {
		nvme_req_complete(req, NVME_GEN(FERRY_NVME_SC_INVALID_FIELD));
		return;
	}
	if (req->admin)
		nvme_admin_start(req);
	else
		nvme_io_start(req);
}

/* ---- data pointer -------------------------------------------------------------------- */

static void walk_continue(struct nvme_req *req);

static void walk_read_done(void *arg, int status)
{
	struct nvme_req *req = arg;
	nvme_req_async_end(req);
	if (nvme_req_stale(req)) {
		nvme_req_drop(req);
		return;
	}
	if (status) {
		nvme_walker_read_failed(&req->walker);
		nvme_req_complete(req, req->walker.status);
		return;
	}
	walk_continue(req);
}

static void walk_continue(struct nvme_req *req)
{
	struct ferry_nvme_ctrlr *c = req->ctrlr;
	struct nvme_walker *w = &req->walker;
	int rc = nvme_walker_step(w);

	if (rc == NVME_WALK_NEED_READ) {
		req->rd_liov.iov_base = w->rdbuf;
		req->rd_liov.iov_len = w->rd_len;
		req->rd_riov.iov_base = (void *)(uintptr_t)w->rd_addr;
		req->rd_riov.iov_len = w->rd_len;
		req->rd_local = (struct ferry_mem){.iov = &req->rd_liov, .iovcnt = 1};
		req->rd_remote = (struct ferry_mem){.domain = c->host, .domain_ctx = c->host_ctx,
						    .iov = &req->rd_riov, .iovcnt = 1};
		nvme_req_async_start(req);
		if (ferry_memdomain_pull(&req->rd_remote, &req->rd_local, walk_read_done, req) == 0)
			return;
		nvme_req_async_end(req);
		rc = nvme_walker_read_failed(w);
	}
	if (rc == NVME_WALK_DONE) {
		req->data = (struct ferry_mem){.domain = c->host, .domain_ctx = c->host_ctx,
					       .iov = req->iov, .iovcnt = w->iovcnt};
		req->next_fn(req);
		return;
	}
	nvme_req_complete(req, w->status);
}

void nvme_req_map(struct nvme_req *req, uint64_t len, int c2h, nvme_req_fn next)
{
	struct ferry_nvme_ctrlr *c = req->ctrlr;
	req->xfer_len = len;
	req->c2h = c2h;
	req->next_fn = next;
	memset(&req->data, 0, sizeof(req->data));
	if (len == 0) {
		next(req);
		return;
	}
	if (c->message) {
		/* Summed with an overflow check: segment lengths that add up to @len only modulo
		 * 2^64 (e.g. built from a host's crafted SGL) describe far more memory than the
		 * command moves. */
		uint64_t have = 0;
		int wraps = 0;
		for (uint32_t i = 0; req->msg_data.iov && i < req->msg_data.iovcnt && !wraps; i++) {
			uint64_t l = req->msg_data.iov[i].iov_len;
			wraps = l > UINT64_MAX - have;
			have += l;
		}
		if (wraps) {
			ferry_log(nvme_host_err_level(c), NVME_COMP,
				  "controller %u: cid %u: the data segment lengths overflow 64 bits",
				  c->cntlid, req->cmd.cid);
			nvme_req_complete(req, NVME_GEN(FERRY_NVME_SC_DATA_SGL_LEN));
			return;
		}
		if (have != len) {
			ferry_log(nvme_host_err_level(c), NVME_COMP,
				  "controller %u: cid %u carries %llu data bytes, the "
				  "command transfers %llu", c->cntlid, req->cmd.cid,
				  (unsigned long long)have, (unsigned long long)len);
			nvme_req_complete(req, NVME_GEN(FERRY_NVME_SC_DATA_SGL_LEN));
			return;
		}
		req->data = req->msg_data;
		next(req);
		return;
	}
	struct nvme_walk_params p = {
		.sqe = &req->cmd,
		.xfer_len = len,
		.page_size = c->page_size,
		.max_sgl_desc = NVME_MAX_SGL_DESC,
		/* SGLs are not used by admin commands over PCIe. */
		.allow_sgl = !req->admin && !(c->flags & FERRY_NVME_CTRLR_F_NO_SGL),
		.c2h = c2h,
	};
	nvme_walker_init(&req->walker, &p, req->iov, req->kind, req->iov_cap);
	walk_continue(req);
}

/* ---- local buffers ------------------------------------------------------------------- */

int nvme_req_buf(struct nvme_req *req, size_t len)
{
	free(req->buf);
	req->buf = calloc(1, len ? len : 1);
	if (!req->buf)
		return -ENOMEM;
	req->buf_len = len;
	req->buf_iov.iov_base = req->buf;
	req->buf_iov.iov_len = len;
	req->buf_mem = (struct ferry_mem){.iov = &req->buf_iov, .iovcnt = 1};
	return 0;
}

static void push_done(void *arg, int status)
{
	struct nvme_req *req = arg;
	nvme_req_async_end(req);
	nvme_req_complete(req, status ? NVME_GEN(FERRY_NVME_SC_DATA_XFER_ERROR) : 0);
}

/* Push the local buffer (xfer_len bytes) to the command's data, then complete. */
void nvme_req_push_buf(struct nvme_req *req)
{
	if (req->xfer_len == 0) {
		nvme_req_complete(req, 0);
		return;
	}
	req->buf_iov.iov_len = req->xfer_len;
	nvme_req_async_start(req);
	if (ferry_memdomain_push(&req->data, &req->buf_mem, push_done, req) == 0)
		return;
	nvme_req_async_end(req);
	nvme_req_complete(req, NVME_GEN(FERRY_NVME_SC_DATA_XFER_ERROR));
}

static void pull_done(void *arg, int status)
{
	struct nvme_req *req = arg;
	nvme_req_async_end(req);
	if (nvme_req_stale(req)) {
		nvme_req_drop(req);
		return;
	}
	if (status) {
		nvme_req_complete(req, NVME_GEN(FERRY_NVME_SC_DATA_XFER_ERROR));
		return;
	}
	req->next_fn(req);
}

/* Pull the command's data (xfer_len bytes) into a new local buffer, then call @p next. */
void nvme_req_pull_buf(struct nvme_req *req, nvme_req_fn next)
{
	if (nvme_req_buf(req, req->xfer_len)) {
		nvme_req_complete(req, NVME_GEN(FERRY_NVME_SC_INTERNAL));
		return;
	}
	req->next_fn = next;
	nvme_req_async_start(req);
	if (ferry_memdomain_pull(&req->data, &req->buf_mem, pull_done, req) == 0)
		return;
	nvme_req_async_end(req);
	nvme_req_complete(req, NVME_GEN(FERRY_NVME_SC_DATA_XFER_ERROR));
}

uint16_t nvme_bdev_status(const struct ferry_bdev_io *io)
{
	if (io->status == 0)
		return 0;
	switch (io->error) {
	case FERRY_BDEV_ERR_MISCOMPARE: return NVME_MEDIA(FERRY_NVME_SC_COMPARE_FAILURE);
	case FERRY_BDEV_ERR_GUARD: return NVME_MEDIA(FERRY_NVME_SC_GUARD_CHECK);
	case FERRY_BDEV_ERR_APPTAG: return NVME_MEDIA(FERRY_NVME_SC_APPTAG_CHECK);
	case FERRY_BDEV_ERR_REFTAG: return NVME_MEDIA(FERRY_NVME_SC_REFTAG_CHECK);
	case FERRY_BDEV_ERR_READ: return NVME_MEDIA(FERRY_NVME_SC_UNRECOVERED_READ);
	case FERRY_BDEV_ERR_WRITE: return NVME_MEDIA(FERRY_NVME_SC_WRITE_FAULT);
	case FERRY_BDEV_ERR_TRANSFER: return NVME_GEN(FERRY_NVME_SC_DATA_XFER_ERROR);
	default: break;
	}
	switch (io->status) {
	case -EFAULT: return NVME_GEN(FERRY_NVME_SC_DATA_XFER_ERROR);
	case -ERANGE: return NVME_GEN(FERRY_NVME_SC_LBA_RANGE);
	case -ENOTSUP: return NVME_GEN(FERRY_NVME_SC_INVALID_OPCODE);
	case -EILSEQ:
		return io->type == FERRY_BDEV_IO_COMPARE ? NVME_MEDIA(FERRY_NVME_SC_COMPARE_FAILURE)
							 : NVME_MEDIA(FERRY_NVME_SC_UNRECOVERED_READ);
	case -EIO:
		return io->type == FERRY_BDEV_IO_READ ? NVME_MEDIA(FERRY_NVME_SC_UNRECOVERED_READ)
						      : NVME_MEDIA(FERRY_NVME_SC_WRITE_FAULT);
	default: return NVME_GEN(FERRY_NVME_SC_INTERNAL);
	}
}
