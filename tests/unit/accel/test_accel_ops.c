/*
 * Every accel operation through a sequence on the software engine, checked against the
 * primitive kernels called directly; argument checks of the append functions.
 */
#include <stddef.h>
#include "test_accel_util.h"

#define LEN 8192u

static struct ferry_accel_chan *ch;
static uint8_t *a, *b, *c, *d;
static uint64_t seed = 0x1234abcd;

static void setup(void)
{
	ch = ta_chan(NULL, 0);
	a = malloc(3 * LEN);
	b = malloc(3 * LEN);
	c = malloc(3 * LEN);
	d = malloc(3 * LEN);
	ta_fill_rand(a, 3 * LEN, &seed);
	memset(b, 0, 3 * LEN);
	memset(c, 0, 3 * LEN);
	memset(d, 0, 3 * LEN);
}

static void teardown(void)
{
	ferry_accel_chan_destroy(ch);
	free(a);
	free(b);
	free(c);
	free(d);
}

TestSuite(accel_ops, .init = setup, .fini = teardown);

Test(accel_ops, copy_fill_compare)
{
	struct iovec ia, ib, ic;
	struct ferry_mem ma = ta_sys(&ia, a, LEN), mb = ta_sys(&ib, b, LEN),
			 mc = ta_sys(&ic, c, LEN);
	struct ferry_seq *s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_copy(s, &mb, &ma, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_compare(s, &ma, &mb, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_fill(s, &mc, 0xa5, NULL, NULL), 0);
	cr_assert_eq(ta_run(ch, s), 0);
	cr_assert_eq(memcmp(a, b, LEN), 0);
	for (size_t i = 0; i < LEN; i++)
		cr_assert_eq(c[i], 0xa5);
	/* a miscompare fails the sequence with -EILSEQ */
	b[LEN - 1] ^= 1;
	s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_compare(s, &ma, &mb, NULL, NULL), 0);
	cr_assert_eq(ta_run(ch, s), -EILSEQ);
}

Test(accel_ops, crc32c_chained_and_copy_crc)
{
	struct iovec ia, ia2, ib;
	struct ferry_mem m1 = ta_sys(&ia, a, 1000), m2 = ta_sys(&ia2, a + 1000, LEN - 1000);
	struct ferry_mem mb = ta_sys(&ib, b, LEN);
	uint32_t c1 = 0, c2 = 0, c3 = 0;
	struct ferry_seq *s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_crc32c(s, &m1, 0, &c1, NULL, NULL), 0);
	cr_assert_eq(ta_run(ch, s), 0);
	cr_assert_eq(c1, ferry_crc32c(0, a, 1000));
	s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_crc32c(s, &m2, c1, &c2, NULL, NULL), 0);
	struct iovec iw;
	struct ferry_mem mw = ta_sys(&iw, a, LEN);
	cr_assert_eq(ferry_seq_append_copy_crc32c(s, &mb, &mw, 0, &c3, NULL, NULL), 0);
	cr_assert_eq(ta_run(ch, s), 0);
	cr_assert_eq(c2, ferry_crc32c(0, a, LEN), "chaining the seed gives the whole CRC");
	cr_assert_eq(c3, c2);
	cr_assert_eq(memcmp(a, b, LEN), 0);
}

Test(accel_ops, encrypt_decrypt)
{
	struct ferry_crypto_key *k = ta_key(7, FERRY_CIPHER_AES_XTS_256, 512);
	struct iovec ia, ib, ic;
	struct ferry_mem ma = ta_sys(&ia, a, LEN), mb = ta_sys(&ib, b, LEN),
			 mc = ta_sys(&ic, c, LEN);
	struct ferry_seq *s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_encrypt(s, &mb, &ma, k, 99, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_decrypt(s, &mc, &mb, k, 99, NULL, NULL), 0);
	cr_assert_eq(ta_run(ch, s), 0);
	struct iovec id = {d, LEN};
	cr_assert_eq(ferry_crypto_encrypt(k, &id, 1, &ia, 1, 99), 0);
	cr_assert_eq(memcmp(b, d, LEN), 0, "sequence encrypt == direct encrypt");
	cr_assert_eq(memcmp(c, a, LEN), 0, "round trip");
	cr_assert_neq(memcmp(b, a, LEN), 0);
	/* in place */
	memcpy(d, a, LEN);
	struct iovec ip;
	struct ferry_mem md = ta_sys(&ip, d, LEN);
	s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_encrypt(s, &md, &md, k, 99, NULL, NULL), 0);
	cr_assert_eq(ta_run(ch, s), 0);
	cr_assert_eq(memcmp(d, b, LEN), 0);
	ferry_crypto_key_destroy(k);
}

Test(accel_ops, dif_generate_verify_insert_strip)
{
	const uint32_t n = 4;
	struct ferry_dif_ctx ctx = ta_dif(512, 1, FERRY_DIF_TYPE1, 1000);
	size_t plain = n * 512, ext = n * 520;
	struct iovec ia, ib, ic, id;
	struct ferry_mem ma = ta_sys(&ia, a, plain), mb = ta_sys(&ib, b, ext);
	struct ferry_mem mc = ta_sys(&ic, c, plain), md = ta_sys(&id, d, ext);
	struct ferry_dif_error err;
	memset(&err, 0xff, sizeof(err));
	/* insert a->b, verify b, strip b->c; generate in place on d (a copy of b's data) */
	for (uint32_t i = 0; i < n; i++)
		memcpy(d + i * 520, a + i * 512, 512);
	struct ferry_seq *s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_dif_insert(s, &mb, &ma, &ctx, n, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_dif_verify(s, &mb, &ctx, n, &err, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_dif_strip(s, &mc, &mb, &ctx, n, NULL, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_dif_generate(s, &md, &ctx, n, NULL, NULL), 0);
	cr_assert_eq(ta_run(ch, s), 0);
	cr_assert_eq(err.field, FERRY_DIF_FIELD_NONE);
	cr_assert_eq(memcmp(c, a, plain), 0);
	cr_assert_eq(memcmp(d, b, ext), 0, "generate in place == insert");
	uint8_t *ref = malloc(ext);
	struct iovec ir = {ref, ext};
	cr_assert_eq(ferry_dif_insert(&ctx, &ir, 1, &ia, 1, n), 0);
	cr_assert_eq(memcmp(ref, b, ext), 0, "sequence insert == direct insert");
	free(ref);
	/* a flipped ref tag bit in block 2 is reported */
	b[2 * 520 + 512 + 7] ^= 1;
	s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_dif_verify(s, &mb, &ctx, n, &err, NULL, NULL), 0);
	cr_assert_eq(ta_run(ch, s), -EILSEQ);
	cr_assert_eq(err.field, FERRY_DIF_FIELD_REFTAG);
	cr_assert_eq(err.block, 2);
	cr_assert_eq(err.expected, 1002);
	struct ferry_dif_error err2;
	s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_dif_strip(s, &mc, &mb, &ctx, n, &err2, NULL, NULL), 0);
	cr_assert_eq(ta_run(ch, s), -EILSEQ);
	cr_assert_eq(err2.field, FERRY_DIF_FIELD_REFTAG);
}

Test(accel_ops, dix_generate_verify)
{
	const uint32_t n = 2;
	struct ferry_dif_ctx ctx = ta_dif(4096, 0, FERRY_DIF_TYPE3, 77);
	struct iovec ia, ib;
	struct ferry_mem data = ta_sys(&ia, a, n * 4096), md = ta_sys(&ib, b, n * 8);
	struct ferry_seq *s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_dix_generate(s, &data, &md, &ctx, n, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_dix_verify(s, &data, &md, &ctx, n, NULL, NULL, NULL), 0);
	cr_assert_eq(ta_run(ch, s), 0);
	uint8_t ref[16];
	struct iovec ir = {ref, 16};
	cr_assert_eq(ferry_dix_generate(&ctx, &ia, 1, &ir, 1, n), 0);
	cr_assert_eq(memcmp(ref, b, 16), 0);
	a[5000] ^= 0x10;
	struct ferry_dif_error err;
	s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_dix_verify(s, &data, &md, &ctx, n, &err, NULL, NULL), 0);
	cr_assert_eq(ta_run(ch, s), -EILSEQ);
	cr_assert_eq(err.field, FERRY_DIF_FIELD_GUARD);
	cr_assert_eq(err.block, 1);
}

Test(accel_ops, scattered_operands)
{
	/* source in 3 odd segments, destination in 2 */
	struct iovec src[3] = {{a, 100}, {a + 500, 3000}, {a + 4000, 996}};
	struct iovec dst[2] = {{b, 2048}, {b + 3000, 2048}};
	struct ferry_mem ms = {.iov = src, .iovcnt = 3}, md = {.iov = dst, .iovcnt = 2};
	uint32_t crc = 0;
	struct ferry_seq *s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_copy_crc32c(s, &md, &ms, 0, &crc, NULL, NULL), 0);
	cr_assert_eq(ta_run(ch, s), 0);
	uint8_t flat[4096];
	ferry_iov_copy(&(struct iovec){flat, 4096}, 1, src, 3);
	cr_assert_eq(memcmp(b, flat, 2048), 0);
	cr_assert_eq(memcmp(b + 3000, flat + 2048, 2048), 0);
	cr_assert_eq(crc, ferry_crc32c(0, flat, 4096));
}

Test(accel_ops, bad_arguments)
{
	ferry_log_set_handler(tm_quiet_log);
	struct iovec ia, ib, ic;
	struct ferry_mem ma = ta_sys(&ia, a, LEN), mb = ta_sys(&ib, b, LEN - 1);
	struct ferry_mem none = {.iov = NULL, .iovcnt = 0};
	struct ferry_seq *s = ta_seq(ch);
	uint32_t crc;
	cr_assert_eq(ferry_seq_append_copy(NULL, &ma, &ma, NULL, NULL), -EINVAL);
	cr_assert_eq(ferry_seq_append_copy(s, &mb, &ma, NULL, NULL), -EINVAL, "lengths differ");
	cr_assert_eq(ferry_seq_append_copy(s, &none, &ma, NULL, NULL), -EINVAL);
	cr_assert_eq(ferry_seq_append_copy(s, NULL, &ma, NULL, NULL), -EINVAL);
	struct ferry_mem ov = ta_sys(&ic, a + 1, LEN);
	cr_assert_eq(ferry_seq_append_copy(s, &ov, &ma, NULL, NULL), -EINVAL, "overlap");
	cr_assert_eq(ferry_seq_append_crc32c(s, &ma, 0, NULL, NULL, NULL), -EINVAL);
	cr_assert_eq(ferry_seq_append_encrypt(s, &ma, &ma, NULL, 0, NULL, NULL), -EINVAL);
	struct ferry_crypto_key *k = ta_key(3, FERRY_CIPHER_AES_XTS_128, 4096);
	struct ferry_mem odd = ta_sys(&ic, c, 512);
	cr_assert_eq(ferry_seq_append_encrypt(s, &odd, &odd, k, 0, NULL, NULL), -EINVAL,
		     "not a multiple of the data unit");
	struct ferry_dif_ctx ctx = ta_dif(512, 1, FERRY_DIF_TYPE1, 0);
	cr_assert_eq(ferry_seq_append_dif_generate(s, &ma, &ctx, 3, NULL, NULL), -EINVAL,
		     "length is not 3 extended blocks");
	cr_assert_eq(ferry_seq_append_dif_generate(s, &ma, &ctx, 0, NULL, NULL), -EINVAL);
	struct ferry_dif_ctx dix = ta_dif(512, 0, FERRY_DIF_TYPE1, 0);
	struct ferry_mem ext = ta_sys(&ic, c, 520);
	cr_assert_eq(ferry_seq_append_dif_generate(s, &ext, &dix, 1, NULL, NULL), -EINVAL,
		     "DIF op with a DIX context");
	struct ferry_dif_ctx badctx = ctx;
	badctx.block_size = 1000;
	cr_assert_eq(ferry_seq_append_dif_generate(s, &ext, &badctx, 1, NULL, NULL), -EINVAL);
	/* a foreign context in the accel domain */
	int fake;
	struct iovec iv = {(void *)0x1000, 16};
	struct ferry_mem bogus = {.domain = ferry_accel_get_domain(),
				  .domain_ctx = &fake,
				  .iov = &iv,
				  .iovcnt = 1};
	cr_assert_eq(ferry_seq_append_fill(s, &bogus, 0, NULL, NULL), -EINVAL);
	/* a virtual range leaving its buffer */
	struct iovec vi;
	struct ferry_mem v = ta_virt(ch, &vi, 4096);
	vi.iov_len = 4097;
	cr_assert_eq(ferry_seq_append_fill(s, &v, 0, NULL, NULL), -EINVAL);
	vi.iov_len = 4096;
	/* empty sequence, NULL callback */
	cr_assert_eq(ferry_seq_finish(s, NULL, NULL), -EINVAL);
	cr_assert_eq(ferry_seq_finish(s, ta_done_cb, &crc), -EINVAL, "empty");
	cr_assert_eq(ferry_seq_append_fill(s, &v, 0, NULL, NULL), 0);
	ferry_seq_abort(s);
	ta_put(ch, &v);
	ferry_crypto_key_destroy(k);
	cr_assert_str_eq(ferry_accel_opcode_name(FERRY_ACCEL_OP_DIF_INSERT), "dif-insert");
	cr_assert_str_eq(ferry_accel_opcode_name(FERRY_ACCEL_OP_COUNT), "unknown");
	ferry_log_set_handler(NULL);
}

Test(accel_ops, counters_per_engine)
{
	struct iovec ia, ib;
	struct ferry_mem ma = ta_sys(&ia, a, LEN), mb = ta_sys(&ib, b, LEN);
	struct ferry_accel_stats before = ta_stats(ch);
	struct ferry_seq *s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_copy(s, &mb, &ma, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_fill(s, &mb, 1, NULL, NULL), 0);
	cr_assert_eq(ta_run(ch, s), 0);
	struct ferry_accel_stats st = ta_stats(ch);
	cr_assert_eq(st.ops_sw[FERRY_ACCEL_OP_COPY] - before.ops_sw[FERRY_ACCEL_OP_COPY], 1);
	cr_assert_eq(st.ops_sw[FERRY_ACCEL_OP_FILL] - before.ops_sw[FERRY_ACCEL_OP_FILL], 1);
	cr_assert_eq(st.bytes_sw - before.bytes_sw, 2 * LEN);
	cr_assert_eq(st.seqs_completed - before.seqs_completed, 1);
	cr_assert_eq(st.sw_fallbacks, 0, "no device engine: not a fallback");
	cr_assert_eq(st.bufs_taken, 0);
	struct ferry_accel_stats g = {.size = sizeof(g)};
	cr_assert_eq(ferry_accel_get_stats(NULL, &g), 0);
	cr_assert_geq(g.ops_sw[FERRY_ACCEL_OP_COPY], st.ops_sw[FERRY_ACCEL_OP_COPY]);
	struct ferry_accel_stats small = {.size = 8};
	cr_assert_eq(ferry_accel_get_stats(ch, &small), -EINVAL);
	cr_assert_eq(st.bytes_copied - before.bytes_copied, LEN);
	cr_assert_eq(st.bytes_out_sw - before.bytes_out_sw, 2 * LEN, "copy and fill write LEN each");
	/* 0.x: no released layout to stay compatible with, exactly sizeof is accepted */
	struct ferry_accel_stats o = {.size = offsetof(struct ferry_accel_stats, bytes_copied)};
	cr_assert_eq(ferry_accel_get_stats(ch, &o), -EINVAL);
	o.size = sizeof(o) + 8;
	cr_assert_eq(ferry_accel_get_stats(ch, &o), -EINVAL);
}
