/*
 * The mock's PCIe endpoint class (ferry/hal/pcie_ep.h), device side: the PCIe channel memfd
 * (created on first use, freed at close), attach/detach of a function's handlers, delivery of
 * the host's BAR0 accesses and doorbells from the request rings in poll(), reclaiming the
 * slots of host processes that died holding them, MSI-X raising, the per-function domains,
 * and the counters of ferry/mock_pcie.h.
 * Layout and protocol of the channel: mock_internal.h. Host side: mock_pcie_host.c.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <ferry/hal/pcie_ep.h>
#include "mock_internal.h"

#define MOCK_PCIE_LOG_BAD 8u /* malformed requests logged per function; later ones counted */
#define MOCK_PCIE_LOG_RECLAIM_NS 1000000000ull /* at most one reclaim line per second */

struct mock_pcie_fn {
	struct mock_pcie_ring *ring;
	struct mock_pcie_msix *msix;
	_Atomic uint32_t *attached_shm;
	uint64_t head; /* consumer position (device private) */
	int attached;
	const struct ferry_hal_pcie_ep_handlers *h;
	void *ctx;
	uint32_t db_off, db_end;
	uint32_t bad_logged;
	/* The slot at head held by a host (see reclaim()): since when, last liveness check. */
	uint64_t held_pos, held_since, held_checked;
	uint64_t reclaim_logged_ns, reclaim_unlogged;
	_Atomic uint64_t st_reads, st_writes, st_doorbells, st_msix, st_bad, st_failed,
		st_unclaimed, st_abandoned, st_reclaimed;
};

struct mock_pcie {
	int fd;
	uint8_t *base;
	uint64_t size;
	uint32_t nfn;
	struct mock_pcie_fn fn[MOCK_PCIE_MAX_FNS];
};

static pthread_mutex_t mock_pcie_create_lock = PTHREAD_MUTEX_INITIALIZER;

static int mock_pcie_create(struct mock_dev *dev, struct mock_pcie **out)
{
	char mname[80];
	uint64_t fnb = mock_pcie_fn_bytes();
	uint64_t total = MOCK_PCIE_HDR_BYTES + fnb * dev->nfn;
	snprintf(mname, sizeof(mname), "ferry-%s-pcie", dev->name);
	int fd = memfd_create(mname, MFD_CLOEXEC);
	if (fd < 0) {
		int rc = -errno;
		MOCK_ERR("%s: PCIe channel: memfd_create failed: %s", dev->name, strerror(errno));
		return rc;
	}
	if (ftruncate(fd, (off_t)total) != 0) {
		int rc = -errno;
		MOCK_ERR("%s: PCIe channel: sizing to %llu bytes failed: %s", dev->name,
			 (unsigned long long)total, strerror(errno));
		close(fd);
		return rc;
	}
	void *p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		int rc = -errno;
		MOCK_ERR("%s: PCIe channel: mmap failed: %s", dev->name, strerror(errno));
		close(fd);
		return rc;
	}
	struct mock_pcie *pc = calloc(1, sizeof(*pc));
	if (!pc) {
		munmap(p, total);
		close(fd);
		return -ENOMEM;
	}
	pc->fd = fd;
	pc->base = p;
	pc->size = total;
	pc->nfn = dev->nfn;
	struct mock_pcie_shm_hdr *hdr = p;
	hdr->version = MOCK_PCIE_VERSION;
	hdr->nfn = dev->nfn;
	hdr->bar0_size = FERRY_MOCK_PCIE_BAR0_SIZE;
	hdr->max_msix = FERRY_MOCK_PCIE_MAX_MSIX;
	hdr->ring_size = FERRY_MOCK_PCIE_RING;
	hdr->total_size = total;
	for (uint32_t i = 0; i < dev->nfn; i++) {
		struct mock_pcie_shm_fn *sf = &hdr->fn[i];
		memcpy(sf->name, dev->fn[i].name, sizeof(sf->name));
		sf->name[sizeof(sf->name) - 1] = '\0';
		sf->ring_off = MOCK_PCIE_HDR_BYTES + fnb * i;
		sf->msix_off = sf->ring_off + ((MOCK_PCIE_RING_BYTES + 63) & ~(uint64_t)63);
		atomic_init(&sf->attached, 0);
		/* Pointers computed once from our own layout, never re-read from shared memory. */
		struct mock_pcie_fn *f = &pc->fn[i];
		f->ring = (struct mock_pcie_ring *)(void *)(pc->base + sf->ring_off);
		f->msix = (struct mock_pcie_msix *)(void *)(pc->base + sf->msix_off);
		f->attached_shm = &sf->attached;
		atomic_init(&f->ring->tail, 0);
		for (uint32_t k = 0; k < FERRY_MOCK_PCIE_RING; k++)
			atomic_init(&f->ring->slot[k].seq, k);
	}
	/* Last, with release: a valid magic (acquire) means a complete header. */
	__atomic_store_n(&hdr->magic, MOCK_PCIE_MAGIC, __ATOMIC_RELEASE);
	*out = pc;
	return 0;
}

/* The device's PCIe state, created on first use; NULL (logged) if that failed. */
static struct mock_pcie *mock_pcie_get(struct mock_dev *dev, int *err)
{
	struct mock_pcie *pc = atomic_load_explicit(&dev->pcie, memory_order_acquire);
	if (pc)
		return pc;
	pthread_mutex_lock(&mock_pcie_create_lock);
	pc = atomic_load_explicit(&dev->pcie, memory_order_acquire);
	int rc = 0;
	if (!pc) {
		rc = mock_pcie_create(dev, &pc);
		if (rc == 0)
			atomic_store_explicit(&dev->pcie, pc, memory_order_release);
	}
	pthread_mutex_unlock(&mock_pcie_create_lock);
	if (err)
		*err = rc;
	return pc;
}

void mock_pcie_free(struct mock_dev *dev)
{
	struct mock_pcie *pc = atomic_load_explicit(&dev->pcie, memory_order_acquire);
	if (!pc)
		return;
	for (uint32_t i = 0; i < pc->nfn; i++)
		if (pc->fn[i].attached)
			MOCK_WARN("%s.%s: closed with the PCIe function still attached", dev->name,
				  dev->fn[i].name);
	munmap(pc->base, pc->size);
	close(pc->fd);
	free(pc);
	atomic_store_explicit(&dev->pcie, NULL, memory_order_release);
}

/* ---- request ring, consumer side ------------------------------------------------------ */

static void slot_release(struct mock_pcie_slot *s, uint64_t pos)
{
	atomic_store_explicit(&s->owner_pid, 0, memory_order_relaxed);
	atomic_store_explicit(&s->seq, pos + FERRY_MOCK_PCIE_RING, memory_order_release);
}

static void read_answer(struct mock_pcie_fn *f, struct mock_pcie_slot *s, uint64_t pos,
			uint64_t val, uint32_t state)
{
	atomic_store_explicit(&s->value, val, memory_order_relaxed);
	uint32_t old = atomic_exchange_explicit(&s->state, state, memory_order_acq_rel);
	if (old == MOCK_PCIE_ST_SLEEPING) {
		mock_pcie_futex_wake(&s->state);
	} else if (old == MOCK_PCIE_ST_ABANDONED) {
		atomic_fetch_add_explicit(&f->st_abandoned, 1, memory_order_relaxed);
		slot_release(s, pos); /* the host is gone: nobody else will */
	}
}

static void bad_request(struct mock_dev *dev, uint32_t i, struct mock_pcie_fn *f, uint32_t op,
			uint64_t off)
{
	atomic_fetch_add_explicit(&f->st_bad, 1, memory_order_relaxed);
	if (f->bad_logged < MOCK_PCIE_LOG_BAD) {
		f->bad_logged++;
		MOCK_ERR("%s.%s: malformed BAR0 request from the host (op 0x%x, offset 0x%llx): "
			 "%s%s",
			 dev->name, dev->fn[i].name, op, (unsigned long long)off,
			 "not a 1/2/4/8-byte aligned read or write inside BAR0; dropped",
			 f->bad_logged == MOCK_PCIE_LOG_BAD ? " (further ones only counted)" : "");
	}
}

/* Handles one published request at f->head. */
static void consume_one(struct mock_dev *dev, uint32_t i, struct mock_pcie_fn *f,
			struct mock_pcie_slot *s)
{
	uint64_t pos = f->head++;
	/* Each field once, into locals (the host may be rewriting the slot meanwhile). */
	uint32_t op = atomic_load_explicit(&s->op, memory_order_relaxed);
	uint64_t off = atomic_load_explicit(&s->offset, memory_order_relaxed);
	uint64_t val = atomic_load_explicit(&s->value, memory_order_relaxed);
	uint32_t kind = op & 0xffu, size = (op >> 8) & 0xffu;
	int is_read = kind == MOCK_PCIE_OP_READ;

	if ((kind != MOCK_PCIE_OP_READ && kind != MOCK_PCIE_OP_WRITE) || (op >> 16) ||
	    !mock_pcie_access_ok(off, size)) {
		bad_request(dev, i, f, op, off);
		if (is_read)
			read_answer(f, s, pos, UINT64_MAX, MOCK_PCIE_ST_DONE_ERR);
		else
			slot_release(s, pos);
		return;
	}
	if (!f->attached) {
		atomic_fetch_add_explicit(&f->st_unclaimed, 1, memory_order_relaxed);
		if (is_read)
			read_answer(f, s, pos, mock_pcie_ones(size), MOCK_PCIE_ST_DONE_UR);
		else
			slot_release(s, pos);
		return;
	}
	if (is_read) {
		uint64_t v = 0;
		atomic_fetch_add_explicit(&f->st_reads, 1, memory_order_relaxed);
		int rc = f->h->bar_read(f->ctx, 0, off, size, &v);
		if (rc) {
			atomic_fetch_add_explicit(&f->st_failed, 1, memory_order_relaxed);
			read_answer(f, s, pos, mock_pcie_ones(size), MOCK_PCIE_ST_DONE_ERR);
		} else {
			read_answer(f, s, pos, v & mock_pcie_ones(size), MOCK_PCIE_ST_DONE);
		}
		return;
	}
	slot_release(s, pos); /* everything copied out: producers may reuse it */
	val &= mock_pcie_ones(size);
	if (size == 4 && f->h->doorbell && off >= f->db_off && off < f->db_end) {
		atomic_fetch_add_explicit(&f->st_doorbells, 1, memory_order_relaxed);
		f->h->doorbell(f->ctx, (uint32_t)(off - f->db_off) / 4u, (uint32_t)val);
		return;
	}
	atomic_fetch_add_explicit(&f->st_writes, 1, memory_order_relaxed);
	(void)f->h->bar_write(f->ctx, 0, off, size, val); /* the handler logs what it refuses */
}

/*
 * Called when the slot at f->head holds nothing to consume. If it is held by a host (an
 * answered read of the previous lap not taken back, or a position claimed and not
 * published) for MOCK_PCIE_RECLAIM_NS, and its owner is dead, release it: otherwise every
 * host stops there for good once the ring wraps. Liveness costs a /proc read, so it is
 * checked only for a slot held that long, and then at most every MOCK_PCIE_RECLAIM_NS.
 * Returns 1 if the head moved (an unpublished request was skipped).
 */
static int reclaim(struct mock_dev *dev, uint32_t i, struct mock_pcie_fn *f,
		   struct mock_pcie_slot *s)
{
	const uint64_t head = f->head, ring = FERRY_MOCK_PCIE_RING;
	uint64_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
	int answered = head >= ring && seq == head - ring + 1 &&
		       atomic_load_explicit(&s->state, memory_order_relaxed) >= MOCK_PCIE_ST_DONE;
	int unpublished = seq == head &&
			  atomic_load_explicit(&f->ring->tail, memory_order_relaxed) > head;
	if (!answered && !unpublished) {
		f->held_since = 0;
		return 0;
	}
	uint64_t now = mock_now_ns();
	if (!f->held_since || f->held_pos != head) {
		f->held_pos = head;
		f->held_since = now;
		f->held_checked = 0;
		return 0;
	}
	if (now - f->held_since < MOCK_PCIE_RECLAIM_NS ||
	    (f->held_checked && now - f->held_checked < MOCK_PCIE_RECLAIM_NS))
		return 0;
	f->held_checked = now;
	int pid = (int)atomic_load_explicit(&s->owner_pid, memory_order_relaxed);
	uint64_t start = atomic_load_explicit(&s->owner_start, memory_order_relaxed);
	if (pid == 0 || mock_pcie_owner_alive(pid, start))
		return 0;
	/* The owner is gone: nobody else writes this slot, but a CAS keeps a hostile host
	 * from having us release a slot it republished meanwhile. */
	uint64_t want = answered ? head - ring + 1 : head;
	if (!atomic_compare_exchange_strong(&s->seq, &want, head + (answered ? 0 : ring)))
		return 0;
	atomic_store_explicit(&s->owner_pid, 0, memory_order_relaxed);
	if (unpublished)
		f->head++; /* the dead host's request never existed; the next one is behind it */
	f->held_since = 0;
	atomic_fetch_add_explicit(&f->st_reclaimed, 1, memory_order_relaxed);
	if (f->reclaim_logged_ns && now - f->reclaim_logged_ns < MOCK_PCIE_LOG_RECLAIM_NS) {
		f->reclaim_unlogged++;
	} else {
		MOCK_WARN("%s.%s: reclaimed request-ring slot %llu from host process %d, which "
			  "died %s (%llu more reclaimed since the last line)",
			  dev->name, dev->fn[i].name, (unsigned long long)(head % ring), pid,
			  answered ? "before taking its BAR read answer"
				   : "before publishing its request",
			  (unsigned long long)f->reclaim_unlogged);
		f->reclaim_logged_ns = now;
		f->reclaim_unlogged = 0;
	}
	return unpublished;
}

/* Consumes up to @p max published requests of function @p i, and never more than one ring's
 * worth: a hostile host republishing each slot as soon as it is released must not keep the
 * firmware's poll from returning (poll(0) means "what is pending", not "forever"). */
static uint32_t consume(struct mock_dev *dev, struct mock_pcie *pc, uint32_t i, uint32_t max)
{
	struct mock_pcie_fn *f = &pc->fn[i];
	uint32_t n = 0;
	if (max > FERRY_MOCK_PCIE_RING)
		max = FERRY_MOCK_PCIE_RING;
	while (n < max) {
		struct mock_pcie_slot *s = &f->ring->slot[f->head & (FERRY_MOCK_PCIE_RING - 1)];
		if (atomic_load_explicit(&s->seq, memory_order_acquire) != f->head + 1) {
			if (reclaim(dev, i, f, s))
				continue;
			break;
		}
		consume_one(dev, i, f, s);
		n++;
	}
	return n;
}

/* ---- HAL ops -------------------------------------------------------------------------- */

static struct mock_dev *ep_dev(struct ferry_device *fdev, const char *op)
{
	struct mock_dev *dev = mock_dev_get(fdev);
	if (!dev)
		MOCK_ERR("pcie_ep %s: not a mock device", op);
	return dev;
}

static int ep_query(struct ferry_device *fdev, struct ferry_hal_pcie_ep_info *info)
{
	struct mock_dev *dev = ep_dev(fdev, "query");
	if (!dev || !info)
		return -EINVAL;
	info->num_functions = dev->nfn;
	info->bar0_size = FERRY_MOCK_PCIE_BAR0_SIZE;
	info->max_msix = FERRY_MOCK_PCIE_MAX_MSIX;
	return 0;
}

static int ep_attach(struct ferry_device *fdev, uint32_t fn,
		     const struct ferry_hal_pcie_ep_attach_opts *o)
{
	struct mock_dev *dev = ep_dev(fdev, "attach");
	if (!dev)
		return -EINVAL;
	if (fn >= dev->nfn) {
		MOCK_ERR("%s: pcie_ep attach: function %u out of range (%u functions)", dev->name,
			 fn, dev->nfn);
		return -EINVAL;
	}
	if (!o || o->size != sizeof(*o) ||
	    !o->handlers || !o->handlers->bar_read || !o->handlers->bar_write) {
		MOCK_ERR("%s.%s: pcie_ep attach: %s", dev->name, dev->fn[fn].name,
			 !o                       ? "NULL options"
			 : !o->handlers           ? "no handlers"
			 : (o->size != sizeof(*o)) ? "opts->size is not sizeof(struct ferry_hal_pcie_ep_attach_opts)"
						  : "bar_read and bar_write are required");
		return -EINVAL;
	}
	uint64_t db_end = (uint64_t)o->doorbell_offset + 4ull * o->doorbell_count;
	if (o->doorbell_count &&
	    ((o->doorbell_offset & 3u) || db_end > FERRY_MOCK_PCIE_BAR0_SIZE)) {
		MOCK_ERR("%s.%s: pcie_ep attach: doorbells 0x%x + %u x 4 bytes are misaligned or "
			 "leave BAR0 (0x%x bytes)",
			 dev->name, dev->fn[fn].name, o->doorbell_offset, o->doorbell_count,
			 FERRY_MOCK_PCIE_BAR0_SIZE);
		return -EINVAL;
	}
	int rc = 0;
	struct mock_pcie *pc = mock_pcie_get(dev, &rc);
	if (!pc)
		return rc;
	struct mock_pcie_fn *f = &pc->fn[fn];
	if (f->attached) {
		MOCK_ERR("%s.%s: pcie_ep attach: the function is already attached", dev->name,
			 dev->fn[fn].name);
		return -EBUSY;
	}
	f->h = o->handlers;
	f->ctx = o->ctx;
	f->db_off = o->doorbell_count ? o->doorbell_offset : 0;
	f->db_end = o->doorbell_count ? (uint32_t)db_end : 0;
	f->bad_logged = 0;
	f->attached = 1;
	atomic_store_explicit(f->attached_shm, 1, memory_order_release);
	return 0;
}

static void ep_detach(struct ferry_device *fdev, uint32_t fn)
{
	struct mock_dev *dev = ep_dev(fdev, "detach");
	struct mock_pcie *pc = dev ? atomic_load_explicit(&dev->pcie, memory_order_acquire) : NULL;
	if (!pc || fn >= pc->nfn || !pc->fn[fn].attached)
		return;
	struct mock_pcie_fn *f = &pc->fn[fn];
	f->attached = 0;
	f->h = NULL;
	f->ctx = NULL;
	atomic_store_explicit(f->attached_shm, 0, memory_order_release);
	/* Pending requests are dropped: reads answered as an unclaimed BAR. */
	consume(dev, pc, fn, FERRY_MOCK_PCIE_RING);
}

static struct ferry_memdomain *ep_get_domain(struct ferry_device *fdev, uint32_t fn)
{
	struct mock_dev *dev = ep_dev(fdev, "get_domain");
	if (!dev || fn >= dev->nfn) {
		if (dev)
			MOCK_ERR("%s: pcie_ep get_domain: function %u out of range (%u functions)",
				 dev->name, fn, dev->nfn);
		return NULL;
	}
	return dev->fn[fn].domain;
}

static int ep_msix_raise(struct ferry_device *fdev, uint32_t fn, uint16_t vector)
{
	struct mock_dev *dev = ep_dev(fdev, "msix_raise");
	if (!dev)
		return -EINVAL;
	struct mock_pcie *pc = atomic_load_explicit(&dev->pcie, memory_order_acquire);
	if (fn >= dev->nfn || vector >= FERRY_MOCK_PCIE_MAX_MSIX) {
		MOCK_ERR("%s: msix_raise: function %u / vector %u out of range (%u functions, %u "
			 "vectors)",
			 dev->name, fn, vector, dev->nfn, FERRY_MOCK_PCIE_MAX_MSIX);
		return -EINVAL;
	}
	if (!pc || !pc->fn[fn].attached) {
		MOCK_ERR("%s.%s: msix_raise: the function is not attached", dev->name,
			 dev->fn[fn].name);
		return -ENODEV;
	}
	struct mock_pcie_fn *f = &pc->fn[fn];
	struct mock_pcie_msix *m = f->msix;
	atomic_fetch_add_explicit(&f->st_msix, 1, memory_order_relaxed);
	/* seq_cst pairs with the waiter's increment of waiters and re-check of the counter. */
	atomic_fetch_add(&m->count[vector], 1);
	atomic_fetch_add(&m->any, 1);
	if (atomic_load(&m->waiters[vector]))
		mock_pcie_futex_wake(&m->count[vector]);
	if (atomic_load(&m->any_waiters))
		mock_pcie_futex_wake(&m->any);
	return 0;
}

static int ep_poll(struct ferry_device *fdev, uint32_t max)
{
	struct mock_dev *dev = mock_dev_get(fdev);
	if (!dev)
		return -EINVAL;
	struct mock_pcie *pc = atomic_load_explicit(&dev->pcie, memory_order_acquire);
	if (!pc)
		return 0; /* no channel yet: no host can have posted anything */
	if (max == 0)
		max = UINT32_MAX;
	uint32_t n = 0;
	for (uint32_t i = 0; i < pc->nfn && n < max; i++)
		n += consume(dev, pc, i, max - n);
	return (int)n;
}

const struct ferry_hal_pcie_ep_ops mock_pcie_ep_ops = {
	.abi_version = FERRY_HAL_PCIE_EP_ABI_VERSION,
	.query = ep_query,
	.attach = ep_attach,
	.detach = ep_detach,
	.get_domain = ep_get_domain,
	.msix_raise = ep_msix_raise,
	.poll = ep_poll,
};

/* ---- control API (ferry/mock_pcie.h) -------------------------------------------------- */

FERRY_API int ferry_mock_pcie_fd(struct ferry_device *fdev, int *fd)
{
	struct mock_dev *dev = mock_dev_get(fdev);
	if (!dev || !fd) {
		MOCK_ERR("pcie_fd: %s", !dev ? "not a mock device" : "NULL fd");
		return -EINVAL;
	}
	int rc = 0;
	struct mock_pcie *pc = mock_pcie_get(dev, &rc);
	if (!pc)
		return rc;
	*fd = pc->fd;
	return 0;
}

FERRY_API int ferry_mock_pcie_get_stats(struct ferry_device *fdev, unsigned int fn,
					struct ferry_mock_pcie_stats *out)
{
	struct mock_dev *dev = mock_dev_get(fdev);
	if (!dev || !out || out->size != sizeof(*out) || fn >= dev->nfn) {
		MOCK_ERR("pcie_get_stats: %s", !dev ? "not a mock device"
					       : (!out || out->size != sizeof(*out))
						       ? "NULL or short stats"
						       : "function out of range");
		return -EINVAL;
	}
	struct mock_pcie *pc = atomic_load_explicit(&dev->pcie, memory_order_acquire);
	size_t sz = out->size;
	memset(out, 0, sizeof(*out));
	out->size = sz;
	if (!pc)
		return 0;
	struct mock_pcie_fn *f = &pc->fn[fn];
	out->reads = atomic_load(&f->st_reads);
	out->writes = atomic_load(&f->st_writes);
	out->doorbells = atomic_load(&f->st_doorbells);
	out->msix = atomic_load(&f->st_msix);
	out->bad = atomic_load(&f->st_bad);
	out->failed = atomic_load(&f->st_failed);
	out->unclaimed = atomic_load(&f->st_unclaimed);
	out->abandoned = atomic_load(&f->st_abandoned);
	out->reclaimed = atomic_load(&f->st_reclaimed);
	return 0;
}
