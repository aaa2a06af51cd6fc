/*
 * NVMe admin command set through the controller's registers and host-memory queues:
 * Identify (all CNS values), queue creation/deletion edge cases, Get/Set Features, Get Log
 * Page, Asynchronous Event Request, Abort, Keep Alive; happy and invalid paths with the exact
 * status codes.
 */
#include "test_nvme_host.h"
#include <ferry/bdev_malloc.h>
#include <ferry/module/nvme_ctrlr.h>

static uint16_t identify(struct host *h, uint8_t cns, uint32_t nsid, uint64_t buf)
{
	struct ferry_nvme_sqe s = h_sqe(FERRY_NVME_ADM_IDENTIFY, nsid);
	s.cdw10 = cns;
	h_prp(h, &s, buf, 4096, 0);
	return h_cmd(h, 0, &s, NULL);
}

static uint16_t get_log(struct host *h, uint8_t lid, uint32_t nsid, uint64_t buf, uint32_t len,
			uint64_t off, int rae)
{
	struct ferry_nvme_sqe s = h_sqe(FERRY_NVME_ADM_GET_LOG_PAGE, nsid);
	uint32_t numd = len / 4 - 1;
	s.cdw10 = lid | ((uint32_t)rae << 15) | ((numd & 0xffff) << 16);
	s.cdw11 = numd >> 16;
	s.cdw12 = (uint32_t)off;
	s.cdw13 = (uint32_t)(off >> 32);
	h_prp(h, &s, buf, len, 0);
	return h_cmd(h, 0, &s, NULL);
}

static uint16_t set_feat(struct host *h, uint8_t fid, uint32_t v, uint32_t *dw0)
{
	struct ferry_nvme_sqe s = h_sqe(FERRY_NVME_ADM_SET_FEATURES, 0);
	struct ferry_nvme_cqe e;
	s.cdw10 = fid;
	s.cdw11 = v;
	uint16_t st = h_cmd(h, 0, &s, &e);
	if (dw0)
		*dw0 = e.dw0;
	return st;
}

static uint16_t get_feat(struct host *h, uint8_t fid, uint32_t sel, uint32_t cdw11, uint32_t *dw0)
{
	struct ferry_nvme_sqe s = h_sqe(FERRY_NVME_ADM_GET_FEATURES, 0);
	struct ferry_nvme_cqe e;
	s.cdw10 = fid | (sel << 8);
	s.cdw11 = cdw11;
	uint16_t st = h_cmd(h, 0, &s, &e);
	if (dw0)
		*dw0 = e.dw0;
	return st;
}

Test(nvme_admin, identify_controller)
{
	struct host *h = h_create(NULL);
	h_up(h, 0);
	uint64_t buf = hm_alloc(h->hm, 4096, HM_PAGE);
	cr_assert_eq(identify(h, FERRY_NVME_CNS_CTRLR, 0, buf), 0);
	struct ferry_nvme_id_ctrlr id;
	memcpy(&id, hm_ptr(h->hm, buf), sizeof(id));
	cr_assert_eq(id.vid, 0x1d1d);
	cr_assert_eq(memcmp(id.sn, "FERRY0001           ", 20), 0, "serial space padded");
	cr_assert_eq(memcmp(id.mn, "Ferry test controller", 21), 0);
	cr_assert_eq(id.mn[39], ' ');
	cr_assert_eq(id.mdts, 5);
	cr_assert_eq(id.cntlid, ferry_nvme_ctrlr_get_cntlid(h->ctrlr));
	cr_assert_eq(id.ver, FERRY_NVME_VS_1_4);
	cr_assert_eq(id.sqes, 0x66);
	cr_assert_eq(id.cqes, 0x44);
	cr_assert_eq(id.nn, 8);
	cr_assert_eq(id.oncs, 0x0d);
	cr_assert_eq(id.aerl, 3);
	cr_assert_eq(id.elpe, 63);
	cr_assert_eq(id.sgls & 3, 1);
	cr_assert(id.sgls & (1u << 16), "bit bucket supported");
	cr_assert_eq(id.oaes & (1u << 8), 1u << 8);
	cr_assert_str_eq(id.subnqn, ferry_nvme_subsystem_get_nqn(h->subsys));
	h_destroy(h);
}

Test(nvme_admin, identify_namespace_and_lists)
{
	struct host_opts o = {.block_size = 4096, .num_blocks = 256};
	struct host *h = h_create(&o);
	h_up(h, 0);
	uint64_t buf = hm_alloc(h->hm, 4096, HM_PAGE);
	cr_assert_eq(identify(h, FERRY_NVME_CNS_NS, 1, buf), 0);
	struct ferry_nvme_id_ns ns;
	memcpy(&ns, hm_ptr(h->hm, buf), sizeof(ns));
	cr_assert_eq(ns.nsze, 256);
	cr_assert_eq(ns.ncap, 256);
	cr_assert_eq(ns.nlbaf, 0);
	cr_assert_eq(ns.flbas, 0);
	cr_assert_eq(ns.lbaf[0].lbads, 12);
	cr_assert_eq(ns.lbaf[0].ms, 0);

	/* Inactive but valid NSID: zero-filled; invalid NSIDs are refused. */
	memset(hm_ptr(h->hm, buf), 0xaa, 4096);
	cr_assert_eq(identify(h, FERRY_NVME_CNS_NS, 2, buf), 0);
	uint8_t zero[4096] = {0};
	cr_assert_eq(memcmp(hm_ptr(h->hm, buf), zero, 4096), 0);
	cr_assert_eq(identify(h, FERRY_NVME_CNS_NS, 0, buf), ST(GENERIC, INVALID_NS));
	cr_assert_eq(identify(h, FERRY_NVME_CNS_NS, 9, buf), ST(GENERIC, INVALID_NS));
	cr_assert_eq(identify(h, FERRY_NVME_CNS_NS, 0xffffffff, buf), ST(GENERIC, INVALID_NS));

	/* Active namespace list with a second namespace at NSID 5. */
	struct ferry_bdev *b2;
	struct ferry_bdev_malloc_opts mo = {.size = sizeof(mo), .name = "admin.ns5",
					    .block_size = 512, .md_size = 0, .num_blocks = 64};
	cr_assert_eq(ferry_bdev_malloc_create(&mo, &b2), 0);
	struct ferry_nvme_ns_opts no = {.size = sizeof(no), .bdev = b2, .nsid = 5};
	cr_assert_eq(ferry_nvme_subsystem_add_ns(h->subsys, &no, NULL), 0);
	cr_assert_eq(identify(h, FERRY_NVME_CNS_ACTIVE_NS_LIST, 0, buf), 0);
	uint32_t list[3];
	memcpy(list, hm_ptr(h->hm, buf), sizeof(list));
	cr_assert_eq(list[0], 1);
	cr_assert_eq(list[1], 5);
	cr_assert_eq(list[2], 0);
	cr_assert_eq(identify(h, FERRY_NVME_CNS_ACTIVE_NS_LIST, 1, buf), 0);
	memcpy(list, hm_ptr(h->hm, buf), sizeof(list));
	cr_assert_eq(list[0], 5);
	cr_assert_eq(list[1], 0);
	cr_assert_eq(identify(h, FERRY_NVME_CNS_ACTIVE_NS_LIST, 0xfffffffe, buf),
		     ST(GENERIC, INVALID_NS));

	/* Namespace identification descriptors: NGUID, UUID, CSI; stable per NSID. */
	cr_assert_eq(identify(h, FERRY_NVME_CNS_NS_DESC_LIST, 5, buf), 0);
	const uint8_t *d = hm_ptr(h->hm, buf);
	cr_assert_eq(d[0], FERRY_NVME_NIDT_NGUID);
	cr_assert_eq(d[1], 16);
	cr_assert_eq(d[20], FERRY_NVME_NIDT_UUID);
	cr_assert_eq(d[21], 16);
	cr_assert_eq(d[40], FERRY_NVME_NIDT_CSI);
	cr_assert_eq(d[41], 1);
	cr_assert_eq(d[44], 0);
	uint8_t nguid5[16];
	memcpy(nguid5, d + 4, 16);
	cr_assert_eq(identify(h, FERRY_NVME_CNS_NS, 5, buf), 0);
	memcpy(&ns, hm_ptr(h->hm, buf), sizeof(ns));
	cr_assert_eq(memcmp(ns.nguid, nguid5, 16), 0, "NGUID in Identify Namespace matches");
	cr_assert_eq(identify(h, FERRY_NVME_CNS_NS_DESC_LIST, 1, buf), 0);
	cr_assert_neq(memcmp(hm_ptr(h->hm, buf) + 4, nguid5, 16), 0, "NGUIDs differ per NSID");
	cr_assert_eq(identify(h, FERRY_NVME_CNS_NS_DESC_LIST, 2, buf), ST(GENERIC, INVALID_NS));
	cr_assert_eq(identify(h, 0x10, 0, buf), ST(GENERIC, INVALID_FIELD), "unsupported CNS");

	cr_assert_eq(ferry_nvme_subsystem_remove_ns(h->subsys, 5), 0);
	cr_assert_eq(ferry_bdev_destroy(b2), 0);
	h_destroy(h);
}

Test(nvme_admin, identify_data_pointer)
{
	struct host *h = h_create(NULL);
	h_up(h, 0);
	/* PRP1 with an offset: the 4 KiB straddle two pages through PRP2. */
	uint64_t buf = hm_alloc(h->hm, 3 * 4096, HM_PAGE) + 0x100;
	cr_assert_eq(identify(h, FERRY_NVME_CNS_CTRLR, 0, buf), 0);
	struct ferry_nvme_id_ctrlr id;
	memcpy(&id, hm_ptr(h->hm, buf), sizeof(id));
	cr_assert_eq(id.sqes, 0x66);
	cr_assert_str_eq(id.subnqn, ferry_nvme_subsystem_get_nqn(h->subsys));

	struct ferry_nvme_sqe s = h_sqe(FERRY_NVME_ADM_IDENTIFY, 0);
	s.cdw10 = FERRY_NVME_CNS_CTRLR;
	s.dptr.prp.prp1 = buf + 1; /* not dword aligned */
	cr_assert_eq(h_cmd(h, 0, &s, NULL), ST(GENERIC, PRP_OFFSET));
	s.dptr.prp.prp1 = buf;
	s.dptr.prp.prp2 = buf + 0x1000 + 8; /* second entry must be page aligned */
	cr_assert_eq(h_cmd(h, 0, &s, NULL), ST(GENERIC, PRP_OFFSET));
	s.dptr.prp.prp1 = 0x10;            /* outside host RAM */
	s.dptr.prp.prp2 = 0x1000;
	cr_assert_eq(h_cmd(h, 0, &s, NULL), ST(GENERIC, DATA_XFER_ERROR));
	s = h_sqe(FERRY_NVME_ADM_IDENTIFY, 0);
	s.cdw10 = FERRY_NVME_CNS_CTRLR;
	s.flags = FERRY_NVME_PSDT_SGL_MPTR_CONTIG << FERRY_NVME_FLAGS_PSDT_SHIFT;
	s.dptr.sgl.address = buf;
	s.dptr.sgl.length = 4096;
	cr_assert_eq(h_cmd(h, 0, &s, NULL), ST(GENERIC, INVALID_FIELD), "no SGLs for admin");
	h_destroy(h);
}

Test(nvme_admin, create_cq_validation)
{
	struct host *h = h_create(NULL);
	h_up(h, 0);
	uint64_t q = hm_alloc(h->hm, 16 * 4096, HM_PAGE);
	cr_assert_eq(h_create_cq(h, 0, 16, q, 3, 0), ST(COMMAND, INVALID_QID));
	cr_assert_eq(h_create_cq(h, 9, 16, q, 3, 0), ST(COMMAND, INVALID_QID), "above max");
	cr_assert_eq(h_create_cq(h, 1, 1, q, 3, 1), ST(COMMAND, INVALID_QSIZE), "size 0 (0's based)");
	cr_assert_eq(h_create_cq(h, 1, 1025, q, 3, 1), ST(COMMAND, INVALID_QSIZE), "above MQES");
	cr_assert_eq(h_create_cq(h, 1, 16, q, 2, 1), ST(GENERIC, INVALID_FIELD), "PC = 0");
	cr_assert_eq(h_create_cq(h, 1, 16, q, 3, 9), ST(COMMAND, INVALID_VECTOR));
	cr_assert_eq(h_create_cq(h, 1, 16, q + 64, 3, 1), ST(GENERIC, PRP_OFFSET), "not page aligned");
	cr_assert_eq(h_create_cq(h, 1, 16, q, 1, 100), 0, "IEN = 0: vector ignored");
	cr_assert_eq(h_create_cq(h, 1, 16, q, 3, 1), ST(COMMAND, INVALID_QID), "duplicate");
	cr_assert_eq(h_create_cq(h, 2, 1024, q + 4096, 3, 2), 0, "MQES + 1 entries");
	h_destroy(h);
}

Test(nvme_admin, create_sq_validation_and_deletion)
{
	struct host *h = h_create(NULL);
	h_up(h, 0);
	uint64_t q = hm_alloc(h->hm, 16 * 4096, HM_PAGE);
	cr_assert_eq(h_create_cq(h, 1, 16, q, 3, 1), 0);
	cr_assert_eq(h_create_sq(h, 0, 16, q + 4096, 1), ST(COMMAND, INVALID_QID));
	cr_assert_eq(h_create_sq(h, 9, 16, q + 4096, 1), ST(COMMAND, INVALID_QID));
	cr_assert_eq(h_create_sq(h, 1, 1, q + 4096, 1), ST(COMMAND, INVALID_QSIZE));
	cr_assert_eq(h_create_sq(h, 1, 2000, q + 4096, 1), ST(COMMAND, INVALID_QSIZE));
	cr_assert_eq(h_create_sq(h, 1, 16, q + 4096, 0), ST(COMMAND, CQ_INVALID), "admin CQ");
	cr_assert_eq(h_create_sq(h, 1, 16, q + 4096, 2), ST(COMMAND, CQ_INVALID), "missing CQ");
	struct ferry_nvme_sqe s = h_sqe(FERRY_NVME_ADM_CREATE_SQ, 0);
	s.dptr.prp.prp1 = q + 4096;
	s.cdw10 = 1 | (15u << 16);
	s.cdw11 = 0 | (1u << 16); /* PC = 0 */
	cr_assert_eq(h_cmd(h, 0, &s, NULL), ST(GENERIC, INVALID_FIELD));
	cr_assert_eq(h_create_sq(h, 1, 16, q + 4096, 1), 0);
	cr_assert_eq(h_create_sq(h, 1, 16, q + 8192, 1), ST(COMMAND, INVALID_QID), "duplicate");
	cr_assert_eq(h_create_sq(h, 2, 16, q + 8192, 1), 0, "two SQs on one CQ");

	struct ferry_nvme_sqe d = h_sqe(FERRY_NVME_ADM_DELETE_CQ, 0);
	d.cdw10 = 1;
	cr_assert_eq(h_cmd(h, 0, &d, NULL), ST(COMMAND, INVALID_QUEUE_DELETION), "SQs use it");
	d.cdw10 = 0;
	cr_assert_eq(h_cmd(h, 0, &d, NULL), ST(COMMAND, INVALID_QID), "admin CQ");
	d.cdw10 = 3;
	cr_assert_eq(h_cmd(h, 0, &d, NULL), ST(COMMAND, INVALID_QID), "no such CQ");
	struct ferry_nvme_sqe ds = h_sqe(FERRY_NVME_ADM_DELETE_SQ, 0);
	ds.cdw10 = 0;
	cr_assert_eq(h_cmd(h, 0, &ds, NULL), ST(COMMAND, INVALID_QID), "admin SQ");
	ds.cdw10 = 1;
	cr_assert_eq(h_cmd(h, 0, &ds, NULL), 0);
	cr_assert_eq(h_cmd(h, 0, &ds, NULL), ST(COMMAND, INVALID_QID), "already deleted");
	d.cdw10 = 1;
	cr_assert_eq(h_cmd(h, 0, &d, NULL), ST(COMMAND, INVALID_QUEUE_DELETION), "SQ 2 remains");
	ds.cdw10 = 2;
	cr_assert_eq(h_cmd(h, 0, &ds, NULL), 0);
	cr_assert_eq(h_cmd(h, 0, &d, NULL), 0);
	h_destroy(h);
}

Test(nvme_admin, delete_sq_waits_for_its_commands)
{
	struct host_opts o = {.async = 1};
	struct host *h = h_create(&o);
	h_up(h, 32);
	uint64_t buf = hm_alloc(h->hm, 8 * 4096, HM_PAGE);
	for (int i = 0; i < 8; i++) {
		struct ferry_nvme_sqe s = h_sqe(0, 1);
		h_rw(&s, FERRY_NVME_CMD_WRITE, (uint64_t)i * 8, 8);
		h_prp(h, &s, buf + (uint64_t)i * 4096, 4096, 0);
		h_submit(h, 1, &s);
	}
	ferry_nvme_ctrlr_poll(h->ctrlr, 64);
	struct ferry_nvme_sqe ds = h_sqe(FERRY_NVME_ADM_DELETE_SQ, 0);
	ds.cdw10 = 1;
	cr_assert_eq(h_cmd(h, 0, &ds, NULL), 0);
	/* By the time the deletion completed, all 8 writes were posted to CQ 1. */
	struct ferry_nvme_cqe e;
	int n = 0;
	while (h_peek(h, 1, &e)) {
		cr_assert_eq(cqe_st(&e), 0);
		n++;
	}
	cr_assert_eq(n, 8);
	h_destroy(h);
}

Test(nvme_admin, features)
{
	struct host *h = h_create(NULL);
	h_up(h, 0);
	uint32_t v;
	/* Number of queues: allocation capped at the controller's maximum (8 pairs). */
	cr_assert_eq(set_feat(h, FERRY_NVME_FEAT_NUM_QUEUES, 63 | (63u << 16), &v), 0);
	cr_assert_eq(v, 7 | (7u << 16));
	cr_assert_eq(set_feat(h, FERRY_NVME_FEAT_NUM_QUEUES, 1 | (1u << 16), &v), 0);
	cr_assert_eq(v, 1 | (1u << 16));
	cr_assert_eq(get_feat(h, FERRY_NVME_FEAT_NUM_QUEUES, 0, 0, &v), 0);
	cr_assert_eq(v, 1 | (1u << 16));
	cr_assert_eq(get_feat(h, FERRY_NVME_FEAT_NUM_QUEUES, 1, 0, &v), 0, "default");
	cr_assert_eq(v, 7 | (7u << 16));
	cr_assert_eq(set_feat(h, FERRY_NVME_FEAT_NUM_QUEUES, 0xffff, NULL), ST(GENERIC, INVALID_FIELD));
	uint64_t q = hm_alloc(h->hm, 8 * 4096, HM_PAGE);
	cr_assert_eq(h_create_cq(h, 3, 16, q, 3, 3), ST(COMMAND, INVALID_QID), "beyond NCQA");
	cr_assert_eq(h_create_cq(h, 2, 16, q, 3, 2), 0);
	cr_assert_eq(h_create_sq(h, 3, 16, q + 4096, 2), ST(COMMAND, INVALID_QID), "beyond NSQA");
	cr_assert_eq(set_feat(h, FERRY_NVME_FEAT_NUM_QUEUES, 3, NULL), ST(GENERIC, CMD_SEQ_ERROR),
		     "after I/O queues exist");

	/* Plain stored features. */
	cr_assert_eq(set_feat(h, FERRY_NVME_FEAT_ARBITRATION, 0x03020103, NULL), 0);
	cr_assert_eq(get_feat(h, FERRY_NVME_FEAT_ARBITRATION, 0, 0, &v), 0);
	cr_assert_eq(v, 0x03020103);
	cr_assert_eq(set_feat(h, FERRY_NVME_FEAT_VOLATILE_WC, 0, NULL), 0);
	cr_assert_eq(get_feat(h, FERRY_NVME_FEAT_VOLATILE_WC, 0, 0, &v), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(get_feat(h, FERRY_NVME_FEAT_VOLATILE_WC, 1, 0, &v), 0);
	cr_assert_eq(v, 1, "default: write cache enabled");
	cr_assert_eq(set_feat(h, FERRY_NVME_FEAT_IRQ_COALESCING, 0x0a03, NULL), 0);
	cr_assert_eq(get_feat(h, FERRY_NVME_FEAT_IRQ_COALESCING, 0, 0, &v), 0);
	cr_assert_eq(v, 0x0a03);
	cr_assert_eq(set_feat(h, FERRY_NVME_FEAT_ASYNC_EVENT, 0xffffffff, NULL), 0);
	cr_assert_eq(get_feat(h, FERRY_NVME_FEAT_ASYNC_EVENT, 0, 0, &v), 0);
	cr_assert_eq(v, 0x1ff, "only supported bits are kept");
	cr_assert_eq(set_feat(h, FERRY_NVME_FEAT_IRQ_CONFIG, 2 | (1u << 16), NULL), 0);
	cr_assert_eq(get_feat(h, FERRY_NVME_FEAT_IRQ_CONFIG, 0, 2, &v), 0);
	cr_assert_eq(v, 2 | (1u << 16));
	cr_assert_eq(get_feat(h, FERRY_NVME_FEAT_IRQ_CONFIG, 0, 9, &v), ST(GENERIC, INVALID_FIELD));
	cr_assert_eq(set_feat(h, FERRY_NVME_FEAT_IRQ_CONFIG, 9, NULL), ST(GENERIC, INVALID_FIELD));
	cr_assert_eq(set_feat(h, FERRY_NVME_FEAT_KEEP_ALIVE, 30000, NULL), 0);
	cr_assert_eq(get_feat(h, FERRY_NVME_FEAT_KEEP_ALIVE, 0, 0, &v), 0);
	cr_assert_eq(v, 30000);
	cr_assert_eq(set_feat(h, FERRY_NVME_FEAT_POWER_MGMT, 1, NULL), ST(GENERIC, INVALID_FIELD));

	/* Capabilities, unsupported identifiers, saving. */
	cr_assert_eq(get_feat(h, FERRY_NVME_FEAT_ARBITRATION, 3, 0, &v), 0);
	cr_assert_eq(v, 1u << 2, "changeable, not saveable");
	cr_assert_eq(get_feat(h, 0x7f, 0, 0, &v), ST(GENERIC, INVALID_FIELD));
	cr_assert_eq(set_feat(h, 0x03, 0, NULL), ST(GENERIC, INVALID_FIELD));
	cr_assert_eq(get_feat(h, FERRY_NVME_FEAT_ARBITRATION, 4, 0, &v), ST(GENERIC, INVALID_FIELD));
	struct ferry_nvme_sqe s = h_sqe(FERRY_NVME_ADM_SET_FEATURES, 0);
	s.cdw10 = FERRY_NVME_FEAT_ARBITRATION | (1u << 31);
	cr_assert_eq(h_cmd(h, 0, &s, NULL), ST(COMMAND, FEATURE_NOT_SAVEABLE));

	/* A reset restores the defaults. */
	h_disable(h);
	h_up(h, 0);
	cr_assert_eq(get_feat(h, FERRY_NVME_FEAT_ARBITRATION, 0, 0, &v), 0);
	cr_assert_eq(v, 0);
	h_destroy(h);
}

Test(nvme_admin, log_pages)
{
	struct host *h = h_create(NULL);
	h_up(h, 16);
	uint64_t buf = hm_alloc(h->hm, 8192, HM_PAGE);
	/* A failing command shows up in the error log. */
	struct ferry_nvme_sqe bad = h_sqe(0x7f, 0);
	struct ferry_nvme_cqe e;
	cr_assert_eq(h_cmd(h, 0, &bad, &e), ST(GENERIC, INVALID_OPCODE));
	cr_assert(cqe_dnr(&e), "invalid opcode is not retryable");
	cr_assert_eq(get_log(h, FERRY_NVME_LOG_ERROR, 0, buf, 4096, 0, 0), 0);
	struct ferry_nvme_error_log el;
	memcpy(&el, hm_ptr(h->hm, buf), sizeof(el));
	cr_assert_eq(el.error_count, 1);
	cr_assert_eq(el.cid, e.cid);
	cr_assert_eq(el.sqid, 0);
	cr_assert_eq((el.status >> 1) & 0x7ff, ST(GENERIC, INVALID_OPCODE));

	/* SMART: counters follow the I/O. */
	uint64_t data = hm_alloc(h->hm, 4096, HM_PAGE);
	struct ferry_nvme_sqe w = h_sqe(0, 1);
	h_rw(&w, FERRY_NVME_CMD_WRITE, 0, 8);
	h_prp(h, &w, data, 4096, 0);
	cr_assert_eq(h_cmd(h, 1, &w, NULL), 0);
	cr_assert_eq(h_cmd(h, 1, &w, NULL), 0);
	struct ferry_nvme_sqe r = w;
	r.opcode = FERRY_NVME_CMD_READ;
	cr_assert_eq(h_cmd(h, 1, &r, NULL), 0);
	cr_assert_eq(get_log(h, FERRY_NVME_LOG_SMART, 0xffffffff, buf, 512, 0, 0), 0);
	struct ferry_nvme_smart_log sl;
	memcpy(&sl, hm_ptr(h->hm, buf), sizeof(sl));
	cr_assert_eq(sl.host_write_cmds[0], 2);
	cr_assert_eq(sl.host_read_cmds[0], 1);
	cr_assert_eq(sl.data_units_written[0], 1, "8 KiB rounds up to one unit");
	cr_assert_eq(sl.avail_spare, 100);
	cr_assert_eq(sl.num_err_log_entries[0], 1);
	/* Offset: the second half of the SMART page. */
	memset(hm_ptr(h->hm, buf), 0xee, 512);
	cr_assert_eq(get_log(h, FERRY_NVME_LOG_SMART, 0, buf, 256, 64, 0), 0);
	cr_assert_eq(memcmp(hm_ptr(h->hm, buf), (uint8_t *)&sl + 64, 256), 0);
	/* Reading past the end of the log returns zeroes for the remainder. */
	cr_assert_eq(get_log(h, FERRY_NVME_LOG_SMART, 0, buf, 1024, 0, 0), 0);
	uint8_t z[512] = {0};
	cr_assert_eq(memcmp(hm_ptr(h->hm, buf) + 512, z, 512), 0);

	cr_assert_eq(get_log(h, 0x55, 0, buf, 512, 0, 0), ST(COMMAND, INVALID_LOG_PAGE));
	cr_assert_eq(get_log(h, FERRY_NVME_LOG_SMART, 0, buf, 512, 2, 0), ST(GENERIC, INVALID_FIELD),
		     "offset not dword aligned");
	cr_assert_eq(get_log(h, FERRY_NVME_LOG_SMART, 0, buf, 512, 512, 0), ST(GENERIC, INVALID_FIELD),
		     "offset beyond the log");
	cr_assert_eq(get_log(h, FERRY_NVME_LOG_SMART, 1, buf, 512, 0, 0), ST(GENERIC, INVALID_FIELD),
		     "no per-namespace SMART");
	/* The five failures above are logged, newest first. */
	cr_assert_eq(get_log(h, FERRY_NVME_LOG_ERROR, 0, buf, 128, 0, 0), 0);
	memcpy(&el, hm_ptr(h->hm, buf), sizeof(el));
	cr_assert_eq(el.error_count, 5);
	cr_assert_eq((el.status >> 1) & 0x7ff, ST(GENERIC, INVALID_FIELD));
	memcpy(&el, hm_ptr(h->hm, buf) + 64, sizeof(el));
	cr_assert_eq(el.error_count, 4);
	h_destroy(h);
}

Test(nvme_admin, changed_namespace_list_and_notice)
{
	struct host *h = h_create(NULL);
	h_up(h, 0);
	uint64_t buf = hm_alloc(h->hm, 4096, HM_PAGE);
	cr_assert_eq(set_feat(h, FERRY_NVME_FEAT_ASYNC_EVENT, FERRY_NVME_AEC_NS_ATTR, NULL), 0);
	struct ferry_nvme_sqe aer = h_sqe(FERRY_NVME_ADM_ASYNC_EVENT, 0);
	uint16_t aer_cid = h_submit(h, 0, &aer);
	for (int i = 0; i < 10; i++)
		h_poll(h);
	struct ferry_nvme_cqe e;
	cr_assert_eq(h_peek(h, 0, &e), 0, "no event yet");

	struct ferry_bdev *b2;
	struct ferry_bdev_malloc_opts mo = {.size = sizeof(mo), .name = "admin.ns3",
					    .block_size = 512, .num_blocks = 64};
	cr_assert_eq(ferry_bdev_malloc_create(&mo, &b2), 0);
	struct ferry_nvme_ns_opts no = {.size = sizeof(no), .bdev = b2, .nsid = 3};
	cr_assert_eq(ferry_nvme_subsystem_add_ns(h->subsys, &no, NULL), 0);
	cr_assert(h_wait(h, 0, &e));
	cr_assert_eq(e.cid, aer_cid);
	cr_assert_eq(cqe_st(&e), 0);
	cr_assert_eq(e.dw0, FERRY_NVME_AER_DW0(FERRY_NVME_AER_TYPE_NOTICE,
					      FERRY_NVME_AER_NOTICE_NS_CHANGED,
					      FERRY_NVME_LOG_CHANGED_NS));
	cr_assert_eq(get_log(h, FERRY_NVME_LOG_CHANGED_NS, 0, buf, 4096, 0, 0), 0);
	uint32_t l[2];
	memcpy(l, hm_ptr(h->hm, buf), sizeof(l));
	cr_assert_eq(l[0], 3);
	cr_assert_eq(l[1], 0);
	/* Cleared by the read. */
	cr_assert_eq(get_log(h, FERRY_NVME_LOG_CHANGED_NS, 0, buf, 4096, 0, 0), 0);
	memcpy(l, hm_ptr(h->hm, buf), sizeof(l));
	cr_assert_eq(l[0], 0);
	cr_assert_eq(ferry_nvme_subsystem_remove_ns(h->subsys, 3), 0);
	cr_assert_eq(ferry_bdev_destroy(b2), 0);
	h_destroy(h);
}

Test(nvme_admin, async_events_limit_mask_and_abort)
{
	struct host *h = h_create(NULL);
	h_up(h, 0);
	uint16_t cids[4];
	for (int i = 0; i < 4; i++) {
		struct ferry_nvme_sqe aer = h_sqe(FERRY_NVME_ADM_ASYNC_EVENT, 0);
		cids[i] = h_submit(h, 0, &aer);
	}
	struct ferry_nvme_sqe aer = h_sqe(FERRY_NVME_ADM_ASYNC_EVENT, 0);
	cr_assert_eq(h_cmd(h, 0, &aer, NULL), ST(COMMAND, AER_LIMIT), "AERL + 1 = 4 outstanding");

	/* An invalid doorbell write (no such queue) completes the oldest AER. */
	h_wr32(h, FERRY_NVME_REG_DBS + 8 * 5, 1);
	struct ferry_nvme_cqe e;
	cr_assert(h_wait(h, 0, &e));
	cr_assert_eq(e.cid, cids[0]);
	cr_assert_eq(e.dw0, FERRY_NVME_AER_DW0(FERRY_NVME_AER_TYPE_ERROR,
					      FERRY_NVME_AER_ERR_INVALID_DB, FERRY_NVME_LOG_ERROR));
	/* Masked until the error log is read: a second error is held back. */
	h_wr32(h, FERRY_NVME_REG_DBS + 4, 1000); /* admin CQ head beyond the queue */
	for (int i = 0; i < 10; i++)
		h_poll(h);
	cr_assert_eq(h_peek(h, 0, &e), 0, "error events masked");
	uint64_t buf = hm_alloc(h->hm, 4096, HM_PAGE);
	struct ferry_nvme_sqe gl = h_sqe(FERRY_NVME_ADM_GET_LOG_PAGE, 0);
	gl.cdw10 = FERRY_NVME_LOG_ERROR | (15u << 16);
	h_prp(h, &gl, buf, 64, 0);
	uint16_t gl_cid = h_submit(h, 0, &gl);
	/* Two completions now: the log page and the held-back event, in either order. */
	int got_log = 0, got_ev = 0;
	for (int i = 0; i < 2; i++) {
		cr_assert(h_wait(h, 0, &e));
		if (e.cid == gl_cid) {
			got_log = 1;
			cr_assert_eq(cqe_st(&e), 0);
		} else {
			got_ev = 1;
			cr_assert_eq(e.cid, cids[1]);
			cr_assert_eq(e.dw0, FERRY_NVME_AER_DW0(FERRY_NVME_AER_TYPE_ERROR,
							      FERRY_NVME_AER_ERR_INVALID_DB_VALUE,
							      FERRY_NVME_LOG_ERROR));
		}
	}
	cr_assert(got_log && got_ev);

	/* Abort the outstanding AER cids[2]; an unknown command is not aborted. */
	struct ferry_nvme_sqe ab = h_sqe(FERRY_NVME_ADM_ABORT, 0);
	ab.cdw10 = 0 | ((uint32_t)cids[2] << 16);
	uint16_t ab_cid = h_submit(h, 0, &ab);
	int seen_abort = 0, seen_aer = 0;
	for (int i = 0; i < 2; i++) {
		cr_assert(h_wait(h, 0, &e));
		if (e.cid == ab_cid) {
			seen_abort = 1;
			cr_assert_eq(cqe_st(&e), 0);
			cr_assert_eq(e.dw0 & 1, 0, "aborted");
		} else {
			seen_aer = 1;
			cr_assert_eq(e.cid, cids[2]);
			cr_assert_eq(cqe_st(&e), ST(GENERIC, ABORT_REQUESTED));
		}
	}
	cr_assert(seen_abort && seen_aer);
	ab.cdw10 = 0 | (0x7777u << 16);
	cr_assert_eq(h_cmd(h, 0, &ab, &e), 0);
	cr_assert_eq(e.dw0 & 1, 1, "not aborted");
	h_destroy(h);
}

Test(nvme_admin, misc_commands)
{
	struct host *h = h_create(NULL);
	h_up(h, 0);
	struct ferry_nvme_sqe s = h_sqe(FERRY_NVME_ADM_KEEP_ALIVE, 0);
	cr_assert_eq(h_cmd(h, 0, &s, NULL), 0);
	s = h_sqe(0xc5, 0);
	cr_assert_eq(h_cmd(h, 0, &s, NULL), ST(GENERIC, INVALID_OPCODE));
	s = h_sqe(FERRY_NVME_ADM_KEEP_ALIVE, 0);
	s.flags = 1; /* fused: not supported */
	cr_assert_eq(h_cmd(h, 0, &s, NULL), ST(GENERIC, INVALID_FIELD));
	h_destroy(h);
}
