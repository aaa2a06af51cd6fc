/*
 * NVMe controller registers and state machine: CAP/VS values, access validation, the enable
 * sequence (CC.EN → CSTS.RDY), invalid configurations (CSTS.CFS), reset (CC.EN 1 → 0 clears
 * RDY and deletes the I/O queues), shutdown (CC.SHN → CSTS.SHST), INTMS/INTMC.
 */
#include "test_nvme_host.h"
#include <ferry/module/transport.h>
#include <ferry/module/nvme_ctrlr.h>
#include <ferry/log.h>
#include <stdarg.h>

static void quiet_log(enum ferry_log_level l, const char *c, const char *f, va_list ap)
{
	(void)l;
	(void)c;
	(void)f;
	(void)ap;
}

Test(nvme_regs, cap_and_version)
{
	struct host *h = h_create(NULL);
	uint64_t cap = 0;
	cr_assert_eq(ferry_nvme_ctrlr_reg_read(h->ctrlr, FERRY_NVME_REG_CAP, 8, &cap), 0);
	cr_assert_eq(FERRY_NVME_CAP_MQES(cap), 1023, "default MQES is 1024 entries, 0's based");
	cr_assert(cap & FERRY_NVME_CAP_CQR, "contiguous queues required");
	cr_assert_eq(FERRY_NVME_CAP_DSTRD(cap), 0);
	cr_assert_eq(FERRY_NVME_CAP_TO(cap), 20);
	cr_assert(cap & FERRY_NVME_CAP_CSS_NVM);
	cr_assert_eq(FERRY_NVME_CAP_MPSMIN(cap), 0);
	cr_assert_eq(FERRY_NVME_CAP_MPSMAX(cap), 0);
	/* The two halves read with 4-byte accesses. */
	cr_assert_eq(h_rd32(h, FERRY_NVME_REG_CAP), (uint32_t)cap);
	cr_assert_eq(h_rd32(h, FERRY_NVME_REG_CAP + 4), (uint32_t)(cap >> 32));
	cr_assert_eq(h_rd32(h, FERRY_NVME_REG_VS), FERRY_NVME_VS_1_4);
	cr_assert_eq(h_rd32(h, FERRY_NVME_REG_CSTS), 0, "starts disabled");
	cr_assert_geq(ferry_nvme_ctrlr_get_bar_size(h->ctrlr), 0x4000u);
	h_destroy(h);
}

Test(nvme_regs, version_2_0_is_refused_and_options)
{
	/* 2.0 is not offered: CAP.CRMS, Identify CNS 05h-08h and the Commands Supported and
	 * Effects log, which 2.0 makes mandatory, are not implemented. */
	struct host *h = h_create(NULL);
	struct ferry_nvme_ctrlr_opts co = {.size = sizeof(co), .subsys = h->subsys,
					   .transport = h->tr, .host_domain = h->hm->dom,
					   .cntlid = 77, .version = FERRY_NVME_VS_2_0};
	struct ferry_nvme_ctrlr *c2 = NULL;
	ferry_log_set_handler(quiet_log);
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &c2), -ENOTSUP);
	ferry_log_set_handler(NULL);
	cr_assert_null(c2);
	cr_assert(strstr(ferry_last_error(), "2.0"), "message: %s", ferry_last_error());
	h_destroy(h);

	struct host_opts o = {0};
	o.copts.size = sizeof(o.copts);
	o.copts.version = FERRY_NVME_VS_1_4;
	o.copts.max_queue_entries = 64;
	o.copts.mpsmax = 2;
	h = h_create(&o);
	uint64_t cap = 0;
	cr_assert_eq(ferry_nvme_ctrlr_reg_read(h->ctrlr, 0, 8, &cap), 0);
	cr_assert_eq(FERRY_NVME_CAP_MQES(cap), 63);
	cr_assert_eq(FERRY_NVME_CAP_MPSMAX(cap), 2);
	cr_assert_eq(h_rd32(h, FERRY_NVME_REG_VS), FERRY_NVME_VS_1_4);
	h_destroy(h);
}

Test(nvme_regs, access_validation)
{
	struct host *h = h_create(NULL);
	uint64_t v;
	uint32_t bar = ferry_nvme_ctrlr_get_bar_size(h->ctrlr);
	cr_assert_eq(ferry_nvme_ctrlr_reg_read(h->ctrlr, FERRY_NVME_REG_CC, 2, &v), -EINVAL);
	cr_assert_eq(ferry_nvme_ctrlr_reg_read(h->ctrlr, 0x15, 4, &v), -EINVAL, "misaligned");
	cr_assert_eq(ferry_nvme_ctrlr_reg_read(h->ctrlr, FERRY_NVME_REG_CC, 8, &v), -EINVAL,
		     "8-byte access to a 32-bit register");
	cr_assert_eq(ferry_nvme_ctrlr_reg_read(h->ctrlr, bar, 4, &v), -EINVAL, "beyond the BAR");
	cr_assert_eq(ferry_nvme_ctrlr_reg_read(h->ctrlr, 0xfffffffc, 4, &v), -EINVAL);
	cr_assert_eq(ferry_nvme_ctrlr_reg_write(h->ctrlr, bar - 4 + 8, 4, 0), -EINVAL);
	cr_assert_eq(ferry_nvme_ctrlr_reg_read(h->ctrlr, 0, 4, NULL), -EINVAL);
	cr_assert_eq(ferry_nvme_ctrlr_reg_read(NULL, 0, 4, &v), -EINVAL);
	/* Reserved registers read 0; writes to read-only registers are ignored. */
	cr_assert_eq(ferry_nvme_ctrlr_reg_read(h->ctrlr, 0x38, 4, &v), 0);
	cr_assert_eq(v, 0);
	uint32_t vs = h_rd32(h, FERRY_NVME_REG_VS);
	h_wr32(h, FERRY_NVME_REG_VS, 0xdeadbeef);
	h_wr32(h, FERRY_NVME_REG_CSTS, 0xffffffff);
	cr_assert_eq(h_rd32(h, FERRY_NVME_REG_VS), vs);
	cr_assert_eq(h_rd32(h, FERRY_NVME_REG_CSTS), 0);
	/* 64-bit ASQ through both halves and as one access. */
	h_wr32(h, FERRY_NVME_REG_ASQ, 0x12345000);
	h_wr32(h, FERRY_NVME_REG_ASQ + 4, 0x9);
	cr_assert_eq(ferry_nvme_ctrlr_reg_read(h->ctrlr, FERRY_NVME_REG_ASQ, 8, &v), 0);
	cr_assert_eq(v, 0x912345000ull);
	h_wr64(h, FERRY_NVME_REG_ACQ, 0xabc000);
	cr_assert_eq(h_rd32(h, FERRY_NVME_REG_ACQ), 0xabc000);
	h_wr32(h, FERRY_NVME_REG_AQA, 0xffffffff);
	cr_assert_eq(h_rd32(h, FERRY_NVME_REG_AQA), 0x0fff0fff, "reserved AQA bits read 0");
	h_destroy(h);
}

Test(nvme_regs, enable_sets_ready)
{
	struct host *h = h_create(NULL);
	uint32_t csts = h_enable(h, 16, H_CC_DEFAULT);
	cr_assert_eq(csts, FERRY_NVME_CSTS_RDY);
	cr_assert_eq(h->tr_state.events[FERRY_NVME_EVENT_ENABLED], 1);
	/* An admin command works right away. */
	struct ferry_nvme_sqe s = h_sqe(FERRY_NVME_ADM_KEEP_ALIVE, 0);
	cr_assert_eq(h_cmd(h, 0, &s, NULL), 0);
	cr_assert_gt(h->tr_state.irqs[0], 0, "admin CQ interrupt on vector 0");
	h_destroy(h);
}

static void expect_cfs(uint32_t entries, uint32_t cc, uint64_t asq, const char *what)
{
	struct host *h = h_create(NULL);
	h_enable(h, entries, cc);
	if (asq) {
		h_wr32(h, FERRY_NVME_REG_CC, 0);
		h_wait_csts(h, FERRY_NVME_CSTS_CFS, 0);
		h_wr64(h, FERRY_NVME_REG_ASQ, asq);
		h_wr32(h, FERRY_NVME_REG_CC, cc);
	}
	uint32_t csts = h_rd32(h, FERRY_NVME_REG_CSTS);
	cr_assert_eq(csts & (FERRY_NVME_CSTS_RDY | FERRY_NVME_CSTS_CFS), FERRY_NVME_CSTS_CFS,
		     "%s: CSTS 0x%x, expected CFS and not RDY", what, csts);
	cr_assert_geq(h->tr_state.events[FERRY_NVME_EVENT_FATAL], 1);
	/* Recovery: CC.EN = 0 clears CFS; a valid configuration then enables. */
	h_wr32(h, FERRY_NVME_REG_CC, 0);
	cr_assert(h_wait_csts(h, FERRY_NVME_CSTS_CFS | FERRY_NVME_CSTS_RDY, 0));
	cr_assert_eq(h_enable(h, 16, H_CC_DEFAULT), FERRY_NVME_CSTS_RDY, "%s: recovery", what);
	h_destroy(h);
}

Test(nvme_regs, invalid_enable_sets_cfs)
{
	expect_cfs(16, H_CC_DEFAULT | (1u << 4), 0, "CSS 001b");
	expect_cfs(16, H_CC_DEFAULT | (1u << 7), 0, "MPS above MPSMAX");
	expect_cfs(16, H_CC_DEFAULT | (1u << 11), 0, "AMS weighted round robin");
	expect_cfs(16, FERRY_NVME_CC_EN | (7u << 16) | (4u << 20), 0, "IOSQES 7");
	expect_cfs(16, FERRY_NVME_CC_EN | (6u << 16) | (2u << 20), 0, "IOCQES 2");
	expect_cfs(1, H_CC_DEFAULT, 0, "admin queue of one entry");
	expect_cfs(16, H_CC_DEFAULT, HM_BASE + 0x80, "ASQ not page aligned");
}

Test(nvme_regs, reset_deletes_io_queues)
{
	struct host *h = h_create(NULL);
	h_up(h, 16);
	struct ferry_nvme_sqe s = h_sqe(0, 0);
	h_rw(&s, FERRY_NVME_CMD_FLUSH, 0, 1);
	cr_assert_eq(h_cmd(h, 1, &s, NULL), 0);
	h_disable(h);
	cr_assert_eq(h_rd32(h, FERRY_NVME_REG_CSTS), 0);
	cr_assert_eq(h->tr_state.events[FERRY_NVME_EVENT_DISABLED], 1);
	/* Admin registers survive the reset. */
	cr_assert_eq(h_rd32(h, FERRY_NVME_REG_AQA), (31u << 16) | 31u);
	cr_assert_eq(h_enable(h, 32, H_CC_DEFAULT), FERRY_NVME_CSTS_RDY);
	/* Queue 1 is gone: deleting it is an invalid queue identifier; creating it works. */
	struct ferry_nvme_sqe d = h_sqe(FERRY_NVME_ADM_DELETE_SQ, 0);
	d.cdw10 = 1;
	cr_assert_eq(h_cmd(h, 0, &d, NULL), ST(COMMAND, INVALID_QID));
	h_ioq(h, 1, 16);
	cr_assert_eq(h_cmd(h, 1, &s, NULL), 0);
	struct ferry_nvme_ctrlr_stats st = {.size = sizeof(st)};
	cr_assert_eq(ferry_nvme_ctrlr_get_stats(h->ctrlr, &st), 0);
	cr_assert_eq(st.resets, 1);
	h_destroy(h);
}

Test(nvme_regs, doorbells_ignored_while_disabled)
{
	struct host *h = h_create(NULL);
	h_wr32(h, FERRY_NVME_REG_DBS, 5);
	h_wr32(h, FERRY_NVME_REG_DBS + 4, 5);
	struct ferry_nvme_ctrlr_stats st = {.size = sizeof(st)};
	cr_assert_eq(ferry_nvme_ctrlr_get_stats(h->ctrlr, &st), 0);
	cr_assert_eq(st.doorbell_errors, 0);
	cr_assert_eq(h_enable(h, 16, H_CC_DEFAULT), FERRY_NVME_CSTS_RDY);
	h_destroy(h);
}

Test(nvme_regs, normal_shutdown)
{
	struct host *h = h_create(NULL);
	h_up(h, 16);
	uint32_t cc = h_rd32(h, FERRY_NVME_REG_CC);
	h_wr32(h, FERRY_NVME_REG_CC, cc | (FERRY_NVME_CC_SHN_NORMAL << 14));
	cr_assert(h_wait_csts(h, FERRY_NVME_CSTS_SHST_MASK, FERRY_NVME_CSTS_SHST_COMPLETE << 2),
		  "shutdown did not complete");
	cr_assert(h_rd32(h, FERRY_NVME_REG_CSTS) & FERRY_NVME_CSTS_RDY, "RDY stays 1 after shutdown");
	cr_assert_eq(h->tr_state.events[FERRY_NVME_EVENT_SHUTDOWN_COMPLETE], 1);
	struct ferry_bdev_stats bs = {.size = sizeof(bs)};
	cr_assert_eq(ferry_bdev_get_stats(h->bdev, &bs), 0);
	cr_assert_eq(bs.ios[FERRY_BDEV_IO_FLUSH], 1, "the namespace was flushed at shutdown");
	/* No command is fetched after the shutdown notification. */
	struct ferry_nvme_sqe s = h_sqe(FERRY_NVME_ADM_KEEP_ALIVE, 0);
	h_submit(h, 0, &s);
	for (int i = 0; i < 100; i++)
		h_poll(h);
	struct ferry_nvme_cqe e;
	cr_assert_eq(h_peek(h, 0, &e), 0, "command executed after shutdown");
	/* A reset brings it back. */
	h_disable(h);
	cr_assert_eq(h_rd32(h, FERRY_NVME_REG_CSTS) & FERRY_NVME_CSTS_SHST_MASK, 0);
	cr_assert_eq(h_enable(h, 16, H_CC_DEFAULT), FERRY_NVME_CSTS_RDY);
	h_destroy(h);
}

Test(nvme_regs, abrupt_shutdown_with_io_in_flight)
{
	struct host_opts o = {.async = 1};
	struct host *h = h_create(&o);
	h_up(h, 64);
	uint64_t buf = hm_alloc(h->hm, 16 * 4096, HM_PAGE);
	for (int i = 0; i < 16; i++) { /* one fetch batch */
		struct ferry_nvme_sqe s = h_sqe(0, 1);
		h_rw(&s, FERRY_NVME_CMD_WRITE, (uint64_t)i * 8, 8);
		h_prp(h, &s, buf + (uint64_t)i * 4096, 4096, 0);
		h_submit(h, 1, &s);
	}
	ferry_nvme_ctrlr_poll(h->ctrlr, 64); /* fetch, leave the transfers pending */
	uint32_t cc = h_rd32(h, FERRY_NVME_REG_CC);
	h_wr32(h, FERRY_NVME_REG_CC, cc | (FERRY_NVME_CC_SHN_ABRUPT << 14));
	cr_assert_eq((h_rd32(h, FERRY_NVME_REG_CSTS) & FERRY_NVME_CSTS_SHST_MASK) >> 2,
		     FERRY_NVME_CSTS_SHST_OCCURRING, "in flight: shutdown processing");
	cr_assert(h_wait_csts(h, FERRY_NVME_CSTS_SHST_MASK, FERRY_NVME_CSTS_SHST_COMPLETE << 2));
	/* Every write fetched before the notification completed to the host. */
	int done = 0;
	struct ferry_nvme_cqe e;
	while (h_peek(h, 1, &e)) {
		cr_assert_eq(cqe_st(&e), 0);
		done++;
	}
	cr_assert_eq(done, 16);
	h_destroy(h);
}

Test(nvme_regs, intms_masks_vector)
{
	struct host *h = h_create(NULL);
	h_up(h, 0);
	h_wr32(h, FERRY_NVME_REG_INTMS, 1u << 0);
	cr_assert_eq(h_rd32(h, FERRY_NVME_REG_INTMS), 1u);
	uint64_t before = h->tr_state.irqs[0];
	struct ferry_nvme_sqe s = h_sqe(FERRY_NVME_ADM_KEEP_ALIVE, 0);
	cr_assert_eq(h_cmd(h, 0, &s, NULL), 0);
	cr_assert_eq(h->tr_state.irqs[0], before, "masked vector raised");
	h_wr32(h, FERRY_NVME_REG_INTMC, 1u << 0);
	cr_assert_eq(h_rd32(h, FERRY_NVME_REG_INTMC), 0u);
	cr_assert_eq(h->tr_state.irqs[0], before + 1, "pending interrupt raised on unmask");
	h_destroy(h);
}

Test(nvme_regs, destroy_refuses_with_transfers_in_flight)
{
	struct host_opts o = {.async = 1};
	struct host *h = h_create(&o);
	h_up(h, 0);
	struct ferry_nvme_sqe s = h_sqe(FERRY_NVME_ADM_KEEP_ALIVE, 0);
	h_submit(h, 0, &s);
	ferry_nvme_ctrlr_poll(h->ctrlr, 64);
	cr_assert_eq(ferry_nvme_ctrlr_destroy(h->ctrlr), -EBUSY);
	h_destroy(h);
}
