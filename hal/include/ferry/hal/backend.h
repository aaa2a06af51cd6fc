/**
 * @file ferry/hal/backend.h
 * @brief The vendor interface: one backend, its registration and PCI discovery.
 *
 * A backend is one const ::ferry_hal_backend: an ABI version, a name, an optional PCI ID
 * table with a probe, open/close of a device instance, and up to three device classes (DMA
 * engine, PCIe endpoint, NIC), each a const ops table where NULL means "not supported".
 *
 * Registration: FERRY_HAL_BACKEND(sym, desc) in the backend's source registers @p desc when the
 * object is loaded and emits the named symbol `ferry_hal_backend_<sym>`. A static link keeps
 * the object (and so the registration) by referencing that symbol, which the CMake helper
 * ferry_link_backends() does; no --whole-archive is needed. ferry_hal_register() does the same
 * explicitly.
 *
 * Stability: this header is the backend SDK. Every table carries an abi_version checked at
 * registration; a mismatch is refused with -EPROTO and a message naming both versions.
 */
#ifndef FERRY_HAL_BACKEND_H
#define FERRY_HAL_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <ferry/export.h>
#include <ferry/device.h>

FERRY_BEGIN_DECLS

/** ABI version of ::ferry_hal_backend. */
#define FERRY_HAL_ABI_VERSION 1

/** Maximum backend name length including the NUL. */
#define FERRY_HAL_NAME_MAX 32

struct ferry_hal_dma_ops;
struct ferry_hal_pcie_ep_ops;
struct ferry_hal_nic_ops;

/** One PCI vendor/device pair; a table ends with {0, 0}. 0xffff in device matches any. */
struct ferry_hal_pci_id {
	uint16_t vendor_id; /**< PCI vendor ID; 0 (with device_id 0) ends a table */
	uint16_t device_id; /**< PCI device ID, or FERRY_HAL_PCI_ANY_ID for any device of the vendor */
};

/** Match any device ID of a vendor. */
#define FERRY_HAL_PCI_ANY_ID 0xffff

/** A PCI function found by discovery. */
struct ferry_hal_pci_dev {
	uint16_t domain;     /**< PCI domain (segment) */
	uint8_t bus;         /**< bus number */
	uint8_t dev;         /**< device number */
	uint8_t func;        /**< function number */
	uint16_t vendor_id;  /**< vendor ID */
	uint16_t device_id;  /**< device ID */
	uint32_t class_code; /**< base class << 16 | subclass << 8 | prog-if */
	char bdf[16];        /**< "dddd:bb:dd.f" */
};

/** A backend. Static storage; referenced, never copied, by the registry. */
struct ferry_hal_backend {
	/** Required: FERRY_HAL_ABI_VERSION. */
	uint32_t abi_version;
	/** Required: unique name, 1..FERRY_HAL_NAME_MAX-1 characters. */
	const char *name;
	/** Optional: PCI IDs this backend drives; ends with {0, 0}. */
	const struct ferry_hal_pci_id *pci_ids;
	/**
	 * Optional (required if @p pci_ids is set): called by ferry_hal_pci_discover() for each
	 * PCI function whose IDs match the table. Return 0 if the backend takes the function,
	 * -ENODEV to decline, another negative errno on failure.
	 */
	int (*probe)(const struct ferry_hal_backend *backend, const struct ferry_hal_pci_dev *pci);
	/**
	 * Required: set up a device instance. Parse @p args (never NULL; may be ""), store the
	 * backend's state with ferry_hal_dev_set_priv(), create the device's memory domains.
	 * On error, leave nothing allocated and return a negative errno (log which key was bad).
	 */
	int (*open)(struct ferry_device *dev, const char *args);
	/** Required: undo open(): destroy domains and free the private state. */
	void (*close)(struct ferry_device *dev);
	/** Optional: the DMA engine class (ferry/hal/dma.h). */
	const struct ferry_hal_dma_ops *dma;
	/** Optional: the PCIe endpoint class (ferry/hal/pcie_ep.h). */
	const struct ferry_hal_pcie_ep_ops *pcie_ep;
	/** Optional: the NIC class (ferry/hal/nic.h). */
	const struct ferry_hal_nic_ops *nic;
};

/**
 * @brief Register a backend (idempotent for the same pointer).
 *
 * The registry keeps the pointer, never a copy: @p backend and its class tables must stay
 * valid until ferry_hal_unregister().
 *
 * @param[in] backend the backend; its ABI versions and required members are checked.
 * @retval 0 registered (or already registered).
 * @retval -EINVAL NULL, no name, a name too long, missing open/close, pci_ids without probe.
 * @retval -EPROTO abi_version (of the backend or of one of its class tables) is not the one
 *         this library was built with; the log names both.
 * @retval -EEXIST another backend has this name.
 * @retval -ENOSPC registry full.
 */
FERRY_API int ferry_hal_register(const struct ferry_hal_backend *backend);

/**
 * @brief Remove a backend from the registry.
 * @param[in] backend the pointer given to ferry_hal_register().
 * @retval 0 removed; the later backends move down one index.
 * @retval -EBUSY a device of it is still open (the log says how many).
 * @retval -ENOENT @p backend is not registered.
 */
FERRY_API int ferry_hal_unregister(const struct ferry_hal_backend *backend);

/**
 * @brief Find a registered backend by name.
 * @param[in] name the backend name (NULL finds nothing).
 * @return the backend, or NULL if none of that name is registered.
 */
FERRY_API const struct ferry_hal_backend *ferry_hal_find(const char *name);

/**
 * @brief List the registered backends.
 * @param[in] index 0-based position in registration order.
 * @return the @p index-th registered backend, or NULL past the end.
 */
FERRY_API const struct ferry_hal_backend *ferry_hal_get(unsigned int index);

/**
 * @brief Enumerate the machine's PCI functions through libpci and call the probe of every
 * registered backend whose ID table matches.
 * @param[out] probed number of probe calls that returned 0 (may be NULL).
 * @return number of PCI functions seen (>= 0), or a negative errno (-ENODEV: libpci could not
 *         access the bus).
 */
FERRY_API int ferry_hal_pci_discover(unsigned int *probed);

/**
 * @brief Backend private state of a device (set by open()).
 * @param[in] dev the device (NULL gives NULL).
 * @return the pointer stored with ferry_hal_dev_set_priv(), or NULL.
 */
FERRY_API void *ferry_hal_dev_get_priv(const struct ferry_device *dev);

/**
 * @brief Store the backend private state of a device.
 *
 * The device keeps the pointer only; the backend owns the memory and frees it in close().
 *
 * @param[in] dev the device (NULL: nothing is stored).
 * @param[in] priv the backend's state.
 */
FERRY_API void ferry_hal_dev_set_priv(struct ferry_device *dev, void *priv);

/**
 * @brief The backend a device was opened from.
 * @param[in] dev the device (NULL gives NULL).
 * @return the backend, or NULL.
 */
FERRY_API const struct ferry_hal_backend *ferry_hal_dev_get_backend(const struct ferry_device *dev);

/**
 * @brief Look a key up in a backend argument string ("k1=v1,k2=v2").
 * @param[in] args the string given to open().
 * @param[in] key the key (not NULL, not empty).
 * @param[out] val buffer for the value (NUL-terminated).
 * @param[in] len size of @p val.
 * @retval 0 found; -ENOENT absent; -ENAMETOOLONG value longer than @p len - 1;
 *         -EINVAL @p key NULL or empty.
 */
FERRY_API int ferry_hal_arg_get(const char *args, const char *key, char *val, size_t len);

/**
 * @brief Check that every key of @p args is in the NULL-terminated list @p known.
 * @param[in] args the string given to open() (NULL is taken as "").
 * @param[in] known NULL-terminated list of accepted keys.
 * @retval 0 all known; -EINVAL an unknown or malformed key (logged).
 */
FERRY_API int ferry_hal_args_check(const char *args, const char *const *known);

/** Export attribute of a backend's named registration symbol. */
#define FERRY_HAL_SYM_EXPORT __attribute__((visibility("default"), used))

/**
 * @brief Define the registration of backend @p desc under the symbol ferry_hal_backend_<sym>.
 *
 * Expands to the named symbol (a pointer to @p desc, what ferry_link_backends() references) and
 * a load-time registration. A registration failure (e.g. ABI mismatch) is logged; the backend
 * is then simply not found by name.
 */
#define FERRY_HAL_BACKEND(sym, desc)                                                           \
	FERRY_HAL_SYM_EXPORT const struct ferry_hal_backend *const ferry_hal_backend_##sym =  \
		&(desc);                                                                       \
	__attribute__((constructor)) static void ferry_hal_backend_register_##sym(void)        \
	{                                                                                      \
		(void)ferry_hal_register(&(desc));                                             \
	}

/* ---------------------------------------------------------------------------------------------
 * Backends as plugins (shared objects loaded at run time)
 */

/** ABI version of ::ferry_hal_plugin (the entry point of a plugin). */
#define FERRY_HAL_PLUGIN_ABI_VERSION 1

/**
 * @brief Entry point of a backend plugin: the one symbol ferry_hal_load() looks up
 * (`ferry_hal_plugin_entry`, defined by FERRY_HAL_PLUGIN()).
 *
 * The versions are the ones of the headers the plugin was compiled against, so that a plugin
 * built against another HAL is refused with both versions named before any of its tables is
 * used.
 */
struct ferry_hal_plugin {
	/** FERRY_HAL_PLUGIN_ABI_VERSION. */
	uint32_t abi_version;
	/** FERRY_HAL_ABI_VERSION the plugin was built with (checked like a registration). */
	uint32_t hal_abi_version;
	/** Ferry version the plugin was built against (FERRY_VERSION_MAJOR << 16 | MINOR << 8 | PATCH); informational. */
	uint32_t ferry_version;
	/** Reserved, 0. */
	uint32_t reserved;
	/** The backend the plugin provides (static storage inside the plugin). */
	const struct ferry_hal_backend *backend;
};

/** Name of the entry symbol of a plugin, as a string (for dlsym()). */
#define FERRY_HAL_PLUGIN_SYMBOL "ferry_hal_plugin_entry"

/**
 * @brief Define the entry point of a backend plugin providing @p desc.
 *
 * Put it in exactly one source file of a shared object built with the backend's sources. The
 * plugin registers nothing when it is loaded: ferry_hal_load() registers @p desc after the
 * version checks.
 */
#define FERRY_HAL_PLUGIN(desc)                                                                 \
	FERRY_HAL_SYM_EXPORT const struct ferry_hal_plugin ferry_hal_plugin_entry = {          \
		.abi_version = FERRY_HAL_PLUGIN_ABI_VERSION,                                   \
		.hal_abi_version = FERRY_HAL_ABI_VERSION,                                      \
		.ferry_version = ((uint32_t)FERRY_VERSION_MAJOR << 16) |                       \
				 ((uint32_t)FERRY_VERSION_MINOR << 8) | FERRY_VERSION_PATCH,   \
		.reserved = 0,                                                                 \
		.backend = &(desc),                                                            \
	}

/**
 * @brief Load a backend plugin and register the backend it provides.
 *
 * @p what is a path when it contains a '/': that file is loaded. A file name ending in `.so`
 * (`libferry-acme.so`) that names a file in the current directory is that file. Otherwise it
 * is a name (`acme`) or a file name, searched in order in every directory of the environment
 * variable `FERRY_BACKEND_PATH` (colon-separated), then in `ferry/backends` beside the loaded
 * libferry (`<prefix>/<libdir>/ferry/backends` of an install, wherever it was moved), then in
 * the plugin directory fixed when Ferry was configured; for a name the files tried are
 * `libferry-<name>.so`, `libferry_<name>.so` and `<name>.so`.
 *
 * The plugin's ::ferry_hal_plugin is checked (entry ABI, HAL ABI), then its backend is
 * registered with ferry_hal_register() (which checks every class table). Loading the same
 * plugin twice returns its backend again. A refused plugin is unloaded.
 *
 * Threading: call it while no other thread uses the registry (at start-up), like
 * ferry_hal_register().
 *
 * @param[in] what path, name or file name (not NULL, not empty).
 * @param[out] out the registered backend (may be NULL).
 * @retval 0 loaded and registered.
 * @retval -EINVAL @p what NULL or empty.
 * @retval -ENOENT no such file (the message lists where it looked).
 * @retval -ENOEXEC the file could not be loaded (dlopen()'s reason) or has no entry symbol.
 * @retval -EPROTO built against another plugin or HAL ABI (the message names both versions),
 *         or a class table's ABI refused at registration.
 * @retval -EEXIST another backend of that name is already registered.
 * @retval other a negative errno of ferry_hal_register().
 */
FERRY_API int ferry_hal_load(const char *what, const struct ferry_hal_backend **out);

FERRY_END_DECLS

#endif /* FERRY_HAL_BACKEND_H */
