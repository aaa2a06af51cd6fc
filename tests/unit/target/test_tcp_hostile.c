/*
 * A hostile host against the "tcp" target, found by tests/fuzz/tcp_target_mutate.py: a host
 * that asks for R2T writes and never sends the data keeps the group's data buffers. One
 * connection may not take the whole pool (other hosts still connect and do I/O), and a
 * command of one connection waiting for buffers is woken when another connection returns
 * them. A host that opens sockets and says nothing is bounded by max_connections and
 * icreq_timeout_ms.
 */
#include "test_tcp_host.h"

TestSuite(tcp_hostile, .timeout = 60);

/* Sends a 128 KiB write through R2T on @p h and never its data. */
static void hog_write(struct th_host *h, uint32_t i)
{
	struct ferry_nvme_sqe s = {0};
	s.opcode = FERRY_NVME_CMD_WRITE;
	s.cid = h->cid++;
	s.nsid = 1;
	s.cdw10 = i * 256;
	s.cdw12 = 255;
	th_sqe_sgl(&s, 0, 131072);
	th_send_cmd(h, &s, NULL, 0);
}

/* Polls the target for @p ms milliseconds (bounded). */
static void poll_ms(uint32_t ms)
{
	uint64_t end = th_now() + (uint64_t)ms * 1000000ull;
	while (th_now() < end)
		th_poll();
}

static void io_queue(struct th_host *q, const struct th_host *adm, uint16_t qid)
{
	th_open(q);
	th_ic(q, 0, 0);
	q->cntlid = adm->cntlid;
	cr_assert_eq(th_connect(q, qid, 31, 0), 0, "I/O Connect qid %u", qid);
}

/* 64 buffers of 8 KiB = four 128 KiB transfers. One queue asks for all four and sends no
 * data: before the fix the pool was empty and the next host's admin Connect (its 1024 bytes
 * of in-capsule data) failed with Namespace Not Ready. */
Test(tcp_hostile, one_connection_cannot_take_the_pool)
{
	th_tgt_up("buffers=64");
	struct th_host ha, hq, a, q;
	th_assoc(&ha, &hq, 0);
	for (uint32_t i = 0; i < 4; i++)
		hog_write(&hq, i);
	poll_ms(50);
	th_assoc(&a, &q, 0);
	th_io_check(&q, 1024, 16, 0, 7); /* R2T write (2 buffers) and read */
	th_io_check(&q, 1100, 8, 1, 8);  /* in-capsule write */
	th_close(&hq);
	th_close(&ha);
	th_io_check(&q, 1200, 256, 0, 9); /* the hog's buffers are back: a 128 KiB write */
	th_close(&q);
	th_close(&a);
	poll_ms(20);
	th_tgt_down();
}

/* Four queues of one controller hold the whole pool (a quarter each, waiting for data); a
 * write of another association waits for buffers. When the hogs close, their buffers come
 * back on their connections: before the fix only their own waiters were kicked and the
 * other write never got its R2T. */
Test(tcp_hostile, waiter_woken_by_another_connection)
{
	th_tgt_up("buffers=64");
	struct th_host a, q, ha, hq[4];
	th_assoc(&a, &q, 0);
	th_assoc(&ha, &ha, 0);
	for (uint16_t i = 0; i < 4; i++) {
		io_queue(&hq[i], &ha, (uint16_t)(i + 1));
		hog_write(&hq[i], i);
		cr_assert_eq(th_recv(&hq[i]), 1, "hog %u: no R2T", i);
		cr_assert_eq(th_type(&hq[i]), FERRY_NVME_TCP_R2T);
	}
	/* The pool is empty: this write waits (no R2T yet). */
	uint8_t *w = malloc(4096), *r = malloc(4096);
	cr_assert(w && r);
	th_fill(w, 4096, 3);
	struct ferry_nvme_sqe s = {0};
	s.opcode = FERRY_NVME_CMD_WRITE;
	s.cid = q.cid++;
	s.nsid = 1;
	s.cdw10 = 2000;
	s.cdw12 = 7;
	th_sqe_sgl(&s, 0, 4096);
	th_send_cmd(&q, &s, NULL, 0);
	poll_ms(50);
	for (uint16_t i = 0; i < 4; i++)
		th_close(&hq[i]);
	cr_assert_eq(th_recv(&q), 1, "the waiting write got no R2T after the pool refilled");
	cr_assert_eq(th_type(&q), FERRY_NVME_TCP_R2T);
	const struct ferry_nvme_tcp_r2t *r2t = (const void *)q.hdr;
	cr_assert_eq(r2t->cccid, s.cid);
	cr_assert_eq(r2t->r2tl, 4096);
	th_send_h2c(&q, s.cid, r2t->ttag, w, 0, 4096, q.maxh2c);
	cr_assert_eq(th_resp(&q, NULL), 0);
	memset(r, 0, 4096);
	cr_assert_eq(th_rw(&q, 0, 2000, 8, r, 0), 0);
	cr_assert_eq(memcmp(w, r, 4096), 0);
	free(w);
	free(r);
	th_close(&ha);
	th_close(&q);
	th_close(&a);
	poll_ms(20);
	th_tgt_down();
}

/* Polls until no controller and no connection is left, or 2 s pass. */
static struct ferry_tcp_transport_totals settle(void)
{
	struct ferry_tcp_transport_totals t = {.size = sizeof(t)};
	uint64_t end = th_now() + 2000000000ull;
	do {
		th_poll();
		cr_assert_eq(ferry_tcp_transport_get_totals(TT.t, &t), 0);
	} while ((t.ctrlrs || t.conns) && th_now() < end);
	return t;
}

/* A host parks Asynchronous Event Requests (as Linux does) and goes away without Disconnect
 * or CC.SHN. The parked commands kept the admin connection "executing", its teardown never
 * started, and connection and controller stayed for ever (about 350 KB per host). */
Test(tcp_hostile, host_gone_with_parked_aers)
{
	th_tgt_up("buffers=64");
	for (int round = 0; round < 3; round++) {
		struct th_host a, q;
		th_assoc(&a, &q, 0);
		for (int i = 0; i < 1 + round; i++) {
			struct ferry_nvme_sqe s = {0};
			s.opcode = FERRY_NVME_ADM_ASYNC_EVENT;
			s.cid = a.cid++;
			th_send_cmd(&a, &s, NULL, 0);
		}
		th_io_check(&q, 64, 8, 0, (uint32_t)round);
		poll_ms(20);
		th_close(&q);
		th_close(&a);
		struct ferry_tcp_transport_totals t = settle();
		cr_assert_eq(t.ctrlrs, 0, "round %d: %u controllers left after the host went away",
			     round, t.ctrlrs);
		cr_assert_eq(t.conns, 0, "round %d: %u connections left", round, t.conns);
		cr_assert_eq(t.ctrlrs_destroyed, (uint64_t)round + 1);
	}
	th_tgt_down();
}

/* Waits (bounded) until the target closes @p h's socket: 1 closed, 0 still open. */
static int closed_by_target(struct th_host *h, uint32_t ms)
{
	uint64_t end = th_now() + (uint64_t)ms * 1000000ull;
	while (th_now() < end) {
		char b;
		ssize_t n = recv(h->fd, &b, 1, 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
			return 1;
		th_poll();
	}
	return 0;
}

/* A host that opens sockets by the dozen and says nothing: past max_connections new ones are
 * closed at accept (counted), the ones in the limit stay, and when they go a healthy
 * association is served again. */
Test(tcp_hostile, max_connections_refuses_past_the_limit)
{
	th_tgt_up("buffers=256,max_connections=4");
	struct th_host h[6];
	for (int i = 0; i < 6; i++) {
		th_open(&h[i]);
		poll_ms(5);
	}
	poll_ms(50);
	for (int i = 4; i < 6; i++)
		cr_assert(closed_by_target(&h[i], 2000), "connection %d past the limit stayed", i);
	for (int i = 0; i < 4; i++)
		cr_assert_not(closed_by_target(&h[i], 20), "connection %d in the limit closed", i);
	struct ferry_tcp_transport_totals t = {.size = sizeof(t)};
	cr_assert_eq(ferry_tcp_transport_get_totals(TT.t, &t), 0);
	cr_assert_eq(t.refused, 2, "refused %llu", (unsigned long long)t.refused);
	cr_assert_eq(t.conns, 4);
	for (int i = 0; i < 6; i++)
		th_close(&h[i]);
	poll_ms(50);
	struct th_host a, q;
	th_assoc(&a, &q, 0);
	th_io_check(&q, 64, 8, 1, 3);
	th_close(&q);
	th_close(&a);
	poll_ms(20);
	th_tgt_down();
}

/* A socket that never sends its ICReq is closed after icreq_timeout_ms; one that did is not. */
Test(tcp_hostile, silent_socket_closed_after_icreq_timeout)
{
	th_tgt_up("buffers=256,icreq_timeout_ms=200");
	struct th_host silent, a, q;
	th_open(&silent);
	th_assoc(&a, &q, 0);
	uint64_t t0 = th_now();
	cr_assert(closed_by_target(&silent, 5000), "silent socket still open after 5 s");
	cr_assert_geq(th_now() - t0, 150000000ull, "closed before its ICReq deadline");
	poll_ms(300);
	th_io_check(&q, 8, 8, 1, 5); /* the associations that did their ICReq are kept */
	th_close(&silent);
	th_close(&q);
	th_close(&a);
	poll_ms(20);
	th_tgt_down();
}
