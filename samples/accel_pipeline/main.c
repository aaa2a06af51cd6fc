/*
 * accel_pipeline: the seed write pipeline of the source documents (part 3), as a bdev stack
 * would build it, optimised by Ferry's sequence passes and run on the mock DMA engine.
 *
 *   NVMe WRITE data in host memory (the mock's "nvme" PCI function, an IOVA)
 *     copy    host      -> accel V1   (endpoint: "the data is over there")
 *     encrypt V1        -> accel V2   (crypto bdev, AES-XTS, tweak = LBA)
 *     dif-ins V2        -> accel V3   (dif bdev, 512+8 / 4096+8)
 *     copy    V3        -> local dst  (terminal bdev: bytes it can send)
 *
 * The plan hook prints the plan before the passes and after elision, fusion and
 * materialisation; then the counters (copies elided, fused operations, pool buffers, bytes
 * copied and bytes written by the engine) and a comparison of the three ways to run it (all
 * passes, elision only, no passes). The result is
 * checked byte for byte against the primitives (ferry_crypto_encrypt + ferry_dif_insert).
 *
 * Usage: accel_pipeline [--json] [--quiet] [--plans all|elision|none] [--blocks N]
 *                       [--block-size 512|4096]
 *   --plans picks the run whose plans are printed (default: all passes).
 * Exits 0 only if every run produced the right bytes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ferry/ferry.h>
#include <ferry/accel.h>
#include <ferry/crypto.h>
#include <ferry/dif.h>
#include <ferry/mock.h> /* the simulated host: IOMMU mapping and host RAM */

#define PAGE 4096u
#define SRC_IOVA 0x10000u /* the host buffer's IOVA in the nvme function */
#define LBA 2048u

struct opts {
	int json;
	int quiet;
	int mode; /* whose plans are printed: 0 all passes, 1 elision only, 2 none */
	uint32_t blocks;
	uint32_t bs;
};

struct done {
	int calls;
	int status;
};

static void done_cb(void *arg, int status)
{
	struct done *d = arg;
	d->calls++;
	d->status = status;
}

static void plan_hook(void *arg, const struct ferry_seq *seq, const char *stage, const char *dump)
{
	const struct opts *o = arg;
	(void)seq;
	if (o->quiet)
		return;
	if (o->json)
		printf("{\"stage\":\"%s\",\"plan\":%s}\n", stage, dump);
	else
		printf("--- plan after stage \"%s\" ---\n%s", stage, dump);
}

static int get_vbuf(struct ferry_accel_chan *ch, size_t len, struct iovec *iov, struct ferry_mem *m)
{
	void *buf, *ctx;
	struct ferry_memdomain *d;
	int rc = ferry_accel_get_buf(ch, len, &buf, &d, &ctx);
	if (rc)
		return rc;
	*iov = (struct iovec){buf, len};
	*m = (struct ferry_mem){.domain = d, .domain_ctx = ctx, .iov = iov, .iovcnt = 1};
	return 0;
}

struct run_result {
	struct ferry_accel_stats st;
	int ok;
};

/* Build, finish and run the pipeline once on a new channel; compare with @ref. */
static int run_once(struct ferry_device *dev, struct ferry_memdomain *nvme, const struct opts *o,
		    uint32_t disabled, int show, struct ferry_crypto_key *key,
		    const struct ferry_dif_ctx *ctx, const uint8_t *ref, struct run_result *res)
{
	size_t plain = (size_t)o->blocks * o->bs, ext = (size_t)o->blocks * (o->bs + 8);
	struct ferry_accel_chan_opts copts = {.size = sizeof(copts), .disabled_passes = disabled};
	struct ferry_accel_chan *ch;
	int rc = ferry_accel_chan_create(dev, &copts, &ch);
	if (rc) {
		fprintf(stderr, "accel channel: %s\n", ferry_last_error());
		return rc;
	}
	if (show)
		ferry_accel_chan_set_plan_hook(ch,
					       o->json ? FERRY_SEQ_DUMP_JSON : FERRY_SEQ_DUMP_TEXT,
					       plan_hook, (void *)o);
	uint8_t *dst = calloc(1, ext);
	struct iovec hi = {(void *)(uintptr_t)SRC_IOVA, plain}, di = {dst, ext};
	struct iovec i1 = {0}, i2 = {0}, i3 = {0};
	struct ferry_mem host = {.domain = nvme, .iov = &hi, .iovcnt = 1};
	struct ferry_mem local = {.domain = NULL, .iov = &di, .iovcnt = 1};
	struct ferry_mem v1 = {0}, v2 = {0}, v3 = {0}; /* domain set once taken */
	struct ferry_seq *seq = NULL;
	rc = dst ? get_vbuf(ch, plain, &i1, &v1) : -ENOMEM;
	if (!rc)
		rc = get_vbuf(ch, plain, &i2, &v2);
	if (!rc)
		rc = get_vbuf(ch, ext, &i3, &v3);
	if (!rc)
		rc = ferry_seq_create(ch, &seq);
	if (!rc)
		rc = ferry_seq_append_copy(seq, &v1, &host, NULL, NULL);
	if (!rc)
		rc = ferry_seq_append_encrypt(seq, &v2, &v1, key, LBA, NULL, NULL);
	if (!rc)
		rc = ferry_seq_append_dif_insert(seq, &v3, &v2, ctx, o->blocks, NULL, NULL);
	if (!rc)
		rc = ferry_seq_append_copy(seq, &local, &v3, NULL, NULL);
	struct done d = {0, 0};
	if (!rc)
		rc = ferry_seq_finish(seq, done_cb, &d);
	if (rc) {
		fprintf(stderr, "building the sequence: %s (%s)\n", ferry_strerror(rc),
			ferry_last_error());
		if (seq)
			ferry_seq_abort(seq);
	} else {
		while (!d.calls)
			ferry_accel_chan_poll(ch, 8);
		rc = d.status;
		if (rc)
			fprintf(stderr, "sequence failed: %s\n", ferry_strerror(rc));
	}
	res->ok = rc == 0 && memcmp(dst, ref, ext) == 0;
	res->st.size = sizeof(res->st);
	ferry_accel_get_stats(ch, &res->st);
	if (v1.domain)
		ferry_accel_put_buf(ch, i1.iov_base, v1.domain, v1.domain_ctx);
	if (v2.domain)
		ferry_accel_put_buf(ch, i2.iov_base, v2.domain, v2.domain_ctx);
	if (v3.domain)
		ferry_accel_put_buf(ch, i3.iov_base, v3.domain, v3.domain_ctx);
	ferry_accel_chan_destroy(ch);
	free(dst);
	return rc;
}

/* Engine descriptors submitted: single ops plus one per fused chain. */
static uint64_t descriptors(const struct ferry_accel_stats *s)
{
	uint64_t hw = 0;
	for (int i = 0; i < FERRY_ACCEL_OP_COUNT; i++)
		hw += s->ops_hw[i];
	return hw - s->fused_ops + s->fusions;
}

static void print_counters(const struct opts *o, const char *mode, const struct run_result *r)
{
	const struct ferry_accel_stats *s = &r->st;
	uint64_t hw = 0, sw = 0;
	for (int i = 0; i < FERRY_ACCEL_OP_COUNT; i++) {
		hw += s->ops_hw[i];
		sw += s->ops_sw[i];
	}
	if (o->json)
		printf("{\"mode\":\"%s\",\"bytes_ok\":%s,\"copies_elided\":%llu,\"fusions\":%llu,"
		       "\"fused_ops\":%llu,\"pool_buffers\":%llu,\"pool_peak\":%llu,"
		       "\"engine_ops\":%llu,\"software_ops\":%llu,\"bounces\":%llu,"
		       "\"bytes_copied\":%llu,\"bytes_bounced\":%llu,\"bytes_out_engine\":%llu,"
		       "\"bytes_out_software\":%llu,\"bytes_out_fused\":%llu}\n",
		       mode, r->ok ? "true" : "false", (unsigned long long)s->copies_elided,
		       (unsigned long long)s->fusions, (unsigned long long)s->fused_ops,
		       (unsigned long long)s->bufs_taken, (unsigned long long)s->bufs_peak,
		       (unsigned long long)hw, (unsigned long long)sw,
		       (unsigned long long)s->bounces, (unsigned long long)s->bytes_copied,
		       (unsigned long long)s->bytes_bounced, (unsigned long long)s->bytes_out_hw,
		       (unsigned long long)s->bytes_out_sw, (unsigned long long)s->bytes_out_fused);
	else
		printf("  %-14s bytes %-4s  copies elided %llu  fused ops %llu (in %llu operation%s)"
		       "  pool buffers %llu  engine ops %llu  software ops %llu\n"
		       "  %-14s bytes copied %llu  bounced %llu  written by the engine %llu (by "
		       "fused operations %llu)  by software %llu\n",
		       mode, r->ok ? "ok" : "BAD", (unsigned long long)s->copies_elided,
		       (unsigned long long)s->fused_ops, (unsigned long long)s->fusions,
		       s->fusions == 1 ? "" : "s", (unsigned long long)s->bufs_taken,
		       (unsigned long long)hw, (unsigned long long)sw, "",
		       (unsigned long long)s->bytes_copied, (unsigned long long)s->bytes_bounced,
		       (unsigned long long)s->bytes_out_hw, (unsigned long long)s->bytes_out_fused,
		       (unsigned long long)s->bytes_out_sw);
}

static int parse(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){.json = 0, .quiet = 0, .mode = 0, .blocks = 8, .bs = 512};
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			o->json = 1;
		else if (!strcmp(argv[i], "--quiet"))
			o->quiet = 1;
		else if (!strcmp(argv[i], "--plans") && i + 1 < argc) {
			i++;
			o->mode = !strcmp(argv[i], "all")       ? 0
				  : !strcmp(argv[i], "elision") ? 1
				  : !strcmp(argv[i], "none")    ? 2
								: -1;
			if (o->mode < 0) {
				fprintf(stderr, "--plans takes all, elision or none\n");
				return -EINVAL;
			}
		} else if (!strcmp(argv[i], "--blocks") && i + 1 < argc)
			o->blocks = (uint32_t)strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--block-size") && i + 1 < argc)
			o->bs = (uint32_t)strtoul(argv[++i], NULL, 0);
		else {
			fprintf(stderr,
				"usage: %s [--json] [--quiet] [--plans all|elision|none] "
				"[--blocks N] [--block-size 512|4096]\n",
				argv[0]);
			return -EINVAL;
		}
	}
	if ((o->bs != 512 && o->bs != 4096) || o->blocks == 0 ||
	    (uint64_t)o->blocks * (o->bs + 8) > 135168) {
		fprintf(stderr, "block size must be 512 or 4096 and the I/O at most 128 KiB\n");
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	if (parse(argc, argv, &o))
		return 2;
	size_t plain = (size_t)o.blocks * o.bs, ext = (size_t)o.blocks * (o.bs + 8);

	/* The device and the "host": map the source buffer in the nvme function's IOMMU. */
	struct ferry_device *dev;
	struct ferry_mock_host *host;
	int rc = ferry_device_open("mock", "functions=nvme,host_mem=4M", &dev);
	if (rc) {
		fprintf(stderr, "open mock: %s\n", ferry_last_error());
		return 1;
	}
	if (ferry_mock_host_attach(dev, &host) ||
	    ferry_mock_host_iommu_map(host, 0, SRC_IOVA, 0x40000, (plain + PAGE - 1) & ~(PAGE - 1),
				      FERRY_MOCK_IOMMU_READ)) {
		fprintf(stderr, "host setup: %s\n", ferry_last_error());
		return 1;
	}
	uint8_t *hostbuf = ferry_mock_host_ptr(host, 0x40000, plain);
	for (size_t i = 0; i < plain; i++)
		hostbuf[i] = (uint8_t)(i * 7 + i / 512);
	char dname[96];
	snprintf(dname, sizeof(dname), "%s.nvme", ferry_device_get_name(dev));
	struct ferry_memdomain *nvme = ferry_memdomain_lookup(dname);

	/* Key and PI format, and the expected bytes computed with the primitives. */
	uint8_t k1[16], k2[16];
	for (int i = 0; i < 16; i++) {
		k1[i] = (uint8_t)(0x10 + i);
		k2[i] = (uint8_t)(0xa0 + i);
	}
	struct ferry_crypto_key_opts kopts = {.size = sizeof(kopts),
					      .cipher = FERRY_CIPHER_AES_XTS_128,
					      .key1 = k1,
					      .key2 = k2,
					      .key_len = 16,
					      .data_unit_size = o.bs};
	struct ferry_crypto_key *key;
	struct ferry_dif_ctx ctx;
	if (ferry_crypto_key_create(&kopts, &key) ||
	    ferry_dif_ctx_init(&ctx, o.bs, 8, 1, FERRY_DIF_TYPE1,
			       FERRY_DIF_CHECK_GUARD | FERRY_DIF_CHECK_REFTAG, LBA, 0, 0)) {
		fprintf(stderr, "key/DIF setup: %s\n", ferry_last_error());
		return 1;
	}
	uint8_t *tmp = malloc(plain), *ref = malloc(ext);
	struct iovec hs = {hostbuf, plain}, ts = {tmp, plain}, rs = {ref, ext};
	if (!tmp || !ref || ferry_crypto_encrypt(key, &ts, 1, &hs, 1, LBA) ||
	    ferry_dif_insert(&ctx, &rs, 1, &ts, 1, o.blocks)) {
		fprintf(stderr, "reference output: %s\n",
			tmp && ref ? ferry_last_error() : "out of memory");
		free(tmp);
		free(ref);
		ferry_crypto_key_destroy(key);
		return 1;
	}

	if (!o.json)
		printf("Seed pipeline: %u blocks of %u+8 bytes, host source in %s, mock engine\n\n",
		       o.blocks, o.bs, dname);
	const struct {
		const char *name;
		uint32_t disabled;
	} modes[] = {{"all-passes", 0},
		     {"elision-only", FERRY_ACCEL_PASS_FUSE},
		     {"no-passes", FERRY_ACCEL_PASS_ELIDE | FERRY_ACCEL_PASS_FUSE}};
	struct run_result res[3];
	int bad = 0;
	for (int m = 0; m < 3; m++) {
		memset(&res[m], 0, sizeof(res[m]));
		if (m == o.mode && !o.json && !o.quiet)
			printf("Plans of the \"%s\" run:\n", modes[m].name);
		rc = run_once(dev, nvme, &o, modes[m].disabled, m == o.mode, key, &ctx, ref,
			      &res[m]);
		if (rc || !res[m].ok)
			bad++;
	}
	if (!o.json)
		printf("\nCounters of each way to run it:\n");
	for (int m = 0; m < 3; m++)
		print_counters(&o, modes[m].name, &res[m]);
	if (!o.json)
		printf("\n%s: the optimised plan took %llu pool buffer(s) and %llu engine "
		       "descriptor(s); the unoptimised one %llu and %llu.\n",
		       bad ? "FAILED" : "OK", (unsigned long long)res[0].st.bufs_taken,
		       (unsigned long long)descriptors(&res[0].st),
		       (unsigned long long)res[2].st.bufs_taken,
		       (unsigned long long)descriptors(&res[2].st));
	free(tmp);
	free(ref);
	ferry_crypto_key_destroy(key);
	ferry_mock_host_close(host);
	ferry_device_close(dev);
	return bad ? 1 : 0;
}
