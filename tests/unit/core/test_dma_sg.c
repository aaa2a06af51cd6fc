/*
 * Transfers on the mock DMA engine: capabilities and limits, channel options, seeded random
 * scatter-gather on both sides (system <-> system, host <-> system, host <-> host through
 * scattered IOMMU mappings) checked byte by byte against a model, gaps and tails untouched,
 * submit-time validation, foreign domains, latency, and channel destroy with transfers in
 * flight.
 */
#include <stdlib.h>
#include <unistd.h>
#include "test_mock_util.h"
#include <ferry/module/memdomain.h>

#define WINDOW_PAGES 32u
#define NWIN 8u
#define FN_PAGES (WINDOW_PAGES * NWIN) /* 256 IOVA pages mapped per function */
#define MAXSEG 24u

static struct ferry_device *dev;
static struct ferry_mock_host *host;
static struct ferry_memdomain *dom[2];
static uint32_t perm[2][FN_PAGES]; /* IOVA page -> host page, per function */

static void shuffle(uint32_t *a, uint32_t n, uint64_t *rng)
{
	for (uint32_t i = n - 1; i > 0; i--) {
		uint32_t j = (uint32_t)(tm_rand(rng) % (i + 1)), t = a[i];
		a[i] = a[j];
		a[j] = t;
	}
}

static void setup(void)
{
	uint64_t rng = 0x5eed;
	dev = tm_open("host_mem=4M");
	host = tm_host(dev);
	dom[0] = tm_domain(dev, "nvme");
	dom[1] = tm_domain(dev, "nic");
	for (int f = 0; f < 2; f++) {
		for (uint32_t p = 0; p < FN_PAGES; p++)
			perm[f][p] = f * FN_PAGES + p; /* nvme host 0..255, nic 256..511 */
		shuffle(perm[f], FN_PAGES, &rng);
		for (uint32_t p = 0; p < FN_PAGES; p++)
			tm_map(host, f ? "nic" : "nvme", p, perm[f][p], 1, TM_RW);
	}
}

static void teardown(void)
{
	ferry_mock_host_close(host);
	ferry_device_close(dev);
}

Test(xfer, query_caps_and_limits, .init = setup, .fini = teardown)
{
	struct ferry_dma_info info = {.size = sizeof(info)};
	cr_assert_eq(ferry_dma_query(dev, &info), 0);
	uint64_t want = FERRY_DMA_CAP_MEM_TO_MEM | FERRY_DMA_CAP_MEM_TO_DEV |
			FERRY_DMA_CAP_DEV_TO_MEM | FERRY_DMA_CAP_DEV_TO_DEV | FERRY_DMA_CAP_SG |
			FERRY_DMA_CAP_FENCE | FERRY_DMA_CAP_ERR_INJECT;
	cr_assert_eq(info.caps & want, want);
	cr_assert_geq(info.max_sges, MAXSEG);
	cr_assert_eq(info.alignment, 1);
	cr_assert_geq(info.max_xfer, 1u << 20);
	cr_assert_geq(info.max_channels, 2);
	cr_assert_geq(info.max_ring, 256);
	struct ferry_dma_info small = {.size = 8};
	cr_assert_eq(ferry_dma_query(dev, &small), -EINVAL);
	cr_assert_eq(ferry_device_get_classes(dev) & FERRY_DEVICE_CLASS_DMA,
		     FERRY_DEVICE_CLASS_DMA);
}

Test(xfer, channel_options, .init = setup, .fini = teardown)
{
	struct ferry_dma_info info = {.size = sizeof(info)};
	cr_assert_eq(ferry_dma_query(dev, &info), 0);
	struct ferry_dma_chan *c = NULL;
	struct ferry_dma_chan_opts o = {.size = sizeof(o), .ring_size = info.max_ring + 1};
	cr_assert_eq(ferry_dma_chan_create(dev, &o, &c), -EINVAL);
	o.size = 4;
	o.ring_size = 8;
	cr_assert_eq(ferry_dma_chan_create(dev, &o, &c), -EINVAL);
	cr_assert_eq(ferry_dma_chan_create(NULL, NULL, &c), -EINVAL);
	cr_assert_eq(ferry_dma_chan_create(dev, NULL, NULL), -EINVAL);
	cr_assert_null(c);
	/* max_channels at once, then -EBUSY; closing one frees a slot */
	struct ferry_dma_chan **all = calloc(info.max_channels, sizeof(*all));
	for (uint32_t i = 0; i < info.max_channels; i++)
		cr_assert_eq(ferry_dma_chan_create(dev, NULL, &all[i]), 0, "channel %u", i);
	cr_assert_eq(ferry_dma_chan_create(dev, NULL, &c), -EBUSY);
	ferry_dma_chan_destroy(all[0]);
	cr_assert_eq(ferry_dma_chan_create(dev, NULL, &all[0]), 0);
	for (uint32_t i = 0; i < info.max_channels; i++)
		ferry_dma_chan_destroy(all[i]);
	free(all);
	ferry_dma_chan_destroy(NULL);
}

/* ---- random scatter-gather against a model ---- */

enum kind {
	SYS = -1,
	NVME = 0,
	NIC = 1
};

struct side {
	int kind;
	uint8_t *buf; /* system: the region the segments live in (gaps included) */
	size_t bufsz;
	struct iovec iov[MAXSEG];
	uint32_t cnt;
};

/* Splits @p total into 1..MAXSEG lengths (zero-length segments allowed) laid out with small
 * gaps from @p base; returns the bytes spanned. */
static size_t layout(struct side *s, uint8_t *base, uint64_t total, uint64_t *rng)
{
	uint64_t cuts[MAXSEG + 1];
	uint32_t k = 1 + (uint32_t)(tm_rand(rng) % MAXSEG);
	cuts[0] = 0;
	cuts[k] = total;
	for (uint32_t i = 1; i < k; i++)
		cuts[i] = tm_rand(rng) % (total + 1);
	for (uint32_t i = 1; i < k; i++) /* insertion sort */
		for (uint32_t j = i; j > 1 && cuts[j - 1] > cuts[j]; j--) {
			uint64_t t = cuts[j];
			cuts[j] = cuts[j - 1];
			cuts[j - 1] = t;
		}
	size_t off = 0;
	for (uint32_t i = 0; i < k; i++) {
		off += tm_rand(rng) % 8;
		s->iov[i].iov_base = base + off;
		s->iov[i].iov_len = (size_t)(cuts[i + 1] - cuts[i]);
		off += s->iov[i].iov_len;
	}
	s->cnt = k;
	return off;
}

static void build(struct side *s, int kind, uint32_t win, uint64_t total, uint64_t *rng)
{
	s->kind = kind;
	if (kind == SYS) {
		s->bufsz = total + 8 * MAXSEG;
		s->buf = malloc(s->bufsz);
		cr_assert_not_null(s->buf);
		layout(s, s->buf, total, rng);
	} else {
		uint64_t start = (uint64_t)win * WINDOW_PAGES * TM_PAGE + tm_rand(rng) % TM_PAGE;
		s->buf = NULL;
		size_t span = layout(s, (uint8_t *)(uintptr_t)start, total, rng);
		cr_assert_leq(start + span, (uint64_t)(win + 1) * WINDOW_PAGES * TM_PAGE);
	}
}

/* Where byte @p off of side @p s lives in the model (host RAM copy or system buffer copy). */
static uint8_t *model_at(const struct side *s, uint64_t off, uint8_t *mhost, uint8_t *msys)
{
	for (uint32_t i = 0; i < s->cnt; i++) {
		if (off < s->iov[i].iov_len) {
			uintptr_t a = (uintptr_t)s->iov[i].iov_base + off;
			if (s->kind == SYS)
				return msys + (a - (uintptr_t)s->buf);
			uint64_t hp = perm[s->kind][a / TM_PAGE];
			return mhost + hp * TM_PAGE + a % TM_PAGE;
		}
		off -= s->iov[i].iov_len;
	}
	cr_assert_fail("offset past the side");
	return NULL;
}

static struct ferry_mem mem_of(struct side *s)
{
	return (struct ferry_mem){.domain = s->kind == SYS ? NULL : dom[s->kind],
				  .iov = s->iov,
				  .iovcnt = s->cnt};
}

Test(xfer, random_scatter_gather_all_directions, .init = setup, .fini = teardown)
{
	uint64_t rng = 12345, total_bytes = 0, n_total = 0;
	uint64_t hsize = ferry_mock_host_mem_size(host);
	uint8_t *hmem = ferry_mock_host_ptr(host, 0, hsize);
	uint8_t *mhost = malloc(hsize);
	int dirs[9] = {0};
	struct ferry_dma_chan *chan;
	cr_assert_eq(ferry_dma_chan_create(dev, NULL, &chan), 0);
	for (int batch = 0; batch < 40; batch++) {
		struct side src[NWIN], dst[NWIN];
		struct ferry_xfer x[NWIN], *xp[NWIN];
		uint8_t *msys[NWIN];
		for (uint64_t i = 0; i < hsize; i++)
			hmem[i] = (uint8_t)tm_rand(&rng);
		memcpy(mhost, hmem, hsize);
		for (uint32_t t = 0; t < NWIN; t++) {
			int sk = (int)(tm_rand(&rng) % 3) - 1, dk = (int)(tm_rand(&rng) % 3) - 1;
			if (sk != SYS && sk == dk)
				dk = SYS; /* host <-> host uses the other function */
			dirs[(sk + 1) * 3 + dk + 1]++;
			uint64_t len = 1 + tm_rand(&rng) % (48u << 10);
			build(&src[t], sk, t, len + tm_rand(&rng) % 300, &rng);
			build(&dst[t], dk, t, len + tm_rand(&rng) % 300, &rng);
			if (src[t].buf)
				for (size_t i = 0; i < src[t].bufsz; i++)
					src[t].buf[i] = (uint8_t)tm_rand(&rng);
			msys[t] = NULL;
			if (dst[t].buf) {
				memset(dst[t].buf, 0xee, dst[t].bufsz);
				msys[t] = malloc(dst[t].bufsz);
				memcpy(msys[t], dst[t].buf, dst[t].bufsz);
			}
			/* model: the transfer applied to the copies */
			for (uint64_t o = 0; o < len; o++)
				*model_at(&dst[t], o, mhost, msys[t]) = *model_at(&src[t], o, mhost,
										  src[t].buf);
			x[t] = (struct ferry_xfer){.src = mem_of(&src[t]),
						   .dst = mem_of(&dst[t]),
						   .len = len};
			xp[t] = &x[t];
			total_bytes += len;
			n_total++;
		}
		tm_run(chan, xp, NWIN);
		for (uint32_t t = 0; t < NWIN; t++) {
			cr_assert_eq(x[t].status, FERRY_XFER_SUCCESS, "batch %d xfer %u: %s", batch,
				     t, ferry_xfer_status_str(x[t].status));
			if (dst[t].buf)
				cr_assert_arr_eq(dst[t].buf, msys[t], dst[t].bufsz,
						 "batch %d xfer %u: local bytes", batch, t);
			free(msys[t]);
			free(src[t].buf);
			free(dst[t].buf);
		}
		cr_assert_arr_eq(hmem, mhost, hsize, "batch %d: host memory", batch);
	}
	for (int d = 0; d < 9; d++)
		if (d != 4 && d != 8) /* nvme->nvme, nic->nic are not generated */
			cr_assert_gt(dirs[d], 0, "direction %d never drawn", d);
	struct ferry_dma_stats st;
	cr_assert_eq(ferry_dma_get_stats(chan, &st), 0);
	cr_assert_eq(st.submitted, n_total);
	cr_assert_eq(st.completed, n_total);
	cr_assert_eq(st.errors, 0);
	cr_assert_eq(st.bytes, total_bytes);
	struct ferry_mock_stats ms = {.size = sizeof(ms)};
	cr_assert_eq(ferry_mock_get_stats(dev, &ms), 0);
	cr_assert_eq(ms.xfers, n_total);
	cr_assert_eq(ms.bytes, total_bytes);
	ferry_dma_chan_destroy(chan);
	free(mhost);
}

Test(xfer, submit_validation_accepts_nothing, .init = setup, .fini = teardown)
{
	struct ferry_dma_chan *chan;
	cr_assert_eq(ferry_dma_chan_create(dev, NULL, &chan), 0);
	static uint8_t a[64], b[64];
	static struct iovec many[1100];
	for (int i = 0; i < 1100; i++)
		many[i] = (struct iovec){a, 0};
	many[0].iov_len = 64;
	struct iovec ia = {a, 64}, ib = {b, 64};
	struct ferry_xfer good = {.src = {.iov = &ia, .iovcnt = 1},
				  .dst = {.iov = &ib, .iovcnt = 1},
				  .len = 64};
	struct ferry_xfer bad[7];
	for (int i = 0; i < 7; i++)
		bad[i] = good;
	bad[0].len = 0;
	bad[1].len = 65;        /* longer than both sides */
	bad[2].flags = 1u << 7; /* unknown flag */
	bad[3].src.iov = many;  /* more segments than max_sges */
	bad[3].src.iovcnt = 1100;
	bad[4].dst.iovcnt = 0;
	bad[5].src.iov = NULL;
	bad[6].len = (2ull << 30); /* above max_xfer */
	for (int i = 0; i < 7; i++) {
		struct ferry_xfer *batch[3] = {&good, &bad[i], &good};
		cr_assert_eq(ferry_dma_submit(chan, batch, 3), -EINVAL, "case %d", i);
	}
	struct ferry_xfer *withnull[2] = {&good, NULL};
	cr_assert_eq(ferry_dma_submit(chan, withnull, 2), -EINVAL);
	cr_assert_eq(ferry_dma_submit(NULL, withnull, 1), -EINVAL);
	cr_assert_eq(ferry_dma_submit(chan, NULL, 1), -EINVAL);
	cr_assert_eq(ferry_dma_submit(chan, NULL, 0), 0);
	usleep(20000);
	struct ferry_xfer *done[4];
	cr_assert_eq(ferry_dma_poll(chan, done, 4), 0, "nothing was accepted");
	cr_assert_eq(ferry_dma_poll(chan, NULL, 4), -EINVAL);
	struct ferry_dma_stats st;
	ferry_dma_get_stats(chan, &st);
	cr_assert_eq(st.submitted, 0);
	struct ferry_mock_stats ms = {.size = sizeof(ms)};
	ferry_mock_get_stats(dev, &ms);
	cr_assert_eq(ms.xfers, 0);
	ferry_dma_chan_destroy(chan);
}

Test(xfer, foreign_domains_are_invalid_addresses, .init = setup, .fini = teardown)
{
	static const struct ferry_memdomain_ops plain = {.abi_version = FERRY_MEMDOMAIN_OPS_ABI};
	struct ferry_memdomain *foreign;
	struct ferry_memdomain_opts o = {.size = sizeof(o),
					 .type = FERRY_MEMDOMAIN_PCIE,
					 .name = "other.fn",
					 .ops = &plain};
	cr_assert_eq(ferry_memdomain_create(&o, &foreign), 0);
	struct ferry_device *dev2 = tm_open(NULL);
	struct ferry_mock_host *h2 = tm_host(dev2);
	tm_map(h2, "nvme", 0, 0, 1, TM_RW); /* mapped there, but it is another device */
	struct ferry_dma_chan *chan;
	cr_assert_eq(ferry_dma_chan_create(dev, NULL, &chan), 0);
	uint8_t a[32], b[32];
	memset(a, 1, sizeof(a));
	memset(b, 2, sizeof(b));
	struct iovec la = {a, 32}, lb = {b, 32}, r0 = {TM_IOVA(0), 32}, nul = {NULL, 32};
	struct ferry_mem sa = {.iov = &la, .iovcnt = 1}, sb = {.iov = &lb, .iovcnt = 1};
	struct ferry_mem fr = {.domain = foreign, .iov = &r0, .iovcnt = 1};
	struct ferry_mem d2 = {.domain = tm_domain(dev2, "nvme"), .iov = &r0, .iovcnt = 1};
	struct ferry_mem sn = {.iov = &nul, .iovcnt = 1};
	struct ferry_xfer x[6] = {
		{.src = fr, .dst = sb, .len = 32}, {.src = sa, .dst = fr, .len = 32},
		{.src = d2, .dst = sb, .len = 32}, {.src = sa, .dst = d2, .len = 32},
		{.src = sn, .dst = sb, .len = 32}, {.src = sa, .dst = sn, .len = 32},
	};
	const enum ferry_xfer_status want[6] = {
		FERRY_XFER_INVALID_SRC_ADDR, FERRY_XFER_INVALID_DST_ADDR,
		FERRY_XFER_INVALID_SRC_ADDR, FERRY_XFER_INVALID_DST_ADDR,
		FERRY_XFER_INVALID_SRC_ADDR, FERRY_XFER_INVALID_DST_ADDR,
	};
	struct ferry_xfer *xp[6] = {&x[0], &x[1], &x[2], &x[3], &x[4], &x[5]};
	tm_run(chan, xp, 6);
	for (int i = 0; i < 6; i++)
		cr_assert_eq(x[i].status, want[i], "case %d: %s", i,
			     ferry_xfer_status_str(x[i].status));
	for (int i = 0; i < 32; i++)
		cr_assert_eq(b[i], 2);
	struct ferry_dma_stats st;
	ferry_dma_get_stats(chan, &st);
	cr_assert_eq(st.errors, 6);
	cr_assert_eq(st.bytes, 0);
	ferry_dma_chan_destroy(chan);
	ferry_mock_host_close(h2);
	ferry_device_close(dev2);
	ferry_memdomain_destroy(foreign);
}

Test(xfer, latency_is_a_lower_bound, .init = setup, .fini = teardown)
{
	struct ferry_dma_chan *chan;
	cr_assert_eq(ferry_mock_set_latency(dev, 30000000), 0);
	cr_assert_eq(ferry_mock_set_latency(dev, 20000000000ull), -EINVAL);
	cr_assert_eq(ferry_dma_chan_create(dev, NULL, &chan), 0);
	uint8_t a[16] = "latency", b[16] = {0};
	struct iovec la = {a, 16}, lb = {b, 16};
	struct ferry_xfer x = {.src = {.iov = &la, .iovcnt = 1},
			       .dst = {.iov = &lb, .iovcnt = 1},
			       .len = 16},
			  *xp = &x, *done[1];
	uint64_t t0 = tm_now_ns();
	cr_assert_eq(ferry_dma_submit(chan, &xp, 1), 1);
	cr_assert_eq(ferry_dma_poll(chan, done, 1), 0, "not before its latency");
	tm_reap(chan, done, 1);
	cr_assert_geq(tm_now_ns() - t0, 30000000);
	cr_assert_eq(done[0], &x);
	cr_assert_str_eq((char *)b, "latency");
	ferry_dma_chan_destroy(chan);
}

Test(xfer, destroy_with_transfers_in_flight, .init = setup, .fini = teardown)
{
	struct ferry_dma_chan *chan;
	cr_assert_eq(ferry_mock_set_latency(dev, 100000000), 0); /* 100 ms */
	cr_assert_eq(ferry_dma_chan_create(dev, NULL, &chan), 0);
	enum {
		N = 16,
		L = 4096
	};
	static uint8_t src[L], keep[N][L];
	uint8_t *heap[N];
	struct iovec ls = {src, L}, ld[2 * N];
	struct ferry_xfer x[2 * N], *xp[2 * N];
	memset(src, 0x3c, L);
	for (int i = 0; i < 2 * N; i++) {
		uint8_t *d = i < N ? (heap[i] = malloc(L)) : keep[i - N];
		memset(d, 0, L);
		ld[i] = (struct iovec){d, L};
		x[i] = (struct ferry_xfer){.src = {.iov = &ls, .iovcnt = 1},
					   .dst = {.iov = &ld[i], .iovcnt = 1},
					   .len = L};
		xp[i] = &x[i];
	}
	cr_assert_eq(ferry_dma_submit(chan, xp, 2 * N), 2 * N);
	ferry_dma_chan_destroy(chan);
	/* After destroy returned nothing of those transfers is touched: freeing is safe (ASan)
	 * and the kept buffers do not change any more. */
	for (int i = 0; i < N; i++)
		free(heap[i]);
	static uint8_t snap[N][L];
	memcpy(snap, keep, sizeof(snap));
	usleep(250000);
	cr_assert_arr_eq(snap, keep, sizeof(snap));
	/* the engine still serves other channels */
	cr_assert_eq(ferry_mock_set_latency(dev, 0), 0);
	cr_assert_eq(ferry_dma_chan_create(dev, NULL, &chan), 0);
	uint8_t out[L] = {0};
	struct iovec lo = {out, L};
	struct ferry_xfer y = {.src = {.iov = &ls, .iovcnt = 1},
			       .dst = {.iov = &lo, .iovcnt = 1},
			       .len = L},
			  *yp = &y;
	tm_run(chan, &yp, 1);
	cr_assert_eq(y.status, FERRY_XFER_SUCCESS);
	cr_assert_eq(out[L - 1], 0x3c);
	ferry_dma_chan_destroy(chan);
}
