/*
 * MOCK-ONLY part of the conformance suite (uses ferry/mock.h; nothing generic lives here):
 *  - the mock's conformance hooks: host memory mapped through a function's IOMMU table, so the
 *    generic round-trip and host-transfer checks run on the mock;
 *  - checks of the mock's test knobs: error injection lands on the right transfer with the
 *    right status and moves nothing, a fence behind an injected failure is not attempted,
 *    seeded random injection is deterministic, and a channel destroyed while its transfers
 *    wait out the configured latency never executes them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <ferry/mock.h>
#include "conf.h"

/* ---- hooks ---- */

#define MAX_DEVS 4u

static struct mock_host_state {
	struct ferry_device *dev;
	struct ferry_mock_host *host;
	uint64_t next_host_page;
	uint64_t next_iova_page[FERRY_MOCK_MAX_FUNCTIONS];
} mock_state[MAX_DEVS];

static struct mock_host_state *state_of(struct ferry_device *dev, int create)
{
	for (uint32_t i = 0; i < MAX_DEVS; i++)
		if (mock_state[i].dev == dev)
			return &mock_state[i];
	if (!create)
		return NULL;
	for (uint32_t i = 0; i < MAX_DEVS; i++) {
		struct mock_host_state *s = &mock_state[i];
		if (s->dev)
			continue;
		int rc = ferry_mock_host_attach(dev, &s->host);
		cr_assert_eq(rc, 0, "[mock] ferry_mock_host_attach: %d", rc);
		s->dev = dev;
		s->next_host_page = 0;
		memset(s->next_iova_page, 0, sizeof(s->next_iova_page));
		return s;
	}
	cr_assert_fail("[mock] hook state for more than %u devices", MAX_DEVS);
	return NULL;
}

/*
 * Fresh host pages, mapped at an IOVA that differs from their host offset (and between
 * functions), with an unmapped page after each range.
 */
static int mock_host_map(struct ferry_device *dev, struct ferry_memdomain *d, uint64_t len,
			 struct conf_host_range *out)
{
	struct mock_host_state *s = state_of(dev, 1);
	const char *dot = strrchr(ferry_memdomain_get_name(d), '.');
	int fn = dot ? ferry_mock_host_fn_lookup(s->host, dot + 1) : -ENOENT;
	if (fn < 0)
		return -ENOTSUP;
	uint64_t pages = (len + FERRY_MOCK_PAGE_SIZE - 1) / FERRY_MOCK_PAGE_SIZE;
	uint64_t hp = s->next_host_page;
	uint64_t ip = 16 + (uint64_t)fn * 1024 + s->next_iova_page[fn];
	uint64_t psz = FERRY_MOCK_PAGE_SIZE;
	if ((hp + pages) * psz > ferry_mock_host_mem_size(s->host) ||
	    (ip + pages + 1) * psz > ferry_mock_host_iova_size(s->host))
		return -ENOTSUP;
	int rc = ferry_mock_host_iommu_map(s->host, (unsigned)fn, ip * psz, hp * psz, pages * psz,
					   FERRY_MOCK_IOMMU_READ | FERRY_MOCK_IOMMU_WRITE);
	if (rc)
		return rc;
	s->next_host_page += pages;
	s->next_iova_page[fn] += pages + 1;
	out->iova = (void *)(uintptr_t)(ip * psz);
	out->host = ferry_mock_host_ptr(s->host, hp * psz, pages * psz);
	out->len = pages * psz;
	return out->host ? 0 : -EFAULT;
}

static void mock_release(struct ferry_device *dev)
{
	struct mock_host_state *s = state_of(dev, 0);
	if (!s)
		return;
	ferry_mock_host_close(s->host);
	memset(s, 0, sizeof(*s));
}

const struct conf_hooks conf_mock_hooks = {
	.backend = "mock",
	.host_map = mock_host_map,
	.release = mock_release,
};

/* ---- mock-only checks ---- */

static struct ferry_device *mock_open(const char *args)
{
	struct ferry_device *dev = NULL;
	conf_cur = "mock";
	int rc = ferry_device_open("mock", args, &dev);
	cr_assert_eq(rc, 0, "[mock] open '%s': %s (%s)", args, ferry_strerror(rc),
		     ferry_last_error());
	return dev;
}

enum {
	MLEN = 4096,
	MN = 3
};

struct mbatch {
	uint8_t src[MN][MLEN], dst[MN][MLEN];
	struct iovec si[MN], di[MN];
	struct ferry_xfer x[MN];
};

static void mbatch_init(struct mbatch *b, uint64_t seed)
{
	for (int k = 0; k < MN; k++) {
		conf_pattern(b->src[k], MLEN, seed + (uint64_t)k);
		memset(b->dst[k], 0x3C, MLEN);
		b->si[k] = (struct iovec){b->src[k], MLEN};
		b->di[k] = (struct iovec){b->dst[k], MLEN};
		b->x[k] = (struct ferry_xfer){.src = {.iov = &b->si[k], .iovcnt = 1},
					      .dst = {.iov = &b->di[k], .iovcnt = 1},
					      .len = MLEN};
	}
}

static int untouched(const uint8_t *p)
{
	for (int i = 0; i < MLEN; i++)
		if (p[i] != 0x3C)
			return 0;
	return 1;
}

Test(mock, injected_status_lands_on_the_nth_transfer)
{
	struct ferry_device *dev = mock_open("");
	struct ferry_dma_chan *ch;
	CONF_RC(ferry_dma_chan_create(dev, NULL, &ch), 0, "chan_create"); /* channel id 1 */
	static struct mbatch b;
	uint64_t failures = 0;
	for (int s = FERRY_XFER_SUCCESS + 1; s < FERRY_XFER_STATUS_COUNT; s++) {
		mbatch_init(&b, (uint64_t)s);
		CONF_RC(ferry_mock_inject_nth(dev, 1, 2, (enum ferry_xfer_status)s), 0,
			"inject_nth");
		CONF_ASSERT(conf_run(ch, b.x, MN, 0) == 1, "status %s: not exactly one failure",
			    ferry_xfer_status_str((enum ferry_xfer_status)s));
		failures++;
		CONF_ASSERT(b.x[1].status == (enum ferry_xfer_status)s,
			    "the 2nd transfer completed with %s, want %s",
			    ferry_xfer_status_str(b.x[1].status),
			    ferry_xfer_status_str((enum ferry_xfer_status)s));
		CONF_ASSERT(untouched(b.dst[1]), "an injected %s moved bytes",
			    ferry_xfer_status_str((enum ferry_xfer_status)s));
		CONF_ASSERT(memcmp(b.dst[0], b.src[0], MLEN) == 0 &&
				    memcmp(b.dst[2], b.src[2], MLEN) == 0,
			    "a neighbour of the injected transfer is wrong");
	}
	struct ferry_dma_stats st;
	struct ferry_mock_stats ms = {.size = sizeof(ms)};
	CONF_RC(ferry_dma_get_stats(ch, &st), 0, "get_stats");
	CONF_RC(ferry_mock_get_stats(dev, &ms), 0, "mock_get_stats");
	CONF_ASSERT(st.errors == failures && ms.injected == failures,
		    "errors %llu, injected %llu, want %llu", (unsigned long long)st.errors,
		    (unsigned long long)ms.injected, (unsigned long long)failures);
	ferry_dma_chan_destroy(ch);
	ferry_device_close(dev);
}

Test(mock, fence_behind_injected_failure_not_attempted)
{
	struct ferry_device *dev = mock_open("");
	struct ferry_dma_chan *ch;
	CONF_RC(ferry_dma_chan_create(dev, NULL, &ch), 0, "chan_create");
	static struct mbatch b;
	mbatch_init(&b, 9);
	b.x[1].flags = FERRY_XFER_F_FENCE;
	CONF_RC(ferry_mock_inject_nth(dev, 1, 1, FERRY_XFER_BUS_READ_ERROR), 0, "inject_nth");
	CONF_ASSERT(conf_run(ch, b.x, MN, 0) == 2, "want two failures");
	CONF_ASSERT(b.x[0].status == FERRY_XFER_BUS_READ_ERROR, "1st: %s",
		    ferry_xfer_status_str(b.x[0].status));
	CONF_ASSERT(b.x[1].status == FERRY_XFER_NOT_ATTEMPTED, "fenced 2nd: %s",
		    ferry_xfer_status_str(b.x[1].status));
	CONF_ASSERT(b.x[2].status == FERRY_XFER_SUCCESS, "unfenced 3rd: %s",
		    ferry_xfer_status_str(b.x[2].status));
	CONF_ASSERT(untouched(b.dst[0]) && untouched(b.dst[1]), "a failed transfer moved bytes");
	/* The failure was reaped before the next fence was submitted: it runs. */
	mbatch_init(&b, 10);
	b.x[0].flags = FERRY_XFER_F_FENCE;
	CONF_ASSERT(conf_run(ch, b.x, 1, 0) == 0, "a later fence: %s",
		    ferry_xfer_status_str(b.x[0].status));
	ferry_dma_chan_destroy(ch);
	ferry_device_close(dev);
}

/* Statuses of 64 transfers with random injection seeded @p seed, on a fresh channel. */
static void random_run(struct ferry_device *dev, uint64_t seed, uint8_t *out, uint32_t n)
{
	uint32_t mask = 0;
	for (int s = FERRY_XFER_SUCCESS + 1; s < FERRY_XFER_NOT_ATTEMPTED; s++)
		mask |= 1u << s;
	CONF_RC(ferry_mock_inject_random(dev, 250000, mask, seed), 0, "inject_random");
	struct ferry_dma_chan *ch;
	CONF_RC(ferry_dma_chan_create(dev, NULL, &ch), 0, "chan_create");
	uint8_t *src = calloc(n, 512), *dst = calloc(n, 512);
	struct iovec *si = calloc(n, sizeof(*si)), *di = calloc(n, sizeof(*di));
	struct ferry_xfer *x = calloc(n, sizeof(*x));
	CONF_ASSERT(src && dst && si && di && x, "out of memory");
	for (uint32_t k = 0; k < n; k++) {
		si[k] = (struct iovec){src + k * 512, 512};
		di[k] = (struct iovec){dst + k * 512, 512};
		x[k] = (struct ferry_xfer){.src = {.iov = &si[k], .iovcnt = 1},
					   .dst = {.iov = &di[k], .iovcnt = 1},
					   .len = 512};
	}
	conf_run(ch, x, n, 0);
	for (uint32_t k = 0; k < n; k++)
		out[k] = (uint8_t)x[k].status;
	CONF_RC(ferry_mock_inject_clear(dev), 0, "inject_clear");
	ferry_dma_chan_destroy(ch);
	free(src);
	free(dst);
	free(si);
	free(di);
	free(x);
}

Test(mock, random_injection_is_deterministic)
{
	struct ferry_device *dev = mock_open("");
	enum {
		N = 64
	};
	uint8_t a[N], b[N], other[N];
	random_run(dev, 42, a, N);
	random_run(dev, 42, b, N);
	random_run(dev, 43, other, N);
	uint32_t fails = 0;
	for (int k = 0; k < N; k++)
		fails += a[k] != FERRY_XFER_SUCCESS;
	CONF_ASSERT(fails > 0 && fails < N, "%u of %d failed at 25%%", fails, N);
	CONF_ASSERT(memcmp(a, b, N) == 0, "the same seed failed different transfers");
	CONF_ASSERT(memcmp(a, other, N) != 0, "seeds 42 and 43 failed the same transfers");
	ferry_device_close(dev);
}

Test(mock, destroyed_channel_never_executes_pending_transfers)
{
	struct ferry_device *dev = mock_open("latency_ns=30000000"); /* 30 ms */
	struct ferry_dma_chan *ch;
	CONF_RC(ferry_dma_chan_create(dev, NULL, &ch), 0, "chan_create");
	static struct mbatch b;
	mbatch_init(&b, 11);
	struct ferry_xfer *p[MN] = {&b.x[0], &b.x[1], &b.x[2]};
	CONF_RC(ferry_dma_submit(ch, p, MN), MN, "submit");
	ferry_dma_chan_destroy(ch);
	for (int k = 0; k < MN; k++)
		memset(b.dst[k], 0x3C, MLEN);
	conf_sleep_us(60000); /* twice the latency */
	for (int k = 0; k < MN; k++)
		CONF_ASSERT(untouched(b.dst[k]), "transfer %d ran after its channel was destroyed",
			    k);
	/* The device goes on. */
	CONF_RC(ferry_mock_set_latency(dev, 0), 0, "set_latency");
	CONF_RC(ferry_dma_chan_create(dev, NULL, &ch), 0, "chan_create");
	mbatch_init(&b, 12);
	CONF_ASSERT(conf_run(ch, b.x, MN, 0) == 0, "a later channel failed");
	CONF_ASSERT(memcmp(b.dst, b.src, sizeof(b.dst)) == 0, "a later channel: bytes differ");
	ferry_dma_chan_destroy(ch);
	ferry_device_close(dev);
}
