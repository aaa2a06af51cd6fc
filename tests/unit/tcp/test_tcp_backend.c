/*
 * The tcp backend (backends/tcp) through its HAL NIC ops on 127.0.0.1 / [::1] with ephemeral
 * ports: device arguments and query, address parsing (bad strings, address in use),
 * listen/connect/accept, scatter-gather transfers with mismatched iovec splits, partial
 * writes through small buffers, end of stream and a gone peer, refused connects, group
 * readiness (IN only with data, OUT after connect and on request, ERR/IN after a reset),
 * 200 connections in one group, addresses of both ends and the per-socket counters.
 * Every wait is a bounded loop of group_poll() with a timeout.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ferry/ferry.h>
#include <ferry/hal/hal.h>

static struct ferry_device *dev;
static const struct ferry_hal_nic_ops *nic;

static void setup(void)
{
	int rc = ferry_device_open("tcp", "", &dev);
	cr_assert_eq(rc, 0, "open tcp: %d (%s)", rc, ferry_last_error());
	nic = ferry_hal_dev_get_backend(dev)->nic;
	cr_assert_not_null(nic);
}

static void teardown(void)
{
	ferry_device_close(dev);
}

TestSuite(tcp, .init = setup, .fini = teardown, .timeout = 60);

/* ---- helpers ------------------------------------------------------------------------------ */

#define POLL_US 20000u  /* one wait of a helper loop */
#define POLL_ITERS 250u /* at most 5 s per wait */

static struct ferry_hal_sock_opts sopts(const char *addr)
{
	return (struct ferry_hal_sock_opts){.size = sizeof(struct ferry_hal_sock_opts),
					    .addr = addr};
}

static struct ferry_hal_sock *do_listen(const struct ferry_hal_sock_opts *o)
{
	struct ferry_hal_sock *l = NULL;
	int rc = nic->listen(dev, o, &l);
	cr_assert_eq(rc, 0, "listen %s: %d (%s)", o->addr, rc, ferry_last_error());
	return l;
}

static struct ferry_hal_sock *do_connect(const struct ferry_hal_sock_opts *o)
{
	struct ferry_hal_sock *c = NULL;
	int rc = nic->connect(dev, o, &c);
	cr_assert_eq(rc, 0, "connect %s: %d (%s)", o->addr, rc, ferry_last_error());
	return c;
}

/* Polls @p g until an event for @p ctx has one of @p mask; returns its events (0: none). */
static uint32_t wait_ev(struct ferry_hal_sock_group *g, void *ctx, uint32_t mask)
{
	struct ferry_hal_sock_event ev[64];
	for (unsigned it = 0; it < POLL_ITERS; it++) {
		int n = nic->group_poll(g, ev, 64, POLL_US);
		cr_assert_geq(n, 0, "group_poll: %d", n);
		for (int i = 0; i < n; i++)
			if (ev[i].ctx == ctx && (ev[i].events & mask))
				return ev[i].events;
	}
	return 0;
}

/* Events for @p ctx in one non-waiting poll (0 if not reported). */
static uint32_t poll_now(struct ferry_hal_sock_group *g, void *ctx)
{
	struct ferry_hal_sock_event ev[64];
	int n = nic->group_poll(g, ev, 64, 0);
	cr_assert_geq(n, 0);
	uint32_t e = 0;
	for (int i = 0; i < n; i++)
		if (ev[i].ctx == ctx)
			e |= ev[i].events;
	return e;
}

static struct ferry_hal_sock *do_accept(struct ferry_hal_sock *l)
{
	struct ferry_hal_sock_group *g;
	struct ferry_hal_sock *a = NULL;
	cr_assert_eq(nic->group_create(dev, &g), 0);
	cr_assert_eq(nic->group_add(g, l, l), 0);
	int rc = -EAGAIN;
	for (unsigned it = 0; it < POLL_ITERS && rc == -EAGAIN; it++) {
		rc = nic->accept(l, &a);
		if (rc == -EAGAIN)
			(void)wait_ev(g, l, FERRY_HAL_SOCK_EV_IN);
	}
	cr_assert_eq(rc, 0, "accept: %d", rc);
	cr_assert_eq(nic->group_remove(g, l), 0);
	nic->group_destroy(g);
	return a;
}

/* A connected pair on 127.0.0.1 (or @p lo): *l listener, *c client, *a accepted. */
static void pair_opts(const char *lo, struct ferry_hal_sock_opts o, struct ferry_hal_sock **l,
		      struct ferry_hal_sock **c, struct ferry_hal_sock **a)
{
	char addr[64];
	o.addr = lo;
	*l = do_listen(&o);
	cr_assert_eq(nic->get_addr(*l, 0, addr, sizeof(addr)), 0);
	o.addr = addr;
	*c = do_connect(&o);
	*a = do_accept(*l);
	int rc = -EINPROGRESS;
	struct ferry_hal_sock_group *g;
	cr_assert_eq(nic->group_create(dev, &g), 0);
	cr_assert_eq(nic->group_add(g, *c, *c), 0);
	for (unsigned it = 0; it < POLL_ITERS && rc == -EINPROGRESS; it++) {
		rc = nic->sock_error(*c);
		if (rc == -EINPROGRESS)
			(void)wait_ev(g, *c, FERRY_HAL_SOCK_EV_OUT);
	}
	cr_assert_eq(rc, 0, "connect outcome: %d", rc);
	nic->close(NULL); /* a no-op */
	cr_assert_eq(nic->group_remove(g, *c), 0);
	nic->group_destroy(g);
}

static void pair(struct ferry_hal_sock **l, struct ferry_hal_sock **c, struct ferry_hal_sock **a)
{
	pair_opts("127.0.0.1:0", sopts(NULL), l, c, a);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static void fill_random(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		p[i] = (uint8_t)rng;
	}
}

/* Cuts [buf, buf+len) into at most @p max iovecs of sizes from @p sizes (cycled). */
static uint32_t cut(struct iovec *iov, uint32_t max, uint8_t *buf, size_t len, const size_t *sizes,
		    size_t nsizes, size_t *k)
{
	uint32_t n = 0;
	while (len && n < max) {
		size_t s = sizes[(*k)++ % nsizes];
		if (s > len)
			s = len;
		iov[n].iov_base = buf;
		iov[n].iov_len = s;
		buf += s;
		len -= s;
		n++;
	}
	return n;
}

/*
 * Moves @p len bytes from @p tx to @p rx in one thread: the sender cuts with @p ssz, the
 * receiver with @p rsz, waits through a group (OUT asked on a short write). Returns the
 * number of sendv() calls that took fewer bytes than offered or returned -EAGAIN.
 */
static unsigned transfer(struct ferry_hal_sock *tx, struct ferry_hal_sock *rx, const uint8_t *src,
			 uint8_t *dst, size_t len, const size_t *ssz, size_t nssz,
			 const size_t *rsz, size_t nrsz)
{
	struct ferry_hal_sock_group *g;
	struct ferry_hal_sock_event ev[4];
	struct iovec iov[64];
	size_t sent = 0, got = 0, ks = 0, kr = 0;
	unsigned short_writes = 0, idle = 0;
	uint32_t max_iov = 64;

	cr_assert_eq(nic->group_create(dev, &g), 0);
	cr_assert_eq(nic->group_add(g, tx, tx), 0);
	cr_assert_eq(nic->group_add(g, rx, rx), 0);
	while (got < len) {
		int progress = 0;
		if (sent < len) {
			uint32_t n = cut(iov, max_iov, (uint8_t *)src + sent, len - sent, ssz, nssz,
					 &ks);
			size_t offered = 0;
			for (uint32_t i = 0; i < n; i++)
				offered += iov[i].iov_len;
			ssize_t w = nic->sendv(tx, iov, n);
			cr_assert(w > 0 || w == -EAGAIN, "sendv: %zd", w);
			if (w == -EAGAIN || (size_t)w < offered) {
				short_writes++;
				cr_assert_eq(nic->group_want_out(g, tx, 1), 0);
			} else {
				cr_assert_eq(nic->group_want_out(g, tx, 0), 0);
			}
			if (w > 0) {
				sent += (size_t)w;
				progress = 1;
			}
		}
		uint32_t flags = 0;
		uint32_t n = cut(iov, max_iov, dst + got, len - got, rsz, nrsz, &kr);
		ssize_t r = nic->recvv(rx, iov, n, &flags);
		cr_assert(r > 0 || r == -EAGAIN, "recvv: %zd", r);
		cr_assert_eq(flags, FERRY_HAL_NIC_RX_F_PLACED);
		if (r > 0) {
			got += (size_t)r;
			progress = 1;
		}
		if (!progress) {
			cr_assert_lt(idle++, POLL_ITERS, "transfer stalled at %zu/%zu", got, len);
			cr_assert_geq(nic->group_poll(g, ev, 4, POLL_US), 0);
		} else {
			idle = 0;
		}
	}
	cr_assert_eq(sent, len);
	cr_assert_eq(nic->group_remove(g, tx), 0);
	cr_assert_eq(nic->group_remove(g, rx), 0);
	nic->group_destroy(g);
	return short_writes;
}

static void close_all(struct ferry_hal_sock *l, struct ferry_hal_sock *c, struct ferry_hal_sock *a)
{
	nic->close(a);
	nic->close(c);
	nic->close(l);
}

/* ---- device -------------------------------------------------------------------------------- */

Test(tcp, query_and_args)
{
	struct ferry_hal_nic_info info;
	cr_assert_eq(nic->query(dev, &info), 0);
	cr_assert_eq(info.caps & FERRY_HAL_NIC_CAP_TCP, FERRY_HAL_NIC_CAP_TCP);
	cr_assert_eq(info.max_send_iov, 64);
	cr_assert_eq(info.max_recv_iov, 64);
	cr_assert_not_null(nic->sock_stats);
	cr_assert_not_null(nic->group_want_out);

	struct ferry_device *d2 = NULL;
	cr_assert_eq(ferry_device_open("tcp", "nodelay=1", &d2), -EINVAL);
	cr_assert_null(d2);
	cr_assert(strstr(ferry_last_error(), "nodelay"), "%s", ferry_last_error());
}

/* ---- addresses ----------------------------------------------------------------------------- */

Test(tcp, bad_addresses)
{
	static const char *const bad[] = {
		"",
		"127.0.0.1",
		"127.0.0.1:",
		"127.0.0.1:65536",
		"127.0.0.1:99999",
		"127.0.0.1:-1",
		"127.0.0.1:+80",
		"127.0.0.1:0x50",
		"127.0.0.1:80 ",
		" 127.0.0.1:80",
		"127.0.0.1:08",
		"junk",
		"junk:80",
		"256.0.0.1:80",
		"1.2.3:80",
		"1.2.3.4.5:80",
		"01.2.3.4:80",
		":80",
		"::1:80",
		"[::1]",
		"[::1]:",
		"[::1]80",
		"[]:80",
		"[::g]:80",
		"[127.0.0.1]:80",
		"[::1]:65536",
		"1.2.3.4:80:80",
		"[::1]]:80",
		"localhost:80",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ferry_hal_sock_opts o = sopts(bad[i]);
		struct ferry_hal_sock *s = (void *)1;
		cr_expect_eq(nic->listen(dev, &o, &s), -EINVAL, "listen '%s'", bad[i]);
		cr_expect_eq(s, (void *)1, "listen '%s' wrote *out", bad[i]);
		cr_expect_eq(nic->connect(dev, &o, &s), -EINVAL, "connect '%s'", bad[i]);
		cr_expect(strstr(ferry_last_error(), "address") != NULL, "'%s': %s", bad[i],
			  ferry_last_error());
	}
	struct ferry_hal_sock_opts o = sopts(NULL);
	struct ferry_hal_sock *s = NULL;
	cr_assert_eq(nic->listen(dev, &o, &s), -EINVAL);
	/* Connecting to port 0 makes no sense; listening on it picks a port. */
	o = sopts("127.0.0.1:0");
	cr_assert_eq(nic->connect(dev, &o, &s), -EINVAL);
	/* Options: size too small, unknown flags. */
	o = sopts("127.0.0.1:0");
	o.size = sizeof(o) - 1;
	cr_assert_eq(nic->listen(dev, &o, &s), -EINVAL);
	o = sopts("127.0.0.1:0");
	o.flags = 1u << 7;
	cr_assert_eq(nic->listen(dev, &o, &s), -EINVAL);
}

Test(tcp, address_in_use)
{
	char addr[64];
	struct ferry_hal_sock_opts o = sopts("127.0.0.1:0");
	struct ferry_hal_sock *l = do_listen(&o), *l2 = NULL;
	cr_assert_eq(nic->get_addr(l, 0, addr, sizeof(addr)), 0);
	cr_assert(strncmp(addr, "127.0.0.1:", 10) == 0 && strcmp(addr, "127.0.0.1:0") != 0, "%s",
		  addr);
	o.addr = addr;
	cr_assert_eq(nic->listen(dev, &o, &l2), -EADDRINUSE);
	cr_assert_null(l2);
	/* Freed: the same address listens again (SO_REUSEADDR, no TIME_WAIT blocking it). */
	nic->close(l);
	l = do_listen(&o);
	nic->close(l);
}

Test(tcp, get_addr_both_ends)
{
	struct ferry_hal_sock *l, *c, *a;
	char la[64], cl[64], cp[64], al[64], ap[64], tiny[4];
	pair(&l, &c, &a);
	cr_assert_eq(nic->get_addr(l, 0, la, sizeof(la)), 0);
	cr_assert_eq(nic->get_addr(c, 0, cl, sizeof(cl)), 0);
	cr_assert_eq(nic->get_addr(c, 1, cp, sizeof(cp)), 0);
	cr_assert_eq(nic->get_addr(a, 0, al, sizeof(al)), 0);
	cr_assert_eq(nic->get_addr(a, 1, ap, sizeof(ap)), 0);
	cr_assert_str_eq(cp, la);
	cr_assert_str_eq(al, la);
	cr_assert_str_eq(ap, cl);
	cr_assert_str_neq(cl, la);
	cr_assert(strncmp(cl, "127.0.0.1:", 10) == 0, "%s", cl);
	cr_assert_eq(nic->get_addr(l, 1, la, sizeof(la)), -ENOTCONN);
	cr_assert_eq(nic->get_addr(c, 0, tiny, sizeof(tiny)), -ENOBUFS);
	/* Exactly long enough (the NUL included) fits. */
	size_t need = strlen(cl) + 1;
	char *exact = malloc(need);
	cr_assert_eq(nic->get_addr(c, 0, exact, need), 0);
	cr_assert_str_eq(exact, cl);
	cr_assert_eq(nic->get_addr(c, 0, exact, need - 1), -ENOBUFS);
	free(exact);
	close_all(l, c, a);
}

/* ---- data ---------------------------------------------------------------------------------- */

Test(tcp, scatter_gather_roundtrip)
{
	struct ferry_hal_sock *l, *c, *a;
	struct ferry_hal_sock_opts o = sopts(NULL);
	o.flags = FERRY_HAL_SOCK_F_NODELAY;
	pair_opts("127.0.0.1:0", o, &l, &c, &a);
	const size_t len = 200003;
	uint8_t *src = malloc(len), *dst = malloc(len);
	fill_random(src, len);
	memset(dst, 0xa5, len);
	static const size_t ssz[] = {1, 7, 4096, 13, 3, 1500, 1, 65, 511, 2};
	static const size_t rsz[] = {17, 1, 9000, 5, 333, 2, 61, 1024};
	(void)transfer(c, a, src, dst, len, ssz, 10, rsz, 8);
	cr_assert_eq(memcmp(src, dst, len), 0, "bytes differ");

	/* And back the other way, other splits. */
	fill_random(src, len);
	(void)transfer(a, c, src, dst, len, rsz, 8, ssz, 10);
	cr_assert_eq(memcmp(src, dst, len), 0, "bytes differ (reverse)");

	/* Counters: both directions, every byte once. */
	struct ferry_hal_sock_stats cs, as;
	cr_assert_eq(nic->sock_stats(c, &cs), 0);
	cr_assert_eq(nic->sock_stats(a, &as), 0);
	cr_assert_eq(cs.tx_bytes, len);
	cr_assert_eq(cs.rx_bytes, len);
	cr_assert_eq(as.tx_bytes, len);
	cr_assert_eq(as.rx_bytes, len);
	cr_assert_geq(cs.tx_calls, 1);
	cr_assert_geq(as.rx_calls, 1);
	/* 64 iovecs of the ssz cycle hold at most 42806 bytes: 200003 take >= 5 calls. */
	cr_assert_geq(cs.tx_calls, 5);
	free(src);
	free(dst);
	close_all(l, c, a);
}

Test(tcp, iovec_limits)
{
	struct ferry_hal_sock *l, *c, *a;
	pair(&l, &c, &a);
	uint8_t b[65] = {0};
	struct iovec iov[65];
	for (int i = 0; i < 65; i++)
		iov[i] = (struct iovec){.iov_base = &b[i], .iov_len = 1};
	uint32_t flags;
	cr_assert_eq(nic->sendv(c, iov, 65), -EINVAL);
	cr_assert_eq(nic->sendv(c, iov, 0), -EINVAL);
	cr_assert_eq(nic->recvv(a, iov, 65, &flags), -EINVAL);
	cr_assert_eq(nic->recvv(a, iov, 0, &flags), -EINVAL);
	/* Zero bytes to receive would read as end of stream: refused. */
	struct iovec empty[2] = {{.iov_base = b, .iov_len = 0}, {.iov_base = b, .iov_len = 0}};
	cr_assert_eq(nic->recvv(a, empty, 2, &flags), -EINVAL);
	cr_assert_eq(nic->sendv(c, empty, 2), -EINVAL);
	/* Nothing pending: -EAGAIN, flags still say where bytes would go. */
	flags = 0;
	cr_assert_eq(nic->recvv(a, iov, 64, &flags), -EAGAIN);
	/* A listener carries no data. */
	cr_assert_eq(nic->sendv(l, iov, 1), -EINVAL);
	/* 64 one-byte iovecs in one call. */
	for (int i = 0; i < 64; i++)
		b[i] = (uint8_t)(i * 3 + 1);
	cr_assert_eq(nic->sendv(c, iov, 64), 64);
	uint8_t r[64] = {0};
	struct iovec riov = {.iov_base = r, .iov_len = sizeof(r)};
	size_t got = 0;
	struct ferry_hal_sock_group *g;
	cr_assert_eq(nic->group_create(dev, &g), 0);
	cr_assert_eq(nic->group_add(g, a, a), 0);
	for (unsigned it = 0; it < POLL_ITERS && got < 64; it++) {
		riov.iov_base = r + got;
		riov.iov_len = 64 - got;
		ssize_t n = nic->recvv(a, &riov, 1, &flags);
		if (n == -EAGAIN) {
			(void)wait_ev(g, a, FERRY_HAL_SOCK_EV_IN);
			continue;
		}
		cr_assert_gt(n, 0);
		got += (size_t)n;
	}
	cr_assert_eq(got, 64);
	cr_assert_eq(memcmp(r, b, 64), 0);
	nic->group_destroy(g); /* with a member left: detached, close stays safe */
	close_all(l, c, a);
}

Test(tcp, partial_writes_small_sndbuf)
{
	struct ferry_hal_sock *l, *c, *a;
	struct ferry_hal_sock_opts o = sopts(NULL);
	o.sndbuf = 4096;
	o.rcvbuf = 4096;
	pair_opts("127.0.0.1:0", o, &l, &c, &a);
	const size_t len = 4u << 20;
	uint8_t *src = malloc(len), *dst = malloc(len);
	fill_random(src, len);
	static const size_t ssz[] = {65536, 100000, 3, 250000};
	static const size_t rsz[] = {3000, 1, 70000, 4095};
	unsigned shorts = transfer(c, a, src, dst, len, ssz, 4, rsz, 4);
	cr_assert_gt(shorts, 0, "4 MiB through 4 KiB buffers without one short write");
	cr_assert_eq(memcmp(src, dst, len), 0, "bytes differ");
	struct ferry_hal_sock_stats cs, as;
	cr_assert_eq(nic->sock_stats(c, &cs), 0);
	cr_assert_eq(nic->sock_stats(a, &as), 0);
	cr_assert_eq(cs.tx_bytes, len);
	cr_assert_eq(as.rx_bytes, len);
	cr_assert_eq(cs.rx_bytes, 0);
	cr_assert_eq(as.tx_bytes, 0);
	cr_assert_gt(cs.tx_calls, 1);
	free(src);
	free(dst);
	close_all(l, c, a);
}

/* ---- end of stream, gone peer, refused ----------------------------------------------------- */

Test(tcp, eof_then_broken_pipe)
{
	struct ferry_hal_sock *l, *c, *a;
	pair(&l, &c, &a);
	uint8_t b[100];
	fill_random(b, sizeof(b));
	struct iovec iov = {.iov_base = b, .iov_len = sizeof(b)};
	cr_assert_eq(nic->sendv(a, &iov, 1), 100);
	nic->close(a); /* c has nothing unread on a's side: a clean FIN */

	struct ferry_hal_sock_group *g;
	cr_assert_eq(nic->group_create(dev, &g), 0);
	cr_assert_eq(nic->group_add(g, c, c), 0);
	uint8_t r[256];
	struct iovec riov = {.iov_base = r, .iov_len = sizeof(r)};
	uint32_t flags;
	size_t got = 0;
	ssize_t n = -EAGAIN;
	for (unsigned it = 0; it < POLL_ITERS; it++) {
		n = nic->recvv(c, &riov, 1, &flags);
		if (n > 0) {
			got += (size_t)n;
			riov.iov_base = r + got;
			riov.iov_len = sizeof(r) - got;
			continue;
		}
		if (n == 0)
			break;
		cr_assert_eq(n, -EAGAIN);
		cr_assert_neq(wait_ev(g, c, FERRY_HAL_SOCK_EV_IN | FERRY_HAL_SOCK_EV_ERR), 0);
	}
	cr_assert_eq(got, 100, "data before the FIN");
	cr_assert_eq(memcmp(r, b, 100), 0);
	cr_assert_eq(n, 0, "end of stream");
	/* EOF is level triggered: still readable, still 0. */
	cr_assert(poll_now(g, c) & FERRY_HAL_SOCK_EV_IN);
	cr_assert_eq(nic->recvv(c, &riov, 1, &flags), 0);

	/* The peer's socket is gone: the first send draws a reset, later ones fail. */
	ssize_t w = 0;
	for (unsigned it = 0; it < POLL_ITERS; it++) {
		w = nic->sendv(c, &iov, 1);
		if (w < 0)
			break;
		(void)wait_ev(g, c, FERRY_HAL_SOCK_EV_ERR);
	}
	cr_assert(w == -EPIPE || w == -ECONNRESET, "send after peer close: %zd", w);
	w = nic->sendv(c, &iov, 1);
	cr_assert_eq(w, -EPIPE, "send after reset: %zd", w);
	cr_assert_eq(nic->group_remove(g, c), 0);
	nic->group_destroy(g);
	nic->close(c);
	nic->close(l);
}

Test(tcp, connect_refused)
{
	char addr[64];
	struct ferry_hal_sock_opts o = sopts("127.0.0.1:0");
	struct ferry_hal_sock *l = do_listen(&o);
	cr_assert_eq(nic->get_addr(l, 0, addr, sizeof(addr)), 0);
	nic->close(l); /* the port is now closed */
	o.addr = addr;
	struct ferry_hal_sock *c = do_connect(&o);
	struct ferry_hal_sock_group *g;
	cr_assert_eq(nic->group_create(dev, &g), 0);
	cr_assert_eq(nic->group_add(g, c, c), 0);
	int rc = nic->sock_error(c);
	if (rc == -EINPROGRESS) {
		uint32_t ev = wait_ev(g, c, FERRY_HAL_SOCK_EV_OUT);
		cr_assert(ev & FERRY_HAL_SOCK_EV_OUT, "connect outcome reported OUT: %#x", ev);
		rc = nic->sock_error(c);
	}
	cr_assert_eq(rc, -ECONNREFUSED, "%d", rc);
	cr_assert_eq(nic->sock_error(c), -ECONNREFUSED, "sticky");
	nic->close(c); /* still in the group: close takes it out */
	cr_assert_eq(poll_now(g, c), 0);
	nic->group_destroy(g);
}

/* ---- groups -------------------------------------------------------------------------------- */

Test(tcp, group_readiness)
{
	struct ferry_hal_sock *l, *c, *a;
	pair(&l, &c, &a);
	struct ferry_hal_sock_group *g, *g2;
	cr_assert_eq(nic->group_create(dev, &g), 0);
	cr_assert_eq(nic->group_create(dev, &g2), 0);
	int ca, cc, ca2;
	cr_assert_eq(nic->group_add(g, a, &ca), 0);
	cr_assert_eq(nic->group_add(g, c, &cc), 0);
	cr_assert_eq(nic->group_add(g2, a, &ca), -EBUSY);
	cr_assert_eq(nic->group_remove(g2, a), -EINVAL);

	/* Connected, idle, writable: nothing reported (OUT is asked for, not default). */
	cr_assert_eq(poll_now(g, &ca), 0);
	cr_assert_eq(poll_now(g, &cc), 0);

	/* OUT on request, and off again. */
	cr_assert_eq(nic->group_want_out(g, c, 1), 0);
	cr_assert_eq(nic->group_want_out(g, c, 1), 0);
	cr_assert_eq(poll_now(g, &cc), FERRY_HAL_SOCK_EV_OUT);
	cr_assert_eq(poll_now(g, &cc), FERRY_HAL_SOCK_EV_OUT, "level triggered");
	cr_assert_eq(nic->group_want_out(g, c, 0), 0);
	cr_assert_eq(poll_now(g, &cc), 0);
	cr_assert_eq(nic->group_want_out(g2, c, 1), -EINVAL);

	/* IN only with data pending, until all of it is read. */
	uint8_t b[10] = "0123456789", r[16];
	struct iovec iov = {.iov_base = b, .iov_len = 10};
	cr_assert_eq(nic->sendv(c, &iov, 1), 10);
	uint32_t ev = wait_ev(g, &ca, FERRY_HAL_SOCK_EV_IN);
	cr_assert_eq(ev, FERRY_HAL_SOCK_EV_IN);
	cr_assert_eq(poll_now(g, &ca), FERRY_HAL_SOCK_EV_IN, "unread bytes reported again");
	struct iovec riov = {.iov_base = r, .iov_len = 4};
	uint32_t flags;
	cr_assert_eq(nic->recvv(a, &riov, 1, &flags), 4);
	cr_assert_eq(poll_now(g, &ca), FERRY_HAL_SOCK_EV_IN, "6 bytes still pending");
	riov.iov_len = sizeof(r);
	cr_assert_eq(nic->recvv(a, &riov, 1, &flags), 6);
	cr_assert_eq(memcmp(r, "456789", 6), 0);
	cr_assert_eq(poll_now(g, &ca), 0);

	/* Removed: not reported even with data; re-added with another ctx: reported. */
	cr_assert_eq(nic->group_remove(g, a), 0);
	cr_assert_eq(nic->group_remove(g, a), -EINVAL);
	cr_assert_eq(nic->sendv(c, &iov, 1), 10);
	for (int i = 0; i < 5; i++) /* 5 x 20 ms: the bytes are there, the group is not told */
		cr_assert_eq(nic->group_poll(g, (struct ferry_hal_sock_event[4]){{0}}, 4, POLL_US),
			     0);
	cr_assert_eq(nic->group_add(g2, a, &ca2), 0);
	cr_assert_eq(wait_ev(g2, &ca2, FERRY_HAL_SOCK_EV_IN), FERRY_HAL_SOCK_EV_IN);

	/* Reset: a closes with unread bytes (the kernel sends RST); c sees ERR/IN and the
	 * reason through sock_error. */
	nic->close(a);
	ev = wait_ev(g, &cc, FERRY_HAL_SOCK_EV_ERR);
	cr_assert(ev & FERRY_HAL_SOCK_EV_ERR, "%#x", ev);
	cr_assert(ev & FERRY_HAL_SOCK_EV_IN, "%#x", ev);
	cr_assert_eq(nic->sock_error(c), -ECONNRESET);
	cr_assert_eq(nic->sock_error(c), -ECONNRESET, "sticky");

	cr_assert_eq(nic->group_remove(g, c), 0);
	nic->group_destroy(g);
	nic->group_destroy(g2);
	nic->close(c);
	nic->close(l);
}

Test(tcp, out_after_connect)
{
	char addr[64];
	struct ferry_hal_sock_opts o = sopts("127.0.0.1:0");
	o.backlog = 4;
	struct ferry_hal_sock *l = do_listen(&o);
	cr_assert_eq(nic->get_addr(l, 0, addr, sizeof(addr)), 0);
	o.addr = addr;
	struct ferry_hal_sock *c = do_connect(&o);
	struct ferry_hal_sock_group *g;
	cr_assert_eq(nic->group_create(dev, &g), 0);
	int ctx;
	cr_assert_eq(nic->group_add(g, c, &ctx), 0);
	/* Whether the handshake finished before group_add or not, OUT comes once. */
	uint32_t ev = wait_ev(g, &ctx, FERRY_HAL_SOCK_EV_OUT);
	cr_assert(ev & FERRY_HAL_SOCK_EV_OUT, "%#x", ev);
	cr_assert_eq(nic->sock_error(c), 0);
	cr_assert_eq(poll_now(g, &ctx), 0, "OUT reported once, not on every poll");
	struct ferry_hal_sock *a = do_accept(l);
	cr_assert_eq(nic->get_addr(c, 1, addr, sizeof(addr)), 0);
	nic->close(a);
	nic->close(c); /* in the group */
	nic->group_destroy(g);
	nic->close(l);
}

Test(tcp, many_connections_one_group)
{
	enum {
		N = 200
	};
	struct ferry_hal_sock_opts o = sopts("127.0.0.1:0");
	o.backlog = N;
	char addr[64];
	struct ferry_hal_sock *l = do_listen(&o), *c[N], *a[N] = {0};
	cr_assert_eq(nic->get_addr(l, 0, addr, sizeof(addr)), 0);
	struct ferry_hal_sock_group *g;
	cr_assert_eq(nic->group_create(dev, &g), 0);
	cr_assert_eq(nic->group_add(g, l, l), 0);
	o.addr = addr;
	for (int i = 0; i < N; i++)
		c[i] = do_connect(&o);

	/* Accept them all through the group, each with its slot as context. */
	int na = 0;
	uint32_t got[N] = {0}, seen[N] = {0};
	struct ferry_hal_sock_event ev[32];
	for (unsigned it = 0; it < POLL_ITERS && na < N; it++) {
		int n = nic->group_poll(g, ev, 32, POLL_US);
		cr_assert_geq(n, 0);
		for (int i = 0; i < n; i++) {
			if (ev[i].ctx != l)
				continue;
			while (na < N && nic->accept(l, &a[na]) == 0) {
				cr_assert_eq(nic->group_add(g, a[na], &got[na]), 0);
				na++;
			}
		}
	}
	cr_assert_eq(na, N);

	/* Each client sends its index; the accepted side learns which is which. */
	for (int i = 0; i < N; i++) {
		uint32_t v = (uint32_t)i * 2654435761u;
		struct iovec iov = {.iov_base = &v, .iov_len = 4};
		ssize_t w = -EAGAIN;
		for (unsigned it = 0; it < POLL_ITERS && w == -EAGAIN; it++) {
			w = nic->sendv(c[i], &iov, 1);
			if (w == -EAGAIN && nic->sock_error(c[i]) == -EINPROGRESS)
				(void)nic->group_poll(g, ev, 1, 1000);
		}
		cr_assert_eq(w, 4, "client %d: %zd", i, w);
	}
	int done = 0;
	for (unsigned it = 0; it < POLL_ITERS && done < N; it++) {
		int n = nic->group_poll(g, ev, 32, POLL_US);
		cr_assert_geq(n, 0);
		for (int i = 0; i < n; i++) {
			if (ev[i].ctx == l)
				continue;
			uint32_t *slot = ev[i].ctx;
			int k = (int)(slot - got);
			cr_assert(k >= 0 && k < N);
			cr_assert_eq(ev[i].events, FERRY_HAL_SOCK_EV_IN);
			struct iovec iov = {.iov_base = slot, .iov_len = 4};
			uint32_t flags;
			cr_assert_eq(nic->recvv(a[k], &iov, 1, &flags), 4,
				     "4 bytes arrive at once");
			cr_assert_eq(seen[k]++, 0, "slot %d twice", k);
			done++;
		}
	}
	cr_assert_eq(done, N);
	/* Every value arrived once, on the connection that sent it. */
	char peer[64], local[64];
	for (int k = 0; k < N; k++) {
		uint32_t idx = got[k] * 244002641u; /* inverse of 2654435761 mod 2^32 */
		cr_assert_lt(idx, N);
		cr_assert_eq(nic->get_addr(a[k], 1, peer, sizeof(peer)), 0);
		cr_assert_eq(nic->get_addr(c[idx], 0, local, sizeof(local)), 0);
		cr_assert_str_eq(peer, local, "slot %d got client %u's value", k, idx);
	}
	for (int i = 0; i < N; i++) {
		nic->close(a[i]);
		nic->close(c[i]);
	}
	nic->close(l);
	cr_assert_eq(poll_now(g, l), 0);
	nic->group_destroy(g);
}

Test(tcp, ipv6_loopback)
{
	struct ferry_hal_sock_opts o = sopts("[::1]:0");
	struct ferry_hal_sock *l = NULL;
	int rc = nic->listen(dev, &o, &l);
	if (rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT)
		cr_skip_test("no IPv6 loopback here (%d: %s)", rc, ferry_last_error());
	cr_assert_eq(rc, 0, "%s", ferry_last_error());
	nic->close(l);

	struct ferry_hal_sock *c, *a;
	char la[64], cp[64], ap[64], cl[64];
	pair_opts("[::1]:0", sopts(NULL), &l, &c, &a);
	cr_assert_eq(nic->get_addr(l, 0, la, sizeof(la)), 0);
	cr_assert(strncmp(la, "[::1]:", 6) == 0, "%s", la);
	cr_assert_eq(nic->get_addr(c, 1, cp, sizeof(cp)), 0);
	cr_assert_eq(nic->get_addr(c, 0, cl, sizeof(cl)), 0);
	cr_assert_eq(nic->get_addr(a, 1, ap, sizeof(ap)), 0);
	cr_assert_str_eq(cp, la);
	cr_assert_str_eq(ap, cl);
	const size_t len = 70001;
	uint8_t *src = malloc(len), *dst = malloc(len);
	fill_random(src, len);
	static const size_t ssz[] = {9, 1, 2048};
	static const size_t rsz[] = {4000, 3};
	(void)transfer(c, a, src, dst, len, ssz, 3, rsz, 2);
	cr_assert_eq(memcmp(src, dst, len), 0);
	free(src);
	free(dst);
	close_all(l, c, a);
}

/* ---- logging ------------------------------------------------------------------------------- */

static _Atomic unsigned tcp_errors;
static void count_log(enum ferry_log_level level, const char *comp, const char *fmt, va_list ap)
{
	(void)fmt;
	(void)ap;
	if (level == FERRY_LOG_ERROR && strcmp(comp, "tcp") == 0)
		tcp_errors++;
}

Test(tcp, peer_errors_rate_limited)
{
	enum { N = 100 };
	char addr[64];
	struct ferry_hal_sock_opts o = sopts("127.0.0.1:0");
	struct ferry_hal_sock *l = do_listen(&o), *c[N];
	cr_assert_eq(nic->get_addr(l, 0, addr, sizeof(addr)), 0);
	nic->close(l);
	o.addr = addr;
	struct ferry_hal_sock_group *g;
	cr_assert_eq(nic->group_create(dev, &g), 0);
	ferry_log_set_handler(count_log);
	tcp_errors = 0;
	for (int i = 0; i < N; i++) {
		c[i] = do_connect(&o);
		cr_assert_eq(nic->group_add(g, c[i], c[i]), 0);
	}
	int refused = 0;
	struct ferry_hal_sock_event ev[N];
	for (unsigned it = 0; it < POLL_ITERS && refused < N; it++) {
		refused = 0;
		for (int i = 0; i < N; i++) {
			int rc = nic->sock_error(c[i]);
			cr_assert(rc == -EINPROGRESS || rc == -ECONNREFUSED, "%d", rc);
			refused += rc == -ECONNREFUSED;
			if (rc == -ECONNREFUSED)
				cr_assert(strstr(ferry_last_error(), addr), "reason kept: '%s'",
					  ferry_last_error());
		}
		if (refused < N)
			cr_assert_geq(nic->group_poll(g, ev, N, POLL_US), 0);
	}
	ferry_log_set_handler(NULL);
	cr_assert_eq(refused, N);
	/* 100 refusals a peer caused: a burst of 10 per second window is logged (two windows
	 * at most if the loop straddles a boundary), the rest only counted. */
	cr_assert_geq(tcp_errors, 1);
	cr_assert_leq(tcp_errors, 20, "%u messages for %d refused connects", tcp_errors, N);
	for (int i = 0; i < N; i++)
		nic->close(c[i]);
	nic->group_destroy(g);
}
