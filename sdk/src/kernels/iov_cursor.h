/*
 * iovec cursor shared by the software engine kernels (crc.c, crypto_xts.c, dif.c): validate an
 * iovec array, walk it, and gather/scatter the few bytes that straddle segment boundaries.
 * Never installed.
 */
#ifndef FERRY_CRC_IOV_H
#define FERRY_CRC_IOV_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

/* Position inside an iovec array. Invariant after every call: either idx == cnt (end) or the
 * current segment has at least one byte left at off (empty segments are skipped). */
struct iov_cur {
	const struct iovec *iov;
	uint32_t cnt;
	uint32_t idx;
	size_t off;
};

static inline void iov_cur_skip_empty(struct iov_cur *c)
{
	while (c->idx < c->cnt && c->off >= c->iov[c->idx].iov_len) {
		c->idx++;
		c->off = 0;
	}
}

static inline void iov_cur_init(struct iov_cur *c, const struct iovec *iov, uint32_t cnt)
{
	c->iov = iov;
	c->cnt = iov ? cnt : 0;
	c->idx = 0;
	c->off = 0;
	iov_cur_skip_empty(c);
}

/* Bytes left in the current segment (0 at the end). */
static inline size_t iov_cur_avail(const struct iov_cur *c)
{
	return c->idx < c->cnt ? c->iov[c->idx].iov_len - c->off : 0;
}

static inline uint8_t *iov_cur_ptr(const struct iov_cur *c)
{
	return (uint8_t *)c->iov[c->idx].iov_base + c->off;
}

/* Advance by n bytes; the caller has checked that n bytes remain. */
static inline void iov_cur_advance(struct iov_cur *c, size_t n)
{
	while (n && c->idx < c->cnt) {
		size_t a = c->iov[c->idx].iov_len - c->off;
		if (n < a) {
			c->off += n;
			return;
		}
		n -= a;
		c->idx++;
		c->off = 0;
		iov_cur_skip_empty(c);
	}
	iov_cur_skip_empty(c);
}

/* Copy n bytes out of the array at the cursor and advance. */
static inline void iov_cur_gather(struct iov_cur *c, void *dst, size_t n)
{
	uint8_t *d = dst;
	while (n && c->idx < c->cnt) {
		size_t a = iov_cur_avail(c);
		size_t k = n < a ? n : a;
		memcpy(d, iov_cur_ptr(c), k);
		d += k;
		n -= k;
		iov_cur_advance(c, k);
	}
}

/* Copy n bytes into the array at the cursor and advance. */
static inline void iov_cur_scatter(struct iov_cur *c, const void *src, size_t n)
{
	const uint8_t *s = src;
	while (n && c->idx < c->cnt) {
		size_t a = iov_cur_avail(c);
		size_t k = n < a ? n : a;
		memcpy(iov_cur_ptr(c), s, k);
		s += k;
		n -= k;
		iov_cur_advance(c, k);
	}
}

/*
 * Total length of an iovec array, validating it: a NULL array needs cnt == 0 and a non-empty
 * segment needs a non-NULL base. Returns 0 or -EINVAL (the caller logs with its own context);
 * *why is set to a static reason string on failure.
 */
static inline int iov_total(const struct iovec *iov, uint32_t cnt, size_t *total, const char **why)
{
	size_t t = 0;
	if (!iov && cnt) {
		*why = "NULL iovec array with a non-zero count";
		return -EINVAL;
	}
	for (uint32_t i = 0; i < cnt; i++) {
		if (iov[i].iov_len && !iov[i].iov_base) {
			*why = "segment with a NULL base and a non-zero length";
			return -EINVAL;
		}
		if (t + iov[i].iov_len < t) {
			*why = "total length overflows";
			return -EINVAL;
		}
		t += iov[i].iov_len;
	}
	*total = t;
	return 0;
}

#endif /* FERRY_CRC_IOV_H */
