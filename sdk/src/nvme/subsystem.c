/*
 * NVMe subsystems and namespaces: create/destroy, add/remove namespaces backed by bdevs (with
 * the changed-namespace notice to every controller), and the names of status codes.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "nvme_internal.h"

static pthread_mutex_t subsys_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ferry_nvme_subsystem *subsys_head;

static int copy_str(char *dst, size_t cap, const char *src, const char *def, const char *what)
{
	if (!src)
		src = def;
	size_t n = strlen(src);
	if (n >= cap) {
		FERRY_ERR(NVME_COMP, "subsystem: %s '%s' is longer than %zu characters", what, src,
			  cap - 1);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (!isprint((unsigned char)src[i])) {
			FERRY_ERR(NVME_COMP, "subsystem: %s has a non-printable character at %zu",
				  what, i);
			return -EINVAL;
		}
	}
	memcpy(dst, src, n + 1);
	return 0;
}

FERRY_API int ferry_nvme_subsystem_create(const struct ferry_nvme_subsystem_opts *opts,
					  struct ferry_nvme_subsystem **out)
{
	if (!opts || !out) {
		FERRY_ERR(NVME_COMP, "subsystem_create: NULL %s", !opts ? "opts" : "out");
		return -EINVAL;
	}
	if (OPTS_SIZE_CHECK(NVME_COMP, "subsystem_create", opts, struct ferry_nvme_subsystem_opts))
		return -EINVAL;
	if (!opts->nqn || !opts->nqn[0]) {
		FERRY_ERR(NVME_COMP, "subsystem_create: an NQN is required");
		return -EINVAL;
	}
	uint32_t max_ns = opts->max_namespaces ? opts->max_namespaces : 32;
	if (max_ns > 1024) {
		FERRY_ERR(NVME_COMP, "subsystem_create: max_namespaces %u is above 1024", max_ns);
		return -EINVAL;
	}
	int disc = opts->type == FERRY_NVME_SUBSYS_DISCOVERY;
	if (opts->type > FERRY_NVME_SUBSYS_DISCOVERY || disc != (opts->disc_log != NULL)) {
		FERRY_ERR(NVME_COMP, "subsystem_create: %s",
			  opts->type > FERRY_NVME_SUBSYS_DISCOVERY ? "unknown type"
			  : disc ? "a discovery subsystem needs disc_log"
				 : "disc_log is only for discovery subsystems");
		return -EINVAL;
	}
	struct ferry_nvme_subsystem *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	char fr[16];
	snprintf(fr, sizeof(fr), "%s", ferry_version());
	fr[8] = '\0';
	int rc = copy_str(s->nqn, sizeof(s->nqn), opts->nqn, "", "NQN");
	if (!rc)
		rc = copy_str(s->sn, sizeof(s->sn), opts->serial, "", "serial number");
	if (!rc)
		rc = copy_str(s->mn, sizeof(s->mn), opts->model, "Ferry NVMe", "model number");
	if (!rc)
		rc = copy_str(s->fr, sizeof(s->fr), opts->firmware_rev, fr, "firmware revision");
	if (rc) {
		free(s);
		return rc;
	}
	s->vid = opts->vendor_id;
	s->ssvid = opts->subsystem_vendor_id;
	s->max_ns = max_ns;
	s->type = opts->type;
	s->disc_log = opts->disc_log;
	s->disc_ctx = opts->disc_ctx;
	s->next_cntlid = 1;
	s->ns = calloc(max_ns, sizeof(*s->ns));
	if (!s->ns) {
		free(s);
		return -ENOMEM;
	}
	pthread_mutex_lock(&subsys_lock);
	for (struct ferry_nvme_subsystem *o = subsys_head; o; o = o->next) {
		/* Discovery subsystems may share an NQN (the well-known one, one per transport). */
		int shared = disc && o->type == FERRY_NVME_SUBSYS_DISCOVERY;
		if (strcmp(o->nqn, s->nqn) == 0 && !shared) {
			pthread_mutex_unlock(&subsys_lock);
			FERRY_ERR(NVME_COMP, "subsystem_create: NQN '%s' exists", s->nqn);
			free(s->ns);
			free(s);
			return -EEXIST;
		}
	}
	s->next = subsys_head;
	subsys_head = s;
	pthread_mutex_unlock(&subsys_lock);
	*out = s;
	return 0;
}

FERRY_API int ferry_nvme_subsystem_destroy(struct ferry_nvme_subsystem *s)
{
	if (!s)
		return 0;
	if (s->ctrlrs) {
		FERRY_ERR(NVME_COMP, "subsystem_destroy '%s': controller %u still exists", s->nqn,
			  s->ctrlrs->cntlid);
		return -EBUSY;
	}
	for (uint32_t i = 0; i < s->max_ns; i++) {
		if (s->ns[i]) {
			ferry_bdev_release(s->ns[i]->bdev);
			free(s->ns[i]);
		}
	}
	pthread_mutex_lock(&subsys_lock);
	for (struct ferry_nvme_subsystem **pp = &subsys_head; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	pthread_mutex_unlock(&subsys_lock);
	free(s->ns);
	free(s);
	return 0;
}

FERRY_API const char *ferry_nvme_subsystem_get_nqn(const struct ferry_nvme_subsystem *s)
{
	return s ? s->nqn : "";
}

FERRY_API uint32_t ferry_nvme_subsystem_get_type(const struct ferry_nvme_subsystem *s)
{
	return s ? s->type : FERRY_NVME_SUBSYS_NVM;
}

FERRY_API struct ferry_nvme_ctrlr *ferry_nvme_subsystem_find_ctrlr(struct ferry_nvme_subsystem *s,
								   uint16_t cntlid)
{
	for (struct ferry_nvme_ctrlr *c = s ? s->ctrlrs : NULL; c; c = c->next_in_subsys)
		if (c->cntlid == cntlid)
			return c;
	return NULL;
}

/*
 * Dynamic controller IDs: the next free one from next_cntlid on, wrapping from 0xffef (the
 * highest valid ID, NVMe-oF: FFF0h..FFFEh are reserved, FFFFh means dynamic) back to 1. A
 * freed ID is therefore handed out again only after the counter went round: a host
 * reconnecting after a controller was destroyed does not meet its old ID on a new
 * controller (the Linux host keys state on it). Returns 0 if all are in use.
 */
uint16_t nvme_subsys_alloc_cntlid(struct ferry_nvme_subsystem *s)
{
	for (uint32_t n = 0; n < NVME_CNTLID_MAX; n++) {
		uint16_t id = s->next_cntlid;
		s->next_cntlid = (uint16_t)(id >= NVME_CNTLID_MAX ? 1 : id + 1);
		if (!nvme_subsys_cntlid_used(s, id))
			return id;
	}
	return 0;
}

struct nvme_ns *nvme_subsys_ns(struct ferry_nvme_subsystem *s, uint32_t nsid)
{
	if (nsid == 0 || nsid > s->max_ns)
		return NULL;
	return s->ns[nsid - 1];
}

void nvme_subsys_link(struct ferry_nvme_subsystem *s, struct ferry_nvme_ctrlr *c)
{
	c->next_in_subsys = s->ctrlrs;
	s->ctrlrs = c;
}

void nvme_subsys_unlink(struct ferry_nvme_subsystem *s, struct ferry_nvme_ctrlr *c)
{
	for (struct ferry_nvme_ctrlr **pp = &s->ctrlrs; *pp; pp = &(*pp)->next_in_subsys) {
		if (*pp == c) {
			*pp = c->next_in_subsys;
			return;
		}
	}
}

int nvme_subsys_cntlid_used(struct ferry_nvme_subsystem *s, uint16_t cntlid)
{
	for (struct ferry_nvme_ctrlr *c = s->ctrlrs; c; c = c->next_in_subsys)
		if (c->cntlid == cntlid)
			return 1;
	return 0;
}

/* FNV-1a, used to derive stable identifiers from the NQN and NSID. */
static uint64_t fnv1a(const void *p, size_t n, uint64_t h)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static int all_zero(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

static void derive_id(uint8_t out[16], const char *nqn, uint32_t nsid, uint8_t salt)
{
	uint64_t h1 = fnv1a(nqn, strlen(nqn), 0xcbf29ce484222325ull ^ salt);
	h1 = fnv1a(&nsid, sizeof(nsid), h1);
	uint64_t h2 = fnv1a(&h1, sizeof(h1), 0x84222325cbf29ce4ull ^ salt);
	memcpy(out, &h1, 8);
	memcpy(out + 8, &h2, 8);
}

FERRY_API int ferry_nvme_subsystem_add_ns(struct ferry_nvme_subsystem *s,
					  const struct ferry_nvme_ns_opts *opts, uint32_t *nsid_out)
{
	if (!s || !opts) {
		FERRY_ERR(NVME_COMP, "add_ns: NULL %s", !s ? "subsystem" : "opts");
		return -EINVAL;
	}
	if (OPTS_SIZE_CHECK(NVME_COMP, "add_ns", opts, struct ferry_nvme_ns_opts))
		return -EINVAL;
	if (!opts->bdev) {
		FERRY_ERR(NVME_COMP, "add_ns: opts->bdev is NULL");
		return -EINVAL;
	}
	if (s->type == FERRY_NVME_SUBSYS_DISCOVERY) {
		FERRY_ERR(NVME_COMP, "add_ns: '%s' is a discovery subsystem (no namespaces)",
			  s->nqn);
		return -EINVAL;
	}
	struct ferry_bdev *b = opts->bdev;
	uint32_t bs = ferry_bdev_get_block_size(b);
	uint32_t md = ferry_bdev_get_md_size(b);
	int interleave = (ferry_bdev_get_md_flags(b) & FERRY_BDEV_MD_INTERLEAVE) != 0;
	if (md && !interleave) {
		FERRY_ERR(NVME_COMP, "add_ns '%s': separate metadata is not supported",
			  ferry_bdev_get_name(b));
		return -ENOTSUP;
	}
	uint32_t data = interleave ? bs - md : bs;
	if (data < 512 || (data & (data - 1)) || md > 0xffff) {
		FERRY_ERR(NVME_COMP, "add_ns '%s': data block size %u is not a power of two >= 512",
			  ferry_bdev_get_name(b), data);
		return -EINVAL;
	}
	uint32_t nsid = opts->nsid;
	if (nsid > s->max_ns) {
		FERRY_ERR(NVME_COMP, "add_ns: NSID %u above the subsystem's maximum %u", nsid, s->max_ns);
		return -EINVAL;
	}
	if (nsid == 0) {
		for (uint32_t i = 0; i < s->max_ns && !nsid; i++)
			if (!s->ns[i])
				nsid = i + 1;
		if (!nsid) {
			FERRY_ERR(NVME_COMP, "add_ns: all %u NSIDs are in use", s->max_ns);
			return -ENOSPC;
		}
	} else if (s->ns[nsid - 1]) {
		FERRY_ERR(NVME_COMP, "add_ns: NSID %u is in use", nsid);
		return -EEXIST;
	}
	char owner[FERRY_NVME_NQN_MAX + 32];
	snprintf(owner, sizeof(owner), "nvme %s ns %u", s->nqn, nsid);
	int rc = ferry_bdev_claim(b, owner);
	if (rc)
		return rc;
	struct nvme_ns *ns = calloc(1, sizeof(*ns));
	if (!ns) {
		ferry_bdev_release(b);
		return -ENOMEM;
	}
	ns->nsid = nsid;
	ns->bdev = b;
	ns->nsze = ferry_bdev_get_num_blocks(b);
	ns->lba_bytes = bs;
	ns->ms = interleave ? md : 0;
	for (ns->lbads = 9; (1u << ns->lbads) < data; ns->lbads++)
		;
	if (all_zero(opts->nguid, 16))
		derive_id(ns->nguid, s->nqn, nsid, 1);
	else
		memcpy(ns->nguid, opts->nguid, 16);
	if (all_zero(opts->uuid, 16)) {
		derive_id(ns->uuid, s->nqn, nsid, 2);
		ns->uuid[6] = (uint8_t)((ns->uuid[6] & 0x0f) | 0x40); /* version 4 layout */
		ns->uuid[8] = (uint8_t)((ns->uuid[8] & 0x3f) | 0x80);
	} else {
		memcpy(ns->uuid, opts->uuid, 16);
	}
	s->ns[nsid - 1] = ns;
	for (struct ferry_nvme_ctrlr *c = s->ctrlrs; c; c = c->next_in_subsys)
		nvme_ns_changed(c, nsid);
	if (nsid_out)
		*nsid_out = nsid;
	return 0;
}

FERRY_API int ferry_nvme_subsystem_remove_ns(struct ferry_nvme_subsystem *s, uint32_t nsid)
{
	struct nvme_ns *ns = s ? nvme_subsys_ns(s, nsid) : NULL;
	if (!ns) {
		FERRY_ERR(NVME_COMP, "remove_ns: no namespace %u", nsid);
		return -ENOENT;
	}
	if (ns->inflight) {
		FERRY_ERR(NVME_COMP, "remove_ns %u: %u command(s) executing", nsid, ns->inflight);
		return -EBUSY;
	}
	/* Their threads read the namespace without a reference: no removal under them. */
	for (struct ferry_nvme_ctrlr *c = s->ctrlrs; c; c = c->next_in_subsys) {
		if (nvme_msg_ioq_connected(c)) {
			FERRY_ERR(NVME_COMP, "remove_ns %u: controller %u has I/O queues "
				  "connected; disconnect them first", nsid, c->cntlid);
			return -EBUSY;
		}
	}
	s->ns[nsid - 1] = NULL;
	ferry_bdev_release(ns->bdev);
	free(ns);
	for (struct ferry_nvme_ctrlr *c = s->ctrlrs; c; c = c->next_in_subsys)
		nvme_ns_changed(c, nsid);
	return 0;
}

FERRY_API struct ferry_bdev *ferry_nvme_subsystem_get_ns_bdev(const struct ferry_nvme_subsystem *s,
							       uint32_t nsid)
{
	if (!s || nsid == 0 || nsid > s->max_ns || !s->ns[nsid - 1])
		return NULL;
	return s->ns[nsid - 1]->bdev;
}

FERRY_API const char *ferry_nvme_status_str(uint16_t status)
{
	uint16_t st = status & 0x7ff;
	switch (st) {
	case NVME_GEN(FERRY_NVME_SC_SUCCESS): return "success";
	case NVME_GEN(FERRY_NVME_SC_INVALID_OPCODE): return "invalid command opcode";
	case NVME_GEN(FERRY_NVME_SC_INVALID_FIELD): return "invalid field in command";
	case NVME_GEN(FERRY_NVME_SC_CID_CONFLICT): return "command ID conflict";
	case NVME_GEN(FERRY_NVME_SC_DATA_XFER_ERROR): return "data transfer error";
	case NVME_GEN(FERRY_NVME_SC_INTERNAL): return "internal error";
	case NVME_GEN(FERRY_NVME_SC_ABORT_REQUESTED): return "command abort requested";
	case NVME_GEN(FERRY_NVME_SC_ABORTED_SQ_DELETION): return "aborted due to SQ deletion";
	case NVME_GEN(FERRY_NVME_SC_INVALID_NS): return "invalid namespace or format";
	case NVME_GEN(FERRY_NVME_SC_CMD_SEQ_ERROR): return "command sequence error";
	case NVME_GEN(FERRY_NVME_SC_INVALID_SGL_SEG): return "invalid SGL segment descriptor";
	case NVME_GEN(FERRY_NVME_SC_INVALID_SGL_NUM): return "invalid number of SGL descriptors";
	case NVME_GEN(FERRY_NVME_SC_DATA_SGL_LEN): return "data SGL length invalid";
	case NVME_GEN(FERRY_NVME_SC_MD_SGL_LEN): return "metadata SGL length invalid";
	case NVME_GEN(FERRY_NVME_SC_SGL_TYPE): return "SGL descriptor type invalid";
	case NVME_GEN(FERRY_NVME_SC_PRP_OFFSET): return "PRP offset invalid";
	case NVME_GEN(FERRY_NVME_SC_SGL_OFFSET): return "SGL offset invalid";
	case NVME_GEN(FERRY_NVME_SC_LBA_RANGE): return "LBA out of range";
	case NVME_GEN(FERRY_NVME_SC_NS_NOT_READY): return "namespace not ready";
	case NVME_CMD(FERRY_NVME_SC_CQ_INVALID): return "completion queue invalid";
	case NVME_CMD(FERRY_NVME_SC_INVALID_QID): return "invalid queue identifier";
	case NVME_CMD(FERRY_NVME_SC_INVALID_QSIZE): return "invalid queue size";
	case NVME_CMD(FERRY_NVME_SC_ABORT_LIMIT): return "abort command limit exceeded";
	case NVME_CMD(FERRY_NVME_SC_AER_LIMIT): return "asynchronous event request limit exceeded";
	case NVME_CMD(FERRY_NVME_SC_INVALID_VECTOR): return "invalid interrupt vector";
	case NVME_CMD(FERRY_NVME_SC_INVALID_LOG_PAGE): return "invalid log page";
	case NVME_CMD(FERRY_NVME_SC_INVALID_QUEUE_DELETION): return "invalid queue deletion";
	case NVME_CMD(FERRY_NVME_SC_FEATURE_NOT_SAVEABLE): return "feature identifier not saveable";
	case NVME_CMD(FERRY_NVME_SC_FEATURE_NOT_CHANGEABLE): return "feature not changeable";
	case NVME_MEDIA(FERRY_NVME_SC_WRITE_FAULT): return "write fault";
	case NVME_MEDIA(FERRY_NVME_SC_UNRECOVERED_READ): return "unrecovered read error";
	case NVME_MEDIA(FERRY_NVME_SC_GUARD_CHECK): return "end-to-end guard check error";
	case NVME_MEDIA(FERRY_NVME_SC_APPTAG_CHECK): return "end-to-end application tag check error";
	case NVME_MEDIA(FERRY_NVME_SC_REFTAG_CHECK): return "end-to-end reference tag check error";
	case NVME_MEDIA(FERRY_NVME_SC_COMPARE_FAILURE): return "compare failure";
	default: return "unknown status";
	}
}
