/**
 * @file ferry/bdev_dif.h
 * @brief The DIF bdev: a virtual bdev that shows plain blocks above a base with T10 protection information.
 */
#ifndef FERRY_BDEV_DIF_H
#define FERRY_BDEV_DIF_H

#include <stddef.h>
#include <stdint.h>
#include <ferry/export.h>
#include <ferry/bdev.h>

FERRY_BEGIN_DECLS

/*
 * The crypto and DIF bdevs transform data between the I/O's memory and their base and share one contract
 * (docs/bdev.md, sdk/src/bdev/vbdev.c):
 * - READ/WRITE with a sequence: the bdev takes a virtual buffer on the sequence's channel
 *   (ferry_seq_get_chan()), appends its operation between the I/O's memory and that buffer,
 *   passes the sequence down with the buffer as the child's data and returns the buffer when
 *   the child completes. An I/O whose transformed size exceeds ferry_accel_get_buf_max()
 *   uses a local buffer instead. Once the bdev has appended, every failure (also the base
 *   refusing the child) is reported through the callback and the sequence is consumed;
 *   a negative return from ferry_bdev_submit() means nothing was appended.
 * - READ/WRITE without a sequence: the bdev runs its transform itself in software, on local
 *   bounce buffers, pulling/pushing the I/O's memory when it is in a remote domain.
 * - WRITE_ZEROES and UNMAP: written as transformed zero blocks (chunks of 128 KiB) so that
 *   later reads return zeroes; they may not carry a sequence (-ENOTSUP).
 * - FLUSH passes through. COMPARE is supported without a sequence (-ENOTSUP with one).
 * The base is claimed until ferry_bdev_destroy() of the virtual bdev.
 */

/** Options of ferry_bdev_dif_create(). */
struct ferry_bdev_dif_opts {
	size_t size;             /**< sizeof(struct ferry_bdev_dif_opts) */
	const char *name;        /**< name of the new bdev */
	const char *base_name;   /**< bdev to sit on, by name (used when @c base is NULL) */
	struct ferry_bdev *base; /**< bdev to sit on, by pointer (or NULL); if both are given
				      they must designate the same bdev */
	uint32_t dif_type;       /**< PI type 1, 2 or 3; 0 takes the base's (which must then
				      advertise one); must match the base's if it advertises one */
	uint32_t check_flags;    /**< FERRY_DIF_CHECK_* (ferry/dif.h) verified on reads */
	uint16_t app_tag;        /**< application tag written, and expected under the mask */
	uint16_t app_tag_mask;   /**< bits of the application tag checked */
};

/**
 * @brief Create a bdev that shows plain blocks above a base with protection information.
 *
 * The base must have 520- or 4104-byte blocks with 8 bytes of interleaved metadata (e.g. a
 * malloc bdev with md_size 8); the dif bdev has 512- or 4096-byte blocks without metadata and
 * the base's number of blocks. Writes insert the PI: guard = CRC16-T10DIF of the data,
 * application tag = @c app_tag, reference tag = the block's LBA (low 32 bits) for types 1
 * and 2, 0 for type 3. Reads verify the fields named by @c check_flags (with the T10 escapes
 * of ferry/dif.h) and strip the PI; a mismatch completes the read (or compare) with -EILSEQ,
 * ::ferry_bdev_io::error = FERRY_BDEV_ERR_GUARD, _APPTAG or _REFTAG and
 * ::ferry_bdev_io::error_block = the first failing block. Blocks the dif bdev never wrote
 * carry whatever PI the base has (a zero-filled base fails the reference tag check of types
 * 1 and 2 except at LBA 0): format them with WRITE_ZEROES first.
 * @param[in] opts options.
 * @param[out] out the new bdev; destroy with ferry_bdev_destroy().
 * @retval 0 success.
 * @retval -EINVAL NULL or incomplete options (size, name, base), a base of another format,
 *         a bad or mismatching PI type, unknown check flags, or a base without read/write.
 * @retval -ENOENT no bdev named @c base_name.
 * @retval -EBUSY the base is already claimed.
 * @retval -EEXIST a bdev with this name exists.
 * @retval -ENOMEM out of memory.
 */
FERRY_API int ferry_bdev_dif_create(const struct ferry_bdev_dif_opts *opts,
				    struct ferry_bdev **out);

FERRY_END_DECLS

#endif /* FERRY_BDEV_DIF_H */
