/*
 * Internals of the rdma component (sdk/src/rdma/): little-endian access to the wire bytes of
 * the NVMe-oF/RDMA binding (CM private data, SGL descriptors). Never installed.
 */
#ifndef FERRY_RDMA_INTERNAL_H
#define FERRY_RDMA_INTERNAL_H

#include <stdint.h>

#define RDMA_COMP "rdma"

/* Wire fields are little endian whatever the host: bytes are accessed through these. */
static inline void rdma_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void rdma_put24(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
}

static inline void rdma_put32(uint8_t *p, uint32_t v)
{
	rdma_put16(p, (uint16_t)v);
	rdma_put16(p + 2, (uint16_t)(v >> 16));
}

static inline void rdma_put64(uint8_t *p, uint64_t v)
{
	rdma_put32(p, (uint32_t)v);
	rdma_put32(p + 4, (uint32_t)(v >> 32));
}

static inline uint16_t rdma_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t rdma_get24(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16);
}

static inline uint32_t rdma_get32(const uint8_t *p)
{
	return (uint32_t)rdma_get16(p) | ((uint32_t)rdma_get16(p + 2) << 16);
}

static inline uint64_t rdma_get64(const uint8_t *p)
{
	return (uint64_t)rdma_get32(p) | ((uint64_t)rdma_get32(p + 4) << 32);
}

#endif /* FERRY_RDMA_INTERNAL_H */
