/*
 * The null bdev: a terminal bdev that stores nothing. Writes and the no-data types succeed
 * and discard; reads succeed without touching the buffer; compares succeed. A sequence
 * attached to an I/O is aborted, not executed (there is no storage to run it into).
 */
#include <ferry/accel.h>
#include <ferry/bdev.h>
#include <ferry/bdev_malloc.h>
#include <ferry/bdev_null.h>
#include <ferry/module/bdev.h>
#include "bdev_internal.h"
#include "core_internal.h"

#define COMP "bdev_null"

static int null_io(struct ferry_bdev *bdev, struct ferry_bdev_io *io)
{
	if (io->seq) {
		ferry_seq_abort(io->seq);
		io->seq = NULL;
	}
	ferry_bdev_io_complete(io, 0);
	return 0;
}

static const struct ferry_bdev_ops null_ops = {
	.abi_version = FERRY_BDEV_OPS_ABI,
	.read = null_io,
	.write = null_io,
	.flush = null_io,
	.write_zeroes = null_io,
	.unmap = null_io,
	.compare = null_io,
};

FERRY_API int ferry_bdev_null_create(const struct ferry_bdev_null_opts *opts,
				     struct ferry_bdev **out)
{
	struct ferry_bdev_opts bo;
	if (!opts) {
		FERRY_ERR(COMP, "create: NULL opts");
		return -EINVAL;
	}
	if (OPTS_SIZE_CHECK(COMP, "create", opts, struct ferry_bdev_null_opts))
		return -EINVAL;
	const struct bdev_geometry g = {opts->name, opts->block_size, opts->num_blocks,
					opts->md_size, opts->dif_type};
	int rc = bdev_terminal_opts(&g, COMP, &bo);
	if (rc)
		return rc;
	bo.ops = &null_ops;
	return ferry_bdev_create(&bo, out);
}
