/*
 * One NVMe/TCP connection of the initiator (a queue pair): the socket and the ICReq/ICResp
 * exchange, the command slots (cid -> slot), the send FIFO (capsules and H2CData PDUs batched
 * into one sendv), and the receive side: the codec's machine fed from a receive buffer for
 * headers, read data received straight into the I/O's iovecs. Every PDU the controller sends
 * is checked against the command it names; a violation sends an H2CTermReq and tears the
 * connection down.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ferry/crc.h>
#include <ferry/module/nvme_tcp.h>
#include <ferry/nvmf_spec.h>
#include "core_internal.h"
#include "nvmf_internal.h"

uint64_t nvmf_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_us(unsigned us)
{
	struct timespec ts = {0, (long)us * 1000};
	nanosleep(&ts, NULL);
}

static void put_le32(void *p, uint32_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
	b[2] = (uint8_t)(v >> 16);
	b[3] = (uint8_t)(v >> 24);
}

/* dst = the [off, off + len) range of src; 0 if it needs more than max segments. */
uint32_t nvmf_iov_slice(const struct iovec *src, uint32_t cnt, size_t off, size_t len,
			struct iovec *dst, uint32_t max)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < cnt && len; i++) {
		size_t l = src[i].iov_len;
		if (off >= l) {
			off -= l;
			continue;
		}
		if (n == max)
			return 0;
		size_t take = FERRY_MIN(l - off, len);
		dst[n].iov_base = (uint8_t *)src[i].iov_base + off;
		dst[n].iov_len = take;
		n++;
		len -= take;
		off = 0;
	}
	return len ? 0 : n;
}

int nvmf_qpair_init(struct nvmf_ctrlr *c, struct nvmf_qpair *q, uint16_t qid, uint16_t depth)
{
	memset(q, 0, sizeof(*q));
	q->c = c;
	q->qid = qid;
	q->depth = depth;
	while ((1u << q->idx_bits) < depth)
		q->idx_bits++;
	q->slots = calloc(depth, sizeof(*q->slots));
	q->rxbuf = malloc(NVMF_RXBUF);
	if (!q->slots || !q->rxbuf) {
		free(q->slots);
		free(q->rxbuf);
		q->slots = NULL;
		q->rxbuf = NULL;
		return -ENOMEM;
	}
	for (uint16_t i = 0; i < depth; i++) {
		q->slots[i].q = q;
		q->slots[i].idx = i;
		q->slots[i].next_free = i + 1 < depth ? &q->slots[i + 1] : NULL;
	}
	q->free = &q->slots[0];
	return 0;
}

void nvmf_qpair_fini(struct nvmf_qpair *q)
{
	if (q->c && q->c->tr) {
		nvmf_qpair_close(q);
		if (q->c->tr->fini)
			q->c->tr->fini(q);
	}
	free(q->slots);
	free(q->rxbuf);
	q->slots = NULL;
	q->rxbuf = NULL;
}

struct nvmf_slot *nvmf_slot_get(struct nvmf_qpair *q)
{
	struct nvmf_slot *s = q->free;
	if (!s || !q->connected || q->failed)
		return NULL;
	q->free = s->next_free;
	uint16_t gen = (uint16_t)((s->cid >> q->idx_bits) + 1);
	/* Reset what a command reads; the tx and header buffers are rewritten at submit. */
	s->next_free = NULL;
	s->tx_next = NULL;
	s->cid = (uint16_t)(s->idx | (uint16_t)(gen << q->idx_bits));
	s->state = SLOT_BUSY;
	s->on_tx = s->dir = s->icd = s->r2t_active = s->done = s->failed = 0;
	s->got_success = s->resp_pending = s->is_ka = s->age = 0;
	memset(&s->sqe, 0, sizeof(s->sqe));
	memset(&s->cqe, 0, sizeof(s->cqe));
	s->status = 0;
	s->io = NULL;
	s->data = NULL;
	s->data_dom = NULL;
	s->data_dom_ctx = NULL;
	s->rdirect = 0;
	s->data_cnt = 0;
	s->data_off = 0;
	s->len = s->c2h_next = s->h2c_next = s->r2t_end = s->h2c_off = 0;
	s->ddp = DDP_NONE;
	s->ddp_apart = s->ddp_redo = s->part_push = 0;
	s->reap_next = NULL;
	s->nmiss = s->ndefer = 0;
	q->busy++;
	return s;
}

void nvmf_slot_put(struct nvmf_slot *s)
{
	struct nvmf_qpair *q = s->q;
	if (s->nheld) /* completion, connection loss, a failed submit: the keys are done with */
		nvmf_rdma_slot_release(s);
	s->state = SLOT_FREE;
	s->io = NULL;
	s->next_free = q->free;
	q->free = s;
	q->busy--;
}

/* A slot is found only by its exact cid while busy: a stale or invented cid names nothing,
 * nor does a command already over whose DDP teardown (or push) is still running. */
static struct nvmf_slot *slot_lookup(struct nvmf_qpair *q, uint16_t cid)
{
	uint32_t idx = cid & ((1u << q->idx_bits) - 1);
	if (idx >= q->depth)
		return NULL;
	struct nvmf_slot *s = &q->slots[idx];
	if (s->state != SLOT_BUSY || s->cid != cid || s->ddp >= DDP_TEARDOWN)
		return NULL;
	return s;
}

static void tx_enqueue(struct nvmf_qpair *q, struct nvmf_slot *s)
{
	s->tx_idx = 0;
	s->tx_off = 0;
	s->on_tx = 1;
	s->tx_next = NULL;
	if (q->tx_tail)
		q->tx_tail->tx_next = s;
	else
		q->tx_head = s;
	q->tx_tail = s;
}

/* Header in tx_iov[0], then the data range [off, off + len) and its digest. */
static int tx_set(struct nvmf_slot *s, size_t hlen, size_t off, size_t len)
{
	struct nvmf_qpair *q = s->q;
	s->tx_iov[0].iov_base = s->hdr;
	s->tx_iov[0].iov_len = hlen;
	s->tx_cnt = 1;
	if (!len)
		return 0;
	uint32_t n = nvmf_iov_slice(s->data, s->data_cnt, s->data_off + off, len, &s->tx_iov[1],
				    NVMF_SLOT_IOV);
	if (!n)
		return -EINVAL;
	if (q->p.ddgst) {
		put_le32(&s->ddgst, ferry_crc32c_iov(0, &s->tx_iov[1], n));
		q->c->st.digests_computed++;
	}
	s->tx_cnt += n;
	if (q->p.ddgst) {
		s->tx_iov[s->tx_cnt].iov_base = &s->ddgst;
		s->tx_iov[s->tx_cnt].iov_len = FERRY_NVME_TCP_DIGEST_LEN;
		s->tx_cnt++;
	}
	return 0;
}

static int tcp_submit(struct nvmf_slot *s)
{
	struct nvmf_qpair *q = s->q;
	uint32_t icd = 0;
	s->sqe.cid = s->cid;
	/* Every command on a fabric uses SGLs (PSDT 01b), also one without data: it carries a
	 * null transport SGL (length 0). Linux nvmet refuses any other PSDT with Invalid Field. */
	s->sqe.flags = (uint8_t)((s->sqe.flags & ~(3u << FERRY_NVME_FLAGS_PSDT_SHIFT)) |
				 (FERRY_NVME_PSDT_SGL_MPTR_CONTIG << FERRY_NVME_FLAGS_PSDT_SHIFT));
	s->sqe.dptr.sgl.address = 0;
	s->sqe.dptr.sgl.length = s->len;
	memset(s->sqe.dptr.sgl.rsvd, 0, sizeof(s->sqe.dptr.sgl.rsvd));
	s->sqe.dptr.sgl.id = FERRY_NVME_TCP_SGL_TRANSPORT;
	/* Fabrics commands (Connect) take up to 8 KiB in the capsule on every queue, as on the
	 * admin queue (the I/O queue's IOCCSZ applies once it is connected; SPDK and Linux do
	 * the same). */
	uint32_t max_icd = s->sqe.opcode == FERRY_NVMF_OPC_FABRICS ? NVMF_ADMIN_ICD : q->max_icd;
	if (s->len && s->dir == 1 && s->len <= max_icd) {
		icd = s->len;
		s->icd = 1;
		s->sqe.dptr.sgl.id = FERRY_NVME_TCP_SGL_ICD;
	}
	size_t hlen = ferry_nvme_tcp_build_cmd(s->hdr, &q->p, &s->sqe, icd);
	if (!hlen)
		return -EINVAL;
	int rc = tx_set(s, hlen, 0, icd);
	if (rc)
		return rc;
	tx_enqueue(q, s);
	q->c->st.commands++;
	if (s->icd)
		q->c->st.icd_writes += s->io != NULL;
	return 0;
}

/* Queue the next H2CData PDU of the R2T being served. */
static int h2c_next_pdu(struct nvmf_slot *s)
{
	struct nvmf_qpair *q = s->q;
	uint32_t chunk = FERRY_MIN(s->r2t_end - s->h2c_off, q->maxh2cdata);
	uint8_t flags = s->h2c_off + chunk == s->r2t_end ? FERRY_NVME_TCP_F_LAST_PDU : 0;
	size_t hlen = ferry_nvme_tcp_build_data(s->hdr, &q->p, FERRY_NVME_TCP_H2C_DATA, s->cid,
						s->ttag, s->h2c_off, chunk, flags);
	if (!hlen)
		return -EINVAL;
	int rc = tx_set(s, hlen, s->h2c_off, chunk);
	if (rc)
		return rc;
	s->h2c_off += chunk;
	tx_enqueue(q, s);
	q->c->st.h2c_pdus++;
	return 0;
}

/* Everything queued for @p s was taken by the socket. */
static void tx_done(struct nvmf_slot *s)
{
	if (s->resp_pending) {
		/* The controller completed the command while our data was still queued (an
		 * error before taking all of it): the slot is free to complete only now. */
		nvmf_slot_complete(s);
		return;
	}
	if (s->r2t_active) {
		if (s->h2c_off < s->r2t_end) {
			if (h2c_next_pdu(s))
				nvmf_qpair_fail(s->q, "cannot build an H2CData PDU");
		} else {
			s->r2t_active = 0;
		}
	}
}

static int tcp_flush(struct nvmf_qpair *q)
{
	const struct ferry_hal_nic_ops *nic = q->c->nic;
	struct iovec v[64];
	int work = 0;
	while (q->tx_head && q->connected && !q->failed) {
		uint32_t n = 0;
		for (struct nvmf_slot *s = q->tx_head; s && n < FERRY_ARRAY_SIZE(v);
		     s = s->tx_next) {
			uint32_t i = s == q->tx_head ? s->tx_idx : 0;
			size_t off = s == q->tx_head ? s->tx_off : 0;
			for (; i < s->tx_cnt && n < FERRY_ARRAY_SIZE(v); i++, off = 0) {
				v[n].iov_base = (uint8_t *)s->tx_iov[i].iov_base + off;
				v[n].iov_len = s->tx_iov[i].iov_len - off;
				n++;
			}
		}
		if (n > q->c->max_send_iov)
			n = q->c->max_send_iov;
		ssize_t r = nic->sendv(q->sock, v, n);
		if (r == -EAGAIN)
			break;
		if (r <= 0) {
			nvmf_qpair_fail(q, "send failed");
			return (int)(r ? r : -EIO);
		}
		work++;
		size_t left = (size_t)r;
		struct nvmf_slot *s;
		while (left && (s = q->tx_head)) {
			struct iovec *e = &s->tx_iov[s->tx_idx];
			size_t rest = e->iov_len - s->tx_off;
			if (left < rest) {
				s->tx_off += left;
				break;
			}
			left -= rest;
			s->tx_idx++;
			s->tx_off = 0;
			if (s->tx_idx == s->tx_cnt) {
				q->tx_head = s->tx_next;
				if (!q->tx_head)
					q->tx_tail = NULL;
				s->on_tx = 0;
				tx_done(s);
				if (q->failed)
					return -EIO;
			}
		}
	}
	return work;
}

void nvmf_qpair_fail(struct nvmf_qpair *q, const char *why)
{
	static struct log_ratelimit rl;
	if (q->failed)
		return;
	q->failed = 1;
	ferry_set_last_error(NVMF_COMP, "'%s' queue %u: %s", q->c->name, q->qid, why);
	if (log_ratelimit(&rl, NULL))
		FERRY_ERR(NVMF_COMP, "'%s' queue %u: connection lost: %s", q->c->name, q->qid, why);
	nvmf_ctrlr_lost(q->c);
}

/*
 * A protocol violation by the controller: the codec's own (already in error) or one found
 * against per-command state (put the codec in error first). The H2CTermReq goes out only at
 * a PDU boundary of our stream (a half-sent PDU cannot be interrupted), best effort.
 */
static int proto_error(struct nvmf_qpair *q, int ours, uint16_t fes, uint32_t fei, const char *why)
{
	static struct log_ratelimit rl;
	if (ours)
		ferry_nvme_tcp_rx_fail(&q->rx, fes, fei);
	q->c->st.protocol_errors++;
	if (log_ratelimit(&rl, NULL))
		FERRY_ERR(NVMF_COMP, "'%s' queue %u: controller protocol error: %s (%s, FEI %u)",
			  q->c->name, q->qid, why, ferry_nvme_tcp_fes_str(fes), fei);
	if (!q->tx_head || (q->tx_head->tx_idx == 0 && q->tx_head->tx_off == 0)) {
		size_t hl = 0;
		const void *h = ferry_nvme_tcp_rx_err_hdr(&q->rx, &hl);
		size_t len = ferry_nvme_tcp_build_term(q->term, FERRY_NVME_TCP_H2C_TERM, fes, fei,
						       h, hl);
		struct iovec v = {q->term, len};
		/* The socket then lingers (nvmf_qpair_close()): a close with unread bytes
		 * resets the connection, and the reset may destroy the TermReq before the
		 * controller reads it. */
		if (q->c->nic->sendv(q->sock, &v, 1) > 0)
			q->linger = 1;
	}
	nvmf_qpair_fail(q, why);
	return -EPROTO;
}

static int on_header(struct nvmf_qpair *q, const struct ferry_nvme_tcp_rx_event *ev)
{
	uint8_t type = ev->hdr->pdu_type;
	if (type != FERRY_NVME_TCP_C2H_DATA) {
		if (ev->data_len && ferry_nvme_tcp_rx_set_dest(&q->rx, NULL, 0))
			return proto_error(q, 1, FERRY_NVME_TCP_FES_INVALID_HEADER, 0,
					   "unexpected data");
		return 0;
	}
	const struct ferry_nvme_tcp_data *d = (const void *)ev->hdr;
	struct nvmf_slot *s = slot_lookup(q, d->cccid);
	if (!s || s->dir != 2 || s->on_tx || s->got_success)
		return proto_error(q, 1, FERRY_NVME_TCP_FES_INVALID_HEADER,
				   offsetof(struct ferry_nvme_tcp_data, cccid),
				   "C2HData for no read in flight");
	if (d->datal != ev->data_len || d->datao != s->c2h_next)
		return proto_error(q, 1, FERRY_NVME_TCP_FES_DATA_OUT_OF_RANGE,
				   offsetof(struct ferry_nvme_tcp_data, datao),
				   "C2HData out of order");
	if ((uint64_t)d->datao + d->datal > s->len)
		return proto_error(q, 1, FERRY_NVME_TCP_FES_DATA_OUT_OF_RANGE,
				   offsetof(struct ferry_nvme_tcp_data, datal),
				   "C2HData beyond the command's length");
	uint32_t n = nvmf_iov_slice(s->data, s->data_cnt, (size_t)s->data_off + d->datao, d->datal,
				    q->rx_iov, FERRY_ARRAY_SIZE(q->rx_iov));
	/* An offloaded queue: bytes the NIC placed apart (host memory) are not read from our
	 * iovecs (the staging slice keeps only its misses); the debug check recomputes every
	 * digest the NIC claims. */
	uint32_t df = 0;
	if (s->ddp == DDP_MAPPED && s->ddp_apart)
		df |= FERRY_NVME_TCP_RX_DEST_F_APART;
	if (q->ddp && (q->c->opts.flags & FERRY_BDEV_NVMF_F_DDP_VERIFY))
		df |= FERRY_NVME_TCP_RX_DEST_F_VERIFY;
	s->rx_cur = d->datao;
	q->placed0 = q->rx.stats.placed_bytes;
	if (!n || ferry_nvme_tcp_rx_set_dest_ex(&q->rx, q->rx_iov, n, df))
		return proto_error(q, 1, FERRY_NVME_TCP_FES_DATA_OUT_OF_RANGE,
				   offsetof(struct ferry_nvme_tcp_data, datal),
				   "C2HData destination");
	q->rx_slot = s;
	return 0;
}

static int on_resp(struct nvmf_qpair *q, const struct ferry_nvme_tcp_resp *r)
{
	static struct log_ratelimit rl;
	struct nvmf_slot *s = slot_lookup(q, r->cqe.cid);
	if (!s || (s->on_tx && !s->r2t_active))
		return proto_error(q, 1, FERRY_NVME_TCP_FES_INVALID_HEADER,
				   8 + offsetof(struct ferry_nvme_cqe, cid),
				   "CapsuleResp for no command in flight");
	if (r->cqe.sqid != q->qid && log_ratelimit(&rl, NULL))
		FERRY_WARN(NVMF_COMP, "'%s' queue %u: completion names SQ %u (tolerated)",
			   q->c->name, q->qid, r->cqe.sqid);
	uint16_t st = (uint16_t)(r->cqe.status >> 1);
	/* "Success" for a read before all of its data, or for a write before asking for all of
	 * it, is out of sequence: the controller and this stream disagree about the command, so
	 * the connection fails and the I/O is retried on a new one (never reported as data, and
	 * the outcome does not depend on whether more data for it was already in flight). */
	if (!st && ((s->dir == 2 && s->c2h_next != s->len) ||
		    (s->dir == 1 && !s->icd && s->h2c_next != s->len))) {
		char why[96];
		snprintf(why, sizeof(why), "CapsuleResp success for cid 0x%x after %u of %u bytes",
			 s->cid, s->dir == 2 ? s->c2h_next : s->h2c_next, s->len);
		return proto_error(q, 1, FERRY_NVME_TCP_FES_PDU_SEQUENCE, 0, why);
	}
	s->cqe = r->cqe;
	s->status = nvmf_status_errno(st);
	if (s->failed && !s->status)
		s->status = -EIO;
	if (s->on_tx) {
		s->resp_pending = 1; /* complete once our queued H2CData is out */
		s->r2t_active = 0;
		return 0;
	}
	nvmf_ddp_slot_end(s);
	return 0;
}

static int on_r2t(struct nvmf_qpair *q, const struct ferry_nvme_tcp_r2t *r)
{
	struct nvmf_slot *s = slot_lookup(q, r->cccid);
	if (!s || s->dir != 1 || s->icd || s->on_tx || s->r2t_active)
		return proto_error(q, 1, FERRY_NVME_TCP_FES_INVALID_HEADER,
				   offsetof(struct ferry_nvme_tcp_r2t, cccid),
				   "R2T for no write waiting for one");
	if (r->r2to != s->h2c_next || !r->r2tl || (uint64_t)r->r2to + r->r2tl > s->len)
		return proto_error(q, 1, FERRY_NVME_TCP_FES_DATA_OUT_OF_RANGE,
				   offsetof(struct ferry_nvme_tcp_r2t, r2to),
				   "R2T outside the write");
	s->ttag = r->ttag;
	s->r2t_active = 1;
	s->h2c_off = r->r2to;
	s->r2t_end = r->r2to + r->r2tl;
	s->h2c_next = s->r2t_end;
	q->c->st.r2ts++;
	if (h2c_next_pdu(s))
		return proto_error(q, 1, FERRY_NVME_TCP_FES_DATA_OUT_OF_RANGE,
				   offsetof(struct ferry_nvme_tcp_r2t, r2tl),
				   "R2T cannot be served");
	return 0;
}

/* A range of a host-placed command's data the NIC did not place: it is in the staging
 * buffer and pushed at the end. Too many ranges: the I/O is redone without offload. */
static void miss_add(struct nvmf_slot *s, uint32_t len)
{
	uint32_t off = s->rx_cur;
	s->rx_cur += len;
	if (!len || s->ddp_redo)
		return;
	struct nvmf_range *last = s->nmiss ? &s->miss[s->nmiss - 1] : NULL;
	if (last && last->off + last->len == off) {
		last->len += len;
		return;
	}
	if (s->nmiss == NVMF_DDP_MISSES) {
		s->ddp_redo = 1;
		return;
	}
	s->miss[s->nmiss].off = off;
	s->miss[s->nmiss].len = len;
	s->nmiss++;
}

/* @p k data bytes of the C2HData being received arrived, @p placed by the NIC or not. */
static void rx_data_seen(struct nvmf_qpair *q, size_t k, int placed)
{
	struct nvmf_slot *s = q->rx_slot;
	if (!s || s->ddp != DDP_MAPPED || !s->ddp_apart || !k)
		return;
	if (placed)
		s->rx_cur += (uint32_t)k;
	else
		miss_add(s, (uint32_t)k);
}

/* The offload side of a finished C2HData PDU: counters from the machine's verdicts. */
static void rx_offload_done(struct nvmf_qpair *q, struct nvmf_slot *s,
			    const struct ferry_nvme_tcp_rx_event *ev)
{
	static struct log_ratelimit rl_false, rl_def;
	struct nvmf_ctrlr *c = q->c;
	if (!q->qid)
		return; /* the counters are about read data: not the admin queue's Identify */
	if (s->ddp == DDP_MAPPED) {
		uint64_t placed = q->rx.stats.placed_bytes - q->placed0;
		if (placed > ev->data_len)
			placed = ev->data_len;
		c->st.ddp_placed_bytes += placed;
		if (s->ddp_apart)
			c->st.ddp_host_bytes += placed;
		c->st.ddp_fallback_bytes += ev->data_len - placed;
	}
	if (q->p.ddgst && ev->data_len) {
		int verify = q->ddp && (c->opts.flags & FERRY_BDEV_NVMF_F_DDP_VERIFY);
		if (ev->all_crc_ok)
			c->st.nic_crc_bytes += ev->data_len;
		if ((!ev->all_crc_ok || verify) && !ev->crc_deferred)
			c->st.sw_crc_bytes += ev->data_len;
	}
	if (ev->crc_deferred) {
		/* The digest needs software but some bytes are in host memory only: checked
		 * once the command's data is complete there (pulled back, nvmf_ddp.c); more
		 * such PDUs than a slot records: the I/O is read again without offload. */
		const struct ferry_nvme_tcp_data *d = (const void *)ev->hdr;
		if (s->ndefer < NVMF_DDP_DEFER) {
			s->defer[s->ndefer].off = d->datao;
			s->defer[s->ndefer].len = ev->data_len;
			s->defer_dgst[s->ndefer] = ev->ddgst;
			s->ndefer++;
		} else {
			s->ddp_redo = 1;
		}
		if (log_ratelimit(&rl_def, NULL))
			FERRY_INFO(NVMF_COMP,
				   "'%s' queue %u: cid 0x%x: digest of data placed in host memory "
				   "not verified by the NIC: checked after the transfer",
				   c->name, q->qid, s->cid);
	}
	if (ev->nic_crc_false) {
		c->st.ddp_nic_errors++;
		s->ddp_redo = 1;
		ferry_set_last_error(NVMF_COMP,
				     "'%s' queue %u: the NIC claimed a verified data digest that "
				     "does not match (cid 0x%x)",
				     c->name, q->qid, s->cid);
		if (log_ratelimit(&rl_false, NULL))
			FERRY_ERR(NVMF_COMP,
				  "'%s' queue %u: the NIC claimed a verified data digest that does "
				  "not match (cid 0x%x): the read is redone without offload",
				  c->name, q->qid, s->cid);
	}
}

static int on_done(struct nvmf_qpair *q, const struct ferry_nvme_tcp_rx_event *ev)
{
	switch (ev->hdr->pdu_type) {
	case FERRY_NVME_TCP_CAPSULE_RESP:
		return on_resp(q, (const void *)ev->hdr);
	case FERRY_NVME_TCP_R2T:
		return on_r2t(q, (const void *)ev->hdr);
	case FERRY_NVME_TCP_C2H_DATA: {
		const struct ferry_nvme_tcp_data *d = (const void *)ev->hdr;
		struct nvmf_slot *s = q->rx_slot;
		q->rx_slot = NULL;
		if (!s)
			return proto_error(q, 0, FERRY_NVME_TCP_FES_PDU_SEQUENCE, 0,
					   "C2HData state");
		s->c2h_next += ev->data_len;
		rx_offload_done(q, s, ev);
		if (q->p.ddgst && !ev->all_crc_ok)
			q->c->st.digests_computed++;
		if (ev->ddgst_error) {
			static struct log_ratelimit rl;
			s->failed = 1;
			q->c->st.digest_errors++;
			ferry_set_last_error(NVMF_COMP,
					     "'%s' queue %u: data digest error in C2HData "
					     "(cid 0x%x, offset %u): the read fails",
					     q->c->name, q->qid, s->cid, d->datao);
			if (log_ratelimit(&rl, NULL))
				FERRY_ERR(NVMF_COMP,
					  "'%s' queue %u: data digest error in C2HData "
					  "(cid 0x%x, offset %u): the read fails",
					  q->c->name, q->qid, s->cid, d->datao);
		}
		if (d->ch.flags & FERRY_NVME_TCP_F_SUCCESS) {
			if (s->c2h_next != s->len)
				return proto_error(q, 1, FERRY_NVME_TCP_FES_INVALID_HEADER, 1,
						   "C2H SUCCESS before all the data");
			s->got_success = 1;
			s->status = s->failed ? -EIO : 0;
			q->c->st.c2h_success++;
			nvmf_ddp_slot_end(s);
		}
		return 0;
	}
	case FERRY_NVME_TCP_C2H_TERM: {
		const struct ferry_nvme_tcp_term *t = (const void *)ev->hdr;
		char why[96];
		snprintf(why, sizeof(why), "controller sent C2HTermReq: %s (FEI %u)",
			 ferry_nvme_tcp_fes_str(t->fes), t->fei);
		nvmf_qpair_fail(q, why);
		return -EPROTO;
	}
	default:
		return proto_error(q, 1, FERRY_NVME_TCP_FES_INVALID_HEADER, 0, "unexpected PDU");
	}
}

static int handle(struct nvmf_qpair *q, const struct ferry_nvme_tcp_rx_event *ev)
{
	switch (ev->type) {
	case FERRY_NVME_TCP_RX_HEADER:
		return on_header(q, ev);
	case FERRY_NVME_TCP_RX_DONE:
		return on_done(q, ev);
	case FERRY_NVME_TCP_RX_ERROR:
		if (ev->fes == FERRY_NVME_TCP_FES_HDGST)
			q->c->st.digest_errors++;
		return proto_error(q, 0, ev->fes, ev->fei, "malformed PDU");
	default:
		return 0;
	}
}

/* The machine's next bytes go to its own buffers (a header, padding, a digest)? */
static int rx_internal(const struct nvmf_qpair *q, const void *p)
{
	const uint8_t *b = p, *lo = (const uint8_t *)&q->rx;
	return !p || (b >= lo && b < lo + sizeof(q->rx));
}

/* The NIC flagged PLACED bytes we received into a header, padding, a digest or rxbuf: it
 * tracks PDUs where there are none (or lies). Those bytes are not fed: the connection goes. */
static int nic_out_of_sync(struct nvmf_qpair *q)
{
	q->c->st.ddp_nic_errors++;
	nvmf_qpair_fail(q, "the offload NIC reported placed bytes outside any C2H payload");
	return -EPROTO;
}

static int tcp_process(struct nvmf_qpair *q)
{
	const struct ferry_hal_nic_ops *nic = q->c->nic;
	struct iovec v[NVMF_SLOT_IOV + 2];
	int work = 0, drained = 0;
	if (q->ddp)
		nvmf_ddp_resync_answer(q);
	for (int iter = 0; iter < 256 && q->connected && !q->failed; iter++) {
		struct ferry_nvme_tcp_rx_event ev = {0};
		if (q->rx_pos < q->rx_len) {
			size_t used = 0;
			/* The NIC's digest verdict rides on the bytes (a data digest read here
			 * with the headers around it). */
			uint32_t ff = q->rx_fl & FERRY_HAL_NIC_RX_F_CRC_OK
					      ? FERRY_NVME_TCP_RX_F_CRC_OK
					      : 0;
			q->copied0 = q->rx.stats.copied_bytes;
			if (ferry_nvme_tcp_rx_feed_ex(&q->rx, q->rxbuf + q->rx_pos,
						      q->rx_len - q->rx_pos, ff, &used, &ev))
				return proto_error(q, 0, FERRY_NVME_TCP_FES_PDU_SEQUENCE, 0,
						   "feed");
			q->rx_pos += (uint32_t)used;
			rx_data_seen(q, (size_t)(q->rx.stats.copied_bytes - q->copied0), 0);
			if (ev.type == FERRY_NVME_TCP_RX_NONE && !used)
				return proto_error(q, 0, FERRY_NVME_TCP_FES_PDU_SEQUENCE, 0,
						   "receive machine stalled");
			int rc = handle(q, &ev);
			if (rc < 0)
				return rc;
			if (q->ddp)
				nvmf_ddp_resync_answer(q);
			work++;
			continue;
		}
		uint32_t n = ferry_nvme_tcp_rx_next(&q->rx, v, FERRY_ARRAY_SIZE(v));
		if (!n)
			return proto_error(q, 0, FERRY_NVME_TCP_FES_PDU_SEQUENCE, 0,
					   "receive machine stalled");
		/* A short receive drained the socket: the next one would only say -EAGAIN (one
		 * system call saved per readiness; the group reports the socket again). */
		if (drained)
			break;
		uint32_t fl = 0;
		ssize_t r;
		size_t asked, data = 0;
		int internal = rx_internal(q, v[0].iov_base);
		if (internal) {
			struct iovec b = {q->rxbuf, NVMF_RXBUF};
			asked = NVMF_RXBUF;
			r = nic->recvv(q->sock, &b, 1, &fl);
		} else {
			if (n > q->c->max_recv_iov)
				n = q->c->max_recv_iov;
			asked = 0;
			for (uint32_t i = 0; i < n; i++) {
				asked += v[i].iov_len;
				if (!rx_internal(q, v[i].iov_base))
					data += v[i].iov_len;
			}
			r = nic->recvv(q->sock, v, n, &fl);
		}
		/* An offload NIC also returns short where the flags change (not drained). */
		if (r > 0 && (size_t)r < asked && !q->ddp)
			drained = 1;
		if (r == -EAGAIN)
			break;
		if (r == 0) {
			nvmf_qpair_fail(q, "controller closed the connection");
			return -ECONNRESET;
		}
		if (r < 0) {
			nvmf_qpair_fail(q, "receive failed");
			return (int)r;
		}
		work++;
		if (internal) {
			/* A plain socket reports its zero-copy read into rxbuf as PLACED; on an
			 * offloaded queue PLACED there means the NIC is out of step. */
			if (q->ddp && (fl & FERRY_HAL_NIC_RX_F_PLACED))
				return nic_out_of_sync(q);
			q->rx_pos = 0;
			q->rx_len = (uint32_t)r;
			q->rx_fl = fl;
			continue;
		}
		if (q->ddp && (fl & FERRY_HAL_NIC_RX_F_PLACED) && (size_t)r > data)
			return nic_out_of_sync(q);
		uint32_t f = (fl & FERRY_HAL_NIC_RX_F_PLACED ? FERRY_NVME_TCP_RX_F_PLACED : 0) |
			     (fl & FERRY_HAL_NIC_RX_F_CRC_OK ? FERRY_NVME_TCP_RX_F_CRC_OK : 0);
		rx_data_seen(q, FERRY_MIN((size_t)r, data), !!(f & FERRY_NVME_TCP_RX_F_PLACED));
		if (ferry_nvme_tcp_rx_advance(&q->rx, (size_t)r, f, &ev))
			return proto_error(q, 0, FERRY_NVME_TCP_FES_PDU_SEQUENCE, 0, "advance");
		int rc = handle(q, &ev);
		if (rc < 0)
			return rc;
		if (q->ddp)
			nvmf_ddp_resync_answer(q);
	}
	return work;
}

static int tcp_wait(struct nvmf_qpair *q, struct nvmf_slot *s, uint64_t deadline_ns)
{
	struct ferry_hal_sock_event ev[8];
	for (;;) {
		nvmf_qpair_flush(q);
		if (!q->failed)
			nvmf_qpair_process(q);
		if (s->done)
			return 0;
		if (q->failed)
			return -ECONNRESET;
		if (nvmf_now_ns() > deadline_ns)
			return -ETIMEDOUT;
		(void)q->c->nic->group_poll(q->c->group, ev, FERRY_ARRAY_SIZE(ev), 1000);
	}
}

static int send_all(struct nvmf_qpair *q, const void *buf, size_t len, uint64_t deadline_ns)
{
	size_t off = 0;
	while (off < len) {
		struct iovec v = {(uint8_t *)buf + off, len - off};
		ssize_t r = q->c->nic->sendv(q->sock, &v, 1);
		if (r == -EAGAIN) {
			if (nvmf_now_ns() > deadline_ns)
				return -ETIMEDOUT;
			sleep_us(100);
			continue;
		}
		if (r <= 0)
			return r ? (int)r : -EIO;
		off += (size_t)r;
	}
	return 0;
}

/* ICResp: the controller's choices must be within what we asked for. */
static int icresp_check(struct nvmf_qpair *q, const struct ferry_nvme_tcp_icresp *r)
{
	struct nvmf_ctrlr *c = q->c;
	uint8_t asked = (uint8_t)((c->opts.hdgst ? FERRY_NVME_TCP_DGST_HDGST : 0) |
				  (c->opts.ddgst ? FERRY_NVME_TCP_DGST_DDGST : 0));
	if (r->dgst & ~asked) {
		FERRY_ERR(NVMF_COMP,
			  "'%s' queue %u: ICResp enables digests 0x%x not asked for (0x%x)",
			  c->name, q->qid, r->dgst, asked);
		return -EPROTO;
	}
	q->p.hdgst = !!(r->dgst & FERRY_NVME_TCP_DGST_HDGST);
	q->p.ddgst = !!(r->dgst & FERRY_NVME_TCP_DGST_DDGST);
	q->p.cpda = r->cpda;
	q->p.hpda = 0;
	q->p.maxh2cdata = r->maxh2cdata;
	q->maxh2cdata = r->maxh2cdata;
	return ferry_nvme_tcp_rx_set_params(&q->rx, &q->p) ? -EPROTO : 0;
}

static int tcp_connect(struct nvmf_qpair *q, uint64_t deadline_ns)
{
	struct nvmf_ctrlr *c = q->c;
	const struct ferry_hal_nic_ops *nic = c->nic;
	struct ferry_hal_sock_opts so = {.size = sizeof(so),
					 .addr = c->addr,
					 .flags = FERRY_HAL_SOCK_F_NODELAY};
	int rc;

	q->failed = 0;
	q->connected = 0;
	q->tx_head = q->tx_tail = NULL;
	q->rx_pos = q->rx_len = 0;
	q->rx_fl = 0;
	q->rx_slot = NULL;
	q->ddp = 0;
	q->resync_pending = 0;
	q->reap_head = NULL;
	/* A socket may already be connecting (a reconnect starts the admin queue's TCP
	 * connect without blocking and comes here once it finished). */
	if (!q->sock) {
		rc = nic->connect(c->dev, &so, &q->sock);
		if (rc) {
			q->sock = NULL;
			FERRY_ERR(NVMF_COMP, "'%s' queue %u: connect to %s: %s", c->name, q->qid,
				  c->addr, ferry_strerror(rc));
			return rc;
		}
	}
	while ((rc = nic->sock_error(q->sock)) == -EINPROGRESS) {
		if (nvmf_now_ns() > deadline_ns) {
			rc = -ETIMEDOUT;
			break;
		}
		sleep_us(100);
	}
	if (rc) {
		FERRY_ERR(NVMF_COMP, "'%s' queue %u: connect to %s: %s", c->name, q->qid, c->addr,
			  ferry_strerror(rc));
		goto err_close;
	}
	rc = nic->group_add(c->group, q->sock, q);
	if (rc)
		goto err_close;
	q->in_group = 1;

	memset(&q->p, 0, sizeof(q->p));
	q->p.role = FERRY_NVME_TCP_ROLE_HOST;
	ferry_nvme_tcp_rx_init(&q->rx, &q->p);
	uint8_t icreq[FERRY_NVME_TCP_HLEN_IC];
	uint8_t dgst = (uint8_t)((c->opts.hdgst ? FERRY_NVME_TCP_DGST_HDGST : 0) |
				 (c->opts.ddgst ? FERRY_NVME_TCP_DGST_DDGST : 0));
	ferry_nvme_tcp_build_icreq(icreq, 0, dgst, 0);
	rc = send_all(q, icreq, sizeof(icreq), deadline_ns);
	if (rc) {
		FERRY_ERR(NVMF_COMP, "'%s' queue %u: sending ICReq: %s", c->name, q->qid,
			  ferry_strerror(rc));
		goto err_close;
	}
	for (;;) {
		struct iovec v[4];
		struct ferry_nvme_tcp_rx_event ev = {0};
		uint32_t fl, n = ferry_nvme_tcp_rx_next(&q->rx, v, FERRY_ARRAY_SIZE(v));
		if (!n) {
			rc = -EPROTO;
			FERRY_ERR(NVMF_COMP, "'%s' queue %u: ICResp: receive machine stalled",
				  c->name, q->qid);
			goto err_close;
		}
		ssize_t r = nic->recvv(q->sock, v, n, &fl);
		if (r == -EAGAIN) {
			if (nvmf_now_ns() > deadline_ns) {
				rc = -ETIMEDOUT;
				FERRY_ERR(NVMF_COMP, "'%s' queue %u: no ICResp within the timeout",
					  c->name, q->qid);
				goto err_close;
			}
			sleep_us(100);
			continue;
		}
		if (r <= 0) {
			rc = r ? (int)r : -ECONNRESET;
			FERRY_ERR(NVMF_COMP, "'%s' queue %u: waiting for ICResp: %s", c->name,
				  q->qid, r ? ferry_strerror(rc) : "connection closed");
			goto err_close;
		}
		ferry_nvme_tcp_rx_advance(&q->rx, (size_t)r, 0, &ev);
		if (ev.type == FERRY_NVME_TCP_RX_HEADER && ev.data_len)
			ferry_nvme_tcp_rx_set_dest(&q->rx, NULL, 0);
		if (ev.type == FERRY_NVME_TCP_RX_ERROR) {
			rc = -EPROTO;
			FERRY_ERR(NVMF_COMP, "'%s' queue %u: bad ICResp: %s (FEI %u)", c->name,
				  q->qid, ferry_nvme_tcp_fes_str(ev.fes), ev.fei);
			goto err_close;
		}
		if (ev.type != FERRY_NVME_TCP_RX_DONE)
			continue;
		if (ev.hdr->pdu_type == FERRY_NVME_TCP_ICRESP) {
			rc = icresp_check(q, (const void *)ev.hdr);
			if (rc)
				goto err_close;
			break;
		}
		if (ev.hdr->pdu_type == FERRY_NVME_TCP_C2H_TERM) {
			const struct ferry_nvme_tcp_term *t = (const void *)ev.hdr;
			FERRY_ERR(NVMF_COMP,
				  "'%s' queue %u: controller answered ICReq with a TermReq: %s",
				  c->name, q->qid, ferry_nvme_tcp_fes_str(t->fes));
		}
		rc = -EPROTO;
		goto err_close;
	}
	q->connected = 1;
	nvmf_ddp_queue_add(q);
	return 0;
err_close:
	nvmf_qpair_close(q);
	return rc;
}

/* Drain the lingering socket; close it at EOF, on error, after its deadline or if forced. */
void nvmf_linger_poll(struct nvmf_ctrlr *c, int force_close)
{
	if (!c->linger_sock)
		return;
	int done = force_close || nvmf_now_ns() > c->linger_deadline_ns;
	for (int i = 0; i < 16 && !done; i++) {
		struct iovec b = {c->linger_buf, sizeof(c->linger_buf)};
		uint32_t fl;
		ssize_t r = c->nic->recvv(c->linger_sock, &b, 1, &fl);
		if (r == -EAGAIN)
			break;
		if (r <= 0)
			done = 1;
	}
	if (done) {
		c->nic->close(c->linger_sock);
		c->linger_sock = NULL;
	}
}

static void tcp_close(struct nvmf_qpair *q)
{
	if (q->sock) {
		struct nvmf_ctrlr *c = q->c;
		nvmf_ddp_queue_del(q); /* before the socket goes: mappings, pending teardowns */
		c->st.rx_placed_bytes += q->rx.stats.placed_bytes;
		c->st.rx_copied_bytes += q->rx.stats.copied_bytes;
		memset(&q->rx.stats, 0, sizeof(q->rx.stats));
		if (q->in_group)
			c->nic->group_remove(c->group, q->sock);
		q->in_group = 0;
		if (q->linger) {
			nvmf_linger_poll(c, 1); /* one lingering socket at a time */
			c->linger_sock = q->sock;
			c->linger_deadline_ns = nvmf_now_ns() + 200000000ull;
		} else {
			c->nic->close(q->sock);
		}
		q->sock = NULL;
	}
	q->linger = 0;
	q->connected = 0;
	q->tx_head = q->tx_tail = NULL;
	q->rx_pos = q->rx_len = 0;
	q->rx_slot = NULL;
}

const struct nvmf_transport nvmf_tcp_transport = {
	.name = "tcp",
	.connect = tcp_connect,
	.close = tcp_close,
	.submit = tcp_submit,
	.process = tcp_process,
	.flush = tcp_flush,
	.wait = tcp_wait,
};
