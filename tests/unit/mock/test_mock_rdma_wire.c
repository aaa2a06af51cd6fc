/*
 * The mock RDMA NIC against a hostile peer speaking its wire format by hand (plain TCP
 * sockets; the format is that of backends/mock/mock_rdma_internal.h): garbage and oversized
 * connect requests to a listener (dropped, nothing returned); a passive QP receiving garbage,
 * a WRITE outside every region, a huge length (the QP errors, no byte moves, nothing is
 * allocated for it); an active QP whose "target" answers with a SEND instead of an accept,
 * answers requests out of order, or sends a READ response of the wrong size; a listener
 * closing with requests pending.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include "test_mock_rdma_util.h"

/* The wire header (mock_rdma_internal.h: struct mr_msg). */
struct wmsg {
	uint8_t type;
	uint8_t rsvd[3];
	uint32_t len;
	uint64_t psn;
	uint64_t raddr;
	uint32_t rkey;
	int32_t status;
};
enum {
	W_REQ = 1,
	W_REP,
	W_REJ,
	W_SEND,
	W_WRITE,
	W_READ,
	W_READ_RESP,
	W_ACK,
	W_NAK
};

static int tcp_to(const char *addr)
{
	char host[32];
	const char *c = strrchr(addr, ':');
	cr_assert_not_null(c);
	memcpy(host, addr, (size_t)(c - addr));
	host[c - addr] = '\0';
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(c + 1))};
	cr_assert_eq(inet_pton(AF_INET, host, &sa.sin_addr), 1);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void wsend(int fd, uint8_t type, uint32_t len, uint64_t psn, uint64_t raddr, uint32_t rkey,
		  const void *pl, size_t plen)
{
	struct wmsg m = {.type = type, .len = len, .psn = psn, .raddr = raddr, .rkey = rkey};
	cr_assert_eq(send(fd, &m, sizeof(m), MSG_NOSIGNAL), (ssize_t)sizeof(m));
	if (plen)
		cr_assert_eq(send(fd, pl, plen, MSG_NOSIGNAL), (ssize_t)plen);
}

/* Reads one header (and skips its payload) within 5 s; 0 at EOF. */
static int wrecv(struct rt *t, int fd, struct wmsg *m)
{
	uint8_t *p = (uint8_t *)m;
	size_t got = 0;
	uint64_t end = test_rdma_now_ms() + 5000;
	while (got < sizeof(*m)) {
		cr_assert_lt(test_rdma_now_ms(), end, "no message from the mock");
		rt_pump(t);
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		if (poll(&pf, 1, 1) <= 0)
			continue;
		ssize_t n = recv(fd, p + got, sizeof(*m) - got, 0);
		if (n <= 0)
			return 0;
		got += (size_t)n;
	}
	uint8_t skip[256];
	size_t left = m->type == W_READ ? 0 : m->len;
	while (left) {
		ssize_t n = recv(fd, skip, left < sizeof(skip) ? left : sizeof(skip), 0);
		if (n <= 0)
			return 0;
		left -= (size_t)n;
	}
	return 1;
}

/* EOF from the mock within 5 s (pumping it), skipping messages. */
static void weof(struct rt *t, int fd)
{
	struct wmsg m;
	while (wrecv(t, fd, &m))
		;
}

Test(mock_rdma_wire, hostile_connect_requests, .timeout = 30)
{
	struct rt t;
	rt_open(&t, "");
	struct ferry_hal_rdma_req *req;
	/* A wrong type, private data above 56 bytes, closing half-way through a request. */
	int a = tcp_to(t.addr), b = tcp_to(t.addr), c = tcp_to(t.addr);
	wsend(a, 99, 0, 0, 0, 0, NULL, 0);
	uint8_t big[57] = {0};
	wsend(b, W_REQ, 57, 0, 0, 0, big, sizeof(big));
	struct wmsg half = {.type = W_REQ, .len = 20};
	cr_assert_eq(send(c, &half, 10, 0), 10);
	close(c);
	for (int i = 0; i < 50; i++) {
		cr_assert_eq(t.ops->get_request(t.l, &req, NULL, NULL), -EAGAIN);
		usleep(1000);
	}
	/* Each was dropped: the peer sees the end of the stream. */
	weof(&t, a);
	weof(&t, b);
	close(a);
	close(b);
	/* A good request still gets through, with its extra bytes kept for the QP. */
	int d = tcp_to(t.addr);
	wsend(d, W_REQ, 3, 0, 0, 0, "abc", 3);
	const void *pd;
	uint32_t pl;
	req = rt_request(&t, &pd, &pl);
	cr_assert_eq(pl, 3);
	cr_assert_eq(memcmp(pd, "abc", 3), 0);
	struct ferry_hal_rdma_qp_attr sa = rt_attr(t.scq, &t.sctx);
	cr_assert_eq(t.ops->accept(req, &sa, "ok", 2, &t.sqp), 0);
	struct wmsg m;
	cr_assert(wrecv(&t, d, &m));
	cr_assert_eq(m.type, W_REP);
	cr_assert_eq(m.len, 2);
	close(d);
	cr_assert_eq(rt_until_error(&t, t.sqp), -ECONNRESET);
	rt_close(&t);
}

/* A passive mock QP (server) and the raw client socket on the other end. */
static int raw_client(struct rt *t, struct rt_buf *rem)
{
	int fd = tcp_to(t->addr);
	wsend(fd, W_REQ, 0, 0, 0, 0, NULL, 0);
	struct ferry_hal_rdma_req *req = rt_request(t, NULL, NULL);
	struct ferry_hal_rdma_qp_attr sa = rt_attr(t->scq, &t->sctx);
	cr_assert_eq(t->ops->accept(req, &sa, NULL, 0, &t->sqp), 0);
	struct wmsg m;
	cr_assert(wrecv(t, fd, &m));
	cr_assert_eq(m.type, W_REP);
	if (rem)
		rt_buf(t, t->sd, rem, 4096, RT_ALL, 0);
	return fd;
}

Test(mock_rdma_wire, hostile_requester, .timeout = 60)
{
	for (int c = 0; c < 6; c++) {
		struct rt t;
		rt_open(&t, "");
		struct rt_buf rem, rcv;
		int fd = raw_client(&t, &rem);
		rt_buf(&t, t.sd, &rcv, 64, FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE, 0);
		memset(rem.p, 0x66, rem.len);
		memset(rcv.p, 0x77, rcv.len);
		struct ferry_hal_rdma_sge rs = rt_sge(&rcv, 0, 64);
		cr_assert_eq(t.ops->post_recv(t.sqp, 0xa1, &rs, 1), 0);
		uint8_t data[128];
		memset(data, 0xee, sizeof(data));
		int want_nak = 0;
		switch (c) {
		case 0: /* an unknown message type */
			wsend(fd, 42, 0, 0, 0, 0, NULL, 0);
			break;
		case 1: /* a WRITE just past the region */
			wsend(fd, W_WRITE, 128, 0, rem.k.addr + 4096 - 64, rem.k.rkey, data, 128);
			want_nak = 1;
			break;
		case 2: /* a WRITE whose address + length wraps around */
			wsend(fd, W_WRITE, 128, 0, UINT64_MAX - 16, rem.k.rkey, data, 128);
			want_nak = 1;
			break;
		case 3: /* a SEND longer than the limit: refused before any allocation */
			wsend(fd, W_SEND, 0x7fffffffu, 0, 0, 0, data, 16);
			break;
		case 4: /* a READ of 4 GiB - 1 */
			wsend(fd, W_READ, UINT32_MAX, 0, rem.k.addr, rem.k.rkey, NULL, 0);
			break;
		default: /* a connection message on a connected QP */
			wsend(fd, W_REP, 0, 0, 0, 0, NULL, 0);
			break;
		}
		struct wmsg m;
		int got = wrecv(&t, fd, &m);
		if (want_nak) {
			cr_assert(got, "case %d: no answer", c);
			cr_assert_eq(m.type, W_NAK, "case %d", c);
			cr_assert_eq(m.status, -EREMOTEIO, "case %d", c);
		}
		weof(&t, fd);
		cr_assert_eq(t.ops->qp_state(t.sqp, NULL, NULL), -ECONNRESET, "case %d", c);
		rt_expect(rt_wc(&t, t.scq), 0xa1, 0, -ECANCELED);
		for (size_t i = 0; i < rem.len; i++)
			cr_assert_eq(rem.p[i], 0x66, "case %d: byte %zu written", c, i);
		for (size_t i = 0; i < rcv.len; i++)
			cr_assert_eq(rcv.p[i], 0x77, "case %d: receive byte %zu written", c, i);
		close(fd);
		rt_buf_free(&t, &rem);
		rt_buf_free(&t, &rcv);
		rt_close(&t);
	}
}

/* An active mock QP connecting to a raw TCP "target". */
static int raw_target(struct rt *t, int *lfd, char *addr, size_t alen)
{
	*lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof(sa);
	cr_assert_eq(bind(*lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(*lfd, 4), 0);
	cr_assert_eq(getsockname(*lfd, (struct sockaddr *)&sa, &sl), 0);
	snprintf(addr, alen, "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
	struct ferry_hal_rdma_qp_attr ca = rt_attr(t->ccq, &t->cctx);
	cr_assert_eq(t->ops->connect(t->cd, addr, &ca, "req", 3, 5000, &t->cqp), 0);
	rt_pump(t);
	int fd = accept(*lfd, NULL, NULL);
	cr_assert_geq(fd, 0);
	struct wmsg m;
	cr_assert(wrecv(t, fd, &m));
	cr_assert_eq(m.type, W_REQ);
	cr_assert_eq(m.len, 3);
	return fd;
}

Test(mock_rdma_wire, hostile_responder, .timeout = 60)
{
	for (int c = 0; c < 5; c++) {
		struct rt t;
		rt_open(&t, "");
		int lfd;
		char addr[64];
		int fd = raw_target(&t, &lfd, addr, sizeof(addr));
		struct rt_buf back;
		rt_buf(&t, t.cd, &back, 4096, FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE, 0);
		memset(back.p, 0x55, back.len);
		if (c == 0) {
			/* A SEND instead of an accept. */
			wsend(fd, W_SEND, 4, 0, 0, 0, "data", 4);
			cr_assert_eq(rt_cstate(&t, NULL, NULL), -ECONNREFUSED);
		} else if (c == 1) {
			/* Accept data longer than 56 bytes. */
			uint8_t big[64] = {0};
			wsend(fd, W_REP, 64, 0, 0, 0, big, sizeof(big));
			cr_assert_eq(rt_cstate(&t, NULL, NULL), -ECONNREFUSED);
		} else {
			wsend(fd, W_REP, 0, 0, 0, 0, NULL, 0);
			cr_assert_eq(rt_cstate(&t, NULL, NULL), 0);
			struct ferry_hal_rdma_sge s = rt_sge(&back, 0, 64);
			cr_assert_eq(rt_post1(&t, t.cqp, 1, FERRY_HAL_RDMA_OP_READ,
					      FERRY_HAL_RDMA_WR_F_SIGNALED, &s, 1, 0x1000, 0x1234),
				     0);
			struct wmsg m;
			cr_assert(wrecv(&t, fd, &m));
			cr_assert_eq(m.type, W_READ);
			cr_assert_eq(m.len, 64);
			uint8_t data[128];
			memset(data, 0xab, sizeof(data));
			if (c == 2) /* a response of the wrong size */
				wsend(fd, W_READ_RESP, 128, m.psn, 0, 0, data, 128);
			else if (c == 3) /* an answer to a request never made */
				wsend(fd, W_ACK, 0, m.psn + 5, 0, 0, NULL, 0);
			else /* a NAK with a status no responder sends */
				wsend(fd, W_NAK, 0, m.psn, 0, 0, NULL, 0);
			rt_expect(rt_wc(&t, t.ccq), 1, 0, -ECANCELED);
			cr_assert_eq(t.ops->qp_state(t.cqp, NULL, NULL), -ECONNRESET);
			weof(&t, fd);
		}
		for (size_t i = 0; i < back.len; i++)
			cr_assert_eq(back.p[i], 0x55, "case %d: byte %zu written", c, i);
		close(fd);
		close(lfd);
		rt_buf_free(&t, &back);
		rt_close(&t);
	}
}

Test(mock_rdma_wire, listener_close_rejects_pending, .timeout = 30)
{
	struct rt t;
	rt_open(&t, "");
	struct ferry_hal_rdma_qp_attr ca = rt_attr(t.ccq, &t.cctx), sa = rt_attr(t.scq, &t.sctx);
	struct ferry_hal_rdma_qp *q2;
	cr_assert_eq(t.ops->connect(t.cd, t.addr, &ca, NULL, 0, 5000, &t.cqp), 0);
	cr_assert_eq(t.ops->connect(t.cd, t.addr, &ca, NULL, 0, 5000, &q2), 0);
	struct ferry_hal_rdma_req *req = rt_request(&t, NULL, NULL);
	/* Let the second request reach the listener's pending list too. */
	for (int i = 0; i < 20; i++) {
		rt_pump(&t);
		usleep(1000);
	}
	cr_assert_eq(t.ops->accept(req, &sa, NULL, 0, &t.sqp), 0);
	t.ops->listener_close(t.l);
	t.l = NULL;
	uint64_t end = test_rdma_now_ms() + 5000;
	int s1, s2;
	do {
		rt_pump(&t);
		s1 = t.ops->qp_state(t.cqp, NULL, NULL);
		s2 = t.ops->qp_state(q2, NULL, NULL);
		cr_assert_lt(test_rdma_now_ms(), end);
	} while (s1 == -EINPROGRESS || s2 == -EINPROGRESS);
	/* One of them was accepted (whichever came first), the other refused. */
	cr_assert((s1 == 0 && s2 == -ECONNREFUSED) || (s1 == -ECONNREFUSED && s2 == 0),
		  "states %d %d", s1, s2);
	t.ops->qp_destroy(q2);
	rt_close(&t);
}
