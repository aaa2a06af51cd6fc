/* PCI discovery through libpci: match each function against the backends' ID tables. */
#include <stdio.h>
#include <pci/pci.h>
#include <ferry/hal/backend.h>
#include "core_internal.h"

#define COMP "hal-pci"

static int id_matches(const struct ferry_hal_pci_id *ids, uint16_t vendor, uint16_t device)
{
	for (; ids && (ids->vendor_id || ids->device_id); ids++)
		if (ids->vendor_id == vendor &&
		    (ids->device_id == FERRY_HAL_PCI_ANY_ID || ids->device_id == device))
			return 1;
	return 0;
}

static void pci_quiet(char *msg, ...)
{
	(void)msg;
}

FERRY_API int ferry_hal_pci_discover(unsigned int *probed)
{
	unsigned int nprobed = 0;
	int seen = 0;
	struct pci_access *pacc = pci_alloc();
	if (!pacc) {
		FERRY_ERR(COMP, "libpci: pci_alloc failed");
		return -ENOMEM;
	}
	pacc->warning = pci_quiet;
	pacc->debug = pci_quiet;
	pci_init(pacc);
	pci_scan_bus(pacc);
	for (struct pci_dev *p = pacc->devices; p; p = p->next) {
		pci_fill_info(p, PCI_FILL_IDENT | PCI_FILL_CLASS);
		struct ferry_hal_pci_dev d = {
			.domain = (uint16_t)p->domain,
			.bus = p->bus,
			.dev = p->dev,
			.func = p->func,
			.vendor_id = p->vendor_id,
			.device_id = p->device_id,
			.class_code = (uint32_t)p->device_class << 8,
		};
		snprintf(d.bdf, sizeof(d.bdf), "%04x:%02x:%02x.%x", d.domain, d.bus, d.dev, d.func);
		seen++;
		for (unsigned int i = 0;; i++) {
			const struct ferry_hal_backend *b = ferry_hal_get(i);
			if (!b)
				break;
			if (!b->pci_ids || !id_matches(b->pci_ids, d.vendor_id, d.device_id))
				continue;
			int rc = b->probe(b, &d);
			if (rc == 0) {
				nprobed++;
				FERRY_INFO(COMP, "backend '%s' took %s [%04x:%04x]", b->name,
					   d.bdf, d.vendor_id, d.device_id);
			} else if (rc != -ENODEV) {
				FERRY_WARN(COMP, "backend '%s' probe of %s failed: %d", b->name,
					   d.bdf, rc);
			}
		}
	}
	pci_cleanup(pacc);
	if (probed)
		*probed = nprobed;
	return seen;
}
