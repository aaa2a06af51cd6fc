/**
 * @file ferry/hal/pcie_ep.h
 * @brief The PCIe endpoint device class (declared; its operations arrive with the NVMe
 * endpoint): BAR register access callbacks, doorbell notification, MSI-X to the host and one
 * memory domain per PCI function.
 */
#ifndef FERRY_HAL_PCIE_EP_H
#define FERRY_HAL_PCIE_EP_H

#include <stdint.h>
#include <ferry/export.h>

FERRY_BEGIN_DECLS

/** ABI version of ::ferry_hal_pcie_ep_ops. */
#define FERRY_HAL_PCIE_EP_ABI_VERSION 1

/** PCIe endpoint ops (members are added with the NVMe endpoint; ABI version bumps then). */
struct ferry_hal_pcie_ep_ops {
	/** Required: FERRY_HAL_PCIE_EP_ABI_VERSION. */
	uint32_t abi_version;
};

FERRY_END_DECLS

#endif /* FERRY_HAL_PCIE_EP_H */
