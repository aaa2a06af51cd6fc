/*
 * The nvmf bdev: ferry_bdev_nvmf_create()/get_stats()/get_state(), the bdev ops (read, write,
 * compare, flush, write zeroes, unmap as Dataset Management deallocate, poll, destroy), the
 * staging-buffer pool for I/O in another memory domain or carrying an accel sequence, and the
 * pending list of I/Os waiting for a slot or a connection (linked through their module state,
 * so nothing is allocated per I/O).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <ferry/accel.h>
#include <ferry/bdev_nvmf.h>
#include "core_internal.h"
#include "nvmf_internal.h"

/* Module state of an I/O: see nvmf_internal.h. */
#define IO_NEXT(io) (ferry_bdev_io_module(io)->ctx)
#define IO_STAGE(io) (ferry_bdev_io_module(io)->iov[1].iov_len)
#define IO_ISSUED(io) (ferry_bdev_io_module(io)->words[0]) /* blocks sent as commands */
#define IO_PARTS(io) (ferry_bdev_io_module(io)->words[1])  /* in flight | IO_F_* */
#define IO_STATUS(io) (ferry_bdev_io_module(io)->words[2]) /* first failure, (uint64_t)errno */
#define IO_PARTS_MASK 0xffffffffull
#define IO_F_PENDING (1ull << 32)  /* on the pending list */
#define IO_F_LOST (1ull << 33)     /* a part was lost with its connection: retry or fail */
#define IO_F_NODDP (1ull << 34)    /* parts are not offloaded (a redo) */
#define IO_F_PARTPUSH (1ull << 35) /* each part pushes its own bytes out of staging */
#define IO_F_STAGED (1ull << 36)   /* counted in staged_ios */
#define IO_F_REDO (1ull << 37)     /* a part asked for a redo without offload */
#define IO_F_KEEP (IO_F_NODDP | IO_F_PARTPUSH | IO_F_STAGED) /* flags a resubmission keeps */

/* Blocks one command of @p io can carry: the transfer limit for data, the 16-bit NLB of
 * Write Zeroes, the 32-bit NLB of a Dataset Management range. */
static uint64_t part_blocks(const struct nvmf_ctrlr *c, const struct ferry_bdev_io *io)
{
	switch (io->type) {
	case FERRY_BDEV_IO_READ:
	case FERRY_BDEV_IO_WRITE:
	case FERRY_BDEV_IO_COMPARE:
		return c->max_xfer / c->block_size;
	case FERRY_BDEV_IO_WRITE_ZEROES:
		return 65536;
	case FERRY_BDEV_IO_UNMAP:
		return UINT32_MAX;
	default:
		return UINT64_MAX; /* flush: one command */
	}
}

static uint64_t io_total_blocks(const struct ferry_bdev_io *io)
{
	return io->type == FERRY_BDEV_IO_FLUSH ? 1 : io->num_blocks;
}

static uintptr_t io_retries(struct ferry_bdev_io *io)
{
	return (uintptr_t)ferry_bdev_io_module(io)->iov[1].iov_base;
}

static void io_set_retries(struct ferry_bdev_io *io, uintptr_t n)
{
	ferry_bdev_io_module(io)->iov[1].iov_base = (void *)n;
}

int nvmf_status_errno(uint16_t st)
{
	uint32_t sct = FERRY_NVME_STATUS_SCT(st), sc = FERRY_NVME_STATUS_SC(st);
	if (!sct && !sc)
		return 0;
	if (sct == FERRY_NVME_SCT_GENERIC) {
		switch (sc) {
		case FERRY_NVME_SC_INVALID_OPCODE:
			return -ENOTSUP;
		case FERRY_NVME_SC_INVALID_FIELD:
		case FERRY_NVME_SC_INVALID_NS:
			return -EINVAL;
		case FERRY_NVME_SC_LBA_RANGE:
			return -ERANGE;
		default:
			return -EIO;
		}
	}
	if (sct == FERRY_NVME_SCT_MEDIA &&
	    (sc == FERRY_NVME_SC_COMPARE_FAILURE || sc == FERRY_NVME_SC_GUARD_CHECK ||
	     sc == FERRY_NVME_SC_APPTAG_CHECK || sc == FERRY_NVME_SC_REFTAG_CHECK))
		return -EILSEQ;
	return -EIO;
}

static const char *io_type_name(enum ferry_bdev_io_type t)
{
	static const char *const names[] = {"read",         "write", "flush",
					    "write zeroes", "unmap", "compare"};
	return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : "I/O";
}

static void io_error_detail(struct ferry_bdev_io *io, uint16_t st, uint64_t part_lba)
{
	uint32_t sct = FERRY_NVME_STATUS_SCT(st), sc = FERRY_NVME_STATUS_SC(st);
	if (sct != FERRY_NVME_SCT_MEDIA)
		return;
	io->error_block = part_lba;
	switch (sc) {
	case FERRY_NVME_SC_COMPARE_FAILURE:
		io->error = FERRY_BDEV_ERR_MISCOMPARE;
		break;
	case FERRY_NVME_SC_GUARD_CHECK:
		io->error = FERRY_BDEV_ERR_GUARD;
		break;
	case FERRY_NVME_SC_APPTAG_CHECK:
		io->error = FERRY_BDEV_ERR_APPTAG;
		break;
	case FERRY_NVME_SC_REFTAG_CHECK:
		io->error = FERRY_BDEV_ERR_REFTAG;
		break;
	case FERRY_NVME_SC_UNRECOVERED_READ:
		io->error = FERRY_BDEV_ERR_READ;
		break;
	case FERRY_NVME_SC_WRITE_FAULT:
		io->error = FERRY_BDEV_ERR_WRITE;
		break;
	default:
		break;
	}
}

static int io_staged(const struct ferry_bdev_io *io)
{
	if (io->type != FERRY_BDEV_IO_READ && io->type != FERRY_BDEV_IO_WRITE &&
	    io->type != FERRY_BDEV_IO_COMPARE)
		return 0;
	return io->seq || (io->mem.domain && io->mem.domain != ferry_memdomain_system()) ||
	       io->mem.iovcnt > NVMF_SLOT_IOV;
}

static void stage_put(struct nvmf_ctrlr *c, struct ferry_bdev_io *io)
{
	if (IO_STAGE(io)) {
		c->staging_free[c->staging_nfree++] = (uint32_t)(IO_STAGE(io) - 1);
		IO_STAGE(io) = 0;
	}
}

/* The end of an I/O, any path: return the staging buffer, abort an unconsumed sequence. */
static void io_finish(struct nvmf_ctrlr *c, struct ferry_bdev_io *io, int status)
{
	stage_put(c, io);
	if (io->seq) {
		ferry_seq_abort(io->seq);
		io->seq = NULL;
	}
	if (status)
		c->st.io_errors++;
	ferry_bdev_io_complete(io, status);
}

static void pend_push(struct nvmf_ctrlr *c, struct ferry_bdev_io *io, int front)
{
	IO_PARTS(io) |= IO_F_PENDING;
	IO_NEXT(io) = NULL;
	if (!c->pend_head) {
		c->pend_head = c->pend_tail = io;
	} else if (front) {
		IO_NEXT(io) = c->pend_head;
		c->pend_head = io;
	} else {
		IO_NEXT(c->pend_tail) = io;
		c->pend_tail = io;
	}
}

static struct ferry_bdev_io *pend_pop(struct nvmf_ctrlr *c)
{
	struct ferry_bdev_io *io = c->pend_head;
	if (io) {
		c->pend_head = IO_NEXT(io);
		if (!c->pend_head)
			c->pend_tail = NULL;
		IO_PARTS(io) &= ~IO_F_PENDING;
	}
	return io;
}

/* Take @p io off the pending list (rare: a part failed or was lost while more waited). */
static void pend_unlink(struct nvmf_ctrlr *c, struct ferry_bdev_io *io)
{
	struct ferry_bdev_io *prev = NULL;
	for (struct ferry_bdev_io *p = c->pend_head; p; prev = p, p = IO_NEXT(p)) {
		if (p != io)
			continue;
		if (prev)
			IO_NEXT(prev) = IO_NEXT(p);
		else
			c->pend_head = IO_NEXT(p);
		if (c->pend_tail == p)
			c->pend_tail = prev;
		break;
	}
	IO_PARTS(io) &= ~IO_F_PENDING;
}

/* The I/O's status once its last part is back: the first failure, else 0. */
static int io_status(struct ferry_bdev_io *io)
{
	return (int)(int64_t)IO_STATUS(io);
}

static void io_part_failed(struct ferry_bdev_io *io, int status)
{
	if (!IO_STATUS(io))
		IO_STATUS(io) = (uint64_t)(int64_t)status;
	IO_ISSUED(io) = io_total_blocks(io); /* send no more parts */
}

/* Put one command of @p io, @p nblk blocks from block @p rel of the I/O, on a slot of one of
 * the I/O queues; -EBUSY if every queue is full. */
static int part_start(struct nvmf_ctrlr *c, struct ferry_bdev_io *io, uint64_t rel, uint64_t nblk)
{
	struct nvmf_slot *s = NULL;
	for (uint16_t k = 0; k < c->nq && !s; k++) {
		struct nvmf_qpair *q = &c->ioq[(c->next_q + k) % c->nq];
		s = nvmf_slot_get(q);
	}
	if (!s)
		return -EBUSY;
	c->next_q = (c->next_q + 1) % c->nq;
	struct ferry_nvme_sqe *e = &s->sqe;
	uint32_t bs = c->block_size;
	uint64_t lba = io->offset_blocks + rel;
	e->nsid = c->nsid;
	e->cdw10 = (uint32_t)lba;
	e->cdw11 = (uint32_t)(lba >> 32);
	e->cdw12 = nblk ? (uint32_t)(nblk - 1) : 0;
	s->io = io;
	const struct iovec *iov = IO_STAGE(io) ? ferry_bdev_io_module(io)->iov : io->mem.iov;
	if (c->rdma && !IO_STAGE(io) && io->type != FERRY_BDEV_IO_UNMAP) {
		/* RDMA-direct: the keyed SGL names the I/O's own memory (nvmf_rdma.c) */
		s->rdirect = 1;
		if (io->mem.domain && io->mem.domain != ferry_memdomain_system()) {
			s->data_dom = io->mem.domain;
			s->data_dom_ctx = io->mem.domain_ctx;
		}
	}
	uint32_t cnt = IO_STAGE(io) ? 1 : io->mem.iovcnt;
	switch (io->type) {
	case FERRY_BDEV_IO_READ:
		e->opcode = FERRY_NVME_CMD_READ;
		s->dir = 2;
		break;
	case FERRY_BDEV_IO_WRITE:
		e->opcode = FERRY_NVME_CMD_WRITE;
		if (io->flags & FERRY_BDEV_IO_F_FUA)
			e->cdw12 |= 1u << 30;
		s->dir = 1;
		break;
	case FERRY_BDEV_IO_COMPARE:
		e->opcode = FERRY_NVME_CMD_COMPARE;
		s->dir = 1;
		break;
	case FERRY_BDEV_IO_FLUSH:
		e->opcode = FERRY_NVME_CMD_FLUSH;
		e->cdw10 = e->cdw11 = e->cdw12 = 0;
		break;
	case FERRY_BDEV_IO_WRITE_ZEROES:
		e->opcode = FERRY_NVME_CMD_WRITE_ZEROES;
		break;
	case FERRY_BDEV_IO_UNMAP:
		e->opcode = FERRY_NVME_CMD_DSM;
		e->cdw10 = 0;       /* one range */
		e->cdw11 = 1u << 2; /* AD: deallocate */
		e->cdw12 = 0;
		s->dsm.attributes = 0;
		s->dsm.nlb = (uint32_t)nblk;
		s->dsm.slba = lba;
		s->dsm_iov.iov_base = &s->dsm;
		s->dsm_iov.iov_len = sizeof(s->dsm);
		iov = &s->dsm_iov;
		cnt = 1;
		s->dir = 1;
		break;
	default:
		break;
	}
	if (s->dir) {
		s->data = iov;
		s->data_cnt = cnt;
		if (io->type == FERRY_BDEV_IO_UNMAP) {
			s->len = (uint32_t)sizeof(s->dsm);
		} else {
			s->data_off = (uint32_t)(rel * bs);
			s->len = (uint32_t)(nblk * bs);
		}
	}
	if (io->type == FERRY_BDEV_IO_READ) {
		/* Each part of a host-memory read pushes its own bytes from staging at its end:
		 * all of them, or (placed by the NIC into host memory) only its misses. */
		if (IO_PARTS(io) & IO_F_PARTPUSH) {
			s->part_push = 1;
			s->nmiss = 1;
			s->miss[0].off = 0;
			s->miss[0].len = s->len;
		}
	}
	int rc = nvmf_slot_submit(s);
	if (rc) {
		nvmf_slot_put(s);
		return rc;
	}
	/* Mapped before the command goes out (submit only queued it; the flush sends it): its
	 * first C2HData may follow at once. */
	if (io->type == FERRY_BDEV_IO_READ && s->q->ddp && !(IO_PARTS(io) & IO_F_NODDP)) {
		int other = IO_STAGE(io) && !io->seq && io->mem.domain &&
			    io->mem.domain != ferry_memdomain_system();
		nvmf_ddp_map(s, &io->mem, other);
	}
	return 0;
}

void nvmf_io_staged(struct nvmf_ctrlr *c, struct ferry_bdev_io *io, size_t bytes)
{
	c->st.staged_bytes += bytes;
	if (!(IO_PARTS(io) & IO_F_STAGED)) {
		IO_PARTS(io) |= IO_F_STAGED;
		c->st.staged_ios++;
	}
}

/*
 * Send the parts of @p io not sent yet, as many as free slots allow. -EBUSY: parts remain
 * (the caller puts the I/O on the pending list; the completions of its parts in flight free
 * slots, so a split larger than every queue never deadlocks). Otherwise 0: every part went
 * out, or a part could not be built and the I/O is done (finished here when none is in
 * flight, else when its last part comes back).
 */
static int io_issue(struct nvmf_ctrlr *c, struct ferry_bdev_io *io)
{
	uint64_t total = io_total_blocks(io), per = part_blocks(c, io);
	while (IO_ISSUED(io) < total) {
		uint64_t rel = IO_ISSUED(io);
		uint64_t n = FERRY_MIN(per, total - rel);
		int rc = part_start(c, io, rel, io->type == FERRY_BDEV_IO_FLUSH ? 0 : n);
		if (rc == -EBUSY)
			return rc;
		if (rc) {
			io_part_failed(io, rc);
			break;
		}
		IO_ISSUED(io) = rel + n;
		IO_PARTS(io)++;
		if (!rel && n < total)
			c->st.split_ios++;
	}
	if (!(IO_PARTS(io) & IO_PARTS_MASK))
		io_finish(c, io, io_status(io));
	return 0;
}

void nvmf_io_kick(struct nvmf_ctrlr *c)
{
	struct ferry_bdev_io *io;
	while (c->state == FERRY_BDEV_NVMF_CONNECTED && (io = pend_pop(c))) {
		if (io_issue(c, io) == -EBUSY) {
			pend_push(c, io, 1);
			return;
		}
	}
}

static void io_dispatch(struct nvmf_ctrlr *c, struct ferry_bdev_io *io)
{
	if (c->state == FERRY_BDEV_NVMF_FAILED) {
		io_finish(c, io, -ENODEV);
		return;
	}
	if (c->state != FERRY_BDEV_NVMF_CONNECTED || c->pend_head) {
		pend_push(c, io, 0);
		return;
	}
	if (io_issue(c, io) == -EBUSY)
		pend_push(c, io, 0);
}

/* A part of @p io went with its connection. Once the last part in flight is gone, the whole
 * I/O is resubmitted (every part again) or failed, exactly once. */
static void io_lost_done(struct nvmf_ctrlr *c, struct ferry_bdev_io *io)
{
	if (IO_PARTS(io) & IO_F_PENDING)
		pend_unlink(c, io);
	uint64_t fl = IO_PARTS(io);
	IO_PARTS(io) = fl & IO_F_KEEP;
	int status = io_status(io);
	/* A redo without offload (the NIC's verdict could not be trusted or checked) does not
	 * count against retry_count: it happens once, the redo itself is never offloaded. */
	if (!status && (fl & IO_F_REDO) && !(fl & IO_F_LOST) &&
	    c->state != FERRY_BDEV_NVMF_FAILED) {
		IO_PARTS(io) |= IO_F_NODDP;
		IO_ISSUED(io) = 0;
		pend_push(c, io, 0);
		return;
	}
	if (!status && io_retries(io) < c->opts.retry_count && c->state != FERRY_BDEV_NVMF_FAILED) {
		io_set_retries(io, io_retries(io) + 1);
		c->st.retries++;
		IO_ISSUED(io) = 0;
		if (fl & IO_F_REDO)
			IO_PARTS(io) |= IO_F_NODDP;
		pend_push(c, io, 0);
		return;
	}
	io_finish(c, io, status ? status : -EIO);
}

void nvmf_io_part_lost(struct nvmf_ctrlr *c, struct ferry_bdev_io *io)
{
	IO_PARTS(io) = (IO_PARTS(io) - 1) | IO_F_LOST;
	if (!(IO_PARTS(io) & IO_PARTS_MASK))
		io_lost_done(c, io);
}

void nvmf_io_fail_pending(struct nvmf_ctrlr *c, int status)
{
	struct ferry_bdev_io *io;
	while ((io = pend_pop(c))) {
		if (IO_PARTS(io) & IO_PARTS_MASK) {
			io_part_failed(io, status); /* its last part in flight finishes it */
			continue;
		}
		io_finish(c, io, io_status(io) ? io_status(io) : status);
	}
}

static void read_copy_done(void *arg, int status)
{
	struct ferry_bdev_io *io = arg;
	struct nvmf_ctrlr *c = ferry_bdev_get_ctx(io->bdev);
	io->seq = NULL; /* consumed (a push has none) */
	if (status == -EFAULT || status == -EIO) {
		io->error = FERRY_BDEV_ERR_TRANSFER;
		io->error_block = io->offset_blocks;
	}
	io_finish(c, io, status);
}

void nvmf_slot_complete(struct nvmf_slot *s)
{
	struct nvmf_qpair *q = s->q;
	struct nvmf_ctrlr *c = q->c;
	struct ferry_bdev_io *io = s->io;
	int status = s->status;
	uint16_t st = (uint16_t)(s->cqe.status >> 1);

	if (!io) {
		if (s->is_ka) {
			c->ka_sent_ns = 0;
			nvmf_slot_put(s);
		} else {
			s->done = 1; /* a synchronous admin command: its waiter puts the slot */
		}
		return;
	}
	uint32_t len = s->len;
	int redo = s->ddp_redo;
	int direct = s->rdirect && s->dir && !s->icd;
	uint64_t lba = s->sqe.cdw10 | (uint64_t)s->sqe.cdw11 << 32;
	uint64_t nblk = (uint64_t)(s->sqe.cdw12 & 0xffff) + 1;
	if (io->type == FERRY_BDEV_IO_UNMAP) {
		lba = s->dsm.slba;
		nblk = s->dsm.nlb;
	}
	nvmf_slot_put(s);
	IO_PARTS(io)--;
	if (redo && !(IO_PARTS(io) & IO_F_NODDP)) {
		/* Read this I/O again without offload once its other parts are back (their
		 * status is kept: a real error still fails it). */
		IO_PARTS(io) |= IO_F_REDO;
		IO_ISSUED(io) = io_total_blocks(io); /* send no more parts */
		if (IO_PARTS(io) & IO_F_PENDING)
			pend_unlink(c, io);
		status = 0;
	} else if (redo && !status) {
		/* already redone without offload (a push that did not fit): fail */
		status = -EIO;
	}
	if (status && !IO_STATUS(io)) {
		static struct log_ratelimit rl;
		if (st) {
			/* the controller's verdict: reason to ferry_last_error() always, to the
			 * log rate limited (a remote party decides how often) */
			ferry_set_last_error(NVMF_COMP,
					     "'%s': %s of %llu blocks at LBA %llu failed: "
					     "NVMe status SCT 0x%x SC 0x%02x",
					     c->name, io_type_name(io->type),
					     (unsigned long long)nblk, (unsigned long long)lba,
					     FERRY_NVME_STATUS_SCT(st), FERRY_NVME_STATUS_SC(st));
			int miscompare = FERRY_NVME_STATUS_SCT(st) == FERRY_NVME_SCT_MEDIA &&
					 FERRY_NVME_STATUS_SC(st) == FERRY_NVME_SC_COMPARE_FAILURE;
			if (!miscompare && log_ratelimit(&rl, NULL))
				FERRY_ERR(NVMF_COMP,
					  "'%s': %s of %llu blocks at LBA %llu failed: "
					  "NVMe status SCT 0x%x SC 0x%02x",
					  c->name, io_type_name(io->type), (unsigned long long)nblk,
					  (unsigned long long)lba, FERRY_NVME_STATUS_SCT(st),
					  FERRY_NVME_STATUS_SC(st));
		}
		io_error_detail(io, st, lba);
		io_part_failed(io, status);
		if (IO_PARTS(io) & IO_F_PENDING)
			pend_unlink(c, io);
	} else if (!status && !redo) {
		if (io->type == FERRY_BDEV_IO_READ)
			c->st.bytes_read += len;
		else if (io->type == FERRY_BDEV_IO_WRITE)
			c->st.bytes_written += len;
		if (direct)
			c->st.rdma_direct_bytes += len;
	}
	/* The I/O is done when its last part is back and no part waits to be sent (one on the
	 * pending list goes out from the kick below); with a part lost, retried or failed. */
	if (!(IO_PARTS(io) & IO_PARTS_MASK) && (IO_PARTS(io) & (IO_F_LOST | IO_F_REDO))) {
		io_lost_done(c, io);
		nvmf_io_kick(c);
		return;
	}
	if (IO_PARTS(io) & (IO_PARTS_MASK | IO_F_PENDING)) {
		nvmf_io_kick(c);
		return;
	}
	if (IO_ISSUED(io) < io_total_blocks(io)) {
		/* parts remain, the I/O not queued: not reached (io_issue() queues it whenever
		 * it stops short), kept so that no I/O can be forgotten */
		pend_push(c, io, 1);
		nvmf_io_kick(c);
		return;
	}
	if (IO_STATUS(io)) {
		io_finish(c, io, io_status(io));
	} else if (io->type == FERRY_BDEV_IO_READ && IO_STAGE(io) &&
		   !(IO_PARTS(io) & IO_F_PARTPUSH)) {
		struct ferry_bdev_module_state *m = ferry_bdev_io_module(io);
		int rc;
		if (io->seq) {
			rc = ferry_seq_append_copy(io->seq, &io->mem, &m->mem, NULL, NULL);
			if (!rc)
				rc = ferry_seq_reverse(io->seq);
			if (!rc)
				rc = ferry_seq_finish(io->seq, read_copy_done, io);
		} else {
			rc = ferry_memdomain_push(&io->mem, &m->mem, read_copy_done, io);
		}
		if (rc) {
			FERRY_ERR(NVMF_COMP,
				  "'%s': cannot copy read data out of the staging buffer: %s",
				  c->name, ferry_strerror(rc));
			io_finish(c, io, rc);
		}
	} else {
		io_finish(c, io, 0);
	}
	nvmf_io_kick(c);
}

static void write_staged(void *arg, int status)
{
	struct ferry_bdev_io *io = arg;
	struct nvmf_ctrlr *c = ferry_bdev_get_ctx(io->bdev);
	io->seq = NULL;
	if (status) {
		if (status == -EFAULT || status == -EIO) {
			io->error = FERRY_BDEV_ERR_TRANSFER;
			io->error_block = io->offset_blocks;
		}
		io_finish(c, io, status);
		return;
	}
	io_dispatch(c, io);
}

static int nvmf_submit(struct ferry_bdev *bdev, struct ferry_bdev_io *io)
{
	struct nvmf_ctrlr *c = ferry_bdev_get_ctx(bdev);
	uint64_t len = io->num_blocks * c->block_size;
	int data = io->type == FERRY_BDEV_IO_READ || io->type == FERRY_BDEV_IO_WRITE ||
		   io->type == FERRY_BDEV_IO_COMPARE;

	/* Larger than one command's transfer: split into parts (io_issue()); the parts slice
	 * the I/O's iovecs by a 32-bit offset. */
	if (data && (len > UINT32_MAX || c->max_xfer < c->block_size)) {
		FERRY_ERR(NVMF_COMP,
			  "'%s': I/O of %llu bytes cannot be sent (largest transfer %u, block %u)",
			  c->name, (unsigned long long)len, c->max_xfer, c->block_size);
		return -EINVAL;
	}
	if (io->seq && io->type == FERRY_BDEV_IO_COMPARE) {
		FERRY_ERR(NVMF_COMP, "'%s': compare with an I/O sequence is not supported",
			  c->name);
		return -ENOTSUP;
	}
	IO_NEXT(io) = NULL;
	IO_STAGE(io) = 0;
	IO_ISSUED(io) = IO_PARTS(io) = IO_STATUS(io) = 0;
	io_set_retries(io, 0);
	if (c->state == FERRY_BDEV_NVMF_FAILED) {
		io_finish(c, io, -ENODEV);
		return 0;
	}
	/* RDMA: an I/O whose memory the NIC reaches (registered local memory, host memory
	 * through nic_domain) and without a sequence moves straight from/to that memory;
	 * anything else is staged (nvmf_rdma_io_direct() counts and logs which). */
	int direct = c->rdma && data ? nvmf_rdma_io_direct(c, io) : !io_staged(io);
	if (direct) {
		io_dispatch(c, io);
		return 0;
	}
	if (len > c->staging_size) {
		FERRY_ERR(NVMF_COMP,
			  "'%s': a staged I/O (other domain or sequence) is limited to %u bytes",
			  c->name, c->staging_size);
		return -EINVAL;
	}
	if (!c->staging_nfree)
		return -ENOMEM;
	uint32_t b = c->staging_free[--c->staging_nfree];
	struct ferry_bdev_module_state *m = ferry_bdev_io_module(io);
	IO_STAGE(io) = b + 1;
	m->iov[0].iov_base = c->staging + (size_t)b * c->staging_size;
	m->iov[0].iov_len = len;
	m->mem.domain = NULL;
	m->mem.domain_ctx = NULL;
	m->mem.iov = m->iov;
	m->mem.iovcnt = 1;
	if (io->type == FERRY_BDEV_IO_READ && !io->seq && c->ddp_host &&
	    io->mem.iovcnt <= NVMF_PUSH_IOV &&
	    !(io->mem.domain == NULL || io->mem.domain == ferry_memdomain_system())) {
		/* A read into another domain a NIC may place into (host memory): each part
		 * pushes what went through staging (all of it, or only what the NIC did not
		 * place), counted then: 0 bytes when the NIC placed everything. A part's slice
		 * of the I/O's segments always fits one push. */
		IO_PARTS(io) |= IO_F_PARTPUSH;
	} else {
		c->st.staged_ios++;
		c->st.staged_bytes += len;
	}
	if (io->seq)
		c->st.seq_ios++;
	if (io->type == FERRY_BDEV_IO_READ) {
		io_dispatch(c, io);
		return 0;
	}
	int rc;
	if (io->seq) {
		rc = ferry_seq_append_copy(io->seq, &m->mem, &io->mem, NULL, NULL);
		if (rc) {
			stage_put(c, io);
			FERRY_ERR(NVMF_COMP,
				  "'%s': cannot append the copy to the I/O's sequence: %s", c->name,
				  ferry_strerror(rc));
			return rc;
		}
		rc = ferry_seq_finish(io->seq, write_staged, io);
	} else {
		rc = ferry_memdomain_pull(&io->mem, &m->mem, write_staged, io);
		if (rc) {
			stage_put(c, io);
			return rc;
		}
	}
	if (rc) {
		/* finish failed after the append: the sequence is consumed either way */
		FERRY_ERR(NVMF_COMP, "'%s': cannot run the I/O's sequence: %s", c->name,
			  ferry_strerror(rc));
		io_finish(c, io, rc);
	}
	return 0;
}

static int nvmf_poll_op(struct ferry_bdev *bdev, uint32_t max)
{
	(void)max;
	struct nvmf_ctrlr *c = ferry_bdev_get_ctx(bdev);
	if (c->in_poll)
		return 0;
	c->in_poll = 1;
	int rc = nvmf_ctrlr_poll(c);
	c->in_poll = 0;
	return rc;
}

static void ctrlr_free(struct nvmf_ctrlr *c)
{
	nvmf_ctrlr_disconnect(c);
	nvmf_io_fail_pending(c, -ENODEV);
	nvmf_linger_poll(c, 1);
	nvmf_qpair_fini(&c->admin);
	for (uint16_t i = 0; c->ioq && i < c->nq; i++)
		nvmf_qpair_fini(&c->ioq[i]);
	free(c->ioq);
	if (c->rdma)
		nvmf_rdma_teardown(c); /* the registration map: before the staging pool goes */
	if (c->group)
		c->nic->group_destroy(c->group);
	if (c->staging)
		munmap(c->staging, (size_t)NVMF_STAGING_MAX * c->staging_size);
	if (c->own_dev)
		ferry_device_close(c->dev);
	free(c->idbuf);
	free(c->cdata);
	free(c);
}

static void nvmf_destroy(struct ferry_bdev *bdev)
{
	struct nvmf_ctrlr *c = ferry_bdev_get_ctx(bdev);
	if (c)
		ctrlr_free(c);
}

const struct ferry_bdev_ops nvmf_bdev_ops = {
	.abi_version = FERRY_BDEV_OPS_ABI,
	.read = nvmf_submit,
	.write = nvmf_submit,
	.compare = nvmf_submit,
	.flush = nvmf_submit,
	.write_zeroes = nvmf_submit,
	.unmap = nvmf_submit,
	.destroy = nvmf_destroy,
	.poll = nvmf_poll_op,
};

static void gen_hostnqn(struct nvmf_ctrlr *c)
{
	uint8_t *u = c->hostid;
	if (getrandom(u, 16, 0) != 16) {
		uint64_t t = nvmf_now_ns();
		for (int i = 0; i < 16; i++)
			u[i] = (uint8_t)(t >> ((i % 8) * 8)) ^ (uint8_t)(i * 37);
	}
	u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
	u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
	snprintf(c->hostnqn, sizeof(c->hostnqn),
		 "nqn.2014-08.org.nvmexpress:uuid:%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
		 u[13], u[14], u[15]);
}

static int opts_check(const struct ferry_bdev_nvmf_opts *o)
{
	if (!o) {
		FERRY_ERR(NVMF_COMP, "create: NULL opts");
		return -EINVAL;
	}
	if (OPTS_SIZE_CHECK(NVMF_COMP, "create", o, struct ferry_bdev_nvmf_opts))
		return -EINVAL;
	if (!o->name || !o->name[0] || strlen(o->name) >= FERRY_BDEV_NAME_MAX) {
		FERRY_ERR(NVMF_COMP, "create: a name of 1..%d characters is required",
			  FERRY_BDEV_NAME_MAX - 1);
		return -EINVAL;
	}
	if (!o->addr || !o->addr[0] || strlen(o->addr) >= 128) {
		FERRY_ERR(NVMF_COMP, "create '%s': addr is required", o->name);
		return -EINVAL;
	}
	if (!o->subnqn || !o->subnqn[0] || strlen(o->subnqn) >= 256 ||
	    (o->hostnqn && (!o->hostnqn[0] || strlen(o->hostnqn) >= 256))) {
		FERRY_ERR(NVMF_COMP, "create '%s': subnqn (and hostnqn) must be 1..255 characters",
			  o->name);
		return -EINVAL;
	}
	if (o->flags & ~(FERRY_BDEV_NVMF_F_NO_DDP | FERRY_BDEV_NVMF_F_DDP_VERIFY |
			 FERRY_BDEV_NVMF_F_NO_RDMA_DIRECT)) {
		FERRY_ERR(NVMF_COMP, "create '%s': unknown flags 0x%x", o->name, o->flags);
		return -EINVAL;
	}
	if (o->trtype && strcmp(o->trtype, "tcp") != 0 && strcmp(o->trtype, "rdma") != 0) {
		FERRY_ERR(NVMF_COMP, "create '%s': transport '%s' is not supported (tcp, rdma)",
			  o->name, o->trtype);
		return -ENOTSUP;
	}
	return 0;
}

static int nic_setup(struct nvmf_ctrlr *c)
{
	int rc;
	if (c->rdma)
		return nvmf_rdma_setup(c);
	if (!c->dev) {
		rc = ferry_device_open("tcp", "", &c->dev);
		if (rc) {
			FERRY_ERR(NVMF_COMP, "create '%s': cannot open the tcp NIC backend: %s",
				  c->name, ferry_strerror(rc));
			return rc;
		}
		c->own_dev = 1;
	}
	const struct ferry_hal_backend *b = ferry_hal_dev_get_backend(c->dev);
	c->nic = b ? b->nic : NULL;
	struct ferry_hal_nic_info info = {0};
	if (!c->nic || c->nic->query(c->dev, &info) || !(info.caps & FERRY_HAL_NIC_CAP_TCP)) {
		FERRY_ERR(NVMF_COMP, "create '%s': device '%s' has no TCP NIC class", c->name,
			  ferry_device_get_name(c->dev));
		return -ENOTSUP;
	}
	c->max_send_iov = FERRY_MAX(info.max_send_iov, 1u);
	c->max_recv_iov = FERRY_MAX(info.max_recv_iov, 1u);
	c->info = info;
	c->ddp_on = (info.caps & FERRY_HAL_NIC_CAP_DDP) &&
		    !(c->opts.flags & FERRY_BDEV_NVMF_F_NO_DDP) && c->nic->ddp_queue_add &&
		    c->nic->ddp_queue_del && c->nic->ddp_setup && c->nic->ddp_teardown &&
		    c->nic->ddp_resync && info.ddp_max_sges && info.ddp_max_io >= 4096;
	for (uint32_t i = 0;
	     c->ddp_on && i < info.ddp_ndomains && i < FERRY_HAL_NIC_DDP_DOMAINS_MAX; i++)
		if (info.ddp_domains[i] && info.ddp_domains[i] != ferry_memdomain_system())
			c->ddp_host = 1;
	rc = c->nic->group_create(c->dev, &c->group);
	if (rc) {
		c->group = NULL;
		FERRY_ERR(NVMF_COMP, "create '%s': cannot create a socket group: %s", c->name,
			  ferry_strerror(rc));
	}
	return rc;
}

FERRY_API int ferry_bdev_nvmf_create(const struct ferry_bdev_nvmf_opts *opts,
				     struct ferry_bdev **out)
{
	int rc = opts_check(opts);
	if (rc)
		return rc;
	if (!out) {
		FERRY_ERR(NVMF_COMP, "create '%s': NULL out", opts->name);
		return -EINVAL;
	}
	if (ferry_bdev_lookup(opts->name)) {
		FERRY_ERR(NVMF_COMP, "create '%s': a bdev with this name exists", opts->name);
		return -EEXIST;
	}
	struct nvmf_ctrlr *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->admin.c = c; /* a failed create closes the (never opened) admin queue */
	c->opts = *opts;
	c->rdma = opts->trtype && !strcmp(opts->trtype, "rdma");
	c->tr = c->rdma ? &nvmf_rdma_transport : &nvmf_tcp_transport;
	c->opts.name = c->opts.addr = c->opts.subnqn = c->opts.hostnqn = c->opts.trtype = NULL;
	if (!c->opts.kato_ms)
		c->opts.kato_ms = 10000;
	if (!c->opts.reconnect_delay_ms)
		c->opts.reconnect_delay_ms = 100;
	if (!c->opts.ctrlr_loss_timeout_ms)
		c->opts.ctrlr_loss_timeout_ms = 30000;
	if (!c->opts.connect_timeout_ms)
		c->opts.connect_timeout_ms = 5000;
	c->kato_ms = c->opts.kato_ms;
	snprintf(c->name, sizeof(c->name), "%s", opts->name);
	snprintf(c->addr, sizeof(c->addr), "%s", opts->addr);
	snprintf(c->subnqn, sizeof(c->subnqn), "%s", opts->subnqn);
	gen_hostnqn(c);
	if (opts->hostnqn)
		snprintf(c->hostnqn, sizeof(c->hostnqn), "%s", opts->hostnqn);
	c->dev = opts->nic;
	c->idbuf = calloc(1, 4096);
	c->cdata = calloc(1, 1024);
	if (!c->idbuf || !c->cdata) {
		rc = -ENOMEM;
		goto err_free;
	}
	rc = nic_setup(c);
	if (rc)
		goto err_free;
	rc = nvmf_qpair_init(c, &c->admin, 0, NVMF_ADMIN_DEPTH);
	if (rc)
		goto err_free;
	rc = nvmf_ctrlr_connect(c, 1);
	if (rc)
		goto err_free;
	c->state = FERRY_BDEV_NVMF_CONNECTED;
	/* The staging pool: buffers of 1 MiB (a staged I/O larger than one command is sent in
	 * parts from its one buffer), in one anonymous mapping that only the pages actually
	 * used back (the free list is a stack, so the same few buffers stay warm under light
	 * load). */
	c->staging_size = NVMF_STAGING_SIZE_MAX;
	void *p = mmap(NULL, (size_t)NVMF_STAGING_MAX * c->staging_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		FERRY_ERR(NVMF_COMP, "create '%s': cannot map the staging pool", c->name);
		rc = -ENOMEM;
		goto err_free;
	}
	c->staging = p;
	for (uint32_t i = 0; i < NVMF_STAGING_MAX; i++)
		c->staging_free[i] = NVMF_STAGING_MAX - 1 - i;
	c->staging_nfree = NVMF_STAGING_MAX;
	if (c->rdma) {
		rc = nvmf_rdma_staging_reg(c);
		if (rc)
			goto err_free;
	}

	struct ferry_bdev_opts bo = {
		.size = sizeof(bo),
		.name = c->name,
		.module = "nvmf",
		.block_size = c->block_size,
		.num_blocks = c->num_blocks,
		.md_size = c->md_size,
		.md_flags = c->md_size ? FERRY_BDEV_MD_INTERLEAVE : 0,
		.flags = (c->vwc & 1) ? FERRY_BDEV_F_VOLATILE_CACHE : 0,
		.ops = &nvmf_bdev_ops,
		.ctx = c,
	};
	rc = ferry_bdev_create(&bo, &c->bdev);
	if (rc)
		goto err_free;
	FERRY_INFO(NVMF_COMP,
		   "'%s': %s nsid %u at %s: %llu blocks of %u bytes, %u I/O queues x %u%s%s",
		   c->name, c->subnqn, c->nsid, c->addr, (unsigned long long)c->num_blocks,
		   c->block_size, c->nq, c->qd, c->admin.p.hdgst ? ", header digest" : "",
		   c->admin.p.ddgst ? ", data digest" : "");
	*out = c->bdev;
	return 0;
err_free:
	ctrlr_free(c);
	return rc;
}

static struct nvmf_ctrlr *nvmf_of(const struct ferry_bdev *bdev)
{
	if (!bdev || strcmp(ferry_bdev_get_module(bdev), "nvmf") != 0)
		return NULL;
	return ferry_bdev_get_ctx(bdev);
}

FERRY_API int ferry_bdev_nvmf_get_stats(const struct ferry_bdev *bdev,
					struct ferry_bdev_nvmf_stats *stats)
{
	struct nvmf_ctrlr *c = nvmf_of(bdev);
	if (!c || !stats) {
		FERRY_ERR(NVMF_COMP, "get_stats: NULL argument or not an nvmf bdev");
		return -EINVAL;
	}
	if (OPTS_SIZE_CHECK(NVMF_COMP, "get_stats", stats, struct ferry_bdev_nvmf_stats))
		return -EINVAL;
	*stats = c->st;
	for (uint16_t i = 0; i <= c->nq; i++) {
		const struct nvmf_qpair *q = i ? &c->ioq[i - 1] : &c->admin;
		if (!q->sock)
			continue;
		stats->rx_placed_bytes += q->rx.stats.placed_bytes;
		stats->rx_copied_bytes += q->rx.stats.copied_bytes;
	}
	stats->size = sizeof(*stats);
	return 0;
}

FERRY_API int ferry_bdev_nvmf_get_state(const struct ferry_bdev *bdev, uint32_t *state)
{
	struct nvmf_ctrlr *c = nvmf_of(bdev);
	if (!c || !state) {
		FERRY_ERR(NVMF_COMP, "get_state: NULL argument or not an nvmf bdev");
		return -EINVAL;
	}
	*state = c->state;
	return 0;
}
