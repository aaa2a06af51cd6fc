/*
 * The mock backend's conformance hooks (struct conf_hooks, uses ferry/mock.h): host memory
 * mapped through a function's IOMMU table, so the generic round-trip and host-transfer checks
 * run on the mock. The mock's own test knobs are checked in tests/unit/mock.
 */
#include <ferry/mock.h>
#include "conf.h"

/* ---- hooks ---- */

#define MAX_DEVS 4u

static struct mock_host_state {
	struct ferry_device *dev;
	struct ferry_mock_host *host;
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
	memset(s, 0, sizeof(*s));
}

const struct conf_hooks conf_mock_hooks = {
	.backend = "mock",
	.host_map = mock_host_map,
	.release = mock_release,
};
