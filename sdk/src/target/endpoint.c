/*
 * The endpoint convenience (ferry/endpoint.h): a subsystem with one namespace per bdev,
 * exposed through a transport instance at one address, polled as one object.
 */
#include <stdlib.h>
#include <ferry/endpoint.h>
#include <ferry/nvme.h>
#include <ferry/transport.h>
#include "core_internal.h"

#define COMP "endpoint"

struct ferry_endpoint {
	struct ferry_nvme_subsystem *subsys;
	struct ferry_transport *transport;
};

FERRY_API int ferry_endpoint_create(const struct ferry_endpoint_opts *opts,
				    struct ferry_endpoint **out)
{
	if (!opts || !out) {
		FERRY_ERR(COMP, "create: NULL %s", !opts ? "opts" : "out");
		return -EINVAL;
	}
	if (OPTS_SIZE_CHECK(COMP, "create", opts, struct ferry_endpoint_opts))
		return -EINVAL;
	if (!opts->transport || !opts->address || !opts->nqn || !opts->bdevs ||
	    opts->num_bdevs == 0) {
		FERRY_ERR(COMP, "create: transport, address, nqn and at least one bdev are required");
		return -EINVAL;
	}
	struct ferry_endpoint *ep = calloc(1, sizeof(*ep));
	if (!ep)
		return -ENOMEM;
	struct ferry_nvme_subsystem_opts so = {
		.size = sizeof(so),
		.nqn = opts->nqn,
		.serial = opts->serial,
		.model = opts->model,
		.firmware_rev = opts->firmware_rev,
		.max_namespaces = opts->num_bdevs > 32 ? opts->num_bdevs : 32,
	};
	int rc = ferry_nvme_subsystem_create(&so, &ep->subsys);
	if (rc)
		goto err_free;
	for (uint32_t i = 0; i < opts->num_bdevs; i++) {
		struct ferry_nvme_ns_opts no = {.size = sizeof(no), .bdev = opts->bdevs[i],
						.nsid = i + 1};
		rc = ferry_nvme_subsystem_add_ns(ep->subsys, &no, NULL);
		if (rc)
			goto err_subsys; /* the namespaces go with the subsystem */
	}
	struct ferry_transport_opts to = {.size = sizeof(to), .device = opts->device,
					  .args = opts->transport_args};
	rc = ferry_transport_create(opts->transport, &to, &ep->transport);
	if (rc)
		goto err_subsys;
	rc = ferry_transport_listen(ep->transport, ep->subsys, opts->address);
	if (rc)
		goto err_transport;
	*out = ep;
	return 0;

err_transport:
	ferry_transport_destroy(ep->transport); /* destroys the controllers it created */
err_subsys:
	ferry_nvme_subsystem_destroy(ep->subsys);
err_free:
	FERRY_ERR(COMP, "create '%s' on %s at %s failed: %s", opts->nqn, opts->transport,
		  opts->address, ferry_strerror(rc));
	free(ep);
	return rc;
}

FERRY_API int ferry_endpoint_poll(struct ferry_endpoint *ep, uint32_t max)
{
	if (!ep)
		return -EINVAL;
	return ferry_transport_poll(ep->transport, max);
}

FERRY_API void ferry_endpoint_destroy(struct ferry_endpoint *ep)
{
	if (!ep)
		return;
	ferry_transport_destroy(ep->transport);
	if (ep->subsys && ferry_nvme_subsystem_destroy(ep->subsys) != 0)
		FERRY_ERR(COMP, "destroy: subsystem still has controllers (the transport's destroy "
			  "must destroy the controllers it created)");
	free(ep);
}

FERRY_API struct ferry_nvme_subsystem *ferry_endpoint_get_subsystem(const struct ferry_endpoint *ep)
{
	return ep ? ep->subsys : NULL;
}

FERRY_API struct ferry_transport *ferry_endpoint_get_transport(const struct ferry_endpoint *ep)
{
	return ep ? ep->transport : NULL;
}
