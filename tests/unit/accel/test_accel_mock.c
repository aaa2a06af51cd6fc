/*
 * Accel sequences on the mock engine: the seed write pipeline (host-domain source, copy ->
 * encrypt -> DIF insert -> copy into local memory) and the read path (reverse), with every
 * pass combination; fused execution byte-identical to the software engine for random data,
 * keys, LBAs and formats; the software engine bouncing host memory; IOMMU faults, injected
 * errors and PI mismatches surfacing as the sequence's -errno.
 */
#include <ferry/module/memdomain.h>
#include "test_accel_util.h"

static struct ferry_device *dev;
static struct ferry_mock_host *host;
static struct ferry_memdomain *nvme;

#define HOST_PAGES 512u /* IOVA page i -> host page i, read+write */
#define RO_PAGE 600u    /* IOVA page 600 -> host page 600, read only */

static void setup(void)
{
	dev = tm_open("host_mem=4M,functions=nvme");
	host = tm_host(dev);
	nvme = tm_domain(dev, "nvme");
	tm_map(host, "nvme", 0, 0, HOST_PAGES, TM_RW);
	tm_map(host, "nvme", RO_PAGE, RO_PAGE, 1, FERRY_MOCK_IOMMU_READ);
}

static void teardown(void)
{
	ferry_mock_host_close(host);
	ferry_device_close(dev);
}

static uint8_t *hptr(uint64_t iova, size_t len)
{
	uint8_t *p = ferry_mock_host_ptr(host, iova, len);
	cr_assert_not_null(p);
	return p;
}

static struct ferry_mem hmem(struct iovec *iov, uint64_t iova, size_t len)
{
	iov->iov_base = (void *)(uintptr_t)iova;
	iov->iov_len = len;
	return (struct ferry_mem){.domain = nvme, .iov = iov, .iovcnt = 1};
}

/* The seed write pipeline: host -> V1 -> encrypt -> V2 -> dif insert -> V3 -> local dst. */
struct wpipe {
	struct iovec hi, i1, i2, i3, di;
	struct ferry_mem h, v1, v2, v3, d;
};

static struct ferry_seq *write_pipe(struct ferry_accel_chan *ch, struct wpipe *p, uint64_t iova,
				    uint8_t *dst, struct ferry_crypto_key *key, uint64_t lba,
				    const struct ferry_dif_ctx *ctx, uint32_t n)
{
	size_t plain = (size_t)n * ctx->block_size, ext = (size_t)n * (ctx->block_size + 8);
	p->h = hmem(&p->hi, iova, plain);
	p->v1 = ta_virt(ch, &p->i1, plain);
	p->v2 = ta_virt(ch, &p->i2, plain);
	p->v3 = ta_virt(ch, &p->i3, ext);
	p->d = ta_sys(&p->di, dst, ext);
	struct ferry_seq *s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_copy(s, &p->v1, &p->h, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_encrypt(s, &p->v2, &p->v1, key, lba, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_dif_insert(s, &p->v3, &p->v2, ctx, n, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_copy(s, &p->d, &p->v3, NULL, NULL), 0);
	return s;
}

static void wpipe_put(struct ferry_accel_chan *ch, struct wpipe *p)
{
	ta_put(ch, &p->v1);
	ta_put(ch, &p->v2);
	ta_put(ch, &p->v3);
}

/* Reference bytes of the write pipeline, computed with the primitives. */
static void write_ref(const uint8_t *plainbuf, uint8_t *out, struct ferry_crypto_key *key,
		      uint64_t lba, const struct ferry_dif_ctx *ctx, uint32_t n)
{
	size_t plain = (size_t)n * ctx->block_size, ext = (size_t)n * (ctx->block_size + 8);
	uint8_t *tmp = malloc(plain);
	struct iovec s = {(void *)plainbuf, plain}, t = {tmp, plain}, o = {out, ext};
	cr_assert_eq(ferry_crypto_encrypt(key, &t, 1, &s, 1, lba), 0);
	cr_assert_eq(ferry_dif_insert(ctx, &o, 1, &t, 1, n), 0);
	free(tmp);
}

struct hook_log {
	char stages[8][16];
	char fuse[4096];
	int n;
};

static void hook(void *arg, const struct ferry_seq *seq, const char *stage, const char *dump)
{
	struct hook_log *h = arg;
	(void)seq;
	if (h->n < 8)
		snprintf(h->stages[h->n], sizeof(h->stages[0]), "%s", stage);
	h->n++;
	if (strcmp(stage, "materialise") == 0)
		snprintf(h->fuse, sizeof(h->fuse), "%s", dump);
}

TestSuite(accel_mock, .init = setup, .fini = teardown);

/* Expected output-byte counters of one pipeline run. */
struct out_bytes {
	uint64_t copied, out_hw, fused;
};

static void pipeline_case(uint32_t disabled, uint64_t elided, uint64_t fusions, uint64_t fused_ops,
			  uint64_t bufs, const char *chain, struct out_bytes want)
{
	struct ferry_accel_chan *ch = ta_chan(dev, disabled);
	struct hook_log hl;
	memset(&hl, 0, sizeof(hl));
	cr_assert_eq(ferry_accel_chan_set_plan_hook(ch, FERRY_SEQ_DUMP_TEXT, hook, &hl), 0);
	struct ferry_crypto_key *key = ta_key(11, FERRY_CIPHER_AES_XTS_128, 512);
	struct ferry_dif_ctx ctx = ta_dif(512, 1, FERRY_DIF_TYPE1, 4000);
	const uint32_t n = 16;
	uint64_t seed = 5;
	ta_fill_rand(hptr(8192, n * 512), n * 512, &seed);
	uint8_t *dst = calloc(1, n * 520), *ref = malloc(n * 520);
	struct wpipe p;
	struct ferry_seq *s = write_pipe(ch, &p, 8192, dst, key, 4000, &ctx, n);
	cr_assert_eq(ta_run(ch, s), 0);
	write_ref(hptr(8192, n * 512), ref, key, 4000, &ctx, n);
	cr_assert_eq(memcmp(dst, ref, n * 520), 0, "pipeline bytes");
	struct ferry_accel_stats st = ta_stats(ch);
	cr_assert_eq(st.copies_elided, elided);
	cr_assert_eq(st.fusions, fusions);
	cr_assert_eq(st.fused_ops, fused_ops);
	cr_assert_eq(st.bufs_taken, bufs, "pool buffers taken %llu",
		     (unsigned long long)st.bufs_taken);
	cr_assert_eq(st.bufs_in_use, 0);
	cr_assert_eq(st.bufs_peak, bufs);
	cr_assert_eq(st.sw_fallbacks, 0);
	cr_assert_eq(st.ops_sw[FERRY_ACCEL_OP_ENCRYPT], 0, "encrypt ran on the mock engine");
	cr_assert_eq(st.ops_hw[FERRY_ACCEL_OP_ENCRYPT], 1);
	cr_assert_eq(st.ops_hw[FERRY_ACCEL_OP_DIF_INSERT], 1);
	cr_assert_eq(st.bytes_copied, want.copied, "bytes copied %llu",
		     (unsigned long long)st.bytes_copied);
	cr_assert_eq(st.bytes_out_hw, want.out_hw, "engine output bytes %llu",
		     (unsigned long long)st.bytes_out_hw);
	cr_assert_eq(st.bytes_out_fused, want.fused, "fused output bytes %llu",
		     (unsigned long long)st.bytes_out_fused);
	cr_assert_eq(st.bytes_out_sw, 0);
	cr_assert_eq(st.bytes_bounced, 0, "the engine reaches the host: nothing bounced");
	cr_assert_eq(hl.n, 5, "input, elide, fuse, materialise, complete");
	cr_assert_str_eq(hl.stages[0], "input");
	cr_assert_str_eq(hl.stages[3], "materialise");
	cr_assert_str_eq(hl.stages[4], "complete");
	if (chain)
		cr_assert_not_null(strstr(hl.fuse, chain), "plan names the chain:\n%s", hl.fuse);
	else
		cr_assert_null(strstr(hl.fuse, "fused["), "no fusion:\n%s", hl.fuse);
	wpipe_put(ch, &p);
	ferry_accel_chan_destroy(ch);
	ferry_crypto_key_destroy(key);
	free(dst);
	free(ref);
}

/* The pipeline moves 16 blocks: PLAIN bytes from the host, EXT bytes (with PI) out. */
#define PLAIN (16u * 512u)
#define EXT (16u * 520u)

Test(accel_mock, pipeline_all_passes)
{
	/* both copies elided, encrypt+dif-insert fused, no pool buffer at all: nothing copied,
	 * the one fused operation writes the DIF-extended output once */
	pipeline_case(0, 2, 1, 2, 0, "encrypt+dif-insert", (struct out_bytes){0, EXT, EXT});
}

Test(accel_mock, pipeline_fusion_without_elision)
{
	/* pull+encrypt+dif-insert fused; V3 is materialised for the final copy */
	pipeline_case(FERRY_ACCEL_PASS_ELIDE, 0, 1, 3, 1, "pull+encrypt+dif-insert",
		      (struct out_bytes){EXT, EXT + EXT, EXT});
}

Test(accel_mock, pipeline_elision_only)
{
	/* encrypt reads the host, dif-insert writes dst; V2 needs a pool buffer */
	pipeline_case(FERRY_ACCEL_PASS_FUSE, 2, 0, 0, 1, NULL,
		      (struct out_bytes){0, PLAIN + EXT, 0});
}

Test(accel_mock, pipeline_no_passes)
{
	/* four operations, each writes its output; the two copies move PLAIN and EXT bytes */
	pipeline_case(FERRY_ACCEL_PASS_ELIDE | FERRY_ACCEL_PASS_FUSE, 0, 0, 0, 3, NULL,
		      (struct out_bytes){PLAIN + EXT, PLAIN + PLAIN + EXT + EXT, 0});
}

/* Read path as a bdev stack builds it: appended top-down, then reversed. Result in host. */
static struct ferry_seq *read_pipe(struct ferry_accel_chan *ch, struct wpipe *p, uint64_t iova,
				   uint8_t *stored, struct ferry_crypto_key *key, uint64_t lba,
				   const struct ferry_dif_ctx *ctx, uint32_t n,
				   struct ferry_dif_error *err)
{
	size_t plain = (size_t)n * ctx->block_size, ext = (size_t)n * (ctx->block_size + 8);
	p->h = hmem(&p->hi, iova, plain);
	p->v1 = ta_virt(ch, &p->i1, plain);
	p->v2 = ta_virt(ch, &p->i2, plain);
	p->v3 = ta_virt(ch, &p->i3, ext);
	p->d = ta_sys(&p->di, stored, ext);
	struct ferry_seq *s = ta_seq(ch);
	/* endpoint: host <- V1; crypto: V1 <- decrypt V2; dif: V2 <- strip V3; terminal: V3 <- L */
	cr_assert_eq(ferry_seq_append_copy(s, &p->h, &p->v1, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_decrypt(s, &p->v1, &p->v2, key, lba, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_dif_strip(s, &p->v2, &p->v3, ctx, n, err, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_copy(s, &p->v3, &p->d, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_reverse(s), 0);
	return s;
}

static void read_case(uint32_t disabled, const char *chain, uint64_t fused_ops,
		      uint64_t copied_blocks)
{
	struct ferry_accel_chan *ch = ta_chan(dev, disabled);
	struct hook_log hl;
	memset(&hl, 0, sizeof(hl));
	ferry_accel_chan_set_plan_hook(ch, FERRY_SEQ_DUMP_TEXT, hook, &hl);
	struct ferry_crypto_key *key = ta_key(12, FERRY_CIPHER_AES_XTS_256, 4096);
	struct ferry_dif_ctx ctx = ta_dif(4096, 1, FERRY_DIF_TYPE2, 77);
	const uint32_t n = 8;
	uint64_t seed = 9;
	uint8_t *plain = malloc(n * 4096), *stored = malloc(n * 4104);
	ta_fill_rand(plain, n * 4096, &seed);
	write_ref(plain, stored, key, 300, &ctx, n);
	memset(hptr(65536, n * 4096), 0, n * 4096);
	struct wpipe p;
	struct ferry_dif_error err;
	struct ferry_seq *s = read_pipe(ch, &p, 65536, stored, key, 300, &ctx, n, &err);
	cr_assert_eq(ta_run(ch, s), 0);
	cr_assert_eq(memcmp(hptr(65536, n * 4096), plain, n * 4096), 0, "host got the plaintext");
	struct ferry_accel_stats st = ta_stats(ch);
	cr_assert_eq(st.fusions, 1);
	cr_assert_eq(st.fused_ops, fused_ops);
	cr_assert_not_null(strstr(hl.fuse, chain), "%s", hl.fuse);
	/* the fused read writes the plaintext once; a copy it could not absorb is counted */
	cr_assert_eq(st.bytes_out_fused, n * 4096);
	cr_assert_eq(st.bytes_copied, copied_blocks * 4104);
	cr_assert_eq(st.bytes_out_hw, n * 4096 + copied_blocks * 4104);
	/* a corrupted guard is named by the fused read */
	stored[3 * 4104 + 100] ^= 0x40;
	wpipe_put(ch, &p);
	s = read_pipe(ch, &p, 65536, stored, key, 300, &ctx, n, &err);
	cr_assert_eq(ta_run(ch, s), -EILSEQ);
	cr_assert_eq(err.field, FERRY_DIF_FIELD_GUARD);
	cr_assert_eq(err.block, 3);
	wpipe_put(ch, &p);
	ferry_accel_chan_destroy(ch);
	ferry_crypto_key_destroy(key);
	free(plain);
	free(stored);
}

Test(accel_mock, read_path_reversed_fuses)
{
	read_case(0, "dif-strip+decrypt", 2, 0);
}

Test(accel_mock, read_path_push_chain_without_elision)
{
	/* the copy of the stored blocks into V3 stays a copy of its own */
	read_case(FERRY_ACCEL_PASS_ELIDE, "dif-strip+decrypt+push", 3, 8);
}

/* Software engine only: the host-domain source is bounced (pulled) into a pool buffer. */
Test(accel_mock, sw_engine_bounces_host_memory)
{
	struct ferry_accel_chan *ch = ta_chan(NULL, 0);
	struct ferry_crypto_key *key = ta_key(13, FERRY_CIPHER_AES_XTS_128, 4096);
	struct ferry_dif_ctx ctx = ta_dif(4096, 1, FERRY_DIF_TYPE1, 9);
	const uint32_t n = 4;
	uint64_t seed = 99;
	ta_fill_rand(hptr(0, n * 4096), n * 4096, &seed);
	uint8_t *dst = calloc(1, n * 4104), *ref = malloc(n * 4104);
	struct wpipe p;
	struct ferry_seq *s = write_pipe(ch, &p, 0, dst, key, 9, &ctx, n);
	cr_assert_eq(ta_run(ch, s), 0);
	write_ref(hptr(0, n * 4096), ref, key, 9, &ctx, n);
	cr_assert_eq(memcmp(dst, ref, n * 4104), 0);
	struct ferry_accel_stats st = ta_stats(ch);
	cr_assert_eq(st.copies_elided, 2);
	cr_assert_eq(st.bounces, 1, "one pull of the host source");
	cr_assert_eq(st.bufs_taken, 2, "bounce + V2");
	cr_assert_eq(st.ops_sw[FERRY_ACCEL_OP_ENCRYPT], 1);
	cr_assert_eq(st.bytes_bounced, n * 4096, "the pull moved the source");
	cr_assert_eq(st.bytes_copied, 0, "both copies elided");
	cr_assert_eq(st.bytes_out_sw, n * 4096 + n * 4104, "encrypt, then dif-insert");
	cr_assert_eq(st.bytes_out_hw, 0);
	/* and the reverse direction: a push into host memory */
	memset(hptr(0, n * 4096), 0, n * 4096);
	uint8_t *plain = malloc(n * 4096);
	ta_fill_rand(plain, n * 4096, &seed);
	write_ref(plain, ref, key, 9, &ctx, n);
	struct ferry_dif_error err;
	struct wpipe r;
	s = read_pipe(ch, &r, 0, ref, key, 9, &ctx, n, &err);
	cr_assert_eq(ta_run(ch, s), 0);
	cr_assert_eq(memcmp(hptr(0, n * 4096), plain, n * 4096), 0);
	st = ta_stats(ch);
	cr_assert_eq(st.bounces, 2, "plus one push");
	cr_assert_eq(st.bytes_bounced, 2 * n * 4096, "the push moved the plaintext");
	cr_assert_eq(st.bytes_out_sw, n * 4096 + n * 4104 + 2 * n * 4096,
		     "plus dif-strip and decrypt (both plain blocks)");
	cr_assert_eq(st.bytes_copied, 0, "the read's copies are elided too");
	wpipe_put(ch, &p);
	wpipe_put(ch, &r);
	ferry_accel_chan_destroy(ch);
	ferry_crypto_key_destroy(key);
	free(dst);
	free(ref);
	free(plain);
}

/* Random data, keys, LBAs, formats: fused mock == software engine with no passes. */
Test(accel_mock, fused_matches_software_random)
{
	struct ferry_accel_chan *hw = ta_chan(dev, 0);
	struct ferry_accel_chan *sw = ta_chan(NULL, FERRY_ACCEL_PASS_ELIDE | FERRY_ACCEL_PASS_FUSE);
	uint64_t seed = 0xfeedull;
	for (int it = 0; it < 40; it++) {
		uint32_t bs = (tm_rand(&seed) & 1) ? 4096 : 512;
		enum ferry_dif_type type = (enum ferry_dif_type)(1 + tm_rand(&seed) % 3);
		uint32_t n = 1 + (uint32_t)(tm_rand(&seed) % (bs == 512 ? 64 : 16));
		uint64_t lba = tm_rand(&seed) % 1000000;
		enum ferry_cipher c = (tm_rand(&seed) & 1) ? FERRY_CIPHER_AES_XTS_256
							   : FERRY_CIPHER_AES_XTS_128;
		uint32_t du = (bs == 4096 && (tm_rand(&seed) & 1)) ? 4096 : 512;
		struct ferry_crypto_key *key = ta_key(tm_rand(&seed), c, du);
		struct ferry_dif_ctx ctx = ta_dif(bs, 1, type, (uint32_t)lba);
		uint64_t iova = (tm_rand(&seed) % 64) * 4096 + (tm_rand(&seed) % 8) * 512;
		size_t plain = (size_t)n * bs, ext = (size_t)n * (bs + 8);
		ta_fill_rand(hptr(iova, plain), plain, &seed);
		uint8_t *d1 = calloc(1, ext), *d2 = calloc(1, ext);
		struct wpipe p1, p2;
		struct ferry_seq *s = write_pipe(hw, &p1, iova, d1, key, lba, &ctx, n);
		cr_assert_eq(ta_run(hw, s), 0);
		s = write_pipe(sw, &p2, iova, d2, key, lba, &ctx, n);
		cr_assert_eq(ta_run(sw, s), 0);
		cr_assert_eq(memcmp(d1, d2, ext), 0, "iteration %d (bs %u, n %u, du %u)", it, bs, n,
			     du);
		/* and back: fused read into host memory == plaintext */
		uint64_t riova = 0x100000 + (tm_rand(&seed) % 16) * 4096;
		memset(hptr(riova, plain), 0, plain);
		struct wpipe r;
		struct ferry_dif_error err;
		s = read_pipe(hw, &r, riova, d1, key, lba, &ctx, n, &err);
		cr_assert_eq(ta_run(hw, s), 0);
		cr_assert_eq(memcmp(hptr(riova, plain), hptr(iova, plain), plain), 0);
		wpipe_put(hw, &p1);
		wpipe_put(sw, &p2);
		wpipe_put(hw, &r);
		ferry_crypto_key_destroy(key);
		free(d1);
		free(d2);
	}
	struct ferry_accel_stats st = ta_stats(hw);
	cr_assert_eq(st.fusions, 80);
	cr_assert_eq(st.bufs_taken, 0);
	ferry_accel_chan_destroy(hw);
	ferry_accel_chan_destroy(sw);
}

/* Every single op on the mock engine == software engine. */
Test(accel_mock, single_ops_on_engine)
{
	struct ferry_accel_chan *hw = ta_chan(dev, 0);
	const size_t len = 4 * 520;
	uint8_t *a = malloc(len), *b = calloc(1, len), *c = calloc(1, len);
	uint64_t seed = 3;
	ta_fill_rand(a, len, &seed);
	memcpy(hptr(0, len), a, len);
	struct iovec ia, ib, ic, ih;
	struct ferry_mem ma = ta_sys(&ia, a, 2048), mb = ta_sys(&ib, b, 2048),
			 mh = hmem(&ih, 0, 2048);
	struct ferry_dif_ctx ctx = ta_dif(512, 1, FERRY_DIF_TYPE1, 5);
	uint32_t crc = 0;
	struct ferry_seq *s = ta_seq(hw);
	cr_assert_eq(ferry_seq_append_copy(s, &mb, &mh, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_compare(s, &ma, &mb, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_crc32c(s, &mh, 0, &crc, NULL, NULL), 0);
	struct ferry_mem mc = ta_sys(&ic, c, len);
	cr_assert_eq(ferry_seq_append_dif_insert(s, &mc, &ma, &ctx, 4, NULL, NULL), 0);
	cr_assert_eq(ta_run(hw, s), 0);
	cr_assert_eq(memcmp(a, b, 2048), 0);
	cr_assert_eq(crc, ferry_crc32c(0, a, 2048));
	struct ferry_accel_stats st = ta_stats(hw);
	cr_assert_eq(st.ops_hw[FERRY_ACCEL_OP_COPY], 1);
	cr_assert_eq(st.ops_hw[FERRY_ACCEL_OP_COMPARE], 1);
	cr_assert_eq(st.ops_hw[FERRY_ACCEL_OP_CRC32C], 1);
	cr_assert_eq(st.ops_hw[FERRY_ACCEL_OP_DIF_INSERT], 1);
	cr_assert_eq(st.bytes_hw, 4 * 2048);
	cr_assert_eq(st.bytes_copied, 2048, "the copy");
	cr_assert_eq(st.bytes_out_hw, 2048 + 4 * 520, "copy and dif-insert; compare and crc write "
						     "nothing");
	cr_assert_eq(st.bytes_out_fused, 0);
	ferry_accel_chan_destroy(hw);
	free(a);
	free(b);
	free(c);
}

struct two_steps {
	struct ta_steps log;
	struct ta_step_arg a[4];
};

/* Injected engine errors and IOMMU faults become the sequence's status. */
Test(accel_mock, errors_surface_as_errno)
{
	ferry_log_set_handler(tm_quiet_log);
	struct ferry_accel_chan *ch = ta_chan(dev, 0);
	struct ferry_crypto_key *key = ta_key(14, FERRY_CIPHER_AES_XTS_128, 512);
	struct ferry_dif_ctx ctx = ta_dif(512, 1, FERRY_DIF_TYPE1, 0);
	uint8_t *dst = calloc(1, 8 * 520);
	const struct {
		enum ferry_xfer_status st;
		int err;
	} cases[] = {{FERRY_XFER_PAGE_FAULT, -EFAULT},
		     {FERRY_XFER_BUS_READ_ERROR, -EIO},
		     {FERRY_XFER_DATA_POISONED, -EIO},
		     {FERRY_XFER_INVALID_SRC_ADDR, -EFAULT}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_assert_eq(ferry_mock_inject_nth(dev, FERRY_MOCK_CHAN_ANY, 1, cases[i].st), 0);
		struct wpipe p;
		struct ferry_seq *s = write_pipe(ch, &p, 0, dst, key, 0, &ctx, 8);
		cr_assert_eq(ta_run(ch, s), cases[i].err, "status %d", (int)cases[i].st);
		wpipe_put(ch, &p);
	}
	/* per-step callbacks: the fused pair fails at the encrypt; everything after is cancelled */
	struct two_steps ts;
	memset(&ts, 0, sizeof(ts));
	for (int i = 0; i < 4; i++)
		ts.a[i] = (struct ta_step_arg){&ts.log, i};
	cr_assert_eq(ferry_mock_inject_nth(dev, FERRY_MOCK_CHAN_ANY, 1, FERRY_XFER_PAGE_FAULT), 0);
	struct wpipe p;
	p.h = hmem(&p.hi, 0, 4096);
	p.v1 = ta_virt(ch, &p.i1, 4096);
	p.v2 = ta_virt(ch, &p.i2, 4096);
	p.v3 = ta_virt(ch, &p.i3, 8 * 520);
	p.d = ta_sys(&p.di, dst, 8 * 520);
	struct ferry_seq *s = ta_seq(ch);
	ferry_seq_append_copy(s, &p.v1, &p.h, ta_step_cb, &ts.a[0]);
	ferry_seq_append_encrypt(s, &p.v2, &p.v1, key, 0, ta_step_cb, &ts.a[1]);
	ferry_seq_append_dif_insert(s, &p.v3, &p.v2, &ctx, 8, ta_step_cb, &ts.a[2]);
	ferry_seq_append_copy(s, &p.d, &p.v3, ta_step_cb, &ts.a[3]);
	cr_assert_eq(ta_run(ch, s), -EFAULT);
	cr_assert_eq(ts.log.n, 4);
	int want[4] = {0, -EFAULT, -ECANCELED, -ECANCELED};
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(ts.log.order[i], i);
		cr_assert_eq(ts.log.status[i], want[i], "step %d: %d", i, ts.log.status[i]);
	}
	wpipe_put(ch, &p);
	/* an unmapped host page (real IOMMU check, nothing injected) */
	struct wpipe q;
	s = write_pipe(ch, &q, (uint64_t)(HOST_PAGES + 5) * 4096, dst, key, 0, &ctx, 8);
	cr_assert_eq(ta_run(ch, s), -EFAULT);
	wpipe_put(ch, &q);
	/* the read path pushing into a read-only page faults */
	uint8_t *stored = malloc(8 * 520), *plain = calloc(1, 4096);
	write_ref(plain, stored, key, 0, &ctx, 8);
	struct ferry_dif_error err;
	s = read_pipe(ch, &q, (uint64_t)RO_PAGE * 4096, stored, key, 0, &ctx, 8, &err);
	cr_assert_eq(ta_run(ch, s), -EFAULT);
	wpipe_put(ch, &q);
	struct ferry_accel_stats st = ta_stats(ch);
	cr_assert_eq(st.errors, 7);
	cr_assert_eq(st.bufs_in_use, 0);
	cr_assert_eq(st.bytes_out_hw, 0, "every fused operation failed: no output counted");
	cr_assert_eq(st.bytes_out_fused, 0);
	cr_assert_eq(st.bytes_copied, 0);
	ferry_accel_chan_destroy(ch);
	ferry_crypto_key_destroy(key);
	free(dst);
	free(stored);
	free(plain);
	ferry_log_set_handler(NULL);
}

/* A failing bounce: the software engine pulls through the function's internal channel. */
Test(accel_mock, bounce_pull_error)
{
	ferry_log_set_handler(tm_quiet_log);
	struct ferry_accel_chan *ch = ta_chan(NULL, 0);
	uint8_t dst[4096];
	struct iovec ih, id;
	struct ferry_mem h = hmem(&ih, 0, 4096), d = ta_sys(&id, dst, 4096);
	uint32_t crc;
	cr_assert_eq(ferry_mock_inject_nth(dev, FERRY_MOCK_CHAN_FN(0), 1,
					   FERRY_XFER_BUS_READ_ERROR),
		     0);
	struct ferry_seq *s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_copy_crc32c(s, &d, &h, 0, &crc, NULL, NULL), 0);
	cr_assert_eq(ta_run(ch, s), -EIO);
	struct ferry_accel_stats st = ta_stats(ch);
	cr_assert_eq(st.bufs_in_use, 0);
	cr_assert_eq(st.bounces, 1);
	ferry_accel_chan_destroy(ch);
	ferry_log_set_handler(NULL);
}

/* Source and destination of a fused chain overlap: the engine cannot stream (it would
 * overwrite source bytes it still needs) and runs the chain through its scratch memory.
 * Local buffers for encrypt+dif-insert; the same host pages for pull+encrypt+dif-insert. */
Test(accel_mock, fused_chain_with_overlapping_buffers)
{
	for (int pull = 0; pull < 2; pull++) {
		struct ferry_accel_chan *ch = ta_chan(dev, pull ? FERRY_ACCEL_PASS_ELIDE : 0);
		struct ferry_crypto_key *key = ta_key(21, FERRY_CIPHER_AES_XTS_128, 512);
		struct ferry_dif_ctx ctx = ta_dif(512, 1, FERRY_DIF_TYPE3, 8);
		const uint32_t n = 6;
		uint8_t *local = malloc(n * 520), *ref = malloc(n * 520);
		uint8_t *buf = pull ? hptr(40960, n * 520) : local;
		uint64_t seed = 31;
		ta_fill_rand(buf, n * 520, &seed);
		write_ref(buf, ref, key, 8, &ctx, n);
		struct iovec ia, io, i1, i2;
		struct ferry_mem a = pull ? hmem(&ia, 40960, n * 512) : ta_sys(&ia, buf, n * 512);
		struct ferry_mem out = pull ? hmem(&io, 40960, n * 520) : ta_sys(&io, buf, n * 520);
		struct ferry_mem v1 = ta_virt(ch, &i1, n * 512), v2 = ta_virt(ch, &i2, n * 512);
		struct ferry_seq *s = ta_seq(ch);
		if (pull) {
			cr_assert_eq(ferry_seq_append_copy(s, &v1, &a, NULL, NULL), 0);
			cr_assert_eq(ferry_seq_append_encrypt(s, &v2, &v1, key, 8, NULL, NULL), 0);
		} else {
			cr_assert_eq(ferry_seq_append_encrypt(s, &v2, &a, key, 8, NULL, NULL), 0);
		}
		cr_assert_eq(ferry_seq_append_dif_insert(s, &out, &v2, &ctx, n, NULL, NULL), 0);
		cr_assert_eq(ta_run(ch, s), 0);
		cr_assert_eq(memcmp(buf, ref, n * 520), 0, "pull=%d", pull);
		struct ferry_accel_stats st = ta_stats(ch);
		cr_assert_eq(st.fusions, 1);
		cr_assert_eq(st.fused_ops, pull ? 3 : 2);
		cr_assert_eq(st.bufs_taken, 0);
		ta_put(ch, &v1);
		ta_put(ch, &v2);
		ferry_accel_chan_destroy(ch);
		ferry_crypto_key_destroy(key);
		free(local);
		free(ref);
	}
}

/* More descriptors than the engine accepts at once: the rest wait and go in as it drains. */
Test(accel_mock, engine_ring_full_then_drains)
{
	struct ferry_accel_chan_opts o = {.size = sizeof(o), .max_seqs = 1500, .max_tasks = 1500};
	struct ferry_accel_chan *ch;
	cr_assert_eq(ferry_accel_chan_create(dev, &o, &ch), 0);
	ferry_mock_set_latency(dev, 20000); /* keep them in flight while we submit */
	static uint8_t bufs[1500][64];
	static struct iovec iov[1500];
	static struct ferry_mem m[1500];
	struct ta_done d[1500];
	memset(d, 0, sizeof(d));
	for (int i = 0; i < 1500; i++) {
		m[i] = ta_sys(&iov[i], bufs[i], 64);
		struct ferry_seq *s = ta_seq(ch);
		cr_assert_eq(ferry_seq_append_fill(s, &m[i], (uint8_t)i, NULL, NULL), 0);
		cr_assert_eq(ferry_seq_finish(s, ta_done_cb, &d[i]), 0);
	}
	int got = 0;
	uint64_t end = tm_now_ns() + 10000000000ull;
	while (got < 1500 && tm_now_ns() < end) {
		int n = ferry_accel_chan_poll(ch, 64);
		cr_assert_geq(n, 0);
		got += n;
	}
	cr_assert_eq(got, 1500);
	for (int i = 0; i < 1500; i++) {
		cr_assert_eq(d[i].calls, 1);
		cr_assert_eq(d[i].status, 0);
		cr_assert_eq(bufs[i][63], (uint8_t)i);
	}
	cr_assert_eq(ta_stats(ch).ops_hw[FERRY_ACCEL_OP_FILL], 1500);
	ferry_mock_set_latency(dev, 0);
	ferry_accel_chan_destroy(ch);
}

/* Destroying a channel drives what is in flight to completion (callbacks run inside). */
Test(accel_mock, destroy_drains_in_flight)
{
	struct ferry_accel_chan *ch = ta_chan(dev, 0);
	ferry_mock_set_latency(dev, 1000000);
	uint8_t b[4096];
	struct iovec ib, ih;
	struct ferry_mem mb = ta_sys(&ib, b, 4096), mh = hmem(&ih, 0, 4096);
	memset(hptr(0, 4096), 0x3c, 4096);
	struct ta_done d1 = {0, 0};
	struct ferry_seq *s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_copy(s, &mb, &mh, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_finish(s, ta_done_cb, &d1), 0);
	struct ta_steps log;
	memset(&log, 0, sizeof(log));
	struct ta_step_arg arg = {&log, 0};
	struct ferry_seq *unfinished = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_fill(unfinished, &mb, 0, ta_step_cb, &arg), 0);
	ferry_accel_chan_destroy(ch);
	cr_assert_eq(d1.calls, 1);
	cr_assert_eq(d1.status, 0);
	cr_assert_eq(b[4095], 0x3c);
	cr_assert_eq(log.n, 1, "the unfinished sequence was aborted");
	cr_assert_eq(log.status[0], -ECANCELED);
	ferry_mock_set_latency(dev, 0);
}

/*
 * One host page at two IOVAs (an IOMMU may legally do this): host page 0 is IOVA page 0 and
 * IOVA page ALIAS_PAGE. The host domain does not declare that distinct addresses never
 * alias, so elision must treat the two IOVAs as possibly the same bytes: every pass
 * combination gives the bytes of the sequence as written.
 */
#define ALIAS_PAGE 700u

/* copy(IOVA 0 -> V); fill(IOVA alias); copy(V -> local): local holds the bytes before the
 * fill. Then encrypt(local -> V2); fill(IOVA alias); copy(V2 -> IOVA 0): host page 0 ends
 * encrypted. Returns the two results in @out_local and @out_host. */
static uint64_t alias_run(uint32_t disabled, struct ferry_device *d, uint8_t *out_local,
		      uint8_t *out_host, struct ferry_crypto_key *key)
{
	struct ferry_accel_chan *ch = ta_chan(d, disabled);
	uint64_t seed = 42;
	ta_fill_rand(hptr(0, 4096), 4096, &seed);
	struct iovec ih, ia, iv, il;
	struct ferry_mem h = hmem(&ih, 0, 4096);
	struct ferry_mem a = hmem(&ia, (uint64_t)ALIAS_PAGE * 4096, 4096);
	struct ferry_mem v = ta_virt(ch, &iv, 4096);
	struct ferry_mem l = ta_sys(&il, out_local, 4096);
	struct ferry_seq *s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_copy(s, &v, &h, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_fill(s, &a, 0xee, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_copy(s, &l, &v, NULL, NULL), 0);
	cr_assert_eq(ta_run(ch, s), 0);
	uint8_t *plain = malloc(4096);
	ta_fill_rand(plain, 4096, &seed);
	struct iovec ip, iv2;
	struct ferry_mem p = ta_sys(&ip, plain, 4096);
	struct ferry_mem v2 = ta_virt(ch, &iv2, 4096);
	s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_encrypt(s, &v2, &p, key, 3, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_fill(s, &a, 0xee, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_copy(s, &h, &v2, NULL, NULL), 0);
	cr_assert_eq(ta_run(ch, s), 0);
	memcpy(out_host, hptr(0, 4096), 4096);
	uint64_t elided = ta_stats(ch).copies_elided;
	ta_put(ch, &v);
	ta_put(ch, &v2);
	ferry_accel_chan_destroy(ch);
	free(plain);
	return elided;
}

Test(accel_mock, elision_respects_iommu_aliases)
{
	tm_map(host, "nvme", ALIAS_PAGE, 0, 1, TM_RW);
	struct ferry_crypto_key *key = ta_key(21, FERRY_CIPHER_AES_XTS_128, 512);
	uint8_t ref_l[4096], ref_h[4096], l[4096], h[4096];
	/* Reference: no passes, on the software engine (bounces through the domain). */
	alias_run(FERRY_ACCEL_PASS_ELIDE | FERRY_ACCEL_PASS_FUSE, NULL, ref_l, ref_h, key);
	uint64_t seed = 42;
	uint8_t orig[4096];
	ta_fill_rand(orig, 4096, &seed);
	cr_assert_eq(memcmp(ref_l, orig, 4096), 0, "the copy took the bytes before the fill");
	cr_assert_neq(ref_h[0] == 0xee && ref_h[4095] == 0xee, 1, "host page ends encrypted");
	struct ferry_device *devs[2] = {NULL, dev};
	uint32_t passes[3] = {0, FERRY_ACCEL_PASS_FUSE, FERRY_ACCEL_PASS_ELIDE};
	for (int e = 0; e < 2; e++) {
		for (int k = 0; k < 3; k++) {
			uint64_t elided = alias_run(passes[k], devs[e], l, h, key);
			cr_assert_eq(memcmp(l, ref_l, 4096), 0, "local bytes, engine %d passes %d",
				     e, k);
			cr_assert_eq(memcmp(h, ref_h, 4096), 0, "host bytes, engine %d passes %d", e,
				     k);
			cr_assert_eq(elided, 0, "no copy may be elided across an alias");
		}
	}
	ferry_crypto_key_destroy(key);
}

/* The system domain vouches that its distinct addresses never alias: elision still fires
 * there (and in the accel domain); the mock's host domains do not vouch. */
Test(accel_mock, no_alias_flag_of_domains)
{
	cr_assert(ferry_memdomain_get_flags(NULL) & FERRY_MEMDOMAIN_F_NO_ALIAS);
	cr_assert(ferry_memdomain_get_flags(ferry_accel_get_domain()) & FERRY_MEMDOMAIN_F_NO_ALIAS);
	cr_assert_eq(ferry_memdomain_get_flags(nvme) & FERRY_MEMDOMAIN_F_NO_ALIAS, 0);
}

struct err_seen {
	int calls;
	int status;
	char msg[512];
};

static void err_seen_cb(void *arg, int status)
{
	struct err_seen *e = arg;
	e->calls++;
	e->status = status;
	snprintf(e->msg, sizeof(e->msg), "%s", ferry_last_error());
}

/* A fault detected on the mock's engine thread: the completion callback, on the channel's
 * thread, finds the reason in ferry_last_error() (op, engine, status, the IOMMU's words). */
Test(accel_mock, engine_error_reaches_last_error)
{
	ferry_log_set_handler(tm_quiet_log);
	struct ferry_accel_chan *ch = ta_chan(dev, 0);
	uint8_t dst[4096];
	struct iovec ih, id;
	uint64_t bad = (uint64_t)(HOST_PAGES + 9) * 4096;
	struct ferry_mem h = hmem(&ih, bad, 4096), d = ta_sys(&id, dst, 4096);
	struct ferry_seq *s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_copy(s, &d, &h, NULL, NULL), 0);
	struct err_seen e;
	memset(&e, 0, sizeof(e));
	cr_assert_eq(ferry_seq_finish(s, err_seen_cb, &e), 0);
	/* another error on this thread in between must not hide the reason */
	cr_assert_eq(ferry_seq_create(NULL, NULL), -EINVAL);
	uint64_t end = tm_now_ns() + 5000000000ull;
	while (!e.calls && tm_now_ns() < end)
		ferry_accel_chan_poll(ch, 16);
	cr_assert_eq(e.calls, 1);
	cr_assert_eq(e.status, -EFAULT);
	cr_assert_not_null(strstr(e.msg, "copy"), "names the op: %s", e.msg);
	cr_assert_not_null(strstr(e.msg, ferry_device_get_name(dev)), "names the engine: %s",
			   e.msg);
	cr_assert_not_null(strstr(e.msg, ferry_strerror(-EFAULT)), "names the status: %s", e.msg);
	cr_assert_not_null(strstr(e.msg, "not mapped"), "carries the engine's reason: %s", e.msg);
	/* an injected error: the reason says so */
	cr_assert_eq(ferry_mock_inject_nth(dev, FERRY_MOCK_CHAN_ANY, 1, FERRY_XFER_DATA_POISONED),
		     0);
	struct ferry_mem h0 = hmem(&ih, 0, 4096);
	s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_copy(s, &d, &h0, NULL, NULL), 0);
	memset(&e, 0, sizeof(e));
	cr_assert_eq(ferry_seq_finish(s, err_seen_cb, &e), 0);
	end = tm_now_ns() + 5000000000ull;
	while (!e.calls && tm_now_ns() < end)
		ferry_accel_chan_poll(ch, 16);
	cr_assert_eq(e.status, -EIO);
	cr_assert_not_null(strstr(e.msg, "inject"), "injected: %s", e.msg);
	ferry_accel_chan_destroy(ch);
	ferry_log_set_handler(NULL);
}
