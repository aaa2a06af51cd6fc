/*
 * Helpers of the mock RDMA NIC tests: two mock devices (a server and a client, as two NICs
 * on one wire), a listener, a CQ each, the connection step, bounded waits that poll both CQs
 * (mock QPs progress while their CQ is polled), and registered buffers with a pattern.
 * Header-only (each test_*.c is its own executable). Every wait is bounded.
 */
#ifndef TEST_MOCK_RDMA_UTIL_H
#define TEST_MOCK_RDMA_UTIL_H

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ferry/ferry.h>
#include <ferry/mock.h>
#include <ferry/hal/hal.h>
#include <ferry/hal/rdma.h>
#include "test_rdma_util.h"

#define RT_RW (FERRY_MOCK_IOMMU_READ | FERRY_MOCK_IOMMU_WRITE)
#define RT_ALL TEST_RDMA_ACCESS_ALL

struct rt {
	struct ferry_device *sd, *cd; /* server, client */
	const struct ferry_hal_rdma_ops *ops;
	struct ferry_hal_rdma_listener *l;
	char addr[64];
	struct ferry_hal_rdma_cq *scq, *ccq;
	struct ferry_hal_rdma_qp *sqp, *cqp;
	int sctx, cctx; /* their addresses are the QPs' ctx */
};

static inline struct ferry_hal_rdma_qp_attr rt_attr(struct ferry_hal_rdma_cq *cq, void *ctx)
{
	return test_rdma_qp_attr(cq, ctx, 64, 64);
}

/* Both devices with @p args (server) / @p cargs (client), a listener on a free port, CQs. */
static inline void rt_open2(struct rt *t, const char *args, const char *cargs)
{
	memset(t, 0, sizeof(*t));
	cr_assert_eq(ferry_device_open("mock", args, &t->sd), 0, "%s", args);
	cr_assert_eq(ferry_device_open("mock", cargs, &t->cd), 0, "%s", cargs);
	t->ops = ferry_hal_dev_get_backend(t->sd)->nic->rdma;
	cr_assert_not_null(t->ops);
	cr_assert_eq(t->ops->listen(t->sd, "127.0.0.1:0", 8, &t->l), 0);
	cr_assert_eq(t->ops->listener_addr(t->l, t->addr, sizeof(t->addr)), 0);
	cr_assert_eq(t->ops->cq_create(t->sd, 256, &t->scq), 0);
	cr_assert_eq(t->ops->cq_create(t->cd, 256, &t->ccq), 0);
}

static inline void rt_open(struct rt *t, const char *args)
{
	rt_open2(t, args, args);
}

/* Progress both sides once (polling for nothing leaves completions where they are). */
static inline void rt_pump(struct rt *t)
{
	if (t->scq)
		cr_assert_geq(t->ops->cq_poll(t->scq, NULL, 0), 0);
	if (t->ccq)
		cr_assert_geq(t->ops->cq_poll(t->ccq, NULL, 0), 0);
}

/* The next server-side request (pumping the client meanwhile), within 5 s. */
static inline struct ferry_hal_rdma_req *rt_request(struct rt *t, const void **pd, uint32_t *pl)
{
	struct ferry_hal_rdma_req *req = NULL;
	uint64_t end = test_rdma_now_ms() + 5000;
	for (;;) {
		int rc = t->ops->get_request(t->l, &req, pd, pl);
		if (rc == 0)
			return req;
		cr_assert_eq(rc, -EAGAIN);
		cr_assert_lt(test_rdma_now_ms(), end, "no connection request came");
		rt_pump(t);
	}
}

/* Client QP state once it left -EINPROGRESS (within 5 s). */
static inline int rt_cstate(struct rt *t, const void **pd, uint32_t *pl)
{
	uint64_t end = test_rdma_now_ms() + 5000;
	for (;;) {
		int st = t->ops->qp_state(t->cqp, pd, pl);
		if (st != -EINPROGRESS)
			return st;
		cr_assert_lt(test_rdma_now_ms(), end, "the connection stayed in progress");
		rt_pump(t);
	}
}

/* Connect, accept and wait until established (no private data). */
static inline void rt_connect(struct rt *t)
{
	struct ferry_hal_rdma_qp_attr ca = rt_attr(t->ccq, &t->cctx);
	struct ferry_hal_rdma_qp_attr sa = rt_attr(t->scq, &t->sctx);
	cr_assert_eq(t->ops->connect(t->cd, t->addr, &ca, NULL, 0, 5000, &t->cqp), 0);
	struct ferry_hal_rdma_req *req = rt_request(t, NULL, NULL);
	cr_assert_eq(t->ops->accept(req, &sa, NULL, 0, &t->sqp), 0);
	cr_assert_eq(rt_cstate(t, NULL, NULL), 0);
	cr_assert_eq(t->ops->qp_state(t->sqp, NULL, NULL), 0);
}

/* One completion of @p cq (pumping the other side), within 5 s. */
static inline struct ferry_hal_rdma_wc rt_wc(struct rt *t, struct ferry_hal_rdma_cq *cq)
{
	struct ferry_hal_rdma_wc wc;
	uint64_t end = test_rdma_now_ms() + 5000;
	for (;;) {
		int n = t->ops->cq_poll(cq, &wc, 1);
		cr_assert_geq(n, 0);
		if (n == 1)
			return wc;
		cr_assert_lt(test_rdma_now_ms(), end, "no completion came");
		struct ferry_hal_rdma_cq *other = cq == t->scq ? t->ccq : t->scq;
		if (other)
			cr_assert_geq(t->ops->cq_poll(other, NULL, 0), 0);
	}
}

/* Nothing on @p cq for @p ms of pumping both sides. */
static inline void rt_no_wc(struct rt *t, struct ferry_hal_rdma_cq *cq, uint32_t ms)
{
	struct ferry_hal_rdma_wc wc;
	uint64_t end = test_rdma_now_ms() + ms;
	while (test_rdma_now_ms() < end) {
		cr_assert_eq(t->ops->cq_poll(cq, &wc, 1), 0,
			     "unexpected completion wr_id 0x%llx "
			     "status %d",
			     (unsigned long long)wc.wr_id, wc.status);
		struct ferry_hal_rdma_cq *other = cq == t->scq ? t->ccq : t->scq;
		if (other)
			cr_assert_geq(t->ops->cq_poll(other, NULL, 0), 0);
	}
}

static inline void rt_expect(struct ferry_hal_rdma_wc wc, uint64_t wr_id, uint32_t opcode,
			     int status)
{
	cr_assert_eq(wc.wr_id, wr_id, "wr_id 0x%llx, expected 0x%llx", (unsigned long long)wc.wr_id,
		     (unsigned long long)wr_id);
	cr_assert_eq(wc.status, status, "wr 0x%llx: status %d, expected %d",
		     (unsigned long long)wr_id, wc.status, status);
	if (status == 0)
		cr_assert_eq(wc.opcode, opcode, "wr 0x%llx: opcode %u", (unsigned long long)wr_id,
			     wc.opcode);
}

/* Wait until @p qp leaves the established state (pumping both sides); its state. */
static inline int rt_until_error(struct rt *t, struct ferry_hal_rdma_qp *qp)
{
	uint64_t end = test_rdma_now_ms() + 5000;
	for (;;) {
		int st = t->ops->qp_state(qp, NULL, NULL);
		if (st != 0 && st != -EINPROGRESS)
			return st;
		cr_assert_lt(test_rdma_now_ms(), end, "the QP stayed up");
		rt_pump(t);
	}
}

static inline void rt_close(struct rt *t)
{
	t->ops->qp_destroy(t->cqp);
	t->ops->qp_destroy(t->sqp);
	t->ops->cq_destroy(t->ccq);
	t->ops->cq_destroy(t->scq);
	t->ops->listener_close(t->l);
	ferry_device_close(t->cd);
	ferry_device_close(t->sd);
}

/* A registered buffer of @p len bytes filled with a pattern of @p seed. */
struct rt_buf {
	uint8_t *p;
	size_t len;
	struct ferry_hal_rdma_mr *mr;
	struct ferry_hal_rdma_mr_keys k;
};

static inline void rt_fill(uint8_t *p, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)((i * 131u + seed * 7u + (i >> 8)) ^ seed);
}

static inline void rt_buf(struct rt *t, struct ferry_device *dev, struct rt_buf *b, size_t len,
			  uint32_t access, uint32_t seed)
{
	b->p = malloc(len);
	cr_assert_not_null(b->p);
	b->len = len;
	rt_fill(b->p, len, seed);
	b->mr = test_rdma_reg(t->ops, dev, b->p, len, access, &b->k);
	cr_assert_neq(b->k.lkey, 0);
	cr_assert_neq(b->k.rkey, 0);
}

static inline void rt_buf_free(struct rt *t, struct rt_buf *b)
{
	t->ops->mr_dereg(b->mr);
	free(b->p);
}

static inline struct ferry_hal_rdma_sge rt_sge(const struct rt_buf *b, size_t off, uint32_t len)
{
	return (struct ferry_hal_rdma_sge){.addr = b->k.addr + off, .len = len, .lkey = b->k.lkey};
}

static inline int rt_post1(struct rt *t, struct ferry_hal_rdma_qp *qp, uint64_t wr_id, uint32_t op,
			   uint32_t flags, const struct ferry_hal_rdma_sge *sge, uint32_t nsge,
			   uint64_t raddr, uint32_t rkey)
{
	struct ferry_hal_rdma_wr wr = {.wr_id = wr_id,
				       .opcode = op,
				       .flags = flags,
				       .sge = sge,
				       .nsge = nsge,
				       .rkey = rkey,
				       .remote_addr = raddr};
	const struct ferry_hal_rdma_wr *bad = NULL;
	return t->ops->post_send(qp, &wr, &bad);
}

static inline struct ferry_hal_rdma_stats rt_stats(struct rt *t, struct ferry_device *dev)
{
	struct ferry_hal_rdma_stats st;
	cr_assert_eq(t->ops->rdma_stats(dev, &st), 0);
	return st;
}

#endif /* TEST_MOCK_RDMA_UTIL_H */
