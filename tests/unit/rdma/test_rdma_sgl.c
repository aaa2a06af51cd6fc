/*
 * Keyed SGL codec: the PSDT check, every descriptor identifier byte (type x subtype), keyed
 * blocks (24-bit length, 32-bit key, null descriptor, MDTS), in-capsule data blocks (offset
 * and length bounds, 64-bit offsets that would wrap), last-segment lists in the in-capsule
 * data (length multiple of 16, counts 0..max+1, an unkeyed entry anywhere, a zero-length
 * entry, totals past MDTS), the builders byte for byte, and build -> parse round trips.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include <ferry/module/rdma.h>

#define ST(sc) FERRY_NVME_STATUS(FERRY_NVME_SCT_GENERIC, sc)
#define MAX_LEN (1u << 20)

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A raw 16-byte descriptor. */
static void desc(uint8_t *d, uint64_t addr, uint32_t len, int len_bytes, uint32_t key, uint8_t id)
{
	memset(d, 0, 16);
	put_le(d, addr, 8);
	put_le(d + 8, len, len_bytes);
	if (len_bytes == 3)
		put_le(d + 11, key, 4);
	d[15] = id;
}

static void sqe_init(struct ferry_nvme_sqe *sqe, unsigned int psdt, const uint8_t *d)
{
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = FERRY_NVME_CMD_WRITE;
	sqe->flags = (uint8_t)(psdt << FERRY_NVME_FLAGS_PSDT_SHIFT);
	memcpy(&sqe->dptr, d, 16);
}

/* Parse with the ICD in a heap copy of exactly icd_len bytes (ASan sees any overread). */
static int parse(const struct ferry_nvme_sqe *sqe, const uint8_t *icd, uint32_t icd_len,
		 uint32_t max_desc, struct ferry_nvmf_rdma_sgl *out, uint16_t *st)
{
	uint8_t *c = icd_len ? malloc(icd_len) : NULL;
	if (icd_len)
		memcpy(c, icd, icd_len);
	*st = 0xdead;
	int rc = ferry_nvmf_rdma_sgl_parse(sqe, c, icd_len, max_desc, MAX_LEN, out, st);
	free(c);
	return rc;
}

static void expect_fail(const struct ferry_nvme_sqe *sqe, const uint8_t *icd, uint32_t icd_len,
			uint32_t max_desc, uint16_t want, const char *what)
{
	struct ferry_nvmf_rdma_sgl out;
	uint16_t st;
	cr_assert_eq(parse(sqe, icd, icd_len, max_desc, &out, &st), -EPROTO, "%s", what);
	cr_assert_eq(st, want, "%s: status %#x, want %#x", what, st, want);
}

Test(rdma_sgl, psdt_must_be_sgl)
{
	uint8_t d[16];
	struct ferry_nvme_sqe sqe;
	struct ferry_nvmf_rdma_sgl out;
	uint16_t st;
	desc(d, 0x1000, 4096, 3, 0x11223344, 0x40);
	sqe_init(&sqe, 0, d);
	expect_fail(&sqe, NULL, 0, 1, ST(FERRY_NVME_SC_INVALID_FIELD), "PSDT 00b");
	sqe_init(&sqe, 3, d);
	expect_fail(&sqe, NULL, 0, 1, ST(FERRY_NVME_SC_INVALID_FIELD), "PSDT 11b");
	for (unsigned int psdt = 1; psdt <= 2; psdt++) {
		sqe_init(&sqe, psdt, d);
		sqe.flags |= 0x1; /* FUSE bits do not disturb the PSDT */
		cr_assert_eq(parse(&sqe, NULL, 0, 1, &out, &st), 0, "PSDT %u", psdt);
		cr_assert_eq(out.kind, FERRY_NVMF_RDMA_SGL_KEYED);
	}
}

Test(rdma_sgl, keyed_block)
{
	uint8_t d[16];
	struct ferry_nvme_sqe sqe;
	struct ferry_nvmf_rdma_sgl out;
	uint16_t st;
	desc(d, 0xfedcba9876543210ull, 0xabcdef, 3, 0x11223344, 0x40);
	sqe_init(&sqe, 1, d);
	cr_assert_eq(ferry_nvmf_rdma_sgl_parse(&sqe, NULL, 0, 1, 1u << 24, &out, &st), 0);
	cr_assert_eq(out.kind, FERRY_NVMF_RDMA_SGL_KEYED);
	cr_assert_eq(out.ndesc, 1);
	cr_assert_eq(out.len, 0xabcdef);
	cr_assert_eq(out.desc[0].addr, 0xfedcba9876543210ull);
	cr_assert_eq(out.desc[0].len, 0xabcdef);
	cr_assert_eq(out.desc[0].key, 0x11223344);
	cr_assert_eq(out.desc[0].invalidate, 0);

	desc(d, 0x2000, 512, 3, 0xdeadbeef, 0x4f);
	sqe_init(&sqe, 1, d);
	cr_assert_eq(parse(&sqe, NULL, 0, 1, &out, &st), 0);
	cr_assert_eq(out.desc[0].invalidate, 1);
	cr_assert_eq(out.desc[0].key, 0xdeadbeef);
	cr_assert_eq(out.len, 512);

	/* Over MDTS by one byte. */
	desc(d, 0x2000, MAX_LEN + 1, 3, 1, 0x40);
	sqe_init(&sqe, 1, d);
	expect_fail(&sqe, NULL, 0, 1, ST(FERRY_NVME_SC_DATA_SGL_LEN), "len > max_len");
	desc(d, 0x2000, MAX_LEN, 3, 1, 0x40);
	sqe_init(&sqe, 1, d);
	cr_assert_eq(parse(&sqe, NULL, 0, 1, &out, &st), 0);
	cr_assert_eq(out.len, MAX_LEN);
}

Test(rdma_sgl, null_keyed_is_none)
{
	uint8_t d[16];
	struct ferry_nvme_sqe sqe;
	struct ferry_nvmf_rdma_sgl out;
	uint16_t st;
	desc(d, 0x1234, 0, 3, 0x99, 0x40);
	sqe_init(&sqe, 1, d);
	cr_assert_eq(parse(&sqe, NULL, 0, 1, &out, &st), 0);
	cr_assert_eq(out.kind, FERRY_NVMF_RDMA_SGL_NONE);
	cr_assert_eq(out.len, 0);
	cr_assert_eq(out.ndesc, 0);
}

Test(rdma_sgl, identifier_matrix)
{
	uint8_t d[16], icd[64] = {0};
	struct ferry_nvme_sqe sqe;
	/* A valid keyed entry in the ICD for the last-segment case. */
	desc(icd, 0x5000, 100, 3, 7, 0x40);
	for (unsigned int id = 0; id < 256; id++) {
		unsigned int type = id >> 4, sub = id & 0xf;
		int keyed = type == 4 && (sub == 0 || sub == 0xf);
		int icdblk = type == 0 && sub == 1;
		int lastseg = type == 3 && sub == 1;
		if (keyed)
			desc(d, 0x1000, 64, 3, 5, (uint8_t)id);
		else
			desc(d, 0, 16, 4, 0, (uint8_t)id);
		sqe_init(&sqe, 1, d);
		struct ferry_nvmf_rdma_sgl out;
		uint16_t st;
		int rc = parse(&sqe, icd, sizeof(icd), 4, &out, &st);
		if (keyed || icdblk || lastseg) {
			cr_assert_eq(rc, 0, "id %#x: rc %d st %#x", id, rc, st);
			cr_assert_eq(out.kind,
				     icdblk ? FERRY_NVMF_RDMA_SGL_ICD : FERRY_NVMF_RDMA_SGL_KEYED,
				     "id %#x", id);
			cr_assert_eq(out.len, keyed ? 64u : icdblk ? 16u : 100u, "id %#x", id);
		} else {
			cr_assert_eq(rc, -EPROTO, "id %#x accepted", id);
			cr_assert_eq(st, ST(FERRY_NVME_SC_SGL_TYPE), "id %#x: st %#x", id, st);
		}
	}
}

Test(rdma_sgl, icd_block_bounds)
{
	uint8_t d[16], icd[256];
	struct ferry_nvme_sqe sqe;
	struct ferry_nvmf_rdma_sgl out;
	uint16_t st;
	memset(icd, 0x5a, sizeof(icd));
	const uint8_t id = FERRY_NVME_SGL_ID(0, 1);

	desc(d, 0, 256, 4, 0, id);
	sqe_init(&sqe, 1, d);
	cr_assert_eq(parse(&sqe, icd, 256, 1, &out, &st), 0);
	cr_assert_eq(out.kind, FERRY_NVMF_RDMA_SGL_ICD);
	cr_assert_eq(out.icd_off, 0);
	cr_assert_eq(out.len, 256);

	desc(d, 200, 56, 4, 0, id);
	sqe_init(&sqe, 1, d);
	cr_assert_eq(parse(&sqe, icd, 256, 1, &out, &st), 0);
	cr_assert_eq(out.icd_off, 200);
	cr_assert_eq(out.len, 56);

	desc(d, 200, 57, 4, 0, id);
	sqe_init(&sqe, 1, d);
	expect_fail(&sqe, icd, 256, 1, ST(FERRY_NVME_SC_DATA_SGL_LEN), "one byte past the ICD");
	desc(d, 0, 257, 4, 0, id);
	sqe_init(&sqe, 1, d);
	expect_fail(&sqe, icd, 256, 1, ST(FERRY_NVME_SC_DATA_SGL_LEN), "longer than the ICD");
	desc(d, 257, 0, 4, 0, id);
	sqe_init(&sqe, 1, d);
	expect_fail(&sqe, icd, 256, 1, ST(FERRY_NVME_SC_SGL_OFFSET), "offset past the ICD");
	desc(d, 0xfffffffffffffff0ull, 0x20, 4, 0, id);
	sqe_init(&sqe, 1, d);
	expect_fail(&sqe, icd, 256, 1, ST(FERRY_NVME_SC_SGL_OFFSET), "offset + len wraps");
	desc(d, 0x100000000ull, 16, 4, 0, id);
	sqe_init(&sqe, 1, d);
	expect_fail(&sqe, icd, 256, 1, ST(FERRY_NVME_SC_SGL_OFFSET), "offset above 32 bits");
	desc(d, 16, 0xfffffff8u, 4, 0, id);
	sqe_init(&sqe, 1, d);
	expect_fail(&sqe, icd, 256, 1, ST(FERRY_NVME_SC_DATA_SGL_LEN), "offset + len wraps 32");
	desc(d, 0, 16, 4, 0, id);
	sqe_init(&sqe, 1, d);
	expect_fail(&sqe, NULL, 0, 1, ST(FERRY_NVME_SC_DATA_SGL_LEN), "no ICD at all");

	/* Length 0: no data, wherever inside. */
	desc(d, 256, 0, 4, 0, id);
	sqe_init(&sqe, 1, d);
	cr_assert_eq(parse(&sqe, icd, 256, 1, &out, &st), 0);
	cr_assert_eq(out.kind, FERRY_NVMF_RDMA_SGL_NONE);
}

Test(rdma_sgl, icd_block_over_mdts)
{
	uint8_t d[16];
	static uint8_t icd[8192];
	struct ferry_nvme_sqe sqe;
	struct ferry_nvmf_rdma_sgl out;
	uint16_t st = 0;
	desc(d, 0, 8192, 4, 0, FERRY_NVME_SGL_ID(0, 1));
	sqe_init(&sqe, 1, d);
	cr_assert_eq(ferry_nvmf_rdma_sgl_parse(&sqe, icd, 8192, 1, 4096, &out, &st), -EPROTO);
	cr_assert_eq(st, ST(FERRY_NVME_SC_DATA_SGL_LEN));
}

/* A last-segment descriptor at @p off of @p len bytes, the list of @p n keyed entries there. */
static void list_case(struct ferry_nvme_sqe *sqe, uint8_t *icd, uint32_t off, uint32_t len,
		      uint32_t n, uint32_t elen)
{
	uint8_t d[16];
	for (uint32_t i = 0; i < n; i++)
		desc(icd + off + 16 * i, 0x10000 * (i + 1), elen, 3, 0x100 + i,
		     i & 1 ? 0x4f : 0x40);
	desc(d, off, len, 4, 0, FERRY_NVME_SGL_ID(3, 1));
	sqe_init(sqe, 2, d);
}

Test(rdma_sgl, list_in_icd)
{
	uint8_t icd[16 * 20] = {0};
	struct ferry_nvme_sqe sqe;
	struct ferry_nvmf_rdma_sgl out;
	uint16_t st;
	for (uint32_t n = 1; n <= FERRY_NVMF_RDMA_SGL_MAX; n++) {
		memset(icd, 0, sizeof(icd));
		list_case(&sqe, icd, 32, 16 * n, n, 1000 + n);
		cr_assert_eq(parse(&sqe, icd, sizeof(icd), FERRY_NVMF_RDMA_SGL_MAX, &out, &st), 0,
			     "n %u: st %#x", n, st);
		cr_assert_eq(out.kind, FERRY_NVMF_RDMA_SGL_KEYED);
		cr_assert_eq(out.ndesc, n);
		cr_assert_eq(out.len, n * (1000 + n));
		for (uint32_t i = 0; i < n; i++) {
			cr_assert_eq(out.desc[i].addr, 0x10000ull * (i + 1));
			cr_assert_eq(out.desc[i].len, 1000 + n);
			cr_assert_eq(out.desc[i].key, 0x100 + i);
			cr_assert_eq(out.desc[i].invalidate, i & 1);
		}
	}
}

Test(rdma_sgl, list_counts_and_lengths)
{
	uint8_t icd[16 * 20] = {0};
	struct ferry_nvme_sqe sqe;
	list_case(&sqe, icd, 0, 16 * 5, 5, 100);
	expect_fail(&sqe, icd, sizeof(icd), 4, ST(FERRY_NVME_SC_INVALID_SGL_NUM), "5 > max 4");
	list_case(&sqe, icd, 0, 0, 0, 100);
	expect_fail(&sqe, icd, sizeof(icd), 4, ST(FERRY_NVME_SC_INVALID_SGL_NUM), "empty list");
	for (uint32_t len = 1; len < 64; len++) {
		if (len % 16 == 0)
			continue;
		list_case(&sqe, icd, 0, len, 4, 100);
		expect_fail(&sqe, icd, sizeof(icd), 4, ST(FERRY_NVME_SC_INVALID_SGL_NUM),
			    "length not a multiple of 16");
	}
	list_case(&sqe, icd, 16 * 17, 16 * 4, 0, 100);
	expect_fail(&sqe, icd, sizeof(icd), 4, ST(FERRY_NVME_SC_DATA_SGL_LEN),
		    "list runs past the ICD");
	list_case(&sqe, icd, 16 * 20 + 1, 16, 0, 100);
	expect_fail(&sqe, icd, sizeof(icd), 4, ST(FERRY_NVME_SC_SGL_OFFSET), "list offset past");
	list_case(&sqe, icd, 0, 32, 2, 100);
	expect_fail(&sqe, NULL, 0, 4, ST(FERRY_NVME_SC_DATA_SGL_LEN), "list without ICD");
	uint8_t d[16];
	desc(d, 0xfffffffffffffff0ull, 32, 4, 0, FERRY_NVME_SGL_ID(3, 1));
	sqe_init(&sqe, 1, d);
	expect_fail(&sqe, icd, sizeof(icd), 4, ST(FERRY_NVME_SC_SGL_OFFSET), "offset wraps");
}

Test(rdma_sgl, list_entries_must_be_keyed)
{
	uint8_t icd[16 * 4];
	struct ferry_nvme_sqe sqe;
	const uint8_t bad[] = {0x00, 0x01, 0x30, 0x31, 0x41, 0x4e, 0x50, 0xff};
	for (uint32_t pos = 0; pos < 4; pos++)
		for (size_t b = 0; b < sizeof(bad); b++) {
			list_case(&sqe, icd, 0, 64, 4, 100);
			icd[16 * pos + 15] = bad[b];
			expect_fail(&sqe, icd, sizeof(icd), 4, ST(FERRY_NVME_SC_SGL_TYPE),
				    "unkeyed entry in the list");
		}
	/* A zero-length entry is a malformed list. */
	list_case(&sqe, icd, 0, 64, 4, 100);
	memset(icd + 16 * 2 + 8, 0, 3);
	expect_fail(&sqe, icd, sizeof(icd), 4, ST(FERRY_NVME_SC_DATA_SGL_LEN), "zero-length entry");
}

Test(rdma_sgl, list_total_over_mdts_no_overflow)
{
	uint8_t icd[16 * 16];
	struct ferry_nvme_sqe sqe;
	struct ferry_nvmf_rdma_sgl out;
	uint16_t st;
	/* 16 x (2^24 - 1): far past a 32-bit-friendly MDTS; the sum must not wrap to something
	 * small. With max_len UINT32_MAX it fits and is exact. */
	list_case(&sqe, icd, 0, 256, 16, 0xffffff);
	expect_fail(&sqe, icd, sizeof(icd), 16, ST(FERRY_NVME_SC_DATA_SGL_LEN), "total > MDTS");
	cr_assert_eq(ferry_nvmf_rdma_sgl_parse(&sqe, icd, sizeof(icd), 16, UINT32_MAX, &out, &st), 0);
	cr_assert_eq(out.len, 16u * 0xffffff);
	/* Exactly MDTS passes, one byte more fails. */
	list_case(&sqe, icd, 0, 32, 2, MAX_LEN / 2);
	cr_assert_eq(parse(&sqe, icd, 32, 2, &out, &st), 0);
	cr_assert_eq(out.len, MAX_LEN);
	put_le(icd + 8, MAX_LEN / 2 + 1, 3);
	expect_fail(&sqe, icd, 32, 2, ST(FERRY_NVME_SC_DATA_SGL_LEN), "MDTS + 1");
}

Test(rdma_sgl, bad_arguments)
{
	uint8_t d[16];
	struct ferry_nvme_sqe sqe;
	struct ferry_nvmf_rdma_sgl out;
	uint16_t st;
	desc(d, 0, 16, 3, 0, 0x40);
	sqe_init(&sqe, 1, d);
	cr_assert_eq(ferry_nvmf_rdma_sgl_parse(NULL, NULL, 0, 1, 4096, &out, &st), -EINVAL);
	cr_assert_eq(ferry_nvmf_rdma_sgl_parse(&sqe, NULL, 0, 1, 4096, NULL, &st), -EINVAL);
	cr_assert_eq(ferry_nvmf_rdma_sgl_parse(&sqe, NULL, 0, 1, 4096, &out, NULL), -EINVAL);
	cr_assert_eq(ferry_nvmf_rdma_sgl_parse(&sqe, NULL, 16, 1, 4096, &out, &st), -EINVAL);
	cr_assert_eq(ferry_nvmf_rdma_sgl_parse(&sqe, NULL, 0, 0, 4096, &out, &st), -EINVAL);
	cr_assert_eq(ferry_nvmf_rdma_sgl_parse(&sqe, NULL, 0, 17, 4096, &out, &st), -EINVAL);
}

Test(rdma_sgl, build_bytes)
{
	struct ferry_nvme_sqe sqe;
	uint8_t icd[64], raw[16];
	uint32_t used = 99;
	memset(&sqe, 0xff, sizeof(sqe));
	struct ferry_nvmf_rdma_kdesc k = {.addr = 0x0102030405060708ull, .len = 0x0a0b0c,
					  .key = 0x11223344, .invalidate = 1};
	cr_assert_eq(ferry_nvmf_rdma_sgl_build(&sqe, NULL, 0, &k, 1, &used), 0);
	cr_assert_eq(used, 0);
	cr_assert_eq(sqe.flags, 0x7f, "PSDT 01b set, other flag bits kept: %#x", sqe.flags);
	memcpy(raw, &sqe.dptr, 16);
	const uint8_t want[16] = {8, 7, 6, 5, 4, 3, 2, 1, 0x0c, 0x0b, 0x0a, 0x44, 0x33, 0x22, 0x11,
				  0x4f};
	cr_assert_arr_eq(raw, want, 16);

	cr_assert_eq(ferry_nvmf_rdma_sgl_build(&sqe, NULL, 0, NULL, 0, &used), 0);
	memcpy(raw, &sqe.dptr, 16);
	const uint8_t null_desc[16] = {[15] = 0x40};
	cr_assert_arr_eq(raw, null_desc, 16);

	struct ferry_nvmf_rdma_kdesc two[2] = {{.addr = 1, .len = 2, .key = 3},
					       {.addr = 4, .len = 5, .key = 6}};
	memset(icd, 0xee, sizeof(icd));
	cr_assert_eq(ferry_nvmf_rdma_sgl_build(&sqe, icd, 31, two, 2, &used), -ENOBUFS);
	cr_assert_eq(ferry_nvmf_rdma_sgl_build(&sqe, NULL, 64, two, 2, &used), -ENOBUFS);
	cr_assert_eq(ferry_nvmf_rdma_sgl_build(&sqe, icd, 32, two, 2, &used), 0);
	cr_assert_eq(used, 32);
	memcpy(raw, &sqe.dptr, 16);
	const uint8_t seg[16] = {0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0, 0, 0, 0, 0, 0x31};
	cr_assert_arr_eq(raw, seg, 16);
	const uint8_t e1[16] = {4, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 6, 0, 0, 0, 0x40};
	cr_assert_arr_eq(icd + 16, e1, 16);
	cr_assert_eq(icd[32], 0xee, "nothing past the list");

	struct ferry_nvmf_rdma_kdesc big = {.addr = 0, .len = 1u << 24, .key = 1};
	cr_assert_eq(ferry_nvmf_rdma_sgl_build(&sqe, NULL, 0, &big, 1, &used), -EINVAL);
	struct ferry_nvmf_rdma_kdesc many[17] = {{0}};
	cr_assert_eq(ferry_nvmf_rdma_sgl_build(&sqe, icd, sizeof(icd), many, 17, &used), -EINVAL);
	cr_assert_eq(ferry_nvmf_rdma_sgl_build(NULL, NULL, 0, &k, 1, &used), -EINVAL);
	cr_assert_eq(ferry_nvmf_rdma_sgl_build(&sqe, NULL, 0, NULL, 1, &used), -EINVAL);

	memset(&sqe, 0, sizeof(sqe));
	ferry_nvmf_rdma_sgl_build_icd(&sqe, 0x12345);
	memcpy(raw, &sqe.dptr, 16);
	const uint8_t icdd[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0x45, 0x23, 0x01, 0, 0, 0, 0, 0x01};
	cr_assert_arr_eq(raw, icdd, 16);
	cr_assert_eq(sqe.flags, 0x40);
	ferry_nvmf_rdma_sgl_build_icd(NULL, 1); /* no-op, no crash */
}

Test(rdma_sgl, round_trips)
{
	static uint8_t icd[16 * FERRY_NVMF_RDMA_SGL_MAX];
	struct ferry_nvme_sqe sqe;
	struct ferry_nvmf_rdma_sgl out;
	uint16_t st;
	uint32_t used;
	unsigned int seed = 12345;
	for (int iter = 0; iter < 2000; iter++) {
		struct ferry_nvmf_rdma_kdesc d[FERRY_NVMF_RDMA_SGL_MAX];
		uint32_t n = 1 + (uint32_t)(rand_r(&seed) % FERRY_NVMF_RDMA_SGL_MAX);
		uint64_t total = 0;
		for (uint32_t i = 0; i < n; i++) {
			d[i].addr = ((uint64_t)rand_r(&seed) << 33) ^ (uint64_t)rand_r(&seed);
			d[i].len = 1 + (uint32_t)rand_r(&seed) % 0xffffff;
			d[i].key = (uint32_t)rand_r(&seed) ^ ((uint32_t)rand_r(&seed) << 16);
			d[i].invalidate = (uint8_t)(rand_r(&seed) & 1);
			total += d[i].len;
		}
		memset(&sqe, 0, sizeof(sqe));
		cr_assert_eq(ferry_nvmf_rdma_sgl_build(&sqe, icd, sizeof(icd), d, n, &used), 0);
		cr_assert_eq(used, n > 1 ? 16 * n : 0);
		cr_assert_eq(ferry_nvmf_rdma_sgl_parse(&sqe, icd, used, FERRY_NVMF_RDMA_SGL_MAX,
						       UINT32_MAX, &out, &st),
			     0, "n %u st %#x", n, st);
		cr_assert_eq(out.kind, FERRY_NVMF_RDMA_SGL_KEYED);
		cr_assert_eq(out.ndesc, n);
		cr_assert_eq(out.len, total);
		for (uint32_t i = 0; i < n; i++) {
			cr_assert_eq(out.desc[i].addr, d[i].addr);
			cr_assert_eq(out.desc[i].len, d[i].len);
			cr_assert_eq(out.desc[i].key, d[i].key);
			cr_assert_eq(out.desc[i].invalidate, d[i].invalidate);
		}
	}
	/* In-capsule data. */
	memset(&sqe, 0, sizeof(sqe));
	ferry_nvmf_rdma_sgl_build_icd(&sqe, 100);
	cr_assert_eq(parse(&sqe, icd, 100, 1, &out, &st), 0);
	cr_assert_eq(out.kind, FERRY_NVMF_RDMA_SGL_ICD);
	cr_assert_eq(out.len, 100);
	cr_assert_eq(out.icd_off, 0);
	expect_fail(&sqe, icd, 99, 1, ST(FERRY_NVME_SC_DATA_SGL_LEN), "ICD shorter than said");
	/* No data. */
	cr_assert_eq(ferry_nvmf_rdma_sgl_build(&sqe, NULL, 0, NULL, 0, &used), 0);
	cr_assert_eq(parse(&sqe, NULL, 0, 1, &out, &st), 0);
	cr_assert_eq(out.kind, FERRY_NVMF_RDMA_SGL_NONE);
}
