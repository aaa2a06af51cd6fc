/*
 * Conformance, the PCIe function domains a device creates ("<device>.<function>", type
 * FERRY_MEMDOMAIN_PCIE): the asynchronous contract of pull/push/memzero (callback exactly once
 * iff 0, the wrapper's -EINVAL checks, nothing moved on a refused or failed call), round trips
 * through host memory, and DMA transfers to and from it (with the backend's hooks). A DMA
 * transfer from an unmapped IOVA is checked in conf_dma_xfer.c.
 */
#include <stdlib.h>
#include "conf.h"

#define MAX_DOMS 16u

static void open_with_domains(const struct conf_param *p, struct conf_ctx *c,
			      struct ferry_memdomain **d, uint32_t *n)
{
	conf_open(p, c);
	*n = conf_pcie_domains(c, d, MAX_DOMS);
	if (*n == 0) {
		conf_close(c);
		CONF_SKIP("the device creates no PCIe function domains");
	}
}

static const char *dn(struct ferry_memdomain *d)
{
	return ferry_memdomain_get_name(d);
}

/* rc == 0: exactly one callback; rc < 0: none, ever. Returns the callback status (or rc). */
static int exactly_once(struct ferry_memdomain *d, int rc, struct conf_cb *cb, const char *op)
{
	if (rc == 0) {
		conf_cb_wait(d, cb, 20);
		CONF_ASSERT(cb->calls == 1, "%s %s returned 0 but its callback ran %d times", op,
			    dn(d), cb->calls);
		return cb->status;
	}
	uint64_t end = conf_now_ns() + 20000000ull;
	while (conf_now_ns() < end) {
		CONF_ASSERT(ferry_memdomain_poll(d, 16) >= 0, "poll of %s failed", dn(d));
		conf_sleep_us(200);
	}
	CONF_ASSERT(cb->calls == 0, "%s %s returned %d (%s) but its callback ran %d times", op,
		    dn(d), rc, ferry_strerror(rc), cb->calls);
	return rc;
}

CONF_TEST(memdomain, pcie_contract)
{
	struct conf_ctx c;
	struct ferry_memdomain *doms[MAX_DOMS];
	uint32_t nd;
	open_with_domains(param, &c, doms, &nd);
	enum {
		LEN = 512
	};
	uint8_t local[LEN], sentinel[LEN];
	memset(sentinel, 0x77, sizeof(sentinel));
	for (uint32_t k = 0; k < nd; k++) {
		struct ferry_memdomain *d = doms[k];
		CONF_ASSERT(ferry_memdomain_get_type(d) == FERRY_MEMDOMAIN_PCIE, "type of %s",
			    dn(d));
		CONF_ASSERT(ferry_memdomain_lookup(dn(d)) == d, "lookup('%s') finds another domain",
			    dn(d));

		/* The wrapper's checks: nothing reaches the domain, no callback. */
		struct conf_cb cb = {0};
		struct iovec r = {(void *)(uintptr_t)0x1000, LEN}, l = {local, LEN / 2};
		struct ferry_mem rm = {.domain = d, .iov = &r, .iovcnt = 1};
		struct ferry_mem lm = {.iov = &l, .iovcnt = 1};
		CONF_RC(ferry_memdomain_pull(&rm, &lm, conf_cb_fn, &cb), -EINVAL,
			"pull with lengths 512 vs 256");
		CONF_RC(ferry_memdomain_push(&rm, &lm, conf_cb_fn, &cb), -EINVAL,
			"push with lengths 512 vs 256");
		l.iov_len = LEN;
		CONF_RC(ferry_memdomain_pull(&rm, &lm, NULL, &cb), -EINVAL,
			"pull with a NULL callback");
		CONF_RC(ferry_memdomain_memzero(&rm, NULL, &cb), -EINVAL,
			"memzero with a NULL callback");
		struct ferry_mem empty = {.domain = d, .iov = &r, .iovcnt = 0};
		CONF_RC(ferry_memdomain_pull(&empty, &lm, conf_cb_fn, &cb), -EINVAL,
			"pull of zero segments");
		CONF_RC(ferry_memdomain_memzero(&empty, conf_cb_fn, &cb), -EINVAL,
			"memzero of zero segments");
		struct ferry_mem remote_local = {.domain = d, .iov = &l, .iovcnt = 1};
		CONF_RC(ferry_memdomain_pull(&rm, &remote_local, conf_cb_fn, &cb), -EINVAL,
			"pull whose local side is not in the system domain");
		exactly_once(d, -EINVAL, &cb, "refused calls on");

		/* An IOVA no function maps: refused now, or completed once with an error;
		 * either way not one local byte changes. -ENOTSUP (no such op) also qualifies. */
		struct iovec bad = {CONF_BAD_IOVA, LEN};
		struct ferry_mem bm = {.domain = d, .iov = &bad, .iovcnt = 1};
		memcpy(local, sentinel, LEN);
		cb = (struct conf_cb){0};
		int st = exactly_once(d, ferry_memdomain_pull(&bm, &lm, conf_cb_fn, &cb), &cb,
				      "pull from an unmapped IOVA of");
		CONF_ASSERT(st < 0, "pull from an unmapped IOVA of %s succeeded", dn(d));
		CONF_ASSERT(memcmp(local, sentinel, LEN) == 0,
			    "a failed pull from %s wrote local memory", dn(d));
		cb = (struct conf_cb){0};
		st = exactly_once(d, ferry_memdomain_push(&bm, &lm, conf_cb_fn, &cb), &cb,
				  "push to an unmapped IOVA of");
		CONF_ASSERT(st < 0, "push to an unmapped IOVA of %s succeeded", dn(d));
		cb = (struct conf_cb){0};
		st = exactly_once(d, ferry_memdomain_memzero(&bm, conf_cb_fn, &cb), &cb,
				  "memzero of an unmapped IOVA of");
		CONF_ASSERT(st < 0, "memzero of an unmapped IOVA of %s succeeded", dn(d));
		CONF_INFO("%s: wrapper checks and unmapped-IOVA refusals ok", dn(d));
	}
	conf_close(&c);
}

/* Host memory reachable through @p d, via the backend's hooks (skips without them). */
static int host_map(struct conf_ctx *c, struct ferry_memdomain *d, uint64_t len,
		    struct conf_host_range *r)
{
	const struct conf_hooks *h = conf_hooks_find(c->backend->name);
	if (!h || !h->host_map)
		return -ENOTSUP;
	int rc = h->host_map(c->dev, d, len, r);
	CONF_ASSERT(rc == 0 || rc == -ENOTSUP, "host_map hook for %s: %d (%s)", dn(d), rc,
		    ferry_strerror(rc));
	if (rc == 0)
		CONF_ASSERT(r->len >= len && r->host, "host_map hook returned a short range");
	return rc;
}

#define RT_LEN (64u * 1024u)

CONF_TEST(memdomain, pcie_round_trip)
{
	struct conf_ctx c;
	struct ferry_memdomain *doms[MAX_DOMS];
	uint32_t nd, ran = 0;
	open_with_domains(param, &c, doms, &nd);
	uint8_t *local = malloc(RT_LEN), *want = malloc(RT_LEN);
	CONF_ASSERT(local && want, "out of memory");
	for (uint32_t k = 0; k < nd; k++) {
		struct ferry_memdomain *d = doms[k];
		struct conf_host_range hr;
		if (host_map(&c, d, RT_LEN, &hr))
			continue;
		ran++;
		uint8_t *iova = hr.iova;
		/* push: 3 local segments -> 2 remote segments */
		conf_pattern(want, RT_LEN, 100 + k);
		memcpy(local, want, RT_LEN);
		memset(hr.host, 0, RT_LEN);
		struct iovec ls[3] = {{local, 1000},
				      {local + 1000, 30000},
				      {local + 31000, RT_LEN - 31000}};
		struct iovec rs[2] = {{iova, 4097}, {iova + 4097, RT_LEN - 4097}};
		struct ferry_mem lm = {.iov = ls, .iovcnt = 3},
				 rm = {.domain = d, .iov = rs, .iovcnt = 2};
		struct conf_cb cb = {0};
		int rc = ferry_memdomain_push(&rm, &lm, conf_cb_fn, &cb);
		if (rc == -ENOTSUP) {
			CONF_INFO("%s has no push", dn(d));
		} else {
			CONF_RC(exactly_once(d, rc, &cb, "push to"), 0, "push status");
			CONF_ASSERT(memcmp(hr.host, want, RT_LEN) == 0,
				    "push to %s: host bytes differ", dn(d));
		}
		/* pull: host bytes written by the host side -> local */
		conf_pattern(hr.host, RT_LEN, 200 + k);
		memcpy(want, hr.host, RT_LEN);
		memset(local, 0, RT_LEN);
		cb = (struct conf_cb){0};
		rc = ferry_memdomain_pull(&rm, &lm, conf_cb_fn, &cb);
		if (rc == -ENOTSUP) {
			CONF_INFO("%s has no pull", dn(d));
		} else {
			CONF_RC(exactly_once(d, rc, &cb, "pull from"), 0, "pull status");
			CONF_ASSERT(memcmp(local, want, RT_LEN) == 0, "pull from %s: bytes differ",
				    dn(d));
		}
		/* memzero of an unaligned middle range */
		struct iovec z = {iova + 100, 5000};
		struct ferry_mem zm = {.domain = d, .iov = &z, .iovcnt = 1};
		memset(want + 100, 0, 5000);
		cb = (struct conf_cb){0};
		rc = ferry_memdomain_memzero(&zm, conf_cb_fn, &cb);
		if (rc == -ENOTSUP) {
			CONF_INFO("%s has no memzero", dn(d));
		} else {
			CONF_RC(exactly_once(d, rc, &cb, "memzero of"), 0, "memzero status");
			CONF_ASSERT(memcmp(hr.host, want, RT_LEN) == 0,
				    "memzero of %s: wrong bytes (inside or outside the range)",
				    dn(d));
		}
	}
	free(local);
	free(want);
	conf_close(&c);
	if (!ran)
		CONF_SKIP("no hook maps host memory for this backend's domains");
}

/* Transfers with a PCIe domain on one or both sides, byte-exact. */
CONF_TEST(dma, pcie_domain_transfers)
{
	struct conf_ctx c;
	struct ferry_memdomain *doms[MAX_DOMS];
	uint32_t nd, ran = 0;
	open_with_domains(param, &c, doms, &nd);
	const uint64_t dirs = FERRY_DMA_CAP_DEV_TO_MEM | FERRY_DMA_CAP_MEM_TO_DEV |
			      FERRY_DMA_CAP_DEV_TO_DEV;
	if (!(c.info.caps & dirs)) {
		conf_close(&c);
		CONF_SKIP("no DEV_TO_MEM / MEM_TO_DEV / DEV_TO_DEV capability");
	}
	uint64_t len = conf_round(&c, 3 * 4096 + 700), rng = 0xD0D0;
	if (len > c.info.max_xfer || len > RT_LEN)
		len = 4096;
	struct ferry_dma_chan *ch;
	CONF_RC(ferry_dma_chan_create(c.dev, NULL, &ch), 0, "chan_create");
	uint8_t *loc = conf_alloc(&c, RT_LEN);
	uint32_t segs = conf_max_segs(&c, 4);
	for (uint32_t k = 0; k < nd; k++) {
		struct ferry_memdomain *d = doms[k], *d2 = doms[(k + 1) % nd];
		struct conf_host_range a, b;
		if (host_map(&c, d, RT_LEN, &a) || host_map(&c, d2, RT_LEN, &b))
			continue;
		ran++;
		struct iovec ri[4], li[4], r2[4];
		uint32_t nr = conf_scatter(&c, &rng, a.iova, len, segs, ri);
		/* conf_scatter lays out inside [iova, iova + region): offsets are what matter */
		CONF_ASSERT(conf_region_len(&c, len, segs) <= RT_LEN, "region too large");
		uint32_t nl = conf_scatter(&c, &rng, loc, len, segs, li);
		uint32_t n2 = conf_scatter(&c, &rng, b.iova, len, segs, r2);
		struct ferry_mem R = {.domain = d, .iov = ri, .iovcnt = nr},
				 L = {.iov = li, .iovcnt = nl},
				 R2 = {.domain = d2, .iov = r2, .iovcnt = n2};
		/* what a range of host memory holds, gathered through the host pointer */
		uint8_t *want = malloc(len), *got = malloc(len);
		CONF_ASSERT(want && got, "out of memory");
#define GATHER(dst, base, host, iov, n)                                                            \
	do {                                                                                       \
		uint64_t o_ = 0;                                                                   \
		for (uint32_t s_ = 0; s_ < (n); s_++) {                                            \
			memcpy((dst) + o_, (host) + ((uint8_t *)(iov)[s_].iov_base - (base)),      \
			       (iov)[s_].iov_len);                                                 \
			o_ += (iov)[s_].iov_len;                                                   \
		}                                                                                  \
	} while (0)
		if (c.info.caps & FERRY_DMA_CAP_DEV_TO_MEM) {
			conf_pattern(a.host, RT_LEN, conf_rand(&rng));
			GATHER(want, (uint8_t *)a.iova, a.host, ri, nr);
			struct ferry_xfer x = {.src = R, .dst = L, .len = len};
			CONF_ASSERT(conf_run(ch, &x, 1, 0) == 0, "%s -> system: %s", dn(d),
				    ferry_xfer_status_str(x.status));
			GATHER(got, loc, loc, li, nl);
			CONF_ASSERT(memcmp(want, got, len) == 0, "%s -> system: bytes differ",
				    dn(d));
		}
		if (c.info.caps & FERRY_DMA_CAP_MEM_TO_DEV) {
			conf_pattern(loc, RT_LEN, conf_rand(&rng));
			GATHER(want, loc, loc, li, nl);
			struct ferry_xfer x = {.src = L, .dst = R, .len = len};
			CONF_ASSERT(conf_run(ch, &x, 1, 0) == 0, "system -> %s: %s", dn(d),
				    ferry_xfer_status_str(x.status));
			GATHER(got, (uint8_t *)a.iova, a.host, ri, nr);
			CONF_ASSERT(memcmp(want, got, len) == 0, "system -> %s: bytes differ",
				    dn(d));
		}
		if (c.info.caps & FERRY_DMA_CAP_DEV_TO_DEV) {
			conf_pattern(a.host, RT_LEN, conf_rand(&rng));
			GATHER(want, (uint8_t *)a.iova, a.host, ri, nr);
			struct ferry_xfer x = {.src = R, .dst = R2, .len = len};
			CONF_ASSERT(conf_run(ch, &x, 1, 0) == 0, "%s -> %s: %s", dn(d), dn(d2),
				    ferry_xfer_status_str(x.status));
			GATHER(got, (uint8_t *)b.iova, b.host, r2, n2);
			CONF_ASSERT(memcmp(want, got, len) == 0, "%s -> %s: bytes differ", dn(d),
				    dn(d2));
		}
#undef GATHER
		free(want);
		free(got);
	}
	ferry_dma_chan_destroy(ch);
	free(loc);
	conf_close(&c);
	if (!ran)
		CONF_SKIP("no hook maps host memory for this backend's domains");
}
