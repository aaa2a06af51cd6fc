/*
 * The RDMA_CM private data of the NVMe-oF RDMA binding: the connect request a host sends,
 * the accept and the reject a controller answers with. Everything parsed here came off the
 * wire: every field is checked, nothing is read past the length given.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <ferry/module/rdma.h>
#include "rdma_internal.h"

_Static_assert(sizeof(struct ferry_nvmf_rdma_cm_req) == 32, "CM request private data");
_Static_assert(offsetof(struct ferry_nvmf_rdma_cm_req, hrqsize) == 4, "CM request hrqsize");
_Static_assert(offsetof(struct ferry_nvmf_rdma_cm_req, cntlid) == 8, "CM request cntlid");
_Static_assert(sizeof(struct ferry_nvmf_rdma_cm_rep) == 32, "CM accept private data");
_Static_assert(sizeof(struct ferry_nvmf_rdma_cm_rej) == 4, "CM reject private data");
_Static_assert(sizeof(struct ferry_nvmf_rdma_keyed_sgl) == 16, "keyed SGL descriptor");
_Static_assert(offsetof(struct ferry_nvmf_rdma_keyed_sgl, key) == 11, "keyed SGL key");
_Static_assert(offsetof(struct ferry_nvmf_rdma_keyed_sgl, id) == 15, "keyed SGL id");

/* Byte offsets of the private data fields. */
enum {
	CM_OFF_RECFMT = 0,
	CM_OFF_QID = 2, /* request */
	CM_OFF_HRQSIZE = 4,
	CM_OFF_HSQSIZE = 6,
	CM_OFF_CNTLID = 8,
	CM_OFF_CRQSIZE = 2, /* accept */
	CM_OFF_STS = 2,     /* reject */
	CM_REQ_LEN = 32,
	CM_REP_LEN = 32,
	CM_REJ_LEN = 4,
};

static int cm_reject(uint16_t *sts, uint16_t code)
{
	*sts = code;
	return -EPROTO;
}

int ferry_nvmf_rdma_cm_req_parse(const void *pdata, uint32_t len,
				 const struct ferry_nvmf_rdma_cm_limits *lim,
				 struct ferry_nvmf_rdma_cm_req *out, uint16_t *sts)
{
	if (!lim || !out || !sts || (!pdata && len))
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	/* The binding defines 32 bytes; more (a CM that pads) is fine, less is malformed. */
	if (len < CM_REQ_LEN)
		return cm_reject(sts, FERRY_NVMF_RDMA_CM_INVALID_LEN);
	const uint8_t *p = pdata;
	out->recfmt = rdma_get16(p + CM_OFF_RECFMT);
	out->qid = rdma_get16(p + CM_OFF_QID);
	out->hrqsize = rdma_get16(p + CM_OFF_HRQSIZE);
	out->hsqsize = rdma_get16(p + CM_OFF_HSQSIZE);
	out->cntlid = rdma_get16(p + CM_OFF_CNTLID);
	memcpy(out->rsvd, p + 10, sizeof(out->rsvd));
	if (out->recfmt != FERRY_NVMF_RDMA_RECFMT)
		return cm_reject(sts, FERRY_NVMF_RDMA_CM_INVALID_RECFMT);
	if (out->qid > lim->max_qid)
		return cm_reject(sts, FERRY_NVMF_RDMA_CM_INVALID_QID);
	/*
	 * HSQSIZE is the queue's SQSIZE, 0's based: entries - 1, so 1..depth - 1 (a queue of one
	 * entry is not a queue: the SQ is full when tail + 1 == head). HRQSIZE counts response
	 * capsules, 1's based: 1..depth. Linux's nvme-rdma sends hrqsize 32 / hsqsize 31 for the
	 * admin queue (NVME_AQ_DEPTH) and hrqsize = queue size / hsqsize = queue size - 1 for an
	 * I/O queue, which these bounds accept for any depth the controller offers.
	 */
	uint32_t depth = out->qid == 0 ? lim->max_admin_depth : lim->max_queue_depth;
	if (out->hsqsize < 1 || (uint32_t)out->hsqsize + 1 > depth)
		return cm_reject(sts, FERRY_NVMF_RDMA_CM_INVALID_HSQSIZE);
	if (out->hrqsize < 1 || out->hrqsize > depth)
		return cm_reject(sts, FERRY_NVMF_RDMA_CM_INVALID_HRQSIZE);
	*sts = 0;
	return 0;
}

size_t ferry_nvmf_rdma_cm_req_build(void *buf, size_t cap, uint16_t qid, uint16_t hrqsize,
				    uint16_t hsqsize)
{
	if (!buf || cap < CM_REQ_LEN)
		return 0;
	uint8_t *p = buf;
	memset(p, 0, CM_REQ_LEN);
	rdma_put16(p + CM_OFF_RECFMT, FERRY_NVMF_RDMA_RECFMT);
	rdma_put16(p + CM_OFF_QID, qid);
	rdma_put16(p + CM_OFF_HRQSIZE, hrqsize);
	rdma_put16(p + CM_OFF_HSQSIZE, hsqsize);
	/* The controller ID comes with the Fabrics Connect command; here it is informational. */
	rdma_put16(p + CM_OFF_CNTLID, 0xffff);
	return CM_REQ_LEN;
}

int ferry_nvmf_rdma_cm_rep_parse(const void *pdata, uint32_t len,
				 struct ferry_nvmf_rdma_cm_rep *out)
{
	if (!out || (!pdata && len))
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	/* Only recfmt and crqsize carry meaning: 4 bytes are enough (some targets send no more). */
	if (len < 4)
		return -EPROTO;
	const uint8_t *p = pdata;
	out->recfmt = rdma_get16(p + CM_OFF_RECFMT);
	out->crqsize = rdma_get16(p + CM_OFF_CRQSIZE);
	if (len > 4)
		memcpy(out->rsvd, p + 4, (len - 4 < sizeof(out->rsvd) ? len - 4 : sizeof(out->rsvd)));
	if (out->recfmt != FERRY_NVMF_RDMA_RECFMT || out->crqsize == 0)
		return -EPROTO;
	return 0;
}

size_t ferry_nvmf_rdma_cm_rep_build(void *buf, size_t cap, uint16_t crqsize)
{
	if (!buf || cap < CM_REP_LEN)
		return 0;
	uint8_t *p = buf;
	memset(p, 0, CM_REP_LEN);
	rdma_put16(p + CM_OFF_RECFMT, FERRY_NVMF_RDMA_RECFMT);
	rdma_put16(p + CM_OFF_CRQSIZE, crqsize);
	return CM_REP_LEN;
}

int ferry_nvmf_rdma_cm_rej_parse(const void *pdata, uint32_t len, uint16_t *sts)
{
	if (!sts || (!pdata && len))
		return -EINVAL;
	*sts = 0;
	if (len < CM_REJ_LEN)
		return -EPROTO;
	const uint8_t *p = pdata;
	if (rdma_get16(p + CM_OFF_RECFMT) != FERRY_NVMF_RDMA_RECFMT)
		return -EPROTO;
	*sts = rdma_get16(p + CM_OFF_STS);
	return 0;
}

size_t ferry_nvmf_rdma_cm_rej_build(void *buf, size_t cap, uint16_t sts)
{
	if (!buf || cap < CM_REJ_LEN)
		return 0;
	uint8_t *p = buf;
	rdma_put16(p + CM_OFF_RECFMT, FERRY_NVMF_RDMA_RECFMT);
	rdma_put16(p + CM_OFF_STS, sts);
	return CM_REJ_LEN;
}

const char *ferry_nvmf_rdma_cm_sts_str(uint16_t sts)
{
	switch (sts) {
	case FERRY_NVMF_RDMA_CM_INVALID_LEN:
		return "invalid private data length";
	case FERRY_NVMF_RDMA_CM_INVALID_RECFMT:
		return "invalid RECFMT";
	case FERRY_NVMF_RDMA_CM_INVALID_QID:
		return "invalid QID";
	case FERRY_NVMF_RDMA_CM_INVALID_HSQSIZE:
		return "invalid HSQSIZE";
	case FERRY_NVMF_RDMA_CM_INVALID_HRQSIZE:
		return "invalid HRQSIZE";
	case FERRY_NVMF_RDMA_CM_NO_RSC:
		return "no resources";
	case FERRY_NVMF_RDMA_CM_INVALID_IRD:
		return "invalid IRD";
	case FERRY_NVMF_RDMA_CM_INVALID_ORD:
		return "invalid ORD";
	case FERRY_NVMF_RDMA_CM_INVALID_CNTLID:
		return "invalid CNTLID";
	default:
		return "unknown";
	}
}
