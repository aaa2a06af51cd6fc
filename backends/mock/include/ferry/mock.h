/**
 * @file ferry/mock.h
 * @brief Control API of the "mock" backend: the simulated host side (shared host memory and
 * per-function IOMMU tables), the test knobs of its DMA engine (latency, error injection,
 * counters), the fault model of its NVMe/TCP offload NIC and its software RDMA NIC.
 *
 * This header belongs to the mock backend, not to the SDK: firmware code uses only
 * ferry/ferry.h; tests and the simulated host use this header too.
 *
 * Host memory: a mock device owns one memfd holding a small control block, one IOMMU table per
 * PCI function, then `host_mem` bytes of host RAM. A host process (typically forked, or any
 * process that received the fd) maps it with ferry_mock_host_open() and programs the IOMMU
 * tables like a host OS would; the device side sees every change at once (it walks the shared
 * tables on every access). Host addresses are byte offsets into host RAM ("host_off").
 * IOMMU granule: FERRY_MOCK_PAGE_SIZE; entry = IOVA page -> host page + permissions, where READ
 * lets the device read the page (pull, source of a transfer) and WRITE lets it write the page
 * (push, memzero, destination of a transfer). Two functions may map the same host page, at
 * equal or different IOVAs. The fd is close-on-exec; a process that wants to hand it to an
 * exec'd program dup()s it without that flag.
 *
 * Memory domains: device "mockN" with functions "nvme:nic" creates the FERRY_MEMDOMAIN_PCIE
 * domains "mockN.nvme" and "mockN.nic" (in that order). Their pull/push/memzero run on the
 * device's DMA engine (one internal channel per function) and complete from
 * ferry_memdomain_poll() on that domain, called on the thread that started them (completions
 * of other threads wait for theirs); a completion status maps to the callback's errno as:
 * page fault / invalid address -> -EFAULT, bus read/write error and poisoned data -> -EIO,
 * not attempted -> -ECANCELED. A full internal ring makes the call return -EAGAIN (poll, retry).
 * translate works between two functions of the same device (IOVA in A -> host page -> IOVA in
 * B; where B maps a host page at several IOVAs, the one continuing the previous segment wins,
 * else the lowest); translating to any other domain, the system domain included, gives
 * -EXDEV (the SoC reaches host memory only through the DMA engine). The device caches the
 * reverse (host page -> IOVA) maps translate builds; a host map/unmap or
 * ferry_memdomain_invalidate() drops them.
 *
 * DMA engine: one engine thread per device executes every channel's ring in order (round robin
 * between channels). A transfer completes no earlier than `latency_ns` after its submission; a
 * FERRY_XFER_F_FENCE transfer starts only after every earlier one of its channel completed and
 * then takes its own latency. Fence failure rule: a fenced transfer is NOT_ATTEMPTED when a
 * transfer of its channel that was submitted before it and had not been returned by poll when
 * the fenced one was submitted completed with an error (NOT_ATTEMPTED included). A transfer's
 * addresses are all checked before any byte moves; a failed transfer (of any status) writes
 * nothing.
 *
 * Channel ids (for error injection): user channels are numbered 1, 2, 3... in creation order per
 * device (never reused); the internal channel of function i (domain pull/push/memzero) is
 * FERRY_MOCK_CHAN_FN(i); FERRY_MOCK_CHAN_ANY counts every transfer of the device.
 *
 * Determinism: injection decisions are taken at submit time from submission counts and a
 * seeded generator, never from timing: the same sequence of submissions with the same seed
 * fails the same transfers.
 *
 * Threading: the control functions may be called from any thread. Host-side calls on the same
 * IOMMU table are not serialised against each other (one host thread programs a table).
 */
#ifndef FERRY_MOCK_H
#define FERRY_MOCK_H

#include <stddef.h>
#include <stdint.h>
#include <ferry/export.h>
#include <ferry/device.h>
#include <ferry/dma.h>

FERRY_BEGIN_DECLS

/** IOMMU page size of the mock (bytes). */
#define FERRY_MOCK_PAGE_SIZE 4096u
/** Maximum number of PCI functions of one mock device. */
#define FERRY_MOCK_MAX_FUNCTIONS 8u
/** Maximum function name length including the NUL. */
#define FERRY_MOCK_FN_NAME_MAX 16u

/** IOMMU permission: the device may read the page. */
#define FERRY_MOCK_IOMMU_READ (1u << 0)
/** IOMMU permission: the device may write the page. */
#define FERRY_MOCK_IOMMU_WRITE (1u << 1)

/** Injection scope: every transfer of the device, whatever its channel. */
#define FERRY_MOCK_CHAN_ANY 0xffffffffu
/** Channel id of the internal channel of function @p i (its domain's pull/push/memzero). */
#define FERRY_MOCK_CHAN_FN(i) (0x10000u + (unsigned int)(i))

/** Counters of a mock device (ferry_mock_get_stats()). */
struct ferry_mock_stats {
	size_t size;            /**< in: sizeof(struct ferry_mock_stats) */
	uint64_t xfers;         /**< transfers finished by the engine (any channel, any status) */
	uint64_t bytes;         /**< bytes moved by the successful ones */
	uint64_t errors;        /**< of those, finished with a status other than SUCCESS */
	uint64_t page_faults;   /**< of those, with FERRY_XFER_PAGE_FAULT */
	uint64_t injected;      /**< transfers failed by error injection */
	uint64_t not_attempted; /**< fenced transfers skipped after an earlier failure */
	uint64_t domain_ops;    /**< pull/push/memzero calls accepted by the function domains */
	uint64_t translations;  /**< successful translate calls */
	uint64_t rmap_builds;   /**< reverse maps (translation caches) built */
	uint64_t invalidations; /**< invalidate calls accepted */
};

/** Host-side handle on a mock device's shared memory (one per mapping). */
struct ferry_mock_host;

/**
 * @brief The memfd holding the device's control block, IOMMU tables and host RAM.
 * @param[in] dev a device opened from the "mock" backend.
 * @param[out] fd the descriptor; still owned by the device (closed by ferry_device_close()).
 * @retval 0 success.
 * @retval -EINVAL @p dev is NULL or not a mock device, or @p fd is NULL.
 */
FERRY_API int ferry_mock_host_fd(struct ferry_device *dev, int *fd);

/**
 * @brief Map a mock device's shared memory from its fd (in any process).
 * @param[in] fd a descriptor returned by ferry_mock_host_fd() (or a duplicate of it).
 * @param[out] out the handle; release it with ferry_mock_host_close().
 * @retval 0 success.
 * @retval -EINVAL @p out is NULL, or the fd does not hold a valid mock control block.
 * @retval -ENOMEM out of memory; other negative errno from fstat/mmap.
 */
FERRY_API int ferry_mock_host_open(int fd, struct ferry_mock_host **out);

/**
 * @brief In-process shortcut: ferry_mock_host_open() on the fd of @p dev.
 * @retval 0 success; -EINVAL not a mock device; other errors as ferry_mock_host_open().
 */
FERRY_API int ferry_mock_host_attach(struct ferry_device *dev, struct ferry_mock_host **out);

/** @brief Unmap and free a host handle (the device is unaffected). NULL is a no-op. */
FERRY_API void ferry_mock_host_close(struct ferry_mock_host *host);

/** @brief Size of host RAM in bytes. */
FERRY_API uint64_t ferry_mock_host_mem_size(const struct ferry_mock_host *host);

/** @brief Size of each function's IOVA space in bytes (IOVAs are 0..size-1). */
FERRY_API uint64_t ferry_mock_host_iova_size(const struct ferry_mock_host *host);

/** @brief Number of PCI functions. */
FERRY_API unsigned int ferry_mock_host_fn_count(const struct ferry_mock_host *host);

/**
 * @brief Name of function @p fn ("nvme", "nic"...).
 * @return the name, or NULL if @p fn is out of range. Valid while @p host is open.
 */
FERRY_API const char *ferry_mock_host_fn_name(const struct ferry_mock_host *host, unsigned int fn);

/**
 * @brief Index of the function called @p name.
 * @return the index (>= 0), or -ENOENT.
 */
FERRY_API int ferry_mock_host_fn_lookup(const struct ferry_mock_host *host, const char *name);

/**
 * @brief Map @p len bytes of IOVA space of function @p fn, starting at @p iova, to host RAM at
 * @p host_off, with permissions @p perms. All pages are checked before any is mapped.
 * @param[in] host host handle.
 * @param[in] fn function index.
 * @param[in] iova first IOVA (page aligned).
 * @param[in] host_off first host RAM offset (page aligned).
 * @param[in] len bytes (a non-zero multiple of the page size).
 * @param[in] perms FERRY_MOCK_IOMMU_READ and/or FERRY_MOCK_IOMMU_WRITE (at least one).
 * @retval 0 mapped.
 * @retval -EINVAL NULL host, bad function index, misaligned address or length, bad perms.
 * @retval -ERANGE the IOVA range leaves the IOVA space, or the host range leaves host RAM.
 * @retval -EEXIST a page of the IOVA range is already mapped (nothing changed).
 */
FERRY_API int ferry_mock_host_iommu_map(struct ferry_mock_host *host, unsigned int fn,
					uint64_t iova, uint64_t host_off, uint64_t len,
					uint32_t perms);

/**
 * @brief Unmap @p len bytes of IOVA space of function @p fn from @p iova (pages that are not
 * mapped are skipped). The device stops reaching those pages at once.
 * @retval 0 success; -EINVAL bad arguments or alignment; -ERANGE outside the IOVA space.
 */
FERRY_API int ferry_mock_host_iommu_unmap(struct ferry_mock_host *host, unsigned int fn,
					  uint64_t iova, uint64_t len);

/**
 * @brief Read back the mapping of the page holding @p iova.
 * @param[out] host_off host RAM offset of @p iova (the in-page offset included); may be NULL.
 * @param[out] perms FERRY_MOCK_IOMMU_* bits; may be NULL.
 * @retval 0 mapped; -ENOENT not mapped; -EINVAL bad arguments; -ERANGE outside the IOVA space.
 */
FERRY_API int ferry_mock_host_iommu_lookup(const struct ferry_mock_host *host, unsigned int fn,
					   uint64_t iova, uint64_t *host_off, uint32_t *perms);

/**
 * @brief Local pointer to host RAM at @p host_off, valid for @p len bytes in this process
 * while @p host is open.
 * @return the pointer, or NULL if [host_off, host_off + len) leaves host RAM.
 */
FERRY_API void *ferry_mock_host_ptr(const struct ferry_mock_host *host, uint64_t host_off,
				    uint64_t len);

/**
 * @brief Set the per-transfer latency of @p dev's DMA engine (also the `latency_ns` argument).
 * @retval 0 success; -EINVAL not a mock device or @p ns above 10 s.
 */
FERRY_API int ferry_mock_set_latency(struct ferry_device *dev, uint64_t ns);

/**
 * @brief Arm one injected failure: the @p nth transfer submitted after this call in scope
 * @p chan_id (see "Channel ids" above) completes with @p status, moving no byte. Several rules
 * may be armed at once; each fires once.
 * @param[in] dev a mock device.
 * @param[in] chan_id channel id or FERRY_MOCK_CHAN_ANY.
 * @param[in] nth 1 = the next transfer.
 * @param[in] status any status except FERRY_XFER_SUCCESS.
 * @retval 0 armed; -EINVAL bad argument; -ENOSPC too many rules armed (16).
 */
FERRY_API int ferry_mock_inject_nth(struct ferry_device *dev, uint32_t chan_id, uint64_t nth,
				    enum ferry_xfer_status status);

/**
 * @brief Random injection: each transfer submitted on @p dev fails with probability
 * @p ppm / 1 000 000, with a status drawn from @p status_mask (bit s = status s), using a
 * generator seeded with @p seed (reseeded by every call).
 * @param[in] ppm 0 (off) to 1 000 000.
 * @param[in] status_mask allowed statuses; must be non-empty when @p ppm > 0 and may not
 *            include FERRY_XFER_SUCCESS.
 * @retval 0 success; -EINVAL bad argument or not a mock device.
 */
FERRY_API int ferry_mock_inject_random(struct ferry_device *dev, uint32_t ppm, uint32_t status_mask,
				       uint64_t seed);

/** @brief Disarm every injection rule and random injection. */
FERRY_API int ferry_mock_inject_clear(struct ferry_device *dev);

/**
 * @brief Read the device's counters.
 * @retval 0 success; -EINVAL not a mock device, NULL, or @p out->size too small.
 */
FERRY_API int ferry_mock_get_stats(struct ferry_device *dev, struct ferry_mock_stats *out);

/**
 * @name The offload NIC
 * The mock's NIC class (ferry/hal/nic.h) runs TCP on the kernel's loopback sockets and models
 * an NVMe/TCP receive-offload NIC on offloaded queues (ddp_queue_add()): it reads the socket
 * in "packets" of at most `nic_pkt` bytes, tracks the PDUs in them, places C2HData payload of
 * mapped command ids (system memory, or host memory through the "nic" function's IOMMU,
 * checked per page at placement time), verifies data digests, and delivers from its ring.
 * Capabilities TCP | DDP | DDP_CRC (TCP only with `ddp=0`); ddp_max_sges 64 and ddp_max_io
 * 1 MiB unless the arguments lower them; ddp_domains: the system domain and "mockN.nic" when
 * the device has a function called "nic".
 *
 * Device arguments: `ddp=0|1`, `ddp_max_sges=1..64`, `ddp_max_io=4K..1M`, `nic_pkt=64..65536`
 * (default 16384), `ddp_seed=<n>`, and each knob of ::ferry_mock_nic_faults by its field name
 * (`place_miss_ppm=<n>`...).
 *
 * Determinism: the n-th decision of a knob on a socket is a hash of (seed, the socket's
 * number on the device in connect/accept order, the knob, n); it does not depend on timing,
 * threads or other knobs. Where packets split a stream depends on what the kernel holds when
 * the NIC reads: tests that need exact splits send before they receive.
 * @{
 */

/** Fault model of the offload NIC (ferry_mock_nic_set_faults()); rates per million. */
struct ferry_mock_nic_faults {
	size_t size;               /**< sizeof(struct ferry_mock_nic_faults) */
	/** Per packet: its C2HData payload is not placed (delivered into the caller's iovecs,
	 *  counted in ::ferry_hal_ddp_stats::drop for mapped commands). */
	uint32_t place_miss_ppm;
	/** Per PDU: the NIC does not check its digest (no CRC_OK on any of its bytes). */
	uint32_t crc_miss_ppm;
	/** Per ddp_setup(): refused with -ENOSPC. */
	uint32_t setup_fail_ppm;
	/** Per ddp_queue_add(): refused with -ENOSPC. */
	uint32_t queue_fail_ppm;
	/** Per packet of a tracked queue: the NIC loses track of the PDUs (no flags from that
	 *  packet on), searches the stream for a plausible PDU header and asks for a resync. */
	uint32_t resync_ppm;
	/** Per resync request: first ask for a wrong offset (one byte before the candidate); after
	 *  the "not found" answer, the candidate. */
	uint32_t resync_wrong_ppm;
	/** Per packet: claim PLACED | CRC_OK for its C2HData payload without writing it (a lying
	 *  NIC, for the debug check FERRY_NVME_TCP_RX_DEST_F_VERIFY). */
	uint32_t lie_ppm;
	uint64_t seed;             /**< seed of every knob's decisions */
};

/**
 * @brief Set the offload NIC's fault model (also the device arguments). Takes effect on the
 * next decision of every socket.
 * @param[in] dev a mock device.
 * @param[in] faults the knobs; every rate at most 1 000 000.
 * @retval 0 success.
 * @retval -EINVAL not a mock device, NULL, a wrong @p faults->size or a rate above 10^6.
 */
FERRY_API int ferry_mock_nic_set_faults(struct ferry_device *dev,
					const struct ferry_mock_nic_faults *faults);

/**
 * @brief Read the offload NIC's fault model.
 * @param[in] dev a mock device.
 * @param[out] faults filled; @p faults->size must be set on entry.
 * @retval 0 success; -EINVAL not a mock device, NULL or a wrong size.
 */
FERRY_API int ferry_mock_nic_get_faults(struct ferry_device *dev,
					struct ferry_mock_nic_faults *faults);
/** @} */

/**
 * @name The RDMA NIC
 * The mock's NIC class also has the RDMA part (ferry/hal/rdma.h; capability
 * FERRY_HAL_NIC_CAP_RDMA, device argument `rdma=0|1`, default 1): a software model of
 * reliable-connected verbs over real loopback TCP sockets, one TCP connection per QP, so an
 * NVMe-oF/RDMA target and initiator run on any machine, also in two processes (each opens its
 * own device: fork before opening devices).
 *
 * - **Progress: mock QPs progress while their CQ is polled.** Both the requester side (sending
 *   the requests of post_send()) and the responder side (applying the peer's SENDs, WRITEs and
 *   READs) run inside cq_poll() / cq_wait() of the QP's CQ (and qp_state(); post_send()
 *   starts sending at once); a peer whose CQ nobody polls answers nothing (there is no
 *   transport timeout: a request waits for its answer as long as the connection lasts).
 *   There is no thread.
 * - Connection manager: connect() sends a request with its private data over a new TCP
 *   connection; the listener's get_request() returns it; accept() answers with private data
 *   (the passive QP is established at once), reject() with private data (the active side's
 *   qp_state() is -ECONNREFUSED and gives it). Nothing listening: -ECONNREFUSED; no answer
 *   within connect()'s timeout (0: 3 s): -ETIMEDOUT; a peer that closes or destroys its QP:
 *   -ECONNRESET and every outstanding work request flushes (-ECANCELED).
 * - SEND consumes the peer's next posted receive (a message larger than it: the receive
 *   completes -EMSGSIZE, the sender's request -EREMOTEIO, both QPs go to the error state). No
 *   receive posted: the responder holds the message for `rdma_rnr_ms` (default 100 ms) of its
 *   own progress, then the sender's request completes -ENOBUFS (RNR retries exceeded) and the
 *   sender's QP errors (the peer then sees -ECONNRESET).
 * - RDMA WRITE / READ are checked at the responder: the rkey must name a registered region,
 *   the range must lie inside it, the region must allow REMOTE_WRITE / REMOTE_READ. Otherwise
 *   the requester's request completes -EREMOTEIO and both QPs go to the error state; no byte
 *   moves. Local SGEs are checked too (lkey, bounds, LOCAL_WRITE for receives and READ
 *   destinations): a bad one fails its request with -EIO without touching memory. Every error
 *   completion puts the QP in the error state (RC).
 * - Memory: mr_reg() registers local memory (addresses are pointers); mr_reg_mem() registers
 *   IOVAs of the "nic" function (the only entry of ::ferry_hal_rdma_info::domains, when the
 *   device has such a function): every access through such a region goes through that
 *   function's IOMMU at access time, so a page the host unmapped after registration fails the
 *   access (-EREMOTEIO at the peer, -EIO locally) and nothing is written outside the mapping.
 *   Keys: derived from `rdma_seed` (default 1) and the region's slot, never 0, unique while
 *   registered; after mr_dereg() its keys are refused. A work request moves at most 16 MiB.
 * - Limits (rdma query()): max_sge 16, max_inline 256, max_qp_wr 4096, max_cqe 65536,
 *   max_qp_rd_atom / max_qp_init_rd_atom 16, max_mr_size 4 GiB. A CQ holds more completions
 *   than its depth rather than losing one (an overrun is logged once).
 * - Faults: ferry_mock_rdma_set_faults() (below); counters: rdma_stats().
 *
 * Memory domains for software NICs (ferry/module/memdomain.h): the function domains implement
 * export_local (the SoC process's own shared mapping of the host-RAM memfd for the IOVAs:
 * only mapped pages, with WRITE permission checked when `write`; pages adjacent in host RAM
 * are merged into one segment; fd is the memfd of ferry_mock_host_fd(), fd_off the byte's
 * offset in it; anything unmapped: -EFAULT) and map_gen (the function's IOMMU generation,
 * kept in the shared memory with the tables: it changes at every map and unmap by any process,
 * the host's included).
 * @{
 */

/** Fault model of the RDMA NIC (ferry_mock_rdma_set_faults()), per device: the counts of the
 *  nth knobs are over every QP of the device (in posting order) and start at the call. */
struct ferry_mock_rdma_faults {
	size_t size; /**< sizeof(struct ferry_mock_rdma_faults) */
	/** With @p fail_nth: the kind of work request to fail (enum ferry_hal_rdma_opcode:
	 *  SEND, WRITE, READ, or RECV for receives). */
	uint32_t fail_opcode;
	/** The @p fail_nth request of that kind posted on the device (1 = the next) completes
	 *  with @p fail_status without moving data (a RECV: when a message lands in it; the
	 *  sender's request then completes -EREMOTEIO). 0: off. */
	uint32_t fail_nth;
	/** Negative errno of that completion (0 means -EIO). */
	int32_t fail_status;
	/** The n-th RDMA WRITE or READ posted on the device goes out with a wrong rkey (the
	 *  responder refuses it: -EREMOTEIO). 0: off. */
	uint32_t corrupt_rkey_nth;
	/** Each QP created after the call drops its connection (both sides: -ECONNRESET,
	 *  flushes) when it would send a request after its first @p drop_after_msgs ones.
	 *  0: off. */
	uint32_t drop_after_msgs;
	/** Completions become visible this many cq_poll() calls after they happened. */
	uint32_t delay_polls;
	/** Per send work request posted: it fails with -EIO with this probability per million,
	 *  drawn from @p seed and the request's number (deterministic). */
	uint32_t error_ppm;
	uint64_t seed; /**< seed of @p error_ppm's draws */
};

/**
 * @brief Set the RDMA NIC's fault model (resets the counts of the nth knobs).
 * @retval 0 success; -EINVAL not a mock device, RDMA off, NULL, a wrong @p faults->size, an
 *         opcode that is not SEND/WRITE/READ/RECV, a positive @p fail_status or a rate above
 *         10^6.
 */
FERRY_API int ferry_mock_rdma_set_faults(struct ferry_device *dev,
					 const struct ferry_mock_rdma_faults *faults);
/** @} */

FERRY_END_DECLS

#endif /* FERRY_MOCK_H */
