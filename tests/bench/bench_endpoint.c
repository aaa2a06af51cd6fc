/*
 * ferry-bench suite "endpoint": the NVMe endpoint driven by the userspace host driver of
 * samples/nvme_endpoint in a forked host process, through the mock PCIe endpoint and the
 * "pcie" transport, onto malloc alone or crypto on dif on malloc. Cases: 4 KiB random read and
 * write at queue depth 32, 128 KiB sequential read and write at queue depth 32, on each stack.
 * Per case: IOPS, MiB/s, p50/p99 latency (host-measured, submission to completion reaped),
 * and per I/O (ep_io_figures() in ep_stack.h defines them): accel pool buffers taken; bytes
 * copied on the SoC by plain copies (copies that executed, bounces, DMA data moved outside
 * the sequences; a fused encrypt + DIF insert copies nothing); the bytes fused operations
 * wrote (their final output: 4104 for a 4 KiB write through crypto+dif); fused operations;
 * copy operations executed (copies the sequence passes could not elide); bytes and transfers
 * of the DMA engine's own host <-> SoC moves (queue entries, PRP lists, and data the bdevs
 * move without a sequence) and the data part of those bytes.
 * A measured phase lasts 10 x --time (at least 1 s); crypto+dif and read cases format the
 * namespace first (Write Zeroes), outside the measurement.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <ferry/accel.h>
#include <ferry/endpoint.h>
#include <ferry/ferry.h>
#include <ferry/mock.h>
#include <ferry/nvme.h>
#include "bench.h"
#include "ep_stack.h"
#include "loadgen.h"

struct ep_case {
	const char *name;
	int crypto_dif;
	uint32_t bs, read_pct, qd;
	int random;
};

/* Shared between the firmware (this process) and the forked host. */
struct ep_shared {
	volatile int phase; /* host: 1 measured phase starts, 2 it ended, -1 failed */
	volatile int ack;   /* firmware: counters taken for that phase */
	struct lg_result r;
};

static void wait_ack(struct ep_shared *sh, int want)
{
	for (int i = 0; i < 200000 && __atomic_load_n(&sh->ack, __ATOMIC_ACQUIRE) < want; i++)
		usleep(50);
}

static int host_side(const struct ep_case *k, double secs, struct ep_shared *sh, int mfd, int pfd)
{
	struct nvmeh_opts ho = {.size = sizeof(ho),
				.mem_fd = mfd,
				.pcie_fd = pfd,
				.io_queues = 1,
				.queue_entries = 128};
	struct nvmeh_ctrlr *c = NULL;
	if (nvmeh_open(&ho, &c) || nvmeh_init(c))
		return 1;
	struct lg *g = NULL;
	if (k->crypto_dif || k->read_pct) {
		struct lg_opts f = {.size = sizeof(f), .qd = 1, .bs = 4096, .ios = 1, .format = 1};
		if (lg_create(c, &f, &g) || lg_run(g, &sh->r))
			return 1;
		lg_destroy(g);
	}
	struct lg_opts o = {.size = sizeof(o),
			    .qd = k->qd,
			    .bs = k->bs,
			    .read_pct = k->read_pct,
			    .random = k->random,
			    .seconds = secs,
			    .seed = 42};
	if (lg_create(c, &o, &g))
		return 1;
	__atomic_store_n(&sh->phase, 1, __ATOMIC_RELEASE);
	wait_ack(sh, 1);
	int rc = lg_run(g, &sh->r);
	__atomic_store_n(&sh->phase, rc ? -1 : 2, __ATOMIC_RELEASE);
	wait_ack(sh, 2);
	lg_destroy(g);
	nvmeh_shutdown(c);
	nvmeh_close(c);
	return rc || sh->r.errors ? 1 : 0;
}

static void run_case(const struct ep_case *k, int json)
{
	double secs = bench_opts.seconds * 10 < 1.0 ? 1.0 : bench_opts.seconds * 10;
	struct ep_stack_opts so = {.size = sizeof(so), .crypto_dif = k->crypto_dif, .blocks = 8192};
	struct ep_stack *s = NULL;
	if (ep_stack_create(&so, &s))
		bench_fail("endpoint %s: cannot set the endpoint up", k->name);
	struct ep_shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		bench_fail("endpoint: mmap failed");
	memset(sh, 0, sizeof(*sh));
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		bench_fail("endpoint: fork failed");
	if (pid == 0)
		_exit(host_side(k, secs, sh, s->mem_fd, s->pcie_fd));
	struct ep_counters a, b;
	int st = 0;
	unsigned int idle = 0;
	double deadline = bench_now() + secs + 120;
	for (uint64_t it = 0;; it++) {
		int n = ferry_endpoint_poll(s->ep, 64);
		if (n <= 0 && ++idle >= 16) {
			idle = 0;
			sched_yield();
		} else if (n > 0) {
			idle = 0;
		}
		int ph = __atomic_load_n(&sh->phase, __ATOMIC_ACQUIRE);
		if (ph == 1 && sh->ack == 0) {
			ep_stack_snap(s, &a);
			__atomic_store_n(&sh->ack, 1, __ATOMIC_RELEASE);
		} else if ((ph == 2 || ph == -1) && sh->ack == 1) {
			ep_stack_snap(s, &b);
			__atomic_store_n(&sh->ack, 2, __ATOMIC_RELEASE);
		}
		if ((it & 255) == 0) {
			if (waitpid(pid, &st, WNOHANG) == pid)
				break;
			if (bench_now() > deadline) {
				kill(pid, SIGKILL);
				waitpid(pid, &st, 0);
				bench_fail("endpoint %s: the host process hangs", k->name);
			}
		}
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || sh->ack != 2)
		bench_fail("endpoint %s: the host run failed (status 0x%x, %llu errors, first "
			   "NVMe status 0x%x)",
			   k->name, st, (unsigned long long)sh->r.errors, sh->r.first_error);
	const struct lg_result *r = &sh->r;
	double ios = r->ios ? (double)r->ios : 1;
	/* the load generator's buffers are page-aligned and use PRP data pointers */
	struct ep_io_figures f;
	ep_io_figures(&a, &b, (int64_t)ep_prp_list_bytes(k->bs, 0), &f);
	int seq_path = f.seq_path;
	struct bench_kv kv[] = {
		{"stack", k->crypto_dif ? "crypto+dif+malloc" : "malloc", 0},
		{"bs", NULL, k->bs},
		{"qd", NULL, k->qd},
		{"iops", NULL, r->iops},
		{"mibps", NULL, r->mibps},
		{"lat_p50_us", NULL, r->lat_p50_us},
		{"lat_p99_us", NULL, r->lat_p99_us},
		{"buffers_per_io", NULL, f.pool_buffers},
		/* Without accel sequences the crypto/dif bdevs transform on local bounce buffers
		 * that no counter sees: say so rather than print a misleading 0. */
		{"soc_bytes_copied_per_io", (k->crypto_dif && !seq_path) ? "uncounted" : NULL,
		 f.soc_bytes_copied},
		{"fused_output_bytes_per_io", NULL, f.fused_output_bytes},
		{"fusions_per_io", NULL, f.fusions},
		{"copy_ops_per_io", NULL, f.copy_ops},
		{"dma_bytes_per_io", NULL, (double)(b.dma.bytes - a.dma.bytes) / ios},
		{"dma_data_bytes_per_io", NULL, f.dma_data_bytes},
		{"dma_xfers_per_io", NULL, (double)(b.dma.xfers - a.dma.xfers) / ios},
		{"accel_seq_path", seq_path ? "yes" : "no", 0},
		{"ios", NULL, (double)r->ios},
		{"seconds", NULL, r->seconds},
	};
	bench_emit_fields("endpoint", k->name, kv, sizeof(kv) / sizeof(kv[0]));
	munmap(sh, sizeof(*sh));
	ep_stack_destroy(s);
	(void)json;
}

static const struct ep_case ep_cases[] = {
	{"randread-4k-qd32-malloc", 0, 4096, 100, 32, 1},
	{"randwrite-4k-qd32-malloc", 0, 4096, 0, 32, 1},
	{"seqread-128k-qd32-malloc", 0, 131072, 100, 32, 0},
	{"seqwrite-128k-qd32-malloc", 0, 131072, 0, 32, 0},
	{"randread-4k-qd32-crypto-dif", 1, 4096, 100, 32, 1},
	{"randwrite-4k-qd32-crypto-dif", 1, 4096, 0, 32, 1},
	{"seqread-128k-qd32-crypto-dif", 1, 131072, 100, 32, 0},
	{"seqwrite-128k-qd32-crypto-dif", 1, 131072, 0, 32, 0},
};

/* BENCH_CASE needs a constant name: it is repeated here. */
#define EP_CASE(i, name_, fn)                                                                      \
	static void fn(int json)                                                                   \
	{                                                                                          \
		run_case(&ep_cases[i], json);                                                      \
	}                                                                                          \
	BENCH_CASE("endpoint", name_, fn)

EP_CASE(0, "randread-4k-qd32-malloc", ep_rr_malloc)
EP_CASE(1, "randwrite-4k-qd32-malloc", ep_rw_malloc)
EP_CASE(2, "seqread-128k-qd32-malloc", ep_sr_malloc)
EP_CASE(3, "seqwrite-128k-qd32-malloc", ep_sw_malloc)
EP_CASE(4, "randread-4k-qd32-crypto-dif", ep_rr_cd)
EP_CASE(5, "randwrite-4k-qd32-crypto-dif", ep_rw_cd)
EP_CASE(6, "seqread-128k-qd32-crypto-dif", ep_sr_cd)
EP_CASE(7, "seqwrite-128k-qd32-crypto-dif", ep_sw_cd)
