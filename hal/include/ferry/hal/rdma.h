/**
 * @file ferry/hal/rdma.h
 * @brief The RDMA part of the NIC class (::ferry_hal_nic_ops::rdma): what a vendor's RDMA NIC
 * (or libibverbs + librdmacm, the "rxe" backend) implements so Ferry can run NVMe-oF/RDMA and
 * its zero-copy RDMA-direct path over it.
 *
 * ## Model (reliable-connected verbs)
 * - A device has **one protection domain**: every memory region and queue pair of the device
 *   belongs to it, so any key of the device is valid on any of its QPs.
 * - A **memory region** (struct ferry_hal_rdma_mr) registers memory for the NIC and names it with
 *   an address and two keys: the local key goes into the device's own work requests, the
 *   remote key is what a peer uses in its RDMA READ / WRITE of that memory. mr_reg() registers
 *   local (system-domain) memory; mr_reg_mem() (optional) registers memory of another domain
 *   the NIC reaches directly (host memory through the NIC's PCI function: its IOVAs). A region
 *   is invalidated by mr_dereg(): from its return no access through its keys succeeds (a peer
 *   still using them gets a remote access error on its QP).
 * - A **completion queue** (struct ferry_hal_rdma_cq) collects the work completions of the QPs
 *   created on it. One thread polls it (cq_poll()); cq_wait() blocks until it has a completion
 *   (the event-channel mode).
 * - A **queue pair** (struct ferry_hal_rdma_qp) is one reliable connection, set up through the
 *   connection manager: the passive side listen()s, takes connection requests with their
 *   private data (get_request()) and accept()s or reject()s each; the active side connect()s
 *   and watches qp_state() until the connection is established or refused. Private data
 *   travels both ways (NVMe-oF puts its queue parameters there).
 * - **Work requests**: post_recv() posts receive buffers; post_send() posts SEND, RDMA WRITE
 *   and RDMA READ with scatter-gather lists of (address, length, local key). Each posted work
 *   request completes exactly once, in the CQ, with its wr_id: successfully, with an error
 *   naming what went wrong (-EREMOTEIO the peer refused the access: bad key, out of bounds,
 *   no permission; -ENOBUFS the peer had no receive posted; -EMSGSIZE a receive buffer too
 *   small; -EIO local error), or flushed (-ECANCELED) when the QP entered the error state.
 *   A send posted without FERRY_HAL_RDMA_WR_F_SIGNALED completes silently when it succeeds,
 *   but an error is always reported. An RC QP that had an error goes to the error state: every
 *   outstanding request is flushed, qp_state() reports it, and it never recovers (destroy it).
 * - qp_destroy() disconnects (the peer sees its QP go to the error state) and frees the QP;
 *   no completion of its work requests is reported after it returns, and the memory of
 *   outstanding ones belongs to the caller again.
 *
 * ## Errors
 * Every op returns a negative errno on failure, and a backend logs the reason of every
 * failure but -EAGAIN / -EINPROGRESS: -ENODEV no such device, -EINVAL a bad argument or
 * address string, -EADDRINUSE a listen address is taken, -ECONNREFUSED the peer rejected or
 * nothing listens, -ETIMEDOUT address/route resolution or the connection timed out,
 * -ENETUNREACH no route, -ENOMEM / -ENOSPC resources (queue full: -ENOSPC).
 *
 * ## Threading
 * A CQ and the QPs on it are used by one thread at a time. Different CQs may be used from
 * different threads concurrently. listen(), connect(), mr_reg*(), mr_dereg(), cq_create()
 * are thread-safe.
 */
#ifndef FERRY_HAL_RDMA_H
#define FERRY_HAL_RDMA_H

#include <stddef.h>
#include <stdint.h>
#include <ferry/export.h>
#include <ferry/device.h>
#include <ferry/memdomain.h>

FERRY_BEGIN_DECLS

/** ABI version of ::ferry_hal_rdma_ops. */
#define FERRY_HAL_RDMA_ABI_VERSION 1

/** Memory domains an RDMA NIC may declare for mr_reg_mem(). */
#define FERRY_HAL_RDMA_DOMAINS_MAX 4

/** Bytes of private data a connect request / accept / reject carries at most. */
#define FERRY_HAL_RDMA_PDATA_MAX 56

/** What a device's RDMA part offers (rdma query()). */
struct ferry_hal_rdma_info {
	char name[32];        /**< the device's name (e.g. "rxe0") */
	uint32_t max_sge;     /**< scatter-gather entries of one work request (>= 2) */
	uint32_t max_inline;  /**< bytes a SEND may carry inline (0: none) */
	uint32_t max_qp_wr;   /**< work requests outstanding per QP and direction (>= 64) */
	uint32_t max_cqe;     /**< entries of one CQ (>= 256) */
	uint32_t max_qp_rd_atom; /**< RDMA READs one QP has outstanding as initiator (>= 1) */
	uint32_t max_qp_init_rd_atom; /**< ... it serves as responder (>= 1) */
	uint64_t max_mr_size; /**< bytes of one memory region */
	/** How many of @p domains are set. */
	uint32_t ndomains;
	/** Domains whose addresses mr_reg_mem() registers (the NIC reaches them directly). */
	struct ferry_memdomain *domains[FERRY_HAL_RDMA_DOMAINS_MAX];
};

struct ferry_hal_rdma_mr;
struct ferry_hal_rdma_cq;
struct ferry_hal_rdma_qp;
struct ferry_hal_rdma_listener;
struct ferry_hal_rdma_req;

/** @name Access rights of a memory region (mr_reg() @p access)
 * @{ */
#define FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE (1u << 0)  /**< receives and RDMA READs land here */
#define FERRY_HAL_RDMA_ACCESS_REMOTE_READ (1u << 1)  /**< peers may RDMA READ it */
#define FERRY_HAL_RDMA_ACCESS_REMOTE_WRITE (1u << 2) /**< peers may RDMA WRITE it */
/** @} */

/** The address and keys of a registered region (mr_keys()). */
struct ferry_hal_rdma_mr_keys {
	uint64_t addr; /**< the address the region's first byte has in work requests and at peers */
	uint64_t len;  /**< bytes registered */
	uint32_t lkey; /**< local key */
	uint32_t rkey; /**< remote key */
};

/** One scatter-gather entry of a work request. */
struct ferry_hal_rdma_sge {
	uint64_t addr; /**< address inside a region registered with @p lkey */
	uint32_t len;  /**< bytes */
	uint32_t lkey; /**< that region's local key */
};

/** Work request and completion opcodes. */
enum ferry_hal_rdma_opcode {
	FERRY_HAL_RDMA_OP_SEND = 0,  /**< a message into the peer's next posted receive */
	FERRY_HAL_RDMA_OP_WRITE = 1, /**< write local data at the peer's (remote_addr, rkey) */
	FERRY_HAL_RDMA_OP_READ = 2,  /**< read the peer's (remote_addr, rkey) into local memory */
	FERRY_HAL_RDMA_OP_RECV = 3,  /**< (completions only) a receive was filled */
};

/** @name Work request flags (::ferry_hal_rdma_wr::flags)
 * @{ */
#define FERRY_HAL_RDMA_WR_F_SIGNALED (1u << 0) /**< report a successful completion too */
#define FERRY_HAL_RDMA_WR_F_INLINE (1u << 1)   /**< SEND: copy the data at post (<= max_inline) */
#define FERRY_HAL_RDMA_WR_F_FENCE (1u << 2) /**< start only after earlier RDMA READs completed */
/** @} */

/** A send-queue work request (post_send()); a list through @p next. */
struct ferry_hal_rdma_wr {
	uint64_t wr_id;      /**< returned in the completion */
	uint32_t opcode;     /**< FERRY_HAL_RDMA_OP_SEND / _WRITE / _READ */
	uint32_t flags;      /**< FERRY_HAL_RDMA_WR_F_* */
	const struct ferry_hal_rdma_sge *sge; /**< local memory: the source (SEND, WRITE) or the
						    destination (READ) */
	uint32_t nsge;       /**< entries (0..max_sge; 0: a zero-length SEND) */
	uint32_t rkey;        /**< WRITE / READ: the peer's remote key */
	uint64_t remote_addr; /**< WRITE / READ: the peer's address */
	struct ferry_hal_rdma_wr *next; /**< the next request of the list, or NULL */
};

/** One work completion (cq_poll()). */
struct ferry_hal_rdma_wc {
	uint64_t wr_id;    /**< the request's wr_id */
	void *qp_ctx;      /**< the ctx of the QP it ran on (::ferry_hal_rdma_qp_attr::ctx) */
	int32_t status;    /**< 0 or a negative errno (see the model) */
	uint32_t opcode;   /**< enum ferry_hal_rdma_opcode */
	uint32_t byte_len; /**< RECV: bytes received */
	uint32_t vendor_err; /**< the device's own error code (0: none) */
};

/** Queue sizes and context of a QP (connect(), accept()). */
struct ferry_hal_rdma_qp_attr {
	size_t size;              /**< sizeof(struct ferry_hal_rdma_qp_attr) */
	struct ferry_hal_rdma_cq *cq; /**< send and receive completions go here */
	uint32_t max_send_wr;     /**< send work requests outstanding */
	uint32_t max_recv_wr;     /**< receives posted */
	uint32_t max_send_sge;    /**< SGEs of one send work request */
	uint32_t max_recv_sge;    /**< SGEs of one receive */
	uint32_t max_inline;      /**< inline bytes wanted (0: none) */
	uint8_t initiator_depth;  /**< RDMA READs outstanding as initiator */
	uint8_t responder_resources; /**< RDMA READs served at once as responder */
	void *ctx;                /**< returned in every completion of the QP */
};

/*
 * QP states (qp_state() return values): 0 established; -EINPROGRESS connecting;
 * -ECONNREFUSED rejected (the reject's private data, if any, is available); -ETIMEDOUT /
 * -ENETUNREACH the connection could not be made; -ECONNRESET the connection was established
 * and is gone (the peer disconnected, or the QP entered the error state). Failures are sticky.
 */

/** Counters of a device's RDMA part (rdma_stats()). */
struct ferry_hal_rdma_stats {
	uint64_t sends;        /**< SEND work requests completed */
	uint64_t recvs;        /**< receives completed */
	uint64_t writes;       /**< RDMA WRITE work requests completed */
	uint64_t reads;        /**< RDMA READ work requests completed */
	uint64_t send_bytes;   /**< bytes sent by SEND */
	uint64_t recv_bytes;   /**< bytes received */
	uint64_t write_bytes;  /**< bytes written by RDMA WRITE */
	uint64_t read_bytes;   /**< bytes read by RDMA READ */
	uint64_t wc_errors;    /**< completions with an error (flushes included) */
	uint64_t mr_regs;      /**< regions registered */
	uint64_t mr_deregs;    /**< regions invalidated */
	uint64_t qp_errors;    /**< QPs that entered the error state */
};

/** The RDMA ops table (::ferry_hal_nic_ops::rdma). Every member is required unless marked
 *  optional. */
struct ferry_hal_rdma_ops {
	/** Required: FERRY_HAL_RDMA_ABI_VERSION (checked at registration). */
	uint32_t abi_version;
	/** What the device offers. -ENODEV: the device has no RDMA (a reason is logged). */
	int (*query)(struct ferry_device *dev, struct ferry_hal_rdma_info *info);

	/** @name Memory regions
	 * @{ */
	/** Register local memory [@p addr, @p addr + @p len) with @p access
	 *  (FERRY_HAL_RDMA_ACCESS_*); keys: mr_keys(). The memory stays registered (and must stay
	 *  mapped) until mr_dereg(). */
	int (*mr_reg)(struct ferry_device *dev, void *addr, size_t len, uint32_t access,
		      struct ferry_hal_rdma_mr **out);
	/** Optional: register [@p addr, @p addr + @p len) of @p domain (one of
	 *  ::ferry_hal_rdma_info::domains); the NIC reaches it directly and checks every access
	 *  against that domain's permissions. -EXDEV: not a declared domain; -EFAULT: not
	 *  mapped there. */
	int (*mr_reg_mem)(struct ferry_device *dev, struct ferry_memdomain *domain, uint64_t addr,
			  size_t len, uint32_t access, struct ferry_hal_rdma_mr **out);
	/** Invalidate and free a region (NULL: no-op). */
	void (*mr_dereg)(struct ferry_hal_rdma_mr *mr);
	/** The region's address and keys. */
	void (*mr_keys)(const struct ferry_hal_rdma_mr *mr, struct ferry_hal_rdma_mr_keys *keys);
	/** @} */

	/** @name Completion queues
	 * @{ */
	/** Create a CQ of at least @p depth entries. */
	int (*cq_create)(struct ferry_device *dev, uint32_t depth, struct ferry_hal_rdma_cq **out);
	/** Destroy a CQ (its QPs must be destroyed first). NULL: no-op. */
	void (*cq_destroy)(struct ferry_hal_rdma_cq *cq);
	/** Take up to @p max completions. Also advances the connection manager's events of the
	 *  CQ's QPs. @return completions taken (>= 0) or a negative errno. */
	int (*cq_poll)(struct ferry_hal_rdma_cq *cq, struct ferry_hal_rdma_wc *wc, uint32_t max);
	/** Optional: block until @p cq has a completion or a connection event of one of its QPs,
	 *  at most @p timeout_us (the event-channel mode). @retval 0 something to poll;
	 *  -ETIMEDOUT nothing came. */
	int (*cq_wait)(struct ferry_hal_rdma_cq *cq, uint32_t timeout_us);
	/** @} */

	/** @name Connection manager
	 * @{ */
	/** Listen on @p addr ("a.b.c.d:port"; port 0 picks one: listener_addr()). */
	int (*listen)(struct ferry_device *dev, const char *addr, uint32_t backlog,
		      struct ferry_hal_rdma_listener **out);
	/** The address a listener is bound to. @retval 0; -ENOBUFS @p len too small. */
	int (*listener_addr)(struct ferry_hal_rdma_listener *l, char *buf, size_t len);
	/** Close a listener; its pending requests are rejected. NULL: no-op. */
	void (*listener_close)(struct ferry_hal_rdma_listener *l);
	/**
	 * Take one pending connection request (non-blocking). Its private data (@p pdata,
	 * @p pdata_len bytes, valid until accept()/reject()) is the peer's, untrusted.
	 * @retval 0 @p *out must be answered by accept() or reject(); -EAGAIN none pending.
	 */
	int (*get_request)(struct ferry_hal_rdma_listener *l, struct ferry_hal_rdma_req **out,
			   const void **pdata, uint32_t *pdata_len);
	/** Accept @p req with a QP of @p attr, sending @p pdata (<= FERRY_HAL_RDMA_PDATA_MAX
	 *  bytes). @p req is consumed either way. The QP is usable for post_recv() at once and
	 *  for post_send() once qp_state() returns 0, which it does at the latest once a receive
	 *  of the QP completed successfully (the peer sent on it: the connection is up, even if
	 *  the connection manager's "established" event is still on its way). */
	int (*accept)(struct ferry_hal_rdma_req *req, const struct ferry_hal_rdma_qp_attr *attr,
		      const void *pdata, uint32_t pdata_len, struct ferry_hal_rdma_qp **out);
	/** Reject @p req sending @p pdata (may be NULL); @p req is consumed. */
	void (*reject)(struct ferry_hal_rdma_req *req, const void *pdata, uint32_t pdata_len);
	/**
	 * Start connecting to @p addr with a QP of @p attr, sending @p pdata with the request,
	 * without blocking; follow it with qp_state() (and cq_poll() / cq_wait() of attr->cq,
	 * which advance it). The QP is usable for post_recv() at once. Fails only for local
	 * reasons (-EINVAL bad address, resources); the outcome comes from qp_state().
	 */
	int (*connect)(struct ferry_device *dev, const char *addr,
		       const struct ferry_hal_rdma_qp_attr *attr, const void *pdata,
		       uint32_t pdata_len, uint32_t timeout_ms, struct ferry_hal_rdma_qp **out);
	/**
	 * The connection's state (see the QP states above). With @p pdata non-NULL, the peer's
	 * accept (state 0) or reject (-ECONNREFUSED) private data: *@p pdata (valid until
	 * qp_destroy()) and *@p pdata_len (0: none).
	 */
	int (*qp_state)(struct ferry_hal_rdma_qp *qp, const void **pdata, uint32_t *pdata_len);
	/** Disconnect and free a QP (see the model). NULL: no-op. */
	void (*qp_destroy)(struct ferry_hal_rdma_qp *qp);
	/** The local (@p peer 0) or remote (@p peer 1) address "a.b.c.d:port".
	 *  @retval 0; -ENOBUFS @p len too small; -ENOTCONN no peer. */
	int (*qp_addr)(struct ferry_hal_rdma_qp *qp, int peer, char *buf, size_t len);
	/** @} */

	/** @name Work requests
	 * @{ */
	/** Post a receive of up to the SGEs' total bytes. @retval 0; -ENOSPC receive queue full;
	 *  -EINVAL more than max_recv_sge entries; -ECONNRESET QP in error. */
	int (*post_recv)(struct ferry_hal_rdma_qp *qp, uint64_t wr_id,
			 const struct ferry_hal_rdma_sge *sge, uint32_t nsge);
	/** Post a list of send work requests, in order. On failure, @p *bad (if not NULL) is the
	 *  first request not posted; the ones before it are posted. @retval 0; -ENOSPC send
	 *  queue full; -EINVAL a malformed request (opcode, nsge, inline too big);
	 *  -ENOTCONN not established; -ECONNRESET QP in error. */
	int (*post_send)(struct ferry_hal_rdma_qp *qp, const struct ferry_hal_rdma_wr *wr,
			 const struct ferry_hal_rdma_wr **bad);
	/** @} */

	/** Optional: the device's RDMA counters. */
	int (*rdma_stats)(struct ferry_device *dev, struct ferry_hal_rdma_stats *stats);
};

FERRY_END_DECLS

#endif /* FERRY_HAL_RDMA_H */
