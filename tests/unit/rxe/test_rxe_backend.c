/*
 * The rxe backend (backends/rxe: libibverbs + librdmacm) through its HAL RDMA ops.
 *
 * Without an RDMA device (the build machines): open fails with -ENODEV and a last error naming
 * what is missing, unknown arguments are refused; every other test skips. With a device (the
 * QEMU guest, tests/vm/t_rxe_backend.sh: soft-RoCE rxe0 on a dummy interface, its address in
 * FERRY_RXE_ADDR) both ends run in this process on the one device, each with its own CQ:
 * connect/accept with private data both ways, reject with private data, a port nobody
 * listens on, SEND/RECV integrity across SGE splits, inline SEND, RDMA WRITE / READ
 * integrity with SGEs, a bad rkey (-EREMOTEIO on exactly that wr_id, the QP in error, the
 * outstanding receives flushed -ECANCELED), a peer disconnect (-ECONNRESET), a deregistered
 * region refused to the peer, cq_wait() waking on a completion and timing out without one,
 * malformed and queue-full posts, and the device counters. Every wait is bounded.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ferry/ferry.h>
#include <ferry/hal/hal.h>
#include <ferry/hal/rdma.h>
#include "test_rdma_util.h"

static struct ferry_device *dev;
static const struct ferry_hal_rdma_ops *R;
static const char *addr; /* FERRY_RXE_ADDR */
static struct ferry_hal_rdma_info info;

/* ---- without a device ---------------------------------------------------------------------- */

Test(rxe_nodev, open_without_device_names_what_is_missing)
{
	struct ferry_device *d = NULL;
	int rc = ferry_device_open("rxe", "", &d);
	if (rc == 0) {
		/* A device exists: only inside the guest, which sets FERRY_RXE_ADDR. */
		cr_assert_not_null(getenv("FERRY_RXE_ADDR"),
				   "rxe opened but FERRY_RXE_ADDR is not set: an unexpected device");
		ferry_device_close(d);
	} else {
		cr_assert_eq(rc, -ENODEV, "open rxe: %d (%s)", rc, ferry_last_error());
		const char *e = ferry_last_error();
		cr_assert(strstr(e, "no RDMA (verbs) device") != NULL, "last error: %s", e);
		cr_assert(strstr(e, "rdma_rxe") != NULL && strstr(e, "rdma link add") != NULL,
			  "last error does not say how to get a device: %s", e);
	}
	/* A named device that does not exist: -ENODEV either way, naming it or the lack. */
	rc = ferry_device_open("rxe", "dev=nosuch9", &d);
	cr_assert_eq(rc, -ENODEV, "open dev=nosuch9: %d", rc);
	const char *e = ferry_last_error();
	cr_assert(strstr(e, "nosuch9") != NULL || strstr(e, "no RDMA (verbs) device") != NULL,
		  "last error: %s", e);
}

Test(rxe_nodev, unknown_and_empty_arguments_refused)
{
	struct ferry_device *d = NULL;
	cr_assert_eq(ferry_device_open("rxe", "devv=rxe0", &d), -EINVAL);
	cr_assert(strstr(ferry_last_error(), "devv") != NULL, "last error: %s", ferry_last_error());
	cr_assert_eq(ferry_device_open("rxe", "dev=", &d), -EINVAL);
}

/* ---- with a device ------------------------------------------------------------------------- */

static void setup(void)
{
	addr = getenv("FERRY_RXE_ADDR");
	int rc = ferry_device_open("rxe", "", &dev);
	if (rc == -ENODEV) {
		dev = NULL;
		cr_skip_test("no RDMA device here (runs in the guest: tests/vm/t_rxe_backend.sh)");
	}
	cr_assert_eq(rc, 0, "open rxe: %d (%s)", rc, ferry_last_error());
	if (!addr) {
		ferry_device_close(dev);
		dev = NULL;
		cr_skip_test("FERRY_RXE_ADDR (the device's IPv4 address) is not set");
	}
	R = ferry_hal_dev_get_backend(dev)->nic->rdma;
	cr_assert_not_null(R);
	cr_assert_eq(R->query(dev, &info), 0);
}

static void teardown(void)
{
	if (dev)
		ferry_device_close(dev);
	dev = NULL;
}

TestSuite(rxe, .init = setup, .fini = teardown, .timeout = 120);

#define WAIT_MS 10000u

struct side {
	struct ferry_hal_rdma_cq *cq;
	struct ferry_hal_rdma_qp *qp;
	struct ferry_hal_rdma_wc wc[256];
	unsigned n;
};

static void side_poll(struct side *s)
{
	if (s->n >= 256)
		return;
	int n = R->cq_poll(s->cq, s->wc + s->n, 256 - s->n);
	cr_assert_geq(n, 0, "cq_poll: %d (%s)", n, ferry_last_error());
	s->n += (unsigned)n;
}

/* Polls both sides until @p s holds @p want completions; fails after WAIT_MS. */
static void wait_wc(struct side *s, struct side *other, unsigned want)
{
	uint64_t end = test_rdma_now_ms() + WAIT_MS;
	while (s->n < want) {
		side_poll(s);
		if (other)
			side_poll(other);
		if (s->n >= want)
			break;
		cr_assert_lt(test_rdma_now_ms(), end, "only %u of %u completions after %u ms", s->n,
			     want, WAIT_MS);
		(void)R->cq_wait(s->cq, 2000);
	}
}

static const struct ferry_hal_rdma_wc *find_wc(const struct side *s, uint64_t wr_id)
{
	for (unsigned i = 0; i < s->n; i++)
		if (s->wc[i].wr_id == wr_id)
			return &s->wc[i];
	return NULL;
}

static struct ferry_hal_rdma_qp_attr qattr(struct side *s, void *ctx)
{
	return test_rdma_qp_attr(s->cq, ctx, 32, info.max_inline >= 64 ? 64 : 0);
}

static void side_init(struct side *s)
{
	memset(s, 0, sizeof(*s));
	int rc = R->cq_create(dev, 512, &s->cq);
	cr_assert_eq(rc, 0, "cq_create: %d (%s)", rc, ferry_last_error());
}

static void side_fini(struct side *s)
{
	R->qp_destroy(s->qp);
	s->qp = NULL;
	R->cq_destroy(s->cq);
}

static struct ferry_hal_rdma_listener *do_listen(char *where, size_t len)
{
	char a[64];
	struct ferry_hal_rdma_listener *l = NULL;
	snprintf(a, sizeof(a), "%s:0", addr);
	int rc = R->listen(dev, a, 8, &l);
	cr_assert_eq(rc, 0, "listen %s: %d (%s)", a, rc, ferry_last_error());
	cr_assert_eq(R->listener_addr(l, where, len), 0);
	cr_assert_neq(strcmp(where + strlen(where) - 2, ":0"), 0, "port 0 kept: %s", where);
	return l;
}

/* Takes the next connection request, driving @p cli meanwhile. */
static struct ferry_hal_rdma_req *wait_req(struct ferry_hal_rdma_listener *l, struct side *cli,
					   const void **pd, uint32_t *pl)
{
	struct ferry_hal_rdma_req *r = NULL;
	uint64_t end = test_rdma_now_ms() + WAIT_MS;
	for (;;) {
		int rc = R->get_request(l, &r, pd, pl);
		if (rc == 0)
			return r;
		cr_assert_eq(rc, -EAGAIN, "get_request: %d", rc);
		side_poll(cli);
		cr_assert_lt(test_rdma_now_ms(), end, "no connection request in %u ms", WAIT_MS);
		(void)R->cq_wait(cli->cq, 2000);
	}
}

/* Waits until qp_state() of @p s->qp is not -EINPROGRESS; returns it. */
static int wait_state(struct side *s, struct side *other, const void **pd, uint32_t *pl)
{
	uint64_t end = test_rdma_now_ms() + WAIT_MS + 5000;
	for (;;) {
		int st = R->qp_state(s->qp, pd, pl);
		if (st != -EINPROGRESS)
			return st;
		side_poll(s);
		if (other && other->qp)
			side_poll(other);
		cr_assert_lt(test_rdma_now_ms(), end, "still connecting after %u ms",
			     WAIT_MS + 5000);
		(void)R->cq_wait(s->cq, 2000);
	}
}

static const char cpd[] = "client-hello-pdata";
static const char spd[] = "server-accept-pdata!";

/* A connected pair: cli connects (private data cpd), srv accepts (spd). */
static void pair_up(struct side *cli, struct side *srv, struct ferry_hal_rdma_listener **lout)
{
	char la[64];
	struct ferry_hal_rdma_listener *l = do_listen(la, sizeof(la));
	struct ferry_hal_rdma_qp_attr ca = qattr(cli, cli), sa = qattr(srv, srv);
	int rc = R->connect(dev, la, &ca, cpd, sizeof(cpd), 5000, &cli->qp);
	cr_assert_eq(rc, 0, "connect %s: %d (%s)", la, rc, ferry_last_error());
	const void *pd = NULL;
	uint32_t pl = 0;
	struct ferry_hal_rdma_req *r = wait_req(l, cli, &pd, &pl);
	cr_assert_geq(pl, sizeof(cpd), "request private data %u bytes", pl);
	cr_assert_leq(pl, FERRY_HAL_RDMA_PDATA_MAX);
	cr_assert_eq(memcmp(pd, cpd, sizeof(cpd)), 0, "request private data differs");
	rc = R->accept(r, &sa, spd, sizeof(spd), &srv->qp);
	cr_assert_eq(rc, 0, "accept: %d (%s)", rc, ferry_last_error());
	char early[64]; /* the accepting side knows its peer at once */
	rc = R->qp_addr(srv->qp, 1, early, sizeof(early));
	cr_assert_eq(rc, 0, "server's peer address before ESTABLISHED: %d", rc);
	cr_assert_eq(strncmp(early, addr, strlen(addr)), 0, "peer %s", early);
	pd = NULL;
	pl = 0;
	int st = wait_state(cli, srv, &pd, &pl);
	cr_assert_eq(st, 0, "client state %d (%s)", st, ferry_last_error());
	cr_assert_geq(pl, sizeof(spd));
	cr_assert_eq(memcmp(pd, spd, sizeof(spd)), 0, "accept private data differs");
	st = wait_state(srv, cli, NULL, NULL);
	cr_assert_eq(st, 0, "server state %d", st);
	if (lout)
		*lout = l;
	else
		R->listener_close(l);
}

static struct ferry_hal_rdma_mr *reg(void *p, size_t len, uint32_t acc,
				     struct ferry_hal_rdma_mr_keys *k)
{
	return test_rdma_reg(R, dev, p, len, acc, k);
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed * 131u + i * 7u + (i >> 8));
}

#define ACC_ALL TEST_RDMA_ACCESS_ALL

Test(rxe, query_limits)
{
	cr_assert_geq(info.max_sge, 2);
	cr_assert_geq(info.max_qp_wr, 64);
	cr_assert_geq(info.max_cqe, 256);
	cr_assert_geq(info.max_qp_rd_atom, 1);
	cr_assert_gt(info.max_mr_size, 0);
	cr_assert_eq(info.ndomains, 0);
	cr_assert_gt(strlen(info.name), 0);
	struct ferry_hal_nic_info ni;
	cr_assert_eq(ferry_hal_dev_get_backend(dev)->nic->query(dev, &ni), 0);
	cr_assert_eq(ni.caps & (FERRY_HAL_NIC_CAP_TCP | FERRY_HAL_NIC_CAP_RDMA),
		     FERRY_HAL_NIC_CAP_TCP | FERRY_HAL_NIC_CAP_RDMA);
	/* the same device by name: a second device of it, its own PD */
	char args[64];
	snprintf(args, sizeof(args), "dev=%s", info.name);
	struct ferry_device *d2 = NULL;
	cr_assert_eq(ferry_device_open("rxe", args, &d2), 0, "%s: %s", args, ferry_last_error());
	struct ferry_hal_rdma_info i2;
	cr_assert_eq(R->query(d2, &i2), 0);
	cr_assert_str_eq(i2.name, info.name);
	ferry_device_close(d2);
}

Test(rxe, connect_accept_private_data_and_addresses)
{
	struct side cli, srv;
	side_init(&cli);
	side_init(&srv);
	char la[64], a[64];
	struct ferry_hal_rdma_listener *l = NULL;
	pair_up(&cli, &srv, &l);
	cr_assert_eq(R->listener_addr(l, la, sizeof(la)), 0);
	cr_assert_eq(R->qp_addr(cli.qp, 1, a, sizeof(a)), 0);
	cr_assert_str_eq(a, la, "client's peer %s, listener %s", a, la);
	char ca[64], sp[64];
	cr_assert_eq(R->qp_addr(cli.qp, 0, ca, sizeof(ca)), 0);
	cr_assert_eq(R->qp_addr(srv.qp, 1, sp, sizeof(sp)), 0);
	cr_assert_str_eq(ca, sp, "client local %s, server's peer %s", ca, sp);
	cr_assert_eq(R->qp_addr(cli.qp, 0, a, 4), -ENOBUFS);
	R->listener_close(l);
	side_fini(&cli);
	side_fini(&srv);
}

Test(rxe, reject_with_private_data)
{
	struct side cli;
	side_init(&cli);
	char la[64];
	struct ferry_hal_rdma_listener *l = do_listen(la, sizeof(la));
	struct ferry_hal_rdma_qp_attr ca = qattr(&cli, &cli);
	cr_assert_eq(R->connect(dev, la, &ca, cpd, sizeof(cpd), 5000, &cli.qp), 0);
	/* A receive posted while connecting is flushed when the connection is refused. */
	static uint8_t rb[64];
	struct ferry_hal_rdma_mr_keys k;
	struct ferry_hal_rdma_mr *m = reg(rb, sizeof(rb), ACC_ALL, &k);
	struct ferry_hal_rdma_sge sg = {.addr = k.addr, .len = sizeof(rb), .lkey = k.lkey};
	cr_assert_eq(R->post_recv(cli.qp, 77, &sg, 1), 0);
	struct ferry_hal_rdma_wr w = {.wr_id = 1,
				      .opcode = FERRY_HAL_RDMA_OP_SEND,
				      .sge = &sg,
				      .nsge = 1};
	const struct ferry_hal_rdma_wr *bad = NULL;
	cr_assert_eq(R->post_send(cli.qp, &w, &bad), -ENOTCONN);
	cr_assert_eq(bad, &w);
	struct ferry_hal_rdma_req *r = wait_req(l, &cli, NULL, NULL);
	static const char no[] = "go away: queue full";
	R->reject(r, no, sizeof(no));
	const void *pd = NULL;
	uint32_t pl = 0;
	int st = wait_state(&cli, NULL, &pd, &pl);
	cr_assert_eq(st, -ECONNREFUSED, "state %d", st);
	cr_assert_geq(pl, sizeof(no));
	cr_assert_eq(memcmp(pd, no, sizeof(no)), 0, "reject private data differs");
	/* sticky */
	cr_assert_eq(R->qp_state(cli.qp, NULL, NULL), -ECONNREFUSED);
	cr_assert_eq(R->post_recv(cli.qp, 78, &sg, 1), -ECONNRESET);
	wait_wc(&cli, NULL, 1);
	cr_assert_eq(cli.n, 1);
	cr_assert_eq(cli.wc[0].wr_id, 77);
	cr_assert_eq(cli.wc[0].status, -ECANCELED);
	cr_assert_eq(cli.wc[0].qp_ctx, &cli);
	R->listener_close(l);
	side_fini(&cli);
	R->mr_dereg(m);
}

Test(rxe, connect_to_port_nobody_listens_on)
{
	struct side cli;
	side_init(&cli);
	char la[64];
	struct ferry_hal_rdma_listener *l = do_listen(la, sizeof(la));
	R->listener_close(l); /* the port is free again */
	struct ferry_hal_rdma_qp_attr ca = qattr(&cli, &cli);
	cr_assert_eq(R->connect(dev, la, &ca, NULL, 0, 5000, &cli.qp), 0);
	int st = wait_state(&cli, NULL, NULL, NULL);
	cr_assert_eq(st, -ECONNREFUSED, "state %d (%s)", st, ferry_last_error());
	side_fini(&cli);
}

Test(rxe, bad_arguments)
{
	struct side cli;
	side_init(&cli);
	struct ferry_hal_rdma_qp_attr ca = qattr(&cli, &cli);
	struct ferry_hal_rdma_qp *q = NULL;
	cr_assert_eq(R->connect(dev, "10.9.0.1", &ca, NULL, 0, 1000, &q), -EINVAL);
	cr_assert_eq(R->connect(dev, "10.9.0.1:99999", &ca, NULL, 0, 1000, &q), -EINVAL);
	cr_assert_eq(R->connect(dev, "host:4420", &ca, NULL, 0, 1000, &q), -EINVAL);
	uint8_t big[FERRY_HAL_RDMA_PDATA_MAX + 1] = {0};
	cr_assert_eq(R->connect(dev, "10.9.0.1:4420", &ca, big, sizeof(big), 1000, &q), -EINVAL);
	struct ferry_hal_rdma_qp_attr b = ca;
	b.max_send_sge = info.max_sge + 1;
	cr_assert_eq(R->connect(dev, "10.9.0.1:4420", &b, NULL, 0, 1000, &q), -EINVAL);
	b = ca;
	b.size = 8;
	cr_assert_eq(R->connect(dev, "10.9.0.1:4420", &b, NULL, 0, 1000, &q), -EINVAL);
	struct ferry_hal_rdma_listener *l = NULL;
	cr_assert_eq(R->listen(dev, "1.2.3.4.5:1", 1, &l), -EINVAL);
	cr_assert_eq(R->listen(dev, "192.0.2.77:4420", 1, &l), -EADDRNOTAVAIL);
	struct ferry_hal_rdma_mr *m = NULL;
	uint8_t buf[16];
	cr_assert_eq(R->mr_reg(dev, buf, 0, 0, &m), -EINVAL);
	cr_assert_eq(R->mr_reg(dev, buf, sizeof(buf), 0x100, &m), -EINVAL);
	R->cq_destroy(cli.cq);
}

/* SEND into a 3-SGE receive from a 2-SGE source; byte-exact landing, counters. */
Test(rxe, send_recv_sges_integrity)
{
	struct side cli, srv;
	side_init(&cli);
	side_init(&srv);
	pair_up(&cli, &srv, NULL);
	struct ferry_hal_rdma_stats s0, s1;
	cr_assert_eq(R->rdma_stats(dev, &s0), 0);
	static uint8_t src[8192], dst[8192];
	fill(src, sizeof(src), 3);
	memset(dst, 0xee, sizeof(dst));
	struct ferry_hal_rdma_mr_keys ks, kd;
	struct ferry_hal_rdma_mr *ms = reg(src, sizeof(src), FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE,
					   &ks);
	struct ferry_hal_rdma_mr *md = reg(dst, sizeof(dst), FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE,
					   &kd);
	/* receive: 100 @ dst+0, 1000 @ dst+1000, 2948 @ dst+4000 */
	struct ferry_hal_rdma_sge rs[3] = {{kd.addr, 100, kd.lkey},
					   {kd.addr + 1000, 1000, kd.lkey},
					   {kd.addr + 4000, 2948, kd.lkey}};
	cr_assert_eq(R->post_recv(srv.qp, 0xabc, rs, 3), 0);
	/* send: 1500 @ src+10, 2500 @ src+5000 = 4000 bytes (< 4048 receive) */
	struct ferry_hal_rdma_sge ss[2] = {{ks.addr + 10, 1500, ks.lkey},
					   {ks.addr + 5000, 2500, ks.lkey}};
	struct ferry_hal_rdma_wr w = {.wr_id = 0x5e4d,
				      .opcode = FERRY_HAL_RDMA_OP_SEND,
				      .flags = FERRY_HAL_RDMA_WR_F_SIGNALED,
				      .sge = ss,
				      .nsge = 2};
	cr_assert_eq(R->post_send(cli.qp, &w, NULL), 0);
	wait_wc(&srv, &cli, 1);
	wait_wc(&cli, &srv, 1);
	cr_assert_eq(srv.wc[0].wr_id, 0xabc);
	cr_assert_eq(srv.wc[0].status, 0);
	cr_assert_eq(srv.wc[0].opcode, FERRY_HAL_RDMA_OP_RECV);
	cr_assert_eq(srv.wc[0].byte_len, 4000);
	cr_assert_eq(srv.wc[0].qp_ctx, &srv);
	cr_assert_eq(cli.wc[0].wr_id, 0x5e4d);
	cr_assert_eq(cli.wc[0].status, 0);
	cr_assert_eq(cli.wc[0].opcode, FERRY_HAL_RDMA_OP_SEND);
	/* the 4000-byte message, in order, through the receive SGEs */
	uint8_t msg[4000], got[4000];
	memcpy(msg, src + 10, 1500);
	memcpy(msg + 1500, src + 5000, 2500);
	memcpy(got, dst, 100);
	memcpy(got + 100, dst + 1000, 1000);
	memcpy(got + 1100, dst + 4000, 2900);
	cr_assert_eq(memcmp(msg, got, sizeof(msg)), 0, "received bytes differ");
	/* nothing outside the SGEs / past the message was touched */
	cr_assert_eq(dst[100], 0xee);
	cr_assert_eq(dst[999], 0xee);
	cr_assert_eq(dst[2000], 0xee);
	cr_assert_eq(dst[6900], 0xee);
	cr_assert_eq(R->rdma_stats(dev, &s1), 0);
	cr_assert_eq(s1.sends - s0.sends, 1);
	cr_assert_eq(s1.send_bytes - s0.send_bytes, 4000);
	cr_assert_eq(s1.recvs - s0.recvs, 1);
	cr_assert_eq(s1.recv_bytes - s0.recv_bytes, 4000);
	cr_assert_eq(s1.wc_errors, s0.wc_errors);
	/* unsignaled: no completion reported on success */
	cr_assert_eq(R->post_recv(srv.qp, 0xabd, rs, 3), 0);
	w.flags = 0;
	w.wr_id = 0x5e4e;
	cr_assert_eq(R->post_send(cli.qp, &w, NULL), 0);
	wait_wc(&srv, &cli, 2);
	for (int i = 0; i < 20; i++)
		side_poll(&cli);
	cr_assert_eq(cli.n, 1, "an unsignaled send was reported");
	side_fini(&cli);
	side_fini(&srv);
	R->mr_dereg(ms);
	R->mr_dereg(md);
}

Test(rxe, inline_send_copies_at_post)
{
	struct side cli, srv;
	side_init(&cli);
	side_init(&srv);
	if (info.max_inline < 64) {
		side_fini(&cli);
		side_fini(&srv);
		cr_skip_test("device offers %u inline bytes", info.max_inline);
	}
	pair_up(&cli, &srv, NULL);
	static uint8_t dst[256];
	struct ferry_hal_rdma_mr_keys kd;
	struct ferry_hal_rdma_mr *md = reg(dst, sizeof(dst), FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE,
					   &kd);
	struct ferry_hal_rdma_sge rs = {kd.addr, sizeof(dst), kd.lkey};
	cr_assert_eq(R->post_recv(srv.qp, 1, &rs, 1), 0);
	uint8_t tmp[48]; /* not registered: inline needs no key */
	fill(tmp, sizeof(tmp), 9);
	uint8_t want[48];
	memcpy(want, tmp, sizeof(want));
	struct ferry_hal_rdma_sge ss = {(uint64_t)(uintptr_t)tmp, sizeof(tmp), 0};
	struct ferry_hal_rdma_wr w = {.wr_id = 2,
				      .opcode = FERRY_HAL_RDMA_OP_SEND,
				      .flags = FERRY_HAL_RDMA_WR_F_INLINE |
					       FERRY_HAL_RDMA_WR_F_SIGNALED,
				      .sge = &ss,
				      .nsge = 1};
	cr_assert_eq(R->post_send(cli.qp, &w, NULL), 0);
	memset(tmp, 0, sizeof(tmp)); /* the copy was taken at post */
	wait_wc(&srv, &cli, 1);
	cr_assert_eq(srv.wc[0].status, 0);
	cr_assert_eq(srv.wc[0].byte_len, sizeof(want));
	cr_assert_eq(memcmp(dst, want, sizeof(want)), 0);
	/* more than the QP's inline size: refused */
	uint8_t big[65] = {0};
	ss = (struct ferry_hal_rdma_sge){(uint64_t)(uintptr_t)big, sizeof(big), 0};
	cr_assert_eq(R->post_send(cli.qp, &w, NULL), -EINVAL);
	side_fini(&cli);
	side_fini(&srv);
	R->mr_dereg(md);
}

Test(rxe, write_and_read_integrity_with_sges)
{
	struct side cli, srv;
	side_init(&cli);
	side_init(&srv);
	pair_up(&cli, &srv, NULL);
	static uint8_t remote[65536], a[8192], b[8192], back[16384];
	memset(remote, 0x11, sizeof(remote));
	fill(a, sizeof(a), 5);
	fill(b, sizeof(b), 6);
	memset(back, 0, sizeof(back));
	struct ferry_hal_rdma_mr_keys kr, ka, kb, kk;
	struct ferry_hal_rdma_mr *mr = reg(remote, sizeof(remote), ACC_ALL, &kr);
	struct ferry_hal_rdma_mr *ma = reg(a, sizeof(a), FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE, &ka);
	struct ferry_hal_rdma_mr *mb = reg(b, sizeof(b), FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE, &kb);
	struct ferry_hal_rdma_mr *mk = reg(back, sizeof(back), FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE,
					   &kk);
	struct ferry_hal_rdma_stats s0, s1;
	cr_assert_eq(R->rdma_stats(dev, &s0), 0);
	/* WRITE 3000 from a+7 and 5000 from b+100 to remote+12345 */
	struct ferry_hal_rdma_sge ws[2] = {{ka.addr + 7, 3000, ka.lkey},
					   {kb.addr + 100, 5000, kb.lkey}};
	struct ferry_hal_rdma_wr wr = {.wr_id = 10,
				       .opcode = FERRY_HAL_RDMA_OP_WRITE,
				       .flags = FERRY_HAL_RDMA_WR_F_SIGNALED,
				       .sge = ws,
				       .nsge = 2,
				       .rkey = kr.rkey,
				       .remote_addr = kr.addr + 12345};
	/* READ it back into back+1 (4000) and back+9000 (4000), fenced after the write */
	struct ferry_hal_rdma_sge rsg[2] = {{kk.addr + 1, 4000, kk.lkey},
					    {kk.addr + 9000, 4000, kk.lkey}};
	struct ferry_hal_rdma_wr rd = {.wr_id = 11,
				       .opcode = FERRY_HAL_RDMA_OP_READ,
				       .flags = FERRY_HAL_RDMA_WR_F_SIGNALED |
						FERRY_HAL_RDMA_WR_F_FENCE,
				       .sge = rsg,
				       .nsge = 2,
				       .rkey = kr.rkey,
				       .remote_addr = kr.addr + 12345};
	wr.next = &rd;
	const struct ferry_hal_rdma_wr *bad = &wr;
	cr_assert_eq(R->post_send(cli.qp, &wr, &bad), 0);
	cr_assert_null(bad);
	wait_wc(&cli, &srv, 2);
	const struct ferry_hal_rdma_wc *c1 = find_wc(&cli, 10), *c2 = find_wc(&cli, 11);
	cr_assert(c1 && c2);
	cr_assert_eq(c1->status, 0);
	cr_assert_eq(c1->opcode, FERRY_HAL_RDMA_OP_WRITE);
	cr_assert_eq(c2->status, 0);
	cr_assert_eq(c2->opcode, FERRY_HAL_RDMA_OP_READ);
	uint8_t want[8000];
	memcpy(want, a + 7, 3000);
	memcpy(want + 3000, b + 100, 5000);
	cr_assert_eq(memcmp(remote + 12345, want, 8000), 0, "written bytes differ");
	cr_assert_eq(remote[12344], 0x11);
	cr_assert_eq(remote[12345 + 8000], 0x11);
	cr_assert_eq(memcmp(back + 1, want, 4000), 0, "read bytes (1st SGE) differ");
	cr_assert_eq(memcmp(back + 9000, want + 4000, 4000), 0, "read bytes (2nd SGE) differ");
	cr_assert_eq(back[0], 0);
	cr_assert_eq(back[4001], 0);
	cr_assert_eq(srv.n, 0, "the target side saw a completion of a one-sided op");
	cr_assert_eq(R->rdma_stats(dev, &s1), 0);
	cr_assert_eq(s1.writes - s0.writes, 1);
	cr_assert_eq(s1.write_bytes - s0.write_bytes, 8000);
	cr_assert_eq(s1.reads - s0.reads, 1);
	cr_assert_eq(s1.read_bytes - s0.read_bytes, 8000);
	side_fini(&cli);
	side_fini(&srv);
	R->mr_dereg(mr);
	R->mr_dereg(ma);
	R->mr_dereg(mb);
	R->mr_dereg(mk);
}

/* A bad rkey: -EREMOTEIO on exactly that wr_id, the QP in error, receives flushed. */
Test(rxe, bad_rkey_remote_error_and_flush)
{
	struct side cli, srv;
	side_init(&cli);
	side_init(&srv);
	pair_up(&cli, &srv, NULL);
	static uint8_t remote[4096], loc[4096];
	struct ferry_hal_rdma_mr_keys kr, kl;
	struct ferry_hal_rdma_mr *mr = reg(remote, sizeof(remote), ACC_ALL, &kr);
	struct ferry_hal_rdma_mr *ml = reg(loc, sizeof(loc), FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE,
					   &kl);
	struct ferry_hal_rdma_sge rs = {kl.addr + 2048, 1024, kl.lkey};
	for (uint64_t i = 0; i < 3; i++)
		cr_assert_eq(R->post_recv(cli.qp, 100 + i, &rs, 1), 0);
	struct ferry_hal_rdma_stats s0, s1;
	cr_assert_eq(R->rdma_stats(dev, &s0), 0);
	struct ferry_hal_rdma_sge ws = {kl.addr, 512, kl.lkey};
	struct ferry_hal_rdma_wr ok = {.wr_id = 20,
				       .opcode = FERRY_HAL_RDMA_OP_WRITE,
				       .flags = FERRY_HAL_RDMA_WR_F_SIGNALED,
				       .sge = &ws,
				       .nsge = 1,
				       .rkey = kr.rkey,
				       .remote_addr = kr.addr};
	struct ferry_hal_rdma_wr badw = ok;
	badw.wr_id = 21;
	badw.flags = 0; /* unsignaled: the error is reported anyway */
	badw.rkey = kr.rkey ^ 0x5a5a00u;
	ok.next = &badw;
	cr_assert_eq(R->post_send(cli.qp, &ok, NULL), 0);
	wait_wc(&cli, &srv, 5);
	const struct ferry_hal_rdma_wc *w20 = find_wc(&cli, 20), *w21 = find_wc(&cli, 21);
	cr_assert(w20 && w21, "completions of 20 and 21 expected");
	cr_assert_eq(w20->status, 0);
	cr_assert_eq(w21->status, -EREMOTEIO, "bad rkey: status %d", w21->status);
	for (uint64_t i = 0; i < 3; i++) {
		const struct ferry_hal_rdma_wc *r = find_wc(&cli, 100 + i);
		cr_assert_not_null(r, "receive %llu not flushed", (unsigned long long)(100 + i));
		cr_assert_eq(r->status, -ECANCELED);
		cr_assert_eq(r->opcode, FERRY_HAL_RDMA_OP_RECV);
	}
	cr_assert_eq(cli.n, 5);
	cr_assert_eq(R->qp_state(cli.qp, NULL, NULL), -ECONNRESET);
	cr_assert_eq(R->post_send(cli.qp, &ok, NULL), -ECONNRESET);
	cr_assert_eq(R->rdma_stats(dev, &s1), 0);
	cr_assert_geq(s1.wc_errors - s0.wc_errors, 4);
	cr_assert_geq(s1.qp_errors - s0.qp_errors, 1);
	side_fini(&cli);
	side_fini(&srv);
	R->mr_dereg(mr);
	R->mr_dereg(ml);
}

Test(rxe, peer_disconnect_seen_as_reset)
{
	struct side cli, srv;
	side_init(&cli);
	side_init(&srv);
	pair_up(&cli, &srv, NULL);
	static uint8_t loc[1024];
	struct ferry_hal_rdma_mr_keys kl;
	struct ferry_hal_rdma_mr *ml = reg(loc, sizeof(loc), FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE,
					   &kl);
	struct ferry_hal_rdma_sge rs = {kl.addr, 1024, kl.lkey};
	cr_assert_eq(R->post_recv(cli.qp, 7, &rs, 1), 0);
	R->qp_destroy(srv.qp);
	srv.qp = NULL;
	int st = wait_state(&cli, NULL, NULL, NULL);
	uint64_t end = test_rdma_now_ms() + WAIT_MS;
	while ((st = R->qp_state(cli.qp, NULL, NULL)) == 0) {
		cr_assert_lt(test_rdma_now_ms(), end, "the peer's disconnect not seen in %u ms",
			     WAIT_MS);
		side_poll(&cli);
		(void)R->cq_wait(cli.cq, 2000);
	}
	cr_assert_eq(st, -ECONNRESET, "state %d", st);
	wait_wc(&cli, NULL, 1);
	cr_assert_eq(cli.wc[0].wr_id, 7);
	cr_assert_eq(cli.wc[0].status, -ECANCELED);
	side_fini(&cli);
	side_fini(&srv);
	R->mr_dereg(ml);
}

Test(rxe, dereg_then_remote_access_fails)
{
	struct side cli, srv;
	side_init(&cli);
	side_init(&srv);
	pair_up(&cli, &srv, NULL);
	static uint8_t remote[4096], loc[4096];
	struct ferry_hal_rdma_mr_keys kr, kl;
	struct ferry_hal_rdma_mr *mr = reg(remote, sizeof(remote), ACC_ALL, &kr);
	struct ferry_hal_rdma_mr *ml = reg(loc, sizeof(loc), FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE,
					   &kl);
	struct ferry_hal_rdma_sge sg = {kl.addr, 256, kl.lkey};
	struct ferry_hal_rdma_wr rd = {.wr_id = 30,
				       .opcode = FERRY_HAL_RDMA_OP_READ,
				       .flags = FERRY_HAL_RDMA_WR_F_SIGNALED,
				       .sge = &sg,
				       .nsge = 1,
				       .rkey = kr.rkey,
				       .remote_addr = kr.addr};
	cr_assert_eq(R->post_send(cli.qp, &rd, NULL), 0);
	wait_wc(&cli, &srv, 1);
	cr_assert_eq(cli.wc[0].status, 0, "read before dereg: %d", cli.wc[0].status);
	struct ferry_hal_rdma_stats s0, s1;
	cr_assert_eq(R->rdma_stats(dev, &s0), 0);
	R->mr_dereg(mr);
	cr_assert_eq(R->rdma_stats(dev, &s1), 0);
	cr_assert_eq(s1.mr_deregs - s0.mr_deregs, 1);
	rd.wr_id = 31;
	cr_assert_eq(R->post_send(cli.qp, &rd, NULL), 0);
	wait_wc(&cli, &srv, 2);
	cr_assert_eq(cli.wc[1].wr_id, 31);
	cr_assert_eq(cli.wc[1].status, -EREMOTEIO, "read after dereg: %d", cli.wc[1].status);
	side_fini(&cli);
	side_fini(&srv);
	R->mr_dereg(ml);
}

Test(rxe, cq_wait_wakes_and_times_out)
{
	struct side cli, srv;
	side_init(&cli);
	side_init(&srv);
	pair_up(&cli, &srv, NULL);
	for (int i = 0; i < 10; i++) {
		side_poll(&cli);
		side_poll(&srv);
	}
	uint64_t t0 = test_rdma_now_ms();
	cr_assert_eq(R->cq_wait(srv.cq, 300000), -ETIMEDOUT);
	uint64_t dt = test_rdma_now_ms() - t0;
	cr_assert_geq(dt, 250, "cq_wait returned after %llu ms", (unsigned long long)dt);
	static uint8_t buf[512];
	struct ferry_hal_rdma_mr_keys k;
	struct ferry_hal_rdma_mr *m = reg(buf, sizeof(buf), FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE, &k);
	struct ferry_hal_rdma_sge rs = {k.addr, 256, k.lkey}, ss = {k.addr + 256, 128, k.lkey};
	cr_assert_eq(R->post_recv(srv.qp, 40, &rs, 1), 0);
	struct ferry_hal_rdma_wr w = {.wr_id = 41,
				      .opcode = FERRY_HAL_RDMA_OP_SEND,
				      .sge = &ss,
				      .nsge = 1};
	cr_assert_eq(R->post_send(cli.qp, &w, NULL), 0);
	/* The receiver waits in cq_wait (the sender's CQ is not polled: rxe needs no help). */
	t0 = test_rdma_now_ms();
	int rc = -ETIMEDOUT;
	while (srv.n == 0 && test_rdma_now_ms() - t0 < WAIT_MS) {
		rc = R->cq_wait(srv.cq, 5000000);
		side_poll(&srv);
	}
	cr_assert_eq(rc, 0, "cq_wait: %d", rc);
	cr_assert_eq(srv.n, 1);
	cr_assert_eq(srv.wc[0].wr_id, 40);
	cr_assert_eq(srv.wc[0].byte_len, 128);
	cr_assert_lt(test_rdma_now_ms() - t0, 5000, "woke only at the timeout");
	side_fini(&cli);
	side_fini(&srv);
	R->mr_dereg(m);
}

Test(rxe, malformed_and_queue_full_posts)
{
	struct side cli, srv;
	side_init(&cli);
	side_init(&srv);
	pair_up(&cli, &srv, NULL);
	static uint8_t buf[4096];
	struct ferry_hal_rdma_mr_keys k;
	struct ferry_hal_rdma_mr *m = reg(buf, sizeof(buf), FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE, &k);
	struct ferry_hal_rdma_sge sg[5];
	for (int i = 0; i < 5; i++)
		sg[i] = (struct ferry_hal_rdma_sge){k.addr + (uint64_t)i * 64, 64, k.lkey};
	cr_assert_eq(R->post_recv(srv.qp, 1, sg, 5), -EINVAL); /* QP takes 4 */
	struct ferry_hal_rdma_wr w = {.wr_id = 1, .opcode = 9, .sge = sg, .nsge = 1};
	const struct ferry_hal_rdma_wr *bad = NULL;
	cr_assert_eq(R->post_send(cli.qp, &w, &bad), -EINVAL);
	cr_assert_eq(bad, &w);
	w.opcode = FERRY_HAL_RDMA_OP_READ;
	w.flags = FERRY_HAL_RDMA_WR_F_INLINE;
	cr_assert_eq(R->post_send(cli.qp, &w, NULL), -EINVAL);
	/* A list whose 2nd request is bad: the 1st is posted, *bad is the 2nd. */
	struct ferry_hal_rdma_wr w2 = {.wr_id = 3,
				       .opcode = FERRY_HAL_RDMA_OP_SEND,
				       .sge = sg,
				       .nsge = 5};
	struct ferry_hal_rdma_wr w1 = {.wr_id = 2,
				       .opcode = FERRY_HAL_RDMA_OP_SEND,
				       .flags = FERRY_HAL_RDMA_WR_F_SIGNALED,
				       .sge = sg,
				       .nsge = 1,
				       .next = &w2};
	cr_assert_eq(R->post_recv(srv.qp, 50, sg, 1), 0);
	cr_assert_eq(R->post_send(cli.qp, &w1, &bad), -EINVAL);
	cr_assert_eq(bad, &w2);
	wait_wc(&cli, &srv, 1);
	cr_assert_eq(cli.wc[0].wr_id, 2);
	/* 32 receives fit (one is taken by 50: consumed above), the next one does not. */
	wait_wc(&srv, &cli, 1);
	for (uint64_t i = 0; i < 32; i++)
		cr_assert_eq(R->post_recv(srv.qp, 200 + i, sg, 1), 0, "recv %llu",
			     (unsigned long long)i);
	cr_assert_eq(R->post_recv(srv.qp, 999, sg, 1), -ENOSPC);
	side_fini(&cli);
	side_fini(&srv);
	R->mr_dereg(m);
}

/* No host behind the address (the dummy interface drops everything), no route at all. */
Test(rxe, connect_unreachable_addresses)
{
	struct side cli;
	side_init(&cli);
	struct ferry_hal_rdma_qp_attr ca = qattr(&cli, &cli);
	char peer[64];
	/* the .77 host of the device's /24 */
	snprintf(peer, sizeof(peer), "%s", addr);
	char *dot = strrchr(peer, '.');
	cr_assert_not_null(dot);
	snprintf(dot, sizeof(peer) - (size_t)(dot - peer), ".77:4420");
	uint64_t t0 = test_rdma_now_ms();
	cr_assert_eq(R->connect(dev, peer, &ca, NULL, 0, 1500, &cli.qp), 0);
	int st = wait_state(&cli, NULL, NULL, NULL);
	cr_assert(st == -ETIMEDOUT || st == -ENETUNREACH, "%s: state %d", peer, st);
	cr_assert_lt(test_rdma_now_ms() - t0, 8000, "the 1.5 s timeout took %llu ms",
		     (unsigned long long)(test_rdma_now_ms() - t0));
	cr_assert_eq(R->qp_state(cli.qp, NULL, NULL), st, "not sticky");
	R->qp_destroy(cli.qp);
	cli.qp = NULL;
	int rc = R->connect(dev, "198.51.100.9:4420", &ca, NULL, 0, 1500, &cli.qp);
	if (rc == 0) {
		st = wait_state(&cli, NULL, NULL, NULL);
		cr_assert(st == -ENETUNREACH || st == -ETIMEDOUT, "no route: state %d", st);
	} else {
		cr_assert_eq(rc, -ENETUNREACH, "no route: connect %d", rc);
	}
	side_fini(&cli);
}

/* Destroying a QP with receives outstanding: none of its completions shows up afterwards,
 * not even while another QP on the same CQ keeps running. */
Test(rxe, no_completion_after_qp_destroy)
{
	struct side cli, srv, cli2, srv2;
	side_init(&cli);
	side_init(&srv);
	pair_up(&cli, &srv, NULL);
	memset(&cli2, 0, sizeof(cli2));
	memset(&srv2, 0, sizeof(srv2));
	cli2.cq = cli.cq; /* the second pair shares the CQs */
	srv2.cq = srv.cq;
	pair_up(&cli2, &srv2, NULL);
	static uint8_t buf[8192];
	struct ferry_hal_rdma_mr_keys k;
	struct ferry_hal_rdma_mr *m = reg(buf, sizeof(buf), FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE, &k);
	struct ferry_hal_rdma_sge rs = {k.addr, 256, k.lkey}, ss = {k.addr + 4096, 100, k.lkey};
	for (uint64_t i = 0; i < 8; i++)
		cr_assert_eq(R->post_recv(srv.qp, 500 + i, &rs, 1), 0);
	cr_assert_eq(R->post_recv(srv2.qp, 600, &rs, 1), 0);
	/* one message lands in 500 before the destroy, unpolled */
	struct ferry_hal_rdma_wr w = {.wr_id = 1,
				      .opcode = FERRY_HAL_RDMA_OP_SEND,
				      .flags = FERRY_HAL_RDMA_WR_F_SIGNALED,
				      .sge = &ss,
				      .nsge = 1};
	cr_assert_eq(R->post_send(cli.qp, &w, NULL), 0);
	wait_wc(&cli, NULL, 1);
	R->qp_destroy(srv.qp);
	srv.qp = NULL;
	srv.n = 0;
	cr_assert_eq(R->post_send(cli2.qp, &w, NULL), 0);
	wait_wc(&srv, &cli, 1);
	for (int i = 0; i < 50; i++) {
		side_poll(&srv);
		(void)R->cq_wait(srv.cq, 2000);
	}
	for (unsigned i = 0; i < srv.n; i++)
		cr_assert(srv.wc[i].wr_id == 600, "completion %llu of the destroyed QP reported",
			  (unsigned long long)srv.wc[i].wr_id);
	cr_assert_eq(srv.n, 1);
	cr_assert_eq(srv.wc[0].qp_ctx, &srv2);
	cr_assert_eq(srv.wc[0].byte_len, 100);
	R->qp_destroy(cli2.qp);
	R->qp_destroy(srv2.qp);
	side_fini(&cli);
	side_fini(&srv);
	R->mr_dereg(m);
}

/* A CQ smaller than its QPs' queues: 64 receives filled before anyone polls. Every one is
 * reported, in order, none lost to an overflow (the backend grows the CQ for its QPs). */
Test(rxe, small_cq_holds_all_outstanding_completions)
{
	struct side cli, srv;
	side_init(&cli);
	memset(&srv, 0, sizeof(srv));
	cr_assert_eq(R->cq_create(dev, 8, &srv.cq), 0);
	char la[64];
	struct ferry_hal_rdma_listener *l = do_listen(la, sizeof(la));
	struct ferry_hal_rdma_qp_attr ca = qattr(&cli, &cli), sa = qattr(&srv, &srv);
	ca.max_send_wr = 64;
	sa.max_recv_wr = 64;
	cr_assert_eq(R->connect(dev, la, &ca, NULL, 0, 5000, &cli.qp), 0);
	struct ferry_hal_rdma_req *r = wait_req(l, &cli, NULL, NULL);
	cr_assert_eq(R->accept(r, &sa, NULL, 0, &srv.qp), 0);
	static uint8_t buf[64 * 64 + 64 * 8];
	struct ferry_hal_rdma_mr_keys k;
	struct ferry_hal_rdma_mr *m = reg(buf, sizeof(buf), FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE, &k);
	for (uint64_t i = 0; i < 64; i++) {
		struct ferry_hal_rdma_sge rs = {k.addr + i * 64, 64, k.lkey};
		cr_assert_eq(R->post_recv(srv.qp, 1000 + i, &rs, 1), 0);
	}
	cr_assert_eq(wait_state(&cli, NULL, NULL, NULL), 0);
	uint64_t end = test_rdma_now_ms() + WAIT_MS;
	while (R->qp_state(srv.qp, NULL, NULL) == -EINPROGRESS) {
		cr_assert_lt(test_rdma_now_ms(), end);
		(void)R->cq_wait(srv.cq, 2000);
	}
	cr_assert_eq(R->qp_state(srv.qp, NULL, NULL), 0);
	for (uint64_t i = 0; i < 64; i++) {
		uint8_t *p = buf + 64 * 64 + i * 8; /* one source per message */
		memset(p, (int)i, 8);
		struct ferry_hal_rdma_sge ss = {(uint64_t)(uintptr_t)p, 8, k.lkey};
		struct ferry_hal_rdma_wr w = {.wr_id = i,
					      .opcode = FERRY_HAL_RDMA_OP_SEND,
					      .flags = FERRY_HAL_RDMA_WR_F_INLINE,
					      .sge = &ss,
					      .nsge = 1};
		if (ca.max_inline < 8)
			w.flags = 0;
		int rc;
		end = test_rdma_now_ms() + WAIT_MS;
		while ((rc = R->post_send(cli.qp, &w, NULL)) == -ENOSPC) {
			cr_assert_lt(test_rdma_now_ms(), end);
			side_poll(&cli);
		}
		cr_assert_eq(rc, 0, "send %llu: %d", (unsigned long long)i, rc);
	}
	/* let all 64 land (1.5 s) before the receiver polls at all */
	end = test_rdma_now_ms() + 1500;
	while (test_rdma_now_ms() < end) {
		side_poll(&cli);
		cr_assert_eq(cli.n, 0, "sender completion: status %d", cli.wc[0].status);
		cr_assert_eq(R->qp_state(cli.qp, NULL, NULL), 0, "sender QP failed");
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	wait_wc(&srv, NULL, 64);
	cr_assert_eq(srv.n, 64);
	for (unsigned i = 0; i < 64; i++) {
		cr_assert_eq(srv.wc[i].wr_id, 1000 + i, "completion %u is of %llu", i,
			     (unsigned long long)srv.wc[i].wr_id);
		cr_assert_eq(srv.wc[i].status, 0, "completion %u: %d", i, srv.wc[i].status);
		cr_assert_eq(srv.wc[i].byte_len, 8);
		cr_assert_eq(buf[i * 64], (uint8_t)i);
	}
	cr_assert_eq(R->qp_state(srv.qp, NULL, NULL), 0);
	R->listener_close(l);
	side_fini(&cli);
	side_fini(&srv);
	R->mr_dereg(m);
}
