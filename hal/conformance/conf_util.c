/*
 * The conformance suite's shared machinery: the backend under test, opening a device (with
 * the skip rules), seeds, buffers and random scatter layouts, running a batch of
 * transfers to completion with the engine-contract checks, domain completion counting.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "conf.h"

const char *conf_cur = "?";

const char *conf_last_error(void)
{
	const char *e = ferry_last_error();
	return e && *e ? e : "(none logged)";
}

const struct ferry_hal_backend *conf_backend(const struct conf_param *p)
{
	const struct ferry_hal_backend *b = ferry_hal_get(p->index);
	conf_cur = p->name;
	CONF_ASSERT(b && strcmp(b->name, p->name) == 0,
		    "backend %u is '%s' in the check's process (registration order changed?)",
		    p->index, b ? b->name : "(none)");
	return b;
}

struct ferry_device *conf_open_device(const struct conf_param *p, const char *args,
				      uint32_t cls, const char *table)
{
	struct ferry_device *dev = NULL;
	if (!args)
		args = "";
	int rc = ferry_device_open(p->name, args, &dev);
	if (rc == -ENODEV || rc == -ENOTSUP) {
		CONF_SKIP("device unavailable: open returned %s (%s)", ferry_strerror(rc),
			  conf_last_error());
	}
	CONF_ASSERT(rc == 0, "ferry_device_open(\"%s\", \"%s\"): %d (%s); last logged error: %s",
		    p->name, args, rc, ferry_strerror(rc), conf_last_error());
	CONF_ASSERT(dev != NULL, "open returned 0 without a device");
	CONF_ASSERT(ferry_device_get_classes(dev) & cls,
		    "a device of a backend with %s does not report its device class 0x%x", table,
		    cls);
	return dev;
}

void conf_open(const struct conf_param *p, struct conf_ctx *c)
{
	memset(c, 0, sizeof(*c));
	c->backend = conf_backend(p);
	if (!c->backend->dma)
		CONF_SKIP("no DMA engine class (ferry_hal_backend::dma is NULL)");
	c->dev = conf_open_device(p, p->args, FERRY_DEVICE_CLASS_DMA, "a DMA table");
	c->info.size = sizeof(c->info);
	CONF_RC(ferry_dma_query(c->dev, &c->info), 0, "ferry_dma_query");
	c->align = c->info.alignment ? c->info.alignment : 1;
}

void conf_close(struct conf_ctx *c)
{
	const struct conf_hooks *h = conf_hooks_find(c->backend->name);
	if (h && h->release)
		h->release(c->dev);
	ferry_device_close(c->dev);
	c->dev = NULL;
}

void conf_require(const struct conf_ctx *c, uint64_t caps, const char *why)
{
	if ((c->info.caps & caps) != caps)
		CONF_SKIP("capability 0x%llx missing (%s)", (unsigned long long)caps, why);
}

uint64_t conf_seed(const struct conf_param *p, uint64_t salt)
{
	uint64_t s = p->seed ^ (salt * 0x9e3779b97f4a7c15ull);
	return conf_rand(&s);
}

uint64_t conf_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void conf_pattern(void *buf, size_t len, uint64_t seed)
{
	uint8_t *b = buf;
	uint64_t s = seed, v = 0;
	for (size_t i = 0; i < len; i++) {
		if ((i & 7) == 0)
			v = conf_rand(&s);
		b[i] = (uint8_t)(v >> ((i & 7) * 8));
	}
}

uint64_t conf_round(const struct conf_ctx *c, uint64_t v)
{
	return (v + c->align - 1) / c->align * c->align;
}

void *conf_alloc(const struct conf_ctx *c, size_t len)
{
	size_t a = c->align < 64 ? 64 : c->align;
	size_t n = (len + a - 1) / a * a;
	void *p = aligned_alloc(a, n ? n : a);
	CONF_ASSERT(p != NULL, "out of memory for %zu bytes", len);
	memset(p, 0, n ? n : a);
	return p;
}

#define GAP_UNITS 8u

uint64_t conf_region_len(const struct conf_ctx *c, uint64_t total, uint32_t maxseg)
{
	return total + (uint64_t)maxseg * GAP_UNITS * c->align;
}

void conf_cut(uint64_t *rng, uint64_t units, uint32_t k, uint64_t *len, uint32_t *order)
{
	uint64_t left = units;
	for (uint32_t i = 0; i < k; i++) {
		uint64_t room = left - (k - 1 - i); /* leave one unit for each later segment */
		len[i] = i == k - 1 ? left : 1 + conf_rand(rng) % room;
		left -= len[i];
		order[i] = i;
	}
	for (uint32_t i = k - 1; i > 0; i--) {
		uint32_t j = (uint32_t)(conf_rand(rng) % (i + 1)), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
}

uint32_t conf_scatter(const struct conf_ctx *c, uint64_t *rng, uint8_t *region, uint64_t total,
		      uint32_t maxseg, struct iovec *iov)
{
	uint64_t units = total / c->align;
	CONF_ASSERT(units >= 1 && units * c->align == total, "scatter of %llu bytes",
		    (unsigned long long)total);
	uint32_t k = maxseg < units ? maxseg : (uint32_t)units;
	k = 1 + (uint32_t)(conf_rand(rng) % k);
	uint64_t len[k];
	uint32_t order[k];
	conf_cut(rng, units, k, len, order);
	uint64_t pos = 0;
	for (uint32_t i = 0; i < k; i++) {
		uint32_t s = order[i];
		pos += (conf_rand(rng) % GAP_UNITS) * c->align;
		iov[s].iov_base = region + pos;
		iov[s].iov_len = len[s] * c->align;
		pos += iov[s].iov_len;
	}
	return k;
}

uint32_t conf_max_segs(const struct conf_ctx *c, uint32_t cap)
{
	if (!(c->info.caps & FERRY_DMA_CAP_SG))
		return 1;
	return c->info.max_sges < cap ? c->info.max_sges : cap;
}

uint64_t conf_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void conf_sleep_us(unsigned int us)
{
	struct timespec ts = {.tv_sec = us / 1000000u, .tv_nsec = (long)(us % 1000000u) * 1000};
	nanosleep(&ts, NULL);
}

#define RUN_TIMEOUT_NS 5000000000ull
#define POLL_BATCH 64u

uint32_t conf_run(struct ferry_dma_chan *ch, struct ferry_xfer *x, uint32_t n, uint32_t ring)
{
	struct ferry_xfer *ptrs[n ? n : 1], *done[POLL_BATCH];
	uint8_t seen[n ? n : 1];
	uint32_t sub = 0, got = 0, errors = 0;
	for (uint32_t i = 0; i < n; i++) {
		ptrs[i] = &x[i];
		seen[i] = 0;
		x[i].user_ctx = CONF_CTX(i);
		x[i].status = FERRY_XFER_STATUS_COUNT; /* the engine must overwrite it */
	}
	uint64_t end = conf_now_ns() + RUN_TIMEOUT_NS;
	while (got < n) {
		if (sub < n) {
			int rc = ferry_dma_submit(ch, ptrs + sub, n - sub);
			CONF_ASSERT(rc >= 0 && (uint32_t)rc <= n - sub,
				    "submit of %u transfers returned %d (%s; %s)", n - sub, rc,
				    ferry_strerror(rc), conf_last_error());
			CONF_ASSERT(rc > 0 || sub > got,
				    "submit accepted nothing while nothing was in flight");
			sub += (uint32_t)rc;
			CONF_ASSERT(ring == 0 || sub - got <= ring,
				    "%u transfers in flight on a ring of %u", sub - got, ring);
		}
		int m = ferry_dma_poll(ch, done, POLL_BATCH);
		CONF_ASSERT(m >= 0 && m <= (int)POLL_BATCH, "poll returned %d (%s)", m,
			    ferry_strerror(m));
		for (int j = 0; j < m; j++) {
			struct ferry_xfer *d = done[j];
			uint32_t i = (uint32_t)((uintptr_t)(d ? d->user_ctx : NULL) - 0xC0F00000u);
			CONF_ASSERT(
				d && i < n && d == &x[i],
				"poll returned a transfer it was not given (or user_ctx changed)");
			CONF_ASSERT(!seen[i], "transfer %u returned twice", i);
			CONF_ASSERT(i < sub, "transfer %u returned before it was accepted", i);
			CONF_ASSERT((unsigned)d->status < FERRY_XFER_STATUS_COUNT,
				    "transfer %u completed with status %d", i, (int)d->status);
			seen[i] = 1;
			errors += d->status != FERRY_XFER_SUCCESS;
		}
		got += (uint32_t)m;
		if (m == 0) {
			CONF_ASSERT(conf_now_ns() < end,
				    "%u of %u transfers not completed after 5 s (%u submitted)",
				    n - got, n, sub);
			conf_sleep_us(20);
		}
	}
	return errors;
}

uint32_t conf_quiet_poll(struct ferry_dma_chan *ch, unsigned int ms)
{
	struct ferry_xfer *done[POLL_BATCH];
	uint32_t total = 0;
	uint64_t end = conf_now_ns() + (uint64_t)ms * 1000000ull;
	do {
		int m = ferry_dma_poll(ch, done, POLL_BATCH);
		CONF_ASSERT(m >= 0, "poll returned %d (%s)", m, ferry_strerror(m));
		total += (uint32_t)m;
		conf_sleep_us(200);
	} while (conf_now_ns() < end);
	return total;
}

uint32_t conf_pcie_domains(const struct conf_ctx *c, struct ferry_memdomain **out, uint32_t max)
{
	char prefix[80];
	int pl = snprintf(prefix, sizeof(prefix), "%s.", ferry_device_get_name(c->dev));
	uint32_t n = 0;
	for (struct ferry_memdomain *d = ferry_memdomain_first(FERRY_MEMDOMAIN_PCIE); d;
	     d = ferry_memdomain_next(d, FERRY_MEMDOMAIN_PCIE)) {
		if (strncmp(ferry_memdomain_get_name(d), prefix, (size_t)pl) == 0 && n < max)
			out[n++] = d;
	}
	return n;
}

void conf_cb_fn(void *arg, int status)
{
	struct conf_cb *cb = arg;
	cb->calls++;
	cb->status = status;
}

void conf_cb_wait(struct ferry_memdomain *d, struct conf_cb *cb, unsigned int quiet_ms)
{
	uint64_t end = conf_now_ns() + RUN_TIMEOUT_NS;
	while (cb->calls == 0) {
		int rc = ferry_memdomain_poll(d, 16);
		CONF_ASSERT(rc >= 0, "ferry_memdomain_poll(%s) returned %d (%s)",
			    ferry_memdomain_get_name(d), rc, ferry_strerror(rc));
		if (rc == 0) {
			CONF_ASSERT(conf_now_ns() < end, "%s: no completion callback after 5 s",
				    ferry_memdomain_get_name(d));
			conf_sleep_us(20);
		}
	}
	uint64_t q = conf_now_ns() + (uint64_t)quiet_ms * 1000000ull;
	while (conf_now_ns() < q) {
		CONF_ASSERT(ferry_memdomain_poll(d, 16) >= 0, "ferry_memdomain_poll failed");
		conf_sleep_us(200);
	}
}
