/*
 * ferry-bench suite "rdma", NVMe-oF/RDMA cases: Ferry's target (the "rdma" transport, a
 * malloc namespace of 4 KiB blocks, one busy-polling poll group on a thread pinned to CPU 1)
 * and Ferry's initiator (the nvmf bdev, trtype "rdma", driven from the calling thread) on the
 * same RDMA NIC (rxe0, or mock RDMA with --nic mock), in one process.
 *
 * Cases:
 * - nvmf-4k-randread-qd32, nvmf-4k-randwrite-qd32: IOPS (and MiB/s, p50/p99 latency, the
 *   target's CPU time per I/O);
 * - nvmf-128k-read-qd32, nvmf-128k-write-qd32: MiB/s;
 *   each from local (system-domain) memory, the initiator's memory registered once;
 * - nvmf-direct-soc-bytes: 4 KiB random reads and writes at QD32 whose memory is host memory
 *   behind the mock device's "nvme" function (mapped at the same IOVAs in its "nic"
 *   function, the bdev's nic_domain): the RDMA-direct path. SoC bytes per I/O =
 *   staged_bytes / I/Os of the bdev's counters (goal 0), next to rdma_direct_ios and
 *   rdma_direct_bytes; every read checked against the pattern written.
 * The comparison with the kernel's nvmet-rdma (kernel host, fio) is measured by the guest
 * script tests/vm/t_bench_rdma.sh and printed next to these.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ferry/bdev.h>
#include <ferry/bdev_malloc.h>
#include <ferry/bdev_nvmf.h>
#include <ferry/ferry.h>
#include <ferry/mock.h>
#include <ferry/nvme.h>
#include <ferry/rdma_transport.h>
#include <ferry/transport.h>
#include "bench.h"
#include "bench_nvmf.h"
#include "bench_rdma.h"

#define SUITE "rdma"
#define NQN "nqn.2026-12.io.ferry:bench-rdma"

/* The target of bench_nvmf.h on the "rdma" transport of @p n (a free port on n->host). */
static void tgt_start(struct bench_nvmf_tgt *g, struct bench_rdma_nic *n)
{
	char addr[80];
	snprintf(addr, sizeof(addr), "%s:0", n->host);
	struct bench_nvmf_tgt_opts o = {
		.trtype = "rdma",
		.device = n->dev,
		.listen = addr,
		.args = "max_queue_depth=128,max_io_size=131072,idle_us=0,accel=0",
		.serial = "FERRYBENCHRDMA"};
	bench_nvmf_tgt_start_opts(g, NQN, &o);
}

static struct ferry_bdev *initiator(struct bench_nvmf_tgt *g, struct bench_rdma_nic *n,
				    const char *name, struct ferry_memdomain *nic_domain)
{
	struct ferry_bdev_nvmf_opts no = {.size = sizeof(no),
					  .name = name,
					  .nic = n->dev,
					  .trtype = "rdma",
					  .addr = g->addr,
					  .subnqn = g->nqn,
					  .num_io_queues = 1,
					  .queue_depth = 64,
					  .nic_domain = nic_domain};
	struct ferry_bdev *b;
	/* One retry, said out loud: a connect that fails on a device that just served another
	 * association is an initiator or backend bug to report, not a figure. */
	for (int attempt = 0;; attempt++) {
		if (ferry_bdev_nvmf_create(&no, &b) == 0)
			return b;
		if (attempt)
			bench_fail(SUITE ": connecting the rdma initiator to %s: %s", g->addr,
				   ferry_last_error());
		fprintf(stderr,
			"ferry-bench: " SUITE ": connecting %s failed (%s): retrying once\n", name,
			ferry_last_error());
	}
}

static const struct {
	const char *name;
	struct bench_nvmf_load load;
} shapes[] = {
	{"nvmf-4k-randread-qd32", {0, 1, 4096, 32}},
	{"nvmf-4k-randwrite-qd32", {1, 1, 4096, 32}},
	{"nvmf-128k-read-qd32", {0, 0, 131072, 32}},
	{"nvmf-128k-write-qd32", {1, 0, 131072, 32}},
};

/* ---- RDMA-direct: I/O memory in host memory behind the mock's "nvme" function ------------- */

#define DIRECT_QD 32u
#define DIRECT_BS 4096u
#define DIRECT_IOVA 0x100000ull

struct dslot {
	struct ferry_bdev_io io;
	struct iovec iov;
	uint8_t *host; /* this process's view of the slot's host RAM */
	uint64_t lba;
	uint32_t idx;
	uint8_t gen; /* a write: the generation of the pattern it writes */
	int busy, write;
	struct drun *r;
};

struct drun {
	struct ferry_bdev *b;
	struct ferry_memdomain *nvme;
	uint64_t done, errors, mismatches, rng;
	uint8_t *written; /* per LBA of the first DIRECT_SPAN: generation written (0: none) */
};

#define DIRECT_SPAN 4096u /* LBAs used (16 MiB): reads find what the run wrote */

static uint8_t pat(uint64_t lba, uint8_t gen, size_t i)
{
	return (uint8_t)(lba * 31 + gen * 7 + i * 13 + (i >> 8));
}

static void ddone(struct ferry_bdev_io *io, void *arg)
{
	struct dslot *s = arg;
	struct drun *r = s->r;
	s->busy = 0;
	r->done++;
	if (io->status) {
		r->errors++;
		return;
	}
	uint8_t gen = r->written[s->lba];
	if (s->write) {
		r->written[s->lba] = s->gen;
	} else if (gen) {
		for (size_t i = 0; i < DIRECT_BS; i++)
			if (s->host[i] != pat(s->lba, gen, i)) {
				r->mismatches++;
				break;
			}
	}
}

static uint64_t xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void dsubmit(struct dslot *s)
{
	struct drun *r = s->r;
	uint64_t v = xs(&r->rng);
	/* Reads and writes half and half; never two I/Os on one LBA at once (slot i owns the
	 * LBAs congruent to i). */
	s->lba = (v % (DIRECT_SPAN / DIRECT_QD)) * DIRECT_QD + s->idx;
	s->write = (v >> 32) & 1;
	if (s->write) {
		s->gen = r->written[s->lba] == 1 ? 2 : 1;
		for (size_t i = 0; i < DIRECT_BS; i++)
			s->host[i] = pat(s->lba, s->gen, i);
	} else {
		memset(s->host, 0xee, DIRECT_BS); /* a read that moved nothing is caught */
	}
	memset(&s->io, 0, sizeof(s->io));
	s->io.type = s->write ? FERRY_BDEV_IO_WRITE : FERRY_BDEV_IO_READ;
	s->io.offset_blocks = s->lba;
	s->io.num_blocks = 1;
	s->io.mem.domain = r->nvme;
	s->io.mem.iov = &s->iov;
	s->io.mem.iovcnt = 1;
	s->io.cb = ddone;
	s->io.cb_arg = s;
	s->busy = 1;
	if (ferry_bdev_submit(r->b, &s->io))
		bench_fail(SUITE ": direct: submit: %s", ferry_last_error());
}

/* The RDMA-direct case on @p n's device (it must be a mock device with "nvme" and "nic"
 * functions for the host memory; on rxe a separate mock device provides it). */
static void direct_case(struct bench_nvmf_tgt *g, struct bench_rdma_nic *n)
{
	const char *cname = "nvmf-direct-soc-bytes";
	if (!bench_selected(cname))
		return;
	struct ferry_device *mdev = n->mock ? n->dev : NULL;
	if (!mdev && ferry_device_open("mock", BENCH_RDMA_MOCK_ARGS, &mdev))
		bench_fail(SUITE ": %s: mock device: %s", cname, ferry_last_error());
	struct ferry_mock_host *h;
	if (ferry_mock_host_attach(mdev, &h))
		bench_fail(SUITE ": %s: attaching host memory: %s", cname, ferry_last_error());
	int fn_nvme = ferry_mock_host_fn_lookup(h, "nvme"),
	    fn_nic = ferry_mock_host_fn_lookup(h, "nic");
	uint64_t len = (uint64_t)DIRECT_QD * DIRECT_BS, hoff = 0x200000;
	if (fn_nvme < 0 || fn_nic < 0 ||
	    ferry_mock_host_iommu_map(h, (unsigned)fn_nvme, DIRECT_IOVA, hoff, len,
				      FERRY_MOCK_IOMMU_READ | FERRY_MOCK_IOMMU_WRITE) ||
	    ferry_mock_host_iommu_map(h, (unsigned)fn_nic, DIRECT_IOVA, hoff, len,
				      FERRY_MOCK_IOMMU_READ | FERRY_MOCK_IOMMU_WRITE))
		bench_fail(SUITE ": %s: mapping host memory: %s", cname, ferry_last_error());
	char dn[64], dc[64];
	snprintf(dn, sizeof(dn), "%s.nvme", ferry_device_get_name(mdev));
	snprintf(dc, sizeof(dc), "%s.nic", ferry_device_get_name(mdev));
	struct drun r = {.nvme = ferry_memdomain_lookup(dn), .rng = 0x2545f4914f6cdd1dull};
	struct ferry_memdomain *nic_dom = ferry_memdomain_lookup(dc);
	r.written = calloc(DIRECT_SPAN, 1);
	struct dslot *sl = calloc(DIRECT_QD, sizeof(*sl));
	if (!r.nvme || !nic_dom || !r.written || !sl)
		bench_fail(SUITE ": %s: no domains %s / %s, or out of memory", cname, dn, dc);
	r.b = initiator(g, n, "bench_rdma_direct", nic_dom);
	for (uint32_t i = 0; i < DIRECT_QD; i++) {
		sl[i].r = &r;
		sl[i].idx = i;
		sl[i].iov.iov_base = (void *)(uintptr_t)(DIRECT_IOVA + (uint64_t)i * DIRECT_BS);
		sl[i].iov.iov_len = DIRECT_BS;
		sl[i].host = ferry_mock_host_ptr(h, hoff + (uint64_t)i * DIRECT_BS, DIRECT_BS);
		if (!sl[i].host)
			bench_fail(SUITE ": %s: host memory pointer", cname);
	}
	struct ferry_bdev_nvmf_stats s0 = {.size = sizeof(s0)}, s1 = {.size = sizeof(s1)};
	ferry_bdev_nvmf_get_stats(r.b, &s0);
	double secs = bench_opts.seconds * 5 < 1 ? 1 : bench_opts.seconds * 5, t0 = bench_now();
	uint32_t busy;
	do {
		busy = 0;
		int stop = bench_now() - t0 >= secs;
		for (uint32_t i = 0; i < DIRECT_QD; i++) {
			if (!sl[i].busy && !stop)
				dsubmit(&sl[i]);
			busy += sl[i].busy ? 1u : 0u;
		}
		ferry_bdev_poll(r.b, 64);
		if (bench_now() - t0 > secs + 30)
			bench_fail(SUITE ": %s: %u I/Os did not complete", cname, busy);
	} while (busy);
	double dt = bench_now() - t0;
	ferry_bdev_nvmf_get_stats(r.b, &s1);
	if (r.errors || r.mismatches)
		bench_fail(SUITE ": %s: %llu I/O errors, %llu reads differ from what was written",
			   cname, (unsigned long long)r.errors, (unsigned long long)r.mismatches);
	double ios = (double)r.done;
#define D(f) ((double)(s1.f - s0.f))
	struct bench_kv kv[] = {
		{"nic", n->mock ? "mock" : n->info.name, 0},
		{"ios", NULL, ios},
		{"iops", NULL, ios / dt},
		{"soc_bytes_per_io", NULL, ios > 0 ? D(staged_bytes) / ios : 0},
		{"goal", NULL, 0},
		{"rdma_direct_ios", NULL, D(rdma_direct_ios)},
		{"rdma_staged_ios", NULL, D(rdma_staged_ios)},
		{"rdma_untranslatable", NULL, D(rdma_untranslatable)},
		{"rdma_direct_bytes", NULL, D(rdma_direct_bytes)},
	};
#undef D
	bench_emit_fields(SUITE, cname, kv, sizeof(kv) / sizeof(kv[0]));
	if (ferry_bdev_destroy(r.b))
		bench_fail(SUITE ": %s: destroying the initiator: %s", cname, ferry_last_error());
	ferry_mock_host_iommu_unmap(h, (unsigned)fn_nvme, DIRECT_IOVA, len);
	ferry_mock_host_iommu_unmap(h, (unsigned)fn_nic, DIRECT_IOVA, len);
	ferry_mock_host_close(h);
	if (mdev != n->dev)
		ferry_device_close(mdev);
	free(r.written);
	free(sl);
}

void bench_rdma_nvmf(int json)
{
	(void)json;
	int any = bench_selected("nvmf-direct-soc-bytes");
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
		any |= bench_selected(shapes[i].name);
	if (!any)
		return;
	struct bench_rdma_nic n;
	if (bench_rdma_open(&n)) {
		struct bench_kv kv[] = {{"skipped", n.why, 0}};
		bench_emit_fields(SUITE, "nvmf", kv, 1);
		return;
	}
	struct bench_nvmf_tgt g;
	tgt_start(&g, &n);
	bench_pin(0);
	/* One initiator for every shape (each measured phase differences its counters). */
	struct ferry_bdev *b = NULL;
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		if (!bench_selected(shapes[i].name))
			continue;
		if (!b)
			b = initiator(&g, &n, "bench_rdma_nvmf", NULL);
		struct bench_nvmf_snaps x = {.b = b};
		struct bench_nvmf_result res;
		bench_nvmf_measure(&g, b, &shapes[i].load, shapes[i].name, bench_nvmf_snap, &x,
				   &res);
#define D(f) ((double)(x.s[1].f - x.s[0].f))
		struct bench_kv kv[] = {
			{"nic", n.mock ? "mock" : n.info.name, 0},
			{"io_bytes", NULL, shapes[i].load.io_bytes},
			{"qd", NULL, shapes[i].load.qd},
			{"iops", NULL, res.iops},
			{"mibs", NULL, res.mibs},
			{"p50_us", NULL, res.p50_us},
			{"p99_us", NULL, res.p99_us},
			{"tgt_cpu_us_per_io", NULL,
			 res.ios > 0 ? res.tgt_cpu_s / res.ios * 1e6 : 0},
			{"rdma_direct_ios", NULL, D(rdma_direct_ios)},
			{"rdma_staged_ios", NULL, D(rdma_staged_ios)},
			{"rdma_icd_writes", NULL, D(rdma_icd_writes)},
		};
#undef D
		bench_emit_fields(SUITE, shapes[i].name, kv, sizeof(kv) / sizeof(kv[0]));
	}
	if (b && ferry_bdev_destroy(b))
		bench_fail(SUITE ": destroying the initiator: %s", ferry_last_error());
	direct_case(&g, &n);
	bench_nvmf_tgt_stop(&g);
	bench_rdma_close(&n);
}
