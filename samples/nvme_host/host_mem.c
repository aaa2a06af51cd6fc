/*
 * Host memory of the simulated host: a page allocator over the mock's host RAM and an IOVA
 * allocator over one PCI function's IOMMU space. Every buffer handed to the controller is
 * mapped in that function's IOMMU with only the permissions it needs, at IOVAs that differ
 * from the host offsets (allocations start at 1 MiB), so a device that confused the two
 * would fault instead of silently working. Optionally a second function (an IPU's NIC) gets
 * the same mappings at the same IOVAs (nvmeh_mem_share()), as a host whose IOMMU puts both
 * functions in one address space.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ferry/mock.h>
#include "host_driver.h"

#define IOVA_FIRST_PAGE 256u /* 1 MiB: IOVA 0 and low IOVAs are never valid */
#define NO_PAGE UINT32_MAX

struct nvmeh_mem {
	struct ferry_mock_host *host;
	unsigned int fn;
	int share_fn; /* a second function given the same mappings (-1: none) */
	uint32_t host_pages, iova_pages;
	uint8_t *host_used;
	uint32_t *iova_map; /* IOVA page -> host page, NO_PAGE if free */
	uint64_t used;
};

int nvmeh_mem_open(int mem_fd, unsigned int fn, struct nvmeh_mem **out)
{
	struct nvmeh_mem *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	int rc = ferry_mock_host_open(mem_fd, &m->host);
	if (rc) {
		free(m);
		return rc;
	}
	if (fn >= ferry_mock_host_fn_count(m->host)) {
		fprintf(stderr, "nvme-host: function %u does not exist (%u functions)\n", fn,
			ferry_mock_host_fn_count(m->host));
		nvmeh_mem_close(m);
		return -EINVAL;
	}
	m->fn = fn;
	m->share_fn = -1;
	uint64_t hp = ferry_mock_host_mem_size(m->host) / NVMEH_PAGE;
	uint64_t ip = ferry_mock_host_iova_size(m->host) / NVMEH_PAGE;
	m->host_pages = hp > UINT32_MAX - 1 ? UINT32_MAX - 1 : (uint32_t)hp;
	m->iova_pages = ip > UINT32_MAX - 1 ? UINT32_MAX - 1 : (uint32_t)ip;
	m->host_used = calloc(m->host_pages, 1);
	m->iova_map = malloc((size_t)m->iova_pages * sizeof(*m->iova_map));
	if (!m->host_used || !m->iova_map) {
		nvmeh_mem_close(m);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < m->iova_pages; i++)
		m->iova_map[i] = NO_PAGE;
	/* A host that starts owns the function's IOMMU from scratch (as at boot): whatever a
	 * previous host left mapped is dropped; a device still reaching it faults. */
	rc = ferry_mock_host_iommu_unmap(m->host, fn, 0, (uint64_t)m->iova_pages * NVMEH_PAGE);
	if (rc) {
		nvmeh_mem_close(m);
		return rc;
	}
	*out = m;
	return 0;
}

void nvmeh_mem_close(struct nvmeh_mem *m)
{
	if (!m)
		return;
	ferry_mock_host_close(m->host);
	free(m->host_used);
	free(m->iova_map);
	free(m);
}

uint64_t nvmeh_mem_pages_used(const struct nvmeh_mem *m)
{
	return m ? m->used : 0;
}

/* First run of n free IOVA pages at or above IOVA_FIRST_PAGE. */
static int64_t find_iova(const struct nvmeh_mem *m, uint32_t n)
{
	uint32_t run = 0;
	for (uint32_t p = IOVA_FIRST_PAGE; p < m->iova_pages; p++) {
		run = m->iova_map[p] == NO_PAGE ? run + 1 : 0;
		if (run == n)
			return (int64_t)p - n + 1;
	}
	return -1;
}

int nvmeh_mem_share(struct nvmeh_mem *m, const char *fn_name)
{
	int fn = m && fn_name ? ferry_mock_host_fn_lookup(m->host, fn_name) : -EINVAL;
	if (fn < 0 || (unsigned int)fn == m->fn || m->used) {
		fprintf(stderr, "nvme-host: cannot share the mappings with function '%s'\n",
			fn_name ? fn_name : "(null)");
		return fn < 0 ? fn : -EINVAL;
	}
	/* As for the controller's function: the host owns this IOMMU from scratch. */
	int rc = ferry_mock_host_iommu_unmap(m->host, (unsigned int)fn, 0,
					     (uint64_t)m->iova_pages * NVMEH_PAGE);
	if (!rc)
		m->share_fn = fn;
	return rc;
}

static void unmap_iova(struct nvmeh_mem *m, uint64_t iova, uint64_t len)
{
	ferry_mock_host_iommu_unmap(m->host, m->fn, iova, len);
	if (m->share_fn >= 0)
		ferry_mock_host_iommu_unmap(m->host, (unsigned int)m->share_fn, iova, len);
}

static int map_run(struct nvmeh_mem *m, uint32_t iova_page, uint32_t host_page, uint32_t n,
		   uint32_t perms)
{
	int rc = ferry_mock_host_iommu_map(m->host, m->fn, (uint64_t)iova_page * NVMEH_PAGE,
					   (uint64_t)host_page * NVMEH_PAGE,
					   (uint64_t)n * NVMEH_PAGE, perms);
	if (!rc && m->share_fn >= 0)
		rc = ferry_mock_host_iommu_map(m->host, (unsigned int)m->share_fn,
					       (uint64_t)iova_page * NVMEH_PAGE,
					       (uint64_t)host_page * NVMEH_PAGE,
					       (uint64_t)n * NVMEH_PAGE, perms);
	return rc;
}

int nvmeh_mem_alloc(struct nvmeh_mem *m, uint64_t len, uint32_t flags, struct nvmeh_buf *out)
{
	uint32_t perms = ((flags & NVMEH_MEM_READ) ? FERRY_MOCK_IOMMU_READ : 0) |
			 ((flags & NVMEH_MEM_WRITE) ? FERRY_MOCK_IOMMU_WRITE : 0);
	if (!m || !out || len == 0 || perms == 0)
		return -EINVAL;
	uint64_t n64 = (len + NVMEH_PAGE - 1) / NVMEH_PAGE;
	if (n64 > m->host_pages - m->used)
		return -ENOMEM;
	uint32_t n = (uint32_t)n64;
	int64_t first = find_iova(m, n);
	if (first < 0)
		return -ENOMEM;
	/* Host pages: ascending first fit, or descending (scattered) on request. */
	uint32_t got = 0;
	int scatter = (flags & NVMEH_MEM_SCATTER) != 0;
	for (uint32_t k = 0; k < m->host_pages && got < n; k++) {
		uint32_t hp = scatter ? m->host_pages - 1 - k : k;
		if (m->host_used[hp])
			continue;
		m->host_used[hp] = 1;
		m->iova_map[first + got++] = hp;
	}
	/* Map runs of consecutive host pages with one IOMMU call each. */
	int rc = 0;
	int contiguous = 1;
	for (uint32_t i = 0; i < n && rc == 0;) {
		uint32_t j = i + 1;
		while (j < n && m->iova_map[first + j] == m->iova_map[first + j - 1] + 1)
			j++;
		if (j < n)
			contiguous = 0;
		rc = map_run(m, (uint32_t)first + i, m->iova_map[first + i], j - i, perms);
		i = j;
	}
	if (rc) {
		fprintf(stderr, "nvme-host: IOMMU map of %u pages failed: %d\n", n, rc);
		unmap_iova(m, (uint64_t)first * NVMEH_PAGE, (uint64_t)n * NVMEH_PAGE);
		for (uint32_t i = 0; i < n; i++) {
			m->host_used[m->iova_map[first + i]] = 0;
			m->iova_map[first + i] = NO_PAGE;
		}
		return rc;
	}
	m->used += n;
	*out = (struct nvmeh_buf){.iova = (uint64_t)first * NVMEH_PAGE,
				  .len = (uint64_t)n * NVMEH_PAGE,
				  .first_page = (uint32_t)first};
	for (uint32_t i = 0; i < n; i++)
		memset(ferry_mock_host_ptr(m->host, (uint64_t)m->iova_map[first + i] * NVMEH_PAGE,
					   NVMEH_PAGE),
		       0, NVMEH_PAGE);
	if (contiguous)
		out->va = ferry_mock_host_ptr(m->host, (uint64_t)m->iova_map[first] * NVMEH_PAGE,
					      out->len);
	return 0;
}

int nvmeh_mem_unmap(struct nvmeh_mem *m, const struct nvmeh_buf *b)
{
	if (!m || !b || !b->len)
		return -EINVAL;
	int rc = ferry_mock_host_iommu_unmap(m->host, m->fn, b->iova, b->len);
	if (!rc && m->share_fn >= 0)
		rc = ferry_mock_host_iommu_unmap(m->host, (unsigned int)m->share_fn, b->iova,
						 b->len);
	return rc;
}

void nvmeh_mem_free(struct nvmeh_mem *m, struct nvmeh_buf *b)
{
	if (!m || !b || !b->len)
		return;
	uint32_t n = (uint32_t)(b->len / NVMEH_PAGE);
	unmap_iova(m, b->iova, b->len);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t *e = &m->iova_map[b->first_page + i];
		if (*e != NO_PAGE) {
			m->host_used[*e] = 0;
			*e = NO_PAGE;
			m->used--;
		}
	}
	memset(b, 0, sizeof(*b));
}

void *nvmeh_buf_ptr(struct nvmeh_mem *m, const struct nvmeh_buf *b, uint64_t off)
{
	if (!m || !b || off >= b->len)
		return NULL;
	uint32_t hp = m->iova_map[b->first_page + off / NVMEH_PAGE];
	if (hp == NO_PAGE)
		return NULL;
	uint64_t in = off % NVMEH_PAGE;
	return ferry_mock_host_ptr(m->host, (uint64_t)hp * NVMEH_PAGE + in, NVMEH_PAGE - in);
}

static int buf_copy(struct nvmeh_mem *m, const struct nvmeh_buf *b, uint64_t off, void *local,
		    uint64_t len, int to_host)
{
	if (!m || !b || off > b->len || len > b->len - off)
		return -EINVAL;
	uint8_t *p = local;
	while (len) {
		uint8_t *h = nvmeh_buf_ptr(m, b, off);
		if (!h)
			return -EFAULT;
		uint64_t n = NVMEH_PAGE - off % NVMEH_PAGE;
		if (n > len)
			n = len;
		if (to_host)
			memcpy(h, p, n);
		else
			memcpy(p, h, n);
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

int nvmeh_buf_write(struct nvmeh_mem *m, const struct nvmeh_buf *b, uint64_t off, const void *src,
		    uint64_t len)
{
	return buf_copy(m, b, off, (void *)(uintptr_t)src, len, 1);
}

int nvmeh_buf_read(struct nvmeh_mem *m, const struct nvmeh_buf *b, uint64_t off, void *dst,
		   uint64_t len)
{
	return buf_copy(m, b, off, dst, len, 0);
}
