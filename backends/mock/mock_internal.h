/*
 * What an extension of the mock DMA engine (the accel engine in mock_accel*.c) needs from it,
 * and nothing more: find the mock device, resolve a ferry_mem to local pointers with the
 * IOMMU checks, run work on the engine thread, and take part in error injection.
 * Everything else about the mock is private to its own files (mock_priv.h).
 */
#ifndef MOCK_INTERNAL_H
#define MOCK_INTERNAL_H

#include <stdint.h>
#include <sys/uio.h>
#include <ferry/memdomain.h>
#include <ferry/dma.h>
#include <ferry/hal/hal.h>

struct mock_dev;
struct ferry_hal_accel_ops;

/* The accel table of the mock engine; defined in mock_accel.c (not linked until it exists). */
extern const struct ferry_hal_accel_ops mock_accel_ops;

/* The mock device behind @p dev, or NULL if @p dev was not opened from the mock backend. */
struct mock_dev *mock_dev_get(struct ferry_device *dev);

/* Device and id of a DMA channel handle (the `void *chan` the HAL DMA ops receive). */
struct mock_dev *mock_chan_dev(void *chan);
uint32_t mock_chan_id(void *chan);

/*
 * Resolve the first @p len bytes of @p mem to local pointers this process may access.
 * @p mem may be in the system domain (NULL or ferry_memdomain_system(); pointers are taken as
 * they are) or in one of @p dev's PCIe function domains (every page is checked against that
 * function's IOMMU table: mapped, inside the IOVA space, READ permission if @p write is 0,
 * WRITE permission if @p write is 1). Physically adjacent pieces are merged.
 * On entry *outcnt is the capacity of @p out (may be 0 with @p out NULL, to only check);
 * on return it is the number of segments the range needs.
 * Returns 0 (FERRY_XFER_SUCCESS) with @p out filled;
 *   FERRY_XFER_INVALID_SRC_ADDR / FERRY_XFER_INVALID_DST_ADDR (by @p write): a domain that is
 *     not this device's, a NULL system pointer, or fewer than @p len bytes described;
 *   FERRY_XFER_PAGE_FAULT: a page is outside the IOVA space, unmapped, or not permitted;
 *   -ENOBUFS: everything is valid but @p out is too small (*outcnt = segments needed).
 * The whole range is checked before returning success: callers check both sides, then move.
 * The pointers stay valid while the device is open (host RAM is mapped for its lifetime).
 * Thread-safe; never blocks.
 */
int mock_resolve(struct mock_dev *dev, const struct ferry_mem *mem, uint64_t len, int write,
		 struct iovec *out, uint32_t *outcnt);

/*
 * Work run on the device's engine thread, interleaved with the DMA rings (FIFO among work
 * items). @p run is called without any engine lock held, at or after @p due_ns
 * (mock_now_ns() clock; 0 = as soon as possible), exactly once unless cancelled. The item
 * must stay valid until it has run or mock_engine_cancel() returned. Items still queued when
 * the device closes are dropped without running. Extensions report their completions
 * themselves (e.g. set a flag their poll reads, with release ordering).
 */
struct mock_work {
	void (*run)(struct mock_work *work);
	uint64_t due_ns;
	struct mock_work *next; /* engine-private */
};

/* Queue @p work on @p dev's engine thread. */
void mock_engine_queue(struct mock_dev *dev, struct mock_work *work);

/* Take @p work off the queue if it has not started (returns 1), else wait until it finished
 * running (returns 0; also if it already ran). Never call it from the work's own run. */
int mock_engine_cancel(struct mock_dev *dev, struct mock_work *work);

/* Monotonic clock of the engine, and the device's per-operation latency (ns). */
uint64_t mock_now_ns(void);
uint64_t mock_latency_ns(struct mock_dev *dev);

/*
 * Count one submitted operation for error injection (ferry/mock.h) and return the status it
 * must complete with (FERRY_XFER_SUCCESS = not injected). @p chan is the DMA channel handle it
 * was submitted on, or NULL (then only FERRY_MOCK_CHAN_ANY rules and random injection apply).
 * Call it once per operation, at submit time, so that injection stays deterministic.
 */
enum ferry_xfer_status mock_inject_take(struct mock_dev *dev, void *chan);

#endif /* MOCK_INTERNAL_H */
