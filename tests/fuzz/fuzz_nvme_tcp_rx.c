/*
 * Fuzz target for the NVMe/TCP receive state machine (sdk/src/nvme_tcp/rx.c).
 *
 * Input layout:
 *   [0]     configuration:
 *             bit 0    role: 0 controller (receives host PDUs), 1 host
 *             bit 1    header digest negotiated
 *             bit 2    data digest negotiated
 *             bit 3    zero copy (rx_next + memcpy + rx_advance) instead of rx_feed
 *             bit 4    the target sends the IC PDU itself first (the input starts after it)
 *             bit 5    discard the data of every other data PDU (rx_set_dest(NULL, 0))
 *             bit 6    offload flags on data spans (PLACED / CRC_OK taken from the seed)
 *   [1]     the peer's PDA (& 31): CPDA for a controller, HPDA for a host
 *   [2]     limits: max_icd = (b & 15) * 1024, maxh2cdata / max_c2hdata = 4096 << (b >> 6)
 *   [3..6]  seed of the chunk sizes and partial amounts (xorshift)
 *   [7..]   the byte stream
 *
 * Checked: every call returns 0; feed never consumes more than it was given, advance never
 * accepts more than rx_next offered; an event's data length respects the limits (so the
 * destinations, malloc'd at exactly data_len, are never overrun: ASan checks the writes);
 * TermReq data is at most 128 bytes; nothing is consumed and no event is reported after
 * ERROR; the counters add up (data_bytes <= bytes fed, pdus = DONE events).
 *
 * Seeds: built with -DFUZZ_NVME_TCP_RX_SEEDS this file is a program that writes the seed
 * corpus (valid conversations of both roles with and without digests, and malformed ones)
 * into the directory given: what tests/fuzz/corpus/nvme_tcp_rx/ was generated from.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ferry/crc.h>
#include <ferry/module/nvme_tcp.h>

#define FUZZ_NAME "fuzz_nvme_tcp_rx"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HDR 7u

static uint32_t rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

struct fz {
	struct ferry_nvme_tcp_rx rx;
	struct ferry_nvme_tcp_params p;
	uint8_t cfg;
	uint32_t seed;
	uint8_t *dest;
	struct iovec iov[2];
	unsigned data_pdus;
	int errored;
	uint64_t dones, fed;
};

static uint32_t limit_of(const struct fz *f, uint8_t type)
{
	switch (type) {
	case FERRY_NVME_TCP_CAPSULE_CMD:
		return f->p.max_icd;
	case FERRY_NVME_TCP_H2C_DATA:
		return f->p.maxh2cdata;
	case FERRY_NVME_TCP_C2H_DATA:
		return f->p.max_c2hdata;
	default:
		return 0;
	}
}

static void on_event(struct fz *f, const struct ferry_nvme_tcp_rx_event *ev)
{
	if (ev->type == FERRY_NVME_TCP_RX_NONE)
		return;
	CHECK(!f->errored);
	if (ev->type == FERRY_NVME_TCP_RX_ERROR) {
		size_t l = 0;
		CHECK(ferry_nvme_tcp_rx_err_hdr(&f->rx, &l) != NULL);
		CHECK(l <= FERRY_NVME_TCP_HLEN_MAX);
		CHECK(ev->fes >= 1 && ev->fes <= 6);
		f->errored = 1;
		return;
	}
	CHECK(ev->hdr != NULL);
	uint8_t type = ev->hdr->pdu_type;
	if (ev->type == FERRY_NVME_TCP_RX_HEADER) {
		CHECK(ev->data_len > 0);
		CHECK(ev->data_len <= limit_of(f, type));
		f->data_pdus++;
		free(f->dest);
		f->dest = NULL;
		if ((f->cfg & 0x20) && (f->data_pdus & 1)) {
			CHECK(ferry_nvme_tcp_rx_set_dest(&f->rx, NULL, 0) == 0);
			return;
		}
		f->dest = malloc(ev->data_len);
		CHECK(f->dest);
		uint32_t a = rnd(&f->seed) % ev->data_len;
		f->iov[0] = (struct iovec){f->dest, a};
		f->iov[1] = (struct iovec){f->dest + a, ev->data_len - a};
		CHECK(ferry_nvme_tcp_rx_set_dest(&f->rx, f->iov, 2) == 0);
		CHECK(ferry_nvme_tcp_rx_set_dest(&f->rx, f->iov, 2) != 0);
		return;
	}
	CHECK(ev->type == FERRY_NVME_TCP_RX_DONE);
	f->dones++;
	CHECK(f->rx.stats.pdus == f->dones);
	if (type == FERRY_NVME_TCP_H2C_TERM || type == FERRY_NVME_TCP_C2H_TERM) {
		CHECK(ev->data_len <= FERRY_NVME_TCP_TERM_MAX_DATA);
		CHECK(ev->data_len == 0 || ev->term_data != NULL);
	} else if (ev->data_len) {
		CHECK(ev->data_len <= limit_of(f, type));
	}
	if (type == FERRY_NVME_TCP_ICREQ || type == FERRY_NVME_TCP_ICRESP)
		CHECK(ferry_nvme_tcp_rx_set_params(&f->rx, &f->p) == 0);
	free(f->dest);
	f->dest = NULL;
}

static void after_error(struct fz *f, const uint8_t *s, size_t n)
{
	struct ferry_nvme_tcp_rx_event ev;
	struct iovec iov[4];
	size_t c = 1;
	CHECK(ferry_nvme_tcp_rx_feed(&f->rx, s, n, &c, &ev) == 0);
	CHECK(c == 0);
	CHECK(ev.type == FERRY_NVME_TCP_RX_NONE);
	CHECK(ferry_nvme_tcp_rx_next(&f->rx, iov, 4) == 0);
}

static void run_feed(struct fz *f, const uint8_t *s, size_t n)
{
	size_t pos = 0;
	while (pos < n && !f->errored) {
		size_t chunk = 1 + rnd(&f->seed) % 700, c = 0;
		struct ferry_nvme_tcp_rx_event ev;
		if (chunk > n - pos)
			chunk = n - pos;
		CHECK(ferry_nvme_tcp_rx_feed(&f->rx, s + pos, chunk, &c, &ev) == 0);
		CHECK(c <= chunk);
		/* no progress without an event means the machine is stuck */
		CHECK(c > 0 || ev.type != FERRY_NVME_TCP_RX_NONE);
		pos += c;
		f->fed += c;
		on_event(f, &ev);
	}
	if (f->errored)
		after_error(f, s + pos, n - pos);
}

static void run_zc(struct fz *f, const uint8_t *s, size_t n)
{
	size_t pos = 0;
	struct iovec iov[6];
	while (pos < n && !f->errored) {
		struct ferry_nvme_tcp_rx_event ev;
		uint32_t max = 1 + rnd(&f->seed) % 6;
		uint32_t k = ferry_nvme_tcp_rx_next(&f->rx, iov, max);
		CHECK(k >= 1 && k <= max);
		size_t offered = 0;
		for (uint32_t i = 0; i < k; i++)
			offered += iov[i].iov_len;
		CHECK(offered > 0);
		size_t want = offered < n - pos ? offered : n - pos;
		size_t amt = 1 + rnd(&f->seed) % want, left = amt;
		for (uint32_t i = 0; i < k && left; i++) {
			size_t c = iov[i].iov_len < left ? iov[i].iov_len : left;
			memcpy(iov[i].iov_base, s + pos, c);
			pos += c;
			left -= c;
		}
		uint32_t fl = 0;
		if (f->cfg & 0x40)
			fl = rnd(&f->seed) &
			     (FERRY_NVME_TCP_RX_F_PLACED | FERRY_NVME_TCP_RX_F_CRC_OK);
		CHECK(ferry_nvme_tcp_rx_advance(&f->rx, offered + 1, fl, &ev) != 0);
		CHECK(ferry_nvme_tcp_rx_advance(&f->rx, amt, fl, &ev) == 0);
		f->fed += amt;
		on_event(f, &ev);
	}
	if (f->errored)
		after_error(f, s + pos, n - pos);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz *f;
	if (size < HDR)
		return 0;
	f = calloc(1, sizeof(*f));
	CHECK(f);
	f->cfg = data[0];
	f->p.role = (f->cfg & 1) ? FERRY_NVME_TCP_ROLE_HOST : FERRY_NVME_TCP_ROLE_CONTROLLER;
	f->p.hdgst = !!(f->cfg & 2);
	f->p.ddgst = !!(f->cfg & 4);
	if (f->p.role == FERRY_NVME_TCP_ROLE_CONTROLLER)
		f->p.cpda = data[1] & 31;
	else
		f->p.hpda = data[1] & 31;
	f->p.max_icd = (uint32_t)(data[2] & 15) * 1024;
	f->p.maxh2cdata = 4096u << (data[2] >> 6);
	f->p.max_c2hdata = f->p.maxh2cdata;
	memcpy(&f->seed, data + 3, 4);
	f->seed |= 1;
	CHECK(ferry_nvme_tcp_rx_init(&f->rx, &f->p) == 0);

	const uint8_t *s = data + HDR;
	size_t n = size - HDR;
	if (f->cfg & 0x10) {
		uint8_t ic[128];
		uint8_t dg = (uint8_t)((f->p.hdgst ? 1 : 0) | (f->p.ddgst ? 2 : 0));
		if (f->p.role == FERRY_NVME_TCP_ROLE_CONTROLLER)
			ferry_nvme_tcp_build_icreq(ic, f->p.hpda, dg, 0);
		else
			ferry_nvme_tcp_build_icresp(ic, f->p.cpda, dg, f->p.maxh2cdata);
		if (f->cfg & 8)
			run_zc(f, ic, sizeof(ic));
		else
			run_feed(f, ic, sizeof(ic));
		CHECK(f->dones == 1 && !f->errored);
	}
	if (f->cfg & 8)
		run_zc(f, s, n);
	else
		run_feed(f, s, n);
	CHECK(f->rx.stats.data_bytes <= f->fed);
	CHECK(f->rx.stats.copied_bytes <= f->fed);
	CHECK(f->rx.stats.crc_bytes <= 2 * f->fed); /* a mixed PDU is computed twice at most */
	CHECK(f->rx.stats.ddgst_errors <= f->rx.stats.pdus);
	if (getenv("FUZZ_NVME_TCP_RX_VERBOSE"))
		fprintf(stderr, "cfg %#x: %llu PDUs, %llu data bytes, %s\n", f->cfg,
			(unsigned long long)f->dones, (unsigned long long)f->rx.stats.data_bytes,
			f->errored ? "error" : "no error");
	free(f->dest);
	free(f);
	return 0;
}

#ifdef FUZZ_NVME_TCP_RX_SEEDS
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

static void data(struct seed *s, size_t n, int dd)
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
}

static void write_seed(const char *dir, const char *name, const struct seed *s)
{
	fuzz_write_seed(dir, name, s->b, s->n);
}

/* cfg: role | dgst bits | mode; the stream after the 7 configuration bytes. */
static void begin(struct seed *s, uint8_t cfg, uint8_t pda, uint8_t lim)
{
	memset(s, 0, sizeof(*s));
	uint8_t h[HDR] = {cfg, pda, lim, 0x13, 0x57, 0x9b, 0xdf};
	put(s, h, HDR);
}

static void host_stream(struct seed *s, const struct ferry_nvme_tcp_params *p, int own_ic)
{
	struct ferry_nvme_sqe sqe;
	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = 1;
	sqe.cid = 4;
	if (own_ic)
		s->n += ferry_nvme_tcp_build_icreq(s->b + s->n, 0,
						   (uint8_t)(p->hdgst | (p->ddgst << 1)), 0);
	s->n += ferry_nvme_tcp_build_cmd(s->b + s->n, p, &sqe, 0);
	s->n += ferry_nvme_tcp_build_cmd(s->b + s->n, p, &sqe, 512);
	data(s, 512, p->ddgst);
	s->n += ferry_nvme_tcp_build_data(s->b + s->n, p, FERRY_NVME_TCP_H2C_DATA, 4, 1, 0, 3000,
					  FERRY_NVME_TCP_F_LAST_PDU);
	data(s, 3000, p->ddgst);
	s->n += ferry_nvme_tcp_build_term(s->b + s->n, FERRY_NVME_TCP_H2C_TERM, 1, 4, s->b + HDR,
					  24);
}

static void ctrl_stream(struct seed *s, const struct ferry_nvme_tcp_params *p, int own_ic)
{
	struct ferry_nvme_cqe cqe;
	memset(&cqe, 0, sizeof(cqe));
	cqe.cid = 4;
	if (own_ic)
		s->n += ferry_nvme_tcp_build_icresp(s->b + s->n, 0,
						    (uint8_t)(p->hdgst | (p->ddgst << 1)), 4096);
	s->n += ferry_nvme_tcp_build_resp(s->b + s->n, p, &cqe);
	s->n += ferry_nvme_tcp_build_r2t(s->b + s->n, p, 4, 9, 0, 4096);
	s->n += ferry_nvme_tcp_build_data(s->b + s->n, p, FERRY_NVME_TCP_C2H_DATA, 4, 0, 0, 2000,
					  0);
	data(s, 2000, p->ddgst);
	s->n += ferry_nvme_tcp_build_data(s->b + s->n, p, FERRY_NVME_TCP_C2H_DATA, 4, 0, 2000, 96,
					  FERRY_NVME_TCP_F_LAST_PDU | FERRY_NVME_TCP_F_SUCCESS);
	data(s, 96, p->ddgst);
	s->n += ferry_nvme_tcp_build_term(s->b + s->n, FERRY_NVME_TCP_C2H_TERM, 2, 0, NULL, 0);
}

int main(int argc, char **argv)
{
	static struct seed s;
	char name[64];
	if (argc != 2) {
		fprintf(stderr, "usage: %s <dir>\n", argv[0]);
		return 2;
	}
	const char *dir = argv[1];
	for (int role = 0; role < 2; role++)
		for (int dg = 0; dg < 4; dg++)
			for (int own_ic = 0; own_ic < 2; own_ic++) {
				struct ferry_nvme_tcp_params p = {0};
				p.role = role ? FERRY_NVME_TCP_ROLE_HOST
					      : FERRY_NVME_TCP_ROLE_CONTROLLER;
				p.hdgst = dg & 1;
				p.ddgst = (dg >> 1) & 1;
				uint8_t pda = (uint8_t)(dg == 3 ? 7 : 0);
				if (role)
					p.hpda = pda;
				else
					p.cpda = pda;
				p.max_icd = 1024;
				p.maxh2cdata = 4096;
				p.max_c2hdata = 4096;
				/* lim: max_icd 1 KiB, 4096 payloads; own IC: the input has it */
				uint8_t cfg = (uint8_t)(role | (p.hdgst << 1) | (p.ddgst << 2) |
							(own_ic ? 0 : 0x10) | (dg & 1 ? 8 : 0));
				begin(&s, cfg, pda, 0x01);
				if (role)
					ctrl_stream(&s, &p, own_ic);
				else
					host_stream(&s, &p, own_ic);
				snprintf(name, sizeof(name), "to_%s_%s%s%s", role ? "host" : "ctrl",
					 dg ? (p.hdgst ? "hd" : "") : "plain", p.ddgst ? "dd" : "",
					 own_ic ? "_ic" : "");
				write_seed(dir, name, &s);
			}
	/* malformed: bad header digest, bad PDO, oversized ICD, TermReq too long */
	struct ferry_nvme_tcp_params p = {.role = FERRY_NVME_TCP_ROLE_CONTROLLER,
					  .hdgst = 1,
					  .ddgst = 1,
					  .max_icd = 1024,
					  .maxh2cdata = 4096};
	begin(&s, 0x16 | 0x20, 0, 0x01);
	host_stream(&s, &p, 0);
	s.b[HDR + 40] ^= 1;
	write_seed(dir, "bad_hdgst", &s);
	begin(&s, 0x16, 0, 0x01);
	host_stream(&s, &p, 0);
	s.b[HDR + 76 + 3] = 80; /* the second CapsuleCmd's PDO */
	write_seed(dir, "bad_pdo", &s);
	begin(&s, 0x16 | 0x48, 0, 0x00); /* max_icd 0 */
	host_stream(&s, &p, 0);
	write_seed(dir, "icd_over_limit", &s);
	begin(&s, 0x11, 0, 0x01);
	s.n += ferry_nvme_tcp_build_term(s.b + s.n, FERRY_NVME_TCP_C2H_TERM, 1, 0, NULL, 0);
	s.b[HDR + 4] = 200;
	write_seed(dir, "term_too_long", &s);
	begin(&s, 0x00, 0, 0x01); /* a CapsuleCmd before the ICReq */
	s.n += ferry_nvme_tcp_build_cmd(s.b + s.n, &p, &(struct ferry_nvme_sqe){0}, 0);
	write_seed(dir, "no_icreq", &s);
	return 0;
}
#endif
