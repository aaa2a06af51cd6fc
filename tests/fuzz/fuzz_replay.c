/*
 * Regression runner for the fuzz targets, built with the normal compiler in every build:
 * replays every file of the given corpus directories through LLVMFuzzerTestOneInput() (a
 * violated invariant aborts). `--write-seeds <dir>` writes the hand-made seed corpus of the
 * SQE/PRP/SGL walker target (what tests/fuzz/corpus/sqe_walker/ was generated from).
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <ferry/nvme_spec.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define IMG_BASE 0x10000ull

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "replay: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	uint8_t *buf = NULL;
	size_t n = 0, cap = 0;
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 4096;
			uint8_t *nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				fclose(f);
				return -1;
			}
			buf = nb;
		}
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	return 0;
}

/* ---- seeds ------------------------------------------------------------------------------- */

struct seed {
	uint8_t b[65 + 16384];
	size_t n;
};

static void seed_init(struct seed *s, const struct ferry_nvme_sqe *sqe, uint8_t cfg, size_t img)
{
	memset(s, 0, sizeof(*s));
	memcpy(s->b, sqe, 64);
	s->b[64] = cfg;
	s->n = 65 + img;
}

static void img_put(struct seed *s, uint64_t addr, const void *p, size_t n)
{
	memcpy(s->b + 65 + (addr - IMG_BASE), p, n);
}

static struct ferry_nvme_sgl_desc desc(uint64_t addr, uint32_t len, uint8_t type)
{
	struct ferry_nvme_sgl_desc d;
	memset(&d, 0, sizeof(d));
	d.address = addr;
	d.length = len;
	d.id = FERRY_NVME_SGL_ID(type, 0);
	return d;
}

static int write_seed(const char *dir, const char *name, const struct seed *s)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(s->b, 1, s->n, f) != s->n) {
		fprintf(stderr, "seeds: cannot write %s\n", path);
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	return 0;
}

static int write_seeds(const char *dir)
{
	static struct seed s;
	struct ferry_nvme_sqe q;
	int rc = 0;
	const uint8_t cfg4k = 3 << 0 | 0 << 2 | 2 << 6; /* 4 KiB pages, 512 B LBAs, 128 descs */

	/* 1. Read of 8 blocks with PRP1 only. */
	memset(&q, 0, sizeof(q));
	q.opcode = FERRY_NVME_CMD_READ;
	q.cdw12 = 7;
	q.dptr.prp.prp1 = IMG_BASE + 0x1000;
	seed_init(&s, &q, cfg4k, 0);
	rc |= write_seed(dir, "prp1_only", &s);

	/* 2. Write of 64 KiB through a PRP list that chains (list starts 2 slots before the end
	 * of its page). */
	memset(&q, 0, sizeof(q));
	q.opcode = FERRY_NVME_CMD_WRITE;
	q.cdw12 = 127;
	q.dptr.prp.prp1 = IMG_BASE + 0x200;
	q.dptr.prp.prp2 = IMG_BASE + 0x1000 - 16;
	seed_init(&s, &q, cfg4k, 0x3000);
	uint64_t e = IMG_BASE + 0x1000 * 8;
	img_put(&s, IMG_BASE + 0x1000 - 16, &e, 8);
	e = IMG_BASE + 0x2000; /* chain */
	img_put(&s, IMG_BASE + 0x1000 - 8, &e, 8);
	for (int i = 0; i < 15; i++) {
		e = IMG_BASE + 0x1000 * (9 + (uint64_t)i);
		img_put(&s, IMG_BASE + 0x2000 + 8 * (uint64_t)i, &e, 8);
	}
	rc |= write_seed(dir, "prp_list_chained", &s);

	/* 3. Identify (admin) with an offset PRP1 and PRP2. */
	memset(&q, 0, sizeof(q));
	q.opcode = FERRY_NVME_ADM_IDENTIFY;
	q.cdw10 = 1;
	q.dptr.prp.prp1 = IMG_BASE + 0x80;
	q.dptr.prp.prp2 = IMG_BASE + 0x1000;
	seed_init(&s, &q, cfg4k | 1 << 4, 0);
	rc |= write_seed(dir, "admin_identify", &s);

	/* 4. SGL read: segment → last segment, with a bit bucket. */
	memset(&q, 0, sizeof(q));
	q.opcode = FERRY_NVME_CMD_READ;
	q.cdw12 = 3; /* 2 KiB */
	q.flags = FERRY_NVME_PSDT_SGL_MPTR_CONTIG << FERRY_NVME_FLAGS_PSDT_SHIFT;
	q.dptr.sgl = desc(IMG_BASE + 0x100, 32, FERRY_NVME_SGL_SEGMENT);
	seed_init(&s, &q, cfg4k, 0x400);
	struct ferry_nvme_sgl_desc d[3];
	memset(d, 0, sizeof(d));
	d[0] = desc(IMG_BASE + 0x8000, 1024, FERRY_NVME_SGL_DATA_BLOCK);
	d[1] = desc(IMG_BASE + 0x200, 32, FERRY_NVME_SGL_LAST_SEGMENT);
	img_put(&s, IMG_BASE + 0x100, d, 32);
	d[0] = desc(0, 512, FERRY_NVME_SGL_BIT_BUCKET);
	d[1] = desc(IMG_BASE + 0x9000, 512, FERRY_NVME_SGL_DATA_BLOCK);
	img_put(&s, IMG_BASE + 0x200, d, 32);
	rc |= write_seed(dir, "sgl_segments_bucket", &s);

	/* 5. SGL write with one data block in the SQE, 520-byte LBAs. */
	memset(&q, 0, sizeof(q));
	q.opcode = FERRY_NVME_CMD_WRITE;
	q.cdw12 = 1;
	q.flags = FERRY_NVME_PSDT_SGL_MPTR_CONTIG << FERRY_NVME_FLAGS_PSDT_SHIFT;
	q.dptr.sgl = desc(IMG_BASE + 0x10, 1040, FERRY_NVME_SGL_DATA_BLOCK);
	seed_init(&s, &q, 3 | 1 << 2 | 2 << 6, 0);
	rc |= write_seed(dir, "sgl_data_block_520", &s);

	/* 6. Dataset Management: 3 ranges through PRP1. */
	memset(&q, 0, sizeof(q));
	q.opcode = FERRY_NVME_CMD_DSM;
	q.cdw10 = 2;
	q.dptr.prp.prp1 = IMG_BASE + 0xff8; /* crosses a page: PRP2 needed */
	q.dptr.prp.prp2 = IMG_BASE + 0x1000;
	seed_init(&s, &q, cfg4k, 0);
	rc |= write_seed(dir, "dsm_prp_cross", &s);

	/* 7. Write of 64 KiB whose PRP list chains back to the start of its own page: the
	 * walk must end after the entries the transfer needs (a loop in host memory). */
	memset(&q, 0, sizeof(q));
	q.opcode = FERRY_NVME_CMD_WRITE;
	q.cdw12 = 127;
	q.dptr.prp.prp1 = IMG_BASE + 0x8000;
	q.dptr.prp.prp2 = IMG_BASE + 0x1000 - 16;
	seed_init(&s, &q, cfg4k, 0x1000);
	e = IMG_BASE + 0x9000;
	img_put(&s, IMG_BASE + 0x1000 - 16, &e, 8);
	e = IMG_BASE; /* chain to its own page */
	img_put(&s, IMG_BASE + 0x1000 - 8, &e, 8);
	rc |= write_seed(dir, "prp_chain_to_own_page", &s);

	/* 8. SGL read whose segment's last descriptor points to the segment itself: bounded
	 * by the descriptor limit (Invalid Number of SGL Descriptors). */
	memset(&q, 0, sizeof(q));
	q.opcode = FERRY_NVME_CMD_READ;
	q.cdw12 = 127; /* 64 KiB */
	q.flags = FERRY_NVME_PSDT_SGL_MPTR_CONTIG << FERRY_NVME_FLAGS_PSDT_SHIFT;
	q.dptr.sgl = desc(IMG_BASE + 0x100, 32, FERRY_NVME_SGL_SEGMENT);
	seed_init(&s, &q, cfg4k, 0x200);
	d[0] = desc(IMG_BASE + 0x8000, 512, FERRY_NVME_SGL_DATA_BLOCK);
	d[1] = desc(IMG_BASE + 0x100, 32, FERRY_NVME_SGL_SEGMENT);
	img_put(&s, IMG_BASE + 0x100, d, 32);
	rc |= write_seed(dir, "sgl_segment_self_loop", &s);

	/* 9. SGL write: a Last Segment whose segment chains again (Invalid SGL Segment
	 * Descriptor), pointing back to itself. */
	memset(&q, 0, sizeof(q));
	q.opcode = FERRY_NVME_CMD_WRITE;
	q.cdw12 = 1;
	q.flags = FERRY_NVME_PSDT_SGL_MPTR_CONTIG << FERRY_NVME_FLAGS_PSDT_SHIFT;
	q.dptr.sgl = desc(IMG_BASE + 0x40, 48, FERRY_NVME_SGL_LAST_SEGMENT);
	seed_init(&s, &q, cfg4k, 0x100);
	d[0] = desc(IMG_BASE + 0x8000, 512, FERRY_NVME_SGL_DATA_BLOCK);
	d[1] = desc(IMG_BASE + 0xa000, 512, FERRY_NVME_SGL_DATA_BLOCK);
	d[2] = desc(IMG_BASE + 0x40, 48, FERRY_NVME_SGL_SEGMENT);
	img_put(&s, IMG_BASE + 0x40, d, 48);
	rc |= write_seed(dir, "sgl_last_segment_chains_again", &s);
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0)
		return write_seeds(argv[2]);
	if (argc < 2) {
		fprintf(stderr, "usage: %s <corpus dir|file>... | --write-seeds <dir>\n", argv[0]);
		return 2;
	}
	unsigned int files = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (replay_file(argv[i]))
				return 1;
			files++;
			continue;
		}
		DIR *d = opendir(argv[i]);
		if (!d)
			return 1;
		for (struct dirent *de; (de = readdir(d));) {
			if (de->d_name[0] == '.')
				continue;
			char path[4096];
			snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
			if (replay_file(path)) {
				closedir(d);
				return 1;
			}
			files++;
		}
		closedir(d);
	}
	printf("replayed %u input(s), no invariant violated\n", files);
	return files ? 0 : 1;
}
