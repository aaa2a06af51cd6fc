/*
 * The Error Information log (01h) against the completions it describes: the Status
 * Information of an entry (bytes 15:14) is the completion's: bits 15:1 its Status Field,
 * DNR included, bit 0 its Phase Tag, in both phases of the admin CQ and for retryable
 * statuses (no DNR).
 */
#include "test_nvme_host.h"
#include <ferry/module/nvme_ctrlr.h>

static struct ferry_nvme_error_log newest_error(struct host *h)
{
	uint64_t buf = hm_alloc(h->hm, 4096, HM_PAGE);
	struct ferry_nvme_sqe s = h_sqe(FERRY_NVME_ADM_GET_LOG_PAGE, 0);
	s.cdw10 = FERRY_NVME_LOG_ERROR | (1u << 15) | ((64u / 4 - 1) << 16); /* RAE, 64 bytes */
	h_prp(h, &s, buf, 64, 0);
	cr_assert_eq(h_cmd(h, 0, &s, NULL), 0);
	struct ferry_nvme_error_log el;
	memcpy(&el, hm_ptr(h->hm, buf), sizeof(el));
	return el;
}

Test(nvme_error_log, status_equals_the_completion_status_field)
{
	struct host *h = h_create(NULL);
	h_up(h, 16);
	/* The 32-entry admin CQ wraps after 32 completions: 40 failing commands (and a log
	 * read after each) see both phases. */
	int seen_phase[2] = {0, 0};
	for (int i = 0; i < 40; i++) {
		struct ferry_nvme_sqe bad = h_sqe(0x7f, 0); /* Invalid Command Opcode, DNR */
		struct ferry_nvme_cqe e;
		cr_assert_eq(h_cmd(h, 0, &bad, &e), ST(GENERIC, INVALID_OPCODE));
		cr_assert(cqe_dnr(&e));
		struct ferry_nvme_error_log el = newest_error(h);
		cr_assert_eq(el.cid, e.cid);
		cr_assert_eq(el.status, e.status, "entry %d: log status 0x%04x, completion 0x%04x",
			     i, el.status, e.status);
		seen_phase[e.status & 1] = 1;
	}
	cr_assert(seen_phase[0] && seen_phase[1], "both phase tags were exercised");
	h_destroy(h);
}

Test(nvme_error_log, io_error_status_and_lba)
{
	struct host *h = h_create(NULL);
	h_up(h, 16);
	uint64_t buf = hm_alloc(h->hm, 4096, HM_PAGE);
	struct ferry_nvme_sqe r = h_sqe(0, 1);
	h_rw(&r, FERRY_NVME_CMD_READ, 8192, 1); /* past the 8192-block namespace */
	h_prp(h, &r, buf, 512, 0);
	struct ferry_nvme_cqe e;
	cr_assert_eq(h_cmd(h, 1, &r, &e), ST(GENERIC, LBA_RANGE));
	struct ferry_nvme_error_log el = newest_error(h);
	cr_assert_eq(el.sqid, 1);
	cr_assert_eq(el.nsid, 1);
	cr_assert_eq(el.lba, 8192);
	cr_assert_eq(el.status, e.status);
	cr_assert_eq(el.status >> 15, 1, "DNR recorded");
	cr_assert_eq(el.status & 1, 1, "phase tag of the first lap of the I/O CQ");
	h_destroy(h);
}
