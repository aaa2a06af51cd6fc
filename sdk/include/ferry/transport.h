/**
 * @file ferry/transport.h
 * @brief NVMe transports as an integrator uses them: create an instance of a registered
 * plugin ("pcie", "tcp", a vendor's), listen for a subsystem, poll.
 *
 * A transport *plugin* is a const ops table registered by name (what a plugin implements and
 * calls is the module tier, <ferry/module/transport.h>). A transport *instance*
 * (struct ferry_transport) is created from a plugin with options (a backend device, an argument
 * string) and listens on addresses for a subsystem: a memory-based transport stands up one
 * controller per PCI function it is given; a message-based one creates a controller per host
 * association. An instance is destroyed by ferry_transport_destroy(), which also destroys the
 * controllers it created.
 *
 * The built-in plugins ("pcie", ferry/pcie_transport.h; "tcp", ferry/tcp_transport.h) are
 * always registered before any vendor plugin, so their names are always taken (see
 * <ferry/module/transport.h>).
 *
 * ## Threading and poll groups (message-based transports)
 * ferry_transport_poll() of an instance runs on one thread at a time: it accepts connections
 * and runs the instance's timers (keep-alive). With no poll group created it also serves
 * every connection itself (single-threaded mode, what the samples use by default).
 *
 * A *poll group* (struct ferry_transport_pg, ferry_transport_pg_create()) is a set of connections
 * polled by one thread, ferry_transport_pg_poll() on its own thread (one thread per group,
 * never two). Once a group exists, new connections are handed to the groups round robin
 * through a message queue (a mutex is taken per connection setup and teardown, never per
 * I/O); a connection stays on its group for its whole life. A controller's admin queue and
 * its I/O queues may be on different groups: Connect of an I/O queue, its teardown, Property
 * Set and keep-alive of a controller run on the group of its admin queue (the groups exchange
 * messages for them); the I/O path of each queue stays on its own group without a lock.
 * Groups are created before the first connection arrives and destroyed after the instance
 * stopped serving (ferry_transport_pg_destroy() refuses a group that owns connections).
 * Memory-based transports ("pcie") have no poll groups (-ENOTSUP).
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
struct ferry_transport_pg;

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

/**
 * @brief Find a registered plugin by name (the built-ins are registered by the first call).
 * @param[in] name the plugin's name (NULL finds nothing).
 * @return the plugin's ops table, or NULL.
 */
FERRY_API const struct ferry_transport_ops *ferry_transport_find(const char *name);

/**
 * @brief List the registered plugins.
 * @param[in] index 0-based position in registration order (the built-ins first).
 * @return the @p index-th plugin's ops table, or NULL past the end.
 */
FERRY_API const struct ferry_transport_ops *ferry_transport_get(unsigned int index);

/**
 * @brief Create an instance of plugin @p name.
 * @param[in] name the plugin's name.
 * @param[in] opts options (may be NULL: no device, no args); copied.
 * @param[out] out the instance, to be released with ferry_transport_destroy().
 * @retval 0 success.
 * @retval -ENOENT no plugin of that name.
 * @retval -EINVAL NULL @p name or @p out, or bad opts->size.
 * @retval -ENOMEM out of memory.
 * @retval other negative errno from the plugin's create.
 */
FERRY_API int ferry_transport_create(const char *name, const struct ferry_transport_opts *opts,
				     struct ferry_transport **out);

/**
 * @brief Destroy an instance (calls the plugin's destroy, which also destroys its
 * controllers and its poll groups still alive). NULL is a no-op.
 * @param[in] transport the instance; invalid after the call.
 */
FERRY_API void ferry_transport_destroy(struct ferry_transport *transport);

/**
 * @brief Expose @p subsys at @p address through the plugin's listen op.
 * @param[in] transport the instance.
 * @param[in] subsys the subsystem to expose.
 * @param[in] address plugin-specific address (e.g. "a.b.c.d:port" for TCP).
 * @retval 0 success; -EINVAL NULL arguments; -ENOTSUP no listen op; else the plugin's errno.
 */
FERRY_API int ferry_transport_listen(struct ferry_transport *transport,
				     struct ferry_nvme_subsystem *subsys, const char *address);

/**
 * @brief Run the instance's poll op (0 if it has none).
 * @param[in] transport the instance.
 * @param[in] max the plugin's bound on work per call.
 * @return work done (>= 0) or a negative errno (-EINVAL: NULL).
 */
FERRY_API int ferry_transport_poll(struct ferry_transport *transport, uint32_t max);

/**
 * @brief The plugin's kind.
 * @param[in] transport the instance.
 * @return memory- or message-based; 0 (no enumerator) for NULL.
 */
FERRY_API enum ferry_transport_kind ferry_transport_get_kind(const struct ferry_transport *transport);

/**
 * @brief The integrator's context of an instance.
 * @param[in] transport the instance.
 * @return opts->user_ctx given at creation; NULL for NULL.
 */
FERRY_API void *ferry_transport_get_user_ctx(const struct ferry_transport *transport);

/**
 * @brief Create a poll group of @p transport (see "Threading and poll groups" above). Create
 * every group before connections arrive: connections accepted earlier stay with
 * ferry_transport_poll().
 * @param[in] transport the instance.
 * @param[out] out the group.
 * @retval 0 success.
 * @retval -EINVAL NULL argument.
 * @retval -ENOTSUP the plugin has no poll groups (memory-based transports).
 * @retval -ENOSPC the plugin's limit of groups is reached.
 * @retval -ENOMEM out of memory.
 */
FERRY_API int ferry_transport_pg_create(struct ferry_transport *transport,
					struct ferry_transport_pg **out);

/**
 * @brief Serve the connections of @p pg: receive, execute, send; at most @p max PDUs per
 * connection (0: the plugin's default). Called on the group's own thread only. Busy polls:
 * returns at once when there is nothing to do (the plugin may wait a few microseconds for
 * readiness when the group is idle).
 * @param[in] pg the group.
 * @param[in] max PDUs per connection at most (0: the plugin's default).
 * @return work done (>= 0) or a negative errno (-EINVAL: NULL).
 */
FERRY_API int ferry_transport_pg_poll(struct ferry_transport_pg *pg, uint32_t max);

/**
 * @brief Destroy a poll group. Its thread must have stopped polling it.
 * @param[in] pg the group; invalid after a return of 0.
 * @retval 0 destroyed (NULL is a no-op).
 * @retval -EBUSY the group still owns connections or a controller: close them first (stop
 *         the hosts), or destroy the transport instance instead: ferry_transport_destroy()
 *         closes every connection and destroys the groups still alive with their handles
 *         (their threads must have stopped polling them first).
 */
FERRY_API int ferry_transport_pg_destroy(struct ferry_transport_pg *pg);

/**
 * @brief The transport instance of a poll group.
 * @param[in] pg the group.
 * @return its instance; NULL for NULL.
 */
FERRY_API struct ferry_transport *
ferry_transport_pg_get_transport(const struct ferry_transport_pg *pg);

FERRY_END_DECLS

#endif /* FERRY_TRANSPORT_H */
