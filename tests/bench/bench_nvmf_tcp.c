/*
 * ferry-bench suite "nvmf-tcp": Ferry's NVMe/TCP target ("tcp" transport, one busy-polling
 * poll group (idle_us=0) on its own thread pinned to CPU 1, a malloc namespace of 4 KiB
 * blocks) and Ferry's initiator (the nvmf bdev, driven from the main thread pinned to CPU 0)
 * over 127.0.0.1, with the raw loopback TCP stream of the same bytes (bench_tcp_raw.c, both
 * ends busy-polling) as the ceiling, in one run.
 *
 * Cases: 4 KiB random read and write at queue depth 1 and 32, 128 KiB sequential read at QD 32
 * and write at QD 8 (the SPDK anchor's shapes), each without and with header + data digests.
 * The raw stream is measured with 4 KiB and 128 KiB writes, blocking and busy-polled; the
 * ceiling quoted with every case is the busy-polled 128 KiB stream (bytes per second).
 * Per case: IOPS, MiB/s, p50/p99 latency (submission to completion callback), the target's
 * CPU time per I/O (CLOCK of the poll-group thread: it busy-polls, so this is the core's time
 * divided by the I/Os it served), rx_copies_per_byte (payload bytes copied in userspace per
 * payload byte received: the target's for writes, the initiator's for reads; 0 when every byte
 * was received straight into its destination), the raw TCP stream's MiB/s and the ratio, and
 * the SPDK v26.05 figure of the issue for the same shape on a machine of this kind.
 * A measured phase lasts max(1 s, 5 x --time); reads run on a namespace written first.
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
#include <ferry/tcp_transport.h>
#include <ferry/transport.h>
#include "bench.h"
#include "bench_tcp_raw.h"

#define NS_BLOCKS 65536u /* 256 MiB of 4 KiB blocks */
#define BS 4096u
#define NQN "nqn.2026-12.io.ferry:bench-nvmf-tcp"

struct tgt {
	struct ferry_transport *t;
	struct ferry_transport_pg *pg;
	struct ferry_nvme_subsystem *subsys;
	struct ferry_bdev *ns;
	pthread_t th;
	volatile int stop;
	char addr[64];
};

static void pin(int cpu)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n <= 1)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu % n, &set);
	(void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static double thread_cpu_s(pthread_t th)
{
	clockid_t cid;
	struct timespec ts;
	if (pthread_getcpuclockid(th, &cid) || clock_gettime(cid, &ts))
		return 0;
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The target's poll-group thread: it also accepts connections (ferry_transport_poll). */
static void *tgt_thread(void *arg)
{
	struct tgt *g = arg;
	pin(1);
	for (uint64_t i = 0; !__atomic_load_n(&g->stop, __ATOMIC_ACQUIRE); i++) {
		ferry_transport_pg_poll(g->pg, 64);
		if ((i & 63) == 0)
			ferry_transport_poll(g->t, 16);
	}
	return NULL;
}

static void tgt_start(struct tgt *g)
{
	memset(g, 0, sizeof(*g));
	struct ferry_bdev_malloc_opts mo = {.size = sizeof(mo),
					    .name = "bench_nvmf_ns",
					    .block_size = BS,
					    .num_blocks = NS_BLOCKS};
	struct ferry_nvme_subsystem_opts so = {.size = sizeof(so), .nqn = NQN, .serial = "FERRYBENCH"};
	struct ferry_nvme_ns_opts no = {.size = sizeof(no)};
	struct ferry_transport_opts to = {.size = sizeof(to),
					  .args = "max_queue_depth=128,max_io_size=131072,idle_us=0"};
	if (ferry_bdev_malloc_create(&mo, &g->ns) || ferry_nvme_subsystem_create(&so, &g->subsys))
		bench_fail("nvmf-tcp: target setup: %s", ferry_last_error());
	no.bdev = g->ns;
	if (ferry_nvme_subsystem_add_ns(g->subsys, &no, NULL) ||
	    ferry_transport_create("tcp", &to, &g->t) ||
	    ferry_transport_pg_create(g->t, &g->pg) ||
	    ferry_transport_listen(g->t, g->subsys, "127.0.0.1:0") ||
	    ferry_tcp_transport_get_listen_addr(g->t, 0, g->addr, sizeof(g->addr)))
		bench_fail("nvmf-tcp: target setup: %s", ferry_last_error());
	if (pthread_create(&g->th, NULL, tgt_thread, g))
		bench_fail("nvmf-tcp: cannot start the poll-group thread");
}

static void tgt_stop(struct tgt *g)
{
	__atomic_store_n(&g->stop, 1, __ATOMIC_RELEASE);
	pthread_join(g->th, NULL);
	ferry_transport_destroy(g->t);
	ferry_nvme_subsystem_destroy(g->subsys);
	ferry_bdev_destroy(g->ns);
}

struct rx_sum {
	uint64_t placed, copied;
};

static void sum_conn(void *ctx, const struct ferry_tcp_conn_stats *st)
{
	struct rx_sum *s = ctx;
	s->placed += st->rx_placed;
	s->copied += st->rx_copied;
}

/* ---- the initiator's workload ------------------------------------------------------------ */

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
	uint64_t span = NS_BLOCKS / r->blocks;
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

struct nvmf_case {
	const char *name;
	int write, random;
	uint32_t io_bytes, qd;
	double spdk; /* the anchor: IOPS for 4 KiB, MB/s for 128 KiB (0: none quoted) */
};

static const struct nvmf_case cases[] = {
	{"randread-4k-qd1", 0, 1, 4096, 1, 74000},
	{"randread-4k-qd32", 0, 1, 4096, 32, 465000},
	{"randwrite-4k-qd1", 1, 1, 4096, 1, 0},
	{"randwrite-4k-qd32", 1, 1, 4096, 32, 426000},
	{"read-128k-qd32", 0, 0, 131072, 32, 4100},
	{"write-128k-qd8", 1, 0, 131072, 8, 5700},
};

/* The SPDK figures with digests on (the issue quotes the low end of each range). */
static double spdk_dgst(const struct nvmf_case *k)
{
	if (!strcmp(k->name, "randread-4k-qd32"))
		return 356000;
	if (!strcmp(k->name, "read-128k-qd32"))
		return 2500;
	return 0;
}

static void run_case(struct tgt *g, const struct nvmf_case *k, int dgst, double raw_mibs,
		     int json)
{
	char cname[64];
	snprintf(cname, sizeof(cname), "%s%s", k->name, dgst ? "-dgst" : "");
	if (!bench_selected(cname))
		return;
	struct ferry_bdev_nvmf_opts no = {.size = sizeof(no),
					  .name = "bench_nvmf0",
					  .addr = g->addr,
					  .subnqn = NQN,
					  .num_io_queues = 1,
					  .queue_depth = (uint16_t)(k->qd < 32 ? 32 : k->qd),
					  .hdgst = (uint8_t)dgst,
					  .ddgst = (uint8_t)dgst};
	struct ferry_bdev *b;
	if (ferry_bdev_nvmf_create(&no, &b))
		bench_fail("nvmf-tcp: connecting the initiator: %s", ferry_last_error());
	struct run r = {.bdev = b, .write = k->write, .random = k->random,
			.blocks = k->io_bytes / BS, .rng = 0x9e3779b97f4a7c15ull};
	struct slot *sl = calloc(k->qd, sizeof(*sl));
	char *mem = aligned_alloc(4096, (size_t)k->qd * k->io_bytes);
	double secs = bench_opts.seconds * 5 < 1 ? 1 : bench_opts.seconds * 5;
	r.maxlat = 4u << 20;
	r.lat = malloc(r.maxlat * sizeof(double));
	if (!sl || !mem || !r.lat)
		bench_fail("nvmf-tcp: out of memory");
	memset(mem, 0x5a, (size_t)k->qd * k->io_bytes);
	for (uint32_t i = 0; i < k->qd; i++) {
		sl[i].iov.iov_base = mem + (size_t)i * k->io_bytes;
		sl[i].iov.iov_len = k->io_bytes;
		sl[i].run = &r;
	}
	/* Warm-up (a tenth of the phase), then the measured phase. */
	for (int phase = 0; phase < 2; phase++) {
		double len = phase ? secs : secs / 10;
		r.done = r.nlat = r.errors = 0;
		r.stopping = 0;
		struct rx_sum t0 = {0}, t1 = {0};
		struct ferry_bdev_nvmf_stats s0 = {.size = sizeof(s0)}, s1 = {.size = sizeof(s1)};
		ferry_tcp_transport_get_stats(g->t, sum_conn, &t0);
		ferry_bdev_nvmf_get_stats(b, &s0);
		double c0 = thread_cpu_s(g->th), w0 = bench_now();
		for (uint32_t i = 0; i < k->qd; i++)
			if (submit(&sl[i]))
				bench_fail("nvmf-tcp: submit failed: %s", ferry_last_error());
		while (bench_now() - w0 < len)
			ferry_bdev_poll(b, 64);
		r.stopping = 1;
		double w1 = bench_now(), c1 = thread_cpu_s(g->th);
		for (double t = bench_now(); r.inflight && bench_now() - t < 10;)
			ferry_bdev_poll(b, 64);
		if (r.inflight)
			bench_fail("nvmf-tcp: %u I/Os did not complete", r.inflight);
		if (r.errors)
			bench_fail("nvmf-tcp: %s: %llu I/Os failed", cname,
				   (unsigned long long)r.errors);
		if (!phase)
			continue;
		ferry_tcp_transport_get_stats(g->t, sum_conn, &t1);
		ferry_bdev_nvmf_get_stats(b, &s1);
		double dt = w1 - w0, ios = (double)r.done;
		double iops = ios / dt, mibs = iops * k->io_bytes / 1048576.0;
		qsort(r.lat, r.nlat, sizeof(double), cmp_d);
		double p50 = r.nlat ? r.lat[r.nlat / 2] * 1e6 : 0;
		double p99 = r.nlat ? r.lat[(size_t)((double)r.nlat * 0.99)] * 1e6 : 0;
		double placed, copied;
		if (k->write) {
			placed = (double)(t1.placed - t0.placed);
			copied = (double)(t1.copied - t0.copied);
		} else {
			placed = (double)(s1.rx_placed_bytes - s0.rx_placed_bytes);
			copied = (double)(s1.rx_copied_bytes - s0.rx_copied_bytes);
		}
		double spdk = dgst ? spdk_dgst(k) : k->spdk;
		struct bench_kv kv[] = {
			{"iops", NULL, iops},
			{"mib_s", NULL, mibs},
			{"p50_us", NULL, p50},
			{"p99_us", NULL, p99},
			{"tgt_cpu_us_per_io", NULL, ios > 0 ? (c1 - c0) * 1e6 / ios : 0},
			{"rx_copies_per_byte", NULL, placed + copied > 0 ? copied / (placed + copied) : 0},
			{"raw_tcp_mib_s", NULL, raw_mibs},
			{"ratio_vs_raw_tcp", NULL, raw_mibs > 0 ? mibs / raw_mibs : 0},
			{"spdk_anchor", NULL, spdk},
			{"spdk_unit", k->io_bytes == 4096 ? "IOPS" : "MB/s", 0},
			{"ratio_vs_spdk", NULL,
			 spdk > 0 ? (k->io_bytes == 4096 ? iops : mibs * 1.048576) / spdk : 0},
		};
		bench_emit_fields("nvmf-tcp", cname, kv, sizeof(kv) / sizeof(kv[0]));
		(void)json;
	}
	free(r.lat);
	free(mem);
	free(sl);
	if (ferry_bdev_destroy(b))
		bench_fail("nvmf-tcp: destroying the initiator: %s", ferry_last_error());
}

/* Fill the namespace so that reads return written data (outside the measurement). */
static void fill(struct tgt *g)
{
	struct ferry_bdev_nvmf_opts no = {.size = sizeof(no),
					  .name = "bench_nvmf_fill",
					  .addr = g->addr,
					  .subnqn = NQN,
					  .queue_depth = 32};
	struct ferry_bdev *b;
	if (ferry_bdev_nvmf_create(&no, &b))
		bench_fail("nvmf-tcp: connecting the initiator: %s", ferry_last_error());
	struct run r = {.bdev = b, .write = 1, .random = 0, .blocks = 32};
	struct slot sl[16];
	char *mem = aligned_alloc(4096, 16 * 32 * BS);
	if (!mem)
		bench_fail("nvmf-tcp: out of memory");
	memset(mem, 0xc3, 16 * 32 * BS);
	for (int i = 0; i < 16; i++) {
		sl[i].iov.iov_base = mem + (size_t)i * 32 * BS;
		sl[i].iov.iov_len = 32 * BS;
		sl[i].run = &r;
		if (submit(&sl[i]))
			bench_fail("nvmf-tcp: submit failed: %s", ferry_last_error());
	}
	while (r.done + 16 < NS_BLOCKS / 32)
		ferry_bdev_poll(b, 64);
	r.stopping = 1;
	for (double t = bench_now(); r.inflight && bench_now() - t < 10;)
		ferry_bdev_poll(b, 64);
	if (r.errors || r.inflight)
		bench_fail("nvmf-tcp: filling the namespace failed");
	free(mem);
	ferry_bdev_destroy(b);
}

void bench_suite_nvmf_tcp(int json)
{
	/* The ceiling first, while no poll-group thread spins on the receiver's core: the same
	 * bytes as one busy-polled raw stream, one per message size. */
	double raw[2];
	double rsecs = bench_opts.seconds * 5 < 1 ? 1 : bench_opts.seconds * 5;
	const size_t msg[2] = {4096, 131072};
	for (int i = 0; i < 2; i++) {
		raw[i] = bench_tcp_raw_gbps(msg[i], 1, rsecs, 0, 1) * 1e9 / 1048576.0;
		double blk = bench_tcp_raw_gbps(msg[i], 0, rsecs, 0, 1) * 1e9 / 1048576.0;
		struct bench_kv kv[] = {{"busy_poll_mib_s", NULL, raw[i]},
					{"blocking_mib_s", NULL, blk},
					{"msg_bytes", NULL, (double)msg[i]}};
		bench_emit_fields("nvmf-tcp", i ? "raw-tcp-128k" : "raw-tcp-4k", kv, 3);
	}
	struct tgt g;
	tgt_start(&g);
	pin(0);
	fill(&g);
	/* The ceiling of every case is the stream of 128 KiB writes (a 4 KiB-message stream
	 * pays one system call per 4 KiB, which NVMe/TCP's batched sends do not). */
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct nvmf_case *k = &cases[i];
		double r = raw[1];
		run_case(&g, k, 0, r, json);
		run_case(&g, k, 1, r, json);
	}
	tgt_stop(&g);
}
