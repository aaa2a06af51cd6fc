/*
 * Transforming virtual bdevs (crypto, dif; see vbdev.h and docs/bdev.md): creation and
 * claim of the base, and the I/O paths every such bdev shares:
 *  - READ/WRITE with a sequence: take an intermediate buffer (a virtual buffer, or local
 *    memory when the I/O is larger than the pool allows), append the module's transform,
 *    pass the sequence down with the child I/O, give the buffer back on completion;
 *  - READ/WRITE without a sequence: run the transform here, synchronously, on local bounce
 *    buffers, pulling/pushing the parent's data when it is in a remote domain;
 *  - WRITE ZEROES and UNMAP: written as transformed zero blocks, chunk by chunk, so that the
 *    host reads zeroes back (what the base's own zeroes would not give);
 *  - FLUSH passes through; COMPARE (without a sequence) reads, transforms and compares.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vbdev.h"
#include "core_internal.h"
#include <ferry/module/bdev.h>

#define COMP "bdev_virt"

/* Bytes of plain data per chunk of the write zeroes emulation. */
#define VB_ZERO_CHUNK (128u * 1024u)

int vbdev_resolve_base(const char *module, const char *name, struct ferry_bdev *base,
		       const char *base_name, struct ferry_bdev **out)
{
	if (base) {
		if (base_name && ferry_bdev_lookup(base_name) != base) {
			FERRY_ERR(module, "create '%s': base pointer is not the bdev named '%s'",
				  name, base_name);
			return -EINVAL;
		}
		*out = base;
		return 0;
	}
	if (!base_name) {
		FERRY_ERR(module, "create '%s': no base (neither base nor base_name)", name);
		return -EINVAL;
	}
	*out = ferry_bdev_lookup(base_name);
	if (!*out) {
		FERRY_ERR(module, "create '%s': no base bdev '%s'", name, base_name);
		return -ENOENT;
	}
	return 0;
}

static struct vbdev *vb_of(struct ferry_bdev *bdev)
{
	return ferry_bdev_get_ctx(bdev);
}

/* --- buffers --- */

static void vb_free(struct vbdev_io *p)
{
	if (p->vbuf)
		ferry_accel_put_buf(p->chan, p->vbuf, p->vdom, p->vctx);
	free(p->bounce);
	free(p->plain);
	free(p->host);
	free(p);
}

static void set_local(struct ferry_mem *m, struct iovec *iov, void *buf, size_t len)
{
	iov->iov_base = buf;
	iov->iov_len = len;
	*m = (struct ferry_mem){.domain = NULL, .domain_ctx = NULL, .iov = iov, .iovcnt = 1};
}

/* Intermediate buffer of the sequence path: virtual if the pool can back it, else local. */
static int vb_seq_buf(struct vbdev_io *p, struct ferry_accel_chan *chan, uint64_t len)
{
	if (len <= ferry_accel_get_buf_max()) {
		int rc = ferry_accel_get_buf(chan, (size_t)len, &p->vbuf, &p->vdom, &p->vctx);
		if (rc)
			return rc;
		p->chan = chan;
		p->biov.iov_base = p->vbuf;
		p->biov.iov_len = (size_t)len;
		p->bmem = (struct ferry_mem){.domain = p->vdom,
					     .domain_ctx = p->vctx,
					     .iov = &p->biov,
					     .iovcnt = 1};
		return 0;
	}
	/* Larger than any virtual buffer: the sequence works on local memory instead. */
	if (len > SIZE_MAX || !(p->bounce = malloc((size_t)len)))
		return -ENOMEM;
	set_local(&p->bmem, &p->biov, p->bounce, (size_t)len);
	return 0;
}

static struct vbdev_io *vb_io_new(struct vbdev *vb, struct ferry_bdev_io *io)
{
	struct vbdev_io *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->vb = vb;
	p->parent = io;
	p->lba = io->offset_blocks;
	p->nblocks = io->num_blocks;
	return p;
}

static void vb_child(struct vbdev_io *p, enum ferry_bdev_io_type type, uint64_t lba, uint64_t n,
		     const struct ferry_mem *mem, struct ferry_seq *seq, ferry_bdev_io_cb cb)
{
	memset(&p->child, 0, sizeof(p->child));
	p->child.type = type;
	p->child.flags = p->parent->flags;
	p->child.offset_blocks = lba;
	p->child.num_blocks = n;
	if (mem)
		p->child.mem = *mem;
	p->child.seq = seq;
	p->child.cb = cb;
	p->child.cb_arg = p;
}

/* Complete the parent with @status (detail already set) and free everything. */
static void vb_finish(struct vbdev_io *p, int status)
{
	struct ferry_bdev_io *parent = p->parent;
	vb_free(p);
	ferry_bdev_io_complete(parent, status);
}

static void vb_fail_transfer(struct vbdev_io *p, int status)
{
	p->parent->error = FERRY_BDEV_ERR_TRANSFER;
	p->parent->error_block = p->parent->offset_blocks;
	vb_finish(p, status);
}

static void vb_read_error(struct vbdev_io *p, int status)
{
	if (status == -EILSEQ && p->vb->xf->read_error)
		p->vb->xf->read_error(p->vb->ctx, p, p->parent);
}

/* --- READ / WRITE with a sequence --- */

static void vb_seq_done(struct ferry_bdev_io *child, void *arg)
{
	struct vbdev_io *p = arg;
	int status = child->status;
	p->parent->error = child->error;
	p->parent->error_block = child->error_block;
	if (p->parent->type == FERRY_BDEV_IO_READ)
		vb_read_error(p, status);
	p->parent->seq = NULL; /* consumed by the terminal bdev */
	vb_finish(p, status);
}

static int vb_rw_seq(struct vbdev *vb, struct ferry_bdev_io *io)
{
	const char *name = ferry_bdev_get_name(vb->self);
	struct ferry_seq *seq = io->seq;
	struct ferry_accel_chan *chan = ferry_seq_get_chan(seq);
	struct vbdev_io *p = vb_io_new(vb, io);
	if (!p)
		return -ENOMEM;
	int rc = vb_seq_buf(p, chan, vb->xf->base_len(vb->ctx, io->num_blocks));
	if (rc) {
		free(p);
		return rc;
	}
	int wr = io->type == FERRY_BDEV_IO_WRITE;
	rc = wr ? vb->xf->append_write(vb->ctx, p, seq, &p->bmem, &io->mem)
		: vb->xf->append_read(vb->ctx, p, seq, &io->mem, &p->bmem);
	if (rc) {
		FERRY_ERR(COMP, "'%s': cannot append the %s transform to the I/O's sequence: %s",
			  name, wr ? "write" : "read", ferry_strerror(rc));
		vb_free(p);
		return rc; /* nothing appended: the sequence is still the caller's */
	}
	vb_child(p, io->type, io->offset_blocks, io->num_blocks, &p->bmem, seq, vb_seq_done);
	rc = ferry_bdev_submit(vb->base, &p->child);
	if (rc) {
		/* Our step is in the sequence and refers to our buffer: the I/O is consumed. */
		FERRY_ERR(COMP, "'%s': base '%s' refused the %s: %s", name,
			  ferry_bdev_get_name(vb->base), wr ? "write" : "read", ferry_strerror(rc));
		ferry_seq_abort(seq);
		io->seq = NULL;
		vb_finish(p, rc);
	}
	return 0;
}

/* --- READ / WRITE without a sequence: the transform runs here --- */

static void vb_local_done(struct ferry_bdev_io *child, void *arg)
{
	struct vbdev_io *p = arg;
	p->parent->error = child->error;
	p->parent->error_block = child->error_block;
	vb_finish(p, child->status);
}

/* Apply the write transform from local plain data and submit the child. */
static int vb_local_write(struct vbdev_io *p, const struct iovec *plain, uint32_t pcnt)
{
	struct vbdev *vb = p->vb;
	int rc = vb->xf->apply_write(vb->ctx, p, &p->biov, 1, plain, pcnt);
	if (rc)
		return rc;
	vb_child(p, FERRY_BDEV_IO_WRITE, p->lba, p->nblocks, &p->bmem, NULL, vb_local_done);
	return ferry_bdev_submit(vb->base, &p->child);
}

static void vb_pulled(void *arg, int status)
{
	struct vbdev_io *p = arg;
	if (status) {
		vb_fail_transfer(p, status);
		return;
	}
	int rc = vb_local_write(p, &p->piov, 1);
	if (rc)
		vb_finish(p, rc);
}

static void vb_pushed(void *arg, int status)
{
	struct vbdev_io *p = arg;
	if (status)
		vb_fail_transfer(p, status);
	else
		vb_finish(p, 0);
}

static void vb_local_read_done(struct ferry_bdev_io *child, void *arg)
{
	struct vbdev_io *p = arg;
	struct vbdev *vb = p->vb;
	struct ferry_bdev_io *io = p->parent;
	if (child->status) {
		io->error = child->error;
		io->error_block = child->error_block;
		vb_finish(p, child->status);
		return;
	}
	int local = io->mem.domain == NULL;
	const struct iovec *dst = local ? io->mem.iov : &p->piov;
	uint32_t dcnt = local ? io->mem.iovcnt : 1;
	int rc = vb->xf->apply_read(vb->ctx, p, dst, dcnt, &p->biov, 1);
	if (rc) {
		vb_read_error(p, rc);
		vb_finish(p, rc);
		return;
	}
	if (local) {
		vb_finish(p, 0);
		return;
	}
	rc = ferry_memdomain_push(&io->mem, &p->pmem, vb_pushed, p);
	if (rc)
		vb_fail_transfer(p, rc);
}

static int vb_rw_local(struct vbdev *vb, struct ferry_bdev_io *io)
{
	struct vbdev_io *p = vb_io_new(vb, io);
	if (!p)
		return -ENOMEM;
	uint64_t blen = vb->xf->base_len(vb->ctx, io->num_blocks);
	uint64_t plen = io->num_blocks * vb->block_size;
	int local = io->mem.domain == NULL;
	if (blen > SIZE_MAX || !(p->bounce = malloc((size_t)blen)) ||
	    (!local && !(p->plain = malloc((size_t)plen)))) {
		vb_free(p);
		return -ENOMEM;
	}
	set_local(&p->bmem, &p->biov, p->bounce, (size_t)blen);
	if (!local)
		set_local(&p->pmem, &p->piov, p->plain, (size_t)plen);
	int rc;
	if (io->type == FERRY_BDEV_IO_READ) {
		vb_child(p, FERRY_BDEV_IO_READ, io->offset_blocks, io->num_blocks, &p->bmem, NULL,
			 vb_local_read_done);
		rc = ferry_bdev_submit(vb->base, &p->child);
	} else if (local) {
		rc = vb_local_write(p, io->mem.iov, io->mem.iovcnt);
	} else {
		rc = ferry_memdomain_pull(&io->mem, &p->pmem, vb_pulled, p);
	}
	if (rc)
		vb_free(p); /* nothing was started (callbacks only run after a 0 return) */
	return rc;
}

static int vb_rw(struct ferry_bdev *bdev, struct ferry_bdev_io *io)
{
	struct vbdev *vb = vb_of(bdev);
	return io->seq ? vb_rw_seq(vb, io) : vb_rw_local(vb, io);
}

/* --- WRITE ZEROES / UNMAP: transformed zero blocks, one chunk at a time --- */

static void vb_zero_step(struct vbdev_io *p);

static void vb_zero_done(struct ferry_bdev_io *child, void *arg)
{
	struct vbdev_io *p = arg;
	p->waiting = 0;
	if (child->status) {
		p->status = child->status;
		p->parent->error = child->error;
		p->parent->error_block = child->error_block;
	}
	if (!p->looping)
		vb_zero_step(p);
}

/* Iterates instead of recursing when the base completes inside ferry_bdev_submit(). */
static void vb_zero_step(struct vbdev_io *p)
{
	struct vbdev *vb = p->vb;
	uint64_t chunk = p->piov.iov_len / vb->block_size;
	p->looping = 1;
	while (!p->waiting && !p->status && p->next < p->end) {
		uint64_t n = FERRY_MIN(chunk, p->end - p->next);
		p->lba = p->next;
		p->nblocks = n;
		struct iovec plain = {p->plain, (size_t)(n * vb->block_size)};
		p->biov.iov_len = (size_t)vb->xf->base_len(vb->ctx, n);
		int rc = vb->xf->apply_write(vb->ctx, p, &p->biov, 1, &plain, 1);
		if (rc) {
			p->status = rc;
			break;
		}
		vb_child(p, FERRY_BDEV_IO_WRITE, p->lba, n, &p->bmem, NULL, vb_zero_done);
		p->next += n;
		p->waiting = 1;
		rc = ferry_bdev_submit(vb->base, &p->child);
		if (rc) {
			p->waiting = 0;
			p->status = rc;
		}
	}
	p->looping = 0;
	if (!p->waiting && (p->status || p->next >= p->end))
		vb_finish(p, p->status);
}

static int vb_zero(struct ferry_bdev *bdev, struct ferry_bdev_io *io)
{
	struct vbdev *vb = vb_of(bdev);
	if (io->seq) {
		FERRY_ERR(COMP, "'%s': %s cannot carry a sequence", ferry_bdev_get_name(bdev),
			  io->type == FERRY_BDEV_IO_UNMAP ? "unmap" : "write zeroes");
		return -ENOTSUP;
	}
	struct vbdev_io *p = vb_io_new(vb, io);
	if (!p)
		return -ENOMEM;
	uint64_t chunk = FERRY_MAX(1u, VB_ZERO_CHUNK / vb->block_size);
	chunk = FERRY_MIN(chunk, io->num_blocks);
	size_t plen = (size_t)(chunk * vb->block_size);
	size_t blen = (size_t)vb->xf->base_len(vb->ctx, chunk);
	p->plain = calloc(1, plen);
	p->bounce = malloc(blen);
	if (!p->plain || !p->bounce) {
		vb_free(p);
		return -ENOMEM;
	}
	p->piov = (struct iovec){p->plain, plen};
	set_local(&p->bmem, &p->biov, p->bounce, blen);
	p->next = io->offset_blocks;
	p->end = io->offset_blocks + io->num_blocks;
	vb_zero_step(p); /* completes the parent, possibly right away */
	return 0;
}

/* --- FLUSH: passes through --- */

static void vb_flush_done(struct ferry_bdev_io *child, void *arg)
{
	struct vbdev_io *p = arg;
	p->parent->error = child->error;
	p->parent->error_block = child->error_block;
	vb_finish(p, child->status);
}

static int vb_flush(struct ferry_bdev *bdev, struct ferry_bdev_io *io)
{
	struct vbdev *vb = vb_of(bdev);
	struct vbdev_io *p = vb_io_new(vb, io);
	if (!p)
		return -ENOMEM;
	vb_child(p, io->type, io->offset_blocks, io->num_blocks, NULL, io->seq, vb_flush_done);
	int rc = ferry_bdev_submit(vb->base, &p->child);
	if (rc)
		vb_free(p);
	return rc;
}

/* --- COMPARE (without a sequence): read, transform back, compare with the parent's data --- */

static void vb_cmp_check(struct vbdev_io *p)
{
	struct vbdev *vb = p->vb;
	struct ferry_bdev_io *io = p->parent;
	const uint8_t *a = p->plain, *b = p->host;
	for (uint64_t i = 0; i < io->num_blocks; i++) {
		if (memcmp(a + i * vb->block_size, b + i * vb->block_size, vb->block_size)) {
			io->error = FERRY_BDEV_ERR_MISCOMPARE;
			io->error_block = io->offset_blocks + i;
			vb_finish(p, -EILSEQ);
			return;
		}
	}
	vb_finish(p, 0);
}

static void vb_cmp_pulled(void *arg, int status)
{
	struct vbdev_io *p = arg;
	if (status)
		vb_fail_transfer(p, status);
	else
		vb_cmp_check(p);
}

static void vb_cmp_read(struct ferry_bdev_io *child, void *arg)
{
	struct vbdev_io *p = arg;
	struct vbdev *vb = p->vb;
	if (child->status) {
		p->parent->error = child->error;
		p->parent->error_block = child->error_block;
		vb_finish(p, child->status);
		return;
	}
	int rc = vb->xf->apply_read(vb->ctx, p, &p->piov, 1, &p->biov, 1);
	if (rc) {
		vb_read_error(p, rc);
		vb_finish(p, rc);
		return;
	}
	rc = ferry_memdomain_pull(&p->parent->mem, &p->hmem, vb_cmp_pulled, p);
	if (rc)
		vb_fail_transfer(p, rc);
}

static int vb_compare(struct ferry_bdev *bdev, struct ferry_bdev_io *io)
{
	struct vbdev *vb = vb_of(bdev);
	if (io->seq) {
		FERRY_ERR(COMP, "'%s': compare with a sequence is not supported",
			  ferry_bdev_get_name(bdev));
		return -ENOTSUP;
	}
	struct vbdev_io *p = vb_io_new(vb, io);
	if (!p)
		return -ENOMEM;
	uint64_t blen = vb->xf->base_len(vb->ctx, io->num_blocks);
	uint64_t plen = io->num_blocks * vb->block_size;
	if (blen > SIZE_MAX || plen > SIZE_MAX || !(p->bounce = malloc((size_t)blen)) ||
	    !(p->plain = malloc((size_t)plen)) || !(p->host = malloc((size_t)plen))) {
		vb_free(p);
		return -ENOMEM;
	}
	set_local(&p->bmem, &p->biov, p->bounce, (size_t)blen);
	set_local(&p->pmem, &p->piov, p->plain, (size_t)plen);
	set_local(&p->hmem, &p->hiov, p->host, (size_t)plen);
	vb_child(p, FERRY_BDEV_IO_READ, io->offset_blocks, io->num_blocks, &p->bmem, NULL,
		 vb_cmp_read);
	int rc = ferry_bdev_submit(vb->base, &p->child);
	if (rc)
		vb_free(p);
	return rc;
}

/* --- creation --- */

static void vb_destroy(struct ferry_bdev *bdev)
{
	struct vbdev *vb = vb_of(bdev);
	if (!vb)
		return;
	ferry_bdev_release(vb->base);
	if (vb->xf->destroy)
		vb->xf->destroy(vb->ctx);
	free(vb);
}

static int vb_poll(struct ferry_bdev *bdev, uint32_t max)
{
	struct vbdev *vb = vb_of(bdev);
	return vb ? ferry_bdev_poll(vb->base, max) : 0;
}

static const struct ferry_bdev_ops vb_ops = {
	.abi_version = FERRY_BDEV_OPS_ABI,
	.read = vb_rw,
	.write = vb_rw,
	.flush = vb_flush,
	.write_zeroes = vb_zero,
	.unmap = vb_zero,
	.compare = vb_compare,
	.destroy = vb_destroy,
	.poll = vb_poll,
};

int vbdev_create(const struct vbdev_args *a, struct ferry_bdev **out)
{
	int rc;
	struct vbdev *vb;
	if (!ferry_bdev_io_type_supported(a->base, FERRY_BDEV_IO_READ) ||
	    !ferry_bdev_io_type_supported(a->base, FERRY_BDEV_IO_WRITE)) {
		FERRY_ERR(a->module, "create '%s': base '%s' does not support reads and writes",
			  a->name, ferry_bdev_get_name(a->base));
		rc = -EINVAL;
		goto err_xf;
	}
	if (ferry_bdev_lookup(a->name)) {
		FERRY_ERR(a->module, "create: a bdev named '%s' exists", a->name);
		rc = -EEXIST;
		goto err_xf;
	}
	char owner[FERRY_BDEV_NAME_MAX + 16];
	snprintf(owner, sizeof(owner), "%s %s", a->module, a->name);
	rc = ferry_bdev_claim(a->base, owner);
	if (rc)
		goto err_xf;
	vb = calloc(1, sizeof(*vb));
	if (!vb) {
		rc = -ENOMEM;
		goto err_release;
	}
	vb->base = a->base;
	vb->xf = a->xf;
	vb->ctx = a->ctx;
	vb->block_size = a->block_size;
	struct ferry_bdev_opts bo = {
		.size = sizeof(bo),
		.name = a->name,
		.module = a->module,
		.block_size = a->block_size,
		.num_blocks = ferry_bdev_get_num_blocks(a->base),
		/* Not FERRY_BDEV_F_UNWRITTEN_ZEROES: a never-written base block read back through
		 * the transform is not zeroes (crypto decrypts it to noise; dif finds a zero PI
		 * whose tags fail the check). UNMAP is emulated as writing transformed zeroes, but
		 * the flag covers never-written blocks too. */
		.flags = ferry_bdev_get_flags(a->base) & ~FERRY_BDEV_F_UNWRITTEN_ZEROES,
		.ops = &vb_ops,
		.ctx = vb,
	};
	rc = ferry_bdev_create(&bo, &vb->self);
	if (rc)
		goto err_free;
	*out = vb->self;
	return 0;

err_free:
	free(vb);
err_release:
	ferry_bdev_release(a->base);
err_xf:
	/* the transform's context is the bdev's from the call on, also when it fails */
	if (a->xf->destroy)
		a->xf->destroy(a->ctx);
	return rc;
}
