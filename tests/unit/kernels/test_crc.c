/* CRC32C and CRC16-T10DIF: known answers, chaining, iovec form, against bitwise references. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <ferry/crc.h>
#include <ferry/log.h>

static const char check_str[] = "123456789";

/* Bitwise references, written from the definitions (independent of ISA-L). */
static uint32_t ref_crc32c(const uint8_t *p, size_t n)
{
	uint32_t c = 0xFFFFFFFFu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int b = 0; b < 8; b++)
			c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
	}
	return ~c;
}

static uint16_t ref_crc16_t10dif(const uint8_t *p, size_t n)
{
	uint16_t c = 0;
	for (size_t i = 0; i < n; i++) {
		c ^= (uint16_t)(p[i] << 8);
		for (int b = 0; b < 8; b++)
			c = (uint16_t)((c & 0x8000) ? (c << 1) ^ 0x8BB7 : c << 1);
	}
	return c;
}

static void fill_random(uint8_t *p, size_t n, unsigned seed)
{
	srand(seed);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rand();
}

Test(crc, crc32c_known_answer)
{
	cr_assert_eq(ferry_crc32c(0, check_str, 9), 0xE3069283u);
	cr_assert_eq(ref_crc32c((const uint8_t *)check_str, 9), 0xE3069283u);
	/* 32 bytes of zeros: the iSCSI (RFC 3720 B.4) example. */
	uint8_t zeros[32] = {0};
	cr_assert_eq(ferry_crc32c(0, zeros, sizeof(zeros)), 0x8A9136AAu);
}

Test(crc, crc16_known_answer)
{
	cr_assert_eq(ferry_crc16_t10dif(0, check_str, 9), 0xD0DB);
	cr_assert_eq(ref_crc16_t10dif((const uint8_t *)check_str, 9), 0xD0DB);
}

Test(crc, chaining_at_every_split)
{
	for (size_t k = 0; k <= 9; k++) {
		uint32_t c = ferry_crc32c(ferry_crc32c(0, check_str, k), check_str + k, 9 - k);
		cr_assert_eq(c, 0xE3069283u, "crc32c split at %zu: 0x%08x", k, c);
		uint16_t d = ferry_crc16_t10dif(ferry_crc16_t10dif(0, check_str, k), check_str + k,
						9 - k);
		cr_assert_eq(d, 0xD0DB, "crc16 split at %zu: 0x%04x", k, d);
	}
}

Test(crc, empty_and_null_leave_crc_unchanged)
{
	cr_assert_eq(ferry_crc32c(0x12345678u, NULL, 0), 0x12345678u);
	cr_assert_eq(ferry_crc32c(0x12345678u, check_str, 0), 0x12345678u);
	cr_assert_eq(ferry_crc32c(0, NULL, 0), 0u);
	cr_assert_eq(ferry_crc16_t10dif(0xBEEF, NULL, 0), 0xBEEF);
	cr_assert_eq(ferry_crc32c_iov(0xCAFEu, NULL, 3), 0xCAFEu);
	cr_assert_eq(ferry_crc32c_iov(0xCAFEu, NULL, 0), 0xCAFEu);
}

Test(crc, random_data_matches_reference)
{
	static uint8_t buf[70000];
	fill_random(buf, sizeof(buf), 1);
	const size_t lens[] = {1,  2,   3,   7,   8,   15,  16,   17,   31,   63,    64,
			       65, 255, 256, 511, 512, 520, 1000, 4096, 4104, 65536, 70000};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t n = lens[i];
		const uint8_t *p = buf + (i % 13); /* misaligned starts too */
		if (n + (i % 13) > sizeof(buf))
			p = buf;
		cr_assert_eq(ferry_crc32c(0, p, n), ref_crc32c(p, n), "crc32c len %zu", n);
		cr_assert_eq(ferry_crc16_t10dif(0, p, n), ref_crc16_t10dif(p, n), "crc16 len %zu",
			     n);
	}
}

Test(crc, iov_equals_flat_for_random_segmentations)
{
	static uint8_t buf[9000];
	fill_random(buf, sizeof(buf), 2);
	const uint32_t want = ferry_crc32c(0, buf, sizeof(buf));
	srand(3);
	for (int round = 0; round < 200; round++) {
		struct iovec iov[64];
		uint32_t cnt = 0;
		size_t off = 0;
		while (off < sizeof(buf) && cnt < 63) {
			size_t n = (size_t)(rand() % 700); /* zero-length segments included */
			if (n > sizeof(buf) - off)
				n = sizeof(buf) - off;
			iov[cnt].iov_base = buf + off;
			iov[cnt].iov_len = n;
			cnt++;
			off += n;
		}
		iov[cnt].iov_base = buf + off;
		iov[cnt].iov_len = sizeof(buf) - off;
		cnt++;
		cr_assert_eq(ferry_crc32c_iov(0, iov, cnt), want, "round %d (%u segments)", round,
			     cnt);
	}
	/* Chained over two iovec calls. */
	struct iovec a = {buf, 1234}, b = {buf + 1234, sizeof(buf) - 1234};
	cr_assert_eq(ferry_crc32c_iov(ferry_crc32c_iov(0, &a, 1), &b, 1), want);
}

/* ---- refusals: one rule for NULL in every function ------------------------------------- */
static void quiet_log(enum ferry_log_level l, const char *c, const char *f, va_list ap)
{
	(void)l;
	(void)c;
	(void)f;
	(void)ap;
}

static void quiet_setup(void)
{
	ferry_log_set_handler(quiet_log);
}

Test(crc, iov_segment_with_null_base_and_length_is_refused, .init = quiet_setup)
{
	static const char tail[] = "456789";
	struct iovec iov[3] = {{(void *)check_str, 3}, {NULL, 5}, {(void *)tail, 6}};
	/* Not the CRC of the valid segments (what the call used to return): refused as a whole. */
	cr_assert_eq(ferry_crc32c_iov(0x1234u, iov, 3), 0x1234u);
	cr_assert(strstr(ferry_last_error(), "NULL base") != NULL, "%s", ferry_last_error());
	/* A NULL base with a zero length is an empty segment and fine. */
	iov[1].iov_len = 0;
	cr_assert_eq(ferry_crc32c_iov(0, iov, 3), 0xE3069283u);
}

Test(crc, null_buffer_with_length_is_refused_and_logged, .init = quiet_setup)
{
	cr_assert_eq(ferry_crc32c(0x1234u, NULL, 5), 0x1234u);
	cr_assert(strstr(ferry_last_error(), "crc32c: NULL buffer") != NULL, "%s",
		  ferry_last_error());
	cr_assert_eq(ferry_crc16_t10dif(0xBEEF, NULL, 5), 0xBEEF);
	cr_assert(strstr(ferry_last_error(), "crc16_t10dif: NULL buffer") != NULL, "%s",
		  ferry_last_error());
	cr_assert_eq(ferry_crc32c_iov(0xCAFEu, NULL, 3), 0xCAFEu);
	cr_assert(strstr(ferry_last_error(), "NULL iovec array") != NULL, "%s",
		  ferry_last_error());
}

/* ---- wire byte order ------------------------------------------------------------------- */
static void store_le32(uint8_t out[4], uint32_t v)
{
	for (int i = 0; i < 4; i++)
		out[i] = (uint8_t)(v >> (8 * i));
}

Test(crc, crc32c_digest_wire_bytes_are_little_endian)
{
	/* RFC 3720 B.4 gives the CRC32C of four 32-byte patterns as the bytes on the wire. */
	static const uint8_t want[4][4] = {{0xaa, 0x36, 0x91, 0x8a},
					   {0x43, 0xab, 0xa8, 0x62},
					   {0x4e, 0x79, 0xdd, 0x46},
					   {0x5c, 0xdb, 0x3f, 0x11}};
	uint8_t pat[4][32];
	for (int i = 0; i < 32; i++) {
		pat[0][i] = 0;
		pat[1][i] = 0xff;
		pat[2][i] = (uint8_t)i;
		pat[3][i] = (uint8_t)(31 - i);
	}
	for (int k = 0; k < 4; k++) {
		uint8_t wire[4];
		store_le32(wire, ferry_crc32c(0, pat[k], 32));
		cr_assert_arr_eq(wire, want[k], 4, "pattern %d", k);
	}
	uint8_t wire[4];
	store_le32(wire, ferry_crc32c(0, check_str, 9));
	const uint8_t check_wire[4] = {0x83, 0x92, 0x06, 0xe3};
	cr_assert_arr_eq(wire, check_wire, 4);
}
