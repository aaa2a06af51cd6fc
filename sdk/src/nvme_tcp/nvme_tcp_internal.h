/*
 * Internals of the NVMe/TCP PDU codec shared by its builders (pdu.c) and its receive machine
 * (rx.c): little-endian field access, the alignment arithmetic and which role receives which
 * PDU type.
 */
#ifndef FERRY_NVME_TCP_INTERNAL_H
#define FERRY_NVME_TCP_INTERNAL_H

#include <stdint.h>
#include <ferry/module/nvme_tcp.h>

/* Wire fields are little endian whatever the host; header bytes are accessed through these. */
static inline void pdu_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void pdu_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline uint16_t pdu_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t pdu_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

/* Byte offsets of the header fields FEI names. */
enum {
	PDU_OFF_TYPE = 0,
	PDU_OFF_FLAGS = 1,
	PDU_OFF_HLEN = 2,
	PDU_OFF_PDO = 3,
	PDU_OFF_PLEN = 4,
	PDU_OFF_PFV = 8,
	PDU_OFF_PDA = 10, /* ICReq HPDA, ICResp CPDA */
	PDU_OFF_DGST = 11,
	PDU_OFF_MAXR2T = 12,     /* ICReq */
	PDU_OFF_MAXH2CDATA = 12, /* ICResp */
	PDU_OFF_CCCID = 8,
	PDU_OFF_TTAG = 10,
	PDU_OFF_DATAO = 12, /* also R2TO */
	PDU_OFF_DATAL = 16, /* also R2TL */
	PDU_OFF_FES = 8,    /* TermReq */
	PDU_OFF_FEI = 10,
};

#define PDU_MIN_MAXH2CDATA 4096u

/* Header length and digest length of @p type under @p p (0 for an unknown type). */
uint32_t pdu_hlen(uint8_t type);

/* Whether @p type is a PDU the peer of @p role sends to it. */
int pdu_receivable(enum ferry_nvme_tcp_role role, uint8_t type);

#endif /* FERRY_NVME_TCP_INTERNAL_H */
