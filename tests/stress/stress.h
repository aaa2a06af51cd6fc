/*
 * Helpers shared by the stress programs (tests/stress/stress_*.c): a check that fails the whole
 * program, the clock and the run length, a small seedable generator, and starting/joining
 * worker threads. Header-only; no Criterion (the programs also run under ThreadSanitizer,
 * which Criterion's worker processes do not support).
 */
#ifndef FERRY_STRESS_H
#define FERRY_STRESS_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <ferry/ferry.h>

/* Fails the program (exit status 1) with the location and a message; safe from any thread. */
#define ST_CHECK(cond, ...)                                                                        \
	do {                                                                                       \
		if (!(cond))                                                                       \
			st_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                           \
	} while (0)

__attribute__((noreturn, format(printf, 4, 5))) static inline void
st_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	va_list ap;
	flockfile(stderr);
	fprintf(stderr, "STRESS FAILURE %s:%d: %s: ", file, line, cond);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (last ferry error on this thread: %s)\n", ferry_last_error());
	funlockfile(stderr);
	fflush(stderr);
	_exit(1);
}

static inline uint64_t st_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Run length of the timed phase: FERRY_STRESS_MS from the environment, else @p def_ms. */
static inline uint64_t st_run_ns(uint64_t def_ms)
{
	const char *e = getenv("FERRY_STRESS_MS");
	uint64_t ms = def_ms;
	if (e && *e) {
		char *end;
		unsigned long long v = strtoull(e, &end, 10);
		if (*end == '\0' && v > 0 && v <= 600000)
			ms = v;
	}
	return ms * 1000000ull;
}

/* xorshift64*: deterministic per seed (seed must not be 0). */
static inline uint64_t st_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

static inline uint64_t st_range(uint64_t *s, uint64_t lo, uint64_t hi) /* [lo, hi] */
{
	return lo + st_rand(s) % (hi - lo + 1);
}

static inline void st_fill(void *buf, size_t len, uint64_t *seed)
{
	uint8_t *p = buf;
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t r = st_rand(seed);
		memcpy(p + i, &r, 8);
	}
	if (i < len) {
		uint64_t r = st_rand(seed);
		memcpy(p + i, &r, len - i);
	}
}

/* A log handler that drops everything (programs that provoke errors on purpose). */
static inline void st_quiet_log(enum ferry_log_level l, const char *c, const char *f, va_list ap)
{
	(void)l;
	(void)c;
	(void)f;
	(void)ap;
}

/* Starts @p n threads running @p fn(args + i * stride) and joins them. */
static inline void st_run_threads(unsigned int n, void *(*fn)(void *), void *args, size_t stride)
{
	pthread_t t[64];
	ST_CHECK(n <= 64, "%u threads", n);
	for (unsigned int i = 0; i < n; i++) {
		int rc = pthread_create(&t[i], NULL, fn, (char *)args + i * stride);
		ST_CHECK(rc == 0, "pthread_create: %d", rc);
	}
	for (unsigned int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
}

#endif /* FERRY_STRESS_H */
