/*
 * The nvmf bdev against Ferry's own NVMe/TCP target in the same process (the target polled
 * on its own thread): a crypto -> dif -> nvmf stack on the initiator over a 4096+8 malloc
 * namespace, 100 000 random verified I/Os (each with an accel sequence on the software
 * engine) against a shadow copy, with and without digests; then raw blocks read through the
 * nvmf bdev alone are the AES-XTS ciphertext of the shadow with the PI reference tag. And
 * against a target whose largest transfer is 16 KiB (max_io_size=16384): random reads,
 * writes and write zeroes of 1..48 blocks through the same stack, each nvmf I/O split into
 * parts of 3 blocks, verified.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <ferry/accel.h>
#include <ferry/bdev.h>
#include <ferry/bdev_crypto.h>
#include <ferry/bdev_dif.h>
#include <ferry/bdev_malloc.h>
#include <ferry/bdev_nvmf.h>
#include <ferry/nvme.h>
#include <ferry/tcp_transport.h>
#include <ferry/transport.h>
#include "nvmf_test_util.h"
#include "test_accel_util.h"
#include "test_mock_util.h"

#define LB_NQN "nqn.2026-01.io.ferry:loopback"
#define LB_BLOCKS 1024u
#define LB_BS 4096u

static struct tgt T;

/* The target over a 4096+8 malloc namespace, its transport with @p args. */
static void lb_tgt_up(const char *args)
{
	struct tgt_cfg c = {.bdev_name = "lb_malloc",
			    .block_size = LB_BS + 8,
			    .num_blocks = LB_BLOCKS,
			    .md_size = 8,
			    .nqn = LB_NQN,
			    .serial = "LB",
			    .args = args};
	tgt_up(&T, &c);
}

struct req {
	struct ferry_bdev_io io;
	struct iovec iov;
	uint8_t buf[LB_BS];
	uint32_t blk;
	int busy;
};

static struct {
	uint8_t shadow[LB_BLOCKS][LB_BS];
	uint8_t busy[LB_BLOCKS];
	struct req reqs[32];
	uint64_t done, errors, mismatches;
} W;

static void io_cb(struct ferry_bdev_io *io, void *arg)
{
	struct req *r = arg;
	W.done++;
	if (io->status) {
		W.errors++;
		if (W.errors < 5)
			fprintf(stderr, "I/O error on block %u: %d (%s)\n", r->blk, io->status,
				ferry_last_error());
	} else if (io->type == FERRY_BDEV_IO_READ) {
		if (memcmp(r->buf, W.shadow[r->blk], LB_BS))
			W.mismatches++;
	} else {
		memcpy(W.shadow[r->blk], r->buf, LB_BS);
	}
	W.busy[r->blk] = 0;
	r->busy = 0;
}

static void raw_cb(struct ferry_bdev_io *io, void *arg)
{
	(void)io;
	*(int *)arg = 1;
}

static void start(struct ferry_bdev *b, struct ferry_accel_chan *ch, struct req *r, int write,
		  uint32_t blk, uint64_t *seed)
{
	memset(&r->io, 0, sizeof(r->io));
	r->blk = blk;
	r->io.type = write ? FERRY_BDEV_IO_WRITE : FERRY_BDEV_IO_READ;
	r->io.offset_blocks = blk;
	r->io.num_blocks = 1;
	r->iov.iov_base = r->buf;
	r->iov.iov_len = LB_BS;
	r->io.mem.iov = &r->iov;
	r->io.mem.iovcnt = 1;
	r->io.cb = io_cb;
	r->io.cb_arg = r;
	if (write)
		ta_fill_rand(r->buf, LB_BS, seed);
	cr_assert_eq(ferry_seq_create(ch, &r->io.seq), 0);
	r->busy = 1;
	W.busy[blk] = 1;
	int rc = ferry_bdev_submit(b, &r->io);
	cr_assert_eq(rc, 0, "submit: %d (%s)", rc, ferry_last_error());
}

/* crypto -> dif (PI type 1, every check) on the nvmf bdev @p nv, names prefixed @p pre. */
static void stack_up(const char *pre, struct ferry_bdev *nv, struct ferry_crypto_key *key,
		     struct ferry_bdev **dif, struct ferry_bdev **cry)
{
	char dn[32], cn[32];
	snprintf(dn, sizeof(dn), "%s_dif", pre);
	snprintf(cn, sizeof(cn), "%s_crypto", pre);
	struct ferry_bdev_dif_opts d = {.size = sizeof(d),
					.name = dn,
					.base = nv,
					.dif_type = 1,
					.check_flags = FERRY_DIF_CHECK_GUARD |
						       FERRY_DIF_CHECK_APPTAG |
						       FERRY_DIF_CHECK_REFTAG,
					.app_tag = 0x1234,
					.app_tag_mask = 0xffff};
	cr_assert_eq(ferry_bdev_dif_create(&d, dif), 0, "%s", ferry_last_error());
	struct ferry_bdev_crypto_opts c = {.size = sizeof(c), .name = cn, .base = *dif, .key = key};
	cr_assert_eq(ferry_bdev_crypto_create(&c, cry), 0, "%s", ferry_last_error());
}

static void workload(int dg, uint64_t n_ios)
{
	lb_tgt_up("buffers=512");
	struct ferry_accel_chan *ch = ta_chan(NULL, 0);
	struct ferry_crypto_key *key = ta_key(21, FERRY_CIPHER_AES_XTS_128, 512);
	struct ferry_bdev_nvmf_opts o = {.size = sizeof(o),
					 .name = "lb_nvmf",
					 .addr = T.addr,
					 .subnqn = LB_NQN,
					 .num_io_queues = 2,
					 .queue_depth = 32,
					 .hdgst = (uint8_t)dg,
					 .ddgst = (uint8_t)dg};
	struct ferry_bdev *nv = NULL, *dif = NULL, *cry = NULL;
	int rc = ferry_bdev_nvmf_create(&o, &nv);
	cr_assert_eq(rc, 0, "nvmf: %d (%s)", rc, ferry_last_error());
	cr_assert_eq(ferry_bdev_get_block_size(nv), LB_BS + 8);
	cr_assert_eq(ferry_bdev_get_md_size(nv), 8);
	stack_up("lb", nv, key, &dif, &cry);

	memset(&W, 0, sizeof(W));
	uint64_t seed = 1234 + (uint64_t)dg, issued = 0;
	uint32_t prefill = 0;
	uint64_t t0 = tm_now_ns(), end = t0 + 60000000000ull;
	const uint32_t qd = sizeof(W.reqs) / sizeof(W.reqs[0]);
	for (;;) {
		uint32_t active = 0;
		for (uint32_t i = 0; i < qd; i++) {
			struct req *r = &W.reqs[i];
			if (!r->busy) {
				if (prefill < LB_BLOCKS) {
					start(cry, ch, r, 1, prefill++, &seed);
				} else if (W.done >= LB_BLOCKS && issued < n_ios) {
					uint32_t blk = (uint32_t)(tm_rand(&seed) % LB_BLOCKS);
					if (!W.busy[blk]) {
						start(cry, ch, r, (int)(tm_rand(&seed) & 1), blk,
						      &seed);
						issued++;
					}
				}
			}
			active += r->busy;
		}
		if (!active && issued >= n_ios)
			break;
		cr_assert(tm_now_ns() < end, "workload did not finish in 60 s (%llu done)",
			  (unsigned long long)W.done);
		ferry_accel_chan_poll(ch, 64);
		ferry_bdev_poll(cry, 64);
	}
	double el = (double)(tm_now_ns() - t0) / 1e9;
	struct ferry_bdev_nvmf_stats s = {.size = sizeof(s)};
	cr_assert_eq(ferry_bdev_nvmf_get_stats(nv, &s), 0);
	fprintf(stderr,
		"loopback (digests %s): %llu I/Os in %.2f s (%.0f IOPS incl. prefill); seq I/Os %llu, "
		"placed %llu, copied %llu, digests %llu\n",
		dg ? "on" : "off", (unsigned long long)W.done, el, (double)W.done / el,
		(unsigned long long)s.seq_ios, (unsigned long long)s.rx_placed_bytes,
		(unsigned long long)s.rx_copied_bytes, (unsigned long long)s.digests_computed);
	cr_assert_eq(W.errors, 0);
	cr_assert_eq(W.mismatches, 0);
	cr_assert_eq(W.done, n_ios + LB_BLOCKS);
	cr_assert_eq(s.seq_ios, W.done, "every I/O went through its sequence");
	cr_assert_eq(s.io_errors, 0);
	if (dg)
		cr_assert_gt(s.digests_computed, 0);

	cr_assert_eq(ferry_bdev_destroy(cry), 0);
	cr_assert_eq(ferry_bdev_destroy(dif), 0);
	/* The namespace holds the ciphertext (tweak = LBA x 8 data units) with PI, never the
	 * plaintext: read raw blocks through the nvmf bdev alone. */
	for (uint32_t blk = 0; blk < LB_BLOCKS; blk += 97) {
		static uint8_t raw[LB_BS + 8], plain[LB_BS];
		struct ferry_bdev_io io;
		struct iovec riov = {raw, sizeof(raw)};
		int done = 0;
		memset(&io, 0, sizeof(io));
		io.type = FERRY_BDEV_IO_READ;
		io.offset_blocks = blk;
		io.num_blocks = 1;
		io.mem.iov = &riov;
		io.mem.iovcnt = 1;
		io.cb = raw_cb;
		io.cb_arg = &done;
		cr_assert_eq(ferry_bdev_submit(nv, &io), 0);
		uint64_t until = tm_now_ns() + 5000000000ull;
		while (!done && tm_now_ns() < until)
			ferry_bdev_io_poll(&io);
		cr_assert_eq(done, 1);
		cr_assert_eq(io.status, 0);
		cr_assert_neq(memcmp(raw, W.shadow[blk], 64), 0,
			      "plaintext on the wire's far side");
		struct iovec pv = {plain, LB_BS}, cv = {raw, LB_BS};
		cr_assert_eq(ferry_crypto_decrypt(key, &pv, 1, &cv, 1, (uint64_t)blk * 8), 0);
		cr_assert_eq(memcmp(plain, W.shadow[blk], LB_BS), 0, "block %u", blk);
		uint32_t ref = (uint32_t)raw[LB_BS + 4] << 24 | (uint32_t)raw[LB_BS + 5] << 16 |
			       (uint32_t)raw[LB_BS + 6] << 8 | raw[LB_BS + 7];
		cr_assert_eq(ref, blk, "PI reference tag of block %u", blk);
	}
	cr_assert_eq(ferry_bdev_destroy(nv), 0);
	ferry_crypto_key_destroy(key);
	ferry_accel_chan_destroy(ch);
	tgt_down(&T);
}

static uint64_t n_ios(void)
{
	const char *e = getenv("FERRY_NVMF_LOOPBACK_IOS");
#if defined(__SANITIZE_ADDRESS__)
	const uint64_t dflt = 30000; /* ASan: about 4x slower; keep the test under ~20 s */
#else
	const uint64_t dflt = 100000;
#endif
	return e ? strtoull(e, NULL, 0) : dflt;
}

/* 100 000 verified I/Os each (30 000 under ASan; FERRY_NVMF_LOOPBACK_IOS overrides). */
Test(bdev_nvmf_loopback, crypto_dif_no_digests, .timeout = 120)
{
	workload(0, n_ios());
}
Test(bdev_nvmf_loopback, crypto_dif_digests, .timeout = 120)
{
	workload(1, n_ios());
}

/* --- multi-block I/O split by a 16 KiB MDTS --- */

#define MB_MAX 48u /* blocks per I/O */
#define MB_MIN(a, b) ((a) < (b) ? (a) : (b))

struct mreq {
	struct ferry_bdev_io io;
	struct iovec iov[3];
	uint8_t buf[MB_MAX * LB_BS];
	uint32_t blk, n;
	int busy;
};

static struct {
	struct mreq reqs[8];
	uint64_t done, errors, mismatches;
} M;

static void mio_cb(struct ferry_bdev_io *io, void *arg)
{
	struct mreq *r = arg;
	M.done++;
	if (io->status) {
		M.errors++;
		if (M.errors < 5)
			fprintf(stderr, "I/O error on blocks %u+%u: %d (%s)\n", r->blk, r->n,
				io->status, ferry_last_error());
	} else if (io->type == FERRY_BDEV_IO_READ) {
		if (memcmp(r->buf, W.shadow[r->blk], (size_t)r->n * LB_BS))
			M.mismatches++;
	} else if (io->type == FERRY_BDEV_IO_WRITE) {
		memcpy(W.shadow[r->blk], r->buf, (size_t)r->n * LB_BS);
	} else {
		memset(W.shadow[r->blk], 0, (size_t)r->n * LB_BS);
	}
	memset(&W.busy[r->blk], 0, r->n);
	r->busy = 0;
}

static void mstart(struct ferry_bdev *b, struct ferry_accel_chan *ch, struct mreq *r,
		   enum ferry_bdev_io_type type, uint32_t blk, uint32_t n, uint64_t *seed)
{
	memset(&r->io, 0, sizeof(r->io));
	r->blk = blk;
	r->n = n;
	r->io.type = type;
	r->io.offset_blocks = blk;
	r->io.num_blocks = n;
	if (type != FERRY_BDEV_IO_WRITE_ZEROES) {
		/* three segments, the cuts off block boundaries */
		size_t len = (size_t)n * LB_BS, a = len / 3 + 7, c = len / 3 - 5;
		r->iov[0] = (struct iovec){r->buf, a};
		r->iov[1] = (struct iovec){r->buf + a, len - a - c};
		r->iov[2] = (struct iovec){r->buf + len - c, c};
		r->io.mem.iov = r->iov;
		r->io.mem.iovcnt = len >= 3 * 16 ? 3 : 1;
		if (r->io.mem.iovcnt == 1)
			r->iov[0].iov_len = len;
		cr_assert_eq(ferry_seq_create(ch, &r->io.seq), 0);
	}
	r->io.cb = mio_cb;
	r->io.cb_arg = r;
	if (type == FERRY_BDEV_IO_WRITE)
		ta_fill_rand(r->buf, (size_t)n * LB_BS, seed);
	r->busy = 1;
	memset(&W.busy[blk], 1, n);
	int rc = ferry_bdev_submit(b, &r->io);
	cr_assert_eq(rc, 0, "submit: %d (%s)", rc, ferry_last_error());
}

static int range_free(uint32_t blk, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (W.busy[blk + i])
			return 0;
	return 1;
}

Test(bdev_nvmf_loopback, split_16k_multi_block, .timeout = 120)
{
	lb_tgt_up("buffers=512,max_io_size=16384");
	struct ferry_accel_chan *ch = ta_chan(NULL, 0);
	struct ferry_crypto_key *key = ta_key(23, FERRY_CIPHER_AES_XTS_128, 512);
	struct ferry_bdev_nvmf_opts o = {.size = sizeof(o),
					 .name = "lbs_nvmf",
					 .addr = T.addr,
					 .subnqn = LB_NQN,
					 .num_io_queues = 2,
					 .queue_depth = 8,
					 .ddgst = 1};
	struct ferry_bdev *nv = NULL, *dif = NULL, *cry = NULL;
	int rc = ferry_bdev_nvmf_create(&o, &nv);
	cr_assert_eq(rc, 0, "nvmf: %d (%s)", rc, ferry_last_error());
	stack_up("lbs", nv, key, &dif, &cry);

	memset(&W, 0, sizeof(W));
	memset(&M, 0, sizeof(M));
	uint64_t seed = 777, issued = 0;
	const uint64_t n_ios = 3000, prefill_ios = (LB_BLOCKS + MB_MAX - 1) / MB_MAX;
	uint32_t prefill = 0;
	uint64_t end = tm_now_ns() + 60000000000ull;
	const uint32_t qd = sizeof(M.reqs) / sizeof(M.reqs[0]);
	for (;;) {
		uint32_t active = 0;
		for (uint32_t i = 0; i < qd; i++) {
			struct mreq *r = &M.reqs[i];
			if (!r->busy) {
				if (prefill < LB_BLOCKS) {
					uint32_t n = MB_MIN(MB_MAX, LB_BLOCKS - prefill);
					mstart(cry, ch, r, FERRY_BDEV_IO_WRITE, prefill, n, &seed);
					prefill += n;
				} else if (M.done >= prefill_ios && issued < n_ios) {
					uint32_t n = 1 + (uint32_t)(tm_rand(&seed) % MB_MAX);
					uint32_t blk = (uint32_t)(tm_rand(&seed) %
								  (LB_BLOCKS - n + 1));
					uint32_t k = (uint32_t)(tm_rand(&seed) % 16);
					enum ferry_bdev_io_type ty =
						k < 7    ? FERRY_BDEV_IO_READ
						: k < 15 ? FERRY_BDEV_IO_WRITE
							 : FERRY_BDEV_IO_WRITE_ZEROES;
					if (range_free(blk, n)) {
						mstart(cry, ch, r, ty, blk, n, &seed);
						issued++;
					}
				}
			}
			active += r->busy;
		}
		if (!active && issued >= n_ios)
			break;
		cr_assert(tm_now_ns() < end, "workload did not finish in 60 s (%llu done)",
			  (unsigned long long)M.done);
		ferry_accel_chan_poll(ch, 64);
		ferry_bdev_poll(cry, 64);
	}
	struct ferry_bdev_nvmf_stats s = {.size = sizeof(s)};
	cr_assert_eq(ferry_bdev_nvmf_get_stats(nv, &s), 0);
	fprintf(stderr, "split loopback: %llu I/Os, %llu split, %llu commands\n",
		(unsigned long long)M.done, (unsigned long long)s.split_ios,
		(unsigned long long)s.commands);
	cr_assert_eq(M.errors, 0);
	cr_assert_eq(M.mismatches, 0);
	cr_assert_gt(s.split_ios, n_ios / 2, "most I/Os went out in parts");
	cr_assert_eq(s.io_errors, 0);
	/* a final full read-back of every block */
	for (uint32_t blk = 0; blk < LB_BLOCKS; blk += MB_MAX) {
		struct mreq *r = &M.reqs[0];
		uint32_t n = MB_MIN(MB_MAX, LB_BLOCKS - blk);
		mstart(cry, ch, r, FERRY_BDEV_IO_READ, blk, n, &seed);
		uint64_t until = tm_now_ns() + 5000000000ull;
		while (r->busy && tm_now_ns() < until)
			ferry_bdev_io_poll(&r->io);
		cr_assert_eq(r->busy, 0);
	}
	cr_assert_eq(M.errors, 0);
	cr_assert_eq(M.mismatches, 0);
	cr_assert_eq(ferry_bdev_destroy(cry), 0);
	cr_assert_eq(ferry_bdev_destroy(dif), 0);
	cr_assert_eq(ferry_bdev_destroy(nv), 0);
	ferry_crypto_key_destroy(key);
	ferry_accel_chan_destroy(ch);
	tgt_down(&T);
}
