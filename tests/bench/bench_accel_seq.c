/*
 * "accel" suite, sequence cases: the seed pipeline of the source documents on the mock engine.
 * A host-domain source (the mock's nvme function), then copy -> encrypt (AES-XTS-128, 4096-byte
 * data units) -> DIF insert (4096+8, type 1) -> copy into a local destination, run three ways:
 *   pipeline-all      every pass (both copies elided, encrypt+dif-insert fused)
 *   pipeline-elision  elision only (two engine operations, one pool buffer between them)
 *   pipeline-none     no pass (four engine operations, three pool buffers)
 * One call = build the sequence, finish it, poll until its completion. Each line reports the
 * throughput of the payload, the ratio to pipeline-none, and buffers_per_op: local data
 * buffers one pipeline run uses = the pool buffers it takes + its destination buffer (the
 * source documents' "only one buffer in IPU memory" is the destination alone). The bytes are
 * checked against the primitives before measuring. Also per run: bytes copied by the copies
 * that ran (0 with all passes) and bytes written by fused operations (the extended output).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ferry/ferry.h>
#include <ferry/accel.h>
#include <ferry/crypto.h>
#include <ferry/dif.h>
#include <ferry/mock.h>
#include "bench.h"

#define BS 4096u
#define EXT (BS + 8u)
#define SRC_IOVA 0x100000u

struct pipe {
	struct ferry_accel_chan *ch;
	struct ferry_memdomain *nvme;
	struct ferry_crypto_key *key;
	struct ferry_dif_ctx dif;
	uint32_t nblocks;
	size_t plain, ext;
	uint8_t *dst;
	struct iovec hi, i1, i2, i3, di;
	struct ferry_mem host, v1, v2, v3, local;
	int done, status;
};

static void done_cb(void *arg, int status)
{
	struct pipe *p = arg;
	p->done = 1;
	p->status = status;
}

static int pipe_run(void *arg)
{
	struct pipe *p = arg;
	struct ferry_seq *s;
	int rc = ferry_seq_create(p->ch, &s);
	if (!rc)
		rc = ferry_seq_append_copy(s, &p->v1, &p->host, NULL, NULL);
	if (!rc)
		rc = ferry_seq_append_encrypt(s, &p->v2, &p->v1, p->key, 0x1000, NULL, NULL);
	if (!rc)
		rc = ferry_seq_append_dif_insert(s, &p->v3, &p->v2, &p->dif, p->nblocks, NULL,
						 NULL);
	if (!rc)
		rc = ferry_seq_append_copy(s, &p->local, &p->v3, NULL, NULL);
	p->done = 0;
	if (!rc)
		rc = ferry_seq_finish(s, done_cb, p);
	if (rc)
		return rc;
	while (!p->done)
		ferry_accel_chan_poll(p->ch, 4);
	return p->status;
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

/* A pipeline on its own channel, checked once against @ref. */
static void mode_open(struct ferry_device *dev, struct pipe *p, const char *name, uint32_t disabled,
		      const uint8_t *ref)
{
	struct ferry_accel_chan_opts o = {.size = sizeof(o), .disabled_passes = disabled};
	if (ferry_accel_chan_create(dev, &o, &p->ch))
		bench_fail("accel channel: %s", ferry_last_error());
	vbuf(p->ch, p->plain, &p->i1, &p->v1);
	vbuf(p->ch, p->plain, &p->i2, &p->v2);
	vbuf(p->ch, p->ext, &p->i3, &p->v3);
	p->dst = calloc(1, p->ext);
	p->di = (struct iovec){p->dst, p->ext};
	p->local = (struct ferry_mem){.domain = NULL, .iov = &p->di, .iovcnt = 1};
	if (!p->dst || pipe_run(p) || memcmp(p->dst, ref, p->ext))
		bench_fail("%s: wrong bytes or failure", name);
}

static void mode_close(struct pipe *p)
{
	ferry_accel_put_buf(p->ch, p->i1.iov_base, p->v1.domain, p->v1.domain_ctx);
	ferry_accel_put_buf(p->ch, p->i2.iov_base, p->v2.domain, p->v2.domain_ctx);
	ferry_accel_put_buf(p->ch, p->i3.iov_base, p->v3.domain, p->v3.domain_ctx);
	ferry_accel_chan_destroy(p->ch);
	free(p->dst);
}

static void emit(struct pipe *p, const char *name, double gbps, double base_gbps)
{
	struct ferry_accel_stats st = {.size = sizeof(st)};
	ferry_accel_get_stats(p->ch, &st);
	double runs = (double)st.seqs_completed;
	double pool_per_op = (double)st.bufs_taken / runs;
	struct bench_kv kv[] = {
		{"size", NULL, (double)p->plain},
		{"ferry_gbps", NULL, gbps},
		{"ref", "pipeline-none", 0},
		{"ref_gbps", NULL, base_gbps},
		{"ratio", NULL, gbps / base_gbps},
		{"buffers_per_op", NULL, pool_per_op + 1.0},
		{"pool_buffers_per_op", NULL, pool_per_op},
		{"fused_per_op", NULL, (double)st.fusions / runs},
		{"copies_elided_per_op", NULL, (double)st.copies_elided / runs},
		{"bytes_copied_per_op", NULL, (double)st.bytes_copied / runs},
		{"fused_output_bytes_per_op", NULL, (double)st.bytes_out_fused / runs},
	};
	bench_emit_fields("accel", name, kv, sizeof(kv) / sizeof(kv[0]));
}

void bench_accel_seq(int json)
{
	(void)json;
	static const size_t sizes[] = {4096, 131072};
	if (!bench_selected("pipeline"))
		return;
	struct ferry_device *dev;
	struct ferry_mock_host *host;
	if (ferry_device_open("mock", "functions=nvme,host_mem=2M,latency_ns=0", &dev) ||
	    ferry_mock_host_attach(dev, &host) ||
	    ferry_mock_host_iommu_map(host, 0, SRC_IOVA, 0, 131072, FERRY_MOCK_IOMMU_READ))
		bench_fail("mock device: %s", ferry_last_error());
	char dname[96];
	snprintf(dname, sizeof(dname), "%s.nvme", ferry_device_get_name(dev));
	uint8_t k1[16], k2[16];
	for (int i = 0; i < 16; i++) {
		k1[i] = (uint8_t)(i * 3 + 1);
		k2[i] = (uint8_t)(i * 5 + 2);
	}
	struct ferry_crypto_key_opts ko = {.size = sizeof(ko),
					   .cipher = FERRY_CIPHER_AES_XTS_128,
					   .key1 = k1,
					   .key2 = k2,
					   .key_len = 16,
					   .data_unit_size = BS};
	struct pipe p;
	memset(&p, 0, sizeof(p));
	p.nvme = ferry_memdomain_lookup(dname);
	if (ferry_crypto_key_create(&ko, &p.key) ||
	    ferry_dif_ctx_init(&p.dif, BS, 8, 1, FERRY_DIF_TYPE1,
			       FERRY_DIF_CHECK_GUARD | FERRY_DIF_CHECK_REFTAG, 0x1000, 0, 0))
		bench_fail("key / DIF context");
	uint8_t *hostmem = ferry_mock_host_ptr(host, 0, 131072);
	for (size_t i = 0; i < 131072; i++)
		hostmem[i] = (uint8_t)(i * 31 + (i >> 12));
	for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
		p.plain = sizes[si];
		p.nblocks = (uint32_t)(p.plain / BS);
		p.ext = (size_t)p.nblocks * EXT;
		uint8_t *ref = malloc(p.ext), *tmp = malloc(p.plain);
		struct iovec hs = {hostmem, p.plain}, ts = {tmp, p.plain}, rs = {ref, p.ext};
		if (!ref || !tmp || ferry_crypto_encrypt(p.key, &ts, 1, &hs, 1, 0x1000) ||
		    ferry_dif_insert(&p.dif, &rs, 1, &ts, 1, p.nblocks))
			bench_fail("reference pipeline");
		p.hi = (struct iovec){(void *)(uintptr_t)SRC_IOVA, p.plain};
		p.host = (struct ferry_mem){.domain = p.nvme, .iov = &p.hi, .iovcnt = 1};
		/* Three channels, one per way; each optimised way is measured in alternating
		 * rounds against the unoptimised one (robust on a shared machine). */
		struct pipe none = p, elision = p, all = p;
		mode_open(dev, &none, "pipeline-none",
			  FERRY_ACCEL_PASS_ELIDE | FERRY_ACCEL_PASS_FUSE, ref);
		mode_open(dev, &elision, "pipeline-elision", FERRY_ACCEL_PASS_FUSE, ref);
		mode_open(dev, &all, "pipeline-all", 0, ref);
		double g_all, g_none1, g_el, g_none2;
		bench_compare(pipe_run, &all, pipe_run, &none, p.plain, &g_all, &g_none1);
		bench_compare(pipe_run, &elision, pipe_run, &none, p.plain, &g_el, &g_none2);
		emit(&none, "pipeline-none", g_none1, g_none1);
		emit(&elision, "pipeline-elision", g_el, g_none2);
		emit(&all, "pipeline-all", g_all, g_none1);
		mode_close(&none);
		mode_close(&elision);
		mode_close(&all);
		free(ref);
		free(tmp);
	}
	ferry_crypto_key_destroy(p.key);
	ferry_mock_host_close(host);
	ferry_device_close(dev);
}
