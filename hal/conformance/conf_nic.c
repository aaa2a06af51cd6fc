/*
 * Conformance, the TCP part of the NIC class (ferry/hal/nic.h): the socket contract executed
 * through the HAL ops of every backend with FERRY_HAL_NIC_CAP_TCP, on loopback connections
 * whose both ends are sockets of one device in this process. Also the helpers conf_nic.h
 * declares (conf_nic_ddp.c uses them).
 *
 * Checks (suite nic): query_sane (capabilities and limits consistent, required ops present);
 * lifecycle (listen on port 0 and get_addr, accept -EAGAIN before a connection, connect's
 * outcome through sock_error, IN/OUT readiness reports with each socket's context, level
 * triggering, end of stream, a refused connect sticky, the -EINVAL cases, close(NULL));
 * sg_integrity (random iovec splits on both sides, a few MiB each way at once, byte-exact,
 * no CRC_OK on a plain connection); many_sockets (32 connections in one group, interleaved,
 * every stream exact and every report carrying its own socket's context).
 */
#include <stdio.h>
#include <stdlib.h>
#include "conf_nic.h"

/* ---- helpers (conf_nic.h) ----------------------------------------------------------------- */

void cn_open(const struct conf_param *p, const char *extra_args, struct cn *t)
{
	memset(t, 0, sizeof(*t));
	t->backend = conf_backend(p);
	if (!t->backend->nic)
		CONF_SKIP("no NIC class (ferry_hal_backend::nic is NULL)");
	t->N = t->backend->nic;
	const char *base = p->args ? p->args : "";
	char args[512];
	if (extra_args && *extra_args)
		snprintf(args, sizeof(args), "%s%s%s", base, *base ? "," : "", extra_args);
	else
		snprintf(args, sizeof(args), "%s", base);
	t->dev = conf_open_device(p, args, FERRY_DEVICE_CLASS_NIC, "a NIC table");
	CONF_ASSERT(t->N->query != NULL, "nic.h: query is required (NULL)");
	CONF_RC(t->N->query(t->dev, &t->info), 0, "nic query");
	if (!(t->info.caps & FERRY_HAL_NIC_CAP_TCP)) {
		ferry_device_close(t->dev);
		CONF_SKIP("no FERRY_HAL_NIC_CAP_TCP (caps 0x%x)", t->info.caps);
	}
}

void cn_close(struct cn *t)
{
	ferry_device_close(t->dev);
	t->dev = NULL;
}

void cn_require_ddp(struct cn *t)
{
	if (!(t->info.caps & FERRY_HAL_NIC_CAP_DDP)) {
		cn_close(t);
		CONF_SKIP("no FERRY_HAL_NIC_CAP_DDP (caps 0x%x)", t->info.caps);
	}
}

int cn_poll(struct cn *t, struct ferry_hal_sock_group *g, struct ferry_hal_sock_event *ev,
	    uint32_t max, uint32_t timeout_us)
{
	struct ferry_hal_sock_event tmp[16];
	if (!g) {
		if (timeout_us)
			conf_sleep_us(timeout_us < 1000 ? timeout_us : 1000);
		return 0;
	}
	if (!ev) {
		ev = tmp;
		max = 16;
	}
	int n = t->N->group_poll(g, ev, max, timeout_us);
	CONF_ASSERT(n >= 0 && (uint32_t)n <= max, "group_poll (max %u) returned %d (%s; %s)", max,
		    n, ferry_strerror(n), conf_last_error());
	return n;
}

static void cn_listen(struct cn *t, struct ferry_hal_sock **l, uint32_t bufsz, char *addr,
		      size_t len)
{
	struct ferry_hal_sock_opts o = {.size = sizeof(o),
					.addr = CN_HOST ":0",
					.sndbuf = bufsz,
					.rcvbuf = bufsz};
	CONF_RC(t->N->listen(t->dev, &o, l), 0, "listen on " CN_HOST ":0");
	CONF_ASSERT(*l != NULL, "listen returned 0 without a socket");
	CONF_RC(t->N->get_addr(*l, 0, addr, len), 0, "get_addr of the listener");
	size_t hl = strlen(CN_HOST);
	CONF_ASSERT(strncmp(addr, CN_HOST ":", hl + 1) == 0 && strtoul(addr + hl + 1, NULL, 10) > 0,
		    "nic.h: listen on port 0 picks a free port and get_addr tells which: got "
		    "'%s'",
		    addr);
}

void cn_pair_open(struct cn *t, struct ferry_hal_sock_group *g, void *cctx, uint32_t bufsz,
		  struct cn_pair *pr)
{
	memset(pr, 0, sizeof(*pr));
	cn_listen(t, &pr->l, bufsz, pr->addr, sizeof(pr->addr));
	struct ferry_hal_sock_opts o = {.size = sizeof(o),
					.addr = pr->addr,
					.flags = FERRY_HAL_SOCK_F_NODELAY,
					.sndbuf = bufsz,
					.rcvbuf = bufsz};
	CONF_RC(t->N->connect(t->dev, &o, &pr->c), 0, "connect to the listener");
	if (g)
		CONF_RC(t->N->group_add(g, pr->c, cctx), 0, "group_add of the connecting socket");
	uint64_t end = conf_now_ns() + CN_WAIT_NS;
	int rc;
	while ((rc = t->N->accept(pr->l, &pr->a)) == -EAGAIN) {
		CONF_ASSERT(conf_now_ns() < end, "accept: no connection after 5 s (connect to %s)",
			    pr->addr);
		cn_poll(t, g, NULL, 0, 1000);
		conf_sleep_us(50);
	}
	CONF_RC(rc, 0, "accept");
	while ((rc = t->N->sock_error(pr->c)) == -EINPROGRESS) {
		CONF_ASSERT(conf_now_ns() < end,
			    "sock_error: still -EINPROGRESS 5 s after the peer accepted");
		cn_poll(t, g, NULL, 0, 1000);
	}
	CONF_RC(rc, 0, "sock_error of a connected socket");
}

void cn_pair_close(struct cn *t, struct cn_pair *pr)
{
	t->N->close(pr->c);
	t->N->close(pr->a);
	t->N->close(pr->l);
	memset(pr, 0, sizeof(*pr));
}

void cn_send_all(struct cn *t, struct ferry_hal_sock *s, struct ferry_hal_sock_group *g,
		 const void *buf, size_t len)
{
	size_t off = 0;
	uint64_t end = conf_now_ns() + CN_WAIT_NS;
	while (off < len) {
		struct iovec v = {(uint8_t *)buf + off, len - off};
		ssize_t r = t->N->sendv(s, &v, 1);
		if (r == -EAGAIN) {
			CONF_ASSERT(conf_now_ns() < end,
				    "sendv: %zu of %zu bytes sent after 5 s (the peer not reading?)",
				    off, len);
			cn_poll(t, g, NULL, 0, 1000);
			continue;
		}
		CONF_ASSERT(r > 0 && (size_t)r <= len - off, "sendv of %zu bytes returned %zd (%s)",
			    len - off, r, ferry_strerror((int)r));
		off += (size_t)r;
	}
}

/* ---- query_sane ---------------------------------------------------------------------------- */

CONF_TEST(nic, query_sane)
{
	const struct ferry_hal_backend *b = conf_backend(param);
	if (!b->nic)
		CONF_SKIP("no NIC class (ferry_hal_backend::nic is NULL)");
	const struct ferry_hal_nic_ops *N = b->nic;
	CONF_ASSERT(N->abi_version == FERRY_HAL_NIC_ABI_VERSION,
		    "nic ops abi_version %u, this suite is built for %u", N->abi_version,
		    FERRY_HAL_NIC_ABI_VERSION);
	struct cn t;
	cn_open(param, NULL, &t);
	struct ferry_hal_nic_info i = t.info;
	CONF_ASSERT(i.caps & FERRY_HAL_NIC_CAP_TCP, "caps 0x%x without FERRY_HAL_NIC_CAP_TCP",
		    i.caps);
	CONF_ASSERT(i.max_send_iov >= 16 && i.max_recv_iov >= 16,
		    "nic.h: max_send_iov / max_recv_iov >= 16: got %u / %u", i.max_send_iov,
		    i.max_recv_iov);
	const struct {
		const char *name;
		int set;
	} req[] = {
		{"listen", !!N->listen},
		{"accept", !!N->accept},
		{"connect", !!N->connect},
		{"sock_error", !!N->sock_error},
		{"close", !!N->close},
		{"get_addr", !!N->get_addr},
		{"sendv", !!N->sendv},
		{"recvv", !!N->recvv},
		{"group_create", !!N->group_create},
		{"group_destroy", !!N->group_destroy},
		{"group_add", !!N->group_add},
		{"group_remove", !!N->group_remove},
		{"group_poll", !!N->group_poll},
	};
	for (size_t k = 0; k < sizeof(req) / sizeof(req[0]); k++)
		CONF_ASSERT(req[k].set, "nic.h: %s is required with FERRY_HAL_NIC_CAP_TCP (NULL)",
			    req[k].name);
	CONF_ASSERT(!(i.caps & FERRY_HAL_NIC_CAP_DDP_CRC) || (i.caps & FERRY_HAL_NIC_CAP_DDP),
		    "nic.h: FERRY_HAL_NIC_CAP_DDP_CRC comes with FERRY_HAL_NIC_CAP_DDP (caps 0x%x)",
		    i.caps);
	if (i.caps & FERRY_HAL_NIC_CAP_DDP) {
		CONF_ASSERT(i.ddp_max_sges >= 1, "nic.h: ddp_max_sges >= 1 with DDP: got %u",
			    i.ddp_max_sges);
		CONF_ASSERT(i.ddp_max_io >= 4096, "nic.h: ddp_max_io >= 4096 with DDP: got %u",
			    i.ddp_max_io);
		CONF_ASSERT(i.ddp_ndomains >= 1 && i.ddp_ndomains <= FERRY_HAL_NIC_DDP_DOMAINS_MAX,
			    "nic.h: ddp_ndomains 1..%u with DDP: got %u",
			    FERRY_HAL_NIC_DDP_DOMAINS_MAX, i.ddp_ndomains);
		for (uint32_t k = 0; k < i.ddp_ndomains; k++)
			CONF_ASSERT(i.ddp_domains[k] != NULL, "ddp_domains[%u] is NULL (of %u)", k,
				    i.ddp_ndomains);
		CONF_ASSERT(N->ddp_queue_add && N->ddp_queue_del && N->ddp_setup &&
				    N->ddp_teardown && N->ddp_resync,
			    "nic.h: ddp_queue_add/del, ddp_setup/teardown and ddp_resync are "
			    "required with FERRY_HAL_NIC_CAP_DDP");
	}
	cn_close(&t);
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

#define CTX_L ((void *)(uintptr_t)0x11)
#define CTX_C ((void *)(uintptr_t)0x22)
#define CTX_A ((void *)(uintptr_t)0x33)

/* Every event seen per context since it was last cleared: an OUT reported once (a connect
 * finishing) may come in the poll that waits for another socket's event. */
struct lc_seen {
	uint32_t ev[3];
};

static uint32_t *lc_slot(struct lc_seen *s, void *ctx)
{
	CONF_ASSERT(ctx == CTX_L || ctx == CTX_C || ctx == CTX_A,
		    "group_poll: an event with context %p, not one given to group_add", ctx);
	return &s->ev[ctx == CTX_L ? 0 : ctx == CTX_C ? 1 : 2];
}

/* Poll @p g until the events seen for @p ctx include @p want (any event if 0; 5 s). */
static void wait_event(struct cn *t, struct ferry_hal_sock_group *g, struct lc_seen *s, void *ctx,
		       uint32_t want, const char *what)
{
	uint64_t end = conf_now_ns() + CN_WAIT_NS;
	uint32_t *mine = lc_slot(s, ctx);
	while (want ? (*mine & want) != want : *mine == 0) {
		struct ferry_hal_sock_event ev[16];
		int n = cn_poll(t, g, ev, 16, 10000);
		for (int k = 0; k < n; k++)
			*lc_slot(s, ev[k].ctx) |= ev[k].events;
		CONF_ASSERT(conf_now_ns() < end,
			    "group_poll: %s: no event 0x%x after 5 s (events seen for it: 0x%x)",
			    what, want, *mine);
	}
}

CONF_TEST(nic, lifecycle)
{
	struct cn t;
	cn_open(param, NULL, &t);
	const struct ferry_hal_nic_ops *N = t.N;
	struct ferry_hal_sock *l = NULL, *c = NULL, *a = NULL, *x = NULL;
	struct ferry_hal_sock_group *g = NULL;
	char la[CN_ADDR_MAX], buf[CN_ADDR_MAX], buf2[CN_ADDR_MAX];
	struct lc_seen seen = {{0}};

	cn_listen(&t, &l, 0, la, sizeof(la));
	CONF_RC(N->get_addr(l, 1, buf, sizeof(buf)), -ENOTCONN,
		"get_addr(peer) of a listener (nic.h: -ENOTCONN no peer)");
	CONF_RC(N->get_addr(l, 0, buf, 4), -ENOBUFS, "get_addr into 4 bytes (nic.h: -ENOBUFS)");
	CONF_RC(N->accept(l, &x), -EAGAIN, "accept with no connection pending");

	/* The same address again is taken. */
	struct ferry_hal_sock_opts o = {.size = sizeof(o), .addr = la};
	int rc = N->listen(t.dev, &o, &x);
	if (rc == 0)
		N->close(x);
	CONF_RC(rc, -EADDRINUSE, "listen on the address of an open listener");

	CONF_RC(N->group_create(t.dev, &g), 0, "group_create");
	CONF_RC(N->group_add(g, l, CTX_L), 0, "group_add of the listener");
	o.addr = la;
	CONF_RC(N->connect(t.dev, &o, &c), 0, "connect");
	/* Into the group before sock_error: its connect is still "in progress" for the group,
	 * which reports OUT once when it finishes. */
	CONF_RC(N->group_add(g, c, CTX_C), 0, "group_add of the connecting socket");
	rc = N->sock_error(c);
	CONF_ASSERT(rc == 0 || rc == -EINPROGRESS,
		    "sock_error right after connect: %d (%s), want -EINPROGRESS or 0", rc,
		    ferry_strerror(rc));
	wait_event(&t, g, &seen, CTX_L, FERRY_HAL_SOCK_EV_IN,
		   "the listener with a connection pending (IN)");
	CONF_RC(N->accept(l, &a), 0, "accept of a pending connection");
	CONF_ASSERT(a != NULL, "accept returned 0 without a socket");
	wait_event(&t, g, &seen, CTX_C, FERRY_HAL_SOCK_EV_OUT,
		   "nic.h: a connect finishing is reported OUT");
	CONF_RC(N->sock_error(c), 0, "sock_error after the connect finished");

	/* Addresses: both ends name each other. */
	CONF_RC(N->get_addr(c, 1, buf, sizeof(buf)), 0, "get_addr(peer) of the connected socket");
	CONF_ASSERT(strcmp(buf, la) == 0, "the connected socket's peer is '%s', listener '%s'", buf,
		    la);
	CONF_RC(N->get_addr(a, 0, buf, sizeof(buf)), 0, "get_addr(local) of the accepted socket");
	CONF_ASSERT(strcmp(buf, la) == 0, "the accepted socket's local address '%s', listener '%s'",
		    buf, la);
	CONF_RC(N->get_addr(a, 1, buf, sizeof(buf)), 0, "get_addr(peer) of the accepted socket");
	CONF_RC(N->get_addr(c, 0, buf2, sizeof(buf2)), 0, "get_addr(local) of the connected one");
	CONF_ASSERT(strcmp(buf, buf2) == 0,
		    "the accepted socket's peer '%s' is not the connecting socket's address '%s'",
		    buf, buf2);

	/* Data and readiness, level triggered. */
	CONF_RC(N->group_add(g, a, CTX_A), 0, "group_add of the accepted socket");
	uint8_t in[64];
	uint32_t fl = 0;
	struct iovec iv = {in, sizeof(in)};
	CONF_RC((int)N->recvv(a, &iv, 1, &fl), -EAGAIN, "recvv with nothing sent");
	const char msg[] = "ferry conformance: hello";
	cn_send_all(&t, c, g, msg, sizeof(msg));
	wait_event(&t, g, &seen, CTX_A, FERRY_HAL_SOCK_EV_IN, "the peer sent bytes (IN)");
	seen.ev[2] = 0;
	wait_event(&t, g, &seen, CTX_A, FERRY_HAL_SOCK_EV_IN,
		   "nic.h: level triggered, unread bytes are reported again (IN)");
	size_t got = 0;
	uint64_t end = conf_now_ns() + CN_WAIT_NS;
	while (got < sizeof(msg)) {
		struct iovec v = {in + got, sizeof(in) - got};
		ssize_t r = N->recvv(a, &v, 1, &fl);
		if (r == -EAGAIN) {
			CONF_ASSERT(conf_now_ns() < end, "recvv: %zu of %zu bytes after 5 s", got,
				    sizeof(msg));
			cn_poll(&t, g, NULL, 0, 1000);
			continue;
		}
		CONF_ASSERT(r > 0, "recvv returned %zd (%s)", r, ferry_strerror((int)r));
		CONF_ASSERT(!(fl & FERRY_HAL_NIC_RX_F_CRC_OK),
			    "nic.h: CRC_OK on a connection without an offloaded queue (flags 0x%x)",
			    fl);
		got += (size_t)r;
	}
	CONF_ASSERT(got == sizeof(msg) && memcmp(in, msg, sizeof(msg)) == 0,
		    "recvv: %zu bytes, not the %zu sent", got, sizeof(msg));
	CONF_RC((int)N->recvv(a, &iv, 1, &fl), -EAGAIN, "recvv after every byte was read");

	if (N->group_want_out) {
		/* Optional OUT interest: on, an idle connected socket is reported writable. */
		CONF_RC(N->group_want_out(g, c, 1), 0, "group_want_out(on)");
		seen.ev[1] = 0;
		wait_event(&t, g, &seen, CTX_C, FERRY_HAL_SOCK_EV_OUT,
			   "nic.h: group_want_out(on): a writable socket is reported OUT");
		CONF_RC(N->group_want_out(g, c, 0), 0, "group_want_out(off)");
	}

	/* Malformed calls. */
	struct iovec zero = {in, 0};
	CONF_RC((int)N->sendv(c, &iv, 0), -EINVAL, "sendv of 0 iovecs");
	CONF_RC((int)N->sendv(c, &zero, 1), -EINVAL, "sendv of one 0-byte iovec");
	CONF_RC((int)N->recvv(a, &iv, 0, &fl), -EINVAL, "recvv into 0 iovecs");
	CONF_RC((int)N->recvv(a, &zero, 1, &fl), -EINVAL, "recvv into one 0-byte iovec");
	static const char *const bad[] = {"not-an-address",  "127.0.0.1",      "127.0.0.1:0",
					  "127.0.0.1:65536", "300.1.1.1:4420", ""};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		struct ferry_hal_sock_opts bo = {.size = sizeof(bo), .addr = bad[k]};
		x = NULL;
		rc = N->connect(t.dev, &bo, &x);
		if (rc == 0)
			N->close(x);
		CONF_RC(rc, -EINVAL, bad[k][0] ? bad[k] : "connect to \"\"");
	}
	struct ferry_hal_sock_opts bo = {.size = sizeof(bo), .addr = "no-such:host:1"};
	x = NULL;
	rc = N->listen(t.dev, &bo, &x);
	if (rc == 0)
		N->close(x);
	CONF_RC(rc, -EINVAL, "listen on \"no-such:host:1\"");
	N->close(NULL);
	N->group_destroy(NULL);

	/* The peer closes: IN, then end of stream. */
	N->close(c);
	c = NULL;
	seen.ev[2] = 0;
	wait_event(&t, g, &seen, CTX_A, 0, "the peer closed");
	end = conf_now_ns() + CN_WAIT_NS;
	ssize_t r;
	while ((r = N->recvv(a, &iv, 1, &fl)) == -EAGAIN) {
		CONF_ASSERT(conf_now_ns() < end,
			    "recvv: no end of stream 5 s after the peer closed");
		cn_poll(&t, g, NULL, 0, 1000);
	}
	CONF_ASSERT(r == 0, "nic.h: recvv returns 0 when the peer closed: got %zd (%s)", r,
		    ferry_strerror((int)r));

	/* A refused connect: the outcome from sock_error, sticky. */
	char dead[CN_ADDR_MAX];
	snprintf(dead, sizeof(dead), "%s", la);
	CONF_RC(N->group_remove(g, l), 0, "group_remove of the listener");
	N->close(l);
	l = NULL;
	o.addr = dead;
	CONF_RC(N->connect(t.dev, &o, &c), 0,
		"connect to a closed port (nic.h: the outcome comes from sock_error)");
	CONF_RC(N->group_add(g, c, CTX_C), 0, "group_add of the refused socket");
	end = conf_now_ns() + CN_WAIT_NS;
	while ((rc = N->sock_error(c)) == -EINPROGRESS) {
		CONF_ASSERT(conf_now_ns() < end,
			    "sock_error: -EINPROGRESS 5 s after a connect to a "
			    "closed port");
		cn_poll(&t, g, NULL, 0, 1000);
	}
	CONF_RC(rc, -ECONNREFUSED, "sock_error of a connect to a closed port");
	CONF_RC(N->sock_error(c), -ECONNREFUSED, "sock_error again (nic.h: a failure is sticky)");
	N->close(c);
	N->close(a);
	N->group_destroy(g);
	cn_close(&t);
}

/* ---- sg_integrity -------------------------------------------------------------------------- */

#define SG_BYTES (3u << 20) /* each way */
#define SG_CHUNK 65536u
#define SG_MAXSEG 16u

/* One direction of the transfer. */
struct sg_dir {
	struct ferry_hal_sock *tx, *rx;
	uint8_t *src, *dst;
	size_t sent, got;
	uint64_t calls, short_sends;
	const char *name;
};

/* @p n iovecs (1..SG_MAXSEG) cutting @p len bytes at @p base in random pieces, some empty. */
static uint32_t sg_split(uint64_t *rng, uint8_t *base, size_t len, struct iovec *iov)
{
	uint32_t n = 1 + (uint32_t)(conf_rand(rng) % SG_MAXSEG);
	size_t left = len;
	for (uint32_t i = 0; i < n; i++) {
		size_t l = i == n - 1 ? left
				      : (conf_rand(rng) % 4 == 0 ? 0 : conf_rand(rng) % (left + 1));
		if (l > left)
			l = left;
		iov[i] = (struct iovec){base, l};
		base += l;
		left -= l;
	}
	return n;
}

static void sg_step(struct cn *t, uint64_t *rng, struct sg_dir *d)
{
	struct iovec iov[SG_MAXSEG];
	if (d->sent < SG_BYTES) {
		size_t len = 1 + conf_rand(rng) % (4 * SG_CHUNK);
		if (len > SG_BYTES - d->sent)
			len = SG_BYTES - d->sent;
		uint32_t n = sg_split(rng, d->src + d->sent, len, iov);
		ssize_t r = t->N->sendv(d->tx, iov, n);
		CONF_ASSERT(r == -EAGAIN || (r > 0 && (size_t)r <= len),
			    "%s: sendv of %zu bytes in %u iovecs returned %zd (%s; %s)", d->name,
			    len, n, r, ferry_strerror((int)r), conf_last_error());
		if (r > 0) {
			d->sent += (size_t)r;
			d->short_sends += (size_t)r < len;
		}
	}
	if (d->got < d->sent || d->got < SG_BYTES) {
		size_t len = 1 + conf_rand(rng) % SG_CHUNK;
		if (len > SG_BYTES - d->got)
			len = SG_BYTES - d->got;
		if (!len)
			return;
		uint32_t n = sg_split(rng, d->dst + d->got, len, iov);
		uint32_t fl = 0xdead0000u;
		ssize_t r = t->N->recvv(d->rx, iov, n, &fl);
		if (r == -EAGAIN)
			return;
		CONF_ASSERT(
			r > 0 && (size_t)r <= len,
			"%s: recvv into %zu bytes in %u iovecs returned %zd (%s; %s) at byte %zu",
			d->name, len, n, r, ferry_strerror((int)r), conf_last_error(), d->got);
		CONF_ASSERT(!(fl & FERRY_HAL_NIC_RX_F_CRC_OK) &&
				    !(fl &
				      ~(FERRY_HAL_NIC_RX_F_PLACED | FERRY_HAL_NIC_RX_F_CRC_OK)),
			    "%s: recvv flags 0x%x on a plain connection (nic.h: never CRC_OK "
			    "without an offloaded queue; no unknown bits)",
			    d->name, fl);
		CONF_ASSERT(d->got + (size_t)r <= d->sent,
			    "%s: %zu bytes received, only %zu were sent", d->name,
			    d->got + (size_t)r, d->sent);
		for (size_t k = d->got; k < d->got + (size_t)r; k++)
			CONF_ASSERT(d->dst[k] == d->src[k],
				    "%s: stream byte %zu is 0x%02x, sent 0x%02x (recvv of %zd bytes "
				    "into %u iovecs)",
				    d->name, k, d->dst[k], d->src[k], r, n);
		d->got += (size_t)r;
		d->calls++;
	}
}

CONF_TEST(nic, sg_integrity)
{
	struct cn t;
	cn_open(param, NULL, &t);
	struct ferry_hal_sock_group *g;
	CONF_RC(t.N->group_create(t.dev, &g), 0, "group_create");
	struct cn_pair pr;
	cn_pair_open(&t, g, CTX_C, 65536, &pr);
	CONF_RC(t.N->group_add(g, pr.a, CTX_A), 0, "group_add of the accepted socket");
	uint64_t rng = conf_seed(param, 0x5c);
	struct sg_dir d[2] = {
		{.tx = pr.c, .rx = pr.a, .name = "connecting->accepted"},
		{.tx = pr.a, .rx = pr.c, .name = "accepted->connecting"},
	};
	for (int k = 0; k < 2; k++) {
		d[k].src = malloc(SG_BYTES);
		d[k].dst = malloc(SG_BYTES);
		CONF_ASSERT(d[k].src && d[k].dst, "out of memory");
		conf_pattern(d[k].src, SG_BYTES, conf_seed(param, 0x5c00 + (uint64_t)k));
		memset(d[k].dst, 0xa5, SG_BYTES);
	}
	uint64_t end = conf_now_ns() + 4 * CN_WAIT_NS;
	while (d[0].got < SG_BYTES || d[1].got < SG_BYTES) {
		CONF_ASSERT(conf_now_ns() < end,
			    "20 s: %zu/%zu bytes sent/received one way, %zu/%zu the other, of %u",
			    d[0].sent, d[0].got, d[1].sent, d[1].got, SG_BYTES);
		sg_step(&t, &rng, &d[0]);
		sg_step(&t, &rng, &d[1]);
		cn_poll(&t, g, NULL, 0, 0);
	}
	uint32_t fl;
	uint8_t one;
	struct iovec v = {&one, 1};
	CONF_RC((int)t.N->recvv(pr.a, &v, 1, &fl), -EAGAIN, "recvv after the whole stream");
	CONF_RC((int)t.N->recvv(pr.c, &v, 1, &fl), -EAGAIN, "recvv after the whole stream");
	CONF_INFO("%u bytes each way: %llu/%llu receives, %llu/%llu short sends", SG_BYTES,
		  (unsigned long long)d[0].calls, (unsigned long long)d[1].calls,
		  (unsigned long long)d[0].short_sends, (unsigned long long)d[1].short_sends);
	for (int k = 0; k < 2; k++) {
		free(d[k].src);
		free(d[k].dst);
	}
	cn_pair_close(&t, &pr);
	t.N->group_destroy(g);
	cn_close(&t);
}

/* ---- many_sockets -------------------------------------------------------------------------- */

#define MS_CONNS 32u
#define MS_BASE 40000u

/* One end of one connection: its stream out and the stream it expects in. */
struct ms_end {
	struct ferry_hal_sock *s;
	uint8_t *out, *in;
	size_t out_len, in_len, sent, got;
	uint64_t in_seed;
	uint32_t events;
};

static void ms_recv(struct cn *t, struct ms_end *e, uint32_t idx)
{
	for (int k = 0; k < 4 && e->got < e->in_len; k++) {
		size_t room = e->in_len - e->got;
		struct iovec v[2] = {{e->in + e->got, room / 2},
				     {e->in + e->got + room / 2, room - room / 2}};
		uint32_t fl;
		ssize_t r = t->N->recvv(e->s, v, 2, &fl);
		if (r == -EAGAIN)
			return;
		CONF_ASSERT(r > 0 && (size_t)r <= room,
			    "socket %u: recvv of %zu bytes returned %zd (%s; %s)", idx, room, r,
			    ferry_strerror((int)r), conf_last_error());
		CONF_ASSERT(!(fl & FERRY_HAL_NIC_RX_F_CRC_OK),
			    "socket %u: CRC_OK on a plain socket", idx);
		e->got += (size_t)r;
	}
}

CONF_TEST(nic, many_sockets)
{
	struct cn t;
	cn_open(param, NULL, &t);
	uint32_t n = MS_CONNS;
	if (t.info.max_sockets && t.info.max_sockets < 2 * n + 1)
		n = (t.info.max_sockets - 1) / 2;
	CONF_ASSERT(n >= 1, "max_sockets %u: not one connection", t.info.max_sockets);
	struct ferry_hal_sock_group *g;
	CONF_RC(t.N->group_create(t.dev, &g), 0, "group_create");
	struct ms_end *e = calloc(2 * n, sizeof(*e));
	struct cn_pair *pr = calloc(n, sizeof(*pr));
	CONF_ASSERT(e && pr, "out of memory");
	uint64_t rng = conf_seed(param, 0x3a);
	for (uint32_t i = 0; i < n; i++) {
		/* Context of end k is &e[k]: a report must carry its own socket's. */
		cn_pair_open(&t, g, &e[2 * i], 0, &pr[i]);
		CONF_RC(t.N->group_add(g, pr[i].a, &e[2 * i + 1]), 0,
			"group_add of an accepted socket");
		e[2 * i].s = pr[i].c;
		e[2 * i + 1].s = pr[i].a;
		/* The listener is not needed any more. */
		t.N->close(pr[i].l);
		pr[i].l = NULL;
	}
	for (uint32_t k = 0; k < 2 * n; k++) {
		struct ms_end *me = &e[k];
		me->out_len = MS_BASE + (size_t)(conf_rand(&rng) % 60000u);
		me->out = malloc(me->out_len);
		CONF_ASSERT(me->out, "out of memory");
		conf_pattern(me->out, me->out_len, conf_seed(param, 0x3a00 + k));
	}
	for (uint32_t k = 0; k < 2 * n; k++) {
		e[k].in_len = e[k ^ 1u].out_len;
		e[k].in = malloc(e[k].in_len);
		CONF_ASSERT(e[k].in, "out of memory");
	}
	uint64_t end = conf_now_ns() + 4 * CN_WAIT_NS;
	uint32_t done = 0;
	while (done < 2 * n) {
		/* Interleaved: a small random piece of every stream per round. */
		for (uint32_t k = 0; k < 2 * n; k++) {
			struct ms_end *me = &e[k];
			if (me->sent == me->out_len)
				continue;
			size_t len = 1 + conf_rand(&rng) % 3000u;
			if (len > me->out_len - me->sent)
				len = me->out_len - me->sent;
			struct iovec v = {me->out + me->sent, len};
			ssize_t r = t.N->sendv(me->s, &v, 1);
			CONF_ASSERT(r == -EAGAIN || (r > 0 && (size_t)r <= len),
				    "end %u: sendv of %zu returned %zd (%s)", k, len, r,
				    ferry_strerror((int)r));
			if (r > 0)
				me->sent += (size_t)r;
		}
		struct ferry_hal_sock_event ev[16];
		int m = cn_poll(&t, g, ev, 16, 1000);
		for (int j = 0; j < m; j++) {
			struct ms_end *me = ev[j].ctx;
			CONF_ASSERT(me >= e && me < e + 2 * n,
				    "group_poll: an event with context %p, none of the %u given",
				    ev[j].ctx, 2 * n);
			uint32_t k = (uint32_t)(me - e);
			me->events++;
			if (ev[j].events & FERRY_HAL_SOCK_EV_IN)
				ms_recv(&t, me, k);
		}
		done = 0;
		for (uint32_t k = 0; k < 2 * n; k++)
			done += e[k].got == e[k].in_len;
		CONF_ASSERT(conf_now_ns() < end,
			    "20 s: %u of %u streams received whole (readiness reports missing?)",
			    done, 2 * n);
	}
	for (uint32_t k = 0; k < 2 * n; k++) {
		const uint8_t *want = e[k ^ 1u].out;
		for (size_t b = 0; b < e[k].in_len; b++)
			CONF_ASSERT(e[k].in[b] == want[b],
				    "end %u (connection %u): stream byte %zu is 0x%02x, sent 0x%02x "
				    "(bytes of another connection?)",
				    k, k / 2, b, e[k].in[b], want[b]);
		CONF_ASSERT(e[k].events > 0, "end %u received without a readiness report", k);
	}
	for (uint32_t i = 0; i < n; i++)
		cn_pair_close(&t, &pr[i]);
	for (uint32_t k = 0; k < 2 * n; k++) {
		free(e[k].out);
		free(e[k].in);
	}
	free(e);
	free(pr);
	t.N->group_destroy(g);
	cn_close(&t);
}
