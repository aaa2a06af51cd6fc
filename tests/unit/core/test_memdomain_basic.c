/*
 * Memory domain registry and wrappers: lifecycle, option checks, enumeration (creation order,
 * type filter), lookup, accessors, -ENOTSUP dispatch for every NULL op, -EPROTO for a wrong
 * ops ABI, argument checks of the wrappers, the system domain, and the callback contract with
 * a test domain that completes synchronously, asynchronously, or fails.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <ferry/memdomain.h>
#include <ferry/log.h>
#include <ferry/module/memdomain.h>

static const struct ferry_memdomain_ops empty_ops = {.abi_version = FERRY_MEMDOMAIN_OPS_ABI};

static struct ferry_memdomain *mk(const char *name, enum ferry_memdomain_type type,
				  const struct ferry_memdomain_ops *ops, void *ctx)
{
	struct ferry_memdomain *d = NULL;
	struct ferry_memdomain_opts o = {
		.size = sizeof(o), .type = type, .name = name, .ops = ops, .user_ctx = ctx};
	int rc = ferry_memdomain_create(&o, &d);
	cr_assert_eq(rc, 0, "create %s: %d", name, rc);
	return d;
}

static int cb_calls;
static int cb_status;
static void count_cb(void *arg, int status)
{
	(void)arg;
	cb_calls++;
	cb_status = status;
}

Test(memdomain, system_always_exists)
{
	struct ferry_memdomain *s = ferry_memdomain_system();
	cr_assert_not_null(s);
	cr_assert_eq(ferry_memdomain_get_type(s), FERRY_MEMDOMAIN_SYSTEM);
	cr_assert_str_eq(ferry_memdomain_get_name(s), "system");
	cr_assert_eq(ferry_memdomain_first(FERRY_MEMDOMAIN_ANY), s);
	cr_assert_eq(ferry_memdomain_first(FERRY_MEMDOMAIN_SYSTEM), s);
	cr_assert_eq(ferry_memdomain_lookup("system"), s);
	cr_assert_null(ferry_memdomain_get_ctx(s));
	/* NULL stands for the system domain in the accessors */
	cr_assert_eq(ferry_memdomain_get_type(NULL), FERRY_MEMDOMAIN_SYSTEM);
	cr_assert_str_eq(ferry_memdomain_get_name(NULL), "system");
	ferry_memdomain_destroy(s); /* ignored */
	cr_assert_eq(ferry_memdomain_lookup("system"), s);
}

Test(memdomain, create_lookup_destroy)
{
	int ctx;
	struct ferry_memdomain *d = mk("t.fn0", FERRY_MEMDOMAIN_PCIE, &empty_ops, &ctx);
	cr_assert_eq(ferry_memdomain_lookup("t.fn0"), d);
	cr_assert_eq(ferry_memdomain_get_ctx(d), &ctx);
	cr_assert_eq(ferry_memdomain_get_type(d), FERRY_MEMDOMAIN_PCIE);
	cr_assert_str_eq(ferry_memdomain_get_name(d), "t.fn0");
	cr_assert_eq(ferry_memdomain_first(FERRY_MEMDOMAIN_PCIE), d);
	struct ferry_memdomain *dup = NULL;
	struct ferry_memdomain_opts o = {.size = sizeof(o),
					 .type = FERRY_MEMDOMAIN_RDMA,
					 .name = "t.fn0",
					 .ops = &empty_ops};
	cr_assert_eq(ferry_memdomain_create(&o, &dup), -EEXIST);
	cr_assert_null(dup);
	ferry_memdomain_destroy(d);
	cr_assert_null(ferry_memdomain_lookup("t.fn0"));
	cr_assert_null(ferry_memdomain_first(FERRY_MEMDOMAIN_PCIE));
	/* the name is free again */
	d = mk("t.fn0", FERRY_MEMDOMAIN_PCIE, &empty_ops, NULL);
	ferry_memdomain_destroy(d);
	ferry_memdomain_destroy(NULL);
}

Test(memdomain, create_refuses_bad_options)
{
	struct ferry_memdomain *d = NULL;
	char longname[FERRY_MEMDOMAIN_NAME_MAX + 1];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	struct ferry_memdomain_opts good = {.size = sizeof(good),
					    .type = FERRY_MEMDOMAIN_PCIE,
					    .name = "ok",
					    .ops = &empty_ops};
	struct ferry_memdomain_opts o;

	cr_assert_eq(ferry_memdomain_create(NULL, &d), -EINVAL);
	cr_assert_eq(ferry_memdomain_create(&good, NULL), -EINVAL);
	o = good;
	o.size = sizeof(size_t);
	cr_assert_eq(ferry_memdomain_create(&o, &d), -EINVAL);
	const int bad_types[] = {FERRY_MEMDOMAIN_SYSTEM, FERRY_MEMDOMAIN_ANY, 4, 0xff,
				 FERRY_MEMDOMAIN_VENDOR_LAST + 1};
	for (size_t i = 0; i < sizeof(bad_types) / sizeof(bad_types[0]); i++) {
		o = good;
		o.type = (enum ferry_memdomain_type)bad_types[i];
		cr_assert_eq(ferry_memdomain_create(&o, &d), -EINVAL, "type %d", bad_types[i]);
	}
	o = good;
	o.name = NULL;
	cr_assert_eq(ferry_memdomain_create(&o, &d), -EINVAL);
	o.name = "";
	cr_assert_eq(ferry_memdomain_create(&o, &d), -EINVAL);
	o.name = longname;
	cr_assert_eq(ferry_memdomain_create(&o, &d), -EINVAL);
	longname[FERRY_MEMDOMAIN_NAME_MAX - 1] = '\0'; /* exactly the maximum: accepted */
	cr_assert_eq(ferry_memdomain_create(&o, &d), 0);
	ferry_memdomain_destroy(d);
	o = good;
	o.ops = NULL;
	cr_assert_eq(ferry_memdomain_create(&o, &d), -EINVAL);
	cr_assert_null(ferry_memdomain_lookup("ok"), "nothing registered by a failed create");
	/* vendor range is creatable */
	o = good;
	o.type = (enum ferry_memdomain_type)FERRY_MEMDOMAIN_VENDOR_FIRST;
	cr_assert_eq(ferry_memdomain_create(&o, &d), 0);
	ferry_memdomain_destroy(d);
}

Test(memdomain, wrong_ops_abi_is_eproto)
{
	static const struct ferry_memdomain_ops old = {.abi_version = FERRY_MEMDOMAIN_OPS_ABI + 1};
	struct ferry_memdomain *d = NULL;
	struct ferry_memdomain_opts o = {.size = sizeof(o),
					 .type = FERRY_MEMDOMAIN_RDMA,
					 .name = "abi",
					 .ops = &old};
	cr_assert_eq(ferry_memdomain_create(&o, &d), -EPROTO);
	cr_assert_null(d);
	cr_assert_null(ferry_memdomain_lookup("abi"));
	cr_assert_not_null(strstr(ferry_last_error(), "ABI"), "log says why: %s",
			   ferry_last_error());
}

Test(memdomain, enumeration_order_and_filter)
{
	struct ferry_memdomain *a = mk("a", FERRY_MEMDOMAIN_PCIE, &empty_ops, NULL);
	struct ferry_memdomain *b = mk("b", FERRY_MEMDOMAIN_RDMA, &empty_ops, NULL);
	struct ferry_memdomain *c = mk("c", FERRY_MEMDOMAIN_PCIE, &empty_ops, NULL);
	struct ferry_memdomain *v = mk("v", (enum ferry_memdomain_type)0x150, &empty_ops, NULL);
	struct ferry_memdomain *x = mk("x", FERRY_MEMDOMAIN_ACCEL, &empty_ops, NULL);

	struct ferry_memdomain *want[] = {ferry_memdomain_system(), a, b, c, v, x};
	struct ferry_memdomain *it = ferry_memdomain_first(FERRY_MEMDOMAIN_ANY);
	for (size_t i = 0; i < 6; i++, it = ferry_memdomain_next(it, FERRY_MEMDOMAIN_ANY))
		cr_assert_eq(it, want[i], "position %zu", i);
	cr_assert_null(it);

	cr_assert_eq(ferry_memdomain_first(FERRY_MEMDOMAIN_PCIE), a);
	cr_assert_eq(ferry_memdomain_next(a, FERRY_MEMDOMAIN_PCIE), c);
	cr_assert_null(ferry_memdomain_next(c, FERRY_MEMDOMAIN_PCIE));
	cr_assert_eq(ferry_memdomain_first(FERRY_MEMDOMAIN_RDMA), b);
	cr_assert_null(ferry_memdomain_next(b, FERRY_MEMDOMAIN_RDMA));
	cr_assert_eq(ferry_memdomain_first((enum ferry_memdomain_type)0x150), v);
	cr_assert_eq(ferry_memdomain_first(FERRY_MEMDOMAIN_ACCEL), x);
	cr_assert_null(ferry_memdomain_next(NULL, FERRY_MEMDOMAIN_ANY));
	/* a filter can start from a domain of another type */
	cr_assert_eq(ferry_memdomain_next(b, FERRY_MEMDOMAIN_PCIE), c);

	ferry_memdomain_destroy(c);
	cr_assert_null(ferry_memdomain_next(a, FERRY_MEMDOMAIN_PCIE));
	cr_assert_eq(ferry_memdomain_next(b, FERRY_MEMDOMAIN_ANY), v);
	struct ferry_memdomain *c2 = mk("c", FERRY_MEMDOMAIN_PCIE, &empty_ops, NULL);
	cr_assert_eq(ferry_memdomain_next(x, FERRY_MEMDOMAIN_ANY), c2, "new domains go last");

	cr_assert_eq(ferry_memdomain_lookup("b"), b);
	cr_assert_null(ferry_memdomain_lookup("nope"));
	cr_assert_null(ferry_memdomain_lookup(NULL));
	ferry_memdomain_destroy(a);
	ferry_memdomain_destroy(b);
	ferry_memdomain_destroy(c2);
	ferry_memdomain_destroy(v);
	ferry_memdomain_destroy(x);
	cr_assert_null(ferry_memdomain_next(ferry_memdomain_system(), FERRY_MEMDOMAIN_ANY));
}

Test(memdomain, enotsup_for_each_null_op)
{
	struct ferry_memdomain *d = mk("bare", FERRY_MEMDOMAIN_PCIE, &empty_ops, NULL);
	struct ferry_memdomain *other = mk("other", FERRY_MEMDOMAIN_PCIE, &empty_ops, NULL);
	char buf[8];
	struct iovec iov = {buf, sizeof(buf)}, outv[2];
	struct ferry_mem m = {.domain = d, .iov = &iov, .iovcnt = 1};
	struct ferry_mem l = {.domain = NULL, .iov = &iov, .iovcnt = 1};
	struct ferry_mem out = {.iov = outv, .iovcnt = 2};
	cb_calls = 0;
	cr_assert_eq(ferry_memdomain_pull(&m, &l, count_cb, NULL), -ENOTSUP);
	cr_assert_eq(ferry_memdomain_push(&m, &l, count_cb, NULL), -ENOTSUP);
	cr_assert_eq(ferry_memdomain_memzero(&m, count_cb, NULL), -ENOTSUP);
	cr_assert_eq(ferry_memdomain_translate(&m, other, &out), -ENOTSUP);
	cr_assert_eq(ferry_memdomain_invalidate(&m), -ENOTSUP);
	cr_assert_eq(ferry_memdomain_poll(d, 8), 0, "no poll: everything completes inline");
	cr_assert_eq(cb_calls, 0, "no callback after an error return");
	/* the system domain has no translate/invalidate either */
	cr_assert_eq(ferry_memdomain_translate(&l, d, &out), -ENOTSUP);
	cr_assert_eq(ferry_memdomain_invalidate(&l), -ENOTSUP);
	ferry_memdomain_destroy(d);
	ferry_memdomain_destroy(other);
}

Test(memdomain, wrapper_argument_checks)
{
	char a[16], b[8];
	struct iovec ia = {a, sizeof(a)}, ib = {b, sizeof(b)}, outv[1];
	struct ferry_memdomain *d = mk("t", FERRY_MEMDOMAIN_RDMA, &empty_ops, NULL);
	struct ferry_mem sys16 = {.iov = &ia, .iovcnt = 1}, sys8 = {.iov = &ib, .iovcnt = 1};
	struct ferry_mem none = {.iov = NULL, .iovcnt = 0},
			 remote = {.domain = d, .iov = &ia, .iovcnt = 1};
	struct ferry_mem out = {.iov = outv, .iovcnt = 1};
	cb_calls = 0;
	cr_assert_eq(ferry_memdomain_pull(&sys16, &sys8, count_cb, NULL), -EINVAL, "lengths");
	cr_assert_eq(ferry_memdomain_push(&sys8, &sys16, count_cb, NULL), -EINVAL, "lengths");
	cr_assert_eq(ferry_memdomain_pull(NULL, &sys8, count_cb, NULL), -EINVAL);
	cr_assert_eq(ferry_memdomain_pull(&sys8, NULL, count_cb, NULL), -EINVAL);
	cr_assert_eq(ferry_memdomain_pull(&none, &sys8, count_cb, NULL), -EINVAL);
	cr_assert_eq(ferry_memdomain_pull(&sys16, &sys16, NULL, NULL), -EINVAL, "no callback");
	cr_assert_eq(ferry_memdomain_pull(&sys16, &remote, count_cb, NULL), -EINVAL,
		     "local side must be the system domain");
	cr_assert_eq(ferry_memdomain_memzero(NULL, count_cb, NULL), -EINVAL);
	cr_assert_eq(ferry_memdomain_memzero(&sys8, NULL, NULL), -EINVAL);
	cr_assert_eq(ferry_memdomain_translate(&sys8, d, NULL), -EINVAL);
	cr_assert_eq(ferry_memdomain_translate(&none, d, &out), -EINVAL);
	cr_assert_eq(ferry_memdomain_invalidate(NULL), -EINVAL);
	cr_assert_eq(cb_calls, 0);
	ferry_memdomain_destroy(d);
}

Test(memdomain, system_domain_ops_sync_once)
{
	char src[32], dst[32];
	for (int i = 0; i < 32; i++)
		src[i] = (char)(i + 1);
	memset(dst, 0, sizeof(dst));
	struct iovec si[2] = {{src, 10}, {src + 10, 22}},
		     di[3] = {{dst, 5}, {dst + 5, 20}, {dst + 25, 7}};
	struct ferry_mem s = {.iov = si, .iovcnt = 2}, d = {.iov = di, .iovcnt = 3};
	cb_calls = 0;
	cb_status = 1;
	cr_assert_eq(ferry_memdomain_pull(&s, &d, count_cb, NULL), 0);
	cr_assert_eq(cb_calls, 1, "synchronous domain: callback before return, exactly once");
	cr_assert_eq(cb_status, 0);
	cr_assert_arr_eq(dst, src, 32);
	memset(dst, 0, sizeof(dst));
	cr_assert_eq(ferry_memdomain_push(&d, &s, count_cb, NULL), 0);
	cr_assert_eq(cb_calls, 2);
	cr_assert_arr_eq(dst, src, 32);
	cr_assert_eq(ferry_memdomain_memzero(&d, count_cb, NULL), 0);
	cr_assert_eq(cb_calls, 3);
	for (int i = 0; i < 32; i++)
		cr_assert_eq(dst[i], 0);
	cr_assert_eq(ferry_memdomain_poll(NULL, 10), 0);
	cr_assert_eq(cb_calls, 3);
}

Test(memdomain, translate_into_same_domain_copies)
{
	struct ferry_memdomain *d = mk("t", FERRY_MEMDOMAIN_RDMA, &empty_ops, NULL);
	struct iovec in[3] = {{(void *)0x1000, 10}, {(void *)0x5000, 20}, {(void *)0x9000, 30}};
	struct iovec outv[3];
	int ctx;
	struct ferry_mem src = {.domain = d, .domain_ctx = &ctx, .iov = in, .iovcnt = 3};
	struct ferry_mem out = {.iov = outv, .iovcnt = 2};
	cr_assert_eq(ferry_memdomain_translate(&src, d, &out), -ENOBUFS);
	cr_assert_eq(out.iovcnt, 3, "needed count reported");
	cr_assert_eq(ferry_memdomain_translate(&src, d, &out), 0);
	cr_assert_eq(out.domain, d);
	cr_assert_eq(out.domain_ctx, &ctx);
	cr_assert_eq(out.iovcnt, 3);
	cr_assert_arr_eq(outv, in, sizeof(in));
	ferry_memdomain_destroy(d);
}

/* ---- a test domain whose ops complete inline, later from poll, or fail ---- */

struct async_dom {
	int mode; /* 0 = inline, 1 = deferred to poll, 2 = fail with -EIO */
	ferry_memdomain_cb pending_cb[8];
	void *pending_arg[8];
	int npending;
};

static int async_pull(struct ferry_memdomain *d, void *ctx, const struct iovec *src, uint32_t sc,
		      const struct iovec *dst, uint32_t dc, ferry_memdomain_cb cb, void *arg)
{
	struct async_dom *a = ferry_memdomain_get_ctx(d);
	if (a->mode == 2)
		return -EIO;
	if (a->mode == 0) {
		cb(arg, 0);
		return 0;
	}
	a->pending_cb[a->npending] = cb;
	a->pending_arg[a->npending++] = arg;
	return 0;
}

static int async_poll(struct ferry_memdomain *d, uint32_t max)
{
	struct async_dom *a = ferry_memdomain_get_ctx(d);
	int n = 0;
	while (a->npending && (uint32_t)n < max) {
		a->npending--;
		a->pending_cb[a->npending](a->pending_arg[a->npending], 0);
		n++;
	}
	return n;
}

static const struct ferry_memdomain_ops async_ops = {.abi_version = FERRY_MEMDOMAIN_OPS_ABI,
						     .pull = async_pull,
						     .poll = async_poll};

Test(memdomain, callback_exactly_once_through_wrappers)
{
	struct async_dom a = {0};
	struct ferry_memdomain *d = mk("async", FERRY_MEMDOMAIN_PCIE, &async_ops, &a);
	char buf[4];
	struct iovec iov = {buf, 4};
	struct ferry_mem r = {.domain = d, .iov = &iov, .iovcnt = 1},
			 l = {.iov = &iov, .iovcnt = 1};
	cb_calls = 0;
	a.mode = 0;
	cr_assert_eq(ferry_memdomain_pull(&r, &l, count_cb, NULL), 0);
	cr_assert_eq(cb_calls, 1);
	a.mode = 2;
	cr_assert_eq(ferry_memdomain_pull(&r, &l, count_cb, NULL), -EIO);
	cr_assert_eq(cb_calls, 1, "error return: no callback");
	a.mode = 1;
	cr_assert_eq(ferry_memdomain_pull(&r, &l, count_cb, NULL), 0);
	cr_assert_eq(ferry_memdomain_pull(&r, &l, count_cb, NULL), 0);
	cr_assert_eq(cb_calls, 1, "deferred: not yet");
	cr_assert_eq(ferry_memdomain_poll(d, 1), 1);
	cr_assert_eq(cb_calls, 2);
	cr_assert_eq(ferry_memdomain_poll(d, 10), 1);
	cr_assert_eq(ferry_memdomain_poll(d, 10), 0);
	cr_assert_eq(cb_calls, 3);
	ferry_memdomain_destroy(d);
}

Test(memdomain, iov_helpers)
{
	char s[10] = "abcdefghi", d[10] = {0};
	struct iovec si[3] = {{s, 3}, {s + 3, 0}, {s + 3, 6}}, di[2] = {{d, 4}, {d + 4, 2}};
	cr_assert_eq(ferry_iov_length(si, 3), 9);
	cr_assert_eq(ferry_iov_length(NULL, 3), 0);
	cr_assert_eq(ferry_iov_copy(di, 2, si, 3), 6, "copies min of both totals");
	cr_assert_arr_eq(d, "abcdef", 6);
	cr_assert_eq(d[6], 0);
}
