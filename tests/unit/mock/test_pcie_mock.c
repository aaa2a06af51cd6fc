/*
 * The mock backend's PCIe endpoint class (ferry/hal/pcie_ep.h) and its host side
 * (ferry/mock_pcie.h): query/attach/detach rules, BAR0 reads and writes delivered in order to
 * the handlers (doorbells to the doorbell handler), value masking, accesses refused on the
 * host side and malformed ring entries dropped on the device side, unclaimed functions,
 * timeouts with a firmware that does not poll (abandoned reads do not wedge the ring), a full
 * ring, MSI-X counters and waits, detach, several host threads, and a host in another process.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <ferry/hal/hal.h>
#include <ferry/mock_pcie.h>
#include "mock/mock_internal.h"
#include "test_mock_util.h"

/* ---- a fake register file: records what the handlers saw -------------------------------- */

#define REC_MAX 4096

struct rec {
	char kind; /* 'r' read, 'w' write, 'd' doorbell */
	uint32_t bar;
	uint64_t off;
	uint32_t size;
	uint64_t val;
};

struct fw {
	struct rec rec[REC_MAX];
	uint32_t n;
	int fail_reads; /* bar_read returns -EIO */
};

static int fw_read(void *ctx, uint32_t bar, uint64_t off, uint32_t size, uint64_t *val)
{
	struct fw *f = ctx;
	if (f->n < REC_MAX)
		f->rec[f->n++] = (struct rec){'r', bar, off, size, 0};
	if (f->fail_reads)
		return -EIO;
	*val = 0xa5a5000000000000ull | (off << 8) | size;
	return 0;
}

static int fw_write(void *ctx, uint32_t bar, uint64_t off, uint32_t size, uint64_t val)
{
	struct fw *f = ctx;
	if (f->n < REC_MAX)
		f->rec[f->n++] = (struct rec){'w', bar, off, size, val};
	return 0;
}

static void fw_doorbell(void *ctx, uint32_t index, uint32_t value)
{
	struct fw *f = ctx;
	if (f->n < REC_MAX)
		f->rec[f->n++] = (struct rec){'d', 0, index, 4, value};
}

static const struct ferry_hal_pcie_ep_handlers fw_handlers = {fw_read, fw_write, fw_doorbell};

static struct ferry_device *dev;
static const struct ferry_hal_pcie_ep_ops *ep;
static struct ferry_mock_pcie_host *ph;
static struct fw fwrec;

static void setup(void)
{
	dev = tm_open("host_mem=1M,iova_size=1M");
	ep = ferry_hal_dev_get_backend(dev)->pcie_ep;
	cr_assert_not_null(ep, "the mock has a PCIe endpoint class");
	int fd = -1;
	cr_assert_eq(ferry_mock_pcie_fd(dev, &fd), 0);
	cr_assert_eq(ferry_mock_pcie_host_open(fd, &ph), 0);
	memset(&fwrec, 0, sizeof(fwrec));
}

static void teardown(void)
{
	ep->detach(dev, 0);
	ep->detach(dev, 1);
	ferry_mock_pcie_host_close(ph);
	ferry_device_close(dev);
}

static void attach_fw(uint32_t fn)
{
	struct ferry_hal_pcie_ep_attach_opts o = {.size = sizeof(o),
						  .doorbell_offset = 0x1000,
						  .doorbell_count = 16,
						  .handlers = &fw_handlers,
						  .ctx = &fwrec};
	cr_assert_eq(ep->attach(dev, fn, &o), 0);
}

static struct ferry_mock_pcie_stats stats(uint32_t fn)
{
	struct ferry_mock_pcie_stats s = {.size = sizeof(s)};
	cr_assert_eq(ferry_mock_pcie_get_stats(dev, fn, &s), 0);
	return s;
}

/* A host thread running a script of accesses while the test thread polls the device. */
struct host_job {
	void (*run)(struct host_job *j);
	volatile int done;
	int rc[64];
	uint64_t val[64];
	int tid;
};

static void *host_thread(void *arg)
{
	struct host_job *j = arg;
	j->run(j);
	__atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Polls the device until every job is done (10 s at most). */
static void serve(struct host_job *jobs, int n)
{
	pthread_t th[16];
	for (int i = 0; i < n; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, host_thread, &jobs[i]), 0);
	uint64_t end = tm_now_ns() + 10000000000ull;
	for (;;) {
		int all = 1;
		for (int i = 0; i < n; i++)
			all &= __atomic_load_n(&jobs[i].done, __ATOMIC_ACQUIRE);
		if (all)
			break;
		cr_assert(tm_now_ns() < end, "host threads did not finish");
		cr_assert_geq(ep->poll(dev, 64), 0);
	}
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	ep->poll(dev, 0); /* what was posted last */
}

TestSuite(pcie_mock, .init = setup, .fini = teardown);

Test(pcie_mock, query_attach_rules)
{
	struct ferry_hal_pcie_ep_info info;
	cr_assert_eq(ep->query(dev, &info), 0);
	cr_assert_eq(info.num_functions, 2);
	cr_assert_eq(info.bar0_size, FERRY_MOCK_PCIE_BAR0_SIZE);
	cr_assert_eq(info.max_msix, FERRY_MOCK_PCIE_MAX_MSIX);
	cr_assert_eq(ferry_device_get_classes(dev) & FERRY_DEVICE_CLASS_PCIE_EP,
		     FERRY_DEVICE_CLASS_PCIE_EP);

	ferry_log_set_handler(tm_quiet_log);
	struct ferry_hal_pcie_ep_attach_opts o = {.size = sizeof(o), .handlers = &fw_handlers};
	cr_assert_eq(ep->attach(dev, 2, &o), -EINVAL, "function out of range");
	cr_assert_eq(ep->attach(dev, 0, NULL), -EINVAL);
	struct ferry_hal_pcie_ep_handlers noread = {NULL, fw_write, NULL};
	o.handlers = &noread;
	cr_assert_eq(ep->attach(dev, 0, &o), -EINVAL, "bar_read is required");
	o.handlers = &fw_handlers;
	o.doorbell_offset = 0x1002;
	o.doorbell_count = 1;
	cr_assert_eq(ep->attach(dev, 0, &o), -EINVAL, "misaligned doorbells");
	o.doorbell_offset = 0x1000;
	o.doorbell_count = (FERRY_MOCK_PCIE_BAR0_SIZE - 0x1000) / 4 + 1;
	cr_assert_eq(ep->attach(dev, 0, &o), -EINVAL, "doorbells past BAR0");
	o.size = 4;
	o.doorbell_count = 1;
	cr_assert_eq(ep->attach(dev, 0, &o), -EINVAL, "short options");
	o.size = sizeof(o);
	cr_assert_eq(ep->msix_raise(dev, 0, 0), -ENODEV, "not attached yet");
	cr_assert_eq(ep->attach(dev, 0, &o), 0);
	cr_assert_eq(ep->attach(dev, 0, &o), -EBUSY);
	cr_assert_eq(ferry_mock_pcie_host_attached(ph, 0), 1);
	cr_assert_eq(ferry_mock_pcie_host_attached(ph, 1), 0);
	cr_assert_eq(ep->msix_raise(dev, 0, FERRY_MOCK_PCIE_MAX_MSIX), -EINVAL);
	cr_assert_eq(ep->msix_raise(dev, 2, 0), -EINVAL);
	ferry_log_set_handler(NULL);

	cr_assert_eq(ep->get_domain(dev, 0), tm_domain(dev, "nvme"));
	cr_assert_eq(ep->get_domain(dev, 1), tm_domain(dev, "nic"));
	ferry_log_set_handler(tm_quiet_log);
	cr_assert_null(ep->get_domain(dev, 2));
	ferry_log_set_handler(NULL);
	ep->detach(dev, 0);
	cr_assert_eq(ferry_mock_pcie_host_attached(ph, 0), 0);
	ep->detach(dev, 0); /* idempotent */
	cr_assert_eq(ep->attach(dev, 0, &o), 0, "attach again after detach");
	ep->detach(dev, 0);
	cr_assert_eq(ferry_mock_pcie_host_fn_count(ph), 2);
}

static void script_basic(struct host_job *j)
{
	j->rc[0] = ferry_mock_pcie_mmio_write(ph, 0, 0x14, 4, 0x00460001);
	j->rc[1] = ferry_mock_pcie_mmio_write(ph, 0, 0x28, 8, 0x1122334455667788ull);
	j->rc[2] = ferry_mock_pcie_mmio_write(ph, 0, 0x1008, 4, 7);       /* doorbell 2 */
	j->rc[3] = ferry_mock_pcie_mmio_write(ph, 0, 0x103c, 4, 9);       /* doorbell 15 */
	j->rc[4] = ferry_mock_pcie_mmio_write(ph, 0, 0x1040, 4, 10);      /* past the doorbells */
	j->rc[5] = ferry_mock_pcie_mmio_write(ph, 0, 0x1004, 2, 0x1ffff); /* 2 bytes: a write */
	j->rc[6] = ferry_mock_pcie_mmio_write(ph, 0, 0x21, 1, 0x1ff);
	j->rc[7] = ferry_mock_pcie_mmio_read(ph, 0, 0x1c, 4, &j->val[7]);
	j->rc[8] = ferry_mock_pcie_mmio_read(ph, 0, 0x0, 8, &j->val[8]);
	j->rc[9] = ferry_mock_pcie_mmio_read(ph, 0, 0x3fff, 1, &j->val[9]);
}

Test(pcie_mock, accesses_reach_handlers_in_order)
{
	attach_fw(0);
	struct host_job j = {.run = script_basic};
	serve(&j, 1);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(j.rc[i], 0, "access %d: %d", i, j.rc[i]);
	cr_assert_eq(j.val[7], (0x1cull << 8) | 4, "4-byte read truncated to 32 bits: 0x%llx",
		     (unsigned long long)j.val[7]);
	cr_assert_eq(j.val[8], 0xa5a5000000000000ull | 8);
	cr_assert_eq(j.val[9], (uint64_t)((0x3fffull << 8) | 1) & 0xff);
	struct rec want[] = {
		{'w', 0, 0x14, 4, 0x00460001},
		{'w', 0, 0x28, 8, 0x1122334455667788ull},
		{'d', 0, 2, 4, 7},
		{'d', 0, 15, 4, 9},
		{'w', 0, 0x1040, 4, 10},
		{'w', 0, 0x1004, 2, 0xffff},
		{'w', 0, 0x21, 1, 0xff},
		{'r', 0, 0x1c, 4, 0},
		{'r', 0, 0x0, 8, 0},
		{'r', 0, 0x3fff, 1, 0},
	};
	cr_assert_eq(fwrec.n, 10);
	for (uint32_t i = 0; i < 10; i++) {
		struct rec *r = &fwrec.rec[i];
		cr_assert(r->kind == want[i].kind && r->bar == 0 && r->off == want[i].off &&
				  r->size == want[i].size && r->val == want[i].val,
			  "record %u: %c off 0x%llx size %u val 0x%llx", i, r->kind,
			  (unsigned long long)r->off, r->size, (unsigned long long)r->val);
	}
	struct ferry_mock_pcie_stats s = stats(0);
	cr_assert_eq(s.reads, 3);
	cr_assert_eq(s.writes, 5);
	cr_assert_eq(s.doorbells, 2);
	cr_assert_eq(s.bad + s.failed + s.unclaimed + s.abandoned, 0);
}

Test(pcie_mock, bad_accesses_refused_before_posting)
{
	attach_fw(0);
	uint64_t v = 0;
	ferry_log_set_handler(tm_quiet_log);
	cr_assert_eq(ferry_mock_pcie_mmio_read(ph, 0, FERRY_MOCK_PCIE_BAR0_SIZE, 4, &v), -EINVAL);
	cr_assert_eq(v, UINT64_MAX);
	cr_assert_eq(ferry_mock_pcie_mmio_read(ph, 0, 0x3ffc, 8, &v), -EINVAL, "crosses the end");
	cr_assert_eq(ferry_mock_pcie_mmio_read(ph, 0, 0x10, 3, &v), -EINVAL, "size 3");
	cr_assert_eq(ferry_mock_pcie_mmio_read(ph, 0, 0x10, 16, &v), -EINVAL, "size 16");
	cr_assert_eq(ferry_mock_pcie_mmio_read(ph, 0, 0x12, 4, &v), -EINVAL, "misaligned");
	cr_assert_eq(ferry_mock_pcie_mmio_write(ph, 0, 0x4, 8, 0), -EINVAL, "misaligned 8");
	cr_assert_eq(ferry_mock_pcie_mmio_write(ph, 0, UINT64_MAX - 3, 4, 0), -EINVAL);
	cr_assert_eq(ferry_mock_pcie_mmio_write(ph, 0, 0, 0, 0), -EINVAL, "size 0");
	cr_assert_eq(ferry_mock_pcie_mmio_write(ph, 2, 0, 4, 0), -EINVAL, "no function 2");
	cr_assert_eq(ferry_mock_pcie_mmio_write(NULL, 0, 0, 4, 0), -EINVAL);
	cr_assert_eq(ferry_mock_pcie_mmio_read(ph, 0, 0, 4, NULL), -EINVAL);
	ferry_log_set_handler(NULL);
	cr_assert_eq(ep->poll(dev, 0), 0, "nothing was posted");
	cr_assert_eq(fwrec.n, 0);
	cr_assert_eq(stats(0).bad, 0);
}

Test(pcie_mock, malformed_ring_entries_are_dropped)
{
	attach_fw(0);
	/* A host that writes the shared ring directly (bypassing the checks of the API). */
	int fd;
	cr_assert_eq(ferry_mock_pcie_fd(dev, &fd), 0);
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	void *map = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert_neq(map, MAP_FAILED);
	struct mock_pcie_shm_hdr *hdr = map;
	struct mock_pcie_ring *ring = (void *)((uint8_t *)hdr + hdr->fn[0].ring_off);
	uint64_t bad_ops[][3] = {
		{MOCK_PCIE_OP(MOCK_PCIE_OP_WRITE, 4), FERRY_MOCK_PCIE_BAR0_SIZE, 0}, /* outside */
		{MOCK_PCIE_OP(MOCK_PCIE_OP_WRITE, 3), 0x10, 0},                      /* size 3 */
		{MOCK_PCIE_OP(MOCK_PCIE_OP_WRITE, 4), 0x11, 0},  /* misaligned */
		{MOCK_PCIE_OP(7, 4), 0x10, 0},                   /* no such op */
		{MOCK_PCIE_OP(MOCK_PCIE_OP_READ, 8), 0x3ffc, 0}, /* crosses end */
	};
	uint64_t pos = atomic_load(&ring->tail);
	for (uint32_t i = 0; i < 5; i++, pos++) {
		struct mock_pcie_slot *s = &ring->slot[pos % FERRY_MOCK_PCIE_RING];
		s->op = (uint32_t)bad_ops[i][0];
		s->offset = bad_ops[i][1];
		atomic_store(&s->state, (s->op & 0xff) == MOCK_PCIE_OP_READ ? MOCK_PCIE_ST_WAITING
									    : MOCK_PCIE_ST_POSTED);
		atomic_store(&s->seq, pos + 1);
	}
	atomic_store(&ring->tail, pos);
	ferry_log_set_handler(tm_quiet_log);
	cr_assert_eq(ep->poll(dev, 0), 5);
	ferry_log_set_handler(NULL);
	cr_assert_eq(fwrec.n, 0, "no handler saw a malformed request");
	cr_assert_eq(stats(0).bad, 5);
	/* The read was answered as failed with all ones; the host side releases it. */
	struct mock_pcie_slot *rd = &ring->slot[(pos - 1) % FERRY_MOCK_PCIE_RING];
	cr_assert_eq(atomic_load(&rd->state), MOCK_PCIE_ST_DONE_ERR);
	cr_assert_eq(atomic_load(&rd->value), UINT64_MAX);
	atomic_store(&rd->seq, pos - 1 + FERRY_MOCK_PCIE_RING);
	/* The ring still works. */
	cr_assert_eq(ferry_mock_pcie_mmio_write(ph, 0, 0x14, 4, 1), 0);
	cr_assert_eq(ep->poll(dev, 0), 1);
	cr_assert_eq(fwrec.n, 1);
	munmap(map, (size_t)st.st_size);
}

static void script_read_fail(struct host_job *j)
{
	j->rc[0] = ferry_mock_pcie_mmio_read(ph, 0, 0x8, 4, &j->val[0]);
	j->rc[1] = ferry_mock_pcie_mmio_read(ph, 1, 0x8, 2, &j->val[1]);
	j->rc[2] = ferry_mock_pcie_mmio_write(ph, 1, 0x8, 4, 5);
}

Test(pcie_mock, failed_and_unclaimed_reads_give_all_ones)
{
	attach_fw(0);
	fwrec.fail_reads = 1;
	struct host_job j = {.run = script_read_fail};
	serve(&j, 1);
	cr_assert_eq(j.rc[0], -EIO, "handler failure: %d", j.rc[0]);
	cr_assert_eq(j.val[0], 0xffffffffull);
	cr_assert_eq(j.rc[1], -ENODEV, "function 1 is not attached: %d", j.rc[1]);
	cr_assert_eq(j.val[1], 0xffffull);
	cr_assert_eq(j.rc[2], 0, "writes are posted even to an unclaimed function");
	cr_assert_eq(stats(0).failed, 1);
	cr_assert_eq(stats(1).unclaimed, 2);
	cr_assert_eq(fwrec.n, 1, "only function 0's handler ran");
}

static void script_many_reads(struct host_job *j)
{
	for (int i = 0; i < 2 * (int)FERRY_MOCK_PCIE_RING + 10; i++) {
		uint64_t v;
		int rc = ferry_mock_pcie_mmio_read(ph, 0, 0x20, 4, &v);
		if (rc || v != ((0x20u << 8) | 4u)) {
			j->rc[0] = rc ? rc : -EIO;
			return;
		}
	}
}

Test(pcie_mock, read_timeout_is_bounded_and_does_not_wedge_the_ring)
{
	attach_fw(0);
	cr_assert_eq(ferry_mock_pcie_host_set_timeout(ph, 20000000ull), 0);
	uint64_t v = 0, t0 = tm_now_ns();
	ferry_log_set_handler(tm_quiet_log);
	cr_assert_eq(ferry_mock_pcie_mmio_read(ph, 0, 0x1c, 4, &v), -ETIMEDOUT);
	ferry_log_set_handler(NULL);
	uint64_t dt = tm_now_ns() - t0;
	cr_assert(dt >= 20000000ull && dt < 2000000000ull, "waited %llu ns",
		  (unsigned long long)dt);
	cr_assert_eq(v, 0xffffffffull);
	/* The firmware answers late: the answer is discarded and the slot reclaimed. */
	cr_assert_eq(ep->poll(dev, 0), 1);
	cr_assert_eq(stats(0).abandoned, 1);
	cr_assert_eq(ferry_mock_pcie_host_set_timeout(ph, 2000000000ull), 0);
	struct host_job j = {.run = script_many_reads};
	serve(&j, 1);
	cr_assert_eq(j.rc[0], 0, "reads after the abandoned one: %d", j.rc[0]);
	ferry_log_set_handler(tm_quiet_log);
	cr_assert_eq(ferry_mock_pcie_host_set_timeout(ph, 10), -EINVAL, "below 1 us");
	ferry_log_set_handler(NULL);
}

Test(pcie_mock, full_ring_write_times_out)
{
	attach_fw(0);
	cr_assert_eq(ferry_mock_pcie_host_set_timeout(ph, 20000000ull), 0);
	for (uint32_t i = 0; i < FERRY_MOCK_PCIE_RING; i++)
		cr_assert_eq(ferry_mock_pcie_mmio_write(ph, 0, 0x14, 4, i), 0);
	ferry_log_set_handler(tm_quiet_log);
	cr_assert_eq(ferry_mock_pcie_mmio_write(ph, 0, 0x14, 4, 0), -ETIMEDOUT);
	ferry_log_set_handler(NULL);
	cr_assert_eq(ep->poll(dev, 100), 100, "poll honours max");
	cr_assert_eq(ep->poll(dev, 0), FERRY_MOCK_PCIE_RING - 100);
	for (uint32_t i = 0; i < FERRY_MOCK_PCIE_RING; i++)
		cr_assert_eq(fwrec.rec[i].val, i, "write %u delivered in order", i);
	cr_assert_eq(ferry_mock_pcie_mmio_write(ph, 0, 0x14, 4, 1), 0, "room again");
}

struct waiter {
	uint32_t seen;
	int rc;
	uint64_t waited;
};

static void *msix_waiter(void *arg)
{
	struct waiter *w = arg;
	uint64_t t0 = tm_now_ns();
	w->rc = ferry_mock_pcie_msix_wait(ph, 0, 5, &w->seen, 5000000000ull);
	w->waited = tm_now_ns() - t0;
	return NULL;
}

Test(pcie_mock, msix_counts_and_waits)
{
	attach_fw(0);
	uint32_t c = 99, any = 99;
	cr_assert_eq(ferry_mock_pcie_msix_count(ph, 0, 3, &c), 0);
	cr_assert_eq(c, 0);
	cr_assert_eq(ep->msix_raise(dev, 0, 3), 0);
	cr_assert_eq(ep->msix_raise(dev, 0, 3), 0);
	cr_assert_eq(ep->msix_raise(dev, 0, 7), 0);
	cr_assert_eq(ferry_mock_pcie_msix_count(ph, 0, 3, &c), 0);
	cr_assert_eq(c, 2);
	cr_assert_eq(ferry_mock_pcie_msix_count(ph, 0, FERRY_MOCK_PCIE_ANY_VECTOR, &any), 0);
	cr_assert_eq(any, 3);
	uint32_t seen = 0;
	cr_assert_eq(ferry_mock_pcie_msix_wait(ph, 0, 3, &seen, 0), 0, "fired before the wait");
	cr_assert_eq(seen, 2);
	cr_assert_eq(ferry_mock_pcie_msix_wait(ph, 0, 3, &seen, 10000000ull), -ETIMEDOUT);
	cr_assert_eq(seen, 2);
	/* A sleeping waiter is woken by a raise from another thread. */
	struct waiter w = {0};
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, msix_waiter, &w), 0);
	struct timespec ts = {0, 50000000};
	nanosleep(&ts, NULL);
	cr_assert_eq(ep->msix_raise(dev, 0, 5), 0);
	pthread_join(th, NULL);
	cr_assert_eq(w.rc, 0);
	cr_assert_eq(w.seen, 1);
	cr_assert(w.waited < 4000000000ull, "woken, not timed out");
	ferry_log_set_handler(tm_quiet_log);
	cr_assert_eq(ferry_mock_pcie_msix_count(ph, 0, FERRY_MOCK_PCIE_MAX_MSIX, &c), -EINVAL);
	cr_assert_eq(ferry_mock_pcie_msix_wait(ph, 2, 0, &seen, 0), -EINVAL);
	ferry_log_set_handler(NULL);
	cr_assert_eq(stats(0).msix, 4);
	cr_assert_eq(stats(1).msix, 0);
}

Test(pcie_mock, detach_drops_pending_accesses)
{
	attach_fw(0);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(ferry_mock_pcie_mmio_write(ph, 0, 0x14, 4, (uint64_t)i), 0);
	ep->detach(dev, 0);
	cr_assert_eq(fwrec.n, 0, "no handler call after detach");
	cr_assert_eq(stats(0).unclaimed, 5);
	cr_assert_eq(ep->poll(dev, 0), 0);
	ferry_log_set_handler(tm_quiet_log);
	cr_assert_eq(ep->msix_raise(dev, 0, 1), -ENODEV);
	ferry_log_set_handler(NULL);
}

static void script_thread(struct host_job *j)
{
	for (uint32_t i = 0; i < 3000; i++) {
		int rc = ferry_mock_pcie_mmio_write(ph, 0, 0x100 + 8u * (uint32_t)j->tid, 8,
						    ((uint64_t)j->tid << 32) | i);
		if (rc) {
			j->rc[0] = rc;
			return;
		}
		if (i % 500 == 0) {
			uint64_t v;
			rc = ferry_mock_pcie_mmio_read(ph, 0, 0x200, 4, &v);
			if (rc) {
				j->rc[0] = rc;
				return;
			}
		}
	}
}

static uint32_t mt_next[4];
static uint32_t mt_bad;

static int mt_write(void *ctx, uint32_t bar, uint64_t off, uint32_t size, uint64_t val)
{
	uint32_t tid = (uint32_t)(val >> 32);
	if (tid >= 4 || off != 0x100 + 8u * tid || (uint32_t)val != mt_next[tid])
		mt_bad++;
	else
		mt_next[tid]++;
	return 0;
}

Test(pcie_mock, several_host_threads_keep_their_order)
{
	static const struct ferry_hal_pcie_ep_handlers h = {fw_read, mt_write, NULL};
	struct ferry_hal_pcie_ep_attach_opts o = {.size = sizeof(o), .handlers = &h, .ctx = &fwrec};
	cr_assert_eq(ep->attach(dev, 0, &o), 0);
	struct host_job j[4];
	memset(j, 0, sizeof(j));
	for (int i = 0; i < 4; i++) {
		j[i].run = script_thread;
		j[i].tid = i;
	}
	serve(j, 4);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(j[i].rc[0], 0);
		cr_assert_eq(mt_next[i], 3000, "thread %d: %u writes in order", i, mt_next[i]);
	}
	cr_assert_eq(mt_bad, 0);
	cr_assert_eq(stats(0).writes, 12000);
	cr_assert_eq(stats(0).reads, 24);
}

Test(pcie_mock, host_in_another_process)
{
	attach_fw(0);
	int fd;
	cr_assert_eq(ferry_mock_pcie_fd(dev, &fd), 0);
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct ferry_mock_pcie_host *h = NULL;
		int ok = ferry_mock_pcie_host_open(fd, &h) == 0;
		uint64_t v = 0;
		ok = ok && ferry_mock_pcie_mmio_write(h, 0, 0x14, 4, 0x1234) == 0;
		ok = ok && ferry_mock_pcie_mmio_read(h, 0, 0x1c, 4, &v) == 0 &&
		     v == ((0x1cu << 8) | 4u);
		uint32_t seen = 0;
		ok = ok && ferry_mock_pcie_msix_wait(h, 0, 1, &seen, 5000000000ull) == 0 &&
		     seen == 1;
		ferry_mock_pcie_host_close(h);
		_exit(ok ? 0 : 1);
	}
	int st = 0;
	uint64_t end = tm_now_ns() + 10000000000ull;
	int raised = 0;
	while (waitpid(pid, &st, WNOHANG) == 0) {
		cr_assert(tm_now_ns() < end, "child hangs");
		ep->poll(dev, 0);
		if (!raised && fwrec.n >= 2) {
			cr_assert_eq(ep->msix_raise(dev, 0, 1), 0);
			raised = 1;
		}
	}
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x", st);
	cr_assert_eq(fwrec.rec[0].kind, 'w');
	cr_assert_eq(fwrec.rec[0].val, 0x1234);
	cr_assert_eq(fwrec.rec[1].kind, 'r');
}

/* Log lines of the endpoint that mention a reclaimed slot (the rest is dropped). */
static int reclaim_lines;
static char reclaim_line[256];

static void reclaim_log(enum ferry_log_level l, const char *c, const char *f, va_list ap)
{
	char buf[256];
	(void)l;
	(void)c;
	vsnprintf(buf, sizeof(buf), f, ap);
	if (strstr(buf, "reclaimed")) {
		reclaim_lines++;
		memcpy(reclaim_line, buf, sizeof(buf));
	}
}

Test(pcie_mock, host_killed_waiting_for_a_read_does_not_wedge_the_ring)
{
	attach_fw(0);
	int fd;
	cr_assert_eq(ferry_mock_pcie_fd(dev, &fd), 0);
	int go[2];
	cr_assert_eq(pipe(go), 0);
	fflush(NULL);
	/* Host 1 posts a BAR read and dies before the firmware answers it. Posting happens after
	 * it signalled "r": on a loaded machine it may not have run that far when it is killed
	 * (then nothing was posted and the poll finds nothing), so the scenario is retried with a
	 * longer grace period rather than reading a scheduling delay as a failure. */
	int st = 0, consumed = 0;
	pid_t dead = -1;
	for (int attempt = 1; attempt <= 5 && !consumed; attempt++) {
		dead = fork();
		cr_assert_geq(dead, 0);
		if (dead == 0) {
			struct ferry_mock_pcie_host *h = NULL;
			uint64_t v;
			if (ferry_mock_pcie_host_open(fd, &h) ||
			    ferry_mock_pcie_host_set_timeout(h, 60000000000ull))
				_exit(1);
			(void)!write(go[1], "r", 1);
			(void)ferry_mock_pcie_mmio_read(h, 0, 0x20, 4, &v);
			_exit(2); /* never reached: killed while waiting */
		}
		char c;
		cr_assert_eq(read(go[0], &c, 1), 1);
		usleep(50000u * (unsigned int)attempt); /* the read is posted and waited for */
		cr_assert_eq(kill(dead, SIGKILL), 0);
		cr_assert_eq(waitpid(dead, &st, 0), dead);
		cr_assert(WIFSIGNALED(st), "host 1 was killed (status 0x%x)", st);
		ferry_log_set_handler(reclaim_log);
		consumed = ep->poll(dev, 0);
		cr_assert_leq(consumed, 1, "one posted read at most");
	}
	cr_assert_eq(consumed, 1, "the dead host's read is consumed");

	/* Host 2 (another process) must get far more than one ring's worth of accesses. */
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct ferry_mock_pcie_host *h = NULL;
		if (ferry_mock_pcie_host_open(fd, &h))
			_exit(1);
		for (uint32_t i = 0; i < 2100; i++) {
			uint64_t off = 0x40 + 4u * (i % 64u), v = 0;
			if (i % 2 == 0) {
				if (ferry_mock_pcie_mmio_write(h, 0, off, 4, i))
					_exit(10);
			} else if (ferry_mock_pcie_mmio_read(h, 0, off, 4, &v) ||
				   v != ((off << 8) | 4u)) { /* fw_read's value, 4 bytes */
				_exit(11);
			}
		}
		ferry_mock_pcie_host_close(h);
		_exit(0);
	}
	uint64_t end = tm_now_ns() + 30000000000ull;
	while (waitpid(pid, &st, WNOHANG) == 0) {
		cr_assert(tm_now_ns() < end, "host 2 hangs");
		ep->poll(dev, 0);
	}
	ferry_log_set_handler(NULL);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "host 2: status 0x%x", st);
	struct ferry_mock_pcie_stats s = stats(0);
	cr_assert_eq(s.reclaimed, 1, "one slot reclaimed from the dead host");
	cr_assert_eq(s.reads, 1 + 1050);
	cr_assert_eq(s.writes, 1050);
	cr_assert_eq(reclaim_lines, 1, "logged once");
	char pidstr[32];
	snprintf(pidstr, sizeof(pidstr), "%d", (int)dead);
	cr_assert_not_null(strstr(reclaim_line, pidstr), "the log names the host: %s", reclaim_line);
	close(go[0]);
	close(go[1]);
}

Test(pcie_mock, channel_fd_validation)
{
	struct ferry_mock_pcie_host *h = NULL;
	int memfd;
	ferry_log_set_handler(tm_quiet_log);
	cr_assert_eq(ferry_mock_pcie_host_open(-1, &h), -EINVAL);
	cr_assert_eq(ferry_mock_host_fd(dev, &memfd), 0);
	cr_assert_eq(ferry_mock_pcie_host_open(memfd, &h), -EINVAL,
		     "the host-memory fd is not a "
		     "PCIe channel");
	cr_assert_eq(ferry_mock_pcie_host_open(0, NULL), -EINVAL);
	int fd;
	cr_assert_eq(ferry_mock_pcie_fd(NULL, &fd), -EINVAL);
	struct ferry_mock_pcie_stats s = {.size = 8};
	cr_assert_eq(ferry_mock_pcie_get_stats(dev, 0, &s), -EINVAL, "short stats");
	s.size = sizeof(s);
	cr_assert_eq(ferry_mock_pcie_get_stats(dev, 2, &s), -EINVAL, "no function 2");
	ferry_log_set_handler(NULL);
	cr_assert_null(h);
}
