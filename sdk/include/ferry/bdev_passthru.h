/**
 * @file ferry/bdev_passthru.h
 * @brief The passthrough bdev: a virtual bdev that passes every I/O down unchanged.
 */
#ifndef FERRY_BDEV_PASSTHRU_H
#define FERRY_BDEV_PASSTHRU_H

#include <stddef.h>
#include <stdint.h>
#include <ferry/export.h>
#include <ferry/bdev.h>

FERRY_BEGIN_DECLS

/** Options of ferry_bdev_passthru_create(). */
struct ferry_bdev_passthru_opts {
	size_t size;           /**< sizeof(struct ferry_bdev_passthru_opts) */
	const char *name;      /**< name of the new bdev */
	const char *base_name; /**< bdev to sit on; it is claimed until the passthru is destroyed */
};

/**
 * @brief Create a virtual bdev that passes every I/O unchanged (same mem, same sequence) to
 * its base and reports the base's result. Same geometry as the base.
 * @param[in] opts the options (copied).
 * @param[out] out the new bdev; ferry_bdev_destroy() releases the base's claim.
 * @retval 0 success; -EINVAL bad options; -ENOENT no such base; -EBUSY base already claimed;
 *         -EEXIST name taken; -ENOMEM out of memory.
 */
FERRY_API int ferry_bdev_passthru_create(const struct ferry_bdev_passthru_opts *opts,
					 struct ferry_bdev **out);

FERRY_END_DECLS

#endif /* FERRY_BDEV_PASSTHRU_H */
