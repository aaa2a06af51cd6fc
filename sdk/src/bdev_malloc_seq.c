/*
 * The malloc bdev's sequence path: an I/O that carries an accel sequence is executed into the
 * bdev's storage by appending the final copy and finishing the sequence (see ferry/bdev.h).
 *
 * STUB until ferry/accel.h exists: I/Os with a sequence fail with -ENOTSUP.
 */
#include <ferry/bdev.h>
#include "internal.h"

int bdev_malloc_seq_rw(struct ferry_bdev *bdev, struct ferry_bdev_io *io, struct ferry_mem *storage);

int bdev_malloc_seq_rw(struct ferry_bdev *bdev, struct ferry_bdev_io *io, struct ferry_mem *storage)
{
	(void)storage;
	FERRY_ERR("bdev_malloc", "'%s': I/O sequences are not supported by this build",
		  ferry_bdev_get_name(bdev));
	return -ENOTSUP;
}
