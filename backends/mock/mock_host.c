/*
 * The mock's shared memory: creating the memfd (device side), mapping it from any process
 * (host side), and the host OS's view of the per-function IOMMU tables (map, unmap, lookup).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <ferry/log.h>
#include "mock_internal.h"

#define COMP "mock"

static uint64_t round_page(uint64_t v)
{
	return (v + MOCK_PAGE_SIZE - 1) & ~(uint64_t)(MOCK_PAGE_SIZE - 1);
}

/* Maps @p size bytes of @p fd. Returns 0 and *out, or a negative errno (never 0: callers
 * take 0 to mean *out is set) with *out NULL. */
static int map_region(int fd, uint64_t size, struct ferry_mock_host **out)
{
	*out = NULL;
	struct ferry_mock_host *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		int rc = errno ? -errno : -EIO;
		ferry_log(FERRY_LOG_ERROR, COMP,
			  "mmap of %llu bytes of the shared memory failed: %s",
			  (unsigned long long)size, strerror(errno));
		free(h);
		return rc;
	}
	h->base = p;
	h->size = size;
	h->hdr = p;
	h->fd = -1;
	*out = h;
	return 0;
}

int mock_shm_create(const char *devname, uint64_t host_size, uint64_t iova_size,
		    const char (*names)[MOCK_FN_NAME_MAX], uint32_t nfn,
		    struct ferry_mock_host **out)
{
	char mname[64];
	uint64_t table_bytes = round_page((iova_size >> MOCK_PAGE_SHIFT) * sizeof(uint64_t));
	uint64_t host_off = MOCK_PAGE_SIZE + table_bytes * nfn;
	uint64_t total = host_off + host_size;

	snprintf(mname, sizeof(mname), "ferry-%s", devname);
	int fd = memfd_create(mname, MFD_CLOEXEC);
	if (fd < 0) {
		int rc = -errno;
		ferry_log(FERRY_LOG_ERROR, COMP, "%s: memfd_create failed: %s", devname,
			  strerror(errno));
		return rc;
	}
	if (ftruncate(fd, (off_t)total) != 0) {
		int rc = -errno;
		ferry_log(FERRY_LOG_ERROR, COMP, "%s: sizing host memory to %llu bytes failed: %s",
			  devname, (unsigned long long)total, strerror(errno));
		close(fd);
		return rc;
	}
	struct ferry_mock_host *h;
	int rc = map_region(fd, total, &h);
	if (rc) {
		close(fd);
		return rc;
	}
	struct mock_shm_hdr *hdr = h->hdr;
	hdr->version = MOCK_SHM_VERSION;
	hdr->page_size = MOCK_PAGE_SIZE;
	hdr->total_size = total;
	hdr->host_off = host_off;
	hdr->host_size = host_size;
	hdr->iova_size = iova_size;
	hdr->nfn = nfn;
	for (uint32_t i = 0; i < nfn; i++) {
		memcpy(hdr->fn[i].name, names[i], MOCK_FN_NAME_MAX);
		hdr->fn[i].name[MOCK_FN_NAME_MAX - 1] = '\0';
		hdr->fn[i].table_off = MOCK_PAGE_SIZE + table_bytes * i;
		atomic_init(&hdr->fn[i].gen, 0);
	}
	/* Written last, with release: a valid magic (acquire) means a complete header. */
	__atomic_store_n(&hdr->magic, MOCK_SHM_MAGIC, __ATOMIC_RELEASE);
	h->mem = h->base + host_off;
	h->fd = fd;
	*out = h;
	return 0;
}

static int check_hdr(const struct mock_shm_hdr *hdr, uint64_t fsize)
{
	if (__atomic_load_n(&hdr->magic, __ATOMIC_ACQUIRE) != MOCK_SHM_MAGIC ||
	    hdr->version != MOCK_SHM_VERSION || hdr->page_size != MOCK_PAGE_SIZE)
		return 0;
	if (hdr->nfn == 0 || hdr->nfn > MOCK_MAX_FNS || hdr->total_size > fsize ||
	    hdr->host_off < MOCK_PAGE_SIZE || hdr->host_off > hdr->total_size ||
	    hdr->total_size - hdr->host_off != hdr->host_size || hdr->host_size == 0 ||
	    hdr->host_size % MOCK_PAGE_SIZE || hdr->iova_size == 0 ||
	    hdr->iova_size % MOCK_PAGE_SIZE)
		return 0;
	uint64_t table_bytes = (hdr->iova_size >> MOCK_PAGE_SHIFT) * sizeof(uint64_t);
	for (uint32_t i = 0; i < hdr->nfn; i++) {
		const struct mock_shm_fn *f = &hdr->fn[i];
		if (memchr(f->name, '\0', sizeof(f->name)) == NULL ||
		    f->table_off < MOCK_PAGE_SIZE || f->table_off % MOCK_PAGE_SIZE ||
		    f->table_off > hdr->host_off || hdr->host_off - f->table_off < table_bytes)
			return 0;
	}
	return 1;
}

FERRY_API int ferry_mock_host_open(int fd, struct ferry_mock_host **out)
{
	struct stat st;
	if (!out) {
		ferry_log(FERRY_LOG_ERROR, COMP, "host_open: NULL out");
		return -EINVAL;
	}
	if (fd < 0 || fstat(fd, &st) != 0 || (uint64_t)st.st_size < MOCK_PAGE_SIZE) {
		ferry_log(FERRY_LOG_ERROR, COMP, "host_open: fd %d is not a mock shared memory",
			  fd);
		return -EINVAL;
	}
	struct ferry_mock_host *h;
	int rc = map_region(fd, (uint64_t)st.st_size, &h);
	if (rc)
		return rc;
	if (!check_hdr(h->hdr, (uint64_t)st.st_size)) {
		ferry_log(FERRY_LOG_ERROR, COMP, "host_open: fd %d has no valid mock control block",
			  fd);
		ferry_mock_host_close(h);
		return -EINVAL;
	}
	h->mem = h->base + h->hdr->host_off;
	*out = h;
	return 0;
}

FERRY_API void ferry_mock_host_close(struct ferry_mock_host *h)
{
	if (!h)
		return;
	munmap(h->base, h->size);
	if (h->fd >= 0)
		close(h->fd);
	free(h);
}

FERRY_API uint64_t ferry_mock_host_mem_size(const struct ferry_mock_host *h)
{
	return h ? h->hdr->host_size : 0;
}

FERRY_API uint64_t ferry_mock_host_iova_size(const struct ferry_mock_host *h)
{
	return h ? h->hdr->iova_size : 0;
}

FERRY_API unsigned int ferry_mock_host_fn_count(const struct ferry_mock_host *h)
{
	return h ? h->hdr->nfn : 0;
}

FERRY_API const char *ferry_mock_host_fn_name(const struct ferry_mock_host *h, unsigned int fn)
{
	return h && fn < h->hdr->nfn ? h->hdr->fn[fn].name : NULL;
}

FERRY_API int ferry_mock_host_fn_lookup(const struct ferry_mock_host *h, const char *name)
{
	for (uint32_t i = 0; h && name && i < h->hdr->nfn; i++)
		if (strcmp(h->hdr->fn[i].name, name) == 0)
			return (int)i;
	return -ENOENT;
}

/* Common checks of map/unmap/lookup: function index, alignment, IOVA range. */
static int check_iova(const struct ferry_mock_host *h, const char *op, unsigned int fn,
		      uint64_t iova, uint64_t len, int aligned)
{
	if (!h) {
		ferry_log(FERRY_LOG_ERROR, COMP, "iommu_%s: NULL host", op);
		return -EINVAL;
	}
	if (fn >= h->hdr->nfn) {
		ferry_log(FERRY_LOG_ERROR, COMP,
			  "iommu_%s: function %u out of range (%u functions)", op, fn, h->hdr->nfn);
		return -EINVAL;
	}
	if (aligned && ((iova | len) % MOCK_PAGE_SIZE || len == 0)) {
		ferry_log(FERRY_LOG_ERROR, COMP,
			  "iommu_%s %s: iova 0x%llx len 0x%llx must be non-empty multiples of %u",
			  op, h->hdr->fn[fn].name, (unsigned long long)iova,
			  (unsigned long long)len, MOCK_PAGE_SIZE);
		return -EINVAL;
	}
	if (iova >= h->hdr->iova_size || len > h->hdr->iova_size - iova) {
		ferry_log(FERRY_LOG_ERROR, COMP,
			  "iommu_%s %s: iova 0x%llx+0x%llx leaves the IOVA space (0x%llx bytes)",
			  op, h->hdr->fn[fn].name, (unsigned long long)iova,
			  (unsigned long long)len, (unsigned long long)h->hdr->iova_size);
		return -ERANGE;
	}
	return 0;
}

FERRY_API int ferry_mock_host_iommu_map(struct ferry_mock_host *h, unsigned int fn, uint64_t iova,
					uint64_t host_off, uint64_t len, uint32_t perms)
{
	int rc = check_iova(h, "map", fn, iova, len, 1);
	if (rc)
		return rc;
	if (perms == 0 || (perms & ~(FERRY_MOCK_IOMMU_READ | FERRY_MOCK_IOMMU_WRITE))) {
		ferry_log(FERRY_LOG_ERROR, COMP, "iommu_map: bad permissions 0x%x", perms);
		return -EINVAL;
	}
	if (host_off % MOCK_PAGE_SIZE) {
		ferry_log(FERRY_LOG_ERROR, COMP, "iommu_map: host offset 0x%llx not page aligned",
			  (unsigned long long)host_off);
		return -EINVAL;
	}
	if (host_off >= h->hdr->host_size || len > h->hdr->host_size - host_off) {
		ferry_log(FERRY_LOG_ERROR, COMP,
			  "iommu_map: host range 0x%llx+0x%llx leaves host RAM (0x%llx bytes)",
			  (unsigned long long)host_off, (unsigned long long)len,
			  (unsigned long long)h->hdr->host_size);
		return -ERANGE;
	}
	_Atomic uint64_t *t = mock_shm_table(h, fn);
	uint64_t first = iova >> MOCK_PAGE_SHIFT, n = len >> MOCK_PAGE_SHIFT;
	for (uint64_t i = 0; i < n; i++) {
		if (atomic_load_explicit(&t[first + i], memory_order_acquire) & MOCK_PTE_VALID) {
			ferry_log(FERRY_LOG_ERROR, COMP,
				  "iommu_map %s: IOVA page 0x%llx already mapped",
				  h->hdr->fn[fn].name, (unsigned long long)(first + i));
			return -EEXIST;
		}
	}
	uint64_t flags = MOCK_PTE_VALID | ((perms & FERRY_MOCK_IOMMU_READ) ? MOCK_PTE_READ : 0) |
			 ((perms & FERRY_MOCK_IOMMU_WRITE) ? MOCK_PTE_WRITE : 0);
	uint64_t hp = host_off >> MOCK_PAGE_SHIFT;
	for (uint64_t i = 0; i < n; i++)
		atomic_store_explicit(&t[first + i], ((hp + i) << MOCK_PTE_PFN_SHIFT) | flags,
				      memory_order_release);
	atomic_fetch_add_explicit(&h->hdr->fn[fn].gen, 1, memory_order_acq_rel);
	return 0;
}

FERRY_API int ferry_mock_host_iommu_unmap(struct ferry_mock_host *h, unsigned int fn, uint64_t iova,
					  uint64_t len)
{
	int rc = check_iova(h, "unmap", fn, iova, len, 1);
	if (rc)
		return rc;
	_Atomic uint64_t *t = mock_shm_table(h, fn);
	uint64_t first = iova >> MOCK_PAGE_SHIFT, n = len >> MOCK_PAGE_SHIFT;
	for (uint64_t i = 0; i < n; i++)
		atomic_store_explicit(&t[first + i], 0, memory_order_release);
	atomic_fetch_add_explicit(&h->hdr->fn[fn].gen, 1, memory_order_acq_rel);
	return 0;
}

FERRY_API int ferry_mock_host_iommu_lookup(const struct ferry_mock_host *h, unsigned int fn,
					   uint64_t iova, uint64_t *host_off, uint32_t *perms)
{
	int rc = check_iova(h, "lookup", fn, iova, 1, 0);
	if (rc)
		return rc;
	uint64_t pte = atomic_load_explicit(&mock_shm_table(h, fn)[iova >> MOCK_PAGE_SHIFT],
					    memory_order_acquire);
	if (!(pte & MOCK_PTE_VALID))
		return -ENOENT;
	if (host_off)
		*host_off = ((pte >> MOCK_PTE_PFN_SHIFT) << MOCK_PAGE_SHIFT) +
			    (iova & (MOCK_PAGE_SIZE - 1));
	if (perms)
		*perms = ((pte & MOCK_PTE_READ) ? FERRY_MOCK_IOMMU_READ : 0) |
			 ((pte & MOCK_PTE_WRITE) ? FERRY_MOCK_IOMMU_WRITE : 0);
	return 0;
}

FERRY_API void *ferry_mock_host_ptr(const struct ferry_mock_host *h, uint64_t host_off,
				    uint64_t len)
{
	if (!h || host_off > h->hdr->host_size || len > h->hdr->host_size - host_off)
		return NULL;
	return h->mem + host_off;
}
