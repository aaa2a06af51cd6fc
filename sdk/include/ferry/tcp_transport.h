/**
 * @file ferry/tcp_transport.h
 * @brief The built-in NVMe/TCP target transport "tcp": its creation arguments, its listen
 * addresses and its per-connection counters.
 *
 * ## Creating
 * `ferry_transport_create("tcp", &opts, &t)` with `opts.device` a device with the HAL NIC
 * class (<ferry/hal/nic.h>), or NULL: the plugin then opens the "tcp" backend (Linux sockets)
 * itself and closes it at destroy. `opts.args` is a "key=value,..." string of:
 * - `max_queue_depth` (128): entries a queue may have (CAP.MQES + 1), 32..4096; the admin
 *   queue takes 32..min(128, max_queue_depth) (Connect SQSIZE 31..).
 * - `max_io_queues` (8): I/O queues per controller, 1..256.
 * - `in_capsule_data_size` (8192): in-capsule data of an I/O command (IOCCSZ), bytes, a
 *   multiple of 16, 0..131072 (the admin queue always takes 8192).
 * - `max_io_size` (131072): largest transfer (MDTS), a power of two, 4096..1048576.
 * - `max_h2c_data` (131072): MAXH2CDATA offered in ICResp, a multiple of 4, >= 4096.
 * - `max_r2t` (1): R2Ts outstanding per command (one R2T asks for the whole transfer).
 * - `buffers` (2048): data buffers of 8 KiB per poll group, allocated at creation.
 * - `accel` (1): 1 = each poll group creates an accel channel on its thread (software
 *   engine) that carries its I/O queues' Read/Write sequences down the bdev stack; 0 = none.
 * - `idle_us` (200): how long a poll that found nothing to do waits for readiness, in µs,
 *   0..100000. 0 spins (the lowest latency, a full core per poll group, as SPDK's reactors);
 *   the default sleeps in the NIC's group poll between bursts and wakes on the next PDU.
 * - `max_connections` (1024): connections open at once, 1..65536; a connection accepted past
 *   it is closed at once (counted in ::ferry_tcp_transport_totals::refused). Each open
 *   connection holds its receive buffer and request table from accept on.
 * - `icreq_timeout_ms` (10000): a connection that has not sent its ICReq within this long is
 *   closed (0: never), so sockets that say nothing do not hold memory for ever.
 *
 * ## Listening
 * ferry_transport_listen(t, subsys, "127.0.0.1:4420"): subsystems listened on one address
 * share its socket; an instance listens on several addresses. Port 0 picks a free port
 * (ferry_tcp_transport_get_listen_addr() tells which). Every listener also serves the
 * instance's discovery subsystem (FERRY_NVMF_DISCOVERY_NQN, log page 0x70: one entry per
 * listener and subsystem).
 *
 * ## Threading
 * See "Threading and poll groups" in <ferry/transport.h>. The functions here may be called
 * from any thread; counters of connections served by other threads are read without
 * synchronisation (a value may lag by the I/Os in flight).
 */
#ifndef FERRY_TCP_TRANSPORT_H
#define FERRY_TCP_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <ferry/export.h>

FERRY_BEGIN_DECLS

struct ferry_transport;

/** Counters of one connection (one NVMe queue once connected). */
struct ferry_tcp_conn_stats {
	size_t size;            /**< sizeof(struct ferry_tcp_conn_stats) (set by the library) */
	char peer[64];          /**< the host's address "a.b.c.d:port" */
	char local[64];         /**< the listener's address */
	uint16_t cntlid;        /**< controller ID (0xffff: not connected yet) */
	uint16_t qid;           /**< queue ID (0 admin) */
	uint32_t pg;            /**< poll group index (0: the instance's own polling) */
	uint64_t cmds;          /**< commands received */
	uint64_t bytes_in;      /**< stream bytes received */
	uint64_t bytes_out;     /**< stream bytes sent */
	uint64_t r2ts;          /**< R2T PDUs sent */
	uint64_t h2c_pdus;      /**< H2CData PDUs received */
	uint64_t c2h_pdus;      /**< C2HData PDUs sent */
	uint64_t hdgst_errors;  /**< header digest errors (fatal) */
	uint64_t ddgst_errors;  /**< data digest errors (the command failed) */
	uint64_t rx_placed;     /**< payload bytes received straight into data buffers */
	uint64_t rx_copied;     /**< payload bytes copied from the header staging buffer */
	uint64_t pdu_errors;    /**< malformed PDUs (a TermReq was sent, the connection closed) */
	uint64_t send_calls;    /**< sendv calls */
	uint64_t recv_calls;    /**< recvv calls */
};

/** Callback of ferry_tcp_transport_get_stats(): one connection; @p st valid during the call. */
typedef void (*ferry_tcp_stats_cb)(void *ctx, const struct ferry_tcp_conn_stats *st);

/** Instance-wide counters (ferry_tcp_transport_get_totals()). */
struct ferry_tcp_transport_totals {
	size_t size;               /**< in: sizeof(struct ferry_tcp_transport_totals) */
	uint64_t accepted;         /**< connections accepted */
	uint64_t closed;           /**< connections closed */
	uint64_t pdu_errors;       /**< connections terminated for a malformed PDU */
	uint64_t kato_expired;     /**< controllers torn down by the keep-alive timer */
	uint64_t ctrlrs_created;   /**< controllers created (associations) */
	uint64_t ctrlrs_destroyed; /**< controllers destroyed */
	uint64_t refused;          /**< connections closed at accept: max_connections open */
	uint32_t conns;            /**< connections open now */
	uint32_t ctrlrs;           /**< controllers alive now */
};

/**
 * @brief Enumerate the connections of a "tcp" instance.
 * @param[in] transport the instance.
 * @param[in] cb called once per connection, under the instance's setup lock (do not call
 *            back into the transport).
 * @param[in] ctx passed to @p cb.
 * @return number of connections reported (>= 0).
 * @retval -EINVAL NULL, or @p transport is not a "tcp" instance.
 */
FERRY_API int ferry_tcp_transport_get_stats(struct ferry_transport *transport,
					    ferry_tcp_stats_cb cb, void *ctx);

/**
 * @brief Instance-wide counters.
 * @param[in] transport the instance.
 * @param[in,out] totals totals->size must be set; the rest is filled.
 * @retval 0; -EINVAL NULL, a "tcp" instance it is not, or totals->size is not its sizeof.
 */
FERRY_API int ferry_tcp_transport_get_totals(struct ferry_transport *transport,
					     struct ferry_tcp_transport_totals *totals);

/**
 * @brief The address listener @p index (0.., in listen order) is bound to, with the port the
 * system picked for port 0.
 * @param[in] transport the instance.
 * @param[in] index the listener (0.., in listen order).
 * @param[out] buf the NUL-terminated address.
 * @param[in] len size of @p buf.
 * @retval 0; -ENOENT no such listener; -ENOBUFS @p len too small; -EINVAL NULL or not "tcp".
 */
FERRY_API int ferry_tcp_transport_get_listen_addr(struct ferry_transport *transport,
						  unsigned int index, char *buf, size_t len);

FERRY_END_DECLS

#endif /* FERRY_TCP_TRANSPORT_H */
