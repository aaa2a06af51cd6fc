/*
 * nvme_endpoint: the card presents an NVMe controller to a host, the firmware stores the
 * host's blocks encrypted and protected:
 *
 *   host process (ferry-nvme-host) <-> mock PCIe endpoint (BAR0, doorbells, MSI-X, host
 *   memory through the function's IOMMU) <-> "pcie" NVMe transport <-> crypto bdev
 *   (AES-XTS) <-> dif bdev (PI type 1) <-> malloc bdev (4104-byte blocks)
 *
 * The host is a separate program, started with the device's host-memory and PCIe-channel fds
 * as a host OS would find the card: it enables the controller, identifies it, creates queues
 * and runs a verified workload (by default 20000 random 4 KiB reads and writes at queue depth
 * 32 after formatting the namespace with Write Zeroes, then reads every block back). The
 * firmware polls the endpoint until the host exits, then prints per-I/O counters: bytes
 * copied on the SoC, pool buffers taken, fused operations and the bytes they wrote; then DMA
 * transfers and bytes between host and SoC, MMIO and interrupts, accel operations.
 *
 *   nvme_endpoint [--plain] [--blocks N] [--timeout S] [-- ferry-nvme-host options]
 * Exit status: the host's (0: the workload ran and every block verified).
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <ferry/accel.h>
#include <ferry/bdev.h>
#include <ferry/ferry.h>
#include <ferry/mock.h>
#include <ferry/mock_pcie.h>
#include <ferry/nvme.h>
#include <ferry/pcie_transport.h>
#include "ep_stack.h"

static char *default_host_args[] = {"--rw", "randrw", "--mix", "50",       "--qd",     "32", "--bs",
				    "4K",   "--ios",  "20000", "--verify", "--format", NULL};

int main(int argc, char **argv)
{
	int plain = 0;
	uint64_t blocks = 8192;
	double timeout = 300;
	char **host_args = default_host_args;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--plain")) {
			plain = 1;
		} else if (!strcmp(argv[i], "--blocks") && i + 1 < argc) {
			blocks = strtoull(argv[++i], NULL, 0);
		} else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
			timeout = atof(argv[++i]);
		} else if (!strcmp(argv[i], "--")) {
			host_args = argv + i + 1;
			break;
		} else {
			fprintf(stderr,
				"usage: %s [--plain] [--blocks N] [--timeout S] "
				"[-- ferry-nvme-host options]\n",
				argv[0]);
			return 2;
		}
	}
	char path[PATH_MAX];
	if (ep_host_path(path, sizeof(path)) || access(path, X_OK) != 0) {
		fprintf(stderr, "nvme_endpoint: ferry-nvme-host not found beside this program\n");
		return 1;
	}
	struct ep_stack_opts so = {.size = sizeof(so), .crypto_dif = !plain, .blocks = blocks};
	struct ep_stack *s;
	if (ep_stack_create(&so, &s))
		return 1;
	printf("firmware: device %s, NVMe controller on PCI function 0 (\"pcie\" transport), "
	       "namespace 1 = %s\n",
	       ferry_device_get_name(s->dev), ferry_bdev_get_name(s->top));
	if (!plain)
		printf("firmware: %s (AES-XTS-128) on %s (PI type 1) on %s (%u-byte blocks, %llu "
		       "blocks)\n",
		       ferry_bdev_get_name(s->crypto_bdev), ferry_bdev_get_name(s->dif_bdev),
		       ferry_bdev_get_name(s->malloc_bdev),
		       ferry_bdev_get_block_size(s->malloc_bdev), (unsigned long long)blocks);
	struct ep_counters before, after;
	ep_stack_snap(s, &before);
	pid_t pid = ep_stack_spawn_host(s, path, host_args);
	if (pid < 0) {
		fprintf(stderr, "nvme_endpoint: starting the host failed: %s\n", strerror(-pid));
		ep_stack_destroy(s);
		return 1;
	}
	printf("firmware: host process %d started (%s), serving it\n", (int)pid, path);
	fflush(stdout);
	int wst = 0;
	int rc = ep_stack_serve(s, pid, timeout, &wst);
	ep_stack_snap(s, &after);
	int code = rc ? 1 : WIFEXITED(wst) ? WEXITSTATUS(wst) : 128 + WTERMSIG(wst);
	printf("firmware: host process exited with status %d\n", code);
	ep_stack_report(&before, &after, ep_host_dptr_bytes(host_args), plain);
	ep_stack_destroy(s);
	return code;
}
