/**
 * @file ferry/nvmf_spec.h
 * @brief The parts of the NVMe over Fabrics specification (1.1, and base 2.0 where it took
 * them over) that Ferry's target and host use: the Fabrics command set (Connect, Property
 * Get/Set, Disconnect), the Connect data, the Fabrics status codes, and the Discovery log
 * page. Transport bindings have their own headers (ferry/nvme_tcp_spec.h).
 *
 * Field names follow the specification's mnemonics (lower case); every multi-byte field is
 * little endian on the wire. Layouts are checked with static assertions in the library.
 */
#ifndef FERRY_NVMF_SPEC_H
#define FERRY_NVMF_SPEC_H

#include <stdint.h>
#include <ferry/export.h>
#include <ferry/nvme_spec.h>

FERRY_BEGIN_DECLS

/** Opcode of every Fabrics command (the command type is in fctype, byte 4). */
#define FERRY_NVMF_OPC_FABRICS 0x7f

/** @name Fabrics command types (fctype)
 * @{ */
#define FERRY_NVMF_FCTYPE_PROPERTY_SET 0x00 /**< Property Set */
#define FERRY_NVMF_FCTYPE_CONNECT 0x01      /**< Connect */
#define FERRY_NVMF_FCTYPE_PROPERTY_GET 0x04 /**< Property Get */
#define FERRY_NVMF_FCTYPE_AUTH_SEND 0x05    /**< Authentication Send (not supported) */
#define FERRY_NVMF_FCTYPE_AUTH_RECV 0x06    /**< Authentication Receive (not supported) */
#define FERRY_NVMF_FCTYPE_DISCONNECT 0x08   /**< Disconnect */
/** @} */

/** @name Fabrics command specific status codes (status code type 1)
 * @{ */
#define FERRY_NVMF_SC_CONNECT_INCOMPATIBLE_FORMAT 0x80 /**< record format not supported */
#define FERRY_NVMF_SC_CONNECT_CTRL_BUSY 0x81           /**< controller busy */
#define FERRY_NVMF_SC_CONNECT_INVALID_PARAM 0x82       /**< invalid parameter (IATTR/IPO say which) */
#define FERRY_NVMF_SC_CONNECT_RESTART_DISC 0x83        /**< restart discovery */
#define FERRY_NVMF_SC_CONNECT_INVALID_HOST 0x84        /**< host not allowed */
#define FERRY_NVMF_SC_INVALID_QUEUE_TYPE 0x85          /**< invalid queue type */
/** @} */

/* A Fabrics command out of order (Connect on a connected queue, anything before Connect)
 * gets the generic Command Sequence Error (FERRY_NVME_SC_CMD_SEQ_ERROR); an unknown fctype
 * gets Invalid Field in Command. */

/** @name Connect "invalid parameter" response: cqe dw0 bits 15:0 IPO (byte offset of the
 * field), bit 16 IATTR (where the field is)
 * @{ */
#define FERRY_NVMF_IATTR_CMD 0  /**< the offending field is in the Connect command */
#define FERRY_NVMF_IATTR_DATA 1 /**< the offending field is in the Connect data */
/** @} */

/** Fabrics command, generic view (64 bytes; fctype at byte 4). */
struct ferry_nvmf_cmd {
	uint8_t opcode;     /**< FERRY_NVMF_OPC_FABRICS */
	uint8_t flags;      /**< PSDT etc. as in an SQE */
	uint16_t cid;       /**< command identifier */
	uint8_t fctype;     /**< FERRY_NVMF_FCTYPE_* */
	uint8_t rsvd5[19];  /**< reserved */
	union ferry_nvme_dptr dptr; /**< data pointer (Connect: the 1024-byte Connect data) */
	uint8_t specific[24]; /**< command type specific (bytes 40..63) */
};

/** Connect command (64 bytes). */
struct ferry_nvmf_connect_cmd {
	uint8_t opcode;     /**< FERRY_NVMF_OPC_FABRICS */
	uint8_t flags;      /**< PSDT */
	uint16_t cid;       /**< command identifier */
	uint8_t fctype;     /**< FERRY_NVMF_FCTYPE_CONNECT */
	uint8_t rsvd5[19];  /**< reserved */
	union ferry_nvme_dptr dptr; /**< the Connect data (1024 bytes) */
	uint16_t recfmt;    /**< record format, 0 */
	uint16_t qid;       /**< queue ID: 0 admin, >= 1 I/O */
	uint16_t sqsize;    /**< submission queue size, 0's based */
	uint8_t cattr;      /**< connect attributes: bits 1:0 priority class, bit 2 disable SQ flow
				 control (FERRY_NVMF_CATTR_*) */
	uint8_t rsvd47;     /**< reserved */
	uint32_t kato;      /**< keep alive timeout, ms (admin queue only; 0 = disabled) */
	uint8_t rsvd52[12]; /**< reserved */
};

/** @name Connect attributes (::ferry_nvmf_connect_cmd::cattr)
 * @{ */
#define FERRY_NVMF_CATTR_PRIORITY_MASK 0x03u /**< priority class (weighted round robin) */
#define FERRY_NVMF_CATTR_DISABLE_SQFLOW 0x04u /**< SQ flow control disabled: SQHD is not
						    maintained for this queue */
/** @} */

/** Connect response: cqe dw0 bits 15:0 carry the controller ID (Connect of the admin queue). */
#define FERRY_NVMF_CONNECT_RSP_CNTLID(dw0) ((uint16_t)((dw0) & 0xffffu))

/** Connect data (1024 bytes). */
struct ferry_nvmf_connect_data {
	uint8_t hostid[16];    /**< host identifier */
	uint16_t cntlid;       /**< controller ID: 0xffff dynamic (admin; 0xfffe = static model
				    "any", refused by a dynamic-model subsystem), the admin's (I/O) */
	uint8_t rsvd18[238];   /**< reserved */
	char subnqn[256];      /**< subsystem NQN, NUL terminated */
	char hostnqn[256];     /**< host NQN, NUL terminated */
	uint8_t rsvd768[256];  /**< reserved */
};

/** cntlid of a Connect that asks the subsystem to pick the controller ID. */
#define FERRY_NVMF_CNTLID_DYNAMIC 0xffff

/** Property Set command (64 bytes). */
struct ferry_nvmf_prop_set_cmd {
	uint8_t opcode;     /**< FERRY_NVMF_OPC_FABRICS */
	uint8_t flags;      /**< reserved */
	uint16_t cid;       /**< command identifier */
	uint8_t fctype;     /**< FERRY_NVMF_FCTYPE_PROPERTY_SET */
	uint8_t rsvd5[35];  /**< reserved */
	uint8_t attrib;     /**< bits 2:0: size, 0 = 4 bytes, 1 = 8 bytes */
	uint8_t rsvd41[3];  /**< reserved */
	uint32_t offset;    /**< property offset (a controller register offset) */
	uint64_t value;     /**< value to write */
	uint8_t rsvd56[8];  /**< reserved */
};

/** Property Get command (64 bytes); the value comes back in cqe dw0 (and dw1 for 8 bytes). */
struct ferry_nvmf_prop_get_cmd {
	uint8_t opcode;     /**< FERRY_NVMF_OPC_FABRICS */
	uint8_t flags;      /**< reserved */
	uint16_t cid;       /**< command identifier */
	uint8_t fctype;     /**< FERRY_NVMF_FCTYPE_PROPERTY_GET */
	uint8_t rsvd5[35];  /**< reserved */
	uint8_t attrib;     /**< bits 2:0: size, 0 = 4 bytes, 1 = 8 bytes */
	uint8_t rsvd41[3];  /**< reserved */
	uint32_t offset;    /**< property offset */
	uint8_t rsvd48[16]; /**< reserved */
};

/** Log page identifier of the Discovery log page. */
#define FERRY_NVMF_LOG_DISCOVERY 0x70

/** The well-known discovery subsystem NQN. */
#define FERRY_NVMF_DISCOVERY_NQN "nqn.2014-08.org.nvmexpress.discovery"

/** @name Discovery log entry values
 * @{ */
#define FERRY_NVMF_TRTYPE_RDMA 1      /**< trtype: RDMA */
#define FERRY_NVMF_TRTYPE_TCP 3       /**< trtype: TCP */
#define FERRY_NVMF_ADRFAM_IPV4 1      /**< adrfam: IPv4 */
#define FERRY_NVMF_ADRFAM_IPV6 2      /**< adrfam: IPv6 */
#define FERRY_NVMF_SUBTYPE_DISCOVERY_REFERRAL 1 /**< subtype: a discovery subsystem (referral) */
#define FERRY_NVMF_SUBTYPE_NVME 2     /**< subtype: an NVM subsystem */
#define FERRY_NVMF_SUBTYPE_DISCOVERY_CURRENT 3 /**< subtype: this discovery subsystem */
#define FERRY_NVMF_TREQ_NOT_SPECIFIED 0 /**< treq: secure channel not specified */
#define FERRY_NVMF_TREQ_NOT_REQUIRED 2  /**< treq: secure channel not required */
#define FERRY_NVMF_TCP_SECTYPE_NONE 0   /**< tsas.tcp.sectype: no security */
/** @} */

/** Discovery log page entry (1024 bytes). */
struct ferry_nvmf_disc_entry {
	uint8_t trtype;       /**< transport type */
	uint8_t adrfam;       /**< address family */
	uint8_t subtype;      /**< subsystem type */
	uint8_t treq;         /**< transport requirements */
	uint16_t portid;      /**< port ID */
	uint16_t cntlid;      /**< controller ID (0xffff: dynamic) */
	uint16_t asqsz;       /**< admin max SQ size */
	uint16_t eflags;      /**< entry flags */
	uint8_t rsvd12[20];   /**< reserved */
	char trsvcid[32];     /**< transport service ID (port), space padded ASCII */
	uint8_t rsvd64[192];  /**< reserved */
	char subnqn[256];     /**< subsystem NQN, NUL terminated */
	char traddr[256];     /**< transport address, space padded ASCII */
	uint8_t tsas[256];    /**< transport specific address subtype */
};

/** Discovery log page header (1024 bytes); the entries follow it. */
struct ferry_nvmf_disc_log {
	uint64_t genctr;      /**< generation counter */
	uint64_t numrec;      /**< number of records */
	uint16_t recfmt;      /**< record format, 0 */
	uint8_t rsvd18[1006]; /**< reserved */
};

FERRY_END_DECLS

#endif /* FERRY_NVMF_SPEC_H */
