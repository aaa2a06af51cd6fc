/*
 * The mock RDMA NIC's private header (mock_rdma*.c; never installed): limits, the wire format
 * of its reliable-connected model over loopback TCP (one TCP connection per QP), and the
 * device, memory region, completion queue, queue pair, listener and request objects.
 *
 * Wire: every message is a struct mr_msg header (host byte order: both ends are on one
 * machine) followed by `len` payload bytes for REQ/REP/REJ (private data), SEND, WRITE and
 * READ_RESP; a READ carries the length to read in `len` and no payload; ACK/NAK none.
 * Requests of one QP carry their send-queue position as `psn`; the responder answers them in
 * order (ACK, NAK with a negative errno in `status`, READ_RESP). Everything received is
 * untrusted: types, lengths, psns and statuses are checked, and a bad message puts the QP in
 * the error state.
 * RDMA READ resources (as the connection manager negotiates them): REQ and REP carry the
 * sender's responder_resources in `rkey` (0: not said); each side lets at most the peer's
 * number of its RDMA READs be outstanding (its initiator depth clamped at connect/accept). A
 * READ carries in `status` how many READs its requester has outstanding with it (0: not
 * said); a responder that finds more than its responder_resources fails the QP (a NAK: an
 * invalid request, as an IB responder does).
 */
#ifndef MOCK_RDMA_INTERNAL_H
#define MOCK_RDMA_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <ferry/hal/rdma.h>
#include "mock_nic_internal.h"

#define MR_MAX_SGE 16u
#define MR_MAX_INLINE 256u
#define MR_MAX_QP_WR 4096u
#define MR_MAX_CQE 65536u
#define MR_MAX_RD_ATOM 16u
#define MR_MAX_MSG (16u << 20)         /* bytes of one work request / message */
#define MR_MAX_MR_SIZE (1ull << 32)    /* bytes of one memory region */
#define MR_MAX_SLOTS ((1u << 23) - 1u) /* regions registered at once */
#define MR_RNR_DEFAULT_MS 100u
#define MR_CONNECT_DEFAULT_MS 3000u     /* connect()'s timeout_ms 0 */
#define MR_REQ_TIMEOUT_NS 5000000000ull /* a connection must send its REQ within 5 s */
#define MR_OUT_HIGH (1u << 20)          /* stop serialising new requests above this */
#define MR_OUT_MAX (32u << 20)          /* stop answering the peer above this */
#define MR_READ_BUDGET (4u << 20)       /* bytes read from one socket per progress call */

enum mr_msg_type {
	MR_M_REQ = 1,
	MR_M_REP,
	MR_M_REJ,
	MR_M_SEND,
	MR_M_WRITE,
	MR_M_READ,
	MR_M_READ_RESP,
	MR_M_ACK,
	MR_M_NAK,
};

struct mr_msg {
	uint8_t type;
	uint8_t rsvd[3];
	uint32_t len;
	uint64_t psn;
	uint64_t raddr;
	uint32_t rkey;
	int32_t status;
};
_Static_assert(sizeof(struct mr_msg) == 32, "wire header");

/* A byte queue: bytes [start, end) of p. */
struct mr_buf {
	uint8_t *p;
	size_t start, end, cap;
};

struct mock_rdma {
	struct mock_nic *nic;
	struct mock_dev *dev;
	struct ferry_memdomain *nic_domain; /* mr_reg_mem's domain ("nic" function), or NULL */
	uint64_t seed;
	uint32_t rnr_ms;

	pthread_rwlock_t mr_lock; /* readers: accesses; writer: reg/dereg */
	struct ferry_hal_rdma_mr **slots;
	uint8_t *tags;
	uint32_t nslots, slot_cap, slot_hint, live;

	pthread_mutex_t fault_lock;
	struct ferry_mock_rdma_faults f;
	uint64_t n_kind[4]; /* posted since the faults were set, per opcode */
	uint64_t n_rdma;    /* WRITE + READ posted since */
	uint64_t n_wr;      /* send work requests posted since (error_ppm draws) */

	_Atomic uint64_t st_sends, st_recvs, st_writes, st_reads, st_send_bytes, st_recv_bytes,
		st_write_bytes, st_read_bytes, st_wc_errors, st_mr_regs, st_mr_deregs, st_qp_errors;
};

struct ferry_hal_rdma_mr {
	struct mock_rdma *r;
	uint32_t slot;
	uint32_t lkey, rkey;
	uint64_t addr, len;
	uint32_t access;
	struct mock_fn *fn; /* NULL: local memory (addr is a pointer); else IOVAs of fn */
};

struct mr_wc {
	struct ferry_hal_rdma_wc wc;
	struct ferry_hal_rdma_qp *qp;
	uint64_t due; /* visible from this cq_poll count on */
};

struct ferry_hal_rdma_cq {
	struct mock_rdma *r;
	/* Guards qps: QPs may be created (connect, accept) from another thread than the one
	 * polling; everything else of the CQ and its QPs belongs to the polling thread. */
	pthread_mutex_t lock;
	uint32_t depth;
	struct mr_wc *q;
	size_t head, count, cap;
	uint64_t polls;
	uint64_t events; /* connection state changes of its QPs */
	int overrun_logged;
	struct ferry_hal_rdma_qp *qps;
};

enum {
	MR_E_QUEUED = 0,
	MR_E_SENT,
	MR_E_DONE
};

struct mr_sq_ent {
	uint64_t wr_id;
	uint32_t opcode, flags, nsge, rkey;
	uint64_t raddr, len;
	struct ferry_hal_rdma_sge sge[MR_MAX_SGE];
	uint8_t *inl; /* inline data (max_inline bytes of the QP's block) */
	int inlined;
	int state;
	int status;
};

struct mr_rq_ent {
	uint64_t wr_id;
	uint32_t nsge;
	int fail; /* injected status, 0 = none */
	struct ferry_hal_rdma_sge sge[MR_MAX_SGE];
};

struct ferry_hal_rdma_qp {
	struct mock_rdma *r;
	struct ferry_hal_rdma_cq *cq;
	struct ferry_hal_rdma_qp *cq_next;
	void *ctx;
	int fd;
	int state;  /* see ferry/hal/rdma.h: 0, -EINPROGRESS, -ECONNREFUSED, -ETIMEDOUT, ... */
	int tcp_up; /* the TCP connection is made (active side) */
	int eof;
	int shut;
	int flushed;
	uint64_t deadline_ns; /* connecting: give up then */
	uint8_t pdata[FERRY_HAL_RDMA_PDATA_MAX];
	uint32_t pdata_len;
	struct mr_buf in, out;
	uint32_t max_send_wr, max_recv_wr, max_send_sge, max_recv_sge, max_inline, init_depth;
	uint32_t resp_res; /* RDMA READs of the peer served at once (responder_resources) */
	struct mr_sq_ent *sq;
	uint8_t *inl_block;
	uint64_t sq_head, sq_tx, sq_tail;
	struct mr_rq_ent *rq;
	uint64_t rq_head, rq_tail;
	uint32_t reads_out;
	uint64_t msgs_sent;
	uint64_t drop_after;
	int rnr_wait;
	uint64_t rnr_deadline;
};

struct ferry_hal_rdma_req {
	struct mock_rdma *r;
	int fd;
	struct mr_buf in;
	uint64_t deadline_ns;
	uint8_t pdata[FERRY_HAL_RDMA_PDATA_MAX];
	uint32_t pdata_len;
	uint32_t peer_resp_res; /* the requester's responder_resources (0: not said) */
	struct ferry_hal_rdma_req *next;
};

struct ferry_hal_rdma_listener {
	struct mock_rdma *r;
	int fd;
	uint32_t backlog;
	struct ferry_hal_rdma_req *pending;
	uint32_t npending;
};

/* mock_rdma.c: the device's RDMA part (NULL with rdma=0). */
struct mock_rdma *mock_rdma_of(struct ferry_device *fdev);

/* mock_rdma_mr.c: memory regions (registration, keys, checked copies). */
int mock_rdma_mr_reg(struct ferry_device *dev, void *addr, size_t len, uint32_t access,
		     struct ferry_hal_rdma_mr **out);
int mock_rdma_mr_reg_mem(struct ferry_device *dev, struct ferry_memdomain *domain, uint64_t addr,
			 size_t len, uint32_t access, struct ferry_hal_rdma_mr **out);
void mock_rdma_mr_dereg(struct ferry_hal_rdma_mr *mr);
void mock_rdma_mr_keys(const struct ferry_hal_rdma_mr *mr, struct ferry_hal_rdma_mr_keys *k);
void mock_rdma_mr_free_all(struct mock_rdma *r);
/*
 * Under r->mr_lock (read): check that the SGEs name registered local memory with @p need
 * access (0 for a source) and add up their bytes (*total). 0 or -EIO (logged, rate-limited).
 */
int mock_rdma_sge_check(struct mock_rdma *r, const struct ferry_hal_rdma_sge *sge, uint32_t n,
			uint32_t need, uint64_t *total);
/* Under r->mr_lock (read): copy @p len bytes between @p buf and the SGEs (to_sge: into them);
 * checked with mock_rdma_sge_check() first. 0 or -EIO (a page of a host-memory region is not
 * reachable any more: nothing past it is written). */
int mock_rdma_sge_copy(struct mock_rdma *r, const struct ferry_hal_rdma_sge *sge, uint32_t n,
		       uint8_t *buf, uint64_t len, int to_sge);
/* Under r->mr_lock (read): a remote access of [addr, addr + len) through @p rkey with
 * @p need (REMOTE_READ / REMOTE_WRITE): copies into (write) or out of the region.
 * 0 or -EREMOTEIO (the reason logged, rate-limited). */
int mock_rdma_remote_copy(struct mock_rdma *r, uint32_t rkey, uint64_t addr, uint8_t *buf,
			  uint64_t len, int write);

#endif /* MOCK_RDMA_INTERNAL_H */
