/*
 * Sequences: creation, the append_* functions with their argument checks, reverse, finish
 * (runs the passes, then hands the sequence to the executor), abort, dump.
 */
#include <stddef.h>
#include <string.h>
#include "accel_internal.h"

#define COMP ACCEL_COMP

FERRY_API int ferry_seq_create(struct ferry_accel_chan *chan, struct ferry_seq **out)
{
	if (!chan || !out) {
		FERRY_ERR(COMP, "seq_create: NULL %s", !chan ? "channel" : "out");
		return -EINVAL;
	}
	struct ferry_seq *s = chan->free_seqs;
	if (!s) {
		FERRY_ERR(COMP, "seq_create: all %u sequences of the channel are alive",
			  chan->opts.max_seqs);
		return -ENOMEM;
	}
	chan->free_seqs = s->next;
	chan->seqs_free--;
	/* Hot path: the descriptor (written in full by run_hw() before each submit) and the
	 * error message (written before it is read) are most of the struct; zero the rest. */
	memset(s, 0, offsetof(struct ferry_seq, desc));
	s->desc_head = s->desc_tail = NULL;
	s->next = NULL;
	s->errmsg[0] = '\0';
	s->chan = chan;
	s->state = SEQ_BUILDING;
	s->id = ++chan->seq_ids;
	*out = s;
	return 0;
}

void accel_seq_free(struct ferry_seq *s)
{
	struct ferry_accel_chan *ch = s->chan;
	accel_release_buffers(s);
	struct accel_task *t = s->head;
	while (t) {
		struct accel_task *nx = t->next;
		accel_task_put(ch, t);
		t = nx;
	}
	s->head = s->tail = NULL;
	s->state = SEQ_FREE;
	s->next = ch->free_seqs;
	ch->free_seqs = s;
	ch->seqs_free++;
}

/* --- argument checks --- */

/*
 * A virtual buffer names the bytes between two steps of *one* sequence: its pool buffer is
 * bound during that sequence only, so a second live sequence could neither see those bytes
 * nor safely bind it too. The first append claims it; the claim ends when the sequence is
 * freed (completed or aborted), recognised by the sequence id, so nothing must be undone.
 */
struct ferry_seq *vbuf_owner(const struct accel_vbuf *v)
{
	struct ferry_seq *o = v->owner;
	return o && o->state != SEQ_FREE && o->id == v->owner_id ? o : NULL;
}

static void claim_vbufs(struct ferry_seq *seq, struct accel_task *t)
{
	for (int k = 0; k < OPND_COUNT; k++) {
		if (t->opnd[k].iovcnt && accel_is_virtual(&t->opnd[k])) {
			struct accel_vbuf *v = t->opnd[k].domain_ctx;
			v->owner = seq;
			v->owner_id = seq->id;
		}
	}
}

static int check_mem(struct ferry_seq *seq, const char *op, const char *which,
		     const struct ferry_mem *m, uint64_t *len)
{
	if (!m) {
		FERRY_ERR(COMP, "%s: NULL %s", op, which);
		return -EINVAL;
	}
	if (!m->iov || m->iovcnt == 0) {
		FERRY_ERR(COMP, "%s: %s has no segments", op, which);
		return -EINVAL;
	}
	uint64_t total = 0;
	for (uint32_t i = 0; i < m->iovcnt; i++) {
		if (total + m->iov[i].iov_len < total) {
			FERRY_ERR(COMP, "%s: %s length overflows", op, which);
			return -EINVAL;
		}
		total += m->iov[i].iov_len;
	}
	if (total == 0) {
		FERRY_ERR(COMP, "%s: %s is empty", op, which);
		return -EINVAL;
	}
	if (accel_is_virtual(m)) {
		struct accel_vbuf *v = accel_vbuf_of(seq->chan, m->domain_ctx);
		if (!v) {
			FERRY_ERR(COMP,
				  "%s: %s is in the accel domain but its context is not a live "
				  "virtual buffer of this channel",
				  op, which);
			return -EINVAL;
		}
		struct ferry_seq *o = vbuf_owner(v);
		if (o && o != seq) {
			FERRY_ERR(COMP,
				  "%s: %s is virtual buffer %u, used by another sequence (%u) still "
				  "alive: a virtual buffer belongs to one sequence at a time",
				  op, which, v->idx, o->id);
			return -EBUSY;
		}
		if (m->iovcnt > ACCEL_XIOV_MAX) {
			FERRY_ERR(COMP, "%s: %s has %u segments in the accel domain (max %d)", op,
				  which, m->iovcnt, ACCEL_XIOV_MAX);
			return -EINVAL;
		}
		for (uint32_t i = 0; i < m->iovcnt; i++) {
			uint64_t a = (uint64_t)(uintptr_t)m->iov[i].iov_base;
			if (a < v->base || a - v->base > v->len ||
			    m->iov[i].iov_len > v->len - (a - v->base)) {
				FERRY_ERR(COMP,
					  "%s: %s segment %u [0x%llx, +%zu) leaves virtual "
					  "buffer %u [0x%llx, +%zu)",
					  op, which, i, (unsigned long long)a, m->iov[i].iov_len,
					  v->idx, (unsigned long long)v->base, v->len);
				return -EINVAL;
			}
		}
	} else if (accel_is_system(m)) {
		for (uint32_t i = 0; i < m->iovcnt; i++) {
			if (!m->iov[i].iov_base && m->iov[i].iov_len) {
				FERRY_ERR(COMP, "%s: %s segment %u has a NULL address", op, which,
					  i);
				return -EINVAL;
			}
		}
	}
	*len = total;
	return 0;
}

static int check_len(const char *op, const char *which, uint64_t got, uint64_t want)
{
	if (got == want)
		return 0;
	FERRY_ERR(COMP, "%s: %s is %llu bytes, expected %llu", op, which, (unsigned long long)got,
		  (unsigned long long)want);
	return -EINVAL;
}

/* Source and destination must be the same bytes (in place) or not overlap at all. */
static int check_overlap(const char *op, const struct ferry_mem *dst, const struct ferry_mem *src)
{
	if (accel_mem_same(dst, src) || !accel_mem_addr_overlap(dst, src))
		return 0;
	FERRY_ERR(COMP, "%s: source and destination overlap without being the same bytes", op);
	return -EINVAL;
}

static int check_dif(const char *op, const struct ferry_dif_ctx *ctx, uint32_t nblocks,
		     int interleave)
{
	if (!ctx) {
		FERRY_ERR(COMP, "%s: NULL DIF context", op);
		return -EINVAL;
	}
	struct ferry_dif_ctx tmp;
	if (ferry_dif_ctx_init(&tmp, ctx->block_size, ctx->md_size, ctx->md_interleave, ctx->type,
			       ctx->flags, ctx->init_ref_tag, ctx->app_tag, ctx->app_tag_mask)) {
		FERRY_ERR(COMP, "%s: invalid DIF context (block %u, md %u, type %d, flags 0x%x)",
			  op, ctx->block_size, ctx->md_size, (int)ctx->type, ctx->flags);
		return -EINVAL;
	}
	if (!!ctx->md_interleave != !!interleave) {
		FERRY_ERR(COMP, "%s: needs a context with md_interleave = %d", op, interleave);
		return -EINVAL;
	}
	if (nblocks == 0) {
		FERRY_ERR(COMP, "%s: nblocks is 0", op);
		return -EINVAL;
	}
	return 0;
}

static int check_state(struct ferry_seq *seq, const char *op)
{
	if (!seq) {
		FERRY_ERR(COMP, "%s: NULL sequence", op);
		return -EINVAL;
	}
	if (seq->state != SEQ_BUILDING) {
		FERRY_ERR(COMP, "%s: sequence %u is already finished", op, seq->id);
		return -EINVAL;
	}
	return 0;
}

static struct accel_task *new_task(struct ferry_seq *seq, const char *op, uint8_t opcode,
				   ferry_seq_step_cb cb, void *cb_arg)
{
	struct accel_task *t = accel_task_get(seq->chan);
	if (!t) {
		FERRY_ERR(COMP, "%s: all %u tasks of the channel are in use", op,
			  seq->chan->opts.max_tasks);
		return NULL;
	}
	t->seq = seq;
	t->opcode = opcode;
	t->cb = cb;
	t->cb_arg = cb_arg;
	t->prev = seq->tail;
	t->next = NULL;
	if (seq->tail)
		seq->tail->next = t;
	else
		seq->head = t;
	seq->tail = t;
	seq->ntasks++;
	return t;
}

static int two_mem(struct ferry_seq *seq, const char *op, const struct ferry_mem *dst,
		   const struct ferry_mem *src, uint64_t *dl, uint64_t *sl)
{
	int rc = check_state(seq, op);
	if (!rc)
		rc = check_mem(seq, op, "destination", dst, dl);
	if (!rc)
		rc = check_mem(seq, op, "source", src, sl);
	return rc;
}

FERRY_API int ferry_seq_append_copy(struct ferry_seq *seq, const struct ferry_mem *dst,
				    const struct ferry_mem *src, ferry_seq_step_cb cb, void *cb_arg)
{
	const char *op = "append_copy";
	uint64_t dl, sl;
	int rc = two_mem(seq, op, dst, src, &dl, &sl);
	if (!rc)
		rc = check_len(op, "destination", dl, sl);
	if (!rc)
		rc = check_overlap(op, dst, src);
	if (rc)
		return rc;
	struct accel_task *t = new_task(seq, op, FERRY_ACCEL_OP_COPY, cb, cb_arg);
	if (!t)
		return -ENOMEM;
	t->opnd[OPND_DST] = *dst;
	t->opnd[OPND_SRC] = *src;
	claim_vbufs(seq, t);
	return 0;
}

FERRY_API int ferry_seq_append_fill(struct ferry_seq *seq, const struct ferry_mem *dst,
				    uint8_t pattern, ferry_seq_step_cb cb, void *cb_arg)
{
	const char *op = "append_fill";
	uint64_t dl;
	int rc = check_state(seq, op);
	if (!rc)
		rc = check_mem(seq, op, "destination", dst, &dl);
	if (rc)
		return rc;
	struct accel_task *t = new_task(seq, op, FERRY_ACCEL_OP_FILL, cb, cb_arg);
	if (!t)
		return -ENOMEM;
	t->opnd[OPND_DST] = *dst;
	t->fill = pattern;
	claim_vbufs(seq, t);
	return 0;
}

FERRY_API int ferry_seq_append_compare(struct ferry_seq *seq, const struct ferry_mem *src1,
				       const struct ferry_mem *src2, ferry_seq_step_cb cb,
				       void *cb_arg)
{
	const char *op = "append_compare";
	uint64_t l1, l2;
	int rc = check_state(seq, op);
	if (!rc)
		rc = check_mem(seq, op, "first source", src1, &l1);
	if (!rc)
		rc = check_mem(seq, op, "second source", src2, &l2);
	if (!rc)
		rc = check_len(op, "second source", l2, l1);
	if (rc)
		return rc;
	struct accel_task *t = new_task(seq, op, FERRY_ACCEL_OP_COMPARE, cb, cb_arg);
	if (!t)
		return -ENOMEM;
	t->opnd[OPND_SRC] = *src1;
	t->opnd[OPND_AUX] = *src2;
	claim_vbufs(seq, t);
	return 0;
}

FERRY_API int ferry_seq_append_crc32c(struct ferry_seq *seq, const struct ferry_mem *src,
				      uint32_t seed, uint32_t *crc_out, ferry_seq_step_cb cb,
				      void *cb_arg)
{
	const char *op = "append_crc32c";
	uint64_t sl;
	int rc = check_state(seq, op);
	if (!rc)
		rc = check_mem(seq, op, "source", src, &sl);
	if (!rc && !crc_out) {
		FERRY_ERR(COMP, "%s: NULL crc_out", op);
		rc = -EINVAL;
	}
	if (rc)
		return rc;
	struct accel_task *t = new_task(seq, op, FERRY_ACCEL_OP_CRC32C, cb, cb_arg);
	if (!t)
		return -ENOMEM;
	t->opnd[OPND_SRC] = *src;
	t->crc_seed = seed;
	t->crc_out = crc_out;
	claim_vbufs(seq, t);
	return 0;
}

FERRY_API int ferry_seq_append_copy_crc32c(struct ferry_seq *seq, const struct ferry_mem *dst,
					   const struct ferry_mem *src, uint32_t seed,
					   uint32_t *crc_out, ferry_seq_step_cb cb, void *cb_arg)
{
	const char *op = "append_copy_crc32c";
	uint64_t dl, sl;
	int rc = two_mem(seq, op, dst, src, &dl, &sl);
	if (!rc)
		rc = check_len(op, "destination", dl, sl);
	if (!rc)
		rc = check_overlap(op, dst, src);
	if (!rc && !crc_out) {
		FERRY_ERR(COMP, "%s: NULL crc_out", op);
		rc = -EINVAL;
	}
	if (rc)
		return rc;
	struct accel_task *t = new_task(seq, op, FERRY_ACCEL_OP_COPY_CRC32C, cb, cb_arg);
	if (!t)
		return -ENOMEM;
	t->opnd[OPND_DST] = *dst;
	t->opnd[OPND_SRC] = *src;
	t->crc_seed = seed;
	t->crc_out = crc_out;
	claim_vbufs(seq, t);
	return 0;
}

static int append_xts(struct ferry_seq *seq, const char *op, uint8_t opcode,
		      const struct ferry_mem *dst, const struct ferry_mem *src,
		      struct ferry_crypto_key *key, uint64_t tweak, ferry_seq_step_cb cb,
		      void *cb_arg)
{
	uint64_t dl, sl;
	int rc = two_mem(seq, op, dst, src, &dl, &sl);
	if (!rc)
		rc = check_len(op, "destination", dl, sl);
	if (rc)
		return rc;
	uint32_t du = ferry_crypto_key_get_data_unit(key);
	if (!key || !du) {
		FERRY_ERR(COMP, "%s: NULL key", op);
		return -EINVAL;
	}
	if (sl % du) {
		FERRY_ERR(COMP, "%s: length %llu is not a multiple of the key's data unit %u", op,
			  (unsigned long long)sl, du);
		return -EINVAL;
	}
	rc = check_overlap(op, dst, src);
	if (rc)
		return rc;
	struct accel_task *t = new_task(seq, op, opcode, cb, cb_arg);
	if (!t)
		return -ENOMEM;
	t->opnd[OPND_DST] = *dst;
	t->opnd[OPND_SRC] = *src;
	t->key = key;
	t->tweak = tweak;
	claim_vbufs(seq, t);
	return 0;
}

FERRY_API int ferry_seq_append_encrypt(struct ferry_seq *seq, const struct ferry_mem *dst,
				       const struct ferry_mem *src, struct ferry_crypto_key *key,
				       uint64_t tweak, ferry_seq_step_cb cb, void *cb_arg)
{
	return append_xts(seq, "append_encrypt", FERRY_ACCEL_OP_ENCRYPT, dst, src, key, tweak, cb,
			  cb_arg);
}

FERRY_API int ferry_seq_append_decrypt(struct ferry_seq *seq, const struct ferry_mem *dst,
				       const struct ferry_mem *src, struct ferry_crypto_key *key,
				       uint64_t tweak, ferry_seq_step_cb cb, void *cb_arg)
{
	return append_xts(seq, "append_decrypt", FERRY_ACCEL_OP_DECRYPT, dst, src, key, tweak, cb,
			  cb_arg);
}

static struct accel_task *dif_task(struct ferry_seq *seq, const char *op, uint8_t opcode,
				   const struct ferry_dif_ctx *ctx, uint32_t nblocks,
				   struct ferry_dif_error *err, ferry_seq_step_cb cb, void *cb_arg)
{
	struct accel_task *t = new_task(seq, op, opcode, cb, cb_arg);
	if (!t)
		return NULL;
	t->dif = *ctx;
	t->nblocks = nblocks;
	t->dif_err = err;
	return t;
}

static uint64_t ext_len(const struct ferry_dif_ctx *c, uint32_t n)
{
	return (uint64_t)n * (c->block_size + c->md_size);
}

static int append_dif_one(struct ferry_seq *seq, const char *op, uint8_t opcode,
			  const struct ferry_mem *buf, const struct ferry_dif_ctx *ctx,
			  uint32_t nblocks, struct ferry_dif_error *err, ferry_seq_step_cb cb,
			  void *cb_arg)
{
	uint64_t bl;
	int rc = check_state(seq, op);
	if (!rc)
		rc = check_dif(op, ctx, nblocks, 1);
	if (!rc)
		rc = check_mem(seq, op, "buffer", buf, &bl);
	if (!rc)
		rc = check_len(op, "buffer", bl, ext_len(ctx, nblocks));
	if (rc)
		return rc;
	struct accel_task *t = dif_task(seq, op, opcode, ctx, nblocks, err, cb, cb_arg);
	if (!t)
		return -ENOMEM;
	t->opnd[opcode == FERRY_ACCEL_OP_DIF_GENERATE ? OPND_DST : OPND_SRC] = *buf;
	claim_vbufs(seq, t);
	return 0;
}

FERRY_API int ferry_seq_append_dif_generate(struct ferry_seq *seq, const struct ferry_mem *buf,
					    const struct ferry_dif_ctx *ctx, uint32_t nblocks,
					    ferry_seq_step_cb cb, void *cb_arg)
{
	return append_dif_one(seq, "append_dif_generate", FERRY_ACCEL_OP_DIF_GENERATE, buf, ctx,
			      nblocks, NULL, cb, cb_arg);
}

FERRY_API int ferry_seq_append_dif_verify(struct ferry_seq *seq, const struct ferry_mem *buf,
					  const struct ferry_dif_ctx *ctx, uint32_t nblocks,
					  struct ferry_dif_error *err, ferry_seq_step_cb cb,
					  void *cb_arg)
{
	return append_dif_one(seq, "append_dif_verify", FERRY_ACCEL_OP_DIF_VERIFY, buf, ctx,
			      nblocks, err, cb, cb_arg);
}

static int append_dif_two(struct ferry_seq *seq, const char *op, uint8_t opcode,
			  const struct ferry_mem *dst, const struct ferry_mem *src,
			  const struct ferry_dif_ctx *ctx, uint32_t nblocks,
			  struct ferry_dif_error *err, ferry_seq_step_cb cb, void *cb_arg)
{
	uint64_t dl, sl;
	int rc = check_state(seq, op);
	if (!rc)
		rc = check_dif(op, ctx, nblocks, 1);
	if (!rc)
		rc = two_mem(seq, op, dst, src, &dl, &sl);
	if (rc)
		return rc;
	uint64_t plain = (uint64_t)nblocks * ctx->block_size, ext = ext_len(ctx, nblocks);
	bool strip = opcode == FERRY_ACCEL_OP_DIF_STRIP;
	rc = check_len(op, "source", sl, strip ? ext : plain);
	if (!rc)
		rc = check_len(op, "destination", dl, strip ? plain : ext);
	if (!rc && accel_mem_addr_overlap(dst, src)) {
		FERRY_ERR(COMP, "%s: source and destination overlap", op);
		rc = -EINVAL;
	}
	if (rc)
		return rc;
	struct accel_task *t = dif_task(seq, op, opcode, ctx, nblocks, err, cb, cb_arg);
	if (!t)
		return -ENOMEM;
	t->opnd[OPND_DST] = *dst;
	t->opnd[OPND_SRC] = *src;
	claim_vbufs(seq, t);
	return 0;
}

FERRY_API int ferry_seq_append_dif_strip(struct ferry_seq *seq, const struct ferry_mem *dst,
					 const struct ferry_mem *src,
					 const struct ferry_dif_ctx *ctx, uint32_t nblocks,
					 struct ferry_dif_error *err, ferry_seq_step_cb cb,
					 void *cb_arg)
{
	return append_dif_two(seq, "append_dif_strip", FERRY_ACCEL_OP_DIF_STRIP, dst, src, ctx,
			      nblocks, err, cb, cb_arg);
}

FERRY_API int ferry_seq_append_dif_insert(struct ferry_seq *seq, const struct ferry_mem *dst,
					  const struct ferry_mem *src,
					  const struct ferry_dif_ctx *ctx, uint32_t nblocks,
					  ferry_seq_step_cb cb, void *cb_arg)
{
	return append_dif_two(seq, "append_dif_insert", FERRY_ACCEL_OP_DIF_INSERT, dst, src, ctx,
			      nblocks, NULL, cb, cb_arg);
}

static int append_dix(struct ferry_seq *seq, const char *op, uint8_t opcode,
		      const struct ferry_mem *data, const struct ferry_mem *md,
		      const struct ferry_dif_ctx *ctx, uint32_t nblocks,
		      struct ferry_dif_error *err, ferry_seq_step_cb cb, void *cb_arg)
{
	uint64_t dl, ml;
	int rc = check_state(seq, op);
	if (!rc)
		rc = check_dif(op, ctx, nblocks, 0);
	if (!rc)
		rc = check_mem(seq, op, "data", data, &dl);
	if (!rc)
		rc = check_mem(seq, op, "metadata", md, &ml);
	if (!rc)
		rc = check_len(op, "data", dl, (uint64_t)nblocks * ctx->block_size);
	if (!rc)
		rc = check_len(op, "metadata", ml, (uint64_t)nblocks * ctx->md_size);
	if (!rc && accel_mem_addr_overlap(data, md)) {
		FERRY_ERR(COMP, "%s: data and metadata overlap", op);
		rc = -EINVAL;
	}
	if (rc)
		return rc;
	struct accel_task *t = dif_task(seq, op, opcode, ctx, nblocks, err, cb, cb_arg);
	if (!t)
		return -ENOMEM;
	t->opnd[OPND_SRC] = *data;
	t->opnd[OPND_AUX] = *md;
	claim_vbufs(seq, t);
	return 0;
}

FERRY_API int ferry_seq_append_dix_generate(struct ferry_seq *seq, const struct ferry_mem *data,
					    const struct ferry_mem *md,
					    const struct ferry_dif_ctx *ctx, uint32_t nblocks,
					    ferry_seq_step_cb cb, void *cb_arg)
{
	return append_dix(seq, "append_dix_generate", FERRY_ACCEL_OP_DIX_GENERATE, data, md, ctx,
			  nblocks, NULL, cb, cb_arg);
}

FERRY_API int ferry_seq_append_dix_verify(struct ferry_seq *seq, const struct ferry_mem *data,
					  const struct ferry_mem *md,
					  const struct ferry_dif_ctx *ctx, uint32_t nblocks,
					  struct ferry_dif_error *err, ferry_seq_step_cb cb,
					  void *cb_arg)
{
	return append_dix(seq, "append_dix_verify", FERRY_ACCEL_OP_DIX_VERIFY, data, md, ctx,
			  nblocks, err, cb, cb_arg);
}

FERRY_API struct ferry_accel_chan *ferry_seq_get_chan(const struct ferry_seq *seq)
{
	return seq ? seq->chan : NULL;
}

FERRY_API int ferry_seq_reverse(struct ferry_seq *seq)
{
	int rc = check_state(seq, "seq_reverse");
	if (rc)
		return rc;
	struct accel_task *t = seq->head;
	seq->head = seq->tail;
	seq->tail = t;
	while (t) {
		struct accel_task *nx = t->next;
		t->next = t->prev;
		t->prev = nx;
		t = nx;
	}
	return 0;
}

/*
 * The bytes of a virtual buffer are never readable by the caller (its pool buffer is given
 * back before the completion callback), so a last step writing one would compute something
 * nobody can see: almost certainly a layer that forgot its terminal copy. Refused before any
 * pass runs, so the sequence stays as appended and can be aborted.
 */
static int check_ends_in_real_memory(struct ferry_seq *seq)
{
	const struct accel_task *t = seq->tail;
	for (int k = 0; k < OPND_COUNT; k++) {
		if (!(accel_op_info(t->opcode)->writes & OPND_BIT(k)) || !accel_is_virtual(&t->opnd[k]))
			continue;
		const struct accel_vbuf *v = t->opnd[k].domain_ctx;
		FERRY_ERR(COMP,
			  "seq_finish: sequence %u ends with step %u (%s) writing virtual buffer %u: "
			  "a sequence must end in real memory (system or host domain)",
			  seq->id, seq->ntasks - 1, accel_op_info(t->opcode)->name, v->idx);
		return -EINVAL;
	}
	return 0;
}

FERRY_API int ferry_seq_finish(struct ferry_seq *seq, ferry_seq_cb cb, void *cb_arg)
{
	if (!seq || !cb) {
		FERRY_ERR(COMP, "seq_finish: NULL %s", !seq ? "sequence" : "callback");
		return -EINVAL;
	}
	if (seq->state != SEQ_BUILDING && seq->state != SEQ_PLANNED) {
		FERRY_ERR(COMP, "seq_finish: sequence %u is already finished", seq->id);
		return -EINVAL;
	}
	if (!seq->head) {
		FERRY_ERR(COMP, "seq_finish: sequence %u is empty", seq->id);
		return -EINVAL;
	}
	if (seq->state == SEQ_BUILDING) {
		int rc = check_ends_in_real_memory(seq);
		if (rc)
			return rc;
	}
	struct ferry_accel_chan *ch = seq->chan;
	if (seq->had_nomem)
		cnt_add(&ch->cnt, CNT_NOMEM_RETRIES, 1);
	if (seq->state == SEQ_BUILDING) {
		accel_plan_hook(seq, "input");
		if (!(ch->opts.disabled_passes & FERRY_ACCEL_PASS_ELIDE)) {
			seq->passes |= FERRY_ACCEL_PASS_ELIDE;
			cnt_add(&ch->cnt, CNT_COPIES_ELIDED, accel_pass_elide(seq));
		}
		accel_plan_hook(seq, "elide");
		if (!(ch->opts.disabled_passes & FERRY_ACCEL_PASS_FUSE)) {
			seq->passes |= FERRY_ACCEL_PASS_FUSE;
			accel_pass_fuse(seq);
		}
		accel_plan_hook(seq, "fuse");
		seq->state = SEQ_PLANNED;
	}
	int rc = accel_pass_materialise(seq);
	if (rc) {
		if (rc == -ENOMEM) {
			seq->had_nomem = 1;
			cnt_add(&ch->cnt, CNT_NOMEM, 1);
		}
		return rc;
	}
	accel_plan_hook(seq, "materialise");
	seq->cb = cb;
	seq->cb_arg = cb_arg;
	seq->state = SEQ_RUNNING;
	seq->status = 0;
	seq->cur = seq->head;
	ch->inflight++;
	cnt_add(&ch->cnt, CNT_SEQS_FINISHED, 1);
	accel_seq_ready(seq);
	return 0;
}

FERRY_API void ferry_seq_abort(struct ferry_seq *seq)
{
	if (!seq)
		return;
	if (seq->state != SEQ_BUILDING && seq->state != SEQ_PLANNED) {
		FERRY_ERR(COMP, "seq_abort: sequence %u is in flight or freed; ignored", seq->id);
		return;
	}
	struct ferry_accel_chan *ch = seq->chan;
	seq->state = SEQ_DONE; /* no further appends from the callbacks */
	for (struct accel_task *t = seq->head; t; t = t->next)
		if (!t->inserted && t->cb)
			t->cb(t->cb_arg, -ECANCELED);
	cnt_add(&ch->cnt, CNT_SEQS_ABORTED, 1);
	accel_seq_free(seq);
}

FERRY_API int ferry_seq_dump(const struct ferry_seq *seq, enum ferry_seq_dump_fmt fmt, char *buf,
			     size_t len)
{
	if (!seq || (fmt != FERRY_SEQ_DUMP_TEXT && fmt != FERRY_SEQ_DUMP_JSON) || (!buf && len)) {
		FERRY_ERR(COMP, "seq_dump: %s", !seq ? "NULL sequence" : "bad format or buffer");
		return -EINVAL;
	}
	return accel_dump(seq, fmt, buf, len);
}
