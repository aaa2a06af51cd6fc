/*
 * ferry-bench: command line, the table of suites, the timing and output helpers of bench.h.
 *
 *   ferry-bench <suite|all> [--json] [--time SECONDS] [--case SUBSTRING]
 *               [--nic rxe|mock] [--addr A.B.C.D]
 *   ferry-bench --list
 *
 * Each suite prints one line per case: a table by default, one JSON object per line with
 * --json. Suites come from the table below and from BENCH_CASE() registrations.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "bench.h"

struct bench_opts bench_opts = {.json = 0, .seconds = 0.2, .only = NULL};

void bench_suite_accel_qd(int json);
void bench_suite_nvmf_tcp(int json); /* bench_nvmf_tcp.c */
void bench_suite_nvmf_tcp_offload(int json); /* bench_nvmf_tcp_offload.c */
void bench_suite_rdma(int json); /* bench_rdma.c */

/* Suites with a built-in entry point (run before the suite's registered cases). */
static const struct {
	const char *name;
	void (*run)(int json);
} suites[] = {
	{"accel", bench_suite_accel_ops},
	{"accel-qd", bench_suite_accel_qd}, /* bench_accel_qd.c */
	{"nvmf-tcp", bench_suite_nvmf_tcp}, /* bench_nvmf_tcp.c */
	{"nvmf-tcp-offload", bench_suite_nvmf_tcp_offload}, /* bench_nvmf_tcp_offload.c */
	{"rdma", bench_suite_rdma}, /* bench_rdma.c */
};

static struct bench_case *reg_head, **reg_tail = &reg_head;
static int table_header_done;

void bench_register(struct bench_case *c)
{
	c->next = NULL;
	*reg_tail = c;
	reg_tail = &c->next;
}

int bench_run_registered(const char *suite, int json)
{
	int n = 0;
	for (struct bench_case *c = reg_head; c; c = c->next) {
		if (strcmp(c->suite, suite) || !bench_selected(c->name))
			continue;
		c->run(json);
		n++;
	}
	return n;
}

double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void bench_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "ferry-bench: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

int bench_selected(const char *case_name)
{
	return !bench_opts.only || strstr(case_name, bench_opts.only) != NULL;
}

/* Calls of fn needed for about `target` seconds (at least 1). */
static uint64_t calibrate(bench_fn fn, void *arg, double target)
{
	uint64_t n = 1;
	for (;;) {
		double t0 = bench_now();
		for (uint64_t i = 0; i < n; i++)
			if (fn(arg))
				bench_fail("operation failed during calibration");
		double dt = bench_now() - t0;
		if (dt >= target / 4 || n >= (1ull << 40)) {
			double per = dt / (double)n;
			uint64_t want = per > 0 ? (uint64_t)(target / per) : n;
			return want ? want : 1;
		}
		n *= 4;
	}
}

/* Seconds for n calls. */
static double timed(bench_fn fn, void *arg, uint64_t n)
{
	double t0 = bench_now();
	for (uint64_t i = 0; i < n; i++)
		if (fn(arg))
			bench_fail("operation failed while measured");
	return bench_now() - t0;
}

#define ROUNDS 12

void bench_compare(bench_fn ferry, void *ferry_arg, bench_fn ref, void *ref_arg, size_t bytes,
		   double *ferry_gbps, double *ref_gbps)
{
	const double round = bench_opts.seconds / ROUNDS;
	/* Calibration doubles as the warm-up (caches, branch predictors, lazy allocations). */
	uint64_t nf = calibrate(ferry, ferry_arg, round);
	uint64_t nr = calibrate(ref, ref_arg, round);
	double best_f = 1e30, best_r = 1e30;
	for (int r = 0; r < ROUNDS; r++) {
		/* Alternate which side goes first so that neither always runs on a warmer core. */
		if (r & 1) {
			double t = timed(ref, ref_arg, nr) / (double)nr;
			best_r = t < best_r ? t : best_r;
			t = timed(ferry, ferry_arg, nf) / (double)nf;
			best_f = t < best_f ? t : best_f;
		} else {
			double t = timed(ferry, ferry_arg, nf) / (double)nf;
			best_f = t < best_f ? t : best_f;
			t = timed(ref, ref_arg, nr) / (double)nr;
			best_r = t < best_r ? t : best_r;
		}
	}
	*ferry_gbps = (double)bytes / best_f / 1e9;
	*ref_gbps = (double)bytes / best_r / 1e9;
}

double bench_rate(bench_fn fn, void *arg, size_t bytes, double *calls_per_sec)
{
	const double round = bench_opts.seconds / ROUNDS;
	uint64_t n = calibrate(fn, arg, round);
	double best = 1e30;
	for (int r = 0; r < ROUNDS; r++) {
		double t = timed(fn, arg, n) / (double)n;
		best = t < best ? t : best;
	}
	if (calls_per_sec)
		*calls_per_sec = 1.0 / best;
	return (double)bytes / best / 1e9;
}

static void table_header(void)
{
	if (table_header_done)
		return;
	table_header_done = 1;
	printf("%-8s %-22s %8s  %10s  %-8s %10s  %6s\n", "suite", "case", "size", "ferry GB/s",
	       "ref", "ref GB/s", "ratio");
}

void bench_emit_compare(const char *suite, const char *case_name, size_t size, double ferry_gbps,
			const char *ref, double ref_gbps)
{
	double ratio = ref_gbps > 0 ? ferry_gbps / ref_gbps : 0;
	if (bench_opts.json) {
		printf("{\"suite\":\"%s\",\"case\":\"%s\",\"size\":%zu,\"ferry_gbps\":%.3f,"
		       "\"ref\":\"%s\",\"ref_gbps\":%.3f,\"ratio\":%.3f}\n",
		       suite, case_name, size, ferry_gbps, ref, ref_gbps, ratio);
	} else {
		table_header();
		printf("%-8s %-22s %8zu  %10.3f  %-8s %10.3f  %6.3f\n", suite, case_name, size,
		       ferry_gbps, ref, ref_gbps, ratio);
	}
	fflush(stdout);
}

void bench_emit_fields(const char *suite, const char *case_name, const struct bench_kv *kv,
		       size_t n)
{
	if (bench_opts.json) {
		printf("{\"suite\":\"%s\",\"case\":\"%s\"", suite, case_name);
		for (size_t i = 0; i < n; i++) {
			if (kv[i].str)
				printf(",\"%s\":\"%s\"", kv[i].key, kv[i].str);
			else
				printf(",\"%s\":%.6g", kv[i].key, kv[i].num);
		}
		printf("}\n");
	} else {
		printf("%-8s %-22s", suite, case_name);
		for (size_t i = 0; i < n; i++) {
			if (kv[i].str)
				printf("  %s=%s", kv[i].key, kv[i].str);
			else
				printf("  %s=%.4g", kv[i].key, kv[i].num);
		}
		printf("\n");
	}
	fflush(stdout);
}

/* Every suite name: the table's, then those only known from registrations. */
static size_t suite_names(const char **names, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]) && n < max; i++)
		names[n++] = suites[i].name;
	for (struct bench_case *c = reg_head; c && n < max; c = c->next) {
		size_t j = 0;
		while (j < n && strcmp(names[j], c->suite))
			j++;
		if (j == n)
			names[n++] = c->suite;
	}
	return n;
}

static void run_suite(const char *name)
{
	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
		if (!strcmp(suites[i].name, name))
			suites[i].run(bench_opts.json);
	bench_run_registered(name, bench_opts.json);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: ferry-bench <suite|all> [--json] [--time SECONDS] [--case SUBSTRING]\n"
		   "                   [--nic rxe|mock] [--addr A.B.C.D]\n"
		   "       ferry-bench --list\n");
}

int main(int argc, char **argv)
{
	const char *suite = NULL;
	int list = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			bench_opts.json = 1;
		} else if (!strcmp(argv[i], "--time") && i + 1 < argc) {
			bench_opts.seconds = atof(argv[++i]);
			if (bench_opts.seconds <= 0 || bench_opts.seconds > 60) {
				fprintf(stderr, "ferry-bench: --time must be in (0, 60]\n");
				return 2;
			}
		} else if (!strcmp(argv[i], "--case") && i + 1 < argc) {
			bench_opts.only = argv[++i];
		} else if (!strcmp(argv[i], "--nic") && i + 1 < argc) {
			bench_opts.nic = argv[++i];
			if (strcmp(bench_opts.nic, "rxe") && strcmp(bench_opts.nic, "mock")) {
				fprintf(stderr, "ferry-bench: --nic must be rxe or mock\n");
				return 2;
			}
		} else if (!strcmp(argv[i], "--addr") && i + 1 < argc) {
			bench_opts.addr = argv[++i];
		} else if (!strcmp(argv[i], "--list")) {
			list = 1;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else if (argv[i][0] != '-' && !suite) {
			suite = argv[i];
		} else {
			usage(stderr);
			return 2;
		}
	}
	const char *names[64];
	size_t n = suite_names(names, 64);
	if (list) {
		for (size_t i = 0; i < n; i++)
			printf("%s\n", names[i]);
		return 0;
	}
	if (!suite) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(suite, "all")) {
		for (size_t i = 0; i < n; i++)
			run_suite(names[i]);
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(names[i], suite)) {
			run_suite(suite);
			return 0;
		}
	}
	fprintf(stderr, "ferry-bench: unknown suite '%s' (see --list)\n", suite);
	return 2;
}
