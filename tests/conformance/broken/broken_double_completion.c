/*
 * Broken: a DMA engine that returns a completed transfer twice. Every fourth poll that found
 * something hands the first transfer of the previous such poll out once more.
 * Contract broken: "every accepted transfer completes exactly once through poll()"
 * (ferry/hal/dma.h); the suite's conf_run() says "transfer N returned twice".
 */
#include "broken.h"

static int (*mock_poll)(void *chan, struct ferry_xfer **done, uint32_t max);
static struct ferry_xfer *again;
static unsigned int polls;

static int double_poll(void *chan, struct ferry_xfer **done, uint32_t max)
{
	int n = mock_poll(chan, done, max);
	if (n <= 0)
		return n;
	if (again && (++polls % 4) == 0 && (uint32_t)n < max)
		done[n++] = again;
	again = done[0];
	return n;
}

static void brk(struct broken *b)
{
	mock_poll = b->dma.poll;
	b->dma.poll = double_poll;
}

BROKEN_BACKEND("broken_double_completion", "", brk)
