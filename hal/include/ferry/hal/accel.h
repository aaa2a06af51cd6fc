/**
 * @file ferry/hal/accel.h
 * @brief What a DMA engine implements to run accel operations: the single operations it
 *        executes, the op chains it executes as one operation (fused), and submit/poll of
 *        operation descriptors.
 *
 * A backend points ferry_hal_dma_ops::accel at one const ::ferry_hal_accel_ops. The SDK's
 * sequence passes (ferry/accel.h) then:
 *  - fuse: scan a sequence for runs of operations matching a declared ::ferry_hal_accel_chain
 *    (opcodes in order, the data of each link flowing from one op into the next, domain
 *    constraints on the chain's two ends, intermediates virtual if the chain says so) and ask
 *    check() whether the engine accepts the parameters. No per-vendor code runs in the SDK:
 *    the table *is* the platform driver;
 *  - choose the engine per operation: this engine if the opcode's bit is in @c opcodes (and
 *    check() accepts it), else the software engine;
 *  - materialise: operands in domains reaches() refuses are bounced through a pool buffer with
 *    ferry_memdomain_pull()/push() before/after the descriptor.
 *
 * Descriptor contract: submit() receives descriptors whose operands are all reachable by the
 * engine (the system domain, or domains reaches() accepted), except the intermediate links of
 * a chain declared with FERRY_HAL_ACCEL_CHAIN_F_VIRT_INTERMEDIATE: those are accel-virtual
 * addresses the engine must never touch (it keeps the intermediate data internally). Every
 * length is already checked against the op (ferry/accel.h). The engine must still check every
 * address against its domains (IOMMU) and fail a bad one with -EFAULT without writing anything
 * through it.
 *
 * Lifetime: a descriptor and everything it points to stay valid from submit until poll
 * returns it; the engine writes only the descriptor's out fields and the destinations.
 *
 * Threading: all ops of one channel are called from that channel's thread (the accel channel
 * owning the DMA channel); the engine may execute on its own threads; completions are
 * returned only through poll().
 */
#ifndef FERRY_HAL_ACCEL_H
#define FERRY_HAL_ACCEL_H

#include <stdint.h>
#include <ferry/export.h>
#include <ferry/memdomain.h>
#include <ferry/crypto.h>
#include <ferry/dif.h>
#include <ferry/accel.h>

FERRY_BEGIN_DECLS

/** ABI version of ::ferry_hal_accel_ops. */
#define FERRY_HAL_ACCEL_ABI_VERSION 2 /* 2: ferry_hal_accel_desc::reason */

/** Bytes of ferry_hal_accel_desc::reason, NUL included. */
#define FERRY_HAL_ACCEL_REASON_MAX 160

/** Longest declarable chain. */
#define FERRY_HAL_ACCEL_CHAIN_MAX 4

/** Bit of an opcode in ferry_hal_accel_ops::opcodes. */
#define FERRY_HAL_ACCEL_OP_BIT(op) (1u << (op))

/**
 * @name Domain classes of a chain's ends (ferry_hal_accel_chain::src_doms / dst_doms)
 * A virtual buffer that will be materialised counts as LOCAL.
 * @{
 */
#define FERRY_HAL_ACCEL_DOM_LOCAL (1u << 0)  /**< system domain (local SoC memory) */
#define FERRY_HAL_ACCEL_DOM_PCIE (1u << 1)   /**< a PCI function's host memory */
#define FERRY_HAL_ACCEL_DOM_RDMA (1u << 2)   /**< RDMA-registered memory */
#define FERRY_HAL_ACCEL_DOM_VENDOR (1u << 3) /**< a vendor domain type */
#define FERRY_HAL_ACCEL_DOM_ANY 0xfu         /**< any of the above */
/** @} */

/**
 * Chain flag: every link written by one op and read by the next must be an accel virtual
 * buffer that no other step of the sequence uses; the engine keeps that data internally and
 * the SDK allocates nothing for it. Without the flag, links are real memory the engine writes.
 */
#define FERRY_HAL_ACCEL_CHAIN_F_VIRT_INTERMEDIATE (1u << 0)

/**
 * @brief One op chain the engine executes as a single operation.
 *
 * Link rule (checked by the SDK): for k = 0..nops-2 the data op k produces is exactly what
 * op k+1 consumes: op k's destination (or, for an op that writes nothing such as crc32c or
 * dif-verify, op k's source) describes the same bytes as op k+1's source (its buffer for
 * dif-generate). A copy as first op with src_doms = PCIE is a "pull" into the chain; a copy
 * as last op with dst_doms = PCIE a "push" out of it.
 */
struct ferry_hal_accel_chain {
	const char *name;                                       /**< e.g. "encrypt+dif-insert" */
	uint32_t nops;                                          /**< 2..FERRY_HAL_ACCEL_CHAIN_MAX */
	enum ferry_accel_opcode ops[FERRY_HAL_ACCEL_CHAIN_MAX]; /**< the opcodes, in order */
	uint32_t src_doms; /**< FERRY_HAL_ACCEL_DOM_* allowed for op 0's source (its buffer for
			        dif-generate, and any second operand of op 0) */
	uint32_t dst_doms; /**< FERRY_HAL_ACCEL_DOM_* allowed for the last op's destination
			        (0: the last op must write nothing, e.g. a verify) */
	uint32_t flags;    /**< FERRY_HAL_ACCEL_CHAIN_F_* */
};

/**
 * @brief One operation inside a descriptor. Inputs set by the SDK; @c crc and @c dif_err are
 * out fields. Operand use per opcode (unused ones have iovcnt 0; ferry_hal_accel_op_get_info()
 * gives the same as a table):
 *  copy, copy+crc32c, encrypt, decrypt, dif-strip, dif-insert: src -> dst;
 *  fill: dst; compare: src vs aux; crc32c, dif-verify: src;
 *  dif-generate: dst (read and written in place);
 *  dix-generate: data src, metadata aux (written); dix-verify: data src, metadata aux.
 */
struct ferry_hal_accel_op {
	enum ferry_accel_opcode opcode;  /**< the operation */
	struct ferry_mem src;            /**< source */
	struct ferry_mem dst;            /**< destination */
	struct ferry_mem aux;            /**< second operand (compare, DIX metadata) */
	uint8_t fill;                    /**< fill: pattern byte */
	uint32_t crc_seed;               /**< crc32c, copy+crc32c: seed (ferry/crc.h) */
	uint32_t crc;                    /**< out: crc32c, copy+crc32c result */
	struct ferry_crypto_key *key;    /**< encrypt, decrypt: the key */
	uint64_t tweak;                  /**< encrypt, decrypt: tweak of data unit 0 */
	const struct ferry_dif_ctx *dif; /**< dif-*, dix-*: format and checks */
	uint32_t nblocks;                /**< dif-*, dix-*: blocks */
	struct ferry_dif_error dif_err;  /**< out: where a verification failed (-EILSEQ) */
};

/**
 * @name Operand bits of ::ferry_hal_accel_op_info
 * @{
 */
#define FERRY_HAL_ACCEL_OPND_SRC (1u << 0) /**< ferry_hal_accel_op::src */
#define FERRY_HAL_ACCEL_OPND_DST (1u << 1) /**< ferry_hal_accel_op::dst */
#define FERRY_HAL_ACCEL_OPND_AUX (1u << 2) /**< ferry_hal_accel_op::aux */
/** @} */

/**
 * @brief Which operands of a ::ferry_hal_accel_op an opcode reads and writes, and its name.
 *
 * The table the SDK's own passes plan with: an engine that resolves, checks (IOMMU READ for
 * what is read, WRITE for what is written) or bounces operands should take the operand use
 * from here rather than restate it. An operand both read and written (dif-generate's dst)
 * has its bit in both masks; an operand in neither mask is unused (iovcnt 0).
 */
struct ferry_hal_accel_op_info {
	const char *name; /**< e.g. "dif-insert" (ferry_accel_opcode_name()) */
	uint8_t reads;    /**< FERRY_HAL_ACCEL_OPND_* the operation reads */
	uint8_t writes;   /**< FERRY_HAL_ACCEL_OPND_* the operation writes */
};

/**
 * @brief Operand use of @p op.
 * @param[in] op an opcode.
 * @return a pointer to a constant entry, valid for the lifetime of the library; NULL if
 *         @p op is not a defined opcode (0 .. FERRY_ACCEL_OP_COUNT - 1).
 */
FERRY_API const struct ferry_hal_accel_op_info *ferry_hal_accel_op_get_info(enum ferry_accel_opcode op);

/** A descriptor: one operation, or one declared chain run as a single operation. */
struct ferry_hal_accel_desc {
	uint32_t nops; /**< 1 (single op) .. FERRY_HAL_ACCEL_CHAIN_MAX */
	int32_t chain; /**< index in ferry_hal_accel_ops::chains, or -1 for a single op */
	struct ferry_hal_accel_op ops[FERRY_HAL_ACCEL_CHAIN_MAX]; /**< the operations, in order */
	int status;         /**< out: 0, or -EFAULT (address not mapped / not permitted), -EIO (bus
			      error, poisoned data), -EILSEQ (compare or PI mismatch), -EINVAL
			      (an operation the engine refuses), -ECANCELED (channel destroyed) */
	uint32_t failed_op; /**< out: index of the op that failed (status != 0) */
	void *user_ctx;     /**< the SDK's; the engine does not touch it */
	/** out, optional: why the descriptor failed, NUL-terminated, in the engine's words (the
	 *  IOMMU fault and its address, "injected ..."); empty if the engine has nothing to add.
	 *  An engine that executes on its own threads logs there, where the submitter never
	 *  sees it: the SDK puts this text into the failure message it records on the channel's
	 *  thread (ferry_last_error() in the completion callback). The SDK zeroes it at submit. */
	char reason[FERRY_HAL_ACCEL_REASON_MAX];
};

/** Accel ops of a DMA engine. */
struct ferry_hal_accel_ops {
	/** Required: FERRY_HAL_ACCEL_ABI_VERSION; a mismatch is refused when the backend registers
	 *  (-EPROTO), like every other class table. */
	uint32_t abi_version;
	/** Required: FERRY_HAL_ACCEL_OP_BIT() of every single operation the engine executes. */
	uint32_t opcodes;
	/** Optional: the chains executed as one operation (NULL if @c nchains is 0). The SDK
	 *  prefers the longest match; on equal length, the first declared. */
	const struct ferry_hal_accel_chain *chains;
	/** Number of entries in @c chains. */
	uint32_t nchains;
	/**
	 * Optional: non-zero if the engine can read and write @p domain directly (besides the
	 * system domain, always reachable). NULL: only the system domain.
	 */
	int (*reaches)(void *chan, const struct ferry_memdomain *domain);
	/**
	 * Optional: 0 if the engine accepts @p desc's parameters (cipher, data unit vs block
	 * size, lengths, ...), else a negative errno (the SDK then does not fuse it, or runs a
	 * single op in software). Called while planning: operands are as appended (virtual
	 * buffers still in the accel domain); judge parameters, not addresses. NULL: accept all.
	 */
	int (*check)(void *chan, const struct ferry_hal_accel_desc *desc);
	/**
	 * Required: accept descriptors in order until the ring is full.
	 * @return number accepted (0..n) or a negative errno (nothing accepted).
	 */
	int (*submit)(void *chan, struct ferry_hal_accel_desc *const *descs, uint32_t n);
	/**
	 * Required: return up to @p max completed descriptors (out fields set) in completion
	 * order. @return the number returned or a negative errno.
	 */
	int (*poll)(void *chan, struct ferry_hal_accel_desc **done, uint32_t max);
};

FERRY_END_DECLS

#endif /* FERRY_HAL_ACCEL_H */
