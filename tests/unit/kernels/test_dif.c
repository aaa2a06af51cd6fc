/*
 * T10 DIF/DIX kernels: context validation, PI layout, generate/verify round trips for every
 * type, block size and format, single-bit flips named by field and block, escapes, check
 * flags and app tag mask, insert/strip, scattered buffers straddling segments, short buffers.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <ferry/crc.h>
#include <ferry/dif.h>
#include <ferry/log.h>
#include <stdatomic.h>
#include <stdarg.h>
#include "core_internal.h"

#define ALL_CHECKS (FERRY_DIF_CHECK_GUARD | FERRY_DIF_CHECK_APPTAG | FERRY_DIF_CHECK_REFTAG)
#define APP 0x1234 /* at least two zero bits: no single flip turns it into the 0xFFFF escape */
#define REF0 0x01020304u
#define NB 4

static void quiet_log(enum ferry_log_level l, const char *c, const char *f, va_list ap)
{
	(void)l;
	(void)c;
	(void)f;
	(void)ap;
}

static void setup(void)
{
	ferry_log_set_handler(quiet_log);
}

TestSuite(dif, .init = setup);

/* Bitwise CRC16-T10DIF from the definition (independent of ISA-L). */
static uint16_t ref_crc16(const uint8_t *p, size_t n)
{
	uint16_t c = 0;
	for (size_t i = 0; i < n; i++) {
		c ^= (uint16_t)(p[i] << 8);
		for (int b = 0; b < 8; b++)
			c = (uint16_t)((c & 0x8000) ? (c << 1) ^ 0x8BB7 : c << 1);
	}
	return c;
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	srand(seed);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rand();
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void mkctx(struct ferry_dif_ctx *c, uint32_t bs, int il, enum ferry_dif_type t,
		  uint32_t flags)
{
	cr_assert_eq(ferry_dif_ctx_init(c, bs, 8, il, t, flags, REF0, APP, 0xFFFF), 0, "%s",
		     ferry_last_error());
}

/* A test buffer: data blocks and their PI in either format, both as flat arrays. */
struct tbuf {
	uint32_t bs;
	int il;
	uint8_t *buf; /* extended blocks (il) or data blocks (DIX) */
	uint8_t *md;  /* DIX metadata */
	size_t len, md_len;
};

static void tbuf_make(struct tbuf *t, uint32_t bs, int il, uint32_t nb, unsigned seed)
{
	t->bs = bs;
	t->il = il;
	t->len = (size_t)nb * (il ? bs + 8 : bs);
	t->md_len = il ? 0 : (size_t)nb * 8;
	t->buf = malloc(t->len);
	t->md = malloc(t->md_len ? t->md_len : 1);
	fill(t->buf, t->len, seed);
	memset(t->md, 0xAB, t->md_len ? t->md_len : 1);
}

static void tbuf_free(struct tbuf *t)
{
	free(t->buf);
	free(t->md);
}

static uint8_t *data_of(struct tbuf *t, uint32_t blk)
{
	return t->buf + (size_t)blk * (t->il ? t->bs + 8 : t->bs);
}

static uint8_t *pi_of(struct tbuf *t, uint32_t blk)
{
	return t->il ? data_of(t, blk) + t->bs : t->md + (size_t)blk * 8;
}

static int gen(const struct ferry_dif_ctx *c, struct tbuf *t, uint32_t nb)
{
	struct iovec b = {t->buf, t->len}, m = {t->md, t->md_len};
	return t->il ? ferry_dif_generate(c, &b, 1, nb) : ferry_dix_generate(c, &b, 1, &m, 1, nb);
}

static int ver(const struct ferry_dif_ctx *c, struct tbuf *t, uint32_t nb,
	       struct ferry_dif_error *e)
{
	struct iovec b = {t->buf, t->len}, m = {t->md, t->md_len};
	return t->il ? ferry_dif_verify(c, &b, 1, nb, e) : ferry_dix_verify(c, &b, 1, &m, 1, nb, e);
}

static const uint32_t sizes[] = {512, 4096};
static const enum ferry_dif_type types[] = {FERRY_DIF_TYPE1, FERRY_DIF_TYPE2, FERRY_DIF_TYPE3};

Test(dif, ctx_init_validation)
{
	struct ferry_dif_ctx c;
	cr_assert_eq(ferry_dif_ctx_init(NULL, 512, 8, 1, FERRY_DIF_TYPE1, 0, 0, 0, 0), -EINVAL);
	const uint32_t bad_bs[] = {0, 256, 520, 1024, 4104, 8192};
	for (size_t i = 0; i < 6; i++)
		cr_assert_eq(ferry_dif_ctx_init(&c, bad_bs[i], 8, 1, FERRY_DIF_TYPE1, 0, 0, 0, 0),
			     -EINVAL, "bs %u", bad_bs[i]);
	cr_assert_eq(ferry_dif_ctx_init(&c, 512, 0, 1, FERRY_DIF_TYPE1, 0, 0, 0, 0), -EINVAL);
	cr_assert_eq(ferry_dif_ctx_init(&c, 512, 16, 1, FERRY_DIF_TYPE1, 0, 0, 0, 0), -EINVAL);
	cr_assert_eq(ferry_dif_ctx_init(&c, 512, 8, 1, (enum ferry_dif_type)0, 0, 0, 0, 0),
		     -EINVAL);
	cr_assert_eq(ferry_dif_ctx_init(&c, 512, 8, 1, (enum ferry_dif_type)4, 0, 0, 0, 0),
		     -EINVAL);
	cr_assert_eq(ferry_dif_ctx_init(&c, 512, 8, 1, FERRY_DIF_TYPE1, 1u << 3, 0, 0, 0), -EINVAL);
	cr_assert(strstr(ferry_last_error(), "flags") != NULL, "%s", ferry_last_error());
	cr_assert_eq(ferry_dif_ctx_init(&c, 4096, 8, 7, FERRY_DIF_TYPE3, ALL_CHECKS, 9, 8, 0xF0),
		     0);
	cr_assert_eq(c.block_size, 4096u);
	cr_assert_eq(c.md_size, 8u);
	cr_assert_eq(c.md_interleave, 1);
	cr_assert_eq(c.type, FERRY_DIF_TYPE3);
	cr_assert_eq(c.flags, ALL_CHECKS);
	cr_assert_eq(c.init_ref_tag, 9u);
	cr_assert_eq(c.app_tag, 8);
	cr_assert_eq(c.app_tag_mask, 0xF0);
	/* A hand-made bad context is refused by the operations too. */
	uint8_t buf[520];
	struct iovec v = {buf, sizeof(buf)};
	c.block_size = 520;
	cr_assert_eq(ferry_dif_generate(&c, &v, 1, 1), -EINVAL);
	cr_assert_eq(ferry_dif_generate(NULL, &v, 1, 1), -EINVAL);
	cr_assert_str_eq(ferry_dif_field_name(FERRY_DIF_FIELD_GUARD), "guard");
	cr_assert_str_eq(ferry_dif_field_name(FERRY_DIF_FIELD_REFTAG), "ref tag");
}

Test(dif, pi_layout_every_type_size_format)
{
	for (int ti = 0; ti < 3; ti++)
		for (int si = 0; si < 2; si++)
			for (int il = 0; il < 2; il++) {
				struct ferry_dif_ctx c;
				struct tbuf t;
				mkctx(&c, sizes[si], il, types[ti], ALL_CHECKS);
				tbuf_make(&t, sizes[si], il, 6, 100 + ti * 4 + si * 2 + il);
				cr_assert_eq(gen(&c, &t, 6), 0);
				for (uint32_t b = 0; b < 6; b++) {
					uint8_t *pi = pi_of(&t, b);
					uint16_t g = ref_crc16(data_of(&t, b), sizes[si]);
					cr_assert_eq(be16(pi), g, "guard blk %u", b);
					cr_assert_eq(be16(pi + 2), APP);
					uint32_t ref = types[ti] == FERRY_DIF_TYPE3 ? REF0
										    : REF0 + b;
					cr_assert_eq(be32(pi + 4), ref, "type %d blk %u", types[ti],
						     b);
				}
				struct ferry_dif_error e = {.field = FERRY_DIF_FIELD_REFTAG};
				cr_assert_eq(ver(&c, &t, 6, &e), 0);
				cr_assert_eq(e.field, FERRY_DIF_FIELD_NONE);
				cr_assert_eq(ver(&c, &t, 6, NULL), 0);
				tbuf_free(&t);
			}
}

Test(dif, ref_tag_wraps)
{
	struct ferry_dif_ctx c;
	cr_assert_eq(ferry_dif_ctx_init(&c, 512, 8, 1, FERRY_DIF_TYPE1, ALL_CHECKS, 0xFFFFFFFEu,
					APP, 0xFFFF),
		     0);
	struct tbuf t;
	tbuf_make(&t, 512, 1, 3, 5);
	cr_assert_eq(gen(&c, &t, 3), 0);
	cr_assert_eq(be32(pi_of(&t, 1) + 4), 0xFFFFFFFFu);
	cr_assert_eq(be32(pi_of(&t, 2) + 4), 0u);
	cr_assert_eq(ver(&c, &t, 3, NULL), 0);
	tbuf_free(&t);
}

/* Flip one bit, verify, expect (field, block); flip back. */
static void expect_flip(const struct ferry_dif_ctx *c, struct tbuf *t, uint8_t *byte, int bit,
			enum ferry_dif_field field, uint32_t blk, const char *what)
{
	*byte ^= (uint8_t)(1u << bit);
	struct ferry_dif_error e;
	memset(&e, 0, sizeof(e));
	int rc = ver(c, t, NB, &e);
	cr_assert_eq(rc, -EILSEQ, "%s bit %d: rc %d (type %d bs %u il %d)", what, bit, rc, c->type,
		     c->block_size, t->il);
	cr_assert_eq(e.field, field, "%s bit %d: field %s", what, bit,
		     ferry_dif_field_name(e.field));
	cr_assert_eq(e.block, blk, "%s bit %d: block %llu", what, bit, (unsigned long long)e.block);
	cr_assert_neq(e.expected, e.actual);
	*byte ^= (uint8_t)(1u << bit);
}

Test(dif, every_single_bit_flip_is_named)
{
	const uint32_t blk = 2;
	for (int ti = 0; ti < 3; ti++)
		for (int si = 0; si < 2; si++)
			for (int il = 0; il < 2; il++) {
				struct ferry_dif_ctx c;
				struct tbuf t;
				const uint32_t bs = sizes[si];
				mkctx(&c, bs, il, types[ti], ALL_CHECKS);
				tbuf_make(&t, bs, il, NB, 200 + ti * 4 + si * 2 + il);
				cr_assert_eq(gen(&c, &t, NB), 0);
				uint8_t *pi = pi_of(&t, blk);
				const uint16_t guard = be16(pi);
				for (int bit = 0; bit < 64; bit++) {
					enum ferry_dif_field f = bit < 16 ? FERRY_DIF_FIELD_GUARD
								 : bit < 32
									 ? FERRY_DIF_FIELD_APPTAG
									 : FERRY_DIF_FIELD_REFTAG;
					expect_flip(&c, &t, pi + bit / 8, bit % 8, f, blk, "pi");
				}
				/* Data: the first and last bits and a spread sample in between. */
				uint8_t *d = data_of(&t, blk);
				for (uint32_t bitno = 0; bitno < bs * 8; bitno += (bs * 8) / 61 + 1)
					expect_flip(&c, &t, d + bitno / 8, (int)(bitno % 8),
						    FERRY_DIF_FIELD_GUARD, blk, "data");
				expect_flip(&c, &t, d + bs - 1, 7, FERRY_DIF_FIELD_GUARD, blk,
					    "data");
				/* Reported values: computed guard vs stored. */
				d[0] ^= 1;
				struct ferry_dif_error e;
				cr_assert_eq(ver(&c, &t, NB, &e), -EILSEQ);
				cr_assert_eq(e.actual, guard);
				cr_assert_eq(e.expected, ref_crc16(d, bs));
				d[0] ^= 1;
				pi[7] ^= 0x10;
				cr_assert_eq(ver(&c, &t, NB, &e), -EILSEQ);
				uint32_t want = types[ti] == FERRY_DIF_TYPE3 ? REF0 : REF0 + blk;
				cr_assert_eq(e.expected, want);
				cr_assert_eq(e.actual, want ^ 0x10);
				pi[7] ^= 0x10;
				cr_assert_eq(ver(&c, &t, NB, NULL), 0);
				tbuf_free(&t);
			}
}

Test(dif, strip_detects_flips_like_verify)
{
	for (int ti = 0; ti < 3; ti++)
		for (int si = 0; si < 2; si++) {
			const uint32_t bs = sizes[si];
			struct ferry_dif_ctx c;
			struct tbuf t;
			mkctx(&c, bs, 1, types[ti], ALL_CHECKS);
			tbuf_make(&t, bs, 1, NB, 300 + ti * 2 + si);
			cr_assert_eq(gen(&c, &t, NB), 0);
			uint8_t *out = malloc((size_t)NB * bs);
			struct iovec s = {t.buf, t.len}, d = {out, (size_t)NB * bs};
			for (int bit = 0; bit < 64 + 8; bit++) {
				uint8_t *p = bit < 64 ? pi_of(&t, 3) + bit / 8
						      : data_of(&t, 3) + bit * 7;
				enum ferry_dif_field f = bit < 16   ? FERRY_DIF_FIELD_GUARD
							 : bit < 32 ? FERRY_DIF_FIELD_APPTAG
							 : bit < 64 ? FERRY_DIF_FIELD_REFTAG
								    : FERRY_DIF_FIELD_GUARD;
				*p ^= (uint8_t)(1u << (bit % 8));
				struct ferry_dif_error e;
				cr_assert_eq(ferry_dif_strip(&c, &d, 1, &s, 1, NB, &e), -EILSEQ);
				cr_assert_eq(e.field, f, "bit %d", bit);
				cr_assert_eq(e.block, 3u);
				*p ^= (uint8_t)(1u << (bit % 8));
			}
			cr_assert_eq(ferry_dif_strip(&c, &d, 1, &s, 1, NB, NULL), 0);
			for (uint32_t b = 0; b < NB; b++)
				cr_assert_arr_eq(out + (size_t)b * bs, data_of(&t, b), bs);
			free(out);
			tbuf_free(&t);
		}
}

Test(dif, escapes)
{
	for (int il = 0; il < 2; il++) {
		struct ferry_dif_ctx c;
		struct tbuf t;
		/* Types 1 and 2: app tag 0xFFFF disables every check of that block. */
		for (int ti = 0; ti < 2; ti++) {
			mkctx(&c, 512, il, types[ti], ALL_CHECKS);
			tbuf_make(&t, 512, il, NB, 400 + il);
			cr_assert_eq(gen(&c, &t, NB), 0);
			uint8_t *pi = pi_of(&t, 1);
			pi[0] ^= 0xFF;             /* bad guard */
			pi[2] = pi[3] = 0xFF;      /* escape */
			pi[6] ^= 0x55;             /* bad ref tag */
			data_of(&t, 1)[3] ^= 0x80; /* bad data */
			cr_assert_eq(ver(&c, &t, NB, NULL), 0, "type %d il %d", types[ti], il);
			pi[3] = 0xFE; /* no longer escaped: now the guard fails */
			struct ferry_dif_error e;
			cr_assert_eq(ver(&c, &t, NB, &e), -EILSEQ);
			cr_assert_eq(e.field, FERRY_DIF_FIELD_GUARD);
			tbuf_free(&t);
		}
		/* Type 3: app tag 0xFFFF alone is not an escape; with ref tag 0xFFFFFFFF it is. */
		mkctx(&c, 512, il, FERRY_DIF_TYPE3, ALL_CHECKS);
		tbuf_make(&t, 512, il, NB, 410 + il);
		cr_assert_eq(gen(&c, &t, NB), 0);
		uint8_t *pi = pi_of(&t, 2);
		pi[2] = pi[3] = 0xFF;
		struct ferry_dif_error e;
		cr_assert_eq(ver(&c, &t, NB, &e), -EILSEQ);
		cr_assert_eq(e.field, FERRY_DIF_FIELD_APPTAG);
		cr_assert_eq(e.block, 2u);
		memset(pi + 4, 0xFF, 4);
		pi[0] ^= 0x0F;
		cr_assert_eq(ver(&c, &t, NB, NULL), 0, "type 3 full escape, il %d", il);
		tbuf_free(&t);
	}
	/* Strip honours the escape too (and still copies the data). */
	struct ferry_dif_ctx c;
	struct tbuf t;
	mkctx(&c, 512, 1, FERRY_DIF_TYPE1, ALL_CHECKS);
	tbuf_make(&t, 512, 1, 2, 420);
	cr_assert_eq(gen(&c, &t, 2), 0);
	pi_of(&t, 0)[2] = pi_of(&t, 0)[3] = 0xFF;
	pi_of(&t, 0)[0] ^= 1;
	uint8_t out[1024];
	struct iovec s = {t.buf, t.len}, d = {out, sizeof(out)};
	cr_assert_eq(ferry_dif_strip(&c, &d, 1, &s, 1, 2, NULL), 0);
	cr_assert_arr_eq(out, data_of(&t, 0), 512);
	tbuf_free(&t);
}

Test(dif, check_flags_and_app_tag_mask)
{
	for (int il = 0; il < 2; il++) {
		struct ferry_dif_ctx c;
		struct tbuf t;
		mkctx(&c, 4096, il, FERRY_DIF_TYPE1, ALL_CHECKS);
		tbuf_make(&t, 4096, il, NB, 500 + il);
		cr_assert_eq(gen(&c, &t, NB), 0);
		struct ferry_dif_ctx nog = c, noapp = c, noref = c, masked = c;
		nog.flags = FERRY_DIF_CHECK_APPTAG | FERRY_DIF_CHECK_REFTAG;
		noapp.flags = FERRY_DIF_CHECK_GUARD | FERRY_DIF_CHECK_REFTAG;
		noref.flags = FERRY_DIF_CHECK_GUARD | FERRY_DIF_CHECK_APPTAG;
		masked.app_tag_mask = 0xFF00;
		struct ferry_dif_error e;
		data_of(&t, 0)[100] ^= 4;
		cr_assert_eq(ver(&nog, &t, NB, NULL), 0);
		cr_assert_eq(ver(&c, &t, NB, &e), -EILSEQ);
		data_of(&t, 0)[100] ^= 4;
		pi_of(&t, 1)[3] ^= 0x01; /* low byte of the app tag */
		cr_assert_eq(ver(&noapp, &t, NB, NULL), 0);
		cr_assert_eq(ver(&masked, &t, NB, NULL), 0);
		cr_assert_eq(ver(&c, &t, NB, &e), -EILSEQ);
		cr_assert_eq(e.field, FERRY_DIF_FIELD_APPTAG);
		pi_of(&t, 1)[3] ^= 0x01;
		pi_of(&t, 1)[2] ^= 0x01; /* high byte: inside the mask */
		cr_assert_eq(ver(&masked, &t, NB, &e), -EILSEQ);
		cr_assert_eq(e.field, FERRY_DIF_FIELD_APPTAG);
		cr_assert_eq(e.block, 1u);
		pi_of(&t, 1)[2] ^= 0x01;
		pi_of(&t, 3)[5] ^= 0x20;
		cr_assert_eq(ver(&noref, &t, NB, NULL), 0);
		cr_assert_eq(ver(&c, &t, NB, &e), -EILSEQ);
		cr_assert_eq(e.field, FERRY_DIF_FIELD_REFTAG);
		cr_assert_eq(e.block, 3u);
		/* Verifying with another initial ref tag fails at block 0 for types 1/2. */
		pi_of(&t, 3)[5] ^= 0x20;
		struct ferry_dif_ctx other = c;
		other.init_ref_tag = REF0 + 1;
		cr_assert_eq(ver(&other, &t, NB, &e), -EILSEQ);
		cr_assert_eq(e.block, 0u);
		cr_assert_eq(e.field, FERRY_DIF_FIELD_REFTAG);
		tbuf_free(&t);
	}
}

Test(dif, type3_ref_tag_not_incremented_and_checked_as_stored)
{
	struct ferry_dif_ctx c, c1;
	mkctx(&c, 512, 1, FERRY_DIF_TYPE3, ALL_CHECKS);
	mkctx(&c1, 512, 1, FERRY_DIF_TYPE1, ALL_CHECKS);
	struct tbuf t;
	tbuf_make(&t, 512, 1, NB, 600);
	cr_assert_eq(gen(&c, &t, NB), 0);
	for (uint32_t b = 0; b < NB; b++)
		cr_assert_eq(be32(pi_of(&t, b) + 4), REF0);
	struct ferry_dif_error e;
	cr_assert_eq(ver(&c1, &t, NB, &e), -EILSEQ); /* type 1 expects REF0 + 1 at block 1 */
	cr_assert_eq(e.block, 1u);
	struct ferry_dif_ctx other = c;
	other.init_ref_tag = 77;
	cr_assert_eq(ver(&other, &t, NB, &e), -EILSEQ);
	cr_assert_eq(e.field, FERRY_DIF_FIELD_REFTAG);
	other.flags &= ~FERRY_DIF_CHECK_REFTAG; /* SPDK's behaviour for type 3 */
	cr_assert_eq(ver(&other, &t, NB, NULL), 0);
	tbuf_free(&t);
}

/* Random segmentation of n bytes (zero-length segments included, many tiny ones). */
static uint32_t random_sgl(uint8_t *p, size_t n, struct iovec *iov, uint32_t max, int maxseg)
{
	uint32_t cnt = 0;
	size_t off = 0;
	while (off < n && cnt < max - 1) {
		size_t len = (size_t)(rand() % maxseg);
		if (rand() % 6 == 0)
			len = (size_t)(rand() % 9); /* cut inside the PI often */
		if (len > n - off)
			len = n - off;
		iov[cnt].iov_base = p + off;
		iov[cnt].iov_len = len;
		cnt++;
		off += len;
	}
	iov[cnt].iov_base = p + off;
	iov[cnt].iov_len = n - off;
	return cnt + 1;
}

Test(dif, scattered_generate_verify_match_flat)
{
	srand(700);
	for (int si = 0; si < 2; si++)
		for (int il = 0; il < 2; il++) {
			const uint32_t bs = sizes[si], nb = 8;
			struct ferry_dif_ctx c;
			mkctx(&c, bs, il, FERRY_DIF_TYPE1, ALL_CHECKS);
			struct tbuf flat, t;
			tbuf_make(&flat, bs, il, nb, 701);
			tbuf_make(&t, bs, il, nb, 701);
			cr_assert_eq(gen(&c, &flat, nb), 0);
			for (int round = 0; round < 40; round++) {
				memcpy(t.buf, flat.buf, t.len);
				if (!il)
					memset(t.md, 0, t.md_len);
				else
					for (uint32_t b = 0; b < nb; b++)
						memset(pi_of(&t, b), 0, 8);
				struct iovec v[200], m[40];
				const int maxseg = (int)(bs + 8) * 2;
				uint32_t vc = random_sgl(t.buf, t.len, v, 200, maxseg);
				uint32_t mc = il ? 0 : random_sgl(t.md, t.md_len, m, 40, 20);
				int rc = il ? ferry_dif_generate(&c, v, vc, nb)
					    : ferry_dix_generate(&c, v, vc, m, mc, nb);
				cr_assert_eq(rc, 0);
				cr_assert_arr_eq(t.buf, flat.buf, t.len, "round %d", round);
				if (!il)
					cr_assert_arr_eq(t.md, flat.md, t.md_len);
				struct ferry_dif_error e;
				rc = il ? ferry_dif_verify(&c, v, vc, nb, &e)
					: ferry_dix_verify(&c, v, vc, m, mc, nb, &e);
				cr_assert_eq(rc, 0);
				/* A flip in a random block is found through the segments too. */
				uint32_t blk = (uint32_t)rand() % nb;
				int in_pi = rand() % 2;
				uint8_t *p = in_pi ? pi_of(&t, blk) + rand() % 8
						   : data_of(&t, blk) + rand() % bs;
				*p ^= 0x40;
				rc = il ? ferry_dif_verify(&c, v, vc, nb, &e)
					: ferry_dix_verify(&c, v, vc, m, mc, nb, &e);
				cr_assert_eq(rc, -EILSEQ);
				cr_assert_eq(e.block, blk, "round %d", round);
				*p ^= 0x40;
			}
			tbuf_free(&flat);
			tbuf_free(&t);
		}
}

Test(dif, insert_strip_round_trip_scattered)
{
	srand(800);
	for (int ti = 0; ti < 3; ti++)
		for (int si = 0; si < 2; si++) {
			const uint32_t bs = sizes[si], nb = 6;
			struct ferry_dif_ctx c;
			mkctx(&c, bs, 1, types[ti], ALL_CHECKS);
			const size_t plen = (size_t)nb * bs, elen = (size_t)nb * (bs + 8);
			uint8_t *plain = malloc(plen), *ext = malloc(elen), *want = malloc(elen);
			uint8_t *back = malloc(plen);
			fill(plain, plen, 801 + (unsigned)(ti * 2 + si));
			/* Expected extended image: data copied, then generate in place. */
			for (uint32_t b = 0; b < nb; b++)
				memcpy(want + (size_t)b * (bs + 8), plain + (size_t)b * bs, bs);
			struct iovec w = {want, elen};
			cr_assert_eq(ferry_dif_generate(&c, &w, 1, nb), 0);
			for (int round = 0; round < 30; round++) {
				struct iovec s[100], d[100];
				const int maxseg = round == 0 ? 1 << 20 : (int)bs * 2;
				uint32_t sc = random_sgl(plain, plen, s, 100, maxseg);
				uint32_t dc = random_sgl(ext, elen, d, 100, maxseg);
				memset(ext, 0, elen);
				cr_assert_eq(ferry_dif_insert(&c, d, dc, s, sc, nb), 0);
				cr_assert_arr_eq(ext, want, elen, "type %d bs %u round %d",
						 types[ti], bs, round);
				sc = random_sgl(ext, elen, s, 100, maxseg);
				dc = random_sgl(back, plen, d, 100, maxseg);
				memset(back, 0, plen);
				struct ferry_dif_error e;
				cr_assert_eq(ferry_dif_strip(&c, d, dc, s, sc, nb, &e), 0);
				cr_assert_eq(e.field, FERRY_DIF_FIELD_NONE);
				cr_assert_arr_eq(back, plain, plen);
			}
			free(plain);
			free(ext);
			free(want);
			free(back);
		}
}

Test(dif, short_buffers_and_wrong_format)
{
	struct ferry_dif_ctx dif, dix;
	mkctx(&dif, 512, 1, FERRY_DIF_TYPE1, ALL_CHECKS);
	mkctx(&dix, 512, 0, FERRY_DIF_TYPE1, ALL_CHECKS);
	static uint8_t a[4 * 520], b[4 * 520], md[32];
	memset(a, 0x3C, sizeof(a));
	memset(md, 0x3C, sizeof(md));
	struct iovec ext = {a, 4 * 520}, ext_short = {a, 4 * 520 - 1};
	struct iovec plain = {b, 4 * 512}, plain_short = {b, 4 * 512 - 1};
	struct iovec m = {md, 32}, m_short = {md, 31};
	struct iovec two[2] = {{a, 1000}, {a + 1000, 4 * 520 - 1001}};
	struct iovec nullbase = {NULL, 4 * 520};
	cr_assert_eq(ferry_dif_generate(&dif, &ext_short, 1, 4), -EINVAL);
	cr_assert_eq(ferry_dif_generate(&dif, two, 2, 4), -EINVAL);
	cr_assert_eq(ferry_dif_generate(&dif, &nullbase, 1, 4), -EINVAL);
	cr_assert_eq(ferry_dif_generate(&dif, NULL, 1, 4), -EINVAL);
	cr_assert_eq(ferry_dif_verify(&dif, &ext_short, 1, 4, NULL), -EINVAL);
	cr_assert_eq(ferry_dif_insert(&dif, &ext_short, 1, &plain, 1, 4), -EINVAL);
	cr_assert_eq(ferry_dif_insert(&dif, &ext, 1, &plain_short, 1, 4), -EINVAL);
	cr_assert_eq(ferry_dif_strip(&dif, &plain_short, 1, &ext, 1, 4, NULL), -EINVAL);
	cr_assert_eq(ferry_dif_strip(&dif, &plain, 1, &ext_short, 1, 4, NULL), -EINVAL);
	cr_assert_eq(ferry_dix_generate(&dix, &plain_short, 1, &m, 1, 4), -EINVAL);
	cr_assert_eq(ferry_dix_generate(&dix, &plain, 1, &m_short, 1, 4), -EINVAL);
	cr_assert_eq(ferry_dix_verify(&dix, &plain, 1, &m_short, 1, 4, NULL), -EINVAL);
	cr_assert(strstr(ferry_last_error(), "metadata") != NULL, "%s", ferry_last_error());
	/* Format mismatch. */
	cr_assert_eq(ferry_dif_generate(&dix, &ext, 1, 4), -EINVAL);
	cr_assert_eq(ferry_dix_generate(&dif, &plain, 1, &m, 1, 4), -EINVAL);
	/* Nothing was written by any refused call. */
	for (size_t i = 0; i < sizeof(a); i++)
		cr_assert_eq(a[i], 0x3C);
	for (size_t i = 0; i < sizeof(md); i++)
		cr_assert_eq(md[i], 0x3C);
	/* Exact lengths, longer buffers and zero blocks are fine. */
	cr_assert_eq(ferry_dif_generate(&dif, &ext, 1, 4), 0);
	cr_assert_eq(ferry_dif_generate(&dif, &ext, 1, 3), 0);
	cr_assert_eq(ferry_dif_verify(&dif, &ext, 1, 4, NULL), 0);
	cr_assert_eq(ferry_dif_generate(&dif, NULL, 0, 0), 0);
	cr_assert_eq(ferry_dix_generate(&dix, &plain, 1, &m, 1, 4), 0);
}

Test(dif, verify_stops_at_first_failing_block)
{
	struct ferry_dif_ctx c;
	mkctx(&c, 512, 0, FERRY_DIF_TYPE2, ALL_CHECKS);
	struct tbuf t;
	tbuf_make(&t, 512, 0, 8, 900);
	cr_assert_eq(gen(&c, &t, 8), 0);
	pi_of(&t, 6)[4] ^= 1; /* ref tag, block 6 */
	pi_of(&t, 3)[1] ^= 1; /* guard, block 3: reported first */
	struct ferry_dif_error e;
	cr_assert_eq(ver(&c, &t, 8, &e), -EILSEQ);
	cr_assert_eq(e.block, 3u);
	cr_assert_eq(e.field, FERRY_DIF_FIELD_GUARD);
	cr_assert_eq(ver(&c, &t, 3, &e), 0); /* the first three blocks alone are fine */
	tbuf_free(&t);
}

/* A host or a peer can send data that fails PI checks at will: the log must stay bounded
 * while every failure still reports its reason to the caller (ferry_last_error, @err). */
static atomic_uint pi_error_lines;

static void count_log(enum ferry_log_level l, const char *c, const char *f, va_list ap)
{
	(void)f;
	(void)ap;
	if (l <= FERRY_LOG_WARN && c && strcmp(c, "dif") == 0)
		atomic_fetch_add(&pi_error_lines, 1);
}

Test(dif, failed_pi_checks_do_not_flood_the_log)
{
	struct ferry_dif_ctx c;
	struct tbuf t;
	mkctx(&c, 512, 1, FERRY_DIF_TYPE1, FERRY_DIF_CHECK_GUARD);
	tbuf_make(&t, 512, 1, 1, 7);
	cr_assert_eq(gen(&c, &t, 1), 0);
	pi_of(&t, 0)[0] ^= 0x5a; /* corrupt the guard */
	ferry_log_set_handler(count_log);
	atomic_store(&pi_error_lines, 0);
	for (int i = 0; i < 10000; i++) {
		struct ferry_dif_error e = {0};
		cr_assert_eq(ver(&c, &t, 1, &e), -EILSEQ);
		cr_assert_eq(e.field, FERRY_DIF_FIELD_GUARD);
		cr_assert(strstr(ferry_last_error(), "guard") != NULL, "reason: '%s'", ferry_last_error());
	}
	ferry_log_set_handler(quiet_log);
	unsigned n = atomic_load(&pi_error_lines);
	cr_assert(n >= 1 && n <= 2 * LOG_RATELIMIT_BURST + 2,
		  "10000 PI failures gave %u log lines (bounded by the rate limit)", n);
	tbuf_free(&t);
}
