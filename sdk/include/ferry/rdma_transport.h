/**
 * @file ferry/rdma_transport.h
 * @brief The built-in NVMe-oF/RDMA target transport "rdma": its creation arguments, its listen
 * addresses and its per-connection and instance-wide counters.
 *
 * ## Creating
 * `ferry_transport_create("rdma", &opts, &t)` with `opts.device` a device whose NIC class has
 * the RDMA part (::ferry_hal_nic_ops::rdma, <ferry/hal/rdma.h>), or NULL: the plugin then
 * opens the "rxe" backend (libibverbs + librdmacm) itself and closes it at destroy.
 * `opts.args` is a "key=value,..." string of:
 * - `max_queue_depth` (128): entries an I/O queue may have (CAP.MQES + 1), 32..1024, and at
 *   most what the device's QPs hold; the admin queue takes 32..min(128, max_queue_depth).
 * - `max_io_queues` (8): I/O queues per controller, 1..256.
 * - `in_capsule_data_size` (4096): in-capsule data of an I/O command (IOCCSZ), bytes, a
 *   multiple of 16, 0..16384 (the admin queue takes 4096). Each receive buffer holds 64 bytes
 *   of command plus this.
 * - `max_io_size` (131072): largest transfer (MDTS), a power of two, 4096..1048576.
 * - `max_sgl_desc` (16): keyed SGL descriptors one command may carry, 1..16.
 * - `buffers` (1024): data buffers of 8 KiB per poll group, registered with the NIC once.
 * - `accel` (1): 1 = each poll group creates an accel channel on its thread for its I/O
 *   queues; 0 = none.
 * - `idle_us` (200): how long a poll that found nothing to do waits on the group's
 *   completion queue, in µs, 0..100000 (0 spins).
 * - `max_connections` (1024): connections (queue pairs) at once, 1..65536; a connect request
 *   past it is rejected with FERRY_NVMF_RDMA_CM_NO_RSC (counted in
 *   ::ferry_rdma_transport_totals::refused).
 *
 * ## Connections
 * Each connect request's private data is checked (ferry_nvmf_rdma_cm_req_parse()): recfmt 0,
 * qid up to max_io_queues, hsqsize/hrqsize inside the queue's limits; a bad one is rejected
 * with its RDMA_CM reject status. An accepted queue gets hsqsize + 1 receive buffers
 * (crqsize) and a QP sized for them. Commands carry their data in the capsule (writes, up to
 * the queue's in-capsule size) or name host memory with keyed SGL descriptors (up to
 * max_sgl_desc): the target RDMA-READs write data into its buffers (one work request per
 * descriptor part of up to 16 buffers, at most the QP's initiator depth at once) and
 * RDMA-WRITEs read data before the response's SEND (RC order: unsignaled WRITEs, signaled
 * SEND); work requests that do not fit the send queue wait in order. A bad data pointer
 * completes the command with the parse's NVMe status (DNR) and the queue goes on; a command
 * id still in flight gets Command ID Conflict; a Connect whose QID or SQSIZE does not match
 * the connect request gets Connect Invalid Parameters. A capsule shorter than an SQE, more
 * commands than the queue can hold, a remote access error (a bad key), a QP error or a
 * disconnect tear the connection down like an NVMe/TCP connection loss (commands executing
 * finish first; an admin queue ends its association). A connection the target ends itself
 * (Disconnect, association teardown) keeps its QP until its responses left (at most 1 s).
 *
 * ## Listening
 * ferry_transport_listen(t, subsys, "a.b.c.d:4420"): subsystems on one address share its
 * listener; port 0 picks a free port (ferry_rdma_transport_get_listen_addr()). Every listener
 * also serves the instance's discovery subsystem (log entries of trtype RDMA, RC QPs, no
 * provider type, RDMA_CM).
 *
 * ## Threading
 * See "Threading and poll groups" in <ferry/transport.h>: each poll group has its own
 * completion queue and buffer pool; a connection is accepted on the group that serves it.
 * The functions here may be called from any thread; counters of connections served by other
 * threads are read without synchronisation.
 */
#ifndef FERRY_RDMA_TRANSPORT_H
#define FERRY_RDMA_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <ferry/export.h>

FERRY_BEGIN_DECLS

struct ferry_transport;

/** Counters of one connection (one NVMe queue). */
struct ferry_rdma_conn_stats {
	size_t size;          /**< sizeof(struct ferry_rdma_conn_stats) (set by the library) */
	char peer[64];        /**< the host's address "a.b.c.d:port" */
	char local[64];       /**< the listener's address */
	uint16_t cntlid;      /**< controller ID (0xffff: not connected yet) */
	uint16_t qid;         /**< queue ID (0 admin), from the connect request */
	uint32_t pg;          /**< poll group index (0: the instance's own polling) */
	uint32_t depth;       /**< receive buffers posted (hsqsize + 1) */
	uint64_t cmds;        /**< command capsules received */
	uint64_t icd_cmds;    /**< commands with in-capsule data */
	uint64_t keyed_cmds;  /**< commands with keyed SGL descriptors */
	uint64_t sgl_errors;  /**< commands failed for their data pointer */
	uint64_t reads;       /**< RDMA READ work requests posted */
	uint64_t writes;      /**< RDMA WRITE work requests posted */
	uint64_t sends;       /**< response SENDs posted */
	uint64_t read_bytes;  /**< bytes read from the host */
	uint64_t write_bytes; /**< bytes written to the host */
	uint64_t sq_waits;    /**< times a command waited for send-queue room */
	uint64_t ird_waits;   /**< times a command waited for an RDMA READ slot */
	uint64_t wc_errors;   /**< failed work completions (the first one ends the connection) */
};

/** Callback of ferry_rdma_transport_get_stats(): one connection, @p st valid during it. */
typedef void (*ferry_rdma_stats_cb)(void *ctx, const struct ferry_rdma_conn_stats *st);

/** Instance-wide counters (ferry_rdma_transport_get_totals()). */
struct ferry_rdma_transport_totals {
	size_t size;               /**< in: sizeof(struct ferry_rdma_transport_totals) */
	uint64_t requests;         /**< connect requests received */
	uint64_t accepted;         /**< connections accepted */
	uint64_t rejected;         /**< requests rejected for their private data */
	uint64_t refused;          /**< requests rejected with NO_RSC (max_connections, memory,
				        completion queue full) */
	uint64_t closed;           /**< connections closed */
	uint64_t qp_errors;        /**< connections ended by a failed work completion */
	uint64_t kato_expired;     /**< controllers torn down by the keep-alive timer */
	uint64_t ctrlrs_created;   /**< controllers created (associations) */
	uint64_t ctrlrs_destroyed; /**< controllers destroyed */
	uint32_t conns;            /**< connections open now */
	uint32_t ctrlrs;           /**< controllers alive now */
};

/**
 * @brief Enumerate the connections of an "rdma" instance.
 * @param[in] transport the instance.
 * @param[in] cb called once per connection under the instance's setup lock (do not call back
 *            into the transport).
 * @param[in] ctx passed to @p cb.
 * @return connections reported (>= 0); -EINVAL NULL, or not an "rdma" instance.
 */
FERRY_API int ferry_rdma_transport_get_stats(struct ferry_transport *transport,
					     ferry_rdma_stats_cb cb, void *ctx);

/**
 * @brief Instance-wide counters.
 * @param[in] transport the instance.
 * @param[in,out] totals totals->size must be set; the rest is filled.
 * @retval 0; -EINVAL NULL, not an "rdma" instance, or totals->size is not its sizeof.
 */
FERRY_API int ferry_rdma_transport_get_totals(struct ferry_transport *transport,
					      struct ferry_rdma_transport_totals *totals);

/**
 * @brief The address listener @p index (0.., in listen order) is bound to, with the port
 * picked for port 0.
 * @param[in] transport the instance.
 * @param[in] index the listener (0.., in listen order).
 * @param[out] buf the NUL-terminated address.
 * @param[in] len size of @p buf.
 * @retval 0; -ENOENT no such listener; -ENOBUFS @p len too small; -EINVAL NULL or not "rdma".
 */
FERRY_API int ferry_rdma_transport_get_listen_addr(struct ferry_transport *transport,
						   unsigned int index, char *buf, size_t len);

FERRY_END_DECLS

#endif /* FERRY_RDMA_TRANSPORT_H */
