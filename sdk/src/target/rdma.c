/*
 * The NVMe-oF/RDMA target transport "rdma" (ferry/rdma_transport.h): listeners and the
 * connection manager's requests (private data checked by the rdma component's codec), one
 * reliable-connected QP per queue served by a poll group (the instance's own polling when
 * none was created), command capsules SENT into receive buffers the connection posted, data
 * moved by RDMA READ (writes) and RDMA WRITE (reads) to and from per-group buffers registered
 * once, responses by SEND. Commands go through the NVMe-oF layer (nvmf.c), as for "tcp".
 * Registered as a built-in plugin after "tcp".
 *
 * The fast path allocates nothing and takes no lock: requests, receive and response buffers
 * and the work-request scratch arrays belong to the connection (allocated when it is
 * accepted), data buffers to the group. Send-queue room is counted (sq_free): a request that
 * finds too little, or no RDMA READ slot (the QP's initiator depth), waits in the
 * connection's FIFO and is posted when completions give room back. Unsignaled RDMA WRITEs
 * are accounted with the signaled SEND that follows them (RC order).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ferry/accel.h>
#include <ferry/hal/hal.h>
#include <ferry/hal/rdma.h>
#include <ferry/nvme.h>
#include <ferry/rdma_transport.h>
#include <ferry/transport.h>
#include <ferry/module/rdma.h>
#include <ferry/module/transport.h>
#include "core_internal.h"
#include "target_internal.h"
#include "nvmf_internal.h"

#define COMP "rdma"
#define RDMA_CHUNK 8192u     /* data buffer size */
#define RDMA_SQE 64u         /* command capsule header */
#define RDMA_ADMIN_ICD 4096u /* in-capsule data of the admin queue */
#define RDMA_ADMIN_DEPTH 128u
#define RDMA_MAX_PG 64u
#define RDMA_MAX_LISTEN 32u
#define RDMA_WC 64u
#define RDMA_IDLE_US 200u
#define RDMA_BUDGET 64u
#define RDMA_MAX_RD 16u  /* RDMA READs a QP has outstanding as initiator, at most */
#define RDMA_MAX_SGE 16u /* SGEs of one RDMA READ / WRITE, at most */

enum {
	WR_RECV = 1,
	WR_READ = 2,
	WR_WRITE = 3,
	WR_SEND = 4
};
#define WRID(kind, idx) (((uint64_t)(kind) << 32) | (uint32_t)(idx))

enum req_state {
	REQ_FREE = 0,
	REQ_WAIT_BUF, /* waiting for data buffers */
	REQ_READ,     /* RDMA READs of its write data (posted or waiting for room) */
	REQ_EXEC,     /* in the NVMe-oF layer / controller core */
	REQ_WAIT_TX,  /* the response waits for send-queue room */
	REQ_TX,       /* WRITEs + SEND posted, the SEND's completion expected */
};

struct rdma_conn;
struct rdma_pg;

struct rdma_req {
	struct rdma_conn *conn;
	uint32_t idx;
	uint8_t state;
	uint8_t dir;      /* 0 none, 1 host to controller, 2 controller to host */
	uint8_t queued;   /* in the connection's send-queue FIFO */
	uint8_t waiting;  /* in the connection's buffer wait list */
	uint8_t owns_cid; /* its cid's bit in conn->cids is its own */
	uint16_t status;  /* a status decided before execution (0: none) */
	uint16_t cid;
	int32_t recv; /* receive slot whose buffer holds its data (ICD), -1: none */
	struct ferry_nvme_sqe sqe;
	struct ferry_nvmf_rdma_sgl sgl;
	uint32_t len;      /* transfer length */
	uint32_t nseg;     /* data buffers held */
	struct iovec *iov; /* [segs] */
	struct ferry_mem mem;
	uint32_t rd_next;       /* next byte to RDMA READ */
	uint32_t rd_out;        /* its RDMA READs outstanding */
	uint32_t tx_wrs;        /* work requests of its response (WRITEs + SEND) */
	struct rdma_req *next;  /* free list, buffer wait list */
	struct rdma_req *qnext; /* send-queue FIFO */
};

struct rdma_listener {
	struct ferry_hal_rdma_listener *l;
	char want[64];
	char bound[64];
	uint16_t portid;
};

struct rdma_conn {
	struct rdma_tr *tr;
	struct rdma_pg *pg;
	struct ferry_hal_rdma_req *cm_req; /* until accepted on the group's thread */
	struct ferry_hal_rdma_qp *qp_hw;
	struct nvmf_qpair qp;
	uint16_t cm_qid, hsqsize, hrqsize;
	uint32_t depth; /* receive buffers (hsqsize + 1) */
	/* requests: twice the depth (a response's SEND completes after the host may already have
	 * sent its next command) */
	uint32_t nreqs;
	uint32_t icd; /* in-capsule data bytes of this queue */
	uint32_t rsz; /* receive buffer bytes */
	uint32_t sq;  /* send work requests of the QP */
	uint32_t sq_free;
	uint32_t ird;      /* RDMA READs outstanding at most */
	uint32_t rd_out;   /* RDMA READs outstanding */
	uint32_t cq_share; /* CQ entries it takes */
	uint8_t *mem;      /* receive buffers, then responses */
	struct ferry_hal_rdma_mr *mr;
	uint32_t lkey;
	struct rdma_req *reqs;
	struct rdma_req *free_reqs;
	struct rdma_req *q_head, *q_tail;       /* send-queue FIFO */
	struct rdma_req *wait_head, *wait_tail; /* REQ_WAIT_BUF */
	struct ferry_hal_rdma_wr *wr;           /* scratch: [maxwr] */
	struct ferry_hal_rdma_sge *sge;         /* scratch: [maxwr] */
	uint32_t maxwr;
	uint32_t max_sge; /* SGEs of one RDMA READ / WRITE */
	uint8_t *cids;    /* bitmap of command ids in use */
	uint32_t busy;    /* requests not free */
	uint32_t held;    /* data buffers held */
	int closed, fini;
	int up;               /* qp_state() said established: sends may be posted */
	uint32_t tx_busy;     /* requests whose response is queued or posted */
	int close_after_tx;   /* the layer closed it: once the responses left (a Disconnect's) */
	uint64_t close_by_ns; /* ... or by then */
	struct ferry_rdma_conn_stats st;
	struct rdma_conn *next, *prev;
};

struct rdma_pg {
	struct pg_core core;
	struct rdma_tr *tr;
	struct ferry_hal_rdma_cq *cq;
	uint32_t cq_depth, cq_used;
	struct rdma_conn *conns;
	uint8_t *buf_mem;
	void **buf_free;
	uint32_t nfree, nbufs;
	uint32_t lkey;
	int idle;
	int chan_tried;
	struct ferry_accel_chan *chan;
	struct ferry_hal_rdma_wc wc[RDMA_WC];
};

struct rdma_tr {
	struct ferry_transport *t;
	struct ferry_device *dev;
	int own_dev;
	const struct ferry_hal_rdma_ops *rd;
	struct ferry_hal_rdma_info info;
	struct ferry_rdma_map *map;
	struct nvmf_tgt *tgt;
	uint32_t depth, ioq, icd, max_io, max_desc, nbufs, segs, accel, idle_us, max_conns;
	uint32_t conn_bufs;
	pthread_mutex_t lock; /* lists of connections, groups and listeners; totals */
	struct rdma_pg pg0;
	struct rdma_pg *pgs[RDMA_MAX_PG];
	uint32_t npgs, rr;
	struct rdma_listener *lst[RDMA_MAX_LISTEN];
	uint32_t nlst;
	uint64_t requests, accepted, rejected, refused, closed, qp_errors;
	uint32_t conns; /* connections counted from the request on (max_connections) */
	int stopping;   /* destroy: new requests are rejected */
};

static const struct ferry_transport_ops rdma_transport_ops;
static struct log_ratelimit rdma_rl;

#define RDMA_HOST_ERR(c, fmt, ...)                                                                 \
	do {                                                                                       \
		ferry_set_last_error(COMP, "%s: " fmt, (c)->st.peer, __VA_ARGS__);                 \
		if (log_ratelimit(&rdma_rl, NULL))                                                 \
			ferry_log(FERRY_LOG_WARN, COMP, "%s: " fmt, (c)->st.peer, __VA_ARGS__);    \
	} while (0)

static void conn_close(struct rdma_conn *c, const char *why);
static void conn_progress(struct rdma_conn *c);
static void req_exec(struct rdma_req *r);

/* ---- buffers ------------------------------------------------------------------------------ */

static int pool_init(struct rdma_tr *tr, struct rdma_pg *pg, uint32_t n)
{
	size_t bytes = (size_t)n * RDMA_CHUNK;
	pg->buf_mem = aligned_alloc(4096, bytes);
	pg->buf_free = malloc((size_t)n * sizeof(void *));
	if (!pg->buf_mem || !pg->buf_free)
		goto err;
	int rc = ferry_rdma_map_register(tr->map, pg->buf_mem, bytes,
					 FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE);
	if (rc) {
		FERRY_ERR(COMP, "poll group: registering %zu bytes of data buffers failed: %s",
			  bytes, ferry_strerror(rc));
		free(pg->buf_mem);
		free(pg->buf_free);
		pg->buf_mem = NULL;
		pg->buf_free = NULL;
		return rc;
	}
	/* The pool is one registered region: one segment gives its local key. */
	struct iovec iov = {pg->buf_mem, bytes};
	struct ferry_mem m = {.iov = &iov, .iovcnt = 1};
	struct ferry_rdma_seg seg;
	uint32_t ns = 1;
	rc = ferry_rdma_map_mem(tr->map, &m, NULL, FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE, &seg, &ns);
	if (rc || ns != 1 || seg.addr != (uint64_t)(uintptr_t)pg->buf_mem) {
		FERRY_ERR(COMP, "poll group: the data buffers are not one registered region (%s)",
			  ferry_strerror(rc ? rc : -EFAULT));
		free(pg->buf_mem);
		free(pg->buf_free);
		pg->buf_mem = NULL;
		pg->buf_free = NULL;
		return rc ? rc : -EFAULT;
	}
	pg->lkey = seg.lkey;
	for (uint32_t i = 0; i < n; i++)
		pg->buf_free[i] = pg->buf_mem + (size_t)(n - 1 - i) * RDMA_CHUNK;
	pg->nfree = pg->nbufs = n;
	return 0;
err:
	free(pg->buf_mem);
	free(pg->buf_free);
	pg->buf_mem = NULL;
	pg->buf_free = NULL;
	return -ENOMEM;
}

/* Buffers for @p r's transfer; -ENOMEM when the pool is short or the connection holds its
 * share already (the request waits). */
static int req_bufs(struct rdma_req *r)
{
	struct rdma_conn *c = r->conn;
	struct rdma_pg *pg = c->pg;
	uint32_t n = (r->len + RDMA_CHUNK - 1) / RDMA_CHUNK;
	if (n > pg->nfree || (c->held && c->held + n > c->tr->conn_bufs))
		return -ENOMEM;
	c->held += n;
	uint32_t left = r->len;
	for (uint32_t i = 0; i < n; i++) {
		r->iov[i].iov_base = pg->buf_free[--pg->nfree];
		r->iov[i].iov_len = FERRY_MIN(left, RDMA_CHUNK);
		left -= (uint32_t)r->iov[i].iov_len;
	}
	r->nseg = n;
	return 0;
}

static void repost_recv(struct rdma_conn *c, uint32_t slot)
{
	if (c->closed)
		return;
	struct ferry_hal_rdma_sge sge = {
		.addr = (uint64_t)(uintptr_t)(c->mem + (size_t)slot * c->rsz),
		.len = c->rsz,
		.lkey = c->lkey,
	};
	int rc = c->tr->rd->post_recv(c->qp_hw, WRID(WR_RECV, slot), &sge, 1);
	if (rc)
		conn_close(c, "post_recv failed");
}

static void kick_waiters(struct rdma_conn *c);

static void req_free(struct rdma_req *r)
{
	struct rdma_conn *c = r->conn;
	struct rdma_pg *pg = c->pg;
	for (uint32_t i = 0; i < r->nseg; i++)
		pg->buf_free[pg->nfree++] = r->iov[i].iov_base;
	c->held -= r->nseg;
	r->nseg = 0;
	if (r->state == REQ_WAIT_TX || r->state == REQ_TX)
		c->tx_busy--;
	if (r->recv >= 0) {
		repost_recv(c, (uint32_t)r->recv);
		r->recv = -1;
	}
	if (r->owns_cid)
		c->cids[r->cid >> 3] &= (uint8_t) ~(1u << (r->cid & 7));
	r->owns_cid = 0;
	r->state = REQ_FREE;
	r->queued = 0;
	r->waiting = 0;
	r->next = c->free_reqs;
	c->free_reqs = r;
	c->busy--;
	if (c->wait_head && !c->closed)
		kick_waiters(c);
}

/* ---- work requests ------------------------------------------------------------------------- */

/*
 * The piece of @p r's transfer at byte @p off: one keyed descriptor's part inside one data
 * buffer. Fills @p sge (local) and the remote address/key; returns its length, and in
 * @p desc_end whether it ends its descriptor.
 */
static uint32_t piece(const struct rdma_req *r, uint32_t off, struct ferry_hal_rdma_sge *sge,
		      uint64_t *raddr, uint32_t *rkey, int *desc_end)
{
	uint32_t base = 0, d = 0;
	while (d < r->sgl.ndesc && off >= base + r->sgl.desc[d].len)
		base += r->sgl.desc[d++].len;
	const struct ferry_nvmf_rdma_kdesc *k = &r->sgl.desc[d];
	uint32_t in_desc = off - base;
	uint32_t seg = off / RDMA_CHUNK, so = off % RDMA_CHUNK;
	uint32_t len = FERRY_MIN(k->len - in_desc, (uint32_t)r->iov[seg].iov_len - so);
	sge->addr = (uint64_t)(uintptr_t)((uint8_t *)r->iov[seg].iov_base + so);
	sge->len = len;
	sge->lkey = r->conn->pg->lkey;
	*raddr = k->addr + in_desc;
	*rkey = k->key;
	*desc_end = in_desc + len == k->len;
	return len;
}

/*
 * One RDMA READ / WRITE of @p r from byte @p off: the pieces of one descriptor (contiguous at
 * the host), up to the QP's SGEs, gathered from / scattered into the data buffers. Fills
 * @p w's remote address, key, sge and nsge (@p sge: room for max_sge entries); returns the
 * bytes it moves.
 */
static uint32_t wr_fill(const struct rdma_req *r, uint32_t off, struct ferry_hal_rdma_wr *w,
			struct ferry_hal_rdma_sge *sge)
{
	uint32_t max = r->conn->max_sge, n = 0, bytes = 0;
	int end = 0;
	while (n < max && off + bytes < r->len && !end) {
		uint64_t ra;
		uint32_t rk;
		bytes += piece(r, off + bytes, &sge[n], &ra, &rk, &end);
		if (n == 0) {
			w->remote_addr = ra;
			w->rkey = rk;
		}
		n++;
	}
	w->sge = sge;
	w->nsge = n;
	return bytes;
}

/* Work requests @p r's data takes (READs of a write, WRITEs of a read). */
static uint32_t wr_count(const struct rdma_req *r)
{
	struct ferry_hal_rdma_sge sge[RDMA_MAX_SGE];
	struct ferry_hal_rdma_wr w;
	uint32_t n = 0;
	for (uint32_t off = 0; off < r->len; n++)
		off += wr_fill(r, off, &w, sge);
	return n;
}

/*
 * Sends may be posted (the HAL: once qp_state() returns 0). The host may send its first
 * capsule as soon as its side is established, before the connection manager told this side
 * (rxe: the Connect arrived while post_send still said -ENOTCONN): work waits in the FIFO.
 */
static int conn_up(struct rdma_conn *c)
{
	if (!c->up && c->tr->rd->qp_state(c->qp_hw, NULL, NULL) == 0)
		c->up = 1;
	return c->up;
}

/* Posts what room allows of @p r's RDMA READs. Returns 1 when all are posted. */
static int post_reads(struct rdma_req *r)
{
	struct rdma_conn *c = r->conn;
	uint32_t n = 0, si = 0;
	if (!conn_up(c))
		return 0;
	while (r->rd_next < r->len && si + c->max_sge <= c->maxwr && c->sq_free > n &&
	       c->rd_out + n < c->ird) {
		struct ferry_hal_rdma_wr *w = &c->wr[n];
		uint32_t l = wr_fill(r, r->rd_next, w, &c->sge[si]);
		si += w->nsge;
		w->wr_id = WRID(WR_READ, r->idx);
		w->opcode = FERRY_HAL_RDMA_OP_READ;
		w->flags = FERRY_HAL_RDMA_WR_F_SIGNALED;
		w->next = NULL;
		if (n)
			c->wr[n - 1].next = w;
		r->rd_next += l;
		c->st.read_bytes += l;
		n++;
	}
	if (n) {
		int rc = c->tr->rd->post_send(c->qp_hw, c->wr, NULL);
		if (rc) {
			conn_close(c, "post_send (RDMA READ) failed");
			return 1;
		}
		c->sq_free -= n;
		c->rd_out += n;
		r->rd_out += n;
		c->st.reads += n;
	}
	return r->rd_next >= r->len;
}

/* WRITEs of a read's data (unsignaled) then the response's SEND (signaled), in one list. */
static int post_tx(struct rdma_req *r)
{
	struct rdma_conn *c = r->conn;
	if (c->sq_free < r->tx_wrs || !conn_up(c))
		return 0;
	uint32_t n = 0, si = 0;
	if (r->tx_wrs > 1) {
		for (uint32_t off = 0; off < r->len;) {
			struct ferry_hal_rdma_wr *w = &c->wr[n];
			uint32_t l = wr_fill(r, off, w, &c->sge[si]);
			si += w->nsge;
			w->wr_id = WRID(WR_WRITE, r->idx);
			w->opcode = FERRY_HAL_RDMA_OP_WRITE;
			w->flags = 0;
			w->next = &c->wr[n + 1];
			off += l;
			c->st.write_bytes += l;
			n++;
		}
		c->st.writes += n;
	}
	struct ferry_hal_rdma_wr *s = &c->wr[n];
	c->sge[si].addr = (uint64_t)(uintptr_t)(c->mem + (size_t)c->depth * c->rsz +
						(size_t)r->idx * sizeof(struct ferry_nvme_cqe));
	c->sge[si].len = sizeof(struct ferry_nvme_cqe);
	c->sge[si].lkey = c->lkey;
	s->wr_id = WRID(WR_SEND, r->idx);
	s->opcode = FERRY_HAL_RDMA_OP_SEND;
	s->flags = FERRY_HAL_RDMA_WR_F_SIGNALED;
	if (c->tr->info.max_inline >= sizeof(struct ferry_nvme_cqe))
		s->flags |= FERRY_HAL_RDMA_WR_F_INLINE;
	s->sge = &c->sge[si];
	s->nsge = 1;
	s->rkey = 0;
	s->remote_addr = 0;
	s->next = NULL;
	r->state = REQ_TX;
	/* The host may reuse the command id as soon as it sees the response, before this
	 * SEND's completion is polled here: the id is free from the post on. */
	if (r->owns_cid) {
		c->cids[r->cid >> 3] &= (uint8_t) ~(1u << (r->cid & 7));
		r->owns_cid = 0;
	}
	int rc = c->tr->rd->post_send(c->qp_hw, c->wr, NULL);
	if (rc) {
		conn_close(c, "post_send (response) failed");
		return 1;
	}
	c->sq_free -= n + 1;
	c->st.sends++;
	return 1;
}

static void fifo_push(struct rdma_conn *c, struct rdma_req *r)
{
	r->queued = 1;
	r->qnext = NULL;
	if (c->q_tail)
		c->q_tail->qnext = r;
	else
		c->q_head = r;
	c->q_tail = r;
}

/* Runs the send-queue FIFO in order while room lasts. */
static void conn_progress(struct rdma_conn *c)
{
	while (c->q_head && !c->closed) {
		struct rdma_req *r = c->q_head;
		if (r->state == REQ_READ) {
			if (!post_reads(r))
				return;
		} else if (!post_tx(r)) {
			return;
		}
		if (c->closed)
			return;
		c->q_head = r->qnext;
		if (!c->q_head)
			c->q_tail = NULL;
		r->queued = 0;
	}
}

/* ---- completions --------------------------------------------------------------------------- */

static void req_complete(struct rdma_req *r, const struct ferry_nvme_cqe *cqe)
{
	struct rdma_conn *c = r->conn;
	if (c->closed) { /* the host is gone: the completion is dropped */
		req_free(r);
		return;
	}
	/* The data is no longer needed in the receive buffer: repost it before the response
	 * (the host may send its next command as soon as it sees the response). */
	if (r->recv >= 0) {
		repost_recv(c, (uint32_t)r->recv);
		r->recv = -1;
		if (c->closed) {
			req_free(r);
			return;
		}
	}
	struct ferry_nvme_cqe *rsp =
		(struct ferry_nvme_cqe *)(void *)(c->mem + (size_t)c->depth * c->rsz) + r->idx;
	*rsp = *cqe;
	rsp->cid = r->cid;
	rsp->sqid = c->qp.qid;
	uint16_t status = (uint16_t)(cqe->status >> 1);
	uint32_t nw = 0;
	if (r->dir == 2 && r->len && status == 0 && r->sgl.kind == FERRY_NVMF_RDMA_SGL_KEYED)
		nw = wr_count(r);
	r->tx_wrs = nw + 1;
	r->state = REQ_WAIT_TX;
	c->tx_busy++;
	if (c->q_head || !post_tx(r)) {
		c->st.sq_waits += c->q_head == NULL && c->up;
		fifo_push(c, r);
	}
}

static int rdma_send_completion(struct ferry_transport *t, struct ferry_nvme_ctrlr *ctrlr,
				void *ctrlr_ctx, uint16_t qid, const struct ferry_nvme_cqe *cqe,
				void *cmd_ctx)
{
	(void)t;
	(void)ctrlr;
	(void)ctrlr_ctx;
	(void)qid;
	req_complete(cmd_ctx, cqe);
	return 0;
}

static void nvmf_complete(struct nvmf_qpair *qp, void *cmd_ctx, const struct ferry_nvme_cqe *cqe)
{
	(void)qp;
	req_complete(cmd_ctx, cqe);
}

static void req_fail(struct rdma_req *r, uint16_t status)
{
	struct ferry_nvme_cqe cqe = {
		.sqid = r->conn->qp.qid,
		.cid = r->cid,
		.status = (uint16_t)(status << 1),
	};
	req_complete(r, &cqe);
}

/* ---- commands ------------------------------------------------------------------------------ */

static void req_exec(struct rdma_req *r)
{
	struct rdma_conn *c = r->conn;
	r->state = REQ_EXEC;
	uint32_t len = r->len;
	if (r->sgl.kind == FERRY_NVMF_RDMA_SGL_KEYED) {
		r->mem.domain = NULL;
		r->mem.domain_ctx = NULL;
		r->mem.iov = r->iov;
		r->mem.iovcnt = r->nseg;
	}
	if (r->sqe.opcode == FERRY_NVME_CMD_DSM && c->qp.qid && len) {
		/* As for "tcp": Linux sends a 4096-byte range buffer whatever NR says; the
		 * controller gets exactly the (NR + 1) * 16 bytes of ranges (buffers are returned
		 * by r->nseg, not by these lengths). */
		uint32_t want = ((r->sqe.cdw10 & 0xff) + 1) * 16;
		if (want < len) {
			uint32_t n = 0, left = want;
			while (left) {
				size_t l = FERRY_MIN((size_t)left, r->iov[n].iov_len);
				r->iov[n++].iov_len = l;
				left -= (uint32_t)l;
			}
			r->mem.iovcnt = n;
			len = want;
		}
	}
	nvmf_tgt_qpair_exec(&c->qp, &r->sqe, len ? &r->mem : NULL, len, r);
}

/* The request has its buffers: read the write data from the host, or execute. */
static void req_go(struct rdma_req *r)
{
	struct rdma_conn *c = r->conn;
	if (r->dir == 1) {
		r->state = REQ_READ;
		r->rd_next = 0;
		r->rd_out = 0;
		if (c->q_head || !post_reads(r)) {
			if (!c->q_head && c->up) {
				if (c->rd_out >= c->ird)
					c->st.ird_waits++;
				else
					c->st.sq_waits++;
			}
			if (!c->closed)
				fifo_push(c, r);
		}
		return;
	}
	req_exec(r);
}

static void kick_waiters(struct rdma_conn *c)
{
	while (c->wait_head && !c->closed) {
		struct rdma_req *r = c->wait_head;
		if (req_bufs(r))
			return;
		c->wait_head = r->next;
		if (!c->wait_head)
			c->wait_tail = NULL;
		r->next = NULL;
		r->waiting = 0;
		req_go(r);
	}
}

/* The keyed descriptors cover exactly the data length (piece() walks them by offset). */
static int sgl_sane(const struct ferry_nvmf_rdma_sgl *g)
{
	if (g->ndesc > FERRY_NVMF_RDMA_SGL_MAX || (g->len && g->ndesc == 0))
		return 0;
	uint64_t sum = 0;
	for (uint32_t i = 0; i < g->ndesc; i++)
		sum += g->desc[i].len;
	return sum == g->len;
}

/* A command capsule arrived in receive slot @p slot (@p len bytes). */
static void cmd_recv(struct rdma_conn *c, uint32_t slot, uint32_t len)
{
	uint8_t *buf = c->mem + (size_t)slot * c->rsz;
	if (len < RDMA_SQE || len > c->rsz) {
		RDMA_HOST_ERR(c, "capsule of %u bytes (%u..%u): connection closed", len, RDMA_SQE,
			      c->rsz);
		conn_close(c, "malformed capsule");
		return;
	}
	struct rdma_req *r = c->free_reqs;
	if (!r) {
		RDMA_HOST_ERR(c, "command beyond the queue's %u entries: connection closed",
			      c->depth);
		conn_close(c, "too many commands");
		return;
	}
	c->free_reqs = r->next;
	r->next = NULL;
	c->busy++;
	c->st.cmds++;
	memcpy(&r->sqe, buf, sizeof(r->sqe));
	r->cid = r->sqe.cid;
	r->status = 0;
	r->nseg = 0;
	r->len = 0;
	r->recv = -1;
	r->queued = 0;
	r->waiting = 0;
	r->sgl.kind = FERRY_NVMF_RDMA_SGL_NONE;
	r->sgl.ndesc = 0;
	uint8_t op = r->sqe.opcode == FERRY_NVMF_OPC_FABRICS
			     ? ((const struct ferry_nvmf_cmd *)(const void *)&r->sqe)->fctype
			     : r->sqe.opcode;
	r->dir = op & 3;
	uint8_t *bit = &c->cids[r->cid >> 3];
	uint8_t mask = (uint8_t)(1u << (r->cid & 7));
	if (*bit & mask) {
		/* A command id still in use: the new command fails (its response carries the
		 * id: the host sees a conflict), the one in flight goes on. */
		RDMA_HOST_ERR(c, "command id %u reused while in flight", r->cid);
		r->owns_cid = 0;
		repost_recv(c, slot);
		req_fail(r, FERRY_NVME_STATUS(FERRY_NVME_SCT_GENERIC, FERRY_NVME_SC_CID_CONFLICT) |
				    FERRY_NVME_STATUS_DNR);
		return;
	}
	*bit |= mask;
	r->owns_cid = 1;
	uint16_t st = 0;
	uint32_t max_desc = c->tr->max_desc;
	int rc = ferry_nvmf_rdma_sgl_parse(&r->sqe, buf + RDMA_SQE, len - RDMA_SQE, max_desc,
					   c->tr->max_io, &r->sgl, &st);
	if (rc) {
		c->st.sgl_errors++;
		RDMA_HOST_ERR(c, "command %u (opcode 0x%x): bad data pointer (status 0x%x): %s",
			      r->cid, r->sqe.opcode, st, ferry_nvme_status_str(st));
		r->status = (uint16_t)(st ? st
					  : FERRY_NVME_STATUS(FERRY_NVME_SCT_GENERIC,
							      FERRY_NVME_SC_INVALID_FIELD)) |
			    FERRY_NVME_STATUS_DNR;
	} else if (r->sgl.kind == FERRY_NVMF_RDMA_SGL_KEYED && !sgl_sane(&r->sgl)) {
		c->st.sgl_errors++;
		RDMA_HOST_ERR(c, "command %u: %u keyed descriptors that do not add up to %u bytes",
			      r->cid, r->sgl.ndesc, r->sgl.len);
		r->status = FERRY_NVME_STATUS(FERRY_NVME_SCT_GENERIC, FERRY_NVME_SC_DATA_SGL_LEN) |
			    FERRY_NVME_STATUS_DNR;
	} else if (r->sgl.kind != FERRY_NVMF_RDMA_SGL_NONE && r->sgl.len &&
		   (r->dir == 0 || r->dir == 3 ||
		    (r->sgl.kind == FERRY_NVMF_RDMA_SGL_ICD && r->dir != 1))) {
		c->st.sgl_errors++;
		RDMA_HOST_ERR(c,
			      "command %u (opcode 0x%x): data of a command that moves none "
			      "that way",
			      r->cid, r->sqe.opcode);
		r->status = FERRY_NVME_STATUS(FERRY_NVME_SCT_GENERIC, FERRY_NVME_SC_INVALID_FIELD) |
			    FERRY_NVME_STATUS_DNR;
	} else if (r->sgl.kind == FERRY_NVMF_RDMA_SGL_ICD && r->sgl.len &&
		   ((uint64_t)r->sgl.icd_off + r->sgl.len > len - RDMA_SQE ||
		    r->sgl.len > (c->qp.qid ? c->icd : FERRY_MAX(c->icd, RDMA_ADMIN_ICD)))) {
		c->st.sgl_errors++;
		RDMA_HOST_ERR(c, "command %u: %u bytes of in-capsule data at %u, %u received",
			      r->cid, r->sgl.len, r->sgl.icd_off, len - RDMA_SQE);
		r->status = FERRY_NVME_STATUS(FERRY_NVME_SCT_GENERIC, FERRY_NVME_SC_DATA_SGL_LEN) |
			    FERRY_NVME_STATUS_DNR;
	} else if (r->sqe.opcode == FERRY_NVMF_OPC_FABRICS &&
		   ((const struct ferry_nvmf_cmd *)(const void *)&r->sqe)->fctype ==
			   FERRY_NVMF_FCTYPE_CONNECT) {
		/* The Connect must name the queue the connect request did, no larger than the
		 * receive buffers posted for it. */
		const struct ferry_nvmf_connect_cmd *cc = (const void *)&r->sqe;
		if (cc->qid != c->cm_qid || cc->sqsize > c->hsqsize) {
			RDMA_HOST_ERR(c,
				      "Connect QID %u SQSIZE %u: the connect request said QID %u "
				      "HSQSIZE %u",
				      cc->qid, cc->sqsize, c->cm_qid, c->hsqsize);
			r->status = FERRY_NVME_STATUS(FERRY_NVME_SCT_COMMAND,
						      FERRY_NVMF_SC_CONNECT_INVALID_PARAM) |
				    FERRY_NVME_STATUS_DNR;
		}
	}
	if (r->status) {
		repost_recv(c, slot);
		req_fail(r, r->status);
		return;
	}
	switch (r->sgl.kind) {
	case FERRY_NVMF_RDMA_SGL_ICD:
		c->st.icd_cmds++;
		r->recv = (int32_t)slot;
		r->len = r->sgl.len;
		r->iov[0].iov_base = buf + RDMA_SQE + r->sgl.icd_off;
		r->iov[0].iov_len = r->len;
		r->mem.domain = NULL;
		r->mem.domain_ctx = NULL;
		r->mem.iov = r->iov;
		r->mem.iovcnt = r->len ? 1 : 0;
		req_exec(r);
		return;
	case FERRY_NVMF_RDMA_SGL_KEYED:
		repost_recv(c, slot);
		if (c->closed) {
			req_free(r);
			return;
		}
		c->st.keyed_cmds++;
		r->len = r->sgl.len;
		if (r->len == 0) {
			req_exec(r);
			return;
		}
		if (req_bufs(r)) {
			r->state = REQ_WAIT_BUF;
			r->waiting = 1;
			r->next = NULL;
			if (c->wait_tail)
				c->wait_tail->next = r;
			else
				c->wait_head = r;
			c->wait_tail = r;
			return;
		}
		req_go(r);
		return;
	default:
		repost_recv(c, slot);
		if (c->closed) {
			req_free(r);
			return;
		}
		req_exec(r);
		return;
	}
}

/* One work completion of connection @p c. */
static void conn_wc(struct rdma_conn *c, const struct ferry_hal_rdma_wc *wc)
{
	uint32_t kind = (uint32_t)(wc->wr_id >> 32), idx = (uint32_t)wc->wr_id;
	if (c->closed)
		return;
	if (wc->status) {
		c->st.wc_errors++;
		if (wc->status == -ECANCELED) {
			/* flushed: the QP went to the error state (the host disconnected) */
			conn_close(c, "disconnected (work requests flushed)");
			return;
		}
		pthread_mutex_lock(&c->tr->lock);
		c->tr->qp_errors++;
		pthread_mutex_unlock(&c->tr->lock);
		RDMA_HOST_ERR(c, "%s work request failed: %s (vendor error %u): connection closed",
			      kind == WR_RECV    ? "receive"
			      : kind == WR_READ  ? "RDMA READ"
			      : kind == WR_WRITE ? "RDMA WRITE"
						 : "SEND",
			      ferry_strerror(wc->status), wc->vendor_err);
		conn_close(c, "work request failed");
		return;
	}
	switch (kind) {
	case WR_RECV:
		if (idx >= c->depth) {
			conn_close(c, "completion of an unknown receive");
			return;
		}
		cmd_recv(c, idx, wc->byte_len);
		return;
	case WR_READ: {
		if (idx >= c->nreqs)
			return;
		struct rdma_req *r = &c->reqs[idx];
		if (c->rd_out)
			c->rd_out--;
		c->sq_free++;
		if (r->state != REQ_READ || r->rd_out == 0)
			return;
		if (--r->rd_out == 0 && r->rd_next >= r->len)
			req_exec(r);
		if (!c->closed)
			conn_progress(c);
		return;
	}
	case WR_SEND: {
		if (idx >= c->nreqs)
			return;
		struct rdma_req *r = &c->reqs[idx];
		if (r->state != REQ_TX)
			return;
		c->sq_free += r->tx_wrs;
		req_free(r);
		if (!c->closed)
			conn_progress(c);
		return;
	}
	default:
		return;
	}
}

/* ---- connections --------------------------------------------------------------------------- */

static void conn_mem_free(struct rdma_conn *c)
{
	if (c->mr)
		c->tr->rd->mr_dereg(c->mr);
	if (c->reqs)
		for (uint32_t i = 0; i < c->nreqs; i++)
			free(c->reqs[i].iov);
	free(c->reqs);
	free(c->mem);
	free(c->wr);
	free(c->sge);
	free(c->cids);
	free(c);
}

static void conn_free(struct rdma_conn *c)
{
	struct rdma_tr *tr = c->tr;
	struct rdma_pg *pg = c->pg;
	pthread_mutex_lock(&tr->lock);
	if (c->prev)
		c->prev->next = c->next;
	else if (pg->conns == c)
		pg->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	pg->cq_used -= c->cq_share;
	tr->conns--;
	tr->closed++;
	pthread_mutex_unlock(&tr->lock);
	conn_mem_free(c);
}

static void conn_close(struct rdma_conn *c, const char *why)
{
	if (c->closed)
		return;
	FERRY_DBG(COMP, "%s: connection closed: %s", c->st.peer, why);
	c->closed = 1;
	c->qp.closing = 1;
	/* From here no completion of the QP is reported: its work requests' memory is ours. */
	c->tr->rd->qp_destroy(c->qp_hw);
	c->qp_hw = NULL;
	c->q_head = c->q_tail = NULL;
	c->wait_head = c->wait_tail = NULL;
	c->rd_out = 0;
	for (uint32_t i = 0; i < c->nreqs; i++) {
		struct rdma_req *r = &c->reqs[i];
		if (r->state == REQ_WAIT_BUF || r->state == REQ_READ || r->state == REQ_WAIT_TX ||
		    r->state == REQ_TX)
			req_free(r);
	}
}

/* Closed and nothing of it executes: hand it to the NVMe-oF layer. */
static void conn_reap(struct rdma_conn *c)
{
	if (!c->closed || c->fini || c->busy || c->qp.connecting)
		return;
	c->fini = 1;
	nvmf_tgt_qpair_fini(&c->qp);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void nvmf_close(struct nvmf_qpair *qp)
{
	struct rdma_conn *c = qp->conn;
	if (c->closed)
		return;
	if (c->tx_busy) {
		/* A Disconnect's response (and any other) goes first: destroying the QP now
		 * would drop SENDs posted or queued. No new command executes meanwhile. */
		c->qp.closing = 1;
		if (!c->close_after_tx) {
			c->close_after_tx = 1;
			c->close_by_ns = mono_ns() + 1000000000ull;
		}
		return;
	}
	conn_close(c, "association ended");
}

static void nvmf_release(struct nvmf_qpair *qp)
{
	conn_free(qp->conn);
}

static const struct nvmf_tgt_ops rdma_nvmf_ops = {
	.complete = nvmf_complete,
	.close = nvmf_close,
	.release = nvmf_release,
};

/* A connection's memory for a request with @p qid / @p hsqsize. */
static struct rdma_conn *conn_alloc(struct rdma_tr *tr, const struct ferry_nvmf_rdma_cm_req *cr,
				    const struct rdma_listener *l)
{
	struct rdma_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->tr = tr;
	c->cm_qid = cr->qid;
	c->hsqsize = cr->hsqsize;
	c->hrqsize = cr->hrqsize;
	c->depth = (uint32_t)cr->hsqsize + 1;
	c->nreqs = c->depth * 2;
	c->icd = cr->qid ? tr->icd : FERRY_MAX(tr->icd, RDMA_ADMIN_ICD);
	c->rsz = RDMA_SQE + c->icd;
	c->ird = FERRY_MAX(1u, FERRY_MIN(tr->info.max_qp_rd_atom, RDMA_MAX_RD));
	c->maxwr = tr->segs + FERRY_NVMF_RDMA_SGL_MAX + 2;
	c->max_sge = FERRY_MAX(1u, FERRY_MIN(tr->info.max_sge, RDMA_MAX_SGE));
	/* Responses of every request at once plus one command's WRs, within the device's. */
	c->sq = FERRY_MIN(tr->info.max_qp_wr, FERRY_MAX(c->nreqs + c->maxwr, 64u));
	c->sq_free = c->sq;
	c->cq_share = c->sq + c->depth;
	size_t bytes = (size_t)c->depth * c->rsz + (size_t)c->nreqs * sizeof(struct ferry_nvme_cqe);
	c->mem = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
	c->reqs = calloc(c->nreqs, sizeof(*c->reqs));
	c->wr = calloc(c->maxwr, sizeof(*c->wr));
	c->sge = calloc(c->maxwr, sizeof(*c->sge));
	c->cids = calloc(65536 / 8, 1);
	if (!c->mem || !c->reqs || !c->wr || !c->sge || !c->cids)
		goto err;
	memset(c->mem, 0, bytes);
	for (uint32_t i = 0; i < c->nreqs; i++) {
		struct rdma_req *r = &c->reqs[i];
		r->conn = c;
		r->idx = i;
		r->recv = -1;
		r->iov = calloc(tr->segs, sizeof(struct iovec));
		if (!r->iov)
			goto err;
	}
	for (uint32_t i = c->nreqs; i-- > 0;) {
		c->reqs[i].next = c->free_reqs;
		c->free_reqs = &c->reqs[i];
	}
	int rc = tr->rd->mr_reg(tr->dev, c->mem, bytes, FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE, &c->mr);
	if (rc)
		goto err;
	struct ferry_hal_rdma_mr_keys k;
	tr->rd->mr_keys(c->mr, &k);
	c->lkey = k.lkey;
	c->st.size = sizeof(c->st);
	c->st.cntlid = FERRY_NVMF_CNTLID_DYNAMIC;
	c->st.qid = cr->qid;
	c->st.depth = c->depth;
	snprintf(c->st.peer, sizeof(c->st.peer), "?");
	snprintf(c->st.local, sizeof(c->st.local), "%s", l->bound);
	return c;
err:
	conn_mem_free(c);
	return NULL;
}

static void reject(struct rdma_tr *tr, struct ferry_hal_rdma_req *req, uint16_t sts)
{
	uint8_t pd[8];
	size_t n = ferry_nvmf_rdma_cm_rej_build(pd, sizeof(pd), sts);
	tr->rd->reject(req, pd, (uint32_t)n);
}

/* On the group's thread: accept the request onto the group's CQ and post the receives. */
static void conn_accept(void *arg)
{
	struct rdma_conn *c = arg;
	struct rdma_tr *tr = c->tr;
	struct rdma_pg *pg = c->pg;
	struct ferry_hal_rdma_req *req = c->cm_req;
	c->cm_req = NULL;
	pthread_mutex_lock(&tr->lock);
	int room = pg->cq_used + c->cq_share <= pg->cq_depth;
	if (room)
		pg->cq_used += c->cq_share;
	pthread_mutex_unlock(&tr->lock);
	if (!room) {
		RDMA_HOST_ERR(c,
			      "poll group %u: its completion queue is full: connect request "
			      "rejected (no resources)",
			      pg->core.index);
		reject(tr, req, FERRY_NVMF_RDMA_CM_NO_RSC);
		goto drop;
	}
	uint8_t pd[32];
	size_t pn = ferry_nvmf_rdma_cm_rep_build(pd, sizeof(pd), (uint16_t)c->depth);
	struct ferry_hal_rdma_qp_attr a = {
		.size = sizeof(a),
		.cq = pg->cq,
		.max_send_wr = c->sq,
		.max_recv_wr = c->depth,
		.max_send_sge = c->max_sge,
		.max_recv_sge = 1,
		.max_inline = tr->info.max_inline >= sizeof(struct ferry_nvme_cqe)
				      ? (uint32_t)sizeof(struct ferry_nvme_cqe)
				      : 0,
		.initiator_depth = (uint8_t)c->ird,
		.responder_resources = 1,
		.ctx = c,
	};
	int rc = tr->rd->accept(req, &a, pd, (uint32_t)pn, &c->qp_hw);
	if (rc) {
		FERRY_ERR(COMP, "%s: accept failed: %s", c->st.local, ferry_strerror(rc));
		pthread_mutex_lock(&tr->lock);
		pg->cq_used -= c->cq_share;
		pthread_mutex_unlock(&tr->lock);
		goto drop;
	}
	if (tr->rd->qp_addr(c->qp_hw, 1, c->st.peer, sizeof(c->st.peer)))
		snprintf(c->st.peer, sizeof(c->st.peer), "?");
	nvmf_tgt_qpair_init(&c->qp, tr->tgt, &pg->core, c);
	c->qp.chan = pg->chan;
	c->st.pg = pg->core.index;
	pthread_mutex_lock(&tr->lock);
	tr->accepted++;
	c->prev = NULL;
	c->next = pg->conns;
	if (pg->conns)
		pg->conns->prev = c;
	pg->conns = c;
	pthread_mutex_unlock(&tr->lock);
	for (uint32_t i = 0; i < c->depth && !c->closed; i++)
		repost_recv(c, i);
	return;
drop:
	pthread_mutex_lock(&tr->lock);
	tr->conns--;
	tr->refused += !room;
	pthread_mutex_unlock(&tr->lock);
	conn_mem_free(c);
}

/* The pending connect requests of listener @p l (the instance's own polling). */
static int rdma_accept(struct rdma_tr *tr, struct rdma_listener *l)
{
	int n = 0;
	for (; n < 16; n++) {
		struct ferry_hal_rdma_req *req = NULL;
		const void *pdata = NULL;
		uint32_t plen = 0;
		if (tr->rd->get_request(l->l, &req, &pdata, &plen))
			return n;
		pthread_mutex_lock(&tr->lock);
		tr->requests++;
		pthread_mutex_unlock(&tr->lock);
		struct ferry_nvmf_rdma_cm_limits lim = {
			.max_qid = (uint16_t)tr->ioq,
			.max_queue_depth = tr->depth,
			.max_admin_depth = FERRY_MIN(RDMA_ADMIN_DEPTH, tr->depth),
		};
		struct ferry_nvmf_rdma_cm_req cr;
		uint16_t sts = 0;
		int rc = ferry_nvmf_rdma_cm_req_parse(pdata, plen, &lim, &cr, &sts);
		if (rc) {
			if (rc != -EPROTO || !sts)
				sts = FERRY_NVMF_RDMA_CM_INVALID_LEN;
			static struct log_ratelimit rl;
			if (log_ratelimit(&rl, NULL))
				FERRY_WARN(COMP,
					   "connect request on %s rejected: %s (%u bytes of "
					   "private data)",
					   l->bound, ferry_nvmf_rdma_cm_sts_str(sts), plen);
			ferry_set_last_error(COMP, "connect request on %s rejected: %s", l->bound,
					     ferry_nvmf_rdma_cm_sts_str(sts));
			pthread_mutex_lock(&tr->lock);
			tr->rejected++;
			pthread_mutex_unlock(&tr->lock);
			reject(tr, req, sts);
			continue;
		}
		/* Every connection costs its buffers from accept on: past max_connections a
		 * request gets "no resources" (the host may retry later); so does every request
		 * while the instance is being destroyed. */
		pthread_mutex_lock(&tr->lock);
		int stopping = tr->stopping;
		int full = tr->conns >= tr->max_conns || stopping;
		if (full)
			tr->refused++;
		else
			tr->conns++;
		struct rdma_pg *pg = tr->npgs ? tr->pgs[tr->rr++ % tr->npgs] : &tr->pg0;
		pthread_mutex_unlock(&tr->lock);
		if (full) {
			static struct log_ratelimit rl;
			if (!stopping && log_ratelimit(&rl, NULL))
				FERRY_WARN(COMP,
					   "connect request on %s: %u connections open "
					   "(max_connections): rejected (no resources)",
					   l->bound, tr->max_conns);
			ferry_set_last_error(COMP, "connect request on %s: max_connections reached",
					     l->bound);
			reject(tr, req, FERRY_NVMF_RDMA_CM_NO_RSC);
			continue;
		}
		struct rdma_conn *c = conn_alloc(tr, &cr, l);
		if (!c) {
			FERRY_ERR(COMP, "connect request on %s: out of memory, rejected", l->bound);
			reject(tr, req, FERRY_NVMF_RDMA_CM_NO_RSC);
			pthread_mutex_lock(&tr->lock);
			tr->conns--;
			tr->refused++;
			pthread_mutex_unlock(&tr->lock);
			continue;
		}
		c->cm_req = req;
		c->pg = pg;
		if (pg == &tr->pg0) {
			conn_accept(c);
		} else if (pg_post(&pg->core, conn_accept, c)) {
			reject(tr, req, FERRY_NVMF_RDMA_CM_NO_RSC);
			pthread_mutex_lock(&tr->lock);
			tr->conns--;
			tr->refused++;
			pthread_mutex_unlock(&tr->lock);
			conn_mem_free(c);
		}
	}
	return n;
}

/* ---- poll groups ----------------------------------------------------------------------------- */

static int pg_setup(struct rdma_tr *tr, struct rdma_pg *pg, uint32_t index)
{
	pg->tr = tr;
	int rc = pg_core_init(&pg->core, index);
	if (rc)
		return rc;
	pg->cq_depth = tr->info.max_cqe;
	rc = tr->rd->cq_create(tr->dev, pg->cq_depth, &pg->cq);
	if (rc) {
		FERRY_ERR(COMP, "poll group %u: no completion queue: %s", index,
			  ferry_strerror(rc));
		pg_core_fini(&pg->core);
		return rc;
	}
	rc = pool_init(tr, pg, tr->nbufs);
	if (rc) {
		tr->rd->cq_destroy(pg->cq);
		pg_core_fini(&pg->core);
		return rc;
	}
	return 0;
}

static void pg_teardown(struct rdma_tr *tr, struct rdma_pg *pg)
{
	ferry_accel_chan_destroy(pg->chan);
	pg->chan = NULL;
	tr->rd->cq_destroy(pg->cq);
	pg->cq = NULL;
	pg_core_fini(&pg->core);
	/* The pool's registration lives as long as the map (destroyed with the instance). */
	free(pg->buf_mem);
	free(pg->buf_free);
	pg->buf_mem = NULL;
	pg->buf_free = NULL;
}

/* Serves the connections of @p pg (and, for pg0, the listeners). */
static int pg_run(struct rdma_tr *tr, struct rdma_pg *pg, uint32_t max)
{
	if (!pg->chan_tried && tr->accel) {
		pg->chan_tried = 1;
		int rc = ferry_accel_chan_create(NULL, NULL, &pg->chan);
		if (rc)
			FERRY_WARN(COMP,
				   "poll group %u: no accel channel (%s): bdevs move the data "
				   "themselves",
				   pg->core.index, ferry_strerror(rc));
	}
	if (pg->idle && tr->idle_us && tr->rd->cq_wait)
		tr->rd->cq_wait(pg->cq, tr->idle_us);
	int work = pg_core_drain(&pg->core);
	uint32_t budget = max ? max : RDMA_BUDGET;
	if (pg == &tr->pg0)
		for (uint32_t i = 0; i < tr->nlst; i++)
			work += rdma_accept(tr, tr->lst[i]);
	for (uint32_t round = 0; round < 4; round++) {
		int n = tr->rd->cq_poll(pg->cq, pg->wc, RDMA_WC);
		if (n <= 0)
			break;
		work += n;
		for (int i = 0; i < n; i++)
			conn_wc(pg->wc[i].qp_ctx, &pg->wc[i]);
		if ((uint32_t)n < RDMA_WC)
			break;
	}
	for (struct rdma_conn *c = pg->conns, *next; c; c = next) {
		next = c->next;
		if (!c->closed) {
			int s = tr->rd->qp_state(c->qp_hw, NULL, NULL);
			if (s == 0)
				c->up = 1;
			if (s == 0 && c->st.peer[0] == '?' &&
			    tr->rd->qp_addr(c->qp_hw, 1, c->st.peer, sizeof(c->st.peer)))
				snprintf(c->st.peer, sizeof(c->st.peer), "?"); /* not known (yet) */
			if (s != 0 && s != -EINPROGRESS) {
				RDMA_HOST_ERR(c, "connection lost: %s", ferry_strerror(s));
				conn_close(c, "connection lost");
			}
		}
		if (!c->closed && c->qp.ctrlr && c->qp.qid) {
			int w = nvmf_tgt_qpair_poll(&c->qp, budget);
			if (w > 0)
				work += w;
		} else if (c->closed && c->busy && !c->fini && c->qp.ctrlr && c->qp.qid) {
			/* commands of a lost connection still execute: they finish first */
			int w = nvmf_tgt_qpair_drain(&c->qp, budget);
			if (w > 0)
				work += w;
		}
		/* Buffers another connection returned wake this one's waiters. */
		if (!c->closed && c->wait_head) {
			struct rdma_req *w = c->wait_head;
			kick_waiters(c);
			work += c->wait_head != w;
		}
		if (!c->closed && c->q_head)
			conn_progress(c);
		if (!c->closed && c->close_after_tx && (!c->tx_busy || mono_ns() > c->close_by_ns))
			conn_close(c, "association ended");
		if (c->closed)
			conn_reap(c);
	}
	work += nvmf_pg_poll(tr->tgt, &pg->core);
	work += pg_core_drain(&pg->core);
	pg->idle = work == 0;
	return work;
}

static int rdma_pg_create(struct ferry_transport *t, void **ctx)
{
	struct rdma_tr *tr = ferry_transport_get_ctx(t);
	struct rdma_pg *pg = calloc(1, sizeof(*pg));
	if (!pg)
		return -ENOMEM;
	pthread_mutex_lock(&tr->lock);
	uint32_t idx = tr->npgs;
	pthread_mutex_unlock(&tr->lock);
	if (idx >= RDMA_MAX_PG) {
		free(pg);
		FERRY_ERR(COMP, "pg_create: %u poll groups at most", RDMA_MAX_PG);
		return -ENOSPC;
	}
	int rc = pg_setup(tr, pg, idx + 1);
	if (rc) {
		free(pg);
		return rc;
	}
	pthread_mutex_lock(&tr->lock);
	tr->pgs[tr->npgs++] = pg;
	pthread_mutex_unlock(&tr->lock);
	*ctx = pg;
	return 0;
}

static int rdma_pg_poll(struct ferry_transport *t, void *ctx, uint32_t max)
{
	return pg_run(ferry_transport_get_ctx(t), ctx, max);
}

static int rdma_pg_destroy(struct ferry_transport *t, void *ctx)
{
	struct rdma_tr *tr = ferry_transport_get_ctx(t);
	struct rdma_pg *pg = ctx;
	pthread_mutex_lock(&tr->lock);
	if (pg->conns || pg->core.ctrlrs || pg->core.head) {
		pthread_mutex_unlock(&tr->lock);
		FERRY_ERR(COMP, "pg_destroy: the group still owns connections");
		return -EBUSY;
	}
	uint32_t i = 0;
	while (i < tr->npgs && tr->pgs[i] != pg)
		i++;
	for (; i + 1 < tr->npgs; i++)
		tr->pgs[i] = tr->pgs[i + 1];
	if (tr->npgs)
		tr->npgs--;
	pthread_mutex_unlock(&tr->lock);
	pg_teardown(tr, pg);
	free(pg);
	return 0;
}

/* ---- the plugin ---------------------------------------------------------------------------- */

static const char *const rdma_keys[] = {"max_queue_depth",
					"max_io_queues",
					"in_capsule_data_size",
					"max_io_size",
					"max_sgl_desc",
					"buffers",
					"accel",
					"idle_us",
					"max_connections",
					NULL};

static int rdma_create(struct ferry_transport *t, const struct ferry_transport_opts *opts)
{
	if (ferry_hal_args_check(opts->args, rdma_keys))
		return -EINVAL;
	uint32_t depth = 128, ioq = 8, icd = 4096, max_io = 131072, max_desc = 16, bufs = 1024,
		 accel = 1, idle_us = RDMA_IDLE_US, max_conns = 1024;
	int rc = transport_arg_u32(COMP, opts->args, "max_queue_depth", 32, 1024, &depth);
	if (!rc)
		rc = transport_arg_u32(COMP, opts->args, "max_io_queues", 1, 256, &ioq);
	if (!rc)
		rc = transport_arg_u32(COMP, opts->args, "in_capsule_data_size", 0, 16384, &icd);
	if (!rc)
		rc = transport_arg_u32(COMP, opts->args, "max_io_size", 4096, 1048576, &max_io);
	if (!rc)
		rc = transport_arg_u32(COMP, opts->args, "max_sgl_desc", 1, FERRY_NVMF_RDMA_SGL_MAX,
				       &max_desc);
	if (!rc)
		rc = transport_arg_u32(COMP, opts->args, "buffers", 16, 1u << 20, &bufs);
	if (!rc)
		rc = transport_arg_u32(COMP, opts->args, "accel", 0, 1, &accel);
	if (!rc)
		rc = transport_arg_u32(COMP, opts->args, "idle_us", 0, 100000, &idle_us);
	if (!rc)
		rc = transport_arg_u32(COMP, opts->args, "max_connections", 1, 65536, &max_conns);
	if (rc)
		return rc;
	if (icd % 16 || (max_io & (max_io - 1))) {
		FERRY_ERR(COMP,
			  "create: in_capsule_data_size must be a multiple of 16, max_io_size "
			  "a power of two");
		return -EINVAL;
	}
	if (bufs * (uint64_t)RDMA_CHUNK < max_io) {
		FERRY_ERR(COMP, "create: %u buffers of %u bytes cannot hold one %u-byte transfer",
			  bufs, RDMA_CHUNK, max_io);
		return -EINVAL;
	}
	struct rdma_tr *tr = calloc(1, sizeof(*tr));
	if (!tr)
		return -ENOMEM;
	tr->t = t;
	tr->depth = depth;
	tr->ioq = ioq;
	tr->icd = icd;
	tr->max_io = max_io;
	tr->max_desc = max_desc;
	tr->nbufs = bufs;
	tr->conn_bufs = FERRY_MAX(bufs / 4, (max_io + RDMA_CHUNK - 1) / RDMA_CHUNK);
	tr->accel = accel;
	tr->idle_us = idle_us;
	tr->max_conns = max_conns;
	tr->segs = (max_io + RDMA_CHUNK - 1) / RDMA_CHUNK + 1;
	pthread_mutex_init(&tr->lock, NULL);
	tr->dev = opts->device;
	if (!tr->dev) {
		rc = ferry_device_open("rxe", "", &tr->dev);
		if (rc) {
			FERRY_ERR(COMP,
				  "create: no device given and the 'rxe' backend cannot be opened: "
				  "%s",
				  ferry_strerror(rc));
			goto err_free;
		}
		tr->own_dev = 1;
	}
	const struct ferry_hal_backend *b = ferry_hal_dev_get_backend(tr->dev);
	if (!b || !b->nic || !b->nic->rdma) {
		FERRY_ERR(COMP, "create: device %s has no RDMA NIC class",
			  ferry_device_get_name(tr->dev));
		rc = -ENOTSUP;
		goto err_dev;
	}
	tr->rd = b->nic->rdma;
	rc = tr->rd->query(tr->dev, &tr->info);
	if (rc) {
		FERRY_ERR(COMP, "create: device %s offers no RDMA: %s",
			  ferry_device_get_name(tr->dev), ferry_strerror(rc));
		goto err_dev;
	}
	if (tr->info.max_qp_wr < depth + 1) {
		FERRY_ERR(COMP,
			  "create: device %s: QPs of %u work requests, max_queue_depth %u "
			  "needs more",
			  ferry_device_get_name(tr->dev), tr->info.max_qp_wr, depth);
		rc = -EINVAL;
		goto err_dev;
	}
	struct ferry_rdma_map_opts mo = {.size = sizeof(mo), .dev = tr->dev};
	rc = ferry_rdma_map_create(&mo, &tr->map);
	if (rc) {
		FERRY_ERR(COMP, "create: no registration map: %s", ferry_strerror(rc));
		goto err_dev;
	}
	struct nvmf_tgt_limits lim = {
		.max_queue_depth = depth,
		.max_io_queues = (uint16_t)ioq,
		.icd_size = icd,
		.max_io_size = max_io,
		.trtype = FERRY_NVMF_TRTYPE_RDMA,
		.msdbd = (uint8_t)max_desc,
	};
	rc = nvmf_tgt_create(t, &lim, &rdma_nvmf_ops, &tr->tgt);
	if (rc)
		goto err_map;
	rc = pg_setup(tr, &tr->pg0, 0);
	if (rc)
		goto err_tgt;
	ferry_transport_set_ctx(t, tr);
	return 0;
err_tgt:
	nvmf_tgt_destroy(tr->tgt);
err_map:
	ferry_rdma_map_destroy(tr->map);
err_dev:
	if (tr->own_dev)
		ferry_device_close(tr->dev);
err_free:
	pthread_mutex_destroy(&tr->lock);
	free(tr);
	return rc;
}

/* Closes every connection and runs the groups (from this thread: their own threads have
 * stopped) until each is released. */
static void rdma_drain_all(struct rdma_tr *tr)
{
	struct rdma_pg *all[RDMA_MAX_PG + 1];
	uint32_t n = 0;
	all[n++] = &tr->pg0;
	for (uint32_t i = 0; i < tr->npgs; i++)
		all[n++] = tr->pgs[i];
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int left = 0;
		for (uint32_t i = 0; i < n; i++) {
			/* Requests posted to a group but not accepted yet are rejected there. */
			for (struct rdma_conn *c = all[i]->conns; c; c = c->next)
				conn_close(c, "transport destroyed");
			all[i]->idle = 0;
			pg_run(tr, all[i], 0);
			for (struct rdma_conn *c = all[i]->conns; c; c = c->next)
				conn_close(c, "transport destroyed");
			left += all[i]->conns != NULL || all[i]->core.ctrlrs != NULL ||
				all[i]->core.head != NULL;
		}
		if (!left)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec > 5) {
			FERRY_ERR(COMP, "destroy: connections still executing after 5 s");
			break;
		}
	}
}

static void rdma_destroy(struct ferry_transport *t)
{
	struct rdma_tr *tr = ferry_transport_get_ctx(t);
	if (!tr)
		return;
	/* New requests are rejected from here; the ones taken already and posted to a group
	 * are accepted there and closed with the rest. The listeners go once nothing of theirs
	 * is in flight (their pending requests are rejected). */
	pthread_mutex_lock(&tr->lock);
	tr->stopping = 1;
	pthread_mutex_unlock(&tr->lock);
	rdma_drain_all(tr);
	pthread_mutex_lock(&tr->lock);
	uint32_t nlst = tr->nlst;
	tr->nlst = 0;
	pthread_mutex_unlock(&tr->lock);
	for (uint32_t i = 0; i < nlst; i++) {
		tr->rd->listener_close(tr->lst[i]->l);
		free(tr->lst[i]);
	}
	nvmf_tgt_destroy(tr->tgt);
	for (uint32_t i = 0; i < tr->npgs; i++) {
		pg_teardown(tr, tr->pgs[i]);
		free(tr->pgs[i]);
	}
	pg_teardown(tr, &tr->pg0);
	ferry_rdma_map_destroy(tr->map);
	if (tr->own_dev)
		ferry_device_close(tr->dev);
	pthread_mutex_destroy(&tr->lock);
	free(tr);
	ferry_transport_set_ctx(t, NULL);
}

static int rdma_listen(struct ferry_transport *t, struct ferry_nvme_subsystem *subsys,
		       const char *address)
{
	struct rdma_tr *tr = ferry_transport_get_ctx(t);
	if (ferry_nvme_subsystem_get_type(subsys) != FERRY_NVME_SUBSYS_NVM) {
		FERRY_ERR(COMP, "listen: %s is not an NVM subsystem",
			  ferry_nvme_subsystem_get_nqn(subsys));
		return -EINVAL;
	}
	struct rdma_listener *l = NULL;
	pthread_mutex_lock(&tr->lock);
	size_t alen = strlen(address);
	int any_port = alen >= 2 && !strcmp(address + alen - 2, ":0");
	for (uint32_t i = 0; i < tr->nlst && !l && !any_port; i++)
		if (!strcmp(tr->lst[i]->want, address) || !strcmp(tr->lst[i]->bound, address))
			l = tr->lst[i];
	uint32_t nlst = tr->nlst;
	pthread_mutex_unlock(&tr->lock);
	int fresh = 0;
	if (!l) {
		if (nlst == RDMA_MAX_LISTEN) {
			FERRY_ERR(COMP, "listen %s: %u addresses at most", address,
				  RDMA_MAX_LISTEN);
			return -ENOSPC;
		}
		if (alen >= sizeof(l->want)) {
			FERRY_ERR(COMP, "listen: address '%s' too long", address);
			return -EINVAL;
		}
		l = calloc(1, sizeof(*l));
		if (!l)
			return -ENOMEM;
		snprintf(l->want, sizeof(l->want), "%s", address);
		int rc = tr->rd->listen(tr->dev, address, 128, &l->l);
		if (rc) {
			FERRY_ERR(COMP, "listen on %s failed: %s", address, ferry_strerror(rc));
			free(l);
			return rc;
		}
		if (tr->rd->listener_addr(l->l, l->bound, sizeof(l->bound)))
			snprintf(l->bound, sizeof(l->bound), "%s", address);
		l->portid = (uint16_t)(nlst + 1);
		fresh = 1;
	}
	char addr[64], port[32];
	uint8_t fam;
	int rc = transport_split_addr(l->bound, addr, sizeof(addr), port, sizeof(port), &fam);
	if (rc)
		FERRY_ERR(COMP, "listen: address '%s' is not a.b.c.d:port", l->bound);
	if (!rc)
		rc = nvmf_tgt_listen(tr->tgt, subsys, fam, addr, port, l->portid);
	if (rc) {
		if (fresh) {
			tr->rd->listener_close(l->l);
			free(l);
		}
		return rc;
	}
	if (fresh) {
		pthread_mutex_lock(&tr->lock);
		tr->lst[tr->nlst++] = l;
		pthread_mutex_unlock(&tr->lock);
	}
	FERRY_INFO(COMP, "%s listens on %s", ferry_nvme_subsystem_get_nqn(subsys), l->bound);
	return 0;
}

static int rdma_poll(struct ferry_transport *t, uint32_t max)
{
	struct rdma_tr *tr = ferry_transport_get_ctx(t);
	return pg_run(tr, &tr->pg0, max);
}

static const struct ferry_transport_ops rdma_transport_ops = {
	.abi_version = FERRY_TRANSPORT_OPS_ABI,
	.name = "rdma",
	.kind = FERRY_TRANSPORT_MESSAGE,
	.create = rdma_create,
	.destroy = rdma_destroy,
	.listen = rdma_listen,
	.poll = rdma_poll,
	.send_completion = rdma_send_completion,
	.pg_create = rdma_pg_create,
	.pg_poll = rdma_pg_poll,
	.pg_destroy = rdma_pg_destroy,
};

BUILTIN_TRANSPORT(rdma_transport_ops, 2);

/* ---- the counters API ------------------------------------------------------------------------ */

static struct rdma_tr *rdma_of(struct ferry_transport *t)
{
	if (!t || ferry_transport_get_ops(t) != &rdma_transport_ops)
		return NULL;
	return ferry_transport_get_ctx(t);
}

FERRY_API int ferry_rdma_transport_get_stats(struct ferry_transport *t, ferry_rdma_stats_cb cb,
					     void *ctx)
{
	struct rdma_tr *tr = rdma_of(t);
	if (!tr || !cb)
		return -EINVAL;
	int n = 0;
	pthread_mutex_lock(&tr->lock);
	for (uint32_t g = 0; g <= tr->npgs; g++) {
		struct rdma_pg *pg = g == 0 ? &tr->pg0 : tr->pgs[g - 1];
		for (struct rdma_conn *c = pg->conns; c; c = c->next) {
			struct ferry_rdma_conn_stats st = c->st;
			st.cntlid = nvmf_tgt_qpair_cntlid(&c->qp);
			cb(ctx, &st);
			n++;
		}
	}
	pthread_mutex_unlock(&tr->lock);
	return n;
}

FERRY_API int ferry_rdma_transport_get_totals(struct ferry_transport *t,
					      struct ferry_rdma_transport_totals *tot)
{
	struct rdma_tr *tr = rdma_of(t);
	if (!tr || !tot)
		return -EINVAL;
	if (OPTS_SIZE_CHECK(COMP, "get_totals", tot, struct ferry_rdma_transport_totals))
		return -EINVAL;
	pthread_mutex_lock(&tr->lock);
	tot->requests = tr->requests;
	tot->accepted = tr->accepted;
	tot->rejected = tr->rejected;
	tot->refused = tr->refused;
	tot->closed = tr->closed;
	tot->qp_errors = tr->qp_errors;
	tot->conns = tr->conns;
	pthread_mutex_unlock(&tr->lock);
	nvmf_tgt_counts(tr->tgt, &tot->ctrlrs_created, &tot->ctrlrs_destroyed, &tot->kato_expired,
			&tot->ctrlrs);
	return 0;
}

FERRY_API int ferry_rdma_transport_get_listen_addr(struct ferry_transport *t, unsigned int index,
						   char *buf, size_t len)
{
	struct rdma_tr *tr = rdma_of(t);
	if (!tr || !buf)
		return -EINVAL;
	pthread_mutex_lock(&tr->lock);
	int rc = 0;
	if (index >= tr->nlst)
		rc = -ENOENT;
	else if (strlen(tr->lst[index]->bound) >= len)
		rc = -ENOBUFS;
	else
		snprintf(buf, len, "%s", tr->lst[index]->bound);
	pthread_mutex_unlock(&tr->lock);
	return rc;
}
