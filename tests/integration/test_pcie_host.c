/*
 * The userspace NVMe host driver in a separate process against the mock PCIe endpoint, the
 * "pcie" transport and the controller core: the init sequence (CC.EN -> CSTS.RDY, a refused
 * enable, disable, shutdown), Identify, queue creation edge cases with their status codes,
 * reads and writes with PRPs (offsets, lists, chained lists) and SGLs (data block, segments,
 * odd chunk sizes), MSI-X delivery per queue and polling without interrupts, a controller
 * reset with I/O in flight that loses no completed write, bad MMIO and bad doorbells, and an
 * IOMMU that refuses what the host did not map.
 */
#include <unistd.h>
#include "pcie_host_util.h"
#include <ferry/module/nvme_ctrlr.h>

static uint8_t pat(uint64_t seed, uint64_t i)
{
	return (uint8_t)((i * 131 + seed * 7 + (i >> 11)) ^ (seed >> 3));
}

/* ---- init sequence and identify --------------------------------------------------------- */

static int sc_init(void *ctx, int mfd, int pfd)
{
	struct nvmeh_opts o = {.size = sizeof(o), .mem_fd = mfd, .pcie_fd = pfd, .io_queues = 2};
	struct nvmeh_ctrlr *c = NULL;
	HCHECK(nvmeh_open(&o, &c) == 0, "open");
	uint32_t csts = 1, cc = 1;
	HCHECK(nvmeh_reg_read32(c, FERRY_NVME_REG_CSTS, &csts) == 0 && csts == 0,
	       "fresh controller: CSTS 0x%x", csts);
	HCHECK(nvmeh_reg_read32(c, FERRY_NVME_REG_CC, &cc) == 0 && cc == 0, "fresh CC 0x%x", cc);

	/* A refused enable: 32-byte SQ entries. CSTS.CFS, then a reset clears it. */
	HCHECK(nvmeh_reg_write32(c, FERRY_NVME_REG_AQA, 0x00030003) == 0, "AQA");
	HCHECK(nvmeh_reg_write32(c, FERRY_NVME_REG_CC,
				 FERRY_NVME_CC_EN | (5u << 16) | (4u << 20)) == 0,
	       "CC");
	HCHECK(nvmeh_wait_csts(c, FERRY_NVME_CSTS_CFS, FERRY_NVME_CSTS_CFS, 2000000000ull) == 0,
	       "CFS after a bad enable");
	HCHECK(nvmeh_reg_read32(c, FERRY_NVME_REG_CSTS, &csts) == 0 &&
		       !(csts & FERRY_NVME_CSTS_RDY),
	       "not ready: CSTS 0x%x", csts);

	HCHECK(nvmeh_init(c) == 0, "init after the refused enable");
	HCHECK(nvmeh_reg_read32(c, FERRY_NVME_REG_CSTS, &csts) == 0 && csts == FERRY_NVME_CSTS_RDY,
	       "ready: CSTS 0x%x", csts);
	uint64_t cap = nvmeh_cap(c);
	HCHECK(FERRY_NVME_CAP_MQES(cap) == 1023, "MQES %u", FERRY_NVME_CAP_MQES(cap));
	HCHECK(cap & FERRY_NVME_CAP_CSS_NVM, "CSS NVM");
	HCHECK(FERRY_NVME_CAP_TO(cap) == 20 && FERRY_NVME_CAP_DSTRD(cap) == 0 &&
		       FERRY_NVME_CAP_MPSMIN(cap) == 0,
	       "CAP 0x%llx", (unsigned long long)cap);
	uint32_t vs = 0;
	HCHECK(nvmeh_reg_read32(c, FERRY_NVME_REG_VS, &vs) == 0 && vs == FERRY_NVME_VS_1_4,
	       "VS 0x%x", vs);
	const struct ferry_nvme_id_ctrlr *id = nvmeh_id_ctrlr(c);
	HCHECK(!memcmp(id->sn, "FERRY0001           ", 20), "sn '%.20s'", id->sn);
	HCHECK(!memcmp(id->mn, "Ferry nvme_endpoint sample", 26) && id->mn[39] == ' ', "mn '%.40s'",
	       id->mn);
	HCHECK(!strncmp(id->subnqn, "nqn.2024-01.io.ferry:nvme-endpoint-", 35), "subnqn '%s'",
	       id->subnqn);
	HCHECK(id->sqes == 0x66 && id->cqes == 0x44 && id->nn >= 1 && id->mdts == 5,
	       "sqes 0x%x cqes 0x%x nn %u mdts %u", id->sqes, id->cqes, id->nn, id->mdts);
	HCHECK((id->sgls & 3) != 0, "SGLs advertised");
	HCHECK(id->cntlid != 0, "cntlid");
	HCHECK(nvmeh_ns_blocks(c) == 8192 && nvmeh_ns_block_size(c) == 4096, "ns %llu x %u",
	       (unsigned long long)nvmeh_ns_blocks(c), nvmeh_ns_block_size(c));
	HCHECK(nvmeh_io_queue_count(c) == 2, "io queues %u", nvmeh_io_queue_count(c));

	/* Disable: CC.EN = 0 -> RDY = 0; then again from scratch. */
	HCHECK(nvmeh_reg_read32(c, FERRY_NVME_REG_CC, &cc) == 0, "CC");
	HCHECK(nvmeh_reg_write32(c, FERRY_NVME_REG_CC, cc & ~FERRY_NVME_CC_EN) == 0, "CC.EN=0");
	HCHECK(nvmeh_wait_csts(c, FERRY_NVME_CSTS_RDY, 0, 0) == 0, "RDY=0");
	HCHECK(nvmeh_init(c) == 0, "re-init");

	/* Normal shutdown. */
	HCHECK(nvmeh_shutdown(c) == 0, "shutdown");
	HCHECK(nvmeh_reg_read32(c, FERRY_NVME_REG_CSTS, &csts) == 0 &&
		       ((csts & FERRY_NVME_CSTS_SHST_MASK) >> FERRY_NVME_CSTS_SHST_SHIFT) ==
			       FERRY_NVME_CSTS_SHST_COMPLETE,
	       "SHST: CSTS 0x%x", csts);
	nvmeh_close(c);
	return 0;
}

Test(pcie_host, init_sequence_identify_shutdown)
{
	struct ep_stack *s = ph_stack(0, NULL, NULL);
	ferry_log_set_handler(ph_quiet_log); /* the refused enable is logged */
	ph_run(s, sc_init, NULL);
	ferry_log_set_handler(NULL);
	struct ferry_nvme_ctrlr_stats st = ph_ctrlr_stats(s);
	cr_assert_geq(st.admin_cmds, 2 * 7, "identify x2, features, 2 CQ + 2 SQ, twice");
	cr_assert_geq(st.resets, 3, "refused enable, disable, close");
	ep_stack_destroy(s);
}

/* ---- queue creation edge cases --------------------------------------------------------- */

static int admin_status(struct nvmeh_ctrlr *c, uint8_t opc, uint32_t cdw10, uint32_t cdw11,
			uint64_t prp1, uint16_t *st)
{
	struct ferry_nvme_sqe cmd = {.opcode = opc, .cdw10 = cdw10, .cdw11 = cdw11};
	cmd.dptr.prp.prp1 = prp1;
	return nvmeh_admin(c, &cmd, NULL, st, NULL);
}

#define SC1(sc) FERRY_NVME_STATUS(FERRY_NVME_SCT_COMMAND, sc)
#define SC0(sc) FERRY_NVME_STATUS(FERRY_NVME_SCT_GENERIC, sc)

static int sc_queues(void *ctx, int mfd, int pfd)
{
	struct nvmeh_ctrlr *c = ph_up(mfd, pfd, 4, 0, 64);
	if (!c)
		return 1; /* ph_up() wrote the message */
	struct nvmeh_mem *m = nvmeh_get_mem(c);
	struct nvmeh_buf cq, sq;
	HCHECK(nvmeh_mem_alloc(m, 64 * 16, NVMEH_MEM_WRITE, &cq) == 0, "alloc");
	HCHECK(nvmeh_mem_alloc(m, 64 * 64, NVMEH_MEM_READ, &sq) == 0, "alloc");
	uint16_t st = 0;
	/* Free qid 4 (the host created 4 pairs). */
	HCHECK(admin_status(c, FERRY_NVME_ADM_DELETE_SQ, 4, 0, 0, &st) == 0 && st == 0,
	       "delete SQ 4: 0x%x", st);
	HCHECK(admin_status(c, FERRY_NVME_ADM_DELETE_CQ, 4, 0, 0, &st) == 0 && st == 0,
	       "delete CQ 4: 0x%x", st);
	struct {
		uint8_t opc;
		uint32_t cdw10, cdw11;
		uint64_t prp1;
		uint16_t want;
		const char *what;
	} cases[] = {
		{FERRY_NVME_ADM_CREATE_CQ, 4, 3, cq.iova, SC1(FERRY_NVME_SC_INVALID_QSIZE),
		 "size 0"},
		{FERRY_NVME_ADM_CREATE_CQ, (1024u << 16) | 4, 3, cq.iova,
		 SC1(FERRY_NVME_SC_INVALID_QSIZE), "over MQES"},
		{FERRY_NVME_ADM_CREATE_CQ, (63u << 16) | 1, 3, cq.iova,
		 SC1(FERRY_NVME_SC_INVALID_QID), "duplicate id"},
		{FERRY_NVME_ADM_CREATE_CQ, (63u << 16) | 0, 3, cq.iova,
		 SC1(FERRY_NVME_SC_INVALID_QID), "qid 0"},
		{FERRY_NVME_ADM_CREATE_CQ, (63u << 16) | 5, 3, cq.iova,
		 SC1(FERRY_NVME_SC_INVALID_QID), "qid beyond the granted queues"},
		{FERRY_NVME_ADM_CREATE_CQ, (63u << 16) | 4, (99u << 16) | 3, cq.iova,
		 SC1(FERRY_NVME_SC_INVALID_VECTOR), "vector out of range"},
		{FERRY_NVME_ADM_CREATE_CQ, (63u << 16) | 4, 2, cq.iova,
		 SC0(FERRY_NVME_SC_INVALID_FIELD), "not physically contiguous"},
		{FERRY_NVME_ADM_CREATE_CQ, (63u << 16) | 4, 3, cq.iova + 64,
		 SC0(FERRY_NVME_SC_PRP_OFFSET), "base not page aligned"},
		{FERRY_NVME_ADM_CREATE_SQ, (63u << 16) | 4, (4u << 16) | 1, sq.iova,
		 SC1(FERRY_NVME_SC_CQ_INVALID), "SQ on a CQ that does not exist"},
		{FERRY_NVME_ADM_CREATE_SQ, (63u << 16) | 1, (1u << 16) | 1, sq.iova,
		 SC1(FERRY_NVME_SC_INVALID_QID), "duplicate SQ"},
		{FERRY_NVME_ADM_CREATE_SQ, 4, (1u << 16) | 1, sq.iova,
		 SC1(FERRY_NVME_SC_INVALID_QSIZE), "SQ size 0"},
		{FERRY_NVME_ADM_DELETE_CQ, 1, 0, 0, SC1(FERRY_NVME_SC_INVALID_QUEUE_DELETION),
		 "CQ deleted while an SQ uses it"},
		{FERRY_NVME_ADM_DELETE_SQ, 4, 0, 0, SC1(FERRY_NVME_SC_INVALID_QID),
		 "SQ that does not exist"},
		{FERRY_NVME_ADM_DELETE_CQ, 0, 0, 0, SC1(FERRY_NVME_SC_INVALID_QID), "admin CQ"},
		{0x7f, 0, 0, 0, SC0(FERRY_NVME_SC_INVALID_OPCODE), "unknown admin opcode"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = admin_status(c, cases[i].opc, cases[i].cdw10, cases[i].cdw11,
				      cases[i].prp1, &st);
		HCHECK(rc == 0 && (st & 0x7ff) == cases[i].want, "%s: rc %d status 0x%x, want 0x%x",
		       cases[i].what, rc, st, cases[i].want);
	}
	/* Happy path on the freed id: create CQ 4 (vector 4) and SQ 4, then delete both. */
	HCHECK(admin_status(c, FERRY_NVME_ADM_CREATE_CQ, (63u << 16) | 4, (4u << 16) | 3, cq.iova,
			    &st) == 0 &&
		       st == 0,
	       "create CQ 4: 0x%x", st);
	HCHECK(admin_status(c, FERRY_NVME_ADM_CREATE_SQ, (63u << 16) | 4, (4u << 16) | 1, sq.iova,
			    &st) == 0 &&
		       st == 0,
	       "create SQ 4: 0x%x", st);
	HCHECK(admin_status(c, FERRY_NVME_ADM_DELETE_CQ, 4, 0, 0, &st) == 0 &&
		       (st & 0x7ff) == SC1(FERRY_NVME_SC_INVALID_QUEUE_DELETION),
	       "CQ 4 in use: 0x%x", st);
	HCHECK(admin_status(c, FERRY_NVME_ADM_DELETE_SQ, 4, 0, 0, &st) == 0 && st == 0,
	       "delete SQ 4: 0x%x", st);
	HCHECK(admin_status(c, FERRY_NVME_ADM_DELETE_CQ, 4, 0, 0, &st) == 0 && st == 0,
	       "delete CQ 4: 0x%x", st);
	/* The other queues still work. */
	struct nvmeh_buf b;
	HCHECK(nvmeh_mem_alloc(m, 4096, NVMEH_MEM_READ | NVMEH_MEM_WRITE, &b) == 0, "alloc");
	struct ferry_nvme_sqe cmd;
	nvmeh_rw_cmd(&cmd, FERRY_NVME_CMD_WRITE, 7, 1);
	struct nvmeh_data d = {.iova = b.iova, .len = 4096};
	HCHECK(nvmeh_io_sync(c, 3, &cmd, &d, &st) == 0 && st == 0, "write on queue 3: 0x%x", st);
	nvmeh_close(c);
	return 0;
}

Test(pcie_host, queue_creation_edge_cases)
{
	struct ep_stack *s = ph_stack(0, NULL, "io_queues=4");
	ph_run(s, sc_queues, NULL);
	cr_assert_geq(ph_ctrlr_stats(s).errors, 15);
	ep_stack_destroy(s);
}

/* ---- data pointers: PRP and SGL -------------------------------------------------------- */

struct dp_case {
	enum nvmeh_dptr mode;
	uint32_t off, blocks, chunk, per_seg;
};

static const struct dp_case dp_cases[] = {
	{NVMEH_PRP, 0, 1, 0, 0},          /* PRP1 only */
	{NVMEH_PRP, 0, 2, 0, 0},          /* PRP1 + PRP2 */
	{NVMEH_PRP, 512, 3, 0, 0},        /* offset: 4 pages, PRP list */
	{NVMEH_PRP, 4, 32, 0, 0},         /* 128 KiB, dword offset, 32-entry list */
	{NVMEH_SGL, 0, 1, 0, 0},          /* one data block */
	{NVMEH_SGL, 1024, 8, 0, 0},       /* one data block across pages */
	{NVMEH_SGL_SPLIT, 512, 5, 0, 3},  /* page pieces in chained segments of 3 */
	{NVMEH_SGL_SPLIT, 0, 2, 512, 2},  /* 16 pieces of 512 bytes, 2 per segment */
	{NVMEH_SGL_SPLIT, 8, 4, 3000, 4}, /* odd piece sizes */
	{NVMEH_SGL_SPLIT, 0, 32, 0, 256}, /* 32 pieces in one last segment */
};
#define DP_N (sizeof(dp_cases) / sizeof(dp_cases[0]))
#define DP_LBA(i) ((uint64_t)(i)*40)

static int sc_dptr(void *ctx, int mfd, int pfd)
{
	struct nvmeh_ctrlr *c = ph_up(mfd, pfd, 1, 0, 64);
	if (!c)
		return 1; /* ph_up() wrote the message */
	struct nvmeh_mem *m = nvmeh_get_mem(c);
	struct nvmeh_buf wb, rb;
	HCHECK(nvmeh_mem_alloc(m, 160 << 10, NVMEH_MEM_READ | NVMEH_MEM_WRITE | NVMEH_MEM_SCATTER,
			       &wb) == 0,
	       "alloc");
	HCHECK(nvmeh_mem_alloc(m, 160 << 10, NVMEH_MEM_READ | NVMEH_MEM_WRITE, &rb) == 0, "alloc");
	static uint8_t tmp[160 << 10], back[160 << 10];
	for (uint32_t i = 0; i < DP_N; i++) {
		const struct dp_case *k = &dp_cases[i];
		uint32_t len = k->blocks * 4096;
		for (uint32_t b = 0; b < len; b++)
			tmp[b] = pat(i + 1, b);
		HCHECK(nvmeh_buf_write(m, &wb, k->off, tmp, len) == 0, "fill");
		memset(back, 0xee, sizeof(back));
		HCHECK(nvmeh_buf_write(m, &rb, 0, back, rb.len) == 0, "clear");
		struct nvmeh_data d = {.iova = wb.iova + k->off,
				       .len = len,
				       .mode = k->mode,
				       .sgl_chunk = k->chunk,
				       .sgl_per_seg = k->per_seg};
		struct ferry_nvme_sqe cmd;
		uint16_t st = 0xffff;
		nvmeh_rw_cmd(&cmd, FERRY_NVME_CMD_WRITE, DP_LBA(i), k->blocks);
		HCHECK(nvmeh_io_sync(c, 1, &cmd, &d, &st) == 0 && st == 0, "case %u write: 0x%x", i,
		       st);
		d.iova = rb.iova + k->off;
		nvmeh_rw_cmd(&cmd, FERRY_NVME_CMD_READ, DP_LBA(i), k->blocks);
		HCHECK(nvmeh_io_sync(c, 1, &cmd, &d, &st) == 0 && st == 0, "case %u read: 0x%x", i,
		       st);
		HCHECK(nvmeh_buf_read(m, &rb, 0, back, rb.len) == 0, "read back");
		for (uint32_t b = 0; b < k->off; b++)
			HCHECK(back[b] == 0xee, "case %u: byte %u before the data written", i, b);
		HCHECK(memcmp(back + k->off, tmp, len) == 0, "case %u: data differs", i);
		for (uint64_t b = k->off + len; b < rb.len; b++)
			HCHECK(back[b] == 0xee, "case %u: byte %llu after the data written", i,
			       (unsigned long long)b);
		/* Compare: equal, then one byte off. */
		d.iova = wb.iova + k->off;
		nvmeh_rw_cmd(&cmd, FERRY_NVME_CMD_COMPARE, DP_LBA(i), k->blocks);
		HCHECK(nvmeh_io_sync(c, 1, &cmd, &d, &st) == 0 && st == 0, "case %u compare: 0x%x",
		       i, st);
	}
	/* A transfer beyond MDTS (128 KiB + 1 block) is refused with Invalid Field. */
	struct ferry_nvme_sqe cmd;
	uint16_t st = 0;
	nvmeh_rw_cmd(&cmd, FERRY_NVME_CMD_READ, 0, 33);
	struct nvmeh_data d = {.iova = rb.iova, .len = 33 * 4096, .mode = NVMEH_SGL};
	HCHECK(nvmeh_io_sync(c, 1, &cmd, &d, &st) == 0 &&
		       (st & 0x7ff) == SC0(FERRY_NVME_SC_INVALID_FIELD),
	       "over MDTS: 0x%x", st);
	/* LBA out of range. */
	nvmeh_rw_cmd(&cmd, FERRY_NVME_CMD_READ, 8192, 1);
	d.len = 4096;
	HCHECK(nvmeh_io_sync(c, 1, &cmd, &d, &st) == 0 &&
		       (st & 0x7ff) == SC0(FERRY_NVME_SC_LBA_RANGE),
	       "LBA range: 0x%x", st);
	/* A miscompare. */
	tmp[0] ^= 1;
	nvmeh_buf_write(m, &wb, 0, tmp, 4096);
	nvmeh_rw_cmd(&cmd, FERRY_NVME_CMD_COMPARE, DP_LBA(DP_N - 1), 1);
	d.iova = wb.iova;
	d.mode = NVMEH_PRP;
	HCHECK(nvmeh_io_sync(c, 1, &cmd, &d, &st) == 0 &&
		       (st & 0x7ff) == FERRY_NVME_STATUS(FERRY_NVME_SCT_MEDIA,
							 FERRY_NVME_SC_COMPARE_FAILURE),
	       "miscompare: 0x%x", st);
	nvmeh_close(c);
	return 0;
}

static void bdev_read_cb(struct ferry_bdev_io *io, void *arg)
{
	*(int *)arg = 1;
}

Test(pcie_host, prp_and_sgl_data_pointers)
{
	struct ep_stack *s = ph_stack(0, NULL, NULL);
	ph_run(s, sc_dptr, NULL);
	/* The data really is in the bdev, block for block. */
	static uint8_t buf[128 << 10];
	for (uint32_t i = 0; i < DP_N; i++) {
		uint32_t len = dp_cases[i].blocks * 4096;
		struct iovec iov = {buf, len};
		struct ferry_bdev_io io = {.type = FERRY_BDEV_IO_READ,
					   .offset_blocks = DP_LBA(i),
					   .num_blocks = dp_cases[i].blocks,
					   .cb = bdev_read_cb};
		int done = 0;
		io.cb_arg = &done;
		io.mem = (struct ferry_mem){.iov = &iov, .iovcnt = 1};
		cr_assert_eq(ferry_bdev_submit(s->top, &io), 0);
		while (!done)
			ferry_endpoint_poll(s->ep, 16);
		cr_assert_eq(io.status, 0);
		for (uint32_t b = 0; b < len; b++)
			if (buf[b] != pat(i + 1, b))
				cr_assert_fail("case %u: bdev byte %u is 0x%02x, want 0x%02x", i, b,
					       buf[b], pat(i + 1, b));
	}
	ep_stack_destroy(s);
}

/* ---- PRP list chaining (4 MiB transfers) ----------------------------------------------- */

static int sc_chain(void *ctx, int mfd, int pfd)
{
	struct nvmeh_ctrlr *c = ph_up(mfd, pfd, 1, 0, 16);
	if (!c)
		return 1; /* ph_up() wrote the message */
	HCHECK(nvmeh_max_xfer(c) == (4u << 20), "MDTS: %u bytes", nvmeh_max_xfer(c));
	struct nvmeh_mem *m = nvmeh_get_mem(c);
	struct nvmeh_buf wb, rb;
	uint32_t cap = (4u << 20) + 4096;
	HCHECK(nvmeh_mem_alloc(m, cap, NVMEH_MEM_READ | NVMEH_MEM_WRITE | NVMEH_MEM_SCATTER, &wb) ==
		       0,
	       "alloc");
	HCHECK(nvmeh_mem_alloc(m, cap, NVMEH_MEM_READ | NVMEH_MEM_WRITE, &rb) == 0, "alloc");
	uint8_t *tmp = malloc(cap), *back = malloc(cap);
	HCHECK(tmp && back, "malloc");
	/* 1024 blocks at offset 0: 1023 entries (two list pages); 1023 blocks at offset 8:
	 * 1023 entries too; 1000 blocks at offset 4092: 1000 entries. */
	uint32_t nblk[] = {1024, 1023, 1000, 512};
	uint32_t off[] = {0, 8, 4092, 0};
	for (int i = 0; i < 4; i++) {
		uint32_t len = nblk[i] * 4096;
		for (uint32_t b = 0; b < len; b++)
			tmp[b] = pat(100 + (uint64_t)i, b);
		nvmeh_buf_write(m, &wb, off[i], tmp, len);
		struct ferry_nvme_sqe cmd;
		uint16_t st = 0xffff;
		struct nvmeh_data d = {.iova = wb.iova + off[i], .len = len, .mode = NVMEH_PRP};
		nvmeh_rw_cmd(&cmd, FERRY_NVME_CMD_WRITE, 2048, nblk[i]);
		HCHECK(nvmeh_io_sync(c, 1, &cmd, &d, &st) == 0 && st == 0, "write %d: 0x%x", i, st);
		memset(back, 0, cap);
		nvmeh_buf_write(m, &rb, 0, back, cap);
		d.iova = rb.iova + off[i];
		nvmeh_rw_cmd(&cmd, FERRY_NVME_CMD_READ, 2048, nblk[i]);
		HCHECK(nvmeh_io_sync(c, 1, &cmd, &d, &st) == 0 && st == 0, "read %d: 0x%x", i, st);
		nvmeh_buf_read(m, &rb, off[i], back, len);
		HCHECK(memcmp(back, tmp, len) == 0, "transfer %d: data differs", i);
	}
	free(tmp);
	free(back);
	nvmeh_close(c);
	return 0;
}

Test(pcie_host, prp_list_chaining)
{
	struct ep_stack *s = ph_stack(0, "host_mem=64M,iova_size=128M", "mdts=10,entries=64");
	ph_run(s, sc_chain, NULL);
	struct ferry_nvme_ctrlr_stats st = ph_ctrlr_stats(s);
	cr_assert_geq(st.bytes_written, (uint64_t)(1024 + 1023 + 1000 + 512) * 4096);
	ep_stack_destroy(s);
}

/* ---- MSI-X delivery and polling ---------------------------------------------------------- */

static int sc_msix(void *ctx, int mfd, int pfd)
{
	int poll_mode = *(int *)ctx;
	struct nvmeh_ctrlr *c = ph_up(mfd, pfd, 2, poll_mode, 64);
	if (!c)
		return 1; /* ph_up() wrote the message */
	uint64_t i1 = nvmeh_irqs(c, 1), i2 = nvmeh_irqs(c, 2), i0 = nvmeh_irqs(c, 0);
	struct lg_opts o = {.size = sizeof(o),
			    .qd = 8,
			    .bs = 4096,
			    .read_pct = 50,
			    .random = 1,
			    .ios = 600,
			    .seed = 7};
	struct lg *g = NULL;
	HCHECK(lg_create(c, &o, &g) == 0, "lg_create");
	HCHECK(lg_run(g, &ph_sh->r) == 0, "run");
	lg_destroy(g);
	/* The interrupt of the last completions may still be on its way (it is raised once the
	 * completion entry is in host memory, which is when the host may already reap it). */
	for (int i = 0;
	     i < 2000 && !poll_mode && nvmeh_irqs(c, 1) - i1 + nvmeh_irqs(c, 2) - i2 < ph_sh->r.ios;
	     i++)
		usleep(1000);
	ph_sh->v[0] = nvmeh_irqs(c, 1) - i1;
	ph_sh->v[1] = nvmeh_irqs(c, 2) - i2;
	ph_sh->v[2] = nvmeh_irqs(c, 0) - i0;
	HCHECK(ph_sh->r.ios == 600 && ph_sh->r.errors == 0, "ios %llu errors %llu",
	       (unsigned long long)ph_sh->r.ios, (unsigned long long)ph_sh->r.errors);
	nvmeh_close(c);
	return 0;
}

Test(pcie_host, msix_per_queue_and_polling)
{
	struct ep_stack *s = ph_stack(0, NULL, NULL);
	int poll_mode = 0;
	ph_run(s, sc_msix, &poll_mode);
	cr_assert_eq(ph_sh->v[0] + ph_sh->v[1], 600, "one interrupt per completion: %llu + %llu",
		     (unsigned long long)ph_sh->v[0], (unsigned long long)ph_sh->v[1]);
	cr_assert_gt(ph_sh->v[0], 0, "queue 1's vector fired");
	cr_assert_gt(ph_sh->v[1], 0, "queue 2's vector fired");
	cr_assert_leq(ph_sh->r.irqs, 600);
	cr_assert_eq(ph_sh->v[2], 0, "no admin interrupt during I/O");
	ep_stack_destroy(s);

	s = ph_stack(0, NULL, NULL);
	poll_mode = 1;
	ph_run(s, sc_msix, &poll_mode);
	cr_assert_eq(ph_sh->v[0] + ph_sh->v[1], 0, "IEN = 0: no interrupt for I/O queues");
	struct ferry_pcie_transport_stats ts = {.size = sizeof(ts)};
	cr_assert_eq(ferry_pcie_transport_get_stats(s->transport, 0, &ts), 0);
	cr_assert_lt(ts.irqs, 20, "only admin completions interrupt: %llu",
		     (unsigned long long)ts.irqs);
	ep_stack_destroy(s);
}

/* ---- reset with I/O in flight --------------------------------------------------------- */

static int sc_reset(void *ctx, int mfd, int pfd)
{
	struct nvmeh_ctrlr *c = ph_up(mfd, pfd, 2, 0, 64);
	if (!c)
		return 1; /* ph_up() wrote the message */
	struct lg_opts o = {.size = sizeof(o),
			    .qd = 32,
			    .bs = 4096,
			    .read_pct = 30,
			    .random = 1,
			    .verify = 1,
			    .ios = 3000,
			    .seed = 11,
			    .range_blocks = 1024,
			    .reset_after = 1000,
			    .format = 1};
	struct lg *g = NULL;
	HCHECK(lg_create(c, &o, &g) == 0, "lg_create");
	uint64_t dropped = 0;
	for (int round = 0; round < 3; round++) {
		HCHECK(lg_run(g, &ph_sh->r) == 0, "run %d", round);
		HCHECK(ph_sh->r.resets == 1, "round %d: %llu resets", round,
		       (unsigned long long)ph_sh->r.resets);
		HCHECK(ph_sh->r.errors == 0 && ph_sh->r.verify_errors == 0,
		       "round %d: %llu errors, %llu verify errors", round,
		       (unsigned long long)ph_sh->r.errors,
		       (unsigned long long)ph_sh->r.verify_errors);
		dropped += ph_sh->r.reset_dropped;
	}
	HCHECK(dropped > 0, "the resets found I/O in flight");
	uint64_t bad = 99;
	HCHECK(lg_verify_all(g, &bad) == 0 && bad == 0, "read-back: %llu bad blocks",
	       (unsigned long long)bad);
	ph_sh->v[0] = dropped;
	lg_destroy(g);
	nvmeh_close(c);
	return 0;
}

Test(pcie_host, reset_with_io_in_flight_loses_no_completed_write)
{
	struct ep_stack *s = ph_stack(0, NULL, NULL);
	ph_run(s, sc_reset, NULL);
	cr_assert_geq(ph_ctrlr_stats(s).resets, 3);
	ep_stack_destroy(s);
}

Test(pcie_host, reset_with_io_in_flight_crypto_dif)
{
	/* Data through accel sequences (the default: fused on the mock engine). */
	struct ep_stack *s = ph_stack(1, NULL, NULL);
	ph_run(s, sc_reset, NULL);
	struct ferry_accel_stats as = {.size = sizeof(as)};
	cr_assert_eq(ferry_accel_get_stats(NULL, &as), 0);
	cr_assert_gt(as.fusions, 0, "writes ran as fused operations");
	ep_stack_destroy(s);
}

Test(pcie_host, reset_with_io_in_flight_crypto_dif_no_accel)
{
	/* No sequences: the crypto and dif bdevs transform on their own bounce buffers. */
	struct ep_stack *s = ph_stack(1, NULL, "accel=0");
	ph_run(s, sc_reset, NULL);
	struct ferry_accel_stats as = {.size = sizeof(as)};
	cr_assert_eq(ferry_accel_get_stats(NULL, &as), 0);
	cr_assert_eq(as.seqs_finished, 0, "no sequence was used");
	ep_stack_destroy(s);
}

/* ---- bad MMIO and doorbells ------------------------------------------------------------ */

static int sc_bad_mmio(void *ctx, int mfd, int pfd)
{
	struct nvmeh_ctrlr *c = ph_up(mfd, pfd, 1, 0, 64);
	if (!c)
		return 1; /* ph_up() wrote the message */
	struct ferry_mock_pcie_host *h = NULL;
	HCHECK(ferry_mock_pcie_host_open(pfd, &h) == 0, "second mapping of the channel");
	uint64_t v = 0;
	HCHECK(ferry_mock_pcie_mmio_read(h, 0, FERRY_MOCK_PCIE_BAR0_SIZE, 4, &v) == -EINVAL,
	       "outside BAR0");
	HCHECK(ferry_mock_pcie_mmio_read(h, 0, 0x1c, 3, &v) == -EINVAL, "size 3");
	HCHECK(ferry_mock_pcie_mmio_write(h, 0, 0x16, 4, 0) == -EINVAL, "misaligned");
	HCHECK(ferry_mock_pcie_mmio_read(h, 0, FERRY_NVME_REG_CSTS, 8, &v) == -EINVAL,
	       "misaligned 8-byte read");
	HCHECK(ferry_mock_pcie_mmio_read(h, 0, FERRY_NVME_REG_INTMC, 8, &v) == -EIO &&
		       v == UINT64_MAX,
	       "8-byte read of 32-bit registers: all ones");
	HCHECK(ferry_mock_pcie_mmio_write(h, 0, FERRY_NVME_REG_CC, 1, 0) == 0, "1-byte CC write");
	HCHECK(ferry_mock_pcie_mmio_write(h, 0, FERRY_NVME_REG_CC, 2, 0) == 0, "2-byte CC write");
	/* Doorbells: a queue that does not exist; an SQ tail beyond the queue; a CQ head
	 * freeing entries that were never posted. */
	HCHECK(ferry_mock_pcie_mmio_write(h, 0, FERRY_NVME_REG_DBS + 8 * 9, 4, 1) == 0, "db");
	HCHECK(ferry_mock_pcie_mmio_write(h, 0, FERRY_NVME_REG_DBS + 8, 4, 5000) == 0, "db");
	HCHECK(ferry_mock_pcie_mmio_write(h, 0, FERRY_NVME_REG_DBS + 12, 4, 17) == 0, "db");
	uint32_t csts = 0;
	HCHECK(nvmeh_reg_read32(c, FERRY_NVME_REG_CSTS, &csts) == 0 && csts == FERRY_NVME_CSTS_RDY,
	       "still ready, no CFS: 0x%x", csts);
	ferry_mock_pcie_host_close(h);
	/* The controller still serves I/O. */
	struct lg_opts o = {.size = sizeof(o),
			    .qd = 4,
			    .bs = 4096,
			    .read_pct = 50,
			    .random = 1,
			    .verify = 1,
			    .ios = 200,
			    .seed = 3,
			    .range_blocks = 256};
	struct lg *g = NULL;
	HCHECK(lg_create(c, &o, &g) == 0, "lg_create");
	HCHECK(lg_run(g, &ph_sh->r) == 0 && ph_sh->r.errors == 0 && ph_sh->r.verify_errors == 0,
	       "I/O after bad MMIO");
	lg_destroy(g);
	nvmeh_close(c);
	return 0;
}

Test(pcie_host, bad_mmio_and_doorbells_are_contained)
{
	struct ep_stack *s = ph_stack(0, NULL, NULL);
	ferry_log_set_handler(ph_quiet_log);
	ph_run(s, sc_bad_mmio, NULL);
	ferry_log_set_handler(NULL);
	struct ferry_pcie_transport_stats ts = {.size = sizeof(ts)};
	cr_assert_eq(ferry_pcie_transport_get_stats(s->transport, 0, &ts), 0);
	cr_assert_geq(ts.bad_accesses, 3, "8-byte read, 1- and 2-byte writes refused");
	struct ferry_nvme_ctrlr_stats st = ph_ctrlr_stats(s);
	cr_assert_geq(st.doorbell_errors, 3);
	struct ferry_mock_pcie_stats ms = {.size = sizeof(ms)};
	cr_assert_eq(ferry_mock_pcie_get_stats(s->dev, 0, &ms), 0);
	cr_assert_eq(ms.bad, 0, "the host side never posted a malformed access");
	ep_stack_destroy(s);
}

/* ---- the IOMMU refuses what the host did not map ---------------------------------------- */

static int sc_iommu(void *ctx, int mfd, int pfd)
{
	struct nvmeh_ctrlr *c = ph_up(mfd, pfd, 1, 0, 64);
	if (!c)
		return 1; /* ph_up() wrote the message */
	struct nvmeh_mem *m = nvmeh_get_mem(c);
	struct nvmeh_buf good, wonly, ronly, gone;
	HCHECK(nvmeh_mem_alloc(m, 8192, NVMEH_MEM_READ | NVMEH_MEM_WRITE, &good) == 0, "alloc");
	HCHECK(nvmeh_mem_alloc(m, 8192, NVMEH_MEM_WRITE, &wonly) == 0, "alloc");
	HCHECK(nvmeh_mem_alloc(m, 8192, NVMEH_MEM_READ, &ronly) == 0, "alloc");
	HCHECK(nvmeh_mem_alloc(m, 8192, NVMEH_MEM_READ | NVMEH_MEM_WRITE, &gone) == 0, "alloc");
	uint8_t tmp[8192], back[8192];
	for (int i = 0; i < 8192; i++)
		tmp[i] = pat(55, (uint64_t)i);
	nvmeh_buf_write(m, &good, 0, tmp, sizeof(tmp));
	struct ferry_nvme_sqe cmd;
	uint16_t st = 0;
	struct nvmeh_data d = {.iova = good.iova, .len = 8192};
	nvmeh_rw_cmd(&cmd, FERRY_NVME_CMD_WRITE, 100, 2);
	HCHECK(nvmeh_io_sync(c, 1, &cmd, &d, &st) == 0 && st == 0, "good write 0x%x", st);
	/* Write from a buffer the device may not read, or that is unmapped: refused. */
	d.iova = wonly.iova;
	HCHECK(nvmeh_io_sync(c, 1, &cmd, &d, &st) == 0 && st != 0, "write from write-only: 0x%x",
	       st);
	ph_sh->v[0] = st;
	HCHECK(nvmeh_mem_unmap(m, &gone) == 0, "unmap");
	d.iova = gone.iova;
	HCHECK(nvmeh_io_sync(c, 1, &cmd, &d, &st) == 0 && st != 0, "write from unmapped: 0x%x", st);
	/* Read into a buffer the device may not write: refused, buffer untouched. */
	memset(back, 0x5a, sizeof(back));
	nvmeh_buf_write(m, &ronly, 0, back, sizeof(back));
	d.iova = ronly.iova;
	nvmeh_rw_cmd(&cmd, FERRY_NVME_CMD_READ, 100, 2);
	HCHECK(nvmeh_io_sync(c, 1, &cmd, &d, &st) == 0 && st != 0, "read into read-only: 0x%x", st);
	nvmeh_buf_read(m, &ronly, 0, back, sizeof(back));
	for (int i = 0; i < 8192; i++)
		HCHECK(back[i] == 0x5a, "read-only buffer byte %d changed", i);
	/* A PRP pointing outside the IOVA space. */
	d.iova = 0xfff000000ull;
	HCHECK(nvmeh_io_sync(c, 1, &cmd, &d, &st) == 0 && st != 0, "read to a wild IOVA: 0x%x", st);
	/* The blocks still hold the good write; the controller is healthy. */
	d.iova = good.iova;
	memset(back, 0, sizeof(back));
	nvmeh_buf_write(m, &good, 0, back, sizeof(back));
	HCHECK(nvmeh_io_sync(c, 1, &cmd, &d, &st) == 0 && st == 0, "good read 0x%x", st);
	nvmeh_buf_read(m, &good, 0, back, sizeof(back));
	HCHECK(memcmp(back, tmp, sizeof(tmp)) == 0, "refused writes changed the blocks");
	uint32_t csts = 0;
	HCHECK(nvmeh_reg_read32(c, FERRY_NVME_REG_CSTS, &csts) == 0 && csts == FERRY_NVME_CSTS_RDY,
	       "CSTS 0x%x", csts);
	nvmeh_close(c);
	return 0;
}

Test(pcie_host, iommu_refuses_unmapped_and_unpermitted_buffers)
{
	struct ep_stack *s = ph_stack(0, NULL, NULL);
	ferry_log_set_handler(ph_quiet_log);
	ph_run(s, sc_iommu, NULL);
	ferry_log_set_handler(NULL);
	cr_assert_eq(ph_sh->v[0] & 0x7ff, SC0(FERRY_NVME_SC_DATA_XFER_ERROR),
		     "status of a refused transfer: 0x%llx", (unsigned long long)ph_sh->v[0]);
	ep_stack_destroy(s);
}

/* ---- a host that dies with I/O in flight; the next one takes the controller over -------- */

static int sc_die(void *ctx, int mfd, int pfd)
{
	struct nvmeh_ctrlr *c = ph_up(mfd, pfd, 1, 0, 64);
	if (!c)
		return 1;
	struct nvmeh_mem *m = nvmeh_get_mem(c);
	struct nvmeh_buf b;
	HCHECK(nvmeh_mem_alloc(m, 32 * 4096, NVMEH_MEM_READ | NVMEH_MEM_WRITE, &b) == 0, "alloc");
	for (uint32_t i = 0; i < 32; i++) {
		struct ferry_nvme_sqe cmd;
		nvmeh_rw_cmd(&cmd, FERRY_NVME_CMD_WRITE, i, 1);
		struct nvmeh_data d = {.iova = b.iova + i * 4096ull, .len = 4096};
		HCHECK(nvmeh_submit(c, 1, &cmd, &d, NULL, NULL, 0) == 0, "submit %u", i);
	}
	_exit(0); /* no disable, no shutdown: the "OS" crashed */
}

static int sc_takeover(void *ctx, int mfd, int pfd)
{
	struct nvmeh_ctrlr *c = ph_up(mfd, pfd, 1, 0, 64);
	if (!c)
		return 1;
	struct lg_opts o = {.size = sizeof(o),
			    .qd = 16,
			    .bs = 8192,
			    .read_pct = 50,
			    .random = 1,
			    .verify = 1,
			    .ios = 500,
			    .seed = 5,
			    .range_blocks = 512,
			    .format = 1};
	struct lg *g = NULL;
	HCHECK(lg_create(c, &o, &g) == 0, "lg_create");
	HCHECK(lg_run(g, &ph_sh->r) == 0 && ph_sh->r.errors == 0 && ph_sh->r.verify_errors == 0,
	       "run after the takeover");
	uint64_t bad = 1;
	HCHECK(lg_verify_all(g, &bad) == 0 && bad == 0, "read-back");
	lg_destroy(g);
	nvmeh_close(c);
	return 0;
}

Test(pcie_host, host_dies_with_io_in_flight_then_another_takes_over)
{
	struct ep_stack *s = ph_stack(1, NULL, NULL);
	ph_run(s, sc_die, NULL);
	uint64_t csts = 0;
	cr_assert_eq(ferry_nvme_ctrlr_reg_read(s->ctrlr, FERRY_NVME_REG_CSTS, 4, &csts), 0);
	cr_assert_eq(csts & FERRY_NVME_CSTS_CFS, 0, "the controller is healthy");
	/* The new host drops the old IOMMU mappings before it resets the controller: late
	 * completions of the dead host's commands fault (logged, CSTS.CFS) until the reset. */
	ferry_log_set_handler(ph_quiet_log);
	ph_run(s, sc_takeover, NULL);
	ferry_log_set_handler(NULL);
	cr_assert_geq(ph_ctrlr_stats(s).resets, 1, "the new host reset the controller");
	ep_stack_destroy(s); /* no controller or I/O left behind (the subsystem would refuse) */
}
