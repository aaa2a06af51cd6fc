/*
 * The backend SDK's shared helpers: the iovec cursor, validating length and overlap test
 * (ferry/hal/iov.h), the accel operand-use table (ferry_hal_accel_op_get_info()) and the transfer
 * status -> errno mapping (ferry_hal_xfer_status_errno()).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <ferry/hal/hal.h>

Test(hal_iov, cursor_walks_across_segments_and_skips_empty_ones)
{
	char a[3] = "abc", b[4] = "defg", c[2] = "hi";
	struct iovec v[] = {{NULL, 0}, {a, 3}, {b, 0}, {b, 4}, {NULL, 0}, {c, 2}, {NULL, 0}};
	struct ferry_hal_iov_cur cur;
	ferry_hal_iov_cur_init(&cur, v, 7);
	cr_assert_eq(ferry_hal_iov_cur_avail(&cur), 3, "leading empty segment skipped");
	cr_assert_eq(ferry_hal_iov_cur_ptr(&cur), a);
	ferry_hal_iov_cur_advance(&cur, 2);
	cr_assert_eq(ferry_hal_iov_cur_avail(&cur), 1);
	cr_assert_eq(ferry_hal_iov_cur_ptr(&cur), a + 2);
	ferry_hal_iov_cur_advance(&cur, 1);
	cr_assert_eq(ferry_hal_iov_cur_ptr(&cur), b, "an exact segment end moves to the next byte");
	cr_assert_eq(ferry_hal_iov_cur_avail(&cur), 4);

	struct ferry_hal_iov_cur saved = cur;
	char out[8] = {0};
	cr_assert_eq(ferry_hal_iov_cur_gather(&cur, out, 5), 5);
	cr_assert_str_eq(out, "defgh");
	cr_assert_eq(ferry_hal_iov_cur_ptr(&cur), c + 1);
	cr_assert_eq(ferry_hal_iov_cur_gather(&cur, out, 5), 1, "the array ended first");
	cr_assert_eq(ferry_hal_iov_cur_avail(&cur), 0);
	cr_assert_null(ferry_hal_iov_cur_ptr(&cur));
	ferry_hal_iov_cur_advance(&cur, 10); /* past the end: stays at the end */
	cr_assert_eq(ferry_hal_iov_cur_avail(&cur), 0);

	cr_assert_eq(ferry_hal_iov_cur_scatter(&saved, "DEFGH", 5), 5, "a copied cursor resumes");
	cr_assert_eq(memcmp(b, "DEFG", 4), 0);
	cr_assert_eq(c[0], 'H');
	cr_assert_eq(c[1], 'i');
	cr_assert_eq(memcmp(a, "abc", 3), 0);

	ferry_hal_iov_cur_init(&cur, NULL, 5);
	cr_assert_eq(ferry_hal_iov_cur_avail(&cur), 0, "a NULL array is empty whatever the count");
	cr_assert_eq(ferry_hal_iov_cur_scatter(&cur, "x", 1), 0);
}

Test(hal_iov, total_validates)
{
	char x[4];
	size_t t = 99;
	const char *why = NULL;
	struct iovec ok[] = {{x, 4}, {NULL, 0}, {x, 2}};
	cr_assert_eq(ferry_hal_iov_total(ok, 3, &t, &why), 0);
	cr_assert_eq(t, 6);
	cr_assert_eq(ferry_hal_iov_total(NULL, 0, &t, &why), 0);
	cr_assert_eq(t, 0);

	t = 99;
	cr_assert_eq(ferry_hal_iov_total(NULL, 1, &t, &why), -EINVAL);
	cr_assert_not_null(strstr(why, "NULL iovec array"), "%s", why);
	cr_assert_eq(t, 99, "total untouched on failure");
	struct iovec nullbase[] = {{x, 1}, {NULL, 3}};
	cr_assert_eq(ferry_hal_iov_total(nullbase, 2, &t, &why), -EINVAL);
	cr_assert_not_null(strstr(why, "NULL base"), "%s", why);
	struct iovec huge[] = {{x, SIZE_MAX}, {x, 2}};
	cr_assert_eq(ferry_hal_iov_total(huge, 2, &t, NULL), -EINVAL, "overflow, why optional");
	cr_assert_eq(ferry_hal_iov_total(ok, 3, NULL, &why), -EINVAL);
}

Test(hal_iov, overlap)
{
	char m[64];
	struct iovec a[] = {{m, 8}, {m + 32, 8}};
	struct iovec touch[] = {{m + 8, 24}}; /* ends exactly where a[1] starts */
	struct iovec in[] = {{m + 20, 0}, {m + 39, 4}};
	struct iovec empty_inside[] = {{m + 2, 0}};
	cr_assert_eq(ferry_hal_iov_overlap(a, 2, touch, 1), 0, "adjacent ranges do not overlap");
	cr_assert_eq(ferry_hal_iov_overlap(a, 2, in, 2), 1);
	cr_assert_eq(ferry_hal_iov_overlap(in, 2, a, 2), 1, "symmetric");
	cr_assert_eq(ferry_hal_iov_overlap(a, 2, empty_inside, 1), 0, "an empty segment shares nothing");
	cr_assert_eq(ferry_hal_iov_overlap(a, 2, NULL, 0), 0);
}

Test(hal_accel, op_info_table)
{
	const uint8_t S = FERRY_HAL_ACCEL_OPND_SRC, D = FERRY_HAL_ACCEL_OPND_DST,
		      A = FERRY_HAL_ACCEL_OPND_AUX;
	static const struct {
		enum ferry_accel_opcode op;
		uint8_t reads, writes;
	} want[] = {
		{FERRY_ACCEL_OP_COPY, S, D},          {FERRY_ACCEL_OP_FILL, 0, D},
		{FERRY_ACCEL_OP_COMPARE, S | A, 0},   {FERRY_ACCEL_OP_CRC32C, S, 0},
		{FERRY_ACCEL_OP_COPY_CRC32C, S, D},   {FERRY_ACCEL_OP_ENCRYPT, S, D},
		{FERRY_ACCEL_OP_DECRYPT, S, D},       {FERRY_ACCEL_OP_DIF_GENERATE, D, D},
		{FERRY_ACCEL_OP_DIF_VERIFY, S, 0},    {FERRY_ACCEL_OP_DIF_STRIP, S, D},
		{FERRY_ACCEL_OP_DIF_INSERT, S, D},    {FERRY_ACCEL_OP_DIX_GENERATE, S, A},
		{FERRY_ACCEL_OP_DIX_VERIFY, S | A, 0},
	};
	cr_assert_eq(sizeof(want) / sizeof(want[0]), FERRY_ACCEL_OP_COUNT, "every opcode listed");
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct ferry_hal_accel_op_info *inf = ferry_hal_accel_op_get_info(want[i].op);
		cr_assert_not_null(inf, "opcode %d", want[i].op);
		cr_assert_eq(inf->reads, want[i].reads, "%s reads", inf->name);
		cr_assert_eq(inf->writes, want[i].writes, "%s writes", inf->name);
		cr_assert_str_eq(inf->name, ferry_accel_opcode_name(want[i].op),
				 "the SDK names ops from the same table");
	}
	cr_assert_null(ferry_hal_accel_op_get_info(FERRY_ACCEL_OP_COUNT));
	cr_assert_null(ferry_hal_accel_op_get_info((enum ferry_accel_opcode)-1));
}

Test(hal_dma, xfer_status_errno)
{
	cr_assert_eq(ferry_hal_xfer_status_errno(FERRY_XFER_SUCCESS), 0);
	cr_assert_eq(ferry_hal_xfer_status_errno(FERRY_XFER_INVALID_SRC_ADDR), -EFAULT);
	cr_assert_eq(ferry_hal_xfer_status_errno(FERRY_XFER_INVALID_DST_ADDR), -EFAULT);
	cr_assert_eq(ferry_hal_xfer_status_errno(FERRY_XFER_PAGE_FAULT), -EFAULT);
	cr_assert_eq(ferry_hal_xfer_status_errno(FERRY_XFER_BUS_READ_ERROR), -EIO);
	cr_assert_eq(ferry_hal_xfer_status_errno(FERRY_XFER_BUS_WRITE_ERROR), -EIO);
	cr_assert_eq(ferry_hal_xfer_status_errno(FERRY_XFER_DATA_POISONED), -EIO);
	cr_assert_eq(ferry_hal_xfer_status_errno(FERRY_XFER_NOT_ATTEMPTED), -ECANCELED);
	cr_assert_eq(ferry_hal_xfer_status_errno(FERRY_XFER_STATUS_COUNT), -EIO, "undefined: -EIO");
}
