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
 *   a ::ferry_device find their state as
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
 */
FERRY_API void ferry_hal_lsock_dev_destroy(struct ferry_hal_lsock_dev *ld);

/** @name The TCP members of ::ferry_hal_nic_ops (same signatures and contracts)
 * @{ */
/** query(): caps FERRY_HAL_NIC_CAP_TCP, iovec limits; the DDP fields 0. */
FERRY_API int ferry_hal_lsock_query(struct ferry_device *dev, struct ferry_hal_nic_info *info);
/** listen() */
FERRY_API int ferry_hal_lsock_listen(struct ferry_device *dev,
				     const struct ferry_hal_sock_opts *opts,
				     struct ferry_hal_sock **out);
/** accept() */
FERRY_API int ferry_hal_lsock_accept(struct ferry_hal_sock *listener, struct ferry_hal_sock **out);
/** connect() */
FERRY_API int ferry_hal_lsock_connect(struct ferry_device *dev,
				      const struct ferry_hal_sock_opts *opts,
				      struct ferry_hal_sock **out);
/** sock_error() */
FERRY_API int ferry_hal_lsock_sock_error(struct ferry_hal_sock *sock);
/** close() */
FERRY_API void ferry_hal_lsock_close(struct ferry_hal_sock *sock);
/** get_addr() */
FERRY_API int ferry_hal_lsock_get_addr(struct ferry_hal_sock *sock, int peer, char *buf,
				       size_t len);
/** sendv() */
FERRY_API ssize_t ferry_hal_lsock_sendv(struct ferry_hal_sock *sock, const struct iovec *iov,
					uint32_t iovcnt);
/** recvv(): one readv() of the socket */
FERRY_API ssize_t ferry_hal_lsock_recvv(struct ferry_hal_sock *sock, const struct iovec *iov,
					uint32_t iovcnt, uint32_t *flags);
/** sock_stats() */
FERRY_API int ferry_hal_lsock_sock_stats(struct ferry_hal_sock *sock,
					 struct ferry_hal_sock_stats *stats);
/** group_create() */
FERRY_API int ferry_hal_lsock_group_create(struct ferry_device *dev,
					   struct ferry_hal_sock_group **out);
/** group_destroy() */
FERRY_API void ferry_hal_lsock_group_destroy(struct ferry_hal_sock_group *group);
/** group_add() */
FERRY_API int ferry_hal_lsock_group_add(struct ferry_hal_sock_group *group,
					struct ferry_hal_sock *sock, void *ctx);
/** group_remove() */
FERRY_API int ferry_hal_lsock_group_remove(struct ferry_hal_sock_group *group,
					   struct ferry_hal_sock *sock);
/**
 * group_poll(): sockets marked ready (ferry_hal_lsock_set_ready()) come first, as
 * FERRY_HAL_SOCK_EV_IN, in FIFO order rotated by each poll (with more ready than @p max, the
 * array is filled with ready sockets only and the next poll continues with the ones not
 * reported); when any was reported the epoll wait that follows has timeout 0. Epoll events
 * of a socket already reported ready are merged into its entry (OR of the flags): a socket
 * appears at most once in one poll's output.
 */
FERRY_API int ferry_hal_lsock_group_poll(struct ferry_hal_sock_group *group,
					 struct ferry_hal_sock_event *events, uint32_t max,
					 uint32_t timeout_us);
/** group_want_out() */
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
/** @brief The backend's per-socket state (NULL until set; NULL for a NULL socket). */
FERRY_API void *ferry_hal_lsock_get_priv(const struct ferry_hal_sock *sock);
/** @brief Attach the backend's per-socket state (NULL detaches; NULL socket: no-op). */
FERRY_API void ferry_hal_lsock_set_priv(struct ferry_hal_sock *sock, void *priv);
/** @brief The socket's file descriptor (-1 for NULL). */
FERRY_API int ferry_hal_lsock_fd(const struct ferry_hal_sock *sock);
/** @brief The device the socket belongs to (NULL for NULL). */
FERRY_API struct ferry_device *ferry_hal_lsock_device(const struct ferry_hal_sock *sock);
/** @brief The group the socket is in (NULL: none, or a NULL socket). */
FERRY_API struct ferry_hal_sock_group *ferry_hal_lsock_group(const struct ferry_hal_sock *sock);
/**
 * @brief While @p on, group_poll() of the socket's group reports it FERRY_HAL_SOCK_EV_IN
 * without waiting (the backend holds bytes or work for it). Call on the socket's thread; kept
 * across group changes (set while in no group, or kept through group_remove() or the
 * destruction of its group, the mark makes the next group report it); cleared by close().
 * Setting it on when on, or off when off, changes nothing. NULL socket: no-op.
 */
FERRY_API void ferry_hal_lsock_set_ready(struct ferry_hal_sock *sock, int on);
/** @} */

FERRY_END_DECLS

#endif /* FERRY_HAL_SOCK_H */
