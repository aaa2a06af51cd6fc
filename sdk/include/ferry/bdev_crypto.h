/**
 * @file ferry/bdev_crypto.h
 * @brief The crypto bdev: a virtual bdev that stores its data AES-XTS encrypted on its base.
 */
#ifndef FERRY_BDEV_CRYPTO_H
#define FERRY_BDEV_CRYPTO_H

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

struct ferry_crypto_key;

/** Options of ferry_bdev_crypto_create(). */
struct ferry_bdev_crypto_opts {
	size_t size;                  /**< sizeof(struct ferry_bdev_crypto_opts) */
	const char *name;             /**< name of the new bdev */
	const char *base_name;        /**< bdev to sit on, by name (used when @c base is NULL) */
	struct ferry_bdev *base;      /**< bdev to sit on, by pointer (or NULL); if both are
					   given they must designate the same bdev */
	struct ferry_crypto_key *key; /**< AES-XTS key (ferry/crypto.h); referenced, not copied:
					   it must outlive the bdev */
};

/**
 * @brief Create a bdev that stores its data AES-XTS encrypted on its base.
 *
 * Same block size and number of blocks as the base. The base must have no metadata (put the
 * crypto bdev above a dif bdev, not on 520/4104-byte blocks) and a block size that is a
 * multiple of the key's data unit. Data unit i of the blocks starting at LBA L uses the tweak
 * L * (block_size / data_unit) + i, so a block's ciphertext depends only on its LBA. Blocks
 * never written read back as the decryption of what the base holds (not zeroes); blocks
 * written with WRITE_ZEROES or UNMAP read back as zeroes.
 * @param[in] opts options.
 * @param[out] out the new bdev; destroy with ferry_bdev_destroy().
 * @retval 0 success.
 * @retval -EINVAL NULL or incomplete options (size, name, key, base), a base with metadata,
 *         a block size that is not a multiple of the data unit, or a base without read/write.
 * @retval -ENOENT no bdev named @c base_name.
 * @retval -EBUSY the base is already claimed.
 * @retval -EEXIST a bdev with this name exists.
 * @retval -ENOMEM out of memory.
 */
FERRY_API int ferry_bdev_crypto_create(const struct ferry_bdev_crypto_opts *opts,
				       struct ferry_bdev **out);

FERRY_END_DECLS

#endif /* FERRY_BDEV_CRYPTO_H */
