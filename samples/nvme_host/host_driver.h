/*
 * A small userspace NVMe host driver for the mock backend's PCIe endpoint: what a host OS
 * does with the card, run in a separate process. It maps the mock's host memory and PCIe
 * channel (ferry/mock.h, ferry/mock_pcie.h), programs the function's IOMMU for every buffer it
 * hands to the controller, brings the controller up (CC.EN -> CSTS.RDY), identifies it,
 * creates I/O queue pairs (one MSI-X vector per completion queue), submits commands with PRPs
 * (lists chained when long) or SGLs (data block, or segments), reaps completions by phase tag
 * after an interrupt or by polling, and resets (CC.EN = 0 -> CSTS.RDY = 0 -> init again).
 *
 * Not thread-safe: one thread drives one nvmeh_ctrlr. Every wait is bounded.
 * Errors: 0 or a negative errno; NVMe statuses are reported to the callbacks / out params.
 */
#ifndef NVMEH_HOST_DRIVER_H
#define NVMEH_HOST_DRIVER_H

#include <stddef.h>
#include <stdint.h>
#include <ferry/nvme_spec.h>

#define NVMEH_PAGE 4096u

/* Status given to the callbacks of commands dropped by a reset (not an NVMe status). */
#define NVMEH_STATUS_RESET 0xffffu

/* ---- host memory: DMA-able buffers mapped in the function's IOMMU -------------------- */

struct nvmeh_mem;

/* A buffer in host RAM: contiguous in IOVA space, its host pages possibly scattered. */
struct nvmeh_buf {
	void *va;            /* this process's pointer (only valid if the host pages are contiguous,
			   else NULL: use nvmeh_buf_ptr()) */
	uint64_t iova;       /* what the controller sees */
	uint64_t len;        /* bytes (a multiple of the page size) */
	uint32_t first_page; /* internal: index in the allocator's page table */
};

#define NVMEH_MEM_READ 1u    /* the device may read the buffer */
#define NVMEH_MEM_WRITE 2u   /* the device may write the buffer */
#define NVMEH_MEM_SCATTER 4u /* take host pages in descending order (not contiguous) */

int nvmeh_mem_open(int mem_fd, unsigned int fn, struct nvmeh_mem **out);
/* Give function @p fn_name the same IOMMU mappings as the controller's function, at the same
 * IOVAs (before the first allocation; its table is cleared first). */
int nvmeh_mem_share(struct nvmeh_mem *m, const char *fn_name);
void nvmeh_mem_close(struct nvmeh_mem *m);
/* Allocates len bytes (rounded up to pages), zeroed, mapped with the given permissions. */
int nvmeh_mem_alloc(struct nvmeh_mem *m, uint64_t len, uint32_t flags, struct nvmeh_buf *out);
void nvmeh_mem_free(struct nvmeh_mem *m, struct nvmeh_buf *b);
/* Local pointer to byte @p off of @p b, valid up to the end of its page (NULL if out of range). */
void *nvmeh_buf_ptr(struct nvmeh_mem *m, const struct nvmeh_buf *b, uint64_t off);
/* Copies between a local buffer and a (possibly scattered) host buffer. */
int nvmeh_buf_write(struct nvmeh_mem *m, const struct nvmeh_buf *b, uint64_t off, const void *src,
		    uint64_t len);
int nvmeh_buf_read(struct nvmeh_mem *m, const struct nvmeh_buf *b, uint64_t off, void *dst,
		   uint64_t len);
/* Unmaps the buffer's IOVA pages without freeing them (a test of IOMMU enforcement). */
int nvmeh_mem_unmap(struct nvmeh_mem *m, const struct nvmeh_buf *b);
/* Pages in use, for leak checks. */
uint64_t nvmeh_mem_pages_used(const struct nvmeh_mem *m);

/* ---- controller ----------------------------------------------------------------------- */

struct nvmeh_ctrlr;

struct nvmeh_opts {
	size_t size;              /* sizeof(struct nvmeh_opts) */
	int mem_fd;               /* ferry_mock_host_fd() (or a dup) */
	int pcie_fd;              /* ferry_mock_pcie_fd() (or a dup) */
	unsigned int fn;          /* PCI function index */
	uint16_t io_queues;       /* I/O queue pairs wanted (0 = 1) */
	uint32_t queue_entries;   /* entries per I/O queue (0 = 128; capped by CAP.MQES) */
	uint32_t admin_entries;   /* entries of the admin queues (0 = 32) */
	int poll_mode;            /* 1: no interrupts (IEN = 0), completions by polling */
	uint64_t mmio_timeout_ns; /* per MMIO access (0 = 1 s) */
	uint64_t cmd_timeout_ns;  /* admin commands and nvmeh_wait() defaults (0 = 5 s) */
	const char *share_fn;     /* another function mapping every buffer too (NULL: none) */
};

/* Maps the memories and the BAR; the controller is untouched (call nvmeh_init()). */
int nvmeh_open(const struct nvmeh_opts *opts, struct nvmeh_ctrlr **out);
/* Disables if needed, then frees everything of the host side (never touches the device
 * after a failed MMIO). */
void nvmeh_close(struct nvmeh_ctrlr *c);

/* Full bring-up: disable (wait RDY = 0), admin queues, CC.EN = 1 (wait RDY = 1 within
 * CAP.TO), Identify Controller and Namespace 1, Number of Queues, I/O CQ/SQ pairs. */
int nvmeh_init(struct nvmeh_ctrlr *c);
/* Controller reset: CC.EN = 0, wait RDY = 0, every outstanding command's callback gets
 * NVMEH_STATUS_RESET, then nvmeh_init(). */
int nvmeh_reset(struct nvmeh_ctrlr *c);
/* Normal shutdown: CC.SHN = 01b, wait CSTS.SHST = complete. */
int nvmeh_shutdown(struct nvmeh_ctrlr *c);

struct nvmeh_mem *nvmeh_get_mem(struct nvmeh_ctrlr *c);
const struct ferry_nvme_id_ctrlr *nvmeh_id_ctrlr(const struct nvmeh_ctrlr *c);
uint64_t nvmeh_cap(const struct nvmeh_ctrlr *c);
uint16_t nvmeh_io_queue_count(const struct nvmeh_ctrlr *c);
uint32_t nvmeh_io_queue_size(const struct nvmeh_ctrlr *c);
uint32_t nvmeh_max_xfer(const struct nvmeh_ctrlr *c); /* bytes (MDTS) */

/* Namespace 1 geometry (after nvmeh_init()). */
uint64_t nvmeh_ns_blocks(const struct nvmeh_ctrlr *c);
uint32_t nvmeh_ns_block_size(const struct nvmeh_ctrlr *c);

/* Registers (MMIO through the mock channel). */
int nvmeh_reg_read32(struct nvmeh_ctrlr *c, uint32_t off, uint32_t *val);
int nvmeh_reg_read64(struct nvmeh_ctrlr *c, uint32_t off, uint64_t *val);
int nvmeh_reg_write32(struct nvmeh_ctrlr *c, uint32_t off, uint32_t val);
int nvmeh_reg_write64(struct nvmeh_ctrlr *c, uint32_t off, uint64_t val);
/* Waits until (CSTS & mask) == want, within CAP.TO (or @p timeout_ns if non-zero). */
int nvmeh_wait_csts(struct nvmeh_ctrlr *c, uint32_t mask, uint32_t want, uint64_t timeout_ns);

/* How the data pointer of a command is built. */
enum nvmeh_dptr {
	NVMEH_PRP = 0,       /* PRP1/PRP2, PRP list (chained past one page of entries) */
	NVMEH_SGL = 1,       /* one SGL data block descriptor */
	NVMEH_SGL_SPLIT = 2, /* data blocks of at most sgl_chunk bytes in chained segments */
};

/* Completion callback: the CQE (status without phase in cqe->status >> 1), or NULL with
 * status NVMEH_STATUS_RESET when a reset dropped the command. */
typedef void (*nvmeh_cb)(void *arg, uint16_t status, const struct ferry_nvme_cqe *cqe);

/* Data of one command: a contiguous IOVA range (iova 0 / len 0: no data). */
struct nvmeh_data {
	uint64_t iova;
	uint32_t len;
	enum nvmeh_dptr mode;
	uint32_t sgl_chunk;   /* NVMEH_SGL_SPLIT: bytes per data block (0 = to page ends) */
	uint32_t sgl_per_seg; /* NVMEH_SGL_SPLIT: descriptors per segment, >= 2 (0 = 256) */
};

/*
 * Queues a command on I/O queue @p qid (1..n) or the admin queue (0). The CID is assigned;
 * @p cmd's dptr and PSDT bits are filled from @p data. The SQ tail doorbell is written unless
 * @p defer (then nvmeh_ring() does). -EAGAIN: no free slot (reap completions first).
 */
int nvmeh_submit(struct nvmeh_ctrlr *c, uint16_t qid, const struct ferry_nvme_sqe *cmd,
		 const struct nvmeh_data *data, nvmeh_cb cb, void *arg, int defer);
int nvmeh_ring(struct nvmeh_ctrlr *c, uint16_t qid);
/* Reaps up to @p max completions of queue @p qid (callbacks run), writes the CQ head
 * doorbell. Returns how many were reaped or a negative errno. */
int nvmeh_process(struct nvmeh_ctrlr *c, uint16_t qid, uint32_t max);
/* Reaps; if nothing was there, waits for the queue's interrupt (or polls in poll mode) at
 * most @p timeout_ns, then reaps again. Returns completions reaped (0 on timeout). */
int nvmeh_wait(struct nvmeh_ctrlr *c, uint16_t qid, uint64_t timeout_ns);
/* Reaps every I/O queue; if nothing was there, waits for any interrupt of the function (or
 * polls) at most @p timeout_ns, then reaps again. Returns completions reaped. */
int nvmeh_wait_all(struct nvmeh_ctrlr *c, uint64_t timeout_ns);
/* Commands submitted and not completed on @p qid. */
uint32_t nvmeh_outstanding(const struct nvmeh_ctrlr *c, uint16_t qid);
/* Interrupts seen for queue @p qid's vector (counter of the mock channel). */
uint64_t nvmeh_irqs(const struct nvmeh_ctrlr *c, uint16_t qid);

/* Synchronous admin command; @p data (may be NULL) is a host buffer of @p len bytes.
 * Returns 0 and the NVMe status in *status (0 = success), or a negative errno. */
int nvmeh_admin(struct nvmeh_ctrlr *c, struct ferry_nvme_sqe *cmd, const struct nvmeh_data *data,
		uint16_t *status, struct ferry_nvme_cqe *cqe_out);

/* Synchronous I/O on queue @p qid (read/write/compare...): returns 0 + *status, or -errno. */
int nvmeh_io_sync(struct nvmeh_ctrlr *c, uint16_t qid, struct ferry_nvme_sqe *cmd,
		  const struct nvmeh_data *data, uint16_t *status);

/* Builds a Read/Write/Compare command for namespace 1. */
void nvmeh_rw_cmd(struct ferry_nvme_sqe *cmd, uint8_t opcode, uint64_t slba, uint32_t nlb);

#endif /* NVMEH_HOST_DRIVER_H */
