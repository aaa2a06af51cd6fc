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
#include <stdio.h>
#include <string.h>
#include <ferry/bdev.h>
#include <ferry/bdev_nvmf.h>
#include <ferry/ferry.h>
#include <ferry/tcp_transport.h>
#include <ferry/transport.h>
#include "bench.h"
#include "bench_nvmf.h"
#include "bench_tcp_raw.h"

#define NQN "nqn.2026-12.io.ferry:bench-nvmf-tcp"

struct rx_sum {
	uint64_t placed, copied;
};

static void sum_conn(void *ctx, const struct ferry_tcp_conn_stats *st)
{
	struct rx_sum *s = ctx;
	s->placed += st->rx_placed;
	s->copied += st->rx_copied;
}

/* Counters differenced around the measured phase. */
struct snaps {
	struct bench_nvmf_tgt *g;
	struct ferry_bdev *b;
	struct rx_sum t[2];
	struct ferry_bdev_nvmf_stats s[2];
};

static void snap(void *ctx, int after)
{
	struct snaps *x = ctx;
	x->t[after] = (struct rx_sum){0};
	x->s[after] = (struct ferry_bdev_nvmf_stats){.size = sizeof(x->s[after])};
	ferry_tcp_transport_get_stats(x->g->t, sum_conn, &x->t[after]);
	ferry_bdev_nvmf_get_stats(x->b, &x->s[after]);
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

static void run_case(struct bench_nvmf_tgt *g, const struct nvmf_case *k, int dgst,
		     double raw_mibs, int json)
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
	struct bench_nvmf_load l = {.write = k->write,
				    .random = k->random,
				    .io_bytes = k->io_bytes,
				    .qd = k->qd};
	struct snaps x = {.g = g, .b = b};
	struct bench_nvmf_result res;
	bench_nvmf_measure(g, b, &l, cname, snap, &x, &res);
	double ios = res.ios, iops = res.iops, mibs = res.mibs;
	double placed, copied;
	if (k->write) {
		placed = (double)(x.t[1].placed - x.t[0].placed);
		copied = (double)(x.t[1].copied - x.t[0].copied);
	} else {
		placed = (double)(x.s[1].rx_placed_bytes - x.s[0].rx_placed_bytes);
		copied = (double)(x.s[1].rx_copied_bytes - x.s[0].rx_copied_bytes);
	}
	double spdk = dgst ? spdk_dgst(k) : k->spdk;
	struct bench_kv kv[] = {
		{"iops", NULL, iops},
		{"mib_s", NULL, mibs},
		{"p50_us", NULL, res.p50_us},
		{"p99_us", NULL, res.p99_us},
		{"tgt_cpu_us_per_io", NULL, ios > 0 ? res.tgt_cpu_s * 1e6 / ios : 0},
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
	if (ferry_bdev_destroy(b))
		bench_fail("nvmf-tcp: destroying the initiator: %s", ferry_last_error());
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
	struct bench_nvmf_tgt g;
	bench_nvmf_tgt_start(&g, NQN);
	bench_pin(0);
	bench_nvmf_fill(&g);
	/* The ceiling of every case is the stream of 128 KiB writes (a 4 KiB-message stream
	 * pays one system call per 4 KiB, which NVMe/TCP's batched sends do not). */
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct nvmf_case *k = &cases[i];
		double r = raw[1];
		run_case(&g, k, 0, r, json);
		run_case(&g, k, 1, r, json);
	}
	bench_nvmf_tgt_stop(&g);
}
