/*
 * The "tcp" backend: the HAL NIC class (ferry/hal/nic.h) over the host's Linux socket stack.
 * This file owns its registration, the device (open/close, no arguments), query() and the ops
 * table; tcp_sock.c has the sockets, tcp_group.c the epoll groups, tcp_addr.c the addresses.
 *
 * Arguments: none (an unknown key is refused).
 *
 * Notes on the design:
 *  - Sockets are non-blocking from creation (SOCK_NONBLOCK, accept4): no call ever waits
 *    except group_poll() for at most its timeout.
 *  - The data path is one system call per sendv()/recvv() (sendmsg with MSG_NOSIGNAL, readv),
 *    no lock, no allocation, no copy: the kernel reads from and writes to the caller's
 *    iovecs, hence FERRY_HAL_NIC_RX_F_PLACED on every receive (and never CRC_OK: a socket
 *    does not check NVMe/TCP digests).
 *  - Groups are level-triggered epoll instances. OUT interest is off by default and switched
 *    by group_want_out() (one epoll_ctl only when it changes), so idle writable sockets do
 *    not wake a poller.
 *  - Failures a peer can cause (resets, broken pipes, refused connects) are logged through a
 *    per-device rate limit; local mistakes (bad address, bad arguments) always.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "tcp_internal.h"

static const char *const tcp_keys[] = {NULL};

static const struct ferry_hal_backend tcp_backend;

struct tcp_dev *tcp_dev_get(struct ferry_device *fdev)
{
	if (!fdev || ferry_hal_dev_get_backend(fdev) != &tcp_backend)
		return NULL;
	return ferry_hal_dev_get_priv(fdev);
}

int tcp_ratelimit(struct tcp_ratelimit *rl, unsigned int *suppressed)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	unsigned long long now = (unsigned long long)ts.tv_sec * 1000000000ull +
				 (unsigned long long)ts.tv_nsec;
	unsigned long long start = atomic_load_explicit(&rl->window_start_ns, memory_order_relaxed);
	if (now - start >= 1000000000ull &&
	    atomic_compare_exchange_strong(&rl->window_start_ns, &start, now)) {
		atomic_store(&rl->in_window, 0);
		unsigned int s = atomic_exchange(&rl->suppressed, 0);
		if (suppressed)
			*suppressed = s;
	} else if (suppressed) {
		*suppressed = 0;
	}
	if (atomic_fetch_add(&rl->in_window, 1) < TCP_RL_BURST)
		return 1;
	atomic_fetch_add(&rl->suppressed, 1);
	return 0;
}

static int tcp_open(struct ferry_device *fdev, const char *args)
{
	if (ferry_hal_args_check(args, tcp_keys))
		return -EINVAL; /* logged, with the key */
	struct tcp_dev *dev = calloc(1, sizeof(*dev));
	if (!dev) {
		TCP_ERR("open: out of memory");
		return -ENOMEM;
	}
	dev->fdev = fdev;
	snprintf(dev->name, sizeof(dev->name), "%s", ferry_device_get_name(fdev));
	ferry_hal_dev_set_priv(fdev, dev);
	return 0;
}

static void tcp_dev_close(struct ferry_device *fdev)
{
	struct tcp_dev *dev = ferry_hal_dev_get_priv(fdev);
	if (!dev)
		return;
	/* Sockets and groups still open keep a pointer to dev for their rate limit: leak the
	 * few bytes rather than leave them dangling, and say so. */
	uint32_t ns = atomic_load(&dev->nsocks), ng = atomic_load(&dev->ngroups);
	if (ns || ng) {
		TCP_WARN("%s: closed with %u socket(s) and %u group(s) still open", dev->name, ns,
			 ng);
		ferry_hal_dev_set_priv(fdev, NULL);
		return;
	}
	ferry_hal_dev_set_priv(fdev, NULL);
	free(dev);
}

static int tcp_query(struct ferry_device *fdev, struct ferry_hal_nic_info *info)
{
	if (!tcp_dev_get(fdev) || !info) {
		TCP_ERR("query: %s", info ? "not a tcp device" : "NULL info");
		return -EINVAL;
	}
	uint32_t iov = IOV_MAX < TCP_MAX_IOV ? (uint32_t)IOV_MAX : TCP_MAX_IOV;
	*info = (struct ferry_hal_nic_info){
		.caps = FERRY_HAL_NIC_CAP_TCP,
		.max_send_iov = iov,
		.max_recv_iov = iov,
		.max_sockets = 0,
	};
	return 0;
}

static const struct ferry_hal_nic_ops tcp_nic_ops = {
	.abi_version = FERRY_HAL_NIC_ABI_VERSION,
	.query = tcp_query,
	.listen = tcp_listen,
	.accept = tcp_accept,
	.connect = tcp_connect,
	.sock_error = tcp_sock_error,
	.close = tcp_close,
	.get_addr = tcp_get_addr,
	.sendv = tcp_sendv,
	.recvv = tcp_recvv,
	.group_create = tcp_group_create,
	.group_destroy = tcp_group_destroy,
	.group_add = tcp_group_add,
	.group_remove = tcp_group_remove,
	.group_poll = tcp_group_poll,
	.sock_stats = tcp_sock_stats,
	.group_want_out = tcp_group_want_out,
};

static const struct ferry_hal_backend tcp_backend = {
	.abi_version = FERRY_HAL_ABI_VERSION,
	.name = "tcp",
	.open = tcp_open,
	.close = tcp_dev_close,
	.nic = &tcp_nic_ops,
};

FERRY_HAL_BACKEND(tcp, tcp_backend)
