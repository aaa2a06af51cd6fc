/*
 * Stress: accel channels on ONE shared mock device. Each worker owns a channel (one worker a
 * software-only channel, which bounces host memory through the nvme domain's pull/push) and
 * keeps several write pipelines (host -> copy -> encrypt -> DIF insert -> local, fused on the
 * engine) and read pipelines (local -> DIF strip -> decrypt -> host) in flight, all with ONE
 * shared AES-XTS key, and verifies every byte against the primitives run on the worker. A
 * churn thread creates channels, starts sequences and destroys the channels with them in
 * flight; a reader thread takes the global accel and mock counters.
 */
#include <errno.h>
#include <ferry/mock.h>
#include "stress.h"

#define PAGE 4096u
#define NWORKERS 4u /* the last NSW ones are software-only */
#define NSW 2u
#define WPAGES 128u
#define INFLIGHT 4u
#define SLOT_BYTES (WPAGES * PAGE / INFLIGHT) /* per pipeline: plain src, then plain dst */
#define MAXBLK 8u
#define BS 512u
#define EXT (BS + 8u)
#define CHURN_PAGE (NWORKERS * WPAGES)

static struct ferry_device *dev;
static struct ferry_mock_host *host;
static struct ferry_memdomain *nvme;
static struct ferry_crypto_key *key;
static uint64_t deadline;
static atomic_int workers_left;
static atomic_uint_fast64_t pipelines, churned, churn_seqs;

static uint8_t *hptr(uint64_t off, uint64_t len)
{
	uint8_t *p = ferry_mock_host_ptr(host, off, len);
	ST_CHECK(p, "host offset 0x%llx", (unsigned long long)off);
	return p;
}

struct done {
	int calls;
	int status;
};

static void done_cb(void *arg, int status)
{
	struct done *d = arg;
	d->calls++;
	d->status = status;
}

static struct ferry_mem vbuf(struct ferry_accel_chan *ch, struct iovec *iov, size_t len)
{
	void *buf, *ctx;
	struct ferry_memdomain *d;
	int rc = ferry_accel_get_buf(ch, len, &buf, &d, &ctx);
	ST_CHECK(rc == 0, "get_buf %zu: %d", len, rc);
	*iov = (struct iovec){buf, len};
	return (struct ferry_mem){.domain = d, .domain_ctx = ctx, .iov = iov, .iovcnt = 1};
}

static void vput(struct ferry_accel_chan *ch, const struct ferry_mem *m)
{
	ferry_accel_put_buf(ch, m->iov[0].iov_base, m->domain, m->domain_ctx);
}

/* One pipeline in flight: its buffers, descriptors and expected bytes. */
struct pipe {
	int write; /* 1: host -> local with PI; 0: local with PI -> host */
	uint32_t n;
	uint64_t lba, hsrc, hdst;
	uint8_t plain[MAXBLK * BS], ext[MAXBLK * EXT], ref[MAXBLK * EXT];
	struct iovec hi, li, i1, i2, i3;
	struct ferry_mem h, l, v1, v2, v3;
	struct ferry_dif_ctx dif;
	struct ferry_dif_error err;
	struct done d;
	struct ferry_seq *seq;
};

static void dif_ctx(struct ferry_dif_ctx *c, uint32_t ref)
{
	uint32_t checks = FERRY_DIF_CHECK_GUARD | FERRY_DIF_CHECK_APPTAG | FERRY_DIF_CHECK_REFTAG;
	ST_CHECK(ferry_dif_ctx_init(c, BS, 8, 1, FERRY_DIF_TYPE1, checks, ref, 0x1234, 0xffff) == 0,
		 "dif ctx");
}

/* The write pipeline's bytes, computed with the primitives (the key is shared by all). */
static void reference(struct pipe *p)
{
	size_t plain = (size_t)p->n * BS;
	uint8_t tmp[MAXBLK * BS];
	struct iovec s = {p->plain, plain}, t = {tmp, plain}, o = {p->ref, (size_t)p->n * EXT};
	ST_CHECK(ferry_crypto_encrypt(key, &t, 1, &s, 1, p->lba) == 0, "reference encrypt");
	ST_CHECK(ferry_dif_insert(&p->dif, &o, 1, &t, 1, p->n) == 0, "reference insert");
}

static void pipe_start(struct ferry_accel_chan *ch, struct pipe *p, uint32_t w, uint32_t slot,
		       uint64_t *seed)
{
	p->n = (uint32_t)st_range(seed, 1, MAXBLK);
	p->lba = st_range(seed, 0, 1u << 30);
	p->hsrc = (uint64_t)w * WPAGES * PAGE + (uint64_t)slot * SLOT_BYTES;
	p->hdst = p->hsrc + SLOT_BYTES / 2;
	p->write = (int)st_range(seed, 0, 1);
	size_t plain = (size_t)p->n * BS, ext = (size_t)p->n * EXT;
	dif_ctx(&p->dif, (uint32_t)p->lba);
	st_fill(p->plain, plain, seed);
	reference(p);
	p->v1 = vbuf(ch, &p->i1, p->write ? plain : ext);
	p->v2 = vbuf(ch, &p->i2, plain);
	p->v3 = vbuf(ch, &p->i3, p->write ? ext : plain);
	int rc = ferry_seq_create(ch, &p->seq);
	ST_CHECK(rc == 0, "seq_create: %d", rc);
	struct ferry_seq *s = p->seq;
	if (p->write) {
		memcpy(hptr(p->hsrc, plain), p->plain, plain);
		memset(p->ext, 0, ext);
		p->hi = (struct iovec){(void *)(uintptr_t)p->hsrc, plain};
		p->h = (struct ferry_mem){.domain = nvme, .iov = &p->hi, .iovcnt = 1};
		p->li = (struct iovec){p->ext, ext};
		p->l = (struct ferry_mem){.iov = &p->li, .iovcnt = 1};
		rc = ferry_seq_append_copy(s, &p->v1, &p->h, NULL, NULL);
		rc = rc ? rc : ferry_seq_append_encrypt(s, &p->v2, &p->v1, key, p->lba, NULL, NULL);
		rc = rc ? rc
			: ferry_seq_append_dif_insert(s, &p->v3, &p->v2, &p->dif, p->n, NULL, NULL);
		rc = rc ? rc : ferry_seq_append_copy(s, &p->l, &p->v3, NULL, NULL);
	} else {
		memcpy(p->ext, p->ref, ext);
		memset(hptr(p->hdst, plain), 0, plain);
		p->hi = (struct iovec){(void *)(uintptr_t)p->hdst, plain};
		p->h = (struct ferry_mem){.domain = nvme, .iov = &p->hi, .iovcnt = 1};
		p->li = (struct iovec){p->ext, ext};
		p->l = (struct ferry_mem){.iov = &p->li, .iovcnt = 1};
		rc = ferry_seq_append_copy(s, &p->v1, &p->l, NULL, NULL);
		rc = rc ? rc
			: ferry_seq_append_dif_strip(s, &p->v2, &p->v1, &p->dif, p->n, &p->err,
						     NULL, NULL);
		rc = rc ? rc : ferry_seq_append_decrypt(s, &p->v3, &p->v2, key, p->lba, NULL, NULL);
		rc = rc ? rc : ferry_seq_append_copy(s, &p->h, &p->v3, NULL, NULL);
	}
	ST_CHECK(rc == 0, "append: %d", rc);
	p->d = (struct done){0, 0};
	for (;;) {
		rc = ferry_seq_finish(s, done_cb, &p->d);
		if (rc != -ENOMEM)
			break;
		ferry_accel_chan_poll(ch, 16); /* pool exhausted for now: let others complete */
		sched_yield();
	}
	ST_CHECK(rc == 0, "finish: %d", rc);
}

static void pipe_check(struct ferry_accel_chan *ch, struct pipe *p)
{
	size_t plain = (size_t)p->n * BS, ext = (size_t)p->n * EXT;
	ST_CHECK(p->d.calls == 1 && p->d.status == 0, "pipeline %s: %d calls, status %d",
		 p->write ? "write" : "read", p->d.calls, p->d.status);
	if (p->write)
		ST_CHECK(memcmp(p->ext, p->ref, ext) == 0, "write pipeline bytes (%u blocks)",
			 p->n);
	else
		ST_CHECK(memcmp(hptr(p->hdst, plain), p->plain, plain) == 0,
			 "read pipeline bytes (%u blocks)", p->n);
	vput(ch, &p->v1);
	vput(ch, &p->v2);
	vput(ch, &p->v3);
}

static void *worker(void *arg)
{
	uint32_t w = (uint32_t)(uintptr_t)(*(void **)arg);
	uint64_t seed = 0x2545f4914f6cdd1dull * (w + 3);
	struct ferry_accel_chan *ch = NULL;
	int sw = w + NSW >= NWORKERS;
	int rc = ferry_accel_chan_create(sw ? NULL : dev, NULL, &ch);
	ST_CHECK(rc == 0, "worker %u: chan_create %d", w, rc);
	struct pipe *ps = calloc(INFLIGHT, sizeof(*ps));
	ST_CHECK(ps, "calloc");
	uint64_t rounds = 0;
	while (st_now_ns() < deadline || rounds < 3) {
		uint32_t k = (uint32_t)st_range(&seed, 1, INFLIGHT);
		for (uint32_t i = 0; i < k; i++)
			pipe_start(ch, &ps[i], w, i, &seed);
		uint64_t limit = st_now_ns() + 20000000000ull;
		for (uint32_t i = 0; i < k; i++) {
			while (ps[i].d.calls == 0) {
				ST_CHECK(st_now_ns() < limit,
					 "worker %u: a pipeline never completed", w);
				ST_CHECK(ferry_accel_chan_poll(ch, 16) >= 0, "poll");
				sched_yield();
			}
		}
		for (uint32_t i = 0; i < k; i++)
			pipe_check(ch, &ps[i]);
		atomic_fetch_add_explicit(&pipelines, k, memory_order_relaxed);
		rounds++;
	}
	struct ferry_accel_stats st = {.size = sizeof(st)};
	ST_CHECK(ferry_accel_get_stats(ch, &st) == 0, "stats");
	ST_CHECK(st.errors == 0 && st.bufs_in_use == 0, "worker %u: %llu errors, %llu buffers held",
		 w, (unsigned long long)st.errors, (unsigned long long)st.bufs_in_use);
	if (!sw)
		ST_CHECK(st.fusions > 0 && st.ops_sw[FERRY_ACCEL_OP_ENCRYPT] == 0,
			 "worker %u: the engine fused (%llu fusions)", w,
			 (unsigned long long)st.fusions);
	else
		ST_CHECK(st.bytes_bounced > 0, "the software channel bounced host memory");
	ferry_accel_chan_destroy(ch);
	free(ps);
	atomic_fetch_sub(&workers_left, 1);
	return NULL;
}

/* Channels destroyed with sequences in flight: destroy drives them to completion. */
static void *churn(void *arg)
{
	(void)arg;
	uint64_t seed = 1234;
	uint8_t *buf = malloc(4 * PAGE);
	ST_CHECK(buf, "malloc");
	while (atomic_load(&workers_left) > 0) {
		struct ferry_accel_chan *ch = NULL;
		ST_CHECK(ferry_accel_chan_create(dev, NULL, &ch) == 0, "churn: chan_create");
		uint32_t n = (uint32_t)st_range(&seed, 1, 4);
		struct done d[4];
		struct iovec li[4], hi[4];
		uint8_t fill[4];
		for (uint32_t i = 0; i < n; i++) {
			uint64_t hoff = (uint64_t)(CHURN_PAGE + st_range(&seed, 0, 15)) * PAGE;
			li[i] = (struct iovec){buf + (size_t)i * PAGE, PAGE};
			hi[i] = (struct iovec){(void *)(uintptr_t)hoff, PAGE};
			struct ferry_mem l = {.iov = &li[i], .iovcnt = 1};
			struct ferry_mem h = {.domain = nvme, .iov = &hi[i], .iovcnt = 1};
			struct ferry_seq *s = NULL;
			ST_CHECK(ferry_seq_create(ch, &s) == 0, "churn: seq_create");
			fill[i] = (uint8_t)st_rand(&seed);
			memset(li[i].iov_base, 0, PAGE);
			ST_CHECK(ferry_seq_append_copy(s, &l, &h, NULL, NULL) == 0, "churn: copy");
			ST_CHECK(ferry_seq_append_fill(s, &l, fill[i], NULL, NULL) == 0,
				 "churn: fill");
			d[i] = (struct done){0, 0};
			ST_CHECK(ferry_seq_finish(s, done_cb, &d[i]) == 0, "churn: finish");
		}
		if (st_range(&seed, 0, 1))
			ferry_accel_chan_poll(ch, 1);
		ferry_accel_chan_destroy(ch);
		for (uint32_t i = 0; i < n; i++) {
			ST_CHECK(d[i].calls == 1 && d[i].status == 0, "churn: %d calls, status %d",
				 d[i].calls, d[i].status);
			for (uint32_t b = 0; b < PAGE; b++)
				ST_CHECK(buf[(size_t)i * PAGE + b] == fill[i], "churn: fill byte");
		}
		atomic_fetch_add_explicit(&churned, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&churn_seqs, n, memory_order_relaxed);
	}
	free(buf);
	return NULL;
}

static void *reader(void *arg)
{
	(void)arg;
	uint64_t last = 0;
	while (atomic_load(&workers_left) > 0) {
		/* Module getters while the main thread initialises the module. */
		size_t max = ferry_accel_get_buf_max();
		struct ferry_memdomain *ad = ferry_accel_get_domain();
		ST_CHECK(max == 0 || ad != NULL, "buf max %zu but no accel domain", max);
		struct ferry_accel_stats st = {.size = sizeof(st)};
		ST_CHECK(ferry_accel_get_stats(NULL, &st) == 0, "global stats");
		ST_CHECK(st.seqs_completed + 64 >= last, "completed went back from %llu to %llu",
			 (unsigned long long)last, (unsigned long long)st.seqs_completed);
		last = st.seqs_completed;
		struct ferry_mock_stats ms = {.size = sizeof(ms)};
		ST_CHECK(ferry_mock_get_stats(dev, &ms) == 0, "mock stats");
		usleep(1000);
	}
	return NULL;
}

static void *run_role(void *arg)
{
	uintptr_t role = (uintptr_t)(*(void **)arg);
	if (role < NWORKERS)
		return worker(arg);
	return role == NWORKERS ? churn(arg) : reader(arg);
}

int main(void)
{
	uint64_t t0 = st_now_ns();
	int rc = ferry_device_open("mock", "host_mem=4M,iova_size=4M,functions=nvme", &dev);
	ST_CHECK(rc == 0, "open: %d", rc);
	ST_CHECK(ferry_mock_host_attach(dev, &host) == 0, "attach");
	char name[96];
	snprintf(name, sizeof(name), "%s.nvme", ferry_device_get_name(dev));
	nvme = ferry_memdomain_lookup(name);
	ST_CHECK(nvme, "nvme domain");
	ST_CHECK(ferry_mock_host_iommu_map(host, 0, 0, 0, (CHURN_PAGE + 16) * PAGE,
					   FERRY_MOCK_IOMMU_READ | FERRY_MOCK_IOMMU_WRITE) == 0,
		 "map");
	uint8_t k1[16], k2[16];
	uint64_t seed = 42;
	st_fill(k1, sizeof(k1), &seed);
	st_fill(k2, sizeof(k2), &seed);
	k2[0] = (uint8_t)(k1[0] ^ 0x5a);
	struct ferry_crypto_key_opts ko = {.size = sizeof(ko),
					   .cipher = FERRY_CIPHER_AES_XTS_128,
					   .key1 = k1,
					   .key2 = k2,
					   .key_len = 16,
					   .data_unit_size = BS};
	ST_CHECK(ferry_crypto_key_create(&ko, &key) == 0, "key");

	atomic_store(&workers_left, (int)NWORKERS);
	deadline = st_now_ns() + st_run_ns(1500);
	void *roles[NWORKERS + 2];
	for (uintptr_t i = 0; i < NWORKERS + 2; i++)
		roles[i] = (void *)i;
	/* The reader starts first: its getters run while this thread initialises the module
	 * with a pool small enough that the software channels run it dry (finish -ENOMEM, retry;
	 * small requests served from the large class). */
	pthread_t rd;
	ST_CHECK(pthread_create(&rd, NULL, run_role, &roles[NWORKERS + 1]) == 0, "reader");
	struct ferry_accel_opts ao = {.size = sizeof(ao)};
	ST_CHECK(ferry_accel_get_default_opts(&ao) == 0, "default opts");
	ao.small_buf_count = 6;
	ao.large_buf_count = 1;
	ao.cache_size = 2;
	ST_CHECK(ferry_accel_init(&ao) == 0, "accel init");
	st_run_threads(NWORKERS + 1, run_role, roles, sizeof(roles[0]));
	pthread_join(rd, NULL);

	struct ferry_accel_stats st = {.size = sizeof(st)};
	ST_CHECK(ferry_accel_get_stats(NULL, &st) == 0, "global stats");
	ST_CHECK(st.errors == 0 && st.bufs_in_use == 0, "%llu errors, %llu buffers held",
		 (unsigned long long)st.errors, (unsigned long long)st.bufs_in_use);
	ST_CHECK(st.seqs_completed == atomic_load(&pipelines) + atomic_load(&churn_seqs),
		 "%llu sequences completed, %llu + %llu ran", (unsigned long long)st.seqs_completed,
		 (unsigned long long)atomic_load(&pipelines),
		 (unsigned long long)atomic_load(&churn_seqs));
	ferry_crypto_key_destroy(key);
	ferry_mock_host_close(host);
	ferry_device_close(dev);
	ferry_accel_fini();
	printf("stress_accel: %llu verified pipelines, %llu channels destroyed busy, %llu "
	       "fusions, %llu pool buffers taken, %llu out-of-buffer waits, %.2f s\n",
	       (unsigned long long)atomic_load(&pipelines),
	       (unsigned long long)atomic_load(&churned), (unsigned long long)st.fusions,
	       (unsigned long long)st.bufs_taken, (unsigned long long)st.nomem,
	       (double)(st_now_ns() - t0) / 1e9);
	return 0;
}
