/*
 * Helpers shared by the crypto/dif virtual bdev tests (test_bdev_crypto*.c, test_bdev_dif*.c,
 * test_bdev_stack*.c): creating the malloc/dif/crypto stack, running one I/O to completion
 * (with or without an accel sequence), reading and writing the base's raw blocks.
 * Header-only (each test_*.c is its own executable).
 */
#ifndef TEST_VBDEV_UTIL_H
#define TEST_VBDEV_UTIL_H

#include <ferry/bdev.h>
#include <ferry/bdev_malloc.h>
#include <ferry/bdev_crypto.h>
#include <ferry/bdev_dif.h>
#include "test_accel_util.h"

/* Completion record of one bdev I/O. */
struct tv_done {
	int calls;
	int status;
	enum ferry_bdev_io_error error;
	uint64_t error_block;
};

static inline void tv_done_cb(struct ferry_bdev_io *io, void *arg)
{
	struct tv_done *d = arg;
	d->calls++;
	d->status = io->status;
	d->error = io->error;
	d->error_block = io->error_block;
}

/* Where the completions of an I/O come from. */
struct tv_env {
	struct ferry_accel_chan *ch; /* polled; also creates the sequences (NULL: none) */
	struct ferry_memdomain *dom; /* a remote domain to poll too (or NULL) */
};

static inline void tv_poll(const struct tv_env *e)
{
	if (e->ch)
		cr_assert_geq(ferry_accel_chan_poll(e->ch, 64), 0);
	if (e->dom)
		ferry_memdomain_poll(e->dom, 64);
}

/*
 * Submit one I/O (with a fresh sequence when @p seq is set) and wait for it. Returns the
 * submit code if negative (the sequence, if any, was aborted), else the I/O's status; @p d
 * gets the details.
 */
static inline int tv_io_ex(const struct tv_env *e, struct ferry_bdev *b,
			   enum ferry_bdev_io_type type, uint64_t lba, uint64_t n,
			   const struct ferry_mem *mem, int seq, struct tv_done *d)
{
	struct ferry_bdev_io io;
	memset(&io, 0, sizeof(io));
	memset(d, 0, sizeof(*d));
	io.type = type;
	io.offset_blocks = lba;
	io.num_blocks = n;
	if (mem)
		io.mem = *mem;
	io.cb = tv_done_cb;
	io.cb_arg = d;
	if (seq) {
		cr_assert_not_null(e->ch);
		cr_assert_eq(ferry_seq_create(e->ch, &io.seq), 0);
	}
	int rc = ferry_bdev_submit(b, &io);
	if (rc) {
		cr_assert_eq(d->calls, 0, "callback ran although submit returned %d", rc);
		if (io.seq)
			ferry_seq_abort(io.seq);
		return rc;
	}
	uint64_t end = tm_now_ns() + 5000000000ull;
	while (d->calls == 0 && tm_now_ns() < end)
		tv_poll(e);
	cr_assert_eq(d->calls, 1, "I/O callback ran %d times", d->calls);
	return d->status;
}

static inline int tv_io(const struct tv_env *e, struct ferry_bdev *b, enum ferry_bdev_io_type type,
			uint64_t lba, uint64_t n, const struct ferry_mem *mem, int seq)
{
	struct tv_done d;
	return tv_io_ex(e, b, type, lba, n, mem, seq, &d);
}

/* Read or write @p n raw blocks of @p b at @p lba from/into local @p buf (no sequence). */
static inline void tv_raw(struct ferry_bdev *b, enum ferry_bdev_io_type type, uint64_t lba,
			  uint64_t n, void *buf)
{
	struct iovec iov;
	struct ferry_mem m = ta_sys(&iov, buf, n * ferry_bdev_get_block_size(b));
	struct tv_env none = {NULL, NULL};
	int rc = tv_io(&none, b, type, lba, n, &m, 0);
	cr_assert_eq(rc, 0, "raw %s of %s: %d", type == FERRY_BDEV_IO_READ ? "read" : "write",
		     ferry_bdev_get_name(b), rc);
}

static inline struct ferry_bdev *tv_malloc(const char *name, uint32_t bs, uint32_t md,
					   uint64_t nblocks, uint32_t dif_type)
{
	struct ferry_bdev_malloc_opts o = {.size = sizeof(o),
					   .name = name,
					   .block_size = bs + md,
					   .num_blocks = nblocks,
					   .md_size = md,
					   .dif_type = dif_type};
	struct ferry_bdev *b = NULL;
	int rc = ferry_bdev_malloc_create(&o, &b);
	cr_assert_eq(rc, 0, "malloc %s: %d (%s)", name, rc, ferry_last_error());
	return b;
}

static inline struct ferry_bdev *tv_crypto(const char *name, struct ferry_bdev *base,
					   struct ferry_crypto_key *key)
{
	struct ferry_bdev_crypto_opts o = {.size = sizeof(o),
					   .name = name,
					   .base = base,
					   .key = key};
	struct ferry_bdev *b = NULL;
	int rc = ferry_bdev_crypto_create(&o, &b);
	cr_assert_eq(rc, 0, "crypto %s: %d (%s)", name, rc, ferry_last_error());
	return b;
}

#define TV_CHECK_ALL (FERRY_DIF_CHECK_GUARD | FERRY_DIF_CHECK_APPTAG | FERRY_DIF_CHECK_REFTAG)

static inline struct ferry_bdev *tv_dif(const char *name, struct ferry_bdev *base, uint32_t type,
					uint32_t checks, uint16_t app, uint16_t mask)
{
	struct ferry_bdev_dif_opts o = {.size = sizeof(o),
					.name = name,
					.base = base,
					.dif_type = type,
					.check_flags = checks,
					.app_tag = app,
					.app_tag_mask = mask};
	struct ferry_bdev *b = NULL;
	int rc = ferry_bdev_dif_create(&o, &b);
	cr_assert_eq(rc, 0, "dif %s: %d (%s)", name, rc, ferry_last_error());
	return b;
}

#endif /* TEST_VBDEV_UTIL_H */
