/*
 * "template": the smallest complete Ferry backend, the one to copy when you port Ferry to
 * your card. A DMA engine over system memory that executes transfers, accel operations and
 * one declared fused chain in software, in submission order, inside poll(). Replace the
 * bodies of tpl_exec() and tpl_accel_exec() with your hardware's descriptor writes and
 * completion reads; keep the contract (docs/hal-porting.md, checked by ferry-conformance).
 *
 * It includes only the installed SDK and backend SDK headers and builds out of Ferry's tree
 * (CMakeLists.txt beside it: find_package(Ferry) + ferry_add_backend(); or pkg-config, see
 * README.md). Built with FERRY_BACKEND_PLUGIN defined (ferry_add_backend() does that for the
 * plugin) it is a plugin (ferry_hal_load(), ferry-conformance --load); without, linking it
 * registers it (FERRY_HAL_BACKEND()). Ferry's own tests run the suite on it both ways.
 *
 * Limits chosen unlike the mock's so that the suite is exercised on other numbers: 4-byte
 * alignment, 16 segments, 4 channels, 1 MiB per transfer, no PCIe domains.
 *
 * Accel: single operations copy and crc32c, and the chain "copy+crc32c" (copy, then the
 * CRC32C of the copied bytes) run as one pass that computes the CRC while it copies.
 *
 * Argument: ring=<n> (default ring size of a channel, 1..64).
 */
#include <errno.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <ferry/crc.h>
#include <ferry/log.h>
#include <ferry/hal/hal.h>

#define TPL_MAX_CHANNELS 4u
#define TPL_MAX_RING 64u
#define TPL_MAX_SGES 16u
#define TPL_ALIGN 4u
#define TPL_MAX_XFER (1u << 20)
#define TPL_ERR(...) ferry_log(FERRY_LOG_ERROR, "template", __VA_ARGS__)

struct tpl_dev {
	_Atomic uint32_t nchans; /* channels open (chan_create may run on several threads) */
	uint32_t ring_default;
};

struct tpl_slot {
	struct ferry_xfer *x;
	uint64_t fence_dep; /* first index not yet returned by poll when x was submitted */
};

struct tpl_chan {
	struct tpl_dev *dev;
	uint32_t size;
	uint64_t head, tail; /* head: next to execute and return; tail: next free index */
	uint64_t last_fail;  /* index + 1 of the latest failed transfer, 0 = none */
	struct tpl_slot *ring;
	/* Accel descriptors: a second ring of the same size, executed in order by poll. */
	uint64_t ahead, atail;
	struct ferry_hal_accel_desc **aring;
};

static const char *const tpl_keys[] = {"ring", NULL};

static int tpl_open(struct ferry_device *fdev, const char *args)
{
	char val[16];
	unsigned long ring = 16;
	if (ferry_hal_args_check(args, tpl_keys))
		return -EINVAL; /* logged with the key */
	int rc = ferry_hal_arg_get(args, "ring", val, sizeof(val));
	if (rc == 0) {
		char *end;
		ring = strtoul(val, &end, 10);
		if (*end || ring < 1 || ring > TPL_MAX_RING) {
			TPL_ERR("argument ring='%s': must be 1..%u", val, TPL_MAX_RING);
			return -EINVAL;
		}
	} else if (rc != -ENOENT) {
		TPL_ERR("argument ring: value too long");
		return -EINVAL;
	}
	struct tpl_dev *dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->ring_default = (uint32_t)ring;
	ferry_hal_dev_set_priv(fdev, dev);
	return 0;
}

static void tpl_close(struct ferry_device *fdev)
{
	free(ferry_hal_dev_get_priv(fdev));
	ferry_hal_dev_set_priv(fdev, NULL);
}

static int tpl_query(struct ferry_device *fdev, struct ferry_dma_info *info)
{
	(void)fdev;
	info->caps = FERRY_DMA_CAP_MEM_TO_MEM | FERRY_DMA_CAP_SG | FERRY_DMA_CAP_FENCE |
		     FERRY_DMA_CAP_ACCEL | FERRY_DMA_CAP_FUSED;
	info->max_sges = TPL_MAX_SGES;
	info->alignment = TPL_ALIGN;
	info->max_xfer = TPL_MAX_XFER;
	info->max_channels = TPL_MAX_CHANNELS;
	info->max_ring = TPL_MAX_RING;
	return 0;
}

static int tpl_chan_create(struct ferry_device *fdev, const struct ferry_dma_chan_opts *opts,
			   void **out)
{
	struct tpl_dev *dev = ferry_hal_dev_get_priv(fdev);
	uint32_t n = atomic_load(&dev->nchans);
	do {
		if (n >= TPL_MAX_CHANNELS) {
			TPL_ERR("%u channels already open", TPL_MAX_CHANNELS);
			return -EBUSY;
		}
	} while (!atomic_compare_exchange_weak(&dev->nchans, &n, n + 1));
	uint32_t size = opts->ring_size ? opts->ring_size
					: dev->ring_default; /* SDK: <= max_ring */
	struct tpl_chan *ch = calloc(1, sizeof(*ch));
	struct tpl_slot *ring = calloc(size, sizeof(*ring));
	struct ferry_hal_accel_desc **aring = calloc(size, sizeof(*aring));
	if (!ch || !ring || !aring) {
		free(ch);
		free(ring);
		free(aring);
		atomic_fetch_sub(&dev->nchans, 1);
		return -ENOMEM;
	}
	ch->dev = dev;
	ch->size = size;
	ch->ring = ring;
	ch->aring = aring;
	*out = ch;
	return 0;
}

static void tpl_chan_destroy(void *chan)
{
	struct tpl_chan *ch = chan;
	/* Transfers still queued are abandoned: nothing executes outside poll(). */
	atomic_fetch_sub(&ch->dev->nchans, 1);
	free(ch->ring);
	free(ch->aring);
	free(ch);
}

static int tpl_submit(void *chan, struct ferry_xfer *const *xfers, uint32_t n)
{
	struct tpl_chan *ch = chan;
	uint32_t i = 0;
	for (; i < n && ch->tail - ch->head < ch->size; i++, ch->tail++)
		ch->ring[ch->tail % ch->size] = (struct tpl_slot){xfers[i], ch->head};
	return (int)i;
}

/* The SDK checked lengths, counts and alignment; addresses are ours to check. */
static int tpl_side_ok(const struct ferry_mem *m, uint64_t len)
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

/*
 * Copy @p len bytes from @p src to @p dst (iovec arrays, walked with the backend SDK's
 * cursors); with @p crc non-NULL, also fold the copied bytes into *crc in the same pass.
 * This is where a hardware backend writes its descriptors instead.
 */
static void tpl_copy(const struct ferry_mem *src, const struct ferry_mem *dst, uint64_t len,
		     uint32_t *crc)
{
	struct ferry_hal_iov_cur s, d;
	ferry_hal_iov_cur_init(&s, src->iov, src->iovcnt);
	ferry_hal_iov_cur_init(&d, dst->iov, dst->iovcnt);
	while (len) {
		size_t n = ferry_hal_iov_cur_avail(&s);
		if (ferry_hal_iov_cur_avail(&d) < n)
			n = ferry_hal_iov_cur_avail(&d);
		if (len < n)
			n = (size_t)len;
		if (!n)
			break; /* the SDK checked both sides hold len bytes */
		memmove(ferry_hal_iov_cur_ptr(&d), ferry_hal_iov_cur_ptr(&s), n);
		if (crc)
			*crc = ferry_crc32c(*crc, ferry_hal_iov_cur_ptr(&s), n);
		ferry_hal_iov_cur_advance(&s, n);
		ferry_hal_iov_cur_advance(&d, n);
		len -= n;
	}
}

static enum ferry_xfer_status tpl_exec(const struct ferry_xfer *x)
{
	if (!tpl_side_ok(&x->src, x->len))
		return FERRY_XFER_INVALID_SRC_ADDR;
	if (!tpl_side_ok(&x->dst, x->len))
		return FERRY_XFER_INVALID_DST_ADDR;
	tpl_copy(&x->src, &x->dst, x->len, NULL);
	return FERRY_XFER_SUCCESS;
}

static int tpl_poll(void *chan, struct ferry_xfer **done, uint32_t max)
{
	struct tpl_chan *ch = chan;
	uint32_t n = 0;
	for (; n < max && ch->head < ch->tail; n++, ch->head++) {
		struct tpl_slot *s = &ch->ring[ch->head % ch->size];
		/* In order, so a fence only has to honour the failure rule. */
		if ((s->x->flags & FERRY_XFER_F_FENCE) && ch->last_fail > s->fence_dep)
			s->x->status = FERRY_XFER_NOT_ATTEMPTED;
		else
			s->x->status = tpl_exec(s->x);
		if (s->x->status != FERRY_XFER_SUCCESS)
			ch->last_fail = ch->head + 1;
		done[n] = s->x;
	}
	return (int)n;
}

/* ---- accel: copy, crc32c, and the fused chain copy+crc32c ---- */

static const struct ferry_hal_accel_chain tpl_chains[] = {
	{
		.name = "copy+crc32c",
		.nops = 2,
		.ops = {FERRY_ACCEL_OP_COPY, FERRY_ACCEL_OP_CRC32C},
		.src_doms = FERRY_HAL_ACCEL_DOM_LOCAL,
		.dst_doms = 0, /* the last op (crc32c) writes nothing */
	},
};

/* An operand this engine reaches: system memory only, every segment with a base. */
static int tpl_operand_ok(const struct ferry_mem *m, size_t *len)
{
	const char *why;
	if (m->domain && m->domain != ferry_memdomain_system())
		return 0;
	return ferry_hal_iov_total(m->iov, m->iovcnt, len, &why) == 0;
}

/* Fail @p d at op @p k with -EFAULT and the reason. */
static void tpl_accel_fault(struct ferry_hal_accel_desc *d, uint32_t k, const char *operand)
{
	d->status = -EFAULT;
	d->failed_op = k;
	snprintf(d->reason, sizeof(d->reason),
		 "template: op %u: %s operand outside system memory or with a NULL segment", k,
		 operand);
}

static void tpl_accel_exec(struct ferry_hal_accel_desc *d)
{
	d->status = 0;
	d->failed_op = 0;
	for (uint32_t k = 0; k < d->nops; k++) {
		struct ferry_hal_accel_op *op = &d->ops[k];
		size_t sl = 0, dl = 0;
		if (!tpl_operand_ok(&op->src, &sl)) {
			tpl_accel_fault(d, k, "source");
			return;
		}
		if (op->opcode == FERRY_ACCEL_OP_COPY && !tpl_operand_ok(&op->dst, &dl)) {
			tpl_accel_fault(d, k, "destination");
			return;
		}
	}
	if (d->chain == 0) {
		/* copy+crc32c in one pass: the CRC of the bytes as they are copied. */
		uint32_t crc = d->ops[1].crc_seed;
		size_t len = 0;
		(void)tpl_operand_ok(&d->ops[0].src, &len);
		tpl_copy(&d->ops[0].src, &d->ops[0].dst, len, &crc);
		d->ops[1].crc = crc;
		return;
	}
	struct ferry_hal_accel_op *op = &d->ops[0];
	size_t len = 0;
	(void)tpl_operand_ok(&op->src, &len);
	if (op->opcode == FERRY_ACCEL_OP_COPY)
		tpl_copy(&op->src, &op->dst, len, NULL);
	else
		op->crc = ferry_crc32c_iov(op->crc_seed, op->src.iov, op->src.iovcnt);
}

/* The SDK sends only what this table declares (opcodes, chains) and check() accepted. */
static int tpl_accel_check(void *chan, const struct ferry_hal_accel_desc *d)
{
	(void)chan;
	if (d->chain == 0)
		return d->nops == 2 && d->ops[0].opcode == FERRY_ACCEL_OP_COPY &&
				       d->ops[1].opcode == FERRY_ACCEL_OP_CRC32C
			       ? 0
			       : -EINVAL;
	if (d->chain != -1 || d->nops != 1)
		return -EINVAL;
	return d->ops[0].opcode == FERRY_ACCEL_OP_COPY || d->ops[0].opcode == FERRY_ACCEL_OP_CRC32C
		       ? 0
		       : -EINVAL;
}

static int tpl_accel_submit(void *chan, struct ferry_hal_accel_desc *const *descs, uint32_t n)
{
	struct tpl_chan *ch = chan;
	uint32_t i = 0;
	for (; i < n && ch->atail - ch->ahead < ch->size; i++, ch->atail++)
		ch->aring[ch->atail % ch->size] = descs[i];
	return (int)i;
}

static int tpl_accel_poll(void *chan, struct ferry_hal_accel_desc **done, uint32_t max)
{
	struct tpl_chan *ch = chan;
	uint32_t n = 0;
	for (; n < max && ch->ahead < ch->atail; n++, ch->ahead++) {
		struct ferry_hal_accel_desc *d = ch->aring[ch->ahead % ch->size];
		if (tpl_accel_check(chan, d)) {
			d->status = -EINVAL;
			d->failed_op = 0;
			snprintf(d->reason, sizeof(d->reason),
				 "template: an operation or chain this engine did not declare");
		} else {
			tpl_accel_exec(d);
		}
		done[n] = d;
	}
	return (int)n;
}

static const struct ferry_hal_accel_ops tpl_accel_ops = {
	.abi_version = FERRY_HAL_ACCEL_ABI_VERSION,
	.opcodes = FERRY_HAL_ACCEL_OP_BIT(FERRY_ACCEL_OP_COPY) |
		   FERRY_HAL_ACCEL_OP_BIT(FERRY_ACCEL_OP_CRC32C),
	.chains = tpl_chains,
	.nchains = sizeof(tpl_chains) / sizeof(tpl_chains[0]),
	.check = tpl_accel_check,
	.submit = tpl_accel_submit,
	.poll = tpl_accel_poll,
};

static const struct ferry_hal_dma_ops tpl_dma_ops = {
	.abi_version = FERRY_HAL_DMA_ABI_VERSION,
	.query = tpl_query,
	.chan_create = tpl_chan_create,
	.chan_destroy = tpl_chan_destroy,
	.submit = tpl_submit,
	.poll = tpl_poll,
	.accel = &tpl_accel_ops,
};

static const struct ferry_hal_backend tpl_backend = {
	.abi_version = FERRY_HAL_ABI_VERSION,
	.name = "template",
	.open = tpl_open,
	.close = tpl_close,
	.dma = &tpl_dma_ops,
};

#ifdef FERRY_BACKEND_PLUGIN
/* A plugin: ferry_hal_load() checks the versions, then registers tpl_backend. */
FERRY_HAL_PLUGIN(tpl_backend);
#else
/* Linked in: registered when the program starts (ferry_hal_backend_template keeps it). */
FERRY_HAL_BACKEND(template, tpl_backend)
#endif
