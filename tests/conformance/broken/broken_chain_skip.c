/*
 * Broken: an engine that skips a step of a fused chain. A descriptor of the declared chain
 * "encrypt+dif-insert" has its encrypt op turned into a copy before the mock runs it, so the
 * extended blocks carry the plaintext (with valid PI) instead of the ciphertext.
 * Contract broken: "a descriptor with chain = k executes the ops of chains[k], in order"
 * (ferry/hal/accel.h); the suite's accel.chains says "chain 'encrypt+dif-insert': first
 * differing byte at offset N ...".
 */
#include "broken.h"

static int (*mock_submit)(void *chan, struct ferry_hal_accel_desc *const *descs, uint32_t n);
static int32_t skip_chain = -1;

static int skip_submit(void *chan, struct ferry_hal_accel_desc *const *descs, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		struct ferry_hal_accel_desc *d = descs[i];
		if (skip_chain >= 0 && d->chain == skip_chain &&
		    d->ops[0].opcode == FERRY_ACCEL_OP_ENCRYPT)
			d->ops[0].opcode = FERRY_ACCEL_OP_COPY;
	}
	return mock_submit(chan, descs, n);
}

static void brk(struct broken *b)
{
	if (!b->dma.accel)
		return;
	for (uint32_t k = 0; k < b->accel.nchains; k++)
		if (strcmp(b->accel.chains[k].name, "encrypt+dif-insert") == 0)
			skip_chain = (int32_t)k;
	mock_submit = b->accel.submit;
	b->accel.submit = skip_submit;
}

BROKEN_BACKEND("broken_chain_skip", "", brk)
