/**
 * @file ferry/hal/nic.h
 * @brief The NIC device class, to come with NVMe-oF/TCP and RDMA: connections, memory
 * registration, send/recv/RDMA read/write, NVMe/TCP receive offloads.
 *
 * No ops table yet: an ops table without members would only version an empty ABI. The table
 * (`struct ferry_hal_nic_ops`, its `abi_version` and the backend's `nic` member) arrives with
 * its first operation.
 */
#ifndef FERRY_HAL_NIC_H
#define FERRY_HAL_NIC_H

#endif /* FERRY_HAL_NIC_H */
