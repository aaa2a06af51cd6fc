/* The mock backend's device arguments: defaults, every key, and refusals with a message. */
#include <string.h>
#include "test_mock_util.h"

static int try_open(const char *args)
{
	struct ferry_device *dev = NULL;
	int rc = ferry_device_open("mock", args, &dev);
	if (rc == 0)
		ferry_device_close(dev);
	else
		cr_assert_null(dev);
	return rc;
}

Test(mock_args, defaults)
{
	struct ferry_device *dev = tm_open("");
	struct ferry_mock_host *h = tm_host(dev);
	cr_assert_eq(ferry_mock_host_mem_size(h), 16u << 20);
	cr_assert_eq(ferry_mock_host_fn_count(h), 2);
	cr_assert_str_eq(ferry_mock_host_fn_name(h, 0), "nvme");
	cr_assert_str_eq(ferry_mock_host_fn_name(h, 1), "nic");
	struct ferry_dma_chan *chan;
	cr_assert_eq(ferry_dma_chan_create(dev, NULL, &chan), 0);
	/* default ring 256: a batch of 300 is accepted partly */
	static uint8_t a[300], b[300];
	static struct iovec ia[300], ib[300];
	static struct ferry_xfer x[300], *xp[300];
	for (int i = 0; i < 300; i++) {
		ia[i] = (struct iovec){&a[i], 1};
		ib[i] = (struct iovec){&b[i], 1};
		x[i] = (struct ferry_xfer){.src = {.iov = &ia[i], .iovcnt = 1},
					   .dst = {.iov = &ib[i], .iovcnt = 1},
					   .len = 1};
		xp[i] = &x[i];
	}
	cr_assert_eq(ferry_mock_set_latency(dev, 50000000), 0);
	cr_assert_eq(ferry_dma_submit(chan, xp, 300), 256);
	ferry_dma_chan_destroy(chan);
	ferry_mock_host_close(h);
	ferry_device_close(dev);
}

Test(mock_args, every_key_accepted)
{
	struct ferry_device *dev = tm_open(
		"host_mem=1M,iova_size=0x200000,functions=a:b_1:c2,latency_ns=1000,"
		"ring=4,seed=7,inject_ppm=0");
	struct ferry_mock_host *h = tm_host(dev);
	cr_assert_eq(ferry_mock_host_mem_size(h), 1u << 20);
	cr_assert_eq(ferry_mock_host_iova_size(h), 2u << 20);
	cr_assert_eq(ferry_mock_host_fn_count(h), 3);
	cr_assert_str_eq(ferry_mock_host_fn_name(h, 1), "b_1");
	tm_domain(dev, "c2");
	ferry_mock_host_close(h);
	ferry_device_close(dev);
	cr_assert_eq(try_open("host_mem=8k,iova_size=4096,functions=x"), 0);
	cr_assert_eq(try_open("host_mem=1G"), 0, "sparse memfd: a large size is cheap");
	cr_assert_eq(try_open("functions=f0:f1:f2:f3:f4:f5:f6:f7"), 0, "8 functions");
}

Test(mock_args, refusals)
{
	static const char *const bad[] = {
		"bogus=1",
		"host_mem=abc",
		"host_mem=4097",
		"host_mem=0",
		"host_mem=-4096",
		"host_mem=8G",
		"host_mem=4K,host_mem=12X",
		"host_mem=99999999999999999999999",
		"iova_size=100",
		"functions=",
		"functions=a::b",
		"functions=nvme:nvme",
		"functions=NVMe",
		"functions=a-b",
		"functions=abcdefghijklmnop",
		"functions=f0:f1:f2:f3:f4:f5:f6:f7:f8",
		"latency_ns=10000000001",
		"latency_ns=1ms",
		"ring=0",
		"ring=65537",
		"seed=x",
		"inject_ppm=1000001",
		"ring",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(try_open(bad[i]), -EINVAL, "'%s' accepted", bad[i]);
		cr_assert_neq(ferry_last_error()[0], '\0');
	}
	cr_assert_eq(try_open("bogus=1"), -EINVAL);
	cr_assert_not_null(strstr(ferry_last_error(), "bogus"), "names the key: %s",
			   ferry_last_error());
	cr_assert_eq(try_open("ring=0"), -EINVAL);
	cr_assert_not_null(strstr(ferry_last_error(), "ring"), "names the key: %s",
			   ferry_last_error());
	cr_assert_null(ferry_memdomain_first(FERRY_MEMDOMAIN_PCIE), "nothing left behind");
}
