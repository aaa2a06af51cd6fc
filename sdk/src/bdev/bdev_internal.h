/*
 * Internal helpers shared by the built-in bdev modules (malloc, null, passthrough). Never
 * installed.
 */
#ifndef FERRY_BDEV_INTERNAL_H
#define FERRY_BDEV_INTERNAL_H

#include <stdint.h>
#include <ferry/module/bdev.h>
#include <ferry/bdev_malloc.h>
#include <ferry/module/bdev.h>

/*
 * Validate the options of a terminal bdev (malloc, null) and fill the generic bdev options
 * from them (ops/ctx/module left to the caller). 0 or -EINVAL (logged, naming @p module).
 */
/* The geometry a terminal bdev's creator was given (malloc, null). */
struct bdev_geometry {
	const char *name;
	uint32_t block_size;
	uint64_t num_blocks;
	uint32_t md_size;
	uint32_t dif_type;
};

/* Check @o and fill the ferry_bdev_create() options of a terminal bdev from it. */
int bdev_terminal_opts(const struct bdev_geometry *o, const char *module,
		       struct ferry_bdev_opts *out);

#endif /* FERRY_BDEV_INTERNAL_H */
