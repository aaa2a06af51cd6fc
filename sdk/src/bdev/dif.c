/*
 * The dif bdev: a virtual bdev that shows plain 512/4096-byte blocks above a base with
 * extended 520/4104-byte blocks (8 bytes of T10 PI interleaved after each block's data).
 * Writes insert the PI (plain -> extended), reads verify and strip it (extended -> plain); a
 * PI mismatch completes the read with -EILSEQ and names the field (guard, application tag,
 * reference tag) and the block in the I/O. Reference tag: the LBA (low 32 bits) for types 1
 * and 2, 0 for type 3. The I/O paths are the shared ones of vbdev.c; this file is the
 * transform and the create function.
 */
#include <stdio.h>
#include <stdlib.h>
#include <ferry/bdev.h>
#include <ferry/dif.h>
#include <ferry/bdev_dif.h>
#include "vbdev.h"
#include "core_internal.h"

#define COMP "bdev_dif"

struct dif_bdev {
	struct ferry_dif_ctx tmpl; /* the format and checks; init_ref_tag set per I/O */
	uint32_t ext_size;         /* data + PI bytes of one base block */
};

/* The context of the transform of p->nblocks blocks at p->lba. */
static struct ferry_dif_ctx dif_ctx(const struct dif_bdev *d, const struct vbdev_io *p)
{
	struct ferry_dif_ctx c = d->tmpl;
	c.init_ref_tag = d->tmpl.type == FERRY_DIF_TYPE3 ? 0 : (uint32_t)p->lba;
	return c;
}

/* Counts of blocks are bounded by the base's size; the DIF API takes 32 bits. */
static int dif_nblocks(const struct vbdev_io *p, uint32_t *n)
{
	if (p->nblocks > UINT32_MAX) {
		FERRY_ERR(COMP, "an I/O of %llu blocks is larger than the DIF engine accepts",
			  (unsigned long long)p->nblocks);
		return -EINVAL;
	}
	*n = (uint32_t)p->nblocks;
	return 0;
}

static uint64_t dif_base_len(void *ctx, uint64_t n)
{
	const struct dif_bdev *d = ctx;
	return n * d->ext_size;
}

static int dif_append_write(void *ctx, struct vbdev_io *p, struct ferry_seq *seq,
			    const struct ferry_mem *base, const struct ferry_mem *plain)
{
	const struct dif_bdev *d = ctx;
	struct ferry_dif_ctx c = dif_ctx(d, p);
	uint32_t n;
	int rc = dif_nblocks(p, &n);
	return rc ? rc : ferry_seq_append_dif_insert(seq, base, plain, &c, n, NULL, NULL);
}

static int dif_append_read(void *ctx, struct vbdev_io *p, struct ferry_seq *seq,
			   const struct ferry_mem *plain, const struct ferry_mem *base)
{
	const struct dif_bdev *d = ctx;
	struct ferry_dif_ctx c = dif_ctx(d, p);
	uint32_t n;
	int rc = dif_nblocks(p, &n);
	return rc ? rc
		  : ferry_seq_append_dif_strip(seq, plain, base, &c, n, &p->dif_err, NULL, NULL);
}

static int dif_apply_write(void *ctx, struct vbdev_io *p, const struct iovec *base, uint32_t bcnt,
			   const struct iovec *plain, uint32_t pcnt)
{
	const struct dif_bdev *d = ctx;
	struct ferry_dif_ctx c = dif_ctx(d, p);
	uint32_t n;
	int rc = dif_nblocks(p, &n);
	return rc ? rc : ferry_dif_insert(&c, base, bcnt, plain, pcnt, n);
}

static int dif_apply_read(void *ctx, struct vbdev_io *p, const struct iovec *plain, uint32_t pcnt,
			  const struct iovec *base, uint32_t bcnt)
{
	const struct dif_bdev *d = ctx;
	struct ferry_dif_ctx c = dif_ctx(d, p);
	uint32_t n;
	int rc = dif_nblocks(p, &n);
	return rc ? rc : ferry_dif_strip(&c, plain, pcnt, base, bcnt, n, &p->dif_err);
}

static void dif_read_error(void *ctx, struct vbdev_io *p, struct ferry_bdev_io *parent)
{
	(void)ctx;
	switch (p->dif_err.field) {
	case FERRY_DIF_FIELD_GUARD:
		parent->error = FERRY_BDEV_ERR_GUARD;
		break;
	case FERRY_DIF_FIELD_APPTAG:
		parent->error = FERRY_BDEV_ERR_APPTAG;
		break;
	case FERRY_DIF_FIELD_REFTAG:
		parent->error = FERRY_BDEV_ERR_REFTAG;
		break;
	default:
		return; /* not ours: keep what the layers below said */
	}
	/* dif_err.block counts from the start of the transform; the I/O and the log say the
	 * absolute LBA (<ferry/bdev.h>, "Block numbers"). */
	parent->error_block = p->lba + p->dif_err.block;
	/* The host's data decides: every reason to ferry_last_error(), the log rate limited. */
	static struct log_ratelimit rl;
	unsigned int dropped;
	char msg[192];
	snprintf(msg, sizeof(msg),
		 "'%s': read of blocks %llu+%llu: block %llu: %s check failed (expected 0x%x, "
		 "found 0x%x)",
		 ferry_bdev_get_name(p->vb->self), (unsigned long long)parent->offset_blocks,
		 (unsigned long long)parent->num_blocks, (unsigned long long)parent->error_block,
		 ferry_dif_field_name(p->dif_err.field), p->dif_err.expected, p->dif_err.actual);
	ferry_set_last_error(COMP, "%s", msg);
	if (log_ratelimit(&rl, &dropped)) {
		if (dropped)
			FERRY_WARN(COMP, "%u PI check failures not logged in the last second", dropped);
		FERRY_ERR(COMP, "%s", msg);
	}
}

static const struct vbdev_xform dif_xform = {
	.base_len = dif_base_len,
	.append_write = dif_append_write,
	.append_read = dif_append_read,
	.apply_write = dif_apply_write,
	.apply_read = dif_apply_read,
	.read_error = dif_read_error,
	.destroy = free,
};

FERRY_API int ferry_bdev_dif_create(const struct ferry_bdev_dif_opts *opts, struct ferry_bdev **out)
{
	if (!opts || !out) {
		FERRY_ERR(COMP, "create: NULL %s", !opts ? "opts" : "out");
		return -EINVAL;
	}
	if (OPTS_SIZE_CHECK(COMP, "create", opts, struct ferry_bdev_dif_opts))
		return -EINVAL;
	if (!opts->name) {
		FERRY_ERR(COMP, "create: opts->name is required");
		return -EINVAL;
	}
	struct ferry_bdev *base;
	int rc = vbdev_resolve_base(COMP, opts->name, opts->base, opts->base_name, &base);
	if (rc)
		return rc;
	const char *bname = ferry_bdev_get_name(base);
	uint32_t md = ferry_bdev_get_md_size(base);
	uint32_t data = ferry_bdev_get_data_block_size(base);
	if (md != 8 || !(ferry_bdev_get_md_flags(base) & FERRY_BDEV_MD_INTERLEAVE) ||
	    (data != 512 && data != 4096)) {
		FERRY_ERR(COMP,
			  "create '%s': base '%s' must have 520- or 4104-byte blocks with 8 "
			  "interleaved metadata bytes (has %u bytes, %u of metadata%s)",
			  opts->name, bname, ferry_bdev_get_block_size(base), md,
			  (ferry_bdev_get_md_flags(base) & FERRY_BDEV_MD_INTERLEAVE)
				  ? ""
				  : ", separate");
		return -EINVAL;
	}
	uint32_t type = opts->dif_type ? opts->dif_type : ferry_bdev_get_dif_type(base);
	uint32_t base_type = ferry_bdev_get_dif_type(base);
	if (type < 1 || type > 3 || (base_type && base_type != type)) {
		FERRY_ERR(COMP,
			  "create '%s': PI type %u invalid or different from base '%s' "
			  "type %u",
			  opts->name, opts->dif_type, bname, base_type);
		return -EINVAL;
	}
	struct dif_bdev *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	rc = ferry_dif_ctx_init(&d->tmpl, data, 8, 1, (enum ferry_dif_type)type, opts->check_flags,
				0, opts->app_tag, opts->app_tag_mask);
	if (rc) {
		FERRY_ERR(COMP, "create '%s': bad check flags 0x%x", opts->name, opts->check_flags);
		free(d);
		return rc;
	}
	d->ext_size = data + 8;
	struct vbdev_args a = {
		.name = opts->name,
		.module = "dif",
		.base = base,
		.block_size = data,
		.xf = &dif_xform,
		.ctx = d,
	};
	return vbdev_create(&a, out);
}
