/*
 * The "rdma" target transport with poll groups polled by their own threads (the threading
 * model of ferry/transport.h): connect requests taken by the instance's polling and accepted
 * on the group that serves them, an association whose admin and I/O queues sit on different
 * groups (I/O Connect through the admin group's messages), I/O on two queues at once verified
 * byte for byte, teardown with the groups still running, then the groups destroyed.
 */
#include <pthread.h>
#include <stdatomic.h>
#include "test_rdma_host.h"

static atomic_int stop;
static pthread_t th[2];
static struct ferry_transport_pg *pgs[2];

static void *pg_thread(void *arg)
{
	struct ferry_transport_pg *pg = arg;
	while (!atomic_load(&stop))
		ferry_transport_pg_poll(pg, 0);
	return NULL;
}

static void up(void)
{
	rh_tgt_up("buffers=512,idle_us=50");
	atomic_store(&stop, 0);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(ferry_transport_pg_create(RT.t, &pgs[i]), 0);
		cr_assert_eq(pthread_create(&th[i], NULL, pg_thread, pgs[i]), 0);
	}
}

static void down(void)
{
	atomic_store(&stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	rh_tgt_down();
}

TestSuite(rdma_pg, .init = up, .fini = down, .timeout = 60);

static void per_group(void *ctx, const struct ferry_rdma_conn_stats *st)
{
	uint32_t *n = ctx;
	if (st->pg < 3)
		n[st->pg]++;
}

Test(rdma_pg, queues_on_threaded_groups)
{
	struct rh_host a = {0}, q1 = {0}, q2 = {0};
	rh_admin_up(&a);
	rh_io_up(&q1, &a, 1);
	rh_io_up(&q2, &a, 2);
	uint32_t n[3] = {0};
	cr_assert_eq(ferry_rdma_transport_get_stats(RT.t, per_group, n), 3);
	cr_assert_eq(n[0], 0, "a connection on the instance's own polling");
	cr_assert(n[1] >= 1 && n[2] >= 1, "groups %u/%u", n[1], n[2]);
	/* 32 writes of 32 KiB on each queue, interleaved, then read back */
	struct rh_host *q[2] = {&q1, &q2};
	for (int i = 0; i < 2; i++)
		rh_pattern(rh_data(q[i], 0), 32768, 20 + (uint32_t)i);
	for (int round = 0; round < 32; round++) {
		struct ferry_nvme_sqe s[2];
		for (int i = 0; i < 2; i++) {
			rh_rw(&s[i], q[i]->cid++, 1, (uint64_t)(i * 2048 + round * 64), 64);
			struct ferry_nvmf_rdma_kdesc k = rh_kd(q[i], 0, 32768);
			uint8_t icd[16];
			uint32_t u = rh_sgl_keyed(&s[i], icd, sizeof(icd), &k, 1);
			rh_send(q[i], &s[i], icd, u);
		}
		for (int i = 0; i < 2; i++)
			cr_assert_eq(rh_wait(q[i], s[i].cid, NULL), 0, "queue %d round %d", i,
				     round);
	}
	for (int i = 0; i < 2; i++) {
		for (int round = 0; round < 32; round += 7) {
			memset(rh_data(q[i], 65536), 0, 32768);
			struct ferry_nvme_sqe s;
			rh_rw(&s, q[i]->cid++, 0, (uint64_t)(i * 2048 + round * 64), 64);
			struct ferry_nvmf_rdma_kdesc k = rh_kd(q[i], 65536, 32768);
			cr_assert_eq(rh_cmd_keyed(q[i], &s, &k, 1, NULL), 0);
			cr_assert_eq(memcmp(rh_data(q[i], 65536), rh_data(q[i], 0), 32768), 0,
				     "queue %d round %d", i, round);
		}
	}
	/* the admin queue goes first: the association ends, its I/O queues with it */
	rh_free(&a);
	RH_UNTIL(&q1, rh_totals().ctrlrs == 0);
	cr_assert_eq(rh_totals().ctrlrs, 0);
	rh_free(&q1);
	rh_free(&q2);
	RH_UNTIL(NULL, rh_totals().conns == 0);
	cr_assert_eq(rh_totals().conns, 0);
	struct ferry_rdma_transport_totals t = rh_totals();
	cr_assert_eq(t.accepted, 3);
	cr_assert_eq(t.closed, 3);
	cr_assert_eq(t.qp_errors, 0);
	/* the groups are empty now: they can go (down() finds them destroyed: no-op there) */
	atomic_store(&stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(ferry_transport_pg_destroy(pgs[i]), 0);
	atomic_store(&stop, 0);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(ferry_transport_pg_create(RT.t, &pgs[i]), 0);
		cr_assert_eq(pthread_create(&th[i], NULL, pg_thread, pgs[i]), 0);
	}
}
