/*
 * The transport-independent NVMe-oF target layer (nvmf_internal.h): Connect (admin and I/O
 * queues), Property Get/Set, Disconnect, the per-instance discovery subsystem and its log
 * page source, keep-alive enforcement and association teardown. The message-based
 * transports ("tcp", later RDMA) hand it every command capsule of a queue; it answers the
 * Fabrics commands itself and passes the others to the controller core.
 *
 * Threading (ferry/transport.h): everything about a controller (create, destroy, register
 * access, connect_queue/disconnect_queue, keep-alive) runs on the poll group of its admin
 * queue. An I/O queue on another group asks the admin group by message (pg_post) and is told
 * the answer back the same way. tgt->lock guards the lists (setup and teardown only).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ferry/nvme.h>
#include "core_internal.h"
#include "nvmf_internal.h"

#define COMP "nvmf"
#define NVMF_MAX_SUBSYS 64u
#define NVMF_MAX_LISTEN 256u
#define NVMF_ADMIN_DEPTH 128u /* admin queue entries offered (Connect SQSIZE + 1 at most) */
#define NVMF_ADMIN_MIN 32u    /* admin queue entries at least */
#define NVMF_DESTROY_NS 5000000000ull

struct nvmf_listen_ent {
	struct ferry_nvme_subsystem *subsys;
	uint8_t adrfam;
	uint16_t portid;
	char traddr[64];
	char trsvcid[32];
};

struct nvmf_ctrlr {
	struct nvmf_tgt *tgt;
	struct ferry_nvme_ctrlr *c;
	struct ferry_nvme_subsystem *subsys;
	struct pg_core *admin_pg;
	struct nvmf_qpair *admin; /* NULL once the admin connection is gone */
	struct nvmf_qpair **io;   /* [max_io_queues + 1], admin group only */
	uint32_t nio;             /* I/O qpairs attached (admin group only) */
	uint32_t pending;         /* I/O Connects on their way to the admin group */
	uint16_t cntlid;
	char hostnqn[256];
	uint64_t last_ns; /* last admin command (keep-alive) */
	uint64_t dying_ns;
	int dying;
	struct nvmf_ctrlr *next;    /* tgt->ctrlrs, under tgt->lock */
	struct nvmf_ctrlr *pg_next; /* admin_pg->ctrlrs, admin group only */
};

struct nvmf_tgt {
	struct ferry_transport *transport;
	struct nvmf_tgt_limits lim;
	const struct nvmf_tgt_ops *ops;
	pthread_mutex_t lock;
	struct ferry_nvme_subsystem *disc;
	struct nvmf_listen_ent *ents;
	uint32_t nents;
	uint64_t genctr;
	struct nvmf_ctrlr *ctrlrs;
	uint64_t created, destroyed, kato_expired;
	uint32_t alive;
};

static struct log_ratelimit nvmf_rl;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A remote party's mistake: rate limited, and the reason in ferry_last_error(). */
#define NVMF_HOST_ERR(...)                                                                         \
	do {                                                                                       \
		ferry_set_last_error(COMP, __VA_ARGS__);                                           \
		if (log_ratelimit(&nvmf_rl, NULL))                                                 \
			ferry_log(FERRY_LOG_WARN, COMP, __VA_ARGS__);                              \
	} while (0)

/* ---- discovery log source ---------------------------------------------------------------- */

static void pad_copy(char *dst, size_t len, const char *src)
{
	memset(dst, ' ', len);
	size_t n = strnlen(src, len);
	memcpy(dst, src, n);
}

static int nvmf_disc_log(void *ctx, struct ferry_nvmf_disc_entry *entries, uint32_t max,
			 uint32_t *count, uint64_t *genctr)
{
	struct nvmf_tgt *tgt = ctx;
	pthread_mutex_lock(&tgt->lock);
	uint32_t n = 0;
	for (uint32_t i = 0; i < tgt->nents; i++, n++) {
		if (n >= max)
			continue;
		const struct nvmf_listen_ent *e = &tgt->ents[i];
		struct ferry_nvmf_disc_entry *d = &entries[n];
		memset(d, 0, sizeof(*d));
		d->trtype = tgt->lim.trtype;
		d->adrfam = e->adrfam;
		d->subtype = FERRY_NVMF_SUBTYPE_NVME;
		d->treq = FERRY_NVMF_TREQ_NOT_SPECIFIED;
		d->portid = e->portid;
		d->cntlid = FERRY_NVMF_CNTLID_DYNAMIC;
		d->asqsz = (uint16_t)FERRY_MIN(NVMF_ADMIN_DEPTH, tgt->lim.max_queue_depth);
		pad_copy(d->trsvcid, sizeof(d->trsvcid), e->trsvcid);
		snprintf(d->subnqn, sizeof(d->subnqn), "%s",
			 ferry_nvme_subsystem_get_nqn(e->subsys));
		pad_copy(d->traddr, sizeof(d->traddr), e->traddr);
		if (d->trtype == FERRY_NVMF_TRTYPE_RDMA) {
			/* TSAS for RDMA: rdma_qptype RC, rdma_prtype none, rdma_cms RDMA_CM */
			d->tsas[0] = 1;
			d->tsas[1] = 1;
			d->tsas[2] = 1;
		} else {
			d->tsas[0] = FERRY_NVMF_TCP_SECTYPE_NONE;
		}
	}
	*count = n;
	*genctr = tgt->genctr;
	pthread_mutex_unlock(&tgt->lock);
	return 0;
}

/* ---- instance ------------------------------------------------------------------------- */

int nvmf_tgt_create(struct ferry_transport *t, const struct nvmf_tgt_limits *lim,
		    const struct nvmf_tgt_ops *ops, struct nvmf_tgt **out)
{
	struct nvmf_tgt *tgt = calloc(1, sizeof(*tgt));
	if (!tgt)
		return -ENOMEM;
	tgt->ents = calloc(NVMF_MAX_LISTEN, sizeof(*tgt->ents));
	if (!tgt->ents) {
		free(tgt);
		return -ENOMEM;
	}
	tgt->transport = t;
	tgt->lim = *lim;
	tgt->ops = ops;
	pthread_mutex_init(&tgt->lock, NULL);
	struct ferry_nvme_subsystem_opts so = {
		.size = sizeof(so),
		.nqn = FERRY_NVMF_DISCOVERY_NQN,
		.model = "Ferry Discovery",
		.type = FERRY_NVME_SUBSYS_DISCOVERY,
		.disc_log = nvmf_disc_log,
		.disc_ctx = tgt,
	};
	int rc = ferry_nvme_subsystem_create(&so, &tgt->disc);
	if (rc) {
		FERRY_ERR(COMP, "cannot create the discovery subsystem: %s", ferry_strerror(rc));
		pthread_mutex_destroy(&tgt->lock);
		free(tgt->ents);
		free(tgt);
		return rc;
	}
	*out = tgt;
	return 0;
}

static void ctrlr_free(struct nvmf_ctrlr *nc)
{
	free(nc->io);
	free(nc);
}

void nvmf_tgt_destroy(struct nvmf_tgt *tgt)
{
	if (!tgt)
		return;
	/* The connections are closed: whatever controller is left is destroyed here (its
	 * commands have finished: the transport waited for them before closing). */
	struct nvmf_ctrlr *nc = tgt->ctrlrs;
	while (nc) {
		struct nvmf_ctrlr *next = nc->next;
		uint64_t t0 = now_ns();
		for (;;) {
			ferry_nvme_ctrlr_poll(nc->c, 64);
			if (ferry_nvme_ctrlr_destroy(nc->c) == 0)
				break;
			if (now_ns() - t0 > NVMF_DESTROY_NS) {
				FERRY_ERR(COMP,
					  "controller %u still has commands executing after 5 s; "
					  "it is leaked",
					  nc->cntlid);
				break;
			}
		}
		ctrlr_free(nc);
		nc = next;
	}
	ferry_nvme_subsystem_destroy(tgt->disc);
	pthread_mutex_destroy(&tgt->lock);
	free(tgt->ents);
	free(tgt);
}

int nvmf_tgt_listen(struct nvmf_tgt *tgt, struct ferry_nvme_subsystem *subsys, uint8_t adrfam,
		    const char *traddr, const char *trsvcid, uint16_t portid)
{
	pthread_mutex_lock(&tgt->lock);
	for (uint32_t i = 0; i < tgt->nents; i++) {
		const struct nvmf_listen_ent *e = &tgt->ents[i];
		if (e->subsys == subsys && !strcmp(e->traddr, traddr) &&
		    !strcmp(e->trsvcid, trsvcid)) {
			pthread_mutex_unlock(&tgt->lock);
			FERRY_ERR(COMP, "listen: %s already listens on %s:%s",
				  ferry_nvme_subsystem_get_nqn(subsys), traddr, trsvcid);
			return -EEXIST;
		}
	}
	if (tgt->nents == NVMF_MAX_LISTEN) {
		pthread_mutex_unlock(&tgt->lock);
		FERRY_ERR(COMP, "listen: %u (listener, subsystem) pairs at most", NVMF_MAX_LISTEN);
		return -ENOSPC;
	}
	struct nvmf_listen_ent *e = &tgt->ents[tgt->nents++];
	e->subsys = subsys;
	e->adrfam = adrfam;
	e->portid = portid;
	snprintf(e->traddr, sizeof(e->traddr), "%s", traddr);
	snprintf(e->trsvcid, sizeof(e->trsvcid), "%s", trsvcid);
	tgt->genctr++;
	pthread_mutex_unlock(&tgt->lock);
	return 0;
}

void nvmf_tgt_counts(struct nvmf_tgt *tgt, uint64_t *created, uint64_t *destroyed,
		     uint64_t *kato_expired, uint32_t *alive)
{
	pthread_mutex_lock(&tgt->lock);
	*created = tgt->created;
	*destroyed = tgt->destroyed;
	*kato_expired = tgt->kato_expired;
	*alive = tgt->alive;
	pthread_mutex_unlock(&tgt->lock);
}

/* Under tgt->lock. */
static struct ferry_nvme_subsystem *find_subsys(struct nvmf_tgt *tgt, const char *nqn)
{
	if (!strcmp(nqn, FERRY_NVMF_DISCOVERY_NQN))
		return tgt->disc;
	for (uint32_t i = 0; i < tgt->nents; i++)
		if (!strcmp(ferry_nvme_subsystem_get_nqn(tgt->ents[i].subsys), nqn))
			return tgt->ents[i].subsys;
	return NULL;
}

/* ---- qpairs ------------------------------------------------------------------------------ */

void nvmf_tgt_qpair_init(struct nvmf_qpair *qp, struct nvmf_tgt *tgt, struct pg_core *pg,
			 void *conn)
{
	memset(qp, 0, sizeof(*qp));
	qp->tgt = tgt;
	qp->pg = pg;
	qp->conn = conn;
}

uint16_t nvmf_tgt_qpair_cntlid(const struct nvmf_qpair *qp)
{
	struct nvmf_ctrlr *nc = __atomic_load_n(&qp->ctrlr, __ATOMIC_ACQUIRE);
	return nc ? nc->cntlid : FERRY_NVMF_CNTLID_DYNAMIC;
}

int nvmf_tgt_qpair_poll(struct nvmf_qpair *qp, uint32_t max)
{
	struct nvmf_ctrlr *nc = qp->ctrlr;
	if (!nc || qp->qid == 0 || qp->closing)
		return 0;
	int n = ferry_nvme_ctrlr_poll_queue(nc->c, qp->qid, max);
	return n > 0 ? n : 0;
}

int nvmf_tgt_qpair_drain(struct nvmf_qpair *qp, uint32_t max)
{
	struct nvmf_ctrlr *nc = qp->ctrlr;
	if (!nc || qp->qid == 0)
		return 0;
	int n = ferry_nvme_ctrlr_poll_queue(nc->c, qp->qid, max);
	return n > 0 ? n : 0;
}

static void complete_status(struct nvmf_qpair *qp, void *cmd_ctx, uint16_t cid, uint16_t status,
			    uint32_t dw0, uint32_t dw1)
{
	struct ferry_nvme_cqe cqe = {
		.dw0 = dw0,
		.dw1 = dw1,
		.sqid = qp->qid,
		.cid = cid,
		.status = (uint16_t)(status << 1),
	};
	qp->tgt->ops->complete(qp, cmd_ctx, &cqe);
}

#define ST_GEN(sc) FERRY_NVME_STATUS(FERRY_NVME_SCT_GENERIC, sc)
#define ST_CMD(sc) FERRY_NVME_STATUS(FERRY_NVME_SCT_COMMAND, sc)
#define IPO(iattr, off) (((uint32_t)(iattr) << 16) | (uint32_t)(off))

static void connect_invalid(struct nvmf_qpair *qp, void *cmd_ctx, uint16_t cid, uint32_t iattr,
			    uint32_t off)
{
	complete_status(qp, cmd_ctx, cid,
			ST_CMD(FERRY_NVMF_SC_CONNECT_INVALID_PARAM) | FERRY_NVME_STATUS_DNR,
			IPO(iattr, off), 0);
}

/* Tear the association down (admin group): close every connection, the controller goes
 * once none is left (nvmf_pg_poll). */
static void ctrlr_kill(struct nvmf_ctrlr *nc, const char *why);

static void close_msg(void *arg)
{
	struct nvmf_qpair *qp = arg;
	qp->tgt->ops->close(qp);
}

/* Closes the I/O connections of @p nc (admin group), from the reset or the teardown. */
static void close_io(struct nvmf_ctrlr *nc)
{
	uint32_t n = nc->tgt->lim.max_io_queues;
	for (uint32_t q = 1; q <= n; q++) {
		struct nvmf_qpair *qp = nc->io[q];
		if (!qp || qp->closing)
			continue;
		qp->closing = 1;
		if (qp->pg == nc->admin_pg)
			nc->tgt->ops->close(qp);
		else if (pg_post(qp->pg, close_msg, qp))
			FERRY_ERR(COMP, "controller %u: cannot ask queue %u's group to close it",
				  nc->cntlid, q);
	}
}

static void ctrlr_kill(struct nvmf_ctrlr *nc, const char *why)
{
	if (nc->dying)
		return;
	FERRY_INFO(COMP, "controller %u (%s): association torn down: %s", nc->cntlid, nc->hostnqn,
		   why);
	/* Under the lock: an I/O Connect on another group looks controllers up under it and
	 * skips dying ones, so none can be pending once the destroy sees pending == 0. */
	pthread_mutex_lock(&nc->tgt->lock);
	nc->dying = 1;
	pthread_mutex_unlock(&nc->tgt->lock);
	nc->dying_ns = now_ns();
	/* New I/O is refused at once; executing commands finish on their threads. */
	uint64_t cc = 0;
	if (ferry_nvme_ctrlr_reg_read(nc->c, FERRY_NVME_REG_CC, 4, &cc) == 0 &&
	    (cc & FERRY_NVME_CC_EN))
		ferry_nvme_ctrlr_reg_write(nc->c, FERRY_NVME_REG_CC, 4, cc & ~FERRY_NVME_CC_EN);
	close_io(nc);
	if (nc->admin && !nc->admin->closing) {
		nc->admin->closing = 1;
		nc->tgt->ops->close(nc->admin);
	}
}

/* -- Connect -- */

struct io_connect {
	struct nvmf_qpair *qp;
	struct nvmf_ctrlr *nc;
	void *cmd_ctx;
	uint16_t cid, qid, sqsize;
	uint16_t status;
	uint32_t dw0;
};

static void io_connect_done(void *arg)
{
	struct io_connect *ic = arg;
	struct nvmf_qpair *qp = ic->qp;
	qp->connecting = 0;
	if (ic->status == 0) {
		qp->qid = ic->qid;
		qp->sqsize = ic->sqsize;
		__atomic_store_n(&qp->ctrlr, ic->nc, __ATOMIC_RELEASE);
	}
	complete_status(qp, ic->cmd_ctx, ic->cid, ic->status, ic->dw0, 0);
	free(ic);
}

/* On the admin group: create the queue in the controller. */
static void io_connect_admin(void *arg)
{
	struct io_connect *ic = arg;
	struct nvmf_ctrlr *nc = ic->nc;
	__atomic_fetch_sub(&nc->pending, 1, __ATOMIC_ACQ_REL);
	if (nc->dying) {
		ic->status = ST_GEN(FERRY_NVME_SC_CMD_SEQ_ERROR);
	} else if (nc->io[ic->qid]) {
		NVMF_HOST_ERR("controller %u: Connect of queue %u, already connected", nc->cntlid,
			      ic->qid);
		ic->status = ST_GEN(FERRY_NVME_SC_CMD_SEQ_ERROR) | FERRY_NVME_STATUS_DNR;
	} else {
		int rc = ferry_nvme_ctrlr_connect_queue(nc->c, ic->qid, ic->sqsize);
		if (rc == 0 && ic->qp->chan) {
			/* the channel of the queue's own group carries its Read/Write sequences */
			rc = ferry_nvme_ctrlr_set_queue_accel_chan(nc->c, ic->qid, ic->qp->chan);
			if (rc) {
				ferry_nvme_ctrlr_disconnect_queue(nc->c, ic->qid);
				rc = -ENOMEM;
			}
		}
		if (rc == 0) {
			nc->io[ic->qid] = ic->qp;
			nc->nio++;
			ic->dw0 = 0;
		} else if (rc == -EAGAIN) {
			NVMF_HOST_ERR("controller %u: Connect of queue %u while not ready",
				      nc->cntlid, ic->qid);
			ic->status = ST_GEN(FERRY_NVME_SC_CMD_SEQ_ERROR) | FERRY_NVME_STATUS_DNR;
		} else if (rc == -EEXIST) {
			ic->status = ST_GEN(FERRY_NVME_SC_CMD_SEQ_ERROR) | FERRY_NVME_STATUS_DNR;
		} else if (rc == -EINVAL) {
			ic->status = ST_CMD(FERRY_NVMF_SC_CONNECT_INVALID_PARAM) |
				     FERRY_NVME_STATUS_DNR;
			ic->dw0 = IPO(FERRY_NVMF_IATTR_CMD,
				      offsetof(struct ferry_nvmf_connect_cmd, qid));
		} else {
			ic->status = ST_GEN(FERRY_NVME_SC_INTERNAL);
		}
	}
	if (ic->qp->pg == nc->admin_pg) {
		io_connect_done(ic);
	} else if (pg_post(ic->qp->pg, io_connect_done, ic)) {
		/* cannot tell the group: it never answers; the host times out */
		FERRY_ERR(COMP, "controller %u: Connect answer of queue %u lost (no memory)",
			  nc->cntlid, ic->qid);
		free(ic);
	}
}

static void connect_admin(struct nvmf_qpair *qp, const struct ferry_nvmf_connect_cmd *cmd,
			  const struct ferry_nvmf_connect_data *cd, void *cmd_ctx)
{
	struct nvmf_tgt *tgt = qp->tgt;
	uint32_t entries = (uint32_t)cmd->sqsize + 1;
	/* The admin queue has at least 32 entries (SQSIZE >= 31, as SPDK and Linux use it) and
	 * at most MQES + 1, like every queue. */
	uint32_t amax = FERRY_MIN(NVMF_ADMIN_DEPTH, tgt->lim.max_queue_depth);
	if (cmd->sqsize < NVMF_ADMIN_MIN - 1 || entries > amax) {
		NVMF_HOST_ERR("admin Connect: SQSIZE %u out of range %u..%u", cmd->sqsize,
			      NVMF_ADMIN_MIN - 1, amax - 1);
		connect_invalid(qp, cmd_ctx, cmd->cid, FERRY_NVMF_IATTR_CMD,
				offsetof(struct ferry_nvmf_connect_cmd, sqsize));
		return;
	}
	if (cd->cntlid != FERRY_NVMF_CNTLID_DYNAMIC) {
		NVMF_HOST_ERR("admin Connect: cntlid 0x%x (only the dynamic model, 0xffff)",
			      cd->cntlid);
		connect_invalid(qp, cmd_ctx, cmd->cid, FERRY_NVMF_IATTR_DATA,
				offsetof(struct ferry_nvmf_connect_data, cntlid));
		return;
	}
	pthread_mutex_lock(&tgt->lock);
	struct ferry_nvme_subsystem *ss = find_subsys(tgt, cd->subnqn);
	pthread_mutex_unlock(&tgt->lock);
	if (!ss) {
		NVMF_HOST_ERR("Connect: subsystem '%.64s' is not served here", cd->subnqn);
		connect_invalid(qp, cmd_ctx, cmd->cid, FERRY_NVMF_IATTR_DATA,
				offsetof(struct ferry_nvmf_connect_data, subnqn));
		return;
	}
	struct nvmf_ctrlr *nc = calloc(1, sizeof(*nc));
	if (nc)
		nc->io = calloc((size_t)tgt->lim.max_io_queues + 1, sizeof(*nc->io));
	if (!nc || !nc->io) {
		free(nc);
		complete_status(qp, cmd_ctx, cmd->cid, ST_GEN(FERRY_NVME_SC_INTERNAL), 0, 0);
		return;
	}
	int disc = ss == tgt->disc;
	uint32_t ioccsz = 4 + tgt->lim.icd_size / 16;
	uint8_t mdts = 0;
	while ((4096u << mdts) < tgt->lim.max_io_size && mdts < 10)
		mdts++;
	struct ferry_nvme_ctrlr_opts co = {
		.size = sizeof(co),
		.subsys = ss,
		.transport = tgt->transport,
		.transport_ctx = nc,
		.max_queue_entries = tgt->lim.max_queue_depth, /* CAP.MQES + 1 */
		.max_io_queues = disc ? 1 : tgt->lim.max_io_queues,
		.mdts = mdts ? mdts : 1,
		.hostnqn = cd->hostnqn,
		.kato_ms = cmd->kato > 3600000u ? 3600000u : cmd->kato,
		.ioccsz = disc ? 0 : ioccsz,
		.iorcsz = 1,
		.msdbd = tgt->lim.msdbd ? tgt->lim.msdbd : 1,
		/* NVMe/TCP: transport data blocks; RDMA: keyed data blocks */
		.sgls = FERRY_NVME_SGLS_SUPPORTED |
			(tgt->lim.trtype == FERRY_NVMF_TRTYPE_RDMA ? FERRY_NVME_SGLS_KEYED
								   : FERRY_NVME_SGLS_TRANSPORT) |
			(tgt->lim.icd_size ? FERRY_NVME_SGLS_OFFSET : 0),
	};
	memcpy(co.hostid, cd->hostid, sizeof(co.hostid));
	pthread_mutex_lock(&tgt->lock);
	int rc = ferry_nvme_ctrlr_create(&co, &nc->c);
	pthread_mutex_unlock(&tgt->lock);
	if (rc == 0) {
		rc = ferry_nvme_ctrlr_connect_queue(nc->c, 0, entries);
		if (rc) {
			ferry_nvme_ctrlr_destroy(nc->c);
			nc->c = NULL;
		}
	}
	if (rc) {
		NVMF_HOST_ERR("admin Connect of '%.64s' to '%.64s' refused: %s", cd->hostnqn,
			      cd->subnqn, ferry_strerror(rc));
		ctrlr_free(nc);
		complete_status(qp, cmd_ctx, cmd->cid,
				rc == -EINVAL ? ST_CMD(FERRY_NVMF_SC_CONNECT_INVALID_PARAM) |
							FERRY_NVME_STATUS_DNR
					      : ST_GEN(FERRY_NVME_SC_INTERNAL),
				rc == -EINVAL
					? IPO(FERRY_NVMF_IATTR_DATA,
					      offsetof(struct ferry_nvmf_connect_data, hostnqn))
					: 0,
				0);
		return;
	}
	nc->tgt = tgt;
	nc->subsys = ss;
	nc->admin_pg = qp->pg;
	nc->admin = qp;
	nc->cntlid = ferry_nvme_ctrlr_get_cntlid(nc->c);
	snprintf(nc->hostnqn, sizeof(nc->hostnqn), "%s", cd->hostnqn);
	nc->last_ns = now_ns();
	pthread_mutex_lock(&tgt->lock);
	nc->next = tgt->ctrlrs;
	tgt->ctrlrs = nc;
	nc->pg_next = qp->pg->ctrlrs;
	qp->pg->ctrlrs = nc;
	tgt->created++;
	tgt->alive++;
	pthread_mutex_unlock(&tgt->lock);
	qp->qid = 0;
	qp->sqsize = (uint16_t)entries;
	__atomic_store_n(&qp->ctrlr, nc, __ATOMIC_RELEASE);
	complete_status(qp, cmd_ctx, cmd->cid, 0, nc->cntlid, 0);
}

static void connect_io(struct nvmf_qpair *qp, const struct ferry_nvmf_connect_cmd *cmd,
		       const struct ferry_nvmf_connect_data *cd, void *cmd_ctx)
{
	struct nvmf_tgt *tgt = qp->tgt;
	if (cmd->qid > tgt->lim.max_io_queues) {
		NVMF_HOST_ERR("I/O Connect: qid %u out of range 1..%u", cmd->qid,
			      tgt->lim.max_io_queues);
		connect_invalid(qp, cmd_ctx, cmd->cid, FERRY_NVMF_IATTR_CMD,
				offsetof(struct ferry_nvmf_connect_cmd, qid));
		return;
	}
	if (cmd->sqsize == 0 || (uint32_t)cmd->sqsize + 1 > tgt->lim.max_queue_depth) {
		NVMF_HOST_ERR("I/O Connect: SQSIZE %u out of range 1..%u", cmd->sqsize,
			      tgt->lim.max_queue_depth - 1);
		connect_invalid(qp, cmd_ctx, cmd->cid, FERRY_NVMF_IATTR_CMD,
				offsetof(struct ferry_nvmf_connect_cmd, sqsize));
		return;
	}
	struct io_connect *ic = calloc(1, sizeof(*ic));
	if (!ic) {
		complete_status(qp, cmd_ctx, cmd->cid, ST_GEN(FERRY_NVME_SC_INTERNAL), 0, 0);
		return;
	}
	pthread_mutex_lock(&tgt->lock);
	struct nvmf_ctrlr *nc = tgt->ctrlrs;
	for (; nc; nc = nc->next)
		if (nc->cntlid == cd->cntlid && !nc->dying &&
		    !strncmp(ferry_nvme_subsystem_get_nqn(nc->subsys), cd->subnqn,
			     sizeof(cd->subnqn)))
			break;
	uint32_t bad = 0;
	if (!nc)
		bad = offsetof(struct ferry_nvmf_connect_data, cntlid);
	else if (strncmp(nc->hostnqn, cd->hostnqn, sizeof(cd->hostnqn)))
		bad = offsetof(struct ferry_nvmf_connect_data, hostnqn);
	else if (nc->subsys == tgt->disc)
		bad = offsetof(struct ferry_nvmf_connect_data, subnqn);
	if (!bad)
		__atomic_fetch_add(&nc->pending, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_unlock(&tgt->lock);
	if (bad) {
		NVMF_HOST_ERR("I/O Connect: no controller %u of '%.64s' for host '%.64s'",
			      cd->cntlid, cd->subnqn, cd->hostnqn);
		free(ic);
		connect_invalid(qp, cmd_ctx, cmd->cid, FERRY_NVMF_IATTR_DATA, bad);
		return;
	}
	ic->qp = qp;
	ic->nc = nc;
	ic->cmd_ctx = cmd_ctx;
	ic->cid = cmd->cid;
	ic->qid = cmd->qid;
	ic->sqsize = (uint16_t)(cmd->sqsize + 1);
	qp->connecting = 1;
	if (nc->admin_pg == qp->pg) {
		io_connect_admin(ic);
	} else if (pg_post(nc->admin_pg, io_connect_admin, ic)) {
		__atomic_fetch_sub(&nc->pending, 1, __ATOMIC_ACQ_REL);
		qp->connecting = 0;
		free(ic);
		complete_status(qp, cmd_ctx, cmd->cid, ST_GEN(FERRY_NVME_SC_INTERNAL), 0, 0);
	}
}

static void fabrics_connect(struct nvmf_qpair *qp, const struct ferry_nvme_sqe *sqe,
			    const struct ferry_mem *data, uint32_t data_len, void *cmd_ctx)
{
	const struct ferry_nvmf_connect_cmd *cmd = (const void *)sqe;
	if (qp->ctrlr || qp->connecting) {
		NVMF_HOST_ERR("Connect on a connected queue");
		complete_status(qp, cmd_ctx, sqe->cid,
				ST_GEN(FERRY_NVME_SC_CMD_SEQ_ERROR) | FERRY_NVME_STATUS_DNR, 0, 0);
		return;
	}
	if (cmd->recfmt != 0) {
		NVMF_HOST_ERR("Connect: record format %u (only 0)", cmd->recfmt);
		complete_status(qp, cmd_ctx, sqe->cid,
				ST_CMD(FERRY_NVMF_SC_CONNECT_INCOMPATIBLE_FORMAT) |
					FERRY_NVME_STATUS_DNR,
				0, 0);
		return;
	}
	if (data_len < sizeof(struct ferry_nvmf_connect_data) || !data || data->iovcnt == 0) {
		NVMF_HOST_ERR("Connect: %u bytes of Connect data (1024 needed)", data_len);
		complete_status(qp, cmd_ctx, sqe->cid,
				ST_GEN(FERRY_NVME_SC_DATA_SGL_LEN) | FERRY_NVME_STATUS_DNR, 0, 0);
		return;
	}
	/* The data may span buffers: gather it (setup path). */
	struct ferry_nvmf_connect_data cd;
	size_t off = 0;
	for (uint32_t i = 0; i < data->iovcnt && off < sizeof(cd); i++) {
		size_t n = FERRY_MIN(data->iov[i].iov_len, sizeof(cd) - off);
		memcpy((uint8_t *)&cd + off, data->iov[i].iov_base, n);
		off += n;
	}
	cd.subnqn[sizeof(cd.subnqn) - 1] = 0;
	cd.hostnqn[sizeof(cd.hostnqn) - 1] = 0;
	if (cd.hostnqn[0] == 0) {
		NVMF_HOST_ERR("Connect: empty host NQN");
		connect_invalid(qp, cmd_ctx, sqe->cid, FERRY_NVMF_IATTR_DATA,
				offsetof(struct ferry_nvmf_connect_data, hostnqn));
		return;
	}
	if (cmd->qid == 0)
		connect_admin(qp, cmd, &cd, cmd_ctx);
	else
		connect_io(qp, cmd, &cd, cmd_ctx);
}

/* -- Property Get/Set (admin queue, admin group) -- */

static void fabrics_property(struct nvmf_qpair *qp, const struct ferry_nvme_sqe *sqe, int set,
			     void *cmd_ctx)
{
	struct nvmf_ctrlr *nc = qp->ctrlr;
	const struct ferry_nvmf_prop_set_cmd *ps = (const void *)sqe;
	uint32_t size = (ps->attrib & 7) == 0 ? 4 : (ps->attrib & 7) == 1 ? 8 : 0;
	if (qp->qid != 0 || !size) {
		complete_status(qp, cmd_ctx, sqe->cid,
				ST_GEN(FERRY_NVME_SC_INVALID_FIELD) | FERRY_NVME_STATUS_DNR, 0, 0);
		return;
	}
	if (set) {
		uint64_t old = 0;
		ferry_nvme_ctrlr_reg_read(nc->c, FERRY_NVME_REG_CC, 4, &old);
		int rc = ferry_nvme_ctrlr_reg_write(nc->c, ps->offset, size,
						    size == 4 ? (uint32_t)ps->value : ps->value);
		if (rc) {
			complete_status(qp, cmd_ctx, sqe->cid,
					ST_GEN(FERRY_NVME_SC_INVALID_FIELD) | FERRY_NVME_STATUS_DNR,
					0, 0);
			return;
		}
		uint64_t cc = 0;
		ferry_nvme_ctrlr_reg_read(nc->c, FERRY_NVME_REG_CC, 4, &cc);
		/* A reset (EN 1 to 0) or a shutdown: the I/O connections go (the core finishes
		 * the reset once they are disconnected). */
		if (((old & FERRY_NVME_CC_EN) && !(cc & FERRY_NVME_CC_EN)) ||
		    (!FERRY_NVME_CC_SHN(old) && FERRY_NVME_CC_SHN(cc)))
			close_io(nc);
		complete_status(qp, cmd_ctx, sqe->cid, 0, 0, 0);
		return;
	}
	const struct ferry_nvmf_prop_get_cmd *pg = (const void *)sqe;
	uint64_t v = 0;
	if (ferry_nvme_ctrlr_reg_read(nc->c, pg->offset, size, &v)) {
		complete_status(qp, cmd_ctx, sqe->cid,
				ST_GEN(FERRY_NVME_SC_INVALID_FIELD) | FERRY_NVME_STATUS_DNR, 0, 0);
		return;
	}
	complete_status(qp, cmd_ctx, sqe->cid, 0, (uint32_t)v, size == 8 ? (uint32_t)(v >> 32) : 0);
}

static void fabrics(struct nvmf_qpair *qp, const struct ferry_nvme_sqe *sqe,
		    const struct ferry_mem *data, uint32_t data_len, void *cmd_ctx)
{
	const struct ferry_nvmf_cmd *fc = (const void *)sqe;
	if (fc->fctype == FERRY_NVMF_FCTYPE_CONNECT) {
		fabrics_connect(qp, sqe, data, data_len, cmd_ctx);
		return;
	}
	if (!qp->ctrlr) {
		NVMF_HOST_ERR("Fabrics command 0x%x before Connect", fc->fctype);
		complete_status(qp, cmd_ctx, sqe->cid,
				ST_GEN(FERRY_NVME_SC_CMD_SEQ_ERROR) | FERRY_NVME_STATUS_DNR, 0, 0);
		return;
	}
	switch (fc->fctype) {
	case FERRY_NVMF_FCTYPE_PROPERTY_SET:
	case FERRY_NVMF_FCTYPE_PROPERTY_GET:
		if (qp->qid == 0)
			qp->ctrlr->last_ns = now_ns();
		fabrics_property(qp, sqe, fc->fctype == FERRY_NVMF_FCTYPE_PROPERTY_SET, cmd_ctx);
		return;
	case FERRY_NVMF_FCTYPE_DISCONNECT:
		complete_status(qp, cmd_ctx, sqe->cid, 0, 0, 0);
		qp->tgt->ops->close(qp);
		return;
	default:
		complete_status(qp, cmd_ctx, sqe->cid,
				ST_GEN(FERRY_NVME_SC_INVALID_FIELD) | FERRY_NVME_STATUS_DNR, 0, 0);
		return;
	}
}

void nvmf_tgt_qpair_exec(struct nvmf_qpair *qp, const struct ferry_nvme_sqe *sqe,
			 const struct ferry_mem *data, uint32_t data_len, void *cmd_ctx)
{
	if (sqe->opcode == FERRY_NVMF_OPC_FABRICS) {
		fabrics(qp, sqe, data, data_len, cmd_ctx);
		return;
	}
	struct nvmf_ctrlr *nc = qp->ctrlr;
	if (!nc || qp->closing) {
		if (!nc)
			NVMF_HOST_ERR("command 0x%x before Connect", sqe->opcode);
		complete_status(qp, cmd_ctx, sqe->cid,
				ST_GEN(FERRY_NVME_SC_CMD_SEQ_ERROR) | FERRY_NVME_STATUS_DNR, 0, 0);
		return;
	}
	if (qp->qid == 0)
		nc->last_ns = now_ns(); /* any admin command counts as keep-alive */
	int rc = ferry_nvme_ctrlr_submit(nc->c, qp->qid, sqe, data, cmd_ctx);
	if (rc == 0)
		return;
	uint16_t st;
	if (rc == -EAGAIN || rc == -ENOENT)
		st = ST_GEN(FERRY_NVME_SC_CMD_SEQ_ERROR);
	else if (rc == -EBUSY)
		st = ST_GEN(FERRY_NVME_SC_NS_NOT_READY); /* retryable: the queue is full */
	else
		st = ST_GEN(FERRY_NVME_SC_INTERNAL);
	complete_status(qp, cmd_ctx, sqe->cid, st, 0, 0);
}

/* -- teardown -- */

static void io_detach(void *arg);

struct io_detach_msg {
	struct nvmf_qpair *qp;
	struct nvmf_ctrlr *nc;
};

static void io_release(void *arg)
{
	struct nvmf_qpair *qp = arg;
	if (qp->tgt->ops->release)
		qp->tgt->ops->release(qp);
}

/* Admin group: the I/O queue is quiesced on its group; remove it from the controller. */
static void io_detach(void *arg)
{
	struct io_detach_msg *m = arg;
	struct nvmf_ctrlr *nc = m->nc;
	struct nvmf_qpair *qp = m->qp;
	if (nc->io[qp->qid] == qp) {
		nc->io[qp->qid] = NULL;
		nc->nio--;
		int rc = ferry_nvme_ctrlr_disconnect_queue(nc->c, qp->qid);
		if (rc)
			FERRY_ERR(COMP, "controller %u: disconnect of queue %u: %s", nc->cntlid,
				  qp->qid, ferry_strerror(rc));
	}
	if (qp->pg == nc->admin_pg)
		io_release(qp);
	else if (pg_post(qp->pg, io_release, qp))
		FERRY_ERR(COMP, "controller %u: queue %u's connection is leaked (no memory)",
			  nc->cntlid, qp->qid);
	free(m);
}

void nvmf_tgt_qpair_fini(struct nvmf_qpair *qp)
{
	struct nvmf_ctrlr *nc = qp->ctrlr;
	if (!nc) {
		io_release(qp);
		return;
	}
	if (qp->qid == 0) {
		/* The association ends with its admin connection. */
		nc->admin = NULL;
		ctrlr_kill(nc, "admin connection closed");
		io_release(qp);
		return;
	}
	struct io_detach_msg *m = malloc(sizeof(*m));
	if (!m) {
		FERRY_ERR(COMP, "controller %u: queue %u's connection is leaked (no memory)",
			  nc->cntlid, qp->qid);
		return;
	}
	m->qp = qp;
	m->nc = nc;
	if (qp->pg == nc->admin_pg)
		io_detach(m);
	else if (pg_post(nc->admin_pg, io_detach, m)) {
		free(m);
		FERRY_ERR(COMP, "controller %u: queue %u's connection is leaked (no memory)",
			  nc->cntlid, qp->qid);
	}
}

int nvmf_pg_poll(struct nvmf_tgt *tgt, struct pg_core *pg)
{
	int work = 0;
	uint64_t now = 0;
	/* Keep-alive timeouts are seconds: the timers are checked (and the clock read) once every
	 * 64 polls, a clock read per busy poll costing more than an idle poll's other work. */
	int tick = (++pg->polls & 63u) == 0;
	for (struct nvmf_ctrlr **pp = &pg->ctrlrs; *pp;) {
		struct nvmf_ctrlr *nc = *pp;
		int n = ferry_nvme_ctrlr_poll(nc->c, 32);
		if (n > 0)
			work += n;
		if (!nc->dying && nc->admin && nc->admin->closing) {
			/* The admin connection closed (the host went away) while a command of it
			 * still executes: the transport waits for it before nvmf_tgt_qpair_fini(),
			 * but a parked Asynchronous Event Request never completes by itself, so
			 * connection and controller were leaked. The teardown starts now: clearing
			 * CC.EN aborts the parked requests. */
			ctrlr_kill(nc, "admin connection closed");
			work++;
		}
		if (!nc->dying) {
			uint32_t kato = tick ? ferry_nvme_ctrlr_get_kato(nc->c) : 0;
			if (kato && !now)
				now = now_ns();
			if (kato && now - nc->last_ns > (uint64_t)kato * 1000000ull) {
				pthread_mutex_lock(&tgt->lock);
				tgt->kato_expired++;
				pthread_mutex_unlock(&tgt->lock);
				ctrlr_kill(nc, "keep-alive timeout");
				work++;
			}
		} else if (!nc->admin && nc->nio == 0 &&
			   __atomic_load_n(&nc->pending, __ATOMIC_ACQUIRE) == 0) {
			pthread_mutex_lock(&tgt->lock);
			int rc = __atomic_load_n(&nc->pending, __ATOMIC_ACQUIRE)
					 ? -EBUSY
					 : ferry_nvme_ctrlr_destroy(nc->c);
			if (rc == 0) {
				struct nvmf_ctrlr **gp = &tgt->ctrlrs;
				while (*gp != nc)
					gp = &(*gp)->next;
				*gp = nc->next;
				tgt->destroyed++;
				tgt->alive--;
			}
			pthread_mutex_unlock(&tgt->lock);
			if (rc == 0) {
				*pp = nc->pg_next;
				ctrlr_free(nc);
				work++;
				continue;
			}
		}
		pp = &nc->pg_next;
	}
	return work;
}
