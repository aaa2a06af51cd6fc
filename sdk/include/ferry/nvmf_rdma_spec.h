/**
 * @file ferry/nvmf_rdma_spec.h
 * @brief The NVMe over Fabrics RDMA transport binding: the RDMA_CM private data of the
 * connect request, accept and reject, the reject status codes, and the keyed SGL data block
 * descriptor that names remote memory in a command.
 *
 * A queue is one reliable-connected QP. Command capsules (64-byte SQE + in-capsule data) go
 * host → controller by SEND into receive buffers the controller posted; response capsules
 * (16-byte CQE) come back by SEND. Data moves by RDMA: for a write the controller RDMA-READs
 * it from the host's memory named by a keyed SGL descriptor, for a read it RDMA-WRITEs it
 * there. Small writes may carry their data in the capsule (an SGL data block descriptor
 * with the offset subtype). Every multi-byte field is little endian; layouts are checked
 * with static assertions in the library. The codec is <ferry/module/rdma.h>.
 */
#ifndef FERRY_NVMF_RDMA_SPEC_H
#define FERRY_NVMF_RDMA_SPEC_H

#include <stdint.h>
#include <ferry/export.h>
#include <ferry/nvme_spec.h>

FERRY_BEGIN_DECLS

/** The default NVMe-oF/RDMA port (4420, as NVMe/TCP). */
#define FERRY_NVMF_RDMA_PORT 4420

/** Record format of the private data this binding defines (0). */
#define FERRY_NVMF_RDMA_RECFMT 0

/** RDMA_CM_REQUEST private data, host → controller (32 bytes). */
struct ferry_nvmf_rdma_cm_req {
	uint16_t recfmt;  /**< record format (0) */
	uint16_t qid;     /**< queue ID (0: admin) */
	uint16_t hrqsize; /**< host receive queue size: response capsules the host can take */
	uint16_t hsqsize; /**< host send queue size: the queue's SQSIZE (0's based) */
	uint16_t cntlid;  /**< controller ID (0xffff: dynamic; informational) */
	uint8_t rsvd[22]; /**< reserved */
};

/** RDMA_CM_ACCEPT private data, controller → host (32 bytes). */
struct ferry_nvmf_rdma_cm_rep {
	uint16_t recfmt;  /**< record format (0) */
	uint16_t crqsize; /**< controller receive queue size: command capsules it can take */
	uint8_t rsvd[28]; /**< reserved */
};

/** RDMA_CM_REJECT private data, controller → host (4 bytes). */
struct ferry_nvmf_rdma_cm_rej {
	uint16_t recfmt; /**< record format (0) */
	uint16_t sts;    /**< FERRY_NVMF_RDMA_CM_* */
};

/** @name RDMA_CM_REJECT status codes (::ferry_nvmf_rdma_cm_rej::sts)
 * @{ */
#define FERRY_NVMF_RDMA_CM_INVALID_LEN 0x01     /**< private data length invalid */
#define FERRY_NVMF_RDMA_CM_INVALID_RECFMT 0x02  /**< record format not supported */
#define FERRY_NVMF_RDMA_CM_INVALID_QID 0x03     /**< queue ID invalid */
#define FERRY_NVMF_RDMA_CM_INVALID_HSQSIZE 0x04 /**< host send queue size invalid */
#define FERRY_NVMF_RDMA_CM_INVALID_HRQSIZE 0x05 /**< host receive queue size invalid */
#define FERRY_NVMF_RDMA_CM_NO_RSC 0x06          /**< no resources */
#define FERRY_NVMF_RDMA_CM_INVALID_IRD 0x07     /**< initiator depth (IRD) invalid */
#define FERRY_NVMF_RDMA_CM_INVALID_ORD 0x08     /**< responder resources (ORD) invalid */
#define FERRY_NVMF_RDMA_CM_INVALID_CNTLID 0x09  /**< controller ID invalid */
/** @} */

/** @name Keyed SGL data block subtypes (low nibble of the identifier, type 4)
 * @{ */
#define FERRY_NVMF_RDMA_SGL_SUB_ADDRESS 0x0    /**< address + key */
#define FERRY_NVMF_RDMA_SGL_SUB_INVALIDATE 0xf /**< address + key; the target may invalidate
						  the key remotely (SEND with invalidate) */
/** @} */

/** Keyed SGL data block descriptor (16 bytes): remote memory by address, length and key. */
struct ferry_nvmf_rdma_keyed_sgl {
	uint64_t addr;     /**< address in the region @p key names */
	uint8_t length[3]; /**< bytes (24 bits, little endian) */
	uint8_t key[4];    /**< the region's remote key (little endian) */
	uint8_t id;        /**< FERRY_NVME_SGL_KEYED_DATA_BLOCK << 4 | subtype */
};

FERRY_END_DECLS

#endif /* FERRY_NVMF_RDMA_SPEC_H */
