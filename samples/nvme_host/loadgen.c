/*
 * The load generator (loadgen.h): keeps `qd` I/Os in flight over the controller's I/O queues,
 * picks offsets and directions, fills and checks data patterns in verify mode, records
 * latencies in a log-linear histogram, and performs an optional mid-run controller reset.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "loadgen.h"

#define LOG(...) fprintf(stderr, "nvme-host: " __VA_ARGS__)
#define PAT_MAGIC 0x46525259u /* "FRRY" */
#define HIST_SUB 64u
#define HIST_BUCKETS (HIST_SUB + 58u * HIST_SUB)
#define STALL_NS 10000000000ull /* no completion for this long: the run fails */

struct lg_io {
	struct lg *g;
	struct nvmeh_buf buf;
	uint64_t lba;
	uint32_t nlb;
	int write;
	int busy;
	uint32_t gen;
	uint64_t t0;
};

struct lg {
	struct nvmeh_ctrlr *c;
	struct nvmeh_mem *m;
	struct lg_opts o;
	uint32_t bsz;   /* namespace block size */
	uint32_t nlb;   /* blocks per I/O */
	uint64_t range; /* blocks */
	uint64_t rng;
	uint64_t seq_next;
	uint32_t gen_next;
	uint32_t *expect; /* verify: generation of the last completed write (0 = zeros) */
	uint32_t *maybe;  /* verify: generation of a write a reset dropped (0 = none) */
	uint8_t *busy;    /* blocks with an I/O in flight */
	struct lg_io *io; /* [qd] */
	uint8_t *scratch; /* one I/O's data, local */
	/* phase state */
	int stopping;
	uint64_t submitted, completed, target;
	uint16_t next_q;
	struct lg_result *r;
	uint64_t *hist;
	uint64_t lat_sum, lat_max;
	int fatal;
	int measuring;
	int formatted; /* every block reads back (zeroes unless written) */
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t xrand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

/* ---- patterns ------------------------------------------------------------------------- */

static void pattern_fill(uint8_t *p, uint32_t bsz, uint64_t lba, uint32_t gen)
{
	if (gen == 0) {
		memset(p, 0, bsz);
		return;
	}
	uint64_t s = (lba * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)gen << 32) ^ 0x5bd1e995u;
	if (!s)
		s = 1;
	uint32_t hdr[4] = {PAT_MAGIC, gen, (uint32_t)lba, (uint32_t)(lba >> 32)};
	memcpy(p, hdr, sizeof(hdr));
	for (uint32_t off = sizeof(hdr); off + 8 <= bsz; off += 8) {
		uint64_t v = xrand(&s);
		memcpy(p + off, &v, 8);
	}
}

/* Generation held by block @p p of @p lba, or -1 if it holds no valid pattern. */
static int64_t pattern_gen(const uint8_t *p, uint32_t bsz, uint64_t lba, uint8_t *tmp)
{
	uint32_t hdr[4];
	memcpy(hdr, p, sizeof(hdr));
	uint32_t gen = hdr[0] == PAT_MAGIC ? hdr[1] : 0;
	pattern_fill(tmp, bsz, lba, gen);
	return memcmp(tmp, p, bsz) == 0 ? (int64_t)gen : -1;
}

/* ---- histogram ------------------------------------------------------------------------ */

static uint32_t hist_index(uint64_t v)
{
	if (v < HIST_SUB)
		return (uint32_t)v;
	uint32_t e = 63u - (uint32_t)__builtin_clzll(v);
	return HIST_SUB + (e - 6u) * HIST_SUB + (uint32_t)((v >> (e - 6u)) & (HIST_SUB - 1));
}

static uint64_t hist_value(uint32_t i)
{
	if (i < HIST_SUB)
		return i;
	uint32_t e = (i - HIST_SUB) / HIST_SUB + 6u, sub = (i - HIST_SUB) % HIST_SUB;
	return ((uint64_t)(HIST_SUB + sub) << (e - 6u)) + ((1ull << (e - 6u)) >> 1);
}

static double hist_pct(const uint64_t *h, uint64_t n, double pct)
{
	if (!n)
		return 0;
	uint64_t want = (uint64_t)(pct / 100.0 * (double)n);
	if (want >= n)
		want = n - 1;
	uint64_t acc = 0;
	for (uint32_t i = 0; i < HIST_BUCKETS; i++) {
		acc += h[i];
		if (acc > want)
			return (double)hist_value(i) / 1000.0;
	}
	return 0;
}

/* ---- I/O ------------------------------------------------------------------------------ */

static int range_free(struct lg *g, uint64_t lba, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (g->busy[lba + i])
			return 0;
	return 1;
}

static int range_written(struct lg *g, uint64_t lba, uint32_t n)
{
	if (g->formatted)
		return 1;
	for (uint32_t i = 0; i < n; i++)
		if (!g->expect[lba + i] && !g->maybe[lba + i])
			return 0;
	return 1;
}

static void io_done(void *arg, uint16_t status, const struct ferry_nvme_cqe *cqe);

static int io_start(struct lg *g, struct lg_io *io, int force_write, int sequential)
{
	uint64_t slots = g->range / g->nlb;
	uint64_t lba = 0;
	int found = 0;
	for (int tries = 0; tries < 64 && !found; tries++) {
		if (sequential || !g->o.random) {
			lba = (g->seq_next % slots) * g->nlb;
			g->seq_next++;
		} else {
			lba = (xrand(&g->rng) % slots) * g->nlb;
		}
		found = range_free(g, lba, g->nlb);
	}
	if (!found)
		return -EBUSY;
	int write = force_write || (uint32_t)(xrand(&g->rng) % 100) >= g->o.read_pct;
	if (!write && g->o.verify && !range_written(g, lba, g->nlb))
		write = 1; /* verify mode reads only what it wrote */
	io->lba = lba;
	io->nlb = g->nlb;
	io->write = write;
	io->gen = 0;
	if (write && g->o.verify) {
		io->gen = ++g->gen_next;
		for (uint32_t i = 0; i < g->nlb; i++) {
			pattern_fill(g->scratch, g->bsz, lba + i, io->gen);
			nvmeh_buf_write(g->m, &io->buf, g->o.buf_offset + (uint64_t)i * g->bsz,
					g->scratch, g->bsz);
		}
	}
	struct ferry_nvme_sqe cmd;
	nvmeh_rw_cmd(&cmd, write ? FERRY_NVME_CMD_WRITE : FERRY_NVME_CMD_READ, lba, g->nlb);
	struct nvmeh_data d = {.iova = io->buf.iova + g->o.buf_offset,
			       .len = g->nlb * g->bsz,
			       .mode = g->o.mode,
			       .sgl_chunk = g->o.sgl_chunk,
			       .sgl_per_seg = g->o.sgl_per_seg};
	uint16_t nq = nvmeh_io_queue_count(g->c);
	uint16_t qid = 0;
	int rc = -EAGAIN;
	for (uint16_t k = 0; k < nq && rc == -EAGAIN; k++) {
		qid = (uint16_t)(g->next_q % nq + 1);
		g->next_q++;
		io->t0 = now_ns();
		rc = nvmeh_submit(g->c, qid, &cmd, &d, io_done, io, 0);
	}
	if (rc) {
		LOG("submit on queue %u failed: %d\n", qid, rc);
		return rc;
	}
	for (uint32_t i = 0; i < g->nlb; i++)
		g->busy[lba + i] = 1;
	io->busy = 1;
	g->submitted++;
	return 0;
}

static void check_read(struct lg *g, struct lg_io *io)
{
	for (uint32_t i = 0; i < io->nlb; i++) {
		uint64_t b = io->lba + i;
		nvmeh_buf_read(g->m, &io->buf, g->o.buf_offset + (uint64_t)i * g->bsz, g->scratch,
			       g->bsz);
		int64_t gen = pattern_gen(g->scratch, g->bsz, b, g->scratch + g->bsz);
		if (gen >= 0 && (uint32_t)gen == g->expect[b])
			continue;
		if (gen >= 0 && g->maybe[b] && (uint32_t)gen == g->maybe[b]) {
			g->expect[b] = g->maybe[b]; /* the dropped write did land */
			g->maybe[b] = 0;
			continue;
		}
		if (g->r->verify_errors++ < 8)
			LOG("verify: block %llu holds %s (expected generation %u%s)\n",
			    (unsigned long long)b, gen < 0 ? "corrupt data" : "another generation",
			    g->expect[b], g->maybe[b] ? " or the dropped write's" : "");
	}
}

static void io_done(void *arg, uint16_t status, const struct ferry_nvme_cqe *cqe)
{
	struct lg_io *io = arg;
	struct lg *g = io->g;
	struct lg_result *r = g->r;
	uint64_t lat = now_ns() - io->t0;
	io->busy = 0;
	for (uint32_t i = 0; i < io->nlb; i++)
		g->busy[io->lba + i] = 0;
	g->completed++;
	if (status == NVMEH_STATUS_RESET) {
		r->reset_dropped++;
		if (io->write && g->o.verify)
			for (uint32_t i = 0; i < io->nlb; i++)
				g->maybe[io->lba + i] = io->gen; /* may or may not have landed */
		return;
	}
	if (status) {
		if (!r->errors++) {
			r->first_error = status;
			LOG("%s of LBA %llu: NVMe status 0x%x\n", io->write ? "write" : "read",
			    (unsigned long long)io->lba, status);
		}
		if (io->write && g->o.verify)
			for (uint32_t i = 0; i < io->nlb; i++)
				g->maybe[io->lba + i] = io->gen;
		return;
	}
	if (io->write && g->o.verify)
		for (uint32_t i = 0; i < io->nlb; i++) {
			g->expect[io->lba + i] = io->gen;
			g->maybe[io->lba + i] = 0;
		}
	if (!io->write && g->o.verify)
		check_read(g, io);
	if (g->measuring) {
		r->ios++;
		r->bytes += (uint64_t)io->nlb * g->bsz;
		if (io->write)
			r->writes++;
		else
			r->reads++;
		g->hist[hist_index(lat)]++;
		g->lat_sum += lat;
		if (lat > g->lat_max)
			g->lat_max = lat;
	}
	(void)cqe;
}

/* One phase: keep qd I/Os in flight until `target` I/Os completed or `deadline`. */
static int run_phase(struct lg *g, uint64_t target, uint64_t deadline, int force_write,
		     int sequential)
{
	g->submitted = g->completed = 0;
	g->target = target;
	uint64_t last_progress = now_ns();
	int reset_done = 0;
	for (;;) {
		uint64_t t = now_ns();
		int stop = (target && g->submitted >= target) || (deadline && t >= deadline) ||
			   g->fatal;
		if (!stop) {
			for (uint32_t i = 0; i < g->o.qd; i++) {
				if (g->io[i].busy || (target && g->submitted >= target))
					continue;
				int rc = io_start(g, &g->io[i], force_write, sequential);
				if (rc == -EBUSY)
					break; /* every candidate range busy: wait for completions */
				if (rc)
					return rc;
			}
		}
		uint32_t out = 0;
		for (uint32_t i = 0; i < g->o.qd; i++)
			out += g->io[i].busy;
		if (stop && out == 0)
			return 0;
		if (g->o.reset_after && !reset_done && g->measuring &&
		    g->completed >= g->o.reset_after && out > 0) {
			/* Reset with I/O in flight: the driver fails what is outstanding. */
			reset_done = 1;
			int rc = nvmeh_reset(g->c);
			if (rc) {
				LOG("controller reset failed: %d\n", rc);
				return rc;
			}
			g->r->resets++;
			continue;
		}
		int n = nvmeh_wait_all(g->c, 100000000ull);
		if (n < 0)
			return n;
		if (n > 0) {
			last_progress = now_ns();
		} else if (now_ns() - last_progress > STALL_NS) {
			LOG("no completion for %llu s with %u I/Os outstanding\n",
			    (unsigned long long)(STALL_NS / 1000000000ull), out);
			return -ETIMEDOUT;
		}
	}
}

int lg_create(struct nvmeh_ctrlr *c, const struct lg_opts *o, struct lg **out)
{
	if (!c || !o || !out || o->size < sizeof(*o) || o->qd == 0 || o->read_pct > 100)
		return -EINVAL;
	struct lg *g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->c = c;
	g->m = nvmeh_get_mem(c);
	g->o = *o;
	g->bsz = nvmeh_ns_block_size(c);
	uint64_t nsze = nvmeh_ns_blocks(c);
	g->range = o->range_blocks && o->range_blocks < nsze ? o->range_blocks : nsze;
	if (!g->bsz || o->bs < g->bsz || o->bs % g->bsz || o->bs > nvmeh_max_xfer(c) ||
	    o->bs / g->bsz > g->range || (o->buf_offset & 3)) {
		LOG("block size %u: must be a multiple of the namespace's %u-byte blocks, at most "
		    "the %u-byte MDTS and the range; buffer offset dword aligned\n",
		    o->bs, g->bsz, nvmeh_max_xfer(c));
		free(g);
		return -EINVAL;
	}
	uint32_t slots = 0;
	for (uint16_t q = 0; q < nvmeh_io_queue_count(c); q++)
		slots += nvmeh_io_queue_size(c) - 1;
	if (o->qd > slots) {
		LOG("queue depth %u is more than the %u slots of the I/O queues\n", o->qd, slots);
		free(g);
		return -EINVAL;
	}
	g->nlb = o->bs / g->bsz;
	g->rng = o->seed ? o->seed : 1;
	g->io = calloc(o->qd, sizeof(*g->io));
	g->busy = calloc(g->range, 1);
	g->scratch = malloc(2 * (size_t)g->bsz);
	g->hist = calloc(HIST_BUCKETS, sizeof(*g->hist));
	if (o->verify) {
		g->expect = calloc(g->range, sizeof(*g->expect));
		g->maybe = calloc(g->range, sizeof(*g->maybe));
	}
	if (!g->io || !g->busy || !g->scratch || !g->hist ||
	    (o->verify && (!g->expect || !g->maybe))) {
		lg_destroy(g);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < o->qd; i++) {
		g->io[i].g = g;
		/* Odd buffers take scattered host pages: IOVA-contiguous, host-discontiguous. */
		int rc = nvmeh_mem_alloc(g->m, (uint64_t)o->bs + o->buf_offset,
					 NVMEH_MEM_READ | NVMEH_MEM_WRITE |
						 ((i & 1) ? NVMEH_MEM_SCATTER : 0),
					 &g->io[i].buf);
		if (rc) {
			LOG("allocating %u I/O buffers of %u bytes in host memory failed: %d\n",
			    o->qd, o->bs, rc);
			lg_destroy(g);
			return rc;
		}
	}
	*out = g;
	return 0;
}

void lg_destroy(struct lg *g)
{
	if (!g)
		return;
	for (uint32_t i = 0; g->io && i < g->o.qd; i++)
		nvmeh_mem_free(g->m, &g->io[i].buf);
	free(g->io);
	free(g->busy);
	free(g->scratch);
	free(g->hist);
	free(g->expect);
	free(g->maybe);
	free(g);
}

/* Write Zeroes over the whole range (chunks of at most 65536 blocks). */
static int format_range(struct lg *g)
{
	for (uint64_t lba = 0; lba < g->range;) {
		uint64_t n = g->range - lba < 65536 ? g->range - lba : 65536;
		struct ferry_nvme_sqe cmd;
		nvmeh_rw_cmd(&cmd, FERRY_NVME_CMD_WRITE_ZEROES, lba, (uint32_t)n);
		uint16_t st = 0;
		int rc = nvmeh_io_sync(g->c, 1, &cmd, NULL, &st);
		if (!rc && st) {
			LOG("write zeroes of LBA %llu+%llu: status 0x%x\n", (unsigned long long)lba,
			    (unsigned long long)n, st);
			rc = -EIO;
		}
		if (rc)
			return rc;
		for (uint64_t i = 0; g->o.verify && i < n; i++) {
			g->expect[lba + i] = 0;
			g->maybe[lba + i] = 0;
		}
		lba += n;
	}
	g->formatted = 1;
	return 0;
}

int lg_run(struct lg *g, struct lg_result *r)
{
	memset(r, 0, sizeof(*r));
	g->r = r;
	struct lg_result scratch_r = {0};
	int rc = 0;
	if (g->o.format && !g->formatted) {
		rc = format_range(g);
		if (rc)
			return rc;
	}
	if (g->o.prefill) {
		g->r = &scratch_r;
		g->measuring = 0;
		g->seq_next = 0;
		rc = run_phase(g, g->range / g->nlb, 0, 1, 1);
		r->errors += scratch_r.errors;
		r->verify_errors += scratch_r.verify_errors;
		g->r = r;
		if (rc)
			return rc;
	}
	memset(g->hist, 0, HIST_BUCKETS * sizeof(*g->hist));
	g->lat_sum = g->lat_max = 0;
	g->measuring = 1;
	g->seq_next = 0;
	uint64_t irq0 = 0;
	for (uint16_t q = 1; q <= nvmeh_io_queue_count(g->c); q++)
		irq0 += nvmeh_irqs(g->c, q);
	uint64_t t0 = now_ns();
	uint64_t deadline = g->o.ios ? 0 : t0 + (uint64_t)(g->o.seconds * 1e9);
	rc = run_phase(g, g->o.ios, deadline, 0, 0);
	uint64_t t1 = now_ns();
	uint64_t irq1 = 0;
	for (uint16_t q = 1; q <= nvmeh_io_queue_count(g->c); q++)
		irq1 += nvmeh_irqs(g->c, q);
	r->irqs = irq1 - irq0;
	r->seconds = (double)(t1 - t0) / 1e9;
	if (r->seconds > 0) {
		r->iops = (double)r->ios / r->seconds;
		r->mibps = (double)r->bytes / r->seconds / 1048576.0;
	}
	if (r->ios) {
		r->lat_avg_us = (double)g->lat_sum / (double)r->ios / 1000.0;
		r->lat_p50_us = hist_pct(g->hist, r->ios, 50);
		r->lat_p99_us = hist_pct(g->hist, r->ios, 99);
		r->lat_p999_us = hist_pct(g->hist, r->ios, 99.9);
		r->lat_max_us = (double)g->lat_max / 1000.0;
	}
	return rc;
}

int lg_verify_all(struct lg *g, uint64_t *bad_blocks)
{
	if (!g->o.verify)
		return -EINVAL;
	struct lg_result vr = {0};
	struct lg_opts saved = g->o;
	struct lg_result *saved_r = g->r; /* vr dies with this call: never leave g->r on it */
	g->r = &vr;
	g->measuring = 0;
	g->o.read_pct = 100;
	g->seq_next = 0;
	/* Sequential reads of every slot; unwritten blocks are checked as zeros. */
	uint64_t slots = g->range / g->nlb;
	int rc = 0;
	for (uint64_t s = 0; s < slots && rc == 0; s++) {
		struct lg_io *io = &g->io[0];
		io->lba = s * g->nlb;
		io->nlb = g->nlb;
		io->write = 0;
		struct ferry_nvme_sqe cmd;
		nvmeh_rw_cmd(&cmd, FERRY_NVME_CMD_READ, io->lba, io->nlb);
		struct nvmeh_data d = {.iova = io->buf.iova + g->o.buf_offset,
				       .len = g->nlb * g->bsz,
				       .mode = g->o.mode};
		uint16_t st = 0;
		rc = nvmeh_io_sync(g->c, 1, &cmd, &d, &st);
		if (!rc && st) {
			LOG("verify read of LBA %llu: status 0x%x\n", (unsigned long long)io->lba,
			    st);
			vr.verify_errors += g->nlb;
			continue;
		}
		if (!rc)
			check_read(g, io);
	}
	g->o = saved;
	g->r = saved_r;
	if (bad_blocks)
		*bad_blocks = vr.verify_errors;
	return rc;
}

void lg_print(const struct lg_result *r, const struct lg_opts *o, int json, FILE *f)
{
	if (json) {
		fprintf(f,
			"{\"bs\":%u,\"qd\":%u,\"read_pct\":%u,\"random\":%d,\"ios\":%llu,"
			"\"reads\":%llu,\"writes\":%llu,\"seconds\":%.3f,\"iops\":%.0f,"
			"\"mibps\":%.1f,\"lat_avg_us\":%.1f,\"lat_p50_us\":%.1f,\"lat_p99_us\":%.1f,"
			"\"lat_p999_us\":%.1f,\"lat_max_us\":%.1f,\"errors\":%llu,"
			"\"verify_errors\":%llu,\"resets\":%llu,\"reset_dropped\":%llu,"
			"\"irqs\":%llu}\n",
			o->bs, o->qd, o->read_pct, o->random, (unsigned long long)r->ios,
			(unsigned long long)r->reads, (unsigned long long)r->writes, r->seconds,
			r->iops, r->mibps, r->lat_avg_us, r->lat_p50_us, r->lat_p99_us,
			r->lat_p999_us, r->lat_max_us, (unsigned long long)r->errors,
			(unsigned long long)r->verify_errors, (unsigned long long)r->resets,
			(unsigned long long)r->reset_dropped, (unsigned long long)r->irqs);
		return;
	}
	fprintf(f, "  %s %u B, qd %u, %u%% reads: %llu I/Os (%llu reads, %llu writes) in %.2f s\n",
		o->random ? "random" : "sequential", o->bs, o->qd, o->read_pct,
		(unsigned long long)r->ios, (unsigned long long)r->reads,
		(unsigned long long)r->writes, r->seconds);
	fprintf(f,
		"  %.0f IOPS, %.1f MiB/s; latency us: avg %.1f p50 %.1f p99 %.1f p99.9 %.1f "
		"max %.1f\n",
		r->iops, r->mibps, r->lat_avg_us, r->lat_p50_us, r->lat_p99_us, r->lat_p999_us,
		r->lat_max_us);
	fprintf(f,
		"  errors %llu, verify errors %llu, resets %llu (I/Os dropped %llu), "
		"interrupts %llu\n",
		(unsigned long long)r->errors, (unsigned long long)r->verify_errors,
		(unsigned long long)r->resets, (unsigned long long)r->reset_dropped,
		(unsigned long long)r->irqs);
}
