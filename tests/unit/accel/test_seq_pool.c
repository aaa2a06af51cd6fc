/*
 * The buffer pool and the channel's object limits: module init options, -ENOMEM from finish
 * when the pool is exhausted (nothing lost, the sequence retried later or aborted), task and
 * virtual-buffer limits, counters of buffers taken / in use / peak. Each Criterion test runs
 * in its own process, so each may initialise the module with its own pool.
 */
#include "test_accel_util.h"

static void init_pool(uint32_t small, uint32_t large, uint32_t cache)
{
	struct ferry_accel_opts o = {.size = sizeof(o)};
	cr_assert_eq(ferry_accel_get_default_opts(&o), 0);
	o.small_buf_count = small;
	o.large_buf_count = large;
	o.cache_size = cache;
	cr_assert_eq(ferry_accel_init(&o), 0, "init: %s", ferry_last_error());
}

Test(seq_pool, init_options)
{
	ferry_log_set_handler(tm_quiet_log);
	struct ferry_accel_opts o = {.size = sizeof(o)};
	cr_assert_eq(ferry_accel_get_default_opts(&o), 0);
	cr_assert_eq(o.large_buf_size, 135168);
	struct ferry_accel_opts bad = o;
	bad.small_buf_size = o.large_buf_size + 1;
	cr_assert_eq(ferry_accel_init(&bad), -EINVAL);
	bad = o;
	bad.large_buf_size = 32u << 20;
	cr_assert_eq(ferry_accel_init(&bad), -EINVAL);
	bad = o;
	bad.size = 4;
	cr_assert_eq(ferry_accel_init(&bad), -EINVAL);
	cr_assert_null(ferry_accel_get_domain());
	cr_assert_eq(ferry_accel_init(&o), 0);
	cr_assert_eq(ferry_accel_init(&o), -EALREADY);
	struct ferry_memdomain *d = ferry_accel_get_domain();
	cr_assert_not_null(d);
	cr_assert_eq(ferry_memdomain_get_type(d), FERRY_MEMDOMAIN_ACCEL);
	cr_assert_str_eq(ferry_memdomain_get_name(d), "accel");
	cr_assert_eq(ferry_memdomain_lookup("accel"), d);
	struct ferry_accel_chan *ch = ta_chan(NULL, 0);
	ferry_accel_fini(); /* a channel is open: refused */
	cr_assert_eq(ferry_accel_get_domain(), d);
	ferry_accel_chan_destroy(ch);
	ferry_accel_fini();
	cr_assert_null(ferry_accel_get_domain());
	cr_assert_null(ferry_memdomain_lookup("accel"));
	/* the accel domain has no memory behind it */
	cr_assert_eq(ferry_accel_init(NULL), 0);
	char x[8];
	struct iovec iv = {x, 8}, il = {x, 8};
	struct ferry_mem vm = {.domain = ferry_accel_get_domain(), .iov = &iv, .iovcnt = 1};
	struct ferry_mem lm = {.domain = NULL, .iov = &il, .iovcnt = 1};
	cr_assert_eq(ferry_memdomain_pull(&vm, &lm, ta_done_cb, NULL), -ENOTSUP);
	ferry_log_set_handler(NULL);
}

Test(seq_pool, chan_options)
{
	ferry_log_set_handler(tm_quiet_log);
	struct ferry_accel_chan *ch;
	struct ferry_accel_chan_opts o = {.size = sizeof(o), .disabled_passes = 0x80};
	cr_assert_eq(ferry_accel_chan_create(NULL, &o, &ch), -EINVAL);
	o = (struct ferry_accel_chan_opts){.size = 3};
	cr_assert_eq(ferry_accel_chan_create(NULL, &o, &ch), -EINVAL);
	cr_assert_eq(ferry_accel_chan_create(NULL, NULL, NULL), -EINVAL);
	cr_assert_eq(ferry_accel_chan_create(NULL, NULL, &ch), 0, "lazy init with defaults");
	ferry_accel_chan_destroy(ch);
	ferry_accel_chan_destroy(NULL);
	ferry_log_set_handler(NULL);
}

static struct ferry_seq *two_buffer_seq(struct ferry_accel_chan *ch, struct ferry_mem *a,
					struct ferry_mem *v1, struct ferry_mem *v2,
					struct ferry_mem *b, struct ta_step_arg *args)
{
	/* with elision off: copy(a->V1), copy(V1->V2), copy(V2->b) needs 2 pool buffers */
	struct ferry_seq *s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_copy(s, v1, a, args ? ta_step_cb : NULL, args), 0);
	cr_assert_eq(ferry_seq_append_copy(s, v2, v1, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_copy(s, b, v2, NULL, NULL), 0);
	return s;
}

Test(seq_pool, exhaustion_returns_enomem_and_retry_succeeds)
{
	init_pool(0, 3, 0);
	struct ferry_accel_chan *ch = ta_chan(NULL, FERRY_ACCEL_PASS_ELIDE);
	uint8_t a[4096], b1[4096], b2[4096];
	uint64_t seed = 1;
	ta_fill_rand(a, sizeof(a), &seed);
	memset(b1, 0, sizeof(b1));
	memset(b2, 0, sizeof(b2));
	struct iovec ia, ib1, ib2, v[4];
	struct ferry_mem ma = ta_sys(&ia, a, 4096), mb1 = ta_sys(&ib1, b1, 4096);
	struct ferry_mem mb2 = ta_sys(&ib2, b2, 4096);
	struct ferry_mem v1 = ta_virt(ch, &v[0], 4096), v2 = ta_virt(ch, &v[1], 4096);
	struct ferry_mem v3 = ta_virt(ch, &v[2], 4096), v4 = ta_virt(ch, &v[3], 4096);
	struct ta_steps log;
	memset(&log, 0, sizeof(log));
	struct ta_step_arg arg = {&log, 1};
	/* A holds 2 of the 3 buffers until it is polled; B needs 2 */
	struct ferry_seq *sa = two_buffer_seq(ch, &ma, &v1, &v2, &mb1, NULL);
	struct ferry_seq *sb = two_buffer_seq(ch, &ma, &v3, &v4, &mb2, &arg);
	struct ta_done da = {0, 0}, db = {0, 0};
	cr_assert_eq(ferry_seq_finish(sa, ta_done_cb, &da), 0);
	struct ferry_accel_stats st = ta_stats(ch);
	cr_assert_eq(st.bufs_in_use, 2);
	cr_assert_eq(ferry_seq_finish(sb, ta_done_cb, &db), -ENOMEM);
	st = ta_stats(ch);
	cr_assert_eq(st.bufs_in_use, 2, "the failed attempt gave back what it took");
	cr_assert_eq(st.nomem, 1);
	cr_assert_eq(log.n, 0, "no step callback for a refused finish");
	cr_assert_eq(db.calls, 0);
	ta_wait(ch, &da);
	cr_assert_eq(da.status, 0);
	cr_assert_eq(ta_stats(ch).bufs_in_use, 0);
	/* retry: same sequence, now it fits */
	cr_assert_eq(ferry_seq_finish(sb, ta_done_cb, &db), 0);
	ta_wait(ch, &db);
	cr_assert_eq(db.status, 0);
	cr_assert_eq(log.n, 1);
	cr_assert_eq(log.status[0], 0);
	cr_assert_eq(memcmp(a, b1, 4096), 0);
	cr_assert_eq(memcmp(a, b2, 4096), 0);
	st = ta_stats(ch);
	cr_assert_eq(st.nomem_retries, 1);
	cr_assert_eq(st.bufs_peak, 3, "B's refused attempt held the third buffer for a moment");
	cr_assert_eq(st.bufs_taken, 2 + 1 + 2);
	cr_assert_eq(st.bufs_in_use, 0);
	cr_assert_eq(st.seqs_completed, 2);
	struct ferry_accel_stats g = {.size = sizeof(g)};
	ferry_accel_get_stats(NULL, &g);
	cr_assert_eq(g.bufs_in_use, 0);
	cr_assert_geq(g.bufs_peak, 2);
	ta_put(ch, &v1);
	ta_put(ch, &v2);
	ta_put(ch, &v3);
	ta_put(ch, &v4);
	ferry_accel_chan_destroy(ch);
}

Test(seq_pool, exhausted_sequence_can_be_aborted)
{
	init_pool(0, 1, 0);
	struct ferry_accel_chan *ch = ta_chan(NULL, FERRY_ACCEL_PASS_ELIDE);
	uint8_t a[512], b[512];
	struct iovec ia, ib, v[2];
	struct ferry_mem ma = ta_sys(&ia, a, 512), mb = ta_sys(&ib, b, 512);
	struct ferry_mem v1 = ta_virt(ch, &v[0], 512), v2 = ta_virt(ch, &v[1], 512);
	struct ta_steps log;
	memset(&log, 0, sizeof(log));
	struct ta_step_arg arg = {&log, 0};
	struct ferry_seq *s = two_buffer_seq(ch, &ma, &v1, &v2, &mb, &arg);
	struct ta_done d = {0, 0};
	cr_assert_eq(ferry_seq_finish(s, ta_done_cb, &d), -ENOMEM, "needs 2, the pool has 1");
	cr_assert_eq(ferry_seq_finish(s, ta_done_cb, &d), -ENOMEM);
	ferry_seq_abort(s);
	cr_assert_eq(log.n, 1);
	cr_assert_eq(log.status[0], -ECANCELED);
	cr_assert_eq(d.calls, 0);
	struct ferry_accel_stats st = ta_stats(ch);
	cr_assert_eq(st.nomem, 2);
	cr_assert_eq(st.nomem_retries, 1);
	cr_assert_eq(st.bufs_in_use, 0);
	cr_assert_eq(st.seqs_aborted, 1);
	/* the pool is whole again: a one-buffer sequence runs */
	s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_copy(s, &v1, &ma, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_copy(s, &mb, &v1, NULL, NULL), 0);
	cr_assert_eq(ta_run(ch, s), 0);
	ta_put(ch, &v1);
	ta_put(ch, &v2);
	ferry_accel_chan_destroy(ch);
}

Test(seq_pool, bounce_needs_buffers_and_tasks)
{
	ferry_log_set_handler(tm_quiet_log);
	init_pool(0, 0, 0); /* no buffer at all */
	struct ferry_device *dev = tm_open("host_mem=1M,functions=nvme");
	struct ferry_mock_host *host = tm_host(dev);
	tm_map(host, "nvme", 0, 0, 4, TM_RW);
	struct ferry_memdomain *nvme = tm_domain(dev, "nvme");
	struct ferry_accel_chan *ch = ta_chan(NULL, 0); /* software: must bounce host memory */
	uint8_t b[4096];
	struct iovec ih = {(void *)0, 4096}, ib;
	struct ferry_mem mh = {.domain = nvme, .iov = &ih, .iovcnt = 1}, mb = ta_sys(&ib, b, 4096);
	uint32_t crc;
	struct ferry_seq *s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_crc32c(s, &mh, 0, &crc, NULL, NULL), 0);
	struct ta_done d = {0, 0};
	cr_assert_eq(ferry_seq_finish(s, ta_done_cb, &d), -ENOMEM);
	ferry_seq_abort(s);
	ferry_accel_chan_destroy(ch);
	ferry_accel_fini();
	/* buffers but no task left for the inserted pull */
	init_pool(0, 4, 0);
	struct ferry_accel_chan_opts o = {.size = sizeof(o), .max_tasks = 1};
	cr_assert_eq(ferry_accel_chan_create(NULL, &o, &ch), 0);
	s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_crc32c(s, &mh, 0, &crc, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_crc32c(s, &mb, 0, &crc, NULL, NULL), -ENOMEM, "max_tasks");
	cr_assert_eq(ferry_seq_finish(s, ta_done_cb, &d), -ENOMEM, "no task for the pull");
	cr_assert_eq(ta_stats(ch).bufs_in_use, 0);
	ferry_seq_abort(s);
	ferry_accel_chan_destroy(ch);
	ferry_mock_host_close(host);
	ferry_device_close(dev);
	ferry_log_set_handler(NULL);
}

Test(seq_pool, virtual_buffer_limits)
{
	ferry_log_set_handler(tm_quiet_log);
	struct ferry_accel_chan_opts o = {.size = sizeof(o), .max_vbufs = 2, .max_seqs = 1};
	struct ferry_accel_chan *ch;
	cr_assert_eq(ferry_accel_chan_create(NULL, &o, &ch), 0);
	void *b1, *b2, *b3, *c1, *c2, *c3;
	struct ferry_memdomain *d;
	cr_assert_eq(ferry_accel_get_buf(ch, 0, &b1, &d, &c1), -EINVAL);
	cr_assert_eq(ferry_accel_get_buf(ch, 135169, &b1, &d, &c1), -EINVAL);
	cr_assert_eq(ferry_accel_get_buf(ch, 135168, &b1, &d, &c1), 0);
	cr_assert_eq(d, ferry_accel_get_domain());
	cr_assert_eq(ferry_accel_get_buf(ch, 10, &b2, &d, &c2), 0);
	cr_assert_neq(b1, b2);
	cr_assert_eq(ferry_accel_get_buf(ch, 10, &b3, &d, &c3), -ENOMEM);
	ferry_accel_put_buf(ch, b2, d, c1); /* mismatched: ignored */
	cr_assert_eq(ferry_accel_get_buf(ch, 10, &b3, &d, &c3), -ENOMEM);
	ferry_accel_put_buf(ch, b2, d, c2);
	cr_assert_eq(ferry_accel_get_buf(ch, 10, &b3, &d, &c3), 0);
	struct ferry_seq *s1, *s2;
	cr_assert_eq(ferry_seq_create(ch, &s1), 0);
	cr_assert_eq(ferry_seq_create(ch, &s2), -ENOMEM, "max_seqs");
	ferry_seq_abort(s1);
	cr_assert_eq(ferry_seq_create(ch, &s2), 0);
	ferry_seq_abort(s2);
	ferry_accel_chan_destroy(ch); /* frees the buffers still held */
	ferry_log_set_handler(NULL);
}

Test(seq_pool, cache_and_small_buffers)
{
	init_pool(2, 1, 1);
	struct ferry_accel_chan *ch = ta_chan(NULL, FERRY_ACCEL_PASS_ELIDE);
	uint8_t a[1024], b[1024];
	memset(a, 3, sizeof(a));
	struct iovec ia, ib, v[2];
	struct ferry_mem ma = ta_sys(&ia, a, 1024), mb = ta_sys(&ib, b, 1024);
	struct ferry_mem v1 = ta_virt(ch, &v[0], 1024), v2 = ta_virt(ch, &v[1], 1024);
	for (int r = 0; r < 3; r++) {
		memset(b, 0, sizeof(b));
		struct ferry_seq *s = two_buffer_seq(ch, &ma, &v1, &v2, &mb, NULL);
		cr_assert_eq(ta_run(ch, s), 0, "round %d", r);
		cr_assert_eq(memcmp(a, b, 1024), 0);
	}
	struct ferry_accel_stats st = ta_stats(ch);
	cr_assert_eq(st.bufs_taken, 6);
	cr_assert_eq(st.bufs_peak, 2);
	cr_assert_eq(st.bufs_in_use, 0);
	/* small buffers exhausted (2) -> a large one serves a small request */
	struct iovec v3i;
	struct ferry_mem v3 = ta_virt(ch, &v3i, 1024);
	struct ferry_seq *s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_copy(s, &v1, &ma, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_copy(s, &v2, &v1, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_copy(s, &v3, &v2, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_copy(s, &mb, &v3, NULL, NULL), 0);
	cr_assert_eq(ta_run(ch, s), 0);
	cr_assert_eq(ta_stats(ch).bufs_peak, 3);
	/* four would be one too many */
	struct iovec v4i;
	struct ferry_mem v4 = ta_virt(ch, &v4i, 1024);
	s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_copy(s, &v1, &ma, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_copy(s, &v2, &v1, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_copy(s, &v3, &v2, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_copy(s, &v4, &v3, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_copy(s, &mb, &v4, NULL, NULL), 0);
	struct ta_done d = {0, 0};
	cr_assert_eq(ferry_seq_finish(s, ta_done_cb, &d), -ENOMEM);
	ferry_seq_abort(s);
	ferry_accel_chan_destroy(ch);
	ferry_accel_fini();
}
