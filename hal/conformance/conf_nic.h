/*
 * Conformance, the TCP and DDP part of the NIC class: what conf_nic.c (suite nic) and
 * conf_nic_ddp.c (suite nic_ddp) share. A device of the backend under test, loopback
 * connections on it (listen on 127.0.0.1 port 0, the address from get_addr()), and bounded
 * waits: every loop that waits for the backend gives up after CN_WAIT_NS and fails the check
 * naming what did not come.
 */
#ifndef CONF_NIC_H
#define CONF_NIC_H

#include <sys/types.h>
#include "conf.h"
#include <ferry/hal/nic.h>

#define CN_WAIT_NS 5000000000ull /* the bound of every wait */
#define CN_HOST "127.0.0.1"
#define CN_ADDR_MAX 96

/* A device of the backend under test with its NIC's ops and query result. */
struct cn {
	const struct ferry_hal_backend *backend;
	const struct ferry_hal_nic_ops *N;
	struct ferry_device *dev;
	struct ferry_hal_nic_info info;
};

/*
 * Open a device of @p p's backend with @p p->args followed by @p extra_args (NULL: none) and
 * query its NIC. Skips without a NIC class, when the device is unavailable (-ENODEV,
 * -ENOTSUP) or when the NIC has no FERRY_HAL_NIC_CAP_TCP (an RDMA-only NIC).
 */
void cn_open(const struct conf_param *p, const char *extra_args, struct cn *t);
void cn_close(struct cn *t);

/* Skip unless the NIC reports FERRY_HAL_NIC_CAP_DDP (the reason names it; the device is
 * closed first). */
void cn_require_ddp(struct cn *t);

/* A connection on one device: the listener, the connecting end and the accepted end. */
struct cn_pair {
	struct ferry_hal_sock *l, *c, *a;
	char addr[CN_ADDR_MAX]; /* the listener's address */
};

/*
 * Listen on 127.0.0.1:0, connect, accept (bounded) and wait for sock_error(c) == 0. When
 * @p g is not NULL the connecting end joins it first with context @p cctx (the poll of @p g
 * drives the waits). @p bufsz: send and receive buffer bytes of all three (0: default).
 */
void cn_pair_open(struct cn *t, struct ferry_hal_sock_group *g, void *cctx, uint32_t bufsz,
		  struct cn_pair *pr);
/* Close the three sockets (close() takes a socket out of its group). */
void cn_pair_close(struct cn *t, struct cn_pair *pr);

/* One group_poll() of @p g (0 if @p g is NULL) that must not fail; @p ev may be NULL. */
int cn_poll(struct cn *t, struct ferry_hal_sock_group *g, struct ferry_hal_sock_event *ev,
	    uint32_t max, uint32_t timeout_us);

/* Send all @p len bytes of @p buf on @p s (short sends and -EAGAIN retried, bounded). */
void cn_send_all(struct cn *t, struct ferry_hal_sock *s, struct ferry_hal_sock_group *g,
		 const void *buf, size_t len);

#endif /* CONF_NIC_H */
