/*
 * "skel": the smallest complete backend, registered only inside the conformance executable
 * (as DPDK's dmadev test creates a skeleton device): a DMA engine over system memory that
 * executes transfers in submission order inside poll(). It shows what a backend must provide
 * (docs/hal-porting.md walks through it) and keeps the suite honest: it runs against an engine
 * with other limits than the mock (4-byte alignment, 16 segments, 4 channels, 1 MiB per
 * transfer, no PCIe domains). Like a real backend it includes only the SDK and HAL headers.
 *
 * Argument: ring=<n> (default ring size of a channel, 1..64).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <ferry/log.h>
#include <ferry/hal/hal.h>

#define SKEL_MAX_CHANNELS 4u
#define SKEL_MAX_RING 64u
#define SKEL_MAX_SGES 16u
#define SKEL_ALIGN 4u
#define SKEL_MAX_XFER (1u << 20)
#define SKEL_ERR(...) ferry_log(FERRY_LOG_ERROR, "skel", __VA_ARGS__)

struct skel_dev {
	_Atomic uint32_t nchans; /* channels open (chan_create may run on several threads) */
	uint32_t ring_default;
};

struct skel_slot {
	struct ferry_xfer *x;
	uint64_t fence_dep; /* first index not yet returned by poll when x was submitted */
};

struct skel_chan {
	struct skel_dev *dev;
	uint32_t size;
	uint64_t head, tail; /* head: next to execute and return; tail: next free index */
	uint64_t last_fail;  /* index + 1 of the latest failed transfer, 0 = none */
	struct skel_slot *ring;
};

static const char *const skel_keys[] = {"ring", NULL};

static int skel_open(struct ferry_device *fdev, const char *args)
{
	char val[16];
	unsigned long ring = 16;
	if (ferry_hal_args_check(args, skel_keys))
		return -EINVAL; /* logged with the key */
	int rc = ferry_hal_arg_get(args, "ring", val, sizeof(val));
	if (rc == 0) {
		char *end;
		ring = strtoul(val, &end, 10);
		if (*end || ring < 1 || ring > SKEL_MAX_RING) {
			SKEL_ERR("argument ring='%s': must be 1..%u", val, SKEL_MAX_RING);
			return -EINVAL;
		}
	} else if (rc != -ENOENT) {
		SKEL_ERR("argument ring: value too long");
		return -EINVAL;
	}
	struct skel_dev *dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->ring_default = (uint32_t)ring;
	ferry_hal_dev_set_priv(fdev, dev);
	return 0;
}

static void skel_close(struct ferry_device *fdev)
{
	free(ferry_hal_dev_get_priv(fdev));
	ferry_hal_dev_set_priv(fdev, NULL);
}

static int skel_query(struct ferry_device *fdev, struct ferry_dma_info *info)
{
	info->caps = FERRY_DMA_CAP_MEM_TO_MEM | FERRY_DMA_CAP_SG | FERRY_DMA_CAP_FENCE;
	info->max_sges = SKEL_MAX_SGES;
	info->alignment = SKEL_ALIGN;
	info->max_xfer = SKEL_MAX_XFER;
	info->max_channels = SKEL_MAX_CHANNELS;
	info->max_ring = SKEL_MAX_RING;
	return 0;
}

static int skel_chan_create(struct ferry_device *fdev, const struct ferry_dma_chan_opts *opts,
			    void **out)
{
	struct skel_dev *dev = ferry_hal_dev_get_priv(fdev);
	uint32_t n = atomic_load(&dev->nchans);
	do {
		if (n >= SKEL_MAX_CHANNELS) {
			SKEL_ERR("%u channels already open", SKEL_MAX_CHANNELS);
			return -EBUSY;
		}
	} while (!atomic_compare_exchange_weak(&dev->nchans, &n, n + 1));
	uint32_t size = opts->ring_size ? opts->ring_size
					: dev->ring_default; /* SDK: <= max_ring */
	struct skel_chan *ch = calloc(1, sizeof(*ch));
	struct skel_slot *ring = calloc(size, sizeof(*ring));
	if (!ch || !ring) {
		free(ch);
		free(ring);
		atomic_fetch_sub(&dev->nchans, 1);
		return -ENOMEM;
	}
	ch->dev = dev;
	ch->size = size;
	ch->ring = ring;
	*out = ch;
	return 0;
}

static void skel_chan_destroy(void *chan)
{
	struct skel_chan *ch = chan;
	/* Transfers still queued are abandoned: nothing executes outside poll(). */
	atomic_fetch_sub(&ch->dev->nchans, 1);
	free(ch->ring);
	free(ch);
}

static int skel_submit(void *chan, struct ferry_xfer *const *xfers, uint32_t n)
{
	struct skel_chan *ch = chan;
	uint32_t i = 0;
	for (; i < n && ch->tail - ch->head < ch->size; i++, ch->tail++)
		ch->ring[ch->tail % ch->size] = (struct skel_slot){xfers[i], ch->head};
	return (int)i;
}

/* The SDK checked lengths, counts and alignment; addresses are ours to check. */
static int skel_side_ok(const struct ferry_mem *m, uint64_t len)
{
	if (m->domain && m->domain != ferry_memdomain_system())
		return 0; /* this engine reaches system memory only */
	for (uint32_t s = 0; s < m->iovcnt && len; s++) {
		if (!m->iov[s].iov_base && m->iov[s].iov_len)
			return 0;
		len -= m->iov[s].iov_len < len ? m->iov[s].iov_len : len;
	}
	return 1;
}

static enum ferry_xfer_status skel_exec(const struct ferry_xfer *x)
{
	if (!skel_side_ok(&x->src, x->len))
		return FERRY_XFER_INVALID_SRC_ADDR;
	if (!skel_side_ok(&x->dst, x->len))
		return FERRY_XFER_INVALID_DST_ADDR;
	uint32_t si = 0, di = 0;
	size_t so = 0, dof = 0;
	for (uint64_t left = x->len; left;) {
		size_t n = x->src.iov[si].iov_len - so;
		if (x->dst.iov[di].iov_len - dof < n)
			n = x->dst.iov[di].iov_len - dof;
		if (left < n)
			n = (size_t)left;
		memmove((char *)x->dst.iov[di].iov_base + dof, (char *)x->src.iov[si].iov_base + so,
			n);
		left -= n;
		so += n;
		dof += n;
		if (so == x->src.iov[si].iov_len) {
			si++;
			so = 0;
		}
		if (dof == x->dst.iov[di].iov_len) {
			di++;
			dof = 0;
		}
	}
	return FERRY_XFER_SUCCESS;
}

static int skel_poll(void *chan, struct ferry_xfer **done, uint32_t max)
{
	struct skel_chan *ch = chan;
	uint32_t n = 0;
	for (; n < max && ch->head < ch->tail; n++, ch->head++) {
		struct skel_slot *s = &ch->ring[ch->head % ch->size];
		/* In order, so a fence only has to honour the failure rule. */
		if ((s->x->flags & FERRY_XFER_F_FENCE) && ch->last_fail > s->fence_dep)
			s->x->status = FERRY_XFER_NOT_ATTEMPTED;
		else
			s->x->status = skel_exec(s->x);
		if (s->x->status != FERRY_XFER_SUCCESS)
			ch->last_fail = ch->head + 1;
		done[n] = s->x;
	}
	return (int)n;
}

static const struct ferry_hal_dma_ops skel_dma_ops = {
	.abi_version = FERRY_HAL_DMA_ABI_VERSION,
	.query = skel_query,
	.chan_create = skel_chan_create,
	.chan_destroy = skel_chan_destroy,
	.submit = skel_submit,
	.poll = skel_poll,
};

static const struct ferry_hal_backend skel_backend = {
	.abi_version = FERRY_HAL_ABI_VERSION,
	.name = "skel",
	.open = skel_open,
	.close = skel_close,
	.dma = &skel_dma_ops,
};

FERRY_HAL_BACKEND(skel, skel_backend)
