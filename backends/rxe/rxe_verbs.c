/*
 * The rxe backend's verbs part (ferry/hal/rdma.h): completion queues (with a non-blocking
 * completion channel for cq_wait()), receive and send work requests with their slot
 * bookkeeping (exact queue-full checks, every send signaled underneath), and the mapping of
 * work completions to the HAL's statuses. See rxe_internal.h for the design notes.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include "rxe_internal.h"

#define NO_SLOT UINT32_MAX

/* ---- slots --------------------------------------------------------------------------------- */

static struct rxe_slot *slots_new(uint32_t n, uint32_t *head)
{
	struct rxe_slot *s = calloc(n, sizeof(*s));
	if (!s)
		return NULL;
	for (uint32_t i = 0; i < n; i++)
		s[i].next_free = i + 1 < n ? i + 1 : NO_SLOT;
	*head = 0;
	return s;
}

int rxe_qp_slots_init(struct ferry_hal_rdma_qp *qp)
{
	qp->sslots = slots_new(qp->max_send_wr, &qp->sfree);
	qp->rslots = slots_new(qp->max_recv_wr, &qp->rfree);
	if (!qp->sslots || !qp->rslots) {
		rxe_qp_slots_free(qp);
		return -ENOMEM;
	}
	return 0;
}

void rxe_qp_slots_free(struct ferry_hal_rdma_qp *qp)
{
	free(qp->sslots);
	free(qp->rslots);
	qp->sslots = qp->rslots = NULL;
}

static uint32_t slot_take(struct rxe_slot *s, uint32_t *head)
{
	uint32_t i = *head;
	if (i == NO_SLOT)
		return NO_SLOT;
	*head = s[i].next_free;
	s[i].used = 1;
	return i;
}

static void slot_put(struct rxe_slot *s, uint32_t *head, uint32_t i)
{
	s[i].used = 0;
	s[i].pending = 0;
	s[i].next_free = *head;
	*head = i;
}

/* ---- CQ bookkeeping ------------------------------------------------------------------------ */

void rxe_cq_add_qp(struct ferry_hal_rdma_cq *cq, struct ferry_hal_rdma_qp *qp)
{
	pthread_mutex_lock(&cq->lock);
	qp->next = cq->qps;
	cq->qps = qp;
	cq->need += (uint64_t)qp->max_send_wr + qp->max_recv_wr;
	uint64_t need = cq->need,
		 max = cq->dev->attr.max_cqe > 0 ? (uint64_t)cq->dev->attr.max_cqe : 0;
	if (need > max)
		need = max;
	if (need > (uint64_t)cq->cq->cqe && ibv_resize_cq(cq->cq, (int)need))
		RXE_WARN("cq: growing to %llu entries for its QPs failed: it may overflow",
			 (unsigned long long)need);
	pthread_mutex_unlock(&cq->lock);
}

static struct ferry_hal_rdma_qp *qp_by_num(struct ferry_hal_rdma_cq *cq, uint32_t qpn)
{
	for (struct ferry_hal_rdma_qp *q = cq->qps; q; q = q->next)
		if (q->qp && q->qp_num == qpn)
			return q;
	return NULL;
}

void rxe_cq_forget_qp(struct ferry_hal_rdma_cq *cq, struct ferry_hal_rdma_qp *qp)
{
	pthread_mutex_lock(&cq->lock);
	for (struct ferry_hal_rdma_qp **pp = &cq->qps; *pp; pp = &(*pp)->next) {
		if (*pp == qp) {
			*pp = qp->next;
			cq->need -= (uint64_t)qp->max_send_wr + qp->max_recv_wr;
			break;
		}
	}
	pthread_mutex_unlock(&cq->lock);
	uint32_t j = 0;
	for (uint32_t i = 0; i < cq->nsynth; i++)
		if (cq->synth[i].qp != qp)
			cq->synth[j++] = cq->synth[i];
	cq->nsynth = j;
	if (qp->qp) {
		j = 0;
		for (uint32_t i = 0; i < cq->nbacklog; i++)
			if (cq->backlog[i].qp_num != qp->qp_num)
				cq->backlog[j++] = cq->backlog[i];
		cq->nbacklog = j;
	}
}

static int backlog_push(struct ferry_hal_rdma_cq *cq, const struct ibv_wc *wc)
{
	if (cq->nbacklog == cq->capbacklog) {
		uint32_t cap = cq->capbacklog ? cq->capbacklog * 2 : 64;
		struct ibv_wc *b = realloc(cq->backlog, cap * sizeof(*b));
		if (!b)
			return -ENOMEM;
		cq->backlog = b;
		cq->capbacklog = cap;
	}
	cq->backlog[cq->nbacklog++] = *wc;
	return 0;
}

void rxe_cq_drain(struct ferry_hal_rdma_cq *cq, int have_drop, uint32_t drop_qpn)
{
	struct ibv_wc wc[16];
	int n;
	while ((n = ibv_poll_cq(cq->cq, 16, wc)) > 0) {
		for (int i = 0; i < n; i++) {
			if (have_drop && wc[i].qp_num == drop_qpn)
				continue;
			if (backlog_push(cq, &wc[i]))
				RXE_ERR("cq: out of memory keeping a completion (qp %u): lost",
					wc[i].qp_num);
		}
	}
}

static void synth_push(struct ferry_hal_rdma_cq *cq, struct ferry_hal_rdma_qp *qp,
		       const struct ferry_hal_rdma_wc *wc)
{
	if (cq->nsynth == cq->capsynth) {
		uint32_t cap = cq->capsynth ? cq->capsynth * 2 : 16;
		struct rxe_synth *s = realloc(cq->synth, cap * sizeof(*s));
		if (!s) {
			RXE_ERR("cq: out of memory keeping a flushed receive: lost");
			return;
		}
		cq->synth = s;
		cq->capsynth = cap;
	}
	cq->synth[cq->nsynth++] = (struct rxe_synth){.qp = qp, .wc = *wc};
}

/* ---- receives posted before the verbs QP exists -------------------------------------------- */

int rxe_qp_post_pending(struct ferry_hal_rdma_qp *qp)
{
	for (uint32_t i = 0; i < qp->max_recv_wr && qp->npending; i++) {
		struct rxe_slot *s = &qp->rslots[i];
		if (!s->used || !s->pending)
			continue;
		struct ibv_recv_wr wr = {.wr_id = RXE_WRID_RECV | i,
					 .sg_list = s->pend_sge,
					 .num_sge = (int)s->pend_nsge};
		struct ibv_recv_wr *bad = NULL;
		int rc = ibv_post_recv(qp->qp, &wr, &bad);
		if (rc) {
			RXE_ERR("qp %u: posting a waiting receive: %s", qp->qp_num, strerror(rc));
			return -rc;
		}
		s->pending = 0;
		qp->npending--;
	}
	return 0;
}

void rxe_qp_flush_pending(struct ferry_hal_rdma_qp *qp)
{
	for (uint32_t i = 0; i < qp->max_recv_wr && qp->npending; i++) {
		struct rxe_slot *s = &qp->rslots[i];
		if (!s->used || !s->pending)
			continue;
		struct ferry_hal_rdma_wc wc = {.wr_id = s->wr_id,
					       .qp_ctx = qp->ctx,
					       .status = -ECANCELED,
					       .opcode = FERRY_HAL_RDMA_OP_RECV};
		synth_push(qp->cq, qp, &wc);
		rxe_stat_add(qp->dev, RXE_ST_WC_ERRORS, 1);
		slot_put(qp->rslots, &qp->rfree, i);
		qp->nrecv--;
		qp->npending--;
	}
}

/* ---- CQs ----------------------------------------------------------------------------------- */

int rxe_cq_create(struct ferry_device *fdev, uint32_t depth, struct ferry_hal_rdma_cq **out)
{
	struct rxe_dev *d = rxe_dev_of(fdev);
	if (!d) {
		RXE_ERR("cq_create: not an rxe device");
		return -ENODEV;
	}
	uint32_t max = d->attr.max_cqe > 0 ? (uint32_t)d->attr.max_cqe : 0;
	if (!out || !depth || depth > max) {
		RXE_ERR("cq_create: %s", !out ? "no output pointer" : "depth not in 1..max_cqe");
		return -EINVAL;
	}
	struct ferry_hal_rdma_cq *cq = calloc(1, sizeof(*cq));
	if (!cq) {
		RXE_ERR("cq_create: out of memory");
		return -ENOMEM;
	}
	cq->dev = d;
	cq->depth = depth;
	pthread_mutex_init(&cq->lock, NULL);
	int rc;
	cq->ch = ibv_create_comp_channel(d->ctx);
	if (!cq->ch) {
		rc = errno ? -errno : -ENOMEM;
		RXE_ERR("cq_create: ibv_create_comp_channel: %s", strerror(-rc));
		goto fail;
	}
	rc = rxe_set_nonblock(cq->ch->fd);
	if (rc) {
		RXE_ERR("cq_create: completion channel non-blocking: %s", strerror(-rc));
		goto fail;
	}
	cq->cq = ibv_create_cq(d->ctx, (int)depth, cq, cq->ch, 0);
	if (!cq->cq) {
		rc = errno ? -errno : -ENOMEM;
		RXE_ERR("cq_create: ibv_create_cq(%u): %s", depth, strerror(-rc));
		goto fail;
	}
	rxe_obj_get(d);
	*out = cq;
	return 0;
fail:
	if (cq->ch)
		ibv_destroy_comp_channel(cq->ch);
	pthread_mutex_destroy(&cq->lock);
	free(cq);
	return rc;
}

void rxe_cq_destroy(struct ferry_hal_rdma_cq *cq)
{
	if (!cq)
		return;
	if (cq->qps) {
		RXE_ERR("cq_destroy: QPs still on the CQ: destroy them first (CQ kept)");
		return;
	}
	struct ibv_cq *evcq;
	void *evctx;
	while (ibv_get_cq_event(cq->ch, &evcq, &evctx) == 0)
		ibv_ack_cq_events(evcq, 1);
	if (ibv_destroy_cq(cq->cq))
		RXE_ERR("cq_destroy: ibv_destroy_cq: %s", strerror(errno));
	ibv_destroy_comp_channel(cq->ch);
	pthread_mutex_destroy(&cq->lock);
	rxe_obj_put(cq->dev);
	free(cq->backlog);
	free(cq->synth);
	free(cq);
}

static int wc_errno(enum ibv_wc_status s)
{
	switch (s) {
	case IBV_WC_SUCCESS:
		return 0;
	case IBV_WC_REM_ACCESS_ERR:
	case IBV_WC_REM_INV_REQ_ERR:
		return -EREMOTEIO;
	case IBV_WC_RNR_RETRY_EXC_ERR:
		return -ENOBUFS;
	case IBV_WC_LOC_LEN_ERR:
		return -EMSGSIZE;
	case IBV_WC_WR_FLUSH_ERR:
		return -ECANCELED;
	case IBV_WC_RETRY_EXC_ERR:
		return -ETIMEDOUT;
	default:
		return -EIO;
	}
}

/* Converts one CQE; 1 if it is reported (in *out), 0 if consumed silently. */
static int wc_convert(struct ferry_hal_rdma_cq *cq, const struct ibv_wc *w,
		      struct ferry_hal_rdma_wc *out)
{
	struct ferry_hal_rdma_qp *qp = qp_by_num(cq, w->qp_num);
	if (!qp)
		return 0; /* a destroyed QP's (should not come: drained at destroy) */
	struct rxe_dev *d = qp->dev;
	int recv = (w->wr_id & RXE_WRID_RECV) != 0;
	uint32_t idx = (uint32_t)(w->wr_id & ~RXE_WRID_RECV);
	struct rxe_slot *slots = recv ? qp->rslots : qp->sslots;
	uint32_t nslots = recv ? qp->max_recv_wr : qp->max_send_wr;
	if (idx >= nslots || !slots[idx].used) {
		RXE_ERR("qp %u: completion of unknown work request %#llx: ignored", qp->qp_num,
			(unsigned long long)w->wr_id);
		return 0;
	}
	struct rxe_slot *s = &slots[idx];
	int st = wc_errno(w->status);
	*out = (struct ferry_hal_rdma_wc){
		.wr_id = s->wr_id,
		.qp_ctx = qp->ctx,
		.status = st,
		.opcode = recv ? FERRY_HAL_RDMA_OP_RECV : s->opcode,
		.byte_len = recv && !st ? w->byte_len : 0,
		.vendor_err = st ? w->vendor_err : 0,
	};
	int report = 1;
	if (st) {
		rxe_stat_add(d, RXE_ST_WC_ERRORS, 1);
		if (st != -ECANCELED)
			RXE_ERR("qp %u: wr %#llx: %s (vendor_err %u)", qp->qp_num,
				(unsigned long long)s->wr_id, ibv_wc_status_str(w->status),
				w->vendor_err);
		rxe_qp_fail(qp, -ECONNRESET, "a work request completed in error");
	} else if (recv) {
		if (!qp->active && qp->phase == RXE_QP_CONN) {
			/* rdma_accept() took the QP to RTS; the ESTABLISHED event (the active side's
			 * RTU) may come after its first message. A message received proves the
			 * connection is up: the QP is established now, so the answer to that
			 * message may be posted at once (rdma.h: accepted QPs). */
			qp->phase = RXE_QP_EST;
			qp->state = 0;
			qp->was_established = 1;
			qp->deadline_ns = 0;
		}
		rxe_stat_add(d, RXE_ST_RECVS, 1);
		rxe_stat_add(d, RXE_ST_RECV_BYTES, w->byte_len);
	} else {
		switch (s->opcode) {
		case FERRY_HAL_RDMA_OP_SEND:
			rxe_stat_add(d, RXE_ST_SENDS, 1);
			rxe_stat_add(d, RXE_ST_SEND_BYTES, s->bytes);
			break;
		case FERRY_HAL_RDMA_OP_WRITE:
			rxe_stat_add(d, RXE_ST_WRITES, 1);
			rxe_stat_add(d, RXE_ST_WRITE_BYTES, s->bytes);
			break;
		default:
			rxe_stat_add(d, RXE_ST_READS, 1);
			rxe_stat_add(d, RXE_ST_READ_BYTES, s->bytes);
			break;
		}
		report = (s->flags & FERRY_HAL_RDMA_WR_F_SIGNALED) != 0;
	}
	if (recv) {
		slot_put(qp->rslots, &qp->rfree, idx);
		qp->nrecv--;
	} else {
		slot_put(qp->sslots, &qp->sfree, idx);
		qp->nsend--;
	}
	return report;
}

static void cq_drive_qps(struct ferry_hal_rdma_cq *cq)
{
	pthread_mutex_lock(&cq->lock);
	for (struct ferry_hal_rdma_qp *q = cq->qps; q; q = q->next)
		rxe_qp_drive(q);
	pthread_mutex_unlock(&cq->lock);
}

int rxe_cq_poll(struct ferry_hal_rdma_cq *cq, struct ferry_hal_rdma_wc *wc, uint32_t max)
{
	if (!cq || (!wc && max)) {
		RXE_ERR("cq_poll: %s", !cq ? "no CQ" : "no completion array");
		return -EINVAL;
	}
	uint64_t now = rxe_now_ns();
	if (!cq->last_drive_ns || now - cq->last_drive_ns >= RXE_DRIVE_NS) {
		cq_drive_qps(cq);
		cq->last_drive_ns = now;
	}
	uint32_t got = 0;
	while (got < max && cq->nsynth) {
		wc[got++] = cq->synth[0].wc;
		memmove(cq->synth, cq->synth + 1, (cq->nsynth - 1) * sizeof(*cq->synth));
		cq->nsynth--;
	}
	uint32_t bi = 0;
	while (got < max && bi < cq->nbacklog)
		got += (uint32_t)wc_convert(cq, &cq->backlog[bi++], &wc[got]);
	if (bi) {
		memmove(cq->backlog, cq->backlog + bi, (cq->nbacklog - bi) * sizeof(*cq->backlog));
		cq->nbacklog -= bi;
	}
	while (got < max) {
		struct ibv_wc w[16];
		uint32_t want = max - got < 16 ? max - got : 16;
		int n = ibv_poll_cq(cq->cq, (int)want, w);
		if (n < 0) {
			RXE_ERR("cq_poll: ibv_poll_cq failed (%d)", n);
			return got ? (int)got : -EIO;
		}
		if (n == 0)
			break;
		for (int i = 0; i < n; i++) {
			if (got < max)
				got += (uint32_t)wc_convert(cq, &w[i], &wc[got]);
			else if (backlog_push(cq, &w[i])) /* unsignaled ones made room short */
				RXE_ERR("cq_poll: out of memory keeping a completion: lost");
		}
	}
	return (int)got;
}

int rxe_cq_wait(struct ferry_hal_rdma_cq *cq, uint32_t timeout_us)
{
	if (!cq) {
		RXE_ERR("cq_wait: no CQ");
		return -EINVAL;
	}
	if (cq->nsynth || cq->nbacklog)
		return 0;
	if (!cq->armed) {
		if (ibv_req_notify_cq(cq->cq, 0)) {
			RXE_ERR("cq_wait: ibv_req_notify_cq failed");
			return -EIO;
		}
		cq->armed = 1;
	}
	/* Completions that came before the arming raise no event: look once more. */
	rxe_cq_drain(cq, 0, 0);
	if (cq->nbacklog)
		return 0;
	uint32_t nfd = 1;
	uint64_t now = rxe_now_ns(), want = now + (uint64_t)timeout_us * 1000u, deadline = want;
	pthread_mutex_lock(&cq->lock);
	for (struct ferry_hal_rdma_qp *q = cq->qps; q; q = q->next) {
		if (q->ch)
			nfd++;
		if (q->phase < RXE_QP_EST && q->deadline_ns && q->deadline_ns < deadline)
			deadline = q->deadline_ns > now ? q->deadline_ns : now;
	}
	struct pollfd *pf = calloc(nfd, sizeof(*pf));
	if (!pf) {
		pthread_mutex_unlock(&cq->lock);
		RXE_ERR("cq_wait: out of memory");
		return -ENOMEM;
	}
	pf[0] = (struct pollfd){.fd = cq->ch->fd, .events = POLLIN};
	nfd = 1;
	for (struct ferry_hal_rdma_qp *q = cq->qps; q; q = q->next)
		if (q->ch)
			pf[nfd++] = (struct pollfd){.fd = q->ch->fd, .events = POLLIN};
	pthread_mutex_unlock(&cq->lock);
	int rc;
	for (;;) {
		now = rxe_now_ns();
		uint64_t left = deadline > now ? deadline - now : 0;
		int ms = (int)((left + 999999u) / 1000000u);
		rc = poll(pf, nfd, ms);
		if (rc < 0 && errno == EINTR)
			continue;
		break;
	}
	int out = -ETIMEDOUT;
	if (rc < 0) {
		RXE_ERR("cq_wait: poll: %s", strerror(errno));
		out = -EIO;
	} else if (rc > 0) {
		out = 0;
		for (uint32_t i = 1; i < nfd; i++)
			if (pf[i].revents)
				cq->last_drive_ns = 0; /* a CM event: the next cq_poll takes it */
		if (pf[0].revents & POLLIN) {
			struct ibv_cq *evcq;
			void *evctx;
			while (ibv_get_cq_event(cq->ch, &evcq, &evctx) == 0) {
				ibv_ack_cq_events(evcq, 1);
				cq->armed = 0;
			}
		}
	} else if (deadline < want) {
		out = 0; /* a connection deadline passed: cq_poll / qp_state report it */
		cq->last_drive_ns = 0;
	}
	free(pf);
	return out;
}

/* ---- work requests ------------------------------------------------------------------------- */

static int qp_usable(struct ferry_hal_rdma_qp *qp, const char *what, int need_est)
{
	if (qp->phase == RXE_QP_FAILED) {
		RXE_ERR("%s: qp %u is in error (%d)", what, qp->qp_num, qp->state);
		return -ECONNRESET;
	}
	if (need_est && qp->phase != RXE_QP_EST) {
		RXE_ERR("%s: qp %u is not connected yet", what, qp->qp_num);
		return -ENOTCONN;
	}
	return 0;
}

static int sge_convert(const char *what, const struct ferry_hal_rdma_sge *in, uint32_t n,
		       uint32_t max, struct ibv_sge *out, uint64_t *total)
{
	if (n > max || (n && !in)) {
		RXE_ERR("%s: %u SGEs (the QP takes %u)", what, n, max);
		return -EINVAL;
	}
	uint64_t t = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (in[i].addr + in[i].len < in[i].addr) {
			RXE_ERR("%s: SGE %u wraps the address space", what, i);
			return -EINVAL;
		}
		out[i] = (struct ibv_sge){.addr = in[i].addr,
					  .length = in[i].len,
					  .lkey = in[i].lkey};
		t += in[i].len;
	}
	if (t > UINT32_MAX) {
		RXE_ERR("%s: %llu bytes in one work request (at most 4 GiB - 1)", what,
			(unsigned long long)t);
		return -EINVAL;
	}
	*total = t;
	return 0;
}

int rxe_post_recv(struct ferry_hal_rdma_qp *qp, uint64_t wr_id,
		  const struct ferry_hal_rdma_sge *sge, uint32_t nsge)
{
	if (!qp) {
		RXE_ERR("post_recv: no QP");
		return -EINVAL;
	}
	int rc = qp_usable(qp, "post_recv", 0);
	if (rc)
		return rc;
	struct ibv_sge isge[RXE_SGE_MAX];
	uint64_t total;
	rc = sge_convert("post_recv", sge, nsge, qp->max_recv_sge, isge, &total);
	if (rc)
		return rc;
	if (qp->nrecv >= qp->max_recv_wr)
		return -ENOSPC;
	uint32_t i = slot_take(qp->rslots, &qp->rfree);
	if (i == NO_SLOT)
		return -ENOSPC;
	struct rxe_slot *s = &qp->rslots[i];
	s->wr_id = wr_id;
	s->opcode = FERRY_HAL_RDMA_OP_RECV;
	s->flags = 0;
	s->bytes = (uint32_t)total;
	qp->nrecv++;
	if (!qp->qp) { /* connecting: posted when the QP is created */
		memcpy(s->pend_sge, isge, nsge * sizeof(*isge));
		s->pend_nsge = nsge;
		s->pending = 1;
		qp->npending++;
		return 0;
	}
	struct ibv_recv_wr wr = {.wr_id = RXE_WRID_RECV | i, .sg_list = isge, .num_sge = (int)nsge};
	struct ibv_recv_wr *bad = NULL;
	rc = ibv_post_recv(qp->qp, &wr, &bad);
	if (rc) {
		slot_put(qp->rslots, &qp->rfree, i);
		qp->nrecv--;
		RXE_ERR("post_recv: qp %u: ibv_post_recv: %s", qp->qp_num, strerror(rc));
		return rc == ENOMEM ? -ENOSPC : rc == EINVAL ? -EINVAL : -EIO;
	}
	return 0;
}

#define RXE_WR_FLAGS                                                                               \
	(FERRY_HAL_RDMA_WR_F_SIGNALED | FERRY_HAL_RDMA_WR_F_INLINE | FERRY_HAL_RDMA_WR_F_FENCE)

static int post_one(struct ferry_hal_rdma_qp *qp, const struct ferry_hal_rdma_wr *w)
{
	struct ibv_sge isge[RXE_SGE_MAX];
	uint64_t total;
	if (w->opcode > FERRY_HAL_RDMA_OP_READ) {
		RXE_ERR("post_send: opcode %u is not SEND / WRITE / READ", w->opcode);
		return -EINVAL;
	}
	if (w->flags & ~RXE_WR_FLAGS) {
		RXE_ERR("post_send: unknown flags 0x%x", w->flags & ~RXE_WR_FLAGS);
		return -EINVAL;
	}
	int rc = sge_convert("post_send", w->sge, w->nsge, qp->max_send_sge, isge, &total);
	if (rc)
		return rc;
	int inl = (w->flags & FERRY_HAL_RDMA_WR_F_INLINE) != 0;
	if (inl && w->opcode == FERRY_HAL_RDMA_OP_READ) {
		RXE_ERR("post_send: an RDMA READ cannot be inline");
		return -EINVAL;
	}
	if (inl && total > qp->max_inline) {
		RXE_ERR("post_send: %llu inline bytes, the QP takes %u", (unsigned long long)total,
			qp->max_inline);
		return -EINVAL;
	}
	if (qp->nsend >= qp->max_send_wr)
		return -ENOSPC;
	uint32_t i = slot_take(qp->sslots, &qp->sfree);
	if (i == NO_SLOT)
		return -ENOSPC;
	struct rxe_slot *s = &qp->sslots[i];
	s->wr_id = w->wr_id;
	s->opcode = w->opcode;
	s->flags = w->flags;
	s->bytes = (uint32_t)total;
	struct ibv_send_wr wr = {
		.wr_id = i,
		.sg_list = w->nsge ? isge : NULL,
		.num_sge = (int)w->nsge,
		.opcode = w->opcode == FERRY_HAL_RDMA_OP_SEND    ? IBV_WR_SEND
			  : w->opcode == FERRY_HAL_RDMA_OP_WRITE ? IBV_WR_RDMA_WRITE
								 : IBV_WR_RDMA_READ,
		.send_flags = IBV_SEND_SIGNALED | (inl ? IBV_SEND_INLINE : 0) |
			      ((w->flags & FERRY_HAL_RDMA_WR_F_FENCE) ? IBV_SEND_FENCE : 0),
	};
	if (w->opcode != FERRY_HAL_RDMA_OP_SEND) {
		wr.wr.rdma.remote_addr = w->remote_addr;
		wr.wr.rdma.rkey = w->rkey;
	}
	struct ibv_send_wr *bad = NULL;
	rc = ibv_post_send(qp->qp, &wr, &bad);
	if (rc) {
		slot_put(qp->sslots, &qp->sfree, i);
		RXE_ERR("post_send: qp %u: ibv_post_send: %s", qp->qp_num, strerror(rc));
		return rc == ENOMEM ? -ENOSPC : rc == EINVAL ? -EINVAL : -EIO;
	}
	qp->nsend++;
	return 0;
}

int rxe_post_send(struct ferry_hal_rdma_qp *qp, const struct ferry_hal_rdma_wr *wr,
		  const struct ferry_hal_rdma_wr **bad)
{
	if (bad)
		*bad = wr;
	if (!qp || !wr) {
		RXE_ERR("post_send: %s", !qp ? "no QP" : "no work request");
		return -EINVAL;
	}
	int rc = qp_usable(qp, "post_send", 1);
	if (rc)
		return rc;
	for (const struct ferry_hal_rdma_wr *w = wr; w; w = w->next) {
		rc = post_one(qp, w);
		if (rc) {
			if (bad)
				*bad = w;
			return rc;
		}
	}
	if (bad)
		*bad = NULL;
	return 0;
}
