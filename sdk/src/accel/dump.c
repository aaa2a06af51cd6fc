/*
 * Plan dumps of a sequence (ferry_seq_dump() and the plan hook): text, one line per step, or
 * one JSON object. The format is described in docs/accel.md.
 */
#include <stdarg.h>
#include <stdio.h>
#include "accel_internal.h"

struct sb {
	char *buf;
	size_t cap;
	size_t len; /* what the whole output needs */
};

__attribute__((format(printf, 2, 3))) static void sb_printf(struct sb *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *p = b->len < b->cap ? b->buf + b->len : NULL;
	size_t room = b->len < b->cap ? b->cap - b->len : 0;
	int n = vsnprintf(p, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		b->len += (size_t)n;
}

/* A domain name as a JSON string body (names come from backends: escape anyway). */
static void json_name(struct sb *b, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			sb_printf(b, "\\%c", c);
		else if (c < 0x20)
			sb_printf(b, "\\u%04x", c);
		else
			sb_printf(b, "%c", c);
	}
}

static const char *type_name(const struct ferry_memdomain *d)
{
	switch (ferry_memdomain_get_type(d)) {
	case FERRY_MEMDOMAIN_SYSTEM:
		return "system";
	case FERRY_MEMDOMAIN_PCIE:
		return "pcie";
	case FERRY_MEMDOMAIN_RDMA:
		return "rdma";
	case FERRY_MEMDOMAIN_ACCEL:
		return "accel";
	default:
		return "vendor";
	}
}

static const char *seq_state(const struct ferry_seq *s)
{
	static const char *const n[] = {"building", "planned", "running", "done", "free"};
	if (s->state == SEQ_DONE && s->status)
		return "failed";
	return s->state <= SEQ_FREE ? n[s->state] : "?";
}

static const char *task_state(const struct accel_task *t)
{
	if (t->state == TASK_ELIDED)
		return "elided";
	if (t->state == TASK_DONE)
		return t->status ? "failed" : "done";
	return "planned";
}

static const char *engine_name(const struct accel_task *t)
{
	switch (t->engine) {
	case ENG_SW:
		return t->fallback ? "sw-fallback" : "sw";
	case ENG_HW:
		return "hw";
	case ENG_DOMAIN:
		return "domain";
	default:
		return t->state == TASK_ELIDED ? "-" : "none";
	}
}

/* How operand k was resolved by materialisation. */
static const char *resolution(const struct accel_task *t, int k)
{
	const struct ferry_mem *o = &t->opnd[k], *x = &t->x[k];
	if (!x->iovcnt || t->inserted)
		return NULL;
	if (accel_is_virtual(o))
		return accel_is_virtual(x) ? "engine-internal" : "pool";
	return x->iov == o->iov ? "direct" : "bounce";
}

static void iov_text(struct sb *b, const struct ferry_mem *m, bool json)
{
	bool virt = accel_is_virtual(m);
	const struct accel_vbuf *v = virt ? m->domain_ctx : NULL;
	uint32_t shown = m->iovcnt <= 4 ? m->iovcnt : 3;
	for (uint32_t i = 0; i < shown; i++) {
		uint64_t a = (uint64_t)(uintptr_t)m->iov[i].iov_base;
		if (virt)
			a -= v->base;
		if (json)
			sb_printf(b, "%s[\"%s0x%llx\",%zu]", i ? "," : "", virt ? "+" : "",
				  (unsigned long long)a, m->iov[i].iov_len);
		else
			sb_printf(b, "%s%s0x%llx/%zu", i ? " " : "", virt ? "+" : "",
				  (unsigned long long)a, m->iov[i].iov_len);
	}
	if (shown < m->iovcnt && !json)
		sb_printf(b, " ...(%u segments)", m->iovcnt);
}

static void opnd_text(struct sb *b, const struct accel_task *t, int k, const char *role)
{
	const struct ferry_mem *m = &t->opnd[k];
	struct ferry_memdomain *d = accel_dom(m->domain);
	sb_printf(b, " %s=%s", role, ferry_memdomain_get_name(d));
	if (accel_is_virtual(m))
		sb_printf(b, ":v%u", ((const struct accel_vbuf *)m->domain_ctx)->idx);
	sb_printf(b, "[");
	iov_text(b, m, false);
	sb_printf(b, "]");
	const char *r = resolution(t, k);
	if (r)
		sb_printf(b, "(%s)", r);
}

static void opnd_json(struct sb *b, const struct accel_task *t, int k, const char *role)
{
	const struct ferry_mem *m = &t->opnd[k];
	struct ferry_memdomain *d = accel_dom(m->domain);
	sb_printf(b, ",\"%s\":{\"domain\":\"", role);
	json_name(b, ferry_memdomain_get_name(d));
	sb_printf(b, "\",\"type\":\"%s\",\"bytes\":%llu,\"segments\":%u", type_name(d),
		  (unsigned long long)accel_mem_len(m), m->iovcnt);
	if (accel_is_virtual(m))
		sb_printf(b, ",\"vbuf\":%u", ((const struct accel_vbuf *)m->domain_ctx)->idx);
	sb_printf(b, ",\"iov\":[");
	iov_text(b, m, true);
	sb_printf(b, "]");
	const char *r = resolution(t, k);
	if (r)
		sb_printf(b, ",\"resolved\":\"%s\"", r);
	sb_printf(b, "}");
}

static const char *const roles[OPND_COUNT] = {"src", "dst", "aux"};

static const char *role_name(const struct accel_task *t, int k)
{
	if (k == OPND_AUX)
		return t->opcode == FERRY_ACCEL_OP_COMPARE ? "src2" : "md";
	if (k == OPND_DST && t->opcode == FERRY_ACCEL_OP_DIF_GENERATE)
		return "buf";
	if (k == OPND_SRC && t->opcode == FERRY_ACCEL_OP_DIF_VERIFY)
		return "buf";
	return roles[k];
}

static const char *chain_name(const struct ferry_seq *seq, const struct accel_task *head)
{
	const struct ferry_accel_chan *ch = seq->chan;
	if (!ch->hw || head->chain < 0 || (uint32_t)head->chain >= ch->hw->nchains)
		return "?";
	const char *n = ch->hw->chains[head->chain].name;
	return n ? n : "unnamed";
}

int accel_dump(const struct ferry_seq *seq, enum ferry_seq_dump_fmt fmt, char *buf, size_t len)
{
	struct sb b = {.buf = buf, .cap = len, .len = 0};
	bool json = fmt == FERRY_SEQ_DUMP_JSON;
	if (buf && len)
		buf[0] = '\0';
	const char *passes = (seq->passes & FERRY_ACCEL_PASS_ELIDE)
				     ? ((seq->passes & FERRY_ACCEL_PASS_FUSE) ? "elide+fuse"
									      : "elide")
				     : ((seq->passes & FERRY_ACCEL_PASS_FUSE) ? "fuse" : "none");
	if (json)
		sb_printf(&b,
			  "{\"seq\":%u,\"state\":\"%s\",\"status\":%d,\"passes\":\"%s\","
			  "\"pool_buffers\":%u,\"steps\":[",
			  seq->id, seq_state(seq), seq->status, passes, seq->nbufs);
	else
		sb_printf(&b, "seq %u: %u steps, state %s, status %d, passes %s, pool buffers %u\n",
			  seq->id, seq->ntasks, seq_state(seq), seq->status, passes, seq->nbufs);
	const struct accel_task *ghead = NULL;
	uint32_t gpos = 0, i = 0;
	for (const struct accel_task *t = seq->head; t; t = t->next, i++) {
		if (t->group_len > 1 && !t->group_member && t->state != TASK_ELIDED) {
			ghead = t;
			gpos = 0;
		}
		bool in_group = ghead && t->state != TASK_ELIDED && !t->inserted &&
				(t == ghead || t->group_member);
		if (in_group)
			gpos++;
		const char *name = accel_op_info(t->opcode)->name;
		if (json) {
			sb_printf(&b,
				  "%s{\"index\":%u,\"op\":\"%s\",\"state\":\"%s\",\"engine\":\"%s\","
				  "\"inserted\":%s",
				  i ? "," : "", i, name, task_state(t), engine_name(t),
				  t->inserted ? "true" : "false");
			if (in_group) {
				sb_printf(&b, ",\"fused\":{\"chain\":\"");
				json_name(&b, chain_name(seq, ghead));
				sb_printf(&b, "\",\"pos\":%u,\"of\":%u}", gpos, ghead->group_len);
			}
		} else {
			sb_printf(&b, "  #%-2u %-13s %-8s %-11s", i, name, task_state(t),
				  engine_name(t));
			if (in_group)
				sb_printf(&b, " fused[%s %u/%u]", chain_name(seq, ghead), gpos,
					  ghead->group_len);
		}
		uint8_t used = accel_op_info(t->opcode)->reads | accel_op_info(t->opcode)->writes;
		for (int k = 0; k < OPND_COUNT; k++) {
			if (!(used & OPND_BIT(k)) || !t->opnd[k].iovcnt)
				continue;
			if (json)
				opnd_json(&b, t, k, role_name(t, k));
			else
				opnd_text(&b, t, k, role_name(t, k));
		}
		if (t->opcode == FERRY_ACCEL_OP_ENCRYPT || t->opcode == FERRY_ACCEL_OP_DECRYPT)
			sb_printf(&b, json ? ",\"tweak\":%llu" : " tweak=%llu",
				  (unsigned long long)t->tweak);
		if (t->opcode >= FERRY_ACCEL_OP_DIF_GENERATE &&
		    t->opcode <= FERRY_ACCEL_OP_DIX_VERIFY)
			sb_printf(&b,
				  json ? ",\"nblocks\":%u,\"block\":\"%u+%u\""
				       : " nblocks=%u block=%u+%u",
				  t->nblocks, t->dif.block_size, t->dif.md_size);
		if (ghead && t->group_member && gpos == ghead->group_len)
			ghead = NULL;
		sb_printf(&b, json ? "}" : "\n");
	}
	if (json)
		sb_printf(&b, "]}");
	if (b.len > INT32_MAX)
		return -EOVERFLOW;
	return (int)b.len;
}
