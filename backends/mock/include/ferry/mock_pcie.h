/**
 * @file ferry/mock_pcie.h
 * @brief Host side of the mock backend's PCIe endpoint: how a simulated host process reaches
 * BAR0 of a PCI function (MMIO reads and writes) and waits for its MSI-X interrupts.
 *
 * This header belongs to the mock backend, not to the SDK: firmware uses the HAL PCIe
 * endpoint class (through the "pcie" NVMe transport); the simulated host and tests use this
 * header together with ferry/mock.h (host memory and IOMMU).
 *
 * ## Model
 * BAR0 lives with the firmware: a register read is answered by the firmware's handler, so
 * every host access travels as a request to the device. Each mock device has one
 * "PCIe channel", a memfd separate from the host-memory memfd of ferry/mock.h, holding per PCI
 * function:
 *  - an ordered request ring (FERRY_MOCK_PCIE_RING entries): the host posts {read or write,
 *    offset, size, value}; the firmware's poll() consumes the requests in order and calls the
 *    handlers it attached. Writes are posted (the call returns once the request is queued);
 *    a read waits for its answer. Since the ring is ordered, a read also flushes every write
 *    posted before it, as a PCIe read does. Writes in the doorbell range the firmware declared
 *    reach its doorbell handler.
 *  - one 32-bit counter per MSI-X vector plus one for "any vector", which the firmware bumps
 *    on every msix_raise() and the host waits on (futex on the shared memory).
 *
 * An access must be 1, 2, 4 or 8 bytes, naturally aligned, and lie inside BAR0
 * (FERRY_MOCK_PCIE_BAR0_SIZE bytes); the host side refuses anything else before posting and
 * the device side checks every request again (the ring is writable by the host). A read of a
 * function no firmware attached completes with all ones (an unclaimed BAR).
 *
 * ## Slow or absent firmware
 * Every call that waits is bounded by the handle's timeout (default 1 s,
 * ferry_mock_pcie_host_set_timeout()): a read that is not answered in time returns
 * -ETIMEDOUT with all ones in @p val (the request is abandoned safely: a late answer is
 * discarded), a write that finds the ring full for that long returns -ETIMEDOUT.
 *
 * ## Handing the channel to another process
 * ferry_mock_pcie_fd() gives the channel's fd (close-on-exec, like the host-memory fd): a
 * forked child may use it directly; an exec'd program needs a dup() without FD_CLOEXEC.
 * The host maps it with ferry_mock_pcie_host_open().
 *
 * ## Threading
 * Several host threads may post to the same function at once (the ring is multi-producer).
 * One ferry_mock_pcie_host handle may be shared by the threads of a process.
 */
#ifndef FERRY_MOCK_PCIE_H
#define FERRY_MOCK_PCIE_H

#include <stddef.h>
#include <stdint.h>
#include <ferry/export.h>
#include <ferry/device.h>

FERRY_BEGIN_DECLS

/** Bytes of BAR0 of every function of a mock device (covers an NVMe controller with up to
 *  1024 I/O queue pairs). */
#define FERRY_MOCK_PCIE_BAR0_SIZE 0x4000u
/** MSI-X vectors per function. */
#define FERRY_MOCK_PCIE_MAX_MSIX 256u
/** Entries of each function's request ring. */
#define FERRY_MOCK_PCIE_RING 1024u
/** Vector argument of ferry_mock_pcie_msix_wait(): any vector of the function. */
#define FERRY_MOCK_PCIE_ANY_VECTOR 0xffffu

/** Counters of one function's endpoint, device side (ferry_mock_pcie_get_stats()). */
struct ferry_mock_pcie_stats {
	size_t size;        /**< in: sizeof(struct ferry_mock_pcie_stats) */
	uint64_t reads;     /**< BAR reads answered (by a handler or with all ones) */
	uint64_t writes;    /**< BAR writes delivered to bar_write */
	uint64_t doorbells; /**< writes delivered to the doorbell handler */
	uint64_t msix;      /**< MSI-X vectors raised */
	uint64_t bad;       /**< malformed requests found in the ring (dropped / all ones) */
	uint64_t failed;    /**< reads whose handler failed (answered with all ones) */
	uint64_t unclaimed; /**< accesses while no firmware was attached */
	uint64_t abandoned; /**< reads the host stopped waiting for (timeout) */
	uint64_t reclaimed; /**< ring slots taken back from a host process that died holding
			         them (an unread answer, an unpublished request) */
};

/** Host-side handle on a mock device's PCIe channel (one per mapping). */
struct ferry_mock_pcie_host;

/**
 * @brief The memfd of @p dev's PCIe channel (created on first use).
 * @param[in] dev a device opened from the "mock" backend.
 * @param[out] fd the descriptor; still owned by the device (closed by ferry_device_close()).
 * @retval 0 success.
 * @retval -EINVAL @p dev is not a mock device, or @p fd is NULL.
 * @retval -ENOMEM / other negative errno: the channel could not be created.
 */
FERRY_API int ferry_mock_pcie_fd(struct ferry_device *dev, int *fd);

/**
 * @brief Map a PCIe channel from its fd (in any process).
 * @param[in] fd a descriptor from ferry_mock_pcie_fd() (or a duplicate of it).
 * @param[out] out the handle; release it with ferry_mock_pcie_host_close().
 * @retval 0 success.
 * @retval -EINVAL @p out is NULL or the fd does not hold a valid mock PCIe channel.
 * @retval -ENOMEM out of memory; other negative errno from fstat/mmap.
 */
FERRY_API int ferry_mock_pcie_host_open(int fd, struct ferry_mock_pcie_host **out);

/** @brief Unmap and free a handle (the device is unaffected). NULL is a no-op. */
FERRY_API void ferry_mock_pcie_host_close(struct ferry_mock_pcie_host *host);

/** @brief Number of PCI functions of the channel (0 for NULL). */
FERRY_API unsigned int ferry_mock_pcie_host_fn_count(const struct ferry_mock_pcie_host *host);

/**
 * @brief Set how long a call may wait for the firmware (reads, full ring).
 * @param[in] ns 1 µs .. 600 s.
 * @retval 0 success; -EINVAL NULL or out of range.
 */
FERRY_API int ferry_mock_pcie_host_set_timeout(struct ferry_mock_pcie_host *host, uint64_t ns);

/**
 * @brief Whether firmware currently has function @p fn attached.
 * @return 1 attached, 0 not attached (or bad arguments).
 */
FERRY_API int ferry_mock_pcie_host_attached(const struct ferry_mock_pcie_host *host,
					    unsigned int fn);

/**
 * @brief Read @p size bytes at @p offset of BAR0 of function @p fn (waits for the answer).
 * @param[out] val the value (zero-extended); all ones (of @p size bytes) on any failure after
 *             the request was posted.
 * @retval 0 answered by the firmware.
 * @retval -EINVAL NULL argument, bad function, size not 1/2/4/8, misaligned, outside BAR0
 *         (nothing posted).
 * @retval -EIO the firmware's handler failed the read (or found the request malformed).
 * @retval -ENODEV no firmware has the function attached (unclaimed BAR).
 * @retval -ETIMEDOUT no answer within the timeout (or the ring stayed full).
 */
FERRY_API int ferry_mock_pcie_mmio_read(struct ferry_mock_pcie_host *host, unsigned int fn,
					uint64_t offset, uint32_t size, uint64_t *val);

/**
 * @brief Post a write of @p size bytes of @p val at @p offset of BAR0 of function @p fn.
 * Returns once the request is queued (posted write); the firmware handles requests in order.
 * @retval 0 posted.
 * @retval -EINVAL same access rules as ferry_mock_pcie_mmio_read() (nothing posted).
 * @retval -ETIMEDOUT the ring stayed full for the whole timeout (firmware not polling).
 */
FERRY_API int ferry_mock_pcie_mmio_write(struct ferry_mock_pcie_host *host, unsigned int fn,
					 uint64_t offset, uint32_t size, uint64_t val);

/**
 * @brief Number of times MSI-X vector @p vector of @p fn was raised (wraps at 2^32).
 * @param[in] vector a vector, or FERRY_MOCK_PCIE_ANY_VECTOR for the function's total.
 * @param[out] count the counter.
 * @retval 0 success; -EINVAL bad arguments.
 */
FERRY_API int ferry_mock_pcie_msix_count(const struct ferry_mock_pcie_host *host, unsigned int fn,
					 unsigned int vector, uint32_t *count);

/**
 * @brief Wait until vector @p vector of @p fn has been raised since the caller last saw
 * counter value @p *count (an interrupt that fired before the wait is never missed).
 * @param[in] vector a vector, or FERRY_MOCK_PCIE_ANY_VECTOR.
 * @param[in,out] count in: the last value seen (from ferry_mock_pcie_msix_count() or a
 *                previous wait); out: the current value.
 * @param[in] timeout_ns how long to wait (0: only check); bounded by nothing else.
 * @retval 0 the vector fired (at least once).
 * @retval -ETIMEDOUT it did not fire in time (*count updated anyway).
 * @retval -EINVAL bad arguments.
 */
FERRY_API int ferry_mock_pcie_msix_wait(struct ferry_mock_pcie_host *host, unsigned int fn,
					unsigned int vector, uint32_t *count, uint64_t timeout_ns);

/**
 * @brief Device-side counters of function @p fn.
 * @retval 0 success; -EINVAL not a mock device, bad function, NULL or @p out->size too small.
 */
FERRY_API int ferry_mock_pcie_get_stats(struct ferry_device *dev, unsigned int fn,
					struct ferry_mock_pcie_stats *out);

FERRY_END_DECLS

#endif /* FERRY_MOCK_PCIE_H */
