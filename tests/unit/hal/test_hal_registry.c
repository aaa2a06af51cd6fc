/*
 * The HAL registry: the mock registered at load time by FERRY_HAL_BACKEND, explicit
 * registration, ABI mismatches refused (-EPROTO) for the backend and its DMA, accel and PCIe
 * endpoint tables, duplicate
 * names (-EEXIST), missing required members (-EINVAL), lookup and listing, unregistering, and
 * devices of a backend without a DMA engine (-ENOTSUP).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <ferry/ferry.h>
#include <ferry/hal/hal.h>

static int opened, closed;
static int t_open(struct ferry_device *dev, const char *args)
{
	if (strcmp(args, "fail") == 0)
		return -EINVAL;
	opened++;
	ferry_hal_dev_set_priv(dev, &opened);
	return 0;
}
static void t_close(struct ferry_device *dev)
{
	cr_assert_eq(ferry_hal_dev_get_priv(dev), &opened);
	closed++;
}

static int d_query(struct ferry_device *dev, struct ferry_dma_info *info)
{
	return 0;
}
static int d_create(struct ferry_device *dev, const struct ferry_dma_chan_opts *o, void **c)
{
	return 0;
}
static void d_destroy(void *c)
{
}
static int d_submit(void *c, struct ferry_xfer *const *x, uint32_t n)
{
	return 0;
}
static int d_poll(void *c, struct ferry_xfer **d, uint32_t m)
{
	return 0;
}

static int a_submit(void *c, struct ferry_hal_accel_desc *const *d, uint32_t n)
{
	return 0;
}
static int a_poll(void *c, struct ferry_hal_accel_desc **d, uint32_t m)
{
	return 0;
}

static const struct ferry_hal_backend plain = {.abi_version = FERRY_HAL_ABI_VERSION,
					       .name = "plain",
					       .open = t_open,
					       .close = t_close};

Test(hal, mock_registered_at_load)
{
	const struct ferry_hal_backend *m = ferry_hal_find("mock");
	cr_assert_not_null(m);
	cr_assert_str_eq(m->name, "mock");
	cr_assert_not_null(m->dma);
	int found = 0;
	for (unsigned int i = 0; ferry_hal_get(i); i++)
		found += ferry_hal_get(i) == m && strcmp(ferry_backend_name(i), "mock") == 0;
	cr_assert_eq(found, 1);
	cr_assert_eq(ferry_hal_register(m), 0, "idempotent for the same pointer");
}

Test(hal, register_lookup_list_unregister)
{
	unsigned int before = 0;
	while (ferry_hal_get(before))
		before++;
	cr_assert_eq(ferry_hal_register(&plain), 0);
	cr_assert_eq(ferry_hal_register(&plain), 0);
	cr_assert_eq(ferry_hal_find("plain"), &plain);
	cr_assert_eq(ferry_hal_get(before), &plain, "listed last, in registration order");
	cr_assert_null(ferry_hal_get(before + 1));
	cr_assert_str_eq(ferry_backend_name(before), "plain");
	cr_assert_null(ferry_backend_name(before + 1));
	cr_assert_null(ferry_hal_find("nope"));
	cr_assert_null(ferry_hal_find(NULL));

	struct ferry_device *dev = NULL;
	cr_assert_eq(ferry_device_open("plain", "fail", &dev), -EINVAL);
	cr_assert_null(dev);
	cr_assert_eq(ferry_device_open("plain", NULL, &dev), 0);
	cr_assert_eq(opened, 1);
	cr_assert_str_eq(ferry_device_get_backend_name(dev), "plain");
	cr_assert_eq(strncmp(ferry_device_get_name(dev), "plain", 5), 0);
	cr_assert_eq(ferry_hal_dev_get_backend(dev), &plain);
	cr_assert_eq(ferry_device_get_classes(dev), 0);
	cr_assert_eq(ferry_hal_unregister(&plain), -EBUSY, "a device is open");
	/* no DMA engine */
	struct ferry_dma_info info = {.size = sizeof(info)};
	struct ferry_dma_chan *chan;
	cr_assert_eq(ferry_dma_query(dev, &info), -ENOTSUP);
	cr_assert_eq(ferry_dma_chan_create(dev, NULL, &chan), -ENOTSUP);
	ferry_device_close(dev);
	cr_assert_eq(closed, 1);
	cr_assert_eq(ferry_hal_unregister(&plain), 0);
	cr_assert_null(ferry_hal_find("plain"));
	cr_assert_eq(ferry_hal_unregister(&plain), -ENOENT);
	cr_assert_eq(ferry_device_open("plain", NULL, &dev), -ENOENT);
	cr_assert_eq(ferry_device_open(NULL, NULL, &dev), -EINVAL);
	ferry_device_close(NULL);
}

Test(hal, duplicate_name_is_eexist)
{
	static const struct ferry_hal_backend twin = {.abi_version = FERRY_HAL_ABI_VERSION,
						      .name = "mock",
						      .open = t_open,
						      .close = t_close};
	cr_assert_eq(ferry_hal_register(&twin), -EEXIST);
	cr_assert_neq(ferry_hal_find("mock"), &twin);
}

Test(hal, abi_mismatch_is_eproto)
{
	static const struct ferry_hal_backend old = {.abi_version = FERRY_HAL_ABI_VERSION + 1,
						     .name = "old",
						     .open = t_open,
						     .close = t_close};
	cr_assert_eq(ferry_hal_register(&old), -EPROTO);
	cr_assert_null(ferry_hal_find("old"));
	cr_assert_not_null(strstr(ferry_last_error(), "ABI"), "%s", ferry_last_error());

	static const struct ferry_hal_dma_ops old_dma = {.abi_version = FERRY_HAL_DMA_ABI_VERSION +
									7,
							 .query = d_query,
							 .chan_create = d_create,
							 .chan_destroy = d_destroy,
							 .submit = d_submit,
							 .poll = d_poll};
	static const struct ferry_hal_backend olddma = {.abi_version = FERRY_HAL_ABI_VERSION,
							.name = "olddma",
							.open = t_open,
							.close = t_close,
							.dma = &old_dma};
	cr_assert_eq(ferry_hal_register(&olddma), -EPROTO);
	cr_assert_null(ferry_hal_find("olddma"));
	cr_assert_not_null(strstr(ferry_last_error(), "DMA"), "%s", ferry_last_error());

	static const struct ferry_hal_pcie_ep_ops old_ep = {.abi_version = 99};
	static const struct ferry_hal_backend oldep = {.abi_version = FERRY_HAL_ABI_VERSION,
						       .name = "oldep",
						       .open = t_open,
						       .close = t_close,
						       .pcie_ep = &old_ep};
	cr_assert_eq(ferry_hal_register(&oldep), -EPROTO);

	static const struct ferry_hal_accel_ops old_accel = {
		.abi_version = FERRY_HAL_ACCEL_ABI_VERSION + 1,
		.submit = a_submit,
		.poll = a_poll};
	static const struct ferry_hal_dma_ops dma_old_accel = {.abi_version =
								       FERRY_HAL_DMA_ABI_VERSION,
							       .query = d_query,
							       .chan_create = d_create,
							       .chan_destroy = d_destroy,
							       .submit = d_submit,
							       .poll = d_poll,
							       .accel = &old_accel};
	static const struct ferry_hal_backend oldacc = {.abi_version = FERRY_HAL_ABI_VERSION,
							.name = "oldaccel",
							.open = t_open,
							.close = t_close,
							.dma = &dma_old_accel};
	cr_assert_eq(ferry_hal_register(&oldacc), -EPROTO);
	cr_assert_null(ferry_hal_find("oldaccel"));
	cr_assert_not_null(strstr(ferry_last_error(), "accel"), "%s", ferry_last_error());

	/* the accel table with the right version but no submit is incomplete */
	static const struct ferry_hal_accel_ops no_submit = {
		.abi_version = FERRY_HAL_ACCEL_ABI_VERSION, .poll = a_poll};
	static const struct ferry_hal_dma_ops dma_no_submit = {.abi_version =
								       FERRY_HAL_DMA_ABI_VERSION,
							       .query = d_query,
							       .chan_create = d_create,
							       .chan_destroy = d_destroy,
							       .submit = d_submit,
							       .poll = d_poll,
							       .accel = &no_submit};
	static const struct ferry_hal_backend nosub = {.abi_version = FERRY_HAL_ABI_VERSION,
						       .name = "nosubmit",
						       .open = t_open,
						       .close = t_close,
						       .dma = &dma_no_submit};
	cr_assert_eq(ferry_hal_register(&nosub), -EINVAL);
}

Test(hal, missing_members_are_einval)
{
	static const struct ferry_hal_pci_id ids[] = {{0x1af4, 0x1000}, {0, 0}};
	static const struct ferry_hal_dma_ops half_dma = {.abi_version = FERRY_HAL_DMA_ABI_VERSION,
							  .query = d_query,
							  .chan_create = d_create,
							  .chan_destroy = d_destroy,
							  .submit = d_submit}; /* no poll */
	static const struct ferry_hal_backend cases[] = {
		{.abi_version = FERRY_HAL_ABI_VERSION, .name = "noopen", .close = t_close},
		{.abi_version = FERRY_HAL_ABI_VERSION, .name = "noclose", .open = t_open},
		{.abi_version = FERRY_HAL_ABI_VERSION,
		 .name = NULL,
		 .open = t_open,
		 .close = t_close},
		{.abi_version = FERRY_HAL_ABI_VERSION, .name = "", .open = t_open, .close = t_close},
		{.abi_version = FERRY_HAL_ABI_VERSION,
		 .name = "a-name-that-is-far-too-long-to-fit",
		 .open = t_open,
		 .close = t_close},
		{.abi_version = FERRY_HAL_ABI_VERSION,
		 .name = "noprobe",
		 .pci_ids = ids,
		 .open = t_open,
		 .close = t_close},
		{.abi_version = FERRY_HAL_ABI_VERSION,
		 .name = "halfdma",
		 .open = t_open,
		 .close = t_close,
		 .dma = &half_dma},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_assert_eq(ferry_hal_register(&cases[i]), -EINVAL, "case %zu", i);
		if (cases[i].name)
			cr_assert_null(ferry_hal_find(cases[i].name));
	}
	cr_assert_eq(ferry_hal_register(NULL), -EINVAL);
}
