/*
 * Pass 1, copy elision. Two rules, each applied only when nothing the caller can observe
 * changes (docs/accel.md explains them with examples):
 *
 *  forward  copy(S -> D), D virtual: readers of D read S instead. Requires: D is written by
 *           no other step; every reader of D comes after the copy and reads exactly D; no
 *           step from the copy up to the last reader writes S.
 *  backward p(... -> S), copy(S -> D), S virtual: p writes D directly. Requires: p is the
 *           only writer of S, written as one operand that is exactly S; nobody but the copy
 *           reads S; p neither reads D nor writes it through another operand; no step
 *           between p and the copy reads or writes D.
 *
 * A copy whose destination is real memory is never removed by the forward rule: the bytes
 * must arrive there (e.g. copy then crc32c over the copy keeps the copy). An elided copy stays
 * in the list (state ELIDED) so that its per-step callback still runs at its position.
 */
#include "accel_internal.h"

static bool rule_forward(struct ferry_seq *seq, struct accel_task *c)
{
	const struct ferry_mem *D = &c->opnd[OPND_DST], *S = &c->opnd[OPND_SRC];
	if (!accel_is_virtual(D) || accel_mem_overlap(D, S))
		return false;
	struct accel_task *last_reader = NULL;
	bool after = false;
	for (struct accel_task *t = seq->head; t; t = t->next) {
		if (t == c) {
			after = true;
			continue;
		}
		if (t->state == TASK_ELIDED)
			continue;
		if (accel_task_writes(t, D))
			return false; /* D has another writer: its bytes are not just S's */
		for (int k = 0; k < OPND_COUNT; k++) {
			if (!(accel_op_info(t->opcode)->reads & OPND_BIT(k)) ||
			    !accel_mem_overlap(&t->opnd[k], D))
				continue;
			if (!after || !accel_mem_same(&t->opnd[k], D))
				return false; /* reads before the copy, or a part of D */
			last_reader = t;
		}
	}
	if (last_reader) {
		for (struct accel_task *t = c->next; t; t = t->next) {
			if (t->state != TASK_ELIDED && accel_task_writes(t, S))
				return false; /* S changes before D's readers are done */
			if (t == last_reader)
				break;
		}
	}
	for (struct accel_task *t = c->next; t; t = t->next) {
		if (t->state == TASK_ELIDED)
			continue;
		for (int k = 0; k < OPND_COUNT; k++)
			if ((accel_op_info(t->opcode)->reads & OPND_BIT(k)) &&
			    accel_mem_same(&t->opnd[k], D))
				t->opnd[k] = *S;
	}
	c->state = TASK_ELIDED;
	return true;
}

static bool rule_backward(struct ferry_seq *seq, struct accel_task *c)
{
	const struct ferry_mem *S = &c->opnd[OPND_SRC], *D = &c->opnd[OPND_DST];
	if (!accel_is_virtual(S) || accel_mem_overlap(S, D))
		return false;
	struct accel_task *p = NULL;
	int pk = -1;
	bool after = false;
	for (struct accel_task *t = seq->head; t; t = t->next) {
		if (t == c) {
			after = true;
			continue;
		}
		if (t->state == TASK_ELIDED)
			continue;
		if (accel_task_reads(t, S))
			return false; /* someone else needs S's bytes */
		if (!accel_task_writes(t, S))
			continue;
		if (after || p)
			return false; /* S written after the copy, or by two steps */
		for (int k = 0; k < OPND_COUNT; k++)
			if ((accel_op_info(t->opcode)->writes & OPND_BIT(k)) &&
			    accel_mem_same(&t->opnd[k], S))
				pk = k;
		if (pk < 0)
			return false; /* writes only a part of S */
		p = t;
	}
	if (!p || accel_task_reads(p, D))
		return false;
	for (int k = 0; k < OPND_COUNT; k++)
		if (k != pk && (accel_op_info(p->opcode)->writes & OPND_BIT(k)) &&
		    accel_mem_overlap(&p->opnd[k], D))
			return false;
	for (struct accel_task *t = p->next; t && t != c; t = t->next)
		if (t->state != TASK_ELIDED && accel_task_touches(t, D))
			return false; /* D would change earlier than it used to */
	p->opnd[pk] = *D;
	c->state = TASK_ELIDED;
	return true;
}

uint32_t accel_pass_elide(struct ferry_seq *seq)
{
	uint32_t elided = 0;
	bool changed = true;
	while (changed) {
		changed = false;
		for (struct accel_task *t = seq->head; t; t = t->next) {
			if (t->state != TASK_PLANNED || t->opcode != FERRY_ACCEL_OP_COPY)
				continue;
			if (rule_forward(seq, t) || rule_backward(seq, t)) {
				elided++;
				changed = true;
			}
		}
	}
	return elided;
}
