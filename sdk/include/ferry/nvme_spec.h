/**
 * @file ferry/nvme_spec.h
 * @brief The parts of the NVM Express base and NVM command set specifications Ferry uses:
 * controller registers, submission and completion queue entries, SGL descriptors, status
 * codes, opcodes, feature and log page identifiers, and the Identify / log page layouts.
 *
 * Only what Ferry's controller core and a host driver need is here; field names follow the
 * specification's mnemonics (lower case). All multi-byte fields are little endian on the wire;
 * Ferry only runs on little-endian SoCs, so the structures are used as they are.
 *
 * Layouts are checked with static assertions in the library (nvme_spec_check.c), so a field
 * that drifts fails the build. The structures contain no pointers and no padding the compiler
 * could add: every member is naturally aligned.
 */
#ifndef FERRY_NVME_SPEC_H
#define FERRY_NVME_SPEC_H

#include <stdint.h>
#include <ferry/export.h>

FERRY_BEGIN_DECLS

/** @name Controller registers (offsets in BAR0)
 * @{ */
#define FERRY_NVME_REG_CAP 0x00     /**< Controller Capabilities (64 bit, RO) */
#define FERRY_NVME_REG_VS 0x08      /**< Version (RO) */
#define FERRY_NVME_REG_INTMS 0x0c   /**< Interrupt Mask Set (RW1S, pin-based/MSI only) */
#define FERRY_NVME_REG_INTMC 0x10   /**< Interrupt Mask Clear (RW1C, pin-based/MSI only) */
#define FERRY_NVME_REG_CC 0x14      /**< Controller Configuration */
#define FERRY_NVME_REG_CSTS 0x1c    /**< Controller Status (RO) */
#define FERRY_NVME_REG_NSSR 0x20    /**< NVM Subsystem Reset (not supported: reads 0) */
#define FERRY_NVME_REG_AQA 0x24     /**< Admin Queue Attributes */
#define FERRY_NVME_REG_ASQ 0x28     /**< Admin Submission Queue base (64 bit) */
#define FERRY_NVME_REG_ACQ 0x30     /**< Admin Completion Queue base (64 bit) */
#define FERRY_NVME_REG_DBS 0x1000   /**< first doorbell: SQ0TDBL */
/** @} */

/** @name CAP fields
 * @{ */
#define FERRY_NVME_CAP_MQES(cap) ((uint32_t)((cap) & 0xffff))         /**< max entries, 0's based */
#define FERRY_NVME_CAP_CQR (1ull << 16)                               /**< contiguous queues required */
#define FERRY_NVME_CAP_TO(cap) ((uint32_t)(((cap) >> 24) & 0xff))     /**< timeout, 500 ms units */
#define FERRY_NVME_CAP_DSTRD(cap) ((uint32_t)(((cap) >> 32) & 0xf))   /**< doorbell stride */
#define FERRY_NVME_CAP_CSS_NVM (1ull << 37)                           /**< NVM command set */
#define FERRY_NVME_CAP_CSS_ADMIN_ONLY (1ull << 44)                    /**< no I/O command set */
#define FERRY_NVME_CAP_MPSMIN(cap) ((uint32_t)(((cap) >> 48) & 0xf))  /**< 2^(12+n) bytes */
#define FERRY_NVME_CAP_MPSMAX(cap) ((uint32_t)(((cap) >> 52) & 0xf))  /**< 2^(12+n) bytes */
/** @} */

/** @name CC fields
 * @{ */
#define FERRY_NVME_CC_EN (1u << 0)                                 /**< enable */
#define FERRY_NVME_CC_CSS(cc) (((cc) >> 4) & 0x7)                  /**< I/O command set */
#define FERRY_NVME_CC_MPS(cc) (((cc) >> 7) & 0xf)                  /**< memory page size */
#define FERRY_NVME_CC_AMS(cc) (((cc) >> 11) & 0x7)                 /**< arbitration */
#define FERRY_NVME_CC_SHN(cc) (((cc) >> 14) & 0x3)                 /**< shutdown notification */
#define FERRY_NVME_CC_IOSQES(cc) (((cc) >> 16) & 0xf)              /**< log2 SQ entry size */
#define FERRY_NVME_CC_IOCQES(cc) (((cc) >> 20) & 0xf)              /**< log2 CQ entry size */
#define FERRY_NVME_CC_CSS_NVM 0u                                   /**< CSS: NVM command set */
#define FERRY_NVME_CC_CSS_ADMIN 7u                                 /**< CSS: admin only */
#define FERRY_NVME_CC_SHN_NONE 0u                                  /**< no notification */
#define FERRY_NVME_CC_SHN_NORMAL 1u                                /**< normal shutdown */
#define FERRY_NVME_CC_SHN_ABRUPT 2u                                /**< abrupt shutdown */
/** @} */

/** @name CSTS fields
 * @{ */
#define FERRY_NVME_CSTS_RDY (1u << 0)              /**< ready */
#define FERRY_NVME_CSTS_CFS (1u << 1)              /**< controller fatal status */
#define FERRY_NVME_CSTS_SHST_SHIFT 2               /**< shutdown status position */
#define FERRY_NVME_CSTS_SHST_MASK (3u << 2)        /**< shutdown status mask */
#define FERRY_NVME_CSTS_SHST_NORMAL 0u             /**< SHST: normal operation */
#define FERRY_NVME_CSTS_SHST_OCCURRING 1u          /**< SHST: shutdown processing */
#define FERRY_NVME_CSTS_SHST_COMPLETE 2u           /**< SHST: shutdown complete */
/** @} */

/** @name AQA fields (0's based sizes)
 * @{ */
#define FERRY_NVME_AQA_ASQS(aqa) ((aqa) & 0xfff)         /**< admin SQ size - 1 */
#define FERRY_NVME_AQA_ACQS(aqa) (((aqa) >> 16) & 0xfff) /**< admin CQ size - 1 */
/** @} */

/** Version register value of NVMe 1.4. */
#define FERRY_NVME_VS_1_4 0x00010400u
/** Version register value of NVMe 2.0. */
#define FERRY_NVME_VS_2_0 0x00020000u

/** @name Admin opcodes
 * @{ */
#define FERRY_NVME_ADM_DELETE_SQ 0x00        /**< Delete I/O Submission Queue */
#define FERRY_NVME_ADM_CREATE_SQ 0x01        /**< Create I/O Submission Queue */
#define FERRY_NVME_ADM_GET_LOG_PAGE 0x02     /**< Get Log Page */
#define FERRY_NVME_ADM_DELETE_CQ 0x04        /**< Delete I/O Completion Queue */
#define FERRY_NVME_ADM_CREATE_CQ 0x05        /**< Create I/O Completion Queue */
#define FERRY_NVME_ADM_IDENTIFY 0x06         /**< Identify */
#define FERRY_NVME_ADM_ABORT 0x08            /**< Abort */
#define FERRY_NVME_ADM_SET_FEATURES 0x09     /**< Set Features */
#define FERRY_NVME_ADM_GET_FEATURES 0x0a     /**< Get Features */
#define FERRY_NVME_ADM_ASYNC_EVENT 0x0c      /**< Asynchronous Event Request */
#define FERRY_NVME_ADM_KEEP_ALIVE 0x18       /**< Keep Alive */
/** @} */

/** @name NVM command set opcodes
 * @{ */
#define FERRY_NVME_CMD_FLUSH 0x00            /**< Flush */
#define FERRY_NVME_CMD_WRITE 0x01            /**< Write */
#define FERRY_NVME_CMD_READ 0x02             /**< Read */
#define FERRY_NVME_CMD_COMPARE 0x05          /**< Compare */
#define FERRY_NVME_CMD_WRITE_ZEROES 0x08     /**< Write Zeroes */
#define FERRY_NVME_CMD_DSM 0x09              /**< Dataset Management */
/** @} */

/** @name Status code types (SCT)
 * @{ */
#define FERRY_NVME_SCT_GENERIC 0x0           /**< Generic Command Status */
#define FERRY_NVME_SCT_COMMAND 0x1           /**< Command Specific Status */
#define FERRY_NVME_SCT_MEDIA 0x2             /**< Media and Data Integrity Errors */
#define FERRY_NVME_SCT_PATH 0x3              /**< Path Related Status */
/** @} */

/** @name Generic command status (SCT 0)
 * @{ */
#define FERRY_NVME_SC_SUCCESS 0x00           /**< Successful Completion */
#define FERRY_NVME_SC_INVALID_OPCODE 0x01    /**< Invalid Command Opcode */
#define FERRY_NVME_SC_INVALID_FIELD 0x02     /**< Invalid Field in Command */
#define FERRY_NVME_SC_CID_CONFLICT 0x03      /**< Command ID Conflict */
#define FERRY_NVME_SC_DATA_XFER_ERROR 0x04   /**< Data Transfer Error */
#define FERRY_NVME_SC_INTERNAL 0x06          /**< Internal Error */
#define FERRY_NVME_SC_ABORT_REQUESTED 0x07   /**< Command Abort Requested */
#define FERRY_NVME_SC_ABORTED_SQ_DELETION 0x08 /**< Command Aborted due to SQ Deletion */
#define FERRY_NVME_SC_INVALID_NS 0x0b       /**< Invalid Namespace or Format */
#define FERRY_NVME_SC_CMD_SEQ_ERROR 0x0c     /**< Command Sequence Error */
#define FERRY_NVME_SC_INVALID_SGL_SEG 0x0d  /**< Invalid SGL Segment Descriptor */
#define FERRY_NVME_SC_INVALID_SGL_NUM 0x0e  /**< Invalid Number of SGL Descriptors */
#define FERRY_NVME_SC_DATA_SGL_LEN 0x0f     /**< Data SGL Length Invalid */
#define FERRY_NVME_SC_MD_SGL_LEN 0x10       /**< Metadata SGL Length Invalid */
#define FERRY_NVME_SC_SGL_TYPE 0x11         /**< SGL Descriptor Type Invalid */
#define FERRY_NVME_SC_PRP_OFFSET 0x13       /**< PRP Offset Invalid */
#define FERRY_NVME_SC_SGL_OFFSET 0x16       /**< SGL Offset Invalid */
#define FERRY_NVME_SC_LBA_RANGE 0x80        /**< LBA Out of Range */
#define FERRY_NVME_SC_NS_NOT_READY 0x82      /**< Namespace Not Ready */
/** @} */

/** @name Command specific status (SCT 1)
 * @{ */
#define FERRY_NVME_SC_CQ_INVALID 0x00        /**< Completion Queue Invalid */
#define FERRY_NVME_SC_INVALID_QID 0x01       /**< Invalid Queue Identifier */
#define FERRY_NVME_SC_INVALID_QSIZE 0x02     /**< Invalid Queue Size */
#define FERRY_NVME_SC_ABORT_LIMIT 0x03       /**< Abort Command Limit Exceeded */
#define FERRY_NVME_SC_AER_LIMIT 0x05         /**< Asynchronous Event Request Limit Exceeded */
#define FERRY_NVME_SC_INVALID_VECTOR 0x08    /**< Invalid Interrupt Vector */
#define FERRY_NVME_SC_INVALID_LOG_PAGE 0x09  /**< Invalid Log Page */
#define FERRY_NVME_SC_INVALID_QUEUE_DELETION 0x0c /**< Invalid Queue Deletion */
#define FERRY_NVME_SC_FEATURE_NOT_SAVEABLE 0x0d /**< Feature Identifier Not Saveable */
#define FERRY_NVME_SC_FEATURE_NOT_CHANGEABLE 0x0e /**< Feature Not Changeable */
/** @} */

/** @name Media and data integrity errors (SCT 2)
 * @{ */
#define FERRY_NVME_SC_WRITE_FAULT 0x80       /**< Write Fault */
#define FERRY_NVME_SC_UNRECOVERED_READ 0x81  /**< Unrecovered Read Error */
#define FERRY_NVME_SC_GUARD_CHECK 0x82       /**< End-to-end Guard Check Error */
#define FERRY_NVME_SC_APPTAG_CHECK 0x83      /**< End-to-end Application Tag Check Error */
#define FERRY_NVME_SC_REFTAG_CHECK 0x84      /**< End-to-end Reference Tag Check Error */
#define FERRY_NVME_SC_COMPARE_FAILURE 0x85   /**< Compare Failure */
/** @} */

/** Build a 15-bit status (CQE DW3 bits 31:17 shifted down by one): SCT << 8 | SC. */
#define FERRY_NVME_STATUS(sct, sc) ((uint16_t)(((sct) << 8) | (sc)))
/** Do Not Retry bit in a 15-bit status. */
#define FERRY_NVME_STATUS_DNR (1u << 14)
/** More bit in a 15-bit status. */
#define FERRY_NVME_STATUS_MORE (1u << 13)
/** SCT of a 15-bit status. */
#define FERRY_NVME_STATUS_SCT(st) (((st) >> 8) & 0x7)
/** SC of a 15-bit status. */
#define FERRY_NVME_STATUS_SC(st) ((st) & 0xff)

/** @name Feature identifiers
 * @{ */
#define FERRY_NVME_FEAT_ARBITRATION 0x01     /**< Arbitration */
#define FERRY_NVME_FEAT_POWER_MGMT 0x02      /**< Power Management */
#define FERRY_NVME_FEAT_TEMP_THRESHOLD 0x04  /**< Temperature Threshold */
#define FERRY_NVME_FEAT_ERROR_RECOVERY 0x05  /**< Error Recovery */
#define FERRY_NVME_FEAT_VOLATILE_WC 0x06     /**< Volatile Write Cache */
#define FERRY_NVME_FEAT_NUM_QUEUES 0x07      /**< Number of Queues */
#define FERRY_NVME_FEAT_IRQ_COALESCING 0x08  /**< Interrupt Coalescing */
#define FERRY_NVME_FEAT_IRQ_CONFIG 0x09      /**< Interrupt Vector Configuration */
#define FERRY_NVME_FEAT_WRITE_ATOMICITY 0x0a /**< Write Atomicity Normal */
#define FERRY_NVME_FEAT_ASYNC_EVENT 0x0b     /**< Asynchronous Event Configuration */
#define FERRY_NVME_FEAT_KEEP_ALIVE 0x0f      /**< Keep Alive Timer */
/** @} */

/** @name Log page identifiers
 * @{ */
#define FERRY_NVME_LOG_ERROR 0x01            /**< Error Information */
#define FERRY_NVME_LOG_SMART 0x02            /**< SMART / Health Information */
#define FERRY_NVME_LOG_FW_SLOT 0x03          /**< Firmware Slot Information */
#define FERRY_NVME_LOG_CHANGED_NS 0x04       /**< Changed Namespace List */
/** @} */

/** @name Identify CNS values
 * @{ */
#define FERRY_NVME_CNS_NS 0x00               /**< Identify Namespace data structure of the NSID */
#define FERRY_NVME_CNS_CTRLR 0x01            /**< Identify Controller data structure */
#define FERRY_NVME_CNS_ACTIVE_NS_LIST 0x02   /**< Active NSID list (NSIDs above the given one) */
#define FERRY_NVME_CNS_NS_DESC_LIST 0x03     /**< Namespace Identification Descriptors */
/** @} */

/** @name Asynchronous events (completion DW0 of an Asynchronous Event Request)
 * @{ */
#define FERRY_NVME_AER_TYPE_ERROR 0x0        /**< event type: error status */
#define FERRY_NVME_AER_TYPE_SMART 0x1        /**< event type: SMART / health status */
#define FERRY_NVME_AER_TYPE_NOTICE 0x2       /**< event type: notice */
#define FERRY_NVME_AER_ERR_INVALID_DB 0x00        /**< write to an invalid doorbell register */
#define FERRY_NVME_AER_ERR_INVALID_DB_VALUE 0x01  /**< invalid doorbell write value */
#define FERRY_NVME_AER_NOTICE_NS_CHANGED 0x00     /**< namespace attribute changed */
/** Build completion DW0: type, info, log page. */
#define FERRY_NVME_AER_DW0(type, info, lid) \
	((uint32_t)(type) | ((uint32_t)(info) << 8) | ((uint32_t)(lid) << 16))
/** Async event configuration bit: namespace attribute notices. */
#define FERRY_NVME_AEC_NS_ATTR (1u << 8)
/** @} */

/** @name Namespace identification descriptor types
 * @{ */
#define FERRY_NVME_NIDT_EUI64 0x1            /**< IEEE Extended Unique Identifier (8 bytes) */
#define FERRY_NVME_NIDT_NGUID 0x2            /**< Namespace Globally Unique Identifier (16 bytes) */
#define FERRY_NVME_NIDT_UUID 0x3             /**< Namespace UUID (16 bytes) */
#define FERRY_NVME_NIDT_CSI 0x4              /**< Command Set Identifier (1 byte) */
/** @} */

/** @name SGL descriptor types (identifier bits 7:4) and subtypes (bits 3:0)
 * @{ */
#define FERRY_NVME_SGL_DATA_BLOCK 0x0        /**< type: Data Block */
#define FERRY_NVME_SGL_BIT_BUCKET 0x1        /**< type: Bit Bucket */
#define FERRY_NVME_SGL_SEGMENT 0x2           /**< type: Segment (points to more descriptors) */
#define FERRY_NVME_SGL_LAST_SEGMENT 0x3      /**< type: Last Segment */
#define FERRY_NVME_SGL_KEYED_DATA_BLOCK 0x4  /**< type: Keyed Data Block (RDMA) */
#define FERRY_NVME_SGL_TRANSPORT_DATA_BLOCK 0x5 /**< type: Transport SGL Data Block */
#define FERRY_NVME_SGL_SUBTYPE_ADDRESS 0x0   /**< subtype: the address field is an address */
#define FERRY_NVME_SGL_SUBTYPE_OFFSET 0x1    /**< subtype: the address is an offset */
/** Build an SGL identifier byte. */
#define FERRY_NVME_SGL_ID(type, subtype) ((uint8_t)(((type) << 4) | (subtype)))
/** @} */

/** @name SQE flags byte (CDW0 bits 15:8)
 * @{ */
#define FERRY_NVME_FLAGS_FUSE_MASK 0x03 /**< fused operation */
#define FERRY_NVME_FLAGS_PSDT_SHIFT 6   /**< PRP or SGL for data transfer */
#define FERRY_NVME_PSDT_PRP 0x0         /**< PRPs */
#define FERRY_NVME_PSDT_SGL_MPTR_CONTIG 0x1 /**< SGLs, MPTR is a contiguous buffer address */
#define FERRY_NVME_PSDT_SGL_MPTR_SGL 0x2    /**< SGLs, MPTR is an SGL segment address */
/** @} */

/** SGL descriptor (16 bytes). */
struct ferry_nvme_sgl_desc {
	uint64_t address; /**< address (data block, bit bucket: ignored) or segment address */
	uint32_t length;  /**< bytes */
	uint8_t rsvd[3];  /**< reserved (keyed data block: key bytes) */
	uint8_t id;       /**< type << 4 | subtype */
};

/** PRP pair of the data pointer. */
struct ferry_nvme_prp_pair {
	uint64_t prp1; /**< first PRP entry (may carry a page offset) */
	uint64_t prp2; /**< second entry or PRP list pointer */
};

/** Data pointer: PRPs or one SGL descriptor, chosen by the PSDT bits of the flags byte. */
union ferry_nvme_dptr {
	struct ferry_nvme_prp_pair prp; /**< PSDT = 00b */
	struct ferry_nvme_sgl_desc sgl; /**< PSDT = 01b or 10b */
};

/** Submission queue entry (64 bytes). */
struct ferry_nvme_sqe {
	uint8_t opcode;             /**< CDW0 7:0 */
	uint8_t flags;              /**< CDW0 15:8: FUSE 1:0, PSDT 7:6 */
	uint16_t cid;               /**< command identifier */
	uint32_t nsid;              /**< namespace identifier */
	uint32_t cdw2;              /**< command specific */
	uint32_t cdw3;              /**< command specific */
	uint64_t mptr;              /**< metadata pointer */
	union ferry_nvme_dptr dptr; /**< data pointer */
	uint32_t cdw10;             /**< command specific */
	uint32_t cdw11;             /**< command specific */
	uint32_t cdw12;             /**< command specific */
	uint32_t cdw13;             /**< command specific */
	uint32_t cdw14;             /**< command specific */
	uint32_t cdw15;             /**< command specific */
};

/** Completion queue entry (16 bytes). */
struct ferry_nvme_cqe {
	uint32_t dw0;    /**< command specific result */
	uint32_t dw1;    /**< command specific result */
	uint16_t sqhd;   /**< SQ head pointer at completion */
	uint16_t sqid;   /**< SQ the command came from */
	uint16_t cid;    /**< command identifier */
	uint16_t status; /**< bit 0 phase tag, bits 15:1 status (FERRY_NVME_STATUS() << 1) */
};

/** LBA format of Identify Namespace. */
struct ferry_nvme_lbaf {
	uint16_t ms;   /**< metadata bytes per LBA */
	uint8_t lbads; /**< log2 of the LBA data size */
	uint8_t rp;    /**< relative performance (bits 1:0) */
};

/** Power state descriptor (32 bytes). */
struct ferry_nvme_psd {
	uint16_t mp;       /**< maximum power, centiwatts */
	uint8_t rsvd2;     /**< reserved */
	uint8_t flags;     /**< MXPS bit 0, NOPS bit 1 */
	uint32_t enlat;    /**< entry latency, us */
	uint32_t exlat;    /**< exit latency, us */
	uint8_t rrt;       /**< relative read throughput */
	uint8_t rrl;       /**< relative read latency */
	uint8_t rwt;       /**< relative write throughput */
	uint8_t rwl;       /**< relative write latency */
	uint8_t rsvd16[16]; /**< idle/active power, reserved */
};

/** @name Offsets into ::ferry_nvme_id_ctrlr::nvmf (Identify Controller byte 1792 + offset)
 * @{ */
#define FERRY_NVME_ID_NVMF_IOCCSZ 0 /**< 4 bytes: I/O queue command capsule size, 16-byte units */
#define FERRY_NVME_ID_NVMF_IORCSZ 4 /**< 4 bytes: I/O queue response capsule size, 16-byte units */
#define FERRY_NVME_ID_NVMF_ICDOFF 8 /**< 2 bytes: in-capsule data offset, 16-byte units */
#define FERRY_NVME_ID_NVMF_FCATT 10 /**< 1 byte: bit 0 static controller model (0: dynamic) */
#define FERRY_NVME_ID_NVMF_MSDBD 11 /**< 1 byte: max SGL data block descriptors (0: no limit) */
#define FERRY_NVME_ID_NVMF_OFCS 12  /**< 2 bytes: optional fabrics commands, bit 0 Disconnect */
/** @} */

/** Identify Controller data structure (CNS 01h, 4096 bytes). */
struct ferry_nvme_id_ctrlr {
	uint16_t vid;          /**< PCI vendor ID */
	uint16_t ssvid;        /**< PCI subsystem vendor ID */
	char sn[20];           /**< serial number, ASCII, space padded */
	char mn[40];           /**< model number, ASCII, space padded */
	char fr[8];            /**< firmware revision, ASCII, space padded */
	uint8_t rab;           /**< recommended arbitration burst */
	uint8_t ieee[3];       /**< IEEE OUI */
	uint8_t cmic;          /**< multi-path I/O and namespace sharing */
	uint8_t mdts;          /**< maximum data transfer size, 2^n min pages; 0 = none */
	uint16_t cntlid;       /**< controller ID */
	uint32_t ver;          /**< version (as the VS register) */
	uint32_t rtd3r;        /**< RTD3 resume latency */
	uint32_t rtd3e;        /**< RTD3 entry latency */
	uint32_t oaes;         /**< optional async events: bit 8 namespace attribute notices */
	uint32_t ctratt;       /**< controller attributes */
	uint16_t rrls;         /**< read recovery levels */
	uint8_t rsvd102[9];    /**< reserved */
	uint8_t cntrltype;     /**< 1 = I/O controller, 2 = discovery controller, 3 = admin */
	uint8_t fguid[16];     /**< FRU GUID */
	uint16_t crdt[3];      /**< command retry delay times */
	uint8_t rsvd134[119];  /**< reserved */
	uint8_t nvmsr;         /**< NVM subsystem report */
	uint8_t vwci;          /**< VPD write cycle information */
	uint8_t mec;           /**< management endpoint capabilities */
	uint16_t oacs;         /**< optional admin command support */
	uint8_t acl;           /**< abort command limit, 0's based */
	uint8_t aerl;          /**< async event request limit, 0's based */
	uint8_t frmw;          /**< firmware updates: bit 0 slot 1 read-only, 3:1 number of slots */
	uint8_t lpa;           /**< log page attributes */
	uint8_t elpe;          /**< error log page entries, 0's based */
	uint8_t npss;          /**< number of power states, 0's based */
	uint8_t avscc;         /**< admin vendor specific command configuration */
	uint8_t apsta;         /**< autonomous power state transitions */
	uint16_t wctemp;       /**< warning composite temperature threshold, K */
	uint16_t cctemp;       /**< critical composite temperature threshold, K */
	uint8_t rsvd270[50];   /**< MTFA .. FWUG, unused by Ferry */
	uint16_t kas;          /**< keep alive support: granularity in 100 ms units, 0 = none */
	uint8_t rsvd322[190];  /**< HCTMA .. reserved, unused by Ferry */
	uint8_t sqes;          /**< SQ entry size: required 3:0, max 7:4 (log2) */
	uint8_t cqes;          /**< CQ entry size: required 3:0, max 7:4 (log2) */
	uint16_t maxcmd;       /**< maximum outstanding commands */
	uint32_t nn;           /**< number of namespaces (highest valid NSID) */
	uint16_t oncs;         /**< optional NVM commands: bit 0 compare, 2 DSM, 3 write zeroes */
	uint16_t fuses;        /**< fused operations */
	uint8_t fna;           /**< format NVM attributes */
	uint8_t vwc;           /**< volatile write cache: bit 0 present */
	uint16_t awun;         /**< atomic write unit normal */
	uint16_t awupf;        /**< atomic write unit power fail */
	uint8_t icsvscc;       /**< I/O vendor specific command configuration */
	uint8_t nwpc;          /**< namespace write protection */
	uint16_t acwu;         /**< atomic compare & write unit */
	uint16_t ocfs;         /**< optional copy formats */
	uint32_t sgls;         /**< SGL support: 1:0 support, 2 keyed, 16 bit bucket, 20 offset,
				    21 transport SGL data block */
	uint32_t mnan;         /**< maximum number of allowed namespaces */
	uint8_t rsvd544[224];  /**< reserved */
	char subnqn[256];      /**< NVM subsystem NQN, NUL terminated */
	uint8_t rsvd1024[768]; /**< reserved */
	/** NVMe over Fabrics attributes (bytes 2047:1792, reserved over PCIe), little endian at
	 *  the FERRY_NVME_ID_NVMF_* offsets into this array. */
	uint8_t nvmf[256];
	struct ferry_nvme_psd psd[32]; /**< power state descriptors */
	uint8_t vs[1024];      /**< vendor specific */
};

/** Identify Namespace data structure (CNS 00h, 4096 bytes). */
struct ferry_nvme_id_ns {
	uint64_t nsze;        /**< namespace size, LBAs */
	uint64_t ncap;        /**< namespace capacity, LBAs */
	uint64_t nuse;        /**< namespace utilisation, LBAs */
	uint8_t nsfeat;       /**< namespace features: bit 0 thin provisioning */
	uint8_t nlbaf;        /**< number of LBA formats, 0's based */
	uint8_t flbas;        /**< formatted LBA size: 3:0 format, bit 4 extended metadata */
	uint8_t mc;           /**< metadata capabilities */
	uint8_t dpc;          /**< end-to-end data protection capabilities */
	uint8_t dps;          /**< end-to-end data protection type settings */
	uint8_t nmic;         /**< multi-path I/O and sharing */
	uint8_t rescap;       /**< reservation capabilities */
	uint8_t fpi;          /**< format progress indicator */
	uint8_t dlfeat;       /**< deallocate logical block features */
	uint16_t nawun;       /**< atomic write unit normal */
	uint16_t nawupf;      /**< atomic write unit power fail */
	uint16_t nacwu;       /**< atomic compare & write unit */
	uint16_t nabsn;       /**< atomic boundary size normal */
	uint16_t nabo;        /**< atomic boundary offset */
	uint16_t nabspf;      /**< atomic boundary size power fail */
	uint16_t noiob;       /**< optimal I/O boundary */
	uint8_t nvmcap[16];   /**< NVM capacity, bytes */
	uint8_t rsvd64[40];   /**< NPWG .. reserved */
	uint8_t nguid[16];    /**< namespace globally unique identifier */
	uint8_t eui64[8];     /**< IEEE extended unique identifier */
	struct ferry_nvme_lbaf lbaf[64]; /**< LBA formats */
	uint8_t vs[3712];     /**< vendor specific */
};

/** Namespace identification descriptor header (CNS 03h list element). */
struct ferry_nvme_ns_id_desc {
	uint8_t nidt;    /**< FERRY_NVME_NIDT_* */
	uint8_t nidl;    /**< length of the identifier that follows */
	uint8_t rsvd[2]; /**< reserved */
};

/** Error information log entry (log page 01h, 64 bytes each). */
struct ferry_nvme_error_log {
	uint64_t error_count; /**< unique, incrementing; 0 = invalid entry */
	uint16_t sqid;        /**< submission queue */
	uint16_t cid;         /**< command identifier */
	uint16_t status;      /**< status field as in the CQE (phase bit included) */
	uint16_t pel;         /**< parameter error location: byte 7:0, bit 10:8 */
	uint64_t lba;         /**< first LBA of the failure */
	uint32_t nsid;        /**< namespace */
	uint8_t vs;           /**< vendor specific log page available */
	uint8_t trtype;       /**< transport type */
	uint8_t rsvd30[2];    /**< reserved */
	uint64_t cs;          /**< command specific information */
	uint16_t trtype_spec; /**< transport type specific */
	uint8_t rsvd42[22];   /**< reserved */
};

/** SMART / health information log (log page 02h, 512 bytes). 128-bit counters are lo, hi. */
struct ferry_nvme_smart_log {
	uint8_t critical_warning;     /**< critical warning bits */
	uint8_t temperature[2];       /**< composite temperature, K (unaligned in the spec) */
	uint8_t avail_spare;          /**< available spare, percent */
	uint8_t avail_spare_thresh;   /**< available spare threshold, percent */
	uint8_t percent_used;         /**< percentage used */
	uint8_t endgrp_crit_warning;  /**< endurance group critical warning summary */
	uint8_t rsvd7[25];            /**< reserved */
	uint64_t data_units_read[2];  /**< 1000 * 512-byte units read */
	uint64_t data_units_written[2]; /**< 1000 * 512-byte units written */
	uint64_t host_read_cmds[2];   /**< read commands completed */
	uint64_t host_write_cmds[2];  /**< write commands completed */
	uint64_t ctrl_busy_time[2];   /**< minutes busy */
	uint64_t power_cycles[2];     /**< power cycles */
	uint64_t power_on_hours[2];   /**< power-on hours */
	uint64_t unsafe_shutdowns[2]; /**< unsafe shutdowns */
	uint64_t media_errors[2];     /**< unrecovered data integrity errors */
	uint64_t num_err_log_entries[2]; /**< error information log entries over the lifetime */
	uint8_t rsvd192[320];         /**< temperature times, sensors, reserved */
};

/** Firmware slot information log (log page 03h, 512 bytes). */
struct ferry_nvme_fw_slot_log {
	uint8_t afi;         /**< active firmware info: bits 2:0 active slot, 6:4 slot at next reset */
	uint8_t rsvd1[7];    /**< reserved */
	char frs[7][8];      /**< firmware revision of slots 1..7, ASCII, space padded; zero if empty */
	uint8_t rsvd64[448]; /**< reserved */
};

/** Changed namespace list (log page 04h, 4096 bytes). */
struct ferry_nvme_changed_ns_list {
	uint32_t nsid[1024]; /**< changed NSIDs, zero-terminated; nsid[0] = 0xffffffff: overflow */
};

/** Dataset Management range (16 bytes). */
struct ferry_nvme_dsm_range {
	uint32_t attributes; /**< context attributes */
	uint32_t nlb;        /**< length in logical blocks (not 0's based) */
	uint64_t slba;       /**< starting LBA */
};

FERRY_END_DECLS

#endif /* FERRY_NVME_SPEC_H */
