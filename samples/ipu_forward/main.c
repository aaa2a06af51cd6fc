/*
 * ipu_forward: what an IPU is for. The card presents an NVMe controller to its host and
 * forwards the host's I/O over the network, encrypting and protecting it on the way:
 *
 *   host process (ferry-nvme-host) <-> mock PCIe endpoint <-> "pcie" NVMe transport
 *   <-> crypto bdev (AES-XTS-128) <-> dif bdev (PI type 1) <-> nvmf bdev (NVMe-oF/TCP
 *   initiator) <-> TCP over 127.0.0.1 <-> ferry-nvmf-tgt (a child process) with a malloc
 *   namespace of 4104-byte blocks (4096 data + 8 bytes of protection information)
 *
 * The host runs a verified random workload (by default 20000 random 4 KiB reads and writes
 * at queue depth 32 after formatting the namespace, then every block read back); then both
 * sides print per-I/O counters: on the card, bytes copied on the SoC, pool buffers, fused
 * operations, and what the initiator did with the data (bytes received straight into their
 * destination vs copied, I/Os staged in a local buffer, digests); the target prints its own
 * connection and queue counters when it exits.
 *
 *   ipu_forward [--plain] [--digests] [--blocks N] [--crypto-key HEX]
 *               [--target ADDR:PORT --subnqn NQN] [--dump-written FILE] [--timeout S]
 *               [--nic tcp|mock-offload] [--nic-args ARGS] [-- ferry-nvme-host options]
 *
 * --target uses a running NVMe-oF/TCP target instead of starting ferry-nvmf-tgt (the Linux
 * kernel's nvmet-tcp, in the guest tests): the stack is crypto on dif when its namespace has
 * 8 bytes of interleaved metadata per block, crypto alone otherwise. --crypto-key is key1 ||
 * key2 in hex (64 digits). --dump-written writes, after the host exited, the plaintext image
 * of the namespace as the host sees it (read back through the stack) to FILE, so that a test
 * can check the target's store independently.
 *
 * --nic mock-offload: the initiator connects through the NIC of the mock device that also
 * provides the PCIe endpoint (functions "nvme" and "nic"), a model of an NVMe/TCP receive
 * offload NIC (direct data placement and data-digest verification; ferry/hal/nic.h). The host
 * maps its buffers in the "nic" function's IOMMU too (ferry-nvme-host --share-fn nic), so the
 * NIC places a plain READ's C2H data straight into host memory (the nvmf bdev translates the
 * I/O's "nvme" function addresses into the "nic" function's): no byte of it passes through a
 * SoC buffer and no software computes its digest. With crypto/dif in the stack the NIC places
 * into the one local buffer the fused decrypt/strip reads. With --plain the "pcie" transport
 * runs without accel sequences (accel=0: a read reaches the nvmf bdev as host memory, which
 * is what the NIC places into). Implies --digests (the NIC verifies data digests).
 * --nic-args adds mock device arguments (its fault model: place_miss_ppm=...).
 * Default: --nic tcp (the tcp backend, opened by the nvmf bdev).
 * Exit status: the host's (0: the workload ran and every block verified).
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <ferry/bdev.h>
#include <ferry/bdev_nvmf.h>
#include <ferry/ferry.h>
#include "ep_stack.h"

static char *default_host_args[] = {"--rw", "randrw", "--mix", "50",       "--qd",     "32", "--bs",
				    "4K",   "--ios",  "20000", "--verify", "--format", NULL};

#define SUBNQN "nqn.2026-12.io.ferry:ipu-forward"

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [--plain] [--digests] [--blocks N] [--crypto-key HEX]\n"
		"          [--target ADDR:PORT --subnqn NQN] [--dump-written FILE] [--timeout S]\n"
		"          [--nic tcp|mock-offload] [--nic-args ARGS] [-- ferry-nvme-host options]\n",
		argv0);
}

/* Start ferry-nvmf-tgt on @p addr with one malloc namespace of @p blocks 4104-byte blocks;
 * wait until it listens. */
static pid_t start_target(const char *addr, uint64_t blocks, char *ready, size_t ready_len)
{
	char ns[64];
	snprintf(ns, sizeof(ns), "malloc:%llu:4096+8", (unsigned long long)blocks * 4104);
	char *args[] = {"-a", (char *)addr, "-n", SUBNQN, "--ns", ns, NULL};
	return ep_start_target("ipu_forward", args, 20, ready, ready_len);
}

static int hex_key(const char *hex, uint8_t key[32])
{
	if (strlen(hex) != 64)
		return -EINVAL;
	for (int i = 0; i < 32; i++) {
		unsigned int v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -EINVAL;
		key[i] = (uint8_t)v;
	}
	return 0;
}

struct rd {
	volatile int done;
};

static void rd_cb(struct ferry_bdev_io *io, void *arg)
{
	(void)io;
	((struct rd *)arg)->done = 1;
}

/* Read the whole of @p bdev (as the host sees it) into @p path. */
static int dump_written(struct ferry_bdev *bdev, const char *path)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -errno;
	uint32_t bs = ferry_bdev_get_block_size(bdev);
	uint64_t nb = ferry_bdev_get_num_blocks(bdev), chunk = (1u << 20) / bs;
	char *buf = malloc((size_t)chunk * bs);
	int rc = buf ? 0 : -ENOMEM;
	for (uint64_t lba = 0; !rc && lba < nb; lba += chunk) {
		uint64_t n = nb - lba < chunk ? nb - lba : chunk;
		struct iovec iov = {buf, (size_t)(n * bs)};
		struct rd r = {0};
		struct ferry_bdev_io io = {.type = FERRY_BDEV_IO_READ,
					   .offset_blocks = lba,
					   .num_blocks = n,
					   .mem = {.iov = &iov, .iovcnt = 1},
					   .cb = rd_cb,
					   .cb_arg = &r};
		rc = ferry_bdev_submit(bdev, &io);
		for (double t0 = ep_now_s(); !rc && !r.done && ep_now_s() - t0 < 30;)
			ferry_bdev_io_poll(&io);
		if (!rc)
			rc = !r.done ? -ETIMEDOUT : io.status;
		if (!rc && fwrite(buf, 1, iov.iov_len, f) != iov.iov_len)
			rc = -EIO;
	}
	free(buf);
	if (fclose(f) && !rc)
		rc = -EIO;
	return rc;
}

static void report_initiator(const struct ferry_bdev_nvmf_stats *a,
			     const struct ferry_bdev_nvmf_stats *b, double ios)
{
	if (ios <= 0)
		return;
	double rx = (double)(b->rx_placed_bytes - a->rx_placed_bytes);
	double cp = (double)(b->rx_copied_bytes - a->rx_copied_bytes);
	printf("initiator (nvmf bdev), per I/O command:\n");
	printf("  NVMe/TCP commands:         %8.3f (in-capsule writes %.3f, R2Ts %.3f, C2H "
	       "SUCCESS %.3f)\n",
	       (double)(b->commands - a->commands) / ios,
	       (double)(b->icd_writes - a->icd_writes) / ios, (double)(b->r2ts - a->r2ts) / ios,
	       (double)(b->c2h_success - a->c2h_success) / ios);
	printf("  read data received:        %8.0f bytes straight into their destination, %.0f "
	       "copied (%.3f copies per byte)\n",
	       rx / ios, cp / ios, rx + cp > 0 ? cp / (rx + cp) : 0.0);
	printf("  staged in a local buffer:  %8.3f I/Os, %.0f bytes (of which in the I/O's "
	       "accel sequence: %.3f I/Os)\n",
	       (double)(b->staged_ios - a->staged_ios) / ios,
	       (double)(b->staged_bytes - a->staged_bytes) / ios,
	       (double)(b->seq_ios - a->seq_ios) / ios);
	printf("  data digests computed:     %8.3f (errors %llu), connection losses %llu, "
	       "retries %llu\n",
	       (double)(b->digests_computed - a->digests_computed) / ios,
	       (unsigned long long)(b->digest_errors - a->digest_errors),
	       (unsigned long long)(b->connection_losses - a->connection_losses),
	       (unsigned long long)(b->retries - a->retries));
}

/* What the NIC's receive offloads did with the read data (--nic mock-offload). */
static void report_offload(const struct ferry_bdev_nvmf_stats *a,
			   const struct ferry_bdev_nvmf_stats *b, const char *nic)
{
#define D(f) ((double)(b->f - a->f))
	double rd = D(bytes_read), mib = 1048576.0;
	double placed = D(ddp_placed_bytes), host = D(ddp_host_bytes);
	printf("initiator receive offload (NIC of %s, direct data placement + data digests):\n",
	       nic);
	printf("  queues offloaded %llu (refused %llu); read commands mapped %.0f (straight into "
	       "host memory %.0f), setups refused %.0f, host pages the NIC cannot see %.0f\n",
	       (unsigned long long)b->ddp_queues, (unsigned long long)b->ddp_queue_refused,
	       D(ddp_ios), D(ddp_host_ios), D(ddp_setup_fail), D(ddp_untranslatable));
	printf("  read data:                 %.2f MiB; placed by the NIC %.2f MiB (into host memory "
	       "through its PCI function %.2f MiB, into local buffers %.2f MiB), not placed "
	       "%.2f MiB\n",
	       rd / mib, placed / mib, host / mib, (placed - host) / mib,
	       D(ddp_fallback_bytes) / mib);
	printf("  SoC bytes of read data:    %.0f (%.3f per byte read)\n", rd - host,
	       rd > 0 ? (rd - host) / rd : 0.0);
	printf("  software CRC bytes:        %.0f (%.3f per byte read); verified by the NIC %.0f, "
	       "digest errors %.0f, NIC errors caught %.0f\n",
	       D(sw_crc_bytes), rd > 0 ? D(sw_crc_bytes) / rd : 0.0, D(nic_crc_bytes),
	       D(digest_errors), D(ddp_nic_errors));
	if (placed > host)
		printf("  local placement:           %.2f MiB placed into the staging buffer whose "
		       "accel sequence (the fused decrypt/strip) reads it; %.0f staged I/Os (reads "
		       "and writes) ran their copy in their sequence\n",
		       (placed - host) / mib, D(seq_ios));
	printf("  resyncs %.0f (not found %.0f)\n", D(ddp_resyncs), D(ddp_resync_fail));
#undef D
}

int main(int argc, char **argv)
{
	int plain = 0, digests = 0;
	uint64_t blocks = 8192;
	double timeout = 300;
	const char *target = NULL, *subnqn = SUBNQN, *dump = NULL, *keyhex = NULL;
	const char *nic_name = "tcp", *nic_args = NULL;
	char **host_args = default_host_args;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--plain"))
			plain = 1;
		else if (!strcmp(a, "--digests"))
			digests = 1;
		else if (!strcmp(a, "--blocks") && v)
			blocks = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(a, "--timeout") && v)
			timeout = atof(argv[++i]);
		else if (!strcmp(a, "--target") && v)
			target = argv[++i];
		else if (!strcmp(a, "--subnqn") && v)
			subnqn = argv[++i];
		else if (!strcmp(a, "--crypto-key") && v)
			keyhex = argv[++i];
		else if (!strcmp(a, "--dump-written") && v)
			dump = argv[++i];
		else if (!strcmp(a, "--nic") && v)
			nic_name = argv[++i];
		else if (!strcmp(a, "--nic-args") && v)
			nic_args = argv[++i];
		else if (!strcmp(a, "--")) {
			host_args = argv + i + 1;
			break;
		} else {
			usage(argv[0]);
			return strcmp(a, "--help") ? 2 : 0;
		}
	}
	uint8_t key[32];
	if (keyhex && hex_key(keyhex, key)) {
		fprintf(stderr, "ipu_forward: --crypto-key takes 64 hex digits (key1 || key2)\n");
		return 2;
	}
	int offload = !strcmp(nic_name, "mock-offload");
	if (!offload && strcmp(nic_name, "tcp")) {
		fprintf(stderr, "ipu_forward: --nic takes tcp or mock-offload\n");
		return 2;
	}
	if (offload)
		digests = 1;
	if (blocks == 0 || blocks > (1u << 22)) {
		fprintf(stderr, "ipu_forward: --blocks takes 1..%u\n", 1u << 22);
		return 2;
	}
	char host[PATH_MAX], addr[64], ready[128] = "";
	if (ep_host_path(host, sizeof(host)) || access(host, X_OK) != 0) {
		fprintf(stderr, "ipu_forward: ferry-nvme-host not found beside this program\n");
		return 1;
	}
	pid_t tgt = 0;
	if (!target) {
		int port = ep_free_port();
		snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
		tgt = port > 0 ? start_target(addr, blocks, ready, sizeof(ready)) : -EADDRNOTAVAIL;
		if (tgt < 0)
			return 1;
		target = addr;
	}
	int rc = 1;
	struct ferry_bdev *nvmf = NULL;
	struct ep_stack *s = NULL;
	struct ferry_device *dev = NULL;
	char **spawn_args = NULL;
	if (offload) {
		/* One mock device: the PCIe endpoint's "nvme" function and the offload NIC, whose
		 * "nic" function sees host memory. */
		char margs[512];
		snprintf(margs, sizeof(margs), "host_mem=64M,iova_size=256M,functions=nvme:nic%s%s",
			 nic_args ? "," : "", nic_args ? nic_args : "");
		if (ferry_device_open("mock", margs, &dev) ||
		    !(ferry_device_get_classes(dev) & FERRY_DEVICE_CLASS_NIC)) {
			fprintf(stderr, "ipu_forward: no mock offload NIC (mock %s): %s\n", margs,
				ferry_last_error());
			goto out;
		}
		/* The host maps every buffer in the "nic" function too. */
		int n = 0;
		while (host_args[n])
			n++;
		spawn_args = calloc((size_t)n + 3, sizeof(*spawn_args));
		if (!spawn_args)
			goto out;
		spawn_args[0] = "--share-fn";
		spawn_args[1] = "nic";
		memcpy(spawn_args + 2, host_args, (size_t)n * sizeof(*spawn_args));
	}
	struct ferry_bdev_nvmf_opts no = {.size = sizeof(no),
					  .name = "ipu_nvmf0",
					  .addr = target,
					  .subnqn = subnqn,
					  .num_io_queues = 1,
					  .queue_depth = 64,
					  .hdgst = (uint8_t)digests,
					  .ddgst = (uint8_t)digests,
					  .retry_count = 3,
					  .nic = dev};
	if (ferry_bdev_nvmf_create(&no, &nvmf)) {
		fprintf(stderr, "ipu_forward: connecting to %s (%s) failed: %s\n", target, subnqn,
			ferry_last_error());
		goto out;
	}
	int has_pi = ferry_bdev_get_md_size(nvmf) == 8 &&
		     (ferry_bdev_get_md_flags(nvmf) & FERRY_BDEV_MD_INTERLEAVE);
	struct ep_stack_opts so = {.size = sizeof(so),
				   .base = nvmf,
				   .crypto_dif = !plain && has_pi,
				   .crypto_only = !plain && !has_pi,
				   .key = keyhex ? key : NULL,
				   .dev = dev,
				   /* Plain on the offload NIC: reads reach the nvmf bdev as host
				    * memory (no accel sequence carrying them), which the NIC
				    * places into directly. */
				   .transport_args = offload && plain ? "accel=0" : NULL};
	if (ep_stack_create(&so, &s))
		goto out;
	printf("firmware: device %s, NVMe controller on PCI function 0 (\"pcie\" transport), "
	       "namespace 1 = %s\n",
	       ferry_device_get_name(s->dev), ferry_bdev_get_name(s->top));
	printf("firmware: %s%s%s%s%s%s: NVMe/TCP to %s, %s, %u-byte blocks, %llu blocks%s%s\n",
	       s->crypto_bdev ? ferry_bdev_get_name(s->crypto_bdev) : "",
	       s->crypto_bdev ? " (AES-XTS-128) -> " : "",
	       s->dif_bdev ? ferry_bdev_get_name(s->dif_bdev) : "",
	       s->dif_bdev ? " (PI type 1)" : "", s->dif_bdev ? " -> " : "",
	       ferry_bdev_get_name(nvmf), target, subnqn, ferry_bdev_get_block_size(nvmf),
	       (unsigned long long)ferry_bdev_get_num_blocks(nvmf),
	       digests ? ", header and data digests" : "",
	       offload ? ", receive offloads of the mock NIC" : "");
	struct ep_counters before, after;
	struct ep_nvmf_snaps ns = {.bdev = nvmf};
	int hrc = ep_stack_run_host(s, "ipu_forward", host, spawn_args ? spawn_args : host_args,
				    timeout, &before, &after, ep_nvmf_snap, &ns);
	if (hrc < 0)
		goto out;
	rc = hrc;
	struct ferry_bdev_nvmf_stats nb = ns.st[0], na = ns.st[1];
	printf("firmware: host exited with %d\n", rc);
	ep_stack_report(&before, &after, ep_host_dptr_bytes(host_args), plain);
	report_initiator(&nb, &na, (double)(after.ctl.io_cmds - before.ctl.io_cmds));
	if (offload)
		report_offload(&nb, &na, ferry_device_get_name(dev));
	if (dump) {
		int d = dump_written(s->top, dump);
		if (d) {
			fprintf(stderr, "ipu_forward: --dump-written %s: %s\n", dump, strerror(-d));
			rc = rc ? rc : 1;
		} else {
			printf("firmware: namespace image as the host sees it written to %s\n", dump);
		}
	}
out:
	fflush(stdout);
	if (tgt > 0 && s) {
		/* The target's per-connection counters while the connections still exist. */
		kill(tgt, SIGUSR1);
		usleep(300000);
	}
	ep_stack_destroy(s);
	ferry_bdev_destroy(nvmf);
	ferry_device_close(dev);
	free(spawn_args);
	if (tgt > 0) {
		kill(tgt, SIGTERM);
		int st = 0;
		waitpid(tgt, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fprintf(stderr, "ipu_forward: ferry-nvmf-tgt ended with status %d\n", st);
		unlink(ready);
	}
	return rc;
}
