/*
 * The tcp backend's one private header, shared by its own files and never installed: the
 * device, socket and group objects, the address codec (tcp_addr.c), the rate-limited log of
 * peer-triggered failures, and the ops each file contributes to the NIC table (tcp_backend.c).
 */
#ifndef TCP_INTERNAL_H
#define TCP_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <ferry/log.h>
#include <ferry/hal/hal.h>

#define TCP_COMP "tcp"
#define TCP_ERR(...) ferry_log(FERRY_LOG_ERROR, TCP_COMP, __VA_ARGS__)
#define TCP_WARN(...) ferry_log(FERRY_LOG_WARN, TCP_COMP, __VA_ARGS__)

/* iovecs per sendv()/recvv(): IOV_MAX capped, so a caller's array stays small. */
#define TCP_MAX_IOV 64u
/* epoll events fetched by one group_poll() (the group's own array: no allocation per poll). */
#define TCP_GROUP_EVENTS 256u
/* Default listen backlog (ferry_hal_sock_opts::backlog 0). */
#define TCP_DEFAULT_BACKLOG 128u
/* Longest "[v6]:port" string, NUL included (INET6_ADDRSTRLEN 46 + "[]:65535"). */
#define TCP_ADDR_STRLEN 56u

/*
 * Rate limit of messages a peer can trigger (resets, broken pipes): TCP_RL_BURST per
 * one-second window per device, the rest counted and reported with the next logged one.
 */
#define TCP_RL_BURST 10u
struct tcp_ratelimit {
	_Atomic unsigned long long window_start_ns;
	_Atomic unsigned int in_window;
	_Atomic unsigned int suppressed;
};

/* A device instance: nothing but its name, counters and the peer-error rate limit. */
struct tcp_dev {
	struct ferry_device *fdev;
	char name[32];
	_Atomic uint32_t nsocks;  /* sockets open */
	_Atomic uint32_t ngroups; /* groups open */
	struct tcp_ratelimit rl;
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
	int err;            /* sticky failure seen by sock_error() (negative) */
	struct tcp_dev *dev;
	struct ferry_hal_sock_group *group;   /* NULL: in no group */
	void *ctx;                            /* group_add() context */
	struct ferry_hal_sock *gprev, *gnext; /* the group's member list */
	struct ferry_hal_sock_stats stats;
	char peer[TCP_ADDR_STRLEN]; /* connect(): the address asked for (messages), else "" */
};

/* An epoll instance and the sockets in it. */
struct ferry_hal_sock_group {
	int epfd;
	struct tcp_dev *dev;
	struct ferry_hal_sock *members;
	uint32_t nmembers;
	struct epoll_event *evs; /* TCP_GROUP_EVENTS, allocated at creation */
};

/* tcp_addr.c */
int tcp_addr_parse(const char *str, int listen, struct sockaddr_storage *ss, socklen_t *len);
int tcp_addr_format(const struct sockaddr *sa, char *buf, size_t len);

/* tcp_backend.c */
struct tcp_dev *tcp_dev_get(struct ferry_device *fdev);
int tcp_ratelimit(struct tcp_ratelimit *rl, unsigned int *suppressed);

/* tcp_sock.c */
int tcp_listen(struct ferry_device *dev, const struct ferry_hal_sock_opts *opts,
	       struct ferry_hal_sock **out);
int tcp_accept(struct ferry_hal_sock *listener, struct ferry_hal_sock **out);
int tcp_connect(struct ferry_device *dev, const struct ferry_hal_sock_opts *opts,
		struct ferry_hal_sock **out);
int tcp_sock_error(struct ferry_hal_sock *sock);
void tcp_close(struct ferry_hal_sock *sock);
int tcp_get_addr(struct ferry_hal_sock *sock, int peer, char *buf, size_t len);
ssize_t tcp_sendv(struct ferry_hal_sock *sock, const struct iovec *iov, uint32_t iovcnt);
ssize_t tcp_recvv(struct ferry_hal_sock *sock, const struct iovec *iov, uint32_t iovcnt,
		  uint32_t *flags);
int tcp_sock_stats(struct ferry_hal_sock *sock, struct ferry_hal_sock_stats *stats);

/* tcp_group.c */
int tcp_group_create(struct ferry_device *dev, struct ferry_hal_sock_group **out);
void tcp_group_destroy(struct ferry_hal_sock_group *group);
int tcp_group_add(struct ferry_hal_sock_group *group, struct ferry_hal_sock *sock, void *ctx);
int tcp_group_remove(struct ferry_hal_sock_group *group, struct ferry_hal_sock *sock);
int tcp_group_want_out(struct ferry_hal_sock_group *group, struct ferry_hal_sock *sock, int on);
int tcp_group_poll(struct ferry_hal_sock_group *group, struct ferry_hal_sock_event *events,
		   uint32_t max, uint32_t timeout_us);
/* Called by close(): leave the group without failing. */
void tcp_group_leave(struct ferry_hal_sock *sock);

#endif /* TCP_INTERNAL_H */
