/*
 * Host side of the mock PCIe endpoint (ferry/mock_pcie.h): mapping the PCIe channel in any
 * process, posting BAR0 reads and writes to a function's request ring (multi-producer) under
 * the poster's name, waiting for read answers and for MSI-X vectors with bounded waits; and
 * the process identity (pid + start time) both sides use to tell a dead host. Protocol:
 * mock_internal.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <ferry/log.h>
#include "mock_internal.h"

#define COMP "mock"
#define SPIN_NS 20000ull          /* busy-wait this long before sleeping */
#define SLEEP_SLICE_NS 2000000ull /* futex waits are re-armed at least this often */

struct ferry_mock_pcie_host {
	uint8_t *base;
	uint64_t size;
	uint32_t nfn;
	_Atomic uint64_t timeout_ns;
	struct mock_pcie_ring *ring[MOCK_PCIE_MAX_FNS];
	struct mock_pcie_msix *msix[MOCK_PCIE_MAX_FNS];
	_Atomic uint32_t *attached[MOCK_PCIE_MAX_FNS];
	/* The name this process posts under; recomputed when getpid() changes (a fork). */
	_Atomic int self_pid;
	_Atomic uint64_t self_start;
};

int mock_pcie_proc_start(int pid, uint64_t *start)
{
	char path[40], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n == 0 ? -ESRCH : -errno; /* reaped between open and read */
	buf[n] = '\0';
	/* "pid (comm) state ppid ...": comm may hold spaces and parentheses, so fields are
	 * counted from the last ')'. The state is field 3, the start time field 22. */
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return -EIO;
	char state = p[2];
	if (state == 'Z' || state == 'X' || state == 'x')
		return -ESRCH;
	p += 2;
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return -EIO;
		p++;
	}
	char *end = NULL;
	unsigned long long v = strtoull(p, &end, 10);
	if (end == p)
		return -EIO;
	*start = v;
	return 0;
}

int mock_pcie_owner_alive(int pid, uint64_t start)
{
	uint64_t now = 0;
	if (pid <= 0)
		return 1; /* not named (yet): nothing is known */
	int rc = mock_pcie_proc_start(pid, &now);
	if (rc == -ESRCH)
		return 0;
	if (rc == 0)
		return start == 0 || now == start; /* 0: the poster could not read its own */
	/* /proc could not tell: fall back on the pid alone. */
	return !(kill(pid, 0) != 0 && errno == ESRCH);
}

/* This process's name for the slots it posts. */
static void self_name(struct ferry_mock_pcie_host *h, int *pid, uint64_t *start)
{
	int me = (int)getpid();
	if (atomic_load_explicit(&h->self_pid, memory_order_acquire) != me) {
		uint64_t st = 0;
		(void)mock_pcie_proc_start(me, &st); /* 0 if /proc is missing: pid alone */
		atomic_store_explicit(&h->self_start, st, memory_order_relaxed);
		atomic_store_explicit(&h->self_pid, me, memory_order_release);
	}
	*pid = me;
	*start = atomic_load_explicit(&h->self_start, memory_order_relaxed);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#else
	atomic_signal_fence(memory_order_seq_cst);
#endif
}

/* Waits a little, more politely the longer it has been waiting (2 cores may be shared). */
static void backoff(uint64_t waited_ns, unsigned int *spins)
{
	if (waited_ns < SPIN_NS && (*spins)++ < 256) {
		cpu_relax();
		return;
	}
	if (waited_ns < 20 * SPIN_NS) {
		sched_yield();
		return;
	}
	struct timespec ts = {0, 50000};
	nanosleep(&ts, NULL);
}

static int check_hdr(const struct mock_pcie_shm_hdr *h, uint64_t fsize)
{
	if (h->magic != MOCK_PCIE_MAGIC || h->version != MOCK_PCIE_VERSION || h->nfn == 0 ||
	    h->nfn > MOCK_PCIE_MAX_FNS || h->bar0_size != FERRY_MOCK_PCIE_BAR0_SIZE ||
	    h->max_msix != FERRY_MOCK_PCIE_MAX_MSIX || h->ring_size != FERRY_MOCK_PCIE_RING ||
	    h->total_size > fsize)
		return 0;
	for (uint32_t i = 0; i < h->nfn; i++) {
		const struct mock_pcie_shm_fn *f = &h->fn[i];
		if (f->ring_off < MOCK_PCIE_HDR_BYTES || (f->ring_off & 63) ||
		    f->ring_off > h->total_size ||
		    h->total_size - f->ring_off < MOCK_PCIE_RING_BYTES ||
		    f->msix_off < f->ring_off + MOCK_PCIE_RING_BYTES || (f->msix_off & 63) ||
		    f->msix_off > h->total_size ||
		    h->total_size - f->msix_off < sizeof(struct mock_pcie_msix))
			return 0;
	}
	return 1;
}

FERRY_API int ferry_mock_pcie_host_open(int fd, struct ferry_mock_pcie_host **out)
{
	struct stat st;
	if (!out) {
		ferry_log(FERRY_LOG_ERROR, COMP, "pcie_host_open: NULL out");
		return -EINVAL;
	}
	if (fd < 0 || fstat(fd, &st) != 0 || (uint64_t)st.st_size < MOCK_PCIE_HDR_BYTES) {
		ferry_log(FERRY_LOG_ERROR, COMP, "pcie_host_open: fd %d is not a mock PCIe channel",
			  fd);
		return -EINVAL;
	}
	struct ferry_mock_pcie_host *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		int rc = -errno;
		ferry_log(FERRY_LOG_ERROR, COMP, "pcie_host_open: mmap failed: %s",
			  strerror(errno));
		free(h);
		return rc;
	}
	h->base = p;
	h->size = (uint64_t)st.st_size;
	/* The other side writes the magic last (release): read it first (acquire), then take
	 * one private copy of the header, check the copy and use only the copy, so that a
	 * concurrent rewrite of the shared header cannot slip an unchecked offset in. The
	 * `attached` flags are left out: the device stores them (atomically) at any time. */
	struct mock_pcie_shm_hdr *shared = p;
	struct mock_pcie_shm_hdr hdr;
	memset(&hdr, 0, sizeof(hdr));
	hdr.magic = __atomic_load_n(&shared->magic, __ATOMIC_ACQUIRE);
	size_t plain = offsetof(struct mock_pcie_shm_hdr, fn) -
		       offsetof(struct mock_pcie_shm_hdr, version); /* version .. total_size */
	memcpy(&hdr.version, &shared->version, plain);
	for (uint32_t i = 0; i < MOCK_PCIE_MAX_FNS; i++) {
		memcpy(hdr.fn[i].name, shared->fn[i].name, sizeof(hdr.fn[i].name));
		hdr.fn[i].ring_off = shared->fn[i].ring_off;
		hdr.fn[i].msix_off = shared->fn[i].msix_off;
	}
	if (!check_hdr(&hdr, h->size)) {
		ferry_log(FERRY_LOG_ERROR, COMP,
			  "pcie_host_open: fd %d has no valid mock PCIe channel header", fd);
		ferry_mock_pcie_host_close(h);
		return -EINVAL;
	}
	h->nfn = hdr.nfn;
	for (uint32_t i = 0; i < h->nfn; i++) {
		h->ring[i] = (struct mock_pcie_ring *)(void *)(h->base + hdr.fn[i].ring_off);
		h->msix[i] = (struct mock_pcie_msix *)(void *)(h->base + hdr.fn[i].msix_off);
		h->attached[i] = &shared->fn[i].attached;
	}
	atomic_init(&h->timeout_ns, 1000000000ull);
	atomic_init(&h->self_pid, 0);
	atomic_init(&h->self_start, 0);
	*out = h;
	return 0;
}

FERRY_API void ferry_mock_pcie_host_close(struct ferry_mock_pcie_host *h)
{
	if (!h)
		return;
	munmap(h->base, h->size);
	free(h);
}

FERRY_API unsigned int ferry_mock_pcie_host_fn_count(const struct ferry_mock_pcie_host *h)
{
	return h ? h->nfn : 0;
}

FERRY_API int ferry_mock_pcie_host_set_timeout(struct ferry_mock_pcie_host *h, uint64_t ns)
{
	if (!h || ns < 1000 || ns > 600000000000ull) {
		ferry_log(FERRY_LOG_ERROR, COMP, "pcie_host_set_timeout: %s",
			  !h ? "NULL host" : "timeout must be 1 us .. 600 s");
		return -EINVAL;
	}
	atomic_store(&h->timeout_ns, ns);
	return 0;
}

FERRY_API int ferry_mock_pcie_host_attached(const struct ferry_mock_pcie_host *h, unsigned int fn)
{
	if (!h || fn >= h->nfn)
		return 0;
	return atomic_load_explicit(h->attached[fn], memory_order_acquire) != 0;
}

static int check_access(const struct ferry_mock_pcie_host *h, const char *op, unsigned int fn,
			uint64_t offset, uint32_t size)
{
	if (!h || fn >= h->nfn) {
		ferry_log(FERRY_LOG_ERROR, COMP, "mmio_%s: %s", op,
			  !h ? "NULL host" : "function out of range");
		return -EINVAL;
	}
	if (!mock_pcie_access_ok(offset, size)) {
		ferry_log(
			FERRY_LOG_ERROR, COMP,
			"mmio_%s: %u bytes at BAR0 offset 0x%llx: accesses are 1, 2, 4 or 8 bytes, "
			"naturally aligned, inside the 0x%x-byte BAR",
			op, size, (unsigned long long)offset, FERRY_MOCK_PCIE_BAR0_SIZE);
		return -EINVAL;
	}
	return 0;
}

/* Claims a ring position (waiting while the ring is full); returns its slot or NULL. */
static struct mock_pcie_slot *claim(struct ferry_mock_pcie_host *h, unsigned int fn,
				    uint64_t *pos_out, uint64_t deadline)
{
	struct mock_pcie_ring *r = h->ring[fn];
	uint64_t pos = atomic_load_explicit(&r->tail, memory_order_relaxed);
	uint64_t start = 0;
	unsigned int spins = 0;
	for (;;) {
		struct mock_pcie_slot *s = &r->slot[pos & (FERRY_MOCK_PCIE_RING - 1)];
		uint64_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
		int64_t diff = (int64_t)(seq - pos);
		if (diff == 0) {
			if (atomic_compare_exchange_weak_explicit(&r->tail, &pos, pos + 1,
								  memory_order_relaxed,
								  memory_order_relaxed)) {
				/* Named before it is published (the seq release covers it), so
				 * the endpoint can reclaim it if this process dies holding it. */
				int pid;
				uint64_t st;
				self_name(h, &pid, &st);
				atomic_store_explicit(&s->owner_start, st, memory_order_relaxed);
				atomic_store_explicit(&s->owner_pid, (uint32_t)pid,
						      memory_order_relaxed);
				*pos_out = pos;
				return s;
			}
			continue; /* pos reloaded by the failed CAS */
		}
		if (diff > 0) {
			pos = atomic_load_explicit(&r->tail, memory_order_relaxed);
			continue;
		}
		/* Full: the firmware has not consumed (or a read answer was not taken yet). */
		uint64_t t = now_ns();
		if (!start)
			start = t;
		if (t >= deadline)
			return NULL;
		backoff(t - start, &spins);
		pos = atomic_load_explicit(&r->tail, memory_order_relaxed);
	}
}

FERRY_API int ferry_mock_pcie_mmio_write(struct ferry_mock_pcie_host *h, unsigned int fn,
					 uint64_t offset, uint32_t size, uint64_t val)
{
	int rc = check_access(h, "write", fn, offset, size);
	if (rc)
		return rc;
	uint64_t pos, deadline = now_ns() + atomic_load(&h->timeout_ns);
	struct mock_pcie_slot *s = claim(h, fn, &pos, deadline);
	if (!s) {
		ferry_log(FERRY_LOG_ERROR, COMP,
			  "mmio_write fn %u offset 0x%llx: request ring full for the whole timeout "
			  "(is the firmware polling?)",
			  fn, (unsigned long long)offset);
		return -ETIMEDOUT;
	}
	atomic_store_explicit(&s->op, MOCK_PCIE_OP(MOCK_PCIE_OP_WRITE, size), memory_order_relaxed);
	atomic_store_explicit(&s->offset, offset, memory_order_relaxed);
	atomic_store_explicit(&s->value, val & mock_pcie_ones(size), memory_order_relaxed);
	atomic_store_explicit(&s->state, MOCK_PCIE_ST_POSTED, memory_order_relaxed);
	atomic_store_explicit(&s->seq, pos + 1, memory_order_release);
	return 0;
}

FERRY_API int ferry_mock_pcie_mmio_read(struct ferry_mock_pcie_host *h, unsigned int fn,
					uint64_t offset, uint32_t size, uint64_t *val)
{
	if (!val) {
		ferry_log(FERRY_LOG_ERROR, COMP, "mmio_read: NULL val");
		return -EINVAL;
	}
	int rc = check_access(h, "read", fn, offset, size);
	if (rc) {
		*val = UINT64_MAX;
		return rc;
	}
	uint64_t ones = mock_pcie_ones(size);
	uint64_t start = now_ns(), deadline = start + atomic_load(&h->timeout_ns);
	uint64_t pos;
	struct mock_pcie_slot *s = claim(h, fn, &pos, deadline);
	if (!s) {
		*val = ones;
		ferry_log(FERRY_LOG_ERROR, COMP,
			  "mmio_read fn %u offset 0x%llx: request ring full for the whole timeout "
			  "(is the firmware polling?)",
			  fn, (unsigned long long)offset);
		return -ETIMEDOUT;
	}
	atomic_store_explicit(&s->op, MOCK_PCIE_OP(MOCK_PCIE_OP_READ, size), memory_order_relaxed);
	atomic_store_explicit(&s->offset, offset, memory_order_relaxed);
	atomic_store_explicit(&s->value, 0, memory_order_relaxed);
	atomic_store_explicit(&s->state, MOCK_PCIE_ST_WAITING, memory_order_relaxed);
	atomic_store_explicit(&s->seq, pos + 1, memory_order_release);

	unsigned int spins = 0;
	uint32_t st;
	for (;;) {
		st = atomic_load_explicit(&s->state, memory_order_acquire);
		if (st >= MOCK_PCIE_ST_DONE)
			break;
		uint64_t t = now_ns();
		if (t >= deadline) {
			if (atomic_compare_exchange_strong(&s->state, &st,
							   MOCK_PCIE_ST_ABANDONED)) {
				*val = ones;
				ferry_log(FERRY_LOG_ERROR, COMP,
					  "mmio_read fn %u offset 0x%llx: no answer from the "
					  "firmware within %llu ms; returning all ones",
					  fn, (unsigned long long)offset,
					  (unsigned long long)(atomic_load(&h->timeout_ns) /
							       1000000ull));
				return -ETIMEDOUT;
			}
			continue; /* the answer arrived meanwhile */
		}
		if (t - start < SPIN_NS || spins < 64) {
			spins++;
			if (spins & 15)
				cpu_relax();
			else
				sched_yield();
			continue;
		}
		if (st == MOCK_PCIE_ST_WAITING &&
		    !atomic_compare_exchange_strong(&s->state, &st, MOCK_PCIE_ST_SLEEPING))
			continue;
		uint64_t left = deadline - t;
		mock_pcie_futex_wait(&s->state, MOCK_PCIE_ST_SLEEPING,
				     left < SLEEP_SLICE_NS ? left : SLEEP_SLICE_NS);
	}
	uint64_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
	atomic_store_explicit(&s->owner_pid, 0, memory_order_relaxed);
	atomic_store_explicit(&s->seq, pos + FERRY_MOCK_PCIE_RING, memory_order_release);
	if (st == MOCK_PCIE_ST_DONE) {
		*val = v & ones;
		return 0;
	}
	*val = ones;
	return st == MOCK_PCIE_ST_DONE_UR ? -ENODEV : -EIO;
}

static _Atomic uint32_t *msix_word(const struct ferry_mock_pcie_host *h, unsigned int fn,
				   unsigned int vector, _Atomic uint32_t **waiters)
{
	if (!h || fn >= h->nfn ||
	    (vector >= FERRY_MOCK_PCIE_MAX_MSIX && vector != FERRY_MOCK_PCIE_ANY_VECTOR))
		return NULL;
	struct mock_pcie_msix *m = h->msix[fn];
	if (vector == FERRY_MOCK_PCIE_ANY_VECTOR) {
		if (waiters)
			*waiters = &m->any_waiters;
		return &m->any;
	}
	if (waiters)
		*waiters = &m->waiters[vector];
	return &m->count[vector];
}

FERRY_API int ferry_mock_pcie_msix_count(const struct ferry_mock_pcie_host *h, unsigned int fn,
					 unsigned int vector, uint32_t *count)
{
	_Atomic uint32_t *w = msix_word(h, fn, vector, NULL);
	if (!w || !count) {
		ferry_log(FERRY_LOG_ERROR, COMP, "msix_count: bad host, function or vector (%u/%u)",
			  fn, vector);
		return -EINVAL;
	}
	*count = atomic_load(w);
	return 0;
}

FERRY_API int ferry_mock_pcie_msix_wait(struct ferry_mock_pcie_host *h, unsigned int fn,
					unsigned int vector, uint32_t *count, uint64_t timeout_ns)
{
	_Atomic uint32_t *waiters;
	_Atomic uint32_t *w = msix_word(h, fn, vector, &waiters);
	if (!w || !count) {
		ferry_log(FERRY_LOG_ERROR, COMP, "msix_wait: bad host, function or vector (%u/%u)",
			  fn, vector);
		return -EINVAL;
	}
	uint32_t seen = *count;
	uint64_t start = now_ns(), deadline = start + timeout_ns;
	unsigned int spins = 0;
	for (;;) {
		uint32_t cur = atomic_load(w);
		if (cur != seen) {
			*count = cur;
			return 0;
		}
		uint64_t t = now_ns();
		if (t >= deadline || timeout_ns == 0) {
			*count = cur;
			return -ETIMEDOUT;
		}
		if (t - start < SPIN_NS && spins++ < 256) {
			cpu_relax();
			continue;
		}
		/* Dekker with msix_raise: announce, re-check, then sleep on the counter value. */
		atomic_fetch_add(waiters, 1);
		if (atomic_load(w) == seen) {
			uint64_t left = deadline - t;
			mock_pcie_futex_wait(w, seen,
					     left < SLEEP_SLICE_NS ? left : SLEEP_SLICE_NS);
		}
		atomic_fetch_sub(waiters, 1);
	}
}
