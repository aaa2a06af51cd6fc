/*
 * A TCP connection lost while a command of it still executes in the bdev. The "tcp" target
 * polled the queues of open connections only (and nvmf_tgt_qpair_poll() skips closing
 * ones): the bdev of a closed connection's command was never polled again, the command never
 * completed, and the connection and its controller were leaked for ever. Here namespace 2 is
 * a bdev that completes reads and writes only from its poll op, and only once the test lets
 * it: the connection is lost with the command held in the bdev, then the bdev is released.
 * Asserted: while held the lost connection is kept (its buffers are the command's; an admin
 * connection without commands goes at once); once the bdev completes, the connection and
 * (when the association went) the controller are gone (totals: conns, ctrlrs, destroyed ==
 * created); an I/O queue lost alone leaves the association working (a new I/O queue connects
 * with the same qid); the next host works.
 */
#include "test_tcp_host.h"
#include <ferry/module/bdev.h>

TestSuite(tcp_inflight_loss, .timeout = 60);

#define HELD_MAX 16

/* Reads and writes are queued; its poll op completes them once @c release is set. */
struct held {
	struct ferry_bdev_io *q[HELD_MAX];
	uint32_t n;
	int release;
	uint64_t submitted, completed;
};

static int held_queue(struct ferry_bdev *b, struct ferry_bdev_io *io)
{
	struct held *d = ferry_bdev_get_ctx(b);
	if (d->n == HELD_MAX)
		return -ENOMEM;
	d->q[d->n++] = io;
	d->submitted++;
	return 0;
}

static int held_poll(struct ferry_bdev *b, uint32_t max)
{
	struct held *d = ferry_bdev_get_ctx(b);
	(void)max;
	if (!d->release || !d->n)
		return 0;
	uint32_t n = d->n;
	d->n = 0;
	for (uint32_t i = 0; i < n; i++) {
		d->completed++;
		ferry_bdev_io_complete(d->q[i], 0);
	}
	return (int)n;
}

static const struct ferry_bdev_ops held_ops = {.abi_version = FERRY_BDEV_OPS_ABI,
					       .read = held_queue,
					       .write = held_queue,
					       .poll = held_poll};

static struct held H;
static struct ferry_bdev *HB;

static void up(void)
{
	th_tgt_up("buffers=256");
	memset(&H, 0, sizeof(H));
	struct ferry_bdev_opts bo = {.size = sizeof(bo),
				     .name = "th_held",
				     .module = "held",
				     .block_size = 512,
				     .num_blocks = 1024,
				     .ops = &held_ops,
				     .ctx = &H};
	cr_assert_eq(ferry_bdev_create(&bo, &HB), 0);
	struct ferry_nvme_ns_opts no = {.size = sizeof(no), .bdev = HB, .nsid = 2};
	cr_assert_eq(ferry_nvme_subsystem_add_ns(TT.ss, &no, NULL), 0);
}

static void down(void)
{
	th_tgt_down();
	cr_assert_eq(ferry_bdev_destroy(HB), 0);
}

static struct ferry_tcp_transport_totals totals(void)
{
	struct ferry_tcp_transport_totals t = {.size = sizeof(t)};
	cr_assert_eq(ferry_tcp_transport_get_totals(TT.t, &t), 0);
	return t;
}

static void poll_ms(uint32_t ms)
{
	uint64_t end = th_now() + (uint64_t)ms * 1000000ull;
	while (th_now() < end)
		th_poll();
}

/* Polls (bounded, 3 s) until at most @p conns connections and @p ctrlrs controllers are left. */
static struct ferry_tcp_transport_totals settle(uint32_t conns, uint32_t ctrlrs)
{
	struct ferry_tcp_transport_totals t;
	uint64_t end = th_now() + 3000000000ull;
	do {
		th_poll();
		t = totals();
	} while ((t.conns > conns || t.ctrlrs > ctrlrs) && th_now() < end);
	return t;
}

/* Polls (bounded) until the held bdev holds @p n I/Os. */
static void wait_held(uint32_t n)
{
	uint64_t end = th_now() + TH_WAIT_NS;
	while (H.n < n && th_now() < end)
		th_poll();
	cr_assert_eq(H.n, n, "%u I/Os held in the bdev, want %u", H.n, n);
}

static void sqe_rw(struct ferry_nvme_sqe *s, struct th_host *h, int write, uint64_t lba,
		   uint32_t nblocks)
{
	memset(s, 0, sizeof(*s));
	s->opcode = write ? FERRY_NVME_CMD_WRITE : FERRY_NVME_CMD_READ;
	s->cid = h->cid++;
	s->nsid = 2;
	s->cdw10 = (uint32_t)lba;
	s->cdw11 = (uint32_t)(lba >> 32);
	s->cdw12 = nblocks - 1;
}

/* An in-capsule write of 8 blocks to namespace 2 (held there). */
static void held_icd_write(struct th_host *h, uint64_t lba)
{
	uint8_t buf[4096];
	th_fill(buf, sizeof(buf), (uint32_t)lba);
	struct ferry_nvme_sqe s;
	sqe_rw(&s, h, 1, lba, 8);
	th_sqe_sgl(&s, 1, sizeof(buf));
	th_send_cmd(h, &s, buf, sizeof(buf));
}

/* A 32 KiB write to namespace 2 through R2T: its data sent, so it executes (held). */
static void held_r2t_write(struct th_host *h, uint64_t lba)
{
	static uint8_t buf[32768];
	th_fill(buf, sizeof(buf), (uint32_t)lba);
	struct ferry_nvme_sqe s;
	sqe_rw(&s, h, 1, lba, 64);
	th_sqe_sgl(&s, 0, sizeof(buf));
	th_send_cmd(h, &s, NULL, 0);
	uint32_t done = 0;
	while (done < sizeof(buf)) {
		cr_assert_eq(th_recv(h), 1, "no R2T");
		cr_assert_eq(th_type(h), FERRY_NVME_TCP_R2T, "PDU type 0x%x, want R2T", th_type(h));
		const struct ferry_nvme_tcp_r2t *r2t = (const void *)h->hdr;
		cr_assert_eq(r2t->cccid, s.cid);
		cr_assert_eq(r2t->r2to, done);
		cr_assert_leq((uint64_t)r2t->r2to + r2t->r2tl, sizeof(buf));
		th_send_h2c(h, s.cid, r2t->ttag, buf, r2t->r2to, r2t->r2tl, h->maxh2c);
		done += r2t->r2tl;
	}
}

/* A 16 KiB read of namespace 2 (held: no data comes back). */
static void held_read(struct th_host *h, uint64_t lba)
{
	struct ferry_nvme_sqe s;
	sqe_rw(&s, h, 0, lba, 32);
	th_sqe_sgl(&s, 0, 16384);
	th_send_cmd(h, &s, NULL, 0);
}

/* The connection is lost with its command held: kept while held, gone after the bdev
 * completes; the controller with it when the admin connection went too. */
static void lost_then_released(uint32_t keep_conns, uint32_t keep_ctrlrs, const char *what)
{
	poll_ms(50); /* the target sees the connections go */
	struct ferry_tcp_transport_totals t = totals();
	cr_assert_eq(t.conns, keep_conns + 1,
		     "%s: %u connections while the command is held, want %u (the lost one's "
		     "buffers are still the bdev's)",
		     what, t.conns, keep_conns + 1);
	cr_assert_gt(H.n, 0, "%s: the command completed before the release", what);
	H.release = 1;
	t = settle(keep_conns, keep_ctrlrs);
	cr_assert_eq(H.n, 0, "%s: %u I/Os still held: the bdev was not polled", what, H.n);
	cr_assert_eq(t.conns, keep_conns, "%s: %u connections left, want %u (leaked)", what,
		     t.conns, keep_conns);
	cr_assert_eq(t.ctrlrs, keep_ctrlrs, "%s: %u controllers left, want %u (leaked)", what,
		     t.ctrlrs, keep_ctrlrs);
	cr_assert_eq(t.ctrlrs_destroyed + keep_ctrlrs, t.ctrlrs_created,
		     "%s: %llu controllers created, %llu destroyed", what,
		     (unsigned long long)t.ctrlrs_created, (unsigned long long)t.ctrlrs_destroyed);
	H.release = 0;
}

/* The next host: an association, I/O on both namespaces (ns 2 released: completes at once). */
static void next_host_works(void)
{
	struct th_host a, q;
	th_assoc(&a, &q, 0);
	th_io_check(&q, 100, 16, 0, 3);
	th_io_check(&q, 200, 8, 1, 4);
	H.release = 1;
	struct ferry_nvme_sqe s;
	uint8_t buf[4096];
	th_fill(buf, sizeof(buf), 5);
	sqe_rw(&s, &q, 1, 8, 8);
	cr_assert_eq(th_write_cmd(&q, &s, buf, sizeof(buf), 1), 0, "write to the held bdev");
	sqe_rw(&s, &q, 0, 8, 8);
	cr_assert_eq(th_read_cmd(&q, &s, buf, sizeof(buf)), 0, "read of the held bdev");
	H.release = 0;
	th_close(&q);
	th_close(&a);
	struct ferry_tcp_transport_totals t = settle(0, 0);
	cr_assert_eq(t.conns, 0);
	cr_assert_eq(t.ctrlrs, 0);
	cr_assert_eq(t.ctrlrs_destroyed, t.ctrlrs_created);
}

Test(tcp_inflight_loss, icd_write_host_gone, .init = up, .fini = down)
{
	struct th_host a, q;
	th_assoc(&a, &q, 0);
	held_icd_write(&q, 0);
	wait_held(1);
	th_close(&q);
	th_close(&a);
	lost_then_released(0, 0, "in-capsule write, host gone");
	cr_assert_eq(H.completed, 1);
	next_host_works();
}

Test(tcp_inflight_loss, admin_lost_first, .init = up, .fini = down)
{
	/* The admin connection goes first: the teardown closes the I/O queue, whose writes
	 * still execute. */
	struct th_host a, q;
	th_assoc(&a, &q, 0);
	held_icd_write(&q, 0);
	held_r2t_write(&q, 64);
	wait_held(2);
	th_close(&a);
	poll_ms(20);
	th_close(&q);
	lost_then_released(0, 0, "admin connection lost first");
	cr_assert_eq(H.completed, 2);
	next_host_works();
}

Test(tcp_inflight_loss, io_queue_lost_alone, .init = up, .fini = down)
{
	/* Only the I/O connection goes, with an R2T write and a read executing: it is released
	 * once they complete, the association stays, and qid 1 connects again. */
	struct th_host a, q;
	th_assoc(&a, &q, 0);
	held_r2t_write(&q, 0);
	held_read(&q, 128);
	wait_held(2);
	th_close(&q);
	lost_then_released(1, 1, "I/O queue lost alone");
	cr_assert_eq(H.completed, 2);
	uint64_t csts = 0;
	cr_assert_eq(th_prop(&a, 0, FERRY_NVME_REG_CSTS, 4, &csts), 0,
		     "admin queue after the loss");
	cr_assert(csts & FERRY_NVME_CSTS_RDY);
	struct th_host q2;
	th_open(&q2);
	th_ic(&q2, 0, 0);
	q2.cntlid = a.cntlid;
	cr_assert_eq(th_connect(&q2, 1, 31, 0), 0, "qid 1 again after its connection was lost");
	th_io_check(&q2, 300, 16, 0, 6);
	th_close(&q2);
	th_close(&a);
	struct ferry_tcp_transport_totals t = settle(0, 0);
	cr_assert_eq(t.conns, 0);
	cr_assert_eq(t.ctrlrs, 0);
	next_host_works();
}

Test(tcp_inflight_loss, many_rounds, .init = up, .fini = down)
{
	/* Repeated losses with several commands held leave nothing behind. */
	for (uint32_t round = 0; round < 4; round++) {
		struct th_host a, q;
		th_assoc(&a, &q, 0);
		for (uint32_t i = 0; i < 4; i++)
			held_icd_write(&q, i * 8);
		held_read(&q, 256);
		wait_held(5);
		th_close(&q);
		th_close(&a);
		lost_then_released(0, 0, "round");
		cr_assert_eq(H.completed, 5ull * (round + 1), "round %u", round);
	}
	next_host_works();
}
