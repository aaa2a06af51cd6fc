/*
 * Stress: ONE AES-XTS key used by many threads at once (the key's context pool grows to one
 * pair per concurrent operation). Each thread encrypts and decrypts random data units with
 * random tweaks and scatter-gather layouts (data units straddling segments go through the
 * bounce path) and compares with the reference ciphertext computed single-threaded before the
 * threads start; another key is created, used and destroyed in a loop meanwhile.
 */
#include <errno.h>
#include "stress.h"

#define NTHREADS 6u
#define DU 512u
#define UNITS 64u /* reference buffer: 64 data units */
#define BYTES (DU * UNITS)

static struct ferry_crypto_key *key;
static uint8_t plain[BYTES], cipher[BYTES]; /* reference: tweak of unit i is BASE + i */
static const uint64_t BASE = 0x1122334455667788ull;
static uint64_t deadline;
static atomic_uint_fast64_t ops_done;

static struct ferry_crypto_key *make_key(uint64_t seed)
{
	uint8_t k1[32], k2[32];
	st_fill(k1, sizeof(k1), &seed);
	st_fill(k2, sizeof(k2), &seed);
	k2[0] = (uint8_t)(k1[0] ^ 0x5a);
	struct ferry_crypto_key_opts o = {.size = sizeof(o),
					  .cipher = FERRY_CIPHER_AES_XTS_256,
					  .key1 = k1,
					  .key2 = k2,
					  .key_len = 32,
					  .data_unit_size = DU};
	struct ferry_crypto_key *k = NULL;
	int rc = ferry_crypto_key_create(&o, &k);
	ST_CHECK(rc == 0, "key create: %d", rc);
	return k;
}

/* Cuts [buf, buf + len) into 1..8 segments at random points. */
static uint32_t cut(struct iovec *iov, uint8_t *buf, size_t len, uint64_t *seed)
{
	uint32_t n = (uint32_t)st_range(seed, 1, 8);
	size_t left = len;
	for (uint32_t i = 0; i < n; i++) {
		size_t l = i + 1 == n ? left : (size_t)st_range(seed, 0, left);
		iov[i] = (struct iovec){buf, l};
		buf += l;
		left -= l;
	}
	return n;
}

static void *worker(void *arg)
{
	uint64_t seed = 0xabcdef12345ull + (uint64_t)(uintptr_t)(*(void **)arg) * 7919u;
	uint8_t *out = malloc(BYTES), *back = malloc(BYTES);
	ST_CHECK(out && back, "malloc");
	uint64_t n = 0;
	while (st_now_ns() < deadline || n < 8) {
		uint32_t first = (uint32_t)st_range(&seed, 0, UNITS - 1);
		uint32_t units = (uint32_t)st_range(&seed, 1, UNITS - first);
		size_t len = (size_t)units * DU;
		struct iovec s[8], d[8];
		uint32_t sc = cut(s, plain + (size_t)first * DU, len, &seed);
		uint32_t dc = cut(d, out, len, &seed);
		int rc = ferry_crypto_encrypt(key, d, dc, s, sc, BASE + first);
		ST_CHECK(rc == 0, "encrypt: %d", rc);
		ST_CHECK(memcmp(out, cipher + (size_t)first * DU, len) == 0,
			 "ciphertext of units %u..%u", first, first + units - 1);
		sc = cut(s, out, len, &seed);
		dc = cut(d, back, len, &seed);
		rc = ferry_crypto_decrypt(key, d, dc, s, sc, BASE + first);
		ST_CHECK(rc == 0, "decrypt: %d", rc);
		ST_CHECK(memcmp(back, plain + (size_t)first * DU, len) == 0, "plaintext back");
		n++;
	}
	atomic_fetch_add_explicit(&ops_done, 2 * n, memory_order_relaxed);
	free(out);
	free(back);
	return NULL;
}

/* Keys come and go beside the shared one (their pools are separate). */
static void *key_churn(void *arg)
{
	(void)arg;
	uint64_t seed = 5;
	uint8_t a[DU], b[DU], c[DU];
	while (st_now_ns() < deadline) {
		struct ferry_crypto_key *k = make_key(st_rand(&seed) | 1);
		st_fill(a, sizeof(a), &seed);
		struct iovec ia = {a, DU}, ib = {b, DU}, ic = {c, DU};
		ST_CHECK(ferry_crypto_encrypt(k, &ib, 1, &ia, 1, 9) == 0, "churn encrypt");
		ST_CHECK(ferry_crypto_decrypt(k, &ic, 1, &ib, 1, 9) == 0, "churn decrypt");
		ST_CHECK(memcmp(a, c, DU) == 0, "churn round trip");
		ferry_crypto_key_destroy(k);
	}
	return NULL;
}

static void *run_role(void *arg)
{
	uintptr_t i = (uintptr_t)(*(void **)arg);
	return i < NTHREADS ? worker(arg) : key_churn(arg);
}

int main(void)
{
	uint64_t t0 = st_now_ns(), seed = 99;
	key = make_key(1234);
	st_fill(plain, sizeof(plain), &seed);
	struct iovec p = {plain, BYTES}, c = {cipher, BYTES};
	ST_CHECK(ferry_crypto_encrypt(key, &c, 1, &p, 1, BASE) == 0, "reference");
	deadline = st_now_ns() + st_run_ns(1000);
	void *ids[NTHREADS + 1];
	for (uintptr_t i = 0; i <= NTHREADS; i++)
		ids[i] = (void *)i;
	st_run_threads(NTHREADS + 1, run_role, ids, sizeof(ids[0]));
	ferry_crypto_key_destroy(key);
	printf("stress_crypto: %llu verified operations on one key, %.2f s\n",
	       (unsigned long long)atomic_load(&ops_done), (double)(st_now_ns() - t0) / 1e9);
	return 0;
}
