/*
 * NVM command set through the controller: Read/Write with PRPs (single page, offsets, lists
 * crossing pages, chained lists at MDTS), Compare, Flush, Write Zeroes, Dataset Management,
 * extended-LBA namespaces, and every invalid path: LBA range, MDTS, namespace, opcode, host
 * memory faults.
 */
#include "test_nvme_host.h"

static uint16_t rw(struct host *h, uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb,
		   uint64_t buf, uint32_t bs, uint32_t list_per_page)
{
	struct ferry_nvme_sqe s = h_sqe(0, nsid);
	h_rw(&s, opc, slba, nlb);
	s.nsid = nsid;
	h_prp(h, &s, buf, (uint64_t)nlb * bs, list_per_page);
	return h_cmd(h, 1, &s, NULL);
}

Test(nvme_io, write_read_single_and_offset)
{
	struct host *h = h_create(NULL);
	h_up(h, 16);
	uint64_t wb = hm_alloc(h->hm, 8192, HM_PAGE), rb = hm_alloc(h->hm, 8192, HM_PAGE);
	h_fill(hm_ptr(h->hm, wb), 4096, 1);
	cr_assert_eq(rw(h, FERRY_NVME_CMD_WRITE, 1, 100, 8, wb, 512, 0), 0);
	cr_assert_eq(rw(h, FERRY_NVME_CMD_READ, 1, 100, 8, rb, 512, 0), 0);
	cr_assert_eq(memcmp(hm_ptr(h->hm, wb), hm_ptr(h->hm, rb), 4096), 0);
	/* Read into a buffer with an offset: PRP1 + PRP2. */
	memset(hm_ptr(h->hm, rb), 0, 8192);
	cr_assert_eq(rw(h, FERRY_NVME_CMD_READ, 1, 100, 8, rb + 0x204, 512, 0), 0);
	cr_assert_eq(memcmp(hm_ptr(h->hm, wb), hm_ptr(h->hm, rb + 0x204), 4096), 0);
	uint8_t z[0x204] = {0};
	cr_assert_eq(memcmp(hm_ptr(h->hm, rb), z, sizeof(z)), 0, "nothing written before PRP1");
	struct ferry_nvme_ctrlr_stats st = {.size = sizeof(st)};
	cr_assert_eq(ferry_nvme_ctrlr_get_stats(h->ctrlr, &st), 0);
	cr_assert_eq(st.bytes_written, 4096);
	cr_assert_eq(st.bytes_read, 8192);
	h_destroy(h);
}

Test(nvme_io, prp_lists_and_chaining)
{
	struct host *h = h_create(NULL);
	h_up(h, 16);
	uint32_t len = 128 * 1024; /* MDTS: 2^5 * 4 KiB */
	uint64_t wb = hm_alloc(h->hm, len + 4096, HM_PAGE) + 0x600;
	uint64_t rb = hm_alloc(h->hm, len + 4096, HM_PAGE) + 0x18;
	h_fill(hm_ptr(h->hm, wb), len, 7);
	/* Write through a list that starts 4 slots from the end of its page (chained twice
	 * over... once here: 32 entries need 1 chain), read through a plain list. */
	cr_assert_eq(rw(h, FERRY_NVME_CMD_WRITE, 1, 1000, 256, wb, 512, 4), 0);
	cr_assert_eq(rw(h, FERRY_NVME_CMD_READ, 1, 1000, 256, rb, 512, 0), 0);
	cr_assert_eq(memcmp(hm_ptr(h->hm, wb), hm_ptr(h->hm, rb), len), 0);
	/* Chained every 2 entries. */
	memset(hm_ptr(h->hm, rb), 0, len);
	cr_assert_eq(rw(h, FERRY_NVME_CMD_READ, 1, 1000, 256, rb, 512, 2), 0);
	cr_assert_eq(memcmp(hm_ptr(h->hm, wb), hm_ptr(h->hm, rb), len), 0);
	/* One block more than MDTS. */
	cr_assert_eq(rw(h, FERRY_NVME_CMD_READ, 1, 1000, 257, rb, 512, 0), ST(GENERIC, INVALID_FIELD));
	h_destroy(h);
}

Test(nvme_io, prp_errors)
{
	struct host *h = h_create(NULL);
	h_up(h, 16);
	uint64_t buf = hm_alloc(h->hm, 4 * 4096, HM_PAGE);
	uint64_t list = hm_alloc(h->hm, 4096, HM_PAGE);
	struct ferry_nvme_sqe s = h_sqe(0, 1);
	h_rw(&s, FERRY_NVME_CMD_READ, 0, 24); /* 3 pages */
	s.dptr.prp.prp1 = buf;
	s.dptr.prp.prp2 = list;
	uint64_t e[2] = {buf + 4096, buf + 8192 + 0x10};
	memcpy(hm_ptr(h->hm, list), e, sizeof(e));
	cr_assert_eq(h_cmd(h, 1, &s, NULL), ST(GENERIC, PRP_OFFSET), "list entry with an offset");
	s.dptr.prp.prp2 = list + 4;
	cr_assert_eq(h_cmd(h, 1, &s, NULL), ST(GENERIC, PRP_OFFSET), "list pointer misaligned");
	e[1] = 0x7000; /* page outside host memory */
	memcpy(hm_ptr(h->hm, list), e, sizeof(e));
	s.dptr.prp.prp2 = list;
	cr_assert_eq(h_cmd(h, 1, &s, NULL), ST(GENERIC, DATA_XFER_ERROR));
	s.opcode = FERRY_NVME_CMD_WRITE;
	cr_assert_eq(h_cmd(h, 1, &s, NULL), ST(GENERIC, DATA_XFER_ERROR));
	/* A page the function is not allowed to reach (IOMMU): the domain refuses it. */
	e[1] = buf + 8192;
	memcpy(hm_ptr(h->hm, list), e, sizeof(e));
	h->hm->deny_lo = buf + 8192;
	h->hm->deny_hi = buf + 12288;
	cr_assert_eq(h_cmd(h, 1, &s, NULL), ST(GENERIC, DATA_XFER_ERROR));
	h->hm->deny_lo = h->hm->deny_hi = 0;
	cr_assert_eq(h_cmd(h, 1, &s, NULL), 0);
	h_destroy(h);
}

Test(nvme_io, range_namespace_opcode)
{
	struct host *h = h_create(NULL); /* 8192 blocks */
	h_up(h, 16);
	uint64_t buf = hm_alloc(h->hm, 8192, HM_PAGE);
	cr_assert_eq(rw(h, FERRY_NVME_CMD_READ, 1, 8191, 1, buf, 512, 0), 0, "last block");
	cr_assert_eq(rw(h, FERRY_NVME_CMD_READ, 1, 8191, 2, buf, 512, 0), ST(GENERIC, LBA_RANGE));
	cr_assert_eq(rw(h, FERRY_NVME_CMD_WRITE, 1, 8192, 1, buf, 512, 0), ST(GENERIC, LBA_RANGE));
	cr_assert_eq(rw(h, FERRY_NVME_CMD_READ, 1, UINT64_MAX - 1, 8, buf, 512, 0),
		     ST(GENERIC, LBA_RANGE), "no wrap-around");
	cr_assert_eq(rw(h, FERRY_NVME_CMD_READ, 0, 0, 1, buf, 512, 0), ST(GENERIC, INVALID_NS));
	cr_assert_eq(rw(h, FERRY_NVME_CMD_READ, 2, 0, 1, buf, 512, 0), ST(GENERIC, INVALID_NS));
	cr_assert_eq(rw(h, FERRY_NVME_CMD_READ, 0xffffffff, 0, 1, buf, 512, 0), ST(GENERIC, INVALID_NS));
	struct ferry_nvme_sqe s = h_sqe(0x7e, 0);
	cr_assert_eq(h_cmd(h, 1, &s, NULL), ST(GENERIC, INVALID_OPCODE),
		     "opcode checked before the namespace");
	s = h_sqe(FERRY_NVME_CMD_FLUSH, 1);
	cr_assert_eq(h_cmd(h, 1, &s, NULL), 0);
	s.nsid = 0xffffffff;
	cr_assert_eq(h_cmd(h, 1, &s, NULL), 0, "flush all namespaces");
	s.nsid = 3;
	cr_assert_eq(h_cmd(h, 1, &s, NULL), ST(GENERIC, INVALID_NS));
	struct ferry_bdev_stats bs = {.size = sizeof(bs)};
	cr_assert_eq(ferry_bdev_get_stats(h->bdev, &bs), 0);
	cr_assert_eq(bs.ios[FERRY_BDEV_IO_FLUSH], 2);
	h_destroy(h);
}

Test(nvme_io, write_zeroes_and_deallocate)
{
	struct host *h = h_create(NULL);
	h_up(h, 16);
	uint64_t wb = hm_alloc(h->hm, 16384, HM_PAGE), rb = hm_alloc(h->hm, 16384, HM_PAGE);
	uint8_t z[16384] = {0};
	h_fill(hm_ptr(h->hm, wb), 16384, 3);
	cr_assert_eq(rw(h, FERRY_NVME_CMD_WRITE, 1, 0, 32, wb, 512, 0), 0);

	struct ferry_nvme_sqe s = h_sqe(0, 1);
	h_rw(&s, FERRY_NVME_CMD_WRITE_ZEROES, 4, 4);
	cr_assert_eq(h_cmd(h, 1, &s, NULL), 0);
	h_rw(&s, FERRY_NVME_CMD_WRITE_ZEROES, 8190, 4);
	cr_assert_eq(h_cmd(h, 1, &s, NULL), ST(GENERIC, LBA_RANGE));
	cr_assert_eq(rw(h, FERRY_NVME_CMD_READ, 1, 0, 32, rb, 512, 0), 0);
	cr_assert_eq(memcmp(hm_ptr(h->hm, rb), hm_ptr(h->hm, wb), 4 * 512), 0);
	cr_assert_eq(memcmp(hm_ptr(h->hm, rb) + 4 * 512, z, 4 * 512), 0);
	cr_assert_eq(memcmp(hm_ptr(h->hm, rb) + 8 * 512, hm_ptr(h->hm, wb) + 8 * 512, 24 * 512), 0);

	/* Deallocate blocks 10..11 and 20..22 (one empty range in between). */
	uint64_t rng = hm_alloc(h->hm, 4096, HM_PAGE);
	struct ferry_nvme_dsm_range r[3] = {{0, 2, 10}, {0, 0, 15}, {0, 3, 20}};
	memcpy(hm_ptr(h->hm, rng), r, sizeof(r));
	s = h_sqe(FERRY_NVME_CMD_DSM, 1);
	s.cdw10 = 2;       /* 3 ranges */
	s.cdw11 = 1u << 2; /* AD */
	h_prp(h, &s, rng, sizeof(r), 0);
	cr_assert_eq(h_cmd(h, 1, &s, NULL), 0);
	cr_assert_eq(rw(h, FERRY_NVME_CMD_READ, 1, 0, 32, rb, 512, 0), 0);
	cr_assert_eq(memcmp(hm_ptr(h->hm, rb) + 10 * 512, z, 2 * 512), 0);
	cr_assert_eq(memcmp(hm_ptr(h->hm, rb) + 12 * 512, hm_ptr(h->hm, wb) + 12 * 512, 8 * 512), 0);
	cr_assert_eq(memcmp(hm_ptr(h->hm, rb) + 20 * 512, z, 3 * 512), 0);
	cr_assert_eq(memcmp(hm_ptr(h->hm, rb) + 23 * 512, hm_ptr(h->hm, wb) + 23 * 512, 9 * 512), 0);

	/* A range beyond the namespace: nothing is deallocated. */
	struct ferry_nvme_dsm_range r2[2] = {{0, 1, 24}, {0, 10, 8190}};
	memcpy(hm_ptr(h->hm, rng), r2, sizeof(r2));
	s.cdw10 = 1;
	cr_assert_eq(h_cmd(h, 1, &s, NULL), ST(GENERIC, LBA_RANGE));
	cr_assert_eq(rw(h, FERRY_NVME_CMD_READ, 1, 24, 1, rb, 512, 0), 0);
	cr_assert_eq(memcmp(hm_ptr(h->hm, rb), hm_ptr(h->hm, wb) + 24 * 512, 512), 0);
	/* Without AD only hints: data stays. */
	r2[1].slba = 25;
	memcpy(hm_ptr(h->hm, rng), r2, sizeof(r2));
	s.cdw11 = 1; /* IDR */
	cr_assert_eq(h_cmd(h, 1, &s, NULL), 0);
	cr_assert_eq(rw(h, FERRY_NVME_CMD_READ, 1, 24, 1, rb, 512, 0), 0);
	cr_assert_eq(memcmp(hm_ptr(h->hm, rb), hm_ptr(h->hm, wb) + 24 * 512, 512), 0);
	/* Range list outside host memory. */
	s.cdw11 = 1u << 2;
	s.dptr.prp.prp1 = 0x3000;
	cr_assert_eq(h_cmd(h, 1, &s, NULL), ST(GENERIC, DATA_XFER_ERROR));
	h_destroy(h);
}

Test(nvme_io, compare)
{
	struct host *h = h_create(NULL);
	h_up(h, 16);
	uint64_t wb = hm_alloc(h->hm, 4096, HM_PAGE);
	h_fill(hm_ptr(h->hm, wb), 4096, 9);
	cr_assert_eq(rw(h, FERRY_NVME_CMD_WRITE, 1, 50, 8, wb, 512, 0), 0);
	cr_assert_eq(rw(h, FERRY_NVME_CMD_COMPARE, 1, 50, 8, wb, 512, 0), 0);
	((uint8_t *)hm_ptr(h->hm, wb))[3000] ^= 1;
	struct ferry_nvme_sqe s = h_sqe(0, 1);
	struct ferry_nvme_cqe e;
	h_rw(&s, FERRY_NVME_CMD_COMPARE, 50, 8);
	h_prp(h, &s, wb, 4096, 0);
	cr_assert_eq(h_cmd(h, 1, &s, &e), ST(MEDIA, COMPARE_FAILURE));
	cr_assert(cqe_dnr(&e));
	cr_assert_eq(rw(h, FERRY_NVME_CMD_COMPARE, 1, 8190, 8, wb, 512, 0), ST(GENERIC, LBA_RANGE));
	h_destroy(h);
}

Test(nvme_io, extended_lba_namespace)
{
	struct host_opts o = {.block_size = 520, .md_size = 8, .num_blocks = 128};
	struct host *h = h_create(&o);
	h_up(h, 16);
	uint64_t buf = hm_alloc(h->hm, 8192, HM_PAGE), rb = hm_alloc(h->hm, 8192, HM_PAGE);
	struct ferry_nvme_sqe s = h_sqe(FERRY_NVME_ADM_IDENTIFY, 1);
	h_prp(h, &s, buf, 4096, 0);
	cr_assert_eq(h_cmd(h, 0, &s, NULL), 0);
	struct ferry_nvme_id_ns ns;
	memcpy(&ns, hm_ptr(h->hm, buf), sizeof(ns));
	cr_assert_eq(ns.flbas, 0x10, "metadata at the end of each LBA");
	cr_assert_eq(ns.lbaf[0].ms, 8);
	cr_assert_eq(ns.lbaf[0].lbads, 9);
	h_fill(hm_ptr(h->hm, buf), 3 * 520, 5);
	cr_assert_eq(rw(h, FERRY_NVME_CMD_WRITE, 1, 7, 3, buf, 520, 0), 0);
	cr_assert_eq(rw(h, FERRY_NVME_CMD_READ, 1, 7, 3, rb, 520, 0), 0);
	cr_assert_eq(memcmp(hm_ptr(h->hm, buf), hm_ptr(h->hm, rb), 3 * 520), 0);
	h_destroy(h);
}

Test(nvme_io, async_host_domain)
{
	struct host_opts o = {.async = 1};
	struct host *h = h_create(&o);
	h_up(h, 64);
	/* Buffer i starts at page i and spans up to 15 blocks: 34 pages cover the last one. */
	uint64_t wb = hm_alloc(h->hm, 34 * 4096, HM_PAGE), rb = hm_alloc(h->hm, 34 * 4096, HM_PAGE);
	h_fill(hm_ptr(h->hm, wb), 34 * 4096, 11);
	for (int i = 0; i < 32; i++) {
		struct ferry_nvme_sqe s = h_sqe(0, 1);
		h_rw(&s, FERRY_NVME_CMD_WRITE, (uint64_t)i * 16, 8 + (i % 8));
		h_prp(h, &s, wb + (uint64_t)i * 4096, (uint64_t)(8 + i % 8) * 512, 0);
		h_submit(h, 1, &s);
	}
	struct ferry_nvme_cqe e;
	for (int i = 0; i < 32; i++) {
		cr_assert(h_wait(h, 1, &e));
		cr_assert_eq(cqe_st(&e), 0);
	}
	for (int i = 0; i < 32; i++) {
		cr_assert_eq(rw(h, FERRY_NVME_CMD_READ, 1, (uint64_t)i * 16, 8 + (i % 8),
				rb + (uint64_t)i * 4096, 512, 0), 0);
		cr_assert_eq(memcmp(hm_ptr(h->hm, rb + (uint64_t)i * 4096),
				    hm_ptr(h->hm, wb + (uint64_t)i * 4096), (8 + i % 8) * 512), 0);
	}
	h_destroy(h);
}
