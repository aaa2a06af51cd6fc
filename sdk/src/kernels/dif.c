/*
 * T10 DIF/DIX kernels of the software engine: context validation, PI generate/verify on
 * extended blocks, insert (copy + generate), strip (verify + copy), DIX generate/verify.
 *
 * Speed: the guard is computed with ISA-L straight on the segment memory. A block whose data
 * and PI sit in one segment takes the fast path (one CRC call, PI read/written in place); a
 * block straddling segments has its CRC chained over the pieces (CRC16-T10DIF is chainable),
 * and only its 8 PI bytes are gathered/scattered. Verification reads the PI first so that an
 * escaped block, or a context without FERRY_DIF_CHECK_GUARD, costs no CRC at all.
 */
#include <isa-l/crc.h>
#include <ferry/dif.h>
#include <ferry/hal/iov.h>
#include "core_internal.h"

#define COMP "dif"
#define PI_SIZE 8u
#define DIF_FLAGS_ALL (FERRY_DIF_CHECK_GUARD | FERRY_DIF_CHECK_APPTAG | FERRY_DIF_CHECK_REFTAG)

/* The PI tuple, host order. */
struct pi {
	uint16_t guard;
	uint16_t app;
	uint32_t ref;
};

static inline void pi_store(uint8_t *p, uint16_t guard, uint16_t app, uint32_t ref)
{
	p[0] = (uint8_t)(guard >> 8);
	p[1] = (uint8_t)guard;
	p[2] = (uint8_t)(app >> 8);
	p[3] = (uint8_t)app;
	p[4] = (uint8_t)(ref >> 24);
	p[5] = (uint8_t)(ref >> 16);
	p[6] = (uint8_t)(ref >> 8);
	p[7] = (uint8_t)ref;
}

static inline struct pi pi_load(const uint8_t *p)
{
	struct pi t;
	t.guard = (uint16_t)(p[0] << 8 | p[1]);
	t.app = (uint16_t)(p[2] << 8 | p[3]);
	t.ref = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7];
	return t;
}

/* Ref tag of block blk (types 1/2 increment, type 3 does not). */
static inline uint32_t ref_of(const struct ferry_dif_ctx *ctx, uint64_t blk)
{
	return ctx->type == FERRY_DIF_TYPE3 ? ctx->init_ref_tag : ctx->init_ref_tag + (uint32_t)blk;
}

static inline int pi_escaped(const struct ferry_dif_ctx *ctx, const struct pi *t)
{
	if (t->app != 0xFFFF)
		return 0;
	return ctx->type != FERRY_DIF_TYPE3 || t->ref == 0xFFFFFFFFu;
}

static inline uint16_t crc16(uint16_t crc, const uint8_t *p, size_t n)
{
	return crc16_t10dif(crc, p, n);
}

/* CRC of n bytes at the cursor (chained over segment pieces), advancing it. */
static uint16_t crc_pieces(struct ferry_hal_iov_cur *c, size_t n)
{
	uint16_t crc = 0;
	while (n) {
		size_t a = ferry_hal_iov_cur_avail(c);
		size_t k = n < a ? n : a;
		if (!k)
			break; /* end of the array: cannot happen after buf_check() */
		crc = crc16(crc, ferry_hal_iov_cur_ptr(c), k);
		ferry_hal_iov_cur_advance(c, k);
		n -= k;
	}
	return crc;
}

/* Copy n bytes from s to d computing their CRC on the way, advancing both. */
static uint16_t crc_copy_pieces(struct ferry_hal_iov_cur *d, struct ferry_hal_iov_cur *s, size_t n)
{
	uint16_t crc = 0;
	while (n) {
		size_t k = ferry_hal_iov_cur_avail(s);
		size_t ad = ferry_hal_iov_cur_avail(d);
		if (ad < k)
			k = ad;
		if (n < k)
			k = n;
		if (!k)
			break; /* end of an array: cannot happen after buf_check() */
		crc = crc16_t10dif_copy(crc, ferry_hal_iov_cur_ptr(d), ferry_hal_iov_cur_ptr(s), k);
		ferry_hal_iov_cur_advance(s, k);
		ferry_hal_iov_cur_advance(d, k);
		n -= k;
	}
	return crc;
}

/* Compare a (non-escaped) PI with what it should be; fill err and log on mismatch. */
static int pi_compare(const char *op, const struct ferry_dif_ctx *ctx, uint64_t blk,
		      const struct pi *t, uint16_t guard_calc, struct ferry_dif_error *err)
{
	enum ferry_dif_field f = FERRY_DIF_FIELD_NONE;
	uint32_t exp = 0, act = 0;
	if ((ctx->flags & FERRY_DIF_CHECK_GUARD) && t->guard != guard_calc) {
		f = FERRY_DIF_FIELD_GUARD;
		exp = guard_calc;
		act = t->guard;
	} else if ((ctx->flags & FERRY_DIF_CHECK_APPTAG) &&
		   (t->app & ctx->app_tag_mask) != (ctx->app_tag & ctx->app_tag_mask)) {
		f = FERRY_DIF_FIELD_APPTAG;
		exp = ctx->app_tag;
		act = t->app;
	} else if ((ctx->flags & FERRY_DIF_CHECK_REFTAG) && t->ref != ref_of(ctx, blk)) {
		f = FERRY_DIF_FIELD_REFTAG;
		exp = ref_of(ctx, blk);
		act = t->ref;
	}
	if (f == FERRY_DIF_FIELD_NONE)
		return 0;
	if (err) {
		err->field = f;
		err->block = blk;
		err->expected = exp;
		err->actual = act;
	}
	/* The data (and so a failing check) comes from a host or a peer: the reason always goes
	 * to ferry_last_error() and @err, the log gets a bounded number of lines. */
	static struct log_ratelimit rl;
	unsigned int dropped;
	ferry_set_last_error(COMP, "%s: block %llu of the buffer: %s mismatch, expected 0x%x, "
			     "found 0x%x", op, (unsigned long long)blk, ferry_dif_field_name(f), exp,
			     act);
	if (log_ratelimit(&rl, &dropped)) {
		if (dropped)
			FERRY_WARN(COMP, "%u PI check failures not logged in the last second", dropped);
		FERRY_ERR(COMP, "%s: block %llu of the buffer: %s mismatch, expected 0x%x, "
			  "found 0x%x", op, (unsigned long long)blk, ferry_dif_field_name(f), exp, act);
	}
	return -EILSEQ;
}

static int ctx_check(const char *op, const struct ferry_dif_ctx *ctx, int interleave)
{
	if (!ctx) {
		FERRY_ERR(COMP, "%s: NULL context", op);
		return -EINVAL;
	}
	if (ctx->block_size != 512 && ctx->block_size != 4096) {
		FERRY_ERR(COMP, "%s: block_size %u, must be 512 or 4096", op, ctx->block_size);
		return -EINVAL;
	}
	if (ctx->md_size != PI_SIZE) {
		FERRY_ERR(COMP, "%s: md_size %u, must be %u", op, ctx->md_size, PI_SIZE);
		return -EINVAL;
	}
	if (ctx->type != FERRY_DIF_TYPE1 && ctx->type != FERRY_DIF_TYPE2 &&
	    ctx->type != FERRY_DIF_TYPE3) {
		FERRY_ERR(COMP, "%s: unknown DIF type %d", op, (int)ctx->type);
		return -EINVAL;
	}
	if (ctx->flags & ~DIF_FLAGS_ALL) {
		FERRY_ERR(COMP, "%s: unknown check flags 0x%x", op, ctx->flags & ~DIF_FLAGS_ALL);
		return -EINVAL;
	}
	if (interleave >= 0 && !!ctx->md_interleave != interleave) {
		FERRY_ERR(COMP, "%s: needs a context with md_interleave = %d", op, interleave);
		return -EINVAL;
	}
	return 0;
}

/* Validate an iovec array and that it holds at least need bytes. */
static int buf_check(const char *op, const char *which, const struct iovec *iov, uint32_t cnt,
		     uint64_t need)
{
	size_t total;
	const char *why = NULL;
	if (ferry_hal_iov_total(iov, cnt, &total, &why)) {
		FERRY_ERR(COMP, "%s: %s: %s", op, which, why);
		return -EINVAL;
	}
	if ((uint64_t)total < need) {
		FERRY_ERR(COMP, "%s: %s holds %zu bytes, %llu needed", op, which, total,
			  (unsigned long long)need);
		return -EINVAL;
	}
	return 0;
}

FERRY_API int ferry_dif_ctx_init(struct ferry_dif_ctx *ctx, uint32_t block_size, uint32_t md_size,
				 int md_interleave, enum ferry_dif_type type, uint32_t check_flags,
				 uint32_t init_ref_tag, uint16_t app_tag, uint16_t app_tag_mask)
{
	if (!ctx) {
		FERRY_ERR(COMP, "ctx_init: NULL context");
		return -EINVAL;
	}
	struct ferry_dif_ctx c = {
		.block_size = block_size,
		.md_size = md_size,
		.flags = check_flags,
		.type = type,
		.md_interleave = md_interleave ? 1 : 0,
		.init_ref_tag = init_ref_tag,
		.app_tag = app_tag,
		.app_tag_mask = app_tag_mask,
	};
	int rc = ctx_check("ctx_init", &c, -1);
	if (rc)
		return rc;
	*ctx = c;
	return 0;
}

FERRY_API const char *ferry_dif_field_name(enum ferry_dif_field field)
{
	switch (field) {
	case FERRY_DIF_FIELD_NONE:
		return "none";
	case FERRY_DIF_FIELD_GUARD:
		return "guard";
	case FERRY_DIF_FIELD_APPTAG:
		return "app tag";
	case FERRY_DIF_FIELD_REFTAG:
		return "ref tag";
	}
	return "unknown";
}

static void err_clear(struct ferry_dif_error *err)
{
	if (err) {
		err->field = FERRY_DIF_FIELD_NONE;
		err->block = 0;
		err->expected = 0;
		err->actual = 0;
	}
}

FERRY_API int ferry_dif_generate(const struct ferry_dif_ctx *ctx, const struct iovec *iov,
				 uint32_t iovcnt, uint32_t nblocks)
{
	int rc = ctx_check("dif_generate", ctx, 1);
	if (rc)
		return rc;
	const size_t bs = ctx->block_size;
	rc = buf_check("dif_generate", "buffer", iov, iovcnt, (uint64_t)nblocks * (bs + PI_SIZE));
	if (rc)
		return rc;
	struct ferry_hal_iov_cur c;
	ferry_hal_iov_cur_init(&c, iov, iovcnt);
	for (uint64_t blk = 0; blk < nblocks; blk++) {
		const uint32_t ref = ref_of(ctx, blk);
		if (ferry_hal_iov_cur_avail(&c) >= bs + PI_SIZE) {
			uint8_t *p = ferry_hal_iov_cur_ptr(&c);
			pi_store(p + bs, crc16(0, p, bs), ctx->app_tag, ref);
			ferry_hal_iov_cur_advance(&c, bs + PI_SIZE);
			continue;
		}
		uint16_t guard = crc_pieces(&c, bs);
		if (ferry_hal_iov_cur_avail(&c) >= PI_SIZE) {
			pi_store(ferry_hal_iov_cur_ptr(&c), guard, ctx->app_tag, ref);
			ferry_hal_iov_cur_advance(&c, PI_SIZE);
		} else {
			uint8_t t[PI_SIZE];
			pi_store(t, guard, ctx->app_tag, ref);
			ferry_hal_iov_cur_scatter(&c, t, PI_SIZE);
		}
	}
	return 0;
}

FERRY_API int ferry_dif_verify(const struct ferry_dif_ctx *ctx, const struct iovec *iov,
			       uint32_t iovcnt, uint32_t nblocks, struct ferry_dif_error *err)
{
	err_clear(err);
	int rc = ctx_check("dif_verify", ctx, 1);
	if (rc)
		return rc;
	const size_t bs = ctx->block_size;
	rc = buf_check("dif_verify", "buffer", iov, iovcnt, (uint64_t)nblocks * (bs + PI_SIZE));
	if (rc)
		return rc;
	const int check_guard = !!(ctx->flags & FERRY_DIF_CHECK_GUARD);
	struct ferry_hal_iov_cur c;
	ferry_hal_iov_cur_init(&c, iov, iovcnt);
	for (uint64_t blk = 0; blk < nblocks; blk++) {
		struct pi t;
		uint16_t guard = 0;
		if (ferry_hal_iov_cur_avail(&c) >= bs + PI_SIZE) {
			const uint8_t *p = ferry_hal_iov_cur_ptr(&c);
			t = pi_load(p + bs);
			if (pi_escaped(ctx, &t)) {
				ferry_hal_iov_cur_advance(&c, bs + PI_SIZE);
				continue;
			}
			if (check_guard)
				guard = crc16(0, p, bs);
			ferry_hal_iov_cur_advance(&c, bs + PI_SIZE);
		} else {
			struct ferry_hal_iov_cur data = c; /* the block's data, for the CRC if needed */
			ferry_hal_iov_cur_advance(&c, bs);
			uint8_t raw[PI_SIZE];
			ferry_hal_iov_cur_gather(&c, raw, PI_SIZE);
			t = pi_load(raw);
			if (pi_escaped(ctx, &t))
				continue;
			if (check_guard)
				guard = crc_pieces(&data, bs);
		}
		rc = pi_compare("dif_verify", ctx, blk, &t, guard, err);
		if (rc)
			return rc;
	}
	return 0;
}

FERRY_API int ferry_dif_insert(const struct ferry_dif_ctx *ctx, const struct iovec *dst,
			       uint32_t dst_cnt, const struct iovec *src, uint32_t src_cnt,
			       uint32_t nblocks)
{
	int rc = ctx_check("dif_insert", ctx, 1);
	if (rc)
		return rc;
	const size_t bs = ctx->block_size;
	rc = buf_check("dif_insert", "source", src, src_cnt, (uint64_t)nblocks * bs);
	if (rc == 0)
		rc = buf_check("dif_insert", "destination", dst, dst_cnt,
			       (uint64_t)nblocks * (bs + PI_SIZE));
	if (rc)
		return rc;
	struct ferry_hal_iov_cur s, d;
	ferry_hal_iov_cur_init(&s, src, src_cnt);
	ferry_hal_iov_cur_init(&d, dst, dst_cnt);
	for (uint64_t blk = 0; blk < nblocks; blk++) {
		const uint32_t ref = ref_of(ctx, blk);
		if (ferry_hal_iov_cur_avail(&s) >= bs && ferry_hal_iov_cur_avail(&d) >= bs + PI_SIZE) {
			uint8_t *dp = ferry_hal_iov_cur_ptr(&d);
			uint16_t guard = crc16_t10dif_copy(0, dp, ferry_hal_iov_cur_ptr(&s), bs);
			pi_store(dp + bs, guard, ctx->app_tag, ref);
			ferry_hal_iov_cur_advance(&s, bs);
			ferry_hal_iov_cur_advance(&d, bs + PI_SIZE);
			continue;
		}
		uint8_t t[PI_SIZE];
		pi_store(t, crc_copy_pieces(&d, &s, bs), ctx->app_tag, ref);
		ferry_hal_iov_cur_scatter(&d, t, PI_SIZE);
	}
	return 0;
}

FERRY_API int ferry_dif_strip(const struct ferry_dif_ctx *ctx, const struct iovec *dst,
			      uint32_t dst_cnt, const struct iovec *src, uint32_t src_cnt,
			      uint32_t nblocks, struct ferry_dif_error *err)
{
	err_clear(err);
	int rc = ctx_check("dif_strip", ctx, 1);
	if (rc)
		return rc;
	const size_t bs = ctx->block_size;
	rc = buf_check("dif_strip", "source", src, src_cnt, (uint64_t)nblocks * (bs + PI_SIZE));
	if (rc == 0)
		rc = buf_check("dif_strip", "destination", dst, dst_cnt, (uint64_t)nblocks * bs);
	if (rc)
		return rc;
	struct ferry_hal_iov_cur s, d;
	ferry_hal_iov_cur_init(&s, src, src_cnt);
	ferry_hal_iov_cur_init(&d, dst, dst_cnt);
	for (uint64_t blk = 0; blk < nblocks; blk++) {
		struct pi t;
		uint16_t guard;
		if (ferry_hal_iov_cur_avail(&s) >= bs + PI_SIZE && ferry_hal_iov_cur_avail(&d) >= bs) {
			const uint8_t *sp = ferry_hal_iov_cur_ptr(&s);
			guard = crc16_t10dif_copy(0, ferry_hal_iov_cur_ptr(&d), (uint8_t *)sp, bs);
			t = pi_load(sp + bs);
			ferry_hal_iov_cur_advance(&s, bs + PI_SIZE);
			ferry_hal_iov_cur_advance(&d, bs);
		} else {
			guard = crc_copy_pieces(&d, &s, bs);
			uint8_t raw[PI_SIZE];
			ferry_hal_iov_cur_gather(&s, raw, PI_SIZE);
			t = pi_load(raw);
		}
		if (pi_escaped(ctx, &t))
			continue;
		rc = pi_compare("dif_strip", ctx, blk, &t, guard, err);
		if (rc)
			return rc;
	}
	return 0;
}

static int dix_check(const char *op, const struct ferry_dif_ctx *ctx, const struct iovec *data,
		     uint32_t data_cnt, const struct iovec *md, uint32_t md_cnt, uint32_t nblocks)
{
	int rc = ctx_check(op, ctx, 0);
	if (rc == 0)
		rc = buf_check(op, "data", data, data_cnt, (uint64_t)nblocks * ctx->block_size);
	if (rc == 0)
		rc = buf_check(op, "metadata", md, md_cnt, (uint64_t)nblocks * PI_SIZE);
	return rc;
}

FERRY_API int ferry_dix_generate(const struct ferry_dif_ctx *ctx, const struct iovec *data,
				 uint32_t data_cnt, const struct iovec *md, uint32_t md_cnt,
				 uint32_t nblocks)
{
	int rc = dix_check("dix_generate", ctx, data, data_cnt, md, md_cnt, nblocks);
	if (rc)
		return rc;
	const size_t bs = ctx->block_size;
	struct ferry_hal_iov_cur d, m;
	ferry_hal_iov_cur_init(&d, data, data_cnt);
	ferry_hal_iov_cur_init(&m, md, md_cnt);
	for (uint64_t blk = 0; blk < nblocks; blk++) {
		uint16_t guard;
		if (ferry_hal_iov_cur_avail(&d) >= bs) {
			guard = crc16(0, ferry_hal_iov_cur_ptr(&d), bs);
			ferry_hal_iov_cur_advance(&d, bs);
		} else {
			guard = crc_pieces(&d, bs);
		}
		if (ferry_hal_iov_cur_avail(&m) >= PI_SIZE) {
			pi_store(ferry_hal_iov_cur_ptr(&m), guard, ctx->app_tag, ref_of(ctx, blk));
			ferry_hal_iov_cur_advance(&m, PI_SIZE);
		} else {
			uint8_t t[PI_SIZE];
			pi_store(t, guard, ctx->app_tag, ref_of(ctx, blk));
			ferry_hal_iov_cur_scatter(&m, t, PI_SIZE);
		}
	}
	return 0;
}

FERRY_API int ferry_dix_verify(const struct ferry_dif_ctx *ctx, const struct iovec *data,
			       uint32_t data_cnt, const struct iovec *md, uint32_t md_cnt,
			       uint32_t nblocks, struct ferry_dif_error *err)
{
	err_clear(err);
	int rc = dix_check("dix_verify", ctx, data, data_cnt, md, md_cnt, nblocks);
	if (rc)
		return rc;
	const size_t bs = ctx->block_size;
	const int check_guard = !!(ctx->flags & FERRY_DIF_CHECK_GUARD);
	struct ferry_hal_iov_cur d, m;
	ferry_hal_iov_cur_init(&d, data, data_cnt);
	ferry_hal_iov_cur_init(&m, md, md_cnt);
	for (uint64_t blk = 0; blk < nblocks; blk++) {
		struct pi t;
		if (ferry_hal_iov_cur_avail(&m) >= PI_SIZE) {
			t = pi_load(ferry_hal_iov_cur_ptr(&m));
			ferry_hal_iov_cur_advance(&m, PI_SIZE);
		} else {
			uint8_t raw[PI_SIZE];
			ferry_hal_iov_cur_gather(&m, raw, PI_SIZE);
			t = pi_load(raw);
		}
		if (pi_escaped(ctx, &t) || !check_guard) {
			ferry_hal_iov_cur_advance(&d, bs);
			if (pi_escaped(ctx, &t))
				continue;
			rc = pi_compare("dix_verify", ctx, blk, &t, 0, err);
		} else {
			uint16_t guard;
			if (ferry_hal_iov_cur_avail(&d) >= bs) {
				guard = crc16(0, ferry_hal_iov_cur_ptr(&d), bs);
				ferry_hal_iov_cur_advance(&d, bs);
			} else {
				guard = crc_pieces(&d, bs);
			}
			rc = pi_compare("dix_verify", ctx, blk, &t, guard, err);
		}
		if (rc)
			return rc;
	}
	return 0;
}
