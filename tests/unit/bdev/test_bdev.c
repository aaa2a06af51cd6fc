/*
 * Block devices: registry and claims, submit validation, the malloc bdev (system and remote
 * domains, interleaved metadata, compare, write zeroes, unmap), the null bdev, the
 * passthrough bdev, counters, and the sequence path (a terminal bdev running the sequence an
 * upper layer built with accel virtual buffers).
 */
#include "test_nvme_host.h"
#include <ferry/accel.h>
#include <ferry/bdev_malloc.h>
#include <ferry/bdev_null.h>
#include <ferry/bdev_passthru.h>
#include <ferry/module/bdev.h>

struct done {
	int calls;
	int status;
	enum ferry_bdev_io_error error;
	uint64_t error_block;
};

static void io_cb(struct ferry_bdev_io *io, void *arg)
{
	struct done *d = arg;
	d->calls++;
	d->status = io->status;
	d->error = io->error;
	d->error_block = io->error_block;
}

static struct ferry_bdev *mk_malloc(const char *name, uint32_t bs, uint32_t md, uint64_t n)
{
	struct ferry_bdev *b = NULL;
	struct ferry_bdev_malloc_opts o = {.size = sizeof(o), .name = name, .block_size = bs,
					   .md_size = md, .num_blocks = n};
	cr_assert_eq(ferry_bdev_malloc_create(&o, &b), 0);
	return b;
}

/* Synchronous I/O helper on local memory. */
static int do_io(struct ferry_bdev *b, enum ferry_bdev_io_type t, uint64_t off, uint64_t n,
		 void *buf, size_t len, struct done *d)
{
	struct iovec iov = {buf, len};
	struct ferry_bdev_io io;
	memset(&io, 0, sizeof(io));
	io.type = t;
	io.offset_blocks = off;
	io.num_blocks = n;
	if (buf) {
		io.mem.iov = &iov;
		io.mem.iovcnt = 1;
	}
	io.cb = io_cb;
	io.cb_arg = d;
	memset(d, 0, sizeof(*d));
	int rc = ferry_bdev_submit(b, &io);
	if (rc == 0)
		cr_assert_eq(d->calls, 1, "system-domain I/O completes before submit returns");
	else
		cr_assert_eq(d->calls, 0, "callback after a failed submit");
	return rc ? rc : d->status;
}

Test(bdev, registry_and_claims)
{
	struct ferry_bdev *b = mk_malloc("bd.reg", 512, 0, 16);
	cr_assert_eq(ferry_bdev_lookup("bd.reg"), b);
	cr_assert_str_eq(ferry_bdev_get_module(b), "bdev_malloc");
	cr_assert_eq(ferry_bdev_get_block_size(b), 512);
	cr_assert_eq(ferry_bdev_get_num_blocks(b), 16);
	int found = 0;
	for (struct ferry_bdev *x = ferry_bdev_first(); x; x = ferry_bdev_next(x))
		found += x == b;
	cr_assert_eq(found, 1);
	struct ferry_bdev *dup;
	struct ferry_bdev_malloc_opts o = {.size = sizeof(o), .name = "bd.reg", .block_size = 512,
					   .num_blocks = 1};
	cr_assert_eq(ferry_bdev_malloc_create(&o, &dup), -EEXIST);
	cr_assert_eq(ferry_bdev_claim(b, "me"), 0);
	cr_assert_str_eq(ferry_bdev_get_claim(b), "me");
	cr_assert_eq(ferry_bdev_claim(b, "other"), -EBUSY);
	cr_assert_eq(ferry_bdev_destroy(b), -EBUSY);
	ferry_bdev_release(b);
	cr_assert_null(ferry_bdev_get_claim(b));
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	cr_assert_null(ferry_bdev_lookup("bd.reg"));
}

Test(bdev, create_validation)
{
	struct ferry_bdev *b;
	struct ferry_bdev_malloc_opts o = {.size = sizeof(o), .name = "bd.bad", .block_size = 500,
					   .num_blocks = 4};
	cr_assert_eq(ferry_bdev_malloc_create(&o, &b), -EINVAL, "data part not a multiple of 512");
	o.block_size = 520;
	cr_assert_eq(ferry_bdev_malloc_create(&o, &b), -EINVAL, "520 without metadata");
	o.md_size = 8;
	o.dif_type = 4;
	cr_assert_eq(ferry_bdev_malloc_create(&o, &b), -EINVAL, "PI type 4");
	o.dif_type = 1;
	o.num_blocks = 0;
	cr_assert_eq(ferry_bdev_malloc_create(&o, &b), -EINVAL);
	o.num_blocks = 4;
	o.size = 8;
	cr_assert_eq(ferry_bdev_malloc_create(&o, &b), -EINVAL, "opts->size");
	o.size = sizeof(o);
	o.name = "";
	cr_assert_eq(ferry_bdev_malloc_create(&o, &b), -EINVAL);
	o.name = "bd.4104";
	o.block_size = 4104;
	cr_assert_eq(ferry_bdev_malloc_create(&o, &b), 0);
	cr_assert_eq(ferry_bdev_get_data_block_size(b), 4096);
	cr_assert_eq(ferry_bdev_get_md_size(b), 8);
	cr_assert_eq(ferry_bdev_get_md_flags(b), FERRY_BDEV_MD_INTERLEAVE);
	cr_assert_eq(ferry_bdev_get_dif_type(b), 1);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	static const struct ferry_bdev_ops bad_abi = {.abi_version = 99};
	struct ferry_bdev_opts bo = {.size = sizeof(bo), .name = "bd.abi", .block_size = 512,
				     .num_blocks = 1, .ops = &bad_abi};
	cr_assert_eq(ferry_bdev_create(&bo, &b), -EPROTO);
}

Test(bdev, malloc_io_and_submit_checks)
{
	struct ferry_bdev *b = mk_malloc("bd.m", 520, 8, 64);
	struct done d;
	uint8_t w[4 * 520], r[4 * 520];
	h_fill(w, sizeof(w), 1);
	cr_assert_eq(do_io(b, FERRY_BDEV_IO_WRITE, 10, 4, w, sizeof(w), &d), 0);
	cr_assert_eq(do_io(b, FERRY_BDEV_IO_READ, 10, 4, r, sizeof(r), &d), 0);
	cr_assert_eq(memcmp(w, r, sizeof(w)), 0, "metadata bytes kept too");
	cr_assert_eq(do_io(b, FERRY_BDEV_IO_COMPARE, 10, 4, w, sizeof(w), &d), 0);
	w[3 * 520 + 7] ^= 1;
	cr_assert_eq(do_io(b, FERRY_BDEV_IO_COMPARE, 10, 4, w, sizeof(w), &d), -EILSEQ);
	cr_assert_eq(d.error, FERRY_BDEV_ERR_MISCOMPARE);
	cr_assert_eq(d.error_block, 13);
	cr_assert_eq(do_io(b, FERRY_BDEV_IO_WRITE_ZEROES, 11, 1, NULL, 0, &d), 0);
	cr_assert_eq(do_io(b, FERRY_BDEV_IO_UNMAP, 13, 1, NULL, 0, &d), 0);
	cr_assert_eq(do_io(b, FERRY_BDEV_IO_READ, 10, 4, r, sizeof(r), &d), 0);
	uint8_t z[520] = {0};
	cr_assert_eq(memcmp(r, w, 520), 0);
	cr_assert_eq(memcmp(r + 520, z, 520), 0);
	cr_assert_eq(memcmp(r + 1040, w + 1040, 520), 0);
	cr_assert_eq(memcmp(r + 1560, z, 520), 0);
	cr_assert_eq(do_io(b, FERRY_BDEV_IO_FLUSH, 0, 0, NULL, 0, &d), 0);
	/* Validation before the module sees anything. */
	cr_assert_eq(do_io(b, FERRY_BDEV_IO_READ, 62, 4, r, sizeof(r), &d), -ERANGE);
	cr_assert_eq(do_io(b, FERRY_BDEV_IO_READ, UINT64_MAX, 1, r, 520, &d), -ERANGE);
	cr_assert_eq(do_io(b, FERRY_BDEV_IO_READ, 0, 4, r, sizeof(r) - 1, &d), -EINVAL, "length");
	cr_assert_eq(do_io(b, FERRY_BDEV_IO_READ, 0, 0, r, 0, &d), -EINVAL, "zero blocks");
	cr_assert_eq(do_io(b, (enum ferry_bdev_io_type)42, 0, 1, r, 520, &d), -EINVAL);
	struct ferry_bdev_stats st = {.size = sizeof(st)};
	cr_assert_eq(ferry_bdev_get_stats(b, &st), 0);
	cr_assert_eq(st.ios[FERRY_BDEV_IO_WRITE], 1);
	cr_assert_eq(st.ios[FERRY_BDEV_IO_READ], 2);
	cr_assert_eq(st.bytes_read, 2 * sizeof(r));
	cr_assert_eq(st.errors, 1, "the miscompare");
	cr_assert_eq(ferry_bdev_destroy(b), 0);
}

Test(bdev, malloc_remote_domain)
{
	/* Data in a simulated host memory domain: pulled/pushed, never dereferenced. */
	struct host_mem *hm = hm_create(1 << 20, 1);
	struct ferry_bdev *b = mk_malloc("bd.remote", 512, 0, 64);
	uint64_t a1 = hm_alloc(hm, 4096, 4096), a2 = hm_alloc(hm, 4096, 4096);
	h_fill(hm_ptr(hm, a1), 4096, 5);
	struct iovec iov[2] = {{(void *)(uintptr_t)(a1 + 100), 1000}, {(void *)(uintptr_t)a2, 24}};
	struct ferry_bdev_io io;
	struct done d = {0};
	memset(&io, 0, sizeof(io));
	io.type = FERRY_BDEV_IO_WRITE;
	io.offset_blocks = 3;
	io.num_blocks = 2;
	io.mem = (struct ferry_mem){.domain = hm->dom, .iov = iov, .iovcnt = 2};
	io.cb = io_cb;
	io.cb_arg = &d;
	cr_assert_eq(ferry_bdev_submit(b, &io), 0);
	cr_assert_eq(d.calls, 0, "asynchronous domain");
	hm_poll_ops(hm, 16);
	cr_assert_eq(d.calls, 1);
	cr_assert_eq(d.status, 0);
	uint8_t r[1024];
	struct done d2;
	cr_assert_eq(do_io(b, FERRY_BDEV_IO_READ, 3, 2, r, sizeof(r), &d2), 0);
	cr_assert_eq(memcmp(r, (uint8_t *)hm_ptr(hm, a1) + 100, 1000), 0);
	cr_assert_eq(memcmp(r + 1000, hm_ptr(hm, a2), 24), 0);
	/* A fault in the remote domain is reported as a transfer error. */
	iov[1].iov_base = (void *)(uintptr_t)0x10;
	io.type = FERRY_BDEV_IO_READ;
	d.calls = 0;
	cr_assert_eq(ferry_bdev_submit(b, &io), 0);
	hm_poll_ops(hm, 16);
	cr_assert_eq(d.calls, 1);
	cr_assert_eq(d.status, -EFAULT);
	cr_assert_eq(d.error, FERRY_BDEV_ERR_TRANSFER);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	hm_destroy(hm);
}

Test(bdev, null_bdev)
{
	struct ferry_bdev *b;
	struct ferry_bdev_null_opts o = {.size = sizeof(o), .name = "bd.null", .block_size = 4096,
					   .num_blocks = 1ull << 40};
	cr_assert_eq(ferry_bdev_null_create(&o, &b), 0, "null: no memory behind any size");
	uint8_t buf[4096];
	memset(buf, 0x77, sizeof(buf));
	struct done d;
	cr_assert_eq(do_io(b, FERRY_BDEV_IO_WRITE, 5, 1, buf, sizeof(buf), &d), 0);
	cr_assert_eq(do_io(b, FERRY_BDEV_IO_READ, (1ull << 40) - 1, 1, buf, sizeof(buf), &d), 0);
	cr_assert_eq(buf[0], 0x77, "reads do not touch the buffer");
	cr_assert_eq(do_io(b, FERRY_BDEV_IO_READ, 1ull << 40, 1, buf, sizeof(buf), &d), -ERANGE);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
}

Test(bdev, passthru)
{
	struct ferry_bdev *base = mk_malloc("bd.base", 512, 0, 32);
	struct ferry_bdev *pt;
	struct ferry_bdev_passthru_opts po = {.size = sizeof(po), .name = "bd.pt", .base_name = "bd.base"};
	cr_assert_eq(ferry_bdev_passthru_create(&po, &pt), 0);
	cr_assert_eq(ferry_bdev_get_num_blocks(pt), 32);
	cr_assert_eq(ferry_bdev_destroy(base), -EBUSY, "claimed by the passthru");
	struct ferry_bdev *pt2;
	po.name = "bd.pt2";
	cr_assert_eq(ferry_bdev_passthru_create(&po, &pt2), -EBUSY, "base already claimed");
	po.base_name = "bd.none";
	cr_assert_eq(ferry_bdev_passthru_create(&po, &pt2), -ENOENT);
	uint8_t w[1024], r[1024];
	h_fill(w, sizeof(w), 8);
	struct done d;
	cr_assert_eq(do_io(pt, FERRY_BDEV_IO_WRITE, 30, 2, w, sizeof(w), &d), 0);
	cr_assert_eq(do_io(base, FERRY_BDEV_IO_READ, 30, 2, r, sizeof(r), &d), 0);
	cr_assert_eq(memcmp(w, r, sizeof(w)), 0, "the write reached the base");
	w[600] ^= 1;
	cr_assert_eq(do_io(pt, FERRY_BDEV_IO_COMPARE, 30, 2, w, sizeof(w), &d), -EILSEQ);
	cr_assert_eq(d.error, FERRY_BDEV_ERR_MISCOMPARE, "the base's detail is passed up");
	cr_assert_eq(d.error_block, 31);
	cr_assert_eq(do_io(pt, FERRY_BDEV_IO_READ, 31, 2, r, sizeof(r), &d), -ERANGE);
	struct ferry_bdev_stats st = {.size = sizeof(st)};
	cr_assert_eq(ferry_bdev_get_stats(base, &st), 0);
	cr_assert_eq(st.ios[FERRY_BDEV_IO_WRITE], 1);
	cr_assert_eq(ferry_bdev_destroy(pt), 0);
	cr_assert_eq(ferry_bdev_destroy(base), 0, "released by the passthru");
}

/* ---- the sequence path ------------------------------------------------------------------ */

static void poll_until(struct ferry_accel_chan *ch, struct done *d)
{
	for (int i = 0; i < 100000 && d->calls == 0; i++)
		ferry_accel_chan_poll(ch, 16);
	cr_assert_eq(d->calls, 1, "the sequence never completed");
}

Test(bdev, malloc_runs_the_sequence_of_an_upper_layer)
{
	struct ferry_accel_chan *ch;
	cr_assert_eq(ferry_accel_chan_create(NULL, NULL, &ch), 0);
	struct ferry_bdev *b = mk_malloc("bd.seq", 512, 0, 64);
	uint8_t user[2048], out[2048];
	h_fill(user, sizeof(user), 77);

	/* Write: the upper layer appends copy(user → virtual X) and passes X down. */
	void *x;
	struct ferry_memdomain *xd;
	void *xctx;
	cr_assert_eq(ferry_accel_get_buf(ch, sizeof(user), &x, &xd, &xctx), 0);
	struct iovec uiov = {user, sizeof(user)}, xiov = {x, sizeof(user)};
	struct ferry_mem umem = {.iov = &uiov, .iovcnt = 1};
	struct ferry_mem xmem = {.domain = xd, .domain_ctx = xctx, .iov = &xiov, .iovcnt = 1};
	struct ferry_seq *seq;
	cr_assert_eq(ferry_seq_create(ch, &seq), 0);
	cr_assert_eq(ferry_seq_append_copy(seq, &xmem, &umem, NULL, NULL), 0);
	struct ferry_bdev_io io;
	struct done d = {0};
	memset(&io, 0, sizeof(io));
	io.type = FERRY_BDEV_IO_WRITE;
	io.offset_blocks = 8;
	io.num_blocks = 4;
	io.mem = xmem;
	io.seq = seq;
	io.cb = io_cb;
	io.cb_arg = &d;
	cr_assert_eq(ferry_bdev_submit(b, &io), 0);
	poll_until(ch, &d);
	cr_assert_eq(d.status, 0);
	cr_assert_null(io.seq, "the sequence was consumed");
	struct done d2;
	cr_assert_eq(do_io(b, FERRY_BDEV_IO_READ, 8, 4, out, sizeof(out), &d2), 0);
	cr_assert_eq(memcmp(out, user, sizeof(user)), 0, "the sequence wrote the storage");

	/* Read: the upper layer appends copy(X → user); the terminal's copy runs first. */
	memset(out, 0, sizeof(out));
	struct iovec oiov = {out, sizeof(out)};
	struct ferry_mem omem = {.iov = &oiov, .iovcnt = 1};
	cr_assert_eq(ferry_seq_create(ch, &seq), 0);
	cr_assert_eq(ferry_seq_append_copy(seq, &omem, &xmem, NULL, NULL), 0);
	memset(&d, 0, sizeof(d));
	io.type = FERRY_BDEV_IO_READ;
	io.seq = seq;
	cr_assert_eq(ferry_bdev_submit(b, &io), 0);
	poll_until(ch, &d);
	cr_assert_eq(d.status, 0);
	cr_assert_eq(memcmp(out, user, sizeof(user)), 0, "reversed: storage → X → user");

	/* Through a passthru: the sequence goes down unchanged. */
	struct ferry_bdev *pt;
	struct ferry_bdev_passthru_opts po = {.size = sizeof(po), .name = "bd.seqpt", .base_name = "bd.seq"};
	cr_assert_eq(ferry_bdev_passthru_create(&po, &pt), 0);
	memset(out, 0, sizeof(out));
	cr_assert_eq(ferry_seq_create(ch, &seq), 0);
	cr_assert_eq(ferry_seq_append_copy(seq, &omem, &xmem, NULL, NULL), 0);
	memset(&d, 0, sizeof(d));
	io.seq = seq;
	cr_assert_eq(ferry_bdev_submit(pt, &io), 0);
	poll_until(ch, &d);
	cr_assert_eq(d.status, 0);
	cr_assert_eq(memcmp(out, user, sizeof(user)), 0);

	/* The null bdev aborts a sequence instead of running it. */
	struct ferry_bdev *nb;
	struct ferry_bdev_null_opts no = {.size = sizeof(no), .name = "bd.seqnull",
					    .block_size = 512, .num_blocks = 64};
	cr_assert_eq(ferry_bdev_null_create(&no, &nb), 0);
	cr_assert_eq(ferry_seq_create(ch, &seq), 0);
	cr_assert_eq(ferry_seq_append_copy(seq, &omem, &xmem, NULL, NULL), 0);
	memset(&d, 0, sizeof(d));
	io.seq = seq;
	cr_assert_eq(ferry_bdev_submit(nb, &io), 0);
	cr_assert_eq(d.calls, 1);
	cr_assert_eq(d.status, 0);
	cr_assert_null(io.seq);

	/* Compare with a sequence is not supported: the sequence stays the caller's. */
	cr_assert_eq(ferry_seq_create(ch, &seq), 0);
	io.type = FERRY_BDEV_IO_COMPARE;
	io.mem = omem;
	io.seq = seq;
	memset(&d, 0, sizeof(d));
	cr_assert_eq(ferry_bdev_submit(b, &io), -ENOTSUP);
	cr_assert_eq(d.calls, 0);
	ferry_seq_abort(seq);

	ferry_accel_put_buf(ch, x, xd, xctx);
	cr_assert_eq(ferry_bdev_destroy(nb), 0);
	cr_assert_eq(ferry_bdev_destroy(pt), 0);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	ferry_accel_chan_destroy(ch);
}
