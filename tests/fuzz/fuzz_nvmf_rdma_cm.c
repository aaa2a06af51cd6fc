/*
 * Fuzz target: the RDMA_CM private data parsers of the NVMe-oF RDMA binding
 * (sdk/src/rdma/cm.c), as a controller (connect request) and as a host (accept, reject) meet
 * them off the wire.
 *
 * Input: byte 0 picks the parser (% 3: request, accept, reject); bytes 1..6 are the
 * controller's limits for the request (max_qid, max_queue_depth, max_admin_depth, 16 bits
 * each, little endian); the rest is the private data, parsed from a heap copy of exactly its
 * size (an overread is an ASan report). Checked: a parser returns 0 or -EPROTO, never
 * anything else; an accepted request is within the limits and rebuilds (ferry_nvmf_rdma_cm_
 * req_build) into bytes that parse back to the same fields; a rejected one names a field
 * status (1..5) and INVALID_LEN iff it is shorter than 32 bytes; an accepted accept/reject
 * rebuilds and parses back equal; every status has a name.
 *
 * Seeds: built with -DFUZZ_NVMF_RDMA_CM_SEEDS this file is a program writing the seed corpus
 * into the directory given: what tests/fuzz/corpus/nvmf_rdma_cm/ was generated from.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ferry/module/rdma.h>

#define FUZZ_NAME "fuzz_nvmf_rdma_cm"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CFG 7u

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static void fuzz_req(const uint8_t *cfg, const uint8_t *pd, uint32_t len)
{
	struct ferry_nvmf_rdma_cm_limits lim = {.max_qid = le16(cfg + 1),
						.max_queue_depth = le16(cfg + 3),
						.max_admin_depth = le16(cfg + 5)};
	struct ferry_nvmf_rdma_cm_req r;
	uint16_t sts = 0xdead;
	int rc = ferry_nvmf_rdma_cm_req_parse(pd, len, &lim, &r, &sts);
	CHECK(rc == 0 || rc == -EPROTO);
	CHECK(ferry_nvmf_rdma_cm_sts_str(sts) != NULL);
	if (rc) {
		CHECK(sts >= FERRY_NVMF_RDMA_CM_INVALID_LEN && sts <= FERRY_NVMF_RDMA_CM_INVALID_HRQSIZE);
		CHECK((sts == FERRY_NVMF_RDMA_CM_INVALID_LEN) == (len < 32));
		return;
	}
	CHECK(len >= 32);
	CHECK(r.recfmt == 0);
	CHECK(r.qid <= lim.max_qid);
	uint32_t depth = r.qid ? lim.max_queue_depth : lim.max_admin_depth;
	CHECK(r.hsqsize >= 1 && (uint32_t)r.hsqsize + 1 <= depth);
	CHECK(r.hrqsize >= 1 && r.hrqsize <= depth);
	CHECK(le16(pd + 2) == r.qid && le16(pd + 4) == r.hrqsize && le16(pd + 6) == r.hsqsize);
	uint8_t b[32];
	CHECK(ferry_nvmf_rdma_cm_req_build(b, sizeof(b), r.qid, r.hrqsize, r.hsqsize) == 32);
	struct ferry_nvmf_rdma_cm_req r2;
	CHECK(ferry_nvmf_rdma_cm_req_parse(b, 32, &lim, &r2, &sts) == 0);
	CHECK(r2.qid == r.qid && r2.hrqsize == r.hrqsize && r2.hsqsize == r.hsqsize);
}

static void fuzz_rep(const uint8_t *pd, uint32_t len)
{
	struct ferry_nvmf_rdma_cm_rep rep;
	int rc = ferry_nvmf_rdma_cm_rep_parse(pd, len, &rep);
	CHECK(rc == 0 || rc == -EPROTO);
	if (rc) {
		CHECK(len < 4 || le16(pd) != 0 || le16(pd + 2) == 0);
		return;
	}
	CHECK(len >= 4 && rep.recfmt == 0 && rep.crqsize != 0 && rep.crqsize == le16(pd + 2));
	uint8_t b[32];
	CHECK(ferry_nvmf_rdma_cm_rep_build(b, sizeof(b), rep.crqsize) == 32);
	struct ferry_nvmf_rdma_cm_rep rep2;
	CHECK(ferry_nvmf_rdma_cm_rep_parse(b, 32, &rep2) == 0 && rep2.crqsize == rep.crqsize);
}

static void fuzz_rej(const uint8_t *pd, uint32_t len)
{
	uint16_t sts = 0xdead;
	int rc = ferry_nvmf_rdma_cm_rej_parse(pd, len, &sts);
	CHECK(rc == 0 || rc == -EPROTO);
	if (rc) {
		CHECK(len < 4 || le16(pd) != 0);
		return;
	}
	CHECK(sts == le16(pd + 2));
	CHECK(ferry_nvmf_rdma_cm_sts_str(sts) != NULL);
	uint8_t b[4];
	uint16_t sts2 = 0;
	CHECK(ferry_nvmf_rdma_cm_rej_build(b, sizeof(b), sts) == 4);
	CHECK(ferry_nvmf_rdma_cm_rej_parse(b, 4, &sts2) == 0 && sts2 == sts);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < CFG || size - CFG > 4096)
		return 0;
	uint32_t len = (uint32_t)(size - CFG);
	uint8_t *pd = malloc(len ? len : 1);
	if (!pd)
		return 0;
	memcpy(pd, data + CFG, len);
	const uint8_t *p = len ? pd : NULL; /* an empty private data may come as NULL */
	switch (data[0] % 3) {
	case 0:
		fuzz_req(data, p, len);
		break;
	case 1:
		fuzz_rep(p, len);
		break;
	default:
		fuzz_rej(p, len);
		break;
	}
	free(pd);
	return 0;
}

#ifdef FUZZ_NVMF_RDMA_CM_SEEDS
/* ---- seed corpus writer ------------------------------------------------------------------ */

static void write_seed(const char *dir, const char *name, const uint8_t *b, size_t n)
{
	fuzz_write_seed(dir, name, b, n);
	LLVMFuzzerTestOneInput(b, n); /* every seed passes the checks */
}

/* Limits: max_qid 8, I/O depth 128, admin depth 32. */
static size_t cfg(uint8_t *b, uint8_t which)
{
	const uint8_t c[CFG] = {which, 8, 0, 128, 0, 32, 0};
	memcpy(b, c, CFG);
	return CFG;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s <dir>\n", argv[0]);
		return 2;
	}
	const char *dir = argv[1];
	uint8_t b[CFG + 64];
	size_t n;
	struct {
		const char *name;
		uint16_t qid, hrq, hsq;
		size_t len;
	} reqs[] = {{"req_linux_admin", 0, 32, 31, 32},  {"req_linux_io", 3, 128, 127, 32},
		    {"req_padded", 1, 16, 15, 56},        {"req_short", 1, 16, 15, 31},
		    {"req_bad_qid", 9, 16, 15, 32},       {"req_bad_hsq", 1, 16, 128, 32},
		    {"req_bad_hrq", 1, 129, 15, 32},      {"req_admin_too_deep", 0, 33, 32, 32},
		    {"req_zero_sizes", 2, 0, 0, 32}};
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		n = cfg(b, 0);
		memset(b + n, 0, 56);
		ferry_nvmf_rdma_cm_req_build(b + n, 32, reqs[i].qid, reqs[i].hrq, reqs[i].hsq);
		write_seed(dir, reqs[i].name, b, n + reqs[i].len);
	}
	n = cfg(b, 0);
	ferry_nvmf_rdma_cm_req_build(b + n, 32, 1, 16, 15);
	b[n] = 1; /* recfmt 1 */
	write_seed(dir, "req_bad_recfmt", b, n + 32);

	n = cfg(b, 1);
	n += ferry_nvmf_rdma_cm_rep_build(b + n, 32, 128);
	write_seed(dir, "rep_ok", b, n);
	write_seed(dir, "rep_min", b, CFG + 4);
	write_seed(dir, "rep_short", b, CFG + 3);
	n = cfg(b, 1);
	n += ferry_nvmf_rdma_cm_rep_build(b + n, 32, 0);
	write_seed(dir, "rep_crqsize0", b, n);

	n = cfg(b, 2);
	n += ferry_nvmf_rdma_cm_rej_build(b + n, 4, FERRY_NVMF_RDMA_CM_INVALID_HSQSIZE);
	write_seed(dir, "rej_hsqsize", b, n);
	write_seed(dir, "rej_short", b, n - 1);
	n = cfg(b, 2);
	n += ferry_nvmf_rdma_cm_rej_build(b + n, 4, 0x1234);
	write_seed(dir, "rej_unknown_sts", b, n);
	return 0;
}
#endif
