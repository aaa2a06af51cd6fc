/*
 * AES-XTS keys and the encrypt/decrypt kernels of the software engine, on OpenSSL EVP or on
 * libgcrypt, whichever is faster on the machine it runs on.
 *
 * Choosing the implementation: which library is faster depends on the CPU and the library
 * versions (on AVX-512/VAES machines libgcrypt 1.10 has a VAES XTS path and OpenSSL 3.0 has
 * not), so it is measured, never assumed. The first key of a cipher and data unit size made
 * in the process runs a short calibration (xts_calibrate(): encrypt+decrypt of 64 KiB with
 * both libraries, best of 16 alternating rounds, well under a millisecond), which also checks
 * that both produce identical bytes; libgcrypt is chosen only if it is more than
 * XTS_GCRYPT_MARGIN faster. OpenSSL is the baseline and the fallback: when Ferry is built
 * without libgcrypt, when libgcrypt is older at run time than at build time, when the two
 * disagree, or when libgcrypt refuses a key. FERRY_XTS_IMPL=openssl|gcrypt|auto in the
 * environment overrides the measurement (ferry/crypto.h). The choice and the figures are
 * logged at info level.
 *
 * Key schedule, OpenSSL: expanded once at create into two template contexts (encrypt and
 * decrypt; XTS needs a different schedule for each direction). Operations borrow a context
 * from the key's pool (ctx_get(): lock-free in the common case); a context is cloned from the templates with EVP_CIPHER_CTX_copy()
 * (which copies the expanded schedule, no re-expansion) the first time more threads than
 * contexts are inside an operation at once, and stays in the pool until destroy. Per data
 * unit only the IV (tweak) is set: EVP_CipherInit_ex(ctx, NULL, NULL, NULL, iv, -1).
 * libgcrypt: the same pool, of gcry_cipher_hd_t handles (one handle serves both directions;
 * a handle is not thread-safe, so one operation owns it at a time). libgcrypt cannot copy a
 * handle, so each pooled handle expands the schedule once, when it is created (once per
 * concurrently active thread, never per call); per data unit only gcry_cipher_setiv().
 *
 * Both libraries process one whole data unit per call (the tweak restarts at each call), so a
 * data unit that straddles segments is gathered into a stack buffer and, on the destination
 * side, scattered from it; contiguous data units go straight through.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#ifdef FERRY_HAVE_GCRYPT
#include <gcrypt.h>
#endif
#include <ferry/crypto.h>
#include <ferry/hal/iov.h>
#include "kernels_internal.h"
#include "core_internal.h"

#define COMP "crypto"
#define XTS_MAX_KEY 32         /* bytes of one half for AES-256 */
#define XTS_MAX_DATA_UNIT 4096 /* largest data unit (bounce buffer size) */
#define XTS_MAX_RAW_UNIT (1u << 20)
#define XTS_GCRYPT_MARGIN 1.03 /* libgcrypt must be >3% faster: no flapping on a tie */

/* One pooled cipher context set, borrowed by one operation at a time. */
struct xts_ctx {
	EVP_CIPHER_CTX *enc; /* OpenSSL keys: one context per direction */
	EVP_CIPHER_CTX *dec;
#ifdef FERRY_HAVE_GCRYPT
	gcry_cipher_hd_t hd; /* libgcrypt keys: one handle for both directions */
#endif
	atomic_int busy;          /* owned by an operation */
	struct xts_ctx *next_all; /* every context of the key; immutable once published */
};

struct ferry_crypto_key {
	enum ferry_cipher cipher;
	enum xts_impl impl; /* OPENSSL or GCRYPT, fixed at create */
	uint32_t data_unit;
	size_t key_len;
	uint8_t material[2 * XTS_MAX_KEY]; /* key1 || key2 */
	EVP_CIPHER_CTX *tmpl_enc;          /* OpenSSL: expanded schedules; never used on data */
	EVP_CIPHER_CTX *tmpl_dec;
	pthread_mutex_t lock;              /* serialises the pushes onto all_ctx */
	_Atomic(struct xts_ctx *) all_ctx; /* the pool: push-only until destroy */
};

static const EVP_CIPHER *xts_evp(enum ferry_cipher c)
{
	return c == FERRY_CIPHER_AES_XTS_128 ? EVP_aes_128_xts() : EVP_aes_256_xts();
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

/* ---- libgcrypt ------------------------------------------------------------------------- */
#ifdef FERRY_HAVE_GCRYPT
static pthread_once_t gcry_once = PTHREAD_ONCE_INIT;
static int gcry_usable;

static void gcry_init(void)
{
	/*
	 * gcry_check_version() initialises libgcrypt if the application has not. The rest of its
	 * initialisation (secure memory, GCRYCTL_INITIALIZATION_FINISHED) is the application's,
	 * as libgcrypt's manual asks of libraries; Ferry's handles do not use secure memory.
	 */
	if (!gcry_check_version(GCRYPT_VERSION)) {
		FERRY_WARN(COMP, "libgcrypt %s is older than %s, the version Ferry was built with: "
				 "AES-XTS uses OpenSSL",
			   gcry_check_version(NULL), GCRYPT_VERSION);
		return;
	}
	gcry_usable = 1;
}

static int gcry_ok(void)
{
	pthread_once(&gcry_once, gcry_init);
	return gcry_usable;
}

static gcry_cipher_hd_t gcry_hd_new(enum ferry_cipher cipher, const uint8_t *material,
				    size_t key_len)
{
	gcry_cipher_hd_t hd;
	int algo = cipher == FERRY_CIPHER_AES_XTS_128 ? GCRY_CIPHER_AES128 : GCRY_CIPHER_AES256;
	if (gcry_cipher_open(&hd, algo, GCRY_CIPHER_MODE_XTS, 0))
		return NULL;
	if (gcry_cipher_setkey(hd, material, 2 * key_len)) {
		gcry_cipher_close(hd);
		return NULL;
	}
	return hd;
}
#endif

/* The contexts of one operation: c->enc/c->dec for OpenSSL, c->hd for libgcrypt. */
static int xts_unit(enum xts_impl impl, struct xts_ctx *c, int enc, uint8_t *out,
		    const uint8_t *in, size_t len, uint64_t lo, uint64_t hi)
{
	/* The tweak is the 128-bit little-endian data unit sequence number hi:lo (IEEE 1619). */
	uint8_t iv[16];
	for (int i = 0; i < 8; i++) {
		iv[i] = (uint8_t)(lo >> (8 * i));
		iv[8 + i] = (uint8_t)(hi >> (8 * i));
	}
#ifdef FERRY_HAVE_GCRYPT
	if (impl == XTS_IMPL_GCRYPT) {
		/* In place is spelled with a NULL input in libgcrypt. */
		const void *gin = in == out ? NULL : in;
		size_t glen = in == out ? 0 : len;
		gcry_error_t e = gcry_cipher_setiv(c->hd, iv, sizeof(iv));
		if (!e)
			e = enc ? gcry_cipher_encrypt(c->hd, out, len, gin, glen)
				: gcry_cipher_decrypt(c->hd, out, len, gin, glen);
		if (e) {
			FERRY_ERR(COMP, "libgcrypt AES-XTS failed on a %zu-byte data unit: %s", len,
				  gcry_strerror(e));
			return -EIO;
		}
		return 0;
	}
#else
	(void)impl;
#endif
	EVP_CIPHER_CTX *x = enc ? c->enc : c->dec;
	int outl = 0;
	if (EVP_CipherInit_ex(x, NULL, NULL, NULL, iv, -1) != 1 ||
	    EVP_CipherUpdate(x, out, &outl, in, (int)len) != 1 || (size_t)outl != len) {
		FERRY_ERR(COMP, "OpenSSL AES-XTS failed on a %zu-byte data unit", len);
		return -EIO;
	}
	return 0;
}

/* ---- choosing the implementation ------------------------------------------------------- */
#ifdef FERRY_HAVE_GCRYPT
#define CAL_BYTES 65536
#define CAL_ROUNDS 16

static const char *impl_name(enum xts_impl i)
{
	return i == XTS_IMPL_GCRYPT ? "libgcrypt" : "OpenSSL";
}

static double mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Encrypt pt into ct and decrypt ct into back, data unit by data unit; seconds taken or < 0. */
static double cal_pass(enum xts_impl impl, struct xts_ctx *c, uint32_t du,
		       const uint8_t *pt, uint8_t *ct, uint8_t *back)
{
	double t0 = mono_now();
	for (size_t off = 0, u = 0; off < CAL_BYTES; off += du, u++) {
		if (xts_unit(impl, c, 1, ct + off, pt + off, du, u, 0) ||
		    xts_unit(impl, c, 0, back + off, ct + off, du, u, 0))
			return -1;
	}
	return mono_now() - t0;
}

/*
 * Measure both libraries on the same 64 KiB (encrypt + decrypt), in alternating rounds (which
 * one goes first alternates too), keeping each one's best round: robust against a preemption
 * on a shared machine. Also checks that they agree byte for byte. Returns 0, or -1 if
 * libgcrypt cannot be used (the reason is logged).
 */
static int xts_calibrate(enum ferry_cipher cipher, uint32_t du, double *g_ossl, double *g_gcry)
{
	const size_t klen = cipher == FERRY_CIPHER_AES_XTS_128 ? 16 : 32;
	uint8_t material[2 * XTS_MAX_KEY]; /* a throwaway key; the halves differ */
	for (size_t i = 0; i < sizeof(material); i++)
		material[i] = (uint8_t)(i * 37 + 11);
	struct xts_ctx o = {0}, g = {0};
	uint8_t *buf = aligned_alloc(64, 5 * CAL_BYTES);
	int rc = -1;
	o.enc = tmpl_create(xts_evp(cipher), material, 1);
	o.dec = tmpl_create(xts_evp(cipher), material, 0);
	g.hd = gcry_hd_new(cipher, material, klen);
	if (!buf || !o.enc || !o.dec) {
		FERRY_WARN(COMP, "AES-XTS calibration: out of memory; using OpenSSL");
		goto out;
	}
	if (!g.hd) {
		FERRY_WARN(COMP, "AES-XTS calibration: libgcrypt refused an AES-XTS key; using "
				 "OpenSSL");
		goto out;
	}
	uint8_t *pt = buf, *ct_o = buf + CAL_BYTES, *ct_g = buf + 2 * CAL_BYTES;
	uint8_t *back_o = buf + 3 * CAL_BYTES, *back_g = buf + 4 * CAL_BYTES;
	for (size_t i = 0; i < CAL_BYTES; i++)
		pt[i] = (uint8_t)(i * 131 + (i >> 8));
	/* The first pass of each warms up and is the agreement check. */
	if (cal_pass(XTS_IMPL_OPENSSL, &o, du, pt, ct_o, back_o) < 0 ||
	    cal_pass(XTS_IMPL_GCRYPT, &g, du, pt, ct_g, back_g) < 0)
		goto out;
	if (memcmp(ct_o, ct_g, CAL_BYTES) || memcmp(back_o, pt, CAL_BYTES) ||
	    memcmp(back_g, pt, CAL_BYTES)) {
		FERRY_WARN(COMP, "AES-XTS calibration: libgcrypt and OpenSSL disagree; using "
				 "OpenSSL");
		goto out;
	}
	double best_o = 1e30, best_g = 1e30;
	for (int r = 0; r < CAL_ROUNDS; r++) {
		for (int k = 0; k < 2; k++) {
			const int gcry_turn = (r + k) & 1;
			double t = gcry_turn ? cal_pass(XTS_IMPL_GCRYPT, &g, du, pt, ct_g, back_g)
					     : cal_pass(XTS_IMPL_OPENSSL, &o, du, pt, ct_o,
							back_o);
			if (t < 0)
				goto out;
			double *best = gcry_turn ? &best_g : &best_o;
			*best = t < *best ? t : *best;
		}
	}
	*g_ossl = 2.0 * CAL_BYTES / best_o / 1e9;
	*g_gcry = 2.0 * CAL_BYTES / best_g / 1e9;
	rc = 0;
out:
	EVP_CIPHER_CTX_free(o.enc);
	EVP_CIPHER_CTX_free(o.dec);
	if (g.hd)
		gcry_cipher_close(g.hd);
	free(buf);
	return rc;
}
#endif

/* The measured choice per cipher (128, 256) and data unit size (512, 4096); 0: not yet. */
struct xts_choice {
	atomic_int impl;
	double gbps_openssl, gbps_gcrypt; /* written before impl (release), read after (acquire) */
};
static struct xts_choice choices[2][2];
static pthread_mutex_t choice_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int forced_impl; /* xts_force_impl(); 0: not forced */

static enum xts_impl xts_choose(enum ferry_cipher cipher, uint32_t du,
				      struct xts_choice *ch)
{
	const int bits = cipher == FERRY_CIPHER_AES_XTS_128 ? 128 : 256;
	const char *env = getenv("FERRY_XTS_IMPL");
	if (env && *env && strcasecmp(env, "auto") != 0) {
		if (strcasecmp(env, "openssl") == 0) {
			FERRY_INFO(COMP, "AES-XTS-%d: OpenSSL (FERRY_XTS_IMPL=%s)", bits, env);
			return XTS_IMPL_OPENSSL;
		}
		if (strcasecmp(env, "gcrypt") == 0 || strcasecmp(env, "libgcrypt") == 0) {
#ifdef FERRY_HAVE_GCRYPT
			if (gcry_ok()) {
				FERRY_INFO(COMP, "AES-XTS-%d: libgcrypt (FERRY_XTS_IMPL=%s)", bits,
					   env);
				return XTS_IMPL_GCRYPT;
			}
#endif
			FERRY_WARN(COMP, "FERRY_XTS_IMPL=%s: libgcrypt is not available; using OpenSSL",
				   env);
			return XTS_IMPL_OPENSSL;
		}
		FERRY_WARN(COMP, "FERRY_XTS_IMPL=%s: not openssl, gcrypt or auto; measuring", env);
	}
#ifdef FERRY_HAVE_GCRYPT
	double go, gg;
	if (!gcry_ok() || xts_calibrate(cipher, du, &go, &gg))
		return XTS_IMPL_OPENSSL;
	ch->gbps_openssl = go;
	ch->gbps_gcrypt = gg;
	enum xts_impl pick =
		gg > go * XTS_GCRYPT_MARGIN ? XTS_IMPL_GCRYPT : XTS_IMPL_OPENSSL;
	FERRY_INFO(COMP,
		   "AES-XTS-%d, %u-byte data units: libgcrypt %.2f GB/s, OpenSSL %.2f GB/s "
		   "(measured, encrypt+decrypt): using %s",
		   bits, du, gg, go, impl_name(pick));
	return pick;
#else
	(void)ch;
	FERRY_DBG(COMP, "AES-XTS-%d: OpenSSL (built without libgcrypt)", bits);
	return XTS_IMPL_OPENSSL;
#endif
}

enum xts_impl xts_auto_impl(enum ferry_cipher cipher, uint32_t data_unit,
				  double *openssl_gbps, double *gcrypt_gbps)
{
	struct xts_choice *ch = &choices[cipher == FERRY_CIPHER_AES_XTS_128 ? 0 : 1]
					[data_unit == 512 ? 0 : 1];
	int v = atomic_load_explicit(&ch->impl, memory_order_acquire);
	if (!v) {
		pthread_mutex_lock(&choice_lock);
		v = atomic_load_explicit(&ch->impl, memory_order_relaxed);
		if (!v) {
			v = (int)xts_choose(cipher, data_unit, ch);
			atomic_store_explicit(&ch->impl, v, memory_order_release);
		}
		pthread_mutex_unlock(&choice_lock);
	}
	if (openssl_gbps)
		*openssl_gbps = ch->gbps_openssl;
	if (gcrypt_gbps)
		*gcrypt_gbps = ch->gbps_gcrypt;
	return (enum xts_impl)v;
}

int xts_force_impl(enum xts_impl impl)
{
	switch (impl) {
	case XTS_IMPL_AUTO:
	case XTS_IMPL_OPENSSL:
		break;
	case XTS_IMPL_GCRYPT:
#ifdef FERRY_HAVE_GCRYPT
		if (gcry_ok())
			break;
#endif
		return -ENOTSUP;
	default:
		return -EINVAL;
	}
	atomic_store(&forced_impl, (int)impl);
	return 0;
}

enum xts_impl xts_key_impl(const struct ferry_crypto_key *key)
{
	return key ? key->impl : (enum xts_impl)0;
}

/* ---- the per-key context pool ---------------------------------------------------------- */
static void ctx_free(struct xts_ctx *c)
{
	if (!c)
		return;
	/* EVP_CIPHER_CTX_free() and gcry_cipher_close() wipe the context, schedule included. */
	EVP_CIPHER_CTX_free(c->enc);
	EVP_CIPHER_CTX_free(c->dec);
#ifdef FERRY_HAVE_GCRYPT
	if (c->hd)
		gcry_cipher_close(c->hd);
#endif
	free(c);
}

static struct xts_ctx *ctx_new(struct ferry_crypto_key *key)
{
	struct xts_ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
#ifdef FERRY_HAVE_GCRYPT
	if (key->impl == XTS_IMPL_GCRYPT) {
		c->hd = gcry_hd_new(key->cipher, key->material, key->key_len);
		if (!c->hd) {
			free(c);
			return NULL;
		}
		return c;
	}
#endif
	c->enc = EVP_CIPHER_CTX_new();
	c->dec = EVP_CIPHER_CTX_new();
	if (!c->enc || !c->dec || EVP_CIPHER_CTX_copy(c->enc, key->tmpl_enc) != 1 ||
	    EVP_CIPHER_CTX_copy(c->dec, key->tmpl_dec) != 1) {
		ctx_free(c);
		return NULL;
	}
	return c;
}

/*
 * Borrow a context; NULL only if a new one could not be made. The pool is a push-only list
 * with a busy flag per context, so that the common case (a free context near the head) costs
 * one atomic exchange to take and one release store to give back, no lock: at 4 KiB per call
 * a mutex pair is a visible share of the time libgcrypt takes. Contexts are only freed at
 * destroy, which must not race with operations, so walking the list needs no lock.
 */
static struct xts_ctx *ctx_get(struct ferry_crypto_key *key)
{
	struct xts_ctx *c = atomic_load_explicit(&key->all_ctx, memory_order_acquire);
	for (; c; c = c->next_all) {
		if (!atomic_load_explicit(&c->busy, memory_order_relaxed) &&
		    !atomic_exchange_explicit(&c->busy, 1, memory_order_acquire))
			return c;
	}
	/* More threads inside an operation than contexts: one more, kept until destroy. The
	 * templates and the material are only read after create: no lock needed for that. */
	c = ctx_new(key);
	if (!c)
		return NULL;
	atomic_store_explicit(&c->busy, 1, memory_order_relaxed);
	pthread_mutex_lock(&key->lock);
	c->next_all = atomic_load_explicit(&key->all_ctx, memory_order_relaxed);
	atomic_store_explicit(&key->all_ctx, c, memory_order_release);
	pthread_mutex_unlock(&key->lock);
	return c;
}

static void ctx_put(struct xts_ctx *c)
{
	atomic_store_explicit(&c->busy, 0, memory_order_release);
}

/* OpenSSL keys: the two template contexts. 0 or -EIO. */
static int key_setup_openssl(struct ferry_crypto_key *key)
{
	const EVP_CIPHER *evp = xts_evp(key->cipher);
	key->tmpl_enc = tmpl_create(evp, key->material, 1);
	key->tmpl_dec = key->tmpl_enc ? tmpl_create(evp, key->material, 0) : NULL;
	if (!key->tmpl_enc || !key->tmpl_dec) {
		FERRY_ERR(COMP, "key_create: OpenSSL refused the AES-XTS key");
		return -EIO;
	}
	return 0;
}

/* The cipher, the two key halves and the data unit of @p opts; *out_len: bytes per half. */
static int key_opts_check(const struct ferry_crypto_key_opts *opts, size_t *out_len)
{
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
	*out_len = want;
	return 0;
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
	int rc = key_opts_check(opts, &want);
	if (rc)
		return rc;
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
	enum xts_impl impl = (enum xts_impl)atomic_load(&forced_impl);
	if (impl == XTS_IMPL_AUTO)
		impl = xts_auto_impl(key->cipher, key->data_unit, NULL, NULL);
	key->impl = impl;
	rc = impl == XTS_IMPL_OPENSSL ? key_setup_openssl(key) : 0;
	if (rc)
		goto err_key;
	/* One context up front, so that the first operation does not allocate. */
	struct xts_ctx *c = ctx_new(key);
	if (!c && key->impl == XTS_IMPL_GCRYPT) {
		FERRY_WARN(COMP, "key_create: libgcrypt refused the AES-XTS key; using OpenSSL");
		key->impl = XTS_IMPL_OPENSSL;
		rc = key_setup_openssl(key);
		if (rc)
			goto err_key;
		c = ctx_new(key);
	}
	if (!c) {
		FERRY_ERR(COMP, "key_create: out of memory for a cipher context");
		rc = -ENOMEM;
		goto err_key;
	}
	atomic_store_explicit(&key->all_ctx, c, memory_order_relaxed);
	*out = key;
	return 0;

err_key:
	ferry_crypto_key_destroy(key); /* frees whatever of the key was set up */
	return rc;
}

FERRY_API void ferry_crypto_key_destroy(struct ferry_crypto_key *key)
{
	if (!key)
		return;
	struct xts_ctx *c = atomic_load_explicit(&key->all_ctx, memory_order_acquire);
	while (c) {
		struct xts_ctx *next = c->next_all;
		ctx_free(c);
		c = next;
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

/* Lowest and one-past-highest address of the non-empty segments ({0, 0} if none). */
static void iov_span(const struct iovec *iov, uint32_t cnt, uintptr_t *lo, uintptr_t *hi)
{
	*lo = UINTPTR_MAX;
	*hi = 0;
	for (uint32_t i = 0; i < cnt; i++) {
		if (!iov[i].iov_len)
			continue;
		uintptr_t a = (uintptr_t)iov[i].iov_base;
		*lo = a < *lo ? a : *lo;
		*hi = a + iov[i].iov_len > *hi ? a + iov[i].iov_len : *hi;
	}
	if (*hi == 0)
		*lo = 0;
}

/*
 * Whether dst and src (already validated, equal totals) are either disjoint or exactly the
 * same bytes (byte k of dst at the address of byte k of src, with any segmentation on either
 * side): the only two layouts the kernel computes correctly. A partial overlap would make a
 * data unit read bytes that an earlier unit (or itself, shifted) already overwrote. Where two
 * segments overlap, "same bytes" means address minus logical offset is the same on both.
 * Disjoint spans, the usual case, cost one pass over each array.
 */
static int xts_overlap_ok(const struct iovec *dst, uint32_t dst_cnt, const struct iovec *src,
			  uint32_t src_cnt)
{
	uintptr_t slo, shi, dlo, dhi;
	iov_span(src, src_cnt, &slo, &shi);
	iov_span(dst, dst_cnt, &dlo, &dhi);
	if (shi <= dlo || dhi <= slo)
		return 1;
	size_t soff = 0;
	for (uint32_t i = 0; i < src_cnt; soff += src[i].iov_len, i++) {
		const uintptr_t sa = (uintptr_t)src[i].iov_base, se = sa + src[i].iov_len;
		size_t doff = 0;
		for (uint32_t j = 0; j < dst_cnt; doff += dst[j].iov_len, j++) {
			const uintptr_t da = (uintptr_t)dst[j].iov_base, de = da + dst[j].iov_len;
			if (sa < de && da < se && sa - soff != da - doff)
				return 0;
		}
	}
	return 1;
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
	if (ferry_hal_iov_total(src, src_cnt, &slen, &why) ||
	    ferry_hal_iov_total(dst, dst_cnt, &dlen, &why)) {
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
	if (!xts_overlap_ok(dst, dst_cnt, src, src_cnt)) {
		FERRY_ERR(COMP, "%s: source and destination overlap partially (only exactly the "
				"same bytes, in place, or disjoint buffers are allowed)",
			  op);
		return -EINVAL;
	}
	struct xts_ctx *c = ctx_get(key);
	if (!c) {
		FERRY_ERR(COMP, "%s: out of memory for a cipher context", op);
		return -ENOMEM;
	}
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
		rc = xts_unit(key->impl, c, enc, outp, in, du, lo, hi);
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
	ctx_put(c);
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

int xts_crypt_unit(struct ferry_crypto_key *key, int enc, void *dst, const void *src, size_t len,
		   uint64_t tweak)
{
	if (!key || !dst || !src || len < 16 || len % 16 || len > XTS_MAX_RAW_UNIT) {
		FERRY_ERR(COMP, "xts_unit: bad arguments (len %zu)", len);
		return -EINVAL;
	}
	const struct iovec d = {dst, len}, s = {(void *)src, len};
	if (!xts_overlap_ok(&d, 1, &s, 1)) {
		FERRY_ERR(COMP, "xts_unit: source and destination overlap partially");
		return -EINVAL;
	}
	struct xts_ctx *c = ctx_get(key);
	if (!c) {
		FERRY_ERR(COMP, "xts_unit: out of memory for a cipher context");
		return -ENOMEM;
	}
	int rc = xts_unit(key->impl, c, enc, dst, src, len, tweak, 0);
	ctx_put(c);
	return rc;
}
