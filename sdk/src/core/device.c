/* Devices: opening an instance of a registered backend and the accessors backends use. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ferry/hal/hal.h>
#include "core_internal.h"

#define COMP "device"

static atomic_uint dev_seq;

FERRY_API int ferry_device_open(const char *backend, const char *args, struct ferry_device **out)
{
	if (!backend || !out) {
		FERRY_ERR(COMP, "open: NULL %s", !backend ? "backend name" : "out");
		return -EINVAL;
	}
	const struct ferry_hal_backend *b = ferry_hal_find(backend);
	if (!b) {
		FERRY_ERR(COMP, "open: no backend named '%s' is registered", backend);
		return -ENOENT;
	}
	struct ferry_device *dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->backend = b;
	snprintf(dev->name, sizeof(dev->name), "%s%u", b->name, atomic_fetch_add(&dev_seq, 1));
	if (hal_backend_ref(b) < 0) {
		free(dev);
		FERRY_ERR(COMP, "open: backend '%s' was unregistered", backend);
		return -ENOENT;
	}
	int rc = b->open(dev, args ? args : "");
	if (rc) {
		if (rc > 0)
			rc = -EIO; /* a backend broke the convention; never let it leak out */
		hal_backend_unref(b);
		free(dev);
		return rc;
	}
	*out = dev;
	return 0;
}

FERRY_API void ferry_device_close(struct ferry_device *dev)
{
	if (!dev)
		return;
	if (dev->open_chans)
		FERRY_WARN(COMP, "close %s: %u DMA channel(s) still open", dev->name,
			   dev->open_chans);
	dev->backend->close(dev);
	hal_backend_unref(dev->backend);
	free(dev);
}

FERRY_API const char *ferry_device_get_name(const struct ferry_device *dev)
{
	return dev ? dev->name : NULL;
}

FERRY_API const char *ferry_device_get_backend_name(const struct ferry_device *dev)
{
	return dev ? dev->backend->name : NULL;
}

FERRY_API uint32_t ferry_device_get_classes(const struct ferry_device *dev)
{
	if (!dev)
		return 0;
	return (dev->backend->dma ? FERRY_DEVICE_CLASS_DMA : 0) |
	       (dev->backend->pcie_ep ? FERRY_DEVICE_CLASS_PCIE_EP : 0) |
	       (dev->backend->nic ? FERRY_DEVICE_CLASS_NIC : 0);
}

FERRY_API void *ferry_hal_dev_get_priv(const struct ferry_device *dev)
{
	return dev ? dev->priv : NULL;
}

FERRY_API void ferry_hal_dev_set_priv(struct ferry_device *dev, void *priv)
{
	if (dev)
		dev->priv = priv;
}

FERRY_API const struct ferry_hal_backend *ferry_hal_dev_get_backend(const struct ferry_device *dev)
{
	return dev ? dev->backend : NULL;
}
