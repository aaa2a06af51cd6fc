/*
 * Stress: DMA channels on ONE shared mock device. Workers, each with its own channel, run
 * batches of random scatter-gather transfers (host memory of the "nvme" and "nic" functions
 * through the mock IOMMU, local memory, fenced or not) and the nvme domain's pull/push/translate,
 * and verify every byte. Meanwhile a mapper thread maps and unmaps a separate IOVA range,
 * translates and invalidates, and moves data through that range (success with the right bytes,
 * or a page fault that wrote nothing); a churn thread creates channels, submits and destroys
 * them with transfers in flight, changes the latency and reads the counters.
 */
#include <errno.h>
#include <ferry/mock.h>
#include "stress.h"

#define PAGE 4096u
#define NWORKERS 4u
#define WPAGES 256u                     /* host/IOVA pages per worker (identity, nvme + nic) */
#define SLOT (128u * 1024u)             /* a batch entry's host area: src half, dst half */
#define NSLOTS ((WPAGES * PAGE) / SLOT) /* 8 */
#define HALF (SLOT / 2u)
#define MAXLEN (32u * 1024u)
#define CHURN_HPAGE 1024u /* mapper: host pages 1024.. (mapped at nvme 2048.., nic 4096..) */
#define CHURN_PAGES 64u
#define CHURN_NVME 2048u
#define CHURN_NIC 4096u
#define CC_HPAGE 1280u /* channel churn thread: source pages (identity, nvme) */
#define CC_PAGES 64u
#define RW (FERRY_MOCK_IOMMU_READ | FERRY_MOCK_IOMMU_WRITE)

static struct ferry_device *dev;
static struct ferry_mock_host *host;
static struct ferry_memdomain *nvme, *nic;
static uint64_t deadline;
static atomic_uint_fast64_t mapper_faults, xfers_done, dom_ops;
static atomic_int workers_left;

static uint8_t *hptr(uint64_t off, uint64_t len)
{
	uint8_t *p = ferry_mock_host_ptr(host, off, len);
	ST_CHECK(p, "host offset 0x%llx+%llu", (unsigned long long)off, (unsigned long long)len);
	return p;
}

/* Splits [addr, addr + len) into 1..4 segments at random points. */
static uint32_t split(struct iovec *iov, uintptr_t addr, size_t len, uint64_t *seed)
{
	uint32_t n = (uint32_t)st_range(seed, 1, len >= 4 ? 4 : len);
	size_t left = len;
	for (uint32_t i = 0; i < n; i++) {
		size_t l = i + 1 == n ? left : (size_t)st_range(seed, 1, left - (n - 1 - i));
		iov[i].iov_base = (void *)addr;
		iov[i].iov_len = l;
		addr += l;
		left -= l;
	}
	return n;
}

enum dir {
	H2L,
	L2H,
	H2H,
	L2L,
	NDIRS
};

struct job {
	struct ferry_xfer x;
	struct iovec siov[4], diov[4];
	enum dir dir;
	uint8_t *lsrc, *ldst; /* local halves of the slot */
	uint64_t soff, doff;  /* host offsets (= IOVA) when a side is in host memory */
};

static void job_make(struct job *j, uint32_t w, uint32_t slot, uint64_t *seed)
{
	uint64_t base = (uint64_t)w * WPAGES * PAGE + (uint64_t)slot * SLOT;
	size_t len = (size_t)st_range(seed, 1, MAXLEN);
	uint64_t so = st_range(seed, 0, HALF - len), d_o = st_range(seed, 0, HALF - len);
	j->dir = (enum dir)st_range(seed, 0, NDIRS - 1);
	int src_host = j->dir == H2L || j->dir == H2H, dst_host = j->dir == L2H || j->dir == H2H;
	j->soff = base + so;
	j->doff = base + HALF + d_o;
	uint8_t *src = src_host ? hptr(j->soff, len) : j->lsrc + so;
	uint8_t *dst = dst_host ? hptr(j->doff, len) : j->ldst + d_o;
	st_fill(src, len, seed);
	memset(dst, 0xee, len);
	memset(&j->x, 0, sizeof(j->x));
	j->x.len = len;
	j->x.flags = st_range(seed, 0, 3) == 0 ? FERRY_XFER_F_FENCE : 0;
	j->x.src.iov = j->siov;
	j->x.src.iovcnt = split(j->siov, src_host ? (uintptr_t)j->soff : (uintptr_t)src, len, seed);
	j->x.src.domain = src_host ? nvme : NULL;
	j->x.dst.iov = j->diov;
	j->x.dst.iovcnt = split(j->diov, dst_host ? (uintptr_t)j->doff : (uintptr_t)dst, len, seed);
	j->x.dst.domain = dst_host ? (st_range(seed, 0, 1) ? nic : nvme) : NULL;
	j->x.user_ctx = j;
}

static void job_check(const struct job *j)
{
	ST_CHECK(j->x.status == FERRY_XFER_SUCCESS, "transfer dir %d len %llu: status %s",
		 (int)j->dir, (unsigned long long)j->x.len, ferry_xfer_status_str(j->x.status));
	const uint8_t *s = j->x.src.domain ? hptr(j->soff, j->x.len)
					   : (const uint8_t *)j->siov[0].iov_base;
	const uint8_t *d = j->x.dst.domain ? hptr(j->doff, j->x.len)
					   : (const uint8_t *)j->diov[0].iov_base;
	ST_CHECK(memcmp(s, d, j->x.len) == 0, "transfer dir %d len %llu: bytes differ", (int)j->dir,
		 (unsigned long long)j->x.len);
}

/* Submits @p n transfers (polling while the ring is full) and reaps them all. */
static void run_batch(struct ferry_dma_chan *ch, struct ferry_xfer **xs, uint32_t n)
{
	struct ferry_xfer *done[16];
	uint32_t sub = 0, got = 0;
	uint64_t limit = st_now_ns() + 20000000000ull;
	while (got < n) {
		ST_CHECK(st_now_ns() < limit, "only %u of %u transfers came back", got, n);
		if (sub < n) {
			int rc = ferry_dma_submit(ch, xs + sub, n - sub);
			ST_CHECK(rc >= 0, "submit: %d", rc);
			sub += (uint32_t)rc;
		}
		int rc = ferry_dma_poll(ch, done, 16);
		ST_CHECK(rc >= 0, "poll: %d", rc);
		got += (uint32_t)rc;
		if (rc == 0)
			sched_yield();
	}
}

struct dom_wait {
	atomic_int done;
	atomic_int status;
};

static void dom_cb(void *arg, int status)
{
	struct dom_wait *w = arg;
	atomic_store_explicit(&w->status, status, memory_order_relaxed);
	atomic_store_explicit(&w->done, 1, memory_order_release);
}

/* Completions of the nvme domain may run on any thread that polls it. */
static int dom_wait(struct dom_wait *w)
{
	uint64_t limit = st_now_ns() + 20000000000ull;
	while (!atomic_load_explicit(&w->done, memory_order_acquire)) {
		ST_CHECK(st_now_ns() < limit, "domain operation never completed");
		ferry_memdomain_poll(nvme, 8);
		sched_yield();
	}
	return atomic_load_explicit(&w->status, memory_order_relaxed);
}

/* Pull from, push to and translate a random range of the worker's own host memory. */
static void domain_round(uint32_t w, uint8_t *local, uint64_t *seed)
{
	uint64_t base = (uint64_t)w * WPAGES * PAGE;
	size_t len = (size_t)st_range(seed, 1, 3 * PAGE);
	uint64_t off = base + st_range(seed, 0, WPAGES * PAGE - len);
	struct iovec r[4], l = {local, len};
	struct ferry_mem rm = {.domain = nvme,
			       .iov = r,
			       .iovcnt = split(r, (uintptr_t)off, len, seed)};
	struct ferry_mem lm = {.domain = NULL, .iov = &l, .iovcnt = 1};

	st_fill(hptr(off, len), len, seed);
	struct dom_wait dw = {0, 0};
	int rc = ferry_memdomain_pull(&rm, &lm, dom_cb, &dw);
	ST_CHECK(rc == 0 || rc == -EAGAIN, "pull: %d", rc);
	if (rc == 0) {
		ST_CHECK(dom_wait(&dw) == 0, "pull status");
		ST_CHECK(memcmp(local, hptr(off, len), len) == 0, "pulled bytes differ");
		atomic_fetch_add_explicit(&dom_ops, 1, memory_order_relaxed);
	}
	st_fill(local, len, seed);
	struct dom_wait pw = {0, 0};
	rc = ferry_memdomain_push(&rm, &lm, dom_cb, &pw);
	ST_CHECK(rc == 0 || rc == -EAGAIN, "push: %d", rc);
	if (rc == 0) {
		ST_CHECK(dom_wait(&pw) == 0, "push status");
		ST_CHECK(memcmp(local, hptr(off, len), len) == 0, "pushed bytes differ");
		atomic_fetch_add_explicit(&dom_ops, 1, memory_order_relaxed);
	}
	/* Identity maps in both functions: the nic IOVAs equal the nvme ones, merged. */
	struct iovec out[4];
	struct ferry_mem om = {.iov = out, .iovcnt = 4};
	rc = ferry_memdomain_translate(&rm, nic, &om);
	ST_CHECK(rc == 0, "translate of a mapped range: %d", rc);
	ST_CHECK(om.domain == nic && om.iovcnt == 1 &&
			 (uint64_t)(uintptr_t)out[0].iov_base == off && out[0].iov_len == len,
		 "translate gave %u segments at 0x%llx", om.iovcnt,
		 (unsigned long long)(uintptr_t)out[0].iov_base);
}

static void *worker(void *arg)
{
	uint32_t w = (uint32_t)(uintptr_t)(*(void **)arg);
	uint64_t seed = 0x9e3779b97f4a7c15ull * (w + 1);
	struct ferry_dma_chan_opts o = {.size = sizeof(o), .ring_size = 32};
	struct ferry_dma_chan *ch = NULL;
	ST_CHECK(ferry_dma_chan_create(dev, &o, &ch) == 0, "worker %u: chan_create", w);
	static _Thread_local struct job jobs[NSLOTS];
	uint8_t *local = malloc(2 * SLOT * NSLOTS + 3 * PAGE);
	ST_CHECK(local, "malloc");
	for (uint32_t i = 0; i < NSLOTS; i++) {
		jobs[i].lsrc = local + (size_t)i * 2 * SLOT;
		jobs[i].ldst = jobs[i].lsrc + SLOT;
	}
	uint64_t rounds = 0;
	while (st_now_ns() < deadline || rounds < 4) {
		struct ferry_xfer *xs[NSLOTS];
		uint32_t n = (uint32_t)st_range(&seed, 1, NSLOTS);
		for (uint32_t i = 0; i < n; i++) {
			job_make(&jobs[i], w, i, &seed);
			xs[i] = &jobs[i].x;
		}
		run_batch(ch, xs, n);
		for (uint32_t i = 0; i < n; i++)
			job_check(&jobs[i]);
		atomic_fetch_add_explicit(&xfers_done, n, memory_order_relaxed);
		if (rounds % 4 == 0)
			domain_round(w, local + 2 * SLOT * NSLOTS, &seed);
		rounds++;
	}
	struct ferry_dma_stats st;
	ST_CHECK(ferry_dma_get_stats(ch, &st) == 0 && st.errors == 0, "worker %u: %llu errors", w,
		 (unsigned long long)st.errors);
	ferry_dma_chan_destroy(ch);
	free(local);
	atomic_fetch_sub(&workers_left, 1);
	return NULL;
}

/* Byte of host memory at @p off in the churn range (constant for the whole run). */
static uint8_t churn_byte(uint64_t off)
{
	return (uint8_t)(off * 31u + (off >> 12));
}

static void *mapper(void *arg)
{
	(void)arg;
	uint64_t seed = 77;
	int ifn = ferry_mock_host_fn_lookup(host, "nvme"),
	    cfn = ferry_mock_host_fn_lookup(host, "nic");
	struct ferry_dma_chan *ch = NULL;
	ST_CHECK(ferry_dma_chan_create(dev, NULL, &ch) == 0, "mapper: chan_create");
	uint8_t *dst = malloc(CHURN_PAGES * PAGE);
	ST_CHECK(dst, "malloc");
	while (atomic_load(&workers_left) > 0) {
		uint64_t first = st_range(&seed, 0, CHURN_PAGES - 1);
		uint64_t n = st_range(&seed, 1, CHURN_PAGES - first);
		int rc = ferry_mock_host_iommu_map(host, (unsigned)ifn, (CHURN_NVME + first) * PAGE,
						   (CHURN_HPAGE + first) * PAGE, n * PAGE, RW);
		ST_CHECK(rc == 0, "map nvme: %d", rc);
		int nic_too = (int)st_range(&seed, 0, 1);
		if (nic_too) {
			rc = ferry_mock_host_iommu_map(host, (unsigned)cfn,
						       (CHURN_NIC + first) * PAGE,
						       (CHURN_HPAGE + first) * PAGE, n * PAGE, RW);
			ST_CHECK(rc == 0, "map nic: %d", rc);
		}
		/* Translate a range that may run past the mapping. */
		uint64_t a = (CHURN_NVME + first) * PAGE + st_range(&seed, 0, PAGE - 1);
		size_t len = (size_t)st_range(&seed, 1, 2 * n * PAGE);
		struct iovec siov = {(void *)(uintptr_t)a, len}, out[8];
		struct ferry_mem sm = {.domain = nvme, .iov = &siov, .iovcnt = 1};
		struct ferry_mem om = {.iov = out, .iovcnt = 8};
		rc = ferry_memdomain_translate(&sm, nic, &om);
		int fits = a + len <= (CHURN_NVME + first + n) * PAGE;
		if (nic_too && fits) {
			ST_CHECK(rc == 0, "translate of a mapped churn range: %d", rc);
			ST_CHECK(om.iovcnt == 1 && (uint64_t)(uintptr_t)out[0].iov_base ==
							   a - CHURN_NVME * PAGE + CHURN_NIC * PAGE,
				 "translate result");
		} else {
			ST_CHECK(rc == -EFAULT, "translate of an unmapped range: %d", rc);
		}
		/* A transfer through the range: all its bytes, or a fault that wrote nothing. */
		struct iovec di = {dst, len > CHURN_PAGES * PAGE ? CHURN_PAGES * PAGE : len};
		struct ferry_xfer x = {.src = sm,
				       .dst = {.iov = &di, .iovcnt = 1},
				       .len = di.iov_len};
		struct ferry_xfer *xp = &x;
		memset(dst, 0xee, di.iov_len);
		run_batch(ch, &xp, 1);
		if (x.len <= (CHURN_NVME + first + n) * PAGE - a) {
			ST_CHECK(x.status == FERRY_XFER_SUCCESS, "churn transfer: %s",
				 ferry_xfer_status_str(x.status));
			uint64_t hoff = a - CHURN_NVME * PAGE + CHURN_HPAGE * PAGE;
			for (uint64_t i = 0; i < x.len; i++)
				ST_CHECK(dst[i] == churn_byte(hoff + i), "churn byte %llu",
					 (unsigned long long)i);
		} else {
			ST_CHECK(x.status == FERRY_XFER_PAGE_FAULT,
				 "churn transfer past the map: %s",
				 ferry_xfer_status_str(x.status));
			for (uint64_t i = 0; i < x.len; i++)
				ST_CHECK(dst[i] == 0xee, "a faulting transfer wrote byte %llu",
					 (unsigned long long)i);
			atomic_fetch_add_explicit(&mapper_faults, 1, memory_order_relaxed);
		}
		ST_CHECK(ferry_memdomain_invalidate(&sm) == 0, "invalidate");
		uint64_t hoff;
		uint32_t perms;
		ST_CHECK(ferry_mock_host_iommu_lookup(host, (unsigned)ifn, a, &hoff, &perms) == 0 &&
				 perms == RW,
			 "lookup");
		ST_CHECK(ferry_mock_host_iommu_unmap(host, (unsigned)ifn,
						     (CHURN_NVME + first) * PAGE, n * PAGE) == 0,
			 "unmap nvme");
		if (nic_too)
			ST_CHECK(ferry_mock_host_iommu_unmap(host, (unsigned)cfn,
							     (CHURN_NIC + first) * PAGE,
							     n * PAGE) == 0,
				 "unmap nic");
	}
	ferry_dma_chan_destroy(ch);
	free(dst);
	return NULL;
}

/* Channels created, loaded and destroyed with transfers in flight; latency and counters. */
static void *churn(void *arg)
{
	(void)arg;
	uint64_t seed = 99, rounds = 0;
	enum {
		N = 16
	};
	while (atomic_load(&workers_left) > 0) {
		struct ferry_dma_chan_opts o = {.size = sizeof(o), .ring_size = N};
		struct ferry_dma_chan *ch = NULL;
		ST_CHECK(ferry_dma_chan_create(dev, &o, &ch) == 0, "churn: chan_create");
		struct ferry_xfer x[N], *xs[N], *done[N];
		struct iovec si[N], di[N];
		uint8_t *bufs = malloc((size_t)N * PAGE);
		ST_CHECK(bufs, "malloc");
		for (uint32_t i = 0; i < N; i++) {
			uint64_t off = (CC_HPAGE + st_range(&seed, 0, CC_PAGES - 1)) * PAGE;
			si[i] = (struct iovec){(void *)(uintptr_t)off, PAGE};
			di[i] = (struct iovec){bufs + (size_t)i * PAGE, PAGE};
			x[i] = (struct ferry_xfer){.src = {.domain = nvme,
							   .iov = &si[i],
							   .iovcnt = 1},
						   .dst = {.iov = &di[i], .iovcnt = 1},
						   .len = PAGE};
			xs[i] = &x[i];
		}
		int rc = ferry_dma_submit(ch, xs, N);
		ST_CHECK(rc == N, "churn submit: %d", rc);
		/* Take whatever completed already (checked), destroy with the rest in flight. */
		int got = ferry_dma_poll(ch, done, (uint32_t)st_range(&seed, 0, N));
		ST_CHECK(got >= 0, "churn poll");
		for (int i = 0; i < got; i++) {
			ST_CHECK(done[i]->status == FERRY_XFER_SUCCESS, "churn status");
			uint64_t off = (uint64_t)(uintptr_t)done[i]->src.iov[0].iov_base;
			ST_CHECK(memcmp(done[i]->dst.iov[0].iov_base, hptr(off, PAGE), PAGE) == 0,
				 "churn bytes");
		}
		ferry_dma_chan_destroy(ch);
		free(bufs); /* the engine must not touch them any more */
		if (++rounds % 8 == 0)
			ST_CHECK(ferry_mock_set_latency(dev, st_range(&seed, 0, 3) * 20000) == 0,
				 "latency");
		struct ferry_mock_stats st = {.size = sizeof(st)};
		ST_CHECK(ferry_mock_get_stats(dev, &st) == 0, "stats");
		/* Injection control while every channel submits: a rule for a channel id that is
		 * never created and a zero rate change nothing, but take the same locks. */
		rc = ferry_mock_inject_nth(dev, 100000, 1, FERRY_XFER_BUS_READ_ERROR);
		ST_CHECK(rc == 0 || rc == -ENOSPC, "inject_nth: %d", rc);
		if (rc == -ENOSPC)
			ST_CHECK(ferry_mock_inject_clear(dev) == 0, "inject_clear");
		ST_CHECK(ferry_mock_inject_random(dev, 0, 0, rounds) == 0, "inject_random");
	}
	ST_CHECK(ferry_mock_set_latency(dev, 0) == 0, "latency");
	return NULL;
}

/* Polls the nvme domain for 20 ms from a thread that started nothing on it. */
static void *other_poller(void *arg)
{
	int *n = arg;
	uint64_t end = st_now_ns() + 20000000ull;
	*n = 0;
	while (st_now_ns() < end)
		*n += ferry_memdomain_poll(nvme, 64);
	return NULL;
}

struct owner_cb {
	atomic_int calls;
	pthread_t thread;
};

static void owner_cb_fn(void *arg, int status)
{
	struct owner_cb *o = arg;
	ST_CHECK(status == 0, "pull status %d", status);
	o->thread = pthread_self();
	atomic_fetch_add(&o->calls, 1);
}

/* Deterministic: a completed pull is not delivered to another thread's poll of the domain,
 * only to the poll of the thread that started it (ferry/memdomain.h). */
static void check_owner_delivery(void)
{
	uint8_t buf[PAGE];
	struct iovec r = {(void *)(uintptr_t)0, PAGE}, l = {buf, PAGE};
	struct ferry_mem rm = {.domain = nvme, .iov = &r, .iovcnt = 1};
	struct ferry_mem lm = {.iov = &l, .iovcnt = 1};
	struct ferry_mock_stats st = {.size = sizeof(st)};
	ST_CHECK(ferry_mock_get_stats(dev, &st) == 0, "stats");
	uint64_t before = st.xfers;
	struct owner_cb o = {0};
	ST_CHECK(ferry_memdomain_pull(&rm, &lm, owner_cb_fn, &o) == 0, "pull");
	uint64_t limit = st_now_ns() + 20000000000ull;
	do {
		ST_CHECK(st_now_ns() < limit, "the engine never ran the pull");
		ST_CHECK(ferry_mock_get_stats(dev, &st) == 0, "stats");
	} while (st.xfers == before);
	pthread_t t;
	int n = -1;
	ST_CHECK(pthread_create(&t, NULL, other_poller, &n) == 0, "thread");
	pthread_join(t, NULL);
	ST_CHECK(n == 0 && atomic_load(&o.calls) == 0, "another thread's poll ran %d completions",
		 n);
	while (atomic_load(&o.calls) == 0) {
		ST_CHECK(st_now_ns() < limit, "the pull never completed");
		ferry_memdomain_poll(nvme, 64);
	}
	ST_CHECK(atomic_load(&o.calls) == 1 && pthread_equal(o.thread, pthread_self()),
		 "the starting thread's poll runs its completion");
	ST_CHECK(memcmp(buf, hptr(0, PAGE), PAGE) == 0, "pulled bytes");
}

static void *run_role(void *arg)
{
	uintptr_t role = (uintptr_t)(*(void **)arg);
	if (role < NWORKERS)
		return worker(arg);
	return role == NWORKERS ? mapper(arg) : churn(arg);
}

int main(void)
{
	uint64_t t0 = st_now_ns();
	ferry_log_set_handler(st_quiet_log); /* the mapper provokes faults on purpose */
	int rc = ferry_device_open("mock", "host_mem=8M,iova_size=32M,functions=nvme:nic,ring=64",
				   &dev);
	ST_CHECK(rc == 0, "open: %d", rc);
	ST_CHECK(ferry_mock_host_attach(dev, &host) == 0, "attach");
	char name[96];
	snprintf(name, sizeof(name), "%s.nvme", ferry_device_get_name(dev));
	nvme = ferry_memdomain_lookup(name);
	snprintf(name, sizeof(name), "%s.nic", ferry_device_get_name(dev));
	nic = ferry_memdomain_lookup(name);
	ST_CHECK(nvme && nic, "function domains");
	uint64_t wbytes = (uint64_t)NWORKERS * WPAGES * PAGE;
	ST_CHECK(ferry_mock_host_iommu_map(host, 0, 0, 0, wbytes, RW) == 0, "map nvme");
	ST_CHECK(ferry_mock_host_iommu_map(host, 1, 0, 0, wbytes, RW) == 0, "map nic");
	ST_CHECK(ferry_mock_host_iommu_map(host, 0, CC_HPAGE * PAGE, CC_HPAGE * PAGE,
					   CC_PAGES * PAGE, FERRY_MOCK_IOMMU_READ) == 0,
		 "map churn source");
	uint8_t *cm = hptr(CHURN_HPAGE * PAGE, CHURN_PAGES * PAGE);
	for (uint64_t i = 0; i < CHURN_PAGES * PAGE; i++)
		cm[i] = churn_byte(CHURN_HPAGE * PAGE + i);
	uint64_t seed = 5;
	st_fill(hptr(CC_HPAGE * PAGE, CC_PAGES * PAGE), CC_PAGES * PAGE, &seed);

	check_owner_delivery();

	atomic_store(&workers_left, (int)NWORKERS);
	deadline = st_now_ns() + st_run_ns(1500);
	void *roles[NWORKERS + 2];
	for (uintptr_t i = 0; i < NWORKERS + 2; i++)
		roles[i] = (void *)i;
	st_run_threads(NWORKERS + 2, run_role, roles, sizeof(roles[0]));

	struct ferry_mock_stats st = {.size = sizeof(st)};
	ST_CHECK(ferry_mock_get_stats(dev, &st) == 0, "stats");
	ST_CHECK(st.page_faults == atomic_load(&mapper_faults),
		 "page faults %llu, the mapper saw %llu", (unsigned long long)st.page_faults,
		 (unsigned long long)atomic_load(&mapper_faults));
	ST_CHECK(st.errors == st.page_faults, "errors %llu other than page faults",
		 (unsigned long long)st.errors);
	ferry_mock_host_close(host);
	ferry_device_close(dev);
	printf("stress_dma: %llu verified transfers, %llu domain operations, %llu churn faults, "
	       "%.2f s\n",
	       (unsigned long long)atomic_load(&xfers_done),
	       (unsigned long long)atomic_load(&dom_ops),
	       (unsigned long long)atomic_load(&mapper_faults), (double)(st_now_ns() - t0) / 1e9);
	return 0;
}
