/*
 * The "tcp" target transport end to end with a raw host (test_tcp_host.h): ICReq/ICResp
 * negotiation (digests, HPDA), admin Connect, Property Get/Set, enable, Identify, I/O Connect,
 * writes in-capsule and through R2T (several H2CData PDUs split at MAXH2CDATA), reads (C2HData
 * with the SUCCESS flag), with and without digests; data digest errors; the counters API.
 */
#include <ferry/accel.h>
#include <ferry/device.h>
#include <ferry/hal/hal.h>
#include <ferry/module/transport.h>
#include "test_tcp_host.h"

static void up(void)
{
	th_tgt_up("buffers=256,max_h2c_data=16384");
}

TestSuite(tcp_transport, .init = up, .fini = th_tgt_down, .timeout = 60);

Test(tcp_transport, registered_after_pcie)
{
	const struct ferry_transport_ops *ops = ferry_transport_find("tcp");
	cr_assert(ops);
	cr_assert_eq(ferry_transport_get_kind(TT.t), FERRY_TRANSPORT_MESSAGE);
	cr_assert_eq(ferry_transport_get(0), ferry_transport_find("pcie"));
	cr_assert_eq(ferry_transport_get(1), ops);
	char a[8];
	cr_assert_eq(ferry_tcp_transport_get_listen_addr(TT.t, 0, a, sizeof(a)), -ENOBUFS);
	cr_assert_eq(ferry_tcp_transport_get_listen_addr(TT.t, 1, a, sizeof(a)), -ENOENT);
}

Test(tcp_transport, bad_args_refused)
{
	struct ferry_transport *t = NULL;
	const char *bad[] = {"nope=1",
			     "in_capsule_data_size=100",
			     "max_io_size=5000",
			     "max_h2c_data=4098",
			     "max_queue_depth=1",
			     "max_r2t=2",
			     "buffers=1"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ferry_transport_opts o = {.size = sizeof(o), .args = bad[i]};
		cr_assert_eq(ferry_transport_create("tcp", &o, &t), -EINVAL, "%s accepted", bad[i]);
	}
}

static void negotiate(uint8_t hpda, uint8_t dgst)
{
	struct th_host h;
	th_open(&h);
	th_ic(&h, hpda, dgst);
	cr_assert_eq(h.maxh2c, 16384);
	cr_assert_eq(th_connect(&h, 0, 31, 0), 0);
	th_enable(&h);
	th_close(&h);
}

Test(tcp_transport, icreq_negotiation)
{
	negotiate(0, 0);
	negotiate(0, FERRY_NVME_TCP_DGST_HDGST);
	negotiate(0, FERRY_NVME_TCP_DGST_DDGST);
	negotiate(3, FERRY_NVME_TCP_DGST_HDGST | FERRY_NVME_TCP_DGST_DDGST);
	negotiate(31, 0);
}

static void full_flow(uint8_t dgst, uint8_t hpda)
{
	struct th_host a, q;
	th_open(&a);
	th_ic(&a, hpda, dgst);
	/* anything before Connect: Command Sequence Error */
	uint64_t v = 0;
	cr_assert_eq(th_prop(&a, 0, FERRY_NVME_REG_CAP, 8, &v) & 0x7ff,
		     FERRY_NVME_SC_CMD_SEQ_ERROR);
	cr_assert_eq(th_connect(&a, 0, 31, 0), 0);
	cr_assert_neq(a.cntlid, 0xffff);
	/* Connect on a connected queue */
	cr_assert_eq(th_connect(&a, 0, 31, 0) & 0x7ff, FERRY_NVME_SC_CMD_SEQ_ERROR);
	th_enable(&a);
	/* Identify Controller over C2HData */
	struct ferry_nvme_sqe id = {0};
	id.opcode = FERRY_NVME_ADM_IDENTIFY;
	id.cid = a.cid++;
	id.cdw10 = 1;
	uint8_t idb[4096];
	memset(idb, 0, sizeof(idb));
	cr_assert_eq(th_read_cmd(&a, &id, idb, sizeof(idb)), 0);
	cr_assert_eq(memcmp(idb + 768, TH_NQN, strlen(TH_NQN)), 0, "SUBNQN in Identify");
	uint16_t cntlid;
	memcpy(&cntlid, idb + 78, 2);
	cr_assert_eq(cntlid, a.cntlid);
	uint32_t ioccsz;
	memcpy(&ioccsz, idb + 1792, 4);
	cr_assert_eq(ioccsz, 4 + 8192 / 16, "IOCCSZ from the in-capsule data size");
	/* I/O queue */
	th_open(&q);
	th_ic(&q, hpda, dgst);
	q.cntlid = a.cntlid;
	cr_assert_eq(th_connect(&q, 1, 63, 0), 0);
	th_io_check(&q, 0, 8, 1, 1);    /* 4 KiB in-capsule */
	th_io_check(&q, 8, 16, 1, 2);   /* 8 KiB in-capsule (the limit) */
	th_io_check(&q, 64, 128, 0, 3); /* 64 KiB through R2T: 4 H2CData PDUs of 16 KiB */
	uint32_t before = q.c2h_pdus;
	th_io_check(&q, 200, 256, 0, 4); /* 128 KiB: MDTS */
	cr_assert_eq(q.c2h_pdus - before, 8, "C2HData split at 16 KiB");
	th_io_check(&q, 1000, 1, 0, 5);
	th_close(&q);
	th_close(&a);
}

Test(tcp_transport, io_no_digests)
{
	full_flow(0, 0);
}

Test(tcp_transport, io_with_digests)
{
	full_flow(FERRY_NVME_TCP_DGST_HDGST | FERRY_NVME_TCP_DGST_DDGST, 0);
}

Test(tcp_transport, io_with_hpda)
{
	full_flow(FERRY_NVME_TCP_DGST_DDGST, 7);
}

Test(tcp_transport, data_digest_error_fails_the_command)
{
	struct th_host a, q;
	th_assoc(&a, &q, FERRY_NVME_TCP_DGST_DDGST);
	uint8_t data[4096];
	th_fill(data, sizeof(data), 9);
	struct ferry_nvme_sqe s = {0};
	s.opcode = FERRY_NVME_CMD_WRITE;
	s.cid = q.cid++;
	s.nsid = 1;
	s.cdw10 = 40;
	s.cdw12 = 7;
	th_sqe_sgl(&s, 1, sizeof(data));
	uint8_t b[FERRY_NVME_TCP_TX_HDR_MAX];
	size_t hl = ferry_nvme_tcp_build_cmd(b, &q.p, &s, sizeof(data));
	cr_assert_eq(th_send(&q, b, hl), 0);
	cr_assert_eq(th_send(&q, data, sizeof(data)), 0);
	uint32_t crc = ferry_crc32c(0, data, sizeof(data)) ^ 1u;
	cr_assert_eq(th_send(&q, &crc, 4), 0);
	cr_assert_eq(th_resp(&q, NULL) & 0x7ff, 0x22, "Transient Transport Error");
	/* the block was not written, the queue still works */
	uint8_t r[4096];
	cr_assert_eq(th_rw(&q, 0, 40, 8, r, 0), 0);
	uint8_t z[4096] = {0};
	cr_assert_eq(memcmp(r, z, sizeof(z)), 0, "data with a bad digest reached the bdev");
	th_io_check(&q, 40, 8, 0, 10);
	th_close(&q);
	th_close(&a);
}

struct stats_seen {
	int n;
	uint64_t cmds, r2ts, placed, copied, c2h;
	int io_qid;
};

static void on_stats(void *ctx, const struct ferry_tcp_conn_stats *st)
{
	struct stats_seen *s = ctx;
	s->n++;
	s->cmds += st->cmds;
	s->r2ts += st->r2ts;
	s->placed += st->rx_placed;
	s->copied += st->rx_copied;
	s->c2h += st->c2h_pdus;
	if (st->qid == 1)
		s->io_qid = 1;
	cr_assert_neq(st->peer[0], 0);
	cr_assert_neq(st->cntlid, 0xffff);
}

Test(tcp_transport, counters)
{
	struct ferry_accel_stats as0 = {.size = sizeof(as0)}, as1 = {.size = sizeof(as1)};
	cr_assert_eq(ferry_accel_get_stats(NULL, &as0), 0);
	struct th_host a, q;
	th_assoc(&a, &q, 0);
	for (int i = 0; i < 8; i++)
		th_io_check(&q, (uint64_t)i * 256, 256, 0, (uint32_t)i); /* 128 KiB each way */
	/* the I/O queue's Read/Write went down as sequences on the group's accel channel */
	cr_assert_eq(ferry_accel_get_stats(NULL, &as1), 0);
	cr_assert_geq(as1.seqs_completed - as0.seqs_completed, 16);
	struct stats_seen s = {0};
	cr_assert_eq(ferry_tcp_transport_get_stats(TT.t, on_stats, &s), 2);
	cr_assert_eq(s.n, 2);
	cr_assert(s.io_qid);
	cr_assert_geq(s.r2ts, 8);
	cr_assert_geq(s.c2h, 8);
	cr_assert_geq(s.placed + s.copied, 8u * 131072u);
	cr_assert_gt(s.placed, s.copied,
		     "large H2C payloads must mostly be placed directly "
		     "(placed %llu, copied %llu)",
		     (unsigned long long)s.placed, (unsigned long long)s.copied);
	struct ferry_tcp_transport_totals t = {.size = sizeof(t)};
	cr_assert_eq(ferry_tcp_transport_get_totals(TT.t, &t), 0);
	cr_assert_eq(t.accepted, 2);
	cr_assert_eq(t.conns, 2);
	cr_assert_eq(t.ctrlrs, 1);
	th_close(&q);
	th_close(&a);
	/* the association goes when the admin connection closes */
	uint64_t end = th_now() + TH_WAIT_NS;
	do {
		th_poll();
		cr_assert_eq(ferry_tcp_transport_get_totals(TT.t, &t), 0);
	} while ((t.conns || t.ctrlrs) && th_now() < end);
	cr_assert_eq(t.conns, 0);
	cr_assert_eq(t.ctrlrs, 0);
	cr_assert_eq(t.ctrlrs_destroyed, 1);
}

static void up_small_icd(void)
{
	th_tgt_up("buffers=64,in_capsule_data_size=4096,max_queue_depth=32");
}

TestSuite(tcp_small_icd, .init = up_small_icd, .fini = th_tgt_down, .timeout = 60);

Test(tcp_small_icd, limits_follow_the_arguments)
{
	struct th_host a, q;
	th_assoc(&a, NULL, 0); /* the admin queue still takes the 1024-byte Connect data inline */
	th_open(&q);
	th_ic(&q, 0, 0);
	q.cntlid = a.cntlid;
	cr_assert_eq(th_connect(&q, 1, 31, 0), 0);
	struct ferry_nvme_sqe id = {0};
	id.opcode = FERRY_NVME_ADM_IDENTIFY;
	id.cid = a.cid++;
	id.cdw10 = 1;
	uint8_t idb[4096];
	cr_assert_eq(th_read_cmd(&a, &id, idb, sizeof(idb)), 0);
	uint32_t ioccsz;
	memcpy(&ioccsz, idb + 1792, 4);
	cr_assert_eq(ioccsz, 4 + 4096 / 16);
	uint64_t cap = 0;
	cr_assert_eq(th_prop(&a, 0, FERRY_NVME_REG_CAP, 8, &cap), 0);
	cr_assert_eq(cap & 0xffff, 31, "CAP.MQES follows max_queue_depth");
	th_io_check(&q, 0, 8, 1, 1); /* 4 KiB in-capsule: the limit */
	/* 32 entries is MQES + 1: a 33-entry I/O queue is refused */
	struct th_host q2;
	th_open(&q2);
	th_ic(&q2, 0, 0);
	struct ferry_nvme_cqe c;
	int st = th_connect_ex(&q2, 2, 32, 0, TH_NQN, a.cntlid, 0, &c);
	cr_assert_eq(st & 0x7ff, 0x100 | FERRY_NVMF_SC_CONNECT_INVALID_PARAM);
	cr_assert_eq(th_connect_ex(&q2, 2, 31, 0, TH_NQN, a.cntlid, 0, &c), 0);
	th_close(&q2);
	/* 8 KiB in-capsule on the I/O queue: beyond what it advertised */
	static uint8_t data[8192];
	struct ferry_nvme_sqe s = {0};
	s.opcode = FERRY_NVME_CMD_WRITE;
	s.cid = q.cid++;
	s.nsid = 1;
	s.cdw12 = 15;
	th_sqe_sgl(&s, 1, sizeof(data));
	th_send_cmd(&q, &s, data, sizeof(data));
	cr_assert_eq(th_recv(&q), 1);
	cr_assert_eq(th_type(&q), FERRY_NVME_TCP_C2H_TERM);
	const struct ferry_nvme_tcp_term *t = (const void *)q.hdr;
	cr_assert_eq(t->fes, FERRY_NVME_TCP_FES_DATA_LIMIT);
	th_close(&q);
	th_close(&a);
}

Test(tcp_transport, dsm_with_a_page_of_ranges)
{
	struct th_host a, q;
	th_assoc(&a, &q, 0);
	th_io_check(&q, 64, 8, 0, 7);
	/* one range (NR 0) in a 4096-byte buffer, as Linux sends it: deallocate 8 blocks */
	static uint8_t ranges[4096];
	memset(ranges, 0, sizeof(ranges));
	uint32_t nlb = 8;
	uint64_t slba = 64;
	memcpy(ranges + 4, &nlb, 4);
	memcpy(ranges + 8, &slba, 8);
	for (int icd = 0; icd < 2; icd++) {
		struct ferry_nvme_sqe s = {0};
		s.opcode = FERRY_NVME_CMD_DSM;
		s.cid = q.cid++;
		s.nsid = 1;
		s.cdw10 = 0;
		s.cdw11 = 1u << 2; /* AD */
		cr_assert_eq(th_write_cmd(&q, &s, ranges, sizeof(ranges), icd), 0,
			     "DSM with a 4096-byte range buffer (%s)", icd ? "in-capsule" : "R2T");
	}
	uint8_t r[4096], z[4096] = {0};
	cr_assert_eq(th_rw(&q, 0, 64, 8, r, 0), 0);
	cr_assert_eq(memcmp(r, z, sizeof(z)), 0, "deallocated blocks read back zeroes");
	th_close(&q);
	th_close(&a);
}

Test(tcp_transport, burst_beyond_the_poll_budget)
{
	/* 120 capsules in one send: more than one poll handles (64 PDUs); the rest stays in
	 * the staging buffer with nothing more arriving on the socket, and must still run. */
	struct th_host a;
	th_open(&a);
	th_ic(&a, 0, 0);
	cr_assert_eq(th_connect(&a, 0, 127, 0), 0);
	th_enable(&a);
	static uint8_t burst[120 * 72];
	for (int i = 0; i < 120; i++) {
		struct ferry_nvme_sqe s = {0};
		s.opcode = FERRY_NVME_ADM_KEEP_ALIVE;
		s.cid = (uint16_t)(1000 + i);
		cr_assert_eq(ferry_nvme_tcp_build_cmd(burst + i * 72, &a.p, &s, 0), 72);
	}
	cr_assert_eq(th_send(&a, burst, sizeof(burst)), 0);
	for (int i = 0; i < 120; i++) {
		struct ferry_nvme_cqe c;
		cr_assert_eq(th_resp(&a, &c), 0, "response %d", i);
		cr_assert_eq(c.cid, 1000 + i);
	}
	th_close(&a);
}

Test(tcp_transport, device_given_or_not)
{
	/* the mock has the NIC class too (its offload NIC, on kernel sockets): a device without
	 * it is refused with -ENOTSUP, a ddp=0 mock is taken */
	struct ferry_device *mock = NULL, *nic = NULL;
	cr_assert_eq(ferry_device_open("mock", "ddp=0", &mock), 0);
	struct ferry_transport_opts o = {.size = sizeof(o), .device = mock, .args = "buffers=16"};
	struct ferry_transport *t = NULL;
	cr_assert_eq(ferry_transport_create("tcp", &o, &t), 0);
	ferry_transport_destroy(t);
	t = NULL;
	ferry_device_close(mock);
	/* the integrator's own "tcp" device: used, not closed by the transport */
	cr_assert_eq(ferry_device_open("tcp", "", &nic), 0);
	o.device = nic;
	cr_assert_eq(ferry_transport_create("tcp", &o, &t), 0);
	cr_assert_eq(ferry_transport_get_device(t), nic);
	cr_assert_eq(ferry_transport_listen(t, TT.ss, "127.0.0.1:0"), 0);
	char a[64];
	cr_assert_eq(ferry_tcp_transport_get_listen_addr(t, 0, a, sizeof(a)), 0);
	struct ferry_transport *keep = TT.t;
	int keep_port = TT.port;
	TT.t = t;
	TT.port = atoi(strrchr(a, ':') + 1);
	struct th_host h;
	th_open(&h);
	th_ic(&h, 0, 0);
	cr_assert_eq(th_connect(&h, 0, 31, 0), 0);
	th_close(&h);
	ferry_transport_destroy(t);
	TT.t = keep;
	TT.port = keep_port;
	struct ferry_hal_sock_opts so = {.size = sizeof(so), .addr = "127.0.0.1:0"};
	struct ferry_hal_sock *s = NULL;
	const struct ferry_hal_nic_ops *ops = ferry_hal_dev_get_backend(nic)->nic;
	cr_assert_eq(ops->listen(nic, &so, &s), 0, "the device still works after the transport");
	ops->close(s);
	ferry_device_close(nic);
}
