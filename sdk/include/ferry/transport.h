/**
 * @file ferry/transport.h
 * @brief NVMe transports as an integrator uses them: create an instance of a registered
 * plugin ("pcie", "tcp", a vendor's), listen for a subsystem, poll.
 *
 * A transport *plugin* is a const ops table registered by name (what a plugin implements and
 * calls is the module tier, <ferry/module/transport.h>). A transport *instance*
 * (::ferry_transport) is created from a plugin with options (a backend device, an argument
 * string) and listens on addresses for a subsystem: a memory-based transport stands up one
 * controller per PCI function it is given; a message-based one creates a controller per host
 * association. An instance is destroyed by ferry_transport_destroy(), which also destroys the
 * controllers it created.
 *
 * The built-in plugins ("pcie", ferry/pcie_transport.h) are always registered before any
 * vendor plugin, so their names are always taken (see <ferry/module/transport.h>).
 */
#ifndef FERRY_TRANSPORT_H
#define FERRY_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <ferry/export.h>

FERRY_BEGIN_DECLS

struct ferry_device;
struct ferry_transport;
struct ferry_transport_ops;
struct ferry_nvme_subsystem;

/** Maximum length of a transport name, including the NUL. */
#define FERRY_TRANSPORT_NAME_MAX 32

/** Transport category (NVMe 2.0 "Theory of Operation"). */
enum ferry_transport_kind {
	FERRY_TRANSPORT_MEMORY = 1,  /**< queues in host memory, registers, doorbells (PCIe) */
	FERRY_TRANSPORT_MESSAGE = 2, /**< command and response capsules (TCP, RDMA) */
};

/** Options of ferry_transport_create(). */
struct ferry_transport_opts {
	size_t size;                 /**< sizeof(struct ferry_transport_opts) */
	struct ferry_device *device; /**< backend device providing the hardware (may be NULL) */
	const char *args;            /**< plugin-specific "key=value,..." string (NULL = "") */
	void *user_ctx;              /**< the integrator's, returned by ferry_transport_get_user_ctx() */
};

/** @brief Registered plugin of that name, or NULL. */
FERRY_API const struct ferry_transport_ops *ferry_transport_find(const char *name);

/** @brief The @p index-th registered plugin (registration order), or NULL past the end. */
FERRY_API const struct ferry_transport_ops *ferry_transport_get(unsigned int index);

/**
 * @brief Create an instance of plugin @p name.
 * @param[in] opts options (may be NULL: no device, no args).
 * @retval 0 success.
 * @retval -ENOENT no plugin of that name.
 * @retval -EINVAL bad options.
 * @retval other negative errno from the plugin's create.
 */
FERRY_API int ferry_transport_create(const char *name, const struct ferry_transport_opts *opts,
				     struct ferry_transport **out);

/** @brief Destroy an instance (calls the plugin's destroy). NULL is a no-op. */
FERRY_API void ferry_transport_destroy(struct ferry_transport *transport);

/**
 * @brief Expose @p subsys at @p address through the plugin's listen op.
 * @retval 0 success; -EINVAL NULL arguments; -ENOTSUP no listen op; else the plugin's errno.
 */
FERRY_API int ferry_transport_listen(struct ferry_transport *transport,
				     struct ferry_nvme_subsystem *subsys, const char *address);

/**
 * @brief Run the instance's poll op (0 if it has none).
 * @return work done (>= 0) or a negative errno.
 */
FERRY_API int ferry_transport_poll(struct ferry_transport *transport, uint32_t max);

/** @brief The plugin's kind. */
FERRY_API enum ferry_transport_kind ferry_transport_get_kind(const struct ferry_transport *transport);

/** @brief opts->user_ctx given at creation. */
FERRY_API void *ferry_transport_get_user_ctx(const struct ferry_transport *transport);

FERRY_END_DECLS

#endif /* FERRY_TRANSPORT_H */
