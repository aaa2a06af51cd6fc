/*
 * xts_check: an independent AES-XTS checker for the QEMU-guest tests (tests/vm/). It decrypts a
 * region of a target's store with OpenSSL EVP directly (no Ferry code) and compares it with the
 * plaintext the host wrote, proving the bytes at rest are the ciphertext Ferry's crypto bdev
 * must produce (IEEE 1619 data unit sequence numbers, the convention of ferry/crypto.h: data unit
 * i uses tweak FIRST + i as a 128-bit integer, little-endian in the 16-byte tweak block).
 *
 *   xts_check -k HEXKEY -u DATA_UNIT [-t FIRST_TWEAK] [-o OFFSET] [-l LENGTH] STORE PLAIN
 *
 * HEXKEY is key1 || key2: 64 hex digits for AES-128-XTS, 128 for AES-256-XTS. OFFSET (bytes into
 * STORE, default 0) and LENGTH (default: PLAIN's size) are multiples of DATA_UNIT; FIRST_TWEAK
 * defaults to OFFSET / DATA_UNIT. Exits 0 if every data unit decrypts to PLAIN and no data unit
 * of STORE equals its plaintext (the store holds no clear text), 1 otherwise, 2 on a usage or
 * I/O error.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int parse_key(const char *hex, unsigned char *key, size_t *len)
{
	size_t n = strlen(hex);

	if (n != 64 && n != 128)
		return -EINVAL;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		key[i] = (unsigned char)(hi << 4 | lo);
	}
	*len = n / 2;
	return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno != 0 || end == s || *end != '\0')
		return -EINVAL;
	*out = v;
	return 0;
}

/* The 16-byte tweak block of data unit sequence number hi:lo, little-endian. */
static void tweak_block(uint64_t lo, uint64_t hi, unsigned char iv[16])
{
	for (int i = 0; i < 8; i++) {
		iv[i] = (unsigned char)(lo >> (8 * i));
		iv[8 + i] = (unsigned char)(hi >> (8 * i));
	}
}

static int read_at(FILE *f, uint64_t off, unsigned char *buf, size_t len)
{
	if (fseeko(f, (off_t)off, SEEK_SET) != 0)
		return -errno;
	return fread(buf, 1, len, f) == len ? 0 : -EIO;
}

static void usage(void)
{
	fprintf(stderr, "usage: xts_check -k HEXKEY -u DATA_UNIT [-t FIRST_TWEAK] [-o OFFSET] "
			"[-l LENGTH] STORE PLAIN\n");
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned char key[64];
	size_t key_len = 0;
	uint64_t unit = 0, first = 0, off = 0, len = 0;
	int have_first = 0, have_len = 0, opt;

	while ((opt = getopt(argc, argv, "k:u:t:o:l:")) != -1) {
		switch (opt) {
		case 'k':
			if (parse_key(optarg, key, &key_len) != 0)
				usage();
			break;
		case 'u':
			if (parse_u64(optarg, &unit) != 0)
				usage();
			break;
		case 't':
			if (parse_u64(optarg, &first) != 0)
				usage();
			have_first = 1;
			break;
		case 'o':
			if (parse_u64(optarg, &off) != 0)
				usage();
			break;
		case 'l':
			if (parse_u64(optarg, &len) != 0)
				usage();
			have_len = 1;
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 2 || key_len == 0 || unit < 16 || unit > (1u << 20) || off % unit)
		usage();
	if (memcmp(key, key + key_len / 2, key_len / 2) == 0) {
		fprintf(stderr, "xts_check: key1 equals key2 (XTS refuses it)\n");
		return 2;
	}

	FILE *store = fopen(argv[optind], "rb"), *plain = fopen(argv[optind + 1], "rb");
	if (store == NULL || plain == NULL) {
		fprintf(stderr, "xts_check: cannot open %s\n",
			store ? argv[optind + 1] : argv[optind]);
		return 2;
	}
	if (!have_len && fseeko(plain, 0, SEEK_END) == 0)
		len = (uint64_t)ftello(plain);
	if (len == 0 || len % unit) {
		fprintf(stderr,
			"xts_check: length %" PRIu64 " is not a positive multiple of %" PRIu64 "\n",
			len, unit);
		fclose(store);
		fclose(plain);
		return 2;
	}
	if (!have_first)
		first = off / unit;

	const EVP_CIPHER *cipher = key_len == 32 ? EVP_aes_128_xts() : EVP_aes_256_xts();
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	unsigned char *c = malloc(unit), *p = malloc(unit), *d = malloc(unit);
	uint64_t units = len / unit, bad = 0, clear = 0;
	int rc = 2;

	if (ctx == NULL || c == NULL || p == NULL || d == NULL)
		goto out;
	for (uint64_t i = 0; i < units; i++) {
		unsigned char iv[16];
		uint64_t lo = first + i, hi = lo < first ? 1 : 0; /* carry into the upper 64 bits */
		int outl = 0, fin = 0;

		if (read_at(store, off + i * unit, c, unit) != 0 ||
		    read_at(plain, i * unit, p, unit) != 0) {
			fprintf(stderr, "xts_check: short read at data unit %" PRIu64 "\n", i);
			goto out;
		}
		tweak_block(lo, hi, iv);
		if (EVP_DecryptInit_ex(ctx, cipher, NULL, key, iv) != 1 ||
		    EVP_DecryptUpdate(ctx, d, &outl, c, (int)unit) != 1 ||
		    EVP_DecryptFinal_ex(ctx, d + outl, &fin) != 1 ||
		    (uint64_t)(outl + fin) != unit) {
			fprintf(stderr, "xts_check: OpenSSL decrypt failed\n");
			goto out;
		}
		if (memcmp(c, p, unit) == 0)
			clear++;
		if (memcmp(d, p, unit) != 0) {
			if (bad == 0)
				fprintf(stderr,
					"xts_check: data unit %" PRIu64 " (store offset %" PRIu64
					", tweak %" PRIu64 ") does not decrypt to the plaintext\n",
					i, off + i * unit, lo);
			bad++;
		}
	}
	printf("xts_check: %" PRIu64 " data units of %" PRIu64 " bytes: %" PRIu64
	       " mismatched, %" PRIu64 " stored in clear\n",
	       units, unit, bad, clear);
	rc = bad == 0 && clear == 0 ? 0 : 1;
out:
	EVP_CIPHER_CTX_free(ctx);
	free(c);
	free(p);
	free(d);
	fclose(store);
	fclose(plain);
	return rc;
}
