/*
 * Broken: a DMA engine that declares the mock's max_sges (1024) but refuses every transfer
 * with more than 16 segments on a side, as hardware with a smaller descriptor table than its
 * driver reports would.
 * Contract broken: "transfers within the limits query() declared must be accepted and
 * executed" (ferry/hal/dma.h); caught by dma.declared_limits_honoured.
 */
#include "broken.h"

#define REAL_MAX_SGES 16u

static int (*mock_submit)(void *chan, struct ferry_xfer *const *xfers, uint32_t n);

static int limit_submit(void *chan, struct ferry_xfer *const *xfers, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (xfers[i]->src.iovcnt > REAL_MAX_SGES || xfers[i]->dst.iovcnt > REAL_MAX_SGES)
			return -EINVAL;
	return mock_submit(chan, xfers, n);
}

static void brk(struct broken *b)
{
	mock_submit = b->dma.submit;
	b->dma.submit = limit_submit;
}

BROKEN_BACKEND("broken_limit", "", brk)
