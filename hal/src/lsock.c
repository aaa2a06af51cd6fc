/*
 * The socket kit's device state and sockets (ferry/hal/sock.h): dev_create/destroy, query,
 * listen/accept/connect, the connect outcome (sock_error), the data path (sendv/recvv: one
 * system call each, no lock, no allocation, no copy), addresses, counters, close and the
 * backend hooks (priv, fd/device/group, set_ready). A socket object is allocated at
 * listen/accept/connect and freed by close, which first takes it out of its group.
 *
 * Notes on the design (moved here with the code of the tcp backend):
 *  - Sockets are non-blocking from creation (SOCK_NONBLOCK, accept4): no call ever waits
 *    except group_poll() for at most its timeout.
 *  - The data path is one system call per sendv()/recvv() (sendmsg with MSG_NOSIGNAL, readv):
 *    the kernel reads from and writes to the caller's iovecs, hence FERRY_HAL_NIC_RX_F_PLACED
 *    on every receive (and never CRC_OK: a socket does not check NVMe/TCP digests).
 *  - Failures a peer can cause (resets, broken pipes, refused connects) are logged through a
 *    per-device rate limit; local mistakes (bad address, bad arguments) always.
 *  - The kit finds its state from a device through the first member of the backend's private
 *    state (sock.h); the magic and the back pointer catch a device of another backend in most
 *    cases, which a generic kit cannot do by the backend pointer.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <limits.h>
#include "lsock_internal.h"

/* A failure a peer (or the network) caused: logged through the device's rate limit; the
 * reason always reaches ferry_last_error(). */
#define LSOCK_PEER_ERR(ld, fmt, ...)                                                               \
	do {                                                                                       \
		unsigned int sup_;                                                                 \
		if (!log_ratelimit(&(ld)->rl, &sup_))                                              \
			ferry_set_last_error((ld)->comp, fmt, __VA_ARGS__);                        \
		else if (sup_)                                                                     \
			LSOCK_ERR(ld, fmt " (%u similar messages suppressed before)", __VA_ARGS__, \
				  sup_);                                                           \
		else                                                                               \
			LSOCK_ERR(ld, fmt, __VA_ARGS__);                                           \
	} while (0)

const char *lsock_comp(const struct ferry_hal_lsock_dev *ld)
{
	return ld ? ld->comp : LSOCK_COMP_NONE;
}

struct ferry_hal_lsock_dev *lsock_dev_get(struct ferry_device *fdev)
{
	struct ferry_hal_lsock_dev *const *first = fdev ? ferry_hal_dev_get_priv(fdev) : NULL;
	struct ferry_hal_lsock_dev *ld = first ? *first : NULL;
	if (!ld || ld->magic != LSOCK_MAGIC || ld->fdev != fdev)
		return NULL;
	return ld;
}

int ferry_hal_lsock_dev_create(struct ferry_device *fdev, const char *comp,
			       struct ferry_hal_lsock_dev **out)
{
	size_t cl = comp ? strlen(comp) : 0;
	if (!fdev || !out || cl == 0 || cl >= LSOCK_COMP_MAX) {
		FERRY_ERR(comp && cl && cl < LSOCK_COMP_MAX ? comp : LSOCK_COMP_NONE,
			  "lsock dev_create: %s",
			  !fdev || !out ? "NULL argument"
					: "component name must have 1..31 characters");
		return -EINVAL;
	}
	struct ferry_hal_lsock_dev *ld = calloc(1, sizeof(*ld));
	if (!ld) {
		FERRY_ERR(comp, "lsock dev_create: out of memory");
		return -ENOMEM;
	}
	ld->magic = LSOCK_MAGIC;
	ld->fdev = fdev;
	snprintf(ld->name, sizeof(ld->name), "%s", ferry_device_get_name(fdev));
	memcpy(ld->comp, comp, cl + 1);
	*out = ld;
	return 0;
}

void ferry_hal_lsock_dev_destroy(struct ferry_hal_lsock_dev *ld)
{
	if (!ld)
		return;
	/* Sockets and groups still open keep a pointer to ld for their rate limit and log
	 * name: leak the few bytes rather than leave them dangling, and say so. */
	uint32_t ns = atomic_load(&ld->nsocks), ng = atomic_load(&ld->ngroups);
	if (ns || ng) {
		LSOCK_WARN(ld, "%s: closed with %u socket(s) and %u group(s) still open", ld->name,
			   ns, ng);
		return;
	}
	ld->magic = 0;
	free(ld);
}

int ferry_hal_lsock_query(struct ferry_device *fdev, struct ferry_hal_nic_info *info)
{
	struct ferry_hal_lsock_dev *ld = lsock_dev_get(fdev);
	if (!ld || !info) {
		LSOCK_ERR(ld, "query: %s", info ? "not a socket kit device" : "NULL info");
		return -EINVAL;
	}
	uint32_t iov = IOV_MAX < LSOCK_MAX_IOV ? (uint32_t)IOV_MAX : LSOCK_MAX_IOV;
	*info = (struct ferry_hal_nic_info){
		.caps = FERRY_HAL_NIC_CAP_TCP,
		.max_send_iov = iov,
		.max_recv_iov = iov,
		.max_sockets = 0,
	};
	return 0;
}

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

static struct ferry_hal_sock *sock_alloc(struct ferry_hal_lsock_dev *dev, int fd, int family)
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

static int set_int(const struct ferry_hal_lsock_dev *ld, int fd, int level, int name, int val,
		   const char *what)
{
	if (setsockopt(fd, level, name, &val, sizeof(val))) {
		int e = errno;
		LSOCK_ERR(ld, "setsockopt %s=%d: %s", what, val, strerror(e));
		return -e;
	}
	return 0;
}

/* Creates a non-blocking socket for @p opts, with the options that must precede
 * bind/connect (buffer sizes decide the window scale at the handshake). */
static int sock_open(const struct ferry_hal_lsock_dev *ld, const char *op,
		     const struct ferry_hal_sock_opts *opts, int listen,
		     struct sockaddr_storage *ss, socklen_t *sl, int *fd_out)
{
	const char *bad = sock_opts_check(opts);
	if (bad) {
		LSOCK_ERR(ld, "%s: %s", op, bad);
		return -EINVAL;
	}
	int rc = lsock_addr_parse(ld, opts->addr, listen, ss, sl);
	if (rc)
		return rc;
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (fd < 0) {
		rc = -errno;
		LSOCK_ERR(ld, "%s %s: socket: %s", op, opts->addr, strerror(-rc));
		return rc;
	}
	if (listen)
		rc = set_int(ld, fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
	if (!rc && ss->ss_family == AF_INET6 && listen)
		rc = set_int(ld, fd, IPPROTO_IPV6, IPV6_V6ONLY, 1, "IPV6_V6ONLY");
	if (!rc && (opts->flags & FERRY_HAL_SOCK_F_NODELAY))
		rc = set_int(ld, fd, IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY");
	if (!rc && opts->sndbuf)
		rc = set_int(ld, fd, SOL_SOCKET, SO_SNDBUF, (int)opts->sndbuf, "SO_SNDBUF");
	if (!rc && opts->rcvbuf)
		rc = set_int(ld, fd, SOL_SOCKET, SO_RCVBUF, (int)opts->rcvbuf, "SO_RCVBUF");
	if (rc) {
		close(fd);
		return rc;
	}
	*fd_out = fd;
	return 0;
}

int ferry_hal_lsock_listen(struct ferry_device *fdev, const struct ferry_hal_sock_opts *opts,
			   struct ferry_hal_sock **out)
{
	struct ferry_hal_lsock_dev *dev = lsock_dev_get(fdev);
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd = -1, rc;

	if (!dev || !out) {
		LSOCK_ERR(dev, "listen: %s", dev ? "NULL out" : "not a socket kit device");
		return -EINVAL;
	}
	rc = sock_open(dev, "listen", opts, 1, &ss, &sl, &fd);
	if (rc)
		return rc;
	if (bind(fd, (struct sockaddr *)&ss, sl)) {
		rc = -errno;
		LSOCK_ERR(dev, "listen %s: bind: %s", opts->addr, strerror(-rc));
		goto err_close;
	}
	if (listen(fd, opts->backlog ? (int)opts->backlog : (int)LSOCK_DEFAULT_BACKLOG)) {
		rc = -errno;
		LSOCK_ERR(dev, "listen %s: %s", opts->addr, strerror(-rc));
		goto err_close;
	}
	struct ferry_hal_sock *s = sock_alloc(dev, fd, ss.ss_family);
	if (!s) {
		rc = -ENOMEM;
		LSOCK_ERR(dev, "listen %s: out of memory", opts->addr);
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

int ferry_hal_lsock_accept(struct ferry_hal_sock *l, struct ferry_hal_sock **out)
{
	if (!l || !out || !l->listener) {
		LSOCK_ERR(l ? l->dev : NULL, "accept: %s",
			  !l || !out ? "NULL argument" : "not a listening socket");
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
		LSOCK_PEER_ERR(l->dev, "accept: %s", strerror(e));
		return -e;
	}
	/* Linux copies TCP_NODELAY and the buffer sizes from the listener; setting nodelay again
	 * keeps the flag's meaning independent of that (one call per connection). */
	int rc = l->nodelay ? set_int(l->dev, fd, IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY") : 0;
	struct ferry_hal_sock *s = rc ? NULL : sock_alloc(l->dev, fd, l->family);
	if (!s) {
		if (!rc)
			LSOCK_ERR(l->dev, "accept: out of memory");
		close(fd);
		return rc ? rc : -ENOMEM;
	}
	s->nodelay = l->nodelay;
	*out = s;
	return 0;
}

int ferry_hal_lsock_connect(struct ferry_device *fdev, const struct ferry_hal_sock_opts *opts,
			    struct ferry_hal_sock **out)
{
	struct ferry_hal_lsock_dev *dev = lsock_dev_get(fdev);
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd = -1, rc;

	if (!dev || !out) {
		LSOCK_ERR(dev, "connect: %s", dev ? "NULL out" : "not a socket kit device");
		return -EINVAL;
	}
	rc = sock_open(dev, "connect", opts, 0, &ss, &sl, &fd);
	if (rc)
		return rc;
	struct ferry_hal_sock *s = sock_alloc(dev, fd, ss.ss_family);
	if (!s) {
		LSOCK_ERR(dev, "connect %s: out of memory", opts->addr);
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
			LSOCK_ERR(dev, "connect %s: %s", opts->addr, strerror(e));
			ferry_hal_lsock_close(s);
			return -e;
		}
		LSOCK_PEER_ERR(dev, "connect %s: %s", opts->addr, strerror(e));
		s->err = -e;
		s->connecting = 0;
	}
	*out = s;
	return 0;
}

int ferry_hal_lsock_sock_error(struct ferry_hal_sock *s)
{
	if (!s) {
		LSOCK_ERR(NULL, "sock_error: NULL socket");
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
			LSOCK_PEER_ERR(s->dev, "connection to %s: %s", s->peer, strerror(e));
		else
			LSOCK_PEER_ERR(s->dev, "accepted connection: %s", strerror(e));
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

void ferry_hal_lsock_close(struct ferry_hal_sock *s)
{
	if (!s)
		return;
	lsock_group_leave(s); /* also takes it off the group's ready list */
	s->ready = 0;
	close(s->fd);
	atomic_fetch_sub(&s->dev->nsocks, 1);
	free(s);
}

int ferry_hal_lsock_get_addr(struct ferry_hal_sock *s, int peer, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (!s || !buf || !len) {
		LSOCK_ERR(s ? s->dev : NULL, "get_addr: NULL socket or empty buffer");
		return -EINVAL;
	}
	if (peer && s->listener)
		return -ENOTCONN;
	int rc = peer ? getpeername(s->fd, (struct sockaddr *)&ss, &sl)
		      : getsockname(s->fd, (struct sockaddr *)&ss, &sl);
	if (rc) {
		rc = -errno;
		if (rc != -ENOTCONN)
			LSOCK_ERR(s->dev, "get_addr: %s", strerror(-rc));
		return rc;
	}
	return lsock_addr_format(s->dev, (struct sockaddr *)&ss, buf, len);
}

/* Checks a data-path iovec array: 1..LSOCK_MAX_IOV entries holding at least one byte (an
 * empty readv would return 0, which means end of stream). */
static int iov_check(const char *op, struct ferry_hal_sock *s, const struct iovec *iov,
		     uint32_t iovcnt)
{
	if (!s || !iov || iovcnt == 0 || iovcnt > LSOCK_MAX_IOV || s->listener) {
		LSOCK_ERR(s ? s->dev : NULL, "%s: %s", op,
			  !s || !iov    ? "NULL argument"
			  : s->listener ? "listening socket"
					: "iovcnt must be 1..64");
		return -EINVAL;
	}
	for (uint32_t i = 0; i < iovcnt; i++)
		if (iov[i].iov_len)
			return 0;
	LSOCK_ERR(s->dev, "%s: %u iovecs of 0 bytes", op, iovcnt);
	return -EINVAL;
}

ssize_t ferry_hal_lsock_sendv(struct ferry_hal_sock *s, const struct iovec *iov, uint32_t iovcnt)
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
		LSOCK_PEER_ERR(s->dev, "sendv: peer gone (%s)", strerror(e));
	else
		LSOCK_PEER_ERR(s->dev, "sendv: %s", strerror(e));
	return -e;
}

ssize_t ferry_hal_lsock_recvv(struct ferry_hal_sock *s, const struct iovec *iov, uint32_t iovcnt,
			      uint32_t *flags)
{
	int rc = iov_check("recvv", s, iov, iovcnt);
	if (rc)
		return rc;
	if (!flags) {
		LSOCK_ERR(s->dev, "recvv: NULL flags");
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
		LSOCK_PEER_ERR(s->dev, "recvv: peer gone (%s)", strerror(e));
	else
		LSOCK_PEER_ERR(s->dev, "recvv: %s", strerror(e));
	return -e;
}

int ferry_hal_lsock_sock_stats(struct ferry_hal_sock *s, struct ferry_hal_sock_stats *stats)
{
	if (!s || !stats) {
		LSOCK_ERR(s ? s->dev : NULL, "sock_stats: NULL argument");
		return -EINVAL;
	}
	*stats = s->stats;
	return 0;
}

void *ferry_hal_lsock_get_priv(const struct ferry_hal_sock *s)
{
	return s ? s->priv : NULL;
}

void ferry_hal_lsock_set_priv(struct ferry_hal_sock *s, void *priv)
{
	if (s)
		s->priv = priv;
}

int ferry_hal_lsock_fd(const struct ferry_hal_sock *s)
{
	return s ? s->fd : -1;
}

struct ferry_device *ferry_hal_lsock_device(const struct ferry_hal_sock *s)
{
	return s ? s->dev->fdev : NULL;
}

struct ferry_hal_sock_group *ferry_hal_lsock_group(const struct ferry_hal_sock *s)
{
	return s ? s->group : NULL;
}

void ferry_hal_lsock_set_ready(struct ferry_hal_sock *s, int on)
{
	if (!s || s->ready == !!on)
		return;
	s->ready = !!on;
	/* The flag belongs to the socket; the list to its group (lsock_group.c), which
	 * group_add()/remove() keep in step with the flag. */
	if (s->group) {
		if (s->ready)
			lsock_ready_link(s->group, s);
		else
			lsock_ready_unlink(s->group, s);
	}
}
