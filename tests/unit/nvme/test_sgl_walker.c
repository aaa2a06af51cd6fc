/*
 * SGLs: the walker alone against a fake host memory image (data block, bit bucket, segment,
 * last segment, their placement rules, lengths, descriptor counts, unsupported types), then
 * through the controller: writes and reads described by SGL segments, reads into bit
 * buckets, and the statuses a host sees for bad SGLs.
 */
#include "test_nvme_host.h"
#include "nvme_walker.h"
#include <ferry/module/nvme_ctrlr.h>

#define IMG_BASE 0x40000000ull
#define IMG_SIZE (256u << 10)

static uint8_t img[IMG_SIZE];
static uint32_t img_reads;

static int img_read(void *ctx, uint64_t addr, void *buf, uint32_t len)
{
	if (addr < IMG_BASE || len > IMG_SIZE || addr - IMG_BASE > IMG_SIZE - len)
		return -1;
	memcpy(buf, img + (addr - IMG_BASE), len);
	img_reads++;
	return 0;
}

static struct ferry_nvme_sgl_desc D(uint64_t addr, uint32_t len, uint8_t type)
{
	struct ferry_nvme_sgl_desc d;
	memset(&d, 0, sizeof(d));
	d.address = addr;
	d.length = len;
	d.id = FERRY_NVME_SGL_ID(type, 0);
	return d;
}

static void put_desc(uint64_t addr, struct ferry_nvme_sgl_desc d)
{
	memcpy(img + (addr - IMG_BASE), &d, 16);
}

static struct iovec wiov[64];
static uint8_t wkind[64];
static struct nvme_walker w;

static int sgl_walk(struct ferry_nvme_sgl_desc sgl1, uint64_t len, int c2h, uint32_t max_desc,
		    uint32_t cap)
{
	struct ferry_nvme_sqe sqe;
	memset(&sqe, 0, sizeof(sqe));
	sqe.flags = FERRY_NVME_PSDT_SGL_MPTR_CONTIG << FERRY_NVME_FLAGS_PSDT_SHIFT;
	sqe.dptr.sgl = sgl1;
	struct nvme_walk_params p = {.sqe = &sqe, .xfer_len = len, .page_size = 4096,
				     .max_sgl_desc = max_desc ? max_desc : 64, .allow_sgl = 1,
				     .c2h = c2h};
	img_reads = 0;
	nvme_walker_init(&w, &p, wiov, wkind, cap ? cap : 64);
	return nvme_walk_sync(&w, img_read, NULL);
}

#define GENST(sc) FERRY_NVME_STATUS(FERRY_NVME_SCT_GENERIC, FERRY_NVME_SC_##sc)
#define WA(i) ((uint64_t)(uintptr_t)wiov[i].iov_base)

Test(sgl_walker, data_block_in_sqe)
{
	cr_assert_eq(sgl_walk(D(IMG_BASE + 100, 4096, FERRY_NVME_SGL_DATA_BLOCK), 4096, 0, 0, 0),
		     NVME_WALK_DONE);
	cr_assert_eq(w.iovcnt, 1);
	cr_assert_eq(WA(0), IMG_BASE + 100, "SGLs have byte granularity");
	cr_assert_eq(img_reads, 0);
	cr_assert_eq(sgl_walk(D(IMG_BASE, 4000, FERRY_NVME_SGL_DATA_BLOCK), 4096, 0, 0, 0),
		     NVME_WALK_ERROR);
	cr_assert_eq(w.status, GENST(DATA_SGL_LEN), "too short");
	cr_assert_eq(sgl_walk(D(IMG_BASE, 8192, FERRY_NVME_SGL_DATA_BLOCK), 4096, 0, 0, 0),
		     NVME_WALK_ERROR);
	cr_assert_eq(w.status, GENST(DATA_SGL_LEN), "too long");
	cr_assert_eq(sgl_walk(D(UINT64_MAX - 100, 4096, FERRY_NVME_SGL_DATA_BLOCK), 4096, 0, 0, 0),
		     NVME_WALK_ERROR, "address wraps");
}

Test(sgl_walker, types_and_subtypes)
{
	cr_assert_eq(sgl_walk(D(IMG_BASE, 512, FERRY_NVME_SGL_KEYED_DATA_BLOCK), 512, 0, 0, 0),
		     NVME_WALK_ERROR);
	cr_assert_eq(w.status, GENST(SGL_TYPE));
	cr_assert_eq(sgl_walk(D(IMG_BASE, 512, FERRY_NVME_SGL_TRANSPORT_DATA_BLOCK), 512, 0, 0, 0),
		     NVME_WALK_ERROR);
	cr_assert_eq(w.status, GENST(SGL_TYPE));
	cr_assert_eq(sgl_walk(D(IMG_BASE, 512, 0xf), 512, 0, 0, 0), NVME_WALK_ERROR);
	cr_assert_eq(w.status, GENST(SGL_TYPE));
	struct ferry_nvme_sgl_desc off = D(IMG_BASE, 512, FERRY_NVME_SGL_DATA_BLOCK);
	off.id = FERRY_NVME_SGL_ID(FERRY_NVME_SGL_DATA_BLOCK, FERRY_NVME_SGL_SUBTYPE_OFFSET);
	cr_assert_eq(sgl_walk(off, 512, 0, 0, 0), NVME_WALK_ERROR);
	cr_assert_eq(w.status, GENST(SGL_TYPE), "offset subtype is for fabrics");
	/* Bit buckets: only where data goes to the host. */
	cr_assert_eq(sgl_walk(D(0, 512, FERRY_NVME_SGL_BIT_BUCKET), 512, 1, 0, 0), NVME_WALK_DONE);
	cr_assert(w.has_bucket);
	cr_assert_eq(wkind[0], NVME_WALK_SEG_BUCKET);
	cr_assert_eq(sgl_walk(D(0, 512, FERRY_NVME_SGL_BIT_BUCKET), 512, 0, 0, 0), NVME_WALK_ERROR);
	cr_assert_eq(w.status, GENST(SGL_TYPE));
}

Test(sgl_walker, segments)
{
	/* SQE → segment A (data, data, segment) → segment B (bucket, last segment) →
	 * last segment C (data, data). */
	uint64_t A = IMG_BASE + 0x1000, B = IMG_BASE + 0x2000, C = IMG_BASE + 0x3000;
	put_desc(A, D(IMG_BASE + 0x10000, 1000, FERRY_NVME_SGL_DATA_BLOCK));
	put_desc(A + 16, D(IMG_BASE + 0x10000 + 1000, 24, FERRY_NVME_SGL_DATA_BLOCK));
	put_desc(A + 32, D(B, 32, FERRY_NVME_SGL_SEGMENT));
	put_desc(B, D(0, 1024, FERRY_NVME_SGL_BIT_BUCKET));
	put_desc(B + 16, D(C, 48, FERRY_NVME_SGL_LAST_SEGMENT));
	put_desc(C, D(IMG_BASE + 0x20000, 0, FERRY_NVME_SGL_DATA_BLOCK)); /* zero length: skipped */
	put_desc(C + 16, D(IMG_BASE + 0x20000, 1024, FERRY_NVME_SGL_DATA_BLOCK));
	put_desc(C + 32, D(IMG_BASE + 0x30000, 1024, FERRY_NVME_SGL_DATA_BLOCK));
	cr_assert_eq(sgl_walk(D(A, 48, FERRY_NVME_SGL_SEGMENT), 4096, 1, 0, 0), NVME_WALK_DONE);
	cr_assert_eq(w.iovcnt, 4);
	cr_assert_eq(WA(0), IMG_BASE + 0x10000);
	cr_assert_eq(wiov[0].iov_len, 1024, "adjacent data blocks merged");
	cr_assert_eq(wkind[1], NVME_WALK_SEG_BUCKET);
	cr_assert_eq(wiov[1].iov_len, 1024);
	cr_assert_eq(WA(2), IMG_BASE + 0x20000);
	cr_assert_eq(WA(3), IMG_BASE + 0x30000);
	cr_assert_eq(w.ndesc, 9);
	/* Same SGL for a write: the bit bucket is refused. */
	cr_assert_eq(sgl_walk(D(A, 48, FERRY_NVME_SGL_SEGMENT), 4096, 0, 0, 0), NVME_WALK_ERROR);
	cr_assert_eq(w.status, GENST(SGL_TYPE));
	/* Descriptor limit. */
	cr_assert_eq(sgl_walk(D(A, 48, FERRY_NVME_SGL_SEGMENT), 4096, 1, 6, 0), NVME_WALK_ERROR);
	cr_assert_eq(w.status, GENST(INVALID_SGL_NUM));
	/* Output capacity. */
	cr_assert_eq(sgl_walk(D(A, 48, FERRY_NVME_SGL_SEGMENT), 4096, 1, 0, 3), NVME_WALK_ERROR);
	cr_assert_eq(w.status, GENST(INVALID_SGL_NUM));
	/* Lengths that do not add up. */
	cr_assert_eq(sgl_walk(D(A, 48, FERRY_NVME_SGL_SEGMENT), 4000, 1, 0, 0), NVME_WALK_ERROR);
	cr_assert_eq(w.status, GENST(DATA_SGL_LEN));
	cr_assert_eq(sgl_walk(D(A, 48, FERRY_NVME_SGL_SEGMENT), 8192, 1, 0, 0), NVME_WALK_ERROR);
	cr_assert_eq(w.status, GENST(DATA_SGL_LEN));
}

Test(sgl_walker, segment_rules)
{
	uint64_t A = IMG_BASE + 0x1000, B = IMG_BASE + 0x2000;
	/* A segment descriptor that is not the last one of its segment. */
	put_desc(A, D(B, 16, FERRY_NVME_SGL_LAST_SEGMENT));
	put_desc(A + 16, D(IMG_BASE + 0x10000, 512, FERRY_NVME_SGL_DATA_BLOCK));
	put_desc(B, D(IMG_BASE + 0x11000, 512, FERRY_NVME_SGL_DATA_BLOCK));
	cr_assert_eq(sgl_walk(D(A, 32, FERRY_NVME_SGL_SEGMENT), 1024, 0, 0, 0), NVME_WALK_ERROR);
	cr_assert_eq(w.status, GENST(INVALID_SGL_SEG));
	/* A last segment that points further. */
	put_desc(A, D(IMG_BASE + 0x10000, 512, FERRY_NVME_SGL_DATA_BLOCK));
	put_desc(A + 16, D(B, 16, FERRY_NVME_SGL_SEGMENT));
	cr_assert_eq(sgl_walk(D(A, 32, FERRY_NVME_SGL_LAST_SEGMENT), 1024, 0, 0, 0), NVME_WALK_ERROR);
	cr_assert_eq(w.status, GENST(INVALID_SGL_SEG));
	/* The same list reached through a Segment descriptor is fine. */
	cr_assert_eq(sgl_walk(D(A, 32, FERRY_NVME_SGL_SEGMENT), 1024, 0, 0, 0), NVME_WALK_DONE);
	cr_assert_eq(w.iovcnt, 2);
	/* Segment lengths must be a non-zero multiple of 16. */
	cr_assert_eq(sgl_walk(D(A, 0, FERRY_NVME_SGL_SEGMENT), 1024, 0, 0, 0), NVME_WALK_ERROR);
	cr_assert_eq(w.status, GENST(INVALID_SGL_SEG));
	cr_assert_eq(sgl_walk(D(A, 24, FERRY_NVME_SGL_LAST_SEGMENT), 1024, 0, 0, 0), NVME_WALK_ERROR);
	cr_assert_eq(w.status, GENST(INVALID_SGL_SEG));
	/* A segment outside host memory: the read fails. */
	cr_assert_eq(sgl_walk(D(0x1000, 32, FERRY_NVME_SGL_LAST_SEGMENT), 1024, 0, 0, 0),
		     NVME_WALK_ERROR);
	cr_assert_eq(w.status, GENST(DATA_XFER_ERROR));
	/* A segment pointing at itself is bounded by the descriptor limit. */
	put_desc(A, D(A, 16, FERRY_NVME_SGL_SEGMENT));
	cr_assert_eq(sgl_walk(D(A, 16, FERRY_NVME_SGL_SEGMENT), 1024, 0, 0, 0), NVME_WALK_ERROR);
	cr_assert_eq(w.status, GENST(INVALID_SGL_NUM));
	cr_assert_leq(img_reads, 64);
	/* SGLs not allowed, or PSDT 11b. */
	struct ferry_nvme_sqe sqe;
	memset(&sqe, 0, sizeof(sqe));
	sqe.flags = 3u << FERRY_NVME_FLAGS_PSDT_SHIFT;
	struct nvme_walk_params p = {.sqe = &sqe, .xfer_len = 512, .page_size = 4096,
				     .max_sgl_desc = 8, .allow_sgl = 1};
	nvme_walker_init(&w, &p, wiov, wkind, 64);
	cr_assert_eq(nvme_walk_sync(&w, img_read, NULL), NVME_WALK_ERROR);
	cr_assert_eq(w.status, GENST(INVALID_FIELD));
	sqe.flags = 1u << FERRY_NVME_FLAGS_PSDT_SHIFT;
	p.allow_sgl = 0;
	nvme_walker_init(&w, &p, wiov, wkind, 64);
	cr_assert_eq(nvme_walk_sync(&w, img_read, NULL), NVME_WALK_ERROR);
	cr_assert_eq(w.status, GENST(INVALID_FIELD));
}

/* ---- through the controller ------------------------------------------------------------ */

static void sgl_sqe(struct ferry_nvme_sqe *s, struct ferry_nvme_sgl_desc d)
{
	s->flags = FERRY_NVME_PSDT_SGL_MPTR_CONTIG << FERRY_NVME_FLAGS_PSDT_SHIFT;
	s->dptr.sgl = d;
}

static void host_desc(struct host *h, uint64_t addr, struct ferry_nvme_sgl_desc d)
{
	memcpy(hm_ptr(h->hm, addr), &d, 16);
}

Test(sgl_ctrlr, write_segments_read_with_bit_buckets)
{
	struct host *h = h_create(NULL);
	h_up(h, 16);
	/* 4 blocks written from three scattered host pieces described by a segment. */
	uint64_t seg = hm_alloc(h->hm, 4096, HM_PAGE);
	uint64_t p1 = hm_alloc(h->hm, 4096, 16) + 3, p2 = hm_alloc(h->hm, 4096, 16) + 7;
	uint64_t p3 = hm_alloc(h->hm, 4096, 16);
	uint8_t src[2048];
	h_fill(src, sizeof(src), 42);
	memcpy(hm_ptr(h->hm, p1), src, 700);
	memcpy(hm_ptr(h->hm, p2), src + 700, 1000);
	memcpy(hm_ptr(h->hm, p3), src + 1700, 348);
	host_desc(h, seg, D(p1, 700, FERRY_NVME_SGL_DATA_BLOCK));
	host_desc(h, seg + 16, D(p2, 1000, FERRY_NVME_SGL_DATA_BLOCK));
	host_desc(h, seg + 32, D(p3, 348, FERRY_NVME_SGL_DATA_BLOCK));
	struct ferry_nvme_sqe s = h_sqe(0, 1);
	h_rw(&s, FERRY_NVME_CMD_WRITE, 10, 4);
	sgl_sqe(&s, D(seg, 48, FERRY_NVME_SGL_LAST_SEGMENT));
	cr_assert_eq(h_cmd(h, 1, &s, NULL), 0);

	/* Read them back as one data block. */
	uint64_t rb = hm_alloc(h->hm, 4096, HM_PAGE);
	s = h_sqe(0, 1);
	h_rw(&s, FERRY_NVME_CMD_READ, 10, 4);
	sgl_sqe(&s, D(rb, 2048, FERRY_NVME_SGL_DATA_BLOCK));
	cr_assert_eq(h_cmd(h, 1, &s, NULL), 0);
	cr_assert_eq(memcmp(hm_ptr(h->hm, rb), src, 2048), 0);

	/* Read with bit buckets: keep blocks 1 and 3 only. */
	uint64_t k1 = hm_alloc(h->hm, 512, 16), k3 = hm_alloc(h->hm, 512, 16);
	memset(hm_ptr(h->hm, k1), 0xcc, 512);
	memset(hm_ptr(h->hm, k3), 0xcc, 512);
	host_desc(h, seg, D(0, 512, FERRY_NVME_SGL_BIT_BUCKET));
	host_desc(h, seg + 16, D(k1, 512, FERRY_NVME_SGL_DATA_BLOCK));
	host_desc(h, seg + 32, D(0, 512, FERRY_NVME_SGL_BIT_BUCKET));
	host_desc(h, seg + 48, D(k3, 512, FERRY_NVME_SGL_DATA_BLOCK));
	s = h_sqe(0, 1);
	h_rw(&s, FERRY_NVME_CMD_READ, 10, 4);
	sgl_sqe(&s, D(seg, 64, FERRY_NVME_SGL_LAST_SEGMENT));
	cr_assert_eq(h_cmd(h, 1, &s, NULL), 0);
	cr_assert_eq(memcmp(hm_ptr(h->hm, k1), src + 512, 512), 0);
	cr_assert_eq(memcmp(hm_ptr(h->hm, k3), src + 1536, 512), 0);

	/* The same SGL on a write: bit buckets are not allowed there. */
	s.opcode = FERRY_NVME_CMD_WRITE;
	cr_assert_eq(h_cmd(h, 1, &s, NULL), ST(GENERIC, SGL_TYPE));
	h_destroy(h);
}

Test(sgl_ctrlr, bad_sgls_get_statuses)
{
	struct host *h = h_create(NULL);
	h_up(h, 16);
	uint64_t buf = hm_alloc(h->hm, 8192, HM_PAGE);
	struct ferry_nvme_sqe s = h_sqe(0, 1);
	h_rw(&s, FERRY_NVME_CMD_READ, 0, 2);
	sgl_sqe(&s, D(buf, 512, FERRY_NVME_SGL_DATA_BLOCK));
	cr_assert_eq(h_cmd(h, 1, &s, NULL), ST(GENERIC, DATA_SGL_LEN));
	sgl_sqe(&s, D(buf, 1024, FERRY_NVME_SGL_KEYED_DATA_BLOCK));
	cr_assert_eq(h_cmd(h, 1, &s, NULL), ST(GENERIC, SGL_TYPE));
	sgl_sqe(&s, D(buf, 8, FERRY_NVME_SGL_SEGMENT));
	cr_assert_eq(h_cmd(h, 1, &s, NULL), ST(GENERIC, INVALID_SGL_SEG));
	sgl_sqe(&s, D(0x10, 1024, FERRY_NVME_SGL_DATA_BLOCK));
	cr_assert_eq(h_cmd(h, 1, &s, NULL), ST(GENERIC, DATA_XFER_ERROR), "outside host memory");
	/* A segment of 200 descriptors exceeds the controller's limit. */
	sgl_sqe(&s, D(buf, 200 * 16, FERRY_NVME_SGL_LAST_SEGMENT));
	cr_assert_eq(h_cmd(h, 1, &s, NULL), ST(GENERIC, INVALID_SGL_NUM));
	h_destroy(h);
}

Test(sgl_ctrlr, sgl_disabled)
{
	struct host_opts o = {0};
	o.copts.size = sizeof(o.copts);
	o.copts.flags = FERRY_NVME_CTRLR_F_NO_SGL;
	struct host *h = h_create(&o);
	h_up(h, 16);
	uint64_t buf = hm_alloc(h->hm, 4096, HM_PAGE);
	struct ferry_nvme_sqe s = h_sqe(0, 1);
	h_rw(&s, FERRY_NVME_CMD_READ, 0, 1);
	sgl_sqe(&s, D(buf, 512, FERRY_NVME_SGL_DATA_BLOCK));
	cr_assert_eq(h_cmd(h, 1, &s, NULL), ST(GENERIC, INVALID_FIELD));
	h_destroy(h);
}
