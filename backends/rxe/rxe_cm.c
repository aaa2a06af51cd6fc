/*
 * The rxe backend's connection manager part (ferry/hal/rdma.h): listeners and connection
 * requests, accept / reject, the active side's address -> route -> QP -> connect sequence
 * (all non-blocking, advanced by the QP's own rdma_cm event channel), QP states, destroy and
 * addresses. The private data of requests, accepts and rejects is the peer's: copied,
 * bounded to FERRY_HAL_RDMA_PDATA_MAX bytes (IB CM pads it: lengths may exceed what was sent).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "rxe_internal.h"

/* ---- helpers ------------------------------------------------------------------------------- */

static struct rdma_event_channel *channel_create(const char *what)
{
	struct rdma_event_channel *ch = rdma_create_event_channel();
	if (!ch) {
		RXE_ERR("%s: rdma_create_event_channel: %s (is rdma_ucm loaded?)", what,
			strerror(errno));
		return NULL;
	}
	int rc = rxe_set_nonblock(ch->fd);
	if (rc) {
		RXE_ERR("%s: event channel non-blocking: %s", what, strerror(-rc));
		rdma_destroy_event_channel(ch);
		return NULL;
	}
	return ch;
}

/* Drops every event still queued on @p ch (acked; connection requests rejected). */
static void channel_drain(struct rdma_event_channel *ch)
{
	struct rdma_cm_event *ev;
	while (rdma_get_cm_event(ch, &ev) == 0) {
		if (ev->event == RDMA_CM_EVENT_CONNECT_REQUEST) {
			struct rdma_cm_id *id = ev->id;
			rdma_ack_cm_event(ev);
			rdma_reject(id, NULL, 0);
			rdma_destroy_id(id);
			continue;
		}
		rdma_ack_cm_event(ev);
	}
}

static uint32_t pdata_copy(uint8_t *dst, const void *src, uint32_t len)
{
	if (!src)
		return 0;
	if (len > FERRY_HAL_RDMA_PDATA_MAX)
		len = FERRY_HAL_RDMA_PDATA_MAX;
	memcpy(dst, src, len);
	return len;
}

static int attr_check(struct rxe_dev *d, const char *what, const struct ferry_hal_rdma_qp_attr *a)
{
	if (!a || a->size < sizeof(*a)) {
		RXE_ERR("%s: %s", what,
			!a ? "no QP attributes"
			   : "QP attributes too short "
			     "(size field)");
		return -EINVAL;
	}
	if (!a->cq || a->cq->dev != d) {
		RXE_ERR("%s: %s", what, !a->cq ? "no CQ" : "the CQ is another device's");
		return -EINVAL;
	}
	uint32_t maxwr = d->attr.max_qp_wr > 0 ? (uint32_t)d->attr.max_qp_wr : 0;
	if (!a->max_send_wr || !a->max_recv_wr || a->max_send_wr > maxwr ||
	    a->max_recv_wr > maxwr) {
		RXE_ERR("%s: queue sizes send %u / recv %u not in 1..%u", what, a->max_send_wr,
			a->max_recv_wr, maxwr);
		return -EINVAL;
	}
	if (!a->max_send_sge || !a->max_recv_sge || a->max_send_sge > d->max_sge ||
	    a->max_recv_sge > d->max_sge) {
		RXE_ERR("%s: SGEs send %u / recv %u not in 1..%u", what, a->max_send_sge,
			a->max_recv_sge, d->max_sge);
		return -EINVAL;
	}
	if (a->max_inline > d->max_inline) {
		RXE_ERR("%s: %u inline bytes asked, the device offers %u", what, a->max_inline,
			d->max_inline);
		return -EINVAL;
	}
	return 0;
}

static struct ferry_hal_rdma_qp *qp_new(struct rxe_dev *d, const struct ferry_hal_rdma_qp_attr *a,
					int active)
{
	struct ferry_hal_rdma_qp *qp = calloc(1, sizeof(*qp));
	if (!qp)
		return NULL;
	qp->dev = d;
	qp->cq = a->cq;
	qp->ctx = a->ctx;
	qp->active = active;
	qp->state = -EINPROGRESS;
	qp->max_send_wr = a->max_send_wr;
	qp->max_recv_wr = a->max_recv_wr;
	qp->max_send_sge = a->max_send_sge;
	qp->max_recv_sge = a->max_recv_sge;
	qp->max_inline = a->max_inline;
	uint32_t ird = d->attr.max_qp_rd_atom > 0 ? (uint32_t)d->attr.max_qp_rd_atom : 1;
	uint32_t ord = d->attr.max_qp_init_rd_atom > 0 ? (uint32_t)d->attr.max_qp_init_rd_atom : 1;
	uint32_t idep = a->initiator_depth ? a->initiator_depth : 1;
	uint32_t resp = a->responder_resources ? a->responder_resources : 1;
	qp->initiator_depth = (uint8_t)(idep < ord ? idep : ord);
	qp->responder_resources = (uint8_t)(resp < ird ? resp : ird);
	if (rxe_qp_slots_init(qp)) {
		free(qp);
		return NULL;
	}
	return qp;
}

static void qp_free(struct ferry_hal_rdma_qp *qp)
{
	rxe_qp_slots_free(qp);
	free(qp);
}

/* rdma_create_qp on the QP's cm_id, then posts the receives that waited. */
static int qp_create_verbs(struct ferry_hal_rdma_qp *qp, const char *what)
{
	struct ibv_qp_init_attr ia = {
		.qp_context = qp,
		.send_cq = qp->cq->cq,
		.recv_cq = qp->cq->cq,
		.qp_type = IBV_QPT_RC,
		.sq_sig_all = 0,
		.cap = {.max_send_wr = qp->max_send_wr,
			.max_recv_wr = qp->max_recv_wr,
			.max_send_sge = qp->max_send_sge,
			.max_recv_sge = qp->max_recv_sge,
			.max_inline_data = qp->max_inline},
	};
	if (rdma_create_qp(qp->id, qp->dev->pd, &ia)) {
		int rc = errno ? -errno : -ENOMEM;
		RXE_ERR("%s: rdma_create_qp (send %u, recv %u, sge %u/%u, inline %u): %s", what,
			qp->max_send_wr, qp->max_recv_wr, qp->max_send_sge, qp->max_recv_sge,
			qp->max_inline, strerror(-rc));
		return rc;
	}
	qp->qp = qp->id->qp;
	qp->qp_num = qp->qp->qp_num;
	return rxe_qp_post_pending(qp);
}

void rxe_qp_fail(struct ferry_hal_rdma_qp *qp, int err, const char *why)
{
	if (qp->phase == RXE_QP_FAILED)
		return;
	int was_est = qp->phase == RXE_QP_EST;
	qp->phase = RXE_QP_FAILED;
	qp->state = err;
	if (was_est || qp->qp)
		rxe_stat_add(qp->dev, RXE_ST_QP_ERRORS, 1);
	if (err != -ECONNRESET || !was_est)
		RXE_ERR("qp %u: %s (%d)", qp->qp_num, why, err);
	else
		RXE_DBG("qp %u: %s", qp->qp_num, why);
	if (qp->qp) {
		struct ibv_qp_attr a = {.qp_state = IBV_QPS_ERR};
		if (ibv_modify_qp(qp->qp, &a, IBV_QP_STATE))
			RXE_WARN("qp %u: to the error state: %s", qp->qp_num, strerror(errno));
	}
	rxe_qp_flush_pending(qp);
}

static int cm_status_err(int status, int dflt)
{
	if (status == -ETIMEDOUT || status == ETIMEDOUT)
		return -ETIMEDOUT;
	return dflt;
}

static uint32_t ms_left(const struct ferry_hal_rdma_qp *qp)
{
	if (!qp->deadline_ns)
		return 2000;
	uint64_t now = rxe_now_ns();
	if (now >= qp->deadline_ns)
		return 1;
	uint64_t ms = (qp->deadline_ns - now) / 1000000u;
	return ms ? (ms > 60000 ? 60000 : (uint32_t)ms) : 1;
}

static void qp_event(struct ferry_hal_rdma_qp *qp, struct rdma_cm_event *ev)
{
	struct rxe_dev *d = qp->dev;
	switch (ev->event) {
	case RDMA_CM_EVENT_ADDR_RESOLVED:
		if (qp->phase != RXE_QP_ADDR)
			break;
		if (!qp->id->verbs || qp->id->verbs != d->ctx) {
			const char *other = qp->id->verbs
						    ? ibv_get_device_name(qp->id->verbs->device)
						    : "no device";
			RXE_ERR("connect: the address resolves to %s, not to this device %s", other,
				d->name);
			rxe_qp_fail(qp, -ENETUNREACH, "address on another RDMA device");
			break;
		}
		if (rdma_resolve_route(qp->id, (int)ms_left(qp))) {
			rxe_qp_fail(qp, -ENETUNREACH, "rdma_resolve_route failed");
			break;
		}
		qp->phase = RXE_QP_ROUTE;
		break;
	case RDMA_CM_EVENT_ROUTE_RESOLVED: {
		if (qp->phase != RXE_QP_ROUTE)
			break;
		int rc = qp_create_verbs(qp, "connect");
		if (rc) {
			rxe_qp_fail(qp, rc == -ENOMEM ? -ENOMEM : -ENETUNREACH,
				    "creating the QP failed");
			break;
		}
		struct rdma_conn_param cp = {
			.private_data = qp->req_pdata_len ? qp->req_pdata : NULL,
			.private_data_len = (uint8_t)qp->req_pdata_len,
			.responder_resources = qp->responder_resources,
			.initiator_depth = qp->initiator_depth,
			.retry_count = 7,
			.rnr_retry_count = 7,
		};
		if (rdma_connect(qp->id, &cp)) {
			RXE_ERR("connect: rdma_connect: %s", strerror(errno));
			rxe_qp_fail(qp, -ENETUNREACH, "rdma_connect failed");
			break;
		}
		qp->phase = RXE_QP_CONN;
		break;
	}
	case RDMA_CM_EVENT_ESTABLISHED:
		if (qp->phase != RXE_QP_CONN)
			break;
		if (qp->active)
			qp->peer_pdata_len = pdata_copy(qp->peer_pdata, ev->param.conn.private_data,
							ev->param.conn.private_data_len);
		qp->phase = RXE_QP_EST;
		qp->state = 0;
		qp->was_established = 1;
		qp->deadline_ns = 0;
		break;
	case RDMA_CM_EVENT_REJECTED:
		if (ev->status == RXE_REJ_CONSUMER_DEFINED)
			qp->peer_pdata_len = pdata_copy(qp->peer_pdata, ev->param.conn.private_data,
							ev->param.conn.private_data_len);
		else
			qp->peer_pdata_len = 0;
		RXE_DBG("connect: rejected (reason %d)", ev->status);
		rxe_qp_fail(qp, -ECONNREFUSED,
			    ev->status == RXE_REJ_CONSUMER_DEFINED
				    ? "the peer rejected the connection"
				    : "nothing listens there");
		break;
	case RDMA_CM_EVENT_ADDR_ERROR:
		rxe_qp_fail(qp, cm_status_err(ev->status, -ENETUNREACH),
			    "address resolution failed");
		break;
	case RDMA_CM_EVENT_ROUTE_ERROR:
		rxe_qp_fail(qp, cm_status_err(ev->status, -ENETUNREACH), "route resolution failed");
		break;
	case RDMA_CM_EVENT_UNREACHABLE:
		rxe_qp_fail(qp, cm_status_err(ev->status, -ETIMEDOUT), "the peer is unreachable");
		break;
	case RDMA_CM_EVENT_CONNECT_ERROR:
		rxe_qp_fail(qp,
			    qp->was_established ? -ECONNRESET
						: cm_status_err(ev->status, -ENETUNREACH),
			    "connection error");
		break;
	case RDMA_CM_EVENT_DISCONNECTED:
		rxe_qp_fail(qp, -ECONNRESET, "the peer disconnected");
		rdma_disconnect(qp->id); /* answer the DREQ; the QP is in error already */
		break;
	case RDMA_CM_EVENT_DEVICE_REMOVAL:
		rxe_qp_fail(qp, -ECONNRESET, "the RDMA device was removed");
		break;
	default: /* TIMEWAIT_EXIT, ADDR_CHANGE, ...: nothing to do */
		RXE_DBG("qp %u: cm event %s ignored", qp->qp_num, rdma_event_str(ev->event));
		break;
	}
}

void rxe_qp_drive(struct ferry_hal_rdma_qp *qp)
{
	struct rdma_cm_event *ev;
	while (qp->ch && rdma_get_cm_event(qp->ch, &ev) == 0) {
		if (ev->id != qp->id) { /* not ours (cannot happen: one id per channel) */
			rdma_ack_cm_event(ev);
			continue;
		}
		qp_event(qp, ev);
		rdma_ack_cm_event(ev);
	}
	if (qp->phase < RXE_QP_EST && qp->deadline_ns && rxe_now_ns() >= qp->deadline_ns)
		rxe_qp_fail(qp, -ETIMEDOUT, "the connection was not made in time");
}

/* ---- listeners ----------------------------------------------------------------------------- */

int rxe_listen(struct ferry_device *fdev, const char *addr, uint32_t backlog,
	       struct ferry_hal_rdma_listener **out)
{
	struct rxe_dev *d = rxe_dev_of(fdev);
	struct sockaddr_in sa;
	int rc;
	if (!d) {
		RXE_ERR("listen: not an rxe device");
		return -ENODEV;
	}
	if (!out) {
		RXE_ERR("listen: no output pointer");
		return -EINVAL;
	}
	rc = rxe_addr_parse("listen", addr, &sa);
	if (rc)
		return rc;
	struct ferry_hal_rdma_listener *l = calloc(1, sizeof(*l));
	if (!l) {
		RXE_ERR("listen: out of memory");
		return -ENOMEM;
	}
	l->dev = d;
	l->ch = channel_create("listen");
	if (!l->ch) {
		free(l);
		return -ENODEV;
	}
	if (rdma_create_id(l->ch, &l->id, l, RDMA_PS_TCP)) {
		rc = -errno;
		RXE_ERR("listen: rdma_create_id: %s", strerror(errno));
		goto fail;
	}
	if (rdma_bind_addr(l->id, (struct sockaddr *)&sa)) {
		rc = -errno;
		if (rc == -EADDRINUSE)
			RXE_ERR("listen: %s is in use", addr);
		else
			RXE_ERR("listen: %s is not an address of an RDMA device (%s)", addr,
				strerror(errno));
		if (rc != -EADDRINUSE)
			rc = -EADDRNOTAVAIL;
		goto fail;
	}
	if (l->id->verbs && l->id->verbs != d->ctx) {
		RXE_ERR("listen: %s belongs to RDMA device %s, not to this device %s", addr,
			ibv_get_device_name(l->id->verbs->device), d->name);
		rc = -EXDEV;
		goto fail;
	}
	if (rdma_listen(l->id, backlog ? (int)(backlog > 1024 ? 1024 : backlog) : 16)) {
		rc = -errno;
		RXE_ERR("listen: rdma_listen %s: %s", addr, strerror(errno));
		goto fail;
	}
	rxe_obj_get(d);
	*out = l;
	return 0;
fail:
	if (l->id)
		rdma_destroy_id(l->id);
	rdma_destroy_event_channel(l->ch);
	free(l);
	return rc ? rc : -EIO;
}

int rxe_listener_addr(struct ferry_hal_rdma_listener *l, char *buf, size_t len)
{
	if (!l || !buf) {
		RXE_ERR("listener_addr: %s", !l ? "no listener" : "no buffer");
		return -EINVAL;
	}
	struct sockaddr_storage ss;
	struct sockaddr *sa = rdma_get_local_addr(l->id);
	memcpy(&ss, sa,
	       sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					 : sizeof(struct sockaddr_in));
	if (ss.ss_family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = rdma_get_src_port(l->id);
	int rc = rxe_addr_format((struct sockaddr *)&ss, buf, len);
	if (rc)
		RXE_ERR("listener_addr: %s", rc == -ENOBUFS ? "buffer too small" : "no address");
	return rc;
}

void rxe_listener_close(struct ferry_hal_rdma_listener *l)
{
	if (!l)
		return;
	channel_drain(l->ch); /* pending requests rejected */
	rdma_destroy_id(l->id);
	channel_drain(l->ch);
	rdma_destroy_event_channel(l->ch);
	rxe_obj_put(l->dev);
	free(l);
}

static void req_free(struct ferry_hal_rdma_req *r)
{
	if (r->id)
		rdma_destroy_id(r->id);
	if (r->ch) {
		channel_drain(r->ch);
		rdma_destroy_event_channel(r->ch);
	}
	rxe_obj_put(r->dev);
	free(r);
}

int rxe_get_request(struct ferry_hal_rdma_listener *l, struct ferry_hal_rdma_req **out,
		    const void **pdata, uint32_t *pdata_len)
{
	if (!l || !out) {
		RXE_ERR("get_request: %s", !l ? "no listener" : "no output pointer");
		return -EINVAL;
	}
	struct rdma_cm_event *ev;
	while (rdma_get_cm_event(l->ch, &ev) == 0) {
		if (ev->event != RDMA_CM_EVENT_CONNECT_REQUEST) {
			RXE_DBG("listener: cm event %s ignored", rdma_event_str(ev->event));
			rdma_ack_cm_event(ev);
			continue;
		}
		struct rdma_cm_id *id = ev->id;
		struct ferry_hal_rdma_req *r = calloc(1, sizeof(*r));
		if (r) {
			r->dev = l->dev;
			r->pdata_len = pdata_copy(r->pdata, ev->param.conn.private_data,
						  ev->param.conn.private_data_len);
			r->peer_initiator_depth = ev->param.conn.initiator_depth;
			r->peer_responder_resources = ev->param.conn.responder_resources;
		}
		rdma_ack_cm_event(ev);
		if (!r) {
			RXE_ERR("get_request: out of memory: request rejected");
			rdma_reject(id, NULL, 0);
			rdma_destroy_id(id);
			continue;
		}
		if (id->verbs != l->dev->ctx) {
			RXE_ERR("get_request: a request on device %s, not %s: rejected",
				id->verbs ? ibv_get_device_name(id->verbs->device) : "(none)",
				l->dev->name);
			rdma_reject(id, NULL, 0);
			rdma_destroy_id(id);
			free(r);
			continue;
		}
		r->ch = channel_create("get_request");
		if (!r->ch || rdma_migrate_id(id, r->ch)) {
			RXE_ERR("get_request: own event channel for the request: %s: rejected",
				strerror(errno));
			rdma_reject(id, NULL, 0);
			rdma_destroy_id(id);
			if (r->ch)
				rdma_destroy_event_channel(r->ch);
			free(r);
			continue;
		}
		r->id = id;
		rxe_obj_get(l->dev);
		*out = r;
		if (pdata)
			*pdata = r->pdata_len ? r->pdata : NULL;
		if (pdata_len)
			*pdata_len = r->pdata_len;
		return 0;
	}
	return -EAGAIN;
}

void rxe_reject(struct ferry_hal_rdma_req *req, const void *pdata, uint32_t pdata_len)
{
	if (!req)
		return;
	if (pdata_len > FERRY_HAL_RDMA_PDATA_MAX || (pdata_len && !pdata)) {
		RXE_ERR("reject: %u bytes of private data (at most %u): rejected without them",
			pdata_len, FERRY_HAL_RDMA_PDATA_MAX);
		pdata = NULL;
		pdata_len = 0;
	}
	if (rdma_reject(req->id, pdata_len ? pdata : NULL, (uint8_t)pdata_len))
		RXE_WARN("reject: rdma_reject: %s", strerror(errno));
	req_free(req);
}

int rxe_accept(struct ferry_hal_rdma_req *req, const struct ferry_hal_rdma_qp_attr *attr,
	       const void *pdata, uint32_t pdata_len, struct ferry_hal_rdma_qp **out)
{
	int rc;
	if (!req) {
		RXE_ERR("accept: no request");
		return -EINVAL;
	}
	struct rxe_dev *d = req->dev;
	if (!out || pdata_len > FERRY_HAL_RDMA_PDATA_MAX || (pdata_len && !pdata)) {
		RXE_ERR("accept: %s", !out ? "no output pointer"
					   : "bad private data (at most 56 "
					     "bytes)");
		rc = -EINVAL;
		goto reject;
	}
	rc = attr_check(d, "accept", attr);
	if (rc)
		goto reject;
	struct ferry_hal_rdma_qp *qp = qp_new(d, attr, 0);
	if (!qp) {
		RXE_ERR("accept: out of memory");
		rc = -ENOMEM;
		goto reject;
	}
	/* Not more READs than the peer serves, nor more served than it issues. */
	if (req->peer_responder_resources && qp->initiator_depth > req->peer_responder_resources)
		qp->initiator_depth = req->peer_responder_resources;
	if (req->peer_initiator_depth && qp->responder_resources > req->peer_initiator_depth)
		qp->responder_resources = req->peer_initiator_depth;
	qp->id = req->id;
	qp->ch = req->ch;
	qp->id->context = qp;
	qp->phase = RXE_QP_CONN;
	rc = qp_create_verbs(qp, "accept");
	if (rc) {
		qp->id = NULL;
		qp->ch = NULL;
		qp_free(qp);
		goto reject;
	}
	struct rdma_conn_param cp = {
		.private_data = pdata_len ? pdata : NULL,
		.private_data_len = (uint8_t)pdata_len,
		.responder_resources = qp->responder_resources,
		.initiator_depth = qp->initiator_depth,
		.retry_count = 7,
		.rnr_retry_count = 7,
	};
	if (rdma_accept(qp->id, &cp)) {
		rc = errno ? -errno : -EIO;
		RXE_ERR("accept: rdma_accept: %s", strerror(errno));
		rdma_destroy_qp(qp->id);
		qp->qp = NULL;
		qp->id = NULL;
		qp->ch = NULL;
		qp_free(qp);
		goto reject;
	}
	/* The request's object count becomes the QP's. */
	req->id = NULL;
	req->ch = NULL;
	free(req);
	rxe_cq_add_qp(qp->cq, qp);
	*out = qp;
	return 0;
reject:
	rxe_reject(req, NULL, 0);
	return rc;
}

/* ---- active side --------------------------------------------------------------------------- */

int rxe_connect(struct ferry_device *fdev, const char *addr,
		const struct ferry_hal_rdma_qp_attr *attr, const void *pdata, uint32_t pdata_len,
		uint32_t timeout_ms, struct ferry_hal_rdma_qp **out)
{
	struct rxe_dev *d = rxe_dev_of(fdev);
	struct sockaddr_in sa;
	int rc;
	if (!d) {
		RXE_ERR("connect: not an rxe device");
		return -ENODEV;
	}
	if (!out || pdata_len > FERRY_HAL_RDMA_PDATA_MAX || (pdata_len && !pdata)) {
		RXE_ERR("connect: %s", !out ? "no output pointer"
					    : "bad private data (at most 56 "
					      "bytes)");
		return -EINVAL;
	}
	rc = rxe_addr_parse("connect", addr, &sa);
	if (rc)
		return rc;
	if (sa.sin_addr.s_addr == htonl(INADDR_ANY) || sa.sin_port == 0) {
		RXE_ERR("connect: %s: no peer address or port", addr);
		return -EINVAL;
	}
	rc = attr_check(d, "connect", attr);
	if (rc)
		return rc;
	struct ferry_hal_rdma_qp *qp = qp_new(d, attr, 1);
	if (!qp) {
		RXE_ERR("connect: out of memory");
		return -ENOMEM;
	}
	qp->req_pdata_len = pdata_copy(qp->req_pdata, pdata, pdata_len);
	qp->ch = channel_create("connect");
	if (!qp->ch) {
		qp_free(qp);
		return -ENODEV;
	}
	if (rdma_create_id(qp->ch, &qp->id, qp, RDMA_PS_TCP)) {
		rc = errno ? -errno : -ENOMEM;
		RXE_ERR("connect: rdma_create_id: %s", strerror(errno));
		goto fail;
	}
	if (!timeout_ms)
		timeout_ms = 10000;
	qp->deadline_ns = rxe_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	qp->phase = RXE_QP_ADDR;
	if (rdma_resolve_addr(qp->id, NULL, (struct sockaddr *)&sa, (int)ms_left(qp))) {
		rc = errno ? -errno : -EIO;
		RXE_ERR("connect: rdma_resolve_addr %s: %s", addr, strerror(errno));
		rc = rc == -ENETUNREACH || rc == -ENODEV || rc == -EADDRNOTAVAIL ? -ENETUNREACH
										 : rc;
		goto fail;
	}
	rxe_obj_get(d);
	rxe_cq_add_qp(qp->cq, qp);
	*out = qp;
	return 0;
fail:
	if (qp->id)
		rdma_destroy_id(qp->id);
	rdma_destroy_event_channel(qp->ch);
	qp_free(qp);
	return rc;
}

int rxe_qp_state(struct ferry_hal_rdma_qp *qp, const void **pdata, uint32_t *pdata_len)
{
	if (!qp) {
		RXE_ERR("qp_state: no QP");
		return -EINVAL;
	}
	rxe_qp_drive(qp);
	if (pdata || pdata_len) {
		int have = qp->state == 0 || qp->state == -ECONNREFUSED;
		uint32_t n = have ? qp->peer_pdata_len : 0;
		if (pdata)
			*pdata = n ? qp->peer_pdata : NULL;
		if (pdata_len)
			*pdata_len = n;
	}
	return qp->state;
}

void rxe_qp_destroy(struct ferry_hal_rdma_qp *qp)
{
	if (!qp)
		return;
	struct rxe_dev *d = qp->dev;
	if (qp->phase == RXE_QP_EST || (qp->phase == RXE_QP_FAILED && qp->was_established) ||
	    qp->phase == RXE_QP_CONN)
		rdma_disconnect(qp->id); /* the peer's QP goes to the error state */
	rxe_cq_drain(qp->cq, qp->qp != NULL, qp->qp_num);
	if (qp->qp)
		rdma_destroy_qp(qp->id);
	rxe_cq_drain(qp->cq, qp->qp != NULL, qp->qp_num);
	rxe_cq_forget_qp(qp->cq, qp);
	qp->qp = NULL;
	if (qp->id) {
		/* Every event of the id is acked (drive acks at once); take the rest first. */
		struct rdma_cm_event *ev;
		while (rdma_get_cm_event(qp->ch, &ev) == 0)
			rdma_ack_cm_event(ev);
		rdma_destroy_id(qp->id);
	}
	if (qp->ch) {
		channel_drain(qp->ch);
		rdma_destroy_event_channel(qp->ch);
	}
	qp_free(qp);
	rxe_obj_put(d);
}

int rxe_qp_addr(struct ferry_hal_rdma_qp *qp, int peer, char *buf, size_t len)
{
	if (!qp || !buf) {
		RXE_ERR("qp_addr: %s", !qp ? "no QP" : "no buffer");
		return -EINVAL;
	}
	/* The passive side knows its peer from the request; the active side once connected. */
	if (peer && qp->active && qp->phase != RXE_QP_EST &&
	    !(qp->phase == RXE_QP_FAILED && qp->was_established))
		return -ENOTCONN;
	struct sockaddr_storage ss;
	struct sockaddr *sa = peer ? rdma_get_peer_addr(qp->id) : rdma_get_local_addr(qp->id);
	memcpy(&ss, sa,
	       sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					 : sizeof(struct sockaddr_in));
	if (ss.ss_family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = peer ? rdma_get_dst_port(qp->id)
							     : rdma_get_src_port(qp->id);
	if (ss.ss_family == AF_INET && ((struct sockaddr_in *)&ss)->sin_addr.s_addr == 0 &&
	    ((struct sockaddr_in *)&ss)->sin_port == 0)
		return -ENOTCONN;
	int rc = rxe_addr_format((struct sockaddr *)&ss, buf, len);
	if (rc == -ENOBUFS)
		RXE_ERR("qp_addr: buffer too small");
	return rc;
}
