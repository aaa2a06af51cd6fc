/*
 * Stress: the I/O queues of one message-based (NVMe-oF) controller driven from their own
 * threads at once, as a target's poll groups drive them, while the admin thread runs Keep
 * Alive, Identify, Get Log Page, get_stats and poll concurrently. Each queue thread writes
 * random data to its own LBA slots and reads every block back, verified; at the end every
 * slot holds what its last write left and the per-queue counters add up. Runs on two
 * namespace stacks: a malloc bdev without accel channels, then with one accel channel per
 * queue a passthrough over malloc and a crypto bdev over malloc (one AES-XTS key used by
 * every thread).
 */
#include <errno.h>
#include <ferry/accel.h>
#include <ferry/bdev_crypto.h>
#include <ferry/bdev_malloc.h>
#include <ferry/bdev_passthru.h>
#include <ferry/crypto.h>
#include <ferry/module/nvme_ctrlr.h>
#include <ferry/module/transport.h>
#include "stress.h"

#define NQ 4u     /* I/O queues = threads */
#define SLOTS 32u /* 4 KiB slots per queue */
#define BLK 512u
#define SLOT_BLKS 8u /* 4 KiB */

struct capsule {
	atomic_int done;
	uint16_t qid;
	struct ferry_nvme_cqe cqe;
};

static int send_cpl(struct ferry_transport *t, struct ferry_nvme_ctrlr *c, void *ctx, uint16_t qid,
		    const struct ferry_nvme_cqe *cqe, void *cmd_ctx)
{
	(void)t;
	(void)c;
	(void)ctx;
	struct capsule *cap = cmd_ctx;
	cap->qid = qid;
	cap->cqe = *cqe;
	atomic_store_explicit(&cap->done, 1, memory_order_release);
	return 0;
}

static const struct ferry_transport_ops ops = {.abi_version = FERRY_TRANSPORT_OPS_ABI,
					       .name = "stress.nvmf",
					       .kind = FERRY_TRANSPORT_MESSAGE,
					       .send_completion = send_cpl};

static uint64_t deadline;
static atomic_int stop_admin;

struct qthread {
	struct ferry_nvme_ctrlr *c;
	uint16_t qid;
	uint64_t seed;
	uint64_t writes, reads;
	uint8_t shadow[SLOTS][SLOT_BLKS * BLK];
};

/* One command driven to completion on this thread; -EAGAIN if the controller refused it
 * (resetting), anything else fails the program. */
static int cmd_try(struct ferry_nvme_ctrlr *c, uint16_t qid, uint8_t opc, uint16_t cid,
		   uint64_t slba, void *buf)
{
	struct ferry_nvme_sqe s;
	memset(&s, 0, sizeof(s));
	s.opcode = opc;
	s.cid = cid;
	s.nsid = 1;
	s.cdw10 = (uint32_t)slba;
	s.cdw11 = (uint32_t)(slba >> 32);
	s.cdw12 = SLOT_BLKS - 1;
	struct iovec iov = {buf, SLOT_BLKS * BLK};
	struct ferry_mem m = {.iov = &iov, .iovcnt = 1};
	struct capsule cap = {0};
	int rc = ferry_nvme_ctrlr_submit(c, qid, &s, &m, &cap);
	if (rc == -EAGAIN)
		return rc;
	ST_CHECK(rc == 0, "queue %u submit: %d", qid, rc);
	for (uint64_t spins = 0; !atomic_load_explicit(&cap.done, memory_order_acquire); spins++) {
		ST_CHECK(spins < 50000000ull, "queue %u cid %u never completed", qid, cid);
		ferry_nvme_ctrlr_poll_queue(c, qid, 16);
	}
	ST_CHECK(cap.qid == qid && cap.cqe.cid == cid && cap.cqe.sqid == qid,
		 "completion of queue %u cid %u came as queue %u cid %u", qid, cid, cap.qid,
		 cap.cqe.cid);
	ST_CHECK(cap.cqe.status == 0, "queue %u opcode 0x%x: status 0x%x", qid, opc,
		 cap.cqe.status);
	return 0;
}

static void cmd(struct ferry_nvme_ctrlr *c, uint16_t qid, uint8_t opc, uint16_t cid, uint64_t slba,
		void *buf)
{
	int rc = cmd_try(c, qid, opc, cid, slba, buf);
	ST_CHECK(rc == 0, "queue %u opcode 0x%x: submit refused (%d)", qid, opc, rc);
}

static void *qworker(void *arg)
{
	struct qthread *q = arg;
	uint8_t buf[SLOT_BLKS * BLK];
	uint64_t base = (uint64_t)(q->qid - 1) * SLOTS * SLOT_BLKS;
	uint16_t cid = 0;
	/* Every slot written first: an unwritten block of the crypto stack reads as noise. */
	for (uint32_t slot = 0; slot < SLOTS; slot++) {
		st_fill(q->shadow[slot], sizeof(q->shadow[slot]), &q->seed);
		cmd(q->c, q->qid, FERRY_NVME_CMD_WRITE, cid++, base + slot * SLOT_BLKS,
		    q->shadow[slot]);
		q->writes++;
	}
	while (st_now_ns() < deadline || q->writes < 64) {
		uint32_t slot = (uint32_t)st_range(&q->seed, 0, SLOTS - 1);
		st_fill(q->shadow[slot], sizeof(q->shadow[slot]), &q->seed);
		cmd(q->c, q->qid, FERRY_NVME_CMD_WRITE, cid++, base + slot * SLOT_BLKS,
		    q->shadow[slot]);
		q->writes++;
		uint32_t rs = (uint32_t)st_range(&q->seed, 0, SLOTS - 1);
		memset(buf, 0, sizeof(buf));
		cmd(q->c, q->qid, FERRY_NVME_CMD_READ, cid++, base + rs * SLOT_BLKS, buf);
		q->reads++;
		ST_CHECK(memcmp(buf, q->shadow[rs], sizeof(buf)) == 0,
			 "queue %u slot %u: data differs", q->qid, rs);
	}
	return NULL;
}

/* Until the controller refuses (a reset closed it): writes land in the shadow only once
 * completed, so the shadow is what the blocks hold. */
static void *qworker_until_reset(void *arg)
{
	struct qthread *q = arg;
	uint8_t buf[SLOT_BLKS * BLK];
	uint64_t base = (uint64_t)(q->qid - 1) * SLOTS * SLOT_BLKS;
	uint16_t cid = 0;
	for (;;) {
		uint32_t slot = (uint32_t)st_range(&q->seed, 0, SLOTS - 1);
		st_fill(buf, sizeof(buf), &q->seed);
		if (cmd_try(q->c, q->qid, FERRY_NVME_CMD_WRITE, cid++, base + slot * SLOT_BLKS,
			    buf))
			break;
		memcpy(q->shadow[slot], buf, sizeof(buf));
		q->writes++;
		ST_CHECK(q->writes < 100000000ull, "the reset never closed queue %u", q->qid);
	}
	return NULL;
}

static void admin_cmd(struct ferry_nvme_ctrlr *c, uint8_t opc, uint32_t cdw10, void *buf,
		      size_t len)
{
	struct ferry_nvme_sqe s;
	memset(&s, 0, sizeof(s));
	s.opcode = opc;
	s.cdw10 = cdw10;
	struct iovec iov = {buf, len};
	struct ferry_mem m = {.iov = &iov, .iovcnt = 1};
	struct capsule cap = {0};
	int rc = ferry_nvme_ctrlr_submit(c, 0, &s, buf ? &m : NULL, &cap);
	ST_CHECK(rc == 0, "admin opcode 0x%x submit: %d", opc, rc);
	ST_CHECK(atomic_load(&cap.done) && cap.cqe.status == 0, "admin opcode 0x%x: status 0x%x",
		 opc, cap.cqe.status);
}

static void *admin_worker(void *arg)
{
	struct ferry_nvme_ctrlr *c = arg;
	uint8_t buf[4096];
	uint64_t last = 0;
	while (!atomic_load(&stop_admin)) {
		admin_cmd(c, FERRY_NVME_ADM_KEEP_ALIVE, 0, NULL, 0);
		admin_cmd(c, FERRY_NVME_ADM_IDENTIFY, FERRY_NVME_CNS_CTRLR, buf, 4096);
		/* SMART (sums the queues' counters), error log: NUMDL in bits 31:16 */
		admin_cmd(c, FERRY_NVME_ADM_GET_LOG_PAGE, FERRY_NVME_LOG_SMART | (127u << 16), buf,
			  512);
		admin_cmd(c, FERRY_NVME_ADM_GET_LOG_PAGE, FERRY_NVME_LOG_ERROR | (15u << 16), buf,
			  64);
		struct ferry_nvme_ctrlr_stats st = {.size = sizeof(st)};
		ST_CHECK(ferry_nvme_ctrlr_get_stats(c, &st) == 0, "get_stats");
		ST_CHECK(st.io_cmds >= last, "io_cmds went back: %llu < %llu",
			 (unsigned long long)st.io_cmds, (unsigned long long)last);
		last = st.io_cmds;
		ferry_nvme_ctrlr_poll(c, 8);
	}
	return NULL;
}

static struct qthread qt[NQ];

static void run(struct ferry_transport *t, struct ferry_bdev *ns_bdev, int with_chans,
		const char *nqn)
{
	struct ferry_nvme_subsystem *s;
	struct ferry_nvme_subsystem_opts so = {.size = sizeof(so), .nqn = nqn};
	ST_CHECK(ferry_nvme_subsystem_create(&so, &s) == 0, "subsystem");
	struct ferry_nvme_ns_opts no = {.size = sizeof(no), .bdev = ns_bdev};
	ST_CHECK(ferry_nvme_subsystem_add_ns(s, &no, NULL) == 0, "add_ns");
	struct ferry_nvme_ctrlr_opts co = {.size = sizeof(co),
					   .subsys = s,
					   .transport = t,
					   .hostnqn = "nqn.2024-01.io.ferry:stress-host",
					   .max_io_queues = NQ,
					   .max_queue_entries = 64};
	struct ferry_nvme_ctrlr *c;
	ST_CHECK(ferry_nvme_ctrlr_create(&co, &c) == 0, "ctrlr_create");
	ST_CHECK(ferry_nvme_ctrlr_connect_queue(c, 0, 32) == 0, "admin queue");
	ST_CHECK(ferry_nvme_ctrlr_reg_write(c, FERRY_NVME_REG_CC, 4,
					    FERRY_NVME_CC_EN | (6u << 16) | (4u << 20)) == 0,
		 "CC");
	struct ferry_accel_chan *chans[NQ] = {0};
	for (uint16_t i = 0; i < NQ; i++) {
		ST_CHECK(ferry_nvme_ctrlr_connect_queue(c, (uint16_t)(i + 1), 32) == 0, "queue %u",
			 i + 1);
		if (with_chans) {
			ST_CHECK(ferry_accel_chan_create(NULL, NULL, &chans[i]) == 0, "chan");
			ST_CHECK(ferry_nvme_ctrlr_set_queue_accel_chan(c, (uint16_t)(i + 1),
								       chans[i]) == 0,
				 "set chan");
		}
		memset(&qt[i], 0, sizeof(qt[i]));
		qt[i].c = c;
		qt[i].qid = (uint16_t)(i + 1);
		qt[i].seed = 0x9e3779b97f4a7c15ull * (i + 1);
	}
	deadline = st_now_ns() + st_run_ns(700);
	atomic_store(&stop_admin, 0);
	pthread_t adm;
	ST_CHECK(pthread_create(&adm, NULL, admin_worker, c) == 0, "admin thread");
	st_run_threads(NQ, qworker, qt, sizeof(qt[0]));
	atomic_store(&stop_admin, 1);
	pthread_join(adm, NULL);

	uint64_t ios = 0, rd = 0, wr = 0;
	uint8_t buf[SLOT_BLKS * BLK];
	for (uint16_t i = 0; i < NQ; i++) {
		ios += qt[i].writes + qt[i].reads;
		rd += qt[i].reads;
		wr += qt[i].writes;
		for (uint32_t sl = 0; sl < SLOTS; sl++) {
			uint64_t base = (uint64_t)i * SLOTS * SLOT_BLKS;
			cmd(c, qt[i].qid, FERRY_NVME_CMD_READ, 0xfff0, base + sl * SLOT_BLKS, buf);
			ios++;
			rd++;
			ST_CHECK(memcmp(buf, qt[i].shadow[sl], sizeof(buf)) == 0,
				 "final: queue %u slot %u", i + 1, sl);
		}
	}
	struct ferry_nvme_ctrlr_stats st = {.size = sizeof(st)};
	ST_CHECK(ferry_nvme_ctrlr_get_stats(c, &st) == 0, "get_stats");
	ST_CHECK(st.io_cmds == ios, "io_cmds %llu, threads did %llu",
		 (unsigned long long)st.io_cmds, (unsigned long long)ios);
	ST_CHECK(st.bytes_read == rd * sizeof(buf) && st.bytes_written == wr * sizeof(buf),
		 "byte counters");
	ST_CHECK(st.errors == 0, "errors %llu", (unsigned long long)st.errors);
	for (uint16_t i = 0; i < NQ; i++) {
		ST_CHECK(ferry_nvme_ctrlr_disconnect_queue(c, (uint16_t)(i + 1)) == 0,
			 "disconnect");
		ferry_accel_chan_destroy(chans[i]);
	}
	ST_CHECK(ferry_nvme_ctrlr_disconnect_queue(c, 0) == 0, "disconnect admin");
	ST_CHECK(ferry_nvme_ctrlr_destroy(c) == 0, "destroy");
	ST_CHECK(ferry_nvme_subsystem_destroy(s) == 0, "subsystem destroy");
	printf("stress_nvmf_queues %s: %llu I/O commands on %u queue threads\n", nqn,
	       (unsigned long long)ios, NQ);
}

/*
 * A reset (Property Set CC.EN = 0 on the admin thread) while the queue threads write: their
 * next submit gets -EAGAIN, the commands executing complete on their threads, CSTS.RDY stays 1
 * until the last I/O queue is disconnected, and after re-enabling, every block holds what the
 * last completed write put there.
 */
static void run_reset(struct ferry_transport *t, struct ferry_bdev *ns_bdev)
{
	struct ferry_nvme_subsystem *s;
	struct ferry_nvme_subsystem_opts so = {.size = sizeof(so),
					       .nqn = "nqn.2024-01.io.ferry:stress-reset"};
	ST_CHECK(ferry_nvme_subsystem_create(&so, &s) == 0, "subsystem");
	struct ferry_nvme_ns_opts no = {.size = sizeof(no), .bdev = ns_bdev};
	ST_CHECK(ferry_nvme_subsystem_add_ns(s, &no, NULL) == 0, "add_ns");
	struct ferry_nvme_ctrlr_opts co = {.size = sizeof(co),
					   .subsys = s,
					   .transport = t,
					   .hostnqn = "nqn.2024-01.io.ferry:stress-host",
					   .max_io_queues = NQ,
					   .max_queue_entries = 64};
	struct ferry_nvme_ctrlr *c;
	ST_CHECK(ferry_nvme_ctrlr_create(&co, &c) == 0, "ctrlr_create");
	ST_CHECK(ferry_nvme_ctrlr_connect_queue(c, 0, 32) == 0, "admin queue");
	const uint32_t cc = FERRY_NVME_CC_EN | (6u << 16) | (4u << 20);
	ST_CHECK(ferry_nvme_ctrlr_reg_write(c, FERRY_NVME_REG_CC, 4, cc) == 0, "CC");
	/* Known contents first (every slot written once, single-threaded). */
	ST_CHECK(ferry_nvme_ctrlr_connect_queue(c, 1, 32) == 0, "queue 1");
	for (uint16_t i = 0; i < NQ; i++) {
		memset(&qt[i], 0, sizeof(qt[i]));
		qt[i].c = c;
		qt[i].qid = (uint16_t)(i + 1);
		qt[i].seed = 0x51ed2701ull * (i + 3);
		for (uint32_t sl = 0; sl < SLOTS; sl++) {
			st_fill(qt[i].shadow[sl], sizeof(qt[i].shadow[sl]), &qt[i].seed);
			cmd(c, 1, FERRY_NVME_CMD_WRITE, 1, ((uint64_t)i * SLOTS + sl) * SLOT_BLKS,
			    qt[i].shadow[sl]);
		}
	}
	for (uint16_t i = 1; i < NQ; i++)
		ST_CHECK(ferry_nvme_ctrlr_connect_queue(c, (uint16_t)(i + 1), 32) == 0, "queue");
	pthread_t th[NQ];
	for (uint16_t i = 0; i < NQ; i++)
		ST_CHECK(pthread_create(&th[i], NULL, qworker_until_reset, &qt[i]) == 0, "thread");
	uint64_t until = st_now_ns() + st_run_ns(700) / 2;
	while (st_now_ns() < until)
		ferry_nvme_ctrlr_poll(c, 8);
	ST_CHECK(ferry_nvme_ctrlr_reg_write(c, FERRY_NVME_REG_CC, 4, 0) == 0, "CC.EN = 0");
	uint64_t csts = 0;
	ST_CHECK(ferry_nvme_ctrlr_reg_read(c, FERRY_NVME_REG_CSTS, 4, &csts) == 0 &&
			 csts == FERRY_NVME_CSTS_RDY,
		 "CSTS 0x%llx while I/O queues are connected", (unsigned long long)csts);
	for (uint16_t i = 0; i < NQ; i++)
		pthread_join(th[i], NULL);
	for (uint16_t i = 0; i < NQ; i++)
		ST_CHECK(ferry_nvme_ctrlr_disconnect_queue(c, (uint16_t)(i + 1)) == 0,
			 "disconnect");
	ST_CHECK(ferry_nvme_ctrlr_reg_read(c, FERRY_NVME_REG_CSTS, 4, &csts) == 0 && csts == 0,
		 "CSTS 0x%llx after the last I/O queue", (unsigned long long)csts);
	ST_CHECK(ferry_nvme_ctrlr_reg_write(c, FERRY_NVME_REG_CC, 4, cc) == 0, "re-enable");
	ST_CHECK(ferry_nvme_ctrlr_connect_queue(c, 1, 32) == 0, "queue 1 again");
	uint8_t buf[SLOT_BLKS * BLK];
	uint64_t writes = 0;
	for (uint16_t i = 0; i < NQ; i++) {
		writes += qt[i].writes;
		for (uint32_t sl = 0; sl < SLOTS; sl++) {
			cmd(c, 1, FERRY_NVME_CMD_READ, 2, ((uint64_t)i * SLOTS + sl) * SLOT_BLKS,
			    buf);
			ST_CHECK(memcmp(buf, qt[i].shadow[sl], sizeof(buf)) == 0,
				 "after the reset: queue %u slot %u", i + 1, sl);
		}
	}
	ST_CHECK(ferry_nvme_ctrlr_disconnect_queue(c, 1) == 0, "disconnect");
	ST_CHECK(ferry_nvme_ctrlr_disconnect_queue(c, 0) == 0, "disconnect admin");
	ST_CHECK(ferry_nvme_ctrlr_destroy(c) == 0, "destroy");
	ST_CHECK(ferry_nvme_subsystem_destroy(s) == 0, "subsystem destroy");
	printf("stress_nvmf_queues reset: %llu writes on %u queue threads before the reset\n",
	       (unsigned long long)writes, NQ);
}

static struct ferry_bdev *mk_malloc(const char *name)
{
	struct ferry_bdev *b;
	struct ferry_bdev_malloc_opts mo = {.size = sizeof(mo),
					    .name = name,
					    .block_size = BLK,
					    .num_blocks = (uint64_t)NQ * SLOTS * SLOT_BLKS};
	ST_CHECK(ferry_bdev_malloc_create(&mo, &b) == 0, "malloc bdev");
	return b;
}

int main(void)
{
	ST_CHECK(ferry_transport_register(&ops) == 0, "register");
	struct ferry_transport *t;
	ST_CHECK(ferry_transport_create("stress.nvmf", NULL, &t) == 0, "transport");

	struct ferry_bdev *m = mk_malloc("stress.nvmf.malloc");
	run(t, m, 0, "nqn.2024-01.io.ferry:stress-malloc");
	run_reset(t, m);
	ST_CHECK(ferry_bdev_destroy(m) == 0, "malloc destroy");

	/* A virtual bdev over malloc, sequences on each queue's channel. */
	m = mk_malloc("stress.nvmf.pt.base");
	struct ferry_bdev *pt;
	struct ferry_bdev_passthru_opts po = {.size = sizeof(po),
					      .name = "stress.nvmf.pt",
					      .base_name = "stress.nvmf.pt.base"};
	ST_CHECK(ferry_bdev_passthru_create(&po, &pt) == 0, "passthru bdev");
	run(t, pt, 1, "nqn.2024-01.io.ferry:stress-passthru");
	ST_CHECK(ferry_bdev_destroy(pt) == 0, "passthru destroy");
	ST_CHECK(ferry_bdev_destroy(m) == 0, "pt base destroy");

	uint8_t k1[32], k2[32];
	uint64_t seed = 77;
	st_fill(k1, sizeof(k1), &seed);
	st_fill(k2, sizeof(k2), &seed);
	k2[0] = (uint8_t)(k1[0] ^ 0x5a);
	struct ferry_crypto_key_opts ko = {.size = sizeof(ko),
					   .cipher = FERRY_CIPHER_AES_XTS_256,
					   .key1 = k1,
					   .key2 = k2,
					   .key_len = 32,
					   .data_unit_size = BLK};
	struct ferry_crypto_key *key;
	ST_CHECK(ferry_crypto_key_create(&ko, &key) == 0, "key");
	struct ferry_bdev *base = mk_malloc("stress.nvmf.crypto.base"), *cb;
	struct ferry_bdev_crypto_opts cbo = {.size = sizeof(cbo),
					     .name = "stress.nvmf.crypto",
					     .base = base,
					     .key = key};
	ST_CHECK(ferry_bdev_crypto_create(&cbo, &cb) == 0, "crypto bdev");
	run(t, cb, 1, "nqn.2024-01.io.ferry:stress-crypto");
	ST_CHECK(ferry_bdev_destroy(cb) == 0, "crypto destroy");
	ST_CHECK(ferry_bdev_destroy(base) == 0, "base destroy");
	ferry_crypto_key_destroy(key);

	ferry_transport_destroy(t);
	ST_CHECK(ferry_transport_unregister(&ops) == 0, "unregister");
	return 0;
}
