/*
 * The mock RDMA NIC (backends/mock/mock_rdma*.c) at the HAL level, two mock devices on
 * loopback: query and arguments; the connection manager (private data both ways, reject with
 * private data, nothing listening, no answer, bad addresses); SEND/RECV integrity with several
 * SGEs, inline and zero-length, receive too small, no receive (RNR); RDMA WRITE/READ integrity
 * with SGEs and canaries around the remote range; refused remote accesses (bad rkey, out of
 * bounds, no permission) failing exactly that request with both QPs in error and the rest
 * flushed; a bad lkey; accesses after mr_dereg; qp_destroy with outstanding requests; the
 * counters.
 */
#include "test_mock_rdma_util.h"

Test(mock_rdma, query_args, .timeout = 30)
{
	struct ferry_device *dev;
	struct ferry_hal_rdma_info info;
	struct ferry_hal_nic_info ni;
	cr_assert_eq(ferry_device_open("mock", "", &dev), 0);
	const struct ferry_hal_nic_ops *nic = ferry_hal_dev_get_backend(dev)->nic;
	cr_assert_not_null(nic->rdma);
	cr_assert_eq(nic->rdma->abi_version, FERRY_HAL_RDMA_ABI_VERSION);
	cr_assert_eq(nic->query(dev, &ni), 0);
	cr_assert(ni.caps & FERRY_HAL_NIC_CAP_RDMA);
	cr_assert_eq(nic->rdma->query(dev, &info), 0);
	cr_assert_eq(strcmp(info.name, ferry_device_get_name(dev)), 0);
	cr_assert_geq(info.max_sge, 2);
	cr_assert_geq(info.max_qp_wr, 64);
	cr_assert_geq(info.max_cqe, 256);
	cr_assert_geq(info.max_qp_rd_atom, 1);
	cr_assert_geq(info.max_qp_init_rd_atom, 1);
	cr_assert_eq(info.max_inline, 256);
	cr_assert_eq(info.ndomains, 1);
	char name[96];
	snprintf(name, sizeof(name), "%s.nic", ferry_device_get_name(dev));
	cr_assert_eq(info.domains[0], ferry_memdomain_lookup(name));
	ferry_device_close(dev);

	cr_assert_eq(ferry_device_open("mock", "functions=nvme", &dev), 0);
	cr_assert_eq(nic->rdma->query(dev, &info), 0);
	cr_assert_eq(info.ndomains, 0, "no nic function: local memory only");
	ferry_device_close(dev);

	cr_assert_eq(ferry_device_open("mock", "rdma=0", &dev), 0);
	cr_assert_eq(nic->query(dev, &ni), 0);
	cr_assert_eq(ni.caps & FERRY_HAL_NIC_CAP_RDMA, 0);
	cr_assert_eq(nic->rdma->query(dev, &info), -ENODEV);
	struct ferry_hal_rdma_cq *cq;
	cr_assert_eq(nic->rdma->cq_create(dev, 16, &cq), -ENODEV);
	ferry_device_close(dev);

	const char *bad[] = {"rdma=2", "rdma_rnr_ms=0", "rdma_rnr_ms=60001", "rdma_seed=x",
			     "rdma=1,rdmax=1"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(ferry_device_open("mock", bad[i], &dev), -EINVAL, "%s", bad[i]);
}

Test(mock_rdma, cm_private_data_both_ways, .timeout = 30)
{
	struct rt t;
	rt_open(&t, "");
	const char req_pd[] = "host->target queue parameters 0123456789012345678901";
	const char rep_pd[] = "target->host: accepted";
	cr_assert_leq(sizeof(req_pd), FERRY_HAL_RDMA_PDATA_MAX);
	struct ferry_hal_rdma_qp_attr ca = rt_attr(t.ccq, &t.cctx), sa = rt_attr(t.scq, &t.sctx);
	cr_assert_eq(t.ops->connect(t.cd, t.addr, &ca, req_pd, sizeof(req_pd), 5000, &t.cqp), 0);
	const void *pd;
	uint32_t pl;
	cr_assert_eq(t.ops->qp_state(t.cqp, NULL, NULL), -EINPROGRESS);
	struct ferry_hal_rdma_req *req = rt_request(&t, &pd, &pl);
	cr_assert_eq(pl, sizeof(req_pd));
	cr_assert_eq(memcmp(pd, req_pd, pl), 0);
	struct ferry_hal_rdma_req *none = NULL;
	cr_assert_eq(t.ops->get_request(t.l, &none, NULL, NULL), -EAGAIN, "one request only");
	cr_assert_eq(t.ops->accept(req, &sa, rep_pd, sizeof(rep_pd), &t.sqp), 0);
	cr_assert_eq(t.ops->qp_state(t.sqp, NULL, NULL), 0, "passive side established at accept");
	cr_assert_eq(rt_cstate(&t, &pd, &pl), 0);
	cr_assert_eq(pl, sizeof(rep_pd));
	cr_assert_eq(memcmp(pd, rep_pd, pl), 0);

	/* Addresses cross over. */
	char cl[64], cp[64], sl[64], sp[64];
	cr_assert_eq(t.ops->qp_addr(t.cqp, 0, cl, sizeof(cl)), 0);
	cr_assert_eq(t.ops->qp_addr(t.cqp, 1, cp, sizeof(cp)), 0);
	cr_assert_eq(t.ops->qp_addr(t.sqp, 0, sl, sizeof(sl)), 0);
	cr_assert_eq(t.ops->qp_addr(t.sqp, 1, sp, sizeof(sp)), 0);
	cr_assert_str_eq(cp, t.addr);
	cr_assert_str_eq(sl, t.addr);
	cr_assert_str_eq(cl, sp);
	cr_assert_eq(t.ops->qp_addr(t.cqp, 0, cl, 4), -ENOBUFS);
	cr_assert_eq(t.ops->listener_addr(t.l, cl, 4), -ENOBUFS);

	/* Private data too long, bad attributes. */
	struct ferry_hal_rdma_qp *q2;
	uint8_t big[FERRY_HAL_RDMA_PDATA_MAX + 1] = {0};
	cr_assert_eq(t.ops->connect(t.cd, t.addr, &ca, big, sizeof(big), 100, &q2), -EINVAL);
	struct ferry_hal_rdma_qp_attr bad = ca;
	bad.size = 0;
	cr_assert_eq(t.ops->connect(t.cd, t.addr, &bad, NULL, 0, 100, &q2), -EINVAL);
	bad = ca;
	bad.cq = t.scq; /* the other device's CQ */
	cr_assert_eq(t.ops->connect(t.cd, t.addr, &bad, NULL, 0, 100, &q2), -EINVAL);
	bad = ca;
	bad.max_send_sge = 17;
	cr_assert_eq(t.ops->connect(t.cd, t.addr, &bad, NULL, 0, 100, &q2), -EINVAL);
	rt_close(&t);
}

Test(mock_rdma, reject_with_private_data, .timeout = 30)
{
	struct rt t;
	rt_open(&t, "");
	struct ferry_hal_rdma_qp_attr ca = rt_attr(t.ccq, &t.cctx);
	cr_assert_eq(t.ops->connect(t.cd, t.addr, &ca, "hi", 2, 5000, &t.cqp), 0);
	uint8_t buf[16];
	struct rt_buf b;
	rt_buf(&t, t.cd, &b, 64, RT_ALL, 1);
	struct ferry_hal_rdma_sge s = rt_sge(&b, 0, 64);
	cr_assert_eq(t.ops->post_recv(t.cqp, 0x77, &s, 1), 0, "receives post while connecting");
	cr_assert_eq(rt_post1(&t, t.cqp, 1, FERRY_HAL_RDMA_OP_SEND, 0, &s, 1, 0, 0), -ENOTCONN);
	const void *pd;
	uint32_t pl;
	struct ferry_hal_rdma_req *req = rt_request(&t, &pd, &pl);
	cr_assert_eq(pl, 2);
	const char why[] = "no such subsystem";
	t.ops->reject(req, why, sizeof(why));
	cr_assert_eq(rt_cstate(&t, &pd, &pl), -ECONNREFUSED);
	cr_assert_eq(pl, sizeof(why));
	cr_assert_eq(memcmp(pd, why, pl), 0);
	rt_expect(rt_wc(&t, t.ccq), 0x77, FERRY_HAL_RDMA_OP_RECV, -ECANCELED);
	cr_assert_eq(t.ops->qp_state(t.cqp, NULL, NULL), -ECONNREFUSED, "sticky");
	cr_assert_eq(t.ops->post_recv(t.cqp, 0x78, &s, 1), -ECONNRESET);
	(void)buf;
	rt_buf_free(&t, &b);

	/* Rejected without private data; then a listener closing with a request pending. */
	t.ops->qp_destroy(t.cqp);
	cr_assert_eq(t.ops->connect(t.cd, t.addr, &ca, NULL, 0, 5000, &t.cqp), 0);
	req = rt_request(&t, &pd, &pl);
	cr_assert_eq(pl, 0);
	cr_assert_null(pd);
	t.ops->reject(req, NULL, 0);
	cr_assert_eq(rt_cstate(&t, &pd, &pl), -ECONNREFUSED);
	cr_assert_eq(pl, 0);
	rt_close(&t);
}

Test(mock_rdma, connect_to_nobody_and_timeouts, .timeout = 30)
{
	struct rt t;
	rt_open(&t, "");
	char dead[64];
	snprintf(dead, sizeof(dead), "%s", t.addr);
	t.ops->listener_close(t.l);
	t.l = NULL;
	struct ferry_hal_rdma_qp_attr ca = rt_attr(t.ccq, &t.cctx);
	cr_assert_eq(t.ops->connect(t.cd, dead, &ca, NULL, 0, 2000, &t.cqp), 0);
	cr_assert_eq(rt_cstate(&t, NULL, NULL), -ECONNREFUSED);
	t.ops->qp_destroy(t.cqp);
	t.cqp = NULL;

	/* A listener nobody serves: the request is never answered. */
	cr_assert_eq(t.ops->listen(t.sd, "127.0.0.1:0", 4, &t.l), 0);
	cr_assert_eq(t.ops->listener_addr(t.l, t.addr, sizeof(t.addr)), 0);
	uint64_t t0 = test_rdma_now_ms();
	cr_assert_eq(t.ops->connect(t.cd, t.addr, &ca, NULL, 0, 150, &t.cqp), 0);
	struct ferry_hal_rdma_qp *cqp = t.cqp;
	uint64_t end = test_rdma_now_ms() + 5000;
	int st;
	while ((st = t.ops->qp_state(cqp, NULL, NULL)) == -EINPROGRESS) {
		cr_assert_lt(test_rdma_now_ms(), end);
		cr_assert_geq(t.ops->cq_wait(t.ccq, 10000), -ETIMEDOUT);
	}
	cr_assert_eq(st, -ETIMEDOUT);
	cr_assert_geq(test_rdma_now_ms() - t0, 140);

	/* The address already taken; bad address strings. */
	struct ferry_hal_rdma_listener *l2;
	cr_assert_eq(t.ops->listen(t.sd, t.addr, 4, &l2), -EADDRINUSE);
	const char *bad[] = {"127.0.0.1", "127.0.0.1:", "127.0.0.1:70000", "localhost:4420",
			     "1.2.3:5",   ":4420",      "127.0.0.1:44x"};
	struct ferry_hal_rdma_qp *q;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(t.ops->listen(t.sd, bad[i], 4, &l2), -EINVAL, "%s", bad[i]);
		cr_assert_eq(t.ops->connect(t.cd, bad[i], &ca, NULL, 0, 100, &q), -EINVAL, "%s",
			     bad[i]);
	}
	cr_assert_eq(t.ops->cq_wait(t.ccq, 20000), -ETIMEDOUT, "nothing to wait for");
	rt_close(&t);
}

Test(mock_rdma, send_recv_sges_inline, .timeout = 30)
{
	struct rt t;
	rt_open(&t, "");
	rt_connect(&t);
	struct rt_buf src, dst;
	rt_buf(&t, t.cd, &src, 8192, 0, 3);
	rt_buf(&t, t.sd, &dst, 8192 + 64, FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE, 0);
	memset(dst.p, 0xee, dst.len);
	/* Receive: 100 + 4000 + rest, a canary after. */
	struct ferry_hal_rdma_sge rs[3] = {rt_sge(&dst, 0, 100), rt_sge(&dst, 100, 4000),
					   rt_sge(&dst, 4100, 4092)};
	cr_assert_eq(t.ops->post_recv(t.sqp, 0xa1, rs, 3), 0);
	struct ferry_hal_rdma_sge ss[3] = {rt_sge(&src, 0, 1), rt_sge(&src, 1, 5000),
					   rt_sge(&src, 5001, 2000)};
	cr_assert_eq(rt_post1(&t, t.cqp, 0xb1, FERRY_HAL_RDMA_OP_SEND, FERRY_HAL_RDMA_WR_F_SIGNALED,
			      ss, 3, 0, 0),
		     0);
	struct ferry_hal_rdma_wc wc = rt_wc(&t, t.scq);
	rt_expect(wc, 0xa1, FERRY_HAL_RDMA_OP_RECV, 0);
	cr_assert_eq(wc.byte_len, 7001);
	cr_assert_eq(wc.qp_ctx, &t.sctx);
	cr_assert_eq(memcmp(dst.p, src.p, 7001), 0);
	for (size_t i = 7001; i < dst.len; i++)
		cr_assert_eq(dst.p[i], 0xee, "byte %zu past the message written", i);
	wc = rt_wc(&t, t.ccq);
	rt_expect(wc, 0xb1, FERRY_HAL_RDMA_OP_SEND, 0);
	cr_assert_eq(wc.qp_ctx, &t.cctx);

	/* Inline from unregistered memory, changed after post; an unsignaled send; 0 bytes. */
	char msg[40] = "inline capsule of forty bytes..........";
	struct ferry_hal_rdma_sge is[2] = {{.addr = (uintptr_t)msg, .len = 10},
					   {.addr = (uintptr_t)msg + 10, .len = 30}};
	cr_assert_eq(t.ops->post_recv(t.sqp, 0xa2, rs, 1), 0);
	cr_assert_eq(t.ops->post_recv(t.sqp, 0xa3, rs + 1, 1), 0);
	cr_assert_eq(t.ops->post_recv(t.sqp, 0xa4, rs + 2, 1), 0);
	cr_assert_eq(rt_post1(&t, t.cqp, 0xb2, FERRY_HAL_RDMA_OP_SEND,
			      FERRY_HAL_RDMA_WR_F_INLINE | FERRY_HAL_RDMA_WR_F_SIGNALED, is, 2, 0,
			      0),
		     0);
	char sent[40];
	memcpy(sent, msg, sizeof(sent));
	memset(msg, 'X', sizeof(msg));
	cr_assert_eq(rt_post1(&t, t.cqp, 0xb3, FERRY_HAL_RDMA_OP_SEND, 0, ss, 1, 0, 0), 0);
	cr_assert_eq(rt_post1(&t, t.cqp, 0xb4, FERRY_HAL_RDMA_OP_SEND, FERRY_HAL_RDMA_WR_F_SIGNALED,
			      NULL, 0, 0, 0),
		     0);
	wc = rt_wc(&t, t.scq);
	rt_expect(wc, 0xa2, FERRY_HAL_RDMA_OP_RECV, 0);
	cr_assert_eq(wc.byte_len, 40);
	cr_assert_eq(memcmp(dst.p, sent, 40), 0, "inline data as it was at post");
	wc = rt_wc(&t, t.scq);
	rt_expect(wc, 0xa3, FERRY_HAL_RDMA_OP_RECV, 0);
	cr_assert_eq(wc.byte_len, 1);
	cr_assert_eq(dst.p[100], src.p[0]);
	wc = rt_wc(&t, t.scq);
	rt_expect(wc, 0xa4, FERRY_HAL_RDMA_OP_RECV, 0);
	cr_assert_eq(wc.byte_len, 0);
	rt_expect(rt_wc(&t, t.ccq), 0xb2, FERRY_HAL_RDMA_OP_SEND, 0);
	rt_expect(rt_wc(&t, t.ccq), 0xb4, FERRY_HAL_RDMA_OP_SEND, 0); /* 0xb3 was unsignaled */
	rt_no_wc(&t, t.ccq, 20);

	/* Malformed requests: nothing posted. */
	struct ferry_hal_rdma_sge many[5] = {0};
	cr_assert_eq(rt_post1(&t, t.cqp, 1, FERRY_HAL_RDMA_OP_RECV, 0, ss, 1, 0, 0), -EINVAL);
	cr_assert_eq(rt_post1(&t, t.cqp, 1, FERRY_HAL_RDMA_OP_SEND, 0, many, 5, 0, 0), -EINVAL);
	struct ferry_hal_rdma_sge big = {.addr = (uintptr_t)src.p, .len = 65, .lkey = 0};
	cr_assert_eq(rt_post1(&t, t.cqp, 1, FERRY_HAL_RDMA_OP_SEND, FERRY_HAL_RDMA_WR_F_INLINE,
			      &big, 1, 0, 0),
		     -EINVAL, "inline above the QP's max_inline");
	cr_assert_eq(rt_post1(&t, t.cqp, 1, FERRY_HAL_RDMA_OP_READ, FERRY_HAL_RDMA_WR_F_INLINE, ss,
			      1, 0, 0),
		     -EINVAL);
	cr_assert_eq(t.ops->post_recv(t.sqp, 1, many, 5), -EINVAL);

	/* A list: the bad one and what follows are not posted. */
	struct ferry_hal_rdma_wr w2 = {.wr_id = 0xc2, .opcode = 9};
	struct ferry_hal_rdma_wr w1 = {.wr_id = 0xc1,
				       .opcode = FERRY_HAL_RDMA_OP_SEND,
				       .flags = FERRY_HAL_RDMA_WR_F_SIGNALED,
				       .sge = ss,
				       .nsge = 1,
				       .next = &w2};
	const struct ferry_hal_rdma_wr *badwr = NULL;
	cr_assert_eq(t.ops->post_recv(t.sqp, 0xa5, rs, 3), 0);
	cr_assert_eq(t.ops->post_send(t.cqp, &w1, &badwr), -EINVAL);
	cr_assert_eq(badwr, &w2);
	rt_expect(rt_wc(&t, t.scq), 0xa5, FERRY_HAL_RDMA_OP_RECV, 0);
	rt_expect(rt_wc(&t, t.ccq), 0xc1, FERRY_HAL_RDMA_OP_SEND, 0);

	struct ferry_hal_rdma_stats cs = rt_stats(&t, t.cd), ss_ = rt_stats(&t, t.sd);
	cr_assert_eq(cs.sends, 5);
	cr_assert_eq(cs.send_bytes, 7001 + 40 + 1 + 0 + 1);
	cr_assert_eq(ss_.recvs, 5);
	cr_assert_eq(ss_.recv_bytes, 7001 + 40 + 1 + 0 + 1);
	cr_assert_eq(cs.wc_errors + ss_.wc_errors, 0);
	cr_assert_eq(cs.mr_regs, 1);
	rt_buf_free(&t, &src);
	rt_buf_free(&t, &dst);
	rt_close(&t);
}

Test(mock_rdma, receive_too_small, .timeout = 30)
{
	struct rt t;
	rt_open(&t, "");
	rt_connect(&t);
	struct rt_buf src, dst;
	rt_buf(&t, t.cd, &src, 4096, 0, 5);
	rt_buf(&t, t.sd, &dst, 4096, FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE, 0);
	memset(dst.p, 0x5a, dst.len);
	struct ferry_hal_rdma_sge rs[2] = {rt_sge(&dst, 0, 100), rt_sge(&dst, 200, 100)};
	cr_assert_eq(t.ops->post_recv(t.sqp, 0xa1, rs, 2), 0);
	cr_assert_eq(t.ops->post_recv(t.sqp, 0xa2, rs, 2), 0);
	struct ferry_hal_rdma_sge ss = rt_sge(&src, 0, 201);
	cr_assert_eq(t.ops->post_recv(t.cqp, 0xd1, &ss, 1), 0);
	cr_assert_eq(rt_post1(&t, t.cqp, 0xb1, FERRY_HAL_RDMA_OP_SEND, 0, &ss, 1, 0, 0), 0);
	cr_assert_eq(rt_post1(&t, t.cqp, 0xb2, FERRY_HAL_RDMA_OP_SEND, FERRY_HAL_RDMA_WR_F_SIGNALED,
			      &ss, 1, 0, 0),
		     0);
	rt_expect(rt_wc(&t, t.scq), 0xa1, FERRY_HAL_RDMA_OP_RECV, -EMSGSIZE);
	rt_expect(rt_wc(&t, t.scq), 0xa2, FERRY_HAL_RDMA_OP_RECV, -ECANCELED);
	rt_expect(rt_wc(&t, t.ccq), 0xb1, FERRY_HAL_RDMA_OP_SEND, -EREMOTEIO);
	/* The client's other work requests flush, in order. */
	struct ferry_hal_rdma_wc a = rt_wc(&t, t.ccq), b = rt_wc(&t, t.ccq);
	if (a.wr_id == 0xd1) {
		struct ferry_hal_rdma_wc x = a;
		a = b;
		b = x;
	}
	rt_expect(a, 0xb2, FERRY_HAL_RDMA_OP_SEND, -ECANCELED);
	rt_expect(b, 0xd1, FERRY_HAL_RDMA_OP_RECV, -ECANCELED);
	for (size_t i = 0; i < dst.len; i++)
		cr_assert_eq(dst.p[i], 0x5a, "byte %zu written by a refused message", i);
	cr_assert_eq(t.ops->qp_state(t.sqp, NULL, NULL), -ECONNRESET);
	cr_assert_eq(t.ops->qp_state(t.cqp, NULL, NULL), -ECONNRESET);
	cr_assert_eq(t.ops->post_recv(t.sqp, 1, rs, 1), -ECONNRESET);
	cr_assert_eq(rt_post1(&t, t.cqp, 1, FERRY_HAL_RDMA_OP_SEND, 0, &ss, 1, 0, 0), -ECONNRESET);
	rt_no_wc(&t, t.ccq, 20);
	rt_no_wc(&t, t.scq, 20);
	cr_assert_eq(rt_stats(&t, t.sd).qp_errors, 1);
	cr_assert_eq(rt_stats(&t, t.cd).qp_errors, 1);
	cr_assert_eq(rt_stats(&t, t.cd).wc_errors, 3);
	rt_buf_free(&t, &src);
	rt_buf_free(&t, &dst);
	rt_close(&t);
}

Test(mock_rdma, rnr_no_receive_posted, .timeout = 30)
{
	struct rt t;
	rt_open(&t, "rdma_rnr_ms=30");
	rt_connect(&t);
	struct rt_buf src, dst;
	rt_buf(&t, t.cd, &src, 64, 0, 5);
	rt_buf(&t, t.sd, &dst, 64, FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE, 0);
	struct ferry_hal_rdma_sge ss = rt_sge(&src, 0, 64), rs = rt_sge(&dst, 0, 64);

	/* A receive posted within the hold time: delivered. */
	cr_assert_eq(rt_post1(&t, t.cqp, 0xb1, FERRY_HAL_RDMA_OP_SEND, FERRY_HAL_RDMA_WR_F_SIGNALED,
			      &ss, 1, 0, 0),
		     0);
	rt_pump(&t);
	rt_pump(&t);
	cr_assert_eq(t.ops->post_recv(t.sqp, 0xa1, &rs, 1), 0);
	rt_expect(rt_wc(&t, t.scq), 0xa1, FERRY_HAL_RDMA_OP_RECV, 0);
	rt_expect(rt_wc(&t, t.ccq), 0xb1, FERRY_HAL_RDMA_OP_SEND, 0);

	/* None: -ENOBUFS at the sender after the hold, its QP errors, the peer sees it. */
	uint64_t t0 = test_rdma_now_ms();
	cr_assert_eq(rt_post1(&t, t.cqp, 0xb2, FERRY_HAL_RDMA_OP_SEND, 0, &ss, 1, 0, 0), 0);
	cr_assert_eq(rt_post1(&t, t.cqp, 0xb3, FERRY_HAL_RDMA_OP_SEND, FERRY_HAL_RDMA_WR_F_SIGNALED,
			      &ss, 1, 0, 0),
		     0);
	rt_expect(rt_wc(&t, t.ccq), 0xb2, FERRY_HAL_RDMA_OP_SEND, -ENOBUFS);
	cr_assert_geq(test_rdma_now_ms() - t0, 25);
	rt_expect(rt_wc(&t, t.ccq), 0xb3, FERRY_HAL_RDMA_OP_SEND, -ECANCELED);
	cr_assert_eq(t.ops->qp_state(t.cqp, NULL, NULL), -ECONNRESET);
	cr_assert_eq(rt_until_error(&t, t.sqp), -ECONNRESET);
	rt_buf_free(&t, &src);
	rt_buf_free(&t, &dst);
	rt_close(&t);
}

Test(mock_rdma, write_read_sges_canaries, .timeout = 30)
{
	struct rt t;
	rt_open(&t, "");
	rt_connect(&t);
	struct rt_buf loc, rem, back;
	rt_buf(&t, t.cd, &loc, 3 * 4096, 0, 7);
	rt_buf(&t, t.sd, &rem, 5 * 4096,
	       FERRY_HAL_RDMA_ACCESS_REMOTE_WRITE | FERRY_HAL_RDMA_ACCESS_REMOTE_READ, 0);
	rt_buf(&t, t.cd, &back, 3 * 4096, FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE, 0);
	memset(rem.p, 0xc5, rem.len);
	memset(back.p, 0, back.len);
	/* WRITE 9000 bytes from 2 SGEs at remote offset 4096 + 7. */
	struct ferry_hal_rdma_sge ws[2] = {rt_sge(&loc, 3, 5000), rt_sge(&loc, 6000, 4000)};
	uint64_t raddr = rem.k.addr + 4096 + 7;
	cr_assert_eq(rt_post1(&t, t.cqp, 0xe1, FERRY_HAL_RDMA_OP_WRITE,
			      FERRY_HAL_RDMA_WR_F_SIGNALED, ws, 2, raddr, rem.k.rkey),
		     0);
	rt_expect(rt_wc(&t, t.ccq), 0xe1, FERRY_HAL_RDMA_OP_WRITE, 0);
	cr_assert_eq(memcmp(rem.p + 4103, loc.p + 3, 5000), 0);
	cr_assert_eq(memcmp(rem.p + 4103 + 5000, loc.p + 6000, 4000), 0);
	for (size_t i = 0; i < rem.len; i++)
		if (i < 4103 || i >= 4103 + 9000)
			cr_assert_eq(rem.p[i], 0xc5, "canary byte %zu written", i);
	rt_no_wc(&t, t.scq, 10); /* a WRITE completes nothing at the responder */

	/* READ it back into 3 SGEs; a fenced READ after a WRITE. */
	struct ferry_hal_rdma_sge bs[3] = {rt_sge(&back, 0, 1), rt_sge(&back, 100, 4999),
					   rt_sge(&back, 8000, 4000)};
	cr_assert_eq(rt_post1(&t, t.cqp, 0xe2, FERRY_HAL_RDMA_OP_READ, FERRY_HAL_RDMA_WR_F_SIGNALED,
			      bs, 3, raddr, rem.k.rkey),
		     0);
	rt_expect(rt_wc(&t, t.ccq), 0xe2, FERRY_HAL_RDMA_OP_READ, 0);
	cr_assert_eq(back.p[0], loc.p[3]);
	cr_assert_eq(memcmp(back.p + 100, loc.p + 4, 4999), 0);
	cr_assert_eq(memcmp(back.p + 8000, loc.p + 6000, 4000), 0);
	cr_assert_eq(back.p[1], 0);
	cr_assert_eq(back.p[99], 0);

	/* Many in flight (more READs than the initiator depth), in order. */
	for (uint64_t i = 0; i < 20; i++) {
		struct ferry_hal_rdma_sge one = rt_sge(&back, i * 16, 16);
		cr_assert_eq(rt_post1(&t, t.cqp, 0x100 + i,
				      i % 2 ? FERRY_HAL_RDMA_OP_READ : FERRY_HAL_RDMA_OP_WRITE,
				      FERRY_HAL_RDMA_WR_F_SIGNALED |
					      (i == 10 ? FERRY_HAL_RDMA_WR_F_FENCE : 0),
				      &one, 1, rem.k.addr + i * 16, rem.k.rkey),
			     0);
	}
	for (uint64_t i = 0; i < 20; i++)
		rt_expect(rt_wc(&t, t.ccq), 0x100 + i,
			  i % 2 ? FERRY_HAL_RDMA_OP_READ : FERRY_HAL_RDMA_OP_WRITE, 0);
	struct ferry_hal_rdma_stats st = rt_stats(&t, t.cd);
	cr_assert_eq(st.writes, 11);
	cr_assert_eq(st.reads, 11);
	cr_assert_eq(st.write_bytes, 9000 + 10 * 16);
	cr_assert_eq(st.read_bytes, 9000 + 10 * 16);
	rt_buf_free(&t, &loc);
	rt_buf_free(&t, &rem);
	rt_buf_free(&t, &back);
	rt_close(&t);
}

/* One refused remote access per case: exactly that request fails -EREMOTEIO, both QPs go to
 * the error state, everything else flushes, no byte moves. */
Test(mock_rdma, remote_access_refused, .timeout = 60)
{
	for (int c = 0; c < 6; c++) {
		struct rt t;
		rt_open(&t, "");
		rt_connect(&t);
		struct rt_buf loc, rem, ro;
		rt_buf(&t, t.cd, &loc, 8192, FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE, 9);
		rt_buf(&t, t.sd, &rem, 4096,
		       FERRY_HAL_RDMA_ACCESS_REMOTE_WRITE | FERRY_HAL_RDMA_ACCESS_REMOTE_READ, 0);
		rt_buf(&t, t.sd, &ro, 4096, FERRY_HAL_RDMA_ACCESS_REMOTE_READ, 0);
		memset(rem.p, 0x11, rem.len);
		memset(ro.p, 0x22, ro.len);
		memset(loc.p, 0x33, loc.len);
		struct rt_buf sr;
		rt_buf(&t, t.sd, &sr, 64, FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE, 0);
		struct ferry_hal_rdma_sge rs = rt_sge(&sr, 0, 64);
		cr_assert_eq(t.ops->post_recv(t.sqp, 0xa1, &rs, 1), 0);
		uint32_t op = c % 2 ? FERRY_HAL_RDMA_OP_READ : FERRY_HAL_RDMA_OP_WRITE;
		uint64_t addr = rem.k.addr;
		uint32_t rkey = rem.k.rkey, len = 100;
		const char *what;
		switch (c) {
		case 0:
		case 1:
			rkey ^= 0x100;
			what = "bad rkey";
			break;
		case 2:
		case 3:
			addr += 4000; /* 100 bytes from 4000 leave the 4096-byte region */
			what = "out of bounds";
			break;
		case 4:
			addr = ro.k.addr;
			rkey = ro.k.rkey;
			what = "WRITE to a read-only region";
			break;
		default:
			addr = rem.k.addr - 1;
			what = "READ from before the region";
			break;
		}
		struct ferry_hal_rdma_sge ls = rt_sge(&loc, 0, len);
		struct ferry_hal_rdma_sge s2 = rt_sge(&loc, 4096, 16);
		cr_assert_eq(rt_post1(&t, t.cqp, 0xe0, FERRY_HAL_RDMA_OP_SEND, 0, &s2, 1, 0, 0), 0);
		cr_assert_eq(rt_post1(&t, t.cqp, 0xe1, op, 0, &ls, 1, addr, rkey), 0);
		cr_assert_eq(rt_post1(&t, t.cqp, 0xe2, FERRY_HAL_RDMA_OP_WRITE,
				      FERRY_HAL_RDMA_WR_F_SIGNALED, &s2, 1, rem.k.addr, rem.k.rkey),
			     0);
		cr_assert_eq(rt_post1(&t, t.cqp, 0xe3, FERRY_HAL_RDMA_OP_SEND, 0, &s2, 1, 0, 0), 0);
		rt_expect(rt_wc(&t, t.ccq), 0xe1, op, -EREMOTEIO);
		rt_expect(rt_wc(&t, t.ccq), 0xe2, 0, -ECANCELED);
		rt_expect(rt_wc(&t, t.ccq), 0xe3, 0, -ECANCELED);
		rt_no_wc(&t, t.ccq, 10);
		/* The server received the first SEND, then went to the error state itself. */
		rt_expect(rt_wc(&t, t.scq), 0xa1, FERRY_HAL_RDMA_OP_RECV, 0);
		cr_assert_eq(t.ops->qp_state(t.cqp, NULL, NULL), -ECONNRESET, "%s", what);
		cr_assert_eq(rt_until_error(&t, t.sqp), -ECONNRESET, "%s", what);
		for (size_t i = 0; i < 4096; i++) {
			cr_assert_eq(rem.p[i], 0x11, "%s: remote byte %zu written", what, i);
			cr_assert_eq(ro.p[i], 0x22, "%s: read-only byte %zu written", what, i);
			cr_assert_eq(loc.p[i], 0x33, "%s: local byte %zu written", what, i);
		}
		cr_assert_eq(rt_stats(&t, t.sd).qp_errors, 1, "%s", what);
		rt_buf_free(&t, &loc);
		rt_buf_free(&t, &rem);
		rt_buf_free(&t, &ro);
		rt_buf_free(&t, &sr);
		rt_close(&t);
	}
}

Test(mock_rdma, bad_lkey_fails_locally, .timeout = 30)
{
	struct rt t;
	rt_open(&t, "");
	rt_connect(&t);
	struct rt_buf loc, rem, ro;
	rt_buf(&t, t.cd, &loc, 4096, FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE, 1);
	rt_buf(&t, t.cd, &ro, 4096, 0, 2); /* no LOCAL_WRITE */
	rt_buf(&t, t.sd, &rem, 4096, RT_ALL, 3);
	uint8_t before[4096];
	memcpy(before, ro.p, sizeof(before));
	/* A READ into a region without LOCAL_WRITE. */
	struct ferry_hal_rdma_sge s = rt_sge(&ro, 0, 64);
	cr_assert_eq(rt_post1(&t, t.cqp, 0xf1, FERRY_HAL_RDMA_OP_READ, 0, &s, 1, rem.k.addr,
			      rem.k.rkey),
		     0);
	rt_expect(rt_wc(&t, t.ccq), 0xf1, 0, -EIO);
	cr_assert_eq(memcmp(ro.p, before, sizeof(before)), 0);
	cr_assert_eq(t.ops->qp_state(t.cqp, NULL, NULL), -ECONNRESET);
	cr_assert_eq(rt_until_error(&t, t.sqp), -ECONNRESET);
	t.ops->qp_destroy(t.cqp);
	t.ops->qp_destroy(t.sqp);
	t.cqp = t.sqp = NULL;

	/* A WRITE with an unknown lkey, one beyond its region, an rkey used as lkey. */
	for (int c = 0; c < 3; c++) {
		rt_connect(&t);
		memcpy(before, rem.p, sizeof(before));
		struct ferry_hal_rdma_sge b = rt_sge(&loc, 0, 64);
		if (c == 0)
			b.lkey ^= 0x100;
		else if (c == 1)
			b.len = 4097;
		else
			b.lkey = loc.k.rkey;
		cr_assert_eq(rt_post1(&t, t.cqp, 0xf2, FERRY_HAL_RDMA_OP_WRITE, 0, &b, 1,
				      rem.k.addr, rem.k.rkey),
			     0);
		rt_expect(rt_wc(&t, t.ccq), 0xf2, 0, -EIO);
		cr_assert_eq(memcmp(rem.p, before, sizeof(before)), 0);
		t.ops->qp_destroy(t.cqp);
		t.ops->qp_destroy(t.sqp);
		t.cqp = t.sqp = NULL;
	}
	rt_buf_free(&t, &loc);
	rt_buf_free(&t, &ro);
	rt_buf_free(&t, &rem);
	rt_close(&t);
}

Test(mock_rdma, dereg_then_access_fails, .timeout = 30)
{
	struct rt t;
	rt_open(&t, "");
	rt_connect(&t);
	struct rt_buf loc, rem;
	rt_buf(&t, t.cd, &loc, 4096, FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE, 1);
	rt_buf(&t, t.sd, &rem, 4096, RT_ALL, 3);
	struct ferry_hal_rdma_sge s = rt_sge(&loc, 0, 128);
	cr_assert_eq(rt_post1(&t, t.cqp, 1, FERRY_HAL_RDMA_OP_READ, FERRY_HAL_RDMA_WR_F_SIGNALED,
			      &s, 1, rem.k.addr, rem.k.rkey),
		     0);
	rt_expect(rt_wc(&t, t.ccq), 1, FERRY_HAL_RDMA_OP_READ, 0);
	cr_assert_eq(memcmp(loc.p, rem.p, 128), 0);
	uint32_t old_rkey = rem.k.rkey;
	t.ops->mr_dereg(rem.mr);
	/* A new region may take the slot: its keys differ. */
	struct ferry_hal_rdma_mr *mr2;
	cr_assert_eq(t.ops->mr_reg(t.sd, rem.p, rem.len, RT_ALL, &mr2), 0);
	struct ferry_hal_rdma_mr_keys k2;
	t.ops->mr_keys(mr2, &k2);
	cr_assert_neq(k2.rkey, old_rkey);
	cr_assert_neq(k2.lkey, rem.k.lkey);
	cr_assert_eq(rt_post1(&t, t.cqp, 2, FERRY_HAL_RDMA_OP_READ, FERRY_HAL_RDMA_WR_F_SIGNALED,
			      &s, 1, rem.k.addr, old_rkey),
		     0);
	rt_expect(rt_wc(&t, t.ccq), 2, 0, -EREMOTEIO);
	cr_assert_eq(rt_stats(&t, t.sd).mr_deregs, 1);
	t.ops->mr_dereg(mr2);
	free(rem.p);
	rt_buf_free(&t, &loc);
	t.ops->mr_dereg(NULL);

	/* Registration arguments. */
	struct ferry_hal_rdma_mr *m;
	uint8_t x[16];
	cr_assert_eq(t.ops->mr_reg(t.sd, NULL, 16, 0, &m), -EINVAL);
	cr_assert_eq(t.ops->mr_reg(t.sd, x, 0, 0, &m), -EINVAL);
	cr_assert_eq(t.ops->mr_reg(t.sd, x, 16, 1u << 7, &m), -EINVAL);
	rt_close(&t);
}

Test(mock_rdma, keys_unique_seeded, .timeout = 30)
{
	struct ferry_device *a, *b;
	cr_assert_eq(ferry_device_open("mock", "rdma_seed=5", &a), 0);
	cr_assert_eq(ferry_device_open("mock", "rdma_seed=5", &b), 0);
	const struct ferry_hal_rdma_ops *ops = ferry_hal_dev_get_backend(a)->nic->rdma;
	static uint8_t mem[64][64];
	struct ferry_hal_rdma_mr *ma[64], *mb[64];
	struct ferry_hal_rdma_mr_keys ka[64], kb;
	for (int i = 0; i < 64; i++) {
		cr_assert_eq(ops->mr_reg(a, mem[i], 64, RT_ALL, &ma[i]), 0);
		cr_assert_eq(ops->mr_reg(b, mem[i], 64, RT_ALL, &mb[i]), 0);
		ops->mr_keys(ma[i], &ka[i]);
		ops->mr_keys(mb[i], &kb);
		cr_assert_eq(ka[i].rkey, kb.rkey, "same seed, same keys");
		cr_assert_neq(ka[i].lkey, 0);
		cr_assert_neq(ka[i].rkey, 0);
		for (int j = 0; j < i; j++) {
			cr_assert_neq(ka[i].rkey, ka[j].rkey);
			cr_assert_neq(ka[i].lkey, ka[j].lkey);
		}
	}
	for (int i = 0; i < 64; i++) {
		ops->mr_dereg(ma[i]);
		ops->mr_dereg(mb[i]);
	}
	ferry_device_close(a);
	ferry_device_close(b);
	cr_assert_eq(ferry_device_open("mock", "rdma_seed=6", &b), 0);
	cr_assert_eq(ops->mr_reg(b, mem[0], 64, RT_ALL, &mb[0]), 0);
	ops->mr_keys(mb[0], &kb);
	cr_assert_neq(kb.rkey, ka[0].rkey, "another seed, other keys");
	ops->mr_dereg(mb[0]);
	ferry_device_close(b);
}

Test(mock_rdma, qp_destroy_with_outstanding, .timeout = 30)
{
	struct rt t;
	rt_open(&t, "");
	rt_connect(&t);
	struct rt_buf loc, rem;
	rt_buf(&t, t.cd, &loc, 4096, FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE, 1);
	rt_buf(&t, t.sd, &rem, 4096, RT_ALL, 3);
	struct ferry_hal_rdma_sge s = rt_sge(&loc, 0, 64);
	for (int i = 0; i < 8; i++)
		cr_assert_eq(t.ops->post_recv(t.cqp, 0x10 + i, &s, 1), 0);
	for (int i = 0; i < 8; i++)
		cr_assert_eq(rt_post1(&t, t.cqp, 0x20 + i, FERRY_HAL_RDMA_OP_READ,
				      FERRY_HAL_RDMA_WR_F_SIGNALED, &s, 1, rem.k.addr, rem.k.rkey),
			     0);
	/* Let some answers arrive (completed but not polled), then destroy. */
	rt_pump(&t);
	rt_pump(&t);
	t.ops->qp_destroy(t.cqp);
	t.cqp = NULL;
	rt_no_wc(&t, t.ccq, 50);
	cr_assert_eq(rt_until_error(&t, t.sqp), -ECONNRESET, "the peer sees the disconnect");
	/* The server's receives flush. */
	struct rt_buf sr;
	rt_buf(&t, t.sd, &sr, 64, FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE, 0);
	s = rt_sge(&sr, 0, 64);
	cr_assert_eq(t.ops->post_recv(t.sqp, 1, &s, 1), -ECONNRESET);
	rt_buf_free(&t, &sr);
	rt_buf_free(&t, &loc);
	rt_buf_free(&t, &rem);
	rt_close(&t);
}

Test(mock_rdma, queue_limits, .timeout = 30)
{
	struct rt t;
	rt_open(&t, "");
	struct ferry_hal_rdma_qp_attr ca = rt_attr(t.ccq, &t.cctx), sa = rt_attr(t.scq, &t.sctx);
	ca.max_send_wr = 2;
	ca.max_recv_wr = 2;
	cr_assert_eq(t.ops->connect(t.cd, t.addr, &ca, NULL, 0, 5000, &t.cqp), 0);
	struct ferry_hal_rdma_req *req = rt_request(&t, NULL, NULL);
	cr_assert_eq(t.ops->accept(req, &sa, NULL, 0, &t.sqp), 0);
	cr_assert_eq(rt_cstate(&t, NULL, NULL), 0);
	struct rt_buf b;
	rt_buf(&t, t.cd, &b, 64, FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE, 1);
	struct ferry_hal_rdma_sge s = rt_sge(&b, 0, 8);
	cr_assert_eq(t.ops->post_recv(t.cqp, 1, &s, 1), 0);
	cr_assert_eq(t.ops->post_recv(t.cqp, 2, &s, 1), 0);
	cr_assert_eq(t.ops->post_recv(t.cqp, 3, &s, 1), -ENOSPC);
	cr_assert_eq(rt_post1(&t, t.cqp, 4, FERRY_HAL_RDMA_OP_SEND, 0, &s, 1, 0, 0), 0);
	cr_assert_eq(rt_post1(&t, t.cqp, 5, FERRY_HAL_RDMA_OP_SEND, 0, &s, 1, 0, 0), 0);
	cr_assert_eq(rt_post1(&t, t.cqp, 6, FERRY_HAL_RDMA_OP_SEND, 0, &s, 1, 0, 0), -ENOSPC);
	rt_buf_free(&t, &b);
	rt_close(&t);
}

/* ---- threads: two connections on different CQs of the same two devices, each driven by its
 * own thread, while a third thread registers and deregisters regions on both devices. ---- */

#include <pthread.h>
#include <stdatomic.h>

struct th {
	const struct ferry_hal_rdma_ops *ops;
	struct ferry_hal_rdma_cq *scq, *ccq;
	struct ferry_hal_rdma_qp *cqp, *sqp;
	struct ferry_hal_rdma_mr *lmr, *rmr;
	uint8_t *loc, *rem, *back;
	struct ferry_hal_rdma_mr_keys lk, rk, bk;
	struct ferry_hal_rdma_mr *bmr;
	int fail; /* 0 ok, else the step */
	uint32_t seed;
};

static _Atomic int churn_stop;

static int th_wait(struct th *x, uint64_t id)
{
	struct ferry_hal_rdma_wc wc;
	uint64_t end = test_rdma_now_ms() + 10000;
	while (test_rdma_now_ms() < end) {
		(void)x->ops->cq_poll(x->scq, NULL, 0);
		int n = x->ops->cq_poll(x->ccq, &wc, 1);
		if (n < 0)
			return -1;
		if (n == 1)
			return wc.wr_id == id && wc.status == 0 ? 0 : -1;
	}
	return -1;
}

static void *th_run(void *arg)
{
	struct th *x = arg;
	for (uint32_t it = 0; it < 200 && !x->fail; it++) {
		rt_fill(x->loc, 8192, x->seed + it);
		struct ferry_hal_rdma_sge s = {.addr = x->lk.addr, .len = 8192, .lkey = x->lk.lkey};
		struct ferry_hal_rdma_sge b = {.addr = x->bk.addr, .len = 8192, .lkey = x->bk.lkey};
		struct ferry_hal_rdma_wr w = {.wr_id = 2 * it,
					      .opcode = FERRY_HAL_RDMA_OP_WRITE,
					      .flags = FERRY_HAL_RDMA_WR_F_SIGNALED,
					      .sge = &s,
					      .nsge = 1,
					      .rkey = x->rk.rkey,
					      .remote_addr = x->rk.addr};
		if (x->ops->post_send(x->cqp, &w, NULL) || th_wait(x, 2 * it)) {
			x->fail = 1;
			break;
		}
		w.wr_id = 2 * it + 1;
		w.opcode = FERRY_HAL_RDMA_OP_READ;
		w.sge = &b;
		if (x->ops->post_send(x->cqp, &w, NULL) || th_wait(x, 2 * it + 1)) {
			x->fail = 2;
			break;
		}
		if (memcmp(x->back, x->loc, 8192))
			x->fail = 3;
	}
	return NULL;
}

struct churn {
	const struct ferry_hal_rdma_ops *ops;
	struct ferry_device *dev[2];
	int fail;
	unsigned long n;
};

static void *churn_run(void *arg)
{
	struct churn *c = arg;
	static uint8_t mem[4096];
	while (!atomic_load(&churn_stop)) {
		struct ferry_hal_rdma_mr *m;
		if (c->ops->mr_reg(c->dev[c->n & 1], mem, sizeof(mem), RT_ALL, &m)) {
			c->fail = 1;
			break;
		}
		c->ops->mr_dereg(m);
		c->n++;
	}
	return NULL;
}

Test(mock_rdma, threads_separate_cqs, .timeout = 60)
{
	struct rt t;
	rt_open(&t, "");
	struct th x[2];
	memset(x, 0, sizeof(x));
	for (int i = 0; i < 2; i++) {
		struct ferry_hal_rdma_cq *scq, *ccq;
		cr_assert_eq(t.ops->cq_create(t.sd, 64, &scq), 0);
		cr_assert_eq(t.ops->cq_create(t.cd, 64, &ccq), 0);
		struct ferry_hal_rdma_qp_attr ca = rt_attr(ccq, NULL), sa = rt_attr(scq, NULL);
		struct ferry_hal_rdma_qp *cqp, *sqp;
		cr_assert_eq(t.ops->connect(t.cd, t.addr, &ca, NULL, 0, 5000, &cqp), 0);
		struct ferry_hal_rdma_req *req = NULL;
		uint64_t until = test_rdma_now_ms() + 5000;
		/* The request goes out while the connecting QP progresses (its CQ, qp_state). */
		while (t.ops->get_request(t.l, &req, NULL, NULL) == -EAGAIN) {
			cr_assert_lt(test_rdma_now_ms(), until);
			(void)t.ops->qp_state(cqp, NULL, NULL);
		}
		cr_assert_eq(t.ops->accept(req, &sa, NULL, 0, &sqp), 0);
		uint64_t end = test_rdma_now_ms() + 5000;
		while (t.ops->qp_state(cqp, NULL, NULL) == -EINPROGRESS)
			cr_assert_lt(test_rdma_now_ms(), end);
		cr_assert_eq(t.ops->qp_state(cqp, NULL, NULL), 0);
		x[i] = (struct th){.ops = t.ops,
				   .scq = scq,
				   .ccq = ccq,
				   .cqp = cqp,
				   .sqp = sqp,
				   .seed = 100u * (uint32_t)i};
		x[i].loc = malloc(8192);
		x[i].rem = malloc(8192);
		x[i].back = malloc(8192);
		cr_assert_eq(t.ops->mr_reg(t.cd, x[i].loc, 8192, 0, &x[i].lmr), 0);
		cr_assert_eq(t.ops->mr_reg(t.sd, x[i].rem, 8192, RT_ALL, &x[i].rmr), 0);
		cr_assert_eq(t.ops->mr_reg(t.cd, x[i].back, 8192, FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE,
					   &x[i].bmr),
			     0);
		t.ops->mr_keys(x[i].lmr, &x[i].lk);
		t.ops->mr_keys(x[i].rmr, &x[i].rk);
		t.ops->mr_keys(x[i].bmr, &x[i].bk);
	}
	struct churn c = {.ops = t.ops, .dev = {t.sd, t.cd}};
	pthread_t tid[3];
	atomic_store(&churn_stop, 0);
	cr_assert_eq(pthread_create(&tid[2], NULL, churn_run, &c), 0);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&tid[i], NULL, th_run, &x[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(tid[i], NULL);
	atomic_store(&churn_stop, 1);
	pthread_join(tid[2], NULL);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(x[i].fail, 0, "thread %d failed at step %d", i, x[i].fail);
	cr_assert_eq(c.fail, 0);
	cr_assert_gt(c.n, 0);
	struct ferry_hal_rdma_stats st = rt_stats(&t, t.cd);
	cr_assert_eq(st.writes, 400);
	cr_assert_eq(st.reads, 400);
	cr_assert_eq(st.wc_errors, 0);
	cr_assert_eq(st.mr_regs - st.mr_deregs, 4, "the threads' 4 regions on the client");
	for (int i = 0; i < 2; i++) {
		t.ops->qp_destroy(x[i].cqp);
		t.ops->qp_destroy(x[i].sqp);
		t.ops->cq_destroy(x[i].ccq);
		t.ops->cq_destroy(x[i].scq);
		t.ops->mr_dereg(x[i].lmr);
		t.ops->mr_dereg(x[i].rmr);
		t.ops->mr_dereg(x[i].bmr);
		free(x[i].loc);
		free(x[i].rem);
		free(x[i].back);
	}
	rt_close(&t);
}
