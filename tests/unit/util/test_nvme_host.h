/*
 * Test harness for the NVMe controller core (header only, included by tests/unit/test_nvme*.c,
 * test_prp*.c and test_sgl*.c): a simulated host memory domain (an in-process "host RAM"
 * array with bounds, synchronous or asynchronous with completions in random order), a test
 * memory-based transport that records interrupts, and a tiny host driver (admin/I/O queues in
 * host RAM, PRP builders, submit/wait helpers) driving a controller through its registers.
 * Independent of any backend.
 */
#ifndef FERRY_TEST_NVME_HOST_H
#define FERRY_TEST_NVME_HOST_H

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ferry/bdev.h>
#include <ferry/nvme.h>
#include <ferry/transport.h>
#include <ferry/bdev_malloc.h>
#include <ferry/module/transport.h>
#include <ferry/module/nvme_ctrlr.h>
#include <ferry/module/memdomain.h>

#define HM_BASE 0x100000ull /* host IOVA of the first byte of host RAM */
#define HM_PAGE 4096u

/* ---- simulated host memory domain ------------------------------------------------------ */

struct hm_op {
	int push; /* 0: pull (host → local), 1: push (local → host), 2: memzero */
	const struct iovec *host;
	uint32_t host_cnt;
	const struct iovec *local;
	uint32_t local_cnt;
	ferry_memdomain_cb cb;
	void *arg;
};

struct host_mem {
	uint8_t *ram;
	uint64_t size;
	uint64_t brk; /* bump allocator (offset) */
	struct ferry_memdomain *dom;
	int async;
	struct hm_op *ops;
	uint32_t nops, cap;
	uint64_t seed;
	uint64_t pulls, pushes, faults;
	uint64_t deny_lo, deny_hi; /* addresses in [lo, hi) fault (unmapped in the IOMMU) */
	uint32_t poll_max;         /* if set: operations completed per domain poll at most */
};

static inline uint64_t hm_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static inline int hm_check(struct host_mem *hm, const struct iovec *iov, uint32_t cnt)
{
	for (uint32_t i = 0; i < cnt; i++) {
		uint64_t a = (uint64_t)(uintptr_t)iov[i].iov_base, n = iov[i].iov_len;
		if (n == 0)
			continue;
		if (a < HM_BASE || n > hm->size || a - HM_BASE > hm->size - n)
			return -EFAULT;
		if (a < hm->deny_hi && a + n > hm->deny_lo)
			return -EFAULT;
	}
	return 0;
}

static inline void hm_do(struct host_mem *hm, const struct hm_op *op)
{
	struct iovec tmp[64];
	cr_assert_leq(op->host_cnt, 64, "test domain: too many host segments");
	for (uint32_t i = 0; i < op->host_cnt; i++) {
		tmp[i].iov_base = hm->ram + ((uint64_t)(uintptr_t)op->host[i].iov_base - HM_BASE);
		tmp[i].iov_len = op->host[i].iov_len;
	}
	if (op->push == 2) {
		for (uint32_t i = 0; i < op->host_cnt; i++)
			memset(tmp[i].iov_base, 0, tmp[i].iov_len);
	} else if (op->push) {
		ferry_iov_copy(tmp, op->host_cnt, op->local, op->local_cnt);
	} else {
		ferry_iov_copy(op->local, op->local_cnt, tmp, op->host_cnt);
	}
}

static inline int hm_submit(struct host_mem *hm, struct hm_op op)
{
	int rc = hm_check(hm, op.host, op.host_cnt);
	if (op.push == 1)
		hm->pushes++;
	else if (op.push == 0)
		hm->pulls++;
	if (!hm->async) {
		if (rc) {
			hm->faults++;
			return rc;
		}
		hm_do(hm, &op);
		op.cb(op.arg, 0);
		return 0;
	}
	if (hm->nops == hm->cap) {
		hm->cap = hm->cap ? hm->cap * 2 : 64;
		hm->ops = realloc(hm->ops, hm->cap * sizeof(*hm->ops));
	}
	hm->ops[hm->nops++] = op;
	return 0;
}

static inline int hm_pull(struct ferry_memdomain *d, void *ctx, const struct iovec *src,
			  uint32_t sc, const struct iovec *dst, uint32_t dc, ferry_memdomain_cb cb,
			  void *arg)
{
	struct host_mem *hm = ferry_memdomain_get_ctx(d);
	return hm_submit(hm, (struct hm_op){0, src, sc, dst, dc, cb, arg});
}

static inline int hm_push(struct ferry_memdomain *d, void *ctx, const struct iovec *dst,
			  uint32_t dc, const struct iovec *src, uint32_t sc, ferry_memdomain_cb cb,
			  void *arg)
{
	struct host_mem *hm = ferry_memdomain_get_ctx(d);
	return hm_submit(hm, (struct hm_op){1, dst, dc, src, sc, cb, arg});
}

static inline int hm_memzero(struct ferry_memdomain *d, void *ctx, const struct iovec *iov,
			     uint32_t cnt, ferry_memdomain_cb cb, void *arg)
{
	struct host_mem *hm = ferry_memdomain_get_ctx(d);
	return hm_submit(hm, (struct hm_op){2, iov, cnt, NULL, 0, cb, arg});
}

/* Complete up to max queued operations, in random order. */
static inline int hm_poll_ops(struct host_mem *hm, uint32_t max)
{
	int n = 0;
	while (hm->nops && (uint32_t)n < max) {
		uint32_t i = (uint32_t)(hm_rand(&hm->seed) % hm->nops);
		struct hm_op op = hm->ops[i];
		hm->ops[i] = hm->ops[--hm->nops];
		int rc = hm_check(hm, op.host, op.host_cnt);
		if (rc)
			hm->faults++;
		else
			hm_do(hm, &op);
		op.cb(op.arg, rc);
		n++;
	}
	return n;
}

static inline int hm_dom_poll(struct ferry_memdomain *d, uint32_t max)
{
	struct host_mem *hm = ferry_memdomain_get_ctx(d);
	return hm_poll_ops(hm, hm->poll_max && hm->poll_max < max ? hm->poll_max : max);
}

static const struct ferry_memdomain_ops hm_ops = {
	.abi_version = FERRY_MEMDOMAIN_OPS_ABI,
	.pull = hm_pull,
	.push = hm_push,
	.memzero = hm_memzero,
	.poll = hm_dom_poll,
};

static inline struct host_mem *hm_create(uint64_t size, int async)
{
	static unsigned int seq;
	struct host_mem *hm = calloc(1, sizeof(*hm));
	cr_assert_not_null(hm);
	hm->ram = calloc(1, size);
	cr_assert_not_null(hm->ram);
	hm->size = size;
	hm->async = async;
	hm->seed = 0x9e3779b97f4a7c15ull;
	char name[64];
	snprintf(name, sizeof(name), "test.host%u", seq++);
	struct ferry_memdomain_opts o = {.size = sizeof(o), .type = FERRY_MEMDOMAIN_PCIE,
					 .name = name, .ops = &hm_ops, .user_ctx = hm};
	cr_assert_eq(ferry_memdomain_create(&o, &hm->dom), 0);
	return hm;
}

static inline void hm_destroy(struct host_mem *hm)
{
	ferry_memdomain_destroy(hm->dom);
	free(hm->ops);
	free(hm->ram);
	free(hm);
}

/* Allocate host RAM (aligned, zeroed); returns the host address. */
static inline uint64_t hm_alloc(struct host_mem *hm, uint64_t len, uint64_t align)
{
	uint64_t off = (hm->brk + align - 1) & ~(align - 1);
	cr_assert_leq(off + len, hm->size, "host RAM exhausted");
	hm->brk = off + len;
	memset(hm->ram + off, 0, len);
	return HM_BASE + off;
}

static inline void *hm_ptr(struct host_mem *hm, uint64_t addr)
{
	cr_assert(addr >= HM_BASE && addr - HM_BASE < hm->size, "host address 0x%llx out of RAM",
		  (unsigned long long)addr);
	return hm->ram + (addr - HM_BASE);
}

/* ---- test transport ---------------------------------------------------------------------- */

struct test_tr_state {
	uint64_t irqs[64];
	uint64_t events[8];
};

static struct test_tr_state test_tr_state_g;

static inline int test_tr_irq(struct ferry_transport *t, struct ferry_nvme_ctrlr *c, void *ctx,
			      uint16_t vector)
{
	struct test_tr_state *st = ctx ? ctx : &test_tr_state_g;
	if (vector < 64)
		st->irqs[vector]++;
	return 0;
}

static inline void test_tr_event(struct ferry_transport *t, struct ferry_nvme_ctrlr *c, void *ctx,
				 enum ferry_nvme_ctrlr_event ev)
{
	struct test_tr_state *st = ctx ? ctx : &test_tr_state_g;
	if ((unsigned)ev < 8)
		st->events[ev]++;
}

static const struct ferry_transport_ops test_tr_ops = {
	.abi_version = FERRY_TRANSPORT_OPS_ABI,
	.name = "test-mem",
	.kind = FERRY_TRANSPORT_MEMORY,
	.raise_irq = test_tr_irq,
	.ctrlr_event = test_tr_event,
};

/* ---- host driver ------------------------------------------------------------------------- */

#define H_MAXQ 9

struct hq {
	uint64_t sq, cq;   /* host addresses */
	uint32_t size;     /* entries (SQ and CQ the same) */
	uint32_t tail, head;
	uint8_t phase;
	int live;
};

struct host {
	struct host_mem *hm;
	struct ferry_transport *tr;
	struct ferry_nvme_subsystem *subsys;
	struct ferry_nvme_ctrlr *ctrlr;
	struct ferry_bdev *bdev;
	int own_bdev;
	struct test_tr_state tr_state;
	struct hq q[H_MAXQ];
	uint16_t cid;
	uint64_t polls;
};

struct host_opts {
	uint64_t ram;           /* host RAM bytes (default 16 MiB) */
	int async;              /* asynchronous host domain */
	uint32_t block_size;    /* malloc block size (default 512) */
	uint32_t md_size;       /* interleaved metadata */
	uint64_t num_blocks;    /* default 8192 */
	struct ferry_nvme_ctrlr_opts copts; /* size 0 = defaults */
	int no_ns;              /* no namespace */
	struct ferry_bdev *ns_bdev; /* namespace 1 on this bdev (the caller's) instead of a malloc */
	const char *nqn;
	const char *firmware_rev;   /* subsystem firmware revision (default: the library's) */
	uint32_t max_namespaces;    /* default 8 */
};

static inline void h_poll(struct host *h)
{
	h->polls++;
	if (h->hm->async)
		hm_poll_ops(h->hm, 4);
	ferry_nvme_ctrlr_poll(h->ctrlr, 64);
}

static inline uint32_t h_rd32(struct host *h, uint32_t off)
{
	uint64_t v = 0;
	cr_assert_eq(ferry_nvme_ctrlr_reg_read(h->ctrlr, off, 4, &v), 0);
	return (uint32_t)v;
}

static inline void h_wr32(struct host *h, uint32_t off, uint32_t v)
{
	cr_assert_eq(ferry_nvme_ctrlr_reg_write(h->ctrlr, off, 4, v), 0);
}

static inline void h_wr64(struct host *h, uint32_t off, uint64_t v)
{
	cr_assert_eq(ferry_nvme_ctrlr_reg_write(h->ctrlr, off, 8, v), 0);
}

#define H_CC_DEFAULT (FERRY_NVME_CC_EN | (6u << 16) | (4u << 20))

/* Poll until (CSTS & mask) == want; returns 1 on success. */
static inline int h_wait_csts(struct host *h, uint32_t mask, uint32_t want)
{
	for (int i = 0; i < 100000; i++) {
		if ((h_rd32(h, FERRY_NVME_REG_CSTS) & mask) == want)
			return 1;
		h_poll(h);
	}
	return 0;
}

/* Program the admin queue (entries each) and enable; returns CSTS after the attempt. */
static inline uint32_t h_enable(struct host *h, uint32_t entries, uint32_t cc)
{
	struct hq *a = &h->q[0];
	if (!a->sq) {
		a->sq = hm_alloc(h->hm, 4096 * 2, HM_PAGE);
		a->cq = hm_alloc(h->hm, 4096, HM_PAGE);
	}
	a->size = entries;
	a->tail = a->head = 0;
	a->phase = 1;
	a->live = 1;
	memset(hm_ptr(h->hm, a->sq), 0, (size_t)entries * 64);
	memset(hm_ptr(h->hm, a->cq), 0, (size_t)entries * 16);
	h_wr32(h, FERRY_NVME_REG_AQA, (entries - 1) | ((entries - 1) << 16));
	h_wr64(h, FERRY_NVME_REG_ASQ, a->sq);
	h_wr64(h, FERRY_NVME_REG_ACQ, a->cq);
	h_wr32(h, FERRY_NVME_REG_CC, cc);
	for (int i = 0; i < 100000; i++) {
		uint32_t csts = h_rd32(h, FERRY_NVME_REG_CSTS);
		if (csts & (FERRY_NVME_CSTS_RDY | FERRY_NVME_CSTS_CFS))
			return csts;
		h_poll(h);
	}
	return h_rd32(h, FERRY_NVME_REG_CSTS);
}

static inline void h_disable(struct host *h)
{
	h_wr32(h, FERRY_NVME_REG_CC, h_rd32(h, FERRY_NVME_REG_CC) & ~FERRY_NVME_CC_EN);
	cr_assert(h_wait_csts(h, FERRY_NVME_CSTS_RDY, 0), "CSTS.RDY did not clear after CC.EN = 0");
	for (int i = 1; i < H_MAXQ; i++)
		h->q[i].live = 0;
}

static inline struct host *h_create(const struct host_opts *o)
{
	static unsigned int seq;
	struct host *h = calloc(1, sizeof(*h));
	cr_assert_not_null(h);
	h->hm = hm_create(o && o->ram ? o->ram : 16u << 20, o ? o->async : 0);
	int rc = ferry_transport_register(&test_tr_ops);
	cr_assert_eq(rc, 0);
	cr_assert_eq(ferry_transport_create("test-mem", NULL, &h->tr), 0);
	char nqn[96], bname[64];
	snprintf(nqn, sizeof(nqn), "%s%u", o && o->nqn ? o->nqn : "nqn.2024-01.io.ferry:test", seq);
	snprintf(bname, sizeof(bname), "test.malloc%u", seq);
	seq++;
	struct ferry_nvme_subsystem_opts so = {.size = sizeof(so), .nqn = nqn, .serial = "FERRY0001",
					       .model = "Ferry test controller", .vendor_id = 0x1d1d,
					       .firmware_rev = o ? o->firmware_rev : NULL,
					       .max_namespaces = o && o->max_namespaces
								 ? o->max_namespaces : 8};
	cr_assert_eq(ferry_nvme_subsystem_create(&so, &h->subsys), 0);
	if (o && o->ns_bdev) {
		h->bdev = o->ns_bdev;
		struct ferry_nvme_ns_opts no = {.size = sizeof(no), .bdev = h->bdev, .nsid = 1};
		cr_assert_eq(ferry_nvme_subsystem_add_ns(h->subsys, &no, NULL), 0);
	} else if (!o || !o->no_ns) {
		h->own_bdev = 1;
		struct ferry_bdev_malloc_opts mo = {.size = sizeof(mo), .name = bname,
						    .block_size = o && o->block_size ? o->block_size : 512,
						    .md_size = o ? o->md_size : 0,
						    .num_blocks = o && o->num_blocks ? o->num_blocks : 8192};
		cr_assert_eq(ferry_bdev_malloc_create(&mo, &h->bdev), 0);
		struct ferry_nvme_ns_opts no = {.size = sizeof(no), .bdev = h->bdev, .nsid = 1};
		cr_assert_eq(ferry_nvme_subsystem_add_ns(h->subsys, &no, NULL), 0);
	}
	struct ferry_nvme_ctrlr_opts co;
	if (o && o->copts.size)
		co = o->copts;
	else
		memset(&co, 0, sizeof(co));
	co.size = sizeof(co);
	co.subsys = h->subsys;
	co.transport = h->tr;
	co.transport_ctx = &h->tr_state;
	co.host_domain = h->hm->dom;
	if (!co.max_io_queues)
		co.max_io_queues = H_MAXQ - 1;
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &h->ctrlr), 0);
	return h;
}

static inline void h_destroy(struct host *h)
{
	if (h_rd32(h, FERRY_NVME_REG_CC) & FERRY_NVME_CC_EN)
		h_disable(h);
	for (int i = 0; i < 1000 && ferry_nvme_ctrlr_destroy(h->ctrlr) == -EBUSY; i++)
		h_poll(h);
	cr_assert_eq(ferry_nvme_subsystem_destroy(h->subsys), 0);
	if (h->bdev && h->own_bdev)
		cr_assert_eq(ferry_bdev_destroy(h->bdev), 0);
	ferry_transport_destroy(h->tr);
	hm_destroy(h->hm);
	free(h);
}

/* Write an SQE at the queue's tail and ring the doorbell; returns the command ID used. */
static inline uint16_t h_submit(struct host *h, int qid, struct ferry_nvme_sqe *sqe)
{
	struct hq *q = &h->q[qid];
	cr_assert(q->live, "queue %d not created", qid);
	sqe->cid = h->cid++;
	memcpy(hm_ptr(h->hm, q->sq + (uint64_t)q->tail * 64), sqe, 64);
	q->tail = (q->tail + 1) % q->size;
	h_wr32(h, FERRY_NVME_REG_DBS + 8 * qid, q->tail);
	return sqe->cid;
}

/* Take the next completion of queue qid if one is posted (no doorbell). */
static inline int h_peek(struct host *h, int qid, struct ferry_nvme_cqe *out)
{
	struct hq *q = &h->q[qid];
	struct ferry_nvme_cqe e;
	memcpy(&e, hm_ptr(h->hm, q->cq + (uint64_t)q->head * 16), 16);
	if ((e.status & 1) != q->phase)
		return 0;
	*out = e;
	if (++q->head == q->size) {
		q->head = 0;
		q->phase ^= 1;
	}
	return 1;
}

static inline void h_cq_doorbell(struct host *h, int qid)
{
	h_wr32(h, FERRY_NVME_REG_DBS + 8 * qid + 4, h->q[qid].head);
}

/* Wait for the next completion of qid and release it; returns 1, or 0 on timeout. */
static inline int h_wait(struct host *h, int qid, struct ferry_nvme_cqe *out)
{
	for (int i = 0; i < 200000; i++) {
		if (h_peek(h, qid, out)) {
			h_cq_doorbell(h, qid);
			return 1;
		}
		h_poll(h);
	}
	return 0;
}

/* SCT << 8 | SC of a completion. */
static inline uint16_t cqe_st(const struct ferry_nvme_cqe *e)
{
	return (uint16_t)((e->status >> 1) & 0x7ff);
}

static inline int cqe_dnr(const struct ferry_nvme_cqe *e)
{
	return (e->status >> 15) & 1;
}

#define ST(sct, sc) FERRY_NVME_STATUS(FERRY_NVME_SCT_##sct, FERRY_NVME_SC_##sc)

/* Submit one command and wait for its completion; returns the status (SCT << 8 | SC). */
static inline uint16_t h_cmd(struct host *h, int qid, struct ferry_nvme_sqe *sqe,
			     struct ferry_nvme_cqe *out)
{
	struct ferry_nvme_cqe e;
	uint16_t cid = h_submit(h, qid, sqe);
	cr_assert(h_wait(h, qid, &e), "no completion for cid %u on queue %d", cid, qid);
	cr_assert_eq(e.cid, cid, "completion for cid %u, expected %u", e.cid, cid);
	cr_assert_eq(e.sqid, qid);
	if (out)
		*out = e;
	return cqe_st(&e);
}

static inline struct ferry_nvme_sqe h_sqe(uint8_t opc, uint32_t nsid)
{
	struct ferry_nvme_sqe s;
	memset(&s, 0, sizeof(s));
	s.opcode = opc;
	s.nsid = nsid;
	return s;
}

static inline uint16_t h_create_cq(struct host *h, uint16_t qid, uint32_t size, uint64_t base,
				   uint32_t flags, uint16_t iv)
{
	struct ferry_nvme_sqe s = h_sqe(FERRY_NVME_ADM_CREATE_CQ, 0);
	s.dptr.prp.prp1 = base;
	s.cdw10 = qid | ((size - 1) << 16);
	s.cdw11 = flags | ((uint32_t)iv << 16);
	return h_cmd(h, 0, &s, NULL);
}

static inline uint16_t h_create_sq(struct host *h, uint16_t qid, uint32_t size, uint64_t base,
				   uint16_t cqid)
{
	struct ferry_nvme_sqe s = h_sqe(FERRY_NVME_ADM_CREATE_SQ, 0);
	s.dptr.prp.prp1 = base;
	s.cdw10 = qid | ((size - 1) << 16);
	s.cdw11 = 1 | ((uint32_t)cqid << 16);
	return h_cmd(h, 0, &s, NULL);
}

/* Create I/O queue pair qid (SQ qid → CQ qid, vector qid) of size entries. */
static inline void h_ioq(struct host *h, uint16_t qid, uint32_t size)
{
	struct hq *q = &h->q[qid];
	uint64_t bytes_sq = ((uint64_t)size * 64 + HM_PAGE - 1) & ~(uint64_t)(HM_PAGE - 1);
	uint64_t bytes_cq = ((uint64_t)size * 16 + HM_PAGE - 1) & ~(uint64_t)(HM_PAGE - 1);
	q->sq = hm_alloc(h->hm, bytes_sq, HM_PAGE);
	q->cq = hm_alloc(h->hm, bytes_cq, HM_PAGE);
	q->size = size;
	q->tail = q->head = 0;
	q->phase = 1;
	cr_assert_eq(h_create_cq(h, qid, size, q->cq, 3, qid), 0, "create CQ %u", qid);
	cr_assert_eq(h_create_sq(h, qid, size, q->sq, qid), 0, "create SQ %u", qid);
	q->live = 1;
}

/* Bring the controller up: enable with a 32-entry admin queue, create I/O queue 1. */
static inline void h_up(struct host *h, uint32_t ioq_size)
{
	uint32_t csts = h_enable(h, 32, H_CC_DEFAULT);
	cr_assert_eq(csts & (FERRY_NVME_CSTS_RDY | FERRY_NVME_CSTS_CFS), FERRY_NVME_CSTS_RDY);
	if (ioq_size)
		h_ioq(h, 1, ioq_size);
}

/*
 * Describe host buffer [addr, addr + len) with PRPs in @p sqe, building PRP lists (with
 * chaining) in freshly allocated host pages when needed. @p list_entries_per_page < 512
 * forces chaining earlier (lists start near the end of their page).
 */
static inline void h_prp(struct host *h, struct ferry_nvme_sqe *sqe, uint64_t addr, uint64_t len,
			 uint32_t list_entries_per_page)
{
	uint64_t first = HM_PAGE - (addr & (HM_PAGE - 1));
	sqe->flags &= (uint8_t)~(3u << FERRY_NVME_FLAGS_PSDT_SHIFT);
	sqe->dptr.prp.prp1 = addr;
	sqe->dptr.prp.prp2 = 0;
	if (len <= first)
		return;
	uint64_t rem = len - first, next = (addr + first);
	if (rem <= HM_PAGE) {
		sqe->dptr.prp.prp2 = next;
		return;
	}
	uint32_t per = list_entries_per_page ? list_entries_per_page : HM_PAGE / 8;
	uint64_t page = hm_alloc(h->hm, HM_PAGE, HM_PAGE);
	uint64_t slot = page + HM_PAGE - (uint64_t)per * 8; /* list starts @per slots from end */
	sqe->dptr.prp.prp2 = slot;
	uint64_t entries = (rem + HM_PAGE - 1) / HM_PAGE;
	uint32_t left_in_page = per;
	for (uint64_t i = 0; i < entries; i++) {
		if (left_in_page == 1 && i + 1 < entries) {
			uint64_t np = hm_alloc(h->hm, HM_PAGE, HM_PAGE);
			memcpy(hm_ptr(h->hm, slot), &np, 8);
			slot = np;
			left_in_page = HM_PAGE / 8;
		}
		uint64_t e = next + i * HM_PAGE;
		memcpy(hm_ptr(h->hm, slot), &e, 8);
		slot += 8;
		left_in_page--;
	}
}

static inline void h_rw(struct ferry_nvme_sqe *s, uint8_t opc, uint64_t slba, uint32_t nlb)
{
	s->opcode = opc;
	s->nsid = s->nsid ? s->nsid : 1;
	s->cdw10 = (uint32_t)slba;
	s->cdw11 = (uint32_t)(slba >> 32);
	s->cdw12 = nlb - 1;
}

static inline void h_fill(void *p, size_t n, uint64_t seed)
{
	uint8_t *b = p;
	seed ^= 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < n; i++) {
		if ((i & 7) == 0)
			hm_rand(&seed);
		b[i] = (uint8_t)(seed >> ((i & 7) * 8));
	}
}

#endif /* FERRY_TEST_NVME_HOST_H */
