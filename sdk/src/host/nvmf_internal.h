/*
 * Internal state of the NVMe-oF/TCP initiator (the nvmf bdev): the controller (one per bdev),
 * its queue pairs (one TCP connection each), their command slots, and the functions the
 * files of sdk/src/host/ share. Never installed.
 */
#ifndef NVMF_INTERNAL_H
#define NVMF_INTERNAL_H

#include <stdint.h>
#include <sys/uio.h>
#include <ferry/bdev.h>
#include <ferry/bdev_nvmf.h>
#include <ferry/module/bdev.h>
#include <ferry/module/nvme_tcp.h>
#include <ferry/module/rdma.h>
#include <ferry/nvme_spec.h>
#include <ferry/hal/hal.h>

#define NVMF_COMP "bdev_nvmf"

#define NVMF_ADMIN_DEPTH 32                  /* admin queue slots (SQSIZE 31) */
#define NVMF_MAX_QUEUES 64                   /* I/O queues per controller */
#define NVMF_CLOCK_POLLS 64u                 /* connected polls per clock read (a power of two) */
#define NVMF_SLOT_IOV 16                     /* data segments a slot sends/receives directly */
#define NVMF_TX_IOV (NVMF_SLOT_IOV + 2)      /* header + data + digest */
#define NVMF_RXBUF 16384                     /* receive buffer for headers and small PDUs */
#define NVMF_STAGING_MAX 64                  /* staging buffers of the pool */
#define NVMF_STAGING_SIZE_MAX (1024u * 1024) /* largest staging buffer (lazily backed) */
#define NVMF_ADMIN_ICD 8192 /* in-capsule data the admin queue always takes (NVMe/TCP) */
/* I/O command timeout, in scans of the I/O queues every KATO / 2: a command still busy after
 * this many scans (3 x KATO, 30 s by default as Linux's io_timeout) fails its connection. */
#define NVMF_IO_TIMEOUT_SCANS 6
#define NVMF_DDP_SGES 64   /* segments of one DDP destination we build (capped by the NIC's) */
#define NVMF_DDP_MISSES 32 /* byte ranges of a host-placed read the NIC did not place */
#define NVMF_PUSH_IOV 64   /* segments of the push of those ranges into the I/O's memory */
#define NVMF_DDP_DEFER 16  /* PDUs of one command whose digest is checked after placement */

/* DDP state of a slot (nvmf_slot::ddp). */
enum nvmf_ddp_state {
	DDP_NONE = 0,
	DDP_MAPPED = 1,   /* ddp_setup() done: the NIC may place this command's data */
	DDP_TEARDOWN = 2, /* last PDU processed, ddp_teardown() pending: the slot stays busy */
	DDP_REAPED = 3,   /* the teardown callback ran: on the queue's reap list */
	DDP_PUSHING = 4,  /* pushing bytes from the staging buffer into the I/O's memory, or
			   * pulling placed PDUs back to check their digest */
};

/* A byte range of a command's data. */
struct nvmf_range {
	uint32_t off, len;
};

/* Slot states. */
enum nvmf_slot_state {
	SLOT_FREE = 0,
	SLOT_BUSY = 1, /* command sent or being sent, waiting for its completion */
};

struct nvmf_qpair;
struct nvmf_ctrlr;
struct nvmf_slot;
struct nvmf_rdma_qpair; /* nvmf_rdma.c */
struct nvmf_rdma_ctrlr; /* nvmf_rdma.c */

/*
 * The queue-pair transport seam: the controller (nvmf_ctrlr.c) and the I/O code (nvmf_io.c)
 * drive a queue pair only through these ops (by the nvmf_qpair_* and nvmf_slot_submit()
 * wrappers below); NVMe/TCP (nvmf_qpair.c) and NVMe-oF/RDMA (nvmf_rdma.c) implement them.
 * Reconnect, keep-alive, timeouts, retries and the no-lost-write rule stay shared: a transport
 * reports a loss with nvmf_qpair_fail() and completes a command with nvmf_slot_complete().
 */
struct nvmf_transport {
	const char *name;
	/* Connect the queue and run its transport handshake (not the Fabrics Connect). */
	int (*connect)(struct nvmf_qpair *q, uint64_t deadline_ns);
	/* Close the connection; no completion of its commands is seen afterwards. */
	void (*close)(struct nvmf_qpair *q);
	/* Free what connect() kept across connections (nvmf_qpair_fini()); may be NULL. */
	void (*fini)(struct nvmf_qpair *q);
	/* Build the command of a slot and queue it (flush() sends it). */
	int (*submit)(struct nvmf_slot *s);
	/* Receive and handle what the controller sent; work done (>= 0) or a negative errno. */
	int (*process)(struct nvmf_qpair *q);
	/* Send what is queued. */
	int (*flush)(struct nvmf_qpair *q);
	/* Drive @p q until the synchronous command of @p s is done, the queue failed or the
	 * deadline passed (0, -ECONNRESET, -ETIMEDOUT). */
	int (*wait)(struct nvmf_qpair *q, struct nvmf_slot *s, uint64_t deadline_ns);
};
extern const struct nvmf_transport nvmf_tcp_transport;
extern const struct nvmf_transport nvmf_rdma_transport;

/* One command slot of a queue pair (cid -> slot by the low bits of the cid). */
struct nvmf_slot {
	struct nvmf_slot *next_free;
	struct nvmf_slot *tx_next; /* on the queue pair's send FIFO */
	struct nvmf_qpair *q;
	uint16_t idx;
	uint16_t cid; /* idx | generation << idx_bits */
	uint8_t state;
	uint8_t on_tx; /* queued for sending */
	uint8_t dir;   /* 0 none, 1 host -> controller, 2 controller -> host */
	uint8_t icd;   /* data went in the capsule */
	uint8_t r2t_active;
	uint8_t done;         /* synchronous admin: completed */
	uint8_t failed;       /* a data error seen (digest, short read) */
	uint8_t got_success;  /* C2H SUCCESS seen */
	uint8_t resp_pending; /* completed while our H2CData was still queued */
	uint8_t is_ka;        /* a keep-alive */
	uint8_t age;          /* I/O timeout scans seen busy (nvmf_ctrlr.c) */
	uint8_t rdirect;      /* RDMA: the data moves straight from/to the I/O's memory */
	uint8_t nheld;        /* RDMA: entries of held[] */
	/* RDMA: the registration-map segments the keyed SGL names, held (not evictable) until
	 * the slot is put: the controller uses the keys until the CQE (nvmf_slot_put()) */
	struct ferry_rdma_seg held[FERRY_NVMF_RDMA_SGL_MAX];
	struct ferry_nvme_sqe sqe;
	struct ferry_nvme_cqe cqe; /* synchronous admin: the completion */
	int status;                /* completion status as errno */
	struct ferry_bdev_io *io;  /* NULL: an internal admin command */
	/* data: system-domain segments (RDMA-direct: segments of data_dom) */
	struct ferry_memdomain *data_dom; /* RDMA-direct: the I/O's domain; NULL: system */
	void *data_dom_ctx;
	const struct iovec *data;
	uint32_t data_cnt;
	uint32_t data_off; /* this command's data starts this far into data (a part of an I/O) */
	uint32_t len;
	uint32_t c2h_next; /* next expected C2HData offset */
	uint32_t h2c_next; /* next expected R2T offset */
	uint32_t r2t_end;  /* end of the R2T being served */
	uint32_t h2c_off;  /* next H2CData offset inside the R2T */
	uint16_t ttag;
	/* what is being sent */
	struct iovec tx_iov[NVMF_TX_IOV];
	uint32_t tx_cnt, tx_idx;
	size_t tx_off;
	uint8_t hdr[FERRY_NVME_TCP_TX_HDR_MAX];
	uint32_t ddgst;
	struct ferry_nvme_dsm_range dsm; /* unmap data */
	struct iovec dsm_iov;
	/* receive offload (nvmf_ddp.c) */
	uint8_t ddp;       /* enum nvmf_ddp_state */
	uint8_t ddp_apart; /* mapped into another domain: misses land in the staging buffer */
	uint8_t ddp_redo;  /* the I/O is redone without offload (nvmf_slot_complete()) */
	uint8_t part_push; /* push this command's range(s) from staging into io->mem at the end */
	struct nvmf_slot *reap_next;
	uint32_t rx_cur; /* next data offset of the C2HData being received (APART tracking) */
	uint32_t nmiss;  /* ranges in miss[] to push (part_push) */
	struct nvmf_range miss[NVMF_DDP_MISSES];
	struct iovec ddp_iov[NVMF_DDP_SGES];
	struct iovec push_dst[NVMF_PUSH_IOV];
	struct iovec push_src[NVMF_DDP_MISSES];
	struct ferry_mem push_mem[2]; /* the push's (pull's) two descriptors */
	/* PDUs placed partly in host memory whose digest software must check (crc_deferred):
	 * pulled back after the push and verified against their received digest */
	uint32_t ndefer;
	struct nvmf_range defer[NVMF_DDP_DEFER];
	uint32_t defer_dgst[NVMF_DDP_DEFER];
	struct iovec pull_dst[NVMF_DDP_DEFER];
};

struct nvmf_qpair {
	struct nvmf_ctrlr *c;
	uint16_t qid;
	uint16_t depth;
	uint16_t idx_bits;
	uint16_t gen;
	int connected;
	int in_group;
	int linger; /* an H2CTermReq went out: close gracefully */
	int failed;
	struct ferry_hal_sock *sock;
	struct ferry_nvme_tcp_params p;
	struct ferry_nvme_tcp_rx rx;
	uint32_t max_icd; /* in-capsule data bytes this queue takes */
	uint32_t maxh2cdata;
	struct nvmf_slot *slots;
	struct nvmf_slot *free;
	uint32_t busy;
	struct nvmf_slot *tx_head, *tx_tail;
	/* receive */
	uint8_t *rxbuf;
	uint32_t rx_pos, rx_len;
	struct iovec rx_iov[NVMF_SLOT_IOV + 2];
	struct nvmf_slot *rx_slot; /* slot of the C2HData being received */
	uint8_t term[FERRY_NVME_TCP_TERM_MAX_PLEN];
	/* receive offload */
	int ddp;         /* the NIC offloads this queue's receive */
	int ddp_closing; /* inside ddp_queue_del(): teardown callbacks only release */
	int resync_pending;
	uint64_t resync_seq;
	uint32_t rx_fl;              /* HAL receive flags of the bytes in rxbuf */
	uint64_t placed0;            /* rx.stats.placed_bytes at the current C2HData's header */
	uint64_t copied0;            /* rx.stats.copied_bytes before the last feed */
	struct nvmf_slot *reap_head; /* slots whose teardown completed, finished by the poll */
	struct nvmf_rdma_qpair *rq;  /* RDMA: the QP, its CQ and registered slab */
};

/* The per-I/O state kept in ferry_bdev_io_module(io): ctx links pending I/Os; iov[0] is the
 * staging buffer (iov[1].iov_len its pool index + 1, 0 none); iov[1].iov_base counts retries;
 * mem describes iov[0]. An I/O larger than one command goes out as several commands (parts):
 * words[0] is the number of blocks already issued, words[1] the parts in flight (low 32 bits)
 * and the flags IO_F_*, words[2] the first failing part's status (a negative errno). */

struct nvmf_ctrlr {
	uint32_t polls; /* nvmf_ctrlr_poll() calls (the clock is read every NVMF_CLOCK_POLLS) */
	const struct nvmf_transport *tr; /* the queue pairs' transport */
	int rdma;                        /* tr is nvmf_rdma_transport */
	struct nvmf_rdma_ctrlr *rc;      /* RDMA: device ops, registration map, limits */
	struct ferry_bdev *bdev;
	struct ferry_device *dev;
	int own_dev;
	const struct ferry_hal_nic_ops *nic;
	struct ferry_hal_sock_group *group;
	uint32_t max_send_iov, max_recv_iov;
	int connecting; /* inside nvmf_ctrlr_connect(): a loss is its error */
	uint8_t *idbuf; /* 4096 bytes: Identify data */
	uint8_t *cdata; /* 1024 bytes: Connect data */
	char name[FERRY_BDEV_NAME_MAX];
	char addr[128];
	char subnqn[256];
	char hostnqn[256];
	uint8_t hostid[16];
	struct ferry_bdev_nvmf_opts opts;
	uint16_t cntlid;
	uint64_t cap;
	uint32_t vs;
	uint32_t mdts_bytes; /* 0 = no limit */
	uint32_t ioccsz;
	uint16_t icdoff; /* in-capsule data offset (16-byte units), Identify */
	uint8_t msdbd;   /* SGL descriptors one command may carry, Identify (0: 1) */
	uint32_t nsid;
	uint32_t block_size;
	uint32_t md_size;
	uint64_t num_blocks;
	uint16_t oncs;
	uint8_t vwc;
	uint32_t max_xfer; /* largest data transfer of one command */
	uint16_t nq;       /* I/O queues */
	uint16_t qd;
	struct nvmf_qpair admin;
	struct nvmf_qpair *ioq;
	uint32_t next_q;
	/* state */
	uint32_t state;   /* FERRY_BDEV_NVMF_* */
	uint64_t lost_ns; /* when the connection was lost */
	uint64_t next_attempt_ns;
	uint64_t attempt_deadline_ns; /* the reconnect's TCP connect gives up then */
	uint32_t delay_ms;
	uint64_t ka_next_ns;
	uint64_t ka_sent_ns;  /* 0: no keep-alive outstanding */
	uint64_t io_check_ns; /* next I/O timeout scan */
	uint32_t kato_ms;
	struct ferry_bdev_io *pend_head, *pend_tail; /* I/O waiting for a connection / slot */
	int in_poll;
	/* staging */
	uint8_t *staging;
	uint32_t staging_size; /* bytes of one staging buffer: min(max_xfer, 1 MiB) */
	uint32_t staging_free[NVMF_STAGING_MAX];
	uint32_t staging_nfree;
	/* A connection we sent an H2CTermReq on: drained until the controller closes it (or
	 * 200 ms passed), so that our close does not reset the TermReq away. */
	struct ferry_hal_sock *linger_sock;
	uint64_t linger_deadline_ns;
	uint8_t linger_buf[4096];
	/* receive offload: the NIC's limits (query()), usable iff ddp_on */
	int ddp_on;   /* FERRY_HAL_NIC_CAP_DDP and not FERRY_BDEV_NVMF_F_NO_DDP */
	int ddp_host; /* ... and the NIC places into a domain other than the system one */
	struct ferry_hal_nic_info info;
	struct ferry_bdev_nvmf_stats st;
};

uint64_t nvmf_now_ns(void);

/* nvmf_qpair.c: a queue pair's slots (any transport) and the NVMe/TCP connection */
int nvmf_qpair_init(struct nvmf_ctrlr *c, struct nvmf_qpair *q, uint16_t qid, uint16_t depth);
void nvmf_qpair_fini(struct nvmf_qpair *q);
struct nvmf_slot *nvmf_slot_get(struct nvmf_qpair *q);
void nvmf_slot_put(struct nvmf_slot *s);
void nvmf_qpair_fail(struct nvmf_qpair *q, const char *why);

/* The transport's ops of a queue (the seam above). */
static inline int nvmf_qpair_connect(struct nvmf_qpair *q, uint64_t deadline_ns)
{
	return q->c->tr->connect(q, deadline_ns);
}
static inline void nvmf_qpair_close(struct nvmf_qpair *q)
{
	q->c->tr->close(q);
}
static inline int nvmf_slot_submit(struct nvmf_slot *s)
{
	return s->q->c->tr->submit(s);
}
static inline int nvmf_qpair_process(struct nvmf_qpair *q)
{
	return q->c->tr->process(q);
}
static inline int nvmf_qpair_flush(struct nvmf_qpair *q)
{
	return q->c->tr->flush(q);
}
static inline int nvmf_qpair_wait(struct nvmf_qpair *q, struct nvmf_slot *s, uint64_t deadline_ns)
{
	return q->c->tr->wait(q, s, deadline_ns);
}

/* nvmf_rdma.c: the RDMA side of the controller (nvmf_rdma_transport above is its queues) */
int nvmf_rdma_setup(struct nvmf_ctrlr *c);      /* device check, map (nic_setup()) */
int nvmf_rdma_staging_reg(struct nvmf_ctrlr *c); /* the staging pool, registered once */
void nvmf_rdma_teardown(struct nvmf_ctrlr *c);  /* after every queue's fini */
int nvmf_rdma_poll(struct nvmf_ctrlr *c);       /* completions of every queue, map poll */
/* How an I/O in another domain (or carrying a sequence) moves over RDMA: 1 direct (its own
 * memory named by keyed SGLs), 0 staged (counted and, where untranslatable, logged). */
int nvmf_rdma_io_direct(struct nvmf_ctrlr *c, struct ferry_bdev_io *io);
/* Release the map segments a slot holds (nvmf_slot_put(), whatever ends the command). */
void nvmf_rdma_slot_release(struct nvmf_slot *s);

/* nvmf_ddp.c: receive offload of a queue and of its read commands */
void nvmf_ddp_queue_add(struct nvmf_qpair *q);
void nvmf_ddp_queue_del(struct nvmf_qpair *q);
int nvmf_ddp_map(struct nvmf_slot *s, const struct ferry_mem *io_mem, int staged_seq);
void nvmf_ddp_slot_end(struct nvmf_slot *s);
void nvmf_ddp_reap(struct nvmf_qpair *q);
void nvmf_ddp_resync_answer(struct nvmf_qpair *q);
uint32_t nvmf_iov_slice(const struct iovec *src, uint32_t cnt, size_t off, size_t len,
			struct iovec *dst, uint32_t max);

/* nvmf_ctrlr.c: connect sequence, reconnect, keep-alive */
int nvmf_ctrlr_connect(struct nvmf_ctrlr *c, int first);
void nvmf_ctrlr_disconnect(struct nvmf_ctrlr *c);
void nvmf_ctrlr_lost(struct nvmf_ctrlr *c);
int nvmf_ctrlr_poll(struct nvmf_ctrlr *c);
void nvmf_linger_poll(struct nvmf_ctrlr *c, int force_close);

/* nvmf_io.c: I/O */
void nvmf_slot_complete(struct nvmf_slot *s);
void nvmf_io_part_lost(struct nvmf_ctrlr *c, struct ferry_bdev_io *io);
void nvmf_io_kick(struct nvmf_ctrlr *c);
void nvmf_io_fail_pending(struct nvmf_ctrlr *c, int status);
void nvmf_io_staged(struct nvmf_ctrlr *c, struct ferry_bdev_io *io, size_t bytes);
int nvmf_status_errno(uint16_t status);
extern const struct ferry_bdev_ops nvmf_bdev_ops;

#endif /* NVMF_INTERNAL_H */
