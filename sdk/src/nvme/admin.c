/*
 * NVMe admin command set, part 1: dispatch; Create/Delete I/O Submission and Completion
 * Queue with their validation; Get/Set Features; Abort; Asynchronous Event Request; Keep
 * Alive. Identify and Get Log Page are in nvme_admin_info.c.
 */
#include <string.h>
#include "nvme_internal.h"

/* ---- queues ------------------------------------------------------------------------ */

static int io_queue_exists(const struct ferry_nvme_ctrlr *c)
{
	for (uint32_t q = 1; q <= c->max_io_queues; q++)
		if (c->sq[q].valid || c->cq[q].valid)
			return 1;
	return 0;
}

static uint16_t check_base(const struct ferry_nvme_ctrlr *c, uint64_t base, uint32_t entries,
			   uint32_t entry_size)
{
	if (base & (c->page_size - 1))
		return NVME_GEN(FERRY_NVME_SC_PRP_OFFSET);
	if ((uint64_t)entries * entry_size - 1 > UINT64_MAX - base)
		return NVME_GEN(FERRY_NVME_SC_INVALID_FIELD);
	return 0;
}

/*
 * CC.IOSQES/IOCQES may still be 0 after enable; an I/O queue cannot be created before the
 * host has set its entry size. No status for this case was found in the specification text
 * (the Create I/O SQ/CQ status tables cover the queue identifier, the number of entries and
 * the vector), so it gets the generic Invalid Field in Command; some other emulators answer
 * Invalid Queue Size instead. Checked first: without an entry size the queue's extent in
 * host memory is unknown. The enable refuses values other than 0 and the supported one, but
 * the host may still change the fields while enabled, so any other value is refused here.
 */
static uint16_t check_entry_size(struct ferry_nvme_ctrlr *c, int sq)
{
	uint32_t es = sq ? FERRY_NVME_CC_IOSQES(c->cc) : FERRY_NVME_CC_IOCQES(c->cc);
	if (es == (sq ? NVME_IOSQES : NVME_IOCQES))
		return 0;
	ferry_log(nvme_host_err_level(c), NVME_COMP,
		  "controller %u: Create I/O %s refused: CC.%s is %u, must be %u before I/O "
		  "queues are created", c->cntlid, sq ? "SQ" : "CQ", sq ? "IOSQES" : "IOCQES", es,
		  sq ? NVME_IOSQES : NVME_IOCQES);
	return NVME_GEN(FERRY_NVME_SC_INVALID_FIELD);
}

static void create_cq(struct nvme_req *req)
{
	struct ferry_nvme_ctrlr *c = req->ctrlr;
	const struct ferry_nvme_sqe *cmd = &req->cmd;
	uint32_t qid = cmd->cdw10 & 0xffff, qsize = cmd->cdw10 >> 16;
	int pc = cmd->cdw11 & 1, ien = (cmd->cdw11 >> 1) & 1;
	uint32_t iv = cmd->cdw11 >> 16;
	uint16_t st;

	if ((st = check_entry_size(c, 0)) != 0) {
		nvme_req_complete(req, st);
		return;
	}
	if (qid == 0 || qid > c->max_io_queues || qid > (uint32_t)c->ncqa + 1 ||
	    c->cq[qid].valid)
		st = NVME_CMD(FERRY_NVME_SC_INVALID_QID);
	else if (qsize == 0 || qsize > c->mqes)
		st = NVME_CMD(FERRY_NVME_SC_INVALID_QSIZE);
	else if (!pc)
		st = NVME_GEN(FERRY_NVME_SC_INVALID_FIELD); /* only contiguous queues */
	else if (ien && iv >= c->num_vectors)
		st = NVME_CMD(FERRY_NVME_SC_INVALID_VECTOR);
	else
		st = check_base(c, cmd->dptr.prp.prp1, qsize + 1, sizeof(struct ferry_nvme_cqe));
	if (st) {
		FERRY_DBG(NVME_COMP, "controller %u: create CQ %u (size %u, pc %d, ien %d, iv %u) "
			  "refused: %s", c->cntlid, qid, qsize + 1, pc, ien, iv,
			  ferry_nvme_status_str(st));
		nvme_req_complete(req, st);
		return;
	}
	nvme_cq_init(&c->cq[qid], (uint16_t)qid, qsize + 1, cmd->dptr.prp.prp1, ien, (uint16_t)iv);
	nvme_req_complete(req, 0);
}

static void delete_cq(struct nvme_req *req)
{
	struct ferry_nvme_ctrlr *c = req->ctrlr;
	uint32_t qid = req->cmd.cdw10 & 0xffff;
	if (qid == 0 || qid > c->max_io_queues || !c->cq[qid].valid) {
		nvme_req_complete(req, NVME_CMD(FERRY_NVME_SC_INVALID_QID));
		return;
	}
	if (c->cq[qid].sq_refs) {
		nvme_req_complete(req, NVME_CMD(FERRY_NVME_SC_INVALID_QUEUE_DELETION));
		return;
	}
	memset(&c->cq[qid], 0, sizeof(c->cq[qid]));
	nvme_req_complete(req, 0);
}

static void create_sq(struct nvme_req *req)
{
	struct ferry_nvme_ctrlr *c = req->ctrlr;
	const struct ferry_nvme_sqe *cmd = &req->cmd;
	uint32_t qid = cmd->cdw10 & 0xffff, qsize = cmd->cdw10 >> 16;
	int pc = cmd->cdw11 & 1;
	uint32_t cqid = cmd->cdw11 >> 16;
	uint16_t st;

	if ((st = check_entry_size(c, 1)) != 0) {
		nvme_req_complete(req, st);
		return;
	}
	if (qid == 0 || qid > c->max_io_queues || qid > (uint32_t)c->nsqa + 1 ||
	    c->sq[qid].valid)
		st = NVME_CMD(FERRY_NVME_SC_INVALID_QID);
	else if (qsize == 0 || qsize > c->mqes)
		st = NVME_CMD(FERRY_NVME_SC_INVALID_QSIZE);
	else if (cqid == 0 || cqid > c->max_io_queues || !c->cq[cqid].valid)
		st = NVME_CMD(FERRY_NVME_SC_CQ_INVALID);
	else if (!pc)
		st = NVME_GEN(FERRY_NVME_SC_INVALID_FIELD);
	else
		st = check_base(c, cmd->dptr.prp.prp1, qsize + 1, sizeof(struct ferry_nvme_sqe));
	if (st) {
		FERRY_DBG(NVME_COMP, "controller %u: create SQ %u (size %u, cq %u, pc %d) refused: %s",
			  c->cntlid, qid, qsize + 1, cqid, pc, ferry_nvme_status_str(st));
		nvme_req_complete(req, st);
		return;
	}
	nvme_sq_init(&c->sq[qid], (uint16_t)qid, qsize + 1, cmd->dptr.prp.prp1, (uint16_t)cqid);
	c->cq[cqid].sq_refs++;
	nvme_req_complete(req, 0);
}

static void delete_sq(struct nvme_req *req)
{
	struct ferry_nvme_ctrlr *c = req->ctrlr;
	uint32_t qid = req->cmd.cdw10 & 0xffff;
	if (qid == 0 || qid > c->max_io_queues || !c->sq[qid].valid || c->sq[qid].deleting) {
		nvme_req_complete(req, NVME_CMD(FERRY_NVME_SC_INVALID_QID));
		return;
	}
	/* Stop fetching; complete once the commands already fetched have completed. */
	struct nvme_sq *sq = &c->sq[qid];
	sq->deleting = 1;
	sq->delete_req = req;
	if (req->reserved_cq) {
		c->cq[req->cqid].reserved--;
		req->reserved_cq = 0;
	}
	nvme_progress(c);
}

/* ---- features ----------------------------------------------------------------------- */

#define KAS_MS (NVME_KAS * 100u) /* Keep Alive granularity, ms */

/* A discovery controller has only the features about its admin queue. */
static int discovery_feature(const struct ferry_nvme_ctrlr *c, uint8_t fid)
{
	return !c->discovery || fid == FERRY_NVME_FEAT_KEEP_ALIVE ||
	       fid == FERRY_NVME_FEAT_ASYNC_EVENT;
}

static int feature_supported(uint8_t fid)
{
	switch (fid) {
	case FERRY_NVME_FEAT_ARBITRATION:
	case FERRY_NVME_FEAT_POWER_MGMT:
	case FERRY_NVME_FEAT_TEMP_THRESHOLD:
	case FERRY_NVME_FEAT_ERROR_RECOVERY:
	case FERRY_NVME_FEAT_VOLATILE_WC:
	case FERRY_NVME_FEAT_NUM_QUEUES:
	case FERRY_NVME_FEAT_IRQ_COALESCING:
	case FERRY_NVME_FEAT_IRQ_CONFIG:
	case FERRY_NVME_FEAT_WRITE_ATOMICITY:
	case FERRY_NVME_FEAT_ASYNC_EVENT:
	case FERRY_NVME_FEAT_KEEP_ALIVE:
		return 1;
	default:
		return 0;
	}
}

/*
 * Temperature Threshold (Feature 04h), CDW11: TMPTH 15:0 (K), TMPSEL 19:16 (0 composite,
 * 1..8 Temperature Sensor n, Fh all implemented ones: Set only), THSEL 21:20 (0 over, 1
 * under; 10b/11b reserved). A threshold exists for the composite temperature and for each
 * implemented sensor (NVME_TEMP_SENSORS: none, the SMART log reports no sensor); any
 * other selector is Invalid Field in Command.
 */
static uint16_t temp_select(uint32_t cdw11, int set, uint32_t *tmpsel, uint32_t *thsel)
{
	*tmpsel = (cdw11 >> 16) & 0xf;
	*thsel = (cdw11 >> 20) & 0x3;
	if (*thsel > 1 || (*tmpsel > NVME_TEMP_SENSORS && !(set && *tmpsel == 0xf)))
		return NVME_GEN(FERRY_NVME_SC_INVALID_FIELD);
	return 0;
}

static uint16_t set_temp_threshold(struct ferry_nvme_ctrlr *c, uint32_t v)
{
	uint32_t tmpsel, thsel;
	uint16_t st = temp_select(v, 1, &tmpsel, &thsel);
	if (st)
		return st;
	for (uint32_t t = 0; t <= NVME_TEMP_SENSORS; t++)
		if (tmpsel == 0xf || tmpsel == t)
			c->feat_temp[t][thsel] = (uint16_t)v;
	return 0;
}

static uint16_t get_temp_threshold(struct ferry_nvme_ctrlr *c, uint32_t cdw11, int cur,
				   uint32_t *dw0)
{
	uint32_t tmpsel, thsel;
	uint16_t st = temp_select(cdw11, 0, &tmpsel, &thsel);
	if (st)
		return st;
	uint32_t def = thsel ? 0 : tmpsel == 0 ? NVME_WCTEMP : 0xffff;
	/* DW0 in the layout of CDW11: the threshold and the selectors it belongs to. */
	*dw0 = (cur ? c->feat_temp[tmpsel][thsel] : def) | tmpsel << 16 | thsel << 20;
	return 0;
}

static void set_features(struct nvme_req *req)
{
	struct ferry_nvme_ctrlr *c = req->ctrlr;
	uint8_t fid = req->cmd.cdw10 & 0xff;
	uint32_t v = req->cmd.cdw11;
	uint16_t st = 0;

	if (!feature_supported(fid) || !discovery_feature(req->ctrlr, fid)) {
		nvme_req_complete(req, NVME_GEN(FERRY_NVME_SC_INVALID_FIELD));
		return;
	}
	if (req->cmd.cdw10 >> 31) {
		nvme_req_complete(req, NVME_CMD(FERRY_NVME_SC_FEATURE_NOT_SAVEABLE));
		return;
	}
	switch (fid) {
	case FERRY_NVME_FEAT_ARBITRATION:
		c->feat_arb = v;
		break;
	case FERRY_NVME_FEAT_POWER_MGMT:
		if (v & 0x1f)
			st = NVME_GEN(FERRY_NVME_SC_INVALID_FIELD); /* only power state 0 */
		else
			c->feat_pm = v & 0xff;
		break;
	case FERRY_NVME_FEAT_TEMP_THRESHOLD:
		st = set_temp_threshold(c, v);
		break;
	case FERRY_NVME_FEAT_ERROR_RECOVERY:
		c->feat_errrec = v & 0x1ffff;
		break;
	case FERRY_NVME_FEAT_VOLATILE_WC:
		c->feat_vwc = v & 1;
		break;
	case FERRY_NVME_FEAT_NUM_QUEUES: {
		uint32_t nsqr = v & 0xffff, ncqr = v >> 16;
		if (nsqr == 0xffff || ncqr == 0xffff) {
			st = NVME_GEN(FERRY_NVME_SC_INVALID_FIELD);
		} else if (io_queue_exists(c)) {
			st = NVME_GEN(FERRY_NVME_SC_CMD_SEQ_ERROR);
		} else {
			c->nsqa = (uint16_t)FERRY_MIN(nsqr, (uint32_t)c->max_io_queues - 1);
			c->ncqa = (uint16_t)FERRY_MIN(ncqr, (uint32_t)c->max_io_queues - 1);
			req->cpl.dw0 = c->nsqa | ((uint32_t)c->ncqa << 16);
		}
		break;
	}
	case FERRY_NVME_FEAT_IRQ_COALESCING:
		c->feat_coalesce = v & 0xffff;
		break;
	case FERRY_NVME_FEAT_IRQ_CONFIG:
		if ((v & 0xffff) >= c->num_vectors)
			st = NVME_GEN(FERRY_NVME_SC_INVALID_FIELD);
		else
			c->vec_cd[v & 0xffff] = (v >> 16) & 1;
		break;
	case FERRY_NVME_FEAT_WRITE_ATOMICITY:
		c->feat_wan = v & 1;
		break;
	case FERRY_NVME_FEAT_ASYNC_EVENT:
		c->feat_aec = v & (0xffu | FERRY_NVME_AEC_NS_ATTR);
		break;
	case FERRY_NVME_FEAT_KEEP_ALIVE:
		/* KATO in ms, kept as the host set it rounded up to the KAS granularity (100 ms)
		 * the transport's timer works in; beyond an hour is refused. */
		if (v > NVME_KATO_MAX)
			st = NVME_GEN(FERRY_NVME_SC_INVALID_FIELD);
		else
			c->feat_kato = (v + KAS_MS - 1) / KAS_MS * KAS_MS;
		break;
	}
	nvme_req_complete(req, st);
}

static void get_features(struct nvme_req *req)
{
	struct ferry_nvme_ctrlr *c = req->ctrlr;
	uint8_t fid = req->cmd.cdw10 & 0xff;
	uint32_t sel = (req->cmd.cdw10 >> 8) & 0x7;
	int cur = sel == 0;
	uint32_t v = 0;

	if (!feature_supported(fid) || !discovery_feature(c, fid) || sel > 3) {
		nvme_req_complete(req, NVME_GEN(FERRY_NVME_SC_INVALID_FIELD));
		return;
	}
	if (sel == 3) {
		req->cpl.dw0 = 1u << 2; /* changeable; not saveable, not namespace specific */
		nvme_req_complete(req, 0);
		return;
	}
	switch (fid) {
	case FERRY_NVME_FEAT_ARBITRATION: v = cur ? c->feat_arb : 0; break;
	case FERRY_NVME_FEAT_POWER_MGMT: v = cur ? c->feat_pm : 0; break;
	case FERRY_NVME_FEAT_TEMP_THRESHOLD: {
		uint16_t st = get_temp_threshold(c, req->cmd.cdw11, cur, &v);
		if (st) {
			nvme_req_complete(req, st);
			return;
		}
		break;
	}
	case FERRY_NVME_FEAT_ERROR_RECOVERY: v = cur ? c->feat_errrec : 0; break;
	case FERRY_NVME_FEAT_VOLATILE_WC: v = cur ? c->feat_vwc : 1; break;
	case FERRY_NVME_FEAT_NUM_QUEUES: {
		uint32_t m = (uint32_t)c->max_io_queues - 1;
		v = cur ? (c->nsqa | ((uint32_t)c->ncqa << 16)) : (m | (m << 16));
		break;
	}
	case FERRY_NVME_FEAT_IRQ_COALESCING: v = cur ? c->feat_coalesce : 0; break;
	case FERRY_NVME_FEAT_IRQ_CONFIG: {
		uint32_t iv = req->cmd.cdw11 & 0xffff;
		if (iv >= c->num_vectors) {
			nvme_req_complete(req, NVME_GEN(FERRY_NVME_SC_INVALID_FIELD));
			return;
		}
		v = iv | (cur && c->vec_cd[iv] ? 1u << 16 : 0);
		break;
	}
	case FERRY_NVME_FEAT_WRITE_ATOMICITY: v = cur ? c->feat_wan : 0; break;
	case FERRY_NVME_FEAT_ASYNC_EVENT: v = cur ? c->feat_aec : 0; break;
	case FERRY_NVME_FEAT_KEEP_ALIVE: v = cur ? c->feat_kato : 0; break;
	}
	req->cpl.dw0 = v;
	nvme_req_complete(req, 0);
}

/* ---- abort, events, keep alive ---------------------------------------------------------- */

static void abort_cmd(struct nvme_req *req)
{
	struct ferry_nvme_ctrlr *c = req->ctrlr;
	uint32_t sqid = req->cmd.cdw10 & 0xffff, cid = req->cmd.cdw10 >> 16;
	req->cpl.dw0 = 1; /* not aborted */
	/* Message-based: the I/O queues belong to other threads, and a command in a capsule
	 * is executing already: nothing is aborted, no other queue is touched. */
	if (sqid == 0 && !c->message) {
		/* Only parked Asynchronous Event Requests can be aborted; the rest complete. */
		for (uint32_t i = 0; i < c->aer_count; i++) {
			struct nvme_req *aer = c->aer[i];
			if (aer->cmd.cid != cid)
				continue;
			memmove(&c->aer[i], &c->aer[i + 1], (c->aer_count - i - 1) * sizeof(c->aer[0]));
			c->aer_count--;
			req->cpl.dw0 = 0;
			nvme_req_complete(aer, NVME_GEN(FERRY_NVME_SC_ABORT_REQUESTED));
			break;
		}
	}
	nvme_req_complete(req, 0);
}

static void async_event(struct nvme_req *req)
{
	struct ferry_nvme_ctrlr *c = req->ctrlr;
	if (c->aer_count >= NVME_AERL + 1) {
		nvme_req_complete(req, NVME_CMD(FERRY_NVME_SC_AER_LIMIT));
		return;
	}
	/* Parked until an event: it must not hold a completion slot meanwhile. */
	if (req->reserved_cq) {
		c->cq[req->cqid].reserved--;
		req->reserved_cq = 0;
	}
	c->aer[c->aer_count++] = req;
	nvme_aer_dispatch(c);
}

/* The admin commands of a discovery controller (NVMe-oF: Get Log Page, Identify, Keep
 * Alive mandatory; Set/Get Features and Asynchronous Event Request optional). */
static int discovery_cmd(uint8_t opc)
{
	return opc == FERRY_NVME_ADM_GET_LOG_PAGE || opc == FERRY_NVME_ADM_IDENTIFY ||
	       opc == FERRY_NVME_ADM_KEEP_ALIVE || opc == FERRY_NVME_ADM_SET_FEATURES ||
	       opc == FERRY_NVME_ADM_GET_FEATURES || opc == FERRY_NVME_ADM_ASYNC_EVENT;
}

void nvme_admin_start(struct nvme_req *req)
{
	if (req->ctrlr->discovery && !discovery_cmd(req->cmd.opcode)) {
		nvme_req_complete(req, NVME_GEN(FERRY_NVME_SC_INVALID_OPCODE));
		return;
	}
	switch (req->cmd.opcode) {
	case FERRY_NVME_ADM_DELETE_SQ:
	case FERRY_NVME_ADM_CREATE_SQ:
	case FERRY_NVME_ADM_DELETE_CQ:
	case FERRY_NVME_ADM_CREATE_CQ:
		/* Not fabrics commands: message-based queues come from Connect. */
		if (req->ctrlr->message)
			break;
		if (req->cmd.opcode == FERRY_NVME_ADM_DELETE_SQ)
			delete_sq(req);
		else if (req->cmd.opcode == FERRY_NVME_ADM_CREATE_SQ)
			create_sq(req);
		else if (req->cmd.opcode == FERRY_NVME_ADM_DELETE_CQ)
			delete_cq(req);
		else
			create_cq(req);
		return;
	case FERRY_NVME_ADM_GET_LOG_PAGE:
		nvme_admin_get_log_page(req);
		return;
	case FERRY_NVME_ADM_IDENTIFY:
		nvme_admin_identify(req);
		return;
	case FERRY_NVME_ADM_ABORT:
		abort_cmd(req);
		return;
	case FERRY_NVME_ADM_SET_FEATURES:
		set_features(req);
		return;
	case FERRY_NVME_ADM_GET_FEATURES:
		get_features(req);
		return;
	case FERRY_NVME_ADM_ASYNC_EVENT:
		async_event(req);
		return;
	case FERRY_NVME_ADM_KEEP_ALIVE:
		nvme_req_complete(req, 0);
		return;
	default:
		break;
	}
	nvme_req_complete(req, NVME_GEN(FERRY_NVME_SC_INVALID_OPCODE));
}
