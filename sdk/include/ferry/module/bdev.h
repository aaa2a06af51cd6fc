/**
 * @file ferry/module/bdev.h
 * @brief The bdev module API: what a block-device module implements and calls. Module tier:
 * integrators use <ferry/bdev.h>; this header is for modules (built-in or a vendor's).
 *
 * A module creates bdevs with ferry_bdev_create() and one const ::ferry_bdev_ops table,
 * handles each submitted ::ferry_bdev_io in the handler for its type, and completes it with
 * ferry_bdev_io_complete() exactly once. Per-I/O state the module needs lives in the I/O's
 * private area (ferry_bdev_io_module()), so a module allocates nothing per I/O. The I/O's
 * memory, sequence and completion rules are those of <ferry/bdev.h>.
 */
#ifndef FERRY_MODULE_BDEV_H
#define FERRY_MODULE_BDEV_H

#include <stddef.h>
#include <stdint.h>
#include <ferry/export.h>
#include <sys/uio.h>
#include <ferry/bdev.h>
#include <ferry/memdomain.h>

FERRY_BEGIN_DECLS

/** ABI version of ::ferry_bdev_ops; bump when the table changes. */
#define FERRY_BDEV_OPS_ABI 2

/**
 * @brief A bdev module's ops table: one handler per I/O type, each optional (NULL means the
 * type is unsupported and ferry_bdev_submit() returns -ENOTSUP).
 *
 * A handler returns 0 and then calls ferry_bdev_io_complete() exactly once (it may do so
 * before returning), or returns a negative errno without completing (nothing was done;
 * -ENOMEM means "busy, retry later"). Handlers are called only with a range already checked
 * against the bdev's size and, for data types, a mem whose total length is
 * num_blocks * block_size.
 */
struct ferry_bdev_ops {
	uint32_t abi_version; /**< required: FERRY_BDEV_OPS_ABI */
	/** Optional: FERRY_BDEV_IO_READ. */
	int (*read)(struct ferry_bdev *bdev, struct ferry_bdev_io *io);
	/** Optional: FERRY_BDEV_IO_WRITE. */
	int (*write)(struct ferry_bdev *bdev, struct ferry_bdev_io *io);
	/** Optional: FERRY_BDEV_IO_FLUSH. */
	int (*flush)(struct ferry_bdev *bdev, struct ferry_bdev_io *io);
	/** Optional: FERRY_BDEV_IO_WRITE_ZEROES. */
	int (*write_zeroes)(struct ferry_bdev *bdev, struct ferry_bdev_io *io);
	/** Optional: FERRY_BDEV_IO_UNMAP. */
	int (*unmap)(struct ferry_bdev *bdev, struct ferry_bdev_io *io);
	/** Optional: FERRY_BDEV_IO_COMPARE. */
	int (*compare)(struct ferry_bdev *bdev, struct ferry_bdev_io *io);
	/** Optional: release the module context; called by ferry_bdev_destroy(). */
	void (*destroy)(struct ferry_bdev *bdev);
	/**
	 * Optional: make progress on the bdev's own asynchronous work (a network initiator's
	 * connections, a virtual bdev's base); completions of its I/Os may run from inside.
	 * Called by ferry_bdev_poll() on the thread that submits the bdev's I/O. Return the
	 * work done (>= 0) or a negative errno. A virtual bdev forwards to its base.
	 */
	int (*poll)(struct ferry_bdev *bdev, uint32_t max);
};

/** Options of ferry_bdev_create(), used by bdev modules. */
struct ferry_bdev_opts {
	size_t size;                      /**< sizeof(struct ferry_bdev_opts) */
	const char *name;                 /**< unique, 1..FERRY_BDEV_NAME_MAX-1 characters */
	const char *module;               /**< module name for introspection ("malloc") */
	uint32_t block_size;              /**< bytes per block, metadata included if interleaved */
	uint64_t num_blocks;              /**< >= 1 */
	uint32_t md_size;                 /**< metadata bytes per block (0 = none) */
	uint32_t md_flags;                /**< FERRY_BDEV_MD_* */
	uint32_t dif_type;                /**< protection information type 0 (none), 1, 2 or 3 */
	uint32_t flags;                   /**< FERRY_BDEV_F_*; a module sets only what its
					       blocks guarantee (FERRY_BDEV_F_UNWRITTEN_ZEROES:
					       see <ferry/bdev.h>) */
	const struct ferry_bdev_ops *ops; /**< required; must outlive the bdev */
	void *ctx;                        /**< module context (ferry_bdev_get_ctx()) */
};

/**
 * @brief Create and register a bdev (for bdev modules).
 * @param[in] opts options (copied; the ops table is referenced).
 * @param[out] out the new bdev.
 * @retval 0 success.
 * @retval -EINVAL bad options (size, name, zero geometry, md_size >= block_size with
 *         interleaved metadata, dif_type > 3, NULL ops).
 * @retval -EPROTO ops->abi_version differs from FERRY_BDEV_OPS_ABI.
 * @retval -EEXIST a bdev with this name exists.
 * @retval -ENOMEM out of memory.
 */
FERRY_API int ferry_bdev_create(const struct ferry_bdev_opts *opts, struct ferry_bdev **out);

/**
 * @brief Module context given at creation (ferry_bdev_opts::ctx).
 * @param[in] bdev the bdev.
 * @return the context; NULL for a NULL bdev.
 */
FERRY_API void *ferry_bdev_get_ctx(const struct ferry_bdev *bdev);

/**
 * @brief Complete an I/O (for bdev modules): record @p status and call the callback.
 * Set io->error / io->error_block before calling it for data-integrity failures.
 *
 * Updates the bdev's counters and clears the I/O's poll fields before io->cb runs, on the
 * calling thread; the callback may resubmit or free the I/O.
 * @param[in,out] io the I/O the module was handed (not NULL).
 * @param[in] status 0 or a negative errno, stored in io->status.
 */
FERRY_API void ferry_bdev_io_complete(struct ferry_bdev_io *io, int status);

/**
 * @brief The module-private state of an I/O, kept in ::ferry_bdev_io::module_state.
 * Free for the module the I/O was submitted to from the call of its handler until it
 * completes the I/O; the bdev layer never reads it.
 */
struct ferry_bdev_module_state {
	void *ctx;             /**< free for the module */
	struct iovec iov[2];   /**< scratch (e.g. the module's own storage range) */
	struct ferry_mem mem;  /**< scratch (a descriptor of iov) */
	uint64_t words[3];     /**< free for the module */
};

/**
 * @brief The module-private state of @p io.
 * @param[in] io the I/O.
 * @return its state, inside io->module_state (never NULL for a non-NULL @p io); NULL for a
 *         NULL @p io.
 */
FERRY_API struct ferry_bdev_module_state *ferry_bdev_io_module(struct ferry_bdev_io *io);

FERRY_END_DECLS

#endif /* FERRY_MODULE_BDEV_H */
