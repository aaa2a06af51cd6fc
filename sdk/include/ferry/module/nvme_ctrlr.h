/**
 * @file ferry/module/nvme_ctrlr.h
 * @brief The transport-independent NVMe controller as a transport plugin drives it (module
 * tier): creating controllers, register access, queues, command submission.
 *
 * A controller belongs to one subsystem (<ferry/nvme.h>) and to one transport instance
 * (<ferry/module/transport.h>). It owns the controller registers (CAP, VS, INTMS/INTMC, CC,
 * CSTS, AQA, ASQ, ACQ, doorbells), the admin and I/O queue pairs, features, log pages and
 * asynchronous events.
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
 * ## Threading
 * A controller is not thread-safe: the transport calls every function of one controller
 * (register access, poll, submit) from one thread at a time; see <ferry/nvme.h>.
 */
#ifndef FERRY_MODULE_NVME_CTRLR_H
#define FERRY_MODULE_NVME_CTRLR_H

#include <stddef.h>
#include <stdint.h>
#include <ferry/export.h>
#include <ferry/memdomain.h>
#include <ferry/nvme_spec.h>
#include <ferry/nvme.h>

FERRY_BEGIN_DECLS

struct ferry_bdev;
struct ferry_accel_chan;
struct ferry_transport;
struct ferry_nvme_subsystem;
struct ferry_nvme_ctrlr;

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
	uint32_t version;                    /**< FERRY_NVME_VS_1_4 (default; the only one offered:
						  FERRY_NVME_VS_2_0 is refused with -ENOTSUP until
						  what 2.0 mandates is implemented) */
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

/** @brief The transport_ctx given at creation. */
FERRY_API void *ferry_nvme_ctrlr_get_transport_ctx(const struct ferry_nvme_ctrlr *ctrlr);

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

FERRY_END_DECLS

#endif /* FERRY_MODULE_NVME_CTRLR_H */
