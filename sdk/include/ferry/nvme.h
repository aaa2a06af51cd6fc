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
 * A subsystem, its namespaces and all its controllers form one unit driven from one thread
 * at a time (creating or destroying a controller, adding or removing a namespace, register
 * access, polling and the admin queue of any of its controllers must not run concurrently);
 * different subsystems are independent and may be driven from different threads.
 * Relaxation for message-based transports: the controllers of one subsystem may each have
 * their own admin thread if the caller serialises, among themselves, the subsystem-level
 * calls (create/destroy a controller, ferry_nvme_subsystem_find_ctrlr()); adding or removing
 * a namespace updates every controller's admin state (Changed Namespace List, events) and so
 * must still not run concurrently with any of their admin threads.
 * - A memory-based (PCIe) controller is not thread-safe: every function of it runs on that
 *   one thread, the same thread that polls the memory domains and bdevs involved.
 * - A message-based (NVMe-oF) controller adds one exception: each I/O queue (qid >= 1) may
 *   be owned by its own thread (a poll group), see <ferry/module/nvme_ctrlr.h>. The counters
 *   (ferry_nvme_ctrlr_get_stats()) may then be read from the subsystem's thread while I/O
 *   runs; they are each exact, not a snapshot taken at one instant.
 */
#ifndef FERRY_NVME_H
#define FERRY_NVME_H

#include <stddef.h>
#include <stdint.h>
#include <ferry/export.h>
#include <ferry/memdomain.h>
#include <ferry/nvme_spec.h>
#include <ferry/nvmf_spec.h>

FERRY_BEGIN_DECLS

struct ferry_bdev;
struct ferry_accel_chan;
struct ferry_transport;
struct ferry_nvme_subsystem;
struct ferry_nvme_ctrlr;

/** Maximum length of an NQN, excluding the NUL (NVMe: 223 bytes). */
#define FERRY_NVME_NQN_MAX 223

/** @name Subsystem types (::ferry_nvme_subsystem_opts::type)
 * @{ */
#define FERRY_NVME_SUBSYS_NVM 0       /**< an NVM subsystem: namespaces, I/O controllers */
#define FERRY_NVME_SUBSYS_DISCOVERY 1 /**< an NVMe-oF discovery subsystem (no namespaces) */
/** @} */

/**
 * @brief Discovery log source of a discovery subsystem: fill up to @p max entries (one per
 * listener x subsystem the host may see) and the counts. Called from the thread of the admin
 * queue of one of the subsystem's controllers, each time a host reads the Discovery log page.
 * @param[in] ctx ::ferry_nvme_subsystem_opts::disc_ctx.
 * @param[out] entries room for @p max entries, zeroed by the caller (NULL when @p max is 0).
 * @param[in] max entries that fit (0: only count).
 * @param[out] count the total number of entries, also when it is more than @p max.
 * @param[out] genctr generation counter: changes whenever the set of entries changes.
 * @return 0, or a negative errno (the Get Log Page then completes with Internal Error).
 */
typedef int (*ferry_nvme_disc_log_cb)(void *ctx, struct ferry_nvmf_disc_entry *entries,
				       uint32_t max, uint32_t *count, uint64_t *genctr);

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
	/**
	 * FERRY_NVME_SUBSYS_NVM (0) or FERRY_NVME_SUBSYS_DISCOVERY. A discovery subsystem has
	 * no namespaces (add_ns: -EINVAL) and only message-based controllers; its NQN need not
	 * be unique: several transports may each create their own discovery subsystem with
	 * the well-known FERRY_NVMF_DISCOVERY_NQN (NVM subsystem NQNs stay unique, and an NVM
	 * subsystem may not take the NQN of a discovery one or the other way round).
	 */
	uint32_t type;
	/** Discovery subsystems: the source of the Discovery log page (required for them,
	 *  must be NULL for an NVM subsystem). */
	ferry_nvme_disc_log_cb disc_log;
	void *disc_ctx; /**< handed to disc_log */
};

/**
 * @brief Create a subsystem.
 * @param[in] opts the options (the strings are copied).
 * @param[out] out the subsystem, to be released with ferry_nvme_subsystem_destroy().
 * @retval 0 success.
 * @retval -EINVAL bad options (size, NQN missing or too long, a string too long, non-printable
 *         characters, max_namespaces out of range, unknown type, disc_log missing for a
 *         discovery subsystem or given for an NVM one).
 * @retval -EEXIST a subsystem with this NQN exists (discovery subsystems may share one).
 * @retval -ENOMEM out of memory.
 */
FERRY_API int ferry_nvme_subsystem_create(const struct ferry_nvme_subsystem_opts *opts,
					  struct ferry_nvme_subsystem **out);

/**
 * @brief Destroy a subsystem: removes its namespaces (releasing their bdevs).
 * @param[in] subsys the subsystem; invalid after a return of 0.
 * @retval 0 destroyed (NULL is a no-op).
 * @retval -EBUSY a controller still exists.
 */
FERRY_API int ferry_nvme_subsystem_destroy(struct ferry_nvme_subsystem *subsys);

/**
 * @brief The subsystem's NQN.
 * @param[in] subsys the subsystem.
 * @return the NQN, valid while the subsystem exists; "" for NULL.
 */
FERRY_API const char *ferry_nvme_subsystem_get_nqn(const struct ferry_nvme_subsystem *subsys);

/**
 * @brief The subsystem's type.
 * @param[in] subsys the subsystem.
 * @return FERRY_NVME_SUBSYS_NVM or FERRY_NVME_SUBSYS_DISCOVERY; NVM for NULL.
 */
FERRY_API uint32_t ferry_nvme_subsystem_get_type(const struct ferry_nvme_subsystem *subsys);

/**
 * @brief The controller of @p subsys with ID @p cntlid (the I/O queue Connect names the
 * controller its admin queue created). Call it from the thread that creates and destroys
 * the subsystem's controllers.
 * @param[in] subsys the subsystem.
 * @param[in] cntlid the controller ID.
 * @return the controller, or NULL (no such controller, or NULL @p subsys).
 */
FERRY_API struct ferry_nvme_ctrlr *ferry_nvme_subsystem_find_ctrlr(struct ferry_nvme_subsystem *subsys,
								   uint16_t cntlid);

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
 * @param[in] subsys the subsystem (an NVM subsystem, not a discovery one).
 * @param[in] opts the options; opts->bdev is claimed until the namespace is removed.
 * @param[out] nsid_out the NSID used (may be NULL).
 * @retval 0 success.
 * @retval -EINVAL NULL argument, bad options, a discovery subsystem, or an unsupported block
 *         format.
 * @retval -ENOMEM out of memory.
 * @retval -ENOTSUP the bdev has separate (non-interleaved) metadata.
 * @retval -EEXIST the NSID is in use.
 * @retval -ENOSPC no free NSID.
 * @retval -EBUSY the bdev is claimed by someone else.
 */
FERRY_API int ferry_nvme_subsystem_add_ns(struct ferry_nvme_subsystem *subsys,
					  const struct ferry_nvme_ns_opts *opts, uint32_t *nsid_out);

/**
 * @brief Remove namespace @p nsid and release its bdev (with the same notice as add).
 * I/O queues of message-based controllers read the namespace table from their own threads
 * without a lock: a namespace is removed only while no such I/O queue of any controller of
 * the subsystem is connected (adding one is safe at any time).
 * @param[in] subsys the subsystem.
 * @param[in] nsid the namespace.
 * @retval 0 removed.
 * @retval -ENOENT no such namespace (or NULL @p subsys).
 * @retval -EBUSY commands on it are executing, or an I/O queue of a message-based
 *         controller of the subsystem is connected.
 */
FERRY_API int ferry_nvme_subsystem_remove_ns(struct ferry_nvme_subsystem *subsys, uint32_t nsid);

/**
 * @brief The bdev behind a namespace.
 * @param[in] subsys the subsystem.
 * @param[in] nsid the namespace.
 * @return the bdev, or NULL (no such namespace, or NULL @p subsys).
 */
FERRY_API struct ferry_bdev *ferry_nvme_subsystem_get_ns_bdev(const struct ferry_nvme_subsystem *subsys,
							       uint32_t nsid);

/**
 * @brief Controller ID.
 * @param[in] ctrlr the controller.
 * @return its CNTLID; 0 for NULL.
 */
FERRY_API uint16_t ferry_nvme_ctrlr_get_cntlid(const struct ferry_nvme_ctrlr *ctrlr);

/**
 * @brief The subsystem of a controller.
 * @param[in] ctrlr the controller.
 * @return the subsystem; NULL for NULL.
 */
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
 * @param[in] ctrlr the controller.
 * @param[in,out] stats stats->size must be set; the rest is filled.
 * @retval 0 success; -EINVAL NULL, or stats->size is not sizeof(struct ferry_nvme_ctrlr_stats).
 */
FERRY_API int ferry_nvme_ctrlr_get_stats(const struct ferry_nvme_ctrlr *ctrlr,
					 struct ferry_nvme_ctrlr_stats *stats);

/**
 * @brief Human-readable name of a 15-bit NVMe status (SCT << 8 | SC).
 * @param[in] status the status; bits above the low 11 are ignored.
 * @return a static string; never NULL ("unknown status" for values Ferry does not name).
 */
FERRY_API const char *ferry_nvme_status_str(uint16_t status);

FERRY_END_DECLS

#endif /* FERRY_NVME_H */
