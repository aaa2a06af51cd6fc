/*
 * AES-XTS keys and the encrypt/decrypt kernels of the software engine (OpenSSL EVP).
 *
 * Key schedule: expanded once at create into two template contexts (encrypt and decrypt; XTS
 * needs a different schedule for each direction). Operations borrow a context pair from the
 * key's pool; a pair is cloned from the templates with EVP_CIPHER_CTX_copy() (which copies the
 * expanded schedule, no re-expansion) the first time more threads than pairs are inside an
 * operation at once, and stays in the pool until destroy. Per data unit only the IV (tweak) is
 * set: EVP_CipherInit_ex(ctx, NULL, NULL, NULL, iv, -1).
 *
 * OpenSSL's XTS processes one whole data unit per EVP_CipherUpdate() call (the tweak restarts
 * at each call), so a data unit that straddles segments is gathered into a stack buffer and,
 * on the destination side, scattered from it; contiguous data units go straight through.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <ferry/crypto.h>
#include <ferry/hal/iov.h>
#include "kernels_internal.h"
#include "core_internal.h"

#define COMP "crypto"
#define XTS_MAX_KEY 32         /* bytes of one half for AES-256 */
#define XTS_MAX_DATA_UNIT 4096 /* largest data unit (bounce buffer size) */
#define XTS_MAX_RAW_UNIT (1u << 20)

/* One encrypt and one decrypt context, borrowed by one operation at a time. */
struct xts_pair {
	EVP_CIPHER_CTX *enc;
	EVP_CIPHER_CTX *dec;
	struct xts_pair *next_free; /* free list (under lock) */
	struct xts_pair *next_all;  /* every pair of the key (under lock), for destroy */
};

struct ferry_crypto_key {
	enum ferry_cipher cipher;
	uint32_t data_unit;
	size_t key_len;
	uint8_t material[2 * XTS_MAX_KEY]; /* key1 || key2 */
	EVP_CIPHER_CTX *tmpl_enc;          /* expanded schedules; never used on data */
	EVP_CIPHER_CTX *tmpl_dec;
	pthread_mutex_t lock;
	struct xts_pair *free_pairs;
	struct xts_pair *all_pairs;
};

static const EVP_CIPHER *xts_evp(enum ferry_cipher c)
{
	return c == FERRY_CIPHER_AES_XTS_128 ? EVP_aes_128_xts() : EVP_aes_256_xts();
}

static void pair_free(struct xts_pair *p)
{
	if (!p)
		return;
	/* EVP_CIPHER_CTX_free() wipes the provider context, schedule included. */
	EVP_CIPHER_CTX_free(p->enc);
	EVP_CIPHER_CTX_free(p->dec);
	free(p);
}

static struct xts_pair *pair_clone(struct ferry_crypto_key *key)
{
	struct xts_pair *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->enc = EVP_CIPHER_CTX_new();
	p->dec = EVP_CIPHER_CTX_new();
	if (!p->enc || !p->dec || EVP_CIPHER_CTX_copy(p->enc, key->tmpl_enc) != 1 ||
	    EVP_CIPHER_CTX_copy(p->dec, key->tmpl_dec) != 1) {
		pair_free(p);
		return NULL;
	}
	return p;
}

/* Borrow a context pair; NULL only if a new one could not be made. */
static struct xts_pair *pair_get(struct ferry_crypto_key *key)
{
	pthread_mutex_lock(&key->lock);
	struct xts_pair *p = key->free_pairs;
	if (p)
		key->free_pairs = p->next_free;
	pthread_mutex_unlock(&key->lock);
	if (p)
		return p;
	/* The templates are only read after create, so cloning needs no lock. */
	p = pair_clone(key);
	if (!p)
		return NULL;
	pthread_mutex_lock(&key->lock);
	p->next_all = key->all_pairs;
	key->all_pairs = p;
	pthread_mutex_unlock(&key->lock);
	return p;
}

static void pair_put(struct ferry_crypto_key *key, struct xts_pair *p)
{
	pthread_mutex_lock(&key->lock);
	p->next_free = key->free_pairs;
	key->free_pairs = p;
	pthread_mutex_unlock(&key->lock);
}

static EVP_CIPHER_CTX *tmpl_create(const EVP_CIPHER *evp, const uint8_t *material, int enc)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	if (!c)
		return NULL;
	if (EVP_CipherInit_ex(c, evp, NULL, material, NULL, enc) != 1) {
		EVP_CIPHER_CTX_free(c);
		return NULL;
	}
	return c;
}

FERRY_API int ferry_crypto_key_create(const struct ferry_crypto_key_opts *opts,
				      struct ferry_crypto_key **out)
{
	if (!opts || !out) {
		FERRY_ERR(COMP, "key_create: NULL %s", !opts ? "opts" : "out");
		return -EINVAL;
	}
	*out = NULL;
	if (OPTS_SIZE_CHECK(COMP, "key_create", opts, struct ferry_crypto_key_opts))
		return -EINVAL;
	size_t want;
	switch (opts->cipher) {
	case FERRY_CIPHER_AES_XTS_128:
		want = 16;
		break;
	case FERRY_CIPHER_AES_XTS_256:
		want = 32;
		break;
	default:
		FERRY_ERR(COMP, "key_create: unknown cipher %d", (int)opts->cipher);
		return -EINVAL;
	}
	if (opts->key_len != want) {
		FERRY_ERR(COMP, "key_create: key_len %zu, this cipher needs %zu bytes per half",
			  opts->key_len, want);
		return -EINVAL;
	}
	if (!opts->key1 || !opts->key2) {
		FERRY_ERR(COMP, "key_create: NULL %s", !opts->key1 ? "key1" : "key2");
		return -EINVAL;
	}
	if (CRYPTO_memcmp(opts->key1, opts->key2, want) == 0) {
		FERRY_ERR(COMP, "key_create: key1 equals key2 (XTS requires two different keys)");
		return -EINVAL;
	}
	if (opts->data_unit_size != 512 && opts->data_unit_size != 4096) {
		FERRY_ERR(COMP, "key_create: data_unit_size %u, must be 512 or 4096",
			  opts->data_unit_size);
		return -EINVAL;
	}
	struct ferry_crypto_key *key = calloc(1, sizeof(*key));
	if (!key) {
		FERRY_ERR(COMP, "key_create: out of memory");
		return -ENOMEM;
	}
	key->cipher = opts->cipher;
	key->data_unit = opts->data_unit_size;
	key->key_len = want;
	memcpy(key->material, opts->key1, want);
	memcpy(key->material + want, opts->key2, want);
	pthread_mutex_init(&key->lock, NULL);
	const EVP_CIPHER *evp = xts_evp(key->cipher);
	key->tmpl_enc = tmpl_create(evp, key->material, 1);
	key->tmpl_dec = key->tmpl_enc ? tmpl_create(evp, key->material, 0) : NULL;
	if (!key->tmpl_enc || !key->tmpl_dec) {
		FERRY_ERR(COMP, "key_create: OpenSSL refused the AES-XTS key");
		ferry_crypto_key_destroy(key);
		return -EIO;
	}
	/* One pair up front so that the first operation does not allocate. */
	struct xts_pair *p = pair_clone(key);
	if (!p) {
		FERRY_ERR(COMP, "key_create: out of memory for a cipher context");
		ferry_crypto_key_destroy(key);
		return -ENOMEM;
	}
	key->all_pairs = key->free_pairs = p;
	*out = key;
	return 0;
}

FERRY_API void ferry_crypto_key_destroy(struct ferry_crypto_key *key)
{
	if (!key)
		return;
	struct xts_pair *p = key->all_pairs;
	while (p) {
		struct xts_pair *next = p->next_all;
		pair_free(p);
		p = next;
	}
	EVP_CIPHER_CTX_free(key->tmpl_enc);
	EVP_CIPHER_CTX_free(key->tmpl_dec);
	pthread_mutex_destroy(&key->lock);
	OPENSSL_cleanse(key, sizeof(*key));
	free(key);
}

FERRY_API enum ferry_cipher ferry_crypto_key_get_cipher(const struct ferry_crypto_key *key)
{
	return key ? key->cipher : (enum ferry_cipher)0;
}

FERRY_API uint32_t ferry_crypto_key_get_data_unit(const struct ferry_crypto_key *key)
{
	return key ? key->data_unit : 0;
}

/* One data unit: set the tweak (128-bit little-endian hi:lo), run the cipher. */
static int xts_unit(EVP_CIPHER_CTX *c, uint8_t *out, const uint8_t *in, size_t len, uint64_t lo,
		    uint64_t hi)
{
	uint8_t iv[16];
	for (int i = 0; i < 8; i++) {
		iv[i] = (uint8_t)(lo >> (8 * i));
		iv[8 + i] = (uint8_t)(hi >> (8 * i));
	}
	int outl = 0;
	if (EVP_CipherInit_ex(c, NULL, NULL, NULL, iv, -1) != 1 ||
	    EVP_CipherUpdate(c, out, &outl, in, (int)len) != 1 || (size_t)outl != len) {
		FERRY_ERR(COMP, "OpenSSL AES-XTS failed on a %zu-byte data unit", len);
		return -EIO;
	}
	return 0;
}

static int xts_run(const char *op, struct ferry_crypto_key *key, int enc, const struct iovec *dst,
		   uint32_t dst_cnt, const struct iovec *src, uint32_t src_cnt, uint64_t tweak)
{
	size_t dlen, slen;
	const char *why = NULL;
	if (!key) {
		FERRY_ERR(COMP, "%s: NULL key", op);
		return -EINVAL;
	}
	if (ferry_hal_iov_total(src, src_cnt, &slen, &why) || ferry_hal_iov_total(dst, dst_cnt, &dlen, &why)) {
		FERRY_ERR(COMP, "%s: %s", op, why);
		return -EINVAL;
	}
	const size_t du = key->data_unit;
	if (slen != dlen) {
		FERRY_ERR(COMP, "%s: source is %zu bytes but destination is %zu", op, slen, dlen);
		return -EINVAL;
	}
	if (slen % du) {
		FERRY_ERR(COMP, "%s: length %zu is not a multiple of the data unit size %zu", op,
			  slen, du);
		return -EINVAL;
	}
	if (slen == 0)
		return 0;
	struct xts_pair *pair = pair_get(key);
	if (!pair) {
		FERRY_ERR(COMP, "%s: out of memory for a cipher context", op);
		return -ENOMEM;
	}
	EVP_CIPHER_CTX *c = enc ? pair->enc : pair->dec;
	_Alignas(64) uint8_t bounce[XTS_MAX_DATA_UNIT];
	struct ferry_hal_iov_cur s, d;
	ferry_hal_iov_cur_init(&s, src, src_cnt);
	ferry_hal_iov_cur_init(&d, dst, dst_cnt);
	uint64_t lo = tweak, hi = 0;
	int rc = 0, bounced = 0;
	for (size_t units = slen / du; units; units--) {
		const int s_contig = ferry_hal_iov_cur_avail(&s) >= du;
		const int d_contig = ferry_hal_iov_cur_avail(&d) >= du;
		const uint8_t *in;
		bounced |= !s_contig || !d_contig;
		if (s_contig) {
			in = ferry_hal_iov_cur_ptr(&s);
		} else {
			ferry_hal_iov_cur_gather(&s, bounce, du);
			in = bounce;
		}
		uint8_t *outp = d_contig ? ferry_hal_iov_cur_ptr(&d) : bounce;
		rc = xts_unit(c, outp, in, du, lo, hi);
		if (rc)
			break;
		if (s_contig)
			ferry_hal_iov_cur_advance(&s, du);
		if (d_contig)
			ferry_hal_iov_cur_advance(&d, du);
		else
			ferry_hal_iov_cur_scatter(&d, bounce, du);
		if (++lo == 0)
			hi++;
	}
	if (bounced) /* plaintext may have passed through the stack */
		OPENSSL_cleanse(bounce, sizeof(bounce));
	pair_put(key, pair);
	return rc;
}

FERRY_API int ferry_crypto_encrypt(struct ferry_crypto_key *key, const struct iovec *dst,
				   uint32_t dst_cnt, const struct iovec *src, uint32_t src_cnt,
				   uint64_t tweak)
{
	return xts_run("encrypt", key, 1, dst, dst_cnt, src, src_cnt, tweak);
}

FERRY_API int ferry_crypto_decrypt(struct ferry_crypto_key *key, const struct iovec *dst,
				   uint32_t dst_cnt, const struct iovec *src, uint32_t src_cnt,
				   uint64_t tweak)
{
	return xts_run("decrypt", key, 0, dst, dst_cnt, src, src_cnt, tweak);
}

int ferry_crypto_xts_unit(struct ferry_crypto_key *key, int enc, void *dst, const void *src,
			  size_t len, uint64_t tweak)
{
	if (!key || !dst || !src || len < 16 || len % 16 || len > XTS_MAX_RAW_UNIT) {
		FERRY_ERR(COMP, "xts_unit: bad arguments (len %zu)", len);
		return -EINVAL;
	}
	struct xts_pair *pair = pair_get(key);
	if (!pair) {
		FERRY_ERR(COMP, "xts_unit: out of memory for a cipher context");
		return -ENOMEM;
	}
	int rc = xts_unit(enc ? pair->enc : pair->dec, dst, src, len, tweak, 0);
	pair_put(key, pair);
	return rc;
}
