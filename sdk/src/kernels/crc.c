/*
 * CRC kernels of the software engine: CRC32C and CRC16-T10DIF on top of ISA-L.
 *
 * ISA-L's crc32_iscsi() works on the raw reflected register: it applies neither the initial
 * inversion nor the final one, and takes an int length. The public contract (standard CRC32C,
 * 0 to start, chainable on the returned value) is obtained by inverting on the way in and out:
 * ~crc32_iscsi(buf, len, ~crc). crc16_t10dif() already matches the T10 definition (init 0, no
 * final XOR), so it chains on the returned value directly.
 *
 * Invalid input (a NULL pointer with a non-zero length, in any of the three functions) is
 * refused the same way everywhere: logged with FERRY_ERR, nothing read, the CRC passed in
 * returned. The iovec form validates the whole array before reading any segment, so a bad
 * segment never yields the CRC of "the other segments", which would look valid.
 */
#include <limits.h>
#include <isa-l/crc.h>
#include <ferry/crc.h>
#include <ferry/hal/iov.h>
#include "core_internal.h"

#define COMP "crc"

/* Largest chunk handed to crc32_iscsi() (its length is an int). */
#define CRC32_CHUNK ((size_t)1 << 30)

static uint32_t crc32c_raw(uint32_t reg, const unsigned char *p, size_t len)
{
	while (len) {
		size_t n = len < CRC32_CHUNK ? len : CRC32_CHUNK;
		/* ISA-L takes a non-const pointer but only reads through it. */
		reg = crc32_iscsi((unsigned char *)p, (int)n, reg);
		p += n;
		len -= n;
	}
	return reg;
}

FERRY_API uint32_t ferry_crc32c(uint32_t crc, const void *buf, size_t len)
{
	if (!len)
		return crc;
	if (!buf) {
		FERRY_ERR(COMP, "crc32c: NULL buffer with length %zu refused", len);
		return crc;
	}
	return ~crc32c_raw(~crc, buf, len);
}

FERRY_API uint32_t ferry_crc32c_iov(uint32_t crc, const struct iovec *iov, uint32_t iovcnt)
{
	size_t total;
	const char *why = NULL;
	if (ferry_hal_iov_total(iov, iovcnt, &total, &why)) {
		FERRY_ERR(COMP, "crc32c_iov: %s refused", why);
		return crc;
	}
	uint32_t reg = ~crc;
	for (uint32_t i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len)
			reg = crc32c_raw(reg, iov[i].iov_base, iov[i].iov_len);
	}
	return ~reg;
}

FERRY_API uint16_t ferry_crc16_t10dif(uint16_t crc, const void *buf, size_t len)
{
	if (!len)
		return crc;
	if (!buf) {
		FERRY_ERR(COMP, "crc16_t10dif: NULL buffer with length %zu refused", len);
		return crc;
	}
	/* crc16_t10dif() takes a 64-bit length and a non-const pointer it only reads. */
	return crc16_t10dif(crc, (const unsigned char *)buf, (uint64_t)len);
}
