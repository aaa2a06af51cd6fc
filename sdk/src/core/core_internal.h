/*
 * Internal helpers shared by sdk/src and hal/src: logging shortcuts, the device object.
 * Never installed.
 */
#ifndef FERRY_INTERNAL_H
#define FERRY_INTERNAL_H

#include <errno.h>
#include <ferry/log.h>
#include <ferry/device.h>
#include <ferry/hal/backend.h>

#define FERRY_ERR(comp, ...) ferry_log(FERRY_LOG_ERROR, comp, __VA_ARGS__)
#define FERRY_WARN(comp, ...) ferry_log(FERRY_LOG_WARN, comp, __VA_ARGS__)
#define FERRY_INFO(comp, ...) ferry_log(FERRY_LOG_INFO, comp, __VA_ARGS__)
#define FERRY_DBG(comp, ...) ferry_log(FERRY_LOG_DEBUG, comp, __VA_ARGS__)

/*
 * The size check of an options or stats struct (its first member, `size_t size`). 0.x has no
 * released layout to stay compatible with, so exactly sizeof(struct) is accepted: a caller
 * built against another layout is refused, never half-read. On a mismatch logs
 * "<what>: <p>->size N is not sizeof(<type>) = M" under comp and returns -EINVAL; else 0.
 * OPTS_SIZE_CHECK() names the struct from its type, which must be the type *p points to.
 */
int opts_size_check(const char *comp, const char *what, const char *field, size_t given,
		    const char *type, size_t expected);
#define OPTS_SIZE_CHECK(comp, what, p, type)                                                       \
	opts_size_check(comp, what, #p "->size", (p)->size, #type,                                 \
			sizeof(type) + 0 * _Generic((p), type *: 0, const type *: 0))

#define FERRY_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define FERRY_MIN(a, b) ((a) < (b) ? (a) : (b))
#define FERRY_MAX(a, b) ((a) > (b) ? (a) : (b))

/* An opened backend instance (public handle: struct ferry_device). */
struct ferry_device {
	const struct ferry_hal_backend *backend;
	void *priv;
	char name[FERRY_HAL_NAME_MAX + 8];
	_Atomic unsigned int open_chans; /* channels may be opened/closed from any thread */
};

/*
 * Rate limit for log messages a remote party can trigger at will (a host's bad PI, a peer's
 * malformed PDU): at most LOG_RATELIMIT_BURST messages per LOG_RATELIMIT_WINDOW_NS and site;
 * the rest are counted. One static struct log_ratelimit per call site (zero-initialised),
 * safe from any thread. log_ratelimit() returns 1 when the message may be logged now; when it
 * opens a new window after drops, *suppressed (if non-NULL) gets how many were dropped, for
 * the caller to say so. Callers still give the reason to ferry_last_error() for every event
 * (ferry_set_last_error()), logged or not: the rate limit is for the log only.
 */
#define LOG_RATELIMIT_BURST 10u
#define LOG_RATELIMIT_WINDOW_NS 1000000000ull
struct log_ratelimit {
	_Atomic unsigned long long window_start_ns;
	_Atomic unsigned int in_window;
	_Atomic unsigned int suppressed;
};
int log_ratelimit(struct log_ratelimit *rl, unsigned int *suppressed);

/* Registry internals (hal/src/registry.c). */
int hal_backend_ref(const struct ferry_hal_backend *b);
void hal_backend_unref(const struct ferry_hal_backend *b);

#endif /* FERRY_INTERNAL_H */
