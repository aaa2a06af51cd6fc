/* placeholder until the mock backend lands */
#include <ferry/hal/hal.h>
static int mock_open(struct ferry_device *dev, const char *args) { return 0; }
static void mock_close(struct ferry_device *dev) {}
static const struct ferry_hal_backend mock_backend = {
	.abi_version = FERRY_HAL_ABI_VERSION, .name = "mock", .open = mock_open, .close = mock_close,
};
FERRY_HAL_BACKEND(mock, mock_backend)
