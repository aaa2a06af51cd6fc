/*
 * The memory-based NVMe transport "pcie" (ferry/pcie_transport.h): one controller per PCI
 * function of a device's HAL PCIe endpoint class. BAR0 accesses and doorbells from the
 * backend's poll go to the controller's register emulation; the controller core moves
 * queue entries and data through the function's host memory domain; interrupts leave as
 * MSI-X vectors. Registered as a built-in plugin by transport.c.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ferry/accel.h>
#include <ferry/hal/hal.h>
#include <ferry/nvme.h>
#include <ferry/pcie_transport.h>
#include <ferry/transport.h>
#include <ferry/module/transport.h>
#include <ferry/module/nvme_ctrlr.h>
#include "core_internal.h"
#include "target_internal.h"

#define COMP "pcie"
#define PCIE_MAX_FNS 64u
#define PCIE_DESTROY_NS 5000000000ull
#define PCIE_LOG_BAD 8u /* refused host accesses logged per function; later ones counted */

struct pcie_tr;

struct pcie_fn {
	struct pcie_tr *tr;
	uint32_t fn;
	struct ferry_nvme_ctrlr *ctrlr;
	struct ferry_accel_chan *chan; /* the controller's sequences (NULL: accel=0) */
	int attached;
	uint32_t db_count;   /* doorbell registers declared at attach */
	uint32_t bad_logged; /* refused host accesses logged (PCIE_LOG_BAD at most) */
	struct ferry_pcie_transport_stats st;
};

struct pcie_tr {
	struct ferry_device *dev;
	const struct ferry_hal_pcie_ep_ops *ep;
	struct ferry_hal_pcie_ep_info info;
	uint32_t io_queues, entries, inflight, flags, accel;
	uint8_t mdts;
	struct pcie_fn *fns[PCIE_MAX_FNS];
	uint32_t nfns;
};

static const struct ferry_transport_ops pcie_transport_ops;

/* ---- BAR0 handlers (called from the backend's poll) ---------------------------------- */

/* Counts a refused host access; the level to log it at (a host must not flood the log). */
static enum ferry_log_level pcie_bad(struct pcie_fn *f)
{
	f->st.bad_accesses++;
	if (f->bad_logged < PCIE_LOG_BAD) {
		f->bad_logged++;
		return FERRY_LOG_ERROR;
	}
	if (f->bad_logged == PCIE_LOG_BAD) {
		f->bad_logged++;
		FERRY_ERR(COMP,
			  "fn %u: %u refused host accesses; further ones are only counted "
			  "(transport stats) and logged at debug level",
			  f->fn, PCIE_LOG_BAD);
	}
	return FERRY_LOG_DEBUG;
}

static int pcie_bar_read(void *ctx, uint32_t bar, uint64_t off, uint32_t size, uint64_t *val)
{
	struct pcie_fn *f = ctx;
	/* Naturally aligned: a sub-dword read never crosses into the next register. */
	if (bar != 0 || off > UINT32_MAX || (size != 1 && size != 2 && size != 4 && size != 8) ||
	    (off & (size - 1))) {
		ferry_log(pcie_bad(f), COMP,
			  "fn %u: read of %u bytes at BAR%u offset 0x%llx refused (1, 2, 4 or 8 "
			  "bytes, naturally aligned, BAR0)",
			  f->fn, size, bar, (unsigned long long)off);
		return -EINVAL;
	}
	int rc;
	if (size < 4) {
		/* Sub-dword read: the bytes of the containing register. */
		uint64_t v = 0;
		uint32_t base = (uint32_t)off & ~3u;
		rc = ferry_nvme_ctrlr_reg_read(f->ctrlr, base, 4, &v);
		if (rc == 0)
			*val = (v >> (8 * ((uint32_t)off - base))) & ((1ull << (8 * size)) - 1);
	} else {
		rc = ferry_nvme_ctrlr_reg_read(f->ctrlr, (uint32_t)off, size, val);
	}
	if (rc) {
		f->st.bad_accesses++;
		return rc;
	}
	f->st.bar_reads++;
	return 0;
}

static int pcie_bar_write(void *ctx, uint32_t bar, uint64_t off, uint32_t size, uint64_t val)
{
	struct pcie_fn *f = ctx;
	if (bar != 0 || off > UINT32_MAX || (size != 4 && size != 8)) {
		ferry_log(pcie_bad(f), COMP,
			  "fn %u: write of %u bytes at BAR%u offset 0x%llx refused (registers "
			  "take 4- or 8-byte writes)",
			  f->fn, size, bar, (unsigned long long)off);
		return -EINVAL;
	}
	int rc = ferry_nvme_ctrlr_reg_write(f->ctrlr, (uint32_t)off, size, val);
	if (rc) {
		f->st.bad_accesses++;
		return rc;
	}
	f->st.bar_writes++;
	return 0;
}

static void pcie_doorbell(void *ctx, uint32_t index, uint32_t value)
{
	struct pcie_fn *f = ctx;
	/* A backend must pass index < doorbell_count; beyond, the offset could wrap around 32
	 * bits onto the controller registers. */
	if (index >= f->db_count) {
		ferry_log(pcie_bad(f), COMP, "fn %u: doorbell index %u refused (%u doorbells)",
			  f->fn, index, f->db_count);
		return;
	}
	f->st.doorbells++;
	/* The register emulation validates the queue and the value (async error event). */
	if (ferry_nvme_ctrlr_reg_write(f->ctrlr, FERRY_NVME_REG_DBS + 4u * index, 4, value))
		f->st.bad_accesses++;
}

static const struct ferry_hal_pcie_ep_handlers pcie_handlers = {
	.bar_read = pcie_bar_read,
	.bar_write = pcie_bar_write,
	.doorbell = pcie_doorbell,
};

/* ---- plugin ops ---------------------------------------------------------------------- */

static const char *const pcie_keys[] = {"io_queues", "entries", "mdts", "inflight",
					"sgl",       "accel",   NULL};


static int pcie_create(struct ferry_transport *t, const struct ferry_transport_opts *opts)
{
	struct ferry_device *dev = opts->device;
	const struct ferry_hal_backend *b = ferry_hal_dev_get_backend(dev);
	if (!dev || !b) {
		FERRY_ERR(COMP, "create: a device with a PCIe endpoint is required (opts->device)");
		return -EINVAL;
	}
	if (!b->pcie_ep) {
		FERRY_ERR(COMP, "create: device %s (backend '%s') has no PCIe endpoint class",
			  ferry_device_get_name(dev), b->name);
		return -ENOTSUP;
	}
	if (ferry_hal_args_check(opts->args, pcie_keys))
		return -EINVAL;
	uint32_t ioq = 16, entries = 1024, mdts = 5, inflight = 256, sgl = 1, accel = 1;
	int rc = transport_arg_u32(COMP, opts->args, "io_queues", 1, 1024, &ioq);
	if (!rc)
		rc = transport_arg_u32(COMP, opts->args, "entries", 2, 65536, &entries);
	if (!rc)
		rc = transport_arg_u32(COMP, opts->args, "mdts", 1, 10, &mdts);
	if (!rc)
		rc = transport_arg_u32(COMP, opts->args, "inflight", 8, 65536, &inflight);
	if (!rc)
		rc = transport_arg_u32(COMP, opts->args, "sgl", 0, 1, &sgl);
	if (!rc)
		rc = transport_arg_u32(COMP, opts->args, "accel", 0, 1, &accel);
	if (rc)
		return rc;
	struct pcie_tr *tr = calloc(1, sizeof(*tr));
	if (!tr)
		return -ENOMEM;
	tr->dev = dev;
	tr->ep = b->pcie_ep;
	rc = tr->ep->query(dev, &tr->info);
	if (rc) {
		FERRY_ERR(COMP, "create: PCIe endpoint query of %s failed: %s",
			  ferry_device_get_name(dev), ferry_strerror(rc));
		goto err_free;
	}
	if (tr->info.max_msix == 0 || tr->info.bar0_size <= FERRY_NVME_REG_DBS) {
		FERRY_ERR(COMP,
			  "create: %s offers %u MSI-X vectors and a %u-byte BAR0; an NVMe "
			  "controller needs at least 1 vector and doorbells at 0x%x",
			  ferry_device_get_name(dev), tr->info.max_msix, tr->info.bar0_size,
			  FERRY_NVME_REG_DBS);
		rc = -ENOTSUP;
		goto err_free;
	}
	tr->io_queues = ioq;
	tr->entries = entries;
	tr->mdts = (uint8_t)mdts;
	tr->inflight = inflight;
	tr->flags = sgl ? 0 : FERRY_NVME_CTRLR_F_NO_SGL;
	tr->accel = accel;
	ferry_transport_set_ctx(t, tr);
	return 0;

err_free:
	free(tr);
	return rc;
}

/* Disables @p c and polls until it can be destroyed (bounded). */
static void pcie_ctrlr_teardown(struct pcie_tr *tr, struct pcie_fn *f)
{
	uint64_t cc = 0;
	if (ferry_nvme_ctrlr_reg_read(f->ctrlr, FERRY_NVME_REG_CC, 4, &cc) == 0 &&
	    (cc & FERRY_NVME_CC_EN))
		ferry_nvme_ctrlr_reg_write(f->ctrlr, FERRY_NVME_REG_CC, 4, cc & ~FERRY_NVME_CC_EN);
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		ferry_nvme_ctrlr_poll(f->ctrlr, 64);
		if (ferry_nvme_ctrlr_destroy(f->ctrlr) == 0) {
			f->ctrlr = NULL;
			return;
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
		uint64_t ns = (uint64_t)(t.tv_sec - t0.tv_sec) * 1000000000ull +
			      (uint64_t)(t.tv_nsec - t0.tv_nsec);
		if (ns > PCIE_DESTROY_NS) {
			FERRY_ERR(COMP,
				  "destroy: controller of %s fn %u still has commands executing "
				  "after 5 s; it is leaked",
				  ferry_device_get_name(tr->dev), f->fn);
			return;
		}
	}
}

static void pcie_destroy(struct ferry_transport *t)
{
	struct pcie_tr *tr = ferry_transport_get_ctx(t);
	if (!tr)
		return;
	for (uint32_t i = 0; i < tr->nfns; i++) {
		struct pcie_fn *f = tr->fns[i];
		if (f->attached)
			tr->ep->detach(tr->dev, f->fn);
		f->attached = 0;
		if (f->ctrlr)
			pcie_ctrlr_teardown(tr, f);
		if (!f->ctrlr)
			ferry_accel_chan_destroy(f->chan); /* a leaked controller keeps it */
		free(f);
	}
	free(tr);
	ferry_transport_set_ctx(t, NULL);
}

/* The PCI function an address "fn=<index>" names: in range and without a controller yet. */
static int listen_parse_fn(const struct pcie_tr *tr, const char *address, uint32_t *out)
{
	char buf[16], *end;
	if (ferry_hal_arg_get(address, "fn", buf, sizeof(buf)) != 0) {
		FERRY_ERR(COMP, "listen: address '%s' is not \"fn=<PCI function index>\"", address);
		return -EINVAL;
	}
	unsigned long fn = strtoul(buf, &end, 10);
	if (buf[0] < '0' || buf[0] > '9' || *end || fn >= tr->info.num_functions) {
		FERRY_ERR(COMP, "listen: function '%s' out of range (%s has %u functions)", buf,
			  ferry_device_get_name(tr->dev), tr->info.num_functions);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < tr->nfns; i++) {
		if (tr->fns[i]->fn == fn) {
			FERRY_ERR(COMP, "listen: function %lu already has a controller", fn);
			return -EADDRINUSE;
		}
	}
	if (tr->nfns == PCIE_MAX_FNS) {
		FERRY_ERR(COMP, "listen: at most %u functions per instance", PCIE_MAX_FNS);
		return -ENOSPC;
	}
	*out = (uint32_t)fn;
	return 0;
}

/* The NVMe controller of function f, its queues sized from the instance's options. */
static int listen_create_ctrlr(struct ferry_transport *t, struct ferry_nvme_subsystem *subsys,
			       struct pcie_fn *f, struct ferry_memdomain *dom)
{
	struct pcie_tr *tr = f->tr;
	uint32_t nvec = tr->io_queues + 1;
	if (nvec > tr->info.max_msix)
		nvec = tr->info.max_msix;
	struct ferry_nvme_ctrlr_opts co = {
		.size = sizeof(co),
		.subsys = subsys,
		.transport = t,
		.transport_ctx = f,
		.host_domain = dom,
		.max_queue_entries = tr->entries,
		.max_io_queues = (uint16_t)tr->io_queues,
		.num_vectors = (uint16_t)nvec,
		.mdts = tr->mdts,
		.max_inflight = tr->inflight,
		.flags = tr->flags,
		.accel_chan = f->chan,
	};
	int rc = ferry_nvme_ctrlr_create(&co, &f->ctrlr);
	if (rc)
		return rc;
	uint32_t bar = ferry_nvme_ctrlr_get_bar_size(f->ctrlr);
	if (bar > tr->info.bar0_size) {
		FERRY_ERR(COMP,
			  "listen: the controller decodes %u bytes of BAR0 but %s offers %u "
			  "(use fewer io_queues)",
			  bar, ferry_device_get_name(tr->dev), tr->info.bar0_size);
		ferry_nvme_ctrlr_destroy(f->ctrlr);
		f->ctrlr = NULL;
		return -ENOSPC;
	}
	return 0;
}

static int pcie_listen(struct ferry_transport *t, struct ferry_nvme_subsystem *subsys,
		       const char *address)
{
	struct pcie_tr *tr = ferry_transport_get_ctx(t);
	uint32_t fn;
	int rc = listen_parse_fn(tr, address, &fn);
	if (rc)
		return rc;
	struct ferry_memdomain *dom = tr->ep->get_domain(tr->dev, fn);
	if (!dom) {
		FERRY_ERR(COMP, "listen: %s fn %u has no host memory domain",
			  ferry_device_get_name(tr->dev), fn);
		return -ENODEV;
	}
	struct pcie_fn *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->tr = tr;
	f->fn = fn;
	f->st.size = sizeof(f->st);
	if (tr->accel) {
		rc = ferry_accel_chan_create(tr->dev, NULL, &f->chan);
		if (rc) {
			FERRY_ERR(COMP, "listen: accel channel on %s: %s",
				  ferry_device_get_name(tr->dev), ferry_strerror(rc));
			goto err_free;
		}
	}
	rc = listen_create_ctrlr(t, subsys, f, dom);
	if (rc)
		goto err_chan;
	struct ferry_hal_pcie_ep_attach_opts ao = {
		.size = sizeof(ao),
		.doorbell_offset = FERRY_NVME_REG_DBS,
		.doorbell_count = (ferry_nvme_ctrlr_get_bar_size(f->ctrlr) - FERRY_NVME_REG_DBS) / 4u,
		.handlers = &pcie_handlers,
		.ctx = f,
	};
	f->db_count = ao.doorbell_count;
	rc = tr->ep->attach(tr->dev, fn, &ao);
	if (rc) {
		FERRY_ERR(COMP, "listen: attaching %s fn %u failed: %s",
			  ferry_device_get_name(tr->dev), fn, ferry_strerror(rc));
		goto err_ctrlr;
	}
	f->attached = 1;
	tr->fns[tr->nfns++] = f;
	return 0;

err_ctrlr:
	ferry_nvme_ctrlr_destroy(f->ctrlr);
err_chan:
	ferry_accel_chan_destroy(f->chan);
err_free:
	free(f);
	return rc;
}

static int pcie_poll(struct ferry_transport *t, uint32_t max)
{
	struct pcie_tr *tr = ferry_transport_get_ctx(t);
	int n = tr->ep->poll(tr->dev, max);
	if (n < 0)
		return n;
	for (uint32_t i = 0; i < tr->nfns; i++) {
		int rc = ferry_nvme_ctrlr_poll(tr->fns[i]->ctrlr, max);
		if (rc < 0)
			return rc;
		n += rc;
	}
	return n;
}

static int pcie_raise_irq(struct ferry_transport *t, struct ferry_nvme_ctrlr *ctrlr, void *ctx,
			  uint16_t vector)
{
	struct pcie_fn *f = ctx;
	if (!f->attached)
		return -ENODEV;
	int rc = f->tr->ep->msix_raise(f->tr->dev, f->fn, vector);
	if (rc)
		f->st.bad_accesses++;
	else
		f->st.irqs++;
	return rc;
}

static void pcie_ctrlr_event(struct ferry_transport *t, struct ferry_nvme_ctrlr *ctrlr, void *ctx,
			     enum ferry_nvme_ctrlr_event ev)
{
	struct pcie_fn *f = ctx;
	FERRY_DBG(COMP, "%s fn %u: controller event %d", ferry_device_get_name(f->tr->dev), f->fn,
		  (int)ev);
}

static const struct ferry_transport_ops pcie_transport_ops = {
	.abi_version = FERRY_TRANSPORT_OPS_ABI,
	.name = FERRY_PCIE_TRANSPORT_NAME,
	.kind = FERRY_TRANSPORT_MEMORY,
	.create = pcie_create,
	.destroy = pcie_destroy,
	.listen = pcie_listen,
	.poll = pcie_poll,
	.raise_irq = pcie_raise_irq,
	.ctrlr_event = pcie_ctrlr_event,
};
BUILTIN_TRANSPORT(pcie_transport_ops, 0); /* the first built-in */

/* ---- public accessors ------------------------------------------------------------------ */

static struct pcie_fn *pcie_fn_of(const struct ferry_transport *t, uint32_t fn)
{
	if (!t || ferry_transport_get_ops(t) != &pcie_transport_ops)
		return NULL;
	struct pcie_tr *tr = ferry_transport_get_ctx(t);
	for (uint32_t i = 0; tr && i < tr->nfns; i++)
		if (tr->fns[i]->fn == fn)
			return tr->fns[i];
	return NULL;
}

FERRY_API struct ferry_nvme_ctrlr *ferry_pcie_transport_get_ctrlr(const struct ferry_transport *t,
								  uint32_t fn)
{
	struct pcie_fn *f = pcie_fn_of(t, fn);
	return f ? f->ctrlr : NULL;
}

FERRY_API int ferry_pcie_transport_get_stats(const struct ferry_transport *t, uint32_t fn,
					     struct ferry_pcie_transport_stats *stats)
{
	if (!t || ferry_transport_get_ops(t) != &pcie_transport_ops || !stats) {
		FERRY_ERR(COMP, "get_stats: NULL argument or not a pcie transport");
		return -EINVAL;
	}
	if (OPTS_SIZE_CHECK(COMP, "get_stats", stats, struct ferry_pcie_transport_stats))
		return -EINVAL;
	struct pcie_fn *f = pcie_fn_of(t, fn);
	if (!f)
		return -ENOENT;
	*stats = f->st;
	return 0;
}
