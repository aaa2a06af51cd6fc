/*
 * What the tests of the HAL's RDMA part (ferry/hal/rdma.h) share, whichever backend they run
 * on (the mock RDMA NIC: tests/unit/mock/test_mock_rdma*.c; the rxe backend:
 * tests/unit/rxe/): the monotonic clock of their bounded waits, the access flags of a region
 * open to every access, a QP attribute block, and a registration whose keys are checked.
 * Header-only (each test_*.c is its own executable).
 */
#ifndef TEST_RDMA_UTIL_H
#define TEST_RDMA_UTIL_H

#include <criterion/criterion.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <ferry/ferry.h>
#include <ferry/hal/rdma.h>

/* LOCAL_WRITE | REMOTE_READ | REMOTE_WRITE. */
#define TEST_RDMA_ACCESS_ALL                                                                       \
	(FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE | FERRY_HAL_RDMA_ACCESS_REMOTE_READ |                   \
	 FERRY_HAL_RDMA_ACCESS_REMOTE_WRITE)

/* CLOCK_MONOTONIC in milliseconds. */
static inline uint64_t test_rdma_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* QP attributes on @p cq with context @p ctx: @p depth send and receive work requests, 4 SGEs
 * each way, @p max_inline inline bytes, 4 RDMA READs in flight each way. */
static inline struct ferry_hal_rdma_qp_attr
test_rdma_qp_attr(struct ferry_hal_rdma_cq *cq, void *ctx, uint32_t depth, uint32_t max_inline)
{
	return (struct ferry_hal_rdma_qp_attr){.size = sizeof(struct ferry_hal_rdma_qp_attr),
					       .cq = cq,
					       .max_send_wr = depth,
					       .max_recv_wr = depth,
					       .max_send_sge = 4,
					       .max_recv_sge = 4,
					       .max_inline = max_inline,
					       .initiator_depth = 4,
					       .responder_resources = 4,
					       .ctx = ctx};
}

/* Registers @p len bytes at @p p on @p dev with @p access; the region's keys in *@p k, which
 * must name exactly that range. */
static inline struct ferry_hal_rdma_mr *test_rdma_reg(const struct ferry_hal_rdma_ops *ops,
						      struct ferry_device *dev, void *p, size_t len,
						      uint32_t access,
						      struct ferry_hal_rdma_mr_keys *k)
{
	struct ferry_hal_rdma_mr *m = NULL;
	int rc = ops->mr_reg(dev, p, len, access, &m);
	cr_assert_eq(rc, 0, "mr_reg %zu: %d (%s)", len, rc, ferry_last_error());
	ops->mr_keys(m, k);
	cr_assert_eq(k->addr, (uint64_t)(uintptr_t)p);
	cr_assert_eq(k->len, len);
	return m;
}

#endif /* TEST_RDMA_UTIL_H */
