/*
 * Conformance, DMA engine description: query (capabilities and limits sane, stable, the
 * SDK's argument checks), the declared accel table (opcodes, fused chains), and channels
 * (create/destroy up to max_channels, -EBUSY beyond, option checks, a channel works).
 */
#include <stdlib.h>
#include "conf.h"

#define KNOWN_CAPS                                                                                 \
	(FERRY_DMA_CAP_MEM_TO_MEM | FERRY_DMA_CAP_MEM_TO_DEV | FERRY_DMA_CAP_DEV_TO_MEM |          \
	 FERRY_DMA_CAP_DEV_TO_DEV | FERRY_DMA_CAP_SG | FERRY_DMA_CAP_FENCE |                       \
	 FERRY_DMA_CAP_ERR_INJECT | FERRY_DMA_CAP_ACCEL | FERRY_DMA_CAP_FUSED)

CONF_TEST(dma, query_sane)
{
	struct conf_ctx c;
	conf_open(param, &c);
	const struct ferry_dma_info *i = &c.info;
	CONF_ASSERT(i->size == sizeof(*i), "query changed info->size to %zu", i->size);
	CONF_ASSERT((i->caps & ~KNOWN_CAPS) == 0, "caps 0x%llx has undefined bits 0x%llx",
		    (unsigned long long)i->caps, (unsigned long long)(i->caps & ~KNOWN_CAPS));
	CONF_ASSERT(i->max_sges >= 1, "max_sges %u < 1", i->max_sges);
	CONF_ASSERT(i->max_xfer >= 4096, "max_xfer %llu < 4096", (unsigned long long)i->max_xfer);
	CONF_ASSERT(i->alignment >= 1 && (i->alignment & (i->alignment - 1)) == 0,
		    "alignment %u is not a power of two", i->alignment);
	CONF_ASSERT(i->alignment <= i->max_xfer, "alignment %u above max_xfer", i->alignment);
	CONF_ASSERT(i->max_channels >= 1, "max_channels %u < 1", i->max_channels);
	CONF_ASSERT(i->max_ring >= 1, "max_ring %u < 1", i->max_ring);
	if (i->caps & FERRY_DMA_CAP_SG)
		CONF_ASSERT(i->max_sges >= 2, "FERRY_DMA_CAP_SG with max_sges %u", i->max_sges);
	if (i->caps & FERRY_DMA_CAP_FUSED)
		CONF_ASSERT(i->caps & FERRY_DMA_CAP_ACCEL, "FERRY_DMA_CAP_FUSED without _ACCEL");
	const struct ferry_hal_accel_ops *acc = c.backend->dma->accel;
	CONF_ASSERT(!(i->caps & FERRY_DMA_CAP_ACCEL) == !acc,
		    "FERRY_DMA_CAP_ACCEL is %s but ferry_hal_dma_ops::accel is %s",
		    (i->caps & FERRY_DMA_CAP_ACCEL) ? "set" : "clear", acc ? "set" : "NULL");
	if (acc)
		CONF_ASSERT(!(i->caps & FERRY_DMA_CAP_FUSED) == !acc->nchains,
			    "FERRY_DMA_CAP_FUSED is %s but the accel table declares %u chains",
			    (i->caps & FERRY_DMA_CAP_FUSED) ? "set" : "clear", acc->nchains);

	/* Stable: a second query gives the same answer. */
	struct ferry_dma_info again = {.size = sizeof(again)};
	CONF_RC(ferry_dma_query(c.dev, &again), 0, "second query");
	CONF_ASSERT(memcmp(&again, i, sizeof(again)) == 0, "two queries disagree");

	/* The SDK's checks (before the backend is called). */
	struct ferry_dma_info small = {.size = sizeof(small) - 1};
	CONF_RC(ferry_dma_query(c.dev, &small), -EINVAL, "query with a short info->size");
	CONF_RC(ferry_dma_query(c.dev, NULL), -EINVAL, "query with NULL info");
	CONF_RC(ferry_dma_query(NULL, &again), -EINVAL, "query of a NULL device");
	CONF_INFO("caps 0x%llx max_sges %u alignment %u max_xfer %llu max_channels %u max_ring %u",
		  (unsigned long long)i->caps, i->max_sges, i->alignment,
		  (unsigned long long)i->max_xfer, i->max_channels, i->max_ring);
	conf_close(&c);
}

/* The accel table a backend declares must be usable by the SDK as it stands. */
CONF_TEST(dma, accel_table)
{
	struct conf_ctx c;
	conf_open(param, &c);
	const struct ferry_hal_accel_ops *a = c.backend->dma->accel;
	if (!a)
		CONF_SKIP("no accel table (the SDK's software engine runs every accel operation)");
	CONF_ASSERT(a->abi_version == FERRY_HAL_ACCEL_ABI_VERSION,
		    "accel abi_version %u, this library speaks %u (registration refuses such a "
		    "table with -EPROTO)",
		    a->abi_version, FERRY_HAL_ACCEL_ABI_VERSION);
	CONF_ASSERT(a->submit && a->poll, "accel submit and poll are required");
	const uint32_t all_ops = (1u << FERRY_ACCEL_OP_COUNT) - 1u;
	CONF_ASSERT((a->opcodes & ~all_ops) == 0, "opcodes 0x%x names undefined operations",
		    a->opcodes);
	CONF_ASSERT(a->nchains == 0 || a->chains, "nchains %u with a NULL chains array",
		    a->nchains);
	for (uint32_t k = 0; k < a->nchains; k++) {
		const struct ferry_hal_accel_chain *ch = &a->chains[k];
		CONF_ASSERT(ch->name && ch->name[0], "chain %u has no name", k);
		CONF_ASSERT(ch->nops >= 2 && ch->nops <= FERRY_HAL_ACCEL_CHAIN_MAX,
			    "chain %u '%s': nops %u outside 2..%d", k, ch->name, ch->nops,
			    FERRY_HAL_ACCEL_CHAIN_MAX);
		for (uint32_t j = 0; j < ch->nops; j++)
			CONF_ASSERT((unsigned)ch->ops[j] < FERRY_ACCEL_OP_COUNT,
				    "chain '%s' op %u: opcode %d undefined", ch->name, j,
				    (int)ch->ops[j]);
		CONF_ASSERT(ch->src_doms != 0 && (ch->src_doms & ~FERRY_HAL_ACCEL_DOM_ANY) == 0,
			    "chain '%s': src_doms 0x%x", ch->name, ch->src_doms);
		CONF_ASSERT((ch->dst_doms & ~FERRY_HAL_ACCEL_DOM_ANY) == 0,
			    "chain '%s': dst_doms 0x%x", ch->name, ch->dst_doms);
		CONF_ASSERT((ch->flags & ~FERRY_HAL_ACCEL_CHAIN_F_VIRT_INTERMEDIATE) == 0,
			    "chain '%s': unknown flags 0x%x", ch->name, ch->flags);
		for (uint32_t m = 0; m < k; m++)
			CONF_ASSERT(strcmp(a->chains[m].name, ch->name) != 0,
				    "chain name '%s' declared twice", ch->name);
	}
	CONF_INFO("accel: opcodes 0x%x, %u fused chain(s)", a->opcodes, a->nchains);
	conf_close(&c);
}

/* One 4 KiB system-to-system transfer on @p ch, checked byte by byte. */
static void one_copy(struct conf_ctx *c, struct ferry_dma_chan *ch, uint64_t seed)
{
	uint64_t len = conf_round(c, 4096);
	uint8_t *src = conf_alloc(c, len), *dst = conf_alloc(c, len);
	conf_pattern(src, len, seed);
	struct iovec si = {src, len}, di = {dst, len};
	struct ferry_xfer x = {.src = {.iov = &si, .iovcnt = 1},
			       .dst = {.iov = &di, .iovcnt = 1},
			       .len = len};
	CONF_ASSERT(conf_run(ch, &x, 1, 0) == 0, "copy failed: %s",
		    ferry_xfer_status_str(x.status));
	CONF_ASSERT(memcmp(src, dst, len) == 0, "copied bytes differ");
	free(src);
	free(dst);
}

#define MAX_TRIED_CHANNELS 256u

CONF_TEST(dma, channels)
{
	struct conf_ctx c;
	conf_open(param, &c);
	struct ferry_dma_chan *ch = NULL;
	uint32_t ring = c.info.max_ring < 4 ? c.info.max_ring : 4;
	struct ferry_dma_chan_opts o = {.size = sizeof(o), .ring_size = ring};

	/* Option checks. */
	CONF_RC(ferry_dma_chan_create(c.dev, NULL, NULL), -EINVAL, "create with NULL out");
	CONF_RC(ferry_dma_chan_create(NULL, NULL, &ch), -EINVAL, "create on a NULL device");
	struct ferry_dma_chan_opts bad = {.size = sizeof(bad) - 1};
	CONF_RC(ferry_dma_chan_create(c.dev, &bad, &ch), -EINVAL, "create with short opts->size");
	if (c.info.max_ring < UINT32_MAX) {
		bad = (struct ferry_dma_chan_opts){.size = sizeof(bad),
						   .ring_size = c.info.max_ring + 1};
		CONF_RC(ferry_dma_chan_create(c.dev, &bad, &ch), -EINVAL,
			"create with ring_size = max_ring + 1");
	}
	/* Defaults, and the largest ring (if it is a reasonable size to allocate). */
	CONF_RC(ferry_dma_chan_create(c.dev, NULL, &ch), 0, "create with default options");
	ferry_dma_chan_destroy(ch);
	if (c.info.max_ring <= 65536) {
		struct ferry_dma_chan_opts big = {.size = sizeof(big),
						  .ring_size = c.info.max_ring};
		CONF_RC(ferry_dma_chan_create(c.dev, &big, &ch), 0, "create with max_ring");
		ferry_dma_chan_destroy(ch);
	}
	ferry_dma_chan_destroy(NULL);

	/* Up to max_channels at once; one more is refused with -EBUSY. */
	uint32_t want = c.info.max_channels < MAX_TRIED_CHANNELS ? c.info.max_channels
								 : MAX_TRIED_CHANNELS;
	struct ferry_dma_chan **chans = calloc(want, sizeof(*chans));
	CONF_ASSERT(chans != NULL, "out of memory");
	for (uint32_t k = 0; k < want; k++) {
		int rc = ferry_dma_chan_create(c.dev, &o, &chans[k]);
		CONF_ASSERT(rc == 0, "channel %u of max_channels %u: %s (%s)", k,
			    c.info.max_channels, ferry_strerror(rc), conf_last_error());
	}
	if (want == c.info.max_channels) {
		CONF_RC(ferry_dma_chan_create(c.dev, &o, &ch), -EBUSY,
			"create beyond max_channels");
		ferry_dma_chan_destroy(chans[want / 2]);
		CONF_RC(ferry_dma_chan_create(c.dev, &o, &chans[want / 2]), 0,
			"create after destroying one of max_channels");
	} else {
		CONF_INFO("max_channels %u: opened %u, the limit itself not tried",
			  c.info.max_channels, want);
	}
	if (c.info.caps & FERRY_DMA_CAP_MEM_TO_MEM) {
		one_copy(&c, chans[0], 1);
		one_copy(&c, chans[want - 1], 2);
		one_copy(&c, chans[want / 2], 3);
	}
	for (uint32_t k = 0; k < want; k++)
		ferry_dma_chan_destroy(chans[k]);
	free(chans);

	/* Everything closed: channels can be created again. */
	CONF_RC(ferry_dma_chan_create(c.dev, &o, &ch), 0, "create after closing all");
	if (c.info.caps & FERRY_DMA_CAP_MEM_TO_MEM)
		one_copy(&c, ch, 4);
	ferry_dma_chan_destroy(ch);
	conf_close(&c);
}
