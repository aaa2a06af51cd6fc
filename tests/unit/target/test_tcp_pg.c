/*
 * Poll groups of the "tcp" transport: two groups polled by two threads, one controller whose
 * admin queue and I/O queues are spread over both (connections are handed out round robin),
 * I/O verified on every queue, keep-alive and teardown across groups; pg_destroy refuses a
 * group that still owns connections; "pcie" has no poll groups.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <ferry/module/transport.h>
#include "test_tcp_host.h"

static struct ferry_transport_pg *PG[2];
static pthread_t TH[2];
static atomic_int stop;

static void *pg_thread(void *arg)
{
	struct ferry_transport_pg *pg = arg;
	while (!atomic_load(&stop))
		ferry_transport_pg_poll(pg, 0);
	return NULL;
}

static void up(void)
{
	th_tgt_up("buffers=256,max_h2c_data=16384");
	for (int i = 0; i < 2; i++)
		cr_assert_eq(ferry_transport_pg_create(TT.t, &PG[i]), 0);
	cr_assert_eq(ferry_transport_pg_get_transport(PG[0]), TT.t);
	atomic_store(&stop, 0);
	TT.threaded = 1;
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&TH[i], NULL, pg_thread, PG[i]), 0);
}

static void stop_threads(void)
{
	atomic_store(&stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(TH[i], NULL);
	TT.threaded = 0;
}

static void wait_idle(void)
{
	struct ferry_tcp_transport_totals t = {.size = sizeof(t)};
	uint64_t end = th_now() + TH_WAIT_NS;
	do {
		th_poll();
		cr_assert_eq(ferry_tcp_transport_get_totals(TT.t, &t), 0);
	} while ((t.conns || t.ctrlrs) && th_now() < end);
	cr_assert_eq(t.conns, 0, "connections left");
	cr_assert_eq(t.ctrlrs, 0, "controllers left");
}

TestSuite(tcp_pg, .init = up, .timeout = 60);

struct pg_seen {
	uint32_t groups[4];
};

static void on_stats(void *ctx, const struct ferry_tcp_conn_stats *st)
{
	struct pg_seen *s = ctx;
	cr_assert_lt(st->pg, 4);
	s->groups[st->pg]++;
}

Test(tcp_pg, queues_split_across_groups)
{
	struct th_host a, q[4];
	th_open(&a);
	th_ic(&a, 0, 0);
	cr_assert_eq(th_connect(&a, 0, 31, 0), 0);
	th_enable(&a);
	for (int i = 0; i < 4; i++) {
		th_open(&q[i]);
		th_ic(&q[i], 0, i & 1 ? FERRY_NVME_TCP_DGST_DDGST : 0);
		q[i].cntlid = a.cntlid;
		cr_assert_eq(th_connect(&q[i], (uint16_t)(i + 1), 31, 0), 0, "I/O Connect %d",
			     i + 1);
	}
	struct pg_seen s = {0};
	cr_assert_eq(ferry_tcp_transport_get_stats(TT.t, on_stats, &s), 5);
	cr_assert_eq(s.groups[0], 0, "with groups, the instance serves no connection itself");
	cr_assert_eq(s.groups[1], 3);
	cr_assert_eq(s.groups[2], 2);
	for (int r = 0; r < 3; r++)
		for (int i = 0; i < 4; i++)
			th_io_check(&q[i], (uint64_t)(i * 512 + r * 128), 128, 0,
				    (uint32_t)(i + r));
	for (int i = 0; i < 4; i++)
		th_io_check(&q[i], (uint64_t)(3000 + i * 16), 16, 1, (uint32_t)i);
	/* refused while it owns connections */
	cr_assert_eq(ferry_transport_pg_destroy(PG[0]), -EBUSY);
	/* the admin connection goes: every I/O connection of the association follows */
	th_close(&a);
	for (int i = 0; i < 4; i++) {
		cr_assert(th_wait_eof(&q[i]), "queue %d outlived its association", i + 1);
		th_close(&q[i]);
	}
	wait_idle();
	stop_threads();
	for (int i = 0; i < 2; i++)
		cr_assert_eq(ferry_transport_pg_destroy(PG[i]), 0);
	th_tgt_down();
}

Test(tcp_pg, keep_alive_across_groups)
{
	struct th_host a, q;
	th_open(&a);
	th_ic(&a, 0, 0);
	cr_assert_eq(th_connect(&a, 0, 31, 150), 0);
	th_enable(&a);
	th_open(&q);
	th_ic(&q, 0, 0);
	q.cntlid = a.cntlid;
	cr_assert_eq(th_connect(&q, 1, 31, 0), 0);
	th_io_check(&q, 0, 64, 0, 1);
	cr_assert(th_wait_eof(&a));
	cr_assert(th_wait_eof(&q));
	th_close(&a);
	th_close(&q);
	wait_idle();
	stop_threads();
	struct ferry_tcp_transport_totals t = {.size = sizeof(t)};
	cr_assert_eq(ferry_tcp_transport_get_totals(TT.t, &t), 0);
	cr_assert_eq(t.kato_expired, 1);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(ferry_transport_pg_destroy(PG[i]), 0);
	th_tgt_down();
}

Test(tcp_pg, destroy_with_live_connections)
{
	struct th_host a, q;
	th_assoc(&a, &q, 0);
	th_io_check(&q, 0, 8, 0, 1);
	stop_threads();
	/* the instance closes everything itself; the groups go with it */
	th_tgt_down();
	th_close(&a);
	th_close(&q);
}

static int nop_send(struct ferry_transport *t, struct ferry_nvme_ctrlr *c, void *cc, uint16_t qid,
		    const struct ferry_nvme_cqe *cqe, void *cmd_ctx)
{
	(void)t, (void)c, (void)cc, (void)qid, (void)cqe, (void)cmd_ctx;
	return 0;
}

static const struct ferry_transport_ops no_pg_ops = {.abi_version = FERRY_TRANSPORT_OPS_ABI,
						     .name = "tpg-nopg",
						     .kind = FERRY_TRANSPORT_MESSAGE,
						     .send_completion = nop_send};

Test(tcp_pg, arguments_and_plugins_without_groups)
{
	stop_threads();
	struct ferry_transport_pg *pg = NULL;
	cr_assert_eq(ferry_transport_pg_create(NULL, &pg), -EINVAL);
	cr_assert_eq(ferry_transport_pg_create(TT.t, NULL), -EINVAL);
	cr_assert_eq(ferry_transport_pg_poll(NULL, 0), -EINVAL);
	cr_assert_eq(ferry_transport_pg_destroy(NULL), 0);
	cr_assert_null(ferry_transport_pg_get_transport(NULL));
	cr_assert_eq(ferry_transport_register(&no_pg_ops), 0);
	struct ferry_transport *t = NULL;
	cr_assert_eq(ferry_transport_create("tpg-nopg", NULL, &t), 0);
	cr_assert_eq(ferry_transport_pg_create(t, &pg), -ENOTSUP);
	ferry_transport_destroy(t);
	cr_assert_eq(ferry_transport_unregister(&no_pg_ops), 0);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(ferry_transport_pg_destroy(PG[i]), 0);
	th_tgt_down();
}
