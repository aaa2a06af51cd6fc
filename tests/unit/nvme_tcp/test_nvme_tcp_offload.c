/*
 * The NVMe/TCP receive machine under receive offloads (ferry/module/nvme_tcp.h): one C2HData
 * PDU with data digest, received zero copy into a three-segment destination with every
 * combination of per-span flags ({none, PLACED, CRC_OK, PLACED|CRC_OK} on 3-4 data spans,
 * the digest span with and without CRC_OK), every destination mode (plain, APART, VERIFY,
 * both), with and without a corrupted data byte, a corrupted digest or a NIC that placed a
 * wrong byte; each outcome (ddgst_error, all_placed, all_crc_ok, crc_deferred, nic_crc_false,
 * ddgst, stats.crc_bytes / placed_bytes / ddgst_errors, the bytes in the destination) is
 * compared with a model written from the header's contract. Also: feed_ex() (CRC_OK only),
 * set_dest_ex() argument checks, pdu_at() at every position of a stream received in random
 * splits, and stream_pos().
 */
#include <stdio.h>
#include "nvme_tcp_util.h"

#define O_SLACK 16u
#define O_GARBAGE 0xA5u /* what an APART iovec holds where the NIC placed bytes elsewhere */
#define F_P FERRY_NVME_TCP_RX_F_PLACED
#define F_C FERRY_NVME_TCP_RX_F_CRC_OK
#define D_APART FERRY_NVME_TCP_RX_DEST_F_APART
#define D_VERIFY FERRY_NVME_TCP_RX_DEST_F_VERIFY

enum corrupt {
	C_NONE = 0,
	C_DATA = 1, /* one data byte flipped on the wire */
	C_DGST = 2, /* the digest flipped on the wire */
	C_NIC = 4,  /* the wire is right, the NIC placed one wrong byte */
};

struct ocase {
	uint32_t len;      /* data bytes */
	uint8_t hpda;      /* padding before the data */
	unsigned nspans;   /* data spans (advances of their own) */
	uint32_t span[4];  /* their lengths */
	uint32_t fl[4];    /* their flags */
	uint32_t dg_fl;    /* flags of the digest bytes */
	unsigned dg_split; /* the digest in two advances */
	unsigned corrupt;  /* enum corrupt */
	uint32_t dflags;   /* FERRY_NVME_TCP_RX_DEST_F_* */
};

struct ores {
	struct ferry_nvme_tcp_rx_event ev;
	struct ferry_nvme_tcp_rx_stats st; /* of the C2HData alone */
	uint32_t wire_ddgst;
	int nic_bad_applied; /* C_NIC hit a PLACED byte */
};

/* Working memory of a run (large: heap). */
struct owork {
	uint8_t stream[128 + 65536 + 4];
	size_t n, pdo;
	uint8_t orig[65536]; /* the data the digest was computed over */
	uint8_t iovmem[65536 + O_SLACK];
	uint8_t apart[65536]; /* the NIC's destination of an APART PDU */
	uint8_t want[65536];  /* what the iovecs must hold after DONE */
	struct ferry_nvme_tcp_params p;
};

static uint32_t le32(const uint8_t *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* The ICResp (fed by copy, then the negotiated parameters), leaving rx at stream offset 128. */
static void o_start(struct ferry_nvme_tcp_rx *rx, const struct ferry_nvme_tcp_params *p)
{
	struct ferry_nvme_tcp_params init = {.role = FERRY_NVME_TCP_ROLE_HOST};
	struct ferry_nvme_tcp_rx_event ev;
	uint8_t ic[128];
	size_t c = 0;

	cr_assert_eq(ferry_nvme_tcp_rx_init(rx, &init), 0);
	ferry_nvme_tcp_build_icresp(ic, 0, FERRY_NVME_TCP_DGST_HDGST | FERRY_NVME_TCP_DGST_DDGST,
				    8192);
	cr_assert_eq(ferry_nvme_tcp_rx_feed(rx, ic, sizeof(ic), &c, &ev), 0);
	cr_assert_eq(c, sizeof(ic));
	cr_assert_eq(ev.type, FERRY_NVME_TCP_RX_DONE);
	cr_assert_eq(ferry_nvme_tcp_rx_set_params(rx, p), 0);
	cr_assert_eq(ferry_nvme_tcp_rx_stream_pos(rx), 128);
}

/* The C2HData PDU of @p len bytes (digest over the right data), corrupted on the wire as
 * @p corrupt says. */
static void o_build(struct owork *w, uint32_t len, uint8_t hpda, unsigned corrupt)
{
	w->p = (struct ferry_nvme_tcp_params){.role = FERRY_NVME_TCP_ROLE_HOST,
					      .hdgst = 1,
					      .ddgst = 1,
					      .hpda = hpda,
					      .maxh2cdata = 8192};
	w->pdo = ferry_nvme_tcp_build_data(w->stream, &w->p, FERRY_NVME_TCP_C2H_DATA, 3, 0, 0, len,
					   FERRY_NVME_TCP_F_LAST_PDU | FERRY_NVME_TCP_F_SUCCESS);
	cr_assert_gt(w->pdo, 0);
	t_pattern(w->orig, len, len);
	memcpy(w->stream + w->pdo, w->orig, len);
	uint32_t c = ferry_crc32c(0, w->orig, len);
	uint8_t *d = w->stream + w->pdo + len;
	d[0] = (uint8_t)c;
	d[1] = (uint8_t)(c >> 8);
	d[2] = (uint8_t)(c >> 16);
	d[3] = (uint8_t)(c >> 24);
	w->n = w->pdo + len + 4;
	if (corrupt & C_DATA)
		w->stream[w->pdo + len / 2] ^= 0x40;
	if (corrupt & C_DGST)
		w->stream[w->pdo + len + 1] ^= 0x01;
}

/* The NIC corrupts the middle byte of the first PLACED span (C_NIC); -1 if none. */
static int64_t nic_bad_off(const struct ocase *c)
{
	uint32_t start = 0;
	if (!(c->corrupt & C_NIC))
		return -1;
	for (unsigned i = 0; i < c->nspans; i++) {
		if (c->fl[i] & F_P)
			return start + c->span[i] / 2;
		start += c->span[i];
	}
	return -1;
}

/* Receive the PDU of @p w (built for @p c) zero copy with the flags of @p c. */
static void o_run(struct owork *w, const struct ocase *c, struct ores *res)
{
	struct ferry_nvme_tcp_rx *rx = calloc(1, sizeof(*rx));
	struct ferry_nvme_tcp_rx_stats st0;
	struct ferry_nvme_tcp_rx_event ev;
	struct iovec seg[3], iov[8];
	uint32_t len = c->len;
	int64_t nic_bad = nic_bad_off(c);
	int apart = !!(c->dflags & D_APART);
	size_t pos = 0;

	cr_assert_not_null(rx);
	memset(res, 0, sizeof(*res));
	o_start(rx, &w->p);
	st0 = rx->stats;
	/* the header, 5 bytes first (flags on header bytes mean nothing) */
	do {
		cr_assert_eq(ferry_nvme_tcp_rx_next(rx, iov, 8), 1);
		size_t amt = pos == 0 ? 5 : iov[0].iov_len;
		cr_assert_leq(amt, iov[0].iov_len);
		memcpy(iov[0].iov_base, w->stream + pos, amt);
		pos += amt;
		cr_assert_eq(ferry_nvme_tcp_rx_advance(rx, amt, F_P | F_C, &ev), 0);
		cr_assert_lt(pos, w->pdo + 1);
	} while (ev.type == FERRY_NVME_TCP_RX_NONE);
	cr_assert_eq(ev.type, FERRY_NVME_TCP_RX_HEADER);
	cr_assert_eq(ev.data_len, len);
	/* three segments that the spans cross: 2/5, 1 byte, the rest plus slack */
	memset(w->iovmem, 0xEE, len + O_SLACK);
	memset(w->apart, 0, len);
	uint32_t a = len * 2 / 5, b = len - a > 1 ? 1 : 0;
	seg[0] = (struct iovec){w->iovmem, a};
	seg[1] = (struct iovec){w->iovmem + a, b};
	seg[2] = (struct iovec){w->iovmem + a + b, len - a - b + O_SLACK};
	cr_assert_eq(ferry_nvme_tcp_rx_set_dest_ex(rx, seg, 3, c->dflags), 0);
	cr_assert_eq(ferry_nvme_tcp_rx_set_dest_ex(rx, seg, 3, c->dflags), -EINVAL,
		     "one destination per HEADER");
	memset(w->want, 0xEE, len);

	/* the data spans (the first also takes the padding), then the digest */
	uint32_t data_off = 0;
	for (unsigned sp = 0; sp <= c->nspans; sp++) {
		int is_dg = sp == c->nspans;
		size_t span_end = is_dg ? w->n : w->pdo + data_off + c->span[sp];
		uint32_t fl = is_dg ? c->dg_fl : c->fl[sp];
		unsigned adv = 0;
		while (pos < span_end) {
			uint32_t k = ferry_nvme_tcp_rx_next(rx, iov, 8);
			size_t amt = 0, off;
			cr_assert_gt(k, 0);
			for (uint32_t i = 0; i < k; i++)
				amt += iov[i].iov_len;
			if (amt > span_end - pos)
				amt = span_end - pos;
			if (is_dg && c->dg_split && adv == 0 && amt > 1)
				amt = 2;
			off = 0;
			for (uint32_t i = 0; i < k && off < amt; i++) {
				uint8_t *to = iov[i].iov_base;
				for (size_t j = 0; j < iov[i].iov_len && off < amt; j++, off++) {
					size_t sp_pos = pos + off;
					uint8_t byte = w->stream[sp_pos];
					if (sp_pos < w->pdo || sp_pos >= w->pdo + len) {
						to[j] = byte;
						continue;
					}
					uint32_t d = (uint32_t)(sp_pos - w->pdo);
					if (j == 0)
						cr_assert_eq(to, w->iovmem + d,
							     "data in the iovecs");
					if (nic_bad == d && (fl & F_P))
						byte ^= 0x08;
					if (apart && (fl & F_P)) {
						w->apart[d] = byte;
						to[j] = (uint8_t)(O_GARBAGE ^ d);
					} else {
						to[j] = byte;
					}
					w->want[d] = to[j];
				}
			}
			cr_assert_eq(off, amt);
			cr_assert_eq(ferry_nvme_tcp_rx_advance(rx, amt, fl, &ev), 0);
			pos += amt;
			adv++;
			cr_assert_eq(ferry_nvme_tcp_rx_stream_pos(rx), 128 + pos);
			if (pos < w->n)
				cr_assert_eq(ev.type, FERRY_NVME_TCP_RX_NONE, "event at %zu", pos);
		}
		if (!is_dg)
			data_off += c->span[sp];
	}
	cr_assert_eq(ev.type, FERRY_NVME_TCP_RX_DONE);
	cr_assert_eq(ev.hdr->pdu_type, FERRY_NVME_TCP_C2H_DATA);
	cr_assert_eq(ev.data_len, len);
	/* the codec writes nothing into a zero-copy destination: what arrived stays */
	cr_assert_eq(memcmp(w->iovmem, w->want, len), 0, "destination bytes");
	for (uint32_t i = 0; i < O_SLACK; i++)
		cr_assert_eq(w->iovmem[len + i], 0xEE, "nothing written past the data");
	res->ev = ev;
	res->st = rx->stats;
	res->st.pdus -= st0.pdus;
	res->st.data_bytes -= st0.data_bytes;
	res->st.copied_bytes -= st0.copied_bytes;
	res->wire_ddgst = le32(w->stream + w->pdo + len);
	res->nic_bad_applied = nic_bad >= 0;
	free(rx);
}

/* The contract, independently of rx.c: returns the expected event and counters. */
struct oexp {
	uint8_t ddgst_error, all_placed, all_crc_ok, crc_deferred, nic_crc_false;
	uint64_t crc_bytes, placed_bytes;
};

static struct oexp o_model(const struct ocase *c, int nic_bad)
{
	struct oexp e = {0};
	int verify = !!(c->dflags & D_VERIFY), apart = !!(c->dflags & D_APART);
	int any_sw = 0, any_apart = 0, chain = 1;
	uint64_t run = 0;

	e.all_placed = 1;
	e.all_crc_ok = !!(c->dg_fl & F_C);
	for (unsigned i = 0; i < c->nspans; i++) {
		int placed = !!(c->fl[i] & F_P), ok = !!(c->fl[i] & F_C);
		int gone = apart && placed; /* not readable here */
		int sw = !ok || verify;
		e.all_placed &= (uint8_t)placed;
		e.all_crc_ok &= (uint8_t)ok;
		if (placed)
			e.placed_bytes += c->span[i];
		any_sw |= !ok;
		any_apart |= gone;
		/* software keeps a running CRC over the leading spans it must check itself */
		if (chain && sw && !gone)
			run += c->span[i];
		else
			chain = 0;
	}
	e.crc_bytes = run;
	/* software checks when a span or the digest came without the NIC's verdict, or VERIFY */
	int need = any_sw || !(c->dg_fl & F_C) || verify;
	if (need && any_apart) {
		e.crc_deferred = 1;
		return e;
	}
	if (need) {
		if (run != c->len)
			e.crc_bytes += c->len; /* recomputed whole from the destination */
		/* the data as this CPU sees it against the digest as received */
		int wrong = (c->corrupt & (C_DATA | C_DGST)) || nic_bad;
		e.ddgst_error = (uint8_t)wrong;
		e.nic_crc_false = (uint8_t)(wrong && e.all_crc_ok);
	}
	return e;
}

static void o_check(struct owork *w, const struct ocase *c, const char *what)
{
	struct ores r;
	o_run(w, c, &r);
	struct oexp e = o_model(c, r.nic_bad_applied);
	char tag[160];
	snprintf(tag, sizeof(tag), "%s len %u spans %u fl %x/%x/%x/%x dg %x corrupt %u dflags %x",
		 what, c->len, c->nspans, c->fl[0], c->fl[1], c->fl[2], c->fl[3], c->dg_fl,
		 c->corrupt, c->dflags);
	cr_assert_eq(r.ev.ddgst_error, e.ddgst_error, "ddgst_error: %s", tag);
	cr_assert_eq(r.ev.all_placed, e.all_placed, "all_placed: %s", tag);
	cr_assert_eq(r.ev.all_crc_ok, e.all_crc_ok, "all_crc_ok: %s", tag);
	cr_assert_eq(r.ev.crc_deferred, e.crc_deferred, "crc_deferred: %s", tag);
	cr_assert_eq(r.ev.nic_crc_false, e.nic_crc_false, "nic_crc_false: %s", tag);
	cr_assert_eq(r.ev.ddgst, r.wire_ddgst, "ddgst is the wire digest: %s", tag);
	cr_assert_eq(r.st.crc_bytes, e.crc_bytes, "crc_bytes %llu: %s",
		     (unsigned long long)r.st.crc_bytes, tag);
	cr_assert_eq(r.st.placed_bytes, e.placed_bytes, "placed_bytes: %s", tag);
	cr_assert_eq(r.st.ddgst_errors, e.ddgst_error, "ddgst_errors: %s", tag);
	cr_assert_eq(r.st.data_bytes, c->len, "%s", tag);
	cr_assert_eq(r.st.pdus, 1, "%s", tag);
	cr_assert_eq(r.st.copied_bytes, 0, "%s", tag);
	if (c->dflags & D_APART) {
		/* the NIC's own destination got the PLACED bytes */
		uint32_t off = 0;
		int64_t bad = nic_bad_off(c);
		for (unsigned i = 0; i < c->nspans; off += c->span[i], i++)
			if (c->fl[i] & F_P)
				for (uint32_t j = off; j < off + c->span[i]; j++)
					if ((int64_t)j != bad)
						cr_assert_eq(w->apart[j], w->stream[w->pdo + j],
							     "%s", tag);
	}
}

static const uint32_t flag_set[4] = {0, F_P, F_C, F_P | F_C};
static const uint32_t dflag_set[4] = {0, D_APART, D_VERIFY, D_APART | D_VERIFY};

/* Spans of @p len in @p n parts, unequal on purpose. */
static void o_spans(struct ocase *c, uint32_t len, unsigned n)
{
	uint32_t left = len;
	c->nspans = n;
	for (unsigned i = 0; i < n; i++) {
		uint32_t k = i + 1 == n ? left : len * (i + 1) / (n * (n + 1) / 2);
		if (k == 0)
			k = 1;
		if (k > left - (n - 1 - i))
			k = left - (n - 1 - i);
		c->span[i] = k;
		left -= k;
	}
	cr_assert_eq(left, 0);
}

static void o_all_combos(uint32_t len, unsigned nspans, uint8_t hpda, const unsigned *corrupts,
			 unsigned ncorrupt)
{
	struct owork *w = malloc(sizeof(*w));
	cr_assert_not_null(w);
	for (unsigned ci = 0; ci < ncorrupt; ci++) {
		o_build(w, len, hpda, corrupts[ci]);
		for (unsigned df = 0; df < 4; df++) {
			unsigned ncomb = 1;
			for (unsigned i = 0; i < nspans; i++)
				ncomb *= 4;
			for (unsigned comb = 0; comb < ncomb * 2; comb++) {
				struct ocase c = {.len = len,
						  .hpda = hpda,
						  .corrupt = corrupts[ci],
						  .dflags = dflag_set[df]};
				o_spans(&c, len, nspans);
				unsigned x = comb >> 1;
				for (unsigned i = 0; i < nspans; i++, x /= 4)
					c.fl[i] = flag_set[x % 4];
				c.dg_fl = (comb & 1) ? F_C : 0;
				c.dg_split = comb % 3 == 0;
				o_check(w, &c, "combo");
			}
		}
	}
	free(w);
}

static const unsigned all_corrupt[] = {C_NONE, C_DATA, C_DGST, C_DATA | C_DGST, C_NIC};

Test(nvme_tcp_offload, span_flags_small)
{
	/* 1 byte: one span; 2, 3: as many spans as bytes */
	o_all_combos(1, 1, 0, all_corrupt, 5);
	o_all_combos(2, 2, 0, all_corrupt, 5);
	o_all_combos(3, 3, 0, all_corrupt, 5);
}

Test(nvme_tcp_offload, span_flags_four_spans)
{
	o_all_combos(4, 4, 0, all_corrupt, 5);
	o_all_combos(1000, 4, 0, all_corrupt, 5);
	o_all_combos(4097, 4, 3, all_corrupt, 5); /* with padding before the data */
}

Test(nvme_tcp_offload, span_flags_large, .timeout = 120)
{
	static const unsigned some[] = {C_NONE, C_DATA, C_NIC};
	o_all_combos(65536, 3, 0, some, 3);
	o_all_combos(65535, 3, 31, all_corrupt + 2, 1); /* digest only, 128-byte alignment */
}

/* A NIC that claims CRC_OK|PLACED on every byte but placed a wrong one: trusted without
 * VERIFY, caught with it. */
Test(nvme_tcp_offload, verify_catches_a_lying_nic)
{
	struct owork *w = malloc(sizeof(*w));
	struct ores r;
	struct ocase c = {.len = 3000, .dg_fl = F_C, .corrupt = C_NIC};
	cr_assert_not_null(w);
	o_spans(&c, 3000, 3);
	for (unsigned i = 0; i < 3; i++)
		c.fl[i] = F_P | F_C;
	o_build(w, 3000, 0, C_NONE);
	o_run(w, &c, &r);
	cr_assert_eq(r.ev.all_crc_ok, 1);
	cr_assert_eq(r.ev.ddgst_error, 0, "the NIC's verdict is trusted");
	cr_assert_eq(r.ev.nic_crc_false, 0);
	cr_assert_eq(r.st.crc_bytes, 0);
	c.dflags = D_VERIFY;
	o_run(w, &c, &r);
	cr_assert_eq(r.ev.all_crc_ok, 1);
	cr_assert_eq(r.ev.ddgst_error, 1);
	cr_assert_eq(r.ev.nic_crc_false, 1);
	cr_assert_eq(r.st.crc_bytes, 3000, "one pass: the running CRC");
	cr_assert_eq(r.st.ddgst_errors, 1);
	/* an honest NIC under VERIFY */
	c.corrupt = C_NONE;
	o_run(w, &c, &r);
	cr_assert_eq(r.ev.ddgst_error, 0);
	cr_assert_eq(r.ev.nic_crc_false, 0);
	cr_assert_eq(r.ev.all_crc_ok, 1);
	free(w);
}

/* APART: the verdict never depends on the iovec bytes where the NIC placed data (they hold
 * garbage, in every combination above too); a software-checked APART PDU is deferred with
 * the wire digest in the event, which the caller's CRC over the NIC's destination confirms. */
Test(nvme_tcp_offload, apart_never_reads_placed_bytes)
{
	struct owork *w = malloc(sizeof(*w));
	struct ores r;
	struct ocase c = {.len = 5000, .dflags = D_APART};
	cr_assert_not_null(w);
	o_spans(&c, 5000, 3);
	c.fl[0] = F_P | F_C;
	c.fl[1] = F_P; /* the NIC lost its CRC context on this one */
	c.fl[2] = 0;   /* a miss: into the iovecs */
	c.dg_fl = F_C;
	o_build(w, 5000, 0, C_NONE);
	o_run(w, &c, &r);
	cr_assert_eq(r.ev.crc_deferred, 1);
	cr_assert_eq(r.ev.ddgst_error, 0);
	/* the caller's deferred check: NIC destination for placed spans, iovecs for the miss */
	uint8_t *final = malloc(5000);
	memcpy(final, w->apart, c.span[0] + c.span[1]);
	memcpy(final + c.span[0] + c.span[1], w->iovmem + c.span[0] + c.span[1], c.span[2]);
	cr_assert_eq(ferry_crc32c(0, final, 5000), r.ev.ddgst);
	cr_assert_neq(ferry_crc32c(0, w->iovmem, 5000), r.ev.ddgst, "the iovecs hold garbage");
	/* every span CRC_OK|PLACED and the digest verified: nothing deferred, trusted */
	c.fl[1] = c.fl[2] = F_P | F_C;
	o_run(w, &c, &r);
	cr_assert_eq(r.ev.crc_deferred, 0);
	cr_assert_eq(r.ev.ddgst_error, 0);
	cr_assert_eq(r.ev.all_crc_ok, 1);
	cr_assert_eq(r.ev.all_placed, 1);
	cr_assert_eq(r.st.crc_bytes, 0);
	/* no PLACED span at all under APART: software checks the iovecs as usual */
	c.fl[0] = c.fl[1] = c.fl[2] = 0;
	o_build(w, 5000, 0, C_DATA);
	o_run(w, &c, &r);
	cr_assert_eq(r.ev.crc_deferred, 0);
	cr_assert_eq(r.ev.ddgst_error, 1);
	cr_assert_eq(r.st.crc_bytes, 5000);
	free(final);
	free(w);
}

/* The copy path with the NIC's verdict: feed_ex() takes CRC_OK only. */
static struct ferry_nvme_tcp_rx_event feed_pdu(struct owork *w, uint32_t data_fl, uint32_t dg_fl,
					       uint8_t *dest, struct ferry_nvme_tcp_rx_stats *st)
{
	struct ferry_nvme_tcp_rx *rx = calloc(1, sizeof(*rx));
	struct ferry_nvme_tcp_rx_event ev;
	size_t pos = 0, c, len = w->n - w->pdo - 4;

	cr_assert_not_null(rx);
	o_start(rx, &w->p);
	/* header bytes with CRC_OK: ignored (the flags are about data) */
	cr_assert_eq(ferry_nvme_tcp_rx_feed_ex(rx, w->stream, w->pdo, F_C, &c, &ev), 0);
	cr_assert_eq(c, w->pdo);
	cr_assert_eq(ev.type, FERRY_NVME_TCP_RX_HEADER);
	struct iovec d[2] = {{dest, len / 3}, {dest + len / 3, len - len / 3}};
	cr_assert_eq(ferry_nvme_tcp_rx_set_dest_ex(rx, d, 2, 0), 0);
	pos = w->pdo;
	cr_assert_eq(ferry_nvme_tcp_rx_feed_ex(rx, w->stream + pos, len, F_P, &c, &ev), -EINVAL,
		     "PLACED cannot come with bytes in a buffer");
	cr_assert_eq(ferry_nvme_tcp_rx_feed_ex(rx, w->stream + pos, len, F_P | F_C, &c, &ev),
		     -EINVAL);
	cr_assert_eq(ferry_nvme_tcp_rx_feed_ex(rx, w->stream + pos, len, 1u << 7, &c, &ev), -EINVAL,
		     "unknown flag");
	cr_assert_eq(ferry_nvme_tcp_rx_stream_pos(rx), 128 + pos, "nothing accounted");
	/* the data in two feeds, then the digest (with the bytes after it: none) */
	cr_assert_eq(ferry_nvme_tcp_rx_feed_ex(rx, w->stream + pos, len / 2, data_fl, &c, &ev), 0);
	cr_assert_eq(c, len / 2);
	pos += c;
	cr_assert_eq(ferry_nvme_tcp_rx_feed_ex(rx, w->stream + pos, len - len / 2, data_fl, &c,
					       &ev),
		     0);
	pos += c;
	cr_assert_eq(ev.type, FERRY_NVME_TCP_RX_NONE);
	cr_assert_eq(ferry_nvme_tcp_rx_feed_ex(rx, w->stream + pos, 4, dg_fl, &c, &ev), 0);
	cr_assert_eq(c, 4);
	cr_assert_eq(ev.type, FERRY_NVME_TCP_RX_DONE);
	cr_assert_eq(ferry_nvme_tcp_rx_stream_pos(rx), 128 + w->n);
	*st = rx->stats;
	free(rx);
	return ev;
}

Test(nvme_tcp_offload, feed_ex_crc_ok)
{
	struct owork *w = malloc(sizeof(*w));
	struct ferry_nvme_tcp_rx_stats st;
	struct ferry_nvme_tcp_rx_event ev;
	uint8_t *dest = malloc(3000);
	cr_assert_not_null(w);
	for (unsigned bad = 0; bad < 2; bad++) {
		o_build(w, 3000, 0, bad ? C_DATA : C_NONE);
		/* CRC_OK on the digest bytes only: the data came without it, software checks */
		ev = feed_pdu(w, 0, F_C, dest, &st);
		cr_assert_eq(memcmp(dest, w->stream + w->pdo, 3000), 0, "copied");
		cr_assert_eq(ev.all_crc_ok, 0);
		cr_assert_eq(ev.all_placed, 0);
		cr_assert_eq(ev.ddgst_error, bad);
		cr_assert_eq(st.crc_bytes, 3000);
		cr_assert_eq(st.copied_bytes, 3000);
		/* CRC_OK on data and digest: trusted, no software CRC, still copied */
		ev = feed_pdu(w, F_C, F_C, dest, &st);
		cr_assert_eq(memcmp(dest, w->stream + w->pdo, 3000), 0);
		cr_assert_eq(ev.all_crc_ok, 1);
		cr_assert_eq(ev.ddgst_error, 0);
		cr_assert_eq(st.crc_bytes, 0);
		cr_assert_eq(st.placed_bytes, 0);
		/* CRC_OK on the data, the digest without the verdict (a NIC's mismatch) */
		ev = feed_pdu(w, F_C, 0, dest, &st);
		cr_assert_eq(ev.all_crc_ok, 0);
		cr_assert_eq(ev.ddgst_error, bad);
		cr_assert_eq(st.crc_bytes, 3000, "recomputed from the destination");
		cr_assert_eq(ev.ddgst, le32(w->stream + w->n - 4));
	}
	free(dest);
	free(w);
}

Test(nvme_tcp_offload, set_dest_ex_arguments)
{
	struct owork *w = malloc(sizeof(*w));
	struct ferry_nvme_tcp_rx rx;
	struct ferry_nvme_tcp_rx_event ev;
	uint8_t buf[100];
	struct iovec d = {buf, sizeof(buf)}, shorter = {buf, 99};
	size_t c;
	cr_assert_not_null(w);
	o_build(w, 100, 0, C_NONE);
	o_start(&rx, &w->p);
	cr_assert_eq(ferry_nvme_tcp_rx_set_dest_ex(&rx, &d, 1, D_APART), -EINVAL, "no HEADER yet");
	cr_assert_eq(ferry_nvme_tcp_rx_feed(&rx, w->stream, w->pdo, &c, &ev), 0);
	cr_assert_eq(ev.type, FERRY_NVME_TCP_RX_HEADER);
	cr_assert_eq(ferry_nvme_tcp_rx_set_dest_ex(&rx, NULL, 0, D_APART), -EINVAL,
		     "discard cannot be APART");
	cr_assert_eq(ferry_nvme_tcp_rx_set_dest_ex(&rx, NULL, 0, D_APART | D_VERIFY), -EINVAL);
	cr_assert_eq(ferry_nvme_tcp_rx_set_dest_ex(&rx, &d, 0, D_APART), -EINVAL);
	cr_assert_eq(ferry_nvme_tcp_rx_set_dest_ex(&rx, &shorter, 1, D_APART), -EINVAL,
		     "an APART destination still holds data_len bytes");
	cr_assert_eq(ferry_nvme_tcp_rx_set_dest_ex(&rx, &d, 1, 1u << 5), -EINVAL, "unknown flag");
	cr_assert_eq(ferry_nvme_tcp_rx_set_dest_ex(NULL, &d, 1, 0), -EINVAL);
	struct iovec k[1];
	cr_assert_eq(ferry_nvme_tcp_rx_next(&rx, k, 1), 0, "still waiting for a destination");
	/* discard with VERIFY is fine: software checks a discarded PDU anyway */
	cr_assert_eq(ferry_nvme_tcp_rx_set_dest_ex(&rx, NULL, 0, D_VERIFY), 0);
	cr_assert_eq(ferry_nvme_tcp_rx_feed(&rx, w->stream + w->pdo, w->n - w->pdo, &c, &ev), 0);
	cr_assert_eq(ev.type, FERRY_NVME_TCP_RX_DONE);
	cr_assert_eq(ev.ddgst_error, 0);
	cr_assert_eq(ev.crc_deferred, 0);
	free(w);
}

/*
 * pdu_at() and stream_pos() at every point of a stream (ICResp, CapsuleResp, R2T, two
 * C2HData, a C2HTermReq) received zero copy in random splits, asked about every offset up
 * to past the end: 1 at the start of the PDU being (or last) received and at the boundary
 * the machine stands on, 0 for every other consumed offset (inside PDUs, earlier PDU
 * starts), -EAGAIN for what is not consumed yet.
 */
Test(nvme_tcp_offload, pdu_at_everywhere)
{
	struct combo {
		int hd, dd;
		uint8_t pda;
	} combos[] = {{1, 1, 0}, {0, 0, 0}, {1, 0, 7}};
	for (unsigned ci = 0; ci < 3; ci++)
		for (uint64_t seed = 1; seed < 5; seed++) {
			struct ferry_nvme_tcp_params p = {.role = FERRY_NVME_TCP_ROLE_HOST,
							  .hdgst = (uint8_t)combos[ci].hd,
							  .ddgst = (uint8_t)combos[ci].dd,
							  .hpda = combos[ci].pda,
							  .cpda = combos[ci].pda,
							  .maxh2cdata = 8192};
			struct t_stream *s = malloc(sizeof(*s));
			struct t_run *r = malloc(sizeof(*r));
			cr_assert(s && r);
			ts_ctrl_stream(s, &p, 700, 1);
			tr_init(r, FERRY_NVME_TCP_ROLE_HOST, &p, seed);
			/* PDU starts: rebuilt by walking PLENs */
			uint64_t starts[16];
			unsigned ns = 0;
			for (size_t at = 0; at < s->n; at += le32(s->b + at + 4))
				starts[ns++] = at;
			cr_assert_eq(ns, s->pdus);
			struct iovec iov[8];
			size_t pos = 0;
			unsigned cur = 0; /* index of the PDU holding byte pos-1 */
			while (pos < s->n) {
				struct ferry_nvme_tcp_rx_event ev;
				uint32_t k = ferry_nvme_tcp_rx_next(&r->rx, iov, 8);
				cr_assert_gt(k, 0);
				size_t off = 0, want = 0;
				for (uint32_t i = 0; i < k; i++)
					want += iov[i].iov_len;
				size_t amt = 1 + t_rand(&r->rng) % (want < 7 ? want : 7);
				if (t_rand(&r->rng) % 4 == 0)
					amt = want;
				for (uint32_t i = 0; i < k && off < amt; i++) {
					size_t cc = iov[i].iov_len < amt - off ? iov[i].iov_len
									       : amt - off;
					memcpy(iov[i].iov_base, s->b + pos + off, cc);
					off += cc;
				}
				cr_assert_eq(ferry_nvme_tcp_rx_advance(&r->rx, amt, 0, &ev), 0);
				pos += amt;
				tr_event(r, &ev);
				cr_assert_neq(ev.type, FERRY_NVME_TCP_RX_ERROR);
				cr_assert_eq(ferry_nvme_tcp_rx_stream_pos(&r->rx), pos);
				while (cur + 1 < ns && starts[cur + 1] < pos)
					cur++;
				int boundary = ev.type == FERRY_NVME_TCP_RX_DONE;
				if (boundary)
					cr_assert(pos == s->n || pos == starts[cur + 1]);
				for (uint64_t q = 0; q < s->n + 3; q++) {
					int got = ferry_nvme_tcp_rx_pdu_at(&r->rx, q);
					int exp;
					if (q == starts[cur] || (boundary && q == pos))
						exp = 1;
					else if (q < pos)
						exp = 0;
					else
						exp = -EAGAIN;
					cr_assert_eq(got, exp, "pdu_at(%llu) at %zu: %d",
						     (unsigned long long)q, pos, got);
				}
			}
			cr_assert_eq(r->rx.stats.pdus, s->pdus);
			free(s);
			free(r);
		}
	cr_assert_eq(ferry_nvme_tcp_rx_pdu_at(NULL, 0), -EINVAL);
	cr_assert_eq(ferry_nvme_tcp_rx_stream_pos(NULL), 0);
}

/* Before anything: offset 0 is where the first PDU starts. */
Test(nvme_tcp_offload, pdu_at_fresh)
{
	struct ferry_nvme_tcp_params p = {.role = FERRY_NVME_TCP_ROLE_CONTROLLER};
	struct ferry_nvme_tcp_rx rx;
	cr_assert_eq(ferry_nvme_tcp_rx_init(&rx, &p), 0);
	cr_assert_eq(ferry_nvme_tcp_rx_pdu_at(&rx, 0), 1);
	cr_assert_eq(ferry_nvme_tcp_rx_pdu_at(&rx, 1), -EAGAIN);
	cr_assert_eq(ferry_nvme_tcp_rx_stream_pos(&rx), 0);
}
