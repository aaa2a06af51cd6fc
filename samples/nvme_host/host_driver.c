/*
 * The userspace NVMe host driver (host_driver.h): controller bring-up and reset, admin and
 * I/O queue pairs in host memory, command submission with PRPs or SGLs built in per-command
 * scratch pages, completion reaping by phase tag, MSI-X waits. Runs in the simulated host
 * process; talks to the card only through the mock's host memory and PCIe channel.
 */
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ferry/mock_pcie.h>
#include "host_driver.h"

#define LOG(...) fprintf(stderr, "nvme-host: " __VA_ARGS__)
#define SCRATCH_SMALL (2u * NVMEH_PAGE) /* per command, transfers up to 512 KiB */
#define SCRATCH_LARGE (8u * NVMEH_PAGE) /* per command, larger transfers */
#define PRP_PER_PAGE (NVMEH_PAGE / 8u)

struct nvmeh_slot {
	nvmeh_cb cb;
	void *arg;
	int busy;
};

struct nvmeh_queue {
	uint16_t qid;
	uint16_t vector;
	uint32_t size;
	int created;
	struct nvmeh_buf sq, cq, scratch;
	uint32_t scratch_per_cmd;
	uint32_t sq_tail, sq_tail_rung, cq_head;
	uint8_t phase;
	uint32_t outstanding;
	struct nvmeh_slot *slots;
	uint16_t *free_cids;
	uint32_t nfree;
};

struct nvmeh_ctrlr {
	struct nvmeh_opts o;
	struct nvmeh_mem *mem;
	struct ferry_mock_pcie_host *pcie;
	uint64_t cap;
	uint32_t db_stride;
	uint64_t to_ns;
	int enabled;
	struct nvmeh_queue admin;
	struct nvmeh_queue *io; /* [o.io_queues] */
	uint16_t nio;
	uint32_t io_size;
	struct nvmeh_buf idbuf;
	struct ferry_nvme_id_ctrlr id;
	uint64_t nsze;
	uint32_t lba_size;
	uint32_t max_xfer;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- registers ------------------------------------------------------------------------ */

int nvmeh_reg_read32(struct nvmeh_ctrlr *c, uint32_t off, uint32_t *val)
{
	uint64_t v;
	int rc = ferry_mock_pcie_mmio_read(c->pcie, c->o.fn, off, 4, &v);
	*val = (uint32_t)v;
	return rc;
}

int nvmeh_reg_read64(struct nvmeh_ctrlr *c, uint32_t off, uint64_t *val)
{
	return ferry_mock_pcie_mmio_read(c->pcie, c->o.fn, off, 8, val);
}

int nvmeh_reg_write32(struct nvmeh_ctrlr *c, uint32_t off, uint32_t val)
{
	return ferry_mock_pcie_mmio_write(c->pcie, c->o.fn, off, 4, val);
}

int nvmeh_reg_write64(struct nvmeh_ctrlr *c, uint32_t off, uint64_t val)
{
	return ferry_mock_pcie_mmio_write(c->pcie, c->o.fn, off, 8, val);
}

int nvmeh_wait_csts(struct nvmeh_ctrlr *c, uint32_t mask, uint32_t want, uint64_t timeout_ns)
{
	uint64_t end = now_ns() + (timeout_ns ? timeout_ns : c->to_ns);
	uint32_t csts = 0;
	for (;;) {
		int rc = nvmeh_reg_read32(c, FERRY_NVME_REG_CSTS, &csts);
		if (rc)
			return rc;
		if ((csts & mask) == want)
			return 0;
		if (csts & FERRY_NVME_CSTS_CFS && !(mask & FERRY_NVME_CSTS_CFS) &&
		    want == FERRY_NVME_CSTS_RDY) {
			LOG("controller fatal status (CSTS 0x%x) while waiting\n", csts);
			return -EIO;
		}
		if (now_ns() > end) {
			LOG("CSTS 0x%x: (CSTS & 0x%x) != 0x%x after %llu ms\n", csts, mask, want,
			    (unsigned long long)((timeout_ns ? timeout_ns : c->to_ns) / 1000000));
			return -ETIMEDOUT;
		}
		struct timespec ts = {0, 20000};
		nanosleep(&ts, NULL);
	}
}

static uint32_t sq_db(const struct nvmeh_ctrlr *c, uint16_t qid)
{
	return FERRY_NVME_REG_DBS + (2u * qid) * c->db_stride;
}

static uint32_t cq_db(const struct nvmeh_ctrlr *c, uint16_t qid)
{
	return FERRY_NVME_REG_DBS + (2u * qid + 1u) * c->db_stride;
}

/* ---- queues --------------------------------------------------------------------------- */

static void queue_free(struct nvmeh_ctrlr *c, struct nvmeh_queue *q)
{
	nvmeh_mem_free(c->mem, &q->sq);
	nvmeh_mem_free(c->mem, &q->cq);
	nvmeh_mem_free(c->mem, &q->scratch);
	free(q->slots);
	free(q->free_cids);
	memset(q, 0, sizeof(*q));
}

static int queue_alloc(struct nvmeh_ctrlr *c, struct nvmeh_queue *q, uint16_t qid, uint32_t size,
		       uint32_t scratch_per_cmd)
{
	memset(q, 0, sizeof(*q));
	q->qid = qid;
	q->vector = qid;
	q->size = size;
	q->phase = 1;
	q->scratch_per_cmd = scratch_per_cmd;
	q->slots = calloc(size, sizeof(*q->slots));
	q->free_cids = calloc(size, sizeof(*q->free_cids));
	if (!q->slots || !q->free_cids) {
		queue_free(c, q);
		return -ENOMEM;
	}
	/* The SQ is read by the device, the CQ written, the scratch (PRP lists, SGL segments)
	 * read: each gets only that permission. */
	int rc = nvmeh_mem_alloc(c->mem, (uint64_t)size * sizeof(struct ferry_nvme_sqe),
				 NVMEH_MEM_READ, &q->sq);
	if (!rc)
		rc = nvmeh_mem_alloc(c->mem, (uint64_t)size * sizeof(struct ferry_nvme_cqe),
				     NVMEH_MEM_WRITE, &q->cq);
	if (!rc)
		rc = nvmeh_mem_alloc(c->mem, (uint64_t)(size - 1) * scratch_per_cmd, NVMEH_MEM_READ,
				     &q->scratch);
	if (rc) {
		LOG("queue %u: allocating host memory failed: %d\n", qid, rc);
		queue_free(c, q);
		return rc;
	}
	/* At most size - 1 commands outstanding: neither the SQ nor the CQ can overflow. */
	for (uint32_t i = 0; i < size - 1; i++)
		q->free_cids[q->nfree++] = (uint16_t)(size - 2 - i);
	return 0;
}

static struct nvmeh_queue *queue_of(struct nvmeh_ctrlr *c, uint16_t qid)
{
	if (qid == 0)
		return c->admin.size ? &c->admin : NULL;
	if (qid > c->nio || !c->io[qid - 1].created)
		return NULL;
	return &c->io[qid - 1];
}

/* Fails every outstanding command of @p q with NVMEH_STATUS_RESET. */
static void queue_abort_all(struct nvmeh_queue *q)
{
	for (uint32_t cid = 0; cid < q->size; cid++) {
		struct nvmeh_slot *s = &q->slots[cid];
		if (!s->busy)
			continue;
		s->busy = 0;
		q->outstanding--;
		q->free_cids[q->nfree++] = (uint16_t)cid;
		if (s->cb)
			s->cb(s->arg, NVMEH_STATUS_RESET, NULL);
	}
}

/* ---- data pointers -------------------------------------------------------------------- */

static int put64(struct nvmeh_ctrlr *c, struct nvmeh_queue *q, uint64_t off, uint64_t v)
{
	return nvmeh_buf_write(c->mem, &q->scratch, off, &v, sizeof(v));
}

static int build_prp(struct nvmeh_ctrlr *c, struct nvmeh_queue *q, uint16_t cid,
		     const struct nvmeh_data *d, struct ferry_nvme_sqe *cmd)
{
	uint64_t first = NVMEH_PAGE - (d->iova % NVMEH_PAGE);
	cmd->dptr.prp.prp1 = d->iova;
	cmd->dptr.prp.prp2 = 0;
	if (d->len <= first)
		return 0;
	uint64_t next = d->iova + first;
	uint64_t pages = (d->len - first + NVMEH_PAGE - 1) / NVMEH_PAGE;
	if (pages == 1) {
		cmd->dptr.prp.prp2 = next;
		return 0;
	}
	/* PRP list in this command's scratch pages; a full list page ends with a pointer to
	 * the next list page. */
	uint64_t base = (uint64_t)cid * q->scratch_per_cmd;
	uint64_t need = 0;
	for (uint64_t left = pages; left > 0; need++)
		left -= left <= PRP_PER_PAGE ? left : PRP_PER_PAGE - 1;
	if (need * NVMEH_PAGE > q->scratch_per_cmd)
		return -E2BIG;
	cmd->dptr.prp.prp2 = q->scratch.iova + base;
	uint64_t slot = 0, page = 0;
	for (uint64_t i = 0; i < pages; i++) {
		if (slot == PRP_PER_PAGE - 1 && pages - i > 1) {
			page++;
			put64(c, q, base + (page - 1) * NVMEH_PAGE + slot * 8,
			      q->scratch.iova + base + page * NVMEH_PAGE);
			slot = 0;
		}
		put64(c, q, base + page * NVMEH_PAGE + slot * 8, next + i * NVMEH_PAGE);
		slot++;
	}
	return 0;
}

static void sgl_desc(struct ferry_nvme_sgl_desc *s, uint64_t addr, uint32_t len, uint8_t type)
{
	memset(s, 0, sizeof(*s));
	s->address = addr;
	s->length = len;
	s->id = FERRY_NVME_SGL_ID(type, FERRY_NVME_SGL_SUBTYPE_ADDRESS);
}

static int build_sgl(struct nvmeh_ctrlr *c, struct nvmeh_queue *q, uint16_t cid,
		     const struct nvmeh_data *d, struct ferry_nvme_sqe *cmd)
{
	cmd->flags |= FERRY_NVME_PSDT_SGL_MPTR_CONTIG << FERRY_NVME_FLAGS_PSDT_SHIFT;
	if (d->mode == NVMEH_SGL) {
		sgl_desc(&cmd->dptr.sgl, d->iova, d->len, FERRY_NVME_SGL_DATA_BLOCK);
		return 0;
	}
	uint32_t per_seg = d->sgl_per_seg ? d->sgl_per_seg : 256;
	if (per_seg < 2)
		return -EINVAL;
	/* Pieces: chunks of sgl_chunk bytes, or up to each page end. */
	uint32_t npieces = 0;
	for (uint64_t off = 0; off < d->len; npieces++) {
		uint64_t a = d->iova + off;
		uint64_t n = d->sgl_chunk ? d->sgl_chunk : NVMEH_PAGE - a % NVMEH_PAGE;
		off += n < d->len - off ? n : d->len - off;
	}
	if (npieces == 1) {
		sgl_desc(&cmd->dptr.sgl, d->iova, d->len, FERRY_NVME_SGL_DATA_BLOCK);
		return 0;
	}
	uint64_t base = (uint64_t)cid * q->scratch_per_cmd;
	uint64_t segs = 0;
	for (uint32_t left = npieces; left > 0; segs++)
		left -= left <= per_seg ? left : per_seg - 1;
	if ((uint64_t)npieces * 16 + segs * 16 > q->scratch_per_cmd)
		return -E2BIG;
	uint64_t w = base; /* next descriptor position in scratch */
	uint32_t left = npieces;
	uint64_t off = 0;
	/* Descriptor in the SQE: pointer to the first segment. */
	uint32_t first_n = left <= per_seg ? left : per_seg;
	sgl_desc(&cmd->dptr.sgl, q->scratch.iova + w, first_n * 16,
		 left <= per_seg ? FERRY_NVME_SGL_LAST_SEGMENT : FERRY_NVME_SGL_SEGMENT);
	while (left) {
		int last = left <= per_seg;
		uint32_t data = last ? left : per_seg - 1;
		for (uint32_t k = 0; k < data; k++) {
			uint64_t a = d->iova + off;
			uint64_t n = d->sgl_chunk ? d->sgl_chunk : NVMEH_PAGE - a % NVMEH_PAGE;
			if (n > d->len - off)
				n = d->len - off;
			struct ferry_nvme_sgl_desc s;
			sgl_desc(&s, a, (uint32_t)n, FERRY_NVME_SGL_DATA_BLOCK);
			nvmeh_buf_write(c->mem, &q->scratch, w, &s, sizeof(s));
			w += 16;
			off += n;
		}
		left -= data;
		if (!last) {
			uint32_t next_n = left <= per_seg ? left : per_seg;
			struct ferry_nvme_sgl_desc s;
			sgl_desc(&s, q->scratch.iova + w + 16, next_n * 16,
				 left <= per_seg ? FERRY_NVME_SGL_LAST_SEGMENT
						 : FERRY_NVME_SGL_SEGMENT);
			nvmeh_buf_write(c->mem, &q->scratch, w, &s, sizeof(s));
			w += 16;
		}
	}
	return 0;
}

/* ---- submission / completion ---------------------------------------------------------- */

int nvmeh_ring(struct nvmeh_ctrlr *c, uint16_t qid)
{
	struct nvmeh_queue *q = queue_of(c, qid);
	if (!q)
		return -EINVAL;
	if (q->sq_tail == q->sq_tail_rung)
		return 0;
	q->sq_tail_rung = q->sq_tail;
	atomic_thread_fence(memory_order_release); /* entries before the doorbell */
	return nvmeh_reg_write32(c, sq_db(c, qid), q->sq_tail);
}

int nvmeh_submit(struct nvmeh_ctrlr *c, uint16_t qid, const struct ferry_nvme_sqe *cmd_in,
		 const struct nvmeh_data *data, nvmeh_cb cb, void *arg, int defer)
{
	struct nvmeh_queue *q = queue_of(c, qid);
	if (!q || !cmd_in)
		return -EINVAL;
	if (q->nfree == 0)
		return -EAGAIN;
	uint16_t cid = q->free_cids[q->nfree - 1];
	struct ferry_nvme_sqe cmd = *cmd_in;
	cmd.cid = cid;
	if (data && data->len) {
		/* Otherwise the caller's dptr stays (e.g. PRP1 of Create I/O SQ/CQ). */
		cmd.flags &= (uint8_t) ~(3u << FERRY_NVME_FLAGS_PSDT_SHIFT);
		memset(&cmd.dptr, 0, sizeof(cmd.dptr));
		int rc = data->mode == NVMEH_PRP ? build_prp(c, q, cid, data, &cmd)
						 : build_sgl(c, q, cid, data, &cmd);
		if (rc)
			return rc;
	}
	q->nfree--;
	q->slots[cid] = (struct nvmeh_slot){.cb = cb, .arg = arg, .busy = 1};
	q->outstanding++;
	int rc = nvmeh_buf_write(c->mem, &q->sq, (uint64_t)q->sq_tail * sizeof(cmd), &cmd,
				 sizeof(cmd));
	if (rc)
		return rc;
	q->sq_tail = (q->sq_tail + 1) % q->size;
	return defer ? 0 : nvmeh_ring(c, qid);
}

int nvmeh_process(struct nvmeh_ctrlr *c, uint16_t qid, uint32_t max)
{
	struct nvmeh_queue *q = queue_of(c, qid);
	if (!q)
		return -EINVAL;
	uint32_t n = 0;
	while (n < max) {
		struct ferry_nvme_cqe *e = nvmeh_buf_ptr(c->mem, &q->cq,
							 (uint64_t)q->cq_head * sizeof(*e));
		uint16_t st = __atomic_load_n(&e->status, __ATOMIC_ACQUIRE);
		if ((st & 1u) != q->phase)
			break;
		struct ferry_nvme_cqe cqe = *e;
		cqe.status = st;
		if (++q->cq_head == q->size) {
			q->cq_head = 0;
			q->phase ^= 1u;
		}
		n++;
		if (cqe.cid >= q->size || !q->slots[cqe.cid].busy || cqe.sqid != qid) {
			LOG("queue %u: completion for unknown command (cid %u, sqid %u) ignored\n",
			    qid, cqe.cid, cqe.sqid);
			continue;
		}
		struct nvmeh_slot s = q->slots[cqe.cid];
		q->slots[cqe.cid].busy = 0;
		q->free_cids[q->nfree++] = cqe.cid;
		q->outstanding--;
		if (s.cb)
			s.cb(s.arg, (uint16_t)(st >> 1), &cqe);
	}
	if (n) {
		int rc = nvmeh_reg_write32(c, cq_db(c, qid), q->cq_head);
		if (rc)
			return rc;
	}
	return (int)n;
}

int nvmeh_wait(struct nvmeh_ctrlr *c, uint16_t qid, uint64_t timeout_ns)
{
	struct nvmeh_queue *q = queue_of(c, qid);
	if (!q)
		return -EINVAL;
	uint64_t end = now_ns() + timeout_ns;
	for (;;) {
		uint32_t seen = 0;
		if (!c->o.poll_mode)
			ferry_mock_pcie_msix_count(c->pcie, c->o.fn, q->vector, &seen);
		int n = nvmeh_process(c, qid, UINT32_MAX);
		if (n != 0)
			return n;
		uint64_t t = now_ns();
		if (t >= end)
			return 0;
		if (c->o.poll_mode) {
			sched_yield();
			continue;
		}
		/* Interrupt after the snapshot: a completion posted since then is not missed. */
		int rc = ferry_mock_pcie_msix_wait(c->pcie, c->o.fn, q->vector, &seen, end - t);
		if (rc == -EINVAL)
			return rc;
	}
}

int nvmeh_wait_all(struct nvmeh_ctrlr *c, uint64_t timeout_ns)
{
	uint64_t end = now_ns() + timeout_ns;
	for (;;) {
		uint32_t seen = 0;
		if (!c->o.poll_mode)
			ferry_mock_pcie_msix_count(c->pcie, c->o.fn, FERRY_MOCK_PCIE_ANY_VECTOR,
						   &seen);
		int n = 0;
		for (uint16_t q = 1; q <= c->nio; q++) {
			int rc = nvmeh_process(c, q, UINT32_MAX);
			if (rc < 0)
				return rc;
			n += rc;
		}
		if (n)
			return n;
		uint64_t t = now_ns();
		if (t >= end)
			return 0;
		if (c->o.poll_mode)
			sched_yield();
		else
			ferry_mock_pcie_msix_wait(c->pcie, c->o.fn, FERRY_MOCK_PCIE_ANY_VECTOR,
						  &seen, end - t);
	}
}

uint32_t nvmeh_outstanding(const struct nvmeh_ctrlr *c, uint16_t qid)
{
	const struct nvmeh_queue *q = qid == 0 ? &c->admin
					       : (qid <= c->nio ? &c->io[qid - 1] : NULL);
	return q ? q->outstanding : 0;
}

uint64_t nvmeh_irqs(const struct nvmeh_ctrlr *c, uint16_t qid)
{
	uint32_t n = 0;
	ferry_mock_pcie_msix_count(c->pcie, c->o.fn, qid, &n);
	return n;
}

struct sync_done {
	int done;
	uint16_t status;
	struct ferry_nvme_cqe cqe;
};

static void sync_cb(void *arg, uint16_t status, const struct ferry_nvme_cqe *cqe)
{
	struct sync_done *s = arg;
	s->done = 1;
	s->status = status;
	if (cqe)
		s->cqe = *cqe;
}

static int run_sync(struct nvmeh_ctrlr *c, uint16_t qid, struct ferry_nvme_sqe *cmd,
		    const struct nvmeh_data *data, uint16_t *status, struct ferry_nvme_cqe *out)
{
	struct sync_done s = {0};
	int rc = nvmeh_submit(c, qid, cmd, data, sync_cb, &s, 0);
	if (rc)
		return rc;
	uint64_t end = now_ns() + c->o.cmd_timeout_ns;
	while (!s.done) {
		uint64_t t = now_ns();
		if (t >= end) {
			LOG("command 0x%02x on queue %u: no completion within %llu ms\n",
			    cmd->opcode, qid, (unsigned long long)(c->o.cmd_timeout_ns / 1000000));
			/* The slot stays busy until a reset fails it; forget our stack frame. */
			struct nvmeh_queue *q = queue_of(c, qid);
			for (uint32_t i = 0; q && i < q->size; i++)
				if (q->slots[i].arg == &s)
					q->slots[i].cb = NULL;
			return -ETIMEDOUT;
		}
		rc = nvmeh_wait(c, qid, end - t);
		if (rc < 0)
			return rc;
	}
	if (status)
		*status = s.status;
	if (out)
		*out = s.cqe;
	return s.status == NVMEH_STATUS_RESET ? -ECANCELED : 0;
}

int nvmeh_admin(struct nvmeh_ctrlr *c, struct ferry_nvme_sqe *cmd, const struct nvmeh_data *data,
		uint16_t *status, struct ferry_nvme_cqe *cqe_out)
{
	return run_sync(c, 0, cmd, data, status, cqe_out);
}

int nvmeh_io_sync(struct nvmeh_ctrlr *c, uint16_t qid, struct ferry_nvme_sqe *cmd,
		  const struct nvmeh_data *data, uint16_t *status)
{
	if (qid == 0)
		return -EINVAL;
	return run_sync(c, qid, cmd, data, status, NULL);
}

void nvmeh_rw_cmd(struct ferry_nvme_sqe *cmd, uint8_t opcode, uint64_t slba, uint32_t nlb)
{
	memset(cmd, 0, sizeof(*cmd));
	cmd->opcode = opcode;
	cmd->nsid = 1;
	cmd->cdw10 = (uint32_t)slba;
	cmd->cdw11 = (uint32_t)(slba >> 32);
	cmd->cdw12 = nlb - 1;
}

/* ---- bring-up ------------------------------------------------------------------------- */

int nvmeh_open(const struct nvmeh_opts *opts, struct nvmeh_ctrlr **out)
{
	if (!opts || !out || opts->size < sizeof(*opts))
		return -EINVAL;
	struct nvmeh_ctrlr *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->o = *opts;
	if (!c->o.io_queues)
		c->o.io_queues = 1;
	if (!c->o.queue_entries)
		c->o.queue_entries = 128;
	if (!c->o.admin_entries)
		c->o.admin_entries = 32;
	if (!c->o.cmd_timeout_ns)
		c->o.cmd_timeout_ns = 5000000000ull;
	c->io = calloc(c->o.io_queues, sizeof(*c->io));
	int rc = c->io ? nvmeh_mem_open(opts->mem_fd, opts->fn, &c->mem) : -ENOMEM;
	if (!rc && opts->share_fn)
		rc = nvmeh_mem_share(c->mem, opts->share_fn);
	if (!rc)
		rc = ferry_mock_pcie_host_open(opts->pcie_fd, &c->pcie);
	if (!rc && opts->mmio_timeout_ns)
		rc = ferry_mock_pcie_host_set_timeout(c->pcie, opts->mmio_timeout_ns);
	if (!rc && opts->fn >= ferry_mock_pcie_host_fn_count(c->pcie))
		rc = -EINVAL;
	if (rc) {
		LOG("open: %d\n", rc);
		nvmeh_close(c);
		return rc;
	}
	c->to_ns = 10000000000ull;
	c->db_stride = 4;
	*out = c;
	return 0;
}

static void free_queues(struct nvmeh_ctrlr *c)
{
	for (uint16_t i = 0; i < c->o.io_queues; i++) {
		queue_abort_all(&c->io[i]);
		queue_free(c, &c->io[i]);
	}
	c->nio = 0;
	queue_abort_all(&c->admin);
	queue_free(c, &c->admin);
}

/* CC.EN = 0 and wait for CSTS.RDY = 0; then the host may reuse every queue and buffer. */
static int disable(struct nvmeh_ctrlr *c)
{
	uint32_t cc = 0, csts = 0;
	int rc = nvmeh_reg_read32(c, FERRY_NVME_REG_CC, &cc);
	if (!rc)
		rc = nvmeh_reg_read32(c, FERRY_NVME_REG_CSTS, &csts);
	if (rc)
		return rc;
	if (cc & FERRY_NVME_CC_EN) {
		rc = nvmeh_reg_write32(c, FERRY_NVME_REG_CC, cc & ~FERRY_NVME_CC_EN);
		if (rc)
			return rc;
	} else if (!(csts & FERRY_NVME_CSTS_RDY)) {
		c->enabled = 0;
		return 0;
	}
	rc = nvmeh_wait_csts(c, FERRY_NVME_CSTS_RDY, 0, 0);
	if (!rc)
		c->enabled = 0;
	return rc;
}

void nvmeh_close(struct nvmeh_ctrlr *c)
{
	if (!c)
		return;
	if (c->enabled && c->pcie)
		(void)disable(c); /* never leave a live device with freed queues behind */
	if (c->mem) {
		free_queues(c);
		nvmeh_mem_free(c->mem, &c->idbuf);
	}
	ferry_mock_pcie_host_close(c->pcie);
	nvmeh_mem_close(c->mem);
	free(c->io);
	free(c);
}

static int identify(struct nvmeh_ctrlr *c, uint32_t cns, uint32_t nsid)
{
	struct ferry_nvme_sqe cmd = {.opcode = FERRY_NVME_ADM_IDENTIFY, .nsid = nsid, .cdw10 = cns};
	struct nvmeh_data d = {.iova = c->idbuf.iova, .len = 4096, .mode = NVMEH_PRP};
	uint16_t st = 0;
	int rc = nvmeh_admin(c, &cmd, &d, &st, NULL);
	if (!rc && st) {
		LOG("identify cns %u nsid %u: status 0x%x\n", cns, nsid, st);
		rc = -EIO;
	}
	return rc;
}

static int create_io_queue(struct nvmeh_ctrlr *c, struct nvmeh_queue *q)
{
	uint16_t st = 0;
	struct ferry_nvme_sqe cmd = {.opcode = FERRY_NVME_ADM_CREATE_CQ};
	cmd.dptr.prp.prp1 = q->cq.iova;
	cmd.cdw10 = ((q->size - 1) << 16) | q->qid;
	cmd.cdw11 = ((uint32_t)q->vector << 16) | (c->o.poll_mode ? 0 : 2u) | 1u;
	int rc = nvmeh_admin(c, &cmd, NULL, &st, NULL);
	if (!rc && st) {
		LOG("create I/O CQ %u: status 0x%x\n", q->qid, st);
		return -EIO;
	}
	if (rc)
		return rc;
	memset(&cmd, 0, sizeof(cmd));
	cmd.opcode = FERRY_NVME_ADM_CREATE_SQ;
	cmd.dptr.prp.prp1 = q->sq.iova;
	cmd.cdw10 = ((q->size - 1) << 16) | q->qid;
	cmd.cdw11 = ((uint32_t)q->qid << 16) | 1u;
	rc = nvmeh_admin(c, &cmd, NULL, &st, NULL);
	if (!rc && st) {
		LOG("create I/O SQ %u: status 0x%x\n", q->qid, st);
		return -EIO;
	}
	if (!rc)
		q->created = 1;
	return rc;
}

int nvmeh_init(struct nvmeh_ctrlr *c)
{
	int rc = nvmeh_reg_read64(c, FERRY_NVME_REG_CAP, &c->cap);
	if (rc)
		return rc;
	c->db_stride = 4u << FERRY_NVME_CAP_DSTRD(c->cap);
	c->to_ns = (uint64_t)(FERRY_NVME_CAP_TO(c->cap) ? FERRY_NVME_CAP_TO(c->cap) : 1) *
		   500000000ull;
	if (FERRY_NVME_CAP_MPSMIN(c->cap) != 0) {
		LOG("CAP.MPSMIN %u: this driver uses 4 KiB pages only\n",
		    FERRY_NVME_CAP_MPSMIN(c->cap));
		return -ENOTSUP;
	}
	rc = disable(c);
	if (rc)
		return rc;
	free_queues(c);
	uint32_t mqes = FERRY_NVME_CAP_MQES(c->cap) + 1;
	uint32_t asize = c->o.admin_entries < mqes ? c->o.admin_entries : mqes;
	if (asize > 4096)
		asize = 4096;
	rc = queue_alloc(c, &c->admin, 0, asize, SCRATCH_SMALL);
	if (!rc && !c->idbuf.len)
		rc = nvmeh_mem_alloc(c->mem, 4096, NVMEH_MEM_READ | NVMEH_MEM_WRITE, &c->idbuf);
	if (rc)
		return rc;
	uint32_t aqa = ((asize - 1) << 16) | (asize - 1);
	uint32_t cc = FERRY_NVME_CC_EN | (6u << 16) | (4u << 20); /* 64-byte SQE, 16-byte CQE */
	rc = nvmeh_reg_write32(c, FERRY_NVME_REG_AQA, aqa);
	if (!rc)
		rc = nvmeh_reg_write64(c, FERRY_NVME_REG_ASQ, c->admin.sq.iova);
	if (!rc)
		rc = nvmeh_reg_write64(c, FERRY_NVME_REG_ACQ, c->admin.cq.iova);
	if (!rc)
		rc = nvmeh_reg_write32(c, FERRY_NVME_REG_CC, cc);
	if (!rc)
		rc = nvmeh_wait_csts(c, FERRY_NVME_CSTS_RDY, FERRY_NVME_CSTS_RDY, 0);
	if (rc) {
		LOG("enable failed: %d\n", rc);
		return rc;
	}
	c->enabled = 1;

	rc = identify(c, FERRY_NVME_CNS_CTRLR, 0);
	if (rc)
		return rc;
	nvmeh_buf_read(c->mem, &c->idbuf, 0, &c->id, sizeof(c->id));
	c->max_xfer = c->id.mdts ? (uint32_t)(NVMEH_PAGE << c->id.mdts) : (1u << 20);
	rc = identify(c, FERRY_NVME_CNS_NS, 1);
	if (rc)
		return rc;
	struct ferry_nvme_id_ns ns;
	nvmeh_buf_read(c->mem, &c->idbuf, 0, &ns, sizeof(ns));
	const struct ferry_nvme_lbaf *f = &ns.lbaf[ns.flbas & 0xf];
	c->nsze = ns.nsze;
	c->lba_size = (1u << f->lbads) + ((ns.flbas & 0x10) ? f->ms : 0);

	/* Number of Queues: ask for what we want, use what is granted. */
	uint16_t want = c->o.io_queues, st = 0;
	struct ferry_nvme_cqe cqe;
	struct ferry_nvme_sqe cmd = {.opcode = FERRY_NVME_ADM_SET_FEATURES,
				     .cdw10 = FERRY_NVME_FEAT_NUM_QUEUES,
				     .cdw11 = ((uint32_t)(want - 1) << 16) | (uint32_t)(want - 1)};
	rc = nvmeh_admin(c, &cmd, NULL, &st, &cqe);
	if (rc)
		return rc;
	uint32_t granted = want;
	if (st == 0) {
		uint32_t nsq = (cqe.dw0 & 0xffff) + 1, ncq = (cqe.dw0 >> 16) + 1;
		granted = nsq < ncq ? nsq : ncq;
		if (granted > want)
			granted = want;
	}
	uint32_t qsize = c->o.queue_entries < mqes ? c->o.queue_entries : mqes;
	if (qsize < 2)
		qsize = 2;
	c->io_size = qsize;
	uint32_t scratch = c->max_xfer > (512u << 10) ? SCRATCH_LARGE : SCRATCH_SMALL;
	for (uint16_t i = 0; i < granted; i++) {
		rc = queue_alloc(c, &c->io[i], (uint16_t)(i + 1), qsize, scratch);
		if (!rc)
			rc = create_io_queue(c, &c->io[i]);
		if (rc)
			return rc;
		c->nio = (uint16_t)(i + 1);
	}
	return 0;
}

int nvmeh_reset(struct nvmeh_ctrlr *c)
{
	int rc = disable(c);
	if (rc)
		return rc;
	/* RDY = 0: the controller touches no queue or buffer any more. */
	free_queues(c);
	return nvmeh_init(c);
}

int nvmeh_shutdown(struct nvmeh_ctrlr *c)
{
	uint32_t cc = 0;
	int rc = nvmeh_reg_read32(c, FERRY_NVME_REG_CC, &cc);
	if (rc)
		return rc;
	cc = (cc & ~(3u << 14)) | (FERRY_NVME_CC_SHN_NORMAL << 14);
	rc = nvmeh_reg_write32(c, FERRY_NVME_REG_CC, cc);
	if (rc)
		return rc;
	return nvmeh_wait_csts(c, FERRY_NVME_CSTS_SHST_MASK,
			       FERRY_NVME_CSTS_SHST_COMPLETE << FERRY_NVME_CSTS_SHST_SHIFT, 0);
}

struct nvmeh_mem *nvmeh_get_mem(struct nvmeh_ctrlr *c)
{
	return c->mem;
}

const struct ferry_nvme_id_ctrlr *nvmeh_id_ctrlr(const struct nvmeh_ctrlr *c)
{
	return &c->id;
}

uint64_t nvmeh_cap(const struct nvmeh_ctrlr *c)
{
	return c->cap;
}

uint16_t nvmeh_io_queue_count(const struct nvmeh_ctrlr *c)
{
	return c->nio;
}

uint32_t nvmeh_io_queue_size(const struct nvmeh_ctrlr *c)
{
	return c->io_size;
}

uint32_t nvmeh_max_xfer(const struct nvmeh_ctrlr *c)
{
	return c->max_xfer;
}

uint64_t nvmeh_ns_blocks(const struct nvmeh_ctrlr *c)
{
	return c->nsze;
}

uint32_t nvmeh_ns_block_size(const struct nvmeh_ctrlr *c)
{
	return c->lba_size;
}
