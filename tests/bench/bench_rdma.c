/*
 * ferry-bench suite "rdma": RDMA through Ferry's NIC class, next to the references that run
 * on the same device in the same run.
 *
 * Cases (bench_rdma_nvmf.c adds the NVMe-oF/RDMA ones):
 * - write-bw / read-bw: RDMA WRITE and RDMA READ bandwidth through the HAL's RDMA ops (two
 *   QPs of one device connected through its connection manager, 64 KiB messages, a window of
 *   outstanding work requests, a fixed duration of max(1 s, 5 x --time) after a warm-up of a
 *   fifth of it), then perftest's ib_write_bw / ib_read_bw (`-d rxe0 -x 1 -F -s 65536 -D N`,
 *   the client given the server's address) as two child processes on the same device; both
 *   figures and their ratio (the goal is >= 0.9). With a reference, Ferry runs before and
 *   after it and the better run is quoted (ferry_other_mibs: the other one). The data is checked after the Ferry run (every byte of every slot's
 *   last message), and the device's RDMA counters must account for the bytes measured.
 *   With --nic mock the Ferry side runs on mock RDMA and the reference is skipped (its
 *   reason is printed in the line).
 * MB/s here are MiB/s (2^20 bytes per second), the unit perftest reports.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <ferry/ferry.h>
#include <ferry/hal/backend.h>
#include <ferry/hal/nic.h>
#include <ferry/hal/rdma.h>
#include "bench.h"
#include "bench_rdma.h"

#define SUITE "rdma"
#define MSG (64u * 1024u)
#define WINDOW_MAX 128u /* perftest's default tx depth */

extern char **environ;

__attribute__((weak)) void bench_rdma_nvmf(int json);

/* ---- the device ---------------------------------------------------------------------------- */

int bench_rdma_open(struct bench_rdma_nic *n)
{
	memset(n, 0, sizeof(*n));
	const char *want = bench_opts.nic;
	if (!want || !strcmp(want, "rxe")) {
		if (ferry_device_open("rxe", "dev=rxe0", &n->dev) == 0) {
			n->mock = 0;
		} else if (want) {
			snprintf(n->why, sizeof(n->why), "the rxe device does not open: %s",
				 ferry_last_error());
			return -ENODEV;
		}
	}
	if (!n->dev) {
		if (ferry_device_open("mock", BENCH_RDMA_MOCK_ARGS, &n->dev)) {
			snprintf(n->why, sizeof(n->why), "no RDMA NIC (rxe%s, mock: %s)",
				 want ? " not asked" : " does not open", ferry_last_error());
			return -ENODEV;
		}
		n->mock = 1;
	}
	const struct ferry_hal_backend *be = ferry_hal_dev_get_backend(n->dev);
	n->ops = be && be->nic ? be->nic->rdma : NULL;
	if (!n->ops || n->ops->query(n->dev, &n->info)) {
		snprintf(n->why, sizeof(n->why), "device %s has no RDMA part",
			 ferry_device_get_name(n->dev));
		ferry_device_close(n->dev);
		n->dev = NULL;
		return -ENODEV;
	}
	snprintf(n->host, sizeof(n->host), "%s",
		 bench_opts.addr ? bench_opts.addr
		 : n->mock       ? "127.0.0.1"
				 : "10.9.0.1");
	return 0;
}

void bench_rdma_close(struct bench_rdma_nic *n)
{
	ferry_device_close(n->dev);
	n->dev = NULL;
}

/* ---- two connected QPs ----------------------------------------------------------------------- */

struct pair {
	const struct ferry_hal_rdma_ops *o;
	struct ferry_hal_rdma_listener *l;
	struct ferry_hal_rdma_cq *cq_c, *cq_s;
	struct ferry_hal_rdma_qp *qc, *qs;
};

static void pair_down(struct pair *p)
{
	p->o->qp_destroy(p->qc);
	p->o->qp_destroy(p->qs);
	p->o->listener_close(p->l);
	p->o->cq_destroy(p->cq_c);
	p->o->cq_destroy(p->cq_s);
	memset(p, 0, sizeof(*p));
}

/* Listen on n->host (a free port), connect a client QP to it and accept it: p->qc (the
 * initiator of the transfers) and p->qs, each on its own CQ. bench_fail() on any error. */
static void pair_up(struct bench_rdma_nic *n, uint32_t window, struct pair *p)
{
	const struct ferry_hal_rdma_ops *o = n->ops;
	memset(p, 0, sizeof(*p));
	p->o = o;
	char addr[80];
	snprintf(addr, sizeof(addr), "%s:0", n->host);
	uint8_t depth = (uint8_t)(n->info.max_qp_rd_atom < 16 ? n->info.max_qp_rd_atom : 16);
	uint8_t resp = (uint8_t)(n->info.max_qp_init_rd_atom < 16 ? n->info.max_qp_init_rd_atom
								  : 16);
	struct ferry_hal_rdma_qp_attr a = {.size = sizeof(a),
					   .max_send_wr = window,
					   .max_recv_wr = 4,
					   .max_send_sge = 1,
					   .max_recv_sge = 1,
					   .initiator_depth = depth ? depth : 1,
					   .responder_resources = resp ? resp : 1};
	int rc;
	if ((rc = o->cq_create(n->dev, 2 * window + 8, &p->cq_c)) ||
	    (rc = o->cq_create(n->dev, 2 * window + 8, &p->cq_s)) ||
	    (rc = o->listen(n->dev, addr, 4, &p->l)) ||
	    (rc = o->listener_addr(p->l, addr, sizeof(addr))))
		bench_fail(SUITE ": setting up on %s: %s (%d)", n->host, ferry_last_error(), rc);
	a.cq = p->cq_c;
	if ((rc = o->connect(n->dev, addr, &a, NULL, 0, 10000, &p->qc)))
		bench_fail(SUITE ": connect to %s: %s (%d)", addr, ferry_last_error(), rc);
	struct ferry_hal_rdma_wc wc[4];
	double t0 = bench_now();
	for (;;) {
		if (bench_now() - t0 > 20)
			bench_fail(SUITE ": the QPs did not connect within 20 s");
		if (o->cq_poll(p->cq_c, wc, 4) > 0 || (p->qs && o->cq_poll(p->cq_s, wc, 4) > 0))
			bench_fail(SUITE ": a completion before any work request");
		if (!p->qs) {
			struct ferry_hal_rdma_req *req;
			const void *pd;
			uint32_t pl;
			rc = o->get_request(p->l, &req, &pd, &pl);
			if (rc == 0) {
				a.cq = p->cq_s;
				if ((rc = o->accept(req, &a, NULL, 0, &p->qs)))
					bench_fail(SUITE ": accept: %s (%d)", ferry_last_error(),
						   rc);
			} else if (rc != -EAGAIN) {
				bench_fail(SUITE ": get_request: %d", rc);
			}
		}
		int sc = o->qp_state(p->qc, NULL, NULL);
		int ss = p->qs ? o->qp_state(p->qs, NULL, NULL) : -EINPROGRESS;
		if (sc == 0 && ss == 0)
			break;
		if ((sc && sc != -EINPROGRESS) || (ss && ss != -EINPROGRESS))
			bench_fail(SUITE ": connection failed: client %d, server %d", sc, ss);
		if (o->cq_wait)
			(void)o->cq_wait(p->cq_c, 1000);
	}
}

/* ---- the Ferry side of write-bw / read-bw ---------------------------------------------------- */

struct bw_res {
	double secs;
	uint64_t msgs;
	double mibs;
	uint64_t nic_bytes; /* the device's write_bytes / read_bytes over the run */
};

static uint64_t op_bytes(const struct ferry_hal_rdma_stats *s, int read)
{
	return read ? s->read_bytes : s->write_bytes;
}

/*
 * RDMA WRITE (@p read 0) or READ of 64 KiB messages from p->qc at p->qs's region for
 * @p secs, @p window outstanding; one slot of 64 KiB per outstanding request on each side.
 * The client's slots hold a pattern per slot before the run (WRITE: its source; READ: the
 * server's slots hold it), so after it the destination of every slot must equal it.
 */
static void ferry_bw(struct bench_rdma_nic *n, int read, uint32_t window, double secs,
		     struct bw_res *res)
{
	const struct ferry_hal_rdma_ops *o = n->ops;
	struct pair p;
	pair_up(n, window, &p);
	size_t len = (size_t)window * MSG;
	uint8_t *cbuf = aligned_alloc(4096, len), *sbuf = aligned_alloc(4096, len);
	if (!cbuf || !sbuf)
		bench_fail(SUITE ": out of memory");
	uint8_t *src = read ? sbuf : cbuf, *dst = read ? cbuf : sbuf;
	for (size_t i = 0; i < len; i++)
		src[i] = (uint8_t)(i * 131 + (i >> 16) * 7 + 1);
	memset(dst, 0, len);
	struct ferry_hal_rdma_mr *mc, *ms;
	const uint32_t acc = FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE | FERRY_HAL_RDMA_ACCESS_REMOTE_READ |
			     FERRY_HAL_RDMA_ACCESS_REMOTE_WRITE;
	if (o->mr_reg(n->dev, cbuf, len, acc, &mc) || o->mr_reg(n->dev, sbuf, len, acc, &ms))
		bench_fail(SUITE ": registering %zu bytes: %s", len, ferry_last_error());
	struct ferry_hal_rdma_mr_keys kc, ks;
	o->mr_keys(mc, &kc);
	o->mr_keys(ms, &ks);
	struct ferry_hal_rdma_stats s0 = {0}, s1 = {0};
	if (o->rdma_stats)
		o->rdma_stats(n->dev, &s0);

	struct ferry_hal_rdma_sge *sge = calloc(window, sizeof(*sge));
	struct ferry_hal_rdma_wr *wr = calloc(window, sizeof(*wr));
	struct ferry_hal_rdma_wc wc[32], ws[4];
	uint64_t polls = 0;
	if (!sge || !wr)
		bench_fail(SUITE ": out of memory");
	for (uint32_t i = 0; i < window; i++) {
		sge[i] = (struct ferry_hal_rdma_sge){.addr = kc.addr + (uint64_t)i * MSG,
						     .len = MSG,
						     .lkey = kc.lkey};
		wr[i] = (struct ferry_hal_rdma_wr){.wr_id = i,
						   .opcode = read ? FERRY_HAL_RDMA_OP_READ
								  : FERRY_HAL_RDMA_OP_WRITE,
						   .flags = FERRY_HAL_RDMA_WR_F_SIGNALED,
						   .sge = &sge[i],
						   .nsge = 1,
						   .rkey = ks.rkey,
						   .remote_addr = ks.addr + (uint64_t)i * MSG};
	}
	uint32_t inflight = 0;
	uint64_t done = 0;
	int rc;
	/* A warm-up of a fifth of the phase first, left out of the figure (perftest's duration
	 * mode leaves out a margin too). */
	double t0 = bench_now(), t1 = 0, warm = secs / 5 < 0.2 ? 0.2 : secs / 5, tm = 0;
	for (uint32_t i = 0; i < window; i++) {
		if ((rc = o->post_send(p.qc, &wr[i], NULL)))
			bench_fail(SUITE ": post_send: %d", rc);
		inflight++;
	}
	int stopping = 0;
	while (inflight) {
		int k = o->cq_poll(p.cq_c, wc, 32);
		if (k < 0)
			bench_fail(SUITE ": cq_poll: %d", k);
		/* Nothing yet: on a verbs device sleep in the completion channel (the soft-RoCE
		 * driver does its work on the same cores); mock RDMA progresses in the polls. */
		if (k == 0 && !n->mock && o->cq_wait)
			(void)o->cq_wait(p.cq_c, 1000);
		/* The server's CQ: its CM events (and on mock RDMA the responder's work: it
		 * progresses while its CQ is polled); no completion may come there. */
		if ((n->mock || (++polls & 63) == 0) && o->cq_poll(p.cq_s, ws, 4) != 0)
			bench_fail(SUITE ": the passive side got a completion or an error");
		for (int i = 0; i < k; i++) {
			if (wc[i].status)
				bench_fail(SUITE ": %s completed with %d (vendor %u)",
					   read ? "RDMA READ" : "RDMA WRITE", wc[i].status,
					   wc[i].vendor_err);
			if (wc[i].wr_id >= window)
				bench_fail(SUITE ": completion of an unknown wr_id");
			inflight--;
			if (!stopping && tm > 0)
				done++;
			if (tm == 0 && bench_now() - t0 >= warm)
				tm = bench_now();
			if (!stopping && bench_now() - t0 >= warm + secs) {
				stopping = 1;
				t1 = bench_now();
			}
			if (!stopping) {
				if ((rc = o->post_send(p.qc, &wr[wc[i].wr_id], NULL)))
					bench_fail(SUITE ": post_send: %d", rc);
				inflight++;
			}
		}
		if (bench_now() - t0 > warm + secs + 30)
			bench_fail(SUITE ": %u requests did not complete", inflight);
	}
	if (!t1 || !tm)
		bench_fail(SUITE ": the phase ended early");
	if (o->rdma_stats)
		o->rdma_stats(n->dev, &s1);
	if (memcmp(src, dst, len))
		bench_fail(SUITE ": %s: the destination differs from the source",
			   read ? "read-bw" : "write-bw");
	res->secs = t1 - tm;
	res->msgs = done;
	res->mibs = (double)done * MSG / res->secs / 1048576.0;
	res->nic_bytes = op_bytes(&s1, read) - op_bytes(&s0, read);
	/* The counters count every completed request, those past the measured phase too. */
	if (o->rdma_stats && res->nic_bytes < done * (uint64_t)MSG)
		bench_fail(SUITE ": the device counted %llu bytes for %llu measured",
			   (unsigned long long)res->nic_bytes,
			   (unsigned long long)(done * (uint64_t)MSG));
	pair_down(&p);
	o->mr_dereg(mc);
	o->mr_dereg(ms);
	free(sge);
	free(wr);
	free(cbuf);
	free(sbuf);
}

/* ---- the reference: perftest as two child processes ---------------------------------------- */

/* The path of @p prog in PATH, or NULL. */
static int in_path(const char *prog, char *out, size_t cap)
{
	const char *path = getenv("PATH");
	if (!path)
		return 0;
	while (*path) {
		const char *e = strchr(path, ':');
		size_t l = e ? (size_t)(e - path) : strlen(path);
		if (l && snprintf(out, cap, "%.*s/%s", (int)l, path, prog) < (int)cap &&
		    access(out, X_OK) == 0)
			return 1;
		path += l + (e ? 1 : 0);
	}
	return 0;
}

/* Start @p path with stdin from /dev/null and stdout + stderr into @p out_fd (-1:
 * /dev/null). */
static pid_t spawn(const char *path, char *const argv[], int out_fd)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (out_fd >= 0) {
		posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
		posix_spawn_file_actions_adddup2(&fa, out_fd, 2);
	} else {
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
		posix_spawn_file_actions_adddup2(&fa, 1, 2);
	}
	pid_t pid;
	int rc = posix_spawn(&pid, path, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	return rc ? -1 : pid;
}

/* Wait for @p pid at most @p secs; killed past it. @return its exit status, -1 killed. */
static int reap(pid_t pid, double secs)
{
	int st;
	for (double t0 = bench_now(); bench_now() - t0 < secs;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		usleep(20000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

/* The "BW average[MB/sec]" of a perftest report in @p f: the 4th field of the line after the
 * "#bytes" header. @return 0 found. */
static int parse_perftest(FILE *f, double *mibs)
{
	char line[512];
	int hdr = 0;
	while (fgets(line, sizeof(line), f)) {
		if (strstr(line, "#bytes")) {
			hdr = 1;
			continue;
		}
		unsigned long long bytes, iters;
		double peak, avg;
		if (hdr && sscanf(line, " %llu %llu %lf %lf", &bytes, &iters, &peak, &avg) == 4) {
			*mibs = avg;
			return 0;
		}
	}
	return -1;
}

/* Run perftest's @p prog (server, then client at n->host) for @p secs seconds. @return 0 and
 * the client's MiB/s; else a reason in @p why. */
static int ref_bw(struct bench_rdma_nic *n, const char *prog, int secs, double *mibs, char *why,
		  size_t whylen)
{
	char path[512], dsecs[16], tmpl[] = "/tmp/ferry-bench-perftest-XXXXXX";
	if (!in_path(prog, path, sizeof(path))) {
		snprintf(why, whylen, "%s not found in PATH (perftest)", prog);
		return -1;
	}
	snprintf(dsecs, sizeof(dsecs), "%d", secs);
	int fd = mkstemp(tmpl);
	if (fd < 0) {
		snprintf(why, whylen, "mkstemp: %s", strerror(errno));
		return -1;
	}
	unlink(tmpl);
	char *sargv[] = {(char *)prog, "-d",    n->info.name[0] ? n->info.name : "rxe0",
			 "-x",         "1",     "-F",
			 "-s",         "65536", "-D",
			 dsecs,        NULL};
	pid_t srv = spawn(path, sargv, -1);
	if (srv < 0) {
		close(fd);
		snprintf(why, whylen, "cannot start %s", prog);
		return -1;
	}
	char *cargv[] = {(char *)prog, "-d",    n->info.name[0] ? n->info.name : "rxe0",
			 "-x",         "1",     "-F",
			 "-s",         "65536", "-D",
			 dsecs,        n->host, NULL};
	int crc = -1;
	/* The server needs a moment before it listens: the client retries while it refuses. */
	for (int attempt = 0; attempt < 10 && crc != 0; attempt++) {
		usleep(attempt ? 1000000 : 500000);
		if (ftruncate(fd, 0) || lseek(fd, 0, SEEK_SET))
			break;
		pid_t cl = spawn(path, cargv, fd);
		if (cl < 0)
			break;
		crc = reap(cl, secs + 60);
		if (waitpid(srv, NULL, WNOHANG) == srv) {
			srv = -1;
			break;
		}
	}
	if (srv > 0)
		(void)reap(srv, 10);
	FILE *f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		snprintf(why, whylen, "fdopen: %s", strerror(errno));
		return -1;
	}
	rewind(f);
	int rc = crc == 0 ? parse_perftest(f, mibs) : -1;
	if (rc == 0 && !(*mibs > 0)) {
		/* Seen under TCG on a loaded machine: a run that completed but whose sampling
		 * window measured nothing. Not a reference. */
		snprintf(why, whylen, "%s reported %.2f MB/s (no sample in its window)", prog,
			 *mibs);
		fclose(f);
		return -1;
	}
	if (rc) {
		rewind(f);
		char line[256] = "";
		char last[256] = "no output";
		while (fgets(line, sizeof(line), f))
			if (line[0] != '\n' && line[0] != '-')
				snprintf(last, sizeof(last), "%s", line);
		last[strcspn(last, "\n\"\\")] = 0;
		snprintf(why, whylen, "%s client exit %d: %s", prog, crc, last);
	}
	fclose(f);
	return rc;
}

/* ---- the suite --------------------------------------------------------------------------- */

static void bw_case(struct bench_rdma_nic *n, int read)
{
	const char *cname = read ? "read-bw" : "write-bw";
	if (!bench_selected(cname))
		return;
	double secs = bench_opts.seconds * 5 < 1 ? 1 : bench_opts.seconds * 5;
	uint32_t window = n->info.max_qp_wr < WINDOW_MAX ? n->info.max_qp_wr : WINDOW_MAX;
	/* Ferry before and after the reference: the better of the two is quoted (the load of
	 * a shared machine drifts; a TCG guest's figures spread widely). */
	struct bw_res fr, f2 = {0};
	ferry_bw(n, read, window, secs, &fr);
	double ref = 0;
	char why[300] = "";
	const char *prog = read ? "ib_read_bw" : "ib_write_bw";
	int have_ref = 0;
	if (n->mock)
		snprintf(why, sizeof(why), "mock RDMA: perftest needs a verbs device (--nic rxe)");
	else
		have_ref = ref_bw(n, prog, (int)(secs + 0.999), &ref, why, sizeof(why)) == 0;
	if (have_ref) {
		ferry_bw(n, read, window, secs, &f2);
		if (f2.mibs > fr.mibs) {
			struct bw_res t = fr;
			fr = f2;
			f2 = t;
		}
	}
	struct bench_kv kv[] = {
		{"nic", n->mock ? "mock" : n->info.name, 0},
		{"size", NULL, MSG},
		{"window", NULL, window},
		{"secs", NULL, fr.secs},
		{"msgs", NULL, (double)fr.msgs},
		{"ferry_mibs", NULL, fr.mibs},
		{"ferry_other_mibs", NULL, f2.mibs},
		{"nic_bytes", NULL, (double)fr.nic_bytes},
		{"ref", have_ref ? prog : "skipped", 0},
		{have_ref ? "ref_mibs" : "reason", have_ref ? NULL : why, ref},
		{"ratio", NULL, have_ref && ref > 0 ? fr.mibs / ref : 0},
		{"goal", NULL, 0.9},
	};
	bench_emit_fields(SUITE, cname, kv, sizeof(kv) / sizeof(kv[0]));
}

void bench_suite_rdma(int json)
{
	(void)json;
	struct bench_rdma_nic n;
	if (bench_rdma_open(&n)) {
		struct bench_kv kv[] = {{"skipped", n.why, 0}};
		bench_emit_fields(SUITE, "all", kv, 1);
		return;
	}
	bw_case(&n, 0);
	bw_case(&n, 1);
	bench_rdma_close(&n);
	if (bench_rdma_nvmf)
		bench_rdma_nvmf(json);
	else {
		struct bench_kv kv[] = {{"skipped", "not built (bench_rdma_nvmf.c)", 0}};
		bench_emit_fields(SUITE, "nvmf", kv, 1);
	}
}
