/*
 * The mock backend's NIC class: an NVMe/TCP receive-offload NIC whose TCP is the kernel's
 * (real sockets through the backend-SDK kit ferry/hal/sock.h). This file owns the ops table
 * and its control side: device arguments and query (caps, DDP limits and domains), the
 * per-socket state (created at connect/accept, freed at close), queue add/del, per-command
 * setup and asynchronous teardown (callbacks from group_poll()/queue_del()/close()), the
 * seeded fault model and the counters. The receive engine is in mock_nic_rx.c.
 *
 * Arguments (all optional):
 *   ddp=0|1                 receive offloads (default 1; 0: TCP only)
 *   ddp_max_sges=<n>        segments per destination, 1..64 (default 64)
 *   ddp_max_io=<bytes>      bytes per destination, 4K..1M (default 1M)
 *   nic_pkt=<n>             bytes of one "packet" read from the socket, 64..65536 (16384)
 *   ddp_seed=<n>            seed of the fault model (default 1)
 *   place_miss_ppm=<n> crc_miss_ppm=<n> setup_fail_ppm=<n> queue_fail_ppm=<n>
 *   resync_ppm=<n> resync_wrong_ppm=<n> lie_ppm=<n>   faults per million (ferry/mock.h)
 *   rdma=0|1 rdma_seed=<n> rdma_rnr_ms=<n>   the RDMA part (mock_rdma.c; default on)
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "mock_nic_internal.h"

static const char *const knob_keys[KNOB_COUNT] = {
	[KNOB_PLACE_MISS] = "place_miss_ppm",
	[KNOB_CRC_MISS] = "crc_miss_ppm",
	[KNOB_SETUP_FAIL] = "setup_fail_ppm",
	[KNOB_QUEUE_FAIL] = "queue_fail_ppm",
	[KNOB_RESYNC] = "resync_ppm",
	[KNOB_RESYNC_WRONG] = "resync_wrong_ppm",
	[KNOB_LIE] = "lie_ppm",
};

struct mock_nic *mock_nic_of(struct ferry_device *fdev)
{
	struct mock_dev *dev = mock_dev_get(fdev);
	return dev ? dev->nic : NULL;
}

static struct mock_nic_sock *sock_state(struct ferry_hal_sock *sock)
{
	return sock ? ferry_hal_lsock_get_priv(sock) : NULL;
}

int mock_nic_ratelimit(struct mock_nic *nic)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	unsigned long long now = (unsigned long long)ts.tv_sec * 1000000000ull +
				 (unsigned long long)ts.tv_nsec;
	unsigned long long start = atomic_load(&nic->rl.window_start_ns);
	if (now - start >= 1000000000ull &&
	    atomic_compare_exchange_strong(&nic->rl.window_start_ns, &start, now)) {
		atomic_store(&nic->rl.in_window, 0);
		unsigned int s = atomic_exchange(&nic->rl.suppressed, 0);
		if (s)
			MOCK_WARN("%s: %u NIC message(s) suppressed", nic->dev->name, s);
	}
	if (atomic_fetch_add(&nic->rl.in_window, 1) < 10)
		return 1;
	atomic_fetch_add(&nic->rl.suppressed, 1);
	return 0;
}

static uint64_t splitmix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/*
 * One fault decision: the n-th draw of knob k on socket s is a hash of (seed, socket number,
 * knob, n), so each knob's decisions on each socket are the same whatever other knobs,
 * sockets or threads do (determinism without a shared generator).
 */
int mock_nic_draw(struct mock_nic_sock *s, enum mock_nic_knob k)
{
	uint32_t ppm = atomic_load_explicit(&s->nic->ppm[k], memory_order_relaxed);
	if (!ppm)
		return 0;
	uint64_t n = s->draws[k]++;
	uint64_t h = splitmix(atomic_load_explicit(&s->nic->seed, memory_order_relaxed) ^
			      splitmix(s->id * 64 + (uint64_t)k) ^ splitmix(n + 0x51ed));
	return (h % 1000000u) < ppm;
}

/* ---- per-socket state ---------------------------------------------------------------------- */

static int sock_attach(struct mock_nic *nic, struct ferry_hal_sock *sock)
{
	struct mock_nic_sock *s = calloc(1, sizeof(*s));
	if (!s) {
		MOCK_ERR("%s: out of memory for a socket's NIC state", nic->dev->name);
		return -ENOMEM;
	}
	s->nic = nic;
	s->sock = sock;
	s->id = atomic_fetch_add(&nic->next_sock_id, 1) + 1;
	ferry_hal_lsock_set_priv(sock, s);
	return 0;
}

static int nic_connect(struct ferry_device *fdev, const struct ferry_hal_sock_opts *opts,
		       struct ferry_hal_sock **out)
{
	struct mock_nic *nic = mock_nic_of(fdev);
	if (!nic) {
		MOCK_ERR("connect: not a mock device");
		return -EINVAL;
	}
	int rc = ferry_hal_lsock_connect(fdev, opts, out);
	if (rc)
		return rc;
	rc = sock_attach(nic, *out);
	if (rc) {
		ferry_hal_lsock_close(*out);
		*out = NULL;
	}
	return rc;
}

static int nic_accept(struct ferry_hal_sock *listener, struct ferry_hal_sock **out)
{
	struct mock_nic *nic = mock_nic_of(ferry_hal_lsock_device(listener));
	if (!nic) {
		MOCK_ERR("accept: not a mock socket");
		return -EINVAL;
	}
	int rc = ferry_hal_lsock_accept(listener, out);
	if (rc)
		return rc;
	rc = sock_attach(nic, *out);
	if (rc) {
		ferry_hal_lsock_close(*out);
		*out = NULL;
	}
	return rc;
}

/* Ready while the engine holds bytes to deliver, teardowns to complete or a request to make:
 * the kernel would not wake the poll for those. */
void mock_nic_update_ready(struct mock_nic_sock *s)
{
	int on = s->annot_end > s->delivered || s->td_head || s->req_issue;
	ferry_hal_lsock_set_ready(s->sock, on);
}

/*
 * Sockets with teardown callbacks due, process-wide: group_poll() gets only a group, which
 * the kit does not tie to a device, so it looks for the sockets whose td_group is its group.
 * Linked and unlinked by the socket's own thread; walked by any group's poll.
 */
static pthread_mutex_t td_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mock_nic_sock *td_list;

void mock_nic_due_link(struct mock_nic_sock *s)
{
	pthread_mutex_lock(&td_lock);
	s->td_group = ferry_hal_lsock_group(s->sock);
	if (!s->td_linked) {
		s->td_next = td_list;
		td_list = s;
		s->td_linked = 1;
	}
	pthread_mutex_unlock(&td_lock);
}

static void td_unlink(struct mock_nic_sock *s)
{
	pthread_mutex_lock(&td_lock);
	if (s->td_linked) {
		for (struct mock_nic_sock **pp = &td_list; *pp; pp = &(*pp)->td_next) {
			if (*pp == s) {
				*pp = s->td_next;
				break;
			}
		}
		s->td_linked = 0;
		s->td_next = NULL;
	}
	pthread_mutex_unlock(&td_lock);
}

/* Run the socket's due teardown callbacks (a callback may set up / tear down again: those
 * wait for the next round). Returns how many ran. */
static int td_run(struct mock_nic_sock *s)
{
	struct mock_ddp_map *m = s->td_head;
	int ran = 0;
	s->td_head = s->td_tail = NULL;
	while (m) {
		struct mock_ddp_map *next = m->tnext;
		ferry_hal_ddp_done_cb done = m->done;
		void *ctx = m->done_ctx;
		m->tnext = NULL;
		m->done = NULL;
		m->state = MAP_FREE;
		atomic_fetch_add(&s->nic->st_teardown, 1);
		if (done)
			done(ctx, 0);
		ran++;
		m = next;
	}
	return ran;
}

/* End the offload of s: due teardowns complete now, every mapping is released. */
static void queue_end(struct mock_nic_sock *s)
{
	if (!s->offloaded)
		return;
	td_unlink(s);
	while (s->td_head)
		(void)td_run(s);
	for (uint32_t i = 0; i < s->nmaps; i++) {
		if (s->maps[i].state != MAP_FREE)
			atomic_fetch_add(&s->nic->st_teardown, 1);
		s->maps[i].state = MAP_FREE;
		free(s->maps[i].seg);
	}
	free(s->maps);
	s->maps = NULL;
	s->nmaps = 0;
	mock_nic_rx_stop(s);
	s->offloaded = 0;
	atomic_fetch_add(&s->nic->st_queue_del, 1);
	mock_nic_update_ready(s);
}

static void nic_close(struct ferry_hal_sock *sock)
{
	struct mock_nic_sock *s = sock_state(sock);
	if (s) {
		queue_end(s);
		td_unlink(s);
		ferry_hal_lsock_set_priv(sock, NULL);
		free(s->buf);
		free(s->spans);
		free(s);
	}
	ferry_hal_lsock_close(sock);
}

/*
 * Teardown callbacks and resync requests due on sockets of @p group run first (the contract:
 * from a later group_poll() of the socket's group); if any ran, the kit polls without
 * waiting, since the callbacks may have made work for the caller.
 */
static int nic_group_poll(struct ferry_hal_sock_group *group, struct ferry_hal_sock_event *events,
			  uint32_t max, uint32_t timeout_us)
{
	struct mock_nic_sock *mine = NULL;
	int ran = 0;

	pthread_mutex_lock(&td_lock);
	for (struct mock_nic_sock **pp = &td_list; *pp;) {
		struct mock_nic_sock *s = *pp;
		if (s->td_group == group) {
			*pp = s->td_next;
			s->td_linked = 0;
			s->td_next = mine;
			mine = s;
		} else {
			pp = &s->td_next;
		}
	}
	pthread_mutex_unlock(&td_lock);
	while (mine) {
		struct mock_nic_sock *s = mine;
		mine = s->td_next;
		s->td_next = NULL;
		ran += td_run(s);
		if (s->req_issue) {
			mock_nic_resync_issue(s);
			ran++;
		}
		mock_nic_update_ready(s);
	}
	return ferry_hal_lsock_group_poll(group, events, max, ran ? 0 : timeout_us);
}

/* ---- query, queues ------------------------------------------------------------------------- */

static int nic_query(struct ferry_device *fdev, struct ferry_hal_nic_info *info)
{
	struct mock_nic *nic = mock_nic_of(fdev);
	if (!nic || !info) {
		MOCK_ERR("nic query: %s", !nic ? "not a mock device" : "NULL info");
		return -EINVAL;
	}
	int rc = ferry_hal_lsock_query(fdev, info);
	if (rc)
		return rc;
	if (nic->rdma)
		info->caps |= FERRY_HAL_NIC_CAP_RDMA;
	if (!nic->ddp)
		return 0;
	info->caps |= FERRY_HAL_NIC_CAP_DDP | FERRY_HAL_NIC_CAP_DDP_CRC;
	info->ddp_max_sges = nic->max_sges;
	info->ddp_max_io = nic->max_io;
	info->ddp_max_queues = 0;
	info->ddp_ndomains = 0;
	info->ddp_domains[info->ddp_ndomains++] = ferry_memdomain_system();
	if (nic->nic_domain)
		info->ddp_domains[info->ddp_ndomains++] = nic->nic_domain;
	return 0;
}

static int queue_refuse(struct mock_nic *nic, int rc, const char *why)
{
	atomic_fetch_add(&nic->st_queue_add_fail, 1);
	if (mock_nic_ratelimit(nic))
		MOCK_ERR("%s: ddp_queue_add: %s", nic->dev->name, why);
	return rc;
}

static int nic_ddp_queue_add(struct ferry_hal_sock *sock, const struct ferry_hal_ddp_queue_cfg *cfg)
{
	struct mock_nic_sock *s = sock_state(sock);
	if (!s) {
		MOCK_ERR("ddp_queue_add: not a connected mock NIC socket");
		return -EINVAL;
	}
	struct mock_nic *nic = s->nic;
	if (!nic->ddp)
		return queue_refuse(nic, -ENOTSUP, "receive offloads are off (ddp=0)");
	if (!cfg || cfg->size != sizeof(*cfg))
		return queue_refuse(nic, -EINVAL,
				    !cfg ? "NULL cfg"
					 : "cfg->size is not "
					   "sizeof(struct "
					   "ferry_hal_ddp_queue_cfg)");
	if (!cfg->resync)
		return queue_refuse(nic, -EINVAL, "no resync callback");
	if (cfg->pfv != 0)
		return queue_refuse(nic, -EINVAL, "PDU format version is not 0");
	if (cfg->hpda > 31 || cfg->cpda > 31)
		return queue_refuse(nic, -EINVAL, "HPDA/CPDA above 31");
	if (cfg->queue_size == 0 || cfg->queue_size > 65536)
		return queue_refuse(nic, -EINVAL, "queue_size not in 1..65536");
	if (s->offloaded)
		return queue_refuse(nic, -EINVAL, "the socket is offloaded already");
	if (ferry_hal_lsock_sock_error(sock) != 0)
		return queue_refuse(nic, -EINVAL, "the socket is not connected");
	if (cfg->rx_seq != s->delivered) {
		if (mock_nic_ratelimit(nic))
			MOCK_ERR("%s: ddp_queue_add: rx_seq %llu is not the %llu bytes received",
				 nic->dev->name, (unsigned long long)cfg->rx_seq,
				 (unsigned long long)s->delivered);
		atomic_fetch_add(&nic->st_queue_add_fail, 1);
		return -EINVAL;
	}
	if (mock_nic_draw(s, KNOB_QUEUE_FAIL))
		return queue_refuse(nic, -ENOSPC, "refused by the fault model (queue_fail_ppm)");

	uint32_t nmaps = cfg->queue_size + MOCK_NIC_MAP_SLACK;
	struct mock_ddp_map *maps = calloc(nmaps, sizeof(*maps));
	size_t cap = nic->pkt + MOCK_NIC_LOOKBACK + 64;
	uint32_t span_cap = (uint32_t)(cap / 8 + 16);
	uint8_t *buf = s->buf ? s->buf : malloc(cap);
	struct mock_span *spans = s->spans ? s->spans : calloc(span_cap, sizeof(*spans));
	int ok = maps && buf && spans;
	for (uint32_t i = 0; ok && i < nmaps; i++) {
		maps[i].seg = malloc(sizeof(struct iovec) * nic->max_sges);
		ok = maps[i].seg != NULL;
	}
	s->buf = buf;
	s->spans = spans;
	if (!ok) {
		for (uint32_t i = 0; maps && i < nmaps; i++)
			free(maps[i].seg);
		free(maps);
		return queue_refuse(nic, -ENOSPC, "out of memory for the queue's offload state");
	}
	s->cap = cap;
	s->span_cap = span_cap;
	s->maps = maps;
	s->nmaps = nmaps;
	s->cfg = *cfg;
	s->offloaded = 1;
	mock_nic_rx_start(s);
	atomic_fetch_add(&nic->st_queue_add, 1);
	return 0;
}

static void nic_ddp_queue_del(struct ferry_hal_sock *sock)
{
	struct mock_nic_sock *s = sock_state(sock);
	if (s)
		queue_end(s);
}

/* ---- per-command mappings ------------------------------------------------------------------ */

static int setup_refuse(struct mock_nic *nic, int rc, uint16_t cid, const char *why)
{
	atomic_fetch_add(&nic->st_setup_fail, 1);
	if (mock_nic_ratelimit(nic))
		MOCK_ERR("%s: ddp_setup cid %u: %s", nic->dev->name, cid, why);
	return rc;
}

static int nic_ddp_setup(struct ferry_hal_sock *sock, uint16_t cid, const struct ferry_mem *dest)
{
	struct mock_nic_sock *s = sock_state(sock);
	if (!s || !s->offloaded) {
		if (s)
			atomic_fetch_add(&s->nic->st_setup_fail, 1);
		MOCK_ERR("ddp_setup cid %u: the socket is not offloaded", cid);
		return -EINVAL;
	}
	struct mock_nic *nic = s->nic;
	struct mock_ddp_map *free_map = NULL;
	for (uint32_t i = 0; i < s->nmaps; i++) {
		struct mock_ddp_map *m = &s->maps[i];
		if (m->state == MAP_FREE) {
			if (!free_map)
				free_map = m;
		} else if (m->cid == cid) {
			return setup_refuse(nic, -EBUSY, cid,
					    m->state == MAP_MAPPED
						    ? "mapped already"
						    : "its teardown has not completed");
		}
	}
	if (!dest || !dest->iov || dest->iovcnt == 0)
		return setup_refuse(nic, -EINVAL, cid, "no destination");
	if (dest->iovcnt > nic->max_sges)
		return setup_refuse(nic, -EINVAL, cid, "more segments than ddp_max_sges");
	uint64_t len = 0;
	for (uint32_t i = 0; i < dest->iovcnt; i++)
		len += dest->iov[i].iov_len;
	if (len == 0 || len > nic->max_io)
		return setup_refuse(nic, -EINVAL, cid,
				    len ? "more bytes than ddp_max_io" : "0 bytes");
	struct ferry_memdomain *d = dest->domain;
	if (d == ferry_memdomain_system())
		d = NULL;
	if (d && d != nic->nic_domain)
		return setup_refuse(nic, -EXDEV, cid,
				    "the destination's domain is not one the NIC places into");
	uint32_t cnt = 0;
	int rc = mock_resolve(nic->dev, dest, len, 1, NULL, &cnt);
	if (rc != 0 && rc != -ENOBUFS) {
		char why[160];
		if (rc == FERRY_XFER_PAGE_FAULT) {
			mock_fault_explain(mock_fn_of(nic->dev, d), dest->iov, dest->iovcnt, 1, why,
					   sizeof(why));
			return setup_refuse(nic, -EFAULT, cid, why);
		}
		return setup_refuse(nic, -EINVAL, cid, "a NULL or short destination");
	}
	if (!free_map)
		return setup_refuse(nic, -ENOSPC, cid, "every mapping of the queue is in use");
	if (mock_nic_draw(s, KNOB_SETUP_FAIL))
		return setup_refuse(nic, -ENOSPC, cid,
				    "refused by the fault model (setup_fail_ppm)");
	free_map->state = MAP_MAPPED;
	free_map->cid = cid;
	free_map->domain = d;
	free_map->nseg = dest->iovcnt;
	free_map->len = len;
	memcpy(free_map->seg, dest->iov, sizeof(struct iovec) * dest->iovcnt);
	atomic_fetch_add(&nic->st_setup, 1);
	return 0;
}

static int nic_ddp_teardown(struct ferry_hal_sock *sock, uint16_t cid, ferry_hal_ddp_done_cb done,
			    void *ctx)
{
	struct mock_nic_sock *s = sock_state(sock);
	for (uint32_t i = 0; s && i < s->nmaps; i++) {
		struct mock_ddp_map *m = &s->maps[i];
		if (m->state != MAP_MAPPED || m->cid != cid)
			continue;
		/* Never completes here: the callback comes from the group's next poll (the
		 * socket is made ready so that poll does not sleep), queue_del() or close(). */
		m->state = MAP_TEARDOWN;
		m->done = done;
		m->done_ctx = ctx;
		m->tnext = NULL;
		if (s->td_tail)
			s->td_tail->tnext = m;
		else
			s->td_head = m;
		s->td_tail = m;
		mock_nic_due_link(s);
		mock_nic_update_ready(s);
		return 0;
	}
	MOCK_ERR("ddp_teardown cid %u: not mapped", cid);
	return -ENOENT;
}

static int nic_ddp_stats(struct ferry_device *fdev, struct ferry_hal_ddp_stats *st)
{
	struct mock_nic *nic = mock_nic_of(fdev);
	if (!nic || !st) {
		MOCK_ERR("ddp_stats: %s", !nic ? "not a mock device" : "NULL stats");
		return -EINVAL;
	}
	*st = (struct ferry_hal_ddp_stats){
		.queue_add = atomic_load(&nic->st_queue_add),
		.queue_add_fail = atomic_load(&nic->st_queue_add_fail),
		.queue_del = atomic_load(&nic->st_queue_del),
		.setup = atomic_load(&nic->st_setup),
		.setup_fail = atomic_load(&nic->st_setup_fail),
		.teardown = atomic_load(&nic->st_teardown),
		.drop = atomic_load(&nic->st_drop),
		.resync = atomic_load(&nic->st_resync),
		.resync_fail = atomic_load(&nic->st_resync_fail),
		.packets = atomic_load(&nic->st_packets),
		.bytes = atomic_load(&nic->st_bytes),
		.offloaded_bytes = atomic_load(&nic->st_offloaded),
		.crc_bytes = atomic_load(&nic->st_crc),
	};
	return 0;
}

/* A NULL member makes the SDK answer -ENOTSUP: with ddp=0 the ddp_* ops still exist but
 * queue_add refuses (-ENOTSUP), so one const table serves both settings. */
const struct ferry_hal_nic_ops mock_nic_ops = {
	.abi_version = FERRY_HAL_NIC_ABI_VERSION,
	.query = nic_query,
	.listen = ferry_hal_lsock_listen,
	.accept = nic_accept,
	.connect = nic_connect,
	.sock_error = ferry_hal_lsock_sock_error,
	.close = nic_close,
	.get_addr = ferry_hal_lsock_get_addr,
	.sendv = ferry_hal_lsock_sendv,
	.recvv = mock_nic_recvv,
	.group_create = ferry_hal_lsock_group_create,
	.group_destroy = ferry_hal_lsock_group_destroy,
	.group_add = ferry_hal_lsock_group_add,
	.group_remove = ferry_hal_lsock_group_remove,
	.group_poll = nic_group_poll,
	.sock_stats = ferry_hal_lsock_sock_stats,
	.group_want_out = ferry_hal_lsock_group_want_out,
	.ddp_queue_add = nic_ddp_queue_add,
	.ddp_queue_del = nic_ddp_queue_del,
	.ddp_setup = nic_ddp_setup,
	.ddp_teardown = nic_ddp_teardown,
	.ddp_resync = mock_nic_ddp_resync,
	.ddp_stats = nic_ddp_stats,
	.rdma = &mock_rdma_ops,
};

/* ---- device -------------------------------------------------------------------------------- */

int mock_nic_create(struct mock_dev *dev, const char *args)
{
	uint64_t ddp = 1, sges = MOCK_NIC_MAX_SGES, io = MOCK_NIC_MAX_IO,
		 pkt = MOCK_NIC_PKT_DEFAULT, seed = 1, ppm[KNOB_COUNT] = {0};
	int rc = mock_arg_u64(args, "ddp", 0, 0, 1, &ddp);
	if (!rc)
		rc = mock_arg_u64(args, "ddp_max_sges", 0, 1, MOCK_NIC_MAX_SGES, &sges);
	if (!rc)
		rc = mock_arg_u64(args, "ddp_max_io", 1, 4096, MOCK_NIC_MAX_IO, &io);
	if (!rc)
		rc = mock_arg_u64(args, "nic_pkt", 0, MOCK_NIC_PKT_MIN, MOCK_NIC_PKT_MAX, &pkt);
	if (!rc)
		rc = mock_arg_u64(args, "ddp_seed", 0, 0, UINT64_MAX, &seed);
	for (int k = 0; !rc && k < KNOB_COUNT; k++)
		rc = mock_arg_u64(args, knob_keys[k], 0, 0, 1000000, &ppm[k]);
	if (rc)
		return rc;

	struct mock_nic *nic = calloc(1, sizeof(*nic));
	if (!nic) {
		MOCK_ERR("%s: out of memory for the NIC", dev->name);
		return -ENOMEM;
	}
	nic->dev = dev;
	nic->ddp = (int)ddp;
	nic->max_sges = (uint32_t)sges;
	nic->max_io = (uint32_t)io;
	nic->pkt = (uint32_t)pkt;
	atomic_init(&nic->seed, seed);
	for (int k = 0; k < KNOB_COUNT; k++)
		atomic_init(&nic->ppm[k], (uint32_t)ppm[k]);
	for (uint32_t i = 0; i < dev->nfn; i++)
		if (strcmp(dev->fn[i].name, "nic") == 0)
			nic->nic_domain = dev->fn[i].domain;
	rc = mock_rdma_create(nic, args);
	if (rc) {
		free(nic);
		return rc;
	}
	rc = ferry_hal_lsock_dev_create(dev->fdev, MOCK_COMP, &dev->lsock);
	if (rc) {
		mock_rdma_destroy(nic);
		free(nic);
		return rc;
	}
	dev->nic = nic;
	return 0;
}

void mock_nic_destroy(struct mock_dev *dev)
{
	mock_rdma_destroy(dev->nic);
	ferry_hal_lsock_dev_destroy(dev->lsock);
	dev->lsock = NULL;
	free(dev->nic);
	dev->nic = NULL;
}

/* ---- control API (ferry/mock.h) ------------------------------------------------------------ */

FERRY_API int ferry_mock_nic_set_faults(struct ferry_device *fdev,
					const struct ferry_mock_nic_faults *f)
{
	struct mock_nic *nic = mock_nic_of(fdev);
	if (!nic || !f || f->size != sizeof(*f)) {
		MOCK_ERR("nic_set_faults: %s", !nic ? "not a mock device"
						    : "NULL or f->size is not sizeof(struct "
						      "ferry_mock_nic_faults)");
		return -EINVAL;
	}
	const uint32_t v[KNOB_COUNT] = {
		[KNOB_PLACE_MISS] = f->place_miss_ppm,
		[KNOB_CRC_MISS] = f->crc_miss_ppm,
		[KNOB_SETUP_FAIL] = f->setup_fail_ppm,
		[KNOB_QUEUE_FAIL] = f->queue_fail_ppm,
		[KNOB_RESYNC] = f->resync_ppm,
		[KNOB_RESYNC_WRONG] = f->resync_wrong_ppm,
		[KNOB_LIE] = f->lie_ppm,
	};
	for (int k = 0; k < KNOB_COUNT; k++) {
		if (v[k] > 1000000) {
			MOCK_ERR("nic_set_faults: %s %u above 1000000", knob_keys[k], v[k]);
			return -EINVAL;
		}
	}
	atomic_store(&nic->seed, f->seed);
	for (int k = 0; k < KNOB_COUNT; k++)
		atomic_store(&nic->ppm[k], v[k]);
	return 0;
}

FERRY_API int ferry_mock_nic_get_faults(struct ferry_device *fdev, struct ferry_mock_nic_faults *f)
{
	struct mock_nic *nic = mock_nic_of(fdev);
	if (!nic || !f || f->size != sizeof(*f)) {
		MOCK_ERR("nic_get_faults: %s", !nic ? "not a mock device"
						    : "NULL or f->size is not sizeof(struct "
						      "ferry_mock_nic_faults)");
		return -EINVAL;
	}
	*f = (struct ferry_mock_nic_faults){
		.size = sizeof(*f),
		.place_miss_ppm = atomic_load(&nic->ppm[KNOB_PLACE_MISS]),
		.crc_miss_ppm = atomic_load(&nic->ppm[KNOB_CRC_MISS]),
		.setup_fail_ppm = atomic_load(&nic->ppm[KNOB_SETUP_FAIL]),
		.queue_fail_ppm = atomic_load(&nic->ppm[KNOB_QUEUE_FAIL]),
		.resync_ppm = atomic_load(&nic->ppm[KNOB_RESYNC]),
		.resync_wrong_ppm = atomic_load(&nic->ppm[KNOB_RESYNC_WRONG]),
		.lie_ppm = atomic_load(&nic->ppm[KNOB_LIE]),
		.seed = atomic_load(&nic->seed),
	};
	return 0;
}
