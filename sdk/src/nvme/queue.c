/*
 * NVMe queues: the request pool, fetching submission entries from host memory, posting
 * completion entries (phase tag, SQ head, no overwrite of a full CQ), doorbell validation,
 * interrupts (MSI-X vector per CQ, INTMS masking, coalescing), asynchronous events, and the
 * message-based entry points (connect/disconnect a queue, submit a capsule).
 */
#include <stdlib.h>
#include <string.h>
#include "nvme_internal.h"
#include <ferry/accel.h>
#include <ferry/module/nvme_ctrlr.h>

void nvme_async_start(struct ferry_nvme_ctrlr *c)
{
	c->async_ops++;
}

void nvme_async_end(struct ferry_nvme_ctrlr *c)
{
	c->async_ops--;
}

void nvme_req_async_start(struct nvme_req *req)
{
	if (!req->qio)
		req->ctrlr->async_ops++;
}

void nvme_req_async_end(struct nvme_req *req)
{
	if (!req->qio)
		req->ctrlr->async_ops--;
}

/* A message-based I/O queue's request is never stale: a reset does not touch its queue (the
 * transport disconnects it once its thread quiesced it), so it completes normally. */
int nvme_req_stale(const struct nvme_req *req)
{
	return !req->qio && req->gen != req->ctrlr->gen;
}

/* A request from @p qio's own pool (the queue's thread), or else from the controller's. */
struct nvme_req *nvme_req_get(struct ferry_nvme_ctrlr *c, struct nvme_qio *qio)
{
	struct nvme_req *r = qio ? qio->free : c->free_reqs;
	if (!r)
		return NULL;
	if (qio) {
		qio->free = r->next;
		qio->free_count--;
	} else {
		c->free_reqs = r->next;
		c->free_count--;
	}
	struct iovec *iov = r->iov;
	uint8_t *kind = r->kind;
	uint32_t cap = r->iov_cap;
	memset(r, 0, offsetof(struct nvme_req, walker));
	memset(&r->iov, 0, sizeof(*r) - offsetof(struct nvme_req, iov));
	r->ctrlr = c;
	r->iov = iov;
	r->kind = kind;
	r->iov_cap = cap;
	r->qio = qio;
	if (!qio)
		r->gen = c->gen;
	return r;
}

/* The request pool of a message-based I/O queue: one request per queue entry (the host
 * cannot have more commands outstanding on it). No iovec arrays: capsule data comes
 * described (ferry_nvme_ctrlr_submit()), never walked. */
int nvme_qio_alloc(struct nvme_sq *sq, uint32_t entries)
{
	struct nvme_qio *q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->reqs = calloc(entries, sizeof(*q->reqs));
	if (!q->reqs) {
		free(q);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < entries; i++) {
		q->reqs[i].ctrlr = sq->ctrlr;
		q->reqs[i].next = q->free;
		q->free = &q->reqs[i];
	}
	q->free_count = entries;
	sq->qio = q;
	return 0;
}

void nvme_qio_free(struct nvme_sq *sq)
{
	if (!sq->qio)
		return;
	free(sq->qio->reqs);
	free(sq->qio);
	sq->qio = NULL;
}

void nvme_req_put(struct nvme_req *req)
{
	struct ferry_nvme_ctrlr *c = req->ctrlr;
	struct nvme_qio *qio = req->qio;
	if (!nvme_req_stale(req)) {
		struct nvme_sq *sq = &c->sq[req->sqid];
		if (sq->inflight)
			sq->inflight--;
		if (qio)
			atomic_store_explicit(&qio->busy, sq->inflight, memory_order_release);
		if (req->reserved_cq) {
			c->cq[req->cqid].reserved--;
			req->reserved_cq = 0;
		}
	}
	if (req->ns) {
		if (!qio)
			req->ns->inflight--;
		req->ns = NULL;
	}
	free(req->buf);
	req->buf = NULL;
	free(req->bounce_iov);
	req->bounce_iov = NULL;
	if (qio) {
		req->next = qio->free;
		qio->free = req;
		qio->free_count++;
		return;
	}
	req->next = c->free_reqs;
	c->free_reqs = req;
	c->free_count++;
}

/*
 * A request that will not complete normally (a reset happened, or it was parked when the
 * reset came). Memory-based: the host reset its queues, the completion is dropped.
 * Message-based: the transport was promised one completion per accepted command, so it gets
 * "Command Aborted due to SQ Deletion".
 */
void nvme_req_drop(struct nvme_req *req)
{
	struct ferry_nvme_ctrlr *c = req->ctrlr;
	if (c->message) {
		req->cpl.cid = req->cmd.cid;
		req->cpl.sqid = req->sqid;
		req->cpl.status = (uint16_t)(NVME_GEN(FERRY_NVME_SC_ABORTED_SQ_DELETION) << 1);
		int rc = c->tops->send_completion(c->transport, c, c->tctx, req->sqid, &req->cpl,
						  req->cmd_ctx);
		if (rc)
			FERRY_ERR(NVME_COMP, "controller %u: transport could not send the abort of "
				  "cid %u: %s", c->cntlid, req->cmd.cid, ferry_strerror(rc));
	}
	nvme_req_put(req);
}

/* ---- completion queue ----------------------------------------------------------------- */

static uint32_t cq_posted(const struct nvme_cq *cq)
{
	return (cq->tail + cq->size - cq->head) % cq->size;
}

static void raise_irq(struct ferry_nvme_ctrlr *c, uint16_t vector)
{
	if (c->tops->raise_irq) {
		c->tops->raise_irq(c->transport, c, c->tctx, vector);
		c->stats.irqs++;
	}
}

void nvme_irq(struct ferry_nvme_ctrlr *c, uint16_t v)
{
	if (v >= c->num_vectors)
		return;
	if (v < 32 && (c->intms & (1u << v))) {
		c->masked_pending |= 1u << v;
		return;
	}
	uint32_t thr = c->feat_coalesce & 0xff;
	if (v == 0 || thr == 0 || c->vec_cd[v]) {
		raise_irq(c, v);
		return;
	}
	/* Aggregation threshold (0's based): raise once thr + 1 entries are pending; the rest
	 * are raised at the end of the poll (the aggregation time is one poll). */
	if (c->vec_count[v] == 0)
		c->coalesced++;
	if (++c->vec_count[v] > thr) {
		c->vec_count[v] = 0;
		c->coalesced--;
		raise_irq(c, v);
	}
}

void nvme_irq_flush(struct ferry_nvme_ctrlr *c)
{
	for (uint32_t v = 0; c->coalesced && v < c->num_vectors; v++) {
		if (c->vec_count[v]) {
			c->vec_count[v] = 0;
			c->coalesced--;
			raise_irq(c, (uint16_t)v);
		}
	}
}

void nvme_irq_unmasked(struct ferry_nvme_ctrlr *c, uint32_t cleared)
{
	uint32_t pend = c->masked_pending & cleared;
	c->masked_pending &= ~cleared;
	for (uint16_t v = 0; v < 32; v++)
		if (pend & (1u << v))
			raise_irq(c, v);
}

static void cqe_done(void *arg, int status)
{
	struct nvme_req *req = arg;
	struct ferry_nvme_ctrlr *c = req->ctrlr;
	nvme_async_end(c);
	if (nvme_req_stale(req)) {
		nvme_req_put(req);
		return;
	}
	if (status) {
		nvme_fatal(c, "writing a completion entry to host memory failed");
		nvme_req_put(req);
		return;
	}
	struct nvme_cq *cq = &c->cq[req->cqid];
	uint16_t vector = cq->vector;
	int ien = cq->ien;
	nvme_req_put(req);
	if (ien)
		nvme_irq(c, vector);
}

static void cq_write(struct ferry_nvme_ctrlr *c, struct nvme_cq *cq, struct nvme_req *req)
{
	uint32_t slot = cq->tail;
	req->cpl.status = (uint16_t)((req->status << 1) | cq->phase);
	nvme_errlog_posted(req, req->cpl.status);
	if (++cq->tail == cq->size) {
		cq->tail = 0;
		cq->phase ^= 1;
	}
	req->cqe_liov.iov_base = &req->cpl;
	req->cqe_liov.iov_len = sizeof(req->cpl);
	req->cqe_riov.iov_base = (void *)(uintptr_t)(cq->base + (uint64_t)slot * sizeof(req->cpl));
	req->cqe_riov.iov_len = sizeof(req->cpl);
	req->cqe_local = (struct ferry_mem){.iov = &req->cqe_liov, .iovcnt = 1};
	req->cqe_remote = (struct ferry_mem){.domain = c->host, .domain_ctx = c->host_ctx,
					     .iov = &req->cqe_riov, .iovcnt = 1};
	nvme_async_start(c);
	int rc = ferry_memdomain_push(&req->cqe_remote, &req->cqe_local, cqe_done, req);
	if (rc) {
		nvme_async_end(c);
		nvme_fatal(c, "cannot start writing a completion entry");
		nvme_req_put(req);
	}
}

static void cq_drain(struct ferry_nvme_ctrlr *c, struct nvme_cq *cq)
{
	while (cq->pend_head && cq_posted(cq) + cq->reserved < cq->size - 1) {
		struct nvme_req *req = cq->pend_head;
		cq->pend_head = req->next;
		if (!cq->pend_head)
			cq->pend_tail = NULL;
		cq->npending--;
		req->next = NULL;
		cq_write(c, cq, req);
	}
}

void nvme_post(struct nvme_req *req)
{
	struct ferry_nvme_ctrlr *c = req->ctrlr;
	if (nvme_req_stale(req)) {
		nvme_req_drop(req);
		return;
	}
	struct nvme_sq *sq = &c->sq[req->sqid];
	req->cpl.cid = req->cmd.cid;
	req->cpl.sqid = req->sqid;
	req->cpl.sqhd = (uint16_t)sq->head;
	if (c->message) {
		req->cpl.status = (uint16_t)(req->status << 1);
		nvme_errlog_posted(req, req->cpl.status); /* no phase tag in a response capsule */
		int rc = c->tops->send_completion(c->transport, c, c->tctx, req->sqid, &req->cpl,
						  req->cmd_ctx);
		if (rc)
			FERRY_ERR(NVME_COMP, "controller %u: transport could not send the completion "
				  "of cid %u on queue %u: %s", c->cntlid, req->cmd.cid, req->sqid,
				  ferry_strerror(rc));
		nvme_req_put(req);
		return;
	}
	struct nvme_cq *cq = &c->cq[req->cqid];
	if (req->reserved_cq) {
		/* The fetch reserved this slot: posted + reserved <= size - 1 holds. */
		cq->reserved--;
		req->reserved_cq = 0;
		cq_write(c, cq, req);
	} else if (!cq->pend_head && cq_posted(cq) + cq->reserved < cq->size - 1) {
		cq_write(c, cq, req);
	} else {
		req->next = NULL;
		if (cq->pend_tail)
			cq->pend_tail->next = req;
		else
			cq->pend_head = req;
		cq->pend_tail = req;
		cq->npending++;
	}
}

/* ---- queue objects ------------------------------------------------------------------ */

void nvme_cq_init(struct nvme_cq *cq, uint16_t qid, uint32_t size, uint64_t base, int ien,
		  uint16_t vector)
{
	memset(cq, 0, sizeof(*cq));
	cq->valid = 1;
	cq->qid = qid;
	cq->size = size;
	cq->base = base;
	cq->phase = 1;
	cq->ien = ien;
	cq->vector = vector;
}

void nvme_sq_init(struct nvme_sq *sq, uint16_t qid, uint32_t size, uint64_t base, uint16_t cqid)
{
	struct ferry_nvme_ctrlr *c = sq->ctrlr;
	struct ferry_nvme_sqe *buf = sq->fetch_buf;
	struct nvme_qio *qio = sq->qio;
	memset(sq, 0, sizeof(*sq));
	sq->ctrlr = c;
	sq->fetch_buf = buf;
	sq->qio = qio;
	sq->valid = 1;
	sq->qid = qid;
	sq->size = size;
	sq->base = base;
	sq->cqid = cqid;
}

void nvme_drop_parked(struct ferry_nvme_ctrlr *c)
{
	for (uint32_t i = 0; i < c->aer_count; i++)
		nvme_req_drop(c->aer[i]);
	c->aer_count = 0;
	/* Message-based I/O queues park nothing (and belong to their own threads). */
	uint32_t last = c->message ? 0 : c->max_io_queues;
	for (uint32_t q = 0; q <= last; q++) {
		struct nvme_cq *cq = &c->cq[q];
		while (cq->pend_head) {
			struct nvme_req *req = cq->pend_head;
			cq->pend_head = req->next;
			nvme_req_drop(req);
		}
		cq->pend_tail = NULL;
		cq->npending = 0;
		struct nvme_sq *sq = &c->sq[q];
		if (sq->delete_req) {
			nvme_req_drop(sq->delete_req);
			sq->delete_req = NULL;
		}
	}
}

void nvme_queues_drop(struct ferry_nvme_ctrlr *c, int keep_admin)
{
	for (uint32_t q = 0; q <= c->max_io_queues; q++) {
		if (q == 0 && keep_admin) {
			if (c->sq[0].valid) {
				nvme_sq_init(&c->sq[0], 0, c->sq[0].size, 0, 0);
				nvme_cq_init(&c->cq[0], 0, c->cq[0].size, 0, 0, 0);
				c->cq[0].sq_refs = 1;
			}
			continue;
		}
		struct ferry_nvme_sqe *buf = c->sq[q].fetch_buf;
		nvme_qio_free(&c->sq[q]);
		memset(&c->sq[q], 0, sizeof(c->sq[q]));
		c->sq[q].ctrlr = c;
		c->sq[q].fetch_buf = buf;
		memset(&c->cq[q], 0, sizeof(c->cq[q]));
	}
}

/* ---- doorbells ---------------------------------------------------------------------- */

static int doorbell_error(struct ferry_nvme_ctrlr *c, uint16_t qid, int is_cq, uint8_t info,
			  uint32_t val)
{
	ferry_log(nvme_host_err_level(c), NVME_COMP,
		  "controller %u: %s doorbell write %u for queue %u: %s; ignored", c->cntlid,
		  is_cq ? "CQ head" : "SQ tail", val, qid,
		  info == FERRY_NVME_AER_ERR_INVALID_DB ? "no such queue" : "invalid value");
	c->stats.doorbell_errors++;
	nvme_errlog_add(c, qid, 0xffff, 0, 0, 0, NULL);
	nvme_aer_event(c, FERRY_NVME_AER_TYPE_ERROR, info, FERRY_NVME_LOG_ERROR);
	return 0;
}

int nvme_doorbell(struct ferry_nvme_ctrlr *c, uint32_t off, uint32_t val)
{
	uint32_t idx = (off - FERRY_NVME_REG_DBS) / 4;
	uint32_t qid = idx / 2;
	int is_cq = idx & 1;

	if (c->message || !(c->csts & FERRY_NVME_CSTS_RDY) || c->resetting ||
	    (c->csts & FERRY_NVME_CSTS_CFS)) {
		FERRY_DBG(NVME_COMP, "controller %u: doorbell write while not ready ignored",
			  c->cntlid);
		return 0;
	}
	if (qid > c->max_io_queues)
		return doorbell_error(c, (uint16_t)qid, is_cq, FERRY_NVME_AER_ERR_INVALID_DB, val);
	if (is_cq) {
		struct nvme_cq *cq = &c->cq[qid];
		if (!cq->valid)
			return doorbell_error(c, (uint16_t)qid, 1, FERRY_NVME_AER_ERR_INVALID_DB, val);
		if (val >= cq->size ||
		    (val + cq->size - cq->head) % cq->size > cq_posted(cq))
			return doorbell_error(c, (uint16_t)qid, 1, FERRY_NVME_AER_ERR_INVALID_DB_VALUE,
					      val);
		cq->head = val;
		cq_drain(c, cq);
		return 0;
	}
	struct nvme_sq *sq = &c->sq[qid];
	if (!sq->valid)
		return doorbell_error(c, (uint16_t)qid, 0, FERRY_NVME_AER_ERR_INVALID_DB, val);
	/* The new tail may add at most the free slots: the entries from head (the next one to
	 * fetch; a fetch in flight has not moved it yet) to the old tail are still in use. A
	 * tail moved back over them would make stale slots look submitted again ("adds an
	 * entry to a full Submission Queue": Invalid Doorbell Write Value). */
	uint32_t used = (sq->tail + sq->size - sq->head) % sq->size;
	if (val >= sq->size || (val + sq->size - sq->tail) % sq->size > sq->size - 1 - used)
		return doorbell_error(c, (uint16_t)qid, 0, FERRY_NVME_AER_ERR_INVALID_DB_VALUE, val);
	sq->tail = val;
	return 0;
}

/* ---- fetching --------------------------------------------------------------------------- */

static void fetch_done(void *arg, int status)
{
	struct nvme_sq *sq = arg;
	struct ferry_nvme_ctrlr *c = sq->ctrlr;
	struct nvme_req *reqs[NVME_FETCH_BATCH];
	uint32_t n = sq->fetch_n;

	nvme_async_end(c);
	memcpy(reqs, sq->fetch_reqs, n * sizeof(reqs[0]));
	sq->fetching = 0;
	if (sq->fetch_gen != c->gen || status) {
		for (uint32_t i = 0; i < n; i++)
			nvme_req_put(reqs[i]);
		if (sq->fetch_gen == c->gen)
			nvme_fatal(c, "reading submission queue entries from host memory failed");
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		reqs[i]->cmd = sq->fetch_buf[i];
		sq->head = (sq->head + 1) % sq->size;
	}
	for (uint32_t i = 0; i < n; i++)
		nvme_req_start(reqs[i]);
}

static uint32_t sq_fetch(struct ferry_nvme_ctrlr *c, struct nvme_sq *sq, uint32_t max)
{
	if (!sq->valid || sq->deleting || sq->fetching || max == 0)
		return 0;
	uint32_t avail = (sq->tail + sq->size - sq->head) % sq->size;
	if (avail == 0)
		return 0;
	struct nvme_cq *cq = &c->cq[sq->cqid];
	uint32_t used = cq_posted(cq) + cq->reserved + cq->npending;
	uint32_t room = cq->size - 1 > used ? cq->size - 1 - used : 0;
	if (room == 0) {
		c->stats.cq_full_stalls++;
		return 0;
	}
	uint32_t n = FERRY_MIN(avail, room);
	n = FERRY_MIN(n, c->free_count);
	n = FERRY_MIN(n, (uint32_t)NVME_FETCH_BATCH);
	n = FERRY_MIN(n, max);
	n = FERRY_MIN(n, sq->size - sq->head);
	if (n == 0)
		return 0;
	for (uint32_t i = 0; i < n; i++) {
		struct nvme_req *r = nvme_req_get(c, NULL);
		r->sqid = sq->qid;
		r->cqid = sq->cqid;
		r->admin = sq->qid == 0;
		r->reserved_cq = 1;
		sq->fetch_reqs[i] = r;
	}
	cq->reserved += n;
	sq->inflight += n;
	sq->fetching = 1;
	sq->fetch_n = n;
	sq->fetch_gen = c->gen;
	sq->fetch_liov.iov_base = sq->fetch_buf;
	sq->fetch_liov.iov_len = (size_t)n * sizeof(struct ferry_nvme_sqe);
	sq->fetch_riov.iov_base =
		(void *)(uintptr_t)(sq->base + (uint64_t)sq->head * sizeof(struct ferry_nvme_sqe));
	sq->fetch_riov.iov_len = sq->fetch_liov.iov_len;
	sq->fetch_local = (struct ferry_mem){.iov = &sq->fetch_liov, .iovcnt = 1};
	sq->fetch_remote = (struct ferry_mem){.domain = c->host, .domain_ctx = c->host_ctx,
					      .iov = &sq->fetch_riov, .iovcnt = 1};
	nvme_async_start(c);
	int rc = ferry_memdomain_pull(&sq->fetch_remote, &sq->fetch_local, fetch_done, sq);
	if (rc) {
		nvme_async_end(c);
		sq->fetching = 0;
		for (uint32_t i = 0; i < n; i++)
			nvme_req_put(sq->fetch_reqs[i]);
		nvme_fatal(c, "cannot start reading submission queue entries");
		return 0;
	}
	return n;
}

int nvme_fetch(struct ferry_nvme_ctrlr *c, uint32_t max)
{
	uint32_t total = sq_fetch(c, &c->sq[0], max);
	uint32_t nio = c->max_io_queues;
	for (uint32_t k = 0; k < nio && total < max; k++) {
		uint32_t q = 1 + (c->rr_next + k) % nio;
		total += sq_fetch(c, &c->sq[q], max - total);
	}
	c->rr_next = (uint16_t)((c->rr_next + 1) % nio);
	return (int)total;
}

/* ---- asynchronous events ----------------------------------------------------------- */

void nvme_aer_dispatch(struct ferry_nvme_ctrlr *c)
{
	uint32_t i = 0;
	while (c->aer_count && i < c->nevents) {
		uint32_t dw0 = c->events[i];
		uint32_t type = dw0 & 0x7;
		if (c->aen_masked & (1u << type)) {
			i++;
			continue;
		}
		memmove(&c->events[i], &c->events[i + 1], (c->nevents - i - 1) * sizeof(c->events[0]));
		c->nevents--;
		struct nvme_req *req = c->aer[0];
		memmove(&c->aer[0], &c->aer[1], (c->aer_count - 1) * sizeof(c->aer[0]));
		c->aer_count--;
		c->aen_masked |= 1u << type;
		req->cpl.dw0 = dw0;
		nvme_req_complete(req, 0);
	}
}

void nvme_aer_event(struct ferry_nvme_ctrlr *c, uint8_t type, uint8_t info, uint8_t lid)
{
	uint32_t dw0 = FERRY_NVME_AER_DW0(type, info, lid);
	for (uint32_t i = 0; i < c->nevents; i++)
		if (c->events[i] == dw0)
			return;
	if (c->nevents == NVME_MAX_EVENTS) {
		ferry_log(nvme_host_level(c, FERRY_LOG_WARN), NVME_COMP,
			  "controller %u: async event 0x%x dropped (queue full)", c->cntlid, dw0);
		return;
	}
	c->events[c->nevents++] = dw0;
	nvme_aer_dispatch(c);
}

void nvme_aer_unmask(struct ferry_nvme_ctrlr *c, uint8_t type)
{
	c->aen_masked &= ~(1u << type);
	nvme_aer_dispatch(c);
}

/* ---- message-based entry points -------------------------------------------------------- */

FERRY_API int ferry_nvme_ctrlr_connect_queue(struct ferry_nvme_ctrlr *c, uint16_t qid,
					     uint32_t entries)
{
	if (!c || !c->message) {
		FERRY_ERR(NVME_COMP, "connect_queue: %s", !c ? "NULL controller"
					: "a memory-based controller creates queues by admin commands");
		return -EINVAL;
	}
	if (qid > c->max_io_queues || entries < 2 || entries > c->mqes + 1 ||
	    (qid && c->discovery)) {
		FERRY_ERR(NVME_COMP, "controller %u: connect_queue %u with %u entries: %s",
			  c->cntlid, qid, entries,
			  qid && c->discovery ? "a discovery controller has no I/O queues"
					      : "out of range");
		return -EINVAL;
	}
	if (c->sq[qid].valid) {
		FERRY_ERR(NVME_COMP, "controller %u: queue %u is already connected", c->cntlid, qid);
		return -EEXIST;
	}
	if (qid && !atomic_load_explicit(&c->io_open, memory_order_relaxed)) {
		FERRY_ERR(NVME_COMP, "controller %u: connect_queue %u: the controller is not ready "
			  "(CSTS.RDY = 0, resetting or shutting down)", c->cntlid, qid);
		return -EAGAIN;
	}
	if (qid) {
		int rc = nvme_qio_alloc(&c->sq[qid], entries);
		if (rc)
			return rc;
	}
	nvme_cq_init(&c->cq[qid], qid, entries, 0, 0, 0);
	nvme_sq_init(&c->sq[qid], qid, entries, 0, qid);
	c->cq[qid].sq_refs = 1;
	return 0;
}

FERRY_API int ferry_nvme_ctrlr_disconnect_queue(struct ferry_nvme_ctrlr *c, uint16_t qid)
{
	if (!c || !c->message || qid > c->max_io_queues || !c->sq[qid].valid) {
		FERRY_ERR(NVME_COMP, "disconnect_queue %u: no such connected queue", qid);
		return -ENOENT;
	}
	if (c->sq[qid].inflight) {
		FERRY_ERR(NVME_COMP, "controller %u: disconnect_queue %u: %u command(s) executing",
			  c->cntlid, qid, c->sq[qid].inflight);
		return -EBUSY;
	}
	if (c->sq[qid].qio)
		nvme_qstats_retire(c, c->sq[qid].qio);
	nvme_qio_free(&c->sq[qid]);
	c->sq[qid].valid = 0;
	c->cq[qid].valid = 0;
	nvme_progress(c); /* a reset waiting for the last I/O queue completes now */
	return 0;
}

static struct nvme_qio *msg_ioq(struct ferry_nvme_ctrlr *c, uint16_t qid, const char *op)
{
	if (!c || !c->message || qid == 0) {
		FERRY_ERR(NVME_COMP, "%s: %s", op,
			  !c		? "NULL controller"
			  : !c->message ? "not a message-based controller"
					: "qid 0 is the admin queue");
		return NULL;
	}
	if (qid > c->max_io_queues || !c->sq[qid].valid)
		return NULL;
	return c->sq[qid].qio;
}

FERRY_API int ferry_nvme_ctrlr_set_queue_accel_chan(struct ferry_nvme_ctrlr *c, uint16_t qid,
						    struct ferry_accel_chan *chan)
{
	if (!c || !c->message || qid == 0) {
		msg_ioq(c, qid, "set_queue_accel_chan");
		return -EINVAL;
	}
	struct nvme_qio *q = msg_ioq(c, qid, "set_queue_accel_chan");
	if (!q) {
		FERRY_ERR(NVME_COMP, "controller %u: set_queue_accel_chan: queue %u not connected",
			  c->cntlid, qid);
		return -ENOENT;
	}
	q->chan = chan;
	return 0;
}

FERRY_API int ferry_nvme_ctrlr_poll_queue(struct ferry_nvme_ctrlr *c, uint16_t qid, uint32_t max)
{
	if (!c || !c->message || qid == 0) {
		msg_ioq(c, qid, "poll_queue");
		return -EINVAL;
	}
	struct nvme_qio *q = msg_ioq(c, qid, "poll_queue");
	if (!q)
		return -ENOENT;
	if (!max)
		max = 1;
	int done = 0, rc;
	if (q->chan) {
		rc = ferry_accel_chan_poll(q->chan, max);
		if (rc > 0)
			done += rc;
	}
	if (q->poll_all) {
		struct ferry_nvme_subsystem *s = c->subsys;
		for (uint32_t i = 0; i < s->max_ns; i++) {
			struct nvme_ns *ns = s->ns[i];
			if (ns && (rc = ferry_bdev_poll(ns->bdev, max)) > 0)
				done += rc;
		}
		return done;
	}
	for (uint32_t i = 0; i < q->npoll; i++)
		if ((rc = ferry_bdev_poll(q->poll_bdevs[i], max)) > 0)
			done += rc;
	return done;
}

FERRY_API int ferry_nvme_ctrlr_submit(struct ferry_nvme_ctrlr *c, uint16_t qid,
				      const struct ferry_nvme_sqe *sqe, const struct ferry_mem *data,
				      void *cmd_ctx)
{
	if (!c || !sqe || !c->message) {
		FERRY_ERR(NVME_COMP, "submit: %s", !c || !sqe ? "NULL argument"
					: "memory-based controllers fetch their commands");
		return -EINVAL;
	}
	if (qid > c->max_io_queues || !c->sq[qid].valid) {
		FERRY_ERR(NVME_COMP, "controller %u: submit on queue %u, not connected", c->cntlid, qid);
		return -ENOENT;
	}
	if (data && data->iovcnt && !data->iov) {
		FERRY_ERR(NVME_COMP, "controller %u: submit cid %u: data has %u segments and no "
			  "iovec array", c->cntlid, sqe->cid, data->iovcnt);
		return -EINVAL;
	}
	/* An I/O queue's thread reads only the gate of the controller's state (the admin thread
	 * owns the registers); the admin queue reads the registers themselves. */
	if (qid ? !atomic_load_explicit(&c->io_open, memory_order_acquire)
		: (!(c->csts & FERRY_NVME_CSTS_RDY) || c->resetting || c->shutting_down ||
		   (c->csts & FERRY_NVME_CSTS_CFS)))
		return -EAGAIN;
	struct nvme_sq *sq = &c->sq[qid];
	if (sq->inflight >= sq->size)
		return -EBUSY;
	struct nvme_req *r = nvme_req_get(c, qid ? sq->qio : NULL);
	if (!r)
		return -EBUSY;
	r->cmd = *sqe;
	r->sqid = qid;
	r->cqid = qid;
	r->admin = qid == 0;
	r->cmd_ctx = cmd_ctx;
	if (data)
		r->msg_data = *data;
	sq->inflight++;
	if (r->qio)
		atomic_store_explicit(&r->qio->busy, sq->inflight, memory_order_release);
	sq->head = (sq->head + 1) % sq->size;
	nvme_req_start(r);
	return 0;
}
