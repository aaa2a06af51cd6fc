/*
 * The mock offload NIC's private header (mock_nic.c, mock_nic_rx.c; never installed): the
 * device's NIC state (limits, fault knobs, counters), the per-socket offload state (the receive ring of "packets" read from the kernel
 * socket, the per-span flags the receive engine gave its bytes, the PDU tracker, the command
 * id mappings, the resync state), and what each file offers the other.
 *
 * Offsets called "stream offsets" count bytes since the socket connected, as recvv() returns
 * them (ferry/hal/nic.h): `delivered` <= `annot_end` <= `rx_end`.
 */
#ifndef MOCK_NIC_INTERNAL_H
#define MOCK_NIC_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/uio.h>
#include <ferry/hal/nic.h>
#include <ferry/hal/sock.h>
#include "mock_internal.h"

#define MOCK_NIC_MAX_SGES 64u
#define MOCK_NIC_MAX_IO (1u << 20)
#define MOCK_NIC_PKT_DEFAULT 16384u
#define MOCK_NIC_PKT_MIN 64u
#define MOCK_NIC_PKT_MAX 65536u
/* Stream bytes the ring keeps behind the delivery point for the resync search (a C2HData
 * header is 24 bytes). */
#define MOCK_NIC_LOOKBACK 32u
/* Largest PDU the tracker believes in (plausibility of a header found by the resync search). */
#define MOCK_NIC_PLEN_MAX (64u << 20)
/* Mappings one queue holds (mapped or waiting for their teardown callback) beyond queue_size. */
#define MOCK_NIC_MAP_SLACK 64u

/* Fault knobs (ferry_mock_nic_faults), each drawn from its own deterministic stream. */
enum mock_nic_knob {
	KNOB_PLACE_MISS = 0, /* per packet */
	KNOB_CRC_MISS,       /* per PDU */
	KNOB_SETUP_FAIL,     /* per ddp_setup() */
	KNOB_QUEUE_FAIL,     /* per ddp_queue_add() */
	KNOB_RESYNC,         /* per packet: loss of tracking */
	KNOB_RESYNC_WRONG,   /* per resync request: a wrong offset first */
	KNOB_LIE,            /* per packet: PLACED|CRC_OK without writing */
	KNOB_COUNT
};

/* Rate limit of messages the peer's stream can cause (10 per second per device). */
struct mock_nic_rl {
	_Atomic unsigned long long window_start_ns;
	_Atomic unsigned int in_window;
	_Atomic unsigned int suppressed;
};

struct mock_nic_sock;
struct mock_rdma;

/* The device's NIC (mock_dev::nic). */
struct mock_nic {
	struct mock_dev *dev;
	int ddp; /* offloads on (argument ddp) */
	uint32_t max_sges, max_io, pkt;
	struct ferry_memdomain *nic_domain; /* the "nic" function's domain, NULL if none */
	struct mock_rdma *rdma;             /* the RDMA part (mock_rdma.c), NULL with rdma=0 */
	_Atomic uint32_t ppm[KNOB_COUNT];
	_Atomic uint64_t seed;
	_Atomic uint64_t next_sock_id;
	struct mock_nic_rl rl;
	_Atomic uint64_t st_queue_add, st_queue_add_fail, st_queue_del, st_setup, st_setup_fail,
		st_teardown, st_drop, st_resync, st_resync_fail, st_packets, st_bytes, st_offloaded,
		st_crc;
};

enum {
	MAP_FREE = 0,
	MAP_MAPPED,
	MAP_TEARDOWN
};

/* One command id's destination. */
struct mock_ddp_map {
	uint8_t state;
	uint16_t cid;
	struct ferry_memdomain *domain; /* NULL: system */
	uint32_t nseg;
	uint64_t len;
	struct iovec *seg; /* MOCK_NIC_MAX_SGES entries */
	ferry_hal_ddp_done_cb done;
	void *done_ctx;
	struct mock_ddp_map *tnext; /* teardown list of the socket */
};

/* A NIC-like PDU tracker (the real one, or the speculative one of a resync candidate). */
struct mock_track {
	uint64_t pdu_start; /* stream offset of the current PDU */
	uint32_t pos;       /* bytes of it consumed */
	uint32_t hneed;     /* header bytes needed to parse it (8, then 24 for C2HData) */
	uint8_t hdr[24];
	uint8_t parsed; /* header validated */
	uint8_t type, has_dd;
	uint32_t pdo, plen, datal, datao;
	uint16_t cid;
	uint32_t crc; /* running CRC32C of the data */
	uint8_t dgst[4];
	uint8_t crc_on;           /* the NIC verifies this PDU's digest */
	uint8_t no_offload;       /* part of the PDU was seen untracked: no flags for the rest */
	struct mock_ddp_map *map; /* mapping of cid (MAPPED) when the header was parsed */
};

/* One span of processed, undelivered bytes. */
struct mock_span {
	uint64_t end; /* stream offset after its last byte */
	uint32_t flags;
};

/* Per-socket state (ferry_hal_lsock_set_priv()), for every connected socket. */
struct mock_nic_sock {
	struct mock_nic *nic;
	struct ferry_hal_sock *sock;
	uint64_t id; /* device-wide socket number (fault streams) */
	uint64_t draws[KNOB_COUNT];
	uint64_t delivered; /* stream bytes returned by recvv() */
	int offloaded;
	int eof;
	struct ferry_hal_ddp_queue_cfg cfg;

	/* the ring: stream bytes [ring_base, rx_end) at buf[0..) */
	uint8_t *buf;
	size_t cap;
	uint64_t ring_base, rx_end, annot_end;
	struct mock_span *spans;
	uint32_t nspans, span_head, span_cap;

	/* tracking */
	int synced;
	struct mock_track t;
	/* resync: search position, speculative tracker of the candidate, request state */
	uint64_t scan_pos;
	uint64_t cand; /* where the speculative tracker started */
	int shadow_on, shadow_dead;
	struct mock_track shadow;
	int req_out;   /* a request is outstanding (answer awaited) */
	int req_issue; /* the request must still be made (callback) */
	uint64_t req_seq;
	int real_pending; /* a wrong offset was asked first; the candidate is next */

	/* mappings */
	struct mock_ddp_map *maps;
	uint32_t nmaps;
	struct mock_ddp_map *td_head, *td_tail; /* teardowns whose callback is due */
	struct ferry_hal_sock_group *td_group;  /* the group they complete from */
	int td_linked;                          /* on the list of due teardowns */
	struct mock_nic_sock *td_next;
};

/* mock_nic.c */
struct mock_nic *mock_nic_of(struct ferry_device *fdev);
int mock_nic_draw(struct mock_nic_sock *s, enum mock_nic_knob k);
int mock_nic_ratelimit(struct mock_nic *nic);
void mock_nic_update_ready(struct mock_nic_sock *s);
/* Work is due on s (a teardown callback, a resync request) from its group's next poll. */
void mock_nic_due_link(struct mock_nic_sock *s);

/* mock_rdma.c: the RDMA part of the NIC class (argument rdma=0|1, rdma_seed, rdma_rnr_ms). */
extern const struct ferry_hal_rdma_ops mock_rdma_ops;
int mock_rdma_create(struct mock_nic *nic, const char *args);
void mock_rdma_destroy(struct mock_nic *nic);

/* mock_nic_rx.c */
ssize_t mock_nic_recvv(struct ferry_hal_sock *sock, const struct iovec *iov, uint32_t iovcnt,
		       uint32_t *flags);
void mock_nic_ddp_resync(struct ferry_hal_sock *sock, uint64_t seq, int found);
/* Start tracking at cfg.rx_seq (queue add) / forget every flag of the ring (queue del). */
void mock_nic_rx_start(struct mock_nic_sock *s);
void mock_nic_rx_stop(struct mock_nic_sock *s);
/* Issue a pending resync request (from recvv() or group_poll()). */
void mock_nic_resync_issue(struct mock_nic_sock *s);

#endif /* MOCK_NIC_INTERNAL_H */
