/*
 * Fuzz target for the submission-entry decoding + PRP/SGL walker (sdk/src/nvme/walker.c).
 *
 * Input layout:
 *   [0, 64)   a submission queue entry (struct ferry_nvme_sqe)
 *   [64]      configuration byte:
 *               bits 1:0  host page size 4 KiB << n (n = 3 means 4 KiB)
 *               bits 3:2  LBA format: 512, 520, 4096, 4104 bytes per block
 *               bit  4    admin command (no SGLs; Identify / Get Log Page lengths)
 *               bit  5    controller without SGL support
 *               bits 7:6  SGL descriptor limit: 1, 16, 128, 256
 *   [65, ...) host memory image, visible at IMG_BASE (PRP lists and SGL segments are read
 *             from it; any other address fails like an unmapped IOVA)
 *
 * The transfer length and direction come from the SQE exactly as the controller derives
 * them (opcode, NLB, NR, NUMD). Checked: the walk ends (DONE or ERROR) with a bounded number
 * of reads, each within the walker's buffer; on success the segments describe exactly the
 * transfer length, fit the output array, never wrap around 2^64, have no bit bucket unless
 * data goes to the host, and PRP segments are aligned as the spec requires; on error the
 * status is a generic status the walker may produce.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <ferry/nvme_spec.h>
#include "nvme_walker.h"

#define IMG_BASE 0x10000ull
#define MAX_XFER (128u * 1024u) /* the controller's default MDTS */
#define IOV_CAP 260

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct image {
	const uint8_t *p;
	size_t n;
	uint32_t reads;
};

#define CHECK(c)                                                                               \
	do {                                                                                   \
		if (!(c))                                                                      \
			abort();                                                               \
	} while (0)

static int img_read(void *ctx, uint64_t addr, void *buf, uint32_t len)
{
	struct image *im = ctx;
	CHECK(len > 0 && len <= NVME_WALK_RDBUF);
	CHECK(len - 1 <= UINT64_MAX - addr);
	im->reads++;
	if (addr < IMG_BASE || len > im->n || addr - IMG_BASE > im->n - len)
		return -1;
	memcpy(buf, im->p + (addr - IMG_BASE), len);
	return 0;
}

/* Transfer length and direction of a command, as the controller derives them; 0 = no data. */
static uint64_t xfer_of(const struct ferry_nvme_sqe *s, int admin, uint32_t lba, int *c2h)
{
	*c2h = 0;
	if (admin) {
		switch (s->opcode) {
		case FERRY_NVME_ADM_IDENTIFY:
			*c2h = 1;
			return 4096;
		case FERRY_NVME_ADM_GET_LOG_PAGE:
			*c2h = 1;
			return ((((uint64_t)(s->cdw11 & 0xffff)) << 16 | (s->cdw10 >> 16)) + 1) * 4;
		default:
			return 0;
		}
	}
	switch (s->opcode) {
	case FERRY_NVME_CMD_READ:
		*c2h = 1;
		/* fall through */
	case FERRY_NVME_CMD_WRITE:
	case FERRY_NVME_CMD_COMPARE:
		return (uint64_t)((s->cdw12 & 0xffff) + 1) * lba;
	case FERRY_NVME_CMD_DSM:
		return (uint64_t)((s->cdw10 & 0xff) + 1) * 16;
	default:
		return 0;
	}
}

static int generic_walk_status(uint16_t st)
{
	if (FERRY_NVME_STATUS_SCT(st) != FERRY_NVME_SCT_GENERIC)
		return 0;
	switch (FERRY_NVME_STATUS_SC(st)) {
	case FERRY_NVME_SC_INVALID_FIELD:
	case FERRY_NVME_SC_DATA_XFER_ERROR:
	case FERRY_NVME_SC_INVALID_SGL_SEG:
	case FERRY_NVME_SC_INVALID_SGL_NUM:
	case FERRY_NVME_SC_DATA_SGL_LEN:
	case FERRY_NVME_SC_SGL_TYPE:
	case FERRY_NVME_SC_PRP_OFFSET:
		return 1;
	default:
		return 0;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t lbas[4] = {512, 520, 4096, 4104};
	static const uint32_t max_desc[4] = {1, 16, 128, 256};
	static struct iovec iov[IOV_CAP];
	static uint8_t kind[IOV_CAP];
	static struct nvme_walker w;
	struct ferry_nvme_sqe sqe;

	if (size < sizeof(sqe) + 1)
		return 0;
	memcpy(&sqe, data, sizeof(sqe));
	uint8_t cfg = data[sizeof(sqe)];
	uint32_t page = 4096u << ((cfg & 3) == 3 ? 0 : (cfg & 3));
	int admin = (cfg >> 4) & 1;
	int c2h;
	uint64_t len = xfer_of(&sqe, admin, lbas[(cfg >> 2) & 3], &c2h);
	if (len == 0 || len > MAX_XFER)
		return 0; /* no data, or Invalid Field (MDTS) before any walking */

	struct image im = {data + sizeof(sqe) + 1, size - sizeof(sqe) - 1, 0};
	struct nvme_walk_params p = {
		.sqe = &sqe,
		.xfer_len = len,
		.page_size = page,
		.max_sgl_desc = max_desc[cfg >> 6],
		.allow_sgl = !admin && !((cfg >> 5) & 1),
		.c2h = c2h,
	};
	nvme_walker_init(&w, &p, iov, kind, IOV_CAP);
	int rc = nvme_walk_sync(&w, img_read, &im);

	/* Reads are bounded by the entries / descriptors the transfer can need. */
	CHECK(im.reads <= 2 * (len / page + 2) + max_desc[cfg >> 6] + 2);
	if (rc == NVME_WALK_ERROR) {
		CHECK(w.status != 0 && generic_walk_status(w.status));
		return 0;
	}
	CHECK(rc == NVME_WALK_DONE);
	CHECK(w.iovcnt >= 1 && w.iovcnt <= IOV_CAP);
	uint64_t total = 0;
	int psdt = sqe.flags >> FERRY_NVME_FLAGS_PSDT_SHIFT;
	for (uint32_t i = 0; i < w.iovcnt; i++) {
		uint64_t a = (uint64_t)(uintptr_t)iov[i].iov_base, n = iov[i].iov_len;
		CHECK(n > 0 && n <= len);
		CHECK(kind[i] == NVME_WALK_SEG_DATA || kind[i] == NVME_WALK_SEG_BUCKET);
		if (kind[i] == NVME_WALK_SEG_BUCKET)
			CHECK(c2h && psdt != FERRY_NVME_PSDT_PRP);
		else
			CHECK(n - 1 <= UINT64_MAX - a);
		if (psdt == FERRY_NVME_PSDT_PRP) {
			if (i == 0)
				CHECK(a == sqe.dptr.prp.prp1 && (a & 3) == 0);
			else
				CHECK((a & (page - 1)) == 0);
		}
		total += n;
	}
	CHECK(total == len);
	CHECK(w.mapped == len);
	return 0;
}
