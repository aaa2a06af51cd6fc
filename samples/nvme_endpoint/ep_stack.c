/*
 * The firmware side of the nvme_endpoint sample (ep_stack.h): device, block stack, endpoint,
 * host process creation (fork, or fork + exec of ferry-nvme-host with the device's fds), the
 * polling loop that serves the host until it exits, and the per-I/O data-path figures.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <ferry/accel.h>
#include <ferry/bdev.h>
#include <ferry/crypto.h>
#include <ferry/dif.h>
#include <ferry/endpoint.h>
#include <ferry/ferry.h>
#include <ferry/mock.h>
#include <ferry/mock_pcie.h>
#include <ferry/nvme.h>
#include <ferry/pcie_transport.h>
#include <ferry/bdev_malloc.h>
#include <ferry/bdev_crypto.h>
#include <ferry/bdev_dif.h>
#include "ep_stack.h"

#define LOG(...) fprintf(stderr, "firmware: " __VA_ARGS__)

static unsigned int ep_seq; /* unique bdev names and NQNs per process */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int ep_stack_create(const struct ep_stack_opts *o, struct ep_stack **out)
{
	if (!o || !out || o->size < sizeof(*o) || (o->crypto_only && !o->base))
		return -EINVAL;
	struct ep_stack *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	unsigned int id = ep_seq++;
	uint32_t bsz = o->block_size ? o->block_size : 4096;
	uint64_t blocks = o->blocks ? o->blocks : 8192;
	char name[64], dname[64], cname[64], nqn[96];
	int rc = 0;
	if (o->dev) {
		s->dev = o->dev;
	} else {
		rc = ferry_device_open("mock",
				       o->mock_args ? o->mock_args : "host_mem=64M,iova_size=256M",
				       &s->dev);
		s->own_dev = !rc;
	}
	if (!rc)
		rc = ferry_mock_host_fd(s->dev, &s->mem_fd);
	if (!rc)
		rc = ferry_mock_pcie_fd(s->dev, &s->pcie_fd);
	snprintf(name, sizeof(name), "ep%u_malloc", id);
	if (!rc && o->base) {
		/* The caller's terminal bdev: its data block size is what the host sees. */
		bsz = ferry_bdev_get_data_block_size(o->base);
		s->base = o->base;
	} else if (!rc) {
		struct ferry_bdev_malloc_opts mo = {.size = sizeof(mo),
						    .name = name,
						    .block_size = o->crypto_dif ? bsz + 8 : bsz,
						    .num_blocks = blocks,
						    .md_size = o->crypto_dif ? 8 : 0,
						    .dif_type = o->crypto_dif ? 1 : 0};
		rc = ferry_bdev_malloc_create(&mo, &s->malloc_bdev);
		s->base = s->malloc_bdev;
	}
	s->top = s->base;
	if (!rc && o->crypto_dif && !o->crypto_only) {
		snprintf(dname, sizeof(dname), "ep%u_dif", id);
		struct ferry_bdev_dif_opts dopt = {.size = sizeof(dopt),
						   .name = dname,
						   .base = s->base,
						   .dif_type = 1,
						   .check_flags = FERRY_DIF_CHECK_GUARD |
								  FERRY_DIF_CHECK_APPTAG |
								  FERRY_DIF_CHECK_REFTAG,
						   .app_tag = 0x4652,
						   .app_tag_mask = 0xffff};
		rc = ferry_bdev_dif_create(&dopt, &s->dif_bdev);
		s->top = s->dif_bdev;
	}
	if (!rc && (o->crypto_dif || o->crypto_only)) {
		static const uint8_t k[32] = {0x46, 0x65, 0x72, 0x72, 0x79, 0x20, 0x6b, 0x65,
					      0x79, 0x20, 0x6f, 0x6e, 0x65, 0x21, 0x00, 0x01,
					      0x74, 0x77, 0x65, 0x61, 0x6b, 0x20, 0x6b, 0x65,
					      0x79, 0x20, 0x74, 0x77, 0x6f, 0x21, 0x00, 0x02};
		const uint8_t *key = o->key ? o->key : k;
		struct ferry_crypto_key_opts ko = {.size = sizeof(ko),
						   .cipher = FERRY_CIPHER_AES_XTS_128,
						   .key1 = key,
						   .key2 = key + 16,
						   .key_len = 16,
						   .data_unit_size = bsz};
		rc = ferry_crypto_key_create(&ko, &s->key);
		snprintf(cname, sizeof(cname), "ep%u_crypto", id);
		struct ferry_bdev_crypto_opts copt = {.size = sizeof(copt),
						      .name = cname,
						      .base = s->top,
						      .key = s->key};
		if (!rc)
			rc = ferry_bdev_crypto_create(&copt, &s->crypto_bdev);
		s->top = s->crypto_bdev;
	}
	snprintf(nqn, sizeof(nqn), "nqn.2024-01.io.ferry:nvme-endpoint-%u", id);
	if (!rc) {
		struct ferry_bdev *ns[] = {s->top};
		struct ferry_endpoint_opts eo = {.size = sizeof(eo),
						 .transport = FERRY_PCIE_TRANSPORT_NAME,
						 .transport_args = o->transport_args,
						 .device = s->dev,
						 .address = "fn=0",
						 .nqn = nqn,
						 .serial = "FERRY0001",
						 .model = "Ferry nvme_endpoint sample",
						 .bdevs = ns,
						 .num_bdevs = 1};
		rc = ferry_endpoint_create(&eo, &s->ep);
	}
	if (!rc) {
		s->transport = ferry_endpoint_get_transport(s->ep);
		s->ctrlr = ferry_pcie_transport_get_ctrlr(s->transport, 0);
	}
	if (rc) {
		LOG("setting the endpoint up failed: %s (%s)\n", strerror(-rc), ferry_last_error());
		ep_stack_destroy(s);
		return rc;
	}
	*out = s;
	return 0;
}

void ep_stack_destroy(struct ep_stack *s)
{
	if (!s)
		return;
	ferry_endpoint_destroy(s->ep);
	ferry_bdev_destroy(s->crypto_bdev);
	ferry_bdev_destroy(s->dif_bdev);
	ferry_bdev_destroy(s->malloc_bdev);
	ferry_crypto_key_destroy(s->key);
	if (s->own_dev)
		ferry_device_close(s->dev);
	free(s);
}

int ep_stack_serve(struct ep_stack *s, pid_t pid, double timeout_s, int *wstatus)
{
	double deadline = now_s() + timeout_s;
	unsigned int idle = 0;
	int st = 0;
	for (uint64_t it = 0;; it++) {
		int n = ferry_endpoint_poll(s->ep, 64);
		if (n < 0 && (it & 0xffff) == 0)
			LOG("poll: %s\n", strerror(-n));
		/* Two cores are shared by the host, the DMA engine thread and this loop. */
		if (n <= 0 && ++idle >= 16) {
			idle = 0;
			sched_yield();
		} else if (n > 0) {
			idle = 0;
		}
		if ((it & 127) != 0)
			continue;
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			LOG("waitpid %d: %s\n", (int)pid, strerror(errno));
			return -errno;
		}
		if (now_s() > deadline) {
			LOG("host process %d still running after %.0f s: killed\n", (int)pid,
			    timeout_s);
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			if (wstatus)
				*wstatus = st;
			return -ETIMEDOUT;
		}
	}
	/* Finish what the host left executing (e.g. a host that died without disabling). */
	for (int i = 0; i < 1000 && ferry_endpoint_poll(s->ep, 64) > 0; i++)
		;
	if (wstatus)
		*wstatus = st;
	return 0;
}

pid_t ep_stack_fork_host(struct ep_stack *s, ep_host_fn fn, void *ctx)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int rc = fn(ctx, s->mem_fd, s->pcie_fd);
		fflush(NULL);
		_exit(rc & 0xff);
	}
	return pid;
}

pid_t ep_stack_spawn_host(struct ep_stack *s, const char *path, char *const *argv)
{
	int nargs = 0;
	while (argv && argv[nargs])
		nargs++;
	char **args = calloc((size_t)nargs + 6, sizeof(*args));
	char memfd[16], pciefd[16];
	if (!args)
		return -ENOMEM;
	/* The device's fds are close-on-exec: hand the child duplicates without the flag. */
	int m = dup(s->mem_fd), p = dup(s->pcie_fd);
	if (m < 0 || p < 0) {
		int rc = -errno;
		if (m >= 0)
			close(m);
		if (p >= 0)
			close(p);
		free(args);
		return rc;
	}
	snprintf(memfd, sizeof(memfd), "%d", m);
	snprintf(pciefd, sizeof(pciefd), "%d", p);
	int k = 0;
	args[k++] = (char *)path;
	args[k++] = "--mem-fd";
	args[k++] = memfd;
	args[k++] = "--pcie-fd";
	args[k++] = pciefd;
	for (int i = 0; i < nargs; i++)
		args[k++] = argv[i];
	args[k] = NULL;
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		execv(path, args);
		fprintf(stderr, "firmware: exec %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	int rc = pid < 0 ? -errno : pid;
	close(m);
	close(p);
	free(args);
	return rc;
}

void ep_stack_snap(struct ep_stack *s, struct ep_counters *c)
{
	memset(c, 0, sizeof(*c));
	c->dma.size = sizeof(c->dma);
	c->acc.size = sizeof(c->acc);
	c->tr.size = sizeof(c->tr);
	c->ctl.size = sizeof(c->ctl);
	ferry_mock_get_stats(s->dev, &c->dma);
	ferry_accel_get_stats(NULL, &c->acc);
	ferry_pcie_transport_get_stats(s->transport, 0, &c->tr);
	ferry_nvme_ctrlr_get_stats(s->ctrlr, &c->ctl);
}

uint64_t ep_prp_list_bytes(uint64_t len, uint32_t offset)
{
	const uint64_t page = 4096;
	uint64_t first = page - offset % page;
	if (len <= first)
		return 0;
	uint64_t rest = len - first;
	if (rest <= page)
		return 0; /* PRP2 is the second page itself */
	uint64_t entries = (rest + page - 1) / page, left = entries, lists = 1;
	while (left > page / 8) { /* a full list page chains to the next one in its last entry */
		left -= page / 8 - 1;
		lists++;
	}
	return (entries + lists - 1) * 8;
}

void ep_io_figures(const struct ep_counters *a, const struct ep_counters *b,
		   int64_t dptr_bytes_per_io, struct ep_io_figures *f)
{
	const struct ferry_accel_stats *x = &a->acc, *y = &b->acc;
	double ios = (double)(b->ctl.io_cmds - a->ctl.io_cmds);
	double admin = (double)(b->ctl.admin_cmds - a->ctl.admin_cmds);
	double n = ios > 0 ? ios : 1;
	memset(f, 0, sizeof(*f));
	f->ios = ios;
	f->seq_path = y->seqs_finished != x->seqs_finished;
	f->accel_bytes_copied = (double)(y->bytes_copied - x->bytes_copied) / n;
	f->bytes_bounced = (double)(y->bytes_bounced - x->bytes_bounced) / n;
	f->pool_buffers = (double)(y->bufs_taken - x->bufs_taken) / n;
	f->fusions = (double)(y->fusions - x->fusions) / n;
	f->fused_output_bytes = (double)(y->bytes_out_fused - x->bytes_out_fused) / n;
	f->copy_ops = (double)(y->ops_hw[FERRY_ACCEL_OP_COPY] - x->ops_hw[FERRY_ACCEL_OP_COPY] +
			       y->ops_sw[FERRY_ACCEL_OP_COPY] - x->ops_sw[FERRY_ACCEL_OP_COPY]) /
		      n;
	f->soc_bytes_copied = f->accel_bytes_copied + f->bytes_bounced;
	if (dptr_bytes_per_io < 0) {
		f->dma_data_bytes = -1;
		return;
	}
	double queue = (ios + admin) * (64 + 16) + ios * (double)dptr_bytes_per_io + admin * 4096;
	double data = (double)(b->dma.bytes - a->dma.bytes) - queue;
	f->dma_data_bytes = data > 0 ? data / n : 0;
	if (f->dma_data_bytes > f->bytes_bounced)
		f->soc_bytes_copied += f->dma_data_bytes - f->bytes_bounced;
}

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
int64_t ep_host_dptr_bytes(char *const *args)
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

void ep_stack_report(const struct ep_counters *a, const struct ep_counters *b, int64_t dptr,
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

int ep_stack_run_host(struct ep_stack *s, const char *who, const char *path, char *const *argv,
		      double timeout_s, struct ep_counters *before, struct ep_counters *after,
		      void (*snap)(void *ctx, int after), void *ctx)
{
	ep_stack_snap(s, before);
	if (snap)
		snap(ctx, 0);
	pid_t pid = ep_stack_spawn_host(s, path, argv);
	if (pid < 0) {
		fprintf(stderr, "%s: starting the host failed: %s\n", who, strerror(-pid));
		return pid;
	}
	printf("firmware: host process %d started, serving it\n", (int)pid);
	fflush(stdout);
	int wst = 0, rc = ep_stack_serve(s, pid, timeout_s, &wst);
	if (rc)
		return rc;
	ep_stack_snap(s, after);
	if (snap)
		snap(ctx, 1);
	return WIFEXITED(wst) ? WEXITSTATUS(wst) : 1;
}

void ep_nvmf_snap(void *ctx, int after)
{
	struct ep_nvmf_snaps *x = ctx;
	x->st[after] = (struct ferry_bdev_nvmf_stats){.size = sizeof(x->st[after])};
	ferry_bdev_nvmf_get_stats(x->bdev, &x->st[after]);
}

/* The path of @p name in the running program's folder. */
static int beside_self(const char *name, char *buf, size_t len)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return -errno;
	self[n] = '\0';
	int w = snprintf(buf, len, "%s/%s", dirname(self), name);
	return w > 0 && (size_t)w < len ? 0 : -ENAMETOOLONG;
}

int ep_host_path(char *buf, size_t len)
{
	return beside_self("ferry-nvme-host", buf, len);
}

double ep_now_s(void)
{
	return now_s();
}

int ep_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	int port = -1;
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &al) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

pid_t ep_start_target(const char *who, char *const *args, double wait_s, char *ready,
		      size_t ready_len)
{
	char path[PATH_MAX];
	char *argv[EP_TARGET_MAX_ARGS + 4];
	int na = 0;
	if (beside_self("ferry-nvmf-tgt", path, sizeof(path)) || access(path, X_OK) != 0) {
		fprintf(stderr, "%s: ferry-nvmf-tgt not found beside this program\n", who);
		return -ENOENT;
	}
	argv[na++] = path;
	for (; args && args[na - 1]; na++) {
		if (na > EP_TARGET_MAX_ARGS) {
			fprintf(stderr, "%s: more than %d ferry-nvmf-tgt arguments\n", who,
				EP_TARGET_MAX_ARGS);
			return -E2BIG;
		}
		argv[na] = args[na - 1];
	}
	int w = snprintf(ready, ready_len, "/tmp/%s.%d.ready", who, (int)getpid());
	if (w <= 0 || (size_t)w >= ready_len)
		return -ENAMETOOLONG;
	unlink(ready);
	argv[na++] = "--ready-file";
	argv[na++] = ready;
	argv[na] = NULL;
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		execv(path, argv);
		fprintf(stderr, "%s: exec %s: %s\n", who, path, strerror(errno));
		_exit(127);
	}
	if (pid < 0)
		return -errno;
	for (double t0 = now_s(); now_s() - t0 < wait_s;) {
		if (access(ready, F_OK) == 0)
			return pid;
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			fprintf(stderr, "%s: ferry-nvmf-tgt exited before listening\n", who);
			return -ECHILD;
		}
		usleep(10000);
	}
	fprintf(stderr, "%s: ferry-nvmf-tgt did not listen within %.0f s\n", who, wait_s);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -ETIMEDOUT;
}
