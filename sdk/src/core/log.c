/* Logging: the handler, the level, and the per-thread last error message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <stdatomic.h>
#include "core_internal.h"
#include <ferry/export.h>

static const char *const level_names[] = {"error", "warn", "info", "debug"};
static _Atomic(ferry_log_cb) log_handler;
static atomic_int log_level = -1;
static _Thread_local char last_error[512];

static void default_handler(enum ferry_log_level level, const char *component, const char *fmt,
			    va_list ap)
{
	flockfile(stderr); /* one whole line per message when threads log at once */
	fprintf(stderr, "ferry %s [%s]: ", level_names[level], component);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	funlockfile(stderr);
}

static int current_level(void)
{
	int lvl = atomic_load(&log_level);
	if (lvl < 0) {
		const char *env = getenv("FERRY_LOG_LEVEL");
		lvl = FERRY_LOG_WARN;
		if (env && env[0] >= '0' && env[0] <= '3' && env[1] == '\0')
			lvl = env[0] - '0';
		/* Only if still unset: a concurrent ferry_log_set_level() must not be lost. */
		int unset = -1;
		if (!atomic_compare_exchange_strong(&log_level, &unset, lvl))
			lvl = unset;
	}
	return lvl;
}

FERRY_API void ferry_log_set_handler(ferry_log_cb cb)
{
	atomic_store(&log_handler, cb);
}

FERRY_API void ferry_log_set_level(enum ferry_log_level level)
{
	if ((int)level < FERRY_LOG_ERROR || level > FERRY_LOG_DEBUG)
		return;
	atomic_store(&log_level, (int)level);
}

static void set_last_error(const char *component, const char *fmt, va_list ap)
{
	int n = snprintf(last_error, sizeof(last_error), "%s: ", component ? component : "");
	if (n < 0 || (size_t)n >= sizeof(last_error))
		n = 0;
	vsnprintf(last_error + n, sizeof(last_error) - (size_t)n, fmt, ap);
}

FERRY_API void ferry_set_last_error(const char *component, const char *fmt, ...)
{
	if (!fmt) {
		last_error[0] = '\0';
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	set_last_error(component, fmt, ap);
	va_end(ap);
}

FERRY_API void ferry_log(enum ferry_log_level level, const char *component, const char *fmt, ...)
{
	va_list ap;
	if ((int)level < FERRY_LOG_ERROR || level > FERRY_LOG_DEBUG)
		level = FERRY_LOG_ERROR;
	if (level == FERRY_LOG_ERROR) {
		va_start(ap, fmt);
		set_last_error(component, fmt, ap);
		va_end(ap);
	}
	if ((int)level > current_level())
		return;
	ferry_log_cb cb = atomic_load(&log_handler);
	va_start(ap, fmt);
	(cb ? cb : default_handler)(level, component ? component : "", fmt, ap);
	va_end(ap);
}

FERRY_API const char *ferry_last_error(void)
{
	return last_error;
}

FERRY_API const char *ferry_version(void)
{
	return "0.1.0";
}

FERRY_API const char *ferry_strerror(int rc)
{
	if (rc == 0)
		return "success";
	if (rc > 0)
		return "not an error code (positive value)";
	/* strerror() is not thread-safe; the table of glibc (sys_errlist) is. */
	const char *s = strerrordesc_np(-rc);
	return s ? s : "unknown error";
}
