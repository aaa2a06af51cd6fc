/*
 * The transport plugin API: registry rules, instances (create/listen/poll/context), a
 * message-based transport driving the same controller core with capsules (connect, submit,
 * send_completion), and the endpoint convenience standing a memory-based endpoint up.
 */
#include "test_nvme_host.h"
#include <ferry/endpoint.h>
#include <ferry/pcie_transport.h>
#include <ferry/bdev_malloc.h>
#include <ferry/module/transport.h>
#include <ferry/module/nvme_ctrlr.h>

/* ---- registry ------------------------------------------------------------------------- */

static const struct ferry_transport_ops bad_abi = {.abi_version = 7, .name = "t.badabi",
						   .kind = FERRY_TRANSPORT_MEMORY};
static const struct ferry_transport_ops bad_kind = {.abi_version = FERRY_TRANSPORT_OPS_ABI,
						    .name = "t.badkind"};
static const struct ferry_transport_ops msg_no_send = {.abi_version = FERRY_TRANSPORT_OPS_ABI,
						       .name = "t.nosend",
						       .kind = FERRY_TRANSPORT_MESSAGE};
static const struct ferry_transport_ops dup_name = {.abi_version = FERRY_TRANSPORT_OPS_ABI,
						    .name = "test-mem",
						    .kind = FERRY_TRANSPORT_MEMORY};

static int created, destroyed;

static int ctx_create(struct ferry_transport *t, const struct ferry_transport_opts *o)
{
	created++;
	if (strcmp(o->args, "fail=1") == 0)
		return -ENODEV;
	ferry_transport_set_ctx(t, &created);
	return 0;
}

static void ctx_destroy(struct ferry_transport *t)
{
	destroyed++;
}

static const struct ferry_transport_ops ctx_ops = {.abi_version = FERRY_TRANSPORT_OPS_ABI,
						   .name = "t.ctx",
						   .kind = FERRY_TRANSPORT_MEMORY,
						   .create = ctx_create,
						   .destroy = ctx_destroy};

Test(transport, registry)
{
	cr_assert_eq(ferry_transport_register(&test_tr_ops), 0);
	cr_assert_eq(ferry_transport_register(&test_tr_ops), 0, "idempotent");
	cr_assert_eq(ferry_transport_register(&bad_abi), -EPROTO);
	cr_assert_eq(ferry_transport_register(&bad_kind), -EINVAL);
	cr_assert_eq(ferry_transport_register(&msg_no_send), -EINVAL);
	cr_assert_eq(ferry_transport_register(&dup_name), -EEXIST);
	cr_assert_eq(ferry_transport_register(NULL), -EINVAL);
	cr_assert_eq(ferry_transport_find("test-mem"), &test_tr_ops);
	cr_assert_null(ferry_transport_find("t.none"));
	int seen = 0;
	for (unsigned int i = 0; ferry_transport_get(i); i++)
		seen += ferry_transport_get(i) == &test_tr_ops;
	cr_assert_eq(seen, 1);

	cr_assert_eq(ferry_transport_register(&ctx_ops), 0);
	struct ferry_transport *t;
	int uctx;
	struct ferry_transport_opts o = {.size = sizeof(o), .args = "fail=1", .user_ctx = &uctx};
	cr_assert_eq(ferry_transport_create("t.ctx", &o, &t), -ENODEV);
	o.args = NULL;
	cr_assert_eq(ferry_transport_create("t.ctx", &o, &t), 0);
	cr_assert_eq(created, 2);
	cr_assert_eq(ferry_transport_get_ctx(t), &created);
	cr_assert_eq(ferry_transport_get_user_ctx(t), &uctx);
	cr_assert_eq(ferry_transport_get_kind(t), FERRY_TRANSPORT_MEMORY);
	cr_assert_eq(ferry_transport_get_ops(t), &ctx_ops);
	cr_assert_null(ferry_transport_get_device(t));
	cr_assert_eq(ferry_transport_poll(t, 8), 0, "no poll op: nothing to do");
	cr_assert_eq(ferry_transport_listen(t, (struct ferry_nvme_subsystem *)&o, "x"), -ENOTSUP);
	cr_assert_eq(ferry_transport_unregister(&ctx_ops), -EBUSY, "an instance exists");
	ferry_transport_destroy(t);
	cr_assert_eq(destroyed, 1);
	cr_assert_eq(ferry_transport_unregister(&ctx_ops), 0);
	cr_assert_eq(ferry_transport_unregister(&ctx_ops), -ENOENT);
	cr_assert_eq(ferry_transport_create("t.ctx", NULL, &t), -ENOENT);
}

/* ---- a message-based transport ------------------------------------------------------------ */

struct capsule {
	int done;
	struct ferry_nvme_cqe cqe;
	uint16_t qid;
};

static int msg_send(struct ferry_transport *t, struct ferry_nvme_ctrlr *c, void *ctx, uint16_t qid,
		    const struct ferry_nvme_cqe *cqe, void *cmd_ctx)
{
	struct capsule *cap = cmd_ctx;
	cap->done++;
	cap->cqe = *cqe;
	cap->qid = qid;
	return 0;
}

static const struct ferry_transport_ops msg_ops = {.abi_version = FERRY_TRANSPORT_OPS_ABI,
						   .name = "t.msg",
						   .kind = FERRY_TRANSPORT_MESSAGE,
						   .send_completion = msg_send};

static int submit(struct ferry_nvme_ctrlr *c, uint16_t qid, struct ferry_nvme_sqe *s, void *buf,
		  size_t len, struct capsule *cap)
{
	struct iovec iov = {buf, len};
	struct ferry_mem m = {.iov = &iov, .iovcnt = 1};
	memset(cap, 0, sizeof(*cap));
	return ferry_nvme_ctrlr_submit(c, qid, s, buf ? &m : NULL, cap);
}

Test(transport, message_based_controller)
{
	cr_assert_eq(ferry_transport_register(&msg_ops), 0);
	struct ferry_transport *t;
	cr_assert_eq(ferry_transport_create("t.msg", NULL, &t), 0);
	struct ferry_nvme_subsystem *s;
	struct ferry_nvme_subsystem_opts so = {.size = sizeof(so), .nqn = "nqn.2024-01.io.ferry:msg"};
	cr_assert_eq(ferry_nvme_subsystem_create(&so, &s), 0);
	struct ferry_bdev *b;
	struct ferry_bdev_malloc_opts mo = {.size = sizeof(mo), .name = "msg.malloc", .block_size = 512,
					    .num_blocks = 128};
	cr_assert_eq(ferry_bdev_malloc_create(&mo, &b), 0);
	struct ferry_nvme_ns_opts no = {.size = sizeof(no), .bdev = b};
	uint32_t nsid = 0;
	cr_assert_eq(ferry_nvme_subsystem_add_ns(s, &no, &nsid), 0);
	cr_assert_eq(nsid, 1);
	struct ferry_nvme_ctrlr *c;
	struct ferry_nvme_ctrlr_opts co = {.size = sizeof(co), .subsys = s, .transport = t,
					   .hostnqn = "nqn.2024-01.io.ferry:host"};
	cr_assert_eq(ferry_nvme_ctrlr_create(&co, &c), 0, "no host domain for a message transport");

	struct ferry_nvme_sqe sqe = h_sqe(FERRY_NVME_ADM_KEEP_ALIVE, 0);
	struct capsule cap;
	cr_assert_eq(submit(c, 0, &sqe, NULL, 0, &cap), -ENOENT, "admin queue not connected");
	cr_assert_eq(ferry_nvme_ctrlr_connect_queue(c, 0, 32), 0);
	cr_assert_eq(ferry_nvme_ctrlr_connect_queue(c, 0, 32), -EEXIST);
	cr_assert_eq(ferry_nvme_ctrlr_connect_queue(c, 1, 1), -EINVAL);
	cr_assert_eq(submit(c, 0, &sqe, NULL, 0, &cap), -EAGAIN, "not enabled yet");
	/* Property Set CC.EN: no ASQ/ACQ needed for capsules. */
	cr_assert_eq(ferry_nvme_ctrlr_reg_write(c, FERRY_NVME_REG_CC, 4, H_CC_DEFAULT), 0);
	uint64_t csts;
	cr_assert_eq(ferry_nvme_ctrlr_reg_read(c, FERRY_NVME_REG_CSTS, 4, &csts), 0);
	cr_assert_eq(csts, FERRY_NVME_CSTS_RDY);

	sqe.cid = 7;
	cr_assert_eq(submit(c, 0, &sqe, NULL, 0, &cap), 0);
	cr_assert_eq(cap.done, 1);
	cr_assert_eq(cap.cqe.cid, 7);
	cr_assert_eq(cap.cqe.status, 0);
	cr_assert_eq(cap.cqe.sqhd, 1);

	/* Identify with in-capsule data in local memory. */
	uint8_t id[4096];
	sqe = h_sqe(FERRY_NVME_ADM_IDENTIFY, 0);
	sqe.cdw10 = FERRY_NVME_CNS_CTRLR;
	cr_assert_eq(submit(c, 0, &sqe, id, sizeof(id), &cap), 0);
	cr_assert_eq(cap.done, 1);
	cr_assert_eq((cap.cqe.status >> 1) & 0x7ff, 0);
	struct ferry_nvme_id_ctrlr idc;
	memcpy(&idc, id, sizeof(idc));
	cr_assert_str_eq(idc.subnqn, "nqn.2024-01.io.ferry:msg");
	cr_assert_eq(submit(c, 0, &sqe, id, 100, &cap), 0);
	cr_assert_eq((cap.cqe.status >> 1) & 0x7ff, ST(GENERIC, DATA_SGL_LEN), "wrong data length");
	/* Queue creation commands belong to memory-based transports. */
	sqe = h_sqe(FERRY_NVME_ADM_CREATE_CQ, 0);
	cr_assert_eq(submit(c, 0, &sqe, NULL, 0, &cap), 0);
	cr_assert_eq((cap.cqe.status >> 1) & 0x7ff, ST(GENERIC, INVALID_OPCODE));

	/* I/O queue: write then read. */
	cr_assert_eq(ferry_nvme_ctrlr_connect_queue(c, 1, 4), 0);
	uint8_t w[1024], r[1024];
	h_fill(w, sizeof(w), 3);
	sqe = h_sqe(0, 1);
	h_rw(&sqe, FERRY_NVME_CMD_WRITE, 5, 2);
	cr_assert_eq(submit(c, 1, &sqe, w, sizeof(w), &cap), 0);
	cr_assert_eq(cap.done, 1);
	cr_assert_eq(cap.qid, 1);
	cr_assert_eq(cap.cqe.status, 0);
	h_rw(&sqe, FERRY_NVME_CMD_READ, 5, 2);
	cr_assert_eq(submit(c, 1, &sqe, r, sizeof(r), &cap), 0);
	cr_assert_eq(memcmp(w, r, sizeof(w)), 0);
	h_rw(&sqe, FERRY_NVME_CMD_READ, 127, 2);
	cr_assert_eq(submit(c, 1, &sqe, r, sizeof(r), &cap), 0);
	cr_assert_eq((cap.cqe.status >> 1) & 0x7ff, ST(GENERIC, LBA_RANGE));
	cr_assert_eq(submit(c, 2, &sqe, r, sizeof(r), &cap), -ENOENT);
	cr_assert_eq(ferry_nvme_ctrlr_poll(c, 8), 0, "nothing to fetch for capsules");
	uint64_t v;
	cr_assert_eq(ferry_nvme_ctrlr_reg_write(c, FERRY_NVME_REG_DBS, 4, 1), 0, "no doorbells: ignored");

	/* Parked Asynchronous Event Requests. */
	struct capsule aer[4];
	for (int i = 0; i < 4; i++) {
		sqe = h_sqe(FERRY_NVME_ADM_ASYNC_EVENT, 0);
		cr_assert_eq(submit(c, 0, &sqe, NULL, 0, &aer[i]), 0);
		cr_assert_eq(aer[i].done, 0, "parked");
	}
	/* Reset: parked commands are aborted (each capsule still gets its one completion), the
	 * I/O queues (owned by other threads) stay until the transport disconnects them; the
	 * reset completes with the last one, the admin queue stays. */
	cr_assert_eq(ferry_nvme_ctrlr_reg_write(c, FERRY_NVME_REG_CC, 4, 0), 0);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(aer[i].done, 1);
		cr_assert_eq((aer[i].cqe.status >> 1) & 0x7ff, ST(GENERIC, ABORTED_SQ_DELETION));
	}
	cr_assert_eq(submit(c, 1, &sqe, r, sizeof(r), &cap), -EAGAIN, "resetting");
	cr_assert_eq(ferry_nvme_ctrlr_reg_read(c, FERRY_NVME_REG_CSTS, 4, &v), 0);
	cr_assert_eq(v, FERRY_NVME_CSTS_RDY, "the reset waits for the I/O queue");
	cr_assert_eq(ferry_nvme_ctrlr_disconnect_queue(c, 1), 0);
	cr_assert_eq(ferry_nvme_ctrlr_reg_read(c, FERRY_NVME_REG_CSTS, 4, &v), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(ferry_nvme_ctrlr_disconnect_queue(c, 0), 0);

	cr_assert_eq(ferry_nvme_ctrlr_destroy(c), 0);
	cr_assert_eq(ferry_nvme_subsystem_destroy(s), 0);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	ferry_transport_destroy(t);
	cr_assert_eq(ferry_transport_unregister(&msg_ops), 0);
}

/* ---- endpoint over a memory-based test plugin ---------------------------------------------- */

struct ep_state {
	struct host_mem *hm;
	struct ferry_nvme_ctrlr *ctrlr;
	int polls;
};

static int ep_create(struct ferry_transport *t, const struct ferry_transport_opts *o)
{
	struct ep_state *st = calloc(1, sizeof(*st));
	st->hm = hm_create(1 << 20, 0);
	ferry_transport_set_ctx(t, st);
	return 0;
}

static int ep_listen(struct ferry_transport *t, struct ferry_nvme_subsystem *s, const char *addr)
{
	struct ep_state *st = ferry_transport_get_ctx(t);
	if (strcmp(addr, "fn=0") != 0)
		return -EADDRNOTAVAIL;
	struct ferry_nvme_ctrlr_opts co = {.size = sizeof(co), .subsys = s, .transport = t,
					   .host_domain = st->hm->dom};
	return ferry_nvme_ctrlr_create(&co, &st->ctrlr);
}

static int ep_poll(struct ferry_transport *t, uint32_t max)
{
	struct ep_state *st = ferry_transport_get_ctx(t);
	st->polls++;
	return st->ctrlr ? ferry_nvme_ctrlr_poll(st->ctrlr, max) : 0;
}

static void ep_destroy(struct ferry_transport *t)
{
	struct ep_state *st = ferry_transport_get_ctx(t);
	ferry_nvme_ctrlr_destroy(st->ctrlr);
	hm_destroy(st->hm);
	free(st);
}

static const struct ferry_transport_ops ep_ops = {.abi_version = FERRY_TRANSPORT_OPS_ABI,
						  .name = "t.ep",
						  .kind = FERRY_TRANSPORT_MEMORY,
						  .create = ep_create,
						  .destroy = ep_destroy,
						  .listen = ep_listen,
						  .poll = ep_poll};

Test(transport, endpoint)
{
	cr_assert_eq(ferry_transport_register(&ep_ops), 0);
	struct ferry_bdev *b[2];
	struct ferry_bdev_malloc_opts mo = {.size = sizeof(mo), .name = "ep.b0", .block_size = 512,
					    .num_blocks = 64};
	cr_assert_eq(ferry_bdev_malloc_create(&mo, &b[0]), 0);
	mo.name = "ep.b1";
	mo.block_size = 4096;
	cr_assert_eq(ferry_bdev_malloc_create(&mo, &b[1]), 0);
	struct ferry_endpoint *ep;
	struct ferry_endpoint_opts o = {.size = sizeof(o), .transport = "t.ep", .address = "fn=1",
					.nqn = "nqn.2024-01.io.ferry:ep", .bdevs = b, .num_bdevs = 2};
	cr_assert_eq(ferry_endpoint_create(&o, &ep), -EADDRNOTAVAIL);
	cr_assert_null(ferry_bdev_get_claim(b[0]), "undone on failure");
	o.address = "fn=0";
	o.transport = "t.none";
	cr_assert_eq(ferry_endpoint_create(&o, &ep), -ENOENT);
	o.transport = "t.ep";
	cr_assert_eq(ferry_endpoint_create(&o, &ep), 0);
	struct ferry_nvme_subsystem *s = ferry_endpoint_get_subsystem(ep);
	cr_assert_str_eq(ferry_nvme_subsystem_get_nqn(s), "nqn.2024-01.io.ferry:ep");
	cr_assert_eq(ferry_nvme_subsystem_get_ns_bdev(s, 1), b[0]);
	cr_assert_eq(ferry_nvme_subsystem_get_ns_bdev(s, 2), b[1]);
	cr_assert_null(ferry_nvme_subsystem_get_ns_bdev(s, 3));
	cr_assert_eq(ferry_bdev_destroy(b[0]), -EBUSY, "claimed by the namespace");
	cr_assert_eq(ferry_endpoint_poll(ep, 16), 0);
	struct ep_state *st = ferry_transport_get_ctx(ferry_endpoint_get_transport(ep));
	cr_assert_eq(st->polls, 1);
	cr_assert_eq(ferry_nvme_ctrlr_get_subsystem(st->ctrlr), s);
	ferry_endpoint_destroy(ep);
	cr_assert_eq(ferry_bdev_destroy(b[0]), 0);
	cr_assert_eq(ferry_bdev_destroy(b[1]), 0);
	cr_assert_eq(ferry_transport_unregister(&ep_ops), 0);
}

/* ---- the built-in "pcie" plugin is registered before any vendor plugin ------------------ */

static const struct ferry_transport_ops vendor_pcie = {.abi_version = FERRY_TRANSPORT_OPS_ABI,
						       .name = "pcie",
						       .kind = FERRY_TRANSPORT_MEMORY};

/* Criterion runs each test in a fresh process: this registration is the process's first call
 * into the registry, the case where the vendor's plugin used to replace the built-in. */
Test(transport, builtin_pcie_registered_first)
{
	cr_assert_eq(ferry_transport_register(&vendor_pcie), -EEXIST,
		     "a vendor plugin may not take the built-in name");
	const struct ferry_transport_ops *ops = ferry_transport_find(FERRY_PCIE_TRANSPORT_NAME);
	cr_assert_not_null(ops);
	cr_assert_neq(ops, &vendor_pcie, "the built-in answers to \"pcie\"");
	cr_assert_eq(ops->kind, FERRY_TRANSPORT_MEMORY);
	cr_assert_eq(ferry_transport_get(0), ops, "the built-in comes first in the registry");
	cr_assert_eq(ferry_transport_unregister(ops), -EPERM, "built-ins stay registered");
	cr_assert_eq(ferry_transport_find("pcie"), ops);
	cr_assert_eq(ferry_transport_unregister(&vendor_pcie), -ENOENT);
	/* The same plugin under another name is fine. */
	static const struct ferry_transport_ops vendor_other = {
		.abi_version = FERRY_TRANSPORT_OPS_ABI, .name = "acme-pcie",
		.kind = FERRY_TRANSPORT_MEMORY};
	cr_assert_eq(ferry_transport_register(&vendor_other), 0);
	cr_assert_eq(ferry_transport_find("acme-pcie"), &vendor_other);
	cr_assert_eq(ferry_transport_unregister(&vendor_other), 0);
}
