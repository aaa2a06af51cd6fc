/*
 * Conformance, the DMA engine's written contract beyond plain copies (ferry/dma.h,
 * ferry/hal/dma.h):
 *   dma.status_on_right_transfer  in a batch mixing failing and valid transfers, each status
 *                                 lands on its own transfer and only the failing ones fail;
 *   dma.fence_rule                the one fence rule of FERRY_XFER_F_FENCE, every case of it
 *                                 (failure in flight, completed but not polled, polled);
 *   dma.declared_limits_honoured  transfers at exactly the declared max_sges / max_xfer /
 *                                 alignment are accepted and byte-exact; max_channels
 *                                 channels open and the next one is refused.
 * Completion exactly once is checked by conf_run() everywhere.
 */
#include <stdlib.h>
#include "conf.h"

#define SEED 0xD3A0C0DEull

/* Submit @p x[0..n) (all must be accepted at once) without polling. */
static void submit_now(struct ferry_dma_chan *ch, struct ferry_xfer *x, uint32_t n,
		       uint32_t first_ctx)
{
	struct ferry_xfer *p[16];
	CONF_ASSERT(n <= 16, "internal: batch of %u", n);
	for (uint32_t i = 0; i < n; i++) {
		x[i].user_ctx = CONF_CTX(first_ctx + i);
		x[i].status = FERRY_XFER_STATUS_COUNT;
		p[i] = &x[i];
	}
	int rc = ferry_dma_submit(ch, p, n);
	CONF_ASSERT(rc == (int)n, "submit of %u transfers on an idle channel returned %d (%s; %s)",
		    n, rc, ferry_strerror(rc), conf_last_error());
}

/* Poll until every transfer of @p x[0..n) (user_ctx CONF_CTX(first_ctx + i)) came back once. */
static void reap(struct ferry_dma_chan *ch, struct ferry_xfer *x, uint32_t n, uint32_t first_ctx)
{
	uint8_t seen[16] = {0};
	uint32_t got = 0;
	uint64_t end = conf_now_ns() + 5000000000ull;
	while (got < n) {
		struct ferry_xfer *done[16];
		int m = ferry_dma_poll(ch, done, 16);
		CONF_ASSERT(m >= 0 && m <= 16, "poll returned %d (%s)", m, ferry_strerror(m));
		for (int j = 0; j < m; j++) {
			uint32_t i = (uint32_t)((uintptr_t)done[j]->user_ctx - 0xC0F00000u) -
				     first_ctx;
			CONF_ASSERT(i < n && done[j] == &x[i],
				    "poll returned a transfer that was not in flight");
			CONF_ASSERT(!seen[i], "transfer %u returned twice", i);
			CONF_ASSERT((unsigned)x[i].status < FERRY_XFER_STATUS_COUNT,
				    "transfer %u completed with status %d", i, (int)x[i].status);
			seen[i] = 1;
		}
		got += (uint32_t)m;
		if (!m) {
			CONF_ASSERT(conf_now_ns() < end, "%u of %u transfers not back after 5 s",
				    n - got, n);
			conf_sleep_us(50);
		}
	}
	CONF_ASSERT(conf_quiet_poll(ch, 20) == 0, "poll returned a transfer nobody had in flight");
}

static int all_bytes(const uint8_t *p, uint64_t len, uint8_t v)
{
	for (uint64_t i = 0; i < len; i++)
		if (p[i] != v)
			return 0;
	return 1;
}

/* ---- statuses on the right transfer ---- */

CONF_TEST(dma, status_on_right_transfer)
{
	struct conf_ctx c;
	conf_open(param, &c);
	conf_require(&c, FERRY_DMA_CAP_MEM_TO_MEM, "system-to-system transfers");
	enum {
		N = 12
	};
	uint64_t len = conf_round(&c, 1024);
	uint8_t *src = conf_alloc(&c, len * N), *dst = conf_alloc(&c, len * N);
	struct iovec si[N], di[N], bad = {NULL, len};
	struct ferry_xfer x[N];
	struct ferry_dma_chan *ch;
	CONF_RC(ferry_dma_chan_create(c.dev, NULL, &ch), 0, "chan_create");
	uint64_t rng = conf_seed(param, SEED);
	for (uint32_t round = 0; round < 8; round++) {
		uint32_t badmask = (uint32_t)conf_rand(&rng) & ((1u << N) - 1);
		if (!badmask)
			badmask = 1u << (round % N);
		if (badmask == (1u << N) - 1)
			badmask &= ~(1u << (round % N));
		conf_pattern(src, len * N, conf_rand(&rng));
		memset(dst, 0x5A, len * N);
		for (uint32_t k = 0; k < N; k++) {
			si[k] = (struct iovec){src + k * len, len};
			di[k] = (struct iovec){dst + k * len, len};
			x[k] = (struct ferry_xfer){.src = {.iov = (badmask >> k & 1) ? &bad
										     : &si[k],
							   .iovcnt = 1},
						   .dst = {.iov = &di[k], .iovcnt = 1},
						   .len = len};
		}
		uint32_t errors = conf_run(ch, x, N, 0);
		for (uint32_t k = 0; k < N; k++) {
			if (badmask >> k & 1) {
				CONF_ASSERT(
					x[k].status != FERRY_XFER_SUCCESS &&
						x[k].status != FERRY_XFER_NOT_ATTEMPTED,
					"round %u: transfer %u (from a NULL source) completed with "
					"%s, want its own error status",
					round, k, ferry_xfer_status_str(x[k].status));
				CONF_ASSERT(
					all_bytes(dst + k * len, len, 0x5A),
					"round %u: the failing transfer %u wrote its destination",
					round, k);
			} else {
				CONF_ASSERT(
					x[k].status == FERRY_XFER_SUCCESS,
					"round %u: valid transfer %u completed with %s: another "
					"transfer's status landed on it (failing ones: mask 0x%x)",
					round, k, ferry_xfer_status_str(x[k].status), badmask);
				CONF_ASSERT(memcmp(dst + k * len, src + k * len, len) == 0,
					    "round %u: valid transfer %u: bytes differ", round, k);
			}
		}
		CONF_ASSERT(errors == (uint32_t)__builtin_popcount(badmask),
			    "round %u: %u transfers failed, want %d", round, errors,
			    __builtin_popcount(badmask));
	}
	ferry_dma_chan_destroy(ch);
	free(src);
	free(dst);
	conf_close(&c);
}

/* ---- the fence rule ---- */

CONF_TEST(dma, fence_rule)
{
	struct conf_ctx c;
	conf_open(param, &c);
	conf_require(&c, FERRY_DMA_CAP_MEM_TO_MEM | FERRY_DMA_CAP_FENCE,
		     "fenced system-to-system transfers");
	uint64_t len = conf_round(&c, 4096);
	uint8_t *src = conf_alloc(&c, len), *d[3];
	for (int i = 0; i < 3; i++)
		d[i] = conf_alloc(&c, len);
	conf_pattern(src, len, conf_seed(param, SEED + 1));
	struct iovec si = {src, len}, bad = {NULL, len}, di[3];
	for (int i = 0; i < 3; i++)
		di[i] = (struct iovec){d[i], len};
	struct ferry_dma_chan *ch;
	CONF_RC(ferry_dma_chan_create(c.dev, NULL, &ch), 0, "chan_create");
	uint32_t ctx = 0;
#define XF(s, k, f)                                                                                \
	((struct ferry_xfer){.src = {.iov = (s), .iovcnt = 1},                                     \
			     .dst = {.iov = &di[k], .iovcnt = 1},                                  \
			     .len = len,                                                           \
			     .flags = (f)})
	for (uint32_t round = 0; round < 3; round++) {
		struct ferry_xfer x[3];
		/* 1. In flight: {bad, valid, fenced valid} in one batch. The unfenced one runs;
		 *    the fenced one is not attempted. */
		for (int i = 0; i < 3; i++)
			memset(d[i], 0x77, len);
		x[0] = XF(&bad, 0, 0);
		x[1] = XF(&si, 1, 0);
		x[2] = XF(&si, 2, FERRY_XFER_F_FENCE);
		submit_now(ch, x, 3, ctx);
		reap(ch, x, 3, ctx);
		ctx += 3;
		CONF_ASSERT(x[0].status != FERRY_XFER_SUCCESS, "a transfer from NULL succeeded");
		CONF_ASSERT(x[1].status == FERRY_XFER_SUCCESS && memcmp(d[1], src, len) == 0,
			    "an unfenced transfer behind a failing one was held back or failed "
			    "(%s): only fenced transfers depend on earlier ones",
			    ferry_xfer_status_str(x[1].status));
		CONF_ASSERT(x[2].status == FERRY_XFER_NOT_ATTEMPTED && all_bytes(d[2], len, 0x77),
			    "fence rule: a fenced transfer submitted while an earlier failing "
			    "transfer was in flight completed with %s%s, want not-attempted and "
			    "nothing written",
			    ferry_xfer_status_str(x[2].status),
			    all_bytes(d[2], len, 0x77) ? "" : " and wrote its destination");

		/* 2. Completed but not yet polled: the failure still counts. */
		memset(d[0], 0x77, len);
		memset(d[2], 0x77, len);
		x[0] = XF(&bad, 0, 0);
		submit_now(ch, x, 1, ctx);
		conf_sleep_us(50000); /* let it complete; nobody polls */
		x[2] = XF(&si, 2, FERRY_XFER_F_FENCE);
		submit_now(ch, x + 2, 1, ctx + 1);
		/* Reap both: x[0] as ctx, x[2] as ctx+1 (reap indexes from the array it is given). */
		{
			struct ferry_xfer *want[2] = {&x[0], &x[2]};
			uint8_t seen[2] = {0};
			uint32_t got = 0;
			uint64_t end = conf_now_ns() + 5000000000ull;
			while (got < 2) {
				struct ferry_xfer *done[4];
				int m = ferry_dma_poll(ch, done, 4);
				CONF_ASSERT(m >= 0, "poll returned %d", m);
				for (int j = 0; j < m; j++) {
					int i = done[j] == want[0]   ? 0
						: done[j] == want[1] ? 1
								     : -1;
					CONF_ASSERT(i >= 0,
						    "poll returned a transfer not in flight");
					CONF_ASSERT(!seen[i], "a transfer returned twice");
					seen[i] = 1;
				}
				got += (uint32_t)m;
				if (!m) {
					CONF_ASSERT(conf_now_ns() < end,
						    "transfers not back after 5 s");
					conf_sleep_us(50);
				}
			}
		}
		ctx += 2;
		CONF_ASSERT(x[0].status != FERRY_XFER_SUCCESS, "a transfer from NULL succeeded");
		CONF_ASSERT(x[2].status == FERRY_XFER_NOT_ATTEMPTED && all_bytes(d[2], len, 0x77),
			    "fence rule: a fenced transfer submitted after an earlier transfer "
			    "failed but before that failure was polled completed with %s, want "
			    "not-attempted",
			    ferry_xfer_status_str(x[2].status));

		/* 3. Failure already polled before the fenced submit: it does not count. */
		memset(d[0], 0x77, len);
		memset(d[2], 0x77, len);
		x[0] = XF(&bad, 0, 0);
		submit_now(ch, x, 1, ctx);
		reap(ch, x, 1, ctx);
		ctx += 1;
		x[2] = XF(&si, 2, FERRY_XFER_F_FENCE);
		submit_now(ch, x + 2, 1, ctx);
		reap(ch, x + 2, 1, ctx);
		ctx += 1;
		CONF_ASSERT(x[2].status == FERRY_XFER_SUCCESS && memcmp(d[2], src, len) == 0,
			    "fence rule: a fenced transfer submitted after an earlier failure had "
			    "been polled completed with %s, want success (a polled failure no "
			    "longer holds fences)",
			    ferry_xfer_status_str(x[2].status));

		/* 4. Behind valid transfers only: a fence runs. */
		memset(d[1], 0x77, len);
		memset(d[2], 0x77, len);
		x[1] = XF(&si, 1, 0);
		x[2] = XF(&si, 2, FERRY_XFER_F_FENCE);
		submit_now(ch, x + 1, 2, ctx);
		reap(ch, x + 1, 2, ctx);
		ctx += 2;
		CONF_ASSERT(x[1].status == FERRY_XFER_SUCCESS &&
				    x[2].status == FERRY_XFER_SUCCESS &&
				    memcmp(d[2], src, len) == 0,
			    "a fenced transfer behind a valid one: %s / %s, want success",
			    ferry_xfer_status_str(x[1].status), ferry_xfer_status_str(x[2].status));
	}
#undef XF
	ferry_dma_chan_destroy(ch);
	free(src);
	for (int i = 0; i < 3; i++)
		free(d[i]);
	conf_close(&c);
}

/* ---- declared limits ---- */

#define LIMIT_SGES_CAP 4096u
#define LIMIT_XFER_CAP (16ull << 20)
#define LIMIT_CHANNELS_CAP 256u

CONF_TEST(dma, declared_limits_honoured)
{
	struct conf_ctx c;
	conf_open(param, &c);
	conf_require(&c, FERRY_DMA_CAP_MEM_TO_MEM, "system-to-system transfers");
	struct ferry_dma_chan *ch;
	CONF_RC(ferry_dma_chan_create(c.dev, NULL, &ch), 0, "chan_create");
	uint64_t rng = conf_seed(param, SEED + 2);

	/* max_sges segments on each side, cut differently on the two sides. */
	uint32_t sg = c.info.caps & FERRY_DMA_CAP_SG ? c.info.max_sges : 1;
	if (sg > LIMIT_SGES_CAP) {
		CONF_INFO("max_sges %u: checking %u", sg, LIMIT_SGES_CAP);
		sg = LIMIT_SGES_CAP;
	}
	uint64_t unit = c.align;
	if ((uint64_t)sg * unit > c.info.max_xfer)
		unit = c.info.max_xfer / sg / c.align * c.align;
	CONF_ASSERT(unit >= c.align,
		    "max_sges %u segments of the alignment unit %u exceed "
		    "max_xfer %llu: the declared limits contradict each other",
		    sg, c.align, (unsigned long long)c.info.max_xfer);
	uint64_t total = (uint64_t)sg * unit * 2; /* each segment 2 units on average */
	if (total > c.info.max_xfer)
		total = (uint64_t)sg * unit;
	uint64_t rlen = total + ((uint64_t)sg + 1) * c.align;
	uint8_t *sreg = conf_alloc(&c, rlen), *dreg = conf_alloc(&c, rlen);
	struct iovec *siov = calloc(sg, sizeof(*siov)), *diov = calloc(sg, sizeof(*diov));
	uint64_t *su = calloc(sg, sizeof(*su));
	CONF_ASSERT(siov && diov && su, "out of memory");
	for (uint32_t round = 0; round < 2; round++) {
		/* Exactly sg segments per side, of random unit counts (each >= 1); the destination
		 * takes the source's sizes rotated by one, so the cuts differ. A gap of one unit
		 * follows every segment, so that a misplaced byte shows. */
		uint64_t units = total / c.align, left = units;
		for (uint32_t k = 0; k < sg; k++) {
			uint64_t room = left -
					(sg - k - 1); /* leave >= 1 unit for each later one */
			uint64_t avg = room / (sg - k); /* >= 1 */
			uint64_t pick = 1 + conf_rand(&rng) % (2 * avg);
			su[k] = k + 1 == sg ? left : pick < room ? pick : room;
			left -= su[k];
		}
		uint8_t *s = sreg, *d = dreg;
		for (uint32_t k = 0; k < sg; k++) {
			uint64_t dl = su[(k + 1) % sg] * c.align;
			siov[k] = (struct iovec){s, su[k] * c.align};
			conf_pattern(s, su[k] * c.align, conf_rand(&rng));
			s += su[k] * c.align + c.align;
			diov[k] = (struct iovec){d, dl};
			memset(d, 0x3C, dl + c.align);
			d += dl + c.align;
		}
		struct ferry_xfer x = {.src = {.iov = siov, .iovcnt = sg},
				       .dst = {.iov = diov, .iovcnt = sg},
				       .len = total};
		uint32_t e = conf_run(ch, &x, 1, 0);
		CONF_ASSERT(
			e == 0,
			"a transfer of %u segments per side (the declared max_sges), %llu bytes, "
			"completed with %s; a transfer within the declared limits must run",
			sg, (unsigned long long)total, ferry_xfer_status_str(x.status));
		/* Compare logically. */
		uint64_t so = 0, doff = 0;
		uint32_t sk = 0, dk = 0;
		for (uint64_t b = 0; b < total; b++) {
			while (so == siov[sk].iov_len) {
				sk++;
				so = 0;
			}
			while (doff == diov[dk].iov_len) {
				dk++;
				doff = 0;
			}
			uint8_t want = ((uint8_t *)siov[sk].iov_base)[so++];
			uint8_t got = ((uint8_t *)diov[dk].iov_base)[doff++];
			CONF_ASSERT(got == want,
				    "max_sges transfer: byte %llu differs (got 0x%02x, want 0x%02x)",
				    (unsigned long long)b, got, want);
		}
		for (uint32_t k = 0; k < sg; k++)
			CONF_ASSERT(((uint8_t *)diov[k].iov_base)[diov[k].iov_len] == 0x3C,
				    "max_sges transfer wrote into the gap after segment %u", k);
	}
	free(su);
	free(siov);
	free(diov);
	free(sreg);
	free(dreg);

	/* One transfer of max_xfer bytes (capped), at an address offset of one alignment unit. */
	uint64_t big = c.info.max_xfer / c.align * c.align;
	if (big > LIMIT_XFER_CAP) {
		CONF_INFO("max_xfer %llu: checking %llu", (unsigned long long)c.info.max_xfer,
			  (unsigned long long)LIMIT_XFER_CAP);
		big = LIMIT_XFER_CAP;
	}
	uint8_t *bs = conf_alloc(&c, big + c.align), *bd = conf_alloc(&c, big + 2 * c.align);
	conf_pattern(bs + c.align, big, conf_rand(&rng));
	memset(bd, 0x4D, big + 2 * c.align);
	struct iovec bsi = {bs + c.align, big}, bdi = {bd + c.align, big};
	struct ferry_xfer bx = {.src = {.iov = &bsi, .iovcnt = 1},
				.dst = {.iov = &bdi, .iovcnt = 1},
				.len = big};
	CONF_ASSERT(conf_run(ch, &bx, 1, 0) == 0,
		    "a transfer of %llu bytes (max_xfer) at alignment-unit offsets completed with "
		    "%s",
		    (unsigned long long)big, ferry_xfer_status_str(bx.status));
	CONF_ASSERT(memcmp(bd + c.align, bs + c.align, big) == 0,
		    "max_xfer transfer: bytes differ");
	CONF_ASSERT(all_bytes(bd, c.align, 0x4D) && all_bytes(bd + c.align + big, c.align, 0x4D),
		    "max_xfer transfer wrote outside its destination");
	free(bs);
	free(bd);
	ferry_dma_chan_destroy(ch);

	/* max_channels channels open at once (capped); the next is refused with -EBUSY. */
	uint32_t nch = c.info.max_channels;
	if (nch && nch <= LIMIT_CHANNELS_CAP) {
		struct ferry_dma_chan **chs = calloc(nch + 1, sizeof(*chs));
		CONF_ASSERT(chs, "out of memory");
		struct ferry_dma_chan_opts o = {.size = sizeof(o), .ring_size = 4};
		for (uint32_t k = 0; k < nch; k++) {
			int rc = ferry_dma_chan_create(c.dev, &o, &chs[k]);
			CONF_ASSERT(
				rc == 0,
				"channel %u of the declared max_channels %u refused: %d (%s; %s)",
				k + 1, nch, rc, ferry_strerror(rc), conf_last_error());
		}
		int rc = ferry_dma_chan_create(c.dev, &o, &chs[nch]);
		CONF_ASSERT(rc == -EBUSY,
			    "channel %u past max_channels %u: got %d (%s), want -EBUSY", nch + 1,
			    nch, rc, ferry_strerror(rc));
		/* Each one works: one small copy on the last. */
		uint8_t a[64], b2[64];
		conf_pattern(a, sizeof(a), 9);
		memset(b2, 0, sizeof(b2));
		uint64_t l = conf_round(&c, 64) <= 64 ? conf_round(&c, 64) : 0;
		if (l) {
			struct iovec ai = {a, l}, bi = {b2, l};
			struct ferry_xfer sx = {.src = {.iov = &ai, .iovcnt = 1},
						.dst = {.iov = &bi, .iovcnt = 1},
						.len = l};
			CONF_ASSERT(conf_run(chs[nch - 1], &sx, 1, 0) == 0 && !memcmp(a, b2, l),
				    "a copy on the last of max_channels channels failed");
		}
		for (uint32_t k = 0; k < nch; k++)
			ferry_dma_chan_destroy(chs[k]);
		free(chs);
		CONF_RC(ferry_dma_chan_create(c.dev, &o, &ch), 0,
			"chan_create after closing max_channels channels");
		ferry_dma_chan_destroy(ch);
	} else {
		CONF_INFO("max_channels %u: channel limit not checked (0 or above %u)", nch,
			  LIMIT_CHANNELS_CAP);
	}
	conf_close(&c);
}
