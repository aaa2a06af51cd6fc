/*
 * Stress: the mock PCIe endpoint's request ring. One firmware thread attaches the functions
 * and polls (the HAL rule: one polling thread), raising an MSI-X vector per doorbell. Several
 * host threads share one host handle and post BAR0 writes, read-backs and doorbells to
 * function 0 at once (multi-producer ring); each checks its read-backs and its MSI-X count.
 * Another host thread opens and closes its own handles and reads function 1, which the
 * firmware keeps detaching and re-attaching; a last one reads with a 1 us timeout, abandoning
 * most reads. Afterwards every doorbell sequence and the device counters are checked.
 */
#include <errno.h>
#include <ferry/hal/hal.h>
#include <ferry/mock.h>
#include <ferry/mock_pcie.h>
#include "stress.h"

#define NHOSTS 4u
#define DB_OFF 0x1000u
#define WIN_OFF 0x2000u /* host thread t owns [WIN_OFF + t * WIN, + WIN) of function 0 */
#define WIN 256u
#define TO_OFF 0x3000u /* the timeout thread's window (never written) */
#define BAR FERRY_MOCK_PCIE_BAR0_SIZE

static struct ferry_device *dev;
static const struct ferry_hal_pcie_ep_ops *ep;
static uint64_t deadline;
static atomic_int hosts_left;
static atomic_uint_fast64_t reads_ok, reads_timed_out, fn1_reads;

/* A function's register file, touched only from the firmware's poll (and main at the end). */
struct regs {
	uint8_t bytes[BAR];
	uint32_t db_last[16];
	uint64_t db_count[16];
	uint64_t db_bad;
	uint32_t fn;
};

static struct regs fw[2];

static uint8_t init_byte(uint64_t off)
{
	return (uint8_t)(off * 13u + 7u);
}

static int fw_read(void *ctx, uint32_t bar, uint64_t off, uint32_t size, uint64_t *val)
{
	struct regs *r = ctx;
	uint64_t v = 0;
	(void)bar;
	memcpy(&v, r->bytes + off, size);
	*val = v;
	return 0;
}

static int fw_write(void *ctx, uint32_t bar, uint64_t off, uint32_t size, uint64_t val)
{
	struct regs *r = ctx;
	(void)bar;
	if (r->fn == 0) /* function 1 is read-only */
		memcpy(r->bytes + off, &val, size);
	return 0;
}

static void fw_doorbell(void *ctx, uint32_t index, uint32_t value)
{
	struct regs *r = ctx;
	if (value != r->db_last[index] + 1)
		r->db_bad++;
	r->db_last[index] = value;
	r->db_count[index]++;
	int rc = ep->msix_raise(dev, r->fn, (uint16_t)index);
	if (rc)
		r->db_bad++;
}

static const struct ferry_hal_pcie_ep_handlers handlers = {fw_read, fw_write, fw_doorbell};

static void attach(uint32_t fn)
{
	struct ferry_hal_pcie_ep_attach_opts o = {.size = sizeof(o),
						  .doorbell_offset = DB_OFF,
						  .doorbell_count = 16,
						  .handlers = &handlers,
						  .ctx = &fw[fn]};
	int rc = ep->attach(dev, fn, &o);
	ST_CHECK(rc == 0, "attach %u: %d", fn, rc);
}

static void *firmware(void *arg)
{
	(void)arg;
	uint64_t seed = 3, polls = 0;
	attach(0);
	attach(1);
	int fn1 = 1;
	for (;;) {
		int left = atomic_load(&hosts_left);
		int n = ep->poll(dev, (uint32_t)st_range(&seed, 0, 64));
		ST_CHECK(n >= 0, "poll: %d", n);
		if (left == 0 && n == 0)
			break;
		if (++polls % 512 == 0) {
			if (fn1)
				ep->detach(dev, 1);
			else
				attach(1);
			fn1 = !fn1;
		}
		if (n == 0)
			sched_yield();
	}
	ep->detach(dev, 0);
	if (fn1)
		ep->detach(dev, 1);
	return NULL;
}

static struct ferry_mock_pcie_host *host_open(void)
{
	int fd = -1;
	ST_CHECK(ferry_mock_pcie_fd(dev, &fd) == 0, "pcie fd");
	struct ferry_mock_pcie_host *h = NULL;
	int rc = ferry_mock_pcie_host_open(fd, &h);
	ST_CHECK(rc == 0, "host open: %d", rc);
	return h;
}

static struct ferry_mock_pcie_host *shared_host;
static pthread_once_t shared_once = PTHREAD_ONCE_INIT;

static void shared_open(void)
{
	shared_host = host_open();
	uint64_t limit = st_now_ns() + 20000000000ull;
	while (!ferry_mock_pcie_host_attached(shared_host, 0)) {
		ST_CHECK(st_now_ns() < limit, "function 0 never attached");
		sched_yield();
	}
}

struct host_arg {
	uint32_t t;
	uint64_t doorbells;
};

static void *host(void *arg)
{
	struct host_arg *a = arg;
	uint64_t seed = 0x51ed2701ull * (a->t + 1);
	pthread_once(&shared_once, shared_open);
	struct ferry_mock_pcie_host *h = shared_host;
	uint32_t seen = 0;
	ST_CHECK(ferry_mock_pcie_msix_count(h, 0, a->t, &seen) == 0 && seen == 0, "msix count");
	uint64_t rounds = 0;
	while (st_now_ns() < deadline || rounds < 16) {
		uint32_t size = 1u << st_range(&seed, 0, 3);
		uint64_t off = WIN_OFF + a->t * WIN + st_range(&seed, 0, WIN / size - 1) * size;
		uint64_t val = st_rand(&seed), got = 0;
		int rc = ferry_mock_pcie_mmio_write(h, 0, off, size, val);
		ST_CHECK(rc == 0, "host %u: write: %d", a->t, rc);
		rc = ferry_mock_pcie_mmio_read(h, 0, off, size, &got);
		uint64_t mask = size == 8 ? UINT64_MAX : (1ull << (size * 8)) - 1;
		ST_CHECK(rc == 0 && got == (val & mask),
			 "host %u: read-back of %u bytes at 0x%llx: rc %d, 0x%llx instead of 0x%llx",
			 a->t, size, (unsigned long long)off, rc, (unsigned long long)got,
			 (unsigned long long)(val & mask));
		if (st_range(&seed, 0, 3) == 0) {
			a->doorbells++;
			rc = ferry_mock_pcie_mmio_write(h, 0, DB_OFF + 4 * a->t, 4,
							(uint32_t)a->doorbells);
			ST_CHECK(rc == 0, "doorbell: %d", rc);
		}
		if (st_range(&seed, 0, 15) == 0) {
			/* Wait for the MSI-X of every doorbell rung so far. */
			uint64_t limit = st_now_ns() + 20000000000ull;
			while (seen < (uint32_t)a->doorbells) {
				ST_CHECK(st_now_ns() < limit, "host %u: %u of %llu MSI-X", a->t,
					 seen, (unsigned long long)a->doorbells);
				rc = ferry_mock_pcie_msix_wait(h, 0, a->t, &seen, 1000000);
				ST_CHECK(rc == 0 || rc == -ETIMEDOUT, "msix wait: %d", rc);
			}
			ST_CHECK(seen == (uint32_t)a->doorbells,
				 "host %u: %u MSI-X for %llu doorbells", a->t, seen,
				 (unsigned long long)a->doorbells);
		}
		rounds++;
	}
	atomic_fetch_add_explicit(&reads_ok, rounds, memory_order_relaxed);
	return NULL;
}

/* Reads function 1 (attached or not) through handles opened and closed in a loop. */
static void *fn1_host(void *arg)
{
	(void)arg;
	uint64_t seed = 17;
	while (st_now_ns() < deadline) {
		struct ferry_mock_pcie_host *h = host_open();
		for (int i = 0; i < 16; i++) {
			uint64_t off = st_range(&seed, 0, BAR / 8 - 1) * 8, v = 0, want = 0;
			int rc = ferry_mock_pcie_mmio_read(h, 1, off, 8, &v);
			for (int b = 7; b >= 0; b--)
				want = want << 8 | init_byte(off + (uint64_t)b);
			ST_CHECK((rc == 0 && v == want) || (rc == -ENODEV && v == UINT64_MAX),
				 "function 1 read at 0x%llx: rc %d value 0x%llx",
				 (unsigned long long)off, rc, (unsigned long long)v);
			(void)ferry_mock_pcie_host_attached(h, 1);
			atomic_fetch_add_explicit(&fn1_reads, 1, memory_order_relaxed);
		}
		ferry_mock_pcie_host_close(h);
	}
	return NULL;
}

/* Reads with a 1 us timeout: answered (right value) or abandoned (all ones). */
static void *impatient(void *arg)
{
	(void)arg;
	uint64_t seed = 23;
	struct ferry_mock_pcie_host *h = host_open();
	ST_CHECK(ferry_mock_pcie_host_set_timeout(h, 1000) == 0, "timeout");
	while (st_now_ns() < deadline) {
		uint64_t off = TO_OFF + st_range(&seed, 0, 63) * 4, v = 0, want = 0;
		int rc = ferry_mock_pcie_mmio_read(h, 0, off, 4, &v);
		for (int b = 3; b >= 0; b--)
			want = want << 8 | init_byte(off + (uint64_t)b);
		if (rc == -ETIMEDOUT) {
			ST_CHECK(v == 0xffffffffull, "timed out read value 0x%llx",
				 (unsigned long long)v);
			atomic_fetch_add_explicit(&reads_timed_out, 1, memory_order_relaxed);
		} else {
			ST_CHECK((rc == 0 && v == want) || rc == -ENODEV,
				 "impatient read: rc %d value 0x%llx", rc, (unsigned long long)v);
		}
		struct ferry_mock_pcie_stats st = {.size = sizeof(st)};
		ST_CHECK(ferry_mock_pcie_get_stats(dev, 0, &st) == 0, "stats");
	}
	ferry_mock_pcie_host_close(h);
	return NULL;
}

struct role {
	uintptr_t kind; /* < NHOSTS: host t; NHOSTS: firmware; +1: fn1_host; +2: impatient */
	struct host_arg host;
};

static void *run_role(void *arg)
{
	struct role *r = arg;
	void *ret;
	if (r->kind < NHOSTS)
		ret = host(&r->host);
	else if (r->kind == NHOSTS)
		return firmware(NULL);
	else if (r->kind == NHOSTS + 1)
		ret = fn1_host(NULL);
	else
		ret = impatient(NULL);
	atomic_fetch_sub(&hosts_left, 1);
	return ret;
}

int main(void)
{
	uint64_t t0 = st_now_ns();
	ferry_log_set_handler(st_quiet_log); /* abandoned reads and unclaimed BARs are logged */
	int rc = ferry_device_open("mock", "host_mem=1M,iova_size=1M,functions=nvme:nic", &dev);
	ST_CHECK(rc == 0, "open: %d", rc);
	ep = ferry_hal_dev_get_backend(dev)->pcie_ep;
	ST_CHECK(ep, "PCIe endpoint class");
	for (uint32_t f = 0; f < 2; f++) {
		fw[f].fn = f;
		for (uint64_t i = 0; i < BAR; i++)
			fw[f].bytes[i] = init_byte(i);
	}
	enum {
		NROLES = NHOSTS + 3
	};
	struct role roles[NROLES];
	memset(roles, 0, sizeof(roles));
	for (uint32_t i = 0; i < NROLES; i++) {
		roles[i].kind = i;
		roles[i].host.t = i;
	}
	atomic_store(&hosts_left, (int)(NROLES - 1));
	deadline = st_now_ns() + st_run_ns(1500);
	st_run_threads(NROLES, run_role, roles, sizeof(roles[0]));

	uint64_t rung = 0;
	for (uint32_t t = 0; t < NHOSTS; t++) {
		ST_CHECK(fw[0].db_count[t] == roles[t].host.doorbells,
			 "doorbell %u: firmware saw %llu of %llu", t,
			 (unsigned long long)fw[0].db_count[t],
			 (unsigned long long)roles[t].host.doorbells);
		rung += roles[t].host.doorbells;
	}
	ST_CHECK(fw[0].db_bad == 0, "%llu doorbells out of order",
		 (unsigned long long)fw[0].db_bad);
	struct ferry_mock_pcie_stats st = {.size = sizeof(st)};
	ST_CHECK(ferry_mock_pcie_get_stats(dev, 0, &st) == 0, "stats");
	ST_CHECK(st.doorbells == rung && st.msix == rung && st.bad == 0 && st.failed == 0,
		 "stats: %llu doorbells, %llu msix, %llu bad, %llu failed (rung %llu)",
		 (unsigned long long)st.doorbells, (unsigned long long)st.msix,
		 (unsigned long long)st.bad, (unsigned long long)st.failed,
		 (unsigned long long)rung);
	ferry_mock_pcie_host_close(shared_host);
	ferry_device_close(dev);
	printf("stress_pcie: %llu write+read rounds, %llu doorbells, %llu function-1 reads, %llu "
	       "abandoned reads, %.2f s\n",
	       (unsigned long long)atomic_load(&reads_ok), (unsigned long long)rung,
	       (unsigned long long)atomic_load(&fn1_reads),
	       (unsigned long long)atomic_load(&reads_timed_out), (double)(st_now_ns() - t0) / 1e9);
	return 0;
}
