/*
 * NVMe controller object and registers: create/destroy, the register file (CAP, VS,
 * INTMS/INTMC, CC, CSTS, AQA, ASQ, ACQ, doorbells) with access validation, the enable /
 * reset / shutdown state machine, and the poll entry point.
 */
#include <stdlib.h>
#include <string.h>
#include <ferry/accel.h>
#include <ferry/module/transport.h>
#include <ferry/module/nvme_ctrlr.h>
#include "nvme_internal.h"

#define REG_END 0x40 /* first offset past the registers Ferry implements */

void nvme_event(struct ferry_nvme_ctrlr *c, enum ferry_nvme_ctrlr_event ev)
{
	if (c->tops->ctrlr_event)
		c->tops->ctrlr_event(c->transport, c, c->tctx, ev);
}

void nvme_fatal(struct ferry_nvme_ctrlr *c, const char *why)
{
	if (c->csts & FERRY_NVME_CSTS_CFS)
		return;
	/* Host-triggerable (a refused enable, unmapped queue memory): rate limited. */
	ferry_log(nvme_host_err_level(c), NVME_COMP,
		  "controller %u: fatal: %s; CSTS.CFS set, the host must reset", c->cntlid, why);
	c->csts |= FERRY_NVME_CSTS_CFS;
	nvme_gate_update(c);
	nvme_event(c, FERRY_NVME_EVENT_FATAL);
}

enum ferry_log_level nvme_host_level(struct ferry_nvme_ctrlr *c, enum ferry_log_level level)
{
	/* Atomic: I/O queue threads of a message-based controller log here too. Once past the
	 * limit the counter is only read, so it never wraps back into logging. */
	if (atomic_load_explicit(&c->host_errs_logged, memory_order_relaxed) > NVME_HOST_ERR_LOG)
		return FERRY_LOG_DEBUG;
	unsigned n = atomic_fetch_add_explicit(&c->host_errs_logged, 1, memory_order_relaxed);
	if (n < NVME_HOST_ERR_LOG)
		return level;
	if (n == NVME_HOST_ERR_LOG) {
		FERRY_ERR(NVME_COMP,
			  "controller %u: %u invalid host accesses logged; further ones "
			  "are only counted (controller stats) and logged at debug level",
			  c->cntlid, NVME_HOST_ERR_LOG);
	}
	return FERRY_LOG_DEBUG;
}

enum ferry_log_level nvme_host_err_level(struct ferry_nvme_ctrlr *c)
{
	return nvme_host_level(c, FERRY_LOG_ERROR);
}

void nvme_features_default(struct ferry_nvme_ctrlr *c)
{
	c->feat_arb = 0;
	c->feat_pm = 0;
	/* Over thresholds default to WCTEMP for the composite temperature and FFFFh for a
	 * sensor, under thresholds to 0 (NVMe 2.0, Temperature Threshold). */
	for (uint32_t t = 0; t <= NVME_TEMP_SENSORS; t++) {
		c->feat_temp[t][0] = t == 0 ? NVME_WCTEMP : 0xffff;
		c->feat_temp[t][1] = 0;
	}
	c->feat_errrec = 0;
	c->feat_vwc = 1;
	c->feat_coalesce = 0;
	c->feat_wan = 0;
	c->feat_aec = 0;
	c->feat_kato = c->kato_connect;
	c->nsqa = (uint16_t)(c->max_io_queues - 1);
	c->ncqa = (uint16_t)(c->max_io_queues - 1);
	memset(c->vec_cd, 0, c->num_vectors);
	memset(c->vec_count, 0, c->num_vectors * sizeof(*c->vec_count));
	c->coalesced = 0; /* counts the non-zero vec_count entries just cleared */
}

static uint32_t round_pow2(uint32_t v)
{
	uint32_t p = 1;
	while (p < v)
		p <<= 1;
	return p;
}

/* Frees a controller and every array it owns; each may be NULL (partial construction). */
static void ctrlr_free(struct ferry_nvme_ctrlr *c)
{
	for (uint32_t i = 0; c->sq && i <= c->max_io_queues; i++) {
		free(c->sq[i].fetch_buf);
		nvme_qio_free(&c->sq[i]);
	}
	for (uint32_t i = 0; c->reqs && i < c->max_inflight; i++)
		free(c->reqs[i].buf);
	free(c->sq);
	free(c->cq);
	free(c->vec_cd);
	free(c->vec_count);
	free(c->reqs);
	free(c->iov_pool);
	free(c->kind_pool);
	pthread_mutex_destroy(&c->err_lock);
	free(c);
}

static int msg_ioq_busy(const struct ferry_nvme_ctrlr *c);

/* The options of ferry_nvme_ctrlr_create() with their defaults applied. */
struct ctrlr_cfg {
	const struct ferry_transport_ops *tops;
	int message;
	uint32_t entries, nioq, nvec, mdts, timeout, version, inflight;
	uint32_t ioccsz, iorcsz, sgls, msdbd, cntrltype;
	uint16_t cntlid;
};

static int all_zero16(const uint8_t *b)
{
	for (int i = 0; i < 16; i++)
		if (b[i])
			return 0;
	return 1;
}

/* The fabrics options: refused for memory-based controllers, defaults and ranges else. */
static int ctrlr_check_fabrics(const struct ferry_nvme_ctrlr_opts *opts, struct ctrlr_cfg *g)
{
	int disc = opts->subsys->type == FERRY_NVME_SUBSYS_DISCOVERY;
	if (!g->message) {
		if (opts->hostnqn || !all_zero16(opts->hostid) || opts->kato_ms || opts->ioccsz ||
		    opts->iorcsz || opts->icdoff || opts->msdbd || opts->sgls || opts->cntrltype ||
		    disc) {
			FERRY_ERR(NVME_COMP, "ctrlr_create: %s", disc
				  ? "a discovery subsystem has only message-based controllers"
				  : "fabrics options (hostnqn, hostid, kato, capsule sizes, sgls, "
				    "cntrltype) are for message-based transports");
			return -EINVAL;
		}
		return 0;
	}
	size_t hl = opts->hostnqn ? strlen(opts->hostnqn) : 0;
	if (hl == 0 || hl > FERRY_NVME_NQN_MAX) {
		FERRY_ERR(NVME_COMP, "ctrlr_create: a message-based controller needs the host NQN "
			  "(1..%u characters, got %zu)", FERRY_NVME_NQN_MAX, hl);
		return -EINVAL;
	}
	g->ioccsz = opts->ioccsz ? opts->ioccsz : 4;
	g->iorcsz = opts->iorcsz ? opts->iorcsz : 1;
	g->msdbd = opts->msdbd ? opts->msdbd : 1;
	g->cntrltype = opts->cntrltype ? opts->cntrltype : disc ? 2 : 1;
	g->sgls = opts->sgls;
	if (!g->sgls)
		g->sgls = FERRY_NVME_SGLS_SUPPORTED | (g->ioccsz > 4 ? FERRY_NVME_SGLS_OFFSET : 0);
	const char *why = NULL;
	if (opts->kato_ms > NVME_KATO_MAX)
		why = "kato_ms above one hour";
	else if (g->ioccsz < 4 || g->ioccsz > 0xffff)
		why = "ioccsz outside 4..65535";
	else if (g->iorcsz > 0xffff)
		why = "iorcsz outside 1..65535";
	else if (opts->icdoff && g->ioccsz == 4)
		why = "icdoff without in-capsule data (ioccsz 4)";
	else if ((g->sgls & 3) != 1)
		why = "sgls bits 1:0 must be 01b (SGLs are mandatory over fabrics)";
	else if (g->cntrltype != (disc ? 2u : 1u))
		why = disc ? "cntrltype of a discovery subsystem's controller must be 2"
			   : "cntrltype of an NVM subsystem's controller must be 1";
	if (why) {
		FERRY_ERR(NVME_COMP, "ctrlr_create: %s (kato %u, ioccsz %u, iorcsz %u, icdoff %u, "
			  "sgls 0x%x, cntrltype %u)", why, opts->kato_ms, g->ioccsz, g->iorcsz,
			  opts->icdoff, g->sgls, g->cntrltype);
		return -EINVAL;
	}
	return 0;
}

/* Defaults and ranges of @p opts, and a free controller ID of the subsystem. */
static int ctrlr_check_opts(const struct ferry_nvme_ctrlr_opts *opts, struct ctrlr_cfg *g)
{
	if (!opts->subsys || !opts->transport) {
		FERRY_ERR(NVME_COMP, "ctrlr_create: a subsystem and a transport are required");
		return -EINVAL;
	}
	g->tops = ferry_transport_get_ops(opts->transport);
	g->message = g->tops->kind == FERRY_TRANSPORT_MESSAGE;
	if (!g->message && !opts->host_domain) {
		FERRY_ERR(NVME_COMP, "ctrlr_create: memory-based transport '%s' needs a host domain",
			  g->tops->name);
		return -EINVAL;
	}
	g->entries = opts->max_queue_entries ? opts->max_queue_entries : 1024;
	g->nioq = opts->max_io_queues ? opts->max_io_queues : 16;
	g->nvec = opts->num_vectors ? opts->num_vectors : g->nioq + 1;
	g->mdts = opts->mdts ? opts->mdts : 5;
	g->timeout = opts->timeout ? opts->timeout : 20;
	g->version = opts->version ? opts->version : FERRY_NVME_VS_1_4;
	g->inflight = opts->max_inflight ? opts->max_inflight : 256;
	if (g->entries < 2 || g->entries > 65536 || g->nioq > 1024 || g->nvec > 2048 ||
	    g->mdts > 10 || opts->mpsmax > 4 || g->inflight < 8 || g->inflight > 65536 ||
	    (g->version != FERRY_NVME_VS_1_4 && g->version != FERRY_NVME_VS_2_0)) {
		FERRY_ERR(NVME_COMP, "ctrlr_create: option out of range (entries %u, io queues %u, "
			  "vectors %u, mdts %u, mpsmax %u, inflight %u, version 0x%x)", g->entries,
			  g->nioq, g->nvec, g->mdts, opts->mpsmax, g->inflight, g->version);
		return -EINVAL;
	}
	if (g->version == FERRY_NVME_VS_2_0) {
		/* A 2.0 controller must offer what 2.0 makes mandatory (CAP.CRMS and CRTO,
		 * Identify CNS 05h-08h, the Commands Supported and Effects log, ...), which this
		 * core does not implement yet: claiming 2.0 without it would mislead the host. */
		FERRY_ERR(NVME_COMP, "ctrlr_create: version 2.0 is not supported (CAP.CRMS, "
			  "Identify CNS 05h-08h and log page 05h are not implemented); use 1.4");
		return -ENOTSUP;
	}
	int rc = ctrlr_check_fabrics(opts, g);
	if (rc)
		return rc;
	struct ferry_nvme_subsystem *s = opts->subsys;
	g->cntlid = opts->cntlid;
	if (g->cntlid > NVME_CNTLID_MAX) {
		FERRY_ERR(NVME_COMP, "ctrlr_create: cntlid 0x%x is above 0x%x", g->cntlid,
			  NVME_CNTLID_MAX);
		return -EINVAL;
	}
	if (g->cntlid == 0) {
		g->cntlid = nvme_subsys_alloc_cntlid(s);
		if (g->cntlid == 0) {
			FERRY_ERR(NVME_COMP, "ctrlr_create: every controller ID of '%s' is in use",
				  s->nqn);
			return -ENOSPC;
		}
	} else if (nvme_subsys_cntlid_used(s, g->cntlid)) {
		FERRY_ERR(NVME_COMP, "ctrlr_create: cntlid %u is in use in '%s'", g->cntlid, s->nqn);
		return -EEXIST;
	}
	return 0;
}

/* The controller's identity, limits and register values (CAP, BAR size). */
static void ctrlr_init(struct ferry_nvme_ctrlr *c, const struct ferry_nvme_ctrlr_opts *opts,
		       const struct ctrlr_cfg *g)
{
	c->subsys = opts->subsys;
	c->transport = opts->transport;
	c->tops = g->tops;
	c->tctx = opts->transport_ctx;
	c->message = g->message;
	c->host = opts->host_domain;
	c->host_ctx = opts->host_domain_ctx;
	c->accel_chan = opts->accel_chan;
	c->cntlid = g->cntlid;
	c->mqes = g->entries - 1;
	c->max_io_queues = (uint16_t)g->nioq;
	c->num_vectors = (uint16_t)g->nvec;
	c->mdts = (uint8_t)g->mdts;
	c->mpsmax = opts->mpsmax;
	c->version = g->version;
	c->flags = opts->flags;
	c->max_inflight = g->inflight;
	c->max_xfer = (uint64_t)4096 << g->mdts;
	if (g->message) {
		if (opts->hostnqn)
			memcpy(c->hostnqn, opts->hostnqn, strlen(opts->hostnqn) + 1);
		memcpy(c->hostid, opts->hostid, 16);
		c->kato_connect = opts->kato_ms;
		c->ioccsz = g->ioccsz;
		c->iorcsz = g->iorcsz;
		c->icdoff = opts->icdoff;
		c->msdbd = (uint8_t)g->msdbd;
		c->sgls = g->sgls;
		c->cntrltype = (uint8_t)g->cntrltype;
		c->discovery = opts->subsys->type == FERRY_NVME_SUBSYS_DISCOVERY;
	}
	c->cap = (uint64_t)c->mqes | ((uint64_t)g->timeout << 24) |
		 (c->discovery ? FERRY_NVME_CAP_CSS_ADMIN_ONLY : FERRY_NVME_CAP_CSS_NVM) |
		 ((uint64_t)c->mpsmax << 52);
	if (!(c->flags & FERRY_NVME_CTRLR_F_NONCONTIG_OK))
		c->cap |= FERRY_NVME_CAP_CQR;
	c->bar_size = round_pow2(FERRY_NVME_REG_DBS + 8 * (g->nioq + 1));
	if (c->bar_size < 0x4000)
		c->bar_size = 0x4000;
	c->page_size = 4096;
}

/* Queues, vectors and the request pool; on -ENOMEM the caller frees with ctrlr_free(). */
static int ctrlr_alloc(struct ferry_nvme_ctrlr *c, uint32_t nioq, uint32_t nvec, uint32_t inflight)
{
	c->sq = calloc(nioq + 1, sizeof(*c->sq));
	c->cq = calloc(nioq + 1, sizeof(*c->cq));
	c->vec_cd = calloc(nvec, 1);
	c->vec_count = calloc(nvec, sizeof(*c->vec_count));
	c->reqs = calloc(inflight, sizeof(*c->reqs));
	/* Message-based commands come with their data described (submit): no PRP/SGL walk, no
	 * iovec arrays (they would be most of a controller's memory, one per association). */
	uint32_t iov_cap = 0;
	if (!c->message) {
		iov_cap = nvme_walk_prp_max_iov(c->max_xfer, 4096);
		if (iov_cap < NVME_MAX_SGL_DESC)
			iov_cap = NVME_MAX_SGL_DESC;
		c->iov_pool = calloc((size_t)inflight * iov_cap, sizeof(*c->iov_pool));
		c->kind_pool = calloc((size_t)inflight * iov_cap, 1);
	}
	int ok = c->sq && c->cq && c->vec_cd && c->vec_count && c->reqs &&
		 (c->message || (c->iov_pool && c->kind_pool));
	for (uint32_t i = 0; ok && i <= nioq; i++) {
		c->sq[i].ctrlr = c;
		c->sq[i].fetch_buf = calloc(NVME_FETCH_BATCH, sizeof(struct ferry_nvme_sqe));
		ok = c->sq[i].fetch_buf != NULL;
	}
	if (!ok)
		return -ENOMEM;
	for (uint32_t i = 0; i < inflight; i++) {
		struct nvme_req *r = &c->reqs[i];
		r->ctrlr = c;
		r->iov = iov_cap ? &c->iov_pool[(size_t)i * iov_cap] : NULL;
		r->kind = iov_cap ? &c->kind_pool[(size_t)i * iov_cap] : NULL;
		r->iov_cap = iov_cap;
		r->next = c->free_reqs;
		c->free_reqs = r;
	}
	c->free_count = inflight;
	return 0;
}

FERRY_API int ferry_nvme_ctrlr_create(const struct ferry_nvme_ctrlr_opts *opts,
				      struct ferry_nvme_ctrlr **out)
{
	if (!opts || !out) {
		FERRY_ERR(NVME_COMP, "ctrlr_create: NULL %s", !opts ? "opts" : "out");
		return -EINVAL;
	}
	if (OPTS_SIZE_CHECK(NVME_COMP, "ctrlr_create", opts, struct ferry_nvme_ctrlr_opts))
		return -EINVAL;
	struct ctrlr_cfg g = {0};
	int rc = ctrlr_check_opts(opts, &g);
	if (rc)
		return rc;
	struct ferry_nvme_ctrlr *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	ctrlr_init(c, opts, &g);
	pthread_mutex_init(&c->err_lock, NULL);
	rc = ctrlr_alloc(c, g.nioq, g.nvec, g.inflight);
	if (rc)
		goto err_free;
	c->stats.size = sizeof(c->stats);
	nvme_features_default(c);
	nvme_subsys_link(opts->subsys, c);
	/* A namespace that exists before the controller is not a change. */
	*out = c;
	return 0;

err_free:
	ctrlr_free(c); /* frees what ctrlr_alloc() got */
	return rc;
}

/* -EBUSY from destroy is a state callers poll on (a transport retries until its queues are
 * quiet): the reason always goes to ferry_last_error(), the log gets it rate limited. */
static int destroy_busy(struct ferry_nvme_ctrlr *c, const char *why)
{
	static struct log_ratelimit rl;
	unsigned int dropped = 0;
	ferry_set_last_error(NVME_COMP, "ctrlr_destroy %u: %s", c->cntlid, why);
	if (log_ratelimit(&rl, &dropped))
		FERRY_ERR(NVME_COMP, "ctrlr_destroy %u: %s%s", c->cntlid, why,
			  dropped ? " (and earlier refusals, not logged)" : "");
	return -EBUSY;
}

FERRY_API int ferry_nvme_ctrlr_destroy(struct ferry_nvme_ctrlr *c)
{
	if (!c)
		return 0;
	if (c->async_ops)
		return destroy_busy(c, "transfers or commands executing; disable the controller "
				       "and poll until CSTS.RDY = 0 first");
	if (msg_ioq_busy(c))
		return destroy_busy(c, "commands are executing on I/O queues; quiesce and "
				       "disconnect them first");
	nvme_drop_parked(c);
	nvme_subsys_unlink(c->subsys, c);
	ctrlr_free(c);
	return 0;
}

FERRY_API uint16_t ferry_nvme_ctrlr_get_cntlid(const struct ferry_nvme_ctrlr *c)
{
	return c ? c->cntlid : 0;
}

FERRY_API const char *ferry_nvme_ctrlr_get_hostnqn(const struct ferry_nvme_ctrlr *c)
{
	return c ? c->hostnqn : "";
}

FERRY_API void ferry_nvme_ctrlr_get_hostid(const struct ferry_nvme_ctrlr *c, uint8_t out[16])
{
	if (!out)
		return;
	if (c)
		memcpy(out, c->hostid, 16);
	else
		memset(out, 0, 16);
}

FERRY_API uint32_t ferry_nvme_ctrlr_get_kato(const struct ferry_nvme_ctrlr *c)
{
	return c ? c->feat_kato : 0;
}

FERRY_API void *ferry_nvme_ctrlr_get_transport_ctx(const struct ferry_nvme_ctrlr *c)
{
	return c ? c->tctx : NULL;
}

FERRY_API struct ferry_nvme_subsystem *ferry_nvme_ctrlr_get_subsystem(const struct ferry_nvme_ctrlr *c)
{
	return c ? c->subsys : NULL;
}

FERRY_API uint32_t ferry_nvme_ctrlr_get_bar_size(const struct ferry_nvme_ctrlr *c)
{
	return c ? c->bar_size : 0;
}

FERRY_API int ferry_nvme_ctrlr_get_stats(const struct ferry_nvme_ctrlr *c,
					 struct ferry_nvme_ctrlr_stats *st)
{
	if (!c || !st) {
		FERRY_ERR(NVME_COMP, "get_stats: NULL argument");
		return -EINVAL;
	}
	if (opts_size_check(NVME_COMP, "get_stats", "stats->size", st->size,
			    "struct ferry_nvme_ctrlr_stats", sizeof(*st)))
		return -EINVAL;
	nvme_ctrlr_totals(c, st, NULL);
	return 0;
}

void nvme_stat_add(_Atomic uint64_t *p, uint64_t v)
{
	atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + v,
			      memory_order_relaxed);
}

static void qstats_fold(const struct nvme_qstats *q, struct ferry_nvme_ctrlr_stats *st,
			uint64_t smart[4])
{
	st->io_cmds += atomic_load_explicit(&q->io_cmds, memory_order_relaxed);
	st->errors += atomic_load_explicit(&q->errors, memory_order_relaxed);
	uint64_t rd = atomic_load_explicit(&q->bytes_read, memory_order_relaxed);
	uint64_t wr = atomic_load_explicit(&q->bytes_written, memory_order_relaxed);
	st->bytes_read += rd;
	st->bytes_written += wr;
	if (smart) {
		smart[0] += rd;
		smart[1] += wr;
		smart[2] += atomic_load_explicit(&q->read_cmds, memory_order_relaxed);
		smart[3] += atomic_load_explicit(&q->write_cmds, memory_order_relaxed);
	}
}

/*
 * The controller's counters: its own (admin thread; memory-based: everything) plus those of
 * the connected message-based I/O queues, each written by its queue's thread (disconnected
 * queues were folded into c->stats by disconnect_queue). smart (may be NULL): bytes read,
 * written, read and write commands for the SMART log.
 */
void nvme_ctrlr_totals(const struct ferry_nvme_ctrlr *c, struct ferry_nvme_ctrlr_stats *st,
		       uint64_t smart[4])
{
	*st = c->stats;
	st->size = sizeof(*st);
	if (smart) {
		smart[0] = c->smart_units_read;
		smart[1] = c->smart_units_written;
		smart[2] = c->smart_read_cmds;
		smart[3] = c->smart_write_cmds;
	}
	for (uint32_t q = 1; c->message && q <= c->max_io_queues; q++)
		if (c->sq[q].valid && c->sq[q].qio)
			qstats_fold(&c->sq[q].qio->st, st, smart);
}

/* Fold a disconnecting queue's counters into the controller's (admin thread, queue quiesced). */
void nvme_qstats_retire(struct ferry_nvme_ctrlr *c, struct nvme_qio *qio)
{
	struct ferry_nvme_ctrlr_stats add = {0};
	uint64_t smart[4] = {0};
	qstats_fold(&qio->st, &add, smart);
	c->stats.io_cmds += add.io_cmds;
	c->stats.errors += add.errors;
	c->stats.bytes_read += add.bytes_read;
	c->stats.bytes_written += add.bytes_written;
	c->smart_units_read += smart[0];
	c->smart_units_written += smart[1];
	c->smart_read_cmds += smart[2];
	c->smart_write_cmds += smart[3];
}

int nvme_msg_ioq_connected(const struct ferry_nvme_ctrlr *c)
{
	for (uint32_t q = 1; c->message && q <= c->max_io_queues; q++)
		if (c->sq[q].valid)
			return 1;
	return 0;
}

/* Commands executing on message-based I/O queues, as their threads publish it. */
static int msg_ioq_busy(const struct ferry_nvme_ctrlr *c)
{
	for (uint32_t q = 1; c->message && q <= c->max_io_queues; q++)
		if (c->sq[q].valid && c->sq[q].qio &&
		    atomic_load_explicit(&c->sq[q].qio->busy, memory_order_acquire))
			return 1;
	return 0;
}

void nvme_gate_update(struct ferry_nvme_ctrlr *c)
{
	int open = (c->csts & FERRY_NVME_CSTS_RDY) && !(c->csts & FERRY_NVME_CSTS_CFS) &&
		   !c->resetting && !c->shutting_down;
	atomic_store_explicit(&c->io_open, open, memory_order_release);
}

/* ---- enable / reset / shutdown ------------------------------------------------------ */

static int ready(const struct ferry_nvme_ctrlr *c)
{
	return (c->csts & FERRY_NVME_CSTS_RDY) != 0;
}

static void enable(struct ferry_nvme_ctrlr *c)
{
	uint32_t cc = c->cc;
	const char *why = NULL;
	uint32_t mps = FERRY_NVME_CC_MPS(cc);
	uint32_t asqs = FERRY_NVME_AQA_ASQS(c->aqa), acqs = FERRY_NVME_AQA_ACQS(c->aqa);
	uint64_t page = (uint64_t)1 << (12 + mps);

	/* A discovery controller (CAP.CSS admin only) also takes 000b: the Linux host writes
	 * NVM whenever CAP.CSS does not offer I/O command set selection. */
	if (FERRY_NVME_CC_CSS(cc) != FERRY_NVME_CC_CSS_NVM &&
	    !(c->discovery && FERRY_NVME_CC_CSS(cc) == 7))
		why = "CC.CSS selects a command set the controller does not support";
	else if (mps > c->mpsmax)
		why = "CC.MPS is outside CAP.MPSMIN..MPSMAX";
	else if (FERRY_NVME_CC_AMS(cc) != 0)
		why = "CC.AMS selects an unsupported arbitration mechanism";
	/* The host may enable with IOSQES/IOCQES still 0 and set them before creating I/O
	 * queues (Create I/O SQ/CQ check them); any other value than 6/4 is refused here. */
	else if ((FERRY_NVME_CC_IOSQES(cc) != 0 && FERRY_NVME_CC_IOSQES(cc) != NVME_IOSQES) ||
		 (FERRY_NVME_CC_IOCQES(cc) != 0 && FERRY_NVME_CC_IOCQES(cc) != NVME_IOCQES))
		why = "CC.IOSQES/IOCQES are neither 0 nor 6/4 (64-byte SQ and 16-byte CQ entries)";
	else if (!c->message && (asqs == 0 || acqs == 0))
		why = "AQA gives an admin queue of one entry";
	else if (!c->message && ((c->asq & (page - 1)) || (c->acq & (page - 1))))
		why = "ASQ/ACQ are not aligned to the memory page size";
	else if (!c->message &&
		 ((uint64_t)(asqs + 1) * sizeof(struct ferry_nvme_sqe) - 1 > UINT64_MAX - c->asq ||
		  (uint64_t)(acqs + 1) * sizeof(struct ferry_nvme_cqe) - 1 > UINT64_MAX - c->acq))
		why = "the admin SQ or CQ wraps around the end of the 64-bit address space";
	else if (c->message && !c->sq[0].valid)
		why = "the admin queue is not connected";
	if (why) {
		/* One message per refusal (nvme_fatal() says it all), rate limited: a host can
		 * refuse-enable at MMIO rate. */
		nvme_fatal(c, why);
		return;
	}
	c->page_size = (uint32_t)page;
	if (!c->message) {
		nvme_cq_init(&c->cq[0], 0, acqs + 1, c->acq, 1, 0);
		nvme_sq_init(&c->sq[0], 0, asqs + 1, c->asq, 0);
		c->cq[0].sq_refs = 1;
	}
	c->csts = FERRY_NVME_CSTS_RDY;
	nvme_gate_update(c);
	FERRY_DBG(NVME_COMP, "controller %u enabled (page %u)", c->cntlid, c->page_size);
	nvme_event(c, FERRY_NVME_EVENT_ENABLED);
}

static void begin_reset(struct ferry_nvme_ctrlr *c)
{
	c->gen++;
	c->resetting = 1;
	c->shutting_down = 0;
	c->shutdown_flushing = 0;
	nvme_gate_update(c); /* closed before anything else: the I/O queue threads see it */
	nvme_drop_parked(c);
	nvme_progress(c);
}

static void finish_reset(struct ferry_nvme_ctrlr *c)
{
	nvme_queues_drop(c, c->message);
	nvme_features_default(c);
	c->aer_count = 0;
	c->nevents = 0;
	c->aen_masked = 0;
	c->intms = 0;
	c->masked_pending = 0;
	c->csts = 0;
	c->resetting = 0;
	nvme_gate_update(c);
	c->stats.resets++;
	FERRY_DBG(NVME_COMP, "controller %u reset", c->cntlid);
	nvme_event(c, FERRY_NVME_EVENT_DISABLED);
}

static void shutdown_complete(struct ferry_nvme_ctrlr *c)
{
	c->shutdown_flushing = 0;
	c->csts = (c->csts & ~FERRY_NVME_CSTS_SHST_MASK) |
		  (FERRY_NVME_CSTS_SHST_COMPLETE << FERRY_NVME_CSTS_SHST_SHIFT);
	nvme_event(c, FERRY_NVME_EVENT_SHUTDOWN_COMPLETE);
}

static void shutdown_flush_next(struct ferry_nvme_ctrlr *c);

/* The flush of one namespace at shutdown finished: 0 to go on with the next one. */
static int shutdown_flush_finished(struct ferry_nvme_ctrlr *c)
{
	nvme_async_end(c);
	if (c->shutdown_bio.status)
		ferry_log(nvme_host_level(c, FERRY_LOG_WARN), NVME_COMP,
			  "controller %u: flush at shutdown failed: %s", c->cntlid,
			  ferry_strerror(c->shutdown_bio.status));
	if (!c->shutdown_flushing)
		return -1; /* a reset took over */
	return 0;
}

static void shutdown_flush_done(struct ferry_bdev_io *io, void *arg)
{
	struct ferry_nvme_ctrlr *c = arg;
	if (c->shutdown_sync) {
		*c->shutdown_sync = 1; /* completed inside submit: the loop below goes on */
		return;
	}
	if (shutdown_flush_finished(c) == 0)
		shutdown_flush_next(c);
}

/* Flush the namespaces from shutdown_idx on, in turn. Loops while the flushes complete
 * synchronously, so the stack depth does not grow with the number of namespaces; an
 * asynchronous one re-enters through shutdown_flush_done(). */
static void shutdown_flush_next(struct ferry_nvme_ctrlr *c)
{
	struct ferry_nvme_subsystem *s = c->subsys;
	while (c->shutdown_idx < s->max_ns) {
		struct nvme_ns *ns = s->ns[c->shutdown_idx++];
		if (!ns)
			continue;
		struct ferry_bdev_io *io = &c->shutdown_bio;
		memset(io, 0, sizeof(*io));
		io->type = FERRY_BDEV_IO_FLUSH;
		io->cb = shutdown_flush_done;
		io->cb_arg = c;
		int sync_done = 0;
		c->shutdown_sync = &sync_done;
		nvme_async_start(c);
		int rc = ferry_bdev_submit(ns->bdev, io);
		c->shutdown_sync = NULL;
		if (rc) {
			nvme_async_end(c);
			ferry_log(nvme_host_level(c, FERRY_LOG_WARN), NVME_COMP,
				  "controller %u: flush of namespace %u at shutdown refused: %s",
				  c->cntlid, ns->nsid, ferry_strerror(rc));
			continue;
		}
		if (!sync_done)
			return; /* in flight */
		if (shutdown_flush_finished(c))
			return;
	}
	shutdown_complete(c);
}

void nvme_progress(struct ferry_nvme_ctrlr *c)
{
	if (c->resetting) {
		/* Message-based: the I/O queues belong to other threads; the reset waits for the
		 * transport to disconnect them (see <ferry/module/nvme_ctrlr.h>, Threading). */
		if (c->async_ops == 0 && !nvme_msg_ioq_connected(c))
			finish_reset(c);
		return;
	}
	if (c->shutting_down && !c->shutdown_flushing && c->async_ops == 0 && !msg_ioq_busy(c) &&
	    ((c->csts & FERRY_NVME_CSTS_SHST_MASK) >> FERRY_NVME_CSTS_SHST_SHIFT) ==
		    FERRY_NVME_CSTS_SHST_OCCURRING) {
		if (c->shutting_down == FERRY_NVME_CC_SHN_NORMAL) {
			c->shutdown_flushing = 1;
			c->shutdown_idx = 0;
			shutdown_flush_next(c);
		} else {
			shutdown_complete(c);
		}
	}
	/* Delete I/O SQ commands waiting for the queue's commands to finish. */
	for (uint32_t i = 1; !c->message && i <= c->max_io_queues; i++) {
		struct nvme_sq *sq = &c->sq[i];
		if (sq->valid && sq->deleting && sq->inflight == 0 && !sq->fetching) {
			struct nvme_req *req = sq->delete_req;
			c->cq[sq->cqid].sq_refs--;
			sq->valid = 0;
			sq->deleting = 0;
			sq->delete_req = NULL;
			if (req)
				nvme_req_complete(req, 0);
		}
	}
}

static void write_cc(struct ferry_nvme_ctrlr *c, uint32_t val)
{
	uint32_t old = c->cc;
	int was_en = old & FERRY_NVME_CC_EN, en = val & FERRY_NVME_CC_EN;

	if (was_en && !en) {
		c->cc = val;
		begin_reset(c);
		return;
	}
	if (!was_en && en) {
		if (c->resetting) {
			ferry_log(nvme_host_level(c, FERRY_LOG_WARN), NVME_COMP,
				  "controller %u: CC.EN set while a reset is still finishing "
				  "(CSTS.RDY = 1); ignored", c->cntlid);
			c->cc = val & ~FERRY_NVME_CC_EN;
			return;
		}
		c->cc = val;
		enable(c);
		return;
	}
	if (en) {
		/* Enabled: only SHN (and the I/O entry sizes) may change. */
		uint32_t keep = 0x7u << 4 | 0xfu << 7 | 0x7u << 11;
		c->cc = (old & keep) | (val & ~keep);
		uint32_t shn = FERRY_NVME_CC_SHN(val);
		if (shn && !c->shutting_down && ready(c)) {
			c->shutting_down = (int)shn;
			c->csts = (c->csts & ~FERRY_NVME_CSTS_SHST_MASK) |
				  (FERRY_NVME_CSTS_SHST_OCCURRING << FERRY_NVME_CSTS_SHST_SHIFT);
			nvme_gate_update(c);
			nvme_progress(c);
		}
		return;
	}
	c->cc = val;
}

/* ---- register access ---------------------------------------------------------------- */

static int check_access(struct ferry_nvme_ctrlr *c, const char *op, uint32_t off, uint32_t size)
{
	const char *why = NULL;
	if (size != 4 && size != 8)
		why = "only 4- or 8-byte accesses";
	else if (off & (size - 1))
		why = "misaligned offset";
	else if (off >= c->bar_size || size > c->bar_size - off)
		why = "beyond the BAR";
	else if (size == 8 && off != FERRY_NVME_REG_CAP && off != FERRY_NVME_REG_ASQ &&
		 off != FERRY_NVME_REG_ACQ)
		why = "8-byte access to a 32-bit register";
	if (!why)
		return 0;
	ferry_log(nvme_host_err_level(c), NVME_COMP,
		  "controller %u: %s of %u bytes at 0x%x refused (BAR of 0x%x bytes): %s",
		  c->cntlid, op, size, off, c->bar_size, why);
	return -EINVAL;
}

FERRY_API int ferry_nvme_ctrlr_reg_read(struct ferry_nvme_ctrlr *c, uint32_t off, uint32_t size,
					uint64_t *val)
{
	if (!c || !val) {
		FERRY_ERR(NVME_COMP, "reg_read: NULL %s", !c ? "controller" : "val");
		return -EINVAL;
	}
	int rc = check_access(c, "read", off, size);
	if (rc)
		return rc;
	uint64_t v = 0;
	switch (off) {
	case FERRY_NVME_REG_CAP: v = c->cap; break;
	case FERRY_NVME_REG_CAP + 4: v = c->cap >> 32; break;
	case FERRY_NVME_REG_VS: v = c->version; break;
	case FERRY_NVME_REG_INTMS:
	case FERRY_NVME_REG_INTMC: v = c->intms; break;
	case FERRY_NVME_REG_CC: v = c->cc; break;
	case FERRY_NVME_REG_CSTS: v = c->csts; break;
	case FERRY_NVME_REG_AQA: v = c->aqa; break;
	case FERRY_NVME_REG_ASQ: v = c->asq; break;
	case FERRY_NVME_REG_ASQ + 4: v = c->asq >> 32; break;
	case FERRY_NVME_REG_ACQ: v = c->acq; break;
	case FERRY_NVME_REG_ACQ + 4: v = c->acq >> 32; break;
	default: v = 0; break; /* reserved, NSSR, doorbells */
	}
	*val = size == 4 ? (uint32_t)v : v;
	return 0;
}

static uint64_t set_half(uint64_t reg, uint32_t off, uint32_t base, uint64_t val)
{
	if (off == base)
		return (reg & 0xffffffff00000000ull) | (uint32_t)val;
	return (reg & 0xffffffffull) | ((uint64_t)(uint32_t)val << 32);
}

FERRY_API int ferry_nvme_ctrlr_reg_write(struct ferry_nvme_ctrlr *c, uint32_t off, uint32_t size,
					 uint64_t val)
{
	if (!c) {
		FERRY_ERR(NVME_COMP, "reg_write: NULL controller");
		return -EINVAL;
	}
	int rc = check_access(c, "write", off, size);
	if (rc)
		return rc;
	if (off >= FERRY_NVME_REG_DBS)
		return nvme_doorbell(c, off, (uint32_t)val);
	switch (off) {
	case FERRY_NVME_REG_INTMS:
		c->intms |= (uint32_t)val;
		break;
	case FERRY_NVME_REG_INTMC: {
		uint32_t cleared = c->intms & (uint32_t)val;
		c->intms &= ~(uint32_t)val;
		nvme_irq_unmasked(c, cleared);
		break;
	}
	case FERRY_NVME_REG_CC:
		write_cc(c, (uint32_t)val);
		break;
	case FERRY_NVME_REG_AQA:
		c->aqa = (uint32_t)val & 0x0fff0fff;
		break;
	case FERRY_NVME_REG_ASQ:
	case FERRY_NVME_REG_ASQ + 4:
		c->asq = size == 8 ? val : set_half(c->asq, off, FERRY_NVME_REG_ASQ, val);
		break;
	case FERRY_NVME_REG_ACQ:
	case FERRY_NVME_REG_ACQ + 4:
		c->acq = size == 8 ? val : set_half(c->acq, off, FERRY_NVME_REG_ACQ, val);
		break;
	default:
		/* CAP, VS, CSTS are read-only; NSSR and the rest are not implemented. */
		if (off < REG_END)
			FERRY_DBG(NVME_COMP, "controller %u: write to read-only/reserved 0x%x ignored",
				  c->cntlid, off);
		break;
	}
	return 0;
}

FERRY_API int ferry_nvme_ctrlr_poll(struct ferry_nvme_ctrlr *c, uint32_t max)
{
	if (!c)
		return -EINVAL;
	if (c->host)
		ferry_memdomain_poll(c->host, max ? max : 1);
	if (c->accel_chan)
		ferry_accel_chan_poll(c->accel_chan, max ? max : 1);
	/* Namespaces whose bdevs have their own work (a network initiator's connections).
	 * Message-based: the I/O queues poll the bdevs they use (poll_queue); the admin
	 * thread only polls for its own commands (flushes at shutdown, and the like). */
	struct ferry_nvme_subsystem *s = c->subsys;
	if (!c->message || c->async_ops)
		for (uint32_t i = 0; i < s->max_ns; i++) {
			struct nvme_ns *ns = s->ns[i];
			if (ns)
				ferry_bdev_poll(ns->bdev, max ? max : 1);
		}
	nvme_progress(c);
	int n = 0;
	if (ready(c) && !c->resetting && !c->shutting_down && !(c->csts & FERRY_NVME_CSTS_CFS) &&
	    !c->message)
		n = nvme_fetch(c, max);
	nvme_irq_flush(c);
	nvme_progress(c);
	return n;
}
