/**
 * @file ferry/hal/nic.h
 * @brief The NIC device class: what a vendor's NIC (or the host's socket stack) implements so
 * Ferry can run NVMe-oF over it. This revision has the TCP part: listening and connected
 * stream sockets, scatter-gather send, receive into caller iovecs, and socket groups polled
 * for readiness. The NVMe/TCP receive offloads (direct data placement, data-digest offload)
 * and RDMA come as further members of this table.
 *
 * ## Model
 * - A **socket** (::ferry_hal_sock) is a backend object: a listener or a connected stream.
 *   Ferry never looks inside it.
 * - A **group** (::ferry_hal_sock_group) is a set of sockets one thread polls together
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

FERRY_BEGIN_DECLS

/** ABI version of ::ferry_hal_nic_ops. */
#define FERRY_HAL_NIC_ABI_VERSION 1

/** @name Capabilities (::ferry_hal_nic_info::caps)
 * @{ */
#define FERRY_HAL_NIC_CAP_TCP (1u << 0) /**< TCP stream sockets (the ops below) */
/** @} */

/** What a device's NIC offers. */
struct ferry_hal_nic_info {
	uint32_t caps;         /**< FERRY_HAL_NIC_CAP_* */
	uint32_t max_send_iov; /**< iovecs one sendv() takes (>= 16) */
	uint32_t max_recv_iov; /**< iovecs one recvv() takes (>= 16) */
	uint32_t max_sockets;  /**< sockets open at once (0 = no fixed limit) */
};

struct ferry_hal_sock;
struct ferry_hal_sock_group;

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
};

FERRY_END_DECLS

#endif /* FERRY_HAL_NIC_H */
