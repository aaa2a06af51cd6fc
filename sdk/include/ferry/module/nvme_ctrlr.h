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
 * ## Fabrics identity
 * A message-based controller reports what its transport binding supports in Identify
 * Controller: IOCCSZ, IORCSZ, ICDOFF, MSDBD, SGLS, FCATT = 0 (dynamic controller model),
 * CNTRLTYPE, MAXCMD, KAS and the SUBNQN; it has no PCIe-only registers or fields (no
 * doorbells, no interrupt vectors). Create/Delete I/O SQ/CQ are not fabrics commands
 * (Invalid Command Opcode); Abort completes with "command not aborted" (dw0 bit 0 = 1).
 * The host's Keep Alive Timeout (Connect KATO, Set Features Keep Alive Timer) is stored and
 * reported (ferry_nvme_ctrlr_get_kato()); the transport enforces it.
 *
 * ## Discovery controllers
 * A controller of a discovery subsystem (FERRY_NVME_SUBSYS_DISCOVERY, <ferry/nvme.h>) has
 * CNTRLTYPE 2, CAP.CSS "admin only", no I/O queues (connect_queue of qid >= 1: -EINVAL) and
 * no namespaces; it serves the Discovery log page (70h) from the subsystem's disc_log source.
 *
 * ## Threading
 * The **admin thread** of a controller runs create/destroy, register access (Property
 * Get/Set), ferry_nvme_ctrlr_poll(), connect_queue/disconnect_queue, set_queue_accel_chan
 * and every submit on queue 0 (admin commands, Keep Alive).
 *
 * A memory-based controller has only that thread.
 *
 * A message-based controller's I/O queue @p qid >= 1 may be owned by another thread (the
 * thread of the poll group serving that connection): ferry_nvme_ctrlr_submit(c, qid, ...),
 * ferry_nvme_ctrlr_poll_queue(c, qid) and the send_completion calls for that qid all run on
 * the owning thread, concurrently with the admin thread and with other I/O queues' threads.
 * The I/O path takes no lock: each I/O queue has its own request pool, counters and accel
 * channel; only rare error paths (the Error Information log) take a mutex. The bdevs under
 * the namespaces must then accept I/O from several threads (<ferry/bdev.h>).
 * - connect_queue(c, qid) happens on the admin thread before the owning thread's first
 *   submit on qid; disconnect_queue(c, qid) on the admin thread after the owning thread has
 *   quiesced the queue (no command executing, no further submit). The transport provides
 *   that ordering (handing the queue over to / back from the poll group through its own
 *   synchronisation).
 * - Reset (CC.EN 1 to 0 via Property Set on the admin thread): the controller marks itself
 *   resetting at once (an atomic flag the I/O path reads: every new submit returns -EAGAIN)
 *   and never touches the I/O queues' state from the admin thread. Commands already
 *   executing on I/O queues complete normally on their threads. The transport then tears
 *   down the I/O connections: each owning thread quiesces its queue, and the admin thread
 *   calls disconnect_queue for it. The reset completes (CSTS.RDY = 0, event
 *   FERRY_NVME_EVENT_DISABLED) at the first ferry_nvme_ctrlr_poll() or disconnect_queue
 *   after the last I/O queue is gone and the admin commands have finished. A shutdown
 *   (CC.SHN) likewise refuses new I/O at once and completes once no I/O queue has a command
 *   executing.
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
	/* ---- message-based (NVMe-oF) controllers; all must be 0 / NULL for memory-based ---- */
	/** The host NQN from the Connect data: required, 1..FERRY_NVME_NQN_MAX characters
	 *  (copied). */
	const char *hostnqn;
	uint8_t hostid[16]; /**< the host identifier from the Connect data */
	/** Keep Alive Timeout from the Connect command, ms (0 = off; at most 3600000, one
	 *  hour). Set Features Keep Alive Timer changes it (rounded up to KAS granularity). */
	uint32_t kato_ms;
	/** I/O queue command capsule size in 16-byte units, 4..65535 (0 = 4: no in-capsule
	 *  data; in-capsule data = (ioccsz - 4) * 16 bytes). */
	uint32_t ioccsz;
	uint32_t iorcsz;    /**< I/O queue response capsule size, 16-byte units, 1..65535 (0 = 1) */
	uint16_t icdoff;    /**< in-capsule data offset, 16-byte units */
	uint8_t msdbd;      /**< maximum SGL data block descriptors per command (0 = 1) */
	/**
	 * Identify SGLS: what the transport's command capsules carry (FERRY_NVME_SGLS_*). 0 =
	 * default: SGLs supported (bits 1:0 = 01b), plus the SGL offset bit (20) when ioccsz
	 * allows in-capsule data. A transport with keyed SGL data blocks (RDMA) sets bit 2
	 * itself. Bits 1:0 must be 01b when given.
	 */
	uint32_t sgls;
	/** 1 = I/O controller, 2 = discovery controller (0: by the subsystem's type; a value
	 *  that contradicts it is -EINVAL). */
	uint8_t cntrltype;
};

/** @name Identify Controller SGLS bits (::ferry_nvme_ctrlr_opts::sgls)
 * @{ */
#define FERRY_NVME_SGLS_SUPPORTED (1u << 0)    /**< bits 1:0 = 01b: SGLs, no alignment rule */
#define FERRY_NVME_SGLS_KEYED (1u << 2)        /**< Keyed SGL Data Block descriptor (RDMA) */
#define FERRY_NVME_SGLS_BIT_BUCKET (1u << 16)  /**< SGL Bit Bucket descriptor */
#define FERRY_NVME_SGLS_OFFSET (1u << 20)      /**< Address may be an offset (in-capsule data) */
#define FERRY_NVME_SGLS_TRANSPORT (1u << 21)   /**< Transport SGL Data Block descriptor */
/** @} */

/**
 * @brief Create a controller in a subsystem. It starts disabled (CSTS.RDY = 0).
 * @param[in] opts the options; the subsystem, transport and domains it names must outlive
 *            the controller.
 * @param[out] out the controller, to be released with ferry_nvme_ctrlr_destroy().
 * @retval 0 success.
 * @retval -EINVAL bad options (missing subsystem/transport, a memory-based transport without
 *         host domain, a value out of range, a fabrics option set for a memory-based
 *         transport, a message-based controller without hostnqn, a memory-based controller
 *         of a discovery subsystem).
 * @retval -EEXIST the cntlid is in use in the subsystem.
 * @retval -ENOMEM out of memory.
 */
FERRY_API int ferry_nvme_ctrlr_create(const struct ferry_nvme_ctrlr_opts *opts,
				      struct ferry_nvme_ctrlr **out);

/**
 * @brief Destroy a controller. Disable it and poll until CSTS.RDY = 0 first when commands may
 * be executing.
 * @param[in] ctrlr the controller; invalid after a return of 0.
 * @retval 0 destroyed (NULL is a no-op).
 * @retval -EBUSY commands or transfers are still executing (on the admin queue or, for a
 *         message-based controller, on an I/O queue not yet quiesced).
 */
FERRY_API int ferry_nvme_ctrlr_destroy(struct ferry_nvme_ctrlr *ctrlr);

/**
 * @brief The host NQN given at creation.
 * @param[in] ctrlr the controller.
 * @return the NQN, valid while the controller exists; "" for memory-based controllers or
 *         NULL.
 */
FERRY_API const char *ferry_nvme_ctrlr_get_hostnqn(const struct ferry_nvme_ctrlr *ctrlr);

/**
 * @brief Copy the host identifier given at creation into @p out.
 * @param[in] ctrlr the controller (NULL: @p out is zeroed).
 * @param[out] out 16 bytes (NULL: nothing is written).
 */
FERRY_API void ferry_nvme_ctrlr_get_hostid(const struct ferry_nvme_ctrlr *ctrlr, uint8_t out[16]);

/**
 * @brief The current Keep Alive Timeout in ms (0 = off): the Connect value, or what the
 * host set last with Set Features Keep Alive Timer. Admin thread.
 * @param[in] ctrlr the controller.
 * @return the timeout in ms; 0 for off, or for NULL.
 */
FERRY_API uint32_t ferry_nvme_ctrlr_get_kato(const struct ferry_nvme_ctrlr *ctrlr);

/**
 * @brief The transport's context of a controller.
 * @param[in] ctrlr the controller.
 * @return the transport_ctx given at creation; NULL for NULL.
 */
FERRY_API void *ferry_nvme_ctrlr_get_transport_ctx(const struct ferry_nvme_ctrlr *ctrlr);

/**
 * @brief Size in bytes of the register space (BAR0) the controller decodes: the registers
 * plus one SQ tail and one CQ head doorbell per queue, rounded up to a power of two (>= 16 KiB).
 * @param[in] ctrlr the controller.
 * @return the size; 0 for NULL.
 */
FERRY_API uint32_t ferry_nvme_ctrlr_get_bar_size(const struct ferry_nvme_ctrlr *ctrlr);

/**
 * @brief Read a controller register.
 * @param[in] ctrlr the controller.
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
 * @param[in] ctrlr the controller.
 * @param[in] offset byte offset in BAR0, naturally aligned to @p size.
 * @param[in] size 4, or 8 for the 64-bit registers.
 * @param[in] val the value written.
 * @retval 0 success (including ignored writes).
 * @retval -EINVAL same access rules as ferry_nvme_ctrlr_reg_read().
 */
FERRY_API int ferry_nvme_ctrlr_reg_write(struct ferry_nvme_ctrlr *ctrlr, uint32_t offset,
					 uint32_t size, uint64_t val);

/**
 * @brief Do the controller's work (admin thread): poll the host domain (and the accel channel,
 * if any) and the namespaces' bdevs (ferry_bdev_poll(): a namespace on a network initiator
 * bdev makes progress; message-based controllers poll them here only while admin-thread
 * commands such as the shutdown flush are executing, the I/O queues poll theirs with
 * ferry_nvme_ctrlr_poll_queue()), finish a pending reset/shutdown, fetch up to @p max new
 * commands from the submission queues whose doorbells moved (round robin, never more than
 * the completion queue has room for), and raise coalesced interrupts.
 * @param[in] ctrlr the controller.
 * @param[in] max most new commands to fetch.
 * @return number of commands fetched (>= 0), or a negative errno (-EINVAL: NULL).
 */
FERRY_API int ferry_nvme_ctrlr_poll(struct ferry_nvme_ctrlr *ctrlr, uint32_t max);

/**
 * @brief Message-based transports: create queue pair @p qid (0 = admin) with @p entries
 * entries (its requests are allocated here). Memory-based controllers create queues through
 * admin commands instead. Admin thread; an I/O queue needs the admin queue and an enabled
 * controller (CSTS.RDY = 1), as Connect requires.
 * @param[in] ctrlr the controller.
 * @param[in] qid 0 for the admin queue, 1..max I/O queues.
 * @param[in] entries queue size, 2..MQES + 1.
 * @retval 0 created.
 * @retval -EINVAL bad qid/size, NULL or memory-based controller, an I/O queue of a discovery
 *         controller.
 * @retval -EAGAIN an I/O queue while the controller is not ready (or resetting, shutting down).
 * @retval -EEXIST exists.
 * @retval -ENOMEM out of memory.
 */
FERRY_API int ferry_nvme_ctrlr_connect_queue(struct ferry_nvme_ctrlr *ctrlr, uint16_t qid,
					     uint32_t entries);

/**
 * @brief Message-based transports: remove queue pair @p qid (no command of it may be
 * executing). Admin thread, after the owning thread quiesced the queue. Its counters are
 * kept in the controller's. A pending reset completes here once the last I/O queue is gone.
 * @param[in] ctrlr the controller.
 * @param[in] qid the queue.
 * @retval 0 removed.
 * @retval -ENOENT no such queue (also for a NULL or memory-based controller).
 * @retval -EBUSY commands executing.
 */
FERRY_API int ferry_nvme_ctrlr_disconnect_queue(struct ferry_nvme_ctrlr *ctrlr, uint16_t qid);

/**
 * @brief Message-based transports: the accel channel (of the thread owning I/O queue @p qid)
 * that carries that queue's Read/Write sequences instead of opts.accel_chan. Admin thread,
 * after connect_queue and before the first submit on the queue. NULL = none (the bdevs move
 * the data themselves).
 * @param[in] ctrlr the controller.
 * @param[in] qid the I/O queue (>= 1).
 * @param[in] chan the channel, or NULL; it must outlive the queue.
 * @retval 0 set; -EINVAL NULL controller, memory-based, or qid 0; -ENOENT queue not connected.
 */
FERRY_API int ferry_nvme_ctrlr_set_queue_accel_chan(struct ferry_nvme_ctrlr *ctrlr, uint16_t qid,
						    struct ferry_accel_chan *chan);

/**
 * @brief Message-based transports: do I/O queue @p qid's work on its owning thread: poll
 * its accel channel and the namespace bdevs it has submitted I/O to (ferry_bdev_poll()).
 * Completions (send_completion) may run from inside.
 * @param[in] ctrlr the controller.
 * @param[in] qid the I/O queue (>= 1).
 * @param[in] max bound passed to the polls (0 is taken as 1).
 * @return work done (>= 0), or a negative errno: -EINVAL NULL / memory-based / qid 0,
 *         -ENOENT queue not connected.
 */
FERRY_API int ferry_nvme_ctrlr_poll_queue(struct ferry_nvme_ctrlr *ctrlr, uint16_t qid,
					  uint32_t max);

/**
 * @brief Message-based transports: execute one command capsule.
 * @param[in] ctrlr the controller.
 * @param[in] qid the queue (0 = admin).
 * @param[in] sqe the command (copied).
 * @param[in] data the command's data: where write data is / where read data goes, exactly the
 *            command's transfer length, in any domain the bdevs reach (system, RDMA...). NULL
 *            or no segments for commands without data. Must stay valid until completion.
 *            Segment lengths whose sum differs from the transfer length, or overflows 64
 *            bits, complete the command with Data SGL Length Invalid.
 * @param[in] cmd_ctx handed back with the completion (send_completion op).
 * Queue 0 on the admin thread, queue @p qid >= 1 on its owning thread (see Threading).
 * @retval 0 accepted: send_completion will be called exactly once for it (possibly before
 *         this returns).
 * @retval -EINVAL bad arguments (NULL, data with segments but no iovec array) or a
 *         memory-based controller.
 * @retval -ENOENT the queue does not exist.
 * @retval -EAGAIN the controller is not ready (CSTS.RDY = 0), is resetting or shutting down.
 * @retval -EBUSY the queue already has as many commands executing as it has entries.
 */
FERRY_API int ferry_nvme_ctrlr_submit(struct ferry_nvme_ctrlr *ctrlr, uint16_t qid,
				      const struct ferry_nvme_sqe *sqe, const struct ferry_mem *data,
				      void *cmd_ctx);

FERRY_END_DECLS

#endif /* FERRY_MODULE_NVME_CTRLR_H */
