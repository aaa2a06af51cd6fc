/*
 * Out-of-tree consumer of an *installed* Ferry: built by tests/install against the installed
 * headers and libraries (via pkg-config and via find_package(Ferry)), then run. Uses the SDK
 * (version, system domain, a domain's lifecycle, a pull) and the backend SDK (registering a
 * backend), and exits non-zero on the first thing that is not as documented. Built once more
 * with CONSUMER_EXPECT_MOCK and the mock's link flags: then "mock" must be registered.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <ferry/ferry.h>
#include <ferry/hal/hal.h>
#include <ferry/module/memdomain.h>

#define STR2(x) #x
#define STR(x) STR2(x)

static int failed;

#define CHECK(cond)                                                                  \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "consumer: %s:%d: check failed: %s (%s)\n",  \
				__FILE__, __LINE__, #cond, ferry_last_error());      \
			failed = 1;                                                  \
		}                                                                    \
	} while (0)

static const struct ferry_memdomain_ops consumer_ops = {
	.abi_version = FERRY_MEMDOMAIN_OPS_ABI,
};

static int consumer_state;

static int consumer_open(struct ferry_device *dev, const char *args)
{
	(void)args;
	ferry_hal_dev_set_priv(dev, &consumer_state);
	return 0;
}

static void consumer_close(struct ferry_device *dev)
{
	ferry_hal_dev_set_priv(dev, NULL);
}

static const struct ferry_hal_backend consumer_backend = {
	.abi_version = FERRY_HAL_ABI_VERSION,
	.name = "consumer",
	.open = consumer_open,
	.close = consumer_close,
};

static void count_cb(void *arg, int status)
{
	int *calls = arg;
	(*calls)++;
	CHECK(status == 0);
}

int main(void)
{
	const char *want = STR(FERRY_VERSION_MAJOR) "." STR(FERRY_VERSION_MINOR) "." STR(
		FERRY_VERSION_PATCH);
	printf("consumer: libferry %s (headers %s)\n", ferry_version(), want);
	CHECK(strcmp(ferry_version(), want) == 0);

	/* The system domain always exists. */
	struct ferry_memdomain *sys = ferry_memdomain_system();
	CHECK(sys != NULL);
	CHECK(ferry_memdomain_get_type(sys) == FERRY_MEMDOMAIN_SYSTEM);
	CHECK(strcmp(ferry_memdomain_get_name(sys), "system") == 0);
	CHECK(ferry_memdomain_lookup("system") == sys);

	/* A domain's lifecycle; its empty ops table gives -ENOTSUP. */
	int ctx = 42;
	struct ferry_memdomain_opts opts;
	memset(&opts, 0, sizeof(opts));
	opts.size = sizeof(opts);
	opts.type = FERRY_MEMDOMAIN_PCIE;
	opts.name = "consumer.fn0";
	opts.ops = &consumer_ops;
	opts.user_ctx = &ctx;
	struct ferry_memdomain *d = NULL;
	CHECK(ferry_memdomain_create(&opts, &d) == 0);
	CHECK(d != NULL && ferry_memdomain_lookup("consumer.fn0") == d);
	CHECK(ferry_memdomain_get_ctx(d) == &ctx);
	char byte = 0;
	struct iovec iov = {&byte, 1};
	struct ferry_mem m = {d, NULL, &iov, 1};
	int calls = 0;
	CHECK(ferry_memdomain_memzero(&m, count_cb, &calls) == -ENOTSUP);
	CHECK(calls == 0);
	ferry_memdomain_destroy(d);
	CHECK(ferry_memdomain_lookup("consumer.fn0") == NULL);

	/* A pull from the system domain moves the bytes and calls back exactly once. */
	char src[] = "ferry", dst[sizeof(src)] = {0};
	struct iovec siov = {src, sizeof(src)}, diov = {dst, sizeof(dst)};
	struct ferry_mem smem = {NULL, NULL, &siov, 1}, dmem = {NULL, NULL, &diov, 1};
	CHECK(ferry_memdomain_pull(&smem, &dmem, count_cb, &calls) == 0);
	CHECK(calls == 1 && memcmp(src, dst, sizeof(src)) == 0);

	/* The backend SDK: register, find, open, close, unregister. */
	CHECK(ferry_hal_register(&consumer_backend) == 0);
	CHECK(ferry_hal_find("consumer") == &consumer_backend);
	struct ferry_device *dev = NULL;
	CHECK(ferry_device_open("consumer", "", &dev) == 0);
	CHECK(dev != NULL && ferry_hal_dev_get_priv(dev) == &consumer_state);
	ferry_device_close(dev);
	CHECK(ferry_hal_unregister(&consumer_backend) == 0);
	CHECK(ferry_hal_find("consumer") == NULL);

#ifdef CONSUMER_EXPECT_MOCK
	/* Linked with ferry-mock.pc / Ferry::mock_static while calling none of the mock's
	 * functions: its registration is kept all the same (-u ferry_hal_backend_mock). */
	CHECK(ferry_hal_find("mock") != NULL);
	dev = NULL;
	CHECK(ferry_device_open("mock", "", &dev) == 0);
	if (dev)
		ferry_device_close(dev);
#endif

	printf("consumer: %s\n", failed ? "FAILED" : "ok");
	return failed;
}
