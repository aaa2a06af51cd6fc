/*
 * Broken: a NIC that claims direct data placement it never did. The mock is opened with
 * place_miss_ppm=1000000 (it places nothing and delivers every byte into the caller's
 * iovecs) and recvv() ORs FERRY_HAL_NIC_RX_F_PLACED into the flags of every return.
 * Contract broken: "FERRY_HAL_NIC_RX_F_PLACED means the NIC wrote the bytes at the mapping's
 * destination" (ferry/hal/nic.h); the suite's nic_ddp.placed_truthful says "PLACED claimed
 * for bytes the NIC did not place".
 */
#include "broken.h"

static ssize_t (*mock_recvv)(struct ferry_hal_sock *sock, const struct iovec *iov, uint32_t iovcnt,
			     uint32_t *flags);

static ssize_t lying_recvv(struct ferry_hal_sock *sock, const struct iovec *iov, uint32_t iovcnt,
			   uint32_t *flags)
{
	ssize_t n = mock_recvv(sock, iov, iovcnt, flags);
	if (n > 0 && flags)
		*flags |= FERRY_HAL_NIC_RX_F_PLACED;
	return n;
}

static void brk(struct broken *b)
{
	mock_recvv = b->nic.recvv;
	b->nic.recvv = lying_recvv;
}

BROKEN_BACKEND("broken_placed", "place_miss_ppm=1000000", brk)
