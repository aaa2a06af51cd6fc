/*
 * Stress: logging from many threads at once. The handler (installed once, before the threads,
 * as ferry/log.h asks) counts the calls it gets per thread; threads log at every level while
 * one of them keeps changing the level, and each checks that ferry_last_error() holds its own
 * latest error (a per-thread buffer) and that every error reached the handler (errors pass
 * every level). Library calls that fail on bad input log from their threads too.
 */
#include <errno.h>
#include "stress.h"
#include <ferry/module/memdomain.h>

#define NTHREADS 6u

static uint64_t deadline;
static _Thread_local uint64_t handled_errors, handled_total;
static atomic_uint_fast64_t total_calls;

static void handler(enum ferry_log_level level, const char *component, const char *fmt, va_list ap)
{
	char line[256];
	vsnprintf(line, sizeof(line), fmt, ap);
	ST_CHECK(component && *component, "component");
	handled_total++;
	if (level == FERRY_LOG_ERROR)
		handled_errors++;
	atomic_fetch_add_explicit(&total_calls, 1, memory_order_relaxed);
}

static void *worker(void *arg)
{
	uint32_t t = (uint32_t)(uintptr_t)(*(void **)arg);
	uint64_t seed = t + 1, errors = 0, n = 0;
	while (st_now_ns() < deadline || n < 64) {
		enum ferry_log_level lvl = (enum ferry_log_level)st_range(&seed, 0, 3);
		if (t == 0 && n % 16 == 0)
			ferry_log_set_level((enum ferry_log_level)st_range(&seed, 0, 3));
		ferry_log(lvl, "stress", "thread %u message %llu", t, (unsigned long long)n);
		if (lvl == FERRY_LOG_ERROR) {
			errors++;
			char want[64];
			snprintf(want, sizeof(want), "stress: thread %u message %llu", t,
				 (unsigned long long)n);
			ST_CHECK(strcmp(ferry_last_error(), want) == 0,
				 "last error '%s', want '%s'", ferry_last_error(), want);
		}
		if (n % 8 == 0) {
			/* A failing call logs its reason on this thread. */
			ST_CHECK(ferry_memdomain_create(NULL, NULL) == -EINVAL, "bad create");
			errors++;
			ST_CHECK(strstr(ferry_last_error(), "memdomain") != NULL, "last error '%s'",
				 ferry_last_error());
			ST_CHECK(strcmp(ferry_strerror(-EINVAL), "Invalid argument") == 0,
				 "strerror");
		}
		n++;
	}
	ST_CHECK(handled_errors == errors, "thread %u: handler saw %llu of %llu errors", t,
		 (unsigned long long)handled_errors, (unsigned long long)errors);
	ST_CHECK(handled_total >= errors && handled_total <= n + n / 8 + 1,
		 "thread %u: %llu handler calls", t, (unsigned long long)handled_total);
	return NULL;
}

int main(void)
{
	uint64_t t0 = st_now_ns();
	ferry_log_set_handler(handler);
	deadline = st_now_ns() + st_run_ns(500);
	void *ids[NTHREADS];
	for (uintptr_t i = 0; i < NTHREADS; i++)
		ids[i] = (void *)i;
	st_run_threads(NTHREADS, worker, ids, sizeof(ids[0]));
	ferry_log_set_handler(NULL);
	printf("stress_log: %llu handler calls, %.2f s\n",
	       (unsigned long long)atomic_load(&total_calls), (double)(st_now_ns() - t0) / 1e9);
	return 0;
}
