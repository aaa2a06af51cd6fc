/*
 * Helpers shared by the accel sequence tests (test_accel_*.c, test_seq_*.c): channels,
 * running a sequence to completion, memory descriptors, keys, DIF contexts, random data.
 * Header-only (each test_*.c is its own executable).
 */
#ifndef TEST_ACCEL_UTIL_H
#define TEST_ACCEL_UTIL_H

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <ferry/accel.h>
#include <ferry/crc.h>
#include <ferry/crypto.h>
#include <ferry/dif.h>
#include "test_mock_util.h"

/* Completion record of a sequence. */
struct ta_done {
	int calls;
	int status;
};

static inline void ta_done_cb(void *arg, int status)
{
	struct ta_done *d = arg;
	d->calls++;
	d->status = status;
}

static inline struct ferry_accel_chan *ta_chan(struct ferry_device *dev, uint32_t disabled_passes)
{
	struct ferry_accel_chan_opts o = {.size = sizeof(o), .disabled_passes = disabled_passes};
	struct ferry_accel_chan *ch = NULL;
	int rc = ferry_accel_chan_create(dev, &o, &ch);
	cr_assert_eq(rc, 0, "chan_create: %d (%s)", rc, ferry_last_error());
	return ch;
}

/* Polls until @p d saw its callback (5 s at most). */
static inline void ta_wait(struct ferry_accel_chan *ch, struct ta_done *d)
{
	uint64_t end = tm_now_ns() + 5000000000ull;
	while (d->calls == 0 && tm_now_ns() < end)
		cr_assert_geq(ferry_accel_chan_poll(ch, 16), 0);
	cr_assert_eq(d->calls, 1, "sequence callback ran %d times", d->calls);
}

/* Finishes @p seq and waits; returns the sequence status. */
static inline int ta_run(struct ferry_accel_chan *ch, struct ferry_seq *seq)
{
	struct ta_done d = {0, 0};
	int rc = ferry_seq_finish(seq, ta_done_cb, &d);
	cr_assert_eq(rc, 0, "finish: %d (%s)", rc, ferry_last_error());
	ta_wait(ch, &d);
	return d.status;
}

static inline struct ferry_seq *ta_seq(struct ferry_accel_chan *ch)
{
	struct ferry_seq *s = NULL;
	cr_assert_eq(ferry_seq_create(ch, &s), 0);
	return s;
}

/* A one-segment descriptor in the system domain. */
static inline struct ferry_mem ta_sys(struct iovec *iov, void *buf, size_t len)
{
	iov->iov_base = buf;
	iov->iov_len = len;
	return (struct ferry_mem){.domain = NULL, .iov = iov, .iovcnt = 1};
}

/* A virtual buffer of @p len bytes as a one-segment descriptor. */
static inline struct ferry_mem ta_virt(struct ferry_accel_chan *ch, struct iovec *iov, size_t len)
{
	void *buf, *ctx;
	struct ferry_memdomain *d;
	int rc = ferry_accel_get_buf(ch, len, &buf, &d, &ctx);
	cr_assert_eq(rc, 0, "get_buf %zu: %d", len, rc);
	iov->iov_base = buf;
	iov->iov_len = len;
	return (struct ferry_mem){.domain = d, .domain_ctx = ctx, .iov = iov, .iovcnt = 1};
}

static inline void ta_put(struct ferry_accel_chan *ch, const struct ferry_mem *m)
{
	ferry_accel_put_buf(ch, m->iov[0].iov_base, m->domain, m->domain_ctx);
}

static inline void ta_fill_rand(void *buf, size_t len, uint64_t *seed)
{
	uint8_t *p = buf;
	for (size_t i = 0; i < len; i++) {
		if (i % 8 == 0) {
			uint64_t r = tm_rand(seed);
			size_t n = len - i < 8 ? len - i : 8;
			memcpy(p + i, &r, n);
			i += n - 1;
		}
	}
}

static inline struct ferry_crypto_key *ta_key(uint64_t seed, enum ferry_cipher c, uint32_t du)
{
	uint8_t k1[32], k2[32];
	ta_fill_rand(k1, sizeof(k1), &seed);
	ta_fill_rand(k2, sizeof(k2), &seed);
	k2[0] = (uint8_t)(k1[0] ^ 0x5a);
	struct ferry_crypto_key_opts o = {.size = sizeof(o),
					  .cipher = c,
					  .key1 = k1,
					  .key2 = k2,
					  .key_len = c == FERRY_CIPHER_AES_XTS_128 ? 16 : 32,
					  .data_unit_size = du};
	struct ferry_crypto_key *key = NULL;
	cr_assert_eq(ferry_crypto_key_create(&o, &key), 0, "key: %s", ferry_last_error());
	return key;
}

static inline struct ferry_dif_ctx ta_dif(uint32_t bs, int interleave, enum ferry_dif_type type,
					  uint32_t ref)
{
	struct ferry_dif_ctx c;
	uint32_t checks = FERRY_DIF_CHECK_GUARD | FERRY_DIF_CHECK_APPTAG | FERRY_DIF_CHECK_REFTAG;
	cr_assert_eq(ferry_dif_ctx_init(&c, bs, 8, interleave, type, checks, ref, 0x1234, 0xffff),
		     0);
	return c;
}

static inline struct ferry_accel_stats ta_stats(struct ferry_accel_chan *ch)
{
	struct ferry_accel_stats s = {.size = sizeof(s)};
	cr_assert_eq(ferry_accel_get_stats(ch, &s), 0);
	return s;
}

/* Records per-step callbacks in order. */
struct ta_steps {
	int order[64];
	int status[64];
	int n;
};

struct ta_step_arg {
	struct ta_steps *log;
	int id;
};

static inline void ta_step_cb(void *arg, int status)
{
	struct ta_step_arg *a = arg;
	if (a->log->n < 64) {
		a->log->order[a->log->n] = a->id;
		a->log->status[a->log->n] = status;
	}
	a->log->n++;
}

#endif /* TEST_ACCEL_UTIL_H */
