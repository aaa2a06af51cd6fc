/**
 * @file ferry/accel.h
 * @brief Accel sequences: chains of data operations described once, optimised, then run on a
 *        device's engine or on the software engine.
 *
 * A sequence (struct ferry_seq) is an ordered list of operations (copy, fill, compare, crc32c,
 * copy+crc32c, AES-XTS encrypt/decrypt, DIF generate/verify/strip/insert, DIX
 * generate/verify). Each operand is a ::ferry_mem in any domain: the system domain, a PCI
 * function's host memory, or the accel virtual domain. Nothing runs while operations are
 * appended. ferry_seq_finish() runs four passes, in order:
 *  1. copy elision: drop copies whose neighbour can read from / write to the copy's other
 *     side, with rules that never change what the caller can observe (docs/accel.md).
 *     Aliasing: elision relies only on what a domain vouches for. Two real ranges are known
 *     to be distinct only inside one domain created with FERRY_MEMDOMAIN_F_NO_ALIAS
 *     (ferry/module/memdomain.h; the system domain and the accel domain are), by their
 *     addresses; ranges of any other domain (an IOMMU may map one host page at two IOVAs)
 *     or of two different domains are assumed to possibly be the same bytes, which only
 *     keeps copies. A virtual buffer never aliases anything but itself;
 *  2. fusion: match op chains the device's engine declares it executes as one operation
 *     (ferry/hal/accel.h), generically;
 *  3. materialisation: accel virtual buffers still needed become pool buffers; bounce buffers
 *     and pull/push steps are inserted where the chosen engine cannot reach a domain;
 *  4. execution on the device's engine where it supports the op (or chain), else on the
 *     software engine (counted as a fallback).
 *
 * Accel virtual domain: ferry_accel_get_buf() hands out addresses in the domain "accel"
 * (type FERRY_MEMDOMAIN_ACCEL) that have no memory behind them. Use them as the intermediate
 * buffers between operations. A real buffer from a fixed-size pool is bound to one only if an
 * operation still needs it after the passes, and only while its sequence executes: the bytes
 * of a virtual buffer are never readable by the caller, so a sequence must end by writing
 * into real memory (system or host domain) what the caller wants to keep: ferry_seq_finish()
 * refuses a sequence whose last step writes a virtual buffer. A virtual buffer belongs to one
 * sequence at a time: from the first append naming it until that sequence is freed
 * (completed or aborted); appending it to another sequence meanwhile fails with -EBUSY.
 *
 * Lifetimes: the ::ferry_mem descriptors passed to append_* are copied, but their iovec
 * arrays and the memory they describe are referenced and must stay valid, unchanged, until
 * the sequence's completion callback has run (or ferry_seq_abort() returned). The same holds
 * for crypto keys, result pointers (crc, DIF error) and virtual buffers used by a sequence.
 * A ferry_dif_ctx is copied at append.
 *
 * Callbacks: ferry_seq_finish() returning 0 means its callback will be called exactly once;
 * on a negative return it is never called. Every callback (per-step and per-sequence) runs
 * from ferry_accel_chan_poll() on the channel's thread, never inside append/finish. Per-step
 * callbacks run in the sequence's order: 0 for a step that completed (an elided copy
 * completes when its position is reached), the error for the failing step, -ECANCELED for the
 * steps after it and for every step of an aborted sequence. The sequence is freed after its
 * completion callback returns; the callback may create and finish new sequences. When a
 * sequence fails, the failure is logged on the channel's thread, and during its completion
 * callback ferry_last_error() names the failing step, its operation, the engine (a device's,
 * the software engine, or a domain's pull/push), the status and the engine's own reason (the
 * IOMMU fault, an injected error...), even when the engine detected it on its own thread.
 *
 * Threading: ferry_accel_init()/fini() are called once per process by one thread with no
 * channel open. A channel, its sequences and its virtual buffers belong to the thread that
 * created the channel: every call naming them is made on that thread. Different channels
 * are independent. Pool buffers are shared by all channels (each keeps a small cache).
 */
#ifndef FERRY_ACCEL_H
#define FERRY_ACCEL_H

#include <stddef.h>
#include <stdint.h>
#include <ferry/export.h>
#include <ferry/memdomain.h>
#include <ferry/device.h>
#include <ferry/crypto.h>
#include <ferry/dif.h>

FERRY_BEGIN_DECLS

/** Accel operations. The values are stable (they index counters and engine bitmasks). */
enum ferry_accel_opcode {
	FERRY_ACCEL_OP_COPY = 0,          /**< dst = src */
	FERRY_ACCEL_OP_FILL = 1,          /**< dst = pattern byte repeated */
	FERRY_ACCEL_OP_COMPARE = 2,       /**< src == src2, else -EILSEQ */
	FERRY_ACCEL_OP_CRC32C = 3,        /**< *crc_out = CRC32C(seed, src) */
	FERRY_ACCEL_OP_COPY_CRC32C = 4,   /**< dst = src and *crc_out = CRC32C(seed, src) */
	FERRY_ACCEL_OP_ENCRYPT = 5,       /**< dst = AES-XTS encrypt(src) */
	FERRY_ACCEL_OP_DECRYPT = 6,       /**< dst = AES-XTS decrypt(src) */
	FERRY_ACCEL_OP_DIF_GENERATE = 7,  /**< write the PI of extended blocks in place */
	FERRY_ACCEL_OP_DIF_VERIFY = 8,    /**< check the PI of extended blocks, else -EILSEQ */
	FERRY_ACCEL_OP_DIF_STRIP = 9,     /**< verify, then copy the data without the PI */
	FERRY_ACCEL_OP_DIF_INSERT = 10,   /**< copy plain blocks into extended ones with PI */
	FERRY_ACCEL_OP_DIX_GENERATE = 11, /**< write the PI of plain blocks to a metadata buffer */
	FERRY_ACCEL_OP_DIX_VERIFY = 12,   /**< check plain blocks against a metadata buffer */
	FERRY_ACCEL_OP_COUNT = 13         /**< number of operations */
};

/** Pass bits for ferry_accel_chan_opts::disabled_passes (materialisation always runs). */
#define FERRY_ACCEL_PASS_ELIDE (1u << 0) /**< copy elision */
#define FERRY_ACCEL_PASS_FUSE (1u << 1)  /**< fusion of declared chains */

/** Format of ferry_seq_dump() and of the plan hook. */
enum ferry_seq_dump_fmt {
	FERRY_SEQ_DUMP_TEXT = 0, /**< human-readable, one line per step */
	FERRY_SEQ_DUMP_JSON = 1, /**< one JSON object */
};

/** Options of ferry_accel_init(); get the defaults with ferry_accel_get_default_opts(). */
struct ferry_accel_opts {
	size_t size;              /**< sizeof(struct ferry_accel_opts) */
	uint32_t small_buf_size;  /**< bytes of a small pool buffer (default 8192) */
	uint32_t small_buf_count; /**< small buffers in the pool (default 256; 0 allowed) */
	uint32_t large_buf_size;  /**< bytes of a large pool buffer, also the largest virtual
				       buffer (default 135168: 128 KiB of 512+8 or 4096+8 blocks) */
	uint32_t large_buf_count; /**< large buffers in the pool (default 64; 0 allowed) */
	uint32_t cache_size;      /**< buffers of each size a channel (its thread) keeps cached
				       (default 4; 0 disables the cache) */
};

/** Options of ferry_accel_chan_create(); zero fields take the default. */
struct ferry_accel_chan_opts {
	size_t size;              /**< sizeof(struct ferry_accel_chan_opts) */
	uint32_t max_seqs;        /**< sequences alive at once (default 256) */
	uint32_t max_tasks;       /**< operations alive at once, inserted pulls/pushes included
				       (default 1024) */
	uint32_t max_vbufs;       /**< virtual buffers alive at once (default 1024) */
	uint32_t ring_size;       /**< ring of the DMA channel (0: the engine's default) */
	uint32_t disabled_passes; /**< FERRY_ACCEL_PASS_* bits to switch off (default none) */
};

/** Counters (ferry_accel_get_stats()). "hw" is a device's engine, "sw" the software engine. */
struct ferry_accel_stats {
	size_t size;                           /**< in: sizeof(struct ferry_accel_stats) */
	uint64_t ops_hw[FERRY_ACCEL_OP_COUNT]; /**< operations executed by a device's engine */
	uint64_t ops_sw[FERRY_ACCEL_OP_COUNT]; /**< operations executed by the software engine */
	uint64_t bytes_hw;                     /**< source bytes processed by a device's engine */
	uint64_t bytes_sw;                     /**< source bytes processed by the software engine */
	uint64_t seqs_finished;                /**< ferry_seq_finish() calls that returned 0 */
	uint64_t seqs_completed;               /**< completion callbacks run (any status) */
	uint64_t seqs_aborted;                 /**< ferry_seq_abort() calls */
	uint64_t copies_elided;                /**< copies removed by the elision pass */
	uint64_t fusions;                      /**< fused operations (declared chains) executed */
	uint64_t fused_ops;                    /**< operations folded into those */
	uint64_t bufs_taken;                   /**< pool buffers taken (bound or bounce) */
	uint64_t bufs_in_use;                  /**< pool buffers held by sequences now */
	uint64_t bufs_peak;                    /**< highest bufs_in_use seen */
	uint64_t bounces;                      /**< pulls + pushes inserted by materialisation */
	uint64_t sw_fallbacks;                 /**< ops a device's engine could not run, run in
						     software instead */
	uint64_t errors;                       /**< sequences completed with a non-zero status */
	uint64_t nomem;                        /**< ferry_seq_finish() calls returning -ENOMEM */
	uint64_t nomem_retries;                /**< finish calls on a sequence that had
						     returned -ENOMEM before */
	/* Bytes written, counted when the operation (or fused operation) completed
	 * successfully. Added after the fields above: a caller whose out->size ends at
	 * nomem_retries still gets those. */
	uint64_t bytes_copied;    /**< bytes written by copy and copy+crc32c operations that
				       executed as operations of their own, on any engine (elided
				       copies and copies folded into a fused operation excluded;
				       see bytes_bounced for the inserted pulls/pushes) */
	uint64_t bytes_bounced;   /**< bytes moved by the pulls and pushes materialisation
				       inserted (see bounces) */
	uint64_t bytes_out_hw;    /**< bytes written to their destinations by operations a
				       device's engine executed; a fused operation counts only its
				       final output, once (its links stay inside the engine); DIF
				       generate counts the PI it writes, DIX generate the metadata;
				       compare, crc32c and verify operations write nothing */
	uint64_t bytes_out_sw;    /**< the same for the software engine */
	uint64_t bytes_out_fused; /**< the part of bytes_out_hw written by fused operations */
};

struct ferry_accel_chan;
struct ferry_seq;

/**
 * @brief Per-step callback.
 * @param[in] cb_arg the argument given at append.
 * @param[in] status 0, the step's error, or -ECANCELED (see the file preamble).
 */
typedef void (*ferry_seq_step_cb)(void *cb_arg, int status);

/**
 * @brief Completion callback of a sequence.
 * @param[in] cb_arg the argument given to ferry_seq_finish().
 * @param[in] status 0, or the first failing step's negative errno: -EILSEQ (compare or DIF
 *            mismatch), -EFAULT (an address not mapped / not permitted, e.g. an IOMMU page
 *            fault), -EIO (bus error or poisoned data), -ECANCELED (the channel was destroyed).
 */
typedef void (*ferry_seq_cb)(void *cb_arg, int status);

/**
 * @brief Plan hook: called inside ferry_seq_finish() with the plan after each stage.
 * @param[in] cb_arg the argument given to ferry_accel_chan_set_plan_hook().
 * @param[in] seq the sequence (only ferry_seq_dump() may be called on it here).
 * @param[in] stage "input" (before the passes), "elide", "fuse", "materialise" (after each
 *            pass; a disabled pass is reported too, its plan unchanged), and "complete"
 *            (from ferry_accel_chan_poll(), before the completion callback).
 * @param[in] dump the plan in the hook's format, NUL-terminated, valid during the call.
 */
typedef void (*ferry_accel_plan_cb)(void *cb_arg, const struct ferry_seq *seq, const char *stage,
				    const char *dump);

/**
 * @brief Fill @p opts with the defaults of ferry_accel_init().
 * @param[out] opts the options; @p opts->size must be set by the caller.
 * @retval 0 success; -EINVAL NULL, or @p opts->size is not sizeof(struct ferry_accel_opts).
 */
FERRY_API int ferry_accel_get_default_opts(struct ferry_accel_opts *opts);

/**
 * @brief Initialise the accel module: create the accel virtual domain ("accel") and allocate
 * the buffer pool. Optional: the first ferry_accel_chan_create() initialises with the defaults.
 * @param[in] opts options, or NULL for the defaults.
 * @retval 0 success.
 * @retval -EINVAL bad options (sizes 0, small larger than large, large above 16 MiB, counts
 *         above 65536).
 * @retval -EALREADY already initialised (call ferry_accel_fini() first).
 * @retval -EEXIST another domain is named "accel".
 * @retval -ENOMEM the pool could not be allocated.
 */
FERRY_API int ferry_accel_init(const struct ferry_accel_opts *opts);

/**
 * @brief Free the pool and destroy the accel domain. Every channel must have been destroyed
 * (otherwise nothing is done and an error is logged). The global counters restart from zero.
 */
FERRY_API void ferry_accel_fini(void);

/**
 * @brief The accel virtual domain. Any thread may call it.
 * @return the domain "accel", or NULL before initialisation.
 */
FERRY_API struct ferry_memdomain *ferry_accel_get_domain(void);

/**
 * @brief Create a channel on the calling thread.
 * @param[in] dev a device whose DMA engine runs accel operations (the channel then owns one
 *            DMA channel of it), or NULL for the software engine only. A device whose engine
 *            has no accel operations gives a software-only channel.
 * @param[in] opts options, or NULL for the defaults.
 * @param[out] out the channel.
 * @retval 0 success.
 * @retval -EINVAL NULL @p out, bad @p opts->size, unknown pass bits.
 * @retval -ENOMEM out of memory (or the lazy ferry_accel_init() failed).
 * @retval other negative errno from the device's engine (-EBUSY too many DMA channels...).
 */
FERRY_API int ferry_accel_chan_create(struct ferry_device *dev,
				      const struct ferry_accel_chan_opts *opts,
				      struct ferry_accel_chan **out);

/**
 * @brief Destroy a channel. Sequences created but not finished are aborted; sequences in
 * flight are first driven to completion (their callbacks run inside this call). Virtual
 * buffers still held are released. Must not be called from a callback of this channel.
 * NULL is a no-op.
 *
 * Bounded: if the engine and the domains make no progress at all for 5 s, the sequences
 * still in flight get their step and completion callbacks with -ECANCELED, an error is
 * logged, and the memory that stuck work may still write (the channel, its tasks and the
 * pool buffers those sequences hold) is leaked rather than freed.
 * @param[in] chan the channel; invalid after the call.
 */
FERRY_API void ferry_accel_chan_destroy(struct ferry_accel_chan *chan);

/**
 * @brief Make progress: reap the engine's completions, run software steps, pulls and pushes,
 * and deliver up to @p max sequence completions, all on the calling thread.
 *
 * Called from one of the channel's callbacks it returns 0 at once (the outer poll goes on).
 * @param[in] chan the channel.
 * @param[in] max most sequence completion callbacks to run.
 * @return number of sequence completion callbacks run (>= 0), or -EINVAL for a NULL channel.
 */
FERRY_API int ferry_accel_chan_poll(struct ferry_accel_chan *chan, uint32_t max);

/**
 * @brief Install (or, with a NULL @p cb, remove) the plan hook of @p chan.
 * @param[in] chan the channel.
 * @param[in] fmt format of the plans given to @p cb.
 * @param[in] cb the hook, or NULL to remove it.
 * @param[in] cb_arg passed to @p cb.
 * @retval 0 success; -EINVAL NULL channel or unknown format.
 */
FERRY_API int ferry_accel_chan_set_plan_hook(struct ferry_accel_chan *chan,
					     enum ferry_seq_dump_fmt fmt, ferry_accel_plan_cb cb,
					     void *cb_arg);

/**
 * @brief Get a virtual buffer: @p len bytes of address space in the accel domain, with no
 * memory behind it until a sequence needs it.
 * @param[in] chan the channel whose sequences will use it.
 * @param[in] len bytes, 1..large_buf_size of the pool.
 * @param[out] buf the address (use it in iovecs with @p domain and @p domain_ctx; any
 *             sub-range [buf, buf + len) may be used).
 * @param[out] domain the accel domain.
 * @param[out] domain_ctx the buffer's context (goes into ferry_mem::domain_ctx).
 * @retval 0 success.
 * @retval -EINVAL NULL argument or @p len out of range.
 * @retval -ENOMEM the channel's max_vbufs are all in use.
 */
FERRY_API int ferry_accel_get_buf(struct ferry_accel_chan *chan, size_t len, void **buf,
				  struct ferry_memdomain **domain, void **domain_ctx);

/**
 * @brief Return a virtual buffer. It must not be used by a sequence still alive (such a call,
 * like invalid arguments, is logged and ignored).
 * @param[in] chan the channel that gave the buffer.
 * @param[in] buf an address inside the buffer (as given by ferry_accel_get_buf()).
 * @param[in] domain the accel domain.
 * @param[in] domain_ctx the buffer's context.
 */
FERRY_API void ferry_accel_put_buf(struct ferry_accel_chan *chan, void *buf,
				   struct ferry_memdomain *domain, void *domain_ctx);

/**
 * @brief The largest length ferry_accel_get_buf() accepts. Any thread may call it.
 * @return the pool's large buffer size (ferry_accel_opts::large_buf_size), or 0 before
 *         initialisation.
 */
FERRY_API size_t ferry_accel_get_buf_max(void);

/**
 * @brief Create an empty sequence on @p chan.
 *
 * The sequence is freed after its completion callback, or by ferry_seq_abort().
 * @param[in] chan the channel.
 * @param[out] out the sequence.
 * @retval 0 success; -EINVAL NULL argument; -ENOMEM the channel's max_seqs are alive.
 */
FERRY_API int ferry_seq_create(struct ferry_accel_chan *chan, struct ferry_seq **out);

/*
 * Append functions. Common contract: the step is added at the end of @p seq; nothing runs.
 * @p cb (may be NULL) is the per-step callback. Return 0, -EINVAL (NULL sequence or operand,
 * operand without segments, lengths that do not match, an accel-domain operand that is not a
 * live virtual buffer of this channel or leaves its range, a sequence already finished; the
 * log says which; also source and destination that overlap without being the same bytes,
 * and, for DIF strip/insert and DIX, any overlap), -EBUSY (an operand is a virtual buffer
 * that another sequence, still alive, uses: see the file preamble; nothing was appended), or
 * -ENOMEM (the channel's max_tasks are in use). Operand domains: anything a device's engine or the domain's pull/push can reach.
 */

/**
 * @brief Append a copy of @p src into @p dst (equal total lengths).
 * @param[in] seq the sequence, not yet finished.
 * @param[in] dst destination.
 * @param[in] src source.
 * @param[in] cb per-step callback (may be NULL).
 * @param[in] cb_arg passed to @p cb.
 * @return see the append contract above.
 */
FERRY_API int ferry_seq_append_copy(struct ferry_seq *seq, const struct ferry_mem *dst,
				    const struct ferry_mem *src, ferry_seq_step_cb cb,
				    void *cb_arg);

/**
 * @brief Append: fill @p dst with the byte @p pattern.
 * @param[in] seq the sequence, not yet finished.
 * @param[in] dst destination.
 * @param[in] pattern the byte.
 * @param[in] cb per-step callback (may be NULL).
 * @param[in] cb_arg passed to @p cb.
 * @return see the append contract.
 */
FERRY_API int ferry_seq_append_fill(struct ferry_seq *seq, const struct ferry_mem *dst,
				    uint8_t pattern, ferry_seq_step_cb cb, void *cb_arg);

/**
 * @brief Append: compare @p src1 and @p src2 (equal lengths); the step fails with -EILSEQ if
 * they differ.
 * @param[in] seq the sequence, not yet finished.
 * @param[in] src1 first source.
 * @param[in] src2 second source.
 * @param[in] cb per-step callback (may be NULL).
 * @param[in] cb_arg passed to @p cb.
 * @return see the append contract.
 */
FERRY_API int ferry_seq_append_compare(struct ferry_seq *seq, const struct ferry_mem *src1,
				       const struct ferry_mem *src2, ferry_seq_step_cb cb,
				       void *cb_arg);

/**
 * @brief Append: *@p crc_out = CRC32C of @p src continuing from @p seed (ferry/crc.h
 * convention: 0 to start, a previous result to chain over more data).
 * @param[in] seq the sequence, not yet finished.
 * @param[in] src source.
 * @param[in] seed 0, or a previous result.
 * @param[out] crc_out written when the step completes (required).
 * @param[in] cb per-step callback (may be NULL).
 * @param[in] cb_arg passed to @p cb.
 * @return see the append contract.
 */
FERRY_API int ferry_seq_append_crc32c(struct ferry_seq *seq, const struct ferry_mem *src,
				      uint32_t seed, uint32_t *crc_out, ferry_seq_step_cb cb,
				      void *cb_arg);

/**
 * @brief Append: copy @p src into @p dst and *@p crc_out = CRC32C of @p src from @p seed.
 * @param[in] seq the sequence, not yet finished.
 * @param[in] dst destination.
 * @param[in] src source.
 * @param[in] seed 0, or a previous result.
 * @param[out] crc_out written when the step completes (required).
 * @param[in] cb per-step callback (may be NULL).
 * @param[in] cb_arg passed to @p cb.
 * @return see the append contract.
 */
FERRY_API int ferry_seq_append_copy_crc32c(struct ferry_seq *seq, const struct ferry_mem *dst,
					   const struct ferry_mem *src, uint32_t seed,
					   uint32_t *crc_out, ferry_seq_step_cb cb, void *cb_arg);

/**
 * @brief Append: AES-XTS encrypt @p src into @p dst with @p key; data unit i uses tweak
 * @p tweak + i (ferry/crypto.h). Lengths equal, a multiple of the key's data unit.
 * In place (@p dst describing exactly @p src) is allowed.
 * @param[in] seq the sequence, not yet finished.
 * @param[in] dst destination.
 * @param[in] src source.
 * @param[in] key the key (not NULL); referenced until the sequence completes.
 * @param[in] tweak tweak of the first data unit.
 * @param[in] cb per-step callback (may be NULL).
 * @param[in] cb_arg passed to @p cb.
 * @return see the append contract.
 */
FERRY_API int ferry_seq_append_encrypt(struct ferry_seq *seq, const struct ferry_mem *dst,
				       const struct ferry_mem *src, struct ferry_crypto_key *key,
				       uint64_t tweak, ferry_seq_step_cb cb, void *cb_arg);

/**
 * @brief Append: AES-XTS decrypt; same contract as ferry_seq_append_encrypt().
 * @param[in] seq the sequence, not yet finished.
 * @param[in] dst destination.
 * @param[in] src source.
 * @param[in] key the key (not NULL); referenced until the sequence completes.
 * @param[in] tweak tweak of the first data unit.
 * @param[in] cb per-step callback (may be NULL).
 * @param[in] cb_arg passed to @p cb.
 * @return see the append contract.
 */
FERRY_API int ferry_seq_append_decrypt(struct ferry_seq *seq, const struct ferry_mem *dst,
				       const struct ferry_mem *src, struct ferry_crypto_key *key,
				       uint64_t tweak, ferry_seq_step_cb cb, void *cb_arg);

/**
 * @brief Append: generate the PI of @p nblocks extended blocks of @p buf in place.
 * @param[in] seq the sequence, not yet finished.
 * @param[in] buf the extended blocks.
 * @param[in] ctx an interleaved context (copied); @p buf holds exactly nblocks *
 *            (block_size + md_size) bytes.
 * @param[in] nblocks number of blocks (> 0).
 * @param[in] cb per-step callback (may be NULL).
 * @param[in] cb_arg passed to @p cb.
 * @return see the append contract.
 */
FERRY_API int ferry_seq_append_dif_generate(struct ferry_seq *seq, const struct ferry_mem *buf,
					    const struct ferry_dif_ctx *ctx, uint32_t nblocks,
					    ferry_seq_step_cb cb, void *cb_arg);

/**
 * @brief Append: verify the PI of @p nblocks extended blocks of @p buf; -EILSEQ on mismatch.
 * @param[in] seq the sequence, not yet finished.
 * @param[in] buf the extended blocks, nblocks * (block_size + md_size) bytes.
 * @param[in] ctx an interleaved context (copied).
 * @param[in] nblocks number of blocks (> 0).
 * @param[out] err filled on -EILSEQ (may be NULL).
 * @param[in] cb per-step callback (may be NULL).
 * @param[in] cb_arg passed to @p cb.
 * @return see the append contract.
 */
FERRY_API int ferry_seq_append_dif_verify(struct ferry_seq *seq, const struct ferry_mem *buf,
					  const struct ferry_dif_ctx *ctx, uint32_t nblocks,
					  struct ferry_dif_error *err, ferry_seq_step_cb cb,
					  void *cb_arg);

/**
 * @brief Append: verify @p nblocks extended blocks of @p src and copy their data without PI
 * into @p dst (nblocks * block_size bytes); -EILSEQ on mismatch.
 * @param[in] seq the sequence, not yet finished.
 * @param[in] dst destination of the plain data.
 * @param[in] src the extended blocks.
 * @param[in] ctx an interleaved context (copied).
 * @param[in] nblocks number of blocks (> 0).
 * @param[out] err filled on -EILSEQ (may be NULL).
 * @param[in] cb per-step callback (may be NULL).
 * @param[in] cb_arg passed to @p cb.
 * @return see the append contract.
 */
FERRY_API int ferry_seq_append_dif_strip(struct ferry_seq *seq, const struct ferry_mem *dst,
					 const struct ferry_mem *src,
					 const struct ferry_dif_ctx *ctx, uint32_t nblocks,
					 struct ferry_dif_error *err, ferry_seq_step_cb cb,
					 void *cb_arg);

/**
 * @brief Append: copy @p nblocks plain blocks of @p src into extended blocks of @p dst,
 * generating the PI.
 * @param[in] seq the sequence, not yet finished.
 * @param[in] dst destination, nblocks * (block_size + md_size) bytes.
 * @param[in] src the plain blocks, nblocks * block_size bytes.
 * @param[in] ctx an interleaved context (copied).
 * @param[in] nblocks number of blocks (> 0).
 * @param[in] cb per-step callback (may be NULL).
 * @param[in] cb_arg passed to @p cb.
 * @return see the append contract.
 */
FERRY_API int ferry_seq_append_dif_insert(struct ferry_seq *seq, const struct ferry_mem *dst,
					  const struct ferry_mem *src,
					  const struct ferry_dif_ctx *ctx, uint32_t nblocks,
					  ferry_seq_step_cb cb, void *cb_arg);

/**
 * @brief Append: generate the PI of @p nblocks plain blocks of @p data into @p md
 * (nblocks * md_size bytes); @p ctx is not interleaved.
 * @param[in] seq the sequence, not yet finished.
 * @param[in] data the plain blocks, nblocks * block_size bytes.
 * @param[in] md destination of the metadata.
 * @param[in] ctx a context without interleave (copied).
 * @param[in] nblocks number of blocks (> 0).
 * @param[in] cb per-step callback (may be NULL).
 * @param[in] cb_arg passed to @p cb.
 * @return see the append contract.
 */
FERRY_API int ferry_seq_append_dix_generate(struct ferry_seq *seq, const struct ferry_mem *data,
					    const struct ferry_mem *md,
					    const struct ferry_dif_ctx *ctx, uint32_t nblocks,
					    ferry_seq_step_cb cb, void *cb_arg);

/**
 * @brief Append: verify @p nblocks plain blocks of @p data against @p md; -EILSEQ on mismatch.
 * @param[in] seq the sequence, not yet finished.
 * @param[in] data the plain blocks, nblocks * block_size bytes.
 * @param[in] md their metadata, nblocks * md_size bytes.
 * @param[in] ctx a context without interleave (copied).
 * @param[in] nblocks number of blocks (> 0).
 * @param[out] err filled on -EILSEQ (may be NULL).
 * @param[in] cb per-step callback (may be NULL).
 * @param[in] cb_arg passed to @p cb.
 * @return see the append contract.
 */
FERRY_API int ferry_seq_append_dix_verify(struct ferry_seq *seq, const struct ferry_mem *data,
					  const struct ferry_mem *md,
					  const struct ferry_dif_ctx *ctx, uint32_t nblocks,
					  struct ferry_dif_error *err, ferry_seq_step_cb cb,
					  void *cb_arg);

/**
 * @brief The channel a sequence was created on (e.g. for a virtual bdev that must take
 * virtual buffers with ferry_accel_get_buf() for the operations it appends to an I/O's
 * sequence).
 * @param[in] seq the sequence (alive: not yet completed, aborted or freed).
 * @return the channel, or NULL for a NULL @p seq.
 */
FERRY_API struct ferry_accel_chan *ferry_seq_get_chan(const struct ferry_seq *seq);

/**
 * @brief Reverse the order of the steps (a read path appends top-down, then reverses so that
 * the terminal's data flows up through verify/decrypt). Only before finish.
 * @param[in] seq the sequence.
 * @retval 0 success; -EINVAL NULL or already finished.
 */
FERRY_API int ferry_seq_reverse(struct ferry_seq *seq);

/**
 * @brief Run the passes and start execution.
 *
 * The passes run once per sequence; a retried finish (after -ENOMEM) keeps their plan and
 * retries materialisation only.
 * @param[in] seq the sequence; after 0, owned by the channel until its callback returned.
 * @param[in] cb completion callback (required); runs from ferry_accel_chan_poll().
 * @param[in] cb_arg passed to @p cb.
 * @retval 0 started: @p cb will be called exactly once, after which the sequence is freed.
 * @retval -ENOMEM the pool (or the channel's max_tasks) could not supply every buffer or
 *         inserted step the plan needs. Nothing was kept: the sequence is unchanged from the
 *         caller's view and stays valid; call finish again later (after completions returned
 *         buffers) or ferry_seq_abort().
 * @retval -EINVAL NULL argument, an empty sequence, a sequence already finished, a last step
 *         that writes a virtual buffer (a sequence must end in real memory), or a step that
 *         cannot be planned (e.g. a bounce larger than the pool allows); logged. Nothing ran
 *         and no callback will: the sequence stays valid and owned by the caller; abort it.
 */
FERRY_API int ferry_seq_finish(struct ferry_seq *seq, ferry_seq_cb cb, void *cb_arg);

/**
 * @brief Free a sequence that was not finished (or whose finish failed) without running it;
 * per-step callbacks are called with -ECANCELED, in order, before this returns. NULL is a
 * no-op; a sequence in flight is logged and ignored.
 * @param[in] seq the sequence; invalid after the call.
 */
FERRY_API void ferry_seq_abort(struct ferry_seq *seq);

/**
 * @brief Write the sequence's current plan into @p buf: steps, operands (domain, addresses,
 * lengths), state (planned, elided, fused, done), engine, pool buffers bound and bounces.
 * @param[in] seq the sequence.
 * @param[in] fmt text or JSON.
 * @param[out] buf output (may be NULL if @p len is 0); always NUL-terminated when @p len > 0.
 * @param[in] len size of @p buf.
 * @return like snprintf: the length of the whole dump without the NUL (output truncated if
 *         >= @p len), or -EINVAL for a NULL sequence or unknown format.
 */
FERRY_API int ferry_seq_dump(const struct ferry_seq *seq, enum ferry_seq_dump_fmt fmt, char *buf,
			     size_t len);

/**
 * @brief Counters of @p chan, or of the whole process (every channel, destroyed ones
 * included) with a NULL @p chan. bufs_in_use/bufs_peak are then the pool's.
 * @param[in] chan the channel, or NULL for the process.
 * @param[in,out] out counters; @p out->size must be set by the caller: sizeof(struct
 *            ferry_accel_stats), or the size of an older layout of it (ending at
 *            nomem_retries), in which case only the fields of that layout are written.
 * @retval 0 success; -EINVAL NULL @p out or @p out->size smaller than the oldest layout.
 */
FERRY_API int ferry_accel_get_stats(struct ferry_accel_chan *chan, struct ferry_accel_stats *out);

/**
 * @brief Name of an operation ("copy", "encrypt", "dif-insert", ...).
 * @param[in] op the operation.
 * @return a static string; "unknown" for a value outside the enum.
 */
FERRY_API const char *ferry_accel_opcode_name(enum ferry_accel_opcode op);

FERRY_END_DECLS

#endif /* FERRY_ACCEL_H */
