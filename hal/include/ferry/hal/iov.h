/**
 * @file ferry/hal/iov.h
 * @brief iovec helpers for backends: a cursor that walks an iovec array segment by segment
 *        (gathering and scattering the bytes that straddle segment boundaries), a validating
 *        length, and an overlap test.
 *
 * The SDK's own kernels (CRC, DIF/DIX, AES-XTS) walk their buffers with this cursor, so a
 * backend that computes the same bytes in software walks them the same way. The plain total
 * length and a whole-array scatter-gather copy are ferry_iov_length() and ferry_iov_copy()
 * (ferry/memdomain.h), included here.
 *
 * Cost: every helper is an exported function. Use the cursor per segment or per block
 * (ferry_hal_iov_cur_avail() says how many bytes are contiguous at the cursor, then work on
 * ferry_hal_iov_cur_ptr() directly), never per byte.
 *
 * All helpers work on local memory (the system domain, or addresses a backend already
 * resolved to local pointers). None of them allocates, logs or keeps a reference to the
 * array after it returns; a cursor refers to its array until it is no longer used, so the
 * array must stay valid and unchanged that long. Thread-safe on distinct cursors.
 */
#ifndef FERRY_HAL_IOV_H
#define FERRY_HAL_IOV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <ferry/export.h>
#include <ferry/memdomain.h>

FERRY_BEGIN_DECLS

/**
 * @brief A position inside an iovec array.
 *
 * Set it up with ferry_hal_iov_cur_init(); treat the fields as read-only. A cursor may be
 * copied by assignment to remember a position. Invariant after every call: either
 * @c idx == @c cnt (the end) or segment @c idx has at least one byte left at @c off (empty
 * segments are skipped).
 */
struct ferry_hal_iov_cur {
	const struct iovec *iov; /**< the array */
	uint32_t cnt;            /**< its number of segments (0 for a NULL array) */
	uint32_t idx;            /**< current segment */
	size_t off;              /**< offset inside the current segment */
};

/**
 * @brief Start a cursor at the first byte of @p iov.
 * @param[out] cur the cursor.
 * @param[in] iov the array (NULL: an empty array, whatever @p cnt).
 * @param[in] cnt number of segments.
 */
FERRY_API void ferry_hal_iov_cur_init(struct ferry_hal_iov_cur *cur, const struct iovec *iov,
				      uint32_t cnt);

/**
 * @brief Bytes left in the current segment: how many are contiguous at the cursor.
 * @param[in] cur the cursor.
 * @return 0 only at the end of the array.
 */
FERRY_API size_t ferry_hal_iov_cur_avail(const struct ferry_hal_iov_cur *cur);

/**
 * @brief Local pointer to the byte at the cursor.
 * @param[in] cur the cursor.
 * @return the pointer; NULL at the end of the array.
 */
FERRY_API void *ferry_hal_iov_cur_ptr(const struct ferry_hal_iov_cur *cur);

/**
 * @brief Move the cursor @p n bytes forward, across segments.
 * @param[in,out] cur the cursor.
 * @param[in] n bytes; advancing past the end stops at the end.
 */
FERRY_API void ferry_hal_iov_cur_advance(struct ferry_hal_iov_cur *cur, size_t n);

/**
 * @brief Copy @p n bytes out of the array at the cursor into @p dst and advance.
 * @param[in,out] cur the cursor.
 * @param[out] dst destination, at least @p n bytes.
 * @param[in] n bytes to copy.
 * @return bytes copied: @p n, or fewer if the array ended first.
 */
FERRY_API size_t ferry_hal_iov_cur_gather(struct ferry_hal_iov_cur *cur, void *dst, size_t n);

/**
 * @brief Copy @p n bytes from @p src into the array at the cursor and advance.
 * @param[in,out] cur the cursor.
 * @param[in] src source, at least @p n bytes.
 * @param[in] n bytes to copy.
 * @return bytes copied: @p n, or fewer if the array ended first.
 */
FERRY_API size_t ferry_hal_iov_cur_scatter(struct ferry_hal_iov_cur *cur, const void *src,
					   size_t n);

/**
 * @brief Validate an iovec array and return its total length.
 *
 * Unlike ferry_iov_length(), which only adds lengths up, this refuses arrays no kernel may
 * walk: a NULL array with a non-zero count, a segment with a NULL base and a non-zero length,
 * a total that overflows size_t.
 * @param[in] iov the array.
 * @param[in] cnt number of segments.
 * @param[out] total the total length (set only on success).
 * @param[out] why on failure, a static string saying why (for the caller's log line); may be
 *             NULL.
 * @retval 0 valid.
 * @retval -EINVAL invalid (see above), or @p total is NULL.
 */
FERRY_API int ferry_hal_iov_total(const struct iovec *iov, uint32_t cnt, size_t *total,
				  const char **why);

/**
 * @brief Whether two iovec arrays share at least one byte (empty segments share nothing).
 * Quadratic in the segment counts: meant for the few segments of one operation.
 * @param[in] a the first array (NULL: shares nothing).
 * @param[in] na number of segments of @p a.
 * @param[in] b the second array (NULL: shares nothing).
 * @param[in] nb number of segments of @p b.
 * @return 1 if they overlap, else 0.
 */
FERRY_API int ferry_hal_iov_overlap(const struct iovec *a, uint32_t na, const struct iovec *b,
				    uint32_t nb);

FERRY_END_DECLS

#endif /* FERRY_HAL_IOV_H */
