/*
 * Broken: a DMA engine that writes a failed transfer's status onto the next transfer it
 * returns (an off-by-one in its completion ring): the failing transfer reads success, the
 * next one carries the error.
 * Contract broken: "each accepted transfer completes with its own status" (ferry/hal/dma.h);
 * caught by dma.status_on_right_transfer.
 */
#include "broken.h"

static int (*mock_poll)(void *chan, struct ferry_xfer **done, uint32_t max);
static enum ferry_xfer_status owed = FERRY_XFER_SUCCESS;

static int slot_poll(void *chan, struct ferry_xfer **done, uint32_t max)
{
	int n = mock_poll(chan, done, max);
	for (int i = 0; i < n; i++) {
		enum ferry_xfer_status mine = done[i]->status;
		done[i]->status = owed;
		owed = mine;
	}
	return n;
}

static void brk(struct broken *b)
{
	mock_poll = b->dma.poll;
	b->dma.poll = slot_poll;
}

BROKEN_BACKEND("broken_status_slot", "", brk)
