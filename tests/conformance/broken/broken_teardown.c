/*
 * Broken: a NIC whose ddp_teardown() completes inline and then once more. Each teardown the
 * mock accepted has its callback run inside the call, and the mock runs it again from the
 * group's next poll (or queue_del/close) as it always does.
 * Contract broken: the ddp_teardown() callback "runs exactly once ... never inside
 * ddp_teardown()" (ferry/hal/nic.h); the suite's nic_ddp.teardown_exactly_once fails.
 */
#include "broken.h"

static int (*mock_teardown)(struct ferry_hal_sock *sock, uint16_t cid, ferry_hal_ddp_done_cb done,
			    void *ctx);

static int inline_teardown(struct ferry_hal_sock *sock, uint16_t cid, ferry_hal_ddp_done_cb done,
			   void *ctx)
{
	int rc = mock_teardown(sock, cid, done, ctx);
	if (rc == 0 && done)
		done(ctx, 0);
	return rc;
}

static void brk(struct broken *b)
{
	mock_teardown = b->nic.ddp_teardown;
	b->nic.ddp_teardown = inline_teardown;
}

BROKEN_BACKEND("broken_teardown", "", brk)
