/*
 * The mock RDMA NIC's fault model (ferry_mock_rdma_set_faults()): the n-th work request of a
 * kind failing with a chosen status (SEND, WRITE, READ, RECV), a corrupted rkey on the n-th
 * RDMA operation, a connection dropped after N messages, completions delayed by N polls, a
 * seeded error rate (same seed, same failures); argument checks.
 */
#include <unistd.h>
#include "test_mock_rdma_util.h"

static struct ferry_mock_rdma_faults faults(void)
{
	return (struct ferry_mock_rdma_faults){.size = sizeof(struct ferry_mock_rdma_faults)};
}

/* Buffers: a source and a receive area on each side, a remote region on the server. */
struct fx {
	struct rt t;
	struct rt_buf src, rcv, rem, back;
};

static void fx_open(struct fx *f, const char *args)
{
	rt_open(&f->t, args);
	rt_buf(&f->t, f->t.cd, &f->src, 4096, 0, 1);
	rt_buf(&f->t, f->t.sd, &f->rcv, 4096, FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE, 0);
	rt_buf(&f->t, f->t.sd, &f->rem, 4096, RT_ALL, 2);
	rt_buf(&f->t, f->t.cd, &f->back, 4096, FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE, 0);
}

static void fx_close(struct fx *f)
{
	rt_buf_free(&f->t, &f->src);
	rt_buf_free(&f->t, &f->rcv);
	rt_buf_free(&f->t, &f->rem);
	rt_buf_free(&f->t, &f->back);
	rt_close(&f->t);
}

static void post_recvs(struct fx *f, int n)
{
	for (int i = 0; i < n; i++) {
		struct ferry_hal_rdma_sge s = rt_sge(&f->rcv, (size_t)i * 256, 256);
		cr_assert_eq(f->t.ops->post_recv(f->t.sqp, 0xa0 + (uint64_t)i, &s, 1), 0);
	}
}

static int post(struct fx *f, uint64_t id, uint32_t op)
{
	struct ferry_hal_rdma_sge s = op == FERRY_HAL_RDMA_OP_READ ? rt_sge(&f->back, 0, 64)
								   : rt_sge(&f->src, 0, 64);
	return rt_post1(&f->t, f->t.cqp, id, op, FERRY_HAL_RDMA_WR_F_SIGNALED, &s, 1, f->rem.k.addr,
			f->rem.k.rkey);
}

Test(mock_rdma_faults, fail_nth_send_write_read, .timeout = 30)
{
	const uint32_t ops[3] = {FERRY_HAL_RDMA_OP_SEND, FERRY_HAL_RDMA_OP_WRITE,
				 FERRY_HAL_RDMA_OP_READ};
	for (int k = 0; k < 3; k++) {
		struct fx f;
		fx_open(&f, "");
		struct ferry_mock_rdma_faults fl = faults();
		fl.fail_opcode = ops[k];
		fl.fail_nth = 2;
		fl.fail_status = k == 1 ? -ETIMEDOUT : 0; /* 0: -EIO */
		cr_assert_eq(ferry_mock_rdma_set_faults(f.t.cd, &fl), 0);
		rt_connect(&f.t);
		post_recvs(&f, 4);
		memset(f.rem.p, 0x44, 64);
		cr_assert_eq(post(&f, 1, ops[k]), 0);
		rt_expect(rt_wc(&f.t, f.t.ccq), 1, ops[k], 0);
		/* Another kind does not count. */
		uint32_t other = ops[(k + 1) % 3];
		cr_assert_eq(post(&f, 2, other), 0);
		rt_expect(rt_wc(&f.t, f.t.ccq), 2, other, 0);
		memcpy(f.back.p, "untouched", 9);
		uint8_t rem_before[64];
		memcpy(rem_before, f.rem.p, 64);
		/* Posted together: the failing one and one behind it, which flushes. */
		struct ferry_hal_rdma_sge s = ops[k] == FERRY_HAL_RDMA_OP_READ
						      ? rt_sge(&f.back, 0, 64)
						      : rt_sge(&f.src, 0, 64);
		struct ferry_hal_rdma_wr w4 = {.wr_id = 4,
					       .opcode = ops[k],
					       .flags = FERRY_HAL_RDMA_WR_F_SIGNALED,
					       .sge = &s,
					       .nsge = 1,
					       .rkey = f.rem.k.rkey,
					       .remote_addr = f.rem.k.addr};
		struct ferry_hal_rdma_wr w3 = w4;
		w3.wr_id = 3;
		w3.next = &w4;
		cr_assert_eq(f.t.ops->post_send(f.t.cqp, &w3, NULL), 0);
		cr_assert_eq(post(&f, 5, ops[k]), -ECONNRESET, "the QP is in error already");
		rt_expect(rt_wc(&f.t, f.t.ccq), 3, ops[k], k == 1 ? -ETIMEDOUT : -EIO);
		rt_expect(rt_wc(&f.t, f.t.ccq), 4, ops[k], -ECANCELED);
		if (ops[k] == FERRY_HAL_RDMA_OP_READ)
			cr_assert_eq(memcmp(f.back.p, "untouched", 9), 0, "no data moved");
		if (ops[k] == FERRY_HAL_RDMA_OP_WRITE)
			cr_assert_eq(memcmp(f.rem.p, rem_before, 64), 0, "no data moved");
		cr_assert_eq(f.t.ops->qp_state(f.t.cqp, NULL, NULL), -ECONNRESET);
		cr_assert_eq(rt_until_error(&f.t, f.t.sqp), -ECONNRESET);
		cr_assert_eq(rt_stats(&f.t, f.t.cd).qp_errors, 1);
		fx_close(&f);
	}
}

Test(mock_rdma_faults, fail_nth_recv, .timeout = 30)
{
	struct fx f;
	fx_open(&f, "");
	struct ferry_mock_rdma_faults fl = faults();
	fl.fail_opcode = FERRY_HAL_RDMA_OP_RECV;
	fl.fail_nth = 1;
	fl.fail_status = -EIO;
	cr_assert_eq(ferry_mock_rdma_set_faults(f.t.sd, &fl), 0);
	rt_connect(&f.t);
	memset(f.rcv.p, 0, 256);
	post_recvs(&f, 2);
	cr_assert_eq(post(&f, 1, FERRY_HAL_RDMA_OP_SEND), 0);
	rt_expect(rt_wc(&f.t, f.t.scq), 0xa0, FERRY_HAL_RDMA_OP_RECV, -EIO);
	rt_expect(rt_wc(&f.t, f.t.scq), 0xa1, FERRY_HAL_RDMA_OP_RECV, -ECANCELED);
	rt_expect(rt_wc(&f.t, f.t.ccq), 1, 0, -EREMOTEIO);
	for (int i = 0; i < 256; i++)
		cr_assert_eq(f.rcv.p[i], 0, "receive written at %d", i);
	fx_close(&f);
}

Test(mock_rdma_faults, corrupt_rkey_nth, .timeout = 30)
{
	struct fx f;
	fx_open(&f, "");
	struct ferry_mock_rdma_faults fl = faults();
	fl.corrupt_rkey_nth = 2;
	cr_assert_eq(ferry_mock_rdma_set_faults(f.t.cd, &fl), 0);
	rt_connect(&f.t);
	post_recvs(&f, 2);
	cr_assert_eq(post(&f, 1, FERRY_HAL_RDMA_OP_WRITE), 0);
	rt_expect(rt_wc(&f.t, f.t.ccq), 1, FERRY_HAL_RDMA_OP_WRITE, 0);
	cr_assert_eq(post(&f, 2, FERRY_HAL_RDMA_OP_SEND), 0); /* not an RDMA op: not counted */
	rt_expect(rt_wc(&f.t, f.t.ccq), 2, FERRY_HAL_RDMA_OP_SEND, 0);
	cr_assert_eq(post(&f, 3, FERRY_HAL_RDMA_OP_READ), 0);
	rt_expect(rt_wc(&f.t, f.t.ccq), 3, 0, -EREMOTEIO);
	cr_assert_eq(rt_until_error(&f.t, f.t.sqp), -ECONNRESET);
	fx_close(&f);
}

Test(mock_rdma_faults, drop_after_messages, .timeout = 30)
{
	struct fx f;
	fx_open(&f, "");
	struct ferry_mock_rdma_faults fl = faults();
	fl.drop_after_msgs = 2;
	cr_assert_eq(ferry_mock_rdma_set_faults(f.t.cd, &fl), 0);
	rt_connect(&f.t);
	post_recvs(&f, 4);
	cr_assert_eq(post(&f, 1, FERRY_HAL_RDMA_OP_SEND), 0);
	rt_expect(rt_wc(&f.t, f.t.ccq), 1, FERRY_HAL_RDMA_OP_SEND, 0);
	cr_assert_eq(post(&f, 2, FERRY_HAL_RDMA_OP_WRITE), 0);
	rt_expect(rt_wc(&f.t, f.t.ccq), 2, FERRY_HAL_RDMA_OP_WRITE, 0);
	cr_assert_eq(post(&f, 3, FERRY_HAL_RDMA_OP_SEND), 0);
	rt_expect(rt_wc(&f.t, f.t.ccq), 3, 0, -ECANCELED);
	cr_assert_eq(f.t.ops->qp_state(f.t.cqp, NULL, NULL), -ECONNRESET);
	rt_expect(rt_wc(&f.t, f.t.scq), 0xa0, FERRY_HAL_RDMA_OP_RECV, 0);
	rt_expect(rt_wc(&f.t, f.t.scq), 0xa1, FERRY_HAL_RDMA_OP_RECV, -ECANCELED);
	cr_assert_eq(f.t.ops->qp_state(f.t.sqp, NULL, NULL), -ECONNRESET);
	fx_close(&f);
}

Test(mock_rdma_faults, delay_polls, .timeout = 30)
{
	struct fx f;
	fx_open(&f, "");
	struct ferry_mock_rdma_faults fl = faults();
	fl.delay_polls = 3;
	cr_assert_eq(ferry_mock_rdma_set_faults(f.t.sd, &fl), 0);
	rt_connect(&f.t);
	post_recvs(&f, 1);
	cr_assert_eq(post(&f, 1, FERRY_HAL_RDMA_OP_SEND), 0); /* sent by post_send's progress */
	usleep(20000);
	struct ferry_hal_rdma_wc wc;
	/* Poll 1 applies the SEND; its completion shows at poll 4. */
	for (int i = 1; i <= 3; i++)
		cr_assert_eq(f.t.ops->cq_poll(f.t.scq, &wc, 1), 0, "poll %d", i);
	cr_assert_eq(f.t.ops->cq_wait(f.t.scq, 1000), 0, "something to poll");
	cr_assert_eq(f.t.ops->cq_poll(f.t.scq, &wc, 1), 1);
	rt_expect(wc, 0xa0, FERRY_HAL_RDMA_OP_RECV, 0);
	fx_close(&f);
}

/* Index of the first send work request failing with error_ppm = 300000 and @p seed. */
static int first_failure(uint64_t seed)
{
	struct fx f;
	fx_open(&f, "");
	struct ferry_mock_rdma_faults fl = faults();
	fl.error_ppm = 300000;
	fl.seed = seed;
	cr_assert_eq(ferry_mock_rdma_set_faults(f.t.cd, &fl), 0);
	rt_connect(&f.t);
	int i;
	for (i = 1; i < 100; i++) {
		cr_assert_eq(post(&f, (uint64_t)i, FERRY_HAL_RDMA_OP_WRITE), 0);
		struct ferry_hal_rdma_wc wc = rt_wc(&f.t, f.t.ccq);
		cr_assert_eq(wc.wr_id, (uint64_t)i);
		if (wc.status) {
			cr_assert_eq(wc.status, -EIO);
			break;
		}
	}
	fx_close(&f);
	return i;
}

Test(mock_rdma_faults, error_ppm_seeded, .timeout = 60)
{
	int a = first_failure(7), b = first_failure(7);
	cr_assert_lt(a, 100, "30%% failing: one fails");
	cr_assert_eq(a, b, "same seed, same failure");
	int differs = 0;
	for (uint64_t s = 8; s < 14 && !differs; s++)
		differs = first_failure(s) != a;
	cr_assert(differs, "other seeds, other failures");

	struct fx f;
	fx_open(&f, "");
	struct ferry_mock_rdma_faults fl = faults();
	fl.error_ppm = 1000000;
	cr_assert_eq(ferry_mock_rdma_set_faults(f.t.cd, &fl), 0);
	rt_connect(&f.t);
	cr_assert_eq(post(&f, 1, FERRY_HAL_RDMA_OP_READ), 0);
	rt_expect(rt_wc(&f.t, f.t.ccq), 1, 0, -EIO);
	fx_close(&f);
}

Test(mock_rdma_faults, set_faults_checks, .timeout = 30)
{
	struct ferry_device *dev;
	cr_assert_eq(ferry_device_open("mock", "", &dev), 0);
	struct ferry_mock_rdma_faults fl = faults();
	cr_assert_eq(ferry_mock_rdma_set_faults(dev, &fl), 0);
	cr_assert_eq(ferry_mock_rdma_set_faults(NULL, &fl), -EINVAL);
	cr_assert_eq(ferry_mock_rdma_set_faults(dev, NULL), -EINVAL);
	fl.size = 1;
	cr_assert_eq(ferry_mock_rdma_set_faults(dev, &fl), -EINVAL);
	fl = faults();
	fl.fail_nth = 1;
	fl.fail_opcode = 7;
	cr_assert_eq(ferry_mock_rdma_set_faults(dev, &fl), -EINVAL);
	fl = faults();
	fl.fail_status = 5;
	cr_assert_eq(ferry_mock_rdma_set_faults(dev, &fl), -EINVAL);
	fl = faults();
	fl.error_ppm = 1000001;
	cr_assert_eq(ferry_mock_rdma_set_faults(dev, &fl), -EINVAL);
	ferry_device_close(dev);
	cr_assert_eq(ferry_device_open("mock", "rdma=0", &dev), 0);
	fl = faults();
	cr_assert_eq(ferry_mock_rdma_set_faults(dev, &fl), -EINVAL, "RDMA off");
	ferry_device_close(dev);
}
