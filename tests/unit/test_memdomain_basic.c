/* Memory domain registry: lifecycle, enumeration, lookup, -ENOTSUP dispatch. */
#include <criterion/criterion.h>
#include <errno.h>
#include <ferry/memdomain.h>

static const struct ferry_memdomain_ops empty_ops = {.abi_version = FERRY_MEMDOMAIN_OPS_ABI};

Test(memdomain, system_always_exists)
{
	struct ferry_memdomain *s = ferry_memdomain_system();
	cr_assert_not_null(s);
	cr_assert_eq(ferry_memdomain_get_type(s), FERRY_MEMDOMAIN_SYSTEM);
	cr_assert_str_eq(ferry_memdomain_get_name(s), "system");
	cr_assert_eq(ferry_memdomain_first(FERRY_MEMDOMAIN_ANY), s);
	cr_assert_eq(ferry_memdomain_lookup("system"), s);
}

Test(memdomain, create_lookup_destroy)
{
	struct ferry_memdomain *d = NULL;
	int ctx;
	struct ferry_memdomain_opts o = {.size = sizeof(o), .type = FERRY_MEMDOMAIN_PCIE,
					 .name = "t.fn0", .ops = &empty_ops, .user_ctx = &ctx};
	cr_assert_eq(ferry_memdomain_create(&o, &d), 0);
	cr_assert_eq(ferry_memdomain_lookup("t.fn0"), d);
	cr_assert_eq(ferry_memdomain_get_ctx(d), &ctx);
	cr_assert_eq(ferry_memdomain_first(FERRY_MEMDOMAIN_PCIE), d);
	struct ferry_memdomain *dup;
	cr_assert_eq(ferry_memdomain_create(&o, &dup), -EEXIST);
	char buf[8];
	struct iovec iov = {buf, sizeof(buf)};
	struct ferry_mem m = {.domain = d, .iov = &iov, .iovcnt = 1};
	struct ferry_mem l = {.domain = NULL, .iov = &iov, .iovcnt = 1};
	cr_assert_eq(ferry_memdomain_pull(&m, &l, (ferry_memdomain_cb)1, NULL), -ENOTSUP);
	ferry_memdomain_destroy(d);
	cr_assert_null(ferry_memdomain_lookup("t.fn0"));
}
