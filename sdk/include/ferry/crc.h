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
 * Wire byte order: the functions return the CRC as a host integer. Where the CRC32C travels as
 * a 4-byte digest (the NVMe/TCP header and data digests HDGST/DDGST, iSCSI), it is stored
 * little-endian: the value 0xE3069283 of "123456789" goes on the wire as the bytes
 * 83 92 06 E3 (RFC 3720 appendix B.4 lists its examples in this order, e.g. 32 zero bytes ->
 * aa 36 91 8a). The T10-DIF guard is stored big-endian in the protection tuple (ferry/dif.h).
 *
 * Buffers: @p buf must be readable for @p len bytes for the duration of the call; nothing is
 * retained. One rule for NULL, in every function: a zero length (@p len 0, @p iovcnt 0, or a
 * segment whose iov_len is 0) is empty data whatever the pointer, and returns the CRC passed
 * in. A NULL pointer with a non-zero length (@p buf with @p len > 0, @p iov with
 * @p iovcnt > 0, or a segment with a NULL iov_base and a non-zero iov_len) is a caller error
 * and is refused: nothing is read, the error is logged (FERRY_ERR, so ferry_last_error()
 * names it) and the CRC passed in is returned unchanged. ferry_crc32c_iov() checks every
 * segment before reading any, so a bad segment anywhere refuses the whole call.
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
 * @return the CRC32C of everything so far (final XOR applied); @p crc unchanged if @p len is
 *         0, or if @p buf is NULL with a non-zero @p len (refused and logged).
 */
FERRY_API uint32_t ferry_crc32c(uint32_t crc, const void *buf, size_t len);

/**
 * @brief CRC32C over the concatenation of the segments of an iovec array.
 * @param[in] crc 0 to start, or the value returned for the preceding data.
 * @param[in] iov the segments (zero-length segments are allowed, with any base); may be NULL
 *            only if @p iovcnt is 0.
 * @param[in] iovcnt number of segments.
 * @return the CRC32C of everything so far (final XOR applied); @p crc unchanged if there is
 *         no data, or if @p iov is NULL with a non-zero @p iovcnt or any segment has a NULL
 *         base and a non-zero length (refused and logged; no segment is read).
 */
FERRY_API uint32_t ferry_crc32c_iov(uint32_t crc, const struct iovec *iov, uint32_t iovcnt);

/**
 * @brief CRC16-T10DIF of @p len bytes at @p buf, continuing from @p crc.
 * @param[in] crc 0 to start, or the value returned for the preceding data.
 * @param[in] buf the data (may be NULL only if @p len is 0).
 * @param[in] len number of bytes.
 * @return the CRC16-T10DIF of everything so far; @p crc unchanged if @p len is 0, or if
 *         @p buf is NULL with a non-zero @p len (refused and logged).
 */
FERRY_API uint16_t ferry_crc16_t10dif(uint16_t crc, const void *buf, size_t len);

FERRY_END_DECLS

#endif /* FERRY_CRC_H */
