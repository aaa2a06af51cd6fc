/*
 * The "mock" backend: its registration, device arguments, open/close of a device (shared host
 * memory, engine thread, function domains) and the device-level controls of ferry/mock.h.
 *
 * Arguments (all optional):
 *   host_mem=<bytes>    host RAM, a multiple of 4 KiB, 4K..4G (K/M/G suffixes; default 16M)
 *   iova_size=<bytes>   IOVA space of each function, same rules (default 64M)
 *   functions=<a:b:..>  PCI function names, 1..8 of [a-z0-9_], 1..15 chars (default nvme:nic)
 *   latency_ns=<n>      per-transfer latency, 0..10^10 (default 0)
 *   ring=<n>            default channel ring size, 1..65536 (default 256)
 *   seed=<n>            seed of random error injection (default 1)
 *   inject_ppm=<n>      random failures per million transfers, 0..10^6 (default 0)
 * and the offload NIC's (mock_nic.c): ddp, ddp_max_sges, ddp_max_io, nic_pkt, ddp_seed,
 * place_miss_ppm, crc_miss_ppm, setup_fail_ppm, queue_fail_ppm, resync_ppm, resync_wrong_ppm,
 * lie_ppm, and its RDMA part's (mock_rdma.c): rdma, rdma_seed, rdma_rnr_ms.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mock_internal.h"

static const char *const mock_keys[] = {
	"host_mem",       "iova_size",      "functions",    "latency_ns",     "ring",
	"seed",           "inject_ppm",     "ddp",          "ddp_max_sges",   "ddp_max_io",
	"nic_pkt",        "ddp_seed",       "place_miss_ppm", "crc_miss_ppm", "setup_fail_ppm",
	"queue_fail_ppm", "resync_ppm",     "resync_wrong_ppm", "lie_ppm",   "rdma",
	"rdma_seed",      "rdma_rnr_ms",    NULL};

struct mock_args {
	uint64_t host_mem, iova_size, latency_ns, ring, seed, inject_ppm;
	char fn_names[MOCK_MAX_FNS][MOCK_FN_NAME_MAX];
	uint32_t nfn;
};

/* Parses key's value as an unsigned number (sizes may carry a K/M/G suffix) within [lo, hi]. */
static int arg_u64(const char *args, const char *key, int size, uint64_t lo, uint64_t hi,
		   uint64_t *out)
{
	char val[32], *end;
	int rc = ferry_hal_arg_get(args, key, val, sizeof(val));
	if (rc == -ENOENT)
		return 0;
	if (rc) {
		MOCK_ERR("argument %s: value too long", key);
		return -EINVAL;
	}
	if (val[0] < '0' || val[0] > '9') {
		MOCK_ERR("argument %s='%s': not an unsigned number", key, val);
		return -EINVAL;
	}
	errno = 0;
	unsigned long long v = strtoull(val, &end, 0);
	uint64_t mul = 1;
	if (size && *end) {
		switch (*end) {
		case 'K':
		case 'k':
			mul = 1ull << 10;
			end++;
			break;
		case 'M':
		case 'm':
			mul = 1ull << 20;
			end++;
			break;
		case 'G':
		case 'g':
			mul = 1ull << 30;
			end++;
			break;
		default:
			break;
		}
	}
	if (errno || *end || v > UINT64_MAX / mul) {
		MOCK_ERR("argument %s='%s': not a%s number", key, val,
			 size ? " size (bytes, optional K/M/G suffix)" : "n unsigned");
		return -EINVAL;
	}
	v *= mul;
	if (v < lo || v > hi || (size && v % MOCK_PAGE_SIZE)) {
		MOCK_ERR("argument %s=%s: must be in %llu..%llu%s", key, val,
			 (unsigned long long)lo, (unsigned long long)hi,
			 size ? " and a multiple of 4096" : "");
		return -EINVAL;
	}
	*out = v;
	return 0;
}

int mock_arg_u64(const char *args, const char *key, int size, uint64_t lo, uint64_t hi,
		 uint64_t *out)
{
	return arg_u64(args, key, size, lo, hi, out);
}

static int arg_functions(const char *args, struct mock_args *a)
{
	char val[MOCK_MAX_FNS * MOCK_FN_NAME_MAX + 8] = "nvme:nic";
	int rc = ferry_hal_arg_get(args, "functions", val, sizeof(val));
	if (rc && rc != -ENOENT) {
		MOCK_ERR("argument functions: value too long (at most %u names)", MOCK_MAX_FNS);
		return -EINVAL;
	}
	a->nfn = 0;
	for (char *p = val;;) {
		size_t n = strcspn(p, ":");
		if (n == 0 || n >= MOCK_FN_NAME_MAX ||
		    strspn(p, "abcdefghijklmnopqrstuvwxyz"
			      "0123456789_") < n) {
			MOCK_ERR("argument functions='%s': names are 1..%u characters of [a-z0-9_]",
				 val, MOCK_FN_NAME_MAX - 1);
			return -EINVAL;
		}
		if (a->nfn == MOCK_MAX_FNS) {
			MOCK_ERR("argument functions='%s': at most %u functions", val,
				 MOCK_MAX_FNS);
			return -EINVAL;
		}
		memcpy(a->fn_names[a->nfn], p, n);
		a->fn_names[a->nfn][n] = '\0';
		for (uint32_t i = 0; i < a->nfn; i++) {
			if (strcmp(a->fn_names[i], a->fn_names[a->nfn]) == 0) {
				MOCK_ERR("argument functions='%s': '%s' appears twice", val,
					 a->fn_names[i]);
				return -EINVAL;
			}
		}
		a->nfn++;
		if (p[n] == '\0')
			break;
		p += n + 1;
	}
	return 0;
}

static int parse_args(const char *args, struct mock_args *a)
{
	*a = (struct mock_args){.host_mem = 16ull << 20,
				.iova_size = 64ull << 20,
				.ring = 256,
				.seed = 1};
	if (ferry_hal_args_check(args, mock_keys))
		return -EINVAL; /* logged, with the key */
	int rc = arg_u64(args, "host_mem", 1, MOCK_PAGE_SIZE, 4ull << 30, &a->host_mem);
	if (!rc)
		rc = arg_u64(args, "iova_size", 1, MOCK_PAGE_SIZE, 4ull << 30, &a->iova_size);
	if (!rc)
		rc = arg_u64(args, "latency_ns", 0, 0, MOCK_MAX_LATENCY_NS, &a->latency_ns);
	if (!rc)
		rc = arg_u64(args, "ring", 0, 1, MOCK_MAX_RING, &a->ring);
	if (!rc)
		rc = arg_u64(args, "seed", 0, 0, UINT64_MAX, &a->seed);
	if (!rc)
		rc = arg_u64(args, "inject_ppm", 0, 0, 1000000, &a->inject_ppm);
	if (!rc)
		rc = arg_functions(args, a);
	return rc;
}

/*
 * The open mock devices. mock_dev_get() answers from this list, not from the device's
 * backend: a backend derived from the mock (its tables copied with some members replaced,
 * its open calling the mock's: the conformance suite's deliberately broken backends are such)
 * shares the mock's state, so the mock's ops and controls work on its devices too, while a
 * device of any other backend is still told apart. A device of the mock itself is answered
 * from its private state at once; only a derived backend's devices walk the list.
 */
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mock_dev *open_devs;

struct mock_dev *mock_dev_get(struct ferry_device *fdev)
{
	if (!fdev)
		return NULL;
	/* The mock's own devices (every hot path: endpoint poll, MSI-X): no lookup. */
	if (ferry_hal_dev_get_backend(fdev) == &mock_backend)
		return ferry_hal_dev_get_priv(fdev);
	struct mock_dev *d;
	pthread_mutex_lock(&open_lock);
	for (d = open_devs; d && d->fdev != fdev; d = d->open_next)
		;
	pthread_mutex_unlock(&open_lock);
	return d;
}

static void open_list_del(struct mock_dev *dev)
{
	pthread_mutex_lock(&open_lock);
	for (struct mock_dev **pp = &open_devs; *pp; pp = &(*pp)->open_next)
		if (*pp == dev) {
			*pp = dev->open_next;
			break;
		}
	pthread_mutex_unlock(&open_lock);
}

static void mock_dev_free(struct mock_dev *dev)
{
	open_list_del(dev);
	mock_nic_destroy(dev);
	mock_pcie_free(dev);
	mock_domains_destroy(dev);
	mock_engine_stop(dev);
	/* Channels the firmware did not destroy: detach them from the device. */
	while (dev->chans) {
		struct mock_chan *ch = dev->chans;
		dev->chans = ch->next;
		ch->dev = NULL;
		ch->dying = 1;
	}
	if (dev->user_chans)
		MOCK_WARN("%s: closed with %u DMA channel(s) still open", dev->name,
			  dev->user_chans);
	for (uint32_t i = 0; i < dev->nfn; i++) {
		free(dev->fn[i].rmap);
		pthread_mutex_destroy(&dev->fn[i].lock);
		pthread_mutex_destroy(&dev->fn[i].rmap_lock);
	}
	ferry_mock_host_close(dev->shm);
	pthread_mutex_destroy(&dev->inj_lock);
	if (dev->engine_init) {
		pthread_mutex_destroy(&dev->lock);
		pthread_cond_destroy(&dev->wake);
		pthread_cond_destroy(&dev->idle);
	}
	free(dev);
}

static int mock_open(struct ferry_device *fdev, const char *args)
{
	struct mock_args a;
	int rc = parse_args(args, &a);
	if (rc)
		return rc;
	struct mock_dev *dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->fdev = fdev;
	snprintf(dev->name, sizeof(dev->name), "%s", ferry_device_get_name(fdev));
	dev->host_size = a.host_mem;
	dev->host_pages = a.host_mem >> MOCK_PAGE_SHIFT;
	dev->iova_size = a.iova_size;
	dev->iova_pages = a.iova_size >> MOCK_PAGE_SHIFT;
	dev->ring_default = (uint32_t)a.ring;
	dev->next_chan_id = 1;
	atomic_init(&dev->latency_ns, a.latency_ns);
	mock_inject_init(dev, a.seed, (uint32_t)a.inject_ppm);

	rc = mock_shm_create(dev->name, a.host_mem, a.iova_size,
			     (const char(*)[MOCK_FN_NAME_MAX])a.fn_names, a.nfn, &dev->shm);
	if (rc) {
		pthread_mutex_destroy(&dev->inj_lock);
		free(dev);
		return rc;
	}
	dev->host = dev->shm->mem;
	dev->nfn = a.nfn;
	for (uint32_t i = 0; i < a.nfn; i++) {
		struct mock_fn *fn = &dev->fn[i];
		fn->dev = dev;
		fn->index = i;
		memcpy(fn->name, a.fn_names[i], sizeof(fn->name));
		/* Pointers computed once from our own layout, never re-read from shared memory. */
		fn->table = mock_shm_table(dev->shm, i);
		fn->gen = &dev->shm->hdr->fn[i].gen;
		pthread_mutex_init(&fn->lock, NULL);
		pthread_mutex_init(&fn->rmap_lock, NULL);
	}
	rc = mock_engine_start(dev);
	if (!rc)
		rc = mock_domains_create(dev);
	if (!rc)
		rc = mock_nic_create(dev, args);
	if (rc) {
		mock_dev_free(dev);
		return rc;
	}
	ferry_hal_dev_set_priv(fdev, dev);
	pthread_mutex_lock(&open_lock);
	dev->open_next = open_devs;
	open_devs = dev;
	pthread_mutex_unlock(&open_lock);
	return 0;
}

static void mock_close(struct ferry_device *fdev)
{
	struct mock_dev *dev = ferry_hal_dev_get_priv(fdev);
	if (!dev)
		return;
	mock_dev_free(dev);
	ferry_hal_dev_set_priv(fdev, NULL);
}

const struct ferry_hal_backend mock_backend = {
	.abi_version = FERRY_HAL_ABI_VERSION,
	.name = "mock",
	.open = mock_open,
	.close = mock_close,
	.dma = &mock_dma_ops,
	.pcie_ep = &mock_pcie_ep_ops,
	.nic = &mock_nic_ops,
};

FERRY_HAL_BACKEND(mock, mock_backend)

FERRY_API int ferry_mock_host_fd(struct ferry_device *fdev, int *fd)
{
	struct mock_dev *dev = mock_dev_get(fdev);
	if (!dev || !fd) {
		MOCK_ERR("host_fd: %s", !dev ? "not a mock device" : "NULL fd");
		return -EINVAL;
	}
	*fd = dev->shm->fd;
	return 0;
}

FERRY_API int ferry_mock_host_attach(struct ferry_device *fdev, struct ferry_mock_host **out)
{
	int fd, rc = ferry_mock_host_fd(fdev, &fd);
	return rc ? rc : ferry_mock_host_open(fd, out);
}

FERRY_API int ferry_mock_set_latency(struct ferry_device *fdev, uint64_t ns)
{
	struct mock_dev *dev = mock_dev_get(fdev);
	if (!dev || ns > MOCK_MAX_LATENCY_NS) {
		MOCK_ERR("set_latency: %s", !dev ? "not a mock device" : "more than 10 s");
		return -EINVAL;
	}
	atomic_store(&dev->latency_ns, ns);
	return 0;
}

FERRY_API int ferry_mock_get_stats(struct ferry_device *fdev, struct ferry_mock_stats *out)
{
	struct mock_dev *dev = mock_dev_get(fdev);
	if (!dev || !out || out->size != sizeof(*out)) {
		MOCK_ERR("get_stats: %s", !dev ? "not a mock device" : "NULL or short stats");
		return -EINVAL;
	}
	*out = (struct ferry_mock_stats){
		.size = out->size,
		.xfers = atomic_load(&dev->st_xfers),
		.bytes = atomic_load(&dev->st_bytes),
		.errors = atomic_load(&dev->st_errors),
		.page_faults = atomic_load(&dev->st_page_faults),
		.injected = atomic_load(&dev->st_injected),
		.not_attempted = atomic_load(&dev->st_not_attempted),
		.domain_ops = atomic_load(&dev->st_domain_ops),
		.translations = atomic_load(&dev->st_translations),
		.rmap_builds = atomic_load(&dev->st_rmap_builds),
		.invalidations = atomic_load(&dev->st_invalidations),
	};
	return 0;
}
