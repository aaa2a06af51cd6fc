/*
 * Internal entry points of the AES-XTS kernels (xts.c) for the software engine, the
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
int xts_crypt_unit(struct ferry_crypto_key *key, int enc, void *dst, const void *src, size_t len,
		   uint64_t tweak);

/* The AES-XTS implementations a key can run on (xts.c). */
enum xts_impl {
	XTS_IMPL_AUTO = 0,    /* measured on first use (see xts.c), or FERRY_XTS_IMPL */
	XTS_IMPL_OPENSSL = 1, /* OpenSSL EVP: the baseline, always built */
	XTS_IMPL_GCRYPT = 2,  /* libgcrypt, if built with it and usable at run time */
};

/*
 * Force the implementation of the keys created from now on in this process (tests, bench);
 * XTS_IMPL_AUTO returns to the measured choice. Keys already created keep theirs.
 * Returns 0, -ENOTSUP (libgcrypt not built in or not usable here) or -EINVAL.
 */
int xts_force_impl(enum xts_impl impl);

/* The implementation @p key runs on (never AUTO); 0 for NULL. */
enum xts_impl xts_key_impl(const struct ferry_crypto_key *key);

/*
 * The choice that keys of this cipher and data unit size get when nothing is forced,
 * calibrating first if that was not done yet; *openssl_gbps and *gcrypt_gbps (either may be
 * NULL) receive the measured figures (0 when not measured: forced by FERRY_XTS_IMPL, or no
 * libgcrypt).
 */
enum xts_impl xts_auto_impl(enum ferry_cipher cipher, uint32_t data_unit,
				  double *openssl_gbps, double *gcrypt_gbps);

#endif /* FERRY_CRYPTO_INTERNAL_H */
