/*
 * Random verified I/O through the controller: 100 000 reads, writes and compares with PRPs
 * (random offsets, lists) and SGLs over four queues, checked against a shadow copy of the
 * namespace; the same with an asynchronous host domain completing out of order; and a
 * controller reset with writes in flight that loses no write the host saw completed.
 *
 * The namespace sits on a bdev stack built from a layer list, top first ("malloc",
 * "passthru,malloc", "crypto,dif,malloc520"); build_stack() knows every layer, a new one is
 * one more branch there.
 */
#include "test_nvme_host.h"
#include <ferry/accel.h>
#include <ferry/crypto.h>
#include <ferry/dif.h>
#include <ferry/bdev_malloc.h>
#include <ferry/bdev_passthru.h>
#include <ferry/bdev_crypto.h>
#include <ferry/bdev_dif.h>
#include <ferry/module/nvme_ctrlr.h>

/* ---- bdev stacks ------------------------------------------------------------------------ */

struct stack {
	struct ferry_bdev *bdevs[8]; /* bottom first */
	int n;
	struct ferry_crypto_key *key;
};

static struct ferry_bdev *build_stack(struct stack *st, const char *layers, uint64_t num_blocks)
{
	static unsigned int seq;
	char spec[128];
	char *tok[8];
	int nt = 0;
	snprintf(spec, sizeof(spec), "%s", layers);
	for (char *save = NULL, *t = strtok_r(spec, ",", &save); t && nt < 8;
	     t = strtok_r(NULL, ",", &save))
		tok[nt++] = t;
	memset(st, 0, sizeof(*st));
	for (int i = nt - 1; i >= 0; i--) { /* the last layer is the bottom */
		char name[64];
		snprintf(name, sizeof(name), "rnd.%s.%u", tok[i], seq++);
		struct ferry_bdev *b = NULL;
		if (strcmp(tok[i], "malloc") == 0) {
			struct ferry_bdev_malloc_opts mo = {.size = sizeof(mo), .name = name,
							    .block_size = 512, .num_blocks = num_blocks};
			cr_assert_eq(ferry_bdev_malloc_create(&mo, &b), 0);
		} else if (strcmp(tok[i], "malloc520") == 0) {
			struct ferry_bdev_malloc_opts mo = {.size = sizeof(mo), .name = name,
							    .block_size = 520, .md_size = 8,
							    .dif_type = 1, .num_blocks = num_blocks};
			cr_assert_eq(ferry_bdev_malloc_create(&mo, &b), 0);
		} else if (strcmp(tok[i], "dif") == 0) {
			cr_assert_gt(st->n, 0, "dif needs a base");
			struct ferry_bdev_dif_opts d = {
				.size = sizeof(d), .name = name, .base = st->bdevs[st->n - 1],
				.dif_type = 1, .app_tag = 0x4652, .app_tag_mask = 0xffff,
				.check_flags = FERRY_DIF_CHECK_GUARD | FERRY_DIF_CHECK_APPTAG |
					       FERRY_DIF_CHECK_REFTAG};
			cr_assert_eq(ferry_bdev_dif_create(&d, &b), 0);
		} else if (strcmp(tok[i], "crypto") == 0) {
			cr_assert_gt(st->n, 0, "crypto needs a base");
			uint8_t k1[16], k2[16];
			h_fill(k1, sizeof(k1), 100);
			h_fill(k2, sizeof(k2), 200);
			struct ferry_crypto_key_opts ko = {.size = sizeof(ko),
							   .cipher = FERRY_CIPHER_AES_XTS_128,
							   .key1 = k1, .key2 = k2, .key_len = 16,
							   .data_unit_size = 512};
			cr_assert_eq(ferry_crypto_key_create(&ko, &st->key), 0);
			struct ferry_bdev_crypto_opts c = {.size = sizeof(c), .name = name,
							   .base = st->bdevs[st->n - 1], .key = st->key};
			cr_assert_eq(ferry_bdev_crypto_create(&c, &b), 0);
		} else if (strcmp(tok[i], "passthru") == 0) {
			cr_assert_gt(st->n, 0, "passthru needs a base");
			struct ferry_bdev_passthru_opts po = {
				.size = sizeof(po), .name = name,
				.base_name = ferry_bdev_get_name(st->bdevs[st->n - 1])};
			cr_assert_eq(ferry_bdev_passthru_create(&po, &b), 0);
		} else {
			cr_skip_test("layer '%s' not available in this build", tok[i]);
		}
		st->bdevs[st->n++] = b;
	}
	return st->bdevs[st->n - 1];
}

static void destroy_stack(struct stack *st)
{
	for (int i = st->n - 1; i >= 0; i--)
		cr_assert_eq(ferry_bdev_destroy(st->bdevs[i]), 0);
	ferry_crypto_key_destroy(st->key);
}

/* ---- random workload ------------------------------------------------------------------- */

#define NQ 4
#define QD 16
#define NBLK 4096u
#define MAXB 16u
#define POOL (1u << 20)

struct slot {
	int busy;
	uint16_t cid;
	uint8_t opc;
	int expect_fail;
	uint64_t slba;
	uint32_t nlb;
	uint64_t buf;   /* host address of the data */
	uint64_t list;  /* host page for PRP lists / SGL segment */
};

struct rnd {
	struct host *h;
	uint8_t *shadow;
	uint8_t *pool;
	uint16_t *busy; /* per block */
	struct slot slots[NQ + 1][QD];
	uint64_t seed;
	uint64_t done, reads, writes, compares, miscompares, sgls;
};

static uint64_t R(struct rnd *r)
{
	return hm_rand(&r->seed);
}

static void describe(struct rnd *r, struct slot *s, struct ferry_nvme_sqe *sqe)
{
	struct host *h = r->h;
	uint64_t len = (uint64_t)s->nlb * 512;
	if (R(r) % 4 == 0) {
		/* SGL: up to three data blocks in a last segment. */
		struct ferry_nvme_sgl_desc d[3];
		memset(d, 0, sizeof(d));
		uint32_t n = 1 + (uint32_t)(R(r) % 3);
		if (len < n * 4)
			n = 1;
		uint64_t off = 0;
		for (uint32_t i = 0; i < n; i++) {
			uint64_t piece = i == n - 1 ? len - off : (len / n) & ~3ull;
			d[i].address = s->buf + off;
			d[i].length = (uint32_t)piece;
			d[i].id = FERRY_NVME_SGL_ID(FERRY_NVME_SGL_DATA_BLOCK, 0);
			off += piece;
		}
		memcpy(hm_ptr(h->hm, s->list), d, sizeof(d));
		sqe->flags = FERRY_NVME_PSDT_SGL_MPTR_CONTIG << FERRY_NVME_FLAGS_PSDT_SHIFT;
		sqe->dptr.sgl.address = s->list;
		sqe->dptr.sgl.length = n * 16;
		sqe->dptr.sgl.id = FERRY_NVME_SGL_ID(FERRY_NVME_SGL_LAST_SEGMENT, 0);
		r->sgls++;
		return;
	}
	/* PRPs: PRP1 + PRP2, or a list in the slot's list page (data pages scattered). */
	uint64_t first = HM_PAGE - (s->buf & (HM_PAGE - 1));
	sqe->dptr.prp.prp1 = s->buf;
	sqe->dptr.prp.prp2 = 0;
	if (len <= first)
		return;
	if (len - first <= HM_PAGE) {
		sqe->dptr.prp.prp2 = s->buf + first;
		return;
	}
	uint64_t n = (len - first + HM_PAGE - 1) / HM_PAGE;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t e = s->buf + first + i * HM_PAGE;
		memcpy(hm_ptr(h->hm, s->list + 8 * i), &e, 8);
	}
	sqe->dptr.prp.prp2 = s->list;
}

static int pick_range(struct rnd *r, struct slot *s)
{
	for (int tries = 0; tries < 8; tries++) {
		uint32_t nlb = 1 + (uint32_t)(R(r) % MAXB);
		uint64_t slba = R(r) % (NBLK - nlb + 1);
		int ok = 1;
		for (uint32_t b = 0; b < nlb && ok; b++)
			ok = r->busy[slba + b] == 0;
		if (!ok)
			continue;
		for (uint32_t b = 0; b < nlb; b++)
			r->busy[slba + b]++;
		s->slba = slba;
		s->nlb = nlb;
		return 1;
	}
	return 0;
}

static void issue(struct rnd *r, int q, struct slot *s, uint64_t data_base)
{
	struct host *h = r->h;
	if (!pick_range(r, s))
		return;
	uint64_t len = (uint64_t)s->nlb * 512;
	s->buf = data_base + (R(r) % 1024) * 4; /* dword-aligned offset into the slot's area */
	uint8_t *hb = hm_ptr(h->hm, s->buf);
	uint64_t kind = R(r) % 10;
	struct ferry_nvme_sqe sqe = h_sqe(0, 1);
	s->expect_fail = 0;
	if (kind < 4) {
		s->opc = FERRY_NVME_CMD_WRITE;
		memcpy(hb, r->pool + R(r) % (POOL - len), len);
		r->writes++;
	} else if (kind < 8) {
		s->opc = FERRY_NVME_CMD_READ;
		memset(hb, 0x5a, len);
		r->reads++;
	} else {
		s->opc = FERRY_NVME_CMD_COMPARE;
		memcpy(hb, r->shadow + s->slba * 512, len);
		if (R(r) % 2) {
			hb[R(r) % len] ^= 0x80;
			s->expect_fail = 1;
		}
		r->compares++;
	}
	h_rw(&sqe, s->opc, s->slba, s->nlb);
	describe(r, s, &sqe);
	s->cid = h_submit(h, q, &sqe);
	s->busy = 1;
}

static void complete(struct rnd *r, int q, const struct ferry_nvme_cqe *e)
{
	struct slot *s = NULL;
	for (int i = 0; i < QD && !s; i++)
		if (r->slots[q][i].busy && r->slots[q][i].cid == e->cid)
			s = &r->slots[q][i];
	cr_assert_not_null(s, "completion for unknown cid %u on queue %d", e->cid, q);
	uint64_t len = (uint64_t)s->nlb * 512;
	uint8_t *hb = hm_ptr(r->h->hm, s->buf);
	if (s->opc == FERRY_NVME_CMD_COMPARE) {
		cr_assert_eq(cqe_st(e), s->expect_fail ? ST(MEDIA, COMPARE_FAILURE) : 0,
			     "compare of %llu+%u: status 0x%x", (unsigned long long)s->slba, s->nlb,
			     cqe_st(e));
		r->miscompares += s->expect_fail;
	} else {
		cr_assert_eq(cqe_st(e), 0, "%s of %llu+%u failed: 0x%x",
			     s->opc == FERRY_NVME_CMD_READ ? "read" : "write",
			     (unsigned long long)s->slba, s->nlb, cqe_st(e));
		if (s->opc == FERRY_NVME_CMD_WRITE)
			memcpy(r->shadow + s->slba * 512, hb, len);
		else
			cr_assert_eq(memcmp(hb, r->shadow + s->slba * 512, len), 0,
				     "read of %llu+%u returned wrong data", (unsigned long long)s->slba,
				     s->nlb);
	}
	for (uint32_t b = 0; b < s->nlb; b++)
		r->busy[s->slba + b]--;
	s->busy = 0;
	r->done++;
}

static void raw_done(struct ferry_bdev_io *io, void *arg)
{
	*(int *)arg = io->status;
}

static void run_random(const char *layers, int async, int accel, uint64_t total, uint64_t seed)
{
	struct stack st;
	struct ferry_bdev *top = build_stack(&st, layers, NBLK);
	struct host_opts o = {.async = async, .ns_bdev = top, .ram = 64u << 20};
	struct ferry_accel_chan *chan = NULL;
	if (accel) {
		/* Data through accel sequences built by the bdev stack (software engine). */
		cr_assert_eq(ferry_accel_chan_create(NULL, NULL, &chan), 0);
		o.copts.size = sizeof(o.copts);
		o.copts.accel_chan = chan;
	}
	struct rnd *r = calloc(1, sizeof(*r));
	r->h = h_create(&o);
	r->seed = seed;
	r->shadow = calloc(1, (size_t)NBLK * 512);
	r->pool = malloc(POOL);
	r->busy = calloc(NBLK, sizeof(*r->busy));
	h_fill(r->pool, POOL, seed);
	struct host *h = r->h;
	h_up(h, 0);
	for (int q = 1; q <= NQ; q++)
		h_ioq(h, (uint16_t)q, 64);
	/* Format: zero every block through the stack (the shadow starts zeroed; a DIF layer
	 * also needs its protection information written before the first read). */
	for (uint32_t lba = 0; lba < NBLK; lba += 1024) {
		struct ferry_nvme_sqe s = h_sqe(0, 1);
		h_rw(&s, FERRY_NVME_CMD_WRITE_ZEROES, lba, 1024);
		cr_assert_eq(h_cmd(h, 1, &s, NULL), 0);
	}
	/* Per slot: a data area (MAXB blocks + offset slack) and a list page. */
	uint64_t area[NQ + 1][QD];
	for (int q = 1; q <= NQ; q++) {
		for (int i = 0; i < QD; i++) {
			area[q][i] = hm_alloc(h->hm, MAXB * 512 + 2 * HM_PAGE, HM_PAGE);
			r->slots[q][i].list = hm_alloc(h->hm, HM_PAGE, HM_PAGE);
		}
	}
	uint64_t issued = 0;
	while (r->done < total) {
		for (int q = 1; q <= NQ; q++)
			for (int i = 0; i < QD && issued < total; i++)
				if (!r->slots[q][i].busy) {
					issue(r, q, &r->slots[q][i], area[q][i]);
					issued += r->slots[q][i].busy;
				}
		h_poll(h);
		for (int q = 1; q <= NQ; q++) {
			struct ferry_nvme_cqe e;
			int any = 0;
			while (h_peek(h, q, &e)) {
				complete(r, q, &e);
				any = 1;
			}
			if (any)
				h_cq_doorbell(h, q);
		}
	}
	cr_assert_gt(r->writes, total / 5);
	cr_assert_gt(r->reads, total / 5);
	cr_assert_gt(r->miscompares, 0);
	cr_assert_gt(r->sgls, total / 8);
	/* Every block, read back in one pass, equals the shadow. */
	uint64_t rb = hm_alloc(h->hm, 64 * 1024, HM_PAGE);
	for (uint32_t lba = 0; lba < NBLK; lba += 128) {
		struct ferry_nvme_sqe s = h_sqe(0, 1);
		h_rw(&s, FERRY_NVME_CMD_READ, lba, 128);
		h_prp(h, &s, rb, 128 * 512, 0);
		cr_assert_eq(h_cmd(h, 1, &s, NULL), 0);
		cr_assert_eq(memcmp(hm_ptr(h->hm, rb), r->shadow + (uint64_t)lba * 512, 128 * 512), 0,
			     "final check at LBA %u", lba);
	}
	if (st.key) {
		/* The bottom of the stack holds ciphertext (plus PI), not the host's data. */
		struct ferry_bdev *bottom = st.bdevs[0];
		uint32_t bs = ferry_bdev_get_block_size(bottom);
		uint8_t *raw = malloc((size_t)NBLK * bs);
		struct iovec iov = {raw, (size_t)NBLK * bs};
		struct ferry_bdev_io io;
		memset(&io, 0, sizeof(io));
		io.type = FERRY_BDEV_IO_READ;
		io.num_blocks = NBLK;
		io.mem = (struct ferry_mem){.iov = &iov, .iovcnt = 1};
		io.cb = raw_done;
		int status = 1;
		io.cb_arg = &status;
		cr_assert_eq(ferry_bdev_submit(bottom, &io), 0);
		cr_assert_eq(status, 0);
		uint32_t same = 0;
		for (uint32_t lba = 0; lba < NBLK; lba++)
			same += memcmp(raw + (uint64_t)lba * bs, r->shadow + (uint64_t)lba * 512, 512) == 0;
		cr_assert_eq(same, 0, "%u blocks stored in clear", same);
		free(raw);
	}
	if (chan) {
		struct ferry_accel_stats as = {.size = sizeof(as)};
		cr_assert_eq(ferry_accel_get_stats(chan, &as), 0);
		cr_assert_geq(as.seqs_completed, r->reads + r->writes, "every read/write ran a sequence");
		cr_assert_eq(as.errors, 0);
	}
	h_destroy(h);
	destroy_stack(&st);
	ferry_accel_chan_destroy(chan);
	free(r->shadow);
	free(r->pool);
	free(r->busy);
	free(r);
}

Test(nvme_random, verified_100k_malloc, .timeout = 120)
{
	run_random("malloc", 0, 0, 100000, 0x1234);
}

Test(nvme_random, verified_100k_crypto_dif, .timeout = 120)
{
	run_random("crypto,dif,malloc520", 0, 0, 100000, 0x5eed);
}

Test(nvme_random, verified_async_passthru, .timeout = 120)
{
	run_random("passthru,malloc", 1, 0, 20000, 0x777);
}

Test(nvme_random, verified_crypto_dif_through_sequences, .timeout = 120)
{
	run_random("crypto,dif,malloc520", 0, 1, 20000, 0xacce1);
}

Test(nvme_random, verified_async_crypto_dif_through_sequences, .timeout = 120)
{
	run_random("crypto,dif,malloc520", 1, 1, 10000, 0xacce2);
}

/* ---- reset with writes in flight ----------------------------------------------------------- */

#define RW 64 /* writes in flight: 4 queues of 16 */

Test(nvme_random, reset_with_io_in_flight_loses_no_completed_write)
{
	struct host_opts o = {.async = 1};
	struct host *h = h_create(&o);
	h_up(h, 0);
	for (int q = 1; q <= 4; q++)
		h_ioq(h, (uint16_t)q, 32);
	const uint32_t nlb = 8, bytes = nlb * 512;
	uint64_t a = hm_alloc(h->hm, (uint64_t)RW * bytes, HM_PAGE);
	uint64_t b = hm_alloc(h->hm, (uint64_t)RW * bytes, HM_PAGE);
	uint64_t rb = hm_alloc(h->hm, bytes, HM_PAGE);
	h_fill(hm_ptr(h->hm, a), (size_t)RW * bytes, 1);
	h_fill(hm_ptr(h->hm, b), (size_t)RW * bytes, 2);
	/* Pattern A everywhere, all completed. */
	for (int i = 0; i < RW; i++) {
		struct ferry_nvme_sqe s = h_sqe(0, 1);
		h_rw(&s, FERRY_NVME_CMD_WRITE, (uint64_t)i * nlb, nlb);
		h_prp(h, &s, a + (uint64_t)i * bytes, bytes, 0);
		cr_assert_eq(h_cmd(h, 1, &s, NULL), 0);
	}
	/* Pattern B: 64 writes in flight; harvest completions until about a quarter are done. */
	uint16_t cid[RW];
	int completed[RW] = {0}, ncompleted = 0;
	for (int i = 0; i < RW; i++) {
		struct ferry_nvme_sqe s = h_sqe(0, 1);
		h_rw(&s, FERRY_NVME_CMD_WRITE, (uint64_t)i * nlb, nlb);
		h_prp(h, &s, b + (uint64_t)i * bytes, bytes, 0);
		cid[i] = h_submit(h, 1 + i % 4, &s);
	}
	h->hm->poll_max = 1; /* trickle: one transfer per poll */
	for (int iter = 0; iter < 10000 && ncompleted < RW / 4; iter++) {
		ferry_nvme_ctrlr_poll(h->ctrlr, 64);
		for (int q = 1; q <= 4; q++) {
			struct ferry_nvme_cqe e;
			while (h_peek(h, q, &e)) {
				cr_assert_eq(cqe_st(&e), 0);
				for (int i = 0; i < RW; i++)
					if (cid[i] == e.cid && 1 + i % 4 == q) {
						completed[i] = 1;
						ncompleted++;
					}
			}
		}
	}
	cr_assert_gt(ncompleted, 0);
	cr_assert_lt(ncompleted, RW, "some writes must still be in flight");
	cr_assert_gt(h->hm->nops, 0, "transfers pending at the reset");
	h->hm->poll_max = 0;
	/* Reset: RDY stays 1 while the controller drains what it started, then clears. */
	h_wr32(h, FERRY_NVME_REG_CC, h_rd32(h, FERRY_NVME_REG_CC) & ~FERRY_NVME_CC_EN);
	cr_assert(h_rd32(h, FERRY_NVME_REG_CSTS) & FERRY_NVME_CSTS_RDY, "RDY cleared before draining");
	cr_assert(h_wait_csts(h, FERRY_NVME_CSTS_RDY, 0));
	cr_assert_eq(h->hm->nops, 0, "a transfer outlived the reset");
	for (int q = 1; q <= 4; q++)
		h->q[q].live = 0;
	cr_assert_eq(h_enable(h, 32, H_CC_DEFAULT), FERRY_NVME_CSTS_RDY);
	h_ioq(h, 1, 32);
	for (int i = 0; i < RW; i++) {
		struct ferry_nvme_sqe s = h_sqe(0, 1);
		h_rw(&s, FERRY_NVME_CMD_READ, (uint64_t)i * nlb, nlb);
		h_prp(h, &s, rb, bytes, 0);
		cr_assert_eq(h_cmd(h, 1, &s, NULL), 0);
		const uint8_t *got = hm_ptr(h->hm, rb);
		const uint8_t *wa = hm_ptr(h->hm, a + (uint64_t)i * bytes);
		const uint8_t *wbb = hm_ptr(h->hm, b + (uint64_t)i * bytes);
		if (completed[i]) {
			cr_assert_eq(memcmp(got, wbb, bytes), 0, "completed write %d lost", i);
		} else {
			for (uint32_t k = 0; k < nlb; k++)
				cr_assert(memcmp(got + k * 512, wa + k * 512, 512) == 0 ||
					  memcmp(got + k * 512, wbb + k * 512, 512) == 0,
					  "write %d block %u is neither old nor new data", i, k);
		}
	}
	/* Nothing from before the reset lands afterwards: new writes stick. */
	for (int i = 0; i < RW; i++) {
		struct ferry_nvme_sqe s = h_sqe(0, 1);
		h_rw(&s, FERRY_NVME_CMD_WRITE, (uint64_t)i * nlb, nlb);
		h_prp(h, &s, a + (uint64_t)i * bytes, bytes, 0);
		cr_assert_eq(h_cmd(h, 1, &s, NULL), 0);
	}
	for (int i = 0; i < 200; i++)
		h_poll(h);
	for (int i = 0; i < RW; i++) {
		struct ferry_nvme_sqe s = h_sqe(0, 1);
		h_rw(&s, FERRY_NVME_CMD_READ, (uint64_t)i * nlb, nlb);
		h_prp(h, &s, rb, bytes, 0);
		cr_assert_eq(h_cmd(h, 1, &s, NULL), 0);
		cr_assert_eq(memcmp(hm_ptr(h->hm, rb), hm_ptr(h->hm, a + (uint64_t)i * bytes), bytes), 0);
	}
	h_destroy(h);
}
