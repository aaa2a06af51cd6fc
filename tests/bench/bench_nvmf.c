/*
 * ferry-bench: the NVMe-oF/TCP suites' shared target, fill and workload (bench_nvmf.h).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <ferry/bdev.h>
#include <ferry/bdev_malloc.h>
#include <ferry/bdev_nvmf.h>
#include <ferry/ferry.h>
#include <ferry/nvme.h>
#include <ferry/rdma_transport.h>
#include <ferry/tcp_transport.h>
#include <ferry/transport.h>
#include "bench.h"
#include "bench_nvmf.h"

void bench_pin(int cpu)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n <= 1)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu % n, &set);
	(void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

double bench_thread_cpu_s(pthread_t th)
{
	clockid_t cid;
	struct timespec ts;
	if (pthread_getcpuclockid(th, &cid) || clock_gettime(cid, &ts))
		return 0;
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double bench_self_cpu_s(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts))
		return 0;
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The target's poll-group thread: it also accepts connections (ferry_transport_poll). */
static void *tgt_thread(void *arg)
{
	struct bench_nvmf_tgt *g = arg;
	bench_pin(1);
	for (uint64_t i = 0; !__atomic_load_n(&g->stop, __ATOMIC_ACQUIRE); i++) {
		ferry_transport_pg_poll(g->pg, 64);
		if ((i & 63) == 0)
			ferry_transport_poll(g->t, 16);
	}
	return NULL;
}

void bench_nvmf_tgt_start(struct bench_nvmf_tgt *g, const char *nqn)
{
	bench_nvmf_tgt_start_opts(g, nqn, NULL);
}

void bench_nvmf_tgt_start_opts(struct bench_nvmf_tgt *g, const char *nqn,
			       const struct bench_nvmf_tgt_opts *o)
{
	static const struct bench_nvmf_tgt_opts dflt = {0};
	if (!o)
		o = &dflt;
	const char *trtype = o->trtype ? o->trtype : "tcp";
	const char *listen = o->listen ? o->listen : "127.0.0.1:0";
	int rdma = !strcmp(trtype, "rdma");
	if (!rdma && strcmp(trtype, "tcp"))
		bench_fail("nvmf: no target on transport %s", trtype);
	memset(g, 0, sizeof(*g));
	snprintf(g->nqn, sizeof(g->nqn), "%s", nqn);
	struct ferry_bdev_malloc_opts mo = {.size = sizeof(mo),
					    .name = "bench_nvmf_ns",
					    .block_size = BENCH_NVMF_BS,
					    .num_blocks = BENCH_NVMF_NS_BLOCKS};
	struct ferry_nvme_subsystem_opts so = {.size = sizeof(so),
					       .nqn = g->nqn,
					       .serial = o->serial ? o->serial : "FERRYBENCH"};
	struct ferry_nvme_ns_opts no = {.size = sizeof(no)};
	struct ferry_transport_opts to = {
		.size = sizeof(to),
		.device = o->device,
		.args = o->args ? o->args : "max_queue_depth=128,max_io_size=131072,idle_us=0"};
	if (ferry_bdev_malloc_create(&mo, &g->ns) || ferry_nvme_subsystem_create(&so, &g->subsys))
		bench_fail("nvmf: target setup: %s", ferry_last_error());
	no.bdev = g->ns;
	if (ferry_nvme_subsystem_add_ns(g->subsys, &no, NULL) ||
	    ferry_transport_create(trtype, &to, &g->t) || ferry_transport_pg_create(g->t, &g->pg) ||
	    ferry_transport_listen(g->t, g->subsys, listen) ||
	    (rdma ? ferry_rdma_transport_get_listen_addr(g->t, 0, g->addr, sizeof(g->addr))
		  : ferry_tcp_transport_get_listen_addr(g->t, 0, g->addr, sizeof(g->addr))))
		bench_fail("nvmf: %s target setup on %s: %s", trtype, listen, ferry_last_error());
	if (pthread_create(&g->th, NULL, tgt_thread, g))
		bench_fail("nvmf: cannot start the poll-group thread");
}

void bench_nvmf_snap(void *ctx, int after)
{
	struct bench_nvmf_snaps *x = ctx;
	x->s[after] = (struct ferry_bdev_nvmf_stats){.size = sizeof(x->s[after])};
	if (ferry_bdev_nvmf_get_stats(x->b, &x->s[after]))
		bench_fail("nvmf: reading the nvmf bdev's counters: %s", ferry_last_error());
}

void bench_nvmf_tgt_stop(struct bench_nvmf_tgt *g)
{
	__atomic_store_n(&g->stop, 1, __ATOMIC_RELEASE);
	pthread_join(g->th, NULL);
	ferry_transport_destroy(g->t);
	ferry_nvme_subsystem_destroy(g->subsys);
	ferry_bdev_destroy(g->ns);
}

/* ---- the initiator's workload ------------------------------------------------------------ */

struct run;

struct slot {
	struct ferry_bdev_io io;
	struct iovec iov;
	double t0;
	struct run *run;
};

struct run {
	struct ferry_bdev *bdev;
	int write, random;
	uint32_t blocks; /* per I/O */
	uint64_t next_lba, rng;
	double *lat;
	uint64_t nlat, maxlat, done, errors;
	int stopping;
	uint32_t inflight;
};

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void io_done(struct ferry_bdev_io *io, void *arg);

static int submit(struct slot *sl)
{
	struct run *r = sl->run;
	uint64_t span = BENCH_NVMF_NS_BLOCKS / r->blocks;
	uint64_t lba = r->random ? (rnd(&r->rng) % span) * r->blocks : r->next_lba;
	if (!r->random)
		r->next_lba = (r->next_lba + r->blocks) % (span * r->blocks);
	memset(&sl->io, 0, sizeof(sl->io));
	sl->io.type = r->write ? FERRY_BDEV_IO_WRITE : FERRY_BDEV_IO_READ;
	sl->io.offset_blocks = lba;
	sl->io.num_blocks = r->blocks;
	sl->io.mem.iov = &sl->iov;
	sl->io.mem.iovcnt = 1;
	sl->io.cb = io_done;
	sl->io.cb_arg = sl;
	sl->t0 = bench_now();
	int rc = ferry_bdev_submit(r->bdev, &sl->io);
	if (rc == 0)
		r->inflight++;
	return rc;
}

static void io_done(struct ferry_bdev_io *io, void *arg)
{
	struct slot *sl = arg;
	struct run *r = sl->run;
	r->inflight--;
	if (io->status)
		r->errors++;
	r->done++;
	if (r->nlat < r->maxlat)
		r->lat[r->nlat++] = bench_now() - sl->t0;
	if (!r->stopping && submit(sl))
		r->errors++;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

void bench_nvmf_measure(struct bench_nvmf_tgt *g, struct ferry_bdev *b,
			const struct bench_nvmf_load *l, const char *what,
			void (*snap)(void *ctx, int after), void *ctx,
			struct bench_nvmf_result *res)
{
	struct run r = {.bdev = b,
			.write = l->write,
			.random = l->random,
			.blocks = l->io_bytes / BENCH_NVMF_BS,
			.rng = 0x9e3779b97f4a7c15ull};
	struct slot *sl = calloc(l->qd, sizeof(*sl));
	char *mem = aligned_alloc(4096, (size_t)l->qd * l->io_bytes);
	double secs = bench_opts.seconds * 5 < 1 ? 1 : bench_opts.seconds * 5;
	r.maxlat = 4u << 20;
	r.lat = malloc(r.maxlat * sizeof(double));
	if (!sl || !mem || !r.lat)
		bench_fail("nvmf: out of memory");
	memset(mem, 0x5a, (size_t)l->qd * l->io_bytes);
	for (uint32_t i = 0; i < l->qd; i++) {
		sl[i].iov.iov_base = mem + (size_t)i * l->io_bytes;
		sl[i].iov.iov_len = l->io_bytes;
		sl[i].run = &r;
	}
	/* Warm-up (a tenth of the phase), then the measured phase. */
	for (int phase = 0; phase < 2; phase++) {
		double len = phase ? secs : secs / 10;
		r.done = r.nlat = r.errors = 0;
		r.stopping = 0;
		if (phase && snap)
			snap(ctx, 0);
		double c0 = bench_thread_cpu_s(g->th), s0 = bench_self_cpu_s(), w0 = bench_now();
		for (uint32_t i = 0; i < l->qd; i++)
			if (submit(&sl[i]))
				bench_fail("nvmf: %s: submit failed: %s", what, ferry_last_error());
		while (bench_now() - w0 < len)
			ferry_bdev_poll(b, 64);
		r.stopping = 1;
		double w1 = bench_now(), c1 = bench_thread_cpu_s(g->th), s1 = bench_self_cpu_s();
		for (double t = bench_now(); r.inflight && bench_now() - t < 10;)
			ferry_bdev_poll(b, 64);
		if (r.inflight)
			bench_fail("nvmf: %s: %u I/Os did not complete", what, r.inflight);
		if (r.errors)
			bench_fail("nvmf: %s: %llu I/Os failed", what,
				   (unsigned long long)r.errors);
		if (!phase)
			continue;
		if (snap)
			snap(ctx, 1);
		double dt = w1 - w0;
		qsort(r.lat, r.nlat, sizeof(double), cmp_d);
		*res = (struct bench_nvmf_result){
			.secs = dt,
			.ios = (double)r.done,
			.iops = (double)r.done / dt,
			.mibs = (double)r.done / dt * l->io_bytes / 1048576.0,
			.p50_us = r.nlat ? r.lat[r.nlat / 2] * 1e6 : 0,
			.p99_us = r.nlat ? r.lat[(size_t)((double)r.nlat * 0.99)] * 1e6 : 0,
			.tgt_cpu_s = c1 - c0,
			.self_cpu_s = s1 - s0,
		};
	}
	free(r.lat);
	free(mem);
	free(sl);
}

void bench_nvmf_fill(struct bench_nvmf_tgt *g)
{
	struct ferry_bdev_nvmf_opts no = {.size = sizeof(no),
					  .name = "bench_nvmf_fill",
					  .addr = g->addr,
					  .subnqn = g->nqn,
					  .queue_depth = 32};
	struct ferry_bdev *b;
	if (ferry_bdev_nvmf_create(&no, &b))
		bench_fail("nvmf: connecting the initiator: %s", ferry_last_error());
	struct run r = {.bdev = b, .write = 1, .random = 0, .blocks = 32};
	struct slot sl[16];
	char *mem = aligned_alloc(4096, 16 * 32 * BENCH_NVMF_BS);
	if (!mem)
		bench_fail("nvmf: out of memory");
	memset(mem, 0xc3, 16 * 32 * BENCH_NVMF_BS);
	for (int i = 0; i < 16; i++) {
		sl[i].iov.iov_base = mem + (size_t)i * 32 * BENCH_NVMF_BS;
		sl[i].iov.iov_len = 32 * BENCH_NVMF_BS;
		sl[i].run = &r;
		if (submit(&sl[i]))
			bench_fail("nvmf: submit failed: %s", ferry_last_error());
	}
	while (r.done + 16 < BENCH_NVMF_NS_BLOCKS / 32)
		ferry_bdev_poll(b, 64);
	r.stopping = 1;
	for (double t = bench_now(); r.inflight && bench_now() - t < 10;)
		ferry_bdev_poll(b, 64);
	if (r.errors || r.inflight)
		bench_fail("nvmf: filling the namespace failed");
	free(mem);
	ferry_bdev_destroy(b);
}
