/*
 * A raw NVMe-oF/RDMA host for the "rdma" target transport tests, written with the HAL RDMA ops
 * of the mock device (ferry/hal/rdma.h): connect with RDMA_CM private data, SEND command
 * capsules, expose a registered data area for the target's RDMA READ / WRITE, receive the
 * response capsules. The target runs in the test's thread: every wait of the host polls the
 * transport and its own CQ (mock QPs progress only while their CQ is polled), bounded by a
 * deadline. Included by tests/unit/target/test_rdma_*.c.
 */
#ifndef TEST_RDMA_HOST_H
#define TEST_RDMA_HOST_H

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ferry/bdev.h>
#include <ferry/bdev_malloc.h>
#include <ferry/device.h>
#include <ferry/hal/hal.h>
#include <ferry/hal/rdma.h>
#include <ferry/log.h>
#include <ferry/nvme.h>
#include <ferry/nvmf_rdma_spec.h>
#include <ferry/nvmf_spec.h>
#include <ferry/rdma_transport.h>
#include <ferry/transport.h>
#include <ferry/module/rdma.h>

#define RH_NQN "nqn.2026-12.io.ferry:rdma-test"
#define RH_HOSTNQN "nqn.2014-08.org.nvmexpress:uuid:ferry-rdma-test-host"
#define RH_BLOCKS 4096u /* 512-byte blocks: 2 MiB */
#define RH_WAIT_NS 5000000000ull
#define RH_RECVS 64u
#define RH_SLOT 16384u     /* one capsule slot: 64-byte SQE + up to 16320 bytes */
#define RH_CAPS 32u        /* capsule slots */
#define RH_DATA (1u << 20) /* data area */
#define RH_RECV_OFF 0u
#define RH_CAP_OFF (RH_RECVS * 64u)
#define RH_DATA_OFF (RH_CAP_OFF + RH_CAPS * RH_SLOT)
#define RH_MEM (RH_DATA_OFF + RH_DATA)

struct rh_tgt {
	struct ferry_device *dev;
	const struct ferry_hal_rdma_ops *rd;
	struct ferry_transport *t;
	struct ferry_nvme_subsystem *ss;
	struct ferry_bdev *bdev;
	char addr[64];
	struct ferry_transport_pg *pgs[4]; /* poll groups rh_poll() polls too */
	int npgs;
};
static struct rh_tgt RT;

struct rh_cqe_q {
	struct ferry_nvme_cqe e[256];
	uint32_t n;
};

struct rh_host {
	struct ferry_hal_rdma_cq *cq;
	struct ferry_hal_rdma_qp *qp;
	struct ferry_hal_rdma_mr *mr;
	struct ferry_hal_rdma_mr_keys k;
	uint8_t *mem;
	uint16_t cid;
	uint16_t cntlid;
	uint16_t crqsize;
	uint16_t rej_sts; /* the reject status of a refused connect */
	uint32_t cap_next;
	int err;           /* a failed work completion (its status) */
	struct rh_cqe_q q; /* responses received, not taken yet */
};

static uint64_t rh_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

__attribute__((unused)) static void rh_tgt_up(const char *args)
{
	memset(&RT, 0, sizeof(RT));
	cr_assert_eq(ferry_device_open("mock", "", &RT.dev), 0, "%s", ferry_last_error());
	const struct ferry_hal_backend *b = ferry_hal_dev_get_backend(RT.dev);
	cr_assert(b && b->nic && b->nic->rdma, "the mock device has no RDMA part");
	RT.rd = b->nic->rdma;
	struct ferry_bdev_malloc_opts mo = {.size = sizeof(mo),
					    .name = "rh_malloc",
					    .block_size = 512,
					    .num_blocks = RH_BLOCKS};
	cr_assert_eq(ferry_bdev_malloc_create(&mo, &RT.bdev), 0);
	struct ferry_nvme_subsystem_opts so = {.size = sizeof(so),
					       .nqn = RH_NQN,
					       .serial = "FERRYRDMA"};
	cr_assert_eq(ferry_nvme_subsystem_create(&so, &RT.ss), 0);
	struct ferry_nvme_ns_opts no = {.size = sizeof(no), .bdev = RT.bdev, .nsid = 1};
	cr_assert_eq(ferry_nvme_subsystem_add_ns(RT.ss, &no, NULL), 0);
	struct ferry_transport_opts to = {.size = sizeof(to),
					  .device = RT.dev,
					  .args = args ? args : "buffers=256,idle_us=0"};
	int rc = ferry_transport_create("rdma", &to, &RT.t);
	cr_assert_eq(rc, 0, "create rdma: %d (%s)", rc, ferry_last_error());
	cr_assert_eq(ferry_transport_listen(RT.t, RT.ss, "127.0.0.1:0"), 0, "%s",
		     ferry_last_error());
	cr_assert_eq(ferry_rdma_transport_get_listen_addr(RT.t, 0, RT.addr, sizeof(RT.addr)), 0);
	cr_assert_neq(strcmp(RT.addr, "127.0.0.1:0"), 0, "port 0 not resolved: %s", RT.addr);
}

__attribute__((unused)) static void rh_tgt_down(void)
{
	ferry_transport_destroy(RT.t);
	cr_assert_eq(ferry_nvme_subsystem_destroy(RT.ss), 0, "a controller was left behind");
	ferry_bdev_destroy(RT.bdev);
	ferry_device_close(RT.dev);
}

static void rh_post_recv(struct rh_host *h, uint32_t i)
{
	struct ferry_hal_rdma_sge sge = {.addr = h->k.addr + RH_RECV_OFF + i * 64u,
					 .len = 64,
					 .lkey = h->k.lkey};
	cr_assert_eq(RT.rd->post_recv(h->qp, i, &sge, 1), 0);
}

/* One round: the target's poll and the host's CQ. */
static void rh_poll(struct rh_host *h)
{
	ferry_transport_poll(RT.t, 0);
	for (int i = 0; i < RT.npgs; i++)
		ferry_transport_pg_poll(RT.pgs[i], 0);
	if (!h || !h->cq)
		return;
	struct ferry_hal_rdma_wc wc[16];
	int n = RT.rd->cq_poll(h->cq, wc, 16);
	for (int i = 0; i < n; i++) {
		if (wc[i].status) {
			if (!h->err)
				h->err = wc[i].status;
			continue;
		}
		if (wc[i].opcode != FERRY_HAL_RDMA_OP_RECV)
			continue;
		cr_assert_eq(wc[i].byte_len, sizeof(struct ferry_nvme_cqe),
			     "a response of %u bytes", wc[i].byte_len);
		cr_assert_lt(h->q.n, 256u);
		uint32_t slot = (uint32_t)wc[i].wr_id;
		memcpy(&h->q.e[h->q.n++], h->mem + RH_RECV_OFF + slot * 64u,
		       sizeof(struct ferry_nvme_cqe));
		if (h->qp) {
			/* the target may have ended the connection right after this response
			 * (Disconnect, teardown): a repost on a dead QP is no failure here */
			struct ferry_hal_rdma_sge sge = {.addr = h->k.addr + RH_RECV_OFF +
								 slot * 64u,
							 .len = 64,
							 .lkey = h->k.lkey};
			int rc = RT.rd->post_recv(h->qp, slot, &sge, 1);
			cr_assert(rc == 0 || RT.rd->qp_state(h->qp, NULL, NULL) != 0,
				  "post_recv on a live QP: %d", rc);
		}
	}
}

static void rh_mem(struct rh_host *h)
{
	if (h->mem)
		return;
	h->mem = aligned_alloc(4096, RH_MEM);
	cr_assert(h->mem);
	memset(h->mem, 0, RH_MEM);
	cr_assert_eq(RT.rd->mr_reg(RT.dev, h->mem, RH_MEM,
				   FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE |
					   FERRY_HAL_RDMA_ACCESS_REMOTE_READ |
					   FERRY_HAL_RDMA_ACCESS_REMOTE_WRITE,
				   &h->mr),
		     0);
	RT.rd->mr_keys(h->mr, &h->k);
	cr_assert_eq(RT.rd->cq_create(RT.dev, 1024, &h->cq), 0);
}

/*
 * Connects with @p pdata (@p len bytes). Returns the QP state: 0 established (crqsize in
 * h->crqsize), -ECONNREFUSED (h->rej_sts), another errno.
 */
static int rh_connect_raw(struct rh_host *h, const void *pdata, uint32_t len)
{
	rh_mem(h);
	h->cid = 1;
	h->err = 0;
	h->q.n = 0;
	h->rej_sts = 0;
	struct ferry_hal_rdma_qp_attr a = {.size = sizeof(a),
					   .cq = h->cq,
					   .max_send_wr = 256,
					   .max_recv_wr = RH_RECVS,
					   .max_send_sge = 4,
					   .max_recv_sge = 1,
					   .initiator_depth = 4,
					   .responder_resources = 16};
	cr_assert_eq(RT.rd->connect(RT.dev, RT.addr, &a, pdata, len, 3000, &h->qp), 0, "%s",
		     ferry_last_error());
	for (uint32_t i = 0; i < RH_RECVS; i++)
		rh_post_recv(h, i);
	uint64_t end = rh_now() + RH_WAIT_NS;
	int st;
	const void *pd = NULL;
	uint32_t pl = 0;
	while ((st = RT.rd->qp_state(h->qp, &pd, &pl)) == -EINPROGRESS && rh_now() < end)
		rh_poll(h);
	if (st == 0) {
		struct ferry_nvmf_rdma_cm_rep rep;
		cr_assert_eq(ferry_nvmf_rdma_cm_rep_parse(pd, pl, &rep), 0, "accept private data");
		h->crqsize = rep.crqsize;
	} else if (st == -ECONNREFUSED) {
		cr_assert_eq(ferry_nvmf_rdma_cm_rej_parse(pd, pl, &h->rej_sts), 0,
			     "reject private data (%u bytes)", pl);
		RT.rd->qp_destroy(h->qp);
		h->qp = NULL;
	}
	return st;
}

static int rh_connect_qp(struct rh_host *h, uint16_t qid, uint16_t hsqsize)
{
	uint8_t pd[32];
	size_t n = ferry_nvmf_rdma_cm_req_build(pd, sizeof(pd), qid, (uint16_t)(hsqsize + 1),
						hsqsize);
	cr_assert_eq(n, 32);
	return rh_connect_raw(h, pd, (uint32_t)n);
}

static void rh_close(struct rh_host *h)
{
	if (h->qp)
		RT.rd->qp_destroy(h->qp);
	h->qp = NULL;
}

static void rh_free(struct rh_host *h)
{
	rh_close(h);
	if (h->cq)
		RT.rd->cq_destroy(h->cq);
	if (h->mr)
		RT.rd->mr_dereg(h->mr);
	free(h->mem);
	memset(h, 0, sizeof(*h));
}

/* The data area (registered, remote read/write). */
static uint8_t *rh_data(struct rh_host *h, uint32_t off)
{
	return h->mem + RH_DATA_OFF + off;
}

static struct ferry_nvmf_rdma_kdesc rh_kd(struct rh_host *h, uint32_t off, uint32_t len)
{
	struct ferry_nvmf_rdma_kdesc d = {.addr = h->k.addr + RH_DATA_OFF + off,
					  .len = len,
					  .key = h->k.rkey};
	return d;
}

/* SENDs a capsule: @p sqe and @p icd_len bytes after it. */
static void rh_send(struct rh_host *h, const struct ferry_nvme_sqe *sqe, const void *icd,
		    uint32_t icd_len)
{
	cr_assert_leq(icd_len, RH_SLOT - 64u);
	uint32_t slot = h->cap_next++ % RH_CAPS;
	uint8_t *p = h->mem + RH_CAP_OFF + slot * RH_SLOT;
	memcpy(p, sqe, 64);
	if (icd_len)
		memcpy(p + 64, icd, icd_len);
	struct ferry_hal_rdma_sge sge = {.addr = h->k.addr + RH_CAP_OFF + slot * RH_SLOT,
					 .len = 64 + icd_len,
					 .lkey = h->k.lkey};
	struct ferry_hal_rdma_wr w = {.wr_id = 1000 + slot,
				      .opcode = FERRY_HAL_RDMA_OP_SEND,
				      .flags = FERRY_HAL_RDMA_WR_F_SIGNALED,
				      .sge = &sge,
				      .nsge = 1};
	cr_assert_eq(RT.rd->post_send(h->qp, &w, NULL), 0);
}

/* Waits for the response of @p cid: its 15-bit status, -1 when none came (h->err may say
 * why). */
static int rh_wait(struct rh_host *h, uint16_t cid, struct ferry_nvme_cqe *out)
{
	uint64_t end = rh_now() + RH_WAIT_NS;
	for (;;) {
		for (uint32_t i = 0; i < h->q.n; i++) {
			if (h->q.e[i].cid != cid)
				continue;
			struct ferry_nvme_cqe e = h->q.e[i];
			memmove(&h->q.e[i], &h->q.e[i + 1], (h->q.n - i - 1) * sizeof(e));
			h->q.n--;
			if (out)
				*out = e;
			return e.status >> 1;
		}
		if (h->err || rh_now() > end || !h->qp)
			return -1;
		rh_poll(h);
	}
}

/* The data pointer for @p n keyed descriptors (the list, for n > 1, in the capsule). Returns
 * the in-capsule bytes to send (the descriptor list) in @p icd. */
static uint32_t rh_sgl_keyed(struct ferry_nvme_sqe *s, void *icd, uint32_t cap,
			     const struct ferry_nvmf_rdma_kdesc *d, uint32_t n)
{
	uint32_t used = 0;
	cr_assert_eq(ferry_nvmf_rdma_sgl_build(s, icd, cap, d, n, &used), 0);
	return used;
}

static int rh_cmd_keyed(struct rh_host *h, struct ferry_nvme_sqe *s,
			const struct ferry_nvmf_rdma_kdesc *d, uint32_t n,
			struct ferry_nvme_cqe *out)
{
	uint8_t icd[16 * FERRY_NVMF_RDMA_SGL_MAX];
	uint32_t used = rh_sgl_keyed(s, icd, sizeof(icd), d, n);
	rh_send(h, s, icd, used);
	return rh_wait(h, s->cid, out);
}

static int rh_cmd_icd(struct rh_host *h, struct ferry_nvme_sqe *s, const void *data, uint32_t len,
		      struct ferry_nvme_cqe *out)
{
	ferry_nvmf_rdma_sgl_build_icd(s, len);
	rh_send(h, s, data, len);
	return rh_wait(h, s->cid, out);
}

/* Connect on the connected QP: qid 0 (admin, dynamic cntlid) or an I/O queue of h->cntlid;
 * the Connect data by keyed SGL (@p icd 0) or in the capsule. Status. */
static int rh_fabrics_connect(struct rh_host *h, uint16_t qid, uint16_t sqsize, int icd)
{
	struct ferry_nvmf_connect_cmd c = {0};
	c.opcode = FERRY_NVMF_OPC_FABRICS;
	c.fctype = FERRY_NVMF_FCTYPE_CONNECT;
	c.cid = h->cid++;
	c.qid = qid;
	c.sqsize = sqsize;
	c.kato = qid ? 0 : 30000;
	struct ferry_nvmf_connect_data d = {0};
	memset(d.hostid, 0x5a, sizeof(d.hostid));
	d.cntlid = qid ? h->cntlid : 0xffff;
	snprintf(d.subnqn, sizeof(d.subnqn), "%s", RH_NQN);
	snprintf(d.hostnqn, sizeof(d.hostnqn), "%s", RH_HOSTNQN);
	struct ferry_nvme_sqe *s = (struct ferry_nvme_sqe *)(void *)&c;
	struct ferry_nvme_cqe r;
	int st;
	if (icd) {
		st = rh_cmd_icd(h, s, &d, sizeof(d), &r);
	} else {
		memcpy(rh_data(h, RH_DATA - 4096), &d, sizeof(d));
		struct ferry_nvmf_rdma_kdesc k = rh_kd(h, RH_DATA - 4096, sizeof(d));
		st = rh_cmd_keyed(h, s, &k, 1, &r);
	}
	if (st == 0 && qid == 0)
		h->cntlid = (uint16_t)r.dw0;
	return st;
}

static int rh_prop(struct rh_host *h, int set, uint32_t off, uint32_t size, uint64_t *val)
{
	struct ferry_nvmf_prop_set_cmd c = {0};
	c.opcode = FERRY_NVMF_OPC_FABRICS;
	c.fctype = set ? FERRY_NVMF_FCTYPE_PROPERTY_SET : FERRY_NVMF_FCTYPE_PROPERTY_GET;
	c.cid = h->cid++;
	c.attrib = size == 8 ? 1 : 0;
	c.offset = off;
	if (set)
		c.value = *val;
	struct ferry_nvme_sqe *s = (struct ferry_nvme_sqe *)(void *)&c;
	s->flags = (uint8_t)(1u << 6);
	struct ferry_nvme_cqe r;
	int st = rh_cmd_keyed(h, s, NULL, 0, &r);
	if (!set && st == 0)
		*val = (uint64_t)r.dw0 | ((uint64_t)r.dw1 << 32);
	return st;
}

/* CC.EN = 1 and wait for CSTS.RDY. */
static void rh_enable(struct rh_host *h)
{
	uint64_t cap = 0;
	cr_assert_eq(rh_prop(h, 0, FERRY_NVME_REG_CAP, 8, &cap), 0);
	cr_assert_gt(cap & 0xffff, 0, "CAP.MQES");
	uint64_t cc = FERRY_NVME_CC_EN | (6u << 16) | (4u << 20);
	cr_assert_eq(rh_prop(h, 1, FERRY_NVME_REG_CC, 4, &cc), 0);
	uint64_t csts = 0;
	for (int i = 0; i < 1000 && !(csts & FERRY_NVME_CSTS_RDY); i++) {
		cr_assert_eq(rh_prop(h, 0, FERRY_NVME_REG_CSTS, 4, &csts), 0);
		rh_poll(h);
	}
	cr_assert(csts & FERRY_NVME_CSTS_RDY, "CSTS.RDY never set");
}

/* Admin queue up: RDMA connect (qid 0, 32 entries), Connect, enable. */
static void rh_admin_up(struct rh_host *h)
{
	cr_assert_eq(rh_connect_qp(h, 0, 31), 0, "admin connect refused (sts %u)", h->rej_sts);
	cr_assert_eq(h->crqsize, 32);
	cr_assert_eq(rh_fabrics_connect(h, 0, 31, 0), 0);
	rh_enable(h);
}

/* I/O queue @p qid of @p admin's controller: RDMA connect, Connect (data in the capsule). */
static void rh_io_up(struct rh_host *h, const struct rh_host *admin, uint16_t qid)
{
	cr_assert_eq(rh_connect_qp(h, qid, 63), 0, "I/O connect refused (sts %u)", h->rej_sts);
	h->cntlid = admin->cntlid;
	cr_assert_eq(rh_fabrics_connect(h, qid, 63, 1), 0);
}

static void rh_rw(struct ferry_nvme_sqe *s, uint16_t cid, int write, uint64_t lba, uint32_t nblocks)
{
	memset(s, 0, sizeof(*s));
	s->opcode = write ? FERRY_NVME_CMD_WRITE : FERRY_NVME_CMD_READ;
	s->cid = cid;
	s->nsid = 1;
	s->cdw10 = (uint32_t)lba;
	s->cdw11 = (uint32_t)(lba >> 32);
	s->cdw12 = nblocks - 1;
}

static void rh_pattern(uint8_t *p, uint32_t len, uint32_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)((i * 131u + seed * 7u) ^ (i >> 9));
}

/* Polls until @p cond or the deadline. */
#define RH_UNTIL(h, cond)                                                                          \
	do {                                                                                       \
		uint64_t end_ = rh_now() + RH_WAIT_NS;                                             \
		while (!(cond) && rh_now() < end_)                                                 \
			rh_poll(h);                                                                \
	} while (0)

static struct ferry_rdma_transport_totals rh_totals(void)
{
	struct ferry_rdma_transport_totals t = {.size = sizeof(t)};
	cr_assert_eq(ferry_rdma_transport_get_totals(RT.t, &t), 0);
	return t;
}

/* An admin queue @p a and I/O queue 1 @p q of one association. */
static inline void rh_io_pair(struct rh_host *a, struct rh_host *q)
{
	memset(a, 0, sizeof(*a));
	memset(q, 0, sizeof(*q));
	rh_admin_up(a);
	rh_io_up(q, a, 1);
}

/* A write then a read of 8 blocks at LBA 16 work on @p q (pattern @p seed): the queue is
 * alive and serves keyed data both ways. */
static inline void rh_queue_works(struct rh_host *q, uint32_t seed)
{
	uint8_t *d = rh_data(q, 0);
	rh_pattern(d, 4096, seed);
	struct ferry_nvme_sqe s;
	rh_rw(&s, q->cid++, 1, 16, 8);
	struct ferry_nvmf_rdma_kdesc k = rh_kd(q, 0, 4096);
	cr_assert_eq(rh_cmd_keyed(q, &s, &k, 1, NULL), 0, "write on a queue that must be alive");
	memset(rh_data(q, 65536), 0, 4096);
	rh_rw(&s, q->cid++, 0, 16, 8);
	k = rh_kd(q, 65536, 4096);
	cr_assert_eq(rh_cmd_keyed(q, &s, &k, 1, NULL), 0);
	cr_assert_eq(memcmp(rh_data(q, 65536), d, 4096), 0);
}

#endif /* TEST_RDMA_HOST_H */
