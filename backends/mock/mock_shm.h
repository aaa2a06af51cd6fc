/*
 * Layout of a mock device's shared memory (one memfd): the control block, one IOMMU table per
 * PCI function, then host RAM. Both the device side and the host process map it; everything a
 * process other than the creator may change is read with atomics and bounds-checked.
 */
#ifndef MOCK_SHM_H
#define MOCK_SHM_H

#include <stdatomic.h>
#include <stdint.h>
#include <ferry/mock.h>

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

#endif /* MOCK_SHM_H */
