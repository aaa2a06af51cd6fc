/*
 * The dif bdev over a malloc bdev with 520/4104-byte blocks: option checks; the stored blocks
 * carry the right PI (checked with ferry_dif_verify on the raw storage) for types 1, 2, 3 and
 * both block sizes, with and without an accel sequence; a corrupted data, guard, application
 * tag or reference tag byte fails the read with -EILSEQ, the field and the block; the T10
 * escapes, the check flags and the application tag mask; write zeroes / unmap; blocks never
 * written; compare.
 */
#include "test_vbdev_util.h"
#include <ferry/bdev_dif.h>

static struct ferry_accel_chan *ch;
static struct tv_env env;

#define NBLK 64u
#define APP 0x1234

static void setup(void)
{
	/* PI mismatches are provoked on purpose: keep the log quiet, the asserts say enough. */
	ferry_log_set_handler(tm_quiet_log);
	ch = ta_chan(NULL, 0);
	env = (struct tv_env){ch, NULL};
}

static void teardown(void)
{
	ferry_accel_chan_destroy(ch);
	ferry_log_set_handler(NULL);
}

TestSuite(bdev_dif, .init = setup, .fini = teardown);

/* A malloc base of @p bs + 8 bytes per block and a dif bdev on it. */
struct stack {
	struct ferry_bdev *mal, *dif;
	uint32_t bs;
};

static struct stack mk(uint32_t bs, uint32_t type, uint32_t checks, uint16_t mask)
{
	struct stack s;
	s.bs = bs;
	s.mal = tv_malloc("mal", bs, 8, NBLK, type);
	s.dif = tv_dif("dif", s.mal, type, checks, APP, mask);
	return s;
}

static void rm(struct stack *s)
{
	cr_assert_eq(ferry_bdev_destroy(s->dif), 0);
	cr_assert_eq(ferry_bdev_destroy(s->mal), 0);
}

/* Write @p n random blocks at @p lba through the dif bdev; returns the data (free it). */
static uint8_t *put(struct stack *s, uint64_t lba, uint32_t n, int seq, uint64_t seed)
{
	size_t len = (size_t)n * s->bs;
	uint8_t *plain = malloc(len);
	ta_fill_rand(plain, len, &seed);
	struct iovec iov;
	struct ferry_mem m = ta_sys(&iov, plain, len);
	cr_assert_eq(tv_io(&env, s->dif, FERRY_BDEV_IO_WRITE, lba, n, &m, seq), 0);
	return plain;
}

/* Read through the dif bdev; returns the status, details in @p d. */
static int get(struct stack *s, uint64_t lba, uint32_t n, int seq, uint8_t *out, struct tv_done *d)
{
	struct iovec iov;
	struct ferry_mem m = ta_sys(&iov, out, (size_t)n * s->bs);
	return tv_io_ex(&env, s->dif, FERRY_BDEV_IO_READ, lba, n, &m, seq, d);
}

static uint8_t *raw(struct stack *s, uint64_t lba, uint32_t n)
{
	uint8_t *r = malloc((size_t)n * (s->bs + 8));
	tv_raw(s->mal, FERRY_BDEV_IO_READ, lba, n, r);
	return r;
}

static void check_pi(struct stack *s, uint64_t lba, uint32_t n, enum ferry_dif_type type)
{
	uint8_t *r = raw(s, lba, n);
	struct ferry_dif_ctx c;
	cr_assert_eq(ferry_dif_ctx_init(&c, s->bs, 8, 1, type, TV_CHECK_ALL,
					type == FERRY_DIF_TYPE3 ? 0 : (uint32_t)lba, APP, 0xffff),
		     0);
	struct iovec iov = {r, (size_t)n * (s->bs + 8)};
	struct ferry_dif_error e;
	int rc = ferry_dif_verify(&c, &iov, 1, n, &e);
	cr_assert_eq(rc, 0, "stored PI wrong: block %llu field %s expected 0x%x actual 0x%x",
		     (unsigned long long)e.block, ferry_dif_field_name(e.field), e.expected,
		     e.actual);
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *pi = r + (size_t)i * (s->bs + 8) + s->bs;
		cr_assert_eq((pi[2] << 8) | pi[3], APP);
		uint32_t ref = ((uint32_t)pi[4] << 24) | ((uint32_t)pi[5] << 16) |
			       ((uint32_t)pi[6] << 8) | pi[7];
		cr_assert_eq(ref, type == FERRY_DIF_TYPE3 ? 0 : (uint32_t)(lba + i));
	}
	free(r);
}

Test(bdev_dif, geometry)
{
	struct stack s = mk(512, 1, TV_CHECK_ALL, 0xffff);
	cr_assert_eq(ferry_bdev_get_block_size(s.dif), 512);
	cr_assert_eq(ferry_bdev_get_md_size(s.dif), 0);
	cr_assert_eq(ferry_bdev_get_num_blocks(s.dif), NBLK);
	cr_assert_str_eq(ferry_bdev_get_module(s.dif), "dif");
	cr_assert_str_eq(ferry_bdev_get_claim(s.mal), "dif dif");
	rm(&s);
}

Test(bdev_dif, bad_options)
{
	struct ferry_bdev *plain = tv_malloc("plain", 512, 0, 8, 0);
	struct ferry_bdev *md16 = tv_malloc("md16", 512, 16, 8, 0);
	struct ferry_bdev *t1 = tv_malloc("t1", 512, 8, 8, 1);
	struct ferry_bdev *t0 = tv_malloc("t0", 4096, 8, 8, 0);
	struct ferry_bdev *b = NULL;
	struct ferry_bdev_dif_opts o = {.size = sizeof(o),
					.name = "d",
					.base = plain,
					.dif_type = 1,
					.check_flags = TV_CHECK_ALL};
	cr_assert_eq(ferry_bdev_dif_create(NULL, &b), -EINVAL);
	cr_assert_eq(ferry_bdev_dif_create(&o, NULL), -EINVAL);
	cr_assert_eq(ferry_bdev_dif_create(&o, &b), -EINVAL); /* no metadata */
	o.base = md16;
	cr_assert_eq(ferry_bdev_dif_create(&o, &b), -EINVAL); /* 16 bytes of metadata */
	o.base = t1;
	o.dif_type = 3;
	cr_assert_eq(ferry_bdev_dif_create(&o, &b), -EINVAL); /* base advertises type 1 */
	o.dif_type = 4;
	o.base = t0;
	cr_assert_eq(ferry_bdev_dif_create(&o, &b), -EINVAL);
	o.dif_type = 0; /* take the base's: it has none */
	cr_assert_eq(ferry_bdev_dif_create(&o, &b), -EINVAL);
	o.dif_type = 2;
	o.check_flags = 0x80;
	cr_assert_eq(ferry_bdev_dif_create(&o, &b), -EINVAL);
	o.check_flags = TV_CHECK_ALL;
	o.size = 4;
	cr_assert_eq(ferry_bdev_dif_create(&o, &b), -EINVAL);
	o.size = sizeof(o);
	o.base = NULL;
	o.base_name = "none";
	cr_assert_eq(ferry_bdev_dif_create(&o, &b), -ENOENT);
	for (struct ferry_bdev *x = ferry_bdev_first(); x; x = ferry_bdev_next(x))
		cr_assert_null(ferry_bdev_get_claim(x), "%s left claimed", ferry_bdev_get_name(x));
	/* Type 0 takes the base's type. */
	o.base_name = "t1";
	o.dif_type = 0;
	cr_assert_eq(ferry_bdev_dif_create(&o, &b), 0);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	cr_assert_eq(ferry_bdev_destroy(plain), 0);
	cr_assert_eq(ferry_bdev_destroy(md16), 0);
	cr_assert_eq(ferry_bdev_destroy(t1), 0);
	cr_assert_eq(ferry_bdev_destroy(t0), 0);
}

static void stored_pi_case(uint32_t bs, uint32_t type, int seq)
{
	struct stack s = mk(bs, type, TV_CHECK_ALL, 0xffff);
	uint8_t *plain = put(&s, 9, 5, seq, bs + type);
	check_pi(&s, 9, 5, (enum ferry_dif_type)type);
	/* The data part of each stored block is the plain data. */
	uint8_t *r = raw(&s, 9, 5);
	for (uint32_t i = 0; i < 5; i++)
		cr_assert_eq(memcmp(r + (size_t)i * (bs + 8), plain + (size_t)i * bs, bs), 0);
	uint8_t *back = calloc(5, bs);
	struct tv_done d;
	cr_assert_eq(get(&s, 9, 5, seq, back, &d), 0);
	cr_assert_eq(memcmp(back, plain, (size_t)5 * bs), 0);
	cr_assert_eq(get(&s, 10, 3, !seq, back, &d), 0);
	cr_assert_eq(memcmp(back, plain + bs, (size_t)3 * bs), 0);
	free(plain);
	free(r);
	free(back);
	rm(&s);
}

Test(bdev_dif, stored_pi_type1_512)
{
	stored_pi_case(512, 1, 1);
	stored_pi_case(512, 1, 0);
}

Test(bdev_dif, stored_pi_type2_4096)
{
	stored_pi_case(4096, 2, 1);
	stored_pi_case(4096, 2, 0);
}

Test(bdev_dif, stored_pi_type3)
{
	stored_pi_case(512, 3, 1);
	stored_pi_case(4096, 3, 0);
}

/* Corrupt byte @p off of block @p idx of the I/O at 20..23 and read it back. */
static void corrupt_case(int seq, size_t off, enum ferry_bdev_io_error want)
{
	struct stack s = mk(512, 1, TV_CHECK_ALL, 0xffff);
	free(put(&s, 20, 4, 1, 3));
	uint8_t *r = raw(&s, 20, 4);
	r[2 * 520 + off] ^= 0x10;
	tv_raw(s.mal, FERRY_BDEV_IO_WRITE, 20, 4, r);
	uint8_t back[4 * 512];
	struct tv_done d;
	cr_assert_eq(get(&s, 20, 4, seq, back, &d), -EILSEQ);
	cr_assert_eq(d.error, want, "error %d, wanted %d (seq %d, byte %zu)", d.error, want, seq,
		     off);
	cr_assert_eq(d.error_block, 22);
	/* The blocks before it read fine; a read that does not include it too. */
	cr_assert_eq(get(&s, 20, 2, seq, back, &d), 0);
	cr_assert_eq(get(&s, 23, 1, seq, back, &d), 0);
	/* A single-block read names the block too. */
	cr_assert_eq(get(&s, 22, 1, !seq, back, &d), -EILSEQ);
	cr_assert_eq(d.error, want);
	cr_assert_eq(d.error_block, 22);
	free(r);
	rm(&s);
}

Test(bdev_dif, corrupt_data_is_a_guard_error)
{
	corrupt_case(1, 100, FERRY_BDEV_ERR_GUARD);
	corrupt_case(0, 0, FERRY_BDEV_ERR_GUARD);
	corrupt_case(1, 512, FERRY_BDEV_ERR_GUARD); /* the guard itself */
}

Test(bdev_dif, corrupt_app_tag)
{
	corrupt_case(1, 512 + 2, FERRY_BDEV_ERR_APPTAG);
	corrupt_case(0, 512 + 3, FERRY_BDEV_ERR_APPTAG);
}

Test(bdev_dif, corrupt_ref_tag)
{
	corrupt_case(1, 512 + 7, FERRY_BDEV_ERR_REFTAG);
	corrupt_case(0, 512 + 4, FERRY_BDEV_ERR_REFTAG);
}

/* Rewrite the PI tags of block @p lba and corrupt its data. */
static void tamper(struct stack *s, uint64_t lba, int app_ffff, int ref_ffffffff)
{
	uint8_t *r = raw(s, lba, 1);
	r[5] ^= 0xff;
	if (app_ffff)
		r[s->bs + 2] = r[s->bs + 3] = 0xff;
	if (ref_ffffffff)
		memset(r + s->bs + 4, 0xff, 4);
	tv_raw(s->mal, FERRY_BDEV_IO_WRITE, lba, 1, r);
	free(r);
}

Test(bdev_dif, escapes)
{
	uint8_t back[512];
	struct tv_done d;
	/* Type 1: application tag 0xFFFF disables every check of the block. */
	struct stack s = mk(512, 1, TV_CHECK_ALL, 0xffff);
	free(put(&s, 3, 2, 1, 4));
	tamper(&s, 3, 1, 0);
	cr_assert_eq(get(&s, 3, 1, 1, back, &d), 0);
	cr_assert_eq(get(&s, 3, 1, 0, back, &d), 0);
	tamper(&s, 4, 0, 1); /* ref tag 0xFFFFFFFF alone is no escape */
	cr_assert_eq(get(&s, 4, 1, 1, back, &d), -EILSEQ);
	cr_assert_eq(d.error, FERRY_BDEV_ERR_GUARD);
	rm(&s);
	/* Type 3: only application tag 0xFFFF with reference tag 0xFFFFFFFF escapes. */
	s = mk(512, 3, TV_CHECK_ALL, 0xffff);
	free(put(&s, 3, 2, 1, 5));
	tamper(&s, 3, 1, 0);
	cr_assert_eq(get(&s, 3, 1, 1, back, &d), -EILSEQ);
	cr_assert_eq(d.error, FERRY_BDEV_ERR_GUARD);
	tamper(&s, 4, 1, 1);
	cr_assert_eq(get(&s, 4, 1, 0, back, &d), 0);
	cr_assert_eq(get(&s, 4, 1, 1, back, &d), 0);
	rm(&s);
}

Test(bdev_dif, check_flags_and_app_tag_mask)
{
	uint8_t back[512];
	struct tv_done d;
	/* Guard not checked: corrupted data reads back (as stored). */
	struct stack s = mk(512, 1, FERRY_DIF_CHECK_REFTAG | FERRY_DIF_CHECK_APPTAG, 0xffff);
	uint8_t *p = put(&s, 6, 1, 1, 6);
	tamper(&s, 6, 0, 0);
	cr_assert_eq(get(&s, 6, 1, 1, back, &d), 0);
	cr_assert_eq(back[5], (uint8_t)(p[5] ^ 0xff));
	free(p);
	rm(&s);
	/* Mask 0xff00: only the high byte of the application tag is checked. */
	s = mk(512, 1, TV_CHECK_ALL, 0xff00);
	free(put(&s, 7, 2, 1, 7));
	uint8_t *r = raw(&s, 7, 2);
	r[512 + 3] ^= 0x5a;       /* block 7: low byte */
	r[520 + 512 + 2] ^= 0x01; /* block 8: high byte */
	tv_raw(s.mal, FERRY_BDEV_IO_WRITE, 7, 2, r);
	free(r);
	cr_assert_eq(get(&s, 7, 1, 1, back, &d), 0);
	cr_assert_eq(get(&s, 8, 1, 0, back, &d), -EILSEQ);
	cr_assert_eq(d.error, FERRY_BDEV_ERR_APPTAG);
	cr_assert_eq(d.error_block, 8);
	rm(&s);
}

Test(bdev_dif, unwritten_blocks_fail_until_zeroed)
{
	struct stack s = mk(512, 1, TV_CHECK_ALL, 0xffff);
	uint8_t back[4 * 512], zero[4 * 512];
	memset(zero, 0, sizeof(zero));
	struct tv_done d;
	/* A zero-filled base: app tag 0 is not APP. */
	cr_assert_eq(get(&s, 5, 1, 1, back, &d), -EILSEQ);
	cr_assert_eq(d.error, FERRY_BDEV_ERR_APPTAG);
	cr_assert_eq(d.error_block, 5);
	cr_assert_eq(tv_io(&env, s.dif, FERRY_BDEV_IO_WRITE_ZEROES, 4, 4, NULL, 0), 0);
	check_pi(&s, 4, 4, FERRY_DIF_TYPE1);
	memset(back, 1, sizeof(back));
	cr_assert_eq(get(&s, 4, 4, 1, back, &d), 0);
	cr_assert_eq(memcmp(back, zero, sizeof(back)), 0);
	/* Unmap: the same, over written data. */
	free(put(&s, 10, 4, 1, 8));
	cr_assert_eq(tv_io(&env, s.dif, FERRY_BDEV_IO_UNMAP, 11, 2, NULL, 0), 0);
	check_pi(&s, 10, 4, FERRY_DIF_TYPE1);
	cr_assert_eq(get(&s, 11, 2, 0, back, &d), 0);
	cr_assert_eq(memcmp(back, zero, 2 * 512), 0);
	rm(&s);
}

Test(bdev_dif, compare)
{
	struct stack s = mk(512, 1, TV_CHECK_ALL, 0xffff);
	uint8_t *p = put(&s, 30, 3, 1, 9);
	struct iovec iov;
	struct ferry_mem m = ta_sys(&iov, p, 3 * 512);
	struct tv_done d;
	cr_assert_eq(tv_io_ex(&env, s.dif, FERRY_BDEV_IO_COMPARE, 30, 3, &m, 0, &d), 0);
	p[512 + 1] ^= 1;
	cr_assert_eq(tv_io_ex(&env, s.dif, FERRY_BDEV_IO_COMPARE, 30, 3, &m, 0, &d), -EILSEQ);
	cr_assert_eq(d.error, FERRY_BDEV_ERR_MISCOMPARE);
	cr_assert_eq(d.error_block, 31);
	/* A PI failure beats the comparison. */
	tamper(&s, 32, 0, 0);
	cr_assert_eq(tv_io_ex(&env, s.dif, FERRY_BDEV_IO_COMPARE, 30, 3, &m, 0, &d), -EILSEQ);
	cr_assert_eq(d.error, FERRY_BDEV_ERR_GUARD);
	cr_assert_eq(d.error_block, 32);
	free(p);
	rm(&s);
}
