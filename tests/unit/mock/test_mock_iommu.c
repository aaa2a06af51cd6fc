/*
 * The mock's host memory and per-function IOMMU: the host-side API (map/unmap/lookup/ptr and
 * their checks), bounds and permissions seen by DMA transfers (nothing written on a refusal),
 * the source documents' translate example (nvme IOVA 16 -> host 64, nic IOVA 16 -> host 1024),
 * multi-segment translation, -ENOBUFS/-EXDEV, invalidate and the reverse-map cache, and a
 * forked host process that programs the IOMMU and exchanges data with the firmware side.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include "test_mock_util.h"
#include <ferry/module/memdomain.h>

static struct ferry_device *dev;
static struct ferry_mock_host *host;
static struct ferry_memdomain *nvme, *nic;
static struct ferry_dma_chan *chan;
enum {
	NVME = 0,
	NIC = 1
};

static void setup(void)
{
	dev = tm_open("host_mem=8M,iova_size=16M");
	host = tm_host(dev);
	nvme = tm_domain(dev, "nvme");
	nic = tm_domain(dev, "nic");
	cr_assert_eq(ferry_dma_chan_create(dev, NULL, &chan), 0);
}

static void teardown(void)
{
	ferry_dma_chan_destroy(chan);
	ferry_mock_host_close(host);
	ferry_device_close(dev);
}

static uint8_t *hptr(uint64_t page)
{
	return ferry_mock_host_ptr(host, page * TM_PAGE, TM_PAGE);
}

Test(mock_iommu, host_api_checks, .init = setup, .fini = teardown)
{
	uint64_t off;
	uint32_t perms;
	cr_assert_eq(ferry_mock_host_fn_count(host), 2);
	cr_assert_str_eq(ferry_mock_host_fn_name(host, 0), "nvme");
	cr_assert_str_eq(ferry_mock_host_fn_name(host, 1), "nic");
	cr_assert_null(ferry_mock_host_fn_name(host, 2));
	cr_assert_eq(ferry_mock_host_fn_lookup(host, "nic"), 1);
	cr_assert_eq(ferry_mock_host_fn_lookup(host, "gpu"), -ENOENT);
	cr_assert_eq(ferry_mock_host_mem_size(host), 8u << 20);
	cr_assert_eq(ferry_mock_host_iova_size(host), 16u << 20);

	cr_assert_eq(ferry_mock_host_iommu_map(host, 2, 0, 0, TM_PAGE, TM_RW), -EINVAL, "fn");
	cr_assert_eq(ferry_mock_host_iommu_map(host, 0, 1, 0, TM_PAGE, TM_RW), -EINVAL, "iova");
	cr_assert_eq(ferry_mock_host_iommu_map(host, 0, 0, 1, TM_PAGE, TM_RW), -EINVAL, "host");
	cr_assert_eq(ferry_mock_host_iommu_map(host, 0, 0, 0, 100, TM_RW), -EINVAL, "len");
	cr_assert_eq(ferry_mock_host_iommu_map(host, 0, 0, 0, 0, TM_RW), -EINVAL, "empty");
	cr_assert_eq(ferry_mock_host_iommu_map(host, 0, 0, 0, TM_PAGE, 0), -EINVAL, "perms");
	cr_assert_eq(ferry_mock_host_iommu_map(host, 0, 0, 0, TM_PAGE, 8), -EINVAL, "perms");
	cr_assert_eq(ferry_mock_host_iommu_map(host, 0, (16u << 20) - TM_PAGE, 0, 2 * TM_PAGE,
					       TM_RW),
		     -ERANGE, "IOVA space end");
	cr_assert_eq(ferry_mock_host_iommu_map(host, 0, 0, (8u << 20) - TM_PAGE, 2 * TM_PAGE,
					       TM_RW),
		     -ERANGE, "host RAM end");
	cr_assert_eq(ferry_mock_host_iommu_map(NULL, 0, 0, 0, TM_PAGE, TM_RW), -EINVAL);

	cr_assert_eq(ferry_mock_host_iommu_map(host, 0, 4 * TM_PAGE, 7 * TM_PAGE, 2 * TM_PAGE,
					       FERRY_MOCK_IOMMU_READ),
		     0);
	/* overlapping map refused as a whole: page 3 stays unmapped */
	cr_assert_eq(ferry_mock_host_iommu_map(host, 0, 3 * TM_PAGE, 0, 2 * TM_PAGE, TM_RW),
		     -EEXIST);
	cr_assert_eq(ferry_mock_host_iommu_lookup(host, 0, 3 * TM_PAGE, &off, &perms), -ENOENT);
	cr_assert_eq(ferry_mock_host_iommu_lookup(host, 0, 5 * TM_PAGE + 17, &off, &perms), 0);
	cr_assert_eq(off, 8 * TM_PAGE + 17);
	cr_assert_eq(perms, FERRY_MOCK_IOMMU_READ);
	cr_assert_eq(ferry_mock_host_iommu_lookup(host, 1, 5 * TM_PAGE, &off, &perms), -ENOENT,
		     "tables are per function");
	cr_assert_eq(ferry_mock_host_iommu_lookup(host, 0, 16u << 20, &off, &perms), -ERANGE);
	cr_assert_eq(ferry_mock_host_iommu_unmap(host, 0, 4 * TM_PAGE, 100), -EINVAL);
	cr_assert_eq(ferry_mock_host_iommu_unmap(host, 0, 4 * TM_PAGE, TM_PAGE), 0);
	cr_assert_eq(ferry_mock_host_iommu_lookup(host, 0, 4 * TM_PAGE, NULL, NULL), -ENOENT);
	cr_assert_eq(ferry_mock_host_iommu_lookup(host, 0, 5 * TM_PAGE, NULL, NULL), 0);

	cr_assert_not_null(ferry_mock_host_ptr(host, 0, 8u << 20));
	cr_assert_null(ferry_mock_host_ptr(host, 1, 8u << 20));
	cr_assert_null(ferry_mock_host_ptr(host, UINT64_MAX, 2));
	cr_assert_null(ferry_mock_host_ptr(NULL, 0, 1));
}

Test(mock_iommu, host_open_refuses_foreign_fds)
{
	struct ferry_mock_host *h = NULL;
	int fd = memfd_create("not-ferry", 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 1 << 20), 0);
	cr_assert_eq(ferry_mock_host_open(fd, &h), -EINVAL, "zeroed memfd");
	close(fd);
	fd = open("/dev/null", O_RDWR);
	cr_assert_eq(ferry_mock_host_open(fd, &h), -EINVAL);
	close(fd);
	cr_assert_eq(ferry_mock_host_open(-1, &h), -EINVAL);
	cr_assert_null(h);
	cr_assert_eq(ferry_mock_host_fd(NULL, &fd), -EINVAL);
	cr_assert_eq(ferry_mock_set_latency(NULL, 0), -EINVAL);
}

/* One transfer, run to completion; returns its status. */
static enum ferry_xfer_status xfer1(struct ferry_mem src, struct ferry_mem dst, uint64_t len)
{
	struct ferry_xfer x = {.src = src, .dst = dst, .len = len}, *p = &x;
	tm_run(chan, &p, 1);
	return x.status;
}

static struct ferry_mem dmem(struct ferry_memdomain *d, struct iovec *iov)
{
	return (struct ferry_mem){.domain = d, .iov = iov, .iovcnt = 1};
}

Test(mock_iommu, bounds_and_permissions, .init = setup, .fini = teardown)
{
	tm_map(host, "nvme", 1, 1, 1, FERRY_MOCK_IOMMU_READ);
	tm_map(host, "nvme", 2, 2, 1, FERRY_MOCK_IOMMU_WRITE);
	tm_map(host, "nvme", 3, 3, 2, TM_RW); /* 5 is unmapped */
	uint8_t *h = ferry_mock_host_ptr(host, 0, 8 * TM_PAGE);
	for (size_t i = 0; i < 8 * TM_PAGE; i++)
		h[i] = (uint8_t)(i * 3 + 1);
	uint8_t snap[8 * TM_PAGE];
	memcpy(snap, h, sizeof(snap));
	uint8_t buf[2 * TM_PAGE];
	memset(buf, 0x77, sizeof(buf));
	struct iovec l = {buf, sizeof(buf)};
	struct {
		uint64_t iova, len;
		int push;
		enum ferry_xfer_status want;
	} cases[] = {
		{1 * TM_PAGE, 64, 0, FERRY_XFER_SUCCESS},           /* read-only: pull ok */
		{1 * TM_PAGE, 64, 1, FERRY_XFER_PAGE_FAULT},        /* read-only: push refused */
		{2 * TM_PAGE, 64, 1, FERRY_XFER_SUCCESS},           /* write-only: push ok */
		{2 * TM_PAGE, 64, 0, FERRY_XFER_PAGE_FAULT},        /* write-only: pull refused */
		{0, 64, 0, FERRY_XFER_PAGE_FAULT},                  /* unmapped */
		{5 * TM_PAGE - 100, 200, 1, FERRY_XFER_PAGE_FAULT}, /* crosses into unmapped */
		{5 * TM_PAGE - 100, 200, 0, FERRY_XFER_PAGE_FAULT},
		{2 * TM_PAGE - 10, 20, 0, FERRY_XFER_PAGE_FAULT}, /* read-only then write-only */
		{16u << 20, 64, 0, FERRY_XFER_PAGE_FAULT},        /* past the IOVA space */
		{UINT64_MAX - 31, 64, 0, FERRY_XFER_PAGE_FAULT},  /* wraps */
		{3 * TM_PAGE + 5, 2 * TM_PAGE - 5, 1, FERRY_XFER_SUCCESS}, /* exactly to the end */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct iovec r = {(void *)(uintptr_t)cases[i].iova, cases[i].len};
		memcpy(h, snap, sizeof(snap));
		memset(buf, 0x77, sizeof(buf));
		enum ferry_xfer_status st =
			cases[i].push ? xfer1(dmem(NULL, &l), dmem(nvme, &r), cases[i].len)
				      : xfer1(dmem(nvme, &r), dmem(NULL, &l), cases[i].len);
		cr_assert_eq(st, cases[i].want, "case %zu: %s", i, ferry_xfer_status_str(st));
		if (st == FERRY_XFER_SUCCESS)
			continue;
		cr_assert_arr_eq(h, snap, sizeof(snap), "case %zu: host memory written", i);
		for (size_t k = 0; k < sizeof(buf); k++)
			cr_assert_eq(buf[k], 0x77, "case %zu: local byte %zu written", i, k);
	}
}

/* nvme IOVA 16 -> host 64, nic IOVA 16 -> host 1024, nic IOVA 200 -> host 64. */
static void map_seed_example(void)
{
	tm_map(host, "nvme", 16, 64, 1, TM_RW);
	tm_map(host, "nic", 16, 1024, 1, TM_RW);
	tm_map(host, "nic", 200, 64, 1, TM_RW);
	memset(hptr(64), 'N', TM_PAGE);
	memset(hptr(1024), 'C', TM_PAGE);
}

Test(mock_iommu, seed_example_same_iova_two_views, .init = setup, .fini = teardown)
{
	map_seed_example();
	char a[32], b[32];
	struct iovec ra = {TM_IOVA(16), 32}, la = {a, 32}, lb = {b, 32};
	cr_assert_eq(xfer1(dmem(nvme, &ra), dmem(NULL, &la), 32), FERRY_XFER_SUCCESS);
	cr_assert_eq(xfer1(dmem(nic, &ra), dmem(NULL, &lb), 32), FERRY_XFER_SUCCESS);
	cr_assert_eq(a[0], 'N');
	cr_assert_eq(b[0], 'C', "IOVA 16 is host page 1024 for the nic");

	struct iovec in = {(char *)TM_IOVA(16) + 100, 300}, outv[4];
	struct ferry_mem src = dmem(nvme, &in), out = {.iov = outv, .iovcnt = 4};
	cr_assert_eq(ferry_memdomain_translate(&src, nic, &out), 0);
	cr_assert_eq(out.domain, nic);
	cr_assert_eq(out.iovcnt, 1);
	cr_assert_eq(outv[0].iov_base, (char *)TM_IOVA(200) + 100);
	cr_assert_eq(outv[0].iov_len, 300);
	/* and back */
	struct ferry_mem back = {.iov = outv + 1, .iovcnt = 3};
	cr_assert_eq(ferry_memdomain_translate(&out, nvme, &back), 0);
	cr_assert_eq(back.iovcnt, 1);
	cr_assert_eq(outv[1].iov_base, in.iov_base);
	/* the nic's IOVA 16 is host page 1024, which the nvme function cannot see */
	struct iovec in2 = {TM_IOVA(16), 8};
	struct ferry_mem src2 = dmem(nic, &in2);
	out.iovcnt = 4;
	cr_assert_eq(ferry_memdomain_translate(&src2, nvme, &out), -EFAULT);
	/* unmapped in the source view */
	struct iovec in3 = {TM_IOVA(17), 8};
	struct ferry_mem src3 = dmem(nvme, &in3);
	cr_assert_eq(ferry_memdomain_translate(&src3, nic, &out), -EFAULT);
	/* a range that runs off the mapped page */
	struct iovec in4 = {(char *)TM_IOVA(16) + 4000, 200};
	struct ferry_mem src4 = dmem(nvme, &in4);
	cr_assert_eq(ferry_memdomain_translate(&src4, nic, &out), -EFAULT);
	/* data pushed through the nic's view of page 64 is what the nvme view reads */
	char msg[] = "via nic";
	struct iovec rn = {(char *)TM_IOVA(200) + 8, sizeof(msg)}, lm = {msg, sizeof(msg)};
	cr_assert_eq(xfer1(dmem(NULL, &lm), dmem(nic, &rn), sizeof(msg)), FERRY_XFER_SUCCESS);
	cr_assert_str_eq((char *)hptr(64) + 8, "via nic");
}

Test(mock_iommu, multi_segment_translation, .init = setup, .fini = teardown)
{
	/* nvme: IOVA pages 100..103 contiguous over host pages 300..303.
	 * nic: host 300-301 at IOVA 500-501, host 302-303 at IOVA 700-701. */
	tm_map(host, "nvme", 100, 300, 4, TM_RW);
	tm_map(host, "nic", 500, 300, 2, TM_RW);
	tm_map(host, "nic", 700, 302, 2, TM_RW);
	struct iovec in = {(char *)TM_IOVA(100) + 10, 4 * TM_PAGE - 20}, outv[3];
	struct ferry_mem src = dmem(nvme, &in), out = {.iov = outv, .iovcnt = 1};
	cr_assert_eq(ferry_memdomain_translate(&src, nic, &out), -ENOBUFS);
	cr_assert_eq(out.iovcnt, 2, "needed segments reported");
	out.iovcnt = 3;
	cr_assert_eq(ferry_memdomain_translate(&src, nic, &out), 0);
	cr_assert_eq(out.iovcnt, 2);
	cr_assert_eq(outv[0].iov_base, (char *)TM_IOVA(500) + 10);
	cr_assert_eq(outv[0].iov_len, 2 * TM_PAGE - 10);
	cr_assert_eq(outv[1].iov_base, TM_IOVA(700));
	cr_assert_eq(outv[1].iov_len, 2 * TM_PAGE - 10);
	/* reverse: two nic segments become one contiguous nvme segment */
	struct iovec back[2];
	struct ferry_mem bout = {.iov = back, .iovcnt = 2};
	cr_assert_eq(ferry_memdomain_translate(&out, nvme, &bout), 0);
	cr_assert_eq(bout.iovcnt, 1);
	cr_assert_eq(back[0].iov_base, in.iov_base);
	cr_assert_eq(back[0].iov_len, in.iov_len);
	/* the translated descriptor moves the same bytes as the original */
	uint8_t *h = ferry_mock_host_ptr(host, 300 * TM_PAGE, 4 * TM_PAGE);
	for (size_t i = 0; i < 4 * TM_PAGE; i++)
		h[i] = (uint8_t)(i ^ (i >> 8));
	static uint8_t a[4 * TM_PAGE], b[4 * TM_PAGE];
	struct iovec la = {a, in.iov_len}, lb = {b, in.iov_len};
	struct ferry_xfer x1 = {.src = src, .dst = dmem(NULL, &la), .len = in.iov_len};
	struct ferry_xfer x2 = {.src = out, .dst = dmem(NULL, &lb), .len = in.iov_len};
	struct ferry_xfer *xs[2] = {&x1, &x2};
	tm_run(chan, xs, 2);
	cr_assert_eq(x1.status, FERRY_XFER_SUCCESS);
	cr_assert_eq(x2.status, FERRY_XFER_SUCCESS);
	cr_assert_arr_eq(a, b, in.iov_len);
	cr_assert_arr_eq(a, h + 10, in.iov_len);
}

Test(mock_iommu, translation_prefers_continuation_then_lowest, .init = setup, .fini = teardown)
{
	/* host 40 at nic IOVA 100 only; host 41 at nic IOVA 7 and 101 -> one segment 100-101 */
	tm_map(host, "nvme", 10, 40, 2, TM_RW);
	tm_map(host, "nic", 100, 40, 2, TM_RW);
	tm_map(host, "nic", 7, 41, 1, TM_RW);
	struct iovec in = {TM_IOVA(10), 2 * TM_PAGE}, outv[2];
	struct ferry_mem src = dmem(nvme, &in), out = {.iov = outv, .iovcnt = 2};
	cr_assert_eq(ferry_memdomain_translate(&src, nic, &out), 0);
	cr_assert_eq(out.iovcnt, 1);
	cr_assert_eq(outv[0].iov_base, TM_IOVA(100));
	/* a page on its own picks the lowest IOVA mapping it */
	struct iovec in2 = {TM_IOVA(11), 16};
	struct ferry_mem src2 = dmem(nvme, &in2);
	out.iovcnt = 2;
	cr_assert_eq(ferry_memdomain_translate(&src2, nic, &out), 0);
	cr_assert_eq(outv[0].iov_base, TM_IOVA(7));
}

Test(mock_iommu, translate_elsewhere_is_exdev, .init = setup, .fini = teardown)
{
	map_seed_example();
	struct ferry_device *dev2 = tm_open(NULL);
	static const struct ferry_memdomain_ops plain = {.abi_version = FERRY_MEMDOMAIN_OPS_ABI};
	struct ferry_memdomain *other;
	struct ferry_memdomain_opts o = {.size = sizeof(o),
					 .type = FERRY_MEMDOMAIN_RDMA,
					 .name = "rdma.x",
					 .ops = &plain};
	cr_assert_eq(ferry_memdomain_create(&o, &other), 0);
	struct iovec in = {TM_IOVA(16), 8}, outv[2];
	struct ferry_mem src = dmem(nvme, &in), out = {.iov = outv, .iovcnt = 2};
	cr_assert_eq(ferry_memdomain_translate(&src, NULL, &out), -EXDEV, "system");
	cr_assert_eq(ferry_memdomain_translate(&src, ferry_memdomain_system(), &out), -EXDEV);
	cr_assert_eq(ferry_memdomain_translate(&src, tm_domain(dev2, "nic"), &out), -EXDEV);
	cr_assert_eq(ferry_memdomain_translate(&src, other, &out), -EXDEV);
	cr_assert_eq(ferry_memdomain_translate(&src, nvme, &out), 0, "same domain: copy");
	cr_assert_eq(outv[0].iov_base, in.iov_base);
	ferry_memdomain_destroy(other);
	ferry_device_close(dev2);
}

Test(mock_iommu, invalidate_and_reverse_map_cache, .init = setup, .fini = teardown)
{
	map_seed_example();
	struct ferry_mock_stats st = {.size = sizeof(st)};
	struct iovec in = {TM_IOVA(16), 8}, outv[2];
	struct ferry_mem src = dmem(nvme, &in), out = {.iov = outv, .iovcnt = 2};
	cr_assert_eq(ferry_memdomain_translate(&src, nic, &out), 0);
	cr_assert_eq(ferry_memdomain_translate(&src, nic, &out), 0);
	ferry_mock_get_stats(dev, &st);
	cr_assert_eq(st.rmap_builds, 1, "second translate used the cached reverse map");
	cr_assert_eq(st.translations, 2);
	struct ferry_mem inv = dmem(nic, &in);
	cr_assert_eq(ferry_memdomain_invalidate(&inv), 0);
	cr_assert_eq(ferry_memdomain_translate(&src, nic, &out), 0);
	ferry_mock_get_stats(dev, &st);
	cr_assert_eq(st.rmap_builds, 2, "invalidate dropped the cache");
	cr_assert_eq(st.invalidations, 1);
	/* the host remaps: the change is seen without an invalidate */
	cr_assert_eq(ferry_mock_host_iommu_unmap(host, NIC, 200 * TM_PAGE, TM_PAGE), 0);
	tm_map(host, "nic", 300, 64, 1, TM_RW);
	out.iovcnt = 2;
	cr_assert_eq(ferry_memdomain_translate(&src, nic, &out), 0);
	cr_assert_eq(outv[0].iov_base, TM_IOVA(300));
	/* out of range */
	struct iovec far = {(void *)(uintptr_t)(1ull << 40), 8};
	struct ferry_mem bad = dmem(nic, &far);
	cr_assert_eq(ferry_memdomain_invalidate(&bad), -EFAULT);
}

/* ---- a forked host process ---- */

static int child_host(int fd, uint8_t fill)
{
	struct ferry_mock_host *h;
	if (ferry_mock_host_open(fd, &h))
		return 10;
	int nv = ferry_mock_host_fn_lookup(h, "nvme"), ni = ferry_mock_host_fn_lookup(h, "nic");
	if (nv < 0 || ni < 0)
		return 11;
	if (ferry_mock_host_iommu_map(h, (unsigned)nv, 16 * TM_PAGE, 64 * TM_PAGE, 2 * TM_PAGE,
				      TM_RW) ||
	    ferry_mock_host_iommu_map(h, (unsigned)ni, 16 * TM_PAGE, 1024 * TM_PAGE, TM_PAGE,
				      TM_RW))
		return 12;
	uint8_t *p = ferry_mock_host_ptr(h, 64 * TM_PAGE, 2 * TM_PAGE);
	for (size_t i = 0; i < 2 * TM_PAGE; i++)
		p[i] = (uint8_t)(fill + i);
	memset(ferry_mock_host_ptr(h, 1024 * TM_PAGE, TM_PAGE), fill ^ 0xff, TM_PAGE);
	ferry_mock_host_close(h);
	return 0;
}

static int child_check(int fd, uint8_t want)
{
	struct ferry_mock_host *h;
	if (ferry_mock_host_open(fd, &h))
		return 10;
	const uint8_t *p = ferry_mock_host_ptr(h, 65 * TM_PAGE, TM_PAGE);
	for (size_t i = 0; i < TM_PAGE; i++)
		if (p[i] != want)
			return 20;
	/* the host takes the page away again */
	if (ferry_mock_host_iommu_unmap(h, 0, 17 * TM_PAGE, TM_PAGE))
		return 21;
	ferry_mock_host_close(h);
	return 0;
}

static int run_child(int (*fn)(int, uint8_t), uint8_t arg)
{
	int fd;
	cr_assert_eq(ferry_mock_host_fd(dev, &fd), 0);
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0)
		_exit(fn(fd, arg));
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st));
	return WEXITSTATUS(st);
}

Test(mock_iommu, forked_host_process, .init = setup, .fini = teardown)
{
	cr_assert_eq(run_child(child_host, 0x30), 0);
	/* the mapping the child made is visible here */
	uint64_t off;
	cr_assert_eq(ferry_mock_host_iommu_lookup(host, NIC, 16 * TM_PAGE, &off, NULL), 0);
	cr_assert_eq(off, 1024 * TM_PAGE);
	static uint8_t buf[2 * TM_PAGE], nb[64];
	struct iovec r = {TM_IOVA(16), sizeof(buf)}, l = {buf, sizeof(buf)};
	struct ferry_mem rm = dmem(nvme, &r), lm = dmem(NULL, &l);
	struct tm_cb c = {0};
	cr_assert_eq(ferry_memdomain_pull(&rm, &lm, tm_cb_fn, &c), 0);
	tm_wait_cb(nvme, &c);
	cr_assert_eq(c.status, 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		cr_assert_eq(buf[i], (uint8_t)(0x30 + i), "byte %zu", i);
	struct iovec rn = {TM_IOVA(16), sizeof(nb)}, ln = {nb, sizeof(nb)};
	cr_assert_eq(xfer1(dmem(nic, &rn), dmem(NULL, &ln), sizeof(nb)), FERRY_XFER_SUCCESS);
	cr_assert_eq(nb[0], 0x30 ^ 0xff);
	/* firmware pushes; a second host process checks the bytes and unmaps page 17 */
	memset(buf, 0xc4, sizeof(buf));
	struct tm_cb p = {0};
	cr_assert_eq(ferry_memdomain_push(&rm, &lm, tm_cb_fn, &p), 0);
	tm_wait_cb(nvme, &p);
	cr_assert_eq(p.status, 0);
	cr_assert_eq(run_child(child_check, 0xc4), 0);
	struct tm_cb f = {0};
	cr_assert_eq(ferry_memdomain_pull(&rm, &lm, tm_cb_fn, &f), -EFAULT,
		     "page unmapped by the host process");
	cr_assert_eq(f.calls, 0);
}
