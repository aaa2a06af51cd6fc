/*
 * Randomized sequences (seeded): random chains of copy, fill, encrypt, decrypt, crc32c,
 * copy+crc32c, DIF insert/generate/verify/strip over random data, keys, LBAs and formats,
 * through random mixes of virtual buffers, real local buffers (some of them overwritten
 * later) and host memory of a mock PCI function. Each program runs twice, with the passes
 * on and with them off (software engine), or fused on the mock engine and unoptimised in
 * software; every observable byte (local buffers, host memory, CRC results) must match.
 */
#include "test_accel_util.h"

enum {
	K_REAL = 0,
	K_VIRT = 1,
	K_HOST = 2
};
#define MAX_LOCS 24
#define MAX_OPS 24

struct loc {
	int kind;
	size_t len;
	uint64_t fill_seed;
};

struct aop {
	int op;
	int dst, src;
	uint64_t tweak;
	uint8_t pattern;
	int ext_fmt;
};

struct prog {
	struct loc loc[MAX_LOCS];
	int nloc;
	struct aop op[MAX_OPS];
	int nop;
	uint32_t bs, n;
	struct ferry_crypto_key *key;
	struct ferry_dif_ctx ctx;
};

static struct ferry_device *dev;
static struct ferry_mock_host *host;
static struct ferry_memdomain *nvme;
#define HOST_REGION (512u * 1024u) /* bytes of host memory per run (at most 6 buffers) */
#define MAX_HOST_LOCS 6

static void setup(void)
{
	dev = tm_open("host_mem=2M,iova_size=2M,functions=nvme");
	host = tm_host(dev);
	nvme = tm_domain(dev, "nvme");
	tm_map(host, "nvme", 0, 0, 2 * HOST_REGION / TM_PAGE, TM_RW);
}

static void teardown(void)
{
	ferry_mock_host_close(host);
	ferry_device_close(dev);
}

static int new_loc(struct prog *p, int kind, size_t len, uint64_t *seed)
{
	cr_assert_lt(p->nloc, MAX_LOCS);
	int hosts = 0;
	for (int i = 0; i < p->nloc; i++)
		hosts += p->loc[i].kind == K_HOST;
	if (kind == K_HOST && hosts >= MAX_HOST_LOCS)
		kind = K_REAL;
	p->loc[p->nloc] = (struct loc){kind, len, tm_rand(seed)};
	return p->nloc++;
}

/* Generation state of a location: what it holds at this point of the program. */
struct lstate {
	int init;  /* written (or a real/host buffer, initialised with random bytes) */
	int ext;   /* holds extended blocks */
	int pi_ok; /* ... with valid PI */
};

/* A destination of @len bytes: a new buffer, or (35%) an existing one overwritten. */
static int pick_dst(struct prog *p, const struct lstate *ls, size_t len, int avoid, int allow_host,
		    uint64_t *seed)
{
	uint64_t r = tm_rand(seed) % 100;
	if (r < 35) {
		int cand[MAX_LOCS], nc = 0;
		for (int i = 0; i < p->nloc; i++)
			if (i != avoid && p->loc[i].len == len)
				cand[nc++] = i;
		if (nc)
			return cand[tm_rand(seed) % (uint64_t)nc];
	}
	(void)ls;
	if (r < 75)
		return new_loc(p, K_VIRT, len, seed);
	if (r < 95 || !allow_host)
		return new_loc(p, K_REAL, len, seed);
	return new_loc(p, K_HOST, len, seed);
}

static int pick_src(struct prog *p, const struct lstate *ls, int last, uint64_t *seed)
{
	if (tm_rand(seed) % 100 < 60)
		return last;
	int cand[MAX_LOCS], nc = 0;
	for (int i = 0; i < p->nloc; i++)
		if (ls[i].init)
			cand[nc++] = i;
	return cand[tm_rand(seed) % (uint64_t)nc];
}

static void gen(struct prog *p, uint64_t *seed, int allow_host)
{
	struct lstate ls[MAX_LOCS];
	memset(p, 0, sizeof(*p));
	memset(ls, 0, sizeof(ls));
	p->bs = (tm_rand(seed) & 1) ? 4096 : 512;
	p->n = 1 + (uint32_t)(tm_rand(seed) % 6);
	enum ferry_cipher c = (tm_rand(seed) & 1) ? FERRY_CIPHER_AES_XTS_128
						  : FERRY_CIPHER_AES_XTS_256;
	p->key = ta_key(tm_rand(seed), c, p->bs == 4096 && (tm_rand(seed) & 1) ? 4096 : 512);
	p->ctx = ta_dif(p->bs, 1, (enum ferry_dif_type)(1 + tm_rand(seed) % 3),
			(uint32_t)tm_rand(seed));
	size_t plain = (size_t)p->n * p->bs, ext = (size_t)p->n * (p->bs + 8);
	int last = new_loc(p, allow_host && (tm_rand(seed) & 1) ? K_HOST : K_REAL, plain, seed);
	ls[last].init = 1;
	int steps = 2 + (int)(tm_rand(seed) % 14);
	for (int s = 0; s < steps && p->nop < MAX_OPS - 3 && p->nloc < MAX_LOCS - 4; s++) {
		struct aop *o = &p->op[p->nop];
		int src = pick_src(p, ls, last, seed);
		o->tweak = tm_rand(seed) % 100000;
		o->pattern = (uint8_t)tm_rand(seed);
		o->src = src;
		uint64_t r = tm_rand(seed) % 100;
		if (!ls[src].ext) {
			if (r < 25)
				o->op = FERRY_ACCEL_OP_COPY;
			else if (r < 40)
				o->op = FERRY_ACCEL_OP_ENCRYPT;
			else if (r < 50)
				o->op = FERRY_ACCEL_OP_DECRYPT;
			else if (r < 60)
				o->op = FERRY_ACCEL_OP_CRC32C;
			else if (r < 68)
				o->op = FERRY_ACCEL_OP_COPY_CRC32C;
			else if (r < 72)
				o->op = FERRY_ACCEL_OP_FILL;
			else
				o->op = FERRY_ACCEL_OP_DIF_INSERT;
		} else {
			if (r < 30)
				o->op = FERRY_ACCEL_OP_COPY;
			else if (r < 45)
				o->op = FERRY_ACCEL_OP_DIF_GENERATE;
			else if (r < 55)
				o->op = FERRY_ACCEL_OP_CRC32C;
			else if (r < 70 && ls[src].pi_ok)
				o->op = FERRY_ACCEL_OP_DIF_VERIFY;
			else if (ls[src].pi_ok)
				o->op = FERRY_ACCEL_OP_DIF_STRIP;
			else
				o->op = FERRY_ACCEL_OP_DIF_GENERATE;
		}
		struct lstate out = ls[src];
		size_t len = ls[src].ext ? ext : plain;
		switch (o->op) {
		case FERRY_ACCEL_OP_CRC32C:
		case FERRY_ACCEL_OP_DIF_VERIFY:
			o->dst = -1;
			break;
		case FERRY_ACCEL_OP_FILL:
		case FERRY_ACCEL_OP_DIF_GENERATE:
			o->dst = src; /* in place */
			out.pi_ok = o->op == FERRY_ACCEL_OP_DIF_GENERATE;
			break;
		case FERRY_ACCEL_OP_ENCRYPT:
		case FERRY_ACCEL_OP_DECRYPT:
			o->dst = tm_rand(seed) % 8 == 0
					 ? src /* in place */
					 : pick_dst(p, ls, len, src, allow_host, seed);
			break;
		case FERRY_ACCEL_OP_DIF_INSERT:
			o->dst = pick_dst(p, ls, ext, src, allow_host, seed);
			out.ext = out.pi_ok = 1;
			break;
		case FERRY_ACCEL_OP_DIF_STRIP:
			o->dst = pick_dst(p, ls, plain, src, allow_host, seed);
			out.ext = out.pi_ok = 0;
			break;
		default:
			o->dst = pick_dst(p, ls, len, src, allow_host, seed);
			break;
		}
		if (o->dst >= 0) {
			ls[o->dst] = out;
			ls[o->dst].init = 1;
			last = o->dst;
		}
		p->nop++;
	}
	/* make the last result and a random other virtual buffer observable */
	for (int k = 0; k < 2; k++) {
		int from = last;
		if (k == 1) {
			from = -1;
			for (int i = 0; i < p->nloc; i++)
				if (ls[i].init && p->loc[i].kind == K_VIRT && tm_rand(seed) % 2)
					from = i;
			if (from < 0)
				break;
		}
		struct aop *o = &p->op[p->nop++];
		o->op = FERRY_ACCEL_OP_COPY;
		o->src = from;
		o->dst = new_loc(p, allow_host && (tm_rand(seed) & 1) ? K_HOST : K_REAL,
				 p->loc[from].len, seed);
	}
}

/* One execution of a program on a channel. */
struct run {
	uint8_t *buf[MAX_LOCS];
	struct iovec iov[MAX_LOCS];
	struct ferry_mem mem[MAX_LOCS];
	uint32_t crc[MAX_OPS];
};

static void run_prog(const struct prog *p, struct ferry_accel_chan *ch, int region, struct run *r)
{
	uint64_t hoff = (uint64_t)region * HOST_REGION;
	memset(r, 0, sizeof(*r));
	for (int i = 0; i < p->nloc; i++) {
		const struct loc *l = &p->loc[i];
		uint64_t s = l->fill_seed;
		if (l->kind == K_REAL) {
			r->buf[i] = malloc(l->len);
			ta_fill_rand(r->buf[i], l->len, &s);
			r->mem[i] = ta_sys(&r->iov[i], r->buf[i], l->len);
		} else if (l->kind == K_VIRT) {
			r->mem[i] = ta_virt(ch, &r->iov[i], l->len);
		} else {
			cr_assert_leq(hoff + l->len, (uint64_t)(region + 1) * HOST_REGION);
			ta_fill_rand(ferry_mock_host_ptr(host, hoff, l->len), l->len, &s);
			r->iov[i] = (struct iovec){(void *)(uintptr_t)hoff, l->len};
			r->mem[i] =
				(struct ferry_mem){.domain = nvme, .iov = &r->iov[i], .iovcnt = 1};
			hoff += (l->len + 4095) & ~4095ull;
		}
	}
	struct ferry_seq *s = ta_seq(ch);
	for (int k = 0; k < p->nop; k++) {
		const struct aop *o = &p->op[k];
		struct ferry_mem *d = o->dst >= 0 ? &r->mem[o->dst] : NULL, *sm = &r->mem[o->src];
		int rc = -1;
		switch (o->op) {
		case FERRY_ACCEL_OP_COPY:
			rc = ferry_seq_append_copy(s, d, sm, NULL, NULL);
			break;
		case FERRY_ACCEL_OP_FILL:
			rc = ferry_seq_append_fill(s, d, o->pattern, NULL, NULL);
			break;
		case FERRY_ACCEL_OP_ENCRYPT:
			rc = ferry_seq_append_encrypt(s, d, sm, p->key, o->tweak, NULL, NULL);
			break;
		case FERRY_ACCEL_OP_DECRYPT:
			rc = ferry_seq_append_decrypt(s, d, sm, p->key, o->tweak, NULL, NULL);
			break;
		case FERRY_ACCEL_OP_CRC32C:
			rc = ferry_seq_append_crc32c(s, sm, (uint32_t)o->tweak, &r->crc[k], NULL,
						     NULL);
			break;
		case FERRY_ACCEL_OP_COPY_CRC32C:
			rc = ferry_seq_append_copy_crc32c(s, d, sm, 0, &r->crc[k], NULL, NULL);
			break;
		case FERRY_ACCEL_OP_DIF_INSERT:
			rc = ferry_seq_append_dif_insert(s, d, sm, &p->ctx, p->n, NULL, NULL);
			break;
		case FERRY_ACCEL_OP_DIF_GENERATE:
			rc = ferry_seq_append_dif_generate(s, d, &p->ctx, p->n, NULL, NULL);
			break;
		case FERRY_ACCEL_OP_DIF_VERIFY:
			rc = ferry_seq_append_dif_verify(s, sm, &p->ctx, p->n, NULL, NULL, NULL);
			break;
		case FERRY_ACCEL_OP_DIF_STRIP:
			rc = ferry_seq_append_dif_strip(s, d, sm, &p->ctx, p->n, NULL, NULL, NULL);
			break;
		}
		cr_assert_eq(rc, 0, "append op %d (%s): %s", k,
			     ferry_accel_opcode_name((enum ferry_accel_opcode)o->op),
			     ferry_last_error());
	}
	int st = ta_run(ch, s);
	cr_assert_eq(st, 0, "sequence failed: %d", st);
}

static void compare_runs(const struct prog *p, struct run *a, int ra, struct run *b, int rb, int it)
{
	uint64_t ha = (uint64_t)ra * HOST_REGION, hb = (uint64_t)rb * HOST_REGION;
	for (int i = 0; i < p->nloc; i++) {
		const struct loc *l = &p->loc[i];
		if (l->kind == K_REAL)
			cr_assert_eq(memcmp(a->buf[i], b->buf[i], l->len), 0,
				     "program %d: local buffer %d differs", it, i);
		if (l->kind == K_HOST) {
			cr_assert_eq(memcmp(ferry_mock_host_ptr(host, ha, l->len),
					    ferry_mock_host_ptr(host, hb, l->len), l->len),
				     0, "program %d: host buffer %d differs", it, i);
			ha += (l->len + 4095) & ~4095ull;
			hb += (l->len + 4095) & ~4095ull;
		}
	}
	for (int k = 0; k < p->nop; k++)
		cr_assert_eq(a->crc[k], b->crc[k], "program %d: crc of op %d differs", it, k);
}

static void free_run(const struct prog *p, struct ferry_accel_chan *ch, struct run *r)
{
	for (int i = 0; i < p->nloc; i++) {
		if (p->loc[i].kind == K_REAL)
			free(r->buf[i]);
		else if (p->loc[i].kind == K_VIRT)
			ta_put(ch, &r->mem[i]);
	}
}

static void random_programs(struct ferry_accel_chan *opt, struct ferry_accel_chan *ref, int count,
			    uint64_t seed, int allow_host)
{
	static struct run ra, rb;
	for (int it = 0; it < count; it++) {
		struct prog p;
		gen(&p, &seed, allow_host);
		run_prog(&p, opt, 0, &ra);
		run_prog(&p, ref, 1, &rb);
		compare_runs(&p, &ra, 0, &rb, 1, it);
		free_run(&p, opt, &ra);
		free_run(&p, ref, &rb);
		ferry_crypto_key_destroy(p.key);
	}
}

TestSuite(seq_random, .init = setup, .fini = teardown);

Test(seq_random, passes_on_equal_passes_off_software)
{
	struct ferry_accel_chan *on = ta_chan(NULL, 0);
	struct ferry_accel_chan *off = ta_chan(NULL,
					       FERRY_ACCEL_PASS_ELIDE | FERRY_ACCEL_PASS_FUSE);
	random_programs(on, off, 4000, 0x5eed0001ull, 1);
	struct ferry_accel_stats st = ta_stats(on);
	cr_assert_gt(st.copies_elided, 50, "the programs exercise elision (%llu)",
		     (unsigned long long)st.copies_elided);
	cr_assert_eq(ta_stats(off).copies_elided, 0);
	cr_assert_lt(st.bufs_taken, ta_stats(off).bufs_taken);
	ferry_accel_chan_destroy(on);
	ferry_accel_chan_destroy(off);
}

Test(seq_random, mock_engine_equal_software_unoptimised)
{
	struct ferry_accel_chan *hw = ta_chan(dev, 0);
	struct ferry_accel_chan *off = ta_chan(NULL,
					       FERRY_ACCEL_PASS_ELIDE | FERRY_ACCEL_PASS_FUSE);
	random_programs(hw, off, 1500, 0x5eed0002ull, 1);
	struct ferry_accel_stats st = ta_stats(hw);
	cr_assert_gt(st.copies_elided, 30);
	uint64_t sw = 0;
	for (int i = 0; i < FERRY_ACCEL_OP_COUNT; i++)
		sw += st.ops_sw[i];
	cr_assert_eq(sw, 0, "the mock engine runs every op");
	cr_assert_eq(st.bounces, 0, "the mock engine reaches its own host memory");
	ferry_accel_chan_destroy(hw);
	ferry_accel_chan_destroy(off);
}

Test(seq_random, elision_only_on_engine_equal_software)
{
	struct ferry_accel_chan *hw = ta_chan(dev, FERRY_ACCEL_PASS_FUSE);
	struct ferry_accel_chan *sw = ta_chan(NULL, 0);
	random_programs(hw, sw, 1000, 0x5eed0003ull, 1);
	cr_assert_eq(ta_stats(hw).fusions, 0);
	ferry_accel_chan_destroy(hw);
	ferry_accel_chan_destroy(sw);
}
