/*
 * DMA channels: the SDK side of the DMA engine class. Validates every transfer before the
 * backend sees it and keeps the per-channel counters.
 */
#include <stdlib.h>
#include <string.h>
#include <ferry/dma.h>
#include <ferry/hal/hal.h>
#include "core_internal.h"

#define COMP "dma"

struct ferry_dma_chan {
	struct ferry_device *dev;
	const struct ferry_hal_dma_ops *ops;
	void *priv;
	struct ferry_dma_info info;
	struct ferry_dma_stats stats;
};

static const struct ferry_hal_dma_ops *dma_ops(struct ferry_device *dev, const char *op)
{
	if (!dev) {
		FERRY_ERR(COMP, "%s: NULL device", op);
		return NULL;
	}
	if (!dev->backend->dma)
		FERRY_ERR(COMP, "%s: device %s has no DMA engine", op, dev->name);
	return dev->backend->dma;
}

FERRY_API int ferry_dma_query(struct ferry_device *dev, struct ferry_dma_info *info)
{
	if (!dev || !info)
		return -EINVAL;
	const struct ferry_hal_dma_ops *ops = dma_ops(dev, "query");
	if (!ops)
		return -ENOTSUP;
	if (OPTS_SIZE_CHECK(COMP, "query", info, struct ferry_dma_info))
		return -EINVAL;
	memset(info, 0, sizeof(*info));
	info->size = sizeof(*info);
	return ops->query(dev, info);
}

FERRY_API int ferry_dma_chan_create(struct ferry_device *dev, const struct ferry_dma_chan_opts *opts,
				    struct ferry_dma_chan **out)
{
	struct ferry_dma_chan_opts o = {.size = sizeof(o)};
	if (!out)
		return -EINVAL;
	const struct ferry_hal_dma_ops *ops = dma_ops(dev, "chan_create");
	if (!dev)
		return -EINVAL;
	if (!ops)
		return -ENOTSUP;
	if (opts) {
		if (OPTS_SIZE_CHECK(COMP, "chan_create", opts, struct ferry_dma_chan_opts))
			return -EINVAL;
		o.ring_size = opts->ring_size;
	}
	struct ferry_dma_chan *ch = calloc(1, sizeof(*ch));
	if (!ch)
		return -ENOMEM;
	ch->dev = dev;
	ch->ops = ops;
	ch->info.size = sizeof(ch->info);
	int rc = ops->query(dev, &ch->info);
	if (rc)
		goto err_free;
	if (ch->info.max_ring && o.ring_size > ch->info.max_ring) {
		FERRY_ERR(COMP, "chan_create: ring_size %u exceeds the engine's %u", o.ring_size,
			  ch->info.max_ring);
		rc = -EINVAL;
		goto err_free;
	}
	rc = ops->chan_create(dev, &o, &ch->priv);
	if (rc)
		goto err_free;
	dev->open_chans++;
	*out = ch;
	return 0;

err_free:
	free(ch);
	return rc > 0 ? -EIO : rc; /* a backend returning a positive value is a backend bug */
}

FERRY_API void ferry_dma_chan_destroy(struct ferry_dma_chan *ch)
{
	if (!ch)
		return;
	ch->ops->chan_destroy(ch->priv);
	ch->dev->open_chans--;
	free(ch);
}

static int check_side(const struct ferry_dma_info *info, uint32_t i, const struct ferry_mem *m,
		      uint64_t len, const char *side)
{
	if (!m->iov || m->iovcnt == 0) {
		FERRY_ERR(COMP, "submit: transfer %u has no %s segments", i, side);
		return -EINVAL;
	}
	if (info->max_sges && m->iovcnt > info->max_sges) {
		FERRY_ERR(COMP, "submit: transfer %u %s has %u segments, engine max %u", i, side,
			  m->iovcnt, info->max_sges);
		return -EINVAL;
	}
	uint64_t total = 0;
	for (uint32_t s = 0; s < m->iovcnt; s++) {
		if (info->alignment > 1 &&
		    (((uintptr_t)m->iov[s].iov_base | m->iov[s].iov_len) % info->alignment)) {
			FERRY_ERR(COMP, "submit: transfer %u %s segment %u not %u-byte aligned", i,
				  side, s, info->alignment);
			return -EINVAL;
		}
		if (total + m->iov[s].iov_len < total) {
			FERRY_ERR(COMP, "submit: transfer %u %s length overflows", i, side);
			return -EINVAL;
		}
		total += m->iov[s].iov_len;
	}
	if (total < len) {
		FERRY_ERR(COMP, "submit: transfer %u len %llu exceeds its %s (%llu bytes)", i,
			  (unsigned long long)len, side, (unsigned long long)total);
		return -EINVAL;
	}
	return 0;
}

FERRY_API int ferry_dma_submit(struct ferry_dma_chan *ch, struct ferry_xfer *const *xfers,
			       uint32_t n)
{
	if (!ch || (!xfers && n)) {
		FERRY_ERR(COMP, "submit: NULL %s", !ch ? "channel" : "transfer array");
		return -EINVAL;
	}
	for (uint32_t i = 0; i < n; i++) {
		const struct ferry_xfer *x = xfers[i];
		if (!x) {
			FERRY_ERR(COMP, "submit: transfer %u is NULL", i);
			return -EINVAL;
		}
		if (x->len == 0 || (ch->info.max_xfer && x->len > ch->info.max_xfer)) {
			FERRY_ERR(COMP, "submit: transfer %u len %llu outside 1..%llu", i,
				  (unsigned long long)x->len, (unsigned long long)ch->info.max_xfer);
			return -EINVAL;
		}
		if (x->flags & ~FERRY_XFER_F_FENCE) {
			FERRY_ERR(COMP, "submit: transfer %u has unknown flags 0x%x", i, x->flags);
			return -EINVAL;
		}
		int rc = check_side(&ch->info, i, &x->src, x->len, "source");
		if (!rc)
			rc = check_side(&ch->info, i, &x->dst, x->len, "destination");
		if (rc)
			return rc;
	}
	if (n == 0)
		return 0;
	int rc = ch->ops->submit(ch->priv, xfers, n);
	if (rc > 0)
		ch->stats.submitted += (uint64_t)rc;
	return rc;
}

FERRY_API int ferry_dma_poll(struct ferry_dma_chan *ch, struct ferry_xfer **done, uint32_t max)
{
	if (!ch || (!done && max))
		return -EINVAL;
	if (max == 0)
		return 0;
	int rc = ch->ops->poll(ch->priv, done, max);
	const struct ferry_xfer *failed = NULL;
	uint32_t nfailed = 0;
	for (int i = 0; i < rc; i++) {
		ch->stats.completed++;
		if (done[i]->status == FERRY_XFER_SUCCESS) {
			ch->stats.bytes += done[i]->len;
		} else {
			ch->stats.errors++;
			if (!failed)
				failed = done[i];
			nfailed++;
		}
	}
	/*
	 * The engine found the error on its own thread (or in hardware): the submitter learns
	 * it from the status and, with the words, from ferry_last_error() on this thread.
	 */
	if (failed)
		ferry_set_last_error(COMP,
				     "transfer of %llu bytes (user_ctx %p) completed with %s%s%s",
				     (unsigned long long)failed->len, failed->user_ctx,
				     ferry_xfer_status_str(failed->status),
				     nfailed > 1 ? "; more failed transfers in this poll" : "",
				     failed->status == FERRY_XFER_NOT_ATTEMPTED
					     ? " (a fenced transfer behind a failure, or its channel "
					       "was destroyed)"
					     : "");
	return rc;
}

FERRY_API int ferry_dma_get_stats(const struct ferry_dma_chan *ch, struct ferry_dma_stats *out)
{
	if (!ch || !out)
		return -EINVAL;
	*out = ch->stats;
	return 0;
}

FERRY_API const char *ferry_xfer_status_str(enum ferry_xfer_status s)
{
	static const char *const names[FERRY_XFER_STATUS_COUNT] = {
		[FERRY_XFER_SUCCESS] = "success",
		[FERRY_XFER_INVALID_SRC_ADDR] = "invalid-source-address",
		[FERRY_XFER_INVALID_DST_ADDR] = "invalid-destination-address",
		[FERRY_XFER_BUS_READ_ERROR] = "bus-read-error",
		[FERRY_XFER_BUS_WRITE_ERROR] = "bus-write-error",
		[FERRY_XFER_PAGE_FAULT] = "page-fault",
		[FERRY_XFER_DATA_POISONED] = "data-poisoned",
		[FERRY_XFER_NOT_ATTEMPTED] = "not-attempted",
	};
	if ((unsigned)s >= FERRY_XFER_STATUS_COUNT)
		return "unknown";
	return names[s];
}
