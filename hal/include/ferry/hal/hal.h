/**
 * @file ferry/hal/hal.h
 * @brief Umbrella header of the backend SDK.
 */
#ifndef FERRY_HAL_HAL_H
#define FERRY_HAL_HAL_H

#include <ferry/hal/backend.h>
#include <ferry/hal/dma.h>
#include <ferry/hal/accel.h>
#include <ferry/hal/pcie_ep.h>
#include <ferry/hal/nic.h>
#include <ferry/hal/rdma.h>
#include <ferry/hal/iov.h>

#endif /* FERRY_HAL_HAL_H */
