/*
 * The mock's PCIe function domains through the public memory-domain API: creation and
 * enumeration per device, pull/push/memzero through the DMA engine with the callback called
 * exactly once iff the call returned 0 (success, submit-time refusal, engine-time failure of
 * every status, full ring, close with operations in flight), re-entrant callbacks.
 */
#include "test_mock_util.h"

Test(memdomain_mock, domains_per_function_in_order)
{
	struct ferry_device *dev = tm_open("functions=nvme:nic:blk_2");
	const char *fns[] = {"nvme", "nic", "blk_2"};
	struct ferry_memdomain *it = ferry_memdomain_first(FERRY_MEMDOMAIN_PCIE);
	char name[96];
	for (int i = 0; i < 3; i++, it = ferry_memdomain_next(it, FERRY_MEMDOMAIN_PCIE)) {
		snprintf(name, sizeof(name), "%s.%s", ferry_device_get_name(dev), fns[i]);
		cr_assert_not_null(it);
		cr_assert_str_eq(ferry_memdomain_get_name(it), name);
		cr_assert_eq(ferry_memdomain_get_type(it), FERRY_MEMDOMAIN_PCIE);
		cr_assert_not_null(ferry_memdomain_get_ctx(it));
		cr_assert_eq(ferry_memdomain_lookup(name), it);
	}
	cr_assert_null(it);
	struct ferry_device *dev2 = tm_open(NULL);
	cr_assert_str_neq(ferry_device_get_name(dev), ferry_device_get_name(dev2));
	struct ferry_memdomain *n2 = tm_domain(dev2, "nvme");
	cr_assert_neq(n2, tm_domain(dev, "nvme"));
	ferry_device_close(dev);
	snprintf(name, sizeof(name), "%s.nvme", ferry_device_get_name(dev2));
	cr_assert_eq(ferry_memdomain_first(FERRY_MEMDOMAIN_PCIE), n2,
		     "closed device's domains gone");
	ferry_device_close(dev2);
	cr_assert_null(ferry_memdomain_first(FERRY_MEMDOMAIN_PCIE));
	cr_assert_eq(ferry_memdomain_first(FERRY_MEMDOMAIN_ANY), ferry_memdomain_system());
}

/* Fixture: nvme IOVA pages 10..13 -> host pages 100..103 (rw), page 20 -> 200 read-only,
 * page 21 -> 201 write-only; host pages filled with a pattern. */
static struct ferry_device *dev;
static struct ferry_mock_host *host;
static struct ferry_memdomain *nvme;

static uint8_t pat(uint64_t off)
{
	return (uint8_t)(off * 13 + (off >> 9) + 1);
}

static void setup(void)
{
	dev = tm_open("host_mem=2M,ring=8");
	host = tm_host(dev);
	nvme = tm_domain(dev, "nvme");
	tm_map(host, "nvme", 10, 100, 4, TM_RW);
	tm_map(host, "nvme", 20, 200, 1, FERRY_MOCK_IOMMU_READ);
	tm_map(host, "nvme", 21, 201, 1, FERRY_MOCK_IOMMU_WRITE);
	uint8_t *m = ferry_mock_host_ptr(host, 0, ferry_mock_host_mem_size(host));
	for (uint64_t i = 0; i < ferry_mock_host_mem_size(host); i++)
		m[i] = pat(i);
}

static void teardown(void)
{
	ferry_mock_host_close(host);
	ferry_device_close(dev);
}

static struct ferry_mem rmem(struct iovec *iov, uint32_t n)
{
	return (struct ferry_mem){.domain = nvme, .iov = iov, .iovcnt = n};
}

static struct ferry_mem lmem(struct iovec *iov, uint32_t n)
{
	return (struct ferry_mem){.domain = NULL, .iov = iov, .iovcnt = n};
}

Test(memdomain_mock, pull_push_memzero, .init = setup, .fini = teardown)
{
	uint8_t buf[3 * TM_PAGE];
	uint8_t *h = ferry_mock_host_ptr(host, 100 * TM_PAGE, 4 * TM_PAGE);
	/* pull 3 pages starting mid-page, scattered on both sides */
	struct iovec r[2] = {{(char *)TM_IOVA(10) + 100, 5000},
			     {(char *)TM_IOVA(11) + 5000 - 4096 + 100, 3 * TM_PAGE - 5000}};
	struct iovec l[3] = {{buf, 1}, {buf + 1, 7000}, {buf + 7001, 3 * TM_PAGE - 7001}};
	struct ferry_mem rm = rmem(r, 2), lm = lmem(l, 3);
	struct tm_cb c = {0};
	cr_assert_eq(ferry_memdomain_pull(&rm, &lm, tm_cb_fn, &c), 0);
	tm_wait_cb(nvme, &c);
	cr_assert_eq(c.status, 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		cr_assert_eq(buf[i], pat(100 * TM_PAGE + 100 + i), "byte %zu", i);
	/* push different bytes back */
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)~buf[i];
	struct tm_cb p = {0};
	cr_assert_eq(ferry_memdomain_push(&rm, &lm, tm_cb_fn, &p), 0);
	tm_wait_cb(nvme, &p);
	cr_assert_eq(p.status, 0);
	cr_assert_eq(h[99], pat(100 * TM_PAGE + 99), "byte before untouched");
	for (size_t i = 0; i < sizeof(buf); i++)
		cr_assert_eq(h[100 + i], (uint8_t)~pat(100 * TM_PAGE + 100 + i));
	cr_assert_eq(h[100 + sizeof(buf)], pat(100 * TM_PAGE + 100 + sizeof(buf)), "byte after");
	/* memzero one page */
	struct iovec z = {TM_IOVA(13), TM_PAGE};
	struct ferry_mem zm = rmem(&z, 1);
	struct tm_cb zc = {0};
	cr_assert_eq(ferry_memdomain_memzero(&zm, tm_cb_fn, &zc), 0);
	tm_wait_cb(nvme, &zc);
	cr_assert_eq(zc.status, 0);
	for (size_t i = 0; i < TM_PAGE; i++)
		cr_assert_eq(h[3 * TM_PAGE + i], 0);
	cr_assert_eq(ferry_memdomain_poll(nvme, 16), 0, "nothing more to complete");
	cr_assert_eq(c.calls + p.calls + zc.calls, 3);
	struct ferry_mock_stats st = {.size = sizeof(st)};
	cr_assert_eq(ferry_mock_get_stats(dev, &st), 0);
	cr_assert_eq(st.domain_ops, 3);
	cr_assert_eq(st.xfers, 3);
	cr_assert_eq(st.bytes, 2 * sizeof(buf) + TM_PAGE);
}

Test(memdomain_mock, refused_at_submit_no_callback, .init = setup, .fini = teardown)
{
	uint8_t buf[TM_PAGE];
	memset(buf, 0x5a, sizeof(buf));
	struct iovec l = {buf, 64};
	struct ferry_mem lm = lmem(&l, 1);
	struct tm_cb c = {0};
	struct {
		uint64_t iova;
		int pull; /* 1 pull, 0 push, 2 memzero */
		const char *what;
	} cases[] = {
		{30 * TM_PAGE, 1, "unmapped page"},
		{14 * TM_PAGE - 32, 1, "runs into an unmapped page"},
		{21 * TM_PAGE, 1, "write-only page pulled"},
		{20 * TM_PAGE, 0, "read-only page pushed"},
		{20 * TM_PAGE, 2, "read-only page zeroed"},
		{64ull << 20, 1, "first byte past the IOVA space"},
		{UINT64_MAX - 16, 1, "wraps around"},
	};
	uint8_t *h = ferry_mock_host_ptr(host, 0, ferry_mock_host_mem_size(host));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct iovec r = {(void *)(uintptr_t)cases[i].iova, 64};
		struct ferry_mem rm = rmem(&r, 1);
		int rc = cases[i].pull == 1   ? ferry_memdomain_pull(&rm, &lm, tm_cb_fn, &c)
			 : cases[i].pull == 0 ? ferry_memdomain_push(&rm, &lm, tm_cb_fn, &c)
					      : ferry_memdomain_memzero(&rm, tm_cb_fn, &c);
		cr_assert_eq(rc, -EFAULT, "%s: %d", cases[i].what, rc);
	}
	ferry_memdomain_poll(nvme, 64);
	cr_assert_eq(c.calls, 0, "no callback for a refused call");
	for (size_t i = 0; i < sizeof(buf); i++)
		cr_assert_eq(buf[i], 0x5a);
	for (uint64_t i = 0; i < ferry_mock_host_mem_size(host); i++)
		cr_assert_eq(h[i], pat(i), "host byte %llu changed", (unsigned long long)i);
	struct ferry_mock_stats st = {.size = sizeof(st)};
	ferry_mock_get_stats(dev, &st);
	cr_assert_eq(st.domain_ops, 0);
	cr_assert_eq(st.xfers, 0);
}

/* The callback's view of ferry_last_error(): the reason of an engine-time failure. */
static char cb_last_error[256];

static void cb_keep_error(void *arg, int status)
{
	tm_cb_fn(arg, status);
	snprintf(cb_last_error, sizeof(cb_last_error), "%s", ferry_last_error());
}

/* Every engine-time failure completes the callback once, with the documented errno and the
 * reason in ferry_last_error() inside the callback, and moves nothing. */
Test(memdomain_mock, engine_failures_call_back_once, .init = setup, .fini = teardown)
{
	static const int want[FERRY_XFER_STATUS_COUNT] = {
		[FERRY_XFER_INVALID_SRC_ADDR] = -EFAULT, [FERRY_XFER_INVALID_DST_ADDR] = -EFAULT,
		[FERRY_XFER_BUS_READ_ERROR] = -EIO,      [FERRY_XFER_BUS_WRITE_ERROR] = -EIO,
		[FERRY_XFER_PAGE_FAULT] = -EFAULT,       [FERRY_XFER_DATA_POISONED] = -EIO,
		[FERRY_XFER_NOT_ATTEMPTED] = -ECANCELED,
	};
	uint8_t buf[256];
	struct iovec r = {TM_IOVA(10), sizeof(buf)}, l = {buf, sizeof(buf)};
	struct ferry_mem rm = rmem(&r, 1), lm = lmem(&l, 1);
	for (int s = 1; s < FERRY_XFER_STATUS_COUNT; s++) {
		memset(buf, 0xa5, sizeof(buf));
		cr_assert_eq(ferry_mock_inject_nth(dev, FERRY_MOCK_CHAN_FN(0), 1,
						   (enum ferry_xfer_status)s),
			     0);
		struct tm_cb c = {0};
		cb_last_error[0] = 0;
		cr_assert_eq(ferry_memdomain_pull(&rm, &lm, cb_keep_error, &c), 0);
		tm_wait_cb(nvme, &c);
		cr_assert_eq(c.status, want[s], "status %s: errno %d", ferry_xfer_status_str(s),
			     c.status);
		cr_assert(strstr(cb_last_error, "pull") &&
				  strstr(cb_last_error, ferry_xfer_status_str(s)),
			  "status %s: the callback's last error '%s' does not explain it",
			  ferry_xfer_status_str(s), cb_last_error);
		for (size_t i = 0; i < sizeof(buf); i++)
			cr_assert_eq(buf[i], 0xa5, "failed pull wrote byte %zu", i);
		ferry_memdomain_poll(nvme, 8);
		cr_assert_eq(c.calls, 1);
	}
	/* the next one succeeds again */
	struct tm_cb ok = {0};
	cr_assert_eq(ferry_memdomain_pull(&rm, &lm, tm_cb_fn, &ok), 0);
	tm_wait_cb(nvme, &ok);
	cr_assert_eq(ok.status, 0);
	cr_assert_eq(buf[0], pat(100 * TM_PAGE));
	struct ferry_mock_stats st = {.size = sizeof(st)};
	ferry_mock_get_stats(dev, &st);
	cr_assert_eq(st.injected, FERRY_XFER_STATUS_COUNT - 1);
	cr_assert_eq(st.errors, FERRY_XFER_STATUS_COUNT - 1);
}

/* The host unmaps a page after the submit-time check: the engine faults, touching nothing. */
Test(memdomain_mock, host_unmaps_while_in_flight, .init = setup, .fini = teardown)
{
	uint8_t buf[128];
	memset(buf, 0x11, sizeof(buf));
	cr_assert_eq(ferry_mock_set_latency(dev, 200000000), 0); /* 200 ms */
	struct iovec r = {TM_IOVA(12), sizeof(buf)}, l = {buf, sizeof(buf)};
	struct ferry_mem rm = rmem(&r, 1), lm = lmem(&l, 1);
	struct tm_cb c = {0};
	cr_assert_eq(ferry_memdomain_push(&rm, &lm, tm_cb_fn, &c), 0);
	cr_assert_eq(ferry_mock_host_iommu_unmap(host, 0, 12 * TM_PAGE, TM_PAGE), 0);
	tm_wait_cb(nvme, &c);
	cr_assert_eq(c.status, -EFAULT);
	const uint8_t *h = ferry_mock_host_ptr(host, 102 * TM_PAGE, TM_PAGE);
	for (size_t i = 0; i < TM_PAGE; i++)
		cr_assert_eq(h[i], pat(102 * TM_PAGE + i));
	struct ferry_mock_stats st = {.size = sizeof(st)};
	ferry_mock_get_stats(dev, &st);
	cr_assert_eq(st.page_faults, 1);
}

Test(memdomain_mock, full_ring_is_eagain_without_callback, .init = setup, .fini = teardown)
{
	uint8_t buf[9][16];
	struct iovec r = {TM_IOVA(10), 16}, l[9];
	struct tm_cb c[9] = {{0}};
	cr_assert_eq(ferry_mock_set_latency(dev, 50000000), 0);
	for (int i = 0; i < 8; i++) { /* ring=8 */
		l[i] = (struct iovec){buf[i], 16};
		struct ferry_mem rm = rmem(&r, 1), lm = lmem(&l[i], 1);
		cr_assert_eq(ferry_memdomain_pull(&rm, &lm, tm_cb_fn, &c[i]), 0);
	}
	l[8] = (struct iovec){buf[8], 16};
	struct ferry_mem rm = rmem(&r, 1), lm = lmem(&l[8], 1);
	cr_assert_eq(ferry_memdomain_pull(&rm, &lm, tm_cb_fn, &c[8]), -EAGAIN);
	uint64_t end = tm_now_ns() + 5000000000ull;
	int total = 0;
	while (total < 8 && tm_now_ns() < end)
		total += ferry_memdomain_poll(nvme, 3);
	cr_assert_eq(total, 8);
	for (int i = 0; i < 8; i++) {
		cr_assert_eq(c[i].calls, 1);
		cr_assert_eq(c[i].status, 0);
		cr_assert_eq(buf[i][5], pat(100 * TM_PAGE + 5));
	}
	cr_assert_eq(c[8].calls, 0);
	cr_assert_eq(ferry_memdomain_pull(&rm, &lm, tm_cb_fn, &c[8]), 0, "room again");
	tm_wait_cb(nvme, &c[8]);
}

/* A callback may start the next operation (the domain's lock is not held). */
struct chain {
	struct ferry_mem *rm, *lm;
	int left, calls, status;
};

static void chain_cb(void *arg, int status)
{
	struct chain *ch = arg;
	ch->calls++;
	ch->status |= status;
	if (--ch->left > 0)
		cr_assert_eq(ferry_memdomain_pull(ch->rm, ch->lm, chain_cb, ch), 0);
}

Test(memdomain_mock, callback_may_resubmit, .init = setup, .fini = teardown)
{
	uint8_t buf[64];
	struct iovec r = {TM_IOVA(11), 64}, l = {buf, 64};
	struct ferry_mem rm = rmem(&r, 1), lm = lmem(&l, 1);
	struct chain ch = {&rm, &lm, 5, 0, 0};
	cr_assert_eq(ferry_memdomain_pull(&rm, &lm, chain_cb, &ch), 0);
	uint64_t end = tm_now_ns() + 5000000000ull;
	while (ch.calls < 5 && tm_now_ns() < end)
		ferry_memdomain_poll(nvme, 1);
	cr_assert_eq(ch.calls, 5);
	cr_assert_eq(ch.status, 0);
	cr_assert_eq(buf[63], pat(101 * TM_PAGE + 63));
}

/* Closing with operations in flight drops them: no callback, no leak (ASan build). */
Test(memdomain_mock, close_with_ops_in_flight)
{
	struct ferry_device *d = tm_open("latency_ns=1000000000");
	struct ferry_mock_host *h = tm_host(d);
	tm_map(h, "nic", 0, 0, 1, TM_RW);
	static uint8_t buf[4][32];
	struct tm_cb c = {0};
	struct iovec r = {TM_IOVA(0), 32}, l[4];
	for (int i = 0; i < 4; i++) {
		l[i] = (struct iovec){buf[i], 32};
		struct ferry_mem rm = {.domain = tm_domain(d, "nic"), .iov = &r, .iovcnt = 1};
		struct ferry_mem lm = {.iov = &l[i], .iovcnt = 1};
		cr_assert_eq(ferry_memdomain_pull(&rm, &lm, tm_cb_fn, &c), 0);
	}
	ferry_mock_host_close(h);
	ferry_device_close(d);
	cr_assert_eq(c.calls, 0);
}
