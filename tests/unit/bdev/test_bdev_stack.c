/*
 * The crypto -> dif -> malloc(520) stack: random verified I/Os (seeded; random LBA, 1..8
 * blocks, read/write mix, some without a sequence, some write zeroes, up to 8 in flight on
 * disjoint ranges) against a shadow copy, then a check of every stored byte (ciphertext with
 * the LBA as tweak, PI with the LBA as reference tag). 100 000 I/Os on the software engine
 * from local memory; 5 000 on the mock engine from host memory (the mock PCIe function's
 * domain), and 5 000 on the software engine from host memory. Per-I/O counters on both engines: fused operations and pool buffers per write and
 * per read (target with fusion on the mock engine: at most 1 pool buffer per write).
 */
#include "test_vbdev_util.h"

#define BS 512u
#define NBLK 2048u
#define MAXN 8u
#define QD 8u
#define APP 0x4afe

struct slot {
	struct ferry_bdev_io io;
	uint8_t *local; /* the slot's buffer as the test sees it */
	struct iovec iov;
	int busy, done, write, zero;
	uint64_t lba;
	uint32_t n;
};

struct rig {
	struct ferry_device *dev; /* mock, or NULL for the software engine */
	struct ferry_mock_host *host;
	struct ferry_memdomain *hdom; /* host domain of the slots, or NULL (local memory) */
	struct ferry_accel_chan *ch;
	struct ferry_crypto_key *key;
	struct ferry_bdev *mal, *dif, *cry;
	struct tv_env env;
	struct slot slots[QD];
	uint8_t *shadow;
	uint64_t seed;
	uint64_t ios, reads, writes, zeroes, noseq, retries;
};

/* @p mock: 0 software engine and local memory; 1 mock engine and host memory; 2 software
 * engine and host memory (the mock device only provides the host's domain). */
static void rig_open(struct rig *r, int mock)
{
	memset(r, 0, sizeof(*r));
	if (mock) {
		r->dev = tm_open("host_mem=1M,functions=nvme");
		r->host = tm_host(r->dev);
		r->hdom = tm_domain(r->dev, "nvme");
		tm_map(r->host, "nvme", 0, 0, QD, TM_RW);
	}
	r->ch = ta_chan(mock == 1 ? r->dev : NULL, 0);
	r->key = ta_key(0xc0ffee, FERRY_CIPHER_AES_XTS_128, BS);
	r->mal = tv_malloc("mal", BS, 8, NBLK, 1);
	r->dif = tv_dif("dif", r->mal, 1, TV_CHECK_ALL, APP, 0xffff);
	r->cry = tv_crypto("cry", r->dif, r->key);
	r->env = (struct tv_env){r->ch, r->hdom};
	for (uint32_t i = 0; i < QD; i++) {
		struct slot *s = &r->slots[i];
		if (mock) {
			s->local = ferry_mock_host_ptr(r->host, (uint64_t)i * TM_PAGE, MAXN * BS);
			cr_assert_not_null(s->local);
		} else {
			s->local = malloc(MAXN * BS);
		}
	}
	r->shadow = calloc(NBLK, BS);
	/* Format: zeroes with valid PI everywhere (a fresh malloc base has none). */
	cr_assert_eq(tv_io(&r->env, r->cry, FERRY_BDEV_IO_WRITE_ZEROES, 0, NBLK, NULL, 0), 0);
}

static void rig_close(struct rig *r)
{
	cr_assert_eq(ferry_bdev_destroy(r->cry), 0);
	cr_assert_eq(ferry_bdev_destroy(r->dif), 0);
	cr_assert_eq(ferry_bdev_destroy(r->mal), 0);
	ferry_crypto_key_destroy(r->key);
	ferry_accel_chan_destroy(r->ch);
	for (uint32_t i = 0; i < QD; i++)
		if (!r->dev)
			free(r->slots[i].local);
	free(r->shadow);
	if (r->dev) {
		ferry_mock_host_close(r->host);
		ferry_device_close(r->dev);
	}
}

static const char *rig_name(int mock)
{
	return mock == 1 ? "mock" : mock == 2 ? "sw, host memory" : "sw";
}

static struct ferry_mem slot_mem(struct rig *r, uint32_t i, size_t len)
{
	struct slot *s = &r->slots[i];
	s->iov.iov_base = r->hdom ? (void *)(uintptr_t)((uint64_t)i * TM_PAGE) : (void *)s->local;
	s->iov.iov_len = len;
	return (struct ferry_mem){.domain = r->hdom, .iov = &s->iov, .iovcnt = 1};
}

static void slot_cb(struct ferry_bdev_io *io, void *arg)
{
	(void)io;
	struct slot *s = arg;
	s->done = 1;
}

/* Check and free the completed slots; returns how many were reaped. */
static uint32_t reap(struct rig *r)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < QD; i++) {
		struct slot *s = &r->slots[i];
		if (!s->busy || !s->done)
			continue;
		cr_assert_eq(s->io.status, 0,
			     "I/O %llu: %s of %u blocks at %llu failed: %d (error %d "
			     "block %llu)",
			     (unsigned long long)r->ios,
			     s->zero    ? "write zeroes"
			     : s->write ? "write"
					: "read",
			     s->n, (unsigned long long)s->lba, s->io.status, s->io.error,
			     (unsigned long long)s->io.error_block);
		if (!s->write && !s->zero)
			cr_assert_eq(memcmp(s->local, r->shadow + s->lba * BS, (size_t)s->n * BS),
				     0, "read of %u blocks at %llu differs from the shadow", s->n,
				     (unsigned long long)s->lba);
		s->busy = 0;
		s->done = 0;
		n++;
	}
	return n;
}

static int overlaps(const struct rig *r, uint64_t lba, uint32_t n)
{
	for (uint32_t i = 0; i < QD; i++) {
		const struct slot *s = &r->slots[i];
		if (s->busy && lba < s->lba + s->n && s->lba < lba + n)
			return 1;
	}
	return 0;
}

static void drain(struct rig *r, uint32_t want_free)
{
	uint64_t end = tm_now_ns() + 10000000000ull;
	for (;;) {
		uint32_t busy = 0;
		for (uint32_t i = 0; i < QD; i++)
			busy += (uint32_t)r->slots[i].busy;
		if (QD - busy >= want_free)
			return;
		cr_assert_lt(tm_now_ns(), end, "I/Os stuck");
		tv_poll(&r->env);
		reap(r);
	}
}

/* Submit one random I/O. @p noseq_pct of the reads/writes go without a sequence. */
static void one_io(struct rig *r, uint32_t noseq_pct)
{
	uint64_t x = tm_rand(&r->seed);
	uint32_t n = 1 + (uint32_t)(x % MAXN);
	uint64_t lba = (x >> 8) % (NBLK - n + 1);
	uint32_t kind = (uint32_t)((x >> 40) % 1000);
	int zero = kind < 5, write = !zero && kind < 505;
	int seq = !zero && (uint32_t)((x >> 50) % 100) >= noseq_pct;
	drain(r, 1);
	uint64_t end = tm_now_ns() + 10000000000ull;
	while (overlaps(r, lba, n)) {
		cr_assert_lt(tm_now_ns(), end, "overlapping I/O stuck");
		tv_poll(&r->env);
		reap(r);
	}
	uint32_t i = 0;
	while (r->slots[i].busy)
		i++;
	struct slot *s = &r->slots[i];
	s->lba = lba;
	s->n = n;
	s->write = write;
	s->zero = zero;
	s->busy = 1;
	s->done = 0;
	if (write) {
		ta_fill_rand(s->local, (size_t)n * BS, &r->seed);
		memcpy(r->shadow + lba * BS, s->local, (size_t)n * BS);
	} else if (zero) {
		memset(r->shadow + lba * BS, 0, (size_t)n * BS);
	} else {
		memset(s->local, 0xdd, (size_t)n * BS);
	}
	for (;;) {
		memset(&s->io, 0, sizeof(s->io));
		s->io.type = zero    ? FERRY_BDEV_IO_WRITE_ZEROES
			     : write ? FERRY_BDEV_IO_WRITE
				     : FERRY_BDEV_IO_READ;
		s->io.offset_blocks = lba;
		s->io.num_blocks = n;
		if (!zero)
			s->io.mem = slot_mem(r, i, (size_t)n * BS);
		s->io.cb = slot_cb;
		s->io.cb_arg = s;
		if (seq)
			cr_assert_eq(ferry_seq_create(r->ch, &s->io.seq), 0);
		int rc = ferry_bdev_submit(r->cry, &s->io);
		if (rc == 0)
			break;
		cr_assert_eq(rc, -ENOMEM, "submit: %d (%s)", rc, ferry_last_error());
		if (s->io.seq)
			ferry_seq_abort(s->io.seq);
		r->retries++;
		tv_poll(&r->env);
		reap(r);
	}
	r->ios++;
	r->zeroes += (uint64_t)zero;
	r->writes += (uint64_t)write;
	r->reads += (uint64_t)(!zero && !write);
	r->noseq += (uint64_t)(!seq && !zero);
}

/* Every stored byte: AES-XTS(shadow, tweak = LBA) with PI (ref tag = LBA, app tag APP). */
static void check_storage(struct rig *r)
{
	size_t plain = (size_t)NBLK * BS, ext = (size_t)NBLK * (BS + 8);
	uint8_t *enc = malloc(plain), *exp = malloc(ext), *raw = malloc(ext);
	struct iovec s = {r->shadow, plain}, e = {enc, plain}, x = {exp, ext};
	cr_assert_eq(ferry_crypto_encrypt(r->key, &e, 1, &s, 1, 0), 0);
	struct ferry_dif_ctx c;
	cr_assert_eq(ferry_dif_ctx_init(&c, BS, 8, 1, FERRY_DIF_TYPE1, TV_CHECK_ALL, 0, APP,
					0xffff),
		     0);
	cr_assert_eq(ferry_dif_insert(&c, &x, 1, &e, 1, NBLK), 0);
	tv_raw(r->mal, FERRY_BDEV_IO_READ, 0, NBLK, raw);
	for (uint32_t b = 0; b < NBLK; b++)
		cr_assert_eq(memcmp(raw + (size_t)b * (BS + 8), exp + (size_t)b * (BS + 8), BS + 8),
			     0, "stored block %u is not encrypt+PI of the shadow", b);
	free(enc);
	free(exp);
	free(raw);
}

static void random_run(int mock, uint64_t nios, uint64_t seed)
{
	struct rig r;
	rig_open(&r, mock);
	r.seed = seed;
	uint64_t t0 = tm_now_ns();
	for (uint64_t k = 0; k < nios; k++)
		one_io(&r, 10);
	drain(&r, QD);
	double secs = (double)(tm_now_ns() - t0) / 1e9;
	cr_assert_eq(r.reads + r.writes + r.zeroes, nios);
	cr_assert_gt(r.zeroes, 0);
	cr_assert_gt(r.noseq, 0);
	check_storage(&r);
	struct ferry_accel_stats st = ta_stats(r.ch);
	cr_assert_eq(st.bufs_in_use, 0);
	cr_assert_eq(st.errors, 0);
	fprintf(stderr,
		"stack[%s]: %llu I/Os (%llu reads, %llu writes, %llu write zeroes, %llu without "
		"sequence, %llu -ENOMEM retries) in %.2f s; fusions %llu, pool buffers %llu, "
		"sw fallbacks %llu\n",
		rig_name(mock), (unsigned long long)r.ios, (unsigned long long)r.reads,
		(unsigned long long)r.writes, (unsigned long long)r.zeroes,
		(unsigned long long)r.noseq, (unsigned long long)r.retries, secs,
		(unsigned long long)st.fusions, (unsigned long long)st.bufs_taken,
		(unsigned long long)st.sw_fallbacks);
	rig_close(&r);
}

Test(bdev_stack, random_100k_software_engine, .timeout = 60)
{
	random_run(0, 100000, 0x5eed0001);
}

Test(bdev_stack, random_5k_mock_engine_host_memory, .timeout = 60)
{
	random_run(1, 5000, 0x5eed0002);
}

Test(bdev_stack, random_5k_software_engine_host_memory, .timeout = 60)
{
	random_run(2, 5000, 0x5eed0003);
}

/* Per-I/O counters of @p n writes then @p n reads of 8 blocks, one at a time, all with a
 * sequence. */
struct per_io {
	double w_fusions, w_bufs, w_copies, r_fusions, r_bufs, r_copies;
};

static double delta(uint64_t a, uint64_t b, uint32_t n)
{
	return (double)(b - a) / n;
}

static struct per_io measure(struct rig *r, uint32_t n)
{
	struct per_io p;
	struct ferry_accel_stats a = ta_stats(r->ch), b;
	for (uint32_t k = 0; k < n; k++) {
		uint64_t lba = (uint64_t)(k * MAXN) % NBLK;
		ta_fill_rand(r->slots[0].local, MAXN * BS, &r->seed);
		memcpy(r->shadow + lba * BS, r->slots[0].local, MAXN * BS);
		struct ferry_mem m = slot_mem(r, 0, MAXN * BS);
		cr_assert_eq(tv_io(&r->env, r->cry, FERRY_BDEV_IO_WRITE, lba, MAXN, &m, 1), 0);
	}
	b = ta_stats(r->ch);
	p.w_fusions = delta(a.fusions, b.fusions, n);
	p.w_bufs = delta(a.bufs_taken, b.bufs_taken, n);
	p.w_copies =
		delta(a.ops_hw[FERRY_ACCEL_OP_COPY] + a.ops_sw[FERRY_ACCEL_OP_COPY] + a.bounces,
		      b.ops_hw[FERRY_ACCEL_OP_COPY] + b.ops_sw[FERRY_ACCEL_OP_COPY] + b.bounces, n);
	a = b;
	for (uint32_t k = 0; k < n; k++) {
		uint64_t lba = (uint64_t)(k * MAXN) % NBLK;
		struct ferry_mem m = slot_mem(r, 0, MAXN * BS);
		cr_assert_eq(tv_io(&r->env, r->cry, FERRY_BDEV_IO_READ, lba, MAXN, &m, 1), 0);
		cr_assert_eq(memcmp(r->slots[0].local, r->shadow + lba * BS, MAXN * BS), 0);
	}
	b = ta_stats(r->ch);
	p.r_fusions = delta(a.fusions, b.fusions, n);
	p.r_bufs = delta(a.bufs_taken, b.bufs_taken, n);
	p.r_copies =
		delta(a.ops_hw[FERRY_ACCEL_OP_COPY] + a.ops_sw[FERRY_ACCEL_OP_COPY] + a.bounces,
		      b.ops_hw[FERRY_ACCEL_OP_COPY] + b.ops_sw[FERRY_ACCEL_OP_COPY] + b.bounces, n);
	return p;
}

struct plans {
	char text[2][2048];
	int n;
};

static void plan_hook(void *arg, const struct ferry_seq *seq, const char *stage, const char *dump)
{
	(void)seq;
	struct plans *p = arg;
	if (strcmp(stage, "materialise") == 0 && p->n < 2)
		snprintf(p->text[p->n++], sizeof(p->text[0]), "%s", dump);
}

static void counters_case(int mock)
{
	struct rig r;
	rig_open(&r, mock);
	r.seed = 99;
	struct plans pl;
	memset(&pl, 0, sizeof(pl));
	cr_assert_eq(ferry_accel_chan_set_plan_hook(r.ch, FERRY_SEQ_DUMP_TEXT, plan_hook, &pl), 0);
	struct per_io p = measure(&r, 1);
	cr_assert_eq(ferry_accel_chan_set_plan_hook(r.ch, FERRY_SEQ_DUMP_TEXT, NULL, NULL), 0);
	fprintf(stderr, "stack[%s] write plan:\n%s\nstack[%s] read plan:\n%s\n", rig_name(mock),
		pl.text[0], rig_name(mock), pl.text[1]);
	p = measure(&r, 200);
	fprintf(stderr,
		"stack[%s] per I/O of %u blocks: write: %.2f fused ops, %.2f pool buffers, %.2f "
		"copies+bounces; read: %.2f fused ops, %.2f pool buffers, %.2f copies+bounces\n",
		rig_name(mock), MAXN, p.w_fusions, p.w_bufs, p.w_copies, p.r_fusions, p.r_bufs,
		p.r_copies);
	if (mock == 1) {
		/* Write: encrypt(host -> V) + dif-insert(V -> storage) as one fused operation,
		 * the final copy elided; read: dif-strip(storage -> V) + decrypt(V -> host). */
		cr_assert_eq(p.w_fusions, 1.0);
		cr_assert_eq(p.r_fusions, 1.0);
		cr_assert_leq(p.w_bufs, 1.0, "target: at most 1 pool buffer per write");
		cr_assert_leq(p.r_bufs, 1.0);
		cr_assert_eq(p.w_copies, 0.0);
		cr_assert_eq(p.r_copies, 0.0);
	} else if (mock == 2) {
		/* Software engine, host memory: the source is pulled into a bounce buffer (write)
		 * and the result pushed from one (read), besides the intermediate buffer. */
		cr_assert_eq(p.w_fusions, 0.0);
		cr_assert_eq(p.w_bufs, 2.0);
		cr_assert_eq(p.r_bufs, 2.0);
		cr_assert_eq(p.w_copies, 1.0);
		cr_assert_eq(p.r_copies, 1.0);
	} else {
		/* Software engine: the host/local source is read in place (local memory), the
		 * intermediate virtual buffer becomes one pool buffer, the final copy is elided. */
		cr_assert_eq(p.w_fusions, 0.0);
		cr_assert_eq(p.w_bufs, 1.0);
		cr_assert_eq(p.r_bufs, 1.0);
		cr_assert_eq(p.w_copies, 0.0);
		cr_assert_eq(p.r_copies, 0.0);
	}
	check_storage(&r);
	rig_close(&r);
}

Test(bdev_stack, per_io_counters_software_engine)
{
	counters_case(0);
}

Test(bdev_stack, per_io_counters_software_engine_host_memory)
{
	counters_case(2);
}

Test(bdev_stack, per_io_counters_mock_engine_fused)
{
	counters_case(1);
}

/* A PI error below the crypto bdev surfaces on the top I/O with its field and block, on
 * both engines (fused strip+decrypt on the mock). */
static void pi_error_case(int mock)
{
	struct rig r;
	rig_open(&r, mock);
	r.seed = 7;
	struct ferry_mem m = slot_mem(&r, 0, 4 * BS);
	ta_fill_rand(r.slots[0].local, 4 * BS, &r.seed);
	cr_assert_eq(tv_io(&r.env, r.cry, FERRY_BDEV_IO_WRITE, 100, 4, &m, 1), 0);
	uint8_t raw[BS + 8];
	tv_raw(r.mal, FERRY_BDEV_IO_READ, 102, 1, raw);
	raw[BS + 6] ^= 0x80; /* reference tag */
	tv_raw(r.mal, FERRY_BDEV_IO_WRITE, 102, 1, raw);
	ferry_log_set_handler(tm_quiet_log);
	for (int seq = 0; seq <= 1; seq++) {
		struct tv_done d;
		cr_assert_eq(tv_io_ex(&r.env, r.cry, FERRY_BDEV_IO_READ, 100, 4, &m, seq, &d),
			     -EILSEQ);
		cr_assert_eq(d.error, FERRY_BDEV_ERR_REFTAG, "seq %d: error %d", seq, d.error);
		cr_assert_eq(d.error_block, 102);
	}
	ferry_log_set_handler(NULL);
	struct ferry_accel_stats st = ta_stats(r.ch);
	cr_assert_eq(st.bufs_in_use, 0);
	/* Rewriting the block heals it. */
	cr_assert_eq(tv_io(&r.env, r.cry, FERRY_BDEV_IO_WRITE, 100, 4, &m, 1), 0);
	cr_assert_eq(tv_io(&r.env, r.cry, FERRY_BDEV_IO_READ, 100, 4, &m, 1), 0);
	rig_close(&r);
}

Test(bdev_stack, pi_error_through_crypto_software_engine)
{
	pi_error_case(0);
}

Test(bdev_stack, pi_error_through_crypto_mock_engine)
{
	pi_error_case(1);
}

Test(bdev_stack, pi_error_through_crypto_software_engine_host_memory)
{
	pi_error_case(2);
}
