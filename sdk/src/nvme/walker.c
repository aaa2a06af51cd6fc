/*
 * The PRP/SGL walker (see nvme_walker.h): a resumable state machine that validates a command's
 * data pointer and produces host address ranges. It reads PRP lists and SGL segments only
 * through the caller (NEED_READ), never more entries than the transfer still needs, and
 * rejects misaligned PRP entries, unsupported SGL descriptor types, misplaced segment
 * descriptors, lengths that do not add up, too many descriptors and address arithmetic that
 * wraps around 2^64.
 */
#include <stddef.h>
#include <string.h>
#include "nvme_walker.h"

enum {
	ST_START,
	ST_PRP_LIST,      /* read the next chunk of list entries */
	ST_PRP_DATA_WAIT, /* data entries requested */
	ST_PRP_CHAIN_WAIT, /* chain pointer requested */
	ST_SGL_SEG,       /* read the next chunk of the current segment */
	ST_SGL_SEG_WAIT,  /* descriptors requested */
	ST_DONE,
	ST_ERROR,
};

#define GEN(sc) FERRY_NVME_STATUS(FERRY_NVME_SCT_GENERIC, sc)

static int fail(struct nvme_walker *w, uint16_t status)
{
	w->status = status;
	w->state = ST_ERROR;
	return NVME_WALK_ERROR;
}

static int done(struct nvme_walker *w)
{
	w->state = ST_DONE;
	return NVME_WALK_DONE;
}

static int need_read(struct nvme_walker *w, uint64_t addr, uint32_t len, uint32_t count, int state)
{
	w->rd_addr = addr;
	w->rd_len = len;
	w->rd_count = count;
	w->reads++;
	w->state = state;
	return NVME_WALK_NEED_READ;
}

/* Append a range; 0 or an NVMe status. */
static uint16_t add_seg(struct nvme_walker *w, uint64_t addr, uint64_t len, uint8_t kind, int sgl)
{
	if (len == 0)
		return 0;
	if (kind == NVME_WALK_SEG_BUCKET)
		addr = 0;
	else if (len - 1 > UINT64_MAX - addr)
		return sgl ? GEN(FERRY_NVME_SC_DATA_SGL_LEN) : GEN(FERRY_NVME_SC_DATA_XFER_ERROR);
	if (len > w->p.xfer_len - w->mapped)
		return sgl ? GEN(FERRY_NVME_SC_DATA_SGL_LEN) : GEN(FERRY_NVME_SC_INTERNAL);
	if (kind == NVME_WALK_SEG_BUCKET)
		w->has_bucket = 1;
	if (w->iovcnt > 0) {
		struct iovec *last = &w->iov[w->iovcnt - 1];
		uint8_t lk = w->kind ? w->kind[w->iovcnt - 1] : NVME_WALK_SEG_DATA;
		uint64_t lb = (uint64_t)(uintptr_t)last->iov_base;
		/* Merge with the previous range if contiguous, never across 2^64. */
		if (lk == kind && (kind == NVME_WALK_SEG_BUCKET ||
				   ((uint64_t)last->iov_len <= UINT64_MAX - lb &&
				    lb + last->iov_len == addr))) {
			last->iov_len += (size_t)len;
			w->mapped += len;
			return 0;
		}
	}
	if (w->iovcnt >= w->iov_cap)
		return sgl ? GEN(FERRY_NVME_SC_INVALID_SGL_NUM) : GEN(FERRY_NVME_SC_INTERNAL);
	w->iov[w->iovcnt].iov_base = (void *)(uintptr_t)addr;
	w->iov[w->iovcnt].iov_len = (size_t)len;
	if (w->kind)
		w->kind[w->iovcnt] = kind;
	w->iovcnt++;
	w->mapped += len;
	return 0;
}

void nvme_walker_init(struct nvme_walker *w, const struct nvme_walk_params *p, struct iovec *iov,
		      uint8_t *kind, uint32_t iov_cap)
{
	memset(w, 0, offsetof(struct nvme_walker, rdbuf));
	w->p = *p;
	w->dptr = p->sqe->dptr;
	w->psdt = (uint8_t)(p->sqe->flags >> FERRY_NVME_FLAGS_PSDT_SHIFT);
	w->p.sqe = NULL;
	w->iov = iov;
	w->kind = kind;
	w->iov_cap = iov_cap;
	w->state = ST_START;
}

uint32_t nvme_walk_prp_max_iov(uint64_t xfer_len, uint32_t page_size)
{
	uint64_t n = xfer_len / page_size + 2;
	return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

/* ---- PRP ---------------------------------------------------------------------------- */

static int prp_list(struct nvme_walker *w);

static int prp_start(struct nvme_walker *w)
{
	uint64_t ps = w->p.page_size, mask = ps - 1;
	uint64_t prp1 = w->dptr.prp.prp1, prp2 = w->dptr.prp.prp2;
	uint16_t st;

	if (prp1 & 3)
		return fail(w, GEN(FERRY_NVME_SC_PRP_OFFSET));
	uint64_t n1 = ps - (prp1 & mask);
	if (n1 > w->p.xfer_len)
		n1 = w->p.xfer_len;
	if ((st = add_seg(w, prp1, n1, NVME_WALK_SEG_DATA, 0)))
		return fail(w, st);
	uint64_t rem = w->p.xfer_len - w->mapped;
	if (rem == 0)
		return done(w);
	if (rem <= ps) {
		if (prp2 & mask)
			return fail(w, GEN(FERRY_NVME_SC_PRP_OFFSET));
		if ((st = add_seg(w, prp2, rem, NVME_WALK_SEG_DATA, 0)))
			return fail(w, st);
		return done(w);
	}
	/* PRP2 points to a PRP list; it may start inside a page, qword aligned. */
	if (prp2 & 7)
		return fail(w, GEN(FERRY_NVME_SC_PRP_OFFSET));
	w->list_addr = prp2;
	w->slots_left = (uint32_t)((ps - (prp2 & mask)) / 8);
	w->state = ST_PRP_LIST;
	return prp_list(w);
}

static int prp_list(struct nvme_walker *w)
{
	uint64_t ps = w->p.page_size;
	uint64_t rem = w->p.xfer_len - w->mapped;
	uint64_t needed = (rem + ps - 1) / ps;

	if (w->slots_left == 1 && needed > 1)
		return need_read(w, w->list_addr, 8, 1, ST_PRP_CHAIN_WAIT);
	uint64_t k = needed <= w->slots_left ? needed : w->slots_left - 1;
	if (k > NVME_WALK_RDBUF / 8)
		k = NVME_WALK_RDBUF / 8;
	return need_read(w, w->list_addr, (uint32_t)k * 8, (uint32_t)k, ST_PRP_DATA_WAIT);
}

static int prp_data(struct nvme_walker *w)
{
	uint64_t ps = w->p.page_size, mask = ps - 1;
	uint16_t st;

	for (uint32_t i = 0; i < w->rd_count; i++) {
		uint64_t e = w->rdbuf[i];
		if (e & mask)
			return fail(w, GEN(FERRY_NVME_SC_PRP_OFFSET));
		uint64_t rem = w->p.xfer_len - w->mapped;
		if ((st = add_seg(w, e, rem < ps ? rem : ps, NVME_WALK_SEG_DATA, 0)))
			return fail(w, st);
	}
	w->list_addr += (uint64_t)w->rd_count * 8;
	w->slots_left -= w->rd_count;
	if (w->mapped == w->p.xfer_len)
		return done(w);
	w->state = ST_PRP_LIST;
	return prp_list(w);
}

static int prp_chain(struct nvme_walker *w)
{
	uint64_t e = w->rdbuf[0];
	if (e & (w->p.page_size - 1))
		return fail(w, GEN(FERRY_NVME_SC_PRP_OFFSET));
	w->list_addr = e;
	w->slots_left = w->p.page_size / 8;
	w->state = ST_PRP_LIST;
	return prp_list(w);
}

/* ---- SGL ---------------------------------------------------------------------------- */

/* Enter the segment described by @p d: 0, or NVME_WALK_ERROR. */
static int sgl_segment(struct nvme_walker *w, const struct ferry_nvme_sgl_desc *d, int last)
{
	if (d->length == 0 || (d->length % 16) != 0 ||
	    (uint64_t)d->length - 1 > UINT64_MAX - d->address)
		return fail(w, GEN(FERRY_NVME_SC_INVALID_SGL_SEG));
	uint32_t n = d->length / 16;
	if (n > w->p.max_sgl_desc - w->ndesc)
		return fail(w, GEN(FERRY_NVME_SC_INVALID_SGL_NUM));
	w->list_addr = d->address;
	w->slots_left = n;
	w->last_segment = last;
	w->state = ST_SGL_SEG;
	return 0;
}

static int sgl_seg_read(struct nvme_walker *w)
{
	uint32_t k = w->slots_left;
	if (k > NVME_WALK_RDBUF / 16)
		k = NVME_WALK_RDBUF / 16;
	return need_read(w, w->list_addr, k * 16, k, ST_SGL_SEG_WAIT);
}

/* A data block or bit bucket descriptor; 0 or an NVMe status. */
static uint16_t sgl_data(struct nvme_walker *w, const struct ferry_nvme_sgl_desc *d)
{
	uint8_t type = d->id >> 4, sub = d->id & 0xf;
	if (sub != FERRY_NVME_SGL_SUBTYPE_ADDRESS)
		return GEN(FERRY_NVME_SC_SGL_TYPE);
	if (type == FERRY_NVME_SGL_BIT_BUCKET) {
		if (!w->p.c2h || !w->kind)
			return GEN(FERRY_NVME_SC_SGL_TYPE);
		return add_seg(w, 0, d->length, NVME_WALK_SEG_BUCKET, 1);
	}
	return add_seg(w, d->address, d->length, NVME_WALK_SEG_DATA, 1);
}

static int sgl_end(struct nvme_walker *w)
{
	if (w->mapped != w->p.xfer_len)
		return fail(w, GEN(FERRY_NVME_SC_DATA_SGL_LEN));
	return done(w);
}

static int sgl_descs(struct nvme_walker *w)
{
	struct ferry_nvme_sgl_desc chain = {0}, dd;
	int chained = 0, chain_last = 0;
	uint16_t st;

	for (uint32_t i = 0; i < w->rd_count; i++) {
		const struct ferry_nvme_sgl_desc *d = &dd;
		memcpy(&dd, (const uint8_t *)w->rdbuf + (size_t)i * 16, sizeof(dd));
		int last_in_seg = (w->slots_left - i == 1);
		uint8_t type = d->id >> 4;
		w->ndesc++;
		switch (type) {
		case FERRY_NVME_SGL_DATA_BLOCK:
		case FERRY_NVME_SGL_BIT_BUCKET:
			if ((st = sgl_data(w, d)))
				return fail(w, st);
			break;
		case FERRY_NVME_SGL_SEGMENT:
		case FERRY_NVME_SGL_LAST_SEGMENT:
			if ((d->id & 0xf) != FERRY_NVME_SGL_SUBTYPE_ADDRESS)
				return fail(w, GEN(FERRY_NVME_SC_SGL_TYPE));
			/* Only the last descriptor of a segment that is not the last segment
			 * may point to another segment. */
			if (!last_in_seg || w->last_segment)
				return fail(w, GEN(FERRY_NVME_SC_INVALID_SGL_SEG));
			chain = *d;
			chained = 1;
			chain_last = (type == FERRY_NVME_SGL_LAST_SEGMENT);
			break;
		default:
			return fail(w, GEN(FERRY_NVME_SC_SGL_TYPE));
		}
	}
	w->list_addr += (uint64_t)w->rd_count * 16;
	w->slots_left -= w->rd_count;
	if (chained) {
		if (sgl_segment(w, &chain, chain_last) == NVME_WALK_ERROR)
			return NVME_WALK_ERROR;
		return sgl_seg_read(w);
	}
	if (w->slots_left > 0)
		return sgl_seg_read(w);
	return sgl_end(w);
}

static int sgl_start(struct nvme_walker *w)
{
	const struct ferry_nvme_sgl_desc *d = &w->dptr.sgl;
	uint8_t type = d->id >> 4;
	uint16_t st;

	if (!w->p.allow_sgl || w->psdt > FERRY_NVME_PSDT_SGL_MPTR_SGL)
		return fail(w, GEN(FERRY_NVME_SC_INVALID_FIELD));
	if (w->p.max_sgl_desc == 0)
		return fail(w, GEN(FERRY_NVME_SC_INVALID_SGL_NUM));
	w->ndesc = 1;
	switch (type) {
	case FERRY_NVME_SGL_DATA_BLOCK:
	case FERRY_NVME_SGL_BIT_BUCKET:
		if ((st = sgl_data(w, d)))
			return fail(w, st);
		return sgl_end(w);
	case FERRY_NVME_SGL_SEGMENT:
	case FERRY_NVME_SGL_LAST_SEGMENT:
		if ((d->id & 0xf) != FERRY_NVME_SGL_SUBTYPE_ADDRESS)
			return fail(w, GEN(FERRY_NVME_SC_SGL_TYPE));
		if (sgl_segment(w, d, type == FERRY_NVME_SGL_LAST_SEGMENT) == NVME_WALK_ERROR)
			return NVME_WALK_ERROR;
		return sgl_seg_read(w);
	default:
		return fail(w, GEN(FERRY_NVME_SC_SGL_TYPE));
	}
}

/* ---- driver ------------------------------------------------------------------------- */

int nvme_walker_step(struct nvme_walker *w)
{
	switch (w->state) {
	case ST_START:
		if (w->p.xfer_len == 0)
			return done(w);
		if (w->p.page_size < 4096 || (w->p.page_size & (w->p.page_size - 1)))
			return fail(w, GEN(FERRY_NVME_SC_INTERNAL));
		return w->psdt == FERRY_NVME_PSDT_PRP ? prp_start(w) : sgl_start(w);
	case ST_PRP_LIST:
		return prp_list(w);
	case ST_PRP_DATA_WAIT:
		return prp_data(w);
	case ST_PRP_CHAIN_WAIT:
		return prp_chain(w);
	case ST_SGL_SEG:
		return sgl_seg_read(w);
	case ST_SGL_SEG_WAIT:
		return sgl_descs(w);
	case ST_DONE:
		return NVME_WALK_DONE;
	default:
		return NVME_WALK_ERROR;
	}
}

int nvme_walker_read_failed(struct nvme_walker *w)
{
	return fail(w, GEN(FERRY_NVME_SC_DATA_XFER_ERROR));
}

int nvme_walk_sync(struct nvme_walker *w, nvme_walk_read_fn read, void *ctx)
{
	int rc = nvme_walker_step(w);
	while (rc == NVME_WALK_NEED_READ) {
		if (read(ctx, w->rd_addr, w->rdbuf, w->rd_len) != 0)
			return nvme_walker_read_failed(w);
		rc = nvme_walker_step(w);
	}
	return rc;
}
