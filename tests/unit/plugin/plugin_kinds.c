/*
 * The plugins of test_hal_plugin, one source built once per kind (-DPLUG_<KIND>): a good one
 * and one for each way ferry_hal_load() must refuse a shared object.
 */
#include <errno.h>
#include <stdlib.h>
#include <ferry/ferry.h>
#include <ferry/hal/hal.h>

__attribute__((unused)) static int plug_open(struct ferry_device *dev, const char *args)
{
	(void)args;
	int *state = malloc(sizeof(*state));
	if (!state)
		return -ENOMEM;
	*state = 42;
	ferry_hal_dev_set_priv(dev, state);
	return 0;
}

static void plug_close(struct ferry_device *dev)
{
	free(ferry_hal_dev_get_priv(dev));
	ferry_hal_dev_set_priv(dev, NULL);
}

#if defined(PLUG_BAD_TABLE)
static int q(struct ferry_device *dev, struct ferry_dma_info *info)
{
	(void)dev;
	(void)info;
	return 0;
}
/* A DMA table of another ABI version: registration refuses it. */
static const struct ferry_hal_dma_ops plug_dma = {.abi_version = 0, .query = q};
#endif

#if defined(PLUG_DUP)
#define PLUG_NAME "plug_good" /* the good plugin's name, from another object */
#elif defined(PLUG_BAD_TABLE)
#define PLUG_NAME "plug_bad_table"
#elif defined(PLUG_SELF_REGISTER)
#define PLUG_NAME "plug_self"
#else
#define PLUG_NAME "plug_good"
#endif

__attribute__((unused)) static const struct ferry_hal_backend plug_backend = {
	.abi_version = FERRY_HAL_ABI_VERSION,
	.name = PLUG_NAME,
	.open = plug_open,
	.close = plug_close,
#if defined(PLUG_BAD_TABLE)
	.dma = &plug_dma,
#endif
};

#if defined(PLUG_GOOD) || defined(PLUG_DUP) || defined(PLUG_BAD_TABLE)
FERRY_HAL_PLUGIN(plug_backend);
#elif defined(PLUG_SELF_REGISTER)
/* Both forms in one object: the constructor registers it during dlopen(). */
FERRY_HAL_BACKEND(plug_self, plug_backend)
FERRY_HAL_PLUGIN(plug_backend);
#elif defined(PLUG_HAL_ABI_OLD) || defined(PLUG_ENTRY_ABI_OLD) || defined(PLUG_NULL_BACKEND)
/* The entry as a plugin built against other headers would have it. */
FERRY_HAL_SYM_EXPORT const struct ferry_hal_plugin ferry_hal_plugin_entry = {
#if defined(PLUG_ENTRY_ABI_OLD)
	.abi_version = 0,
#else
	.abi_version = FERRY_HAL_PLUGIN_ABI_VERSION,
#endif
#if defined(PLUG_HAL_ABI_OLD)
	.hal_abi_version = 0,
#else
	.hal_abi_version = FERRY_HAL_ABI_VERSION,
#endif
#if defined(PLUG_NULL_BACKEND)
	.backend = NULL,
#else
	.backend = &plug_backend,
#endif
};
#elif defined(PLUG_NO_ENTRY)
/* A shared object with a backend table but no entry point. */
FERRY_HAL_SYM_EXPORT const struct ferry_hal_backend *const plug_not_an_entry = &plug_backend;
#elif defined(PLUG_UNRESOLVED)
/* A symbol nothing defines: dlopen(RTLD_NOW) refuses the object. */
extern int ferry_plug_no_such_function(void);
static int plug_open_unresolved(struct ferry_device *dev, const char *args)
{
	(void)dev;
	(void)args;
	return ferry_plug_no_such_function();
}
static const struct ferry_hal_backend plug_unresolved = {
	.abi_version = FERRY_HAL_ABI_VERSION,
	.name = "plug_unresolved",
	.open = plug_open_unresolved,
	.close = plug_close,
};
FERRY_HAL_PLUGIN(plug_unresolved);
#else
#error "define one PLUG_<KIND>"
#endif
