/*
 * The iovec helpers of the backend SDK (ferry/hal/iov.h): the cursor the software kernels and
 * the backends walk buffers with, the validating length and the overlap test.
 *
 * These run once per segment or per block on the kernels' paths (CRC, DIF, XTS), so they are
 * kept short and branch-light; nothing here may become per-byte work.
 */
#include <errno.h>
#include <string.h>
#include <ferry/hal/iov.h>

/* Restores the invariant: at the end, or at least one byte left in the current segment. */
static void skip_empty(struct ferry_hal_iov_cur *c)
{
	while (c->idx < c->cnt && c->off >= c->iov[c->idx].iov_len) {
		c->idx++;
		c->off = 0;
	}
}

FERRY_API void ferry_hal_iov_cur_init(struct ferry_hal_iov_cur *c, const struct iovec *iov,
				      uint32_t cnt)
{
	c->iov = iov;
	c->cnt = iov ? cnt : 0;
	c->idx = 0;
	c->off = 0;
	skip_empty(c);
}

FERRY_API size_t ferry_hal_iov_cur_avail(const struct ferry_hal_iov_cur *c)
{
	return c->idx < c->cnt ? c->iov[c->idx].iov_len - c->off : 0;
}

FERRY_API void *ferry_hal_iov_cur_ptr(const struct ferry_hal_iov_cur *c)
{
	return c->idx < c->cnt ? (uint8_t *)c->iov[c->idx].iov_base + c->off : NULL;
}

FERRY_API void ferry_hal_iov_cur_advance(struct ferry_hal_iov_cur *c, size_t n)
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
		skip_empty(c);
	}
}

FERRY_API size_t ferry_hal_iov_cur_gather(struct ferry_hal_iov_cur *c, void *dst, size_t n)
{
	uint8_t *d = dst;
	size_t done = 0;
	while (done < n && c->idx < c->cnt) {
		size_t a = c->iov[c->idx].iov_len - c->off;
		size_t k = n - done < a ? n - done : a;
		memcpy(d + done, (const uint8_t *)c->iov[c->idx].iov_base + c->off, k);
		done += k;
		ferry_hal_iov_cur_advance(c, k);
	}
	return done;
}

FERRY_API size_t ferry_hal_iov_cur_scatter(struct ferry_hal_iov_cur *c, const void *src, size_t n)
{
	const uint8_t *s = src;
	size_t done = 0;
	while (done < n && c->idx < c->cnt) {
		size_t a = c->iov[c->idx].iov_len - c->off;
		size_t k = n - done < a ? n - done : a;
		memcpy((uint8_t *)c->iov[c->idx].iov_base + c->off, s + done, k);
		done += k;
		ferry_hal_iov_cur_advance(c, k);
	}
	return done;
}

FERRY_API int ferry_hal_iov_total(const struct iovec *iov, uint32_t cnt, size_t *total,
				  const char **why)
{
	const char *reason = NULL;
	size_t t = 0;
	if (!total)
		reason = "NULL total";
	else if (!iov && cnt)
		reason = "NULL iovec array with a non-zero count";
	for (uint32_t i = 0; !reason && i < cnt; i++) {
		if (iov[i].iov_len && !iov[i].iov_base)
			reason = "segment with a NULL base and a non-zero length";
		else if (t + iov[i].iov_len < t)
			reason = "total length overflows";
		else
			t += iov[i].iov_len;
	}
	if (reason) {
		if (why)
			*why = reason;
		return -EINVAL;
	}
	*total = t;
	return 0;
}

FERRY_API int ferry_hal_iov_overlap(const struct iovec *a, uint32_t na, const struct iovec *b,
				    uint32_t nb)
{
	if (!a || !b)
		return 0;
	for (uint32_t i = 0; i < na; i++) {
		uintptr_t s1 = (uintptr_t)a[i].iov_base;
		if (!a[i].iov_len)
			continue;
		for (uint32_t j = 0; j < nb; j++) {
			uintptr_t s2 = (uintptr_t)b[j].iov_base;
			if (b[j].iov_len && s1 < s2 + b[j].iov_len && s2 < s1 + a[i].iov_len)
				return 1;
		}
	}
	return 0;
}
