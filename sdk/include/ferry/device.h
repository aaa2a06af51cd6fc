/**
 * @file ferry/device.h
 * @brief Devices: an opened instance of a HAL backend (DMA engine, PCIe endpoint, NIC).
 *
 * Firmware picks a backend by name at run time ("mock", "tcp", "rxe", or a vendor's) and
 * opens a device from it with an argument string of comma-separated `key=value` pairs whose
 * keys the backend documents. A device exposes up to three classes (DMA engine, PCIe endpoint,
 * NIC) and may create memory domains (for example one per PCI function), which appear in the
 * domain registry (ferry/memdomain.h) until the device is closed.
 */
#ifndef FERRY_DEVICE_H
#define FERRY_DEVICE_H

#include <stdint.h>
#include <ferry/export.h>

FERRY_BEGIN_DECLS

struct ferry_device;

/** Device class bits returned by ferry_device_get_classes(). */
#define FERRY_DEVICE_CLASS_DMA (1u << 0)     /**< DMA engine (ferry/dma.h) */
#define FERRY_DEVICE_CLASS_PCIE_EP (1u << 1) /**< PCIe endpoint */
#define FERRY_DEVICE_CLASS_NIC (1u << 2)     /**< NIC */

/**
 * @brief Open a device of backend @p backend.
 * @param[in] backend registered backend name.
 * @param[in] args backend arguments ("key=value,key=value"), or NULL/"" for the defaults.
 * @param[out] out the device.
 * @retval 0 success.
 * @retval -ENOENT no backend of that name is registered.
 * @retval -EINVAL bad arguments (the log says which key).
 * @retval other negative errno from the backend.
 */
FERRY_API int ferry_device_open(const char *backend, const char *args, struct ferry_device **out);

/**
 * @brief Close a device: destroys the memory domains it created. Every DMA channel and accel
 * channel opened on it must have been destroyed first, and nothing may be in flight on its
 * domains (a channel used after its device is closed is a use after free). NULL is a no-op.
 * A DMA channel still open is logged as a warning, not destroyed.
 * @param[in] dev the device; invalid after the call.
 */
FERRY_API void ferry_device_close(struct ferry_device *dev);

/**
 * @brief Device name, unique per process ("<backend><n>", e.g. "mock0").
 * @param[in] dev the device.
 * @return the name, valid until the device is closed; NULL for a NULL device.
 */
FERRY_API const char *ferry_device_get_name(const struct ferry_device *dev);

/**
 * @brief Name of the backend the device was opened from.
 * @param[in] dev the device.
 * @return the backend's name (its static storage); NULL for a NULL device.
 */
FERRY_API const char *ferry_device_get_backend_name(const struct ferry_device *dev);

/**
 * @brief The device classes the device offers (the class tables its backend has).
 * @param[in] dev the device.
 * @return bitmask of FERRY_DEVICE_CLASS_*; 0 for a NULL device.
 */
FERRY_API uint32_t ferry_device_get_classes(const struct ferry_device *dev);

/**
 * @brief Names of the registered backends, for listing.
 * @param[in] index 0-based position in registration order.
 * @return the @p index-th name (the backend's static storage), or NULL past the end.
 */
FERRY_API const char *ferry_backend_name(unsigned int index);

FERRY_END_DECLS

#endif /* FERRY_DEVICE_H */
