/**
 * @file ferry/bdev.h
 * @brief Stackable block devices: the bdev object, its module ops table, the I/O object, and
 * the built-in malloc, null and passthrough bdevs.
 *
 * A bdev is a block device with a name, a block size, a number of blocks and optional
 * per-block metadata. A *terminal* bdev (malloc, null, an NVMe-oF initiator) stores or
 * forwards data; a *virtual* bdev (passthrough, crypto, dif) sits on a base bdev that it
 * claims, transforms I/O and passes it down.
 *
 * ## The I/O object
 * The submitter owns the ::ferry_bdev_io, its ::ferry_mem descriptor, the iovec array and
 * the memory they describe; all must stay valid until the completion callback has run. The
 * data may be in any memory domain (e.g. the host's memory behind a PCI function): a bdev
 * never dereferences `io->mem` unless it is in the system domain, it moves data with
 * ferry_memdomain_pull()/push() or through the accel sequence.
 *
 * ## Completion contract
 * ferry_bdev_submit() returns 0 and the callback is then called exactly once (possibly before
 * ferry_bdev_submit() returns, from inside it); or it returns a negative errno, nothing was
 * done and the callback is never called. `io->status` holds 0 or a negative errno when the
 * callback runs; `io->error` names a data-integrity failure more precisely (miscompare, PI
 * guard/application/reference tag) and `io->error_block` the first failing block.
 *
 * ## Sequences and layering
 * `io->seq` (may be NULL) is an accel sequence (ferry/accel.h) the upper layers built:
 * - A virtual bdev that transforms data submits a *child* I/O to its base. To append an
 *   operation it takes a buffer in the accel virtual domain (ferry_accel_get_buf()), appends
 *   e.g. encrypt(src = parent's mem, dst = virtual buffer) for a write, points the child's
 *   `mem` at the virtual buffer, passes the same `seq` down and returns the virtual buffer
 *   when the child completes. For a read it appends decrypt(src = virtual buffer,
 *   dst = parent's mem) and points the child's `mem` at the virtual buffer the same way.
 * - The terminal bdev executes the sequence into its own storage: for a write it appends
 *   copy(src = io->mem, dst = its storage) and finishes the sequence; for a read it appends
 *   copy(src = its storage, dst = io->mem), reverses the sequence (so that the operations
 *   appended by upper layers run after the copy) and finishes it. Finishing consumes the
 *   sequence: when the callback runs, `io->seq` has been executed and freed (or aborted on
 *   error) and must not be used again.
 * - A bdev that cannot handle sequences fails an I/O carrying one with -ENOTSUP.
 * Without a sequence the terminal bdev moves the data itself with pull/push.
 *
 * ## Threading
 * The registry (create/destroy/lookup/claim) is serialised internally. I/O to one bdev is
 * submitted and completed on one thread at a time (the polling thread that also polls the
 * memory domains involved); completions of asynchronous domains run from that thread's
 * ferry_memdomain_poll().
 */
#ifndef FERRY_BDEV_H
#define FERRY_BDEV_H

#include <stddef.h>
#include <stdint.h>
#include <ferry/export.h>
#include <ferry/memdomain.h>

FERRY_BEGIN_DECLS

struct ferry_bdev;
struct ferry_seq;

/** Maximum length of a bdev name, including the terminating NUL. */
#define FERRY_BDEV_NAME_MAX 64

/** ABI version of ::ferry_bdev_ops; bump when the table changes. */
#define FERRY_BDEV_OPS_ABI 1

/** Kind of I/O. */
enum ferry_bdev_io_type {
	FERRY_BDEV_IO_READ = 0,         /**< blocks → mem */
	FERRY_BDEV_IO_WRITE = 1,        /**< mem → blocks */
	FERRY_BDEV_IO_FLUSH = 2,        /**< make completed writes durable; no data */
	FERRY_BDEV_IO_WRITE_ZEROES = 3, /**< zero blocks (data and metadata); no data */
	FERRY_BDEV_IO_UNMAP = 4,        /**< deallocate blocks; later reads return zeroes */
	FERRY_BDEV_IO_COMPARE = 5,      /**< compare mem with blocks; -EILSEQ on mismatch */
	FERRY_BDEV_IO_TYPE_COUNT        /**< number of types */
};

/** What failed, beyond the errno in ::ferry_bdev_io::status. */
enum ferry_bdev_io_error {
	FERRY_BDEV_ERR_NONE = 0,       /**< no detail (see status) */
	FERRY_BDEV_ERR_MISCOMPARE = 1, /**< compare found different data (status -EILSEQ) */
	FERRY_BDEV_ERR_GUARD = 2,      /**< PI guard check failed (status -EILSEQ) */
	FERRY_BDEV_ERR_APPTAG = 3,     /**< PI application tag check failed (status -EILSEQ) */
	FERRY_BDEV_ERR_REFTAG = 4,     /**< PI reference tag check failed (status -EILSEQ) */
	FERRY_BDEV_ERR_READ = 5,       /**< unrecovered read error (status -EIO) */
	FERRY_BDEV_ERR_WRITE = 6,      /**< write fault (status -EIO) */
	FERRY_BDEV_ERR_TRANSFER = 7,   /**< moving data to/from mem failed (status -EFAULT) */
};

/** I/O flags (::ferry_bdev_io::flags). */
#define FERRY_BDEV_IO_F_FUA (1u << 0) /**< write: durable when completed (force unit access) */

struct ferry_bdev_io;

/**
 * @brief Completion callback of an I/O.
 * @param[in] io the I/O; its status, error and error_block are set.
 * @param[in] cb_arg the I/O's cb_arg.
 */
typedef void (*ferry_bdev_io_cb)(struct ferry_bdev_io *io, void *cb_arg);

/**
 * @brief One block I/O. The submitter fills the inputs; the bdev layer fills the outputs.
 * Zero the structure before filling it.
 */
struct ferry_bdev_io {
	/* inputs */
	enum ferry_bdev_io_type type; /**< what to do */
	uint32_t flags;               /**< FERRY_BDEV_IO_F_* */
	uint64_t offset_blocks;       /**< first block */
	uint64_t num_blocks;          /**< blocks (>= 1; 0 allowed only for FLUSH) */
	/**
	 * Data (READ, WRITE, COMPARE): exactly num_blocks * block_size bytes, in any domain.
	 * Unused (iovcnt 0) for FLUSH, WRITE_ZEROES and UNMAP.
	 */
	struct ferry_mem mem;
	struct ferry_seq *seq;  /**< accel sequence or NULL; see the file's layering contract */
	ferry_bdev_io_cb cb;    /**< completion callback (required) */
	void *cb_arg;           /**< its argument */
	/* outputs */
	int status;                     /**< 0 or a negative errno */
	enum ferry_bdev_io_error error; /**< detail of a data-integrity failure */
	uint64_t error_block;           /**< first failing block (absolute), when error is set */
	/* owned by the bdev layer and the module handling the I/O */
	struct ferry_bdev *bdev;     /**< the bdev it was submitted to (set by ferry_bdev_submit) */
	void *module_ctx;            /**< free for the module the I/O was submitted to */
	struct iovec module_iov[2];  /**< scratch for that module (e.g. its own storage range) */
	struct ferry_mem module_mem; /**< scratch for that module (a descriptor of module_iov) */
};

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
};

/** Metadata layout flags (::ferry_bdev_opts::md_flags). */
#define FERRY_BDEV_MD_INTERLEAVE (1u << 0) /**< metadata inside each block (extended LBA):
					       block_size includes md_size */

/** Bdev flags (::ferry_bdev_opts::flags). */
#define FERRY_BDEV_F_VOLATILE_CACHE (1u << 0) /**< completed writes need a FLUSH to be durable */

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
	uint32_t flags;                   /**< FERRY_BDEV_F_* */
	const struct ferry_bdev_ops *ops; /**< required; must outlive the bdev */
	void *ctx;                        /**< module context (ferry_bdev_get_ctx()) */
};

/** I/O counters of a bdev (ferry_bdev_get_stats()). */
struct ferry_bdev_stats {
	size_t size;                            /**< in: sizeof(struct ferry_bdev_stats) */
	uint64_t ios[FERRY_BDEV_IO_TYPE_COUNT]; /**< completed I/Os per type */
	uint64_t bytes_read;                    /**< bytes of completed reads */
	uint64_t bytes_written;                 /**< bytes of completed writes */
	uint64_t errors;                        /**< I/Os completed with a non-zero status */
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
 * @brief Unregister and free a bdev (calls the module's destroy). No I/O may be in flight.
 * @retval 0 destroyed (NULL is a no-op).
 * @retval -EBUSY the bdev is claimed (by a virtual bdev or a namespace); nothing done.
 */
FERRY_API int ferry_bdev_destroy(struct ferry_bdev *bdev);

/** @brief Look a bdev up by name; NULL if there is none. */
FERRY_API struct ferry_bdev *ferry_bdev_lookup(const char *name);

/** @brief First registered bdev (creation order), NULL if none. */
FERRY_API struct ferry_bdev *ferry_bdev_first(void);

/** @brief Next bdev after @p prev, NULL at the end. */
FERRY_API struct ferry_bdev *ferry_bdev_next(struct ferry_bdev *prev);

/** @brief Name of @p bdev; valid while it exists. */
FERRY_API const char *ferry_bdev_get_name(const struct ferry_bdev *bdev);

/** @brief Module name of @p bdev ("" if none was given). */
FERRY_API const char *ferry_bdev_get_module(const struct ferry_bdev *bdev);

/** @brief Bytes per block (metadata included when interleaved). */
FERRY_API uint32_t ferry_bdev_get_block_size(const struct ferry_bdev *bdev);

/** @brief Data bytes per block (block size minus interleaved metadata). */
FERRY_API uint32_t ferry_bdev_get_data_block_size(const struct ferry_bdev *bdev);

/** @brief Number of blocks. */
FERRY_API uint64_t ferry_bdev_get_num_blocks(const struct ferry_bdev *bdev);

/** @brief Metadata bytes per block (0 = none). */
FERRY_API uint32_t ferry_bdev_get_md_size(const struct ferry_bdev *bdev);

/** @brief FERRY_BDEV_MD_* flags. */
FERRY_API uint32_t ferry_bdev_get_md_flags(const struct ferry_bdev *bdev);

/** @brief Protection information type (0 = none). */
FERRY_API uint32_t ferry_bdev_get_dif_type(const struct ferry_bdev *bdev);

/** @brief FERRY_BDEV_F_* flags. */
FERRY_API uint32_t ferry_bdev_get_flags(const struct ferry_bdev *bdev);

/** @brief Module context given at creation. */
FERRY_API void *ferry_bdev_get_ctx(const struct ferry_bdev *bdev);

/**
 * @brief Whether @p bdev handles @p type (its ops table has a handler).
 * @return 1 supported, 0 not supported (or bad arguments).
 */
FERRY_API int ferry_bdev_io_type_supported(const struct ferry_bdev *bdev,
					   enum ferry_bdev_io_type type);

/**
 * @brief Claim @p bdev exclusively for @p owner (a virtual bdev, a namespace). A claimed bdev
 * cannot be destroyed or claimed again; I/O may still be submitted by anyone.
 * @retval 0 claimed.
 * @retval -EINVAL NULL argument.
 * @retval -EBUSY already claimed (the log names the owner).
 */
FERRY_API int ferry_bdev_claim(struct ferry_bdev *bdev, const char *owner);

/** @brief Release a claim taken with ferry_bdev_claim(). */
FERRY_API void ferry_bdev_release(struct ferry_bdev *bdev);

/**
 * @brief Current owner of the claim, or NULL.
 * @return the owner string given to ferry_bdev_claim() (a copy kept by the bdev), valid and
 *         unchanged until that claim is released; a release and a new claim on another
 *         thread rewrite it, so read the text only where the claim cannot change meanwhile
 *         (e.g. on the owner's thread). NULL if the bdev is not claimed (or @p bdev is NULL).
 */
FERRY_API const char *ferry_bdev_get_claim(const struct ferry_bdev *bdev);

/**
 * @brief Submit @p io to @p bdev.
 * @retval 0 submitted; io->cb will be called exactly once.
 * @retval -EINVAL NULL arguments, no callback, a bad type, zero blocks, or a data length
 *         that is not num_blocks * block_size.
 * @retval -ERANGE the block range is beyond the end of the bdev.
 * @retval -ENOTSUP the bdev does not handle this type (or this I/O's sequence).
 * @retval -ENOMEM busy: retry later.
 */
FERRY_API int ferry_bdev_submit(struct ferry_bdev *bdev, struct ferry_bdev_io *io);

/**
 * @brief Complete an I/O (for bdev modules): record @p status and call the callback.
 * Set io->error / io->error_block before calling it for data-integrity failures.
 */
FERRY_API void ferry_bdev_io_complete(struct ferry_bdev_io *io, int status);

/**
 * @brief Read the I/O counters of @p bdev.
 * @param[in,out] stats stats->size must be set; the rest is filled.
 * @retval 0 success; -EINVAL NULL or a size smaller than this library's structure.
 */
FERRY_API int ferry_bdev_get_stats(const struct ferry_bdev *bdev, struct ferry_bdev_stats *stats);

/** Options of ferry_bdev_malloc_create() and ferry_bdev_null_create(). */
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
 * @retval 0 success; -EINVAL bad options; -EEXIST name taken; -ENOMEM out of memory.
 */
FERRY_API int ferry_bdev_malloc_create(const struct ferry_bdev_malloc_opts *opts,
				       struct ferry_bdev **out);

/**
 * @brief Create a bdev that stores nothing: writes, flushes, write-zeroes and unmaps succeed
 * and discard; reads succeed without touching the data buffer; compares succeed. An I/O's
 * sequence is aborted (not executed). Same options as the malloc bdev.
 * @retval 0 success; -EINVAL bad options; -EEXIST name taken; -ENOMEM out of memory.
 */
FERRY_API int ferry_bdev_null_create(const struct ferry_bdev_malloc_opts *opts,
				     struct ferry_bdev **out);

/** Options of ferry_bdev_passthru_create(). */
struct ferry_bdev_passthru_opts {
	size_t size;           /**< sizeof(struct ferry_bdev_passthru_opts) */
	const char *name;      /**< name of the new bdev */
	const char *base_name; /**< bdev to sit on; it is claimed until the passthru is destroyed */
};

/**
 * @brief Create a virtual bdev that passes every I/O unchanged (same mem, same sequence) to
 * its base and reports the base's result. Same geometry as the base.
 * @retval 0 success; -EINVAL bad options; -ENOENT no such base; -EBUSY base already claimed;
 *         -EEXIST name taken; -ENOMEM out of memory.
 */
FERRY_API int ferry_bdev_passthru_create(const struct ferry_bdev_passthru_opts *opts,
					 struct ferry_bdev **out);

/* ===== Crypto and DIF virtual bdevs (sdk/src/bdev_crypto.c, bdev_dif.c, bdev_virt.c) =====
 *
 * Both transform data between the I/O's memory and their base and share one contract
 * (docs/bdev.md):
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

/* ===== end of the crypto and DIF virtual bdevs ===== */

FERRY_END_DECLS

#endif /* FERRY_BDEV_H */
