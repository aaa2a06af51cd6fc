/*
 * The nvmf bdev splits an I/O larger than one command carries (fake_target.h with a small
 * MDTS): reads and writes into parts of at most MDTS bytes (the controller's bytes and the
 * bytes back checked, more parts than a queue has slots), staged I/O from a mock host domain
 * split from its one staging buffer, a failing part fails the I/O once with its status, a
 * connection drop with parts in flight resubmits the whole I/O (callback exactly once, data
 * intact), Write Zeroes beyond 65536 blocks as several commands.
 */
#include <criterion/criterion.h>
#include <ferry/bdev.h>
#include <ferry/bdev_nvmf.h>
#include <ferry/mock.h>
#include "fake_target.h"
#include "nvmf_test_util.h"
#include "test_mock_util.h"

struct req {
	struct ferry_bdev_io io;
	int calls;
	int status;
};

static void req_cb(struct ferry_bdev_io *io, void *arg)
{
	struct req *r = arg;
	r->calls++;
	r->status = io->status;
}

static int submit(struct ferry_bdev *b, struct req *r, enum ferry_bdev_io_type type, uint64_t lba,
		  uint64_t n, const struct ferry_mem *mem)
{
	memset(r, 0, sizeof(*r));
	r->io.type = type;
	r->io.offset_blocks = lba;
	r->io.num_blocks = n;
	if (mem)
		r->io.mem = *mem;
	r->io.cb = req_cb;
	r->io.cb_arg = r;
	return ferry_bdev_submit(b, &r->io);
}

static void wait_reqs(struct ferry_bdev *b, struct req *r, int n)
{
	uint64_t end = tm_now_ns() + 15000000000ull;
	for (;;) {
		int left = 0;
		for (int i = 0; i < n; i++)
			left += !r[i].calls;
		if (!left)
			break;
		cr_assert(tm_now_ns() < end, "%d I/Os did not complete within 15 s", left);
		for (int i = 0; i < n; i++)
			if (!r[i].calls)
				ferry_bdev_io_poll(&r[i].io); /* the domain of a staged I/O too */
		ferry_bdev_poll(b, 64);
	}
	/* a late second completion would show up in these polls */
	for (int i = 0; i < 200; i++)
		ferry_bdev_poll(b, 64);
	for (int i = 0; i < n; i++)
		cr_assert_eq(r[i].calls, 1, "I/O %d completed %d times", i, r[i].calls);
}

static int run(struct ferry_bdev *b, enum ferry_bdev_io_type type, uint64_t lba, uint64_t n,
	       const struct ferry_mem *mem, struct req *out)
{
	struct req r;
	int rc = submit(b, &r, type, lba, n, mem);
	if (rc)
		return rc;
	wait_reqs(b, &r, 1);
	if (out)
		*out = r;
	return r.status;
}

static struct ferry_bdev *connect_to(struct fake_target *t, const char *name, uint16_t qd,
				     uint16_t nq, uint32_t retries)
{
	struct ferry_bdev_nvmf_opts o = {0};
	o.size = sizeof(o);
	o.name = name;
	o.addr = t->addr;
	o.subnqn = "nqn.2026-01.io.ferry:split";
	o.ddgst = 1;
	o.retry_count = retries;
	o.reconnect_delay_ms = 5;
	o.connect_timeout_ms = 2000;
	o.queue_depth = qd;
	o.num_io_queues = nq;
	struct ferry_bdev *b = NULL;
	int rc = ferry_bdev_nvmf_create(&o, &b);
	cr_assert_eq(rc, 0, "create: %s (%s)", ferry_strerror(rc), ferry_last_error());
	return b;
}



#define KB100 (100u * 1024)

/* 100 KiB (200 blocks) in three uneven segments: 13 parts of 8 KiB on queues of 2 slots. */
Test(bdev_nvmf_split, write_read_parts)
{
	struct fake_target t;
	ft_defaults(&t);
	t.mdts = 1; /* 8 KiB */
	t.c2h_chunk = 3000;
	cr_assert_eq(ft_start(&t), 0);
	struct ferry_bdev *b = connect_to(&t, "nvmf_split", 2, 2, 0);
	static uint8_t w[KB100], r[KB100];
	fill(w, sizeof(w), 9);
	struct iovec wv[3] = {{w, 1000}, {w + 1000, 60000}, {w + 61000, KB100 - 61000}};
	struct ferry_mem wm = {.iov = wv, .iovcnt = 3};
	cr_assert_eq(run(b, FERRY_BDEV_IO_WRITE, 77, 200, &wm, NULL), 0, "%s", ferry_last_error());
	cr_assert_eq(memcmp(t.storage + 77 * 512, w, KB100), 0, "the controller holds the bytes");
	cr_assert_eq(atomic_load(&t.data_cmds), 13, "ceil(100 KiB / 8 KiB) commands");
	cr_assert_eq(atomic_load(&t.max_data_len), 8192, "no command beyond MDTS");
	struct iovec rv[2] = {{r, 8191}, {r + 8191, KB100 - 8191}};
	struct ferry_mem rm = {.iov = rv, .iovcnt = 2};
	cr_assert_eq(run(b, FERRY_BDEV_IO_READ, 77, 200, &rm, NULL), 0, "%s", ferry_last_error());
	cr_assert_eq(memcmp(r, w, KB100), 0, "the bytes come back");
	cr_assert_eq(atomic_load(&t.data_cmds), 26);
	/* compare, split: equal, then one differing byte in the 9th part */
	cr_assert_eq(run(b, FERRY_BDEV_IO_COMPARE, 77, 200, &wm, NULL), 0);
	w[8 * 8192 + 5] ^= 1;
	struct req cr;
	cr_assert_eq(run(b, FERRY_BDEV_IO_COMPARE, 77, 200, &wm, &cr), -EILSEQ);
	cr_assert_eq(cr.io.error, FERRY_BDEV_ERR_MISCOMPARE);
	cr_assert_eq(cr.io.error_block, 77 + 8 * 16, "the failing part's LBA");
	w[8 * 8192 + 5] ^= 1;

	/* four split I/Os at once on 2 x 2 slots: no deadlock, every byte right */
	static uint8_t ws[4][KB100], rs[4][KB100];
	struct iovec v[4];
	struct req q[4];
	for (int i = 0; i < 4; i++) {
		fill(ws[i], KB100, 100 + (uint32_t)i);
		v[i] = (struct iovec){ws[i], KB100};
		struct ferry_mem m = {.iov = &v[i], .iovcnt = 1};
		cr_assert_eq(submit(b, &q[i], FERRY_BDEV_IO_WRITE, 200u * (uint32_t)i + 1000, 200,
				    &m),
			     0);
	}
	wait_reqs(b, q, 4);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(q[i].status, 0);
		v[i] = (struct iovec){rs[i], KB100};
		struct ferry_mem m = {.iov = &v[i], .iovcnt = 1};
		cr_assert_eq(submit(b, &q[i], FERRY_BDEV_IO_READ, 200u * (uint32_t)i + 1000, 200,
				    &m),
			     0);
	}
	wait_reqs(b, q, 4);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(q[i].status, 0);
		cr_assert_eq(memcmp(rs[i], ws[i], KB100), 0, "I/O %d", i);
		cr_assert_eq(memcmp(t.storage + (200u * (uint32_t)i + 1000) * 512, ws[i], KB100),
			     0);
	}
	struct ferry_bdev_nvmf_stats s = stats_of(b);
	cr_assert_eq(s.split_ios, 12);
	cr_assert_eq(s.bytes_written, 5ull * KB100);
	cr_assert_eq(s.bytes_read, 5ull * KB100);
	cr_assert_eq(s.io_errors, 1, "only the miscompare");
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	ft_stop(&t);
}

/* Host memory behind a PCI function: staged through one buffer, sent as 16 KiB parts. */
Test(bdev_nvmf_split, staged_host_memory)
{
	struct ferry_device *dev = tm_open("host_mem=1M,functions=nvme:nic");
	struct ferry_mock_host *h = tm_host(dev);
	struct ferry_memdomain *dom = tm_domain(dev, "nvme");
	tm_map(h, "nvme", 16, 64, 64, FERRY_MOCK_IOMMU_READ | FERRY_MOCK_IOMMU_WRITE);
	uint8_t *host = ferry_mock_host_ptr(h, 64 * TM_PAGE, 64 * TM_PAGE);
	cr_assert_not_null(host);
	fill(host, KB100, 33);
	memset(host + 32 * TM_PAGE, 0, KB100);

	struct fake_target t;
	ft_defaults(&t);
	t.mdts = 2; /* 16 KiB */
	t.ioccsz = 4;
	t.r2t_split = 5120;
	t.blocks = 4096;
	cr_assert_eq(ft_start(&t), 0);
	struct ferry_bdev *b = connect_to(&t, "nvmf_split_host", 4, 1, 0);
	struct iovec iov[2] = {{(void *)(uintptr_t)(16 * TM_PAGE), 7 * TM_PAGE},
			       {(void *)(uintptr_t)(23 * TM_PAGE), KB100 - 7 * TM_PAGE}};
	struct ferry_mem m = {.domain = dom, .iov = iov, .iovcnt = 2};
	cr_assert_eq(run(b, FERRY_BDEV_IO_WRITE, 300, 200, &m, NULL), 0, "%s", ferry_last_error());
	cr_assert_eq(memcmp(t.storage + 300 * 512, host, KB100), 0, "controller got host bytes");
	cr_assert_eq(atomic_load(&t.data_cmds), 7);
	cr_assert_eq(atomic_load(&t.max_data_len), 16384);
	struct iovec riov = {(void *)(uintptr_t)(48 * TM_PAGE), KB100};
	struct ferry_mem rm = {.domain = dom, .iov = &riov, .iovcnt = 1};
	cr_assert_eq(run(b, FERRY_BDEV_IO_READ, 300, 200, &rm, NULL), 0, "%s", ferry_last_error());
	cr_assert_eq(memcmp(host + 32 * TM_PAGE, host, KB100), 0, "host got the bytes back");
	struct ferry_bdev_nvmf_stats s = stats_of(b);
	cr_assert_eq(s.staged_ios, 2);
	cr_assert_eq(s.split_ios, 2);

	/* staged beyond one staging buffer (1 MiB): refused, nothing sent */
	static struct iovec many[17];
	static uint8_t big[17 * 65536];
	for (int i = 0; i < 17; i++)
		many[i] = (struct iovec){big + (size_t)i * 65536, i < 16 ? 65536 : 512};
	struct ferry_mem bm = {.iov = many, .iovcnt = 17};
	int cmds = atomic_load(&t.io_cmds);
	struct req r;
	cr_assert_eq(submit(b, &r, FERRY_BDEV_IO_WRITE, 0, 2049, &bm), -EINVAL);
	cr_assert(strstr(ferry_last_error(), "staged") != NULL, "%s", ferry_last_error());
	cr_assert_eq(atomic_load(&t.io_cmds), cmds);
	/* 17 segments within 1 MiB: staged, split, written */
	for (int i = 0; i < 17; i++)
		many[i].iov_len = 4096;
	for (int i = 0; i < 17; i++)
		fill(big + (size_t)i * 65536, 4096, 50 + (uint32_t)i);
	cr_assert_eq(run(b, FERRY_BDEV_IO_WRITE, 0, 136, &bm, NULL), 0, "%s", ferry_last_error());
	for (int i = 0; i < 17; i++)
		cr_assert_eq(memcmp(t.storage + (size_t)i * 4096, big + (size_t)i * 65536, 4096), 0,
			     "segment %d", i);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	ft_stop(&t);
	ferry_mock_host_close(h);
	ferry_device_close(dev);
}

/* The 3rd command of a split write (and of a split read) fails with a media error: the I/O
 * fails once with that status, reported at that part's LBA; the bdev carries on. */
Test(bdev_nvmf_split, part_status_fails_once)
{
	struct fake_target t;
	ft_defaults(&t);
	t.mdts = 2;
	t.fault = FAULT_STATUS;
	t.fault_n = 3;
	t.fault_once = 1;
	t.fault_status = FERRY_NVME_STATUS(FERRY_NVME_SCT_MEDIA, FERRY_NVME_SC_WRITE_FAULT);
	cr_assert_eq(ft_start(&t), 0);
	struct ferry_bdev *b = connect_to(&t, "nvmf_split_fail", 8, 1, 3);
	static uint8_t w[KB100], r[KB100];
	fill(w, sizeof(w), 4);
	struct iovec wv = {w, KB100};
	struct ferry_mem wm = {.iov = &wv, .iovcnt = 1};
	struct req q;
	cr_assert_eq(run(b, FERRY_BDEV_IO_WRITE, 10, 200, &wm, &q), -EIO);
	cr_assert_eq(q.io.error, FERRY_BDEV_ERR_WRITE);
	cr_assert_eq(q.io.error_block, 10 + 2 * 32);
	cr_assert_eq(atomic_load(&t.fault_fired), 1);
	struct ferry_bdev_nvmf_stats s = stats_of(b);
	cr_assert_eq(s.io_errors, 1);
	cr_assert_eq(s.retries, 0, "an NVMe status is not retried");
	cr_assert_eq(s.connection_losses, 0);
	/* a read whose 2nd part fails */
	t.fault_status = FERRY_NVME_STATUS(FERRY_NVME_SCT_MEDIA, FERRY_NVME_SC_UNRECOVERED_READ);
	t.fault_n = atomic_load(&t.io_cmds) + 2;
	atomic_store(&t.fault_fired, 0);
	struct iovec rv = {r, KB100};
	struct ferry_mem rm = {.iov = &rv, .iovcnt = 1};
	cr_assert_eq(run(b, FERRY_BDEV_IO_READ, 10, 200, &rm, &q), -EIO);
	cr_assert_eq(q.io.error, FERRY_BDEV_ERR_READ);
	cr_assert_eq(q.io.error_block, 10 + 32);
	/* afterwards the same I/Os succeed */
	cr_assert_eq(run(b, FERRY_BDEV_IO_WRITE, 10, 200, &wm, NULL), 0);
	memset(r, 0, sizeof(r));
	cr_assert_eq(run(b, FERRY_BDEV_IO_READ, 10, 200, &rm, NULL), 0);
	cr_assert_eq(memcmp(r, w, KB100), 0);
	s = stats_of(b);
	cr_assert_eq(s.io_errors, 2);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	ft_stop(&t);
}

/* The controller drops every connection when the 4th command of a split write arrives (parts
 * in flight on two queues, more waiting for slots): the write is resubmitted whole, completes
 * once, and every byte is right; the same for a read. */
static void drop_case(int read)
{
	struct fake_target t;
	ft_defaults(&t);
	t.mdts = 1;
	t.fault = FAULT_DROP;
	t.fault_n = read ? 17 : 4;
	t.fault_once = 1;
	cr_assert_eq(ft_start(&t), 0);
	struct ferry_bdev *b = connect_to(&t, "nvmf_split_drop", 2, 2, 2);
	static uint8_t w[KB100], r[KB100];
	fill(w, sizeof(w), 21);
	struct iovec wv = {w, KB100};
	struct ferry_mem wm = {.iov = &wv, .iovcnt = 1};
	struct iovec rv = {r, KB100};
	struct ferry_mem rm = {.iov = &rv, .iovcnt = 1};
	cr_assert_eq(run(b, FERRY_BDEV_IO_WRITE, 500, 200, &wm, NULL), 0, "%s", ferry_last_error());
	memset(r, 0, sizeof(r));
	cr_assert_eq(run(b, FERRY_BDEV_IO_READ, 500, 200, &rm, NULL), 0, "%s", ferry_last_error());
	cr_assert_eq(atomic_load(&t.fault_fired), 1);
	cr_assert_eq(memcmp(t.storage + 500 * 512, w, KB100), 0);
	cr_assert_eq(memcmp(r, w, KB100), 0);
	struct ferry_bdev_nvmf_stats s = stats_of(b);
	cr_assert_geq(s.connection_losses, 1);
	cr_assert_eq(s.retries, 1, "one resubmission of the one I/O in flight");
	cr_assert_eq(s.io_errors, 0);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	ft_stop(&t);
}

Test(bdev_nvmf_split, drop_write_in_flight)
{
	drop_case(0);
}
Test(bdev_nvmf_split, drop_read_in_flight)
{
	drop_case(1);
}

/* Without retries the dropped split I/O fails once with -EIO. */
Test(bdev_nvmf_split, drop_no_retry_fails_once)
{
	struct fake_target t;
	ft_defaults(&t);
	t.mdts = 1;
	t.fault = FAULT_DROP;
	t.fault_n = 5;
	t.fault_once = 1;
	cr_assert_eq(ft_start(&t), 0);
	struct ferry_bdev *b = connect_to(&t, "nvmf_split_drop0", 2, 2, 0);
	static uint8_t w[KB100];
	fill(w, sizeof(w), 22);
	struct iovec wv = {w, KB100};
	struct ferry_mem wm = {.iov = &wv, .iovcnt = 1};
	cr_assert_eq(run(b, FERRY_BDEV_IO_WRITE, 0, 200, &wm, NULL), -EIO);
	struct ferry_bdev_nvmf_stats s = stats_of(b);
	cr_assert_eq(s.io_errors, 1);
	cr_assert_eq(s.retries, 0);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	ft_stop(&t);
}

/* Write Zeroes of 200000 blocks: 4 commands of at most 65536 blocks, zeroes exactly there. */
Test(bdev_nvmf_split, write_zeroes_200000)
{
	struct fake_target t;
	ft_defaults(&t);
	t.blocks = 262144;
	cr_assert_eq(ft_start(&t), 0);
	struct ferry_bdev *b = connect_to(&t, "nvmf_split_wz", 2, 1, 0);
	const uint64_t marks[] = {9, 10, 65545, 65546, 131081, 196617, 200009, 200010};
	for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++)
		memset(t.storage + marks[i] * 512, 0xa5, 512);
	cr_assert_eq(run(b, FERRY_BDEV_IO_WRITE_ZEROES, 10, 200000, NULL, NULL), 0, "%s",
		     ferry_last_error());
	cr_assert_eq(atomic_load(&t.wz_cmds), 4);
	cr_assert_eq(atomic_load(&t.max_wz_blocks), 65536);
	for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
		int inside = marks[i] >= 10 && marks[i] < 200010;
		cr_assert_eq(t.storage[marks[i] * 512 + 100], inside ? 0 : 0xa5, "block %llu",
			     (unsigned long long)marks[i]);
	}
	cr_assert_eq(stats_of(b).split_ios, 1);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	ft_stop(&t);
}
