/*
 * ferry-bench suite "nvmf-tcp-offload": what the NVMe/TCP receive offloads (direct data
 * placement + data-digest verification by the NIC, ferry/hal/nic.h) save the initiator.
 * Ferry's NVMe/TCP target (tcp transport, malloc namespace, its own busy-polling thread on
 * CPU 1; bench_nvmf.c) and Ferry's initiator (the nvmf bdev, on CPU 0) over 127.0.0.1 with
 * header and data digests on, reads only:
 *
 *   read-4k-qd32    4 KiB random reads at queue depth 32
 *   read-128k-qd8   128 KiB sequential reads at queue depth 8
 *
 * each through the tcp backend (the reference: zero-copy receive into the I/O's iovecs,
 * digests in software) and through the mock backend's offload NIC at placement and CRC hit
 * rates of 100 %, 90 % and 0 % (device args place_miss_ppm = crc_miss_ppm = 0, 100000,
 * 1000000), in one run.
 *
 * Per case: IOPS, MiB/s, p50/p99 latency, and per payload byte read: sw_copy (bytes the host
 * CPU copied: every payload byte the NIC did not place, whose copy from the socket a kernel
 * (or here the NIC model) does, plus the bytes copied again out of the receive buffer:
 * (bytes_read - ddp_placed_bytes + rx_copied_bytes) / bytes_read; 1 on the tcp backend, 0 when
 * the NIC placed everything), sw_crc (sw_crc_bytes / bytes_read), and the nvmf bdev's raw
 * offload counters (ddp_placed, ddp_fallback, nic_crc, rx_copied per byte); ratio_vs_tcp is
 * the IOPS against the tcp backend of the same shape, beside the RFC's measured read gains
 * (+11 % at 4 KiB, +52 % at 128 KiB: rfc_ratio 1.11 / 1.52).
 *
 * The mock NIC is a model running on the CPU: inside recvv() on the initiator's thread it reads
 * the kernel socket into its packet ring, parses PDUs, memcpy()s placed payload into the
 * destination and computes CRC32C. Its IOPS therefore include the model's own work and are
 * below what an offload NIC gives; the meaningful figures are the per-byte software counters.
 * As an estimate of "offload at zero cost", model_us_per_io is what the model's placement and
 * CRC cost at this machine's memcpy / ferry_crc32c() rates (measured here, 16 KiB chunks):
 * 2 x placed bytes (the model's ring -> destination copy, and the socket -> ring copy a real
 * NIC's DMA replaces) / memcpy rate + NIC-verified bytes / CRC rate, and est_zero_cost_ratio
 * is ios / (wall - model time) against the tcp backend: valid while the initiator's core is the
 * bottleneck (host_cpu_us_per_io, the initiator thread's CPU time per I/O, near the wall time
 * per I/O; both sides busy-poll).
 * A measured phase lasts max(1 s, 5 x --time); each case runs in 3 rounds (every NIC of a
 * shape in turn, round after round) and its best round (IOPS) is printed, with that round's
 * counters.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ferry/bdev.h>
#include <ferry/bdev_nvmf.h>
#include <ferry/crc.h>
#include <ferry/device.h>
#include <ferry/ferry.h>
#include "bench.h"
#include "bench_nvmf.h"

#define NQN "nqn.2026-12.io.ferry:bench-nvmf-tcp-offload"
#define SUITE "nvmf-tcp-offload"

struct shape {
	const char *name;
	struct bench_nvmf_load load;
	double rfc_ratio; /* the RFC's read throughput with offload / without */
};

static const struct shape shapes[] = {
	{"read-4k-qd32", {.write = 0, .random = 1, .io_bytes = 4096, .qd = 32}, 1.11},
	{"read-128k-qd8", {.write = 0, .random = 0, .io_bytes = 131072, .qd = 8}, 1.52},
};

/* The NICs of one shape: the tcp backend first (the reference), then the offload model. */
struct nic_case {
	const char *name;
	int mock;          /* the mock offload NIC (else the tcp backend) */
	uint32_t miss_ppm; /* place_miss_ppm = crc_miss_ppm */
	double hit_pct;
};

static const struct nic_case nics[] = {
	{"tcp", 0, 0, 0},
	{"offload-hit100", 1, 0, 100},
	{"offload-hit90", 1, 100000, 90},
	{"offload-hit0", 1, 1000000, 0},
};

/* ---- the NIC model's cost at this machine's rates ---------------------------------------- */

#define CHUNK 16384u

struct rate_arg {
	char *src, *dst;
	uint32_t sink;
};

static int do_copy(void *p)
{
	struct rate_arg *a = p;
	memcpy(a->dst, a->src, CHUNK);
	__asm__ volatile("" : : "r"(a->dst) : "memory");
	return 0;
}

static int do_crc(void *p)
{
	struct rate_arg *a = p;
	a->sink ^= ferry_crc32c(0, a->src, CHUNK);
	return 0;
}

/* Bytes per second of memcpy() and ferry_crc32c() over 16 KiB chunks (the model's packets). */
static void model_rates(double *copy_bps, double *crc_bps)
{
	struct rate_arg a = {.src = malloc(CHUNK), .dst = malloc(CHUNK)};
	if (!a.src || !a.dst)
		bench_fail(SUITE ": out of memory");
	memset(a.src, 0x3c, CHUNK);
	memset(a.dst, 0, CHUNK);
	*copy_bps = bench_rate(do_copy, &a, CHUNK, NULL) * 1e9;
	*crc_bps = bench_rate(do_crc, &a, CHUNK, NULL) * 1e9;
	free(a.src);
	free(a.dst);
}

/* ---- one case ---------------------------------------------------------------------------- */

#define ROUNDS 3
#define NNICS (sizeof(nics) / sizeof(nics[0]))

/* measure() differences the counters as an array: a size_t, then only uint64_t. */
_Static_assert((sizeof(struct ferry_bdev_nvmf_stats) - sizeof(size_t)) % sizeof(uint64_t) == 0,
	       "ferry_bdev_nvmf_stats: counters after size are uint64_t");

/* One measured round of one case. */
struct meas {
	int ran;
	struct bench_nvmf_result res;
	struct ferry_bdev_nvmf_stats d; /* counters over the measured phase (differences) */
};

/* Measure one round of @p n on @p sh into @p m (m->ran 0: no offload NIC, skipped). */
static void measure(struct bench_nvmf_tgt *g, const struct shape *sh, const struct nic_case *n,
		    struct meas *m)
{
	char cname[64], args[160];
	snprintf(cname, sizeof(cname), "%s-dgst/%s", sh->name, n->name);
	memset(m, 0, sizeof(*m));
	struct ferry_device *dev = NULL;
	if (n->mock) {
		/* A fresh device per round: its fault model is seeded and starts from zero. */
		snprintf(args, sizeof(args),
			 "functions=nvme:nic,place_miss_ppm=%u,crc_miss_ppm=%u,ddp_seed=1",
			 n->miss_ppm, n->miss_ppm);
		if (ferry_device_open("mock", args, &dev) ||
		    !(ferry_device_get_classes(dev) & FERRY_DEVICE_CLASS_NIC)) {
			ferry_device_close(dev);
			return;
		}
	}
	struct ferry_bdev_nvmf_opts no = {.size = sizeof(no),
					  .name = "bench_nvmf_ddp0",
					  .nic = dev,
					  .addr = g->addr,
					  .subnqn = g->nqn,
					  .num_io_queues = 1,
					  .queue_depth = (uint16_t)(sh->load.qd < 32 ? 32
										     : sh->load.qd),
					  .hdgst = 1,
					  .ddgst = 1};
	struct ferry_bdev *b;
	if (ferry_bdev_nvmf_create(&no, &b))
		bench_fail(SUITE ": %s: connecting the initiator: %s", cname, ferry_last_error());
	struct bench_nvmf_snaps x = {.b = b};
	bench_nvmf_measure(g, b, &sh->load, cname, bench_nvmf_snap, &x, &m->res);
	m->ran = 1;
	/* Every counter is a uint64_t after size: difference them all. */
	const uint64_t *p0 = (const uint64_t *)((const char *)&x.s[0] + sizeof(size_t));
	const uint64_t *p1 = (const uint64_t *)((const char *)&x.s[1] + sizeof(size_t));
	uint64_t *pd = (uint64_t *)((char *)&m->d + sizeof(size_t));
	size_t nf = (sizeof(m->d) - sizeof(size_t)) / sizeof(uint64_t);
	for (size_t i = 0; i < nf; i++)
		pd[i] = p1[i] - p0[i];
	m->d.ddp_queues = x.s[1].ddp_queues;
	if (m->d.bytes_read == 0 || m->res.ios <= 0)
		bench_fail(SUITE ": %s: no data read", cname);
	if (ferry_bdev_destroy(b))
		bench_fail(SUITE ": %s: destroying the initiator: %s", cname, ferry_last_error());
	ferry_device_close(dev);
}

/* IOPS with the NIC model's estimated placement and CRC time taken out (see the file
 * comment); the measured IOPS for the tcp backend. Also returns the model's seconds. */
static double est_iops(const struct meas *m, int mock, double copy_bps, double crc_bps,
		       double *model_s)
{
	double s = mock ? 2 * (double)m->d.ddp_placed_bytes / copy_bps +
				   (double)m->d.nic_crc_bytes / crc_bps
			: 0;
	if (s > 0.9 * m->res.secs)
		s = 0.9 * m->res.secs;
	*model_s = s;
	return m->res.ios / (m->res.secs - s);
}

static void emit(const struct shape *sh, const struct nic_case *n, const struct meas *m,
		 const struct meas *tcp, double copy_bps, double crc_bps)
{
	char cname[64];
	snprintf(cname, sizeof(cname), "%s-dgst/%s", sh->name, n->name);
	if (!m->ran) {
		struct bench_kv kv[] = {{"skipped", "the mock backend has no offload NIC", 0}};
		bench_emit_fields(SUITE, cname, kv, 1);
		return;
	}
	const struct ferry_bdev_nvmf_stats *d = &m->d;
	double bytes = (double)d->bytes_read, ios = m->res.ios;
	double placed = (double)d->ddp_placed_bytes;
	double model_s, tcp_model_s;
	double est = est_iops(m, n->mock, copy_bps, crc_bps, &model_s);
	double tcp_est = tcp && tcp->ran ? est_iops(tcp, 0, copy_bps, crc_bps, &tcp_model_s) : 0;
	double tcp_iops = tcp && tcp->ran ? tcp->res.iops : 0;
	struct bench_kv kv[] = {
		{"nic", n->mock ? "mock-offload" : "tcp", 0},
		{"hit_pct", NULL, n->mock ? n->hit_pct : -1},
		{"iops", NULL, m->res.iops},
		{"mib_s", NULL, m->res.mibs},
		{"p50_us", NULL, m->res.p50_us},
		{"p99_us", NULL, m->res.p99_us},
		{"sw_copy_per_byte", NULL, (bytes - placed + (double)d->rx_copied_bytes) / bytes},
		{"sw_crc_per_byte", NULL, (double)d->sw_crc_bytes / bytes},
		{"ddp_placed_per_byte", NULL, placed / bytes},
		{"ddp_fallback_per_byte", NULL, (double)d->ddp_fallback_bytes / bytes},
		{"nic_crc_per_byte", NULL, (double)d->nic_crc_bytes / bytes},
		{"rx_copied_per_byte", NULL, (double)d->rx_copied_bytes / bytes},
		{"ddp_queues", NULL, (double)d->ddp_queues},
		{"ddp_ios_per_io", NULL, (double)d->ddp_ios / ios},
		{"digest_errors", NULL, (double)d->digest_errors},
		{"ratio_vs_tcp", NULL, tcp_iops > 0 ? m->res.iops / tcp_iops : 0},
		{"rfc_ratio", NULL, sh->rfc_ratio},
		{"host_cpu_us_per_io", NULL, m->res.self_cpu_s * 1e6 / ios},
		{"wall_us_per_io", NULL, m->res.secs * 1e6 / ios},
		{"model_us_per_io", NULL, model_s * 1e6 / ios},
		{"est_zero_cost_ratio", NULL, tcp_est > 0 ? est / tcp_est : 0},
		{"rounds", NULL, ROUNDS},
		{"note", n->mock ? "iops include the NIC model's CPU work" : "reference", 0},
	};
	bench_emit_fields(SUITE, cname, kv, sizeof(kv) / sizeof(kv[0]));
}

/* Whether --case selects one of @p sh's cases. */
static int shape_selected(const struct shape *sh)
{
	for (size_t i = 0; i < sizeof(nics) / sizeof(nics[0]); i++) {
		char cname[96];
		snprintf(cname, sizeof(cname), "%s-dgst/%s", sh->name, nics[i].name);
		if (bench_selected(cname))
			return 1;
	}
	return 0;
}

void bench_suite_nvmf_tcp_offload(int json)
{
	(void)json;
	int any = 0;
	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++)
		any |= shape_selected(&shapes[s]);
	if (!any)
		return;
	double copy_bps, crc_bps;
	model_rates(&copy_bps, &crc_bps);
	/* The machine's load beside the figures: a shared two-core machine's other work shows in
	 * every case (the best of the rounds only partly hides it). */
	double load[1] = {-1};
	if (getloadavg(load, 1) != 1)
		load[0] = -1;
	struct bench_kv kv[] = {{"memcpy_gbps", NULL, copy_bps / 1e9},
				{"crc32c_gbps", NULL, crc_bps / 1e9},
				{"chunk_bytes", NULL, CHUNK},
				{"loadavg_1m", NULL, load[0]}};
	bench_emit_fields(SUITE, "model-rates", kv, 4);
	struct bench_nvmf_tgt g;
	bench_nvmf_tgt_start(&g, NQN);
	bench_pin(0);
	bench_nvmf_fill(&g);
	/* Rounds over every NIC of a shape in turn, the best round of each kept: the machine is
	 * shared, and a case measured once at a busy moment would read as a slower NIC. */
	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
		if (!shape_selected(&shapes[s]))
			continue;
		struct meas best[NNICS], m;
		memset(best, 0, sizeof(best));
		for (int r = 0; r < ROUNDS; r++) {
			for (size_t i = 0; i < NNICS; i++) {
				char cname[96];
				snprintf(cname, sizeof(cname), "%s-dgst/%s", shapes[s].name,
					 nics[i].name);
				/* The reference runs whenever one of its shape's cases does. */
				if (!bench_selected(cname) && nics[i].mock)
					continue;
				measure(&g, &shapes[s], &nics[i], &m);
				if (m.ran && (!best[i].ran || m.res.iops > best[i].res.iops))
					best[i] = m;
			}
		}
		for (size_t i = 0; i < NNICS; i++) {
			char cname[96];
			snprintf(cname, sizeof(cname), "%s-dgst/%s", shapes[s].name, nics[i].name);
			if (bench_selected(cname) || !nics[i].mock)
				emit(&shapes[s], &nics[i], &best[i], &best[0], copy_bps, crc_bps);
		}
	}
	bench_nvmf_tgt_stop(&g);
}
