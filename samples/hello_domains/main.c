/*
 * hello_domains: the smallest Ferry program.
 *
 * The firmware half uses only the public SDK (ferry/ferry.h): it opens the "mock" backend by
 * name, lists the memory domains, pulls host data through the DMA engine (with
 * ferry_memdomain_pull and with a ferry_xfer batch), pushes data back, translates an address
 * from the NVMe function's view to the NIC function's, and shows refused accesses.
 * The host half is a forked process that plays the host OS with ferry/mock.h: it maps the
 * shared host memory, programs both functions' IOMMU tables (the source documents' example:
 * IOVA page 16 is host page 64 for the NVMe function and host page 1024 for the NIC function)
 * and writes the data the firmware then reads.
 * Exits 0 only if every step behaved as expected, bytes included.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <ferry/ferry.h>
#include <ferry/mock.h> /* the simulated host process only */

#define PAGE 4096u
#define IOVA(page) ((uint64_t)(page)*PAGE)
#define NVME_IOVA 16u /* nvme: IOVA pages 16-17 -> host pages 64-65, read/write */
#define NVME_HOST 64u
#define NIC_IOVA 16u /* nic: IOVA page 16 -> host page 1024, read-only */
#define NIC_HOST 1024u
#define NIC_SHARED 80u /* nic: IOVA pages 80-81 -> host pages 64-65 (the NVMe pages) */

static int failures;

static void check(int ok, const char *what)
{
	printf("  [%s] %s\n", ok ? " ok " : "FAIL", what);
	if (!ok)
		failures++;
}

static uint8_t host_byte(uint64_t host_off)
{
	return (uint8_t)(host_off * 7u + host_off / 251u + 3u);
}

/* ---- the host process: plays the host OS ---- */

static int host_main(int fd)
{
	struct ferry_mock_host *h;
	if (ferry_mock_host_open(fd, &h) != 0)
		return 1;
	int nvme = ferry_mock_host_fn_lookup(h, "nvme"), nic = ferry_mock_host_fn_lookup(h, "nic");
	const uint32_t rw = FERRY_MOCK_IOMMU_READ | FERRY_MOCK_IOMMU_WRITE;
	int rc = nvme < 0 || nic < 0;
	rc = rc || ferry_mock_host_iommu_map(h, (unsigned)nvme, IOVA(NVME_IOVA), IOVA(NVME_HOST),
					     2 * PAGE, rw);
	rc = rc || ferry_mock_host_iommu_map(h, (unsigned)nic, IOVA(NIC_IOVA), IOVA(NIC_HOST), PAGE,
					     FERRY_MOCK_IOMMU_READ);
	rc = rc || ferry_mock_host_iommu_map(h, (unsigned)nic, IOVA(NIC_SHARED), IOVA(NVME_HOST),
					     2 * PAGE, rw);
	uint8_t *p = ferry_mock_host_ptr(h, IOVA(NVME_HOST), 2 * PAGE);
	uint8_t *q = ferry_mock_host_ptr(h, IOVA(NIC_HOST), PAGE);
	if (!rc && p && q) {
		for (uint64_t i = 0; i < 2 * PAGE; i++)
			p[i] = host_byte(IOVA(NVME_HOST) + i);
		for (uint64_t i = 0; i < PAGE; i++)
			q[i] = host_byte(IOVA(NIC_HOST) + i);
	}
	printf("host  (pid %d): mapped nvme IOVA page %u -> host page %u, nic IOVA page %u -> host "
	       "page %u (read-only), nic IOVA page %u -> host page %u; wrote the pages\n",
	       (int)getpid(), NVME_IOVA, NVME_HOST, NIC_IOVA, NIC_HOST, NIC_SHARED, NVME_HOST);
	fflush(stdout);
	ferry_mock_host_close(h);
	return rc || !p || !q;
}

/* ---- the firmware ---- */

struct done {
	int calls;
	int status;
};

static void on_done(void *arg, int status)
{
	struct done *d = arg;
	d->calls++;
	d->status = status;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Polls @p domain until the operation completed (5 s at most). */
static int wait_domain(struct ferry_memdomain *domain, struct done *d)
{
	uint64_t end = now_ms() + 5000;
	while (d->calls == 0 && now_ms() < end)
		ferry_memdomain_poll(domain, 16);
	return d->calls == 1 ? d->status : -ETIMEDOUT;
}

/* Polls @p chan until @p n transfers came back (5 s at most). */
static int wait_chan(struct ferry_dma_chan *chan, uint32_t n)
{
	struct ferry_xfer *done[8];
	uint32_t got = 0;
	uint64_t end = now_ms() + 5000;
	while (got < n && now_ms() < end) {
		int rc = ferry_dma_poll(chan, done, 8);
		if (rc < 0)
			return rc;
		got += (uint32_t)rc;
	}
	return got == n ? 0 : -ETIMEDOUT;
}

static int expect_host(const uint8_t *buf, uint64_t host_off, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i] != host_byte(host_off + i))
			return 0;
	return 1;
}

static void list_domains(void)
{
	printf("memory domains:\n");
	for (struct ferry_memdomain *d = ferry_memdomain_first(FERRY_MEMDOMAIN_ANY); d;
	     d = ferry_memdomain_next(d, FERRY_MEMDOMAIN_ANY))
		printf("  %-12s type %d%s\n", ferry_memdomain_get_name(d),
		       (int)ferry_memdomain_get_type(d),
		       ferry_memdomain_get_type(d) == FERRY_MEMDOMAIN_PCIE
			       ? " (host memory seen through one PCI function)"
			       : " (local SoC memory)");
}

static int run_host_process(struct ferry_device *dev)
{
	int fd;
	if (ferry_mock_host_fd(dev, &fd) != 0)
		return -1;
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0)
		_exit(host_main(fd));
	int st;
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void step_pull(struct ferry_memdomain *nvme)
{
	static uint8_t buf[2 * PAGE];
	struct iovec r = {(void *)(uintptr_t)IOVA(NVME_IOVA), sizeof(buf)}, l = {buf, sizeof(buf)};
	struct ferry_mem src = {.domain = nvme, .iov = &r, .iovcnt = 1};
	struct ferry_mem dst = {.domain = NULL, .iov = &l, .iovcnt = 1};
	struct done d = {0};
	printf("\n1. pull: 8 KiB at nvme IOVA 0x%llx into local memory (ferry_memdomain_pull)\n",
	       (unsigned long long)IOVA(NVME_IOVA));
	int rc = ferry_memdomain_pull(&src, &dst, on_done, &d);
	check(rc == 0 && wait_domain(nvme, &d) == 0, "pull completed through the DMA engine");
	check(expect_host(buf, IOVA(NVME_HOST), sizeof(buf)),
	      "bytes are those the host wrote at host pages 64-65");
}

static void step_xfer(struct ferry_device *dev, struct ferry_memdomain *nvme,
		      struct ferry_memdomain *nic)
{
	static uint8_t a[600], b[400], c[64];
	struct iovec ra = {(void *)(uintptr_t)(IOVA(NVME_IOVA) + 100), 1000};
	struct iovec la[2] = {{a, sizeof(a)}, {b, sizeof(b)}};
	struct iovec rc_ = {(void *)(uintptr_t)IOVA(NIC_IOVA), sizeof(c)}, lc = {c, sizeof(c)};
	struct ferry_xfer x1 = {.src = {.domain = nvme, .iov = &ra, .iovcnt = 1},
				.dst = {.domain = NULL, .iov = la, .iovcnt = 2},
				.len = 1000};
	struct ferry_xfer x2 = {.src = {.domain = nic, .iov = &rc_, .iovcnt = 1},
				.dst = {.domain = NULL, .iov = &lc, .iovcnt = 1},
				.len = sizeof(c)};
	struct ferry_xfer *batch[2] = {&x1, &x2};
	struct ferry_dma_chan *chan;
	struct ferry_dma_stats st;
	printf("\n2. transfer batch on a DMA channel: nvme IOVA 0x%llx (1000 bytes, scattered into "
	       "600 + 400) and nic IOVA 0x%llx (64 bytes)\n",
	       (unsigned long long)(IOVA(NVME_IOVA) + 100), (unsigned long long)IOVA(NIC_IOVA));
	if (ferry_dma_chan_create(dev, NULL, &chan) != 0) {
		check(0, "channel opened");
		return;
	}
	check(ferry_dma_submit(chan, batch, 2) == 2 && wait_chan(chan, 2) == 0,
	      "both transfers submitted in one batch and completed");
	check(x1.status == FERRY_XFER_SUCCESS && x2.status == FERRY_XFER_SUCCESS,
	      "status success for both");
	check(expect_host(a, IOVA(NVME_HOST) + 100, sizeof(a)) &&
		      expect_host(b, IOVA(NVME_HOST) + 100 + sizeof(a), sizeof(b)),
	      "scattered bytes match host pages 64-65");
	check(expect_host(c, IOVA(NIC_HOST), sizeof(c)),
	      "same IOVA page 16 through the nic function reads host page 1024, not 64");
	ferry_dma_get_stats(chan, &st);
	printf("     channel counters: submitted %llu, completed %llu, errors %llu, bytes %llu\n",
	       (unsigned long long)st.submitted, (unsigned long long)st.completed,
	       (unsigned long long)st.errors, (unsigned long long)st.bytes);
	check(st.submitted == 2 && st.completed == 2 && st.errors == 0 && st.bytes == 1064,
	      "counters");
	ferry_dma_chan_destroy(chan);
}

static void step_push(struct ferry_memdomain *nvme, struct ferry_memdomain *nic)
{
	static const char msg[] = "hello from the SoC, written through the NIC's view";
	static uint8_t back[sizeof(msg)];
	struct iovec r = {(void *)(uintptr_t)(IOVA(NIC_SHARED) + 32), sizeof(msg)};
	struct iovec l = {(void *)msg, sizeof(msg)};
	struct ferry_mem dst = {.domain = nic, .iov = &r, .iovcnt = 1};
	struct ferry_mem src = {.domain = NULL, .iov = &l, .iovcnt = 1};
	struct done d = {0};
	printf("\n3. push: %zu bytes to nic IOVA 0x%llx (host page 64), read back through the nvme "
	       "view at IOVA 0x%llx\n",
	       sizeof(msg), (unsigned long long)(IOVA(NIC_SHARED) + 32),
	       (unsigned long long)(IOVA(NVME_IOVA) + 32));
	int rc = ferry_memdomain_push(&dst, &src, on_done, &d);
	check(rc == 0 && wait_domain(nic, &d) == 0, "push completed");
	struct iovec r2 = {(void *)(uintptr_t)(IOVA(NVME_IOVA) + 32), sizeof(back)};
	struct iovec l2 = {back, sizeof(back)};
	struct ferry_mem s2 = {.domain = nvme, .iov = &r2, .iovcnt = 1};
	struct ferry_mem d2 = {.domain = NULL, .iov = &l2, .iovcnt = 1};
	struct done e = {0};
	rc = ferry_memdomain_pull(&s2, &d2, on_done, &e);
	check(rc == 0 && wait_domain(nvme, &e) == 0 && memcmp(back, msg, sizeof(msg)) == 0,
	      "the nvme function sees the bytes pushed through the nic function");
	printf("     read back: \"%s\"\n", (const char *)back);
}

static void step_translate(struct ferry_memdomain *nvme, struct ferry_memdomain *nic)
{
	struct iovec in = {(void *)(uintptr_t)(IOVA(NVME_IOVA) + 0x123), 6000}, outv[4];
	struct ferry_mem src = {.domain = nvme, .iov = &in, .iovcnt = 1};
	struct ferry_mem out = {.iov = outv, .iovcnt = 4};
	printf("\n4. translate: nvme IOVA 0x%llx (+6000 bytes, two pages) into the nic view\n",
	       (unsigned long long)(IOVA(NVME_IOVA) + 0x123));
	int rc = ferry_memdomain_translate(&src, nic, &out);
	if (rc == 0)
		for (uint32_t i = 0; i < out.iovcnt; i++)
			printf("     -> %s IOVA 0x%llx, %zu bytes\n",
			       ferry_memdomain_get_name(out.domain),
			       (unsigned long long)(uintptr_t)outv[i].iov_base, outv[i].iov_len);
	check(rc == 0 && out.domain == nic && out.iovcnt == 1 &&
		      (uintptr_t)outv[0].iov_base == IOVA(NIC_SHARED) + 0x123 &&
		      outv[0].iov_len == 6000,
	      "nvme IOVA pages 16-17 are nic IOVA pages 80-81 (both host pages 64-65)");
	struct iovec in2 = {(void *)(uintptr_t)IOVA(NIC_IOVA), 16};
	struct ferry_mem src2 = {.domain = nic, .iov = &in2, .iovcnt = 1};
	out.iovcnt = 4;
	rc = ferry_memdomain_translate(&src2, nvme, &out);
	printf("     nic IOVA 0x%llx -> nvme view: %s\n", (unsigned long long)IOVA(NIC_IOVA),
	       ferry_strerror(rc));
	check(rc == -EFAULT, "host page 1024 has no IOVA in the nvme view: refused (-EFAULT)");
}

static void step_refused(struct ferry_device *dev, struct ferry_memdomain *nvme,
			 struct ferry_memdomain *nic)
{
	static uint8_t buf[PAGE];
	struct done d = {0};
	printf("\n5. refused accesses\n");
	/* a) far outside the IOVA space */
	struct iovec far = {(void *)(uintptr_t)(1ull << 40), 64}, l = {buf, 64};
	struct ferry_mem src = {.domain = nvme, .iov = &far, .iovcnt = 1};
	struct ferry_mem dst = {.domain = NULL, .iov = &l, .iovcnt = 1};
	int rc = ferry_memdomain_pull(&src, &dst, on_done, &d);
	printf("     pull from nvme IOVA 0x%llx: %s\n", (unsigned long long)(1ull << 40),
	       ferry_strerror(rc));
	check(rc == -EFAULT && d.calls == 0, "out-of-range IOVA refused, callback not called");
	/* b) a transfer running from a mapped page into an unmapped one */
	memset(buf, 0xee, sizeof(buf));
	struct iovec cross = {(void *)(uintptr_t)(IOVA(NVME_IOVA + 2) - 100), 200};
	struct iovec lb = {buf, 200};
	struct ferry_xfer x = {.src = {.domain = nvme, .iov = &cross, .iovcnt = 1},
			       .dst = {.domain = NULL, .iov = &lb, .iovcnt = 1},
			       .len = 200};
	struct ferry_xfer *one = &x;
	struct ferry_dma_chan *chan;
	int ok = ferry_dma_chan_create(dev, NULL, &chan) == 0;
	ok = ok && ferry_dma_submit(chan, &one, 1) == 1 && wait_chan(chan, 1) == 0;
	printf("     transfer of 200 bytes from nvme IOVA 0x%llx (runs into unmapped page 18): %s\n",
	       (unsigned long long)(IOVA(NVME_IOVA + 2) - 100),
	       ok ? ferry_xfer_status_str(x.status) : "not run");
	int untouched = 1;
	for (size_t i = 0; i < 200; i++)
		untouched &= buf[i] == 0xee;
	check(ok && x.status == FERRY_XFER_PAGE_FAULT && untouched,
	      "page fault, and not one byte of the destination written");
	if (chan)
		ferry_dma_chan_destroy(chan);
	/* c) a write to a page the host mapped read-only */
	struct iovec ro = {(void *)(uintptr_t)IOVA(NIC_IOVA), 64};
	struct ferry_mem rdst = {.domain = nic, .iov = &ro, .iovcnt = 1};
	struct ferry_mem lsrc = {.domain = NULL, .iov = &l, .iovcnt = 1};
	rc = ferry_memdomain_push(&rdst, &lsrc, on_done, &d);
	printf("     push to nic IOVA 0x%llx (read-only for the device): %s\n",
	       (unsigned long long)IOVA(NIC_IOVA), ferry_strerror(rc));
	check(rc == -EFAULT && d.calls == 0, "write to a read-only page refused");
}

/* Ferry explains every refusal in its log: show those lines inline, under the step. */
static void log_inline(enum ferry_log_level level, const char *component, const char *fmt,
		       va_list ap)
{
	printf("     log (%s): ", component);
	vprintf(fmt, ap);
	printf("\n");
}

int main(void)
{
	struct ferry_device *dev;
	char name[80];
	setvbuf(stdout, NULL, _IOLBF, 0);
	ferry_log_set_handler(log_inline);
	printf("Ferry %s - hello_domains\nbackends:", ferry_version());
	for (unsigned int i = 0; ferry_backend_name(i); i++)
		printf(" %s", ferry_backend_name(i));
	printf("\n");
	int rc = ferry_device_open("mock", "host_mem=16M,functions=nvme:nic", &dev);
	if (rc) {
		fprintf(stderr, "cannot open the mock device: %s (%s)\n", ferry_strerror(rc),
			ferry_last_error());
		return 1;
	}
	printf("opened device %s (backend %s)\n", ferry_device_get_name(dev),
	       ferry_device_get_backend_name(dev));
	list_domains();
	snprintf(name, sizeof(name), "%s.nvme", ferry_device_get_name(dev));
	struct ferry_memdomain *nvme = ferry_memdomain_lookup(name);
	snprintf(name, sizeof(name), "%s.nic", ferry_device_get_name(dev));
	struct ferry_memdomain *nic = ferry_memdomain_lookup(name);
	check(nvme && nic, "found the nvme and nic function domains by name");
	if (!nvme || !nic) {
		ferry_device_close(dev);
		return 1;
	}
	printf("\n0. the host process programs the IOMMU and writes host memory\n");
	check(run_host_process(dev) == 0, "host process done");

	step_pull(nvme);
	step_xfer(dev, nvme, nic);
	step_push(nvme, nic);
	step_translate(nvme, nic);
	step_refused(dev, nvme, nic);

	ferry_device_close(dev);
	printf("\n%s: %d failure(s)\n", failures ? "FAILED" : "all steps behaved as expected",
	       failures);
	return failures ? 1 : 0;
}
