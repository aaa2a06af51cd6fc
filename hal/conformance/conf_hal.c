/*
 * Conformance, the HAL descriptor of every registered backend: well formed, and what the
 * registry does with copies of it (a wrong backend or class-table ABI version refused with
 * -EPROTO and not registered, a duplicate name refused, a correct copy accepted). Also the
 * SDK side of "NULL means unsupported": a domain whose ops table has only its abi_version
 * answers -ENOTSUP everywhere and never calls back.
 */
#include <stdio.h>
#include "conf.h"
#include <ferry/module/memdomain.h>

/* Registers @p b (a modified copy) expecting @p want; a refused copy must not be findable. */
static void try_register(const struct ferry_hal_backend *b, int want, const char *what)
{
	int rc = ferry_hal_register(b);
	CONF_ASSERT(rc == want, "register a copy with %s: got %d (%s), want %d (%s)", what, rc,
		    ferry_strerror(rc), want, ferry_strerror(want));
	if (rc == 0) {
		CONF_ASSERT(ferry_hal_find(b->name) == b, "registered copy not found");
		CONF_ASSERT(ferry_hal_unregister(b) == 0, "unregister the copy");
	}
	CONF_ASSERT(ferry_hal_find(b->name) == NULL, "copy '%s' still registered after %s", b->name,
		    what);
}

CONF_TEST(hal, descriptor_and_abi_checks)
{
	const struct ferry_hal_backend *orig = conf_backend(param);
	size_t nl = strlen(orig->name);
	CONF_ASSERT(nl >= 1 && nl < FERRY_HAL_NAME_MAX, "name length %zu", nl);
	CONF_ASSERT(orig->abi_version == FERRY_HAL_ABI_VERSION, "abi_version %u",
		    orig->abi_version);
	CONF_ASSERT(orig->open && orig->close, "open and close are required");
	CONF_ASSERT(!orig->pci_ids || orig->probe, "a PCI ID table without a probe");
	CONF_ASSERT(ferry_hal_find(orig->name) == orig, "lookup by name finds another backend");

	char name[FERRY_HAL_NAME_MAX];
	snprintf(name, sizeof(name), "conf-copy-%u", param->index);
	struct ferry_hal_backend copy = *orig;
	copy.name = name;
	try_register(&copy, 0, "the same tables and a new name");

	copy.abi_version = FERRY_HAL_ABI_VERSION + 1;
	try_register(&copy, -EPROTO, "abi_version + 1");
	copy.abi_version = 0;
	try_register(&copy, -EPROTO, "abi_version 0");
	copy.abi_version = FERRY_HAL_ABI_VERSION;

	if (orig->dma) {
		struct ferry_hal_dma_ops dma = *orig->dma;
		dma.abi_version = FERRY_HAL_DMA_ABI_VERSION + 1;
		copy.dma = &dma;
		try_register(&copy, -EPROTO, "a DMA table of abi_version + 1");
		copy.dma = orig->dma;
	}
	if (orig->pcie_ep) {
		struct ferry_hal_pcie_ep_ops ep = *orig->pcie_ep;
		ep.abi_version = FERRY_HAL_PCIE_EP_ABI_VERSION + 1;
		copy.pcie_ep = &ep;
		try_register(&copy, -EPROTO, "a PCIe endpoint table of abi_version + 1");
		copy.pcie_ep = orig->pcie_ep;
	}
	/* Same name, another descriptor: refused, and the original stays registered. */
	struct ferry_hal_backend same = *orig;
	int rc = ferry_hal_register(&same);
	CONF_ASSERT(rc == -EEXIST, "register a copy under the same name: %d (%s), want -EEXIST", rc,
		    ferry_strerror(rc));
	CONF_ASSERT(ferry_hal_find(orig->name) == orig, "the original was replaced");
	CONF_ASSERT(ferry_hal_register(orig) == 0, "re-registering the same pointer is a no-op");
}

/* ---- NULL members: -ENOTSUP from every wrapper (not backend-specific) ---- */

static const struct ferry_memdomain_ops null_ops = {.abi_version = FERRY_MEMDOMAIN_OPS_ABI};

CONF_TEST(hal, null_domain_ops_give_enotsup)
{
	(void)conf_backend(param);
	struct ferry_memdomain *d;
	struct ferry_memdomain_opts o = {.size = sizeof(o),
					 .type = FERRY_MEMDOMAIN_VENDOR_FIRST,
					 .name = "conf.null-ops",
					 .ops = &null_ops};
	CONF_RC(ferry_memdomain_create(&o, &d), 0, "create a domain with no ops");
	uint8_t buf[64], out_buf[64];
	memset(buf, 0x42, sizeof(buf));
	struct iovec r = {(void *)(uintptr_t)0x1000, sizeof(buf)}, l = {buf, sizeof(buf)}, oi[2];
	struct ferry_mem rm = {.domain = d, .iov = &r, .iovcnt = 1}, lm = {.iov = &l, .iovcnt = 1},
			 out = {.iov = oi, .iovcnt = 2};
	struct conf_cb cb = {0};
	CONF_RC(ferry_memdomain_pull(&rm, &lm, conf_cb_fn, &cb), -ENOTSUP, "pull");
	CONF_RC(ferry_memdomain_push(&rm, &lm, conf_cb_fn, &cb), -ENOTSUP, "push");
	CONF_RC(ferry_memdomain_memzero(&rm, conf_cb_fn, &cb), -ENOTSUP, "memzero");
	CONF_RC(ferry_memdomain_translate(&rm, NULL, &out), -ENOTSUP, "translate");
	CONF_RC(ferry_memdomain_invalidate(&rm), -ENOTSUP, "invalidate");
	CONF_RC(ferry_memdomain_poll(d, 8), 0, "poll (NULL: completes before returning)");
	CONF_ASSERT(cb.calls == 0, "a callback ran %d times after -ENOTSUP", cb.calls);
	memset(out_buf, 0x42, sizeof(out_buf));
	CONF_ASSERT(memcmp(buf, out_buf, sizeof(buf)) == 0, "local memory changed");
	ferry_memdomain_destroy(d);
}
