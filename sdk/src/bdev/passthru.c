/*
 * The passthrough bdev: a virtual bdev that claims a base bdev and passes every I/O down
 * unchanged (same data descriptor, same sequence) as a child I/O, then reports the base's
 * result on the parent. The smallest example of a stacking module.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ferry/bdev.h>
#include <ferry/bdev_passthru.h>
#include <ferry/module/bdev.h>
#include "bdev_internal.h"
#include "core_internal.h"

#define COMP "bdev_passthru"

struct pt_bdev {
	struct ferry_bdev *base;
};

struct pt_io {
	struct ferry_bdev_io child;
	struct ferry_bdev_io *parent;
};

static void pt_done(struct ferry_bdev_io *child, void *arg)
{
	struct pt_io *p = arg;
	struct ferry_bdev_io *parent = p->parent;
	int status = child->status;
	parent->error = child->error;
	parent->error_block = child->error_block;
	free(p);
	ferry_bdev_io_complete(parent, status);
}

static int pt_submit(struct ferry_bdev *bdev, struct ferry_bdev_io *io)
{
	struct pt_bdev *pt = ferry_bdev_get_ctx(bdev);
	struct pt_io *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->parent = io;
	p->child.type = io->type;
	p->child.flags = io->flags;
	p->child.offset_blocks = io->offset_blocks;
	p->child.num_blocks = io->num_blocks;
	p->child.mem = io->mem;
	p->child.seq = io->seq;
	p->child.cb = pt_done;
	p->child.cb_arg = p;
	int rc = ferry_bdev_submit(pt->base, &p->child);
	if (rc)
		free(p);
	return rc;
}

static void pt_destroy(struct ferry_bdev *bdev)
{
	struct pt_bdev *pt = ferry_bdev_get_ctx(bdev);
	if (pt) {
		ferry_bdev_release(pt->base);
		free(pt);
	}
}

static int pt_poll(struct ferry_bdev *bdev, uint32_t max)
{
	struct pt_bdev *pt = ferry_bdev_get_ctx(bdev);
	return ferry_bdev_poll(pt->base, max);
}

static const struct ferry_bdev_ops pt_ops = {
	.abi_version = FERRY_BDEV_OPS_ABI,
	.read = pt_submit,
	.write = pt_submit,
	.flush = pt_submit,
	.write_zeroes = pt_submit,
	.unmap = pt_submit,
	.compare = pt_submit,
	.destroy = pt_destroy,
	.poll = pt_poll,
};

FERRY_API int ferry_bdev_passthru_create(const struct ferry_bdev_passthru_opts *opts,
					 struct ferry_bdev **out)
{
	if (!opts || !out) {
		FERRY_ERR(COMP, "create: NULL %s", !opts ? "opts" : "out");
		return -EINVAL;
	}
	if (OPTS_SIZE_CHECK(COMP, "create", opts, struct ferry_bdev_passthru_opts))
		return -EINVAL;
	if (!opts->name || !opts->base_name) {
		FERRY_ERR(COMP, "create: opts->name and opts->base_name are required");
		return -EINVAL;
	}
	struct ferry_bdev *base = ferry_bdev_lookup(opts->base_name);
	if (!base) {
		FERRY_ERR(COMP, "create '%s': no base bdev '%s'", opts->name, opts->base_name);
		return -ENOENT;
	}
	if (ferry_bdev_lookup(opts->name)) {
		FERRY_ERR(COMP, "create: a bdev named '%s' exists", opts->name);
		return -EEXIST;
	}
	char owner[FERRY_BDEV_NAME_MAX + 16];
	snprintf(owner, sizeof(owner), "passthru %s", opts->name);
	int rc = ferry_bdev_claim(base, owner);
	if (rc)
		return rc;
	struct pt_bdev *pt = calloc(1, sizeof(*pt));
	if (!pt) {
		ferry_bdev_release(base);
		return -ENOMEM;
	}
	pt->base = base;
	struct ferry_bdev_opts bo = {
		.size = sizeof(bo),
		.name = opts->name,
		.module = "passthru",
		.block_size = ferry_bdev_get_block_size(base),
		.num_blocks = ferry_bdev_get_num_blocks(base),
		.md_size = ferry_bdev_get_md_size(base),
		.md_flags = ferry_bdev_get_md_flags(base),
		.dif_type = ferry_bdev_get_dif_type(base),
		.flags = ferry_bdev_get_flags(base),
		.ops = &pt_ops,
		.ctx = pt,
	};
	rc = ferry_bdev_create(&bo, out);
	if (rc) {
		ferry_bdev_release(base);
		free(pt);
	}
	return rc;
}
