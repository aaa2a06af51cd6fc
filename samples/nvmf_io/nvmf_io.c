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
 *                      [--region BYTES] [--nsid N] [--retries N]
 *                      [--dif TYPE] [--crypto HEXKEY] [--no-seq] [--volatile-target]
 *                      [--no-rdma-direct]
 *   -t rdma connects over NVMe-oF/RDMA through the device --nic names (default "rxe"; "mock"
 *   or "mock:ARGS" for the mock RDMA NIC); -t tcp (the default) opens its own sockets.
 *   -g header digest, -G data digest. The workload keeps QUEUE_DEPTH x NUM_IO_QUEUES I/Os in
 *   flight (at most 256) over the first --region bytes of the namespace (default 256 MiB).
 *   --no-rdma-direct sets FERRY_BDEV_NVMF_F_NO_RDMA_DIRECT (every RDMA I/O staged: a
 *   reference run for the RDMA-direct path).
 *   --retries N: resubmissions of an I/O after a connection loss (default 3).
 *   --dif TYPE (1..3) stacks a dif bdev (PI inserted on writes, guard and reference tag checked
 *   on reads) on the namespace, which must have 8 bytes of metadata per block (512+8 or
 *   4096+8); --crypto HEXKEY stacks an AES-XTS-256 bdev (128 hex digits: data key then tweak
 *   key) on top (on the dif bdev, or on a namespace without metadata). The workload runs on
 *   the top of that stack; with either, the region is first formatted (Write Zeroes through
 *   the stack), after which a unit never written must read back as zeroes. Each I/O then
 *   carries an accel sequence (a software channel) the stack appends its transforms to and
 *   the nvmf bdev runs into its staging buffer (over RDMA: one fused operation, counted in
 *   rdma_fused_ios); --no-seq leaves it out (the dif and crypto bdevs transform on their own
 *   buffers and the nvmf bdev sees plain local memory).
 *   --volatile-target: the target may be restarted with an empty (zeroed) store while the
 *   workload runs (a test kills it and starts it again). Each reconnection of the bdev then
 *   starts a new epoch: a unit written in the current epoch must read back its last pattern,
 *   any other unit must read back as zeroes (what was written before the restart is gone).
 *   Writes completed before the restart are expected lost; nothing else is tolerated.
 * Exits 0 only if every I/O succeeded and every byte read matched.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ferry/accel.h>
#include <ferry/bdev.h>
#include <ferry/bdev_crypto.h>
#include <ferry/bdev_dif.h>
#include <ferry/bdev_nvmf.h>
#include <ferry/crypto.h>
#include <ferry/device.h>
#include <ferry/dif.h>
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
	struct ferry_bdev *bdev;       /* the top of the stack: the workload's bdev */
	struct ferry_bdev *nvmf;       /* the nvmf bdev (its counters, its reconnections) */
	struct ferry_accel_chan *chan; /* --dif / --crypto: each read/write carries a sequence */
	uint32_t bs, unit_blocks;
	uint64_t units;
	uint32_t *gen; /* last completed write generation per unit (0: never written) */
	uint8_t *busy;
	uint8_t *expect;  /* one unit: the pattern a read is compared with */
	uint8_t *zeroes;  /* one unit of zeroes */
	uint32_t *wepoch; /* --volatile-target: the epoch of each unit's last completed write */
	uint32_t epoch;   /* --volatile-target: reconnections of the nvmf bdev seen */
	int volatile_tgt;
	int zero_known; /* a unit without a write (of this epoch) reads back as zeroes */
	uint64_t done, errors, mismatches, reads, writes, bytes, zero_reads, lost_units;
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

/* --volatile-target: a reconnection since the last completion is a new epoch (the bdev counts
 * it before it resubmits or sends anything on the new connection, so every completion after it
 * came from the restarted target). */
static void epoch_check(void)
{
	struct ferry_bdev_nvmf_stats s = {.size = sizeof(s)};
	if (!g.volatile_tgt || ferry_bdev_nvmf_get_stats(g.nvmf, &s))
		return;
	if (s.reconnects != g.epoch) {
		uint64_t lost = 0;
		for (uint64_t u = 0; u < g.units; u++)
			lost += g.gen[u] && g.wepoch[u] == g.epoch;
		g.lost_units += lost;
		printf("epoch %llu: reconnected after %llu I/Os; %llu units written before are "
		       "expected to read back as zeroes now\n",
		       (unsigned long long)s.reconnects, (unsigned long long)g.done,
		       (unsigned long long)lost);
		g.epoch = (uint32_t)s.reconnects;
	}
}

static void io_done(struct ferry_bdev_io *io, void *arg)
{
	struct req *r = arg;
	epoch_check();
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
		g.wepoch[r->unit] = g.epoch;
		g.writes++;
		g.bytes += g.bs;
	} else {
		g.reads++;
		g.bytes += g.bs;
		/* No two I/Os of a unit are in flight: its state is what it was at submission. */
		const uint8_t *want = NULL;
		if (r->gen && g.wepoch[r->unit] == g.epoch) {
			pattern(g.expect, r->unit, r->gen);
			want = g.expect;
		} else if (g.zero_known) {
			want = g.zeroes;
			g.zero_reads++;
		}
		if (want && memcmp(want, r->buf, g.bs) != 0) {
			g.mismatches++;
			if (g.mismatches <= 10 && want == g.zeroes)
				fprintf(stderr, "MISMATCH unit %llu: expected zeroes\n",
					(unsigned long long)r->unit);
			else if (g.mismatches <= 10)
				fprintf(stderr, "MISMATCH unit %llu generation %u\n",
					(unsigned long long)r->unit, r->gen);
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
	if (g.chan && ferry_seq_create(g.chan, &r->io.seq))
		return -ENOMEM; /* the channel's sequences are all alive: later */
	r->busy = 1;
	g.busy[unit] = 1;
	int rc = ferry_bdev_submit(g.bdev, &r->io);
	if (rc) {
		if (r->io.seq)
			ferry_seq_abort(r->io.seq); /* refused: nothing was appended */
		r->io.seq = NULL;
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
		if (g.chan)
			ferry_accel_chan_poll(g.chan, 64);
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
		"       [--region BYTES] [--nsid N] [--retries N]\n"
		"       [--dif TYPE] [--crypto HEXKEY] [--no-seq] [--volatile-target]\n"
		"       [--no-rdma-direct]\n");
}

static void fmt_done(struct ferry_bdev_io *io, void *arg)
{
	(void)io;
	*(int *)arg = 1;
}

/* Write Zeroes over the first @p blocks of @p b (a dif/crypto stack writes transformed zeroes:
 * valid PI, and zeroes read back through the cipher). */
static int format(struct ferry_bdev *b, uint64_t blocks)
{
	for (uint64_t off = 0; off < blocks;) {
		uint64_t cnt = blocks - off < 65536 ? blocks - off : 65536;
		int done = 0;
		struct ferry_bdev_io io;
		memset(&io, 0, sizeof(io));
		io.type = FERRY_BDEV_IO_WRITE_ZEROES;
		io.offset_blocks = off;
		io.num_blocks = cnt;
		io.cb = fmt_done;
		io.cb_arg = &done;
		int rc = ferry_bdev_submit(b, &io);
		if (rc)
			return rc;
		uint64_t deadline = now_ns() + 120ull * 1000000000ull;
		while (!done && now_ns() < deadline)
			ferry_bdev_poll(b, 64);
		if (!done)
			return -ETIMEDOUT;
		if (io.status)
			return io.status;
		off += cnt;
	}
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int main(int argc, char **argv)
{
	struct ferry_bdev_nvmf_opts o = {0};
	uint64_t ios = 10000, region = 256ull << 20, seed = 1;
	uint32_t bs = 4096, secs = 0, retries = 3, dif = 0;
	const char *hexkey = NULL;
	int mode = 0, no_seq = 0;
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
		{"retries", required_argument, NULL, 'T'},
		{"dif", required_argument, NULL, 'D'},
		{"crypto", required_argument, NULL, 'K'},
		{"volatile-target", no_argument, NULL, 'V'},
		{"no-seq", no_argument, NULL, 'Q'},
		{"no-rdma-direct", no_argument, NULL, 'X'},
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
		case 'T':
			retries = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'D':
			dif = (uint32_t)strtoul(optarg, NULL, 0);
			if (dif < 1 || dif > 3) {
				fprintf(stderr, "--dif TYPE takes 1, 2 or 3\n");
				return 2;
			}
			break;
		case 'K':
			hexkey = optarg;
			if (strlen(hexkey) != 128) {
				fprintf(stderr, "--crypto HEXKEY takes 128 hex digits (two 256-bit "
						"keys)\n");
				return 2;
			}
			break;
		case 'V':
			g.volatile_tgt = 1;
			break;
		case 'Q':
			no_seq = 1;
			break;
		case 'X':
			o.flags |= FERRY_BDEV_NVMF_F_NO_RDMA_DIRECT;
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
	if (g.volatile_tgt && (dif || hexkey)) {
		/* a restarted target's store holds no PI: the stack would need a new format */
		fprintf(stderr, "--volatile-target takes no --dif / --crypto\n");
		return 2;
	}
	uint8_t key[64];
	for (size_t i = 0; hexkey && i < 64; i++) {
		int hi = hexval(hexkey[2 * i]), lw = hexval(hexkey[2 * i + 1]);
		if (hi < 0 || lw < 0) {
			fprintf(stderr, "--crypto HEXKEY has a non-hex digit\n");
			return 2;
		}
		key[i] = (uint8_t)(hi << 4 | lw);
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
	o.retry_count = retries;
	int rc = ferry_bdev_nvmf_create(&o, &g.nvmf);
	if (rc) {
		fprintf(stderr, "cannot connect to %s (%s): %s\n", o.addr, o.subnqn,
			ferry_last_error());
		ferry_device_close(dev);
		return 1;
	}
	/* The optional stack: dif on the namespace, crypto on top. */
	struct ferry_bdev *difb = NULL, *cryptob = NULL;
	struct ferry_crypto_key *ckey = NULL;
	g.bdev = g.nvmf;
	if (dif) {
		struct ferry_bdev_dif_opts d = {.size = sizeof(d),
						.name = "nvmf0_dif",
						.base = g.nvmf,
						.dif_type = dif,
						.check_flags = FERRY_DIF_CHECK_GUARD |
							       (dif != 3 ? FERRY_DIF_CHECK_REFTAG
									 : 0)};
		rc = ferry_bdev_dif_create(&d, &difb);
		if (rc)
			fprintf(stderr, "--dif %u: %s\n", dif, ferry_last_error());
		else
			g.bdev = difb;
	}
	if (!rc && hexkey) {
		struct ferry_crypto_key_opts ko = {.size = sizeof(ko),
						   .cipher = FERRY_CIPHER_AES_XTS_256,
						   .key1 = key,
						   .key2 = key + 32,
						   .key_len = 32,
						   .data_unit_size = ferry_bdev_get_block_size(
							   g.bdev)};
		rc = ferry_crypto_key_create(&ko, &ckey);
		if (!rc) {
			struct ferry_bdev_crypto_opts co = {.size = sizeof(co),
							    .name = "nvmf0_crypto",
							    .base = g.bdev,
							    .key = ckey};
			rc = ferry_bdev_crypto_create(&co, &cryptob);
		}
		if (rc)
			fprintf(stderr, "--crypto: %s\n", ferry_last_error());
		else
			g.bdev = cryptob;
	}
	memset(key, 0, sizeof(key));
	if (!rc && (difb || cryptob) && !no_seq) {
		rc = ferry_accel_chan_create(NULL, NULL, &g.chan);
		if (rc)
			fprintf(stderr, "accel channel: %s\n", ferry_strerror(rc));
	}
	uint32_t lbs = ferry_bdev_get_block_size(g.bdev);
	if (!rc && (bs < lbs || bs % lbs || bs % 8)) {
		fprintf(stderr, "--bs %u must be a multiple of the block size %u\n", bs, lbs);
		rc = -EINVAL;
	}
	if (rc) {
		ferry_accel_chan_destroy(g.chan);
		ferry_bdev_destroy(cryptob);
		ferry_bdev_destroy(difb);
		ferry_crypto_key_destroy(ckey);
		ferry_bdev_destroy(g.nvmf);
		ferry_device_close(dev);
		return 2;
	}
	g.bs = bs;
	g.unit_blocks = bs / lbs;
	g.units = ferry_bdev_get_num_blocks(g.bdev) / g.unit_blocks;
	if (g.units > region / bs)
		g.units = region / bs ? region / bs : 1;
	g.gen = calloc(g.units, sizeof(*g.gen));
	g.wepoch = calloc(g.units, sizeof(*g.wepoch));
	g.busy = calloc(g.units, 1);
	g.expect = aligned_alloc(4096, (bs + 4095) / 4096 * 4096);
	g.zeroes = calloc(1, bs);
	/* The generation table counts epochs from the bdev's reconnections. */
	struct ferry_bdev_nvmf_stats s = {.size = sizeof(s)};
	ferry_bdev_nvmf_get_stats(g.nvmf, &s);
	g.epoch = (uint32_t)s.reconnects;
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
	if (difb || cryptob) {
		uint64_t t = now_ns();
		rc = format(g.bdev, g.units * g.unit_blocks);
		if (rc)
			fprintf(stderr, "formatting the region: %s (%s)\n", ferry_strerror(rc),
				ferry_last_error());
		else
			printf("stack: %s%s%s on the namespace (%s); region formatted in %.3f s\n",
			       cryptob ? "crypto (AES-XTS-256)" : "", difb && cryptob ? " on " : "",
			       difb ? "dif" : "",
			       g.chan ? "I/Os carry accel sequences" : "no sequences",
			       (double)(now_ns() - t) / 1e9);
		g.zero_known = 1;
	}
	if (g.volatile_tgt)
		g.zero_known = 1; /* the target starts (and restarts) with a zeroed store */

	uint64_t forever = UINT64_MAX;
	if (mode == 1) { /* randread: write the region first */
		struct seq_ctx sc = {0, 1};
		rc = run(reqs, inflight, next_seq, &sc, forever);
	}
	uint64_t w0 = g.writes, r0 = g.reads, b0 = g.bytes;
	g.lost_units = 0;
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

	ferry_bdev_nvmf_get_stats(g.nvmf, &s);
	printf("errors %llu, mismatches %llu\n", (unsigned long long)g.errors,
	       (unsigned long long)g.mismatches);
	if (g.zero_known)
		printf("zero reads %llu (units expected zeroes: never written%s)\n",
		       (unsigned long long)g.zero_reads,
		       g.volatile_tgt ? ", or written before a restart" : " since the format");
	if (g.volatile_tgt)
		printf("epochs %u: units lost to target restarts %llu\n", g.epoch,
		       (unsigned long long)g.lost_units);
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
	if (rdma)
		printf("rdma: direct ios %llu, direct bytes %llu, staged ios %llu, fused ios %llu, "
		       "untranslatable %llu, icd writes %llu, wc errors %llu, io errors %llu\n",
		       (unsigned long long)s.rdma_direct_ios,
		       (unsigned long long)s.rdma_direct_bytes,
		       (unsigned long long)s.rdma_staged_ios, (unsigned long long)s.rdma_fused_ios,
		       (unsigned long long)s.rdma_untranslatable,
		       (unsigned long long)s.rdma_icd_writes, (unsigned long long)s.rdma_wc_errors,
		       (unsigned long long)s.io_errors);
	ferry_bdev_destroy(cryptob);
	ferry_bdev_destroy(difb);
	ferry_crypto_key_destroy(ckey);
	ferry_accel_chan_destroy(g.chan);
	ferry_bdev_destroy(g.nvmf);
	ferry_device_close(dev);
	for (uint32_t i = 0; i < inflight; i++)
		free(reqs[i].buf);
	free(reqs);
	free(g.gen);
	free(g.wepoch);
	free(g.busy);
	free(g.expect);
	free(g.zeroes);
	int ok = !rc && !g.errors && !g.mismatches;
	printf("%s\n", ok ? "PASS" : "FAIL");
	return ok ? 0 : 1;
}
