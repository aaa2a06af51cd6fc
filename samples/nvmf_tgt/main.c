/*
 * ferry-nvmf-tgt: an NVMe-oF target (TCP, or RDMA with -t rdma) built from the app API only
 * (docs/nvmf.md).
 *
 *   ferry-nvmf-tgt [-t tcp|rdma] [--nic NAME[:ARGS]] [-a ADDR:PORT]... [-p POLL_GROUPS]
 *                  [-n SUBNQN] [--ns SPEC]... [--ready-file F] [--quiet] [--args TRANSPORT_ARGS]
 *
 * SPEC = malloc:SIZE[:BS[+MD]] or null:SIZE[:BS[+MD]], then optional layers ",dif=TYPE"
 * (PI inserted and checked: BS+8 blocks below, BS above) and ",crypto=HEXKEY" (AES-256-XTS,
 * 128 hex digits: data key then tweak key). Several --ns give NSIDs 1..n. -p N polls N poll
 * groups from N threads (busy polling); the main thread accepts connections and runs the
 * keep-alive timers. SIGUSR1 prints the connections and their counters (also at exit);
 * SIGINT/SIGTERM stop cleanly (exit 0). Bad arguments: a message and exit 2.
 * -t rdma serves NVMe-oF/RDMA through the device --nic names (default "rxe"; "mock" or
 * "mock:ARGS" for the mock RDMA NIC); -t tcp (the default) opens its own sockets.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <ferry/bdev.h>
#include <ferry/bdev_crypto.h>
#include <ferry/bdev_dif.h>
#include <ferry/bdev_malloc.h>
#include <ferry/bdev_null.h>
#include <ferry/crypto.h>
#include <ferry/device.h>
#include <ferry/dif.h>
#include <ferry/log.h>
#include <ferry/nvme.h>
#include <ferry/rdma_transport.h>
#include <ferry/tcp_transport.h>
#include <ferry/transport.h>

#define MAX_ADDRS 16
#define MAX_NS 32
#define MAX_PG 64
#define LAYERS 3 /* base, dif, crypto */

struct ns {
	struct ferry_bdev *bdev[LAYERS]; /* bottom up; the top one is the namespace */
	struct ferry_crypto_key *key;
};

static volatile sig_atomic_t stop_sig, dump_sig;
static atomic_int pg_stop;
static int quiet;
static int use_rdma; /* -t rdma */

static void on_stop(int s)
{
	(void)s;
	stop_sig = 1;
}

static void on_dump(int s)
{
	(void)s;
	dump_sig = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ferry-nvmf-tgt [-t tcp|rdma] [--nic NAME[:ARGS]] [-a ADDR:PORT]...\n"
		"                      [-p POLL_GROUPS] [-n SUBNQN] [--ns SPEC]...\n"
		"                      [--ready-file F] [--quiet] [--args TRANSPORT_ARGS]\n"
		"  -t tcp|rdma    transport (default tcp)\n"
		"  --nic NAME[:ARGS]  -t rdma: the RDMA device's backend (default rxe; mock)\n"
		"  -a ADDR:PORT   listen address (repeatable; default 127.0.0.1:4420)\n"
		"  -p N           poll-group threads (default 1)\n"
		"  -n SUBNQN      subsystem NQN (default nqn.2026-12.io.ferry:tgt)\n"
		"  --ns SPEC      namespace: malloc:SIZE[:BS[+MD]] or null:SIZE[:BS[+MD]],\n"
		"                 then ,dif=TYPE and/or ,crypto=HEXKEY (128 hex digits)\n"
		"                 (repeatable; NSIDs 1..n; default malloc:64M:512)\n"
		"  --ready-file F written once listening\n"
		"  --quiet        print only errors\n"
		"  --args STR     transport arguments (ferry/tcp_transport.h,\n"
		"                 ferry/rdma_transport.h)\n");
}

static void bad(const char *fmt, const char *what)
{
	fprintf(stderr, "ferry-nvmf-tgt: ");
	fprintf(stderr, fmt, what);
	fprintf(stderr, "\n");
	usage(stderr);
	exit(2);
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end = NULL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	uint64_t m = 1;
	if (*end == 'K' || *end == 'k')
		m = 1ull << 10;
	else if (*end == 'M' || *end == 'm')
		m = 1ull << 20;
	else if (*end == 'G' || *end == 'g')
		m = 1ull << 30;
	else if (*end)
		return -1;
	if (*end && end[1])
		return -1;
	if (v == 0 || v > (UINT64_MAX / m))
		return -1;
	*out = v * m;
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

static int ns_format(struct ferry_bdev *b);

/* Builds namespace @p idx from @p spec; exits 2 on a bad spec, returns -errno on a failure. */
static int make_ns(const char *spec, unsigned int idx, struct ns *ns)
{
	char buf[512];
	if (strlen(spec) >= sizeof(buf))
		bad("namespace spec too long: %s", spec);
	snprintf(buf, sizeof(buf), "%s", spec);
	char *layers = strchr(buf, ',');
	if (layers)
		*layers++ = 0;
	char *kind = buf, *size = strchr(buf, ':');
	if (!size)
		bad("namespace spec needs KIND:SIZE: %s", spec);
	*size++ = 0;
	char *bs = strchr(size, ':');
	if (bs)
		*bs++ = 0;
	uint64_t bytes;
	if (parse_size(size, &bytes))
		bad("bad namespace size in %s", spec);
	uint32_t block = 512, md = 0;
	if (bs) {
		char *plus = strchr(bs, '+');
		if (plus)
			*plus++ = 0;
		char *e;
		block = (uint32_t)strtoul(bs, &e, 10);
		if (*e || (block != 512 && block != 4096))
			bad("block size must be 512 or 4096 in %s", spec);
		if (plus) {
			md = (uint32_t)strtoul(plus, &e, 10);
			if (*e || (md != 8 && md != 16 && md != 64))
				bad("metadata must be 8, 16 or 64 bytes in %s", spec);
		}
	}
	int dif = 0;
	const char *hex = NULL;
	for (char *l = layers, *next; l; l = next) {
		next = strchr(l, ',');
		if (next)
			*next++ = 0;
		if (!strncmp(l, "dif=", 4)) {
			dif = atoi(l + 4);
			if (dif < 1 || dif > 3)
				bad("dif=TYPE takes 1, 2 or 3 in %s", spec);
		} else if (!strncmp(l, "crypto=", 7)) {
			hex = l + 7;
			if (strlen(hex) != 128)
				bad("crypto=HEXKEY takes 128 hex digits (two 256-bit keys) in %s",
				    spec);
		} else {
			bad("unknown namespace layer in %s", spec);
		}
	}
	if (dif && md != 8)
		bad("dif= needs 8 bytes of metadata (e.g. :4096+8) in %s", spec);
	if (hex && md && !dif)
		bad("crypto= needs blocks without metadata (add dif= or drop +MD) in %s", spec);
	uint32_t ext = block + md;
	uint64_t nblocks = bytes / ext;
	if (nblocks == 0)
		bad("namespace smaller than one block: %s", spec);
	char name[3][32];
	snprintf(name[0], sizeof(name[0]), "ns%u_%.8s", idx + 1, kind);
	snprintf(name[1], sizeof(name[1]), "ns%u_dif", idx + 1);
	snprintf(name[2], sizeof(name[2]), "ns%u_crypto", idx + 1);
	int rc;
	if (!strcmp(kind, "malloc")) {
		struct ferry_bdev_malloc_opts o = {.size = sizeof(o),
						   .name = name[0],
						   .block_size = ext,
						   .num_blocks = nblocks,
						   .md_size = md,
						   .dif_type = (uint32_t)dif};
		rc = ferry_bdev_malloc_create(&o, &ns->bdev[0]);
	} else if (!strcmp(kind, "null")) {
		struct ferry_bdev_null_opts o = {.size = sizeof(o),
						 .name = name[0],
						 .block_size = ext,
						 .num_blocks = nblocks,
						 .md_size = md,
						 .dif_type = (uint32_t)dif};
		rc = ferry_bdev_null_create(&o, &ns->bdev[0]);
	} else {
		bad("namespace kind must be malloc or null: %s", spec);
		return -EINVAL;
	}
	if (rc)
		return rc;
	if (dif) {
		struct ferry_bdev_dif_opts o = {.size = sizeof(o),
						.name = name[1],
						.base = ns->bdev[0],
						.dif_type = (uint32_t)dif,
						.check_flags = FERRY_DIF_CHECK_GUARD |
							       (dif != 3 ? FERRY_DIF_CHECK_REFTAG
									 : 0)};
		rc = ferry_bdev_dif_create(&o, &ns->bdev[1]);
		if (!rc)
			rc = ns_format(ns->bdev[1]);
		if (rc)
			return rc;
	}
	if (hex) {
		uint8_t k[64];
		for (int i = 0; i < 64; i++) {
			int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
			if (hi < 0 || lo < 0)
				bad("crypto=HEXKEY has a non-hex digit in %s", spec);
			k[i] = (uint8_t)(hi << 4 | lo);
		}
		struct ferry_crypto_key_opts ko = {.size = sizeof(ko),
						   .cipher = FERRY_CIPHER_AES_XTS_256,
						   .key1 = k,
						   .key2 = k + 32,
						   .key_len = 32,
						   .data_unit_size = block};
		rc = ferry_crypto_key_create(&ko, &ns->key);
		memset(k, 0, sizeof(k));
		if (rc)
			return rc;
		struct ferry_bdev_crypto_opts o = {.size = sizeof(o),
						   .name = name[2],
						   .base = ns->bdev[1] ? ns->bdev[1] : ns->bdev[0],
						   .key = ns->key};
		rc = ferry_bdev_crypto_create(&o, &ns->bdev[2]);
	}
	return rc;
}

static void io_done(struct ferry_bdev_io *io, void *arg)
{
	(void)io;
	*(int *)arg = 1;
}

/* PI namespaces start formatted: WRITE_ZEROES through the dif bdev writes valid PI on every
 * block (a fresh base holds none, and reads of unwritten blocks would fail the checks). */
static int ns_format(struct ferry_bdev *b)
{
	uint64_t n = ferry_bdev_get_num_blocks(b);
	for (uint64_t off = 0; off < n;) {
		uint64_t cnt = n - off < 65536 ? n - off : 65536;
		int done = 0;
		struct ferry_bdev_io io;
		memset(&io, 0, sizeof(io));
		io.type = FERRY_BDEV_IO_WRITE_ZEROES;
		io.offset_blocks = off;
		io.num_blocks = cnt;
		io.cb = io_done;
		io.cb_arg = &done;
		int rc = ferry_bdev_submit(b, &io);
		if (rc)
			return rc;
		for (long i = 0; !done && i < 100000000L; i++)
			ferry_bdev_io_poll(&io);
		if (!done)
			return -ETIMEDOUT;
		if (io.status)
			return io.status;
		off += cnt;
	}
	return 0;
}

static struct ferry_bdev *ns_top(const struct ns *ns)
{
	for (int i = LAYERS - 1; i >= 0; i--)
		if (ns->bdev[i])
			return ns->bdev[i];
	return NULL;
}

static void ns_destroy(struct ns *ns)
{
	for (int i = LAYERS - 1; i >= 0; i--)
		ferry_bdev_destroy(ns->bdev[i]);
	ferry_crypto_key_destroy(ns->key);
}

static void print_conn(void *ctx, const struct ferry_tcp_conn_stats *s)
{
	(void)ctx;
	printf("  conn %s -> %s pg %u cntlid %u qid %u: cmds %llu in %llu out %llu r2t %llu "
	       "h2c %llu c2h %llu placed %llu copied %llu ddgst-err %llu pdu-err %llu "
	       "sendv %llu recvv %llu\n",
	       s->peer, s->local, s->pg, s->cntlid, s->qid, (unsigned long long)s->cmds,
	       (unsigned long long)s->bytes_in, (unsigned long long)s->bytes_out,
	       (unsigned long long)s->r2ts, (unsigned long long)s->h2c_pdus,
	       (unsigned long long)s->c2h_pdus, (unsigned long long)s->rx_placed,
	       (unsigned long long)s->rx_copied, (unsigned long long)s->ddgst_errors,
	       (unsigned long long)s->pdu_errors, (unsigned long long)s->send_calls,
	       (unsigned long long)s->recv_calls);
}

static void print_rdma_conn(void *ctx, const struct ferry_rdma_conn_stats *s)
{
	(void)ctx;
	printf("  conn %s -> %s pg %u cntlid %u qid %u depth %u: cmds %llu icd %llu keyed %llu "
	       "sgl-err %llu reads %llu (%llu bytes) writes %llu (%llu bytes) sends %llu "
	       "sq-waits %llu ird-waits %llu wc-err %llu\n",
	       s->peer, s->local, s->pg, s->cntlid, s->qid, s->depth, (unsigned long long)s->cmds,
	       (unsigned long long)s->icd_cmds, (unsigned long long)s->keyed_cmds,
	       (unsigned long long)s->sgl_errors, (unsigned long long)s->reads,
	       (unsigned long long)s->read_bytes, (unsigned long long)s->writes,
	       (unsigned long long)s->write_bytes, (unsigned long long)s->sends,
	       (unsigned long long)s->sq_waits, (unsigned long long)s->ird_waits,
	       (unsigned long long)s->wc_errors);
}

static void dump_rdma(struct ferry_transport *t)
{
	struct ferry_rdma_transport_totals tot = {.size = sizeof(tot)};
	if (ferry_rdma_transport_get_totals(t, &tot) == 0)
		printf("ferry-nvmf-tgt: %u connections, %u controllers (requests %llu, accepted "
		       "%llu, rejected %llu, refused %llu, closed %llu, QP errors %llu, keep-alive "
		       "expired %llu)\n",
		       tot.conns, tot.ctrlrs, (unsigned long long)tot.requests,
		       (unsigned long long)tot.accepted, (unsigned long long)tot.rejected,
		       (unsigned long long)tot.refused, (unsigned long long)tot.closed,
		       (unsigned long long)tot.qp_errors, (unsigned long long)tot.kato_expired);
	ferry_rdma_transport_get_stats(t, print_rdma_conn, NULL);
	fflush(stdout);
}

static void dump(struct ferry_transport *t)
{
	if (use_rdma) {
		dump_rdma(t);
		return;
	}
	struct ferry_tcp_transport_totals tot = {.size = sizeof(tot)};
	if (ferry_tcp_transport_get_totals(t, &tot) == 0)
		printf("ferry-nvmf-tgt: %u connections, %u controllers (accepted %llu, closed %llu, "
		       "malformed %llu, keep-alive expired %llu)\n",
		       tot.conns, tot.ctrlrs, (unsigned long long)tot.accepted,
		       (unsigned long long)tot.closed, (unsigned long long)tot.pdu_errors,
		       (unsigned long long)tot.kato_expired);
	ferry_tcp_transport_get_stats(t, print_conn, NULL);
	fflush(stdout);
}

static void *pg_thread(void *arg)
{
	struct ferry_transport_pg *pg = arg;
	while (!atomic_load_explicit(&pg_stop, memory_order_relaxed))
		ferry_transport_pg_poll(pg, 0);
	return NULL;
}

int main(int argc, char **argv)
{
	const char *addrs[MAX_ADDRS], *specs[MAX_NS];
	unsigned int naddrs = 0, nns = 0, npg = 1;
	const char *nqn = "nqn.2026-12.io.ferry:tgt", *ready = NULL, *targs = NULL;
	const char *nic = NULL;
	static const struct option lo[] = {{"ns", required_argument, NULL, 'N'},
					   {"ready-file", required_argument, NULL, 'R'},
					   {"quiet", no_argument, NULL, 'q'},
					   {"args", required_argument, NULL, 'A'},
					   {"nic", required_argument, NULL, 'C'},
					   {"help", no_argument, NULL, 'h'},
					   {NULL, 0, NULL, 0}};
	int c;
	while ((c = getopt_long(argc, argv, "a:p:n:t:h", lo, NULL)) != -1) {
		switch (c) {
		case 'a':
			if (naddrs == MAX_ADDRS)
				bad("at most 16 addresses%s", "");
			if (!strchr(optarg, ':'))
				bad("address must be ADDR:PORT: %s", optarg);
			addrs[naddrs++] = optarg;
			break;
		case 'p': {
			char *e;
			long v = strtol(optarg, &e, 10);
			if (*e || v < 1 || v > MAX_PG)
				bad("-p takes 1..64 poll groups: %s", optarg);
			npg = (unsigned int)v;
			break;
		}
		case 'n':
			nqn = optarg;
			break;
		case 't':
			if (!strcmp(optarg, "rdma"))
				use_rdma = 1;
			else if (strcmp(optarg, "tcp"))
				bad("-t takes tcp or rdma: %s", optarg);
			break;
		case 'C':
			nic = optarg;
			break;
		case 'N':
			if (nns == MAX_NS)
				bad("at most 32 namespaces%s", "");
			specs[nns++] = optarg;
			break;
		case 'R':
			ready = optarg;
			break;
		case 'q':
			quiet = 1;
			break;
		case 'A':
			targs = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc)
		bad("unexpected argument: %s", argv[optind]);
	if (nic && !use_rdma)
		bad("--nic is for -t rdma (tcp opens its own sockets): %s", nic);
	if (!naddrs)
		addrs[naddrs++] = "127.0.0.1:4420";
	if (!nns)
		specs[nns++] = "malloc:64M:512";
	if (quiet)
		ferry_log_set_level(FERRY_LOG_ERROR);

	static struct ns ns[MAX_NS];
	struct ferry_nvme_subsystem *subsys = NULL;
	struct ferry_transport *t = NULL;
	struct ferry_device *dev = NULL;
	pthread_t th[MAX_PG];
	struct ferry_transport_pg *pgs[MAX_PG];
	unsigned int nth = 0;
	int rc = 0;

	struct ferry_nvme_subsystem_opts so = {.size = sizeof(so),
					       .nqn = nqn,
					       .serial = "FERRYTGT0001",
					       .model = "Ferry NVMe-oF target"};
	rc = ferry_nvme_subsystem_create(&so, &subsys);
	if (rc) {
		fprintf(stderr, "ferry-nvmf-tgt: subsystem %s: %s\n", nqn, ferry_last_error());
		return rc == -EINVAL ? 2 : 1;
	}
	for (unsigned int i = 0; i < nns && !rc; i++) {
		rc = make_ns(specs[i], i, &ns[i]);
		if (!rc) {
			struct ferry_nvme_ns_opts no = {.size = sizeof(no),
							.bdev = ns_top(&ns[i]),
							.nsid = i + 1};
			rc = ferry_nvme_subsystem_add_ns(subsys, &no, NULL);
		}
		if (rc)
			fprintf(stderr, "ferry-nvmf-tgt: namespace %u (%s): %s\n", i + 1, specs[i],
				ferry_last_error());
	}
	if (!rc && use_rdma) {
		/* --nic NAME[:ARGS]: the backend and its device arguments */
		char name[64];
		const char *spec = nic ? nic : "rxe", *colon = strchr(spec, ':');
		size_t nl = colon ? (size_t)(colon - spec) : strlen(spec);
		if (nl == 0 || nl >= sizeof(name))
			bad("--nic NAME[:ARGS]: %s", spec);
		memcpy(name, spec, nl);
		name[nl] = 0;
		rc = ferry_device_open(name, colon ? colon + 1 : "", &dev);
		if (rc)
			fprintf(stderr, "ferry-nvmf-tgt: device %s: %s\n", spec, ferry_last_error());
	}
	struct ferry_transport_opts to = {.size = sizeof(to), .device = dev, .args = targs};
	const char *tname = use_rdma ? "rdma" : "tcp";
	if (!rc) {
		rc = ferry_transport_create(tname, &to, &t);
		if (rc)
			fprintf(stderr, "ferry-nvmf-tgt: %s transport%s%s: %s\n", tname,
				targs ? " " : "", targs ? targs : "", ferry_last_error());
	}
	for (unsigned int i = 0; i < npg && !rc; i++) {
		rc = ferry_transport_pg_create(t, &pgs[i]);
		if (!rc) {
			rc = -pthread_create(&th[i], NULL, pg_thread, pgs[i]);
			if (!rc)
				nth++;
		}
	}
	for (unsigned int i = 0; i < naddrs && !rc; i++) {
		rc = ferry_transport_listen(t, subsys, addrs[i]);
		if (rc) {
			fprintf(stderr, "ferry-nvmf-tgt: listen on %s: %s\n", addrs[i],
				ferry_last_error());
			break;
		}
		char a[64];
		if ((use_rdma ? ferry_rdma_transport_get_listen_addr(t, i, a, sizeof(a))
			      : ferry_tcp_transport_get_listen_addr(t, i, a, sizeof(a))))
			snprintf(a, sizeof(a), "%s", addrs[i]);
		if (!quiet)
			printf("ferry-nvmf-tgt: listening on %s subnqn %s (%u namespaces, %u poll "
			       "groups%s)\n",
			       a, nqn, nns, npg, use_rdma ? ", rdma" : "");
	}
	fflush(stdout);
	if (!rc && ready) {
		FILE *f = fopen(ready, "w");
		if (!f) {
			fprintf(stderr, "ferry-nvmf-tgt: cannot write %s: %s\n", ready,
				strerror(errno));
			rc = -errno;
		} else {
			fprintf(f, "%d\n", (int)getpid());
			fclose(f);
		}
	}
	if (!rc) {
		struct sigaction sa = {.sa_handler = on_stop};
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sa.sa_handler = on_dump;
		sigaction(SIGUSR1, &sa, NULL);
		/* The instance's thread: accepts connections, runs keep-alive timers (the poll
		 * waits a little when idle). */
		while (!stop_sig) {
			ferry_transport_poll(t, 0);
			if (dump_sig) {
				dump_sig = 0;
				dump(t);
			}
		}
	}
	atomic_store(&pg_stop, 1);
	for (unsigned int i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	if (t) {
		if (!quiet)
			dump(t);
		ferry_transport_destroy(t); /* closes the connections, destroys the groups */
	}
	ferry_nvme_subsystem_destroy(subsys);
	for (unsigned int i = 0; i < nns; i++)
		ns_destroy(&ns[i]);
	ferry_device_close(dev);
	if (!quiet && !rc)
		printf("ferry-nvmf-tgt: stopped\n");
	return rc ? 1 : 0;
}
