/*
 * Transforming virtual bdevs (crypto, dif): the machinery they share. A module describes its
 * data transform (::vbdev_xform); this layer claims the base, builds child I/Os, takes the
 * intermediate buffers, appends the transform to the I/O's accel sequence or runs it itself
 * when the I/O carries none, and emulates WRITE ZEROES / UNMAP and COMPARE. Never installed.
 */
#ifndef FERRY_BDEV_VIRT_H
#define FERRY_BDEV_VIRT_H

#include <stdint.h>
#include <sys/uio.h>
#include <ferry/accel.h>
#include <ferry/bdev.h>
#include <ferry/dif.h>

/* One parent I/O in flight through a transforming virtual bdev. */
struct vbdev_io {
	struct ferry_bdev_io child;   /* the I/O sent to the base */
	struct ferry_bdev_io *parent; /* the I/O submitted to us */
	struct vbdev *vb;
	uint64_t lba;     /* first block of the current transform (a chunk for write zeroes) */
	uint64_t nblocks; /* blocks of the current transform */
	/* The base's data: a virtual buffer (seq path) or local memory (bounce). */
	struct ferry_accel_chan *chan;
	void *vbuf;
	struct ferry_memdomain *vdom;
	void *vctx;
	void *bounce;
	struct iovec biov;
	struct ferry_mem bmem;
	/* Plain (the upper side's) data in local memory when the parent's is in a remote domain,
	 * and a second local buffer for compare. */
	void *plain;
	struct iovec piov;
	struct ferry_mem pmem;
	void *host;
	struct iovec hiov;
	struct ferry_mem hmem;
	/* Write zeroes / unmap emulation. */
	uint64_t next, end;
	int status;
	uint8_t waiting;
	uint8_t looping;
	/* Detail of a PI failure recorded by the dif transform. */
	struct ferry_dif_error dif_err;
};

/*
 * A module's transform. "plain" is the data the upper side sees (nblocks * block_size of the
 * virtual bdev), "base" the data the base stores (base_len(nblocks) bytes).
 */
struct vbdev_xform {
	/* Bytes of base data for @n blocks. Required. */
	uint64_t (*base_len)(void *ctx, uint64_t n);
	/* Append plain -> base (write) / base -> plain (read) for p->lba, p->nblocks to @seq.
	 * 0 or a negative errno with nothing appended. Required. */
	int (*append_write)(void *ctx, struct vbdev_io *p, struct ferry_seq *seq,
			    const struct ferry_mem *base, const struct ferry_mem *plain);
	int (*append_read)(void *ctx, struct vbdev_io *p, struct ferry_seq *seq,
			   const struct ferry_mem *plain, const struct ferry_mem *base);
	/* The same on local memory, synchronously. Required. */
	int (*apply_write)(void *ctx, struct vbdev_io *p, const struct iovec *base, uint32_t bcnt,
			   const struct iovec *plain, uint32_t pcnt);
	int (*apply_read)(void *ctx, struct vbdev_io *p, const struct iovec *plain, uint32_t pcnt,
			  const struct iovec *base, uint32_t bcnt);
	/* Optional: a read or compare failed with -EILSEQ; set parent->error / error_block from
	 * what the module recorded in @p (e.g. p->dif_err). */
	void (*read_error)(void *ctx, struct vbdev_io *p, struct ferry_bdev_io *parent);
	/* Optional: free the module's context when the bdev is destroyed. */
	void (*destroy)(void *ctx);
};

/* A transforming virtual bdev. */
struct vbdev {
	struct ferry_bdev *self;
	struct ferry_bdev *base;
	const struct vbdev_xform *xf;
	void *ctx;
	uint32_t block_size; /* of the virtual bdev */
};

/* What vbdev_create() needs. */
struct vbdev_args {
	const char *name;
	const char *module; /* "crypto", "dif": logs, claim owner, ferry_bdev_get_module() */
	struct ferry_bdev *base;
	uint32_t block_size; /* the virtual bdev's (no metadata) */
	const struct vbdev_xform *xf;
	void *ctx; /* the module's, passed to every xform callback; freed by xf->destroy */
};

/*
 * Resolve the base of a create call: @p base if non-NULL (and then @p base_name, if given,
 * must name it), else the bdev named @p base_name. 0 or -EINVAL / -ENOENT (logged).
 */
int vbdev_resolve_base(const char *module, const char *name, struct ferry_bdev *base,
		       const char *base_name, struct ferry_bdev **out);

/*
 * Claim the base, register the bdev (same number of blocks as the base, no metadata) and
 * take ownership of @p a->ctx (freed with xf->destroy on failure too). 0 or a negative errno.
 */
int vbdev_create(const struct vbdev_args *a, struct ferry_bdev **out);

#endif /* FERRY_BDEV_VIRT_H */
