/*
 * The integrator's side of a bdev I/O: ferry_bdev_io_poll() alone drives a write and a read
 * through crypto -> dif -> malloc to completion, from the mock PCI function's host memory,
 * with a sequence on the mock engine's accel channel and without one; and the block numbers
 * of a PI error, in io->error_block and in every log message, are absolute LBAs.
 */
#include <stdio.h>
#include "test_mock_util.h"
#include "test_vbdev_util.h"

#define BS 512u
#define NBLK 256u
#define N 4u
#define APP 0x4afe

struct stack {
	struct ferry_device *dev;
	struct ferry_mock_host *host;
	struct ferry_memdomain *hdom;
	struct ferry_accel_chan *ch;
	struct ferry_crypto_key *key;
	struct ferry_bdev *mal, *dif, *cry;
	uint8_t *host_buf; /* the host memory at IOVA 0, as the test sees it */
	struct iovec iov;
};

static void stack_open(struct stack *s)
{
	memset(s, 0, sizeof(*s));
	s->dev = tm_open("host_mem=1M,functions=nvme");
	s->host = tm_host(s->dev);
	s->hdom = tm_domain(s->dev, "nvme");
	tm_map(s->host, "nvme", 0, 0, 1, TM_RW);
	s->host_buf = ferry_mock_host_ptr(s->host, 0, N * BS);
	cr_assert_not_null(s->host_buf);
	s->ch = ta_chan(s->dev, 0);
	s->key = ta_key(0x5eed, FERRY_CIPHER_AES_XTS_128, BS);
	s->mal = tv_malloc("iop_mal", BS, 8, NBLK, 1);
	s->dif = tv_dif("iop_dif", s->mal, 1, TV_CHECK_ALL, APP, 0xffff);
	s->cry = tv_crypto("iop_cry", s->dif, s->key);
}

static void stack_close(struct stack *s)
{
	cr_assert_eq(ferry_bdev_destroy(s->cry), 0);
	cr_assert_eq(ferry_bdev_destroy(s->dif), 0);
	cr_assert_eq(ferry_bdev_destroy(s->mal), 0);
	ferry_crypto_key_destroy(s->key);
	ferry_accel_chan_destroy(s->ch);
	ferry_mock_host_close(s->host);
	ferry_device_close(s->dev);
}

struct waiter {
	int calls;
};

static void waiter_cb(struct ferry_bdev_io *io, void *arg)
{
	(void)io;
	((struct waiter *)arg)->calls++;
}

/* One I/O of N blocks at @p lba on the host memory, driven by ferry_bdev_io_poll() only. */
static int run_io(struct stack *s, enum ferry_bdev_io_type type, uint64_t lba, int seq,
		  struct ferry_bdev_io *io)
{
	struct waiter w = {0};
	memset(io, 0, sizeof(*io));
	io->type = type;
	io->offset_blocks = lba;
	io->num_blocks = N;
	s->iov = (struct iovec){.iov_base = (void *)0, .iov_len = N * BS}; /* IOVA 0 */
	io->mem = (struct ferry_mem){.domain = s->hdom, .iov = &s->iov, .iovcnt = 1};
	io->cb = waiter_cb;
	io->cb_arg = &w;
	if (seq)
		cr_assert_eq(ferry_seq_create(s->ch, &io->seq), 0);
	int rc = ferry_bdev_submit(s->cry, io);
	cr_assert_eq(rc, 0, "submit: %d (%s)", rc, ferry_last_error());
	uint64_t end = tm_now_ns() + 5000000000ull;
	while (w.calls == 0) {
		cr_assert_geq(ferry_bdev_io_poll(io), 0);
		cr_assert_lt(tm_now_ns(), end, "I/O stuck although polled");
	}
	cr_assert_eq(w.calls, 1);
	cr_assert_eq(ferry_bdev_io_poll(io), 0, "a completed I/O waits on nothing");
	return io->status;
}

Test(bdev_io_poll, write_read_through_crypto_dif_malloc)
{
	struct stack s;
	stack_open(&s);
	uint64_t seed = 11;
	uint8_t want[N * BS];
	struct ferry_bdev_io io;
	for (int seq = 1; seq >= 0; seq--) {
		uint64_t lba = seq ? 8 : 40;
		ta_fill_rand(want, sizeof(want), &seed);
		memcpy(s.host_buf, want, sizeof(want));
		cr_assert_eq(run_io(&s, FERRY_BDEV_IO_WRITE, lba, seq, &io), 0, "write seq %d", seq);
		memset(s.host_buf, 0, sizeof(want));
		cr_assert_eq(run_io(&s, FERRY_BDEV_IO_READ, lba, seq, &io), 0, "read seq %d", seq);
		cr_assert_eq(memcmp(s.host_buf, want, sizeof(want)), 0, "seq %d: data differ", seq);
	}
	cr_assert_eq(ferry_bdev_io_poll(NULL), -EINVAL);
	stack_close(&s);
}

/* ---- block numbers ---- */

static char msgs[64][256];
static int nmsgs;

static void sink(enum ferry_log_level level, const char *comp, const char *fmt, va_list ap)
{
	if (level != FERRY_LOG_ERROR || nmsgs == (int)(sizeof(msgs) / sizeof(msgs[0])))
		return;
	int n = snprintf(msgs[nmsgs], sizeof(msgs[0]), "%s: ", comp);
	vsnprintf(msgs[nmsgs] + n, sizeof(msgs[0]) - (size_t)n, fmt, ap);
	nmsgs++;
}

/* A message of the bdev layer naming a block names the absolute LBA @p lba. (The DIF
 * kernels' own messages, component "dif", count from the start of the buffer they check:
 * they know no LBA.) */
static void assert_blocks_absolute(uint64_t lba)
{
	char want[32];
	snprintf(want, sizeof(want), "block %llu", (unsigned long long)lba);
	int named = 0;
	for (int i = 0; i < nmsgs; i++) {
		if (strncmp(msgs[i], "bdev", 4) != 0)
			continue; /* the bdev components: bdev, bdev_dif, bdev_crypto... */
		const char *b = strstr(msgs[i], "block ");
		if (!b)
			continue;
		cr_assert_not_null(strstr(msgs[i], want), "'%s' does not name %s", msgs[i], want);
		named++;
	}
	cr_assert_geq(named, 1, "no bdev message names the failing block");
}

Test(bdev_io_poll, pi_error_block_is_absolute_in_io_and_log)
{
	struct stack s;
	stack_open(&s);
	uint64_t seed = 5;
	struct ferry_bdev_io io;
	ta_fill_rand(s.host_buf, N * BS, &seed);
	cr_assert_eq(run_io(&s, FERRY_BDEV_IO_WRITE, 20, 1, &io), 0);
	uint8_t raw[BS + 8];
	tv_raw(s.mal, FERRY_BDEV_IO_READ, 22, 1, raw);
	raw[BS + 6] ^= 0x80; /* reference tag of LBA 22, the I/O's third block */
	tv_raw(s.mal, FERRY_BDEV_IO_WRITE, 22, 1, raw);
	ferry_log_set_handler(sink);
	for (int seq = 0; seq <= 1; seq++) {
		nmsgs = 0;
		cr_assert_eq(run_io(&s, FERRY_BDEV_IO_READ, 20, seq, &io), -EILSEQ);
		cr_assert_eq(io.error, FERRY_BDEV_ERR_REFTAG, "seq %d: error %d", seq, io.error);
		cr_assert_eq(io.error_block, 22, "seq %d", seq);
		assert_blocks_absolute(22);
	}
	ferry_log_set_handler(NULL);
	stack_close(&s);
}
