/**
 * @file ferry/bdev.h
 * @brief Stackable block devices, as an integrator uses them: the bdev object, the I/O
 * object, submission and completion.
 *
 * What a bdev module implements (the ops table, creating a bdev, completing an I/O, the
 * module-private state of an I/O) is in the module tier, <ferry/module/bdev.h>. The built-in
 * modules each have their own header: <ferry/bdev_malloc.h>, <ferry/bdev_null.h>,
 * <ferry/bdev_passthru.h>, <ferry/bdev_crypto.h>, <ferry/bdev_dif.h>.
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
 * ## Driving an I/O to completion
 * Whatever a stack waits on (an accel channel running the I/O's sequence, a remote memory
 * domain moving its data), one call drives it: after a successful ferry_bdev_submit(), call
 * ferry_bdev_io_poll(io) on the submitting thread until the callback has run:
 * @code
 * if (ferry_bdev_submit(bdev, &io) == 0)
 *         while (!done)
 *                 ferry_bdev_io_poll(&io);
 * @endcode
 * It polls the channel of `io->seq`, the domain of `io->mem` and the bdev stack itself
 * (ferry_bdev_poll(): a network initiator's connections), which also advances the other I/Os
 * waiting on them; a submitter driving many I/Os may instead poll those channels, domains and
 * bdevs itself (ferry_accel_chan_poll(), ferry_memdomain_poll(), ferry_bdev_poll()).
 *
 * ## Block numbers
 * Block numbers are absolute LBAs of the bdev the I/O was submitted to, never offsets inside
 * the I/O: `io->error_block` and the bdev layer's log messages ("block 20") count from the
 * bdev's block 0. (The crypto and dif bdevs keep their base's numbering, so the number is the
 * same at every layer of such a stack.)
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
 * The registry (create/destroy/lookup/claim) is serialised internally. An I/O is submitted
 * and completed on one thread (the thread that also polls the memory domains and the accel
 * channel involved); completions of asynchronous domains run from that thread's
 * ferry_memdomain_poll().
 *
 * I/O to one bdev may be submitted from several threads at once if each thread uses its own
 * accel channel (`io->seq` created on the submitting thread's channel, or no sequence) and
 * polls only its own I/Os' channels and domains: the built-in modules (malloc, null,
 * passthrough, crypto, dif) keep all per-I/O state in the I/O (`module_state`, the
 * sequence), their counters are atomic, and a crypto key serves concurrent operations. The
 * NVMe-oF target relies on this (one poll group thread per queue, <ferry/module/nvme_ctrlr.h>).
 * ferry_bdev_poll() may run on those threads concurrently. Creating, destroying, claiming a
 * bdev or its base must not race with I/O to it.
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
struct ferry_accel_chan;

/** Maximum length of a bdev name, including the terminating NUL. */
#define FERRY_BDEV_NAME_MAX 64

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

/** Metadata layout flags (::ferry_bdev_opts::md_flags). */
#define FERRY_BDEV_MD_INTERLEAVE (1u << 0) /**< metadata inside each block (extended LBA):
					       block_size includes md_size */

/** Bdev flags (::ferry_bdev_opts::flags). */
#define FERRY_BDEV_F_VOLATILE_CACHE (1u << 0) /**< completed writes need a FLUSH to be durable */
/**
 * A block never written, and a block after a successful UNMAP, reads as all zeroes (data and
 * metadata) and without error. Set by a module only where that holds (malloc: zeroed storage,
 * UNMAP zeroes); a virtual bdev that transforms data (crypto, dif) does not inherit it: the
 * transform of zero storage is not zeroes, or fails the PI check. The NVMe controller reports
 * DLFEAT "deallocated blocks read as zeroes" only for a namespace whose bdev has it.
 */
#define FERRY_BDEV_F_UNWRITTEN_ZEROES (1u << 1)

/** Size, in 64-bit words, of the module-private area of every ::ferry_bdev_io. */
#define FERRY_BDEV_IO_MODULE_WORDS 12

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
	/* owned by the bdev layer */
	struct ferry_bdev *bdev; /**< the bdev it was submitted to (set by ferry_bdev_submit) */
	/** What ferry_bdev_io_poll() polls until the I/O completes: the channel of `seq` and
	 *  the domain of `mem`, recorded by ferry_bdev_submit() (`seq` is consumed on the way),
	 *  cleared before the callback runs. */
	struct ferry_accel_chan *poll_chan;
	struct ferry_memdomain *poll_domain; /**< see poll_chan */
	struct ferry_bdev *poll_bdev;        /**< see poll_chan: the bdev, for ferry_bdev_poll() */
	/** Private to the bdev layer and the module handling the I/O (its layout is in
	 *  <ferry/module/bdev.h>); the submitter neither reads nor writes it. */
	uint64_t module_state[FERRY_BDEV_IO_MODULE_WORDS];
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
 * @brief Unregister and free a bdev (calls the module's destroy). No I/O may be in flight.
 * @param[in] bdev the bdev; invalid after a return of 0.
 * @retval 0 destroyed (NULL is a no-op).
 * @retval -EBUSY the bdev is claimed (by a virtual bdev or a namespace); nothing done.
 */
FERRY_API int ferry_bdev_destroy(struct ferry_bdev *bdev);

/**
 * @brief Look a bdev up by name. Any thread may call it.
 * @param[in] name the bdev's name (NULL finds nothing).
 * @return the bdev, or NULL if there is none.
 */
FERRY_API struct ferry_bdev *ferry_bdev_lookup(const char *name);

/**
 * @brief First registered bdev, in creation order.
 * @return the bdev, or NULL if none.
 */
FERRY_API struct ferry_bdev *ferry_bdev_first(void);

/**
 * @brief Next bdev after @p prev, in creation order.
 * @param[in] prev a registered bdev (NULL gives NULL); it must not be destroyed meanwhile.
 * @return the next bdev, or NULL at the end.
 */
FERRY_API struct ferry_bdev *ferry_bdev_next(struct ferry_bdev *prev);

/**
 * @brief Name of a bdev.
 * @param[in] bdev the bdev.
 * @return the name, valid while the bdev exists; "" for a NULL bdev.
 */
FERRY_API const char *ferry_bdev_get_name(const struct ferry_bdev *bdev);

/**
 * @brief Module name of a bdev.
 * @param[in] bdev the bdev.
 * @return the module name ("" if none was given); "" for a NULL bdev.
 */
FERRY_API const char *ferry_bdev_get_module(const struct ferry_bdev *bdev);

/**
 * @brief Bytes per block (metadata included when interleaved).
 * @param[in] bdev the bdev.
 * @return the block size; 0 for a NULL bdev.
 */
FERRY_API uint32_t ferry_bdev_get_block_size(const struct ferry_bdev *bdev);

/**
 * @brief Data bytes per block (block size minus interleaved metadata).
 * @param[in] bdev the bdev.
 * @return the data block size; 0 for a NULL bdev.
 */
FERRY_API uint32_t ferry_bdev_get_data_block_size(const struct ferry_bdev *bdev);

/**
 * @brief Number of blocks.
 * @param[in] bdev the bdev.
 * @return the number of blocks; 0 for a NULL bdev.
 */
FERRY_API uint64_t ferry_bdev_get_num_blocks(const struct ferry_bdev *bdev);

/**
 * @brief Metadata bytes per block.
 * @param[in] bdev the bdev.
 * @return the metadata size (0 = none); 0 for a NULL bdev.
 */
FERRY_API uint32_t ferry_bdev_get_md_size(const struct ferry_bdev *bdev);

/**
 * @brief Metadata flags of a bdev.
 * @param[in] bdev the bdev.
 * @return FERRY_BDEV_MD_* flags; 0 for a NULL bdev.
 */
FERRY_API uint32_t ferry_bdev_get_md_flags(const struct ferry_bdev *bdev);

/**
 * @brief Protection information type of a bdev.
 * @param[in] bdev the bdev.
 * @return the PI type (1..3; 0 = none); 0 for a NULL bdev.
 */
FERRY_API uint32_t ferry_bdev_get_dif_type(const struct ferry_bdev *bdev);

/**
 * @brief Flags of a bdev.
 * @param[in] bdev the bdev.
 * @return FERRY_BDEV_F_* flags; 0 for a NULL bdev.
 */
FERRY_API uint32_t ferry_bdev_get_flags(const struct ferry_bdev *bdev);

/**
 * @brief Whether @p bdev handles @p type (its ops table has a handler).
 * @param[in] bdev the bdev.
 * @param[in] type the I/O type.
 * @return 1 supported, 0 not supported (or bad arguments).
 */
FERRY_API int ferry_bdev_io_type_supported(const struct ferry_bdev *bdev,
					   enum ferry_bdev_io_type type);

/**
 * @brief Claim @p bdev exclusively for @p owner (a virtual bdev, a namespace). A claimed bdev
 * cannot be destroyed or claimed again; I/O may still be submitted by anyone.
 * @param[in] bdev the bdev.
 * @param[in] owner who claims it (copied, truncated to the bdev's claim buffer).
 * @retval 0 claimed.
 * @retval -EINVAL NULL argument.
 * @retval -EBUSY already claimed (the log names the owner).
 */
FERRY_API int ferry_bdev_claim(struct ferry_bdev *bdev, const char *owner);

/**
 * @brief Release a claim taken with ferry_bdev_claim(). Releasing an unclaimed bdev, or
 * NULL, changes nothing.
 * @param[in] bdev the bdev.
 */
FERRY_API void ferry_bdev_release(struct ferry_bdev *bdev);

/**
 * @brief Current owner of the claim, or NULL.
 * @param[in] bdev the bdev.
 * @return the owner string given to ferry_bdev_claim() (a copy kept by the bdev), valid and
 *         unchanged until that claim is released; a release and a new claim on another
 *         thread rewrite it, so read the text only where the claim cannot change meanwhile
 *         (e.g. on the owner's thread). NULL if the bdev is not claimed (or @p bdev is NULL).
 */
FERRY_API const char *ferry_bdev_get_claim(const struct ferry_bdev *bdev);

/**
 * @brief Submit @p io to @p bdev.
 *
 * The I/O, its iovec array and its data stay owned by the caller and valid until io->cb ran.
 * @param[in] bdev the bdev.
 * @param[in,out] io the I/O (inputs set, the rest zeroed); its outputs are set at completion.
 * @retval 0 submitted; io->cb will be called exactly once.
 * @retval -EINVAL NULL arguments, no callback, a bad type, zero blocks, or a data length
 *         that is not num_blocks * block_size.
 * @retval -ERANGE the block range is beyond the end of the bdev.
 * @retval -ENOTSUP the bdev does not handle this type (or this I/O's sequence).
 * @retval -ENOMEM busy: retry later.
 */
FERRY_API int ferry_bdev_submit(struct ferry_bdev *bdev, struct ferry_bdev_io *io);

/**
 * @brief Make progress on a submitted I/O: poll what it waits on (the accel channel of its
 * sequence, the memory domain of its data), on the calling thread. Call it, on the submitting
 * thread, between a successful ferry_bdev_submit() and the completion callback, as often as
 * needed; the callback may run from inside it. Once the callback has run the I/O waits on
 * nothing and the call returns 0 without polling anything.
 *
 * Do not destroy that channel or domain from the callback: the call may still poll the
 * other after the callback returned.
 * @param[in] io a submitted I/O (zeroed or completed: nothing to poll).
 * @return the number of completions run (channel sequences and domain operations, >= 0;
 *         also those of other I/Os on the same channel or domain), or a negative errno.
 * @retval -EINVAL @p io is NULL.
 */
FERRY_API int ferry_bdev_io_poll(struct ferry_bdev_io *io);

/**
 * @brief Make progress on the asynchronous work of @p bdev and the bdevs below it (the
 * connections of an NVMe-oF initiator bdev, for one); completion callbacks of its I/Os may
 * run from inside. Call it on the thread that submits the bdev's I/O. Bdevs that complete
 * synchronously or through their memory domains and channels have nothing to poll (0).
 * @param[in] bdev the bdev.
 * @param[in] max most work items to handle (passed to the module's poll).
 * @return work done (>= 0) or a negative errno (-EINVAL: NULL).
 */
FERRY_API int ferry_bdev_poll(struct ferry_bdev *bdev, uint32_t max);

/**
 * @brief Read the I/O counters of @p bdev.
 * @param[in] bdev the bdev.
 * @param[in,out] stats stats->size must be set; the rest is filled.
 * @retval 0 success; -EINVAL NULL, or stats->size is not sizeof(struct ferry_bdev_stats).
 */
FERRY_API int ferry_bdev_get_stats(const struct ferry_bdev *bdev, struct ferry_bdev_stats *stats);

FERRY_END_DECLS

#endif /* FERRY_BDEV_H */
