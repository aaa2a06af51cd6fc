/*
 * Sockets of the tcp backend: listen/accept/connect, the connect outcome (sock_error), the
 * data path (sendv/recvv: one system call each, no lock, no allocation, no copy), addresses,
 * counters and close. A socket object is allocated at listen/accept/connect and freed by
 * close, which first takes it out of its group.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include "tcp_internal.h"

/* A failure a peer (or the network) caused: logged through the device's rate limit; the
 * reason always reaches ferry_last_error(). */
#define TCP_PEER_ERR(dev, fmt, ...)                                                                \
	do {                                                                                       \
		unsigned int sup_;                                                                 \
		if (!tcp_ratelimit(&(dev)->rl, &sup_))                                             \
			ferry_set_last_error(TCP_COMP, fmt, __VA_ARGS__);                          \
		else if (sup_)                                                                     \
			TCP_ERR(fmt " (%u similar messages suppressed before)", __VA_ARGS__,       \
				sup_);                                                             \
		else                                                                               \
			TCP_ERR(fmt, __VA_ARGS__);                                                 \
	} while (0)

static const char *sock_opts_check(const struct ferry_hal_sock_opts *opts)
{
	if (!opts)
		return "NULL options";
	if (opts->size < sizeof(*opts))
		return "opts->size smaller than struct ferry_hal_sock_opts";
	if (opts->flags & ~FERRY_HAL_SOCK_F_NODELAY)
		return "unknown flags";
	if (opts->sndbuf > INT32_MAX || opts->rcvbuf > INT32_MAX)
		return "sndbuf/rcvbuf above INT32_MAX";
	if (opts->backlog > INT32_MAX)
		return "backlog above INT32_MAX";
	return NULL;
}

static struct ferry_hal_sock *sock_alloc(struct tcp_dev *dev, int fd, int family)
{
	struct ferry_hal_sock *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->fd = fd;
	s->family = family;
	s->dev = dev;
	atomic_fetch_add(&dev->nsocks, 1);
	return s;
}

static int set_int(int fd, int level, int name, int val, const char *what)
{
	if (setsockopt(fd, level, name, &val, sizeof(val))) {
		int e = errno;
		TCP_ERR("setsockopt %s=%d: %s", what, val, strerror(e));
		return -e;
	}
	return 0;
}

/* Creates a non-blocking socket for @p opts, with the options that must precede
 * bind/connect (buffer sizes decide the window scale at the handshake). */
static int sock_open(const char *op, const struct ferry_hal_sock_opts *opts, int listen,
		     struct sockaddr_storage *ss, socklen_t *sl, int *fd_out)
{
	const char *bad = sock_opts_check(opts);
	if (bad) {
		TCP_ERR("%s: %s", op, bad);
		return -EINVAL;
	}
	int rc = tcp_addr_parse(opts->addr, listen, ss, sl);
	if (rc)
		return rc;
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (fd < 0) {
		rc = -errno;
		TCP_ERR("%s %s: socket: %s", op, opts->addr, strerror(-rc));
		return rc;
	}
	if (listen)
		rc = set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
	if (!rc && ss->ss_family == AF_INET6 && listen)
		rc = set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1, "IPV6_V6ONLY");
	if (!rc && (opts->flags & FERRY_HAL_SOCK_F_NODELAY))
		rc = set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY");
	if (!rc && opts->sndbuf)
		rc = set_int(fd, SOL_SOCKET, SO_SNDBUF, (int)opts->sndbuf, "SO_SNDBUF");
	if (!rc && opts->rcvbuf)
		rc = set_int(fd, SOL_SOCKET, SO_RCVBUF, (int)opts->rcvbuf, "SO_RCVBUF");
	if (rc) {
		close(fd);
		return rc;
	}
	*fd_out = fd;
	return 0;
}

int tcp_listen(struct ferry_device *fdev, const struct ferry_hal_sock_opts *opts,
	       struct ferry_hal_sock **out)
{
	struct tcp_dev *dev = tcp_dev_get(fdev);
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd = -1, rc;

	if (!dev || !out) {
		TCP_ERR("listen: %s", dev ? "NULL out" : "not a tcp device");
		return -EINVAL;
	}
	rc = sock_open("listen", opts, 1, &ss, &sl, &fd);
	if (rc)
		return rc;
	if (bind(fd, (struct sockaddr *)&ss, sl)) {
		rc = -errno;
		TCP_ERR("listen %s: bind: %s", opts->addr, strerror(-rc));
		goto err_close;
	}
	if (listen(fd, opts->backlog ? (int)opts->backlog : (int)TCP_DEFAULT_BACKLOG)) {
		rc = -errno;
		TCP_ERR("listen %s: %s", opts->addr, strerror(-rc));
		goto err_close;
	}
	struct ferry_hal_sock *s = sock_alloc(dev, fd, ss.ss_family);
	if (!s) {
		rc = -ENOMEM;
		TCP_ERR("listen %s: out of memory", opts->addr);
		goto err_close;
	}
	s->listener = 1;
	s->nodelay = !!(opts->flags & FERRY_HAL_SOCK_F_NODELAY);
	*out = s;
	return 0;

err_close:
	close(fd);
	return rc;
}

int tcp_accept(struct ferry_hal_sock *l, struct ferry_hal_sock **out)
{
	if (!l || !out || !l->listener) {
		TCP_ERR("accept: %s", !l || !out ? "NULL argument" : "not a listening socket");
		return -EINVAL;
	}
	int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == EAGAIN || e == EWOULDBLOCK)
			return -EAGAIN;
		/* A connection that died in the queue: nothing to take, try again later. */
		if (e == ECONNABORTED || e == EPROTO || e == EINTR)
			return -EAGAIN;
		TCP_PEER_ERR(l->dev, "accept: %s", strerror(e));
		return -e;
	}
	/* Linux copies TCP_NODELAY and the buffer sizes from the listener; setting nodelay again
	 * keeps the flag's meaning independent of that (one call per connection). */
	int rc = l->nodelay ? set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY") : 0;
	struct ferry_hal_sock *s = rc ? NULL : sock_alloc(l->dev, fd, l->family);
	if (!s) {
		if (!rc)
			TCP_ERR("accept: out of memory");
		close(fd);
		return rc ? rc : -ENOMEM;
	}
	s->nodelay = l->nodelay;
	*out = s;
	return 0;
}

int tcp_connect(struct ferry_device *fdev, const struct ferry_hal_sock_opts *opts,
		struct ferry_hal_sock **out)
{
	struct tcp_dev *dev = tcp_dev_get(fdev);
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd = -1, rc;

	if (!dev || !out) {
		TCP_ERR("connect: %s", dev ? "NULL out" : "not a tcp device");
		return -EINVAL;
	}
	rc = sock_open("connect", opts, 0, &ss, &sl, &fd);
	if (rc)
		return rc;
	struct ferry_hal_sock *s = sock_alloc(dev, fd, ss.ss_family);
	if (!s) {
		TCP_ERR("connect %s: out of memory", opts->addr);
		close(fd);
		return -ENOMEM;
	}
	s->nodelay = !!(opts->flags & FERRY_HAL_SOCK_F_NODELAY);
	s->connecting = 1;
	snprintf(s->peer, sizeof(s->peer), "%s", opts->addr); /* parsed: fits */
	if (connect(fd, (struct sockaddr *)&ss, sl) && errno != EINPROGRESS) {
		/* Even a failure known at once (loopback refusing) is the outcome of the
		 * connection, reported by sock_error() like a late one: the caller has a single
		 * path for it. Only local mistakes fail connect() itself. */
		int e = errno;
		if (e != ECONNREFUSED && e != ENETUNREACH && e != EHOSTUNREACH && e != ETIMEDOUT &&
		    e != EADDRNOTAVAIL) {
			TCP_ERR("connect %s: %s", opts->addr, strerror(e));
			tcp_close(s);
			return -e;
		}
		TCP_PEER_ERR(dev, "connect %s: %s", opts->addr, strerror(e));
		s->err = -e;
		s->connecting = 0;
	}
	*out = s;
	return 0;
}

int tcp_sock_error(struct ferry_hal_sock *s)
{
	if (!s) {
		TCP_ERR("sock_error: NULL socket");
		return -EINVAL;
	}
	if (s->err)
		return s->err;
	if (s->listener)
		return 0;
	int e = 0;
	socklen_t el = sizeof(e);
	if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &el))
		e = errno;
	if (e) {
		/* SO_ERROR reads and clears: keep it so every later call says the same. */
		s->err = -e;
		s->connecting = 0;
		if (s->peer[0])
			TCP_PEER_ERR(s->dev, "connection to %s: %s", s->peer, strerror(e));
		else
			TCP_PEER_ERR(s->dev, "accepted connection: %s", strerror(e));
		return s->err;
	}
	if (s->connecting) {
		/* No error yet: connected if the kernel knows the peer, else still in progress. */
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		if (getpeername(s->fd, (struct sockaddr *)&ss, &sl))
			return -EINPROGRESS;
		s->connecting = 0;
	}
	return 0;
}

void tcp_close(struct ferry_hal_sock *s)
{
	if (!s)
		return;
	tcp_group_leave(s);
	close(s->fd);
	atomic_fetch_sub(&s->dev->nsocks, 1);
	free(s);
}

int tcp_get_addr(struct ferry_hal_sock *s, int peer, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (!s || !buf || !len) {
		TCP_ERR("get_addr: NULL socket or empty buffer");
		return -EINVAL;
	}
	if (peer && s->listener)
		return -ENOTCONN;
	int rc = peer ? getpeername(s->fd, (struct sockaddr *)&ss, &sl)
		      : getsockname(s->fd, (struct sockaddr *)&ss, &sl);
	if (rc) {
		rc = -errno;
		if (rc != -ENOTCONN)
			TCP_ERR("get_addr: %s", strerror(-rc));
		return rc;
	}
	return tcp_addr_format((struct sockaddr *)&ss, buf, len);
}

/* Checks a data-path iovec array: 1..TCP_MAX_IOV entries holding at least one byte (an
 * empty readv would return 0, which means end of stream). */
static int iov_check(const char *op, struct ferry_hal_sock *s, const struct iovec *iov,
		     uint32_t iovcnt)
{
	if (!s || !iov || iovcnt == 0 || iovcnt > TCP_MAX_IOV || s->listener) {
		TCP_ERR("%s: %s", op,
			!s || !iov    ? "NULL argument"
			: s->listener ? "listening socket"
				      : "iovcnt must be 1..64");
		return -EINVAL;
	}
	for (uint32_t i = 0; i < iovcnt; i++)
		if (iov[i].iov_len)
			return 0;
	TCP_ERR("%s: %u iovecs of 0 bytes", op, iovcnt);
	return -EINVAL;
}

ssize_t tcp_sendv(struct ferry_hal_sock *s, const struct iovec *iov, uint32_t iovcnt)
{
	int rc = iov_check("sendv", s, iov, iovcnt);
	if (rc)
		return rc;
	struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = iovcnt};
	ssize_t n = sendmsg(s->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	s->stats.tx_calls++;
	if (n >= 0) {
		s->stats.tx_bytes += (uint64_t)n;
		return n;
	}
	int e = errno;
	if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR)
		return -EAGAIN;
	if (e == EPIPE || e == ECONNRESET)
		TCP_PEER_ERR(s->dev, "sendv: peer gone (%s)", strerror(e));
	else
		TCP_PEER_ERR(s->dev, "sendv: %s", strerror(e));
	return -e;
}

ssize_t tcp_recvv(struct ferry_hal_sock *s, const struct iovec *iov, uint32_t iovcnt,
		  uint32_t *flags)
{
	int rc = iov_check("recvv", s, iov, iovcnt);
	if (rc)
		return rc;
	if (!flags) {
		TCP_ERR("recvv: NULL flags");
		return -EINVAL;
	}
	ssize_t n = readv(s->fd, iov, (int)iovcnt);
	s->stats.rx_calls++;
	*flags = FERRY_HAL_NIC_RX_F_PLACED;
	if (n >= 0) {
		s->stats.rx_bytes += (uint64_t)n;
		return n;
	}
	int e = errno;
	if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR)
		return -EAGAIN;
	if (e == ECONNRESET)
		TCP_PEER_ERR(s->dev, "recvv: peer gone (%s)", strerror(e));
	else
		TCP_PEER_ERR(s->dev, "recvv: %s", strerror(e));
	return -e;
}

int tcp_sock_stats(struct ferry_hal_sock *s, struct ferry_hal_sock_stats *stats)
{
	if (!s || !stats) {
		TCP_ERR("sock_stats: NULL argument");
		return -EINVAL;
	}
	*stats = s->stats;
	return 0;
}
