/*
 * NVMe-oF Connect through the "tcp" transport: the Fabrics status codes and IATTR/IPO of a
 * refused Connect, keep-alive enforcement (a silent host's association is torn down, a host
 * that keeps alive is not), the discovery subsystem (log page 70h entries match the
 * listeners), association teardown when the admin connection goes, and many queues of one
 * controller doing I/O at once.
 */
#include <stddef.h>
#include "test_tcp_host.h"

#define ST_MASK 0x7ff /* SCT and SC of a 15-bit status */
#define CONNECT_INVALID (0x100 | FERRY_NVMF_SC_CONNECT_INVALID_PARAM)

static void up(void)
{
	th_tgt_up("buffers=256,max_io_queues=40");
}

TestSuite(tcp_connect, .init = up, .fini = th_tgt_down, .timeout = 60);

Test(tcp_connect, unknown_subnqn)
{
	struct th_host h;
	th_open(&h);
	th_ic(&h, 0, 0);
	struct ferry_nvme_cqe c;
	int st = th_connect_ex(&h, 0, 31, 0, "nqn.2026-12.io.ferry:nobody", 0xffff, 0, &c);
	cr_assert_eq(st & ST_MASK, CONNECT_INVALID, "status 0x%x", st);
	cr_assert_eq(c.dw0, (1u << 16) | offsetof(struct ferry_nvmf_connect_data, subnqn));
	/* the queue is still unconnected: a good Connect works */
	cr_assert_eq(th_connect(&h, 0, 31, 0), 0);
	th_close(&h);
}

Test(tcp_connect, recfmt_not_zero)
{
	struct th_host h;
	th_open(&h);
	th_ic(&h, 0, 0);
	int st = th_connect_ex(&h, 0, 31, 0, TH_NQN, 0xffff, 1, NULL);
	cr_assert_eq(st & ST_MASK, 0x100 | FERRY_NVMF_SC_CONNECT_INCOMPATIBLE_FORMAT, "status 0x%x",
		     st);
	th_close(&h);
}

Test(tcp_connect, admin_sqsize_bounds)
{
	/* below 32 entries (SQSIZE 31) and above 128 are refused */
	uint16_t bad[] = {0, 1, 30, 128};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct th_host h;
		th_open(&h);
		th_ic(&h, 0, 0);
		struct ferry_nvme_cqe c;
		int st = th_connect_ex(&h, 0, bad[i], 0, TH_NQN, 0xffff, 0, &c);
		cr_assert_eq(st & ST_MASK, CONNECT_INVALID, "admin SQSIZE %u accepted", bad[i]);
		cr_assert_eq(c.dw0, offsetof(struct ferry_nvmf_connect_cmd, sqsize));
		th_close(&h);
	}
}

Test(tcp_connect, io_queue_errors)
{
	struct th_host a, q;
	th_open(&a);
	th_ic(&a, 0, 0);
	cr_assert_eq(th_connect(&a, 0, 31, 0), 0);
	th_open(&q);
	th_ic(&q, 0, 0);
	struct ferry_nvme_cqe c;
	/* before CC.EN: Command Sequence Error */
	int st = th_connect_ex(&q, 1, 31, 0, TH_NQN, a.cntlid, 0, &c);
	cr_assert_eq(st & ST_MASK, FERRY_NVME_SC_CMD_SEQ_ERROR, "status 0x%x", st);
	th_enable(&a);
	/* a cntlid that names no controller */
	st = th_connect_ex(&q, 1, 31, 0, TH_NQN, (uint16_t)(a.cntlid + 100), 0, &c);
	cr_assert_eq(st & ST_MASK, CONNECT_INVALID);
	cr_assert_eq(c.dw0, (1u << 16) | offsetof(struct ferry_nvmf_connect_data, cntlid));
	/* qid beyond max_io_queues */
	st = th_connect_ex(&q, 41, 31, 0, TH_NQN, a.cntlid, 0, &c);
	cr_assert_eq(st & ST_MASK, CONNECT_INVALID);
	cr_assert_eq(c.dw0, offsetof(struct ferry_nvmf_connect_cmd, qid));
	/* sqsize beyond MQES */
	st = th_connect_ex(&q, 1, 200, 0, TH_NQN, a.cntlid, 0, &c);
	cr_assert_eq(st & ST_MASK, CONNECT_INVALID);
	cr_assert_eq(c.dw0, offsetof(struct ferry_nvmf_connect_cmd, sqsize));
	/* then a good one; the same qid twice is refused */
	cr_assert_eq(th_connect_ex(&q, 1, 31, 0, TH_NQN, a.cntlid, 0, NULL), 0);
	struct th_host q2;
	th_open(&q2);
	th_ic(&q2, 0, 0);
	st = th_connect_ex(&q2, 1, 31, 0, TH_NQN, a.cntlid, 0, NULL);
	cr_assert_eq(st & ST_MASK, FERRY_NVME_SC_CMD_SEQ_ERROR, "status 0x%x", st);
	th_io_check(&q, 10, 8, 0, 1);
	th_close(&q2);
	th_close(&q);
	th_close(&a);
}

Test(tcp_connect, keep_alive_timeout)
{
	struct th_host a, q;
	th_open(&a);
	th_ic(&a, 0, 0);
	cr_assert_eq(th_connect(&a, 0, 31, 200), 0); /* KATO 200 ms */
	th_enable(&a);
	th_open(&q);
	th_ic(&q, 0, 0);
	q.cntlid = a.cntlid;
	cr_assert_eq(th_connect(&q, 1, 31, 0), 0);
	th_io_check(&q, 0, 8, 0, 1);
	/* silence: the association goes, both sockets close */
	cr_assert(th_wait_eof(&a), "admin connection of a silent host not closed");
	cr_assert(th_wait_eof(&q), "I/O connection of a silent host not closed");
	struct ferry_tcp_transport_totals t = {.size = sizeof(t)};
	uint64_t end = th_now() + TH_WAIT_NS;
	do {
		th_poll();
		cr_assert_eq(ferry_tcp_transport_get_totals(TT.t, &t), 0);
	} while ((t.ctrlrs || t.conns) && th_now() < end);
	cr_assert_eq(t.kato_expired, 1);
	cr_assert_eq(t.ctrlrs, 0);
	cr_assert_eq(t.conns, 0);
	th_close(&q);
	th_close(&a);
}

Test(tcp_connect, keep_alive_kept)
{
	struct th_host a;
	th_open(&a);
	th_ic(&a, 0, 0);
	cr_assert_eq(th_connect(&a, 0, 31, 1000), 0);
	th_enable(&a);
	/* Keep Alive every ~50 ms for 1.5 KATO */
	uint64_t end = th_now() + 1500000000ull;
	while (th_now() < end) {
		struct ferry_nvme_sqe s = {0};
		s.opcode = FERRY_NVME_ADM_KEEP_ALIVE;
		s.cid = a.cid++;
		th_send_cmd(&a, &s, NULL, 0);
		cr_assert_eq(th_resp(&a, NULL), 0, "Keep Alive failed: the association is gone");
		uint64_t next = th_now() + 50000000ull;
		while (th_now() < next)
			th_poll();
	}
	struct ferry_tcp_transport_totals t = {.size = sizeof(t)};
	cr_assert_eq(ferry_tcp_transport_get_totals(TT.t, &t), 0);
	cr_assert_eq(t.kato_expired, 0);
	cr_assert_eq(t.ctrlrs, 1);
	th_close(&a);
}

Test(tcp_connect, disconnect_ends_association)
{
	struct th_host a, q;
	th_assoc(&a, &q, 0);
	struct ferry_nvmf_cmd d = {0};
	d.opcode = FERRY_NVMF_OPC_FABRICS;
	d.fctype = FERRY_NVMF_FCTYPE_DISCONNECT;
	d.cid = a.cid++;
	th_send_cmd(&a, (struct ferry_nvme_sqe *)(void *)&d, NULL, 0);
	cr_assert_eq(th_resp(&a, NULL), 0, "Disconnect answered before the close");
	cr_assert(th_wait_eof(&a));
	cr_assert(th_wait_eof(&q), "I/O connection outlived its association");
	th_close(&a);
	th_close(&q);
}

static void get_disc_log(struct th_host *h, uint8_t *buf, uint32_t len)
{
	struct ferry_nvme_sqe s = {0};
	s.opcode = FERRY_NVME_ADM_GET_LOG_PAGE;
	s.cid = h->cid++;
	uint32_t numd = len / 4 - 1;
	s.cdw10 = FERRY_NVMF_LOG_DISCOVERY | ((numd & 0xffff) << 16);
	s.cdw11 = numd >> 16;
	cr_assert_eq(th_read_cmd(h, &s, buf, len), 0, "Get Log Page 70h");
}

static void check_entry(const struct ferry_nvmf_disc_entry *e, const char *bound)
{
	char addr[64];
	snprintf(addr, sizeof(addr), "%s", bound);
	char *colon = strrchr(addr, ':');
	*colon = 0;
	cr_assert_eq(e->trtype, FERRY_NVMF_TRTYPE_TCP);
	cr_assert_eq(e->adrfam, FERRY_NVMF_ADRFAM_IPV4);
	cr_assert_eq(e->subtype, FERRY_NVMF_SUBTYPE_NVME);
	cr_assert_eq(e->cntlid, 0xffff);
	cr_assert_geq(e->asqsz, 32);
	cr_assert_str_eq(e->subnqn, TH_NQN);
	cr_assert_eq(memcmp(e->traddr, addr, strlen(addr)), 0);
	cr_assert_eq(e->traddr[strlen(addr)], ' ', "traddr space padded");
	cr_assert_eq(memcmp(e->trsvcid, colon + 1, strlen(colon + 1)), 0);
	cr_assert_eq(e->trsvcid[strlen(colon + 1)], ' ');
}

Test(tcp_connect, discovery)
{
	cr_assert_eq(ferry_transport_listen(TT.t, TT.ss, "127.0.0.1:0"), 0, "second listener");
	char l0[64], l1[64];
	cr_assert_eq(ferry_tcp_transport_get_listen_addr(TT.t, 0, l0, sizeof(l0)), 0);
	cr_assert_eq(ferry_tcp_transport_get_listen_addr(TT.t, 1, l1, sizeof(l1)), 0);
	cr_assert_str_neq(l0, l1);
	/* the discovery controller is reachable on the second listener too */
	TT.port = atoi(strrchr(l1, ':') + 1);
	struct th_host h;
	th_open(&h);
	th_ic(&h, 0, 0);
	cr_assert_eq(th_connect_ex(&h, 0, 31, 0, FERRY_NVMF_DISCOVERY_NQN, 0xffff, 0, NULL), 0);
	th_enable(&h);
	static uint8_t log[3 * 1024];
	get_disc_log(&h, log, sizeof(log));
	const struct ferry_nvmf_disc_log *hd = (const void *)log;
	cr_assert_eq(hd->numrec, 2, "one entry per (listener, subsystem)");
	cr_assert_eq(hd->recfmt, 0);
	const struct ferry_nvmf_disc_entry *e = (const void *)(log + 1024);
	check_entry(&e[0], l0);
	check_entry(&e[1], l1);
	cr_assert_neq(e[0].portid, e[1].portid);
	/* the discovery controller has no I/O queues */
	struct th_host q;
	th_open(&q);
	th_ic(&q, 0, 0);
	int st = th_connect_ex(&q, 1, 31, 0, FERRY_NVMF_DISCOVERY_NQN, h.cntlid, 0, NULL);
	cr_assert_neq(st, 0);
	th_close(&q);
	th_close(&h);
}

#define MANY 32

Test(tcp_connect, many_queues)
{
	struct th_host a;
	static struct th_host q[MANY];
	th_open(&a);
	th_ic(&a, 0, 0);
	cr_assert_eq(th_connect(&a, 0, 31, 0), 0);
	th_enable(&a);
	for (int i = 0; i < MANY; i++) {
		th_open(&q[i]);
		th_ic(&q[i], 0, (uint8_t)(i & 3));
		q[i].cntlid = a.cntlid;
		cr_assert_eq(th_connect(&q[i], (uint16_t)(i + 1), 15, 0), 0, "queue %d", i + 1);
	}
	for (int i = 0; i < MANY; i++)
		th_io_check(&q[i], (uint64_t)i * 64, (i & 1) ? 16 : 64, i & 1, (uint32_t)i);
	/* every queue's data is where it wrote it */
	for (int i = 0; i < MANY; i++) {
		uint8_t w[512], r[512];
		th_fill(w, sizeof(w), (uint32_t)i);
		cr_assert_eq(th_rw(&q[(i + 1) % MANY], 0, (uint64_t)i * 64, 1, r, 0), 0);
		cr_assert_eq(memcmp(w, r, sizeof(r)), 0, "queue %d's block", i);
	}
	struct ferry_tcp_transport_totals t = {.size = sizeof(t)};
	cr_assert_eq(ferry_tcp_transport_get_totals(TT.t, &t), 0);
	cr_assert_eq(t.conns, MANY + 1);
	for (int i = 0; i < MANY; i++)
		th_close(&q[i]);
	th_close(&a);
}

Test(tcp_connect, controller_reset_and_reconnect)
{
	struct th_host a, q;
	th_assoc(&a, &q, 0);
	th_io_check(&q, 0, 64, 0, 1);
	/* CC.EN 1 -> 0: the I/O connections go, CSTS.RDY falls, the association stays */
	uint64_t cc = 0;
	cr_assert_eq(th_prop(&a, 0, FERRY_NVME_REG_CC, 4, &cc), 0);
	cc &= ~(uint64_t)FERRY_NVME_CC_EN;
	cr_assert_eq(th_prop(&a, 1, FERRY_NVME_REG_CC, 4, &cc), 0);
	cr_assert(th_wait_eof(&q), "I/O connection kept across a reset");
	th_close(&q);
	uint64_t csts = FERRY_NVME_CSTS_RDY;
	for (int i = 0; i < 1000 && (csts & FERRY_NVME_CSTS_RDY); i++) {
		cr_assert_eq(th_prop(&a, 0, FERRY_NVME_REG_CSTS, 4, &csts), 0);
		th_poll();
	}
	cr_assert_eq(csts & FERRY_NVME_CSTS_RDY, 0, "CSTS.RDY still 1 after the reset");
	/* enable again, reconnect the queue: the data written before is still there */
	th_enable(&a);
	th_open(&q);
	th_ic(&q, 0, 0);
	q.cntlid = a.cntlid;
	cr_assert_eq(th_connect(&q, 1, 31, 0), 0, "I/O Connect after the reset");
	uint8_t w[512], r[512];
	th_fill(w, sizeof(w), 1);
	cr_assert_eq(th_rw(&q, 0, 0, 1, r, 0), 0);
	cr_assert_eq(memcmp(w, r, sizeof(r)), 0);
	th_io_check(&q, 100, 8, 1, 2);
	th_close(&q);
	th_close(&a);
}
