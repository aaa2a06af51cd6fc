/*
 * Layout of a mock device's PCIe channel (one memfd, separate from the host-memory memfd):
 * the header, then per PCI function a request ring (host -> firmware BAR0 accesses) and an
 * MSI-X block (firmware -> host interrupt counters). Shared by the device side
 * (mock_pcie_ep.c) and the host side (mock_pcie_host.c); everything the other process may
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
#ifndef MOCK_PCIE_SHM_H
#define MOCK_PCIE_SHM_H

#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <ferry/mock.h>
#include <ferry/mock_pcie.h>

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

#endif /* MOCK_PCIE_SHM_H */
