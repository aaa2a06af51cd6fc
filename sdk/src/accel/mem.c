/*
 * Memory reasoning for the passes: operand identity and overlap across domains, what a step
 * reads and writes, chain links (data in / data out), domain classes and reachability by the
 * channel's engine, and the conversion of a step into an engine operation.
 */
#include <string.h>
#include <ferry/module/memdomain.h>
#include "accel_internal.h"

struct ferry_memdomain *accel_dom(const struct ferry_memdomain *d)
{
	return d ? (struct ferry_memdomain *)d : ferry_memdomain_system();
}

bool accel_is_virtual(const struct ferry_mem *m)
{
	return m->iovcnt && accel_domain() && accel_dom(m->domain) == accel_domain();
}

bool accel_is_system(const struct ferry_mem *m)
{
	return accel_dom(m->domain) == ferry_memdomain_system();
}

uint64_t accel_mem_len(const struct ferry_mem *m)
{
	return ferry_iov_length(m->iov, m->iovcnt);
}

/* Same address space: addresses can be compared (same domain; same virtual buffer). */
static bool same_space(const struct ferry_mem *a, const struct ferry_mem *b)
{
	struct ferry_memdomain *da = accel_dom(a->domain), *db = accel_dom(b->domain);
	if (da != db)
		return false;
	if (da == accel_domain() && a->domain_ctx != b->domain_ctx)
		return false; /* different virtual buffers */
	return true;
}

/* Same bytes in the same order, whatever the segmentation. */
bool accel_mem_same(const struct ferry_mem *a, const struct ferry_mem *b)
{
	if (!a->iovcnt || !b->iovcnt || !same_space(a, b))
		return false;
	if (a->iov == b->iov && a->iovcnt == b->iovcnt)
		return true;
	uint32_t ia = 0, ib = 0;
	size_t oa = 0, ob = 0;
	for (;;) {
		while (ia < a->iovcnt && oa == a->iov[ia].iov_len) {
			ia++;
			oa = 0;
		}
		while (ib < b->iovcnt && ob == b->iov[ib].iov_len) {
			ib++;
			ob = 0;
		}
		if (ia == a->iovcnt || ib == b->iovcnt)
			return ia == a->iovcnt && ib == b->iovcnt;
		uintptr_t pa = (uintptr_t)a->iov[ia].iov_base + oa;
		uintptr_t pb = (uintptr_t)b->iov[ib].iov_base + ob;
		if (pa != pb)
			return false;
		size_t ra = a->iov[ia].iov_len - oa, rb = b->iov[ib].iov_len - ob;
		size_t n = ra < rb ? ra : rb;
		oa += n;
		ob += n;
	}
}

bool accel_mem_addr_overlap(const struct ferry_mem *a, const struct ferry_mem *b)
{
	if (!a->iovcnt || !b->iovcnt || !same_space(a, b))
		return false;
	for (uint32_t i = 0; i < a->iovcnt; i++) {
		uintptr_t s1 = (uintptr_t)a->iov[i].iov_base, e1 = s1 + a->iov[i].iov_len;
		if (s1 == e1)
			continue;
		for (uint32_t j = 0; j < b->iovcnt; j++) {
			uintptr_t s2 = (uintptr_t)b->iov[j].iov_base, e2 = s2 + b->iov[j].iov_len;
			if (s2 != e2 && s1 < e2 && s2 < e1)
				return true;
		}
	}
	return false;
}

/*
 * May @a and @b name a common byte? The elision pass must only rely on what a domain vouches
 * for (docs/accel.md, "Aliasing"): a virtual buffer is never real memory and never overlaps
 * another virtual buffer; two real ranges are known apart only inside one domain declared
 * FERRY_MEMDOMAIN_F_NO_ALIAS (the system domain), by their addresses. Anything else may be
 * the same bytes: an IOMMU may map one host page at two IOVAs of a function's domain, two
 * functions may map the same page, and host memory may also be mapped locally.
 */
bool accel_mem_overlap(const struct ferry_mem *a, const struct ferry_mem *b)
{
	if (!a->iovcnt || !b->iovcnt)
		return false;
	if (accel_is_virtual(a) || accel_is_virtual(b))
		return accel_mem_addr_overlap(a, b);
	struct ferry_memdomain *da = accel_dom(a->domain);
	if (da == accel_dom(b->domain) && (ferry_memdomain_get_flags(da) & FERRY_MEMDOMAIN_F_NO_ALIAS))
		return accel_mem_addr_overlap(a, b);
	return accel_mem_len(a) && accel_mem_len(b);
}

const struct ferry_mem *accel_data_in(const struct accel_task *t)
{
	return t->opcode == FERRY_ACCEL_OP_DIF_GENERATE ? &t->opnd[OPND_DST] : &t->opnd[OPND_SRC];
}

const struct ferry_mem *accel_data_out(const struct accel_task *t)
{
	if (accel_op_info(t->opcode)->writes & OPND_BIT(OPND_DST))
		return &t->opnd[OPND_DST];
	return accel_data_in(t);
}

bool accel_task_reads(const struct accel_task *t, const struct ferry_mem *m)
{
	for (int k = 0; k < OPND_COUNT; k++)
		if ((accel_op_info(t->opcode)->reads & OPND_BIT(k)) &&
		    accel_mem_overlap(&t->opnd[k], m))
			return true;
	return false;
}

bool accel_task_writes(const struct accel_task *t, const struct ferry_mem *m)
{
	for (int k = 0; k < OPND_COUNT; k++)
		if ((accel_op_info(t->opcode)->writes & OPND_BIT(k)) &&
		    accel_mem_overlap(&t->opnd[k], m))
			return true;
	return false;
}

bool accel_task_touches(const struct accel_task *t, const struct ferry_mem *m)
{
	return accel_task_reads(t, m) || accel_task_writes(t, m);
}

bool accel_hw_reaches(const struct ferry_accel_chan *ch, const struct ferry_mem *m)
{
	struct ferry_memdomain *d = accel_dom(m->domain);
	if (d == ferry_memdomain_system())
		return true;
	if (d == accel_domain() || !ch->hw || !ch->hw->reaches)
		return false;
	return ch->hw->reaches(ch->hwchan, d) != 0;
}

uint32_t accel_dom_class(const struct ferry_accel_chan *ch, const struct ferry_mem *m)
{
	struct ferry_memdomain *d = accel_dom(m->domain);
	enum ferry_memdomain_type ty = ferry_memdomain_get_type(d);
	if (ty == FERRY_MEMDOMAIN_SYSTEM || ty == FERRY_MEMDOMAIN_ACCEL || !accel_hw_reaches(ch, m))
		return FERRY_HAL_ACCEL_DOM_LOCAL; /* local, materialised, or bounced to local */
	switch (ty) {
	case FERRY_MEMDOMAIN_PCIE:
		return FERRY_HAL_ACCEL_DOM_PCIE;
	case FERRY_MEMDOMAIN_RDMA:
		return FERRY_HAL_ACCEL_DOM_RDMA;
	default:
		return FERRY_HAL_ACCEL_DOM_VENDOR;
	}
}

void accel_task_to_op(const struct accel_task *t, bool resolved, struct ferry_hal_accel_op *op)
{
	const struct ferry_mem *m = resolved ? t->x : t->opnd;
	memset(op, 0, sizeof(*op));
	op->opcode = (enum ferry_accel_opcode)t->opcode;
	op->src = m[OPND_SRC];
	op->dst = m[OPND_DST];
	op->aux = m[OPND_AUX];
	op->fill = t->fill;
	op->crc_seed = t->crc_seed;
	op->key = t->key;
	op->tweak = t->tweak;
	op->dif = &t->dif;
	op->nblocks = t->nblocks;
}
