/*
 * NVMe queues: doorbell validation (bounds, unposted completions, missing queues) with the
 * asynchronous error event and error log; a full completion queue is never overwritten and
 * fetching resumes when the host frees entries; phase tag wrap; SQ head reporting; interrupts
 * per vector, disabled, coalesced; round robin between submission queues.
 */
#include "test_nvme_host.h"
#include <ferry/module/nvme_ctrlr.h>

static struct ferry_nvme_ctrlr_stats stats(struct host *h)
{
	struct ferry_nvme_ctrlr_stats st = {.size = sizeof(st)};
	cr_assert_eq(ferry_nvme_ctrlr_get_stats(h->ctrlr, &st), 0);
	return st;
}

static void submit_flush(struct host *h, int qid)
{
	struct ferry_nvme_sqe s = h_sqe(FERRY_NVME_CMD_FLUSH, 1);
	h_submit(h, qid, &s);
}

Test(nvme_queue, doorbell_bounds)
{
	struct host *h = h_create(NULL);
	h_up(h, 8);
	uint32_t bar = ferry_nvme_ctrlr_get_bar_size(h->ctrlr);
	/* SQ tail beyond the queue: ignored, reported. */
	struct ferry_nvme_sqe s = h_sqe(FERRY_NVME_CMD_FLUSH, 1);
	memcpy(hm_ptr(h->hm, h->q[1].sq), &s, 64);
	h_wr32(h, FERRY_NVME_REG_DBS + 8, 8);
	for (int i = 0; i < 10; i++)
		h_poll(h);
	struct ferry_nvme_cqe e;
	cr_assert_eq(h_peek(h, 1, &e), 0, "nothing fetched");
	cr_assert_eq(stats(h).doorbell_errors, 1);
	h_wr32(h, FERRY_NVME_REG_DBS + 8, 0xffffffff);
	cr_assert_eq(stats(h).doorbell_errors, 2);
	/* CQ head that frees entries never posted. */
	h_wr32(h, FERRY_NVME_REG_DBS + 12, 3);
	cr_assert_eq(stats(h).doorbell_errors, 3);
	/* Doorbells of queues that do not exist, and beyond the last queue. */
	h_wr32(h, FERRY_NVME_REG_DBS + 8 * 4, 1);
	h_wr32(h, FERRY_NVME_REG_DBS + 8 * 100 + 4, 1);
	cr_assert_eq(stats(h).doorbell_errors, 5);
	cr_assert_eq(ferry_nvme_ctrlr_reg_write(h->ctrlr, bar, 4, 1), -EINVAL);
	/* The queue still works afterwards. */
	s = h_sqe(FERRY_NVME_CMD_FLUSH, 1);
	cr_assert_eq(h_cmd(h, 1, &s, NULL), 0);
	/* Every bad write is in the error log. */
	uint64_t buf = hm_alloc(h->hm, 4096, HM_PAGE);
	struct ferry_nvme_sqe gl = h_sqe(FERRY_NVME_ADM_GET_LOG_PAGE, 0);
	gl.cdw10 = FERRY_NVME_LOG_ERROR | (1023u << 16);
	h_prp(h, &gl, buf, 4096, 0);
	cr_assert_eq(h_cmd(h, 0, &gl, NULL), 0);
	struct ferry_nvme_error_log el;
	memcpy(&el, hm_ptr(h->hm, buf), sizeof(el));
	cr_assert_eq(el.error_count, 5);
	cr_assert_eq(el.sqid, 100);
	h_destroy(h);
}

Test(nvme_queue, cq_full_no_overwrite)
{
	struct host *h = h_create(NULL);
	h_up(h, 0);
	/* SQ of 16 entries completing into a CQ of 4 (3 usable). */
	struct hq *q = &h->q[1];
	q->sq = hm_alloc(h->hm, 4096, HM_PAGE);
	q->cq = hm_alloc(h->hm, 4096, HM_PAGE);
	q->size = 16;
	q->phase = 1;
	cr_assert_eq(h_create_cq(h, 1, 4, q->cq, 3, 1), 0);
	cr_assert_eq(h_create_sq(h, 1, 16, q->sq, 1), 0);
	q->live = 1;
	uint16_t first = h->cid;
	for (int i = 0; i < 10; i++)
		submit_flush(h, 1);
	for (int i = 0; i < 20; i++)
		h_poll(h);
	/* Exactly 3 entries posted; the 4th slot untouched. */
	struct ferry_nvme_cqe cq[4];
	memcpy(cq, hm_ptr(h->hm, q->cq), sizeof(cq));
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(cq[i].status & 1, 1);
		cr_assert_eq(cq[i].cid, (uint16_t)(first + i));
	}
	cr_assert_eq(cq[3].status, 0, "a full CQ was overwritten");
	cr_assert_gt(stats(h).cq_full_stalls, 0);
	/* Consume with a CQ of size 4 and an SQ of size 16: track by hand. */
	uint32_t head = 0, phase = 1, got = 0;
	uint16_t seen[10];
	for (int iter = 0; iter < 1000 && got < 10; iter++) {
		struct ferry_nvme_cqe e;
		memcpy(&e, hm_ptr(h->hm, q->cq + head * 16), 16);
		if ((e.status & 1) == phase) {
			cr_assert_eq(cqe_st(&e), 0);
			seen[got++] = e.cid;
			if (++head == 4) {
				head = 0;
				phase ^= 1;
			}
			h_wr32(h, FERRY_NVME_REG_DBS + 12, head);
		} else {
			h_poll(h);
		}
	}
	cr_assert_eq(got, 10);
	for (uint32_t i = 0; i < 10; i++)
		cr_assert_eq(seen[i], (uint16_t)(first + i), "completions in order, none lost");
	h_destroy(h);
}

Test(nvme_queue, phase_wrap_and_sq_head)
{
	struct host *h = h_create(NULL);
	h_up(h, 4);
	struct ferry_nvme_cqe e;
	for (int i = 0; i < 50; i++) {
		struct ferry_nvme_sqe s = h_sqe(FERRY_NVME_CMD_FLUSH, 1);
		cr_assert_eq(h_cmd(h, 1, &s, &e), 0);
		cr_assert_eq(e.sqhd, (uint16_t)((i + 1) % 4), "SQ head after the fetch");
	}
	cr_assert_eq(h->q[1].phase, (50 / 4) % 2 == 0 ? 1 : 0, "the host followed the phase");
	h_destroy(h);
}

Test(nvme_queue, interrupts_per_vector)
{
	struct host *h = h_create(NULL);
	h_up(h, 8);
	h_ioq(h, 2, 8);
	/* Queue 3 without interrupts. */
	struct hq *q = &h->q[3];
	q->sq = hm_alloc(h->hm, 4096, HM_PAGE);
	q->cq = hm_alloc(h->hm, 4096, HM_PAGE);
	q->size = 8;
	q->phase = 1;
	cr_assert_eq(h_create_cq(h, 3, 8, q->cq, 1, 0), 0);
	cr_assert_eq(h_create_sq(h, 3, 8, q->sq, 3), 0);
	q->live = 1;
	uint64_t i1 = h->tr_state.irqs[1], i2 = h->tr_state.irqs[2], i0 = h->tr_state.irqs[0];
	struct ferry_nvme_sqe s = h_sqe(FERRY_NVME_CMD_FLUSH, 1);
	cr_assert_eq(h_cmd(h, 1, &s, NULL), 0);
	cr_assert_eq(h_cmd(h, 2, &s, NULL), 0);
	cr_assert_eq(h_cmd(h, 2, &s, NULL), 0);
	cr_assert_eq(h_cmd(h, 3, &s, NULL), 0);
	cr_assert_eq(h->tr_state.irqs[1], i1 + 1);
	cr_assert_eq(h->tr_state.irqs[2], i2 + 2);
	cr_assert_eq(h->tr_state.irqs[0], i0, "I/O queues do not raise the admin vector");
	h_destroy(h);
}

Test(nvme_queue, interrupt_coalescing)
{
	struct host *h = h_create(NULL);
	h_up(h, 32);
	struct ferry_nvme_sqe f = h_sqe(FERRY_NVME_ADM_SET_FEATURES, 0);
	f.cdw10 = FERRY_NVME_FEAT_IRQ_COALESCING;
	f.cdw11 = 3; /* aggregation threshold: 4 entries */
	cr_assert_eq(h_cmd(h, 0, &f, NULL), 0);
	uint64_t before = h->tr_state.irqs[1];
	for (int i = 0; i < 10; i++)
		submit_flush(h, 1);
	ferry_nvme_ctrlr_poll(h->ctrlr, 64);
	cr_assert_eq(h->tr_state.irqs[1], before + 3, "4 + 4 + the remaining 2 at the end of poll");
	/* Coalescing disabled for vector 1 through Interrupt Vector Configuration. */
	struct ferry_nvme_cqe e;
	while (h_peek(h, 1, &e))
		;
	h_cq_doorbell(h, 1);
	f.cdw10 = FERRY_NVME_FEAT_IRQ_CONFIG;
	f.cdw11 = 1 | (1u << 16);
	cr_assert_eq(h_cmd(h, 0, &f, NULL), 0);
	before = h->tr_state.irqs[1];
	for (int i = 0; i < 10; i++)
		submit_flush(h, 1);
	ferry_nvme_ctrlr_poll(h->ctrlr, 64);
	cr_assert_eq(h->tr_state.irqs[1], before + 10);
	h_destroy(h);
}

Test(nvme_queue, round_robin_two_sqs_one_cq)
{
	struct host *h = h_create(NULL);
	h_up(h, 64);
	struct hq *q2 = &h->q[2];
	q2->sq = hm_alloc(h->hm, 4096, HM_PAGE);
	q2->size = 64;
	cr_assert_eq(h_create_sq(h, 2, 64, q2->sq, 1), 0);
	q2->live = 1;
	for (int i = 0; i < 20; i++) {
		submit_flush(h, 1);
		submit_flush(h, 2);
	}
	int from[3] = {0};
	struct ferry_nvme_cqe e;
	for (int i = 0; i < 40; i++) {
		cr_assert(h_wait(h, 1, &e));
		cr_assert_eq(cqe_st(&e), 0);
		cr_assert(e.sqid == 1 || e.sqid == 2);
		from[e.sqid]++;
	}
	cr_assert_eq(from[1], 20);
	cr_assert_eq(from[2], 20);
	h_destroy(h);
}
