/*
 * The nvmf bdev's RDMA queue pairs against a hostile NVMe-oF/RDMA controller scripted here
 * with the HAL RDMA ops of a mock device (its own thread): a connect refused with each
 * RDMA_CM reject status (the status named in the error), an accept with invalid private
 * data; and, once connected, reads answered with a completion for an unknown cid, with two
 * completions for the same cid, with the completion before the data, with data written past
 * the command's buffer, and a disconnect. Every attack fails the connection (or is harmless),
 * every I/O completes exactly once, the retried read comes back right, and no byte outside
 * the read's buffer changes.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ferry/bdev.h>
#include <ferry/bdev_nvmf.h>
#include <ferry/hal/hal.h>
#include <ferry/hal/nic.h>
#include <ferry/hal/rdma.h>
#include <ferry/mock.h>
#include <ferry/module/rdma.h>
#include <ferry/nvme_spec.h>
#include <ferry/nvmf_spec.h>
#include "nvmf_test_util.h"
#include "test_mock_util.h"

#define HX_NQN "nqn.2026-01.io.ferry:hostile-rdma"
#define HX_BS 4096u
#define HX_BLOCKS 64u
#define HX_CONNS 4u
#define HX_DEPTH 32u
#define HX_CAP (64u + 4096u)

enum hx_cm {
	CM_OK,
	CM_REJECT,
	CM_BAD_ACCEPT
};
enum hx_attack {
	A_NONE,
	A_UNKNOWN_CID,
	A_DUP_CQE,
	A_CQE_THEN_DATA,
	A_PAST_BUFFER,
	A_DISCONNECT,
};

struct hx_conn {
	struct ferry_hal_rdma_qp *qp;
	uint16_t qid;
	int live;
};

static struct hx {
	struct ferry_device *dev;
	const struct ferry_hal_rdma_ops *ops;
	struct ferry_hal_rdma_listener *l;
	struct ferry_hal_rdma_cq *cq;
	char addr[64];
	pthread_t th;
	atomic_int stop;
	int cm;
	uint16_t rej_sts;
	int attack;
	atomic_int attacks_left;
	atomic_int reads, accepted;
	struct hx_conn c[HX_CONNS];
	uint8_t rx[HX_CONNS][HX_DEPTH][HX_CAP];
	struct ferry_nvme_cqe cqe[HX_CONNS][HX_DEPTH][2];
	uint8_t id[4096];
	uint8_t storage[HX_BLOCKS * HX_BS + 8192]; /* + room for the past-the-buffer write */
	struct ferry_hal_rdma_mr *mr_rx, *mr_cqe, *mr_id, *mr_st;
	struct ferry_hal_rdma_mr_keys k_rx, k_cqe, k_id, k_st;
} H;

static uint64_t key_addr(const struct ferry_hal_rdma_mr_keys *k, const void *base, const void *p)
{
	return k->addr + (uint64_t)((const uint8_t *)p - (const uint8_t *)base);
}

static void post_rx(uint32_t ci, uint32_t i)
{
	struct ferry_hal_rdma_sge sge = {key_addr(&H.k_rx, H.rx, H.rx[ci][i]), HX_CAP, H.k_rx.lkey};
	(void)H.ops->post_recv(H.c[ci].qp, (uint64_t)ci << 16 | i, &sge, 1);
}

static void conn_drop(uint32_t ci)
{
	if (H.c[ci].qp)
		H.ops->qp_destroy(H.c[ci].qp);
	H.c[ci].qp = NULL;
	H.c[ci].live = 0;
}

static void on_request(void)
{
	struct ferry_hal_rdma_req *req;
	const void *pd;
	uint32_t pdlen;
	if (H.ops->get_request(H.l, &req, &pd, &pdlen))
		return;
	uint8_t out[32];
	size_t n;
	if (H.cm == CM_REJECT) {
		n = ferry_nvmf_rdma_cm_rej_build(out, sizeof(out), H.rej_sts);
		H.ops->reject(req, out, (uint32_t)n);
		return;
	}
	struct ferry_nvmf_rdma_cm_limits lim = {4, HX_DEPTH, HX_DEPTH};
	struct ferry_nvmf_rdma_cm_req r;
	uint16_t sts;
	cr_assert_eq(ferry_nvmf_rdma_cm_req_parse(pd, pdlen, &lim, &r, &sts), 0,
		     "the host's connect request is malformed (status %u)", sts);
	uint32_t ci = 0;
	while (ci < HX_CONNS && H.c[ci].live)
		ci++;
	if (ci == HX_CONNS) {
		n = ferry_nvmf_rdma_cm_rej_build(out, sizeof(out), FERRY_NVMF_RDMA_CM_NO_RSC);
		H.ops->reject(req, out, (uint32_t)n);
		return;
	}
	conn_drop(ci);
	struct ferry_hal_rdma_qp_attr a = {.size = sizeof(a),
					   .cq = H.cq,
					   .max_send_wr = 4 * HX_DEPTH,
					   .max_recv_wr = HX_DEPTH,
					   .max_send_sge = 4,
					   .max_recv_sge = 1,
					   .initiator_depth = 16,
					   .responder_resources = 16,
					   .ctx = &H.c[ci]};
	n = ferry_nvmf_rdma_cm_rep_build(out, sizeof(out), HX_DEPTH);
	if (H.cm == CM_BAD_ACCEPT)
		out[0] = 1; /* record format 1 */
	cr_assert_eq(H.ops->accept(req, &a, out, (uint32_t)n, &H.c[ci].qp), 0);
	H.c[ci].qid = r.qid;
	H.c[ci].live = 1;
	atomic_fetch_add(&H.accepted, 1);
	for (uint32_t i = 0; i < HX_DEPTH; i++)
		post_rx(ci, i);
}

/* SEND completion @p k (0/1) of slot @p i: the CQE. */
static void send_cqe(uint32_t ci, uint32_t i, uint32_t k, const struct ferry_nvme_cqe *e,
		     uint32_t flags)
{
	H.cqe[ci][i][k] = *e;
	struct ferry_hal_rdma_sge sge = {key_addr(&H.k_cqe, H.cqe, &H.cqe[ci][i][k]), 16,
					 H.k_cqe.lkey};
	struct ferry_hal_rdma_wr wr = {.wr_id = 1ull << 40,
				       .opcode = FERRY_HAL_RDMA_OP_SEND,
				       .flags = flags,
				       .sge = &sge,
				       .nsge = 1};
	(void)H.ops->post_send(H.c[ci].qp, &wr, NULL);
}

/* RDMA WRITE (@p write) or READ of @p len bytes at @p local to/from the keyed descriptors. */
static void move(uint32_t ci, const struct ferry_nvmf_rdma_sgl *g, uint8_t *local, uint32_t len,
		 int write, const struct ferry_hal_rdma_mr_keys *k, const void *base)
{
	uint32_t off = 0;
	for (uint32_t d = 0; d < g->ndesc && off < len; d++) {
		uint32_t l = g->desc[d].len < len - off ? g->desc[d].len : len - off;
		struct ferry_hal_rdma_sge sge = {key_addr(k, base, local + off), l, k->lkey};
		struct ferry_hal_rdma_wr wr = {.wr_id = 2ull << 40,
					       .opcode = write ? FERRY_HAL_RDMA_OP_WRITE
							       : FERRY_HAL_RDMA_OP_READ,
					       .sge = &sge,
					       .nsge = 1,
					       .rkey = g->desc[d].key,
					       .remote_addr = g->desc[d].addr};
		(void)H.ops->post_send(H.c[ci].qp, &wr, NULL);
		off += l;
	}
}

static void on_command(uint32_t ci, uint32_t i, uint32_t len)
{
	struct ferry_nvme_sqe sqe;
	memcpy(&sqe, H.rx[ci][i], sizeof(sqe));
	struct ferry_nvme_cqe e = {.sqid = H.c[ci].qid, .cid = sqe.cid};
	struct ferry_nvmf_rdma_sgl g;
	uint16_t st = 0;
	int has_sgl = !ferry_nvmf_rdma_sgl_parse(&sqe, H.rx[ci][i] + 64, len - 64, 16, 1u << 20, &g,
						 &st);
	if (sqe.opcode == FERRY_NVMF_OPC_FABRICS) {
		const struct ferry_nvmf_prop_get_cmd *p = (const void *)&sqe;
		if (p->fctype == FERRY_NVMF_FCTYPE_CONNECT) {
			e.dw0 = 1;
		} else if (p->fctype == FERRY_NVMF_FCTYPE_PROPERTY_GET) {
			uint64_t v = 0;
			if (p->offset == FERRY_NVME_REG_CAP)
				v = (HX_DEPTH - 1) | 1ull << 16 | 1ull << 24;
			else if (p->offset == FERRY_NVME_REG_VS)
				v = 0x10400;
			else if (p->offset == FERRY_NVME_REG_CSTS)
				v = FERRY_NVME_CSTS_RDY;
			e.dw0 = (uint32_t)v;
			e.dw1 = (uint32_t)(v >> 32);
		}
		send_cqe(ci, i, 0, &e, 0);
		return;
	}
	if (!H.c[ci].qid) {
		if (sqe.opcode == FERRY_NVME_ADM_IDENTIFY && has_sgl &&
		    g.kind == FERRY_NVMF_RDMA_SGL_KEYED) {
			memset(H.id, 0, sizeof(H.id));
			if ((sqe.cdw10 & 0xff) == FERRY_NVME_CNS_CTRLR) {
				struct ferry_nvme_id_ctrlr *id = (void *)H.id;
				id->mdts = 3; /* 32 KiB */
				id->sgls = 1 | 1u << 2;
				uint32_t ioccsz = HX_CAP / 16;
				memcpy(id->nvmf, &ioccsz, 4);
				id->nvmf[11] = 1;
			} else {
				struct ferry_nvme_id_ns *ns = (void *)H.id;
				ns->nsze = ns->ncap = ns->nuse = HX_BLOCKS;
				ns->lbaf[0].lbads = 12;
			}
			move(ci, &g, H.id, 4096, 1, &H.k_id, H.id);
		}
		send_cqe(ci, i, 0, &e, 0);
		return;
	}
	uint64_t lba = sqe.cdw10 | (uint64_t)sqe.cdw11 << 32;
	uint32_t nb = (sqe.cdw12 & 0xffff) + 1, bytes = nb * HX_BS;
	if (lba + nb > HX_BLOCKS || !has_sgl) {
		e.status = (uint16_t)(FERRY_NVME_SC_LBA_RANGE << 1);
		send_cqe(ci, i, 0, &e, 0);
		return;
	}
	uint8_t *at = H.storage + lba * HX_BS;
	if (sqe.opcode == FERRY_NVME_CMD_WRITE) {
		if (g.kind == FERRY_NVMF_RDMA_SGL_ICD)
			memcpy(at, H.rx[ci][i] + 64 + g.icd_off, bytes);
		else
			move(ci, &g, at, bytes, 0, &H.k_st, H.storage);
		send_cqe(ci, i, 0, &e, FERRY_HAL_RDMA_WR_F_FENCE);
		return;
	}
	if (sqe.opcode != FERRY_NVME_CMD_READ || g.kind != FERRY_NVMF_RDMA_SGL_KEYED) {
		e.status = (uint16_t)(FERRY_NVME_SC_INVALID_OPCODE << 1);
		send_cqe(ci, i, 0, &e, 0);
		return;
	}
	atomic_fetch_add(&H.reads, 1);
	int attack = atomic_fetch_sub(&H.attacks_left, 1) > 0 ? H.attack : A_NONE;
	switch (attack) {
	case A_UNKNOWN_CID:
		move(ci, &g, at, bytes, 1, &H.k_st, H.storage);
		e.cid ^= 0x4000; /* the right slot, another generation */
		send_cqe(ci, i, 0, &e, 0);
		break;
	case A_DUP_CQE:
		move(ci, &g, at, bytes, 1, &H.k_st, H.storage);
		send_cqe(ci, i, 0, &e, 0);
		send_cqe(ci, i, 1, &e, 0);
		break;
	case A_CQE_THEN_DATA:
		send_cqe(ci, i, 0, &e, 0);
		move(ci, &g, at, bytes, 1, &H.k_st, H.storage);
		break;
	case A_PAST_BUFFER: {
		struct ferry_nvmf_rdma_sgl big = g;
		big.desc[g.ndesc - 1].len += 4096;
		move(ci, &big, at, bytes + 4096, 1, &H.k_st, H.storage);
		send_cqe(ci, i, 0, &e, 0);
		break;
	}
	case A_DISCONNECT:
		conn_drop(ci);
		break;
	default:
		move(ci, &g, at, bytes, 1, &H.k_st, H.storage);
		send_cqe(ci, i, 0, &e, 0);
		break;
	}
}

static void *hx_thread(void *arg)
{
	(void)arg;
	while (!atomic_load(&H.stop)) {
		on_request();
		struct ferry_hal_rdma_wc wc[16];
		int n = H.ops->cq_poll(H.cq, wc, 16);
		for (int k = 0; k < n; k++) {
			struct hx_conn *c = wc[k].qp_ctx;
			uint32_t ci = (uint32_t)(c - H.c);
			if (ci >= HX_CONNS || !c->qp)
				continue;
			if (wc[k].status) {
				conn_drop(ci); /* the host went, or our access was refused */
				continue;
			}
			if (wc[k].opcode != FERRY_HAL_RDMA_OP_RECV)
				continue;
			uint32_t i = (uint32_t)wc[k].wr_id & 0xffff;
			if (i < HX_DEPTH && wc[k].byte_len >= 64) {
				on_command(ci, i, wc[k].byte_len);
				if (c->qp)
					post_rx(ci, i);
			}
		}
	}
	return NULL;
}

static void hx_up(int cm, uint16_t rej_sts, int attack, int attacks)
{
	memset(&H, 0, sizeof(H));
	H.dev = tm_open("");
	H.ops = ferry_hal_dev_get_backend(H.dev)->nic->rdma;
	cr_assert_not_null(H.ops);
	H.cm = cm;
	H.rej_sts = rej_sts;
	H.attack = attack;
	atomic_store(&H.attacks_left, attacks);
	fill(H.storage, sizeof(H.storage), 9);
	uint32_t acc = FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE;
	cr_assert_eq(H.ops->mr_reg(H.dev, H.rx, sizeof(H.rx), acc, &H.mr_rx), 0);
	cr_assert_eq(H.ops->mr_reg(H.dev, H.cqe, sizeof(H.cqe), acc, &H.mr_cqe), 0);
	cr_assert_eq(H.ops->mr_reg(H.dev, H.id, sizeof(H.id), acc, &H.mr_id), 0);
	cr_assert_eq(H.ops->mr_reg(H.dev, H.storage, sizeof(H.storage), acc, &H.mr_st), 0);
	H.ops->mr_keys(H.mr_rx, &H.k_rx);
	H.ops->mr_keys(H.mr_cqe, &H.k_cqe);
	H.ops->mr_keys(H.mr_id, &H.k_id);
	H.ops->mr_keys(H.mr_st, &H.k_st);
	cr_assert_eq(H.ops->cq_create(H.dev, 1024, &H.cq), 0);
	cr_assert_eq(H.ops->listen(H.dev, "127.0.0.1:0", 16, &H.l), 0);
	cr_assert_eq(H.ops->listener_addr(H.l, H.addr, sizeof(H.addr)), 0);
	cr_assert_eq(pthread_create(&H.th, NULL, hx_thread, NULL), 0);
}

static void hx_down(void)
{
	atomic_store(&H.stop, 1);
	pthread_join(H.th, NULL);
	for (uint32_t i = 0; i < HX_CONNS; i++)
		conn_drop(i);
	H.ops->listener_close(H.l);
	H.ops->cq_destroy(H.cq);
	H.ops->mr_dereg(H.mr_rx);
	H.ops->mr_dereg(H.mr_cqe);
	H.ops->mr_dereg(H.mr_id);
	H.ops->mr_dereg(H.mr_st);
	ferry_device_close(H.dev);
}

static int hx_bdev(struct ferry_device *dev, struct ferry_bdev **b)
{
	struct ferry_bdev_nvmf_opts o = {.size = sizeof(o),
					 .name = "nvmf_rdma_hx",
					 .nic = dev,
					 .trtype = "rdma",
					 .addr = H.addr,
					 .subnqn = HX_NQN,
					 .nsid = 1,
					 .num_io_queues = 1,
					 .queue_depth = HX_DEPTH,
					 .retry_count = 3,
					 .reconnect_delay_ms = 10,
					 .connect_timeout_ms = 2000};
	return ferry_bdev_nvmf_create(&o, b);
}

Test(nvmf_rdma_hostile, reject_names_each_status)
{
	for (uint16_t sts = FERRY_NVMF_RDMA_CM_INVALID_LEN;
	     sts <= FERRY_NVMF_RDMA_CM_INVALID_CNTLID; sts++) {
		hx_up(CM_REJECT, sts, A_NONE, 0);
		struct ferry_device *dev = tm_open("");
		struct ferry_bdev *b = NULL;
		int rc = hx_bdev(dev, &b);
		cr_assert_eq(rc, -ECONNREFUSED, "status %u: create %d", sts, rc);
		cr_assert_null(b);
		const char *why = ferry_nvmf_rdma_cm_sts_str(sts);
		cr_assert(strstr(ferry_last_error(), why) != NULL,
			  "status %u: the error '%s' does not name '%s'", sts, ferry_last_error(),
			  why);
		ferry_device_close(dev);
		hx_down();
	}
}

Test(nvmf_rdma_hostile, accept_with_bad_private_data)
{
	hx_up(CM_BAD_ACCEPT, 0, A_NONE, 0);
	struct ferry_device *dev = tm_open("");
	struct ferry_bdev *b = NULL;
	cr_assert_eq(hx_bdev(dev, &b), -EPROTO);
	cr_assert_null(b);
	cr_assert(strstr(ferry_last_error(), "private data") != NULL, "%s", ferry_last_error());
	ferry_device_close(dev);
	hx_down();
}

static uint8_t R_buf[3 * 16384];

/* Three reads of 4 blocks at LBA 8, the first under @p attack (@p n times): each completes
 * once with the right data, nothing outside the destination changes; @p proto protocol
 * errors and @p loss connection losses are seen, the controller served @p reads reads. */
static void attacked_read(int attack, int n, int proto, int loss, int reads)
{
	hx_up(CM_OK, 0, attack, n);
	struct ferry_device *dev = tm_open("");
	struct ferry_bdev *b = NULL;
	int rc = hx_bdev(dev, &b);
	cr_assert_eq(rc, 0, "create: %d (%s)", rc, ferry_last_error());
	struct ferry_bdev_nvmf_stats s0 = stats_of(b);
	for (int k = 0; k < 3; k++) {
		memset(R_buf, 0xee, sizeof(R_buf));
		struct iovec iov = {R_buf + 16384, 16384};
		struct ferry_mem m = {.iov = &iov, .iovcnt = 1};
		struct ferry_bdev_io io;
		struct done d;
		io_prep(&io, &d, FERRY_BDEV_IO_READ, 8, 4, &m);
		cr_assert_eq(ferry_bdev_submit(b, &io), 0);
		cr_assert_eq(io_wait(&io, &d), 1);
		/* a few more polls: a late second completion must not complete it again */
		for (int j = 0; j < 2000; j++)
			ferry_bdev_poll(b, 64);
		/* data written after the completion lands late (the buffer's registration is
		 * cached): wait for it, bounded */
		uint64_t end = tm_now_ns() + 5000000000ull;
		while (attack == A_CQE_THEN_DATA && !k && tm_now_ns() < end &&
		       memcmp(R_buf + 16384, H.storage + 8 * HX_BS, 16384))
			ferry_bdev_poll(b, 64);
		cr_assert_eq(d.calls, 1, "read %d completed %d times", k, d.calls);
		cr_assert_eq(d.status, 0, "read %d: %d", k, d.status);
		size_t bad = 0;
		while (bad < 16384 && R_buf[16384 + bad] == H.storage[8 * HX_BS + bad])
			bad++;
		cr_assert_eq(bad, 16384, "read %d: data differ at %zu", k, bad);
		for (size_t j = 0; j < 16384; j++) {
			cr_assert_eq(R_buf[j], 0xee, "byte %zu before the buffer written", j);
			cr_assert_eq(R_buf[32768 + j], 0xee, "byte %zu after the buffer written",
				     j);
		}
	}
	struct ferry_bdev_nvmf_stats s = stats_of(b);
	cr_assert_eq(s.protocol_errors - s0.protocol_errors, (uint64_t)proto);
	cr_assert_eq(s.connection_losses - s0.connection_losses, (uint64_t)loss);
	/* reads < 0: 3 or 4 (the attack lost the first read or not), as many retries */
	int served = atomic_load(&H.reads);
	if (reads < 0)
		cr_assert(served == 3 || served == 4, "reads served %d", served);
	else
		cr_assert_eq(served, reads, "reads served %d", served);
	cr_assert_eq(s.retries - s0.retries, (uint64_t)(served - 3), "retries");
	cr_assert_eq(s.io_errors, 0);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	ferry_device_close(dev);
	hx_down();
}

Test(nvmf_rdma_hostile, completion_for_unknown_cid)
{
	attacked_read(A_UNKNOWN_CID, 1, 1, 1, 4); /* retried */
}

Test(nvmf_rdma_hostile, two_completions_for_one_cid)
{
	/* the second completion fails the connection: the read completed by the first, or (the
	 * second came before the capsule's SEND completion) retried; never twice */
	attacked_read(A_DUP_CQE, 1, 1, 1, -1);
}

Test(nvmf_rdma_hostile, completion_before_the_data)
{
	/* RC ordering: the data WRITE after the completion lands (the registration is cached) in
	 * the buffer, never outside it; the host cannot tell */
	attacked_read(A_CQE_THEN_DATA, 1, 0, 0, 3);
}

Test(nvmf_rdma_hostile, data_past_the_buffer)
{
	/* the NIC refuses the WRITE past the registered range: no byte outside, retried */
	attacked_read(A_PAST_BUFFER, 1, 0, 1, 4);
}

Test(nvmf_rdma_hostile, disconnect_mid_read)
{
	attacked_read(A_DISCONNECT, 1, 0, 1, 4);
}
