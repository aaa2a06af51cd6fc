/*
 * Broken: a DMA engine that declares FERRY_DMA_CAP_FENCE but ignores the flag: a fenced
 * transfer behind a failed one runs anyway.
 * Contract broken: the fence rule of FERRY_XFER_F_FENCE (ferry/dma.h); caught by
 * dma.fence_rule.
 */
#include "broken.h"

static int (*mock_submit)(void *chan, struct ferry_xfer *const *xfers, uint32_t n);

static int nofence_submit(void *chan, struct ferry_xfer *const *xfers, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		xfers[i]->flags &= ~FERRY_XFER_F_FENCE;
	return mock_submit(chan, xfers, n);
}

static void brk(struct broken *b)
{
	mock_submit = b->dma.submit;
	b->dma.submit = nofence_submit;
}

BROKEN_BACKEND("broken_fence", "", brk)
