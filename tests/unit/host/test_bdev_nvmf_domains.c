/*
 * The nvmf bdev's staging path: I/O whose data is host memory behind a PCI function (a mock
 * host domain) is pulled into / pushed out of a local staging buffer; a crypto bdev on top
 * (the I/O's accel sequence) is executed into the staging buffer, and the bytes the fake
 * controller stores are checked against the software AES-XTS transform.
 */
#include <criterion/criterion.h>
#include <ferry/accel.h>
#include <ferry/bdev.h>
#include <ferry/bdev_crypto.h>
#include <ferry/bdev_nvmf.h>
#include <ferry/crypto.h>
#include <ferry/mock.h>
#include "fake_target.h"
#include "nvmf_test_util.h"
#include "test_accel_util.h"
#include "test_mock_util.h"

static struct ferry_bdev *connect_to(struct fake_target *t, const char *name)
{
	struct ferry_bdev_nvmf_opts o = {0};
	o.size = sizeof(o);
	o.name = name;
	o.addr = t->addr;
	o.subnqn = "nqn.2026-01.io.ferry:domains";
	o.ddgst = 1;
	struct ferry_bdev *b = NULL;
	int rc = ferry_bdev_nvmf_create(&o, &b);
	cr_assert_eq(rc, 0, "create: %s (%s)", ferry_strerror(rc), ferry_last_error());
	return b;
}

Test(bdev_nvmf_domains, host_memory)
{
	struct ferry_device *dev = tm_open("host_mem=1M,functions=nvme:nic");
	struct ferry_mock_host *h = tm_host(dev);
	struct ferry_memdomain *dom = tm_domain(dev, "nvme");
	tm_map(h, "nvme", 16, 64, 8, FERRY_MOCK_IOMMU_READ | FERRY_MOCK_IOMMU_WRITE);
	uint8_t *host = ferry_mock_host_ptr(h, 64 * TM_PAGE, 8 * TM_PAGE);
	cr_assert_not_null(host);
	uint64_t seed = 5;
	ta_fill_rand(host, 4 * TM_PAGE, &seed);
	memset(host + 4 * TM_PAGE, 0, 4 * TM_PAGE);

	struct fake_target t;
	ft_defaults(&t);
	t.ioccsz = 4;
	cr_assert_eq(ft_start(&t), 0);
	struct ferry_bdev *b = connect_to(&t, "nvmf_host");
	/* host data in two segments at IOVAs of the nvme function */
	struct iovec iov[2] = {{(void *)(uintptr_t)(16 * TM_PAGE), 3 * TM_PAGE},
			       {(void *)(uintptr_t)(19 * TM_PAGE), TM_PAGE}};
	struct ferry_mem m = {.domain = dom, .iov = iov, .iovcnt = 2};
	cr_assert_eq(run_one(b, NULL, FERRY_BDEV_IO_WRITE, 40, 32, &m), 0, "%s",
		     ferry_last_error());
	cr_assert_eq(memcmp(t.storage + 40 * 512, host, 4 * TM_PAGE), 0,
		     "controller got host bytes");
	struct iovec riov = {(void *)(uintptr_t)(20 * TM_PAGE), 4 * TM_PAGE};
	struct ferry_mem rm = {.domain = dom, .iov = &riov, .iovcnt = 1};
	cr_assert_eq(run_one(b, NULL, FERRY_BDEV_IO_READ, 40, 32, &rm), 0);
	cr_assert_eq(memcmp(host + 4 * TM_PAGE, host, 4 * TM_PAGE), 0, "host got the bytes back");
	/* an unmapped IOVA: the pull fails, nothing is sent */
	struct iovec bad = {(void *)(uintptr_t)(200 * TM_PAGE), TM_PAGE};
	struct ferry_mem bm = {.domain = dom, .iov = &bad, .iovcnt = 1};
	int cmds = atomic_load(&t.io_cmds);
	int rc = run_one(b, NULL, FERRY_BDEV_IO_WRITE, 0, 8, &bm);
	cr_assert(rc == -EFAULT || rc == -EIO, "got %d", rc);
	cr_assert_eq(atomic_load(&t.io_cmds), cmds, "no command for a failed pull");

	struct ferry_bdev_nvmf_stats s = {.size = sizeof(s)};
	cr_assert_eq(ferry_bdev_nvmf_get_stats(b, &s), 0);
	cr_assert_eq(s.staged_ios, 3);
	cr_assert_eq(s.seq_ios, 0);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	ft_stop(&t);
	ferry_mock_host_close(h);
	ferry_device_close(dev);
}

Test(bdev_nvmf_domains, crypto_sequence)
{
	struct ferry_accel_chan *ch = ta_chan(NULL, 0);
	struct ferry_crypto_key *key = ta_key(11, FERRY_CIPHER_AES_XTS_128, 512);
	struct fake_target t;
	ft_defaults(&t);
	cr_assert_eq(ft_start(&t), 0);
	struct ferry_bdev *b = connect_to(&t, "nvmf_crypto_base");
	struct ferry_bdev_crypto_opts co = {.size = sizeof(co),
					    .name = "nvmf_crypto",
					    .base = b,
					    .key = key};
	struct ferry_bdev *cb = NULL;
	cr_assert_eq(ferry_bdev_crypto_create(&co, &cb), 0, "%s", ferry_last_error());

	static uint8_t plain[16384], back[16384], expect[16384];
	uint64_t seed = 3;
	ta_fill_rand(plain, sizeof(plain), &seed);
	struct iovec iov;
	struct ferry_mem m = ta_sys(&iov, plain, sizeof(plain));
	cr_assert_eq(run_one(cb, ch, FERRY_BDEV_IO_WRITE, 100, 32, &m), 0, "%s",
		     ferry_last_error());
	/* the controller holds the software transform of the plaintext (tweak = LBA) */
	struct iovec d = {expect, sizeof(expect)}, sv = {plain, sizeof(plain)};
	cr_assert_eq(ferry_crypto_encrypt(key, &d, 1, &sv, 1, 100), 0);
	cr_assert_eq(memcmp(t.storage + 100 * 512, expect, sizeof(expect)), 0);
	cr_assert_neq(memcmp(t.storage + 100 * 512, plain, 512), 0);
	struct ferry_mem rm = ta_sys(&iov, back, sizeof(back));
	cr_assert_eq(run_one(cb, ch, FERRY_BDEV_IO_READ, 100, 32, &rm), 0, "%s",
		     ferry_last_error());
	cr_assert_eq(memcmp(back, plain, sizeof(plain)), 0);

	struct ferry_bdev_nvmf_stats s = {.size = sizeof(s)};
	cr_assert_eq(ferry_bdev_nvmf_get_stats(b, &s), 0);
	cr_assert_eq(s.seq_ios, 2);
	cr_assert_eq(s.staged_ios, 2);
	cr_assert_eq(ferry_bdev_destroy(cb), 0);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	ft_stop(&t);
	ferry_crypto_key_destroy(key);
	ferry_accel_chan_destroy(ch);
}
