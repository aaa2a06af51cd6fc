/*
 * NVMe admin command set, part 2: Identify (controller, namespace, active namespace list,
 * namespace identification descriptors), Get Log Page (error information, SMART / health,
 * firmware slot information, changed namespace list) and the changed-namespace bookkeeping
 * behind its notice.
 */
#include <stdlib.h>
#include <string.h>
#include "nvme_internal.h"
#include <ferry/module/nvme_ctrlr.h>

#define ID_SIZE 4096

static void pad(char *dst, size_t n, const char *src)
{
	size_t l = strlen(src);
	memset(dst, ' ', n);
	memcpy(dst, src, l < n ? l : n);
}

/*
 * What a message-based controller reports differently (NVMe-oF 1.1 / NVMe 2.0 Identify
 * Controller, the fabrics area at 1792..): no PCI IDs; CMIC bit 1, several controllers may
 * attach to the subsystem (a host per association); MAXCMD (the Linux host clamps its queue
 * size to it); SGLS as the transport supports them (over fabrics the data pointer is always
 * an SGL); the capsule sizes; FCATT 0 (dynamic controller model: every Connect to FFFFh gets
 * a new controller); OFCS bit 0, Disconnect supported (the transport handles it). A
 * discovery controller: CNTRLTYPE 2, no namespaces, no NVM commands, no I/O queue fields.
 */
static void fill_id_fabrics(struct ferry_nvme_ctrlr *c, struct ferry_nvme_id_ctrlr *id)
{
	id->vid = 0;
	id->ssvid = 0;
	id->cmic = 1u << 1;
	id->cntrltype = c->cntrltype;
	id->maxcmd = (uint16_t)FERRY_MIN(c->mqes + 1, 0xffffu);
	id->sgls = c->sgls;
	uint16_t ofcs = 1;
	memcpy(id->nvmf + FERRY_NVME_ID_NVMF_OFCS, &ofcs, 2); /* FCATT stays 0 */
	if (c->discovery) {
		id->cmic = 0;
		id->oaes = 0;
		id->nn = 0;
		id->oncs = 0;
		id->vwc = 0;
		id->sqes = 0;
		id->cqes = 0;
		/* Keyed data blocks stay: the Linux RDMA host refuses any controller without
		 * them, the discovery controller's too ("Mandatory keyed sgls"). */
		id->sgls = FERRY_NVME_SGLS_SUPPORTED | (c->sgls & FERRY_NVME_SGLS_KEYED);
		id->psd[0].mp = 0;
		return;
	}
	memcpy(id->nvmf + FERRY_NVME_ID_NVMF_IOCCSZ, &c->ioccsz, 4);
	memcpy(id->nvmf + FERRY_NVME_ID_NVMF_IORCSZ, &c->iorcsz, 4);
	memcpy(id->nvmf + FERRY_NVME_ID_NVMF_ICDOFF, &c->icdoff, 2);
	id->nvmf[FERRY_NVME_ID_NVMF_MSDBD] = c->msdbd;
}

static void fill_id_ctrlr(struct ferry_nvme_ctrlr *c, struct ferry_nvme_id_ctrlr *id)
{
	struct ferry_nvme_subsystem *s = c->subsys;
	id->vid = s->vid;
	id->ssvid = s->ssvid;
	pad(id->sn, sizeof(id->sn), s->sn);
	pad(id->mn, sizeof(id->mn), s->mn);
	pad(id->fr, sizeof(id->fr), s->fr);
	id->rab = 6;
	id->mdts = c->mdts;
	id->cntlid = c->cntlid;
	id->ver = c->version;
	id->oaes = FERRY_NVME_AEC_NS_ATTR;
	id->cntrltype = 1; /* I/O controller */
	id->acl = NVME_ACL;
	id->aerl = NVME_AERL;
	/* One firmware slot (bits 3:1 = 1), read-only (bit 0): slot 1 holds the subsystem's
	 * firmware revision, as the Firmware Slot Information log reports; no activation
	 * without reset (bit 4 = 0), since there is no Firmware Commit. */
	id->frmw = (1u << 1) | 1u;
	id->lpa = 0x04;    /* extended data (offset, NUMDU) for Get Log Page */
	id->elpe = NVME_ERRLOG_ENTRIES - 1;
	id->npss = 0;
	id->wctemp = NVME_WCTEMP;
	id->cctemp = NVME_CCTEMP;
	id->kas = 10;      /* 1 s granularity; Keep Alive is accepted, no timer is enforced */
	if (c->message)
		id->kas = NVME_KAS; /* 100 ms: the transport runs the timer on KATO */
	id->sqes = NVME_IOSQES << 4 | NVME_IOSQES; /* maximum | required */
	id->cqes = NVME_IOCQES << 4 | NVME_IOCQES;
	id->nn = s->max_ns;
	id->oncs = 0x0d;   /* Compare, Dataset Management, Write Zeroes */
	id->vwc = 0x07;    /* present; Flush with NSID FFFFFFFFh supported */
	if (!(c->flags & FERRY_NVME_CTRLR_F_NO_SGL))
		id->sgls = 0x1 | (1u << 16); /* SGLs without alignment, bit bucket */
	memcpy(id->subnqn, s->nqn, strlen(s->nqn) + 1);
	id->psd[0].mp = 2500;
	if (c->message)
		fill_id_fabrics(c, id);
}

static void fill_id_ns(const struct ferry_nvme_ctrlr *c, const struct nvme_ns *ns,
		       struct ferry_nvme_id_ns *id)
{
	/* Fabrics: the namespace may be attached to several controllers (CMIC bit 1). */
	id->nmic = c->message ? 1 : 0;
	id->nsze = ns->nsze;
	id->ncap = ns->nsze;
	id->nuse = ns->nsze;
	id->nlbaf = 0;
	id->flbas = ns->ms ? 0x10 : 0x00; /* format 0; metadata at the end of each LBA */
	id->mc = ns->ms ? 0x01 : 0x00;
	/* DLFEAT 2:0 = 001b (deallocated and never-written blocks read as zeroes) only where
	 * the bdev guarantees it; else 000b (not reported: crypto or dif on top read noise or
	 * fail the PI check). Bit 3 (Write Zeroes Deallocate) stays 0: DEAC is ignored. */
	id->dlfeat = (ferry_bdev_get_flags(ns->bdev) & FERRY_BDEV_F_UNWRITTEN_ZEROES) ? 0x01 : 0x00;
	memcpy(id->nguid, ns->nguid, 16);
	id->lbaf[0].ms = (uint16_t)ns->ms;
	id->lbaf[0].lbads = ns->lbads;
}

static size_t fill_desc(uint8_t *p, uint8_t type, const void *val, uint8_t len)
{
	struct ferry_nvme_ns_id_desc h = {.nidt = type, .nidl = len};
	memcpy(p, &h, sizeof(h));
	memcpy(p + sizeof(h), val, len);
	return sizeof(h) + len;
}

static void identify_exec(struct nvme_req *req)
{
	struct ferry_nvme_ctrlr *c = req->ctrlr;
	struct ferry_nvme_subsystem *s = c->subsys;
	uint8_t cns = req->cmd.cdw10 & 0xff;
	uint32_t nsid = req->cmd.nsid;

	if (nvme_req_buf(req, ID_SIZE)) {
		nvme_req_complete(req, NVME_GEN(FERRY_NVME_SC_INTERNAL));
		return;
	}
	switch (cns) {
	case FERRY_NVME_CNS_CTRLR: {
		struct ferry_nvme_id_ctrlr id;
		memset(&id, 0, sizeof(id));
		fill_id_ctrlr(c, &id);
		memcpy(req->buf, &id, sizeof(id));
		break;
	}
	case FERRY_NVME_CNS_NS: {
		struct nvme_ns *ns = nvme_subsys_ns(s, nsid);
		if (ns) { /* an inactive NSID reads as zeroes */
			struct ferry_nvme_id_ns id;
			memset(&id, 0, sizeof(id));
			fill_id_ns(c, ns, &id);
			memcpy(req->buf, &id, sizeof(id));
		}
		break;
	}
	case FERRY_NVME_CNS_ACTIVE_NS_LIST: {
		uint32_t n = 0;
		for (uint32_t i = nsid + 1; i <= s->max_ns && n < ID_SIZE / 4; i++) {
			if (s->ns[i - 1]) {
				memcpy(req->buf + 4 * n, &i, 4);
				n++;
			}
		}
		break;
	}
	case FERRY_NVME_CNS_NS_DESC_LIST: {
		struct nvme_ns *ns = nvme_subsys_ns(s, nsid);
		uint8_t csi = 0; /* NVM command set */
		if (!ns) { /* removed while the data pointer was walked */
			nvme_req_complete(req, NVME_GEN(FERRY_NVME_SC_INVALID_NS));
			return;
		}
		size_t off = 0;
		off += fill_desc(req->buf + off, FERRY_NVME_NIDT_NGUID, ns->nguid, 16);
		off += fill_desc(req->buf + off, FERRY_NVME_NIDT_UUID, ns->uuid, 16);
		fill_desc(req->buf + off, FERRY_NVME_NIDT_CSI, &csi, 1);
		break;
	}
	}
	nvme_req_push_buf(req);
}

void nvme_admin_identify(struct nvme_req *req)
{
	struct ferry_nvme_subsystem *s = req->ctrlr->subsys;
	uint8_t cns = req->cmd.cdw10 & 0xff;
	uint32_t nsid = req->cmd.nsid;
	uint16_t st = 0;

	if (req->ctrlr->discovery && cns != FERRY_NVME_CNS_CTRLR) {
		/* No namespaces behind a discovery controller. */
		int ns = cns == FERRY_NVME_CNS_NS || cns == FERRY_NVME_CNS_NS_DESC_LIST;
		nvme_req_complete(req, ns ? NVME_GEN(FERRY_NVME_SC_INVALID_NS)
					  : NVME_GEN(FERRY_NVME_SC_INVALID_FIELD));
		return;
	}
	switch (cns) {
	case FERRY_NVME_CNS_CTRLR:
		break;
	case FERRY_NVME_CNS_NS:
		if (nsid == 0 || nsid > s->max_ns) /* FFFFFFFFh: no namespace management */
			st = NVME_GEN(FERRY_NVME_SC_INVALID_NS);
		break;
	case FERRY_NVME_CNS_ACTIVE_NS_LIST:
		if (nsid >= 0xfffffffe)
			st = NVME_GEN(FERRY_NVME_SC_INVALID_NS);
		break;
	case FERRY_NVME_CNS_NS_DESC_LIST:
		if (!nvme_subsys_ns(s, nsid))
			st = NVME_GEN(FERRY_NVME_SC_INVALID_NS);
		break;
	default:
		st = NVME_GEN(FERRY_NVME_SC_INVALID_FIELD);
		break;
	}
	if (st) {
		nvme_req_complete(req, st);
		return;
	}
	nvme_req_map(req, ID_SIZE, 1, identify_exec);
}

/* ---- log pages ------------------------------------------------------------------------ */

static uint32_t log_size(uint8_t lid)
{
	switch (lid) {
	case FERRY_NVME_LOG_ERROR: return NVME_ERRLOG_ENTRIES * sizeof(struct ferry_nvme_error_log);
	case FERRY_NVME_LOG_SMART: return sizeof(struct ferry_nvme_smart_log);
	case FERRY_NVME_LOG_FW_SLOT: return sizeof(struct ferry_nvme_fw_slot_log);
	case FERRY_NVME_LOG_CHANGED_NS: return sizeof(struct ferry_nvme_changed_ns_list);
	default: return 0;
	}
}

static void put128(uint64_t v[2], uint64_t lo)
{
	v[0] = lo;
	v[1] = 0;
}

static void build_log(struct ferry_nvme_ctrlr *c, uint8_t lid, uint8_t *out)
{
	switch (lid) {
	case FERRY_NVME_LOG_ERROR:
		pthread_mutex_lock(&c->err_lock); /* I/O queue threads add to it */
		for (uint32_t i = 0; i < c->errlog_count; i++) {
			uint32_t idx = (c->errlog_next + NVME_ERRLOG_ENTRIES - 1 - i) % NVME_ERRLOG_ENTRIES;
			memcpy(out + i * sizeof(struct ferry_nvme_error_log), &c->errlog[idx],
			       sizeof(struct ferry_nvme_error_log));
		}
		pthread_mutex_unlock(&c->err_lock);
		break;
	case FERRY_NVME_LOG_SMART: {
		struct ferry_nvme_smart_log l;
		memset(&l, 0, sizeof(l));
		l.temperature[0] = 0x41; /* 321 K */
		l.temperature[1] = 0x01;
		l.avail_spare = 100;
		l.avail_spare_thresh = 10;
		struct ferry_nvme_ctrlr_stats st;
		uint64_t sm[4];
		nvme_ctrlr_totals(c, &st, sm);
		put128(l.data_units_read, (sm[0] + 511999) / 512000);
		put128(l.data_units_written, (sm[1] + 511999) / 512000);
		put128(l.host_read_cmds, sm[2]);
		put128(l.host_write_cmds, sm[3]);
		put128(l.power_cycles, 1);
		pthread_mutex_lock(&c->err_lock);
		put128(l.num_err_log_entries, c->error_count);
		pthread_mutex_unlock(&c->err_lock);
		memcpy(out, &l, sizeof(l));
		break;
	}
	case FERRY_NVME_LOG_FW_SLOT: {
		/* One read-only slot (Identify FRMW): slot 1 is active and stays so at the next
		 * reset (AFI bits 6:4 = 0: no other slot selected); FRS2..7 stay zero. */
		struct ferry_nvme_fw_slot_log l;
		memset(&l, 0, sizeof(l));
		l.afi = 1;
		pad(l.frs[0], sizeof(l.frs[0]), c->subsys->fr);
		memcpy(out, &l, sizeof(l));
		break;
	}
	case FERRY_NVME_LOG_CHANGED_NS:
		memcpy(out, c->changed_ns, c->changed_cnt * sizeof(uint32_t));
		break;
	}
}

/* Which asynchronous event type reading log @p lid with RAE = 0 re-arms; -1: none. */
static int log_event_type(uint8_t lid)
{
	switch (lid) {
	case FERRY_NVME_LOG_ERROR: return FERRY_NVME_AER_TYPE_ERROR;
	case FERRY_NVME_LOG_SMART: return FERRY_NVME_AER_TYPE_SMART;
	case FERRY_NVME_LOG_CHANGED_NS: return FERRY_NVME_AER_TYPE_NOTICE;
	/* Firmware slot: its notice (firmware activation starting) is never raised, and
	 * reading it must not re-arm the namespace attribute notice of the same type. */
	default: return -1;
	}
}

static void log_exec(struct nvme_req *req)
{
	struct ferry_nvme_ctrlr *c = req->ctrlr;
	uint8_t lid = req->cmd.cdw10 & 0xff;
	int rae = (req->cmd.cdw10 >> 15) & 1;
	uint64_t lpo = req->cmd.cdw12 | ((uint64_t)req->cmd.cdw13 << 32);
	uint32_t size = log_size(lid);
	uint8_t *full = calloc(1, size);

	if (!full || nvme_req_buf(req, req->xfer_len)) {
		free(full);
		nvme_req_complete(req, NVME_GEN(FERRY_NVME_SC_INTERNAL));
		return;
	}
	build_log(c, lid, full);
	uint64_t n = FERRY_MIN(req->xfer_len, size - lpo); /* the rest reads as zeroes */
	memcpy(req->buf, full + lpo, (size_t)n);
	free(full);
	if (lid == FERRY_NVME_LOG_CHANGED_NS) {
		c->changed_cnt = 0;
		c->changed_overflow = 0;
	}
	int type = log_event_type(lid);
	if (!rae && type >= 0)
		nvme_aer_unmask(c, (uint8_t)type);
	nvme_req_push_buf(req);
}

/*
 * The Discovery log page (NVMe-oF: a 1024-byte header, genctr / numrec / recfmt 0, then one
 * 1024-byte entry per record), built from the subsystem's disc_log source for the range the
 * host asked: any dword-aligned offset inside the page (LPOL/LPOU), any length (the part past
 * the end reads as zeroes). The source is asked twice: for the count (the offset check),
 * then for the entries up to the end of the range.
 */
static void disc_log_exec(struct nvme_req *req)
{
	struct ferry_nvme_subsystem *s = req->ctrlr->subsys;
	uint64_t lpo = req->cmd.cdw12 | ((uint64_t)req->cmd.cdw13 << 32);
	const uint64_t rec = sizeof(struct ferry_nvmf_disc_entry);
	uint32_t count = 0;
	uint64_t genctr = 0;
	if (s->disc_log(s->disc_ctx, NULL, 0, &count, &genctr) != 0) {
		nvme_req_complete(req, NVME_GEN(FERRY_NVME_SC_INTERNAL));
		return;
	}
	uint64_t size = rec * ((uint64_t)count + 1);
	if (lpo >= size) {
		nvme_req_complete(req, NVME_GEN(FERRY_NVME_SC_INVALID_FIELD));
		return;
	}
	/* Entries up to the one holding the last byte asked for (or the last there is). */
	uint64_t end = FERRY_MIN(size, lpo + req->xfer_len);
	uint32_t want = (uint32_t)((end + rec - 1) / rec - 1);
	uint8_t *full = calloc(want + 1, rec);
	if (!full || nvme_req_buf(req, req->xfer_len)) {
		free(full);
		nvme_req_complete(req, NVME_GEN(FERRY_NVME_SC_INTERNAL));
		return;
	}
	uint32_t now = 0;
	if (want && s->disc_log(s->disc_ctx, (struct ferry_nvmf_disc_entry *)(full + rec), want,
				&now, &genctr) != 0) {
		free(full);
		nvme_req_complete(req, NVME_GEN(FERRY_NVME_SC_INTERNAL));
		return;
	}
	if (want == 0)
		now = count;
	/* The entries beyond what the source has now (it shrank between the calls) stay zero. */
	if (now < want)
		memset(full + rec * (1 + (uint64_t)now), 0, rec * (want - now));
	struct ferry_nvmf_disc_log h;
	memset(&h, 0, sizeof(h));
	h.genctr = genctr;
	h.numrec = now;
	h.recfmt = 0;
	memcpy(full, &h, sizeof(h));
	memcpy(req->buf, full + lpo, (size_t)(end - lpo));
	free(full);
	nvme_req_push_buf(req);
}

void nvme_admin_get_log_page(struct nvme_req *req)
{
	struct ferry_nvme_ctrlr *c = req->ctrlr;
	const struct ferry_nvme_sqe *cmd = &req->cmd;
	uint8_t lid = cmd->cdw10 & 0xff;
	uint64_t numd = (((uint64_t)(cmd->cdw11 & 0xffff) << 16) | (cmd->cdw10 >> 16)) + 1;
	uint64_t len = numd * 4;
	uint64_t lpo = cmd->cdw12 | ((uint64_t)cmd->cdw13 << 32);
	uint32_t size = log_size(lid);
	uint16_t st = 0;

	/* A discovery controller has the Discovery log page only; an NVM one does not have it. */
	if (c->discovery || lid == FERRY_NVMF_LOG_DISCOVERY) {
		if (!c->discovery || lid != FERRY_NVMF_LOG_DISCOVERY)
			st = NVME_CMD(FERRY_NVME_SC_INVALID_LOG_PAGE);
		else if ((lpo & 3) || len > c->max_xfer)
			st = NVME_GEN(FERRY_NVME_SC_INVALID_FIELD);
		if (st) {
			nvme_req_complete(req, st);
			return;
		}
		nvme_req_map(req, len, 1, disc_log_exec);
		return;
	}

	if (!size)
		st = NVME_CMD(FERRY_NVME_SC_INVALID_LOG_PAGE);
	else if ((lpo & 3) || lpo >= size || len > c->max_xfer)
		st = NVME_GEN(FERRY_NVME_SC_INVALID_FIELD);
	else if (lid == FERRY_NVME_LOG_SMART && cmd->nsid != 0 && cmd->nsid != 0xffffffff)
		st = NVME_GEN(FERRY_NVME_SC_INVALID_FIELD); /* no per-namespace SMART (LPA bit 0) */
	if (st) {
		nvme_req_complete(req, st);
		return;
	}
	nvme_req_map(req, len, 1, log_exec);
}

void nvme_ns_changed(struct ferry_nvme_ctrlr *c, uint32_t nsid)
{
	if (!c->changed_overflow) {
		int found = 0;
		for (uint32_t i = 0; i < c->changed_cnt && !found; i++)
			found = c->changed_ns[i] == nsid;
		if (!found) {
			if (c->changed_cnt == NVME_MAX_CHANGED_NS) {
				c->changed_ns[0] = 0xffffffff;
				c->changed_cnt = 1;
				c->changed_overflow = 1;
			} else {
				c->changed_ns[c->changed_cnt++] = nsid;
			}
		}
	}
	if (c->feat_aec & FERRY_NVME_AEC_NS_ATTR)
		nvme_aer_event(c, FERRY_NVME_AER_TYPE_NOTICE, FERRY_NVME_AER_NOTICE_NS_CHANGED,
			       FERRY_NVME_LOG_CHANGED_NS);
}
