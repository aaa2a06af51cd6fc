/*
 * RDMA_CM private data codec: every field of a connect request checked against the limits,
 * each malformed request rejected with the status naming its field (never a crash, never a
 * read past the length given: parsed from a heap copy of exactly that size, for ASan), what
 * Linux's nvme-rdma host sends accepted, the builders byte for byte, the accept and reject
 * parsers, the status names.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include <ferry/module/rdma.h>

static const struct ferry_nvmf_rdma_cm_limits lim = {
	.max_qid = 8, .max_queue_depth = 128, .max_admin_depth = 32};

/* A request's 32 bytes as a host writes them, little endian. */
static void req_bytes(uint8_t *b, uint16_t recfmt, uint16_t qid, uint16_t hrq, uint16_t hsq,
		      uint16_t cntlid)
{
	memset(b, 0, 32);
	b[0] = (uint8_t)recfmt, b[1] = (uint8_t)(recfmt >> 8);
	b[2] = (uint8_t)qid, b[3] = (uint8_t)(qid >> 8);
	b[4] = (uint8_t)hrq, b[5] = (uint8_t)(hrq >> 8);
	b[6] = (uint8_t)hsq, b[7] = (uint8_t)(hsq >> 8);
	b[8] = (uint8_t)cntlid, b[9] = (uint8_t)(cntlid >> 8);
}

/* Parse @p len bytes of @p b from a heap copy of exactly that size (ASan sees an overread). */
static int parse(const uint8_t *b, uint32_t len, struct ferry_nvmf_rdma_cm_req *r, uint16_t *sts)
{
	uint8_t *c = malloc(len ? len : 1);
	cr_assert(c);
	memcpy(c, b, len);
	*sts = 0xdead;
	int rc = ferry_nvmf_rdma_cm_req_parse(c, len, &lim, r, sts);
	free(c);
	return rc;
}

static void expect_reject(uint16_t recfmt, uint16_t qid, uint16_t hrq, uint16_t hsq, uint16_t want)
{
	uint8_t b[32];
	struct ferry_nvmf_rdma_cm_req r;
	uint16_t sts;
	req_bytes(b, recfmt, qid, hrq, hsq, 0xffff);
	cr_assert_eq(parse(b, 32, &r, &sts), -EPROTO, "qid %u hrq %u hsq %u", qid, hrq, hsq);
	cr_assert_eq(sts, want, "qid %u hrq %u hsq %u: sts %#x (%s), want %#x", qid, hrq, hsq, sts,
		     ferry_nvmf_rdma_cm_sts_str(sts), want);
}

static void expect_accept(uint16_t qid, uint16_t hrq, uint16_t hsq)
{
	uint8_t b[32];
	struct ferry_nvmf_rdma_cm_req r;
	uint16_t sts;
	req_bytes(b, 0, qid, hrq, hsq, 0x1234);
	cr_assert_eq(parse(b, 32, &r, &sts), 0, "qid %u hrq %u hsq %u: sts %#x", qid, hrq, hsq, sts);
	cr_assert_eq(sts, 0);
	cr_assert_eq(r.recfmt, 0);
	cr_assert_eq(r.qid, qid);
	cr_assert_eq(r.hrqsize, hrq);
	cr_assert_eq(r.hsqsize, hsq);
	cr_assert_eq(r.cntlid, 0x1234);
}

Test(rdma_cm, linux_host_admin_and_io_accepted)
{
	expect_accept(0, 32, 31);   /* nvme-rdma admin queue: NVME_AQ_DEPTH */
	expect_accept(1, 128, 127); /* I/O queue of queue_size 128 */
	expect_accept(8, 128, 127); /* the last I/O queue */
	expect_accept(3, 1, 1);     /* smallest */
	expect_accept(0, 1, 1);
}

Test(rdma_cm, recfmt)
{
	expect_reject(1, 1, 16, 15, FERRY_NVMF_RDMA_CM_INVALID_RECFMT);
	expect_reject(0xffff, 0, 32, 31, FERRY_NVMF_RDMA_CM_INVALID_RECFMT);
}

Test(rdma_cm, qid)
{
	expect_reject(0, 9, 16, 15, FERRY_NVMF_RDMA_CM_INVALID_QID);
	expect_reject(0, 0xffff, 16, 15, FERRY_NVMF_RDMA_CM_INVALID_QID);
}

Test(rdma_cm, hsqsize_bounds_per_queue_kind)
{
	expect_reject(0, 1, 16, 0, FERRY_NVMF_RDMA_CM_INVALID_HSQSIZE);
	expect_reject(0, 1, 16, 128, FERRY_NVMF_RDMA_CM_INVALID_HSQSIZE); /* 129 entries */
	expect_reject(0, 1, 16, 0xffff, FERRY_NVMF_RDMA_CM_INVALID_HSQSIZE);
	/* The admin limit applies to qid 0: 31 is its maximum, 32 (33 entries) is not. */
	expect_reject(0, 0, 32, 32, FERRY_NVMF_RDMA_CM_INVALID_HSQSIZE);
	expect_reject(0, 0, 32, 127, FERRY_NVMF_RDMA_CM_INVALID_HSQSIZE);
	expect_reject(0, 0, 32, 0, FERRY_NVMF_RDMA_CM_INVALID_HSQSIZE);
}

Test(rdma_cm, hrqsize_bounds_per_queue_kind)
{
	expect_reject(0, 1, 0, 15, FERRY_NVMF_RDMA_CM_INVALID_HRQSIZE);
	expect_reject(0, 1, 129, 127, FERRY_NVMF_RDMA_CM_INVALID_HRQSIZE);
	expect_reject(0, 1, 0xffff, 127, FERRY_NVMF_RDMA_CM_INVALID_HRQSIZE);
	expect_reject(0, 0, 33, 31, FERRY_NVMF_RDMA_CM_INVALID_HRQSIZE);
	expect_reject(0, 0, 128, 31, FERRY_NVMF_RDMA_CM_INVALID_HRQSIZE);
	expect_reject(0, 0, 0, 31, FERRY_NVMF_RDMA_CM_INVALID_HRQSIZE);
}

Test(rdma_cm, field_order_of_checks)
{
	/* Several fields wrong: the status names the first in wire order. */
	expect_reject(1, 99, 0, 0, FERRY_NVMF_RDMA_CM_INVALID_RECFMT);
	expect_reject(0, 99, 0, 0, FERRY_NVMF_RDMA_CM_INVALID_QID);
	expect_reject(0, 1, 0, 0, FERRY_NVMF_RDMA_CM_INVALID_HSQSIZE);
}

Test(rdma_cm, short_and_long_buffers)
{
	uint8_t b[56];
	struct ferry_nvmf_rdma_cm_req r;
	uint16_t sts;
	memset(b, 0xee, sizeof(b));
	req_bytes(b, 0, 1, 16, 15, 0xffff);
	for (uint32_t len = 0; len < 32; len++) {
		cr_assert_eq(parse(b, len, &r, &sts), -EPROTO, "len %u", len);
		cr_assert_eq(sts, FERRY_NVMF_RDMA_CM_INVALID_LEN, "len %u", len);
	}
	cr_assert_eq(parse(b, 32, &r, &sts), 0);
	cr_assert_eq(parse(b, 56, &r, &sts), 0); /* padded by the CM: fine */
	cr_assert_eq(r.hrqsize, 16);
	sts = 0xdead;
	cr_assert_eq(ferry_nvmf_rdma_cm_req_parse(NULL, 0, &lim, &r, &sts), -EPROTO);
	cr_assert_eq(sts, FERRY_NVMF_RDMA_CM_INVALID_LEN);
}

Test(rdma_cm, null_arguments)
{
	uint8_t b[32];
	struct ferry_nvmf_rdma_cm_req r;
	struct ferry_nvmf_rdma_cm_rep rep;
	uint16_t sts;
	req_bytes(b, 0, 1, 16, 15, 0);
	cr_assert_eq(ferry_nvmf_rdma_cm_req_parse(NULL, 32, &lim, &r, &sts), -EINVAL);
	cr_assert_eq(ferry_nvmf_rdma_cm_req_parse(b, 32, NULL, &r, &sts), -EINVAL);
	cr_assert_eq(ferry_nvmf_rdma_cm_req_parse(b, 32, &lim, NULL, &sts), -EINVAL);
	cr_assert_eq(ferry_nvmf_rdma_cm_req_parse(b, 32, &lim, &r, NULL), -EINVAL);
	cr_assert_eq(ferry_nvmf_rdma_cm_rep_parse(NULL, 32, &rep), -EINVAL);
	cr_assert_eq(ferry_nvmf_rdma_cm_rep_parse(b, 32, NULL), -EINVAL);
	cr_assert_eq(ferry_nvmf_rdma_cm_rej_parse(NULL, 4, &sts), -EINVAL);
	cr_assert_eq(ferry_nvmf_rdma_cm_rej_parse(b, 4, NULL), -EINVAL);
	cr_assert_eq(ferry_nvmf_rdma_cm_req_build(NULL, 32, 1, 2, 1), 0);
	cr_assert_eq(ferry_nvmf_rdma_cm_rep_build(NULL, 32, 1), 0);
	cr_assert_eq(ferry_nvmf_rdma_cm_rej_build(NULL, 4, 1), 0);
}

Test(rdma_cm, req_build_bytes_and_round_trip)
{
	uint8_t b[40];
	memset(b, 0xaa, sizeof(b));
	cr_assert_eq(ferry_nvmf_rdma_cm_req_build(b, 31, 1, 2, 1), 0);
	cr_assert_eq(b[0], 0xaa, "nothing written when too small");
	cr_assert_eq(ferry_nvmf_rdma_cm_req_build(b, sizeof(b), 0x0102, 0x0304, 0x0506), 32);
	const uint8_t want[10] = {0, 0, 0x02, 0x01, 0x04, 0x03, 0x06, 0x05, 0xff, 0xff};
	cr_assert_arr_eq(b, want, sizeof(want));
	for (int i = 10; i < 32; i++)
		cr_assert_eq(b[i], 0, "reserved byte %d", i);
	cr_assert_eq(b[32], 0xaa, "no write past 32 bytes");

	cr_assert_eq(ferry_nvmf_rdma_cm_req_build(b, 32, 5, 100, 99), 32);
	struct ferry_nvmf_rdma_cm_req r;
	uint16_t sts;
	cr_assert_eq(parse(b, 32, &r, &sts), 0);
	cr_assert_eq(r.qid, 5);
	cr_assert_eq(r.hrqsize, 100);
	cr_assert_eq(r.hsqsize, 99);
	cr_assert_eq(r.cntlid, 0xffff);
}

Test(rdma_cm, accept)
{
	uint8_t b[32];
	struct ferry_nvmf_rdma_cm_rep rep;
	memset(b, 0xaa, sizeof(b));
	cr_assert_eq(ferry_nvmf_rdma_cm_rep_build(b, 31, 64), 0);
	cr_assert_eq(ferry_nvmf_rdma_cm_rep_build(b, 32, 0x0140), 32);
	cr_assert_eq(b[0], 0);
	cr_assert_eq(b[1], 0);
	cr_assert_eq(b[2], 0x40);
	cr_assert_eq(b[3], 0x01);
	for (int i = 4; i < 32; i++)
		cr_assert_eq(b[i], 0);
	cr_assert_eq(ferry_nvmf_rdma_cm_rep_parse(b, 32, &rep), 0);
	cr_assert_eq(rep.crqsize, 0x140);
	cr_assert_eq(rep.recfmt, 0);
	cr_assert_eq(ferry_nvmf_rdma_cm_rep_parse(b, 4, &rep), 0, "4 bytes are enough");
	cr_assert_eq(rep.crqsize, 0x140);
	for (uint32_t len = 0; len < 4; len++)
		cr_assert_eq(ferry_nvmf_rdma_cm_rep_parse(b, len, &rep), -EPROTO, "len %u", len);
	b[2] = b[3] = 0;
	cr_assert_eq(ferry_nvmf_rdma_cm_rep_parse(b, 32, &rep), -EPROTO, "crqsize 0");
	b[2] = 1;
	b[0] = 1;
	cr_assert_eq(ferry_nvmf_rdma_cm_rep_parse(b, 32, &rep), -EPROTO, "recfmt 1");
}

Test(rdma_cm, reject)
{
	uint8_t b[8];
	uint16_t sts = 0;
	memset(b, 0xaa, sizeof(b));
	cr_assert_eq(ferry_nvmf_rdma_cm_rej_build(b, 3, 1), 0);
	cr_assert_eq(ferry_nvmf_rdma_cm_rej_build(b, 8, FERRY_NVMF_RDMA_CM_INVALID_HSQSIZE), 4);
	const uint8_t want[5] = {0, 0, 0x04, 0, 0xaa};
	cr_assert_arr_eq(b, want, sizeof(want));
	cr_assert_eq(ferry_nvmf_rdma_cm_rej_parse(b, 4, &sts), 0);
	cr_assert_eq(sts, FERRY_NVMF_RDMA_CM_INVALID_HSQSIZE);
	for (uint32_t len = 0; len < 4; len++)
		cr_assert_eq(ferry_nvmf_rdma_cm_rej_parse(b, len, &sts), -EPROTO, "len %u", len);
	b[1] = 1;
	cr_assert_eq(ferry_nvmf_rdma_cm_rej_parse(b, 4, &sts), -EPROTO, "recfmt 0x100");
}

Test(rdma_cm, status_names)
{
	cr_assert_str_eq(ferry_nvmf_rdma_cm_sts_str(FERRY_NVMF_RDMA_CM_INVALID_HSQSIZE),
			 "invalid HSQSIZE");
	cr_assert_str_eq(ferry_nvmf_rdma_cm_sts_str(FERRY_NVMF_RDMA_CM_INVALID_HRQSIZE),
			 "invalid HRQSIZE");
	cr_assert_str_eq(ferry_nvmf_rdma_cm_sts_str(FERRY_NVMF_RDMA_CM_INVALID_QID), "invalid QID");
	cr_assert_str_eq(ferry_nvmf_rdma_cm_sts_str(0), "unknown");
	cr_assert_str_eq(ferry_nvmf_rdma_cm_sts_str(0x1234), "unknown");
	for (uint16_t s = 1; s <= 9; s++)
		cr_assert_str_neq(ferry_nvmf_rdma_cm_sts_str(s), "unknown", "sts %u", s);
}
