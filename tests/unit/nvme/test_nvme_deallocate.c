/*
 * What Identify Namespace claims about deallocated and never-written blocks (DLFEAT) for
 * each bdev stack, and that the claim holds: malloc reads zeroes before any write and after
 * a Dataset Management deallocate (DLFEAT 001b); crypto and dif on top do not (000b, not
 * reported), since a never-written block reads as noise (crypto) or fails the PI check
 * (dif).
 */
#include "test_nvme_host.h"
#include "test_vbdev_util.h"
#include <ferry/module/nvme_ctrlr.h>

static uint8_t id_ns_dlfeat(struct host *h)
{
	uint64_t buf = hm_alloc(h->hm, 4096, HM_PAGE);
	struct ferry_nvme_sqe s = h_sqe(FERRY_NVME_ADM_IDENTIFY, 1);
	s.cdw10 = FERRY_NVME_CNS_NS;
	h_prp(h, &s, buf, 4096, 0);
	cr_assert_eq(h_cmd(h, 0, &s, NULL), 0);
	struct ferry_nvme_id_ns id;
	memcpy(&id, hm_ptr(h->hm, buf), sizeof(id));
	return id.dlfeat;
}

/* Read one 512-byte block; returns the status, the data in @p out. */
static uint16_t read_block(struct host *h, uint64_t lba, uint8_t out[512])
{
	uint64_t buf = hm_alloc(h->hm, 4096, HM_PAGE);
	memset(hm_ptr(h->hm, buf), 0xa5, 512);
	struct ferry_nvme_sqe s = h_sqe(0, 1);
	h_rw(&s, FERRY_NVME_CMD_READ, lba, 1);
	h_prp(h, &s, buf, 512, 0);
	uint16_t st = h_cmd(h, 1, &s, NULL);
	memcpy(out, hm_ptr(h->hm, buf), 512);
	return st;
}

static int all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

static void write_block(struct host *h, uint64_t lba)
{
	uint64_t buf = hm_alloc(h->hm, 4096, HM_PAGE);
	h_fill(hm_ptr(h->hm, buf), 512, lba + 7);
	struct ferry_nvme_sqe s = h_sqe(0, 1);
	h_rw(&s, FERRY_NVME_CMD_WRITE, lba, 1);
	h_prp(h, &s, buf, 512, 0);
	cr_assert_eq(h_cmd(h, 1, &s, NULL), 0);
}

static void deallocate(struct host *h, uint64_t lba, uint32_t nlb)
{
	uint64_t buf = hm_alloc(h->hm, 4096, HM_PAGE);
	struct ferry_nvme_dsm_range r = {.nlb = nlb, .slba = lba};
	memcpy(hm_ptr(h->hm, buf), &r, sizeof(r));
	struct ferry_nvme_sqe s = h_sqe(FERRY_NVME_CMD_DSM, 1);
	s.cdw10 = 0;      /* one range */
	s.cdw11 = 1u << 2; /* AD */
	h_prp(h, &s, buf, sizeof(r), 0);
	cr_assert_eq(h_cmd(h, 1, &s, NULL), 0);
}

Test(nvme_deallocate, malloc_claims_zeroes_and_reads_zeroes)
{
	struct host *h = h_create(NULL);
	h_up(h, 16);
	cr_assert_eq(ferry_bdev_get_flags(h->bdev) & FERRY_BDEV_F_UNWRITTEN_ZEROES,
		     FERRY_BDEV_F_UNWRITTEN_ZEROES);
	cr_assert_eq(id_ns_dlfeat(h), 0x01, "DLFEAT 001b: deallocated blocks read as zeroes");
	uint8_t b[512];
	cr_assert_eq(read_block(h, 5, b), 0);
	cr_assert(all_zero(b, sizeof(b)), "never-written block is not zeroes");
	write_block(h, 5);
	cr_assert_eq(read_block(h, 5, b), 0);
	cr_assert_not(all_zero(b, sizeof(b)));
	deallocate(h, 5, 1);
	cr_assert_eq(read_block(h, 5, b), 0);
	cr_assert(all_zero(b, sizeof(b)), "deallocated block is not zeroes");
	h_destroy(h);
}

Test(nvme_deallocate, crypto_on_malloc_does_not_claim)
{
	struct ferry_bdev *m = tv_malloc("dealloc.c.m", 512, 0, 64, 0);
	struct ferry_crypto_key *key = ta_key(11, FERRY_CIPHER_AES_XTS_128, 512);
	struct ferry_bdev *c = tv_crypto("dealloc.c.c", m, key);
	cr_assert_eq(ferry_bdev_get_flags(c) & FERRY_BDEV_F_UNWRITTEN_ZEROES, 0);
	struct host_opts o = {.ns_bdev = c};
	struct host *h = h_create(&o);
	h_up(h, 16);
	cr_assert_eq(id_ns_dlfeat(h), 0x00, "DLFEAT 000b: not reported");
	/* What made 001b false: a never-written block decrypts to noise. */
	uint8_t b[512];
	cr_assert_eq(read_block(h, 3, b), 0);
	cr_assert_not(all_zero(b, sizeof(b)));
	h_destroy(h);
	cr_assert_eq(ferry_bdev_destroy(c), 0);
	cr_assert_eq(ferry_bdev_destroy(m), 0);
	ferry_crypto_key_destroy(key);
}

Test(nvme_deallocate, dif_stacks_do_not_claim)
{
	struct ferry_bdev *m = tv_malloc("dealloc.d.m", 512, 8, 64, 1);
	struct ferry_bdev *d = tv_dif("dealloc.d.d", m, 1, TV_CHECK_ALL, 0x1234, 0xffff);
	struct ferry_crypto_key *key = ta_key(12, FERRY_CIPHER_AES_XTS_128, 512);
	struct ferry_bdev *c = tv_crypto("dealloc.d.c", d, key);
	cr_assert_eq(ferry_bdev_get_flags(d) & FERRY_BDEV_F_UNWRITTEN_ZEROES, 0);
	cr_assert_eq(ferry_bdev_get_flags(c) & FERRY_BDEV_F_UNWRITTEN_ZEROES, 0);
	struct host_opts o = {.ns_bdev = c};
	struct host *h = h_create(&o);
	h_up(h, 16);
	cr_assert_eq(id_ns_dlfeat(h), 0x00, "crypto -> dif -> malloc: DLFEAT not reported");
	/* What made 001b false: the zero PI of a never-written block fails the check. */
	uint8_t b[512];
	cr_assert_eq(read_block(h, 3, b), ST(MEDIA, APPTAG_CHECK));
	h_destroy(h);
	cr_assert_eq(ferry_bdev_destroy(c), 0);
	ferry_crypto_key_destroy(key);
	o.ns_bdev = d;
	h = h_create(&o);
	h_up(h, 16);
	cr_assert_eq(id_ns_dlfeat(h), 0x00, "dif -> malloc: DLFEAT not reported");
	h_destroy(h);
	cr_assert_eq(ferry_bdev_destroy(d), 0);
	cr_assert_eq(ferry_bdev_destroy(m), 0);
}
