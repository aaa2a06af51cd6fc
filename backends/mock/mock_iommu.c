/*
 * The device side of the mock IOMMU: resolving a ferry_mem to local pointers through a
 * function's table (bounds, mapping and permission checks over the whole range), and
 * translating IOVAs of one function into IOVAs of another through host pages, with the
 * cached reverse maps that translation uses.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mock_internal.h"

#define PAGE_MASK ((uint64_t)MOCK_PAGE_SIZE - 1)

static uint64_t pte_load(const struct mock_fn *fn, uint64_t pfn)
{
	return atomic_load_explicit(&fn->table[pfn], memory_order_acquire);
}

/* Host page of a valid entry, or UINT64_MAX if the entry points outside host RAM. */
static uint64_t pte_host_page(const struct mock_dev *dev, uint64_t pte)
{
	uint64_t hp = pte >> MOCK_PTE_PFN_SHIFT;
	return hp < dev->host_pages ? hp : UINT64_MAX;
}

/* Appends [p, p + n) to out, merging with the previous piece when adjacent. */
static void put_seg(struct iovec *out, uint32_t cap, uint32_t *n, uint8_t **last_end, uint8_t *p,
		    size_t len)
{
	if (*n && *last_end == p) {
		if (*n <= cap)
			out[*n - 1].iov_len += len;
	} else {
		if (*n < cap) {
			out[*n].iov_base = p;
			out[*n].iov_len = len;
		}
		(*n)++;
	}
	*last_end = p + len;
}

int mock_resolve(struct mock_dev *dev, const struct ferry_mem *mem, uint64_t len, int write,
		 struct iovec *out, uint32_t *outcnt)
{
	const enum ferry_xfer_status bad = write ? FERRY_XFER_INVALID_DST_ADDR
						 : FERRY_XFER_INVALID_SRC_ADDR;
	uint32_t cap = out ? *outcnt : 0, n = 0;
	uint8_t *last_end = NULL;
	uint64_t left = len;

	if (!mem || (!mem->iov && len))
		return bad;
	struct ferry_memdomain *d = mem->domain;
	if (!d || d == ferry_memdomain_system()) {
		for (uint32_t i = 0; i < mem->iovcnt && left; i++) {
			size_t l = mem->iov[i].iov_len < left ? mem->iov[i].iov_len : (size_t)left;
			if (!l)
				continue;
			if (!mem->iov[i].iov_base)
				return bad;
			put_seg(out, cap, &n, &last_end, mem->iov[i].iov_base, l);
			left -= l;
		}
		if (left)
			return bad;
		*outcnt = n;
		return n > cap ? -ENOBUFS : 0;
	}
	struct mock_fn *fn = mock_fn_of(dev, d);
	if (!fn)
		return bad;
	const uint64_t need = write ? MOCK_PTE_WRITE : MOCK_PTE_READ;
	for (uint32_t i = 0; i < mem->iovcnt && left; i++) {
		uint64_t a = (uint64_t)(uintptr_t)mem->iov[i].iov_base;
		uint64_t l = mem->iov[i].iov_len < left ? mem->iov[i].iov_len : left;
		if (!l)
			continue;
		if (a >= dev->iova_size || l > dev->iova_size - a)
			return FERRY_XFER_PAGE_FAULT;
		left -= l;
		while (l) {
			uint64_t off = a & PAGE_MASK, chunk = MOCK_PAGE_SIZE - off;
			if (chunk > l)
				chunk = l;
			uint64_t pte = pte_load(fn, a >> MOCK_PAGE_SHIFT);
			if (!(pte & MOCK_PTE_VALID) || !(pte & need))
				return FERRY_XFER_PAGE_FAULT;
			uint64_t hp = pte_host_page(dev, pte);
			if (hp == UINT64_MAX)
				return FERRY_XFER_PAGE_FAULT;
			put_seg(out, cap, &n, &last_end, dev->host + (hp << MOCK_PAGE_SHIFT) + off,
				(size_t)chunk);
			a += chunk;
			l -= chunk;
		}
	}
	if (left)
		return bad;
	*outcnt = n;
	return n > cap ? -ENOBUFS : 0;
}

/* Builds fn's reverse map if the host changed its table since. fn->rmap_lock held. */
static int rmap_refresh(struct mock_fn *fn)
{
	struct mock_dev *dev = fn->dev;
	uint64_t gen = atomic_load_explicit(fn->gen, memory_order_acquire);
	if (fn->rmap_valid && fn->rmap_gen == gen)
		return 0;
	if (!fn->rmap) {
		fn->rmap = malloc(sizeof(*fn->rmap) * dev->host_pages);
		if (!fn->rmap) {
			MOCK_ERR("%s.%s: out of memory for the reverse map", dev->name, fn->name);
			return -ENOMEM;
		}
	}
	memset(fn->rmap, 0, sizeof(*fn->rmap) * dev->host_pages);
	for (uint64_t p = 0; p < dev->iova_pages; p++) {
		uint64_t pte = pte_load(fn, p);
		if (!(pte & MOCK_PTE_VALID))
			continue;
		uint64_t hp = pte_host_page(dev, pte);
		if (hp != UINT64_MAX && fn->rmap[hp] == 0)
			fn->rmap[hp] = (uint32_t)(p + 1); /* lowest IOVA wins */
	}
	fn->rmap_gen = gen;
	fn->rmap_valid = 1;
	atomic_fetch_add_explicit(&dev->st_rmap_builds, 1, memory_order_relaxed);
	return 0;
}

void mock_rmap_drop(struct mock_dev *dev)
{
	for (uint32_t i = 0; i < dev->nfn; i++) {
		pthread_mutex_lock(&dev->fn[i].rmap_lock);
		dev->fn[i].rmap_valid = 0;
		pthread_mutex_unlock(&dev->fn[i].rmap_lock);
	}
}

/* IOVA page of @p to mapping host page @p hp, preferring @p want (continuation). */
static uint64_t target_page(struct mock_fn *to, uint64_t hp, uint64_t want)
{
	if (want < to->dev->iova_pages) {
		uint64_t pte = pte_load(to, want);
		if ((pte & MOCK_PTE_VALID) && (pte >> MOCK_PTE_PFN_SHIFT) == hp)
			return want;
	}
	uint32_t r = to->rmap[hp];
	if (!r)
		return UINT64_MAX;
	/* The host may have changed the table since the map was built: check the entry. */
	uint64_t pte = pte_load(to, r - 1);
	if (!(pte & MOCK_PTE_VALID) || (pte >> MOCK_PTE_PFN_SHIFT) != hp)
		return UINT64_MAX;
	return r - 1;
}

int mock_translate(struct mock_fn *from, const struct iovec *src, uint32_t src_cnt,
		   struct mock_fn *to, struct ferry_mem *out)
{
	struct mock_dev *dev = from->dev;
	uint32_t cap = out->iovcnt, n = 0;
	uint64_t last_end = UINT64_MAX; /* IOVA in `to` right after the last segment */
	int rc = 0;

	pthread_mutex_lock(&to->rmap_lock);
	rc = rmap_refresh(to);
	for (uint32_t i = 0; rc == 0 && i < src_cnt; i++) {
		uint64_t a = (uint64_t)(uintptr_t)src[i].iov_base, l = src[i].iov_len;
		if (l && (a >= dev->iova_size || l > dev->iova_size - a)) {
			MOCK_ERR(
				"translate %s.%s -> %s.%s: IOVA 0x%llx+0x%llx leaves the IOVA space",
				dev->name, from->name, dev->name, to->name, (unsigned long long)a,
				(unsigned long long)l);
			rc = -EFAULT;
			break;
		}
		while (l) {
			uint64_t off = a & PAGE_MASK, chunk = MOCK_PAGE_SIZE - off;
			if (chunk > l)
				chunk = l;
			uint64_t pte = pte_load(from, a >> MOCK_PAGE_SHIFT);
			uint64_t hp = (pte & MOCK_PTE_VALID) ? pte_host_page(dev, pte) : UINT64_MAX;
			if (hp == UINT64_MAX) {
				MOCK_ERR("translate %s.%s -> %s.%s: IOVA 0x%llx is not mapped in %s",
					 dev->name, from->name, dev->name, to->name,
					 (unsigned long long)a, from->name);
				rc = -EFAULT;
				break;
			}
			uint64_t want = ((last_end & PAGE_MASK) == off)
						? last_end >> MOCK_PAGE_SHIFT
						: UINT64_MAX;
			uint64_t tp = target_page(to, hp, want);
			if (tp == UINT64_MAX) {
				MOCK_ERR("translate %s.%s -> %s.%s: host page 0x%llx (IOVA 0x%llx in %s) is "
					 "not mapped in %s",
					 dev->name, from->name, dev->name, to->name,
					 (unsigned long long)hp, (unsigned long long)a, from->name,
					 to->name);
				rc = -EFAULT;
				break;
			}
			uint64_t ta = (tp << MOCK_PAGE_SHIFT) + off;
			if (n && ta == last_end) {
				if (n <= cap)
					out->iov[n - 1].iov_len += (size_t)chunk;
			} else {
				if (n < cap) {
					out->iov[n].iov_base = (void *)(uintptr_t)ta;
					out->iov[n].iov_len = (size_t)chunk;
				}
				n++;
			}
			last_end = ta + chunk;
			a += chunk;
			l -= chunk;
		}
	}
	pthread_mutex_unlock(&to->rmap_lock);
	if (rc)
		return rc;
	if (n > cap) {
		MOCK_ERR("translate %s.%s -> %s.%s: the result needs %u segments, the output has %u",
			 dev->name, from->name, dev->name, to->name, n, cap);
		out->iovcnt = n;
		return -ENOBUFS;
	}
	out->domain = to->domain;
	out->iovcnt = n;
	atomic_fetch_add_explicit(&dev->st_translations, 1, memory_order_relaxed);
	return 0;
}

void mock_fault_explain(struct mock_fn *fn, const struct iovec *iov, uint32_t cnt, int write,
			char *buf, size_t size)
{
	struct mock_dev *dev = fn->dev;
	const uint64_t need = write ? MOCK_PTE_WRITE : MOCK_PTE_READ;
	snprintf(buf, size, "range not reachable");
	for (uint32_t i = 0; i < cnt; i++) {
		uint64_t a = (uint64_t)(uintptr_t)iov[i].iov_base, l = iov[i].iov_len;
		if (!l)
			continue;
		if (a >= dev->iova_size || l > dev->iova_size - a) {
			snprintf(buf, size,
				 "IOVA 0x%llx+0x%llx leaves the IOVA space (0x%llx bytes)",
				 (unsigned long long)a, (unsigned long long)l,
				 (unsigned long long)dev->iova_size);
			return;
		}
		for (uint64_t p = a >> MOCK_PAGE_SHIFT; p <= (a + l - 1) >> MOCK_PAGE_SHIFT; p++) {
			uint64_t pte = pte_load(fn, p);
			const char *why = !(pte & MOCK_PTE_VALID) ? "is not mapped"
					  : pte_host_page(dev, pte) == UINT64_MAX
						  ? "maps outside host RAM"
					  : !(pte & need)
						  ? (write ? "is read-only" : "is write-only")
						  : NULL;
			if (why) {
				snprintf(buf, size, "IOVA page 0x%llx (address 0x%llx) %s",
					 (unsigned long long)p,
					 (unsigned long long)(p << MOCK_PAGE_SHIFT), why);
				return;
			}
		}
	}
}
