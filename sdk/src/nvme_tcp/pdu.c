/*
 * NVMe/TCP PDU builders, the PDO rule, the IC exchange helpers and the names of PDU types and
 * TermReq error codes (ferry/module/nvme_tcp.h). Pure functions: no socket, no allocation.
 */
#include <errno.h>
#include <string.h>
#include <ferry/crc.h>
#include "nvme_tcp_internal.h"

uint32_t pdu_hlen(uint8_t type)
{
	switch (type) {
	case FERRY_NVME_TCP_ICREQ:
	case FERRY_NVME_TCP_ICRESP:
		return FERRY_NVME_TCP_HLEN_IC;
	case FERRY_NVME_TCP_H2C_TERM:
	case FERRY_NVME_TCP_C2H_TERM:
		return FERRY_NVME_TCP_HLEN_TERM;
	case FERRY_NVME_TCP_CAPSULE_CMD:
		return FERRY_NVME_TCP_HLEN_CMD;
	case FERRY_NVME_TCP_CAPSULE_RESP:
		return FERRY_NVME_TCP_HLEN_RESP;
	case FERRY_NVME_TCP_H2C_DATA:
	case FERRY_NVME_TCP_C2H_DATA:
		return FERRY_NVME_TCP_HLEN_DATA;
	case FERRY_NVME_TCP_R2T:
		return FERRY_NVME_TCP_HLEN_R2T;
	default:
		return 0;
	}
}

int pdu_receivable(enum ferry_nvme_tcp_role role, uint8_t type)
{
	if (role == FERRY_NVME_TCP_ROLE_CONTROLLER)
		return type == FERRY_NVME_TCP_ICREQ || type == FERRY_NVME_TCP_H2C_TERM ||
		       type == FERRY_NVME_TCP_CAPSULE_CMD || type == FERRY_NVME_TCP_H2C_DATA;
	if (role == FERRY_NVME_TCP_ROLE_HOST)
		return type == FERRY_NVME_TCP_ICRESP || type == FERRY_NVME_TCP_C2H_TERM ||
		       type == FERRY_NVME_TCP_CAPSULE_RESP || type == FERRY_NVME_TCP_C2H_DATA ||
		       type == FERRY_NVME_TCP_R2T;
	return 0;
}

static uint32_t hd_len(const struct ferry_nvme_tcp_params *p)
{
	return p->hdgst ? FERRY_NVME_TCP_DIGEST_LEN : 0;
}

/*
 * Data is aligned to the receiver's PDA: H2C PDUs (the controller receives them) to CPDA, C2H
 * PDUs to HPDA; (pda + 1) * 4 bytes, at most 128, so PDO always fits its 8-bit field.
 */
uint32_t ferry_nvme_tcp_pdo(const struct ferry_nvme_tcp_params *p, uint8_t pdu_type)
{
	uint32_t pda, align, off;

	if (!p)
		return 0;
	switch (pdu_type) {
	case FERRY_NVME_TCP_CAPSULE_CMD:
	case FERRY_NVME_TCP_H2C_DATA:
		pda = p->cpda;
		break;
	case FERRY_NVME_TCP_C2H_DATA:
		pda = p->hpda;
		break;
	case FERRY_NVME_TCP_H2C_TERM:
	case FERRY_NVME_TCP_C2H_TERM:
		return FERRY_NVME_TCP_HLEN_TERM;
	default:
		return 0;
	}
	if (pda > FERRY_NVME_TCP_PDA_MAX)
		pda = FERRY_NVME_TCP_PDA_MAX;
	align = (pda + 1) * 4;
	off = pdu_hlen(pdu_type) + hd_len(p);
	return (off + align - 1) / align * align;
}

static void ch_put(uint8_t *b, uint8_t type, uint8_t flags, uint32_t hlen, uint32_t pdo,
		   uint32_t plen)
{
	b[0] = type;
	b[1] = flags;
	b[2] = (uint8_t)hlen;
	b[3] = (uint8_t)pdo;
	pdu_put32(b + PDU_OFF_PLEN, plen);
}

/* The header digest after the header, zero padding up to @p pdo; returns the bytes written. */
static size_t hdr_finish(uint8_t *b, const struct ferry_nvme_tcp_params *p, uint32_t hlen,
			 uint32_t pdo)
{
	uint32_t end = hlen;

	if (p->hdgst) {
		pdu_put32(b + hlen, ferry_crc32c(0, b, hlen));
		end += FERRY_NVME_TCP_DIGEST_LEN;
	}
	if (pdo > end) {
		memset(b + end, 0, pdo - end);
		end = pdo;
	}
	return end;
}

static size_t build_ic(void *buf, uint8_t type, uint8_t pda, uint8_t dgst, uint32_t v)
{
	uint8_t *b = buf;

	if (!b)
		return 0;
	memset(b, 0, FERRY_NVME_TCP_HLEN_IC);
	ch_put(b, type, 0, FERRY_NVME_TCP_HLEN_IC, 0, FERRY_NVME_TCP_HLEN_IC);
	pdu_put16(b + PDU_OFF_PFV, FERRY_NVME_TCP_PFV_1_0);
	b[PDU_OFF_PDA] = pda;
	b[PDU_OFF_DGST] = dgst;
	pdu_put32(b + 12, v);
	return FERRY_NVME_TCP_HLEN_IC;
}

size_t ferry_nvme_tcp_build_icreq(void *buf, uint8_t hpda, uint8_t dgst, uint32_t maxr2t)
{
	return build_ic(buf, FERRY_NVME_TCP_ICREQ, hpda, dgst, maxr2t);
}

size_t ferry_nvme_tcp_build_icresp(void *buf, uint8_t cpda, uint8_t dgst, uint32_t maxh2cdata)
{
	return build_ic(buf, FERRY_NVME_TCP_ICRESP, cpda, dgst, maxh2cdata);
}

size_t ferry_nvme_tcp_build_cmd(void *buf, const struct ferry_nvme_tcp_params *p,
				const struct ferry_nvme_sqe *sqe, uint32_t icd_len)
{
	uint8_t *b = buf;
	uint32_t hlen = FERRY_NVME_TCP_HLEN_CMD, pdo = 0, plen, dd = 0;
	uint8_t flags = 0;

	if (!b || !p || !sqe)
		return 0;
	if (p->hdgst)
		flags |= FERRY_NVME_TCP_F_HDGST;
	if (icd_len) {
		pdo = ferry_nvme_tcp_pdo(p, FERRY_NVME_TCP_CAPSULE_CMD);
		if (p->ddgst) {
			flags |= FERRY_NVME_TCP_F_DDGST;
			dd = FERRY_NVME_TCP_DIGEST_LEN;
		}
		if ((uint64_t)pdo + icd_len + dd > UINT32_MAX)
			return 0;
		plen = pdo + icd_len + dd;
	} else {
		plen = hlen + hd_len(p);
	}
	memset(b, 0, hlen);
	ch_put(b, FERRY_NVME_TCP_CAPSULE_CMD, flags, hlen, pdo, plen);
	memcpy(b + 8, sqe, sizeof(*sqe));
	return hdr_finish(b, p, hlen, pdo);
}

size_t ferry_nvme_tcp_build_resp(void *buf, const struct ferry_nvme_tcp_params *p,
				 const struct ferry_nvme_cqe *cqe)
{
	uint8_t *b = buf;
	uint32_t hlen = FERRY_NVME_TCP_HLEN_RESP;

	if (!b || !p || !cqe)
		return 0;
	ch_put(b, FERRY_NVME_TCP_CAPSULE_RESP, p->hdgst ? FERRY_NVME_TCP_F_HDGST : 0, hlen, 0,
	       hlen + hd_len(p));
	memcpy(b + 8, cqe, sizeof(*cqe));
	return hdr_finish(b, p, hlen, 0);
}

size_t ferry_nvme_tcp_build_data(void *buf, const struct ferry_nvme_tcp_params *p, uint8_t pdu_type,
				 uint16_t cccid, uint16_t ttag, uint32_t datao, uint32_t datal,
				 uint8_t flags)
{
	uint8_t *b = buf;
	uint32_t hlen = FERRY_NVME_TCP_HLEN_DATA, pdo, dd = 0;
	uint8_t f = flags;

	if (!b || !p || datal == 0)
		return 0;
	if (pdu_type != FERRY_NVME_TCP_H2C_DATA && pdu_type != FERRY_NVME_TCP_C2H_DATA)
		return 0;
	if (flags & ~(FERRY_NVME_TCP_F_LAST_PDU | FERRY_NVME_TCP_F_SUCCESS))
		return 0;
	if ((flags & FERRY_NVME_TCP_F_SUCCESS) &&
	    (pdu_type == FERRY_NVME_TCP_H2C_DATA || !(flags & FERRY_NVME_TCP_F_LAST_PDU)))
		return 0;
	pdo = ferry_nvme_tcp_pdo(p, pdu_type);
	if (p->hdgst)
		f |= FERRY_NVME_TCP_F_HDGST;
	if (p->ddgst) {
		f |= FERRY_NVME_TCP_F_DDGST;
		dd = FERRY_NVME_TCP_DIGEST_LEN;
	}
	if ((uint64_t)pdo + datal + dd > UINT32_MAX)
		return 0;
	memset(b, 0, hlen);
	ch_put(b, pdu_type, f, hlen, pdo, pdo + datal + dd);
	pdu_put16(b + PDU_OFF_CCCID, cccid);
	pdu_put16(b + PDU_OFF_TTAG, ttag);
	pdu_put32(b + PDU_OFF_DATAO, datao);
	pdu_put32(b + PDU_OFF_DATAL, datal);
	return hdr_finish(b, p, hlen, pdo);
}

size_t ferry_nvme_tcp_build_r2t(void *buf, const struct ferry_nvme_tcp_params *p, uint16_t cccid,
				uint16_t ttag, uint32_t r2to, uint32_t r2tl)
{
	uint8_t *b = buf;
	uint32_t hlen = FERRY_NVME_TCP_HLEN_R2T;

	if (!b || !p || r2tl == 0)
		return 0;
	memset(b, 0, hlen);
	ch_put(b, FERRY_NVME_TCP_R2T, p->hdgst ? FERRY_NVME_TCP_F_HDGST : 0, hlen, 0,
	       hlen + hd_len(p));
	pdu_put16(b + PDU_OFF_CCCID, cccid);
	pdu_put16(b + PDU_OFF_TTAG, ttag);
	pdu_put32(b + PDU_OFF_DATAO, r2to);
	pdu_put32(b + PDU_OFF_DATAL, r2tl);
	return hdr_finish(b, p, hlen, 0);
}

size_t ferry_nvme_tcp_build_term(void *buf, uint8_t pdu_type, uint16_t fes, uint32_t fei,
				 const void *hdr, size_t hdr_len)
{
	uint8_t *b = buf;
	uint32_t hlen = FERRY_NVME_TCP_HLEN_TERM;
	size_t n = hdr ? hdr_len : 0;

	if (!b || (pdu_type != FERRY_NVME_TCP_H2C_TERM && pdu_type != FERRY_NVME_TCP_C2H_TERM))
		return 0;
	/* The spec bounds a TermReq to PLEN 152: its data is at most the 128-byte IC header. */
	if (n > FERRY_NVME_TCP_TERM_MAX_DATA)
		n = FERRY_NVME_TCP_TERM_MAX_DATA;
	memset(b, 0, hlen);
	ch_put(b, pdu_type, 0, hlen, n ? hlen : 0, hlen + (uint32_t)n);
	pdu_put16(b + PDU_OFF_FES, fes);
	pdu_put32(b + PDU_OFF_FEI, fei);
	if (n)
		memmove(b + hlen, hdr, n);
	return hlen + n;
}

static int ic_fail(uint16_t *fes, uint32_t *fei, uint16_t s, uint32_t i)
{
	if (fes)
		*fes = s;
	if (fei)
		*fei = i;
	return -EPROTO;
}

int ferry_nvme_tcp_icreq_negotiate(const struct ferry_nvme_tcp_icreq *icreq,
				   const struct ferry_nvme_tcp_params *offer,
				   struct ferry_nvme_tcp_params *out, void *icresp, uint16_t *fes,
				   uint32_t *fei)
{
	const uint8_t *q = (const uint8_t *)icreq;
	struct ferry_nvme_tcp_params r;
	uint8_t dgst;

	if (!icreq || !offer || !out || !icresp)
		return -EINVAL;
	if (offer->role != FERRY_NVME_TCP_ROLE_CONTROLLER || offer->cpda > FERRY_NVME_TCP_PDA_MAX ||
	    offer->maxh2cdata < PDU_MIN_MAXH2CDATA || offer->maxh2cdata % 4)
		return -EINVAL;
	if (pdu_get16(q + PDU_OFF_PFV) != FERRY_NVME_TCP_PFV_1_0)
		return ic_fail(fes, fei, FERRY_NVME_TCP_FES_UNSUPPORTED, PDU_OFF_PFV);
	if (q[PDU_OFF_PDA] > FERRY_NVME_TCP_PDA_MAX)
		return ic_fail(fes, fei, FERRY_NVME_TCP_FES_UNSUPPORTED, PDU_OFF_PDA);
	if (q[PDU_OFF_DGST] & ~(FERRY_NVME_TCP_DGST_HDGST | FERRY_NVME_TCP_DGST_DDGST))
		return ic_fail(fes, fei, FERRY_NVME_TCP_FES_UNSUPPORTED, PDU_OFF_DGST);
	r = *offer;
	r.hdgst = (q[PDU_OFF_DGST] & FERRY_NVME_TCP_DGST_HDGST) && offer->hdgst;
	r.ddgst = (q[PDU_OFF_DGST] & FERRY_NVME_TCP_DGST_DDGST) && offer->ddgst;
	r.hpda = q[PDU_OFF_PDA];
	dgst = (uint8_t)((r.hdgst ? FERRY_NVME_TCP_DGST_HDGST : 0) |
			 (r.ddgst ? FERRY_NVME_TCP_DGST_DDGST : 0));
	ferry_nvme_tcp_build_icresp(icresp, r.cpda, dgst, r.maxh2cdata);
	*out = r;
	return 0;
}

int ferry_nvme_tcp_icresp_check(const struct ferry_nvme_tcp_icresp *icresp,
				const struct ferry_nvme_tcp_params *asked,
				struct ferry_nvme_tcp_params *out, uint16_t *fes, uint32_t *fei)
{
	const uint8_t *q = (const uint8_t *)icresp;
	struct ferry_nvme_tcp_params r;
	uint8_t dgst, may = 0;
	uint32_t maxh2c;

	if (!icresp || !asked || !out || asked->role != FERRY_NVME_TCP_ROLE_HOST)
		return -EINVAL;
	dgst = q[PDU_OFF_DGST];
	maxh2c = pdu_get32(q + PDU_OFF_MAXH2CDATA);
	if (asked->hdgst)
		may |= FERRY_NVME_TCP_DGST_HDGST;
	if (asked->ddgst)
		may |= FERRY_NVME_TCP_DGST_DDGST;
	if (pdu_get16(q + PDU_OFF_PFV) != FERRY_NVME_TCP_PFV_1_0)
		return ic_fail(fes, fei, FERRY_NVME_TCP_FES_UNSUPPORTED, PDU_OFF_PFV);
	if (q[PDU_OFF_PDA] > FERRY_NVME_TCP_PDA_MAX)
		return ic_fail(fes, fei, FERRY_NVME_TCP_FES_UNSUPPORTED, PDU_OFF_PDA);
	/* A controller may turn off a digest the host asked for, never turn one on. */
	if (dgst & ~may)
		return ic_fail(fes, fei, FERRY_NVME_TCP_FES_UNSUPPORTED, PDU_OFF_DGST);
	if (maxh2c < PDU_MIN_MAXH2CDATA || maxh2c % 4)
		return ic_fail(fes, fei, FERRY_NVME_TCP_FES_UNSUPPORTED, PDU_OFF_MAXH2CDATA);
	r = *asked;
	r.hdgst = !!(dgst & FERRY_NVME_TCP_DGST_HDGST);
	r.ddgst = !!(dgst & FERRY_NVME_TCP_DGST_DDGST);
	r.cpda = q[PDU_OFF_PDA];
	r.maxh2cdata = maxh2c;
	*out = r;
	return 0;
}

const char *ferry_nvme_tcp_fes_str(uint16_t fes)
{
	switch (fes) {
	case FERRY_NVME_TCP_FES_INVALID_HEADER:
		return "invalid PDU header field";
	case FERRY_NVME_TCP_FES_PDU_SEQUENCE:
		return "PDU sequence error";
	case FERRY_NVME_TCP_FES_HDGST:
		return "header digest error";
	case FERRY_NVME_TCP_FES_DATA_OUT_OF_RANGE:
		return "data transfer out of range";
	case FERRY_NVME_TCP_FES_DATA_LIMIT:
		return "data transfer limit exceeded";
	case FERRY_NVME_TCP_FES_UNSUPPORTED:
		return "unsupported parameter";
	default:
		return "unknown fatal error status";
	}
}

const char *ferry_nvme_tcp_pdu_str(uint8_t pdu_type)
{
	switch (pdu_type) {
	case FERRY_NVME_TCP_ICREQ:
		return "ICReq";
	case FERRY_NVME_TCP_ICRESP:
		return "ICResp";
	case FERRY_NVME_TCP_H2C_TERM:
		return "H2CTermReq";
	case FERRY_NVME_TCP_C2H_TERM:
		return "C2HTermReq";
	case FERRY_NVME_TCP_CAPSULE_CMD:
		return "CapsuleCmd";
	case FERRY_NVME_TCP_CAPSULE_RESP:
		return "CapsuleResp";
	case FERRY_NVME_TCP_H2C_DATA:
		return "H2CData";
	case FERRY_NVME_TCP_C2H_DATA:
		return "C2HData";
	case FERRY_NVME_TCP_R2T:
		return "R2T";
	default:
		return "unknown PDU type";
	}
}
