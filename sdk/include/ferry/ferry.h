/**
 * @file ferry/ferry.h
 * @brief Umbrella header of the Ferry SDK (the integrator's API).
 */
#ifndef FERRY_FERRY_H
#define FERRY_FERRY_H

#include <ferry/export.h>
#include <ferry/log.h>
#include <ferry/memdomain.h>
#include <ferry/device.h>
#include <ferry/xfer.h>

#endif /* FERRY_FERRY_H */
