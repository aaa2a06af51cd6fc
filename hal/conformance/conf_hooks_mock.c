/*
 * The mock backend's conformance hooks (struct conf_hooks, uses ferry/mock.h and
 * ferry/mock_pcie.h): host memory mapped through a function's IOMMU table, so the generic
 * round-trip and host-transfer checks run on the mock, and the host side of its PCIe
 * functions (BAR accesses, MSI-X counters) for the host-driven endpoint checks. The mock's
 * own test knobs are checked in tests/unit/mock.
 */
#include <ferry/mock.h>
#include <ferry/mock_pcie.h>
#include "conf.h"

/* ---- hooks ---- */

#define MAX_DEVS 4u

static struct mock_host_state {
	struct ferry_device *dev;
	struct ferry_mock_host *host;
	struct ferry_mock_pcie_host *pcie; /* the host side of the PCIe channel (on first use) */
	uint64_t next_host_page;
	uint64_t next_iova_page[FERRY_MOCK_MAX_FUNCTIONS];
} mock_state[MAX_DEVS];

static struct mock_host_state *state_of(struct ferry_device *dev, int create)
{
	for (uint32_t i = 0; i < MAX_DEVS; i++)
		if (mock_state[i].dev == dev)
			return &mock_state[i];
	if (!create)
		return NULL;
	for (uint32_t i = 0; i < MAX_DEVS; i++) {
		struct mock_host_state *s = &mock_state[i];
		if (s->dev)
			continue;
		int rc = ferry_mock_host_attach(dev, &s->host);
		CONF_RC(rc, 0, "ferry_mock_host_attach (conformance hook)");
		s->dev = dev;
		s->next_host_page = 0;
		memset(s->next_iova_page, 0, sizeof(s->next_iova_page));
		return s;
	}
	CONF_ASSERT(0, "hook state for more than %u devices", MAX_DEVS);
	return NULL;
}

/*
 * Fresh host pages, mapped at an IOVA that differs from their host offset (and between
 * functions), with an unmapped page after each range.
 */
static int mock_host_map(struct ferry_device *dev, struct ferry_memdomain *d, uint64_t len,
			 struct conf_host_range *out)
{
	struct mock_host_state *s = state_of(dev, 1);
	const char *dot = strrchr(ferry_memdomain_get_name(d), '.');
	int fn = dot ? ferry_mock_host_fn_lookup(s->host, dot + 1) : -ENOENT;
	if (fn < 0)
		return -ENOTSUP;
	uint64_t pages = (len + FERRY_MOCK_PAGE_SIZE - 1) / FERRY_MOCK_PAGE_SIZE;
	uint64_t hp = s->next_host_page;
	uint64_t ip = 16 + (uint64_t)fn * 1024 + s->next_iova_page[fn];
	uint64_t psz = FERRY_MOCK_PAGE_SIZE;
	if ((hp + pages) * psz > ferry_mock_host_mem_size(s->host) ||
	    (ip + pages + 1) * psz > ferry_mock_host_iova_size(s->host))
		return -ENOTSUP;
	int rc = ferry_mock_host_iommu_map(s->host, (unsigned)fn, ip * psz, hp * psz, pages * psz,
					   FERRY_MOCK_IOMMU_READ | FERRY_MOCK_IOMMU_WRITE);
	if (rc)
		return rc;
	s->next_host_page += pages;
	s->next_iova_page[fn] += pages + 1;
	out->iova = (void *)(uintptr_t)(ip * psz);
	out->host = ferry_mock_host_ptr(s->host, hp * psz, pages * psz);
	out->len = pages * psz;
	return out->host ? 0 : -EFAULT;
}

static void mock_release(struct ferry_device *dev)
{
	struct mock_host_state *s = state_of(dev, 0);
	if (!s)
		return;
	ferry_mock_host_close(s->host);
	ferry_mock_pcie_host_close(s->pcie);
	memset(s, 0, sizeof(*s));
}

static struct ferry_mock_pcie_host *pcie_of(struct ferry_device *dev)
{
	struct mock_host_state *s = state_of(dev, 1);
	if (!s->pcie) {
		int fd;
		CONF_RC(ferry_mock_pcie_fd(dev, &fd), 0, "ferry_mock_pcie_fd (conformance hook)");
		CONF_RC(ferry_mock_pcie_host_open(fd, &s->pcie), 0,
			"ferry_mock_pcie_host_open (conformance hook)");
		CONF_RC(ferry_mock_pcie_host_set_timeout(s->pcie, 2000000000ull), 0,
			"ferry_mock_pcie_host_set_timeout");
	}
	return s->pcie;
}

static int mock_mmio_write(struct ferry_device *dev, uint32_t fn, uint64_t off, uint32_t size,
			   uint64_t val)
{
	return ferry_mock_pcie_mmio_write(pcie_of(dev), fn, off, size, val);
}

static int mock_mmio_read(struct ferry_device *dev, uint32_t fn, uint64_t off, uint32_t size,
			  uint64_t *val)
{
	return ferry_mock_pcie_mmio_read(pcie_of(dev), fn, off, size, val);
}

static int mock_msix_count(struct ferry_device *dev, uint32_t fn, uint16_t vector,
			   uint64_t *count)
{
	uint32_t c = 0;
	int rc = ferry_mock_pcie_msix_count(pcie_of(dev), fn, vector, &c);
	*count = c;
	return rc;
}

const struct conf_hooks conf_mock_hooks = {
	.backend = "mock",
	.host_map = mock_host_map,
	.release = mock_release,
	.host_mmio_write = mock_mmio_write,
	.host_mmio_read = mock_mmio_read,
	.host_msix_count = mock_msix_count,
};
