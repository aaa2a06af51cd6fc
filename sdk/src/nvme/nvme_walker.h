/*
 * The PRP/SGL walker: turns a command's data pointer (PRP1/PRP2 and PRP lists, or an SGL with
 * its segments) into a list of host address ranges, checking every address and length.
 *
 * Pure: it never touches host memory itself. When it needs a PRP list or SGL segment chunk it
 * returns NVME_WALK_NEED_READ with rd_addr/rd_len set; the caller reads those bytes from host
 * memory (asynchronously, through the host domain) into w->rdbuf and calls nvme_walker_step()
 * again, or calls nvme_walker_read_failed(). Outputs are host addresses (never dereferenced).
 * nvme_walk_sync() drives the walker with a synchronous read callback (tests, fuzzing).
 *
 * Never installed; also compiled alone into the fuzz target (no other libferry dependency).
 */
#ifndef FERRY_NVME_WALKER_H
#define FERRY_NVME_WALKER_H

#include <stdint.h>
#include <sys/uio.h>
#include <ferry/nvme_spec.h>

/* Bytes the walker asks for at most per read (64 PRP entries, 32 SGL descriptors). */
#define NVME_WALK_RDBUF 512

enum nvme_walk_rc {
	NVME_WALK_ERROR = -1,    /* w->status holds the NVMe status */
	NVME_WALK_DONE = 0,      /* w->iov[0..iovcnt) describes exactly xfer_len bytes */
	NVME_WALK_NEED_READ = 1, /* read rd_len bytes at rd_addr into rdbuf, then step again */
};

/* Segment kinds in w->kind[] (only when the caller asked for kinds). */
#define NVME_WALK_SEG_DATA 0
#define NVME_WALK_SEG_BUCKET 1 /* SGL bit bucket: controller-to-host data is discarded */

struct nvme_walk_params {
	const struct ferry_nvme_sqe *sqe; /* only flags and dptr are read (copied at init) */
	uint64_t xfer_len;                /* bytes the command transfers (> 0) */
	uint32_t page_size;               /* host memory page size, power of two >= 4096 */
	uint32_t max_sgl_desc;            /* SGL descriptors accepted in total (>= 1) */
	int allow_sgl;                    /* 0: PSDT != 0 gets Invalid Field */
	int c2h;                          /* data goes controller to host (bit buckets allowed) */
};

struct nvme_walker {
	/* outputs */
	struct iovec *iov;  /* caller's array: iov_base = host address */
	uint8_t *kind;      /* caller's array of NVME_WALK_SEG_* or NULL (no bit buckets) */
	uint32_t iov_cap;
	uint32_t iovcnt;
	uint64_t mapped;    /* bytes described so far */
	uint16_t status;    /* NVMe status (SCT << 8 | SC) when NVME_WALK_ERROR */
	int has_bucket;     /* a bit bucket segment was produced */
	/* pending read */
	uint64_t rd_addr;
	uint32_t rd_len;
	uint64_t rdbuf[NVME_WALK_RDBUF / 8];
	/* private */
	struct nvme_walk_params p;
	union ferry_nvme_dptr dptr;
	uint8_t psdt;
	int state;
	uint64_t list_addr;  /* PRP: next list entry / SGL: next descriptor */
	uint32_t slots_left; /* PRP: entries left in this list page / SGL: descriptors in segment */
	uint32_t rd_count;   /* entries requested by the pending read */
	int last_segment;    /* SGL: the current segment was reached by a Last Segment desc */
	uint32_t ndesc;      /* SGL descriptors seen */
	uint32_t reads;      /* reads requested (bounded) */
};

/* Prepare a walk. iov/kind arrays of iov_cap entries are owned by the caller. */
void nvme_walker_init(struct nvme_walker *w, const struct nvme_walk_params *p, struct iovec *iov,
		      uint8_t *kind, uint32_t iov_cap);

/* Start or continue (after a NEED_READ was satisfied). */
int nvme_walker_step(struct nvme_walker *w);

/* The pending read failed (host memory fault): the walk ends with Data Transfer Error. */
int nvme_walker_read_failed(struct nvme_walker *w);

/* Drive a walk with a synchronous reader returning 0 or non-zero on failure. */
typedef int (*nvme_walk_read_fn)(void *ctx, uint64_t addr, void *buf, uint32_t len);
int nvme_walk_sync(struct nvme_walker *w, nvme_walk_read_fn read, void *ctx);

/* Number of iovec entries a PRP walk of xfer_len bytes can need at most. */
uint32_t nvme_walk_prp_max_iov(uint64_t xfer_len, uint32_t page_size);

#endif /* FERRY_NVME_WALKER_H */
