/**
 * @file ferry/nvme_tcp_spec.h
 * @brief The NVMe/TCP transport binding (NVMe/TCP transport specification 1.0): PDU types,
 * header layouts, flags, digests, padding and the TermReq error codes.
 *
 * Every PDU starts with the 8-byte common header (::ferry_nvme_tcp_ch): type, flags, HLEN
 * (header length), PDO (offset of the data, 0 if none) and PLEN (whole PDU length). The
 * header is followed by an optional header digest (CRC32C of the header, 4 bytes, when
 * HDGSTF is set), padding up to PDO, the data, and an optional data digest (CRC32C of the
 * data, when DDGSTF is set). The digests are enabled per connection by ICReq/ICResp.
 *
 * Field names follow the specification's mnemonics (lower case); every multi-byte field is
 * little endian. Layouts are checked with static assertions in the library. The codec that
 * builds and parses these PDUs is <ferry/module/nvme_tcp.h>.
 */
#ifndef FERRY_NVME_TCP_SPEC_H
#define FERRY_NVME_TCP_SPEC_H

#include <stdint.h>
#include <ferry/export.h>
#include <ferry/nvme_spec.h>

FERRY_BEGIN_DECLS

/** The default NVMe/TCP port (4420; 8009 is the discovery port). */
#define FERRY_NVME_TCP_PORT 4420
#define FERRY_NVME_TCP_DISC_PORT 8009 /**< the well-known discovery port */

/** @name PDU types
 * @{ */
#define FERRY_NVME_TCP_ICREQ 0x00       /**< host → controller: initialize connection */
#define FERRY_NVME_TCP_ICRESP 0x01      /**< controller → host */
#define FERRY_NVME_TCP_H2C_TERM 0x02    /**< host → controller: terminate connection */
#define FERRY_NVME_TCP_C2H_TERM 0x03    /**< controller → host: terminate connection */
#define FERRY_NVME_TCP_CAPSULE_CMD 0x04 /**< host → controller: command (+ in-capsule data) */
#define FERRY_NVME_TCP_CAPSULE_RESP 0x05 /**< controller → host: completion */
#define FERRY_NVME_TCP_H2C_DATA 0x06    /**< host → controller: write data */
#define FERRY_NVME_TCP_C2H_DATA 0x07    /**< controller → host: read data */
#define FERRY_NVME_TCP_R2T 0x09         /**< controller → host: ready to transfer */
/** @} */

/** @name Common header flags
 * @{ */
#define FERRY_NVME_TCP_F_HDGST 0x01    /**< HDGSTF: a header digest follows the header */
#define FERRY_NVME_TCP_F_DDGST 0x02    /**< DDGSTF: a data digest follows the data */
#define FERRY_NVME_TCP_F_LAST_PDU 0x04 /**< H2CData/C2HData: last PDU of the transfer */
#define FERRY_NVME_TCP_F_SUCCESS 0x08  /**< C2HData: command succeeded, no CapsuleResp follows
					    (only together with LAST_PDU) */
/** @} */

/** @name Header lengths (HLEN) per PDU type
 * @{ */
#define FERRY_NVME_TCP_HLEN_IC 128      /**< ICReq, ICResp */
#define FERRY_NVME_TCP_HLEN_TERM 24     /**< H2CTermReq, C2HTermReq */
#define FERRY_NVME_TCP_HLEN_CMD 72      /**< CapsuleCmd: 8 + 64-byte SQE */
#define FERRY_NVME_TCP_HLEN_RESP 24     /**< CapsuleResp: 8 + 16-byte CQE */
#define FERRY_NVME_TCP_HLEN_DATA 24     /**< H2CData, C2HData */
#define FERRY_NVME_TCP_HLEN_R2T 24      /**< R2T */
#define FERRY_NVME_TCP_HLEN_MAX 128     /**< the longest header */
/** @} */

/** Bytes of a header or data digest. */
#define FERRY_NVME_TCP_DIGEST_LEN 4

/** Maximum bytes of the offending PDU header a TermReq carries as its data: the longest
 *  header (HLEN 128). The specification bounds the whole H2CTermReq/C2HTermReq to PLEN 152
 *  (Linux: NVME_TCP_MAX_C2HTERM_PLEN), so the data is at most 152 - 24 = 128 bytes. */
#define FERRY_NVME_TCP_TERM_MAX_DATA 128
/** Maximum PLEN of a TermReq (header + data): 152. */
#define FERRY_NVME_TCP_TERM_MAX_PLEN (FERRY_NVME_TCP_HLEN_TERM + FERRY_NVME_TCP_TERM_MAX_DATA)

/** @name ICReq/ICResp digest byte (DGST)
 * @{ */
#define FERRY_NVME_TCP_DGST_HDGST 0x01 /**< header digest enabled */
#define FERRY_NVME_TCP_DGST_DDGST 0x02 /**< data digest enabled */
/** @} */

/** The only PDU format version (PFV) of NVMe/TCP 1.0. */
#define FERRY_NVME_TCP_PFV_1_0 0
/** Highest HPDA/CPDA value: data aligned to (pda + 1) * 4 bytes, up to 128. */
#define FERRY_NVME_TCP_PDA_MAX 31

/** @name TermReq fatal error status (FES)
 * @{ */
#define FERRY_NVME_TCP_FES_INVALID_HEADER 0x01   /**< invalid PDU header field (FEI: byte offset) */
#define FERRY_NVME_TCP_FES_PDU_SEQUENCE 0x02     /**< PDU sequence error */
#define FERRY_NVME_TCP_FES_HDGST 0x03            /**< header digest error */
#define FERRY_NVME_TCP_FES_DATA_OUT_OF_RANGE 0x04 /**< data transfer out of range */
#define FERRY_NVME_TCP_FES_DATA_LIMIT 0x05       /**< R2T limit exceeded / data transfer limit exceeded */
#define FERRY_NVME_TCP_FES_UNSUPPORTED 0x06      /**< unsupported parameter (FEI: byte offset) */
/** @} */

/** Common header (8 bytes). */
struct ferry_nvme_tcp_ch {
	uint8_t pdu_type; /**< FERRY_NVME_TCP_* type */
	uint8_t flags;    /**< FERRY_NVME_TCP_F_* */
	uint8_t hlen;     /**< header length (without the header digest) */
	uint8_t pdo;      /**< PDU data offset (0: no data) */
	uint32_t plen;    /**< total PDU length: header, digests, padding and data */
};

/** ICReq (128 bytes). */
struct ferry_nvme_tcp_icreq {
	struct ferry_nvme_tcp_ch ch; /**< type ICREQ, hlen 128, pdo 0, plen 128 */
	uint16_t pfv;                /**< PDU format version, 0 */
	uint8_t hpda;                /**< host PDU data alignment, 0..31 ((hpda + 1) * 4 bytes) */
	uint8_t dgst;                /**< FERRY_NVME_TCP_DGST_* the host asks for */
	uint32_t maxr2t;             /**< maximum outstanding R2Ts per command, 0's based */
	uint8_t rsvd16[112];         /**< reserved */
};

/** ICResp (128 bytes). */
struct ferry_nvme_tcp_icresp {
	struct ferry_nvme_tcp_ch ch; /**< type ICRESP, hlen 128, pdo 0, plen 128 */
	uint16_t pfv;                /**< PDU format version, 0 */
	uint8_t cpda;                /**< controller PDU data alignment, 0..31 */
	uint8_t dgst;                /**< FERRY_NVME_TCP_DGST_* enabled */
	uint32_t maxh2cdata;         /**< maximum H2CData payload, bytes (>= 4096, multiple of 4) */
	uint8_t rsvd16[112];         /**< reserved */
};

/** H2CTermReq / C2HTermReq header (24 bytes); the offending header follows as data. */
struct ferry_nvme_tcp_term {
	struct ferry_nvme_tcp_ch ch; /**< type H2C_TERM or C2H_TERM, hlen 24, pdo 24 if data */
	uint16_t fes;                /**< fatal error status, FERRY_NVME_TCP_FES_* */
	uint32_t fei;                /**< fatal error information (a byte offset, or the value) */
	uint8_t rsvd14[10];          /**< reserved */
} __attribute__((packed));

/** CapsuleCmd header (72 bytes). */
struct ferry_nvme_tcp_cmd {
	struct ferry_nvme_tcp_ch ch; /**< type CAPSULE_CMD, hlen 72 */
	struct ferry_nvme_sqe sqe;   /**< the command */
};

/** CapsuleResp header (24 bytes). */
struct ferry_nvme_tcp_resp {
	struct ferry_nvme_tcp_ch ch; /**< type CAPSULE_RESP, hlen 24, pdo 0 */
	struct ferry_nvme_cqe cqe;   /**< the completion */
};

/** H2CData / C2HData header (24 bytes). */
struct ferry_nvme_tcp_data {
	struct ferry_nvme_tcp_ch ch; /**< type H2C_DATA or C2H_DATA, hlen 24 */
	uint16_t cccid;              /**< command capsule CID */
	uint16_t ttag;               /**< H2C: transfer tag of the R2T; C2H: reserved */
	uint32_t datao;              /**< offset of this PDU's data in the command's data */
	uint32_t datal;              /**< bytes of data in this PDU */
	uint8_t rsvd20[4];           /**< reserved */
};

/** R2T header (24 bytes). */
struct ferry_nvme_tcp_r2t {
	struct ferry_nvme_tcp_ch ch; /**< type R2T, hlen 24, pdo 0, plen 24 (+ hdgst) */
	uint16_t cccid;              /**< command capsule CID */
	uint16_t ttag;               /**< transfer tag, chosen by the controller */
	uint32_t r2to;               /**< requested data offset */
	uint32_t r2tl;               /**< requested data length */
	uint8_t rsvd20[4];           /**< reserved */
};

/** @name SGL descriptor identifiers NVMe/TCP uses in a CapsuleCmd
 * @{ */
/** In-capsule data: data block, subtype offset (address = offset in the capsule's data). */
#define FERRY_NVME_TCP_SGL_ICD FERRY_NVME_SGL_ID(FERRY_NVME_SGL_DATA_BLOCK, FERRY_NVME_SGL_SUBTYPE_OFFSET)
/** Data moved by H2CData/C2HData: transport SGL data block, subtype 0xA. */
#define FERRY_NVME_TCP_SGL_TRANSPORT FERRY_NVME_SGL_ID(FERRY_NVME_SGL_TRANSPORT_DATA_BLOCK, 0xA)
/** @} */

FERRY_END_DECLS

#endif /* FERRY_NVME_TCP_SPEC_H */
