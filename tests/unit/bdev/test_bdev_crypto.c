/*
 * The crypto bdev over a malloc bdev: option checks and claims; write/read round trips with
 * and without an accel sequence (software engine); the stored bytes are the AES-XTS
 * encryption of the data with the LBA as tweak (per data unit for 4 KiB blocks with a 512-byte
 * data unit); write zeroes / unmap read back as zeroes; flush and compare; the contract when
 * the base refuses the child I/O or the channel has no virtual buffer left; I/Os larger than
 * a virtual buffer.
 */
#include "test_vbdev_util.h"
#include <ferry/bdev_crypto.h>
#include <ferry/module/bdev.h>

static struct ferry_accel_chan *ch;
static struct ferry_crypto_key *key;
static struct ferry_bdev *mal, *cry;
static struct tv_env env;

#define NBLK 64u

static void setup(void)
{
	ch = ta_chan(NULL, 0);
	key = ta_key(7, FERRY_CIPHER_AES_XTS_128, 512);
	mal = tv_malloc("m0", 512, 0, NBLK, 0);
	cry = tv_crypto("c0", mal, key);
	env = (struct tv_env){ch, NULL};
}

static void teardown(void)
{
	if (cry)
		cr_assert_eq(ferry_bdev_destroy(cry), 0);
	cr_assert_eq(ferry_bdev_destroy(mal), 0);
	ferry_crypto_key_destroy(key);
	ferry_accel_chan_destroy(ch);
}

TestSuite(bdev_crypto, .init = setup, .fini = teardown);

/* Expected ciphertext of @p n blocks of @p bs bytes at @p lba. */
static void expect_cipher(struct ferry_crypto_key *k, const uint8_t *plain, uint8_t *out,
			  size_t len, uint64_t tweak)
{
	struct iovec s = {(void *)plain, len}, d = {out, len};
	cr_assert_eq(ferry_crypto_encrypt(k, &d, 1, &s, 1, tweak), 0);
}

Test(bdev_crypto, geometry_and_claim)
{
	cr_assert_eq(ferry_bdev_get_block_size(cry), 512);
	cr_assert_eq(ferry_bdev_get_num_blocks(cry), NBLK);
	cr_assert_eq(ferry_bdev_get_md_size(cry), 0);
	cr_assert_str_eq(ferry_bdev_get_module(cry), "crypto");
	cr_assert_str_eq(ferry_bdev_get_claim(mal), "crypto c0");
	ferry_log_set_handler(tm_quiet_log);
	cr_assert_eq(ferry_bdev_destroy(mal), -EBUSY);
	ferry_log_set_handler(NULL);
	cr_assert_eq(ferry_bdev_destroy(cry), 0);
	cry = NULL;
	cr_assert_null(ferry_bdev_get_claim(mal));
}

Test(bdev_crypto, bad_options)
{
	ferry_log_set_handler(tm_quiet_log);
	struct ferry_bdev *b = NULL;
	struct ferry_bdev_crypto_opts o = {.size = sizeof(o), .name = "x", .base = mal, .key = key};
	cr_assert_eq(ferry_bdev_crypto_create(NULL, &b), -EINVAL);
	cr_assert_eq(ferry_bdev_crypto_create(&o, NULL), -EINVAL);
	o.size = 8;
	cr_assert_eq(ferry_bdev_crypto_create(&o, &b), -EINVAL);
	o.size = sizeof(o);
	o.key = NULL;
	cr_assert_eq(ferry_bdev_crypto_create(&o, &b), -EINVAL);
	o.key = key;
	o.base = NULL;
	cr_assert_eq(ferry_bdev_crypto_create(&o, &b), -EINVAL); /* no base at all */
	o.base_name = "nope";
	cr_assert_eq(ferry_bdev_crypto_create(&o, &b), -ENOENT);
	o.base_name = "m0";
	cr_assert_eq(ferry_bdev_crypto_create(&o, &b), -EBUSY); /* claimed by c0 */
	o.base_name = "c0";
	o.name = "c0";
	cr_assert_eq(ferry_bdev_crypto_create(&o, &b), -EEXIST);

	struct ferry_bdev *pi = tv_malloc("pi", 512, 8, 8, 1);
	struct ferry_bdev *big = tv_malloc("big", 4096, 0, 8, 0);
	struct ferry_crypto_key *k4k = ta_key(9, FERRY_CIPHER_AES_XTS_256, 4096);
	o.name = "x";
	o.base_name = NULL;
	o.base = pi; /* metadata on the base */
	cr_assert_eq(ferry_bdev_crypto_create(&o, &b), -EINVAL);
	o.base = big;
	o.base_name = "pi"; /* pointer and name disagree */
	cr_assert_eq(ferry_bdev_crypto_create(&o, &b), -EINVAL);
	o.base_name = NULL;
	o.base = mal;
	o.key = k4k; /* 512-byte blocks, 4096-byte data unit */
	cr_assert_eq(ferry_bdev_crypto_create(&o, &b), -EINVAL);
	cr_assert_null(ferry_bdev_lookup("x"));
	cr_assert_null(ferry_bdev_get_claim(pi));
	cr_assert_null(ferry_bdev_get_claim(big));
	cr_assert_eq(ferry_bdev_destroy(pi), 0);
	cr_assert_eq(ferry_bdev_destroy(big), 0);
	ferry_crypto_key_destroy(k4k);
	ferry_log_set_handler(NULL);
}

/* Write @p n blocks at @p lba, check the stored ciphertext, read back. */
static void round_trip(int wseq, int rseq, uint64_t lba, uint32_t n, uint64_t seed)
{
	size_t len = (size_t)n * 512;
	uint8_t *plain = malloc(len), *back = calloc(1, len), *raw = malloc(len),
		*exp = malloc(len);
	ta_fill_rand(plain, len, &seed);
	struct iovec iov;
	struct ferry_mem m = ta_sys(&iov, plain, len);
	cr_assert_eq(tv_io(&env, cry, FERRY_BDEV_IO_WRITE, lba, n, &m, wseq), 0);
	tv_raw(mal, FERRY_BDEV_IO_READ, lba, n, raw);
	expect_cipher(key, plain, exp, len, lba);
	cr_assert_eq(memcmp(raw, exp, len), 0, "stored bytes are not AES-XTS(plain, tweak=LBA)");
	cr_assert_neq(memcmp(raw, plain, len), 0);
	m = ta_sys(&iov, back, len);
	cr_assert_eq(tv_io(&env, cry, FERRY_BDEV_IO_READ, lba, n, &m, rseq), 0);
	cr_assert_eq(memcmp(back, plain, len), 0, "read back differs");
	free(plain);
	free(back);
	free(raw);
	free(exp);
}

Test(bdev_crypto, round_trip_with_sequence)
{
	struct ferry_accel_stats s0 = ta_stats(ch);
	round_trip(1, 1, 5, 4, 1);
	round_trip(1, 1, 0, 1, 2);
	round_trip(1, 1, NBLK - 8, 8, 3);
	struct ferry_accel_stats s1 = ta_stats(ch);
	cr_assert_eq(s1.seqs_completed - s0.seqs_completed, 6);
	cr_assert_eq(s1.ops_sw[FERRY_ACCEL_OP_ENCRYPT] - s0.ops_sw[FERRY_ACCEL_OP_ENCRYPT], 3);
	cr_assert_eq(s1.ops_sw[FERRY_ACCEL_OP_DECRYPT] - s0.ops_sw[FERRY_ACCEL_OP_DECRYPT], 3);
	cr_assert_eq(s1.bufs_in_use, 0);
}

Test(bdev_crypto, round_trip_without_sequence_and_mixed)
{
	round_trip(0, 0, 9, 3, 4);
	round_trip(1, 0, 20, 2, 5);
	round_trip(0, 1, 30, 7, 6);
}

Test(bdev_crypto, tweak_is_per_lba)
{
	uint8_t plain[512], raw[2][512], exp[512];
	memset(plain, 0xa5, sizeof(plain));
	struct iovec iov;
	struct ferry_mem m = ta_sys(&iov, plain, 512);
	cr_assert_eq(tv_io(&env, cry, FERRY_BDEV_IO_WRITE, 3, 1, &m, 1), 0);
	cr_assert_eq(tv_io(&env, cry, FERRY_BDEV_IO_WRITE, 4, 1, &m, 0), 0);
	tv_raw(mal, FERRY_BDEV_IO_READ, 3, 1, raw[0]);
	tv_raw(mal, FERRY_BDEV_IO_READ, 4, 1, raw[1]);
	cr_assert_neq(memcmp(raw[0], raw[1], 512), 0, "same plaintext, same ciphertext at 3 and 4");
	expect_cipher(key, plain, exp, 512, 3);
	cr_assert_eq(memcmp(raw[0], exp, 512), 0);
	expect_cipher(key, plain, exp, 512, 4);
	cr_assert_eq(memcmp(raw[1], exp, 512), 0);
}

Test(bdev_crypto, tweak_in_data_units_for_4k_blocks)
{
	struct ferry_bdev *m4 = tv_malloc("m4", 4096, 0, 8, 0);
	struct ferry_bdev *c4 = tv_crypto("c4", m4, key); /* 512-byte data unit */
	uint64_t seed = 77;
	uint8_t *plain = malloc(2 * 4096), *raw = malloc(2 * 4096), *exp = malloc(2 * 4096);
	ta_fill_rand(plain, 2 * 4096, &seed);
	struct iovec iov;
	struct ferry_mem m = ta_sys(&iov, plain, 2 * 4096);
	cr_assert_eq(tv_io(&env, c4, FERRY_BDEV_IO_WRITE, 5, 2, &m, 1), 0);
	tv_raw(m4, FERRY_BDEV_IO_READ, 5, 2, raw);
	expect_cipher(key, plain, exp, 2 * 4096, 5 * 8);
	cr_assert_eq(memcmp(raw, exp, 2 * 4096), 0, "tweak must be LBA * 8 data units");
	m = ta_sys(&iov, exp, 4096);
	cr_assert_eq(tv_io(&env, c4, FERRY_BDEV_IO_READ, 6, 1, &m, 0), 0);
	cr_assert_eq(memcmp(exp, plain + 4096, 4096), 0);
	cr_assert_eq(ferry_bdev_destroy(c4), 0);
	cr_assert_eq(ferry_bdev_destroy(m4), 0);
	free(plain);
	free(raw);
	free(exp);
}

static void zero_case(enum ferry_bdev_io_type type)
{
	round_trip(1, 1, 10, 8, 8);
	cr_assert_eq(tv_io(&env, cry, type, 11, 5, NULL, 0), 0);
	uint8_t back[8 * 512], zero[8 * 512], raw[512], exp[512];
	memset(zero, 0, sizeof(zero));
	memset(back, 0xee, sizeof(back));
	struct iovec iov;
	struct ferry_mem m = ta_sys(&iov, back, sizeof(back));
	cr_assert_eq(tv_io(&env, cry, FERRY_BDEV_IO_READ, 10, 8, &m, 1), 0);
	cr_assert_neq(memcmp(back, zero, 512), 0, "block 10 was not zeroed");
	cr_assert_eq(memcmp(back + 512, zero, 5 * 512), 0, "blocks 11..15 must read as zeroes");
	cr_assert_neq(memcmp(back + 6 * 512, zero, 512), 0, "block 16 was not zeroed");
	/* Stored as encrypted zeroes, not as zeroes. */
	tv_raw(mal, FERRY_BDEV_IO_READ, 12, 1, raw);
	expect_cipher(key, zero, exp, 512, 12);
	cr_assert_eq(memcmp(raw, exp, 512), 0);
}

Test(bdev_crypto, write_zeroes_reads_zeroes)
{
	zero_case(FERRY_BDEV_IO_WRITE_ZEROES);
}

Test(bdev_crypto, unmap_reads_zeroes)
{
	zero_case(FERRY_BDEV_IO_UNMAP);
}

Test(bdev_crypto, write_zeroes_whole_device_in_chunks)
{
	/* 4096 blocks of 512 = 2 MiB: 16 chunks of 128 KiB, completed synchronously by malloc. */
	struct ferry_bdev *mb = tv_malloc("mb", 512, 0, 4096, 0);
	struct ferry_bdev *cb = tv_crypto("cb", mb, key);
	cr_assert_eq(tv_io(&env, cb, FERRY_BDEV_IO_WRITE_ZEROES, 0, 4096, NULL, 0), 0);
	uint8_t *back = malloc(4096 * 512), *zero = calloc(1, 4096 * 512);
	memset(back, 1, 4096 * 512);
	struct iovec iov;
	struct ferry_mem m = ta_sys(&iov, back, 4096 * 512);
	cr_assert_eq(tv_io(&env, cb, FERRY_BDEV_IO_READ, 0, 4096, &m, 0), 0);
	cr_assert_eq(memcmp(back, zero, 4096 * 512), 0);
	struct ferry_bdev_stats st = {.size = sizeof(st)};
	cr_assert_eq(ferry_bdev_get_stats(mb, &st), 0);
	cr_assert_eq(st.ios[FERRY_BDEV_IO_WRITE], 16, "expected 16 chunk writes, got %llu",
		     (unsigned long long)st.ios[FERRY_BDEV_IO_WRITE]);
	cr_assert_eq(ferry_bdev_destroy(cb), 0);
	cr_assert_eq(ferry_bdev_destroy(mb), 0);
	free(back);
	free(zero);
}

Test(bdev_crypto, write_zeroes_with_sequence_refused)
{
	ferry_log_set_handler(tm_quiet_log);
	cr_assert_eq(tv_io(&env, cry, FERRY_BDEV_IO_WRITE_ZEROES, 0, 1, NULL, 1), -ENOTSUP);
	ferry_log_set_handler(NULL);
}

Test(bdev_crypto, flush_passes_through)
{
	cr_assert_eq(tv_io(&env, cry, FERRY_BDEV_IO_FLUSH, 0, 0, NULL, 0), 0);
	struct ferry_bdev_stats st = {.size = sizeof(st)};
	cr_assert_eq(ferry_bdev_get_stats(mal, &st), 0);
	cr_assert_eq(st.ios[FERRY_BDEV_IO_FLUSH], 1);
}

Test(bdev_crypto, compare)
{
	round_trip(1, 1, 40, 4, 9);
	uint8_t buf[4 * 512];
	struct iovec iov;
	struct ferry_mem m = ta_sys(&iov, buf, sizeof(buf));
	cr_assert_eq(tv_io(&env, cry, FERRY_BDEV_IO_READ, 40, 4, &m, 1), 0);
	cr_assert_eq(tv_io(&env, cry, FERRY_BDEV_IO_COMPARE, 40, 4, &m, 0), 0);
	buf[2 * 512 + 17] ^= 1;
	struct tv_done d;
	cr_assert_eq(tv_io_ex(&env, cry, FERRY_BDEV_IO_COMPARE, 40, 4, &m, 0, &d), -EILSEQ);
	cr_assert_eq(d.error, FERRY_BDEV_ERR_MISCOMPARE);
	cr_assert_eq(d.error_block, 42);
	ferry_log_set_handler(tm_quiet_log);
	cr_assert_eq(tv_io(&env, cry, FERRY_BDEV_IO_COMPARE, 40, 4, &m, 1), -ENOTSUP);
	ferry_log_set_handler(NULL);
}

/* A base that accepts nothing: every data I/O is refused with -ENOMEM. */
static int busy_io(struct ferry_bdev *b, struct ferry_bdev_io *io)
{
	(void)b;
	(void)io;
	return -ENOMEM;
}

static const struct ferry_bdev_ops busy_ops = {
	.abi_version = FERRY_BDEV_OPS_ABI,
	.read = busy_io,
	.write = busy_io,
};

Test(bdev_crypto, base_refusal_consumes_the_sequence)
{
	ferry_log_set_handler(tm_quiet_log);
	struct ferry_bdev_opts bo = {.size = sizeof(bo),
				     .name = "busy",
				     .block_size = 512,
				     .num_blocks = 8,
				     .ops = &busy_ops};
	struct ferry_bdev *busy = NULL, *cb;
	cr_assert_eq(ferry_bdev_create(&bo, &busy), 0);
	cb = tv_crypto("cbusy", busy, key);
	uint8_t buf[512] = {0};
	struct iovec iov;
	struct ferry_mem m = ta_sys(&iov, buf, 512);
	struct ferry_accel_stats s0 = ta_stats(ch);
	/* With a sequence: appended, then refused below -> completed with the error. */
	cr_assert_eq(tv_io(&env, cb, FERRY_BDEV_IO_WRITE, 0, 1, &m, 1), -ENOMEM);
	struct ferry_accel_stats s1 = ta_stats(ch);
	cr_assert_eq(s1.seqs_aborted - s0.seqs_aborted, 1, "the sequence must be aborted");
	/* Without a sequence: nothing started -> submit returns the error, no callback. */
	struct ferry_bdev_io io;
	memset(&io, 0, sizeof(io));
	struct tv_done d = {0};
	io.type = FERRY_BDEV_IO_WRITE;
	io.num_blocks = 1;
	io.mem = m;
	io.cb = tv_done_cb;
	io.cb_arg = &d;
	cr_assert_eq(ferry_bdev_submit(cb, &io), -ENOMEM);
	cr_assert_eq(d.calls, 0);
	/* No virtual buffer leaked: max_vbufs of the channel are all free again. */
	cr_assert_eq(ferry_bdev_destroy(cb), 0);
	cr_assert_eq(ferry_bdev_destroy(busy), 0);
	ferry_log_set_handler(NULL);
}

Test(bdev_crypto, no_virtual_buffer_left_returns_enomem)
{
	ferry_log_set_handler(tm_quiet_log);
	struct ferry_accel_chan_opts o = {.size = sizeof(o), .max_vbufs = 1};
	struct ferry_accel_chan *small = NULL;
	cr_assert_eq(ferry_accel_chan_create(NULL, &o, &small), 0);
	struct tv_env e = {small, NULL};
	struct iovec hold_iov;
	struct ferry_mem hold = ta_virt(small, &hold_iov, 512);
	uint8_t buf[512] = {0};
	struct iovec iov;
	struct ferry_mem m = ta_sys(&iov, buf, 512);
	struct ferry_seq *seq = NULL;
	cr_assert_eq(ferry_seq_create(small, &seq), 0);
	struct ferry_bdev_io io;
	memset(&io, 0, sizeof(io));
	struct tv_done d = {0};
	io.type = FERRY_BDEV_IO_WRITE;
	io.offset_blocks = 2;
	io.num_blocks = 1;
	io.mem = m;
	io.seq = seq;
	io.cb = tv_done_cb;
	io.cb_arg = &d;
	cr_assert_eq(ferry_bdev_submit(cry, &io), -ENOMEM);
	cr_assert_eq(d.calls, 0);
	/* The sequence is untouched and still the caller's: free the buffer and retry. */
	ta_put(small, &hold);
	cr_assert_eq(ferry_bdev_submit(cry, &io), 0);
	uint64_t end = tm_now_ns() + 5000000000ull;
	while (d.calls == 0 && tm_now_ns() < end)
		tv_poll(&e);
	cr_assert_eq(d.calls, 1);
	cr_assert_eq(d.status, 0);
	ferry_accel_chan_destroy(small);
	ferry_log_set_handler(NULL);
}

Test(bdev_crypto, host_domain_without_sequence)
{
	struct ferry_device *dev = tm_open("host_mem=1M,functions=nvme");
	struct ferry_mock_host *host = tm_host(dev);
	struct ferry_memdomain *nvme = tm_domain(dev, "nvme");
	tm_map(host, "nvme", 0, 0, 16, TM_RW);
	struct tv_env e = {ch, nvme};
	uint8_t *h = ferry_mock_host_ptr(host, 4096, 3 * 512);
	cr_assert_not_null(h);
	uint64_t seed = 10;
	uint8_t plain[3 * 512], raw[3 * 512], exp[3 * 512];
	ta_fill_rand(plain, sizeof(plain), &seed);
	memcpy(h, plain, sizeof(plain));
	struct iovec iov = {(void *)(uintptr_t)4096, sizeof(plain)};
	struct ferry_mem m = {.domain = nvme, .iov = &iov, .iovcnt = 1};
	cr_assert_eq(tv_io(&e, cry, FERRY_BDEV_IO_WRITE, 7, 3, &m, 0), 0);
	tv_raw(mal, FERRY_BDEV_IO_READ, 7, 3, raw);
	expect_cipher(key, plain, exp, sizeof(plain), 7);
	cr_assert_eq(memcmp(raw, exp, sizeof(raw)), 0);
	memset(h, 0, sizeof(plain));
	cr_assert_eq(tv_io(&e, cry, FERRY_BDEV_IO_READ, 7, 3, &m, 0), 0);
	cr_assert_eq(memcmp(h, plain, sizeof(plain)), 0);
	/* Same through a sequence (the software engine bounces the host memory). */
	memset(h, 0, sizeof(plain));
	cr_assert_eq(tv_io(&e, cry, FERRY_BDEV_IO_READ, 7, 3, &m, 1), 0);
	cr_assert_eq(memcmp(h, plain, sizeof(plain)), 0);
	/* A host address the function may not reach: a transfer error, not a crash. */
	ferry_log_set_handler(tm_quiet_log);
	struct iovec bad = {(void *)(uintptr_t)(64 * 4096), 512};
	struct ferry_mem mb = {.domain = nvme, .iov = &bad, .iovcnt = 1};
	struct tv_done d;
	int rc = tv_io_ex(&e, cry, FERRY_BDEV_IO_READ, 7, 1, &mb, 0, &d);
	cr_assert(rc == -EFAULT, "unmapped host address: %d", rc);
	cr_assert_eq(d.error, FERRY_BDEV_ERR_TRANSFER);
	ferry_log_set_handler(NULL);
	ferry_mock_host_close(host);
	ferry_device_close(dev);
}

Test(bdev_crypto, io_larger_than_a_virtual_buffer)
{
	/* A pool whose largest buffer is 8 KiB: a 16 KiB I/O uses a local intermediate buffer. */
	ferry_accel_chan_destroy(ch);
	ferry_accel_fini();
	struct ferry_accel_opts o = {.size = sizeof(o)};
	cr_assert_eq(ferry_accel_get_default_opts(&o), 0);
	o.small_buf_size = 4096;
	o.large_buf_size = 8192;
	cr_assert_eq(ferry_accel_init(&o), 0);
	cr_assert_eq(ferry_accel_get_buf_max(), 8192);
	ch = ta_chan(NULL, 0);
	env.ch = ch;
	round_trip(1, 1, 16, 32, 11);
	round_trip(1, 1, 0, 16, 12);
}
