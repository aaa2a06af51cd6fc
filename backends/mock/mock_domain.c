/*
 * The PCIe function memory domains of a mock device ("<dev>.<fn>"): pull, push and memzero
 * through the device's DMA engine (one internal channel per function; a completion runs from
 * the domain's poll on the thread that started the operation), translate between functions,
 * invalidate, and for NICs that reach host memory through the SoC's mapping: export_local
 * (IOVAs -> this process's mapping of the host-RAM memfd, through the function's IOMMU) and
 * map_gen (the function's IOMMU generation, in the shared memory the host programs).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mock_internal.h"
#include <ferry/module/memdomain.h>

/* One asynchronous domain operation in flight. */
struct mock_dreq {
	struct ferry_xfer x;
	ferry_memdomain_cb cb;
	void *cb_arg;
	const char *op;         /* "pull", "push", "memzero": for the failure message */
	pthread_t owner;        /* the thread that started it: its callback runs there */
	struct mock_dreq *next; /* fn->pend list once reaped */
};

struct mock_fn *mock_fn_of(struct mock_dev *dev, const struct ferry_memdomain *d)
{
	for (uint32_t i = 0; d && i < dev->nfn; i++)
		if (dev->fn[i].domain == d)
			return &dev->fn[i];
	return NULL;
}

/* Checks the remote range now (nothing moves if it fails) and queues the operation. */
static int dom_submit(struct ferry_memdomain *d, void *ctx, const char *op, int write,
		      const struct iovec *remote, uint32_t rcnt, const struct iovec *local,
		      uint32_t lcnt, ferry_memdomain_cb cb, void *cb_arg)
{
	struct mock_fn *fn = ferry_memdomain_get_ctx(d);
	struct mock_dev *dev = fn->dev;
	uint64_t len = ferry_iov_length(remote, rcnt);
	struct ferry_mem rm = {.domain = d,
			       .domain_ctx = ctx,
			       .iov = (struct iovec *)remote,
			       .iovcnt = rcnt};
	uint32_t segs = 0;
	int st = mock_resolve(dev, &rm, len, write, NULL, &segs);
	if (st > 0) {
		char why[160];
		if (st == FERRY_XFER_PAGE_FAULT)
			mock_fault_explain(fn, remote, rcnt, write, why, sizeof(why));
		else
			snprintf(why, sizeof(why), "%s", ferry_xfer_status_str(st));
		MOCK_ERR("%s %s.%s: %s; nothing transferred", op, dev->name, fn->name, why);
		return -EFAULT;
	}
	struct mock_dreq *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	struct ferry_mem lm = {.domain = NULL, .iov = (struct iovec *)local, .iovcnt = lcnt};
	r->x.len = len;
	if (write) {
		r->x.dst = rm;
		if (local)
			r->x.src = lm;
	} else {
		r->x.src = rm;
		r->x.dst = lm;
	}
	r->cb = cb;
	r->cb_arg = cb_arg;
	r->op = op;
	r->owner = pthread_self();
	pthread_mutex_lock(&fn->lock);
	int ok = mock_chan_push(fn->chan, &r->x, local == NULL);
	pthread_mutex_unlock(&fn->lock);
	if (!ok) {
		free(r);
		MOCK_ERR("%s %s.%s: %u operations already in flight; poll the domain and retry", op,
			 dev->name, fn->name, fn->chan->size);
		return -EAGAIN;
	}
	atomic_fetch_add_explicit(&dev->st_domain_ops, 1, memory_order_relaxed);
	mock_engine_kick(dev);
	return 0;
}

static int dom_pull(struct ferry_memdomain *d, void *ctx, const struct iovec *src, uint32_t sc,
		    const struct iovec *dst, uint32_t dc, ferry_memdomain_cb cb, void *arg)
{
	return dom_submit(d, ctx, "pull", 0, src, sc, dst, dc, cb, arg);
}

static int dom_push(struct ferry_memdomain *d, void *ctx, const struct iovec *dst, uint32_t dc,
		    const struct iovec *src, uint32_t sc, ferry_memdomain_cb cb, void *arg)
{
	return dom_submit(d, ctx, "push", 1, dst, dc, src, sc, cb, arg);
}

static int dom_memzero(struct ferry_memdomain *d, void *ctx, const struct iovec *iov, uint32_t cnt,
		       ferry_memdomain_cb cb, void *arg)
{
	return dom_submit(d, ctx, "memzero", 1, iov, cnt, NULL, 0, cb, arg);
}

static int dom_translate(struct ferry_memdomain *d, void *ctx, const struct iovec *src, uint32_t sc,
			 struct ferry_memdomain *target, struct ferry_mem *out)
{
	struct mock_fn *fn = ferry_memdomain_get_ctx(d);
	struct mock_fn *to = mock_fn_of(fn->dev, target);
	if (!to) {
		MOCK_ERR("translate %s.%s -> %s: not a function of the same device (the SoC reaches "
			 "host memory only through the DMA engine)",
			 fn->dev->name, fn->name, ferry_memdomain_get_name(target));
		return -EXDEV;
	}
	int rc = mock_translate(fn, src, sc, to, out);
	if (rc == 0)
		out->domain_ctx = ctx;
	return rc;
}

static int dom_invalidate(struct ferry_memdomain *d, void *ctx, const struct iovec *iov,
			  uint32_t cnt)
{
	struct mock_fn *fn = ferry_memdomain_get_ctx(d);
	struct mock_dev *dev = fn->dev;
	for (uint32_t i = 0; i < cnt; i++) {
		uint64_t a = (uint64_t)(uintptr_t)iov[i].iov_base, l = iov[i].iov_len;
		if (a >= dev->iova_size || l > dev->iova_size - a) {
			MOCK_ERR("invalidate %s.%s: IOVA 0x%llx+0x%llx leaves the IOVA space "
				 "(0x%llx bytes)",
				 dev->name, fn->name, (unsigned long long)a, (unsigned long long)l,
				 (unsigned long long)dev->iova_size);
			return -EFAULT;
		}
	}
	/* Any function may have cached a reverse map covering these host pages. */
	mock_rmap_drop(dev);
	atomic_fetch_add_explicit(&dev->st_invalidations, 1, memory_order_relaxed);
	return 0;
}

/*
 * The SoC-local backing of IOVAs of the function: every page checked in its IOMMU table now
 * (mapped; WRITE permission with @p write, else READ), pages adjacent in host RAM merged into
 * one segment, each named by its pointer in this process's mapping and its offset in the
 * memfd.
 */
static int dom_export_local(struct ferry_memdomain *d, void *ctx, const struct iovec *iov,
			    uint32_t cnt, uint32_t flags, struct ferry_mem_backing *out, uint32_t *n)
{
	int write = (flags & FERRY_MEM_EXPORT_F_WRITE) != 0;
	struct mock_fn *fn = ferry_memdomain_get_ctx(d);
	struct mock_dev *dev = fn->dev;
	uint64_t len = ferry_iov_length(iov, cnt);
	struct ferry_mem m = {.domain = d,
			      .domain_ctx = ctx,
			      .iov = (struct iovec *)iov,
			      .iovcnt = cnt};
	uint32_t need = 0;
	int st = mock_resolve(dev, &m, len, write, NULL, &need);
	if (st > 0) {
		char why[160];
		if (st == FERRY_XFER_PAGE_FAULT)
			mock_fault_explain(fn, iov, cnt, write, why, sizeof(why));
		else
			snprintf(why, sizeof(why), "%s", ferry_xfer_status_str(st));
		if (!(flags & FERRY_MEM_EXPORT_F_PROBE))
			MOCK_ERR("export_local %s.%s: %s", dev->name, fn->name, why);
		return -EFAULT;
	}
	if (need > *n) {
		*n = need; /* a size answer (module/memdomain.h): not logged */
		return -ENOBUFS;
	}
	struct iovec *seg = need ? malloc(sizeof(*seg) * need) : NULL;
	if (need && !seg) {
		MOCK_ERR("export_local %s.%s: out of memory", dev->name, fn->name);
		return -ENOMEM;
	}
	uint32_t got = need;
	st = mock_resolve(dev, &m, len, write, seg, &got);
	if (st != 0) {
		/* The host changed the table between the two walks. */
		free(seg);
		MOCK_ERR("export_local %s.%s: the mapping changed while it was exported", dev->name,
			 fn->name);
		return st == -ENOBUFS ? -EAGAIN : -EFAULT;
	}
	for (uint32_t i = 0; i < got; i++) {
		out[i].local = seg[i].iov_base;
		out[i].len = seg[i].iov_len;
		out[i].fd = dev->shm->fd;
		out[i].fd_off = (uint64_t)((uint8_t *)seg[i].iov_base - dev->shm->base);
	}
	free(seg);
	*n = got;
	return 0;
}

static uint64_t dom_map_gen(struct ferry_memdomain *d)
{
	struct mock_fn *fn = ferry_memdomain_get_ctx(d);
	return atomic_load_explicit(fn->gen, memory_order_acquire);
}

#define POLL_BATCH 32u

/*
 * Completions go back to the thread that started the operation: several threads (each with
 * its own accel channel or bdev) may share a function's domain, and each expects its
 * callbacks on its own thread. The ring is reaped whole into fn->pend (in completion order);
 * a poll then takes the calling thread's entries, in order, at most @p max of them.
 */
static int dom_poll(struct ferry_memdomain *d, uint32_t max)
{
	struct mock_fn *fn = ferry_memdomain_get_ctx(d);
	struct ferry_xfer *done[POLL_BATCH];
	struct mock_dreq *mine = NULL, **mine_tail = &mine;
	pthread_t self = pthread_self();
	uint32_t taken = 0;
	pthread_mutex_lock(&fn->lock);
	for (;;) {
		uint32_t n = mock_chan_reap(fn->chan, done, POLL_BATCH);
		for (uint32_t i = 0; i < n; i++) {
			struct mock_dreq *r = (struct mock_dreq *)(void *)done[i];
			r->next = NULL;
			if (fn->pend_tail)
				fn->pend_tail->next = r;
			else
				fn->pend_head = r;
			fn->pend_tail = r;
		}
		if (n < POLL_BATCH)
			break;
	}
	struct mock_dreq **pp = &fn->pend_head, *prev = NULL;
	while (*pp && taken < max) {
		struct mock_dreq *r = *pp;
		if (!pthread_equal(r->owner, self)) {
			prev = r;
			pp = &r->next;
			continue;
		}
		*pp = r->next;
		if (fn->pend_tail == r)
			fn->pend_tail = prev;
		r->next = NULL;
		*mine_tail = r;
		mine_tail = &r->next;
		taken++;
	}
	pthread_mutex_unlock(&fn->lock);
	/* Callbacks run without the lock: they may start new operations. */
	while (mine) {
		struct mock_dreq *r = mine;
		mine = r->next;
		ferry_memdomain_cb cb = r->cb;
		void *arg = r->cb_arg;
		int st = ferry_hal_xfer_status_errno(r->x.status);
		/* Failed on the engine thread (an injected error, a page unmapped since the
		 * submit): the reason reaches the callback through ferry_last_error(). */
		if (st)
			ferry_set_last_error("mock", "%s %s.%s: %s on the engine; nothing transferred",
					     r->op, fn->dev->name, fn->name,
					     ferry_xfer_status_str(r->x.status));
		free(r);
		cb(arg, st);
	}
	return (int)taken;
}

static const struct ferry_memdomain_ops mock_domain_ops = {
	.abi_version = FERRY_MEMDOMAIN_OPS_ABI,
	.pull = dom_pull,
	.push = dom_push,
	.memzero = dom_memzero,
	.translate = dom_translate,
	.invalidate = dom_invalidate,
	.poll = dom_poll,
	.export_local = dom_export_local,
	.map_gen = dom_map_gen,
};

int mock_domains_create(struct mock_dev *dev)
{
	for (uint32_t i = 0; i < dev->nfn; i++) {
		struct mock_fn *fn = &dev->fn[i];
		char name[FERRY_MEMDOMAIN_NAME_MAX];
		int rc = mock_chan_open(dev, FERRY_MOCK_CHAN_FN(i), dev->ring_default, 0,
					&fn->chan);
		if (rc)
			return rc;
		snprintf(name, sizeof(name), "%s.%s", dev->name, fn->name);
		struct ferry_memdomain_opts o = {.size = sizeof(o),
						 .type = FERRY_MEMDOMAIN_PCIE,
						 .name = name,
						 .ops = &mock_domain_ops,
						 .user_ctx = fn};
		rc = ferry_memdomain_create(&o, &fn->domain);
		if (rc) {
			MOCK_ERR("%s: cannot create memory domain '%s': %d", dev->name, name, rc);
			return rc;
		}
	}
	return 0;
}

void mock_domains_destroy(struct mock_dev *dev)
{
	for (uint32_t i = 0; i < dev->nfn; i++) {
		struct mock_fn *fn = &dev->fn[i];
		ferry_memdomain_destroy(fn->domain);
		fn->domain = NULL;
		if (!fn->chan)
			continue;
		mock_chan_detach(fn->chan);
		uint64_t tail = atomic_load_explicit(&fn->chan->tail, memory_order_acquire);
		if (tail != fn->chan->head)
			MOCK_WARN("%s.%s: %llu operation(s) dropped at close (their callbacks never "
				  "run)",
				  dev->name, fn->name, (unsigned long long)(tail - fn->chan->head));
		for (uint64_t k = fn->chan->head; k < tail; k++)
			free(fn->chan->ring[k % fn->chan->size].x);
		mock_chan_close(fn->chan);
		fn->chan = NULL;
		if (fn->pend_head)
			MOCK_WARN("%s.%s: completed operation(s) never polled by their thread were "
				  "dropped at close (their callbacks never run)",
				  dev->name, fn->name);
		while (fn->pend_head) {
			struct mock_dreq *r = fn->pend_head;
			fn->pend_head = r->next;
			free(r);
		}
		fn->pend_tail = NULL;
	}
}
