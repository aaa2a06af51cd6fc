/*
 * The HAL backend registry: registration with ABI checks, lookup by name, listing, and the
 * reference counts that keep a backend registered while devices of it are open.
 */
#include <pthread.h>
#include <string.h>
#include <ferry/hal/hal.h>
#include "core_internal.h"

#define COMP "hal"
#define MAX_BACKENDS 32

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const struct ferry_hal_backend *backends[MAX_BACKENDS];
static unsigned int refs[MAX_BACKENDS];
static unsigned int nbackends;

static int check_abi(const char *name, const char *what, uint32_t got, uint32_t want)
{
	if (got == want)
		return 0;
	FERRY_ERR(COMP, "backend '%s': %s ABI version %u refused, this library speaks %u", name,
		  what, got, want);
	return -EPROTO;
}

static int validate(const struct ferry_hal_backend *b)
{
	if (!b) {
		FERRY_ERR(COMP, "register: NULL backend");
		return -EINVAL;
	}
	size_t nlen = b->name ? strlen(b->name) : 0;
	if (nlen == 0 || nlen >= FERRY_HAL_NAME_MAX) {
		FERRY_ERR(COMP, "register: backend name must have 1..%d characters",
			  FERRY_HAL_NAME_MAX - 1);
		return -EINVAL;
	}
	int rc = check_abi(b->name, "backend", b->abi_version, FERRY_HAL_ABI_VERSION);
	if (!rc && b->dma)
		rc = check_abi(b->name, "DMA engine", b->dma->abi_version, FERRY_HAL_DMA_ABI_VERSION);
	if (!rc && b->dma && b->dma->accel)
		rc = check_abi(b->name, "accel", b->dma->accel->abi_version,
			       FERRY_HAL_ACCEL_ABI_VERSION);
	if (!rc && b->pcie_ep)
		rc = check_abi(b->name, "PCIe endpoint", b->pcie_ep->abi_version,
			       FERRY_HAL_PCIE_EP_ABI_VERSION);
	if (!rc && b->nic)
		rc = check_abi(b->name, "NIC", b->nic->abi_version, FERRY_HAL_NIC_ABI_VERSION);
	if (!rc && b->nic && b->nic->rdma)
		rc = check_abi(b->name, "RDMA", b->nic->rdma->abi_version,
			       FERRY_HAL_RDMA_ABI_VERSION);
	if (rc)
		return rc;
	if (!b->open || !b->close) {
		FERRY_ERR(COMP, "register '%s': open and close are required", b->name);
		return -EINVAL;
	}
	if (b->pci_ids && !b->probe) {
		FERRY_ERR(COMP, "register '%s': a PCI ID table needs a probe", b->name);
		return -EINVAL;
	}
	if (b->dma && (!b->dma->query || !b->dma->chan_create || !b->dma->chan_destroy ||
		       !b->dma->submit || !b->dma->poll)) {
		FERRY_ERR(COMP, "register '%s': DMA engine ops missing a required member", b->name);
		return -EINVAL;
	}
	if (b->dma && b->dma->accel &&
	    (!b->dma->accel->submit || !b->dma->accel->poll ||
	     (b->dma->accel->nchains && !b->dma->accel->chains))) {
		FERRY_ERR(COMP, "register '%s': accel ops missing submit/poll or chains table",
			  b->name);
		return -EINVAL;
	}
	if (b->pcie_ep && (!b->pcie_ep->query || !b->pcie_ep->attach || !b->pcie_ep->detach ||
			   !b->pcie_ep->get_domain || !b->pcie_ep->msix_raise || !b->pcie_ep->poll)) {
		FERRY_ERR(COMP, "register '%s': PCIe endpoint ops missing a required member",
			  b->name);
		return -EINVAL;
	}
	const struct ferry_hal_nic_ops *n = b->nic;
	if (n && (!n->query || !n->listen || !n->accept || !n->connect || !n->sock_error ||
		  !n->close || !n->get_addr || !n->sendv || !n->recvv || !n->group_create ||
		  !n->group_destroy || !n->group_add || !n->group_remove || !n->group_poll)) {
		FERRY_ERR(COMP, "register '%s': NIC ops missing a required member", b->name);
		return -EINVAL;
	}
	/* The receive offloads come as a set: all of them or none. */
	if (n) {
		int set = !!n->ddp_queue_add + !!n->ddp_queue_del + !!n->ddp_setup +
			  !!n->ddp_teardown + !!n->ddp_resync;
		if (set != 0 && set != 5) {
			FERRY_ERR(COMP,
				  "register '%s': NIC receive offload ops incomplete (ddp_queue_add, "
				  "ddp_queue_del, ddp_setup, ddp_teardown, ddp_resync: all or none)",
				  b->name);
			return -EINVAL;
		}
	}
	const struct ferry_hal_rdma_ops *r = n ? n->rdma : NULL;
	if (r && (!r->query || !r->mr_reg || !r->mr_dereg || !r->mr_keys || !r->cq_create ||
		  !r->cq_destroy || !r->cq_poll || !r->listen || !r->listener_addr ||
		  !r->listener_close || !r->get_request || !r->accept || !r->reject || !r->connect ||
		  !r->qp_state || !r->qp_destroy || !r->qp_addr || !r->post_recv || !r->post_send)) {
		FERRY_ERR(COMP, "register '%s': RDMA ops missing a required member", b->name);
		return -EINVAL;
	}
	return 0;
}

FERRY_API int ferry_hal_register(const struct ferry_hal_backend *b)
{
	int rc = validate(b);
	if (rc)
		return rc;
	pthread_mutex_lock(&lock);
	for (unsigned int i = 0; i < nbackends; i++) {
		if (backends[i] == b) {
			pthread_mutex_unlock(&lock);
			return 0;
		}
		if (strcmp(backends[i]->name, b->name) == 0) {
			pthread_mutex_unlock(&lock);
			FERRY_ERR(COMP, "register: a backend named '%s' is already registered",
				  b->name);
			return -EEXIST;
		}
	}
	if (nbackends == MAX_BACKENDS) {
		pthread_mutex_unlock(&lock);
		FERRY_ERR(COMP, "register '%s': registry full (%d backends)", b->name,
			  MAX_BACKENDS);
		return -ENOSPC;
	}
	refs[nbackends] = 0;
	backends[nbackends++] = b;
	pthread_mutex_unlock(&lock);
	FERRY_INFO(COMP, "registered backend '%s'", b->name);
	return 0;
}

FERRY_API int ferry_hal_unregister(const struct ferry_hal_backend *b)
{
	pthread_mutex_lock(&lock);
	for (unsigned int i = 0; i < nbackends; i++) {
		if (backends[i] != b)
			continue;
		if (refs[i]) {
			unsigned int n = refs[i]; /* read under the lock */
			pthread_mutex_unlock(&lock);
			FERRY_ERR(COMP, "unregister '%s': %u device(s) still open", b->name, n);
			return -EBUSY;
		}
		memmove(&backends[i], &backends[i + 1], (nbackends - i - 1) * sizeof(backends[0]));
		memmove(&refs[i], &refs[i + 1], (nbackends - i - 1) * sizeof(refs[0]));
		nbackends--;
		pthread_mutex_unlock(&lock);
		return 0;
	}
	pthread_mutex_unlock(&lock);
	return -ENOENT;
}

FERRY_API const struct ferry_hal_backend *ferry_hal_find(const char *name)
{
	const struct ferry_hal_backend *b = NULL;
	if (!name)
		return NULL;
	pthread_mutex_lock(&lock);
	for (unsigned int i = 0; i < nbackends; i++)
		if (strcmp(backends[i]->name, name) == 0)
			b = backends[i];
	pthread_mutex_unlock(&lock);
	return b;
}

FERRY_API const struct ferry_hal_backend *ferry_hal_get(unsigned int index)
{
	const struct ferry_hal_backend *b = NULL;
	pthread_mutex_lock(&lock);
	if (index < nbackends)
		b = backends[index];
	pthread_mutex_unlock(&lock);
	return b;
}

int hal_backend_ref(const struct ferry_hal_backend *b)
{
	int rc = -ENOENT;
	pthread_mutex_lock(&lock);
	for (unsigned int i = 0; i < nbackends; i++)
		if (backends[i] == b) {
			refs[i]++;
			rc = (int)refs[i];
		}
	pthread_mutex_unlock(&lock);
	return rc;
}

void hal_backend_unref(const struct ferry_hal_backend *b)
{
	pthread_mutex_lock(&lock);
	for (unsigned int i = 0; i < nbackends; i++)
		if (backends[i] == b && refs[i])
			refs[i]--;
	pthread_mutex_unlock(&lock);
}

FERRY_API const char *ferry_backend_name(unsigned int index)
{
	const struct ferry_hal_backend *b = ferry_hal_get(index);
	return b ? b->name : NULL;
}
