/**
 * @file ferry/module/nvme_tcp.h
 * @brief The NVMe/TCP PDU codec (module tier): socket-free builders for every PDU Ferry
 * sends and one resumable, validating receive state machine, shared by the target transport,
 * the host (the `nvmf` bdev) and offload NICs that parse the stream as hardware would.
 *
 * Wire layouts are in <ferry/nvme_tcp_spec.h>. Nothing here touches a socket, allocates, or
 * reads a byte it was not given: the code is pure and is fed bytes by its caller.
 *
 * ## Connection parameters
 * ::ferry_nvme_tcp_params holds one side's view of a connection: its role (which PDUs it may
 * receive), and after the ICReq/ICResp exchange the digests and alignments both sides use.
 * Senders pad data to the *receiver's* alignment: H2C PDUs (host → controller) to CPDA, C2H
 * PDUs to HPDA (ferry_nvme_tcp_pdo()).
 *
 * ## Sending
 * The builders write a PDU's header, its header digest and the padding up to PDO into a
 * caller buffer of at least FERRY_NVME_TCP_TX_HDR_MAX bytes and return the bytes written; the
 * caller then sends the data (scatter-gather) and, when the data digest is on and the PDU has
 * data, the data digest (ferry_crc32c_iov() of the data, little endian).
 *
 * ## Receiving
 * A ::ferry_nvme_tcp_rx is fed the byte stream in any split. Two equivalent ways:
 * - **Zero copy**: ferry_nvme_tcp_rx_next() says where the next bytes go (its header buffer,
 *   the padding, the destination the caller gave for the PDU's data, the digest), the caller
 *   receives straight into those iovecs (a socket readv, a NIC that placed them) and reports
 *   how many arrived with ferry_nvme_tcp_rx_advance(), with per-span flags (placed, CRC
 *   already verified) that receive offloads set.
 * - **Copy**: ferry_nvme_tcp_rx_feed() takes a buffer of stream bytes and copies them where
 *   rx_next() would have pointed.
 * Either way the machine stops at each event: a validated header (HEADER: the caller looks at
 * it and, if the PDU carries data, says where the data goes with ferry_nvme_tcp_rx_set_dest()),
 * a finished PDU (DONE: digest result, and whether every data byte was placed / CRC-verified
 * by the NIC), or a protocol error (ERROR: the TermReq's FES and FEI, after which the machine
 * accepts nothing more; send the TermReq with ferry_nvme_tcp_build_term() and close).
 *
 * Event sequence per PDU:
 * - a PDU that carries data (CapsuleCmd with in-capsule data, H2CData, C2HData): HEADER, then
 *   (after ferry_nvme_tcp_rx_set_dest()) DONE;
 * - a PDU without data (ICReq, ICResp, CapsuleResp, R2T, CapsuleCmd without data): DONE only;
 * - a TermReq (the peer is closing): DONE only, its data (the offending header) in
 *   ferry_nvme_tcp_rx_event::term_data. The machine keeps its state: the caller closes.
 * After the DONE of the IC PDU, install the negotiated parameters with
 * ferry_nvme_tcp_rx_set_params() before feeding more bytes.
 *
 * ## Error codes
 * FES 0x01 (invalid header field) and 0x06 (unsupported parameter) carry in FEI the byte
 * offset of the field in the PDU header: 0 type, 1 flags (HDGSTF/DDGSTF not as negotiated,
 * SUCCESS without LAST_PDU or on H2CData), 2 HLEN, 3 PDO, 4 PLEN, 8 PFV, 10 HPDA/CPDA, 11 DGST,
 * 12 MAXH2CDATA, 16 DATAL / R2TL. FES 0x02 (PDU sequence: anything but the IC PDU or a TermReq
 * first, an IC PDU later) and 0x03 (header digest) have FEI 0. FES 0x05 (data transfer limit
 * exceeded, as Linux nvmet and SPDK report it) is used for in-capsule data over max_icd
 * (FEI 4, PLEN) and H2CData/C2HData DATAL over maxh2cdata / max_c2hdata (FEI 16).
 * A data digest mismatch is not fatal (DONE with ddgst_error).
 *
 * ## What is checked
 * Every header field the specification constrains, for the PDU types the role may receive:
 * type (and ICReq/ICResp only first, exactly once), HLEN, PDO (exactly the negotiated
 * alignment), PLEN (consistent with HLEN, digests, padding and the data length), the HDGSTF
 * and DDGSTF flags against what was negotiated, the header digest, PFV/HPDA/CPDA/MAXH2CDATA of
 * the IC PDUs, data lengths against the limits in the parameters (in-capsule data, H2C/C2H
 * payload), LAST_PDU/SUCCESS combinations. What needs per-command state (a CCCID that names
 * no command, an offset outside the command's transfer, a TTAG that names no R2T) is checked
 * by the caller after HEADER, which then reports ferry_nvme_tcp_rx_fail() so that the TermReq
 * carries the right code and offset.
 *
 * ## Logging
 * The codec does not log: an ERROR event, a TermReq received and a data digest error come
 * from the network, so the caller logs each once, rate limited, naming the codes with
 * ferry_nvme_tcp_fes_str() and ferry_nvme_tcp_pdu_str().
 *
 * ## Threading
 * One machine per connection direction, used by one thread at a time.
 */
#ifndef FERRY_MODULE_NVME_TCP_H
#define FERRY_MODULE_NVME_TCP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <ferry/export.h>
#include <ferry/nvme_spec.h>
#include <ferry/nvme_tcp_spec.h>

FERRY_BEGIN_DECLS

/** Which end of the connection a codec instance is. */
enum ferry_nvme_tcp_role {
	FERRY_NVME_TCP_ROLE_CONTROLLER = 1, /**< receives ICReq, CapsuleCmd, H2CData, H2CTermReq */
	FERRY_NVME_TCP_ROLE_HOST = 2,       /**< receives ICResp, CapsuleResp, C2HData, R2T, C2HTermReq */
};

/** One side's connection parameters. Before the IC exchange only @p role and the limits matter. */
struct ferry_nvme_tcp_params {
	enum ferry_nvme_tcp_role role; /**< this side */
	uint8_t hdgst;                 /**< header digests on (after ICReq/ICResp) */
	uint8_t ddgst;                 /**< data digests on */
	uint8_t hpda;                  /**< host PDU data alignment (C2H data padded to (hpda+1)*4) */
	uint8_t cpda;                  /**< controller PDU data alignment (H2C data padded) */
	uint32_t maxh2cdata;           /**< largest H2CData payload (controller: what ICResp
					    offered; 0 = not checked) */
	uint32_t max_icd;              /**< controller: largest in-capsule data accepted (0 = none) */
	uint32_t max_c2hdata;          /**< host: largest C2HData payload accepted (0 = no limit) */
};

/** Size a header buffer for the builders must have: header, digest, padding up to 128 bytes
 *  (and a whole TermReq, FERRY_NVME_TCP_TERM_MAX_PLEN). */
#define FERRY_NVME_TCP_TX_HDR_MAX 264

/**
 * @brief PDO of a data PDU of type @p pdu_type under @p p: HLEN plus the header digest,
 * rounded up to the receiver's alignment (CapsuleCmd, H2CData: CPDA; C2HData: HPDA); 24 for
 * a TermReq (no digest, no padding); 0 for types that carry no data (and for a NULL @p p).
 * A CapsuleCmd without in-capsule data has PDO 0: ferry_nvme_tcp_build_cmd() handles it.
 * @param[in] p the connection parameters.
 * @param[in] pdu_type the PDU type (FERRY_NVME_TCP_*).
 * @return the PDO in bytes, or 0 (see above).
 */
FERRY_API uint32_t ferry_nvme_tcp_pdo(const struct ferry_nvme_tcp_params *p, uint8_t pdu_type);

/**
 * @brief Build an ICReq (128 bytes, no digest): PFV 0, @p hpda, @p dgst, @p maxr2t.
 * @param[out] buf at least 128 bytes.
 * @param[in] hpda host PDU data alignment the host asks for.
 * @param[in] dgst FERRY_NVME_TCP_DGST_* the host asks for.
 * @param[in] maxr2t outstanding R2Ts per command (0's based).
 * @return 128, 0 if @p buf is NULL.
 */
FERRY_API size_t ferry_nvme_tcp_build_icreq(void *buf, uint8_t hpda, uint8_t dgst, uint32_t maxr2t);

/**
 * @brief Build an ICResp (128 bytes, no digest): PFV 0, @p cpda, @p dgst, @p maxh2cdata.
 * @param[out] buf at least 128 bytes.
 * @param[in] cpda controller PDU data alignment.
 * @param[in] dgst FERRY_NVME_TCP_DGST_* the controller turns on.
 * @param[in] maxh2cdata largest H2CData payload the controller accepts.
 * @return 128, 0 if @p buf is NULL.
 */
FERRY_API size_t ferry_nvme_tcp_build_icresp(void *buf, uint8_t cpda, uint8_t dgst,
					    uint32_t maxh2cdata);

/**
 * @brief Build a CapsuleCmd header carrying @p sqe and @p icd_len bytes of in-capsule data
 * (0: none). PLEN accounts for the data and its digest.
 * @param[out] buf at least FERRY_NVME_TCP_TX_HDR_MAX bytes.
 * @param[in] p this side's connection parameters (digests, alignments).
 * @param[in] sqe the command (copied into the PDU).
 * @param[in] icd_len bytes of in-capsule data that will follow.
 * @return bytes written (header + digest + padding: the data starts there), 0 on bad arguments
 *         (NULL, or @p icd_len so large that PLEN would not fit 32 bits).
 */
FERRY_API size_t ferry_nvme_tcp_build_cmd(void *buf, const struct ferry_nvme_tcp_params *p,
					  const struct ferry_nvme_sqe *sqe, uint32_t icd_len);

/**
 * @brief Build a CapsuleResp.
 * @param[out] buf at least FERRY_NVME_TCP_TX_HDR_MAX bytes.
 * @param[in] p this side's connection parameters (digests, alignments).
 * @param[in] cqe the completion (copied into the PDU).
 * @return bytes written (24, or 28 with the header digest), 0 on NULL arguments.
 */
FERRY_API size_t ferry_nvme_tcp_build_resp(void *buf, const struct ferry_nvme_tcp_params *p,
					   const struct ferry_nvme_cqe *cqe);

/**
 * @brief Build an H2CData (@p pdu_type FERRY_NVME_TCP_H2C_DATA) or C2HData header for
 * @p datal bytes at offset @p datao of command @p cccid. @p flags: FERRY_NVME_TCP_F_LAST_PDU,
 * and FERRY_NVME_TCP_F_SUCCESS (C2H only, with LAST_PDU).
 * @param[out] buf at least FERRY_NVME_TCP_TX_HDR_MAX bytes.
 * @param[in] p this side's connection parameters (digests, alignments).
 * @param[in] pdu_type FERRY_NVME_TCP_H2C_DATA or FERRY_NVME_TCP_C2H_DATA.
 * @param[in] cccid the command's CID.
 * @param[in] ttag H2CData: the TTAG of the R2T answered (written as given for C2HData too,
 *            where the field is reserved: pass 0).
 * @param[in] datao offset of the data in the command's transfer.
 * @param[in] datal data bytes of the PDU (> 0).
 * @param[in] flags FERRY_NVME_TCP_F_LAST_PDU and FERRY_NVME_TCP_F_SUCCESS.
 * @return bytes written (the data starts there), 0 on bad arguments (NULL, wrong type, datal 0,
 *         flags other than LAST_PDU/SUCCESS, SUCCESS on H2CData or without LAST_PDU, PLEN over
 *         32 bits).
 */
FERRY_API size_t ferry_nvme_tcp_build_data(void *buf, const struct ferry_nvme_tcp_params *p,
					   uint8_t pdu_type, uint16_t cccid, uint16_t ttag,
					   uint32_t datao, uint32_t datal, uint8_t flags);

/**
 * @brief Build an R2T.
 * @param[out] buf at least FERRY_NVME_TCP_TX_HDR_MAX bytes.
 * @param[in] p this side's connection parameters (digests, alignments).
 * @param[in] cccid the command's CID.
 * @param[in] ttag the transfer tag the host echoes in its H2CData PDUs.
 * @param[in] r2to offset of the requested data.
 * @param[in] r2tl bytes requested (> 0).
 * @return bytes written (24, or 28 with the header digest), 0 on NULL arguments or @p r2tl 0.
 */
FERRY_API size_t ferry_nvme_tcp_build_r2t(void *buf, const struct ferry_nvme_tcp_params *p,
					  uint16_t cccid, uint16_t ttag, uint32_t r2to,
					  uint32_t r2tl);

/**
 * @brief Build a whole TermReq PDU: H2CTermReq (@p pdu_type FERRY_NVME_TCP_H2C_TERM) or
 * C2HTermReq, with @p fes / @p fei and up to FERRY_NVME_TCP_TERM_MAX_DATA bytes of the
 * offending PDU header as data (longer is cut; NULL/0: none). TermReqs carry no digests;
 * PDO is 24 with data, 0 without.
 * @param[out] buf at least FERRY_NVME_TCP_TERM_MAX_PLEN bytes.
 * @param[in] pdu_type FERRY_NVME_TCP_H2C_TERM or FERRY_NVME_TCP_C2H_TERM.
 * @param[in] fes fatal error status (FERRY_NVME_TCP_FES_*).
 * @param[in] fei fatal error information.
 * @param[in] hdr the offending PDU header (may be NULL).
 * @param[in] hdr_len bytes of @p hdr.
 * @return bytes written (<= FERRY_NVME_TCP_TERM_MAX_PLEN), 0 on a NULL @p buf or a type that
 *         is not a TermReq.
 */
FERRY_API size_t ferry_nvme_tcp_build_term(void *buf, uint8_t pdu_type, uint16_t fes,
					   uint32_t fei, const void *hdr, size_t hdr_len);

/** @name Receive span flags (ferry_nvme_tcp_rx_advance())
 * @{ */
#define FERRY_NVME_TCP_RX_F_PLACED (1u << 0) /**< the bytes are already at their destination
						  (received straight into it): no copy */
#define FERRY_NVME_TCP_RX_F_CRC_OK (1u << 1) /**< data bytes: the NIC checks this PDU's digest
						  and saw no error; data digest bytes: the NIC
						  verified the digest and it matched */
/** @} */

/** @name Destination flags (ferry_nvme_tcp_rx_set_dest_ex())
 * @{ */
/** Bytes arriving with FERRY_NVME_TCP_RX_F_PLACED are not in the iovecs given (a NIC placed
 *  them in memory this CPU does not address, e.g. host memory): they are never read there.
 *  When the digest then needs software, the DONE event sets crc_deferred instead of checking. */
#define FERRY_NVME_TCP_RX_DEST_F_APART (1u << 0)
/** Debug check of an offload NIC: compute the data digest in software even when the NIC
 *  claimed it verified every byte; a mismatch sets both ddgst_error and nic_crc_false. */
#define FERRY_NVME_TCP_RX_DEST_F_VERIFY (1u << 1)
/** @} */

/** What ferry_nvme_tcp_rx_advance() / feed() stopped at. */
enum ferry_nvme_tcp_rx_event_type {
	FERRY_NVME_TCP_RX_NONE = 0,   /**< everything given was consumed; give more */
	FERRY_NVME_TCP_RX_HEADER = 1, /**< a validated header (set the data destination) */
	FERRY_NVME_TCP_RX_DONE = 2,   /**< a whole PDU was received */
	FERRY_NVME_TCP_RX_ERROR = 3,  /**< protocol error: send a TermReq and close */
};

/** An event of the receive machine. */
struct ferry_nvme_tcp_rx_event {
	enum ferry_nvme_tcp_rx_event_type type; /**< what happened */
	/** HEADER and DONE: the PDU's header (HLEN bytes, in the machine; valid until the next
	 *  advance/feed after DONE). */
	const struct ferry_nvme_tcp_ch *hdr;
	/** HEADER and DONE: bytes of data the PDU carries (in-capsule data, H2C/C2H payload,
	 *  TermReq data). */
	uint32_t data_len;
	/** DONE: 1 if the data digest was on and did not match (the data is in its destination
	 *  but must not be trusted: the target completes the command with Transient Transport
	 *  Error, the host fails the I/O). */
	uint8_t ddgst_error;
	/** DONE: 1 if every data byte arrived with FERRY_NVME_TCP_RX_F_PLACED. */
	uint8_t all_placed;
	/** DONE: 1 if every data byte and the data digest arrived with FERRY_NVME_TCP_RX_F_CRC_OK
	 *  (no software CRC). */
	uint8_t all_crc_ok;
	/** DONE: 1 if the digest must be checked in software but some bytes are apart
	 *  (FERRY_NVME_TCP_RX_DEST_F_APART): the caller computes the CRC32C of the final data and
	 *  compares it with @p ddgst; ddgst_error is 0 then. */
	uint8_t crc_deferred;
	/** DONE with FERRY_NVME_TCP_RX_DEST_F_VERIFY: 1 if the NIC claimed the digest verified
	 *  (all_crc_ok) but software found a mismatch (the NIC lied, or placed wrong bytes). */
	uint8_t nic_crc_false;
	/** DONE of a PDU with data and a data digest: the digest as received (host order). */
	uint32_t ddgst;
	/** ERROR: the TermReq fatal error status (FERRY_NVME_TCP_FES_*). */
	uint16_t fes;
	/** ERROR: the TermReq fatal error information (byte offset of the bad field, ...). */
	uint32_t fei;
	/** DONE of a received TermReq: its data (data_len bytes, in the machine; same lifetime
	 *  as @p hdr); NULL otherwise. */
	const void *term_data;
};

/** Counters of a receive machine. */
struct ferry_nvme_tcp_rx_stats {
	uint64_t pdus;          /**< PDUs received whole */
	uint64_t data_bytes;    /**< data bytes received */
	uint64_t copied_bytes;  /**< data bytes copied by ferry_nvme_tcp_rx_feed() */
	uint64_t placed_bytes;  /**< data bytes that arrived with FERRY_NVME_TCP_RX_F_PLACED */
	uint64_t crc_bytes;     /**< data bytes whose digest software computed */
	uint64_t hdgst_errors;  /**< header digest mismatches (fatal) */
	uint64_t ddgst_errors;  /**< data digest mismatches */
};

/** The state of one receive direction. Embed it; its members are private to the codec. */
struct ferry_nvme_tcp_rx {
	struct ferry_nvme_tcp_params p;   /**< private */
	uint32_t state;                   /**< private */
	uint32_t have;                    /**< private: bytes of the current part received */
	uint32_t need;                    /**< private: bytes of the current part */
	uint32_t ic_done;                 /**< private: the IC PDU was received */
	uint32_t data_len;                /**< private */
	uint32_t data_done;               /**< private */
	uint32_t pad_len;                 /**< private */
	const struct iovec *dest;         /**< private */
	uint32_t dest_cnt;                /**< private */
	uint32_t dest_idx;                /**< private */
	size_t dest_off;                  /**< private */
	uint32_t crc;                     /**< private: running data digest */
	uint32_t crc_done;                /**< private: data bytes covered by crc */
	uint32_t span_flags;              /**< private: AND of the data span flags */
	uint16_t fes;                     /**< private */
	uint32_t fei;                     /**< private */
	uint32_t hdr_got;                 /**< private: header bytes received */
	uint32_t hlen;                    /**< private: HLEN + header digest of the current PDU */
	size_t offered;                   /**< private: bytes the last rx_next() offered */
	/** private: the header (8-byte aligned: it is read as struct ferry_nvme_tcp_ch) */
	uint8_t hdr[FERRY_NVME_TCP_HLEN_MAX + FERRY_NVME_TCP_DIGEST_LEN];
	uint8_t scratch[FERRY_NVME_TCP_TERM_MAX_DATA]; /**< private: padding, discarded data,
							    TermReq data */
	uint8_t ddgst[FERRY_NVME_TCP_DIGEST_LEN]; /**< private: received data digest */
	uint8_t dd;                       /**< private: the PDU has a data digest */
	uint8_t discard;                  /**< private: data goes nowhere */
	uint8_t sw_span;                  /**< private: a data span without CRC_OK was seen */
	uint8_t apart_placed;             /**< private: a PLACED span of an APART destination */
	uint32_t dest_flags;              /**< private: FERRY_NVME_TCP_RX_DEST_F_* */
	uint32_t dg_flags;                /**< private: AND of the data digest span flags */
	uint64_t stream_pos;              /**< private: stream bytes consumed since rx_init() */
	uint64_t pdu_start;               /**< private: stream offset of the current PDU */
	struct ferry_nvme_tcp_rx_stats stats; /**< counters (read freely) */
};

/**
 * @brief Start a receive machine for a new connection with @p p (only role and the limits
 * matter until the IC PDU: it expects ICReq (controller) or ICResp (host) first).
 * @param[out] rx the machine (the caller's memory; nothing is allocated).
 * @param[in] p the parameters (copied; digests and alignments start off until
 *            ferry_nvme_tcp_rx_set_params()).
 * @retval 0; -EINVAL NULL or a bad role.
 */
FERRY_API int ferry_nvme_tcp_rx_init(struct ferry_nvme_tcp_rx *rx, const struct ferry_nvme_tcp_params *p);

/**
 * @brief Install the negotiated parameters after the IC exchange (digests, alignments,
 * limits); the PDUs that follow are checked against them.
 * @param[in,out] rx the machine.
 * @param[in] p the negotiated parameters (copied), same role.
 * @retval 0; -EINVAL NULL or a role change.
 */
FERRY_API int ferry_nvme_tcp_rx_set_params(struct ferry_nvme_tcp_rx *rx,
					   const struct ferry_nvme_tcp_params *p);

/**
 * @brief Where the next stream bytes go, up to the next event: at most @p max iovecs into
 * @p iov (the machine's own header/padding/digest buffers, or the data destination). Receiving
 * into them overwrites the header of the last DONE event: finish with it first.
 * @param[in,out] rx the machine.
 * @param[out] iov room for @p max iovecs.
 * @param[in] max size of @p iov.
 * @return number of iovecs (>= 1); 0 when the machine waits for ferry_nvme_tcp_rx_set_dest()
 *         after a HEADER event, is in error, or on NULL arguments / @p max 0.
 */
FERRY_API uint32_t ferry_nvme_tcp_rx_next(struct ferry_nvme_tcp_rx *rx, struct iovec *iov,
					  uint32_t max);

/**
 * @brief @p n bytes were received into the iovecs of the last ferry_nvme_tcp_rx_next(), in
 * order; @p flags (FERRY_NVME_TCP_RX_F_*) hold for all of them (data bytes only). Call
 * ferry_nvme_tcp_rx_next() again before the next advance (even after a partial one).
 * @param[in,out] rx the machine.
 * @param[in] n bytes received.
 * @param[in] flags FERRY_NVME_TCP_RX_F_* of those bytes.
 * @param[out] ev the event reached (type NONE if none yet).
 * @retval 0; -EINVAL NULL, or @p n larger than rx_next offered (nothing is accounted).
 */
FERRY_API int ferry_nvme_tcp_rx_advance(struct ferry_nvme_tcp_rx *rx, size_t n, uint32_t flags,
					struct ferry_nvme_tcp_rx_event *ev);

/**
 * @brief Copy stream bytes from @p buf (up to @p len) where rx_next() points, stopping at the
 * first event. @p consumed says how many bytes were taken (call again with the rest).
 * @param[in,out] rx the machine.
 * @param[in] buf stream bytes.
 * @param[in] len bytes in @p buf.
 * @param[out] consumed bytes taken from @p buf.
 * @param[out] ev the event reached (type NONE if none yet).
 * @retval 0; -EINVAL NULL arguments.
 */
FERRY_API int ferry_nvme_tcp_rx_feed(struct ferry_nvme_tcp_rx *rx, const void *buf, size_t len,
				     size_t *consumed, struct ferry_nvme_tcp_rx_event *ev);

/**
 * @brief ferry_nvme_tcp_rx_feed() of stream bytes that came with receive flags @p flags: only
 * FERRY_NVME_TCP_RX_F_CRC_OK may be given (the bytes are in @p buf, so they were not placed).
 * A NIC's digest verdict rides on the data digest bytes, which a caller may read into its own
 * buffer with the headers around them.
 * @param[in,out] rx the machine.
 * @param[in] buf stream bytes.
 * @param[in] len bytes in @p buf.
 * @param[in] flags 0 or FERRY_NVME_TCP_RX_F_CRC_OK.
 * @param[out] consumed bytes taken from @p buf.
 * @param[out] ev the event reached (type NONE if none yet).
 * @retval 0; -EINVAL NULL arguments or FERRY_NVME_TCP_RX_F_PLACED / unknown flags.
 */
FERRY_API int ferry_nvme_tcp_rx_feed_ex(struct ferry_nvme_tcp_rx *rx, const void *buf, size_t len,
					uint32_t flags, size_t *consumed,
					struct ferry_nvme_tcp_rx_event *ev);

/**
 * @brief After a HEADER event for a PDU with data: receive its @p data_len bytes into
 * @p iov (total at least data_len; the array must stay valid until DONE). NULL/0 discards the
 * data (it is consumed and digest-checked, not stored).
 * @param[in,out] rx the machine.
 * @param[in] iov the destination (the caller's; referenced until DONE).
 * @param[in] iovcnt number of segments.
 * @retval 0; -EINVAL not waiting for a destination, or the iovecs hold fewer bytes.
 */
FERRY_API int ferry_nvme_tcp_rx_set_dest(struct ferry_nvme_tcp_rx *rx, const struct iovec *iov,
					 uint32_t iovcnt);

/**
 * @brief ferry_nvme_tcp_rx_set_dest() with destination flags @p dflags
 * (FERRY_NVME_TCP_RX_DEST_F_*; 0 is ferry_nvme_tcp_rx_set_dest()). With APART, @p iov still
 * receives the bytes that arrive without PLACED (a receive offload's misses) and must hold
 * data_len bytes; NULL/0 (discard) cannot be APART.
 * @param[in,out] rx the machine.
 * @param[in] iov the destination (the caller's; referenced until DONE).
 * @param[in] iovcnt number of segments.
 * @param[in] dflags FERRY_NVME_TCP_RX_DEST_F_*.
 * @retval 0; -EINVAL as ferry_nvme_tcp_rx_set_dest(), unknown flags, or APART with discard.
 */
FERRY_API int ferry_nvme_tcp_rx_set_dest_ex(struct ferry_nvme_tcp_rx *rx, const struct iovec *iov,
					    uint32_t iovcnt, uint32_t dflags);

/**
 * @brief Resync answer of a receive offload: does a PDU start at stream offset @p seq (bytes
 * consumed since ferry_nvme_tcp_rx_init(), the first byte of the IC PDU is 0)? Ask after each
 * event until it answers.
 * @param[in] rx the machine.
 * @param[in] seq the stream offset the NIC asks about.
 * @retval 1 the current PDU starts at @p seq, or the machine is at a PDU boundary there;
 * @retval 0 @p seq was consumed and is not the current PDU's start (inside a PDU, or an
 *         earlier one: either way the NIC should search again);
 * @retval -EAGAIN not consumed yet; -EINVAL NULL @p rx.
 */
FERRY_API int ferry_nvme_tcp_rx_pdu_at(const struct ferry_nvme_tcp_rx *rx, uint64_t seq);

/**
 * @brief Stream bytes consumed since ferry_nvme_tcp_rx_init().
 * @param[in] rx the machine.
 * @return the count; 0 for NULL.
 */
FERRY_API uint64_t ferry_nvme_tcp_rx_stream_pos(const struct ferry_nvme_tcp_rx *rx);

/**
 * @brief The caller found a per-command error in the header of the last HEADER event (no such
 * CCCID, data outside the command's transfer, ...): put the machine in error with @p fes and
 * @p fei, to be sent in a TermReq. Nothing more is accepted. A machine already in error keeps
 * its first FES/FEI. NULL: nothing.
 * @param[in,out] rx the machine.
 * @param[in] fes fatal error status (FERRY_NVME_TCP_FES_*).
 * @param[in] fei fatal error information (byte offset of the bad field).
 */
FERRY_API void ferry_nvme_tcp_rx_fail(struct ferry_nvme_tcp_rx *rx, uint16_t fes, uint32_t fei);

/**
 * @brief The header bytes of the PDU being received (for the TermReq data after ERROR).
 * @param[in] rx the machine.
 * @param[out] len bytes available (up to HLEN, without the header digest; 0 on NULL @p rx).
 * @return the bytes (in the machine), NULL if @p rx or @p len is NULL.
 */
FERRY_API const void *ferry_nvme_tcp_rx_err_hdr(const struct ferry_nvme_tcp_rx *rx, size_t *len);

/**
 * @brief Controller side of the IC exchange: check a received ICReq against what the
 * controller offers and produce the connection parameters and the ICResp.
 * @param[in] icreq the ICReq as received (its DONE event's header).
 * @param[in] offer the controller's offer: role CONTROLLER, hdgst/ddgst 1 if the controller
 *            allows that digest, cpda its alignment, maxh2cdata (>= 4096, multiple of 4),
 *            max_icd; hpda is ignored.
 * @param[out] out the negotiated parameters for ferry_nvme_tcp_rx_set_params(): a digest is
 *             on when the host asked for it and the offer allows it; hpda from the ICReq.
 * @param[out] icresp 128 bytes: the ICResp to send.
 * @param[out] fes, fei when the ICReq is refused: the TermReq's FES/FEI (may be NULL).
 * @retval 0; -EINVAL NULL arguments or a bad offer; -EPROTO the ICReq is invalid (PFV, HPDA,
 *         DGST reserved bits): send a C2HTermReq with @p fes / @p fei and close.
 */
FERRY_API int ferry_nvme_tcp_icreq_negotiate(const struct ferry_nvme_tcp_icreq *icreq,
					     const struct ferry_nvme_tcp_params *offer,
					     struct ferry_nvme_tcp_params *out, void *icresp,
					     uint16_t *fes, uint32_t *fei);

/**
 * @brief Host side of the IC exchange: check a received ICResp against what the ICReq asked.
 * @param[in] icresp the ICResp as received.
 * @param[in] asked the host's parameters as sent in its ICReq: role HOST, hdgst/ddgst asked,
 *            hpda, max_c2hdata.
 * @param[out] out the negotiated parameters for ferry_nvme_tcp_rx_set_params() (digests and
 *             CPDA/MAXH2CDATA from the ICResp).
 * @param[out] fes, fei when the ICResp is refused (may be NULL).
 * @retval 0; -EINVAL NULL arguments; -EPROTO the ICResp is invalid: PFV != 0 (FEI 8), CPDA > 31
 *         (FEI 10), DGST reserved bits or a digest the host did not ask for (FEI 11),
 *         MAXH2CDATA < 4096 or not a multiple of 4 (FEI 12), all FES 0x06.
 */
FERRY_API int ferry_nvme_tcp_icresp_check(const struct ferry_nvme_tcp_icresp *icresp,
					  const struct ferry_nvme_tcp_params *asked,
					  struct ferry_nvme_tcp_params *out, uint16_t *fes,
					  uint32_t *fei);

/**
 * @brief Name of a TermReq FES ("invalid PDU header field"...).
 * @param[in] fes the fatal error status.
 * @return a static string, never NULL ("unknown fatal error status" for other values).
 */
FERRY_API const char *ferry_nvme_tcp_fes_str(uint16_t fes);

/**
 * @brief Name of a PDU type ("CapsuleCmd"...).
 * @param[in] pdu_type the PDU type.
 * @return a static string, never NULL.
 */
FERRY_API const char *ferry_nvme_tcp_pdu_str(uint8_t pdu_type);

FERRY_END_DECLS

#endif /* FERRY_MODULE_NVME_TCP_H */
