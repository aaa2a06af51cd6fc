/*
 * Spec limits of the NVMe controller core, each with its behaviour pinned down: the Firmware
 * Slot Information log (exact bytes, Identify FRMW, no notice re-armed by reading it), enabling
 * with CC.IOSQES/IOCQES = 0 and setting them before creating I/O queues, a message-based
 * capsule whose data segment lengths overflow 64 bits, and commands of many bdev I/Os
 * (Dataset Management of 256 ranges, Flush of every namespace, the shutdown flush) that must
 * neither recurse once per I/O when the bdev completes synchronously nor lose their place
 * when it completes later.
 */
#include <stdarg.h>
#include <ferry/log.h>
#include <ferry/bdev_malloc.h>
#include <ferry/module/bdev.h>
#include <ferry/module/transport.h>
#include <ferry/module/nvme_ctrlr.h>
#include "test_nvme_host.h"

static void quiet_log(enum ferry_log_level l, const char *c, const char *f, va_list ap)
{
	(void)l;
	(void)c;
	(void)f;
	(void)ap;
}

static uint16_t get_log(struct host *h, uint8_t lid, uint64_t buf, uint32_t len, uint64_t off,
			int rae)
{
	struct ferry_nvme_sqe s = h_sqe(FERRY_NVME_ADM_GET_LOG_PAGE, 0);
	uint32_t numd = len / 4 - 1;
	s.cdw10 = lid | ((uint32_t)rae << 15) | ((numd & 0xffff) << 16);
	s.cdw11 = numd >> 16;
	s.cdw12 = (uint32_t)off;
	s.cdw13 = (uint32_t)(off >> 32);
	h_prp(h, &s, buf, len, 0);
	return h_cmd(h, 0, &s, NULL);
}

/* ---- Firmware Slot Information (LID 03h) ---------------------------------------------- */

Test(nvme_spec_limits, firmware_slot_log_exact_bytes)
{
	struct host_opts o = {.firmware_rev = "FW1.2"};
	struct host *h = h_create(&o);
	h_up(h, 0);
	uint64_t buf = hm_alloc(h->hm, 8192, HM_PAGE);
	uint8_t want[512];
	memset(want, 0, sizeof(want));
	want[0] = 0x01; /* AFI: slot 1 active, no slot chosen for the next reset */
	memcpy(want + 8, "FW1.2   ", 8);

	memset(hm_ptr(h->hm, buf), 0xee, 1024);
	cr_assert_eq(get_log(h, FERRY_NVME_LOG_FW_SLOT, buf, 512, 0, 0), 0);
	cr_assert_eq(memcmp(hm_ptr(h->hm, buf), want, 512), 0, "firmware slot log bytes");
	cr_assert_eq(*(uint8_t *)hm_ptr(h->hm, buf + 512), 0xee, "nothing written past NUMD");
	/* Offsets and lengths as for the other pages: FRS1 alone, and a read past the end. */
	memset(hm_ptr(h->hm, buf), 0xee, 1024);
	cr_assert_eq(get_log(h, FERRY_NVME_LOG_FW_SLOT, buf, 8, 8, 0), 0);
	cr_assert_eq(memcmp(hm_ptr(h->hm, buf), "FW1.2   ", 8), 0);
	cr_assert_eq(get_log(h, FERRY_NVME_LOG_FW_SLOT, buf, 1024, 0, 0), 0);
	cr_assert_eq(memcmp(hm_ptr(h->hm, buf), want, 512), 0);
	uint8_t z[512] = {0};
	cr_assert_eq(memcmp(hm_ptr(h->hm, buf) + 512, z, 512), 0, "bytes past the log read 0");
	cr_assert_eq(get_log(h, FERRY_NVME_LOG_FW_SLOT, buf, 4, 512, 0), ST(GENERIC, INVALID_FIELD),
		     "offset beyond the log");
	cr_assert_eq(get_log(h, FERRY_NVME_LOG_FW_SLOT, buf, 4, 6, 0), ST(GENERIC, INVALID_FIELD),
		     "offset not dword aligned");
	/* Unknown and unsupported LIDs still get Invalid Log Page. */
	cr_assert_eq(get_log(h, 0x05, buf, 512, 0, 0), ST(COMMAND, INVALID_LOG_PAGE));
	cr_assert_eq(get_log(h, 0x55, buf, 512, 0, 0), ST(COMMAND, INVALID_LOG_PAGE));
	cr_assert_eq(get_log(h, 0xff, buf, 512, 0, 0), ST(COMMAND, INVALID_LOG_PAGE));

	/* Identify Controller agrees: FR = FRS1, FRMW = one read-only slot. */
	struct ferry_nvme_sqe s = h_sqe(FERRY_NVME_ADM_IDENTIFY, 0);
	s.cdw10 = FERRY_NVME_CNS_CTRLR;
	h_prp(h, &s, buf, 4096, 0);
	cr_assert_eq(h_cmd(h, 0, &s, NULL), 0);
	struct ferry_nvme_id_ctrlr id;
	memcpy(&id, hm_ptr(h->hm, buf), sizeof(id));
	cr_assert_eq(memcmp(id.fr, "FW1.2   ", 8), 0);
	cr_assert_eq(id.frmw & 1, 1, "slot 1 read-only");
	cr_assert_eq((id.frmw >> 1) & 7, 1, "one slot");
	cr_assert_eq(id.frmw >> 4, 0, "no activation without reset");
	h_destroy(h);
}

Test(nvme_spec_limits, firmware_slot_log_default_revision)
{
	struct host *h = h_create(NULL);
	h_up(h, 0);
	uint64_t buf = hm_alloc(h->hm, 4096, HM_PAGE);
	cr_assert_eq(get_log(h, FERRY_NVME_LOG_FW_SLOT, buf, 16, 0, 0), 0);
	char want[8];
	size_t n = strlen(ferry_version());
	memset(want, ' ', 8);
	memcpy(want, ferry_version(), n < 8 ? n : 8);
	cr_assert_eq(memcmp(hm_ptr(h->hm, buf) + 8, want, 8), 0, "FRS1 = the library version");
	h_destroy(h);
}

/* Reading the firmware slot log with RAE = 0 must not re-arm the (masked) namespace
 * attribute notice: only the Changed Namespace List does. */
Test(nvme_spec_limits, firmware_slot_log_does_not_rearm_notices)
{
	struct host *h = h_create(NULL);
	h_up(h, 0);
	uint64_t buf = hm_alloc(h->hm, 4096, HM_PAGE);
	struct ferry_nvme_sqe sf = h_sqe(FERRY_NVME_ADM_SET_FEATURES, 0);
	sf.cdw10 = FERRY_NVME_FEAT_ASYNC_EVENT;
	sf.cdw11 = FERRY_NVME_AEC_NS_ATTR;
	cr_assert_eq(h_cmd(h, 0, &sf, NULL), 0);
	struct ferry_nvme_sqe aer = h_sqe(FERRY_NVME_ADM_ASYNC_EVENT, 0);
	h_submit(h, 0, &aer);
	struct ferry_bdev *b[2];
	for (int i = 0; i < 2; i++) {
		char name[32];
		snprintf(name, sizeof(name), "gaps.fwns%d", i);
		struct ferry_bdev_malloc_opts mo = {.size = sizeof(mo), .name = name,
						    .block_size = 512, .num_blocks = 8};
		cr_assert_eq(ferry_bdev_malloc_create(&mo, &b[i]), 0);
	}
	struct ferry_nvme_ns_opts no = {.size = sizeof(no), .bdev = b[0], .nsid = 2};
	cr_assert_eq(ferry_nvme_subsystem_add_ns(h->subsys, &no, NULL), 0);
	struct ferry_nvme_cqe e = {0};
	cr_assert(h_wait(h, 0, &e));
	cr_assert_eq(e.dw0, FERRY_NVME_AER_DW0(FERRY_NVME_AER_TYPE_NOTICE,
					      FERRY_NVME_AER_NOTICE_NS_CHANGED,
					      FERRY_NVME_LOG_CHANGED_NS));
	uint16_t aer2 = h_submit(h, 0, &aer);
	cr_assert_eq(get_log(h, FERRY_NVME_LOG_FW_SLOT, buf, 512, 0, 0), 0);
	no.bdev = b[1];
	no.nsid = 3;
	cr_assert_eq(ferry_nvme_subsystem_add_ns(h->subsys, &no, NULL), 0);
	for (int i = 0; i < 20; i++)
		h_poll(h);
	cr_assert_eq(h_peek(h, 0, &e), 0, "notice delivered after reading the firmware slot log");
	/* Reading the Changed Namespace List re-arms it: the held event arrives. */
	struct ferry_nvme_sqe gl = h_sqe(FERRY_NVME_ADM_GET_LOG_PAGE, 0);
	gl.cdw10 = FERRY_NVME_LOG_CHANGED_NS | (1023u << 16);
	h_prp(h, &gl, buf, 4096, 0);
	uint16_t gl_cid = h_submit(h, 0, &gl);
	int got_ev = 0, got_log = 0;
	for (int i = 0; i < 2; i++) {
		cr_assert(h_wait(h, 0, &e));
		got_log |= e.cid == gl_cid;
		got_ev |= e.cid == aer2;
	}
	cr_assert(got_ev && got_log);
	cr_assert_eq(ferry_nvme_subsystem_remove_ns(h->subsys, 2), 0);
	cr_assert_eq(ferry_nvme_subsystem_remove_ns(h->subsys, 3), 0);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(ferry_bdev_destroy(b[i]), 0);
	h_destroy(h);
}

/* ---- CC.IOSQES / IOCQES ------------------------------------------------------------------ */

Test(nvme_spec_limits, enable_with_entry_sizes_unset_then_set_before_creating_queues)
{
	struct host *h = h_create(NULL);
	cr_assert_eq(h_enable(h, 16, FERRY_NVME_CC_EN), FERRY_NVME_CSTS_RDY,
		     "CC.IOSQES/IOCQES = 0 at enable is allowed");
	cr_assert_eq(h->tr_state.events[FERRY_NVME_EVENT_FATAL], 0);
	/* Admin commands work meanwhile. */
	struct ferry_nvme_sqe ka = h_sqe(FERRY_NVME_ADM_KEEP_ALIVE, 0);
	cr_assert_eq(h_cmd(h, 0, &ka, NULL), 0);
	struct hq *q = &h->q[1];
	q->sq = hm_alloc(h->hm, HM_PAGE, HM_PAGE);
	q->cq = hm_alloc(h->hm, HM_PAGE, HM_PAGE);
	q->size = 16;
	q->phase = 1;
	ferry_log_set_handler(quiet_log);
	cr_assert_eq(h_create_cq(h, 1, 16, q->cq, 3, 1), ST(GENERIC, INVALID_FIELD),
		     "Create I/O CQ with CC.IOCQES = 0");
	ferry_log_set_handler(NULL);
	/* IOCQES set (EN stays 1): the CQ can be created, not yet the SQ. */
	h_wr32(h, FERRY_NVME_REG_CC, FERRY_NVME_CC_EN | (4u << 20));
	cr_assert_eq(h_rd32(h, FERRY_NVME_REG_CSTS), FERRY_NVME_CSTS_RDY);
	cr_assert_eq(h_create_cq(h, 1, 16, q->cq, 3, 1), 0);
	ferry_log_set_handler(quiet_log);
	cr_assert_eq(h_create_sq(h, 1, 16, q->sq, 1), ST(GENERIC, INVALID_FIELD),
		     "Create I/O SQ with CC.IOSQES = 0");
	/* A wrong value written while enabled is refused the same way. */
	h_wr32(h, FERRY_NVME_REG_CC, FERRY_NVME_CC_EN | (7u << 16) | (4u << 20));
	cr_assert_eq(h_create_sq(h, 1, 16, q->sq, 1), ST(GENERIC, INVALID_FIELD), "IOSQES 7");
	ferry_log_set_handler(NULL);
	/* The refusals are in the error log, as for any failed command. */
	struct ferry_nvme_ctrlr_stats st = {.size = sizeof(st)};
	cr_assert_eq(ferry_nvme_ctrlr_get_stats(h->ctrlr, &st), 0);
	cr_assert_eq(st.errors, 3);
	h_wr32(h, FERRY_NVME_REG_CC, H_CC_DEFAULT);
	cr_assert_eq(h_create_sq(h, 1, 16, q->sq, 1), 0);
	q->live = 1;
	/* The queue pair works. */
	uint64_t data = hm_alloc(h->hm, 4096, HM_PAGE);
	h_fill(hm_ptr(h->hm, data), 4096, 11);
	struct ferry_nvme_sqe w = h_sqe(0, 1);
	h_rw(&w, FERRY_NVME_CMD_WRITE, 0, 8);
	h_prp(h, &w, data, 4096, 0);
	cr_assert_eq(h_cmd(h, 1, &w, NULL), 0);
	h_destroy(h);
}

Test(nvme_spec_limits, enable_refuses_entry_sizes_other_than_zero_or_supported)
{
	static const uint32_t bad[][2] = {{5, 4}, {6, 3}, {7, 0}, {0, 5}, {15, 15}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct host *h = h_create(NULL);
		ferry_log_set_handler(quiet_log);
		uint32_t csts = h_enable(h, 16, FERRY_NVME_CC_EN | (bad[i][0] << 16) |
							 (bad[i][1] << 20));
		ferry_log_set_handler(NULL);
		cr_assert_eq(csts & (FERRY_NVME_CSTS_RDY | FERRY_NVME_CSTS_CFS), FERRY_NVME_CSTS_CFS,
			     "IOSQES %u IOCQES %u: CSTS 0x%x", bad[i][0], bad[i][1], csts);
		h_wr32(h, FERRY_NVME_REG_CC, 0);
		cr_assert(h_wait_csts(h, FERRY_NVME_CSTS_CFS | FERRY_NVME_CSTS_RDY, 0));
		h_destroy(h);
	}
	/* Only one of them set is fine too. */
	struct host *h = h_create(NULL);
	cr_assert_eq(h_enable(h, 16, FERRY_NVME_CC_EN | (6u << 16)), FERRY_NVME_CSTS_RDY);
	h_destroy(h);
}

/* ---- message-based data whose segment lengths overflow ----------------------------------- */

struct capsule {
	int done;
	struct ferry_nvme_cqe cqe;
};

static int msg_send(struct ferry_transport *t, struct ferry_nvme_ctrlr *c, void *ctx, uint16_t qid,
		    const struct ferry_nvme_cqe *cqe, void *cmd_ctx)
{
	struct capsule *cap = cmd_ctx;
	cap->done++;
	cap->cqe = *cqe;
	return 0;
}

static const struct ferry_transport_ops msg_ops = {.abi_version = FERRY_TRANSPORT_OPS_ABI,
						   .name = "gaps.msg",
						   .kind = FERRY_TRANSPORT_MESSAGE,
						   .send_completion = msg_send};

Test(nvme_spec_limits, message_data_lengths_overflowing_64_bits_are_refused)
{
	cr_assert_eq(ferry_transport_register(&msg_ops), 0);
	struct ferry_transport *t;
	cr_assert_eq(ferry_transport_create("gaps.msg", NULL, &t), 0);
	struct ferry_nvme_subsystem *s;
	struct ferry_nvme_subsystem_opts so = {.size = sizeof(so), .nqn = "nqn.2024-01.io.ferry:gaps"};
	cr_assert_eq(ferry_nvme_subsystem_create(&so, &s), 0);
	struct ferry_bdev *b;
	struct ferry_bdev_malloc_opts mo = {.size = sizeof(mo), .name = "gaps.msg.malloc",
					    .block_size = 512, .num_blocks = 64};
	cr_assert_eq(ferry_bdev_malloc_create(&mo, &b), 0);
	struct ferry_nvme_ns_opts no = {.size = sizeof(no), .bdev = b};
	cr_assert_eq(ferry_nvme_subsystem_add_ns(s, &no, NULL), 0);
	struct ferry_nvme_ctrlr *c;
	struct ferry_nvme_ctrlr_opts co = {.size = sizeof(co), .subsys = s, .transport = t,
					   .hostnqn = "nqn.2024-01.io.ferry:host"};
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &c), 0);
	cr_assert_eq(ferry_nvme_ctrlr_connect_queue(c, 0, 8), 0);
	cr_assert_eq(ferry_nvme_ctrlr_reg_write(c, FERRY_NVME_REG_CC, 4, H_CC_DEFAULT), 0);
	cr_assert_eq(ferry_nvme_ctrlr_connect_queue(c, 1, 8), 0);

	/* A one-block write whose two segments add up to 512 only modulo 2^64. */
	uint8_t blk[512];
	memset(blk, 0xa5, sizeof(blk));
	struct iovec iov[2] = {{blk, SIZE_MAX}, {blk, 513}};
	struct ferry_mem m = {.iov = iov, .iovcnt = 2};
	struct ferry_nvme_sqe w = h_sqe(0, 1);
	h_rw(&w, FERRY_NVME_CMD_WRITE, 3, 1);
	struct capsule cap = {0};
	ferry_log_set_handler(quiet_log);
	cr_assert_eq(ferry_nvme_ctrlr_submit(c, 1, &w, &m, &cap), 0);
	ferry_log_set_handler(NULL);
	cr_assert_eq(cap.done, 1);
	cr_assert_eq((cap.cqe.status >> 1) & 0x7ff, ST(GENERIC, DATA_SGL_LEN));
	struct ferry_bdev_stats bs = {.size = sizeof(bs)};
	cr_assert_eq(ferry_bdev_get_stats(b, &bs), 0);
	cr_assert_eq(bs.ios[FERRY_BDEV_IO_WRITE] + bs.errors, 0, "the bdev never saw it");

	/* The same on the admin queue (Identify pushes 4096 bytes into the data). */
	uint8_t id[4096];
	struct iovec iov2[3] = {{id, 4096}, {id, SIZE_MAX}, {id, 1}};
	m.iov = iov2;
	m.iovcnt = 3;
	struct ferry_nvme_sqe idc = h_sqe(FERRY_NVME_ADM_IDENTIFY, 0);
	idc.cdw10 = FERRY_NVME_CNS_CTRLR;
	memset(&cap, 0, sizeof(cap));
	ferry_log_set_handler(quiet_log);
	cr_assert_eq(ferry_nvme_ctrlr_submit(c, 0, &idc, &m, &cap), 0);
	ferry_log_set_handler(NULL);
	cr_assert_eq(cap.done, 1);
	cr_assert_eq((cap.cqe.status >> 1) & 0x7ff, ST(GENERIC, DATA_SGL_LEN));

	/* Segments without an iovec array: the transport's bug, refused before acceptance. */
	m.iov = NULL;
	m.iovcnt = 2;
	memset(&cap, 0, sizeof(cap));
	ferry_log_set_handler(quiet_log);
	cr_assert_eq(ferry_nvme_ctrlr_submit(c, 1, &w, &m, &cap), -EINVAL);
	ferry_log_set_handler(NULL);
	cr_assert_eq(cap.done, 0, "no completion for a refused capsule");

	/* A correct capsule still works. */
	struct iovec ok = {blk, sizeof(blk)};
	m.iov = &ok;
	m.iovcnt = 1;
	memset(&cap, 0, sizeof(cap));
	cr_assert_eq(ferry_nvme_ctrlr_submit(c, 1, &w, &m, &cap), 0);
	cr_assert_eq(cap.done, 1);
	cr_assert_eq(cap.cqe.status, 0);

	cr_assert_eq(ferry_nvme_ctrlr_reg_write(c, FERRY_NVME_REG_CC, 4, 0), 0);
	cr_assert_eq(ferry_nvme_ctrlr_disconnect_queue(c, 0), 0);
	cr_assert_eq(ferry_nvme_ctrlr_destroy(c), 0);
	cr_assert_eq(ferry_nvme_subsystem_destroy(s), 0);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	ferry_transport_destroy(t);
	cr_assert_eq(ferry_transport_unregister(&msg_ops), 0);
}

/* ---- commands of many bdev I/Os ---------------------------------------------------------- */

/*
 * A probe bdev: UNMAP and FLUSH record the order of the ranges and the stack address they
 * were submitted at, then complete at once (sync) or when the test says so (async). A
 * command that recursed once per synchronous I/O would submit each one deeper on the stack.
 */
struct probe {
	int async;
	uint32_t fail_at;      /* 1-based index of the I/O that fails with -EIO (0: none) */
	uint32_t n;            /* I/Os submitted */
	uint64_t slba[512];
	uintptr_t sp_min, sp_max;
	struct ferry_bdev_io *pending[512];
	uint32_t npending;
};

static int probe_io(struct ferry_bdev *b, struct ferry_bdev_io *io)
{
	struct probe *p = ferry_bdev_get_ctx(b);
	uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
	if (p->n == 0 || sp < p->sp_min)
		p->sp_min = sp;
	if (p->n == 0 || sp > p->sp_max)
		p->sp_max = sp;
	if (p->n < 512)
		p->slba[p->n] = io->offset_blocks;
	p->n++;
	int st = p->fail_at && p->n == p->fail_at ? -EIO : 0;
	if (p->async) {
		cr_assert_lt(p->npending, 512);
		ferry_bdev_io_module(io)->ctx = (void *)(intptr_t)st;
		p->pending[p->npending++] = io;
		return 0;
	}
	ferry_bdev_io_complete(io, st);
	return 0;
}

static const struct ferry_bdev_ops probe_ops = {.abi_version = FERRY_BDEV_OPS_ABI,
						.flush = probe_io,
						.unmap = probe_io};

static struct ferry_bdev *probe_create(const char *name, struct probe *p)
{
	memset(p, 0, sizeof(*p));
	struct ferry_bdev_opts o = {.size = sizeof(o), .name = name, .module = "probe",
				    .block_size = 512, .num_blocks = 4096, .ops = &probe_ops,
				    .ctx = p};
	struct ferry_bdev *b;
	cr_assert_eq(ferry_bdev_create(&o, &b), 0);
	return b;
}

/* Completes the pending I/Os of @p p (in order); returns how many. */
static uint32_t probe_complete(struct probe *p)
{
	uint32_t n = p->npending;
	struct ferry_bdev_io *io[512];
	memcpy(io, p->pending, n * sizeof(io[0]));
	p->npending = 0;
	for (uint32_t i = 0; i < n; i++)
		ferry_bdev_io_complete(io[i], (int)(intptr_t)ferry_bdev_io_module(io[i])->ctx);
	return n;
}

/* Submit on queue qid and wait, completing async probe I/Os between polls. */
static uint16_t cmd_probe(struct host *h, int qid, struct ferry_nvme_sqe *s, struct probe *p)
{
	uint16_t cid = h_submit(h, qid, s);
	struct ferry_nvme_cqe e = {0};
	for (int i = 0; i < 100000; i++) {
		if (h_peek(h, qid, &e)) {
			h_cq_doorbell(h, qid);
			cr_assert_eq(e.cid, cid);
			return cqe_st(&e);
		}
		if (p)
			probe_complete(p);
		h_poll(h);
	}
	cr_assert_fail("no completion for cid %u", cid);
	return 0xffff;
}

/* Dataset Management of 256 ranges (range i: LBA 2i + 1, 1 block; every 50th has 0 blocks). */
static uint16_t dsm_256(struct host *h, struct probe *p)
{
	struct ferry_nvme_dsm_range r[256];
	for (uint32_t i = 0; i < 256; i++) {
		r[i].attributes = 0;
		r[i].slba = 2 * i + 1;
		r[i].nlb = i % 50 == 49 ? 0 : 1;
	}
	uint64_t rng = hm_alloc(h->hm, sizeof(r), HM_PAGE);
	memcpy(hm_ptr(h->hm, rng), r, sizeof(r));
	struct ferry_nvme_sqe s = h_sqe(FERRY_NVME_CMD_DSM, 1);
	s.cdw10 = 255;     /* 256 ranges */
	s.cdw11 = 1u << 2; /* AD */
	h_prp(h, &s, rng, sizeof(r), 0);
	return cmd_probe(h, 1, &s, p);
}

#define RANGES_SUBMITTED (256 - 5) /* ranges 49, 99, 149, 199, 249 have 0 blocks */

Test(nvme_spec_limits, dsm_256_ranges_on_malloc)
{
	struct host *h = h_create(NULL);
	h_up(h, 8);
	/* Write 512 blocks, deallocate the odd ones with 256 ranges, read everything back. */
	uint64_t wb = hm_alloc(h->hm, 512 * 512, HM_PAGE), rb = hm_alloc(h->hm, 512 * 512, HM_PAGE);
	h_fill(hm_ptr(h->hm, wb), 512 * 512, 5);
	for (uint32_t i = 0; i < 512; i += 64) {
		struct ferry_nvme_sqe w = h_sqe(0, 1);
		h_rw(&w, FERRY_NVME_CMD_WRITE, i, 64);
		h_prp(h, &w, wb + (uint64_t)i * 512, 64 * 512, 0);
		cr_assert_eq(h_cmd(h, 1, &w, NULL), 0);
	}
	cr_assert_eq(dsm_256(h, NULL), 0);
	struct ferry_bdev_stats bs = {.size = sizeof(bs)};
	cr_assert_eq(ferry_bdev_get_stats(h->bdev, &bs), 0);
	cr_assert_eq(bs.ios[FERRY_BDEV_IO_UNMAP], RANGES_SUBMITTED);
	for (uint32_t i = 0; i < 512; i += 64) {
		struct ferry_nvme_sqe r = h_sqe(0, 1);
		h_rw(&r, FERRY_NVME_CMD_READ, i, 64);
		h_prp(h, &r, rb + (uint64_t)i * 512, 64 * 512, 0);
		cr_assert_eq(h_cmd(h, 1, &r, NULL), 0);
	}
	uint8_t z[512] = {0};
	for (uint32_t lba = 0; lba < 512; lba++) {
		const uint8_t *got = hm_ptr(h->hm, rb + (uint64_t)lba * 512);
		int deallocated = (lba & 1) && (lba / 2) % 50 != 49;
		if (deallocated)
			cr_assert_eq(memcmp(got, z, 512), 0, "LBA %u not deallocated", lba);
		else
			cr_assert_eq(memcmp(got, hm_ptr(h->hm, wb + (uint64_t)lba * 512), 512), 0,
				     "LBA %u lost its data", lba);
	}
	h_destroy(h);
}

Test(nvme_spec_limits, dsm_256_ranges_sync_bounded_stack_and_async)
{
	static struct probe p;
	struct ferry_bdev *b = probe_create("gaps.probe.dsm", &p);
	struct host_opts o = {.ns_bdev = b};
	struct host *h = h_create(&o);
	h_up(h, 8);
	/* Synchronous: all ranges, in order, each submitted at the same stack depth. */
	cr_assert_eq(dsm_256(h, &p), 0);
	cr_assert_eq(p.n, RANGES_SUBMITTED);
	for (uint32_t i = 0, k = 0; i < 256; i++)
		if (i % 50 != 49)
			cr_assert_eq(p.slba[k++], 2 * i + 1, "range order");
	cr_assert_lt(p.sp_max - p.sp_min, 1024,
		     "stack grew by %zu bytes over 251 synchronous unmaps: recursion per range",
		     (size_t)(p.sp_max - p.sp_min));
	/* Asynchronous: each completion continues with the next range. */
	p.n = 0;
	p.async = 1;
	cr_assert_eq(dsm_256(h, &p), 0);
	cr_assert_eq(p.n, RANGES_SUBMITTED);
	cr_assert_eq(p.slba[RANGES_SUBMITTED - 1], 2 * 255 + 1);
	/* A failing range (sync) ends the command with its status; later ranges are not sent. */
	p.n = 0;
	p.async = 0;
	p.fail_at = 100;
	cr_assert_eq(dsm_256(h, &p), ST(MEDIA, WRITE_FAULT));
	cr_assert_eq(p.n, 100);
	/* The same failure, asynchronous. */
	p.n = 0;
	p.async = 1;
	cr_assert_eq(dsm_256(h, &p), ST(MEDIA, WRITE_FAULT));
	cr_assert_eq(p.n, 100);
	p.fail_at = 0;
	p.async = 0;
	/* The queue and the request pool are intact. */
	cr_assert_eq(dsm_256(h, &p), 0);
	h_destroy(h);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
}

#define MANY_NS 300

/* Flush of NSID FFFFFFFFh over many namespaces, and the normal-shutdown flush of them all. */
Test(nvme_spec_limits, flush_all_and_shutdown_over_many_namespaces)
{
	static struct probe p[MANY_NS];
	static struct ferry_bdev *b[MANY_NS];
	struct host_opts o = {.no_ns = 1, .max_namespaces = 1024};
	struct host *h = h_create(&o);
	for (uint32_t i = 0; i < MANY_NS; i++) {
		char name[32];
		snprintf(name, sizeof(name), "gaps.probe%u", i);
		b[i] = probe_create(name, &p[i]);
		/* Spread over the NSID space, with holes. */
		struct ferry_nvme_ns_opts no = {.size = sizeof(no), .bdev = b[i], .nsid = 3 * i + 2};
		cr_assert_eq(ferry_nvme_subsystem_add_ns(h->subsys, &no, NULL), 0);
	}
	h_up(h, 8);
	struct ferry_nvme_sqe f = h_sqe(FERRY_NVME_CMD_FLUSH, 0xffffffff);
	cr_assert_eq(cmd_probe(h, 1, &f, NULL), 0);
	uintptr_t lo = UINTPTR_MAX, hi = 0;
	for (uint32_t i = 0; i < MANY_NS; i++) {
		cr_assert_eq(p[i].n, 1, "namespace %u flushed %u times", 3 * i + 2, p[i].n);
		lo = p[i].sp_min < lo ? p[i].sp_min : lo;
		hi = p[i].sp_max > hi ? p[i].sp_max : hi;
	}
	cr_assert_lt(hi - lo, 1024, "stack grew by %zu bytes over %u synchronous flushes",
		     (size_t)(hi - lo), MANY_NS);
	/* Asynchronous flushes: each one continues with the next namespace. */
	for (uint32_t i = 0; i < MANY_NS; i++) {
		p[i].n = 0;
		p[i].async = 1;
	}
	uint16_t cid = h_submit(h, 1, &f);
	struct ferry_nvme_cqe e = {0};
	int done = 0;
	for (int it = 0; it < 100000 && !done; it++) {
		done = h_peek(h, 1, &e);
		for (uint32_t i = 0; i < MANY_NS; i++)
			probe_complete(&p[i]);
		h_poll(h);
	}
	cr_assert(done);
	h_cq_doorbell(h, 1);
	cr_assert_eq(e.cid, cid);
	cr_assert_eq(cqe_st(&e), 0);
	for (uint32_t i = 0; i < MANY_NS; i++)
		cr_assert_eq(p[i].n, 1);
	/* A failing namespace in the middle fails the command; the later ones are not flushed. */
	for (uint32_t i = 0; i < MANY_NS; i++) {
		p[i].n = 0;
		p[i].async = 0;
	}
	p[150].fail_at = 1;
	cr_assert_eq(cmd_probe(h, 1, &f, NULL), ST(MEDIA, WRITE_FAULT));
	cr_assert_eq(p[149].n, 1);
	cr_assert_eq(p[150].n, 1);
	cr_assert_eq(p[151].n, 0);
	p[150].fail_at = 0;

	/* Normal shutdown flushes every namespace, synchronously at a bounded depth. */
	lo = UINTPTR_MAX;
	hi = 0;
	for (uint32_t i = 0; i < MANY_NS; i++)
		p[i].n = 0;
	h_wr32(h, FERRY_NVME_REG_CC, H_CC_DEFAULT | (FERRY_NVME_CC_SHN_NORMAL << 14));
	cr_assert(h_wait_csts(h, FERRY_NVME_CSTS_SHST_MASK, FERRY_NVME_CSTS_SHST_COMPLETE << 2));
	for (uint32_t i = 0; i < MANY_NS; i++) {
		cr_assert_eq(p[i].n, 1, "namespace %u flushed %u times at shutdown", 3 * i + 2,
			     p[i].n);
		lo = p[i].sp_min < lo ? p[i].sp_min : lo;
		hi = p[i].sp_max > hi ? p[i].sp_max : hi;
	}
	cr_assert_lt(hi - lo, 1024, "shutdown: stack grew by %zu bytes", (size_t)(hi - lo));
	cr_assert_eq(h->tr_state.events[FERRY_NVME_EVENT_SHUTDOWN_COMPLETE], 1);
	h_disable(h);

	/* Asynchronous shutdown flushes, and an abrupt shutdown that flushes nothing. */
	for (uint32_t i = 0; i < MANY_NS; i++) {
		p[i].n = 0;
		p[i].async = 1;
	}
	cr_assert_eq(h_enable(h, 16, H_CC_DEFAULT), FERRY_NVME_CSTS_RDY);
	h_wr32(h, FERRY_NVME_REG_CC, H_CC_DEFAULT | (FERRY_NVME_CC_SHN_NORMAL << 14));
	done = 0;
	for (int it = 0; it < 100000 && !done; it++) {
		for (uint32_t i = 0; i < MANY_NS; i++)
			probe_complete(&p[i]);
		h_poll(h);
		done = (h_rd32(h, FERRY_NVME_REG_CSTS) & FERRY_NVME_CSTS_SHST_MASK) ==
		       FERRY_NVME_CSTS_SHST_COMPLETE << 2;
	}
	cr_assert(done);
	for (uint32_t i = 0; i < MANY_NS; i++)
		cr_assert_eq(p[i].n, 1);
	h_disable(h);
	for (uint32_t i = 0; i < MANY_NS; i++)
		p[i].n = 0;
	cr_assert_eq(h_enable(h, 16, H_CC_DEFAULT), FERRY_NVME_CSTS_RDY);
	h_wr32(h, FERRY_NVME_REG_CC, H_CC_DEFAULT | (FERRY_NVME_CC_SHN_ABRUPT << 14));
	cr_assert(h_wait_csts(h, FERRY_NVME_CSTS_SHST_MASK, FERRY_NVME_CSTS_SHST_COMPLETE << 2));
	for (uint32_t i = 0; i < MANY_NS; i++)
		cr_assert_eq(p[i].n, 0, "abrupt shutdown flushed namespace %u", 3 * i + 2);

	h_destroy(h);
	for (uint32_t i = 0; i < MANY_NS; i++)
		cr_assert_eq(ferry_bdev_destroy(b[i]), 0);
}
