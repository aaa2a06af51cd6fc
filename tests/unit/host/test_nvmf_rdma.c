/*
 * The nvmf bdev over NVMe-oF/RDMA (trtype "rdma") on the mock backend's software RDMA NIC
 * against Ferry's own RDMA target in-process (its own mock device, its own thread): verified
 * writes then reads of 1..512 blocks (split past MDTS, several segments) from local memory and
 * from host memory (the mock's "nvme" function, reached by the NIC through its "nic"
 * function), each between canaries; the counters of every path exact: RDMA-direct (0 staged
 * bytes, the bytes the NIC moved), FERRY_BDEV_NVMF_F_NO_RDMA_DIRECT (everything staged, small
 * writes in the capsule), a crypto+dif stack (staged with the sequence fused into the copy),
 * a host page the NIC function cannot see (staged, counted untranslatable, data right); a
 * target restart with writes in flight (retried, none lost). Many distinct buffers in flight,
 * more than the registration map caches (its eviction pressure): every I/O direct, no
 * connection loss, no work-completion error, the data right, the cache back within its size.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ferry/accel.h>
#include <ferry/bdev.h>
#include <ferry/bdev_crypto.h>
#include <ferry/bdev_dif.h>
#include <ferry/bdev_nvmf.h>
#include <ferry/crypto.h>
#include <ferry/dif.h>
#include <ferry/hal/backend.h>
#include <ferry/hal/nic.h>
#include <ferry/hal/rdma.h>
#include <ferry/mock.h>
#include <ferry/rdma_transport.h>
#include "nvmf_test_util.h"
#include "test_accel_util.h"
#include "test_mock_util.h"

#define R_NQN "nqn.2026-01.io.ferry:rdma"
#define R_BS 4096u
#define R_BLOCKS 1024u /* 4 MiB namespace */
#define R_MAX (2u * 1024 * 1024)

static struct tgt T;
static struct ferry_device *TDEV; /* the target's own mock device */

static void rtgt_up(uint32_t bs, uint32_t md)
{
	TDEV = tm_open("");
	struct tgt_cfg c = {.bdev_name = "rdma_malloc",
			    .block_size = bs,
			    .num_blocks = R_BLOCKS,
			    .md_size = md,
			    .nqn = R_NQN,
			    .serial = "RDMA",
			    .args = "max_io_size=1048576,idle_us=0",
			    .trtype = "rdma",
			    .dev = TDEV,
			    .listen_addr = ferry_rdma_transport_get_listen_addr};
	tgt_up(&T, &c);
}

static void rtgt_down(void)
{
	tgt_down(&T);
	ferry_device_close(TDEV);
	TDEV = NULL;
}

static struct ferry_bdev *rbdev_up(struct ferry_device *nic, const char *name, uint32_t flags,
				   struct ferry_memdomain *nic_domain, uint32_t retry_count)
{
	struct ferry_bdev_nvmf_opts o = {0};
	o.size = sizeof(o);
	o.name = name;
	o.nic = nic;
	o.trtype = "rdma";
	o.addr = T.addr;
	o.subnqn = R_NQN;
	o.num_io_queues = 2;
	o.queue_depth = 32;
	o.flags = flags;
	o.nic_domain = nic_domain;
	o.retry_count = retry_count;
	o.reconnect_delay_ms = 10;
	struct ferry_bdev *b = NULL;
	int rc = ferry_bdev_nvmf_create(&o, &b);
	cr_assert_eq(rc, 0, "create: %s (%s)", ferry_strerror(rc), ferry_last_error());
	return b;
}

static uint8_t G_ref[R_BLOCKS * R_BS]; /* what the namespace should hold */
static uint8_t G_buf[R_MAX + 2 * R_BS];

static const uint32_t SIZES[] = {1, 2, 3, 16, 64, 255, 512};
#define NSIZES (sizeof(SIZES) / sizeof(SIZES[0]))

static uint32_t lba_of(unsigned i, uint32_t n)
{
	return (uint32_t)((i * 97u + 5u) % (R_BLOCKS - n));
}

static void canaries_ok(const uint8_t *p, size_t before, size_t len, size_t after, uint8_t v)
{
	for (size_t j = 0; j < before; j++)
		cr_assert_eq(p[j], v, "byte %zu before the buffer written", before - j);
	for (size_t j = 0; j < after; j++)
		cr_assert_eq(p[before + len + j], v, "byte %zu after the buffer written", j);
}

/* Writes of SIZES from local memory (three segments where there are blocks for them), then
 * reads back between canaries; returns the data bytes moved (both directions). */
static uint64_t local_rw(struct ferry_bdev *b)
{
	uint64_t bytes = 0;
	fill(G_ref, sizeof(G_ref), 41);
	for (unsigned i = 0; i < NSIZES; i++) {
		uint32_t n = SIZES[i], lba = lba_of(i, n);
		size_t len = (size_t)n * R_BS;
		uint8_t *src = G_ref + (size_t)lba * R_BS;
		struct iovec iov[3];
		uint32_t cnt = 1;
		iov[0] = (struct iovec){src, len};
		if (n >= 3) {
			size_t a = R_BS, c = (size_t)(n - 2) * R_BS;
			iov[0] = (struct iovec){src, a};
			iov[1] = (struct iovec){src + a, c};
			iov[2] = (struct iovec){src + a + c, len - a - c};
			cnt = 3;
		}
		struct ferry_mem m = {.iov = iov, .iovcnt = cnt};
		int rc = run_one(b, NULL, FERRY_BDEV_IO_WRITE, lba, n, &m);
		cr_assert_eq(rc, 0, "write %u blocks: %d (%s)", n, rc, ferry_last_error());
		memset(G_buf, 0xa5, sizeof(G_buf));
		struct iovec r = {G_buf + R_BS, len};
		struct ferry_mem rm = {.iov = &r, .iovcnt = 1};
		rc = run_one(b, NULL, FERRY_BDEV_IO_READ, lba, n, &rm);
		cr_assert_eq(rc, 0, "read %u blocks: %d (%s)", n, rc, ferry_last_error());
		cr_assert_eq(memcmp(G_buf + R_BS, src, len), 0, "read %u blocks: data differ", n);
		canaries_ok(G_buf, R_BS, len, R_BS, 0xa5);
		bytes += 2 * len;
	}
	return bytes;
}

static struct ferry_bdev_nvmf_stats S(struct ferry_bdev *b) {
	return stats_of(b);
}

Test(nvmf_rdma, local_memory_direct)
{
	rtgt_up(R_BS, 0);
	struct ferry_device *dev = tm_open("");
	struct ferry_bdev *b = rbdev_up(dev, "nvmf_rdma", 0, NULL, 0);
	cr_assert_eq(ferry_bdev_get_block_size(b), R_BS);
	cr_assert_eq(ferry_bdev_get_num_blocks(b), R_BLOCKS);
	struct ferry_bdev_nvmf_stats s0 = S(b);
	uint64_t bytes = local_rw(b);
	struct ferry_bdev_nvmf_stats s = S(b);
	cr_assert_eq(s.rdma_direct_ios - s0.rdma_direct_ios, 2 * NSIZES);
	cr_assert_eq(s.rdma_direct_bytes - s0.rdma_direct_bytes, bytes);
	cr_assert_eq(s.rdma_staged_ios, 0);
	cr_assert_eq(s.staged_ios, 0);
	cr_assert_eq(s.staged_bytes, 0);
	cr_assert_eq(s.rdma_wc_errors, 0);
	cr_assert_eq(s.protocol_errors, 0);
	cr_assert_eq(s.io_errors, 0);
	cr_assert_geq(s.split_ios, 2, "the 2 MiB write and read go out in parts");
	cr_assert_eq(s.bytes_read + s.bytes_written - s0.bytes_read - s0.bytes_written, bytes);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	ferry_device_close(dev);
	rtgt_down();
}

Test(nvmf_rdma, no_rdma_direct_stages_everything)
{
	rtgt_up(R_BS, 0);
	struct ferry_device *dev = tm_open("");
	struct ferry_bdev *b = rbdev_up(dev, "nvmf_rdma_staged", FERRY_BDEV_NVMF_F_NO_RDMA_DIRECT,
					NULL, 0);
	/* staged I/O is limited to one 1 MiB buffer: 1..255 blocks */
	fill(G_ref, sizeof(G_ref), 43);
	uint64_t ios = 0, bytes = 0, small = 0;
	for (unsigned i = 0; i + 1 < NSIZES; i++) {
		uint32_t n = SIZES[i], lba = lba_of(i, n);
		size_t len = (size_t)n * R_BS;
		struct iovec w = {G_ref + (size_t)lba * R_BS, len};
		struct ferry_mem wm = {.iov = &w, .iovcnt = 1};
		cr_assert_eq(run_one(b, NULL, FERRY_BDEV_IO_WRITE, lba, n, &wm), 0, "%s",
			     ferry_last_error());
		memset(G_buf, 0x3c, sizeof(G_buf));
		struct iovec r = {G_buf + R_BS, len};
		struct ferry_mem rm = {.iov = &r, .iovcnt = 1};
		cr_assert_eq(run_one(b, NULL, FERRY_BDEV_IO_READ, lba, n, &rm), 0, "%s",
			     ferry_last_error());
		cr_assert_eq(memcmp(G_buf + R_BS, w.iov_base, len), 0, "%u blocks differ", n);
		canaries_ok(G_buf, R_BS, len, R_BS, 0x3c);
		ios += 2;
		bytes += 2 * len;
		small += n == 1; /* 4096 bytes fit the target's in-capsule size */
	}
	struct ferry_bdev_nvmf_stats s = S(b);
	cr_assert_eq(s.rdma_direct_ios, 0);
	cr_assert_eq(s.rdma_direct_bytes, 0);
	cr_assert_eq(s.rdma_staged_ios, ios);
	cr_assert_eq(s.rdma_fused_ios, 0);
	cr_assert_eq(s.rdma_untranslatable, 0);
	cr_assert_eq(s.staged_ios, ios);
	cr_assert_eq(s.staged_bytes, bytes);
	cr_assert_eq(s.rdma_icd_writes, small, "icd writes %llu",
		     (unsigned long long)s.rdma_icd_writes);
	cr_assert_eq(s.icd_writes, small);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	ferry_device_close(dev);
	rtgt_down();
}

/* Host memory: IOVA pages of the nvme function 16.. -> host pages 64..; the nic function sees
 * the same host pages at IOVAs 511.. (with the canary pages around them), or, with @p hole >= 0,
 * all but page @p hole of the destination. */
#define H_PAGES 256u /* 1 MiB */
#define H_HOST 64u

static void host_map(struct ferry_mock_host *h, int hole)
{
	tm_map(h, "nvme", 16, H_HOST, H_PAGES, TM_RW);
	if (hole < 0) {
		tm_map(h, "nic", 511, H_HOST - 1, H_PAGES + 2, TM_RW);
	} else {
		tm_map(h, "nic", 511, H_HOST - 1, (uint64_t)hole + 1, TM_RW);
		tm_map(h, "nic", 512 + (uint64_t)hole + 1, H_HOST + (uint64_t)hole + 1,
		       H_PAGES - (uint64_t)hole, TM_RW);
	}
}

/* Writes from host memory, then reads into it (two segments), each verified with the canary
 * pages around the destination untouched; returns the bytes moved. */
static uint64_t host_rw(struct ferry_bdev *b, struct ferry_device *dev, struct ferry_mock_host *h,
			unsigned *ios)
{
	struct ferry_memdomain *dom = tm_domain(dev, "nvme");
	uint8_t *host = ferry_mock_host_ptr(h, (H_HOST - 1) * TM_PAGE, (H_PAGES + 2) * TM_PAGE);
	cr_assert_not_null(host);
	static const uint32_t blocks[] = {1, 7, 32, 256};
	uint64_t bytes = 0;
	for (unsigned i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++) {
		uint32_t n = blocks[i], lba = 5 + i * 31;
		size_t len = (size_t)n * R_BS;
		size_t first = n > 1 ? (size_t)(n / 2) * R_BS : len;
		struct iovec iov[2] = {{TM_IOVA(16), first},
				       {TM_IOVA(16 + first / TM_PAGE), len - first}};
		struct ferry_mem m = {.domain = dom, .iov = iov, .iovcnt = len > first ? 2 : 1};
		static uint8_t want[256 * 4096];
		fill(want, len, 100 + i);
		memset(host, 0x5a, (H_PAGES + 2) * TM_PAGE);
		memcpy(host + TM_PAGE, want, len);
		int rc = run_one(b, NULL, FERRY_BDEV_IO_WRITE, lba, n, &m);
		cr_assert_eq(rc, 0, "host write %u blocks: %d (%s)", n, rc, ferry_last_error());
		memset(host, 0x5a, (H_PAGES + 2) * TM_PAGE);
		rc = run_one(b, NULL, FERRY_BDEV_IO_READ, lba, n, &m);
		cr_assert_eq(rc, 0, "host read %u blocks: %d (%s)", n, rc, ferry_last_error());
		cr_assert_eq(memcmp(host + TM_PAGE, want, len), 0,
			     "host read %u blocks: data differ", n);
		canaries_ok(host, TM_PAGE, len, (H_PAGES + 1) * TM_PAGE - len, 0x5a);
		bytes += 2 * len;
		*ios += 2;
	}
	return bytes;
}

Test(nvmf_rdma, host_memory_direct)
{
	rtgt_up(R_BS, 0);
	struct ferry_device *dev = tm_open("host_mem=4M,functions=nvme:nic");
	struct ferry_mock_host *h = tm_host(dev);
	host_map(h, -1);
	struct ferry_bdev *b = rbdev_up(dev, "nvmf_rdma_host", 0, tm_domain(dev, "nic"), 0);
	unsigned ios = 0;
	uint64_t bytes = host_rw(b, dev, h, &ios);
	struct ferry_bdev_nvmf_stats s = S(b);
	cr_assert_eq(s.rdma_direct_ios, ios, "direct %llu of %u",
		     (unsigned long long)s.rdma_direct_ios, ios);
	cr_assert_eq(s.rdma_direct_bytes, bytes);
	cr_assert_eq(s.rdma_staged_ios, 0);
	cr_assert_eq(s.rdma_untranslatable, 0);
	cr_assert_eq(s.staged_ios, 0, "0 staging buffers");
	cr_assert_eq(s.staged_bytes, 0, "0 SoC bytes copied");
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	ferry_mock_host_close(h);
	ferry_device_close(dev);
	rtgt_down();
}

Test(nvmf_rdma, host_page_the_nic_cannot_see)
{
	rtgt_up(R_BS, 0);
	struct ferry_device *dev = tm_open("host_mem=4M,functions=nvme:nic");
	struct ferry_mock_host *h = tm_host(dev);
	host_map(h, 3); /* page 3 of the destination: not in the nic function's view */
	struct ferry_bdev *b = rbdev_up(dev, "nvmf_rdma_hole", 0, tm_domain(dev, "nic"), 0);
	unsigned ios = 0;
	uint64_t bytes = host_rw(b, dev, h, &ios);
	struct ferry_bdev_nvmf_stats s = S(b);
	/* the 1-block I/Os stay below page 3 (direct), the 7, 32 and 256-block ones cover it
	 * (staged, counted untranslatable), the data right either way */
	cr_assert_eq(s.rdma_untranslatable, 6);
	cr_assert_eq(s.rdma_direct_ios, 2);
	cr_assert_eq(s.rdma_direct_ios + s.rdma_staged_ios, ios);
	cr_assert_eq(s.rdma_staged_ios, s.rdma_untranslatable);
	cr_assert_gt(s.staged_bytes, 0);
	cr_assert_eq(s.rdma_direct_bytes + s.staged_bytes, bytes);
	cr_assert_eq(s.io_errors, 0);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	ferry_mock_host_close(h);
	ferry_device_close(dev);
	rtgt_down();
}

/* crypto -> dif (PI type 1) -> nvmf over a 4096+8 namespace: every I/O carries a sequence and
 * is staged with it fused into the copy into one registered buffer. */
Test(nvmf_rdma, crypto_dif_stack_fused)
{
	rtgt_up(R_BS + 8, 8);
	struct ferry_device *dev = tm_open("");
	struct ferry_bdev *nv = rbdev_up(dev, "nvmf_rdma_pi", 0, NULL, 0);
	cr_assert_eq(ferry_bdev_get_md_size(nv), 8);
	struct ferry_accel_chan *ch = ta_chan(NULL, 0);
	struct ferry_crypto_key *key = ta_key(31, FERRY_CIPHER_AES_XTS_128, 512);
	struct ferry_bdev_dif_opts d = {.size = sizeof(d),
					.name = "rdma_dif",
					.base = nv,
					.dif_type = 1,
					.check_flags = FERRY_DIF_CHECK_GUARD |
						       FERRY_DIF_CHECK_APPTAG |
						       FERRY_DIF_CHECK_REFTAG,
					.app_tag = 0x1234,
					.app_tag_mask = 0xffff};
	struct ferry_bdev *dif = NULL, *cry = NULL;
	cr_assert_eq(ferry_bdev_dif_create(&d, &dif), 0, "%s", ferry_last_error());
	struct ferry_bdev_crypto_opts co = {.size = sizeof(co),
					    .name = "rdma_crypto",
					    .base = dif,
					    .key = key};
	cr_assert_eq(ferry_bdev_crypto_create(&co, &cry), 0, "%s", ferry_last_error());
	static const uint32_t blocks[] = {1, 8, 64};
	unsigned ios = 0;
	for (unsigned i = 0; i < 3; i++) {
		uint32_t n = blocks[i], lba = 10 + i * 100;
		size_t len = (size_t)n * R_BS;
		fill(G_ref, len, 200 + i);
		struct iovec iov;
		struct ferry_mem m = ta_sys(&iov, G_ref, len);
		cr_assert_eq(run_one(cry, ch, FERRY_BDEV_IO_WRITE, lba, n, &m), 0, "%s",
			     ferry_last_error());
		memset(G_buf, 0x77, sizeof(G_buf));
		struct ferry_mem rm = ta_sys(&iov, G_buf + R_BS, len);
		cr_assert_eq(run_one(cry, ch, FERRY_BDEV_IO_READ, lba, n, &rm), 0, "%s",
			     ferry_last_error());
		cr_assert_eq(memcmp(G_buf + R_BS, G_ref, len), 0, "%u blocks differ", n);
		canaries_ok(G_buf, R_BS, len, R_BS, 0x77);
		ios += 2;
	}
	struct ferry_bdev_nvmf_stats s = S(nv);
	cr_assert_eq(s.rdma_fused_ios, ios);
	cr_assert_eq(s.rdma_staged_ios, ios);
	cr_assert_eq(s.seq_ios, ios);
	cr_assert_eq(s.rdma_direct_ios, 0);
	cr_assert_eq(s.rdma_direct_bytes, 0);
	cr_assert_eq(ferry_bdev_destroy(cry), 0);
	cr_assert_eq(ferry_bdev_destroy(dif), 0);
	cr_assert_eq(ferry_bdev_destroy(nv), 0);
	ferry_crypto_key_destroy(key);
	ferry_accel_chan_destroy(ch);
	ferry_device_close(dev);
	rtgt_down();
}

/* The target killed and started again with 32 writes in flight: each completes exactly once,
 * successfully (retried on the new connection), and every block reads back as written. */
#define LOSS_IOS 32u
Test(nvmf_rdma, connection_loss_mid_io_no_lost_write)
{
	rtgt_up(R_BS, 0);
	struct ferry_device *dev = tm_open("");
	struct ferry_bdev *b = rbdev_up(dev, "nvmf_rdma_loss", 0, NULL, 8);
	static struct ferry_bdev_io io[LOSS_IOS];
	static struct done dn[LOSS_IOS];
	static struct iovec iov[LOSS_IOS];
	fill(G_ref, sizeof(G_ref), 59);
	for (unsigned i = 0; i < LOSS_IOS; i++) {
		iov[i] = (struct iovec){G_ref + (size_t)i * 8 * R_BS, 8 * R_BS};
		struct ferry_mem m = {.iov = &iov[i], .iovcnt = 1};
		io_prep(&io[i], &dn[i], FERRY_BDEV_IO_WRITE, (uint64_t)i * 8, 8, &m);
		cr_assert_eq(ferry_bdev_submit(b, &io[i]), 0, "%s", ferry_last_error());
	}
	for (int k = 0; k < 3; k++)
		ferry_bdev_poll(b, 64);
	tgt_restart(&T);
	uint64_t end = tm_now_ns() + IO_WAIT_NS;
	for (;;) {
		unsigned done = 0;
		for (unsigned i = 0; i < LOSS_IOS; i++)
			done += dn[i].calls != 0;
		if (done == LOSS_IOS || tm_now_ns() > end)
			break;
		ferry_bdev_poll(b, 64);
	}
	for (unsigned i = 0; i < LOSS_IOS; i++) {
		cr_assert_eq(dn[i].calls, 1, "write %u completed %d times", i, dn[i].calls);
		cr_assert_eq(dn[i].status, 0, "write %u: %d", i, dn[i].status);
	}
	static uint8_t back[LOSS_IOS * 8 * R_BS];
	struct iovec r = {back, sizeof(back)};
	struct ferry_mem rm = {.iov = &r, .iovcnt = 1};
	cr_assert_eq(run_one(b, NULL, FERRY_BDEV_IO_READ, 0, LOSS_IOS * 8, &rm), 0, "%s",
		     ferry_last_error());
	cr_assert_eq(memcmp(back, G_ref, sizeof(back)), 0, "a write was lost");
	struct ferry_bdev_nvmf_stats s = S(b);
	cr_assert_geq(s.connection_losses, 1);
	cr_assert_geq(s.reconnects, 1);
	cr_assert_eq(s.io_errors, 0);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	ferry_device_close(dev);
	rtgt_down();
}

Test(nvmf_rdma, device_without_rdma_refused)
{
	rtgt_up(R_BS, 0);
	struct ferry_device *dev = tm_open("rdma=0");
	struct ferry_bdev_nvmf_opts o = {.size = sizeof(o),
					 .name = "nvmf_rdma_none",
					 .nic = dev,
					 .trtype = "rdma",
					 .addr = T.addr,
					 .subnqn = R_NQN};
	struct ferry_bdev *b = NULL;
	cr_assert_eq(ferry_bdev_nvmf_create(&o, &b), -ENOTSUP);
	cr_assert_null(b);
	ferry_device_close(dev);
	rtgt_down();
}

/* A SEND of the host's that completes with an error (the mock's fault model), then an RDMA
 * WRITE of the target's with a wrong rkey: each is a work-completion error on a queue, the
 * connection goes, the I/O is retried and the data is right. */
Test(nvmf_rdma, work_completion_errors_retried)
{
	rtgt_up(R_BS, 0);
	struct ferry_device *dev = tm_open("");
	struct ferry_bdev *b = rbdev_up(dev, "nvmf_rdma_wcerr", 0, NULL, 4);
	fill(G_ref, 64 * R_BS, 61);
	struct ferry_mock_rdma_faults f = {.size = sizeof(f),
					   .fail_opcode = FERRY_HAL_RDMA_OP_SEND,
					   .fail_nth = 1,
					   .fail_status = -EIO};
	cr_assert_eq(ferry_mock_rdma_set_faults(dev, &f), 0, "%s", ferry_last_error());
	struct iovec w = {G_ref, 64 * R_BS};
	struct ferry_mem wm = {.iov = &w, .iovcnt = 1};
	cr_assert_eq(run_one(b, NULL, FERRY_BDEV_IO_WRITE, 100, 64, &wm), 0, "%s",
		     ferry_last_error());
	struct ferry_bdev_nvmf_stats s1 = S(b);
	cr_assert_geq(s1.rdma_wc_errors, 1);
	cr_assert_eq(s1.connection_losses, 1);
	cr_assert_eq(s1.retries, 1);
	struct ferry_mock_rdma_faults g = {.size = sizeof(g), .corrupt_rkey_nth = 1};
	cr_assert_eq(ferry_mock_rdma_set_faults(TDEV, &g), 0, "%s", ferry_last_error());
	memset(G_buf, 0x11, sizeof(G_buf));
	struct iovec r = {G_buf + R_BS, 64 * R_BS};
	struct ferry_mem rm = {.iov = &r, .iovcnt = 1};
	cr_assert_eq(run_one(b, NULL, FERRY_BDEV_IO_READ, 100, 64, &rm), 0, "%s",
		     ferry_last_error());
	cr_assert_eq(memcmp(G_buf + R_BS, G_ref, 64 * R_BS), 0);
	canaries_ok(G_buf, R_BS, 64 * R_BS, R_BS, 0x11);
	struct ferry_bdev_nvmf_stats s2 = S(b);
	cr_assert_gt(s2.rdma_wc_errors, s1.rdma_wc_errors);
	cr_assert_eq(s2.connection_losses, 2);
	cr_assert_eq(s2.retries, 2);
	cr_assert_eq(s2.io_errors, 0);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	ferry_device_close(dev);
	rtgt_down();
}

/* The RDMA counters of a mock device (regions registered / invalidated, errors). */
static struct ferry_hal_rdma_stats rstats(struct ferry_device *dev)
{
	const struct ferry_hal_backend *be = ferry_hal_dev_get_backend(dev);
	cr_assert(be && be->nic && be->nic->rdma && be->nic->rdma->rdma_stats);
	struct ferry_hal_rdma_stats st;
	cr_assert_eq(be->nic->rdma->rdma_stats(dev, &st), 0);
	return st;
}

#define MANY_IOS 1100u    /* more distinct buffers than the map caches (1024) */
#define MAP_DEFAULT 1024u /* the map's max_regions in the host */

/* Submit @p n one-block I/Os of @p type, buffer i at @p base + i blocks, LBA i % R_BLOCKS, all
 * before any is polled (each distinct buffer is mapped at submit: probe, and the command's own
 * hold), then wait for every one. */
static void many_distinct(struct ferry_bdev *b, enum ferry_bdev_io_type type, uint8_t *base,
			  unsigned n, int restart)
{
	static struct ferry_bdev_io io[MANY_IOS];
	static struct done dn[MANY_IOS];
	static struct iovec iov[MANY_IOS];
	for (unsigned i = 0; i < n; i++) {
		iov[i] = (struct iovec){base + (size_t)i * R_BS, R_BS};
		struct ferry_mem m = {.iov = &iov[i], .iovcnt = 1};
		io_prep(&io[i], &dn[i], type, i % R_BLOCKS, 1, &m);
		cr_assert_eq(ferry_bdev_submit(b, &io[i]), 0, "I/O %u: %s", i, ferry_last_error());
	}
	if (restart) { /* the connection lost with commands (and their keys) in flight */
		for (int k = 0; k < 3; k++)
			ferry_bdev_poll(b, 64);
		tgt_restart(&T);
	}
	uint64_t end = tm_now_ns() + IO_WAIT_NS;
	for (;;) {
		unsigned done = 0;
		for (unsigned i = 0; i < n; i++)
			done += dn[i].calls != 0;
		if (done == n || tm_now_ns() > end)
			break;
		ferry_bdev_poll(b, 64);
	}
	for (unsigned i = 0; i < n; i++) {
		cr_assert_eq(dn[i].calls, 1, "I/O %u completed %d times", i, dn[i].calls);
		cr_assert_eq(dn[i].status, 0, "I/O %u: %d", i, dn[i].status);
	}
}

/* Registrations whose keys are on the wire are held: a burst of distinct buffers evicting
 * the map's least recently used ones never evicts a command's (before, the target's RDMA
 * READ / WRITE hit a dead key: a remote access error, a connection loss and a retry each). */
Test(nvmf_rdma, many_distinct_buffers_in_flight_no_loss, .timeout = 120)
{
	rtgt_up(R_BS, 0);
	struct ferry_device *dev = tm_open("");
	/* No retries: an I/O whose keys died would fail, not hide behind a reconnect. */
	struct ferry_bdev *b = rbdev_up(dev, "nvmf_rdma_many", 0, NULL, 0);
	struct ferry_hal_rdma_stats r0 = rstats(dev);
	/* Writes: each block of the reference from its own buffer (1024 distinct ranges). */
	fill(G_ref, sizeof(G_ref), 67);
	many_distinct(b, FERRY_BDEV_IO_WRITE, G_ref, R_BLOCKS, 0);
	/* Reads: MANY_IOS distinct destinations, past the map's size. */
	static uint8_t dst[(MANY_IOS + 2) * R_BS];
	memset(dst, 0x5a, sizeof(dst));
	many_distinct(b, FERRY_BDEV_IO_READ, dst + R_BS, MANY_IOS, 0);
	for (unsigned i = 0; i < MANY_IOS; i++)
		cr_assert_eq(memcmp(dst + (size_t)(i + 1) * R_BS,
				    G_ref + (size_t)(i % R_BLOCKS) * R_BS, R_BS),
			     0, "read %u: data differ", i);
	canaries_ok(dst, R_BS, (size_t)MANY_IOS * R_BS, R_BS, 0x5a);
	struct ferry_bdev_nvmf_stats s = S(b);
	struct ferry_hal_rdma_stats r1 = rstats(dev);
	cr_assert_eq(s.connection_losses, 0, "a command's keys were evicted under it");
	cr_assert_eq(s.retries, 0);
	cr_assert_eq(s.io_errors, 0);
	cr_assert_eq(s.rdma_wc_errors, 0);
	cr_assert_eq(r1.wc_errors, r0.wc_errors);
	cr_assert_eq(s.rdma_direct_ios, R_BLOCKS + MANY_IOS, "all direct: %llu",
		     (unsigned long long)s.rdma_direct_ios);
	cr_assert_eq(s.rdma_staged_ios, 0);
	cr_assert_eq(s.staged_bytes, 0);
	/* Pressure there was: more registrations than the cache keeps, the old ones evicted. */
	cr_assert_gt(r1.mr_regs - r0.mr_regs, MAP_DEFAULT);
	cr_assert_gt(r1.mr_deregs, r0.mr_deregs);
	/* Every reference released (completion): the cache is back within its size. */
	cr_assert_leq((r1.mr_regs - r1.mr_deregs) - (r0.mr_regs - r0.mr_deregs), MAP_DEFAULT,
		      "%llu regions alive: references leaked",
		      (unsigned long long)((r1.mr_regs - r1.mr_deregs) -
					   (r0.mr_regs - r0.mr_deregs)));
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	struct ferry_hal_rdma_stats r2 = rstats(dev);
	cr_assert_eq(r2.mr_regs, r2.mr_deregs, "destroy deregistered everything");
	ferry_device_close(dev);
	rtgt_down();
}

/* The same bursts with the target restarted under each: the commands lost with the
 * connection give their segments back when their slots are put, the retries map (and hold)
 * again, nothing is lost or staged, and the cache is within its size at the end. (A leak of
 * the lost commands' references is bounded by the slots in flight, so it would not show in
 * the region count here; the map's own tests check the counting.) */
Test(nvmf_rdma, many_distinct_buffers_connection_loss_releases, .timeout = 120)
{
	rtgt_up(R_BS, 0);
	struct ferry_device *dev = tm_open("");
	struct ferry_bdev *b = rbdev_up(dev, "nvmf_rdma_many_loss", 0, NULL, 8);
	struct ferry_hal_rdma_stats r0 = rstats(dev);
	fill(G_ref, sizeof(G_ref), 71);
	many_distinct(b, FERRY_BDEV_IO_WRITE, G_ref, R_BLOCKS, 1);
	static uint8_t dst[(MANY_IOS + 2) * R_BS];
	memset(dst, 0x3c, sizeof(dst));
	many_distinct(b, FERRY_BDEV_IO_READ, dst + R_BS, MANY_IOS, 1);
	for (unsigned i = 0; i < MANY_IOS; i++)
		cr_assert_eq(memcmp(dst + (size_t)(i + 1) * R_BS,
				    G_ref + (size_t)(i % R_BLOCKS) * R_BS, R_BS),
			     0, "read %u: data differ", i);
	canaries_ok(dst, R_BS, (size_t)MANY_IOS * R_BS, R_BS, 0x3c);
	struct ferry_bdev_nvmf_stats s = S(b);
	cr_assert_geq(s.connection_losses, 2, "both bursts lost their connection");
	cr_assert_gt(s.retries, 0);
	cr_assert_eq(s.io_errors, 0);
	cr_assert_eq(s.rdma_staged_ios, 0);
	struct ferry_hal_rdma_stats r1 = rstats(dev);
	uint64_t alive = (r1.mr_regs - r1.mr_deregs) - (r0.mr_regs - r0.mr_deregs);
	/* The reconnected queues' capsule slabs are the same (kept across connections). */
	cr_assert_leq(alive, MAP_DEFAULT, "%llu regions alive: a lost command's segments leaked",
		      (unsigned long long)alive);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	ferry_device_close(dev);
	rtgt_down();
}
