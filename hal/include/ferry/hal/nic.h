/**
 * @file ferry/hal/nic.h
 * @brief The NIC device class (declared; its operations arrive with NVMe-oF/TCP and RDMA):
 * connections, memory registration, send/recv/RDMA read/write, NVMe/TCP receive offloads.
 */
#ifndef FERRY_HAL_NIC_H
#define FERRY_HAL_NIC_H

#include <stdint.h>
#include <ferry/export.h>

FERRY_BEGIN_DECLS

/** ABI version of ::ferry_hal_nic_ops. */
#define FERRY_HAL_NIC_ABI_VERSION 1

/** NIC ops (members are added with NVMe-oF; ABI version bumps then). */
struct ferry_hal_nic_ops {
	/** Required: FERRY_HAL_NIC_ABI_VERSION. */
	uint32_t abi_version;
};

FERRY_END_DECLS

#endif /* FERRY_HAL_NIC_H */
