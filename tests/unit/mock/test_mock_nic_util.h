/*
 * Helpers of the mock offload NIC tests: a loopback connection on one mock device (the
 * accepted end is a plain server socket that sends hand-built NVMe/TCP streams; the client is
 * the offloaded host end), the codec's rx_next/recvv/rx_advance loop of the host with
 * per-command destinations, resync answers with ferry_nvme_tcp_rx_pdu_at(), and stream
 * builders. Header-only (each test_*.c is its own executable). Every wait is bounded.
 */
#ifndef TEST_MOCK_NIC_UTIL_H
#define TEST_MOCK_NIC_UTIL_H

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ferry/ferry.h>
#include <ferry/crc.h>
#include <ferry/mock.h>
#include <ferry/hal/hal.h>
#include <ferry/module/nvme_tcp.h>

#define NT_MAX_CID 16
#define NT_MAX_EV 64
#define NT_MAX_RESYNC 8

struct nt_dest {
	uint8_t *buf; /* where the host's codec receives the command's data */
	size_t len;
	uint32_t dflags; /* FERRY_NVME_TCP_RX_DEST_F_* */
};

struct nt_ev {
	uint8_t type;
	uint16_t cid;
	uint32_t datal;
	struct ferry_nvme_tcp_rx_event ev;
};

struct nt {
	struct ferry_device *dev;
	const struct ferry_hal_nic_ops *nic;
	struct ferry_hal_sock *l, *c, *a;
	struct ferry_hal_sock_group *g;
	struct ferry_nvme_tcp_params p;
	struct ferry_nvme_tcp_rx rx;
	struct nt_dest dest[NT_MAX_CID];
	struct nt_ev evs[NT_MAX_EV];
	int nev;
	uint64_t rs_seq[NT_MAX_RESYNC];
	int rs_answer[NT_MAX_RESYNC]; /* -1 not yet */
	int nrs;
	int rs_stop_loss;       /* the resync callback turns resync_ppm off */
	uint64_t flag_bytes[4]; /* bytes received by flags value (PLACED | CRC_OK) */
	struct iovec sub[4];
};

static inline uint64_t nt_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void nt_resync_cb(void *ctx, uint64_t seq)
{
	struct nt *t = ctx;
	cr_assert_lt(t->nrs, NT_MAX_RESYNC, "too many resync requests");
	t->rs_seq[t->nrs] = seq;
	t->rs_answer[t->nrs] = -1;
	t->nrs++;
	if (t->rs_stop_loss) {
		struct ferry_mock_nic_faults f = {.size = sizeof(f)};
		cr_assert_eq(ferry_mock_nic_get_faults(t->dev, &f), 0);
		f.resync_ppm = 0;
		cr_assert_eq(ferry_mock_nic_set_faults(t->dev, &f), 0);
	}
}

static inline void nt_open(struct nt *t, const char *args)
{
	memset(t, 0, sizeof(*t));
	int rc = ferry_device_open("mock", args, &t->dev);
	cr_assert_eq(rc, 0, "open mock '%s': %d (%s)", args, rc, ferry_last_error());
	t->nic = ferry_hal_dev_get_backend(t->dev)->nic;
	cr_assert_not_null(t->nic);
}

/* A connected pair: t->c (client, in group t->g) and t->a (accepted). */
static inline void nt_connect(struct nt *t)
{
	char addr[64];
	struct ferry_hal_sock_opts o = {.size = sizeof(o),
					.addr = "127.0.0.1:0",
					.flags = FERRY_HAL_SOCK_F_NODELAY};
	cr_assert_eq(t->nic->listen(t->dev, &o, &t->l), 0);
	cr_assert_eq(t->nic->get_addr(t->l, 0, addr, sizeof(addr)), 0);
	o.addr = addr;
	cr_assert_eq(t->nic->connect(t->dev, &o, &t->c), 0);
	cr_assert_eq(t->nic->group_create(t->dev, &t->g), 0);
	cr_assert_eq(t->nic->group_add(t->g, t->c, t), 0);
	int rc = -EAGAIN;
	struct ferry_hal_sock_event ev[8];
	for (int i = 0; i < 500 && rc == -EAGAIN; i++) {
		rc = t->nic->accept(t->l, &t->a);
		if (rc == -EAGAIN)
			(void)t->nic->group_poll(t->g, ev, 8, 10000);
	}
	cr_assert_eq(rc, 0, "accept: %d", rc);
	rc = -EINPROGRESS;
	for (int i = 0; i < 500 && rc == -EINPROGRESS; i++) {
		rc = t->nic->sock_error(t->c);
		if (rc == -EINPROGRESS)
			(void)t->nic->group_poll(t->g, ev, 8, 10000);
	}
	cr_assert_eq(rc, 0, "connect: %d", rc);
}

static inline void nt_close(struct nt *t)
{
	if (t->c) {
		(void)t->nic->group_remove(t->g, t->c);
		t->nic->close(t->c);
	}
	t->nic->group_destroy(t->g);
	t->nic->close(t->a);
	t->nic->close(t->l);
	ferry_device_close(t->dev);
}

/* The server sends @p len bytes (all of them, bounded). */
static inline void nt_send(struct nt *t, const void *buf, size_t len)
{
	size_t off = 0;
	for (int i = 0; i < 100000 && off < len; i++) {
		struct iovec v = {(uint8_t *)buf + off, len - off};
		ssize_t r = t->nic->sendv(t->a, &v, 1);
		if (r == -EAGAIN) {
			struct ferry_hal_sock_event ev[8];
			(void)t->nic->group_poll(t->g, ev, 8, 1000);
			continue;
		}
		cr_assert_gt(r, 0, "sendv: %zd", r);
		off += (size_t)r;
	}
	cr_assert_eq(off, len);
}

/* A growing stream buffer. */
struct nt_stream {
	uint8_t *b;
	size_t len, cap;
	uint64_t starts[256]; /* stream offset of each PDU (after the ICResp: + 128) */
	int n;
};

static inline void nt_put(struct nt_stream *s, const void *p, size_t n)
{
	if (s->len + n > s->cap) {
		s->cap = (s->len + n) * 2 + 4096;
		s->b = realloc(s->b, s->cap);
		cr_assert_not_null(s->b);
	}
	memcpy(s->b + s->len, p, n);
	s->len += n;
}

static inline void nt_put_le32(struct nt_stream *s, uint32_t v)
{
	uint8_t d[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
	nt_put(s, d, 4);
}

/* A C2HData PDU of @p datal bytes at @p datao of command @p cid; @p bad_dgst flips the digest. */
static inline void nt_c2h(struct nt *t, struct nt_stream *s, uint16_t cid, uint32_t datao,
			  const uint8_t *data, uint32_t datal, int last, int bad_dgst)
{
	uint8_t hdr[FERRY_NVME_TCP_TX_HDR_MAX];
	size_t hl = ferry_nvme_tcp_build_data(hdr, &t->p, FERRY_NVME_TCP_C2H_DATA, cid, 0, datao,
					      datal, last ? FERRY_NVME_TCP_F_LAST_PDU : 0);
	cr_assert_gt(hl, 0);
	s->starts[s->n++] = 128 + s->len;
	nt_put(s, hdr, hl);
	nt_put(s, data, datal);
	if (t->p.ddgst)
		nt_put_le32(s, ferry_crc32c(0, data, datal) ^ (bad_dgst ? 1u : 0u));
}

static inline void nt_resp(struct nt *t, struct nt_stream *s, uint16_t cid)
{
	uint8_t hdr[FERRY_NVME_TCP_TX_HDR_MAX];
	struct ferry_nvme_cqe cqe;
	memset(&cqe, 0, sizeof(cqe));
	cqe.cid = cid;
	size_t hl = ferry_nvme_tcp_build_resp(hdr, &t->p, &cqe);
	cr_assert_gt(hl, 0);
	s->starts[s->n++] = 128 + s->len;
	nt_put(s, hdr, hl);
}

/* Answers outstanding resync requests the codec can now decide. */
static inline void nt_answer(struct nt *t)
{
	for (int i = 0; i < t->nrs; i++) {
		if (t->rs_answer[i] != -1)
			continue;
		int r = ferry_nvme_tcp_rx_pdu_at(&t->rx, t->rs_seq[i]);
		if (r < 0)
			continue;
		t->rs_answer[i] = r;
		t->nic->ddp_resync(t->c, t->rs_seq[i], r);
	}
}

static inline void nt_event(struct nt *t, const struct ferry_nvme_tcp_rx_event *ev)
{
	if (ev->type == FERRY_NVME_TCP_RX_HEADER) {
		const struct ferry_nvme_tcp_data *d = (const void *)ev->hdr;
		cr_assert_eq(ev->hdr->pdu_type, FERRY_NVME_TCP_C2H_DATA);
		cr_assert_lt(d->cccid, NT_MAX_CID);
		struct nt_dest *dd = &t->dest[d->cccid];
		cr_assert_not_null(dd->buf, "no destination for cid %u", d->cccid);
		cr_assert_leq((uint64_t)d->datao + d->datal, dd->len);
		t->sub[0] = (struct iovec){dd->buf + d->datao, d->datal};
		cr_assert_eq(ferry_nvme_tcp_rx_set_dest_ex(&t->rx, t->sub, 1, dd->dflags), 0);
	} else if (ev->type == FERRY_NVME_TCP_RX_DONE) {
		cr_assert_lt(t->nev, NT_MAX_EV);
		struct nt_ev *e = &t->evs[t->nev++];
		e->type = ev->hdr->pdu_type;
		e->datal = ev->data_len;
		e->ev = *ev;
		if (e->type == FERRY_NVME_TCP_C2H_DATA)
			e->cid = ((const struct ferry_nvme_tcp_data *)(const void *)ev->hdr)->cccid;
		else if (e->type == FERRY_NVME_TCP_CAPSULE_RESP)
			e->cid = ((const struct ferry_nvme_tcp_resp *)(const void *)ev->hdr)
					 ->cqe.cid;
	} else {
		cr_assert_neq(ev->type, FERRY_NVME_TCP_RX_ERROR, "codec error fes %u fei %u",
			      ev->fes, ev->fei);
	}
}

/* The host loop: receive until @p nev DONE events in total (5 s at most). */
static inline void nt_recv(struct nt *t, int nev)
{
	uint64_t end = nt_now_ns() + 5000000000ull;
	while (t->nev < nev) {
		cr_assert_lt(nt_now_ns(), end, "timeout: %d of %d PDUs", t->nev, nev);
		struct iovec v[8];
		uint32_t n = ferry_nvme_tcp_rx_next(&t->rx, v, 8), fl = 0;
		cr_assert_gt(n, 0, "codec stalled");
		ssize_t r = t->nic->recvv(t->c, v, n, &fl);
		if (r == -EAGAIN) {
			struct ferry_hal_sock_event ev[8];
			(void)t->nic->group_poll(t->g, ev, 8, 10000);
			continue;
		}
		cr_assert_gt(r, 0, "recvv: %zd", r);
		t->flag_bytes[fl & 3] += (uint64_t)r;
		uint32_t f = (fl & FERRY_HAL_NIC_RX_F_PLACED ? FERRY_NVME_TCP_RX_F_PLACED : 0) |
			     (fl & FERRY_HAL_NIC_RX_F_CRC_OK ? FERRY_NVME_TCP_RX_F_CRC_OK : 0);
		struct ferry_nvme_tcp_rx_event ev;
		cr_assert_eq(ferry_nvme_tcp_rx_advance(&t->rx, (size_t)r, f, &ev), 0);
		nt_event(t, &ev);
		nt_answer(t);
	}
}

/*
 * Connects, sends the ICResp, receives it and offloads the queue with digests @p hdgst /
 * @p ddgst. Returns ddp_queue_add()'s result (the queue is in software when it fails).
 */
static inline int nt_handshake(struct nt *t, int hdgst, int ddgst)
{
	nt_connect(t);
	t->p = (struct ferry_nvme_tcp_params){.role = FERRY_NVME_TCP_ROLE_HOST};
	cr_assert_eq(ferry_nvme_tcp_rx_init(&t->rx, &t->p), 0);
	uint8_t icresp[128];
	uint8_t dg = (hdgst ? FERRY_NVME_TCP_DGST_HDGST : 0) |
		     (ddgst ? FERRY_NVME_TCP_DGST_DDGST : 0);
	cr_assert_eq(ferry_nvme_tcp_build_icresp(icresp, 0, dg, 131072), 128);
	nt_send(t, icresp, sizeof(icresp));
	nt_recv(t, 1);
	cr_assert_eq(t->evs[0].type, FERRY_NVME_TCP_ICRESP);
	t->nev = 0;
	t->p.hdgst = (uint8_t)hdgst;
	t->p.ddgst = (uint8_t)ddgst;
	cr_assert_eq(ferry_nvme_tcp_rx_set_params(&t->rx, &t->p), 0);
	struct ferry_hal_ddp_queue_cfg cfg = {
		.size = sizeof(cfg),
		.hdgst = (uint8_t)hdgst,
		.ddgst = (uint8_t)ddgst,
		.queue_size = 32,
		.io_cpu = -1,
		.rx_seq = ferry_nvme_tcp_rx_stream_pos(&t->rx),
		.resync = nt_resync_cb,
		.ctx = t,
	};
	return t->nic->ddp_queue_add(t->c, &cfg);
}

static inline struct ferry_hal_ddp_stats nt_stats(struct nt *t)
{
	struct ferry_hal_ddp_stats st;
	cr_assert_eq(t->nic->ddp_stats(t->dev, &st), 0);
	return st;
}

static inline void nt_fill(uint8_t *b, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		b[i] = (uint8_t)(seed >> 16);
	}
}

/* Teardown completion counter. */
struct nt_td {
	int calls, status;
};

static inline void nt_td_cb(void *ctx, int status)
{
	struct nt_td *d = ctx;
	d->calls++;
	d->status = status;
}

static inline int nt_setup_sys(struct nt *t, uint16_t cid, void *buf, size_t len)
{
	struct iovec v = {buf, len};
	struct ferry_mem m = {.domain = ferry_memdomain_system(), .iov = &v, .iovcnt = 1};
	return t->nic->ddp_setup(t->c, cid, &m);
}

/* nt_open() and nt_handshake(), the queue offloaded. */
static inline void nt_up(struct nt *t, const char *args, int hdgst, int ddgst)
{
	nt_open(t, args);
	cr_assert_eq(nt_handshake(t, hdgst, ddgst), 0);
}

/* Command @p cid's data for the iovecs @p buf (@p flags: FERRY_NVME_TCP_RX_DEST_F_*) and
 * its mapping on @p map (the same memory unless APART), @p len bytes each. */
static inline void nt_map_sys(struct nt *t, uint16_t cid, void *map, void *buf, size_t len,
			      uint32_t flags)
{
	t->dest[cid] = (struct nt_dest){buf, len, flags};
	cr_assert_eq(nt_setup_sys(t, cid, map, len), 0);
}

/* One command @p cid of @p n C2HData PDUs of @p pdu bytes of @p data (the PDU @p bad_pdu
 * with a corrupted digest, -1 for none), then its CapsuleResp. */
static inline void nt_cmd(struct nt *t, struct nt_stream *s, uint16_t cid, const uint8_t *data,
			  int n, uint32_t pdu, int bad_pdu)
{
	for (int i = 0; i < n; i++)
		nt_c2h(t, s, cid, (uint32_t)i * pdu, data + (size_t)i * pdu, pdu, i == n - 1,
		       i == bad_pdu);
	nt_resp(t, s, cid);
}

/* The stream @p s sent and @p nev events received. */
static inline void nt_exchange(struct nt *t, const struct nt_stream *s, int nev)
{
	nt_send(t, s->b, s->len);
	nt_recv(t, nev);
}

/* One read: @p len bytes of pattern @p seed in @p data, command @p cid's iovecs @p buf and
 * mapping @p map (nt_map_sys() with @p flags), sent as @p n PDUs and a CapsuleResp into
 * the stream @p s, all n + 1 events received. */
static inline void nt_read(struct nt *t, struct nt_stream *s, uint16_t cid, uint8_t *data,
			   void *map, void *buf, size_t len, uint32_t flags, uint32_t seed, int n)
{
	nt_fill(data, len, seed);
	nt_map_sys(t, cid, map, buf, len, flags);
	nt_cmd(t, s, cid, data, n, (uint32_t)(len / (size_t)n), -1);
	nt_exchange(t, s, n + 1);
}

/* The stream freed, the connection and the device closed. */
static inline void nt_down(struct nt *t, struct nt_stream *s)
{
	free(s->b);
	nt_close(t);
}

#endif /* TEST_MOCK_NIC_UTIL_H */
