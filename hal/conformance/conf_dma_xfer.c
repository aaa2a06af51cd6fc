/*
 * Conformance, DMA transfers between system buffers: submit-time validation (nothing reaches
 * the engine), byte-exact copies of several sizes with seeded random scatter-gather, a full
 * ring (partial submits, never more in flight than the ring), FENCE ordering, a bad address
 * failing only its own transfer (and a fence behind it not attempted) with consistent channel
 * counters, and destroying a channel with transfers in flight.
 */
#include <stdlib.h>
#include "conf.h"

#define SEED 0xC0FFEE5EEDull

/* ---- submit validation ---- */

struct vbuf {
	uint64_t len;
	uint8_t *src, *dst;
	struct iovec si, di;
};

static void vbuf_init(struct conf_ctx *c, struct vbuf *v, uint64_t len)
{
	v->len = len;
	v->src = conf_alloc(c, len);
	v->dst = conf_alloc(c, len);
	conf_pattern(v->src, len, SEED);
	memset(v->dst, 0xA5, len);
	v->si = (struct iovec){v->src, len};
	v->di = (struct iovec){v->dst, len};
}

static struct ferry_xfer vbuf_xfer(struct vbuf *v)
{
	return (struct ferry_xfer){.src = {.iov = &v->si, .iovcnt = 1},
				   .dst = {.iov = &v->di, .iovcnt = 1},
				   .len = v->len};
}

/* @p bad alone, and behind a valid transfer in one batch: -EINVAL, nothing accepted. */
static void refuse(struct ferry_dma_chan *ch, struct ferry_xfer *good, struct ferry_xfer *bad,
		   const char *what)
{
	struct ferry_xfer *alone[1] = {bad}, *pair[2] = {good, bad};
	int rc = ferry_dma_submit(ch, alone, 1);
	CONF_ASSERT(rc == -EINVAL, "submit of a transfer with %s: got %d (%s), want -EINVAL", what,
		    rc, ferry_strerror(rc));
	rc = ferry_dma_submit(ch, pair, 2);
	CONF_ASSERT(rc == -EINVAL,
		    "batch {valid, %s}: got %d (%s), want -EINVAL with nothing submitted", what, rc,
		    ferry_strerror(rc));
}

CONF_TEST(dma, submit_validation)
{
	struct conf_ctx c;
	conf_open(param, &c);
	struct ferry_dma_chan *ch;
	CONF_RC(ferry_dma_chan_create(c.dev, NULL, &ch), 0, "chan_create");
	uint64_t len = conf_round(&c, 4096);
	struct vbuf v;
	vbuf_init(&c, &v, len);
	struct ferry_xfer good = vbuf_xfer(&v), bad;

	bad = good;
	bad.len = 0;
	refuse(ch, &good, &bad, "len 0");
	bad = good;
	bad.len = len + c.align;
	refuse(ch, &good, &bad, "len beyond both sides");
	struct iovec short_src = {v.src, len - c.align}, short_dst = {v.dst, len - c.align};
	bad = good;
	bad.src.iov = &short_src;
	refuse(ch, &good, &bad, "len beyond the source");
	bad = good;
	bad.dst.iov = &short_dst;
	refuse(ch, &good, &bad, "len beyond the destination");
	bad = good;
	bad.flags = 1u << 31;
	refuse(ch, &good, &bad, "an unknown flag");
	bad = good;
	bad.src.iov = NULL;
	refuse(ch, &good, &bad, "a NULL source iovec array");
	bad = good;
	bad.dst.iovcnt = 0;
	refuse(ch, &good, &bad, "zero destination segments");
	if (c.info.max_xfer < UINT64_MAX) {
		/* Never dereferenced: the length alone makes it invalid. */
		struct iovec huge_s = {v.src, (size_t)c.info.max_xfer + c.align},
			     huge_d = {v.dst, (size_t)c.info.max_xfer + c.align};
		bad = good;
		bad.src.iov = &huge_s;
		bad.dst.iov = &huge_d;
		bad.len = c.info.max_xfer + c.align;
		refuse(ch, &good, &bad, "len beyond max_xfer");
	}
	if (c.info.max_sges < 65536) {
		/* max_sges + 1 segments of one unit each, on either side. */
		uint32_t n = c.info.max_sges + 1;
		uint64_t tl = (uint64_t)n * c.align;
		uint8_t *sb = conf_alloc(&c, tl), *db = conf_alloc(&c, tl);
		struct iovec *many = calloc(n, sizeof(*many)), one_s = {sb, tl}, one_d = {db, tl};
		CONF_ASSERT(many != NULL, "out of memory");
		for (uint32_t k = 0; k < n; k++)
			many[k] = (struct iovec){sb + (uint64_t)k * c.align, c.align};
		bad = (struct ferry_xfer){.src = {.iov = many, .iovcnt = n},
					  .dst = {.iov = &one_d, .iovcnt = 1},
					  .len = tl};
		if (tl <= c.info.max_xfer)
			refuse(ch, &good, &bad, "max_sges + 1 source segments");
		for (uint32_t k = 0; k < n; k++)
			many[k] = (struct iovec){db + (uint64_t)k * c.align, c.align};
		bad = (struct ferry_xfer){.src = {.iov = &one_s, .iovcnt = 1},
					  .dst = {.iov = many, .iovcnt = n},
					  .len = tl};
		if (tl <= c.info.max_xfer)
			refuse(ch, &good, &bad, "max_sges + 1 destination segments");
		free(many);
		free(sb);
		free(db);
	}
	if (c.align > 1) {
		struct iovec mis = {v.src + 1, len - c.align};
		bad = good;
		bad.src.iov = &mis;
		bad.len = len - c.align;
		refuse(ch, &good, &bad, "a misaligned source address");
	}
	struct ferry_xfer *with_null[2] = {&good, NULL};
	CONF_RC(ferry_dma_submit(ch, with_null, 2), -EINVAL, "batch {valid, NULL}");
	CONF_RC(ferry_dma_submit(ch, NULL, 1), -EINVAL, "NULL transfer array");
	struct ferry_xfer *gp[1] = {&good};
	CONF_RC(ferry_dma_submit(NULL, gp, 1), -EINVAL, "submit on a NULL channel");
	CONF_RC(ferry_dma_submit(ch, gp, 0), 0, "submit of 0 transfers");

	/* Nothing was submitted: no completion, no counter moved, no byte written. */
	CONF_ASSERT(conf_quiet_poll(ch, 20) == 0, "a refused batch produced completions");
	struct ferry_dma_stats st;
	CONF_RC(ferry_dma_get_stats(ch, &st), 0, "get_stats");
	CONF_ASSERT(st.submitted == 0 && st.completed == 0,
		    "refused batches counted: submitted %llu completed %llu",
		    (unsigned long long)st.submitted, (unsigned long long)st.completed);
	for (uint64_t k = 0; k < len; k++)
		CONF_ASSERT(v.dst[k] == 0xA5, "a refused transfer wrote byte %llu",
			    (unsigned long long)k);

	/* The valid transfer on its own still works. */
	if (c.info.caps & FERRY_DMA_CAP_MEM_TO_MEM) {
		CONF_ASSERT(conf_run(ch, &good, 1, 0) == 0, "valid transfer failed: %s",
			    ferry_xfer_status_str(good.status));
		CONF_ASSERT(memcmp(v.src, v.dst, len) == 0, "valid transfer: bytes differ");
	}
	ferry_dma_chan_destroy(ch);
	free(v.src);
	free(v.dst);
	conf_close(&c);
}

/* ---- byte-exact copies, random segmentation ---- */

#define GUARD 0x5Au
#define ROUNDS 3u
#define MAXSEG 16u

struct sgcase {
	uint64_t len;                 /* bytes moved */
	uint64_t dst_total;           /* destination described (>= len) */
	uint64_t sreg_len, dreg_len;  /* regions holding the segments and gaps */
	uint8_t *sreg, *dreg, *model; /* model: what dreg must hold afterwards */
	struct iovec siov[MAXSEG], diov[MAXSEG];
	uint32_t sc, dc;
};

static void sg_setup(struct conf_ctx *c, struct sgcase *s, uint64_t len, uint64_t *rng)
{
	uint32_t segs = conf_max_segs(c, MAXSEG);
	s->len = len;
	s->dst_total = len + (conf_rand(rng) % 3) * c->align; /* sometimes longer than len */
	s->sreg_len = conf_region_len(c, len, segs);
	s->dreg_len = conf_region_len(c, s->dst_total, segs);
	s->sreg = conf_alloc(c, s->sreg_len);
	s->dreg = conf_alloc(c, s->dreg_len);
	s->model = malloc(s->dreg_len);
	CONF_ASSERT(s->model != NULL, "out of memory");
	conf_pattern(s->sreg, s->sreg_len, conf_rand(rng));
	memset(s->dreg, GUARD, s->dreg_len);
	s->sc = conf_scatter(c, rng, s->sreg, len, segs, s->siov);
	s->dc = conf_scatter(c, rng, s->dreg, s->dst_total, segs, s->diov);
	/* The model: the first len bytes of the source, in segment order, into the
	 * destination's segments in their order; everything else keeps the guard. */
	memcpy(s->model, s->dreg, s->dreg_len);
	uint64_t left = len;
	uint32_t si = 0, di = 0;
	size_t so = 0, dof = 0;
	while (left) {
		size_t n = s->siov[si].iov_len - so;
		if (s->diov[di].iov_len - dof < n)
			n = s->diov[di].iov_len - dof;
		if (left < n)
			n = (size_t)left;
		memcpy(s->model + ((uint8_t *)s->diov[di].iov_base - s->dreg) + dof,
		       (uint8_t *)s->siov[si].iov_base + so, n);
		left -= n;
		so += n;
		dof += n;
		if (so == s->siov[si].iov_len) {
			si++;
			so = 0;
		}
		if (dof == s->diov[di].iov_len) {
			di++;
			dof = 0;
		}
	}
}

static void sg_free(struct sgcase *s)
{
	free(s->sreg);
	free(s->dreg);
	free(s->model);
}

CONF_TEST(dma, copy_sizes_random_sg)
{
	struct conf_ctx c;
	conf_open(param, &c);
	conf_require(&c, FERRY_DMA_CAP_MEM_TO_MEM, "system-to-system transfers");
	static const uint64_t sizes[] = {1, 3, 511, 4096, 4097, 65536 + 17, (1u << 20) + 5};
	enum {
		NS = sizeof(sizes) / sizeof(sizes[0])
	};
	struct sgcase cs[NS * ROUNDS];
	struct ferry_xfer x[NS * ROUNDS];
	uint64_t rng = SEED, bytes = 0;
	uint32_t n = 0;
	for (uint32_t r = 0; r < ROUNDS; r++) {
		for (uint32_t k = 0; k < NS; k++) {
			uint64_t len = conf_round(&c, sizes[k]);
			if (len > c.info.max_xfer)
				continue;
			sg_setup(&c, &cs[n], len, &rng);
			x[n] = (struct ferry_xfer){.src = {.iov = cs[n].siov, .iovcnt = cs[n].sc},
						   .dst = {.iov = cs[n].diov, .iovcnt = cs[n].dc},
						   .len = len};
			bytes += len;
			n++;
		}
	}
	struct ferry_dma_chan *ch;
	CONF_RC(ferry_dma_chan_create(c.dev, NULL, &ch), 0, "chan_create");
	uint32_t errors = conf_run(ch, x, n, 0);
	for (uint32_t k = 0; k < n; k++) {
		CONF_ASSERT(x[k].status == FERRY_XFER_SUCCESS,
			    "transfer %u (%llu bytes, %u+%u segments, seed 0x%llx): %s", k,
			    (unsigned long long)x[k].len, cs[k].sc, cs[k].dc,
			    (unsigned long long)SEED, ferry_xfer_status_str(x[k].status));
		for (uint64_t b = 0; b < cs[k].dreg_len; b++)
			CONF_ASSERT(cs[k].dreg[b] == cs[k].model[b],
				    "transfer %u (%llu bytes, %u+%u segments, seed 0x%llx): "
				    "destination region byte %llu is 0x%02x, want 0x%02x%s",
				    k, (unsigned long long)x[k].len, cs[k].sc, cs[k].dc,
				    (unsigned long long)SEED, (unsigned long long)b, cs[k].dreg[b],
				    cs[k].model[b],
				    cs[k].model[b] == GUARD ? " (outside the transfer)" : "");
	}
	struct ferry_dma_stats st;
	CONF_RC(ferry_dma_get_stats(ch, &st), 0, "get_stats");
	CONF_ASSERT(errors == 0 && st.submitted == n && st.completed == n && st.errors == 0 &&
			    st.bytes == bytes,
		    "counters submitted %llu completed %llu errors %llu bytes %llu, want %u %u 0 "
		    "%llu",
		    (unsigned long long)st.submitted, (unsigned long long)st.completed,
		    (unsigned long long)st.errors, (unsigned long long)st.bytes, n, n,
		    (unsigned long long)bytes);
	ferry_dma_chan_destroy(ch);
	for (uint32_t k = 0; k < n; k++)
		sg_free(&cs[k]);
	conf_close(&c);
}

/* ---- ring full ---- */

CONF_TEST(dma, ring_full_partial_submit)
{
	struct conf_ctx c;
	conf_open(param, &c);
	conf_require(&c, FERRY_DMA_CAP_MEM_TO_MEM, "system-to-system transfers");
	uint32_t ring = c.info.max_ring < 8 ? c.info.max_ring : 8;
	uint32_t n = 4 * ring + 3;
	uint64_t len = conf_round(&c, 4096);
	uint8_t *src = conf_alloc(&c, len * n), *dst = conf_alloc(&c, len * n);
	conf_pattern(src, len * n, SEED + 1);
	struct iovec si[n], di[n];
	struct ferry_xfer x[n], *ptr[n];
	for (uint32_t k = 0; k < n; k++) {
		si[k] = (struct iovec){src + k * len, len};
		di[k] = (struct iovec){dst + k * len, len};
		x[k] = (struct ferry_xfer){.src = {.iov = &si[k], .iovcnt = 1},
					   .dst = {.iov = &di[k], .iovcnt = 1},
					   .len = len};
		ptr[k] = &x[k];
	}
	struct ferry_dma_chan_opts o = {.size = sizeof(o), .ring_size = ring};
	struct ferry_dma_chan *ch;
	CONF_RC(ferry_dma_chan_create(c.dev, &o, &ch), 0, "chan_create with a small ring");

	/* Offer everything at once: the ring takes at most `ring`. */
	int rc = ferry_dma_submit(ch, ptr, n);
	CONF_ASSERT(rc >= 1 && (uint32_t)rc <= ring,
		    "submit of %u transfers on an empty ring of %u accepted %d", n, ring, rc);
	CONF_INFO("ring %u: first submit of %u accepted %d", ring, n, rc);
	/* Then the rest, through conf_run (which keeps checking the in-flight bound). */
	uint32_t first = (uint32_t)rc;
	struct ferry_xfer *done[64];
	uint32_t got = 0;
	uint64_t end = conf_now_ns() + 5000000000ull;
	while (got < first) {
		int m = ferry_dma_poll(ch, done, 64);
		CONF_ASSERT(m >= 0, "poll: %d", m);
		for (int j = 0; j < m; j++)
			CONF_ASSERT(done[j] >= &x[0] && done[j] < &x[first],
				    "poll returned a transfer that was not accepted");
		got += (uint32_t)m;
		CONF_ASSERT(conf_now_ns() < end, "accepted transfers not completed after 5 s");
		if (!m)
			conf_sleep_us(20);
	}
	CONF_ASSERT(conf_run(ch, x + first, n - first, ring) == 0, "a transfer failed");
	for (uint32_t k = 0; k < first; k++)
		CONF_ASSERT(x[k].status == FERRY_XFER_SUCCESS, "transfer %u: %s", k,
			    ferry_xfer_status_str(x[k].status));
	CONF_ASSERT(memcmp(src, dst, len * n) == 0, "bytes differ after a ring-full run");
	struct ferry_dma_stats st;
	CONF_RC(ferry_dma_get_stats(ch, &st), 0, "get_stats");
	CONF_ASSERT(st.submitted == n && st.completed == n,
		    "counters: submitted %llu completed %llu, want %u",
		    (unsigned long long)st.submitted, (unsigned long long)st.completed, n);
	ferry_dma_chan_destroy(ch);
	free(src);
	free(dst);
	conf_close(&c);
}

/* ---- fence ---- */

CONF_TEST(dma, fence_orders_dependent_transfers)
{
	struct conf_ctx c;
	conf_open(param, &c);
	conf_require(&c, FERRY_DMA_CAP_MEM_TO_MEM | FERRY_DMA_CAP_FENCE,
		     "fenced system-to-system transfers");
	/* A -> B, then fenced B -> C, then fenced C -> D: D must hold A's new bytes. A large
	 * unrelated transfer goes first so the engine has something to overlap with. */
	uint64_t len = conf_round(&c, 65536 + 512);
	if (len > c.info.max_xfer)
		len = c.info.max_xfer / c.align * c.align;
	uint64_t big = c.info.max_xfer < (4u << 20) ? c.info.max_xfer / c.align * c.align
						    : (4u << 20);
	uint8_t *a = conf_alloc(&c, len), *b = conf_alloc(&c, len), *cc = conf_alloc(&c, len),
		*d = conf_alloc(&c, len), *bs = conf_alloc(&c, big), *bd = conf_alloc(&c, big);
	struct ferry_dma_chan *ch;
	CONF_RC(ferry_dma_chan_create(c.dev, NULL, &ch), 0, "chan_create");
	uint64_t rng = SEED + 2;
	uint32_t segs = conf_max_segs(&c, 8);
	for (uint32_t round = 0; round < 8; round++) {
		conf_pattern(a, len, conf_rand(&rng));
		memset(b, 0x11, len);
		memset(cc, 0x22, len);
		memset(d, 0x33, len);
		/* The middle buffer is split differently on each side. */
		struct iovec ai = {a, len}, di = {d, len}, ci = {cc, len}, bsi = {bs, big},
			     bdi = {bd, big};
		struct iovec bw[8], br[8];
		uint32_t nbw = 1, nbr = 1;
		bw[0] = br[0] = (struct iovec){b, len};
		uint32_t units = (uint32_t)(len / c.align);
		if (segs > 1 && units > 1) {
			uint32_t cut = 1 + round % (units - 1);
			bw[0].iov_len = (size_t)cut * c.align;
			bw[1] = (struct iovec){b + bw[0].iov_len, len - bw[0].iov_len};
			nbw = 2;
		}
		struct ferry_xfer x[4] = {
			{.src = {.iov = &bsi, .iovcnt = 1},
			 .dst = {.iov = &bdi, .iovcnt = 1},
			 .len = big},
			{.src = {.iov = &ai, .iovcnt = 1},
			 .dst = {.iov = bw, .iovcnt = nbw},
			 .len = len},
			{.src = {.iov = br, .iovcnt = nbr},
			 .dst = {.iov = &ci, .iovcnt = 1},
			 .len = len,
			 .flags = FERRY_XFER_F_FENCE},
			{.src = {.iov = &ci, .iovcnt = 1},
			 .dst = {.iov = &di, .iovcnt = 1},
			 .len = len,
			 .flags = FERRY_XFER_F_FENCE},
		};
		CONF_ASSERT(conf_run(ch, x, 4, 0) == 0, "round %u: a transfer failed", round);
		CONF_ASSERT(memcmp(b, a, len) == 0, "round %u: B does not hold A", round);
		CONF_ASSERT(memcmp(cc, a, len) == 0,
			    "round %u: the fenced B->C read B before A->B completed", round);
		CONF_ASSERT(memcmp(d, a, len) == 0,
			    "round %u: the fenced C->D read C before B->C completed", round);
	}
	ferry_dma_chan_destroy(ch);
	free(a);
	free(b);
	free(cc);
	free(d);
	free(bs);
	free(bd);
	conf_close(&c);
}

/* ---- destroy with transfers in flight ---- */

CONF_TEST(dma, destroy_with_transfers_in_flight)
{
	struct conf_ctx c;
	conf_open(param, &c);
	conf_require(&c, FERRY_DMA_CAP_MEM_TO_MEM, "system-to-system transfers");
	uint32_t n = c.info.max_ring < 32 ? c.info.max_ring : 32;
	uint64_t len = c.info.max_xfer < (256u << 10) ? c.info.max_xfer / c.align * c.align
						      : (256u << 10);
	uint8_t *src = conf_alloc(&c, len * n), *dst = conf_alloc(&c, len * n);
	conf_pattern(src, len * n, SEED + 3);
	struct iovec si[n], di[n];
	struct ferry_xfer x[n], *ptr[n];
	struct ferry_dma_chan_opts o = {.size = sizeof(o), .ring_size = n};
	for (uint32_t round = 0; round < 3; round++) {
		for (uint32_t k = 0; k < n; k++) {
			si[k] = (struct iovec){src + k * len, len};
			di[k] = (struct iovec){dst + k * len, len};
			x[k] = (struct ferry_xfer){.src = {.iov = &si[k], .iovcnt = 1},
						   .dst = {.iov = &di[k], .iovcnt = 1},
						   .len = len};
			ptr[k] = &x[k];
		}
		struct ferry_dma_chan *ch;
		CONF_RC(ferry_dma_chan_create(c.dev, &o, &ch), 0, "chan_create");
		int rc = ferry_dma_submit(ch, ptr, n);
		CONF_ASSERT(rc >= 1, "submit: %d (%s)", rc, ferry_strerror(rc));
		ferry_dma_chan_destroy(ch); /* without polling */
		/* From here on the engine must not touch these buffers. */
		memset(dst, 0xEE, len * n);
		memset(x, 0xEE, sizeof(x));
		conf_sleep_us(20000);
		for (uint64_t b = 0; b < len * n; b++)
			CONF_ASSERT(dst[b] == 0xEE,
				    "round %u: byte %llu written after chan_destroy returned",
				    round, (unsigned long long)b);
		for (size_t b = 0; b < sizeof(x); b++)
			CONF_ASSERT(((uint8_t *)x)[b] == 0xEE,
				    "round %u: a transfer descriptor written after chan_destroy",
				    round);
	}
	/* Later channels work. */
	struct ferry_dma_chan *ch;
	CONF_RC(ferry_dma_chan_create(c.dev, &o, &ch), 0, "chan_create after destroys");
	for (uint32_t k = 0; k < n; k++) {
		si[k] = (struct iovec){src + k * len, len};
		di[k] = (struct iovec){dst + k * len, len};
		x[k] = (struct ferry_xfer){.src = {.iov = &si[k], .iovcnt = 1},
					   .dst = {.iov = &di[k], .iovcnt = 1},
					   .len = len};
	}
	CONF_ASSERT(conf_run(ch, x, n, n) == 0, "a transfer failed on a later channel");
	CONF_ASSERT(memcmp(src, dst, len * n) == 0, "later channel: bytes differ");
	ferry_dma_chan_destroy(ch);
	free(src);
	free(dst);
	conf_close(&c);
}

/* ---- a bad address fails its transfer only; a fence behind it is not attempted ---- */

CONF_TEST(dma, bad_address_fence_and_counters)
{
	struct conf_ctx c;
	conf_open(param, &c);
	struct ferry_memdomain *doms[4];
	uint32_t nd = conf_pcie_domains(&c, doms, 4);
	int m2m = !!(c.info.caps & FERRY_DMA_CAP_MEM_TO_MEM);
	int fence = m2m && (c.info.caps & FERRY_DMA_CAP_FENCE);
	uint64_t len = conf_round(&c, 512);
	/* Bad sources: a NULL system pointer; an IOVA no function maps (last 64-bit page). */
	struct iovec bad[2] = {{NULL, len}, {CONF_BAD_IOVA, len}};
	struct ferry_memdomain *bad_dom[2] = {NULL, nd ? doms[0] : NULL};
	int use[2] = {m2m, nd && (c.info.caps & FERRY_DMA_CAP_DEV_TO_MEM)};
	if (!use[0] && !use[1])
		CONF_SKIP("no MEM_TO_MEM, and no PCIe domain with DEV_TO_MEM");
	uint8_t *src = conf_alloc(&c, len), *d0 = conf_alloc(&c, len), *d1 = conf_alloc(&c, len),
		*d2 = conf_alloc(&c, len);
	conf_pattern(src, len, 77);
	struct iovec si = {src, len}, i0 = {d0, len}, i1 = {d1, len}, i2 = {d2, len};
	struct ferry_dma_chan *ch;
	CONF_RC(ferry_dma_chan_create(c.dev, NULL, &ch), 0, "chan_create");
	uint32_t n = 0, errors = 0;
	uint64_t bytes = 0;
	for (int k = 0; k < 2; k++) {
		if (!use[k])
			continue;
		const char *what = k ? "an unmapped IOVA" : "a NULL system address";
		memset(d0, 0x66, len);
		memset(d1, 0x66, len);
		struct ferry_xfer x[2] = {
			{.src = {.domain = bad_dom[k], .iov = &bad[k], .iovcnt = 1},
			 .dst = {.iov = &i0, .iovcnt = 1},
			 .len = len},
			{.src = {.iov = &si, .iovcnt = 1},
			 .dst = {.iov = &i1, .iovcnt = 1},
			 .len = len,
			 .flags = FERRY_XFER_F_FENCE},
		};
		uint32_t nx = fence ? 2 : 1;
		errors += conf_run(ch, x, nx, 0);
		n += nx;
		CONF_ASSERT(x[0].status != FERRY_XFER_SUCCESS, "a transfer from %s succeeded",
			    what);
		CONF_INFO("transfer from %s: %s", what, ferry_xfer_status_str(x[0].status));
		for (uint64_t b = 0; b < len; b++)
			CONF_ASSERT(d0[b] == 0x66,
				    "the transfer from %s wrote destination byte %llu", what,
				    (unsigned long long)b);
		if (!fence)
			continue;
		CONF_ASSERT(x[1].status == FERRY_XFER_NOT_ATTEMPTED,
			    "a fenced transfer behind the one from %s completed with %s, want "
			    "not-attempted",
			    what, ferry_xfer_status_str(x[1].status));
		for (uint64_t b = 0; b < len; b++)
			CONF_ASSERT(d1[b] == 0x66,
				    "the not-attempted transfer wrote destination byte %llu",
				    (unsigned long long)b);
	}
	/* The channel goes on: a plain transfer after the failures succeeds. */
	if (m2m) {
		struct ferry_xfer ok = {.src = {.iov = &si, .iovcnt = 1},
					.dst = {.iov = &i2, .iovcnt = 1},
					.len = len};
		CONF_ASSERT(conf_run(ch, &ok, 1, 0) == 0, "transfer after the failures: %s",
			    ferry_xfer_status_str(ok.status));
		CONF_ASSERT(memcmp(d2, src, len) == 0, "transfer after the failures: bytes differ");
		n++;
		bytes += len;
	}
	struct ferry_dma_stats st;
	CONF_RC(ferry_dma_get_stats(ch, &st), 0, "get_stats");
	CONF_RC(ferry_dma_get_stats(ch, NULL), -EINVAL, "get_stats with NULL out");
	CONF_RC(ferry_dma_get_stats(NULL, &st), -EINVAL, "get_stats of a NULL channel");
	CONF_ASSERT(st.submitted == n && st.completed == n && st.errors == errors &&
			    st.bytes == bytes,
		    "counters submitted %llu completed %llu errors %llu bytes %llu, want %u %u %u "
		    "%llu",
		    (unsigned long long)st.submitted, (unsigned long long)st.completed,
		    (unsigned long long)st.errors, (unsigned long long)st.bytes, n, n, errors,
		    (unsigned long long)bytes);
	ferry_dma_chan_destroy(ch);
	free(src);
	free(d0);
	free(d1);
	free(d2);
	conf_close(&c);
}
