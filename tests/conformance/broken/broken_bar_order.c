/*
 * Broken: a PCIe endpoint that lets a host read overtake the host's previous posted write:
 * each BAR write reaches the firmware only when the next access has (a read goes straight
 * through), as a bridge that forwards reads ahead of buffered writes would.
 * Contract broken: poll() delivers accesses "in the order the host made them"
 * (ferry/hal/pcie_ep.h); caught by pcie_ep.host_accesses_in_order (a stale read).
 */
#include "broken.h"

static int (*mock_attach)(struct ferry_device *dev, uint32_t fn,
			  const struct ferry_hal_pcie_ep_attach_opts *opts);
static int (*mock_poll)(struct ferry_device *dev, uint32_t max);

/* One attachment at a time is enough for the suite. */
static const struct ferry_hal_pcie_ep_handlers *fw;
static void *fw_ctx;
static struct {
	int held;
	uint32_t bar, size;
	uint64_t off, val;
} pend;

static void flush(void)
{
	if (pend.held) {
		pend.held = 0;
		(void)fw->bar_write(fw_ctx, pend.bar, pend.off, pend.size, pend.val);
	}
}

static int late_write(void *ctx, uint32_t bar, uint64_t off, uint32_t size, uint64_t val)
{
	(void)ctx;
	flush();
	pend.held = 1;
	pend.bar = bar;
	pend.off = off;
	pend.size = size;
	pend.val = val;
	return 0;
}

static int early_read(void *ctx, uint32_t bar, uint64_t off, uint32_t size, uint64_t *val)
{
	(void)ctx;
	return fw->bar_read(fw_ctx, bar, off, size, val); /* overtakes the held write */
}

static void pass_doorbell(void *ctx, uint32_t index, uint32_t value)
{
	(void)ctx;
	if (fw->doorbell)
		fw->doorbell(fw_ctx, index, value);
}

static const struct ferry_hal_pcie_ep_handlers wrapped = {
	.bar_read = early_read,
	.bar_write = late_write,
	.doorbell = pass_doorbell,
};

static int wrap_attach(struct ferry_device *dev, uint32_t fn,
		       const struct ferry_hal_pcie_ep_attach_opts *opts)
{
	if (!opts || !opts->handlers)
		return mock_attach(dev, fn, opts);
	struct ferry_hal_pcie_ep_attach_opts o = *opts;
	fw = opts->handlers;
	fw_ctx = opts->ctx;
	pend.held = 0;
	o.handlers = &wrapped;
	o.ctx = NULL;
	return mock_attach(dev, fn, &o);
}

static int wrap_poll(struct ferry_device *dev, uint32_t max)
{
	int n = mock_poll(dev, max);
	if (n == 0 && fw)
		flush(); /* idle: the held write finally goes */
	return n;
}

static void brk(struct broken *b)
{
	mock_attach = b->pcie_ep.attach;
	mock_poll = b->pcie_ep.poll;
	b->pcie_ep.attach = wrap_attach;
	b->pcie_ep.poll = wrap_poll;
}

BROKEN_BACKEND("broken_bar_order", "", brk)
