/*
 * Transfer status -> errno (ferry/hal/dma.h, ferry_hal_xfer_status_errno()): the one mapping
 * backends use where a failed transfer surfaces as a negative errno (a domain operation's
 * callback, an accel descriptor's status).
 */
#include <errno.h>
#include <ferry/hal/dma.h>

FERRY_API int ferry_hal_xfer_status_errno(enum ferry_xfer_status status)
{
	switch (status) {
	case FERRY_XFER_SUCCESS:
		return 0;
	case FERRY_XFER_INVALID_SRC_ADDR:
	case FERRY_XFER_INVALID_DST_ADDR:
	case FERRY_XFER_PAGE_FAULT:
		return -EFAULT;
	case FERRY_XFER_NOT_ATTEMPTED:
		return -ECANCELED;
	case FERRY_XFER_BUS_READ_ERROR:
	case FERRY_XFER_BUS_WRITE_ERROR:
	case FERRY_XFER_DATA_POISONED:
	default:
		return -EIO; /* a value outside the enum is a failure of unknown kind */
	}
}
