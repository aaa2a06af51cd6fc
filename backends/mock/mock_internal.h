/*
 * The mock backend's one private header, shared by its own files and never installed:
 *  - limits and log macros;
 *  - the layout of the shared host-memory region (control block, per-function IOMMU tables,
 *    host RAM; mock_host.c creates and maps it) and of the PCIe channel (request rings, MSI-X
 *    counters; mock_pcie_ep.c and mock_pcie_host.c), which other processes map too;
 *  - the device, its PCI functions, DMA channels and injection rules (struct mock_dev);
 *  - what each file offers the others: operand resolution through the IOMMU view
 *    (mock_iommu.c), engine work items (mock_engine.c), injection (mock_inject.c), the
 *    domains (mock_domain.c), the ops tables.
 * What tests and the simulated host may call is public: include/ferry/mock.h and
 * include/ferry/mock_pcie.h.
 */
#ifndef MOCK_INTERNAL_H
#define MOCK_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include <ferry/dma.h>
#include <ferry/log.h>
#include <ferry/memdomain.h>
#include <ferry/hal/hal.h>
#include <ferry/mock.h>
#include <ferry/mock_pcie.h>

/* ---- Shared host memory (mock_host.c) ----------------------------------------------------
 *
 * Layout of a mock device's shared memory (one memfd): the control block, one IOMMU table per
 * PCI function, then host RAM. Both the device side and the host process map it; everything a
 * process other than the creator may change is read with atomics and bounds-checked.
 */

#define MOCK_SHM_MAGIC 0x4b434f4d59525246ull /* "FRRYMOCK" little-endian */
#define MOCK_SHM_VERSION 1u
#define MOCK_PAGE_SHIFT 12u
#define MOCK_PAGE_SIZE FERRY_MOCK_PAGE_SIZE
#define MOCK_MAX_FNS FERRY_MOCK_MAX_FUNCTIONS
#define MOCK_FN_NAME_MAX FERRY_MOCK_FN_NAME_MAX

/* IOMMU table entry (one per IOVA page): 0 = not mapped. */
#define MOCK_PTE_VALID (1ull << 0)
#define MOCK_PTE_READ (1ull << 1)
#define MOCK_PTE_WRITE (1ull << 2)
#define MOCK_PTE_PFN_SHIFT 12u /* host page number in bits 12..63 */

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "shared tables need lock-free 64-bit atomics");
_Static_assert(MOCK_PAGE_SIZE == (1u << MOCK_PAGE_SHIFT), "page size");

struct mock_shm_fn {
	char name[MOCK_FN_NAME_MAX];
	uint64_t table_off;   /* offset of the IOMMU table from the start of the region */
	_Atomic uint64_t gen; /* bumped after every map/unmap of this function */
};

struct mock_shm_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t page_size;
	uint64_t total_size; /* bytes of the whole region */
	uint64_t host_off;   /* offset of host RAM */
	uint64_t host_size;  /* bytes of host RAM */
	uint64_t iova_size;  /* bytes of IOVA space of each function */
	uint32_t nfn;
	uint32_t reserved;
	struct mock_shm_fn fn[MOCK_MAX_FNS];
};

_Static_assert(sizeof(struct mock_shm_hdr) <= MOCK_PAGE_SIZE, "control block fits a page");

/* One process's mapping of the region (the public struct ferry_mock_host). */
struct ferry_mock_host {
	uint8_t *base;
	uint64_t size;
	struct mock_shm_hdr *hdr;
	uint8_t *mem; /* host RAM */
	int fd;       /* owned descriptor (device side), -1 for a host-side mapping */
};

/* Creates the memfd and the device side's mapping. */
int mock_shm_create(const char *devname, uint64_t host_size, uint64_t iova_size,
		    const char (*names)[MOCK_FN_NAME_MAX], uint32_t nfn,
		    struct ferry_mock_host **out);

/* The IOMMU table of function @p fn in this mapping. */
static inline _Atomic uint64_t *mock_shm_table(const struct ferry_mock_host *h, uint32_t fn)
{
	return (_Atomic uint64_t *)(void *)(h->base + h->hdr->fn[fn].table_off);
}

/* ---- The PCIe channel (mock_pcie_ep.c device side, mock_pcie_host.c host side) ----------
 *
 * Layout of a mock device's PCIe channel (one memfd, separate from the host-memory memfd):
 * the header, then per PCI function a request ring (host -> firmware BAR0 accesses) and an
 * MSI-X block (firmware -> host interrupt counters). Shared by the device side and the host
 * side; everything the other process may
 * change is accessed with atomics, and the device re-checks every request it consumes.
 *
 * Request ring: a bounded multi-producer (host threads) single-consumer (firmware poll)
 * queue of FERRY_MOCK_PCIE_RING slots. Slot i starts with seq = i. A producer owns position
 * p when slot(p).seq == p and it wins the CAS of tail from p to p + 1; it fills the slot and
 * publishes it with seq = p + 1. The consumer handles slot(head) when its seq == head + 1.
 * The slot is handed back to producers (seq = p + ring size) by:
 *  - the consumer, for a write, or for a read whose host gave up (state ABANDONED);
 *  - the host that posted a read, once it has taken the answer (state DONE_*).
 * Read answer: the consumer stores `value`, then exchanges `state` with a DONE_* value; if the
 * old state was SLEEPING it wakes the host (futex on `state`); if it was ABANDONED the host is
 * gone and the consumer releases the slot itself. A host that times out moves the state from
 * WAITING/SLEEPING to ABANDONED with a CAS (if the CAS fails the answer has arrived).
 *
 * Dead hosts: a producer names itself in the slot it won (owner pid + the process's start
 * time, which tells a reused pid apart) before publishing, and whoever releases a slot
 * clears the name. A host process killed while it holds a slot (an answered read it will
 * never take back, or a request it claimed and never published) would stop the ring one lap
 * later for every other host; so when the slot at the consumer's head stays held for
 * MOCK_PCIE_RECLAIM_NS, the consumer checks whether its owner still lives
 * (mock_pcie_owner_alive()) and, if not, releases the slot itself (skipping an unpublished
 * request), counts and logs it.
 */

#define MOCK_PCIE_MAGIC 0x4549435059525246ull /* "FRRYPCIE" little-endian */
#define MOCK_PCIE_VERSION 2u
#define MOCK_PCIE_MAX_FNS FERRY_MOCK_MAX_FUNCTIONS

/* Request ops (low byte of `op`), size in bits 15:8. */
#define MOCK_PCIE_OP_READ 1u
#define MOCK_PCIE_OP_WRITE 2u
#define MOCK_PCIE_OP(op, size) ((uint32_t)(op) | ((uint32_t)(size) << 8))

/* Read states. */
enum {
	MOCK_PCIE_ST_POSTED = 0,    /* a write: no answer expected */
	MOCK_PCIE_ST_WAITING = 1,   /* a read, host spinning */
	MOCK_PCIE_ST_SLEEPING = 2,  /* a read, host in futex wait: wake it */
	MOCK_PCIE_ST_ABANDONED = 3, /* the host gave up: consumer releases the slot */
	MOCK_PCIE_ST_DONE = 4,      /* answered by the handler */
	MOCK_PCIE_ST_DONE_ERR = 5,  /* handler failed or malformed request: all ones */
	MOCK_PCIE_ST_DONE_UR = 6,   /* no firmware attached: all ones */
};

/* Every field is atomic: the other process may rewrite any of them at any time, and a plain
 * load could legally be repeated by the compiler (a double fetch). The consumer loads each
 * field once into a local, validates it, and uses only the local. */
struct mock_pcie_slot {
	_Atomic uint64_t seq;
	_Atomic uint32_t state;
	_Atomic uint32_t op;
	_Atomic uint64_t offset;
	_Atomic uint64_t value;
	_Atomic uint32_t owner_pid;   /* the producer holding the slot, 0 = none / not yet */
	uint32_t reserved;
	_Atomic uint64_t owner_start; /* its start time (/proc/<pid>/stat field 22) */
	uint8_t pad[16];              /* one cache line per slot: producers do not share lines */
};
_Static_assert(sizeof(struct mock_pcie_slot) == 64, "slot layout");

/* How long the slot at the consumer's head must stay held before its owner is checked for
 * liveness, and at most how often it is checked again while it stays held. */
#define MOCK_PCIE_RECLAIM_NS 1000000ull

/*
 * Identity of process @p pid: its start time in clock ticks since boot, which a later process
 * reusing the pid does not share. Returns 0 and *start, -ESRCH if there is no such live
 * process (gone, or a zombie), or another negative errno if /proc cannot tell
 * (mock_pcie_host.c).
 */
int mock_pcie_proc_start(int pid, uint64_t *start);

/* Whether the producer (@p pid, @p start) may still take its slot back: 1 unless it is known
 * to be dead (no such process, a zombie, or the pid now names another process). */
int mock_pcie_owner_alive(int pid, uint64_t start);

struct mock_pcie_ring {
	_Atomic uint64_t tail;
	uint8_t pad[56];
	struct mock_pcie_slot slot[]; /* FERRY_MOCK_PCIE_RING */
};

struct mock_pcie_msix {
	_Atomic uint32_t any;         /* raises of any vector */
	_Atomic uint32_t any_waiters; /* host threads waiting on `any` */
	uint8_t pad[56];
	_Atomic uint32_t count[FERRY_MOCK_PCIE_MAX_MSIX];
	_Atomic uint32_t waiters[FERRY_MOCK_PCIE_MAX_MSIX];
};

struct mock_pcie_shm_fn {
	char name[FERRY_MOCK_FN_NAME_MAX];
	uint64_t ring_off; /* offset of the function's mock_pcie_ring */
	uint64_t msix_off; /* offset of its mock_pcie_msix */
	_Atomic uint32_t attached;
	uint32_t reserved;
};

struct mock_pcie_shm_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t nfn;
	uint32_t bar0_size;
	uint32_t max_msix;
	uint32_t ring_size;
	uint32_t reserved;
	uint64_t total_size;
	struct mock_pcie_shm_fn fn[MOCK_PCIE_MAX_FNS];
};

#define MOCK_PCIE_RING_BYTES                                                                       \
	(sizeof(struct mock_pcie_ring) + FERRY_MOCK_PCIE_RING * sizeof(struct mock_pcie_slot))
#define MOCK_PCIE_HDR_BYTES 4096u
_Static_assert(sizeof(struct mock_pcie_shm_hdr) <= MOCK_PCIE_HDR_BYTES, "header fits a page");
_Static_assert((FERRY_MOCK_PCIE_RING & (FERRY_MOCK_PCIE_RING - 1)) == 0, "ring is a power of 2");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2 && ATOMIC_INT_LOCK_FREE == 2,
	       "shared rings need lock-free atomics");

/* Bytes of one function's ring + MSI-X block, rounded to 64. */
static inline uint64_t mock_pcie_fn_bytes(void)
{
	return ((MOCK_PCIE_RING_BYTES + 63) & ~(uint64_t)63) +
	       ((sizeof(struct mock_pcie_msix) + 63) & ~(uint64_t)63);
}

/* Whether an access is well formed: size 1/2/4/8, naturally aligned, inside BAR0. */
static inline int mock_pcie_access_ok(uint64_t offset, uint32_t size)
{
	if (size != 1 && size != 2 && size != 4 && size != 8)
		return 0;
	return (offset & (size - 1)) == 0 && offset < FERRY_MOCK_PCIE_BAR0_SIZE &&
	       size <= FERRY_MOCK_PCIE_BAR0_SIZE - offset;
}

static inline uint64_t mock_pcie_ones(uint32_t size)
{
	return size >= 8 ? UINT64_MAX : ((uint64_t)1 << (size * 8)) - 1;
}

/* Futexes on the shared mapping (not FUTEX_PRIVATE: the two sides are different processes). */
static inline int mock_pcie_futex_wait(_Atomic uint32_t *addr, uint32_t val, uint64_t ns)
{
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull),
			      .tv_nsec = (long)(ns % 1000000000ull)};
	return (int)syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT, val, &ts, NULL, 0);
}

static inline void mock_pcie_futex_wake(_Atomic uint32_t *addr)
{
	(void)syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* ---- The device (mock_backend.c) -------------------------------------------------------- */

#define MOCK_COMP "mock"
#define MOCK_ERR(...) ferry_log(FERRY_LOG_ERROR, MOCK_COMP, __VA_ARGS__)
#define MOCK_WARN(...) ferry_log(FERRY_LOG_WARN, MOCK_COMP, __VA_ARGS__)

#define MOCK_MAX_RING 65536u
#define MOCK_MAX_CHANNELS 64u
#define MOCK_MAX_SGES 1024u
#define MOCK_MAX_XFER (1ull << 30)
#define MOCK_MAX_RULES 16u
#define MOCK_MAX_LATENCY_NS 10000000000ull

/* One ring entry. Written by the submitter before tail moves; status by the engine. */
struct mock_slot {
	struct ferry_xfer *x;
	uint64_t due_ns;    /* earliest completion time */
	uint64_t fence_dep; /* first unreaped index when submitted (fence failure window) */
	uint8_t zero;       /* memzero: no source, fill the destination with zeros */
	uint8_t inject;     /* injected status, 0 = none */
	uint8_t status;     /* completion status (engine) */
	uint8_t started;    /* the engine has looked at it as the channel's head */
};

/*
 * A channel: one ring of `size` slots. Indices only grow; slot = index % size.
 * tail: submitter; done: engine (entries below it are complete); head: poller.
 * Submitter and poller are the same thread (HAL contract) or hold the owner's lock.
 */
struct mock_chan {
	struct mock_dev *dev; /* NULL once the device was closed under it */
	uint32_t id;
	uint32_t size;
	struct mock_slot *ring;
	_Atomic uint64_t tail;
	_Atomic uint64_t done;
	uint64_t head;
	uint64_t last_fail; /* engine: index + 1 of the latest failed entry, 0 = none */
	uint64_t nsub;      /* injection count of this channel (under dev->inj_lock) */
	int user;           /* a HAL channel (not a function's internal one) */
	int dying;
	struct mock_chan *next;
};

struct mock_dreq;

/* One PCI function: its IOMMU table, its memory domain, its internal channel. */
struct mock_fn {
	struct mock_dev *dev;
	uint32_t index;
	char name[MOCK_FN_NAME_MAX];
	_Atomic uint64_t *table; /* in shared memory */
	_Atomic uint64_t *gen;   /* in shared memory */
	struct ferry_memdomain *domain;
	struct mock_chan *chan;    /* pull/push/memzero of the domain */
	pthread_mutex_t lock;      /* serialises submit/reap on chan, and pend_* */
	pthread_mutex_t rmap_lock; /* reverse map: host page -> IOVA page + 1 (0 = none) */
	uint32_t *rmap;
	uint64_t rmap_gen;
	int rmap_valid;
	/* Domain operations reaped from chan, waiting for the poll of the thread that started
	 * them (completion order; under lock). */
	struct mock_dreq *pend_head, *pend_tail;
};

struct mock_pcie;

struct mock_rule {
	uint32_t chan_id;
	uint64_t target; /* fires when the scope's count reaches this */
	uint8_t status;
};

struct mock_nic;
struct ferry_hal_lsock_dev;

struct mock_dev {
	/* First member: the socket kit finds its state here (ferry/hal/sock.h). */
	struct ferry_hal_lsock_dev *lsock;
	struct mock_nic *nic; /* the offload NIC (mock_nic.c) */
	struct ferry_device *fdev;
	struct mock_dev *open_next; /* the list of open mock devices (mock_dev_get()) */
	char name[48];
	struct ferry_mock_host *shm; /* the device's own mapping; owns the memfd */
	uint8_t *host;               /* host RAM in this process */
	uint64_t host_size, host_pages;
	uint64_t iova_size, iova_pages;
	uint32_t nfn;
	struct mock_fn fn[MOCK_MAX_FNS];
	uint32_t ring_default;
	_Atomic uint64_t latency_ns;

	/* engine */
	pthread_t thread;
	int thread_started;
	int engine_init; /* lock and conditions initialised */
	pthread_mutex_t lock;
	pthread_cond_t wake; /* the engine sleeps here */
	pthread_cond_t idle; /* waiters for active/active_work to change */
	int stop;
	struct mock_chan *chans; /* service order (round robin: served goes last) */
	struct mock_chan *active;
	struct mock_work *work_head, *work_tail, *active_work;
	uint32_t next_chan_id;
	uint32_t user_chans;
	struct iovec *sbuf, *dbuf; /* engine scratch */
	uint32_t scap, dcap;

	/* injection */
	pthread_mutex_t inj_lock;
	struct mock_rule rules[MOCK_MAX_RULES];
	uint32_t nrules;
	uint64_t nsub;
	uint32_t ppm, status_mask;
	uint64_t prng;

	/* PCIe endpoint (mock_pcie_ep.c): created on first use, freed by mock_pcie_free() */
	struct mock_pcie *_Atomic pcie;

	/* counters */
	_Atomic uint64_t st_xfers, st_bytes, st_errors, st_page_faults, st_injected,
		st_not_attempted, st_domain_ops, st_translations, st_rmap_builds, st_invalidations;
};

extern const struct ferry_hal_backend mock_backend;         /* mock_backend.c */
extern const struct ferry_hal_dma_ops mock_dma_ops;         /* mock_dma.c */
extern const struct ferry_hal_accel_ops mock_accel_ops;     /* mock_accel.c */
extern const struct ferry_hal_pcie_ep_ops mock_pcie_ep_ops; /* mock_pcie_ep.c */
extern const struct ferry_hal_nic_ops mock_nic_ops;         /* mock_nic.c */

/* mock_backend.c: an unsigned argument in [lo, hi] (sizes: K/M/G suffix, 4 KiB multiple);
 * absent leaves *out unchanged. */
int mock_arg_u64(const char *args, const char *key, int size, uint64_t lo, uint64_t hi,
		 uint64_t *out);

/* mock_nic.c: the NIC class of a device (socket kit, offload state, NIC arguments). */
int mock_nic_create(struct mock_dev *dev, const char *args);
void mock_nic_destroy(struct mock_dev *dev);

/* mock_pcie_ep.c */
void mock_pcie_free(struct mock_dev *dev);

/* mock_engine.c */
int mock_engine_start(struct mock_dev *dev);
void mock_engine_stop(struct mock_dev *dev);
int mock_chan_open(struct mock_dev *dev, uint32_t id, uint32_t ring, int user,
		   struct mock_chan **out);
void mock_chan_detach(struct mock_chan *ch); /* engine stops touching it */
void mock_chan_close(struct mock_chan *ch);  /* detach + free */
int mock_chan_push(struct mock_chan *ch, struct ferry_xfer *x, int zero);
void mock_engine_kick(struct mock_dev *dev);
uint32_t mock_chan_reap(struct mock_chan *ch, struct ferry_xfer **done, uint32_t max);

/* mock_inject.c */
void mock_inject_init(struct mock_dev *dev, uint64_t seed, uint32_t ppm);

/* mock_domain.c */
int mock_domains_create(struct mock_dev *dev);
void mock_domains_destroy(struct mock_dev *dev);
struct mock_fn *mock_fn_of(struct mock_dev *dev, const struct ferry_memdomain *d);

/* mock_iommu.c */
int mock_translate(struct mock_fn *from, const struct iovec *src, uint32_t src_cnt,
		   struct mock_fn *to, struct ferry_mem *out);
void mock_rmap_drop(struct mock_dev *dev);
/* Why [iov] is not reachable through fn for reading or writing (first offending page). */
void mock_fault_explain(struct mock_fn *fn, const struct iovec *iov, uint32_t cnt, int write,
			char *buf, size_t size);

/* ---- Services of the engine to its extensions (the accel engine, mock_accel.c) ---------- */


/* The mock device behind @p dev, or NULL if @p dev was not opened from the mock backend. */
struct mock_dev *mock_dev_get(struct ferry_device *dev);

/* Device and id of a DMA channel handle (the `void *chan` the HAL DMA ops receive). */
struct mock_dev *mock_chan_dev(void *chan);
uint32_t mock_chan_id(void *chan);

/*
 * Resolve the first @p len bytes of @p mem to local pointers this process may access.
 * @p mem may be in the system domain (NULL or ferry_memdomain_system(); pointers are taken as
 * they are) or in one of @p dev's PCIe function domains (every page is checked against that
 * function's IOMMU table: mapped, inside the IOVA space, READ permission if @p write is 0,
 * WRITE permission if @p write is 1). Physically adjacent pieces are merged.
 * On entry *outcnt is the capacity of @p out (may be 0 with @p out NULL, to only check);
 * on return it is the number of segments the range needs.
 * Returns 0 (FERRY_XFER_SUCCESS) with @p out filled;
 *   FERRY_XFER_INVALID_SRC_ADDR / FERRY_XFER_INVALID_DST_ADDR (by @p write): a domain that is
 *     not this device's, a NULL system pointer, or fewer than @p len bytes described;
 *   FERRY_XFER_PAGE_FAULT: a page is outside the IOVA space, unmapped, or not permitted;
 *   -ENOBUFS: everything is valid but @p out is too small (*outcnt = segments needed).
 * The whole range is checked before returning success: callers check both sides, then move.
 * The pointers stay valid while the device is open (host RAM is mapped for its lifetime).
 * Thread-safe; never blocks.
 */
int mock_resolve(struct mock_dev *dev, const struct ferry_mem *mem, uint64_t len, int write,
		 struct iovec *out, uint32_t *outcnt);

/*
 * Work run on the device's engine thread, interleaved with the DMA rings (FIFO among work
 * items). @p run is called without any engine lock held, at or after @p due_ns
 * (mock_now_ns() clock; 0 = as soon as possible), exactly once unless cancelled. The item
 * must stay valid until it has run or mock_engine_cancel() returned. Items still queued when
 * the device closes are dropped without running. Extensions report their completions
 * themselves (e.g. set a flag their poll reads, with release ordering).
 */
struct mock_work {
	void (*run)(struct mock_work *work);
	uint64_t due_ns;
	struct mock_work *next; /* engine-private */
};

/* Queue @p work on @p dev's engine thread. */
void mock_engine_queue(struct mock_dev *dev, struct mock_work *work);

/* Take @p work off the queue if it has not started (returns 1), else wait until it finished
 * running (returns 0; also if it already ran). Never call it from the work's own run. */
int mock_engine_cancel(struct mock_dev *dev, struct mock_work *work);

/* Take every queued work for which @p match is non-zero off the queue (returned as a list
 * linked through next, never run) and wait until no matching work is running. */
struct mock_work *mock_engine_cancel_if(struct mock_dev *dev,
					int (*match)(const struct mock_work *work, void *arg),
					void *arg);

/* mock_accel.c: a DMA channel is being destroyed: its accel descriptors that have not run
 * never will, the running one is waited for, and nothing of the channel is touched after. */
void mock_accel_chan_destroy(void *chan);

/* Monotonic clock of the engine, and the device's per-operation latency (ns). */
uint64_t mock_now_ns(void);
uint64_t mock_latency_ns(struct mock_dev *dev);

/*
 * Count one submitted operation for error injection (ferry/mock.h) and return the status it
 * must complete with (FERRY_XFER_SUCCESS = not injected). @p chan is the DMA channel handle it
 * was submitted on, or NULL (then only FERRY_MOCK_CHAN_ANY rules and random injection apply).
 * Call it once per operation, at submit time, so that injection stays deterministic.
 */
enum ferry_xfer_status mock_inject_take(struct mock_dev *dev, void *chan);

#endif /* MOCK_INTERNAL_H */
