/**
 * @file ferry/ferry.h
 * @brief Umbrella header of the Ferry SDK (the integrator's API): includes every public
 * header. Each header also stands alone.
 */
#ifndef FERRY_FERRY_H
#define FERRY_FERRY_H

#include <ferry/export.h>
#include <ferry/log.h>
#include <ferry/memdomain.h>
#include <ferry/device.h>
#include <ferry/dma.h>
#include <ferry/crc.h>
#include <ferry/crypto.h>
#include <ferry/dif.h>
#include <ferry/accel.h>
#include <ferry/bdev.h>
#include <ferry/nvme_spec.h>
#include <ferry/nvme.h>
#include <ferry/transport.h>
#include <ferry/endpoint.h>
#include <ferry/pcie_transport.h>

#endif /* FERRY_FERRY_H */
