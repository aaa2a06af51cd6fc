/**
 * @file ferry/export.h
 * @brief Export macro, C/C++ linkage guards and version of the Ferry SDK.
 *
 * Every public function of libferry is declared with FERRY_API; everything else is hidden
 * (-fvisibility=hidden plus a version script with `local: *;`).
 */
#ifndef FERRY_EXPORT_H
#define FERRY_EXPORT_H

/** Marks a symbol exported from libferry. */
#if defined(FERRY_BUILD) || defined(FERRY_BACKEND_BUILD)
#define FERRY_API __attribute__((visibility("default")))
#else
#define FERRY_API
#endif

#ifdef __cplusplus
/** Opens the declarations of a header: `extern "C" {` in C++, nothing in C. */
#define FERRY_BEGIN_DECLS extern "C" {
/** Closes what FERRY_BEGIN_DECLS opened: `}` in C++, nothing in C. */
#define FERRY_END_DECLS }
#else
/** Opens the declarations of a header: `extern "C" {` in C++, nothing in C. */
#define FERRY_BEGIN_DECLS
/** Closes what FERRY_BEGIN_DECLS opened: `}` in C++, nothing in C. */
#define FERRY_END_DECLS
#endif

/** Major version of the SDK these headers describe. */
#define FERRY_VERSION_MAJOR 0
/** Minor version of the SDK these headers describe. */
#define FERRY_VERSION_MINOR 1
/** Patch version of the SDK these headers describe. */
#define FERRY_VERSION_PATCH 0

FERRY_BEGIN_DECLS

/**
 * @brief Version string of the library actually linked ("MAJOR.MINOR.PATCH").
 * @return a static string; never NULL.
 */
FERRY_API const char *ferry_version(void);

/**
 * @brief Human-readable text for a Ferry return code (a negative errno).
 *
 * Where Ferry gives an errno a meaning libc names differently, the text says Ferry's: -EILSEQ
 * is a protection information (PI) or compare mismatch; context-dependent codes read
 * "libc text (Ferry: ...)", e.g. -EPROTO an ABI version mismatch or malformed protocol data,
 * -EREMOTEIO the RDMA peer refused the access, -ENOBUFS a too-small buffer or (RDMA) receiver
 * not ready, -ECANCELED flushed. Any other code gives libc's text. Thread-safe.
 * @param[in] rc a value returned by a Ferry function; a positive errno gives the same text.
 * @return a static string; never NULL ("unknown error" for a value that is no errno).
 */
FERRY_API const char *ferry_strerror(int rc);

FERRY_END_DECLS

#endif /* FERRY_EXPORT_H */
