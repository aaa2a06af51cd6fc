/*
 * Pass 4, execution: walk a sequence's plan unit by unit on the channel's thread. A unit is
 * a software step, a device descriptor (one op or a fused group), or an inserted pull/push.
 * Units run strictly in order; per-step callbacks fire in order (a unit's callbacks wait for
 * the pushes that deliver its output); the first failure cancels the rest.
 */
#include <stdio.h>
#include <string.h>
#include <ferry/log.h>
#include "accel_internal.h"

#define COMP ACCEL_COMP

static void step_cb(struct accel_task *t, int status)
{
	if (!t->inserted && t->cb)
		t->cb(t->cb_arg, status);
}

static void seq_complete(struct ferry_seq *seq)
{
	struct ferry_accel_chan *ch = seq->chan;
	accel_release_buffers(seq); /* before the callback, so that it can retry others */
	seq->state = SEQ_DONE;
	seq->cur = NULL;
	seq->next = NULL;
	if (ch->done_tail)
		ch->done_tail->next = seq;
	else
		ch->done_head = seq;
	ch->done_tail = seq;
}

/* Index of @t among the steps as the caller sees them (inserted pulls/pushes not counted). */
static uint32_t step_index(const struct accel_task *t)
{
	uint32_t i = 0;
	for (const struct accel_task *p = t->prev; p; p = p->prev)
		i += !p->inserted;
	return i;
}

/*
 * @from fails with @status; every later step is cancelled. The failure is logged here, on
 * the channel's thread, naming the step, the engine and the status plus the engine's own
 * words (@reason, may be NULL): an engine running on its own thread logged there, and
 * ferry_last_error() is per thread. The message is kept in the sequence so that the
 * completion callback finds it in ferry_last_error() even if other errors came in between.
 */
static void seq_fail(struct ferry_seq *seq, struct accel_task *from, int status,
		     const char *engine, const char *reason)
{
	seq->status = status;
	seq->pend_first = seq->pend_last = NULL;
	if (from) {
		snprintf(seq->errmsg, sizeof(seq->errmsg),
			 "sequence %u: step %u (%s) failed on %s: %s%s%s%s", seq->id,
			 step_index(from), accel_op_info(from->opcode)->name, engine,
			 ferry_strerror(status), reason && reason[0] ? " (" : "",
			 reason && reason[0] ? reason : "", reason && reason[0] ? ")" : "");
		FERRY_ERR(COMP, "%s", seq->errmsg);
		from->status = status;
		step_cb(from, status);
		for (struct accel_task *t = from->next; t; t = t->next)
			step_cb(t, -ECANCELED);
	}
	seq_complete(seq);
}

static void hw_engine_name(const struct ferry_seq *seq, char *buf, size_t len)
{
	snprintf(buf, len, "the engine of device %s", ferry_device_get_name(seq->chan->dev));
}

/* Callbacks of steps [first, last] with status 0. */
static void cbs_ok(struct accel_task *first, struct accel_task *last)
{
	for (struct accel_task *t = first; t; t = t->next) {
		step_cb(t, 0);
		if (t == last)
			break;
	}
}

static void flush_pending(struct ferry_seq *seq)
{
	if (!seq->pend_first)
		return;
	struct accel_task *f = seq->pend_first, *l = seq->pend_last;
	seq->pend_first = seq->pend_last = NULL;
	cbs_ok(f, l);
}

static uint64_t op_bytes(const struct accel_task *t)
{
	uint64_t n = accel_mem_len(accel_data_in(t));
	return n ? n : accel_mem_len(&t->opnd[OPND_DST]);
}

static void account(struct ferry_seq *seq, struct accel_task *t, bool hw)
{
	struct accel_counters *c = &seq->chan->cnt;
	cnt_add(c, (hw ? CNT_OPS_HW : CNT_OPS_SW) + t->opcode, 1);
	cnt_add(c, hw ? CNT_BYTES_HW : CNT_BYTES_SW, op_bytes(t));
	if (!hw && t->fallback)
		cnt_add(c, CNT_SW_FALLBACKS, 1);
}

/* Bytes @t writes into memory: its destination, the metadata of DIX generate, the PI of DIF
 * generate (in place); nothing for compare, crc32c and the verifies. */
static uint64_t out_bytes(const struct accel_task *t)
{
	switch (t->opcode) {
	case FERRY_ACCEL_OP_COMPARE:
	case FERRY_ACCEL_OP_CRC32C:
	case FERRY_ACCEL_OP_DIF_VERIFY:
	case FERRY_ACCEL_OP_DIX_VERIFY:
		return 0;
	case FERRY_ACCEL_OP_DIF_GENERATE:
		return (uint64_t)t->nblocks * t->dif.md_size;
	case FERRY_ACCEL_OP_DIX_GENERATE:
		return accel_mem_len(&t->opnd[OPND_AUX]);
	default:
		return accel_mem_len(&t->opnd[OPND_DST]);
	}
}

/* Output bytes of a unit that completed successfully: one operation (@head == @tail) or a
 * fused group, which counts only its final output (the last member that writes). */
static void account_out(struct ferry_seq *seq, struct accel_task *head, struct accel_task *tail,
			bool hw)
{
	struct accel_counters *c = &seq->chan->cnt;
	if (head == tail) {
		uint64_t n = out_bytes(head);
		cnt_add(c, hw ? CNT_BYTES_OUT_HW : CNT_BYTES_OUT_SW, n);
		if (head->opcode == FERRY_ACCEL_OP_COPY || head->opcode == FERRY_ACCEL_OP_COPY_CRC32C)
			cnt_add(c, CNT_BYTES_COPIED, n);
		return;
	}
	uint64_t n = 0;
	for (struct accel_task *t = head; t; t = t->next) {
		if (t->state != TASK_ELIDED && out_bytes(t))
			n = out_bytes(t);
		if (t == tail)
			break;
	}
	cnt_add(c, CNT_BYTES_OUT_HW, n);
	cnt_add(c, CNT_BYTES_OUT_FUSED, n);
}

static void store_results(struct accel_task *t, const struct ferry_hal_accel_op *op, int status)
{
	if (status == 0 && t->crc_out &&
	    (t->opcode == FERRY_ACCEL_OP_CRC32C || t->opcode == FERRY_ACCEL_OP_COPY_CRC32C))
		*t->crc_out = op->crc;
	if (t->dif_err) {
		if (status == -EILSEQ)
			*t->dif_err = op->dif_err;
		else
			memset(t->dif_err, 0, sizeof(*t->dif_err));
	}
}

static struct accel_task *unit_tail(struct accel_task *head)
{
	struct accel_task *t = head;
	for (uint32_t j = 1; j < head->group_len; j++)
		t = accel_next_planned(t);
	return t;
}

static void unit_done(struct ferry_seq *seq, struct accel_task *head, struct accel_task *tail)
{
	for (struct accel_task *t = head;; t = t->next) {
		t->state = t->state == TASK_ELIDED ? TASK_ELIDED : TASK_DONE;
		if (t == tail)
			break;
	}
	seq->pend_first = head;
	seq->pend_last = tail;
	seq->cur = tail->next;
}

static void run_sw(struct ferry_seq *seq, struct accel_task *t)
{
	struct ferry_hal_accel_op op;
	accel_task_to_op(t, true, &op);
	ferry_set_last_error(NULL, NULL); /* what the kernel logs, if it fails, is the reason */
	int rc = accel_sw_exec(&op);
	store_results(t, &op, rc);
	account(seq, t, false);
	if (rc) {
		char reason[FERRY_HAL_ACCEL_REASON_MAX];
		snprintf(reason, sizeof(reason), "%s", ferry_last_error());
		seq_fail(seq, t, rc, "the software engine", reason);
		return;
	}
	account_out(seq, t, t, false);
	unit_done(seq, t, t);
}

/* Queue @p seq on the channel's submit list: ferry_accel_chan_poll() resumes it in order. */
static void park_for_submit(struct ferry_accel_chan *ch, struct ferry_seq *seq)
{
	seq->wait = WAIT_SUBMIT;
	seq->next = NULL;
	if (ch->submit_tail)
		ch->submit_tail->next = seq;
	else
		ch->submit_head = seq;
	ch->submit_tail = seq;
}

static void run_hw(struct ferry_seq *seq, struct accel_task *head)
{
	struct ferry_accel_chan *ch = seq->chan;
	struct ferry_hal_accel_desc *d = &seq->desc;
	memset(d, 0, sizeof(*d));
	d->nops = head->group_len;
	d->chain = head->group_len > 1 ? head->chain : -1;
	struct accel_task *t = head;
	for (uint32_t j = 0; j < d->nops; j++, t = accel_next_planned(t))
		accel_task_to_op(t, true, &d->ops[j]);
	d->user_ctx = seq;
	seq->desc_head = head;
	seq->desc_tail = unit_tail(head);
	struct ferry_hal_accel_desc *dp = d;
	int rc = ch->hw->submit(ch->hwchan, &dp, 1);
	if (rc == 1) {
		ch->hw_inflight++;
		seq->wait = WAIT_HW;
		return;
	}
	if (rc == 0) { /* the engine's ring is full: retry on the next poll */
		park_for_submit(ch, seq);
		return;
	}
	char eng[64 + FERRY_HAL_NAME_MAX];
	hw_engine_name(seq, eng, sizeof(eng));
	seq_fail(seq, head, rc > 0 ? -EIO : rc, eng, "submit refused the descriptor");
}

void accel_hw_complete(struct ferry_hal_accel_desc *d)
{
	struct ferry_seq *seq = d->user_ctx;
	struct accel_counters *c = &seq->chan->cnt;
	seq->wait = WAIT_NONE;
	struct accel_task *head = seq->desc_head, *tail = seq->desc_tail, *t = head;
	uint32_t failed = d->status ? (d->failed_op < d->nops ? d->failed_op : 0) : d->nops;
	for (uint32_t j = 0; j < d->nops; j++, t = accel_next_planned(t)) {
		int st = j < failed ? 0 : (j == failed ? d->status : -ECANCELED);
		if (j <= failed)
			store_results(t, &d->ops[j], st);
		if (j < failed)
			account(seq, t, true);
		if (j == failed) {
			/* steps before the failing one (elided ones included) completed */
			if (t != head)
				cbs_ok(head, t->prev);
			char eng[64 + FERRY_HAL_NAME_MAX];
			hw_engine_name(seq, eng, sizeof(eng));
			d->reason[sizeof(d->reason) - 1] = '\0';
			seq_fail(seq, t, d->status, eng, d->reason);
			return;
		}
	}
	if (d->nops > 1) {
		cnt_add(c, CNT_FUSIONS, 1);
		cnt_add(c, CNT_FUSED_OPS, d->nops);
	}
	account_out(seq, head, tail, true);
	unit_done(seq, head, tail);
	accel_seq_ready(seq);
}

static void dom_cb(void *arg, int status)
{
	struct accel_task *t = arg;
	struct ferry_seq *seq = t->seq;
	struct ferry_memdomain *d = accel_dom(t->opcode == ACCEL_OP_PULL ? t->x[OPND_SRC].domain
									 : t->x[OPND_DST].domain);
	t->dom_status = status;
	t->dom_done = 1;
	accel_dom_wait_del(seq->chan, d);
	if (t->dom_waiting) {
		t->dom_waiting = 0;
		seq->wait = WAIT_NONE;
		accel_seq_ready(seq);
	}
}

/* Returns true when the sequence must wait. */
static bool run_dom(struct ferry_seq *seq, struct accel_task *t)
{
	struct ferry_accel_chan *ch = seq->chan;
	bool pull = t->opcode == ACCEL_OP_PULL;
	if (t->state == TASK_PLANNED) {
		struct ferry_memdomain *d = accel_dom(pull ? t->x[OPND_SRC].domain
							   : t->x[OPND_DST].domain);
		t->dom_done = 0;
		if (accel_dom_wait_add(ch, d)) { /* cannot poll it: do not start it yet */
			park_for_submit(ch, seq);
			return true;
		}
		t->state = TASK_DONE; /* started */
		int rc = pull ? ferry_memdomain_pull(&t->x[OPND_SRC], &t->x[OPND_DST], dom_cb, t)
			      : ferry_memdomain_push(&t->x[OPND_DST], &t->x[OPND_SRC], dom_cb, t);
		if (rc) {
			accel_dom_wait_del(ch, d);
			t->state = TASK_PLANNED;
			if (rc == -EAGAIN) { /* the domain's ring is full: retry on the next poll */
				park_for_submit(ch, seq);
				return true;
			}
			t->dom_done = 1;
			t->dom_status = rc;
		}
	}
	if (!t->dom_done) {
		t->dom_waiting = 1;
		seq->wait = WAIT_DOMAIN;
		return true;
	}
	int st = t->dom_status;
	char dname[32 + FERRY_MEMDOMAIN_NAME_MAX];
	if (st) {
		const struct ferry_memdomain *d = accel_dom(pull ? t->x[OPND_SRC].domain
								 : t->x[OPND_DST].domain);
		snprintf(dname, sizeof(dname), "domain '%s'", ferry_memdomain_get_name(d));
	}
	if (st == 0) {
		cnt_add(&seq->chan->cnt, CNT_BYTES_BOUNCED, accel_mem_len(&t->x[OPND_DST]));
		seq->cur = t->next;
		return false;
	}
	if (pull) {
		/* the unit that needed the bytes fails */
		struct accel_task *u = t->next;
		while (u && u->inserted)
			u = u->next;
		seq_fail(seq, u, st, dname, "bounce pull");
	} else {
		struct accel_task *f = seq->pend_first, *l = seq->pend_last;
		if (f && f != l)
			cbs_ok(f, l->prev);
		seq_fail(seq, l, st, dname, "bounce push");
	}
	return true;
}

void accel_seq_cancel_stuck(struct ferry_seq *seq)
{
	/* Steps whose callbacks have not run: those waiting for a push, else from the unit in
	 * flight on. Buffers stay held: the stuck engine or domain may still write them. */
	struct accel_task *from = seq->pend_first ? seq->pend_first : seq->cur;
	seq->pend_first = seq->pend_last = NULL;
	for (struct accel_task *t = from; t; t = t->next)
		step_cb(t, -ECANCELED);
	seq->status = -ECANCELED;
	seq->state = SEQ_DONE;
	seq->cur = NULL;
}

void accel_seq_run(struct ferry_seq *seq)
{
	while (seq->state == SEQ_RUNNING && seq->wait == WAIT_NONE) {
		struct accel_task *t = seq->cur;
		if (!t || !(t->inserted && t->opcode == ACCEL_OP_PUSH))
			flush_pending(seq);
		if (!t) {
			seq_complete(seq);
			return;
		}
		if (t->state == TASK_ELIDED) {
			step_cb(t, 0);
			seq->cur = t->next;
			continue;
		}
		if (t->inserted) {
			if (run_dom(seq, t))
				return;
			continue;
		}
		if (t->engine == ENG_SW)
			run_sw(seq, t);
		else
			run_hw(seq, t);
	}
}
