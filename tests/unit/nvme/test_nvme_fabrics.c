/*
 * The controller core as an NVMe-oF transport drives it, through a message-based fake
 * transport: Property Get/Set of the registers, the fabrics Identify Controller fields,
 * keep-alive (Connect KATO, Set/Get Features), refused fabrics options, dynamic controller
 * IDs and find_ctrlr, Abort and queue commands over fabrics, the discovery controller and
 * its log page (0, 1 and many entries, partial reads), reset with live I/O queues, and I/O
 * queues driven from their own threads at once (data verified; also run under TSan).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <ferry/accel.h>
#include <ferry/log.h>
#include <ferry/bdev_malloc.h>
#include <ferry/nvmf_spec.h>
#include <ferry/module/bdev.h>
#include <ferry/module/transport.h>
#include <ferry/module/nvme_ctrlr.h>
#include "test_nvme_host.h"

#define HOSTNQN "nqn.2014-08.org.nvmexpress:uuid:0f0e0d0c-0b0a-0908-0706-050403020100"

static void quiet_log(enum ferry_log_level l, const char *c, const char *f, va_list ap)
{
	(void)l;
	(void)c;
	(void)f;
	(void)ap;
}

struct capsule {
	int done;
	uint16_t qid;
	struct ferry_nvme_cqe cqe;
};

static int events[8];

static int fab_send(struct ferry_transport *t, struct ferry_nvme_ctrlr *c, void *ctx, uint16_t qid,
		    const struct ferry_nvme_cqe *cqe, void *cmd_ctx)
{
	(void)t;
	(void)c;
	(void)ctx;
	struct capsule *cap = cmd_ctx;
	cap->qid = qid;
	cap->cqe = *cqe;
	__atomic_store_n(&cap->done, cap->done + 1, __ATOMIC_RELEASE);
	return 0;
}

static void fab_event(struct ferry_transport *t, struct ferry_nvme_ctrlr *c, void *ctx,
		      enum ferry_nvme_ctrlr_event ev)
{
	(void)t;
	(void)c;
	(void)ctx;
	if ((int)ev < 8)
		events[ev]++;
}

static const struct ferry_transport_ops fab_ops = {.abi_version = FERRY_TRANSPORT_OPS_ABI,
						   .name = "fabrics.fake",
						   .kind = FERRY_TRANSPORT_MESSAGE,
						   .send_completion = fab_send,
						   .ctrlr_event = fab_event};

static struct ferry_transport *tr;

static void fab_setup(void)
{
	memset(events, 0, sizeof(events));
	cr_assert_eq(ferry_transport_register(&fab_ops), 0);
	cr_assert_eq(ferry_transport_create("fabrics.fake", NULL, &tr), 0);
}

static void fab_teardown(void)
{
	ferry_transport_destroy(tr);
	ferry_transport_unregister(&fab_ops);
}

static struct ferry_nvme_subsystem *nvm_subsys(const char *nqn)
{
	struct ferry_nvme_subsystem *s;
	struct ferry_nvme_subsystem_opts so = {.size = sizeof(so), .nqn = nqn, .serial = "SN1"};
	cr_assert_eq(ferry_nvme_subsystem_create(&so, &s), 0);
	return s;
}

static struct ferry_nvme_ctrlr_opts copts(struct ferry_nvme_subsystem *s)
{
	struct ferry_nvme_ctrlr_opts co = {.size = sizeof(co),
					   .subsys = s,
					   .transport = tr,
					   .hostnqn = HOSTNQN,
					   .max_queue_entries = 128,
					   .max_io_queues = 4};
	return co;
}

static int submit(struct ferry_nvme_ctrlr *c, uint16_t qid, const struct ferry_nvme_sqe *s,
		  void *buf, size_t len, struct capsule *cap)
{
	struct iovec iov = {buf, len};
	struct ferry_mem m = {.iov = &iov, .iovcnt = 1};
	memset(cap, 0, sizeof(*cap));
	return ferry_nvme_ctrlr_submit(c, qid, s, buf ? &m : NULL, cap);
}

/* An admin command that completes inside submit (no asynchronous bdev below): its status. */
static uint16_t admin(struct ferry_nvme_ctrlr *c, const struct ferry_nvme_sqe *s, void *buf,
		      size_t len, uint32_t *dw0)
{
	struct capsule cap;
	cr_assert_eq(submit(c, 0, s, buf, len, &cap), 0);
	cr_assert_eq(cap.done, 1, "admin opcode 0x%x completed once", s->opcode);
	cr_assert_eq(cap.cqe.cid, s->cid);
	if (dw0)
		*dw0 = cap.cqe.dw0;
	return (cap.cqe.status >> 1) & 0x7ff;
}

static uint16_t identify(struct ferry_nvme_ctrlr *c, uint8_t cns, uint32_t nsid, void *buf)
{
	struct ferry_nvme_sqe s = h_sqe(FERRY_NVME_ADM_IDENTIFY, nsid);
	s.cdw10 = cns;
	return admin(c, &s, buf, 4096, NULL);
}

static uint16_t get_log(struct ferry_nvme_ctrlr *c, uint8_t lid, uint64_t off, void *buf,
			uint32_t len)
{
	struct ferry_nvme_sqe s = h_sqe(FERRY_NVME_ADM_GET_LOG_PAGE, 0);
	uint32_t numd = len / 4 - 1;
	s.cdw10 = lid | ((numd & 0xffff) << 16);
	s.cdw11 = numd >> 16;
	s.cdw12 = (uint32_t)off;
	s.cdw13 = (uint32_t)(off >> 32);
	return admin(c, &s, buf, len, NULL);
}

static uint16_t features(struct ferry_nvme_ctrlr *c, int set, uint8_t fid, uint32_t val,
			 uint32_t *dw0)
{
	struct ferry_nvme_sqe s =
		h_sqe(set ? FERRY_NVME_ADM_SET_FEATURES : FERRY_NVME_ADM_GET_FEATURES, 0);
	s.cdw10 = fid;
	s.cdw11 = val;
	return admin(c, &s, NULL, 0, dw0);
}

static uint64_t reg(struct ferry_nvme_ctrlr *c, uint32_t off, uint32_t size)
{
	uint64_t v = 0;
	cr_assert_eq(ferry_nvme_ctrlr_reg_read(c, off, size, &v), 0);
	return v;
}

/* Connect of the admin queue, then Property Set CC.EN = 1 as the Linux host does it. */
static void up(struct ferry_nvme_ctrlr *c, uint32_t cc)
{
	cr_assert_eq(ferry_nvme_ctrlr_connect_queue(c, 0, 32), 0);
	cr_assert_eq(reg(c, FERRY_NVME_REG_CSTS, 4), 0);
	cr_assert_eq(ferry_nvme_ctrlr_reg_write(c, FERRY_NVME_REG_CC, 4, cc), 0);
	cr_assert_eq(reg(c, FERRY_NVME_REG_CSTS, 4), FERRY_NVME_CSTS_RDY);
}

static uint32_t le32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint16_t le16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}

TestSuite(nvme_fabrics, .init = fab_setup, .fini = fab_teardown);

/* ---- identity ------------------------------------------------------------------------ */

Test(nvme_fabrics, properties_and_identify_report_the_fabrics_fields)
{
	struct ferry_nvme_subsystem *s = nvm_subsys("nqn.2024-01.io.ferry:fab-id");
	struct ferry_nvme_ctrlr_opts co = copts(s);
	co.kato_ms = 30000;
	co.ioccsz = 260; /* 4 KiB in-capsule data */
	co.iorcsz = 1;
	co.msdbd = 1;
	for (int i = 0; i < 16; i++)
		co.hostid[i] = (uint8_t)(0xa0 + i);
	struct ferry_nvme_ctrlr *c;
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &c), 0);
	cr_assert_str_eq(ferry_nvme_ctrlr_get_hostnqn(c), HOSTNQN);
	uint8_t hid[16];
	ferry_nvme_ctrlr_get_hostid(c, hid);
	cr_assert_eq(memcmp(hid, co.hostid, 16), 0);
	cr_assert_eq(ferry_nvme_ctrlr_get_kato(c), 30000);

	uint64_t cap = reg(c, FERRY_NVME_REG_CAP, 8);
	cr_assert_eq(cap & 0xffff, 127, "MQES 0's based");
	cr_assert(cap & FERRY_NVME_CAP_CSS_NVM);
	cr_assert_eq(cap & FERRY_NVME_CAP_CSS_ADMIN_ONLY, 0);
	cr_assert_eq(reg(c, FERRY_NVME_REG_CAP + 4, 4), cap >> 32, "two 4-byte halves");
	cr_assert_eq(reg(c, FERRY_NVME_REG_VS, 4), FERRY_NVME_VS_1_4);
	up(c, H_CC_DEFAULT);

	uint8_t buf[4096];
	memset(buf, 0xee, sizeof(buf));
	cr_assert_eq(identify(c, FERRY_NVME_CNS_CTRLR, 0, buf), 0);
	struct ferry_nvme_id_ctrlr id;
	memcpy(&id, buf, sizeof(id));
	cr_assert_eq(id.cntrltype, 1);
	cr_assert_str_eq(id.subnqn, "nqn.2024-01.io.ferry:fab-id");
	cr_assert_eq(id.cntlid, ferry_nvme_ctrlr_get_cntlid(c));
	cr_assert_eq(id.kas, 1, "100 ms granularity");
	cr_assert_eq(id.maxcmd, 128);
	cr_assert_eq(id.mdts, 5);
	cr_assert_eq(id.sqes, 0x66);
	cr_assert_eq(id.cqes, 0x44);
	cr_assert_eq(id.vid, 0, "no PCI IDs over fabrics");
	cr_assert_eq(id.sgls, FERRY_NVME_SGLS_SUPPORTED | FERRY_NVME_SGLS_OFFSET,
		     "SGLs plus offsets for in-capsule data: 0x%x", id.sgls);
	cr_assert_eq(le32(buf + 1792), 260, "IOCCSZ");
	cr_assert_eq(le32(buf + 1796), 1, "IORCSZ");
	cr_assert_eq(le16(buf + 1800), 0, "ICDOFF");
	cr_assert_eq(buf[1802], 0, "FCATT: dynamic controller model");
	cr_assert_eq(buf[1803], 1, "MSDBD");
	cr_assert_eq(le16(buf + 1804) & 1, 1, "OFCS: Disconnect supported");
	for (int i = 1806; i < 2048; i++)
		cr_assert_eq(buf[i], 0, "byte %d reserved", i);
	cr_assert_eq(ferry_nvme_ctrlr_destroy(c), 0);

	/* Defaults: no in-capsule data (IOCCSZ 4, IORCSZ 1, MSDBD 1); a keyed transport. */
	co = copts(s);
	co.sgls = FERRY_NVME_SGLS_SUPPORTED | FERRY_NVME_SGLS_KEYED;
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &c), 0);
	up(c, H_CC_DEFAULT);
	cr_assert_eq(identify(c, FERRY_NVME_CNS_CTRLR, 0, buf), 0);
	memcpy(&id, buf, sizeof(id));
	cr_assert_eq(id.sgls, FERRY_NVME_SGLS_SUPPORTED | FERRY_NVME_SGLS_KEYED);
	cr_assert_eq(le32(buf + 1792), 4);
	cr_assert_eq(le32(buf + 1796), 1);
	cr_assert_eq(buf[1803], 1);
	cr_assert_eq(ferry_nvme_ctrlr_get_kato(c), 0);
	cr_assert_eq(ferry_nvme_ctrlr_destroy(c), 0);
	cr_assert_eq(ferry_nvme_subsystem_destroy(s), 0);
}

Test(nvme_fabrics, keep_alive_timeout_from_connect_and_features)
{
	struct ferry_nvme_subsystem *s = nvm_subsys("nqn.2024-01.io.ferry:fab-kato");
	struct ferry_nvme_ctrlr_opts co = copts(s);
	co.kato_ms = 15000;
	struct ferry_nvme_ctrlr *c;
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &c), 0);
	up(c, H_CC_DEFAULT);
	uint32_t dw0 = 0;
	cr_assert_eq(features(c, 0, FERRY_NVME_FEAT_KEEP_ALIVE, 0, &dw0), 0);
	cr_assert_eq(dw0, 15000, "Get Features returns the Connect value");
	cr_assert_eq(features(c, 1, FERRY_NVME_FEAT_KEEP_ALIVE, 1, NULL), 0);
	cr_assert_eq(ferry_nvme_ctrlr_get_kato(c), 100, "rounded up to the KAS granularity");
	cr_assert_eq(features(c, 0, FERRY_NVME_FEAT_KEEP_ALIVE, 0, &dw0), 0);
	cr_assert_eq(dw0, 100);
	cr_assert_eq(features(c, 1, FERRY_NVME_FEAT_KEEP_ALIVE, 0xffffffffu, NULL),
		     ST(GENERIC, INVALID_FIELD), "a timeout of 49 days");
	cr_assert_eq(ferry_nvme_ctrlr_get_kato(c), 100, "unchanged by the refused value");
	struct ferry_nvme_sqe ka = h_sqe(FERRY_NVME_ADM_KEEP_ALIVE, 0);
	ka.cid = 9;
	cr_assert_eq(admin(c, &ka, NULL, 0, NULL), 0);
	cr_assert_eq(features(c, 1, FERRY_NVME_FEAT_KEEP_ALIVE, 0, NULL), 0);
	cr_assert_eq(ferry_nvme_ctrlr_get_kato(c), 0, "off");
	cr_assert_eq(ferry_nvme_ctrlr_destroy(c), 0);
	cr_assert_eq(ferry_nvme_subsystem_destroy(s), 0);
}

Test(nvme_fabrics, hostile_fabrics_options_are_refused)
{
	struct ferry_nvme_subsystem *s = nvm_subsys("nqn.2024-01.io.ferry:fab-opts");
	struct ferry_nvme_ctrlr *c = NULL;
	char longnqn[300];
	memset(longnqn, 'a', sizeof(longnqn) - 1);
	longnqn[sizeof(longnqn) - 1] = '\0';
	ferry_log_set_handler(quiet_log);
	struct ferry_nvme_ctrlr_opts co = copts(s);
	co.kato_ms = 3600001;
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &c), -EINVAL, "kato above an hour");
	co = copts(s);
	co.kato_ms = 0xffffffffu;
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &c), -EINVAL, "kato huge");
	co = copts(s);
	co.ioccsz = 3;
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &c), -EINVAL, "ioccsz below the 64-byte SQE");
	co.ioccsz = 65536;
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &c), -EINVAL, "ioccsz beyond 16 bits");
	co = copts(s);
	co.iorcsz = 0x10000;
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &c), -EINVAL);
	co = copts(s);
	co.icdoff = 1;
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &c), -EINVAL, "icdoff without in-capsule data");
	co = copts(s);
	co.sgls = FERRY_NVME_SGLS_KEYED;
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &c), -EINVAL, "sgls without SGL support");
	co.sgls = 3;
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &c), -EINVAL, "sgls 1:0 = 11b reserved");
	co = copts(s);
	co.cntrltype = 2;
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &c), -EINVAL,
		     "discovery type in an NVM subsystem");
	co = copts(s);
	co.hostnqn = NULL;
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &c), -EINVAL, "host NQN required");
	co.hostnqn = "";
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &c), -EINVAL);
	co.hostnqn = longnqn;
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &c), -EINVAL, "host NQN too long");
	co = copts(s);
	co.cntlid = 0xfff0;
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &c), -EINVAL, "reserved controller ID");
	co.cntlid = 0xffff;
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &c), -EINVAL, "the 'dynamic' value");
	ferry_log_set_handler(NULL);
	cr_assert_null(c);
	co = copts(s);
	co.cntlid = 0xffef;
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &c), 0, "the highest valid ID");
	cr_assert_eq(ferry_nvme_ctrlr_get_cntlid(c), 0xffef);
	cr_assert_eq(ferry_nvme_ctrlr_destroy(c), 0);
	cr_assert_eq(ferry_nvme_subsystem_destroy(s), 0);
}

Test(nvme_fabrics, fabrics_options_are_refused_for_memory_based_controllers)
{
	struct host *h = h_create(NULL);
	struct ferry_nvme_ctrlr_opts base = {.size = sizeof(base),
					     .subsys = h->subsys,
					     .transport = h->tr,
					     .host_domain = h->hm->dom,
					     .cntlid = 77};
	struct ferry_nvme_ctrlr_opts co[7];
	for (int i = 0; i < 7; i++)
		co[i] = base;
	co[0].hostnqn = HOSTNQN;
	co[1].hostid[15] = 1;
	co[2].kato_ms = 1000;
	co[3].ioccsz = 4;
	co[4].sgls = FERRY_NVME_SGLS_SUPPORTED;
	co[5].cntrltype = 1;
	co[6].msdbd = 1;
	ferry_log_set_handler(quiet_log);
	for (int i = 0; i < 7; i++) {
		struct ferry_nvme_ctrlr *c = NULL;
		cr_assert_eq(ferry_nvme_ctrlr_create(&co[i], &c), -EINVAL, "option set %d", i);
		cr_assert_null(c);
	}
	ferry_log_set_handler(NULL);
	/* A PCIe controller reports no fabrics fields and keeps KAS 10. */
	h_up(h, 0);
	uint64_t buf = hm_alloc(h->hm, 4096, HM_PAGE);
	struct ferry_nvme_sqe s = h_sqe(FERRY_NVME_ADM_IDENTIFY, 0);
	s.cdw10 = FERRY_NVME_CNS_CTRLR;
	h_prp(h, &s, buf, 4096, 0);
	cr_assert_eq(h_cmd(h, 0, &s, NULL), 0);
	const uint8_t *id = hm_ptr(h->hm, buf);
	for (int i = 1792; i < 2048; i++)
		cr_assert_eq(id[i], 0, "fabrics byte %d", i);
	cr_assert_eq(le16(id + 320), 10, "KAS");
	cr_assert_eq(id[111], 1, "CNTRLTYPE");
	cr_assert_eq(le16(id + 514), 0, "MAXCMD");
	h_destroy(h);
}

Test(nvme_fabrics, dynamic_cntlids_are_not_reused_at_once_and_found)
{
	struct ferry_nvme_subsystem *s = nvm_subsys("nqn.2024-01.io.ferry:fab-cntlid");
	struct ferry_nvme_ctrlr *c[4];
	struct ferry_nvme_ctrlr_opts co = copts(s);
	co.max_inflight = 8;
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(ferry_nvme_ctrlr_create(&co, &c[i]), 0);
		cr_assert_eq(ferry_nvme_ctrlr_get_cntlid(c[i]), i + 1);
	}
	cr_assert_eq(ferry_nvme_ctrlr_destroy(c[1]), 0);
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &c[3]), 0);
	cr_assert_eq(ferry_nvme_ctrlr_get_cntlid(c[3]), 4, "ID 2 is not handed out again yet");
	cr_assert_eq(ferry_nvme_subsystem_find_ctrlr(s, 1), c[0]);
	cr_assert_null(ferry_nvme_subsystem_find_ctrlr(s, 2));
	cr_assert_eq(ferry_nvme_subsystem_find_ctrlr(s, 3), c[2]);
	cr_assert_eq(ferry_nvme_subsystem_find_ctrlr(s, 4), c[3]);
	cr_assert_null(ferry_nvme_subsystem_find_ctrlr(s, 0xffff));
	cr_assert_null(ferry_nvme_subsystem_find_ctrlr(NULL, 1));
	/* An explicit ID taken by a controller is skipped by the dynamic allocation. */
	struct ferry_nvme_ctrlr *x;
	co.cntlid = 5;
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &x), 0);
	co.cntlid = 5;
	ferry_log_set_handler(quiet_log);
	struct ferry_nvme_ctrlr *y;
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &y), -EEXIST);
	ferry_log_set_handler(NULL);
	co.cntlid = 0;
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &y), 0);
	cr_assert_eq(ferry_nvme_ctrlr_get_cntlid(y), 6);
	cr_assert_eq(ferry_nvme_ctrlr_destroy(y), 0);
	cr_assert_eq(ferry_nvme_ctrlr_destroy(x), 0);
	cr_assert_eq(ferry_nvme_ctrlr_destroy(c[0]), 0);
	cr_assert_eq(ferry_nvme_ctrlr_destroy(c[2]), 0);
	cr_assert_eq(ferry_nvme_ctrlr_destroy(c[3]), 0);
	cr_assert_eq(ferry_nvme_subsystem_destroy(s), 0);
}

Test(nvme_fabrics, dynamic_cntlids_wrap_at_0xffef_and_skip_ids_in_use, .timeout = 120)
{
	struct ferry_nvme_subsystem *s = nvm_subsys("nqn.2024-01.io.ferry:fab-wrap");
	struct ferry_nvme_ctrlr_opts co = copts(s);
	co.max_inflight = 8;
	co.max_io_queues = 1;
	co.max_queue_entries = 2;
	struct ferry_nvme_ctrlr *keep, *c;
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &keep), 0);
	cr_assert_eq(ferry_nvme_ctrlr_get_cntlid(keep), 1);
	/* Every other ID once, in order, each freed at once: none is handed out twice. */
	for (uint32_t id = 2; id <= 0xffef; id++) {
		cr_assert_eq(ferry_nvme_ctrlr_create(&co, &c), 0);
		uint16_t got = ferry_nvme_ctrlr_get_cntlid(c);
		cr_assert_eq(ferry_nvme_ctrlr_destroy(c), 0);
		if (got != id)
			cr_assert_fail("dynamic ID %u, expected %u", got, id);
	}
	/* Wrapped: 1 is still in use, 2 is free again. */
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &c), 0);
	cr_assert_eq(ferry_nvme_ctrlr_get_cntlid(c), 2);
	cr_assert_eq(ferry_nvme_ctrlr_destroy(c), 0);
	cr_assert_eq(ferry_nvme_ctrlr_destroy(keep), 0);
	cr_assert_eq(ferry_nvme_subsystem_destroy(s), 0);
}

Test(nvme_fabrics, abort_and_queue_commands_over_fabrics)
{
	struct ferry_nvme_subsystem *s = nvm_subsys("nqn.2024-01.io.ferry:fab-abort");
	struct ferry_nvme_ctrlr_opts co = copts(s);
	struct ferry_nvme_ctrlr *c;
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &c), 0);
	up(c, H_CC_DEFAULT);
	/* A parked AER on the admin queue is not aborted either: Abort touches nothing. */
	struct capsule aer;
	struct ferry_nvme_sqe a = h_sqe(FERRY_NVME_ADM_ASYNC_EVENT, 0);
	a.cid = 77;
	cr_assert_eq(submit(c, 0, &a, NULL, 0, &aer), 0);
	cr_assert_eq(aer.done, 0);
	struct ferry_nvme_sqe ab = h_sqe(FERRY_NVME_ADM_ABORT, 0);
	ab.cdw10 = 0 | (77u << 16);
	uint32_t dw0 = 0;
	cr_assert_eq(admin(c, &ab, NULL, 0, &dw0), 0);
	cr_assert_eq(dw0 & 1, 1, "command not aborted");
	cr_assert_eq(aer.done, 0, "the AER is still parked");
	ab.cdw10 = 1 | (5u << 16);
	cr_assert_eq(admin(c, &ab, NULL, 0, &dw0), 0);
	cr_assert_eq(dw0 & 1, 1);
	static const uint8_t qops[] = {FERRY_NVME_ADM_CREATE_SQ, FERRY_NVME_ADM_CREATE_CQ,
				       FERRY_NVME_ADM_DELETE_SQ, FERRY_NVME_ADM_DELETE_CQ};
	for (size_t i = 0; i < sizeof(qops); i++) {
		struct ferry_nvme_sqe q = h_sqe(qops[i], 0);
		q.cdw10 = 1 | (15u << 16);
		q.cdw11 = 1;
		cr_assert_eq(admin(c, &q, NULL, 0, NULL), ST(GENERIC, INVALID_OPCODE),
			     "opcode 0x%x", qops[i]);
	}
	/* The reset aborts the parked AER (it gets its one completion). */
	cr_assert_eq(ferry_nvme_ctrlr_reg_write(c, FERRY_NVME_REG_CC, 4, 0), 0);
	cr_assert_eq(aer.done, 1);
	cr_assert_eq(ferry_nvme_ctrlr_destroy(c), 0);
	cr_assert_eq(ferry_nvme_subsystem_destroy(s), 0);
}

/* ---- discovery ------------------------------------------------------------------------ */

struct disc_src {
	uint32_t n;
	uint64_t genctr;
	int calls;
};

static void disc_fill(struct ferry_nvmf_disc_entry *e, uint32_t i)
{
	memset(e, 0, sizeof(*e));
	e->trtype = FERRY_NVMF_TRTYPE_TCP;
	e->adrfam = FERRY_NVMF_ADRFAM_IPV4;
	e->subtype = FERRY_NVMF_SUBTYPE_NVME;
	e->treq = FERRY_NVMF_TREQ_NOT_REQUIRED;
	e->portid = (uint16_t)i;
	e->cntlid = FERRY_NVMF_CNTLID_DYNAMIC;
	e->asqsz = 32;
	snprintf(e->subnqn, sizeof(e->subnqn), "nqn.2024-01.io.ferry:sub%u", i);
	memset(e->trsvcid, ' ', sizeof(e->trsvcid));
	memcpy(e->trsvcid, "4420", 4);
	memset(e->traddr, ' ', sizeof(e->traddr));
	memcpy(e->traddr, "127.0.0.1", 9);
	for (int k = 0; k < 256; k++)
		e->tsas[k] = (uint8_t)(i * 7 + k); /* every byte distinct per entry */
}

static int disc_cb(void *ctx, struct ferry_nvmf_disc_entry *entries, uint32_t max, uint32_t *count,
		   uint64_t *genctr)
{
	struct disc_src *d = ctx;
	d->calls++;
	for (uint32_t i = 0; i < max && i < d->n; i++)
		disc_fill(&entries[i], i);
	*count = d->n;
	*genctr = d->genctr;
	return 0;
}

/* The whole page as the specification lays it out. */
static uint8_t *disc_expected(const struct disc_src *d, size_t *len)
{
	*len = 1024 * ((size_t)d->n + 1);
	uint8_t *p = calloc(1, *len);
	struct ferry_nvmf_disc_log h = {.genctr = d->genctr, .numrec = d->n, .recfmt = 0};
	memcpy(p, &h, sizeof(h));
	for (uint32_t i = 0; i < d->n; i++)
		disc_fill((struct ferry_nvmf_disc_entry *)(p + 1024 * (i + 1)), i);
	return p;
}

static struct ferry_nvme_subsystem *disc_subsys(struct disc_src *d)
{
	struct ferry_nvme_subsystem *s;
	struct ferry_nvme_subsystem_opts so = {.size = sizeof(so),
					       .nqn = FERRY_NVMF_DISCOVERY_NQN,
					       .type = FERRY_NVME_SUBSYS_DISCOVERY,
					       .disc_log = disc_cb,
					       .disc_ctx = d};
	cr_assert_eq(ferry_nvme_subsystem_create(&so, &s), 0);
	return s;
}

Test(nvme_fabrics, discovery_subsystem_rules)
{
	struct disc_src d = {0};
	struct ferry_nvme_subsystem *s = disc_subsys(&d);
	cr_assert_eq(ferry_nvme_subsystem_get_type(s), FERRY_NVME_SUBSYS_DISCOVERY);
	struct ferry_nvme_subsystem *s2 = disc_subsys(&d);
	cr_assert_neq(s, s2, "another transport's discovery subsystem may share the NQN");
	ferry_log_set_handler(quiet_log);
	struct ferry_nvme_subsystem *x;
	struct ferry_nvme_subsystem_opts so = {.size = sizeof(so), .nqn = FERRY_NVMF_DISCOVERY_NQN};
	cr_assert_eq(ferry_nvme_subsystem_create(&so, &x), -EEXIST, "an NVM one may not");
	so.type = FERRY_NVME_SUBSYS_DISCOVERY;
	so.nqn = "nqn.2024-01.io.ferry:disc2";
	cr_assert_eq(ferry_nvme_subsystem_create(&so, &x), -EINVAL, "no disc_log");
	so.type = FERRY_NVME_SUBSYS_NVM;
	so.disc_log = disc_cb;
	cr_assert_eq(ferry_nvme_subsystem_create(&so, &x), -EINVAL, "disc_log on an NVM subsystem");
	so.type = 2;
	cr_assert_eq(ferry_nvme_subsystem_create(&so, &x), -EINVAL, "unknown type");
	struct ferry_bdev *b;
	struct ferry_bdev_malloc_opts mo = {.size = sizeof(mo),
					    .name = "fab.disc.malloc",
					    .block_size = 512,
					    .num_blocks = 8};
	cr_assert_eq(ferry_bdev_malloc_create(&mo, &b), 0);
	struct ferry_nvme_ns_opts no = {.size = sizeof(no), .bdev = b};
	cr_assert_eq(ferry_nvme_subsystem_add_ns(s, &no, NULL), -EINVAL, "no namespaces");
	ferry_log_set_handler(NULL);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	cr_assert_eq(ferry_nvme_subsystem_destroy(s2), 0);
	cr_assert_eq(ferry_nvme_subsystem_destroy(s), 0);
}

Test(nvme_fabrics, discovery_controller_identify_and_commands)
{
	struct disc_src d = {.n = 2, .genctr = 5};
	struct ferry_nvme_subsystem *s = disc_subsys(&d);
	struct ferry_nvme_ctrlr_opts co = copts(s);
	co.kato_ms = 120000;
	struct ferry_nvme_ctrlr *c;
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &c), 0);
	uint64_t cap = reg(c, FERRY_NVME_REG_CAP, 8);
	cr_assert(cap & FERRY_NVME_CAP_CSS_ADMIN_ONLY, "CAP.CSS: admin only");
	cr_assert_eq(cap & FERRY_NVME_CAP_CSS_NVM, 0);
	ferry_log_set_handler(quiet_log);
	cr_assert_eq(ferry_nvme_ctrlr_connect_queue(c, 0, 32), 0);
	ferry_log_set_handler(NULL);
	/* The Linux host enables a discovery controller with CC.CSS = 000b. */
	cr_assert_eq(ferry_nvme_ctrlr_reg_write(c, FERRY_NVME_REG_CC, 4, H_CC_DEFAULT), 0);
	cr_assert_eq(reg(c, FERRY_NVME_REG_CSTS, 4), FERRY_NVME_CSTS_RDY);
	ferry_log_set_handler(quiet_log);
	cr_assert_eq(ferry_nvme_ctrlr_connect_queue(c, 1, 32), -EINVAL, "no I/O queues");
	ferry_log_set_handler(NULL);

	uint8_t buf[4096];
	cr_assert_eq(identify(c, FERRY_NVME_CNS_CTRLR, 0, buf), 0);
	struct ferry_nvme_id_ctrlr id;
	memcpy(&id, buf, sizeof(id));
	cr_assert_eq(id.cntrltype, 2);
	cr_assert_str_eq(id.subnqn, FERRY_NVMF_DISCOVERY_NQN);
	cr_assert_eq(id.nn, 0);
	cr_assert_eq(id.oncs, 0);
	cr_assert_eq(id.kas, 1);
	cr_assert_eq(id.maxcmd, 128);
	cr_assert_eq(id.sgls & 3, 1);
	cr_assert_eq(id.lpa & 0x04, 0x04, "extended Get Log Page (offsets)");
	cr_assert_eq(le32(buf + 1792), 0, "no I/O queue capsules");
	cr_assert_eq(identify(c, FERRY_NVME_CNS_NS, 1, buf), ST(GENERIC, INVALID_NS));
	cr_assert_eq(identify(c, FERRY_NVME_CNS_NS_DESC_LIST, 1, buf), ST(GENERIC, INVALID_NS));
	cr_assert_eq(identify(c, FERRY_NVME_CNS_ACTIVE_NS_LIST, 0, buf),
		     ST(GENERIC, INVALID_FIELD));
	uint32_t dw0;
	cr_assert_eq(features(c, 0, FERRY_NVME_FEAT_KEEP_ALIVE, 0, &dw0), 0);
	cr_assert_eq(dw0, 120000);
	cr_assert_eq(features(c, 1, FERRY_NVME_FEAT_NUM_QUEUES, 0x10001, NULL),
		     ST(GENERIC, INVALID_FIELD), "no queues to ask for");
	struct ferry_nvme_sqe ka = h_sqe(FERRY_NVME_ADM_KEEP_ALIVE, 0);
	cr_assert_eq(admin(c, &ka, NULL, 0, NULL), 0);
	struct ferry_nvme_sqe ab = h_sqe(FERRY_NVME_ADM_ABORT, 0);
	cr_assert_eq(admin(c, &ab, NULL, 0, NULL), ST(GENERIC, INVALID_OPCODE));
	cr_assert_eq(get_log(c, FERRY_NVME_LOG_SMART, 0, buf, 512), ST(COMMAND, INVALID_LOG_PAGE));
	cr_assert_eq(get_log(c, FERRY_NVME_LOG_ERROR, 0, buf, 64), ST(COMMAND, INVALID_LOG_PAGE));
	cr_assert_eq(ferry_nvme_ctrlr_destroy(c), 0);
	cr_assert_eq(ferry_nvme_subsystem_destroy(s), 0);
}

static void check_disc_read(struct ferry_nvme_ctrlr *c, const struct disc_src *d, uint64_t off,
			    uint32_t len)
{
	size_t size;
	uint8_t *want = disc_expected(d, &size);
	uint8_t *got = malloc(len);
	memset(got, 0xee, len);
	cr_assert_eq(get_log(c, FERRY_NVMF_LOG_DISCOVERY, off, got, len), 0, "off %llu len %u",
		     (unsigned long long)off, len);
	for (uint32_t i = 0; i < len; i++) {
		uint8_t w = off + i < size ? want[off + i] : 0;
		cr_assert_eq(got[i], w,
			     "%u entries, off %llu len %u: byte %u is 0x%02x, not 0x%02x", d->n,
			     (unsigned long long)off, len, i, got[i], w);
	}
	free(got);
	free(want);
}

Test(nvme_fabrics, discovery_log_page_entries_offsets_lengths)
{
	struct disc_src d = {.n = 0, .genctr = 1};
	struct ferry_nvme_subsystem *s = disc_subsys(&d);
	struct ferry_nvme_ctrlr_opts co = copts(s);
	struct ferry_nvme_ctrlr *c;
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &c), 0);
	up(c, H_CC_DEFAULT);

	/* No entry: the header alone; reading more gives zeroes past it. */
	check_disc_read(c, &d, 0, 1024);
	check_disc_read(c, &d, 0, 4096);
	check_disc_read(c, &d, 8, 8); /* numrec */
	uint8_t tmp[2048];
	cr_assert_eq(get_log(c, FERRY_NVMF_LOG_DISCOVERY, 1024, tmp, 4), ST(GENERIC, INVALID_FIELD),
		     "offset at the end of a page of no entries");
	/* One entry. */
	d.n = 1;
	d.genctr = 2;
	check_disc_read(c, &d, 0, 2048);
	check_disc_read(c, &d, 1024, 1024);
	check_disc_read(c, &d, 1028, 8);
	cr_assert_eq(get_log(c, FERRY_NVMF_LOG_DISCOVERY, 2048, tmp, 4),
		     ST(GENERIC, INVALID_FIELD));
	cr_assert_eq(get_log(c, FERRY_NVMF_LOG_DISCOVERY, 2, tmp, 4), ST(GENERIC, INVALID_FIELD),
		     "offset not dword aligned");
	/* Many: 37 entries, 38 KiB, read whole, in odd slices and across entry boundaries. */
	d.n = 37;
	d.genctr = 99;
	check_disc_read(c, &d, 0, 38 * 1024);
	check_disc_read(c, &d, 0, 40 * 1024);
	check_disc_read(c, &d, 4, 4092);
	check_disc_read(c, &d, 1020, 1032);
	check_disc_read(c, &d, 5 * 1024 + 256, 3 * 1024 + 12);
	check_disc_read(c, &d, 37 * 1024 + 1020, 4);
	check_disc_read(c, &d, 37 * 1024 + 1020, 64); /* past the end: zeroes */
	for (uint64_t off = 0; off < 38 * 1024; off += 4 * 1024 + 4)
		check_disc_read(c, &d, off, 1036);
	cr_assert_eq(get_log(c, FERRY_NVMF_LOG_DISCOVERY, 38 * 1024, tmp, 4),
		     ST(GENERIC, INVALID_FIELD), "offset past the end");
	cr_assert_eq(get_log(c, FERRY_NVMF_LOG_DISCOVERY, 1ull << 40, tmp, 4),
		     ST(GENERIC, INVALID_FIELD), "offset far past the end");
	cr_assert_eq(ferry_nvme_ctrlr_destroy(c), 0);

	/* An NVM controller has no Discovery log page. */
	struct ferry_nvme_subsystem *n = nvm_subsys("nqn.2024-01.io.ferry:fab-nodisc");
	co = copts(n);
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &c), 0);
	up(c, H_CC_DEFAULT);
	cr_assert_eq(get_log(c, FERRY_NVMF_LOG_DISCOVERY, 0, tmp, 1024),
		     ST(COMMAND, INVALID_LOG_PAGE));
	cr_assert_eq(ferry_nvme_ctrlr_destroy(c), 0);
	cr_assert_eq(ferry_nvme_subsystem_destroy(n), 0);
	cr_assert_eq(ferry_nvme_subsystem_destroy(s), 0);
}

/* ---- reset with I/O queues, threads ---------------------------------------------------- */

static struct ferry_bdev *mk_malloc(const char *name, uint64_t blocks)
{
	struct ferry_bdev *b;
	struct ferry_bdev_malloc_opts mo = {.size = sizeof(mo),
					    .name = name,
					    .block_size = 512,
					    .num_blocks = blocks};
	cr_assert_eq(ferry_bdev_malloc_create(&mo, &b), 0);
	return b;
}

Test(nvme_fabrics, reset_waits_for_the_transport_to_disconnect_io_queues)
{
	struct ferry_nvme_subsystem *s = nvm_subsys("nqn.2024-01.io.ferry:fab-reset");
	struct ferry_bdev *b = mk_malloc("fab.reset.malloc", 64);
	struct ferry_nvme_ns_opts no = {.size = sizeof(no), .bdev = b};
	cr_assert_eq(ferry_nvme_subsystem_add_ns(s, &no, NULL), 0);
	struct ferry_nvme_ctrlr_opts co = copts(s);
	co.kato_ms = 5000;
	struct ferry_nvme_ctrlr *c;
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &c), 0);
	ferry_log_set_handler(quiet_log);
	cr_assert_eq(ferry_nvme_ctrlr_connect_queue(c, 0, 32), 0);
	cr_assert_eq(ferry_nvme_ctrlr_connect_queue(c, 1, 32), -EAGAIN, "before CC.EN");
	ferry_log_set_handler(NULL);
	cr_assert_eq(ferry_nvme_ctrlr_reg_write(c, FERRY_NVME_REG_CC, 4, H_CC_DEFAULT), 0);
	cr_assert_eq(events[FERRY_NVME_EVENT_ENABLED], 1);
	cr_assert_eq(ferry_nvme_ctrlr_connect_queue(c, 1, 32), 0);
	cr_assert_eq(ferry_nvme_ctrlr_connect_queue(c, 2, 32), 0);
	cr_assert_eq(features(c, 1, FERRY_NVME_FEAT_KEEP_ALIVE, 800, NULL), 0);

	uint8_t w[512], r[512];
	memset(w, 0x5a, sizeof(w));
	struct ferry_nvme_sqe sqe = h_sqe(0, 1);
	h_rw(&sqe, FERRY_NVME_CMD_WRITE, 3, 1);
	struct capsule cap;
	cr_assert_eq(submit(c, 1, &sqe, w, sizeof(w), &cap), 0);
	cr_assert_eq(cap.done, 1);
	cr_assert_eq(cap.qid, 1);
	cr_assert_eq(cap.cqe.status, 0);
	ferry_log_set_handler(quiet_log);
	cr_assert_eq(ferry_nvme_subsystem_remove_ns(s, 1), -EBUSY, "I/O queues read the table");
	ferry_log_set_handler(NULL);

	cr_assert_eq(ferry_nvme_ctrlr_reg_write(c, FERRY_NVME_REG_CC, 4, 0), 0);
	h_rw(&sqe, FERRY_NVME_CMD_READ, 3, 1);
	cr_assert_eq(submit(c, 1, &sqe, r, sizeof(r), &cap), -EAGAIN, "resetting");
	cr_assert_eq(cap.done, 0);
	cr_assert_eq(ferry_nvme_ctrlr_poll(c, 8), 0);
	cr_assert_eq(reg(c, FERRY_NVME_REG_CSTS, 4), FERRY_NVME_CSTS_RDY, "waits for the queues");
	cr_assert_eq(events[FERRY_NVME_EVENT_DISABLED], 0);
	cr_assert_eq(ferry_nvme_ctrlr_disconnect_queue(c, 1), 0);
	cr_assert_eq(reg(c, FERRY_NVME_REG_CSTS, 4), FERRY_NVME_CSTS_RDY);
	cr_assert_eq(ferry_nvme_ctrlr_disconnect_queue(c, 2), 0);
	cr_assert_eq(reg(c, FERRY_NVME_REG_CSTS, 4), 0, "the last I/O queue gone: reset done");
	cr_assert_eq(events[FERRY_NVME_EVENT_DISABLED], 1);
	cr_assert_eq(ferry_nvme_ctrlr_get_kato(c), 5000, "the reset restores the Connect KATO");
	struct ferry_nvme_ctrlr_stats st = {.size = sizeof(st)};
	cr_assert_eq(ferry_nvme_ctrlr_get_stats(c, &st), 0);
	cr_assert_eq(st.io_cmds, 1, "the disconnected queue's counters are kept");
	cr_assert_eq(st.bytes_written, 512);
	cr_assert_eq(st.resets, 1);

	/* Enabled again, the I/O queue reads what was written before the reset. */
	cr_assert_eq(ferry_nvme_ctrlr_reg_write(c, FERRY_NVME_REG_CC, 4, H_CC_DEFAULT), 0);
	cr_assert_eq(ferry_nvme_ctrlr_connect_queue(c, 1, 32), 0);
	cr_assert_eq(submit(c, 1, &sqe, r, sizeof(r), &cap), 0);
	cr_assert_eq(cap.cqe.status, 0);
	cr_assert_eq(memcmp(w, r, sizeof(w)), 0);
	cr_assert_eq(ferry_nvme_ctrlr_disconnect_queue(c, 1), 0);
	cr_assert_eq(ferry_nvme_ctrlr_disconnect_queue(c, 0), 0);
	cr_assert_eq(ferry_nvme_ctrlr_destroy(c), 0);
	cr_assert_eq(ferry_nvme_subsystem_remove_ns(s, 1), 0);
	cr_assert_eq(ferry_nvme_subsystem_destroy(s), 0);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
}

#define IOQ_THREADS 3
#define IOQ_OPS 1500 /* write + read-back pairs per thread */
#define IOQ_SPAN 64  /* 4 KiB slots per thread */

struct ioq_worker {
	struct ferry_nvme_ctrlr *ctrlr;
	uint16_t qid;
	struct ferry_accel_chan *chan; /* used only by the queue's thread once set */
	int failures;
	char why[160];
};

static void fill_pattern(uint8_t *p, size_t n, uint32_t tag)
{
	for (size_t i = 0; i < n; i += 4) {
		uint32_t v = tag * 2654435761u + (uint32_t)i;
		memcpy(p + i, &v, 4);
	}
}

/* One command on the worker's queue, driven to completion on this thread (bounded). */
static int ioq_cmd(struct ioq_worker *wk, struct ferry_nvme_sqe *sqe, void *buf, size_t len)
{
	struct capsule cap;
	struct iovec iov = {buf, len};
	struct ferry_mem m = {.iov = &iov, .iovcnt = 1};
	memset(&cap, 0, sizeof(cap));
	int rc = ferry_nvme_ctrlr_submit(wk->ctrlr, wk->qid, sqe, &m, &cap);
	if (rc)
		return rc;
	for (int spins = 0; !__atomic_load_n(&cap.done, __ATOMIC_ACQUIRE); spins++) {
		if (spins > 1000000)
			return -ETIMEDOUT;
		ferry_nvme_ctrlr_poll_queue(wk->ctrlr, wk->qid, 16);
	}
	if (cap.qid != wk->qid || cap.cqe.cid != sqe->cid || cap.cqe.sqid != wk->qid)
		return -EPROTO;
	return (cap.cqe.status >> 1) & 0x7ff ? -EIO : 0;
}

static void *ioq_thread(void *arg)
{
	struct ioq_worker *wk = arg;
	uint8_t w[4096], r[4096];
	uint64_t base = (uint64_t)(wk->qid - 1) * IOQ_SPAN * 8;
	for (uint32_t i = 0; i < IOQ_OPS && !wk->failures; i++) {
		uint32_t slot = (i * 17) % IOQ_SPAN;
		uint32_t tag = (uint32_t)wk->qid << 24 | i;
		fill_pattern(w, sizeof(w), tag);
		struct ferry_nvme_sqe sqe = h_sqe(0, 1);
		sqe.cid = (uint16_t)i;
		h_rw(&sqe, FERRY_NVME_CMD_WRITE, base + slot * 8, 8);
		int rc = ioq_cmd(wk, &sqe, w, sizeof(w));
		if (!rc) {
			memset(r, 0, sizeof(r));
			h_rw(&sqe, FERRY_NVME_CMD_READ, base + slot * 8, 8);
			rc = ioq_cmd(wk, &sqe, r, sizeof(r));
		}
		if (!rc && memcmp(w, r, sizeof(w)) != 0)
			rc = -EILSEQ;
		if (rc) {
			wk->failures++;
			snprintf(wk->why, sizeof(wk->why), "queue %u op %u: %s", wk->qid, i,
				 ferry_strerror(rc));
		}
	}
	return NULL;
}

struct admin_loop {
	struct ferry_nvme_ctrlr *ctrlr;
	volatile int *stop;
	int failures;
};

static void *admin_thread(void *arg)
{
	struct admin_loop *al = arg;
	uint8_t buf[4096];
	uint64_t last = 0;
	while (!__atomic_load_n(al->stop, __ATOMIC_ACQUIRE)) {
		struct capsule cap;
		struct ferry_nvme_sqe ka = h_sqe(FERRY_NVME_ADM_KEEP_ALIVE, 0);
		if (submit(al->ctrlr, 0, &ka, NULL, 0, &cap) || cap.done != 1 || cap.cqe.status)
			al->failures++;
		struct ferry_nvme_sqe id = h_sqe(FERRY_NVME_ADM_IDENTIFY, 0);
		id.cdw10 = FERRY_NVME_CNS_CTRLR;
		if (submit(al->ctrlr, 0, &id, buf, sizeof(buf), &cap) || cap.cqe.status)
			al->failures++;
		struct ferry_nvme_ctrlr_stats st = {.size = sizeof(st)};
		if (ferry_nvme_ctrlr_get_stats(al->ctrlr, &st) || st.io_cmds < last)
			al->failures++;
		last = st.io_cmds;
		ferry_nvme_ctrlr_poll(al->ctrlr, 8);
	}
	return NULL;
}

static void run_threads(int use_accel)
{
	struct ferry_nvme_subsystem *s = nvm_subsys(use_accel ? "nqn.2024-01.io.ferry:fab-mt-accel"
							      : "nqn.2024-01.io.ferry:fab-mt");
	struct ferry_bdev *b = mk_malloc(use_accel ? "fab.mt.accel.malloc" : "fab.mt.malloc",
					 (uint64_t)IOQ_THREADS * IOQ_SPAN * 8);
	struct ferry_nvme_ns_opts no = {.size = sizeof(no), .bdev = b};
	cr_assert_eq(ferry_nvme_subsystem_add_ns(s, &no, NULL), 0);
	struct ferry_nvme_ctrlr_opts co = copts(s);
	struct ferry_nvme_ctrlr *c;
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &c), 0);
	up(c, H_CC_DEFAULT);
	struct ioq_worker wk[IOQ_THREADS];
	pthread_t th[IOQ_THREADS], adm;
	for (int i = 0; i < IOQ_THREADS; i++) {
		wk[i] = (struct ioq_worker){.ctrlr = c, .qid = (uint16_t)(i + 1)};
		cr_assert_eq(ferry_nvme_ctrlr_connect_queue(c, wk[i].qid, 16), 0);
		/* A channel per queue: each is then used by that queue's thread alone
		 * (connect + set here, before the thread starts: the ordering the API asks). */
		if (use_accel) {
			cr_assert_eq(ferry_accel_chan_create(NULL, NULL, &wk[i].chan), 0);
			cr_assert_eq(ferry_nvme_ctrlr_set_queue_accel_chan(c, wk[i].qid,
									   wk[i].chan),
				     0);
		}
	}
	volatile int stop = 0;
	struct admin_loop al = {.ctrlr = c, .stop = &stop};
	cr_assert_eq(pthread_create(&adm, NULL, admin_thread, &al), 0);
	for (int i = 0; i < IOQ_THREADS; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, ioq_thread, &wk[i]), 0);
	for (int i = 0; i < IOQ_THREADS; i++)
		pthread_join(th[i], NULL);
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	pthread_join(adm, NULL);
	for (int i = 0; i < IOQ_THREADS; i++)
		cr_assert_eq(wk[i].failures, 0, "%s", wk[i].why);
	cr_assert_eq(al.failures, 0, "admin thread saw a failure");

	/* Every block as its last write left it. */
	for (int q = 0; q < IOQ_THREADS; q++) {
		struct ioq_worker chk = wk[q];
		uint8_t want[4096], got[4096];
		for (uint32_t slot = 0; slot < IOQ_SPAN; slot++) {
			uint32_t last = 0;
			for (uint32_t i = 0; i < IOQ_OPS; i++)
				if ((i * 17) % IOQ_SPAN == slot)
					last = i;
			fill_pattern(want, sizeof(want), (uint32_t)(q + 1) << 24 | last);
			struct ferry_nvme_sqe sqe = h_sqe(0, 1);
			h_rw(&sqe, FERRY_NVME_CMD_READ, (uint64_t)q * IOQ_SPAN * 8 + slot * 8, 8);
			cr_assert_eq(ioq_cmd(&chk, &sqe, got, sizeof(got)), 0);
			cr_assert_eq(memcmp(want, got, sizeof(got)), 0, "queue %d slot %u", q + 1,
				     slot);
		}
	}
	uint64_t ios = (uint64_t)IOQ_THREADS * (2 * IOQ_OPS + IOQ_SPAN);
	struct ferry_nvme_ctrlr_stats st = {.size = sizeof(st)};
	cr_assert_eq(ferry_nvme_ctrlr_get_stats(c, &st), 0);
	cr_assert_eq(st.io_cmds, ios, "per-queue counters summed: %llu",
		     (unsigned long long)st.io_cmds);
	cr_assert_eq(st.bytes_written, (uint64_t)IOQ_THREADS * IOQ_OPS * 4096);
	cr_assert_eq(st.bytes_read, (uint64_t)IOQ_THREADS * (IOQ_OPS + IOQ_SPAN) * 4096);
	cr_assert_eq(st.errors, 0);
	for (int i = 0; i < IOQ_THREADS; i++) {
		cr_assert_eq(ferry_nvme_ctrlr_disconnect_queue(c, wk[i].qid), 0);
		ferry_accel_chan_destroy(wk[i].chan);
	}
	struct ferry_nvme_ctrlr_stats st2 = {.size = sizeof(st2)};
	cr_assert_eq(ferry_nvme_ctrlr_get_stats(c, &st2), 0);
	cr_assert_eq(st2.io_cmds, st.io_cmds, "kept after disconnect");
	cr_assert_eq(st2.bytes_read, st.bytes_read);
	cr_assert_eq(ferry_nvme_ctrlr_destroy(c), 0);
	cr_assert_eq(ferry_nvme_subsystem_destroy(s), 0);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
}

Test(nvme_fabrics, io_queues_on_their_own_threads_concurrently, .timeout = 120)
{
	run_threads(0);
}

Test(nvme_fabrics, io_queues_with_their_own_accel_channels_concurrently, .timeout = 120)
{
	run_threads(1);
}

Test(nvme_fabrics, queue_accel_channel_and_poll_queue_arguments)
{
	struct ferry_nvme_subsystem *s = nvm_subsys("nqn.2024-01.io.ferry:fab-chan");
	struct ferry_bdev *b = mk_malloc("fab.chan.malloc", 64);
	struct ferry_nvme_ns_opts no = {.size = sizeof(no), .bdev = b};
	cr_assert_eq(ferry_nvme_subsystem_add_ns(s, &no, NULL), 0);
	struct ferry_nvme_ctrlr_opts co = copts(s);
	struct ferry_nvme_ctrlr *c;
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &c), 0);
	up(c, H_CC_DEFAULT);
	struct ferry_accel_chan *ch;
	cr_assert_eq(ferry_accel_chan_create(NULL, NULL, &ch), 0);
	ferry_log_set_handler(quiet_log);
	cr_assert_eq(ferry_nvme_ctrlr_set_queue_accel_chan(c, 1, ch), -ENOENT, "not connected");
	cr_assert_eq(ferry_nvme_ctrlr_set_queue_accel_chan(c, 0, ch), -EINVAL, "admin queue");
	cr_assert_eq(ferry_nvme_ctrlr_set_queue_accel_chan(NULL, 1, ch), -EINVAL);
	cr_assert_eq(ferry_nvme_ctrlr_poll_queue(c, 1, 8), -ENOENT);
	cr_assert_eq(ferry_nvme_ctrlr_poll_queue(c, 0, 8), -EINVAL);
	ferry_log_set_handler(NULL);
	cr_assert_eq(ferry_nvme_ctrlr_connect_queue(c, 1, 16), 0);
	cr_assert_eq(ferry_nvme_ctrlr_set_queue_accel_chan(c, 1, ch), 0);
	struct ioq_worker wk = {.ctrlr = c, .qid = 1};
	uint8_t w[4096], r[4096];
	fill_pattern(w, sizeof(w), 42);
	struct ferry_nvme_sqe sqe = h_sqe(0, 1);
	h_rw(&sqe, FERRY_NVME_CMD_WRITE, 8, 8);
	cr_assert_eq(ioq_cmd(&wk, &sqe, w, sizeof(w)), 0);
	h_rw(&sqe, FERRY_NVME_CMD_READ, 8, 8);
	cr_assert_eq(ioq_cmd(&wk, &sqe, r, sizeof(r)), 0);
	cr_assert_eq(memcmp(w, r, sizeof(w)), 0, "data through the queue's sequences");
	struct ferry_accel_stats as = {.size = sizeof(as)};
	cr_assert_eq(ferry_accel_get_stats(ch, &as), 0);
	cr_assert_geq(as.seqs_completed, 2, "the I/Os ran sequences on the queue's channel");
	cr_assert_geq(ferry_nvme_ctrlr_poll_queue(c, 1, 8), 0);
	cr_assert_eq(ferry_nvme_ctrlr_disconnect_queue(c, 1), 0);
	ferry_accel_chan_destroy(ch);
	cr_assert_eq(ferry_nvme_ctrlr_destroy(c), 0);
	cr_assert_eq(ferry_nvme_subsystem_destroy(s), 0);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
}

Test(nvme_fabrics, shutdown_closes_io_queues_and_flushes)
{
	struct ferry_nvme_subsystem *s = nvm_subsys("nqn.2024-01.io.ferry:fab-shn");
	struct ferry_bdev *b = mk_malloc("fab.shn.malloc", 64);
	struct ferry_nvme_ns_opts no = {.size = sizeof(no), .bdev = b};
	cr_assert_eq(ferry_nvme_subsystem_add_ns(s, &no, NULL), 0);
	struct ferry_nvme_ctrlr_opts co = copts(s);
	struct ferry_nvme_ctrlr *c;
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &c), 0);
	up(c, H_CC_DEFAULT);
	cr_assert_eq(ferry_nvme_ctrlr_connect_queue(c, 1, 16), 0);
	uint8_t w[512];
	memset(w, 0x3c, sizeof(w));
	struct ferry_nvme_sqe sqe = h_sqe(0, 1);
	h_rw(&sqe, FERRY_NVME_CMD_WRITE, 0, 1);
	struct capsule cap;
	cr_assert_eq(submit(c, 1, &sqe, w, sizeof(w), &cap), 0);
	cr_assert_eq(cap.cqe.status, 0);
	struct ferry_bdev_stats bs = {.size = sizeof(bs)};
	cr_assert_eq(ferry_bdev_get_stats(b, &bs), 0);
	uint64_t flushes = bs.ios[FERRY_BDEV_IO_FLUSH];

	cr_assert_eq(ferry_nvme_ctrlr_reg_write(c, FERRY_NVME_REG_CC, 4,
						H_CC_DEFAULT | (FERRY_NVME_CC_SHN_NORMAL << 14)),
		     0);
	cr_assert_eq(submit(c, 1, &sqe, w, sizeof(w), &cap), -EAGAIN, "no I/O once SHN is set");
	for (int i = 0; i < 100 && ((reg(c, FERRY_NVME_REG_CSTS, 4) & FERRY_NVME_CSTS_SHST_MASK) >>
				    FERRY_NVME_CSTS_SHST_SHIFT) != FERRY_NVME_CSTS_SHST_COMPLETE;
	     i++)
		ferry_nvme_ctrlr_poll(c, 8);
	cr_assert_eq((reg(c, FERRY_NVME_REG_CSTS, 4) & FERRY_NVME_CSTS_SHST_MASK) >>
			     FERRY_NVME_CSTS_SHST_SHIFT,
		     FERRY_NVME_CSTS_SHST_COMPLETE, "idle I/O queue: the shutdown completes");
	cr_assert_eq(ferry_bdev_get_stats(b, &bs), 0);
	cr_assert_eq(bs.ios[FERRY_BDEV_IO_FLUSH], flushes + 1,
		     "normal shutdown flushed the namespace");
	ferry_log_set_handler(quiet_log);
	cr_assert_eq(ferry_nvme_ctrlr_connect_queue(c, 2, 16), -EAGAIN, "no new I/O queue");
	ferry_log_set_handler(NULL);
	cr_assert_eq(ferry_nvme_ctrlr_disconnect_queue(c, 1), 0);
	cr_assert_eq(ferry_nvme_ctrlr_destroy(c), 0);
	cr_assert_eq(ferry_nvme_subsystem_destroy(s), 0);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
}

/* ---- bdevs with their own work: ferry_bdev_poll() from the controller ------------------ */

/* A bdev that completes Write Zeroes only from its poll op, as a network initiator bdev
 * completes I/O from its connections. */
struct deferred {
	struct ferry_bdev_io *q[8];
	uint32_t n;
	uint32_t polls;
};

static int deferred_wz(struct ferry_bdev *b, struct ferry_bdev_io *io)
{
	struct deferred *d = ferry_bdev_get_ctx(b);
	if (d->n == 8)
		return -ENOMEM;
	d->q[d->n++] = io;
	return 0;
}

static int deferred_poll(struct ferry_bdev *b, uint32_t max)
{
	struct deferred *d = ferry_bdev_get_ctx(b);
	(void)max;
	d->polls++;
	uint32_t n = d->n;
	d->n = 0;
	for (uint32_t i = 0; i < n; i++)
		ferry_bdev_io_complete(d->q[i], 0);
	return (int)n;
}

static const struct ferry_bdev_ops deferred_ops = {.abi_version = FERRY_BDEV_OPS_ABI,
						   .write_zeroes = deferred_wz,
						   .poll = deferred_poll};

static struct ferry_bdev *mk_deferred(const char *name, struct deferred *d)
{
	struct ferry_bdev *b;
	struct ferry_bdev_opts bo = {.size = sizeof(bo),
				     .name = name,
				     .module = "deferred",
				     .block_size = 512,
				     .num_blocks = 64,
				     .ops = &deferred_ops,
				     .ctx = d};
	cr_assert_eq(ferry_bdev_create(&bo, &b), 0);
	return b;
}

Test(nvme_fabrics, memory_based_poll_polls_the_namespace_bdevs)
{
	struct deferred d = {0};
	struct ferry_bdev *b = mk_deferred("fab.deferred.pcie", &d);
	struct host_opts o = {.ns_bdev = b};
	struct host *h = h_create(&o);
	h_up(h, 16);
	struct ferry_nvme_sqe wz = h_sqe(FERRY_NVME_CMD_WRITE_ZEROES, 1);
	wz.cdw10 = 4;
	wz.cdw12 = 3;
	cr_assert_eq(h_cmd(h, 1, &wz, NULL), 0, "completed by ferry_nvme_ctrlr_poll()'s bdev poll");
	cr_assert_gt(d.polls, 0);
	h_destroy(h);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
}

Test(nvme_fabrics, poll_queue_polls_the_bdevs_the_queue_used)
{
	struct deferred d = {0};
	struct ferry_bdev *b = mk_deferred("fab.deferred.msg", &d);
	struct ferry_nvme_subsystem *s = nvm_subsys("nqn.2024-01.io.ferry:fab-deferred");
	struct ferry_nvme_ns_opts no = {.size = sizeof(no), .bdev = b};
	cr_assert_eq(ferry_nvme_subsystem_add_ns(s, &no, NULL), 0);
	struct ferry_nvme_ctrlr_opts co = copts(s);
	struct ferry_nvme_ctrlr *c;
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &c), 0);
	up(c, H_CC_DEFAULT);
	cr_assert_eq(ferry_nvme_ctrlr_connect_queue(c, 1, 16), 0);
	cr_assert_eq(ferry_nvme_ctrlr_connect_queue(c, 2, 16), 0);
	cr_assert_eq(ferry_nvme_ctrlr_poll_queue(c, 1, 8), 0, "no I/O yet: nothing polled");
	cr_assert_eq(d.polls, 0);
	struct ferry_nvme_sqe wz = h_sqe(FERRY_NVME_CMD_WRITE_ZEROES, 1);
	wz.cid = 3;
	wz.cdw10 = 4;
	struct capsule cap;
	cr_assert_eq(submit(c, 1, &wz, NULL, 0, &cap), 0);
	cr_assert_eq(cap.done, 0, "in flight in the bdev");
	cr_assert_eq(ferry_nvme_ctrlr_poll(c, 8), 0);
	cr_assert_eq(cap.done, 0, "the admin thread does not poll the I/O queues' bdevs");
	cr_assert_eq(ferry_nvme_ctrlr_poll_queue(c, 2, 8), 0, "queue 2 used no bdev");
	cr_assert_eq(cap.done, 0);
	ferry_log_set_handler(quiet_log);
	cr_assert_eq(ferry_nvme_ctrlr_disconnect_queue(c, 1), -EBUSY, "a command is executing");
	ferry_log_set_handler(NULL);
	cr_assert_geq(ferry_nvme_ctrlr_poll_queue(c, 1, 8), 1);
	cr_assert_eq(cap.done, 1);
	cr_assert_eq(cap.qid, 1);
	cr_assert_eq(cap.cqe.cid, 3);
	cr_assert_eq(cap.cqe.status, 0);
	cr_assert_eq(ferry_nvme_ctrlr_disconnect_queue(c, 1), 0);
	cr_assert_eq(ferry_nvme_ctrlr_disconnect_queue(c, 2), 0);
	cr_assert_eq(ferry_nvme_ctrlr_destroy(c), 0);
	cr_assert_eq(ferry_nvme_subsystem_destroy(s), 0);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
}
