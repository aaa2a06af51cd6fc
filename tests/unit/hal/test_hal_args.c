/* Backend argument strings: ferry_hal_arg_get() and ferry_hal_args_check(). */
#include <criterion/criterion.h>
#include <errno.h>
#include <ferry/hal/hal.h>

Test(hal_args, get)
{
	char v[16];
	cr_assert_eq(ferry_hal_arg_get("a=1,bb=two,c=", "bb", v, sizeof(v)), 0);
	cr_assert_str_eq(v, "two");
	cr_assert_eq(ferry_hal_arg_get("a=1,bb=two,c=", "c", v, sizeof(v)), 0);
	cr_assert_str_eq(v, "");
	cr_assert_eq(ferry_hal_arg_get("a=1,a=2", "a", v, sizeof(v)), 0);
	cr_assert_str_eq(v, "2", "the last occurrence wins");
	cr_assert_eq(ferry_hal_arg_get("ab=1", "a", v, sizeof(v)), -ENOENT, "no prefix match");
	cr_assert_eq(ferry_hal_arg_get("", "a", v, sizeof(v)), -ENOENT);
	cr_assert_eq(ferry_hal_arg_get(NULL, "a", v, sizeof(v)), -ENOENT);
	cr_assert_eq(ferry_hal_arg_get(",,a=x,,", "a", v, sizeof(v)), 0);
	cr_assert_str_eq(v, "x");
	cr_assert_eq(ferry_hal_arg_get("a=0123456789abcdef", "a", v, sizeof(v)), -ENAMETOOLONG);
	cr_assert_eq(ferry_hal_arg_get("k=v=w", "k", v, sizeof(v)), 0);
	cr_assert_str_eq(v, "v=w");
}

Test(hal_args, check)
{
	static const char *const known[] = {"host_mem", "ring", NULL};
	cr_assert_eq(ferry_hal_args_check("", known), 0);
	cr_assert_eq(ferry_hal_args_check(NULL, known), 0);
	cr_assert_eq(ferry_hal_args_check("ring=4,host_mem=1M", known), 0);
	cr_assert_eq(ferry_hal_args_check("ring=4,rings=5", known), -EINVAL);
	cr_assert_eq(ferry_hal_args_check("rin=4", known), -EINVAL);
	cr_assert_eq(ferry_hal_args_check("=4", known), -EINVAL);
	cr_assert_eq(ferry_hal_args_check("x", known), -EINVAL);
	cr_assert_eq(ferry_hal_args_check("ring=1", NULL), -EINVAL);
}

/* Found by clang-tidy: a NULL key reached strncmp() (nonnull) and matched an item "=v". */
Test(hal_args, null_or_empty_key)
{
	char v[16] = "untouched";
	cr_assert_eq(ferry_hal_arg_get("=v", NULL, v, sizeof(v)), -EINVAL);
	cr_assert_eq(ferry_hal_arg_get("a=1", NULL, v, sizeof(v)), -EINVAL);
	cr_assert_eq(ferry_hal_arg_get("=v,a=1", "", v, sizeof(v)), -EINVAL);
	cr_assert_str_eq(v, "untouched", "no value is written for a bad key");
}
