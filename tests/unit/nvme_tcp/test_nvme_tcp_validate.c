/*
 * The NVMe/TCP receive machine's validation: one test per rule, each checking the exact FES
 * and FEI of the ERROR event, that the machine consumed exactly up to the field that decided
 * (the common header, or the whole header), that nothing after the error is consumed (feed
 * takes 0 bytes, rx_next offers nothing, advance refuses) and that rx_err_hdr() gives the
 * offending header for the TermReq.
 */
#include "nvme_tcp_util.h"

#define CTRL FERRY_NVME_TCP_ROLE_CONTROLLER
#define HOST FERRY_NVME_TCP_ROLE_HOST

static struct ferry_nvme_tcp_params P(enum ferry_nvme_tcp_role role, int hd, int dd) {
	struct ferry_nvme_tcp_params p = {.role = role,
					  .hdgst = (uint8_t)hd,
					  .ddgst = (uint8_t)dd,
					  .maxh2cdata = 8192,
					  .max_icd = 4096,
					  .max_c2hdata = 16384};
	return p;
}

/* A machine of @p role that has received the IC PDU and runs with @p p. */
static void
ready(struct ferry_nvme_tcp_rx *rx, const struct ferry_nvme_tcp_params *p)
{
	uint8_t ic[128];
	struct ferry_nvme_tcp_rx_event ev;
	size_t c;
	uint8_t dgst = (uint8_t)((p->hdgst ? 1 : 0) | (p->ddgst ? 2 : 0));
	cr_assert_eq(ferry_nvme_tcp_rx_init(rx, p), 0);
	if (p->role == CTRL)
		ferry_nvme_tcp_build_icreq(ic, p->hpda, dgst, 0);
	else
		ferry_nvme_tcp_build_icresp(ic, p->cpda, dgst,
					    p->maxh2cdata ? p->maxh2cdata : 4096);
	cr_assert_eq(ferry_nvme_tcp_rx_feed(rx, ic, 128, &c, &ev), 0);
	cr_assert_eq(c, 128);
	cr_assert_eq(ev.type, FERRY_NVME_TCP_RX_DONE);
	cr_assert_eq(ferry_nvme_tcp_rx_set_params(rx, p), 0);
}

/* Recompute the header digest after a field was changed (hd: digest present). */
static void refix(uint8_t *pdu, int hd)
{
	if (hd) {
		uint32_t c = ferry_crc32c(0, pdu, pdu[2]);
		memcpy(pdu + pdu[2], &c, 4);
	}
}

/* Feed @p n bytes of @p pdu followed by a valid 200-byte tail: expect ERROR after exactly
 * @p at bytes with @p fes / @p fei, and nothing more accepted. */
static void expect_error(struct ferry_nvme_tcp_rx *rx, const uint8_t *pdu, size_t n, size_t at,
			 uint16_t fes, uint32_t fei)
{
	static uint8_t buf[FERRY_NVME_TCP_TX_HDR_MAX + 32768];
	struct ferry_nvme_tcp_rx_event ev;
	struct iovec iov[4];
	size_t c = 0, total = 0;

	cr_assert_leq(n + 200, sizeof(buf));
	memcpy(buf, pdu, n);
	memset(buf + n, 0, 200);
	for (;;) { /* a data PDU may stop at HEADER first: that would be a missed check */
		cr_assert_eq(ferry_nvme_tcp_rx_feed(rx, buf + total, n + 200 - total, &c, &ev), 0);
		total += c;
		cr_assert_neq(ev.type, FERRY_NVME_TCP_RX_HEADER, "accepted a bad header");
		cr_assert_neq(ev.type, FERRY_NVME_TCP_RX_DONE, "accepted a bad PDU");
		if (ev.type == FERRY_NVME_TCP_RX_ERROR || c == 0)
			break;
	}
	cr_assert_eq(ev.type, FERRY_NVME_TCP_RX_ERROR);
	cr_assert_eq(ev.fes, fes, "fes %#x want %#x", ev.fes, fes);
	cr_assert_eq(ev.fei, fei, "fei %u want %u", ev.fei, fei);
	cr_assert_eq(total, at, "consumed %zu want %zu", total, at);
	/* nothing after the error */
	cr_assert_eq(ferry_nvme_tcp_rx_feed(rx, buf + total, n + 200 - total, &c, &ev), 0);
	cr_assert_eq(c, 0);
	cr_assert_eq(ev.type, FERRY_NVME_TCP_RX_NONE);
	cr_assert_eq(ferry_nvme_tcp_rx_next(rx, iov, 4), 0);
	cr_assert_eq(ferry_nvme_tcp_rx_advance(rx, 1, 0, &ev), -EINVAL);
	/* the offending header for the TermReq */
	size_t hl = 0;
	const uint8_t *h = ferry_nvme_tcp_rx_err_hdr(rx, &hl);
	size_t want_hl = at <= 8 ? at : pdu[2]; /* common header, or the whole header */
	cr_assert_eq(hl, want_hl, "err_hdr %zu want %zu", hl, want_hl);
	cr_assert_eq(memcmp(h, pdu, hl), 0);
	uint8_t term[FERRY_NVME_TCP_TX_HDR_MAX];
	size_t tn = ferry_nvme_tcp_build_term(term,
					      rx->p.role == CTRL ? FERRY_NVME_TCP_C2H_TERM
								 : FERRY_NVME_TCP_H2C_TERM,
					      ev.fes, ev.fei, h, hl);
	cr_assert_eq(tn, 24 + hl);
}

static struct ferry_nvme_sqe sqe0(void)
{
	struct ferry_nvme_sqe s;
	memset(&s, 0, sizeof(s));
	s.opcode = 1;
	s.cid = 3;
	return s;
}

Test(nvme_tcp_validate, type_not_receivable)
{
	struct ferry_nvme_tcp_rx rx;
	struct ferry_nvme_tcp_params pc = P(CTRL, 0, 0), ph = P(HOST, 0, 0);
	uint8_t b[FERRY_NVME_TCP_TX_HDR_MAX];
	struct ferry_nvme_cqe cqe = {0};
	struct ferry_nvme_sqe sqe = sqe0();
	size_t n;

	/* the controller is sent host-bound PDUs, and unknown types */
	const uint8_t bad_c[] = {FERRY_NVME_TCP_ICRESP,
				 FERRY_NVME_TCP_C2H_TERM,
				 FERRY_NVME_TCP_CAPSULE_RESP,
				 FERRY_NVME_TCP_C2H_DATA,
				 FERRY_NVME_TCP_R2T,
				 0x08,
				 0x0A,
				 0x7F,
				 0xFF};
	for (unsigned i = 0; i < sizeof(bad_c); i++) {
		ready(&rx, &pc);
		n = ferry_nvme_tcp_build_resp(b, &pc, &cqe);
		b[0] = bad_c[i];
		expect_error(&rx, b, n, 8, FERRY_NVME_TCP_FES_INVALID_HEADER, 0);
	}
	const uint8_t bad_h[] = {FERRY_NVME_TCP_ICREQ,
				 FERRY_NVME_TCP_H2C_TERM,
				 FERRY_NVME_TCP_CAPSULE_CMD,
				 FERRY_NVME_TCP_H2C_DATA,
				 0x08,
				 0x0B};
	for (unsigned i = 0; i < sizeof(bad_h); i++) {
		ready(&rx, &ph);
		n = ferry_nvme_tcp_build_cmd(b, &ph, &sqe, 0);
		b[0] = bad_h[i];
		expect_error(&rx, b, n, 8, FERRY_NVME_TCP_FES_INVALID_HEADER, 0);
	}
	/* before IC too: the type check comes first */
	cr_assert_eq(ferry_nvme_tcp_rx_init(&rx, &pc), 0);
	n = ferry_nvme_tcp_build_resp(b, &pc, &cqe);
	expect_error(&rx, b, n, 8, FERRY_NVME_TCP_FES_INVALID_HEADER, 0);
}

Test(nvme_tcp_validate, pdu_sequence)
{
	struct ferry_nvme_tcp_rx rx;
	struct ferry_nvme_tcp_params pc = P(CTRL, 0, 0), ph = P(HOST, 0, 0);
	uint8_t b[FERRY_NVME_TCP_TX_HDR_MAX];
	struct ferry_nvme_sqe sqe = sqe0();
	struct ferry_nvme_cqe cqe = {0};
	size_t n;

	/* anything but ICReq first */
	cr_assert_eq(ferry_nvme_tcp_rx_init(&rx, &pc), 0);
	n = ferry_nvme_tcp_build_cmd(b, &pc, &sqe, 0);
	expect_error(&rx, b, n, 8, FERRY_NVME_TCP_FES_PDU_SEQUENCE, 0);
	cr_assert_eq(ferry_nvme_tcp_rx_init(&rx, &ph), 0);
	n = ferry_nvme_tcp_build_resp(b, &ph, &cqe);
	expect_error(&rx, b, n, 8, FERRY_NVME_TCP_FES_PDU_SEQUENCE, 0);
	/* a second IC PDU */
	ready(&rx, &pc);
	n = ferry_nvme_tcp_build_icreq(b, 0, 0, 0);
	expect_error(&rx, b, n, 8, FERRY_NVME_TCP_FES_PDU_SEQUENCE, 0);
	ready(&rx, &ph);
	n = ferry_nvme_tcp_build_icresp(b, 0, 0, 4096);
	expect_error(&rx, b, n, 8, FERRY_NVME_TCP_FES_PDU_SEQUENCE, 0);
}

Test(nvme_tcp_validate, hlen)
{
	struct ferry_nvme_tcp_rx rx;
	uint8_t b[FERRY_NVME_TCP_TX_HDR_MAX + 64];
	struct ferry_nvme_sqe sqe = sqe0();
	for (int hd = 0; hd < 2; hd++) {
		struct ferry_nvme_tcp_params pc = P(CTRL, hd, 0), ph = P(HOST, hd, 0);
		const uint8_t bad[] = {0, 8, 23, 71, 73, 128, 255};
		for (unsigned i = 0; i < sizeof(bad); i++) {
			ready(&rx, &pc);
			size_t n = ferry_nvme_tcp_build_cmd(b, &pc, &sqe, 0);
			b[2] = bad[i];
			expect_error(&rx, b, n, 8, FERRY_NVME_TCP_FES_INVALID_HEADER, 2);
			ready(&rx, &pc);
			n = ferry_nvme_tcp_build_data(b, &pc, FERRY_NVME_TCP_H2C_DATA, 1, 1, 0, 8,
						      0);
			b[2] = (uint8_t)(bad[i] == 71 ? 28 : bad[i]);
			expect_error(&rx, b, n + 8, 8, FERRY_NVME_TCP_FES_INVALID_HEADER, 2);
			ready(&rx, &ph);
			n = ferry_nvme_tcp_build_r2t(b, &ph, 1, 1, 0, 8);
			b[2] = (uint8_t)(bad[i] == 71 ? 20 : bad[i]);
			expect_error(&rx, b, n, 8, FERRY_NVME_TCP_FES_INVALID_HEADER, 2);
		}
	}
	struct ferry_nvme_tcp_params pc = P(CTRL, 0, 0);
	cr_assert_eq(ferry_nvme_tcp_rx_init(&rx, &pc), 0);
	ferry_nvme_tcp_build_icreq(b, 0, 0, 0);
	b[2] = 127;
	expect_error(&rx, b, 128, 8, FERRY_NVME_TCP_FES_INVALID_HEADER, 2);
}

Test(nvme_tcp_validate, pdo)
{
	struct ferry_nvme_tcp_rx rx;
	uint8_t b[FERRY_NVME_TCP_TX_HDR_MAX + 64];
	struct ferry_nvme_sqe sqe = sqe0();
	for (int hd = 0; hd < 2; hd++)
		for (uint8_t cpda = 0; cpda < 8; cpda += 7) {
			struct ferry_nvme_tcp_params pc = P(CTRL, hd, 0);
			pc.cpda = cpda;
			uint32_t good_cmd = ferry_nvme_tcp_pdo(&pc, FERRY_NVME_TCP_CAPSULE_CMD);
			uint32_t good_data = ferry_nvme_tcp_pdo(&pc, FERRY_NVME_TCP_H2C_DATA);
			const int32_t delta[] = {-4, 4, 32, -1};
			for (unsigned i = 0; i < 4; i++) {
				ready(&rx, &pc);
				size_t n = ferry_nvme_tcp_build_cmd(b, &pc, &sqe, 16);
				b[3] = (uint8_t)(good_cmd + delta[i]);
				refix(b, hd);
				expect_error(&rx, b, n + 16, 8, FERRY_NVME_TCP_FES_INVALID_HEADER,
					     3);
				ready(&rx, &pc);
				n = ferry_nvme_tcp_build_data(b, &pc, FERRY_NVME_TCP_H2C_DATA, 1, 1,
							      0, 16, 0);
				b[3] = (uint8_t)(good_data + delta[i]);
				refix(b, hd);
				expect_error(&rx, b, n + 16, 8, FERRY_NVME_TCP_FES_INVALID_HEADER,
					     3);
			}
			/* the host's HPDA does not apply to H2C data */
			struct ferry_nvme_tcp_params other = pc;
			other.hpda = 31;
			ready(&rx, &other);
			size_t n = ferry_nvme_tcp_build_data(b, &other, FERRY_NVME_TCP_C2H_DATA, 1,
							     1, 0, 16, 0);
			b[0] = FERRY_NVME_TCP_H2C_DATA;
			refix(b, hd);
			expect_error(&rx, b, n + 16, 8, FERRY_NVME_TCP_FES_INVALID_HEADER, 3);
		}
	/* PDUs without data: PDO 0 */
	struct ferry_nvme_tcp_params ph = P(HOST, 0, 0);
	ready(&rx, &ph);
	size_t n = ferry_nvme_tcp_build_r2t(b, &ph, 1, 1, 0, 8);
	b[3] = 24;
	expect_error(&rx, b, n, 8, FERRY_NVME_TCP_FES_INVALID_HEADER, 3);
	ready(&rx, &ph);
	struct ferry_nvme_cqe cqe = {0};
	n = ferry_nvme_tcp_build_resp(b, &ph, &cqe);
	b[3] = 24;
	expect_error(&rx, b, n, 8, FERRY_NVME_TCP_FES_INVALID_HEADER, 3);
	struct ferry_nvme_tcp_params pc = P(CTRL, 0, 0);
	cr_assert_eq(ferry_nvme_tcp_rx_init(&rx, &pc), 0);
	ferry_nvme_tcp_build_icreq(b, 0, 0, 0);
	b[3] = 128;
	expect_error(&rx, b, 128, 8, FERRY_NVME_TCP_FES_INVALID_HEADER, 3);
}

Test(nvme_tcp_validate, plen)
{
	struct ferry_nvme_tcp_rx rx;
	uint8_t b[FERRY_NVME_TCP_TX_HDR_MAX + 64];
	struct ferry_nvme_sqe sqe = sqe0();
	struct ferry_nvme_cqe cqe = {0};
	for (int hd = 0; hd < 2; hd++)
		for (int dd = 0; dd < 2; dd++) {
			struct ferry_nvme_tcp_params pc = P(CTRL, hd, dd), ph = P(HOST, hd, dd);
			size_t n;
			/* fixed sizes */
			const int32_t delta[] = {-1, 1, 4, -24, 1 << 20};
			for (unsigned i = 0; i < 5; i++) {
				ready(&rx, &ph);
				n = ferry_nvme_tcp_build_resp(b, &ph, &cqe);
				memcpy(b + 4, &(uint32_t){(uint32_t)((int32_t)n + delta[i])}, 4);
				refix(b, hd);
				expect_error(&rx, b, n, 8, FERRY_NVME_TCP_FES_INVALID_HEADER, 4);
				ready(&rx, &ph);
				n = ferry_nvme_tcp_build_r2t(b, &ph, 1, 1, 0, 8);
				memcpy(b + 4, &(uint32_t){(uint32_t)((int32_t)n + delta[i])}, 4);
				refix(b, hd);
				expect_error(&rx, b, n, 8, FERRY_NVME_TCP_FES_INVALID_HEADER, 4);
				ready(&rx, &pc);
				n = ferry_nvme_tcp_build_cmd(b, &pc, &sqe, 0); /* PDO 0 */
				memcpy(b + 4, &(uint32_t){(uint32_t)((int32_t)n + delta[i])}, 4);
				refix(b, hd);
				expect_error(&rx, b, n, 8, FERRY_NVME_TCP_FES_INVALID_HEADER, 4);
			}
			/* PLEN short of PDO + digest */
			ready(&rx, &pc);
			n = ferry_nvme_tcp_build_data(b, &pc, FERRY_NVME_TCP_H2C_DATA, 1, 1, 0, 16,
						      0);
			memcpy(b + 4, &(uint32_t){(uint32_t)n - 1}, 4);
			refix(b, hd);
			expect_error(&rx, b, n + 16, 8, FERRY_NVME_TCP_FES_INVALID_HEADER, 4);
			ready(&rx, &pc);
			n = ferry_nvme_tcp_build_cmd(b, &pc, &sqe, 16);
			memcpy(b + 4, &(uint32_t){(uint32_t)n + (dd ? 4 : 0)}, 4); /* no data */
			refix(b, hd);
			expect_error(&rx, b, n + 16, 8, FERRY_NVME_TCP_FES_INVALID_HEADER, 4);
			/* DATAL not what PLEN says: found once the header is in */
			for (int d = -1; d <= 1; d += 2) {
				ready(&rx, &pc);
				n = ferry_nvme_tcp_build_data(b, &pc, FERRY_NVME_TCP_H2C_DATA, 1, 1,
							      0, 16, 0);
				memcpy(b + 16, &(uint32_t){(uint32_t)(16 + d)}, 4);
				refix(b, hd);
				expect_error(&rx, b, n + 16, 24u + 4 * hd,
					     FERRY_NVME_TCP_FES_INVALID_HEADER, 4);
			}
		}
	struct ferry_nvme_tcp_params pc = P(CTRL, 0, 0);
	cr_assert_eq(ferry_nvme_tcp_rx_init(&rx, &pc), 0);
	ferry_nvme_tcp_build_icreq(b, 0, 0, 0);
	b[4] = 129;
	expect_error(&rx, b, 128, 8, FERRY_NVME_TCP_FES_INVALID_HEADER, 4);
	/* TermReq longer than 152 or shorter than its header */
	const uint32_t tl[] = {153, 23, 0, 0xFFFFFFFF};
	for (unsigned i = 0; i < 4; i++) {
		ready(&rx, &pc);
		size_t n = ferry_nvme_tcp_build_term(b, FERRY_NVME_TCP_H2C_TERM, 1, 0, NULL, 0);
		memcpy(b + 4, &tl[i], 4);
		expect_error(&rx, b, n, 8, FERRY_NVME_TCP_FES_INVALID_HEADER, 4);
	}
}

Test(nvme_tcp_validate, data_limits)
{
	struct ferry_nvme_tcp_rx rx;
	uint8_t *b = malloc(FERRY_NVME_TCP_TX_HDR_MAX + 20000);
	struct ferry_nvme_sqe sqe = sqe0();
	for (int hd = 0; hd < 2; hd++) {
		struct ferry_nvme_tcp_params pc = P(CTRL, hd, 1), ph = P(HOST, hd, 1);
		size_t n;
		/* in-capsule data over max_icd: decided by PLEN, before the header is read */
		ready(&rx, &pc);
		n = ferry_nvme_tcp_build_cmd(b, &pc, &sqe, 4097);
		expect_error(&rx, b, n + 4101, 8, FERRY_NVME_TCP_FES_DATA_LIMIT, 4);
		pc.max_icd = 0;
		ready(&rx, &pc);
		n = ferry_nvme_tcp_build_cmd(b, &pc, &sqe, 1);
		expect_error(&rx, b, n + 5, 8, FERRY_NVME_TCP_FES_DATA_LIMIT, 4);
		/* exactly max_icd passes */
		pc.max_icd = 4096;
		ready(&rx, &pc);
		n = ferry_nvme_tcp_build_cmd(b, &pc, &sqe, 4096);
		struct ferry_nvme_tcp_rx_event ev;
		size_t c;
		cr_assert_eq(ferry_nvme_tcp_rx_feed(&rx, b, n, &c, &ev), 0);
		cr_assert_eq(ev.type, FERRY_NVME_TCP_RX_HEADER);
		cr_assert_eq(ev.data_len, 4096);
		/* H2CData over MAXH2CDATA */
		ready(&rx, &pc);
		n = ferry_nvme_tcp_build_data(b, &pc, FERRY_NVME_TCP_H2C_DATA, 1, 1, 0, 8193, 0);
		expect_error(&rx, b, n + 8197, 24u + 4 * hd, FERRY_NVME_TCP_FES_DATA_LIMIT, 16);
		ready(&rx, &pc);
		n = ferry_nvme_tcp_build_data(b, &pc, FERRY_NVME_TCP_H2C_DATA, 1, 1, 0, 8192, 0);
		cr_assert_eq(ferry_nvme_tcp_rx_feed(&rx, b, n, &c, &ev), 0);
		cr_assert_eq(ev.type, FERRY_NVME_TCP_RX_HEADER);
		/* C2HData over the host's limit */
		ready(&rx, &ph);
		n = ferry_nvme_tcp_build_data(b, &ph, FERRY_NVME_TCP_C2H_DATA, 1, 0, 0, 16385, 0);
		expect_error(&rx, b, n + 16389, 24u + 4 * hd, FERRY_NVME_TCP_FES_DATA_LIMIT, 16);
	}
	free(b);
}

Test(nvme_tcp_validate, digest_flags)
{
	struct ferry_nvme_tcp_rx rx;
	uint8_t b[FERRY_NVME_TCP_TX_HDR_MAX + 64];
	struct ferry_nvme_sqe sqe = sqe0();
	struct ferry_nvme_cqe cqe = {0};
	for (int hd = 0; hd < 2; hd++)
		for (int dd = 0; dd < 2; dd++) {
			struct ferry_nvme_tcp_params pc = P(CTRL, hd, dd), ph = P(HOST, hd, dd);
			size_t n;
			ready(&rx, &pc);
			n = ferry_nvme_tcp_build_cmd(b, &pc, &sqe, 0);
			b[1] ^= FERRY_NVME_TCP_F_HDGST;
			expect_error(&rx, b, n, 8, FERRY_NVME_TCP_FES_INVALID_HEADER, 1);
			ready(&rx, &pc);
			n = ferry_nvme_tcp_build_data(b, &pc, FERRY_NVME_TCP_H2C_DATA, 1, 1, 0, 8,
						      0);
			b[1] ^= FERRY_NVME_TCP_F_DDGST;
			refix(b, hd);
			expect_error(&rx, b, n + 12, 8, FERRY_NVME_TCP_FES_INVALID_HEADER, 1);
			ready(&rx, &pc);
			n = ferry_nvme_tcp_build_cmd(b, &pc, &sqe, 8);
			b[1] ^= FERRY_NVME_TCP_F_DDGST;
			refix(b, hd);
			expect_error(&rx, b, n + 12, 8, FERRY_NVME_TCP_FES_INVALID_HEADER, 1);
			/* DDGSTF on PDUs without data */
			ready(&rx, &ph);
			n = ferry_nvme_tcp_build_resp(b, &ph, &cqe);
			b[1] |= FERRY_NVME_TCP_F_DDGST;
			refix(b, hd);
			expect_error(&rx, b, n, 8, FERRY_NVME_TCP_FES_INVALID_HEADER, 1);
			ready(&rx, &pc);
			n = ferry_nvme_tcp_build_cmd(b, &pc, &sqe, 0);
			b[1] |= FERRY_NVME_TCP_F_DDGST;
			refix(b, hd);
			expect_error(&rx, b, n, 8, FERRY_NVME_TCP_FES_INVALID_HEADER, 1);
		}
	/* digest flags on IC PDUs and TermReqs */
	struct ferry_nvme_tcp_params pc = P(CTRL, 1, 1);
	cr_assert_eq(ferry_nvme_tcp_rx_init(&rx, &pc), 0);
	ferry_nvme_tcp_build_icreq(b, 0, 3, 0);
	b[1] = FERRY_NVME_TCP_F_HDGST;
	expect_error(&rx, b, 128, 8, FERRY_NVME_TCP_FES_INVALID_HEADER, 1);
	ready(&rx, &pc);
	size_t n = ferry_nvme_tcp_build_term(b, FERRY_NVME_TCP_H2C_TERM, 1, 0, NULL, 0);
	b[1] = FERRY_NVME_TCP_F_DDGST;
	expect_error(&rx, b, n, 8, FERRY_NVME_TCP_FES_INVALID_HEADER, 1);
}

Test(nvme_tcp_validate, data_flags_and_lengths)
{
	struct ferry_nvme_tcp_rx rx;
	uint8_t b[FERRY_NVME_TCP_TX_HDR_MAX + 64];
	for (int hd = 0; hd < 2; hd++) {
		struct ferry_nvme_tcp_params pc = P(CTRL, hd, 0), ph = P(HOST, hd, 0);
		size_t n;
		/* SUCCESS on H2CData */
		ready(&rx, &pc);
		n = ferry_nvme_tcp_build_data(b, &pc, FERRY_NVME_TCP_H2C_DATA, 1, 1, 0, 8,
					      FERRY_NVME_TCP_F_LAST_PDU);
		b[1] |= FERRY_NVME_TCP_F_SUCCESS;
		refix(b, hd);
		expect_error(&rx, b, n + 8, 8, FERRY_NVME_TCP_FES_INVALID_HEADER, 1);
		/* SUCCESS without LAST_PDU */
		ready(&rx, &ph);
		n = ferry_nvme_tcp_build_data(b, &ph, FERRY_NVME_TCP_C2H_DATA, 1, 1, 0, 8, 0);
		b[1] |= FERRY_NVME_TCP_F_SUCCESS;
		refix(b, hd);
		expect_error(&rx, b, n + 8, 8, FERRY_NVME_TCP_FES_INVALID_HEADER, 1);
		/* SUCCESS with LAST_PDU is fine */
		ready(&rx, &ph);
		n = ferry_nvme_tcp_build_data(b, &ph, FERRY_NVME_TCP_C2H_DATA, 1, 1, 0, 8,
					      FERRY_NVME_TCP_F_LAST_PDU | FERRY_NVME_TCP_F_SUCCESS);
		struct ferry_nvme_tcp_rx_event ev;
		size_t c;
		cr_assert_eq(ferry_nvme_tcp_rx_feed(&rx, b, n, &c, &ev), 0);
		cr_assert_eq(ev.type, FERRY_NVME_TCP_RX_HEADER);
		/* DATAL 0 (with PLEN saying 0 bytes too) */
		ready(&rx, &pc);
		n = ferry_nvme_tcp_build_data(b, &pc, FERRY_NVME_TCP_H2C_DATA, 1, 1, 0, 8, 0);
		memset(b + 16, 0, 4);
		memcpy(b + 4, &(uint32_t){(uint32_t)n}, 4);
		refix(b, hd);
		expect_error(&rx, b, n, 24u + 4 * hd, FERRY_NVME_TCP_FES_INVALID_HEADER, 16);
		/* R2TL 0 */
		ready(&rx, &ph);
		n = ferry_nvme_tcp_build_r2t(b, &ph, 1, 1, 0, 8);
		memset(b + 16, 0, 4);
		refix(b, hd);
		expect_error(&rx, b, n, 24u + 4 * hd, FERRY_NVME_TCP_FES_INVALID_HEADER, 16);
	}
}

Test(nvme_tcp_validate, header_digest)
{
	struct ferry_nvme_tcp_rx rx;
	uint8_t b[FERRY_NVME_TCP_TX_HDR_MAX + 64];
	struct ferry_nvme_sqe sqe = sqe0();
	struct ferry_nvme_tcp_params pc = P(CTRL, 1, 1);
	/* a flipped bit anywhere in the header or the digest */
	const unsigned pos[] = {9, 40, 71, 72, 75};
	for (unsigned i = 0; i < 5; i++) {
		ready(&rx, &pc);
		size_t n = ferry_nvme_tcp_build_cmd(b, &pc, &sqe, 0);
		b[pos[i]] ^= 0x10;
		expect_error(&rx, b, n, 76, FERRY_NVME_TCP_FES_HDGST, 0);
		cr_assert_eq(rx.stats.hdgst_errors, 1);
		cr_assert_eq(rx.stats.pdus, 1, "only the ICReq");
	}
	/* the digest is checked before the fields: a bad DATAL under a bad digest is a digest
	 * error */
	ready(&rx, &pc);
	size_t n = ferry_nvme_tcp_build_data(b, &pc, FERRY_NVME_TCP_H2C_DATA, 1, 1, 0, 8, 0);
	memset(b + 16, 0, 4);
	expect_error(&rx, b, n + 12, 28, FERRY_NVME_TCP_FES_HDGST, 0);
}

Test(nvme_tcp_validate, ic_fields)
{
	struct ferry_nvme_tcp_rx rx;
	struct ferry_nvme_tcp_params pc = P(CTRL, 0, 0), ph = P(HOST, 0, 0);
	uint8_t b[128];
	struct {
		int resp;
		unsigned off;
		uint8_t v;
		uint32_t fei;
	} cases[] = {
		{0, 8, 1, 8},      {0, 9, 1, 8}, {0, 10, 32, 10}, {0, 10, 255, 10}, {0, 11, 4, 11},
		{0, 11, 0x80, 11}, {1, 8, 1, 8}, {1, 10, 32, 10}, {1, 11, 8, 11},
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_assert_eq(ferry_nvme_tcp_rx_init(&rx, cases[i].resp ? &ph : &pc), 0);
		if (cases[i].resp)
			ferry_nvme_tcp_build_icresp(b, 0, 0, 4096);
		else
			ferry_nvme_tcp_build_icreq(b, 0, 0, 0);
		b[cases[i].off] = cases[i].v;
		expect_error(&rx, b, 128, 128, FERRY_NVME_TCP_FES_UNSUPPORTED, cases[i].fei);
	}
	const uint32_t bad_maxh2c[] = {0, 4, 3840, 4092, 4097, 4098, 4099};
	for (unsigned i = 0; i < sizeof(bad_maxh2c) / sizeof(bad_maxh2c[0]); i++) {
		cr_assert_eq(ferry_nvme_tcp_rx_init(&rx, &ph), 0);
		ferry_nvme_tcp_build_icresp(b, 0, 0, bad_maxh2c[i]);
		expect_error(&rx, b, 128, 128, FERRY_NVME_TCP_FES_UNSUPPORTED, 12);
	}
	/* limits accepted: HPDA 31, MAXH2CDATA 4096 */
	struct ferry_nvme_tcp_rx_event ev;
	size_t c;
	cr_assert_eq(ferry_nvme_tcp_rx_init(&rx, &ph), 0);
	ferry_nvme_tcp_build_icresp(b, 31, 3, 4096);
	cr_assert_eq(ferry_nvme_tcp_rx_feed(&rx, b, 128, &c, &ev), 0);
	cr_assert_eq(ev.type, FERRY_NVME_TCP_RX_DONE);
}

/* Caller-detected errors after HEADER (unknown CCCID...). */
Test(nvme_tcp_validate, caller_fail)
{
	struct ferry_nvme_tcp_rx rx;
	struct ferry_nvme_tcp_params pc = P(CTRL, 1, 0);
	uint8_t b[FERRY_NVME_TCP_TX_HDR_MAX + 64];
	struct ferry_nvme_tcp_rx_event ev;
	struct iovec iov[2];
	size_t c, l;
	ready(&rx, &pc);
	size_t n = ferry_nvme_tcp_build_data(b, &pc, FERRY_NVME_TCP_H2C_DATA, 99, 1, 0, 8, 0);
	memset(b + n, 0xAA, 8);
	cr_assert_eq(ferry_nvme_tcp_rx_feed(&rx, b, n + 8, &c, &ev), 0);
	cr_assert_eq(c, n);
	cr_assert_eq(ev.type, FERRY_NVME_TCP_RX_HEADER);
	ferry_nvme_tcp_rx_fail(&rx, FERRY_NVME_TCP_FES_DATA_OUT_OF_RANGE, 8);
	ferry_nvme_tcp_rx_fail(&rx, FERRY_NVME_TCP_FES_INVALID_HEADER, 1); /* ignored */
	cr_assert_eq(rx.fes, FERRY_NVME_TCP_FES_DATA_OUT_OF_RANGE);
	cr_assert_eq(rx.fei, 8);
	cr_assert_eq(ferry_nvme_tcp_rx_next(&rx, iov, 2), 0);
	cr_assert_eq(ferry_nvme_tcp_rx_feed(&rx, b + n, 8, &c, &ev), 0);
	cr_assert_eq(c, 0);
	cr_assert_eq(ferry_nvme_tcp_rx_set_dest(&rx, NULL, 0), -EINVAL);
	const void *h = ferry_nvme_tcp_rx_err_hdr(&rx, &l);
	cr_assert_eq(l, 24, "the header without its digest");
	cr_assert_eq(memcmp(h, b, 24), 0);
}

/* Errors found in a header split over many feeds: same codes, same consumed count. */
Test(nvme_tcp_validate, error_in_split_header)
{
	struct ferry_nvme_tcp_rx rx;
	struct ferry_nvme_tcp_params pc = P(CTRL, 1, 1);
	uint8_t b[FERRY_NVME_TCP_TX_HDR_MAX + 64];
	struct ferry_nvme_tcp_rx_event ev;
	ready(&rx, &pc);
	size_t n = ferry_nvme_tcp_build_data(b, &pc, FERRY_NVME_TCP_H2C_DATA, 1, 1, 0, 8, 0);
	memset(b + 16, 0, 4); /* DATAL 0 */
	refix(b, 1);
	size_t total = 0, c;
	for (size_t i = 0; i < n + 12; i++) {
		cr_assert_eq(ferry_nvme_tcp_rx_feed(&rx, b + i, 1, &c, &ev), 0);
		total += c;
		if (ev.type == FERRY_NVME_TCP_RX_ERROR)
			break;
		cr_assert_eq(c, 1);
	}
	cr_assert_eq(ev.type, FERRY_NVME_TCP_RX_ERROR);
	cr_assert_eq(ev.fei, 16);
	cr_assert_eq(total, 28);
}
