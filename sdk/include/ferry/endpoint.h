/**
 * @file ferry/endpoint.h
 * @brief Standing an NVMe endpoint up in a few calls: a subsystem with one namespace per bdev,
 * exposed through a transport at an address, driven by one poll function.
 *
 * This is the firmware author's entry point; it only combines ferry/nvme.h and
 * ferry/transport.h (use those directly for more control: several subsystems on one
 * transport, namespaces added later, controller options).
 *
 * @code
 *   struct ferry_bdev *ns[] = { crypto_bdev };
 *   struct ferry_endpoint_opts o = { .size = sizeof(o), .transport = "pcie",
 *       .device = dev, .address = "fn=0", .nqn = "nqn.2024-01.io.ferry:ep0",
 *       .bdevs = ns, .num_bdevs = 1 };
 *   struct ferry_endpoint *ep;
 *   if (ferry_endpoint_create(&o, &ep) == 0)
 *       while (running) ferry_endpoint_poll(ep, 64);
 *   ferry_endpoint_destroy(ep);
 * @endcode
 *
 * Ownership: the endpoint owns the subsystem and the transport instance it created and
 * destroys them; the bdevs stay the caller's (claimed while the endpoint exists).
 * Threading: one thread creates, polls and destroys an endpoint.
 */
#ifndef FERRY_ENDPOINT_H
#define FERRY_ENDPOINT_H

#include <stddef.h>
#include <stdint.h>
#include <ferry/export.h>

FERRY_BEGIN_DECLS

struct ferry_bdev;
struct ferry_device;
struct ferry_transport;
struct ferry_nvme_subsystem;
struct ferry_endpoint;

/** Options of ferry_endpoint_create(). */
struct ferry_endpoint_opts {
	size_t size;                       /**< sizeof(struct ferry_endpoint_opts) */
	const char *transport;             /**< registered transport plugin name (required) */
	const char *transport_args;        /**< plugin argument string (may be NULL) */
	struct ferry_device *device;       /**< backend device for the transport (may be NULL) */
	const char *address;               /**< where to listen (plugin specific; required) */
	const char *nqn;                   /**< subsystem NQN (required) */
	const char *serial;                /**< serial number (may be NULL) */
	const char *model;                 /**< model number (may be NULL) */
	const char *firmware_rev;          /**< firmware revision (may be NULL) */
	struct ferry_bdev *const *bdevs;   /**< namespaces 1..num_bdevs, in order */
	uint32_t num_bdevs;                /**< number of namespaces (>= 1) */
};

/**
 * @brief Create the subsystem, add the namespaces, create the transport and listen.
 * @param[in] opts the options; the bdevs must outlive the endpoint.
 * @param[out] out the endpoint, to be released with ferry_endpoint_destroy().
 * @retval 0 success.
 * @retval -EINVAL bad options.
 * @retval -ENOMEM out of memory.
 * @retval other negative errno from the subsystem, namespace or transport calls (everything
 *         created so far is undone).
 */
FERRY_API int ferry_endpoint_create(const struct ferry_endpoint_opts *opts,
				    struct ferry_endpoint **out);

/**
 * @brief Poll the transport (which polls its controllers).
 * @param[in] ep the endpoint.
 * @param[in] max passed to ferry_transport_poll().
 * @return work done (>= 0) or a negative errno (-EINVAL: NULL).
 */
FERRY_API int ferry_endpoint_poll(struct ferry_endpoint *ep, uint32_t max);

/**
 * @brief Destroy the transport, then the subsystem (releasing the bdevs). NULL is a no-op.
 * @param[in] ep the endpoint; invalid after the call.
 */
FERRY_API void ferry_endpoint_destroy(struct ferry_endpoint *ep);

/**
 * @brief The endpoint's subsystem (owned by the endpoint).
 * @param[in] ep the endpoint.
 * @return the subsystem; NULL for NULL.
 */
FERRY_API struct ferry_nvme_subsystem *ferry_endpoint_get_subsystem(const struct ferry_endpoint *ep);

/**
 * @brief The endpoint's transport instance (owned by the endpoint).
 * @param[in] ep the endpoint.
 * @return the instance; NULL for NULL.
 */
FERRY_API struct ferry_transport *ferry_endpoint_get_transport(const struct ferry_endpoint *ep);

FERRY_END_DECLS

#endif /* FERRY_ENDPOINT_H */
