/*
 * Out-of-tree consumer of an *installed* Ferry with its installed mock backend (ferry-mock.pc,
 * Ferry::mock / Ferry::mock_static): opens the "mock" device with nothing but the link line
 * (no registration call: the backend's -u ferry_hal_backend_mock keeps it), maps host memory
 * behind a PCI function with the mock's host API (ferry/mock.h), and runs the seed write
 * pipeline on the mock engine through ferry/accel.h: host -> copy -> encrypt -> DIF insert ->
 * local memory. Checks that the engine fused encrypt+dif-insert and that the output bytes
 * equal the software path (ferry_crypto_encrypt + ferry_dif_insert). Exits non-zero on the
 * first thing that is not as documented.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ferry/ferry.h>
#include <ferry/accel.h>
#include <ferry/crypto.h>
#include <ferry/dif.h>
#include <ferry/mock.h>

#define NBLOCKS 8u
#define BS 512u
#define PLAIN (NBLOCKS * BS)
#define EXT (NBLOCKS * (BS + 8u))
#define LBA 4000u

static int failed;

#define CHECK(cond)                                                                  \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "mock consumer: %s:%d: check failed: %s (%s)\n", \
				__FILE__, __LINE__, #cond, ferry_last_error());      \
			failed = 1;                                                  \
		}                                                                    \
	} while (0)

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

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct ferry_mem virt(struct ferry_accel_chan *ch, struct iovec *iov, size_t len)
{
	void *buf = NULL, *ctx = NULL;
	struct ferry_memdomain *d = NULL;
	CHECK(ferry_accel_get_buf(ch, len, &buf, &d, &ctx) == 0);
	iov->iov_base = buf;
	iov->iov_len = len;
	return (struct ferry_mem){.domain = d, .domain_ctx = ctx, .iov = iov, .iovcnt = 1};
}

int main(void)
{
	struct ferry_device *dev = NULL;
	int rc = ferry_device_open("mock", "host_mem=1M,functions=nvme", &dev);
	CHECK(rc == 0 && dev != NULL);
	if (rc != 0) {
		fprintf(stderr, "mock consumer: the installed mock backend is not registered\n");
		return 1;
	}
	printf("mock consumer: opened %s (backend %s)\n", ferry_device_get_name(dev),
	       ferry_device_get_backend_name(dev));

	/* Host memory behind function "nvme": IOVA page i -> host page i, read+write. */
	struct ferry_mock_host *host = NULL;
	CHECK(ferry_mock_host_attach(dev, &host) == 0);
	int fn = host ? ferry_mock_host_fn_lookup(host, "nvme") : -1;
	CHECK(fn >= 0);
	CHECK(ferry_mock_host_iommu_map(host, (unsigned)fn, 0, 0, 16 * FERRY_MOCK_PAGE_SIZE,
					FERRY_MOCK_IOMMU_READ | FERRY_MOCK_IOMMU_WRITE) == 0);
	uint8_t *hp = ferry_mock_host_ptr(host, 0, PLAIN);
	CHECK(hp != NULL);
	char dname[96];
	snprintf(dname, sizeof(dname), "%s.nvme", ferry_device_get_name(dev));
	struct ferry_memdomain *nvme = ferry_memdomain_lookup(dname);
	CHECK(nvme != NULL);
	if (failed)
		return 1;
	for (uint32_t i = 0; i < PLAIN; i++)
		hp[i] = (uint8_t)(i * 7u + 3u);

	uint8_t k1[16], k2[16];
	for (unsigned i = 0; i < sizeof(k1); i++) {
		k1[i] = (uint8_t)(i + 1);
		k2[i] = (uint8_t)(0xa0 + i);
	}
	struct ferry_crypto_key_opts ko = {.size = sizeof(ko),
					   .cipher = FERRY_CIPHER_AES_XTS_128,
					   .key1 = k1,
					   .key2 = k2,
					   .key_len = sizeof(k1),
					   .data_unit_size = BS};
	struct ferry_crypto_key *key = NULL;
	CHECK(ferry_crypto_key_create(&ko, &key) == 0);
	struct ferry_dif_ctx dif;
	CHECK(ferry_dif_ctx_init(&dif, BS, 8, 1, FERRY_DIF_TYPE1,
				 FERRY_DIF_CHECK_GUARD | FERRY_DIF_CHECK_APPTAG |
					 FERRY_DIF_CHECK_REFTAG,
				 LBA, 0x1234, 0xffff) == 0);

	/* The sequence: host -> V1 -> encrypt -> V2 -> dif insert -> V3 -> dst (local). */
	struct ferry_accel_chan *ch = NULL;
	CHECK(ferry_accel_chan_create(dev, NULL, &ch) == 0);
	if (failed)
		return 1;
	static uint8_t dst[EXT], ref[EXT], tmp[PLAIN];
	struct iovec hi = {(void *)(uintptr_t)0, PLAIN}, i1, i2, i3, di = {dst, EXT};
	struct ferry_mem h = {.domain = nvme, .iov = &hi, .iovcnt = 1};
	struct ferry_mem d = {.domain = NULL, .iov = &di, .iovcnt = 1};
	struct ferry_mem v1 = virt(ch, &i1, PLAIN), v2 = virt(ch, &i2, PLAIN),
			 v3 = virt(ch, &i3, EXT);
	struct ferry_seq *seq = NULL;
	CHECK(ferry_seq_create(ch, &seq) == 0);
	CHECK(ferry_seq_append_copy(seq, &v1, &h, NULL, NULL) == 0);
	CHECK(ferry_seq_append_encrypt(seq, &v2, &v1, key, LBA, NULL, NULL) == 0);
	CHECK(ferry_seq_append_dif_insert(seq, &v3, &v2, &dif, NBLOCKS, NULL, NULL) == 0);
	CHECK(ferry_seq_append_copy(seq, &d, &v3, NULL, NULL) == 0);
	struct done done = {0, -1};
	CHECK(ferry_seq_finish(seq, done_cb, &done) == 0);
	uint64_t end = now_ns() + 5000000000ull;
	while (!failed && done.calls == 0 && now_ns() < end)
		CHECK(ferry_accel_chan_poll(ch, 16) >= 0);
	CHECK(done.calls == 1 && done.status == 0);

	/* The software path, with the primitives. */
	struct iovec s = {hp, PLAIN}, t = {tmp, PLAIN}, o = {ref, EXT};
	CHECK(ferry_crypto_encrypt(key, &t, 1, &s, 1, LBA) == 0);
	CHECK(ferry_dif_insert(&dif, &o, 1, &t, 1, NBLOCKS) == 0);
	CHECK(memcmp(dst, ref, EXT) == 0);

	struct ferry_accel_stats st;
	memset(&st, 0, sizeof(st));
	st.size = sizeof(st);
	CHECK(ferry_accel_get_stats(ch, &st) == 0);
	CHECK(st.fusions == 1);
	CHECK(st.ops_hw[FERRY_ACCEL_OP_ENCRYPT] == 1 && st.ops_sw[FERRY_ACCEL_OP_ENCRYPT] == 0);
	CHECK(st.ops_hw[FERRY_ACCEL_OP_DIF_INSERT] == 1);
	CHECK(st.sw_fallbacks == 0);
	printf("mock consumer: %u blocks encrypted + DIF-inserted on the mock engine, %llu fused "
	       "operation(s), bytes equal to the software path\n",
	       NBLOCKS, (unsigned long long)st.fusions);

	ferry_accel_put_buf(ch, v1.iov[0].iov_base, v1.domain, v1.domain_ctx);
	ferry_accel_put_buf(ch, v2.iov[0].iov_base, v2.domain, v2.domain_ctx);
	ferry_accel_put_buf(ch, v3.iov[0].iov_base, v3.domain, v3.domain_ctx);
	ferry_accel_chan_destroy(ch);
	ferry_accel_fini();
	ferry_crypto_key_destroy(key);
	ferry_mock_host_close(host);
	ferry_device_close(dev);
	printf("mock consumer: %s\n", failed ? "FAILED" : "ok");
	return failed;
}
