/*
 * The "rxe" backend's private state, shared by its files: the device (one librdmacm verbs
 * context, one protection domain), memory regions, completion queues, queue pairs, listeners
 * and pending connection requests. Not installed; nothing outside backends/rxe includes it.
 *
 * Design notes:
 * - Every queue pair (and every pending connection request) has its own non-blocking
 *   rdma_cm event channel, so cq_poll() / qp_state() advance exactly the QPs of one CQ
 *   without a lock shared between CQs, and cq_wait() polls the CQ's completion channel plus
 *   the event channels of its QPs. A request taken from a listener is migrated to its own
 *   channel at once, so it outlives the listener.
 * - Every send work request is posted signaled: the backend keeps one slot per outstanding
 *   request (the ibv wr_id is the slot, bit 63 set for receives), so the queue-full check and
 *   the completion counters are exact; a successful completion the caller did not ask for is
 *   consumed silently.
 * - cq_poll() takes the CM events of its QPs at most every RXE_DRIVE_NS (one syscall per QP
 *   each time: not on every poll of a busy loop); cq_wait() and qp_state() take them at once.
 * - Since every work request has a CQE underneath, the CQ is grown (ibv_resize_cq, up to
 *   max_cqe) to hold the send and receive slots of all its QPs: it cannot overflow.
 * - A CQE is matched to its QP by qp_num among the CQ's live QPs; qp_destroy() drains the CQ
 *   into a backlog (dropping the dead QP's entries) before and after destroying the QP, so no
 *   completion of a destroyed QP is reported even when its number is reused.
 * - A connecting QP has no verbs QP until its route is resolved: receives posted before that
 *   wait in the QP's slot table and are posted when the QP is created (or flushed with
 *   -ECANCELED, as synthetic completions, if the connection fails first).
 */
#ifndef FERRY_RXE_INTERNAL_H
#define FERRY_RXE_INTERNAL_H

#include <pthread.h>
#include <stdint.h>
#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>
#include <ferry/log.h>
#include <ferry/hal/hal.h>
#include <ferry/hal/rdma.h>
#include <ferry/hal/sock.h>

#define RXE_COMP "rxe"
#define RXE_ERR(...) ferry_log(FERRY_LOG_ERROR, RXE_COMP, __VA_ARGS__)
#define RXE_WARN(...) ferry_log(FERRY_LOG_WARN, RXE_COMP, __VA_ARGS__)
#define RXE_DBG(...) ferry_log(FERRY_LOG_DEBUG, RXE_COMP, __VA_ARGS__)

/** The ibv wr_id bit of receives (the rest is the slot index). */
#define RXE_WRID_RECV (1ull << 63)
/** cq_poll() advances the connection manager of its QPs at most this often. */
#define RXE_DRIVE_NS 200000ull
/** Upper bound of SGEs one work request may have here (the device may offer fewer). */
#define RXE_SGE_MAX 32u
/** IB CM reject reason "consumer defined" (the only one carrying the peer's private data). */
#define RXE_REJ_CONSUMER_DEFINED 28

struct rxe_stats {
	uint64_t v[12]; /* in the order of struct ferry_hal_rdma_stats */
};
enum {
	RXE_ST_SENDS,
	RXE_ST_RECVS,
	RXE_ST_WRITES,
	RXE_ST_READS,
	RXE_ST_SEND_BYTES,
	RXE_ST_RECV_BYTES,
	RXE_ST_WRITE_BYTES,
	RXE_ST_READ_BYTES,
	RXE_ST_WC_ERRORS,
	RXE_ST_MR_REGS,
	RXE_ST_MR_DEREGS,
	RXE_ST_QP_ERRORS,
};

/* The device's private state: the socket kit's handle first (ferry/hal/sock.h finds it). */
struct rxe_dev {
	struct ferry_hal_lsock_dev *ld;
	struct ferry_device *fdev;
	struct ibv_context **devlist; /* rdma_get_devices(); freed at close */
	struct ibv_context *ctx;      /* the one shared with every cm_id of the device */
	struct ibv_pd *pd;
	struct ibv_device_attr attr;
	uint32_t max_inline; /* probed at open */
	uint32_t max_sge;    /* min(attr.max_sge, RXE_SGE_MAX) */
	char name[32];
	uint64_t nobjs;      /* live regions, CQs, QPs, listeners, requests (atomic) */
	struct rxe_stats st; /* atomic counters */
};

struct ferry_hal_rdma_mr {
	struct rxe_dev *dev;
	struct ibv_mr *mr;
};

/* A completion made by the backend (a receive flushed before the verbs QP existed). */
struct rxe_synth {
	struct ferry_hal_rdma_qp *qp;
	struct ferry_hal_rdma_wc wc;
};

struct ferry_hal_rdma_cq {
	struct rxe_dev *dev;
	struct ibv_comp_channel *ch;
	struct ibv_cq *cq;
	uint32_t depth;
	uint64_t need; /* send + receive slots of the CQ's QPs: the CQ is grown to hold them */
	uint64_t last_drive_ns; /* when cq_poll() last took its QPs' CM events (0: at once) */
	int armed;              /* ibv_req_notify_cq() done, no event taken since */
	pthread_mutex_t lock;   /* the QP list (connect() may run on another thread) */
	struct ferry_hal_rdma_qp *qps; /* live QPs on this CQ */
	struct ibv_wc *backlog;        /* CQEs taken from the CQ but not reported yet */
	uint32_t nbacklog, capbacklog;
	struct rxe_synth *synth;
	uint32_t nsynth, capsynth;
};

enum rxe_qp_phase {
	RXE_QP_ADDR,   /* active: resolving the address */
	RXE_QP_ROUTE,  /* active: resolving the route */
	RXE_QP_CONN,   /* connect sent / accept sent: waiting for ESTABLISHED */
	RXE_QP_EST,    /* established */
	RXE_QP_FAILED, /* state holds the sticky error */
};

struct rxe_slot {
	uint64_t wr_id;
	uint32_t opcode; /* FERRY_HAL_RDMA_OP_* */
	uint32_t flags;  /* FERRY_HAL_RDMA_WR_F_* */
	uint32_t bytes;
	uint32_t next_free; /* free list link */
	int used;
	/* receives posted before the verbs QP exists */
	struct ibv_sge pend_sge[RXE_SGE_MAX];
	uint32_t pend_nsge;
	int pending;
};

struct ferry_hal_rdma_qp {
	struct rxe_dev *dev;
	struct ferry_hal_rdma_cq *cq;
	struct rdma_event_channel *ch;
	struct rdma_cm_id *id;
	struct ibv_qp *qp; /* NULL until created */
	uint32_t qp_num;
	void *ctx;
	int active;
	enum rxe_qp_phase phase;
	int state; /* 0, -EINPROGRESS or the sticky failure */
	int was_established;
	uint64_t deadline_ns; /* active: connection deadline (0: none) */
	/* asked sizes */
	uint32_t max_send_wr, max_recv_wr, max_send_sge, max_recv_sge, max_inline;
	uint8_t initiator_depth, responder_resources;
	/* connect request private data (active) */
	uint8_t req_pdata[FERRY_HAL_RDMA_PDATA_MAX];
	uint32_t req_pdata_len;
	/* peer's accept / reject private data */
	uint8_t peer_pdata[FERRY_HAL_RDMA_PDATA_MAX];
	uint32_t peer_pdata_len;
	/* outstanding work requests */
	struct rxe_slot *sslots, *rslots;
	uint32_t sfree, rfree;          /* free list heads (UINT32_MAX: none) */
	uint32_t nsend, nrecv;          /* outstanding */
	int npending;                   /* receives waiting for the verbs QP */
	struct ferry_hal_rdma_qp *next; /* the CQ's list */
};

struct ferry_hal_rdma_listener {
	struct rxe_dev *dev;
	struct rdma_event_channel *ch;
	struct rdma_cm_id *id;
};

struct ferry_hal_rdma_req {
	struct rxe_dev *dev;
	struct rdma_event_channel *ch; /* the request's own channel (becomes the QP's) */
	struct rdma_cm_id *id;
	uint8_t pdata[FERRY_HAL_RDMA_PDATA_MAX];
	uint32_t pdata_len;
	uint8_t peer_initiator_depth, peer_responder_resources;
};

/* rxe_backend.c */
struct rxe_dev *rxe_dev_of(struct ferry_device *fdev);
static inline void rxe_stat_add(struct rxe_dev *d, int which, uint64_t n)
{
	__atomic_fetch_add(&d->st.v[which], n, __ATOMIC_RELAXED);
}
static inline void rxe_obj_get(struct rxe_dev *d)
{
	__atomic_fetch_add(&d->nobjs, 1, __ATOMIC_RELAXED);
}
static inline void rxe_obj_put(struct rxe_dev *d)
{
	__atomic_fetch_sub(&d->nobjs, 1, __ATOMIC_RELAXED);
}
uint64_t rxe_now_ns(void);
int rxe_set_nonblock(int fd);
/* "a.b.c.d:port" -> sockaddr_in; -EINVAL (logged) on anything else. */
int rxe_addr_parse(const char *what, const char *str, struct sockaddr_in *sa);
/* sockaddr -> "a.b.c.d:port"; -ENOBUFS @p len too small, -ENOTCONN no address. */
int rxe_addr_format(const struct sockaddr *sa, char *buf, size_t len);

/* rxe_cm.c: connection manager */
int rxe_listen(struct ferry_device *fdev, const char *addr, uint32_t backlog,
	       struct ferry_hal_rdma_listener **out);
int rxe_listener_addr(struct ferry_hal_rdma_listener *l, char *buf, size_t len);
void rxe_listener_close(struct ferry_hal_rdma_listener *l);
int rxe_get_request(struct ferry_hal_rdma_listener *l, struct ferry_hal_rdma_req **out,
		    const void **pdata, uint32_t *pdata_len);
int rxe_accept(struct ferry_hal_rdma_req *req, const struct ferry_hal_rdma_qp_attr *attr,
	       const void *pdata, uint32_t pdata_len, struct ferry_hal_rdma_qp **out);
void rxe_reject(struct ferry_hal_rdma_req *req, const void *pdata, uint32_t pdata_len);
int rxe_connect(struct ferry_device *fdev, const char *addr,
		const struct ferry_hal_rdma_qp_attr *attr, const void *pdata, uint32_t pdata_len,
		uint32_t timeout_ms, struct ferry_hal_rdma_qp **out);
int rxe_qp_state(struct ferry_hal_rdma_qp *qp, const void **pdata, uint32_t *pdata_len);
void rxe_qp_destroy(struct ferry_hal_rdma_qp *qp);
int rxe_qp_addr(struct ferry_hal_rdma_qp *qp, int peer, char *buf, size_t len);
/* Takes the QP's pending CM events (non-blocking) and checks its deadline. */
void rxe_qp_drive(struct ferry_hal_rdma_qp *qp);
/* The QP enters the sticky failure @p err (first one wins); verbs QP to the error state. */
void rxe_qp_fail(struct ferry_hal_rdma_qp *qp, int err, const char *why);

/* rxe_verbs.c: CQs and work requests */
int rxe_cq_create(struct ferry_device *fdev, uint32_t depth, struct ferry_hal_rdma_cq **out);
void rxe_cq_destroy(struct ferry_hal_rdma_cq *cq);
int rxe_cq_poll(struct ferry_hal_rdma_cq *cq, struct ferry_hal_rdma_wc *wc, uint32_t max);
int rxe_cq_wait(struct ferry_hal_rdma_cq *cq, uint32_t timeout_us);
int rxe_post_recv(struct ferry_hal_rdma_qp *qp, uint64_t wr_id,
		  const struct ferry_hal_rdma_sge *sge, uint32_t nsge);
int rxe_post_send(struct ferry_hal_rdma_qp *qp, const struct ferry_hal_rdma_wr *wr,
		  const struct ferry_hal_rdma_wr **bad);
/* QP bookkeeping used by rxe_cm.c */
int rxe_qp_slots_init(struct ferry_hal_rdma_qp *qp);
void rxe_qp_slots_free(struct ferry_hal_rdma_qp *qp);
/* Posts the receives that waited for the verbs QP; -errno if one failed. */
int rxe_qp_post_pending(struct ferry_hal_rdma_qp *qp);
/* Turns the waiting receives into -ECANCELED synthetic completions. */
void rxe_qp_flush_pending(struct ferry_hal_rdma_qp *qp);
void rxe_cq_add_qp(struct ferry_hal_rdma_cq *cq, struct ferry_hal_rdma_qp *qp);
/* Removes @p qp from its CQ and drops every completion of it the CQ still holds. */
void rxe_cq_forget_qp(struct ferry_hal_rdma_cq *cq, struct ferry_hal_rdma_qp *qp);
/* Moves the CQ's current CQEs to its backlog, dropping those of qp_num @p drop_qpn. */
void rxe_cq_drain(struct ferry_hal_rdma_cq *cq, int have_drop, uint32_t drop_qpn);

#endif /* FERRY_RXE_INTERNAL_H */
