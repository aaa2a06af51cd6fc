/*
 * ferry-bench: what the NVMe-oF suites share ("nvmf-tcp" in bench_nvmf_tcp.c,
 * "nvmf-tcp-offload" in bench_nvmf_tcp_offload.c, the nvmf cases of "rdma" in
 * bench_rdma_nvmf.c): Ferry's NVMe-oF target on the tcp (or rdma) transport with a malloc
 * namespace, served by one busy-polling poll-group thread pinned to
 * CPU 1; filling the namespace; and a queue-depth workload on an initiator bdev driven from
 * the calling thread (pinned to CPU 0 by the suites), warm-up then measured phase.
 */
#ifndef FERRY_BENCH_NVMF_H
#define FERRY_BENCH_NVMF_H

#include <pthread.h>
#include <stdint.h>
#include <ferry/bdev_nvmf.h>

struct ferry_bdev;
struct ferry_device;
struct ferry_transport;
struct ferry_transport_pg;
struct ferry_nvme_subsystem;

#define BENCH_NVMF_NS_BLOCKS 65536u /* 256 MiB of 4 KiB blocks */
#define BENCH_NVMF_BS 4096u

/* An in-process NVMe/TCP target listening on 127.0.0.1 (an ephemeral port). */
struct bench_nvmf_tgt {
	struct ferry_transport *t;
	struct ferry_transport_pg *pg;
	struct ferry_nvme_subsystem *subsys;
	struct ferry_bdev *ns;
	pthread_t th;
	volatile int stop;
	char addr[64]; /* where it listens, "127.0.0.1:port" */
	char nqn[128];
};

/* Start the target with subsystem @p nqn (bench_fail() on any error): NVMe/TCP on
 * 127.0.0.1. */
void bench_nvmf_tgt_start(struct bench_nvmf_tgt *g, const char *nqn);

/* Where and how bench_nvmf_tgt_start_opts() serves (NULL members: the tcp suites' target). */
struct bench_nvmf_tgt_opts {
	const char *trtype;          /* "tcp" (NULL) or "rdma" */
	struct ferry_device *device; /* the transport's device (NULL: its default) */
	const char *listen;          /* "ADDR:PORT", port 0 a free one (NULL: 127.0.0.1:0) */
	const char *args;            /* transport arguments (NULL: the tcp suites') */
	const char *serial;          /* the subsystem's serial number (NULL: FERRYBENCH) */
};

/* bench_nvmf_tgt_start() with @p o (NULL: the same as bench_nvmf_tgt_start()). */
void bench_nvmf_tgt_start_opts(struct bench_nvmf_tgt *g, const char *nqn,
			       const struct bench_nvmf_tgt_opts *o);
void bench_nvmf_tgt_stop(struct bench_nvmf_tgt *g);

/* Write the whole namespace once (plain tcp initiator) so that reads return written data. */
void bench_nvmf_fill(struct bench_nvmf_tgt *g);

/* Pin the calling thread to @p cpu (modulo the online CPUs; no-op on one CPU). */
void bench_pin(int cpu);

/* CPU time of thread @p th in seconds (0 if unknown). */
double bench_thread_cpu_s(pthread_t th);

/* CPU time of the calling thread in seconds. */
double bench_self_cpu_s(void);

/* One workload shape. */
struct bench_nvmf_load {
	int write, random;
	uint32_t io_bytes, qd;
};

/* What one measured phase gave. */
struct bench_nvmf_result {
	double secs;       /* wall time of the measured phase */
	double ios;        /* I/Os completed in it */
	double iops, mibs; /* MiB/s = iops * io_bytes / 2^20 */
	double p50_us, p99_us;
	double tgt_cpu_s;  /* the target's poll-group thread */
	double self_cpu_s; /* the calling (initiator) thread */
};

/*
 * Run @p l on @p b: a warm-up of a tenth of the phase, then the measured phase of
 * max(1 s, 5 x --time). @p snap (may be NULL) is called right before the measured phase's
 * first submission (@p after 0) and after its last completion (@p after 1), so the caller
 * can difference counters. Any failed I/O aborts the run (bench_fail()).
 */
void bench_nvmf_measure(struct bench_nvmf_tgt *g, struct ferry_bdev *b,
			const struct bench_nvmf_load *l, const char *what,
			void (*snap)(void *ctx, int after), void *ctx,
			struct bench_nvmf_result *res);

/* The initiator bdev's counters before (s[0]) and after (s[1]) a measured phase: pass
 * bench_nvmf_snap with a struct bench_nvmf_snaps {.b = the bdev} to bench_nvmf_measure(). */
struct bench_nvmf_snaps {
	struct ferry_bdev *b;
	struct ferry_bdev_nvmf_stats s[2];
};

/* The snap callback of bench_nvmf_measure() for @p ctx a struct bench_nvmf_snaps (a failed
 * read of the counters aborts the run: bench_fail()). */
void bench_nvmf_snap(void *ctx, int after);

#endif /* FERRY_BENCH_NVMF_H */
