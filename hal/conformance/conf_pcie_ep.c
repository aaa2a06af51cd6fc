/*
 * Conformance, the PCIe endpoint class as far as it can be checked without a host: query is
 * sane, each function's domain is one of the device's PCIe domains, out-of-range functions
 * and doorbell ranges are refused, attach/detach/re-attach and a double attach (-EBUSY),
 * MSI-X vector bounds, poll with nothing pending. The host-driven checks (BAR access order,
 * doorbells, MSI-X delivery) are in conf_pcie_host.c.
 */
#include "conf.h"

static int h_read(void *ctx, uint32_t bar, uint64_t off, uint32_t size, uint64_t *val)
{
	*val = 0;
	return 0;
}

static int h_write(void *ctx, uint32_t bar, uint64_t off, uint32_t size, uint64_t val)
{
	return 0;
}

static const struct ferry_hal_pcie_ep_handlers handlers = {.bar_read = h_read,
							   .bar_write = h_write};

CONF_TEST(pcie_ep, basics)
{
	const struct ferry_hal_backend *b = conf_backend(param);
	if (!b->pcie_ep)
		CONF_SKIP("no PCIe endpoint class (ferry_hal_backend::pcie_ep is NULL)");
	struct conf_ctx c;
	conf_open(param, &c); /* skips a backend without a DMA engine too: domains need one */
	const struct ferry_hal_pcie_ep_ops *ep = b->pcie_ep;
	CONF_ASSERT(ferry_device_get_classes(c.dev) & FERRY_DEVICE_CLASS_PCIE_EP,
		    "FERRY_DEVICE_CLASS_PCIE_EP not reported");
	struct ferry_hal_pcie_ep_info info;
	memset(&info, 0, sizeof(info));
	CONF_RC(ep->query(c.dev, &info), 0, "pcie_ep query");
	CONF_ASSERT(info.num_functions >= 1, "num_functions %u", info.num_functions);
	CONF_ASSERT(info.bar0_size >= 4096 && (info.bar0_size & (info.bar0_size - 1)) == 0,
		    "bar0_size 0x%x is not a power of two >= 4 KiB", info.bar0_size);
	CONF_ASSERT(info.max_msix >= 1, "max_msix %u", info.max_msix);

	struct ferry_memdomain *doms[16];
	uint32_t nd = conf_pcie_domains(&c, doms, 16);
	for (uint32_t fn = 0; fn < info.num_functions; fn++) {
		struct ferry_memdomain *d = ep->get_domain(c.dev, fn);
		CONF_ASSERT(d != NULL, "function %u has no domain", fn);
		CONF_ASSERT(ferry_memdomain_get_type(d) == FERRY_MEMDOMAIN_PCIE,
			    "function %u's domain is not of type PCIE", fn);
		int found = 0;
		for (uint32_t k = 0; k < nd; k++)
			found |= doms[k] == d;
		CONF_ASSERT(found, "function %u's domain '%s' is not named '%s.<...>'", fn,
			    ferry_memdomain_get_name(d), ferry_device_get_name(c.dev));
		for (uint32_t g = 0; g < fn; g++)
			CONF_ASSERT(ep->get_domain(c.dev, g) != d,
				    "functions %u and %u share a domain", g, fn);
	}
	CONF_ASSERT(ep->get_domain(c.dev, info.num_functions) == NULL,
		    "get_domain of function %u (out of range) returned a domain",
		    info.num_functions);

	struct ferry_hal_pcie_ep_attach_opts o = {.size = sizeof(o),
						  .doorbell_offset = 0x1000,
						  .doorbell_count = 2,
						  .handlers = &handlers};
	if (o.doorbell_offset + 8 > info.bar0_size)
		o.doorbell_offset = 0;
	CONF_RC(ep->attach(c.dev, info.num_functions, &o), -EINVAL,
		"attach of an out-of-range function");
	struct ferry_hal_pcie_ep_attach_opts bad = o;
	bad.doorbell_offset = info.bar0_size - 4;
	bad.doorbell_count = 4;
	CONF_RC(ep->attach(c.dev, 0, &bad), -EINVAL, "attach with doorbells leaving BAR0");
	CONF_RC(ep->attach(c.dev, 0, &o), 0, "attach function 0");
	CONF_RC(ep->attach(c.dev, 0, &o), -EBUSY, "attach function 0 twice");
	CONF_RC(ep->msix_raise(c.dev, 0, 0), 0, "msix_raise vector 0 of an attached function");
	CONF_ASSERT(ep->msix_raise(c.dev, 0,
				   (uint16_t)(info.max_msix < 65535 ? info.max_msix : 65535)) < 0,
		    "msix_raise of vector max_msix accepted");
	int n = ep->poll(c.dev, 16);
	CONF_ASSERT(n >= 0, "poll returned %d (%s)", n, ferry_strerror(n));
	ep->detach(c.dev, 0);
	CONF_RC(ep->attach(c.dev, 0, &o), 0, "attach function 0 again after detach");
	ep->detach(c.dev, 0);
	conf_close(&c);
}
