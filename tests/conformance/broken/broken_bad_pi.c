/*
 * Broken: an engine that reports a protection-information (or compare) mismatch as success.
 * Every descriptor its poll returns with -EILSEQ comes back with status 0.
 * Contract broken: "status -EILSEQ (compare or PI mismatch)" with failed_op and dif_err
 * naming the failing op and block (ferry/hal/accel.h); the suite's accel.pi_errors says
 * "bad PI reported as success".
 */
#include "broken.h"

static int (*mock_poll)(void *chan, struct ferry_hal_accel_desc **done, uint32_t max);

static int lying_poll(void *chan, struct ferry_hal_accel_desc **done, uint32_t max)
{
	int n = mock_poll(chan, done, max);
	for (int i = 0; i < n; i++) {
		if (done[i]->status == -EILSEQ) {
			done[i]->status = 0;
			done[i]->failed_op = 0;
			memset(&done[i]->ops[0].dif_err, 0, sizeof(done[i]->ops[0].dif_err));
		}
	}
	return n;
}

static void brk(struct broken *b)
{
	if (!b->dma.accel)
		return;
	mock_poll = b->accel.poll;
	b->accel.poll = lying_poll;
}

BROKEN_BACKEND("broken_bad_pi", "", brk)
