/*
 * The "rdma" target transport end to end over the mock RDMA NIC with a raw host
 * (test_rdma_host.h): RDMA_CM private data (accept with crqsize), admin Connect (data by keyed
 * SGL), Property Get/Set, enable, Identify, I/O Connect (data in the capsule), writes keyed and
 * in-capsule then reads verified byte for byte, several keyed descriptors (scatter across
 * host memory and across the target's buffers), large transfers (RDMA READs past the QP's
 * initiator depth), discovery log entries, registration and the counters API.
 */
#include "test_rdma_host.h"

static void up(void)
{
	rh_tgt_up("buffers=256,idle_us=0");
}

TestSuite(rdma_transport, .init = up, .fini = rh_tgt_down, .timeout = 60);

Test(rdma_transport, registered_after_tcp)
{
	const struct ferry_transport_ops *ops = ferry_transport_find("rdma");
	cr_assert(ops);
	cr_assert_eq(ferry_transport_get(1), ferry_transport_find("tcp"));
	cr_assert_eq(ferry_transport_get(2), ops);
	cr_assert_eq(ferry_transport_get_kind(RT.t), FERRY_TRANSPORT_MESSAGE);
	char a[8];
	cr_assert_eq(ferry_rdma_transport_get_listen_addr(RT.t, 0, a, sizeof(a)), -ENOBUFS);
	cr_assert_eq(ferry_rdma_transport_get_listen_addr(RT.t, 1, a, sizeof(a)), -ENOENT);
	struct ferry_rdma_transport_totals t = {.size = 3};
	cr_assert_eq(ferry_rdma_transport_get_totals(RT.t, &t), -EINVAL);
}

Test(rdma_transport, bad_args_refused)
{
	struct ferry_transport *t = NULL;
	const char *bad[] = {"nope=1",
			     "in_capsule_data_size=100",
			     "max_io_size=5000",
			     "max_queue_depth=1",
			     "max_sgl_desc=17",
			     "buffers=1",
			     "max_io_size=1048576,buffers=16"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ferry_transport_opts o = {.size = sizeof(o),
						 .device = RT.dev,
						 .args = bad[i]};
		cr_assert_eq(ferry_transport_create("rdma", &o, &t), -EINVAL, "%s accepted",
			     bad[i]);
	}
	/* A device without the RDMA part is refused. */
	struct ferry_device *d = NULL;
	cr_assert_eq(ferry_device_open("mock", "rdma=0", &d), 0);
	struct ferry_transport_opts o = {.size = sizeof(o), .device = d};
	cr_assert_lt(ferry_transport_create("rdma", &o, &t), 0);
	ferry_device_close(d);
}

Test(rdma_transport, admin_connect_identify)
{
	struct rh_host h = {0};
	rh_admin_up(&h);
	cr_assert_neq(h.cntlid, 0xffff);
	/* Identify controller by keyed SGL: RDMA WRITE then the response. */
	memset(rh_data(&h, 0), 0xee, 4096);
	struct ferry_nvme_sqe s = {0};
	s.opcode = FERRY_NVME_ADM_IDENTIFY;
	s.cid = h.cid++;
	s.cdw10 = 1; /* CNS 1: controller */
	struct ferry_nvmf_rdma_kdesc k = rh_kd(&h, 0, 4096);
	cr_assert_eq(rh_cmd_keyed(&h, &s, &k, 1, NULL), 0);
	const uint8_t *id = rh_data(&h, 0);
	cr_assert_eq(memcmp(id + 4, "FERRYRDMA", 9), 0, "serial: %.20s", id + 4);
	/* SGL descriptor counts in the identify data: IOCCSZ = (64 + 4096) / 16. */
	uint32_t ioccsz;
	memcpy(&ioccsz, id + 1792, 4);
	cr_assert_eq(ioccsz, (64u + 4096u) / 16u);
	cr_assert_eq(id[1792 + 11], 16, "MSDBD: max_sgl_desc");
	uint32_t sgls;
	memcpy(&sgls, id + 536, 4);
	cr_assert(sgls & (1u << 2), "SGLS: keyed data blocks (0x%x)", sgls);
	struct ferry_rdma_transport_totals t = rh_totals();
	cr_assert_eq(t.accepted, 1);
	cr_assert_eq(t.conns, 1);
	cr_assert_eq(t.ctrlrs, 1);
	rh_free(&h);
	RH_UNTIL(NULL, rh_totals().ctrlrs == 0);
	t = rh_totals();
	cr_assert_eq(t.conns, 0);
	cr_assert_eq(t.closed, 1);
	cr_assert_eq(t.ctrlrs_destroyed, 1);
}

static void io_pair(struct rh_host *a, struct rh_host *q)
{
	memset(a, 0, sizeof(*a));
	memset(q, 0, sizeof(*q));
	rh_admin_up(a);
	rh_io_up(q, a, 1);
	cr_assert_eq(q->crqsize, 64);
}

/* Writes [lba, lba + n) from the data area at @p off (keyed, one descriptor). */
static int write_keyed(struct rh_host *q, uint32_t off, uint64_t lba, uint32_t n)
{
	struct ferry_nvme_sqe s;
	rh_rw(&s, q->cid++, 1, lba, n);
	struct ferry_nvmf_rdma_kdesc k = rh_kd(q, off, n * 512);
	return rh_cmd_keyed(q, &s, &k, 1, NULL);
}

static int read_keyed(struct rh_host *q, uint32_t off, uint64_t lba, uint32_t n)
{
	struct ferry_nvme_sqe s;
	rh_rw(&s, q->cid++, 0, lba, n);
	struct ferry_nvmf_rdma_kdesc k = rh_kd(q, off, n * 512);
	return rh_cmd_keyed(q, &s, &k, 1, NULL);
}

Test(rdma_transport, write_read_keyed_and_icd)
{
	struct rh_host a, q;
	io_pair(&a, &q);
	/* keyed write of 64 KiB (8 target buffers, RDMA READs), read back keyed */
	uint8_t *src = rh_data(&q, 0);
	rh_pattern(src, 65536, 1);
	cr_assert_eq(write_keyed(&q, 0, 8, 128), 0);
	memset(rh_data(&q, 262144), 0, 65536);
	cr_assert_eq(read_keyed(&q, 262144, 8, 128), 0);
	cr_assert_eq(memcmp(rh_data(&q, 262144), src, 65536), 0, "keyed read back differs");
	/* in-capsule write of 4 KiB, read back keyed */
	uint8_t icd[4096];
	rh_pattern(icd, sizeof(icd), 2);
	struct ferry_nvme_sqe s;
	rh_rw(&s, q.cid++, 1, 1000, 8);
	cr_assert_eq(rh_cmd_icd(&q, &s, icd, sizeof(icd), NULL), 0);
	memset(rh_data(&q, 4096), 0, 4096);
	cr_assert_eq(read_keyed(&q, 4096, 1000, 8), 0);
	cr_assert_eq(memcmp(rh_data(&q, 4096), icd, sizeof(icd)), 0, "ICD read back differs");
	/* the blocks around are untouched by the ICD write */
	cr_assert_eq(read_keyed(&q, 8192, 999, 1), 0);
	cr_assert_eq(*rh_data(&q, 8192), 0);
	struct ferry_rdma_transport_totals t = rh_totals();
	cr_assert_eq(t.accepted, 2);
	cr_assert_eq(t.conns, 2);
	cr_assert_eq(t.qp_errors, 0);
	rh_free(&q);
	rh_free(&a);
	RH_UNTIL(NULL, rh_totals().conns == 0 && rh_totals().ctrlrs == 0);
	cr_assert_eq(rh_totals().conns, 0);
}

static void sum_cb(void *ctx, const struct ferry_rdma_conn_stats *st)
{
	struct ferry_rdma_conn_stats *s = ctx;
	if (st->qid == 1)
		*s = *st;
}

/* The 16 descriptors of 8 KiB, in reverse order, that name [0, 128 KiB) of the data area at
 * @p base: 16 RDMA READs / WRITEs (one per descriptor, one buffer each). */
static void kd16(struct rh_host *q, uint32_t base, struct ferry_nvmf_rdma_kdesc *d)
{
	for (int i = 0; i < 16; i++)
		d[i] = rh_kd(q, base + (uint32_t)(15 - i) * 8192, 8192);
}

Test(rdma_transport, max_size_transfers)
{
	/* 128 KiB writes and reads: one descriptor is one RDMA READ / WRITE of 16 SGEs (the 16
	 * buffers); 16 descriptors are 16 work requests, and four such writes at once need more
	 * RDMA READs than the QP's initiator depth of 16: the later ones wait for slots. */
	struct rh_host a, q;
	io_pair(&a, &q);
	uint8_t *src = rh_data(&q, 0);
	rh_pattern(src, 131072, 3);
	uint8_t rev[131072];
	for (int i = 0; i < 16; i++)
		memcpy(rev + i * 8192, src + (15 - i) * 8192, 8192);
	struct ferry_nvme_sqe s[4];
	for (int i = 0; i < 4; i++) {
		rh_rw(&s[i], q.cid++, 1, (uint64_t)i * 256, 256);
		uint8_t icd[16 * 16];
		uint32_t used;
		if (i < 2) {
			struct ferry_nvmf_rdma_kdesc k = rh_kd(&q, 0, 131072);
			used = rh_sgl_keyed(&s[i], icd, sizeof(icd), &k, 1);
		} else {
			struct ferry_nvmf_rdma_kdesc d[16];
			kd16(&q, 0, d);
			used = rh_sgl_keyed(&s[i], icd, sizeof(icd), d, 16);
		}
		rh_send(&q, &s[i], icd, used);
	}
	for (int i = 0; i < 4; i++)
		cr_assert_eq(rh_wait(&q, s[i].cid, NULL), 0);
	/* read back: writes 0 and 1 as they are, 2 and 3 (gathered in reverse) reversed */
	for (int i = 0; i < 4; i++) {
		memset(rh_data(&q, 262144), 0, 131072);
		cr_assert_eq(read_keyed(&q, 262144, (uint64_t)i * 256, 256), 0);
		cr_assert_eq(memcmp(rh_data(&q, 262144), i < 2 ? src : rev, 131072), 0,
			     "write %d differs", i);
	}
	/* and a read scattered through 16 descriptors puts it back in order */
	memset(rh_data(&q, 262144), 0, 131072);
	struct ferry_nvme_sqe r;
	rh_rw(&r, q.cid++, 0, 512, 256);
	struct ferry_nvmf_rdma_kdesc d[16];
	kd16(&q, 262144, d);
	cr_assert_eq(rh_cmd_keyed(&q, &r, d, 16, NULL), 0);
	cr_assert_eq(memcmp(rh_data(&q, 262144), src, 131072), 0, "16-descriptor read");
	struct ferry_rdma_conn_stats st = {0};
	cr_assert_eq(ferry_rdma_transport_get_stats(RT.t, sum_cb, &st), 2);
	cr_assert_eq(st.reads, 1 + 1 + 16 + 16);
	cr_assert_eq(st.writes, 4 + 16);
	cr_assert_eq(st.read_bytes, 4u * 131072u);
	cr_assert_eq(st.write_bytes, 5u * 131072u);
	cr_assert_eq(st.keyed_cmds, 9);
	cr_assert_eq(st.icd_cmds, 1, "the I/O Connect");
	cr_assert_eq(st.sends, 10);
	cr_assert_geq(st.ird_waits, 1, "more RDMA READs than the initiator depth were posted");
	cr_assert_eq(st.wc_errors, 0);
	rh_free(&q);
	rh_free(&a);
}

Test(rdma_transport, several_keyed_descriptors)
{
	struct rh_host a, q;
	io_pair(&a, &q);
	/* 5 descriptors of odd sizes at scattered places, 20 KiB in all (not buffer aligned). */
	uint32_t len[5] = {512, 7680, 1024, 9216, 2048};
	uint32_t off[5] = {300000, 10000, 500000, 700001, 123};
	struct ferry_nvmf_rdma_kdesc d[5];
	uint8_t want[20480];
	rh_pattern(want, sizeof(want), 4);
	uint32_t at = 0;
	for (int i = 0; i < 5; i++) {
		memcpy(rh_data(&q, off[i]), want + at, len[i]);
		d[i] = rh_kd(&q, off[i], len[i]);
		at += len[i];
	}
	cr_assert_eq(at, sizeof(want));
	struct ferry_nvme_sqe s;
	rh_rw(&s, q.cid++, 1, 64, 40);
	cr_assert_eq(rh_cmd_keyed(&q, &s, d, 5, NULL), 0);
	/* read back with one descriptor */
	memset(rh_data(&q, 800000), 0, sizeof(want));
	cr_assert_eq(read_keyed(&q, 800000, 64, 40), 0);
	cr_assert_eq(memcmp(rh_data(&q, 800000), want, sizeof(want)), 0);
	/* and read back scattered into other places through 5 descriptors */
	uint32_t off2[5] = {900001, 200000, 1000, 600000, 400000};
	for (int i = 0; i < 5; i++) {
		memset(rh_data(&q, off2[i]), 0, len[i]);
		d[i] = rh_kd(&q, off2[i], len[i]);
	}
	rh_rw(&s, q.cid++, 0, 64, 40);
	cr_assert_eq(rh_cmd_keyed(&q, &s, d, 5, NULL), 0);
	at = 0;
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(memcmp(rh_data(&q, off2[i]), want + at, len[i]), 0, "piece %d", i);
		at += len[i];
	}
	struct ferry_rdma_conn_stats st = {0};
	cr_assert_eq(ferry_rdma_transport_get_stats(RT.t, sum_cb, &st), 2);
	cr_assert_eq(st.qid, 1);
	cr_assert_eq(st.depth, 64);
	cr_assert_eq(st.cntlid, a.cntlid);
	cr_assert_geq(st.keyed_cmds, 3);
	cr_assert_eq(st.read_bytes, sizeof(want));
	cr_assert_eq(st.write_bytes, sizeof(want) * 2);
	/* 5 descriptors over 8 KiB buffers: at least one piece per descriptor */
	cr_assert_geq(st.reads, 5);
	cr_assert_eq(st.sgl_errors, 0);
	rh_free(&q);
	rh_free(&a);
}

Test(rdma_transport, discovery_log_rdma_entries)
{
	struct rh_host h = {0};
	cr_assert_eq(rh_connect_qp(&h, 0, 31), 0);
	struct ferry_nvmf_connect_cmd c = {0};
	c.opcode = FERRY_NVMF_OPC_FABRICS;
	c.fctype = FERRY_NVMF_FCTYPE_CONNECT;
	c.cid = h.cid++;
	c.sqsize = 31;
	struct ferry_nvmf_connect_data d = {0};
	d.cntlid = 0xffff;
	snprintf(d.subnqn, sizeof(d.subnqn), "%s", FERRY_NVMF_DISCOVERY_NQN);
	snprintf(d.hostnqn, sizeof(d.hostnqn), "%s", RH_HOSTNQN);
	cr_assert_eq(rh_cmd_icd(&h, (struct ferry_nvme_sqe *)(void *)&c, &d, sizeof(d), NULL), 0);
	rh_enable(&h);
	/* the discovery controller says keyed SGLs too (Linux refuses it otherwise) */
	struct ferry_nvme_sqe s = {0};
	s.opcode = FERRY_NVME_ADM_IDENTIFY;
	s.cid = h.cid++;
	s.cdw10 = 1;
	struct ferry_nvmf_rdma_kdesc ki = rh_kd(&h, 0, 4096);
	cr_assert_eq(rh_cmd_keyed(&h, &s, &ki, 1, NULL), 0);
	uint32_t sgls;
	memcpy(&sgls, rh_data(&h, 536), 4);
	cr_assert_eq(sgls & 3, 1);
	cr_assert(sgls & (1u << 2), "discovery SGLS without keyed data blocks: 0x%x", sgls);
	memset(&s, 0, sizeof(s));
	s.opcode = FERRY_NVME_ADM_GET_LOG_PAGE;
	s.cid = h.cid++;
	s.cdw10 = 0x70 | ((2048u / 4 - 1) << 16);
	memset(rh_data(&h, 0), 0xcc, 2048);
	struct ferry_nvmf_rdma_kdesc k = rh_kd(&h, 0, 2048);
	cr_assert_eq(rh_cmd_keyed(&h, &s, &k, 1, NULL), 0);
	const struct ferry_nvmf_disc_log *lg = (const void *)rh_data(&h, 0);
	cr_assert_eq(lg->numrec, 1);
	const struct ferry_nvmf_disc_entry *e = (const void *)rh_data(&h, 1024);
	cr_assert_eq(e->trtype, FERRY_NVMF_TRTYPE_RDMA);
	cr_assert_eq(e->adrfam, FERRY_NVMF_ADRFAM_IPV4);
	cr_assert_eq(e->tsas[0], 1, "rdma_qptype RC");
	cr_assert_eq(e->tsas[1], 1, "rdma_prtype none");
	cr_assert_eq(e->tsas[2], 1, "rdma_cms RDMA_CM");
	cr_assert_str_eq(e->subnqn, RH_NQN);
	const char *colon = strrchr(RT.addr, ':');
	cr_assert_eq(strncmp(e->trsvcid, colon + 1, strlen(colon + 1)), 0);
	rh_free(&h);
}

Test(rdma_transport, poll_groups)
{
	/* Two poll groups polled from this thread (rh_poll): connections are spread over them,
	 * accepted on their group's CQ, and the admin and I/O queues of one association work
	 * across groups. */
	for (int i = 0; i < 2; i++)
		cr_assert_eq(ferry_transport_pg_create(RT.t, &RT.pgs[i]), 0);
	RT.npgs = 2;
	struct rh_host a, q;
	io_pair(&a, &q);
	uint8_t *src = rh_data(&q, 0);
	rh_pattern(src, 32768, 8);
	cr_assert_eq(write_keyed(&q, 0, 100, 64), 0);
	memset(rh_data(&q, 65536), 0, 32768);
	cr_assert_eq(read_keyed(&q, 65536, 100, 64), 0);
	cr_assert_eq(memcmp(rh_data(&q, 65536), src, 32768), 0);
	struct ferry_rdma_conn_stats st = {0};
	cr_assert_eq(ferry_rdma_transport_get_stats(RT.t, sum_cb, &st), 2);
	cr_assert_geq(st.pg, 1, "the I/O queue is on a created group");
	/* a group serving connections cannot be destroyed */
	cr_assert_eq(ferry_transport_pg_destroy(RT.pgs[st.pg - 1]), -EBUSY);
	rh_free(&q);
	rh_free(&a);
	RH_UNTIL(NULL, rh_totals().conns == 0 && rh_totals().ctrlrs == 0);
	cr_assert_eq(rh_totals().conns, 0);
	RT.npgs = 0;
	for (int i = 0; i < 2; i++)
		cr_assert_eq(ferry_transport_pg_destroy(RT.pgs[i]), 0);
}

Test(rdma_transport, deep_reads_wait_for_send_queue_room)
{
	/* 64 reads of 128 KiB at once on a 64-entry queue, 16 descriptors each: 17 work requests
	 * each (16 WRITEs and the SEND) are more than the QP's send queue holds, so responses wait for room (counted)
	 * and every byte still arrives. Buffers for 32 of them at once (a quarter of the pool
	 * per connection). */
	rh_tgt_down();
	rh_tgt_up("buffers=2048,idle_us=0");
	struct rh_host a, q;
	io_pair(&a, &q);
	uint8_t *src = rh_data(&q, 0);
	rh_pattern(src, 131072, 12);
	cr_assert_eq(write_keyed(&q, 0, 0, 256), 0);
	for (uint32_t i = 0; i < 64; i++) {
		struct ferry_nvme_sqe s;
		rh_rw(&s, (uint16_t)(500 + i), 0, 0, 256);
		struct ferry_nvmf_rdma_kdesc d[16];
		kd16(&q, 131072 * (1 + i % 7), d);
		uint8_t icd[16 * 16];
		uint32_t u = rh_sgl_keyed(&s, icd, sizeof(icd), d, 16);
		rh_send(&q, &s, icd, u);
	}
	RH_UNTIL(&q, q.q.n == 64 || q.err);
	cr_assert_eq(q.q.n, 64, "responses: %u (host error %d)", q.q.n, q.err);
	for (uint32_t i = 0; i < 64; i++)
		cr_assert_eq(q.q.e[i].status >> 1, 0);
	/* kd16() names the data area's 8 KiB pieces in reverse order */
	for (uint32_t i = 1; i < 8; i++)
		for (uint32_t p = 0; p < 16; p++)
			cr_assert_eq(memcmp(rh_data(&q, 131072 * i + (15 - p) * 8192),
					    src + p * 8192, 8192),
				     0, "region %u piece %u", i, p);
	struct ferry_rdma_conn_stats st = {0};
	cr_assert_eq(ferry_rdma_transport_get_stats(RT.t, sum_cb, &st), 2);
	cr_assert_geq(st.sq_waits, 1, "the send queue never filled");
	cr_assert_eq(st.writes, 64u * 16u);
	cr_assert_eq(st.wc_errors, 0);
	rh_free(&q);
	rh_free(&a);
}

Test(rdma_transport, disconnect_command_answered_then_closed)
{
	/* Fabrics Disconnect on an I/O queue: its response arrives before the target ends the
	 * connection; the association goes on on the admin queue. */
	struct rh_host a, q;
	io_pair(&a, &q);
	struct ferry_nvmf_cmd d = {0};
	d.opcode = FERRY_NVMF_OPC_FABRICS;
	d.fctype = FERRY_NVMF_FCTYPE_DISCONNECT;
	d.cid = q.cid++;
	struct ferry_nvme_sqe *s = (struct ferry_nvme_sqe *)(void *)&d;
	cr_assert_eq(rh_cmd_keyed(&q, s, NULL, 0, NULL), 0, "no response to Disconnect");
	RH_UNTIL(&q, RT.rd->qp_state(q.qp, NULL, NULL) != 0);
	cr_assert_eq(RT.rd->qp_state(q.qp, NULL, NULL), -ECONNRESET);
	RH_UNTIL(&a, rh_totals().conns == 1);
	cr_assert_eq(rh_totals().conns, 1);
	cr_assert_eq(rh_totals().ctrlrs, 1);
	uint64_t v = 0;
	cr_assert_eq(rh_prop(&a, 0, FERRY_NVME_REG_CSTS, 4, &v), 0);
	cr_assert(v & FERRY_NVME_CSTS_RDY);
	rh_free(&q);
	rh_free(&a);
}
