/**
 * @file ferry/dif.h
 * @brief T10 protection information (DIF/DIX): the software engine's generate, verify, insert
 *        and strip kernels.
 *
 * Format: every logical block of @c block_size data bytes (512 or 4096) carries @c md_size = 8
 * bytes of protection information (PI), stored big-endian:
 *
 *     bytes 0-1  guard    CRC16-T10DIF of the block's data bytes (ferry_crc16_t10dif(0, ...))
 *     bytes 2-3  app tag  application tag
 *     bytes 4-7  ref tag  reference tag
 *
 * With @c md_interleave = 1 (DIF, "extended" blocks) the PI follows each block's data in the
 * same buffer (520- or 4104-byte blocks). With @c md_interleave = 0 (DIX) the data blocks are
 * plain and the PI of block i lives at offset i * md_size of a separate metadata buffer.
 *
 * Generation always writes all 8 bytes: guard from the data, app tag = ctx app_tag, ref tag =
 * init_ref_tag + i for types 1 and 2 and init_ref_tag for type 3 (not incremented), where i is
 * the block's index from the start of the buffer (wrapping modulo 2^32).
 *
 * Verification checks, in this order, only the fields whose FERRY_DIF_CHECK_* flag is set:
 * - escape first: a block whose app tag is 0xFFFF (types 1 and 2), or whose app tag is 0xFFFF
 *   and ref tag 0xFFFFFFFF (type 3), is not checked at all (T10 / SPDK convention);
 * - guard: stored guard == CRC16-T10DIF of the data;
 * - app tag: (stored & app_tag_mask) == (app_tag & app_tag_mask);
 * - ref tag: types 1 and 2: stored == init_ref_tag + i; type 3: stored == init_ref_tag (SPDK
 *   ignores the ref tag for type 3: leave FERRY_DIF_CHECK_REFTAG out to get that behaviour).
 * The first failing block stops the operation with -EILSEQ and is described in a
 * ::ferry_dif_error: @c expected is what the context and the data say the field should be
 * (computed guard, ctx app tag, expected ref tag), @c actual is the value stored in the PI.
 *
 * Buffers: iovec arrays with any segmentation; a block (data or PI) may straddle segments. The
 * arrays must hold at least @p nblocks blocks (more is allowed and ignored). Buffers are only
 * accessed during the call. Source and destination of insert/strip must not overlap.
 *
 * Threading: the functions keep no state; a context may be shared read-only by many threads.
 */
#ifndef FERRY_DIF_H
#define FERRY_DIF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <ferry/export.h>

FERRY_BEGIN_DECLS

/** Protection type (T10 DIF types 1, 2, 3). */
enum ferry_dif_type {
	FERRY_DIF_TYPE1 = 1, /**< ref tag = low 32 bits of the LBA, incremented per block */
	FERRY_DIF_TYPE2 = 2, /**< ref tag seeded by the caller, incremented per block */
	FERRY_DIF_TYPE3 = 3, /**< ref tag not incremented (opaque) */
};

/** Check the guard (CRC16-T10DIF of the data). */
#define FERRY_DIF_CHECK_GUARD (1u << 0)
/** Check the application tag under app_tag_mask. */
#define FERRY_DIF_CHECK_APPTAG (1u << 1)
/** Check the reference tag. */
#define FERRY_DIF_CHECK_REFTAG (1u << 2)

/** Format and checks of a DIF/DIX operation; fill it with ferry_dif_ctx_init(). */
struct ferry_dif_ctx {
	uint32_t block_size;      /**< data bytes per block: 512 or 4096 */
	uint32_t md_size;         /**< metadata bytes per block: 8 */
	uint32_t flags;           /**< FERRY_DIF_CHECK_* */
	enum ferry_dif_type type; /**< protection type */
	uint8_t md_interleave;    /**< 1: extended blocks (DIF); 0: separate metadata (DIX) */
	uint32_t init_ref_tag;    /**< ref tag of block 0 */
	uint16_t app_tag;         /**< app tag written, and expected under app_tag_mask */
	uint16_t app_tag_mask;    /**< bits of the app tag that are checked */
};

/** PI field named by an error. */
enum ferry_dif_field {
	FERRY_DIF_FIELD_NONE = 0, /**< no error */
	FERRY_DIF_FIELD_GUARD,    /**< guard mismatch */
	FERRY_DIF_FIELD_APPTAG,   /**< application tag mismatch */
	FERRY_DIF_FIELD_REFTAG,   /**< reference tag mismatch */
};

/** Where and how a verification failed. */
struct ferry_dif_error {
	enum ferry_dif_field field; /**< which field */
	uint64_t block;             /**< block index from the start of the buffer */
	uint32_t expected;          /**< what the field should hold */
	uint32_t actual;            /**< what the PI holds */
};

/**
 * @brief Fill and validate a DIF context.
 * @param[out] ctx the context.
 * @param[in] block_size 512 or 4096.
 * @param[in] md_size 8.
 * @param[in] md_interleave non-zero for extended blocks, 0 for a separate metadata buffer.
 * @param[in] type FERRY_DIF_TYPE1, 2 or 3.
 * @param[in] check_flags any combination of FERRY_DIF_CHECK_*.
 * @param[in] init_ref_tag ref tag of the first block.
 * @param[in] app_tag application tag.
 * @param[in] app_tag_mask bits of the app tag to check.
 * @retval 0 success.
 * @retval -EINVAL NULL @p ctx, unsupported block or metadata size, unknown type, unknown flag.
 */
FERRY_API int ferry_dif_ctx_init(struct ferry_dif_ctx *ctx, uint32_t block_size, uint32_t md_size,
				 int md_interleave, enum ferry_dif_type type, uint32_t check_flags,
				 uint32_t init_ref_tag, uint16_t app_tag, uint16_t app_tag_mask);

/**
 * @brief Generate the PI of @p nblocks extended blocks in place (md_interleave = 1).
 * @param[in] ctx an interleaved context (ferry_dif_ctx_init()).
 * @param[in] iov the extended blocks (local memory), PI written in place.
 * @param[in] iovcnt number of segments.
 * @param[in] nblocks number of blocks.
 * @retval 0 success (also for @p nblocks = 0).
 * @retval -EINVAL bad context, not an interleaved context, bad iovec array, or the array holds
 *         fewer than @p nblocks * (block_size + md_size) bytes.
 */
FERRY_API int ferry_dif_generate(const struct ferry_dif_ctx *ctx, const struct iovec *iov,
				 uint32_t iovcnt, uint32_t nblocks);

/**
 * @brief Verify the PI of @p nblocks extended blocks (md_interleave = 1).
 * @param[in] ctx an interleaved context (ferry_dif_ctx_init()).
 * @param[in] iov the extended blocks (local memory).
 * @param[in] iovcnt number of segments.
 * @param[in] nblocks number of blocks.
 * @param[out] err filled on -EILSEQ (may be NULL); field NONE on success.
 * @retval 0 every block passed.
 * @retval -EILSEQ a block failed; @p err names the first one.
 * @retval -EINVAL as for ferry_dif_generate().
 */
FERRY_API int ferry_dif_verify(const struct ferry_dif_ctx *ctx, const struct iovec *iov,
			       uint32_t iovcnt, uint32_t nblocks, struct ferry_dif_error *err);

/**
 * @brief Copy @p nblocks plain blocks from @p src into extended blocks in @p dst, generating
 * the PI in the same pass (md_interleave = 1).
 * @param[in] ctx an interleaved context (ferry_dif_ctx_init()).
 * @param[in] dst destination segments (extended blocks).
 * @param[in] dst_cnt number of @p dst segments.
 * @param[in] src source segments (plain blocks).
 * @param[in] src_cnt number of @p src segments.
 * @param[in] nblocks number of blocks.
 * @retval 0 success.
 * @retval -EINVAL bad context or arrays; @p src shorter than nblocks * block_size or @p dst
 *         shorter than nblocks * (block_size + md_size).
 */
FERRY_API int ferry_dif_insert(const struct ferry_dif_ctx *ctx, const struct iovec *dst,
			       uint32_t dst_cnt, const struct iovec *src, uint32_t src_cnt,
			       uint32_t nblocks);

/**
 * @brief Verify @p nblocks extended blocks of @p src and copy their data without the PI into
 * @p dst (md_interleave = 1).
 *
 * Stops at the first failing block: blocks before it have been copied, the failing block may
 * have been partly or wholly copied, and the destination must be treated as untrusted.
 * @param[in] ctx an interleaved context (ferry_dif_ctx_init()).
 * @param[in] dst destination segments (plain blocks).
 * @param[in] dst_cnt number of @p dst segments.
 * @param[in] src source segments (extended blocks).
 * @param[in] src_cnt number of @p src segments.
 * @param[in] nblocks number of blocks.
 * @param[out] err filled on -EILSEQ (may be NULL).
 * @retval 0 success.
 * @retval -EILSEQ a block failed verification.
 * @retval -EINVAL bad context or arrays; @p src shorter than nblocks * (block_size + md_size)
 *         or @p dst shorter than nblocks * block_size.
 */
FERRY_API int ferry_dif_strip(const struct ferry_dif_ctx *ctx, const struct iovec *dst,
			      uint32_t dst_cnt, const struct iovec *src, uint32_t src_cnt,
			      uint32_t nblocks, struct ferry_dif_error *err);

/**
 * @brief Generate the PI of @p nblocks plain data blocks into a separate metadata buffer
 * (md_interleave = 0).
 * @param[in] ctx a context without interleave (ferry_dif_ctx_init()).
 * @param[in] data the data blocks (at least nblocks * block_size bytes).
 * @param[in] data_cnt number of data segments.
 * @param[in] md the metadata buffer (at least nblocks * md_size bytes), written.
 * @param[in] md_cnt number of metadata segments.
 * @param[in] nblocks number of blocks.
 * @retval 0 success.
 * @retval -EINVAL bad context (or an interleaved one), bad arrays, arrays too short.
 */
FERRY_API int ferry_dix_generate(const struct ferry_dif_ctx *ctx, const struct iovec *data,
				 uint32_t data_cnt, const struct iovec *md, uint32_t md_cnt,
				 uint32_t nblocks);

/**
 * @brief Verify @p nblocks data blocks against the PI in a separate metadata buffer
 * (md_interleave = 0).
 * @param[in] ctx a context without interleave (ferry_dif_ctx_init()).
 * @param[in] data the data blocks (at least nblocks * block_size bytes).
 * @param[in] data_cnt number of data segments.
 * @param[in] md the metadata buffer (at least nblocks * md_size bytes).
 * @param[in] md_cnt number of metadata segments.
 * @param[in] nblocks number of blocks.
 * @param[out] err filled on -EILSEQ (may be NULL).
 * @retval 0 every block passed.
 * @retval -EILSEQ a block failed; @p err names the first one.
 * @retval -EINVAL as for ferry_dix_generate().
 */
FERRY_API int ferry_dix_verify(const struct ferry_dif_ctx *ctx, const struct iovec *data,
			       uint32_t data_cnt, const struct iovec *md, uint32_t md_cnt,
			       uint32_t nblocks, struct ferry_dif_error *err);

/**
 * @brief Name of a PI field ("none", "guard", "app tag", "ref tag").
 * @param[in] field the field.
 * @return a static string; "unknown" for a value outside the enum, never NULL.
 */
FERRY_API const char *ferry_dif_field_name(enum ferry_dif_field field);

FERRY_END_DECLS

#endif /* FERRY_DIF_H */
