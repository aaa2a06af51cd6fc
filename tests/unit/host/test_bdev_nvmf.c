/*
 * The nvmf bdev against the scripted fake controller (fake_target.h): the connect sequence's
 * bytes, reads and writes with in-capsule data and with R2T splits, digests, the C2H SUCCESS
 * flag, flush/write zeroes/unmap/compare, and option checks.
 */
#include <criterion/criterion.h>
#include <ferry/bdev.h>
#include <ferry/bdev_nvmf.h>
#include <ferry/log.h>
#include "fake_target.h"
#include "nvmf_test_util.h"
#include "test_mock_util.h"

struct io_wait {
	int done;
	int status;
};

static void io_cb(struct ferry_bdev_io *io, void *arg)
{
	struct io_wait *w = arg;
	w->done = 1;
	w->status = io->status;
}

/* Submit and drive one I/O to its end (bounded: 10 s). Returns its status. */
static int run_io(struct ferry_bdev *b, enum ferry_bdev_io_type type, uint64_t lba, uint64_t n,
		  void *buf)
{
	struct ferry_bdev_io io;
	struct iovec iov = {buf, buf ? n * ferry_bdev_get_block_size(b) : 0};
	struct io_wait w = {0};
	memset(&io, 0, sizeof(io));
	io.type = type;
	io.offset_blocks = lba;
	io.num_blocks = n;
	if (buf) {
		io.mem.iov = &iov;
		io.mem.iovcnt = 1;
	}
	io.cb = io_cb;
	io.cb_arg = &w;
	int rc = ferry_bdev_submit(b, &io);
	if (rc)
		return rc;
	uint64_t end = tm_now_ns() + 10000000000ull;
	while (!w.done && tm_now_ns() < end)
		ferry_bdev_io_poll(&io);
	cr_assert(w.done, "I/O did not complete within 10 s");
	return w.status;
}

static struct ferry_bdev *connect_to(struct fake_target *t, const char *name, int dg)
{
	struct ferry_bdev_nvmf_opts o = {0};
	o.size = sizeof(o);
	o.name = name;
	o.addr = t->addr;
	o.subnqn = "nqn.2026-01.io.ferry:test";
	o.hdgst = (uint8_t)dg;
	o.ddgst = (uint8_t)dg;
	o.connect_timeout_ms = 3000;
	struct ferry_bdev *b = NULL;
	int rc = ferry_bdev_nvmf_create(&o, &b);
	cr_assert_eq(rc, 0, "create: %s (%s)", ferry_strerror(rc), ferry_last_error());
	return b;
}



Test(bdev_nvmf, connect_sequence_bytes)
{
	struct fake_target t;
	ft_defaults(&t);
	cr_assert_eq(ft_start(&t), 0);
	struct ferry_bdev *b = connect_to(&t, "nvmf_seq", 0);
	cr_assert_eq(ferry_bdev_get_block_size(b), 512);
	cr_assert_eq(ferry_bdev_get_num_blocks(b), 2048);
	cr_assert_str_eq(ferry_bdev_get_module(b), "nvmf");

	const struct ferry_nvme_tcp_icreq *ic = (const void *)t.icreq;
	cr_assert_eq(ic->ch.pdu_type, FERRY_NVME_TCP_ICREQ);
	cr_assert_eq(ic->ch.hlen, 128);
	cr_assert_eq(ic->ch.pdo, 0);
	cr_assert_eq(ic->ch.plen, 128);
	cr_assert_eq(ic->pfv, 0);
	cr_assert_eq(ic->hpda, 0);
	cr_assert_eq(ic->dgst, 0);
	cr_assert_eq(ic->maxr2t, 0);

	const struct ferry_nvmf_connect_cmd *cc = (const void *)t.connect_cmd;
	cr_assert_eq(cc->opcode, FERRY_NVMF_OPC_FABRICS);
	cr_assert_eq(cc->fctype, FERRY_NVMF_FCTYPE_CONNECT);
	cr_assert_eq(cc->flags >> 6, FERRY_NVME_PSDT_SGL_MPTR_CONTIG);
	cr_assert_eq(cc->dptr.sgl.id, FERRY_NVME_TCP_SGL_ICD);
	cr_assert_eq(cc->dptr.sgl.length, 1024);
	cr_assert_eq(cc->qid, 0);
	cr_assert_eq(cc->sqsize, 31);
	cr_assert_eq(cc->kato, 10000);
	const struct ferry_nvmf_connect_data *cd = (const void *)t.connect_data;
	cr_assert_eq(cd->cntlid, 0xffff);
	cr_assert_str_eq(cd->subnqn, "nqn.2026-01.io.ferry:test");
	cr_assert(strncmp(cd->hostnqn, "nqn.2014-08.org.nvmexpress:uuid:", 32) == 0, "%s",
		  cd->hostnqn);
	cr_assert_eq(strlen(cd->hostnqn), 32 + 36);
	cr_assert_eq(t.kato, 10000);
	cr_assert_eq(atomic_load(&t.connections), 2, "admin + one I/O queue");

	uint32_t st = 99;
	cr_assert_eq(ferry_bdev_nvmf_get_state(b, &st), 0);
	cr_assert_eq(st, FERRY_BDEV_NVMF_CONNECTED);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	ft_stop(&t);
}

static void rw_roundtrip(struct fake_target *t, struct ferry_bdev *b)
{
	uint8_t *w = malloc(65536), *r = malloc(65536);
	uint32_t sizes[] = {1, 2, 8, 16, 64, 128};
	for (unsigned k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		uint32_t n = sizes[k];
		uint64_t lba = (k * 200u) % (2048 - n);
		fill(w, n * 512u, k + 1);
		cr_assert_eq(run_io(b, FERRY_BDEV_IO_WRITE, lba, n, w), 0, "write %u: %s", n,
			     ferry_last_error());
		cr_assert_eq(memcmp(t->storage + lba * 512, w, n * 512u), 0,
			     "target bytes, %u blocks", n);
		memset(r, 0, n * 512u);
		cr_assert_eq(run_io(b, FERRY_BDEV_IO_READ, lba, n, r), 0, "read %u", n);
		cr_assert_eq(memcmp(r, w, n * 512u), 0, "read back, %u blocks", n);
	}
	free(w);
	free(r);
}

Test(bdev_nvmf, rw_in_capsule)
{
	struct fake_target t;
	ft_defaults(&t);
	cr_assert_eq(ft_start(&t), 0);
	struct ferry_bdev *b = connect_to(&t, "nvmf_icd", 0);
	rw_roundtrip(&t, b);
	struct ferry_bdev_nvmf_stats s = stats_of(b);
	cr_assert_eq(s.icd_writes, 4, "writes up to 8 KiB in the capsule (1, 2, 8, 16 blocks)");
	cr_assert_eq(s.r2ts, 2, "64 and 128 blocks by R2T");
	cr_assert_eq(s.bytes_written, (1 + 2 + 8 + 16 + 64 + 128) * 512u);
	cr_assert_eq(s.bytes_read, s.bytes_written);
	cr_assert_eq(s.io_errors, 0);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	ft_stop(&t);
}

Test(bdev_nvmf, rw_r2t_splits)
{
	struct fake_target t;
	ft_defaults(&t);
	t.ioccsz = 4;        /* no in-capsule data */
	t.maxh2cdata = 4096; /* H2CData PDUs of 4 KiB */
	t.r2t_split = 12288; /* R2Ts of 12 KiB */
	t.c2h_chunk = 1536;  /* C2HData of 3 blocks */
	cr_assert_eq(ft_start(&t), 0);
	struct ferry_bdev *b = connect_to(&t, "nvmf_r2t", 0);
	rw_roundtrip(&t, b);
	struct ferry_bdev_nvmf_stats s = stats_of(b);
	cr_assert_eq(s.icd_writes, 0);
	/* 512, 1K, 4K, 8K: 1 R2T each; 32K: 3; 64K: 6 */
	cr_assert_eq(s.r2ts, 4 + 3 + 6);
	/* H2C PDUs: 1,1,1,2 ; 32K = 12K+12K+8K -> 3+3+2 ; 64K = 5x12K + 4K -> 5*3 + 1 */
	cr_assert_eq(s.h2c_pdus, 1 + 1 + 1 + 2 + 8 + 16);
	cr_assert_eq(s.io_errors, 0);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	ft_stop(&t);
}

Test(bdev_nvmf, digests_and_c2h_success)
{
	struct fake_target t;
	ft_defaults(&t);
	t.c2h_success = 1;
	t.c2h_chunk = 4096;
	t.maxh2cdata = 8192;
	cr_assert_eq(ft_start(&t), 0);
	struct ferry_bdev *b = connect_to(&t, "nvmf_dg", 1);
	const struct ferry_nvme_tcp_icreq *ic = (const void *)t.icreq;
	cr_assert_eq(ic->dgst, FERRY_NVME_TCP_DGST_HDGST | FERRY_NVME_TCP_DGST_DDGST);
	rw_roundtrip(&t, b);
	struct ferry_bdev_nvmf_stats s = stats_of(b);
	cr_assert_eq(s.c2h_success, 6, "every read ended by the SUCCESS flag");
	cr_assert_gt(s.digests_computed, 12);
	cr_assert_eq(s.digest_errors, 0);
	cr_assert_eq(s.io_errors, 0);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	ft_stop(&t);
}

Test(bdev_nvmf, no_data_commands_and_compare)
{
	struct fake_target t;
	ft_defaults(&t);
	cr_assert_eq(ft_start(&t), 0);
	struct ferry_bdev *b = connect_to(&t, "nvmf_nd", 0);
	uint8_t w[4096], r[4096];
	fill(w, sizeof(w), 9);
	cr_assert_eq(run_io(b, FERRY_BDEV_IO_WRITE, 100, 8, w), 0);
	cr_assert_eq(run_io(b, FERRY_BDEV_IO_COMPARE, 100, 8, w), 0);
	w[700] ^= 1;
	cr_assert_eq(run_io(b, FERRY_BDEV_IO_COMPARE, 100, 8, w), -EILSEQ);
	w[700] ^= 1;
	cr_assert_eq(run_io(b, FERRY_BDEV_IO_FLUSH, 0, 0, NULL), 0);
	cr_assert_eq(run_io(b, FERRY_BDEV_IO_WRITE_ZEROES, 100, 2, NULL), 0);
	cr_assert_eq(run_io(b, FERRY_BDEV_IO_UNMAP, 106, 2, NULL), 0);
	cr_assert_eq(run_io(b, FERRY_BDEV_IO_READ, 100, 8, r), 0);
	memset(w, 0, 1024);
	memset(w + 3072, 0, 1024);
	cr_assert_eq(memcmp(r, w, sizeof(r)), 0);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	ft_stop(&t);
}

Test(bdev_nvmf, bad_options)
{
	struct ferry_bdev *b = NULL;
	struct ferry_bdev_nvmf_opts o = {0};
	cr_assert_eq(ferry_bdev_nvmf_create(NULL, &b), -EINVAL);
	cr_assert_eq(ferry_bdev_nvmf_create(&o, &b), -EINVAL, "size 0");
	o.size = sizeof(o);
	o.name = "x";
	o.addr = "127.0.0.1:1";
	cr_assert_eq(ferry_bdev_nvmf_create(&o, &b), -EINVAL, "no subnqn");
	o.subnqn = "nqn.x";
	o.trtype = "rdma";
	cr_assert_eq(ferry_bdev_nvmf_create(&o, &b), -ENOTSUP);
	o.trtype = NULL;
	o.flags = 1u << 31; /* not a FERRY_BDEV_NVMF_F_* flag */
	cr_assert_eq(ferry_bdev_nvmf_create(&o, &b), -EINVAL);
	o.flags = 0;
	o.connect_timeout_ms = 500;
	/* a port nobody listens on (bound, not listening) */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (void *)&a, sizeof(a)), 0);
	socklen_t al = sizeof(a);
	getsockname(fd, (void *)&a, &al);
	char addr[32];
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(a.sin_port));
	o.addr = addr;
	int rc = ferry_bdev_nvmf_create(&o, &b);
	cr_assert(rc == -ECONNREFUSED || rc == -ETIMEDOUT, "got %d", rc);
	close(fd);
	cr_assert_null(ferry_bdev_lookup("x"));
	struct ferry_bdev_nvmf_stats s = {.size = sizeof(s)};
	cr_assert_eq(ferry_bdev_nvmf_get_stats(NULL, &s), -EINVAL);
}
