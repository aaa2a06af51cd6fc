/*
 * Internal entry points of the AES-XTS kernels (crypto_xts.c) for the software engine, the
 * mock's fused engine and the tests. Never installed.
 */
#ifndef FERRY_CRYPTO_INTERNAL_H
#define FERRY_CRYPTO_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <ferry/crypto.h>

/*
 * Encrypt (enc != 0) or decrypt one contiguous data unit of any length that is a multiple of
 * 16 bytes, from 16 bytes to 1 MiB, ignoring the key's configured data unit size. Used by the
 * known-answer tests whose vectors have 32-byte data units. In place allowed (dst == src).
 * Returns 0, -EINVAL, -ENOMEM or -EIO.
 */
int ferry_crypto_xts_unit(struct ferry_crypto_key *key, int enc, void *dst, const void *src,
			  size_t len, uint64_t tweak);

#endif /* FERRY_CRYPTO_INTERNAL_H */
