/*
 * Accel channels and the domains they wait on: a channel with pulls in flight on many
 * domains at once polls every one of them (no fixed limit that can lose a completion), and
 * ferry_accel_chan_destroy() returns in bounded time even when a domain never completes
 * (its sequences are delivered with -ECANCELED).
 */
#include <ferry/module/memdomain.h>
#include "test_accel_util.h"

/* A remote domain that completes its pulls only from its poll op, like a real DMA queue. */
#define TD_MAX_PENDING 64

struct td_pending {
	ferry_memdomain_cb cb;
	void *arg;
};

struct td_dom {
	struct ferry_memdomain *d;
	uint8_t backing[8192]; /* "remote" address 0x1000 + off maps to backing[off] */
	struct td_pending pend[TD_MAX_PENDING];
	int npend;
	int stuck; /* never completes */
	int polls;
};

static int td_pull(struct ferry_memdomain *d, void *ctx, const struct iovec *src, uint32_t sc,
		   const struct iovec *dst, uint32_t dc, ferry_memdomain_cb cb, void *arg)
{
	(void)ctx;
	struct td_dom *t = ferry_memdomain_get_ctx(d);
	if (t->npend == TD_MAX_PENDING)
		return -EAGAIN;
	struct iovec loc[4];
	cr_assert_leq(sc, 4);
	for (uint32_t i = 0; i < sc; i++) {
		uintptr_t a = (uintptr_t)src[i].iov_base;
		cr_assert(a >= 0x1000 && a + src[i].iov_len <= 0x1000 + sizeof(t->backing));
		loc[i].iov_base = t->backing + (a - 0x1000);
		loc[i].iov_len = src[i].iov_len;
	}
	ferry_iov_copy(dst, dc, loc, sc); /* the bytes move now, the completion comes later */
	t->pend[t->npend++] = (struct td_pending){cb, arg};
	return 0;
}

static int td_poll(struct ferry_memdomain *d, uint32_t max)
{
	struct td_dom *t = ferry_memdomain_get_ctx(d);
	t->polls++;
	if (t->stuck)
		return 0;
	int n = 0;
	while (t->npend && (uint32_t)n < max) {
		struct td_pending p = t->pend[0];
		memmove(t->pend, t->pend + 1, (size_t)(t->npend - 1) * sizeof(t->pend[0]));
		t->npend--;
		p.cb(p.arg, 0);
		n++;
	}
	return n;
}

static const struct ferry_memdomain_ops td_ops = {
	.abi_version = FERRY_MEMDOMAIN_OPS_ABI,
	.pull = td_pull,
	.poll = td_poll,
};

static struct td_dom *td_create(const char *name, uint8_t pattern)
{
	struct td_dom *t = calloc(1, sizeof(*t));
	cr_assert_not_null(t);
	memset(t->backing, pattern, sizeof(t->backing));
	struct ferry_memdomain_opts o = {.size = sizeof(o),
					 .type = FERRY_MEMDOMAIN_VENDOR_FIRST,
					 .name = name,
					 .ops = &td_ops,
					 .user_ctx = t};
	cr_assert_eq(ferry_memdomain_create(&o, &t->d), 0, "%s", ferry_last_error());
	return t;
}

static void td_destroy(struct td_dom *t)
{
	ferry_memdomain_destroy(t->d);
	free(t);
}

#define NDOMS 12 /* more than the channel ever waited on with a fixed table (8) */

/* Twelve sequences, each pulling from its own domain, in flight at once: all complete. */
Test(accel_chan, waits_on_more_than_eight_domains, .timeout = 20)
{
	struct ferry_accel_chan *ch = ta_chan(NULL, 0);
	struct td_dom *doms[NDOMS];
	uint8_t dst[NDOMS][512];
	struct iovec si[NDOMS], di[NDOMS];
	struct ta_done done[NDOMS];
	memset(dst, 0, sizeof(dst));
	memset(done, 0, sizeof(done));
	for (int i = 0; i < NDOMS; i++) {
		char name[32];
		snprintf(name, sizeof(name), "td%d", i);
		doms[i] = td_create(name, (uint8_t)(0x40 + i));
		si[i] = (struct iovec){(void *)(uintptr_t)0x1000, 512};
		struct ferry_mem src = {.domain = doms[i]->d, .iov = &si[i], .iovcnt = 1};
		struct ferry_mem d = ta_sys(&di[i], dst[i], 512);
		struct ferry_seq *s = ta_seq(ch);
		cr_assert_eq(ferry_seq_append_copy(s, &d, &src, NULL, NULL), 0);
		cr_assert_eq(ferry_seq_finish(s, ta_done_cb, &done[i]), 0, "%s",
			     ferry_last_error());
	}
	/* Start every pull: then all twelve domains have work in flight at the same time. */
	cr_assert_eq(ferry_accel_chan_poll(ch, 0), 0);
	int started = 0;
	for (int i = 0; i < NDOMS; i++)
		started += doms[i]->npend;
	cr_assert_eq(started, NDOMS, "every pull started before any completed");
	uint64_t end = tm_now_ns() + 3000000000ull;
	int completed = 0;
	while (completed < NDOMS && tm_now_ns() < end) {
		cr_assert_geq(ferry_accel_chan_poll(ch, 64), 0);
		completed = 0;
		for (int i = 0; i < NDOMS; i++)
			completed += done[i].calls;
	}
	for (int i = 0; i < NDOMS; i++) {
		cr_assert_eq(done[i].calls, 1, "sequence %d (domain td%d) completed", i, i);
		cr_assert_eq(done[i].status, 0);
		cr_assert_eq(dst[i][0], 0x40 + i);
		cr_assert_eq(dst[i][511], 0x40 + i);
		cr_assert_gt(doms[i]->polls, 0, "domain td%d was polled", i);
	}
	struct ferry_accel_stats st = ta_stats(ch);
	cr_assert_eq(st.bounces, NDOMS);
	cr_assert_eq(st.bytes_bounced, NDOMS * 512);
	ferry_accel_chan_destroy(ch);
	for (int i = 0; i < NDOMS; i++)
		td_destroy(doms[i]);
}

/* Destroy with a pull that never completes: returns (bounded), the sequence is cancelled. */
Test(accel_chan, destroy_is_bounded_with_a_stuck_domain, .timeout = 30)
{
	struct ferry_accel_chan *ch = ta_chan(NULL, 0);
	struct td_dom *t = td_create("td-stuck", 0x11);
	t->stuck = 1;
	uint8_t dst[256];
	struct iovec si = {(void *)(uintptr_t)0x1000, 256}, di;
	struct ferry_mem src = {.domain = t->d, .iov = &si, .iovcnt = 1};
	struct ferry_mem d = ta_sys(&di, dst, 256);
	struct ta_steps log;
	memset(&log, 0, sizeof(log));
	struct ta_step_arg arg = {&log, 7};
	struct ta_done done = {0, 0};
	struct ferry_seq *s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_copy(s, &d, &src, ta_step_cb, &arg), 0);
	cr_assert_eq(ferry_seq_finish(s, ta_done_cb, &done), 0);
	cr_assert_eq(ferry_accel_chan_poll(ch, 16), 0);
	cr_assert_eq(t->npend, 1, "the pull is in flight");
	uint64_t t0 = tm_now_ns();
	ferry_accel_chan_destroy(ch);
	uint64_t took = tm_now_ns() - t0;
	cr_assert_lt(took, 15000000000ull, "destroy returned after %llu ms",
		     (unsigned long long)(took / 1000000));
	cr_assert_eq(done.calls, 1, "the sequence got its callback");
	cr_assert_eq(done.status, -ECANCELED);
	cr_assert_eq(log.n, 1);
	cr_assert_eq(log.order[0], 7);
	cr_assert_eq(log.status[0], -ECANCELED);
	cr_assert_not_null(strstr(ferry_last_error(), "in flight"), "last error: %s",
			   ferry_last_error());
	/* The domain completes late: the (leaked) channel memory it points to is still valid. */
	t->stuck = 0;
	cr_assert_eq(ferry_memdomain_poll(t->d, 16), 1);
	td_destroy(t);
}
