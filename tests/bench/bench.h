/*
 * ferry-bench: the small framework shared by every benchmark suite (timing, side-by-side
 * measurement of Ferry against the raw library, JSON/table output, registration of extra
 * cases). One file per suite; a suite either sits in the table of bench_main.c or registers
 * cases with BENCH_CASE() from its own file (both may be combined: bench_accel_ops.c is the
 * "accel" suite's table entry and bench_accel_seq.c adds its cases to "accel" with BENCH_CASE).
 */
#ifndef FERRY_BENCH_H
#define FERRY_BENCH_H

#include <stddef.h>
#include <stdint.h>

/* Run-wide options, set by main() from the command line. */
struct bench_opts {
	int json;         /* one JSON object per line instead of a table (also passed to run()) */
	double seconds;   /* measured time per side and case (default 0.2 s) */
	const char *only; /* run only cases whose name contains this (NULL: all) */
	const char *nic;  /* suite "rdma": the RDMA NIC, "rxe" or "mock" (NULL: rxe if it opens,
			     else mock) */
	const char *addr; /* suite "rdma": the address to listen on, "a.b.c.d" (NULL: 10.9.0.1
			     on rxe, 127.0.0.1 on mock) */
};
extern struct bench_opts bench_opts;

/* Monotonic time in seconds. */
double bench_now(void);

/* One call of the measured operation; returns 0 on success (a failure aborts the run). */
typedef int (*bench_fn)(void *arg);

/*
 * Measure Ferry's and the reference's throughput side by side: both are warmed up, then run
 * in alternating rounds for bench_opts.seconds each in total; the best round of each side is
 * kept (robust on a shared machine). bytes is the payload of one call. Results in GB/s (1e9).
 */
void bench_compare(bench_fn ferry, void *ferry_arg, bench_fn ref, void *ref_arg, size_t bytes,
		   double *ferry_gbps, double *ref_gbps);

/* Throughput of one function alone (same method), in GB/s; also returns calls per second. */
double bench_rate(bench_fn fn, void *arg, size_t bytes, double *calls_per_sec);

/* Whether a case is selected by --case. */
int bench_selected(const char *case_name);

/*
 * Print a Ferry-vs-reference line:
 * {"suite":..,"case":..,"size":..,"ferry_gbps":..,"ref":..,"ref_gbps":..,"ratio":..}
 */
void bench_emit_compare(const char *suite, const char *case_name, size_t size, double ferry_gbps,
			const char *ref, double ref_gbps);

/* A free-form field of a result line: a number or a string. */
struct bench_kv {
	const char *key;
	const char *str; /* printed as a string when non-NULL */
	double num;      /* printed as a number otherwise */
};

/* Print {"suite":..,"case":..,<fields>} (or a table row). */
void bench_emit_fields(const char *suite, const char *case_name, const struct bench_kv *kv,
		       size_t n);

/* Abort the run with a message (a benchmark whose operation fails measures nothing). */
void bench_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Extra cases of a suite, registered at load time by BENCH_CASE(). */
struct bench_case {
	const char *suite;
	const char *name;
	void (*run)(int json);
	struct bench_case *next;
};
void bench_register(struct bench_case *c);

/* Run every registered case of suite (in registration order). Returns how many ran. */
int bench_run_registered(const char *suite, int json);

#define BENCH_CASE(suite_, name_, fn_)                                                             \
	static struct bench_case bench_case_##fn_ = {suite_, name_, fn_, NULL};                    \
	__attribute__((constructor)) static void bench_case_reg_##fn_(void)                        \
	{                                                                                          \
		bench_register(&bench_case_##fn_);                                                 \
	}

/* Built-in suites (one file each): the table of bench_main.c calls run(json). */
void bench_suite_accel_ops(int json);

/*
 * Optional hook of the "accel" suite: if some file defines bench_accel_seq(), the accel suite
 * calls it after its op cases (it is declared weak there). A file should either define this
 * hook or register its cases with BENCH_CASE("accel", ...), not both.
 */
void bench_accel_seq(int json);

#endif /* FERRY_BENCH_H */
