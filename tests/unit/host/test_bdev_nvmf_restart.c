/*
 * The nvmf bdev survives Ferry's own NVMe/TCP target (in the same process, polled on its
 * own thread) being killed and restarted under a QD 32 random 4 KiB write workload: the
 * target's thread is stopped and its transport destroyed mid-I/O (every connection closed
 * abruptly, the controllers gone), then a new transport listens on the same address with the
 * same subsystem over the same malloc bdev. A shadow records, per block, the generation of
 * its last write completed with status 0 and the generations of writes completed with an
 * error since (either may be on the medium). Checked: with retry_count 0 the writes in flight
 * at the kill fail with a negative status, with retry_count 8 none fails; the bdev goes
 * RECONNECTING then CONNECTED by itself and counts the loss and the reconnect; a final
 * read-back of every block finds exactly the shadow (or one candidate of an errored write).
 * And a target down past ctrlr_loss_timeout_ms: FAILED, queued and new I/O fail with
 * -ENODEV; the target comes back, the bdev reconnects and later I/O succeeds.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <ferry/bdev.h>
#include <ferry/bdev_malloc.h>
#include <ferry/bdev_nvmf.h>
#include <ferry/nvme.h>
#include <ferry/tcp_transport.h>
#include <ferry/transport.h>
#include "nvmf_test_util.h"
#include "test_mock_util.h"

#define RS_NQN "nqn.2026-01.io.ferry:restart"
#define RS_BLOCKS 512u
#define RS_BS 4096u
#define RS_QD 32u
#define RS_MAYBE 8u /* candidate generations kept per block */
#define RS_SEC 1000000000ull

static const struct tgt_cfg RS_TGT = {.bdev_name = "rs_malloc",
				      .block_size = RS_BS,
				      .num_blocks = RS_BLOCKS,
				      .nqn = RS_NQN,
				      .serial = "RS",
				      .args = "buffers=256"};
/* killed with tgt_stop(), started again on the same address with tgt_start() */
static struct tgt T;

/* --- the workload and its shadow --- */

struct req {
	struct ferry_bdev_io io;
	struct iovec iov;
	uint64_t buf[RS_BS / 8];
	uint32_t blk, gen;
	int busy;
};

struct blk_shadow {
	uint32_t gen;             /* generation of the last write completed with status 0 */
	uint32_t maybe[RS_MAYBE]; /* errored writes since */
	uint32_t n_maybe;
	int overflow;
	int busy;
};

static struct {
	struct blk_shadow sh[RS_BLOCKS];
	struct req reqs[RS_QD];
	uint32_t next_gen;
	uint32_t blk_lim; /* random writes go to blocks [0, blk_lim) */
	uint64_t done, ok, errors, enodev, eio, submit_errors;
	uint32_t max_err_gen; /* newest generation completed with an error */
	int first_error;
} W;

static void gen_fill(uint64_t *buf, uint32_t blk, uint32_t gen)
{
	for (uint32_t i = 0; i < RS_BS / 8; i++)
		buf[i] = ((uint64_t)blk << 32 | gen) ^ ((uint64_t)i * 0x9e3779b97f4a7c15ull);
}

static void wr_cb(struct ferry_bdev_io *io, void *arg)
{
	struct req *r = arg;
	struct blk_shadow *s = &W.sh[r->blk];
	W.done++;
	if (io->status == 0) {
		W.ok++;
		s->gen = r->gen;
		s->n_maybe = 0;
	} else {
		W.errors++;
		if (!W.first_error)
			W.first_error = io->status;
		if (r->gen > W.max_err_gen)
			W.max_err_gen = r->gen;
		if (io->status == -ENODEV)
			W.enodev++;
		if (io->status == -EIO)
			W.eio++;
		cr_assert_lt(io->status, 0, "error status %d is not a negative errno", io->status);
		if (s->n_maybe < RS_MAYBE)
			s->maybe[s->n_maybe++] = r->gen;
		else
			s->overflow = 1;
	}
	s->busy = 0;
	r->busy = 0;
}

/* Submit a write of a new generation of @p blk; 0 or the submit's errno. */
static int wr_start(struct ferry_bdev *b, struct req *r, uint32_t blk)
{
	memset(&r->io, 0, sizeof(r->io));
	r->blk = blk;
	r->gen = ++W.next_gen;
	gen_fill(r->buf, blk, r->gen);
	r->iov.iov_base = r->buf;
	r->iov.iov_len = RS_BS;
	r->io.type = FERRY_BDEV_IO_WRITE;
	r->io.offset_blocks = blk;
	r->io.num_blocks = 1;
	r->io.mem.iov = &r->iov;
	r->io.mem.iovcnt = 1;
	r->io.cb = wr_cb;
	r->io.cb_arg = r;
	r->busy = 1;
	W.sh[blk].busy = 1;
	int rc = ferry_bdev_submit(b, &r->io);
	if (rc != 0) {
		/* nothing was sent: the block keeps its content */
		r->busy = 0;
		W.sh[blk].busy = 0;
		W.submit_errors++;
	}
	return rc;
}

static uint32_t in_flight(void)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < RS_QD; i++)
		n += (uint32_t)W.reqs[i].busy;
	return n;
}

struct state_log {
	uint32_t last;
	uint32_t gen_at_loss; /* newest generation submitted when the loss was first seen */
	int saw_reconnecting, saw_failed, saw_connected_after;
};

static void poll_once(struct ferry_bdev *b, struct state_log *sl)
{
	ferry_bdev_poll(b, 64);
	uint32_t st = 99;
	cr_assert_eq(ferry_bdev_nvmf_get_state(b, &st), 0);
	cr_assert(st <= FERRY_BDEV_NVMF_FAILED, "state %u", st);
	if (st != FERRY_BDEV_NVMF_CONNECTED && !sl->gen_at_loss)
		sl->gen_at_loss = W.next_gen;
	if (st == FERRY_BDEV_NVMF_RECONNECTING)
		sl->saw_reconnecting = 1;
	if (st == FERRY_BDEV_NVMF_FAILED)
		sl->saw_failed = 1;
	if (st == FERRY_BDEV_NVMF_CONNECTED && (sl->saw_reconnecting || sl->saw_failed))
		sl->saw_connected_after = 1;
	sl->last = st;
}

/* Fill every free slot with a write to a random idle block (no polling). */
static void topup(struct ferry_bdev *b, uint64_t *seed)
{
	for (uint32_t i = 0; i < RS_QD; i++) {
		struct req *r = &W.reqs[i];
		for (int tries = 0; !r->busy && tries < 64; tries++) {
			uint32_t blk = (uint32_t)(tm_rand(seed) % W.blk_lim);
			if (!W.sh[blk].busy)
				(void)wr_start(b, r, blk);
		}
	}
}

/* Keep QD 32 of random writes (one per block at a time) until @p until_done completions or
 * @p until_ns; also stops when @p stop_state is reached (if not UINT32_MAX). */
static void run(struct ferry_bdev *b, uint64_t *seed, uint64_t until_done, uint64_t until_ns,
		int submit, struct state_log *sl, uint32_t stop_state)
{
	while (W.done < until_done && tm_now_ns() < until_ns) {
		if (submit)
			topup(b, seed);
		poll_once(b, sl);
		if (stop_state != UINT32_MAX && sl->last == stop_state)
			break;
	}
}

static void drain(struct ferry_bdev *b, struct state_log *sl, uint64_t ns)
{
	uint64_t end = tm_now_ns() + ns;
	while (in_flight() && tm_now_ns() < end)
		poll_once(b, sl);
	cr_assert_eq(in_flight(), 0, "%u writes still in flight after %llu ms", in_flight(),
		     (unsigned long long)(ns / 1000000));
}

static void io_done_cb(struct ferry_bdev_io *io, void *arg)
{
	(void)io;
	*(int *)arg = 1;
}

/* One synchronous I/O (bounded 5 s): its status, or the submit's errno. */
static int sync_io(struct ferry_bdev *b, enum ferry_bdev_io_type type, uint32_t blk, uint64_t *buf)
{
	struct ferry_bdev_io io;
	struct iovec iov = {buf, RS_BS};
	int done = 0;
	memset(&io, 0, sizeof(io));
	io.type = type;
	io.offset_blocks = blk;
	io.num_blocks = 1;
	io.mem.iov = &iov;
	io.mem.iovcnt = 1;
	io.cb = io_done_cb;
	io.cb_arg = &done;
	int rc = ferry_bdev_submit(b, &io);
	if (rc != 0)
		return rc;
	uint64_t end = tm_now_ns() + 5 * RS_SEC;
	while (!done && tm_now_ns() < end)
		ferry_bdev_poll(b, 64);
	cr_assert_eq(done, 1, "I/O on block %u did not complete in 5 s", blk);
	return io.status;
}

/* Read every block back through the initiator and compare with the shadow. */
static void verify_all(struct ferry_bdev *b)
{
	static uint64_t got[RS_BS / 8], want[RS_BS / 8];
	uint64_t exact = 0, candidate = 0, old = 0;
	for (uint32_t blk = 0; blk < RS_BLOCKS; blk++) {
		struct blk_shadow *s = &W.sh[blk];
		cr_assert_eq(s->overflow, 0, "block %u: too many errored writes", blk);
		int rc = sync_io(b, FERRY_BDEV_IO_READ, blk, got);
		cr_assert_eq(rc, 0, "read-back of block %u: %d (%s)", blk, rc, ferry_last_error());
		gen_fill(want, blk, s->gen);
		if (!memcmp(got, want, RS_BS)) {
			exact++;
			old += blk >= W.blk_lim;
			continue;
		}
		int found = 0;
		for (uint32_t k = 0; k < s->n_maybe && !found; k++) {
			gen_fill(want, blk, s->maybe[k]);
			found = !memcmp(got, want, RS_BS);
		}
		cr_assert(found,
			  "block %u: content (word0 %#llx) is neither its last completed write "
			  "(gen %u) nor one of %u errored writes: a completed write was lost",
			  blk, (unsigned long long)got[0], s->gen, s->n_maybe);
		candidate++;
	}
	fprintf(stderr,
		"restart: read-back %u blocks: %llu last completed (%llu not rewritten since the "
		"target came back), %llu an errored write\n",
		RS_BLOCKS, (unsigned long long)exact, (unsigned long long)old,
		(unsigned long long)candidate);
	if (W.blk_lim < RS_BLOCKS)
		cr_assert_gt(old, 0, "no block kept a write from before the kill");
}

static struct ferry_bdev *connect_bdev(const char *name, uint32_t retries, uint32_t loss_ms)
{
	struct ferry_bdev_nvmf_opts o = {.size = sizeof(o),
					 .name = name,
					 .addr = T.addr,
					 .subnqn = RS_NQN,
					 .num_io_queues = 2,
					 .queue_depth = RS_QD,
					 .retry_count = retries,
					 .reconnect_delay_ms = 15,
					 .ctrlr_loss_timeout_ms = loss_ms,
					 .connect_timeout_ms = 2000};
	struct ferry_bdev *b = NULL;
	int rc = ferry_bdev_nvmf_create(&o, &b);
	cr_assert_eq(rc, 0, "nvmf: %d (%s)", rc, ferry_last_error());
	cr_assert_eq(ferry_bdev_get_block_size(b), RS_BS);
	cr_assert_eq(ferry_bdev_get_num_blocks(b), RS_BLOCKS);
	return b;
}

/* Every block gets a first generation, all completed. */
static void prefill(struct ferry_bdev *b, struct state_log *sl)
{
	memset(&W, 0, sizeof(W));
	uint64_t end = tm_now_ns() + 10 * RS_SEC;
	uint32_t next = 0;
	while ((next < RS_BLOCKS || in_flight()) && tm_now_ns() < end) {
		for (uint32_t i = 0; i < RS_QD && next < RS_BLOCKS; i++)
			if (!W.reqs[i].busy)
				cr_assert_eq(wr_start(b, &W.reqs[i], next++), 0);
		poll_once(b, sl);
	}
	cr_assert_eq(next, RS_BLOCKS);
	cr_assert_eq(in_flight(), 0);
	cr_assert_eq(W.errors, 0, "prefill: %llu errors", (unsigned long long)W.errors);
	cr_assert_eq(W.ok, RS_BLOCKS);
	W.blk_lim = RS_BLOCKS;
}

static void kill_restart(uint32_t retries)
{
	tgt_up(&T, &RS_TGT);
	char addr[64];
	snprintf(addr, sizeof(addr), "%s", T.addr);
	struct ferry_bdev *b = connect_bdev(retries ? "rs_nvmf_r8" : "rs_nvmf_r0", retries, 3000);
	struct state_log sl = {0};
	uint64_t seed = 0x5eed + retries, t_end = tm_now_ns() + 15 * RS_SEC;
	prefill(b, &sl);
	cr_assert_eq(sl.last, FERRY_BDEV_NVMF_CONNECTED);

	/* phase 1: 2000 random writes, then kill the target with QD 32 in flight */
	run(b, &seed, W.done + 2000, t_end, 1, &sl, UINT32_MAX);
	topup(b, &seed);
	uint32_t at_kill = in_flight();
	cr_assert_eq(at_kill, RS_QD);
	uint64_t ok_before = W.ok;
	tgt_stop(&T);
	fprintf(stderr, "restart (retries %u): target killed with %u writes in flight\n", retries,
		at_kill);

	/* phase 2: the target is down for ~300 ms; keep submitting and polling */
	uint64_t down_end = tm_now_ns() + 300000000ull;
	run(b, &seed, UINT64_MAX, down_end, 1, &sl, UINT32_MAX);
	cr_assert(sl.saw_reconnecting,
		  "the bdev never reported RECONNECTING while the target "
		  "was down (state %u)",
		  sl.last);
	cr_assert_eq(sl.last, FERRY_BDEV_NVMF_RECONNECTING, "state %u after 300 ms down", sl.last);
	cr_assert_eq(sl.saw_failed, 0, "FAILED before ctrlr_loss_timeout_ms");
	uint64_t ok_down = W.ok - ok_before;
	if (retries)
		cr_assert_eq(W.errors, 0, "%llu writes failed with retry_count %u (first %d)",
			     (unsigned long long)W.errors, retries, W.first_error);
	else if (at_kill)
		cr_assert_gt(W.errors, 0, "none of the %u writes in flight at the kill failed",
			     at_kill);
	uint64_t err_down = W.errors;

	/* phase 3: a new target on the same address, the same subsystem and bdev; from now on
	 * only the lower half is written, so the upper half must read back what completed
	 * before the kill (or, for an errored write, what was there or that write) */
	W.blk_lim = RS_BLOCKS / 2;
	tgt_start(&T, addr);
	cr_assert_str_eq(T.addr, addr);
	uint64_t up_deadline = tm_now_ns() + 5 * RS_SEC;
	run(b, &seed, UINT64_MAX, up_deadline, 1, &sl, FERRY_BDEV_NVMF_CONNECTED);
	cr_assert_eq(sl.last, FERRY_BDEV_NVMF_CONNECTED, "no reconnection in 5 s (state %u)",
		     sl.last);
	cr_assert(sl.saw_connected_after);

	/* phase 4: the workload continues; 2000 more, then drain */
	uint64_t ok_up = W.ok;
	run(b, &seed, W.done + 2000, t_end, 1, &sl, UINT32_MAX);
	drain(b, &sl, 5 * RS_SEC);
	cr_assert_gt(W.ok, ok_up + 1000, "the workload did not continue after the reconnect");
	cr_assert_eq(sl.last, FERRY_BDEV_NVMF_CONNECTED);

	struct ferry_bdev_nvmf_stats st = {.size = sizeof(st)};
	cr_assert_eq(ferry_bdev_nvmf_get_stats(b, &st), 0);
	fprintf(stderr,
		"restart (retries %u): %llu writes, %llu ok, %llu errors (first %d, %llu ENODEV), "
		"%llu submit errors, %llu ok while down; losses %llu, reconnects %llu, retries "
		"%llu, io_errors %llu%s\n",
		retries, (unsigned long long)W.done, (unsigned long long)W.ok,
		(unsigned long long)W.errors, W.first_error, (unsigned long long)W.enodev,
		(unsigned long long)W.submit_errors, (unsigned long long)ok_down,
		(unsigned long long)st.connection_losses, (unsigned long long)st.reconnects,
		(unsigned long long)st.retries, (unsigned long long)st.io_errors,
		T.ss_recreated ? " (subsystem recreated)" : "");
	cr_assert_geq(st.connection_losses, 1);
	cr_assert_geq(st.reconnects, 1);
	cr_assert_eq(W.submit_errors, 0, "submit failed while reconnecting");
	cr_assert_eq(W.enodev, 0, "-ENODEV before ctrlr_loss_timeout_ms");
	if (retries) {
		cr_assert_eq(W.errors, 0, "with retry_count %u every write completes", retries);
		cr_assert_eq(W.ok, W.done);
		if (at_kill)
			cr_assert_gt(st.retries, 0,
				     "writes in flight at the kill were not retried");
	} else {
		/* errors only for what was in flight when the connections went away */
		cr_assert_eq(W.errors, err_down, "errors after the reconnect");
		cr_assert_eq(W.eio, W.errors,
			     "a lost write failed with %d, not -EIO (docs/bdev.md)", W.first_error);
		cr_assert_neq(sl.gen_at_loss, 0);
		cr_assert_leq(
			W.max_err_gen, sl.gen_at_loss,
			"write gen %u, submitted while RECONNECTING, failed (retry_count 0 fails "
			"only what was sent before the loss; later I/O waits)",
			W.max_err_gen);
		cr_assert_eq(st.retries, 0);
	}
	cr_assert_eq(st.io_errors, W.errors);
	verify_all(b);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	tgt_down(&T);
}

Test(bdev_nvmf_restart, kill_restart_no_retries, .timeout = 30)
{
	kill_restart(0);
}

Test(bdev_nvmf_restart, kill_restart_retries, .timeout = 30)
{
	kill_restart(8);
}

Test(bdev_nvmf_restart, down_past_ctrlr_loss_timeout, .timeout = 30)
{
	tgt_up(&T, &RS_TGT);
	char addr[64];
	snprintf(addr, sizeof(addr), "%s", T.addr);
	struct ferry_bdev *b = connect_bdev("rs_nvmf_loss", 8, 400);
	struct state_log sl = {0};
	uint64_t seed = 0x1055, t_end = tm_now_ns() + 15 * RS_SEC;
	prefill(b, &sl);
	run(b, &seed, W.done + 1000, t_end, 1, &sl, UINT32_MAX);
	topup(b, &seed);
	uint32_t at_kill = in_flight();
	cr_assert_eq(at_kill, RS_QD);
	tgt_stop(&T);

	/* keep QD 32 queued until the bdev gives up */
	uint64_t errs0 = W.errors, enodev0 = W.enodev;
	run(b, &seed, UINT64_MAX, tm_now_ns() + 5 * RS_SEC, 1, &sl, FERRY_BDEV_NVMF_FAILED);
	cr_assert_eq(sl.last, FERRY_BDEV_NVMF_FAILED, "not FAILED 5 s after a 400 ms loss timeout");
	cr_assert(sl.saw_reconnecting);
	/* what was queued fails with -ENODEV (bounded) */
	drain(b, &sl, 2 * RS_SEC);
	fprintf(stderr, "restart (loss): %u in flight at the kill, %llu errors, %llu ENODEV\n",
		at_kill, (unsigned long long)(W.errors - errs0), (unsigned long long)W.enodev);
	cr_assert_gt(W.errors, errs0, "nothing failed while the controller was lost");
	cr_assert_eq(W.errors - errs0, W.enodev - enodev0, "an error other than -ENODEV (first %d)",
		     W.first_error);
	/* a new I/O fails too, at once or through its callback */
	static uint64_t buf[RS_BS / 8];
	int rc = sync_io(b, FERRY_BDEV_IO_READ, 0, buf);
	cr_assert_eq(rc, -ENODEV, "new read while FAILED: %d", rc);
	uint64_t before_new = W.enodev;
	rc = wr_start(b, &W.reqs[0], 1);
	if (rc == 0) {
		drain(b, &sl, 2 * RS_SEC);
		cr_assert_eq(W.enodev, before_new + 1,
			     "a new write while FAILED did not fail with -ENODEV (first %d)",
			     W.first_error);
	} else {
		cr_assert_eq(rc, -ENODEV, "submit of a new write while FAILED: %d", rc);
		W.submit_errors = 0;
	}

	/* the target comes back: the bdev recovers (the upper half keeps its old writes) */
	W.blk_lim = RS_BLOCKS / 2;
	tgt_start(&T, addr);
	uint64_t end = tm_now_ns() + 5 * RS_SEC;
	while (sl.last != FERRY_BDEV_NVMF_CONNECTED && tm_now_ns() < end)
		poll_once(b, &sl);
	cr_assert_eq(sl.last, FERRY_BDEV_NVMF_CONNECTED, "no recovery in 5 s (state %u)", sl.last);
	uint64_t ok0 = W.ok;
	uint64_t e0 = W.errors;
	run(b, &seed, W.done + 500, t_end, 1, &sl, UINT32_MAX);
	drain(b, &sl, 5 * RS_SEC);
	cr_assert_eq(W.errors, e0, "errors after the recovery (first %d)", W.first_error);
	cr_assert_geq(W.ok, ok0 + 500);
	struct ferry_bdev_nvmf_stats st = {.size = sizeof(st)};
	cr_assert_eq(ferry_bdev_nvmf_get_stats(b, &st), 0);
	cr_assert_geq(st.connection_losses, 1);
	cr_assert_geq(st.reconnects, 1);
	verify_all(b);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	tgt_down(&T);
}
