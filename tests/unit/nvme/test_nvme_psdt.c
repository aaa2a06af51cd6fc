/*
 * The PSDT field of every command, with and without data: 11b is reserved everywhere, and
 * admin commands over PCIe use PRPs only (01b/10b refused). Invalid Field in Command, DNR,
 * and nothing done (no queue created, no feature changed).
 */
#include "test_nvme_host.h"
#include <ferry/module/nvme_ctrlr.h>

#define PSDT(v) ((uint8_t)((v) << FERRY_NVME_FLAGS_PSDT_SHIFT))

Test(nvme_psdt, create_io_queues_need_prps)
{
	struct host *h = h_create(NULL);
	h_up(h, 0);
	uint64_t cq = hm_alloc(h->hm, 4096, HM_PAGE), sq = hm_alloc(h->hm, 4096, HM_PAGE);
	for (uint8_t p = 1; p <= 3; p++) {
		struct ferry_nvme_sqe s = h_sqe(FERRY_NVME_ADM_CREATE_CQ, 0);
		s.flags = PSDT(p);
		s.dptr.prp.prp1 = cq;
		s.cdw10 = 1 | (15u << 16);
		s.cdw11 = 1;
		struct ferry_nvme_cqe e;
		cr_assert_eq(h_cmd(h, 0, &s, &e), ST(GENERIC, INVALID_FIELD), "CQ with PSDT %u", p);
		cr_assert(cqe_dnr(&e));
	}
	/* Nothing was created: the same CQ with PRPs succeeds, then the SQ checks. */
	cr_assert_eq(h_create_cq(h, 1, 16, cq, 1, 0), 0);
	for (uint8_t p = 1; p <= 3; p++) {
		struct ferry_nvme_sqe s = h_sqe(FERRY_NVME_ADM_CREATE_SQ, 0);
		s.flags = PSDT(p);
		s.dptr.prp.prp1 = sq;
		s.cdw10 = 1 | (15u << 16);
		s.cdw11 = 1 | (1u << 16);
		cr_assert_eq(h_cmd(h, 0, &s, NULL), ST(GENERIC, INVALID_FIELD), "SQ with PSDT %u", p);
	}
	cr_assert_eq(h_create_sq(h, 1, 16, sq, 1), 0);
	h_destroy(h);
}

Test(nvme_psdt, reserved_psdt_without_data_is_refused)
{
	struct host *h = h_create(NULL);
	h_up(h, 16);
	/* Set Features (no data): refused, the feature keeps its value. */
	struct ferry_nvme_sqe s = h_sqe(FERRY_NVME_ADM_SET_FEATURES, 0);
	s.flags = PSDT(3);
	s.cdw10 = FERRY_NVME_FEAT_VOLATILE_WC;
	s.cdw11 = 0;
	cr_assert_eq(h_cmd(h, 0, &s, NULL), ST(GENERIC, INVALID_FIELD));
	struct ferry_nvme_sqe g = h_sqe(FERRY_NVME_ADM_GET_FEATURES, 0);
	g.cdw10 = FERRY_NVME_FEAT_VOLATILE_WC;
	struct ferry_nvme_cqe e;
	cr_assert_eq(h_cmd(h, 0, &g, &e), 0);
	cr_assert_eq(e.dw0, 1, "VWC still enabled");
	/* Keep Alive and Get Features too. */
	struct ferry_nvme_sqe k = h_sqe(FERRY_NVME_ADM_KEEP_ALIVE, 0);
	k.flags = PSDT(3);
	cr_assert_eq(h_cmd(h, 0, &k, NULL), ST(GENERIC, INVALID_FIELD));
	g.flags = PSDT(1);
	cr_assert_eq(h_cmd(h, 0, &g, NULL), ST(GENERIC, INVALID_FIELD), "admin SGL");
	/* I/O commands without data: Flush, Write Zeroes. */
	struct ferry_nvme_sqe f = h_sqe(FERRY_NVME_CMD_FLUSH, 1);
	f.flags = PSDT(3);
	cr_assert_eq(h_cmd(h, 1, &f, &e), ST(GENERIC, INVALID_FIELD));
	cr_assert(cqe_dnr(&e));
	struct ferry_nvme_sqe wz = h_sqe(0, 1);
	h_rw(&wz, FERRY_NVME_CMD_WRITE_ZEROES, 0, 8);
	wz.flags = PSDT(3);
	cr_assert_eq(h_cmd(h, 1, &wz, NULL), ST(GENERIC, INVALID_FIELD));
	/* PSDT 01b on an I/O command without data is fine (SGLs are supported). */
	f.flags = PSDT(1);
	cr_assert_eq(h_cmd(h, 1, &f, NULL), 0);
	wz.flags = 0;
	cr_assert_eq(h_cmd(h, 1, &wz, NULL), 0);
	h_destroy(h);
}
