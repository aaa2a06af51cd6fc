/**
 * @file ferry/hal/nic.h
 * @brief The NIC device class: what a vendor's NIC (or the host's socket stack) implements so
 * Ferry can run NVMe-oF over it. This revision has the TCP part: listening and connected
 * stream sockets, scatter-gather send, receive into caller iovecs, socket groups polled
 * for readiness, and the NVMe/TCP receive offloads (direct data placement of C2H payload,
 * data-digest verification). The RDMA part (verbs, connection manager, memory
 * registration) is its own table, ::ferry_hal_nic_ops::rdma (<ferry/hal/rdma.h>).
 *
 * ## Model
 * - A **socket** (struct ferry_hal_sock) is a backend object: a listener or a connected stream.
 *   Ferry never looks inside it.
 * - A **group** (struct ferry_hal_sock_group) is a set of sockets one thread polls together
 *   (an epoll instance, a hardware event queue). A poll group of the NVMe-oF target or host
 *   owns one group; every socket it serves is in it.
 * - **Receive** copies stream bytes into the caller's iovecs, which may be the final
 *   destination of a PDU's payload (zero copy). Each call reports flags that hold for every
 *   byte it returned (FERRY_HAL_NIC_RX_F_*): a backend returns short where they would change,
 *   so offload results (bytes the NIC already placed, digests it verified) attach to exact
 *   spans without a per-byte table. A plain socket backend reports
 *   FERRY_HAL_NIC_RX_F_PLACED for the bytes it read straight into the caller's iovecs and
 *   never claims FERRY_HAL_NIC_RX_F_CRC_OK.
 * - No call allocates per I/O: sockets and groups are created at connection time; send and
 *   receive take caller memory.
 *
 * ## NVMe/TCP receive offloads (optional: FERRY_HAL_NIC_CAP_DDP, FERRY_HAL_NIC_CAP_DDP_CRC)
 * The model of the Linux nvme-tcp receive offload: the NIC keeps using the TCP stream (nothing
 * of the protocol moves into it) but tracks the NVMe/TCP PDUs in what it receives, writes the
 * payload of C2HData PDUs straight into the destination registered for their command id
 * (direct data placement, DDP), and verifies their data digest (CRC32C). Software skips the
 * copy and the CRC exactly where the NIC did them, and does them itself everywhere else.
 * - **Per queue**: after the ICReq/ICResp exchange the host calls ddp_queue_add() with the
 *   negotiated parameters and where the next PDU starts in the stream. A failure is not an
 *   error: the queue runs in software. ddp_queue_del() (or close()) ends it.
 * - **Per I/O**: before sending a command that reads data, ddp_setup() maps its command id
 *   to a destination (a ::ferry_mem in a domain of ::ferry_hal_nic_info::ddp_domains, within
 *   ddp_max_sges / ddp_max_io); a failure means this I/O is received in software. After the
 *   command's last PDU was processed, ddp_teardown() releases the mapping asynchronously: its
 *   callback runs exactly once (iff it returned 0), from a later group_poll() of the socket's
 *   group or from ddp_queue_del() / close() of the socket, never inside ddp_teardown(). The
 *   command id may be set up again only after that callback (ddp_setup() gives -EBUSY).
 * - **Receive flags** (recvv()): for data of a command with a mapping,
 *   FERRY_HAL_NIC_RX_F_PLACED means the NIC wrote the bytes at the mapping's destination and
 *   **not** into the caller's iovecs (unless they are that same memory); bytes without it
 *   are in the caller's iovecs. FERRY_HAL_NIC_RX_F_CRC_OK on data bytes means the NIC is
 *   verifying the PDU's digest and has seen no error; on the data digest bytes themselves it
 *   means the NIC verified the digest and it matched. A PDU is trusted without a software
 *   CRC only when its data **and** its digest bytes all came with CRC_OK: a NIC reports a
 *   mismatch (or a digest it could not check) by delivering the digest bytes without CRC_OK.
 *   recvv() returns short where flags change.
 * - **Resync**: after loss or reordering that involved PDU headers the NIC stops tracking
 *   (no flags at all) and calls ::ferry_hal_ddp_queue_cfg::resync with the stream offset
 *   where it believes a PDU header starts; the host answers with ddp_resync() once it knows
 *   (found: a PDU starts exactly there; not found: it does not, the NIC searches again).
 * - **Stream offsets** count the bytes recvv() returned on the socket since it connected
 *   (the first byte of the ICResp is offset 0).
 * - A NIC never writes outside a mapping's destination (a PDU whose offset/length leave it
 *   is not placed there) and never through a page the mapping's domain does not allow: the
 *   bytes are then delivered without PLACED.
 *
 * ## Errors
 * Every op returns a negative errno on failure: -EAGAIN would block (try again after the
 * group reports readiness), -ECONNRESET / -EPIPE the peer is gone, -ECONNREFUSED /
 * -ETIMEDOUT / -EHOSTUNREACH a connect failed, -EADDRINUSE a listen address is taken,
 * -EINVAL a bad address string. A backend logs the reason of every failure but -EAGAIN.
 *
 * ## Threading
 * A socket is used by one thread at a time (the thread polling its group). Different sockets
 * and different groups may be used concurrently from different threads; listen, connect and
 * group creation are thread-safe.
 */
#ifndef FERRY_HAL_NIC_H
#define FERRY_HAL_NIC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <ferry/export.h>
#include <ferry/device.h>
#include <ferry/memdomain.h>

FERRY_BEGIN_DECLS

/** ABI version of ::ferry_hal_nic_ops. */
#define FERRY_HAL_NIC_ABI_VERSION 3

/** @name Capabilities (::ferry_hal_nic_info::caps)
 * @{ */
#define FERRY_HAL_NIC_CAP_TCP (1u << 0) /**< TCP stream sockets (the ops below) */
/** NVMe/TCP direct data placement of C2H payload (ddp_* ops). */
#define FERRY_HAL_NIC_CAP_DDP (1u << 1)
/** NVMe/TCP data digest verification on receive (with FERRY_HAL_NIC_CAP_DDP). */
#define FERRY_HAL_NIC_CAP_DDP_CRC (1u << 2)
/** RDMA verbs and connection manager (::ferry_hal_nic_ops::rdma, <ferry/hal/rdma.h>). */
#define FERRY_HAL_NIC_CAP_RDMA (1u << 3)
/** @} */

/** Memory domains one NIC may declare for placement. */
#define FERRY_HAL_NIC_DDP_DOMAINS_MAX 4

/** What a device's NIC offers. */
struct ferry_hal_nic_info {
	uint32_t caps;         /**< FERRY_HAL_NIC_CAP_* */
	uint32_t max_send_iov; /**< iovecs one sendv() takes (>= 16) */
	uint32_t max_recv_iov; /**< iovecs one recvv() takes (>= 16) */
	uint32_t max_sockets;  /**< sockets open at once (0 = no fixed limit) */
	/** DDP: segments one destination may have (>= 1 with FERRY_HAL_NIC_CAP_DDP). */
	uint32_t ddp_max_sges;
	/** DDP: bytes one destination may hold (>= 4096 with FERRY_HAL_NIC_CAP_DDP); the host
	 *  limits its commands' transfer size to it on offloaded queues. */
	uint32_t ddp_max_io;
	/** DDP: queues that may be offloaded at once (0 = no fixed limit). */
	uint32_t ddp_max_queues;
	/** DDP: how many of @p ddp_domains are set. */
	uint32_t ddp_ndomains;
	/** DDP: the memory domains the NIC can place into (ferry_memdomain_system() for local
	 *  memory; a PCIe function domain for host memory it reaches through that function). */
	struct ferry_memdomain *ddp_domains[FERRY_HAL_NIC_DDP_DOMAINS_MAX];
};

struct ferry_hal_sock;
struct ferry_hal_sock_group;
struct ferry_hal_rdma_ops;

/** @name Socket option flags (::ferry_hal_sock_opts::flags)
 * @{ */
#define FERRY_HAL_SOCK_F_NODELAY (1u << 0) /**< no send coalescing (TCP_NODELAY) */
/** @} */

/** Options of listen() and connect(). */
struct ferry_hal_sock_opts {
	size_t size;          /**< sizeof(struct ferry_hal_sock_opts) */
	/** Required: "a.b.c.d:port" or "[v6]:port". listen: port 0 picks a free port
	 *  (get_addr() tells which). */
	const char *addr;
	uint32_t flags;       /**< FERRY_HAL_SOCK_F_* */
	uint32_t sndbuf;      /**< send buffer bytes (0 = the backend's default) */
	uint32_t rcvbuf;      /**< receive buffer bytes (0 = the backend's default) */
	uint32_t backlog;     /**< listen: pending connections (0 = 128) */
};

/** @name Readiness flags (::ferry_hal_sock_event::events)
 * @{ */
#define FERRY_HAL_SOCK_EV_IN (1u << 0)  /**< readable (data, EOF, or a listener's connection) */
#define FERRY_HAL_SOCK_EV_OUT (1u << 1) /**< writable (or a connect finished: see sock_error) */
#define FERRY_HAL_SOCK_EV_ERR (1u << 2) /**< error or hang-up: the next call reports it */
/** @} */

/** One readiness report of group_poll(). */
struct ferry_hal_sock_event {
	void *ctx;       /**< the context given to group_add() */
	uint32_t events; /**< FERRY_HAL_SOCK_EV_* */
};

/** @name Receive flags (recvv() @p flags out-parameter)
 * @{ */
#define FERRY_HAL_NIC_RX_F_PLACED (1u << 0) /**< bytes are in the caller's iovecs without a copy
						 through an intermediate buffer of the SDK */
#define FERRY_HAL_NIC_RX_F_CRC_OK (1u << 1) /**< the NIC verified these bytes' data digest */
/** @} */

/**
 * Resync request of an offloaded queue (::ferry_hal_ddp_queue_cfg::resync): the NIC lost track
 * of the PDUs and believes one starts at stream offset @p seq. Called on the socket's polling
 * thread from recvv() or group_poll(); answer with ddp_resync() (any time later, once).
 */
typedef void (*ferry_hal_ddp_resync_cb)(void *ctx, uint64_t seq);

/** Completion of ddp_teardown(): @p status 0 (the mapping is released). */
typedef void (*ferry_hal_ddp_done_cb)(void *ctx, int status);

/** Configuration of an offloaded queue (ddp_queue_add()). */
struct ferry_hal_ddp_queue_cfg {
	size_t size;         /**< sizeof(struct ferry_hal_ddp_queue_cfg) */
	uint8_t pfv;         /**< PDU format version (0) */
	uint8_t hpda;        /**< host PDU data alignment (C2H data padded to (hpda+1)*4) */
	uint8_t cpda;        /**< controller PDU data alignment */
	uint8_t hdgst;       /**< header digests on */
	uint8_t ddgst;       /**< data digests on (CRC offload needs them) */
	uint32_t queue_size; /**< commands in flight at most (command ids 0..65535 may appear) */
	int32_t io_cpu;      /**< the core that polls this queue (-1: unknown) */
	uint64_t rx_seq;     /**< stream offset of the next PDU's first byte */
	ferry_hal_ddp_resync_cb resync; /**< required: resync requests */
	void *ctx;           /**< for @p resync */
};

/** Counters of a NIC's receive offloads (ddp_stats()), for the whole device. */
struct ferry_hal_ddp_stats {
	uint64_t queue_add;       /**< queues offloaded */
	uint64_t queue_add_fail;  /**< ddp_queue_add() refused */
	uint64_t queue_del;       /**< offloads ended */
	uint64_t setup;           /**< ddp_setup() done */
	uint64_t setup_fail;      /**< ddp_setup() refused */
	uint64_t teardown;        /**< mappings released */
	uint64_t drop;            /**< C2H payload bytes of a mapped command not placed */
	uint64_t resync;          /**< resync requests made */
	uint64_t resync_fail;     /**< resync requests answered "not found" */
	uint64_t packets;         /**< packets received on offloaded queues */
	uint64_t bytes;           /**< bytes received on offloaded queues */
	uint64_t offloaded_bytes; /**< payload bytes placed by the NIC */
	uint64_t crc_bytes;       /**< payload bytes whose digest the NIC verified */
};

/** Socket counters (sock_stats()). */
struct ferry_hal_sock_stats {
	uint64_t tx_bytes; /**< bytes sent */
	uint64_t rx_bytes; /**< bytes received */
	uint64_t tx_calls; /**< send system calls / doorbells */
	uint64_t rx_calls; /**< receive system calls */
};

/** The NIC class ops table. Every member is required unless marked optional. */
struct ferry_hal_nic_ops {
	/** Required: FERRY_HAL_NIC_ABI_VERSION (checked at registration). */
	uint32_t abi_version;
	/** What the device offers. */
	int (*query)(struct ferry_device *dev, struct ferry_hal_nic_info *info);

	/** Open a listening socket. */
	int (*listen)(struct ferry_device *dev, const struct ferry_hal_sock_opts *opts,
		      struct ferry_hal_sock **out);
	/**
	 * Take one pending connection of @p listener (non-blocking).
	 * @retval 0 @p *out is a connected socket; -EAGAIN none pending.
	 */
	int (*accept)(struct ferry_hal_sock *listener, struct ferry_hal_sock **out);
	/**
	 * Start connecting to opts->addr without blocking. The socket is usable for send and
	 * receive once sock_error() returns 0 (a group reports FERRY_HAL_SOCK_EV_OUT when the
	 * connect finished either way). Fails only for local reasons (-EINVAL bad address or
	 * port 0, resources); the outcome of the connection (refused, unreachable...) comes from
	 * sock_error(), even when known at once.
	 */
	int (*connect)(struct ferry_device *dev, const struct ferry_hal_sock_opts *opts,
		       struct ferry_hal_sock **out);
	/**
	 * State of a connecting or connected socket.
	 * @retval 0 connected; -EINPROGRESS still connecting; another negative errno: failed or
	 *         broken (-ECONNREFUSED, -ECONNRESET...); a failure is sticky (every later
	 *         call returns it).
	 */
	int (*sock_error)(struct ferry_hal_sock *sock);
	/** Close a socket (it leaves its group first). NULL is a no-op. */
	void (*close)(struct ferry_hal_sock *sock);
	/**
	 * The local (@p peer 0) or remote (@p peer 1) address as "a.b.c.d:port" / "[v6]:port".
	 * @retval 0; -ENOBUFS @p len too small; -ENOTCONN no peer.
	 */
	int (*get_addr)(struct ferry_hal_sock *sock, int peer, char *buf, size_t len);

	/**
	 * Send bytes from @p iovcnt iovecs (1..max_send_iov, holding at least one byte, else
	 * -EINVAL) without blocking; never raises SIGPIPE.
	 * @return bytes taken (> 0, possibly fewer than offered), -EAGAIN none, or a negative errno.
	 */
	ssize_t (*sendv)(struct ferry_hal_sock *sock, const struct iovec *iov, uint32_t iovcnt);
	/**
	 * Receive stream bytes into @p iovcnt iovecs (1..max_recv_iov, room for at least one
	 * byte, else -EINVAL: 0 would read as end of stream) without blocking.
	 * @param[out] flags FERRY_HAL_NIC_RX_F_* holding for every byte returned.
	 * @return bytes received (> 0), 0 the peer closed the stream, -EAGAIN none pending, or a
	 *         negative errno.
	 */
	ssize_t (*recvv)(struct ferry_hal_sock *sock, const struct iovec *iov, uint32_t iovcnt,
			 uint32_t *flags);

	/** Create a socket group. */
	int (*group_create)(struct ferry_device *dev, struct ferry_hal_sock_group **out);
	/** Destroy a group (its sockets must have left it). NULL is a no-op. */
	void (*group_destroy)(struct ferry_hal_sock_group *group);
	/** Add @p sock to @p group; readiness reports carry @p ctx. A socket is in one group. */
	int (*group_add)(struct ferry_hal_sock_group *group, struct ferry_hal_sock *sock, void *ctx);
	/** Remove @p sock from its group. */
	int (*group_remove)(struct ferry_hal_sock_group *group, struct ferry_hal_sock *sock);
	/**
	 * Report ready sockets of @p group: up to @p max events, waiting at most @p timeout_us
	 * microseconds (0: do not wait; busy polling). Level triggered: a socket with unread
	 * bytes is reported again.
	 * @return number of events (>= 0) or a negative errno.
	 */
	int (*group_poll)(struct ferry_hal_sock_group *group, struct ferry_hal_sock_event *events,
			  uint32_t max, uint32_t timeout_us);
	/** Optional: counters of @p sock. */
	int (*sock_stats)(struct ferry_hal_sock *sock, struct ferry_hal_sock_stats *stats);
	/**
	 * Optional: switch the FERRY_HAL_SOCK_EV_OUT interest of @p sock in @p group. A socket
	 * joins a group with IN (and ERR) interest only, so an idle writable socket is not
	 * reported on every poll; a sender that got a short write or -EAGAIN turns OUT on and
	 * turns it off once its queue drained. Cheap when the state does not change (no system
	 * call). A connecting socket is reported OUT once when its connect finishes, whatever
	 * this setting. When NULL, the group reports OUT whenever the socket is writable.
	 * @retval 0; -EINVAL @p sock is not in @p group.
	 */
	int (*group_want_out)(struct ferry_hal_sock_group *group, struct ferry_hal_sock *sock,
			      int on);

	/** @name NVMe/TCP receive offloads: required with FERRY_HAL_NIC_CAP_DDP, else NULL.
	 * @{ */
	/**
	 * Offload the receive side of a connected socket (the host end of an NVMe/TCP queue)
	 * with @p cfg. @retval 0; -ENOTSUP / -ENOSPC / -EINVAL (logged): the queue runs in
	 * software, nothing changed.
	 */
	int (*ddp_queue_add)(struct ferry_hal_sock *sock, const struct ferry_hal_ddp_queue_cfg *cfg);
	/** End the offload of @p sock: pending teardowns complete (their callbacks run now), every
	 *  mapping is released, later bytes come without flags. No-op if not offloaded. */
	void (*ddp_queue_del)(struct ferry_hal_sock *sock);
	/**
	 * Map command @p cid to @p dest (a domain of ::ferry_hal_nic_info::ddp_domains, at most
	 * ddp_max_sges segments, ddp_max_io bytes; the descriptor is copied). The NIC places the
	 * payload of C2HData PDUs of @p cid at DATAO into it.
	 * @retval 0; -EBUSY @p cid is mapped or its teardown has not completed; -EINVAL /
	 *         -EXDEV / -EFAULT / -ENOSPC (logged): not offloaded, receive this I/O in software.
	 */
	int (*ddp_setup)(struct ferry_hal_sock *sock, uint16_t cid, const struct ferry_mem *dest);
	/**
	 * Release the mapping of @p cid asynchronously; @p done(@p ctx, 0) runs exactly once if
	 * this returns 0 (see the model above). @retval 0; -ENOENT @p cid is not mapped.
	 */
	int (*ddp_teardown)(struct ferry_hal_sock *sock, uint16_t cid, ferry_hal_ddp_done_cb done,
			    void *ctx);
	/** Answer the resync request for @p seq: @p found 1 if a PDU header starts exactly there
	 *  (the NIC resumes tracking from it), 0 if not (it searches again). */
	void (*ddp_resync)(struct ferry_hal_sock *sock, uint64_t seq, int found);
	/** Optional: the device's offload counters. */
	int (*ddp_stats)(struct ferry_device *dev, struct ferry_hal_ddp_stats *stats);
	/** @} */

	/** Optional: the RDMA part (<ferry/hal/rdma.h>); set iff the device may report
	 *  FERRY_HAL_NIC_CAP_RDMA. Its abi_version and required members are checked at
	 *  registration too. */
	const struct ferry_hal_rdma_ops *rdma;
};

FERRY_END_DECLS

#endif /* FERRY_HAL_NIC_H */
