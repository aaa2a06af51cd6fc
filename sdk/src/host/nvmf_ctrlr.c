/*
 * The initiator's controller: the synchronous connect sequence (admin queue: Connect,
 * Property Get/Set, CSTS.RDY, Identify, Number of Queues, Identify Namespace; then each I/O
 * queue's Connect), the connection-loss handling (in-flight I/O back to the pending list,
 * reconnect with a doubling delay, give up after the controller-loss timeout), keep-alive,
 * and the bdev's poll that drives it all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ferry/nvmf_spec.h>
#include "core_internal.h"
#include "nvmf_internal.h"

/* Run one admin command synchronously on @p q; data (if any) in c->idbuf or c->cdata. */
static int admin_sync(struct nvmf_qpair *q, struct ferry_nvme_sqe *sqe, void *data, uint32_t len,
		      int to_ctrlr, struct ferry_nvme_cqe *cqe, uint64_t deadline, const char *step)
{
	struct nvmf_ctrlr *c = q->c;
	struct iovec iov = {data, len};
	struct nvmf_slot *s = nvmf_slot_get(q);
	if (!s) {
		FERRY_ERR(NVMF_COMP, "'%s' %s: no free command slot", c->name, step);
		return -EBUSY;
	}
	s->sqe = *sqe;
	s->data = &iov;
	s->data_cnt = len ? 1 : 0;
	s->len = len;
	s->dir = len ? (to_ctrlr ? 1 : 2) : 0;
	int rc = nvmf_slot_submit(s);
	if (rc) {
		nvmf_slot_put(s);
		FERRY_ERR(NVMF_COMP, "'%s' %s: cannot build the command", c->name, step);
		return rc;
	}
	rc = nvmf_qpair_wait(q, s, deadline);
	if (rc) {
		/* The slot stays busy: the connection is torn down (closed) by the caller. */
		FERRY_ERR(NVMF_COMP, "'%s' %s: %s", c->name, step,
			  rc == -ETIMEDOUT ? "no completion within the timeout"
					   : "connection lost");
		return rc;
	}
	if (cqe)
		*cqe = s->cqe;
	uint16_t st = (uint16_t)(s->cqe.status >> 1);
	rc = s->status;
	nvmf_slot_put(s);
	if (rc) {
		if (st)
			FERRY_ERR(NVMF_COMP, "'%s' %s failed: status SCT 0x%x SC 0x%02x%s", c->name,
				  step, FERRY_NVME_STATUS_SCT(st), FERRY_NVME_STATUS_SC(st),
				  st & FERRY_NVME_STATUS_DNR ? " (DNR)" : "");
		else
			FERRY_ERR(NVMF_COMP, "'%s' %s failed: %s", c->name, step,
				  ferry_strerror(rc));
		return st ? -EIO : rc;
	}
	return 0;
}

static int fabrics_connect(struct nvmf_qpair *q, uint16_t sqsize, uint64_t deadline)
{
	struct nvmf_ctrlr *c = q->c;
	struct ferry_nvmf_connect_data *d = (void *)c->cdata;
	struct ferry_nvme_sqe sqe;
	struct ferry_nvmf_connect_cmd *cmd = (void *)&sqe;
	struct ferry_nvme_cqe cqe;
	char step[48];

	memset(d, 0, sizeof(*d));
	memcpy(d->hostid, c->hostid, sizeof(d->hostid));
	d->cntlid = q->qid ? c->cntlid : FERRY_NVMF_CNTLID_DYNAMIC;
	memcpy(d->subnqn, c->subnqn, sizeof(d->subnqn));
	memcpy(d->hostnqn, c->hostnqn, sizeof(d->hostnqn));
	memset(&sqe, 0, sizeof(sqe));
	cmd->opcode = FERRY_NVMF_OPC_FABRICS;
	cmd->fctype = FERRY_NVMF_FCTYPE_CONNECT;
	cmd->recfmt = 0;
	cmd->qid = q->qid;
	cmd->sqsize = sqsize;
	cmd->kato = q->qid ? 0 : c->kato_ms;
	snprintf(step, sizeof(step), "Connect (queue %u)", q->qid);
	int rc = admin_sync(q, &sqe, d, sizeof(*d), 1, &cqe, deadline, step);
	if (rc == -EIO && FERRY_NVME_STATUS_SCT(cqe.status >> 1) == FERRY_NVME_SCT_COMMAND &&
	    FERRY_NVME_STATUS_SC(cqe.status >> 1) == FERRY_NVMF_SC_CONNECT_INVALID_PARAM)
		FERRY_ERR(NVMF_COMP, "'%s' %s: invalid parameter at %s offset %u", c->name, step,
			  (cqe.dw0 >> 16) & 1 ? "data" : "command", cqe.dw0 & 0xffff);
	if (rc)
		return rc;
	if (!q->qid)
		c->cntlid = (uint16_t)(cqe.dw0 & 0xffff);
	return 0;
}

static int prop_get(struct nvmf_ctrlr *c, uint32_t off, int eight, uint64_t *val, uint64_t deadline,
		    const char *step)
{
	struct ferry_nvme_sqe sqe;
	struct ferry_nvmf_prop_get_cmd *cmd = (void *)&sqe;
	struct ferry_nvme_cqe cqe;
	memset(&sqe, 0, sizeof(sqe));
	cmd->opcode = FERRY_NVMF_OPC_FABRICS;
	cmd->fctype = FERRY_NVMF_FCTYPE_PROPERTY_GET;
	cmd->attrib = eight ? 1 : 0;
	cmd->offset = off;
	int rc = admin_sync(&c->admin, &sqe, NULL, 0, 0, &cqe, deadline, step);
	if (rc)
		return rc;
	*val = cqe.dw0 | (eight ? (uint64_t)cqe.dw1 << 32 : 0);
	return 0;
}

static int prop_set(struct nvmf_ctrlr *c, uint32_t off, uint32_t val, uint64_t deadline,
		    const char *step)
{
	struct ferry_nvme_sqe sqe;
	struct ferry_nvmf_prop_set_cmd *cmd = (void *)&sqe;
	memset(&sqe, 0, sizeof(sqe));
	cmd->opcode = FERRY_NVMF_OPC_FABRICS;
	cmd->fctype = FERRY_NVMF_FCTYPE_PROPERTY_SET;
	cmd->attrib = 0;
	cmd->offset = off;
	cmd->value = val;
	return admin_sync(&c->admin, &sqe, NULL, 0, 0, NULL, deadline, step);
}

static int identify(struct nvmf_ctrlr *c, uint8_t cns, uint32_t nsid, uint64_t deadline,
		    const char *step)
{
	struct ferry_nvme_sqe sqe;
	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = FERRY_NVME_ADM_IDENTIFY;
	sqe.nsid = nsid;
	sqe.cdw10 = cns;
	memset(c->idbuf, 0, 4096);
	return admin_sync(&c->admin, &sqe, c->idbuf, 4096, 0, NULL, deadline, step);
}

static int enable(struct nvmf_ctrlr *c, uint64_t deadline)
{
	uint64_t v;
	int rc = prop_get(c, FERRY_NVME_REG_CAP, 1, &c->cap, deadline, "Property Get CAP");
	if (rc)
		return rc;
	rc = prop_get(c, FERRY_NVME_REG_VS, 0, &v, deadline, "Property Get VS");
	if (rc)
		return rc;
	c->vs = (uint32_t)v;
	uint32_t cc = FERRY_NVME_CC_EN | (6u << 16) | (4u << 20);
	rc = prop_set(c, FERRY_NVME_REG_CC, cc, deadline, "Property Set CC.EN");
	if (rc)
		return rc;
	uint64_t to = nvmf_now_ns() +
		      (uint64_t)FERRY_MAX(FERRY_NVME_CAP_TO(c->cap), 1) * 500000000ull;
	for (;;) {
		rc = prop_get(c, FERRY_NVME_REG_CSTS, 0, &v, deadline, "Property Get CSTS");
		if (rc)
			return rc;
		if (v & FERRY_NVME_CSTS_CFS) {
			FERRY_ERR(NVMF_COMP,
				  "'%s': controller fatal status (CSTS 0x%x) after enable", c->name,
				  (unsigned)v);
			return -EIO;
		}
		if (v & FERRY_NVME_CSTS_RDY)
			return 0;
		uint64_t now = nvmf_now_ns();
		if (now > to || now > deadline) {
			FERRY_ERR(NVMF_COMP, "'%s': CSTS.RDY not set within CAP.TO (%u ms)",
				  c->name, FERRY_NVME_CAP_TO(c->cap) * 500);
			return -ETIMEDOUT;
		}
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
}

static int identify_all(struct nvmf_ctrlr *c, int first, uint64_t deadline)
{
	int rc = identify(c, FERRY_NVME_CNS_CTRLR, 0, deadline, "Identify Controller");
	if (rc)
		return rc;
	const struct ferry_nvme_id_ctrlr *id = (const void *)c->idbuf;
	uint32_t mps = 4096u << FERRY_NVME_CAP_MPSMIN(c->cap);
	c->mdts_bytes = id->mdts ? (id->mdts >= 20 ? 0 : mps << id->mdts) : 0;
	memcpy(&c->ioccsz, id->nvmf, sizeof(c->ioccsz));
	memcpy(&c->icdoff, id->nvmf + 8, sizeof(c->icdoff));
	c->msdbd = id->nvmf[11];
	c->oncs = id->oncs;
	c->vwc = id->vwc;
	if (!(id->sgls & 3))
		FERRY_WARN(NVMF_COMP, "'%s': controller reports no SGL support (SGLS 0x%x)",
			   c->name, id->sgls);

	uint16_t want = first ? (c->opts.num_io_queues ? c->opts.num_io_queues : 1) : c->nq;
	if (want > NVMF_MAX_QUEUES)
		want = NVMF_MAX_QUEUES;
	struct ferry_nvme_sqe sqe;
	struct ferry_nvme_cqe cqe;
	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = FERRY_NVME_ADM_SET_FEATURES;
	sqe.cdw10 = FERRY_NVME_FEAT_NUM_QUEUES;
	sqe.cdw11 = (uint32_t)(want - 1) | (uint32_t)(want - 1) << 16;
	rc = admin_sync(&c->admin, &sqe, NULL, 0, 0, &cqe, deadline,
			"Set Features Number of Queues");
	if (rc)
		return rc;
	uint32_t nsqa = (cqe.dw0 & 0xffff) + 1, ncqa = (cqe.dw0 >> 16) + 1;
	uint16_t nq = (uint16_t)FERRY_MIN(want, FERRY_MIN(nsqa, ncqa));
	if (!first && nq < c->nq) {
		FERRY_ERR(NVMF_COMP, "'%s': controller now grants %u I/O queues, had %u", c->name,
			  nq, c->nq);
		return -EIO;
	}
	if (first)
		c->nq = nq;

	uint32_t nsid = c->opts.nsid;
	if (!nsid) {
		rc = identify(c, FERRY_NVME_CNS_ACTIVE_NS_LIST, 0, deadline,
			      "Identify Active Namespace List");
		if (rc)
			return rc;
		memcpy(&nsid, c->idbuf, sizeof(nsid));
		if (!nsid) {
			FERRY_ERR(NVMF_COMP, "'%s': the subsystem has no active namespace",
				  c->name);
			return -ENODEV;
		}
	}
	rc = identify(c, FERRY_NVME_CNS_NS, nsid, deadline, "Identify Namespace");
	if (rc)
		return rc == -EIO ? -ENODEV : rc;
	const struct ferry_nvme_id_ns *ns = (const void *)c->idbuf;
	if (!ns->nsze) {
		FERRY_ERR(NVMF_COMP, "'%s': namespace %u is not active", c->name, nsid);
		return -ENODEV;
	}
	const struct ferry_nvme_lbaf *f = &ns->lbaf[ns->flbas & 0xf];
	if (f->lbads < 9 || f->lbads > 16 || (f->ms && !(ns->flbas & 0x10))) {
		FERRY_ERR(NVMF_COMP, "'%s': namespace %u format (2^%u + %u bytes%s) is not usable",
			  c->name, nsid, f->lbads, f->ms,
			  f->ms && !(ns->flbas & 0x10) ? ", separate metadata" : "");
		return -ENOTSUP;
	}
	uint32_t bs = (1u << f->lbads) + f->ms;
	if (!first && (bs != c->block_size || ns->nsze != c->num_blocks || nsid != c->nsid)) {
		FERRY_ERR(NVMF_COMP, "'%s': namespace %u changed geometry across a reconnect",
			  c->name, nsid);
		return -ENODEV;
	}
	c->nsid = nsid;
	c->block_size = bs;
	c->md_size = f->ms;
	c->num_blocks = ns->nsze;
	uint64_t mx = 65536ull * bs; /* NLB is 16 bits */
	if (c->mdts_bytes && c->mdts_bytes < mx)
		mx = c->mdts_bytes;
	c->max_xfer = (uint32_t)FERRY_MIN(mx, 16ull << 20);
	return 0;
}

static void qpair_abandon(struct nvmf_ctrlr *c, struct nvmf_qpair *q, int requeue)
{
	nvmf_qpair_close(q); /* ends the receive offload first: no teardown is left pending */
	for (uint16_t i = 0; q->slots && i < q->depth; i++) {
		struct nvmf_slot *s = &q->slots[i];
		/* A command over whose bytes are being pushed into host memory completes from
		 * the push's callback (it owns the slot until then), not here. */
		if (s->state != SLOT_BUSY || s->ddp == DDP_PUSHING)
			continue;
		struct ferry_bdev_io *io = s->io;
		nvmf_slot_put(s);
		if (io && requeue)
			nvmf_io_part_lost(c, io);
	}
}

void nvmf_ctrlr_disconnect(struct nvmf_ctrlr *c)
{
	qpair_abandon(c, &c->admin, 0);
	for (uint16_t i = 0; c->ioq && i < c->nq; i++)
		qpair_abandon(c, &c->ioq[i], 1);
	c->ka_sent_ns = 0;
}

int nvmf_ctrlr_connect(struct nvmf_ctrlr *c, int first)
{
	uint64_t deadline = nvmf_now_ns() + (uint64_t)c->opts.connect_timeout_ms * 1000000ull;
	int rc;

	c->connecting = 1;
	rc = nvmf_qpair_connect(&c->admin, deadline);
	if (rc)
		goto out;
	/* NVMe/TCP's admin queue takes 8 KiB in the capsule; an RDMA one may take none (Linux
	 * nvmet-rdma): its data always goes by keyed SGL. */
	c->admin.max_icd = c->rdma ? 0 : NVMF_ADMIN_ICD;
	rc = fabrics_connect(&c->admin, NVMF_ADMIN_DEPTH - 1, deadline);
	if (rc)
		goto out;
	rc = enable(c, deadline);
	if (rc)
		goto out;
	rc = identify_all(c, first, deadline);
	if (rc)
		goto out;
	/* The controller's limits honour the NIC's: one command's transfer fits one DDP
	 * mapping (the segments are checked per command, nvmf_ddp_map()). */
	if (c->ddp_on && c->info.ddp_max_io < c->max_xfer) {
		uint32_t mx = c->info.ddp_max_io - c->info.ddp_max_io % c->block_size;
		if (mx >= c->block_size)
			c->max_xfer = mx;
	}
	/* A keyed SGL descriptor's length has 24 bits. */
	if (c->rdma && c->max_xfer >= (1u << 24))
		c->max_xfer = ((1u << 24) - 1) / c->block_size * c->block_size;
	if (first) {
		uint32_t qd = c->opts.queue_depth ? c->opts.queue_depth : 128;
		qd = FERRY_MIN(qd, FERRY_NVME_CAP_MQES(c->cap) + 1);
		qd = FERRY_MIN(qd, 1024u);
		c->qd = (uint16_t)FERRY_MAX(qd, 2u);
		c->ioq = calloc(c->nq, sizeof(*c->ioq));
		if (!c->ioq) {
			rc = -ENOMEM;
			goto out;
		}
		for (uint16_t i = 0; i < c->nq; i++) {
			rc = nvmf_qpair_init(c, &c->ioq[i], (uint16_t)(i + 1), c->qd);
			if (rc)
				goto out;
		}
	}
	for (uint16_t i = 0; i < c->nq; i++) {
		struct nvmf_qpair *q = &c->ioq[i];
		rc = nvmf_qpair_connect(q, deadline);
		if (rc)
			goto out;
		/* IOCCSZ is the controller's word (16-byte units, 32 bits): computed in 64 bits
		 * and capped at what one command may carry, so a huge value cannot wrap into a
		 * small or bogus in-capsule limit. */
		uint64_t icd = c->ioccsz >= 4 ? (uint64_t)c->ioccsz * 16 - 64 : 0;
		q->max_icd = (uint32_t)FERRY_MIN(icd, (uint64_t)c->max_xfer);
		rc = fabrics_connect(q, (uint16_t)(c->qd - 1), deadline);
		if (rc)
			goto out;
	}
	c->ka_next_ns = nvmf_now_ns() + (uint64_t)c->kato_ms * 500000ull;
	c->io_check_ns = c->ka_next_ns;
	c->ka_sent_ns = 0;
out:
	c->connecting = 0;
	if (rc)
		nvmf_ctrlr_disconnect(c);
	return rc;
}

void nvmf_ctrlr_lost(struct nvmf_ctrlr *c)
{
	if (c->connecting || c->state != FERRY_BDEV_NVMF_CONNECTED)
		return;
	c->state = FERRY_BDEV_NVMF_RECONNECTING;
	c->st.connection_losses++;
	c->lost_ns = nvmf_now_ns();
	c->delay_ms = c->opts.reconnect_delay_ms;
	c->next_attempt_ns = c->lost_ns + (uint64_t)c->delay_ms * 1000000ull;
	nvmf_ctrlr_disconnect(c);
}

static void keep_alive(struct nvmf_ctrlr *c, uint64_t now)
{
	if (c->ka_sent_ns && now - c->ka_sent_ns > (uint64_t)c->kato_ms * 1000000ull) {
		nvmf_qpair_fail(&c->admin, "keep-alive timeout");
		return;
	}
	if (now < c->ka_next_ns || c->ka_sent_ns)
		return;
	struct nvmf_slot *s = nvmf_slot_get(&c->admin);
	if (!s)
		return;
	s->sqe.opcode = FERRY_NVME_ADM_KEEP_ALIVE;
	s->is_ka = 1;
	if (nvmf_slot_submit(s)) {
		nvmf_slot_put(s);
		return;
	}
	c->st.keep_alives++;
	c->ka_sent_ns = now;
	c->ka_next_ns = now + (uint64_t)c->kato_ms * 500000ull;
}

/*
 * A controller that answers keep-alives but never completes a command (a hostile or broken
 * one) would hold that I/O forever, the bdev's user hanging with it: every KATO / 2 each busy
 * I/O slot ages by one scan; a slot busy for more than NVMF_IO_TIMEOUT_SCANS scans fails its
 * connection (reconnect, the I/O is resubmitted or fails). No clock read per command.
 */
static void io_timeout_scan(struct nvmf_ctrlr *c, uint64_t now)
{
	if (now < c->io_check_ns)
		return;
	c->io_check_ns = now + (uint64_t)c->kato_ms * 500000ull;
	for (uint16_t i = 0; i < c->nq; i++) {
		struct nvmf_qpair *q = &c->ioq[i];
		for (uint16_t j = 0; q->busy && j < q->depth; j++) {
			struct nvmf_slot *s = &q->slots[j];
			/* A slot moving its data between the staging buffer and the I/O's memory
			 * (or reaped, waiting for the poll) waits on this side, not on the
			 * controller: failing the connection would not help it (and it is not
			 * resubmitted by a loss), so it does not age. */
			if (s->ddp == DDP_PUSHING || s->ddp == DDP_REAPED)
				continue;
			if (s->state == SLOT_BUSY && ++s->age > NVMF_IO_TIMEOUT_SCANS) {
				nvmf_qpair_fail(q, "a command got no completion within 3 x KATO");
				return;
			}
		}
	}
}

static void attempt_failed(struct nvmf_ctrlr *c, uint64_t now)
{
	uint32_t cap = c->opts.reconnect_delay_ms * 16;
	c->delay_ms = FERRY_MIN(c->delay_ms * 2, cap);
	c->next_attempt_ns = now + (uint64_t)c->delay_ms * 1000000ull;
	if (c->state == FERRY_BDEV_NVMF_RECONNECTING &&
	    now - c->lost_ns >= (uint64_t)c->opts.ctrlr_loss_timeout_ms * 1000000ull) {
		FERRY_ERR(NVMF_COMP, "'%s': no connection to %s for %u ms: failing I/O", c->name,
			  c->addr, c->opts.ctrlr_loss_timeout_ms);
		c->state = FERRY_BDEV_NVMF_FAILED;
		c->delay_ms = cap;
		nvmf_io_fail_pending(c, -ENODEV);
	}
}

/*
 * A reconnect attempt in two phases: the admin queue's TCP connect is started and then
 * watched from the poll without blocking (an unreachable controller costs the polling thread
 * nothing); once it is up, the rest of the sequence runs synchronously, bounded by
 * connect_timeout_ms, against a controller that answers.
 */
static int reconnect(struct nvmf_ctrlr *c, uint64_t now)
{
	struct nvmf_qpair *a = &c->admin;
	int rc;

	if (now < c->next_attempt_ns)
		return 0;
	if (c->rdma) {
		/* The RDMA connect is watched inside the sequence, bounded by
		 * connect_timeout_ms (the connection manager answers a refusal at once). */
		(void)a;
		goto sequence;
	}
	if (!a->sock) {
		struct ferry_hal_sock_opts so = {.size = sizeof(so),
						 .addr = c->addr,
						 .flags = FERRY_HAL_SOCK_F_NODELAY};
		rc = c->nic->connect(c->dev, &so, &a->sock);
		if (rc) {
			a->sock = NULL;
			attempt_failed(c, now);
			return 0;
		}
		c->attempt_deadline_ns = now + (uint64_t)c->opts.connect_timeout_ms * 1000000ull;
		return 0;
	}
	rc = c->nic->sock_error(a->sock);
	if (rc == -EINPROGRESS && now <= c->attempt_deadline_ns)
		return 0;
	if (rc) {
		nvmf_qpair_close(a);
		attempt_failed(c, now);
		return 0;
	}
sequence:
	rc = nvmf_ctrlr_connect(c, 0);
	now = nvmf_now_ns();
	if (rc) {
		attempt_failed(c, now);
		return 0;
	}
	FERRY_INFO(NVMF_COMP, "'%s': reconnected to %s", c->name, c->addr);
	c->state = FERRY_BDEV_NVMF_CONNECTED;
	c->st.reconnects++;
	nvmf_io_kick(c);
	return 1;
}

int nvmf_ctrlr_poll(struct nvmf_ctrlr *c)
{
	struct ferry_hal_sock_event ev[32];
	int work = 0;

	nvmf_linger_poll(c, 0);
	if (c->state != FERRY_BDEV_NVMF_CONNECTED)
		return reconnect(c, nvmf_now_ns());
	/* While connected the clock only drives keep-alives (KATO is seconds): read it once every
	 * NVMF_CLOCK_POLLS polls, a clock read per busy poll costs more than an idle poll's work. */
	int tick = (++c->polls & (NVMF_CLOCK_POLLS - 1)) == 0;
	/* Send what was queued since the last poll (one sendv per queue), then receive. */
	for (uint16_t i = 0; i < c->nq && c->state == FERRY_BDEV_NVMF_CONNECTED; i++)
		if (c->ioq[i].tx_head)
			work += FERRY_MAX(nvmf_qpair_flush(&c->ioq[i]), 0);
	int n = c->rdma ? 0 : c->nic->group_poll(c->group, ev, FERRY_ARRAY_SIZE(ev), 0);
	if (c->rdma)
		work += nvmf_rdma_poll(c);
	for (int i = 0; i < n && c->state == FERRY_BDEV_NVMF_CONNECTED; i++) {
		struct nvmf_qpair *q = ev[i].ctx;
		work += FERRY_MAX(nvmf_qpair_process(q), 0);
	}
	/* Commands whose DDP teardown completed (during group_poll() or a receive) finish
	 * here, outside the NIC's calls; a resync request made in group_poll() is answered. */
	for (uint16_t i = 0; !c->rdma && i < c->nq && c->state == FERRY_BDEV_NVMF_CONNECTED; i++) {
		struct nvmf_qpair *q = &c->ioq[i];
		if (q->reap_head) {
			nvmf_ddp_reap(q);
			work++;
		}
		if (q->resync_pending)
			nvmf_ddp_resync_answer(q);
	}
	if (c->state != FERRY_BDEV_NVMF_CONNECTED)
		return work;
	if (tick) {
		uint64_t now = nvmf_now_ns();
		keep_alive(c, now);
		if (c->state == FERRY_BDEV_NVMF_CONNECTED)
			io_timeout_scan(c, now);
	}
	if (c->state != FERRY_BDEV_NVMF_CONNECTED)
		return work;
	nvmf_io_kick(c);
	/* Completions may have queued new commands: send them now rather than next poll. */
	for (uint16_t i = 0; i < c->nq && c->state == FERRY_BDEV_NVMF_CONNECTED; i++)
		if (c->ioq[i].tx_head)
			work += FERRY_MAX(nvmf_qpair_flush(&c->ioq[i]), 0);
	if (c->admin.tx_head && c->state == FERRY_BDEV_NVMF_CONNECTED)
		nvmf_qpair_flush(&c->admin);
	return work;
}
