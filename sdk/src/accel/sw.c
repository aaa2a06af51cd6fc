/*
 * The software engine: executes one accel operation on local memory with the primitive
 * kernels (ferry/crc.h, ferry/crypto.h, ferry/dif.h). Every operand is in the system domain
 * (materialisation guarantees it).
 */
#include <string.h>
#include <ferry/crc.h>
#include "accel_internal.h"

static void fill(const struct ferry_mem *m, uint8_t pattern)
{
	for (uint32_t i = 0; i < m->iovcnt; i++)
		memset(m->iov[i].iov_base, pattern, m->iov[i].iov_len);
}

static int compare(const struct ferry_mem *a, const struct ferry_mem *b)
{
	uint32_t ia = 0, ib = 0;
	size_t oa = 0, ob = 0;
	while (ia < a->iovcnt && ib < b->iovcnt) {
		size_t ra = a->iov[ia].iov_len - oa, rb = b->iov[ib].iov_len - ob;
		size_t n = ra < rb ? ra : rb;
		if (n && memcmp((const char *)a->iov[ia].iov_base + oa,
				(const char *)b->iov[ib].iov_base + ob, n))
			return -EILSEQ;
		oa += n;
		ob += n;
		if (oa == a->iov[ia].iov_len) {
			ia++;
			oa = 0;
		}
		if (ob == b->iov[ib].iov_len) {
			ib++;
			ob = 0;
		}
	}
	return 0;
}

int accel_sw_exec(struct ferry_hal_accel_op *op)
{
	const struct ferry_mem *s = &op->src, *d = &op->dst, *a = &op->aux;
	switch (op->opcode) {
	case FERRY_ACCEL_OP_COPY:
		ferry_iov_copy(d->iov, d->iovcnt, s->iov, s->iovcnt);
		return 0;
	case FERRY_ACCEL_OP_FILL:
		fill(d, op->fill);
		return 0;
	case FERRY_ACCEL_OP_COMPARE:
		return compare(s, a);
	case FERRY_ACCEL_OP_CRC32C:
		op->crc = ferry_crc32c_iov(op->crc_seed, s->iov, s->iovcnt);
		return 0;
	case FERRY_ACCEL_OP_COPY_CRC32C:
		op->crc = ferry_crc32c_iov(op->crc_seed, s->iov, s->iovcnt);
		ferry_iov_copy(d->iov, d->iovcnt, s->iov, s->iovcnt);
		return 0;
	case FERRY_ACCEL_OP_ENCRYPT:
		return ferry_crypto_encrypt(op->key, d->iov, d->iovcnt, s->iov, s->iovcnt,
					    op->tweak);
	case FERRY_ACCEL_OP_DECRYPT:
		return ferry_crypto_decrypt(op->key, d->iov, d->iovcnt, s->iov, s->iovcnt,
					    op->tweak);
	case FERRY_ACCEL_OP_DIF_GENERATE:
		return ferry_dif_generate(op->dif, d->iov, d->iovcnt, op->nblocks);
	case FERRY_ACCEL_OP_DIF_VERIFY:
		return ferry_dif_verify(op->dif, s->iov, s->iovcnt, op->nblocks, &op->dif_err);
	case FERRY_ACCEL_OP_DIF_STRIP:
		return ferry_dif_strip(op->dif, d->iov, d->iovcnt, s->iov, s->iovcnt, op->nblocks,
				       &op->dif_err);
	case FERRY_ACCEL_OP_DIF_INSERT:
		return ferry_dif_insert(op->dif, d->iov, d->iovcnt, s->iov, s->iovcnt, op->nblocks);
	case FERRY_ACCEL_OP_DIX_GENERATE:
		return ferry_dix_generate(op->dif, s->iov, s->iovcnt, a->iov, a->iovcnt,
					  op->nblocks);
	case FERRY_ACCEL_OP_DIX_VERIFY:
		return ferry_dix_verify(op->dif, s->iov, s->iovcnt, a->iov, a->iovcnt, op->nblocks,
					&op->dif_err);
	default:
		return -EINVAL;
	}
}
