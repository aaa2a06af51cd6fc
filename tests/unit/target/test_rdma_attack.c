/*
 * The "rdma" target transport under attack (an independent hostile review; test_rdma_host.h
 * over the mock RDMA NIC): keyed descriptors longer than the command moves (no stale byte of
 * another request may reach the host), addresses that wrap, descriptor lengths at the limits,
 * capsules at and past the receive buffer, private data at every length, queue sizes at the
 * limits, connect/disconnect storms (also across poll-group threads, and a destroy with
 * requests pending), a Connect on an I/O queue before any admin queue, a duplicate queue, a
 * foreign controller, commands before Connect and after Disconnect, keep-alive expiry and
 * CC.EN=0 with I/O in flight, a dead peer with RDMA READs in flight, failures of each work
 * request of a request (READ, WRITE, SEND, RECV), a host that stops posting receives (RNR),
 * a host serving one RDMA READ at a time (responder_resources 1), command ids 0 and 0xffff,
 * full queues under buffer pressure, the completion-queue limit, and random capsules. Each
 * test asserts bytes, statuses and counters, and that the target still serves a fresh host
 * afterwards.
 */
#include <ferry/mock.h>
#include "test_rdma_host.h"

static void up(void)
{
	rh_tgt_up("buffers=256,idle_us=0,max_connections=8,max_io_queues=2");
}

TestSuite(rdma_attack, .init = up, .fini = rh_tgt_down, .timeout = 120);

#define ST(sc) FERRY_NVME_STATUS(FERRY_NVME_SCT_GENERIC, sc)
#define NODNR(st) ((st) & ~FERRY_NVME_STATUS_DNR)

/* A fresh association works (the target survived). */
static void fresh_host_works(void)
{
	struct rh_host a, q;
	rh_io_pair(&a, &q);
	rh_queue_works(&q, 11);
	rh_free(&q);
	rh_free(&a);
}

static void all_gone(void)
{
	RH_UNTIL(NULL, rh_totals().conns == 0 && rh_totals().ctrlrs == 0);
	cr_assert_eq(rh_totals().conns, 0, "connections left behind");
	cr_assert_eq(rh_totals().ctrlrs, 0, "controllers left behind");
}

/* Fills the target's data buffers with a secret: writes of 64 KiB of 0xA5 (LBA 1024..). */
static void fill_pool_with_secret(struct rh_host *q)
{
	memset(rh_data(q, 0), 0xa5, 65536);
	for (int i = 0; i < 4; i++) {
		struct ferry_nvme_sqe s;
		rh_rw(&s, q->cid++, 1, 1024 + (uint64_t)i * 128, 128);
		struct ferry_nvmf_rdma_kdesc k = rh_kd(q, 0, 65536);
		cr_assert_eq(rh_cmd_keyed(q, &s, &k, 1, NULL), 0);
	}
}

static int has_byte(const uint8_t *p, size_t n, uint8_t b)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] == b)
			return 1;
	return 0;
}

Test(rdma_attack, read_descriptor_longer_than_the_data_leaks_nothing)
{
	/* NVMe allows an SGL longer than the data; the target must then move only the data: the
	 * rest of its buffers holds other requests' bytes. */
	struct rh_host a, q;
	rh_io_pair(&a, &q);
	fill_pool_with_secret(&q);
	/* LBA 0..: zeros (never written) */
	memset(rh_data(&q, 131072), 0xee, 65536);
	struct ferry_nvme_sqe s;
	rh_rw(&s, q.cid++, 0, 0, 1);
	struct ferry_nvmf_rdma_kdesc k = rh_kd(&q, 131072, 65536);
	int st = rh_cmd_keyed(&q, &s, &k, 1, NULL);
	cr_assert_geq(st, 0, "no response");
	cr_assert(!has_byte(rh_data(&q, 131072), 65536, 0xa5),
		  "a read of 512 bytes with a 64 KiB descriptor (status 0x%x) wrote another "
		  "request's stale data to the host",
		  st);
	if (st == 0) {
		uint8_t z[512] = {0};
		cr_assert_eq(memcmp(rh_data(&q, 131072), z, 512), 0, "the block's data");
	}
	/* Identify (4096 bytes) with an 8 KiB descriptor on the admin queue */
	fill_pool_with_secret(&q);
	memset(rh_data(&a, 131072), 0xee, 8192);
	memset(&s, 0, sizeof(s));
	s.opcode = FERRY_NVME_ADM_IDENTIFY;
	s.cid = a.cid++;
	s.cdw10 = 1;
	k = rh_kd(&a, 131072, 8192);
	st = rh_cmd_keyed(&a, &s, &k, 1, NULL);
	cr_assert_geq(st, 0);
	cr_assert(!has_byte(rh_data(&a, 131072 + 4096), 4096, 0xa5),
		  "Identify with an 8 KiB descriptor (status 0x%x) wrote stale data", st);
	rh_queue_works(&q, 11);
	rh_free(&q);
	rh_free(&a);
}

Test(rdma_attack, write_descriptor_longer_than_the_data)
{
	/* A write of 1 block with a 64 KiB descriptor: the block gets the first 512 bytes (or
	 * the command fails); the neighbours are untouched. */
	struct rh_host a, q;
	rh_io_pair(&a, &q);
	uint8_t *d = rh_data(&q, 0);
	rh_pattern(d, 65536, 3);
	struct ferry_nvme_sqe s;
	rh_rw(&s, q.cid++, 1, 200, 1);
	struct ferry_nvmf_rdma_kdesc k = rh_kd(&q, 0, 65536);
	int st = rh_cmd_keyed(&q, &s, &k, 1, NULL);
	cr_assert_geq(st, 0);
	memset(rh_data(&q, 131072), 0xee, 8192);
	rh_rw(&s, q.cid++, 0, 200, 16);
	k = rh_kd(&q, 131072, 8192);
	cr_assert_eq(rh_cmd_keyed(&q, &s, &k, 1, NULL), 0);
	if (st == 0)
		cr_assert_eq(memcmp(rh_data(&q, 131072), d, 512), 0);
	uint8_t z[8192] = {0};
	cr_assert_eq(memcmp(rh_data(&q, 131072 + 512), z, 8192 - 512), 0,
		     "blocks past the command's changed");
	rh_queue_works(&q, 11);
	rh_free(&q);
	rh_free(&a);
}

Test(rdma_attack, wrapping_and_edge_addresses)
{
	struct rh_host a, q;
	/* a descriptor whose address + length wraps past 2^64: the RDMA READ fails, the
	 * connection ends, nothing else */
	uint64_t addrs[] = {UINT64_MAX - 255, UINT64_MAX, 0, 1};
	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		rh_io_pair(&a, &q);
		struct ferry_nvme_sqe s;
		rh_rw(&s, q.cid++, (int)(i & 1), 0, 1);
		struct ferry_nvmf_rdma_kdesc k = {.addr = addrs[i], .len = 512, .key = q.k.rkey};
		int st = rh_cmd_keyed(&q, &s, &k, 1, NULL);
		cr_assert(st != 0, "a transfer at 0x%llx succeeded", (unsigned long long)addrs[i]);
		RH_UNTIL(&q, RT.rd->qp_state(q.qp, NULL, NULL) != 0);
		rh_free(&q);
		rh_free(&a);
		all_gone();
	}
	/* two descriptors: the second one's address at the last byte of the region */
	rh_io_pair(&a, &q);
	struct ferry_nvme_sqe s;
	rh_rw(&s, q.cid++, 1, 0, 2);
	struct ferry_nvmf_rdma_kdesc kd[2] = {rh_kd(&q, 0, 512), rh_kd(&q, RH_DATA - 1, 512)};
	int st = rh_cmd_keyed(&q, &s, kd, 2, NULL);
	cr_assert(st != 0, "a transfer past the region succeeded");
	rh_free(&q);
	rh_free(&a);
	all_gone();
	fresh_host_works();
}

Test(rdma_attack, capsules_at_and_past_the_receive_buffer)
{
	/* I/O queue in-capsule data is 4096 bytes: 64 + 4096 is the largest capsule; one more
	 * byte fails the receive (the connection ends, the target stays) */
	struct rh_host a, q;
	rh_io_pair(&a, &q);
	static uint8_t icd[8192];
	rh_pattern(icd, sizeof(icd), 5);
	struct ferry_nvme_sqe s;
	rh_rw(&s, q.cid++, 1, 300, 8);
	cr_assert_eq(rh_cmd_icd(&q, &s, icd, 4096, NULL), 0, "a full capsule");
	rh_rw(&s, q.cid++, 1, 300, 8);
	ferry_nvmf_rdma_sgl_build_icd(&s, 4096);
	rh_send(&q, &s, icd, 4097);
	int st = rh_wait(&q, s.cid, NULL);
	cr_assert_eq(st, -1, "a capsule past the receive buffer answered (0x%x)", st);
	RH_UNTIL(&q, RT.rd->qp_state(q.qp, NULL, NULL) != 0);
	cr_assert_neq(RT.rd->qp_state(q.qp, NULL, NULL), 0);
	rh_free(&q);
	rh_free(&a);
	all_gone();
	/* an empty SEND */
	rh_io_pair(&a, &q);
	struct ferry_hal_rdma_sge sge = {.addr = q.k.addr + RH_CAP_OFF, .len = 0, .lkey = q.k.lkey};
	struct ferry_hal_rdma_wr w = {.wr_id = 7,
				      .opcode = FERRY_HAL_RDMA_OP_SEND,
				      .flags = FERRY_HAL_RDMA_WR_F_SIGNALED,
				      .sge = &sge,
				      .nsge = 1};
	cr_assert_eq(RT.rd->post_send(q.qp, &w, NULL), 0);
	RH_UNTIL(&q, RT.rd->qp_state(q.qp, NULL, NULL) != 0);
	rh_free(&q);
	rh_free(&a);
	all_gone();
	fresh_host_works();
}

Test(rdma_attack, private_data_at_every_length)
{
	/* a valid 32-byte request followed by 0..24 more bytes: accepted; fewer than 32:
	 * INVALID_LEN */
	uint8_t pd[FERRY_HAL_RDMA_PDATA_MAX];
	memset(pd, 0x77, sizeof(pd));
	size_t n = ferry_nvmf_rdma_cm_req_build(pd, sizeof(pd), 0, 32, 31);
	cr_assert_eq(n, 32);
	for (uint32_t len = 0; len <= FERRY_HAL_RDMA_PDATA_MAX; len++) {
		struct rh_host h = {0};
		int st = rh_connect_raw(&h, pd, len);
		if (len < 32) {
			cr_assert_eq(st, -ECONNREFUSED, "%u bytes: state %d", len, st);
			cr_assert_eq(h.rej_sts, FERRY_NVMF_RDMA_CM_INVALID_LEN, "%u bytes", len);
		} else {
			cr_assert(st == 0 || st == -ECONNREFUSED, "%u bytes: state %d", len, st);
		}
		rh_free(&h);
	}
	all_gone();
	fresh_host_works();
}

Test(rdma_attack, connect_disconnect_storm)
{
	/* 64 connections that go at once (before the target saw the request, after the accept,
	 * after the Connect), 8 at a time: nothing left, counters add up */
	for (int round = 0; round < 8; round++) {
		struct rh_host h[8];
		memset(h, 0, sizeof(h));
		for (int i = 0; i < 8; i++) {
			int st = rh_connect_qp(&h[i], 0, 31);
			cr_assert_eq(st, 0, "round %d connection %d: %d (sts %u)", round, i, st,
				     h[i].rej_sts);
			if ((i + round) % 3 == 1)
				cr_assert_eq(rh_fabrics_connect(&h[i], 0, 31, 0), 0);
			if ((i + round) % 3 == 2) {
				cr_assert_eq(rh_fabrics_connect(&h[i], 0, 31, 1), 0);
				/* a command left in flight */
				struct ferry_nvme_sqe s = {0};
				s.opcode = FERRY_NVME_ADM_IDENTIFY;
				s.cid = h[i].cid++;
				s.cdw10 = 1;
				struct ferry_nvmf_rdma_kdesc k = rh_kd(&h[i], 0, 4096);
				uint8_t icd[16];
				uint32_t used = rh_sgl_keyed(&s, icd, sizeof(icd), &k, 1);
				rh_send(&h[i], &s, icd, used);
			}
		}
		for (int i = 0; i < 8; i++)
			rh_free(&h[i]);
		/* max_connections is 8: the target must notice all 8 are gone */
		all_gone();
	}
	struct ferry_rdma_transport_totals t = rh_totals();
	cr_assert_eq(t.accepted, 64);
	cr_assert_eq(t.closed, 64);
	cr_assert_eq(t.ctrlrs_created, t.ctrlrs_destroyed);
	/* requests whose host is gone before the target polls */
	for (int i = 0; i < 16; i++) {
		struct rh_host h = {0};
		rh_mem(&h);
		uint8_t pd[32];
		ferry_nvmf_rdma_cm_req_build(pd, sizeof(pd), 0, 32, 31);
		struct ferry_hal_rdma_qp_attr qa = {.size = sizeof(qa),
						    .cq = h.cq,
						    .max_send_wr = 16,
						    .max_recv_wr = 16,
						    .max_send_sge = 1,
						    .max_recv_sge = 1};
		cr_assert_eq(RT.rd->connect(RT.dev, RT.addr, &qa, pd, 32, 3000, &h.qp), 0);
		rh_free(&h);
	}
	for (int i = 0; i < 50; i++)
		rh_poll(NULL);
	all_gone();
	fresh_host_works();
}

Test(rdma_attack, io_queue_connect_before_any_admin)
{
	struct rh_host q = {0};
	cr_assert_eq(rh_connect_qp(&q, 1, 63), 0);
	q.cntlid = 1;
	int st = rh_fabrics_connect(&q, 1, 63, 1);
	cr_assert_gt(st, 0, "an I/O queue Connect with no controller succeeded");
	/* and I/O on that queue is refused, not executed */
	struct ferry_nvme_sqe s;
	rh_rw(&s, q.cid++, 1, 0, 1);
	struct ferry_nvmf_rdma_kdesc k = rh_kd(&q, 0, 512);
	st = rh_cmd_keyed(&q, &s, &k, 1, NULL);
	cr_assert(st != 0, "a write on a queue with no controller succeeded");
	rh_free(&q);
	/* admin queue Connect with qid 0 on a qid-1 connect request */
	cr_assert_eq(rh_connect_qp(&q, 1, 63), 0);
	st = rh_fabrics_connect(&q, 0, 63, 1);
	cr_assert_gt(st, 0, "qid mismatch accepted");
	rh_free(&q);
	all_gone();
	fresh_host_works();
}

Test(rdma_attack, commands_after_disconnect_do_not_execute)
{
	struct rh_host a, q;
	rh_io_pair(&a, &q);
	/* LBA 400 holds zeros; the Disconnect and a write to it go in one burst */
	rh_pattern(rh_data(&q, 0), 512, 9);
	struct ferry_nvmf_cmd d = {0};
	d.opcode = FERRY_NVMF_OPC_FABRICS;
	d.fctype = FERRY_NVMF_FCTYPE_DISCONNECT;
	d.cid = q.cid++;
	struct ferry_nvme_sqe *ds = (struct ferry_nvme_sqe *)(void *)&d;
	uint8_t icd[16];
	uint32_t used = rh_sgl_keyed(ds, icd, sizeof(icd), NULL, 0);
	rh_send(&q, ds, icd, used);
	struct ferry_nvme_sqe s;
	rh_rw(&s, q.cid++, 1, 400, 1);
	int st = rh_cmd_icd(&q, &s, rh_data(&q, 0), 512, NULL);
	cr_assert_neq(st, 0, "a write after Disconnect succeeded");
	RH_UNTIL(&q, RT.rd->qp_state(q.qp, NULL, NULL) != 0);
	rh_free(&q);
	/* the block is still zero (read through the admin's new I/O queue) */
	struct rh_host q2 = {0};
	rh_io_up(&q2, &a, 1);
	memset(rh_data(&q2, 0), 0xee, 512);
	rh_rw(&s, q2.cid++, 0, 400, 1);
	struct ferry_nvmf_rdma_kdesc k = rh_kd(&q2, 0, 512);
	cr_assert_eq(rh_cmd_keyed(&q2, &s, &k, 1, NULL), 0);
	uint8_t z[512] = {0};
	cr_assert_eq(memcmp(rh_data(&q2, 0), z, 512), 0, "a write after Disconnect executed");
	rh_free(&q2);
	rh_free(&a);
	all_gone();
}

Test(rdma_attack, dead_peer_with_reads_in_flight)
{
	/* 16 writes of 128 KiB posted, the host gone before the target polls their data: the
	 * buffers come back, the next host gets all of them */
	for (int round = 0; round < 3; round++) {
		struct rh_host a, q;
		rh_io_pair(&a, &q);
		for (int i = 0; i < 16; i++) {
			struct ferry_nvme_sqe s;
			rh_rw(&s, q.cid++, 1, (uint64_t)i * 256, 256);
			struct ferry_nvmf_rdma_kdesc k = rh_kd(&q, 0, 131072);
			uint8_t icd[16];
			uint32_t used = rh_sgl_keyed(&s, icd, sizeof(icd), &k, 1);
			rh_send(&q, &s, icd, used);
		}
		/* let part of it go */
		for (int i = 0; i < round * 3; i++)
			rh_poll(&q);
		rh_free(&q);
		rh_free(&a);
		all_gone();
	}
	/* all 256 buffers are back: a host can use the whole pool */
	struct rh_host a, q;
	rh_io_pair(&a, &q);
	rh_pattern(rh_data(&q, 0), 131072, 4);
	for (int i = 0; i < 8; i++) {
		struct ferry_nvme_sqe s;
		rh_rw(&s, q.cid++, 1, (uint64_t)i * 256, 256);
		struct ferry_nvmf_rdma_kdesc k = rh_kd(&q, 0, 131072);
		cr_assert_eq(rh_cmd_keyed(&q, &s, &k, 1, NULL), 0);
	}
	rh_free(&q);
	rh_free(&a);
	all_gone();
}

/* Sets the mock's fault model: the @p nth work request of @p opcode fails. */
static void fault(uint32_t opcode, uint32_t nth)
{
	struct ferry_mock_rdma_faults f = {.size = sizeof(f),
					   .fail_opcode = opcode,
					   .fail_nth = nth};
	cr_assert_eq(ferry_mock_rdma_set_faults(RT.dev, &f), 0);
}

Test(rdma_attack, work_request_failures_at_each_stage)
{
	/* a write of 3 descriptors whose 2nd RDMA READ fails; a read whose RDMA WRITE fails; a
	 * response SEND that fails; a receive that fails: each ends its connection only */
	struct {
		uint32_t op, nth;
		int write;
	} cases[] = {
		{FERRY_HAL_RDMA_OP_READ, 2, 1},  {FERRY_HAL_RDMA_OP_READ, 1, 1},
		{FERRY_HAL_RDMA_OP_WRITE, 2, 0}, {FERRY_HAL_RDMA_OP_SEND, 1, 1},
		{FERRY_HAL_RDMA_OP_RECV, 1, 1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rh_host a, q;
		rh_io_pair(&a, &q);
		fault(cases[i].op, cases[i].nth);
		struct ferry_nvme_sqe s;
		rh_rw(&s, q.cid++, cases[i].write, 500, 24);
		struct ferry_nvmf_rdma_kdesc kd[3] = {rh_kd(&q, 0, 4096), rh_kd(&q, 8192, 4096),
						      rh_kd(&q, 16384, 4096)};
		int st = rh_cmd_keyed(&q, &s, kd, 3, NULL);
		(void)st;
		fault(0, 0);
		RH_UNTIL(&q, RT.rd->qp_state(q.qp, NULL, NULL) != 0 || q.err);
		rh_free(&q);
		rh_free(&a);
		all_gone();
		fresh_host_works();
		all_gone();
	}
}

Test(rdma_attack, command_ids_at_the_limits)
{
	struct rh_host a, q;
	rh_io_pair(&a, &q);
	/* 64 commands in flight with ids 0xffff, 0, and 62 others; each answered once */
	uint16_t ids[64];
	ids[0] = 0xffff;
	ids[1] = 0;
	for (int i = 2; i < 64; i++)
		ids[i] = (uint16_t)(0x8000 + i * 257);
	for (int i = 0; i < 64; i++) {
		struct ferry_nvme_sqe s;
		rh_rw(&s, ids[i], 0, (uint64_t)i * 8, 8);
		struct ferry_nvmf_rdma_kdesc k = rh_kd(&q, (uint32_t)i * 4096, 4096);
		uint8_t icd[16];
		uint32_t used = rh_sgl_keyed(&s, icd, sizeof(icd), &k, 1);
		rh_send(&q, &s, icd, used);
	}
	for (int i = 0; i < 64; i++)
		cr_assert_eq(rh_wait(&q, ids[i], NULL), 0, "command id 0x%x", ids[i]);
	for (int i = 0; i < 10; i++)
		rh_poll(&q);
	cr_assert_eq(q.q.n, 0, "%u extra responses", q.q.n);
	q.cid = 100;
	rh_queue_works(&q, 11);
	rh_free(&q);
	rh_free(&a);
}

/* Fabrics Connect with the given keep-alive timeout (ms), data in the capsule. */
static int connect_kato(struct rh_host *h, uint16_t qid, uint16_t sqsize, uint32_t kato)
{
	struct ferry_nvmf_connect_cmd c = {0};
	c.opcode = FERRY_NVMF_OPC_FABRICS;
	c.fctype = FERRY_NVMF_FCTYPE_CONNECT;
	c.cid = h->cid++;
	c.qid = qid;
	c.sqsize = sqsize;
	c.kato = kato;
	struct ferry_nvmf_connect_data d = {0};
	memset(d.hostid, 0x5a, sizeof(d.hostid));
	d.cntlid = qid ? h->cntlid : 0xffff;
	snprintf(d.subnqn, sizeof(d.subnqn), "%s", RH_NQN);
	snprintf(d.hostnqn, sizeof(d.hostnqn), "%s", RH_HOSTNQN);
	struct ferry_nvme_cqe r;
	int st = rh_cmd_icd(h, (struct ferry_nvme_sqe *)(void *)&c, &d, sizeof(d), &r);
	if (st == 0 && qid == 0)
		h->cntlid = (uint16_t)r.dw0;
	return st;
}

Test(rdma_attack, keep_alive_expiry_with_io_in_flight)
{
	/* kato 1 s, nothing on the admin queue for 2.5 s while the I/O queue has 32 reads
	 * posted: the association is torn down, both connections end, nothing leaks */
	struct rh_host a = {0}, q = {0};
	cr_assert_eq(rh_connect_qp(&a, 0, 31), 0);
	cr_assert_eq(connect_kato(&a, 0, 31, 1000), 0);
	rh_enable(&a);
	rh_io_up(&q, &a, 1);
	for (int i = 0; i < 32; i++) {
		struct ferry_nvme_sqe s;
		rh_rw(&s, q.cid++, 0, (uint64_t)i * 8, 8);
		struct ferry_nvmf_rdma_kdesc k = rh_kd(&q, (uint32_t)i * 4096, 4096);
		uint8_t icd[16];
		uint32_t used = rh_sgl_keyed(&s, icd, sizeof(icd), &k, 1);
		rh_send(&q, &s, icd, used);
	}
	uint64_t end = rh_now() + 2500000000ull;
	while (rh_now() < end) {
		rh_poll(&q);
		rh_poll(&a);
	}
	RH_UNTIL(&q, rh_totals().kato_expired == 1 && rh_totals().conns == 0);
	cr_assert_eq(rh_totals().kato_expired, 1);
	cr_assert_eq(rh_totals().conns, 0);
	cr_assert_neq(RT.rd->qp_state(a.qp, NULL, NULL), 0);
	cr_assert_neq(RT.rd->qp_state(q.qp, NULL, NULL), 0);
	rh_free(&q);
	rh_free(&a);
	all_gone();
	fresh_host_works();
}

Test(rdma_attack, controller_reset_with_io_in_flight)
{
	/* CC.EN = 0 while 32 writes are in flight on the I/O queue: the I/O connection ends,
	 * the admin queue answers, enabling again works, a new I/O queue works */
	struct rh_host a, q;
	rh_io_pair(&a, &q);
	rh_pattern(rh_data(&q, 0), 131072, 2);
	for (int i = 0; i < 32; i++) {
		struct ferry_nvme_sqe s;
		rh_rw(&s, q.cid++, 1, (uint64_t)i * 64, 64);
		struct ferry_nvmf_rdma_kdesc k = rh_kd(&q, 0, 32768);
		uint8_t icd[16];
		uint32_t used = rh_sgl_keyed(&s, icd, sizeof(icd), &k, 1);
		rh_send(&q, &s, icd, used);
	}
	rh_poll(&q);
	uint64_t cc = 0;
	cr_assert_eq(rh_prop(&a, 1, FERRY_NVME_REG_CC, 4, &cc), 0);
	RH_UNTIL(&q, RT.rd->qp_state(q.qp, NULL, NULL) != 0);
	cr_assert_neq(RT.rd->qp_state(q.qp, NULL, NULL), 0, "the I/O connection survived CC.EN=0");
	rh_free(&q);
	RH_UNTIL(&a, rh_totals().conns == 1);
	cr_assert_eq(rh_totals().conns, 1);
	uint64_t csts = 1;
	for (int i = 0; i < 1000 && (csts & FERRY_NVME_CSTS_RDY); i++)
		cr_assert_eq(rh_prop(&a, 0, FERRY_NVME_REG_CSTS, 4, &csts), 0);
	cr_assert_eq(csts & FERRY_NVME_CSTS_RDY, 0);
	rh_enable(&a);
	struct rh_host q2 = {0};
	rh_io_up(&q2, &a, 1);
	rh_queue_works(&q2, 11);
	rh_free(&q2);
	rh_free(&a);
	all_gone();
}

Test(rdma_attack, commands_before_connect_and_double_connect)
{
	/* I/O and admin commands on an accepted QP before any Fabrics Connect: refused, not
	 * executed */
	struct rh_host h = {0};
	cr_assert_eq(rh_connect_qp(&h, 0, 31), 0);
	struct ferry_nvme_sqe s = {0};
	s.opcode = FERRY_NVME_ADM_IDENTIFY;
	s.cid = h.cid++;
	s.cdw10 = 1;
	memset(rh_data(&h, 0), 0xee, 4096);
	struct ferry_nvmf_rdma_kdesc k = rh_kd(&h, 0, 4096);
	int st = rh_cmd_keyed(&h, &s, &k, 1, NULL);
	cr_assert_gt(st, 0, "Identify before Connect: %d", st);
	cr_assert_eq(rh_data(&h, 0)[0], 0xee, "Identify data before Connect");
	uint64_t v = 0;
	cr_assert_gt(rh_prop(&h, 0, FERRY_NVME_REG_CAP, 8, &v), 0, "Property Get before Connect");
	/* now Connect; then a second Connect on the same queue: refused, the first stays */
	cr_assert_eq(rh_fabrics_connect(&h, 0, 31, 1), 0);
	uint16_t cntlid = h.cntlid;
	st = rh_fabrics_connect(&h, 0, 31, 1);
	cr_assert_gt(st, 0, "a second Connect on a connected queue succeeded");
	h.cntlid = cntlid;
	rh_enable(&h);
	cr_assert_eq(rh_totals().ctrlrs, 1);
	/* two Connects in flight at once on a fresh QP */
	struct rh_host g = {0};
	cr_assert_eq(rh_connect_qp(&g, 0, 31), 0);
	struct ferry_nvmf_connect_cmd c = {0};
	c.opcode = FERRY_NVMF_OPC_FABRICS;
	c.fctype = FERRY_NVMF_FCTYPE_CONNECT;
	c.sqsize = 31;
	c.kato = 30000;
	struct ferry_nvmf_connect_data d = {0};
	memset(d.hostid, 0x5b, sizeof(d.hostid));
	d.cntlid = 0xffff;
	snprintf(d.subnqn, sizeof(d.subnqn), "%s", RH_NQN);
	snprintf(d.hostnqn, sizeof(d.hostnqn), "%s", RH_HOSTNQN);
	for (int i = 0; i < 2; i++) {
		c.cid = (uint16_t)(50 + i);
		ferry_nvmf_rdma_sgl_build_icd((struct ferry_nvme_sqe *)(void *)&c, sizeof(d));
		rh_send(&g, (struct ferry_nvme_sqe *)(void *)&c, &d, sizeof(d));
	}
	int s1 = rh_wait(&g, 50, NULL), s2 = rh_wait(&g, 51, NULL);
	cr_assert((s1 == 0) + (s2 == 0) <= 1, "two Connects succeeded on one queue (%d %d)", s1,
		  s2);
	rh_free(&g);
	RH_UNTIL(&h, rh_totals().ctrlrs == 1);
	cr_assert_eq(rh_totals().ctrlrs, 1, "a controller of the closed queue is left");
	rh_free(&h);
	all_gone();
}

static void up_deep(void)
{
	rh_tgt_up("buffers=256,idle_us=0,max_queue_depth=1024,max_io_queues=64,"
		  "in_capsule_data_size=0");
}

TestSuite(rdma_attack_deep, .init = up_deep, .fini = rh_tgt_down, .timeout = 120);

Test(rdma_attack_deep, completion_queue_limit_refuses_then_recovers)
{
	/* I/O queues of 1024 entries: each takes thousands of CQ entries; the group's CQ
	 * (mock max_cqe 65536) holds a few dozen. Past it: NO_RSC, and after some go, accepted
	 * again; totals exact. */
	enum {
		N = 40
	};
	static struct rh_host h[N];
	memset(h, 0, sizeof(h));
	int ok = 0, refused = 0;
	for (int i = 0; i < N; i++) {
		int st = rh_connect_qp(&h[i], (uint16_t)(1 + i), 1023);
		if (st == 0) {
			ok++;
		} else {
			cr_assert_eq(st, -ECONNREFUSED);
			cr_assert_eq(h[i].rej_sts, FERRY_NVMF_RDMA_CM_NO_RSC);
			refused++;
		}
	}
	cr_assert_gt(refused, 0, "%d connections of 1024 entries fit one CQ", ok);
	struct ferry_rdma_transport_totals t = rh_totals();
	cr_assert_eq(t.refused, (uint64_t)refused);
	cr_assert_eq(t.conns, (uint32_t)ok);
	for (int i = 0; i < 4; i++)
		rh_free(&h[i]);
	RH_UNTIL(NULL, rh_totals().conns == (uint32_t)ok - 4);
	struct rh_host x = {0};
	cr_assert_eq(rh_connect_qp(&x, 1, 1023), 0, "no room after 4 went (sts %u)", x.rej_sts);
	rh_free(&x);
	for (int i = 0; i < N; i++)
		rh_free(&h[i]);
	all_gone();
}

/* ---- with poll groups on their own threads ---- */

#include <pthread.h>
#include <stdatomic.h>

static atomic_int pg_stop;
static pthread_t pg_th[2];
static struct ferry_transport_pg *pg_grp[2];

static void *pg_thread(void *arg)
{
	while (!atomic_load(&pg_stop))
		ferry_transport_pg_poll(arg, 0);
	return NULL;
}

static void up_threads(void)
{
	rh_tgt_up("buffers=256,idle_us=20,max_connections=16,max_io_queues=4");
	atomic_store(&pg_stop, 0);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(ferry_transport_pg_create(RT.t, &pg_grp[i]), 0);
		cr_assert_eq(pthread_create(&pg_th[i], NULL, pg_thread, pg_grp[i]), 0);
	}
}

static void down_threads(void)
{
	atomic_store(&pg_stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(pg_th[i], NULL);
	rh_tgt_down();
}

TestSuite(rdma_attack_threads, .init = up_threads, .fini = down_threads, .timeout = 120);

Test(rdma_attack_threads, storm_across_groups)
{
	/* associations whose admin and I/O queues sit on different threads, ended every way
	 * (admin first with I/O in flight, I/O first, both at once, Disconnect on the admin
	 * queue), 12 rounds: nothing leaks, the next association works */
	for (int round = 0; round < 12; round++) {
		struct rh_host a = {0}, q[3];
		memset(q, 0, sizeof(q));
		rh_admin_up(&a);
		for (int i = 0; i < 3; i++) {
			rh_io_up(&q[i], &a, (uint16_t)(1 + i));
			for (int j = 0; j < 8; j++) {
				struct ferry_nvme_sqe s;
				rh_rw(&s, q[i].cid++, j & 1, (uint64_t)j * 32, 32);
				struct ferry_nvmf_rdma_kdesc k = rh_kd(&q[i], (uint32_t)j * 16384,
								       16384);
				uint8_t icd[16];
				uint32_t used = rh_sgl_keyed(&s, icd, sizeof(icd), &k, 1);
				rh_send(&q[i], &s, icd, used);
			}
		}
		switch (round % 4) {
		case 0:
			rh_free(&a);
			for (int i = 0; i < 3; i++)
				rh_free(&q[i]);
			break;
		case 1:
			for (int i = 0; i < 3; i++)
				rh_free(&q[i]);
			rh_free(&a);
			break;
		case 2: {
			struct ferry_nvmf_cmd d = {0};
			d.opcode = FERRY_NVMF_OPC_FABRICS;
			d.fctype = FERRY_NVMF_FCTYPE_DISCONNECT;
			d.cid = a.cid++;
			uint8_t icd[16];
			uint32_t used = rh_sgl_keyed((struct ferry_nvme_sqe *)(void *)&d, icd,
						     sizeof(icd), NULL, 0);
			rh_send(&a, (struct ferry_nvme_sqe *)(void *)&d, icd, used);
			for (int i = 0; i < 20; i++) {
				rh_poll(&a);
				for (int j = 0; j < 3; j++)
					rh_poll(&q[j]);
			}
			rh_free(&a);
			for (int i = 0; i < 3; i++)
				rh_free(&q[i]);
			break;
		}
		default: {
			/* CC.EN = 0 then everything goes */
			uint64_t cc = 0;
			(void)rh_prop(&a, 1, FERRY_NVME_REG_CC, 4, &cc);
			for (int i = 0; i < 3; i++)
				rh_free(&q[i]);
			rh_free(&a);
			break;
		}
		}
		all_gone();
	}
	struct ferry_rdma_transport_totals t = rh_totals();
	cr_assert_eq(t.accepted, t.closed);
	cr_assert_eq(t.ctrlrs_created, 12);
	cr_assert_eq(t.ctrlrs_destroyed, 12);
	fresh_host_works();
}

/* (tears the target down itself) */
TestSuite(rdma_attack_destroy, .init = up_threads, .timeout = 120);

Test(rdma_attack_destroy, destroy_with_connect_requests_pending)
{
	/* connect requests the target has not taken yet, some accepted on a group thread, some
	 * mid-association, when the instance goes: no hang, no leak (ASan) */
	static struct rh_host h[12];
	memset(h, 0, sizeof(h));
	for (int i = 0; i < 4; i++)
		rh_admin_up(&h[i]);
	for (int i = 4; i < 8; i++)
		cr_assert_eq(rh_connect_qp(&h[i], 0, 31), 0);
	for (int i = 8; i < 12; i++) {
		rh_mem(&h[i]);
		uint8_t pd[32];
		ferry_nvmf_rdma_cm_req_build(pd, sizeof(pd), 0, 32, 31);
		struct ferry_hal_rdma_qp_attr qa = {.size = sizeof(qa),
						    .cq = h[i].cq,
						    .max_send_wr = 16,
						    .max_recv_wr = 16,
						    .max_send_sge = 1,
						    .max_recv_sge = 1};
		cr_assert_eq(RT.rd->connect(RT.dev, RT.addr, &qa, pd, 32, 3000, &h[i].qp), 0);
	}
	atomic_store(&pg_stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(pg_th[i], NULL);
	ferry_transport_destroy(RT.t);
	RT.t = NULL;
	cr_assert_eq(ferry_nvme_subsystem_destroy(RT.ss), 0, "a controller was left behind");
	RT.ss = NULL;
	for (int i = 0; i < 12; i++)
		rh_free(&h[i]);
	ferry_bdev_destroy(RT.bdev);
	ferry_device_close(RT.dev);
	memset(&RT, 0, sizeof(RT));
}

/* ---- random capsules ---- */

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

Test(rdma_attack, random_capsules)
{
	/* 3000 capsules on an I/O queue: random opcode (mostly read/write/flush/DSM), flags,
	 * data pointer (keyed / ICD / segment lists with random offsets, lengths, keys; now and
	 * then the real key), random in-capsule bytes and capsule length. Each is answered with
	 * its cid or ends the connection; the target then serves a new queue.
	 * FERRY_ATTACK_SEED=<n> in the environment: another sequence, 20 times as long. */
	struct rh_host a, q;
	rh_io_pair(&a, &q);
	static uint8_t icd[4096];
	uint32_t answered = 0, ended = 0;
	static const uint8_t ops[] = {FERRY_NVME_CMD_READ,
				      FERRY_NVME_CMD_WRITE,
				      FERRY_NVME_CMD_FLUSH,
				      FERRY_NVME_CMD_DSM,
				      0x08,
				      0x05,
				      FERRY_NVMF_OPC_FABRICS};
	/* FERRY_ATTACK_SEED=<n>: another sequence, 20 times as long (a soak) */
	const char *seed = getenv("FERRY_ATTACK_SEED");
	if (seed)
		rnd_state = strtoull(seed, NULL, 0) | 1;
	for (int it = 0; it < 3000 * (seed ? 20 : 1); it++) {
		if (!q.qp || RT.rd->qp_state(q.qp, NULL, NULL) != 0 || q.err) {
			rh_free(&q);
			if (RT.rd->qp_state(a.qp, NULL, NULL) != 0) {
				rh_free(&a);
				rh_admin_up(&a);
			}
			RH_UNTIL(&a, rh_totals().conns == 1);
			struct ferry_rdma_transport_totals t = rh_totals();
			cr_assert_eq(t.conns, 1, "iteration %d: %u connections", it, t.conns);
			rh_io_up(&q, &a, 1);
			ended++;
		}
		struct ferry_nvme_sqe s;
		uint64_t r0 = rnd(), r1 = rnd(), r2 = rnd();
		memset(&s, 0, sizeof(s));
		s.opcode = (r0 & 7) == 7 ? (uint8_t)(r0 >> 8) : ops[(r0 & 7) % 7];
		s.flags = (uint8_t)((r0 >> 16) & 0x40 ? 0x40 : (r0 >> 16));
		s.cid = (uint16_t)(1000 + it);
		s.nsid = (r0 >> 24) & 15 ? 1 : (uint32_t)r1;
		s.cdw10 = (uint32_t)(r1 >> 32) % RH_BLOCKS;
		s.cdw12 = (uint32_t)(r2 & 0xff);
		if (s.opcode == FERRY_NVMF_OPC_FABRICS) {
			/* property get / auth only: not a disconnect or connect every time */
			((struct ferry_nvmf_cmd *)(void *)&s)->fctype = (uint8_t)((r2 >> 8) & 7);
		}
		uint8_t sgl_id = (uint8_t)(r2 >> 16);
		switch ((r2 >> 24) % 5) {
		case 0:
			sgl_id = FERRY_NVME_SGL_ID(FERRY_NVME_SGL_KEYED_DATA_BLOCK, 0);
			break;
		case 1:
			sgl_id = FERRY_NVME_SGL_ID(FERRY_NVME_SGL_DATA_BLOCK,
						   FERRY_NVME_SGL_SUBTYPE_OFFSET);
			break;
		case 2:
			sgl_id = FERRY_NVME_SGL_ID(FERRY_NVME_SGL_LAST_SEGMENT,
						   FERRY_NVME_SGL_SUBTYPE_OFFSET);
			break;
		default:
			break;
		}
		s.dptr.sgl.id = sgl_id;
		uint32_t dlen = (r2 >> 32) & 1 ? (uint32_t)(rnd() % 70000)
					       : (uint32_t)(rnd() % 600);
		s.dptr.sgl.length = dlen;
		uint64_t ra = rnd();
		s.dptr.sgl.address = (ra & 3) == 0 ? q.k.addr + RH_DATA_OFF + (ra >> 48) : ra >> 2;
		uint32_t key = (rnd() & 1) ? q.k.rkey : (uint32_t)rnd();
		memcpy((uint8_t *)&s.dptr + 11, &key, 4); /* keyed: key in the last 4 bytes */
		if ((r2 >> 24) % 5 == 0) {
			uint8_t *kd = (uint8_t *)&s.dptr;
			kd[8] = (uint8_t)dlen;
			kd[9] = (uint8_t)(dlen >> 8);
			kd[10] = (uint8_t)(dlen >> 16);
		}
		uint32_t n = (uint32_t)(rnd() % 600);
		if ((rnd() & 7) == 0)
			n = 4096;
		for (uint32_t i = 0; i < n; i += 8) {
			uint64_t v = rnd();
			/* descriptor lists: entries that look like keyed descriptors */
			if ((i & 15) == 8 && (v & 1))
				v = (v & 0x00ffff00000000ffull) | ((uint64_t)q.k.rkey << 24) |
				    ((uint64_t)FERRY_NVME_SGL_ID(FERRY_NVME_SGL_KEYED_DATA_BLOCK, 0)
				     << 56);
			memcpy(icd + i, &v, n - i < 8u ? n - i : 8u);
		}
		rh_send(&q, &s, icd, n);
		int st = rh_wait(&q, s.cid, NULL);
		if (st >= 0)
			answered++;
		else
			cr_assert(q.err || RT.rd->qp_state(q.qp, NULL, NULL) != 0,
				  "iteration %d: no response and the connection is up (opcode 0x%x "
				  "sgl 0x%x len %u, capsule %u)",
				  it, s.opcode, sgl_id, dlen, n);
	}
	cr_log_info("random capsules: %u answered, %u connection ends", answered, ended);
	cr_assert_gt(answered, 1000, "%u answered, %u connection ends", answered, ended);
	rh_free(&q);
	rh_free(&a);
	all_gone();
	fresh_host_works();
}

Test(rdma_attack, full_queues_under_buffer_pressure)
{
	/* two I/O queues of 128 entries, each with 128 reads of 64 KiB and ICD writes mixed in
	 * at once (the pool of 256 buffers holds 32 such reads): every command is answered
	 * once with the right bytes; the buffers all come back */
	struct rh_host a = {0}, q[2];
	memset(q, 0, sizeof(q));
	rh_admin_up(&a);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(rh_connect_qp(&q[i], (uint16_t)(1 + i), 127), 0, "sts %u",
			     q[i].rej_sts);
		q[i].cntlid = a.cntlid;
		cr_assert_eq(rh_fabrics_connect(&q[i], (uint16_t)(1 + i), 127, 1), 0);
	}
	/* LBA 0..2047: a known pattern */
	uint8_t *src = rh_data(&q[0], 0);
	rh_pattern(src, 65536, 21);
	for (int j = 0; j < 16; j++) {
		struct ferry_nvme_sqe s;
		rh_rw(&s, q[0].cid++, 1, (uint64_t)j * 128, 128);
		struct ferry_nvmf_rdma_kdesc k = rh_kd(&q[0], 0, 65536);
		cr_assert_eq(rh_cmd_keyed(&q[0], &s, &k, 1, NULL), 0);
	}
	static uint8_t blk[512];
	memset(blk, 0x3c, sizeof(blk));
	for (int i = 0; i < 2; i++) {
		memset(rh_data(&q[i], 65536), 0, RH_DATA - 65536);
		for (int j = 0; j < 128; j++) {
			struct ferry_nvme_sqe s;
			if (j % 8 == 7) {
				rh_rw(&s, (uint16_t)(2000 + j), 1, 3000 + (uint64_t)i * 128 + j, 1);
				ferry_nvmf_rdma_sgl_build_icd(&s, 512);
				rh_send(&q[i], &s, blk, 512);
				continue;
			}
			/* 64 KiB reads into 14 rotating slots of the data area */
			rh_rw(&s, (uint16_t)(2000 + j), 0, (uint64_t)(j % 16) * 128, 128);
			struct ferry_nvmf_rdma_kdesc k =
				rh_kd(&q[i], 65536 + (uint32_t)(j % 14) * 65536, 65536);
			uint8_t icd[16];
			uint32_t used = rh_sgl_keyed(&s, icd, sizeof(icd), &k, 1);
			rh_send(&q[i], &s, icd, used);
		}
	}
	for (int j = 0; j < 128; j++)
		for (int i = 0; i < 2; i++) {
			int st = rh_wait(&q[i], (uint16_t)(2000 + j), NULL);
			cr_assert_eq(st, 0, "queue %d command %d: %d (err %d)", i, j, st, q[i].err);
		}
	for (int i = 0; i < 2; i++)
		for (int s = 0; s < 14; s++)
			cr_assert_eq(memcmp(rh_data(&q[i], 65536 + (uint32_t)s * 65536), src,
					    65536),
				     0, "queue %d slot %d", i, s);
	for (int i = 0; i < 2; i++) {
		q[i].cid = 100;
		rh_queue_works(&q[i], 11);
		rh_free(&q[i]);
	}
	rh_free(&a);
	all_gone();
}

Test(rdma_attack, descriptor_lengths_at_the_limits)
{
	struct rh_host a, q;
	rh_io_pair(&a, &q);
	struct ferry_nvme_sqe s;
	/* zero-length entries in a descriptor list: refused by the codec's rule (an empty RDMA
	 * operation), Data SGL Length Invalid, nothing moved, the queue goes on */
	uint8_t *src = rh_data(&q, 0);
	rh_pattern(src, 8192, 31);
	struct ferry_nvmf_rdma_kdesc kd[16];
	kd[0] = rh_kd(&q, 0, 4096);
	kd[1] = rh_kd(&q, 100000, 0);
	kd[2] = rh_kd(&q, 4096, 4096);
	rh_rw(&s, q.cid++, 1, 700, 16);
	cr_assert_eq(NODNR(rh_cmd_keyed(&q, &s, kd, 3, NULL)), ST(FERRY_NVME_SC_DATA_SGL_LEN));
	/* a single null descriptor on a write of no data (Flush): fine */
	memset(&s, 0, sizeof(s));
	s.opcode = FERRY_NVME_CMD_FLUSH;
	s.cid = q.cid++;
	s.nsid = 1;
	struct ferry_nvmf_rdma_kdesc k = rh_kd(&q, 0, 0);
	cr_assert_eq(rh_cmd_keyed(&q, &s, &k, 1, NULL), 0);
	/* 2 descriptors of 4 KiB, written and read back */
	kd[1] = kd[2];
	rh_rw(&s, q.cid++, 1, 700, 16);
	cr_assert_eq(rh_cmd_keyed(&q, &s, kd, 2, NULL), 0);
	memset(rh_data(&q, 65536), 0, 8192);
	rh_rw(&s, q.cid++, 0, 700, 16);
	k = rh_kd(&q, 65536, 8192);
	cr_assert_eq(rh_cmd_keyed(&q, &s, &k, 1, NULL), 0);
	cr_assert_eq(memcmp(rh_data(&q, 65536), src, 8192), 0);
	/* 16 descriptors adding up to max_io_size + 512, and one of 2^24 - 1 bytes: refused
	 * before any transfer, the queue goes on */
	for (int i = 0; i < 16; i++)
		kd[i] = rh_kd(&q, (uint32_t)i * 8192, i ? 8192 : 8704);
	rh_rw(&s, q.cid++, 1, 0, 257);
	int st = rh_cmd_keyed(&q, &s, kd, 16, NULL);
	cr_assert_gt(st, 0, "past max_io_size: %d", st);
	rh_rw(&s, q.cid++, 0, 0, 1);
	k = rh_kd(&q, 0, 0xffffff);
	cr_assert_gt(rh_cmd_keyed(&q, &s, &k, 1, NULL), 0);
	/* exactly max_io_size in 16 descriptors of 8 KiB, into the far end of the region */
	rh_pattern(rh_data(&q, RH_DATA - 131072), 131072, 32);
	for (int i = 0; i < 16; i++)
		kd[i] = rh_kd(&q, RH_DATA - 131072 + (uint32_t)(15 - i) * 8192, 8192);
	rh_rw(&s, q.cid++, 1, 1200, 256);
	cr_assert_eq(rh_cmd_keyed(&q, &s, kd, 16, NULL), 0);
	memset(rh_data(&q, 0), 0, 131072);
	rh_rw(&s, q.cid++, 0, 1200, 256);
	k = rh_kd(&q, 0, 131072);
	cr_assert_eq(rh_cmd_keyed(&q, &s, &k, 1, NULL), 0);
	for (int i = 0; i < 16; i++)
		cr_assert_eq(memcmp(rh_data(&q, (uint32_t)i * 8192),
				    rh_data(&q, RH_DATA - 131072 + (uint32_t)(15 - i) * 8192),
				    8192),
			     0, "descriptor %d", i);
	cr_assert_eq(q.err, 0);
	cr_assert_eq(rh_totals().closed, 0);
	rh_queue_works(&q, 11);
	rh_free(&q);
	rh_free(&a);
}

Test(rdma_attack, host_that_stops_receiving)
{
	/* A host that posts no more receives: the target's responses find none (RNR), the
	 * connection ends after the mock's RNR time; meanwhile another queue is served */
	struct rh_host a, q2, q1 = {0};
	rh_io_pair(&a, &q2);
	cr_assert_eq(rh_connect_qp(&q1, 2, 127), 0);
	q1.cntlid = a.cntlid;
	cr_assert_eq(rh_fabrics_connect(&q1, 2, 127, 1), 0);
	/* q1's 64 receives are posted; 100 reads: 36 responses find no receive */
	for (int j = 0; j < 100; j++) {
		struct ferry_nvme_sqe s;
		rh_rw(&s, (uint16_t)(500 + j), 0, (uint64_t)j, 1);
		struct ferry_nvmf_rdma_kdesc k = rh_kd(&q1, (uint32_t)j * 512, 512);
		uint8_t icd[16];
		uint32_t used = rh_sgl_keyed(&s, icd, sizeof(icd), &k, 1);
		rh_send(&q1, &s, icd, used);
	}
	uint64_t t0 = rh_now();
	int served = 0;
	while (RT.rd->qp_state(q1.qp, NULL, NULL) == 0 && rh_now() - t0 < RH_WAIT_NS) {
		struct ferry_hal_rdma_wc wc[16];
		(void)RT.rd->cq_poll(q1.cq, wc, 16); /* taken, never reposted */
		q2.cid = (uint16_t)(100 + (served % 1000));
		rh_queue_works(&q2, 11);
		served++;
	}
	cr_assert_neq(RT.rd->qp_state(q1.qp, NULL, NULL), 0, "the connection survived RNR");
	cr_assert_gt(served, 3, "the other queue was not served meanwhile");
	RH_UNTIL(&q2, rh_totals().conns == 2);
	cr_assert_eq(rh_totals().conns, 2);
	cr_assert_geq(rh_totals().qp_errors, 1);
	rh_free(&q1);
	q2.cid = 3000;
	rh_queue_works(&q2, 11);
	rh_free(&q2);
	rh_free(&a);
	all_gone();
}

Test(rdma_attack, duplicate_io_queue_and_foreign_cntlid)
{
	struct rh_host a, q;
	rh_io_pair(&a, &q);
	/* a second connection claiming queue 1 of the same controller: refused; the first
	 * keeps working */
	struct rh_host d = {0};
	cr_assert_eq(rh_connect_qp(&d, 1, 63), 0);
	d.cntlid = a.cntlid;
	cr_assert_gt(rh_fabrics_connect(&d, 1, 63, 1), 0, "queue 1 connected twice");
	rh_free(&d);
	rh_queue_works(&q, 11);
	/* an I/O Connect naming a controller id that does not exist, and one of another host's
	 * controller (host NQN differs) */
	cr_assert_eq(rh_connect_qp(&d, 2, 63), 0);
	d.cntlid = (uint16_t)(a.cntlid + 7);
	cr_assert_gt(rh_fabrics_connect(&d, 2, 63, 1), 0, "unknown cntlid accepted");
	rh_free(&d);
	cr_assert_eq(rh_connect_qp(&d, 2, 63), 0);
	struct ferry_nvmf_connect_cmd c = {0};
	c.opcode = FERRY_NVMF_OPC_FABRICS;
	c.fctype = FERRY_NVMF_FCTYPE_CONNECT;
	c.cid = 9;
	c.qid = 2;
	c.sqsize = 63;
	struct ferry_nvmf_connect_data cd = {0};
	memset(cd.hostid, 0x5a, sizeof(cd.hostid));
	cd.cntlid = a.cntlid;
	snprintf(cd.subnqn, sizeof(cd.subnqn), "%s", RH_NQN);
	snprintf(cd.hostnqn, sizeof(cd.hostnqn), "nqn.2014-08.org.nvmexpress:uuid:intruder");
	int st = rh_cmd_icd(&d, (struct ferry_nvme_sqe *)(void *)&c, &cd, sizeof(cd), NULL);
	cr_assert_gt(st, 0, "another host's controller accepted an I/O queue");
	/* and I/O on it is refused */
	struct ferry_nvme_sqe s;
	rh_rw(&s, 10, 0, 0, 1);
	struct ferry_nvmf_rdma_kdesc k = rh_kd(&d, 0, 512);
	st = rh_cmd_keyed(&d, &s, &k, 1, NULL);
	cr_assert(st != 0, "I/O on a refused queue executed");
	rh_free(&d);
	rh_queue_works(&q, 11);
	rh_free(&q);
	rh_free(&a);
	all_gone();
}

Test(rdma_attack, queue_sizes_at_the_limits)
{
	/* admin: 128 entries at most; I/O: max_queue_depth (128) */
	struct rh_host h = {0};
	cr_assert_eq(rh_connect_qp(&h, 0, 127), 0);
	cr_assert_eq(h.crqsize, 128);
	cr_assert_eq(rh_fabrics_connect(&h, 0, 127, 1), 0);
	/* a Connect asking for more than the connect request did */
	struct rh_host g = {0};
	cr_assert_eq(rh_connect_qp(&g, 0, 15), 0);
	cr_assert_gt(rh_fabrics_connect(&g, 0, 16, 1), 0);
	rh_free(&g);
	cr_assert_eq(rh_connect_qp(&g, 0, 128), -ECONNREFUSED);
	cr_assert_eq(g.rej_sts, FERRY_NVMF_RDMA_CM_INVALID_HSQSIZE);
	rh_free(&g);
	cr_assert_eq(rh_connect_qp(&g, 1, 127), 0);
	cr_assert_eq(g.crqsize, 128);
	rh_free(&g);
	cr_assert_eq(rh_connect_qp(&g, 1, 128), -ECONNREFUSED);
	cr_assert_eq(g.rej_sts, FERRY_NVMF_RDMA_CM_INVALID_HSQSIZE);
	rh_free(&g);
	/* the smallest queues: 2 entries (hsqsize 1) */
	cr_assert_eq(rh_connect_qp(&g, 1, 1), 0);
	cr_assert_eq(g.crqsize, 2);
	g.cntlid = h.cntlid;
	rh_enable(&h);
	cr_assert_eq(rh_fabrics_connect(&g, 1, 1, 1), 0);
	g.cid = 5;
	rh_queue_works(&g, 11);
	/* two commands in flight on a 2-entry queue: both answered */
	for (int i = 0; i < 2; i++) {
		struct ferry_nvme_sqe s;
		rh_rw(&s, (uint16_t)(40 + i), 0, 0, 1);
		struct ferry_nvmf_rdma_kdesc k = rh_kd(&g, (uint32_t)i * 512, 512);
		uint8_t icd[16];
		uint32_t used = rh_sgl_keyed(&s, icd, sizeof(icd), &k, 1);
		rh_send(&g, &s, icd, used);
	}
	cr_assert_eq(rh_wait(&g, 40, NULL), 0);
	cr_assert_eq(rh_wait(&g, 41, NULL), 0);
	rh_free(&g);
	rh_free(&h);
	all_gone();
}

/* rh_connect_qp() with the host QP's responder_resources @p rr (RDMA READs of the target it
 * serves at once). */
static int connect_rr(struct rh_host *h, uint16_t qid, uint16_t hsqsize, uint8_t rr)
{
	rh_mem(h);
	h->cid = 1;
	h->err = 0;
	h->q.n = 0;
	uint8_t pd[32];
	ferry_nvmf_rdma_cm_req_build(pd, sizeof(pd), qid, (uint16_t)(hsqsize + 1), hsqsize);
	struct ferry_hal_rdma_qp_attr a = {.size = sizeof(a),
					   .cq = h->cq,
					   .max_send_wr = 256,
					   .max_recv_wr = RH_RECVS,
					   .max_send_sge = 4,
					   .max_recv_sge = 1,
					   .initiator_depth = 4,
					   .responder_resources = rr};
	cr_assert_eq(RT.rd->connect(RT.dev, RT.addr, &a, pd, 32, 3000, &h->qp), 0);
	for (uint32_t i = 0; i < RH_RECVS; i++)
		rh_post_recv(h, i);
	uint64_t end = rh_now() + RH_WAIT_NS;
	int st;
	while ((st = RT.rd->qp_state(h->qp, NULL, NULL)) == -EINPROGRESS && rh_now() < end)
		rh_poll(h);
	return st;
}

Test(rdma_attack, host_with_one_responder_resource)
{
	/* The host's QP serves one RDMA READ at a time (responder_resources 1, as the
	 * connection manager tells the target): the target's 16-descriptor writes (16 READs,
	 * its initiator depth 16) and 8 such writes at once must keep to it, not fail the
	 * connection; the data is right */
	struct rh_host a = {0}, q = {0};
	rh_admin_up(&a);
	cr_assert_eq(connect_rr(&q, 1, 63, 1), 0);
	q.cntlid = a.cntlid;
	cr_assert_eq(rh_fabrics_connect(&q, 1, 63, 1), 0);
	uint8_t *src = rh_data(&q, 0);
	rh_pattern(src, 131072, 41);
	struct ferry_nvmf_rdma_kdesc kd[16];
	for (int i = 0; i < 16; i++)
		kd[i] = rh_kd(&q, (uint32_t)i * 8192, 8192);
	for (int j = 0; j < 8; j++) {
		struct ferry_nvme_sqe s;
		rh_rw(&s, (uint16_t)(300 + j), 1, (uint64_t)j * 256, 256);
		uint8_t icd[16 * 16];
		uint32_t used = rh_sgl_keyed(&s, icd, sizeof(icd), kd, 16);
		rh_send(&q, &s, icd, used);
	}
	for (int j = 0; j < 8; j++)
		cr_assert_eq(rh_wait(&q, (uint16_t)(300 + j), NULL), 0, "write %d (err %d)", j,
			     q.err);
	for (int j = 0; j < 8; j++) {
		memset(rh_data(&q, 262144), 0, 131072);
		struct ferry_nvme_sqe s;
		rh_rw(&s, q.cid++, 0, (uint64_t)j * 256, 256);
		struct ferry_nvmf_rdma_kdesc k = rh_kd(&q, 262144, 131072);
		cr_assert_eq(rh_cmd_keyed(&q, &s, &k, 1, NULL), 0);
		cr_assert_eq(memcmp(rh_data(&q, 262144), src, 131072), 0, "write %d's data", j);
	}
	cr_assert_eq(rh_totals().qp_errors, 0);
	rh_free(&q);
	rh_free(&a);
	all_gone();
}

Test(rdma_attack, parked_requests_and_keep_alive_edges)
{
	/* Asynchronous Event Requests parked on the admin queue, then the host goes (with an
	 * I/O queue open): the association ends, nothing is left; keep-alive commands every
	 * 300 ms hold a 1 s kato for 3 s */
	for (int round = 0; round < 2; round++) {
		struct rh_host a = {0}, q = {0};
		cr_assert_eq(rh_connect_qp(&a, 0, 31), 0);
		cr_assert_eq(connect_kato(&a, 0, 31, 1000), 0);
		rh_enable(&a);
		rh_io_up(&q, &a, 1);
		for (int i = 0; i < 4; i++) {
			struct ferry_nvme_sqe s = {0};
			s.opcode = FERRY_NVME_ADM_ASYNC_EVENT;
			s.cid = (uint16_t)(900 + i);
			uint8_t icd[16];
			uint32_t used = rh_sgl_keyed(&s, icd, sizeof(icd), NULL, 0);
			rh_send(&a, &s, icd, used);
		}
		uint64_t end = rh_now() + 3000000000ull, next = 0;
		while (round == 1 && rh_now() < end) {
			if (rh_now() >= next) {
				struct ferry_nvme_sqe s = {0};
				s.opcode = FERRY_NVME_ADM_KEEP_ALIVE;
				s.cid = a.cid++;
				cr_assert_eq(rh_cmd_keyed(&a, &s, NULL, 0, NULL), 0,
					     "keep-alive refused");
				next = rh_now() + 300000000ull;
			}
			rh_poll(&q);
		}
		cr_assert_eq(rh_totals().kato_expired, 0, "kato expired with keep-alives sent");
		rh_queue_works(&q, 11);
		if (round == 0)
			rh_free(&a); /* the admin queue goes first, the AERs parked */
		rh_free(&q);
		rh_free(&a);
		all_gone();
	}
	fresh_host_works();
}
