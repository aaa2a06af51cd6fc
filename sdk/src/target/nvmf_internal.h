/*
 * Internal to the target component: the transport-independent NVMe-oF target layer
 * (nvmf.c: Connect, Property Get/Set, Disconnect, the discovery subsystem, keep-alive,
 * association teardown) and the poll-group message queue (pg.c) it and the message-based
 * transports ("tcp", later RDMA) share. Never installed.
 */
#ifndef FERRY_NVMF_INTERNAL_H
#define FERRY_NVMF_INTERNAL_H

#include <pthread.h>
#include <stdint.h>
#include <ferry/accel.h>
#include <ferry/memdomain.h>
#include <ferry/nvme.h>
#include <ferry/nvme_spec.h>
#include <ferry/nvmf_spec.h>
#include <ferry/module/nvme_ctrlr.h>
#include <ferry/module/transport.h>

/* ---- poll-group message queue (pg.c) ---------------------------------------------------- */

/*
 * What every poll group of a message-based transport has: an inbox of functions to run on the
 * group's thread. Posting takes the mutex and allocates one message: used for connection setup
 * and teardown only, never per I/O.
 */
struct pg_msg;
struct pg_core {
	pthread_mutex_t lock;
	struct pg_msg *head, *tail;
	uint32_t index; /* 0: the instance's own polling; 1..: ferry_transport_pg_create() order */
	struct nvmf_ctrlr *ctrlrs; /* controllers whose admin queue this group serves (nvmf.c,
				      touched by the group's thread only) */
	uint32_t polls;            /* nvmf_pg_poll() calls (keep-alive timers checked every 64) */
};

int pg_core_init(struct pg_core *pg, uint32_t index);
/* Runs nothing: pending messages are freed without running (the instance is going away). */
void pg_core_fini(struct pg_core *pg);
/* Runs @p fn(@p arg) on @p pg's thread at its next pg_core_drain(). -ENOMEM only. */
int pg_post(struct pg_core *pg, void (*fn)(void *arg), void *arg);
/* Runs the queued messages (the group's thread). Returns how many ran. */
int pg_core_drain(struct pg_core *pg);

/* ---- NVMe-oF target layer (nvmf.c) ------------------------------------------------------ */

struct nvmf_tgt;
struct nvmf_ctrlr;

/* One queue of an association, embedded in the transport's connection. */
struct nvmf_qpair {
	struct nvmf_tgt *tgt;
	struct nvmf_ctrlr *ctrlr; /* NULL before Connect */
	struct pg_core *pg;       /* the group that serves the connection */
	void *conn;               /* the transport's connection */
	/* the group's accel channel for this queue's I/O (NULL: none), handed to the
	 * controller at I/O Connect */
	struct ferry_accel_chan *chan;
	uint16_t qid;
	uint16_t sqsize;    /* entries (1's based) */
	uint8_t connecting; /* an I/O Connect waits for the admin group */
	uint8_t closing;    /* the association is being torn down */
};

/* What the transport does for the layer. Each is called on the qpair's own group thread. */
struct nvmf_tgt_ops {
	/* Complete a command the layer answered itself (Fabrics commands, discovery log). */
	void (*complete)(struct nvmf_qpair *qp, void *cmd_ctx, const struct ferry_nvme_cqe *cqe);
	/* Close the qpair's connection (association teardown); the transport later calls
	 * nvmf_tgt_qpair_fini() once nothing of it executes any more. */
	void (*close)(struct nvmf_qpair *qp);
	/* The layer is done with @p qp (after nvmf_tgt_qpair_fini()): free the connection. */
	void (*release)(struct nvmf_qpair *qp);
};

/* The fabrics identity the controllers of a transport instance get. */
struct nvmf_tgt_limits {
	uint32_t max_queue_depth; /* MQES + 1 */
	uint16_t max_io_queues;
	uint32_t icd_size;    /* in-capsule data of an I/O command, bytes */
	uint32_t max_io_size; /* bytes, a power of two >= 4096 */
	uint8_t trtype;       /* FERRY_NVMF_TRTYPE_* */
	uint8_t msdbd;        /* SGL data block descriptors of one command (0: 1) */
};

int nvmf_tgt_create(struct ferry_transport *t, const struct nvmf_tgt_limits *lim,
		    const struct nvmf_tgt_ops *ops, struct nvmf_tgt **out);
/* Tears every association down and destroys the controllers (bounded wait), then the
 * discovery subsystem. The transport's connections must be closed first. */
void nvmf_tgt_destroy(struct nvmf_tgt *tgt);
/* A listener @p traddr:@p trsvcid (port id @p portid) serves @p subsys. */
int nvmf_tgt_listen(struct nvmf_tgt *tgt, struct ferry_nvme_subsystem *subsys, uint8_t adrfam,
		    const char *traddr, const char *trsvcid, uint16_t portid);

void nvmf_tgt_qpair_init(struct nvmf_qpair *qp, struct nvmf_tgt *tgt, struct pg_core *pg,
			 void *conn);
/*
 * Execute a command capsule of @p qp (its data complete in @p data). Fabrics commands and the
 * discovery log page are answered by the layer (ops->complete, possibly later from a message
 * of the admin group); the others go to ferry_nvme_ctrlr_submit() (send_completion).
 */
void nvmf_tgt_qpair_exec(struct nvmf_qpair *qp, const struct ferry_nvme_sqe *sqe,
			 const struct ferry_mem *data, uint32_t data_len, void *cmd_ctx);
/* The qpair's connection is closed and nothing of it executes: detach it from its controller
 * (an admin queue tears the association down). On the qpair's own thread. */
void nvmf_tgt_qpair_fini(struct nvmf_qpair *qp);
/* Group work for the layer: keep-alive timers and controller polling of the associations
 * whose admin queue is on @p pg; destroys dead controllers. Returns work done. */
int nvmf_pg_poll(struct nvmf_tgt *tgt, struct pg_core *pg);
/* Associations alive / totals for the stats API. */
void nvmf_tgt_counts(struct nvmf_tgt *tgt, uint64_t *created, uint64_t *destroyed,
		     uint64_t *kato_expired, uint32_t *alive);
/* I/O queue work on its own group: ferry_nvme_ctrlr_poll_queue() (0 for an admin queue). */
int nvmf_tgt_qpair_poll(struct nvmf_qpair *qp, uint32_t max);
/* The same for a closing qpair whose commands still execute (the transport waits for them
 * before nvmf_tgt_qpair_fini(): their completions need the queue polled). */
int nvmf_tgt_qpair_drain(struct nvmf_qpair *qp, uint32_t max);
/* The cntlid of @p qp's controller (0xffff when not connected). */
uint16_t nvmf_tgt_qpair_cntlid(const struct nvmf_qpair *qp);
/* send_completion op helper: the transport's cmd_ctx handling stays in the transport. */

#endif /* FERRY_NVMF_INTERNAL_H */
