/**
 * @file ferry/module/transport.h
 * @brief The NVMe transport plugin API (module tier): one const ops table for memory-based
 * (PCIe endpoint) and message-based (NVMe-oF TCP, RDMA) transports; a registry where vendors
 * add their own. Integrators use <ferry/transport.h>; the controller functions a plugin
 * calls are in <ferry/module/nvme_ctrlr.h>.
 *
 * A transport *plugin* is a const ::ferry_transport_ops registered by name. A transport
 * *instance* (struct ferry_transport) is created from a plugin with options (a backend device,
 * an argument string) and listens on addresses for a subsystem: a memory-based transport
 * stands up one controller per PCI function it is given; a message-based one creates a
 * controller per host association.
 *
 * ## What each side does
 * The controller core (ferry/module/nvme_ctrlr.h) is transport independent. The transport:
 * - creates controllers with ferry_nvme_ctrlr_create() (passing itself and a per-controller
 *   context, and for memory-based transports the PCI function's host memory domain);
 * - memory-based: forwards BAR0 reads/writes and doorbell notifications to
 *   ferry_nvme_ctrlr_reg_read()/reg_write(), calls ferry_nvme_ctrlr_poll() from its poll, and
 *   implements raise_irq (MSI-X vector per completion queue);
 * - message-based: creates queues with ferry_nvme_ctrlr_connect_queue(), receives capsules
 *   and their data and hands them to ferry_nvme_ctrlr_submit(), and implements
 *   send_completion (response capsule, after any read data was sent).
 * The core calls the ops below for the controller; they run on the controller's polling
 * thread and must not call back into the same controller's reg_write/poll/submit.
 *
 * ## Lifetime
 * A plugin stays registered until ferry_transport_unregister(); unregistering a plugin with
 * live instances fails with -EBUSY.
 *
 * ## Built-in plugins
 * The built-in plugins ("pcie", ferry/pcie_transport.h) are registered by the first call of
 * any registry function (register, unregister, find, get, create), before that call does its
 * own work. Their names are therefore always taken: a vendor plugin registered under a
 * built-in name gets -EEXIST, even when it registers before anything else touched the
 * registry, and a built-in cannot be unregistered (-EPERM). A vendor's own PCIe transport
 * uses another name (e.g. "acme-pcie"). An instance is destroyed by ferry_transport_destroy()
 * after its controllers (the plugin's destroy op must destroy the controllers it created).
 *
 * Every op is optional unless marked required; a NULL op makes the wrapper return -ENOTSUP.
 */
#ifndef FERRY_MODULE_TRANSPORT_H
#define FERRY_MODULE_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <ferry/export.h>
#include <ferry/nvme_spec.h>
#include <ferry/transport.h>

FERRY_BEGIN_DECLS

struct ferry_device;
struct ferry_transport;
struct ferry_nvme_ctrlr;
struct ferry_nvme_subsystem;

/** ABI version of ::ferry_transport_ops; bump when the table changes. */
#define FERRY_TRANSPORT_OPS_ABI 2

/** Controller events reported to the transport (ctrlr_event op). */
enum ferry_nvme_ctrlr_event {
	FERRY_NVME_EVENT_ENABLED = 1,           /**< CC.EN 0→1 accepted: CSTS.RDY = 1 */
	FERRY_NVME_EVENT_DISABLED = 2,          /**< reset finished: CSTS.RDY = 0, queues gone */
	FERRY_NVME_EVENT_SHUTDOWN_COMPLETE = 3, /**< CSTS.SHST = complete */
	FERRY_NVME_EVENT_FATAL = 4,             /**< CSTS.CFS = 1 (bad enable, host memory fault
						     on a queue); the host must reset */
};

/**
 * @brief A transport plugin. Static storage; referenced, never copied, by the registry.
 */
struct ferry_transport_ops {
	/** Required: FERRY_TRANSPORT_OPS_ABI (a mismatch is refused with -EPROTO). */
	uint32_t abi_version;
	/** Required: unique name, 1..FERRY_TRANSPORT_NAME_MAX-1 characters ("pcie", "tcp"...). */
	const char *name;
	/** Required: memory- or message-based. */
	enum ferry_transport_kind kind;

	/**
	 * Optional: set the instance up (parse opts->args, open hardware); store state with
	 * ferry_transport_set_ctx(). On error leave nothing allocated and return a negative errno.
	 */
	int (*create)(struct ferry_transport *transport, const struct ferry_transport_opts *opts);
	/** Optional: undo create(), destroying the controllers the instance created. */
	void (*destroy)(struct ferry_transport *transport);
	/**
	 * Optional: expose @p subsys at @p address (PCIe: a function, e.g. "fn=0"; TCP:
	 * "127.0.0.1:4420"). Memory-based transports typically create the controller here.
	 */
	int (*listen)(struct ferry_transport *transport, struct ferry_nvme_subsystem *subsys,
		      const char *address);
	/** Optional: do the instance's work (accept connections, poll controllers); return the
	 *  amount of work done (>= 0) or a negative errno. */
	int (*poll)(struct ferry_transport *transport, uint32_t max);

	/**
	 * Memory-based, optional (no interrupts without it): raise interrupt @p vector of the
	 * controller's function (MSI-X). Called after the completion entry is in host memory.
	 */
	int (*raise_irq)(struct ferry_transport *transport, struct ferry_nvme_ctrlr *ctrlr,
			 void *ctrlr_ctx, uint16_t vector);
	/**
	 * Message-based, required for FERRY_TRANSPORT_MESSAGE: send the response capsule of the
	 * command submitted with @p cmd_ctx on queue @p qid. Read data has been placed in the
	 * submit's data descriptor. Called exactly once per accepted command; the @p cqe
	 * buffer is valid only during the call.
	 */
	int (*send_completion)(struct ferry_transport *transport, struct ferry_nvme_ctrlr *ctrlr,
			       void *ctrlr_ctx, uint16_t qid, const struct ferry_nvme_cqe *cqe,
			       void *cmd_ctx);
	/** Optional: a controller state change (ferry_nvme_ctrlr_event). */
	void (*ctrlr_event)(struct ferry_transport *transport, struct ferry_nvme_ctrlr *ctrlr,
			    void *ctrlr_ctx, enum ferry_nvme_ctrlr_event event);

	/**
	 * Optional (message-based; all three or none): create a poll group, storing the
	 * plugin's state of it in @p pg_ctx. From then on the instance's poll hands new
	 * connections to its groups (see "Threading and poll groups" in <ferry/transport.h>).
	 */
	int (*pg_create)(struct ferry_transport *transport, void **pg_ctx);
	/** Optional: serve the group's connections (the group's thread); work done or -errno. */
	int (*pg_poll)(struct ferry_transport *transport, void *pg_ctx, uint32_t max);
	/** Optional: destroy a group; -EBUSY while it owns connections (nothing is freed). */
	int (*pg_destroy)(struct ferry_transport *transport, void *pg_ctx);
};

/**
 * @brief Register a transport plugin (idempotent for the same pointer). The built-in plugins
 * are registered first (see "Built-in plugins" above). The registry keeps the pointer:
 * @p ops must stay valid until ferry_transport_unregister().
 * @param[in] ops the plugin.
 * @retval 0 registered.
 * @retval -EINVAL NULL, bad name, bad kind, or a message-based plugin without send_completion.
 * @retval -EPROTO abi_version mismatch (the log names both versions).
 * @retval -EEXIST another plugin has this name (a built-in name such as "pcie" included).
 * @retval -ENOSPC registry full.
 */
FERRY_API int ferry_transport_register(const struct ferry_transport_ops *ops);

/**
 * @brief Remove a plugin from the registry.
 * @param[in] ops the pointer given to ferry_transport_register().
 * @retval 0 removed.
 * @retval -EINVAL NULL.
 * @retval -ENOENT not registered.
 * @retval -EBUSY instances of it exist.
 * @retval -EPERM a built-in plugin (they stay registered).
 */
FERRY_API int ferry_transport_unregister(const struct ferry_transport_ops *ops);

/**
 * @brief The plugin of an instance.
 * @param[in] transport the instance.
 * @return its ops table; NULL for NULL.
 */
FERRY_API const struct ferry_transport_ops *ferry_transport_get_ops(const struct ferry_transport *transport);

/**
 * @brief Plugin state of an instance.
 * @param[in] transport the instance.
 * @return what ferry_transport_set_ctx() stored (NULL initially, and for NULL).
 */
FERRY_API void *ferry_transport_get_ctx(const struct ferry_transport *transport);

/**
 * @brief Store the plugin's state for this instance (the plugin owns and frees it).
 * @param[in] transport the instance (NULL: nothing is stored).
 * @param[in] ctx the state.
 */
FERRY_API void ferry_transport_set_ctx(struct ferry_transport *transport, void *ctx);

/**
 * @brief The backend device of an instance.
 * @param[in] transport the instance.
 * @return opts->device given at creation (may be NULL); NULL for NULL.
 */
FERRY_API struct ferry_device *ferry_transport_get_device(const struct ferry_transport *transport);

FERRY_END_DECLS

#endif /* FERRY_MODULE_TRANSPORT_H */
