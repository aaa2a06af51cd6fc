/*
 * The "tcp" backend: the HAL NIC class (ferry/hal/nic.h) over the host's Linux socket stack.
 * This file owns its registration, the device (open/close, no arguments) and the ops table,
 * which is made of the backend SDK's socket kit (ferry/hal/sock.h: sockets, epoll groups,
 * addresses, the rate-limited log of peer-caused failures; the design notes are there).
 *
 * Arguments: none (an unknown key is refused).
 */
#include <errno.h>
#include <stdlib.h>
#include <ferry/log.h>
#include <ferry/hal/hal.h>
#include <ferry/hal/sock.h>

#define TCP_COMP "tcp"

static const char *const tcp_keys[] = {NULL};

/* The device's private state: the kit's handle first (ferry/hal/sock.h finds it there). */
struct tcp_dev {
	struct ferry_hal_lsock_dev *ld;
};

static int tcp_open(struct ferry_device *fdev, const char *args)
{
	if (ferry_hal_args_check(args, tcp_keys))
		return -EINVAL; /* logged, with the key */
	struct tcp_dev *dev = calloc(1, sizeof(*dev));
	if (!dev) {
		ferry_log(FERRY_LOG_ERROR, TCP_COMP, "open: out of memory");
		return -ENOMEM;
	}
	int rc = ferry_hal_lsock_dev_create(fdev, TCP_COMP, &dev->ld);
	if (rc) {
		free(dev); /* logged by the kit */
		return rc;
	}
	ferry_hal_dev_set_priv(fdev, dev);
	return 0;
}

static void tcp_dev_close(struct ferry_device *fdev)
{
	struct tcp_dev *dev = ferry_hal_dev_get_priv(fdev);
	if (!dev)
		return;
	ferry_hal_dev_set_priv(fdev, NULL);
	/* Sockets or groups still open: the kit warns and keeps its state for them. */
	ferry_hal_lsock_dev_destroy(dev->ld);
	free(dev);
}

static const struct ferry_hal_nic_ops tcp_nic_ops = {
	.abi_version = FERRY_HAL_NIC_ABI_VERSION,
	.query = ferry_hal_lsock_query,
	FERRY_HAL_LSOCK_NIC_OPS, /* the socket kit, every TCP member */
};

static const struct ferry_hal_backend tcp_backend = {
	.abi_version = FERRY_HAL_ABI_VERSION,
	.name = "tcp",
	.open = tcp_open,
	.close = tcp_dev_close,
	.nic = &tcp_nic_ops,
};

FERRY_HAL_BACKEND(tcp, tcp_backend)
