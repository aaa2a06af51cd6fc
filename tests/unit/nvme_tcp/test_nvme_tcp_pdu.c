/*
 * NVMe/TCP PDU builders: every field of every PDU type, with and without digests and
 * alignments, parsed back through a receive machine of the receiving role; a CapsuleCmd with
 * header digest against a fixed byte array (digest from an independent bitwise CRC32C); the
 * PDO rule; TermReq data cut at 128 bytes; bad builder arguments; the IC negotiation helpers
 * of both sides; the names of FES values and PDU types.
 */
#include "nvme_tcp_util.h"

/* Bitwise CRC32C (reflected polynomial 0x82F63B78), independent of ferry_crc32c(). */
static uint32_t ref_crc32c(const uint8_t *p, size_t n)
{
	uint32_t c = 0xFFFFFFFFu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ ((c & 1) ? 0x82F63B78u : 0);
	}
	return c ^ 0xFFFFFFFFu;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static struct ferry_nvme_tcp_params prm(enum ferry_nvme_tcp_role role, int hd, int dd, uint8_t hpda,
					uint8_t cpda)
{
	struct ferry_nvme_tcp_params p = {.role = role,
					  .hdgst = (uint8_t)hd,
					  .ddgst = (uint8_t)dd,
					  .hpda = hpda,
					  .cpda = cpda,
					  .maxh2cdata = 65536,
					  .max_icd = 8192,
					  .max_c2hdata = 0};
	return p;
}

Test(nvme_tcp_pdu, ref_crc_known_answer)
{
	cr_assert_eq(ref_crc32c((const uint8_t *)"123456789", 9), 0xE3069283u);
	cr_assert_eq(ferry_crc32c(0, "123456789", 9), 0xE3069283u);
}

/* CapsuleCmd, HDGST on, no data: bytes written by hand, digest 0x44E7B7F6 from a bitwise
 * CRC32C over these 72 bytes, stored little endian. */
Test(nvme_tcp_pdu, capsule_cmd_known_answer)
{
	static const uint8_t want[76] = {
		0x04, 0x01, 0x48, 0x00, 0x4c, 0x00, 0x00, 0x00, 0x02, 0x40, 0x34, 0x12, 0x01,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x5a, 0x10, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf6, 0xb7, 0xe7, 0x44,
	};
	struct ferry_nvme_sqe sqe;
	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = 0x02;
	sqe.flags = 0x40;
	sqe.cid = 0x1234;
	sqe.nsid = 1;
	sqe.dptr.sgl.length = 4096;
	sqe.dptr.sgl.id = FERRY_NVME_TCP_SGL_TRANSPORT;
	sqe.cdw10 = 0x10;
	sqe.cdw12 = 7;
	struct ferry_nvme_tcp_params p = prm(FERRY_NVME_TCP_ROLE_HOST, 1, 1, 0, 3);
	uint8_t buf[FERRY_NVME_TCP_TX_HDR_MAX];
	memset(buf, 0xAB, sizeof(buf));
	cr_assert_eq(ferry_nvme_tcp_build_cmd(buf, &p, &sqe, 0), 76);
	cr_assert_eq(ref_crc32c(want, 72), 0x44E7B7F6u);
	cr_assert_eq(memcmp(buf, want, sizeof(want)), 0);
	cr_assert_eq(buf[76], 0xAB, "nothing written after the digest");
}

Test(nvme_tcp_pdu, pdo_rule)
{
	struct ferry_nvme_tcp_params p = prm(FERRY_NVME_TCP_ROLE_HOST, 0, 0, 0, 0);
	cr_assert_eq(ferry_nvme_tcp_pdo(&p, FERRY_NVME_TCP_CAPSULE_CMD), 72);
	cr_assert_eq(ferry_nvme_tcp_pdo(&p, FERRY_NVME_TCP_H2C_DATA), 24);
	cr_assert_eq(ferry_nvme_tcp_pdo(&p, FERRY_NVME_TCP_C2H_DATA), 24);
	cr_assert_eq(ferry_nvme_tcp_pdo(&p, FERRY_NVME_TCP_CAPSULE_RESP), 0);
	cr_assert_eq(ferry_nvme_tcp_pdo(&p, FERRY_NVME_TCP_R2T), 0);
	cr_assert_eq(ferry_nvme_tcp_pdo(&p, FERRY_NVME_TCP_ICREQ), 0);
	cr_assert_eq(ferry_nvme_tcp_pdo(&p, FERRY_NVME_TCP_H2C_TERM), 24);
	p.hdgst = 1;
	cr_assert_eq(ferry_nvme_tcp_pdo(&p, FERRY_NVME_TCP_CAPSULE_CMD), 76);
	cr_assert_eq(ferry_nvme_tcp_pdo(&p, FERRY_NVME_TCP_C2H_DATA), 28);
	p.cpda = 7; /* 32 bytes: H2C padded, C2H not */
	cr_assert_eq(ferry_nvme_tcp_pdo(&p, FERRY_NVME_TCP_CAPSULE_CMD), 96);
	cr_assert_eq(ferry_nvme_tcp_pdo(&p, FERRY_NVME_TCP_H2C_DATA), 32);
	cr_assert_eq(ferry_nvme_tcp_pdo(&p, FERRY_NVME_TCP_C2H_DATA), 28);
	p.hpda = 31; /* 128 bytes */
	cr_assert_eq(ferry_nvme_tcp_pdo(&p, FERRY_NVME_TCP_C2H_DATA), 128);
	p.cpda = 31;
	cr_assert_eq(ferry_nvme_tcp_pdo(&p, FERRY_NVME_TCP_CAPSULE_CMD), 128);
	cr_assert_eq(ferry_nvme_tcp_pdo(NULL, FERRY_NVME_TCP_CAPSULE_CMD), 0);
}

/* Feed one PDU (header + data) into a machine of @p role that has done IC with @p p; check
 * the events and return the DONE event's header copy and data. */
static void parse_one(enum ferry_nvme_tcp_role role, const struct ferry_nvme_tcp_params *p,
		      const uint8_t *pdu, size_t n, uint8_t *hdr_out, uint8_t *data_out,
		      uint32_t *data_len)
{
	struct t_run *r = calloc(1, sizeof(*r));
	struct t_stream *ic = calloc(1, sizeof(*ic));
	uint8_t dgst = (uint8_t)((p->hdgst ? 1 : 0) | (p->ddgst ? 2 : 0));
	tr_init(r, role, p, 0);
	if (role == FERRY_NVME_TCP_ROLE_CONTROLLER)
		ic->n = ferry_nvme_tcp_build_icreq(ic->b, p->hpda, dgst, 0);
	else
		ic->n = ferry_nvme_tcp_build_icresp(ic->b, p->cpda, dgst, 65536);
	ts_put(ic, pdu, n);
	tr_feed_all(r, ic->b, ic->n);
	cr_assert_eq(r->consumed, ic->n);
	cr_assert_geq(r->nev, 2);
	struct t_ev *last = &r->ev[r->nev - 1];
	cr_assert_eq(last->type, FERRY_NVME_TCP_RX_DONE);
	cr_assert_eq(last->ddgst_error, 0);
	cr_assert_eq(r->rx.stats.pdus, 2);
	*data_len = last->data_len;
	memcpy(hdr_out, r->rx.hdr, FERRY_NVME_TCP_HLEN_MAX);
	memcpy(data_out, r->data, r->data_n);
	if (last->data_len && last->pdu_type != FERRY_NVME_TCP_H2C_TERM &&
	    last->pdu_type != FERRY_NVME_TCP_C2H_TERM) {
		cr_assert_eq(r->nev, 3);
		cr_assert_eq(r->ev[1].type, FERRY_NVME_TCP_RX_HEADER);
		cr_assert_eq(r->ev[1].data_len, last->data_len);
	} else {
		cr_assert_eq(r->nev, 2, "no HEADER event for a PDU without data");
	}
	free(ic);
	free(r);
}

static const uint8_t pdas[] = {0, 1, 7, 31};

Test(nvme_tcp_pdu, cmd_roundtrip)
{
	for (int hd = 0; hd < 2; hd++)
		for (int dd = 0; dd < 2; dd++)
			for (unsigned a = 0; a < sizeof(pdas); a++)
				for (uint32_t icd = 0; icd < 3000; icd += 1499) {
					struct ferry_nvme_tcp_params p =
						prm(FERRY_NVME_TCP_ROLE_CONTROLLER, hd, dd, 5,
						    pdas[a]);
					uint8_t pdu[FERRY_NVME_TCP_TX_HDR_MAX + 4096];
					struct ferry_nvme_sqe sqe;
					memset(&sqe, 0x5C, sizeof(sqe));
					size_t h = ferry_nvme_tcp_build_cmd(pdu, &p, &sqe, icd);
					uint32_t pdo = icd ? ferry_nvme_tcp_pdo(&p, 4) : 0;
					cr_assert_eq(h, icd ? pdo : 72u + 4 * hd);
					cr_assert_eq(pdu[0], FERRY_NVME_TCP_CAPSULE_CMD);
					cr_assert_eq(pdu[1], (hd ? 1 : 0) | (dd && icd ? 2 : 0));
					cr_assert_eq(pdu[2], 72);
					cr_assert_eq(pdu[3], pdo);
					cr_assert_eq(le32(pdu + 4),
						     icd ? pdo + icd + 4u * dd : 72u + 4u * hd);
					cr_assert_eq(memcmp(pdu + 8, &sqe, 64), 0);
					if (hd)
						cr_assert_eq(le32(pdu + 72), ref_crc32c(pdu, 72));
					for (size_t i = 72 + 4 * hd; i < h; i++)
						cr_assert_eq(pdu[i], 0, "padding zero");
					size_t n = h;
					if (icd) {
						t_pattern(pdu + n, icd, 77);
						n += icd;
						if (dd) {
							uint32_t c = ref_crc32c(pdu + h, icd);
							memcpy(pdu + n, &c, 4); /* LE host */
							n += 4;
						}
					}
					uint8_t hdr[128], data[4096], want[4096];
					uint32_t dl;
					parse_one(FERRY_NVME_TCP_ROLE_CONTROLLER, &p, pdu, n, hdr,
						  data, &dl);
					cr_assert_eq(dl, icd);
					cr_assert_eq(memcmp(hdr, pdu, 72), 0);
					t_pattern(want, icd, 77);
					cr_assert_eq(memcmp(data, want, icd), 0);
				}
}

Test(nvme_tcp_pdu, resp_r2t_roundtrip)
{
	for (int hd = 0; hd < 2; hd++) {
		struct ferry_nvme_tcp_params p = prm(FERRY_NVME_TCP_ROLE_HOST, hd, 1, 3, 3);
		uint8_t pdu[64], hdr[128], data[16];
		uint32_t dl;
		struct ferry_nvme_cqe cqe = {.dw0 = 0x11223344,
					     .dw1 = 5,
					     .sqhd = 9,
					     .sqid = 2,
					     .cid = 0xBEEF,
					     .status = 0x4002};
		size_t n = ferry_nvme_tcp_build_resp(pdu, &p, &cqe);
		cr_assert_eq(n, 24u + 4 * hd);
		cr_assert_eq(pdu[0], FERRY_NVME_TCP_CAPSULE_RESP);
		cr_assert_eq(pdu[1], hd ? FERRY_NVME_TCP_F_HDGST : 0, "no DDGSTF without data");
		cr_assert_eq(pdu[2], 24);
		cr_assert_eq(pdu[3], 0);
		cr_assert_eq(le32(pdu + 4), n);
		cr_assert_eq(memcmp(pdu + 8, &cqe, 16), 0);
		if (hd)
			cr_assert_eq(le32(pdu + 24), ref_crc32c(pdu, 24));
		parse_one(FERRY_NVME_TCP_ROLE_HOST, &p, pdu, n, hdr, data, &dl);
		cr_assert_eq(dl, 0);
		cr_assert_eq(memcmp(hdr, pdu, 24), 0);

		n = ferry_nvme_tcp_build_r2t(pdu, &p, 0x0102, 0x0304, 0x05060708, 0x090A0B0C);
		cr_assert_eq(n, 24u + 4 * hd);
		cr_assert_eq(pdu[0], FERRY_NVME_TCP_R2T);
		cr_assert_eq(pdu[1], hd ? FERRY_NVME_TCP_F_HDGST : 0);
		cr_assert_eq(pdu[3], 0);
		cr_assert_eq(le32(pdu + 4), n);
		cr_assert_eq(le16(pdu + 8), 0x0102);
		cr_assert_eq(le16(pdu + 10), 0x0304);
		cr_assert_eq(le32(pdu + 12), 0x05060708);
		cr_assert_eq(le32(pdu + 16), 0x090A0B0C);
		cr_assert_eq(le32(pdu + 20), 0, "reserved");
		parse_one(FERRY_NVME_TCP_ROLE_HOST, &p, pdu, n, hdr, data, &dl);
		cr_assert_eq(memcmp(hdr, pdu, 24), 0);
		cr_assert_eq(ferry_nvme_tcp_build_r2t(pdu, &p, 1, 1, 0, 0), 0, "R2TL 0 refused");
	}
}

Test(nvme_tcp_pdu, data_roundtrip)
{
	const uint8_t types[2] = {FERRY_NVME_TCP_H2C_DATA, FERRY_NVME_TCP_C2H_DATA};
	for (int t = 0; t < 2; t++)
		for (int hd = 0; hd < 2; hd++)
			for (int dd = 0; dd < 2; dd++)
				for (unsigned a = 0; a < sizeof(pdas); a++) {
					enum ferry_nvme_tcp_role role =
						t ? FERRY_NVME_TCP_ROLE_HOST
						  : FERRY_NVME_TCP_ROLE_CONTROLLER;
					/* the other side's PDA must not matter */
					struct ferry_nvme_tcp_params p =
						prm(role, hd, dd, t ? pdas[a] : 2, t ? 2 : pdas[a]);
					uint8_t pdu[FERRY_NVME_TCP_TX_HDR_MAX + 5000];
					uint32_t datal = 4099;
					uint8_t fl = FERRY_NVME_TCP_F_LAST_PDU |
						     (t ? FERRY_NVME_TCP_F_SUCCESS : 0);
					size_t h = ferry_nvme_tcp_build_data(pdu, &p, types[t],
									     0xA1B2, 0xC3D4, 0x1000,
									     datal, fl);
					uint32_t align = (pdas[a] + 1u) * 4;
					uint32_t pdo = (24 + 4 * hd + align - 1) / align * align;
					cr_assert_eq(h, pdo);
					cr_assert_eq(pdu[0], types[t]);
					cr_assert_eq(pdu[1], fl | (hd ? 1 : 0) | (dd ? 2 : 0));
					cr_assert_eq(pdu[2], 24);
					cr_assert_eq(pdu[3], pdo);
					cr_assert_eq(le32(pdu + 4), pdo + datal + 4 * dd);
					cr_assert_eq(le16(pdu + 8), 0xA1B2);
					cr_assert_eq(le16(pdu + 10), 0xC3D4);
					cr_assert_eq(le32(pdu + 12), 0x1000);
					cr_assert_eq(le32(pdu + 16), datal);
					for (size_t i = 24 + 4 * hd; i < h; i++)
						cr_assert_eq(pdu[i], 0);
					t_pattern(pdu + h, datal, 3);
					size_t n = h + datal;
					if (dd) {
						uint32_t c = ref_crc32c(pdu + h, datal);
						memcpy(pdu + n, &c, 4);
						n += 4;
					}
					uint8_t hdr[128], data[5000], want[5000];
					uint32_t dl;
					parse_one(role, &p, pdu, n, hdr, data, &dl);
					cr_assert_eq(dl, datal);
					cr_assert_eq(memcmp(hdr, pdu, 24), 0);
					t_pattern(want, datal, 3);
					cr_assert_eq(memcmp(data, want, datal), 0);
				}
}

Test(nvme_tcp_pdu, data_bad_arguments)
{
	struct ferry_nvme_tcp_params p = prm(FERRY_NVME_TCP_ROLE_HOST, 0, 0, 0, 0);
	uint8_t b[FERRY_NVME_TCP_TX_HDR_MAX];
	cr_assert_eq(ferry_nvme_tcp_build_data(b, &p, FERRY_NVME_TCP_H2C_DATA, 1, 1, 0, 0, 0), 0);
	cr_assert_eq(ferry_nvme_tcp_build_data(b, &p, FERRY_NVME_TCP_R2T, 1, 1, 0, 8, 0), 0);
	cr_assert_eq(ferry_nvme_tcp_build_data(b, &p, FERRY_NVME_TCP_H2C_DATA, 1, 1, 0, 8,
					       FERRY_NVME_TCP_F_LAST_PDU |
						       FERRY_NVME_TCP_F_SUCCESS),
		     0);
	cr_assert_eq(ferry_nvme_tcp_build_data(b, &p, FERRY_NVME_TCP_C2H_DATA, 1, 1, 0, 8,
					       FERRY_NVME_TCP_F_SUCCESS),
		     0);
	cr_assert_eq(ferry_nvme_tcp_build_data(b, &p, FERRY_NVME_TCP_C2H_DATA, 1, 1, 0, 8,
					       FERRY_NVME_TCP_F_HDGST),
		     0);
	cr_assert_eq(ferry_nvme_tcp_build_data(b, &p, FERRY_NVME_TCP_C2H_DATA, 1, 1, 0,
					       UINT32_MAX - 10, 0),
		     0, "PLEN overflow");
	cr_assert_eq(ferry_nvme_tcp_build_data(NULL, &p, FERRY_NVME_TCP_C2H_DATA, 1, 1, 0, 8, 0),
		     0);
	cr_assert_eq(ferry_nvme_tcp_build_cmd(b, NULL, NULL, 0), 0);
	cr_assert_eq(ferry_nvme_tcp_build_resp(b, &p, NULL), 0);
	cr_assert_eq(ferry_nvme_tcp_build_term(b, FERRY_NVME_TCP_R2T, 1, 0, NULL, 0), 0);
	cr_assert_eq(ferry_nvme_tcp_build_icreq(NULL, 0, 0, 0), 0);
}

Test(nvme_tcp_pdu, ic_roundtrip)
{
	uint8_t b[128];
	memset(b, 0xFF, sizeof(b));
	cr_assert_eq(ferry_nvme_tcp_build_icreq(b, 31, 3, 0x01020304), 128);
	cr_assert_eq(b[0], FERRY_NVME_TCP_ICREQ);
	cr_assert_eq(b[1], 0);
	cr_assert_eq(b[2], 128);
	cr_assert_eq(b[3], 0);
	cr_assert_eq(le32(b + 4), 128);
	cr_assert_eq(le16(b + 8), 0);
	cr_assert_eq(b[10], 31);
	cr_assert_eq(b[11], 3);
	cr_assert_eq(le32(b + 12), 0x01020304);
	for (int i = 16; i < 128; i++)
		cr_assert_eq(b[i], 0);
	memset(b, 0xFF, sizeof(b));
	cr_assert_eq(ferry_nvme_tcp_build_icresp(b, 7, 1, 131072), 128);
	cr_assert_eq(b[0], FERRY_NVME_TCP_ICRESP);
	cr_assert_eq(b[10], 7);
	cr_assert_eq(b[11], 1);
	cr_assert_eq(le32(b + 12), 131072);
	for (int i = 16; i < 128; i++)
		cr_assert_eq(b[i], 0);
}

Test(nvme_tcp_pdu, term_cut_and_parse)
{
	uint8_t src[300], b[FERRY_NVME_TCP_TX_HDR_MAX];
	t_pattern(src, sizeof(src), 4);
	for (size_t len = 0; len <= 300; len += 50) {
		memset(b, 0xFF, sizeof(b));
		size_t n = ferry_nvme_tcp_build_term(b, FERRY_NVME_TCP_C2H_TERM, 0x0006, 0x0A0B0C0D,
						     src, len);
		size_t d = len > 128 ? 128 : len;
		cr_assert_eq(n, 24 + d);
		cr_assert_leq(n, FERRY_NVME_TCP_TERM_MAX_PLEN);
		cr_assert_eq(b[0], FERRY_NVME_TCP_C2H_TERM);
		cr_assert_eq(b[1], 0, "no digests");
		cr_assert_eq(b[2], 24);
		cr_assert_eq(b[3], d ? 24 : 0);
		cr_assert_eq(le32(b + 4), n);
		cr_assert_eq(le16(b + 8), 6);
		cr_assert_eq(le32(b + 10), 0x0A0B0C0D);
		for (int i = 14; i < 24; i++)
			cr_assert_eq(b[i], 0);
		cr_assert_eq(memcmp(b + 24, src, d), 0);
		/* parsed as the host, before and after IC */
		for (int after_ic = 0; after_ic < 2; after_ic++) {
			struct ferry_nvme_tcp_params p = prm(FERRY_NVME_TCP_ROLE_HOST, 1, 1, 0, 0);
			struct ferry_nvme_tcp_rx rx;
			struct ferry_nvme_tcp_rx_event ev;
			size_t c;
			cr_assert_eq(ferry_nvme_tcp_rx_init(&rx, &p), 0);
			if (after_ic) {
				uint8_t ic[128];
				ferry_nvme_tcp_build_icresp(ic, 0, 3, 8192);
				cr_assert_eq(ferry_nvme_tcp_rx_feed(&rx, ic, 128, &c, &ev), 0);
				cr_assert_eq(ev.type, FERRY_NVME_TCP_RX_DONE);
				cr_assert_eq(ferry_nvme_tcp_rx_set_params(&rx, &p), 0);
			}
			cr_assert_eq(ferry_nvme_tcp_rx_feed(&rx, b, n, &c, &ev), 0);
			cr_assert_eq(c, n);
			cr_assert_eq(ev.type, FERRY_NVME_TCP_RX_DONE);
			cr_assert_eq(ev.hdr->pdu_type, FERRY_NVME_TCP_C2H_TERM);
			cr_assert_eq(ev.data_len, d);
			if (d)
				cr_assert_eq(memcmp(ev.term_data, src, d), 0);
			const struct ferry_nvme_tcp_term *t = (const void *)ev.hdr;
			cr_assert_eq(t->fes, 6);
			cr_assert_eq(t->fei, 0x0A0B0C0D);
		}
	}
}

Test(nvme_tcp_pdu, negotiate_controller)
{
	struct ferry_nvme_tcp_params offer = prm(FERRY_NVME_TCP_ROLE_CONTROLLER, 1, 0, 0, 3);
	struct ferry_nvme_tcp_params out;
	uint8_t req[128], resp[128];
	uint16_t fes = 0;
	uint32_t fei = 0;
	offer.maxh2cdata = 32768;
	for (uint8_t dgst = 0; dgst < 4; dgst++) {
		for (int hd_ok = 0; hd_ok < 2; hd_ok++)
			for (int dd_ok = 0; dd_ok < 2; dd_ok++) {
				offer.hdgst = (uint8_t)hd_ok;
				offer.ddgst = (uint8_t)dd_ok;
				ferry_nvme_tcp_build_icreq(req, 9, dgst, 0);
				memset(resp, 0xFF, sizeof(resp));
				cr_assert_eq(ferry_nvme_tcp_icreq_negotiate((const void *)req,
									    &offer, &out, resp,
									    &fes, &fei),
					     0);
				int hd = (dgst & 1) && hd_ok, dd = (dgst & 2) && dd_ok;
				cr_assert_eq(out.hdgst, hd);
				cr_assert_eq(out.ddgst, dd);
				cr_assert_eq(out.hpda, 9);
				cr_assert_eq(out.cpda, 3);
				cr_assert_eq(out.maxh2cdata, 32768);
				cr_assert_eq(out.role, FERRY_NVME_TCP_ROLE_CONTROLLER);
				cr_assert_eq(resp[0], FERRY_NVME_TCP_ICRESP);
				cr_assert_eq(resp[10], 3);
				cr_assert_eq(resp[11], (hd ? 1 : 0) | (dd ? 2 : 0));
				cr_assert_eq(le32(resp + 12), 32768);
				/* and the host accepts it */
				struct ferry_nvme_tcp_params asked =
					prm(FERRY_NVME_TCP_ROLE_HOST, dgst & 1, !!(dgst & 2), 9, 0);
				struct ferry_nvme_tcp_params hout;
				cr_assert_eq(ferry_nvme_tcp_icresp_check((const void *)resp, &asked,
									 &hout, &fes, &fei),
					     0);
				cr_assert_eq(hout.hdgst, hd);
				cr_assert_eq(hout.ddgst, dd);
				cr_assert_eq(hout.cpda, 3);
				cr_assert_eq(hout.hpda, 9);
				cr_assert_eq(hout.maxh2cdata, 32768);
			}
	}
	/* bad ICReqs */
	ferry_nvme_tcp_build_icreq(req, 0, 0, 0);
	req[8] = 1;
	cr_assert_eq(ferry_nvme_tcp_icreq_negotiate((const void *)req, &offer, &out, resp, &fes,
						    &fei),
		     -EPROTO);
	cr_assert_eq(fes, FERRY_NVME_TCP_FES_UNSUPPORTED);
	cr_assert_eq(fei, 8);
	ferry_nvme_tcp_build_icreq(req, 32, 0, 0);
	cr_assert_eq(ferry_nvme_tcp_icreq_negotiate((const void *)req, &offer, &out, resp, &fes,
						    &fei),
		     -EPROTO);
	cr_assert_eq(fei, 10);
	ferry_nvme_tcp_build_icreq(req, 0, 4, 0);
	cr_assert_eq(ferry_nvme_tcp_icreq_negotiate((const void *)req, &offer, &out, resp, &fes,
						    &fei),
		     -EPROTO);
	cr_assert_eq(fei, 11);
	/* bad offers */
	ferry_nvme_tcp_build_icreq(req, 0, 0, 0);
	offer.maxh2cdata = 4095;
	cr_assert_eq(ferry_nvme_tcp_icreq_negotiate((const void *)req, &offer, &out, resp, NULL,
						    NULL),
		     -EINVAL);
	offer.maxh2cdata = 4098;
	cr_assert_eq(ferry_nvme_tcp_icreq_negotiate((const void *)req, &offer, &out, resp, NULL,
						    NULL),
		     -EINVAL);
	offer.maxh2cdata = 4096;
	offer.cpda = 32;
	cr_assert_eq(ferry_nvme_tcp_icreq_negotiate((const void *)req, &offer, &out, resp, NULL,
						    NULL),
		     -EINVAL);
	offer.cpda = 0;
	cr_assert_eq(ferry_nvme_tcp_icreq_negotiate((const void *)req, &offer, &out, resp, NULL,
						    NULL),
		     0, "4096 is the minimum and allowed");
	cr_assert_eq(ferry_nvme_tcp_icreq_negotiate(NULL, &offer, &out, resp, NULL, NULL), -EINVAL);
}

Test(nvme_tcp_pdu, icresp_check_host)
{
	struct ferry_nvme_tcp_params asked = prm(FERRY_NVME_TCP_ROLE_HOST, 0, 1, 0, 0), out;
	uint8_t r[128];
	uint16_t fes = 0;
	uint32_t fei = 0;
	const struct {
		uint8_t cpda, dgst;
		uint32_t maxh2c;
		int rc;
		uint32_t fei;
	} cases[] = {
		{0, 0, 4096, 0, 0},         {31, 2, 1u << 20, 0, 0},
		{32, 0, 4096, -EPROTO, 10}, {0, 1, 4096, -EPROTO, 11}, /* header digest not asked */
		{0, 4, 4096, -EPROTO, 11},  {0, 0, 4092, -EPROTO, 12},
		{0, 0, 4097, -EPROTO, 12},  {0, 0, 0, -EPROTO, 12},
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ferry_nvme_tcp_build_icresp(r, cases[i].cpda, cases[i].dgst, cases[i].maxh2c);
		fes = 0;
		fei = 0;
		int rc = ferry_nvme_tcp_icresp_check((const void *)r, &asked, &out, &fes, &fei);
		cr_assert_eq(rc, cases[i].rc, "case %u", i);
		if (rc) {
			cr_assert_eq(fes, FERRY_NVME_TCP_FES_UNSUPPORTED);
			cr_assert_eq(fei, cases[i].fei, "case %u", i);
		} else {
			cr_assert_eq(out.cpda, cases[i].cpda);
			cr_assert_eq(out.ddgst, !!(cases[i].dgst & 2));
			cr_assert_eq(out.hdgst, 0);
			cr_assert_eq(out.maxh2cdata, cases[i].maxh2c);
		}
	}
	ferry_nvme_tcp_build_icresp(r, 0, 0, 4096);
	r[8] = 1;
	cr_assert_eq(ferry_nvme_tcp_icresp_check((const void *)r, &asked, &out, &fes, &fei),
		     -EPROTO);
	cr_assert_eq(fei, 8);
	asked.role = FERRY_NVME_TCP_ROLE_CONTROLLER;
	cr_assert_eq(ferry_nvme_tcp_icresp_check((const void *)r, &asked, &out, &fes, &fei),
		     -EINVAL);
}

Test(nvme_tcp_pdu, names)
{
	cr_assert_str_eq(ferry_nvme_tcp_pdu_str(FERRY_NVME_TCP_CAPSULE_CMD), "CapsuleCmd");
	cr_assert_str_eq(ferry_nvme_tcp_pdu_str(FERRY_NVME_TCP_R2T), "R2T");
	cr_assert_str_eq(ferry_nvme_tcp_pdu_str(FERRY_NVME_TCP_C2H_TERM), "C2HTermReq");
	cr_assert_not_null(ferry_nvme_tcp_pdu_str(0x08));
	cr_assert_not_null(ferry_nvme_tcp_pdu_str(0xFF));
	cr_assert_str_eq(ferry_nvme_tcp_fes_str(1), "invalid PDU header field");
	cr_assert_str_eq(ferry_nvme_tcp_fes_str(3), "header digest error");
	cr_assert_str_eq(ferry_nvme_tcp_fes_str(5), "data transfer limit exceeded");
	cr_assert_not_null(ferry_nvme_tcp_fes_str(0));
	cr_assert_not_null(ferry_nvme_tcp_fes_str(0x1234));
}
