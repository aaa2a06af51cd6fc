/**
 * @file ferry/hal/dma.h
 * @brief The DMA engine device class: what a backend implements so Ferry can move data.
 *
 * The SDK wrappers (ferry/dma.h) validate arguments (NULLs, lengths, segment counts against
 * the limits reported by query) before calling these ops, so a backend sees only
 * well-formed transfers; it must still check every *address* against its domains and complete
 * a bad one with the right ::ferry_xfer_status, touching nothing.
 *
 * Threading: chan_* ops of one channel are called from one thread at a time. The engine may
 * run on its own threads; completions are returned only through poll.
 */
#ifndef FERRY_HAL_DMA_H
#define FERRY_HAL_DMA_H

#include <stdint.h>
#include <ferry/export.h>
#include <ferry/dma.h>

FERRY_BEGIN_DECLS

struct ferry_hal_accel_ops;

/** ABI version of ::ferry_hal_dma_ops. */
#define FERRY_HAL_DMA_ABI_VERSION 1

/** DMA engine ops. */
struct ferry_hal_dma_ops {
	/** Required: FERRY_HAL_DMA_ABI_VERSION. */
	uint32_t abi_version;
	/** Required: fill caps and limits (info->size is already checked). */
	int (*query)(struct ferry_device *dev, struct ferry_dma_info *info);
	/**
	 * Required: create a channel; @p opts is never NULL (defaults filled in by the SDK;
	 * ring_size 0 means the engine's default). Store the channel state in *chan.
	 */
	int (*chan_create)(struct ferry_device *dev, const struct ferry_dma_chan_opts *opts,
			   void **chan);
	/**
	 * Required: destroy a channel. Transfers in flight must be finished or abandoned before
	 * this returns; their memory must not be touched afterwards.
	 */
	void (*chan_destroy)(void *chan);
	/**
	 * Required: accept transfers in order until the ring is full. Every transfer accepted
	 * (within the returned count) completes exactly once through poll(), with its own
	 * status; none that was not accepted ever does. Transfers within the limits query()
	 * declared must be accepted and executed (the SDK refuses the others before they get
	 * here). With FERRY_DMA_CAP_FENCE, FERRY_XFER_F_FENCE follows the one rule written at
	 * the flag (ferry/dma.h).
	 * @return number accepted (0..n) or a negative errno (nothing accepted).
	 */
	int (*submit)(void *chan, struct ferry_xfer *const *xfers, uint32_t n);
	/**
	 * Required: return up to @p max completed transfers, status set, in completion order.
	 * @return number returned or a negative errno.
	 */
	int (*poll)(void *chan, struct ferry_xfer **done, uint32_t max);
	/**
	 * Optional: the accel operations and fused chains this engine executes
	 * (ferry/hal/accel.h). NULL: the engine only moves data; the SDK's software engine
	 * runs every accel operation.
	 */
	const struct ferry_hal_accel_ops *accel;
};

/**
 * @brief The errno that stands for a failed transfer status, for a backend reporting the
 *        failure of a domain operation or an accel descriptor it ran as a transfer.
 * @param[in] status a transfer status.
 * @retval 0 FERRY_XFER_SUCCESS.
 * @retval -EFAULT FERRY_XFER_INVALID_SRC_ADDR, FERRY_XFER_INVALID_DST_ADDR,
 *         FERRY_XFER_PAGE_FAULT (an address not mapped or not permitted).
 * @retval -EIO FERRY_XFER_BUS_READ_ERROR, FERRY_XFER_BUS_WRITE_ERROR,
 *         FERRY_XFER_DATA_POISONED, and any value that is not a defined status.
 * @retval -ECANCELED FERRY_XFER_NOT_ATTEMPTED.
 */
FERRY_API int ferry_hal_xfer_status_errno(enum ferry_xfer_status status);

FERRY_END_DECLS

#endif /* FERRY_HAL_DMA_H */
