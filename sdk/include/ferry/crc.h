/**
 * @file ferry/crc.h
 * @brief CRC32C (Castagnoli) and CRC16-T10DIF over flat and scattered buffers.
 *
 * These are the software engine's checksum kernels (backed by ISA-L, which selects the best
 * instruction set at run time). They are also what the accel operations "crc32c" and
 * "copy+crc32c" and the DIF guard compute, so an engine's result can be checked against them.
 *
 * Conventions:
 * - ferry_crc32c() computes the standard CRC32C: reflected, initial value 0xFFFFFFFF and final
 *   XOR 0xFFFFFFFF, both applied inside. Start with @p crc = 0; pass the previous result to
 *   continue over more data: ferry_crc32c(ferry_crc32c(0, a, la), b, lb) equals the CRC of the
 *   concatenation a||b. ferry_crc32c(0, "123456789", 9) == 0xE3069283.
 * - ferry_crc16_t10dif() computes the T10-DIF guard CRC (polynomial 0x8BB7, not reflected,
 *   initial value 0, no final XOR). Start with @p crc = 0 and chain the same way.
 *   ferry_crc16_t10dif(0, "123456789", 9) == 0xD0DB.
 *
 * Buffers: @p buf must be readable for @p len bytes for the duration of the call; nothing is
 * retained. A NULL @p buf (or NULL @p iov) contributes nothing: the CRC passed in is returned.
 *
 * Threading: all functions are pure and may be called from any thread concurrently.
 */
#ifndef FERRY_CRC_H
#define FERRY_CRC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <ferry/export.h>

FERRY_BEGIN_DECLS

/**
 * @brief CRC32C of @p len bytes at @p buf, continuing from @p crc.
 * @param[in] crc 0 to start, or the value returned for the preceding data.
 * @param[in] buf the data (may be NULL only if @p len is 0).
 * @param[in] len number of bytes.
 * @return the CRC32C of everything so far (final XOR applied).
 */
FERRY_API uint32_t ferry_crc32c(uint32_t crc, const void *buf, size_t len);

/**
 * @brief CRC32C over the concatenation of the segments of an iovec array.
 * @param[in] crc 0 to start, or the value returned for the preceding data.
 * @param[in] iov the segments (zero-length segments are allowed).
 * @param[in] iovcnt number of segments.
 * @return the CRC32C of everything so far (final XOR applied).
 */
FERRY_API uint32_t ferry_crc32c_iov(uint32_t crc, const struct iovec *iov, uint32_t iovcnt);

/**
 * @brief CRC16-T10DIF of @p len bytes at @p buf, continuing from @p crc.
 * @param[in] crc 0 to start, or the value returned for the preceding data.
 * @param[in] buf the data (may be NULL only if @p len is 0).
 * @param[in] len number of bytes.
 * @return the CRC16-T10DIF of everything so far.
 */
FERRY_API uint16_t ferry_crc16_t10dif(uint16_t crc, const void *buf, size_t len);

FERRY_END_DECLS

#endif /* FERRY_CRC_H */
