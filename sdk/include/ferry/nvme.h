/**
 * @file ferry/nvme.h
 * @brief The NVMe subsystem as an integrator builds it: subsystems, namespaces backed by
 * bdevs, and what can be read of their controllers (ID, counters).
 *
 * Controllers are created and driven by transports (<ferry/transport.h>); the functions a
 * transport plugin calls (create, register access, queues, command submission) are the
 * module tier, <ferry/module/nvme_ctrlr.h>.
 *
 * ## Objects
 * - A **subsystem** has an NQN, a serial and model number, a firmware revision, and
 *   namespaces 1..N, each backed by a bdev (ferry/bdev.h) that the subsystem claims.
 * - A **controller** belongs to one subsystem and to one transport instance
 *   (ferry/transport.h). It owns the controller registers (CAP, VS, INTMS/INTMC, CC, CSTS,
 *   AQA, ASQ, ACQ, doorbells), the admin and I/O queue pairs, features, log pages and
 *   asynchronous events.
 *
 * ## Status codes
 * Every command completes with the status the specification names (ferry/nvme_spec.h):
 * invalid opcode, field, queue identifier, queue size, interrupt vector, namespace, LBA
 * range, PRP offset, SGL type/length/count, log page, compare failure, data transfer error...
 * A failing command is also recorded in the Error Information log page.
 *
 * ## Reset and shutdown
 * Clearing CC.EN resets the controller: fetching stops, commands already executing finish
 * (their completions are dropped), then every I/O queue is deleted and CSTS.RDY reads 0. A
 * write the host saw completed is therefore never lost or overwritten by a late command.
 * CC.SHN stops fetching and waits for executing commands (their completions are posted); a
 * normal shutdown (SHN = 01b) then flushes every namespace, an abrupt one (10b) does not; then
 * CSTS.SHST reads complete. The controller fetches nothing more until the host resets it.
 *
 * ## Threading
 * A controller is not thread-safe: the transport calls every function of one controller
 * (register access, poll, submit) from one thread at a time, the same thread that polls the
 * memory domains and bdevs involved. A subsystem, its namespaces and all its controllers form
 * one unit driven from one thread at a time (creating or destroying a controller, adding or
 * removing a namespace and polling any of its controllers must not run concurrently);
 * different subsystems are independent and may be polled from different threads.
 */
#ifndef FERRY_NVME_H
#define FERRY_NVME_H

#include <stddef.h>
#include <stdint.h>
#include <ferry/export.h>
#include <ferry/memdomain.h>
#include <ferry/nvme_spec.h>

FERRY_BEGIN_DECLS

struct ferry_bdev;
struct ferry_accel_chan;
struct ferry_transport;
struct ferry_nvme_subsystem;
struct ferry_nvme_ctrlr;

/** Maximum length of an NQN, excluding the NUL (NVMe: 223 bytes). */
#define FERRY_NVME_NQN_MAX 223

/** Options of ferry_nvme_subsystem_create(). */
struct ferry_nvme_subsystem_opts {
	size_t size;                  /**< sizeof(struct ferry_nvme_subsystem_opts) */
	const char *nqn;              /**< required; 1..FERRY_NVME_NQN_MAX characters, unique */
	const char *serial;           /**< serial number, up to 20 ASCII characters ("" if NULL) */
	const char *model;            /**< model number, up to 40 ("Ferry NVMe" if NULL) */
	const char *firmware_rev;     /**< firmware revision, up to 8 (library version if NULL) */
	uint16_t vendor_id;           /**< PCI vendor ID reported in Identify */
	uint16_t subsystem_vendor_id; /**< PCI subsystem vendor ID reported in Identify */
	uint32_t max_namespaces;      /**< highest NSID, 1..1024 (0 = 32) */
};

/**
 * @brief Create a subsystem.
 * @retval 0 success.
 * @retval -EINVAL bad options (size, NQN missing or too long, a string too long, non-printable
 *         characters, max_namespaces out of range).
 * @retval -EEXIST a subsystem with this NQN exists.
 * @retval -ENOMEM out of memory.
 */
FERRY_API int ferry_nvme_subsystem_create(const struct ferry_nvme_subsystem_opts *opts,
					  struct ferry_nvme_subsystem **out);

/**
 * @brief Destroy a subsystem: removes its namespaces (releasing their bdevs).
 * @retval 0 destroyed (NULL is a no-op).
 * @retval -EBUSY a controller still exists.
 */
FERRY_API int ferry_nvme_subsystem_destroy(struct ferry_nvme_subsystem *subsys);

/** @brief The subsystem's NQN. */
FERRY_API const char *ferry_nvme_subsystem_get_nqn(const struct ferry_nvme_subsystem *subsys);

/** Options of ferry_nvme_subsystem_add_ns(). */
struct ferry_nvme_ns_opts {
	size_t size;             /**< sizeof(struct ferry_nvme_ns_opts) */
	struct ferry_bdev *bdev; /**< required; claimed by the subsystem */
	uint32_t nsid;           /**< 1..max_namespaces, or 0 for the lowest free NSID */
	uint8_t nguid[16];       /**< namespace GUID; all zero = derived from NQN and NSID */
	uint8_t uuid[16];        /**< namespace UUID; all zero = derived from NQN and NSID */
};

/**
 * @brief Add a namespace. Controllers of the subsystem record it in their Changed Namespace
 * List and send a "namespace attribute changed" notice if the host enabled it.
 * The bdev's data block size must be a power of two >= 512; interleaved metadata becomes an
 * extended LBA format; separate metadata is not supported.
 * @param[out] nsid_out the NSID used (may be NULL).
 * @retval 0 success.
 * @retval -EINVAL bad options or an unsupported block format.
 * @retval -ENOTSUP the bdev has separate (non-interleaved) metadata.
 * @retval -EEXIST the NSID is in use.
 * @retval -ENOSPC no free NSID.
 * @retval -EBUSY the bdev is claimed by someone else.
 */
FERRY_API int ferry_nvme_subsystem_add_ns(struct ferry_nvme_subsystem *subsys,
					  const struct ferry_nvme_ns_opts *opts, uint32_t *nsid_out);

/**
 * @brief Remove namespace @p nsid and release its bdev (with the same notice as add).
 * @retval 0 removed; -ENOENT no such namespace; -EBUSY commands on it are executing.
 */
FERRY_API int ferry_nvme_subsystem_remove_ns(struct ferry_nvme_subsystem *subsys, uint32_t nsid);

/** @brief The bdev behind namespace @p nsid, or NULL. */
FERRY_API struct ferry_bdev *ferry_nvme_subsystem_get_ns_bdev(const struct ferry_nvme_subsystem *subsys,
							       uint32_t nsid);

/** @brief Controller ID. */
FERRY_API uint16_t ferry_nvme_ctrlr_get_cntlid(const struct ferry_nvme_ctrlr *ctrlr);

/** @brief The subsystem of @p ctrlr. */
FERRY_API struct ferry_nvme_subsystem *ferry_nvme_ctrlr_get_subsystem(const struct ferry_nvme_ctrlr *ctrlr);

/** Counters of a controller (ferry_nvme_ctrlr_get_stats()). */
struct ferry_nvme_ctrlr_stats {
	size_t size;              /**< in: sizeof(struct ferry_nvme_ctrlr_stats) */
	uint64_t admin_cmds;      /**< admin commands completed */
	uint64_t io_cmds;         /**< I/O commands completed */
	uint64_t errors;          /**< commands completed with a non-zero status */
	uint64_t bytes_read;      /**< data bytes read by the host */
	uint64_t bytes_written;   /**< data bytes written by the host */
	uint64_t irqs;            /**< interrupts raised */
	uint64_t doorbell_errors; /**< invalid doorbell writes */
	uint64_t cq_full_stalls;  /**< fetches deferred because a completion queue was full */
	uint64_t resets;          /**< controller resets completed */
};

/**
 * @brief Read the counters of @p ctrlr.
 * @retval 0 success; -EINVAL NULL or stats->size smaller than this library's structure.
 */
FERRY_API int ferry_nvme_ctrlr_get_stats(const struct ferry_nvme_ctrlr *ctrlr,
					 struct ferry_nvme_ctrlr_stats *stats);

/**
 * @brief Human-readable name of a 15-bit NVMe status (SCT << 8 | SC).
 * @return a static string; never NULL ("unknown status" for values Ferry does not name).
 */
FERRY_API const char *ferry_nvme_status_str(uint16_t status);

FERRY_END_DECLS

#endif /* FERRY_NVME_H */
