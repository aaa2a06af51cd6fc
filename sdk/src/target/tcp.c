/*
 * The NVMe/TCP target transport "tcp" (ferry/tcp_transport.h): listeners, connections served
 * by poll groups (the instance's own polling when none was created), the PDU exchange of each
 * connection (ICReq/ICResp, CapsuleCmd with in-capsule data or R2T/H2CData, C2HData and
 * CapsuleResp, TermReq on any malformed PDU) over the HAL NIC class, with the data in
 * per-group buffers handed to the controller core. Commands go through the NVMe-oF layer
 * (nvmf.c). Registered as a built-in plugin after "pcie".
 *
 * The fast path allocates nothing and takes no lock: requests, send entries and their iovec
 * arrays belong to the connection (allocated when it is accepted), data buffers to the group.
 * Receiving: the codec's zero-copy path puts payload straight into the data buffers; headers
 * go through a 64 KiB staging buffer per connection (one recv per batch of small PDUs), and
 * payload bytes that happened to arrive in it are copied (counted: rx_copied vs rx_placed).
 * Sending: PDUs queue on the connection and leave in one sendv per batch.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ferry/accel.h>
#include <ferry/crc.h>
#include <ferry/hal/hal.h>
#include <ferry/nvme.h>
#include <ferry/tcp_transport.h>
#include <ferry/transport.h>
#include <ferry/module/nvme_tcp.h>
#include <ferry/module/transport.h>
#include "core_internal.h"
#include "target_internal.h"
#include "nvmf_internal.h"

#define COMP "tcp"
#define TCP_CHUNK 8192u      /* data buffer size */
#define TCP_STAGE 65536u     /* header staging buffer per connection */
#define TCP_ADMIN_ICD 8192u  /* in-capsule data of the admin queue (spec minimum) */
#define TCP_ADMIN_DEPTH 128u /* requests of a connection before it is an I/O queue */
#define TCP_MAX_PG 64u
#define TCP_MAX_LISTEN 32u
#define TCP_EVENTS 64u
#define TCP_SEND_IOV 64u
#define TCP_RECV_IOV 16u
#define TCP_IDLE_US 200u   /* default group_poll wait once a poll found nothing to do */
#define TCP_PDU_BUDGET 64u /* PDUs received per connection per poll (default) */

enum {
	KIND_LISTENER = 1,
	KIND_CONN = 2
};

enum req_state {
	REQ_FREE = 0,
	REQ_RX,       /* the capsule (and its in-capsule data) is being received */
	REQ_WAIT_BUF, /* waiting for data buffers */
	REQ_H2C,      /* R2T sent, H2CData expected */
	REQ_EXEC,     /* in the NVMe-oF layer / controller core */
	REQ_TX,       /* completion queued for sending */
};

struct tcp_conn;
struct tcp_pg;

struct tcp_req {
	struct tcp_conn *conn;
	uint16_t ttag; /* index in conn->reqs */
	uint8_t state;
	uint8_t dir;       /* 0 none, 1 host to controller, 2 controller to host */
	uint8_t ddgst_err; /* a data digest error in its data */
	uint8_t icd;       /* data came in the capsule */
	uint16_t status;   /* a status decided before execution (0: none) */
	struct ferry_nvme_sqe sqe;
	uint32_t len;      /* transfer length */
	uint32_t h2c_next; /* next DATAO expected */
	uint32_t nseg;
	struct iovec *iov; /* [segs]: the data buffers */
	struct ferry_mem mem;
	uint32_t tx_pending;
	struct tcp_req *next;
};

struct tcp_tx {
	uint8_t hdr[FERRY_NVME_TCP_TX_HDR_MAX];
	uint8_t ddgst[4];
	struct iovec *iov;
	uint32_t iovcnt, idx;
	size_t off;
	struct tcp_req *req; /* released when this PDU left (NULL: a connection PDU) */
	struct tcp_tx *next;
};

struct tcp_listener {
	int kind;
	struct ferry_hal_sock *sock;
	char want[64];  /* the address as given */
	char bound[64]; /* the address bound (port 0 resolved) */
	uint16_t portid;
};

struct tcp_conn {
	int kind;
	struct tcp_tr *tr;
	struct tcp_pg *pg;
	struct ferry_hal_sock *sock;
	struct nvmf_qpair qp;
	struct ferry_nvme_tcp_params prm;
	struct ferry_nvme_tcp_rx rx;
	uint8_t *stage;
	uint32_t stage_len, stage_off;
	struct tcp_req *reqs;
	uint32_t nreqs;
	struct tcp_req *free_reqs;
	struct tcp_req *cur;                   /* request whose PDU is being received */
	struct iovec *rx_iov;                  /* destination slice of the current data PDU */
	struct tcp_req *wait_head, *wait_tail; /* REQ_WAIT_BUF, in order */
	struct tcp_tx *txs, *tx_free, *tx_head, *tx_tail;
	uint32_t ntx_free;
	struct iovec *tx_iov_mem;
	uint32_t busy; /* requests not free */
	uint32_t held; /* data buffers its requests hold (bounded by tr->conn_bufs, see req_bufs) */
	int closed, fini, want_out, icd_set, small_rd;
	int ic_done;        /* ICReq received and answered */
	uint64_t born_ns;   /* accept time (the ICReq deadline counts from it) */
	uint8_t term[FERRY_NVME_TCP_TERM_MAX_PLEN];
	struct ferry_tcp_conn_stats st;
	struct tcp_conn *next, *prev;
};

struct tcp_pg {
	struct pg_core core;
	struct tcp_tr *tr;
	struct ferry_hal_sock_group *group;
	struct tcp_conn *conns;
	uint8_t *buf_mem;
	void **buf_free;
	uint32_t nfree, nbufs;
	int idle;
	uint32_t rounds;               /* pg_run() calls (ICReq deadlines checked every 64) */
	int chan_tried;                /* the accel channel is created on the group's thread */
	struct ferry_accel_chan *chan; /* NULL: accel=0, or its creation failed */
	struct ferry_hal_sock_event ev[TCP_EVENTS];
};

struct tcp_tr {
	struct ferry_transport *t;
	struct ferry_device *dev;
	int own_dev;
	const struct ferry_hal_nic_ops *nic;
	struct ferry_hal_nic_info info;
	struct nvmf_tgt *tgt;
	uint32_t depth, ioq, icd, max_io, maxh2c, max_r2t, nbufs, segs, accel;
	uint32_t conn_bufs; /* buffers one connection may hold for R2T and read data */
	uint32_t idle_us; /* group_poll wait of a poll that found nothing to do (0: spin) */
	uint32_t max_conns;       /* connections open at once; more are closed at accept */
	uint32_t icreq_timeout_ms; /* a connection without ICReq that long is closed */
	uint64_t refused;         /* connections closed at accept for max_conns */
	uint32_t c2h; /* C2HData payload: MAXH2CDATA, at least max_io / 16 (bounds the PDUs) */
	pthread_mutex_t lock; /* lists of connections, groups and listeners; totals */
	struct tcp_pg pg0;    /* the instance's own polling (and the listeners) */
	struct tcp_pg *pgs[TCP_MAX_PG];
	uint32_t npgs, rr;
	struct tcp_listener *lst[TCP_MAX_LISTEN];
	uint32_t nlst;
	uint64_t accepted, closed, pdu_errors;
	uint32_t conns;
};

static const struct ferry_transport_ops tcp_transport_ops;
static struct log_ratelimit tcp_rl;

#define TCP_HOST_ERR(c, fmt, ...)                                                                  \
	do {                                                                                       \
		ferry_set_last_error(COMP, "%s: " fmt, (c)->st.peer, __VA_ARGS__);                 \
		if (log_ratelimit(&tcp_rl, NULL))                                                  \
			ferry_log(FERRY_LOG_WARN, COMP, "%s: " fmt, (c)->st.peer, __VA_ARGS__);    \
	} while (0)

/* ---- buffers ------------------------------------------------------------------------------ */

static int pool_init(struct tcp_pg *pg, uint32_t n)
{
	pg->buf_mem = malloc((size_t)n * TCP_CHUNK);
	pg->buf_free = malloc((size_t)n * sizeof(void *));
	if (!pg->buf_mem || !pg->buf_free) {
		free(pg->buf_mem);
		free(pg->buf_free);
		pg->buf_mem = NULL;
		pg->buf_free = NULL;
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++)
		pg->buf_free[i] = pg->buf_mem + (size_t)(n - 1 - i) * TCP_CHUNK;
	pg->nfree = pg->nbufs = n;
	return 0;
}

/* Gives @p r buffers for its transfer; -ENOMEM when the pool is short (the request waits).
 * @p capped: an R2T write or a read, whose buffers the host can keep as long as it likes (by
 * never sending the data, or never reading its socket). Without a bound one connection took
 * the whole group's pool that way (127 R2T writes of 128 KiB on each of two queues) and every
 * other connection of the group got Namespace Not Ready on its Connect, or waited for ever:
 * such a request of a connection holding its share already waits. In-capsule data is not
 * capped (at most the queue's entries times the in-capsule size, executed at once). */
static int req_bufs(struct tcp_req *r, int capped)
{
	struct tcp_conn *c = r->conn;
	struct tcp_pg *pg = c->pg;
	uint32_t n = (r->len + TCP_CHUNK - 1) / TCP_CHUNK;
	if (n > pg->nfree || (capped && c->held && c->held + n > c->tr->conn_bufs))
		return -ENOMEM;
	c->held += n;
	uint32_t left = r->len;
	for (uint32_t i = 0; i < n; i++) {
		r->iov[i].iov_base = pg->buf_free[--pg->nfree];
		r->iov[i].iov_len = FERRY_MIN(left, TCP_CHUNK);
		left -= (uint32_t)r->iov[i].iov_len;
	}
	r->nseg = n;
	return 0;
}

static void conn_kick_waiters(struct tcp_conn *c);

static void req_free(struct tcp_req *r)
{
	struct tcp_conn *c = r->conn;
	struct tcp_pg *pg = c->pg;
	for (uint32_t i = 0; i < r->nseg; i++)
		pg->buf_free[pg->nfree++] = r->iov[i].iov_base;
	c->held -= r->nseg;
	r->nseg = 0;
	r->state = REQ_FREE;
	r->next = c->free_reqs;
	c->free_reqs = r;
	c->busy--;
	if (c->wait_head && !c->closed)
		conn_kick_waiters(c);
}

/* ---- sending ------------------------------------------------------------------------------ */

static struct tcp_tx *tx_get(struct tcp_conn *c)
{
	struct tcp_tx *tx = c->tx_free;
	if (tx) {
		c->ntx_free--;
		c->tx_free = tx->next;
		tx->next = NULL;
		tx->idx = 0;
		tx->off = 0;
		tx->req = NULL;
	}
	return tx;
}

static void tx_queue(struct tcp_conn *c, struct tcp_tx *tx)
{
	if (c->tx_tail)
		c->tx_tail->next = tx;
	else
		c->tx_head = tx;
	c->tx_tail = tx;
}

static void tx_done(struct tcp_conn *c, struct tcp_tx *tx)
{
	struct tcp_req *r = tx->req;
	tx->next = c->tx_free;
	c->tx_free = tx;
	c->ntx_free++;
	if (r && --r->tx_pending == 0)
		req_free(r);
}

static void conn_close(struct tcp_conn *c, const char *why);

static void set_want_out(struct tcp_conn *c, int on)
{
	if (c->want_out == on || !c->tr->nic->group_want_out || !c->sock)
		return;
	c->want_out = on;
	c->tr->nic->group_want_out(c->pg->group, c->sock, on);
}

/* Sends what is queued: one sendv per TCP_SEND_IOV iovecs; stops when the socket is full. */
static void conn_flush(struct tcp_conn *c)
{
	struct iovec iov[TCP_SEND_IOV];
	uint32_t max = FERRY_MIN(TCP_SEND_IOV,
				 c->tr->info.max_send_iov ? c->tr->info.max_send_iov : 16u);
	while (c->tx_head && !c->closed) {
		uint32_t n = 0;
		for (struct tcp_tx *tx = c->tx_head; tx && n < max; tx = tx->next) {
			for (uint32_t i = tx->idx; i < tx->iovcnt && n < max; i++) {
				iov[n] = tx->iov[i];
				if (i == tx->idx) {
					iov[n].iov_base = (uint8_t *)iov[n].iov_base + tx->off;
					iov[n].iov_len -= tx->off;
				}
				n++;
			}
		}
		ssize_t s = c->tr->nic->sendv(c->sock, iov, n);
		c->st.send_calls++;
		if (s == -EAGAIN) {
			set_want_out(c, 1);
			return;
		}
		if (s < 0) {
			conn_close(c, "send failed");
			return;
		}
		c->st.bytes_out += (uint64_t)s;
		size_t left = (size_t)s;
		while (left && c->tx_head) {
			struct tcp_tx *tx = c->tx_head;
			while (left && tx->idx < tx->iovcnt) {
				size_t room = tx->iov[tx->idx].iov_len - tx->off;
				if (left >= room) {
					left -= room;
					tx->idx++;
					tx->off = 0;
				} else {
					tx->off += left;
					left = 0;
				}
			}
			/* skip empty trailing iovecs */
			while (tx->idx < tx->iovcnt && tx->iov[tx->idx].iov_len == 0)
				tx->idx++;
			if (tx->idx < tx->iovcnt)
				break;
			c->tx_head = tx->next;
			if (!c->tx_head)
				c->tx_tail = NULL;
			tx_done(c, tx);
		}
	}
	set_want_out(c, 0);
}

/* Queues a PDU: @p hlen header bytes in tx->hdr, then @p nseg data segments of @p r from
 * byte @p off for @p len bytes, then the data digest when on. */
static void tx_data(struct tcp_conn *c, struct tcp_tx *tx, size_t hlen, struct tcp_req *r,
		    uint32_t off, uint32_t len)
{
	uint32_t n = 0;
	tx->iov[n].iov_base = tx->hdr;
	tx->iov[n++].iov_len = hlen;
	uint32_t first = n;
	if (len) {
		uint32_t seg = off / TCP_CHUNK, so = off % TCP_CHUNK, left = len;
		while (left) {
			size_t take = FERRY_MIN((size_t)left, r->iov[seg].iov_len - so);
			tx->iov[n].iov_base = (uint8_t *)r->iov[seg].iov_base + so;
			tx->iov[n++].iov_len = take;
			left -= (uint32_t)take;
			seg++;
			so = 0;
		}
		if (c->prm.ddgst) {
			uint32_t crc = ferry_crc32c_iov(0, &tx->iov[first], n - first);
			memcpy(tx->ddgst, &crc, 4);
			tx->iov[n].iov_base = tx->ddgst;
			tx->iov[n++].iov_len = 4;
		}
	}
	tx->iovcnt = n;
	tx->req = r;
	if (r)
		r->tx_pending++;
	tx_queue(c, tx);
}

/* C2HTermReq with @p fes / @p fei and the offending header, then close. */
static void conn_term(struct tcp_conn *c, uint16_t fes, uint32_t fei)
{
	size_t hl = 0;
	const void *h = ferry_nvme_tcp_rx_err_hdr(&c->rx, &hl);
	TCP_HOST_ERR(c, "malformed PDU: %s (FEI %u): C2HTermReq sent, connection closed",
		     ferry_nvme_tcp_fes_str(fes), fei);
	c->st.pdu_errors++;
	pthread_mutex_lock(&c->tr->lock);
	c->tr->pdu_errors++;
	pthread_mutex_unlock(&c->tr->lock);
	size_t len = ferry_nvme_tcp_build_term(c->term, FERRY_NVME_TCP_C2H_TERM, fes, fei, h, hl);
	/* Best effort, ahead of anything queued: the connection is over. */
	struct iovec iov = {c->term, len};
	ssize_t s = c->tr->nic->sendv(c->sock, &iov, 1);
	if (s > 0)
		c->st.bytes_out += (uint64_t)s;
	conn_close(c, "malformed PDU");
}

/* ---- completions --------------------------------------------------------------------------- */

static void req_complete(struct tcp_req *r, const struct ferry_nvme_cqe *cqe)
{
	struct tcp_conn *c = r->conn;
	if (c->closed) { /* the host is gone: the completion is dropped */
		req_free(r);
		return;
	}
	r->state = REQ_TX;
	uint16_t status = (uint16_t)(cqe->status >> 1);
	uint32_t chunk = c->tr->c2h;
	int data = r->dir == 2 && r->len && status == 0;
	uint32_t need = data ? (r->len + chunk - 1) / chunk : 1;
	if (c->ntx_free < need) { /* cannot happen: the pool is sized for the worst case */
		conn_close(c, "send queue exhausted");
		req_free(r);
		return;
	}
	if (data) {
		/* Read data: C2HData PDUs; the last one says SUCCESS, so no CapsuleResp. */
		for (uint32_t off = 0; off < r->len;) {
			uint32_t l = FERRY_MIN(chunk, r->len - off);
			int last = off + l == r->len;
			struct tcp_tx *tx = tx_get(c);
			size_t hl = ferry_nvme_tcp_build_data(
				tx->hdr, &c->prm, FERRY_NVME_TCP_C2H_DATA, r->sqe.cid, 0, off, l,
				last ? FERRY_NVME_TCP_F_LAST_PDU | FERRY_NVME_TCP_F_SUCCESS : 0);
			tx_data(c, tx, hl, r, off, l);
			c->st.c2h_pdus++;
			off += l;
		}
	} else {
		struct tcp_tx *tx = tx_get(c);
		size_t hl = ferry_nvme_tcp_build_resp(tx->hdr, &c->prm, cqe);
		tx_data(c, tx, hl, r, 0, 0);
	}
	/* After a successful Connect the queue's in-capsule data limit is known. */
	if (!c->icd_set && c->qp.ctrlr) {
		c->icd_set = 1;
		struct ferry_nvme_tcp_params p = c->prm;
		p.max_icd = c->qp.qid == 0 ? FERRY_MAX(TCP_ADMIN_ICD, c->tr->icd) : c->tr->icd;
		if (ferry_nvme_tcp_rx_set_params(&c->rx, &p) == 0)
			c->prm = p;
	}
}

static int tcp_send_completion(struct ferry_transport *t, struct ferry_nvme_ctrlr *ctrlr,
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

static void req_fail(struct tcp_req *r, uint16_t status)
{
	struct ferry_nvme_cqe cqe = {
		.sqid = r->conn->qp.qid,
		.cid = r->sqe.cid,
		.status = (uint16_t)(status << 1),
	};
	req_complete(r, &cqe);
}

/* ---- commands ------------------------------------------------------------------------------ */

static void req_exec(struct tcp_req *r)
{
	struct tcp_conn *c = r->conn;
	r->state = REQ_EXEC;
	if (r->ddgst_err) {
		/* NVMe/TCP 1.0 7.4.6.2: data digest error → Transient Transport Error. */
		req_fail(r, FERRY_NVME_STATUS(FERRY_NVME_SCT_GENERIC, 0x22));
		return;
	}
	r->mem.domain = NULL;
	r->mem.domain_ctx = NULL;
	r->mem.iov = r->iov;
	r->mem.iovcnt = r->nseg;
	uint32_t len = r->len;
	if (r->sqe.opcode == FERRY_NVME_CMD_DSM && c->qp.qid && len) {
		/* Linux sends Dataset Management with a 4096-byte range buffer whatever the number
		 * of ranges (an SGL longer than the data, as nvmet accepts): the controller gets
		 * exactly the (NR + 1) * 16 bytes of ranges. The last segment is trimmed; the
		 * buffers are returned by r->nseg, not by the lengths. */
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

/* The request has its buffers: ask for write data or execute. */
static void req_go(struct tcp_req *r)
{
	struct tcp_conn *c = r->conn;
	if (r->dir == 1 && !r->icd) {
		struct tcp_tx *tx = tx_get(c);
		if (!tx) {
			conn_close(c, "send queue exhausted");
			return;
		}
		r->state = REQ_H2C;
		r->h2c_next = 0;
		size_t hl = ferry_nvme_tcp_build_r2t(tx->hdr, &c->prm, r->sqe.cid, r->ttag, 0,
						     r->len);
		tx_data(c, tx, hl, NULL, 0, 0);
		c->st.r2ts++;
		c->small_rd = 1; /* H2CData comes next: its payload goes straight in */
		return;
	}
	req_exec(r);
}

static void conn_kick_waiters(struct tcp_conn *c)
{
	while (c->wait_head) {
		struct tcp_req *r = c->wait_head;
		if (req_bufs(r, 1))
			return;
		c->wait_head = r->next;
		if (!c->wait_head)
			c->wait_tail = NULL;
		r->next = NULL;
		req_go(r);
	}
}

/* The capsule is in (and its in-capsule data): start the command. */
static void cmd_done(struct tcp_conn *c, struct tcp_req *r)
{
	if (r->status) {
		req_fail(r, r->status);
		return;
	}
	if (r->icd || r->len == 0) {
		req_exec(r);
		return;
	}
	if (req_bufs(r, 1)) {
		r->state = REQ_WAIT_BUF;
		r->next = NULL;
		if (c->wait_tail)
			c->wait_tail->next = r;
		else
			c->wait_head = r;
		c->wait_tail = r;
		return;
	}
	req_go(r);
}

/* A per-command error in a header: the TermReq names it, the connection ends. */
static int hdr_fail(struct tcp_conn *c, uint16_t fes, uint32_t fei)
{
	ferry_nvme_tcp_rx_fail(&c->rx, fes, fei);
	conn_term(c, fes, fei);
	return -1;
}

/* HEADER of a CapsuleCmd: take a request, check the data pointer, say where ICD goes. */
static int cmd_header(struct tcp_conn *c, const struct ferry_nvme_tcp_ch *ch, uint32_t icd_len)
{
	const struct ferry_nvme_tcp_cmd *pdu = (const void *)ch;
	struct tcp_req *r = c->free_reqs;
	if (!r) {
		/* The host submits beyond its queue size. */
		TCP_HOST_ERR(c, "command beyond the queue's %u entries", c->nreqs);
		return hdr_fail(c, FERRY_NVME_TCP_FES_PDU_SEQUENCE, 0);
	}
	c->free_reqs = r->next;
	r->next = NULL;
	c->busy++;
	c->st.cmds++;
	r->state = REQ_RX;
	r->sqe = pdu->sqe;
	r->status = 0;
	r->ddgst_err = 0;
	r->icd = 0;
	r->nseg = 0;
	r->tx_pending = 0;
	r->len = 0;
	const struct ferry_nvme_sgl_desc *sgl = &r->sqe.dptr.sgl;
	uint8_t op = r->sqe.opcode == FERRY_NVMF_OPC_FABRICS
			     ? ((const struct ferry_nvmf_cmd *)(const void *)&r->sqe)->fctype
			     : r->sqe.opcode;
	r->dir = op & 3;
	uint16_t bad = 0;
	if (icd_len) {
		if (sgl->id != FERRY_NVME_TCP_SGL_ICD)
			bad = FERRY_NVME_SC_SGL_TYPE;
		else if (sgl->address != 0)
			bad = FERRY_NVME_SC_SGL_OFFSET;
		else if (sgl->length != icd_len || r->dir != 1)
			bad = FERRY_NVME_SC_DATA_SGL_LEN;
		else
			r->len = icd_len;
	} else if (sgl->length) {
		if (sgl->id != FERRY_NVME_TCP_SGL_TRANSPORT)
			bad = FERRY_NVME_SC_SGL_TYPE;
		else if (r->dir == 0 || r->dir == 3)
			bad = FERRY_NVME_SC_INVALID_FIELD;
		else if (sgl->length > c->tr->max_io)
			bad = FERRY_NVME_SC_DATA_SGL_LEN;
		else
			r->len = sgl->length;
	}
	if (bad) {
		r->status = FERRY_NVME_STATUS(FERRY_NVME_SCT_GENERIC, bad) | FERRY_NVME_STATUS_DNR;
		r->len = 0;
	}
	c->cur = r;
	if (icd_len) {
		if (!bad && req_bufs(r, 0) == 0) {
			r->icd = 1;
			return ferry_nvme_tcp_rx_set_dest(&c->rx, r->iov, r->nseg) ? -1 : 0;
		}
		if (!bad) /* no buffer free: the host may retry */
			r->status = FERRY_NVME_STATUS(FERRY_NVME_SCT_GENERIC,
						      FERRY_NVME_SC_NS_NOT_READY);
		r->len = 0;
		return ferry_nvme_tcp_rx_set_dest(&c->rx, NULL, 0) ? -1 : 0;
	}
	return 0;
}

/* HEADER of an H2CData: the per-command checks the codec cannot make. */
static int h2c_header(struct tcp_conn *c, const struct ferry_nvme_tcp_ch *ch, uint32_t dlen)
{
	const struct ferry_nvme_tcp_data *d = (const void *)ch;
	c->st.h2c_pdus++;
	struct tcp_req *r = d->ttag < c->nreqs ? &c->reqs[d->ttag] : NULL;
	if (!r || r->state != REQ_H2C || r->sqe.cid != d->cccid) {
		/* Which field is wrong: a CCCID no command has, or a TTAG of no R2T of it
		 * (the scan is on the error path only). */
		int known = 0;
		for (uint32_t i = 0; i < c->nreqs && !known; i++)
			known = c->reqs[i].state == REQ_H2C && c->reqs[i].sqe.cid == d->cccid;
		if (!known) {
			TCP_HOST_ERR(c, "H2CData for CCCID %u, no command waits for data",
				     d->cccid);
			return hdr_fail(c, FERRY_NVME_TCP_FES_INVALID_HEADER,
					offsetof(struct ferry_nvme_tcp_data, cccid));
		}
		TCP_HOST_ERR(c, "H2CData TTAG %u names no R2T of CCCID %u", d->ttag, d->cccid);
		return hdr_fail(c, FERRY_NVME_TCP_FES_INVALID_HEADER,
				offsetof(struct ferry_nvme_tcp_data, ttag));
	}
	if (d->datao != r->h2c_next || (uint64_t)d->datao + dlen > r->len) {
		TCP_HOST_ERR(c, "H2CData DATAO %u DATAL %u: expected offset %u of %u", d->datao,
			     dlen, r->h2c_next, r->len);
		return hdr_fail(c, FERRY_NVME_TCP_FES_DATA_OUT_OF_RANGE,
				d->datao != r->h2c_next
					? offsetof(struct ferry_nvme_tcp_data, datao)
					: offsetof(struct ferry_nvme_tcp_data, datal));
	}
	int last = d->datao + dlen == r->len;
	if (!!(ch->flags & FERRY_NVME_TCP_F_LAST_PDU) != last) {
		TCP_HOST_ERR(c, "H2CData LAST_PDU %s at offset %u of %u",
			     last ? "missing" : "early", d->datao + dlen, r->len);
		return hdr_fail(c, FERRY_NVME_TCP_FES_INVALID_HEADER,
				offsetof(struct ferry_nvme_tcp_ch, flags));
	}
	/* Destination: the slice [datao, datao + dlen) of the request's buffers. */
	uint32_t seg = d->datao / TCP_CHUNK, so = d->datao % TCP_CHUNK, left = dlen, n = 0;
	while (left) {
		size_t take = FERRY_MIN((size_t)left, r->iov[seg].iov_len - so);
		c->rx_iov[n].iov_base = (uint8_t *)r->iov[seg].iov_base + so;
		c->rx_iov[n++].iov_len = take;
		left -= (uint32_t)take;
		seg++;
		so = 0;
	}
	r->h2c_next += dlen;
	c->cur = r;
	return ferry_nvme_tcp_rx_set_dest(&c->rx, c->rx_iov, n) ? -1 : 0;
}

/* ICReq received: answer and install the negotiated parameters. */
static int icreq_done(struct tcp_conn *c, const struct ferry_nvme_tcp_ch *ch)
{
	const struct ferry_nvme_tcp_icreq *ic = (const void *)ch;
	struct tcp_tx *tx = tx_get(c);
	if (!tx)
		return -1;
	uint8_t dgst = ic->dgst & (FERRY_NVME_TCP_DGST_HDGST | FERRY_NVME_TCP_DGST_DDGST);
	ferry_nvme_tcp_build_icresp(tx->hdr, 0, dgst, c->tr->maxh2c);
	tx_data(c, tx, 128, NULL, 0, 0);
	c->prm.hdgst = !!(dgst & FERRY_NVME_TCP_DGST_HDGST);
	c->prm.ddgst = !!(dgst & FERRY_NVME_TCP_DGST_DDGST);
	c->prm.hpda = ic->hpda;
	c->prm.cpda = 0;
	c->ic_done = 1;
	return ferry_nvme_tcp_rx_set_params(&c->rx, &c->prm) ? -1 : 0;
}

/* One event of the receive machine. Returns -1 when the connection ended. */
static int conn_event(struct tcp_conn *c, const struct ferry_nvme_tcp_rx_event *ev)
{
	switch (ev->type) {
	case FERRY_NVME_TCP_RX_NONE:
		return 0;
	case FERRY_NVME_TCP_RX_ERROR:
		if (ev->fes == FERRY_NVME_TCP_FES_HDGST)
			c->st.hdgst_errors++;
		conn_term(c, ev->fes, ev->fei);
		return -1;
	case FERRY_NVME_TCP_RX_HEADER: {
		const struct ferry_nvme_tcp_ch *ch = ev->hdr;
		int rc = 0;
		if (ch->pdu_type == FERRY_NVME_TCP_CAPSULE_CMD)
			rc = cmd_header(c, ch, ev->data_len);
		else if (ch->pdu_type == FERRY_NVME_TCP_H2C_DATA)
			rc = h2c_header(c, ch, ev->data_len);
		else if (ev->data_len)
			rc = ferry_nvme_tcp_rx_set_dest(&c->rx, NULL, 0);
		if (rc) {
			/* a TermReq went already, or a refused destination (a bug): close */
			conn_close(c, "receive state");
			return -1;
		}
		return 0;
	}
	case FERRY_NVME_TCP_RX_DONE: {
		const struct ferry_nvme_tcp_ch *ch = ev->hdr;
		struct tcp_req *r = c->cur;
		c->small_rd = ev->data_len >= 2048;
		switch (ch->pdu_type) {
		case FERRY_NVME_TCP_ICREQ:
			if (icreq_done(c, ch)) {
				conn_close(c, "ICResp");
				return -1;
			}
			return 0;
		case FERRY_NVME_TCP_H2C_TERM: {
			const struct ferry_nvme_tcp_term *tr = (const void *)ch;
			TCP_HOST_ERR(c, "H2CTermReq from the host: %s (FEI %u)",
				     ferry_nvme_tcp_fes_str(tr->fes), tr->fei);
			conn_close(c, "H2CTermReq");
			return -1;
		}
		case FERRY_NVME_TCP_CAPSULE_CMD:
			/* no HEADER event for a capsule without data */
			if (ev->data_len == 0 && cmd_header(c, ch, 0))
				return -1;
			r = c->cur;
			c->cur = NULL;
			if (ev->ddgst_error) {
				c->st.ddgst_errors++;
				r->ddgst_err = 1;
			}
			cmd_done(c, r);
			return c->closed ? -1 : 0;
		case FERRY_NVME_TCP_H2C_DATA:
			c->cur = NULL;
			if (ev->ddgst_error) {
				c->st.ddgst_errors++;
				r->ddgst_err = 1;
			}
			if (r->h2c_next == r->len)
				req_exec(r);
			return c->closed ? -1 : 0;
		default:
			return 0;
		}
	}
	}
	return 0;
}

/* Is @p p inside the connection's receive machine (its header/padding/digest buffers)? */
static int in_machine(const struct tcp_conn *c, const void *p)
{
	const uint8_t *b = (const uint8_t *)&c->rx;
	return (const uint8_t *)p >= b && (const uint8_t *)p < b + sizeof(c->rx);
}

/* Receives and handles up to @p budget PDUs. Returns work done. */
static int conn_rx(struct tcp_conn *c, uint32_t budget)
{
	const struct ferry_hal_nic_ops *nic = c->tr->nic;
	int work = 0, drained = 0;
	uint32_t pdus = 0;
	while (!c->closed && pdus < budget) {
		struct ferry_nvme_tcp_rx_event ev;
		if (c->stage_off >= c->stage_len && drained)
			break; /* the last read was short: the socket is empty (saves an EAGAIN) */
		if (c->stage_off < c->stage_len) {
			size_t used = 0;
			if (ferry_nvme_tcp_rx_feed(&c->rx, c->stage + c->stage_off,
						   c->stage_len - c->stage_off, &used, &ev)) {
				conn_close(c, "receive state");
				break;
			}
			c->stage_off += (uint32_t)used;
			if (ev.type == FERRY_NVME_TCP_RX_DONE)
				pdus++;
			if (conn_event(c, &ev))
				break;
			work++;
			continue;
		}
		struct iovec iov[TCP_RECV_IOV];
		uint32_t n = ferry_nvme_tcp_rx_next(&c->rx, iov, TCP_RECV_IOV);
		if (n == 0) {
			conn_close(c, "receive state");
			break;
		}
		uint32_t flags = 0;
		ssize_t got;
		size_t asked = 0;
		int direct = !in_machine(c, iov[0].iov_base);
		if (direct) {
			for (uint32_t i = 0; i < n; i++)
				asked += iov[i].iov_len;
			got = nic->recvv(c->sock, iov, n, &flags);
		} else {
			/* After a PDU with a large payload the next one is likely another: read
			 * just an H2CData header so that its payload goes straight to the
			 * buffers; after small PDUs read a big chunk (one call for many). */
			size_t want = c->small_rd
					      ? FERRY_NVME_TCP_HLEN_DATA +
							(c->prm.hdgst ? FERRY_NVME_TCP_DIGEST_LEN
								      : 0)
					      : TCP_STAGE;
			struct iovec s = {c->stage, want};
			asked = want;
			got = nic->recvv(c->sock, &s, 1, &flags);
		}
		c->st.recv_calls++;
		if (got == -EAGAIN)
			break;
		if (got <= 0) {
			conn_close(c, got == 0 ? "closed by the host" : "receive failed");
			break;
		}
		c->st.bytes_in += (uint64_t)got;
		drained = (size_t)got < asked;
		work++;
		if (!direct) {
			c->stage_len = (uint32_t)got;
			c->stage_off = 0;
			continue;
		}
		if (ferry_nvme_tcp_rx_advance(&c->rx, (size_t)got,
					      (flags & FERRY_HAL_NIC_RX_F_PLACED)
						      ? FERRY_NVME_TCP_RX_F_PLACED
						      : 0,
					      &ev)) {
			conn_close(c, "receive state");
			break;
		}
		if (ev.type == FERRY_NVME_TCP_RX_DONE)
			pdus++;
		if (conn_event(c, &ev))
			break;
	}
	c->st.rx_placed = c->rx.stats.placed_bytes;
	c->st.rx_copied = c->rx.stats.copied_bytes;
	return work;
}

/* ---- connections --------------------------------------------------------------------------- */

/* The memory of a connection (its sockets and registrations are gone). */
static void conn_mem_free(struct tcp_conn *c)
{
	if (c->reqs)
		for (uint32_t i = 0; i < c->nreqs; i++)
			free(c->reqs[i].iov);
	free(c->reqs);
	free(c->txs);
	free(c->tx_iov_mem);
	free(c->rx_iov);
	free(c->stage);
	free(c);
}

static void conn_free(struct tcp_conn *c)
{
	struct tcp_tr *tr = c->tr;
	pthread_mutex_lock(&tr->lock);
	if (c->prev)
		c->prev->next = c->next;
	else if (c->pg->conns == c)
		c->pg->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	tr->conns--;
	tr->closed++;
	pthread_mutex_unlock(&tr->lock);
	conn_mem_free(c);
}

static void conn_close(struct tcp_conn *c, const char *why)
{
	if (c->closed)
		return;
	FERRY_DBG(COMP, "%s: connection closed: %s", c->st.peer, why);
	c->closed = 1;
	c->qp.closing = 1;
	c->tr->nic->group_remove(c->pg->group, c->sock);
	c->tr->nic->close(c->sock);
	c->sock = NULL;
	/* What was queued is dropped; requests not executing are freed now, those in the
	 * NVMe-oF layer or the controller when their completion comes. */
	while (c->tx_head) {
		struct tcp_tx *tx = c->tx_head;
		c->tx_head = tx->next;
		tx_done(c, tx);
	}
	c->tx_tail = NULL;
	c->wait_head = c->wait_tail = NULL;
	for (uint32_t i = 0; i < c->nreqs; i++) {
		struct tcp_req *r = &c->reqs[i];
		if (r->state == REQ_RX || r->state == REQ_WAIT_BUF || r->state == REQ_H2C)
			req_free(r);
	}
	c->cur = NULL;
}

/* The connection is closed and nothing of it executes: hand it to the NVMe-oF layer. */
static void conn_reap(struct tcp_conn *c)
{
	if (!c->closed || c->fini || c->busy || c->qp.connecting)
		return;
	c->fini = 1;
	nvmf_tgt_qpair_fini(&c->qp);
}

static void nvmf_close(struct nvmf_qpair *qp)
{
	struct tcp_conn *c = qp->conn;
	if (c->closed)
		return;
	conn_flush(c); /* a Disconnect's response goes first */
	conn_close(c, "association ended");
}

static void nvmf_release(struct nvmf_qpair *qp)
{
	conn_free(qp->conn);
}

static const struct nvmf_tgt_ops tcp_nvmf_ops = {
	.complete = nvmf_complete,
	.close = nvmf_close,
	.release = nvmf_release,
};

static struct tcp_conn *conn_create(struct tcp_tr *tr, struct ferry_hal_sock *sock,
				    const struct tcp_listener *l)
{
	struct tcp_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->kind = KIND_CONN;
	c->tr = tr;
	c->sock = sock;
	c->nreqs = FERRY_MAX(tr->depth, TCP_ADMIN_DEPTH);
	/* PDUs a request may have queued at once: its C2HData PDUs and the response; iovecs of
	 * one PDU: header, the buffers of one C2HData payload, digest. */
	uint32_t per = tr->max_io / tr->c2h + 2;
	uint32_t ntx = c->nreqs * per + 4;
	uint32_t tiov = FERRY_MIN(tr->segs, tr->c2h / TCP_CHUNK + 2) + 3;
	c->stage = malloc(TCP_STAGE);
	c->reqs = calloc(c->nreqs, sizeof(*c->reqs));
	c->txs = calloc(ntx, sizeof(*c->txs));
	c->tx_iov_mem = calloc((size_t)ntx * tiov, sizeof(struct iovec));
	c->rx_iov = calloc(tr->segs + 1, sizeof(struct iovec));
	if (!c->stage || !c->reqs || !c->txs || !c->tx_iov_mem || !c->rx_iov)
		goto err;
	for (uint32_t i = 0; i < c->nreqs; i++) {
		struct tcp_req *r = &c->reqs[i];
		r->conn = c;
		r->ttag = (uint16_t)i;
		r->iov = calloc(tr->segs, sizeof(struct iovec));
		if (!r->iov)
			goto err;
		r->next = c->free_reqs;
		c->free_reqs = r;
	}
	for (uint32_t i = 0; i < ntx; i++) {
		c->txs[i].iov = c->tx_iov_mem + (size_t)i * tiov;
		c->txs[i].next = c->tx_free;
		c->tx_free = &c->txs[i];
		c->ntx_free++;
	}
	c->prm.role = FERRY_NVME_TCP_ROLE_CONTROLLER;
	c->prm.maxh2cdata = tr->maxh2c;
	c->prm.max_icd = FERRY_MAX(TCP_ADMIN_ICD, tr->icd);
	if (ferry_nvme_tcp_rx_init(&c->rx, &c->prm))
		goto err;
	c->st.size = sizeof(c->st);
	c->st.cntlid = FERRY_NVMF_CNTLID_DYNAMIC;
	if (tr->nic->get_addr(sock, 1, c->st.peer, sizeof(c->st.peer)))
		snprintf(c->st.peer, sizeof(c->st.peer), "?");
	snprintf(c->st.local, sizeof(c->st.local), "%s", l->bound);
	return c;
err:
	conn_mem_free(c);
	return NULL;
}

/* On the group's thread: the connection joins the group. */
static void conn_adopt(void *arg)
{
	struct tcp_conn *c = arg;
	struct tcp_tr *tr = c->tr;
	struct tcp_pg *pg = c->pg;
	nvmf_tgt_qpair_init(&c->qp, tr->tgt, &pg->core, c);
	c->qp.chan = pg->chan;
	c->st.pg = pg->core.index;
	int rc = tr->nic->group_add(pg->group, c->sock, c);
	pthread_mutex_lock(&tr->lock);
	c->prev = NULL;
	c->next = pg->conns;
	if (pg->conns)
		pg->conns->prev = c;
	pg->conns = c;
	pthread_mutex_unlock(&tr->lock);
	if (rc) {
		FERRY_ERR(COMP, "%s: cannot add the connection to its group: %s", c->st.peer,
			  ferry_strerror(rc));
		tr->nic->close(c->sock);
		c->sock = NULL;
		c->closed = 1;
		c->qp.closing = 1;
	}
}

static int tcp_accept(struct tcp_tr *tr, struct tcp_listener *l)
{
	int n = 0;
	for (;;) {
		struct ferry_hal_sock *s = NULL;
		int rc = tr->nic->accept(l->sock, &s);
		if (rc)
			return n;
		n++;
		/* Every connection costs its buffers from accept on, before the host said anything:
		 * past max_connections a new one is closed at once (a host opening sockets by the
		 * thousand must not take the memory the others need). */
		pthread_mutex_lock(&tr->lock);
		int full = tr->conns >= tr->max_conns;
		tr->refused += (uint64_t)full;
		pthread_mutex_unlock(&tr->lock);
		if (full) {
			static struct log_ratelimit rl;
			unsigned int dropped = 0;
			if (log_ratelimit(&rl, &dropped))
				FERRY_WARN(COMP, "accept on %s: %u connections open "
					   "(max_connections): a new one is closed%s",
					   l->bound, tr->max_conns,
					   dropped ? " (and earlier ones, not logged)" : "");
			tr->nic->close(s);
			continue;
		}
		struct tcp_conn *c = conn_create(tr, s, l);
		if (!c) {
			FERRY_ERR(COMP, "accept on %s: out of memory, connection refused",
				  l->bound);
			tr->nic->close(s);
			continue;
		}
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		c->born_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
		pthread_mutex_lock(&tr->lock);
		tr->accepted++;
		tr->conns++;
		struct tcp_pg *pg = tr->npgs ? tr->pgs[tr->rr++ % tr->npgs] : &tr->pg0;
		pthread_mutex_unlock(&tr->lock);
		c->pg = pg;
		if (pg == &tr->pg0) {
			conn_adopt(c);
		} else if (pg_post(&pg->core, conn_adopt, c)) {
			pthread_mutex_lock(&tr->lock);
			tr->conns--;
			pthread_mutex_unlock(&tr->lock);
			tr->nic->close(s);
			c->sock = NULL;
			c->pg = NULL;
			conn_mem_free(c); /* not linked anywhere yet */
		}
	}
}

/* ---- poll groups ----------------------------------------------------------------------------- */

static int pg_setup(struct tcp_tr *tr, struct tcp_pg *pg, uint32_t index)
{
	pg->tr = tr;
	int rc = pg_core_init(&pg->core, index);
	if (rc)
		return rc;
	rc = tr->nic->group_create(tr->dev, &pg->group);
	if (rc) {
		pg_core_fini(&pg->core);
		return rc;
	}
	rc = pool_init(pg, tr->nbufs);
	if (rc) {
		tr->nic->group_destroy(pg->group);
		pg_core_fini(&pg->core);
		return rc;
	}
	return 0;
}

static void pg_teardown(struct tcp_tr *tr, struct tcp_pg *pg)
{
	/* Its thread has stopped polling the group (documented): the channel goes here. */
	ferry_accel_chan_destroy(pg->chan);
	pg->chan = NULL;
	tr->nic->group_destroy(pg->group);
	pg_core_fini(&pg->core);
	free(pg->buf_mem);
	free(pg->buf_free);
}

/* Serves the connections of @p pg (and, for pg0, the listeners). */
static int pg_run(struct tcp_tr *tr, struct tcp_pg *pg, uint32_t max)
{
	if (!pg->chan_tried && tr->accel) {
		/* A channel belongs to the thread that creates it: the group's first poll. */
		pg->chan_tried = 1;
		int rc = ferry_accel_chan_create(NULL, NULL, &pg->chan);
		if (rc)
			FERRY_WARN(COMP,
				   "poll group %u: no accel channel (%s): bdevs move the data "
				   "themselves",
				   pg->core.index, ferry_strerror(rc));
	}
	int work = pg_core_drain(&pg->core);
	uint32_t budget = max ? max : TCP_PDU_BUDGET;
	int n = tr->nic->group_poll(pg->group, pg->ev, TCP_EVENTS, pg->idle ? tr->idle_us : 0);
	for (int i = 0; i < n; i++) {
		int *kind = pg->ev[i].ctx;
		if (*kind == KIND_LISTENER) {
			work += tcp_accept(tr, (struct tcp_listener *)(void *)kind);
			continue;
		}
		struct tcp_conn *c = (struct tcp_conn *)(void *)kind;
		if (c->closed)
			continue;
		if (pg->ev[i].events & (FERRY_HAL_SOCK_EV_IN | FERRY_HAL_SOCK_EV_ERR))
			work += conn_rx(c, budget);
		if (!c->closed && c->tx_head)
			conn_flush(c);
	}
	/* ICReq deadlines are seconds: checked (and the clock read) once every 64 rounds. */
	uint64_t now = 0;
	if ((++pg->rounds & 63u) == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	}
	/* I/O queues of this group progress their bdevs here; controllers whose admin queue is
	 * here are polled by the NVMe-oF layer. */
	for (struct tcp_conn *c = pg->conns, *next; c; c = next) {
		next = c->next;
		if (now && !c->closed && !c->ic_done && tr->icreq_timeout_ms &&
		    now - c->born_ns > (uint64_t)tr->icreq_timeout_ms * 1000000ull)
			conn_close(c, "no ICReq within icreq_timeout_ms");
		if (!c->closed && c->qp.ctrlr && c->qp.qid) {
			struct nvmf_qpair *qp = &c->qp;
			int w = nvmf_tgt_qpair_poll(qp, budget);
			if (w > 0)
				work += w;
		} else if (c->closed && c->busy && !c->fini && c->qp.ctrlr && c->qp.qid) {
			/* Commands of a lost connection still execute: their queue is polled until
			 * they finish (nvmf_tgt_qpair_poll() skips a closing queue; unpolled, the
			 * bdev never completed them and connection and controller leaked). */
			int w = nvmf_tgt_qpair_drain(&c->qp, budget);
			if (w > 0)
				work += w;
		}
		/* Buffers another connection returned: req_free() kicks only its own connection's
		 * waiters, so a request waiting here for the pool had no one to wake it (a write
		 * stuck for ever once the pool had been empty). */
		if (!c->closed && c->wait_head) {
			struct tcp_req *w = c->wait_head;
			conn_kick_waiters(c);
			work += c->wait_head != w;
		}
		/* Staged bytes left by the PDU budget: the socket may never report them again. */
		if (!c->closed && c->stage_off < c->stage_len)
			work += conn_rx(c, budget);
		if (!c->closed && c->tx_head)
			conn_flush(c);
		if (c->closed)
			conn_reap(c);
	}
	work += nvmf_pg_poll(tr->tgt, &pg->core);
	work += pg_core_drain(&pg->core);
	pg->idle = work == 0;
	return work;
}

static int tcp_pg_create(struct ferry_transport *t, void **ctx)
{
	struct tcp_tr *tr = ferry_transport_get_ctx(t);
	struct tcp_pg *pg = calloc(1, sizeof(*pg));
	if (!pg)
		return -ENOMEM;
	pthread_mutex_lock(&tr->lock);
	uint32_t idx = tr->npgs;
	pthread_mutex_unlock(&tr->lock);
	if (idx >= TCP_MAX_PG) {
		free(pg);
		FERRY_ERR(COMP, "pg_create: %u poll groups at most", TCP_MAX_PG);
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

static int tcp_pg_poll(struct ferry_transport *t, void *ctx, uint32_t max)
{
	return pg_run(ferry_transport_get_ctx(t), ctx, max);
}

static int tcp_pg_destroy(struct ferry_transport *t, void *ctx)
{
	struct tcp_tr *tr = ferry_transport_get_ctx(t);
	struct tcp_pg *pg = ctx;
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

static const char *const tcp_keys[] = {"max_queue_depth", "max_io_queues", "in_capsule_data_size",
				       "max_io_size",     "max_h2c_data",  "max_r2t",
				       "buffers",         "accel",         "idle_us",
				       "max_connections", "icreq_timeout_ms", NULL};


static void tcp_destroy(struct ferry_transport *t);

static int tcp_create(struct ferry_transport *t, const struct ferry_transport_opts *opts)
{
	if (ferry_hal_args_check(opts->args, tcp_keys))
		return -EINVAL;
	uint32_t depth = 128, ioq = 8, icd = 8192, max_io = 131072, maxh2c = 131072, r2t = 1,
		 bufs = 2048, accel = 1, idle_us = TCP_IDLE_US, max_conns = 1024, ic_ms = 10000;
	int rc = transport_arg_u32(COMP, opts->args, "max_queue_depth", 32, 4096, &depth);
	if (!rc)
		rc = transport_arg_u32(COMP, opts->args, "max_io_queues", 1, 256, &ioq);
	if (!rc)
		rc = transport_arg_u32(COMP, opts->args, "in_capsule_data_size", 0, 131072, &icd);
	if (!rc)
		rc = transport_arg_u32(COMP, opts->args, "max_io_size", 4096, 1048576, &max_io);
	if (!rc)
		rc = transport_arg_u32(COMP, opts->args, "max_h2c_data", 4096, 16777216, &maxh2c);
	if (!rc)
		rc = transport_arg_u32(COMP, opts->args, "max_r2t", 1, 1, &r2t);
	if (!rc)
		rc = transport_arg_u32(COMP, opts->args, "buffers", 16, 1u << 20, &bufs);
	if (!rc)
		rc = transport_arg_u32(COMP, opts->args, "accel", 0, 1, &accel);
	if (!rc)
		rc = transport_arg_u32(COMP, opts->args, "idle_us", 0, 100000, &idle_us);
	if (!rc)
		rc = transport_arg_u32(COMP, opts->args, "max_connections", 1, 65536, &max_conns);
	if (!rc)
		rc = transport_arg_u32(COMP, opts->args, "icreq_timeout_ms", 0, 3600000, &ic_ms);
	if (rc)
		return rc;
	if (icd % 16 || (max_io & (max_io - 1)) || maxh2c % 4) {
		FERRY_ERR(COMP,
			  "create: in_capsule_data_size must be a multiple of 16, max_io_size "
			  "a power of two, max_h2c_data a multiple of 4");
		return -EINVAL;
	}
	if (bufs * (uint64_t)TCP_CHUNK < max_io || bufs * (uint64_t)TCP_CHUNK < TCP_ADMIN_ICD) {
		FERRY_ERR(COMP, "create: %u buffers of %u bytes cannot hold one %u-byte transfer",
			  bufs, TCP_CHUNK, max_io);
		return -EINVAL;
	}
	struct tcp_tr *tr = calloc(1, sizeof(*tr));
	if (!tr)
		return -ENOMEM;
	tr->t = t;
	tr->depth = depth;
	tr->ioq = ioq;
	tr->icd = icd;
	tr->max_io = max_io;
	tr->maxh2c = maxh2c;
	tr->max_r2t = r2t;
	tr->nbufs = bufs;
	/* A quarter of the pool, at least one largest transfer (see req_bufs()). */
	tr->conn_bufs = FERRY_MAX(bufs / 4, (max_io + TCP_CHUNK - 1) / TCP_CHUNK);
	tr->accel = accel;
	tr->idle_us = idle_us;
	tr->max_conns = max_conns;
	tr->icreq_timeout_ms = ic_ms;
	tr->c2h = FERRY_MAX(maxh2c, max_io / 16);
	tr->segs = (FERRY_MAX(FERRY_MAX(max_io, icd), TCP_ADMIN_ICD) + TCP_CHUNK - 1) / TCP_CHUNK +
		   1;
	pthread_mutex_init(&tr->lock, NULL);
	tr->dev = opts->device;
	if (!tr->dev) {
		rc = ferry_device_open("tcp", "", &tr->dev);
		if (rc) {
			FERRY_ERR(COMP,
				  "create: no device given and the 'tcp' backend cannot be "
				  "opened: %s",
				  ferry_strerror(rc));
			goto err_free;
		}
		tr->own_dev = 1;
	}
	const struct ferry_hal_backend *b = ferry_hal_dev_get_backend(tr->dev);
	if (!b || !b->nic) {
		FERRY_ERR(COMP, "create: device %s has no NIC class",
			  ferry_device_get_name(tr->dev));
		rc = -ENOTSUP;
		goto err_dev;
	}
	tr->nic = b->nic;
	rc = tr->nic->query(tr->dev, &tr->info);
	if (!rc && !(tr->info.caps & FERRY_HAL_NIC_CAP_TCP))
		rc = -ENOTSUP;
	if (rc) {
		FERRY_ERR(COMP, "create: device %s offers no TCP sockets: %s",
			  ferry_device_get_name(tr->dev), ferry_strerror(rc));
		goto err_dev;
	}
	struct nvmf_tgt_limits lim = {
		.max_queue_depth = depth,
		.max_io_queues = (uint16_t)ioq,
		.icd_size = icd,
		.max_io_size = max_io,
		.trtype = FERRY_NVMF_TRTYPE_TCP,
	};
	rc = nvmf_tgt_create(t, &lim, &tcp_nvmf_ops, &tr->tgt);
	if (rc)
		goto err_dev;
	rc = pg_setup(tr, &tr->pg0, 0);
	if (rc)
		goto err_tgt;
	ferry_transport_set_ctx(t, tr);
	return 0;
err_tgt:
	nvmf_tgt_destroy(tr->tgt);
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
static void tcp_drain_all(struct tcp_tr *tr)
{
	struct tcp_pg *all[TCP_MAX_PG + 1];
	uint32_t n = 0;
	all[n++] = &tr->pg0;
	for (uint32_t i = 0; i < tr->npgs; i++)
		all[n++] = tr->pgs[i];
	for (uint32_t i = 0; i < n; i++)
		for (struct tcp_conn *c = all[i]->conns; c; c = c->next)
			conn_close(c, "transport destroyed");
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int left = 0;
		for (uint32_t i = 0; i < n; i++) {
			pg_run(tr, all[i], 0);
			for (struct tcp_conn *c = all[i]->conns; c; c = c->next)
				conn_close(c, "transport destroyed");
			left += all[i]->conns != NULL || all[i]->core.ctrlrs != NULL;
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

static void tcp_destroy(struct ferry_transport *t)
{
	struct tcp_tr *tr = ferry_transport_get_ctx(t);
	if (!tr)
		return;
	tcp_drain_all(tr);
	for (uint32_t i = 0; i < tr->nlst; i++) {
		tr->nic->group_remove(tr->pg0.group, tr->lst[i]->sock);
		tr->nic->close(tr->lst[i]->sock);
		free(tr->lst[i]);
	}
	nvmf_tgt_destroy(tr->tgt);
	/* Groups the integrator did not destroy go with the instance (their struct
	 * ferry_transport_pg handles are freed by ferry_transport_pg_destroy only). */
	for (uint32_t i = 0; i < tr->npgs; i++) {
		pg_teardown(tr, tr->pgs[i]);
		free(tr->pgs[i]);
	}
	pg_teardown(tr, &tr->pg0);
	if (tr->own_dev)
		ferry_device_close(tr->dev);
	pthread_mutex_destroy(&tr->lock);
	free(tr);
	ferry_transport_set_ctx(t, NULL);
}

static int tcp_listen(struct ferry_transport *t, struct ferry_nvme_subsystem *subsys,
		      const char *address)
{
	struct tcp_tr *tr = ferry_transport_get_ctx(t);
	if (ferry_nvme_subsystem_get_type(subsys) != FERRY_NVME_SUBSYS_NVM) {
		FERRY_ERR(COMP, "listen: %s is not an NVM subsystem",
			  ferry_nvme_subsystem_get_nqn(subsys));
		return -EINVAL;
	}
	struct tcp_listener *l = NULL;
	pthread_mutex_lock(&tr->lock);
	/* Port 0 asks for a new listener on a free port; other addresses are shared. */
	size_t alen = strlen(address);
	int any_port = alen >= 2 && !strcmp(address + alen - 2, ":0");
	for (uint32_t i = 0; i < tr->nlst && !l && !any_port; i++)
		if (!strcmp(tr->lst[i]->want, address) || !strcmp(tr->lst[i]->bound, address))
			l = tr->lst[i];
	uint32_t nlst = tr->nlst;
	pthread_mutex_unlock(&tr->lock);
	int fresh = 0;
	if (!l) {
		if (nlst == TCP_MAX_LISTEN) {
			FERRY_ERR(COMP, "listen %s: %u addresses at most", address, TCP_MAX_LISTEN);
			return -ENOSPC;
		}
		if (strlen(address) >= sizeof(l->want)) {
			FERRY_ERR(COMP, "listen: address '%s' too long", address);
			return -EINVAL;
		}
		l = calloc(1, sizeof(*l));
		if (!l)
			return -ENOMEM;
		l->kind = KIND_LISTENER;
		snprintf(l->want, sizeof(l->want), "%s", address);
		struct ferry_hal_sock_opts so = {.size = sizeof(so),
						 .addr = address,
						 .flags = FERRY_HAL_SOCK_F_NODELAY};
		int rc = tr->nic->listen(tr->dev, &so, &l->sock);
		if (rc) {
			FERRY_ERR(COMP, "listen on %s failed: %s", address, ferry_strerror(rc));
			free(l);
			return rc;
		}
		if (tr->nic->get_addr(l->sock, 0, l->bound, sizeof(l->bound)))
			snprintf(l->bound, sizeof(l->bound), "%s", address);
		rc = tr->nic->group_add(tr->pg0.group, l->sock, l);
		if (rc) {
			tr->nic->close(l->sock);
			free(l);
			return rc;
		}
		l->portid = (uint16_t)(nlst + 1);
		fresh = 1;
	}
	char addr[64], port[32];
	uint8_t fam;
	int rc = transport_split_addr(l->bound, addr, sizeof(addr), port, sizeof(port), &fam);
	if (!rc)
		rc = nvmf_tgt_listen(tr->tgt, subsys, fam, addr, port, l->portid);
	if (rc) {
		if (fresh) {
			tr->nic->group_remove(tr->pg0.group, l->sock);
			tr->nic->close(l->sock);
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

static int tcp_poll(struct ferry_transport *t, uint32_t max)
{
	return pg_run(ferry_transport_get_ctx(t),
		      &((struct tcp_tr *)ferry_transport_get_ctx(t))->pg0, max);
}

static const struct ferry_transport_ops tcp_transport_ops = {
	.abi_version = FERRY_TRANSPORT_OPS_ABI,
	.name = "tcp",
	.kind = FERRY_TRANSPORT_MESSAGE,
	.create = tcp_create,
	.destroy = tcp_destroy,
	.listen = tcp_listen,
	.poll = tcp_poll,
	.send_completion = tcp_send_completion,
	.pg_create = tcp_pg_create,
	.pg_poll = tcp_pg_poll,
	.pg_destroy = tcp_pg_destroy,
};

BUILTIN_TRANSPORT(tcp_transport_ops, 1);

/* ---- the counters API ------------------------------------------------------------------------ */

static struct tcp_tr *tcp_of(struct ferry_transport *t)
{
	if (!t || ferry_transport_get_ops(t) != &tcp_transport_ops)
		return NULL;
	return ferry_transport_get_ctx(t);
}

FERRY_API int ferry_tcp_transport_get_stats(struct ferry_transport *t, ferry_tcp_stats_cb cb,
					    void *ctx)
{
	struct tcp_tr *tr = tcp_of(t);
	if (!tr || !cb)
		return -EINVAL;
	int n = 0;
	pthread_mutex_lock(&tr->lock);
	for (uint32_t g = 0; g <= tr->npgs; g++) {
		struct tcp_pg *pg = g == 0 ? &tr->pg0 : tr->pgs[g - 1];
		for (struct tcp_conn *c = pg->conns; c; c = c->next) {
			struct ferry_tcp_conn_stats st = c->st;
			st.cntlid = nvmf_tgt_qpair_cntlid(&c->qp);
			st.qid = c->qp.qid;
			cb(ctx, &st);
			n++;
		}
	}
	pthread_mutex_unlock(&tr->lock);
	return n;
}

FERRY_API int ferry_tcp_transport_get_totals(struct ferry_transport *t,
					     struct ferry_tcp_transport_totals *tot)
{
	struct tcp_tr *tr = tcp_of(t);
	if (!tr || !tot)
		return -EINVAL;
	if (OPTS_SIZE_CHECK(COMP, "get_totals", tot, struct ferry_tcp_transport_totals))
		return -EINVAL;
	pthread_mutex_lock(&tr->lock);
	tot->accepted = tr->accepted;
	tot->closed = tr->closed;
	tot->pdu_errors = tr->pdu_errors;
	tot->refused = tr->refused;
	tot->conns = tr->conns;
	pthread_mutex_unlock(&tr->lock);
	nvmf_tgt_counts(tr->tgt, &tot->ctrlrs_created, &tot->ctrlrs_destroyed, &tot->kato_expired,
			&tot->ctrlrs);
	return 0;
}

FERRY_API int ferry_tcp_transport_get_listen_addr(struct ferry_transport *t, unsigned int index,
						  char *buf, size_t len)
{
	struct tcp_tr *tr = tcp_of(t);
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
