/* Logging: the handler, the level, and the per-thread last error message. */
#include <errno.h>
#include <limits.h>
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

/*
 * Ferry's meaning of the errnos it gives a meaning libc names differently. Where Ferry's
 * meaning replaces libc's outright (-EILSEQ is never about multibyte characters here), the
 * text is Ferry's alone; where it depends on the call, the form is "libc text (Ferry: ...)"
 * so that a message is still recognisable to someone who knows the libc text. Every other
 * errno gets libc's text unchanged (-EINVAL is "Invalid argument").
 */
static const struct {
	int err;
	const char *text;
} ferry_meanings[] = {
	{EILSEQ, "data mismatch (Ferry: protection information (PI) guard/application/reference "
		 "tag check failed, or a compare found different data)"},
	{EPROTO, "Protocol error (Ferry: ABI version mismatch of an ops table or plugin, or "
		 "malformed protocol data from the peer)"},
	{EREMOTEIO, "Remote I/O error (Ferry: the RDMA peer refused the access: bad key, out of "
		    "bounds or no permission)"},
	{ENOBUFS, "No buffer space available (Ferry: an output array or buffer is too small, the "
		  "size needed is returned; on an RDMA completion: receiver not ready, no receive "
		  "posted)"},
	{ECANCELED, "Operation canceled (Ferry: flushed: its channel, queue or QP was destroyed or "
		    "failed before it ran)"},
	{EMSGSIZE, "Message too long (Ferry: the posted receive is too small for the message)"},
	{ENOTSUP, "Operation not supported (Ferry: the backend does not implement this op or "
		  "capability)"},
	{EFAULT, "Bad address (Ferry: an address not mapped or not permitted for the device, e.g. "
		 "an IOMMU fault)"},
	{EXDEV, "Invalid cross-device link (Ferry: the memory is in a domain the device cannot "
		"reach)"},
	{EIO, "Input/output error (Ferry: bus error, poisoned data, or the device failed the "
	      "command)"},
	{ERANGE, "Numerical result out of range (Ferry: block range beyond the end of the bdev, or "
		 "outside the window)"},
	{ENOSPC, "No space left on device (Ferry: a queue, table or registry is full)"},
	{ENOEXEC, "Exec format error (Ferry: the plugin could not be loaded or has no entry "
		  "symbol)"},
	{ENODEV, "No such device (Ferry: no such backend or device, or the controller is lost)"},
};

FERRY_API const char *ferry_strerror(int rc)
{
	if (rc == 0)
		return "success";
	/* Ferry returns -errno; a positive errno (e.g. errno itself) is accepted as the same code. */
	if (rc == INT_MIN)
		return "unknown error";
	int err = rc < 0 ? -rc : rc;
	for (size_t i = 0; i < sizeof(ferry_meanings) / sizeof(ferry_meanings[0]); i++)
		if (ferry_meanings[i].err == err)
			return ferry_meanings[i].text;
	/* strerror() is not thread-safe; the table of glibc (sys_errlist) is. */
	const char *s = strerrordesc_np(err);
	return s ? s : "unknown error";
}
