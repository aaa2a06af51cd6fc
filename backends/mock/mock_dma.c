/*
 * The mock's HAL DMA engine class: capabilities and limits, channels (each a ring served by
 * the device's engine thread), batch submit and completion polling.
 */
#include <errno.h>
#include "mock_internal.h"

static int mock_query(struct ferry_device *fdev, struct ferry_dma_info *info)
{
	info->caps = FERRY_DMA_CAP_MEM_TO_MEM | FERRY_DMA_CAP_MEM_TO_DEV |
		     FERRY_DMA_CAP_DEV_TO_MEM | FERRY_DMA_CAP_DEV_TO_DEV | FERRY_DMA_CAP_SG |
		     FERRY_DMA_CAP_FENCE | FERRY_DMA_CAP_ERR_INJECT;
	if (mock_dma_ops.accel)
		info->caps |= FERRY_DMA_CAP_ACCEL | FERRY_DMA_CAP_FUSED;
	info->max_sges = MOCK_MAX_SGES;
	info->alignment = 1;
	info->max_xfer = MOCK_MAX_XFER;
	info->max_channels = MOCK_MAX_CHANNELS;
	info->max_ring = MOCK_MAX_RING;
	return 0;
}

static int mock_chan_create(struct ferry_device *fdev, const struct ferry_dma_chan_opts *opts,
			    void **out)
{
	struct mock_dev *dev = mock_dev_get(fdev);
	uint32_t ring = opts->ring_size ? opts->ring_size : dev->ring_default;
	if (ring > MOCK_MAX_RING) {
		MOCK_ERR("%s: ring_size %u exceeds %u", dev->name, ring, MOCK_MAX_RING);
		return -EINVAL;
	}
	pthread_mutex_lock(&dev->lock);
	if (dev->user_chans >= MOCK_MAX_CHANNELS) {
		pthread_mutex_unlock(&dev->lock);
		MOCK_ERR("%s: %u channels already open", dev->name, MOCK_MAX_CHANNELS);
		return -EBUSY;
	}
	dev->user_chans++;
	uint32_t id = dev->next_chan_id++;
	pthread_mutex_unlock(&dev->lock);
	struct mock_chan *ch;
	int rc = mock_chan_open(dev, id, ring, 1, &ch);
	if (rc) {
		pthread_mutex_lock(&dev->lock);
		dev->user_chans--;
		pthread_mutex_unlock(&dev->lock);
		MOCK_ERR("%s: out of memory for a channel of %u entries", dev->name, ring);
		return rc;
	}
	*out = ch;
	return 0;
}

static void mock_chan_destroy(void *chan)
{
	struct mock_chan *ch = chan;
	struct mock_dev *dev = ch->dev;
	mock_accel_chan_destroy(chan);
	if (dev) {
		pthread_mutex_lock(&dev->lock);
		dev->user_chans--;
		pthread_mutex_unlock(&dev->lock);
	}
	mock_chan_close(ch);
}

static int mock_submit(void *chan, struct ferry_xfer *const *xfers, uint32_t n)
{
	struct mock_chan *ch = chan;
	if (!ch->dev) {
		MOCK_ERR("submit: the channel's device was closed");
		return -ENODEV;
	}
	uint32_t i = 0;
	while (i < n && mock_chan_push(ch, xfers[i], 0))
		i++;
	if (i)
		mock_engine_kick(ch->dev);
	return (int)i;
}

static int mock_poll(void *chan, struct ferry_xfer **done, uint32_t max)
{
	return (int)mock_chan_reap(chan, done, max);
}

struct mock_dev *mock_chan_dev(void *chan)
{
	return chan ? ((struct mock_chan *)chan)->dev : NULL;
}

uint32_t mock_chan_id(void *chan)
{
	return chan ? ((struct mock_chan *)chan)->id : 0;
}

const struct ferry_hal_dma_ops mock_dma_ops = {
	.abi_version = FERRY_HAL_DMA_ABI_VERSION,
	.query = mock_query,
	.chan_create = mock_chan_create,
	.chan_destroy = mock_chan_destroy,
	.submit = mock_submit,
	.poll = mock_poll,
	.accel = &mock_accel_ops, /* mock_accel.c */
};
