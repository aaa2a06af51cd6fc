/*
 * Fuzz target: the keyed SGL parser of the NVMe-oF RDMA binding (sdk/src/rdma/sgl.c), as a
 * controller meets a command capsule off the wire.
 *
 * Input: byte 0 gives max_desc (1 + b % FERRY_NVMF_RDMA_SGL_MAX); bytes 1..4 max_len (little
 * endian); bytes 5..68 the SQE; the rest the in-capsule data, parsed from a heap copy of
 * exactly its size (an overread is an ASan report). Checked: the parser returns 0 or
 * -EPROTO; a failure carries a generic status naming an SGL problem (or Invalid Field for the
 * PSDT); a success has a known kind, at most max_desc descriptors, in-capsule data inside the
 * in-capsule bytes, descriptor lengths that sum to len <= max_len; a parsed KEYED result
 * rebuilt with ferry_nvmf_rdma_sgl_build() parses back equal.
 *
 * Seeds: built with -DFUZZ_NVMF_RDMA_SGL_SEEDS this file is a program writing the seed
 * corpus into the directory given: what tests/fuzz/corpus/nvmf_rdma_sgl/ was generated from.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ferry/module/rdma.h>

#define FUZZ_NAME "fuzz_nvmf_rdma_sgl"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HDR (5u + 64u)

static int known_status(uint16_t st)
{
	switch (st) {
	case FERRY_NVME_STATUS(FERRY_NVME_SCT_GENERIC, FERRY_NVME_SC_INVALID_FIELD):
	case FERRY_NVME_STATUS(FERRY_NVME_SCT_GENERIC, FERRY_NVME_SC_SGL_TYPE):
	case FERRY_NVME_STATUS(FERRY_NVME_SCT_GENERIC, FERRY_NVME_SC_DATA_SGL_LEN):
	case FERRY_NVME_STATUS(FERRY_NVME_SCT_GENERIC, FERRY_NVME_SC_INVALID_SGL_NUM):
	case FERRY_NVME_STATUS(FERRY_NVME_SCT_GENERIC, FERRY_NVME_SC_SGL_OFFSET):
		return 1;
	default:
		return 0;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < HDR || size - HDR > 65536)
		return 0;
	uint32_t max_desc = 1 + data[0] % FERRY_NVMF_RDMA_SGL_MAX;
	uint32_t max_len = (uint32_t)data[1] | ((uint32_t)data[2] << 8) |
			   ((uint32_t)data[3] << 16) | ((uint32_t)data[4] << 24);
	struct ferry_nvme_sqe sqe;
	memcpy(&sqe, data + 5, sizeof(sqe));
	uint32_t icd_len = (uint32_t)(size - HDR);
	uint8_t *icd = icd_len ? malloc(icd_len) : NULL;
	if (icd_len && !icd)
		return 0;
	if (icd_len)
		memcpy(icd, data + HDR, icd_len);

	struct ferry_nvmf_rdma_sgl out;
	uint16_t st = 0xdead;
	int rc = ferry_nvmf_rdma_sgl_parse(&sqe, icd, icd_len, max_desc, max_len, &out, &st);
	CHECK(rc == 0 || rc == -EPROTO);
	if (rc) {
		CHECK(known_status(st));
		free(icd);
		return 0;
	}
	CHECK(out.ndesc <= max_desc && out.ndesc <= FERRY_NVMF_RDMA_SGL_MAX);
	CHECK(out.len <= max_len);
	switch (out.kind) {
	case FERRY_NVMF_RDMA_SGL_NONE:
		CHECK(out.len == 0 && out.ndesc == 0);
		break;
	case FERRY_NVMF_RDMA_SGL_ICD:
		CHECK(out.ndesc == 0 && out.len > 0);
		CHECK(out.icd_off <= icd_len && out.len <= icd_len - out.icd_off);
		break;
	case FERRY_NVMF_RDMA_SGL_KEYED: {
		CHECK(out.ndesc >= 1);
		uint64_t sum = 0;
		for (uint32_t i = 0; i < out.ndesc; i++) {
			CHECK(out.desc[i].len > 0 && out.desc[i].len < (1u << 24));
			CHECK(out.desc[i].invalidate <= 1);
			sum += out.desc[i].len;
		}
		CHECK(sum == out.len);
		/* Rebuild and parse back. */
		struct ferry_nvme_sqe sqe2;
		uint8_t list[16 * FERRY_NVMF_RDMA_SGL_MAX];
		uint32_t used = 0;
		memset(&sqe2, 0, sizeof(sqe2));
		CHECK(ferry_nvmf_rdma_sgl_build(&sqe2, list, sizeof(list), out.desc, out.ndesc,
						&used) == 0);
		CHECK(used == (out.ndesc > 1 ? 16 * out.ndesc : 0));
		struct ferry_nvmf_rdma_sgl back;
		CHECK(ferry_nvmf_rdma_sgl_parse(&sqe2, used ? list : NULL, used, max_desc, max_len,
						&back, &st) == 0);
		CHECK(back.kind == FERRY_NVMF_RDMA_SGL_KEYED && back.ndesc == out.ndesc &&
		      back.len == out.len);
		for (uint32_t i = 0; i < out.ndesc; i++)
			CHECK(back.desc[i].addr == out.desc[i].addr &&
			      back.desc[i].len == out.desc[i].len &&
			      back.desc[i].key == out.desc[i].key &&
			      back.desc[i].invalidate == out.desc[i].invalidate);
		break;
	}
	default:
		CHECK(!"unknown kind");
	}
	free(icd);
	return 0;
}

#ifdef FUZZ_NVMF_RDMA_SGL_SEEDS
/* ---- seed corpus writer ------------------------------------------------------------------ */

struct seed {
	uint8_t b[HDR + 4096];
	size_t n;
};

/* The seed's SQE, copied into its bytes by write_seed() (the bytes are not aligned for it). */
static struct ferry_nvme_sqe g_sqe;

static void write_seed(const char *dir, const char *name, struct seed *s)
{
	memcpy(s->b + 5, &g_sqe, sizeof(g_sqe));
	fuzz_write_seed(dir, name, s->b, s->n);
	LLVMFuzzerTestOneInput(s->b, s->n); /* every seed passes the checks */
}

/* max_desc 16, max_len 1 MiB, a write SQE; the caller fills the data pointer. */
static struct ferry_nvme_sqe *begin(struct seed *s)
{
	memset(s, 0, sizeof(*s));
	s->b[0] = FERRY_NVMF_RDMA_SGL_MAX - 1;
	s->b[3] = 0x10; /* 1 << 20 */
	struct ferry_nvme_sqe *sqe = &g_sqe;
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = FERRY_NVME_CMD_WRITE;
	sqe->cid = 7;
	s->n = HDR;
	return sqe;
}

static void icd_bytes(struct seed *s, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		s->b[s->n + i] = (uint8_t)(i * 7 + 1);
	s->n += n;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s <dir>\n", argv[0]);
		return 2;
	}
	const char *dir = argv[1];
	static struct seed s;
	struct ferry_nvmf_rdma_kdesc d[FERRY_NVMF_RDMA_SGL_MAX];
	for (uint32_t i = 0; i < FERRY_NVMF_RDMA_SGL_MAX; i++)
		d[i] = (struct ferry_nvmf_rdma_kdesc){.addr = 0x7f0000001000ull + 0x10000 * i,
						      .len = 4096 * (i + 1),
						      .key = 0x1234 + i,
						      .invalidate = (uint8_t)(i & 1)};
	uint32_t used;
	struct ferry_nvme_sqe *sqe;

	sqe = begin(&s);
	ferry_nvmf_rdma_sgl_build(sqe, NULL, 0, d, 1, &used);
	write_seed(dir, "keyed_one", &s);
	d[0].invalidate = 1;
	sqe = begin(&s);
	ferry_nvmf_rdma_sgl_build(sqe, NULL, 0, d, 1, &used);
	write_seed(dir, "keyed_invalidate", &s);
	sqe = begin(&s);
	ferry_nvmf_rdma_sgl_build(sqe, NULL, 0, NULL, 0, &used);
	write_seed(dir, "keyed_null", &s);
	sqe = begin(&s);
	ferry_nvmf_rdma_sgl_build(sqe, NULL, 0, d, 1, &used);
	s.b[0] = 0; /* max_len 0 */
	s.b[3] = 0;
	write_seed(dir, "keyed_over_mdts", &s);
	for (uint32_t n = 2; n <= FERRY_NVMF_RDMA_SGL_MAX; n *= 2) {
		char name[32];
		sqe = begin(&s);
		ferry_nvmf_rdma_sgl_build(sqe, s.b + HDR, 4096, d, n, &used);
		s.n += used;
		snprintf(name, sizeof(name), "list_%u", n);
		write_seed(dir, name, &s);
	}
	sqe = begin(&s);
	ferry_nvmf_rdma_sgl_build(sqe, s.b + HDR, 4096, d, 4, &used);
	s.n += used - 1;
	write_seed(dir, "list_cut", &s);
	sqe = begin(&s);
	ferry_nvmf_rdma_sgl_build(sqe, s.b + HDR, 4096, d, 4, &used);
	s.b[HDR + 16 + 15] = 0x01; /* an unkeyed entry */
	s.n += used;
	write_seed(dir, "list_unkeyed_entry", &s);

	sqe = begin(&s);
	ferry_nvmf_rdma_sgl_build_icd(sqe, 512);
	icd_bytes(&s, 512);
	write_seed(dir, "icd_512", &s);
	sqe = begin(&s);
	ferry_nvmf_rdma_sgl_build_icd(sqe, 512);
	icd_bytes(&s, 511);
	write_seed(dir, "icd_short", &s);
	sqe = begin(&s);
	ferry_nvmf_rdma_sgl_build_icd(sqe, 100);
	sqe->dptr.sgl.address = 64; /* offset 64 */
	icd_bytes(&s, 200);
	write_seed(dir, "icd_offset", &s);

	sqe = begin(&s);
	ferry_nvmf_rdma_sgl_build(sqe, NULL, 0, d, 1, &used);
	sqe->flags = 0; /* PRPs */
	write_seed(dir, "psdt_prp", &s);
	sqe = begin(&s);
	ferry_nvmf_rdma_sgl_build(sqe, NULL, 0, d, 1, &used);
	sqe->dptr.sgl.id = FERRY_NVME_SGL_ID(FERRY_NVME_SGL_SEGMENT, 1);
	write_seed(dir, "type_segment", &s);
	return 0;
}
#endif
