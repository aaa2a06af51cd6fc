/*
 * The backend SDK's socket kit (ferry/hal/sock.h, hal/src/lsock*.c) called directly on a
 * "tcp" device (whose private state carries the kit's handle first): dev_create refusals, the
 * kit's log component, per-socket priv, the fd/device/group accessors, and set_ready(): a
 * socket with no bytes in the kernel reported IN by group_poll() without waiting, once per
 * poll when the kernel also has bytes, no longer after set_ready(0) or close(), kept across
 * a move to another group, and every ready socket reported when more are ready than fit.
 * Every wait is bounded (a poll timeout; the suite's timeout catches a poll that would hang).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <ferry/ferry.h>
#include <ferry/hal/hal.h>
#include <ferry/hal/sock.h>

static struct ferry_device *dev;

static void setup(void)
{
	int rc = ferry_device_open("tcp", "", &dev);
	cr_assert_eq(rc, 0, "open tcp: %d (%s)", rc, ferry_last_error());
}

static void teardown(void)
{
	ferry_device_close(dev);
}

TestSuite(lsock, .init = setup, .fini = teardown, .timeout = 30);

#define POLL_US 20000u  /* one wait of a helper loop */
#define POLL_ITERS 250u /* at most 5 s per wait */
#define LONG_US 5000000u

static struct ferry_hal_sock_opts sopts(const char *addr)
{
	return (struct ferry_hal_sock_opts){.size = sizeof(struct ferry_hal_sock_opts),
					    .addr = addr};
}

/* Events for @p ctx in one poll of @p g; *@p nev gets the number of entries naming it. */
static uint32_t poll_for(struct ferry_hal_sock_group *g, void *ctx, uint32_t timeout_us,
			 int *nev)
{
	struct ferry_hal_sock_event ev[16];
	int n = ferry_hal_lsock_group_poll(g, ev, 16, timeout_us);
	cr_assert_geq(n, 0, "group_poll: %d", n);
	uint32_t e = 0;
	int k = 0;
	for (int i = 0; i < n; i++)
		if (ev[i].ctx == ctx) {
			e |= ev[i].events;
			k++;
		}
	if (nev)
		*nev = k;
	return e;
}

/* A connected pair on 127.0.0.1: *c client, *a accepted (the listener is closed). */
static void pair(struct ferry_hal_sock **c, struct ferry_hal_sock **a)
{
	char addr[64];
	struct ferry_hal_sock_opts o = sopts("127.0.0.1:0");
	struct ferry_hal_sock *l = NULL;
	cr_assert_eq(ferry_hal_lsock_listen(dev, &o, &l), 0, "%s", ferry_last_error());
	cr_assert_eq(ferry_hal_lsock_get_addr(l, 0, addr, sizeof(addr)), 0);
	o.addr = addr;
	cr_assert_eq(ferry_hal_lsock_connect(dev, &o, c), 0, "%s", ferry_last_error());
	struct ferry_hal_sock_group *g;
	cr_assert_eq(ferry_hal_lsock_group_create(dev, &g), 0);
	cr_assert_eq(ferry_hal_lsock_group_add(g, l, l), 0);
	int rc = -EAGAIN;
	for (unsigned it = 0; it < POLL_ITERS && rc == -EAGAIN; it++) {
		rc = ferry_hal_lsock_accept(l, a);
		if (rc == -EAGAIN)
			(void)poll_for(g, l, POLL_US, NULL);
	}
	cr_assert_eq(rc, 0, "accept: %d", rc);
	cr_assert_eq(ferry_hal_lsock_group_add(g, *c, *c), 0);
	rc = -EINPROGRESS;
	for (unsigned it = 0; it < POLL_ITERS && rc == -EINPROGRESS; it++) {
		rc = ferry_hal_lsock_sock_error(*c);
		if (rc == -EINPROGRESS)
			(void)poll_for(g, *c, POLL_US, NULL);
	}
	cr_assert_eq(rc, 0, "connect outcome: %d", rc);
	cr_assert_eq(ferry_hal_lsock_group_remove(g, *c), 0);
	ferry_hal_lsock_close(l); /* leaves g */
	ferry_hal_lsock_group_destroy(g);
}

/* ---- device state ------------------------------------------------------------------------- */

static char last_comp[64];
static void keep_comp(enum ferry_log_level level, const char *comp, const char *fmt, va_list ap)
{
	(void)fmt;
	(void)ap;
	if (level == FERRY_LOG_ERROR)
		snprintf(last_comp, sizeof(last_comp), "%s", comp);
}

Test(lsock, dev_create_bad_args)
{
	struct ferry_hal_lsock_dev *ld = NULL;
	static const char long_name[] = "a-component-name-of-32-characters";
	cr_assert_geq(strlen(long_name), 32);
	cr_assert_eq(ferry_hal_lsock_dev_create(NULL, "x", &ld), -EINVAL);
	cr_assert_eq(ferry_hal_lsock_dev_create(dev, NULL, &ld), -EINVAL);
	cr_assert_eq(ferry_hal_lsock_dev_create(dev, "", &ld), -EINVAL);
	cr_assert_eq(ferry_hal_lsock_dev_create(dev, long_name, &ld), -EINVAL);
	cr_assert_eq(ferry_hal_lsock_dev_create(dev, "x", NULL), -EINVAL);
	cr_assert_null(ld, "nothing handed out on failure");

	/* A second state for the same device is allowed (the backend decides which one it
	 * stores); creating it does not disturb the stored one. */
	cr_assert_eq(ferry_hal_lsock_dev_create(dev, "other", &ld), 0);
	cr_assert_not_null(ld);
	ferry_hal_lsock_dev_destroy(ld);
	ferry_hal_lsock_dev_destroy(NULL); /* a no-op */
	struct ferry_hal_nic_info info;
	cr_assert_eq(ferry_hal_lsock_query(dev, &info), 0);
	cr_assert_eq(info.caps, FERRY_HAL_NIC_CAP_TCP);
	cr_assert_eq(info.max_send_iov, 64);
	cr_assert_eq(info.max_recv_iov, 64);
	cr_assert_eq(ferry_hal_lsock_query(NULL, &info), -EINVAL);
	cr_assert_eq(ferry_hal_lsock_query(dev, NULL), -EINVAL);
}

Test(lsock, logs_with_the_backends_component)
{
	struct ferry_hal_sock_opts o = sopts("localhost:80"); /* names are refused */
	struct ferry_hal_sock *s = NULL;
	ferry_log_set_handler(keep_comp);
	last_comp[0] = '\0';
	int rc = ferry_hal_lsock_connect(dev, &o, &s);
	ferry_log_set_handler(NULL);
	cr_assert_eq(rc, -EINVAL);
	cr_assert_null(s);
	cr_assert_str_eq(last_comp, "tcp");
	cr_assert(strstr(ferry_last_error(), "localhost:80"), "%s", ferry_last_error());
}

/* ---- backend hooks ------------------------------------------------------------------------ */

Test(lsock, priv_get_set)
{
	struct ferry_hal_sock *c, *a;
	int x, y;
	pair(&c, &a);
	cr_assert_null(ferry_hal_lsock_get_priv(c));
	cr_assert_null(ferry_hal_lsock_get_priv(a));
	ferry_hal_lsock_set_priv(c, &x);
	ferry_hal_lsock_set_priv(a, &y);
	cr_assert_eq(ferry_hal_lsock_get_priv(c), &x);
	cr_assert_eq(ferry_hal_lsock_get_priv(a), &y, "per socket, not per device");
	/* Group membership does not touch it (ctx is a separate pointer). */
	struct ferry_hal_sock_group *g;
	cr_assert_eq(ferry_hal_lsock_group_create(dev, &g), 0);
	cr_assert_eq(ferry_hal_lsock_group_add(g, c, &y), 0);
	cr_assert_eq(ferry_hal_lsock_get_priv(c), &x);
	cr_assert_eq(ferry_hal_lsock_group_remove(g, c), 0);
	cr_assert_eq(ferry_hal_lsock_get_priv(c), &x);
	ferry_hal_lsock_set_priv(c, NULL);
	cr_assert_null(ferry_hal_lsock_get_priv(c));
	cr_assert_null(ferry_hal_lsock_get_priv(NULL));
	ferry_hal_lsock_set_priv(NULL, &x); /* a no-op */
	ferry_hal_lsock_group_destroy(g);
	ferry_hal_lsock_close(c);
	ferry_hal_lsock_close(a);
}

Test(lsock, fd_device_group_accessors)
{
	struct ferry_hal_sock *c, *a;
	pair(&c, &a);
	int fc = ferry_hal_lsock_fd(c), fa = ferry_hal_lsock_fd(a);
	cr_assert_geq(fc, 0);
	cr_assert_geq(fa, 0);
	cr_assert_neq(fc, fa);
	cr_assert_eq(ferry_hal_lsock_fd(NULL), -1);

	/* The fd is the socket itself: a byte sent on it arrives through the kit's recvv(). */
	cr_assert_eq(send(fc, "Z", 1, MSG_NOSIGNAL), 1);
	struct ferry_hal_sock_group *g;
	cr_assert_eq(ferry_hal_lsock_group_create(dev, &g), 0);
	cr_assert_null(ferry_hal_lsock_group(a));
	cr_assert_eq(ferry_hal_lsock_group_add(g, a, a), 0);
	cr_assert_eq(ferry_hal_lsock_group(a), g);
	cr_assert_null(ferry_hal_lsock_group(c));
	uint32_t e = 0;
	for (unsigned it = 0; it < POLL_ITERS && !(e & FERRY_HAL_SOCK_EV_IN); it++)
		e = poll_for(g, a, POLL_US, NULL);
	cr_assert(e & FERRY_HAL_SOCK_EV_IN);
	char b = 0;
	uint32_t flags = 0;
	struct iovec iov = {.iov_base = &b, .iov_len = 1};
	cr_assert_eq(ferry_hal_lsock_recvv(a, &iov, 1, &flags), 1);
	cr_assert_eq(b, 'Z');
	cr_assert_eq(flags, FERRY_HAL_NIC_RX_F_PLACED);

	cr_assert_eq(ferry_hal_lsock_device(c), dev);
	cr_assert_eq(ferry_hal_lsock_device(a), dev, "accepted sockets too");
	cr_assert_null(ferry_hal_lsock_device(NULL));
	cr_assert_null(ferry_hal_lsock_group(NULL));

	cr_assert_eq(ferry_hal_lsock_group_remove(g, a), 0);
	cr_assert_null(ferry_hal_lsock_group(a));
	ferry_hal_lsock_group_destroy(g);
	ferry_hal_lsock_close(c);
	ferry_hal_lsock_close(a);
}

/* ---- set_ready ---------------------------------------------------------------------------- */

Test(lsock, ready_reported_without_kernel_bytes)
{
	struct ferry_hal_sock *c, *a;
	int ctx;
	pair(&c, &a);
	struct ferry_hal_sock_group *g;
	cr_assert_eq(ferry_hal_lsock_group_create(dev, &g), 0);
	cr_assert_eq(ferry_hal_lsock_group_add(g, a, &ctx), 0);
	cr_assert_eq(poll_for(g, &ctx, 0, NULL), 0, "idle: nothing to report");

	ferry_hal_lsock_set_ready(a, 1);
	int k;
	/* A 5 s timeout, and the event is in this very call's output. */
	cr_assert_eq(poll_for(g, &ctx, LONG_US, &k), FERRY_HAL_SOCK_EV_IN);
	cr_assert_eq(k, 1);
	cr_assert_eq(poll_for(g, &ctx, LONG_US, &k), FERRY_HAL_SOCK_EV_IN, "until cleared");
	ferry_hal_lsock_set_ready(a, 1); /* twice: still one list entry */
	struct ferry_hal_sock_event ev[4];
	cr_assert_eq(ferry_hal_lsock_group_poll(g, ev, 4, 0), 1);

	ferry_hal_lsock_set_ready(a, 0);
	cr_assert_eq(ferry_hal_lsock_group_poll(g, ev, 4, 0), 0, "cleared: 0 events");
	ferry_hal_lsock_set_ready(a, 0); /* twice: harmless */
	cr_assert_eq(ferry_hal_lsock_group_poll(g, ev, 4, 0), 0);

	cr_assert_eq(ferry_hal_lsock_group_remove(g, a), 0);
	ferry_hal_lsock_group_destroy(g);
	ferry_hal_lsock_close(c);
	ferry_hal_lsock_close(a);
}

Test(lsock, ready_and_kernel_bytes_make_one_event)
{
	struct ferry_hal_sock *c, *a;
	int ctx;
	pair(&c, &a);
	struct ferry_hal_sock_group *g;
	cr_assert_eq(ferry_hal_lsock_group_create(dev, &g), 0);
	cr_assert_eq(ferry_hal_lsock_group_add(g, a, &ctx), 0);
	cr_assert_eq(ferry_hal_lsock_group_want_out(g, a, 1), 0);
	cr_assert_eq(send(ferry_hal_lsock_fd(c), "xy", 2, MSG_NOSIGNAL), 2);
	uint32_t e = 0;
	for (unsigned it = 0; it < POLL_ITERS && !(e & FERRY_HAL_SOCK_EV_IN); it++)
		e = poll_for(g, &ctx, POLL_US, NULL);
	cr_assert(e & FERRY_HAL_SOCK_EV_IN, "the bytes arrived");

	ferry_hal_lsock_set_ready(a, 1);
	int k;
	e = poll_for(g, &ctx, LONG_US, &k);
	cr_assert_eq(k, 1, "one entry per socket per poll, not %d", k);
	cr_assert_eq(e, FERRY_HAL_SOCK_EV_IN | FERRY_HAL_SOCK_EV_OUT,
		     "the kernel's OUT merged into the ready entry: 0x%x", e);

	ferry_hal_lsock_set_ready(a, 0);
	ferry_hal_lsock_close(a); /* in the group: close leaves it */
	ferry_hal_lsock_group_destroy(g);
	ferry_hal_lsock_close(c);
}

Test(lsock, close_clears_ready)
{
	struct ferry_hal_sock *c, *a, *c2, *a2;
	int ctx1, ctx2;
	pair(&c, &a);
	pair(&c2, &a2);
	struct ferry_hal_sock_group *g;
	cr_assert_eq(ferry_hal_lsock_group_create(dev, &g), 0);
	cr_assert_eq(ferry_hal_lsock_group_add(g, a, &ctx1), 0);
	cr_assert_eq(ferry_hal_lsock_group_add(g, a2, &ctx2), 0);
	ferry_hal_lsock_set_ready(a, 1);
	ferry_hal_lsock_set_ready(a2, 1);
	ferry_hal_lsock_close(a); /* ready, in the group, at the head of the ready list */

	struct ferry_hal_sock_event ev[4];
	int n = ferry_hal_lsock_group_poll(g, ev, 4, LONG_US);
	cr_assert_eq(n, 1, "only the open socket: %d events", n);
	cr_assert_eq(ev[0].ctx, &ctx2);
	cr_assert_eq(ev[0].events, FERRY_HAL_SOCK_EV_IN);
	ferry_hal_lsock_close(a2); /* the last ready one */
	cr_assert_eq(ferry_hal_lsock_group_poll(g, ev, 4, 0), 0);

	/* A socket closed while ready in no group: nothing left behind in the next group. */
	struct ferry_hal_sock *c3, *a3;
	pair(&c3, &a3);
	ferry_hal_lsock_set_ready(a3, 1);
	ferry_hal_lsock_close(a3);
	cr_assert_eq(ferry_hal_lsock_group_poll(g, ev, 4, 0), 0);

	ferry_hal_lsock_group_destroy(g);
	ferry_hal_lsock_close(c);
	ferry_hal_lsock_close(c2);
	ferry_hal_lsock_close(c3);
}

Test(lsock, ready_follows_the_socket_to_its_group)
{
	struct ferry_hal_sock *c, *a;
	int ctx_a, ctx_b;
	pair(&c, &a);
	struct ferry_hal_sock_group *ga, *gb;
	cr_assert_eq(ferry_hal_lsock_group_create(dev, &ga), 0);
	cr_assert_eq(ferry_hal_lsock_group_create(dev, &gb), 0);
	cr_assert_eq(ferry_hal_lsock_group_add(ga, a, &ctx_a), 0);
	ferry_hal_lsock_set_ready(a, 1);
	cr_assert_eq(poll_for(ga, &ctx_a, 0, NULL), FERRY_HAL_SOCK_EV_IN);

	cr_assert_eq(ferry_hal_lsock_group_remove(ga, a), 0);
	struct ferry_hal_sock_event ev[4];
	cr_assert_eq(ferry_hal_lsock_group_poll(ga, ev, 4, 0), 0, "A forgot it");
	cr_assert_eq(ferry_hal_lsock_group_add(gb, a, &ctx_b), 0);
	int n = ferry_hal_lsock_group_poll(gb, ev, 4, LONG_US);
	cr_assert_eq(n, 1);
	cr_assert_eq(ev[0].ctx, &ctx_b, "reported with B's ctx");
	cr_assert_eq(ev[0].events, FERRY_HAL_SOCK_EV_IN);
	cr_assert_eq(ferry_hal_lsock_group_poll(ga, ev, 4, 0), 0);

	/* Marked while in no group: reported by the group it joins. */
	cr_assert_eq(ferry_hal_lsock_group_remove(gb, a), 0);
	ferry_hal_lsock_set_ready(a, 0);
	ferry_hal_lsock_set_ready(a, 1);
	cr_assert_eq(ferry_hal_lsock_group_add(ga, a, &ctx_a), 0);
	cr_assert_eq(poll_for(ga, &ctx_a, LONG_US, NULL), FERRY_HAL_SOCK_EV_IN);
	cr_assert_eq(ferry_hal_lsock_group_poll(gb, ev, 4, 0), 0);

	/* A group destroyed with the socket still in it: the socket is detached, its mark
	 * kept, and the next group reports it. */
	ferry_hal_lsock_group_destroy(ga);
	cr_assert_null(ferry_hal_lsock_group(a));
	cr_assert_eq(ferry_hal_lsock_group_add(gb, a, &ctx_b), 0);
	cr_assert_eq(poll_for(gb, &ctx_b, LONG_US, NULL), FERRY_HAL_SOCK_EV_IN);

	ferry_hal_lsock_close(a);
	ferry_hal_lsock_group_destroy(gb);
	ferry_hal_lsock_close(c);
}

Test(lsock, more_ready_than_room_all_get_a_turn)
{
	enum { N = 3 };
	struct ferry_hal_sock *c[N], *a[N];
	int ctx[N];
	struct ferry_hal_sock_group *g;
	cr_assert_eq(ferry_hal_lsock_group_create(dev, &g), 0);
	for (int i = 0; i < N; i++) {
		pair(&c[i], &a[i]);
		cr_assert_eq(ferry_hal_lsock_group_add(g, a[i], &ctx[i]), 0);
		ferry_hal_lsock_set_ready(a[i], 1);
	}
	int seen[N] = {0};
	struct ferry_hal_sock_event ev[2];
	for (int p = 0; p < 3; p++) {
		int n = ferry_hal_lsock_group_poll(g, ev, 2, LONG_US);
		cr_assert_eq(n, 2, "a full array every time: %d", n);
		cr_assert_neq(ev[0].ctx, ev[1].ctx);
		for (int i = 0; i < n; i++) {
			cr_assert_eq(ev[i].events, FERRY_HAL_SOCK_EV_IN);
			int idx = (int)((int *)ev[i].ctx - ctx);
			cr_assert(idx >= 0 && idx < N);
			seen[idx]++;
		}
	}
	/* 6 reports over 3 sockets in turn: each twice. */
	for (int i = 0; i < N; i++)
		cr_assert_eq(seen[i], 2, "socket %d reported %d times", i, seen[i]);
	for (int i = 0; i < N; i++) {
		ferry_hal_lsock_close(a[i]);
		ferry_hal_lsock_close(c[i]);
	}
	ferry_hal_lsock_group_destroy(g);
}
