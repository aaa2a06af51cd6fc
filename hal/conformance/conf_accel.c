/*
 * Conformance, the accel class (ferry/hal/accel.h): every single operation and every chain a
 * DMA engine declares in ferry_hal_dma_ops::accel, executed through the HAL (the engine's own
 * submit and poll on a channel of its DMA engine, never the SDK's sequences, so the SDK's
 * software engine cannot quietly run instead), on seeded random inputs, sizes, parameters and
 * scatter-gather layouts, and compared byte for byte with Ferry's public software kernels
 * (memcpy, ferry_crc32c, ferry_crypto_*, ferry_dif_* / ferry_dix_*) run on linear copies.
 *
 * One machinery serves single operations and chains: a "plan" is 1..4 operations, the data of
 * each flowing into the next (the link rule of ferry_hal_accel_chain). The software model runs
 * the plan step by step on linear buffers (step k turns the bytes op k reads into the bytes it
 * hands on: its destination, or its input for an op that writes nothing), the engine gets one
 * descriptor with the same operands scattered over random segments with gaps; afterwards every
 * real buffer must hold exactly what the model says (the destinations the new bytes, every
 * other operand its old ones) and no gap byte between segments may have changed.
 *
 * Chains declared with FERRY_HAL_ACCEL_CHAIN_F_VIRT_INTERMEDIATE get their links as accel
 * virtual buffers, obtained like the SDK's callers do (ferry_accel_get_buf() on a software-only
 * accel channel): addresses with no memory behind them, which the engine must never touch.
 * Chain ends that must be a PCI function's memory use the backend's conformance hooks
 * (conf_hooks::host_map), else the chain is skipped with the reason.
 *
 * Checks: accel.table_sane (the declared table), accel.single_ops, accel.chains,
 * accel.pi_errors (a corrupted guard / app tag / ref tag, a compare mismatch: -EILSEQ with the
 * failing op and block), accel.bad_address (an unmapped operand: -EFAULT, nothing written),
 * accel.exactly_once (a batch beyond what the engine holds: every descriptor back once).
 */
#include <stdio.h>
#include <stdlib.h>
#include <ferry/accel.h>
#include <ferry/crc.h>
#include <ferry/crypto.h>
#include <ferry/dif.h>
#include <ferry/memdomain.h>
#include "conf.h"

#define ACC_MAXSEG 8u       /* segments per operand */
#define ACC_GAP 24u         /* largest gap between two segments (bytes) */
#define ACC_CASES 20u       /* random cases per single operation */
#define ACC_CHAIN_CASES 12u /* random cases per declared chain */
#define ACC_TIMEOUT_NS 5000000000ull
#define ACC_STATUS_UNSET 0x7EADBEEF /* the engine must overwrite it */
#define ACC_MAX_DOMS 8u

#define OPND_S FERRY_HAL_ACCEL_OPND_SRC
#define OPND_D FERRY_HAL_ACCEL_OPND_DST
#define OPND_A FERRY_HAL_ACCEL_OPND_AUX
#define DOM_LOCAL FERRY_HAL_ACCEL_DOM_LOCAL
#define DOM_PCIE FERRY_HAL_ACCEL_DOM_PCIE
#define ALL_CHECKS (FERRY_DIF_CHECK_GUARD | FERRY_DIF_CHECK_APPTAG | FERRY_DIF_CHECK_REFTAG)

/* ---- the engine under test ---- */

struct acc {
	struct conf_ctx c;
	const struct ferry_hal_accel_ops *a;
	void *chan;                     /* a channel of the DMA engine: what every accel op gets */
	struct ferry_accel_chan *vchan; /* software-only accel channel: virtual buffers */
	const struct conf_hooks *hooks;
	struct ferry_memdomain *pcie[ACC_MAX_DOMS];
	uint32_t npcie;
};

static const char *op_name(enum ferry_accel_opcode op)
{
	const struct ferry_hal_accel_op_info *i = ferry_hal_accel_op_get_info(op);
	return i ? i->name : "(undefined)";
}

static uint8_t op_reads(enum ferry_accel_opcode op)
{
	const struct ferry_hal_accel_op_info *i = ferry_hal_accel_op_get_info(op);
	return i ? i->reads : 0;
}

static uint8_t op_writes(enum ferry_accel_opcode op)
{
	const struct ferry_hal_accel_op_info *i = ferry_hal_accel_op_get_info(op);
	return i ? i->writes : 0;
}

/* The operand holding the data an op consumes (the link rule of ferry_hal_accel_chain). */
static uint8_t data_in_opnd(enum ferry_accel_opcode op)
{
	return op == FERRY_ACCEL_OP_DIF_GENERATE ? OPND_D : OPND_S;
}

static int is_verify(enum ferry_accel_opcode op)
{
	return op == FERRY_ACCEL_OP_DIF_VERIFY || op == FERRY_ACCEL_OP_DIF_STRIP ||
	       op == FERRY_ACCEL_OP_DIX_VERIFY;
}

static void acc_open(const struct conf_param *p, struct acc *x)
{
	memset(x, 0, sizeof(*x));
	conf_open(p, &x->c);
	x->a = x->c.backend->dma->accel;
	if (!x->a) {
		conf_close(&x->c);
		CONF_SKIP("no accel table (ferry_hal_dma_ops::accel is NULL: the SDK's software "
			  "engine runs every accel operation)");
	}
	CONF_ASSERT(x->a->submit && x->a->poll, "accel submit and poll are required");
	struct ferry_dma_chan_opts o = {.size = sizeof(o)};
	int rc = x->c.backend->dma->chan_create(x->c.dev, &o, &x->chan);
	CONF_ASSERT(rc == 0 && x->chan, "chan_create for the accel ops: %d (%s); %s", rc,
		    ferry_strerror(rc), conf_last_error());
	x->hooks = conf_hooks_find(x->c.backend->name);
	x->npcie = conf_pcie_domains(&x->c, x->pcie, ACC_MAX_DOMS);
}

static void acc_close(struct acc *x)
{
	x->c.backend->dma->chan_destroy(x->chan);
	x->chan = NULL;
	if (x->vchan)
		ferry_accel_chan_destroy(x->vchan);
	x->vchan = NULL;
	conf_close(&x->c);
}

static int acc_reaches(const struct acc *x, const struct ferry_memdomain *d)
{
	return x->a->reaches && x->a->reaches(x->chan, d) != 0;
}

/*
 * Submit @p n descriptors (again while the engine accepts only part of them) and poll until
 * each came back exactly once, 5 s at most: only descriptors it was given, none twice, none
 * before it was accepted, user_ctx untouched, status written. Returns the number of partial
 * submits seen.
 */
static uint32_t acc_run(struct acc *x, struct ferry_hal_accel_desc **d, uint32_t n)
{
	uint8_t *seen = calloc(n ? n : 1, 1);
	struct ferry_hal_accel_desc *done[64];
	uint32_t sub = 0, got = 0, partial = 0;
	CONF_ASSERT(seen != NULL, "out of memory");
	for (uint32_t i = 0; i < n; i++) {
		d[i]->user_ctx = CONF_CTX(i);
		d[i]->status = ACC_STATUS_UNSET;
		memset(d[i]->reason, 0, sizeof(d[i]->reason));
	}
	uint64_t end = conf_now_ns() + ACC_TIMEOUT_NS;
	while (got < n) {
		if (sub < n) {
			int rc = x->a->submit(x->chan, d + sub, n - sub);
			CONF_ASSERT(rc >= 0 && (uint32_t)rc <= n - sub,
				    "accel submit of %u descriptors returned %d (%s); %s", n - sub,
				    rc, ferry_strerror(rc), conf_last_error());
			CONF_ASSERT(rc > 0 || sub > got,
				    "accel submit accepted nothing while nothing was in flight");
			partial += (uint32_t)rc < n - sub;
			sub += (uint32_t)rc;
		}
		int m = x->a->poll(x->chan, done, 64);
		CONF_ASSERT(m >= 0 && m <= 64, "accel poll(max 64) returned %d (%s)", m,
			    ferry_strerror(m));
		for (int j = 0; j < m; j++) {
			struct ferry_hal_accel_desc *r = done[j];
			uint32_t i = (uint32_t)((uintptr_t)(r ? r->user_ctx : NULL) - 0xC0F00000u);
			CONF_ASSERT(r && i < n && r == d[i],
				    "accel poll returned a descriptor it was not given (or changed "
				    "its user_ctx)");
			CONF_ASSERT(!seen[i], "descriptor %u returned twice by poll", i);
			CONF_ASSERT(i < sub, "descriptor %u returned before submit accepted it", i);
			CONF_ASSERT(r->status != ACC_STATUS_UNSET,
				    "descriptor %u returned without a status", i);
			int st = r->status;
			CONF_ASSERT(st == 0 || st == -EFAULT || st == -EIO || st == -EILSEQ ||
					    st == -EINVAL || st == -ECANCELED,
				    "descriptor %u: status %d (%s) is none of 0, -EFAULT, -EIO, "
				    "-EILSEQ, -EINVAL, -ECANCELED (ferry_hal_accel_desc::status)",
				    i, st, ferry_strerror(st));
			CONF_ASSERT(st == 0 || r->failed_op < r->nops,
				    "descriptor %u failed (%s) with failed_op %u of %u ops", i,
				    ferry_strerror(st), r->failed_op, r->nops);
			seen[i] = 1;
		}
		got += (uint32_t)m;
		if (m == 0) {
			CONF_ASSERT(conf_now_ns() < end,
				    "%u of %u descriptors not returned by poll after 5 s (%u "
				    "accepted)",
				    n - got, n, sub);
			conf_sleep_us(20);
		}
	}
	free(seen);
	return partial;
}

/* ---- operand buffers: scattered segments with guarded gaps ---- */

enum ab_kind {
	AB_NONE = 0,
	AB_SYS,  /* system memory */
	AB_HOST, /* a PCI function's host memory (conf_hooks::host_map) */
	AB_VIRT, /* an accel virtual buffer: no bytes */
	AB_BAD,  /* CONF_BAD_IOVA in a PCIe domain: no bytes */
};

struct abuf {
	enum ab_kind kind;
	uint64_t len;
	uint8_t *host;  /* the region as this process sees it */
	uintptr_t addr; /* address of region byte 0 in the operand's domain */
	size_t rlen;
	uint8_t *before; /* the region before the descriptor ran */
	uint32_t cnt;
	size_t off[ACC_MAXSEG]; /* region offset of each segment */
	struct iovec iov[ACC_MAXSEG];
	struct iovec *bad_iov; /* AB_BAD: one segment per page (allocated) */
	struct ferry_mem mem;
};

static size_t ab_region_len(uint64_t len)
{
	return (size_t)len + (ACC_MAXSEG + 1) * ACC_GAP;
}

/* Cut the logical buffer into 1..maxseg segments in shuffled address order with gaps. */
static void ab_layout(struct abuf *b, uint64_t *rng, uint32_t maxseg)
{
	uint32_t k = maxseg < b->len ? maxseg : (uint32_t)b->len, order[ACC_MAXSEG];
	k = 1 + (uint32_t)(conf_rand(rng) % k);
	uint64_t len[ACC_MAXSEG];
	conf_cut(rng, b->len, k, len, order);
	size_t pos = 0;
	for (uint32_t i = 0; i < k; i++) {
		uint32_t s = order[i];
		pos += conf_rand(rng) % ACC_GAP;
		b->off[s] = pos;
		b->iov[s] = (struct iovec){(void *)(b->addr + pos), (size_t)len[s]};
		pos += len[s];
	}
	b->cnt = k;
	b->mem = (struct ferry_mem){.iov = b->iov, .iovcnt = k};
}

static void ab_sys(struct abuf *b, uint64_t *rng, uint64_t len)
{
	memset(b, 0, sizeof(*b));
	b->kind = AB_SYS;
	b->len = len;
	b->rlen = ab_region_len(len);
	b->host = malloc(b->rlen);
	CONF_ASSERT(b->host != NULL, "out of memory for %zu bytes", b->rlen);
	conf_pattern(b->host, b->rlen, conf_rand(rng));
	b->addr = (uintptr_t)b->host;
	ab_layout(b, rng, ACC_MAXSEG);
}

/* 0, or -ENOTSUP when the hooks cannot map host memory (the caller skips). */
static int ab_host(struct acc *x, struct abuf *b, uint64_t *rng, uint64_t len,
		   struct ferry_memdomain *d)
{
	memset(b, 0, sizeof(*b));
	if (!x->hooks || !x->hooks->host_map)
		return -ENOTSUP;
	struct conf_host_range r;
	uint64_t want = (ab_region_len(len) + 4095) / 4096 * 4096;
	int rc = x->hooks->host_map(x->c.dev, d, want, &r);
	if (rc == -ENOTSUP)
		return rc;
	CONF_ASSERT(rc == 0 && r.len >= want, "host_map hook of %llu bytes through %s: %d (%s)",
		    (unsigned long long)want, ferry_memdomain_get_name(d), rc, ferry_strerror(rc));
	b->kind = AB_HOST;
	b->len = len;
	b->rlen = (size_t)want;
	b->host = r.host;
	b->addr = (uintptr_t)r.iova;
	conf_pattern(b->host, b->rlen, conf_rand(rng));
	ab_layout(b, rng, ACC_MAXSEG);
	b->mem.domain = d;
	return 0;
}

static void ab_virt(struct acc *x, struct abuf *b, uint64_t len)
{
	memset(b, 0, sizeof(*b));
	if (!x->vchan)
		CONF_RC(ferry_accel_chan_create(NULL, NULL, &x->vchan), 0,
			"ferry_accel_chan_create (software channel for virtual buffers)");
	void *buf = NULL, *ctx = NULL;
	struct ferry_memdomain *dom = NULL;
	CONF_RC(ferry_accel_get_buf(x->vchan, (size_t)len, &buf, &dom, &ctx), 0,
		"ferry_accel_get_buf");
	b->kind = AB_VIRT;
	b->len = len;
	b->cnt = 1;
	b->iov[0] = (struct iovec){buf, (size_t)len};
	b->mem = (struct ferry_mem){.domain = dom, .domain_ctx = ctx, .iov = b->iov, .iovcnt = 1};
}

/* @p len bytes at CONF_BAD_IOVA of @p d, in segments of at most a page (no wrap past 2^64). */
static void ab_bad(struct abuf *b, uint64_t len, struct ferry_memdomain *d)
{
	memset(b, 0, sizeof(*b));
	b->kind = AB_BAD;
	b->len = len;
	uint64_t left = len;
	uint32_t k = 0;
	struct iovec *v = b->bad_iov = calloc((size_t)(len / 4096 + 1), sizeof(*v));
	CONF_ASSERT(v != NULL, "out of memory");
	while (left) {
		uint64_t n = left < 4096 ? left : 4096;
		v[k++] = (struct iovec){CONF_BAD_IOVA, (size_t)n};
		left -= n;
	}
	b->cnt = k;
	b->mem = (struct ferry_mem){.domain = d, .iov = v, .iovcnt = k};
}

static int ab_real(const struct abuf *b)
{
	return b->kind == AB_SYS || b->kind == AB_HOST;
}

static void ab_put(struct abuf *b, const uint8_t *flat)
{
	uint64_t pos = 0;
	for (uint32_t i = 0; i < b->cnt; i++) {
		memcpy(b->host + b->off[i], flat + pos, b->iov[i].iov_len);
		pos += b->iov[i].iov_len;
	}
}

static void ab_get(const struct abuf *b, uint8_t *flat)
{
	uint64_t pos = 0;
	for (uint32_t i = 0; i < b->cnt; i++) {
		memcpy(flat + pos, b->host + b->off[i], b->iov[i].iov_len);
		pos += b->iov[i].iov_len;
	}
}

static void ab_snap(struct abuf *b)
{
	if (!ab_real(b))
		return;
	free(b->before);
	b->before = malloc(b->rlen);
	CONF_ASSERT(b->before != NULL, "out of memory");
	memcpy(b->before, b->host, b->rlen);
}

/* Region offset of the first changed byte outside the segments, or -1. */
static long ab_gap_changed(const struct abuf *b)
{
	for (size_t i = 0; i < b->rlen; i++) {
		if (b->host[i] == b->before[i])
			continue;
		int inside = 0;
		for (uint32_t s = 0; s < b->cnt && !inside; s++)
			inside = i >= b->off[s] && i < b->off[s] + b->iov[s].iov_len;
		if (!inside)
			return (long)i;
	}
	return -1;
}

static void ab_free(struct acc *x, struct abuf *b)
{
	if (b->kind == AB_SYS)
		free(b->host);
	if (b->kind == AB_VIRT)
		ferry_accel_put_buf(x->vchan, b->iov[0].iov_base, b->mem.domain, b->mem.domain_ctx);
	free(b->before);
	free(b->bad_iov);
	memset(b, 0, sizeof(*b));
}

/* ---- plans: 1..4 operations, the software model, the descriptor ---- */

enum form {
	F_ANY = 0,
	F_PLAIN, /* nblocks * block_size */
	F_EXT,   /* nblocks * (block_size + md_size) */
};

struct opspec {
	enum ferry_accel_opcode op;
	uint8_t fill;
	uint32_t crc_seed;
	struct ferry_crypto_key *key;
	uint64_t tweak;
	struct ferry_dif_ctx dif;
	uint32_t nblocks;
	uint64_t in_len, out_len, aux_len;
};

/* Where a PI error is planted: block @c block of op @c at's input, field @c field. */
struct corrupt {
	enum ferry_dif_field field; /* NONE: none */
	uint32_t at;
	uint64_t block;
	int via_data;    /* guard: flip a data byte instead of the stored guard */
	int compare_off; /* compare: flip this byte of the second operand (-1: none) */
};

struct plan {
	uint32_t nops;
	int32_t chain;
	int virt;
	const char *name; /* chain name, or NULL for a single op */
	struct opspec s[FERRY_HAL_ACCEL_CHAIN_MAX];
	/* buffers: src = op 0's input; out[k] = what op k writes to its destination (a link, or
	 * the final output); aux[k] = op k's second operand */
	struct abuf src, out[FERRY_HAL_ACCEL_CHAIN_MAX], aux[FERRY_HAL_ACCEL_CHAIN_MAX];
	/* the software model */
	uint8_t *m_src, *m_out[FERRY_HAL_ACCEL_CHAIN_MAX];
	uint8_t *m_aux_in[FERRY_HAL_ACCEL_CHAIN_MAX], *m_aux[FERRY_HAL_ACCEL_CHAIN_MAX];
	uint32_t m_crc[FERRY_HAL_ACCEL_CHAIN_MAX];
	struct ferry_dif_error m_err[FERRY_HAL_ACCEL_CHAIN_MAX];
	int m_status;
	uint32_t m_failed;
	uint64_t planted_block; /* bad_pi.block modulo the block count */
	int in_place;           /* single crypto op writing its source's bytes */
	struct ferry_hal_accel_desc d;
	char what[160]; /* the case, for messages */
};

/* Index of the buffer op k reads: -1 = src, j = out[j]. */
static int in_buf(const struct plan *p, uint32_t k)
{
	int b = -1;
	for (uint32_t j = 0; j < k; j++) {
		enum ferry_accel_opcode o = p->s[j].op;
		if ((op_writes(o) & OPND_D) && o != FERRY_ACCEL_OP_DIF_GENERATE)
			b = (int)j;
	}
	return b;
}

static struct abuf *buf_at(struct plan *p, int i)
{
	return i < 0 ? &p->src : &p->out[i];
}

static struct iovec lin(void *b, uint64_t len)
{
	return (struct iovec){b, (size_t)len};
}

/* One step of the model: @p cur (in_len bytes) -> @p next (out_len), @p aux in/out. */
static int sw_step(const struct opspec *s, uint8_t *cur, uint8_t *next, uint8_t *aux, uint32_t *crc,
		   struct ferry_dif_error *err)
{
	struct iovec ci = lin(cur, s->in_len), ni = lin(next, s->out_len),
		     ai = lin(aux, s->aux_len);
	if (s->op != FERRY_ACCEL_OP_FILL && s->in_len == s->out_len)
		memcpy(next, cur, s->in_len);
	switch (s->op) {
	case FERRY_ACCEL_OP_COPY:
		return 0;
	case FERRY_ACCEL_OP_FILL:
		memset(next, s->fill, s->out_len);
		return 0;
	case FERRY_ACCEL_OP_COMPARE:
		return memcmp(cur, aux, s->in_len) ? -EILSEQ : 0;
	case FERRY_ACCEL_OP_CRC32C:
	case FERRY_ACCEL_OP_COPY_CRC32C:
		*crc = ferry_crc32c(s->crc_seed, cur, s->in_len);
		return 0;
	case FERRY_ACCEL_OP_ENCRYPT:
		return ferry_crypto_encrypt(s->key, &ni, 1, &ci, 1, s->tweak);
	case FERRY_ACCEL_OP_DECRYPT:
		return ferry_crypto_decrypt(s->key, &ni, 1, &ci, 1, s->tweak);
	case FERRY_ACCEL_OP_DIF_GENERATE:
		return ferry_dif_generate(&s->dif, &ni, 1, s->nblocks);
	case FERRY_ACCEL_OP_DIF_VERIFY:
		return ferry_dif_verify(&s->dif, &ci, 1, s->nblocks, err);
	case FERRY_ACCEL_OP_DIF_STRIP:
		return ferry_dif_strip(&s->dif, &ni, 1, &ci, 1, s->nblocks, err);
	case FERRY_ACCEL_OP_DIF_INSERT:
		return ferry_dif_insert(&s->dif, &ni, 1, &ci, 1, s->nblocks);
	case FERRY_ACCEL_OP_DIX_GENERATE:
		return ferry_dix_generate(&s->dif, &ci, 1, &ai, 1, s->nblocks);
	case FERRY_ACCEL_OP_DIX_VERIFY:
		return ferry_dix_verify(&s->dif, &ci, 1, &ai, 1, s->nblocks, err);
	default:
		return -EINVAL;
	}
}

static enum form form_in(enum ferry_accel_opcode op)
{
	switch (op) {
	case FERRY_ACCEL_OP_DIF_GENERATE:
	case FERRY_ACCEL_OP_DIF_VERIFY:
	case FERRY_ACCEL_OP_DIF_STRIP:
		return F_EXT;
	case FERRY_ACCEL_OP_DIF_INSERT:
	case FERRY_ACCEL_OP_DIX_GENERATE:
	case FERRY_ACCEL_OP_DIX_VERIFY:
		return F_PLAIN;
	default:
		return F_ANY;
	}
}

static enum form form_out(enum ferry_accel_opcode op, enum form in)
{
	if (op == FERRY_ACCEL_OP_DIF_STRIP)
		return F_PLAIN;
	if (op == FERRY_ACCEL_OP_DIF_INSERT)
		return F_EXT;
	return in;
}

static int is_crypto(enum ferry_accel_opcode op)
{
	return op == FERRY_ACCEL_OP_ENCRYPT || op == FERRY_ACCEL_OP_DECRYPT;
}

static int is_pi(enum ferry_accel_opcode op)
{
	return op >= FERRY_ACCEL_OP_DIF_GENERATE && op <= FERRY_ACCEL_OP_DIX_VERIFY;
}

/*
 * The forms of the data between the ops when op 0 reads (or fill writes) @p f0; 0 if some op
 * cannot take what the previous one hands on. @p crypto_ext: a crypto op sees extended blocks.
 */
static int walk_forms(const enum ferry_accel_opcode *ops, uint32_t n, enum form f0, enum form *fin,
		      int *crypto_ext)
{
	enum form f = f0;
	*crypto_ext = 0;
	for (uint32_t k = 0; k < n; k++) {
		enum form need = form_in(ops[k]);
		if (need != F_ANY && need != f)
			return 0;
		fin[k] = f;
		*crypto_ext |= is_crypto(ops[k]) && f == F_EXT;
		f = form_out(ops[k], f);
	}
	return 1;
}

/* A form of op 0's data that lets the chain's lengths line up (F_ANY: no PI op), or -1. */
static int chain_start_form(const enum ferry_accel_opcode *ops, uint32_t n, uint64_t *rng)
{
	enum form fin[FERRY_HAL_ACCEL_CHAIN_MAX];
	int ce, has_pi = 0;
	for (uint32_t k = 0; k < n; k++)
		has_pi |= is_pi(ops[k]);
	if (!has_pi)
		return F_ANY;
	int plain = walk_forms(ops, n, F_PLAIN, fin, &ce);
	int ext = walk_forms(ops, n, F_EXT, fin, &ce);
	if (plain && ext)
		return rng && (conf_rand(rng) & 1) ? F_EXT : F_PLAIN;
	return plain ? F_PLAIN : (ext ? F_EXT : -1);
}

static struct ferry_crypto_key *make_key(uint64_t *rng, uint32_t du)
{
	uint8_t k1[32], k2[32];
	int x256 = (int)(conf_rand(rng) & 1);
	size_t kl = x256 ? 32 : 16;
	conf_pattern(k1, sizeof(k1), conf_rand(rng));
	conf_pattern(k2, sizeof(k2), conf_rand(rng));
	k2[0] = (uint8_t)(k1[0] ^ 0x5a); /* the halves must differ */
	struct ferry_crypto_key_opts o = {.size = sizeof(o),
					  .cipher = x256 ? FERRY_CIPHER_AES_XTS_256
							 : FERRY_CIPHER_AES_XTS_128,
					  .key1 = k1,
					  .key2 = k2,
					  .key_len = kl,
					  .data_unit_size = du};
	struct ferry_crypto_key *key = NULL;
	CONF_RC(ferry_crypto_key_create(&o, &key), 0, "ferry_crypto_key_create");
	return key;
}

static void make_dif(uint64_t *rng, struct ferry_dif_ctx *ctx, uint32_t bs, int interleave,
		     uint32_t flags)
{
	enum ferry_dif_type type = (enum ferry_dif_type)(1 + conf_rand(rng) % 3);
	uint32_t ref = (uint32_t)conf_rand(rng);
	if (conf_rand(rng) % 4 == 0)
		ref = 0xFFFFFFFFu - (uint32_t)(conf_rand(rng) % 4); /* wraps inside the I/O */
	uint16_t app = (uint16_t)(conf_rand(rng) % 0x7FFF);         /* far from the 0xFFFF escape */
	uint16_t mask = conf_rand(rng) & 1 ? 0xFFFF : (uint16_t)(conf_rand(rng) | 1);
	CONF_RC(ferry_dif_ctx_init(ctx, bs, 8, interleave, type, flags, ref, app, mask), 0,
		"ferry_dif_ctx_init");
}

struct popts {
	uint32_t src_dom, dst_dom; /* DOM_LOCAL or DOM_PCIE for the plan's two ends */
	int small;                 /* short operands (bad addresses, batches) */
	int all_checks;            /* every DIF check flag */
	struct corrupt bad_pi;
	int bad_at;   /* 0 none, 1 op 0's input at CONF_BAD_IOVA, 2 the final output */
	int in_place; /* a single encrypt/decrypt: the destination is the source's bytes */
};

static uint64_t rand_len(uint64_t *rng, int small)
{
	if (small)
		return 1 + conf_rand(rng) % 512;
	switch (conf_rand(rng) % 4) {
	case 0:
		return 1 + conf_rand(rng) % 64;
	case 1:
		return 512 * (1 + conf_rand(rng) % 16);
	default:
		return 1 + conf_rand(rng) % (96 * 1024);
	}
}

/* Escape a random block of valid extended blocks (its checks are skipped), garbage guard. */
static void escape_block(const struct ferry_dif_ctx *ctx, uint8_t *pi)
{
	pi[0] ^= 0x5a;
	pi[2] = pi[3] = 0xFF;
	if (ctx->type == FERRY_DIF_TYPE3)
		memset(pi + 4, 0xFF, 4);
}

/* Plant @p c in the PI (or data) of one block: @p data/@p pi of that block. */
static void plant(const struct corrupt *c, const struct ferry_dif_ctx *ctx, uint8_t *data,
		  uint8_t *pi, uint64_t *rng)
{
	switch (c->field) {
	case FERRY_DIF_FIELD_GUARD:
		if (c->via_data && data)
			data[conf_rand(rng) % ctx->block_size] ^= (uint8_t)(1u << (conf_rand(rng) %
										   8));
		else
			pi[conf_rand(rng) & 1] ^= (uint8_t)(1u << (conf_rand(rng) % 8));
		break;
	case FERRY_DIF_FIELD_APPTAG: {
		/* the lowest bit the mask checks; make_dif keeps app tags below 0x7FFF, so the
		 * result is never the 0xFFFF escape */
		uint16_t m = ctx->app_tag_mask, bit = 1;
		while (!(m & bit))
			bit = (uint16_t)(bit << 1);
		pi[2] ^= (uint8_t)(bit >> 8);
		pi[3] ^= (uint8_t)bit;
		break;
	}
	case FERRY_DIF_FIELD_REFTAG:
		pi[4 + conf_rand(rng) % 4] ^= (uint8_t)(1u << (conf_rand(rng) % 8));
		break;
	default:
		break;
	}
}

static void plan_free(struct acc *x, struct plan *p)
{
	ab_free(x, &p->src);
	free(p->m_src);
	for (uint32_t k = 0; k < FERRY_HAL_ACCEL_CHAIN_MAX; k++) {
		ab_free(x, &p->out[k]);
		ab_free(x, &p->aux[k]);
		free(p->m_out[k]);
		free(p->m_aux_in[k]);
		free(p->m_aux[k]);
		ferry_crypto_key_destroy(p->s[k].key);
	}
	memset(p, 0, sizeof(*p));
}

static void *xmalloc(uint64_t len)
{
	void *b = malloc(len ? (size_t)len : 1);
	CONF_ASSERT(b != NULL, "out of memory for %llu bytes", (unsigned long long)len);
	return b;
}

/* A buffer for one end: system memory, or host memory through a PCIe domain. */
static int end_buf(struct acc *x, struct abuf *b, uint64_t *rng, uint64_t len, uint32_t dom,
		   uint32_t which)
{
	if (dom != DOM_PCIE) {
		ab_sys(b, rng, len);
		return 0;
	}
	return ab_host(x, b, rng, len, x->pcie[which % x->npcie]);
}

/*
 * Build @p p: @p n ops (chain index @p chain, -1 for a single op), random parameters and
 * data, the model's result, the engine's buffers and the descriptor. Returns 0, or -ENOTSUP
 * when host memory could not be mapped (the caller skips).
 */
static int plan_build(struct acc *x, struct plan *p, uint64_t *rng,
		      const enum ferry_accel_opcode *ops, uint32_t n, int32_t chain, int virt,
		      const char *name, const struct popts *o)
{
	memset(p, 0, sizeof(*p));
	p->nops = n;
	p->chain = chain;
	p->virt = virt;
	p->name = name;

	/* Lengths: the form of the data between the ops decides them. */
	int f0 = chain_start_form(ops, n, rng);
	CONF_ASSERT(f0 >= 0, "%s: the ops' lengths cannot line up", name ? name : op_name(ops[0]));
	enum form fin[FERRY_HAL_ACCEL_CHAIN_MAX];
	int ce = 0, has_pi = 0, has_crypto = 0;
	walk_forms(ops, n, f0 == F_ANY ? F_PLAIN : (enum form)f0, fin, &ce);
	for (uint32_t k = 0; k < n; k++) {
		has_pi |= is_pi(ops[k]);
		has_crypto |= is_crypto(ops[k]);
	}
	uint32_t bs = 512, nb = 1, du = 512;
	uint64_t any_len = 0;
	if (has_pi) {
		if (ce) {
			nb = 64; /* 64 extended 520-byte blocks are a multiple of a 512-byte unit */
		} else {
			bs = conf_rand(rng) & 1 ? 4096 : 512;
			nb = 1 +
			     (uint32_t)(conf_rand(rng) % (o->small ? 4 : (bs == 512 ? 64 : 16)));
			if ((uint64_t)nb * bs % 4096 == 0 && (conf_rand(rng) & 1))
				du = 4096;
		}
	} else if (has_crypto) {
		du = conf_rand(rng) & 1 ? 4096 : 512;
		any_len = (uint64_t)du * (1 + (o->small ? 0 : conf_rand(rng) % (65536 / du)));
	} else {
		any_len = rand_len(rng, o->small);
	}
	uint64_t plain = (uint64_t)nb * bs, ext = (uint64_t)nb * (bs + 8);
	uint32_t flags = o->all_checks ? ALL_CHECKS : (uint32_t)(conf_rand(rng) % 8);
	struct ferry_dif_ctx difx, dixx;
	make_dif(rng, &difx, bs, 1, flags);
	dixx = difx;
	dixx.md_interleave = 0;
	for (uint32_t k = 0; k < n; k++) {
		struct opspec *s = &p->s[k];
		enum form fi = fin[k], fo = form_out(ops[k], fi);
		s->op = ops[k];
		s->in_len = !has_pi ? any_len : (fi == F_EXT ? ext : plain);
		s->out_len = !has_pi ? any_len : (fo == F_EXT ? ext : plain);
		if (ops[k] == FERRY_ACCEL_OP_FILL)
			s->in_len = 0;
		if (ops[k] == FERRY_ACCEL_OP_COMPARE)
			s->aux_len = s->in_len;
		if (ops[k] == FERRY_ACCEL_OP_DIX_GENERATE || ops[k] == FERRY_ACCEL_OP_DIX_VERIFY)
			s->aux_len = (uint64_t)nb * 8;
		s->fill = (uint8_t)conf_rand(rng);
		s->crc_seed = conf_rand(rng) & 1 ? 0 : (uint32_t)conf_rand(rng);
		if (is_crypto(ops[k])) {
			s->key = make_key(rng, du);
			s->tweak = conf_rand(rng) % 4 ? conf_rand(rng) % (1ull << 40)
						      : UINT64_MAX - conf_rand(rng) % 3;
		}
		s->dif = ops[k] >= FERRY_ACCEL_OP_DIX_GENERATE ? dixx : difx;
		s->nblocks = nb;
	}

	/* The model: op 0's input, then step by step. */
	struct corrupt bpc = o->bad_pi;
	const struct corrupt *bp = &bpc;
	bpc.block %= nb;
	p->planted_block = bpc.block;
	if (ops[0] != FERRY_ACCEL_OP_FILL) {
		uint64_t l = p->s[0].in_len;
		p->m_src = xmalloc(l);
		conf_pattern(p->m_src, l, conf_rand(rng));
		if (has_pi && fin[0] == F_EXT) {
			struct iovec v = lin(p->m_src, l);
			CONF_RC(ferry_dif_generate(&difx, &v, 1, nb), 0,
				"ferry_dif_generate (input)");
			if (!bp->field && conf_rand(rng) % 4 == 0)
				escape_block(&difx,
					     p->m_src + (conf_rand(rng) % nb) * (bs + 8) + bs);
		}
		if (bp->field && in_buf(p, bp->at) == -1 && fin[bp->at] == F_EXT)
			plant(bp, &difx, p->m_src + bp->block * (bs + 8),
			      p->m_src + bp->block * (bs + 8) + bs, rng);
	}
	uint8_t *cur = p->m_src;
	int stopped = 0;
	for (uint32_t k = 0; k < n; k++) {
		struct opspec *s = &p->s[k];
		p->m_out[k] = xmalloc(s->out_len);
		if (s->aux_len) {
			uint8_t *a = p->m_aux_in[k] = xmalloc(s->aux_len);
			p->m_aux[k] = xmalloc(s->aux_len);
			conf_pattern(a, s->aux_len, conf_rand(rng));
			if (!stopped && s->op == FERRY_ACCEL_OP_COMPARE) {
				memcpy(a, cur, s->aux_len);
				if (bp->compare_off >= 0 && bp->at == k)
					a[(uint64_t)bp->compare_off % s->aux_len] ^= 0x10;
			}
			if (!stopped && s->op == FERRY_ACCEL_OP_DIX_VERIFY) {
				struct iovec dv = lin(cur, s->in_len), mv = lin(a, s->aux_len);
				CONF_RC(ferry_dix_generate(&dixx, &dv, 1, &mv, 1, nb), 0,
					"ferry_dix_generate (input)");
				if (bp->field && bp->at == k) {
					int data_ok = in_buf(p, k) == -1 && bp->via_data;
					struct corrupt c = *bp;
					c.via_data = data_ok;
					plant(&c, &dixx, data_ok ? p->m_src + bp->block * bs : NULL,
					      a + bp->block * 8, rng);
				}
			}
			memcpy(p->m_aux[k], a, s->aux_len);
		}
		if (stopped)
			continue;
		p->m_crc[k] = 0;
		memset(&p->m_err[k], 0, sizeof(p->m_err[k]));
		int rc = sw_step(s, cur, p->m_out[k], p->m_aux[k], &p->m_crc[k], &p->m_err[k]);
		if (rc) {
			CONF_ASSERT(rc == -EILSEQ, "software %s failed: %d (%s)", op_name(s->op),
				    rc, ferry_strerror(rc));
			p->m_status = rc;
			p->m_failed = k;
			stopped = 1;
		}
		cur = p->m_out[k];
	}

	/* The engine's buffers. */
	int rc = 0;
	if (ops[0] != FERRY_ACCEL_OP_FILL) {
		if (o->bad_at == 1)
			ab_bad(&p->src, p->s[0].in_len, x->pcie[0]);
		else
			rc = end_buf(x, &p->src, rng, p->s[0].in_len, o->src_dom, 0);
		if (!rc && ab_real(&p->src))
			ab_put(&p->src, p->m_src);
	}
	for (uint32_t k = 0; k < n && !rc; k++) {
		struct opspec *s = &p->s[k];
		int last = k == n - 1;
		if ((op_writes(s->op) & OPND_D) && s->op != FERRY_ACCEL_OP_DIF_GENERATE) {
			if (n == 1 && o->in_place && is_crypto(s->op) && o->bad_at != 1)
				p->in_place = 1; /* written through op 0's source */
			else if (last && o->bad_at == 2)
				ab_bad(&p->out[k], s->out_len, x->pcie[x->npcie > 1 ? 1 : 0]);
			else if (last)
				rc = end_buf(x, &p->out[k], rng, s->out_len, o->dst_dom, 1);
			else if (virt)
				ab_virt(x, &p->out[k], s->out_len);
			else
				ab_sys(&p->out[k], rng, s->out_len);
		}
		if (!rc && s->aux_len) {
			int aux_out = last && (op_writes(s->op) & OPND_A);
			if (aux_out && o->bad_at == 2)
				ab_bad(&p->aux[k], s->aux_len, x->pcie[x->npcie > 1 ? 1 : 0]);
			else if (aux_out)
				rc = end_buf(x, &p->aux[k], rng, s->aux_len, o->dst_dom, 1);
			else if (k == 0)
				rc = end_buf(x, &p->aux[k], rng, s->aux_len, o->src_dom, 0);
			else
				ab_sys(&p->aux[k], rng, s->aux_len);
			if (!rc && ab_real(&p->aux[k]))
				ab_put(&p->aux[k], p->m_aux_in[k]);
		}
	}
	if (rc) {
		plan_free(x, p);
		return rc;
	}
	ab_snap(&p->src);
	for (uint32_t k = 0; k < n; k++) {
		ab_snap(&p->out[k]);
		ab_snap(&p->aux[k]);
	}

	/* The descriptor. */
	struct ferry_hal_accel_desc *d = &p->d;
	d->nops = n;
	d->chain = chain;
	for (uint32_t k = 0; k < n; k++) {
		const struct opspec *s = &p->s[k];
		struct ferry_hal_accel_op *op = &d->ops[k];
		const struct ferry_mem *in = &buf_at(p, in_buf(p, k))->mem;
		op->opcode = s->op;
		if (op_reads(s->op) & OPND_S)
			op->src = *in;
		if (s->op == FERRY_ACCEL_OP_DIF_GENERATE || p->in_place)
			op->dst = *in;
		else if (op_writes(s->op) & OPND_D)
			op->dst = p->out[k].mem;
		if (s->aux_len)
			op->aux = p->aux[k].mem;
		op->fill = s->fill;
		op->crc_seed = s->crc_seed;
		op->crc = 0xBADC0DE5u;
		op->key = s->key;
		op->tweak = s->tweak;
		if (is_pi(s->op)) {
			op->dif = &p->s[k].dif;
			op->nblocks = s->nblocks;
		}
	}
	int l = 0;
	for (uint32_t k = 0; k < n && l < (int)sizeof(p->what); k++)
		l += snprintf(p->what + l, sizeof(p->what) - (size_t)l, "%s%s %llu->%llu B",
			      k ? ", " : "", op_name(ops[k]), (unsigned long long)p->s[k].in_len,
			      (unsigned long long)p->s[k].out_len);
	if (has_pi && l < (int)sizeof(p->what))
		snprintf(p->what + l, sizeof(p->what) - (size_t)l,
			 "; %u blocks of %u, type %d, checks 0x%x", nb, bs, (int)difx.type, flags);
	else if (has_crypto && l < (int)sizeof(p->what))
		snprintf(p->what + l, sizeof(p->what) - (size_t)l, "; data unit %u%s", du,
			 p->in_place ? ", in place" : "");
	return 0;
}

/* "chain 'name'" or the op's name: how messages name the plan. */
static const char *plan_label(const struct plan *p, char *buf, size_t n)
{
	if (p->name)
		snprintf(buf, n, "chain '%s'", p->name);
	else
		snprintf(buf, n, "%s", op_name(p->s[0].op));
	return buf;
}

/* The content every real buffer must hold after success (the model's). */
static const uint8_t *expected_of(const struct plan *p, const struct abuf *b)
{
	if (b == &p->src) {
		const uint8_t *e = p->in_place ? p->m_out[0] : p->m_src;
		for (uint32_t k = 0; k < p->nops; k++)
			if (p->s[k].op == FERRY_ACCEL_OP_DIF_GENERATE && in_buf(p, k) == -1)
				e = p->m_out[k];
		return e;
	}
	for (uint32_t k = 0; k < p->nops; k++) {
		if (b == &p->aux[k])
			return p->m_aux[k];
		if (b == &p->out[k]) {
			const uint8_t *e = p->m_out[k];
			for (uint32_t j = k + 1; j < p->nops; j++)
				if (p->s[j].op == FERRY_ACCEL_OP_DIF_GENERATE &&
				    in_buf(p, j) == (int)k)
					e = p->m_out[j];
			return e;
		}
	}
	return NULL;
}

static void check_bytes(const struct plan *p, const struct abuf *b, const uint8_t *want,
			const char *label, const char *which)
{
	if (!ab_real(b))
		return;
	uint8_t *got = xmalloc(b->len);
	ab_get(b, got);
	for (uint64_t i = 0; i < b->len; i++) {
		if (got[i] == want[i])
			continue;
		uint8_t g = got[i], w = want[i];
		free(got);
		CONF_ASSERT(0,
			    "%s: first differing byte at offset %llu (got 0x%02x, want 0x%02x) of "
			    "%s; %s",
			    label, (unsigned long long)i, g, w, which, p->what);
	}
	free(got);
	long gap = ab_gap_changed(b);
	CONF_ASSERT(gap < 0, "%s: wrote outside the segments of %s (region byte %ld); %s", label,
		    which, gap, p->what);
}

/* After a descriptor the model completed: status 0, every buffer and out field exact. */
static void plan_check_ok(const struct plan *p)
{
	char label[96], which[48];
	const struct ferry_hal_accel_desc *d = &p->d;
	plan_label(p, label, sizeof(label));
	CONF_ASSERT(d->status == 0, "%s: status %d (%s), want 0; failed_op %u, reason '%s'; %s",
		    label, d->status, ferry_strerror(d->status), d->failed_op, d->reason, p->what);
	uint32_t n = p->nops;
	/* the final output first: it is what a caller keeps */
	for (uint32_t k = n; k-- > 0;) {
		if (k == n - 1)
			snprintf(which, sizeof(which), "the %s",
				 p->name ? "final output" : "destination");
		else
			snprintf(which, sizeof(which), "link %u (op %u's destination)", k, k);
		check_bytes(p, &p->out[k], expected_of(p, &p->out[k]), label, which);
	}
	for (uint32_t k = 0; k < n; k++) {
		snprintf(which, sizeof(which), "op %u's second operand (%s)", k,
			 op_writes(p->s[k].op) & OPND_A ? "written" : "must not change");
		check_bytes(p, &p->aux[k], expected_of(p, &p->aux[k]), label, which);
	}
	check_bytes(p, &p->src, expected_of(p, &p->src), label,
		    p->s[0].op == FERRY_ACCEL_OP_DIF_GENERATE || p->in_place
			    ? "the buffer (in place)"
			    : "the source (must not change)");
	for (uint32_t k = 0; k < n; k++) {
		enum ferry_accel_opcode o = p->s[k].op;
		if (o != FERRY_ACCEL_OP_CRC32C && o != FERRY_ACCEL_OP_COPY_CRC32C)
			continue;
		CONF_ASSERT(d->ops[k].crc == p->m_crc[k],
			    "%s: op %u (%s) crc 0x%08x, want 0x%08x (seed 0x%08x); %s", label, k,
			    op_name(o), d->ops[k].crc, p->m_crc[k], p->s[k].crc_seed, p->what);
	}
}

/* Every real buffer exactly as before the descriptor (a failed descriptor wrote nothing). */
static void plan_check_untouched(const struct plan *p, const char *label)
{
	const struct abuf *all[1 + 2 * FERRY_HAL_ACCEL_CHAIN_MAX];
	uint32_t m = 0;
	all[m++] = &p->src;
	for (uint32_t k = 0; k < p->nops; k++) {
		all[m++] = &p->out[k];
		all[m++] = &p->aux[k];
	}
	for (uint32_t i = 0; i < m; i++) {
		const struct abuf *b = all[i];
		if (!ab_real(b))
			continue;
		for (size_t j = 0; j < b->rlen; j++)
			CONF_ASSERT(b->host[j] == b->before[j],
				    "%s: failed with %s but wrote byte %zu of a %s operand (got "
				    "0x%02x, was 0x%02x); %s",
				    label, ferry_strerror(p->d.status), j,
				    b == &p->src ? "source" : "good", b->host[j], b->before[j],
				    p->what);
	}
}

/* check() of the engine (NULL accepts everything). */
static int plan_accepted(struct acc *x, const struct plan *p)
{
	return !x->a->check || x->a->check(x->chan, &p->d) == 0;
}

static void plan_run1(struct acc *x, struct plan *p)
{
	struct ferry_hal_accel_desc *d = &p->d;
	acc_run(x, &d, 1);
}

/* ---- table rules ---- */

/*
 * Why the SDK could never use chain @p ch (NULL if it could): the link rule of
 * ferry_hal_accel_chain (each op reads the data the previous one hands on, lengths that line
 * up), and the ends (dst_doms 0 only for a last op that writes nothing).
 */
static const char *chain_problem(const struct ferry_hal_accel_chain *ch, char *buf, size_t n)
{
	for (uint32_t k = 0; k < ch->nops; k++)
		if (!ferry_hal_accel_op_get_info(ch->ops[k]))
			return snprintf(buf, n, "op %u: opcode %d undefined", k, (int)ch->ops[k]),
			       buf;
	for (uint32_t k = 1; k < ch->nops; k++) {
		enum ferry_accel_opcode o = ch->ops[k];
		if (!(op_reads(o) & data_in_opnd(o))) {
			snprintf(buf, n,
				 "op %u (%s) reads no input, so nothing op %u hands on flows "
				 "into it (link rule)",
				 k, op_name(o), k - 1);
			return buf;
		}
		if ((ch->flags & FERRY_HAL_ACCEL_CHAIN_F_VIRT_INTERMEDIATE) &&
		    o == FERRY_ACCEL_OP_DIF_GENERATE) {
			snprintf(buf, n,
				 "op %u (dif-generate) rewrites its input link in place, but "
				 "a VIRT_INTERMEDIATE link is written by one op and read by the "
				 "next only",
				 k);
			return buf;
		}
	}
	if (chain_start_form(ch->ops, ch->nops, NULL) < 0) {
		snprintf(buf, n,
			 "no lengths line up: an op needs extended (DIF) blocks where the "
			 "previous one hands on plain ones, or the reverse (link rule)");
		return buf;
	}
	enum ferry_accel_opcode last = ch->ops[ch->nops - 1];
	if (!ch->dst_doms && op_writes(last)) {
		snprintf(buf, n,
			 "dst_doms 0 (the last op writes nothing) but the last op (%s) "
			 "writes an operand: the SDK never matches it",
			 op_name(last));
		return buf;
	}
	return NULL;
}

CONF_TEST(accel, table_sane)
{
	struct acc x;
	acc_open(param, &x);
	const struct ferry_hal_accel_ops *a = x.a;
	CONF_ASSERT(a->abi_version == FERRY_HAL_ACCEL_ABI_VERSION,
		    "accel abi_version %u, this library speaks %u", a->abi_version,
		    FERRY_HAL_ACCEL_ABI_VERSION);
	const uint32_t all = (1u << FERRY_ACCEL_OP_COUNT) - 1u;
	CONF_ASSERT((a->opcodes & ~all) == 0, "opcodes 0x%x has undefined bits 0x%x", a->opcodes,
		    a->opcodes & ~all);
	CONF_ASSERT(a->nchains == 0 || a->chains, "nchains %u with a NULL chains array",
		    a->nchains);
	char why[256];
	for (uint32_t k = 0; k < a->nchains; k++) {
		const struct ferry_hal_accel_chain *ch = &a->chains[k];
		CONF_ASSERT(ch->name && ch->name[0], "chain %u has no name", k);
		for (uint32_t m = 0; m < k; m++)
			CONF_ASSERT(strcmp(a->chains[m].name, ch->name) != 0,
				    "chain name '%s' declared twice (chains %u and %u)", ch->name,
				    m, k);
		CONF_ASSERT(ch->nops >= 2 && ch->nops <= FERRY_HAL_ACCEL_CHAIN_MAX,
			    "chain '%s': nops %u outside 2..%d", ch->name, ch->nops,
			    FERRY_HAL_ACCEL_CHAIN_MAX);
		CONF_ASSERT(ch->src_doms && (ch->src_doms & ~FERRY_HAL_ACCEL_DOM_ANY) == 0,
			    "chain '%s': src_doms 0x%x (must be a non-empty set of "
			    "FERRY_HAL_ACCEL_DOM_*)",
			    ch->name, ch->src_doms);
		CONF_ASSERT((ch->dst_doms & ~FERRY_HAL_ACCEL_DOM_ANY) == 0,
			    "chain '%s': dst_doms 0x%x has undefined bits", ch->name, ch->dst_doms);
		CONF_ASSERT((ch->flags & ~FERRY_HAL_ACCEL_CHAIN_F_VIRT_INTERMEDIATE) == 0,
			    "chain '%s': unknown flags 0x%x", ch->name, ch->flags);
		const char *bad = chain_problem(ch, why, sizeof(why));
		CONF_ASSERT(!bad, "chain '%s': %s", ch->name, bad);
		/*
		 * ferry_hal_accel_ops::opcodes lists the *single* operations the engine runs;
		 * ferry/hal/accel.h asks nothing of a chain's ops there (a chain is matched on
		 * its own, and an op the engine runs only fused falls back to software alone).
		 * So an op of a chain missing from opcodes is accepted, and said.
		 */
		for (uint32_t j = 0; j < ch->nops; j++)
			if (!(a->opcodes & FERRY_HAL_ACCEL_OP_BIT(ch->ops[j])))
				CONF_INFO("chain '%s': op %u (%s) is not a declared single op "
					  "(allowed: it only runs fused)",
					  ch->name, j, op_name(ch->ops[j]));
	}
	if (a->check && a->nchains) {
		/* Diagnostic only: the SDK never names an undeclared chain, so accepting one
		 * breaks no written rule, but an engine that does would run whatever it is
		 * handed. Probe with the first chain's ops under the index nchains. */
		uint64_t rng = conf_seed(param, 0xACC00);
		struct popts po = {.src_dom = DOM_LOCAL, .dst_dom = DOM_LOCAL, .small = 1};
		po.bad_pi.compare_off = -1;
		struct plan p;
		plan_build(&x, &p, &rng, a->chains[0].ops, a->chains[0].nops, (int32_t)a->nchains,
			   0, a->chains[0].name, &po);
		int rc = a->check(x.chan, &p.d);
		plan_free(&x, &p);
		if (rc == 0)
			CONF_INFO("check() accepts a descriptor naming chain %u, which is not "
				  "declared (it cannot know what to run)",
				  a->nchains);
	}
	CONF_INFO("opcodes 0x%x, %u chain(s)", a->opcodes, a->nchains);
	acc_close(&x);
}

/*
 * The domain class of a chain end: system memory when allowed (half the time when PCIe is
 * allowed too), else a PCI function's host memory when the suite can make some the engine
 * reaches; 0 and @p why otherwise.
 */
static uint32_t pick_dom(struct acc *x, uint32_t doms, uint64_t *rng, const char **why)
{
	int pcie = x->npcie && x->hooks && x->hooks->host_map && acc_reaches(x, x->pcie[0]) &&
		   (x->npcie < 2 || acc_reaches(x, x->pcie[1]));
	if ((doms & DOM_LOCAL) && (!(doms & DOM_PCIE) || !pcie || (conf_rand(rng) & 1)))
		return DOM_LOCAL;
	if ((doms & DOM_PCIE) && pcie)
		return DOM_PCIE;
	if (!(doms & DOM_PCIE))
		*why = "its ends must be RDMA or vendor memory, which the suite cannot make";
	else if (!x->npcie)
		*why = "an end must be PCIe host memory and the device has no PCIe function domain";
	else if (!x->hooks || !x->hooks->host_map)
		*why = "an end must be PCIe host memory and the backend has no conformance hooks "
		       "to map some (struct conf_hooks)";
	else
		*why = "an end must be PCIe host memory and reaches() refuses the device's PCIe "
		       "domains";
	return 0;
}

/* ---- single operations ---- */

CONF_TEST(accel, single_ops)
{
	struct acc x;
	acc_open(param, &x);
	uint64_t rng = conf_seed(param, 0xACC01);
	uint32_t ran = 0, refused = 0, pcie_cases = 0;
	for (uint32_t op = 0; op < FERRY_ACCEL_OP_COUNT; op++) {
		if (!(x.a->opcodes & FERRY_HAL_ACCEL_OP_BIT(op)))
			continue;
		enum ferry_accel_opcode o = (enum ferry_accel_opcode)op;
		uint32_t op_ran = 0;
		for (uint32_t i = 0; i < ACC_CASES; i++) {
			struct plan p;
			struct popts po = {.src_dom = DOM_LOCAL,
					   .dst_dom = DOM_LOCAL,
					   .bad_pi = {.compare_off = -1},
					   .in_place = i % 5 == 4};
			/* every sixth case reads and writes host memory through PCIe domains
			 * (when the engine reaches them and the hooks can map some) */
			const char *why = NULL;
			if (i % 6 == 5 && pick_dom(&x, DOM_PCIE, &rng, &why) == DOM_PCIE) {
				po.src_dom = po.dst_dom = DOM_PCIE;
				pcie_cases++;
			}
			if (plan_build(&x, &p, &rng, &o, 1, -1, 0, NULL, &po)) {
				po.src_dom = po.dst_dom = DOM_LOCAL; /* host memory used up */
				pcie_cases--;
				plan_build(&x, &p, &rng, &o, 1, -1, 0, NULL, &po);
			}
			if (!plan_accepted(&x, &p)) {
				refused++;
				plan_free(&x, &p);
				continue;
			}
			plan_run1(&x, &p);
			CONF_ASSERT(p.m_status == 0, "%s: the model failed (test bug); %s",
				    op_name(o), p.what);
			plan_check_ok(&p);
			plan_free(&x, &p);
			op_ran++;
		}
		if (!op_ran)
			CONF_INFO("%s: check() refused all %u random cases", op_name(o), ACC_CASES);
		ran += op_ran;
	}
	if (!x.a->opcodes)
		CONF_INFO("no single operation declared (opcodes 0)");
	CONF_INFO("%u cases byte exact (%u in PCIe host memory), %u refused by check()", ran,
		  pcie_cases, refused);
	acc_close(&x);
}

/* ---- chains ---- */

/* Check a descriptor the model failed (PI or compare mismatch) against the model. */
static void plan_check_mismatch(const struct plan *p, const char *planted)
{
	char label[96];
	const struct ferry_hal_accel_desc *d = &p->d;
	plan_label(p, label, sizeof(label));
	uint32_t f = p->m_failed;
	enum ferry_accel_opcode o = p->s[f].op;
	if (d->status == 0 && o == FERRY_ACCEL_OP_COMPARE)
		CONF_ASSERT(0, "%s: a compare mismatch reported as success (%s); %s", label,
			    planted, p->what);
	CONF_ASSERT(d->status != 0, "%s: bad PI reported as success (%s, op %u %s); %s", label,
		    planted, f, op_name(o), p->what);
	CONF_ASSERT(d->status == p->m_status,
		    "%s: status %d (%s), want %d (%s) (%s); reason '%s'; %s", label, d->status,
		    ferry_strerror(d->status), p->m_status, ferry_strerror(p->m_status), planted,
		    d->reason, p->what);
	CONF_ASSERT(d->failed_op == f, "%s: failed_op %u, want %u (%s, the op that checks it); %s",
		    label, d->failed_op, f, op_name(o), p->what);
	if (o == FERRY_ACCEL_OP_COMPARE)
		return;
	const struct ferry_dif_error *g = &d->ops[f].dif_err, *w = &p->m_err[f];
	CONF_ASSERT(g->field == w->field && g->block == w->block && g->expected == w->expected &&
			    g->actual == w->actual,
		    "%s: dif_err {%s, block %llu, expected 0x%x, actual 0x%x}, want {%s, block "
		    "%llu, expected 0x%x, actual 0x%x} (%s); %s",
		    label, ferry_dif_field_name(g->field), (unsigned long long)g->block,
		    g->expected, g->actual, ferry_dif_field_name(w->field),
		    (unsigned long long)w->block, w->expected, w->actual, planted, p->what);
}

CONF_TEST(accel, chains)
{
	struct acc x;
	acc_open(param, &x);
	if (!x.a->nchains) {
		acc_close(&x);
		CONF_SKIP("the engine declares no chains");
	}
	uint64_t rng = conf_seed(param, 0xACC02);
	uint32_t ran_chains = 0;
	char why_buf[256];
	for (uint32_t k = 0; k < x.a->nchains; k++) {
		const struct ferry_hal_accel_chain *ch = &x.a->chains[k];
		const char *bad = chain_problem(ch, why_buf, sizeof(why_buf));
		CONF_ASSERT(!bad, "chain '%s' cannot be built: %s", ch->name, bad);
		int virt = (ch->flags & FERRY_HAL_ACCEL_CHAIN_F_VIRT_INTERMEDIATE) != 0;
		const char *why = NULL;
		uint32_t ok = 0, refused = 0, failing = 0, pcie_ends = 0;
		for (uint32_t i = 0; i < ACC_CHAIN_CASES && !why; i++) {
			struct popts po = {.bad_pi = {.compare_off = -1}};
			po.src_dom = pick_dom(&x, ch->src_doms, &rng, &why);
			po.dst_dom = ch->dst_doms ? pick_dom(&x, ch->dst_doms, &rng, &why)
						  : DOM_LOCAL;
			if (why)
				break;
			struct plan p;
			if (plan_build(&x, &p, &rng, ch->ops, ch->nops, (int32_t)k, virt, ch->name,
				       &po)) {
				why = "the hooks could not map host memory for an end";
				break;
			}
			if (!plan_accepted(&x, &p)) {
				refused++;
				plan_free(&x, &p);
				continue;
			}
			plan_run1(&x, &p);
			pcie_ends += (po.src_dom == DOM_PCIE) +
				     (ch->dst_doms && po.dst_dom == DOM_PCIE);
			if (p.m_status == 0) {
				plan_check_ok(&p);
				ok++;
			} else {
				plan_check_mismatch(&p,
						    "the ops one after another fail in software");
				failing++;
			}
			plan_free(&x, &p);
		}
		if (why && !ok) {
			CONF_INFO("chain '%s' skipped: %s", ch->name, why);
			continue;
		}
		ran_chains++;
		CONF_INFO("chain '%s'%s: %u cases byte exact, %u failing as in software, %u "
			  "refused by check(); %u of the ends in PCIe host memory",
			  ch->name, virt ? " (virtual links)" : "", ok, failing, refused,
			  pcie_ends);
	}
	if (!ran_chains) {
		acc_close(&x);
		CONF_SKIP("no declared chain could be run (reasons above)");
	}
	acc_close(&x);
}

/* ---- PI and compare mismatches ---- */

static const enum ferry_dif_field fields[] = {FERRY_DIF_FIELD_GUARD, FERRY_DIF_FIELD_APPTAG,
					      FERRY_DIF_FIELD_REFTAG};

static int pi_case(struct acc *x, uint64_t *rng, const enum ferry_accel_opcode *ops, uint32_t n,
		   int32_t chain, int virt, const char *name, uint32_t src_dom, uint32_t dst_dom,
		   uint32_t at, enum ferry_dif_field field, int rep)
{
	struct popts po = {.src_dom = src_dom, .dst_dom = dst_dom, .all_checks = 1};
	po.bad_pi.compare_off = -1;
	po.bad_pi.at = at;
	if (ops[at] == FERRY_ACCEL_OP_COMPARE)
		po.bad_pi.compare_off = (int)(conf_rand(rng) % 0x7fffffff);
	else
		po.bad_pi.field = field;
	po.bad_pi.block = conf_rand(rng);
	po.bad_pi.via_data = rep & 1;
	struct plan p;
	if (plan_build(x, &p, rng, ops, n, chain, virt, name, &po))
		return -ENOTSUP;
	char planted[96];
	if (ops[at] == FERRY_ACCEL_OP_COMPARE)
		snprintf(planted, sizeof(planted), "byte %llu of op %u's second operand changed",
			 (unsigned long long)((uint64_t)po.bad_pi.compare_off % p.s[at].aux_len),
			 at);
	else
		snprintf(planted, sizeof(planted), "%s of block %llu corrupted%s",
			 ferry_dif_field_name(field), (unsigned long long)p.planted_block,
			 field == FERRY_DIF_FIELD_GUARD && (rep & 1) ? " (a data byte)" : "");
	int reached = p.m_status == -EILSEQ && p.m_failed == at;
	if (!chain) /* a single op: the planted error must be what the model finds */
		CONF_ASSERT(reached, "%s: the model did not see the planted error (test bug)",
			    op_name(ops[0]));
	if (!reached || !plan_accepted(x, &p)) {
		plan_free(x, &p);
		return 0;
	}
	plan_run1(x, &p);
	plan_check_mismatch(&p, planted);
	plan_free(x, &p);
	return 1;
}

CONF_TEST(accel, pi_errors)
{
	struct acc x;
	acc_open(param, &x);
	uint64_t rng = conf_seed(param, 0xACC03);
	uint32_t ran = 0;
	for (uint32_t op = 0; op < FERRY_ACCEL_OP_COUNT; op++) {
		enum ferry_accel_opcode o = (enum ferry_accel_opcode)op;
		if (!(x.a->opcodes & FERRY_HAL_ACCEL_OP_BIT(op)) || !is_verify(o))
			continue;
		for (uint32_t f = 0; f < 3; f++)
			for (int rep = 0; rep < 3; rep++)
				ran += (uint32_t)pi_case(&x, &rng, &o, 1, -1, 0, NULL, DOM_LOCAL,
							 DOM_LOCAL, 0, fields[f], rep);
	}
	for (uint32_t k = 0; k < x.a->nchains; k++) {
		const struct ferry_hal_accel_chain *ch = &x.a->chains[k];
		char why_buf[256];
		if (chain_problem(ch, why_buf, sizeof(why_buf)))
			continue; /* table_sane and chains name it */
		uint32_t at = ch->nops;
		for (uint32_t j = 0; j < ch->nops && at == ch->nops; j++)
			if (is_verify(ch->ops[j]) || ch->ops[j] == FERRY_ACCEL_OP_COMPARE)
				at = j;
		if (at == ch->nops)
			continue;
		int virt = (ch->flags & FERRY_HAL_ACCEL_CHAIN_F_VIRT_INTERMEDIATE) != 0;
		uint32_t chain_ran = 0;
		const char *why = NULL;
		for (uint32_t f = 0; f < 3 && !why; f++) {
			for (int rep = 0; rep < 2 && !why; rep++) {
				uint32_t sd = pick_dom(&x, ch->src_doms, &rng, &why);
				uint32_t dd = ch->dst_doms ? pick_dom(&x, ch->dst_doms, &rng, &why)
							   : DOM_LOCAL;
				if (why)
					break;
				int r = pi_case(&x, &rng, ch->ops, ch->nops, (int32_t)k, virt,
						ch->name, sd, dd, at, fields[f], rep);
				if (r < 0)
					why = "the hooks could not map host memory for an end";
				else
					chain_ran += (uint32_t)r;
			}
		}
		if (why)
			CONF_INFO("chain '%s' skipped: %s", ch->name, why);
		else if (!chain_ran)
			CONF_INFO("chain '%s': no mismatch planted in its input reaches its "
				  "checking op %u (%s), or check() refused it",
				  ch->name, at, op_name(ch->ops[at]));
		ran += chain_ran;
	}
	if (x.a->opcodes & FERRY_HAL_ACCEL_OP_BIT(FERRY_ACCEL_OP_COMPARE)) {
		enum ferry_accel_opcode o = FERRY_ACCEL_OP_COMPARE;
		for (int rep = 0; rep < 6; rep++)
			ran += (uint32_t)pi_case(&x, &rng, &o, 1, -1, 0, NULL, DOM_LOCAL, DOM_LOCAL,
						 0, FERRY_DIF_FIELD_NONE, rep);
	}
	if (!ran) {
		acc_close(&x);
		CONF_SKIP("no verifying operation (dif-verify, dif-strip, dix-verify, compare) "
			  "declared, alone or in a chain the suite can run");
	}
	CONF_INFO("%u mismatches reported with the right status, op and block", ran);
	acc_close(&x);
}

/* ---- bad addresses ---- */

static int bad_case(struct acc *x, uint64_t *rng, const enum ferry_accel_opcode *ops, uint32_t n,
		    int32_t chain, int virt, const char *name, uint32_t src_dom, uint32_t dst_dom,
		    int bad_at)
{
	struct popts po = {.src_dom = src_dom, .dst_dom = dst_dom, .small = 1, .bad_at = bad_at};
	po.bad_pi.compare_off = -1;
	struct plan p;
	if (plan_build(x, &p, rng, ops, n, chain, virt, name, &po))
		return -ENOTSUP;
	if (!plan_accepted(x, &p)) {
		plan_free(x, &p);
		return 0;
	}
	plan_run1(x, &p);
	char label[96];
	plan_label(&p, label, sizeof(label));
	const char *where = bad_at == 1 ? "op 0's input" : "the last op's output";
	uint32_t want_op = bad_at == 1 ? 0 : n - 1;
	CONF_ASSERT(p.d.status == -EFAULT,
		    "%s: %s at an unmapped IOVA of %s: status %d (%s), want -EFAULT; %s", label,
		    where, ferry_memdomain_get_name(x->pcie[0]), p.d.status,
		    ferry_strerror(p.d.status), p.what);
	CONF_ASSERT(p.d.failed_op == want_op,
		    "%s: %s at an unmapped IOVA: failed_op %u, want %u; %s", label, where,
		    p.d.failed_op, want_op, p.what);
	plan_check_untouched(&p, label);
	plan_free(x, &p);
	return 1;
}

CONF_TEST(accel, bad_address)
{
	struct acc x;
	acc_open(param, &x);
	if (!x.npcie) {
		acc_close(&x);
		CONF_SKIP("the device has no PCIe function domain for an unmapped address");
	}
	if (!acc_reaches(&x, x.pcie[0]) || (x.npcie > 1 && !acc_reaches(&x, x.pcie[1]))) {
		acc_close(&x);
		CONF_SKIP("reaches() refuses the device's PCIe domains: the SDK bounces such "
			  "operands, the engine never sees one");
	}
	uint64_t rng = conf_seed(param, 0xACC04);
	uint32_t ran = 0;
	for (uint32_t op = 0; op < FERRY_ACCEL_OP_COUNT; op++) {
		enum ferry_accel_opcode o = (enum ferry_accel_opcode)op;
		if (!(x.a->opcodes & FERRY_HAL_ACCEL_OP_BIT(op)))
			continue;
		if (op_reads(o) & data_in_opnd(o))
			ran += (uint32_t)bad_case(&x, &rng, &o, 1, -1, 0, NULL, DOM_LOCAL,
						  DOM_LOCAL, 1);
		if (op_writes(o) & (OPND_A | OPND_D) && o != FERRY_ACCEL_OP_DIF_GENERATE)
			ran += (uint32_t)bad_case(&x, &rng, &o, 1, -1, 0, NULL, DOM_LOCAL,
						  DOM_LOCAL, 2);
	}
	for (uint32_t k = 0; k < x.a->nchains; k++) {
		const struct ferry_hal_accel_chain *ch = &x.a->chains[k];
		char why_buf[256];
		if (chain_problem(ch, why_buf, sizeof(why_buf)))
			continue;
		int virt = (ch->flags & FERRY_HAL_ACCEL_CHAIN_F_VIRT_INTERMEDIATE) != 0;
		enum ferry_accel_opcode last = ch->ops[ch->nops - 1];
		for (int bad_at = 1; bad_at <= 2; bad_at++) {
			uint32_t doms = bad_at == 1 ? ch->src_doms : ch->dst_doms;
			if (!(doms & DOM_PCIE))
				continue;
			if (bad_at == 1 && !(op_reads(ch->ops[0]) & data_in_opnd(ch->ops[0])))
				continue;
			if (bad_at == 2 && (!(op_writes(last) & (OPND_A | OPND_D)) ||
					    last == FERRY_ACCEL_OP_DIF_GENERATE))
				continue;
			const char *why = NULL;
			uint32_t sd = pick_dom(&x, ch->src_doms, &rng, &why);
			uint32_t dd = ch->dst_doms ? pick_dom(&x, ch->dst_doms, &rng, &why)
						   : DOM_LOCAL;
			int r = why ? -ENOTSUP
				    : bad_case(&x, &rng, ch->ops, ch->nops, (int32_t)k, virt,
					       ch->name, sd, dd, bad_at);
			if (r < 0)
				CONF_INFO("chain '%s': bad %s not tried: %s", ch->name,
					  bad_at == 1 ? "input" : "output",
					  why ? why : "the hooks could not map host memory");
			else
				ran += (uint32_t)r;
		}
	}
	CONF_INFO("%u descriptors with an unmapped operand failed with -EFAULT, nothing written",
		  ran);
	acc_close(&x);
}

/* ---- exactly once ---- */

#define ACC_BATCH 1100u /* above the 1024 a mock channel holds: some submit is partial */

CONF_TEST(accel, exactly_once)
{
	struct acc x;
	acc_open(param, &x);
	/* the batch mixes every declared single op and every chain runnable in system
	 * memory (both ends LOCAL) */
	enum ferry_accel_opcode decl[FERRY_ACCEL_OP_COUNT];
	uint32_t nd = 0, nc = 0, chains[64], nchained = 0;
	char why_buf[256];
	for (uint32_t op = 0; op < FERRY_ACCEL_OP_COUNT; op++)
		if (x.a->opcodes & FERRY_HAL_ACCEL_OP_BIT(op))
			decl[nd++] = (enum ferry_accel_opcode)op;
	for (uint32_t k = 0; k < x.a->nchains && nc < 64; k++) {
		const struct ferry_hal_accel_chain *ch = &x.a->chains[k];
		if ((ch->src_doms & DOM_LOCAL) && (!ch->dst_doms || (ch->dst_doms & DOM_LOCAL)) &&
		    !chain_problem(ch, why_buf, sizeof(why_buf)))
			chains[nc++] = k;
	}
	if (!nd && !nc) {
		acc_close(&x);
		CONF_SKIP("no single operation declared, and no chain runs in system memory");
	}
	uint64_t rng = conf_seed(param, 0xACC05);
	struct plan *p = calloc(ACC_BATCH, sizeof(*p));
	struct ferry_hal_accel_desc **d = calloc(ACC_BATCH, sizeof(*d));
	CONF_ASSERT(p && d, "out of memory");
	uint32_t n = 0;
	for (uint32_t i = 0; i < ACC_BATCH; i++) {
		struct popts po = {.src_dom = DOM_LOCAL, .dst_dom = DOM_LOCAL, .small = 1};
		po.bad_pi.compare_off = -1;
		uint32_t kind = i % (nd + nc);
		if (kind < nd) {
			plan_build(&x, &p[n], &rng, &decl[kind], 1, -1, 0, NULL, &po);
		} else {
			const struct ferry_hal_accel_chain *ch = &x.a->chains[chains[kind - nd]];
			plan_build(&x, &p[n], &rng, ch->ops, ch->nops, (int32_t)chains[kind - nd],
				   (ch->flags & FERRY_HAL_ACCEL_CHAIN_F_VIRT_INTERMEDIATE) != 0,
				   ch->name, &po);
			nchained++;
		}
		if (!plan_accepted(&x, &p[n])) {
			nchained -= kind >= nd;
			plan_free(&x, &p[n]);
			continue;
		}
		d[n] = &p[n].d;
		n++;
	}
	CONF_ASSERT(n > 0, "check() refused every descriptor of the batch");
	uint32_t partial = acc_run(&x, d, n);
	/* nothing comes back a second time later */
	struct ferry_hal_accel_desc *more[8];
	uint64_t end = conf_now_ns() + 50000000ull;
	while (conf_now_ns() < end) {
		int m = x.a->poll(x.chan, more, 8);
		CONF_ASSERT(m == 0, "poll returned %d descriptor(s) after every one had come back",
			    m);
		conf_sleep_us(500);
	}
	for (uint32_t i = 0; i < n; i++) {
		CONF_ASSERT(d[i]->user_ctx == CONF_CTX(i), "descriptor %u: user_ctx changed", i);
		if (p[i].m_status == 0)
			plan_check_ok(&p[i]);
		else
			plan_check_mismatch(&p[i], "the ops one after another fail in software");
		plan_free(&x, &p[i]);
	}
	CONF_INFO("%u descriptors (%u of them chains) in one batch, each returned once with the "
		  "software's result; %u partial submit(s)",
		  n, nchained, partial);
	free(p);
	free(d);
	acc_close(&x);
}

/* ---- destroy with descriptors in flight ---- */

/*
 * ferry/hal/dma.h: chan_destroy() finishes or abandons what is in flight before it returns,
 * and the memory of those operations is not touched afterwards. For accel descriptors too:
 * a batch of copies (or fills) submitted and never polled, the channel destroyed, then the
 * destinations and the descriptors overwritten: nothing may change them any more.
 */
CONF_TEST(accel, destroy_in_flight)
{
	enum { N = 32, LEN = 256 << 10 };
	struct acc x;
	acc_open(param, &x);
	enum ferry_accel_opcode op;
	if (x.a->opcodes & FERRY_HAL_ACCEL_OP_BIT(FERRY_ACCEL_OP_COPY))
		op = FERRY_ACCEL_OP_COPY;
	else if (x.a->opcodes & FERRY_HAL_ACCEL_OP_BIT(FERRY_ACCEL_OP_FILL))
		op = FERRY_ACCEL_OP_FILL;
	else {
		acc_close(&x);
		CONF_SKIP("neither copy nor fill declared as a single operation");
	}
	uint8_t *src = conf_alloc(&x.c, LEN), *dst = conf_alloc(&x.c, (size_t)LEN * N);
	conf_pattern(src, LEN, conf_seed(param, 0xDE57));
	struct iovec si = {src, LEN}, di[N];
	struct ferry_hal_accel_desc *d = calloc(N, sizeof(*d)), *p[N];
	CONF_ASSERT(d, "out of memory");
	for (uint32_t round = 0; round < 3; round++) {
		for (uint32_t i = 0; i < N; i++) {
			di[i] = (struct iovec){dst + (size_t)i * LEN, LEN};
			memset(&d[i], 0, sizeof(d[i]));
			d[i].nops = 1;
			d[i].chain = -1;
			d[i].ops[0].opcode = op;
			d[i].ops[0].dst = (struct ferry_mem){.iov = &di[i], .iovcnt = 1};
			if (op == FERRY_ACCEL_OP_COPY)
				d[i].ops[0].src = (struct ferry_mem){.iov = &si, .iovcnt = 1};
			else
				d[i].ops[0].fill = 0x5A;
			d[i].user_ctx = CONF_CTX(i);
			p[i] = &d[i];
		}
		uint32_t sub = 0;
		for (int tries = 0; sub < N && tries < 4; tries++) {
			int rc = x.a->submit(x.chan, p + sub, N - sub);
			CONF_ASSERT(rc >= 0, "accel submit: %d (%s)", rc, ferry_strerror(rc));
			sub += (uint32_t)rc;
		}
		CONF_ASSERT(sub > 0, "accel submit accepted nothing on an idle channel");
		x.c.backend->dma->chan_destroy(x.chan); /* without polling */
		x.chan = NULL;
		memset(dst, 0xEE, (size_t)LEN * N);
		memset(d, 0xEE, sizeof(*d) * N);
		conf_sleep_us(30000);
		for (size_t b = 0; b < (size_t)LEN * N; b++)
			CONF_ASSERT(dst[b] == 0xEE,
				    "round %u: destination byte %zu (descriptor %zu) written after "
				    "chan_destroy returned",
				    round, b, b / LEN);
		for (size_t b = 0; b < sizeof(*d) * N; b++)
			CONF_ASSERT(((uint8_t *)d)[b] == 0xEE,
				    "round %u: a descriptor written after chan_destroy returned", round);
		/* A new channel (it may get the same id) returns nothing of the old one. */
		struct ferry_dma_chan_opts o = {.size = sizeof(o)};
		int rc = x.c.backend->dma->chan_create(x.c.dev, &o, &x.chan);
		CONF_ASSERT(rc == 0 && x.chan, "chan_create after a destroy: %d", rc);
		struct ferry_hal_accel_desc *done[N];
		uint64_t end = conf_now_ns() + 30000000ull;
		while (conf_now_ns() < end) {
			int m = x.a->poll(x.chan, done, N);
			CONF_ASSERT(m == 0, "a new channel returned %d descriptor(s) of a destroyed one",
				    m);
			conf_sleep_us(1000);
		}
	}
	free(d);
	free(src);
	free(dst);
	acc_close(&x);
}
