/*
 * Pass 3, materialisation: choose the engine of every unit (a single step or a fused group),
 * bind a pool buffer to every virtual buffer a unit still touches, and bounce operands the
 * chosen engine cannot reach: a pool buffer plus an inserted pull (before the unit, for what
 * it reads) and/or push (after it, for what it writes). All or nothing: if the pool or the
 * channel's tasks run out, everything taken by this attempt is given back and -ENOMEM is
 * returned with the plan of passes 1 and 2 intact, so finish can simply be called again.
 */
#include <string.h>
#include "accel_internal.h"

#define COMP ACCEL_COMP

void accel_release_buffers(struct ferry_seq *seq)
{
	struct ferry_accel_chan *ch = seq->chan;
	for (struct accel_task *t = seq->head; t; t = t->next) {
		for (uint8_t i = 0; i < t->nbufs; i++)
			accel_pool_put(ch, t->bufs[i], t->buf_class[i]);
		t->nbufs = 0;
	}
	while (seq->bound) {
		struct accel_vbuf *v = seq->bound;
		seq->bound = v->next;
		v->next = NULL;
		accel_pool_put(ch, v->real, v->real_class);
		v->real = NULL;
		v->bound_seq = NULL;
	}
	seq->nbufs = 0;
}

static void unlink_task(struct ferry_seq *seq, struct accel_task *t)
{
	if (t->prev)
		t->prev->next = t->next;
	else
		seq->head = t->next;
	if (t->next)
		t->next->prev = t->prev;
	else
		seq->tail = t->prev;
	seq->ntasks--;
}

static void undo(struct ferry_seq *seq)
{
	accel_release_buffers(seq);
	struct accel_task *t = seq->head;
	while (t) {
		struct accel_task *nx = t->next;
		if (t->inserted) {
			unlink_task(seq, t);
			accel_task_put(seq->chan, t);
		} else {
			memset(t->x, 0, sizeof(t->x));
			t->engine = ENG_NONE;
			t->fallback = 0;
		}
		t = nx;
	}
}

static void insert_before(struct ferry_seq *seq, struct accel_task *pos, struct accel_task *t)
{
	t->next = pos;
	t->prev = pos->prev;
	if (pos->prev)
		pos->prev->next = t;
	else
		seq->head = t;
	pos->prev = t;
	seq->ntasks++;
}

static void insert_after(struct ferry_seq *seq, struct accel_task *pos, struct accel_task *t)
{
	t->prev = pos;
	t->next = pos->next;
	if (pos->next)
		pos->next->prev = t;
	else
		seq->tail = t;
	pos->next = t;
	seq->ntasks++;
}

static int bind_vbuf(struct ferry_seq *seq, struct accel_task *t, int k)
{
	const struct ferry_mem *m = &t->opnd[k];
	struct accel_vbuf *v = m->domain_ctx;
	if (v->bound_seq && v->bound_seq != seq) {
		FERRY_ERR(COMP, "finish: virtual buffer %u is used by sequence %u in flight",
			  v->idx, v->bound_seq->id);
		return -EINVAL;
	}
	if (!v->bound_seq) {
		v->real = accel_pool_get(seq->chan, v->len, &v->real_class);
		if (!v->real)
			return -ENOMEM;
		v->bound_seq = seq;
		v->next = seq->bound;
		seq->bound = v;
		seq->nbufs++;
	}
	for (uint32_t i = 0; i < m->iovcnt; i++) {
		uint64_t off = (uint64_t)(uintptr_t)m->iov[i].iov_base - v->base;
		t->xiov[k][i].iov_base = (char *)v->real + off;
		t->xiov[k][i].iov_len = m->iov[i].iov_len;
	}
	t->x[k] = (struct ferry_mem){.domain = NULL, .iov = t->xiov[k], .iovcnt = m->iovcnt};
	return 0;
}

/* Pool buffers for a bounce of @len bytes into @owner (its bufs) and @iov. */
static int take_bounce(struct ferry_seq *seq, struct accel_task *owner, uint64_t len,
		       struct iovec *iov, uint32_t *cnt)
{
	size_t large = accel_large_size();
	uint64_t chunks = (len + large - 1) / large;
	if (chunks > ACCEL_XIOV_MAX) {
		FERRY_ERR(COMP,
			  "finish: an operand of %llu bytes needs a bounce of more than %d "
			  "pool buffers of %zu bytes",
			  (unsigned long long)len, ACCEL_XIOV_MAX, large);
		return -EINVAL;
	}
	uint32_t n = 0;
	while (len) {
		size_t l = len < large ? (size_t)len : large;
		uint8_t cls;
		void *b = accel_pool_get(seq->chan, l, &cls);
		if (!b)
			return -ENOMEM; /* what was taken is in owner->bufs: released by undo */
		owner->bufs[owner->nbufs] = b;
		owner->buf_class[owner->nbufs++] = cls;
		seq->nbufs++;
		iov[n].iov_base = b;
		iov[n++].iov_len = l;
		len -= l;
	}
	*cnt = n;
	return 0;
}

static struct accel_task *new_inserted(struct ferry_seq *seq, uint8_t opcode)
{
	struct accel_task *t = accel_task_get(seq->chan);
	if (!t)
		return NULL;
	t->seq = seq;
	t->opcode = opcode;
	t->inserted = 1;
	t->engine = ENG_DOMAIN;
	return t;
}

/* Bounce operand @k of @t: pull before @head if read, push after *@anchor if written. */
static int bounce(struct ferry_seq *seq, struct accel_task *t, int k, struct accel_task *head,
		  struct accel_task **anchor)
{
	const struct ferry_mem *m = &t->opnd[k];
	bool rd = accel_op_info(t->opcode)->reads & OPND_BIT(k);
	bool wr = accel_op_info(t->opcode)->writes & OPND_BIT(k);
	struct accel_task *pull = rd ? new_inserted(seq, ACCEL_OP_PULL) : NULL;
	struct accel_task *push = wr ? new_inserted(seq, ACCEL_OP_PUSH) : NULL;
	if ((rd && !pull) || (wr && !push)) {
		if (pull)
			accel_task_put(seq->chan, pull);
		if (push)
			accel_task_put(seq->chan, push);
		return -ENOMEM;
	}
	/* Link them first so that undo finds (and frees) whatever they hold. */
	if (pull)
		insert_before(seq, head, pull);
	if (push) {
		insert_after(seq, *anchor, push);
		*anchor = push;
	}
	struct accel_task *owner = pull ? pull : push;
	uint32_t cnt = 0;
	int rc = take_bounce(seq, owner, accel_mem_len(m), owner->xiov[OPND_DST], &cnt);
	if (rc)
		return rc;
	struct ferry_mem local = {.domain = NULL, .iov = owner->xiov[OPND_DST], .iovcnt = cnt};
	if (pull) {
		pull->opnd[OPND_SRC] = *m;
		pull->opnd[OPND_DST] = local;
		pull->x[OPND_SRC] = *m;
		pull->x[OPND_DST] = local;
	}
	if (push) {
		if (push != owner)
			memcpy(push->xiov[OPND_SRC], local.iov, cnt * sizeof(struct iovec));
		else
			memmove(push->xiov[OPND_SRC], local.iov, cnt * sizeof(struct iovec));
		struct ferry_mem psrc = {.domain = NULL,
					 .iov = push->xiov[OPND_SRC],
					 .iovcnt = cnt};
		push->opnd[OPND_SRC] = psrc;
		push->opnd[OPND_DST] = *m;
		push->x[OPND_SRC] = psrc;
		push->x[OPND_DST] = *m;
	}
	memcpy(t->xiov[k], local.iov, cnt * sizeof(struct iovec));
	t->x[k] = (struct ferry_mem){.domain = NULL, .iov = t->xiov[k], .iovcnt = cnt};
	return 0;
}

static int resolve(struct ferry_seq *seq, struct accel_task *t, int k, uint8_t engine,
		   struct accel_task *head, struct accel_task **anchor)
{
	const struct ferry_mem *m = &t->opnd[k];
	if (accel_is_virtual(m))
		return bind_vbuf(seq, t, k);
	if (accel_is_system(m) || (engine == ENG_HW && accel_hw_reaches(seq->chan, m))) {
		t->x[k] = *m;
		return 0;
	}
	return bounce(seq, t, k, head, anchor);
}

static uint8_t choose_engine(struct ferry_seq *seq, struct accel_task *t)
{
	struct ferry_accel_chan *ch = seq->chan;
	if (!ch->hw)
		return ENG_SW;
	if (ch->hw->opcodes & FERRY_HAL_ACCEL_OP_BIT(t->opcode)) {
		if (!ch->hw->check)
			return ENG_HW;
		struct ferry_hal_accel_desc d;
		memset(&d, 0, sizeof(d));
		d.nops = 1;
		d.chain = -1;
		accel_task_to_op(t, false, &d.ops[0]);
		if (ch->hw->check(ch->hwchan, &d) == 0)
			return ENG_HW;
	}
	t->fallback = 1;
	return ENG_SW;
}

static int plan_unit(struct ferry_seq *seq, struct accel_task *head)
{
	struct accel_task *m[FERRY_HAL_ACCEL_CHAIN_MAX];
	uint32_t n = head->group_len;
	m[0] = head;
	for (uint32_t j = 1; j < n; j++)
		m[j] = accel_next_planned(m[j - 1]);
	bool virt = n > 1 && (seq->chan->hw->chains[head->chain].flags &
			      FERRY_HAL_ACCEL_CHAIN_F_VIRT_INTERMEDIATE);
	uint8_t engine = n > 1 ? ENG_HW : choose_engine(seq, head);
	struct accel_task *anchor = m[n - 1];
	for (uint32_t j = 0; j < n; j++) {
		struct accel_task *t = m[j];
		t->engine = engine;
		uint8_t used = accel_op_info(t->opcode)->reads | accel_op_info(t->opcode)->writes;
		for (int k = 0; k < OPND_COUNT; k++) {
			if (!(used & OPND_BIT(k)))
				continue;
			bool link_out = virt && j + 1 < n && k == OPND_DST &&
					(accel_op_info(t->opcode)->writes & OPND_BIT(OPND_DST));
			bool link_in = virt && j > 0 && &t->opnd[k] == accel_data_in(t) &&
				       (accel_op_info(m[j - 1]->opcode)->writes & OPND_BIT(OPND_DST));
			if (link_out || link_in) {
				t->x[k] = t->opnd[k]; /* stays inside the engine */
				continue;
			}
			int rc = resolve(seq, t, k, engine, head, &anchor);
			if (rc)
				return rc;
		}
	}
	return 0;
}

int accel_pass_materialise(struct ferry_seq *seq)
{
	int rc = 0;
	for (struct accel_task *t = seq->head; t; t = t->next) {
		if (t->state != TASK_PLANNED || t->inserted || t->group_member)
			continue;
		rc = plan_unit(seq, t);
		if (rc)
			break;
	}
	if (rc) {
		undo(seq);
		return rc;
	}
	uint64_t inserted = 0;
	for (struct accel_task *t = seq->head; t; t = t->next)
		inserted += t->inserted;
	cnt_add(&seq->chan->cnt, CNT_BOUNCES, inserted);
	return 0;
}
