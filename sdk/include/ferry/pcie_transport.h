/**
 * @file ferry/pcie_transport.h
 * @brief The built-in memory-based NVMe transport "pcie": one NVMe controller per PCI function
 * of a device's PCIe endpoint class (ferry/hal/pcie_ep.h).
 *
 * Create it with ferry_transport_create("pcie", opts) (or ferry_endpoint_create() with
 * transport = "pcie") where opts->device is a device whose backend has the PCIe endpoint
 * class. It is registered with the transport registry on first use of the registry; nothing
 * needs to be called to make the name known, and no other plugin can take the name
 * (ferry/transport.h, "Built-in plugins").
 *
 * ## What it does
 * - listen(subsystem, "fn=<n>") creates a controller for PCI function n: its host memory
 *   domain is the function's domain (the host's IOVAs as the function sees them), its BAR0
 *   is the controller's register file, and the doorbell range (0x1000 onwards) is declared to
 *   the backend so doorbell writes arrive as notifications;
 * - poll() delivers the host's pending BAR0 accesses (backend poll) to the controller's
 *   register emulation, then polls every controller (which fetches submission entries from
 *   host memory with ferry_memdomain_pull(), describes PRPs/SGLs as host-domain ::ferry_mem
 *   without copying, and pushes completion entries);
 * - interrupts are raised as MSI-X vectors of the function (one vector per completion queue,
 *   chosen by the host at Create I/O CQ time).
 * BAR0 accesses of 4 and 8 bytes go to the registers as they are; a naturally aligned 1- or
 * 2-byte read returns the bytes of the containing 32-bit register. Refused with -EINVAL to the
 * backend (the host sees all ones for a read) and counted in
 * ::ferry_pcie_transport_stats::bad_accesses: a misaligned read of any size (a 2-byte read
 * at an odd offset included), 1- and 2-byte writes, accesses to other BARs or beyond 4 GiB,
 * and whatever the register emulation refuses (ferry_nvme_ctrlr_reg_read()/reg_write()).
 * A doorbell notification with an index at or beyond the number of doorbells declared at
 * attach is ignored and counted in bad_accesses too; a valid one is written to the
 * controller's doorbell register, which validates the queue and value (ferry/nvme.h).
 * The first 8 refused accesses of a function are logged as errors, later ones at debug level.
 *
 * ## Arguments (opts->args, all optional)
 *   io_queues=N     I/O queue pairs per controller, 1..1024 (default 16)
 *   entries=N       maximum queue entries (MQES + 1), 2..65536 (default 1024)
 *   mdts=N          maximum transfer 2^N * 4 KiB, 1..10 (default 5: 128 KiB)
 *   inflight=N      commands executing at once per controller, 8..65536 (default 256)
 *   sgl=<0|1>       advertise and accept SGLs (default 1)
 *   accel=<0|1>     give each controller an accel channel on the device (ferry/accel.h), so
 *                   that Reads and Writes carry a sequence down the bdev stack and the
 *                   device's engine runs (and fuses) the data operations (default 1); 0: the
 *                   bdevs move and transform the data themselves
 *
 * ## Threading and lifetime
 * One thread creates, polls and destroys an instance (the thread that polls the bdevs and
 * domains involved). Destroy detaches every function first (the host's later accesses are
 * answered as an unclaimed BAR), disables the controllers, waits (polling, at most 5 s) for
 * their executing commands, then destroys them.
 */
#ifndef FERRY_PCIE_TRANSPORT_H
#define FERRY_PCIE_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <ferry/export.h>

FERRY_BEGIN_DECLS

struct ferry_transport;
struct ferry_nvme_ctrlr;

/** Registered name of the transport. */
#define FERRY_PCIE_TRANSPORT_NAME "pcie"

/** Counters of one function of a "pcie" transport instance. */
struct ferry_pcie_transport_stats {
	size_t size;           /**< in: sizeof(struct ferry_pcie_transport_stats) */
	uint64_t bar_reads;    /**< BAR0 reads answered */
	uint64_t bar_writes;   /**< BAR0 register writes (doorbells excluded) */
	uint64_t doorbells;    /**< doorbell notifications */
	uint64_t irqs;         /**< MSI-X vectors raised */
	uint64_t bad_accesses; /**< accesses refused (bad size, bad BAR, rejected by the
				    register emulation, or an MSI-X the backend refused) */
};

/**
 * @brief The controller of PCI function @p fn of a "pcie" transport instance.
 * @param[in] transport the instance.
 * @param[in] fn the PCI function number it listens on.
 * @return the controller, or NULL if @p transport is not a "pcie" instance or does not
 *         listen on @p fn. Valid until the instance is destroyed.
 */
FERRY_API struct ferry_nvme_ctrlr *
ferry_pcie_transport_get_ctrlr(const struct ferry_transport *transport, uint32_t fn);

/**
 * @brief Read the counters of function @p fn of a "pcie" transport instance.
 * @param[in] transport the instance.
 * @param[in] fn the PCI function number.
 * @param[in,out] stats stats->size must be set; the rest is filled.
 * @retval 0 success.
 * @retval -EINVAL NULL, not a "pcie" instance, or stats->size is not
 *         sizeof(struct ferry_pcie_transport_stats).
 * @retval -ENOENT the instance does not listen on @p fn.
 */
FERRY_API int ferry_pcie_transport_get_stats(const struct ferry_transport *transport, uint32_t fn,
					     struct ferry_pcie_transport_stats *stats);

FERRY_END_DECLS

#endif /* FERRY_PCIE_TRANSPORT_H */
