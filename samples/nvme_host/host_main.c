/*
 * ferry-nvme-host: the simulated host as a program. Given the mock device's host-memory fd and
 * PCIe channel fd (inherited from the firmware process that started it), it brings the NVMe
 * controller of one PCI function up, prints what Identify says, and runs a workload like a
 * small fio, printing IOPS, bandwidth and latency percentiles.
 *
 *   ferry-nvme-host --mem-fd N --pcie-fd N [--fn N] [--share-fn NAME] [workload options]
 * Exit status: 0 success; 1 the run failed or found errors; 2 bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "loadgen.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ferry-nvme-host --mem-fd N --pcie-fd N [options]\n"
		"  --fn N            PCI function (default 0)\n"
		"  --share-fn NAME   map every buffer in function NAME's IOMMU too (same IOVAs)\n"
		"  --queues N        I/O queue pairs (default 1)\n"
		"  --entries N       entries per I/O queue (default 128)\n"
		"  --qd N            I/Os in flight (default 32)\n"
		"  --bs BYTES        bytes per I/O, K/M suffixes (default 4K)\n"
		"  --rw MODE         read|write|rw|randread|randwrite|randrw (default randrw)\n"
		"  --mix PCT         reads in %% for rw/randrw (default 50)\n"
		"  --ios N           number of I/Os (default: run for --time)\n"
		"  --time S          seconds (default 2)\n"
		"  --range BLOCKS    LBAs used from 0 (default: whole namespace)\n"
		"  --verify          write patterns, check every read, read everything back at the end\n"
		"  --prefill         write the range once before the measured phase\n"
		"  --format          Write Zeroes over the range first (needed below a DIF bdev)\n"
		"  --dptr MODE       prp|sgl|sgl-split (default prp)\n"
		"  --offset BYTES    data offset in its buffer (PRP1 offset, default 0)\n"
		"  --reset-after N   reset the controller once after N I/Os (with I/O in flight)\n"
		"  --poll            no interrupts: poll the completion queues\n"
		"  --seed N          random seed (default 1)\n"
		"  --json            one JSON object as the result\n");
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	uint64_t mul = 1;
	if (*end == 'K' || *end == 'k')
		mul = 1024, end++;
	else if (*end == 'M' || *end == 'm')
		mul = 1024 * 1024, end++;
	if (errno || *end || s[0] < '0' || s[0] > '9')
		return -EINVAL;
	*out = v * mul;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {{"mem-fd", required_argument, 0, 'm'},
					      {"pcie-fd", required_argument, 0, 'p'},
					      {"fn", required_argument, 0, 'f'},
					      {"share-fn", required_argument, 0, 'S'},
					      {"queues", required_argument, 0, 'q'},
					      {"entries", required_argument, 0, 'e'},
					      {"qd", required_argument, 0, 'd'},
					      {"bs", required_argument, 0, 'b'},
					      {"rw", required_argument, 0, 'w'},
					      {"mix", required_argument, 0, 'x'},
					      {"ios", required_argument, 0, 'n'},
					      {"time", required_argument, 0, 't'},
					      {"range", required_argument, 0, 'r'},
					      {"verify", no_argument, 0, 'v'},
					      {"prefill", no_argument, 0, 'P'},
					      {"dptr", required_argument, 0, 'D'},
					      {"offset", required_argument, 0, 'o'},
					      {"reset-after", required_argument, 0, 'R'},
					      {"poll", no_argument, 0, 'L'},
					      {"seed", required_argument, 0, 's'},
					      {"json", no_argument, 0, 'j'},
					      {"format", no_argument, 0, 'F'},
					      {"help", no_argument, 0, 'h'},
					      {0, 0, 0, 0}};
	struct nvmeh_opts ho = {.size = sizeof(ho), .mem_fd = -1, .pcie_fd = -1, .io_queues = 1};
	struct lg_opts lo = {.size = sizeof(lo),
			     .qd = 32,
			     .bs = 4096,
			     .read_pct = 50,
			     .random = 1,
			     .seconds = 2.0,
			     .seed = 1,
			     .mode = NVMEH_PRP};
	int json = 0, c;
	uint64_t v;
	while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		int bad = 0;
		switch (c) {
		case 'm':
			ho.mem_fd = atoi(optarg);
			break;
		case 'p':
			ho.pcie_fd = atoi(optarg);
			break;
		case 'f':
			ho.fn = (unsigned)atoi(optarg);
			break;
		case 'S':
			ho.share_fn = optarg;
			break;
		case 'q':
			ho.io_queues = (uint16_t)atoi(optarg);
			break;
		case 'e':
			ho.queue_entries = (uint32_t)atoi(optarg);
			break;
		case 'd':
			lo.qd = (uint32_t)atoi(optarg);
			break;
		case 'b':
			bad = parse_size(optarg, &v) || v > UINT32_MAX;
			lo.bs = (uint32_t)v;
			break;
		case 'w':
			lo.random = strncmp(optarg, "rand", 4) == 0;
			optarg += lo.random ? 4 : 0;
			if (!strcmp(optarg, "read"))
				lo.read_pct = 100;
			else if (!strcmp(optarg, "write"))
				lo.read_pct = 0;
			else if (strcmp(optarg, "rw"))
				bad = 1;
			break;
		case 'x':
			lo.read_pct = (uint32_t)atoi(optarg);
			bad = lo.read_pct > 100;
			break;
		case 'n':
			bad = parse_size(optarg, &lo.ios);
			break;
		case 't':
			lo.seconds = atof(optarg);
			bad = lo.seconds <= 0;
			break;
		case 'r':
			bad = parse_size(optarg, &lo.range_blocks);
			break;
		case 'v':
			lo.verify = 1;
			break;
		case 'P':
			lo.prefill = 1;
			break;
		case 'F':
			lo.format = 1;
			break;
		case 'D':
			if (!strcmp(optarg, "prp"))
				lo.mode = NVMEH_PRP;
			else if (!strcmp(optarg, "sgl"))
				lo.mode = NVMEH_SGL;
			else if (!strcmp(optarg, "sgl-split"))
				lo.mode = NVMEH_SGL_SPLIT;
			else
				bad = 1;
			break;
		case 'o':
			lo.buf_offset = (uint32_t)atoi(optarg);
			break;
		case 'R':
			bad = parse_size(optarg, &lo.reset_after);
			break;
		case 'L':
			ho.poll_mode = 1;
			break;
		case 's':
			lo.seed = strtoull(optarg, NULL, 0);
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			bad = 1;
			break;
		}
		if (bad) {
			usage(stderr);
			return 2;
		}
	}
	if (ho.mem_fd < 0 || ho.pcie_fd < 0 || optind != argc) {
		usage(stderr);
		return 2;
	}
	if (ho.io_queues == 0)
		ho.io_queues = 1;

	struct nvmeh_ctrlr *ctrl = NULL;
	int rc = nvmeh_open(&ho, &ctrl);
	if (!rc)
		rc = nvmeh_init(ctrl);
	if (rc) {
		fprintf(stderr, "nvme-host: bringing the controller up failed: %s\n",
			strerror(-rc));
		nvmeh_close(ctrl);
		return 1;
	}
	const struct ferry_nvme_id_ctrlr *id = nvmeh_id_ctrlr(ctrl);
	if (!json)
		printf("host: controller '%.40s' sn '%.20s' fw '%.8s', %s\n"
		       "host: namespace 1: %llu blocks of %u bytes; %u I/O queue(s) of %u entries, "
		       "max transfer %u KiB, SGLs %s\n",
		       id->mn, id->sn, id->fr, id->subnqn,
		       (unsigned long long)nvmeh_ns_blocks(ctrl), nvmeh_ns_block_size(ctrl),
		       nvmeh_io_queue_count(ctrl), nvmeh_io_queue_size(ctrl),
		       nvmeh_max_xfer(ctrl) / 1024, (id->sgls & 3) ? "yes" : "no");
	struct lg *g = NULL;
	struct lg_result r = {0};
	rc = lg_create(ctrl, &lo, &g);
	if (!rc)
		rc = lg_run(g, &r);
	uint64_t bad = 0;
	if (!rc && lo.verify)
		rc = lg_verify_all(g, &bad);
	if (rc == 0) {
		if (!json)
			printf("host: workload done\n");
		lg_print(&r, &lo, json, stdout);
		if (lo.verify && !json)
			printf("  read-back of %llu blocks: %llu bad\n",
			       (unsigned long long)(nvmeh_ns_blocks(ctrl) < lo.range_blocks ||
								    !lo.range_blocks
							    ? nvmeh_ns_blocks(ctrl)
							    : lo.range_blocks),
			       (unsigned long long)bad);
	} else {
		fprintf(stderr, "nvme-host: workload failed: %s\n", strerror(-rc));
	}
	lg_destroy(g);
	int src = nvmeh_shutdown(ctrl);
	if (src)
		fprintf(stderr, "nvme-host: shutdown failed: %s\n", strerror(-src));
	nvmeh_close(ctrl);
	fflush(stdout);
	return rc || src || r.errors || r.verify_errors || bad ? 1 : 0;
}
