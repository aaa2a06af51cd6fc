/*
 * The socket kit's private header (ferry/hal/sock.h), shared by lsock*.c and never installed:
 * the per-device state, the socket and group objects, the address codec (lsock_addr.c) and
 * the logging of the kit (under the component name the backend gave at dev_create).
 */
#ifndef LSOCK_INTERNAL_H
#define LSOCK_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <ferry/log.h>
#include <ferry/hal/hal.h>
#include <ferry/hal/sock.h>
#include "core_internal.h"

/* Component of the messages that have no device to name (a NULL socket or group). */
#define LSOCK_COMP_NONE "hal"
/* Longest component name given to dev_create, NUL included. */
#define LSOCK_COMP_MAX 32u

#define LSOCK_ERR(ld, ...) FERRY_ERR(lsock_comp(ld), __VA_ARGS__)
#define LSOCK_WARN(ld, ...) FERRY_WARN(lsock_comp(ld), __VA_ARGS__)

/* iovecs per sendv()/recvv(): IOV_MAX capped, so a caller's array stays small. */
#define LSOCK_MAX_IOV 64u
/* epoll events fetched by one group_poll() (the group's own array: no allocation per poll). */
#define LSOCK_GROUP_EVENTS 256u
/* Default listen backlog (ferry_hal_sock_opts::backlog 0). */
#define LSOCK_DEFAULT_BACKLOG 128u
/* Longest "[v6]:port" string, NUL included (INET6_ADDRSTRLEN 46 + "[]:65535"). */
#define LSOCK_ADDR_STRLEN 56u

/* Tells a kit state from whatever else a device's private state might point to. */
#define LSOCK_MAGIC 0x6c736f63u /* "lsoc" */

/* A device's kit state: its names, counters and the rate limit of peer-caused failures
 * (LOG_RATELIMIT_BURST per second per device, the rest counted and reported later). */
struct ferry_hal_lsock_dev {
	uint32_t magic;
	struct ferry_device *fdev;
	char name[32];
	char comp[LSOCK_COMP_MAX];
	_Atomic uint32_t nsocks;  /* sockets open */
	_Atomic uint32_t ngroups; /* groups open */
	struct log_ratelimit rl;
};

/* A listener or a connected stream. Used by one thread at a time (nic.h). */
struct ferry_hal_sock {
	int fd;
	int family;         /* AF_INET or AF_INET6 */
	uint8_t listener;   /* listen() socket */
	uint8_t connecting; /* connect() not yet confirmed by sock_error() */
	uint8_t auto_out;   /* OUT interest until the connect's outcome reported */
	uint8_t want_out;   /* OUT interest asked by group_want_out() */
	uint8_t nodelay;    /* FERRY_HAL_SOCK_F_NODELAY (inherited by accept) */
	uint8_t ready;      /* ferry_hal_lsock_set_ready() on */
	uint8_t on_ready;   /* linked in group->ready (ready and in a group) */
	int err;            /* sticky failure seen by sock_error() (negative) */
	struct ferry_hal_lsock_dev *dev;
	void *priv;                           /* the backend's (ferry_hal_lsock_set_priv) */
	struct ferry_hal_sock_group *group;   /* NULL: in no group */
	void *ctx;                            /* group_add() context */
	struct ferry_hal_sock *gprev, *gnext; /* the group's member list */
	struct ferry_hal_sock *rprev, *rnext; /* the group's ready list */
	uint64_t poll_gen;                    /* group->poll_gen when reported ready ... */
	uint32_t poll_slot;                   /* ... at this index of the caller's events */
	struct ferry_hal_sock_stats stats;
	char peer[LSOCK_ADDR_STRLEN]; /* connect(): the address asked for (messages), else "" */
};

/* An epoll instance, the sockets in it and those of them marked ready. */
struct ferry_hal_sock_group {
	int epfd;
	struct ferry_hal_lsock_dev *dev;
	struct ferry_hal_sock *members;
	uint32_t nmembers;
	struct ferry_hal_sock *ready_head, *ready_tail; /* FIFO, rotated by group_poll() */
	uint32_t nready;
	uint64_t poll_gen;       /* incremented by every group_poll() */
	struct epoll_event *evs; /* LSOCK_GROUP_EVENTS, allocated at creation */
};

/* lsock.c */
const char *lsock_comp(const struct ferry_hal_lsock_dev *ld);
struct ferry_hal_lsock_dev *lsock_dev_get(struct ferry_device *fdev);

/* lsock_addr.c (ld: the device whose name the messages carry; may be NULL) */
int lsock_addr_parse(const struct ferry_hal_lsock_dev *ld, const char *str, int listen,
		     struct sockaddr_storage *ss, socklen_t *len);
int lsock_addr_format(const struct ferry_hal_lsock_dev *ld, const struct sockaddr *sa, char *buf,
		      size_t len);

/* lsock_group.c */
/* Called by close(): leave the group without failing. */
void lsock_group_leave(struct ferry_hal_sock *sock);
/* set_ready() of a socket in a group: join or leave the group's ready list. */
void lsock_ready_link(struct ferry_hal_sock_group *g, struct ferry_hal_sock *s);
void lsock_ready_unlink(struct ferry_hal_sock_group *g, struct ferry_hal_sock *s);

#endif /* LSOCK_INTERNAL_H */
