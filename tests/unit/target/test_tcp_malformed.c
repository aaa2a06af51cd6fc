/*
 * Malformed PDUs against the "tcp" target transport, one test each: the offending connection
 * gets a C2HTermReq with the Fatal Error Status and Information the NVMe/TCP specification
 * names, then is closed; a healthy association on the same transport keeps doing verified
 * I/O. An H2CTermReq from the host closes the connection without an answer.
 */
#include <stddef.h>
#include "test_tcp_host.h"

static struct th_host A, Q; /* the healthy association */

static void up(void)
{
	th_tgt_up("buffers=256,max_h2c_data=16384");
	th_assoc(&A, &Q, 0);
	th_io_check(&Q, 0, 8, 0, 1);
}

static void down(void)
{
	th_close(&Q);
	th_close(&A);
	th_tgt_down();
}

TestSuite(tcp_malformed, .init = up, .fini = down, .timeout = 60);

/* Expects a C2HTermReq (fes, fei) on @p b, then the close; the healthy queue still works. */
static void expect_term(struct th_host *b, uint16_t fes, uint32_t fei)
{
	int rc = th_recv(b);
	cr_assert_eq(rc, 1, "no C2HTermReq (rc %d)", rc);
	cr_assert_eq(th_type(b), FERRY_NVME_TCP_C2H_TERM, "got PDU type 0x%x", th_type(b));
	const struct ferry_nvme_tcp_term *t = (const void *)b->hdr;
	cr_assert_eq(t->fes, fes, "FES %u, expected %u", t->fes, fes);
	cr_assert_eq(t->fei, fei, "FEI %u, expected %u", t->fei, fei);
	cr_assert_geq(t->ch.plen, FERRY_NVME_TCP_HLEN_TERM);
	cr_assert(th_wait_eof(b), "the connection stays open after the TermReq");
	th_close(b);
	th_io_check(&Q, 100, 16, 0, 2);
	struct ferry_tcp_transport_totals tot = {.size = sizeof(tot)};
	cr_assert_eq(ferry_tcp_transport_get_totals(TT.t, &tot), 0);
	cr_assert_geq(tot.pdu_errors, 1);
}

/* An I/O queue (qid 2) of the healthy controller on @p b, digests @p dgst. */
static void io_conn(struct th_host *b, uint8_t dgst)
{
	th_open(b);
	th_ic(b, 0, dgst);
	b->cntlid = A.cntlid;
	cr_assert_eq(th_connect(b, 2, 31, 0), 0);
}

static void send_raw(struct th_host *b, const void *p, size_t n)
{
	cr_assert_eq(th_send(b, p, n), 0);
}

/* A CapsuleCmd header (72 bytes) without data. */
static void cmd_hdr(uint8_t *p, uint8_t flags, uint8_t hlen, uint8_t pdo, uint32_t plen)
{
	memset(p, 0, 72);
	p[0] = FERRY_NVME_TCP_CAPSULE_CMD;
	p[1] = flags;
	p[2] = hlen;
	p[3] = pdo;
	memcpy(p + 4, &plen, 4);
	p[8] = FERRY_NVME_ADM_KEEP_ALIVE;
}

Test(tcp_malformed, bad_type)
{
	struct th_host b;
	th_open(&b);
	th_ic(&b, 0, 0);
	uint8_t p[24] = {0x0a, 0, 24, 0, 24, 0, 0, 0};
	send_raw(&b, p, sizeof(p));
	expect_term(&b, FERRY_NVME_TCP_FES_INVALID_HEADER, 0);
}

Test(tcp_malformed, c2h_type_from_host)
{
	struct th_host b;
	th_open(&b);
	th_ic(&b, 0, 0);
	uint8_t p[24] = {FERRY_NVME_TCP_CAPSULE_RESP, 0, 24, 0, 24, 0, 0, 0};
	send_raw(&b, p, sizeof(p));
	expect_term(&b, FERRY_NVME_TCP_FES_INVALID_HEADER, 0);
}

Test(tcp_malformed, bad_hlen)
{
	struct th_host b;
	th_open(&b);
	th_ic(&b, 0, 0);
	uint8_t p[72];
	cmd_hdr(p, 0, 70, 0, 72);
	send_raw(&b, p, sizeof(p));
	expect_term(&b, FERRY_NVME_TCP_FES_INVALID_HEADER, 2);
}

Test(tcp_malformed, bad_pdo)
{
	struct th_host b;
	th_open(&b);
	th_ic(&b, 0, 0);
	uint8_t p[72 + 4 + 16];
	memset(p, 0, sizeof(p));
	cmd_hdr(p, 0, 72, 76, 72 + 4 + 16);
	send_raw(&b, p, sizeof(p));
	expect_term(&b, FERRY_NVME_TCP_FES_INVALID_HEADER, 3);
}

Test(tcp_malformed, bad_plen)
{
	struct th_host b;
	th_open(&b);
	th_ic(&b, 0, 0);
	uint8_t p[72];
	cmd_hdr(p, 0, 72, 0, 80);
	send_raw(&b, p, sizeof(p));
	expect_term(&b, FERRY_NVME_TCP_FES_INVALID_HEADER, 4);
}

Test(tcp_malformed, digest_flag_not_negotiated)
{
	struct th_host b;
	th_open(&b);
	th_ic(&b, 0, 0);
	uint8_t p[76];
	cmd_hdr(p, FERRY_NVME_TCP_F_HDGST, 72, 0, 76);
	uint32_t crc = ferry_crc32c(0, p, 72);
	memcpy(p + 72, &crc, 4);
	send_raw(&b, p, sizeof(p));
	expect_term(&b, FERRY_NVME_TCP_FES_INVALID_HEADER, 1);
}

Test(tcp_malformed, header_digest_error)
{
	struct th_host b;
	th_open(&b);
	th_ic(&b, 0, FERRY_NVME_TCP_DGST_HDGST);
	uint8_t p[76];
	cmd_hdr(p, FERRY_NVME_TCP_F_HDGST, 72, 0, 76);
	uint32_t crc = ferry_crc32c(0, p, 72) ^ 0x80u;
	memcpy(p + 72, &crc, 4);
	send_raw(&b, p, sizeof(p));
	expect_term(&b, FERRY_NVME_TCP_FES_HDGST, 0);
}

/* An H2CData header for cid/ttag at datao with datal bytes (data follow, zeroes). */
static void send_h2c(struct th_host *b, uint16_t cid, uint16_t ttag, uint32_t datao, uint32_t datal,
		     uint8_t flags)
{
	uint8_t h[FERRY_NVME_TCP_TX_HDR_MAX];
	size_t hl = ferry_nvme_tcp_build_data(h, &b->p, FERRY_NVME_TCP_H2C_DATA, cid, ttag, datao,
					      datal, flags);
	cr_assert_gt(hl, 0);
	send_raw(b, h, hl);
	uint8_t *z = calloc(1, datal + 4);
	send_raw(b, z, datal); /* the target may already have closed: no assert on the rest */
	free(z);
}

Test(tcp_malformed, h2c_unknown_cccid)
{
	struct th_host b;
	io_conn(&b, 0);
	send_h2c(&b, 77, 0, 0, 512, FERRY_NVME_TCP_F_LAST_PDU);
	expect_term(&b, FERRY_NVME_TCP_FES_INVALID_HEADER,
		    offsetof(struct ferry_nvme_tcp_data, cccid));
}

/* Sends a 4 KiB write through R2T on @p b and receives the R2T. */
static struct ferry_nvme_tcp_r2t start_write(struct th_host *b, uint16_t *cid)
{
	struct ferry_nvme_sqe s = {0};
	s.opcode = FERRY_NVME_CMD_WRITE;
	s.cid = b->cid++;
	s.nsid = 1;
	s.cdw10 = 500;
	s.cdw12 = 7;
	th_sqe_sgl(&s, 0, 4096);
	th_send_cmd(b, &s, NULL, 0);
	cr_assert_eq(th_recv(b), 1);
	cr_assert_eq(th_type(b), FERRY_NVME_TCP_R2T);
	*cid = s.cid;
	struct ferry_nvme_tcp_r2t r;
	memcpy(&r, b->hdr, sizeof(r));
	cr_assert_eq(r.r2tl, 4096);
	return r;
}

Test(tcp_malformed, h2c_wrong_ttag)
{
	struct th_host b;
	io_conn(&b, 0);
	uint16_t cid;
	struct ferry_nvme_tcp_r2t r = start_write(&b, &cid);
	send_h2c(&b, cid, (uint16_t)(r.ttag + 1), 0, 4096, FERRY_NVME_TCP_F_LAST_PDU);
	expect_term(&b, FERRY_NVME_TCP_FES_INVALID_HEADER,
		    offsetof(struct ferry_nvme_tcp_data, ttag));
}

Test(tcp_malformed, h2c_datao_out_of_order)
{
	struct th_host b;
	io_conn(&b, 0);
	uint16_t cid;
	struct ferry_nvme_tcp_r2t r = start_write(&b, &cid);
	send_h2c(&b, cid, r.ttag, 1024, 1024, 0);
	expect_term(&b, FERRY_NVME_TCP_FES_DATA_OUT_OF_RANGE,
		    offsetof(struct ferry_nvme_tcp_data, datao));
}

Test(tcp_malformed, h2c_beyond_r2t)
{
	struct th_host b;
	io_conn(&b, 0);
	uint16_t cid;
	struct ferry_nvme_tcp_r2t r = start_write(&b, &cid);
	send_h2c(&b, cid, r.ttag, 0, 8192, FERRY_NVME_TCP_F_LAST_PDU);
	expect_term(&b, FERRY_NVME_TCP_FES_DATA_OUT_OF_RANGE,
		    offsetof(struct ferry_nvme_tcp_data, datal));
}

Test(tcp_malformed, h2c_datal_over_maxh2cdata)
{
	struct th_host b;
	io_conn(&b, 0);
	uint16_t cid;
	(void)start_write(&b, &cid);
	send_h2c(&b, cid, 0, 0, 32768, FERRY_NVME_TCP_F_LAST_PDU);
	expect_term(&b, FERRY_NVME_TCP_FES_DATA_LIMIT, offsetof(struct ferry_nvme_tcp_data, datal));
}

Test(tcp_malformed, h2c_last_pdu_missing)
{
	struct th_host b;
	io_conn(&b, 0);
	uint16_t cid;
	struct ferry_nvme_tcp_r2t r = start_write(&b, &cid);
	send_h2c(&b, cid, r.ttag, 0, 4096, 0);
	expect_term(&b, FERRY_NVME_TCP_FES_INVALID_HEADER, 1);
}

Test(tcp_malformed, icd_larger_than_advertised)
{
	struct th_host b;
	io_conn(&b, 0);
	static uint8_t data[8192 + 512];
	struct ferry_nvme_sqe s = {0};
	s.opcode = FERRY_NVME_CMD_WRITE;
	s.cid = b.cid++;
	s.nsid = 1;
	s.cdw12 = 16;
	th_sqe_sgl(&s, 1, sizeof(data));
	th_send_cmd(&b, &s, data, sizeof(data));
	expect_term(&b, FERRY_NVME_TCP_FES_DATA_LIMIT, 4);
}

Test(tcp_malformed, icreq_twice)
{
	struct th_host b;
	th_open(&b);
	th_ic(&b, 0, 0);
	uint8_t p[128];
	ferry_nvme_tcp_build_icreq(p, 0, 0, 0);
	send_raw(&b, p, sizeof(p));
	expect_term(&b, FERRY_NVME_TCP_FES_PDU_SEQUENCE, 0);
}

Test(tcp_malformed, capsule_before_icreq)
{
	struct th_host b;
	th_open(&b);
	uint8_t p[72];
	cmd_hdr(p, 0, 72, 0, 72);
	send_raw(&b, p, sizeof(p));
	expect_term(&b, FERRY_NVME_TCP_FES_PDU_SEQUENCE, 0);
}

Test(tcp_malformed, icreq_bad_pfv)
{
	struct th_host b;
	th_open(&b);
	uint8_t p[128];
	ferry_nvme_tcp_build_icreq(p, 0, 0, 0);
	p[8] = 1; /* PFV */
	send_raw(&b, p, sizeof(p));
	expect_term(&b, FERRY_NVME_TCP_FES_UNSUPPORTED, 8);
}

Test(tcp_malformed, h2c_termreq_from_host)
{
	struct th_host b;
	io_conn(&b, 0);
	uint8_t p[FERRY_NVME_TCP_TERM_MAX_PLEN];
	uint8_t bad[24] = {0};
	size_t n = ferry_nvme_tcp_build_term(p, FERRY_NVME_TCP_H2C_TERM, FERRY_NVME_TCP_FES_HDGST,
					     0, bad, sizeof(bad));
	send_raw(&b, p, n);
	/* no answer: the target closes */
	int rc = th_recv(&b);
	cr_assert_eq(rc, 0, "the target answered an H2CTermReq (rc %d)", rc);
	th_close(&b);
	th_io_check(&Q, 300, 8, 1, 3);
}

Test(tcp_malformed, garbage_then_healthy_reconnect)
{
	for (int i = 0; i < 4; i++) {
		struct th_host b;
		th_open(&b);
		uint8_t junk[300];
		th_fill(junk, sizeof(junk), (uint32_t)i);
		send_raw(&b, junk, sizeof(junk));
		cr_assert_eq(th_recv(&b), 1);
		cr_assert_eq(th_type(&b), FERRY_NVME_TCP_C2H_TERM);
		cr_assert(th_wait_eof(&b));
		th_close(&b);
	}
	struct th_host c;
	io_conn(&c, 0);
	th_io_check(&c, 700, 8, 0, 4);
	th_close(&c);
	th_io_check(&Q, 800, 8, 0, 5);
}
