/**
 * @file ferry/hal/pcie_ep.h
 * @brief The PCIe endpoint device class: what a backend implements so Ferry can present a
 * device (an NVMe controller) to the host through one or more PCI functions.
 *
 * Model. The card exposes PCI functions to the host. For each function the backend delivers
 * to the firmware:
 *  - BAR register accesses the host makes (reads and writes, 1/2/4/8 bytes), as calls of the
 *    ::ferry_hal_pcie_ep_handlers the firmware attached; a read is answered synchronously by
 *    the handler's return value;
 *  - doorbell writes as notifications (doorbell index and the value written), for the range
 *    of BAR0 the firmware declared as doorbells at attach time (the backend may coalesce
 *    several writes to one doorbell into the last value);
 *  - MSI-X: the firmware raises a vector toward the host with msix_raise();
 *  - host memory: one memory domain per function (ferry/memdomain.h, type
 *    FERRY_MEMDOMAIN_PCIE) whose addresses are that function's IOVAs.
 *
 * Threading. Handlers run only inside poll(), on the thread that calls it; poll() of one
 * device is called by one thread at a time. msix_raise(), attach() and detach() are called
 * from that same thread (or while no poll() of the device runs): a backend may keep the
 * attachment state its poll() reads without locks.
 *
 * Untrusted input. Offsets and values come from the host: the backend checks that an access
 * lies within the BAR it declared; the firmware (the handler) validates the register
 * semantics.
 */
#ifndef FERRY_HAL_PCIE_EP_H
#define FERRY_HAL_PCIE_EP_H

#include <stdint.h>
#include <ferry/export.h>
#include <ferry/device.h>
#include <ferry/memdomain.h>

FERRY_BEGIN_DECLS

/** ABI version of ::ferry_hal_pcie_ep_ops. */
#define FERRY_HAL_PCIE_EP_ABI_VERSION 2

/** What a device's PCIe endpoint offers. */
struct ferry_hal_pcie_ep_info {
	uint32_t num_functions; /**< PCI functions the device presents (indices 0..n-1) */
	uint32_t bar0_size;     /**< bytes of BAR0 per function */
	uint32_t max_msix;      /**< MSI-X vectors per function */
};

/** Firmware callbacks for one function, called from poll(). */
struct ferry_hal_pcie_ep_handlers {
	/**
	 * Required: the host read @p size bytes (1, 2, 4 or 8) at @p offset of BAR @p bar.
	 * Store the value in @p *val (bytes beyond @p size ignored). Return 0, or a negative
	 * errno to make the backend complete the read with all ones (as a failed PCIe read).
	 */
	int (*bar_read)(void *ctx, uint32_t bar, uint64_t offset, uint32_t size, uint64_t *val);
	/** Required: the host wrote @p val (@p size bytes) at @p offset of BAR @p bar. */
	int (*bar_write)(void *ctx, uint32_t bar, uint64_t offset, uint32_t size, uint64_t val);
	/**
	 * Optional: the host wrote @p value to doorbell @p index (the index counts 4-byte
	 * registers from the doorbell base given at attach). NULL: doorbell writes arrive as
	 * bar_write.
	 */
	void (*doorbell)(void *ctx, uint32_t index, uint32_t value);
};

/** Options of attach(). */
struct ferry_hal_pcie_ep_attach_opts {
	size_t size;                 /**< sizeof(struct ferry_hal_pcie_ep_attach_opts) */
	uint32_t doorbell_offset;    /**< BAR0 offset where doorbells start (NVMe: 0x1000) */
	uint32_t doorbell_count;     /**< number of 4-byte doorbell registers */
	const struct ferry_hal_pcie_ep_handlers *handlers; /**< required; must outlive attach */
	void *ctx;                   /**< passed to every handler */
};

/** PCIe endpoint ops. */
struct ferry_hal_pcie_ep_ops {
	/** Required: FERRY_HAL_PCIE_EP_ABI_VERSION. */
	uint32_t abi_version;
	/** Required: what the endpoint offers. */
	int (*query)(struct ferry_device *dev, struct ferry_hal_pcie_ep_info *info);
	/**
	 * Required: the firmware takes function @p fn: from now on host accesses to its BAR0 are
	 * delivered to @p opts->handlers. -EBUSY if already attached, -EINVAL bad function or
	 * doorbell range.
	 */
	int (*attach)(struct ferry_device *dev, uint32_t fn,
		      const struct ferry_hal_pcie_ep_attach_opts *opts);
	/** Required: stop delivering accesses of @p fn (pending ones are dropped). */
	void (*detach)(struct ferry_device *dev, uint32_t fn);
	/** Required: the memory domain of @p fn's view of host memory (owned by the device). */
	struct ferry_memdomain *(*get_domain)(struct ferry_device *dev, uint32_t fn);
	/**
	 * Required: raise MSI-X vector @p vector of @p fn toward the host. @retval 0 raised;
	 * -EINVAL @p fn or @p vector (>= max_msix) out of range; -ENODEV @p fn is not attached.
	 */
	int (*msix_raise)(struct ferry_device *dev, uint32_t fn, uint16_t vector);
	/**
	 * Required: deliver pending BAR accesses and doorbells of every attached function to
	 * their handlers on the calling thread, at most @p max (0: no limit), in the order the
	 * host made them. Accesses to a function that is not attached complete as to an
	 * unclaimed BAR (reads return all ones). @return number of events handled or -errno.
	 */
	int (*poll)(struct ferry_device *dev, uint32_t max);
};

FERRY_END_DECLS

#endif /* FERRY_HAL_PCIE_EP_H */
