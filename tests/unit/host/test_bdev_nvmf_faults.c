/*
 * The nvmf bdev against a hostile or failing controller (fake_target.h): unknown cids,
 * oversize C2HData, C2HTermReq, malformed completions, corrupted data digests, short reads,
 * R2Ts beyond a write, C2HData for a write -> the I/O fails (never a wrong byte reported as
 * success), an H2CTermReq goes out and the bdev reconnects; connection drops mid-I/O ->
 * resubmission on the new connection and no completed write lost; controller loss ->
 * -ENODEV; keep-alives.
 */
#include <criterion/criterion.h>
#include <ferry/bdev.h>
#include <ferry/bdev_nvmf.h>
#include "fake_target.h"
#include "nvmf_test_util.h"
#include "test_mock_util.h"

struct io_slot {
	struct ferry_bdev_io io;
	struct iovec iov;
	int done;
	int status;
};

static void slot_cb(struct ferry_bdev_io *io, void *arg)
{
	struct io_slot *s = arg;
	s->done = 1;
	s->status = io->status;
}

static int submit(struct ferry_bdev *b, struct io_slot *s, enum ferry_bdev_io_type type,
		  uint64_t lba, uint64_t n, void *buf)
{
	memset(s, 0, sizeof(*s));
	s->io.type = type;
	s->io.offset_blocks = lba;
	s->io.num_blocks = n;
	s->iov.iov_base = buf;
	s->iov.iov_len = n * ferry_bdev_get_block_size(b);
	s->io.mem.iov = &s->iov;
	s->io.mem.iovcnt = 1;
	s->io.cb = slot_cb;
	s->io.cb_arg = s;
	return ferry_bdev_submit(b, &s->io);
}

static void wait_all(struct ferry_bdev *b, struct io_slot *s, int n)
{
	uint64_t end = tm_now_ns() + 15000000000ull;
	for (;;) {
		int left = 0;
		for (int i = 0; i < n; i++)
			left += !s[i].done;
		if (!left)
			return;
		cr_assert(tm_now_ns() < end, "%d I/Os did not complete within 15 s", left);
		ferry_bdev_poll(b, 64);
	}
}

static int run_io(struct ferry_bdev *b, enum ferry_bdev_io_type type, uint64_t lba, uint64_t n,
		  void *buf)
{
	struct io_slot s;
	int rc = submit(b, &s, type, lba, n, buf);
	if (rc)
		return rc;
	wait_all(b, &s, 1);
	return s.status;
}

static struct ferry_bdev *connect_to(struct fake_target *t, const char *name, int dg,
				     uint32_t retries, uint32_t loss_ms)
{
	struct ferry_bdev_nvmf_opts o = {0};
	o.size = sizeof(o);
	o.name = name;
	o.addr = t->addr;
	o.subnqn = "nqn.2026-01.io.ferry:faults";
	o.hdgst = (uint8_t)dg;
	o.ddgst = (uint8_t)dg;
	o.retry_count = retries;
	o.reconnect_delay_ms = 5;
	o.ctrlr_loss_timeout_ms = loss_ms;
	o.connect_timeout_ms = 2000;
	o.queue_depth = 32;
	struct ferry_bdev *b = NULL;
	int rc = ferry_bdev_nvmf_create(&o, &b);
	cr_assert_eq(rc, 0, "create: %s (%s)", ferry_strerror(rc), ferry_last_error());
	return b;
}



static void wait_connected(struct ferry_bdev *b)
{
	uint64_t end = tm_now_ns() + 5000000000ull;
	uint32_t st = 0;
	do {
		ferry_bdev_poll(b, 64);
		cr_assert_eq(ferry_bdev_nvmf_get_state(b, &st), 0);
	} while (st != FERRY_BDEV_NVMF_CONNECTED && tm_now_ns() < end);
	cr_assert_eq(st, FERRY_BDEV_NVMF_CONNECTED, "not reconnected within 5 s");
}

/* Write 16 blocks (I/O command 1), then the faulted I/O (command 2). */
static void hostile(enum fake_fault f, int faulted_is_write, int dg, int expect_term)
{
	struct fake_target t;
	ft_defaults(&t);
	t.fault = f;
	t.fault_n = 2;
	t.fault_once = 1;
	t.c2h_chunk = 2048;
	if (f == FAULT_R2T_BEYOND)
		t.ioccsz = 4;
	cr_assert_eq(ft_start(&t), 0);
	struct ferry_bdev *b = connect_to(&t, "nvmf_hostile", dg, 0, 30000);
	uint8_t w[8192], r[8192];
	fill(w, sizeof(w), (uint32_t)f);
	cr_assert_eq(run_io(b, FERRY_BDEV_IO_WRITE, 64, 16, w), 0);
	int rc;
	if (faulted_is_write) {
		uint8_t w2[8192];
		fill(w2, sizeof(w2), 77);
		rc = run_io(b, FERRY_BDEV_IO_WRITE, 64, 16, w2);
		cr_assert_neq(rc, 0, "fault %d: the write must fail", f);
	} else {
		memset(r, 0, sizeof(r));
		rc = run_io(b, FERRY_BDEV_IO_READ, 64, 16, r);
		cr_assert_neq(rc, 0, "fault %d: the read must fail (never wrong bytes as success)",
			      f);
	}
	cr_assert_eq(atomic_load(&t.fault_fired), 1);
	struct ferry_bdev_nvmf_stats s = stats_of(b);
	if (expect_term) {
		cr_assert_geq(s.protocol_errors, 1, "fault %d counted", f);
		uint64_t end = tm_now_ns() + 2000000000ull;
		while (atomic_load(&t.terms_received) < 1 && tm_now_ns() < end)
			usleep(1000);
		cr_assert_geq(atomic_load(&t.terms_received), 1, "fault %d: H2CTermReq sent", f);
	}
	/* The bdev reconnects (or stayed connected) and the data is intact. */
	wait_connected(b);
	memset(r, 0, sizeof(r));
	cr_assert_eq(run_io(b, FERRY_BDEV_IO_READ, 64, 16, r), 0, "%s", ferry_last_error());
	cr_assert_eq(memcmp(r, w, sizeof(r)), 0);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	ft_stop(&t);
}

Test(bdev_nvmf_faults, unknown_cid)
{
	hostile(FAULT_BAD_CID, 0, 0, 1);
}
Test(bdev_nvmf_faults, oversize_c2hdata)
{
	hostile(FAULT_OVERSIZE_C2H, 0, 0, 1);
}
Test(bdev_nvmf_faults, c2h_termreq)
{
	hostile(FAULT_TERM, 0, 0, 0);
}
Test(bdev_nvmf_faults, malformed_cqe)
{
	hostile(FAULT_BAD_CQE, 0, 1, 1);
}
Test(bdev_nvmf_faults, bad_data_digest)
{
	hostile(FAULT_BAD_DDGST, 0, 1, 0);
}
Test(bdev_nvmf_faults, short_read)
{
	hostile(FAULT_SHORT_READ, 0, 0, 1);
}
Test(bdev_nvmf_faults, r2t_beyond_write)
{
	hostile(FAULT_R2T_BEYOND, 1, 0, 1);
}
Test(bdev_nvmf_faults, c2hdata_for_write)
{
	hostile(FAULT_C2H_FOR_WRITE, 1, 0, 1);
}
Test(bdev_nvmf_faults, r2t_for_read)
{
	hostile(FAULT_R2T_FOR_READ, 0, 0, 1);
}
Test(bdev_nvmf_faults, c2hdata_out_of_order)
{
	hostile(FAULT_C2H_OUT_OF_ORDER, 0, 1, 1);
}

/* 32 writes in flight, the connection drops at the 10th command: with retries every write
 * completes, and reading back after the reconnect finds every one of them. */
static void drop_mid_io(uint32_t retries)
{
	struct fake_target t;
	ft_defaults(&t);
	t.fault = FAULT_DROP;
	t.fault_n = 10;
	t.fault_once = 1;
	cr_assert_eq(ft_start(&t), 0);
	struct ferry_bdev *b = connect_to(&t, "nvmf_drop", 0, retries, 30000);
	enum {
		N = 32,
		NB = 8
	};
	static uint8_t w[N][NB * 512], r[NB * 512];
	static struct io_slot s[N];
	for (int i = 0; i < N; i++) {
		fill(w[i], sizeof(w[i]), (uint32_t)(i + 100));
		cr_assert_eq(submit(b, &s[i], FERRY_BDEV_IO_WRITE, (uint64_t)i * NB, NB, w[i]), 0);
	}
	wait_all(b, s, N);
	int ok = 0;
	for (int i = 0; i < N; i++) {
		if (retries)
			cr_assert_eq(s[i].status, 0, "write %d: %d", i, s[i].status);
		else
			cr_assert(s[i].status == 0 || s[i].status == -EIO, "write %d: %d", i,
				  s[i].status);
		ok += s[i].status == 0;
	}
	wait_connected(b);
	for (int i = 0; i < N; i++) {
		if (s[i].status)
			continue; /* failed: its blocks may hold either version */
		memset(r, 0, sizeof(r));
		cr_assert_eq(run_io(b, FERRY_BDEV_IO_READ, (uint64_t)i * NB, NB, r), 0);
		cr_assert_eq(memcmp(r, w[i], sizeof(r)), 0, "completed write %d lost", i);
	}
	struct ferry_bdev_nvmf_stats st = stats_of(b);
	cr_assert_geq(st.connection_losses, 1);
	cr_assert_geq(st.reconnects, 1);
	if (retries)
		cr_assert_geq(st.retries, 1);
	else
		cr_assert_lt(ok, N, "some in-flight writes failed without retries");
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	ft_stop(&t);
}

Test(bdev_nvmf_faults, drop_mid_io_retried)
{
	drop_mid_io(3);
}
Test(bdev_nvmf_faults, drop_mid_io_no_retry)
{
	drop_mid_io(0);
}

Test(bdev_nvmf_faults, controller_loss_fails_fast)
{
	struct fake_target t;
	ft_defaults(&t);
	cr_assert_eq(ft_start(&t), 0);
	struct ferry_bdev *b = connect_to(&t, "nvmf_loss", 0, 1, 200);
	uint8_t buf[4096];
	cr_assert_eq(run_io(b, FERRY_BDEV_IO_WRITE, 0, 8, buf), 0);
	ft_stop(&t); /* listener closed, connections dropped */
	uint64_t end = tm_now_ns() + 5000000000ull;
	uint32_t st = 0;
	do {
		ferry_bdev_poll(b, 64);
		ferry_bdev_nvmf_get_state(b, &st);
	} while (st != FERRY_BDEV_NVMF_FAILED && tm_now_ns() < end);
	cr_assert_eq(st, FERRY_BDEV_NVMF_FAILED);
	cr_assert_eq(run_io(b, FERRY_BDEV_IO_READ, 0, 8, buf), -ENODEV);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
}

Test(bdev_nvmf_faults, keep_alive_sent)
{
	struct fake_target t;
	ft_defaults(&t);
	cr_assert_eq(ft_start(&t), 0);
	struct ferry_bdev_nvmf_opts o = {0};
	o.size = sizeof(o);
	o.name = "nvmf_ka";
	o.addr = t.addr;
	o.subnqn = "nqn.2026-01.io.ferry:ka";
	o.kato_ms = 200;
	struct ferry_bdev *b = NULL;
	cr_assert_eq(ferry_bdev_nvmf_create(&o, &b), 0);
	cr_assert_eq(t.kato, 200);
	uint64_t end = tm_now_ns() + 700000000ull;
	while (tm_now_ns() < end) {
		ferry_bdev_poll(b, 64);
		usleep(1000);
	}
	struct ferry_bdev_nvmf_stats s = stats_of(b);
	cr_assert_geq(s.keep_alives, 3, "every KATO/2 over 700 ms: %llu",
		      (unsigned long long)s.keep_alives);
	cr_assert_eq(s.connection_losses, 0);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	ft_stop(&t);
}

Test(bdev_nvmf_faults, keep_alive_timeout)
{
	struct fake_target t;
	ft_defaults(&t);
	t.fault = FAULT_NO_KEEP_ALIVE;
	cr_assert_eq(ft_start(&t), 0);
	struct ferry_bdev_nvmf_opts o = {0};
	o.size = sizeof(o);
	o.name = "nvmf_kato";
	o.addr = t.addr;
	o.subnqn = "nqn.2026-01.io.ferry:kato";
	o.kato_ms = 100;
	o.reconnect_delay_ms = 5;
	struct ferry_bdev *b = NULL;
	cr_assert_eq(ferry_bdev_nvmf_create(&o, &b), 0);
	uint64_t end = tm_now_ns() + 3000000000ull;
	struct ferry_bdev_nvmf_stats s;
	do {
		ferry_bdev_poll(b, 64);
		usleep(1000);
		s = stats_of(b);
	} while (s.connection_losses == 0 && tm_now_ns() < end);
	cr_assert_eq(atomic_load(&t.fault_fired), 1);
	cr_assert_geq(s.connection_losses, 1, "an unanswered keep-alive is a connection loss");
	/* it reconnects, and I/O works in between keep-alive timeouts */
	wait_connected(b);
	uint8_t buf[4096];
	memset(buf, 0x3c, sizeof(buf));
	cr_assert_eq(run_io(b, FERRY_BDEV_IO_WRITE, 8, 8, buf), 0);
	cr_assert_eq(memcmp(t.storage + 8 * 512, buf, sizeof(buf)), 0);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	ft_stop(&t);
}
