/*
 * The initiator's use of a NIC's NVMe/TCP receive offloads (ferry/hal/nic.h): a queue is
 * offloaded after its ICReq/ICResp exchange; each read command is mapped to its destination
 * before it is sent (the I/O's own memory, the staging buffer an accel sequence reads, or
 * host memory the NIC reaches through its own PCI function, translated from the I/O's
 * domain); after the command's last PDU the mapping is torn down asynchronously and the
 * command completes from the teardown callback, reaped by the poll; the bytes the NIC did
 * not place into host memory are pushed there from the staging buffer; the NIC's resync
 * requests are answered from the receive machine's PDU boundaries.
 */
#include <string.h>
#include <ferry/crc.h>
#include <ferry/memdomain.h>
#include "core_internal.h"
#include "nvmf_internal.h"

static int is_system(const struct ferry_memdomain *d)
{
	return !d || d == ferry_memdomain_system();
}

/* The NIC's resync request, from its recvv() or group_poll(): answered from the receive
 * loop once the machine has consumed the offset (nvmf_ddp_resync_answer()). A newer request
 * replaces an unanswered one: the NIC asks about the offset it believes in now. */
static void resync_cb(void *ctx, uint64_t seq)
{
	struct nvmf_qpair *q = ctx;
	q->resync_seq = seq;
	q->resync_pending = 1;
}

void nvmf_ddp_resync_answer(struct nvmf_qpair *q)
{
	if (!q->resync_pending || !q->ddp || !q->sock)
		return;
	int r = ferry_nvme_tcp_rx_pdu_at(&q->rx, q->resync_seq);
	if (r < 0)
		return; /* not consumed yet: asked again after the next event */
	/* cleared first: the NIC may ask again from inside ddp_resync() */
	q->resync_pending = 0;
	q->c->nic->ddp_resync(q->sock, q->resync_seq, r);
	if (r)
		q->c->st.ddp_resyncs++;
	else
		q->c->st.ddp_resync_fail++;
}

void nvmf_ddp_queue_add(struct nvmf_qpair *q)
{
	static struct log_ratelimit rl;
	struct nvmf_ctrlr *c = q->c;
	if (!c->ddp_on || !q->qid || !q->sock)
		return;
	/* rx_seq is where the next PDU starts in what recvv() returned: the ICResp was received
	 * into the machine's own buffer (exactly its 128 bytes), nothing waits in rxbuf. */
	if (q->rx_pos != q->rx_len) {
		c->st.ddp_queue_refused++;
		FERRY_WARN(NVMF_COMP, "'%s' queue %u: bytes buffered after ICResp: no offload",
			   c->name, q->qid);
		return;
	}
	struct ferry_hal_ddp_queue_cfg cfg = {
		.size = sizeof(cfg),
		.pfv = 0,
		.hpda = q->p.hpda,
		.cpda = q->p.cpda,
		.hdgst = q->p.hdgst,
		.ddgst = q->p.ddgst,
		.queue_size = q->depth,
		.io_cpu = -1,
		.rx_seq = ferry_nvme_tcp_rx_stream_pos(&q->rx),
		.resync = resync_cb,
		.ctx = q,
	};
	q->resync_pending = 0;
	q->reap_head = NULL;
	int rc = c->nic->ddp_queue_add(q->sock, &cfg);
	if (rc) {
		c->st.ddp_queue_refused++;
		if (log_ratelimit(&rl, NULL))
			FERRY_INFO(NVMF_COMP,
				   "'%s' queue %u: the NIC does not offload this queue (%s): "
				   "its receive runs in software",
				   c->name, q->qid, ferry_strerror(rc));
		return;
	}
	q->ddp = 1;
	c->st.ddp_queues++;
}

void nvmf_ddp_queue_del(struct nvmf_qpair *q)
{
	if (!q->ddp || !q->sock)
		return;
	/* Pending teardowns complete inside ddp_queue_del(): their callbacks only release the
	 * slots (ddp_closing), which the caller then abandons with the connection (requeued
	 * or failed, once). Slots reaped but not finished yet go the same way. */
	q->ddp_closing = 1;
	q->c->nic->ddp_queue_del(q->sock);
	q->ddp_closing = 0;
	q->ddp = 0;
	q->resync_pending = 0;
	struct nvmf_slot *s = q->reap_head, *next;
	for (; s; s = next) {
		next = s->reap_next;
		s->reap_next = NULL;
		s->ddp = DDP_NONE;
	}
	q->reap_head = NULL;
	for (uint16_t i = 0; q->slots && i < q->depth; i++)
		if (q->slots[i].ddp == DDP_MAPPED || q->slots[i].ddp == DDP_TEARDOWN)
			q->slots[i].ddp = DDP_NONE;
}

int nvmf_ddp_map(struct nvmf_slot *s, const struct ferry_mem *io_mem, int other)
{
	static struct log_ratelimit rl_tr, rl_setup;
	struct nvmf_qpair *q = s->q;
	struct nvmf_ctrlr *c = q->c;
	const struct ferry_hal_nic_info *info = &c->info;
	uint32_t max = FERRY_MIN(info->ddp_max_sges, (uint32_t)NVMF_DDP_SGES);
	struct ferry_memdomain *sys = NULL;
	int have_sys = 0, why = -EXDEV;
	struct ferry_mem dest = {0};

	s->ddp_apart = 0;
	if (!q->ddp || !s->len || s->len > info->ddp_max_io || !max)
		return 0;
	for (uint32_t i = 0; i < info->ddp_ndomains && i < FERRY_HAL_NIC_DDP_DOMAINS_MAX; i++) {
		if (is_system(info->ddp_domains[i])) {
			sys = info->ddp_domains[i];
			have_sys = 1;
		}
	}
	if (other) {
		/* Host memory placement: the I/O's slice expressed in a domain the NIC places
		 * into. Not with the debug check: its software digest needs the bytes here. */
		int try_host = c->ddp_host && s->part_push &&
			       !(c->opts.flags & FERRY_BDEV_NVMF_F_DDP_VERIFY);
		for (uint32_t i = 0;
		     try_host && i < info->ddp_ndomains && i < FERRY_HAL_NIC_DDP_DOMAINS_MAX; i++) {
			struct ferry_memdomain *d = info->ddp_domains[i];
			if (is_system(d))
				continue;
			uint32_t n = nvmf_iov_slice(io_mem->iov, io_mem->iovcnt, s->data_off,
						    s->len, s->push_dst, NVMF_PUSH_IOV);
			if (!n) {
				why = -E2BIG;
				break;
			}
			struct ferry_mem src = {.domain = io_mem->domain,
						.domain_ctx = io_mem->domain_ctx,
						.iov = s->push_dst,
						.iovcnt = n};
			struct ferry_mem out = {.iov = s->ddp_iov, .iovcnt = max};
			int rc = ferry_memdomain_translate(&src, d, &out);
			if (!rc) {
				dest = out;
				dest.domain = d;
				s->ddp_apart = 1;
				break;
			}
			why = rc;
		}
		if (!s->ddp_apart) {
			c->st.ddp_untranslatable++;
			if (log_ratelimit(&rl_tr, NULL))
				FERRY_INFO(
					NVMF_COMP,
					"'%s' queue %u: read of %u bytes into '%s': the NIC cannot "
					"place there (%s): staged",
					c->name, q->qid, s->len,
					ferry_memdomain_get_name(io_mem->domain),
					why == -ENOBUFS || why == -E2BIG
						? "more segments than it maps"
					: why == -EFAULT ? "a page its function cannot reach"
							 : ferry_strerror(why));
		}
	}
	if (!s->ddp_apart) {
		/* Local memory: the I/O's own iovecs, or the staging buffer (s->data is it). */
		if (!have_sys)
			return 0;
		uint32_t n = nvmf_iov_slice(s->data, s->data_cnt, s->data_off, s->len, s->ddp_iov,
					    max);
		if (!n)
			return 0; /* more segments than the NIC maps: software */
		dest.domain = sys;
		dest.domain_ctx = NULL;
		dest.iov = s->ddp_iov;
		dest.iovcnt = n;
	}
	int rc = c->nic->ddp_setup(q->sock, s->cid, &dest);
	if (rc) {
		c->st.ddp_setup_fail++;
		s->ddp_apart = 0;
		if (log_ratelimit(&rl_setup, NULL))
			FERRY_INFO(NVMF_COMP,
				   "'%s' queue %u: DDP setup of cid 0x%x refused (%s): "
				   "received in software",
				   c->name, q->qid, s->cid, ferry_strerror(rc));
		return 0;
	}
	s->ddp = DDP_MAPPED;
	c->st.ddp_ios++;
	if (s->ddp_apart) {
		c->st.ddp_host_ios++;
		s->nmiss = 0; /* filled with the ranges the NIC did not place */
	}
	return 0;
}

/* A domain transfer of a finished command failed: the read fails with the reason. */
static void xfer_failed(struct nvmf_slot *s, int status, const char *what)
{
	if (s->status)
		return;
	s->status = status;
	if (status == -EFAULT || status == -EIO) {
		s->io->error = FERRY_BDEV_ERR_TRANSFER;
		s->io->error_block = s->io->offset_blocks;
	}
	ferry_set_last_error(NVMF_COMP, "'%s': cannot %s read data in '%s': %s", s->q->c->name,
			     what, ferry_memdomain_get_name(s->io->mem.domain),
			     ferry_strerror(status));
}

static void pull_done(void *arg, int status)
{
	static struct log_ratelimit rl;
	struct nvmf_slot *s = arg;
	struct nvmf_ctrlr *c = s->q->c;
	s->ddp = DDP_NONE;
	if (status) {
		xfer_failed(s, status, "pull back");
		nvmf_slot_complete(s);
		return;
	}
	/* Every byte of these PDUs is final in the I/O's memory now (placed by the NIC or
	 * pushed from staging) and here again: their digests, as software would have. */
	for (uint32_t i = 0; i < s->ndefer; i++) {
		uint32_t crc = ferry_crc32c_iov(0, &s->pull_dst[i], 1);
		c->st.sw_crc_bytes += s->defer[i].len;
		if (crc == s->defer_dgst[i])
			continue;
		c->st.digest_errors++;
		if (!s->status)
			s->status = -EIO;
		ferry_set_last_error(NVMF_COMP,
				     "'%s' queue %u: data digest error in C2HData (cid 0x%x, "
				     "offset %u): the read fails",
				     c->name, s->q->qid, s->cid, s->defer[i].off);
		if (log_ratelimit(&rl, NULL))
			FERRY_ERR(NVMF_COMP,
				  "'%s' queue %u: data digest error in C2HData (cid 0x%x, offset "
				  "%u): the read fails",
				  c->name, s->q->qid, s->cid, s->defer[i].off);
	}
	nvmf_slot_complete(s);
}

/*
 * Describe the command's ranges @p rs (offsets in the command's data) twice: in the I/O's
 * memory (s->push_mem[0], segments in s->push_dst) and in the staging buffer (s->push_mem[1],
 * one segment each in @p local). Returns the bytes, or -E2BIG when they need more segments
 * than one transfer takes (the I/O is then redone without offload).
 */
static int64_t ranges_describe(struct nvmf_slot *s, const struct nvmf_range *rs, uint32_t nr,
			       struct iovec *local)
{
	struct ferry_bdev_io *io = s->io;
	uint32_t nd = 0;
	int64_t bytes = 0;
	for (uint32_t i = 0; i < nr; i++) {
		size_t off = (size_t)s->data_off + rs[i].off;
		uint32_t n = nvmf_iov_slice(io->mem.iov, io->mem.iovcnt, off, rs[i].len,
					    s->push_dst + nd, NVMF_PUSH_IOV - nd);
		uint32_t m = nvmf_iov_slice(s->data, s->data_cnt, off, rs[i].len, &local[i], 1);
		if (!n || !m) {
			ferry_set_last_error(NVMF_COMP,
					     "'%s': %u ranges of a read need more than %u segments "
					     "in '%s'",
					     s->q->c->name, nr, NVMF_PUSH_IOV,
					     ferry_memdomain_get_name(io->mem.domain));
			s->ddp_redo = 1;
			return -E2BIG;
		}
		nd += n;
		bytes += rs[i].len;
	}
	s->push_mem[0] = (struct ferry_mem){.domain = io->mem.domain,
					    .domain_ctx = io->mem.domain_ctx,
					    .iov = s->push_dst,
					    .iovcnt = nd};
	s->push_mem[1] = (struct ferry_mem){.iov = local, .iovcnt = nr};
	return bytes;
}

/* Pull the deferred PDUs back from the I/O's memory into their staging slices; 0: started
 * (pull_done() completes the slot), else the caller completes it. */
static int defer_pull(struct nvmf_slot *s)
{
	struct ferry_bdev_io *io = s->io;
	int64_t bytes = ranges_describe(s, s->defer, s->ndefer, s->pull_dst);
	if (bytes < 0)
		return (int)bytes;
	s->ddp = DDP_PUSHING;
	int rc = ferry_memdomain_pull(&s->push_mem[0], &s->push_mem[1], pull_done, s);
	if (rc) {
		s->ddp = DDP_NONE;
		xfer_failed(s, rc, "pull back");
		FERRY_ERR(NVMF_COMP, "'%s': cannot pull read data back from '%s': %s",
			  s->q->c->name, ferry_memdomain_get_name(io->mem.domain),
			  ferry_strerror(rc));
	}
	return rc;
}

static void push_done(void *arg, int status)
{
	struct nvmf_slot *s = arg;
	s->ddp = DDP_NONE;
	if (status)
		xfer_failed(s, status, "push");
	else if (s->ndefer && !s->status && !s->ddp_redo && defer_pull(s) == 0)
		return;
	nvmf_slot_complete(s);
}

/* Push the command's ranges listed in miss[] from the staging buffer into the I/O's memory;
 * 0: started (the push completes the slot), else the caller completes it. */
static int part_push(struct nvmf_slot *s)
{
	struct nvmf_ctrlr *c = s->q->c;
	struct ferry_bdev_io *io = s->io;
	int64_t bytes = ranges_describe(s, s->miss, s->nmiss, s->push_src);
	if (bytes < 0)
		return (int)bytes;
	s->ddp = DDP_PUSHING;
	nvmf_io_staged(c, io, (size_t)bytes);
	int rc = ferry_memdomain_push(&s->push_mem[0], &s->push_mem[1], push_done, s);
	if (rc) {
		s->ddp = DDP_NONE;
		xfer_failed(s, rc, "push");
		FERRY_ERR(NVMF_COMP, "'%s': cannot push read data into '%s': %s", c->name,
			  ferry_memdomain_get_name(io->mem.domain), ferry_strerror(rc));
	}
	return rc;
}

/* The command is over (its mapping released, if it had one): push what went through
 * staging, check the deferred digests, complete. */
static void part_end(struct nvmf_slot *s)
{
	s->ddp = DDP_NONE;
	if (s->part_push && s->io && !s->status && !s->ddp_redo) {
		if (s->nmiss && part_push(s) == 0)
			return;
		if (!s->nmiss && s->ndefer && defer_pull(s) == 0)
			return;
	}
	nvmf_slot_complete(s);
}

static void teardown_cb(void *ctx, int status)
{
	(void)status;
	struct nvmf_slot *s = ctx;
	struct nvmf_qpair *q = s->q;
	if (s->ddp != DDP_TEARDOWN)
		return; /* released with its connection already */
	if (q->ddp_closing) {
		s->ddp = DDP_NONE; /* the connection's abandon requeues the command */
		return;
	}
	/* Completing here could send (the next part, a pending I/O) from inside the NIC's
	 * group_poll(): the poll finishes the slot once group_poll() returned. */
	s->ddp = DDP_REAPED;
	s->reap_next = q->reap_head;
	q->reap_head = s;
}

void nvmf_ddp_slot_end(struct nvmf_slot *s)
{
	static struct log_ratelimit rl;
	struct nvmf_qpair *q = s->q;
	if (s->ddp == DDP_MAPPED) {
		int rc = q->c->nic->ddp_teardown(q->sock, s->cid, teardown_cb, s);
		if (!rc) {
			s->ddp = DDP_TEARDOWN; /* busy (cid reserved) until the callback */
			return;
		}
		if (log_ratelimit(&rl, NULL))
			FERRY_WARN(NVMF_COMP, "'%s' queue %u: DDP teardown of cid 0x%x: %s",
				   q->c->name, q->qid, s->cid, ferry_strerror(rc));
	}
	part_end(s);
}

void nvmf_ddp_reap(struct nvmf_qpair *q)
{
	while (q->reap_head && !q->ddp_closing) {
		struct nvmf_slot *s = q->reap_head;
		q->reap_head = s->reap_next;
		s->reap_next = NULL;
		part_end(s);
	}
}
