/**
 * @file ferry/crypto.h
 * @brief AES-XTS keys and the software engine's encrypt/decrypt kernels (IEEE 1619).
 *
 * A key (::ferry_crypto_key) holds the two AES keys of XTS (key1 encrypts the data, key2 the
 * tweak), the cipher and the data unit size. Data is processed in data units of that size;
 * data unit i (0-based) of an operation uses the 128-bit little-endian tweak value
 * `tweak + i` (the IEEE 1619 data unit sequence number). With a data unit equal to the block
 * size, pass the LBA of the first block as @p tweak.
 *
 * Key material: copied at create (the caller may wipe its copy right away), never logged,
 * and wiped (OPENSSL_cleanse) together with the expanded key schedules at destroy. key1 and
 * key2 must differ (XTS with equal halves is insecure and refused).
 *
 * Buffers: both sides are scatter-gather lists with any segmentation, they need not be
 * segmented alike and a data unit may straddle segments. In-place operation is allowed when
 * @p dst describes exactly the same bytes as @p src; otherwise the two must not overlap.
 * Buffers are only accessed during the call.
 *
 * Threading: a key may be used by any number of threads at once. The key schedule is expanded
 * once at create; each key keeps a small mutex-protected pool of cipher contexts cloned from
 * that schedule (one per thread that is inside an operation at the same time, created on
 * first need and kept until destroy), so no key schedule is ever recomputed per call and only
 * the tweak is set per data unit. ferry_crypto_key_destroy() must not race with operations on
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
 * @retval -EINVAL NULL argument, @p opts->size too small, unknown cipher, key_len not the
 *         cipher's, key1 equal to key2, data unit size not 512 or 4096.
 * @retval -ENOMEM out of memory.
 * @retval -EIO OpenSSL refused the key.
 */
FERRY_API int ferry_crypto_key_create(const struct ferry_crypto_key_opts *opts,
				      struct ferry_crypto_key **out);

/**
 * @brief Wipe and free a key and its cipher contexts. NULL: no-op.
 * No operation on the key may be running or start afterwards.
 */
FERRY_API void ferry_crypto_key_destroy(struct ferry_crypto_key *key);

/**
 * @brief The cipher of @p key (0 if @p key is NULL).
 */
FERRY_API enum ferry_cipher ferry_crypto_key_get_cipher(const struct ferry_crypto_key *key);

/**
 * @brief The data unit size of @p key in bytes (0 if @p key is NULL).
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
 * @param[in] tweak data unit sequence number of the first data unit (e.g. its LBA).
 * @retval 0 success.
 * @retval -EINVAL NULL key, NULL array with a non-zero count, a non-empty segment with a NULL
 *         base, totals different or not a multiple of the data unit size.
 * @retval -ENOMEM no cipher context could be allocated for this thread.
 * @retval -EIO OpenSSL failed (nothing is guaranteed about @p dst then).
 */
FERRY_API int ferry_crypto_encrypt(struct ferry_crypto_key *key, const struct iovec *dst,
				   uint32_t dst_cnt, const struct iovec *src, uint32_t src_cnt,
				   uint64_t tweak);

/**
 * @brief Decrypt @p src into @p dst; same contract as ferry_crypto_encrypt().
 */
FERRY_API int ferry_crypto_decrypt(struct ferry_crypto_key *key, const struct iovec *dst,
				   uint32_t dst_cnt, const struct iovec *src, uint32_t src_cnt,
				   uint64_t tweak);

FERRY_END_DECLS

#endif /* FERRY_CRYPTO_H */
