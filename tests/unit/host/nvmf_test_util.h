/*
 * Helpers shared by the nvmf bdev tests (tests/unit/host/): a deterministic data pattern and
 * the bdev's counters read with an assertion.
 */
#ifndef NVMF_TEST_UTIL_H
#define NVMF_TEST_UTIL_H

#include <criterion/criterion.h>
#include <stddef.h>
#include <stdint.h>
#include <ferry/bdev_nvmf.h>

/* @p n bytes of a pattern that depends on @p seed and on the offset (also across 512-byte
 * sectors), so misplaced or stale data never compares equal. */
__attribute__((unused)) static void fill(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)((i * 131u + seed * 7u + (i >> 9)) ^ seed);
}

__attribute__((unused)) static struct ferry_bdev_nvmf_stats stats_of(struct ferry_bdev *b)
{
	struct ferry_bdev_nvmf_stats s = {.size = sizeof(s)};
	cr_assert_eq(ferry_bdev_nvmf_get_stats(b, &s), 0);
	return s;
}

#endif /* NVMF_TEST_UTIL_H */
