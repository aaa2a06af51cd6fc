/*
 * Helpers shared by the tests of the foundation that run on the mock backend: open a device,
 * find its function domains, wait for domain completions, run a batch of transfers to
 * completion. Header-only (each test_*.c is its own executable).
 */
#ifndef TEST_MOCK_UTIL_H
#define TEST_MOCK_UTIL_H

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <ferry/ferry.h>
#include <ferry/mock.h>

#define TM_PAGE 4096u
#define TM_RW (FERRY_MOCK_IOMMU_READ | FERRY_MOCK_IOMMU_WRITE)
#define TM_IOVA(page) ((void *)(uintptr_t)((uint64_t)(page)*TM_PAGE))

static inline uint64_t tm_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline struct ferry_device *tm_open(const char *args)
{
	struct ferry_device *dev = NULL;
	int rc = ferry_device_open("mock", args, &dev);
	cr_assert_eq(rc, 0, "open mock '%s': %d (%s)", args ? args : "", rc, ferry_last_error());
	return dev;
}

static inline struct ferry_memdomain *tm_domain(struct ferry_device *dev, const char *fn)
{
	char name[96];
	snprintf(name, sizeof(name), "%s.%s", ferry_device_get_name(dev), fn);
	struct ferry_memdomain *d = ferry_memdomain_lookup(name);
	cr_assert_not_null(d, "no domain %s", name);
	return d;
}

static inline struct ferry_mock_host *tm_host(struct ferry_device *dev)
{
	struct ferry_mock_host *h = NULL;
	cr_assert_eq(ferry_mock_host_attach(dev, &h), 0);
	return h;
}

static inline void tm_map(struct ferry_mock_host *h, const char *fn, uint64_t iova_page,
			  uint64_t host_page, uint64_t pages, uint32_t perms)
{
	int idx = ferry_mock_host_fn_lookup(h, fn);
	cr_assert_geq(idx, 0);
	int rc = ferry_mock_host_iommu_map(h, (unsigned)idx, iova_page * TM_PAGE,
					   host_page * TM_PAGE, pages * TM_PAGE, perms);
	cr_assert_eq(rc, 0, "map %s %llu->%llu: %d", fn, (unsigned long long)iova_page,
		     (unsigned long long)host_page, rc);
}

/* Completion record for domain operations: counts callbacks. */
struct tm_cb {
	int calls;
	int status;
};

static inline void tm_cb_fn(void *arg, int status)
{
	struct tm_cb *c = arg;
	c->calls++;
	c->status = status;
}

/* Polls @p d until @p c saw at least one callback, or 5 s passed. */
static inline void tm_wait_cb(struct ferry_memdomain *d, struct tm_cb *c)
{
	uint64_t end = tm_now_ns() + 5000000000ull;
	while (c->calls == 0 && tm_now_ns() < end)
		ferry_memdomain_poll(d, 64);
	cr_assert_eq(c->calls, 1, "callback ran %d times", c->calls);
}

/* Polls @p chan until @p n transfers came back (5 s at most); stores them in @p done. */
static inline void tm_reap(struct ferry_dma_chan *chan, struct ferry_xfer **done, uint32_t n)
{
	uint32_t got = 0;
	uint64_t end = tm_now_ns() + 5000000000ull;
	while (got < n && tm_now_ns() < end) {
		int rc = ferry_dma_poll(chan, done + got, n - got);
		cr_assert_geq(rc, 0);
		got += (uint32_t)rc;
	}
	cr_assert_eq(got, n, "only %u of %u transfers completed", got, n);
}

/* Submits all @p n transfers (polling whenever the ring is full) and reaps them all. */
static inline void tm_run(struct ferry_dma_chan *chan, struct ferry_xfer **xfers, uint32_t n)
{
	struct ferry_xfer *done[256];
	uint32_t sub = 0, got = 0;
	uint64_t end = tm_now_ns() + 10000000000ull;
	while (got < n && tm_now_ns() < end) {
		if (sub < n) {
			int rc = ferry_dma_submit(chan, xfers + sub, n - sub);
			cr_assert_geq(rc, 0, "submit: %d (%s)", rc, ferry_last_error());
			sub += (uint32_t)rc;
		}
		int rc = ferry_dma_poll(chan, done, 256);
		cr_assert_geq(rc, 0);
		got += (uint32_t)rc;
	}
	cr_assert_eq(got, n, "only %u of %u transfers completed", got, n);
}

/* Deterministic generator for the tests (xorshift64*). */
static inline uint64_t tm_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

/* A silent log handler for tests that provoke errors on purpose. */
static inline void tm_quiet_log(enum ferry_log_level l, const char *c, const char *f, va_list ap)
{
	(void)l;
	(void)c;
	(void)f;
	(void)ap;
}

#endif /* TEST_MOCK_UTIL_H */
