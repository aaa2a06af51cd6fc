/**
 * @file ferry/bdev_malloc.h
 * @brief The malloc bdev: a terminal bdev that keeps its blocks in SoC RAM.
 */
#ifndef FERRY_BDEV_MALLOC_H
#define FERRY_BDEV_MALLOC_H

#include <stddef.h>
#include <stdint.h>
#include <ferry/export.h>
#include <ferry/bdev.h>

FERRY_BEGIN_DECLS

/** Options of ferry_bdev_malloc_create(). */
struct ferry_bdev_malloc_opts {
	size_t size;         /**< sizeof(struct ferry_bdev_malloc_opts) */
	const char *name;    /**< bdev name */
	uint32_t block_size; /**< bytes per block incl. interleaved metadata (e.g. 512, 520, 4096,
				  4104); data part a multiple of 512 */
	uint64_t num_blocks; /**< blocks (>= 1) */
	uint32_t md_size;    /**< interleaved metadata bytes per block (0, or 8.. for PI) */
	uint32_t dif_type;   /**< PI type advertised (0..3); the malloc bdev does not check PI */
};

/**
 * @brief Create a RAM-backed bdev (zero-filled). Only interleaved metadata is supported.
 * Data moves with pull/push on the I/O's domain, or through the I/O's sequence.
 * Destroy with ferry_bdev_destroy().
 * @param[in] opts the options (copied).
 * @param[out] out the new bdev.
 * @retval 0 success; -EINVAL bad options; -EEXIST name taken; -ENOMEM out of memory.
 */
FERRY_API int ferry_bdev_malloc_create(const struct ferry_bdev_malloc_opts *opts,
				       struct ferry_bdev **out);

FERRY_END_DECLS

#endif /* FERRY_BDEV_MALLOC_H */
