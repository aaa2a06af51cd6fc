/**
 * @file ferry/log.h
 * @brief Where Ferry's messages go.
 *
 * Every error Ferry returns (a negative errno) is accompanied by one message at
 * FERRY_LOG_ERROR that says what was wrong (the field, the value, the limit). By default
 * messages at FERRY_LOG_WARN and above go to stderr.
 *
 * Threading: the handler may be called from any thread that calls into Ferry; set it once
 * before other calls.
 */
#ifndef FERRY_LOG_H
#define FERRY_LOG_H

#include <stdarg.h>
#include <ferry/export.h>

FERRY_BEGIN_DECLS

/** Message severity. */
enum ferry_log_level {
	FERRY_LOG_ERROR = 0, /**< an operation failed; the caller gets a negative errno */
	FERRY_LOG_WARN = 1,  /**< something unexpected that Ferry handled */
	FERRY_LOG_INFO = 2,  /**< lifecycle events */
	FERRY_LOG_DEBUG = 3, /**< per-operation detail */
};

/**
 * @brief Log handler.
 * @param[in] level severity.
 * @param[in] component short name of the emitting component ("memdomain", "hal", "mock"...).
 * @param[in] fmt printf format.
 * @param[in] ap the arguments of @p fmt.
 */
typedef void (*ferry_log_cb)(enum ferry_log_level level, const char *component, const char *fmt,
			     va_list ap);

/**
 * @brief Install a log handler (NULL restores the default stderr handler).
 * @param[in] cb the handler; it only receives messages at or below the level of
 *            ferry_log_set_level().
 */
FERRY_API void ferry_log_set_handler(ferry_log_cb cb);

/**
 * @brief Set the most verbose level passed to the handler (default FERRY_LOG_WARN).
 * The environment variable FERRY_LOG_LEVEL (0-3) sets the initial value.
 * @param[in] level FERRY_LOG_ERROR..FERRY_LOG_DEBUG; any other value is ignored.
 */
FERRY_API void ferry_log_set_level(enum ferry_log_level level);

/**
 * @brief Emit a message through the installed handler (used by Ferry and by backends).
 *
 * A FERRY_LOG_ERROR message also becomes the calling thread's ferry_last_error(), even when
 * the level filters it out.
 * @param[in] level severity; a value outside the enum is taken as FERRY_LOG_ERROR.
 * @param[in] component short name of the emitting component (NULL is passed on as "").
 * @param[in] fmt printf format, followed by its arguments.
 */
FERRY_API void ferry_log(enum ferry_log_level level, const char *component, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/**
 * @brief The last error message logged on the calling thread (empty string if none).
 *
 * Lets a caller show *why* a call returned a negative errno without installing a handler.
 * @return a thread-local buffer valid until the next Ferry call on this thread.
 */
FERRY_API const char *ferry_last_error(void);

/**
 * @brief Make @p fmt the calling thread's last error message without emitting it.
 *
 * For an error detected on another thread (a backend's engine thread) and delivered on this
 * one: the delivering code records the reason here, so that ferry_last_error() explains the
 * failed completion to the callback it runs. The message was (or will be) logged once
 * already; this only sets the thread-local copy.
 * @param[in] component as for ferry_log().
 * @param[in] fmt printf format, or NULL to clear the last error (empty string).
 */
FERRY_API void ferry_set_last_error(const char *component, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

FERRY_END_DECLS

#endif /* FERRY_LOG_H */
