/*
 * The initiator's NVMe-oF/RDMA queue pair (nvmf_rdma_transport, the other side of the seam
 * in nvmf_internal.h) over the HAL NIC class's RDMA part (<ferry/hal/rdma.h>):
 * - one RC QP per queue with its own CQ, set up through the connection manager with the
 *   binding's private data (accept: crqsize bounds the queue; reject: its status named);
 * - a registered slab per queue: one command capsule per slot (SQE + in-capsule data or a
 *   keyed SGL list) sent by SEND, and one 16-byte response buffer per slot posted as a receive;
 * - a slot completes only once both its CQE and its SEND completion are in (in either order),
 *   exactly once: a CQE names its slot by cid with the generation, a CQE for a cid not in
 *   flight (or already answered) is a protocol violation and fails the connection;
 * - data by keyed SGLs from the registration map (<ferry/module/rdma.h>): the staging pool and
 *   the controller's Identify/Connect buffers are registered once, the I/O's own memory
 *   (RDMA-direct: local memory, host memory through opts.nic_domain) through
 *   ferry_rdma_map_mem(); a slot holds the segments its keyed SGL names (s->held: the map
 *   evicts no held registration) until it is put (nvmf_slot_put(): its completion, the loss
 *   of its connection, a failed submit), so the keys stay valid as long as the controller
 *   may use them. Only the host unmapping the memory ends them early: the controller's access
 *   then fails, the connection is lost and the I/O retried (mapped again, or staged);
 * - a work completion with an error, a QP error or a disconnect is a connection loss: the
 *   controller's shared reconnect/retry path (nvmf_qpair_fail()).
 * And the controller-level RDMA parts: the device check, the map, the staging registration,
 * the per-I/O decision direct / staged (nvmf_rdma_io_direct()) and the poll.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ferry/hal/rdma.h>
#include <ferry/module/rdma.h>
#include <ferry/nvmf_rdma_spec.h>
#include <ferry/nvmf_spec.h>
#include "core_internal.h"
#include "nvmf_internal.h"

#define RDMA_CQE_LEN 16u     /* a response capsule: one CQE */
#define RDMA_ICD_MAX 8192u   /* in-capsule data bytes a slot's capsule holds at most */
#define RDMA_ADMIN_ICD 256u  /* admin capsule room: a keyed SGL list, never data */
#define RDMA_WC_BATCH 32u    /* completions taken per cq_poll() */
#define RDMA_POST_BATCH 32u  /* capsules posted per post_send() */
#define RDMA_IDLE_CHECK 256u /* empty polls between two qp_state() checks */
#define WR_KIND_SEND 1u
#define WR_KIND_RECV 2u

struct nvmf_rdma_ctrlr {
	const struct ferry_hal_rdma_ops *ops;
	struct ferry_hal_rdma_info info;
	struct ferry_rdma_map *map;
	/* the Identify and Connect data buffers (c->idbuf, c->cdata), registered once */
	struct ferry_hal_rdma_mr *id_mr, *cd_mr;
	struct ferry_hal_rdma_mr_keys id_keys, cd_keys;
};

struct nvmf_rdma_qpair {
	struct ferry_hal_rdma_cq *cq;
	struct ferry_hal_rdma_qp *qp;
	uint8_t *slab; /* depth capsules of cap_size bytes, then depth response buffers */
	size_t slab_len;
	struct ferry_hal_rdma_mr *mr;
	struct ferry_hal_rdma_mr_keys keys;
	uint32_t cap_size; /* 64 + icd_cap */
	uint32_t icd_cap;
	uint32_t epoch; /* connection number: in every wr_id, older ones name nothing */
	uint32_t idle;  /* empty polls since the last qp_state() check */
	uint16_t lim;   /* slots usable on this connection: min(depth, crqsize) */
};

static void sleep_us(unsigned us)
{
	struct timespec ts = {0, (long)us * 1000};
	nanosleep(&ts, NULL);
}

static const struct ferry_hal_rdma_ops *c_ops(const struct nvmf_qpair *q)
{
	return q->c->rc->ops;
}

static uint64_t wr_id(const struct nvmf_rdma_qpair *rq, uint32_t kind, uint32_t idx)
{
	return (uint64_t)rq->epoch << 32 | (uint64_t)kind << 16 | (idx & 0xffff);
}

static uint8_t *capsule_of(const struct nvmf_qpair *q, const struct nvmf_slot *s)
{
	return q->rq->slab + (size_t)s->idx * q->rq->cap_size;
}

static uint8_t *rsp_of(const struct nvmf_qpair *q, uint32_t idx)
{
	return q->rq->slab + (size_t)q->depth * q->rq->cap_size + (size_t)idx * RDMA_CQE_LEN;
}

static uint64_t nic_addr(const struct nvmf_qpair *q, const void *p)
{
	return q->rq->keys.addr + (uint64_t)((const uint8_t *)p - q->rq->slab);
}

/* Keyed descriptors one command of @p q may carry: 1 on the admin queue (its capsule takes no
 * in-capsule data on every controller), else the controller's MSDBD within the capsule room. */
static uint32_t max_desc(const struct nvmf_qpair *q)
{
	const struct nvmf_ctrlr *c = q->c;
	if (!q->qid || c->icdoff)
		return 1;
	uint32_t n = c->msdbd ? c->msdbd : 1;
	uint32_t room = (uint32_t)FERRY_MIN((uint64_t)q->max_icd, (uint64_t)q->rq->icd_cap) /
			(uint32_t)sizeof(struct ferry_nvmf_rdma_keyed_sgl);
	n = FERRY_MIN(n, FERRY_MAX(room, 1u));
	return FERRY_MIN(n, (uint32_t)FERRY_NVMF_RDMA_SGL_MAX);
}

static int proto_error(struct nvmf_qpair *q, const char *why)
{
	static struct log_ratelimit rl;
	q->c->st.protocol_errors++;
	if (log_ratelimit(&rl, NULL))
		FERRY_ERR(NVMF_COMP, "'%s' queue %u: controller protocol error: %s", q->c->name,
			  q->qid, why);
	nvmf_qpair_fail(q, why);
	return -EPROTO;
}

/* ---- data: keyed SGLs ------------------------------------------------------------------ */

static int ctrl_buf_desc(const struct nvmf_ctrlr *c, const struct iovec *v,
			 struct ferry_nvmf_rdma_kdesc *d)
{
	const struct nvmf_rdma_ctrlr *rc = c->rc;
	const uint8_t *p = v->iov_base;
	if (p >= c->idbuf && p + v->iov_len <= c->idbuf + 4096 && rc->id_mr) {
		d->addr = rc->id_keys.addr + (uint64_t)(p - c->idbuf);
		d->key = rc->id_keys.rkey;
	} else if (p >= c->cdata && p + v->iov_len <= c->cdata + 1024 && rc->cd_mr) {
		d->addr = rc->cd_keys.addr + (uint64_t)(p - c->cdata);
		d->key = rc->cd_keys.rkey;
	} else {
		return 0;
	}
	d->len = (uint32_t)v->iov_len;
	d->invalidate = 0;
	return 1;
}

static uint32_t data_access(int to_host)
{
	return to_host ? FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE | FERRY_HAL_RDMA_ACCESS_REMOTE_WRITE
		       : FERRY_HAL_RDMA_ACCESS_REMOTE_READ;
}

/* The registered segments of [off, off + len) of @p iov (in @p dom, NULL: system). */
static int map_range(struct nvmf_ctrlr *c, struct ferry_memdomain *dom, void *dom_ctx,
		     const struct iovec *iov, uint32_t cnt, size_t off, size_t len, int to_host,
		     struct ferry_rdma_seg *seg, uint32_t *nseg)
{
	struct iovec v[NVMF_SLOT_IOV];
	uint32_t n = nvmf_iov_slice(iov, cnt, off, len, v, NVMF_SLOT_IOV);
	if (!n) {
		ferry_set_last_error(NVMF_COMP,
				     "'%s': %zu bytes at offset %zu span more than %u "
				     "segments",
				     c->name, len, off, NVMF_SLOT_IOV);
		return -ENOBUFS;
	}
	struct ferry_mem m = {.domain = dom, .domain_ctx = dom_ctx, .iov = v, .iovcnt = n};
	return ferry_rdma_map_mem(c->rc->map, &m, dom ? c->opts.nic_domain : NULL,
				  data_access(to_host), seg, nseg);
}

static int slot_keys(struct nvmf_qpair *q, struct nvmf_slot *s, struct ferry_nvmf_rdma_kdesc *d,
		     uint32_t *nd)
{
	struct nvmf_ctrlr *c = q->c;
	if (!s->data_dom && s->data_cnt == 1 && !s->data_off && s->data[0].iov_len == s->len &&
	    ctrl_buf_desc(c, &s->data[0], &d[0])) {
		*nd = 1;
		return 0;
	}
	struct ferry_rdma_seg seg[FERRY_NVMF_RDMA_SGL_MAX];
	uint32_t n = max_desc(q);
	int rc = map_range(c, s->data_dom, s->data_dom_ctx, s->data, s->data_cnt, s->data_off,
			   s->len, s->dir == 2, seg, &n);
	if (rc) {
		static struct log_ratelimit rl;
		if (log_ratelimit(&rl, NULL))
			FERRY_ERR(NVMF_COMP,
				  "'%s' queue %u: cannot name the data of cid 0x%x (%u bytes) in "
				  "registered memory: %s (%s)",
				  c->name, q->qid, s->cid, s->len, ferry_strerror(rc),
				  ferry_last_error());
		return rc == -ENOBUFS ? -EINVAL : rc;
	}
	for (uint32_t i = 0; i < n; i++) {
		d[i].addr = seg[i].addr;
		d[i].len = seg[i].len;
		d[i].key = seg[i].rkey;
		d[i].invalidate = 0;
	}
	if (s->nheld) /* never: a slot is submitted once per get; no reference is lost */
		nvmf_rdma_slot_release(s);
	memcpy(s->held, seg, n * sizeof(seg[0]));
	s->nheld = (uint8_t)n;
	*nd = n;
	return 0;
}

void nvmf_rdma_slot_release(struct nvmf_slot *s)
{
	struct nvmf_ctrlr *c = s->q->c;
	uint32_t n = s->nheld;
	s->nheld = 0;
	if (!n || !c->rc || !c->rc->map)
		return;
	int rc = ferry_rdma_map_release(c->rc->map, s->held, n);
	if (rc) {
		static struct log_ratelimit rl;
		if (log_ratelimit(&rl, NULL))
			FERRY_ERR(NVMF_COMP,
				  "'%s' queue %u: releasing the %u registered segments of slot %u "
				  "failed: %s",
				  c->name, s->q->qid, n, s->idx, ferry_strerror(rc));
	}
}

/* ---- send side ------------------------------------------------------------------------- */

static void tx_enqueue(struct nvmf_qpair *q, struct nvmf_slot *s)
{
	s->on_tx = 1;  /* until the SEND's completion */
	s->tx_idx = 0; /* 0 queued, 1 posted */
	s->tx_next = NULL;
	if (q->tx_tail)
		q->tx_tail->tx_next = s;
	else
		q->tx_head = s;
	q->tx_tail = s;
}

static int rdma_submit(struct nvmf_slot *s)
{
	struct nvmf_qpair *q = s->q;
	struct nvmf_rdma_qpair *rq = q->rq;
	struct nvmf_ctrlr *c = q->c;
	if (!rq || !rq->qp)
		return -ENOTCONN;
	uint8_t *cap = capsule_of(q, s);
	uint32_t icd_used = 0;
	int rc;
	s->sqe.cid = s->cid;
	s->sqe.flags = (uint8_t)((s->sqe.flags & ~(3u << FERRY_NVME_FLAGS_PSDT_SHIFT)) |
				 (FERRY_NVME_PSDT_SGL_MPTR_CONTIG << FERRY_NVME_FLAGS_PSDT_SHIFT));
	uint32_t max_icd = (uint32_t)FERRY_MIN((uint64_t)q->max_icd, (uint64_t)rq->icd_cap);
	int icd_ok = q->qid && !c->icdoff && s->sqe.opcode != FERRY_NVMF_OPC_FABRICS;
	if (!s->dir || !s->len) {
		rc = ferry_nvmf_rdma_sgl_build(&s->sqe, NULL, 0, NULL, 0, &icd_used);
	} else if (s->dir == 1 && icd_ok && !s->rdirect && !s->data_dom && s->len <= max_icd) {
		/* a small write from local memory (staging, DSM ranges): in the capsule */
		struct iovec v[NVMF_SLOT_IOV];
		uint32_t n = nvmf_iov_slice(s->data, s->data_cnt, s->data_off, s->len, v,
					    NVMF_SLOT_IOV);
		if (!n)
			return -EINVAL;
		uint8_t *p = cap + sizeof(struct ferry_nvme_sqe);
		for (uint32_t i = 0; i < n; i++) {
			memcpy(p, v[i].iov_base, v[i].iov_len);
			p += v[i].iov_len;
		}
		ferry_nvmf_rdma_sgl_build_icd(&s->sqe, s->len);
		icd_used = s->len;
		s->icd = 1;
		rc = 0;
	} else {
		struct ferry_nvmf_rdma_kdesc d[FERRY_NVMF_RDMA_SGL_MAX];
		uint32_t nd = 0;
		rc = slot_keys(q, s, d, &nd);
		if (!rc)
			rc = ferry_nvmf_rdma_sgl_build(&s->sqe, cap + sizeof(struct ferry_nvme_sqe),
						       icd_ok ? max_icd : 0, d, nd, &icd_used);
	}
	if (rc)
		return rc;
	memcpy(cap, &s->sqe, sizeof(s->sqe));
	s->tx_cnt = (uint32_t)sizeof(s->sqe) + icd_used; /* the SEND's length */
	tx_enqueue(q, s);
	c->st.commands++;
	if (s->icd && s->io) {
		c->st.icd_writes++;
		c->st.rdma_icd_writes++;
	}
	return 0;
}

static int rdma_flush(struct nvmf_qpair *q)
{
	struct nvmf_rdma_qpair *rq = q->rq;
	int work = 0;
	while (q->tx_head && q->connected && !q->failed) {
		struct ferry_hal_rdma_wr wr[RDMA_POST_BATCH];
		struct ferry_hal_rdma_sge sge[RDMA_POST_BATCH];
		struct nvmf_slot *batch[RDMA_POST_BATCH];
		uint32_t n = 0;
		for (struct nvmf_slot *s = q->tx_head; s && n < RDMA_POST_BATCH; s = s->tx_next) {
			uint8_t *cap = capsule_of(q, s);
			sge[n] = (struct ferry_hal_rdma_sge){.addr = nic_addr(q, cap),
							     .len = s->tx_cnt,
							     .lkey = rq->keys.lkey};
			wr[n] = (struct ferry_hal_rdma_wr){.wr_id = wr_id(rq, WR_KIND_SEND, s->idx),
							   .opcode = FERRY_HAL_RDMA_OP_SEND,
							   .flags = FERRY_HAL_RDMA_WR_F_SIGNALED,
							   .sge = &sge[n],
							   .nsge = 1};
			if (n)
				wr[n - 1].next = &wr[n];
			batch[n++] = s;
		}
		const struct ferry_hal_rdma_wr *bad = NULL;
		int rc = c_ops(q)->post_send(rq->qp, wr, &bad);
		uint32_t posted = rc ? (bad ? (uint32_t)(bad - wr) : 0) : n;
		for (uint32_t i = 0; i < posted; i++) {
			batch[i]->tx_idx = 1;
			q->tx_head = batch[i]->tx_next;
			batch[i]->tx_next = NULL;
		}
		if (!q->tx_head)
			q->tx_tail = NULL;
		work += (int)posted;
		if (rc == -ENOSPC)
			break; /* completions free the send queue: the next poll posts the rest */
		if (rc) {
			nvmf_qpair_fail(q, "posting a command capsule failed");
			return rc;
		}
	}
	return work;
}

/* ---- receive side ---------------------------------------------------------------------- */

static int post_rsp(struct nvmf_qpair *q, uint32_t idx)
{
	struct nvmf_rdma_qpair *rq = q->rq;
	struct ferry_hal_rdma_sge sge = {.addr = nic_addr(q, rsp_of(q, idx)),
					 .len = RDMA_CQE_LEN,
					 .lkey = rq->keys.lkey};
	return c_ops(q)->post_recv(rq->qp, wr_id(rq, WR_KIND_RECV, idx), &sge, 1);
}

static int on_cqe(struct nvmf_qpair *q, const struct ferry_nvme_cqe *cqe)
{
	static struct log_ratelimit rl;
	uint32_t idx = cqe->cid & ((1u << q->idx_bits) - 1);
	struct nvmf_slot *s = idx < q->rq->lim ? &q->slots[idx] : NULL;
	char why[96];
	/* Only a command in flight (posted) and not answered yet, by its exact cid (the
	 * generation bits): anything else is a stale, invented or duplicate completion. */
	if (!s || s->state != SLOT_BUSY || s->cid != cqe->cid || s->got_success ||
	    (s->on_tx && !s->tx_idx)) {
		snprintf(why, sizeof(why), "completion for cid 0x%x: no such command in flight",
			 cqe->cid);
		return proto_error(q, why);
	}
	if (cqe->sqid != q->qid && log_ratelimit(&rl, NULL))
		FERRY_WARN(NVMF_COMP, "'%s' queue %u: completion names SQ %u (tolerated)",
			   q->c->name, q->qid, cqe->sqid);
	s->got_success = 1; /* (RDMA: "the CQE is in") */
	s->cqe = *cqe;
	s->status = nvmf_status_errno((uint16_t)(cqe->status >> 1));
	if (s->on_tx) {
		s->resp_pending = 1; /* the SEND's completion finishes it */
		return 0;
	}
	nvmf_slot_complete(s);
	return 0;
}

static const char *op_name(uint32_t op)
{
	switch (op) {
	case FERRY_HAL_RDMA_OP_SEND:
		return "SEND";
	case FERRY_HAL_RDMA_OP_RECV:
		return "RECV";
	case FERRY_HAL_RDMA_OP_WRITE:
		return "RDMA WRITE";
	case FERRY_HAL_RDMA_OP_READ:
		return "RDMA READ";
	default:
		return "work request";
	}
}

static int on_wc(struct nvmf_qpair *q, const struct ferry_hal_rdma_wc *wc)
{
	struct nvmf_rdma_qpair *rq = q->rq;
	char why[128];
	if ((uint32_t)(wc->wr_id >> 32) != rq->epoch)
		return 0; /* of an earlier connection of this queue */
	uint32_t kind = (uint32_t)(wc->wr_id >> 16) & 0xffff, idx = (uint32_t)wc->wr_id & 0xffff;
	if (wc->status) {
		q->c->st.rdma_wc_errors++;
		snprintf(why, sizeof(why), "%s work completion error: %s (vendor error 0x%x)",
			 kind == WR_KIND_RECV ? "RECV" : op_name(wc->opcode),
			 ferry_strerror(wc->status), wc->vendor_err);
		nvmf_qpair_fail(q, why);
		return -EIO;
	}
	if (kind == WR_KIND_SEND) {
		struct nvmf_slot *s = idx < q->depth ? &q->slots[idx] : NULL;
		if (!s || s->state != SLOT_BUSY || !s->on_tx || !s->tx_idx) {
			nvmf_qpair_fail(q, "SEND completion for no capsule posted");
			return -EIO;
		}
		s->on_tx = 0;
		if (s->resp_pending)
			nvmf_slot_complete(s);
		return 0;
	}
	if (kind != WR_KIND_RECV || idx >= q->depth) {
		nvmf_qpair_fail(q, "completion of no work request posted");
		return -EIO;
	}
	if (wc->byte_len != RDMA_CQE_LEN) {
		snprintf(why, sizeof(why), "response capsule of %u bytes (a CQE has %u)",
			 wc->byte_len, RDMA_CQE_LEN);
		return proto_error(q, why);
	}
	struct ferry_nvme_cqe cqe;
	memcpy(&cqe, rsp_of(q, idx), sizeof(cqe));
	int rc = post_rsp(q, idx); /* the buffer is free again: the CQE is copied out */
	if (rc) {
		nvmf_qpair_fail(q, "reposting a response buffer failed");
		return rc;
	}
	return on_cqe(q, &cqe);
}

static int rdma_process(struct nvmf_qpair *q)
{
	struct nvmf_rdma_qpair *rq = q->rq;
	int work = 0;
	for (int iter = 0; iter < 8 && q->connected && !q->failed; iter++) {
		struct ferry_hal_rdma_wc wc[RDMA_WC_BATCH];
		int n = c_ops(q)->cq_poll(rq->cq, wc, RDMA_WC_BATCH);
		if (n < 0) {
			nvmf_qpair_fail(q, "polling the completion queue failed");
			return n;
		}
		for (int i = 0; i < n; i++) {
			int rc = on_wc(q, &wc[i]);
			if (rc < 0 || q->failed)
				return rc < 0 ? rc : -ECONNRESET;
		}
		work += n;
		if ((uint32_t)n < RDMA_WC_BATCH)
			break;
	}
	if (work) {
		rq->idle = 0;
	} else if (++rq->idle >= RDMA_IDLE_CHECK && q->connected && !q->failed) {
		/* a disconnect with nothing posted would show in no completion */
		rq->idle = 0;
		int st = c_ops(q)->qp_state(rq->qp, NULL, NULL);
		if (st && st != -EINPROGRESS) {
			char why[80];
			snprintf(why, sizeof(why), "connection lost (%s)", ferry_strerror(st));
			nvmf_qpair_fail(q, why);
			return st;
		}
	}
	return work;
}

static int rdma_wait(struct nvmf_qpair *q, struct nvmf_slot *s, uint64_t deadline_ns)
{
	for (;;) {
		nvmf_qpair_flush(q);
		if (!q->failed)
			rdma_process(q);
		if (s->done)
			return 0;
		if (q->failed)
			return -ECONNRESET;
		if (nvmf_now_ns() > deadline_ns)
			return -ETIMEDOUT;
		if (c_ops(q)->cq_wait)
			(void)c_ops(q)->cq_wait(q->rq->cq, 1000);
		else
			sleep_us(20);
	}
}

/* ---- connection ------------------------------------------------------------------------ */

static int slab_alloc(struct nvmf_qpair *q)
{
	struct nvmf_ctrlr *c = q->c;
	struct nvmf_rdma_qpair *rq = calloc(1, sizeof(*rq));
	if (!rq)
		return -ENOMEM;
	/* Room for the in-capsule data the controller takes (IOCCSZ, known once the admin
	 * queue is up) within RDMA_ICD_MAX; the admin queue's only for an SGL list. */
	uint64_t icd = c->ioccsz >= 4 ? (uint64_t)c->ioccsz * 16 - 64 : 0;
	rq->icd_cap = q->qid ? (uint32_t)FERRY_MIN(FERRY_MAX(icd, (uint64_t)RDMA_ADMIN_ICD),
						   (uint64_t)RDMA_ICD_MAX)
			     : RDMA_ADMIN_ICD;
	rq->icd_cap = (rq->icd_cap + 63u) & ~63u;
	rq->cap_size = (uint32_t)sizeof(struct ferry_nvme_sqe) + rq->icd_cap;
	rq->slab_len = (size_t)q->depth * (rq->cap_size + RDMA_CQE_LEN);
	if (posix_memalign((void **)&rq->slab, 4096, rq->slab_len)) {
		free(rq);
		return -ENOMEM;
	}
	memset(rq->slab, 0, rq->slab_len);
	int rc = c->rc->ops->mr_reg(c->dev, rq->slab, rq->slab_len,
				    FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE, &rq->mr);
	if (rc) {
		FERRY_ERR(NVMF_COMP, "'%s' queue %u: cannot register its %zu-byte capsule slab: %s",
			  c->name, q->qid, rq->slab_len, ferry_strerror(rc));
		free(rq->slab);
		free(rq);
		return rc;
	}
	c->rc->ops->mr_keys(rq->mr, &rq->keys);
	q->rq = rq;
	return 0;
}

static void rdma_close(struct nvmf_qpair *q)
{
	struct nvmf_rdma_qpair *rq = q->rq;
	if (rq) {
		const struct ferry_hal_rdma_ops *ops = c_ops(q);
		/* After qp_destroy() no completion of its requests comes: the slots and their
		 * buffers are ours (the caller puts the busy slots). */
		if (rq->qp)
			ops->qp_destroy(rq->qp);
		rq->qp = NULL;
		if (rq->cq)
			ops->cq_destroy(rq->cq);
		rq->cq = NULL;
		rq->epoch++;
	}
	q->connected = 0;
	q->tx_head = q->tx_tail = NULL;
}

static void rdma_fini(struct nvmf_qpair *q)
{
	struct nvmf_rdma_qpair *rq = q->rq;
	if (!rq)
		return;
	/* A slot still busy at the end holds its segments: the map is destroyed after this. */
	for (uint32_t i = 0; q->slots && i < q->depth; i++)
		nvmf_rdma_slot_release(&q->slots[i]);
	c_ops(q)->mr_dereg(rq->mr);
	free(rq->slab);
	free(rq);
	q->rq = NULL;
}

/* A refused or failed connect, named: the reject's status when there is one. */
static int connect_refused(struct nvmf_qpair *q, int st, const void *pd, uint32_t pdlen)
{
	struct nvmf_ctrlr *c = q->c;
	if (st == -ECONNREFUSED) {
		uint16_t sts = 0;
		if (pd && pdlen && !ferry_nvmf_rdma_cm_rej_parse(pd, pdlen, &sts))
			FERRY_ERR(NVMF_COMP,
				  "'%s' queue %u: %s rejected the connection: %s (status 0x%x)",
				  c->name, q->qid, c->addr, ferry_nvmf_rdma_cm_sts_str(sts), sts);
		else
			FERRY_ERR(NVMF_COMP,
				  "'%s' queue %u: %s rejected the connection (%s private data)",
				  c->name, q->qid, c->addr, pdlen ? "malformed" : "no");
		return -ECONNREFUSED;
	}
	FERRY_ERR(NVMF_COMP, "'%s' queue %u: connect to %s: %s", c->name, q->qid, c->addr,
		  ferry_strerror(st));
	return st;
}

static int rdma_connect(struct nvmf_qpair *q, uint64_t deadline_ns)
{
	struct nvmf_ctrlr *c = q->c;
	const struct ferry_hal_rdma_ops *ops = c->rc->ops;
	const struct ferry_hal_rdma_info *info = &c->rc->info;
	int rc;

	q->failed = 0;
	q->connected = 0;
	q->tx_head = q->tx_tail = NULL;
	if (!q->rq && (rc = slab_alloc(q)))
		return rc;
	struct nvmf_rdma_qpair *rq = q->rq;
	rq->idle = 0;
	rc = ops->cq_create(c->dev, (uint32_t)q->depth * 2 + 16, &rq->cq);
	if (rc) {
		rq->cq = NULL;
		FERRY_ERR(NVMF_COMP, "'%s' queue %u: cannot create a completion queue: %s", c->name,
			  q->qid, ferry_strerror(rc));
		return rc;
	}
	struct ferry_hal_rdma_qp_attr attr = {
		.size = sizeof(attr),
		.cq = rq->cq,
		.max_send_wr = q->depth,
		.max_recv_wr = q->depth,
		.max_send_sge = 1,
		.max_recv_sge = 1,
		.initiator_depth = (uint8_t)FERRY_MAX(FERRY_MIN(info->max_qp_rd_atom, 16u), 1u),
		.responder_resources = (uint8_t)FERRY_MAX(FERRY_MIN(info->max_qp_init_rd_atom, 16u),
							  1u),
		.ctx = q,
	};
	uint8_t pdata[32];
	size_t plen = ferry_nvmf_rdma_cm_req_build(pdata, sizeof(pdata), q->qid, q->depth,
						   (uint16_t)(q->depth - 1));
	uint64_t now = nvmf_now_ns();
	uint32_t tmo = deadline_ns > now ? (uint32_t)((deadline_ns - now) / 1000000u) + 1 : 1;
	rc = ops->connect(c->dev, c->addr, &attr, pdata, (uint32_t)plen, tmo, &rq->qp);
	if (rc) {
		rq->qp = NULL;
		FERRY_ERR(NVMF_COMP, "'%s' queue %u: connect to %s: %s", c->name, q->qid, c->addr,
			  ferry_strerror(rc));
		goto err;
	}
	for (uint32_t i = 0; i < q->depth; i++) {
		rc = post_rsp(q, i);
		if (rc) {
			FERRY_ERR(NVMF_COMP, "'%s' queue %u: cannot post its response buffers: %s",
				  c->name, q->qid, ferry_strerror(rc));
			goto err;
		}
	}
	const void *pd = NULL;
	uint32_t pdlen = 0;
	for (;;) {
		struct ferry_hal_rdma_wc wc[8];
		rc = ops->qp_state(rq->qp, &pd, &pdlen);
		if (rc != -EINPROGRESS)
			break;
		if (nvmf_now_ns() > deadline_ns) {
			rc = -ETIMEDOUT;
			break;
		}
		(void)ops->cq_poll(rq->cq, wc, FERRY_ARRAY_SIZE(wc)); /* advances the CM */
		if (ops->cq_wait)
			(void)ops->cq_wait(rq->cq, 1000);
		else
			sleep_us(50);
	}
	if (rc) {
		rc = connect_refused(q, rc, pd, pdlen);
		goto err;
	}
	struct ferry_nvmf_rdma_cm_rep rep;
	if (ferry_nvmf_rdma_cm_rep_parse(pd, pdlen, &rep)) {
		FERRY_ERR(NVMF_COMP,
			  "'%s' queue %u: the controller's accept carries invalid private data "
			  "(%u bytes)",
			  c->name, q->qid, pdlen);
		rc = -EPROTO;
		goto err;
	}
	/* The controller takes crqsize capsules at once: never more commands in flight. */
	rq->lim = (uint16_t)FERRY_MIN((uint32_t)q->depth, (uint32_t)rep.crqsize);
	q->free = NULL;
	for (uint32_t i = rq->lim; i-- > 0;) {
		struct nvmf_slot *s = &q->slots[i];
		if (s->state != SLOT_FREE)
			continue;
		s->next_free = q->free;
		q->free = s;
	}
	q->connected = 1;
	return 0;
err:
	rdma_close(q);
	return rc;
}

const struct nvmf_transport nvmf_rdma_transport = {
	.name = "rdma",
	.connect = rdma_connect,
	.close = rdma_close,
	.fini = rdma_fini,
	.submit = rdma_submit,
	.process = rdma_process,
	.flush = rdma_flush,
	.wait = rdma_wait,
};

/* ---- the controller's RDMA parts -------------------------------------------------------- */

int nvmf_rdma_setup(struct nvmf_ctrlr *c)
{
	int rc;
	if (!c->dev) {
		rc = ferry_device_open("rxe", "", &c->dev);
		if (rc) {
			FERRY_ERR(NVMF_COMP,
				  "create '%s': trtype rdma without opts.nic: cannot open "
				  "the rxe backend: %s",
				  c->name, ferry_strerror(rc));
			return -ENOTSUP; /* no RDMA device here */
		}
		c->own_dev = 1;
	}
	const struct ferry_hal_backend *b = ferry_hal_dev_get_backend(c->dev);
	c->nic = b ? b->nic : NULL;
	if (!c->nic || !c->nic->rdma) {
		FERRY_ERR(NVMF_COMP, "create '%s': device '%s' has no RDMA NIC class", c->name,
			  ferry_device_get_name(c->dev));
		return -ENOTSUP;
	}
	struct nvmf_rdma_ctrlr *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	c->rc = r;
	r->ops = c->nic->rdma;
	rc = r->ops->query(c->dev, &r->info);
	if (rc) {
		FERRY_ERR(NVMF_COMP, "create '%s': device '%s' has no usable RDMA: %s", c->name,
			  ferry_device_get_name(c->dev), ferry_strerror(rc));
		return rc == -ENODEV ? -ENOTSUP : rc;
	}
	struct ferry_rdma_map_opts mo = {.size = sizeof(mo), .dev = c->dev};
	rc = ferry_rdma_map_create(&mo, &r->map);
	if (rc) {
		r->map = NULL;
		FERRY_ERR(NVMF_COMP, "create '%s': cannot create the registration map: %s", c->name,
			  ferry_strerror(rc));
		return rc;
	}
	uint32_t acc = FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE | FERRY_HAL_RDMA_ACCESS_REMOTE_READ |
		       FERRY_HAL_RDMA_ACCESS_REMOTE_WRITE;
	rc = r->ops->mr_reg(c->dev, c->idbuf, 4096, acc, &r->id_mr);
	if (!rc)
		rc = r->ops->mr_reg(c->dev, c->cdata, 1024, acc, &r->cd_mr);
	if (rc) {
		FERRY_ERR(NVMF_COMP, "create '%s': cannot register the admin data buffers: %s",
			  c->name, ferry_strerror(rc));
		return rc;
	}
	r->ops->mr_keys(r->id_mr, &r->id_keys);
	r->ops->mr_keys(r->cd_mr, &r->cd_keys);
	c->max_send_iov = c->max_recv_iov = 1;
	c->ddp_on = c->ddp_host = 0;
	return 0;
}

int nvmf_rdma_staging_reg(struct nvmf_ctrlr *c)
{
	uint32_t acc = FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE | FERRY_HAL_RDMA_ACCESS_REMOTE_READ |
		       FERRY_HAL_RDMA_ACCESS_REMOTE_WRITE;
	int rc = ferry_rdma_map_register(c->rc->map, c->staging,
					 (size_t)NVMF_STAGING_MAX * c->staging_size, acc);
	if (rc)
		FERRY_ERR(NVMF_COMP, "create '%s': cannot register the staging pool: %s", c->name,
			  ferry_strerror(rc));
	return rc;
}

void nvmf_rdma_teardown(struct nvmf_ctrlr *c)
{
	struct nvmf_rdma_ctrlr *r = c->rc;
	if (!r)
		return;
	ferry_rdma_map_destroy(r->map);
	if (r->ops) {
		r->ops->mr_dereg(r->id_mr);
		r->ops->mr_dereg(r->cd_mr);
	}
	free(r);
	c->rc = NULL;
}

int nvmf_rdma_poll(struct nvmf_ctrlr *c)
{
	int work = 0;
	if (ferry_rdma_map_poll(c->rc->map) > 0)
		work++;
	if (c->admin.connected && !c->admin.failed)
		work += FERRY_MAX(rdma_process(&c->admin), 0);
	for (uint16_t i = 0; i < c->nq && c->state == FERRY_BDEV_NVMF_CONNECTED; i++) {
		struct nvmf_qpair *q = &c->ioq[i];
		if (q->connected && !q->failed)
			work += FERRY_MAX(rdma_process(q), 0);
	}
	return work;
}

/*
 * Direct or staged: with no sequence and RDMA-direct allowed, every part of the I/O (the
 * commands nvmf_io.c will cut it into) must be expressible as at most max_desc() registered
 * segments of its own memory; that also warms the map's cache for the submissions. Counted
 * once per I/O.
 */
int nvmf_rdma_io_direct(struct nvmf_ctrlr *c, struct ferry_bdev_io *io)
{
	static struct log_ratelimit rl;
	if (io->seq) {
		c->st.rdma_staged_ios++;
		c->st.rdma_fused_ios++;
		return 0;
	}
	if (c->opts.flags & FERRY_BDEV_NVMF_F_NO_RDMA_DIRECT || !c->nq) {
		c->st.rdma_staged_ios++;
		return 0;
	}
	struct ferry_memdomain *dom = io->mem.domain;
	if (dom == ferry_memdomain_system())
		dom = NULL;
	uint32_t bs = c->block_size;
	uint64_t per = c->max_xfer / bs, total = io->num_blocks;
	/* every I/O queue has the same limits: the first one's */
	uint32_t maxd = c->ioq && c->ioq[0].rq ? max_desc(&c->ioq[0]) : 1;
	for (uint64_t rel = 0; rel < total; rel += per) {
		uint64_t n = FERRY_MIN(per, total - rel);
		struct ferry_rdma_seg seg[FERRY_NVMF_RDMA_SGL_MAX];
		uint32_t nseg = maxd;
		int rc = map_range(c, dom, io->mem.domain_ctx, io->mem.iov, io->mem.iovcnt,
				   (size_t)(rel * bs), (size_t)(n * bs),
				   io->type == FERRY_BDEV_IO_READ, seg, &nseg);
		/* A probe only: the submissions map (and hold) again, found in the cache. */
		if (!rc)
			(void)ferry_rdma_map_release(c->rc->map, seg, nseg);
		if (rc == -ENOBUFS || rc == -ENOMEM) {
			/* more segments than a command carries: staged, nothing wrong */
			c->st.rdma_staged_ios++;
			return 0;
		}
		if (rc) {
			c->st.rdma_staged_ios++;
			c->st.rdma_untranslatable++;
			if (log_ratelimit(&rl, NULL))
				FERRY_WARN(
					NVMF_COMP,
					"'%s': %s of %llu blocks at LBA %llu is staged: its memory "
					"is not reachable by the NIC (%s: %s)",
					c->name, io->type == FERRY_BDEV_IO_READ ? "read" : "write",
					(unsigned long long)io->num_blocks,
					(unsigned long long)io->offset_blocks, ferry_strerror(rc),
					ferry_last_error());
			return 0;
		}
	}
	c->st.rdma_direct_ios++;
	return 1;
}
