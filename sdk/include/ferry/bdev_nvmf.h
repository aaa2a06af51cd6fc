/**
 * @file ferry/bdev_nvmf.h
 * @brief The `nvmf` bdev: a terminal bdev that is an NVMe over Fabrics initiator (host). Its
 * blocks are one namespace of a remote NVM subsystem reached over NVMe/TCP or NVMe-oF/RDMA
 * (::ferry_bdev_nvmf_opts::trtype).
 *
 * ## Life cycle
 * ferry_bdev_nvmf_create() connects synchronously, bounded by
 * ::ferry_bdev_nvmf_opts::connect_timeout_ms: the admin queue (ICReq/ICResp, Fabrics Connect,
 * Property Get CAP/VS, Property Set CC.EN, CSTS.RDY within CAP.TO, Identify Controller, Set
 * Features Number of Queues, Identify Namespace) and then each I/O queue (ICReq/ICResp,
 * Connect). A failure names the step and the NVMe status or TermReq in the log and in
 * ferry_last_error(). ferry_bdev_destroy() disconnects (no I/O may be in flight).
 *
 * ## Progress
 * The bdev's connections move only when it is polled: ferry_bdev_poll() (or
 * ferry_bdev_io_poll() of one of its I/Os) on the submitting thread sends queued capsules,
 * receives PDUs and completes I/Os from inside. It never blocks while connected (busy-poll
 * friendly). Keep-alives go out every KATO/2 from the same poll.
 *
 * ## Data
 * I/O in the system domain is sent from and received straight into the I/O's iovecs. I/O in
 * another domain (host memory behind a PCI function), or carrying an accel sequence, goes
 * through a local staging buffer taken from a pool made at creation: a write runs
 * copy(io->mem → local) (appended to the sequence, or a memory-domain pull), then sends the
 * local buffer; a read receives into it and runs copy(local → io->mem) (the sequence reversed,
 * or a push). No allocation happens per I/O; an I/O that finds the pool empty is refused with
 * -ENOMEM (busy: retry later). A staging buffer holds 1 MiB: a larger staged I/O is refused
 * with -EINVAL.
 *
 * ## Large I/O
 * Any I/O the bdev layer accepts is carried: a read, write or compare longer than the
 * controller's largest transfer (MDTS, and 65536 blocks), a Write Zeroes of more than 65536
 * blocks or an Unmap of more than 2^32 - 1 blocks goes out as several commands (parts, whole
 * blocks each, possibly on several queues, sent as command slots free up) and completes once,
 * after its last part: with the first failing part's status (error_block is that part's
 * first block), a staged read's copy-out running once at the end. A connection loss with
 * parts in flight resubmits the whole I/O (every part) once all of them are gone.
 *
 * ## Connection loss
 * A socket error, an end of stream, a TermReq from the controller, a protocol violation by
 * the controller (every PDU and completion is checked; a violation sends an H2CTermReq), an
 * unanswered keep-alive or an I/O command without a completion for 3 x KATO (30 s by default)
 * tears every connection of the bdev down. In-flight I/Os are
 * resubmitted on the new connection up to ::ferry_bdev_nvmf_opts::retry_count times, then
 * fail with -EIO; a write is reported complete only after the controller's completion, so no
 * completed write is lost. Reconnection is attempted from the poll after reconnect_delay_ms,
 * the delay doubling up to 16 times that; an attempt's TCP connect is watched without
 * blocking, and once it is up the rest of the connect sequence blocks the polling thread for
 * at most connect_timeout_ms. Once ctrlr_loss_timeout_ms passed without a connection, queued and new
 * I/Os fail at once with -ENODEV, while attempts continue at the longest delay; a later
 * success brings the bdev back.
 *
 * ## Receive offloads
 * On a NIC with FERRY_HAL_NIC_CAP_DDP (ferry/hal/nic.h), each I/O queue's receive is
 * offloaded after its ICReq/ICResp exchange (a refusal: that queue runs in software), and the
 * largest transfer of a command is capped to what the NIC maps. Every read is mapped to its
 * destination before its command is sent: the I/O's own memory when it is local (or in a
 * domain the NIC places into, such as host memory through the NIC's PCI function: the
 * addresses are translated from the I/O's domain with ferry_memdomain_translate()), else the
 * staging buffer its copy or accel sequence reads. The NIC then places the C2H payload there
 * and verifies the data digest; software copies and checks exactly the bytes the NIC did
 * not (for host memory: pushes them from the staging buffer), and a digest error is a
 * digest error whichever side found it. The mapping is torn down after the command's last
 * PDU, asynchronously: the I/O completes when the NIC released it. A read whose host pages the
 * NIC's function cannot reach is staged as without offload (reason logged, counted). Resync
 * requests of the NIC are answered from the receive machine's PDU boundaries. With
 * FERRY_BDEV_NVMF_F_DDP_VERIFY every digest is also computed in software and a NIC whose
 * claimed verdict is false is caught (ddp_nic_errors; the read fails and is retried).
 *
 * ## NVMe-oF/RDMA
 * With trtype "rdma" each queue is one RC queue pair of the device's RDMA part
 * (<ferry/hal/rdma.h>) set up through its connection manager (the binding's private data: a
 * reject's status is named in the error, an accept's crqsize bounds the commands in flight).
 * Capsules go by SEND from a registered slab, completions come by receive (a completion for
 * a command not in flight, or a second one, is a protocol violation: the connection fails).
 * Data moves by keyed SGLs: an I/O without an accel sequence is RDMA-direct, its own memory
 * named (local memory registered through the map of <ferry/module/rdma.h>, memory of another
 * domain translated into ::ferry_bdev_nvmf_opts::nic_domain first): 0 bytes through SoC
 * buffers (rdma_direct_ios / rdma_direct_bytes). An I/O with a sequence is staged with it
 * fused into the copy into one registered staging buffer (rdma_fused_ios); memory the NIC
 * cannot reach is staged too (rdma_untranslatable, the reason logged, rate limited);
 * FERRY_BDEV_NVMF_F_NO_RDMA_DIRECT stages everything. Small staged writes (and Dataset
 * Management ranges) go in the capsule up to the controller's IOCCSZ. A work completion with
 * an error, a QP error or a disconnect is a connection loss as above. A reconnect attempt
 * runs the whole connect sequence from the poll, bounded by connect_timeout_ms.
 *
 * ## Threading
 * One thread submits and polls a bdev's I/O (as every bdev); create and destroy from any
 * thread while no I/O is in flight.
 */
#ifndef FERRY_BDEV_NVMF_H
#define FERRY_BDEV_NVMF_H

#include <stddef.h>
#include <stdint.h>
#include <ferry/export.h>
#include <ferry/bdev.h>
#include <ferry/device.h>

FERRY_BEGIN_DECLS

/** Options of ferry_bdev_nvmf_create(). Zero the structure, then set what you need. */
struct ferry_bdev_nvmf_opts {
	size_t size;      /**< sizeof(struct ferry_bdev_nvmf_opts) */
	const char *name; /**< bdev name (required, unique) */
	/** A device with the NIC class to connect through (kept open by the caller until the
	 *  bdev is destroyed); NULL: the bdev opens (and closes) a "tcp" device itself. */
	struct ferry_device *nic;
	const char *trtype; /**< "tcp" (NULL = "tcp") or "rdma" (@p nic must then have the NIC
			      class's RDMA part, <ferry/hal/rdma.h>); others: -ENOTSUP */
	const char *addr;   /**< controller address "a.b.c.d:port" or "[v6]:port" (required) */
	const char *subnqn; /**< subsystem NQN (required, < 256 bytes) */
	const char
		*hostnqn; /**< host NQN; NULL: a generated "nqn.2014-08.org.nvmexpress:uuid:" NQN */
	uint32_t nsid;    /**< namespace ID; 0: the first active namespace */
	uint16_t num_io_queues; /**< I/O queues (connections) to open; 0 = 1; capped by the
				      controller's Number of Queues answer */
	uint16_t queue_depth; /**< commands in flight per I/O queue; 0 = 128; capped by CAP.MQES + 1 */
	uint8_t hdgst;        /**< ask for header digests (the controller decides) */
	uint8_t ddgst;        /**< ask for data digests (the controller decides) */
	uint32_t kato_ms;     /**< keep-alive timeout given to Connect; 0 = 10000 */
	uint32_t retry_count; /**< resubmissions of an I/O after a connection loss (0: fail at once) */
	uint32_t reconnect_delay_ms;    /**< first delay before a reconnect attempt; 0 = 100 */
	uint32_t ctrlr_loss_timeout_ms; /**< give up (fail I/O with -ENODEV) after this long
					    without a connection; 0 = 30000 */
	uint32_t connect_timeout_ms; /**< bound of one connect attempt (create, reconnect); 0 = 5000 */
	uint32_t flags;              /**< FERRY_BDEV_NVMF_F_* */
	/** RDMA: the domain through which the NIC reaches memory of I/Os in other domains (host
	 *  memory: the NIC's PCI function domain). An I/O in another domain is translated into
	 *  it and sent from / received into that memory directly (RDMA-direct: no SoC buffer);
	 *  where that is impossible it is staged through a local registered buffer (the reason
	 *  is logged). NULL: only domains the NIC declares are reached directly. */
	struct ferry_memdomain *nic_domain;
};

/** @name Option flags (::ferry_bdev_nvmf_opts::flags)
 * @{ */
/** Do not use the NIC's receive offloads even where it has them. */
#define FERRY_BDEV_NVMF_F_NO_DDP (1u << 0)
/** Debug check of an offload NIC (needs data digests): compute every digest in software too. */
#define FERRY_BDEV_NVMF_F_DDP_VERIFY (1u << 1)
/** RDMA: never send or receive an I/O's memory directly; stage every I/O (a reference run). */
#define FERRY_BDEV_NVMF_F_NO_RDMA_DIRECT (1u << 2)
/** @} */

/** Counters of an nvmf bdev (ferry_bdev_nvmf_get_stats()). */
struct ferry_bdev_nvmf_stats {
	size_t size;            /**< in: sizeof(struct ferry_bdev_nvmf_stats) */
	uint64_t commands;      /**< NVMe commands sent (admin and I/O, retries included) */
	uint64_t bytes_read;    /**< data bytes received for successful reads */
	uint64_t bytes_written; /**< data bytes sent for successful writes */
	uint64_t icd_writes;    /**< writes whose data went in the capsule */
	uint64_t r2ts;          /**< R2Ts served */
	uint64_t h2c_pdus;      /**< H2CData PDUs sent */
	uint64_t c2h_success;   /**< reads completed by a C2HData SUCCESS flag (no CapsuleResp) */
	uint64_t digests_computed;  /**< data digests computed (sent and received) */
	uint64_t digest_errors;     /**< data or header digest mismatches received */
	uint64_t rx_placed_bytes;   /**< read data received straight into its destination */
	uint64_t rx_copied_bytes;   /**< read data copied out of the receive buffer */
	uint64_t staged_ios;        /**< I/Os that went through a local staging buffer */
	uint64_t staged_bytes;      /**< bytes moved through staging buffers */
	uint64_t seq_ios;           /**< staged I/Os whose copy ran in the I/O's accel sequence
				        (where an engine fuses, one fused operation each) */
	uint64_t keep_alives;       /**< keep-alive commands sent */
	uint64_t connection_losses; /**< times the connections were torn down */
	uint64_t reconnects;        /**< successful reconnections */
	uint64_t retries;           /**< I/Os resubmitted after a connection loss */
	uint64_t protocol_errors; /**< controller violations detected (each sends an H2CTermReq) */
	uint64_t io_errors;       /**< I/Os completed with an error */
	uint64_t split_ios; /**< I/Os sent as several commands (larger than one command carries) */
	/* receive offloads */
	uint64_t ddp_queues;         /**< I/O queue connections whose receive was offloaded */
	uint64_t ddp_queue_refused;  /**< I/O queue connections the NIC refused to offload */
	uint64_t ddp_ios;            /**< read commands mapped for direct data placement */
	uint64_t ddp_setup_fail;     /**< read commands the NIC refused to map (software) */
	uint64_t ddp_host_ios;       /**< of ddp_ios: mapped straight into another domain's
					  memory (host memory: no SoC buffer) */
	uint64_t ddp_untranslatable; /**< reads into another domain the NIC cannot reach (staged;
					  the reason is logged) */
	uint64_t ddp_placed_bytes;   /**< read data the NIC placed (no software copy) */
	uint64_t ddp_host_bytes;     /**< of ddp_placed_bytes: placed into another domain */
	uint64_t ddp_fallback_bytes; /**< read data of mapped commands the NIC did not place
					  (software moved it) */
	uint64_t nic_crc_bytes;      /**< read data whose data digest the NIC verified */
	uint64_t sw_crc_bytes;       /**< read data whose data digest software computed */
	uint64_t ddp_resyncs;        /**< NIC resync requests answered "found" */
	uint64_t ddp_resync_fail;    /**< NIC resync requests answered "not found" */
	uint64_t ddp_nic_errors;     /**< NIC misbehaviour caught (a false digest verdict, PLACED
					  on bytes that are not payload): the I/O failed */
	/* RDMA */
	uint64_t rdma_direct_ios;    /**< I/Os whose keyed SGL named their own memory (host memory
					  through nic_domain, or registered local memory): the NIC
					  moved the data, no SoC buffer */
	uint64_t rdma_staged_ios;    /**< I/Os that went through a local registered buffer */
	uint64_t rdma_fused_ios;     /**< of rdma_staged_ios: staged because the I/O carries an
					  accel sequence (crypto, dif): one fused operation into
					  the buffer */
	uint64_t rdma_untranslatable; /**< of rdma_staged_ios: memory the NIC cannot reach (the
					   reason is logged) */
	uint64_t rdma_direct_bytes;  /**< data bytes the NIC moved straight from/to I/O memory */
	uint64_t rdma_icd_writes;    /**< writes whose data went in the capsule */
	uint64_t rdma_wc_errors;     /**< work completions with an error (each fails its queue) */
};

/** @name Connection states (ferry_bdev_nvmf_get_state())
 * @{ */
#define FERRY_BDEV_NVMF_CONNECTED 0    /**< every queue is connected */
#define FERRY_BDEV_NVMF_RECONNECTING 1 /**< lost; I/O waits for the reconnection */
#define FERRY_BDEV_NVMF_FAILED 2       /**< lost for longer than ctrlr_loss_timeout_ms: I/O fails */
/** @} */

/**
 * @brief Connect to a remote namespace and register it as a bdev.
 * @param[in] opts options (strings are copied).
 * @param[out] out the new bdev (destroy with ferry_bdev_destroy()).
 * @retval 0 connected.
 * @retval -EINVAL bad options (size, name, addr, subnqn, flags).
 * @retval -ENOTSUP a trtype other than "tcp" or "rdma", a device without the NIC class (or,
 *         for "rdma", without its RDMA part or no RDMA device to open), a namespace
 *         format Ferry cannot use.
 * @retval -ETIMEDOUT a step did not finish within connect_timeout_ms.
 * @retval -ECONNREFUSED, -ECONNRESET, -EHOSTUNREACH the connection failed.
 * @retval -EPROTO the controller broke the protocol or sent a TermReq.
 * @retval -EIO the controller failed a command (the log names it and its status).
 * @retval -ENODEV no such (active) namespace.
 * @retval -EEXIST a bdev with this name exists.
 * @retval -ENOMEM out of memory.
 */
FERRY_API int ferry_bdev_nvmf_create(const struct ferry_bdev_nvmf_opts *opts,
				     struct ferry_bdev **out);

/**
 * @brief Read the counters of an nvmf bdev.
 * @param[in] bdev a bdev made by ferry_bdev_nvmf_create().
 * @param[in,out] stats stats->size must be set; the rest is filled.
 * @retval 0 success.
 * @retval -EINVAL NULL, a bdev that is not an nvmf bdev, or a wrong stats->size.
 */
FERRY_API int ferry_bdev_nvmf_get_stats(const struct ferry_bdev *bdev,
					struct ferry_bdev_nvmf_stats *stats);

/**
 * @brief Connection state of an nvmf bdev.
 * @param[in] bdev a bdev made by ferry_bdev_nvmf_create().
 * @param[out] state FERRY_BDEV_NVMF_CONNECTED, _RECONNECTING or _FAILED.
 * @retval 0 success.
 * @retval -EINVAL NULL, or a bdev that is not an nvmf bdev.
 */
FERRY_API int ferry_bdev_nvmf_get_state(const struct ferry_bdev *bdev, uint32_t *state);

FERRY_END_DECLS

#endif /* FERRY_BDEV_NVMF_H */
