/*
 * The "rxe" backend: the HAL NIC class over libibverbs + librdmacm (soft-RoCE "rxe", or any
 * verbs device). The TCP part of the class is the backend SDK's socket kit
 * (ferry/hal/sock.h, as in the tcp backend), so the device offers TCP too; the RDMA part
 * (ferry/hal/rdma.h) is in this file (device, query, memory regions, counters),
 * rxe_cm.c (connection manager) and rxe_verbs.c (CQs, work requests).
 *
 * Arguments: dev=NAME, the verbs device (default: the first one librdmacm knows). The
 * device's verbs context is librdmacm's (rdma_get_devices()), so its cm_ids and its one
 * protection domain share it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "rxe_internal.h"

static const char *const rxe_keys[] = {"dev", NULL};

uint64_t rxe_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int rxe_set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

int rxe_addr_parse(const char *what, const char *str, struct sockaddr_in *sa)
{
	char host[INET_ADDRSTRLEN];
	const char *colon;
	size_t hl;
	if (!str) {
		RXE_ERR("%s: no address", what);
		return -EINVAL;
	}
	colon = strrchr(str, ':');
	hl = colon ? (size_t)(colon - str) : 0;
	if (!colon || hl == 0 || hl >= sizeof(host)) {
		RXE_ERR("%s: address '%.64s' is not \"a.b.c.d:port\"", what, str);
		return -EINVAL;
	}
	memcpy(host, str, hl);
	host[hl] = '\0';
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
		RXE_ERR("%s: '%s' is not an IPv4 address (a.b.c.d)", what, host);
		return -EINVAL;
	}
	const char *p = colon + 1;
	unsigned long port = 0;
	size_t n = 0;
	for (; p[n]; n++) {
		if (p[n] < '0' || p[n] > '9' || n >= 5) {
			RXE_ERR("%s: bad port in '%.64s'", what, str);
			return -EINVAL;
		}
		port = port * 10 + (unsigned long)(p[n] - '0');
	}
	if (n == 0 || port > 65535) {
		RXE_ERR("%s: bad port in '%.64s'", what, str);
		return -EINVAL;
	}
	sa->sin_port = htons((uint16_t)port);
	return 0;
}

int rxe_addr_format(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];
	uint16_t port;
	const void *a;
	if (!sa || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
		return -ENOTCONN;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		a = &in->sin_addr;
		port = ntohs(in->sin_port);
	} else {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		a = &in6->sin6_addr;
		port = ntohs(in6->sin6_port);
	}
	if (!inet_ntop(sa->sa_family, a, host, sizeof(host)))
		return -ENOTCONN;
	int n = sa->sa_family == AF_INET ? snprintf(buf, len, "%s:%u", host, port)
					 : snprintf(buf, len, "[%s]:%u", host, port);
	if (n < 0 || (size_t)n >= len)
		return -ENOBUFS;
	return 0;
}

struct rxe_dev *rxe_dev_of(struct ferry_device *fdev)
{
	if (!fdev)
		return NULL;
	const struct ferry_hal_backend *b = ferry_hal_dev_get_backend(fdev);
	if (!b || strcmp(b->name, "rxe") != 0)
		return NULL;
	return ferry_hal_dev_get_priv(fdev);
}

/* The largest inline size the device takes for an RC QP (0 if none), by trying. */
static uint32_t probe_inline(struct rxe_dev *d)
{
	static const uint32_t tries[] = {512, 256, 128, 64, 32};
	struct ibv_cq *cq = ibv_create_cq(d->ctx, 2, NULL, NULL, 0);
	uint32_t got = 0;
	if (!cq)
		return 0;
	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]) && !got; i++) {
		struct ibv_qp_init_attr ia = {
			.send_cq = cq,
			.recv_cq = cq,
			.qp_type = IBV_QPT_RC,
			.cap = {.max_send_wr = 1,
				.max_recv_wr = 1,
				.max_send_sge = 1,
				.max_recv_sge = 1,
				.max_inline_data = tries[i]},
		};
		struct ibv_qp *qp = ibv_create_qp(d->pd, &ia);
		if (qp) {
			got = ia.cap.max_inline_data >= tries[i] ? tries[i]
								 : ia.cap.max_inline_data;
			ibv_destroy_qp(qp);
		}
	}
	ibv_destroy_cq(cq);
	return got;
}

static void dev_free(struct rxe_dev *d)
{
	if (d->pd)
		ibv_dealloc_pd(d->pd);
	if (d->devlist)
		rdma_free_devices(d->devlist);
	if (d->ld)
		ferry_hal_lsock_dev_destroy(d->ld);
	free(d);
}

static int rxe_open(struct ferry_device *fdev, const char *args)
{
	char want[64] = "";
	int rc, n = 0;
	if (ferry_hal_args_check(args, rxe_keys))
		return -EINVAL; /* logged, with the key */
	rc = ferry_hal_arg_get(args ? args : "", "dev", want, sizeof(want));
	if (rc && rc != -ENOENT) {
		RXE_ERR("open: bad dev= argument (%d)", rc);
		return -EINVAL;
	}
	if (!rc && !want[0]) {
		RXE_ERR("open: dev= names no device");
		return -EINVAL;
	}
	struct rxe_dev *d = calloc(1, sizeof(*d));
	if (!d) {
		RXE_ERR("open: out of memory");
		return -ENOMEM;
	}
	d->fdev = fdev;
	d->devlist = rdma_get_devices(&n);
	if (!d->devlist || n <= 0) {
		RXE_ERR("open: no RDMA (verbs) device: none in /sys/class/infiniband; load rdma_rxe "
			"and add one (rdma link add rxe0 type rxe netdev IF), or install the "
			"device's verbs provider");
		dev_free(d);
		return -ENODEV;
	}
	for (int i = 0; i < n; i++) {
		const char *nm = ibv_get_device_name(d->devlist[i]->device);
		if (!want[0] || (nm && strcmp(nm, want) == 0)) {
			d->ctx = d->devlist[i];
			break;
		}
	}
	if (!d->ctx) {
		char have[256] = "";
		size_t off = 0;
		for (int i = 0; i < n && off < sizeof(have); i++) {
			int w = snprintf(have + off, sizeof(have) - off, "%s%s", i ? ", " : "",
					 ibv_get_device_name(d->devlist[i]->device));
			if (w < 0)
				break;
			off += (size_t)w;
		}
		RXE_ERR("open: no verbs device '%s' (there are: %s)", want, have);
		dev_free(d);
		return -ENODEV;
	}
	snprintf(d->name, sizeof(d->name), "%s", ibv_get_device_name(d->ctx->device));
	if (ibv_query_device(d->ctx, &d->attr)) {
		rc = -errno;
		RXE_ERR("open: ibv_query_device(%s): %s", d->name, strerror(-rc));
		dev_free(d);
		return rc ? rc : -EIO;
	}
	d->pd = ibv_alloc_pd(d->ctx);
	if (!d->pd) {
		rc = errno ? -errno : -ENOMEM;
		RXE_ERR("open: ibv_alloc_pd(%s): %s", d->name, strerror(-rc));
		dev_free(d);
		return rc;
	}
	d->max_sge = d->attr.max_sge > 0 ? (uint32_t)d->attr.max_sge : 1;
	if (d->max_sge > RXE_SGE_MAX)
		d->max_sge = RXE_SGE_MAX;
	d->max_inline = probe_inline(d);
	rc = ferry_hal_lsock_dev_create(fdev, RXE_COMP, &d->ld);
	if (rc) {
		d->ld = NULL;
		dev_free(d); /* logged by the kit */
		return rc;
	}
	ferry_hal_dev_set_priv(fdev, d);
	RXE_DBG("open: %s (max_sge %u, max_inline %u, max_qp_wr %d)", d->name, d->max_sge,
		d->max_inline, d->attr.max_qp_wr);
	return 0;
}

static void rxe_dev_close(struct ferry_device *fdev)
{
	struct rxe_dev *d = ferry_hal_dev_get_priv(fdev);
	if (!d)
		return;
	ferry_hal_dev_set_priv(fdev, NULL);
	uint64_t live = __atomic_load_n(&d->nobjs, __ATOMIC_RELAXED);
	if (live) {
		/* Freeing the PD under live regions / QPs would leave them dangling: keep it. */
		RXE_WARN("close %s: %llu RDMA object(s) still open: the device state is kept",
			 d->name, (unsigned long long)live);
		ferry_hal_lsock_dev_destroy(d->ld);
		return;
	}
	dev_free(d);
}

static int nic_query(struct ferry_device *fdev, struct ferry_hal_nic_info *info)
{
	int rc = ferry_hal_lsock_query(fdev, info);
	if (rc)
		return rc;
	info->caps |= FERRY_HAL_NIC_CAP_RDMA;
	return 0;
}

static uint32_t clamp_u32(int v)
{
	return v > 0 ? (uint32_t)v : 0;
}

static int rdma_query(struct ferry_device *fdev, struct ferry_hal_rdma_info *info)
{
	struct rxe_dev *d = rxe_dev_of(fdev);
	if (!d || !info) {
		RXE_ERR("rdma query: %s", d ? "no info" : "not an rxe device");
		return d ? -EINVAL : -ENODEV;
	}
	memset(info, 0, sizeof(*info));
	snprintf(info->name, sizeof(info->name), "%s", d->name);
	info->max_sge = d->max_sge;
	info->max_inline = d->max_inline;
	info->max_qp_wr = clamp_u32(d->attr.max_qp_wr);
	info->max_cqe = clamp_u32(d->attr.max_cqe);
	info->max_qp_rd_atom = clamp_u32(d->attr.max_qp_rd_atom);
	info->max_qp_init_rd_atom = clamp_u32(d->attr.max_qp_init_rd_atom);
	info->max_mr_size = d->attr.max_mr_size;
	info->ndomains = 0; /* no mr_reg_mem: the SDK registers host memory via export_local */
	return 0;
}

/* ---- memory regions ------------------------------------------------------------------------ */

#define RXE_ACCESS_ALL                                                                             \
	(FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE | FERRY_HAL_RDMA_ACCESS_REMOTE_READ |                   \
	 FERRY_HAL_RDMA_ACCESS_REMOTE_WRITE)

static int mr_reg(struct ferry_device *fdev, void *addr, size_t len, uint32_t access,
		  struct ferry_hal_rdma_mr **out)
{
	struct rxe_dev *d = rxe_dev_of(fdev);
	if (!d) {
		RXE_ERR("mr_reg: not an rxe device");
		return -ENODEV;
	}
	if (!out || !addr || !len) {
		RXE_ERR("mr_reg: %s", !out    ? "no output pointer"
				      : !addr ? "NULL address"
					      : "zero length");
		return -EINVAL;
	}
	if (access & ~RXE_ACCESS_ALL) {
		RXE_ERR("mr_reg: unknown access bits 0x%x", access & ~RXE_ACCESS_ALL);
		return -EINVAL;
	}
	if ((uint64_t)len > d->attr.max_mr_size) {
		RXE_ERR("mr_reg: %zu bytes exceed the device's max_mr_size %llu", len,
			(unsigned long long)d->attr.max_mr_size);
		return -EINVAL;
	}
	if ((uintptr_t)addr + len < (uintptr_t)addr) {
		RXE_ERR("mr_reg: [%p, +%zu) wraps the address space", addr, len);
		return -EINVAL;
	}
	int acc = 0;
	if (access & FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE)
		acc |= IBV_ACCESS_LOCAL_WRITE;
	if (access & FERRY_HAL_RDMA_ACCESS_REMOTE_READ)
		acc |= IBV_ACCESS_REMOTE_READ;
	if (access & FERRY_HAL_RDMA_ACCESS_REMOTE_WRITE)
		acc |= IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_LOCAL_WRITE; /* verbs needs both */
	struct ferry_hal_rdma_mr *m = calloc(1, sizeof(*m));
	if (!m) {
		RXE_ERR("mr_reg: out of memory");
		return -ENOMEM;
	}
	m->dev = d;
	m->mr = ibv_reg_mr(d->pd, addr, len, acc);
	if (!m->mr) {
		int rc = errno ? -errno : -ENOMEM;
		RXE_ERR("mr_reg: ibv_reg_mr(%p, %zu) on %s: %s", addr, len, d->name, strerror(-rc));
		free(m);
		return rc == -EINVAL || rc == -EFAULT || rc == -ENOMEM ? rc : -ENOMEM;
	}
	rxe_obj_get(d);
	rxe_stat_add(d, RXE_ST_MR_REGS, 1);
	*out = m;
	return 0;
}

static void mr_dereg(struct ferry_hal_rdma_mr *m)
{
	if (!m)
		return;
	int rc = ibv_dereg_mr(m->mr);
	if (rc) /* still in use by a memory window or similar: nothing we created */
		RXE_ERR("mr_dereg: ibv_dereg_mr: %s (region leaked)", strerror(rc));
	rxe_stat_add(m->dev, RXE_ST_MR_DEREGS, 1);
	rxe_obj_put(m->dev);
	free(m);
}

static void mr_keys(const struct ferry_hal_rdma_mr *m, struct ferry_hal_rdma_mr_keys *k)
{
	if (!k)
		return;
	memset(k, 0, sizeof(*k));
	if (!m)
		return;
	k->addr = (uint64_t)(uintptr_t)m->mr->addr;
	k->len = m->mr->length;
	k->lkey = m->mr->lkey;
	k->rkey = m->mr->rkey;
}

static int rdma_stats(struct ferry_device *fdev, struct ferry_hal_rdma_stats *s)
{
	struct rxe_dev *d = rxe_dev_of(fdev);
	if (!d || !s) {
		RXE_ERR("rdma_stats: %s", d ? "no output" : "not an rxe device");
		return d ? -EINVAL : -ENODEV;
	}
	uint64_t v[12];
	for (int i = 0; i < 12; i++)
		v[i] = __atomic_load_n(&d->st.v[i], __ATOMIC_RELAXED);
	*s = (struct ferry_hal_rdma_stats){
		.sends = v[RXE_ST_SENDS],
		.recvs = v[RXE_ST_RECVS],
		.writes = v[RXE_ST_WRITES],
		.reads = v[RXE_ST_READS],
		.send_bytes = v[RXE_ST_SEND_BYTES],
		.recv_bytes = v[RXE_ST_RECV_BYTES],
		.write_bytes = v[RXE_ST_WRITE_BYTES],
		.read_bytes = v[RXE_ST_READ_BYTES],
		.wc_errors = v[RXE_ST_WC_ERRORS],
		.mr_regs = v[RXE_ST_MR_REGS],
		.mr_deregs = v[RXE_ST_MR_DEREGS],
		.qp_errors = v[RXE_ST_QP_ERRORS],
	};
	return 0;
}

static const struct ferry_hal_rdma_ops rxe_rdma_ops = {
	.abi_version = FERRY_HAL_RDMA_ABI_VERSION,
	.query = rdma_query,
	.mr_reg = mr_reg,
	.mr_reg_mem = NULL,
	.mr_dereg = mr_dereg,
	.mr_keys = mr_keys,
	.cq_create = rxe_cq_create,
	.cq_destroy = rxe_cq_destroy,
	.cq_poll = rxe_cq_poll,
	.cq_wait = rxe_cq_wait,
	.listen = rxe_listen,
	.listener_addr = rxe_listener_addr,
	.listener_close = rxe_listener_close,
	.get_request = rxe_get_request,
	.accept = rxe_accept,
	.reject = rxe_reject,
	.connect = rxe_connect,
	.qp_state = rxe_qp_state,
	.qp_destroy = rxe_qp_destroy,
	.qp_addr = rxe_qp_addr,
	.post_recv = rxe_post_recv,
	.post_send = rxe_post_send,
	.rdma_stats = rdma_stats,
};

static const struct ferry_hal_nic_ops rxe_nic_ops = {
	.abi_version = FERRY_HAL_NIC_ABI_VERSION,
	.query = nic_query,
	FERRY_HAL_LSOCK_NIC_OPS, /* the socket kit, every TCP member */
	.rdma = &rxe_rdma_ops,
};

static const struct ferry_hal_backend rxe_backend = {
	.abi_version = FERRY_HAL_ABI_VERSION,
	.name = "rxe",
	.open = rxe_open,
	.close = rxe_dev_close,
	.nic = &rxe_nic_ops,
};

FERRY_HAL_BACKEND(rxe, rxe_backend)
