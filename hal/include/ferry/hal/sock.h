/**
 * @file ferry/hal/sock.h
 * @brief Backend SDK: the TCP part of the NIC class (ferry/hal/nic.h) on Linux sockets, ready
 * for a backend to put in its ops table.
 *
 * A NIC whose data path is the host's TCP stack (the "tcp" backend; an offload NIC that
 * places NVMe/TCP payload while the kernel keeps doing TCP, like the mock's offload model)
 * needs the same socket plumbing: non-blocking listen/accept/connect, scatter-gather
 * sendmsg/readv, epoll groups, strict address parsing, rate-limited logging of what a peer
 * causes. This kit is that plumbing, written once: a backend puts the functions below into
 * its ::ferry_hal_nic_ops (all of them, or wraps some: an offload backend wraps recvv() to
 * parse the stream, close() to drop its per-socket state, group_poll() to run deferred
 * completions) and adds its own members.
 *
 * ## Use
 * - In the backend's open(): ferry_hal_lsock_dev_create(), and store the handle as the
 *   **first member** of the private state given to ferry_hal_dev_set_priv(): a
 *   `struct ferry_hal_lsock_dev *` at offset 0 of that struct. The kit's functions that take
 *   a `struct ferry_device` find their state as
 *   `*(struct ferry_hal_lsock_dev **)ferry_hal_dev_get_priv(dev)`, and refuse (-EINVAL) a
 *   device whose private state is NULL or whose handle is not one created for that very
 *   device; a device of a backend that does not follow this layout must never reach them
 *   (its first pointer would be read), which holds when they are only called through the
 *   backend's own ops table. In close(): ferry_hal_lsock_dev_destroy().
 * - A socket's extra state: ferry_hal_lsock_set_priv() / ferry_hal_lsock_get_priv() (the kit
 *   never looks at it; the backend frees it in its close() wrapper before calling
 *   ferry_hal_lsock_close()).
 * - Bytes a backend buffered itself (read from the socket but not yet returned by its
 *   recvv()), or work it must do on the polling thread: ferry_hal_lsock_set_ready() makes
 *   group_poll() report the socket readable without waiting, whatever the kernel says.
 *
 * ## Behaviour (the contracts of ferry/hal/nic.h)
 * IPv4 "a.b.c.d:port" and IPv6 "[v6]:port" only (no names); TCP_NODELAY on request; SIGPIPE
 * never raised; level-triggered epoll with microsecond timeouts; recvv() reports
 * FERRY_HAL_NIC_RX_F_PLACED (it reads straight into the caller's iovecs), never CRC_OK.
 *
 * Logging: every message names the component given to ferry_hal_lsock_dev_create() (e.g.
 * "tcp"); a message with no device to name (a NULL socket or group) names "hal". Failures a
 * peer can cause (resets, refused connects, broken pipes) are rate limited per device (10 per
 * second, the rest counted); their reason always reaches ferry_last_error().
 *
 * Threading: as ferry/hal/nic.h (a socket on one thread at a time; create/destroy thread-safe).
 */
#ifndef FERRY_HAL_SOCK_H
#define FERRY_HAL_SOCK_H

#include <ferry/hal/nic.h>

FERRY_BEGIN_DECLS

/** The kit's per-device state (opaque). */
struct ferry_hal_lsock_dev;

/**
 * @brief Create the kit's state for @p dev; @p comp names the backend in log messages.
 *
 * Does not store the handle: the backend puts it first in its private state (see "Use").
 * @param[in] dev the device being opened.
 * @param[in] comp log component, 1..31 characters (copied).
 * @param[out] out the handle (untouched on failure).
 * @retval 0 success.
 * @retval -EINVAL NULL argument, @p comp empty or longer than 31 characters.
 * @retval -ENOMEM out of memory.
 */
FERRY_API int ferry_hal_lsock_dev_create(struct ferry_device *dev, const char *comp,
					 struct ferry_hal_lsock_dev **out);

/**
 * @brief Destroy the state (every socket and group of the device closed first). NULL: no-op.
 *
 * With sockets or groups still open it logs a warning and keeps (leaks) the state they point
 * to rather than leave them dangling.
 * @param[in] ld the handle from ferry_hal_lsock_dev_create(), or NULL.
 */
FERRY_API void ferry_hal_lsock_dev_destroy(struct ferry_hal_lsock_dev *ld);

/** @name The TCP members of ::ferry_hal_nic_ops (same signatures and contracts)
 * @{ */
/**
 * @brief query(): caps FERRY_HAL_NIC_CAP_TCP, iovec limits; the DDP fields 0.
 * @param[in] dev a device whose private state starts with the kit's handle.
 * @param[out] info what the device offers (max_send_iov = max_recv_iov = 64 or IOV_MAX if
 *             smaller, max_sockets 0).
 * @retval 0 success.
 * @retval -EINVAL @p info NULL, or @p dev is not a socket kit device.
 */
FERRY_API int ferry_hal_lsock_query(struct ferry_device *dev, struct ferry_hal_nic_info *info);
/**
 * @brief listen(): a non-blocking listening socket (SO_REUSEADDR; IPV6_V6ONLY for IPv6).
 * @param[in] dev a device whose private state starts with the kit's handle.
 * @param[in] opts the options; opts->addr is parsed strictly (no names).
 * @param[out] out the listening socket (untouched on failure).
 * @retval 0 success.
 * @retval -EINVAL not a socket kit device, NULL @p out or @p opts, a bad address, unknown
 *         flags, a size too small or a buffer size or backlog above INT32_MAX.
 * @retval -EADDRINUSE the address is taken.
 * @retval -ENOMEM out of memory.
 * @retval other the negative errno of socket(), setsockopt(), bind() or listen().
 */
FERRY_API int ferry_hal_lsock_listen(struct ferry_device *dev,
				     const struct ferry_hal_sock_opts *opts,
				     struct ferry_hal_sock **out);
/**
 * @brief accept(): take one pending connection, non-blocking (TCP_NODELAY as the listener).
 * @param[in] listener a socket from ferry_hal_lsock_listen().
 * @param[out] out the connected socket (untouched on failure).
 * @retval 0 success.
 * @retval -EAGAIN none pending (also when a pending connection died in the queue).
 * @retval -EINVAL NULL argument, or @p listener is not listening.
 * @retval -ENOMEM out of memory.
 * @retval other the negative errno of accept4() or setsockopt().
 */
FERRY_API int ferry_hal_lsock_accept(struct ferry_hal_sock *listener, struct ferry_hal_sock **out);
/**
 * @brief connect(): start a non-blocking connect to opts->addr.
 *
 * A refused, unreachable or timed out connect, even one known at once, still returns 0: the
 * outcome comes from ferry_hal_lsock_sock_error().
 * @param[in] dev a device whose private state starts with the kit's handle.
 * @param[in] opts the options; opts->addr must name a port other than 0.
 * @param[out] out the connecting socket (untouched on failure).
 * @retval 0 connecting (or already failed: see sock_error()).
 * @retval -EINVAL not a socket kit device, NULL @p out or @p opts, bad options or address.
 * @retval -ENOMEM out of memory.
 * @retval other a local failure of socket(), setsockopt() or connect() (negative errno).
 */
FERRY_API int ferry_hal_lsock_connect(struct ferry_device *dev,
				      const struct ferry_hal_sock_opts *opts,
				      struct ferry_hal_sock **out);
/**
 * @brief sock_error(): state of a connecting or connected socket (SO_ERROR).
 * @param[in] sock the socket.
 * @retval 0 connected (always 0 for a listener without a recorded error).
 * @retval -EINPROGRESS still connecting.
 * @retval -EINVAL @p sock is NULL.
 * @retval other the failure of the connection (-ECONNREFUSED, -ECONNRESET...); sticky.
 */
FERRY_API int ferry_hal_lsock_sock_error(struct ferry_hal_sock *sock);
/**
 * @brief close(): leave the group, close the descriptor, free the socket. NULL: no-op.
 *
 * The backend frees its per-socket state (ferry_hal_lsock_set_priv()) before calling it.
 * @param[in] sock the socket; invalid after the call.
 */
FERRY_API void ferry_hal_lsock_close(struct ferry_hal_sock *sock);
/**
 * @brief get_addr(): the local or the remote address as "a.b.c.d:port" / "[v6]:port".
 * @param[in] sock the socket.
 * @param[in] peer 0 for the local address, non-zero for the peer's.
 * @param[out] buf the NUL-terminated address.
 * @param[in] len size of @p buf.
 * @retval 0 success.
 * @retval -EINVAL NULL @p sock or @p buf, or @p len 0.
 * @retval -ENOTCONN no peer (a listener, or a socket not connected).
 * @retval -ENOBUFS @p len too small.
 * @retval other the negative errno of getsockname() / getpeername().
 */
FERRY_API int ferry_hal_lsock_get_addr(struct ferry_hal_sock *sock, int peer, char *buf,
				       size_t len);
/**
 * @brief sendv(): one sendmsg() (MSG_NOSIGNAL, MSG_DONTWAIT) of the iovecs.
 * @param[in] sock a connected socket (not a listener).
 * @param[in] iov the bytes to send; read during the call only.
 * @param[in] iovcnt 1..64 iovecs holding at least one byte.
 * @return bytes taken (> 0, possibly fewer than offered); -EAGAIN none taken (also on EINTR);
 *         -EINVAL bad arguments; -EPIPE / -ECONNRESET the peer is gone; another negative
 *         errno of sendmsg().
 */
FERRY_API ssize_t ferry_hal_lsock_sendv(struct ferry_hal_sock *sock, const struct iovec *iov,
					uint32_t iovcnt);
/**
 * @brief recvv(): one readv() of the socket into the caller's iovecs.
 * @param[in] sock a connected socket (not a listener).
 * @param[in] iov where the bytes go; written during the call only.
 * @param[in] iovcnt 1..64 iovecs with room for at least one byte.
 * @param[out] flags FERRY_HAL_NIC_RX_F_PLACED (never CRC_OK).
 * @return bytes received (> 0); 0 the peer closed the stream; -EAGAIN none pending (also on
 *         EINTR); -EINVAL bad arguments or NULL @p flags; -ECONNRESET the peer is gone;
 *         another negative errno of readv().
 */
FERRY_API ssize_t ferry_hal_lsock_recvv(struct ferry_hal_sock *sock, const struct iovec *iov,
					uint32_t iovcnt, uint32_t *flags);
/**
 * @brief sock_stats(): the socket's counters (bytes and system calls of sendv() / recvv()).
 * @param[in] sock the socket.
 * @param[out] stats the counters.
 * @retval 0 success.
 * @retval -EINVAL NULL argument.
 */
FERRY_API int ferry_hal_lsock_sock_stats(struct ferry_hal_sock *sock,
					 struct ferry_hal_sock_stats *stats);
/**
 * @brief group_create(): a socket group on a new epoll instance.
 * @param[in] dev a device whose private state starts with the kit's handle.
 * @param[out] out the group (untouched on failure).
 * @retval 0 success.
 * @retval -EINVAL not a socket kit device, or @p out NULL.
 * @retval -ENOMEM out of memory.
 * @retval other the negative errno of epoll_create1().
 */
FERRY_API int ferry_hal_lsock_group_create(struct ferry_device *dev,
					   struct ferry_hal_sock_group **out);
/**
 * @brief group_destroy(): close the group's epoll instance and free it. NULL: no-op.
 *
 * Sockets still in it are detached with a warning (they stay open, in no group).
 * @param[in] group the group; invalid after the call.
 */
FERRY_API void ferry_hal_lsock_group_destroy(struct ferry_hal_sock_group *group);
/**
 * @brief group_add(): add @p sock with IN interest (and OUT once, for a connect in progress).
 * @param[in] group the group.
 * @param[in] sock a socket in no group.
 * @param[in] ctx reported in ::ferry_hal_sock_event::ctx.
 * @retval 0 success.
 * @retval -EINVAL NULL argument.
 * @retval -EBUSY @p sock is in a group already.
 * @retval other the negative errno of epoll_ctl().
 */
FERRY_API int ferry_hal_lsock_group_add(struct ferry_hal_sock_group *group,
					struct ferry_hal_sock *sock, void *ctx);
/**
 * @brief group_remove(): take @p sock out of @p group.
 * @param[in] group the group.
 * @param[in] sock a socket of @p group.
 * @retval 0 success.
 * @retval -EINVAL NULL argument, or @p sock is not in @p group.
 * @retval other the negative errno of epoll_ctl(); the socket has left the group anyway.
 */
FERRY_API int ferry_hal_lsock_group_remove(struct ferry_hal_sock_group *group,
					   struct ferry_hal_sock *sock);
/**
 * @brief group_poll(): report ready sockets of @p group.
 *
 * Sockets marked ready (ferry_hal_lsock_set_ready()) come first, as
 * FERRY_HAL_SOCK_EV_IN, in FIFO order rotated by each poll (with more ready than @p max, the
 * array is filled with ready sockets only and the next poll continues with the ones not
 * reported); when any was reported the epoll wait that follows has timeout 0. Epoll events
 * of a socket already reported ready are merged into its entry (OR of the flags): a socket
 * appears at most once in one poll's output.
 * @param[in] group the group.
 * @param[out] events the reports.
 * @param[in] max size of @p events (> 0).
 * @param[in] timeout_us longest wait in microseconds (0: do not wait).
 * @return number of events (>= 0; an interrupted wait gives what was found so far);
 *         -EINVAL NULL argument or @p max 0; another negative errno of the epoll wait.
 */
FERRY_API int ferry_hal_lsock_group_poll(struct ferry_hal_sock_group *group,
					 struct ferry_hal_sock_event *events, uint32_t max,
					 uint32_t timeout_us);
/**
 * @brief group_want_out(): switch the FERRY_HAL_SOCK_EV_OUT interest of @p sock.
 * @param[in] group the group.
 * @param[in] sock a socket of @p group.
 * @param[in] on non-zero: report OUT while writable; 0: do not.
 * @retval 0 success (no system call when the interest does not change).
 * @retval -EINVAL NULL argument, or @p sock is not in @p group.
 * @retval other the negative errno of epoll_ctl().
 */
FERRY_API int ferry_hal_lsock_group_want_out(struct ferry_hal_sock_group *group,
					     struct ferry_hal_sock *sock, int on);
/** @} */

/**
 * @brief Every TCP member of ::ferry_hal_nic_ops but query(), all taken from the kit: for a
 * backend that wraps none of them, in its ops table's initializer:
 * @code
 * static const struct ferry_hal_nic_ops ops = {
 *	.abi_version = FERRY_HAL_NIC_ABI_VERSION,
 *	.query = ferry_hal_lsock_query, // or the backend's own
 *	FERRY_HAL_LSOCK_NIC_OPS,
 *	.rdma = &my_rdma_ops,           // members beyond TCP: the backend's
 * };
 * @endcode
 * A backend that wraps some of them lists the members itself (naming a member twice in one
 * initializer is what -Woverride-init warns about).
 */
#define FERRY_HAL_LSOCK_NIC_OPS                                                                    \
	.listen = ferry_hal_lsock_listen, .accept = ferry_hal_lsock_accept,                        \
	.connect = ferry_hal_lsock_connect, .sock_error = ferry_hal_lsock_sock_error,              \
	.close = ferry_hal_lsock_close, .get_addr = ferry_hal_lsock_get_addr,                      \
	.sendv = ferry_hal_lsock_sendv, .recvv = ferry_hal_lsock_recvv,                            \
	.group_create = ferry_hal_lsock_group_create,                                              \
	.group_destroy = ferry_hal_lsock_group_destroy, .group_add = ferry_hal_lsock_group_add,    \
	.group_remove = ferry_hal_lsock_group_remove, .group_poll = ferry_hal_lsock_group_poll,    \
	.sock_stats = ferry_hal_lsock_sock_stats, .group_want_out = ferry_hal_lsock_group_want_out

/** @name Backend hooks
 * @{ */
/**
 * @brief The backend's per-socket state.
 * @param[in] sock the socket.
 * @return what ferry_hal_lsock_set_priv() stored; NULL until set, and for a NULL socket.
 */
FERRY_API void *ferry_hal_lsock_get_priv(const struct ferry_hal_sock *sock);
/**
 * @brief Attach the backend's per-socket state. The kit never looks at it or frees it.
 * @param[in] sock the socket (NULL: no-op).
 * @param[in] priv the state (NULL detaches).
 */
FERRY_API void ferry_hal_lsock_set_priv(struct ferry_hal_sock *sock, void *priv);
/**
 * @brief The socket's file descriptor (owned by the kit: close() closes it).
 * @param[in] sock the socket.
 * @return the descriptor, or -1 for NULL.
 */
FERRY_API int ferry_hal_lsock_fd(const struct ferry_hal_sock *sock);
/**
 * @brief The device the socket belongs to.
 * @param[in] sock the socket.
 * @return the device, or NULL for NULL.
 */
FERRY_API struct ferry_device *ferry_hal_lsock_device(const struct ferry_hal_sock *sock);
/**
 * @brief The group the socket is in.
 * @param[in] sock the socket.
 * @return the group; NULL: in none, or a NULL socket.
 */
FERRY_API struct ferry_hal_sock_group *ferry_hal_lsock_group(const struct ferry_hal_sock *sock);
/**
 * @brief While @p on, group_poll() of the socket's group reports it FERRY_HAL_SOCK_EV_IN
 * without waiting (the backend holds bytes or work for it). Call on the socket's thread; kept
 * across group changes (set while in no group, or kept through group_remove() or the
 * destruction of its group, the mark makes the next group report it); cleared by close().
 * Setting it on when on, or off when off, changes nothing. NULL socket: no-op.
 * @param[in] sock the socket.
 * @param[in] on non-zero sets the mark, 0 clears it.
 */
FERRY_API void ferry_hal_lsock_set_ready(struct ferry_hal_sock *sock, int on);
/** @} */

FERRY_END_DECLS

#endif /* FERRY_HAL_SOCK_H */
