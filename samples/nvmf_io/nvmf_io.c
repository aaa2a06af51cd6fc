/*
 * ferry-nvmf-io: connect the nvmf bdev (NVMe-oF initiator, TCP or RDMA) to a controller, run a
 * verified random workload, read everything written back, and print IOPS, MiB/s, errors and
 * the bdev's counters. Every written unit holds a pattern derived from its number and a
 * generation count, so each read is checked against what the last completed write put there.
 * No two I/Os to the same unit are in flight at once.
 *
 * Usage: ferry-nvmf-io -a ADDR:PORT -n SUBNQN [-t tcp|rdma] [--nic NAME[:ARGS]]
 *                      [--hostnqn NQN] [-q NUM_IO_QUEUES]
 *                      [-d QUEUE_DEPTH] [-g] [-G] [--ios N] [--bs BYTES]
 *                      [--rw randrw|randread|randwrite] [--seed S] [--time SECONDS]
 *                      [--region BYTES] [--nsid N]
 *   -t rdma connects over NVMe-oF/RDMA through the device --nic names (default "rxe"; "mock"
 *   or "mock:ARGS" for the mock RDMA NIC); -t tcp (the default) opens its own sockets.
 *   -g header digest, -G data digest. The workload keeps QUEUE_DEPTH x NUM_IO_QUEUES I/Os in
 *   flight (at most 256) over the first --region bytes of the namespace (default 256 MiB).
 * Exits 0 only if every I/O succeeded and every byte read matched.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ferry/bdev.h>
#include <ferry/bdev_nvmf.h>
#include <ferry/device.h>
#include <ferry/log.h>

#define MAX_INFLIGHT 256

struct req {
	struct ferry_bdev_io io;
	struct iovec iov;
	uint8_t *buf;
	uint64_t unit;
	uint32_t gen; /* generation written / expected */
	int busy;
	int verify_read;
};

static struct {
	struct ferry_bdev *bdev;
	uint32_t bs, unit_blocks;
	uint64_t units;
	uint32_t *gen; /* last completed write generation per unit (0: never written) */
	uint8_t *busy;
	uint8_t *expect; /* one unit: the pattern a read is compared with */
	uint64_t done, errors, mismatches, reads, writes, bytes;
	uint64_t rng;
} g;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rnd(void)
{
	uint64_t z = (g.rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void pattern(uint8_t *p, uint64_t unit, uint32_t gen)
{
	uint64_t x = unit * 0x100000001b3ull ^ ((uint64_t)gen << 40) ^ 0xcbf29ce484222325ull;
	uint64_t *w = (uint64_t *)(void *)p;
	for (size_t i = 0; i < g.bs / 8; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		w[i] = x + i;
	}
}

static void io_done(struct ferry_bdev_io *io, void *arg)
{
	struct req *r = arg;
	g.done++;
	if (io->status) {
		g.errors++;
		if (g.errors <= 10)
			fprintf(stderr, "I/O error: %s unit %llu: %s (%s)\n",
				io->type == FERRY_BDEV_IO_READ ? "read" : "write",
				(unsigned long long)r->unit, ferry_strerror(io->status),
				ferry_last_error());
	} else if (io->type == FERRY_BDEV_IO_WRITE) {
		g.gen[r->unit] = r->gen;
		g.writes++;
		g.bytes += g.bs;
	} else {
		g.reads++;
		g.bytes += g.bs;
		if (r->gen) {
			pattern(g.expect, r->unit, r->gen);
			if (memcmp(g.expect, r->buf, g.bs) != 0) {
				g.mismatches++;
				if (g.mismatches <= 10)
					fprintf(stderr, "MISMATCH unit %llu generation %u\n",
						(unsigned long long)r->unit, r->gen);
			}
		}
	}
	g.busy[r->unit] = 0;
	r->busy = 0;
}

static int start(struct req *r, int write, uint64_t unit)
{
	memset(&r->io, 0, sizeof(r->io));
	r->unit = unit;
	r->io.type = write ? FERRY_BDEV_IO_WRITE : FERRY_BDEV_IO_READ;
	r->io.offset_blocks = unit * g.unit_blocks;
	r->io.num_blocks = g.unit_blocks;
	r->iov.iov_base = r->buf;
	r->iov.iov_len = g.bs;
	r->io.mem.iov = &r->iov;
	r->io.mem.iovcnt = 1;
	r->io.cb = io_done;
	r->io.cb_arg = r;
	if (write) {
		r->gen = g.gen[unit] + 1;
		pattern(r->buf, unit, r->gen);
	} else {
		r->gen = g.gen[unit];
	}
	r->busy = 1;
	g.busy[unit] = 1;
	int rc = ferry_bdev_submit(g.bdev, &r->io);
	if (rc) {
		r->busy = 0;
		g.busy[unit] = 0;
	}
	return rc;
}

/* Drive I/Os: next() picks (write?, unit) and returns 1, -1 to skip a turn, 0 when done. */
static int run(struct req *reqs, uint32_t inflight, int (*next)(int *, uint64_t *, void *),
	       void *arg, uint64_t deadline)
{
	int more = 1;
	for (;;) {
		uint32_t active = 0;
		for (uint32_t i = 0; i < inflight; i++) {
			struct req *r = &reqs[i];
			if (!r->busy && more && now_ns() < deadline) {
				int w;
				uint64_t u;
				more = next(&w, &u, arg);
				if (more < 0) {
					more = 1; /* every unit tried is busy: later */
				} else if (more) {
					int rc = start(r, w, u);
					if (rc == -ENOMEM)
						more = 1; /* busy: retry later (the unit is re-picked) */
					else if (rc) {
						fprintf(stderr, "submit: %s\n", ferry_strerror(rc));
						return rc;
					}
				}
			}
			active += r->busy;
		}
		if (!active && (!more || now_ns() >= deadline))
			return 0;
		ferry_bdev_poll(g.bdev, 64);
	}
}

struct rand_ctx {
	uint64_t left;
	int mode; /* 0 randrw, 1 randread, 2 randwrite */
};

static int next_rand(int *w, uint64_t *u, void *arg)
{
	struct rand_ctx *c = arg;
	if (!c->left)
		return 0;
	for (int tries = 0; tries < 64; tries++) {
		uint64_t x = rnd() % g.units;
		if (g.busy[x])
			continue;
		*u = x;
		*w = c->mode == 2 ? 1 : c->mode == 1 ? 0 : (int)(rnd() & 1);
		c->left--;
		return 1;
	}
	return -1;
}

struct seq_ctx {
	uint64_t next;
	int write;
};

static int next_seq(int *w, uint64_t *u, void *arg)
{
	struct seq_ctx *c = arg;
	while (c->next < g.units && !c->write && !g.gen[c->next])
		c->next++;
	if (c->next >= g.units)
		return 0;
	*u = c->next++;
	*w = c->write;
	return 1;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: ferry-nvmf-io -a ADDR:PORT -n SUBNQN [-t tcp|rdma] [--nic NAME[:ARGS]]\n"
		"       [--hostnqn NQN] [-q NUM_IO_QUEUES]\n"
		"       [-d QUEUE_DEPTH] [-g] [-G] [--ios N] [--bs BYTES]\n"
		"       [--rw randrw|randread|randwrite] [--seed S] [--time SECONDS]\n"
		"       [--region BYTES] [--nsid N]\n");
}

int main(int argc, char **argv)
{
	struct ferry_bdev_nvmf_opts o = {0};
	uint64_t ios = 10000, region = 256ull << 20, seed = 1;
	uint32_t bs = 4096, secs = 0;
	int mode = 0;
	static const struct option lo[] = {
		{"hostnqn", required_argument, NULL, 'H'},
		{"ios", required_argument, NULL, 'i'},
		{"bs", required_argument, NULL, 'b'},
		{"rw", required_argument, NULL, 'r'},
		{"seed", required_argument, NULL, 's'},
		{"time", required_argument, NULL, 'S'},
		{"nic", required_argument, NULL, 'C'},
		{"region", required_argument, NULL, 'R'},
		{"nsid", required_argument, NULL, 'N'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	o.size = sizeof(o);
	o.name = "nvmf0";
	int c;
	const char *nic = NULL;
	while ((c = getopt_long(argc, argv, "a:n:t:q:d:gGh", lo, NULL)) != -1) {
		switch (c) {
		case 'a':
			o.addr = optarg;
			break;
		case 'n':
			o.subnqn = optarg;
			break;
		case 'H':
			o.hostnqn = optarg;
			break;
		case 'q':
			o.num_io_queues = (uint16_t)strtoul(optarg, NULL, 0);
			break;
		case 'd':
			o.queue_depth = (uint16_t)strtoul(optarg, NULL, 0);
			break;
		case 'g':
			o.hdgst = 1;
			break;
		case 'G':
			o.ddgst = 1;
			break;
		case 'i':
			ios = strtoull(optarg, NULL, 0);
			break;
		case 'b':
			bs = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'S':
			secs = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 't':
			if (strcmp(optarg, "tcp") && strcmp(optarg, "rdma")) {
				usage();
				return 2;
			}
			o.trtype = optarg;
			break;
		case 'C':
			nic = optarg;
			break;
		case 'R':
			region = strtoull(optarg, NULL, 0);
			break;
		case 'N':
			o.nsid = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'r':
			if (!strcmp(optarg, "randrw"))
				mode = 0;
			else if (!strcmp(optarg, "randread"))
				mode = 1;
			else if (!strcmp(optarg, "randwrite"))
				mode = 2;
			else {
				usage();
				return 2;
			}
			break;
		default:
			usage();
			return c == 'h' ? 0 : 2;
		}
	}
	if (!o.addr || !o.subnqn) {
		usage();
		return 2;
	}
	int rdma = o.trtype && !strcmp(o.trtype, "rdma");
	if (nic && !rdma) {
		fprintf(stderr, "--nic is for -t rdma (tcp opens its own sockets)\n");
		return 2;
	}
	struct ferry_device *dev = NULL;
	if (rdma) {
		/* --nic NAME[:ARGS]: the backend and its device arguments */
		char name[32];
		const char *spec = nic ? nic : "rxe", *colon = strchr(spec, ':');
		size_t nl = colon ? (size_t)(colon - spec) : strlen(spec);
		if (nl == 0 || nl >= sizeof(name)) {
			fprintf(stderr, "--nic NAME[:ARGS]: %s\n", spec);
			return 2;
		}
		memcpy(name, spec, nl);
		name[nl] = '\0';
		if (ferry_device_open(name, colon ? colon + 1 : "", &dev)) {
			fprintf(stderr, "cannot open the RDMA device %s: %s\n", spec,
				ferry_last_error());
			return 1;
		}
		o.nic = dev;
	}
	o.retry_count = 3;
	int rc = ferry_bdev_nvmf_create(&o, &g.bdev);
	if (rc) {
		fprintf(stderr, "cannot connect to %s (%s): %s\n", o.addr, o.subnqn,
			ferry_last_error());
		ferry_device_close(dev);
		return 1;
	}
	uint32_t lbs = ferry_bdev_get_block_size(g.bdev);
	if (bs < lbs || bs % lbs || bs % 8) {
		fprintf(stderr, "--bs %u must be a multiple of the block size %u\n", bs, lbs);
		ferry_bdev_destroy(g.bdev);
		ferry_device_close(dev);
		return 2;
	}
	g.bs = bs;
	g.unit_blocks = bs / lbs;
	g.units = ferry_bdev_get_num_blocks(g.bdev) / g.unit_blocks;
	if (g.units > region / bs)
		g.units = region / bs ? region / bs : 1;
	g.gen = calloc(g.units, sizeof(*g.gen));
	g.busy = calloc(g.units, 1);
	g.expect = aligned_alloc(4096, (bs + 4095) / 4096 * 4096);
	g.rng = seed;
	uint32_t inflight = (uint32_t)(o.queue_depth ? o.queue_depth : 32) *
			    (o.num_io_queues ? o.num_io_queues : 1);
	if (inflight > MAX_INFLIGHT)
		inflight = MAX_INFLIGHT;
	if (inflight > g.units)
		inflight = (uint32_t)g.units;
	struct req *reqs = calloc(inflight, sizeof(*reqs));
	for (uint32_t i = 0; i < inflight; i++)
		reqs[i].buf = aligned_alloc(4096, (bs + 4095) / 4096 * 4096);
	printf("ferry-nvmf-io: %s %s: %llu blocks of %u bytes; %llu units of %u bytes, %u in flight\n",
	       o.addr, o.subnqn, (unsigned long long)ferry_bdev_get_num_blocks(g.bdev), lbs,
	       (unsigned long long)g.units, bs, inflight);

	uint64_t forever = UINT64_MAX;
	if (mode == 1) { /* randread: write the region first */
		struct seq_ctx sc = {0, 1};
		rc = run(reqs, inflight, next_seq, &sc, forever);
	}
	uint64_t w0 = g.writes, r0 = g.reads, b0 = g.bytes;
	struct rand_ctx rcx = {ios, mode};
	uint64_t t0 = now_ns();
	if (!rc)
		rc = run(reqs, inflight, next_rand, &rcx,
			 secs ? t0 + secs * 1000000000ull : forever);
	double el = (double)(now_ns() - t0) / 1e9;
	uint64_t nio = (g.writes - w0) + (g.reads - r0);
	printf("workload: %llu I/Os (%llu writes, %llu reads) in %.3f s: %.0f IOPS, %.1f MiB/s\n",
	       (unsigned long long)nio, (unsigned long long)(g.writes - w0),
	       (unsigned long long)(g.reads - r0), el, el > 0 ? nio / el : 0.0,
	       el > 0 ? (double)(g.bytes - b0) / el / 1048576.0 : 0.0);
	/* read back everything written */
	uint64_t rb = g.reads;
	struct seq_ctx vc = {0, 0};
	if (!rc)
		rc = run(reqs, inflight, next_seq, &vc, forever);
	printf("verify: %llu units read back\n", (unsigned long long)(g.reads - rb));

	struct ferry_bdev_nvmf_stats s = {.size = sizeof(s)};
	ferry_bdev_nvmf_get_stats(g.bdev, &s);
	printf("errors %llu, mismatches %llu\n", (unsigned long long)g.errors,
	       (unsigned long long)g.mismatches);
	printf("stats: commands %llu, bytes read %llu, written %llu, icd writes %llu, r2ts %llu, "
	       "h2c pdus %llu, c2h success %llu, digests %llu (errors %llu), rx placed %llu, "
	       "rx copied %llu, staged %llu, keep-alives %llu, losses %llu, reconnects %llu, "
	       "retries %llu, protocol errors %llu\n",
	       (unsigned long long)s.commands, (unsigned long long)s.bytes_read,
	       (unsigned long long)s.bytes_written, (unsigned long long)s.icd_writes,
	       (unsigned long long)s.r2ts, (unsigned long long)s.h2c_pdus,
	       (unsigned long long)s.c2h_success, (unsigned long long)s.digests_computed,
	       (unsigned long long)s.digest_errors, (unsigned long long)s.rx_placed_bytes,
	       (unsigned long long)s.rx_copied_bytes, (unsigned long long)s.staged_ios,
	       (unsigned long long)s.keep_alives, (unsigned long long)s.connection_losses,
	       (unsigned long long)s.reconnects, (unsigned long long)s.retries,
	       (unsigned long long)s.protocol_errors);
	ferry_bdev_destroy(g.bdev);
	ferry_device_close(dev);
	for (uint32_t i = 0; i < inflight; i++)
		free(reqs[i].buf);
	free(reqs);
	free(g.gen);
	free(g.busy);
	free(g.expect);
	int ok = !rc && !g.errors && !g.mismatches;
	printf("%s\n", ok ? "PASS" : "FAIL");
	return ok ? 0 : 1;
}
