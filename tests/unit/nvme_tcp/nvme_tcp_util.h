/*
 * Helpers of the NVMe/TCP codec tests: stream builders (a host->controller and a
 * controller->host conversation with every PDU type, data, digests and padding) and a driver
 * that runs a stream through a receive machine in any chunking, by copy (rx_feed) or zero
 * copy (rx_next + memcpy + rx_advance), recording every event, the data that reached the
 * destinations and the counters, so that two runs can be compared.
 */
#ifndef TEST_NVME_TCP_UTIL_H
#define TEST_NVME_TCP_UTIL_H

#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <ferry/crc.h>
#include <ferry/module/nvme_tcp.h>

#define T_STREAM_MAX (64 * 1024)
#define T_EV_MAX 64

struct t_stream {
	uint8_t b[T_STREAM_MAX];
	size_t n;
	unsigned pdus;
};

static inline void ts_put(struct t_stream *s, const void *p, size_t n)
{
	cr_assert_leq(s->n + n, sizeof(s->b));
	memcpy(s->b + s->n, p, n);
	s->n += n;
}

/* Data pattern: byte i of the PDU with seed @p seed. */
static inline void t_pattern(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 8));
}

/* Append data of @p n bytes (pattern @p seed) and its digest if @p ddgst. */
static inline void ts_data(struct t_stream *s, size_t n, unsigned seed, int ddgst)
{
	uint8_t *d = s->b + s->n;
	cr_assert_leq(s->n + n + 4, sizeof(s->b));
	t_pattern(d, n, seed);
	s->n += n;
	if (ddgst) {
		uint32_t c = ferry_crc32c(0, d, n);
		uint8_t le[4] = {(uint8_t)c, (uint8_t)(c >> 8), (uint8_t)(c >> 16),
				 (uint8_t)(c >> 24)};
		ts_put(s, le, 4);
	}
}

static inline void ts_hdr(struct t_stream *s, size_t len)
{
	cr_assert_gt(len, 0);
	s->n += len;
	s->pdus++;
}

/* ICReq, CapsuleCmd without data, CapsuleCmd with @p icd bytes, two H2CData, H2CTermReq.
 * @p p: the negotiated parameters (the ICReq asks for its digests). */
static inline void ts_host_stream(struct t_stream *s, const struct ferry_nvme_tcp_params *p,
				  uint32_t icd, uint32_t h2c, int with_term)
{
	struct ferry_nvme_sqe sqe;
	uint8_t dgst = (uint8_t)((p->hdgst ? FERRY_NVME_TCP_DGST_HDGST : 0) |
				 (p->ddgst ? FERRY_NVME_TCP_DGST_DDGST : 0));

	memset(s, 0, sizeof(*s));
	ts_hdr(s, ferry_nvme_tcp_build_icreq(s->b + s->n, p->hpda, dgst, 3));
	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = 0x02;
	sqe.cid = 7;
	sqe.nsid = 1;
	ts_hdr(s, ferry_nvme_tcp_build_cmd(s->b + s->n, p, &sqe, 0));
	sqe.opcode = 0x01;
	sqe.cid = 8;
	if (icd) {
		ts_hdr(s, ferry_nvme_tcp_build_cmd(s->b + s->n, p, &sqe, icd));
		ts_data(s, icd, 1, p->ddgst);
	}
	ts_hdr(s, ferry_nvme_tcp_build_data(s->b + s->n, p, FERRY_NVME_TCP_H2C_DATA, 9, 0x55, 0,
					    h2c, 0));
	ts_data(s, h2c, 2, p->ddgst);
	ts_hdr(s, ferry_nvme_tcp_build_data(s->b + s->n, p, FERRY_NVME_TCP_H2C_DATA, 9, 0x55, h2c,
					    5, FERRY_NVME_TCP_F_LAST_PDU));
	ts_data(s, 5, 3, p->ddgst);
	if (with_term) {
		uint8_t bad[40];
		t_pattern(bad, sizeof(bad), 9);
		ts_hdr(s, ferry_nvme_tcp_build_term(s->b + s->n, FERRY_NVME_TCP_H2C_TERM, 1, 3, bad,
						    sizeof(bad)));
	}
}

/* ICResp, CapsuleResp, R2T, C2HData x2 (the last with SUCCESS), C2HTermReq. */
static inline void ts_ctrl_stream(struct t_stream *s, const struct ferry_nvme_tcp_params *p,
				  uint32_t c2h, int with_term)
{
	struct ferry_nvme_cqe cqe;
	uint8_t dgst = (uint8_t)((p->hdgst ? FERRY_NVME_TCP_DGST_HDGST : 0) |
				 (p->ddgst ? FERRY_NVME_TCP_DGST_DDGST : 0));

	memset(s, 0, sizeof(*s));
	ts_hdr(s, ferry_nvme_tcp_build_icresp(s->b + s->n, p->cpda, dgst, 8192));
	memset(&cqe, 0, sizeof(cqe));
	cqe.cid = 7;
	cqe.sqhd = 1;
	ts_hdr(s, ferry_nvme_tcp_build_resp(s->b + s->n, p, &cqe));
	ts_hdr(s, ferry_nvme_tcp_build_r2t(s->b + s->n, p, 8, 0x21, 0, 4096));
	ts_hdr(s, ferry_nvme_tcp_build_data(s->b + s->n, p, FERRY_NVME_TCP_C2H_DATA, 10, 0, 0, c2h,
					    0));
	ts_data(s, c2h, 4, p->ddgst);
	ts_hdr(s, ferry_nvme_tcp_build_data(s->b + s->n, p, FERRY_NVME_TCP_C2H_DATA, 10, 0, c2h, 3,
					    FERRY_NVME_TCP_F_LAST_PDU | FERRY_NVME_TCP_F_SUCCESS));
	ts_data(s, 3, 5, p->ddgst);
	if (with_term) {
		uint8_t bad[200]; /* longer than a TermReq carries: cut at 128 */
		t_pattern(bad, sizeof(bad), 8);
		ts_hdr(s, ferry_nvme_tcp_build_term(s->b + s->n, FERRY_NVME_TCP_C2H_TERM, 2, 0, bad,
						    sizeof(bad)));
	}
}

/* ---- driver ------------------------------------------------------------------------------ */

struct t_ev {
	int type;
	uint8_t pdu_type;
	uint32_t data_len;
	uint8_t ddgst_error, all_placed, all_crc_ok;
	uint16_t fes;
	uint32_t fei;
};

struct t_run {
	struct ferry_nvme_tcp_params after_ic; /* installed after the IC PDU's DONE */
	unsigned discard_every; /* discard the data of every n-th data PDU (0: never) */
	struct t_ev ev[T_EV_MAX];
	unsigned nev;
	uint8_t data[T_STREAM_MAX]; /* data of every PDU kept, concatenated */
	size_t data_n;
	uint8_t dest[T_STREAM_MAX + 64];
	size_t dest_used;
	struct iovec iov[3];
	int discarding;
	unsigned data_pdus;
	size_t consumed;
	struct ferry_nvme_tcp_rx rx;
	uint64_t rng;
};

static inline uint32_t t_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return (uint32_t)(*s >> 11);
}

static inline void tr_init(struct t_run *r, enum ferry_nvme_tcp_role role,
			   const struct ferry_nvme_tcp_params *p, uint64_t seed)
{
	struct ferry_nvme_tcp_params init;

	memset(r, 0, sizeof(*r));
	r->after_ic = *p;
	r->after_ic.role = role;
	init = r->after_ic;
	init.hdgst = init.ddgst = 0;
	cr_assert_eq(ferry_nvme_tcp_rx_init(&r->rx, &init), 0);
	r->rng = seed ? seed : 88172645463325252ull;
}

/* Handle an event: record it, give destinations, install the parameters after IC. */
static inline void tr_event(struct t_run *r, const struct ferry_nvme_tcp_rx_event *ev)
{
	struct t_ev *e;

	if (ev->type == FERRY_NVME_TCP_RX_NONE)
		return;
	cr_assert_lt(r->nev, T_EV_MAX);
	e = &r->ev[r->nev++];
	e->type = ev->type;
	e->pdu_type = ev->hdr ? ev->hdr->pdu_type : 0xff;
	e->data_len = ev->data_len;
	e->ddgst_error = ev->ddgst_error;
	e->all_placed = ev->all_placed;
	e->all_crc_ok = ev->all_crc_ok;
	e->fes = ev->fes;
	e->fei = ev->fei;
	if (ev->type == FERRY_NVME_TCP_RX_HEADER) {
		uint32_t n = ev->data_len;
		r->data_pdus++;
		r->discarding = r->discard_every && r->data_pdus % r->discard_every == 0;
		if (r->discarding) {
			cr_assert_eq(ferry_nvme_tcp_rx_set_dest(&r->rx, NULL, 0), 0);
			return;
		}
		cr_assert_leq(r->dest_used + n + 16, sizeof(r->dest));
		/* Three segments: a third, one byte, the rest plus slack. */
		uint8_t *d = r->dest + r->dest_used;
		size_t a = n / 3, b = n - a > 1 ? 1 : 0;
		r->iov[0] = (struct iovec){d, a};
		r->iov[1] = (struct iovec){d + a, b};
		r->iov[2] = (struct iovec){d + a + b, n - a - b + 16};
		memset(d, 0xEE, n + 16);
		cr_assert_eq(ferry_nvme_tcp_rx_set_dest(&r->rx, r->iov, 3), 0);
		r->dest_used += n + 16;
		return;
	}
	if (ev->type == FERRY_NVME_TCP_RX_DONE) {
		uint8_t t = ev->hdr->pdu_type;
		if (t == FERRY_NVME_TCP_H2C_TERM || t == FERRY_NVME_TCP_C2H_TERM) {
			cr_assert_not_null(ev->term_data);
			memcpy(r->data + r->data_n, ev->term_data, ev->data_len);
			r->data_n += ev->data_len;
		} else if (ev->data_len && !r->discarding) {
			uint8_t *d = r->iov[0].iov_base;
			memcpy(r->data + r->data_n, d, ev->data_len);
			r->data_n += ev->data_len;
			/* nothing written past the data */
			for (int i = 0; i < 16; i++)
				cr_assert_eq(d[ev->data_len + i], 0xEE);
		}
		r->discarding = 0;
		if (t == FERRY_NVME_TCP_ICREQ || t == FERRY_NVME_TCP_ICRESP)
			cr_assert_eq(ferry_nvme_tcp_rx_set_params(&r->rx, &r->after_ic), 0);
	}
}

/* Copy path: the stream cut at the given points (sorted, < n), fed piece by piece. */
static inline void tr_feed_cuts(struct t_run *r, const uint8_t *s, size_t n, const size_t *cuts,
				unsigned ncuts)
{
	size_t pos = 0;
	for (unsigned i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : n;
		while (pos < end) {
			struct ferry_nvme_tcp_rx_event ev;
			size_t c = 12345;
			cr_assert_eq(ferry_nvme_tcp_rx_feed(&r->rx, s + pos, end - pos, &c, &ev),
				     0);
			cr_assert_leq(c, end - pos);
			pos += c;
			r->consumed += c;
			tr_event(r, &ev);
			if (ev.type == FERRY_NVME_TCP_RX_ERROR)
				return;
			if (c == 0 && ev.type == FERRY_NVME_TCP_RX_NONE)
				cr_assert_fail("feed took nothing and reported nothing");
		}
	}
}

static inline void tr_feed_all(struct t_run *r, const uint8_t *s, size_t n)
{
	tr_feed_cuts(r, s, n, NULL, 0);
}

/* Random chunks of 1..maxchunk bytes. */
static inline void tr_feed_random(struct t_run *r, const uint8_t *s, size_t n, uint32_t maxchunk)
{
	size_t pos = 0;
	while (pos < n) {
		size_t chunk = 1 + t_rand(&r->rng) % maxchunk;
		if (chunk > n - pos)
			chunk = n - pos;
		size_t cut = pos + chunk;
		tr_feed_cuts(r, s + pos, chunk, NULL, 0);
		if (r->nev && r->ev[r->nev - 1].type == FERRY_NVME_TCP_RX_ERROR)
			return;
		pos = cut;
	}
}

/* Zero copy: rx_next, copy a random part of what it offers, advance with @p flags. */
static inline void tr_zc(struct t_run *r, const uint8_t *s, size_t n, uint32_t flags,
			 uint32_t maxiov)
{
	size_t pos = 0;
	struct iovec iov[8];
	cr_assert_leq(maxiov, 8);
	while (pos < n) {
		struct ferry_nvme_tcp_rx_event ev;
		uint32_t k = ferry_nvme_tcp_rx_next(&r->rx, iov, maxiov);
		cr_assert_gt(k, 0, "rx_next offered nothing at %zu", pos);
		size_t offered = 0;
		for (uint32_t i = 0; i < k; i++)
			offered += iov[i].iov_len;
		cr_assert_gt(offered, 0);
		size_t want = offered < n - pos ? offered : n - pos;
		size_t amt = (t_rand(&r->rng) & 1) ? want : 1 + t_rand(&r->rng) % want;
		size_t left = amt;
		for (uint32_t i = 0; i < k && left; i++) {
			size_t c = iov[i].iov_len < left ? iov[i].iov_len : left;
			memcpy(iov[i].iov_base, s + pos, c);
			pos += c;
			left -= c;
		}
		cr_assert_eq(ferry_nvme_tcp_rx_advance(&r->rx, amt, flags, &ev), 0);
		r->consumed += amt;
		tr_event(r, &ev);
		if (ev.type == FERRY_NVME_TCP_RX_ERROR)
			return;
	}
}

static inline void tr_same(const struct t_run *a, const struct t_run *b, int same_copied)
{
	cr_assert_eq(a->nev, b->nev, "events %u vs %u", a->nev, b->nev);
	for (unsigned i = 0; i < a->nev; i++) {
		cr_assert_eq(a->ev[i].type, b->ev[i].type, "event %u", i);
		cr_assert_eq(a->ev[i].pdu_type, b->ev[i].pdu_type, "event %u", i);
		cr_assert_eq(a->ev[i].data_len, b->ev[i].data_len, "event %u", i);
		cr_assert_eq(a->ev[i].ddgst_error, b->ev[i].ddgst_error, "event %u", i);
		cr_assert_eq(a->ev[i].fes, b->ev[i].fes);
		cr_assert_eq(a->ev[i].fei, b->ev[i].fei);
	}
	cr_assert_eq(a->data_n, b->data_n);
	cr_assert_eq(memcmp(a->data, b->data, a->data_n), 0);
	cr_assert_eq(a->consumed, b->consumed);
	cr_assert_eq(a->rx.stats.pdus, b->rx.stats.pdus);
	cr_assert_eq(a->rx.stats.data_bytes, b->rx.stats.data_bytes);
	cr_assert_eq(a->rx.stats.crc_bytes, b->rx.stats.crc_bytes);
	cr_assert_eq(a->rx.stats.placed_bytes, b->rx.stats.placed_bytes);
	cr_assert_eq(a->rx.stats.ddgst_errors, b->rx.stats.ddgst_errors);
	cr_assert_eq(a->rx.stats.hdgst_errors, b->rx.stats.hdgst_errors);
	if (same_copied)
		cr_assert_eq(a->rx.stats.copied_bytes, b->rx.stats.copied_bytes);
}

#endif /* TEST_NVME_TCP_UTIL_H */
