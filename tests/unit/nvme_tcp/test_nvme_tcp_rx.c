/*
 * The NVMe/TCP receive machine on whole conversations (every PDU type of each direction,
 * data in three-segment destinations and discarded, digests, padding): a stream cut at every
 * single byte position, cut in random chunks, and received zero copy (rx_next + memcpy +
 * rx_advance with random partial amounts and iovec limits) gives the same events, the same
 * bytes in the destinations and the same counters as the stream fed whole. Data digest
 * errors are not fatal; the counters are exact; receive offload flags (PLACED, CRC_OK and a
 * mix of CRC_OK and software spans) give the same digest verdict.
 */
#include "nvme_tcp_util.h"

struct combo {
	int hd, dd;
	uint8_t hpda, cpda;
};

static const struct combo combos[] = {
	{0, 0, 0, 0}, {1, 0, 0, 0},   {0, 1, 0, 0}, {1, 1, 0, 0},
	{1, 1, 3, 7}, {0, 1, 31, 31}, {1, 0, 7, 0}, {0, 0, 0, 31},
};
#define NCOMBO (sizeof(combos) / sizeof(combos[0]))

static struct ferry_nvme_tcp_params cparams(const struct combo *c, enum ferry_nvme_tcp_role r)
{
	struct ferry_nvme_tcp_params p = {.role = r,
					  .hdgst = (uint8_t)c->hd,
					  .ddgst = (uint8_t)c->dd,
					  .hpda = c->hpda,
					  .cpda = c->cpda,
					  .maxh2cdata = 8192,
					  .max_icd = 4096};
	return p;
}

/* The stream of @p role's peer for combo @p c. */
static void mk_stream(struct t_stream *s, const struct combo *c, enum ferry_nvme_tcp_role role,
		      uint32_t len)
{
	struct ferry_nvme_tcp_params p = cparams(c, role);
	if (role == FERRY_NVME_TCP_ROLE_CONTROLLER)
		ts_host_stream(s, &p, len / 2 + 1, len, 1);
	else
		ts_ctrl_stream(s, &p, len, 1);
}

static struct t_run *run_new(const struct combo *c, enum ferry_nvme_tcp_role role,
			     unsigned discard_every, uint64_t seed)
{
	struct t_run *r = calloc(1, sizeof(*r));
	struct ferry_nvme_tcp_params p = cparams(c, role);
	cr_assert_not_null(r);
	tr_init(r, role, &p, seed);
	r->discard_every = discard_every;
	return r;
}

static void check_reference(const struct t_run *r, const struct t_stream *s,
			    enum ferry_nvme_tcp_role role, uint32_t len, int dd)
{
	cr_assert_eq(r->consumed, s->n);
	cr_assert_eq(r->rx.stats.pdus, s->pdus);
	cr_assert_eq(r->rx.stats.ddgst_errors, 0);
	cr_assert_eq(r->rx.stats.hdgst_errors, 0);
	for (unsigned i = 0; i < r->nev; i++)
		cr_assert_neq(r->ev[i].type, FERRY_NVME_TCP_RX_ERROR);
	/* the data the destinations got: patterns, then the TermReq data */
	uint8_t want[T_STREAM_MAX];
	size_t w = 0;
	if (role == FERRY_NVME_TCP_ROLE_CONTROLLER) {
		uint32_t icd = len / 2 + 1;
		t_pattern(want + w, icd, 1);
		w += icd;
		t_pattern(want + w, len, 2);
		w += len;
		t_pattern(want + w, 5, 3);
		w += 5;
		t_pattern(want + w, 40, 9);
		w += 40;
		cr_assert_eq(r->rx.stats.data_bytes, icd + len + 5);
	} else {
		t_pattern(want + w, len, 4);
		w += len;
		t_pattern(want + w, 3, 5);
		w += 3;
		t_pattern(want + w, 128, 8);
		w += 128;
		cr_assert_eq(r->rx.stats.data_bytes, len + 3);
	}
	/* copy path, no offload flags: software computes every data digest */
	cr_assert_eq(r->rx.stats.crc_bytes, dd ? r->rx.stats.data_bytes : 0);
	cr_assert_eq(r->rx.stats.placed_bytes, 0);
	if (r->discard_every == 0) {
		cr_assert_eq(r->data_n, w);
		cr_assert_eq(memcmp(r->data, want, w), 0);
		cr_assert_eq(r->rx.stats.copied_bytes, r->rx.stats.data_bytes);
	}
}

static const enum ferry_nvme_tcp_role roles[2] = {FERRY_NVME_TCP_ROLE_CONTROLLER,
						  FERRY_NVME_TCP_ROLE_HOST};

Test(nvme_tcp_rx, whole_stream_reference)
{
	struct t_stream *s = malloc(sizeof(*s));
	for (unsigned c = 0; c < NCOMBO; c++)
		for (int ro = 0; ro < 2; ro++)
			for (unsigned disc = 0; disc < 3; disc += 2) {
				mk_stream(s, &combos[c], roles[ro], 3000);
				struct t_run *r = run_new(&combos[c], roles[ro], disc, 1);
				tr_feed_all(r, s->b, s->n);
				check_reference(r, s, roles[ro], 3000, combos[c].dd);
				/* HEADER before DONE for each data PDU, DONE only otherwise */
				unsigned headers = 0;
				for (unsigned i = 0; i < r->nev; i++)
					if (r->ev[i].type == FERRY_NVME_TCP_RX_HEADER) {
						headers++;
						cr_assert_eq(r->ev[i + 1].type,
							     FERRY_NVME_TCP_RX_DONE);
						cr_assert_eq(r->ev[i + 1].pdu_type,
							     r->ev[i].pdu_type);
					}
				/* host -> controller: CapsuleCmd with data, 2 H2CData;
				 * controller -> host: 2 C2HData */
				unsigned want = ro == 0 ? 3 : 2;
				cr_assert_eq(headers, want);
				cr_assert_eq(r->nev, s->pdus + want);
				free(r);
			}
	free(s);
}

/* Every single cut point: the stream in two pieces. */
Test(nvme_tcp_rx, every_single_split)
{
	struct t_stream *s = malloc(sizeof(*s));
	for (unsigned c = 0; c < NCOMBO; c++)
		for (int ro = 0; ro < 2; ro++) {
			mk_stream(s, &combos[c], roles[ro], 300);
			struct t_run *ref = run_new(&combos[c], roles[ro], 3, 1);
			tr_feed_all(ref, s->b, s->n);
			check_reference(ref, s, roles[ro], 300, combos[c].dd);
			struct t_run *r = malloc(sizeof(*r));
			for (size_t cut = 1; cut < s->n; cut++) {
				struct ferry_nvme_tcp_params p = cparams(&combos[c], roles[ro]);
				tr_init(r, roles[ro], &p, 1);
				r->discard_every = 3;
				tr_feed_cuts(r, s->b, s->n, &cut, 1);
				tr_same(ref, r, 1);
			}
			free(r);
			free(ref);
		}
	free(s);
}

Test(nvme_tcp_rx, random_chunks)
{
	struct t_stream *s = malloc(sizeof(*s));
	for (unsigned c = 0; c < NCOMBO; c++)
		for (int ro = 0; ro < 2; ro++) {
			mk_stream(s, &combos[c], roles[ro], 5000);
			struct t_run *ref = run_new(&combos[c], roles[ro], 2, 1);
			tr_feed_all(ref, s->b, s->n);
			check_reference(ref, s, roles[ro], 5000, combos[c].dd);
			for (uint64_t seed = 1; seed < 40; seed++) {
				struct t_run *r = run_new(&combos[c], roles[ro], 2, seed * 7919);
				uint32_t maxc = seed < 10 ? (uint32_t)seed : (uint32_t)seed * 97;
				tr_feed_random(r, s->b, s->n, maxc);
				tr_same(ref, r, 1);
				free(r);
			}
			free(ref);
		}
	free(s);
}

/* Zero copy: same events, bytes and counters; nothing is copied by the machine. */
Test(nvme_tcp_rx, zero_copy_random_partial)
{
	struct t_stream *s = malloc(sizeof(*s));
	for (unsigned c = 0; c < NCOMBO; c++)
		for (int ro = 0; ro < 2; ro++) {
			mk_stream(s, &combos[c], roles[ro], 2500);
			struct t_run *ref = run_new(&combos[c], roles[ro], 3, 1);
			tr_feed_all(ref, s->b, s->n);
			for (uint64_t seed = 1; seed < 30; seed++) {
				struct t_run *r = run_new(&combos[c], roles[ro], 3, seed * 104729);
				tr_zc(r, s->b, s->n, 0, 1 + (uint32_t)(seed % 6));
				tr_same(ref, r, 0);
				cr_assert_eq(r->rx.stats.copied_bytes, 0);
				free(r);
			}
			free(ref);
		}
	free(s);
}

/* rx_next offers padding, data and digest together, and the whole header part at once. */
Test(nvme_tcp_rx, next_offers_up_to_the_event)
{
	struct combo c = {1, 1, 0, 7};
	struct ferry_nvme_tcp_params p = cparams(&c, FERRY_NVME_TCP_ROLE_CONTROLLER);
	struct t_run *r = run_new(&c, FERRY_NVME_TCP_ROLE_CONTROLLER, 0, 1);
	uint8_t pdu[FERRY_NVME_TCP_TX_HDR_MAX + 128];
	struct ferry_nvme_tcp_rx_event ev;
	struct iovec iov[8];
	size_t h, n;

	ferry_nvme_tcp_build_icreq(pdu, 0, 3, 0);
	cr_assert_eq(ferry_nvme_tcp_rx_next(&r->rx, iov, 8), 1);
	cr_assert_eq(iov[0].iov_len, 8, "the common header first");
	memcpy(iov[0].iov_base, pdu, 8);
	cr_assert_eq(ferry_nvme_tcp_rx_advance(&r->rx, 8, 0, &ev), 0);
	cr_assert_eq(ev.type, FERRY_NVME_TCP_RX_NONE);
	cr_assert_eq(ferry_nvme_tcp_rx_next(&r->rx, iov, 8), 1);
	cr_assert_eq(iov[0].iov_len, 120);
	memcpy(iov[0].iov_base, pdu + 8, 120);
	cr_assert_eq(ferry_nvme_tcp_rx_advance(&r->rx, 121, 0, &ev), -EINVAL, "more than offered");
	cr_assert_eq(ferry_nvme_tcp_rx_advance(&r->rx, 120, 0, &ev), 0);
	cr_assert_eq(ev.type, FERRY_NVME_TCP_RX_DONE);
	cr_assert_eq(ferry_nvme_tcp_rx_set_params(&r->rx, &p), 0);

	h = ferry_nvme_tcp_build_data(pdu, &p, FERRY_NVME_TCP_H2C_DATA, 1, 2, 0, 100, 0);
	cr_assert_eq(h, 32, "24 + 4 digest, padded to 32");
	t_pattern(pdu + h, 100, 6);
	uint32_t crc = ferry_crc32c(0, pdu + h, 100);
	memcpy(pdu + h + 100, &crc, 4);
	n = h + 104;
	size_t pos = 0;
	cr_assert_eq(ferry_nvme_tcp_rx_feed(&r->rx, pdu, 28, &pos, &ev), 0);
	cr_assert_eq(pos, 28);
	cr_assert_eq(ev.type, FERRY_NVME_TCP_RX_HEADER);
	cr_assert_eq(ferry_nvme_tcp_rx_next(&r->rx, iov, 8), 0, "waits for a destination");
	uint8_t d1[40], d2[60];
	struct iovec dest[2] = {{d1, 40}, {d2, 60}};
	cr_assert_eq(ferry_nvme_tcp_rx_set_dest(&r->rx, dest, 2), 0);
	cr_assert_eq(ferry_nvme_tcp_rx_set_dest(&r->rx, dest, 2), -EINVAL, "only once");
	cr_assert_eq(ferry_nvme_tcp_rx_next(&r->rx, iov, 8), 4);
	cr_assert_eq(iov[0].iov_len, 4, "padding");
	cr_assert_eq(iov[1].iov_base, d1);
	cr_assert_eq(iov[1].iov_len, 40);
	cr_assert_eq(iov[2].iov_base, d2);
	cr_assert_eq(iov[2].iov_len, 60);
	cr_assert_eq(iov[3].iov_len, 4, "data digest");
	/* fewer iovecs allowed: only the padding and the first segment */
	cr_assert_eq(ferry_nvme_tcp_rx_next(&r->rx, iov, 2), 2);
	memcpy(iov[0].iov_base, pdu + 28, 4);
	memcpy(iov[1].iov_base, pdu + 32, 40);
	cr_assert_eq(ferry_nvme_tcp_rx_advance(&r->rx, 44, FERRY_NVME_TCP_RX_F_PLACED, &ev), 0);
	cr_assert_eq(ev.type, FERRY_NVME_TCP_RX_NONE);
	cr_assert_eq(ferry_nvme_tcp_rx_next(&r->rx, iov, 8), 2);
	cr_assert_eq(iov[0].iov_base, d2);
	memcpy(iov[0].iov_base, pdu + 72, 60);
	memcpy(iov[1].iov_base, pdu + 132, 4);
	cr_assert_eq(ferry_nvme_tcp_rx_advance(&r->rx, 64, FERRY_NVME_TCP_RX_F_PLACED, &ev), 0);
	cr_assert_eq(ev.type, FERRY_NVME_TCP_RX_DONE);
	cr_assert_eq(ev.all_placed, 1);
	cr_assert_eq(ev.all_crc_ok, 0);
	cr_assert_eq(ev.ddgst_error, 0);
	cr_assert_eq(r->rx.stats.placed_bytes, 100);
	cr_assert_eq(r->rx.stats.crc_bytes, 100);
	cr_assert_eq(r->rx.stats.copied_bytes, 0);
	cr_assert_eq(memcmp(d1, pdu + 32, 40), 0);
	cr_assert_eq(memcmp(d2, pdu + 72, 60), 0);
	cr_assert_eq(n, 136);
	free(r);
}

/* One H2CData of @p n bytes with a correct (or corrupted) data digest, received zero copy
 * with per-span flags chosen by @p flag_of(span index); returns the DONE event. */
static struct ferry_nvme_tcp_rx_event offload_run(uint32_t (*flag_of)(unsigned), int corrupt,
						  struct ferry_nvme_tcp_rx_stats *st)
{
	struct combo c = {0, 1, 0, 0};
	struct ferry_nvme_tcp_params p = cparams(&c, FERRY_NVME_TCP_ROLE_CONTROLLER);
	struct t_run *r = run_new(&c, FERRY_NVME_TCP_ROLE_CONTROLLER, 0, 1);
	struct t_stream *s = calloc(1, sizeof(*s));
	struct ferry_nvme_tcp_rx_event ev = {0};
	struct iovec iov[4];
	uint8_t *dest = malloc(4000);

	s->n = ferry_nvme_tcp_build_icreq(s->b, 0, 2, 0);
	size_t h = ferry_nvme_tcp_build_data(s->b + s->n, &p, FERRY_NVME_TCP_H2C_DATA, 1, 1, 0,
					     4000, FERRY_NVME_TCP_F_LAST_PDU);
	s->n += h;
	ts_data(s, 4000, 11, 1);
	if (corrupt)
		s->b[s->n - 4 - 1000] ^= 0x20;
	size_t pos = 0, c0;
	while (pos < 128 + h) {
		cr_assert_eq(ferry_nvme_tcp_rx_feed(&r->rx, s->b + pos, 128 + h - pos, &c0, &ev),
			     0);
		pos += c0;
		if (ev.type == FERRY_NVME_TCP_RX_DONE)
			cr_assert_eq(ferry_nvme_tcp_rx_set_params(&r->rx, &p), 0);
	}
	cr_assert_eq(ev.type, FERRY_NVME_TCP_RX_HEADER);
	struct iovec d = {dest, 4000};
	cr_assert_eq(ferry_nvme_tcp_rx_set_dest(&r->rx, &d, 1), 0);
	/* spans of 1000 bytes, then the digest */
	for (unsigned span = 0; span < 5; span++) {
		uint32_t k = ferry_nvme_tcp_rx_next(&r->rx, iov, 1);
		cr_assert_eq(k, 1);
		size_t amt = iov[0].iov_len < 1000 ? iov[0].iov_len : 1000;
		memcpy(iov[0].iov_base, s->b + pos, amt);
		pos += amt;
		cr_assert_eq(ferry_nvme_tcp_rx_advance(&r->rx, amt, flag_of(span),
						       &ev),
			     0);
	}
	cr_assert_eq(ev.type, FERRY_NVME_TCP_RX_DONE);
	cr_assert_eq(pos, s->n);
	t_pattern(s->b, 4000, 11);
	if (corrupt)
		s->b[3000] ^= 0x20;
	cr_assert_eq(memcmp(dest, s->b, 4000), 0, "the data is in the destination in any case");
	*st = r->rx.stats;
	free(dest);
	free(s);
	free(r);
	return ev;
}

static uint32_t fl_none(unsigned i)
{
	(void)i;
	return 0;
}
static uint32_t fl_all_ok(unsigned i)
{
	(void)i;
	return FERRY_NVME_TCP_RX_F_CRC_OK | FERRY_NVME_TCP_RX_F_PLACED;
}
static uint32_t fl_ok_first(unsigned i)
{
	return i < 2 ? FERRY_NVME_TCP_RX_F_CRC_OK : 0;
}
static uint32_t fl_sw_first(unsigned i)
{
	return i == 0 ? 0 : FERRY_NVME_TCP_RX_F_CRC_OK;
}
/* every data span verified, but the digest span without the NIC's verdict (a mismatch) */
static uint32_t fl_digest_bad(unsigned i)
{
	return i < 4 ? FERRY_NVME_TCP_RX_F_CRC_OK | FERRY_NVME_TCP_RX_F_PLACED : 0;
}

Test(nvme_tcp_rx, ddgst_offload_flags)
{
	struct ferry_nvme_tcp_rx_stats st;
	struct ferry_nvme_tcp_rx_event ev;
	for (int corrupt = 0; corrupt < 2; corrupt++) {
		ev = offload_run(fl_none, corrupt, &st);
		cr_assert_eq(ev.ddgst_error, corrupt);
		cr_assert_eq(ev.all_crc_ok, 0);
		cr_assert_eq(ev.all_placed, 0);
		cr_assert_eq(st.crc_bytes, 4000);
		cr_assert_eq(st.ddgst_errors, (uint64_t)corrupt);
		cr_assert_eq(st.pdus, 2, "not fatal: the PDU completes");

		/* the NIC verified everything: software computes nothing, trusts the NIC */
		ev = offload_run(fl_all_ok, corrupt, &st);
		cr_assert_eq(ev.ddgst_error, 0);
		cr_assert_eq(ev.all_crc_ok, 1);
		cr_assert_eq(ev.all_placed, 1);
		cr_assert_eq(st.crc_bytes, 0);
		cr_assert_eq(st.placed_bytes, 4000);

		/* mixed: the whole PDU recomputed from the destination at the end */
		ev = offload_run(fl_ok_first, corrupt, &st);
		cr_assert_eq(ev.ddgst_error, corrupt);
		cr_assert_eq(ev.all_crc_ok, 0);
		cr_assert_eq(st.crc_bytes, 4000,
			     "no running CRC after CRC_OK spans, one recompute");
		ev = offload_run(fl_sw_first, corrupt, &st);
		cr_assert_eq(ev.ddgst_error, corrupt);
		cr_assert_eq(st.crc_bytes, 1000 + 4000,
			     "the running CRC of span 0, then recompute");

		/* the NIC's verdict rides on the digest: without it, software recomputes */
		ev = offload_run(fl_digest_bad, corrupt, &st);
		cr_assert_eq(ev.ddgst_error, corrupt);
		cr_assert_eq(ev.all_crc_ok, 0);
		cr_assert_eq(ev.all_placed, 1);
		cr_assert_eq(st.crc_bytes, 4000);
	}
}

/* A data digest error is reported on the PDU and the stream goes on; with the copy path and
 * a discarded PDU too. */
Test(nvme_tcp_rx, ddgst_error_not_fatal)
{
	struct t_stream *s = malloc(sizeof(*s));
	struct combo c = {1, 1, 0, 0};
	for (unsigned disc = 0; disc < 2; disc++) {
		mk_stream(s, &c, FERRY_NVME_TCP_ROLE_HOST, 1000);
		/* the first C2HData: ICResp 128, CapsuleResp 28, R2T 28, C2HData header 28 */
		size_t data0 = 128 + 28 + 28 + 28;
		s->b[data0 + 500] ^= 1;
		struct t_run *r = run_new(&c, FERRY_NVME_TCP_ROLE_HOST, disc, 1);
		tr_feed_all(r, s->b, s->n);
		cr_assert_eq(r->consumed, s->n);
		cr_assert_eq(r->rx.stats.ddgst_errors, 1);
		cr_assert_eq(r->rx.stats.pdus, s->pdus);
		unsigned errs = 0;
		for (unsigned i = 0; i < r->nev; i++) {
			errs += r->ev[i].ddgst_error;
			cr_assert_neq(r->ev[i].type, FERRY_NVME_TCP_RX_ERROR);
			if (r->ev[i].ddgst_error)
				cr_assert_eq(r->ev[i].pdu_type, FERRY_NVME_TCP_C2H_DATA);
		}
		cr_assert_eq(errs, 1);
		free(r);
	}
	free(s);
}

Test(nvme_tcp_rx, api_arguments)
{
	struct ferry_nvme_tcp_params p = {.role = 3};
	struct ferry_nvme_tcp_rx rx;
	struct ferry_nvme_tcp_rx_event ev;
	size_t c;
	struct iovec iov[2];
	cr_assert_eq(ferry_nvme_tcp_rx_init(&rx, &p), -EINVAL);
	cr_assert_eq(ferry_nvme_tcp_rx_init(NULL, &p), -EINVAL);
	p.role = FERRY_NVME_TCP_ROLE_HOST;
	cr_assert_eq(ferry_nvme_tcp_rx_init(&rx, NULL), -EINVAL);
	cr_assert_eq(ferry_nvme_tcp_rx_init(&rx, &p), 0);
	p.role = FERRY_NVME_TCP_ROLE_CONTROLLER;
	cr_assert_eq(ferry_nvme_tcp_rx_set_params(&rx, &p), -EINVAL, "role change");
	p.role = FERRY_NVME_TCP_ROLE_HOST;
	p.hpda = 32;
	cr_assert_eq(ferry_nvme_tcp_rx_set_params(&rx, &p), -EINVAL);
	cr_assert_eq(ferry_nvme_tcp_rx_feed(&rx, NULL, 4, &c, &ev), -EINVAL);
	cr_assert_eq(ferry_nvme_tcp_rx_feed(&rx, NULL, 0, &c, &ev), 0);
	cr_assert_eq(c, 0);
	cr_assert_eq(ferry_nvme_tcp_rx_advance(&rx, 1, 0, &ev), -EINVAL, "nothing offered yet");
	cr_assert_eq(ferry_nvme_tcp_rx_next(&rx, iov, 0), 0);
	cr_assert_eq(ferry_nvme_tcp_rx_set_dest(&rx, NULL, 0), -EINVAL, "no HEADER event");
	size_t l = 99;
	cr_assert_not_null(ferry_nvme_tcp_rx_err_hdr(&rx, &l));
	cr_assert_eq(l, 0);
	cr_assert_null(ferry_nvme_tcp_rx_err_hdr(NULL, &l));
	ferry_nvme_tcp_rx_fail(NULL, 1, 1);
}

/* A destination smaller than the data, or with a NULL segment, is refused. */
Test(nvme_tcp_rx, set_dest_checks)
{
	struct combo c = {0, 0, 0, 0};
	struct ferry_nvme_tcp_params p = cparams(&c, FERRY_NVME_TCP_ROLE_HOST);
	struct t_run *r = run_new(&c, FERRY_NVME_TCP_ROLE_HOST, 0, 1);
	uint8_t b[256], d[64];
	struct ferry_nvme_tcp_rx_event ev;
	size_t n = ferry_nvme_tcp_build_icresp(b, 0, 0, 4096), k;
	cr_assert_eq(ferry_nvme_tcp_rx_feed(&r->rx, b, n, &k, &ev), 0);
	n = ferry_nvme_tcp_build_data(b, &p, FERRY_NVME_TCP_C2H_DATA, 1, 0, 0, 64, 0);
	cr_assert_eq(ferry_nvme_tcp_rx_feed(&r->rx, b, n, &k, &ev), 0);
	cr_assert_eq(ev.type, FERRY_NVME_TCP_RX_HEADER);
	struct iovec small[2] = {{d, 32}, {d + 32, 31}};
	cr_assert_eq(ferry_nvme_tcp_rx_set_dest(&r->rx, small, 2), -EINVAL);
	struct iovec nul[2] = {{d, 32}, {NULL, 32}};
	cr_assert_eq(ferry_nvme_tcp_rx_set_dest(&r->rx, nul, 2), -EINVAL);
	struct iovec ok[3] = {{d, 0}, {d, 64}, {NULL, 100}}; /* the third is never reached */
	cr_assert_eq(ferry_nvme_tcp_rx_set_dest(&r->rx, ok, 3), 0);
	free(r);
}
