/*
 * Broken: a PCIe endpoint whose MSI-X table is off by one: raising vector v fires v + 1.
 * Contract broken: msix_raise() raises that vector toward the host (ferry/hal/pcie_ep.h);
 * caught by pcie_ep.msix_delivery.
 */
#include "broken.h"

static int (*mock_raise)(struct ferry_device *dev, uint32_t fn, uint16_t vector);
static int (*mock_query)(struct ferry_device *dev, struct ferry_hal_pcie_ep_info *info);

static int off_by_one_raise(struct ferry_device *dev, uint32_t fn, uint16_t vector)
{
	struct ferry_hal_pcie_ep_info info = {0};
	if (mock_query(dev, &info) == 0 && info.max_msix)
		vector = (uint16_t)((vector + 1u) % info.max_msix);
	return mock_raise(dev, fn, vector);
}

static void brk(struct broken *b)
{
	mock_raise = b->pcie_ep.msix_raise;
	mock_query = b->pcie_ep.query;
	b->pcie_ep.msix_raise = off_by_one_raise;
}

BROKEN_BACKEND("broken_msix", "", brk)
