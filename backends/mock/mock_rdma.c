/*
 * The mock RDMA NIC (the RDMA part of the mock's NIC class, ferry/hal/rdma.h): reliable-
 * connected verbs modelled over loopback TCP, one connection per QP (wire format:
 * mock_rdma_internal.h). This file has the device part (arguments, query, counters, faults),
 * the connection manager (listen, requests, accept/reject, connect), CQs and QPs, posting,
 * and the progress engine that runs both the requester and the responder side of every QP
 * from its CQ's poll. Memory regions: mock_rdma_mr.c.
 *
 * Arguments: rdma=0|1 (default 1), rdma_seed=<n> (keys, default 1), rdma_rnr_ms=<n>
 * (how long a SEND waits for a receive, 1..60000, default 100).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "mock_rdma_internal.h"

#define HDR sizeof(struct mr_msg)

struct mock_rdma *mock_rdma_of(struct ferry_device *fdev)
{
	struct mock_nic *nic = mock_nic_of(fdev);
	return nic ? nic->rdma : NULL;
}

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* ---- byte queues ----------------------------------------------------------------------------- */

static size_t buf_len(const struct mr_buf *b)
{
	return b->end - b->start;
}

/* Room for @p n more bytes at b->p + b->end. */
static int buf_reserve(struct mr_buf *b, size_t n)
{
	if (b->cap - b->end >= n)
		return 0;
	if (b->start) {
		memmove(b->p, b->p + b->start, buf_len(b));
		b->end -= b->start;
		b->start = 0;
		if (b->cap - b->end >= n)
			return 0;
	}
	size_t cap = b->cap ? b->cap : 4096;
	while (cap - b->end < n)
		cap *= 2;
	uint8_t *p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

static void buf_consume(struct mr_buf *b, size_t n)
{
	b->start += n;
	if (b->start == b->end)
		b->start = b->end = 0;
}

static void buf_free(struct mr_buf *b)
{
	free(b->p);
	*b = (struct mr_buf){0};
}

/* Appends a header and reserves @p plen payload bytes after it; returns the payload. */
static uint8_t *msg_put(struct mr_buf *b, uint8_t type, uint32_t plen, uint32_t len, uint64_t psn,
			uint64_t raddr, uint32_t rkey, int32_t status)
{
	if (buf_reserve(b, HDR + plen))
		return NULL;
	struct mr_msg m = {.type = type,
			   .len = len,
			   .psn = psn,
			   .raddr = raddr,
			   .rkey = rkey,
			   .status = status};
	memcpy(b->p + b->end, &m, HDR);
	uint8_t *payload = b->p + b->end + HDR;
	b->end += HDR + plen;
	return payload;
}

/* ---- addresses ------------------------------------------------------------------------------- */

static int parse_addr(const char *s, struct sockaddr_in *sa)
{
	char host[32];
	const char *c = s ? strrchr(s, ':') : NULL;
	if (!c || (size_t)(c - s) >= sizeof(host) || !c[1] || strlen(c + 1) > 5 ||
	    strspn(c + 1, "0123456789") != strlen(c + 1))
		return -EINVAL;
	memcpy(host, s, (size_t)(c - s));
	host[c - s] = '\0';
	unsigned long port = strtoul(c + 1, NULL, 10);
	if (port > 65535)
		return -EINVAL;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return -EINVAL;
	return 0;
}

static int fmt_addr(const struct sockaddr_in *sa, char *buf, size_t len)
{
	char host[INET_ADDRSTRLEN];
	if (!buf || !inet_ntop(AF_INET, &sa->sin_addr, host, sizeof(host)))
		return -EINVAL;
	int n = snprintf(buf, len, "%s:%u", host, (unsigned)ntohs(sa->sin_port));
	return n < 0 || (size_t)n >= len ? -ENOBUFS : 0;
}

static int sock_nb(int fd)
{
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -errno : 0;
}

/* ---- completion queues ----------------------------------------------------------------------- */

static int cq_push(struct ferry_hal_rdma_cq *cq, struct ferry_hal_rdma_qp *qp, uint64_t wr_id,
		   uint32_t opcode, int status, uint32_t byte_len)
{
	struct mock_rdma *r = cq->r;
	if (cq->count == cq->cap) {
		size_t cap = cq->cap * 2;
		struct mr_wc *q = malloc(sizeof(*q) * cap);
		if (!q) {
			MOCK_ERR("%s: CQ: out of memory for a completion (lost)", r->dev->name);
			return -ENOMEM;
		}
		for (size_t i = 0; i < cq->count; i++)
			q[i] = cq->q[(cq->head + i) % cq->cap];
		free(cq->q);
		cq->q = q;
		cq->head = 0;
		cq->cap = cap;
	}
	if (cq->count >= cq->depth && !cq->overrun_logged) {
		cq->overrun_logged = 1;
		MOCK_ERR("%s: CQ overrun: more than its %u entries are waiting to be polled (kept)",
			 r->dev->name, cq->depth);
	}
	uint32_t delay;
	pthread_mutex_lock(&r->fault_lock);
	delay = r->f.delay_polls;
	pthread_mutex_unlock(&r->fault_lock);
	struct mr_wc *e = &cq->q[(cq->head + cq->count) % cq->cap];
	e->wc = (struct ferry_hal_rdma_wc){.wr_id = wr_id,
					   .qp_ctx = qp->ctx,
					   .status = status,
					   .opcode = opcode,
					   .byte_len = byte_len};
	e->qp = qp;
	e->due = cq->polls + delay;
	cq->count++;
	if (status)
		atomic_fetch_add(&r->st_wc_errors, 1);
	return 0;
}

static int cq_ready(const struct ferry_hal_rdma_cq *cq)
{
	return cq->count && cq->q[cq->head].due <= cq->polls;
}

/* ---- QP error state -------------------------------------------------------------------------- */

static void state_set(struct ferry_hal_rdma_qp *qp, int st)
{
	if (qp->state == st)
		return;
	qp->state = st;
	if (qp->cq)
		qp->cq->events++;
}

/* Every outstanding work request completes: the failed ones with their status, the rest
 * flushed. */
static void qp_flush(struct ferry_hal_rdma_qp *qp)
{
	if (qp->flushed)
		return;
	qp->flushed = 1;
	for (uint64_t i = qp->sq_head; i < qp->sq_tail; i++) {
		struct mr_sq_ent *e = &qp->sq[i % qp->max_send_wr];
		int st = e->state == MR_E_DONE ? e->status : -ECANCELED;
		if (st || (e->flags & FERRY_HAL_RDMA_WR_F_SIGNALED))
			(void)cq_push(qp->cq, qp, e->wr_id, e->opcode, st, 0);
	}
	qp->sq_head = qp->sq_tx = qp->sq_tail;
	for (uint64_t i = qp->rq_head; i < qp->rq_tail; i++)
		(void)cq_push(qp->cq, qp, qp->rq[i % qp->max_recv_wr].wr_id, FERRY_HAL_RDMA_OP_RECV,
			      -ECANCELED, 0);
	qp->rq_head = qp->rq_tail;
	qp->reads_out = 0;
}

static void qp_shut(struct ferry_hal_rdma_qp *qp)
{
	if (qp->fd < 0 || qp->shut)
		return;
	/* What is queued (a NAK) goes first, then the peer sees the end of the stream. */
	if (buf_len(&qp->out))
		(void)send(qp->fd, qp->out.p + qp->out.start, buf_len(&qp->out),
			   MSG_NOSIGNAL | MSG_DONTWAIT);
	buf_consume(&qp->out, buf_len(&qp->out));
	(void)shutdown(qp->fd, SHUT_WR);
	qp->shut = 1;
}

/* The QP enters the error state (or a connection attempt ends with @p st). */
static void qp_fail(struct ferry_hal_rdma_qp *qp, int st, const char *why)
{
	if (qp->state != 0 && qp->state != -EINPROGRESS)
		return;
	if (qp->state == 0) {
		st = -ECONNRESET;
		atomic_fetch_add(&qp->r->st_qp_errors, 1);
	}
	if (why && mock_nic_ratelimit(qp->r->nic))
		MOCK_ERR("%s: QP %s: %s", qp->r->dev->name,
			 st == -ECONNRESET ? "in the error state" : "connection failed", why);
	state_set(qp, st);
	qp_shut(qp);
	if (qp->cq)
		qp_flush(qp);
}

/* ---- requester side -------------------------------------------------------------------------- */

/* The fault model's verdict on a send work request of @p opcode being posted: 0 or a status,
 * and whether its rkey is to be corrupted. */
static int fault_take(struct mock_rdma *r, uint32_t opcode, int *corrupt)
{
	int st = 0;
	pthread_mutex_lock(&r->fault_lock);
	uint64_t n = ++r->n_kind[opcode & 3];
	if (r->f.fail_nth && r->f.fail_opcode == opcode && n == r->f.fail_nth)
		st = r->f.fail_status ? r->f.fail_status : -EIO;
	if (opcode == FERRY_HAL_RDMA_OP_WRITE || opcode == FERRY_HAL_RDMA_OP_READ) {
		uint64_t k = ++r->n_rdma;
		if (corrupt)
			*corrupt = r->f.corrupt_rkey_nth && k == r->f.corrupt_rkey_nth;
	}
	if (opcode != FERRY_HAL_RDMA_OP_RECV) {
		uint64_t w = ++r->n_wr;
		if (!st && r->f.error_ppm &&
		    mix(r->f.seed ^ mix(w + 0x5eed)) % 1000000u < r->f.error_ppm)
			st = -EIO;
	}
	pthread_mutex_unlock(&r->fault_lock);
	return st;
}

/* Serialises the next queued request into the output. 1 done, 0 cannot now, <0 the QP failed. */
static int tx_one(struct ferry_hal_rdma_qp *qp)
{
	struct mock_rdma *r = qp->r;
	struct mr_sq_ent *e = &qp->sq[qp->sq_tx % qp->max_send_wr];
	if (e->state != MR_E_QUEUED)
		return 0; /* failed at post: it completes (and errors the QP) when it is the head */
	if (e->opcode == FERRY_HAL_RDMA_OP_READ && qp->reads_out >= qp->init_depth)
		return 0;
	if ((e->flags & FERRY_HAL_RDMA_WR_F_FENCE) && qp->reads_out)
		return 0;
	if (qp->drop_after && qp->msgs_sent >= qp->drop_after) {
		qp_fail(qp, -ECONNRESET, "the connection was dropped (fault drop_after_msgs)");
		return -ECONNRESET;
	}
	uint64_t psn = qp->sq_tx;
	int rc = 0;
	pthread_rwlock_rdlock(&r->mr_lock);
	uint64_t total = 0;
	if (!e->inlined)
		rc = mock_rdma_sge_check(r, e->sge, e->nsge,
					 e->opcode == FERRY_HAL_RDMA_OP_READ
						 ? FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE
						 : 0,
					 &total);
	if (!rc && e->opcode != FERRY_HAL_RDMA_OP_READ) {
		uint8_t type = e->opcode == FERRY_HAL_RDMA_OP_SEND ? MR_M_SEND : MR_M_WRITE;
		size_t mark = qp->out.end;
		uint8_t *pl = msg_put(&qp->out, type, (uint32_t)e->len, (uint32_t)e->len, psn,
				      e->raddr, e->rkey, 0);
		if (!pl)
			rc = -ENOMEM;
		else if (e->inlined)
			memcpy(pl, e->inl, e->len);
		else if (mock_rdma_sge_copy(r, e->sge, e->nsge, pl, e->len, 0))
			rc = -EIO;
		if (rc && pl)
			qp->out.end = mark;
	} else if (!rc) {
		if (!msg_put(&qp->out, MR_M_READ, 0, (uint32_t)e->len, psn, e->raddr, e->rkey,
			     (int32_t)(qp->reads_out + 1)))
			rc = -ENOMEM;
		else
			qp->reads_out++;
	}
	pthread_rwlock_unlock(&r->mr_lock);
	if (rc) {
		e->state = MR_E_DONE;
		e->status = rc == -ENOMEM ? -EIO : rc;
		if (rc == -ENOMEM)
			MOCK_ERR("%s: out of memory for a work request's message", r->dev->name);
		return 0;
	}
	e->state = MR_E_SENT;
	qp->sq_tx++;
	qp->msgs_sent++;
	return 1;
}

/* Completes the send queue's finished head entries, in order. */
static void sq_retire(struct ferry_hal_rdma_qp *qp)
{
	struct mock_rdma *r = qp->r;
	while (qp->state == 0 && qp->sq_head < qp->sq_tail) {
		struct mr_sq_ent *e = &qp->sq[qp->sq_head % qp->max_send_wr];
		if (e->state != MR_E_DONE)
			break;
		if (e->status) {
			char why[96];
			snprintf(why, sizeof(why), "work request 0x%llx failed: %s",
				 (unsigned long long)e->wr_id, strerror(-e->status));
			qp_fail(qp, -ECONNRESET, why);
			return;
		}
		switch (e->opcode) {
		case FERRY_HAL_RDMA_OP_SEND:
			atomic_fetch_add(&r->st_sends, 1);
			atomic_fetch_add(&r->st_send_bytes, e->len);
			break;
		case FERRY_HAL_RDMA_OP_WRITE:
			atomic_fetch_add(&r->st_writes, 1);
			atomic_fetch_add(&r->st_write_bytes, e->len);
			break;
		default:
			atomic_fetch_add(&r->st_reads, 1);
			atomic_fetch_add(&r->st_read_bytes, e->len);
			break;
		}
		if (e->flags & FERRY_HAL_RDMA_WR_F_SIGNALED)
			(void)cq_push(qp->cq, qp, e->wr_id, e->opcode, 0, 0);
		qp->sq_head++;
	}
}

/* The sent request an answer for @p psn must be: the oldest one still waiting. */
static struct mr_sq_ent *answered(struct ferry_hal_rdma_qp *qp, uint64_t psn)
{
	for (uint64_t i = qp->sq_head; i < qp->sq_tx; i++) {
		struct mr_sq_ent *e = &qp->sq[i % qp->max_send_wr];
		if (e->state == MR_E_SENT)
			return i == psn ? e : NULL;
	}
	return NULL;
}

/* ---- responder side ------------------------------------------------------------------------- */

static void answer(struct ferry_hal_rdma_qp *qp, uint8_t type, uint64_t psn, int32_t status)
{
	if (!msg_put(&qp->out, type, 0, 0, psn, 0, 0, status))
		qp_fail(qp, -ECONNRESET, "out of memory for an answer");
}

static int nak_fatal(struct ferry_hal_rdma_qp *qp, uint64_t psn, const char *why)
{
	answer(qp, MR_M_NAK, psn, -EREMOTEIO);
	qp_fail(qp, -ECONNRESET, why);
	return -ECONNRESET;
}

/* A SEND into the next receive. 1 consumed, 0 hold it (no receive yet), <0 the QP failed. */
static int rx_send(struct ferry_hal_rdma_qp *qp, const struct mr_msg *m, uint8_t *pl)
{
	struct mock_rdma *r = qp->r;
	if (qp->rq_head == qp->rq_tail) {
		uint64_t now = mock_now_ns();
		if (!qp->rnr_wait) {
			qp->rnr_wait = 1;
			qp->rnr_deadline = now + (uint64_t)r->rnr_ms * 1000000ull;
			return 0;
		}
		if (now < qp->rnr_deadline)
			return 0;
		qp->rnr_wait = 0;
		if (mock_nic_ratelimit(r->nic))
			MOCK_ERR("%s: a SEND found no receive posted for %u ms (RNR): dropped",
				 r->dev->name, r->rnr_ms);
		answer(qp, MR_M_NAK, m->psn, -ENOBUFS);
		return 1;
	}
	qp->rnr_wait = 0;
	struct mr_rq_ent *e = &qp->rq[qp->rq_head % qp->max_recv_wr];
	uint64_t total = 0;
	int st = e->fail;
	pthread_rwlock_rdlock(&r->mr_lock);
	if (!st)
		st = mock_rdma_sge_check(r, e->sge, e->nsge, FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE,
					 &total);
	if (!st && m->len > total)
		st = -EMSGSIZE;
	if (!st)
		st = mock_rdma_sge_copy(r, e->sge, e->nsge, pl, m->len, 1);
	pthread_rwlock_unlock(&r->mr_lock);
	qp->rq_head++;
	if (st) {
		char why[96];
		snprintf(why, sizeof(why), "receive 0x%llx failed (%s, a message of %u bytes)",
			 (unsigned long long)e->wr_id, strerror(-st), m->len);
		(void)cq_push(qp->cq, qp, e->wr_id, FERRY_HAL_RDMA_OP_RECV, st, 0);
		return nak_fatal(qp, m->psn, why);
	}
	atomic_fetch_add(&r->st_recvs, 1);
	atomic_fetch_add(&r->st_recv_bytes, m->len);
	(void)cq_push(qp->cq, qp, e->wr_id, FERRY_HAL_RDMA_OP_RECV, 0, m->len);
	answer(qp, MR_M_ACK, m->psn, 0);
	return 1;
}

static int rx_write(struct ferry_hal_rdma_qp *qp, const struct mr_msg *m, uint8_t *pl)
{
	pthread_rwlock_rdlock(&qp->r->mr_lock);
	int st = mock_rdma_remote_copy(qp->r, m->rkey, m->raddr, pl, m->len, 1);
	pthread_rwlock_unlock(&qp->r->mr_lock);
	if (st)
		return nak_fatal(qp, m->psn, "a remote WRITE was refused");
	answer(qp, MR_M_ACK, m->psn, 0);
	return 1;
}

static int rx_read(struct ferry_hal_rdma_qp *qp, const struct mr_msg *m)
{
	if (m->status < 0 || (uint32_t)m->status > qp->resp_res) {
		if (mock_nic_ratelimit(qp->r->nic))
			MOCK_ERR("%s: a READ with %d outstanding, the QP serves %u at once "
				 "(responder_resources)",
				 qp->r->dev->name, m->status, qp->resp_res);
		return nak_fatal(qp, m->psn, "more RDMA READs than its responder resources");
	}
	size_t mark = qp->out.end;
	uint8_t *pl = msg_put(&qp->out, MR_M_READ_RESP, m->len, m->len, m->psn, 0, 0, 0);
	if (!pl) {
		qp_fail(qp, -ECONNRESET, "out of memory for a READ response");
		return -ECONNRESET;
	}
	pthread_rwlock_rdlock(&qp->r->mr_lock);
	int st = mock_rdma_remote_copy(qp->r, m->rkey, m->raddr, pl, m->len, 0);
	pthread_rwlock_unlock(&qp->r->mr_lock);
	if (st) {
		qp->out.end = mark;
		return nak_fatal(qp, m->psn, "a remote READ was refused");
	}
	return 1;
}

/* An answer to one of our requests. */
static int rx_answer(struct ferry_hal_rdma_qp *qp, const struct mr_msg *m, uint8_t *pl)
{
	struct mr_sq_ent *e = answered(qp, m->psn);
	if (!e) {
		qp_fail(qp, -ECONNRESET, "the peer answered a request that is not the next one");
		return -ECONNRESET;
	}
	int is_read = e->opcode == FERRY_HAL_RDMA_OP_READ;
	if (m->type == MR_M_NAK) {
		if (m->status != -EREMOTEIO && m->status != -ENOBUFS) {
			qp_fail(qp, -ECONNRESET, "the peer sent a NAK with an unknown status");
			return -ECONNRESET;
		}
		e->status = m->status;
	} else if ((m->type == MR_M_READ_RESP) != is_read || (is_read && m->len != e->len)) {
		qp_fail(qp, -ECONNRESET, "the peer's answer does not match the request");
		return -ECONNRESET;
	} else if (is_read) {
		pthread_rwlock_rdlock(&qp->r->mr_lock);
		e->status = mock_rdma_sge_copy(qp->r, e->sge, e->nsge, pl, m->len, 1);
		pthread_rwlock_unlock(&qp->r->mr_lock);
	} else {
		e->status = 0;
	}
	if (is_read && qp->reads_out)
		qp->reads_out--;
	e->state = MR_E_DONE;
	return 1;
}

/* Bytes of payload a message of this type carries; UINT32_MAX: malformed. */
static uint32_t payload_of(const struct mr_msg *m)
{
	switch (m->type) {
	case MR_M_REQ:
	case MR_M_REP:
	case MR_M_REJ:
		return m->len <= FERRY_HAL_RDMA_PDATA_MAX ? m->len : UINT32_MAX;
	case MR_M_SEND:
	case MR_M_WRITE:
	case MR_M_READ_RESP:
		return m->len <= MR_MAX_MSG ? m->len : UINT32_MAX;
	case MR_M_READ:
		return m->len <= MR_MAX_MSG ? 0 : UINT32_MAX;
	case MR_M_ACK:
	case MR_M_NAK:
		return m->len == 0 ? 0 : UINT32_MAX;
	default:
		return UINT32_MAX;
	}
}

/* Handles one message. 1 consumed, 0 not now, <0 the QP failed. */
static int rx_one(struct ferry_hal_rdma_qp *qp, const struct mr_msg *m, uint8_t *pl)
{
	if (qp->state == -EINPROGRESS) {
		if (m->type != MR_M_REP && m->type != MR_M_REJ) {
			qp_fail(qp, -ECONNREFUSED, "the peer did not answer the connect request");
			return -ECONNREFUSED;
		}
		memcpy(qp->pdata, pl, m->len);
		qp->pdata_len = m->len;
		if (m->type == MR_M_REP && m->rkey && qp->init_depth > m->rkey)
			qp->init_depth = m->rkey; /* the accepting side serves no more at once */
		if (m->type == MR_M_REJ) {
			qp_fail(qp, -ECONNREFUSED, NULL);
			return -ECONNREFUSED;
		}
		state_set(qp, 0);
		return 1;
	}
	switch (m->type) {
	case MR_M_SEND:
		return rx_send(qp, m, pl);
	case MR_M_WRITE:
		return rx_write(qp, m, pl);
	case MR_M_READ:
		return rx_read(qp, m);
	case MR_M_ACK:
	case MR_M_NAK:
	case MR_M_READ_RESP:
		return rx_answer(qp, m, pl);
	default:
		qp_fail(qp, -ECONNRESET, "the peer sent a connection message on a connected QP");
		return -ECONNRESET;
	}
}

/* ---- progress -------------------------------------------------------------------------------- */

static void qp_flush_out(struct ferry_hal_rdma_qp *qp)
{
	while (buf_len(&qp->out) && qp->fd >= 0 && !qp->shut) {
		ssize_t n = send(qp->fd, qp->out.p + qp->out.start, buf_len(&qp->out),
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			buf_consume(&qp->out, (size_t)n);
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		qp->eof = 1;
		return;
	}
}

static void qp_read(struct ferry_hal_rdma_qp *qp)
{
	size_t budget = MR_READ_BUDGET;
	/* At most one whole message ahead of what was processed: a peer cannot make the QP hold
	 * more while a SEND waits for a receive. */
	while (!qp->eof && budget && buf_len(&qp->in) < HDR + MR_MAX_MSG) {
		if (buf_reserve(&qp->in, 65536)) {
			qp_fail(qp, -ECONNRESET, "out of memory for received data");
			return;
		}
		size_t room = qp->in.cap - qp->in.end;
		if (room > budget)
			room = budget;
		ssize_t n = recv(qp->fd, qp->in.p + qp->in.end, room, MSG_DONTWAIT);
		if (n > 0) {
			qp->in.end += (size_t)n;
			budget -= (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		qp->eof = 1;
	}
}

static void qp_connecting(struct ferry_hal_rdma_qp *qp)
{
	if (!qp->tcp_up) {
		struct pollfd p = {.fd = qp->fd, .events = POLLOUT};
		if (poll(&p, 1, 0) > 0) {
			int err = 0;
			socklen_t l = sizeof(err);
			(void)getsockopt(qp->fd, SOL_SOCKET, SO_ERROR, &err, &l);
			if (err) {
				int st = err == ENETUNREACH || err == EHOSTUNREACH ? -ENETUNREACH
					 : err == ETIMEDOUT                        ? -ETIMEDOUT
										   : -ECONNREFUSED;
				qp_fail(qp, st, strerror(err));
				return;
			}
			qp->tcp_up = 1;
		}
	}
	if (mock_now_ns() >= qp->deadline_ns)
		qp_fail(qp, -ETIMEDOUT, "no answer to the connect request in time");
}

static void qp_progress(struct ferry_hal_rdma_qp *qp)
{
	if (!qp->cq || (qp->state != 0 && qp->state != -EINPROGRESS))
		return;
	if (qp->state == -EINPROGRESS) {
		qp_connecting(qp);
		if (!qp->tcp_up || qp->state != -EINPROGRESS)
			return;
	}
	qp_flush_out(qp);
	qp_read(qp);
	while (qp->state == 0 || qp->state == -EINPROGRESS) {
		/* Answers wait while the peer does not read them (TCP pushes back on it). */
		if (buf_len(&qp->in) < HDR || buf_len(&qp->out) >= MR_OUT_MAX)
			break;
		struct mr_msg m;
		memcpy(&m, qp->in.p + qp->in.start, HDR);
		uint32_t pl = payload_of(&m);
		if (pl == UINT32_MAX) {
			qp_fail(qp, qp->state == 0 ? -ECONNRESET : -ECONNREFUSED,
				"the peer sent a malformed message");
			break;
		}
		if (buf_len(&qp->in) < HDR + pl)
			break;
		int rc = rx_one(qp, &m, qp->in.p + qp->in.start + HDR);
		if (rc <= 0)
			break;
		buf_consume(&qp->in, HDR + pl);
	}
	if (qp->state == 0) {
		while (qp->sq_tx < qp->sq_tail && buf_len(&qp->out) < MR_OUT_HIGH && tx_one(qp) > 0)
			;
		sq_retire(qp);
	}
	if (qp->state == 0 || qp->state == -EINPROGRESS)
		qp_flush_out(qp);
	if (qp->eof && (qp->state == 0 || qp->state == -EINPROGRESS))
		qp_fail(qp, qp->state == 0 ? -ECONNRESET : -ECONNREFUSED,
			qp->state == 0 ? "the peer disconnected"
				       : "the peer closed the connection");
}

static void cq_progress(struct ferry_hal_rdma_cq *cq)
{
	pthread_mutex_lock(&cq->lock);
	for (struct ferry_hal_rdma_qp *qp = cq->qps; qp; qp = qp->cq_next)
		qp_progress(qp);
	pthread_mutex_unlock(&cq->lock);
}

/* ---- CQ ops ---------------------------------------------------------------------------------- */

static int r_cq_create(struct ferry_device *fdev, uint32_t depth, struct ferry_hal_rdma_cq **out)
{
	struct mock_rdma *r = mock_rdma_of(fdev);
	if (!r || !out || depth == 0 || depth > MR_MAX_CQE) {
		MOCK_ERR("cq_create: %s", !r     ? "not a mock device with RDMA (rdma=1)"
					  : !out ? "NULL out"
						 : "depth not in 1..max_cqe");
		return !r ? -ENODEV : -EINVAL;
	}
	struct ferry_hal_rdma_cq *cq = calloc(1, sizeof(*cq));
	if (cq)
		cq->q = malloc(sizeof(*cq->q) * depth);
	if (!cq || !cq->q) {
		free(cq);
		MOCK_ERR("%s: cq_create: out of memory", r->dev->name);
		return -ENOMEM;
	}
	pthread_mutex_init(&cq->lock, NULL);
	cq->r = r;
	cq->depth = depth;
	cq->cap = depth;
	*out = cq;
	return 0;
}

static void r_cq_destroy(struct ferry_hal_rdma_cq *cq)
{
	if (!cq)
		return;
	if (cq->qps) {
		MOCK_ERR("%s: cq_destroy with QPs still on it (they never complete anything now)",
			 cq->r->dev->name);
		for (struct ferry_hal_rdma_qp *qp = cq->qps; qp; qp = qp->cq_next)
			qp->cq = NULL;
	}
	pthread_mutex_destroy(&cq->lock);
	free(cq->q);
	free(cq);
}

static int r_cq_poll(struct ferry_hal_rdma_cq *cq, struct ferry_hal_rdma_wc *wc, uint32_t max)
{
	if (!cq || (!wc && max)) {
		MOCK_ERR("cq_poll: NULL %s", !cq ? "cq" : "wc");
		return -EINVAL;
	}
	cq->polls++;
	cq_progress(cq);
	uint32_t n = 0;
	while (n < max && cq_ready(cq)) {
		wc[n++] = cq->q[cq->head].wc;
		cq->head = (cq->head + 1) % cq->cap;
		cq->count--;
	}
	if (!cq->count)
		cq->head = 0;
	return (int)n;
}

static int r_cq_wait(struct ferry_hal_rdma_cq *cq, uint32_t timeout_us)
{
	if (!cq) {
		MOCK_ERR("cq_wait: NULL cq");
		return -EINVAL;
	}
	uint64_t end = mock_now_ns() + (uint64_t)timeout_us * 1000ull, ev = cq->events;
	for (;;) {
		cq_progress(cq);
		if (cq->count || cq->events != ev)
			return 0;
		uint64_t now = mock_now_ns();
		if (now >= end)
			return -ETIMEDOUT;
		struct pollfd pf[64];
		nfds_t n = 0;
		int tick = 0; /* something progresses with time alone */
		pthread_mutex_lock(&cq->lock);
		for (struct ferry_hal_rdma_qp *qp = cq->qps; qp; qp = qp->cq_next) {
			if ((qp->state != 0 && qp->state != -EINPROGRESS) || qp->fd < 0)
				continue;
			if (qp->rnr_wait || qp->state == -EINPROGRESS || qp->sq_tx < qp->sq_tail)
				tick = 1;
			if (n == 64) {
				tick = 1;
				continue;
			}
			pf[n].fd = qp->fd;
			pf[n].events = (short)(POLLIN |
					       (buf_len(&qp->out) || !qp->tcp_up ? POLLOUT : 0));
			pf[n].revents = 0;
			n++;
		}
		pthread_mutex_unlock(&cq->lock);
		uint64_t left_ms = (end - now + 999999) / 1000000;
		int ms = tick ? 1 : (int)(left_ms > 1000 ? 1000 : left_ms);
		(void)poll(pf, n, ms);
	}
}

/* ---- QPs ------------------------------------------------------------------------------------- */

static int attr_check(struct mock_rdma *r, const char *op, const struct ferry_hal_rdma_qp_attr *a)
{
	const char *why = !a                        ? "NULL attr"
			  : a->size != sizeof(*a)   ? "attr->size is not sizeof(attr)"
			  : !a->cq || a->cq->r != r ? "attr->cq is not a CQ of this device"
			  : !a->max_send_wr || a->max_send_wr > MR_MAX_QP_WR
				  ? "max_send_wr not in 1..4096"
			  : !a->max_recv_wr || a->max_recv_wr > MR_MAX_QP_WR
				  ? "max_recv_wr not in 1..4096"
			  : a->max_send_sge > MR_MAX_SGE || a->max_recv_sge > MR_MAX_SGE
				  ? "more SGEs than max_sge (16)"
			  : a->max_inline > MR_MAX_INLINE ? "max_inline above 256"
			  : a->initiator_depth > MR_MAX_RD_ATOM ||
					  a->responder_resources > MR_MAX_RD_ATOM
				  ? "initiator_depth / responder_resources above 16"
				  : NULL;
	if (why) {
		MOCK_ERR("%s: %s: %s", r->dev->name, op, why);
		return -EINVAL;
	}
	return 0;
}

static struct ferry_hal_rdma_qp *qp_new(struct mock_rdma *r, const struct ferry_hal_rdma_qp_attr *a,
					int fd)
{
	struct ferry_hal_rdma_qp *qp = calloc(1, sizeof(*qp));
	if (!qp)
		return NULL;
	qp->r = r;
	qp->cq = a->cq;
	qp->ctx = a->ctx;
	qp->fd = fd;
	qp->max_send_wr = a->max_send_wr;
	qp->max_recv_wr = a->max_recv_wr;
	qp->max_send_sge = a->max_send_sge ? a->max_send_sge : 1;
	qp->max_recv_sge = a->max_recv_sge ? a->max_recv_sge : 1;
	qp->max_inline = a->max_inline;
	qp->init_depth = a->initiator_depth ? a->initiator_depth : 1;
	qp->resp_res = a->responder_resources ? a->responder_resources : 1;
	qp->sq = calloc(qp->max_send_wr, sizeof(*qp->sq));
	qp->rq = calloc(qp->max_recv_wr, sizeof(*qp->rq));
	if (qp->max_inline)
		qp->inl_block = malloc((size_t)qp->max_inline * qp->max_send_wr);
	if (!qp->sq || !qp->rq || (qp->max_inline && !qp->inl_block)) {
		free(qp->sq);
		free(qp->rq);
		free(qp->inl_block);
		free(qp);
		return NULL;
	}
	for (uint32_t i = 0; qp->inl_block && i < qp->max_send_wr; i++)
		qp->sq[i].inl = qp->inl_block + (size_t)i * qp->max_inline;
	pthread_mutex_lock(&r->fault_lock);
	qp->drop_after = r->f.drop_after_msgs;
	pthread_mutex_unlock(&r->fault_lock);
	pthread_mutex_lock(&a->cq->lock);
	qp->cq_next = a->cq->qps;
	a->cq->qps = qp;
	pthread_mutex_unlock(&a->cq->lock);
	return qp;
}

static void r_qp_destroy(struct ferry_hal_rdma_qp *qp)
{
	if (!qp)
		return;
	struct ferry_hal_rdma_cq *cq = qp->cq;
	if (cq) {
		pthread_mutex_lock(&cq->lock);
		for (struct ferry_hal_rdma_qp **pp = &cq->qps; *pp; pp = &(*pp)->cq_next) {
			if (*pp == qp) {
				*pp = qp->cq_next;
				break;
			}
		}
		pthread_mutex_unlock(&cq->lock);
		/* No completion of its work requests after this: drop those not polled yet. */
		size_t keep = 0;
		for (size_t i = 0; i < cq->count; i++) {
			struct mr_wc e = cq->q[(cq->head + i) % cq->cap];
			if (e.qp != qp)
				cq->q[(cq->head + keep++) % cq->cap] = e;
		}
		cq->count = keep;
	}
	if (qp->state == 0)
		qp_shut(qp);
	if (qp->fd >= 0)
		close(qp->fd);
	buf_free(&qp->in);
	buf_free(&qp->out);
	free(qp->sq);
	free(qp->rq);
	free(qp->inl_block);
	free(qp);
}

static int r_connect(struct ferry_device *fdev, const char *addr,
		     const struct ferry_hal_rdma_qp_attr *attr, const void *pdata,
		     uint32_t pdata_len, uint32_t timeout_ms, struct ferry_hal_rdma_qp **out)
{
	struct mock_rdma *r = mock_rdma_of(fdev);
	if (!r) {
		MOCK_ERR("connect: not a mock device with RDMA (rdma=1)");
		return -ENODEV;
	}
	struct sockaddr_in sa;
	if (!out || parse_addr(addr, &sa) || pdata_len > FERRY_HAL_RDMA_PDATA_MAX ||
	    (pdata_len && !pdata)) {
		MOCK_ERR("%s: connect: %s", r->dev->name,
			 !out                                   ? "NULL out"
			 : pdata_len > FERRY_HAL_RDMA_PDATA_MAX ? "private data above 56 bytes"
			 : (pdata_len && !pdata)                ? "NULL private data"
						 : "address is not \"a.b.c.d:port\"");
		return -EINVAL;
	}
	int rc = attr_check(r, "connect", attr);
	if (rc)
		return rc;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || sock_nb(fd)) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		MOCK_ERR("%s: connect: socket: %s", r->dev->name, strerror(-rc));
		return rc ? rc : -ENOMEM;
	}
	struct ferry_hal_rdma_qp *qp = qp_new(r, attr, fd);
	if (!qp) {
		close(fd);
		MOCK_ERR("%s: connect: out of memory", r->dev->name);
		return -ENOMEM;
	}
	qp->state = -EINPROGRESS;
	qp->deadline_ns = mock_now_ns() +
			  (uint64_t)(timeout_ms ? timeout_ms : MR_CONNECT_DEFAULT_MS) * 1000000ull;
	uint8_t *pl = msg_put(&qp->out, MR_M_REQ, pdata_len, pdata_len, 0, 0, qp->resp_res, 0);
	if (!pl) {
		r_qp_destroy(qp);
		MOCK_ERR("%s: connect: out of memory", r->dev->name);
		return -ENOMEM;
	}
	if (pdata_len)
		memcpy(pl, pdata, pdata_len);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		qp->tcp_up = 1;
	} else if (errno != EINPROGRESS) {
		int e = errno;
		qp_fail(qp,
			e == ENETUNREACH || e == EHOSTUNREACH ? -ENETUNREACH
			: e == ETIMEDOUT                      ? -ETIMEDOUT
							      : -ECONNREFUSED,
			strerror(e));
	}
	if (qp->tcp_up)
		qp_flush_out(qp);
	*out = qp;
	return 0;
}

static int r_qp_state(struct ferry_hal_rdma_qp *qp, const void **pdata, uint32_t *pdata_len)
{
	if (!qp) {
		MOCK_ERR("qp_state: NULL qp");
		return -EINVAL;
	}
	if (qp->cq)
		qp_progress(qp);
	if (pdata) {
		int has = qp->state == 0 || qp->state == -ECONNREFUSED ||
			  (qp->state == -ECONNRESET && qp->pdata_len);
		*pdata = has && qp->pdata_len ? qp->pdata : NULL;
		if (pdata_len)
			*pdata_len = has ? qp->pdata_len : 0;
	}
	return qp->state;
}

static int r_qp_addr(struct ferry_hal_rdma_qp *qp, int peer, char *buf, size_t len)
{
	struct sockaddr_in sa;
	socklen_t l = sizeof(sa);
	if (!qp || !buf) {
		MOCK_ERR("qp_addr: NULL %s", !qp ? "qp" : "buffer");
		return -EINVAL;
	}
	int rc = qp->fd < 0 ? -1
		 : peer     ? getpeername(qp->fd, (struct sockaddr *)&sa, &l)
			    : getsockname(qp->fd, (struct sockaddr *)&sa, &l);
	if (rc) {
		MOCK_ERR("%s: qp_addr: no %s address", qp->r->dev->name, peer ? "peer" : "local");
		return -ENOTCONN;
	}
	rc = fmt_addr(&sa, buf, len);
	if (rc)
		MOCK_ERR("%s: qp_addr: buffer of %zu bytes too small", qp->r->dev->name, len);
	return rc;
}

/* ---- posting --------------------------------------------------------------------------------- */

static int r_post_recv(struct ferry_hal_rdma_qp *qp, uint64_t wr_id,
		       const struct ferry_hal_rdma_sge *sge, uint32_t nsge)
{
	if (!qp || (nsge && !sge)) {
		MOCK_ERR("post_recv: NULL %s", !qp ? "qp" : "sge");
		return -EINVAL;
	}
	struct mock_rdma *r = qp->r;
	if (qp->state != 0 && qp->state != -EINPROGRESS) {
		MOCK_ERR("%s: post_recv: the QP is in the error state", r->dev->name);
		return -ECONNRESET;
	}
	if (nsge > qp->max_recv_sge) {
		MOCK_ERR("%s: post_recv: %u SGEs, the QP takes %u", r->dev->name, nsge,
			 qp->max_recv_sge);
		return -EINVAL;
	}
	if (qp->rq_tail - qp->rq_head >= qp->max_recv_wr) {
		MOCK_ERR("%s: post_recv: receive queue full (%u)", r->dev->name, qp->max_recv_wr);
		return -ENOSPC;
	}
	struct mr_rq_ent *e = &qp->rq[qp->rq_tail % qp->max_recv_wr];
	e->wr_id = wr_id;
	e->nsge = nsge;
	if (nsge)
		memcpy(e->sge, sge, sizeof(*sge) * nsge);
	e->fail = fault_take(r, FERRY_HAL_RDMA_OP_RECV, NULL);
	qp->rq_tail++;
	return 0;
}

static int wr_check(struct ferry_hal_rdma_qp *qp, const struct ferry_hal_rdma_wr *w, uint64_t *len)
{
	const char *why = NULL;
	uint64_t t = 0;
	if (w->opcode > FERRY_HAL_RDMA_OP_READ)
		why = "unknown opcode";
	else if (w->nsge > qp->max_send_sge)
		why = "more SGEs than the QP's max_send_sge";
	else if (w->nsge && !w->sge)
		why = "NULL sge";
	else if (w->flags & ~(FERRY_HAL_RDMA_WR_F_SIGNALED | FERRY_HAL_RDMA_WR_F_INLINE |
			      FERRY_HAL_RDMA_WR_F_FENCE))
		why = "unknown flags";
	for (uint32_t i = 0; !why && i < w->nsge; i++)
		t += w->sge[i].len;
	if (!why && t > MR_MAX_MSG)
		why = "more than 16 MiB";
	if (!why && (w->flags & FERRY_HAL_RDMA_WR_F_INLINE)) {
		if (w->opcode == FERRY_HAL_RDMA_OP_READ)
			why = "an inline READ";
		else if (t > qp->max_inline)
			why = "more inline bytes than the QP's max_inline";
		for (uint32_t i = 0; !why && i < w->nsge; i++)
			if (w->sge[i].len && !w->sge[i].addr)
				why = "a NULL inline SGE";
	}
	if (why) {
		MOCK_ERR("%s: post_send wr 0x%llx: %s", qp->r->dev->name,
			 (unsigned long long)w->wr_id, why);
		return -EINVAL;
	}
	*len = t;
	return 0;
}

static int r_post_send(struct ferry_hal_rdma_qp *qp, const struct ferry_hal_rdma_wr *wr,
		       const struct ferry_hal_rdma_wr **bad)
{
	if (!qp) {
		MOCK_ERR("post_send: NULL qp");
		if (bad)
			*bad = wr;
		return -EINVAL;
	}
	struct mock_rdma *r = qp->r;
	int rc = 0;
	const struct ferry_hal_rdma_wr *w = wr;
	for (; w; w = w->next) {
		uint64_t len = 0;
		if (qp->state == -EINPROGRESS) {
			MOCK_ERR("%s: post_send: the QP is not connected yet", r->dev->name);
			rc = -ENOTCONN;
		} else if (qp->state != 0) {
			MOCK_ERR("%s: post_send: the QP is in the error state", r->dev->name);
			rc = -ECONNRESET;
		} else if (qp->sq_tail - qp->sq_head >= qp->max_send_wr) {
			MOCK_ERR("%s: post_send: send queue full (%u)", r->dev->name,
				 qp->max_send_wr);
			rc = -ENOSPC;
		} else {
			rc = wr_check(qp, w, &len);
		}
		if (rc)
			break;
		struct mr_sq_ent *e = &qp->sq[qp->sq_tail % qp->max_send_wr];
		int corrupt = 0;
		e->wr_id = w->wr_id;
		e->opcode = w->opcode;
		e->flags = w->flags;
		e->nsge = w->nsge;
		e->rkey = w->rkey;
		e->raddr = w->remote_addr;
		e->len = len;
		e->inlined = !!(w->flags & FERRY_HAL_RDMA_WR_F_INLINE);
		if (w->nsge)
			memcpy(e->sge, w->sge, sizeof(*w->sge) * w->nsge);
		if (e->inlined) {
			uint8_t *p = e->inl;
			for (uint32_t i = 0; i < w->nsge; i++) {
				memcpy(p, (const void *)(uintptr_t)w->sge[i].addr, w->sge[i].len);
				p += w->sge[i].len;
			}
		}
		e->status = fault_take(r, w->opcode, &corrupt);
		e->state = e->status ? MR_E_DONE : MR_E_QUEUED;
		if (corrupt)
			e->rkey ^= 0x00a5a500u;
		qp->sq_tail++;
	}
	if (bad)
		*bad = rc ? w : NULL;
	/* Start sending now: the peer may be polling already. */
	qp_progress(qp);
	return rc;
}

/* ---- connection manager ---------------------------------------------------------------------- */

static int r_listen(struct ferry_device *fdev, const char *addr, uint32_t backlog,
		    struct ferry_hal_rdma_listener **out)
{
	struct mock_rdma *r = mock_rdma_of(fdev);
	struct sockaddr_in sa;
	if (!r) {
		MOCK_ERR("listen: not a mock device with RDMA (rdma=1)");
		return -ENODEV;
	}
	if (!out || parse_addr(addr, &sa)) {
		MOCK_ERR("%s: listen: %s", r->dev->name,
			 !out ? "NULL out" : "address is not \"a.b.c.d:port\"");
		return -EINVAL;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), one = 1;
	if (fd < 0) {
		int e = errno;
		MOCK_ERR("%s: listen: socket: %s", r->dev->name, strerror(e));
		return -e;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(fd, backlog ? (int)(backlog > 4096 ? 4096 : backlog) : 16)) {
		int e = errno;
		close(fd);
		MOCK_ERR("%s: listen on %s: %s", r->dev->name, addr, strerror(e));
		return e == EADDRINUSE ? -EADDRINUSE : e == EADDRNOTAVAIL ? -EINVAL : -e;
	}
	struct ferry_hal_rdma_listener *l = calloc(1, sizeof(*l));
	if (!l) {
		close(fd);
		MOCK_ERR("%s: listen: out of memory", r->dev->name);
		return -ENOMEM;
	}
	l->r = r;
	l->fd = fd;
	l->backlog = backlog ? backlog : 16;
	*out = l;
	return 0;
}

static int r_listener_addr(struct ferry_hal_rdma_listener *l, char *buf, size_t len)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	if (!l || !buf || getsockname(l->fd, (struct sockaddr *)&sa, &sl)) {
		MOCK_ERR("listener_addr: %s", !l     ? "NULL listener"
					      : !buf ? "NULL buffer"
						     : strerror(errno));
		return -EINVAL;
	}
	int rc = fmt_addr(&sa, buf, len);
	if (rc)
		MOCK_ERR("%s: listener_addr: buffer of %zu bytes too small", l->r->dev->name, len);
	return rc;
}

static void req_free(struct ferry_hal_rdma_req *q)
{
	if (q->fd >= 0)
		close(q->fd);
	buf_free(&q->in);
	free(q);
}

/* Answers a request with REP/REJ bytes written straight to its (fresh, idle) socket. */
static int req_answer(struct ferry_hal_rdma_req *q, uint8_t type, const void *pdata, uint32_t len)
{
	uint8_t m[HDR + FERRY_HAL_RDMA_PDATA_MAX];
	struct mr_msg h = {.type = type, .len = len};
	memcpy(m, &h, HDR);
	if (len)
		memcpy(m + HDR, pdata, len);
	ssize_t n = send(q->fd, m, HDR + len, MSG_NOSIGNAL | MSG_DONTWAIT);
	return n == (ssize_t)(HDR + len) ? 0 : -ECONNRESET;
}

static void reject_free(struct ferry_hal_rdma_req *q, const void *pdata, uint32_t len)
{
	(void)req_answer(q, MR_M_REJ, pdata, len);
	(void)shutdown(q->fd, SHUT_WR);
	req_free(q);
}

static void r_listener_close(struct ferry_hal_rdma_listener *l)
{
	if (!l)
		return;
	while (l->pending) {
		struct ferry_hal_rdma_req *q = l->pending;
		l->pending = q->next;
		reject_free(q, NULL, 0);
	}
	close(l->fd);
	free(l);
}

static int r_get_request(struct ferry_hal_rdma_listener *l, struct ferry_hal_rdma_req **out,
			 const void **pdata, uint32_t *pdata_len)
{
	if (!l || !out) {
		MOCK_ERR("get_request: NULL %s", !l ? "listener" : "out");
		return -EINVAL;
	}
	struct mock_rdma *r = l->r;
	while (l->npending < l->backlog) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			break;
		struct ferry_hal_rdma_req *q = calloc(1, sizeof(*q));
		if (!q) {
			close(fd);
			MOCK_ERR("%s: get_request: out of memory", r->dev->name);
			break;
		}
		(void)sock_nb(fd);
		q->r = r;
		q->fd = fd;
		q->deadline_ns = mock_now_ns() + MR_REQ_TIMEOUT_NS;
		q->next = l->pending;
		l->pending = q;
		l->npending++;
	}
	uint64_t now = mock_now_ns();
	for (struct ferry_hal_rdma_req **pp = &l->pending; *pp;) {
		struct ferry_hal_rdma_req *q = *pp;
		const char *bad = NULL;
		int closed = 0;
		if (buf_len(&q->in) < HDR) {
			if (buf_reserve(&q->in, HDR + FERRY_HAL_RDMA_PDATA_MAX)) {
				bad = "out of memory";
			} else {
				ssize_t n = recv(q->fd, q->in.p + q->in.end,
						 HDR + FERRY_HAL_RDMA_PDATA_MAX - buf_len(&q->in),
						 MSG_DONTWAIT);
				if (n > 0)
					q->in.end += (size_t)n;
				else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
					closed = 1;
			}
		}
		struct mr_msg m;
		int whole = 0;
		if (!bad && buf_len(&q->in) >= HDR) {
			memcpy(&m, q->in.p + q->in.start, HDR);
			if (m.type != MR_M_REQ || m.len > FERRY_HAL_RDMA_PDATA_MAX) {
				bad = "not a connect request";
			} else if (buf_len(&q->in) < HDR + m.len) {
				ssize_t n = recv(q->fd, q->in.p + q->in.end,
						 HDR + m.len - buf_len(&q->in), MSG_DONTWAIT);
				if (n > 0)
					q->in.end += (size_t)n;
				else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
					closed = 1;
			}
			whole = !bad && buf_len(&q->in) >= HDR + m.len;
		}
		if (!whole && !bad && (closed || now >= q->deadline_ns))
			bad = closed ? "closed before its request" : "no request within 5 s";
		if (bad) {
			if (mock_nic_ratelimit(r->nic))
				MOCK_ERR("%s: a connection to the listener dropped: %s",
					 r->dev->name, bad);
			*pp = q->next;
			l->npending--;
			req_free(q);
			continue;
		}
		if (!whole) {
			pp = &q->next;
			continue;
		}
		*pp = q->next;
		l->npending--;
		q->next = NULL;
		memcpy(q->pdata, q->in.p + q->in.start + HDR, m.len);
		q->pdata_len = m.len;
		q->peer_resp_res = m.rkey > MR_MAX_RD_ATOM ? MR_MAX_RD_ATOM : m.rkey;
		buf_consume(&q->in, HDR + m.len);
		*out = q;
		if (pdata)
			*pdata = q->pdata_len ? q->pdata : NULL;
		if (pdata_len)
			*pdata_len = q->pdata_len;
		return 0;
	}
	return -EAGAIN;
}

static int r_accept(struct ferry_hal_rdma_req *q, const struct ferry_hal_rdma_qp_attr *attr,
		    const void *pdata, uint32_t pdata_len, struct ferry_hal_rdma_qp **out)
{
	if (!q) {
		MOCK_ERR("accept: NULL request");
		return -EINVAL;
	}
	struct mock_rdma *r = q->r;
	int rc = attr_check(r, "accept", attr);
	if (!rc && (!out || pdata_len > FERRY_HAL_RDMA_PDATA_MAX || (pdata_len && !pdata))) {
		MOCK_ERR("%s: accept: %s", r->dev->name,
			 !out ? "NULL out" : "private data NULL or above 56 bytes");
		rc = -EINVAL;
	}
	if (rc) {
		reject_free(q, NULL, 0);
		return rc;
	}
	struct ferry_hal_rdma_qp *qp = qp_new(r, attr, q->fd);
	if (!qp) {
		MOCK_ERR("%s: accept: out of memory", r->dev->name);
		reject_free(q, NULL, 0);
		return -ENOMEM;
	}
	if (q->peer_resp_res && qp->init_depth > q->peer_resp_res)
		qp->init_depth = q->peer_resp_res; /* the requester serves no more at once */
	q->fd = -1;
	qp->in = q->in; /* anything the peer sent after its request */
	q->in = (struct mr_buf){0};
	req_free(q);
	qp->tcp_up = 1;
	uint8_t *pl = msg_put(&qp->out, MR_M_REP, pdata_len, pdata_len, 0, 0, qp->resp_res, 0);
	if (!pl) {
		r_qp_destroy(qp);
		MOCK_ERR("%s: accept: out of memory", r->dev->name);
		return -ENOMEM;
	}
	if (pdata_len)
		memcpy(pl, pdata, pdata_len);
	qp_flush_out(qp);
	*out = qp;
	return 0;
}

static void r_reject(struct ferry_hal_rdma_req *q, const void *pdata, uint32_t pdata_len)
{
	if (!q)
		return;
	if (pdata_len > FERRY_HAL_RDMA_PDATA_MAX || (pdata_len && !pdata)) {
		MOCK_ERR("%s: reject: private data NULL or above 56 bytes: sent without it",
			 q->r->dev->name);
		pdata_len = 0;
	}
	reject_free(q, pdata, pdata_len);
}

/* ---- device ---------------------------------------------------------------------------------- */

static int r_query(struct ferry_device *fdev, struct ferry_hal_rdma_info *info)
{
	struct mock_rdma *r = mock_rdma_of(fdev);
	if (!r || !info) {
		MOCK_ERR("rdma query: %s", !mock_nic_of(fdev) ? "not a mock device"
					   : !r ? "RDMA is off on this device (rdma=0)"
						: "NULL info");
		return !info && r ? -EINVAL : -ENODEV;
	}
	memset(info, 0, sizeof(*info));
	snprintf(info->name, sizeof(info->name), "%.31s", r->dev->name);
	info->max_sge = MR_MAX_SGE;
	info->max_inline = MR_MAX_INLINE;
	info->max_qp_wr = MR_MAX_QP_WR;
	info->max_cqe = MR_MAX_CQE;
	info->max_qp_rd_atom = MR_MAX_RD_ATOM;
	info->max_qp_init_rd_atom = MR_MAX_RD_ATOM;
	info->max_mr_size = MR_MAX_MR_SIZE;
	if (r->nic_domain)
		info->domains[info->ndomains++] = r->nic_domain;
	return 0;
}

static int r_stats(struct ferry_device *fdev, struct ferry_hal_rdma_stats *st)
{
	struct mock_rdma *r = mock_rdma_of(fdev);
	if (!r || !st) {
		MOCK_ERR("rdma_stats: %s", !r ? "not a mock device with RDMA" : "NULL stats");
		return !r ? -ENODEV : -EINVAL;
	}
	*st = (struct ferry_hal_rdma_stats){
		.sends = atomic_load(&r->st_sends),
		.recvs = atomic_load(&r->st_recvs),
		.writes = atomic_load(&r->st_writes),
		.reads = atomic_load(&r->st_reads),
		.send_bytes = atomic_load(&r->st_send_bytes),
		.recv_bytes = atomic_load(&r->st_recv_bytes),
		.write_bytes = atomic_load(&r->st_write_bytes),
		.read_bytes = atomic_load(&r->st_read_bytes),
		.wc_errors = atomic_load(&r->st_wc_errors),
		.mr_regs = atomic_load(&r->st_mr_regs),
		.mr_deregs = atomic_load(&r->st_mr_deregs),
		.qp_errors = atomic_load(&r->st_qp_errors),
	};
	return 0;
}

const struct ferry_hal_rdma_ops mock_rdma_ops = {
	.abi_version = FERRY_HAL_RDMA_ABI_VERSION,
	.query = r_query,
	.mr_reg = mock_rdma_mr_reg,
	.mr_reg_mem = mock_rdma_mr_reg_mem,
	.mr_dereg = mock_rdma_mr_dereg,
	.mr_keys = mock_rdma_mr_keys,
	.cq_create = r_cq_create,
	.cq_destroy = r_cq_destroy,
	.cq_poll = r_cq_poll,
	.cq_wait = r_cq_wait,
	.listen = r_listen,
	.listener_addr = r_listener_addr,
	.listener_close = r_listener_close,
	.get_request = r_get_request,
	.accept = r_accept,
	.reject = r_reject,
	.connect = r_connect,
	.qp_state = r_qp_state,
	.qp_destroy = r_qp_destroy,
	.qp_addr = r_qp_addr,
	.post_recv = r_post_recv,
	.post_send = r_post_send,
	.rdma_stats = r_stats,
};

int mock_rdma_create(struct mock_nic *nic, const char *args)
{
	uint64_t on = 1, seed = 1, rnr = MR_RNR_DEFAULT_MS;
	int rc = mock_arg_u64(args, "rdma", 0, 0, 1, &on);
	if (!rc)
		rc = mock_arg_u64(args, "rdma_seed", 0, 0, UINT64_MAX, &seed);
	if (!rc)
		rc = mock_arg_u64(args, "rdma_rnr_ms", 0, 1, 60000, &rnr);
	if (rc || !on)
		return rc;
	struct mock_rdma *r = calloc(1, sizeof(*r));
	if (!r) {
		MOCK_ERR("%s: out of memory for the RDMA NIC", nic->dev->name);
		return -ENOMEM;
	}
	r->nic = nic;
	r->dev = nic->dev;
	r->nic_domain = nic->nic_domain;
	r->seed = seed;
	r->rnr_ms = (uint32_t)rnr;
	r->f.size = sizeof(r->f);
	pthread_rwlock_init(&r->mr_lock, NULL);
	pthread_mutex_init(&r->fault_lock, NULL);
	nic->rdma = r;
	return 0;
}

void mock_rdma_destroy(struct mock_nic *nic)
{
	struct mock_rdma *r = nic ? nic->rdma : NULL;
	if (!r)
		return;
	mock_rdma_mr_free_all(r);
	pthread_rwlock_destroy(&r->mr_lock);
	pthread_mutex_destroy(&r->fault_lock);
	free(r);
	nic->rdma = NULL;
}

FERRY_API int ferry_mock_rdma_set_faults(struct ferry_device *fdev,
					 const struct ferry_mock_rdma_faults *f)
{
	struct mock_rdma *r = mock_rdma_of(fdev);
	const char *why = !r ? "not a mock device with RDMA (rdma=1)"
			  : !f || f->size != sizeof(*f)
				  ? "NULL or f->size is not sizeof(struct ferry_mock_rdma_faults)"
			  : f->fail_nth && f->fail_opcode > FERRY_HAL_RDMA_OP_RECV
				  ? "fail_opcode is not SEND, WRITE, READ or RECV"
			  : f->fail_status > 0     ? "fail_status is not a negative errno"
			  : f->error_ppm > 1000000 ? "error_ppm above 1000000"
						   : NULL;
	if (why) {
		MOCK_ERR("rdma_set_faults: %s", why);
		return -EINVAL;
	}
	pthread_mutex_lock(&r->fault_lock);
	r->f = *f;
	memset(r->n_kind, 0, sizeof(r->n_kind));
	r->n_rdma = r->n_wr = 0;
	pthread_mutex_unlock(&r->fault_lock);
	return 0;
}
