/*
 * NVMe controller core internals shared by sdk/src/nvme_*.c: the subsystem, namespace,
 * queue, request and controller structures and the functions the files call in each other.
 * Never installed.
 *
 * Request life: fetched from an SQ (memory-based) or submitted (message-based) → started
 * (nvme_cmd.c dispatches to nvme_admin*.c / nvme_io.c) → data pointer walked into a host
 * ::ferry_mem (nvme_req_map) → executed (bdev I/O, local buffer push/pull) → completed
 * (nvme_req_complete: error log, stats) → posted (nvme_queue.c: CQE push + interrupt, or
 * send_completion) → put back in the pool. Every asynchronous step is counted in
 * ctrlr->async_ops; a request whose generation differs from the controller's (a reset
 * happened meanwhile) is dropped at its next step instead of continuing.
 */
#ifndef FERRY_NVME_INTERNAL_H
#define FERRY_NVME_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <ferry/bdev.h>
#include <ferry/nvme.h>
#include <ferry/transport.h>
#include <ferry/module/transport.h>
#include "core_internal.h"
#include "nvme_walker.h"

#define NVME_COMP "nvme"

#define NVME_FETCH_BATCH 16     /* SQEs fetched per pull */
#define NVME_MAX_SGL_DESC 128   /* SGL descriptors accepted per command */
#define NVME_ERRLOG_ENTRIES 64  /* error information log ring (ELPE + 1) */
#define NVME_AERL 3             /* async event requests outstanding: AERL + 1 */
#define NVME_MAX_EVENTS 8       /* queued, undelivered async events */
#define NVME_ACL 3              /* abort command limit (0's based) */
#define NVME_MAX_CHANGED_NS 1024
#define NVME_HOST_ERR_LOG 16    /* invalid host accesses logged as errors per controller */
#define NVME_IOSQES 6           /* log2 of the one I/O SQ entry size supported (Identify SQES) */
#define NVME_IOCQES 4           /* log2 of the one I/O CQ entry size supported (Identify CQES) */
#define NVME_WCTEMP 0x157       /* warning composite temperature threshold, K (Identify WCTEMP) */
#define NVME_CCTEMP 0x175       /* critical composite temperature threshold, K (Identify CCTEMP) */
#define NVME_TEMP_SENSORS 0     /* Temperature Sensor 1..8 implemented (SMART reports 0 for each) */
#define NVME_KATO_MAX 3600000u  /* longest Keep Alive Timeout accepted, ms (one hour) */
#define NVME_KAS 1              /* Keep Alive granularity, 100 ms units (Identify KAS) */
#define NVME_POLL_BDEVS 8       /* namespace bdevs an I/O queue remembers for poll_queue */

#define NVME_GEN(sc) FERRY_NVME_STATUS(FERRY_NVME_SCT_GENERIC, sc)
#define NVME_CMD(sc) FERRY_NVME_STATUS(FERRY_NVME_SCT_COMMAND, sc)
#define NVME_MEDIA(sc) FERRY_NVME_STATUS(FERRY_NVME_SCT_MEDIA, sc)

struct nvme_ns {
	uint32_t nsid;
	struct ferry_bdev *bdev;
	uint64_t nsze;      /* LBAs */
	uint32_t lba_bytes; /* bytes transferred per LBA (data + extended metadata) */
	uint32_t ms;        /* extended metadata bytes per LBA */
	uint8_t lbads;      /* log2 data bytes per LBA */
	uint8_t nguid[16];
	uint8_t uuid[16];
	uint32_t inflight;  /* commands executing on it (subsystem thread; the I/O queues of
			       message-based controllers do not count here, see remove_ns) */
};

struct ferry_nvme_subsystem {
	char nqn[FERRY_NVME_NQN_MAX + 1];
	char sn[21];
	char mn[41];
	char fr[9];
	uint16_t vid;
	uint16_t ssvid;
	uint32_t max_ns;
	uint32_t type;       /* FERRY_NVME_SUBSYS_* */
	ferry_nvme_disc_log_cb disc_log;
	void *disc_ctx;
	uint16_t next_cntlid; /* dynamic cntlid allocation: next candidate, 1..0xffef */
	/* [max_ns]; index nsid - 1. Atomic: the I/O queue threads of message-based
	 * controllers read it while add_ns publishes a new namespace. */
	_Atomic(struct nvme_ns *) *ns;
	struct ferry_nvme_ctrlr *ctrlrs;
	struct ferry_nvme_subsystem *next;
};

struct nvme_req;

/* Counters of one I/O queue of a message-based controller: written by the queue's thread
 * only (load + store, no read-modify-write needed), read by get_stats / the SMART log on
 * the admin thread. */
struct nvme_qstats {
	_Atomic uint64_t io_cmds, errors, bytes_read, bytes_written, read_cmds, write_cmds;
};

/* State of one I/O queue of a message-based controller, owned by the queue's thread. */
struct nvme_qio {
	struct nvme_req *reqs; /* [size]: the queue's own request pool */
	struct nvme_req *free;
	uint32_t free_count;
	struct ferry_accel_chan *chan;
	struct ferry_bdev *poll_bdevs[NVME_POLL_BDEVS];
	uint32_t npoll;
	int poll_all; /* more bdevs than poll_bdevs: poll_queue polls every namespace */
	struct nvme_qstats st;
	_Atomic uint32_t busy; /* commands executing: read by the admin thread (shutdown) */
};

struct nvme_cq {
	int valid;
	uint16_t qid;
	uint32_t size;
	uint64_t base;
	uint32_t head;     /* from the host's doorbell */
	uint32_t tail;     /* next slot we write */
	uint8_t phase;     /* phase tag written at tail */
	int ien;
	uint16_t vector;
	uint32_t reserved; /* slots promised to fetched commands */
	uint32_t sq_refs;  /* SQs completing into this CQ */
	struct nvme_req *pend_head, *pend_tail; /* completions waiting for room */
	uint32_t npending;
};

struct nvme_sq {
	int valid;
	uint16_t qid;
	uint16_t cqid;
	uint32_t size;
	uint64_t base;
	uint32_t head;     /* next entry to fetch (reported as SQHD) */
	uint32_t tail;     /* from the host's doorbell */
	uint32_t inflight; /* commands from this SQ not yet posted */
	int fetching;
	uint32_t fetch_n;
	uint32_t fetch_gen;
	struct ferry_nvme_sqe *fetch_buf;       /* [NVME_FETCH_BATCH] */
	struct nvme_req *fetch_reqs[NVME_FETCH_BATCH];
	struct iovec fetch_liov, fetch_riov;
	struct ferry_mem fetch_local, fetch_remote;
	int deleting;
	struct nvme_req *delete_req; /* Delete I/O SQ waiting for inflight == 0 */
	struct ferry_nvme_ctrlr *ctrlr;
	struct nvme_qio *qio; /* message-based I/O queues (qid >= 1): per-queue state */
};

typedef void (*nvme_req_fn)(struct nvme_req *req);

struct nvme_req {
	struct ferry_nvme_ctrlr *ctrlr;
	struct nvme_req *next; /* free list / CQ pending list */
	struct ferry_nvme_sqe cmd;
	struct ferry_nvme_cqe cpl;
	uint16_t status;   /* 15-bit status of the completion */
	uint32_t errlog_idx;   /* its Error Information log entry (if errlog_count != 0) */
	uint64_t errlog_count; /* that entry's Error Count; 0: none */
	uint16_t sqid;
	uint16_t cqid;
	uint32_t gen;
	int reserved_cq;   /* holds a CQ slot reservation */
	int admin;
	struct nvme_qio *qio; /* message-based I/O queue it came from: lives on that queue's
				 thread (its pool, counters, channel; never stale) */
	void *cmd_ctx;     /* message-based transports */
	struct ferry_mem msg_data;
	struct nvme_ns *ns;
	/* data */
	uint64_t xfer_len;
	int c2h;
	nvme_req_fn next_fn;
	struct ferry_mem data;  /* the command's data described in its domain */
	struct nvme_walker walker;
	struct iovec *iov;      /* [iov_cap] */
	uint8_t *kind;          /* [iov_cap] */
	uint32_t iov_cap;
	struct iovec rd_liov, rd_riov;
	struct ferry_mem rd_local, rd_remote;
	/* local buffer: admin data, DSM ranges, bit-bucket bounce */
	uint8_t *buf;
	size_t buf_len;
	struct iovec buf_iov;
	struct ferry_mem buf_mem;
	struct iovec *bounce_iov; /* bit bucket: local side of the data segments */
	/* execution */
	struct ferry_bdev_io bio;
	int *bio_sync;          /* set while ferry_bdev_submit() runs: a completion inside it
				   only marks this flag (see nvme_io.c bio_submit()) */
	uint32_t idx, cnt;      /* DSM ranges / flush-all namespaces */
	/* CQE write */
	struct iovec cqe_liov, cqe_riov;
	struct ferry_mem cqe_local, cqe_remote;
};

struct ferry_nvme_ctrlr {
	struct ferry_nvme_subsystem *subsys;
	struct ferry_nvme_ctrlr *next_in_subsys;
	struct ferry_transport *transport;
	const struct ferry_transport_ops *tops;
	void *tctx;
	int message;
	struct ferry_memdomain *host;
	void *host_ctx;
	struct ferry_accel_chan *accel_chan;
	uint16_t cntlid;
	/* fabrics identity (message-based) */
	char hostnqn[FERRY_NVME_NQN_MAX + 1];
	uint8_t hostid[16];
	uint32_t ioccsz, iorcsz, sgls;
	uint16_t icdoff;
	uint8_t msdbd;
	uint8_t cntrltype;
	int discovery;
	/* Closed (0) unless ready and neither resetting, shutting down nor failed: the one
	 * controller state the I/O queue threads read (ctrlr_gate_update()). */
	atomic_int io_open;
	pthread_mutex_t err_lock; /* Error Information log, for I/O queue threads */
	/* configuration */
	uint32_t mqes;   /* 0's based */
	uint16_t max_io_queues;
	uint16_t num_vectors;
	uint8_t mdts;
	uint8_t mpsmax;
	uint32_t version;
	uint32_t flags;
	uint32_t max_inflight;
	uint64_t max_xfer;
	uint64_t cap;
	uint32_t bar_size;
	/* registers */
	uint32_t cc;
	uint32_t csts;
	uint32_t aqa;
	uint32_t intms;
	uint64_t asq;
	uint64_t acq;
	/* state */
	uint32_t page_size;
	int resetting;
	int shutting_down;
	int shutdown_flushing;
	uint32_t shutdown_idx;
	struct ferry_bdev_io shutdown_bio;
	int *shutdown_sync; /* set while the shutdown flush is submitted (nvme_ctrlr.c) */
	uint32_t gen;
	uint32_t async_ops;
	/* queues: [max_io_queues + 1] */
	struct nvme_sq *sq;
	struct nvme_cq *cq;
	uint16_t rr_next;
	/* requests */
	struct nvme_req *reqs;
	struct nvme_req *free_reqs;
	uint32_t free_count;
	struct iovec *iov_pool;
	uint8_t *kind_pool;
	/* features */
	uint32_t feat_arb;
	uint32_t feat_pm;
	/* Temperature Threshold per TMPSEL (0 composite, 1..NVME_TEMP_SENSORS) and THSEL
	 * (0 over, 1 under), in K */
	uint16_t feat_temp[1 + NVME_TEMP_SENSORS][2];
	uint32_t feat_errrec;
	uint32_t feat_vwc;
	uint32_t feat_coalesce;
	uint32_t feat_wan;
	uint32_t feat_aec;
	uint32_t feat_kato; /* Keep Alive Timeout, ms (Connect KATO, Set Features) */
	uint32_t kato_connect; /* the Connect value, restored by a reset */
	uint16_t nsqa, ncqa; /* allocated I/O queues, 0's based */
	uint8_t *vec_cd;     /* [num_vectors] coalescing disable */
	uint32_t *vec_count; /* [num_vectors] coalesced, not yet raised */
	uint32_t masked_pending; /* vectors < 32 that fired while masked (INTMS) */
	uint32_t coalesced;      /* vectors with a non-zero vec_count */
	/* asynchronous events */
	struct nvme_req *aer[NVME_AERL + 1];
	uint32_t aer_count;
	uint32_t events[NVME_MAX_EVENTS];
	uint32_t nevents;
	uint32_t aen_masked; /* 1 << event type: reported, waiting for its log page */
	/* logs */
	struct ferry_nvme_error_log errlog[NVME_ERRLOG_ENTRIES];
	uint32_t errlog_next;
	uint32_t errlog_count;
	uint64_t error_count;
	uint32_t changed_ns[NVME_MAX_CHANGED_NS];
	uint32_t changed_cnt;
	int changed_overflow;
	/* SMART counters */
	uint64_t smart_units_read;    /* bytes */
	uint64_t smart_units_written; /* bytes */
	uint64_t smart_read_cmds;
	uint64_t smart_write_cmds;
	struct ferry_nvme_ctrlr_stats stats;
	atomic_uint host_errs_logged; /* see nvme_host_err_level() */
};

/* nvme_ctrlr.c: re-evaluate io_open after a state change (admin thread). */
void nvme_gate_update(struct ferry_nvme_ctrlr *c);
/* message-based I/O queues connected (admin thread) */
int nvme_msg_ioq_connected(const struct ferry_nvme_ctrlr *c);
void nvme_qstats_retire(struct ferry_nvme_ctrlr *c, struct nvme_qio *qio);
/* single-writer counter update (owner thread only) */
void nvme_stat_add(_Atomic uint64_t *p, uint64_t v);

/* nvme_subsystem.c */
struct nvme_ns *nvme_subsys_ns(struct ferry_nvme_subsystem *s, uint32_t nsid);
void nvme_subsys_link(struct ferry_nvme_subsystem *s, struct ferry_nvme_ctrlr *c);
void nvme_subsys_unlink(struct ferry_nvme_subsystem *s, struct ferry_nvme_ctrlr *c);
int nvme_subsys_cntlid_used(struct ferry_nvme_subsystem *s, uint16_t cntlid);
#define NVME_CNTLID_MAX 0xffef
uint16_t nvme_subsys_alloc_cntlid(struct ferry_nvme_subsystem *s);

/* nvme_ctrlr.c */
void nvme_fatal(struct ferry_nvme_ctrlr *c, const char *why);
void nvme_progress(struct ferry_nvme_ctrlr *c);
void nvme_features_default(struct ferry_nvme_ctrlr *c);
void nvme_event(struct ferry_nvme_ctrlr *c, enum ferry_nvme_ctrlr_event ev);
/* Level for logging what a host can trigger at will (invalid accesses, refused enables,
 * fatal errors, bad command data): @p level for the first NVME_HOST_ERR_LOG messages of the
 * controller, then debug (a host must not be able to flood the log at MMIO rate). Every
 * host-triggerable message of sdk/src/nvme goes through it. */
enum ferry_log_level nvme_host_level(struct ferry_nvme_ctrlr *c, enum ferry_log_level level);
enum ferry_log_level nvme_host_err_level(struct ferry_nvme_ctrlr *c); /* (c, FERRY_LOG_ERROR) */

/* nvme_queue.c */
struct nvme_req *nvme_req_get(struct ferry_nvme_ctrlr *c, struct nvme_qio *qio);
int nvme_qio_alloc(struct nvme_sq *sq, uint32_t entries);
void nvme_qio_free(struct nvme_sq *sq);
void nvme_req_put(struct nvme_req *req);
void nvme_req_drop(struct nvme_req *req);
int nvme_req_stale(const struct nvme_req *req);
void nvme_post(struct nvme_req *req);
int nvme_doorbell(struct ferry_nvme_ctrlr *c, uint32_t offset, uint32_t val);
int nvme_fetch(struct ferry_nvme_ctrlr *c, uint32_t max);
void nvme_cq_init(struct nvme_cq *cq, uint16_t qid, uint32_t size, uint64_t base, int ien,
		  uint16_t vector);
void nvme_sq_init(struct nvme_sq *sq, uint16_t qid, uint32_t size, uint64_t base, uint16_t cqid);
void nvme_queues_drop(struct ferry_nvme_ctrlr *c, int keep_admin);
void nvme_drop_parked(struct ferry_nvme_ctrlr *c);
void nvme_irq(struct ferry_nvme_ctrlr *c, uint16_t vector);
void nvme_irq_flush(struct ferry_nvme_ctrlr *c);
void nvme_irq_unmasked(struct ferry_nvme_ctrlr *c, uint32_t cleared);
void nvme_async_start(struct ferry_nvme_ctrlr *c);
void nvme_async_end(struct ferry_nvme_ctrlr *c);
/* Same for a request's step: message-based I/O queue requests are tracked by their queue's
 * inflight count instead (the controller-wide counter belongs to the admin thread). */
void nvme_req_async_start(struct nvme_req *req);
void nvme_req_async_end(struct nvme_req *req);
void nvme_aer_event(struct ferry_nvme_ctrlr *c, uint8_t type, uint8_t info, uint8_t lid);
void nvme_aer_unmask(struct ferry_nvme_ctrlr *c, uint8_t type);
void nvme_aer_dispatch(struct ferry_nvme_ctrlr *c);

/* nvme_cmd.c */
void nvme_req_start(struct nvme_req *req);
void nvme_req_complete(struct nvme_req *req, uint16_t status);
void nvme_req_map(struct nvme_req *req, uint64_t len, int c2h, nvme_req_fn next);
int nvme_req_buf(struct nvme_req *req, size_t len);
void nvme_req_push_buf(struct nvme_req *req);
void nvme_req_pull_buf(struct nvme_req *req, nvme_req_fn next);
uint32_t nvme_errlog_add(struct ferry_nvme_ctrlr *c, uint16_t sqid, uint16_t cid,
			 uint16_t status, uint32_t nsid, uint64_t lba, uint64_t *count);
void nvme_errlog_posted(struct nvme_req *req, uint16_t cqe_status);
uint16_t nvme_bdev_status(const struct ferry_bdev_io *io);

/* nvme_admin.c / nvme_admin_info.c / nvme_io.c */
void nvme_admin_start(struct nvme_req *req);
void nvme_admin_identify(struct nvme_req *req);
void nvme_admin_get_log_page(struct nvme_req *req);
void nvme_ctrlr_totals(const struct ferry_nvme_ctrlr *c, struct ferry_nvme_ctrlr_stats *st,
		       uint64_t smart[4]);
void nvme_io_start(struct nvme_req *req);
void nvme_ns_changed(struct ferry_nvme_ctrlr *c, uint32_t nsid);

#endif /* FERRY_NVME_INTERNAL_H */
