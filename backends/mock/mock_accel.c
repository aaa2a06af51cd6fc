/*
 * The mock DMA engine's accel class (ferry/hal/accel.h): every single operation, and the
 * fused chains the mock declares (pull+encrypt+dif-insert, encrypt+dif-insert for writes;
 * dif-strip+decrypt and dif-strip+decrypt+push for reads). Descriptors run on the device's
 * engine thread; the engine resolves every operand through the mock's IOMMU view
 * (mock_resolve) before moving any byte, computes the bytes itself with the primitive kernels
 * and keeps a chain's intermediate data in its own scratch memory, or streams a declared
 * chain without it when its source and destination do not overlap. Error injection
 * (ferry/mock.h) counts one operation per descriptor.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ferry/crc.h>
#include <ferry/log.h>
#include <ferry/hal/accel.h>
#include <ferry/hal/iov.h>
#include "mock_internal.h"

#define MACC_COMP "mock"
#define MACC_ERR(...) ferry_log(FERRY_LOG_ERROR, MACC_COMP, __VA_ARGS__)
#define MACC_MAX_INFLIGHT 1024u /* descriptors in flight per channel */
#define MACC_STACK_SEGS 64u

#define ALL_OPS ((1u << FERRY_ACCEL_OP_COUNT) - 1u)
#define VIRT FERRY_HAL_ACCEL_CHAIN_F_VIRT_INTERMEDIATE
#define LOCAL FERRY_HAL_ACCEL_DOM_LOCAL
#define PCIE FERRY_HAL_ACCEL_DOM_PCIE

/* The chains the mock engine executes as one operation (the example in docs/accel.md). */
static const struct ferry_hal_accel_chain mock_chains[] = {
	{.name = "pull+encrypt+dif-insert",
	 .nops = 3,
	 .ops = {FERRY_ACCEL_OP_COPY, FERRY_ACCEL_OP_ENCRYPT, FERRY_ACCEL_OP_DIF_INSERT},
	 .src_doms = PCIE,
	 .dst_doms = LOCAL | PCIE,
	 .flags = VIRT},
	{.name = "encrypt+dif-insert",
	 .nops = 2,
	 .ops = {FERRY_ACCEL_OP_ENCRYPT, FERRY_ACCEL_OP_DIF_INSERT},
	 .src_doms = LOCAL | PCIE,
	 .dst_doms = LOCAL | PCIE,
	 .flags = VIRT},
	{.name = "dif-strip+decrypt+push",
	 .nops = 3,
	 .ops = {FERRY_ACCEL_OP_DIF_STRIP, FERRY_ACCEL_OP_DECRYPT, FERRY_ACCEL_OP_COPY},
	 .src_doms = LOCAL | PCIE,
	 .dst_doms = PCIE,
	 .flags = VIRT},
	{.name = "dif-strip+decrypt",
	 .nops = 2,
	 .ops = {FERRY_ACCEL_OP_DIF_STRIP, FERRY_ACCEL_OP_DECRYPT},
	 .src_doms = LOCAL | PCIE,
	 .dst_doms = LOCAL | PCIE,
	 .flags = VIRT},
};

#define MOCK_NCHAINS (sizeof(mock_chains) / sizeof(mock_chains[0]))

/* --- per-channel completion queues (keyed by device + channel id) --- */

struct macc_job;

struct macc_chan {
	struct mock_dev *dev;
	uint32_t id;
	uint32_t inflight; /* submitted and not yet returned by poll (owner thread) */
	pthread_mutex_t lock;
	struct macc_job *done_head, *done_tail;
	struct macc_chan *next;
};

struct macc_job {
	struct mock_work work; /* first: the engine hands it back */
	struct ferry_hal_accel_desc *desc;
	struct macc_chan *mc;
	enum ferry_xfer_status inject;
	struct macc_job *next;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct macc_chan *reg;

static struct macc_chan *macc_find(void *chan, int create)
{
	struct mock_dev *dev = mock_chan_dev(chan);
	uint32_t id = mock_chan_id(chan);
	pthread_mutex_lock(&reg_lock);
	struct macc_chan *mc = reg;
	while (mc && !(mc->dev == dev && mc->id == id))
		mc = mc->next;
	if (!mc && create) {
		mc = calloc(1, sizeof(*mc));
		if (mc) {
			mc->dev = dev;
			mc->id = id;
			pthread_mutex_init(&mc->lock, NULL);
			mc->next = reg;
			reg = mc;
		}
	}
	pthread_mutex_unlock(&reg_lock);
	return mc;
}

/* Drop an idle queue (nothing in flight): channels come and go, the registry must not grow. */
static void macc_release(struct macc_chan *mc)
{
	pthread_mutex_lock(&reg_lock);
	for (struct macc_chan **pp = &reg; *pp; pp = &(*pp)->next) {
		if (*pp == mc) {
			*pp = mc->next;
			break;
		}
	}
	pthread_mutex_unlock(&reg_lock);
	pthread_mutex_destroy(&mc->lock);
	free(mc);
}

/* --- engine-side scratch (intermediate links of a chain), one set per engine thread --- */

struct macc_scratch {
	void *buf[2];
	size_t len[2];
};

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p)
{
	struct macc_scratch *s = p;
	free(s->buf[0]);
	free(s->buf[1]);
	free(s);
}

static void scratch_init(void)
{
	pthread_key_create(&scratch_key, scratch_free);
}

static void *scratch_get(int which, size_t len)
{
	pthread_once(&scratch_once, scratch_init);
	struct macc_scratch *s = pthread_getspecific(scratch_key);
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return NULL;
		pthread_setspecific(scratch_key, s);
	}
	if (s->len[which] < len) {
		void *b = realloc(s->buf[which], len);
		if (!b)
			return NULL;
		s->buf[which] = b;
		s->len[which] = len;
	}
	return s->buf[which];
}

/* --- operand resolution --- */

enum {
	R_SRC = 0,
	R_DST = 1,
	R_AUX = 2,
	R_COUNT = 3
};

struct macc_res {
	struct iovec stack[MACC_STACK_SEGS];
	struct iovec *iov;
	uint32_t cnt;
	int used;
};

/* Operand use of an op, as FERRY_HAL_ACCEL_OPND_* masks: bit k is operand k (R_SRC, R_DST,
 * R_AUX), the table the SDK plans with (ferry_hal_accel_op_get_info()). check() refused every
 * undefined opcode, so the lookup cannot fail here. */
_Static_assert(FERRY_HAL_ACCEL_OPND_SRC == 1u << R_SRC && FERRY_HAL_ACCEL_OPND_DST == 1u << R_DST &&
		       FERRY_HAL_ACCEL_OPND_AUX == 1u << R_AUX,
	       "operand slots are the HAL's operand bits");

static uint8_t reads_of(enum ferry_accel_opcode op)
{
	const struct ferry_hal_accel_op_info *i = ferry_hal_accel_op_get_info(op);
	return i ? i->reads : 0;
}

static uint8_t writes_of(enum ferry_accel_opcode op)
{
	const struct ferry_hal_accel_op_info *i = ferry_hal_accel_op_get_info(op);
	return i ? i->writes : 0;
}

static const struct ferry_mem *opnd(const struct ferry_hal_accel_op *op, int k)
{
	return k == R_SRC ? &op->src : (k == R_DST ? &op->dst : &op->aux);
}

static uint64_t mem_len(const struct ferry_mem *m)
{
	return ferry_iov_length(m->iov, m->iovcnt);
}

static int resolve_one(struct mock_dev *dev, const struct ferry_mem *m, int write,
		       struct macc_res *r)
{
	uint64_t len = mem_len(m);
	uint32_t cnt = MACC_STACK_SEGS;
	int st = mock_resolve(dev, m, len, write, r->stack, &cnt);
	if (st == -ENOBUFS) {
		r->iov = calloc(cnt, sizeof(struct iovec));
		if (!r->iov)
			return -ENOMEM;
		st = mock_resolve(dev, m, len, write, r->iov, &cnt);
	} else {
		r->iov = r->stack;
	}
	if (st < 0)
		return -EFAULT; /* -ENOBUFS again: the host remapped between the two walks */
	if (st != 0) {
		/* logged on the engine thread: job_run() hands the text to the submitter */
		MACC_ERR("%s range [0x%llx, +%llu bytes) is not mapped or not permitted for %s "
			 "(transfer status %d)",
			 m->domain ? ferry_memdomain_get_name(m->domain) : "system",
			 m->iovcnt ? (unsigned long long)(uintptr_t)m->iov[0].iov_base : 0ull,
			 (unsigned long long)len, write ? "writing" : "reading", st);
		return ferry_hal_xfer_status_errno((enum ferry_xfer_status)st);
	}
	r->cnt = cnt;
	r->used = 1;
	return 0;
}

static void res_free(struct macc_res *r)
{
	if (r->used && r->iov != r->stack)
		free(r->iov);
	r->used = 0;
}

/* --- the kernels, on resolved local memory --- */

static int compare(const struct iovec *a, uint32_t na, const struct iovec *b, uint32_t nb)
{
	struct ferry_hal_iov_cur ca, cb;
	ferry_hal_iov_cur_init(&ca, a, na);
	ferry_hal_iov_cur_init(&cb, b, nb);
	for (;;) {
		size_t ra = ferry_hal_iov_cur_avail(&ca), rb = ferry_hal_iov_cur_avail(&cb);
		size_t n = ra < rb ? ra : rb;
		if (!n)
			return 0;
		if (memcmp(ferry_hal_iov_cur_ptr(&ca), ferry_hal_iov_cur_ptr(&cb), n))
			return -EILSEQ;
		ferry_hal_iov_cur_advance(&ca, n);
		ferry_hal_iov_cur_advance(&cb, n);
	}
}

struct macc_io {
	const struct iovec *v[R_COUNT];
	uint32_t n[R_COUNT];
};

static int run_op(struct ferry_hal_accel_op *op, const struct macc_io *io)
{
	const struct iovec *s = io->v[R_SRC], *d = io->v[R_DST], *a = io->v[R_AUX];
	uint32_t sn = io->n[R_SRC], dn = io->n[R_DST], an = io->n[R_AUX];
	switch (op->opcode) {
	case FERRY_ACCEL_OP_COPY:
		ferry_iov_copy(d, dn, s, sn);
		return 0;
	case FERRY_ACCEL_OP_FILL:
		for (uint32_t i = 0; i < dn; i++)
			memset(d[i].iov_base, op->fill, d[i].iov_len);
		return 0;
	case FERRY_ACCEL_OP_COMPARE:
		return compare(s, sn, a, an);
	case FERRY_ACCEL_OP_CRC32C:
		op->crc = ferry_crc32c_iov(op->crc_seed, s, sn);
		return 0;
	case FERRY_ACCEL_OP_COPY_CRC32C:
		op->crc = ferry_crc32c_iov(op->crc_seed, s, sn);
		ferry_iov_copy(d, dn, s, sn);
		return 0;
	case FERRY_ACCEL_OP_ENCRYPT:
		return ferry_crypto_encrypt(op->key, d, dn, s, sn, op->tweak);
	case FERRY_ACCEL_OP_DECRYPT:
		return ferry_crypto_decrypt(op->key, d, dn, s, sn, op->tweak);
	case FERRY_ACCEL_OP_DIF_GENERATE:
		return ferry_dif_generate(op->dif, d, dn, op->nblocks);
	case FERRY_ACCEL_OP_DIF_VERIFY:
		return ferry_dif_verify(op->dif, s, sn, op->nblocks, &op->dif_err);
	case FERRY_ACCEL_OP_DIF_STRIP:
		return ferry_dif_strip(op->dif, d, dn, s, sn, op->nblocks, &op->dif_err);
	case FERRY_ACCEL_OP_DIF_INSERT:
		return ferry_dif_insert(op->dif, d, dn, s, sn, op->nblocks);
	case FERRY_ACCEL_OP_DIX_GENERATE:
		return ferry_dix_generate(op->dif, s, sn, a, an, op->nblocks);
	case FERRY_ACCEL_OP_DIX_VERIFY:
		return ferry_dix_verify(op->dif, s, sn, a, an, op->nblocks, &op->dif_err);
	default:
		return -EINVAL;
	}
}

/* --- streaming fast paths of the declared chains (no scratch pass) --- */

/*
 * The segments of @v covering the data bytes of @nblocks extended blocks of @bs + @md bytes
 * (every PI skipped). Returns an array (@stack if it fits, else allocated; NULL on ENOMEM).
 */
static struct iovec *data_portions(const struct iovec *v, uint32_t n, uint32_t nblocks, uint32_t bs,
				   uint32_t md, struct iovec *stack, uint32_t cap, uint32_t *out_n)
{
	uint64_t worst = (uint64_t)nblocks + n;
	struct iovec *o = worst <= cap ? stack : calloc(worst, sizeof(*o));
	if (!o)
		return NULL;
	uint32_t k = 0, i = 0;
	size_t off = 0;
	for (uint32_t b = 0; b < nblocks; b++) {
		for (int part = 0; part < 2; part++) {
			size_t want = part ? md : bs;
			while (want && i < n) {
				size_t take = v[i].iov_len - off < want ? v[i].iov_len - off : want;
				if (!part && take) {
					if (k && (char *)o[k - 1].iov_base + o[k - 1].iov_len ==
							 (char *)v[i].iov_base + off)
						o[k - 1].iov_len += take;
					else
						o[k++] = (struct iovec){(char *)v[i].iov_base + off,
									take};
				}
				want -= take;
				off += take;
				if (off == v[i].iov_len) {
					i++;
					off = 0;
				}
			}
		}
	}
	*out_n = k;
	return o;
}

/*
 * [copy,] encrypt, dif-insert: encrypt the source straight into the data bytes of the
 * destination's extended blocks, then generate the PI in place (a copy in front only moves
 * the bytes the encrypt reads). [dif-strip, decrypt[, copy]]: verify the PI in place, then
 * decrypt the data bytes straight into the final destination. Returns 1 if it ran (status in
 * @d), 0 if the descriptor is not one of these shapes or source and destination overlap.
 */
static int fast_path(struct ferry_hal_accel_desc *d, struct macc_res *res)
{
	uint32_t n = d->nops;
	struct ferry_hal_accel_op *o0 = &d->ops[0], *last = &d->ops[n - 1];
	int pull = n == 3 && o0->opcode == FERRY_ACCEL_OP_COPY;
	int push = n == 3 && last->opcode == FERRY_ACCEL_OP_COPY;
	struct ferry_hal_accel_op *enc = &d->ops[pull ? 1 : 0], *ins = &d->ops[pull ? 2 : 1];
	int write = (n == 2 || pull) && enc->opcode == FERRY_ACCEL_OP_ENCRYPT &&
		    ins->opcode == FERRY_ACCEL_OP_DIF_INSERT;
	int read = (n == 2 || push) && o0->opcode == FERRY_ACCEL_OP_DIF_STRIP &&
		   d->ops[1].opcode == FERRY_ACCEL_OP_DECRYPT;
	if (!write && !read)
		return 0;
	const struct macc_res *src = &res[0 * R_COUNT + R_SRC];
	const struct macc_res *dst = &res[(n - 1) * R_COUNT + R_DST];
	if (ferry_hal_iov_overlap(src->iov, src->cnt, dst->iov, dst->cnt))
		return 0;
	const struct ferry_hal_accel_op *fmt = write ? ins : o0;
	const struct ferry_mem *ext = write ? &ins->dst : &o0->src;
	const struct macc_res *ext_res = write ? dst : src;
	struct iovec stack[MACC_STACK_SEGS];
	uint32_t cnt;
	struct iovec *data = data_portions(ext_res->iov, ext_res->cnt, fmt->nblocks,
					   fmt->dif->block_size, fmt->dif->md_size, stack,
					   MACC_STACK_SEGS, &cnt);
	(void)ext;
	int rc;
	if (!data) {
		rc = -ENOMEM;
		d->failed_op = 0;
	} else if (write) {
		rc = ferry_crypto_encrypt(enc->key, data, cnt, src->iov, src->cnt, enc->tweak);
		d->failed_op = pull ? 1 : 0;
		if (!rc) {
			rc = ferry_dif_generate(ins->dif, dst->iov, dst->cnt, ins->nblocks);
			d->failed_op = pull ? 2 : 1;
		}
	} else {
		rc = ferry_dif_verify(o0->dif, src->iov, src->cnt, o0->nblocks, &o0->dif_err);
		d->failed_op = 0;
		if (!rc) {
			struct ferry_hal_accel_op *dec = &d->ops[1];
			rc = ferry_crypto_decrypt(dec->key, dst->iov, dst->cnt, data, cnt,
						  dec->tweak);
			d->failed_op = 1;
		}
	}
	if (data != stack)
		free(data);
	d->status = rc;
	if (!rc)
		d->failed_op = 0;
	return 1;
}

/*
 * Execute a descriptor. Every operand the engine touches is resolved (IOMMU checks included)
 * before any byte moves; a chain's virtual links live in scratch memory, unless a streaming
 * fast path computes the same bytes without them.
 */
static void execute(struct mock_dev *dev, struct ferry_hal_accel_desc *d)
{
	struct macc_res *res = calloc((size_t)d->nops * R_COUNT, sizeof(*res));
	/* Links stay inside the engine only for chains declared with VIRT_INTERMEDIATE; other
	 * chains (none in the table today) write their links to the memory the SDK gave. */
	int chained = d->chain >= 0 && (uint32_t)d->chain < MOCK_NCHAINS && d->nops > 1 &&
		      (mock_chains[d->chain].flags & VIRT);
	int rc = 0;
	uint32_t j = 0;
	d->status = 0;
	d->failed_op = 0;
	if (!res) {
		d->status = -ENOMEM;
		return;
	}
	/* Resolve: link k (op j's dst feeding op j+1) is internal when the chain says so. */
	for (j = 0; j < d->nops && !rc; j++) {
		struct ferry_hal_accel_op *op = &d->ops[j];
		uint8_t rd = reads_of(op->opcode), wr = writes_of(op->opcode);
		for (int k = 0; k < R_COUNT && !rc; k++) {
			if (!((rd | wr) & (1u << k)))
				continue;
			int link_out = chained && j + 1 < d->nops && k == R_DST &&
				       (wr & (1u << R_DST));
			int link_in = chained && j > 0 && k == R_SRC &&
				      (writes_of(d->ops[j - 1].opcode) & (1u << R_DST));
			if (link_out || link_in)
				continue;
			struct macc_res *r = &res[j * R_COUNT + k];
			if ((rd & (1u << k)) && (wr & (1u << k))) {
				rc = resolve_one(dev, opnd(op, k), 0, r); /* needs READ too */
				res_free(r);
			}
			if (!rc)
				rc = resolve_one(dev, opnd(op, k), (wr >> k) & 1, r);
		}
	}
	if (rc) {
		d->status = rc;
		d->failed_op = j - 1;
		goto out;
	}
	if (chained && fast_path(d, res))
		goto out;
	const struct iovec *prev_v = NULL;
	uint32_t prev_n = 0;
	struct iovec link[2];
	for (j = 0; j < d->nops; j++) {
		struct ferry_hal_accel_op *op = &d->ops[j];
		struct macc_io io;
		for (int k = 0; k < R_COUNT; k++) {
			io.v[k] = res[j * R_COUNT + k].iov;
			io.n[k] = res[j * R_COUNT + k].cnt;
		}
		if (chained && j > 0 && prev_v) {
			io.v[R_SRC] = prev_v;
			io.n[R_SRC] = prev_n;
		}
		prev_v = NULL;
		if (chained && j + 1 < d->nops && (writes_of(op->opcode) & (1u << R_DST))) {
			size_t len = (size_t)mem_len(&op->dst);
			void *b = scratch_get((int)(j & 1), len);
			if (!b) {
				rc = -ENOMEM;
				break;
			}
			link[j & 1] = (struct iovec){b, len};
			io.v[R_DST] = &link[j & 1];
			io.n[R_DST] = 1;
			prev_v = &link[j & 1];
			prev_n = 1;
		} else if (chained && j + 1 < d->nops) {
			prev_v = io.v[R_SRC]; /* an op that writes nothing passes its input on */
			prev_n = io.n[R_SRC];
		}
		if (io.n[R_SRC] && op->opcode != FERRY_ACCEL_OP_FILL &&
		    op->opcode != FERRY_ACCEL_OP_DIF_GENERATE &&
		    ferry_iov_length(io.v[R_SRC], io.n[R_SRC]) < mem_len(&op->src)) {
			rc = -EINVAL;
			break;
		}
		rc = run_op(op, &io);
		if (rc)
			break;
	}
	if (rc) {
		d->status = rc;
		d->failed_op = j;
	}
out:
	for (uint32_t i = 0; i < d->nops * R_COUNT; i++)
		res_free(&res[i]);
	free(res);
}

static void job_run(struct mock_work *w)
{
	struct macc_job *job = (struct macc_job *)w;
	struct ferry_hal_accel_desc *d = job->desc;
	if (job->inject != FERRY_XFER_SUCCESS) {
		d->status = ferry_hal_xfer_status_errno(job->inject);
		d->failed_op = 0;
		snprintf(d->reason, sizeof(d->reason), "injected error: transfer status %d",
			 (int)job->inject);
	} else {
		/* What this (engine) thread logs while executing is the reason of a failure:
		 * hand it to the submitter in the descriptor, its thread never saw the log. */
		ferry_set_last_error(NULL, NULL);
		execute(job->mc->dev, d);
		if (d->status)
			snprintf(d->reason, sizeof(d->reason), "%s", ferry_last_error());
	}
	struct macc_chan *mc = job->mc;
	pthread_mutex_lock(&mc->lock);
	job->next = NULL;
	if (mc->done_tail)
		mc->done_tail->next = job;
	else
		mc->done_head = job;
	mc->done_tail = job;
	pthread_mutex_unlock(&mc->lock);
}

static int job_of(const struct mock_work *w, void *mc)
{
	return w->run == job_run && ((const struct macc_job *)(const void *)w)->mc == mc;
}

void mock_accel_chan_destroy(void *chan)
{
	struct mock_dev *dev = mock_chan_dev(chan);
	struct macc_chan *mc = macc_find(chan, 0);
	if (!mc || !dev)
		return;
	/* Queued descriptors are dropped unrun; the one on the engine is waited for. After
	 * this, every job of the channel is either in the dropped list or in its done list. */
	struct mock_work *dropped = mock_engine_cancel_if(dev, job_of, mc);
	while (dropped) {
		struct mock_work *nx = dropped->next;
		free(dropped);
		dropped = nx;
	}
	pthread_mutex_lock(&mc->lock);
	struct macc_job *done = mc->done_head;
	mc->done_head = mc->done_tail = NULL;
	pthread_mutex_unlock(&mc->lock);
	while (done) {
		struct macc_job *nx = done->next;
		free(done);
		done = nx;
	}
	macc_release(mc);
}

/* --- the HAL accel ops --- */

static int mock_accel_reaches(void *chan, const struct ferry_memdomain *domain)
{
	/* A zero-length probe succeeds exactly for the system domain and this device's
	 * function domains (mock_internal.h). */
	struct ferry_mem probe = {.domain = (struct ferry_memdomain *)domain};
	uint32_t cnt = 0;
	return mock_resolve(mock_chan_dev(chan), &probe, 0, 0, NULL, &cnt) == 0;
}

static int mock_accel_check(void *chan, const struct ferry_hal_accel_desc *d)
{
	if (d->nops == 0 || d->nops > FERRY_HAL_ACCEL_CHAIN_MAX)
		return -EINVAL;
	/* One declared chain, exactly as declared, or one single operation: nothing else. */
	if (d->chain >= 0) {
		if ((uint32_t)d->chain >= MOCK_NCHAINS || d->nops != mock_chains[d->chain].nops)
			return -EINVAL;
		for (uint32_t j = 0; j < d->nops; j++)
			if (d->ops[j].opcode != mock_chains[d->chain].ops[j])
				return -EINVAL;
	} else if (d->chain != -1 || d->nops != 1) {
		return -EINVAL;
	}
	for (uint32_t j = 0; j < d->nops; j++) {
		const struct ferry_hal_accel_op *op = &d->ops[j];
		if ((unsigned)op->opcode >= FERRY_ACCEL_OP_COUNT)
			return -ENOTSUP;
		if ((op->opcode == FERRY_ACCEL_OP_ENCRYPT ||
		     op->opcode == FERRY_ACCEL_OP_DECRYPT) &&
		    !op->key)
			return -EINVAL;
	}
	return 0;
}

static int mock_accel_submit(void *chan, struct ferry_hal_accel_desc *const *descs, uint32_t n)
{
	struct mock_dev *dev = mock_chan_dev(chan);
	if (!dev) {
		MACC_ERR("accel submit: the channel's device was closed");
		return -ENODEV;
	}
	struct macc_chan *mc = macc_find(chan, 1);
	if (!mc)
		return -ENOMEM;
	uint32_t i = 0;
	for (; i < n && mc->inflight < MACC_MAX_INFLIGHT; i++) {
		struct macc_job *job = calloc(1, sizeof(*job));
		if (!job)
			break;
		job->desc = descs[i];
		job->mc = mc;
		job->inject = mock_inject_take(dev, chan);
		uint64_t lat = mock_latency_ns(dev);
		job->work.run = job_run;
		job->work.due_ns = lat ? mock_now_ns() + lat : 0;
		mc->inflight++;
		mock_engine_queue(dev, &job->work);
	}
	if (mc->inflight == 0)
		macc_release(mc);
	return (int)i;
}

static int mock_accel_poll(void *chan, struct ferry_hal_accel_desc **done, uint32_t max)
{
	struct macc_chan *mc = macc_find(chan, 0);
	if (!mc || max == 0)
		return 0;
	pthread_mutex_lock(&mc->lock);
	struct macc_job *list = mc->done_head;
	uint32_t n = 0;
	struct macc_job *last = NULL;
	for (struct macc_job *j = list; j && n < max; j = j->next) {
		last = j;
		n++;
	}
	if (last) {
		mc->done_head = last->next;
		if (!mc->done_head)
			mc->done_tail = NULL;
		last->next = NULL;
	}
	pthread_mutex_unlock(&mc->lock);
	uint32_t i = 0;
	while (list) {
		struct macc_job *nx = list->next;
		done[i++] = list->desc;
		free(list);
		list = nx;
	}
	mc->inflight -= n;
	if (mc->inflight == 0)
		macc_release(mc);
	return (int)n;
}

const struct ferry_hal_accel_ops mock_accel_ops = {
	.abi_version = FERRY_HAL_ACCEL_ABI_VERSION,
	.opcodes = ALL_OPS,
	.chains = mock_chains,
	.nchains = MOCK_NCHAINS,
	.reaches = mock_accel_reaches,
	.check = mock_accel_check,
	.submit = mock_accel_submit,
	.poll = mock_accel_poll,
};
