/*
 * The "rdma" target transport against a hostile host (test_rdma_host.h over the mock RDMA
 * NIC): every malformed field of the connect request's private data is rejected with its
 * RDMA_CM status; max_connections gives NO_RSC; bad data pointers (SGL types, lengths,
 * offsets, descriptor counts, ICD on a read, data past MDTS) complete with the right NVMe
 * status and the queue keeps working; a reused command id (in flight: a conflict; after its
 * response: fine); a Connect that does not match the connect request; a capsule shorter than
 * an SQE and a flood past the queue size end the connection; a bad rkey (RDMA READ and WRITE
 * fault) tears the connection down and the next host works; a disconnect with I/O in flight
 * leaves nothing behind.
 */
#include "test_rdma_host.h"

static void up(void)
{
	rh_tgt_up("buffers=256,idle_us=0,max_connections=4,max_io_queues=2");
}

TestSuite(rdma_hostile, .init = up, .fini = rh_tgt_down, .timeout = 90);

static void pd_req(uint8_t *pd, uint16_t recfmt, uint16_t qid, uint16_t hrqsize, uint16_t hsqsize)
{
	memset(pd, 0, 32);
	memcpy(pd, &recfmt, 2);
	memcpy(pd + 2, &qid, 2);
	memcpy(pd + 4, &hrqsize, 2);
	memcpy(pd + 6, &hsqsize, 2);
	uint16_t cntlid = 0xffff;
	memcpy(pd + 8, &cntlid, 2);
}

static void expect_reject(const void *pd, uint32_t len, uint16_t sts, const char *what)
{
	struct rh_host h = {0};
	int st = rh_connect_raw(&h, pd, len);
	cr_assert_eq(st, -ECONNREFUSED, "%s: state %d", what, st);
	cr_assert_eq(h.rej_sts, sts, "%s: reject status %u (%s), want %u", what, h.rej_sts,
		     ferry_nvmf_rdma_cm_sts_str(h.rej_sts), sts);
	rh_free(&h);
}

Test(rdma_hostile, private_data_rejected)
{
	uint8_t pd[32] = {0};
	expect_reject(pd, 0, FERRY_NVMF_RDMA_CM_INVALID_LEN, "no private data");
	pd_req(pd, 0, 0, 32, 31);
	expect_reject(pd, 16, FERRY_NVMF_RDMA_CM_INVALID_LEN, "16 bytes");
	pd_req(pd, 1, 0, 32, 31);
	expect_reject(pd, 32, FERRY_NVMF_RDMA_CM_INVALID_RECFMT, "recfmt 1");
	pd_req(pd, 0, 3, 64, 63);
	expect_reject(pd, 32, FERRY_NVMF_RDMA_CM_INVALID_QID, "qid past max_io_queues");
	pd_req(pd, 0, 0, 32, 0);
	expect_reject(pd, 32, FERRY_NVMF_RDMA_CM_INVALID_HSQSIZE, "hsqsize 0");
	pd_req(pd, 0, 1, 64, 128);
	expect_reject(pd, 32, FERRY_NVMF_RDMA_CM_INVALID_HSQSIZE, "hsqsize = depth");
	pd_req(pd, 0, 0, 0, 31);
	expect_reject(pd, 32, FERRY_NVMF_RDMA_CM_INVALID_HRQSIZE, "hrqsize 0");
	pd_req(pd, 0, 1, 129, 63);
	expect_reject(pd, 32, FERRY_NVMF_RDMA_CM_INVALID_HRQSIZE, "hrqsize past the depth");
	struct ferry_rdma_transport_totals t = rh_totals();
	cr_assert_eq(t.rejected, 8);
	cr_assert_eq(t.accepted, 0);
	cr_assert_eq(t.conns, 0);
	/* and a good one still works */
	struct rh_host h = {0};
	rh_admin_up(&h);
	rh_free(&h);
}

Test(rdma_hostile, max_connections_no_rsc)
{
	struct rh_host h[5];
	memset(h, 0, sizeof(h));
	for (int i = 0; i < 4; i++)
		cr_assert_eq(rh_connect_qp(&h[i], 0, 31), 0, "connection %d", i);
	cr_assert_eq(rh_connect_qp(&h[4], 0, 31), -ECONNREFUSED);
	cr_assert_eq(h[4].rej_sts, FERRY_NVMF_RDMA_CM_NO_RSC);
	struct ferry_rdma_transport_totals t = rh_totals();
	cr_assert_eq(t.refused, 1);
	cr_assert_eq(t.conns, 4);
	/* one goes: the next is accepted */
	rh_close(&h[0]);
	RH_UNTIL(NULL, rh_totals().conns == 3);
	cr_assert_eq(rh_connect_qp(&h[4], 0, 31), 0);
	for (int i = 0; i < 5; i++)
		rh_free(&h[i]);
	RH_UNTIL(NULL, rh_totals().conns == 0);
	cr_assert_eq(rh_totals().conns, 0);
}

#define ST(sc) FERRY_NVME_STATUS(FERRY_NVME_SCT_GENERIC, sc)
#define NODNR(st) ((st) & ~FERRY_NVME_STATUS_DNR)

Test(rdma_hostile, bad_sgls_fail_the_command)
{
	struct rh_host a, q;
	rh_io_pair(&a, &q);
	struct ferry_nvme_sqe s;
	struct ferry_nvme_cqe cqe;
	uint8_t icd[512];
	memset(icd, 0, sizeof(icd));
	/* unknown descriptor type (bit bucket) */
	rh_rw(&s, q.cid++, 1, 0, 8);
	s.flags = (uint8_t)(1u << 6);
	s.dptr.sgl.id = FERRY_NVME_SGL_ID(FERRY_NVME_SGL_BIT_BUCKET, 0);
	s.dptr.sgl.length = 4096;
	rh_send(&q, &s, NULL, 0);
	cr_assert_eq(NODNR(rh_wait(&q, s.cid, &cqe)), ST(FERRY_NVME_SC_SGL_TYPE));
	/* PRPs (PSDT 0) */
	rh_rw(&s, q.cid++, 0, 0, 8);
	rh_send(&q, &s, NULL, 0);
	int st = rh_wait(&q, s.cid, NULL);
	cr_assert(st > 0, "PRP data pointer accepted");
	/* keyed length not what the command moves: the core says so, or the parse */
	rh_rw(&s, q.cid++, 0, 0, 8);
	struct ferry_nvmf_rdma_kdesc k = rh_kd(&q, 0, 512);
	st = rh_cmd_keyed(&q, &s, &k, 1, NULL);
	cr_assert(st > 0, "a 512-byte descriptor for a 4 KiB read accepted");
	/* keyed data past max_io_size (128 KiB) */
	rh_rw(&s, q.cid++, 0, 0, 512);
	k = rh_kd(&q, 0, 262144);
	cr_assert_eq(NODNR(rh_cmd_keyed(&q, &s, &k, 1, NULL)), ST(FERRY_NVME_SC_DATA_SGL_LEN));
	/* ICD with a nonzero offset past the capsule */
	rh_rw(&s, q.cid++, 1, 0, 1);
	s.flags = (uint8_t)(1u << 6);
	s.dptr.sgl.id = FERRY_NVME_SGL_ID(FERRY_NVME_SGL_DATA_BLOCK, FERRY_NVME_SGL_SUBTYPE_OFFSET);
	s.dptr.sgl.address = 256;
	s.dptr.sgl.length = 512;
	rh_send(&q, &s, icd, 512);
	st = rh_wait(&q, s.cid, NULL);
	cr_assert(NODNR(st) == ST(FERRY_NVME_SC_SGL_OFFSET) ||
			  NODNR(st) == ST(FERRY_NVME_SC_DATA_SGL_LEN),
		  "ICD past the capsule: status 0x%x", st);
	/* ICD length past what came in */
	rh_rw(&s, q.cid++, 1, 0, 8);
	ferry_nvmf_rdma_sgl_build_icd(&s, 4096);
	rh_send(&q, &s, icd, 512);
	st = rh_wait(&q, s.cid, NULL);
	cr_assert(st > 0, "ICD longer than the capsule accepted");
	/* ICD on a read */
	rh_rw(&s, q.cid++, 0, 0, 1);
	ferry_nvmf_rdma_sgl_build_icd(&s, 512);
	rh_send(&q, &s, icd, 512);
	cr_assert_eq(NODNR(rh_wait(&q, s.cid, NULL)), ST(FERRY_NVME_SC_INVALID_FIELD));
	/* a last-segment descriptor with 17 entries (max_sgl_desc 16) */
	rh_rw(&s, q.cid++, 1, 0, 17);
	uint8_t list[17 * 16];
	for (int i = 0; i < 17; i++) {
		struct ferry_nvmf_rdma_keyed_sgl *e = (void *)(list + i * 16);
		e->addr = q.k.addr + RH_DATA_OFF + (uint64_t)i * 512;
		e->length[0] = 0;
		e->length[1] = 2;
		e->length[2] = 0;
		memcpy(e->key, &q.k.rkey, 4);
		e->id = FERRY_NVME_SGL_ID(FERRY_NVME_SGL_KEYED_DATA_BLOCK, 0);
	}
	s.flags = (uint8_t)(1u << 6);
	s.dptr.sgl.id = FERRY_NVME_SGL_ID(FERRY_NVME_SGL_LAST_SEGMENT,
					  FERRY_NVME_SGL_SUBTYPE_OFFSET);
	s.dptr.sgl.address = 0;
	s.dptr.sgl.length = sizeof(list);
	rh_send(&q, &s, list, sizeof(list));
	st = rh_wait(&q, s.cid, NULL);
	cr_assert(st > 0, "17 descriptors accepted");
	/* a segment list longer than the capsule carries */
	rh_rw(&s, q.cid++, 1, 0, 2);
	s.flags = (uint8_t)(1u << 6);
	s.dptr.sgl.id = FERRY_NVME_SGL_ID(FERRY_NVME_SGL_LAST_SEGMENT,
					  FERRY_NVME_SGL_SUBTYPE_OFFSET);
	s.dptr.sgl.length = 32;
	rh_send(&q, &s, list, 16);
	st = rh_wait(&q, s.cid, NULL);
	cr_assert(st > 0, "a descriptor list past the capsule accepted");
	/* keyed data for a Flush (no data) */
	memset(&s, 0, sizeof(s));
	s.opcode = FERRY_NVME_CMD_FLUSH;
	s.cid = q.cid++;
	s.nsid = 1;
	k = rh_kd(&q, 0, 4096);
	cr_assert_eq(NODNR(rh_cmd_keyed(&q, &s, &k, 1, NULL)), ST(FERRY_NVME_SC_INVALID_FIELD));
	cr_assert_eq(q.err, 0, "the QP failed");
	rh_queue_works(&q, 9);
	struct ferry_rdma_transport_totals t = rh_totals();
	cr_assert_eq(t.qp_errors, 0);
	cr_assert_eq(t.closed, 0);
	rh_free(&q);
	rh_free(&a);
}

Test(rdma_hostile, cid_reuse_and_connect_mismatch)
{
	struct rh_host a, q;
	rh_io_pair(&a, &q);
	/* Two writes with the same cid, the second sent before the first can finish: the
	 * second gets a conflict, the first completes normally. */
	uint8_t *d = rh_data(&q, 0);
	rh_pattern(d, 131072, 5);
	struct ferry_nvme_sqe s1, s2;
	rh_rw(&s1, 77, 1, 0, 256);
	rh_rw(&s2, 77, 1, 512, 8);
	struct ferry_nvmf_rdma_kdesc k1 = rh_kd(&q, 0, 131072), k2 = rh_kd(&q, 0, 4096);
	uint8_t icd[16];
	uint32_t u = rh_sgl_keyed(&s1, icd, sizeof(icd), &k1, 1);
	rh_send(&q, &s1, icd, u);
	u = rh_sgl_keyed(&s2, icd, sizeof(icd), &k2, 1);
	rh_send(&q, &s2, icd, u);
	struct ferry_nvme_cqe c1, c2;
	int st1 = rh_wait(&q, 77, &c1);
	int st2 = rh_wait(&q, 77, &c2);
	cr_assert((NODNR(st1) == ST(FERRY_NVME_SC_CID_CONFLICT) && st2 == 0) ||
			  (st1 == 0 && NODNR(st2) == ST(FERRY_NVME_SC_CID_CONFLICT)),
		  "statuses 0x%x 0x%x", st1, st2);
	memset(rh_data(&q, 262144), 0, 131072);
	struct ferry_nvme_sqe s;
	rh_rw(&s, q.cid++, 0, 0, 256);
	struct ferry_nvmf_rdma_kdesc k = rh_kd(&q, 262144, 131072);
	cr_assert_eq(rh_cmd_keyed(&q, &s, &k, 1, NULL), 0);
	cr_assert_eq(memcmp(rh_data(&q, 262144), d, 131072), 0, "the first write was lost");
	/* cid 77 is free again, each time the host has seen its response (the target may not
	 * have polled its SEND's completion yet: no false conflict) */
	for (int i = 0; i < 50; i++) {
		rh_rw(&s, 77, i & 1, 0, 8);
		k = rh_kd(&q, 262144, 4096);
		cr_assert_eq(rh_cmd_keyed(&q, &s, &k, 1, NULL), 0, "reuse %d", i);
	}
	/* An I/O QP connected as qid 2 whose Connect says qid 1, and SQSIZE past HSQSIZE. */
	struct rh_host b = {0};
	cr_assert_eq(rh_connect_qp(&b, 2, 15), 0);
	b.cntlid = a.cntlid;
	cr_assert_eq(rh_fabrics_connect(&b, 1, 15, 1),
		     FERRY_NVME_STATUS(FERRY_NVME_SCT_COMMAND,
				       FERRY_NVMF_SC_CONNECT_INVALID_PARAM) |
			     FERRY_NVME_STATUS_DNR);
	cr_assert_eq(rh_fabrics_connect(&b, 2, 63, 1),
		     FERRY_NVME_STATUS(FERRY_NVME_SCT_COMMAND,
				       FERRY_NVMF_SC_CONNECT_INVALID_PARAM) |
			     FERRY_NVME_STATUS_DNR);
	cr_assert_eq(rh_fabrics_connect(&b, 2, 15, 1), 0);
	rh_free(&b);
	rh_free(&q);
	rh_free(&a);
}

Test(rdma_hostile, short_capsule_ends_the_connection)
{
	struct rh_host a, q;
	rh_io_pair(&a, &q);
	/* a 32-byte SEND */
	uint8_t *p = q.mem + RH_CAP_OFF;
	memset(p, 0, 64);
	struct ferry_hal_rdma_sge sge = {.addr = q.k.addr + RH_CAP_OFF,
					 .len = 32,
					 .lkey = q.k.lkey};
	struct ferry_hal_rdma_wr w = {.wr_id = 1,
				      .opcode = FERRY_HAL_RDMA_OP_SEND,
				      .sge = &sge,
				      .nsge = 1};
	cr_assert_eq(RT.rd->post_send(q.qp, &w, NULL), 0);
	RH_UNTIL(&q, RT.rd->qp_state(q.qp, NULL, NULL) != 0);
	cr_assert_eq(RT.rd->qp_state(q.qp, NULL, NULL), -ECONNRESET);
	rh_free(&q);
	/* the admin queue still works, and a new I/O queue too */
	uint64_t v = 0;
	cr_assert_eq(rh_prop(&a, 0, FERRY_NVME_REG_CSTS, 4, &v), 0);
	rh_io_up(&q, &a, 1);
	rh_queue_works(&q, 9);
	rh_free(&q);
	rh_free(&a);
}

Test(rdma_hostile, bad_rkey_tears_down_the_connection)
{
	struct rh_host a, q;
	rh_io_pair(&a, &q);
	/* a write whose descriptor names a key the host never registered: the target's RDMA
	 * READ faults, the QP errors, the connection goes */
	struct ferry_nvme_sqe s;
	rh_rw(&s, q.cid++, 1, 0, 8);
	struct ferry_nvmf_rdma_kdesc k = rh_kd(&q, 0, 4096);
	k.key ^= 0x5a5a0000u;
	rh_cmd_keyed(&q, &s, &k, 1, NULL);
	RH_UNTIL(&q, RT.rd->qp_state(q.qp, NULL, NULL) != 0 && rh_totals().conns == 1);
	cr_assert_neq(RT.rd->qp_state(q.qp, NULL, NULL), 0);
	struct ferry_rdma_transport_totals t = rh_totals();
	cr_assert_geq(t.qp_errors, 1);
	cr_assert_eq(t.conns, 1, "the I/O connection was not torn down");
	rh_free(&q);
	/* a read whose descriptor is out of the region (RDMA WRITE faults) on a new queue */
	rh_io_up(&q, &a, 1);
	rh_rw(&s, q.cid++, 0, 0, 8);
	k = rh_kd(&q, RH_DATA - 512, 4096);
	rh_cmd_keyed(&q, &s, &k, 1, NULL);
	RH_UNTIL(&q, rh_totals().conns == 1);
	cr_assert_eq(rh_totals().conns, 1);
	cr_assert_geq(rh_totals().qp_errors, 2);
	/* nothing was written past the region's end (the mock refuses the whole WRITE) */
	rh_free(&q);
	/* the next host works */
	rh_io_up(&q, &a, 1);
	rh_queue_works(&q, 9);
	rh_free(&q);
	rh_free(&a);
	RH_UNTIL(NULL, rh_totals().conns == 0 && rh_totals().ctrlrs == 0);
	cr_assert_eq(rh_totals().ctrlrs, 0);
}

Test(rdma_hostile, disconnect_with_io_in_flight)
{
	for (int round = 0; round < 3; round++) {
		struct rh_host a, q;
		rh_io_pair(&a, &q);
		uint8_t *d = rh_data(&q, 0);
		rh_pattern(d, 131072, 6);
		/* 16 large writes and reads posted, then both QPs go at once */
		for (int i = 0; i < 16; i++) {
			struct ferry_nvme_sqe s;
			rh_rw(&s, q.cid++, i & 1, (uint64_t)i * 256, 256);
			struct ferry_nvmf_rdma_kdesc k = rh_kd(&q, (i & 1) ? 0 : 262144, 131072);
			uint8_t icd[16];
			uint32_t u = rh_sgl_keyed(&s, icd, sizeof(icd), &k, 1);
			rh_send(&q, &s, icd, u);
		}
		for (int i = 0; i < round * 3; i++)
			rh_poll(&q);
		rh_free(&q);
		if (round != 1)
			rh_free(&a);
		else
			rh_close(&a);
		RH_UNTIL(NULL, rh_totals().conns == 0 && rh_totals().ctrlrs == 0);
		struct ferry_rdma_transport_totals t = rh_totals();
		cr_assert_eq(t.conns, 0, "round %d: connections left", round);
		cr_assert_eq(t.ctrlrs, 0, "round %d: controllers left", round);
		if (round == 1)
			rh_free(&a);
	}
	/* and the target serves the next host */
	struct rh_host a, q;
	rh_io_pair(&a, &q);
	rh_queue_works(&q, 9);
	rh_free(&q);
	rh_free(&a);
}

Test(rdma_hostile, flood_past_the_queue_size)
{
	/* 200 reads SENT at once on a 64-entry queue (the host ignores its SQ size): the target
	 * takes what its receives hold (more: RNR, the NIC's business) and either answers every
	 * one correctly or ends the connection for commands beyond its requests; never a crash or
	 * a wedge, and the next queue works. */
	struct rh_host a, q;
	rh_io_pair(&a, &q);
	rh_pattern(rh_data(&q, 0), 8192, 11);
	struct ferry_nvme_sqe s;
	rh_rw(&s, q.cid++, 1, 0, 16);
	struct ferry_nvmf_rdma_kdesc k = rh_kd(&q, 0, 8192);
	cr_assert_eq(rh_cmd_keyed(&q, &s, &k, 1, NULL), 0);
	for (uint32_t i = 0; i < 200; i++) {
		rh_rw(&s, (uint16_t)(1000 + i), 0, (i % 16), 1);
		k = rh_kd(&q, 65536 + i * 512, 512);
		uint8_t icd[16];
		uint32_t u = rh_sgl_keyed(&s, icd, sizeof(icd), &k, 1);
		rh_send(&q, &s, icd, u);
	}
	RH_UNTIL(&q, q.q.n == 200 || q.err || RT.rd->qp_state(q.qp, NULL, NULL) != 0);
	if (q.q.n == 200 && !q.err) {
		for (uint32_t i = 0; i < 200; i++)
			cr_assert_eq(q.q.e[i].status >> 1, 0, "read %u", i);
		for (uint32_t i = 0; i < 200; i++)
			cr_assert_eq(memcmp(rh_data(&q, 65536 + i * 512),
					    rh_data(&q, (i % 16) * 512), 512),
				     0, "read %u", i);
	} else {
		RH_UNTIL(&q, rh_totals().conns == 1);
		cr_assert_eq(rh_totals().conns, 1, "the flooding queue was not torn down");
	}
	rh_free(&q);
	rh_io_up(&q, &a, 1);
	rh_queue_works(&q, 9);
	rh_free(&q);
	rh_free(&a);
}

Test(rdma_hostile, destroy_with_hosts_connected)
{
	/* The instance goes with an association up, writes in flight and a connect request
	 * pending: every host QP is disconnected, the controllers are destroyed (the fini's
	 * subsystem destroy checks), and a new instance serves the next host. */
	struct rh_host a, q;
	rh_io_pair(&a, &q);
	rh_pattern(rh_data(&q, 0), 131072, 13);
	for (int i = 0; i < 8; i++) {
		struct ferry_nvme_sqe s;
		rh_rw(&s, q.cid++, 1, (uint64_t)i * 256, 256);
		struct ferry_nvmf_rdma_kdesc k = rh_kd(&q, 0, 131072);
		uint8_t icd[16];
		uint32_t u = rh_sgl_keyed(&s, icd, sizeof(icd), &k, 1);
		rh_send(&q, &s, icd, u);
	}
	rh_poll(&q);
	struct rh_host p = {0};
	rh_mem(&p);
	uint8_t pd[32];
	ferry_nvmf_rdma_cm_req_build(pd, sizeof(pd), 0, 32, 31);
	struct ferry_hal_rdma_qp_attr at = {.size = sizeof(at),
					    .cq = p.cq,
					    .max_send_wr = 16,
					    .max_recv_wr = 16,
					    .max_send_sge = 1,
					    .max_recv_sge = 1,
					    .initiator_depth = 1,
					    .responder_resources = 1};
	cr_assert_eq(RT.rd->connect(RT.dev, RT.addr, &at, pd, 32, 3000, &p.qp), 0);
	ferry_transport_destroy(RT.t);
	RT.t = NULL;
	struct rh_host *hs[3] = {&a, &q, &p};
	uint64_t end = rh_now() + RH_WAIT_NS;
	int left = 3;
	while (left && rh_now() < end) {
		left = 0;
		for (int i = 0; i < 3; i++) {
			struct ferry_hal_rdma_wc wc[16];
			RT.rd->cq_poll(hs[i]->cq, wc, 16);
			int st = RT.rd->qp_state(hs[i]->qp, NULL, NULL);
			left += st == 0 || st == -EINPROGRESS;
		}
	}
	cr_assert_eq(left, 0, "a host QP still up after the instance went");
	for (int i = 0; i < 3; i++)
		rh_free(hs[i]);
	struct ferry_transport_opts to = {.size = sizeof(to),
					  .device = RT.dev,
					  .args = "buffers=256,idle_us=0"};
	cr_assert_eq(ferry_transport_create("rdma", &to, &RT.t), 0);
	cr_assert_eq(ferry_transport_listen(RT.t, RT.ss, "127.0.0.1:0"), 0);
	cr_assert_eq(ferry_rdma_transport_get_listen_addr(RT.t, 0, RT.addr, sizeof(RT.addr)), 0);
	rh_io_pair(&a, &q);
	rh_queue_works(&q, 9);
	rh_free(&q);
	rh_free(&a);
}
