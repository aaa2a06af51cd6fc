/**
 * @file ferry/dma.h
 * @brief Transfer descriptors and DMA engine channels.
 *
 * A ::ferry_xfer moves @p len bytes from a source ::ferry_mem to a destination ::ferry_mem;
 * either side may be in any domain the engine can reach (system, a PCI function's host memory,
 * ...) and either side may be scattered differently. Transfers are submitted in batches to a
 * channel of a device's DMA engine and complete through ferry_dma_poll() with a status modelled
 * on DMA hardware.
 *
 * Lifetime: a transfer, its ::ferry_mem descriptors, their iovec arrays and the memory they
 * describe stay owned by the caller and must stay valid from submit until the transfer has been
 * returned by ferry_dma_poll().
 *
 * Threading: a channel is used by one thread at a time (submit and poll from the same thread);
 * different channels are independent.
 */
#ifndef FERRY_DMA_H
#define FERRY_DMA_H

#include <stddef.h>
#include <stdint.h>
#include <ferry/export.h>
#include <ferry/memdomain.h>
#include <ferry/device.h>

FERRY_BEGIN_DECLS

/** Completion status of one transfer. */
enum ferry_xfer_status {
	FERRY_XFER_SUCCESS = 0,          /**< all bytes moved */
	FERRY_XFER_INVALID_SRC_ADDR = 1, /**< source address not valid in its domain */
	FERRY_XFER_INVALID_DST_ADDR = 2, /**< destination address not valid in its domain */
	FERRY_XFER_BUS_READ_ERROR = 3,   /**< the read failed on the bus */
	FERRY_XFER_BUS_WRITE_ERROR = 4,  /**< the write failed on the bus */
	FERRY_XFER_PAGE_FAULT = 5,       /**< IOMMU: page not mapped or access not permitted */
	FERRY_XFER_DATA_POISONED = 6,    /**< the source data was poisoned (uncorrectable) */
	FERRY_XFER_NOT_ATTEMPTED = 7,    /**< not executed (an earlier fenced transfer failed, or
					      the channel was destroyed) */
	FERRY_XFER_STATUS_COUNT          /**< number of statuses */
};

/** Transfer flags. */
/**
 * Fence. The one rule (what ferry-conformance checks as dma.fence_rule): a fenced transfer
 * starts only once every transfer submitted before it on the channel has completed. It is
 * not attempted (status FERRY_XFER_NOT_ATTEMPTED, nothing written) if any transfer that was
 * submitted before it and had not yet been returned by ferry_dma_poll() when it was
 * submitted completed with an error, whether or not that error has been polled since. A
 * failure already returned by poll before the fenced transfer was submitted does not
 * affect it. Transfers without the flag are never held back or failed by another
 * transfer's error.
 */
#define FERRY_XFER_F_FENCE (1u << 0)

/** One transfer. Inputs are set by the caller; @p status is written at completion. */
struct ferry_xfer {
	struct ferry_mem src;          /**< source (any reachable domain) */
	struct ferry_mem dst;          /**< destination (any reachable domain) */
	uint64_t len;                  /**< bytes; 1..min(total src, total dst, max_xfer) */
	uint32_t flags;                /**< FERRY_XFER_F_* */
	enum ferry_xfer_status status; /**< out: completion status */
	void *user_ctx;                /**< caller's, untouched */
};

/** DMA capability bits (ferry_dma_info::caps). */
#define FERRY_DMA_CAP_MEM_TO_MEM (1ull << 0) /**< local to local */
#define FERRY_DMA_CAP_MEM_TO_DEV (1ull << 1) /**< local to a remote domain (push) */
#define FERRY_DMA_CAP_DEV_TO_MEM (1ull << 2) /**< remote domain to local (pull) */
#define FERRY_DMA_CAP_DEV_TO_DEV (1ull << 3) /**< remote to remote */
#define FERRY_DMA_CAP_SG (1ull << 4)         /**< scatter-gather on both sides */
#define FERRY_DMA_CAP_FENCE (1ull << 5)      /**< honours FERRY_XFER_F_FENCE */
#define FERRY_DMA_CAP_ERR_INJECT (1ull << 6) /**< deterministic error injection (test engines) */
#define FERRY_DMA_CAP_ACCEL (1ull << 7)      /**< executes accel operations (ferry/accel.h) */
#define FERRY_DMA_CAP_FUSED (1ull << 8)      /**< executes declared fused chains */

/** Capabilities and limits of a device's DMA engine. */
struct ferry_dma_info {
	size_t size;           /**< in: sizeof(struct ferry_dma_info) */
	uint64_t caps;         /**< FERRY_DMA_CAP_* */
	uint32_t max_sges;     /**< max segments per side of one transfer */
	uint32_t alignment;    /**< required address/length alignment in bytes (1 = none) */
	uint64_t max_xfer;     /**< max bytes per transfer */
	uint32_t max_channels; /**< max channels open at once */
	uint32_t max_ring;     /**< max ring_size of a channel */
};

/** Options of ferry_dma_chan_create(). */
struct ferry_dma_chan_opts {
	size_t size;        /**< sizeof(struct ferry_dma_chan_opts) */
	uint32_t ring_size; /**< transfers in flight at most (0 = engine default) */
};

/** Counters of a channel. */
struct ferry_dma_stats {
	uint64_t submitted; /**< transfers accepted by submit */
	uint64_t completed; /**< transfers returned by poll (any status) */
	uint64_t errors;    /**< of those, with a status other than SUCCESS */
	uint64_t bytes;     /**< bytes of the successful ones */
};

struct ferry_dma_chan;

/**
 * @brief Capabilities and limits of @p dev's DMA engine.
 * @param[in] dev the device.
 * @param[in,out] info in: info->size = sizeof(struct ferry_dma_info); out: the engine's
 *                capabilities and limits.
 * @retval 0 success.
 * @retval -ENOTSUP the device has no DMA engine.
 * @retval -EINVAL NULL argument or bad @p info->size.
 * @retval other negative errno from the backend's query.
 */
FERRY_API int ferry_dma_query(struct ferry_device *dev, struct ferry_dma_info *info);

/**
 * @brief Open a channel on @p dev's DMA engine.
 *
 * The channel must be destroyed before its device is closed.
 * @param[in] dev the device.
 * @param[in] opts options, or NULL for the defaults.
 * @param[out] out the channel (untouched on failure).
 * @retval 0 success.
 * @retval -ENOTSUP no DMA engine.
 * @retval -EINVAL NULL @p dev or @p out, bad opts->size, or ring_size above the engine's
 *         max_ring.
 * @retval -EBUSY too many channels (from the engine).
 * @retval -ENOMEM out of memory.
 * @retval other negative errno from the backend.
 */
FERRY_API int ferry_dma_chan_create(struct ferry_device *dev, const struct ferry_dma_chan_opts *opts,
				    struct ferry_dma_chan **out);

/**
 * @brief Close a channel. Transfers still in flight are completed or marked NOT_ATTEMPTED by
 * the engine and dropped (their memory is no longer touched once this returns). NULL: no-op.
 * @param[in] chan the channel; invalid after the call.
 */
FERRY_API void ferry_dma_chan_destroy(struct ferry_dma_chan *chan);

/**
 * @brief Submit a batch of transfers.
 *
 * Every transfer is first validated (non-NULL, 1 <= len <= both sides' totals and max_xfer,
 * segment counts <= max_sges, alignment); if any is invalid nothing is submitted and -EINVAL
 * is returned. Otherwise transfers are accepted in order until the ring is full.
 * Address problems are not errors of submit: they complete with an error status.
 * @param[in] chan the channel.
 * @param[in] xfers @p n transfers; each stays owned by the caller and valid until poll
 *            returns it.
 * @param[in] n number of transfers (0: nothing to do, returns 0).
 * @return number accepted (0..n; fewer than n when the ring is full: poll, then submit the
 *         rest), or a negative errno (nothing accepted).
 */
FERRY_API int ferry_dma_submit(struct ferry_dma_chan *chan, struct ferry_xfer *const *xfers,
			       uint32_t n);

/**
 * @brief Reap completed transfers (in completion order) into @p done, status set.
 * @param[in] chan the channel.
 * @param[out] done room for @p max transfer pointers (the caller's own transfers).
 * @param[in] max most transfers to return (0: returns 0).
 * @return number returned (0..max); -EINVAL NULL @p chan, or NULL @p done with @p max > 0;
 *         another negative errno from the engine.
 */
FERRY_API int ferry_dma_poll(struct ferry_dma_chan *chan, struct ferry_xfer **done, uint32_t max);

/**
 * @brief Counters of @p chan.
 * @param[in] chan the channel.
 * @param[out] out the counters.
 * @retval 0 success.
 * @retval -EINVAL NULL argument.
 */
FERRY_API int ferry_dma_get_stats(const struct ferry_dma_chan *chan, struct ferry_dma_stats *out);

/**
 * @brief Name of a status ("success", "page-fault", ...).
 * @param[in] status the status.
 * @return a static string; "unknown" for a value outside the enum.
 */
FERRY_API const char *ferry_xfer_status_str(enum ferry_xfer_status status);

FERRY_END_DECLS

#endif /* FERRY_DMA_H */
