/*
 * Pass 2, fusion: match the op chains the channel's engine declares (ferry/hal/accel.h)
 * against the planned steps, generically. At each step the longest matching chain wins (the
 * first declared on equal length); matched steps become one group, run as one descriptor.
 */
#include <string.h>
#include "accel_internal.h"

static bool writes_dst(const struct accel_task *t)
{
	return (accel_op_info(t->opcode)->writes & OPND_BIT(OPND_DST)) != 0;
}

static bool ends_ok(const struct ferry_accel_chan *ch, const struct ferry_hal_accel_chain *c,
		    struct accel_task *first, struct accel_task *last)
{
	for (int k = 0; k < OPND_COUNT; k++) {
		if ((accel_op_info(first->opcode)->reads & OPND_BIT(k)) &&
		    !(accel_dom_class(ch, &first->opnd[k]) & c->src_doms))
			return false;
		if ((accel_op_info(last->opcode)->writes & OPND_BIT(k)) &&
		    !(accel_dom_class(ch, &last->opnd[k]) & c->dst_doms))
			return false;
	}
	return true;
}

/* A virtual link written by @a and read by @b must be used by nobody else. */
static bool link_private(struct ferry_seq *seq, struct accel_task *a, struct accel_task *b)
{
	const struct ferry_mem *l = &a->opnd[OPND_DST];
	if (!accel_is_virtual(l) || accel_task_writes(b, l))
		return false;
	for (int k = 0; k < OPND_COUNT; k++)
		if (k != OPND_DST && accel_mem_overlap(&a->opnd[k], l))
			return false;
	for (struct accel_task *t = seq->head; t; t = t->next)
		if (t != a && t != b && t->state != TASK_ELIDED && accel_task_touches(t, l))
			return false;
	return true;
}

static bool match(struct ferry_seq *seq, struct accel_task *head, int32_t idx,
		  const struct ferry_hal_accel_chain *c)
{
	struct ferry_accel_chan *ch = seq->chan;
	struct accel_task *m[FERRY_HAL_ACCEL_CHAIN_MAX];
	uint32_t n = c->nops;
	for (uint32_t k = 0; k < n; k++) {
		m[k] = k ? accel_next_planned(m[k - 1]) : head;
		if (!m[k] || m[k]->inserted || m[k]->opcode != (uint8_t)c->ops[k] ||
		    m[k]->group_member || m[k]->group_len > 1)
			return false;
	}
	for (uint32_t k = 0; k + 1 < n; k++) {
		if (!accel_mem_same(accel_data_out(m[k]), accel_data_in(m[k + 1])))
			return false;
		if ((c->flags & FERRY_HAL_ACCEL_CHAIN_F_VIRT_INTERMEDIATE) && writes_dst(m[k]) &&
		    !link_private(seq, m[k], m[k + 1]))
			return false;
	}
	if (!ends_ok(ch, c, m[0], m[n - 1]))
		return false;
	if (ch->hw->check) {
		struct ferry_hal_accel_desc d;
		memset(&d, 0, sizeof(d));
		d.nops = n;
		d.chain = idx;
		for (uint32_t k = 0; k < n; k++)
			accel_task_to_op(m[k], false, &d.ops[k]);
		if (ch->hw->check(ch->hwchan, &d) != 0)
			return false;
	}
	return true;
}

uint32_t accel_pass_fuse(struct ferry_seq *seq)
{
	struct ferry_accel_chan *ch = seq->chan;
	if (!ch->hw || !ch->hw->nchains)
		return 0;
	uint32_t groups = 0;
	struct accel_task *t = seq->head;
	if (t && t->state == TASK_ELIDED)
		t = accel_next_planned(t);
	while (t) {
		int32_t best = -1;
		uint32_t bestn = 0;
		for (uint32_t i = 0; i < ch->hw->nchains; i++) {
			const struct ferry_hal_accel_chain *c = &ch->hw->chains[i];
			if (c->nops < 2 || c->nops > FERRY_HAL_ACCEL_CHAIN_MAX || c->nops <= bestn)
				continue;
			if (match(seq, t, (int32_t)i, c)) {
				best = (int32_t)i;
				bestn = c->nops;
			}
		}
		if (best < 0) {
			t = accel_next_planned(t);
			continue;
		}
		t->chain = (int16_t)best;
		t->group_len = (uint8_t)bestn;
		struct accel_task *m = t;
		for (uint32_t k = 1; k < bestn; k++) {
			m = accel_next_planned(m);
			m->group_member = 1;
		}
		groups++;
		t = accel_next_planned(m);
	}
	return groups;
}
