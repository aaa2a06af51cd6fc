/**
 * @file ferry/nvme.h
 * @brief The transport-independent NVMe controller: subsystems, namespaces backed by bdevs,
 * controllers with their registers, queues, admin and NVM command sets.
 *
 * ## Objects
 * - A **subsystem** has an NQN, a serial and model number, a firmware revision, and
 *   namespaces 1..N, each backed by a bdev (ferry/bdev.h) that the subsystem claims.
 * - A **controller** belongs to one subsystem and to one transport instance
 *   (ferry/transport.h). It owns the controller registers (CAP, VS, INTMS/INTMC, CC, CSTS,
 *   AQA, ASQ, ACQ, doorbells), the admin and I/O queue pairs, features, log pages and
 *   asynchronous events.
 *
 * ## Memory-based transports (PCIe)
 * The transport forwards BAR0 accesses to ferry_nvme_ctrlr_reg_read()/reg_write() (doorbell
 * writes included) and calls ferry_nvme_ctrlr_poll() from its polling thread. Submission and
 * completion queues live in host memory; the controller reads entries and PRP lists / SGL
 * segments with ferry_memdomain_pull() and writes completion entries with
 * ferry_memdomain_push() on the host memory domain given at creation (the PCI function's
 * IOMMU view), so it never touches host memory any other way. Command data is described, not
 * copied: PRPs and SGLs become a ::ferry_mem in the host domain that is handed to the bdev.
 * Interrupts are raised through the transport's raise_irq op after the completion entry has
 * been written.
 *
 * ## Message-based transports (TCP, RDMA)
 * The transport creates queues with ferry_nvme_ctrlr_connect_queue(), delivers each command
 * capsule with ferry_nvme_ctrlr_submit() together with the command's data descriptor, and
 * receives each completion through its send_completion op. Registers are accessed with the
 * same reg_read/reg_write functions (Property Get/Set).
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

/** Controller option flags (::ferry_nvme_ctrlr_opts::flags). */
#define FERRY_NVME_CTRLR_F_NO_SGL (1u << 0)        /**< do not advertise or accept SGLs */
#define FERRY_NVME_CTRLR_F_NONCONTIG_OK (1u << 1)  /**< CAP.CQR = 0 (still only contiguous
						       queues are accepted: PC = 0 gets
						       Invalid Field) */

/** Options of ferry_nvme_ctrlr_create(). Zero values select the documented defaults. */
struct ferry_nvme_ctrlr_opts {
	size_t size;                         /**< sizeof(struct ferry_nvme_ctrlr_opts) */
	struct ferry_nvme_subsystem *subsys; /**< required */
	struct ferry_transport *transport;   /**< required: the transport instance */
	void *transport_ctx;                 /**< handed back in every transport op */
	/** Memory-based transports: the PCI function's host memory domain (required). */
	struct ferry_memdomain *host_domain;
	void *host_domain_ctx;               /**< domain_ctx of every host ::ferry_mem */
	uint16_t cntlid;                     /**< controller ID (0 = next free, from 1) */
	uint32_t max_queue_entries;          /**< MQES + 1, 2..65536 (0 = 1024) */
	uint16_t max_io_queues;              /**< I/O SQ/CQ pairs, 1..1024 (0 = 16) */
	uint16_t num_vectors;                /**< interrupt vectors, 1..2048 (0 = max_io_queues + 1) */
	uint8_t mdts;                        /**< max transfer = 2^mdts * min page, 1..10 (0 = 5) */
	uint8_t mpsmax;                      /**< CAP.MPSMAX, 0..4 (MPSMIN is 0: 4 KiB) */
	uint8_t timeout;                     /**< CAP.TO in 500 ms units (0 = 20) */
	uint32_t version;                    /**< FERRY_NVME_VS_1_4 (default) or FERRY_NVME_VS_2_0 */
	uint32_t max_inflight;               /**< commands executing at once, 8..65536 (0 = 256) */
	uint32_t flags;                      /**< FERRY_NVME_CTRLR_F_* */
	/**
	 * Optional: an accel channel (ferry/accel.h) of the polling thread. When set, every
	 * Read and Write carries a new sequence on it down the bdev stack (virtual bdevs append
	 * their operations, the terminal bdev finishes it, see ferry/bdev.h), and
	 * ferry_nvme_ctrlr_poll() polls the channel. NULL: bdevs move the data themselves.
	 */
	struct ferry_accel_chan *accel_chan;
};

/**
 * @brief Create a controller in a subsystem. It starts disabled (CSTS.RDY = 0).
 * @retval 0 success.
 * @retval -EINVAL bad options (missing subsystem/transport, a memory-based transport without
 *         host domain, a value out of range).
 * @retval -EEXIST the cntlid is in use in the subsystem.
 * @retval -ENOMEM out of memory.
 */
FERRY_API int ferry_nvme_ctrlr_create(const struct ferry_nvme_ctrlr_opts *opts,
				      struct ferry_nvme_ctrlr **out);

/**
 * @brief Destroy a controller. Disable it and poll until CSTS.RDY = 0 first when commands may
 * be executing.
 * @retval 0 destroyed (NULL is a no-op).
 * @retval -EBUSY commands or transfers are still executing.
 */
FERRY_API int ferry_nvme_ctrlr_destroy(struct ferry_nvme_ctrlr *ctrlr);

/** @brief Controller ID. */
FERRY_API uint16_t ferry_nvme_ctrlr_get_cntlid(const struct ferry_nvme_ctrlr *ctrlr);

/** @brief The transport_ctx given at creation. */
FERRY_API void *ferry_nvme_ctrlr_get_transport_ctx(const struct ferry_nvme_ctrlr *ctrlr);

/** @brief The subsystem of @p ctrlr. */
FERRY_API struct ferry_nvme_subsystem *ferry_nvme_ctrlr_get_subsystem(const struct ferry_nvme_ctrlr *ctrlr);

/**
 * @brief Size in bytes of the register space (BAR0) the controller decodes: the registers
 * plus one SQ tail and one CQ head doorbell per queue, rounded up to a power of two (>= 16 KiB).
 */
FERRY_API uint32_t ferry_nvme_ctrlr_get_bar_size(const struct ferry_nvme_ctrlr *ctrlr);

/**
 * @brief Read a controller register.
 * @param[in] offset byte offset in BAR0, naturally aligned to @p size.
 * @param[in] size 4, or 8 for the 64-bit registers (CAP, ASQ, ACQ).
 * @param[out] val the value (reserved registers and doorbells read 0).
 * @retval 0 success.
 * @retval -EINVAL NULL, a size other than 4/8, a misaligned offset, an 8-byte access to a
 *         32-bit register, or an offset beyond the BAR (logged).
 */
FERRY_API int ferry_nvme_ctrlr_reg_read(struct ferry_nvme_ctrlr *ctrlr, uint32_t offset,
					uint32_t size, uint64_t *val);

/**
 * @brief Write a controller register (doorbells included). Writes to read-only and reserved
 * registers are ignored.
 *
 * Doorbell writes are validated; an invalid one is ignored (the queue keeps its state),
 * counted in ::ferry_nvme_ctrlr_stats::doorbell_errors, recorded in the Error Information log
 * and reported as an asynchronous error event if the host has one outstanding:
 * - a doorbell of a queue that does not exist: "invalid doorbell register";
 * - an SQ tail >= the queue size, or one that adds more entries than the queue has free (the
 *   entries from the controller's head to the current tail are still in use: moving the tail
 *   over them would submit stale entries again), or a CQ head >= the queue size or one that
 *   frees entries never posted: "invalid doorbell write value".
 * Doorbell writes while the controller is not ready (or resetting, or after a fatal error)
 * are ignored without an event.
 * @retval 0 success (including ignored writes).
 * @retval -EINVAL same access rules as ferry_nvme_ctrlr_reg_read().
 */
FERRY_API int ferry_nvme_ctrlr_reg_write(struct ferry_nvme_ctrlr *ctrlr, uint32_t offset,
					 uint32_t size, uint64_t val);

/**
 * @brief Do the controller's work: poll the host domain (and the accel channel, if any),
 * finish a pending reset/shutdown,
 * fetch up to @p max new commands from the submission queues whose doorbells moved (round
 * robin, never more than the completion queue has room for), and raise coalesced interrupts.
 * @return number of commands fetched (>= 0), or a negative errno (-EINVAL: NULL).
 */
FERRY_API int ferry_nvme_ctrlr_poll(struct ferry_nvme_ctrlr *ctrlr, uint32_t max);

/**
 * @brief Message-based transports: create queue pair @p qid (0 = admin) with @p entries
 * entries. Memory-based controllers create queues through admin commands instead.
 * @retval 0 created; -EINVAL bad qid/size or memory-based controller; -EEXIST exists.
 */
FERRY_API int ferry_nvme_ctrlr_connect_queue(struct ferry_nvme_ctrlr *ctrlr, uint16_t qid,
					     uint32_t entries);

/**
 * @brief Message-based transports: remove queue pair @p qid (no command of it may be executing).
 * @retval 0 removed; -ENOENT no such queue; -EBUSY commands executing.
 */
FERRY_API int ferry_nvme_ctrlr_disconnect_queue(struct ferry_nvme_ctrlr *ctrlr, uint16_t qid);

/**
 * @brief Message-based transports: execute one command capsule.
 * @param[in] sqe the command (copied).
 * @param[in] data the command's data: where write data is / where read data goes, exactly the
 *            command's transfer length, in any domain the bdevs reach (system, RDMA...). NULL
 *            or no segments for commands without data. Must stay valid until completion.
 *            Segment lengths whose sum differs from the transfer length, or overflows 64
 *            bits, complete the command with Data SGL Length Invalid.
 * @param[in] cmd_ctx handed back with the completion (send_completion op).
 * @retval 0 accepted: send_completion will be called exactly once for it (possibly before
 *         this returns).
 * @retval -EINVAL bad arguments (NULL, data with segments but no iovec array) or a
 *         memory-based controller.
 * @retval -ENOENT the queue does not exist.
 * @retval -EAGAIN the controller is not ready (CSTS.RDY = 0) or is shutting down.
 * @retval -EBUSY the queue already has as many commands executing as it has entries.
 */
FERRY_API int ferry_nvme_ctrlr_submit(struct ferry_nvme_ctrlr *ctrlr, uint16_t qid,
				      const struct ferry_nvme_sqe *sqe, const struct ferry_mem *data,
				      void *cmd_ctx);

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
