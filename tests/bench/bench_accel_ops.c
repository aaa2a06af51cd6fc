/*
 * ferry-bench "accel" suite, operation cases: each software-engine kernel of libferry against
 * the raw library it is built on, same buffers, same run, single thread.
 *
 *   crc32c          ferry_crc32c()          vs ISA-L crc32_iscsi()
 *   copy            ferry_iov_copy()        vs memcpy()
 *   encrypt-xts128  ferry_crypto_encrypt()  vs OpenSSL EVP and libgcrypt, both pre-keyed
 *   decrypt-xts128, encrypt-xts256, decrypt-xts256: the same
 *   dif-generate    ferry_dif_generate()    vs ISA-L crc16_t10dif() per block + tuple store
 *   dif-verify      ferry_dif_verify()      vs ISA-L crc16_t10dif() per block + tuple compare
 *
 * Sizes 4 KiB and 128 KiB of payload (for DIF: data bytes; the buffer holds 4096+8-byte
 * extended blocks). The case list ends with the sequence cases that other files add to the
 * "accel" suite (bench_accel_seq() hook or BENCH_CASE registrations).
 *
 * The XTS cases measure three sides in the same run (Ferry, raw OpenSSL, raw libgcrypt when
 * built with it), in alternating rounds, best round of each, and print the ratio of Ferry to
 * the faster library plus the implementation Ferry's key runs on.
 */
#include <stdlib.h>
#include <string.h>
#include <isa-l/crc.h>
#include <openssl/evp.h>
#ifdef FERRY_HAVE_GCRYPT
#include <gcrypt.h>
#endif
#include <ferry/crc.h>
#include <ferry/crypto.h>
#include <ferry/dif.h>
#include <ferry/memdomain.h>
#include "kernels_internal.h"
#include "bench.h"

#define DIF_BS 4096u
#define DIF_EXT (DIF_BS + 8u)
#define XTS_DU 4096u

static const size_t sizes[] = {4096, 131072};

struct op_arg {
	size_t size;
	uint8_t *src, *dst;
	struct iovec s, d;
	struct ferry_crypto_key *key;
	EVP_CIPHER_CTX *evp; /* keyed for the direction of the case */
	int enc;
#ifdef FERRY_HAVE_GCRYPT
	gcry_cipher_hd_t gcry;
#endif
	struct ferry_dif_ctx dif;
	uint32_t nblocks;
	volatile uint32_t sink;
};

static void *xalloc(size_t n)
{
	void *p = aligned_alloc(64, (n + 63) & ~(size_t)63);
	if (!p)
		bench_fail("out of memory (%zu bytes)", n);
	return p;
}

static void fill(uint8_t *p, size_t n)
{
	uint32_t x = 0x12345678u;
	for (size_t i = 0; i < n; i++) {
		x = x * 1664525u + 1013904223u;
		p[i] = (uint8_t)(x >> 24);
	}
}

/* ---- crc32c ------------------------------------------------------------------------------ */
static int crc_ferry(void *p)
{
	struct op_arg *a = p;
	a->sink = ferry_crc32c(0, a->src, a->size);
	return 0;
}

static int crc_ref(void *p)
{
	struct op_arg *a = p;
	a->sink = crc32_iscsi(a->src, (int)a->size, 0xFFFFFFFFu);
	return 0;
}

/* ---- copy ------------------------------------------------------------------------------ */
static int copy_ferry(void *p)
{
	struct op_arg *a = p;
	return ferry_iov_copy(&a->d, 1, &a->s, 1) == a->size ? 0 : -1;
}

static int copy_ref(void *p)
{
	struct op_arg *a = p;
	memcpy(a->dst, a->src, a->size);
	return 0;
}

/* ---- encrypt/decrypt-xts128/256 --------------------------------------------------------- */
static int xts_ferry(void *p)
{
	struct op_arg *a = p;
	return a->enc ? ferry_crypto_encrypt(a->key, &a->d, 1, &a->s, 1, 1000)
		      : ferry_crypto_decrypt(a->key, &a->d, 1, &a->s, 1, 1000);
}

static void lba_iv(uint8_t iv[16], uint64_t lba)
{
	memset(iv, 0, 16);
	for (int i = 0; i < 8; i++)
		iv[i] = (uint8_t)(lba >> (8 * i));
}

/*
 * The references do exactly what XTS requires of anyone: the key schedule is expanded once
 * (the context or handle is keyed before the measurement), and for every data unit the tweak
 * is set and the unit processed in one call. Like with like: Ferry does the same work plus
 * its argument checks, the iovec walk and borrowing a context from the key's pool.
 */
static int xts_openssl(void *p)
{
	struct op_arg *a = p;
	uint8_t iv[16];
	uint64_t lba = 1000;
	int outl;
	for (size_t off = 0; off < a->size; off += XTS_DU, lba++) {
		lba_iv(iv, lba);
		if (EVP_CipherInit_ex(a->evp, NULL, NULL, NULL, iv, -1) != 1 ||
		    EVP_CipherUpdate(a->evp, a->dst + off, &outl, a->src + off, XTS_DU) != 1)
			return -1;
	}
	return 0;
}

#ifdef FERRY_HAVE_GCRYPT
static int xts_gcrypt(void *p)
{
	struct op_arg *a = p;
	uint8_t iv[16];
	uint64_t lba = 1000;
	for (size_t off = 0; off < a->size; off += XTS_DU, lba++) {
		lba_iv(iv, lba);
		if (gcry_cipher_setiv(a->gcry, iv, 16))
			return -1;
		gcry_error_t e =
			a->enc ? gcry_cipher_encrypt(a->gcry, a->dst + off, XTS_DU, a->src + off,
						     XTS_DU)
			       : gcry_cipher_decrypt(a->gcry, a->dst + off, XTS_DU, a->src + off,
						     XTS_DU);
		if (e)
			return -1;
	}
	return 0;
}
#endif

/* Calls of fn taking about `target` seconds (at least 1); the first calls warm up. */
static uint64_t calls_for(bench_fn fn, void *arg, double target)
{
	for (uint64_t n = 1;; n *= 4) {
		double t0 = bench_now();
		for (uint64_t i = 0; i < n; i++)
			if (fn(arg))
				bench_fail("operation failed during calibration");
		double dt = bench_now() - t0;
		if (dt >= target / 4 || n >= (1ull << 40)) {
			uint64_t want = dt > 0 ? (uint64_t)(target * (double)n / dt) : n;
			return want ? want : 1;
		}
	}
}

#define XTS_ROUNDS 40 /* short rounds: more chances of one without a preemption */

/*
 * bench_compare() for n sides: calibrated, then XTS_ROUNDS rounds in which every side runs
 * once, the starting side rotating from round to round; the best round of each is kept.
 */
static void compare_n(int n, bench_fn const *fn, void *arg, size_t bytes, double *gbps)
{
	const double round = bench_opts.seconds / XTS_ROUNDS;
	uint64_t calls[3];
	double best[3];
	for (int i = 0; i < n; i++) {
		calls[i] = calls_for(fn[i], arg, round);
		best[i] = 1e30;
	}
	for (int r = 0; r < XTS_ROUNDS; r++) {
		for (int k = 0; k < n; k++) {
			int i = (r + k) % n;
			double t0 = bench_now();
			for (uint64_t c = 0; c < calls[i]; c++)
				if (fn[i](arg))
					bench_fail("operation failed while measured");
			double t = (bench_now() - t0) / (double)calls[i];
			best[i] = t < best[i] ? t : best[i];
		}
	}
	for (int i = 0; i < n; i++)
		gbps[i] = (double)bytes / best[i] / 1e9;
}

static void run_xts_case(const char *name, struct op_arg *a)
{
	if (!bench_selected(name))
		return;
	bench_fn fns[3] = {xts_ferry, xts_openssl, NULL};
	int n = 2;
#ifdef FERRY_HAVE_GCRYPT
	fns[n++] = xts_gcrypt;
#endif
	double g[3] = {0, 0, 0};
	compare_n(n, fns, a, a->size, g);
	const int gcry_best = n == 3 && g[2] > g[1];
	const double best = gcry_best ? g[2] : g[1];
	const char *impl = xts_key_impl(a->key) == XTS_IMPL_GCRYPT ? "gcrypt"
										  : "openssl";
	const struct bench_kv kv[] = {
		{"size", NULL, (double)a->size},
		{"ferry_gbps", NULL, g[0]},
		{"openssl_gbps", NULL, g[1]},
		{"gcrypt_gbps", n == 3 ? NULL : "n/a", g[2]},
		{"ref", gcry_best ? "gcrypt" : "openssl", 0},
		{"ref_gbps", NULL, best},
		{"ratio", NULL, best > 0 ? g[0] / best : 0},
		{"ferry_impl", impl, 0},
	};
	bench_emit_fields("accel", name, kv, sizeof(kv) / sizeof(kv[0]));
}

static void bench_xts(struct op_arg *a)
{
	static const uint8_t k1[32] = {0x27, 0x18, 0x28, 0x18, 0x28, 0x45, 0x90, 0x45,
				       0x23, 0x53, 0x60, 0x28, 0x74, 0x71, 0x35, 0x26,
				       0x62, 0x49, 0x77, 0x57, 0x24, 0x70, 0x93, 0x69,
				       0x99, 0x59, 0x57, 0x49, 0x66, 0x96, 0x76, 0x27};
	static const uint8_t k2[32] = {0x31, 0x41, 0x59, 0x26, 0x53, 0x58, 0x97, 0x93,
				       0x23, 0x84, 0x62, 0x64, 0x33, 0x83, 0x27, 0x95,
				       0x02, 0x88, 0x41, 0x97, 0x16, 0x93, 0x99, 0x37,
				       0x51, 0x05, 0x82, 0x09, 0x74, 0x94, 0x45, 0x92};
	static const char *const names[2][2] = {{"decrypt-xts128", "encrypt-xts128"},
						{"decrypt-xts256", "encrypt-xts256"}};
	for (int bits = 0; bits < 2; bits++) {
		const size_t klen = bits ? 32 : 16;
		struct ferry_crypto_key_opts ko = {
			.size = sizeof(ko),
			.cipher = bits ? FERRY_CIPHER_AES_XTS_256 : FERRY_CIPHER_AES_XTS_128,
			.key1 = k1,
			.key2 = k2,
			.key_len = klen,
			.data_unit_size = XTS_DU};
		uint8_t both[64];
		memcpy(both, k1, klen);
		memcpy(both + klen, k2, klen);
		if (ferry_crypto_key_create(&ko, &a->key))
			bench_fail("cannot set up the AES-XTS key");
		for (int enc = 1; enc >= 0; enc--) {
			if (!bench_selected(names[bits][enc]))
				continue;
			a->enc = enc;
			a->evp = EVP_CIPHER_CTX_new();
			if (!a->evp ||
			    EVP_CipherInit_ex(a->evp, bits ? EVP_aes_256_xts() : EVP_aes_128_xts(),
					      NULL, both, NULL, enc) != 1)
				bench_fail("cannot set up the OpenSSL AES-XTS context");
#ifdef FERRY_HAVE_GCRYPT
			if (gcry_cipher_open(&a->gcry, bits ? GCRY_CIPHER_AES256 : GCRY_CIPHER_AES128,
					     GCRY_CIPHER_MODE_XTS, 0) ||
			    gcry_cipher_setkey(a->gcry, both, 2 * klen))
				bench_fail("cannot set up the libgcrypt AES-XTS handle");
#endif
			/* The three sides must agree before anything is timed. */
			static uint8_t check[131072];
			if (xts_openssl(a))
				bench_fail("OpenSSL AES-XTS failed");
			memcpy(check, a->dst, a->size);
			if (xts_ferry(a) || memcmp(check, a->dst, a->size))
				bench_fail("%s: Ferry and OpenSSL differ", names[bits][enc]);
#ifdef FERRY_HAVE_GCRYPT
			if (xts_gcrypt(a) || memcmp(check, a->dst, a->size))
				bench_fail("%s: libgcrypt and OpenSSL differ", names[bits][enc]);
#endif
			run_xts_case(names[bits][enc], a);
			EVP_CIPHER_CTX_free(a->evp);
#ifdef FERRY_HAVE_GCRYPT
			gcry_cipher_close(a->gcry);
#endif
		}
		ferry_crypto_key_destroy(a->key);
		a->key = NULL;
	}
}

/* ---- dif-generate / dif-verify ----------------------------------------------------------- */
static int difgen_ferry(void *p)
{
	struct op_arg *a = p;
	return ferry_dif_generate(&a->dif, &a->d, 1, a->nblocks);
}

static int difgen_ref(void *p)
{
	struct op_arg *a = p;
	const uint16_t app = a->dif.app_tag;
	for (uint32_t b = 0; b < a->nblocks; b++) {
		uint8_t *blk = a->dst + (size_t)b * DIF_EXT, *pi = blk + DIF_BS;
		uint16_t g = crc16_t10dif(0, blk, DIF_BS);
		uint32_t ref = a->dif.init_ref_tag + b;
		pi[0] = (uint8_t)(g >> 8);
		pi[1] = (uint8_t)g;
		pi[2] = (uint8_t)(app >> 8);
		pi[3] = (uint8_t)app;
		pi[4] = (uint8_t)(ref >> 24);
		pi[5] = (uint8_t)(ref >> 16);
		pi[6] = (uint8_t)(ref >> 8);
		pi[7] = (uint8_t)ref;
	}
	return 0;
}

static int difver_ferry(void *p)
{
	struct op_arg *a = p;
	return ferry_dif_verify(&a->dif, &a->d, 1, a->nblocks, NULL);
}

static int difver_ref(void *p)
{
	struct op_arg *a = p;
	for (uint32_t b = 0; b < a->nblocks; b++) {
		const uint8_t *blk = a->dst + (size_t)b * DIF_EXT, *pi = blk + DIF_BS;
		uint16_t g = (uint16_t)(pi[0] << 8 | pi[1]);
		uint16_t app = (uint16_t)(pi[2] << 8 | pi[3]);
		uint32_t ref = (uint32_t)pi[4] << 24 | (uint32_t)pi[5] << 16 |
			       (uint32_t)pi[6] << 8 | pi[7];
		if (app == 0xFFFF)
			continue;
		if (g != crc16_t10dif(0, blk, DIF_BS) || app != a->dif.app_tag ||
		    ref != a->dif.init_ref_tag + b)
			return -1;
	}
	return 0;
}

/* ---- the suite ------------------------------------------------------------------------- */
static void run_case(const char *name, const char *ref, bench_fn f, bench_fn r, struct op_arg *a)
{
	if (!bench_selected(name))
		return;
	double fg, rg;
	bench_compare(f, a, r, a, a->size, &fg, &rg);
	bench_emit_compare("accel", name, a->size, fg, ref, rg);
}

void __attribute__((weak)) bench_accel_seq(int json);

void bench_suite_accel_ops(int json)
{
	(void)json; /* output format is in bench_opts; kept for the suite table's signature */
	for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
		struct op_arg a;
		memset(&a, 0, sizeof(a));
		a.size = sizes[si];
		a.nblocks = (uint32_t)(a.size / DIF_BS);
		const size_t ext = (size_t)a.nblocks * DIF_EXT;
		a.src = xalloc(ext);
		a.dst = xalloc(ext);
		fill(a.src, ext);
		memcpy(a.dst, a.src, ext);
		a.s = (struct iovec){a.src, a.size};
		a.d = (struct iovec){a.dst, a.size};

		run_case("crc32c", "isal", crc_ferry, crc_ref, &a);
		run_case("copy", "memcpy", copy_ferry, copy_ref, &a);

		bench_xts(&a);

		a.d = (struct iovec){a.dst, ext};
		if (ferry_dif_ctx_init(&a.dif, DIF_BS, 8, 1, FERRY_DIF_TYPE1,
				       FERRY_DIF_CHECK_GUARD | FERRY_DIF_CHECK_APPTAG |
					       FERRY_DIF_CHECK_REFTAG,
				       0x100, 0x1234, 0xFFFF))
			bench_fail("cannot set up the DIF context");
		run_case("dif-generate", "isal", difgen_ferry, difgen_ref, &a);
		/* dif-verify needs a generated buffer even when dif-generate was filtered out */
		if (ferry_dif_generate(&a.dif, &a.d, 1, a.nblocks) || difver_ref(&a) ||
		    ferry_dif_verify(&a.dif, &a.d, 1, a.nblocks, NULL))
			bench_fail("dif-verify: generated buffer does not verify");
		run_case("dif-verify", "isal", difver_ferry, difver_ref, &a);
		free(a.src);
		free(a.dst);
	}
	if (bench_accel_seq)
		bench_accel_seq(json);
}
