/*
 * Error paths of the mock DMA engine: every injected status lands on exactly the chosen
 * transfer (the others' bytes are right, the failed one's destination is untouched, counters
 * agree), injection scopes (channel ids, any), seeded random injection is reproducible, the
 * FENCE rule, and partial submits when the ring is full.
 */
#include <stdlib.h>
#include <unistd.h>
#include "test_mock_util.h"

#define N 8
#define L 1024

static struct ferry_device *dev;
static struct ferry_mock_host *host;
static struct ferry_memdomain *nvme;

static void setup(void)
{
	dev = tm_open("host_mem=1M");
	host = tm_host(dev);
	nvme = tm_domain(dev, "nvme");
	tm_map(host, "nvme", 0, 0, 16, TM_RW);
}

static void teardown(void)
{
	ferry_mock_host_close(host);
	ferry_device_close(dev);
}

/* N transfers host (nvme IOVA page i) -> local dst[i], with distinct source bytes. */
struct batch {
	uint8_t dst[N][L];
	struct iovec r[N], l[N];
	struct ferry_xfer x[N];
	struct ferry_xfer *xp[N];
};

static void batch_init(struct batch *b, uint32_t flags_mask)
{
	uint8_t *h = ferry_mock_host_ptr(host, 0, N * TM_PAGE);
	for (int i = 0; i < N; i++) {
		memset(h + i * TM_PAGE, 0x10 + i, L);
		memset(b->dst[i], 0xee, L);
		b->r[i] = (struct iovec){TM_IOVA(i), L};
		b->l[i] = (struct iovec){b->dst[i], L};
		b->x[i] = (struct ferry_xfer){
			.src = {.domain = nvme, .iov = &b->r[i], .iovcnt = 1},
			.dst = {.iov = &b->l[i], .iovcnt = 1},
			.len = L,
			.flags = (flags_mask >> i) & 1 ? FERRY_XFER_F_FENCE : 0,
			.status = FERRY_XFER_STATUS_COUNT, /* must be overwritten */
		};
		b->xp[i] = &b->x[i];
	}
}

static void assert_bytes(const struct batch *b, int i, int ok)
{
	for (int k = 0; k < L; k++)
		cr_assert_eq(b->dst[i][k], ok ? 0x10 + i : 0xee, "xfer %d byte %d", i, k);
}

Test(dma_errors, every_status_on_the_right_transfer, .init = setup, .fini = teardown)
{
	struct ferry_dma_chan *chan;
	cr_assert_eq(ferry_dma_chan_create(dev, NULL, &chan), 0); /* channel id 1 */
	static struct batch b;
	uint64_t completed = 0, errors = 0, bytes = 0;
	for (int s = 1; s < FERRY_XFER_STATUS_COUNT; s++) {
		int victim = (s * 3) % N; /* a different position each time */
		batch_init(&b, 0);
		cr_assert_eq(ferry_mock_inject_nth(dev, 1, (uint64_t)victim + 1,
						   (enum ferry_xfer_status)s),
			     0);
		tm_run(chan, b.xp, N);
		/* Found on the engine thread; the poller's last error names it. */
		cr_assert(strstr(ferry_last_error(), ferry_xfer_status_str((enum ferry_xfer_status)s)),
			  "status %s: last error '%s' does not name it", ferry_xfer_status_str(s),
			  ferry_last_error());
		for (int i = 0; i < N; i++) {
			enum ferry_xfer_status want = i == victim ? (enum ferry_xfer_status)s
								  : FERRY_XFER_SUCCESS;
			cr_assert_eq(b.x[i].status, want, "status %s, xfer %d got %s",
				     ferry_xfer_status_str(s), i,
				     ferry_xfer_status_str(b.x[i].status));
			assert_bytes(&b, i, i != victim);
		}
		completed += N;
		errors += 1;
		bytes += (N - 1) * L;
		struct ferry_dma_stats st;
		cr_assert_eq(ferry_dma_get_stats(chan, &st), 0);
		cr_assert_eq(st.submitted, completed);
		cr_assert_eq(st.completed, completed);
		cr_assert_eq(st.errors, errors);
		cr_assert_eq(st.bytes, bytes);
	}
	struct ferry_mock_stats ms = {.size = sizeof(ms)};
	ferry_mock_get_stats(dev, &ms);
	cr_assert_eq(ms.injected, FERRY_XFER_STATUS_COUNT - 1);
	cr_assert_eq(ms.errors, FERRY_XFER_STATUS_COUNT - 1);
	cr_assert_eq(ms.page_faults, 0, "an injected page fault counts as injected");
	ferry_dma_chan_destroy(chan);
}

Test(dma_errors, injection_scopes, .init = setup, .fini = teardown)
{
	struct ferry_dma_chan *c1, *c2;
	cr_assert_eq(ferry_mock_inject_nth(dev, 2, 3, FERRY_XFER_BUS_WRITE_ERROR), 0,
		     "arming before the channel exists counts from its first transfer");
	cr_assert_eq(ferry_dma_chan_create(dev, NULL, &c1), 0); /* id 1 */
	cr_assert_eq(ferry_dma_chan_create(dev, NULL, &c2), 0); /* id 2 */
	static struct batch a, b;
	batch_init(&a, 0);
	batch_init(&b, 0);
	/* device-wide: the 10th transfer of the device from now (c1 runs 8 first, then c2) */
	cr_assert_eq(ferry_mock_inject_nth(dev, FERRY_MOCK_CHAN_ANY, 10, FERRY_XFER_DATA_POISONED),
		     0);
	tm_run(c1, a.xp, N);
	tm_run(c2, b.xp, N);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(a.x[i].status, FERRY_XFER_SUCCESS, "channel 1 untouched");
		assert_bytes(&a, i, 1);
	}
	for (int i = 0; i < N; i++) {
		enum ferry_xfer_status want = i == 1   ? FERRY_XFER_DATA_POISONED
					      : i == 2 ? FERRY_XFER_BUS_WRITE_ERROR
						       : FERRY_XFER_SUCCESS;
		cr_assert_eq(b.x[i].status, want, "xfer %d: %s", i,
			     ferry_xfer_status_str(b.x[i].status));
		assert_bytes(&b, i, want == FERRY_XFER_SUCCESS);
	}
	/* rules fire once; clear disarms the rest */
	cr_assert_eq(ferry_mock_inject_nth(dev, 1, 1, FERRY_XFER_PAGE_FAULT), 0);
	cr_assert_eq(ferry_mock_inject_clear(dev), 0);
	batch_init(&a, 0);
	tm_run(c1, a.xp, N);
	for (int i = 0; i < N; i++)
		cr_assert_eq(a.x[i].status, FERRY_XFER_SUCCESS);
	/* domain operations are counted on their function's channel, not on the user's */
	cr_assert_eq(ferry_mock_inject_nth(dev, FERRY_MOCK_CHAN_FN(0), 1,
					   FERRY_XFER_BUS_READ_ERROR),
		     0);
	batch_init(&a, 0);
	tm_run(c1, a.xp, N);
	for (int i = 0; i < N; i++)
		cr_assert_eq(a.x[i].status, FERRY_XFER_SUCCESS);
	uint8_t buf[16];
	struct iovec r = {TM_IOVA(0), 16}, l = {buf, 16};
	struct ferry_mem rm = {.domain = nvme, .iov = &r, .iovcnt = 1},
			 lm = {.iov = &l, .iovcnt = 1};
	struct tm_cb c = {0};
	cr_assert_eq(ferry_memdomain_pull(&rm, &lm, tm_cb_fn, &c), 0);
	tm_wait_cb(nvme, &c);
	cr_assert_eq(c.status, -EIO);
	ferry_dma_chan_destroy(c1);
	ferry_dma_chan_destroy(c2);
}

Test(dma_errors, inject_argument_checks, .init = setup, .fini = teardown)
{
	cr_assert_eq(ferry_mock_inject_nth(dev, 1, 0, FERRY_XFER_PAGE_FAULT), -EINVAL);
	cr_assert_eq(ferry_mock_inject_nth(dev, 1, 1, FERRY_XFER_SUCCESS), -EINVAL);
	cr_assert_eq(ferry_mock_inject_nth(dev, 1, 1, FERRY_XFER_STATUS_COUNT), -EINVAL);
	cr_assert_eq(ferry_mock_inject_nth(NULL, 1, 1, FERRY_XFER_PAGE_FAULT), -EINVAL);
	for (int i = 0; i < 16; i++)
		cr_assert_eq(ferry_mock_inject_nth(dev, 1, 100 + i, FERRY_XFER_PAGE_FAULT), 0);
	cr_assert_eq(ferry_mock_inject_nth(dev, 1, 1, FERRY_XFER_PAGE_FAULT), -ENOSPC);
	cr_assert_eq(ferry_mock_inject_random(dev, 1000001, 0x2, 1), -EINVAL);
	cr_assert_eq(ferry_mock_inject_random(dev, 10, 0, 1), -EINVAL, "empty mask");
	cr_assert_eq(ferry_mock_inject_random(dev, 10, 0x1, 1), -EINVAL, "success in the mask");
	cr_assert_eq(ferry_mock_inject_random(dev, 10, 1u << FERRY_XFER_STATUS_COUNT, 1), -EINVAL);
	cr_assert_eq(ferry_mock_inject_random(dev, 0, 0, 1), 0, "off");
	cr_assert_eq(ferry_mock_inject_clear(NULL), -EINVAL);
	struct ferry_mock_stats ms = {.size = 4};
	cr_assert_eq(ferry_mock_get_stats(dev, &ms), -EINVAL);
}

/* Runs 200 transfers with random injection; records each status. */
static void random_run(const char *args, uint32_t ppm, uint64_t seed, uint8_t *out)
{
	struct ferry_device *d = tm_open(args);
	struct ferry_dma_chan *chan;
	cr_assert_eq(ferry_dma_chan_create(d, NULL, &chan), 0);
	if (ppm)
		cr_assert_eq(ferry_mock_inject_random(d, ppm, 0x7e, seed), 0);
	static uint8_t src[64], dst[200][64];
	struct iovec ls = {src, 64}, ld[200];
	struct ferry_xfer x[200], *xp[200];
	memset(src, 0x42, sizeof(src));
	for (int i = 0; i < 200; i++) {
		memset(dst[i], 0, 64);
		ld[i] = (struct iovec){dst[i], 64};
		x[i] = (struct ferry_xfer){.src = {.iov = &ls, .iovcnt = 1},
					   .dst = {.iov = &ld[i], .iovcnt = 1},
					   .len = 64};
		xp[i] = &x[i];
	}
	for (int i = 0; i < 200; i += 50) /* several batches */
		tm_run(chan, xp + i, 50);
	for (int i = 0; i < 200; i++) {
		out[i] = (uint8_t)x[i].status;
		cr_assert_eq(dst[i][0], x[i].status == FERRY_XFER_SUCCESS ? 0x42 : 0);
		cr_assert(x[i].status != FERRY_XFER_NOT_ATTEMPTED &&
					  x[i].status != FERRY_XFER_SUCCESS
				  ? (0x7eu >> x[i].status) & 1
				  : 1,
			  "status outside the mask");
	}
	ferry_dma_chan_destroy(chan);
	ferry_device_close(d);
}

Test(dma_errors, random_injection_is_reproducible)
{
	uint8_t a[200], b[200], c[200], e[200];
	random_run(NULL, 250000, 42, a);
	random_run(NULL, 250000, 42, b);
	random_run(NULL, 250000, 43, c);
	random_run("seed=42,inject_ppm=250000", 0, 0, e);
	cr_assert_arr_eq(a, b, sizeof(a), "same seed, same failures");
	cr_assert(memcmp(a, c, sizeof(a)) != 0, "another seed, other failures");
	int fails = 0, kinds = 0, seen[FERRY_XFER_STATUS_COUNT] = {0};
	for (int i = 0; i < 200; i++) {
		fails += a[i] != 0;
		seen[a[i]]++;
	}
	for (int s = 1; s < FERRY_XFER_STATUS_COUNT; s++)
		kinds += seen[s] > 0;
	cr_assert(fails > 20 && fails < 90, "about 25%% fail: %d", fails);
	cr_assert_geq(kinds, 4, "several statuses drawn");
	int efails = 0;
	for (int i = 0; i < 200; i++)
		efails += e[i] != 0;
	cr_assert(efails > 20 && efails < 90, "inject_ppm argument: %d", efails);
}

Test(dma_errors, fence_not_attempted_after_a_failure, .init = setup, .fini = teardown)
{
	struct ferry_dma_chan *chan;
	cr_assert_eq(ferry_dma_chan_create(dev, NULL, &chan), 0);
	static struct batch b;
	/* x0 fails; x1 runs; x2 (fence) is not attempted; x3 runs; x5 (fence) not attempted
	 * either (x0 and x2 failed and were not reaped when it was submitted). */
	batch_init(&b, (1u << 2) | (1u << 5));
	cr_assert_eq(ferry_mock_inject_nth(dev, 1, 1, FERRY_XFER_BUS_READ_ERROR), 0);
	tm_run(chan, b.xp, N);
	const enum ferry_xfer_status want[N] = {
		FERRY_XFER_BUS_READ_ERROR, FERRY_XFER_SUCCESS, FERRY_XFER_NOT_ATTEMPTED,
		FERRY_XFER_SUCCESS,        FERRY_XFER_SUCCESS, FERRY_XFER_NOT_ATTEMPTED,
		FERRY_XFER_SUCCESS,        FERRY_XFER_SUCCESS,
	};
	for (int i = 0; i < N; i++) {
		cr_assert_eq(b.x[i].status, want[i], "xfer %d: %s", i,
			     ferry_xfer_status_str(b.x[i].status));
		assert_bytes(&b, i, want[i] == FERRY_XFER_SUCCESS);
	}
	/* everything was reaped: a new fenced transfer runs */
	batch_init(&b, 1u << 0);
	tm_run(chan, b.xp, 1);
	cr_assert_eq(b.x[0].status, FERRY_XFER_SUCCESS);
	/* a failure that was not reaped when the fence was submitted stops it, even across
	 * separate submits */
	batch_init(&b, 1u << 1);
	cr_assert_eq(ferry_mock_inject_nth(dev, 1, 1, FERRY_XFER_PAGE_FAULT), 0);
	cr_assert_eq(ferry_dma_submit(chan, b.xp, 1), 1);
	usleep(10000);
	cr_assert_eq(ferry_dma_submit(chan, b.xp + 1, 1), 1);
	struct ferry_xfer *done[2];
	tm_reap(chan, done, 2);
	cr_assert_eq(b.x[0].status, FERRY_XFER_PAGE_FAULT);
	cr_assert_eq(b.x[1].status, FERRY_XFER_NOT_ATTEMPTED);
	assert_bytes(&b, 1, 0);
	/* without a failure, a fence changes nothing but the timing */
	batch_init(&b, 0xff);
	tm_run(chan, b.xp, N);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(b.x[i].status, FERRY_XFER_SUCCESS);
		assert_bytes(&b, i, 1);
	}
	struct ferry_mock_stats ms = {.size = sizeof(ms)};
	ferry_mock_get_stats(dev, &ms);
	cr_assert_eq(ms.not_attempted, 3);
	ferry_dma_chan_destroy(chan);
}

Test(dma_errors, fence_waits_for_earlier_transfers, .init = setup, .fini = teardown)
{
	struct ferry_dma_chan *chan;
	const uint64_t lat = 20000000; /* 20 ms */
	cr_assert_eq(ferry_mock_set_latency(dev, lat), 0);
	cr_assert_eq(ferry_dma_chan_create(dev, NULL, &chan), 0);
	static struct batch b;
	/* 4 fenced transfers: each starts after the previous completed, then takes its latency */
	batch_init(&b, 0xf);
	uint64_t t0 = tm_now_ns();
	tm_run(chan, b.xp, 4);
	uint64_t fenced = tm_now_ns() - t0;
	cr_assert_geq(fenced, 4 * lat, "fenced chain took %llu ns", (unsigned long long)fenced);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(b.x[i].status, FERRY_XFER_SUCCESS);
	/* completion order is submission order */
	batch_init(&b, 0x0a);
	struct ferry_xfer *done[N];
	cr_assert_eq(ferry_dma_submit(chan, b.xp, N), N);
	tm_reap(chan, done, N);
	for (int i = 0; i < N; i++)
		cr_assert_eq(done[i], &b.x[i]);
	ferry_dma_chan_destroy(chan);
}

Test(dma_errors, ring_full_partial_submit, .init = setup, .fini = teardown)
{
	struct ferry_dma_chan *chan;
	struct ferry_dma_chan_opts o = {.size = sizeof(o), .ring_size = 3};
	cr_assert_eq(ferry_mock_set_latency(dev, 30000000), 0);
	cr_assert_eq(ferry_dma_chan_create(dev, &o, &chan), 0);
	static struct batch b;
	batch_init(&b, 0);
	struct ferry_xfer *done[N];
	cr_assert_eq(ferry_dma_submit(chan, b.xp, N), 3, "only what fits");
	cr_assert_eq(ferry_dma_submit(chan, b.xp + 3, N - 3), 0, "ring full");
	tm_reap(chan, done, 1);
	cr_assert_eq(ferry_dma_submit(chan, b.xp + 3, N - 3), 1, "one slot free again");
	tm_reap(chan, done, 3);
	cr_assert_eq(ferry_dma_submit(chan, b.xp + 4, N - 4), 3);
	tm_reap(chan, done, 3);
	cr_assert_eq(ferry_dma_submit(chan, b.xp + 7, 1), 1);
	tm_reap(chan, done, 1);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(b.x[i].status, FERRY_XFER_SUCCESS);
		assert_bytes(&b, i, 1);
	}
	struct ferry_dma_stats st;
	ferry_dma_get_stats(chan, &st);
	cr_assert_eq(st.submitted, N);
	cr_assert_eq(st.completed, N);
	cr_assert_eq(st.bytes, N * L);
	ferry_dma_chan_destroy(chan);
}
