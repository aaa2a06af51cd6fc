/*
 * Memory regions of the mock RDMA NIC: registration of local memory and of IOVAs of the "nic"
 * function, seeded keys (slot + tag, never 0), invalidation, and the checked copies every
 * access goes through (local SGEs by lkey, remote accesses by rkey). Regions of a function
 * resolve through its IOMMU table at every access, one bounded chunk at a time, so a page
 * unmapped after registration stops the access there.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mock_rdma_internal.h"

#define PAGE_MASK ((uint64_t)MOCK_PAGE_SIZE - 1)
#define KEY_LOCAL 0x80000000u
#define CHUNK_PAGES 64u

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static const uint32_t ACCESS_ALL = FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE |
				   FERRY_HAL_RDMA_ACCESS_REMOTE_READ |
				   FERRY_HAL_RDMA_ACCESS_REMOTE_WRITE;

/* Takes a free slot and gives the region its keys. mr_lock held for writing. */
static int slot_take(struct mock_rdma *r, struct ferry_hal_rdma_mr *mr)
{
	uint32_t s = UINT32_MAX;
	for (uint32_t i = 0; i < r->nslots; i++) {
		uint32_t k = (r->slot_hint + i) % r->nslots;
		if (!r->slots[k]) {
			s = k;
			break;
		}
	}
	if (s == UINT32_MAX) {
		if (r->nslots == MR_MAX_SLOTS)
			return -ENOSPC;
		if (r->nslots == r->slot_cap) {
			uint32_t cap = r->slot_cap ? r->slot_cap * 2 : 64;
			if (cap > MR_MAX_SLOTS)
				cap = MR_MAX_SLOTS;
			void *ns = realloc(r->slots, sizeof(*r->slots) * cap);
			if (!ns)
				return -ENOMEM;
			r->slots = ns;
			void *nt = realloc(r->tags, cap);
			if (!nt)
				return -ENOMEM;
			r->tags = nt;
			r->slot_cap = cap;
		}
		s = r->nslots++;
		r->slots[s] = NULL;
		r->tags[s] = (uint8_t)mix(r->seed ^ ((uint64_t)s << 20));
	}
	r->tags[s]++;
	r->slots[s] = mr;
	r->slot_hint = s + 1;
	r->live++;
	mr->slot = s;
	uint32_t key = ((s + 1) << 8) | r->tags[s];
	mr->rkey = key;
	mr->lkey = key | KEY_LOCAL;
	return 0;
}

static struct ferry_hal_rdma_mr *mr_find(struct mock_rdma *r, uint32_t key, int local)
{
	if (!!(key & KEY_LOCAL) != !!local)
		return NULL;
	uint32_t s = ((key & ~KEY_LOCAL) >> 8);
	if (s == 0 || s > r->nslots)
		return NULL;
	struct ferry_hal_rdma_mr *mr = r->slots[s - 1];
	if (!mr || (local ? mr->lkey : mr->rkey) != key)
		return NULL;
	return mr;
}

static int reg_common(struct mock_rdma *r, struct ferry_hal_rdma_mr *mr,
		      struct ferry_hal_rdma_mr **out)
{
	pthread_rwlock_wrlock(&r->mr_lock);
	int rc = slot_take(r, mr);
	pthread_rwlock_unlock(&r->mr_lock);
	if (rc) {
		MOCK_ERR("%s: mr_reg: %s", r->dev->name,
			 rc == -ENOSPC ? "too many regions registered" : "out of memory");
		free(mr);
		return rc;
	}
	atomic_fetch_add(&r->st_mr_regs, 1);
	*out = mr;
	return 0;
}

static int reg_args(struct mock_rdma *r, const char *op, size_t len, uint32_t access, void *out)
{
	if (!r) {
		MOCK_ERR("%s: not a mock device with RDMA (rdma=1)", op);
		return -ENODEV;
	}
	if (!out || len == 0 || len > MR_MAX_MR_SIZE || (access & ~ACCESS_ALL)) {
		MOCK_ERR("%s: %s: %s", r->dev->name, op,
			 !out                     ? "NULL out"
			 : !len                   ? "0 bytes"
			 : (access & ~ACCESS_ALL) ? "unknown access bits"
						  : "more than max_mr_size bytes");
		return -EINVAL;
	}
	return 0;
}

int mock_rdma_mr_reg(struct ferry_device *fdev, void *addr, size_t len, uint32_t access,
		     struct ferry_hal_rdma_mr **out)
{
	struct mock_rdma *r = mock_rdma_of(fdev);
	int rc = reg_args(r, "mr_reg", len, access, out);
	if (rc)
		return rc;
	uintptr_t a = (uintptr_t)addr;
	if (!addr || len > UINTPTR_MAX - a) {
		MOCK_ERR("%s: mr_reg: %s", r->dev->name,
			 !addr ? "NULL address" : "the range wraps around");
		return -EINVAL;
	}
	struct ferry_hal_rdma_mr *mr = calloc(1, sizeof(*mr));
	if (!mr) {
		MOCK_ERR("%s: mr_reg: out of memory", r->dev->name);
		return -ENOMEM;
	}
	*mr = (struct ferry_hal_rdma_mr){.r = r, .addr = a, .len = len, .access = access};
	return reg_common(r, mr, out);
}

int mock_rdma_mr_reg_mem(struct ferry_device *fdev, struct ferry_memdomain *domain, uint64_t addr,
			 size_t len, uint32_t access, struct ferry_hal_rdma_mr **out)
{
	struct mock_rdma *r = mock_rdma_of(fdev);
	int rc = reg_args(r, "mr_reg_mem", len, access, out);
	if (rc)
		return rc;
	if (!domain || domain != r->nic_domain) {
		MOCK_ERR("%s: mr_reg_mem: domain '%s' is not one the NIC reaches (its \"nic\" "
			 "function's)",
			 r->dev->name, domain ? ferry_memdomain_get_name(domain) : "(null)");
		return -EXDEV;
	}
	struct mock_fn *fn = mock_fn_of(r->dev, domain);
	/* Every page must be mapped now with what the access needs (checked again at access). */
	struct iovec iov = {.iov_base = (void *)(uintptr_t)addr, .iov_len = len};
	struct ferry_mem m = {.domain = domain, .iov = &iov, .iovcnt = 1};
	int writes = !!(access &
			(FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE | FERRY_HAL_RDMA_ACCESS_REMOTE_WRITE));
	for (int w = 0; w <= writes; w++) {
		uint32_t cnt = 0;
		int st = mock_resolve(r->dev, &m, len, w, NULL, &cnt);
		if (st > 0) {
			char why[160];
			mock_fault_explain(fn, &iov, 1, w, why, sizeof(why));
			MOCK_ERR("%s: mr_reg_mem %s IOVA 0x%llx+0x%zx: %s", r->dev->name,
				 ferry_memdomain_get_name(domain), (unsigned long long)addr, len,
				 why);
			return -EFAULT;
		}
	}
	struct ferry_hal_rdma_mr *mr = calloc(1, sizeof(*mr));
	if (!mr) {
		MOCK_ERR("%s: mr_reg_mem: out of memory", r->dev->name);
		return -ENOMEM;
	}
	*mr = (struct ferry_hal_rdma_mr){
		.r = r, .addr = addr, .len = len, .access = access, .fn = fn};
	return reg_common(r, mr, out);
}

void mock_rdma_mr_dereg(struct ferry_hal_rdma_mr *mr)
{
	if (!mr)
		return;
	struct mock_rdma *r = mr->r;
	/* Accesses hold the lock for reading: from here on none uses the region. */
	pthread_rwlock_wrlock(&r->mr_lock);
	if (mr->slot < r->nslots && r->slots[mr->slot] == mr) {
		r->slots[mr->slot] = NULL;
		r->live--;
	}
	pthread_rwlock_unlock(&r->mr_lock);
	atomic_fetch_add(&r->st_mr_deregs, 1);
	free(mr);
}

void mock_rdma_mr_keys(const struct ferry_hal_rdma_mr *mr, struct ferry_hal_rdma_mr_keys *k)
{
	if (!mr || !k)
		return;
	*k = (struct ferry_hal_rdma_mr_keys){.addr = mr->addr,
					     .len = mr->len,
					     .lkey = mr->lkey,
					     .rkey = mr->rkey};
}

void mock_rdma_mr_free_all(struct mock_rdma *r)
{
	if (r->live)
		MOCK_WARN("%s: closed with %u RDMA memory region(s) registered", r->dev->name,
			  r->live);
	for (uint32_t i = 0; i < r->nslots; i++)
		free(r->slots[i]);
	free(r->slots);
	free(r->tags);
	r->slots = NULL;
	r->tags = NULL;
	r->nslots = r->slot_cap = r->live = 0;
}

/* Whether [addr, addr + len) lies inside the region. */
static int in_bounds(const struct ferry_hal_rdma_mr *mr, uint64_t addr, uint64_t len)
{
	return addr >= mr->addr && len <= mr->len && addr - mr->addr <= mr->len - len;
}

/*
 * Copy between @p buf and [addr, addr + len) of @p mr (in bounds). A function's region goes
 * through its IOMMU: the whole range is checked first, then each chunk is resolved again just
 * before it moves. Returns 0 or -EFAULT.
 */
static int mr_copy(struct ferry_hal_rdma_mr *mr, uint64_t addr, uint8_t *buf, uint64_t len,
		   int to_mr)
{
	if (!len)
		return 0;
	if (!mr->fn) {
		void *p = (void *)(uintptr_t)addr;
		if (to_mr)
			memcpy(p, buf, len);
		else
			memcpy(buf, p, len);
		return 0;
	}
	struct mock_dev *dev = mr->r->dev;
	struct iovec iov = {.iov_base = (void *)(uintptr_t)addr, .iov_len = len};
	struct ferry_mem m = {.domain = mr->fn->domain, .iov = &iov, .iovcnt = 1};
	uint32_t cnt = 0;
	if (mock_resolve(dev, &m, len, to_mr, NULL, &cnt) > 0)
		return -EFAULT;
	while (len) {
		uint64_t chunk = (uint64_t)CHUNK_PAGES * MOCK_PAGE_SIZE - (addr & PAGE_MASK);
		if (chunk > len)
			chunk = len;
		struct iovec seg[CHUNK_PAGES + 1];
		iov.iov_base = (void *)(uintptr_t)addr;
		iov.iov_len = chunk;
		cnt = CHUNK_PAGES + 1;
		if (mock_resolve(dev, &m, chunk, to_mr, seg, &cnt) != 0)
			return -EFAULT;
		for (uint32_t i = 0; i < cnt; i++) {
			if (to_mr)
				memcpy(seg[i].iov_base, buf, seg[i].iov_len);
			else
				memcpy(buf, seg[i].iov_base, seg[i].iov_len);
			buf += seg[i].iov_len;
		}
		addr += chunk;
		len -= chunk;
	}
	return 0;
}

int mock_rdma_sge_check(struct mock_rdma *r, const struct ferry_hal_rdma_sge *sge, uint32_t n,
			uint32_t need, uint64_t *total)
{
	uint64_t t = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct ferry_hal_rdma_mr *mr = mr_find(r, sge[i].lkey, 1);
		const char *why = !mr ? "no region has this lkey"
				  : !in_bounds(mr, sge[i].addr, sge[i].len) ? "outside its region"
				  : (mr->access & need) != need ? "the region lacks LOCAL_WRITE"
								: NULL;
		if (why) {
			if (mock_nic_ratelimit(r->nic))
				MOCK_ERR("%s: local SGE %u (addr 0x%llx len %u lkey 0x%x): %s",
					 r->dev->name, i, (unsigned long long)sge[i].addr,
					 sge[i].len, sge[i].lkey, why);
			return -EIO;
		}
		t += sge[i].len;
	}
	*total = t;
	return 0;
}

int mock_rdma_sge_copy(struct mock_rdma *r, const struct ferry_hal_rdma_sge *sge, uint32_t n,
		       uint8_t *buf, uint64_t len, int to_sge)
{
	for (uint32_t i = 0; i < n && len; i++) {
		struct ferry_hal_rdma_mr *mr = mr_find(r, sge[i].lkey, 1);
		uint64_t l = sge[i].len < len ? sge[i].len : len;
		if (!mr || !in_bounds(mr, sge[i].addr, l) ||
		    mr_copy(mr, sge[i].addr, buf, l, to_sge)) {
			if (mock_nic_ratelimit(r->nic))
				MOCK_ERR("%s: local SGE %u (addr 0x%llx lkey 0x%x): %s",
					 r->dev->name, i, (unsigned long long)sge[i].addr,
					 sge[i].lkey,
					 mr ? "a page is not reachable through the function's IOMMU"
					    : "no region has this lkey");
			return -EIO;
		}
		buf += l;
		len -= l;
	}
	return 0;
}

int mock_rdma_remote_copy(struct mock_rdma *r, uint32_t rkey, uint64_t addr, uint8_t *buf,
			  uint64_t len, int write)
{
	uint32_t need = write ? FERRY_HAL_RDMA_ACCESS_REMOTE_WRITE
			      : FERRY_HAL_RDMA_ACCESS_REMOTE_READ;
	struct ferry_hal_rdma_mr *mr = mr_find(r, rkey, 0);
	const char *why = !mr                         ? "no region has this rkey"
			  : !in_bounds(mr, addr, len) ? "outside the region"
			  : !(mr->access & need)      ? (write ? "the region lacks REMOTE_WRITE"
							       : "the region lacks REMOTE_READ")
			  : mr_copy(mr, addr, buf, len, write) ? "a page is not reachable through "
								 "the function's IOMMU"
							       : NULL;
	if (!why)
		return 0;
	if (mock_nic_ratelimit(r->nic))
		MOCK_ERR("%s: remote %s of 0x%llx+%llu with rkey 0x%x refused: %s", r->dev->name,
			 write ? "WRITE" : "READ", (unsigned long long)addr,
			 (unsigned long long)len, rkey, why);
	return -EREMOTEIO;
}
