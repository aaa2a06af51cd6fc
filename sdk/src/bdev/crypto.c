/*
 * The crypto bdev: a virtual bdev that stores its data AES-XTS encrypted on its base. Writes
 * encrypt (plain -> base), reads decrypt (base -> plain); data unit i of an I/O at block LBA
 * uses the tweak LBA * (block_size / data_unit) + i. The I/O paths (sequence, local, write
 * zeroes, compare) are the shared ones of vbdev.c; this file is the transform and the
 * create function.
 */
#include <stdlib.h>
#include <ferry/bdev.h>
#include <ferry/crypto.h>
#include <ferry/bdev_crypto.h>
#include "vbdev.h"
#include "core_internal.h"

#define COMP "bdev_crypto"

struct crypto_bdev {
	struct ferry_crypto_key *key;
	uint32_t block_size;
	uint32_t units_per_block; /* data units per block */
};

static uint64_t crypto_tweak(const struct crypto_bdev *c, const struct vbdev_io *p)
{
	return p->lba * c->units_per_block;
}

static uint64_t crypto_base_len(void *ctx, uint64_t n)
{
	const struct crypto_bdev *c = ctx;
	return n * c->block_size;
}

static int crypto_append_write(void *ctx, struct vbdev_io *p, struct ferry_seq *seq,
			       const struct ferry_mem *base, const struct ferry_mem *plain)
{
	struct crypto_bdev *c = ctx;
	return ferry_seq_append_encrypt(seq, base, plain, c->key, crypto_tweak(c, p), NULL, NULL);
}

static int crypto_append_read(void *ctx, struct vbdev_io *p, struct ferry_seq *seq,
			      const struct ferry_mem *plain, const struct ferry_mem *base)
{
	struct crypto_bdev *c = ctx;
	return ferry_seq_append_decrypt(seq, plain, base, c->key, crypto_tweak(c, p), NULL, NULL);
}

static int crypto_apply_write(void *ctx, struct vbdev_io *p, const struct iovec *base,
			      uint32_t bcnt, const struct iovec *plain, uint32_t pcnt)
{
	struct crypto_bdev *c = ctx;
	return ferry_crypto_encrypt(c->key, base, bcnt, plain, pcnt, crypto_tweak(c, p));
}

static int crypto_apply_read(void *ctx, struct vbdev_io *p, const struct iovec *plain,
			     uint32_t pcnt, const struct iovec *base, uint32_t bcnt)
{
	struct crypto_bdev *c = ctx;
	return ferry_crypto_decrypt(c->key, plain, pcnt, base, bcnt, crypto_tweak(c, p));
}

static const struct vbdev_xform crypto_xform = {
	.base_len = crypto_base_len,
	.append_write = crypto_append_write,
	.append_read = crypto_append_read,
	.apply_write = crypto_apply_write,
	.apply_read = crypto_apply_read,
	.destroy = free,
};

FERRY_API int ferry_bdev_crypto_create(const struct ferry_bdev_crypto_opts *opts,
				       struct ferry_bdev **out)
{
	if (!opts || !out) {
		FERRY_ERR(COMP, "create: NULL %s", !opts ? "opts" : "out");
		return -EINVAL;
	}
	if (OPTS_SIZE_CHECK(COMP, "create", opts, struct ferry_bdev_crypto_opts))
		return -EINVAL;
	if (!opts->name || !opts->key) {
		FERRY_ERR(COMP, "create: opts->name and opts->key are required");
		return -EINVAL;
	}
	struct ferry_bdev *base;
	int rc = vbdev_resolve_base(COMP, opts->name, opts->base, opts->base_name, &base);
	if (rc)
		return rc;
	uint32_t bs = ferry_bdev_get_block_size(base);
	uint32_t du = ferry_crypto_key_get_data_unit(opts->key);
	if (ferry_bdev_get_md_size(base) != 0) {
		FERRY_ERR(COMP,
			  "create '%s': base '%s' has %u metadata bytes per block; put the "
			  "crypto bdev above the dif bdev, on blocks without metadata",
			  opts->name, ferry_bdev_get_name(base), ferry_bdev_get_md_size(base));
		return -EINVAL;
	}
	if (du == 0 || bs % du != 0) {
		FERRY_ERR(COMP,
			  "create '%s': block size %u of base '%s' is not a multiple of the "
			  "key's data unit %u",
			  opts->name, bs, ferry_bdev_get_name(base), du);
		return -EINVAL;
	}
	struct crypto_bdev *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->key = opts->key;
	c->block_size = bs;
	c->units_per_block = bs / du;
	struct vbdev_args a = {
		.name = opts->name,
		.module = "crypto",
		.base = base,
		.block_size = bs,
		.xf = &crypto_xform,
		.ctx = c,
	};
	return vbdev_create(&a, out);
}
