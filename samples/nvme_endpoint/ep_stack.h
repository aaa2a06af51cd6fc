/*
 * Firmware side of the nvme_endpoint sample, shared with its tests and benchmark: a mock
 * device, the block stack (malloc, or crypto on dif on malloc), an NVMe endpoint on the "pcie"
 * transport at fn=0, and the loop that polls it while a host process (forked, or exec'd
 * ferry-nvme-host) drives the controller.
 */
#ifndef NVMEH_EP_STACK_H
#define NVMEH_EP_STACK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ferry_device;
struct ferry_bdev;
struct ferry_endpoint;
struct ferry_transport;
struct ferry_nvme_ctrlr;
struct ferry_crypto_key;

struct ep_stack_opts {
	size_t size;                /* sizeof(struct ep_stack_opts) */
	int crypto_dif;             /* crypto bdev on a dif bdev on malloc (else malloc alone) */
	uint32_t block_size;        /* 512 or 4096 as the host sees it (0 = 4096) */
	uint64_t blocks;            /* namespace size in blocks (0 = 8192) */
	const char *mock_args;      /* mock device arguments (NULL: host_mem=64M,iova_size=256M) */
	const char *transport_args; /* "pcie" transport arguments (NULL: defaults) */
};

struct ep_stack {
	struct ferry_device *dev;
	struct ferry_bdev *malloc_bdev, *dif_bdev, *crypto_bdev, *top;
	struct ferry_crypto_key *key;
	struct ferry_endpoint *ep;
	struct ferry_transport *transport;
	struct ferry_nvme_ctrlr *ctrlr;
	int mem_fd, pcie_fd; /* the device's fds (owned by the device) */
};

int ep_stack_create(const struct ep_stack_opts *o, struct ep_stack **out);
void ep_stack_destroy(struct ep_stack *s);

/* Polls the endpoint until process @p pid exits (its wait status in *wstatus) or
 * @p timeout_s passes (the child is then killed and -ETIMEDOUT returned). */
int ep_stack_serve(struct ep_stack *s, pid_t pid, double timeout_s, int *wstatus);

/* Forks a host process that runs @p fn(ctx, mem_fd, pcie_fd) and exits with its return
 * value (0..255). Returns the pid or a negative errno. */
typedef int (*ep_host_fn)(void *ctx, int mem_fd, int pcie_fd);
pid_t ep_stack_fork_host(struct ep_stack *s, ep_host_fn fn, void *ctx);

/* Forks and execs @p path (ferry-nvme-host) with --mem-fd/--pcie-fd and @p argv (NULL
 * terminated) appended. Returns the pid or a negative errno. */
pid_t ep_stack_spawn_host(struct ep_stack *s, const char *path, char *const *argv);

#endif /* NVMEH_EP_STACK_H */
