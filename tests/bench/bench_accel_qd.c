/*
 * ferry-bench "accel-qd" suite: what an integrator pays for the accel framework at queue
 * depth, on a channel of the *software* engine, next to SPDK's accel_perf.
 *
 * One operation of a case = a sequence created, its steps appended, finished (passes) and
 * executed through ferry_accel_chan_poll() until its completion callback. Two depths:
 *   qd1   one sequence in flight: create, append, finish, poll until done;
 *   qd32  32 sequences finished, then polled until all 32 completed (the software engine
 *         executes inside poll, so this is what 32 outstanding operations cost).
 * Cases: copy, crc32c, dif-generate, dif-verify (4096+8 blocks, type 1), encrypt/decrypt
 * XTS-128 and XTS-256 (4096-byte data units), and the seed pipeline (copy -> encrypt ->
 * dif-insert -> copy into local memory; after elision encrypt -> dif-insert through one pool
 * buffer). Sizes 4 KiB and 128 KiB of payload (data bytes for DIF). All sequences of a case
 * share its buffers (the engine runs them one after the other), like the direct call.
 *
 * Each line: ops/s and GB/s of the framework, GB/s of the direct kernel call (the same
 * ferry_* kernel the software engine calls, measured in the same run, alternating rounds),
 * overhead_ns = ns per op of the framework minus ns per op of the direct call, and the SPDK
 * v26.05 accel_perf anchor (software module, one core, QD 32) where one exists.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ferry/accel.h>
#include <ferry/crc.h>
#include <ferry/crypto.h>
#include <ferry/dif.h>
#include <ferry/log.h>
#include "bench.h"

void bench_suite_accel_qd(int json);

#define QD_MAX 32u
#define BS 4096u
#define EXT (BS + 8u)

enum qd_case {
	C_COPY,
	C_CRC,
	C_DIFGEN,
	C_DIFVER,
	C_ENC128,
	C_DEC128,
	C_ENC256,
	C_DEC256,
	C_PIPE,
	C_COUNT
};

static const struct {
	const char *name;
	double spdk_4k, spdk_128k; /* accel_perf GB/s, software module, 1 core, QD 32 */
} cases[C_COUNT] = {
	[C_COPY] = {"copy", 35.7, 48.6},
	[C_CRC] = {"crc32c", 19.3, 25.4},
	[C_DIFGEN] = {"dif-generate", 18.3, 24.5},
	[C_DIFVER] = {"dif-verify", 18.8, 23.8},
	[C_ENC128] = {"encrypt-xts128", 18.2, 21.5},
	[C_DEC128] = {"decrypt-xts128", 0, 0},
	[C_ENC256] = {"encrypt-xts256", 13.6, 16.2},
	[C_DEC256] = {"decrypt-xts256", 0, 0},
	[C_PIPE] = {"pipeline", 0, 0},
};

struct qd_slot {
	struct qd_arg *a;
	struct iovec i1, i2, i3;
	struct ferry_mem v1, v2, v3; /* the pipeline's virtual buffers (one set per slot) */
	uint32_t crc;
};

struct qd_arg {
	enum qd_case c;
	size_t size;   /* payload */
	uint32_t nblk; /* 4 KiB blocks */
	uint32_t qd;
	uint8_t *src, *dst, *tmp;
	struct iovec s, d, t, ext;
	struct ferry_mem ms, md, mext;
	struct ferry_crypto_key *key;
	struct ferry_dif_ctx dif;
	struct ferry_accel_chan *ch;
	struct qd_slot slot[QD_MAX];
	uint32_t done;
	int status;
	volatile uint32_t sink;
};

static void *xalloc(size_t n)
{
	void *p = aligned_alloc(64, (n + 63) & ~(size_t)63);
	if (!p)
		bench_fail("out of memory (%zu bytes)", n);
	memset(p, 0x5c, n);
	return p;
}

/* ---- the direct kernel call --------------------------------------------------------------- */
static int direct(void *p)
{
	struct qd_arg *a = p;
	switch (a->c) {
	case C_COPY:
		return ferry_iov_copy(&a->d, 1, &a->s, 1) == a->size ? 0 : -1;
	case C_CRC:
		a->sink = ferry_crc32c_iov(0, &a->s, 1);
		return 0;
	case C_DIFGEN:
		return ferry_dif_generate(&a->dif, &a->ext, 1, a->nblk);
	case C_DIFVER:
		return ferry_dif_verify(&a->dif, &a->ext, 1, a->nblk, NULL);
	case C_ENC128:
	case C_ENC256:
		return ferry_crypto_encrypt(a->key, &a->d, 1, &a->s, 1, 1000);
	case C_DEC128:
	case C_DEC256:
		return ferry_crypto_decrypt(a->key, &a->d, 1, &a->s, 1, 1000);
	case C_PIPE: {
		int rc = ferry_crypto_encrypt(a->key, &a->t, 1, &a->s, 1, 1000);
		return rc ? rc : ferry_dif_insert(&a->dif, &a->ext, 1, &a->t, 1, a->nblk);
	}
	default:
		return -1;
	}
}

/* ---- through the framework ---------------------------------------------------------------- */
static void seq_done(void *arg, int status)
{
	struct qd_slot *sl = arg;
	sl->a->done++;
	if (status)
		sl->a->status = status;
}

static int append(struct qd_arg *a, struct qd_slot *sl, struct ferry_seq *s)
{
	switch (a->c) {
	case C_COPY:
		return ferry_seq_append_copy(s, &a->md, &a->ms, NULL, NULL);
	case C_CRC:
		return ferry_seq_append_crc32c(s, &a->ms, 0, &sl->crc, NULL, NULL);
	case C_DIFGEN:
		return ferry_seq_append_dif_generate(s, &a->mext, &a->dif, a->nblk, NULL, NULL);
	case C_DIFVER:
		return ferry_seq_append_dif_verify(s, &a->mext, &a->dif, a->nblk, NULL, NULL, NULL);
	case C_ENC128:
	case C_ENC256:
		return ferry_seq_append_encrypt(s, &a->md, &a->ms, a->key, 1000, NULL, NULL);
	case C_DEC128:
	case C_DEC256:
		return ferry_seq_append_decrypt(s, &a->md, &a->ms, a->key, 1000, NULL, NULL);
	case C_PIPE: {
		int rc = ferry_seq_append_copy(s, &sl->v1, &a->ms, NULL, NULL);
		if (!rc)
			rc = ferry_seq_append_encrypt(s, &sl->v2, &sl->v1, a->key, 1000, NULL, NULL);
		if (!rc)
			rc = ferry_seq_append_dif_insert(s, &sl->v3, &sl->v2, &a->dif, a->nblk, NULL,
							 NULL);
		if (!rc)
			rc = ferry_seq_append_copy(s, &a->mext, &sl->v3, NULL, NULL);
		return rc;
	}
	default:
		return -1;
	}
}

/* One call: qd sequences started, then polled until every one completed. */
static int framework(void *p)
{
	struct qd_arg *a = p;
	a->done = 0;
	a->status = 0;
	for (uint32_t i = 0; i < a->qd; i++) {
		struct ferry_seq *s;
		int rc = ferry_seq_create(a->ch, &s);
		if (!rc)
			rc = append(a, &a->slot[i], s);
		if (!rc)
			rc = ferry_seq_finish(s, seq_done, &a->slot[i]);
		if (rc)
			bench_fail("%s: %s", cases[a->c].name, ferry_last_error());
	}
	while (a->done < a->qd)
		ferry_accel_chan_poll(a->ch, QD_MAX);
	return a->status;
}

static void vbuf(struct ferry_accel_chan *ch, size_t len, struct iovec *iov, struct ferry_mem *m)
{
	void *b, *ctx;
	struct ferry_memdomain *d;
	if (ferry_accel_get_buf(ch, len, &b, &d, &ctx))
		bench_fail("get_buf: %s", ferry_last_error());
	*iov = (struct iovec){b, len};
	*m = (struct ferry_mem){.domain = d, .domain_ctx = ctx, .iov = iov, .iovcnt = 1};
}

static void setup(struct qd_arg *a, enum qd_case c, size_t size)
{
	memset(a, 0, sizeof(*a));
	a->c = c;
	a->size = size;
	a->nblk = (uint32_t)(size / BS);
	size_t ext = (size_t)a->nblk * EXT;
	a->src = xalloc(size);
	a->dst = xalloc(size);
	a->tmp = xalloc(ext);
	for (size_t i = 0; i < size; i++)
		a->src[i] = (uint8_t)(i * 131u + 7u);
	a->s = (struct iovec){a->src, size};
	a->d = (struct iovec){a->dst, size};
	a->t = (struct iovec){a->dst, size}; /* pipeline: ciphertext between the two steps */
	a->ext = (struct iovec){a->tmp, ext};
	a->ms = (struct ferry_mem){.iov = &a->s, .iovcnt = 1};
	a->md = (struct ferry_mem){.iov = &a->d, .iovcnt = 1};
	a->mext = (struct ferry_mem){.iov = &a->ext, .iovcnt = 1};
	if (ferry_dif_ctx_init(&a->dif, BS, 8, 1, FERRY_DIF_TYPE1,
			       FERRY_DIF_CHECK_GUARD | FERRY_DIF_CHECK_APPTAG |
				       FERRY_DIF_CHECK_REFTAG,
			       0x100, 0x1234, 0xFFFF))
		bench_fail("cannot set up the DIF context");
	if (c == C_DIFVER && ferry_dif_generate(&a->dif, &a->ext, 1, a->nblk))
		bench_fail("dif-generate for dif-verify: %s", ferry_last_error());
	if (c >= C_ENC128 && c <= C_PIPE) {
		uint8_t k1[32], k2[32];
		for (int i = 0; i < 32; i++) {
			k1[i] = (uint8_t)(i * 7 + 1);
			k2[i] = (uint8_t)(i * 13 + 5);
		}
		int bits256 = c == C_ENC256 || c == C_DEC256;
		struct ferry_crypto_key_opts ko = {
			.size = sizeof(ko),
			.cipher = bits256 ? FERRY_CIPHER_AES_XTS_256 : FERRY_CIPHER_AES_XTS_128,
			.key1 = k1,
			.key2 = k2,
			.key_len = bits256 ? 32 : 16,
			.data_unit_size = BS};
		if (ferry_crypto_key_create(&ko, &a->key))
			bench_fail("key: %s", ferry_last_error());
	}
	if (ferry_accel_chan_create(NULL, NULL, &a->ch))
		bench_fail("chan_create: %s", ferry_last_error());
	for (uint32_t i = 0; i < QD_MAX; i++) {
		struct qd_slot *sl = &a->slot[i];
		sl->a = a;
		if (c == C_PIPE) {
			vbuf(a->ch, size, &sl->i1, &sl->v1);
			vbuf(a->ch, size, &sl->i2, &sl->v2);
			vbuf(a->ch, ext, &sl->i3, &sl->v3);
		}
	}
}

static void teardown(struct qd_arg *a)
{
	for (uint32_t i = 0; i < QD_MAX; i++) {
		struct qd_slot *sl = &a->slot[i];
		if (a->c == C_PIPE) {
			ferry_accel_put_buf(a->ch, sl->i1.iov_base, sl->v1.domain, sl->v1.domain_ctx);
			ferry_accel_put_buf(a->ch, sl->i2.iov_base, sl->v2.domain, sl->v2.domain_ctx);
			ferry_accel_put_buf(a->ch, sl->i3.iov_base, sl->v3.domain, sl->v3.domain_ctx);
		}
	}
	ferry_accel_chan_destroy(a->ch);
	ferry_crypto_key_destroy(a->key);
	free(a->src);
	free(a->dst);
	free(a->tmp);
}

/* The pipeline's bytes through the framework equal the direct calls' (checked once). */
static void check_pipeline(struct qd_arg *a)
{
	size_t ext = (size_t)a->nblk * EXT;
	uint8_t *ref = xalloc(ext);
	if (direct(a))
		bench_fail("pipeline (direct): %s", ferry_last_error());
	memcpy(ref, a->tmp, ext);
	memset(a->tmp, 0, ext);
	a->qd = 1;
	if (framework(a) || memcmp(ref, a->tmp, ext))
		bench_fail("pipeline: the framework's bytes differ from the direct calls'");
	free(ref);
}

static void run_case(enum qd_case c, size_t size)
{
	char name[64];
	snprintf(name, sizeof(name), "%s-%zuk", cases[c].name, size / 1024);
	if (!bench_selected(name))
		return;
	struct qd_arg a;
	setup(&a, c, size);
	if (c == C_PIPE)
		check_pipeline(&a);
	uint32_t depths[2] = {1, QD_MAX};
	for (int k = 0; k < 2; k++) {
		double direct_ops, fw_calls;
		a.qd = depths[k];
		/* alternate: direct, framework, direct, framework; best of each */
		double best_d = 0, best_f = 0;
		for (int r = 0; r < 2; r++) {
			bench_rate(direct, &a, size, &direct_ops);
			bench_rate(framework, &a, size * a.qd, &fw_calls);
			best_d = direct_ops > best_d ? direct_ops : best_d;
			best_f = fw_calls * a.qd > best_f ? fw_calls * a.qd : best_f;
		}
		double fw_gbps = best_f * (double)size / 1e9, d_gbps = best_d * (double)size / 1e9;
		double over = 1e9 / best_f - 1e9 / best_d;
		double spdk = size == 4096 ? cases[c].spdk_4k : cases[c].spdk_128k;
		char cname[80];
		snprintf(cname, sizeof(cname), "%s-qd%u", cases[c].name, a.qd);
		struct bench_kv kv[] = {
			{"size", NULL, (double)size},
			{"ops_per_s", NULL, best_f},
			{"gbps", NULL, fw_gbps},
			{"direct_gbps", NULL, d_gbps},
			{"overhead_ns", NULL, over},
			{"spdk_qd32_gbps", spdk > 0 ? NULL : "-", spdk},
		};
		bench_emit_fields("accel-qd", cname, kv, sizeof(kv) / sizeof(kv[0]));
	}
	teardown(&a);
}

void bench_suite_accel_qd(int json)
{
	(void)json; /* bench_emit_fields() follows bench_opts.json */
	static const size_t sizes[] = {4096, 131072};
	for (int c = 0; c < C_COUNT; c++)
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
			run_case((enum qd_case)c, sizes[s]);
	if (!bench_opts.json)
		printf("accel-qd: SPDK v26.05 accel_perf anchors: software module, one core, QD 32; "
		       "copy at 4 KiB = 109 ns/op\n");
}
