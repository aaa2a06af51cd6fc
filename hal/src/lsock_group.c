/*
 * Socket groups of the socket kit (ferry/hal/sock.h): one level-triggered epoll instance per
 * group, a member list (so close() and group_destroy() can always detach), the ready list of
 * ferry_hal_lsock_set_ready(), the OUT interest switch and the poll that turns ready marks
 * and epoll events into FERRY_HAL_SOCK_EV_* reports carrying each socket's ctx.
 *
 * Interest: EPOLLIN always (EPOLLERR/EPOLLHUP come without asking). EPOLLOUT while the
 * owner asked for it (group_want_out) or, for a socket added while its connect is still in
 * progress, until the poll reported the connect's outcome once: nic.h promises an OUT report
 * when a connect finishes either way, and a connected idle socket must not be reported
 * writable on every poll (a busy-polling reactor would spin on it).
 *
 * Ready sockets: a FIFO per group of the members whose ready mark is on. group_poll() reports
 * them first, as EV_IN, then rotates the list by as many as it reported (more ready sockets
 * than the caller's array still all get their turn), and does not wait in epoll when any was
 * ready. The epoll events that follow in the same call are merged into the entry of a socket
 * already reported ready (its ready mark and its kernel readiness make one event).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include "lsock_internal.h"

static uint32_t interest(const struct ferry_hal_sock *s)
{
	return EPOLLIN | ((s->want_out || s->auto_out) ? EPOLLOUT : 0u);
}

static int epoll_set(struct ferry_hal_sock_group *g, struct ferry_hal_sock *s, int op)
{
	struct epoll_event ev = {.events = interest(s), .data.ptr = s};
	if (epoll_ctl(g->epfd, op, s->fd, &ev)) {
		int e = errno;
		LSOCK_ERR(g->dev, "group: epoll_ctl(%s): %s",
			  op == EPOLL_CTL_ADD   ? "add"
			  : op == EPOLL_CTL_MOD ? "mod"
						: "del",
			  strerror(e));
		return -e;
	}
	return 0;
}

int ferry_hal_lsock_group_create(struct ferry_device *fdev, struct ferry_hal_sock_group **out)
{
	struct ferry_hal_lsock_dev *dev = lsock_dev_get(fdev);
	if (!dev || !out) {
		LSOCK_ERR(dev, "group_create: %s", dev ? "NULL out" : "not a socket kit device");
		return -EINVAL;
	}
	struct ferry_hal_sock_group *g = calloc(1, sizeof(*g));
	if (!g)
		goto err_nomem;
	g->evs = calloc(LSOCK_GROUP_EVENTS, sizeof(*g->evs));
	if (!g->evs)
		goto err_free;
	g->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (g->epfd < 0) {
		int e = errno;
		LSOCK_ERR(dev, "group_create: epoll_create1: %s", strerror(e));
		free(g->evs);
		free(g);
		return -e;
	}
	g->dev = dev;
	atomic_fetch_add(&dev->ngroups, 1);
	*out = g;
	return 0;

err_free:
	free(g);
err_nomem:
	LSOCK_ERR(dev, "group_create: out of memory");
	return -ENOMEM;
}

void lsock_ready_link(struct ferry_hal_sock_group *g, struct ferry_hal_sock *s)
{
	if (s->on_ready)
		return;
	s->rnext = NULL;
	s->rprev = g->ready_tail;
	if (g->ready_tail)
		g->ready_tail->rnext = s;
	else
		g->ready_head = s;
	g->ready_tail = s;
	g->nready++;
	s->on_ready = 1;
}

void lsock_ready_unlink(struct ferry_hal_sock_group *g, struct ferry_hal_sock *s)
{
	if (!s->on_ready)
		return;
	if (s->rprev)
		s->rprev->rnext = s->rnext;
	else
		g->ready_head = s->rnext;
	if (s->rnext)
		s->rnext->rprev = s->rprev;
	else
		g->ready_tail = s->rprev;
	s->rprev = s->rnext = NULL;
	g->nready--;
	s->on_ready = 0;
}

static void unlink_member(struct ferry_hal_sock_group *g, struct ferry_hal_sock *s)
{
	lsock_ready_unlink(g, s); /* the mark stays with the socket for its next group */
	if (s->gprev)
		s->gprev->gnext = s->gnext;
	else
		g->members = s->gnext;
	if (s->gnext)
		s->gnext->gprev = s->gprev;
	s->gprev = s->gnext = NULL;
	s->group = NULL;
	s->ctx = NULL;
	s->want_out = 0;
	s->auto_out = 0;
	s->poll_gen = 0; /* a generation of this group means nothing in the next one */
	g->nmembers--;
}

void ferry_hal_lsock_group_destroy(struct ferry_hal_sock_group *g)
{
	if (!g)
		return;
	if (g->nmembers) {
		/* The contract says they must have left; detach them so a later close() or
		 * group_add() does not touch freed memory. */
		LSOCK_WARN(g->dev, "group_destroy: %u socket(s) still in the group (detached)",
			   g->nmembers);
		while (g->members)
			unlink_member(g, g->members);
	}
	close(g->epfd);
	atomic_fetch_sub(&g->dev->ngroups, 1);
	free(g->evs);
	free(g);
}

int ferry_hal_lsock_group_add(struct ferry_hal_sock_group *g, struct ferry_hal_sock *s, void *ctx)
{
	if (!g || !s) {
		LSOCK_ERR(g ? g->dev : NULL, "group_add: NULL argument");
		return -EINVAL;
	}
	if (s->group) {
		LSOCK_ERR(g->dev, "group_add: the socket is in a group already");
		return -EBUSY;
	}
	s->ctx = ctx;
	s->want_out = 0;
	s->auto_out = s->connecting && !s->err;
	int rc = epoll_set(g, s, EPOLL_CTL_ADD);
	if (rc) {
		s->ctx = NULL;
		s->auto_out = 0;
		return rc;
	}
	s->group = g;
	s->gprev = NULL;
	s->gnext = g->members;
	if (g->members)
		g->members->gprev = s;
	g->members = s;
	g->nmembers++;
	if (s->ready)
		lsock_ready_link(g, s);
	return 0;
}

int ferry_hal_lsock_group_remove(struct ferry_hal_sock_group *g, struct ferry_hal_sock *s)
{
	if (!g || !s || s->group != g) {
		LSOCK_ERR(g ? g->dev : NULL, "group_remove: %s",
			  !g || !s ? "NULL argument" : "socket not in this group");
		return -EINVAL;
	}
	int rc = epoll_set(g, s, EPOLL_CTL_DEL);
	unlink_member(g, s); /* out of the list even if the kernel refused (fd state is ours) */
	return rc;
}

void lsock_group_leave(struct ferry_hal_sock *s)
{
	struct ferry_hal_sock_group *g = s->group;
	if (!g)
		return;
	/* Closing the fd removes it from the epoll set too; deleting first keeps an fd that
	 * was duplicated elsewhere from staying registered. */
	(void)epoll_ctl(g->epfd, EPOLL_CTL_DEL, s->fd, NULL);
	unlink_member(g, s);
}

int ferry_hal_lsock_group_want_out(struct ferry_hal_sock_group *g, struct ferry_hal_sock *s, int on)
{
	if (!g || !s || s->group != g) {
		LSOCK_ERR(g ? g->dev : NULL, "group_want_out: %s",
			  !g || !s ? "NULL argument" : "socket not in this group");
		return -EINVAL;
	}
	uint32_t before = interest(s);
	s->want_out = !!on;
	if (interest(s) == before)
		return 0;
	return epoll_set(g, s, EPOLL_CTL_MOD);
}

#ifdef SYS_epoll_pwait2
/* epoll_pwait2 (Linux 5.11) waits with a nanosecond timeout; set once it is known missing. */
static _Atomic int no_pwait2;
#endif

static int wait_events(struct ferry_hal_sock_group *g, int max, uint32_t timeout_us)
{
	if (timeout_us == 0)
		return epoll_wait(g->epfd, g->evs, max, 0);
#ifdef SYS_epoll_pwait2
	if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
		struct timespec ts = {.tv_sec = timeout_us / 1000000u,
				      .tv_nsec = (long)(timeout_us % 1000000u) * 1000};
		long n = syscall(SYS_epoll_pwait2, g->epfd, g->evs, max, &ts, NULL, 0);
		if (n >= 0 || errno != ENOSYS)
			return (int)n;
		atomic_store(&no_pwait2, 1);
	}
#endif
	/* Milliseconds, rounded up: never return before the caller's timeout for lack of
	 * resolution (timeout_us < 2^32 keeps this within an int). */
	return epoll_wait(g->epfd, g->evs, max, (int)((timeout_us + 999ull) / 1000u));
}

/* Reports up to @p max ready sockets from the head of the list as EV_IN and rotates the
 * list by that many; returns how many it reported. */
static uint32_t report_ready(struct ferry_hal_sock_group *g, struct ferry_hal_sock_event *events,
			     uint32_t max)
{
	uint32_t k = g->nready < max ? g->nready : max;
	for (uint32_t i = 0; i < k; i++) {
		struct ferry_hal_sock *s = g->ready_head;
		events[i].ctx = s->ctx;
		events[i].events = FERRY_HAL_SOCK_EV_IN;
		s->poll_gen = g->poll_gen;
		s->poll_slot = i;
		/* Head to tail: the next poll starts where this one stopped. */
		lsock_ready_unlink(g, s);
		lsock_ready_link(g, s);
	}
	return k;
}

int ferry_hal_lsock_group_poll(struct ferry_hal_sock_group *g, struct ferry_hal_sock_event *events,
			       uint32_t max, uint32_t timeout_us)
{
	if (!g || !events || max == 0) {
		LSOCK_ERR(g ? g->dev : NULL, "group_poll: %s",
			  !g || !events ? "NULL argument" : "max is 0");
		return -EINVAL;
	}
	g->poll_gen++; /* never 0: a socket's poll_gen 0 matches no poll */
	uint32_t nr = report_ready(g, events, max), room = max - nr;
	if (room == 0)
		return (int)nr;
	/* Work is waiting: look at the kernel's events without sleeping on them. */
	int n = wait_events(g, (int)(room < LSOCK_GROUP_EVENTS ? room : LSOCK_GROUP_EVENTS),
			    nr ? 0 : timeout_us);
	if (n < 0) {
		int e = errno;
		if (e == EINTR)
			return (int)nr;
		LSOCK_ERR(g->dev, "group_poll: epoll_wait: %s", strerror(e));
		return nr ? (int)nr : -e;
	}
	uint32_t nout = nr;
	for (int i = 0; i < n; i++) {
		struct ferry_hal_sock *s = g->evs[i].data.ptr;
		uint32_t ev = g->evs[i].events, out = 0;
		if (ev & EPOLLIN)
			out |= FERRY_HAL_SOCK_EV_IN;
		if (ev & EPOLLOUT)
			out |= FERRY_HAL_SOCK_EV_OUT;
		if (ev & (EPOLLERR | EPOLLHUP))
			out |= FERRY_HAL_SOCK_EV_ERR;
		if (s->auto_out && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
			/* The connect finished (either way): report OUT this once, then back to
			 * the owner's interest. */
			out |= FERRY_HAL_SOCK_EV_OUT;
			s->auto_out = 0;
			if (!s->want_out)
				(void)epoll_set(g, s, EPOLL_CTL_MOD);
		}
		if (s->poll_gen == g->poll_gen) {
			/* Reported ready above: one entry per socket per poll. */
			events[s->poll_slot].events |= out;
			continue;
		}
		events[nout].ctx = s->ctx;
		events[nout].events = out;
		nout++;
	}
	return (int)nout;
}
