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

/* K/M suffixes, as ferry-nvme-host takes them; -1 if not a size. */
static int64_t host_size(const char *v)
{
	char *end;
	unsigned long long x = strtoull(v, &end, 0);
	if (end == v)
		return -1;
	if (*end == 'K' || *end == 'k')
		x *= 1024, end++;
	else if (*end == 'M' || *end == 'm')
		x *= 1024 * 1024, end++;
	return *end || x > INT32_MAX ? -1 : (int64_t)x;
}

/* PRP list bytes each I/O of the host's workload fetches (every I/O has the same size and
 * offset), from its options; -1 with SGL data pointers or options this cannot read. */
static int64_t host_dptr_bytes(char *const *args)
{
	int64_t bs = 4096, off = 0; /* ferry-nvme-host's defaults: 4 KiB, PRP, offset 0 */
	for (int i = 0; args[i]; i++) {
		const char *v = args[i + 1];
		if (!strcmp(args[i], "--dptr") && v && strcmp(v, "prp"))
			return -1;
		if (!strcmp(args[i], "--bs") && v)
			bs = host_size(v);
		else if (!strcmp(args[i], "--offset") && v)
			off = host_size(v);
	}
	if (bs < 0 || off < 0)
		return -1;
	return (int64_t)ep_prp_list_bytes((uint64_t)bs, (uint32_t)off);
}

static void report(const struct ep_counters *a, const struct ep_counters *b, int64_t dptr,
		   int plain)
{
	struct ep_io_figures f;
	ep_io_figures(a, b, dptr, &f);
	double n = f.ios;
	uint64_t hw = 0, sw = 0;
	for (int i = 0; i < FERRY_ACCEL_OP_COUNT; i++) {
		hw += b->acc.ops_hw[i] - a->acc.ops_hw[i];
		sw += b->acc.ops_sw[i] - a->acc.ops_sw[i];
	}
	printf("firmware: %.0f I/O commands (%.1f MiB read, %.1f MiB written by the host), "
	       "%llu admin commands, %llu errors, %llu resets\n",
	       n, (double)(b->ctl.bytes_read - a->ctl.bytes_read) / 1048576.0,
	       (double)(b->ctl.bytes_written - a->ctl.bytes_written) / 1048576.0,
	       (unsigned long long)(b->ctl.admin_cmds - a->ctl.admin_cmds),
	       (unsigned long long)(b->ctl.errors - a->ctl.errors),
	       (unsigned long long)(b->ctl.resets - a->ctl.resets));
	if (n <= 0)
		return;
	printf("firmware: per I/O command:\n");
	if (!f.seq_path && !plain)
		printf("  bytes copied on the SoC:   uncounted (see below)\n");
	else if (f.dma_data_bytes < 0)
		printf("  bytes copied on the SoC:   %8.0f (copies that ran %.0f + bounces %.0f; DMA "
		       "data not estimated with SGL data pointers)\n",
		       f.soc_bytes_copied, f.accel_bytes_copied, f.bytes_bounced);
	else
		printf("  bytes copied on the SoC:   %8.0f (copies that ran %.0f + bounces %.0f + "
		       "other DMA data %.0f)\n",
		       f.soc_bytes_copied, f.accel_bytes_copied, f.bytes_bounced,
		       f.soc_bytes_copied - f.accel_bytes_copied - f.bytes_bounced);
	printf("  pool buffers taken:        %8.3f (bounces %.2f)\n", f.pool_buffers,
	       (double)(b->acc.bounces - a->acc.bounces) / n);
	printf("  fused operations:          %8.3f (%.2f ops folded), writing %.0f bytes (their "
	       "final output)\n",
	       f.fusions, (double)(b->acc.fused_ops - a->acc.fused_ops) / n,
	       f.fused_output_bytes);
	printf("  DMA engine, host <-> SoC:  %6.2f transfers, %8.0f bytes (queue entries, PRP "
	       "lists/SGL segments, data)\n",
	       (double)(b->dma.xfers - a->dma.xfers) / n,
	       (double)(b->dma.bytes - a->dma.bytes) / n);
	printf("  host MMIO:                 %6.2f register reads, %.2f writes, %.2f doorbells; "
	       "%.2f MSI-X interrupts\n",
	       (double)(b->tr.bar_reads - a->tr.bar_reads) / n,
	       (double)(b->tr.bar_writes - a->tr.bar_writes) / n,
	       (double)(b->tr.doorbells - a->tr.doorbells) / n,
	       (double)(b->tr.irqs - a->tr.irqs) / n);
	printf("  accel operations:          %6.2f (engine %.2f, software %.2f), copies elided %.2f, "
	       "copies run %.2f\n",
	       (double)(hw + sw) / n, (double)hw / n, (double)sw / n,
	       (double)(b->acc.copies_elided - a->acc.copies_elided) / n, f.copy_ops);
	printf("  bytes written by accel ops: %7.0f (engine %.0f, software %.0f)\n",
	       (double)(b->acc.bytes_out_hw - a->acc.bytes_out_hw + b->acc.bytes_out_sw -
			a->acc.bytes_out_sw) /
		       n,
	       (double)(b->acc.bytes_out_hw - a->acc.bytes_out_hw) / n,
	       (double)(b->acc.bytes_out_sw - a->acc.bytes_out_sw) / n);
	if (!f.seq_path && !plain)
		printf("  (no accel sequence reached the bdevs: the crypto and dif bdevs transformed "
		       "the data in software on local bounce buffers, which these counters do not "
		       "see)\n");
}

static int host_path(char *buf, size_t len)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return -errno;
	self[n] = '\0';
	int w = snprintf(buf, len, "%s/ferry-nvme-host", dirname(self));
	return w > 0 && (size_t)w < len ? 0 : -ENAMETOOLONG;
}

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
	if (host_path(path, sizeof(path)) || access(path, X_OK) != 0) {
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
	report(&before, &after, host_dptr_bytes(host_args), plain);
	ep_stack_destroy(s);
	return code;
}
