/*
 * The data pointer of an NVMe-oF/RDMA command capsule: keyed SGL data blocks (host memory the
 * controller reaches by RDMA READ / WRITE), an in-capsule data block, or a last-segment
 * descriptor whose keyed list is in the in-capsule data. The SQE and the in-capsule data came
 * off the wire: every type, length, offset and count is checked before use.
 */
#include <errno.h>
#include <string.h>
#include <ferry/module/rdma.h>
#include "rdma_internal.h"

/* Byte offsets inside a 16-byte SGL descriptor. */
enum {
	SGL_OFF_ADDR = 0,
	SGL_OFF_LEN = 8, /* keyed: 24 bits; unkeyed: 32 bits */
	SGL_OFF_KEY = 11,
	SGL_OFF_ID = 15,
	SGL_DESC_LEN = 16,
};

#define SGL_KEYED_LEN_MAX (1u << 24)

static int sgl_fail(uint16_t *status, uint8_t sc)
{
	*status = FERRY_NVME_STATUS(FERRY_NVME_SCT_GENERIC, sc);
	return -EPROTO;
}

/* A keyed data block descriptor at @p d (16 bytes) into @p k; 0 or an NVMe status code. */
static uint8_t sgl_keyed(const uint8_t *d, struct ferry_nvmf_rdma_kdesc *k)
{
	uint8_t id = d[SGL_OFF_ID];
	uint8_t sub = id & 0xf;
	if ((id >> 4) != FERRY_NVME_SGL_KEYED_DATA_BLOCK ||
	    (sub != FERRY_NVMF_RDMA_SGL_SUB_ADDRESS && sub != FERRY_NVMF_RDMA_SGL_SUB_INVALIDATE))
		return FERRY_NVME_SC_SGL_TYPE;
	k->addr = rdma_get64(d + SGL_OFF_ADDR);
	k->len = rdma_get24(d + SGL_OFF_LEN);
	k->key = rdma_get32(d + SGL_OFF_KEY);
	k->invalidate = sub == FERRY_NVMF_RDMA_SGL_SUB_INVALIDATE;
	return 0;
}

int ferry_nvmf_rdma_sgl_parse(const struct ferry_nvme_sqe *sqe, const void *icd,
			      uint32_t icd_len, uint32_t max_desc, uint32_t max_len,
			      struct ferry_nvmf_rdma_sgl *out, uint16_t *status)
{
	if (!sqe || !out || !status || (!icd && icd_len) || max_desc < 1 ||
	    max_desc > FERRY_NVMF_RDMA_SGL_MAX)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	*status = 0;

	/* Fabrics commands carry SGLs only: PRPs (00b) and the reserved 11b are invalid. */
	unsigned int psdt = (sqe->flags >> FERRY_NVME_FLAGS_PSDT_SHIFT) & 0x3;
	if (psdt != FERRY_NVME_PSDT_SGL_MPTR_CONTIG && psdt != FERRY_NVME_PSDT_SGL_MPTR_SGL)
		return sgl_fail(status, FERRY_NVME_SC_INVALID_FIELD);

	uint8_t d[SGL_DESC_LEN];
	memcpy(d, &sqe->dptr, sizeof(d));
	uint8_t type = d[SGL_OFF_ID] >> 4, sub = d[SGL_OFF_ID] & 0xf;

	if (type == FERRY_NVME_SGL_KEYED_DATA_BLOCK) {
		uint8_t sc = sgl_keyed(d, &out->desc[0]);
		if (sc)
			return sgl_fail(status, sc);
		if (out->desc[0].len == 0) { /* a null descriptor: no data */
			memset(&out->desc[0], 0, sizeof(out->desc[0]));
			out->kind = FERRY_NVMF_RDMA_SGL_NONE;
			return 0;
		}
		if (out->desc[0].len > max_len)
			return sgl_fail(status, FERRY_NVME_SC_DATA_SGL_LEN);
		out->kind = FERRY_NVMF_RDMA_SGL_KEYED;
		out->ndesc = 1;
		out->len = out->desc[0].len;
		return 0;
	}

	/* Unkeyed descriptors of the capsule: address = offset into the in-capsule data. */
	uint64_t off = rdma_get64(d + SGL_OFF_ADDR);
	uint32_t len = rdma_get32(d + SGL_OFF_LEN);

	if (type == FERRY_NVME_SGL_DATA_BLOCK && sub == FERRY_NVME_SGL_SUBTYPE_OFFSET) {
		if (off > icd_len)
			return sgl_fail(status, FERRY_NVME_SC_SGL_OFFSET);
		if (len > icd_len - off || len > max_len)
			return sgl_fail(status, FERRY_NVME_SC_DATA_SGL_LEN);
		if (len == 0) {
			out->kind = FERRY_NVMF_RDMA_SGL_NONE;
			return 0;
		}
		out->kind = FERRY_NVMF_RDMA_SGL_ICD;
		out->icd_off = (uint32_t)off;
		out->len = len;
		return 0;
	}

	if (type == FERRY_NVME_SGL_LAST_SEGMENT && sub == FERRY_NVME_SGL_SUBTYPE_OFFSET) {
		if (off > icd_len)
			return sgl_fail(status, FERRY_NVME_SC_SGL_OFFSET);
		if (len > icd_len - off)
			return sgl_fail(status, FERRY_NVME_SC_DATA_SGL_LEN);
		/* A list of whole descriptors, at least one, at most what we take. */
		if (len % SGL_DESC_LEN || len == 0 || len / SGL_DESC_LEN > max_desc)
			return sgl_fail(status, FERRY_NVME_SC_INVALID_SGL_NUM);
		uint32_t n = len / SGL_DESC_LEN;
		const uint8_t *list = (const uint8_t *)icd + off;
		uint64_t total = 0;
		for (uint32_t i = 0; i < n; i++) {
			uint8_t sc = sgl_keyed(list + (size_t)i * SGL_DESC_LEN, &out->desc[i]);
			if (sc) {
				memset(out, 0, sizeof(*out));
				return sgl_fail(status, sc);
			}
			/* A zero-length entry would cost an empty RDMA operation and name a key
			 * for nothing: no host sends one, so it is a malformed list. */
			if (out->desc[i].len == 0) {
				memset(out, 0, sizeof(*out));
				return sgl_fail(status, FERRY_NVME_SC_DATA_SGL_LEN);
			}
			total += out->desc[i].len; /* < 16 * 2^24: no overflow in 64 bits */
		}
		if (total > max_len) {
			memset(out, 0, sizeof(*out));
			return sgl_fail(status, FERRY_NVME_SC_DATA_SGL_LEN);
		}
		out->kind = FERRY_NVMF_RDMA_SGL_KEYED;
		out->ndesc = n;
		out->len = (uint32_t)total;
		return 0;
	}

	/* Data block by address, bit bucket, segment, transport data block, reserved types. */
	return sgl_fail(status, FERRY_NVME_SC_SGL_TYPE);
}

static void sgl_put_keyed(uint8_t *d, const struct ferry_nvmf_rdma_kdesc *k)
{
	rdma_put64(d + SGL_OFF_ADDR, k ? k->addr : 0);
	rdma_put24(d + SGL_OFF_LEN, k ? k->len : 0);
	rdma_put32(d + SGL_OFF_KEY, k ? k->key : 0);
	d[SGL_OFF_ID] = FERRY_NVME_SGL_ID(FERRY_NVME_SGL_KEYED_DATA_BLOCK,
					  k && k->invalidate ? FERRY_NVMF_RDMA_SGL_SUB_INVALIDATE
							     : FERRY_NVMF_RDMA_SGL_SUB_ADDRESS);
}

static void sgl_set_psdt(struct ferry_nvme_sqe *sqe)
{
	sqe->flags = (uint8_t)((sqe->flags & ~(0x3u << FERRY_NVME_FLAGS_PSDT_SHIFT)) |
			       (FERRY_NVME_PSDT_SGL_MPTR_CONTIG << FERRY_NVME_FLAGS_PSDT_SHIFT));
}

int ferry_nvmf_rdma_sgl_build(struct ferry_nvme_sqe *sqe, void *icd_area, uint32_t icd_cap,
			      const struct ferry_nvmf_rdma_kdesc *d, uint32_t n,
			      uint32_t *icd_used)
{
	if (!sqe || (n && !d) || n > FERRY_NVMF_RDMA_SGL_MAX)
		return -EINVAL;
	for (uint32_t i = 0; i < n; i++)
		if (d[i].len >= SGL_KEYED_LEN_MAX)
			return -EINVAL;
	if (n > 1 && (!icd_area || icd_cap < n * SGL_DESC_LEN))
		return -ENOBUFS;

	uint8_t desc[SGL_DESC_LEN] = {0};
	if (n <= 1) {
		sgl_put_keyed(desc, n ? &d[0] : NULL);
	} else {
		for (uint32_t i = 0; i < n; i++)
			sgl_put_keyed((uint8_t *)icd_area + (size_t)i * SGL_DESC_LEN, &d[i]);
		rdma_put64(desc + SGL_OFF_ADDR, 0);
		rdma_put32(desc + SGL_OFF_LEN, n * SGL_DESC_LEN);
		desc[SGL_OFF_ID] = FERRY_NVME_SGL_ID(FERRY_NVME_SGL_LAST_SEGMENT,
						     FERRY_NVME_SGL_SUBTYPE_OFFSET);
	}
	memcpy(&sqe->dptr, desc, sizeof(desc));
	sgl_set_psdt(sqe);
	if (icd_used)
		*icd_used = n > 1 ? n * SGL_DESC_LEN : 0;
	return 0;
}

void ferry_nvmf_rdma_sgl_build_icd(struct ferry_nvme_sqe *sqe, uint32_t len)
{
	if (!sqe)
		return;
	uint8_t desc[SGL_DESC_LEN] = {0};
	rdma_put64(desc + SGL_OFF_ADDR, 0);
	rdma_put32(desc + SGL_OFF_LEN, len);
	desc[SGL_OFF_ID] = FERRY_NVME_SGL_ID(FERRY_NVME_SGL_DATA_BLOCK, FERRY_NVME_SGL_SUBTYPE_OFFSET);
	memcpy(&sqe->dptr, desc, sizeof(desc));
	sgl_set_psdt(sqe);
}
