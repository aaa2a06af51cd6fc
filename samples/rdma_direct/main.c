/*
 * rdma_direct: the zero-copy RDMA-direct path of an IPU. The card presents an NVMe controller
 * to its host and forwards the host's I/O over NVMe-oF/RDMA; with no transform in the stack
 * the NIC moves the data between host memory and the remote target itself:
 *
 *   host process (ferry-nvme-host) <-> mock PCIe endpoint ("pcie" NVMe transport, function
 *   "nvme") <-> nvmf bdev (trtype "rdma", nic_domain = the device's "nic" function) <-> RDMA
 *   (soft-RoCE rxe0, or the mock's RDMA NIC) <-> ferry-nvmf-tgt -t rdma (a child process)
 *
 * The host maps its buffers in the "nic" function's IOMMU too (ferry-nvme-host --share-fn
 * nic): the initiator translates each I/O's "nvme" function addresses into the "nic"
 * function's view, registers that memory with the NIC (the mock NIC reaches the function
 * directly; a verbs NIC such as rxe registers the SoC's mapping of the same pages) and puts
 * keyed SGLs naming it into the command, so the target RDMA-READs write data straight from
 * host memory and RDMA-WRITEs read data straight into it.
 *
 * Two passes, each a verified random workload of the host (written patterns, every read
 * checked, everything read back at the end):
 *   plain         namespace 1 (4096-byte blocks), no transform: every I/O must go
 *                 RDMA-direct; the run fails if any byte passed through a SoC buffer
 *   crypto+dif    namespace 2 (4096 + 8 bytes of PI), AES-XTS-128 on PI type 1: each I/O is
 *                 staged through one local registered buffer that one fused operation fills
 * Per pass it prints the initiator's per-path counters (rdma_direct_ios, rdma_staged_ios,
 * rdma_fused_ios, staged_bytes, rdma_direct_bytes: the bytes the NIC moved straight from/to
 * the I/Os' memory) and the firmware's data-path figures; the target prints its connection
 * counters when it exits (its RDMA READ / WRITE work requests and bytes).
 *
 *   rdma_direct [--nic mock|rxe] [--addr A.B.C.D:PORT] [--pass plain|crypto|both]
 *               [--ios N] [--blocks N] [--timeout S] [--target-args ARGS] [--no-direct]
 *
 * --nic mock (default): one mock device is the PCIe endpoint and the RDMA NIC of the
 * initiator; the target opens its own mock device; 127.0.0.1 on a free port.
 * --nic rxe: the initiator and the target use soft-RoCE rxe0 (the QEMU guest,
 * tests/vm/t_rdma_direct.sh), --addr default 10.9.0.1:4420; the PCIe endpoint stays the mock's.
 * --no-direct sets FERRY_BDEV_NVMF_F_NO_RDMA_DIRECT (every I/O staged: the reference run; the
 * plain pass then fails its 0-SoC-bytes check, which is what its ctest checks).
 * --target-args passes transport arguments to ferry-nvmf-tgt (--args).
 * Exit status: 0 when every pass ran, every block verified and the plain pass moved no byte
 * through the SoC; 1 otherwise; 2 bad usage.
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

#define SUBNQN "nqn.2026-12.io.ferry:rdma-direct"
#define MOCK_ARGS "host_mem=64M,iova_size=256M,functions=nvme:nic"

static void usage(FILE *f, const char *argv0)
{
	fprintf(f,
		"usage: %s [--nic mock|rxe] [--addr A.B.C.D:PORT] [--pass plain|crypto|both]\n"
		"          [--ios N] [--blocks N] [--timeout S] [--target-args ARGS] [--no-direct]\n",
		argv0);
}

/* Start ferry-nvmf-tgt -t rdma on @p addr with namespace 1 of @p blocks 4096-byte blocks and
 * namespace 2 of @p blocks 4104-byte blocks; wait until it listens. */
static pid_t start_target(const char *addr, const char *nic, uint64_t blocks, const char *extra,
			  char *ready, size_t ready_len)
{
	char ns1[64], ns2[64];
	snprintf(ns1, sizeof(ns1), "malloc:%llu:4096", (unsigned long long)blocks * 4096);
	snprintf(ns2, sizeof(ns2), "malloc:%llu:4096+8", (unsigned long long)blocks * 4104);
	char *args[] = {"-t", "rdma", "--nic", (char *)nic, "-a", (char *)addr, "-n", SUBNQN,
			"--ns", ns1, "--ns", ns2,
			/* the transport's own argument string */
			extra ? "--args" : NULL, (char *)extra, NULL};
	return ep_start_target("rdma_direct", args, 30, ready, ready_len);
}

struct pass {
	const char *name;
	uint32_t nsid;
	int crypto;
};

/* One pass: the stack on a fresh mock device, the host's workload, the counters, the checks.
 * @return 0 verified (and, plain, no SoC byte); 1 otherwise. */
static int run_pass(const struct pass *p, const char *nic_name, const char *addr, const char *host,
		    uint64_t ios, double timeout, int no_direct, pid_t tgt)
{
	int rc = 1, mock = !strcmp(nic_name, "mock");
	struct ferry_device *dev = NULL, *nic = NULL;
	struct ferry_bdev *nvmf = NULL;
	struct ep_stack *s = NULL;
	char dom[64], bname[32], nios[24];
	printf("\n==== pass %s (namespace %u) ====\n", p->name, p->nsid);
	if (ferry_device_open("mock", MOCK_ARGS, &dev)) {
		fprintf(stderr, "rdma_direct: mock device (%s): %s\n", MOCK_ARGS,
			ferry_last_error());
		goto out;
	}
	if (mock)
		nic = dev;
	else if (ferry_device_open("rxe", "dev=rxe0", &nic)) {
		fprintf(stderr, "rdma_direct: rxe device rxe0: %s\n", ferry_last_error());
		goto out;
	}
	snprintf(dom, sizeof(dom), "%s.nic", ferry_device_get_name(dev));
	struct ferry_memdomain *nic_domain = ferry_memdomain_lookup(dom);
	if (!nic_domain) {
		fprintf(stderr, "rdma_direct: no memory domain %s\n", dom);
		goto out;
	}
	snprintf(bname, sizeof(bname), "rdma_nvmf_%s", p->crypto ? "crypto" : "plain");
	struct ferry_bdev_nvmf_opts no = {.size = sizeof(no),
					  .name = bname,
					  .nic = nic,
					  .trtype = "rdma",
					  .addr = addr,
					  .subnqn = SUBNQN,
					  .nsid = p->nsid,
					  .num_io_queues = 1,
					  .queue_depth = 64,
					  .retry_count = 3,
					  .flags = no_direct ? FERRY_BDEV_NVMF_F_NO_RDMA_DIRECT : 0,
					  .nic_domain = nic_domain};
	if (ferry_bdev_nvmf_create(&no, &nvmf)) {
		fprintf(stderr, "rdma_direct: connecting to %s (%s, rdma) failed: %s\n", addr,
			SUBNQN, ferry_last_error());
		goto out;
	}
	int has_pi = ferry_bdev_get_md_size(nvmf) == 8 &&
		     (ferry_bdev_get_md_flags(nvmf) & FERRY_BDEV_MD_INTERLEAVE);
	if (p->crypto && !has_pi) {
		fprintf(stderr, "rdma_direct: namespace %u has no 8-byte interleaved PI\n",
			p->nsid);
		goto out;
	}
	/* Plain: reads and writes reach the nvmf bdev as host memory (no accel sequence
	 * carrying them): what the NIC reaches directly. */
	struct ep_stack_opts so = {.size = sizeof(so),
				   .base = nvmf,
				   .crypto_dif = p->crypto,
				   .dev = dev,
				   .transport_args = p->crypto ? NULL : "accel=0"};
	if (ep_stack_create(&so, &s))
		goto out;
	printf("firmware: %s: NVMe controller on PCI function 0 of %s -> %s%s%s (rdma to %s, "
	       "NIC %s, nic_domain %s), %u-byte blocks, %llu blocks\n",
	       p->name, ferry_device_get_name(dev),
	       s->crypto_bdev ? "crypto (AES-XTS-128) -> " : "",
	       s->dif_bdev ? "dif (PI type 1) -> " : "", ferry_bdev_get_name(nvmf), addr,
	       ferry_device_get_name(nic), dom, ferry_bdev_get_block_size(nvmf),
	       (unsigned long long)ferry_bdev_get_num_blocks(nvmf));
	snprintf(nios, sizeof(nios), "%llu", (unsigned long long)ios);
	char *hargs[] = {"--share-fn", "nic",  "--rw",     "randrw",   "--mix",
			 "50",         "--qd", "32",       "--bs",     "4K",
			 "--ios",      nios,   "--verify", "--format", NULL};
	struct ep_counters before, after;
	struct ep_nvmf_snaps ns = {.bdev = nvmf};
	int hrc = ep_stack_run_host(s, "rdma_direct", host, hargs, timeout, &before, &after,
				    ep_nvmf_snap, &ns);
	if (hrc < 0)
		goto out;
	struct ferry_bdev_nvmf_stats nb = ns.st[0], na = ns.st[1];
	printf("firmware: host exited with %d\n", hrc);
	ep_stack_report(&before, &after, ep_host_dptr_bytes(hargs + 2), !p->crypto);
	struct ep_io_figures f;
	ep_io_figures(&before, &after, ep_host_dptr_bytes(hargs + 2), &f);
#define D(x) ((unsigned long long)(na.x - nb.x))
	double n = f.ios > 0 ? f.ios : 1;
	printf("initiator (nvmf bdev, rdma), %.0f I/O commands:\n", f.ios);
	printf("  rdma_direct_ios     %10llu  (keyed SGLs naming host memory: the NIC moved the "
	       "data)\n",
	       D(rdma_direct_ios));
	printf("  rdma_staged_ios     %10llu  (through a local registered buffer)\n",
	       D(rdma_staged_ios));
	printf("  rdma_fused_ios      %10llu  (of those: one fused operation into the buffer)\n",
	       D(rdma_fused_ios));
	printf("  rdma_untranslatable %10llu  (host memory the NIC cannot reach: staged)\n",
	       D(rdma_untranslatable));
	printf("  staged_bytes        %10llu  (%.0f per I/O)\n", D(staged_bytes),
	       (double)D(staged_bytes) / n);
	printf("  rdma_direct_bytes   %10llu  (%.0f per I/O)\n", D(rdma_direct_bytes),
	       (double)D(rdma_direct_bytes) / n);
	printf("  rdma_icd_writes %llu, rdma_wc_errors %llu, io_errors %llu, connection losses "
	       "%llu\n",
	       D(rdma_icd_writes), D(rdma_wc_errors), D(io_errors), D(connection_losses));
	double soc = f.soc_bytes_copied * f.ios + (double)D(staged_bytes);
	printf("SoC bytes (%s): %.0f (%.3f per I/O: firmware copies/bounces %.0f + initiator "
	       "staging %llu)\n",
	       p->name, soc, soc / n, f.soc_bytes_copied * f.ios, D(staged_bytes));
	rc = hrc ? 1 : 0;
	if (hrc)
		fprintf(stderr, "rdma_direct: %s: the host's verified workload failed (%d)\n",
			p->name, hrc);
	if (f.ios <= 0) {
		fprintf(stderr, "rdma_direct: %s: no I/O command ran\n", p->name);
		rc = 1;
	}
	if (!p->crypto && (soc != 0 || D(rdma_staged_ios) || !D(rdma_direct_ios))) {
		fprintf(stderr,
			"rdma_direct: plain: %.0f SoC bytes, %llu staged I/Os, %llu direct I/Os: "
			"the plain pass must go RDMA-direct with 0 SoC bytes\n",
			soc, D(rdma_staged_ios), D(rdma_direct_ios));
		rc = 1;
	}
	if (p->crypto && !D(rdma_fused_ios)) {
		fprintf(stderr, "rdma_direct: crypto+dif: no I/O took the fused-staged path\n");
		rc = 1;
	}
	if (D(io_errors) || D(rdma_wc_errors)) {
		fprintf(stderr, "rdma_direct: %s: %llu I/O errors, %llu work completion errors\n",
			p->name, D(io_errors), D(rdma_wc_errors));
		rc = 1;
	}
#undef D
	printf("pass %s: %s\n", p->name, rc ? "FAILED" : "ok");
out:
	fflush(stdout);
	if (nvmf) {
		/* The target's per-connection counters while the connections still exist. */
		kill(tgt, SIGUSR1);
		usleep(300000);
	}
	ep_stack_destroy(s);
	ferry_bdev_destroy(nvmf);
	if (nic && nic != dev)
		ferry_device_close(nic);
	ferry_device_close(dev);
	return rc;
}

int main(int argc, char **argv)
{
	const char *nic = "mock", *addr = NULL, *which = "both", *targs = NULL;
	uint64_t ios = 4000, blocks = 4096;
	double timeout = 300;
	int no_direct = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--nic") && v)
			nic = argv[++i];
		else if (!strcmp(a, "--addr") && v)
			addr = argv[++i];
		else if (!strcmp(a, "--pass") && v)
			which = argv[++i];
		else if (!strcmp(a, "--ios") && v)
			ios = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(a, "--blocks") && v)
			blocks = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(a, "--timeout") && v)
			timeout = atof(argv[++i]);
		else if (!strcmp(a, "--target-args") && v)
			targs = argv[++i];
		else if (!strcmp(a, "--no-direct"))
			no_direct = 1;
		else {
			int help = !strcmp(a, "--help") || !strcmp(a, "-h");
			usage(help ? stdout : stderr, argv[0]);
			return help ? 0 : 2;
		}
	}
	if (strcmp(nic, "mock") && strcmp(nic, "rxe")) {
		fprintf(stderr, "rdma_direct: --nic takes mock or rxe\n");
		return 2;
	}
	if (strcmp(which, "plain") && strcmp(which, "crypto") && strcmp(which, "both")) {
		fprintf(stderr, "rdma_direct: --pass takes plain, crypto or both\n");
		return 2;
	}
	if (ios == 0 || ios > 100000000 || blocks < 64 || blocks > (1u << 20) || timeout <= 0) {
		fprintf(stderr, "rdma_direct: --ios 1..1e8, --blocks 64..%u, --timeout > 0\n",
			1u << 20);
		return 2;
	}
	char host[PATH_MAX], abuf[64], ready[128] = "";
	if (ep_host_path(host, sizeof(host)) || access(host, X_OK) != 0) {
		fprintf(stderr, "rdma_direct: ferry-nvme-host not found beside this program\n");
		return 1;
	}
	if (!addr) {
		if (!strcmp(nic, "mock")) {
			int port = ep_free_port();
			if (port <= 0) {
				fprintf(stderr, "rdma_direct: no free port on 127.0.0.1\n");
				return 1;
			}
			snprintf(abuf, sizeof(abuf), "127.0.0.1:%d", port);
		} else {
			snprintf(abuf, sizeof(abuf), "10.9.0.1:4420");
		}
		addr = abuf;
	}
	pid_t tgt = start_target(addr, nic, blocks, targs, ready, sizeof(ready));
	if (tgt < 0)
		return 1;
	printf("rdma_direct: ferry-nvmf-tgt -t rdma (pid %d) on %s, NIC %s\n", (int)tgt, addr, nic);
	static const struct pass passes[] = {{"plain", 1, 0}, {"crypto+dif", 2, 1}};
	int rc = 0;
	for (size_t i = 0; i < sizeof(passes) / sizeof(passes[0]); i++) {
		if (strcmp(which, "both") && strcmp(which, i ? "crypto" : "plain"))
			continue;
		rc |= run_pass(&passes[i], nic, addr, host, ios, timeout, no_direct, tgt);
	}
	fflush(stdout);
	kill(tgt, SIGTERM);
	int st = 0;
	waitpid(tgt, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "rdma_direct: ferry-nvmf-tgt ended with status %d\n", st);
		rc = 1;
	}
	unlink(ready);
	printf("rdma_direct: %s\n", rc ? "FAILED" : "every pass verified");
	return rc;
}
