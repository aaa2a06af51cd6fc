/*
 * Hostile host input to the NVMe controller core: host inputs that used to be
 * accepted or mishandled. An SQ tail doorbell that would over-fill the queue (it made the
 * controller fetch stale slots again), admin queues whose base + size wraps around 2^64,
 * host errors at MMIO rate flooding the error log, refused enables flooding the firmware
 * log, and interrupt-coalescing state surviving a controller reset.
 */
#include <stdarg.h>
#include "nvme_internal.h"
#include "test_nvme_host.h"
#include <ferry/module/nvme_ctrlr.h>

static void quiet_log(enum ferry_log_level l, const char *c, const char *f, va_list ap)
{
	(void)l;
	(void)c;
	(void)f;
	(void)ap;
}

static struct ferry_nvme_ctrlr_stats stats(struct host *h)
{
	struct ferry_nvme_ctrlr_stats st = {.size = sizeof(st)};
	cr_assert_eq(ferry_nvme_ctrlr_get_stats(h->ctrlr, &st), 0);
	return st;
}

/* Collects every completion of queue qid for a while (no doorbell for each: one at the end). */
static int drain(struct host *h, int qid, uint16_t *cids, int max)
{
	int n = 0;
	struct ferry_nvme_cqe e;
	for (int i = 0; i < 2000; i++) {
		while (n < max && h_peek(h, qid, &e)) {
			cr_assert_eq(cqe_st(&e), 0, "cid %u failed: 0x%x", e.cid, cqe_st(&e));
			cids[n++] = e.cid;
		}
		h_poll(h);
	}
	h_cq_doorbell(h, qid);
	return n;
}

Test(nvme_host_input, sq_tail_that_overfills_the_queue_is_refused)
{
	struct host *h = h_create(NULL);
	h_up(h, 8);
	struct hq *q = &h->q[1];
	/* Five valid commands, then a tail write that moves the tail back by two: that adds
	 * six entries to a queue with two free slots (the spec's "add an entry to a full
	 * Submission Queue", an Invalid Doorbell Write Value). */
	for (uint16_t i = 0; i < 5; i++) {
		struct ferry_nvme_sqe s = h_sqe(FERRY_NVME_CMD_FLUSH, 1);
		s.cid = (uint16_t)(100 + i);
		memcpy(hm_ptr(h->hm, q->sq + (uint64_t)i * 64), &s, 64);
	}
	h_wr32(h, FERRY_NVME_REG_DBS + 8, 5);
	ferry_log_set_handler(quiet_log);
	h_wr32(h, FERRY_NVME_REG_DBS + 8, 3);
	ferry_log_set_handler(NULL);
	cr_assert_eq(stats(h).doorbell_errors, 1, "the over-full tail is reported");
	q->tail = 5;
	uint16_t cids[8];
	int n = drain(h, 1, cids, 8);
	cr_assert_eq(n, 5, "%d completions: the valid tail (5) must stay in force", n);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(cids[i], 100 + i);
	/* The queue keeps working, and a full lap with 7 entries (size - 1) is still valid. */
	for (uint16_t i = 0; i < 7; i++) {
		struct ferry_nvme_sqe s = h_sqe(FERRY_NVME_CMD_FLUSH, 1);
		s.cid = (uint16_t)(200 + i);
		memcpy(hm_ptr(h->hm, q->sq + (uint64_t)((5 + i) % 8) * 64), &s, 64);
	}
	h_wr32(h, FERRY_NVME_REG_DBS + 8, (5 + 7) % 8);
	q->tail = (5 + 7) % 8;
	n = drain(h, 1, cids, 8);
	cr_assert_eq(n, 7);
	cr_assert_eq(stats(h).doorbell_errors, 1);
	h_destroy(h);
}

/* Enable with AQA entries and the given ASQ/ACQ; returns CSTS. */
static uint32_t enable_at(struct host *h, uint32_t entries, uint64_t asq, uint64_t acq)
{
	h_wr32(h, FERRY_NVME_REG_AQA, (entries - 1) | ((entries - 1) << 16));
	h_wr64(h, FERRY_NVME_REG_ASQ, asq);
	h_wr64(h, FERRY_NVME_REG_ACQ, acq);
	h_wr32(h, FERRY_NVME_REG_CC, H_CC_DEFAULT);
	for (int i = 0; i < 10; i++)
		h_poll(h);
	return h_rd32(h, FERRY_NVME_REG_CSTS);
}

Test(nvme_host_input, admin_queue_wrapping_around_2e64_is_refused)
{
	struct host *h = h_create(NULL);
	uint64_t top = 0ull - 4096; /* the last page of the 64-bit address space */
	uint64_t ok = hm_alloc(h->hm, 128 * 64, HM_PAGE);
	ferry_log_set_handler(quiet_log);
	/* 128 x 64-byte SQ entries from the last page: slot 64 would be at address 0. */
	uint32_t csts = enable_at(h, 128, top, ok);
	cr_assert_eq(csts & (FERRY_NVME_CSTS_RDY | FERRY_NVME_CSTS_CFS), FERRY_NVME_CSTS_CFS,
		     "ASQ wraps: CSTS 0x%x", csts);
	h_wr32(h, FERRY_NVME_REG_CC, 0);
	cr_assert(h_wait_csts(h, FERRY_NVME_CSTS_CFS | FERRY_NVME_CSTS_RDY, 0));
	/* 512 x 16-byte CQ entries from the last page. */
	csts = enable_at(h, 512, ok, top);
	cr_assert_eq(csts & (FERRY_NVME_CSTS_RDY | FERRY_NVME_CSTS_CFS), FERRY_NVME_CSTS_CFS,
		     "ACQ wraps: CSTS 0x%x", csts);
	h_wr32(h, FERRY_NVME_REG_CC, 0);
	cr_assert(h_wait_csts(h, FERRY_NVME_CSTS_CFS | FERRY_NVME_CSTS_RDY, 0));
	ferry_log_set_handler(NULL);
	/* Exactly filling the last page is fine (64 SQ entries, 256 CQ entries). */
	csts = enable_at(h, 64, top, ok);
	cr_assert_eq(csts & (FERRY_NVME_CSTS_RDY | FERRY_NVME_CSTS_CFS), FERRY_NVME_CSTS_RDY);
	h_wr32(h, FERRY_NVME_REG_CC, 0);
	cr_assert(h_wait_csts(h, FERRY_NVME_CSTS_RDY, 0));
	h_destroy(h);
}

static int nvme_errors_logged;

static void count_log(enum ferry_log_level l, const char *c, const char *f, va_list ap)
{
	(void)f;
	(void)ap;
	if (l == FERRY_LOG_ERROR && strcmp(c, NVME_COMP) == 0)
		nvme_errors_logged++;
}

Test(nvme_host_input, host_errors_at_mmio_rate_do_not_flood_the_log)
{
	struct host *h = h_create(NULL);
	h_up(h, 8);
	nvme_errors_logged = 0;
	ferry_log_set_handler(count_log);
	for (int i = 0; i < 1000; i++) {
		/* A doorbell beyond the last queue, and an 8-byte access to a 32-bit register. */
		h_wr32(h, FERRY_NVME_REG_DBS + 8 * 100, 1);
		uint64_t v;
		cr_assert_eq(ferry_nvme_ctrlr_reg_read(h->ctrlr, FERRY_NVME_REG_CC, 8, &v),
			     -EINVAL);
	}
	ferry_log_set_handler(NULL);
	cr_assert_eq(stats(h).doorbell_errors, 1000, "every bad doorbell is still counted");
	cr_assert_leq(nvme_errors_logged, 40, "%d error messages for 2000 bad host accesses",
		      nvme_errors_logged);
	cr_assert_geq(nvme_errors_logged, 2, "the first ones are logged");
	/* The controller still works. */
	struct ferry_nvme_sqe s = h_sqe(FERRY_NVME_CMD_FLUSH, 1);
	cr_assert_eq(h_cmd(h, 1, &s, NULL), 0);
	h_destroy(h);
}

static int nvme_lines_logged;

static void count_lines(enum ferry_log_level l, const char *c, const char *f, va_list ap)
{
	(void)l;
	(void)f;
	(void)ap;
	if (strcmp(c, NVME_COMP) == 0)
		nvme_lines_logged++;
}

Test(nvme_host_input, refused_enables_do_not_flood_the_log)
{
	struct host *h = h_create(NULL);
	uint64_t sq = hm_alloc(h->hm, 4096, HM_PAGE), cq = hm_alloc(h->hm, 4096, HM_PAGE);
	h_wr64(h, FERRY_NVME_REG_ASQ, sq);
	h_wr64(h, FERRY_NVME_REG_ACQ, cq);
	h_wr32(h, FERRY_NVME_REG_AQA, 0); /* an admin queue of one entry: refused */
	nvme_lines_logged = 0;
	ferry_log_set_level(FERRY_LOG_WARN);
	ferry_log_set_handler(count_lines);
	for (int i = 0; i < 10000; i++) {
		h_wr32(h, FERRY_NVME_REG_CC, H_CC_DEFAULT);
		cr_assert_eq(h_rd32(h, FERRY_NVME_REG_CSTS) & FERRY_NVME_CSTS_CFS, FERRY_NVME_CSTS_CFS);
		h_wr32(h, FERRY_NVME_REG_CC, 0);
		h_poll(h);
		cr_assert_eq(h_rd32(h, FERRY_NVME_REG_CSTS), 0);
	}
	ferry_log_set_handler(NULL);
	cr_assert_leq(nvme_lines_logged, NVME_HOST_ERR_LOG + 1,
		      "%d lines logged for 10000 refused enables", nvme_lines_logged);
	cr_assert_geq(nvme_lines_logged, 1, "the first refusal is logged");
	cr_assert_eq(stats(h).resets, 10000);
	h_destroy(h);
}

Test(nvme_host_input, reset_clears_interrupt_coalescing_state)
{
	struct host *h = h_create(NULL);
	h_up(h, 8);
	struct ferry_nvme_sqe sf = h_sqe(FERRY_NVME_ADM_SET_FEATURES, 0);
	sf.cdw10 = FERRY_NVME_FEAT_IRQ_COALESCING;
	sf.cdw11 = 3; /* raise once 4 entries are pending */
	cr_assert_eq(h_cmd(h, 0, &sf, NULL), 0);
	/* A completion counted for coalescing (as cq_drain does inside a CQ doorbell write),
	 * then a reset before the end of the poll. */
	nvme_irq(h->ctrlr, 1);
	cr_assert_eq(h->ctrlr->coalesced, 1);
	h_disable(h);
	cr_assert_eq(h->ctrlr->vec_count[1], 0);
	cr_assert_eq(h->ctrlr->coalesced, 0, "coalescing count survived the reset");
	h_destroy(h);
}
