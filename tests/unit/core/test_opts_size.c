/*
 * The one size check of options and stats structs: exactly sizeof(struct) is accepted, a
 * smaller or larger size is refused with -EINVAL and a message naming the struct and both
 * sizes, for creators and stats getters of several components.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <ferry/bdev_malloc.h>
#include <ferry/crypto.h>
#include <ferry/log.h>
#include <ferry/module/bdev.h>
#include <ferry/module/memdomain.h>
#include <ferry/transport.h>

static void quiet(enum ferry_log_level level, const char *component, const char *fmt, va_list ap)
{
	(void)level, (void)component, (void)fmt, (void)ap;
}

/* ferry_last_error() after a refused call reads
 * "<component>: <what>: <field> N is not sizeof(<type>) = M". */
static void assert_refused(int rc, const char *what, const char *field, size_t given,
			   const char *type, size_t expected)
{
	char want[256];
	snprintf(want, sizeof(want), "%s: %s %zu is not sizeof(%s) = %zu", what, field, given, type,
		 expected);
	cr_assert_eq(rc, -EINVAL, "%s with size %zu", type, given);
	const char *msg = strchr(ferry_last_error(), ':');
	cr_assert_not_null(msg, "no component prefix in '%s'", ferry_last_error());
	cr_assert_str_eq(msg + 2, want);
}

Test(opts_size, malloc_create)
{
	ferry_log_set_handler(quiet);
	struct ferry_bdev *b = NULL;
	const size_t sz = sizeof(struct ferry_bdev_malloc_opts);
	size_t bad[] = {sz - 8, sz + 8, 0};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ferry_bdev_malloc_opts o = {.size = bad[i], .name = "os_m", .block_size = 512,
						   .num_blocks = 8};
		assert_refused(ferry_bdev_malloc_create(&o, &b), "create", "opts->size", bad[i],
			       "struct ferry_bdev_malloc_opts", sz);
		cr_assert_null(b);
	}
	struct ferry_bdev_malloc_opts o = {.size = sz, .name = "os_m", .block_size = 512,
					   .num_blocks = 8};
	cr_assert_eq(ferry_bdev_malloc_create(&o, &b), 0);

	/* a stats out-struct goes through the same check */
	struct ferry_bdev_stats st = {.size = sizeof(st) - 8};
	assert_refused(ferry_bdev_get_stats(b, &st), "get_stats", "stats->size", sizeof(st) - 8,
		       "struct ferry_bdev_stats", sizeof(st));
	st.size = sizeof(st) + 8;
	assert_refused(ferry_bdev_get_stats(b, &st), "get_stats", "stats->size", sizeof(st) + 8,
		       "struct ferry_bdev_stats", sizeof(st));
	st.size = sizeof(st);
	cr_assert_eq(ferry_bdev_get_stats(b, &st), 0);
	ferry_bdev_destroy(b);
}

Test(opts_size, memdomain_create)
{
	ferry_log_set_handler(quiet);
	static const struct ferry_memdomain_ops ops = {0};
	struct ferry_memdomain *d = NULL;
	const size_t sz = sizeof(struct ferry_memdomain_opts);
	/* the minimum the hand-written check used to accept: up to user_ctx, a pointer less */
	size_t bad[] = {sz - sizeof(void *), sz + 1};
	for (size_t i = 0; i < 2; i++) {
		struct ferry_memdomain_opts o = {.size = bad[i], .type = FERRY_MEMDOMAIN_PCIE,
						 .name = "os_d", .ops = &ops};
		assert_refused(ferry_memdomain_create(&o, &d), "create", "opts->size", bad[i],
			       "struct ferry_memdomain_opts", sz);
		cr_assert_null(d);
	}
}

Test(opts_size, transport_create)
{
	ferry_log_set_handler(quiet);
	struct ferry_transport *t = NULL;
	const size_t sz = sizeof(struct ferry_transport_opts);
	size_t bad[] = {sz - sizeof(void *), sz + 8};
	for (size_t i = 0; i < 2; i++) {
		struct ferry_transport_opts o = {.size = bad[i]};
		assert_refused(ferry_transport_create("pcie", &o, &t), "create", "opts->size",
			       bad[i], "struct ferry_transport_opts", sz);
		cr_assert_null(t);
	}
}

Test(opts_size, crypto_key_create)
{
	ferry_log_set_handler(quiet);
	static const uint8_t k1[16] = {1}, k2[16] = {2};
	struct ferry_crypto_key *k = NULL;
	const size_t sz = sizeof(struct ferry_crypto_key_opts);
	size_t bad[] = {sz - 4, sz + 8};
	for (size_t i = 0; i < 2; i++) {
		struct ferry_crypto_key_opts o = {.size = bad[i], .cipher = FERRY_CIPHER_AES_XTS_128,
						  .key1 = k1, .key2 = k2, .key_len = 16,
						  .data_unit_size = 512};
		assert_refused(ferry_crypto_key_create(&o, &k), "key_create", "opts->size", bad[i],
			       "struct ferry_crypto_key_opts", sz);
		cr_assert_null(k);
	}
	struct ferry_crypto_key_opts o = {.size = sz, .cipher = FERRY_CIPHER_AES_XTS_128, .key1 = k1,
					  .key2 = k2, .key_len = 16, .data_unit_size = 512};
	cr_assert_eq(ferry_crypto_key_create(&o, &k), 0);
	ferry_crypto_key_destroy(k);
}
