/**
 * @file ferry/crypto.h
 * @brief AES-XTS keys and the software engine's encrypt/decrypt kernels (IEEE 1619).
 *
 * A key (struct ferry_crypto_key) holds the two AES keys of XTS (key1 encrypts the data, key2 the
 * tweak), the cipher and the data unit size. Data is processed in data units of that size;
 * data unit i (0-based) of an operation uses the tweak value `tweak + i` (the IEEE 1619 data
 * unit sequence number) as a 128-bit unsigned integer: the carry of `tweak + i` past 2^64 goes
 * into the upper 64 bits. The 16-byte tweak block handed to AES is that integer little-endian:
 * tweak 0x0102030405060708 is the bytes 08 07 06 05 04 03 02 01 00 00 00 00 00 00 00 00.
 *
 * Tweak of a block: with a data unit equal to the block size, pass the LBA of the first block
 * as @p tweak. With a data unit smaller than the block (512-byte units on 4096-byte blocks),
 * pass `LBA * (block_size / data_unit_size)`: data unit j of block LBA then uses the tweak
 * `LBA * units_per_block + j`, so every data unit of the device has its own sequence number
 * and a block gives the same bytes whether it is written alone or as part of a longer I/O.
 * This is what the crypto bdev (ferry/bdev_crypto.h) does.
 *
 * Implementation: OpenSSL EVP, or libgcrypt when Ferry is built with it and it measures
 * faster on this machine (a calibration of well under a millisecond when the first key of a
 * cipher and data unit size is created; the choice and the figures are logged at info level,
 * FERRY_LOG_LEVEL=info). The environment variable FERRY_XTS_IMPL=openssl|gcrypt|auto, read at
 * that moment, forces one (gcrypt falls back to OpenSSL, with a warning, where libgcrypt is
 * not available). Both give the same bytes; a key keeps its implementation for its lifetime.
 *
 * Key material: copied at create (the caller may wipe its copy right away), never logged,
 * and wiped (OPENSSL_cleanse, and libgcrypt's own wipe when its handles are closed) together
 * with the expanded key schedules at destroy. key1 and key2 must differ (XTS with equal halves
 * is insecure and refused).
 *
 * Buffers: both sides are scatter-gather lists with any segmentation, they need not be
 * segmented alike and a data unit may straddle segments. In-place operation is allowed when
 * @p dst describes exactly the same bytes as @p src (byte k of the destination at the address
 * of byte k of the source; the segmentation may differ); otherwise the two must not overlap at
 * all, and a partial overlap is refused with -EINVAL. Buffers are only accessed during the
 * call.
 *
 * Threading: a key may be used by any number of threads at once. The key schedule is expanded
 * once at create; each key keeps a small pool of cipher contexts (one per thread that is inside
 * an operation at the same time, created on first need and kept until destroy; with OpenSSL
 * cloned from the schedule, with libgcrypt keyed once when the handle is created), so no key
 * schedule is ever recomputed per call and only the tweak is set per data unit. ferry_crypto_key_destroy() must not race with operations on
 * the same key.
 */
#ifndef FERRY_CRYPTO_H
#define FERRY_CRYPTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <ferry/export.h>

FERRY_BEGIN_DECLS

/** Cipher of a key. */
enum ferry_cipher {
	FERRY_CIPHER_AES_XTS_128 = 1, /**< AES-128-XTS: two 16-byte keys */
	FERRY_CIPHER_AES_XTS_256 = 2, /**< AES-256-XTS: two 32-byte keys */
};

/** Options of ferry_crypto_key_create(). */
struct ferry_crypto_key_opts {
	size_t size;              /**< sizeof(struct ferry_crypto_key_opts) */
	enum ferry_cipher cipher; /**< the cipher */
	const uint8_t *key1;      /**< data key, key_len bytes (copied) */
	const uint8_t *key2;      /**< tweak key, key_len bytes (copied); must differ from key1 */
	size_t key_len;           /**< bytes of each half: 16 for AES-XTS-128, 32 for AES-XTS-256 */
	uint32_t data_unit_size;  /**< bytes per data unit: 512 or 4096 */
};

/** An AES-XTS key (opaque). */
struct ferry_crypto_key;

/**
 * @brief Create a key: validate, copy the key material, expand the key schedules once.
 * @param[in] opts the options (see ::ferry_crypto_key_opts).
 * @param[out] out the new key, to be released with ferry_crypto_key_destroy().
 * @retval 0 success.
 * @retval -EINVAL NULL argument, @p opts->size not sizeof(struct ferry_crypto_key_opts),
 *         unknown cipher, key_len not the cipher's, key1 equal to key2, data unit size not
 *         512 or 4096.
 * @retval -ENOMEM out of memory.
 * @retval -EIO the crypto library refused the key.
 */
FERRY_API int ferry_crypto_key_create(const struct ferry_crypto_key_opts *opts,
				      struct ferry_crypto_key **out);

/**
 * @brief Wipe and free a key and its cipher contexts. NULL: no-op.
 * No operation on the key may be running or start afterwards.
 * @param[in] key the key; invalid after the call.
 */
FERRY_API void ferry_crypto_key_destroy(struct ferry_crypto_key *key);

/**
 * @brief The cipher of a key.
 * @param[in] key the key.
 * @return its cipher; 0 (no enumerator) if @p key is NULL.
 */
FERRY_API enum ferry_cipher ferry_crypto_key_get_cipher(const struct ferry_crypto_key *key);

/**
 * @brief The data unit size of a key.
 * @param[in] key the key.
 * @return the data unit size in bytes (512 or 4096); 0 if @p key is NULL.
 */
FERRY_API uint32_t ferry_crypto_key_get_data_unit(const struct ferry_crypto_key *key);

/**
 * @brief Encrypt @p src into @p dst, data unit by data unit.
 * @param[in] key the key.
 * @param[in] dst destination segments (total length equal to the source's).
 * @param[in] dst_cnt number of destination segments.
 * @param[in] src source segments; total length a multiple of the key's data unit size
 *            (0 is a no-op).
 * @param[in] src_cnt number of source segments.
 * @param[in] tweak data unit sequence number of the first data unit: its LBA, or
 *            LBA * (block size / data unit size) when the data unit is smaller than the block.
 * @retval 0 success.
 * @retval -EINVAL NULL key, NULL array with a non-zero count, a non-empty segment with a NULL
 *         base, totals different or not a multiple of the data unit size, @p dst and @p src
 *         overlapping partially (nothing is written then).
 * @retval -ENOMEM no cipher context could be allocated for this thread.
 * @retval -EIO the crypto library failed (nothing is guaranteed about @p dst then).
 */
FERRY_API int ferry_crypto_encrypt(struct ferry_crypto_key *key, const struct iovec *dst,
				   uint32_t dst_cnt, const struct iovec *src, uint32_t src_cnt,
				   uint64_t tweak);

/**
 * @brief Decrypt @p src into @p dst, data unit by data unit; same contract as
 * ferry_crypto_encrypt().
 * @param[in] key the key.
 * @param[in] dst destination segments (total length equal to the source's).
 * @param[in] dst_cnt number of destination segments.
 * @param[in] src source segments; total length a multiple of the key's data unit size
 *            (0 is a no-op).
 * @param[in] src_cnt number of source segments.
 * @param[in] tweak data unit sequence number of the first data unit.
 * @return the values of ferry_crypto_encrypt().
 */
FERRY_API int ferry_crypto_decrypt(struct ferry_crypto_key *key, const struct iovec *dst,
				   uint32_t dst_cnt, const struct iovec *src, uint32_t src_cnt,
				   uint64_t tweak);

FERRY_END_DECLS

#endif /* FERRY_CRYPTO_H */
