/*
 * Adversarial-review regressions for bdev I/O validation: a data descriptor whose segment
 * lengths add up to the right byte count only after wrapping around SIZE_MAX is refused
 * before any module sees it; offset + count overflow stays refused.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>
#include <ferry/bdev.h>
#include <ferry/log.h>
#include <ferry/bdev_malloc.h>

static void quiet(enum ferry_log_level l, const char *c, const char *f, va_list ap)
{
	(void)l;
	(void)c;
	(void)f;
	(void)ap;
}

static int calls;

static void cb(struct ferry_bdev_io *io, void *arg)
{
	(void)io;
	(void)arg;
	calls++;
}

static int submit(struct ferry_bdev *b, enum ferry_bdev_io_type t, uint64_t off, uint64_t n,
		  struct iovec *iov, uint32_t cnt)
{
	struct ferry_bdev_io io;
	memset(&io, 0, sizeof(io));
	io.type = t;
	io.offset_blocks = off;
	io.num_blocks = n;
	io.mem.iov = iov;
	io.mem.iovcnt = cnt;
	io.cb = cb;
	return ferry_bdev_submit(b, &io);
}

Test(bdev_iov_bounds, segment_lengths_wrapping_around_size_max_are_refused)
{
	struct ferry_bdev *b = NULL;
	struct ferry_bdev_malloc_opts o = {.size = sizeof(o),
					   .name = "review.m",
					   .block_size = 512,
					   .num_blocks = 16};
	cr_assert_eq(ferry_bdev_malloc_create(&o, &b), 0);
	static uint8_t buf[1024];
	calls = 0;
	/* SIZE_MAX + 513 == 512 (mod 2^64): one block's worth, in appearance only. */
	struct iovec iov[2] = {{buf, SIZE_MAX}, {buf, 513}};
	ferry_log_set_handler(quiet);
	for (int t = FERRY_BDEV_IO_READ; t <= FERRY_BDEV_IO_WRITE; t++)
		cr_assert_eq(submit(b, (enum ferry_bdev_io_type)t, 0, 1, iov, 2), -EINVAL,
			     "%s accepted a descriptor of 2^64 + 512 bytes",
			     t == FERRY_BDEV_IO_READ ? "read" : "write");
	cr_assert_eq(submit(b, FERRY_BDEV_IO_COMPARE, 0, 1, iov, 2), -EINVAL);
	/* offset + count beyond the end, with the sum wrapping. */
	struct iovec one = {buf, 512};
	cr_assert_eq(submit(b, FERRY_BDEV_IO_READ, UINT64_MAX, 1, &one, 1), -ERANGE);
	cr_assert_eq(submit(b, FERRY_BDEV_IO_WRITE_ZEROES, 2, UINT64_MAX - 1, NULL, 0), -ERANGE);
	ferry_log_set_handler(NULL);
	cr_assert_eq(calls, 0, "no refused I/O completes");
	/* The well-formed I/O still works. */
	cr_assert_eq(submit(b, FERRY_BDEV_IO_WRITE, 15, 1, &one, 1), 0);
	cr_assert_eq(calls, 1);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
}
