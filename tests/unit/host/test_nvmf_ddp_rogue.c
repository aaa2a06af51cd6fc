/*
 * The nvmf bdev's offload contract checks against a scripted NIC (a test backend on the HAL
 * socket kit with CAP_DDP that places nothing): a NIC flagging PLACED on header bytes is out
 * of step with the protocol (the connection fails, ddp_nic_errors, the read is retried and
 * right); teardown callbacks held back by the NIC keep the command (and its cid) busy until
 * they run, and a connection lost with teardowns pending completes every read exactly once
 * (the callbacks run inside ddp_queue_del(), the reads are retried). Against the fake target.
 */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <ferry/bdev.h>
#include <ferry/bdev_nvmf.h>
#include <ferry/hal/backend.h>
#include <ferry/hal/sock.h>
#include "fake_target.h"
#include "nvmf_test_util.h"
#include "test_mock_util.h"

/* The scripted NIC's state (one test at a time, one polling thread). */
#define RG_PEND 256
static struct {
	int lie_headers; /* recvv() on offloaded sockets flags this many reads PLACED */
	int hold;        /* teardown callbacks wait until cleared */
	int setups, teardowns, callbacks, queues, dels;
	int in_teardown; /* inside ddp_teardown() */
	int cb_inside;   /* a callback ran inside ddp_teardown() (forbidden) */
	struct {
		struct ferry_hal_sock *sock;
		ferry_hal_ddp_done_cb done;
		void *ctx;
	} pend[RG_PEND];
	int npend;
} RG;

struct rg_priv {
	struct ferry_hal_lsock_dev *ld; /* first: the kit finds it there */
};

struct rg_sock {
	int offloaded;
};

static int rg_open(struct ferry_device *dev, const char *args)
{
	(void)args;
	struct rg_priv *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	int rc = ferry_hal_lsock_dev_create(dev, "rogue", &p->ld);
	if (rc) {
		free(p);
		return rc;
	}
	ferry_hal_dev_set_priv(dev, p);
	return 0;
}

static void rg_close_dev(struct ferry_device *dev)
{
	struct rg_priv *p = ferry_hal_dev_get_priv(dev);
	ferry_hal_lsock_dev_destroy(p->ld);
	free(p);
}

static int rg_query(struct ferry_device *dev, struct ferry_hal_nic_info *info)
{
	int rc = ferry_hal_lsock_query(dev, info);
	if (rc)
		return rc;
	info->caps |= FERRY_HAL_NIC_CAP_DDP;
	info->ddp_max_sges = 16;
	info->ddp_max_io = 1u << 20;
	info->ddp_ndomains = 1;
	info->ddp_domains[0] = ferry_memdomain_system();
	return 0;
}

static struct rg_sock *rs(struct ferry_hal_sock *sock)
{
	struct rg_sock *s = ferry_hal_lsock_get_priv(sock);
	if (!s) {
		s = calloc(1, sizeof(*s));
		cr_assert_not_null(s);
		ferry_hal_lsock_set_priv(sock, s);
	}
	return s;
}

/* Run the held callbacks of @p sock (NULL: every socket's). */
static void rg_run(struct ferry_hal_sock *sock)
{
	int k = 0;
	for (int i = 0; i < RG.npend; i++) {
		if (sock && RG.pend[i].sock != sock) {
			RG.pend[k++] = RG.pend[i];
			continue;
		}
		if (RG.in_teardown)
			RG.cb_inside = 1;
		RG.callbacks++;
		RG.pend[i].done(RG.pend[i].ctx, 0);
	}
	RG.npend = k;
}

static void rg_sock_close(struct ferry_hal_sock *sock)
{
	if (!sock)
		return;
	rg_run(sock);
	free(ferry_hal_lsock_get_priv(sock));
	ferry_hal_lsock_set_priv(sock, NULL);
	ferry_hal_lsock_close(sock);
}

static ssize_t rg_recvv(struct ferry_hal_sock *sock, const struct iovec *iov, uint32_t iovcnt,
			uint32_t *flags)
{
	ssize_t r = ferry_hal_lsock_recvv(sock, iov, iovcnt, flags);
	struct rg_sock *s = ferry_hal_lsock_get_priv(sock);
	if (s && s->offloaded && r > 0) {
		/* placing nothing: the bytes are in the caller's iovecs, no flags; a lie flags
		 * whatever came (headers included) PLACED */
		*flags = 0;
		if (RG.lie_headers > 0) {
			RG.lie_headers--;
			*flags = FERRY_HAL_NIC_RX_F_PLACED;
		}
	}
	return r;
}

static int rg_group_poll(struct ferry_hal_sock_group *g, struct ferry_hal_sock_event *ev,
			 uint32_t max, uint32_t timeout_us)
{
	if (!RG.hold)
		rg_run(NULL);
	return ferry_hal_lsock_group_poll(g, ev, max, RG.npend ? 0 : timeout_us);
}

static int rg_queue_add(struct ferry_hal_sock *sock, const struct ferry_hal_ddp_queue_cfg *cfg)
{
	cr_assert_eq(cfg->size, sizeof(*cfg));
	cr_assert_eq(cfg->rx_seq, 128, "rx_seq %llu: the ICResp is 128 bytes",
		     (unsigned long long)cfg->rx_seq);
	cr_assert_not_null(cfg->resync);
	rs(sock)->offloaded = 1;
	RG.queues++;
	return 0;
}

static void rg_queue_del(struct ferry_hal_sock *sock)
{
	struct rg_sock *s = ferry_hal_lsock_get_priv(sock);
	if (!s || !s->offloaded)
		return;
	RG.dels++;
	rg_run(sock);
	s->offloaded = 0;
}

static int rg_setup(struct ferry_hal_sock *sock, uint16_t cid, const struct ferry_mem *dest)
{
	(void)cid;
	cr_assert(rs(sock)->offloaded);
	cr_assert(dest->iovcnt >= 1 && dest->iovcnt <= 16);
	RG.setups++;
	return 0;
}

static int rg_teardown(struct ferry_hal_sock *sock, uint16_t cid, ferry_hal_ddp_done_cb done,
		       void *ctx)
{
	(void)cid;
	cr_assert_lt(RG.npend, RG_PEND);
	RG.in_teardown = 1;
	RG.pend[RG.npend].sock = sock;
	RG.pend[RG.npend].done = done;
	RG.pend[RG.npend].ctx = ctx;
	RG.npend++;
	RG.teardowns++;
	RG.in_teardown = 0;
	return 0;
}

static void rg_resync(struct ferry_hal_sock *sock, uint64_t seq, int found)
{
	(void)sock;
	(void)seq;
	(void)found;
}

static const struct ferry_hal_nic_ops rg_nic = {
	.abi_version = FERRY_HAL_NIC_ABI_VERSION,
	.query = rg_query,
	.listen = ferry_hal_lsock_listen,
	.accept = ferry_hal_lsock_accept,
	.connect = ferry_hal_lsock_connect,
	.sock_error = ferry_hal_lsock_sock_error,
	.close = rg_sock_close,
	.get_addr = ferry_hal_lsock_get_addr,
	.sendv = ferry_hal_lsock_sendv,
	.recvv = rg_recvv,
	.group_create = ferry_hal_lsock_group_create,
	.group_destroy = ferry_hal_lsock_group_destroy,
	.group_add = ferry_hal_lsock_group_add,
	.group_remove = ferry_hal_lsock_group_remove,
	.group_poll = rg_group_poll,
	.sock_stats = ferry_hal_lsock_sock_stats,
	.group_want_out = ferry_hal_lsock_group_want_out,
	.ddp_queue_add = rg_queue_add,
	.ddp_queue_del = rg_queue_del,
	.ddp_setup = rg_setup,
	.ddp_teardown = rg_teardown,
	.ddp_resync = rg_resync,
};

static const struct ferry_hal_backend rg_backend = {
	.abi_version = FERRY_HAL_ABI_VERSION,
	.name = "rogue_nic",
	.open = rg_open,
	.close = rg_close_dev,
	.nic = &rg_nic,
};

struct rd {
	struct ferry_bdev_io io;
	struct iovec iov;
	struct done d;
	uint8_t buf[16384];
};

static void rd_start(struct ferry_bdev *b, struct rd *r, uint64_t lba)
{
	memset(r->buf, 0, sizeof(r->buf));
	r->iov.iov_base = r->buf;
	r->iov.iov_len = sizeof(r->buf);
	struct ferry_mem m = {.iov = &r->iov, .iovcnt = 1};
	io_prep(&r->io, &r->d, FERRY_BDEV_IO_READ, lba, sizeof(r->buf) / 512, &m);
	cr_assert_eq(ferry_bdev_submit(b, &r->io), 0, "%s", ferry_last_error());
}

static void rd_wait(struct ferry_bdev *b, struct rd *r)
{
	uint64_t end = tm_now_ns() + 10000000000ull;
	while (!r->d.calls && tm_now_ns() < end)
		ferry_bdev_poll(b, 64);
	cr_assert_eq(r->d.calls, 1, "read completed %d times", r->d.calls);
}

static struct ferry_device *rg_dev(void)
{
	memset(&RG, 0, sizeof(RG));
	cr_assert_eq(ferry_hal_register(&rg_backend), 0);
	struct ferry_device *dev = NULL;
	cr_assert_eq(ferry_device_open("rogue_nic", "", &dev), 0, "%s", ferry_last_error());
	return dev;
}

static struct ferry_bdev *rg_bdev(struct ferry_device *dev, struct fake_target *t)
{
	struct ferry_bdev_nvmf_opts o = {0};
	o.size = sizeof(o);
	o.name = "nvmf_rogue";
	o.nic = dev;
	o.addr = t->addr;
	o.subnqn = "nqn.2026-01.io.ferry:fake";
	o.ddgst = 1;
	o.retry_count = 4;
	o.reconnect_delay_ms = 10;
	struct ferry_bdev *b = NULL;
	cr_assert_eq(ferry_bdev_nvmf_create(&o, &b), 0, "%s", ferry_last_error());
	return b;
}

Test(nvmf_ddp_rogue, placed_header_bytes_fail_the_connection)
{
	struct fake_target t;
	ft_defaults(&t);
	cr_assert_eq(ft_start(&t), 0);
	fill(t.storage, (size_t)t.blocks * t.block_size, 3);
	struct ferry_device *dev = rg_dev();
	struct ferry_bdev *b = rg_bdev(dev, &t);
	cr_assert_eq(RG.queues, 1);
	static struct rd r;
	rd_start(b, &r, 8);
	rd_wait(b, &r);
	cr_assert_eq(r.d.status, 0);
	RG.lie_headers = 1; /* the next receive on the I/O queue claims its bytes placed */
	rd_start(b, &r, 40);
	rd_wait(b, &r);
	cr_assert_eq(r.d.status, 0, "the retried read failed: %s", ferry_last_error());
	cr_assert_eq(memcmp(r.buf, t.storage + 40 * 512, sizeof(r.buf)), 0);
	struct ferry_bdev_nvmf_stats s = stats_of(b);
	cr_assert_eq(s.ddp_nic_errors, 1);
	cr_assert_eq(s.connection_losses, 1);
	cr_assert_eq(s.retries, 1);
	cr_assert_eq(s.ddp_queues, 2, "offloaded again after the reconnect");
	cr_assert_eq(RG.setups, 3);
	cr_assert_eq(RG.teardowns + RG.dels >= RG.setups, 1, "a mapping was never released");
	cr_assert_eq(RG.cb_inside, 0);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	ferry_device_close(dev);
	ft_stop(&t);
}

Test(nvmf_ddp_rogue, held_teardown_keeps_the_read_busy)
{
	struct fake_target t;
	ft_defaults(&t);
	t.c2h_chunk = 4096;
	cr_assert_eq(ft_start(&t), 0);
	fill(t.storage, (size_t)t.blocks * t.block_size, 4);
	struct ferry_device *dev = rg_dev();
	struct ferry_bdev *b = rg_bdev(dev, &t);
	static struct rd r;
	RG.hold = 1;
	rd_start(b, &r, 0);
	uint64_t end = tm_now_ns() + 10000000000ull;
	while (!RG.teardowns && tm_now_ns() < end)
		ferry_bdev_poll(b, 64);
	cr_assert_eq(RG.teardowns, 1, "the read's last PDU never arrived");
	for (int i = 0; i < 200; i++)
		ferry_bdev_poll(b, 64);
	cr_assert_eq(r.d.calls, 0, "completed before its mapping was released");
	RG.hold = 0;
	rd_wait(b, &r);
	cr_assert_eq(r.d.status, 0);
	cr_assert_eq(memcmp(r.buf, t.storage, sizeof(r.buf)), 0);
	cr_assert_eq(RG.callbacks, 1);
	cr_assert_eq(RG.cb_inside, 0);
	struct ferry_bdev_nvmf_stats s = stats_of(b);
	cr_assert_eq(s.ddp_ios, 1);
	cr_assert_eq(s.ddp_fallback_bytes, sizeof(r.buf), "the NIC placed nothing");
	cr_assert_eq(s.sw_crc_bytes, sizeof(r.buf));
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	ferry_device_close(dev);
	ft_stop(&t);
}

/* Read A waits for its teardown (held by the NIC) when read B's command drops every
 * connection: queue_del runs A's callback, A and B are retried, each completes once. */
Test(nvmf_ddp_rogue, connection_lost_with_teardown_pending)
{
	struct fake_target t;
	ft_defaults(&t);
	t.fault = FAULT_DROP;
	t.fault_n = 2;
	t.fault_once = 1;
	cr_assert_eq(ft_start(&t), 0);
	fill(t.storage, (size_t)t.blocks * t.block_size, 6);
	struct ferry_device *dev = rg_dev();
	struct ferry_bdev *b = rg_bdev(dev, &t);
	static struct rd a, bb;
	RG.hold = 1;
	rd_start(b, &a, 0);
	uint64_t end = tm_now_ns() + 10000000000ull;
	while (!RG.teardowns && tm_now_ns() < end)
		ferry_bdev_poll(b, 64);
	cr_assert_eq(RG.teardowns, 1);
	rd_start(b, &bb, 64);
	end = tm_now_ns() + 10000000000ull;
	struct ferry_bdev_nvmf_stats s = stats_of(b);
	while (!s.connection_losses && tm_now_ns() < end) {
		ferry_bdev_poll(b, 64);
		s = stats_of(b);
	}
	cr_assert_eq(s.connection_losses, 1);
	cr_assert_eq(RG.callbacks, 1, "queue_del ran the held callback");
	cr_assert_eq(a.d.calls, 0, "released by the loss, not completed");
	RG.hold = 0;
	rd_wait(b, &a);
	rd_wait(b, &bb);
	cr_assert_eq(a.d.status, 0);
	cr_assert_eq(bb.d.status, 0);
	cr_assert_eq(memcmp(a.buf, t.storage, sizeof(a.buf)), 0);
	cr_assert_eq(memcmp(bb.buf, t.storage + 64 * 512, sizeof(bb.buf)), 0);
	for (int i = 0; i < 100; i++)
		ferry_bdev_poll(b, 64);
	cr_assert_eq(a.d.calls, 1);
	cr_assert_eq(bb.d.calls, 1);
	s = stats_of(b);
	cr_assert_eq(s.retries, 2);
	cr_assert_eq(RG.cb_inside, 0);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	ferry_device_close(dev);
	ft_stop(&t);
}
