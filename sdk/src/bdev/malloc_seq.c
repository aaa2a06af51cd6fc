/*
 * The malloc bdev's sequence path (see the layering contract in ferry/bdev.h): an I/O that
 * carries an accel sequence is executed into the bdev's storage. A write appends
 * copy(io->mem → storage) and finishes the sequence; a read appends copy(storage → io->mem),
 * reverses the sequence so the upper layers' operations run after the copy, and finishes it.
 * Once something was appended the sequence is consumed: executed, or aborted on error.
 */
#include <ferry/accel.h>
#include <ferry/bdev.h>
#include <ferry/module/bdev.h>
#include "core_internal.h"

#define COMP "bdev_malloc"

int bdev_malloc_seq_rw(struct ferry_bdev *bdev, struct ferry_bdev_io *io, struct ferry_mem *storage);

static void seq_done(void *arg, int status)
{
	struct ferry_bdev_io *io = arg;
	io->seq = NULL;
	/* -EILSEQ: a verify step appended by an upper layer failed; that layer knows which
	 * field and block (its step callback) and sets the detail on its own I/O. */
	if (status == -EFAULT || status == -EIO) {
		io->error = FERRY_BDEV_ERR_TRANSFER;
		io->error_block = io->offset_blocks;
	}
	ferry_bdev_io_complete(io, status);
}

int bdev_malloc_seq_rw(struct ferry_bdev *bdev, struct ferry_bdev_io *io, struct ferry_mem *storage)
{
	int rc;
	if (io->type == FERRY_BDEV_IO_WRITE) {
		rc = ferry_seq_append_copy(io->seq, storage, &io->mem, NULL, NULL);
	} else {
		rc = ferry_seq_append_copy(io->seq, &io->mem, storage, NULL, NULL);
		if (rc == 0 && (rc = ferry_seq_reverse(io->seq)) != 0)
			goto consumed;
	}
	if (rc) {
		/* Nothing appended: the sequence is still the caller's. */
		FERRY_ERR(COMP, "'%s': cannot append the final copy to the I/O's sequence: %s",
			  ferry_bdev_get_name(bdev), ferry_strerror(rc));
		return rc;
	}
	rc = ferry_seq_finish(io->seq, seq_done, io);
	if (rc == 0)
		return 0;
consumed:
	FERRY_ERR(COMP, "'%s': cannot run the I/O's sequence: %s", ferry_bdev_get_name(bdev),
		  ferry_strerror(rc));
	ferry_seq_abort(io->seq);
	io->seq = NULL;
	ferry_bdev_io_complete(io, rc);
	return 0;
}
