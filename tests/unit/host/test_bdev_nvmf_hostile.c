/*
 * The nvmf bdev against a controller that keeps the connection alive (answers keep-alives)
 * but never completes one I/O command (fake_target.h FAULT_NO_ANSWER): the I/O must not hang.
 * After 3 x KATO the connection is failed, the bdev reconnects and resubmits the I/O (or,
 * without retries, fails it) — found by tests/fuzz/nvmf_host_mutate.py (mode drop_io).
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

/* One I/O, polled until it completes; fails the test after 10 s (the bug was a hang). */
static int run_io(struct ferry_bdev *b, enum ferry_bdev_io_type type, uint64_t lba, uint64_t n,
		  void *buf)
{
	struct io_slot s;
	memset(&s, 0, sizeof(s));
	s.io.type = type;
	s.io.offset_blocks = lba;
	s.io.num_blocks = n;
	s.iov.iov_base = buf;
	s.iov.iov_len = n * ferry_bdev_get_block_size(b);
	s.io.mem.iov = &s.iov;
	s.io.mem.iovcnt = 1;
	s.io.cb = slot_cb;
	s.io.cb_arg = &s;
	int rc = ferry_bdev_submit(b, &s.io);
	if (rc)
		return rc;
	uint64_t end = tm_now_ns() + 10000000000ull;
	while (!s.done) {
		cr_assert(tm_now_ns() < end, "the I/O did not complete within 10 s");
		ferry_bdev_poll(b, 64);
	}
	return s.status;
}

static struct ferry_bdev *connect_kato(struct fake_target *t, uint32_t retries)
{
	struct ferry_bdev_nvmf_opts o = {0};
	o.size = sizeof(o);
	o.name = "nvmf_silent";
	o.addr = t->addr;
	o.subnqn = "nqn.2026-01.io.ferry:hostile";
	o.retry_count = retries;
	o.reconnect_delay_ms = 5;
	o.ctrlr_loss_timeout_ms = 30000;
	o.connect_timeout_ms = 2000;
	o.kato_ms = 300; /* I/O timeout 3 x KATO: about 1 s */
	o.queue_depth = 16;
	struct ferry_bdev *b = NULL;
	int rc = ferry_bdev_nvmf_create(&o, &b);
	cr_assert_eq(rc, 0, "create: %s (%s)", ferry_strerror(rc), ferry_last_error());
	return b;
}



/* Write (command 1), then a read the controller swallows (command 2): with a retry the read
 * comes back with the written bytes over a new connection. */
Test(bdev_nvmf_hostile, swallowed_read_is_retried)
{
	struct fake_target t;
	ft_defaults(&t);
	t.fault = FAULT_NO_ANSWER;
	t.fault_n = 2;
	t.fault_once = 1;
	cr_assert_eq(ft_start(&t), 0);
	struct ferry_bdev *b = connect_kato(&t, 2);
	uint8_t w[8192], r[8192];
	fill(w, sizeof(w), 5);
	cr_assert_eq(run_io(b, FERRY_BDEV_IO_WRITE, 32, 16, w), 0, "%s", ferry_last_error());
	memset(r, 0, sizeof(r));
	cr_assert_eq(run_io(b, FERRY_BDEV_IO_READ, 32, 16, r), 0, "%s", ferry_last_error());
	cr_assert_eq(atomic_load(&t.fault_fired), 1, "the read was swallowed");
	cr_assert_eq(memcmp(r, w, sizeof(r)), 0);
	struct ferry_bdev_nvmf_stats s = stats_of(b);
	cr_assert_geq(s.connection_losses, 1);
	cr_assert_geq(s.reconnects, 1);
	cr_assert_geq(s.retries, 1);
	cr_assert_geq(s.keep_alives, 1, "the connection was otherwise alive");
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	ft_stop(&t);
}

/* Without retries the swallowed write fails (an error, not a hang and not a success). */
Test(bdev_nvmf_hostile, swallowed_write_fails_without_retry)
{
	struct fake_target t;
	ft_defaults(&t);
	t.fault = FAULT_NO_ANSWER;
	t.fault_n = 1;
	t.fault_once = 1;
	cr_assert_eq(ft_start(&t), 0);
	struct ferry_bdev *b = connect_kato(&t, 0);
	uint8_t w[4096];
	fill(w, sizeof(w), 9);
	cr_assert_neq(run_io(b, FERRY_BDEV_IO_WRITE, 0, 8, w), 0, "the write must fail");
	cr_assert_eq(atomic_load(&t.fault_fired), 1);
	cr_assert_geq(stats_of(b).connection_losses, 1);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	ft_stop(&t);
}
