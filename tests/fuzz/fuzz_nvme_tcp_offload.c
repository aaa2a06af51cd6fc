/*
 * Fuzz target for the receive offload path of the NVMe/TCP receive machine
 * (sdk/src/nvme_tcp/rx.c): per-span PLACED / CRC_OK flags, APART / VERIFY destinations,
 * feed_ex() with CRC_OK, pdu_at() and stream_pos(), checked against a model of the header's
 * contract that this file keeps from the bytes it hands over.
 *
 * Input layout:
 *   [0]        configuration:
 *                bit 0  role: 0 controller (receives host PDUs), 1 host
 *                bit 1  header digest negotiated
 *                bit 2  data digest negotiated
 *                bit 3  zero copy (rx_next + rx_advance) instead of rx_feed_ex
 *                bit 4  the target sends the IC PDU itself first (the input starts after it)
 *   [1]        the peer's PDA (& 31)
 *   [2]        S, the length of the flags script
 *   [3..3+S)   the script, used cyclically (S 0: a fixed pattern). One byte per advance /
 *              feed: bits 0-1 the span flags (PLACED, CRC_OK; feed: CRC_OK only), bits 2-7 the
 *              split length (63: all offered). One byte per HEADER: bit 0 APART, bit 1
 *              VERIFY, bit 2 discard, bits 3-7 where the two-segment destination is cut.
 *   [3+S..]    the byte stream
 *
 * Checked at each DONE of a PDU with data: all_placed / all_crc_ok are the AND of the flags
 * the data bytes (and, for all_crc_ok, the digest bytes) came with; a DONE has all_crc_ok only
 * if the digest bytes came with CRC_OK; ddgst is the digest on the wire; ddgst_error is the
 * CRC32C of the wire data against it exactly when software had to check and could, else 0;
 * crc_deferred exactly when software had to check but APART bytes were placed; nic_crc_false
 * = ddgst_error && all_crc_ok; placed_bytes grew by the PLACED data bytes, data_bytes by the
 * data length, placed_bytes <= data_bytes. pdu_at() answers 1 at the current PDU's start and
 * at a boundary, 0 at an earlier start and inside, -EAGAIN ahead; stream_pos() is the bytes
 * consumed. APART iovec bytes that the NIC "placed" hold garbage: no verdict may read them.
 * A PDU's destination is malloc'd at exactly data_len, so ASan catches any write past it.
 *
 * Seeds: built with -DFUZZ_NVME_TCP_OFFLOAD_SEEDS this file is a program that writes the
 * seed corpus (valid conversations of both roles, digests on and off, scripts of every flag
 * mix, APART and VERIFY, a corrupted data digest) into the directory given: what
 * tests/fuzz/corpus/nvme_tcp_offload/ was generated from.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ferry/crc.h>
#include <ferry/module/nvme_tcp.h>

#define FUZZ_NAME "fuzz_nvme_tcp_offload"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define F_P FERRY_NVME_TCP_RX_F_PLACED
#define F_C FERRY_NVME_TCP_RX_F_CRC_OK
#define D_APART FERRY_NVME_TCP_RX_DEST_F_APART
#define D_VERIFY FERRY_NVME_TCP_RX_DEST_F_VERIFY
#define GARBAGE 0x5Au

struct fz {
	struct ferry_nvme_tcp_rx rx;
	struct ferry_nvme_tcp_params p;
	uint8_t cfg;
	const uint8_t *script;
	size_t slen, si;
	const uint8_t *s; /* the whole stream (the IC PDU first when the target sends it) */
	size_t n, pos;    /* stream bytes, bytes consumed */
	int errored;
	uint64_t dones;
	/* PDU tracking for pdu_at(): start of the PDU holding byte pos-1, the boundary */
	uint64_t cur_start, prev_start;
	int have_prev, boundary;
	/* the PDU with data being received (after its HEADER) */
	int in_data;
	uint32_t pdo, data_len, plen;
	uint8_t dd, discard;
	uint32_t dflags;
	uint32_t data_and, dg_and, placed;
	uint64_t placed0, data0;
	int apart_placed;
	uint8_t *dest;
	struct iovec iov[2];
};

static uint8_t sc(struct fz *f)
{
	uint8_t b = f->slen ? f->script[f->si % f->slen] : (uint8_t)(f->si * 37 + 11);
	f->si++;
	return b;
}

static uint32_t le32(const uint8_t *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static void check_pos(struct fz *f)
{
	const struct ferry_nvme_tcp_rx *rx = &f->rx;
	CHECK(ferry_nvme_tcp_rx_stream_pos(rx) == f->pos);
	CHECK(ferry_nvme_tcp_rx_pdu_at(rx, f->pos + 1) == -EAGAIN);
	if (f->errored)
		return;
	if (f->boundary || f->pos == 0) {
		CHECK(ferry_nvme_tcp_rx_pdu_at(rx, f->pos) == 1);
	} else {
		CHECK(ferry_nvme_tcp_rx_pdu_at(rx, f->pos) == -EAGAIN);
		if (f->pos > f->cur_start + 1)
			CHECK(ferry_nvme_tcp_rx_pdu_at(rx, f->pos - 1) == 0);
	}
	if (f->pos > f->cur_start)
		CHECK(ferry_nvme_tcp_rx_pdu_at(rx, f->cur_start) == 1);
	if (f->have_prev && f->prev_start < f->cur_start)
		CHECK(ferry_nvme_tcp_rx_pdu_at(rx, f->prev_start) == 0);
}

/* @p amt stream bytes were consumed with @p fl: account them in the model. */
static void consumed(struct fz *f, size_t amt, uint32_t fl)
{
	if (amt && f->boundary) {
		/* the first byte of the next PDU */
		f->prev_start = f->cur_start;
		f->have_prev = 1;
		f->cur_start = f->pos;
		f->boundary = 0;
	}
	if (f->in_data && amt) {
		uint64_t o = f->pos - f->cur_start, e = o + amt;
		uint64_t ds = f->pdo, de = (uint64_t)f->pdo + f->data_len,
			 ge = de + (f->dd ? 4 : 0);
		uint64_t a = o > ds ? o : ds, b = e < de ? e : de;
		if (a < b) {
			f->data_and &= fl;
			if (fl & F_P) {
				f->placed += (uint32_t)(b - a);
				if (f->dflags & D_APART)
					f->apart_placed = 1;
			}
		}
		a = o > de ? o : de;
		b = e < ge ? e : ge;
		if (a < b)
			f->dg_and &= fl;
	}
	f->pos += amt;
}

static void on_header(struct fz *f, const struct ferry_nvme_tcp_rx_event *ev)
{
	const uint8_t *h = (const uint8_t *)ev->hdr;
	uint8_t b = sc(f);
	uint32_t hd = (h[1] & FERRY_NVME_TCP_F_HDGST) ? 4 : 0;

	CHECK(ev->data_len > 0);
	f->pdo = h[3];
	f->plen = le32(h + 4);
	f->data_len = ev->data_len;
	f->dd = (uint8_t) !!(h[1] & FERRY_NVME_TCP_F_DDGST);
	CHECK(f->pos == f->cur_start + h[2] + hd);
	CHECK(f->pdo >= h[2] + hd);
	CHECK((uint64_t)f->plen == (uint64_t)f->pdo + f->data_len + (f->dd ? 4 : 0));
	f->in_data = 1;
	f->data_and = f->dg_and = ~0u;
	f->placed = 0;
	f->apart_placed = 0;
	f->placed0 = f->rx.stats.placed_bytes;
	f->data0 = f->rx.stats.data_bytes;
	f->discard = (uint8_t) !!(b & 4);
	f->dflags = b & (D_APART | D_VERIFY);
	free(f->dest);
	f->dest = NULL;
	if (f->discard) {
		CHECK(ferry_nvme_tcp_rx_set_dest_ex(&f->rx, NULL, 0, D_APART) == -EINVAL);
		f->dflags &= ~D_APART;
		CHECK(ferry_nvme_tcp_rx_set_dest_ex(&f->rx, NULL, 0, f->dflags) == 0);
		return;
	}
	f->dest = malloc(f->data_len);
	CHECK(f->dest);
	memset(f->dest, 0xEE, f->data_len);
	uint32_t cut = (uint32_t)(((uint64_t)(b >> 3) * f->data_len) / 31);
	f->iov[0] = (struct iovec){f->dest, cut};
	f->iov[1] = (struct iovec){f->dest + cut, f->data_len - cut};
	CHECK(ferry_nvme_tcp_rx_set_dest_ex(&f->rx, f->iov, 2, f->dflags) == 0);
	CHECK(ferry_nvme_tcp_rx_set_dest_ex(&f->rx, f->iov, 2, f->dflags) == -EINVAL);
}

static void on_done(struct fz *f, const struct ferry_nvme_tcp_rx_event *ev)
{
	uint8_t type = ev->hdr->pdu_type;

	f->dones++;
	CHECK(f->rx.stats.pdus == f->dones);
	CHECK(f->rx.stats.placed_bytes <= f->rx.stats.data_bytes);
	if (!f->in_data) {
		CHECK(!ev->all_placed && !ev->all_crc_ok && !ev->ddgst_error && !ev->crc_deferred &&
		      !ev->nic_crc_false);
		if (type != FERRY_NVME_TCP_H2C_TERM && type != FERRY_NVME_TCP_C2H_TERM)
			CHECK(ev->data_len == 0);
	} else {
		const uint8_t *d = f->s + f->cur_start + f->pdo;
		int need, mismatch = 0;

		CHECK(ev->data_len == f->data_len);
		CHECK(f->pos == f->cur_start + f->plen);
		CHECK(f->rx.stats.data_bytes - f->data0 == f->data_len);
		CHECK(f->rx.stats.placed_bytes - f->placed0 == f->placed);
		CHECK(ev->all_placed == !!(f->data_and & F_P));
		if (!f->dd) {
			CHECK(ev->all_crc_ok == !!(f->data_and & F_C));
			CHECK(!ev->ddgst_error && !ev->crc_deferred && !ev->nic_crc_false);
		} else {
			CHECK(ev->all_crc_ok == !!(f->data_and & f->dg_and & F_C));
			CHECK(!ev->all_crc_ok || (f->dg_and & F_C));
			CHECK(ev->ddgst == le32(d + f->data_len));
			mismatch = ferry_crc32c(0, d, f->data_len) != ev->ddgst;
			need = f->discard || !ev->all_crc_ok || (f->dflags & D_VERIFY);
			if (need && f->apart_placed) {
				CHECK(ev->crc_deferred && !ev->ddgst_error);
			} else if (need) {
				CHECK(!ev->crc_deferred);
				CHECK(ev->ddgst_error == mismatch);
			} else {
				CHECK(!ev->crc_deferred && !ev->ddgst_error);
			}
			CHECK(ev->nic_crc_false == (ev->ddgst_error && ev->all_crc_ok));
		}
		/* what this CPU's iovecs got: the wire bytes, garbage where APART placed */
		if (f->dest && !(f->dflags & D_APART))
			CHECK(memcmp(f->dest, d, f->data_len) == 0);
	}
	f->in_data = 0;
	free(f->dest);
	f->dest = NULL;
	f->boundary = 1;
	if (type == FERRY_NVME_TCP_ICREQ || type == FERRY_NVME_TCP_ICRESP)
		CHECK(ferry_nvme_tcp_rx_set_params(&f->rx, &f->p) == 0);
}

static void on_event(struct fz *f, const struct ferry_nvme_tcp_rx_event *ev)
{
	if (ev->type == FERRY_NVME_TCP_RX_NONE)
		return;
	CHECK(!f->errored);
	if (ev->type == FERRY_NVME_TCP_RX_ERROR) {
		f->errored = 1;
		return;
	}
	CHECK(ev->hdr != NULL);
	if (ev->type == FERRY_NVME_TCP_RX_HEADER)
		on_header(f, ev);
	else
		on_done(f, ev);
}

static size_t split(uint8_t b, size_t want)
{
	size_t sel = b >> 2, amt;
	if (sel == 63)
		return want;
	amt = 1 + sel * sel;
	return amt < want ? amt : want;
}

static void run_feed(struct fz *f)
{
	while (f->pos < f->n && !f->errored) {
		struct ferry_nvme_tcp_rx_event ev;
		uint8_t b = sc(f);
		size_t chunk = split(b, f->n - f->pos), c = 7;
		uint32_t fl = b & F_C;
		if (b & F_P) {
			CHECK(ferry_nvme_tcp_rx_feed_ex(&f->rx, f->s + f->pos, chunk, fl | F_P, &c,
							&ev) == -EINVAL);
			CHECK(ferry_nvme_tcp_rx_stream_pos(&f->rx) == f->pos);
		}
		CHECK(ferry_nvme_tcp_rx_feed_ex(&f->rx, f->s + f->pos, chunk, fl, &c, &ev) == 0);
		CHECK(c <= chunk);
		CHECK(c > 0 || ev.type != FERRY_NVME_TCP_RX_NONE);
		consumed(f, c, fl);
		on_event(f, &ev);
		check_pos(f);
	}
}

static void run_zc(struct fz *f)
{
	struct iovec iov[6];
	while (f->pos < f->n && !f->errored) {
		struct ferry_nvme_tcp_rx_event ev;
		uint8_t b = sc(f);
		uint32_t k = ferry_nvme_tcp_rx_next(&f->rx, iov, 1 + (uint32_t)(b % 6));
		size_t offered = 0, amt, off = 0;
		uint32_t fl = b & (F_P | F_C);
		CHECK(k >= 1);
		for (uint32_t i = 0; i < k; i++)
			offered += iov[i].iov_len;
		CHECK(offered > 0);
		amt = split(b, offered < f->n - f->pos ? offered : f->n - f->pos);
		for (uint32_t i = 0; i < k && off < amt; i++) {
			uint8_t *to = iov[i].iov_base;
			size_t c = iov[i].iov_len < amt - off ? iov[i].iov_len : amt - off;
			int in_dest = f->dest && (fl & F_P) && (f->dflags & D_APART) &&
				      to >= f->dest && to < f->dest + f->data_len;
			if (in_dest)
				memset(to, GARBAGE, c); /* the NIC put them elsewhere */
			else
				memcpy(to, f->s + f->pos + off, c);
			off += c;
		}
		CHECK(ferry_nvme_tcp_rx_advance(&f->rx, offered + 1, fl, &ev) == -EINVAL);
		CHECK(ferry_nvme_tcp_rx_advance(&f->rx, amt, fl, &ev) == 0);
		consumed(f, amt, fl);
		on_event(f, &ev);
		check_pos(f);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz *f;
	uint8_t *all;
	size_t hdr;

	if (size < 3 || size < 3u + data[2])
		return 0;
	hdr = 3u + data[2];
	f = calloc(1, sizeof(*f));
	all = malloc(size - hdr + 128);
	CHECK(f && all);
	f->cfg = data[0];
	f->p.role = (f->cfg & 1) ? FERRY_NVME_TCP_ROLE_HOST : FERRY_NVME_TCP_ROLE_CONTROLLER;
	f->p.hdgst = !!(f->cfg & 2);
	f->p.ddgst = !!(f->cfg & 4);
	if (f->p.role == FERRY_NVME_TCP_ROLE_CONTROLLER)
		f->p.cpda = data[1] & 31;
	else
		f->p.hpda = data[1] & 31;
	f->p.max_icd = 16384;
	f->p.maxh2cdata = 65536;
	f->p.max_c2hdata = 65536;
	f->script = data + 3;
	f->slen = data[2];
	CHECK(ferry_nvme_tcp_rx_init(&f->rx, &f->p) == 0);
	CHECK(ferry_nvme_tcp_rx_pdu_at(&f->rx, 0) == 1);

	f->n = 0;
	if (f->cfg & 0x10) {
		uint8_t dg = (uint8_t)((f->p.hdgst ? 1 : 0) | (f->p.ddgst ? 2 : 0));
		if (f->p.role == FERRY_NVME_TCP_ROLE_CONTROLLER)
			f->n = ferry_nvme_tcp_build_icreq(all, f->p.hpda, dg, 0);
		else
			f->n = ferry_nvme_tcp_build_icresp(all, f->p.cpda, dg, f->p.maxh2cdata);
	}
	memcpy(all + f->n, data + hdr, size - hdr);
	f->n += size - hdr;
	f->s = all;
	if (f->cfg & 8)
		run_zc(f);
	else
		run_feed(f);
	if (f->errored) {
		struct ferry_nvme_tcp_rx_event ev;
		size_t c = 1;
		uint64_t at = ferry_nvme_tcp_rx_stream_pos(&f->rx);
		CHECK(ferry_nvme_tcp_rx_feed_ex(&f->rx, f->s + f->pos, f->n - f->pos, F_C, &c,
						&ev) == 0);
		CHECK(c == 0 && ev.type == FERRY_NVME_TCP_RX_NONE);
		CHECK(ferry_nvme_tcp_rx_stream_pos(&f->rx) == at);
	}
	CHECK(f->rx.stats.placed_bytes <= f->rx.stats.data_bytes + (f->in_data ? f->data_len : 0));
	CHECK(f->rx.stats.data_bytes <= f->pos);
	if (getenv("FUZZ_NVME_TCP_OFFLOAD_VERBOSE"))
		fprintf(stderr, "cfg %#x: %llu PDUs, %llu data, %llu placed, %llu crc, %s\n",
			f->cfg, (unsigned long long)f->dones,
			(unsigned long long)f->rx.stats.data_bytes,
			(unsigned long long)f->rx.stats.placed_bytes,
			(unsigned long long)f->rx.stats.crc_bytes, f->errored ? "error" : "ok");
	free(f->dest);
	free(all);
	free(f);
	return 0;
}

#ifdef FUZZ_NVME_TCP_OFFLOAD_SEEDS
/* ---- seed corpus writer ------------------------------------------------------------------ */

struct seed {
	uint8_t b[16384];
	size_t n;
};

static void put(struct seed *s, const void *p, size_t n)
{
	memcpy(s->b + s->n, p, n);
	s->n += n;
}

static void sdata(struct seed *s, size_t n, int dd, int bad)
{
	uint8_t *d = s->b + s->n;
	for (size_t i = 0; i < n; i++)
		d[i] = (uint8_t)(i * 13 + 5);
	s->n += n;
	if (dd) {
		uint32_t c = ferry_crc32c(0, d, n);
		uint8_t le[4] = {(uint8_t)c, (uint8_t)(c >> 8), (uint8_t)(c >> 16),
				 (uint8_t)(c >> 24)};
		put(s, le, 4);
	}
	if (bad)
		d[n / 2] ^= 1;
}

static void write_seed(const char *dir, const char *name, const struct seed *s)
{
	fuzz_write_seed(dir, name, s->b, s->n);
}

static void host_stream(struct seed *s, const struct ferry_nvme_tcp_params *p, int bad)
{
	struct ferry_nvme_sqe sqe;
	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = 1;
	sqe.cid = 4;
	s->n += ferry_nvme_tcp_build_cmd(s->b + s->n, p, &sqe, 0);
	s->n += ferry_nvme_tcp_build_cmd(s->b + s->n, p, &sqe, 700);
	sdata(s, 700, p->ddgst, 0);
	s->n += ferry_nvme_tcp_build_data(s->b + s->n, p, FERRY_NVME_TCP_H2C_DATA, 4, 1, 0, 3000,
					  0);
	sdata(s, 3000, p->ddgst, bad);
	s->n += ferry_nvme_tcp_build_data(s->b + s->n, p, FERRY_NVME_TCP_H2C_DATA, 4, 1, 3000, 1,
					  FERRY_NVME_TCP_F_LAST_PDU);
	sdata(s, 1, p->ddgst, 0);
}

static void ctrl_stream(struct seed *s, const struct ferry_nvme_tcp_params *p, int bad)
{
	struct ferry_nvme_cqe cqe;
	memset(&cqe, 0, sizeof(cqe));
	cqe.cid = 4;
	s->n += ferry_nvme_tcp_build_resp(s->b + s->n, p, &cqe);
	s->n += ferry_nvme_tcp_build_data(s->b + s->n, p, FERRY_NVME_TCP_C2H_DATA, 4, 0, 0, 4000,
					  0);
	sdata(s, 4000, p->ddgst, bad);
	s->n += ferry_nvme_tcp_build_data(s->b + s->n, p, FERRY_NVME_TCP_C2H_DATA, 4, 0, 4000, 3,
					  FERRY_NVME_TCP_F_LAST_PDU | FERRY_NVME_TCP_F_SUCCESS);
	sdata(s, 3, p->ddgst, 0);
	s->n += ferry_nvme_tcp_build_r2t(s->b + s->n, p, 5, 9, 0, 4096);
	s->n += ferry_nvme_tcp_build_data(s->b + s->n, p, FERRY_NVME_TCP_C2H_DATA, 6, 0, 0, 1500,
					  FERRY_NVME_TCP_F_LAST_PDU);
	sdata(s, 1500, p->ddgst, 0);
}

struct script {
	const char *name;
	uint8_t len;
	uint8_t b[8];
};

/* span bytes: (split << 2) | flags; header bytes: APART 1, VERIFY 2, discard 4, cut << 3 */
static const struct script scripts[] = {
	{"plain", 0, {0}},
	{"all_ok_placed", 1, {0xFF}},
	{"mixed", 5, {0xFF, 0x3D, 0x82, 0xFC, 0x43}},
	{"apart", 4, {0x79, 0xFF, 0x2F, 0xFD}},
	{"verify", 3, {0x7A, 0xFF, 0xFF}},
	{"apart_verify", 4, {0x93, 0x1F, 0xFF, 0xE3}},
	{"discard_ok", 2, {0x0C, 0xFE}},
};

int main(int argc, char **argv)
{
	static struct seed s;
	char name[96];
	unsigned nseed = 0;
	if (argc != 2) {
		fprintf(stderr, "usage: %s <dir>\n", argv[0]);
		return 2;
	}
	const char *dir = argv[1];
	for (unsigned si = 0; si < sizeof(scripts) / sizeof(scripts[0]); si++)
		for (int role = 0; role < 2; role++)
			for (int v = 0; v < 2; v++) {
				/* v 0: both digests, zero copy; v 1: data digest, copy, PDA 7,
				 * the input carries its own IC PDU */
				struct ferry_nvme_tcp_params p = {0};
				const struct script *sc = &scripts[si];
				uint8_t pda = (uint8_t)(v ? 7 : 0), cfg;
				int bad = si == 2 && v == 0;
				if (si == 0 && v == 1)
					continue;
				p.role = role ? FERRY_NVME_TCP_ROLE_HOST
					      : FERRY_NVME_TCP_ROLE_CONTROLLER;
				p.hdgst = (uint8_t)!v;
				p.ddgst = 1;
				if (role)
					p.hpda = pda;
				else
					p.cpda = pda;
				p.max_icd = 16384;
				p.maxh2cdata = 65536;
				p.max_c2hdata = 65536;
				cfg = (uint8_t)(role | (p.hdgst << 1) | (p.ddgst << 2) |
						(v ? 0 : 0x18));
				memset(&s, 0, sizeof(s));
				uint8_t h[3] = {cfg, pda, sc->len};
				put(&s, h, 3);
				put(&s, sc->b, sc->len);
				if (v) {
					if (role)
						s.n += ferry_nvme_tcp_build_icresp(s.b + s.n, 0, 2,
										   65536);
					else
						s.n += ferry_nvme_tcp_build_icreq(s.b + s.n, pda, 2,
										  0);
				}
				if (role)
					ctrl_stream(&s, &p, bad);
				else
					host_stream(&s, &p, bad);
				snprintf(name, sizeof(name), "%s_to_%s_%s%s", sc->name,
					 role ? "host" : "ctrl", v ? "dd_copy_pda7" : "hddd_zc",
					 bad ? "_bad_ddgst" : "");
				write_seed(dir, name, &s);
				nseed++;
			}
	/* no digests at all, zero copy, every flag */
	struct ferry_nvme_tcp_params p = {.role = FERRY_NVME_TCP_ROLE_HOST, .max_c2hdata = 65536};
	memset(&s, 0, sizeof(s));
	uint8_t h[5] = {0x19, 0, 2, 0xFF, 0x0B};
	put(&s, h, 5);
	ctrl_stream(&s, &p, 0);
	write_seed(dir, "nodgst_to_host_zc", &s);
	nseed++;
	printf("%u seeds\n", nseed);
	return 0;
}
#endif
