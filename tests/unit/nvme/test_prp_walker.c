/*
 * The PRP walker alone (sdk/src/nvme/walker.c) against a fake host memory image: PRP1 with
 * and without offset, PRP2 as data or list pointer, lists crossing pages, chained lists,
 * offset errors, read failures, that only the needed list entries are read, and merging.
 */
#include <criterion/criterion.h>
#include <string.h>
#include <ferry/nvme_spec.h>
#include "nvme_walker.h"

#define IMG_BASE 0x40000000ull
#define IMG_SIZE (1u << 20)
#define PG 4096u

struct img {
	uint8_t mem[IMG_SIZE];
	uint64_t bytes_read;
	uint32_t reads;
	uint64_t fail_at; /* reads touching this address fail */
};

static struct img g;

static int img_read(void *ctx, uint64_t addr, void *buf, uint32_t len)
{
	struct img *im = ctx;
	if (addr < IMG_BASE || len > IMG_SIZE || addr - IMG_BASE > IMG_SIZE - len)
		return -1;
	if (im->fail_at && im->fail_at >= addr && im->fail_at < addr + len)
		return -1;
	memcpy(buf, im->mem + (addr - IMG_BASE), len);
	im->bytes_read += len;
	im->reads++;
	return 0;
}

static void put64(uint64_t addr, uint64_t v)
{
	memcpy(g.mem + (addr - IMG_BASE), &v, 8);
}

static struct iovec iov[300];
static struct nvme_walker w;

static int walk(uint64_t prp1, uint64_t prp2, uint64_t len, uint32_t page)
{
	struct ferry_nvme_sqe sqe;
	memset(&sqe, 0, sizeof(sqe));
	sqe.dptr.prp.prp1 = prp1;
	sqe.dptr.prp.prp2 = prp2;
	struct nvme_walk_params p = {.sqe = &sqe, .xfer_len = len, .page_size = page ? page : PG,
				     .max_sgl_desc = 16, .allow_sgl = 1, .c2h = 1};
	g.bytes_read = 0;
	g.reads = 0;
	nvme_walker_init(&w, &p, iov, NULL, 300);
	return nvme_walk_sync(&w, img_read, &g);
}

static uint64_t total(void)
{
	uint64_t t = 0;
	for (uint32_t i = 0; i < w.iovcnt; i++)
		t += iov[i].iov_len;
	return t;
}

#define A(i) ((uint64_t)(uintptr_t)iov[i].iov_base)
#define GENST(sc) FERRY_NVME_STATUS(FERRY_NVME_SCT_GENERIC, FERRY_NVME_SC_##sc)

Test(prp_walker, single_page_and_offset)
{
	cr_assert_eq(walk(IMG_BASE + 0x2000, 0xdead, 512, 0), NVME_WALK_DONE, "PRP2 unused");
	cr_assert_eq(w.iovcnt, 1);
	cr_assert_eq(A(0), IMG_BASE + 0x2000);
	cr_assert_eq(iov[0].iov_len, 512);
	cr_assert_eq(g.reads, 0);
	/* Offset in PRP1: the first segment ends at the page boundary. */
	cr_assert_eq(walk(IMG_BASE + 0x2e00, IMG_BASE + 0x8000, 1024, 0), NVME_WALK_DONE);
	cr_assert_eq(w.iovcnt, 2);
	cr_assert_eq(iov[0].iov_len, 512);
	cr_assert_eq(A(1), IMG_BASE + 0x8000);
	cr_assert_eq(iov[1].iov_len, 512);
	/* Adjacent pages merge into one segment. */
	cr_assert_eq(walk(IMG_BASE + 0x2e00, IMG_BASE + 0x3000, 1024, 0), NVME_WALK_DONE);
	cr_assert_eq(w.iovcnt, 1);
	cr_assert_eq(iov[0].iov_len, 1024);
}

Test(prp_walker, offset_errors)
{
	cr_assert_eq(walk(IMG_BASE + 2, 0, 512, 0), NVME_WALK_ERROR);
	cr_assert_eq(w.status, GENST(PRP_OFFSET), "PRP1 not dword aligned");
	cr_assert_eq(walk(IMG_BASE, IMG_BASE + 0x3004, 8192, 0), NVME_WALK_ERROR);
	cr_assert_eq(w.status, GENST(PRP_OFFSET), "PRP2 data pointer with an offset");
	cr_assert_eq(walk(IMG_BASE, IMG_BASE + 0x3004, 3 * PG, 0), NVME_WALK_ERROR);
	cr_assert_eq(w.status, GENST(PRP_OFFSET), "PRP list pointer not qword aligned");
	/* A list entry with an offset. */
	put64(IMG_BASE + 0x10000, IMG_BASE + 0x20000);
	put64(IMG_BASE + 0x10008, IMG_BASE + 0x21010);
	cr_assert_eq(walk(IMG_BASE, IMG_BASE + 0x10000, 3 * PG, 0), NVME_WALK_ERROR);
	cr_assert_eq(w.status, GENST(PRP_OFFSET));
}

Test(prp_walker, list_reads_only_needed_entries)
{
	/* 5 pages: PRP1 + a list of 4 entries starting mid-page. */
	uint64_t list = IMG_BASE + 0x10100;
	for (int i = 0; i < 8; i++)
		put64(list + 8 * i, IMG_BASE + 0x40000 + (uint64_t)i * 2 * PG);
	cr_assert_eq(walk(IMG_BASE + 0x1000, list, 5 * PG, 0), NVME_WALK_DONE);
	cr_assert_eq(g.bytes_read, 4 * 8, "exactly the 4 entries needed are read");
	cr_assert_eq(w.iovcnt, 5);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(A(i + 1), IMG_BASE + 0x40000 + (uint64_t)i * 2 * PG);
		cr_assert_eq(iov[i + 1].iov_len, PG);
	}
	/* Last entry only partially used. */
	cr_assert_eq(walk(IMG_BASE + 0x1000, list, 4 * PG + 100, 0), NVME_WALK_DONE);
	cr_assert_eq(iov[w.iovcnt - 1].iov_len, 100);
	cr_assert_eq(total(), 4 * PG + 100);
}

Test(prp_walker, list_chaining)
{
	/* A list that starts 3 slots before the end of its page: 2 data entries, then a chain
	 * pointer to a full page of entries, whose last slot chains again. */
	uint64_t l1 = IMG_BASE + 0x10000 + PG - 3 * 8;
	uint64_t l2 = IMG_BASE + 0x20000, l3 = IMG_BASE + 0x30000;
	uint64_t data = IMG_BASE + 0x80000;
	uint32_t n = 2 + 511 + 5; /* entries needed after PRP1 */
	uint32_t k = 0;
	put64(l1, data + (uint64_t)k++ * PG);
	put64(l1 + 8, data + (uint64_t)k++ * PG);
	put64(l1 + 16, l2);
	for (int i = 0; i < 511; i++)
		put64(l2 + 8 * i, data + (uint64_t)k++ * PG);
	put64(l2 + 511 * 8, l3);
	for (int i = 0; i < 5; i++)
		put64(l3 + 8 * i, data + (uint64_t)k++ * PG);
	cr_assert_eq(k, n);
	/* data pages are contiguous in this layout, so segments merge: check the total. */
	cr_assert_eq(walk(IMG_BASE + 0x1000, l1, (uint64_t)(n + 1) * PG, 0), NVME_WALK_DONE);
	cr_assert_eq(total(), (uint64_t)(n + 1) * PG);
	cr_assert_eq(w.iovcnt, 2);
	cr_assert_eq(A(1), data);
	cr_assert_eq(iov[1].iov_len, (uint64_t)n * PG);
	cr_assert_eq(g.bytes_read, (uint64_t)(n + 2) * 8, "entries plus two chain pointers");

	/* When exactly one entry remains, the last slot is data, not a chain. */
	cr_assert_eq(walk(IMG_BASE + 0x1000, l1, 4 * PG, 0), NVME_WALK_DONE);
	cr_assert_eq(total(), 4 * PG);
	cr_assert_eq(g.bytes_read, 3 * 8);

	/* A chain pointer with an offset is refused. */
	put64(l1 + 16, l2 + 8);
	cr_assert_eq(walk(IMG_BASE + 0x1000, l1, (uint64_t)(n + 1) * PG, 0), NVME_WALK_ERROR);
	cr_assert_eq(w.status, GENST(PRP_OFFSET));
}

Test(prp_walker, scattered_pages_and_big_page)
{
	uint64_t list = IMG_BASE + 0x10000;
	for (int i = 0; i < 31; i++) /* reverse order: nothing merges */
		put64(list + 8 * i, IMG_BASE + 0x40000 + (uint64_t)(30 - i) * PG);
	cr_assert_eq(walk(IMG_BASE + 0x3000, list, 32 * PG, 0), NVME_WALK_DONE);
	cr_assert_eq(w.iovcnt, 32);
	cr_assert_leq(w.iovcnt, nvme_walk_prp_max_iov(32 * PG, PG));
	cr_assert_eq(A(31), IMG_BASE + 0x40000);
	/* 8 KiB host pages: entries are 8 KiB aligned. */
	put64(list, IMG_BASE + 0x42000);
	put64(list + 8, IMG_BASE + 0x44000);
	cr_assert_eq(walk(IMG_BASE + 0x2000, list, 3 * 8192, 8192), NVME_WALK_DONE);
	cr_assert_eq(total(), 3 * 8192);
	put64(list + 8, IMG_BASE + 0x45000);
	cr_assert_eq(walk(IMG_BASE + 0x2000, list, 3 * 8192, 8192), NVME_WALK_ERROR);
	cr_assert_eq(w.status, GENST(PRP_OFFSET), "4 KiB aligned is not 8 KiB aligned");
}

Test(prp_walker, read_failure_and_wrap)
{
	/* The list itself is outside host memory. */
	cr_assert_eq(walk(IMG_BASE, 0x1000, 3 * PG, 0), NVME_WALK_ERROR);
	cr_assert_eq(w.status, GENST(DATA_XFER_ERROR));
	g.fail_at = IMG_BASE + 0x10008;
	put64(IMG_BASE + 0x10000, IMG_BASE + 0x20000);
	put64(IMG_BASE + 0x10008, IMG_BASE + 0x21000);
	cr_assert_eq(walk(IMG_BASE, IMG_BASE + 0x10000, 3 * PG, 0), NVME_WALK_ERROR);
	cr_assert_eq(w.status, GENST(DATA_XFER_ERROR));
	g.fail_at = 0;
	/* Data in the very last page of the 64-bit space: no arithmetic wrap, just a range
	 * ending at 2^64 - 1 (the domain refuses it later). */
	cr_assert_eq(walk(0xfffffffffffff000ull, 0, PG, 0), NVME_WALK_DONE);
	cr_assert_eq(A(0) + (iov[0].iov_len - 1), UINT64_MAX);
	/* The page after the last one is address 0: never merged with it (found by fuzzing). */
	cr_assert_eq(walk(0xffffffffffffff00ull, 0, 512, 0), NVME_WALK_DONE);
	cr_assert_eq(w.iovcnt, 2);
	cr_assert_eq(A(1), 0);
	cr_assert_eq(iov[1].iov_len, 256);
	/* An async caller: NEED_READ then resume. */
	struct ferry_nvme_sqe sqe;
	memset(&sqe, 0, sizeof(sqe));
	sqe.dptr.prp.prp1 = IMG_BASE;
	sqe.dptr.prp.prp2 = IMG_BASE + 0x10000;
	struct nvme_walk_params p = {.sqe = &sqe, .xfer_len = 3 * PG, .page_size = PG,
				     .max_sgl_desc = 1, .c2h = 0};
	nvme_walker_init(&w, &p, iov, NULL, 300);
	cr_assert_eq(nvme_walker_step(&w), NVME_WALK_NEED_READ);
	cr_assert_eq(w.rd_addr, IMG_BASE + 0x10000);
	cr_assert_eq(w.rd_len, 16);
	cr_assert_eq(nvme_walker_read_failed(&w), NVME_WALK_ERROR);
	cr_assert_eq(w.status, GENST(DATA_XFER_ERROR));
}
