/*
 * Internal helpers shared by the built-in bdev modules (malloc, null, passthrough). Never
 * installed.
 */
#ifndef FERRY_BDEV_INTERNAL_H
#define FERRY_BDEV_INTERNAL_H

#include <ferry/bdev.h>

/*
 * Validate the options of a terminal bdev (malloc, null) and fill the generic bdev options
 * from them (ops/ctx/module left to the caller). 0 or -EINVAL (logged, naming @p module).
 */
int bdev_terminal_opts(const struct ferry_bdev_malloc_opts *o, const char *module,
		       struct ferry_bdev_opts *out);

#endif /* FERRY_BDEV_INTERNAL_H */
