/*
 * The registration map over a fake RDMA backend registered here (its mr_reg / mr_reg_mem /
 * mr_dereg record every call; the rest are stubs) and fake page-table domains whose
 * translate, export_local and map_gen the tests control: system memory (exact-range
 * registration, cache hits, sub-range hits, access rights), pinned regions, a NIC domain
 * registered directly, one contiguous host range translated into the NIC domain or exported
 * into several segments with the right addresses and keys, the generation change that
 * deregisters exactly the ranges no longer mapped (at poll and at the next map_mem),
 * untranslatable and unregistrable memory (-EFAULT / -EXDEV, refused, the reason text),
 * -ENOBUFS sizing, the device's region size limit, LRU eviction, concurrent use from threads, destroy, bad arguments.
 * References: a held registration survives eviction pressure (the cache exceeds max_regions,
 * counted) and becomes evictable once released; a generation change invalidates even a held
 * one (a zombie until its release); a device reusing a zombie's keys gets no clash; a failed
 * call holds nothing; releases of unknown, foreign or twice-released segments are refused
 * (all or nothing), pinned ones accepted.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include <ferry/device.h>
#include <ferry/log.h>
#include <ferry/hal/backend.h>
#include <ferry/hal/nic.h>
#include <ferry/hal/rdma.h>
#include <ferry/module/memdomain.h>
#include <ferry/module/rdma.h>

#define PG 4096u
#define NPG 16u

/* ---- fake domains: a page table from domain addresses to local memory / target addresses -- */

struct fdom {
	struct ferry_memdomain *d;
	uint64_t base;
	uint8_t valid[NPG];
	uint8_t *local[NPG];  /* export_local: the page's backing */
	uint64_t target[NPG]; /* translate: the page's address in the target domain */
	uint64_t gen;
	int translate_calls, export_calls, last_write;
};

static uint8_t backing[NPG * 4][PG] __attribute__((aligned(4096)));
static struct fdom host, via, nic, opaque;

static int fdom_page(struct fdom *f, uint64_t a, uint32_t *pg)
{
	if (a < f->base || a - f->base >= (uint64_t)NPG * PG)
		return -EFAULT;
	*pg = (uint32_t)((a - f->base) / PG);
	return f->valid[*pg] ? 0 : -EFAULT;
}

/* Walk [a, a + l) page by page; emit(ctx, value-of-byte, len) merged when contiguous. */
typedef uint64_t (*fdom_xlate)(struct fdom *f, uint32_t pg);

static uint64_t x_local(struct fdom *f, uint32_t pg)
{
	return (uint64_t)(uintptr_t)f->local[pg];
}

static uint64_t x_target(struct fdom *f, uint32_t pg)
{
	return f->target[pg];
}

static int fdom_walk(struct fdom *f, const struct iovec *iov, uint32_t cnt, fdom_xlate x,
		     uint64_t *addr, uint64_t *len, uint32_t cap, uint32_t *n)
{
	uint32_t k = 0;
	for (uint32_t i = 0; i < cnt; i++) {
		uint64_t a = (uintptr_t)iov[i].iov_base, left = iov[i].iov_len;
		while (left) {
			uint32_t pg;
			if (fdom_page(f, a, &pg))
				return -EFAULT;
			uint64_t off = (a - f->base) % PG, chunk = PG - off;
			if (chunk > left)
				chunk = left;
			uint64_t t = x(f, pg) + off;
			if (k && addr && k <= cap && addr[k - 1] + len[k - 1] == t) {
				len[k - 1] += chunk;
			} else {
				if (k < cap && addr) {
					addr[k] = t;
					len[k] = chunk;
				}
				k++;
			}
			a += chunk;
			left -= chunk;
		}
	}
	*n = k;
	return k > cap ? -ENOBUFS : 0;
}

static int f_translate(struct ferry_memdomain *domain, void *ctx, const struct iovec *src,
		       uint32_t src_cnt, struct ferry_memdomain *target, struct ferry_mem *out)
{
	struct fdom *f = ferry_memdomain_get_ctx(domain);
	f->translate_calls++;
	if (target != nic.d && target != via.d)
		return -EXDEV;
	uint64_t a[64], l[64];
	uint32_t n;
	int rc = fdom_walk(f, src, src_cnt, x_target, a, l, out->iovcnt < 64 ? out->iovcnt : 64, &n);
	if (rc == -ENOBUFS)
		out->iovcnt = n;
	if (rc)
		return rc;
	for (uint32_t i = 0; i < n; i++)
		out->iov[i] = (struct iovec){.iov_base = (void *)(uintptr_t)a[i], .iov_len = l[i]};
	out->iovcnt = n;
	out->domain = target;
	out->domain_ctx = ctx;
	return 0;
}

static int f_export(struct ferry_memdomain *domain, void *ctx, const struct iovec *iov,
		    uint32_t iovcnt, uint32_t flags, struct ferry_mem_backing *out, uint32_t *n)
{
	struct fdom *f = ferry_memdomain_get_ctx(domain);
	int write = (flags & FERRY_MEM_EXPORT_F_WRITE) != 0;
	f->export_calls++;
	f->last_write = write;
	uint64_t a[64], l[64];
	uint32_t k;
	int rc = fdom_walk(f, iov, iovcnt, x_local, a, l, *n < 64 ? *n : 64, &k);
	if (rc == -ENOBUFS)
		*n = k;
	if (rc)
		return rc;
	for (uint32_t i = 0; i < k; i++)
		out[i] = (struct ferry_mem_backing){.local = (void *)(uintptr_t)a[i], .len = l[i],
						    .fd = -1};
	*n = k;
	return 0;
}

static uint64_t f_gen(struct ferry_memdomain *domain)
{
	return ((struct fdom *)ferry_memdomain_get_ctx(domain))->gen;
}

static const struct ferry_memdomain_ops host_ops = {.abi_version = FERRY_MEMDOMAIN_OPS_ABI,
						    .translate = f_translate,
						    .export_local = f_export,
						    .map_gen = f_gen};
static const struct ferry_memdomain_ops via_ops = {.abi_version = FERRY_MEMDOMAIN_OPS_ABI,
						   .export_local = f_export,
						   .map_gen = f_gen};
static const struct ferry_memdomain_ops nic_ops = {.abi_version = FERRY_MEMDOMAIN_OPS_ABI};
/* Neither reachable by the NIC nor exportable. */
static const struct ferry_memdomain_ops opaque_ops = {.abi_version = FERRY_MEMDOMAIN_OPS_ABI,
						      .translate = f_translate};

static void fdom_create(struct fdom *f, const char *name, const struct ferry_memdomain_ops *ops,
			uint64_t base, uint32_t first_backing)
{
	memset(f, 0, sizeof(*f));
	f->base = base;
	for (uint32_t i = 0; i < NPG; i++) {
		f->valid[i] = 1;
		f->local[i] = backing[first_backing + i];
		f->target[i] = 0;
	}
	struct ferry_memdomain_opts o = {.size = sizeof(o), .type = FERRY_MEMDOMAIN_PCIE,
					 .name = name, .ops = ops, .user_ctx = f};
	cr_assert_eq(ferry_memdomain_create(&o, &f->d), 0, "create %s", name);
}

/* ---- fake RDMA backend ------------------------------------------------------------------ */

struct ferry_hal_rdma_mr {
	int id, live;
	int kid; /* its keys are 0x1000 / 0x2000 + kid (kid = id unless alias_next said) */
	uint64_t addr, len;
	uint32_t access;
	struct ferry_memdomain *dom; /* NULL: mr_reg */
};

#define MAXMR 1024
static struct ferry_hal_rdma_mr mrs[MAXMR];
static int nmr, nlive, ndereg, dereg_ids[MAXMR];
static int reg_mem_fault;                 /* mr_reg_mem returns -EFAULT */
static uint64_t fake_max_mr = 1ull << 32; /* the device's max_mr_size */
static int alias_next = -1; /* >= 0: the next region reuses the keys of region alias_next */

static int r_query(struct ferry_device *dev, struct ferry_hal_rdma_info *info)
{
	memset(info, 0, sizeof(*info));
	strcpy(info->name, "fake0");
	info->max_sge = 4;
	info->max_qp_wr = 64;
	info->max_cqe = 256;
	info->max_mr_size = fake_max_mr;
	info->ndomains = 1;
	info->domains[0] = nic.d;
	return 0;
}

static struct ferry_hal_rdma_mr *mr_new(uint64_t addr, size_t len, uint32_t access,
					struct ferry_memdomain *dom)
{
	cr_assert_lt(nmr, MAXMR);
	struct ferry_hal_rdma_mr *m = &mrs[nmr];
	*m = (struct ferry_hal_rdma_mr){.id = nmr, .kid = alias_next >= 0 ? alias_next : nmr,
					.live = 1, .addr = addr, .len = len, .access = access,
					.dom = dom};
	alias_next = -1;
	nmr++;
	nlive++;
	return m;
}

static int r_mr_reg(struct ferry_device *dev, void *addr, size_t len, uint32_t access,
		    struct ferry_hal_rdma_mr **out)
{
	*out = mr_new((uintptr_t)addr, len, access, NULL);
	return 0;
}

static int r_mr_reg_mem(struct ferry_device *dev, struct ferry_memdomain *domain, uint64_t addr,
			size_t len, uint32_t access, struct ferry_hal_rdma_mr **out)
{
	if (domain != nic.d)
		return -EXDEV;
	if (reg_mem_fault)
		return -EFAULT;
	*out = mr_new(addr, len, access, domain);
	return 0;
}

static void r_mr_dereg(struct ferry_hal_rdma_mr *mr)
{
	if (!mr)
		return;
	cr_assert(mr->live, "mr %d deregistered twice", mr->id);
	mr->live = 0;
	nlive--;
	dereg_ids[ndereg++] = mr->id;
}

static void r_mr_keys(const struct ferry_hal_rdma_mr *mr, struct ferry_hal_rdma_mr_keys *k)
{
	*k = (struct ferry_hal_rdma_mr_keys){.addr = mr->addr, .len = mr->len,
					     .lkey = 0x1000u + (uint32_t)mr->kid,
					     .rkey = 0x2000u + (uint32_t)mr->kid};
}

static int r_cq_create(struct ferry_device *d, uint32_t depth, struct ferry_hal_rdma_cq **o)
{
	return -ENOTSUP;
}
static void r_cq_destroy(struct ferry_hal_rdma_cq *cq) {}
static int r_cq_poll(struct ferry_hal_rdma_cq *cq, struct ferry_hal_rdma_wc *wc, uint32_t max)
{
	return -ENOTSUP;
}
static int r_listen(struct ferry_device *d, const char *a, uint32_t b,
		    struct ferry_hal_rdma_listener **o)
{
	return -ENOTSUP;
}
static int r_listener_addr(struct ferry_hal_rdma_listener *l, char *buf, size_t len)
{
	return -ENOTSUP;
}
static void r_listener_close(struct ferry_hal_rdma_listener *l) {}
static int r_get_request(struct ferry_hal_rdma_listener *l, struct ferry_hal_rdma_req **o,
			 const void **p, uint32_t *pl)
{
	return -EAGAIN;
}
static int r_accept(struct ferry_hal_rdma_req *r, const struct ferry_hal_rdma_qp_attr *a,
		    const void *p, uint32_t pl, struct ferry_hal_rdma_qp **o)
{
	return -ENOTSUP;
}
static void r_reject(struct ferry_hal_rdma_req *r, const void *p, uint32_t pl) {}
static int r_connect(struct ferry_device *d, const char *addr,
		     const struct ferry_hal_rdma_qp_attr *a, const void *p, uint32_t pl,
		     uint32_t t, struct ferry_hal_rdma_qp **o)
{
	return -ENOTSUP;
}
static int r_qp_state(struct ferry_hal_rdma_qp *qp, const void **p, uint32_t *pl)
{
	return -ENOTSUP;
}
static void r_qp_destroy(struct ferry_hal_rdma_qp *qp) {}
static int r_qp_addr(struct ferry_hal_rdma_qp *qp, int peer, char *buf, size_t len)
{
	return -ENOTSUP;
}
static int r_post_recv(struct ferry_hal_rdma_qp *qp, uint64_t id,
		       const struct ferry_hal_rdma_sge *s, uint32_t n)
{
	return -ENOTSUP;
}
static int r_post_send(struct ferry_hal_rdma_qp *qp, const struct ferry_hal_rdma_wr *wr,
		       const struct ferry_hal_rdma_wr **bad)
{
	return -ENOTSUP;
}

static const struct ferry_hal_rdma_ops rdma_ops = {
	.abi_version = FERRY_HAL_RDMA_ABI_VERSION, .query = r_query, .mr_reg = r_mr_reg,
	.mr_reg_mem = r_mr_reg_mem, .mr_dereg = r_mr_dereg, .mr_keys = r_mr_keys,
	.cq_create = r_cq_create, .cq_destroy = r_cq_destroy, .cq_poll = r_cq_poll,
	.listen = r_listen, .listener_addr = r_listener_addr, .listener_close = r_listener_close,
	.get_request = r_get_request, .accept = r_accept, .reject = r_reject,
	.connect = r_connect, .qp_state = r_qp_state, .qp_destroy = r_qp_destroy,
	.qp_addr = r_qp_addr, .post_recv = r_post_recv, .post_send = r_post_send};

static int n_query(struct ferry_device *d, struct ferry_hal_nic_info *i)
{
	memset(i, 0, sizeof(*i));
	i->caps = FERRY_HAL_NIC_CAP_RDMA;
	return 0;
}
static int n_listen(struct ferry_device *d, const struct ferry_hal_sock_opts *o,
		    struct ferry_hal_sock **s)
{
	return -ENOTSUP;
}
static int n_accept(struct ferry_hal_sock *l, struct ferry_hal_sock **s)
{
	return -ENOTSUP;
}
static int n_connect(struct ferry_device *d, const struct ferry_hal_sock_opts *o,
		     struct ferry_hal_sock **s)
{
	return -ENOTSUP;
}
static int n_sock_error(struct ferry_hal_sock *s)
{
	return -ENOTSUP;
}
static void n_close(struct ferry_hal_sock *s) {}
static int n_get_addr(struct ferry_hal_sock *s, int peer, char *buf, size_t len)
{
	return -ENOTSUP;
}
static ssize_t n_sendv(struct ferry_hal_sock *s, const struct iovec *iov, uint32_t n)
{
	return -ENOTSUP;
}
static ssize_t n_recvv(struct ferry_hal_sock *s, const struct iovec *iov, uint32_t n,
		       uint32_t *flags)
{
	return -ENOTSUP;
}
static int n_group_create(struct ferry_device *d, struct ferry_hal_sock_group **g)
{
	return -ENOTSUP;
}
static void n_group_destroy(struct ferry_hal_sock_group *g) {}
static int n_group_add(struct ferry_hal_sock_group *g, struct ferry_hal_sock *s, void *c)
{
	return -ENOTSUP;
}
static int n_group_remove(struct ferry_hal_sock_group *g, struct ferry_hal_sock *s)
{
	return -ENOTSUP;
}
static int n_group_poll(struct ferry_hal_sock_group *g, struct ferry_hal_sock_event *e,
			uint32_t max, uint32_t t)
{
	return -ENOTSUP;
}

static const struct ferry_hal_nic_ops nic_hal_ops = {
	.abi_version = FERRY_HAL_NIC_ABI_VERSION, .query = n_query, .listen = n_listen,
	.accept = n_accept, .connect = n_connect, .sock_error = n_sock_error, .close = n_close,
	.get_addr = n_get_addr, .sendv = n_sendv, .recvv = n_recvv,
	.group_create = n_group_create, .group_destroy = n_group_destroy,
	.group_add = n_group_add, .group_remove = n_group_remove, .group_poll = n_group_poll,
	.rdma = &rdma_ops};

static int b_open(struct ferry_device *dev, const char *args)
{
	return 0;
}
static void b_close(struct ferry_device *dev) {}

static const struct ferry_hal_backend fake = {.abi_version = FERRY_HAL_ABI_VERSION,
					      .name = "rmapfake",
					      .open = b_open,
					      .close = b_close,
					      .nic = &nic_hal_ops};
static const struct ferry_hal_backend nordma = {.abi_version = FERRY_HAL_ABI_VERSION,
						.name = "rmapplain",
						.open = b_open,
						.close = b_close};

static struct ferry_device *dev;
static struct ferry_rdma_map *map;

#define HOST_BASE 0x100000ull
#define VIA_BASE 0x800000ull
#define NIC_BASE 0x40000000ull

static void setup(void)
{
	cr_assert_eq(ferry_hal_register(&fake), 0);
	cr_assert_eq(ferry_device_open("rmapfake", "", &dev), 0);
	fdom_create(&nic, "rmap-nic", &nic_ops, NIC_BASE, 0);
	fdom_create(&via, "rmap-via", &via_ops, VIA_BASE, NPG);
	fdom_create(&host, "rmap-host", &host_ops, HOST_BASE, 2 * NPG);
	fdom_create(&opaque, "rmap-opaque", &opaque_ops, HOST_BASE, 3 * NPG);
	/* Host page i maps to NIC/via address base + PG * i by default. */
	for (uint32_t i = 0; i < NPG; i++)
		host.target[i] = 0; /* set per test */
	struct ferry_rdma_map_opts o = {.size = sizeof(o), .dev = dev, .max_regions = 0};
	cr_assert_eq(ferry_rdma_map_create(&o, &map), 0);
}

static void teardown(void)
{
	ferry_rdma_map_destroy(map);
	ferry_memdomain_destroy(opaque.d);
	ferry_memdomain_destroy(host.d);
	ferry_memdomain_destroy(via.d);
	ferry_memdomain_destroy(nic.d);
	ferry_device_close(dev);
}

TestSuite(rdma_map, .init = setup, .fini = teardown, .timeout = 30);

static struct ferry_rdma_map_stats stats(void)
{
	struct ferry_rdma_map_stats s;
	cr_assert_eq(ferry_rdma_map_get_stats(map, &s), 0);
	return s;
}

static int map1(struct ferry_memdomain *d, uint64_t addr, uint64_t len,
		struct ferry_memdomain *v, uint32_t access, struct ferry_rdma_seg *seg,
		uint32_t *n)
{
	struct iovec iov = {.iov_base = (void *)(uintptr_t)addr, .iov_len = len};
	struct ferry_mem mem = {.domain = d, .iov = &iov, .iovcnt = 1};
	return ferry_rdma_map_mem(map, &mem, v, access, seg, n);
}

#define RR FERRY_HAL_RDMA_ACCESS_REMOTE_READ
#define RW (FERRY_HAL_RDMA_ACCESS_REMOTE_WRITE | FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE)

static void seg_is(const struct ferry_rdma_seg *s, uint64_t addr, uint32_t len, int mr)
{
	cr_assert_eq(s->addr, addr, "addr %#lx want %#lx", (unsigned long)s->addr,
		     (unsigned long)addr);
	cr_assert_eq(s->len, len, "len %u want %u", s->len, len);
	cr_assert_eq(s->lkey, 0x1000u + (uint32_t)mr, "lkey %#x want mr %d", s->lkey, mr);
	cr_assert_eq(s->rkey, 0x2000u + (uint32_t)mr, "rkey %#x want mr %d", s->rkey, mr);
}

Test(rdma_map, system_memory_registered_once)
{
	static uint8_t buf[3 * PG];
	struct ferry_rdma_seg seg[4];
	uint32_t n = 4;
	cr_assert_eq(map1(NULL, (uintptr_t)buf, sizeof(buf), NULL, RW, seg, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(nmr, 1);
	cr_assert_eq(mrs[0].addr, (uintptr_t)buf);
	cr_assert_eq(mrs[0].len, sizeof(buf));
	cr_assert_eq(mrs[0].access, RW);
	cr_assert_null(mrs[0].dom);
	seg_is(&seg[0], (uintptr_t)buf, sizeof(buf), 0);
	/* The same range and a range inside it: hits, no second registration. */
	n = 4;
	cr_assert_eq(map1(ferry_memdomain_system(), (uintptr_t)buf, sizeof(buf), NULL, RW, seg, &n),
		     0);
	n = 4;
	cr_assert_eq(map1(NULL, (uintptr_t)buf + 100, 200, NULL, FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE,
			  seg, &n),
		     0);
	seg_is(&seg[0], (uintptr_t)buf + 100, 200, 0);
	cr_assert_eq(nmr, 1);
	struct ferry_rdma_map_stats s = stats();
	cr_assert_eq(s.hits, 2);
	cr_assert_eq(s.misses, 1);
	cr_assert_eq(s.registrations, 1);
	cr_assert_eq(s.regions, 1);
	/* Access not granted by the cached one: a new registration with exactly that access. */
	n = 4;
	cr_assert_eq(map1(NULL, (uintptr_t)buf, PG, NULL, RR, seg, &n), 0);
	cr_assert_eq(nmr, 2);
	cr_assert_eq(mrs[1].access, RR);
	seg_is(&seg[0], (uintptr_t)buf, PG, 1);
	/* Partly outside the cached range: a new one. */
	n = 4;
	cr_assert_eq(map1(NULL, (uintptr_t)buf + PG, 2 * PG + 1, NULL, RW, seg, &n), 0);
	cr_assert_eq(nmr, 3);
}

Test(rdma_map, pinned_region)
{
	static uint8_t pool[8 * PG];
	cr_assert_eq(ferry_rdma_map_register(map, pool, sizeof(pool), RW | RR), 0);
	cr_assert_eq(nmr, 1);
	struct ferry_rdma_seg seg[4];
	struct iovec iov[3] = {{pool + 10, 100}, {pool + 5 * PG, PG}, {pool + 7 * PG, PG}};
	struct ferry_mem mem = {.iov = iov, .iovcnt = 3};
	uint32_t n = 4;
	cr_assert_eq(ferry_rdma_map_mem(map, &mem, NULL, RR, seg, &n), 0);
	cr_assert_eq(n, 3);
	cr_assert_eq(nmr, 1, "no registration inside the pinned region");
	seg_is(&seg[0], (uintptr_t)pool + 10, 100, 0);
	seg_is(&seg[1], (uintptr_t)pool + 5 * PG, PG, 0);
	seg_is(&seg[2], (uintptr_t)pool + 7 * PG, PG, 0);
	cr_assert_eq(stats().hits, 3);
	/* One byte past the end: registered on its own. */
	n = 4;
	cr_assert_eq(map1(NULL, (uintptr_t)pool + 7 * PG, PG + 1, NULL, RR, seg, &n), 0);
	cr_assert_eq(nmr, 2);
	cr_assert_eq(ferry_rdma_map_register(map, NULL, 10, RR), -EINVAL);
	cr_assert_eq(ferry_rdma_map_register(map, pool, 0, RR), -EINVAL);
	cr_assert_eq(ferry_rdma_map_register(NULL, pool, 10, RR), -EINVAL);
	cr_assert_eq(stats().regions, 2);
}

Test(rdma_map, nic_domain_registered_directly)
{
	struct ferry_rdma_seg seg[2];
	uint32_t n = 2;
	cr_assert_eq(map1(nic.d, NIC_BASE + 0x200, 3 * PG, NULL, RW, seg, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(nmr, 1);
	cr_assert_eq(mrs[0].dom, nic.d);
	cr_assert_eq(mrs[0].addr, NIC_BASE + 0x200);
	cr_assert_eq(mrs[0].len, 3 * PG);
	seg_is(&seg[0], NIC_BASE + 0x200, 3 * PG, 0);
	n = 2;
	cr_assert_eq(map1(nic.d, NIC_BASE + PG, PG, NULL, RW, seg, &n), 0);
	seg_is(&seg[0], NIC_BASE + PG, PG, 0);
	cr_assert_eq(nmr, 1);
	cr_assert_eq(host.translate_calls + host.export_calls, 0);
}

Test(rdma_map, translated_into_nic_domain_per_segment)
{
	/* Host pages 0, 1 → NIC pages 5, 6 (contiguous); host page 2 → NIC page 1. */
	host.target[0] = NIC_BASE + 5 * PG;
	host.target[1] = NIC_BASE + 6 * PG;
	host.target[2] = NIC_BASE + 1 * PG;
	struct ferry_rdma_seg seg[4];
	uint32_t n = 4;
	cr_assert_eq(map1(host.d, HOST_BASE + 0x100, 3 * PG - 0x200, nic.d, RW, seg, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(nmr, 2);
	cr_assert_eq(mrs[0].dom, nic.d);
	cr_assert_eq(mrs[0].addr, NIC_BASE + 5 * PG + 0x100);
	cr_assert_eq(mrs[0].len, 2 * PG - 0x100);
	cr_assert_eq(mrs[1].addr, NIC_BASE + PG);
	cr_assert_eq(mrs[1].len, PG - 0x100);
	seg_is(&seg[0], NIC_BASE + 5 * PG + 0x100, 2 * PG - 0x100, 0);
	seg_is(&seg[1], NIC_BASE + PG, PG - 0x100, 1);
	/* Again: translated again, found registered. */
	n = 4;
	cr_assert_eq(map1(host.d, HOST_BASE + 0x100, 3 * PG - 0x200, nic.d, RW, seg, &n), 0);
	cr_assert_eq(nmr, 2);
	cr_assert_eq(host.translate_calls, 2);
	struct ferry_rdma_map_stats s = stats();
	cr_assert_eq(s.hits, 2);
	cr_assert_eq(s.misses, 2);
	cr_assert_eq(host.export_calls, 0, "a NIC domain needs no export");
}

Test(rdma_map, exported_local_backing_per_segment)
{
	/* Host pages 3, 4 backed by consecutive local pages; page 5 elsewhere. */
	host.local[3] = backing[40];
	host.local[4] = backing[41];
	host.local[5] = backing[10];
	struct ferry_rdma_seg seg[4];
	uint32_t n = 4;
	cr_assert_eq(map1(host.d, HOST_BASE + 3 * PG, 3 * PG, NULL, RR, seg, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(nmr, 2);
	cr_assert_null(mrs[0].dom);
	cr_assert_eq(mrs[0].addr, (uintptr_t)backing[40]);
	cr_assert_eq(mrs[0].len, 2 * PG);
	cr_assert_eq(mrs[1].addr, (uintptr_t)backing[10]);
	cr_assert_eq(mrs[1].len, PG);
	seg_is(&seg[0], (uintptr_t)backing[40], 2 * PG, 0);
	seg_is(&seg[1], (uintptr_t)backing[10], PG, 1);
	/* The local pages are not system memory of the map: a system lookup does not use them. */
	n = 4;
	cr_assert_eq(map1(NULL, (uintptr_t)backing[40], PG, NULL, RR, seg, &n), 0);
	cr_assert_eq(nmr, 3);
}

Test(rdma_map, via_domain_translated_then_exported)
{
	/* Host page 0 → via page 2, host page 1 → via page 7; via pages are backed locally. */
	host.target[0] = VIA_BASE + 2 * PG;
	host.target[1] = VIA_BASE + 7 * PG;
	struct ferry_rdma_seg seg[4];
	uint32_t n = 4;
	cr_assert_eq(map1(host.d, HOST_BASE, 2 * PG, via.d, RW, seg, &n), 0);
	cr_assert_eq(n, 2);
	seg_is(&seg[0], (uintptr_t)via.local[2], PG, 0);
	seg_is(&seg[1], (uintptr_t)via.local[7], PG, 1);
	cr_assert_eq(host.export_calls, 0, "the via domain's memory is exported");
	cr_assert_gt(via.export_calls, 0);
}

Test(rdma_map, generation_change_deregisters_exactly_the_unmapped)
{
	host.local[0] = backing[50];
	host.local[1] = backing[52];
	host.local[2] = backing[54];
	struct ferry_rdma_seg seg[4];
	uint32_t n = 4;
	cr_assert_eq(map1(host.d, HOST_BASE, 3 * PG, NULL, RR, seg, &n), 0);
	cr_assert_eq(n, 3);
	cr_assert_eq(nmr, 3);
	cr_assert_eq(ferry_rdma_map_poll(map), 0, "no change, nothing to do");
	/* The host unmaps page 1. */
	host.valid[1] = 0;
	host.gen++;
	cr_assert_eq(ferry_rdma_map_poll(map), 1);
	cr_assert_eq(ndereg, 1);
	cr_assert_eq(dereg_ids[0], 1, "the registration of page 1, no other");
	cr_assert(mrs[0].live && !mrs[1].live && mrs[2].live);
	struct ferry_rdma_map_stats s = stats();
	cr_assert_eq(s.invalidations, 1);
	cr_assert_eq(s.regions, 2);
	cr_assert_eq(ferry_rdma_map_poll(map), 0);
	/* Page 0 still served by its registration. */
	n = 4;
	cr_assert_eq(map1(host.d, HOST_BASE, PG, NULL, RR, seg, &n), 0);
	seg_is(&seg[0], (uintptr_t)backing[50], PG, 0);
	/* Page 2 remapped to other memory and page 0 unmapped, seen at the next map_mem (no
	 * poll): both deregistered before anything is handed out. */
	host.local[2] = backing[60];
	host.valid[0] = 0;
	host.gen++;
	n = 4;
	cr_assert_eq(map1(host.d, HOST_BASE + 2 * PG, PG, NULL, RR, seg, &n), 0);
	cr_assert_eq(ndereg, 3);
	cr_assert(!mrs[0].live && !mrs[2].live);
	cr_assert_eq(nmr, 4);
	seg_is(&seg[0], (uintptr_t)backing[60], PG, 3);
	cr_assert_eq(stats().invalidations, 3);
}

Test(rdma_map, untranslatable_is_efault_with_reason)
{
	host.target[0] = NIC_BASE;
	host.valid[1] = 0;
	struct ferry_rdma_seg seg[4];
	uint32_t n = 4;
	ferry_set_last_error(NULL, NULL);
	cr_assert_eq(map1(host.d, HOST_BASE, 2 * PG, nic.d, RW, seg, &n), -EFAULT);
	cr_assert_eq(stats().refused, 1);
	cr_assert_eq(nmr, 0);
	const char *e = ferry_last_error();
	cr_assert(strstr(e, "rmap-host") && strstr(e, "rmap-nic") && strstr(e, "not mapped"),
		  "reason: %s", e);
	cr_assert(strstr(e, "0x100000"), "names the address: %s", e);
	/* The same through the export path. */
	n = 4;
	cr_assert_eq(map1(host.d, HOST_BASE + PG, 100, NULL, RW, seg, &n), -EFAULT);
	cr_assert_eq(stats().refused, 2);
	e = ferry_last_error();
	cr_assert(strstr(e, "rmap-host") && strstr(e, "0x101000") && strstr(e, "not mapped"),
		  "reason: %s", e);
	/* Outside the domain altogether. */
	n = 4;
	cr_assert_eq(map1(host.d, 0x10, 100, NULL, RW, seg, &n), -EFAULT);
	/* A wrapping range. */
	n = 4;
	cr_assert_eq(map1(host.d, UINT64_MAX - 10, 100, NULL, RW, seg, &n), -EFAULT);
	cr_assert(strstr(ferry_last_error(), "wraps"), "%s", ferry_last_error());
	/* The NIC refuses the range. */
	reg_mem_fault = 1;
	n = 4;
	cr_assert_eq(map1(nic.d, NIC_BASE, 100, NULL, RW, seg, &n), -EFAULT);
	cr_assert(strstr(ferry_last_error(), "rmap-nic"), "%s", ferry_last_error());
	cr_assert_eq(stats().refused, 5);
	cr_assert_eq(nmr, 0);
}

Test(rdma_map, no_way_to_register_is_exdev)
{
	struct ferry_rdma_seg seg[4];
	uint32_t n = 4;
	cr_assert_eq(map1(opaque.d, HOST_BASE, PG, NULL, RW, seg, &n), -EXDEV);
	cr_assert(strstr(ferry_last_error(), "rmap-opaque"), "%s", ferry_last_error());
	cr_assert_eq(stats().refused, 1);
	/* Translation into a domain it cannot reach. */
	n = 4;
	cr_assert_eq(map1(opaque.d, HOST_BASE, PG, host.d, RW, seg, &n), -EXDEV);
	cr_assert(strstr(ferry_last_error(), "rmap-host"), "%s", ferry_last_error());
	cr_assert_eq(stats().refused, 2);
	cr_assert_eq(nmr, 0);
}

Test(rdma_map, enobufs_says_how_many)
{
	for (uint32_t i = 0; i < 4; i++)
		host.local[i] = backing[20 + 2 * i];
	struct ferry_rdma_seg seg[4];
	uint32_t n = 2;
	cr_assert_eq(map1(host.d, HOST_BASE, 4 * PG, NULL, RR, seg, &n), -ENOBUFS);
	cr_assert_eq(n, 4);
	cr_assert_eq(nmr, 0, "nothing registered");
	cr_assert_eq(map1(host.d, HOST_BASE, 4 * PG, NULL, RR, seg, &n), 0);
	cr_assert_eq(n, 4);
	for (uint32_t i = 0; i < 4; i++)
		seg_is(&seg[i], (uintptr_t)backing[20 + 2 * i], PG, (int)i);
}

Test(rdma_map, lru_eviction_deregisters)
{
	ferry_rdma_map_destroy(map);
	struct ferry_rdma_map_opts o = {.size = sizeof(o), .dev = dev, .max_regions = 2};
	cr_assert_eq(ferry_rdma_map_create(&o, &map), 0);
	static uint8_t b[4][PG];
	struct ferry_rdma_seg seg[4];
	uint32_t n;
	for (int i = 0; i < 2; i++) {
		n = 4;
		cr_assert_eq(map1(NULL, (uintptr_t)b[i], PG, NULL, RR, seg, &n), 0);
		cr_assert_eq(ferry_rdma_map_release(map, seg, n), 0);
	}
	n = 4; /* touch b[0]: b[1] is now the least recently used */
	cr_assert_eq(map1(NULL, (uintptr_t)b[0], PG, NULL, RR, seg, &n), 0);
	cr_assert_eq(ferry_rdma_map_release(map, seg, n), 0);
	n = 4;
	cr_assert_eq(map1(NULL, (uintptr_t)b[2], PG, NULL, RR, seg, &n), 0);
	cr_assert_eq(ferry_rdma_map_release(map, seg, n), 0);
	cr_assert_eq(ndereg, 1);
	cr_assert_eq(dereg_ids[0], 1, "b[1]'s registration evicted");
	struct ferry_rdma_map_stats s = stats();
	cr_assert_eq(s.regions, 2);
	cr_assert_eq(s.invalidations, 1);
	n = 4;
	cr_assert_eq(map1(NULL, (uintptr_t)b[0], PG, NULL, RR, seg, &n), 0);
	seg_is(&seg[0], (uintptr_t)b[0], PG, 0);
	cr_assert_eq(ferry_rdma_map_release(map, seg, n), 0);
	cr_assert_eq(nmr, 3);
	/* One call needing more than max_regions: none of its own evicted under it. */
	struct iovec iov[3] = {{b[1], PG}, {b[3], PG}, {b[1] + 8, 8}};
	struct ferry_mem mem = {.iov = iov, .iovcnt = 3};
	n = 4;
	cr_assert_eq(ferry_rdma_map_mem(map, &mem, NULL, RR, seg, &n), 0);
	cr_assert_eq(n, 3);
	for (uint32_t i = 0; i < n; i++) {
		int id = (int)(seg[i].lkey - 0x1000u);
		cr_assert(mrs[id].live, "segment %u's region is alive", i);
	}
}

Test(rdma_map, destroy_deregisters_all)
{
	static uint8_t pool[PG], b[PG];
	cr_assert_eq(ferry_rdma_map_register(map, pool, sizeof(pool), RR), 0);
	struct ferry_rdma_seg seg[4];
	uint32_t n = 4;
	cr_assert_eq(map1(NULL, (uintptr_t)b, PG, NULL, RR, seg, &n), 0);
	n = 4;
	cr_assert_eq(map1(nic.d, NIC_BASE, PG, NULL, RR, seg, &n), 0);
	n = 4;
	cr_assert_eq(map1(host.d, HOST_BASE, PG, NULL, RR, seg, &n), 0);
	cr_assert_eq(nlive, 4);
	ferry_rdma_map_destroy(map);
	map = NULL;
	cr_assert_eq(nlive, 0);
	cr_assert_eq(ndereg, 4);
	ferry_rdma_map_destroy(NULL);
}

Test(rdma_map, bad_arguments)
{
	struct ferry_rdma_map *m = NULL;
	struct ferry_rdma_map_opts o = {.size = sizeof(o), .dev = dev};
	cr_assert_eq(ferry_rdma_map_create(NULL, &m), -EINVAL);
	cr_assert_eq(ferry_rdma_map_create(&o, NULL), -EINVAL);
	o.size = sizeof(o) - 1;
	cr_assert_eq(ferry_rdma_map_create(&o, &m), -EINVAL);
	o.size = sizeof(o);
	o.dev = NULL;
	cr_assert_eq(ferry_rdma_map_create(&o, &m), -EINVAL);
	cr_assert_null(m);
	cr_assert_eq(ferry_hal_register(&nordma), 0);
	struct ferry_device *plain;
	cr_assert_eq(ferry_device_open("rmapplain", "", &plain), 0);
	o.dev = plain;
	cr_assert_eq(ferry_rdma_map_create(&o, &m), -ENODEV);
	ferry_device_close(plain);

	struct ferry_rdma_seg seg[1];
	uint32_t n = 1;
	struct ferry_mem mem = {.iov = NULL, .iovcnt = 1};
	cr_assert_eq(ferry_rdma_map_mem(map, &mem, NULL, RR, seg, &n), -EINVAL);
	cr_assert_eq(ferry_rdma_map_mem(NULL, &mem, NULL, RR, seg, &n), -EINVAL);
	cr_assert_eq(ferry_rdma_map_mem(map, NULL, NULL, RR, seg, &n), -EINVAL);
	cr_assert_eq(ferry_rdma_map_get_stats(NULL, NULL), -EINVAL);
	cr_assert_eq(ferry_rdma_map_poll(NULL), 0);
}

static uint8_t shared_buf[16][PG];

static void *hammer(void *arg)
{
	unsigned int seed = (unsigned int)(uintptr_t)arg;
	for (int i = 0; i < 200; i++) {
		uint32_t pg = (uint32_t)rand_r(&seed) % 16, off = (uint32_t)rand_r(&seed) % 64;
		struct ferry_rdma_seg seg[2];
		uint32_t n = 2;
		uint64_t a = (uintptr_t)shared_buf[pg] + off;
		if (map1(NULL, a, 100, NULL, RR, seg, &n) || n != 1 || seg[0].addr != a ||
		    seg[0].len != 100)
			return (void *)1;
		const struct ferry_hal_rdma_mr *m = &mrs[seg[0].lkey - 0x1000u];
		if (seg[0].rkey != 0x2000u + (uint32_t)m->id || a < m->addr ||
		    a + 100 > m->addr + m->len || !m->live)
			return (void *)1;
		if (ferry_rdma_map_release(map, seg, n))
			return (void *)1;
	}
	return NULL;
}

Test(rdma_map, concurrent_threads)
{
	ferry_rdma_map_destroy(map);
	struct ferry_rdma_map_opts o = {.size = sizeof(o), .dev = dev, .max_regions = 4};
	cr_assert_eq(ferry_rdma_map_create(&o, &map), 0);
	pthread_t t[4];
	for (uintptr_t i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, hammer, (void *)(i + 1)), 0);
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(t[i], &r);
		cr_assert_null(r, "thread %d got a wrong segment", i);
	}
	struct ferry_rdma_map_stats s = stats();
	cr_assert_eq(s.hits + s.misses, 800);
	cr_assert_eq(s.registrations, s.misses);
	cr_assert_leq(s.regions, 4, "every segment released: back within max_regions");
	cr_assert_eq(s.held, 0);
	cr_assert_eq(s.regions, (uint64_t)nlive);
	cr_assert_eq(s.registrations - s.invalidations, s.regions);
}

Test(rdma_map, region_size_limit_splits_and_export_asks_for_write)
{
	ferry_rdma_map_destroy(map);
	fake_max_mr = 2 * PG;
	struct ferry_rdma_map_opts o = {.size = sizeof(o), .dev = dev};
	cr_assert_eq(ferry_rdma_map_create(&o, &map), 0);
	static uint8_t b[5 * PG];
	struct ferry_rdma_seg seg[4];
	uint32_t n = 4;
	cr_assert_eq(map1(NULL, (uintptr_t)b, sizeof(b), NULL, RR, seg, &n), 0);
	cr_assert_eq(n, 3);
	seg_is(&seg[0], (uintptr_t)b, 2 * PG, 0);
	seg_is(&seg[1], (uintptr_t)b + 2 * PG, 2 * PG, 1);
	seg_is(&seg[2], (uintptr_t)b + 4 * PG, PG, 2);
	for (int i = 0; i < 3; i++)
		cr_assert_leq(mrs[i].len, 2 * PG);
	/* A destination's export is checked for write, a source's for read only. */
	n = 4;
	cr_assert_eq(map1(host.d, HOST_BASE, PG, NULL, RW, seg, &n), 0);
	cr_assert_eq(host.last_write, 1);
	n = 4;
	cr_assert_eq(map1(host.d, HOST_BASE + PG, PG, NULL, RR, seg, &n), 0);
	cr_assert_eq(host.last_write, 0);
}

/* ---- references ---------------------------------------------------------------------------- */

static void remap(uint32_t max_regions)
{
	ferry_rdma_map_destroy(map);
	struct ferry_rdma_map_opts o = {.size = sizeof(o), .dev = dev, .max_regions = max_regions};
	cr_assert_eq(ferry_rdma_map_create(&o, &map), 0);
}

Test(rdma_map, held_registration_survives_eviction_then_is_evictable)
{
	remap(2);
	static uint8_t b[8][PG];
	struct ferry_rdma_seg held[1], seg[4];
	uint32_t nh = 1, n;
	cr_assert_eq(map1(NULL, (uintptr_t)b[0], PG, NULL, RW, held, &nh), 0);
	seg_is(&held[0], (uintptr_t)b[0], PG, 0);
	/* Pressure: seven other buffers, each mapped and released. b[0] is the least recently
	 * used from the second call on, but held: never evicted. */
	for (int i = 1; i < 8; i++) {
		n = 4;
		cr_assert_eq(map1(NULL, (uintptr_t)b[i], PG, NULL, RW, seg, &n), 0);
		cr_assert(mrs[0].live, "the held registration survived call %d", i);
		cr_assert_eq(ferry_rdma_map_release(map, seg, n), 0);
		struct ferry_rdma_map_stats s = stats();
		cr_assert_leq(s.cached, 2, "the unheld ones are evicted (call %d)", i);
		cr_assert_eq(s.held, 1);
	}
	cr_assert_eq(ndereg, 6, "b[1]..b[6] evicted, b[7] the newest");
	for (int i = 0; i < ndereg; i++)
		cr_assert_neq(dereg_ids[i], 0);
	cr_assert_eq(stats().over_limit, 0, "two cached, one held: within the limit");
	/* Released: evictable, and evicted by the next pressure (it is the least recent). */
	cr_assert_eq(ferry_rdma_map_release(map, held, nh), 0);
	cr_assert(mrs[0].live, "release alone keeps it (within max_regions)");
	n = 4;
	cr_assert_eq(map1(NULL, (uintptr_t)b[1], PG, NULL, RW, seg, &n), 0);
	cr_assert_eq(ferry_rdma_map_release(map, seg, n), 0);
	cr_assert_not(mrs[0].live, "once released it is evicted like any other");
	cr_assert_eq(dereg_ids[ndereg - 1], 0);
	cr_assert_eq(stats().held, 0);
}

Test(rdma_map, held_past_max_regions_is_counted_then_shrinks)
{
	remap(2);
	static uint8_t b[5][PG];
	struct ferry_rdma_seg seg[5][1];
	for (int i = 0; i < 5; i++) {
		uint32_t n = 1;
		cr_assert_eq(map1(NULL, (uintptr_t)b[i], PG, NULL, RR, seg[i], &n), 0);
	}
	struct ferry_rdma_map_stats s = stats();
	cr_assert_eq(ndereg, 0, "all five held: nothing evicted");
	cr_assert_eq(s.cached, 5);
	cr_assert_eq(s.held, 5);
	cr_assert_eq(s.over_limit, 3, "calls 3, 4, 5 left the cache over max_regions");
	cr_assert_eq(s.regions, 5);
	/* Every key still valid: the fake NIC would accept each of them. */
	for (int i = 0; i < 5; i++)
		cr_assert(mrs[seg[i][0].lkey - 0x1000u].live);
	/* Released as the I/Os end: each one past max_regions is evicted at its release, until
	 * the cache is back within it. */
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(ferry_rdma_map_release(map, seg[i], 1), 0);
		cr_assert_eq(stats().cached, i < 3 ? 4 - (uint64_t)i : 2);
	}
	s = stats();
	cr_assert_eq(s.cached, 2);
	cr_assert_eq(s.held, 0);
	cr_assert_eq(ndereg, 3);
	cr_assert(!mrs[0].live && !mrs[1].live && !mrs[2].live && mrs[3].live && mrs[4].live);
}

Test(rdma_map, generation_change_invalidates_held_registrations)
{
	host.local[0] = backing[50];
	host.local[1] = backing[52];
	struct ferry_rdma_seg seg[4];
	uint32_t n = 4;
	cr_assert_eq(map1(host.d, HOST_BASE, 2 * PG, NULL, RW, seg, &n), 0);
	cr_assert_eq(n, 2);
	/* The host unmaps page 0 while the I/O is in flight: its keys die now. */
	host.valid[0] = 0;
	host.gen++;
	cr_assert_eq(ferry_rdma_map_poll(map), 1);
	cr_assert_not(mrs[0].live, "a held registration of unmapped pages is deregistered");
	cr_assert(mrs[1].live);
	struct ferry_rdma_map_stats s = stats();
	cr_assert_eq(s.held_invalidated, 1);
	cr_assert_eq(s.zombies, 1);
	cr_assert_eq(s.held, 2);
	cr_assert_eq(s.regions, 1);
	cr_assert_eq(s.cached, 1);
	/* Page 0 is never served again by the dead registration. */
	n = 4;
	cr_assert_eq(map1(host.d, HOST_BASE, PG, NULL, RW, seg + 2, &n), -EFAULT);
	/* The I/O ends: both its segments are released, the zombie goes. */
	cr_assert_eq(ferry_rdma_map_release(map, seg, 2), 0);
	s = stats();
	cr_assert_eq(s.zombies, 0);
	cr_assert_eq(s.held, 0);
	cr_assert_eq(ndereg, 1, "released: nothing deregistered twice");
	cr_assert_eq(ferry_rdma_map_release(map, seg, 1), -ENOENT, "the zombie is gone");
	/* A map destroyed with a zombie still held frees it (no leak under ASan). */
	host.valid[0] = 1;
	host.valid[1] = 1;
	n = 4;
	cr_assert_eq(map1(host.d, HOST_BASE + PG, PG, NULL, RW, seg, &n), 0);
	host.valid[1] = 0;
	host.gen++;
	cr_assert_eq(ferry_rdma_map_poll(map), 1);
	cr_assert_eq(stats().zombies, 1);
}

Test(rdma_map, reused_keys_of_a_zombie_are_not_handed_out)
{
	host.local[0] = backing[50];
	static uint8_t b[PG];
	struct ferry_rdma_seg z[1], seg[1];
	uint32_t n = 1;
	cr_assert_eq(map1(host.d, HOST_BASE, PG, NULL, RR, z, &n), 0);
	seg_is(&z[0], (uintptr_t)backing[50], PG, 0);
	host.valid[0] = 0;
	host.gen++;
	cr_assert_eq(ferry_rdma_map_poll(map), 1);
	/* The device hands the dead region's keys to the next registration. */
	alias_next = 0;
	n = 1;
	cr_assert_eq(map1(NULL, (uintptr_t)b, PG, NULL, RR, seg, &n), 0);
	cr_assert_eq(nmr, 3, "registered again");
	cr_assert_not(mrs[1].live, "the clashing region is given back");
	seg_is(&seg[0], (uintptr_t)b, PG, 2);
	/* Each release names its own record. */
	cr_assert_eq(ferry_rdma_map_release(map, z, 1), 0);
	cr_assert_eq(stats().zombies, 0);
	cr_assert_eq(stats().held, 1);
	cr_assert_eq(ferry_rdma_map_release(map, seg, 1), 0);
	cr_assert_eq(stats().held, 0);
}

Test(rdma_map, failed_call_holds_nothing)
{
	remap(1);
	struct ferry_rdma_seg seg[4];
	uint32_t n = 4;
	cr_assert_eq(map1(nic.d, NIC_BASE, PG, NULL, RR, seg, &n), 0);
	cr_assert_eq(ferry_rdma_map_release(map, seg, n), 0);
	/* First piece a hit (a reference taken), the second fails to register. */
	reg_mem_fault = 1;
	struct iovec iov[2] = {{(void *)(uintptr_t)NIC_BASE, PG},
			       {(void *)(uintptr_t)(NIC_BASE + 8 * PG), PG}};
	struct ferry_mem mem = {.domain = nic.d, .iov = iov, .iovcnt = 2};
	n = 4;
	cr_assert_eq(ferry_rdma_map_mem(map, &mem, NULL, RR, seg, &n), -EFAULT);
	cr_assert_eq(stats().held, 0, "the hit's reference was dropped");
	/* -ENOBUFS: nothing held either. */
	reg_mem_fault = 0;
	n = 1;
	cr_assert_eq(ferry_rdma_map_mem(map, &mem, NULL, RR, seg, &n), -ENOBUFS);
	cr_assert_eq(stats().held, 0);
	/* Held nothing: the first registration is evictable by the next call. */
	static uint8_t b[PG];
	n = 4;
	cr_assert_eq(map1(NULL, (uintptr_t)b, PG, NULL, RR, seg, &n), 0);
	cr_assert_not(mrs[0].live);
}

Test(rdma_map, release_of_unknown_segments_is_refused)
{
	static uint8_t pool[2 * PG], b[PG];
	cr_assert_eq(ferry_rdma_map_register(map, pool, sizeof(pool), RR), 0);
	struct ferry_rdma_seg seg[2];
	uint32_t n = 1;
	cr_assert_eq(map1(NULL, (uintptr_t)b, PG, NULL, RR, seg, &n), 0);
	struct ferry_rdma_seg bad = seg[0];
	bad.lkey ^= 0x40000u;
	cr_assert_eq(ferry_rdma_map_release(map, &bad, 1), -ENOENT);
	cr_assert(strstr(ferry_last_error(), "not handed out by this map"), "%s",
		  ferry_last_error());
	bad = seg[0];
	bad.rkey++; /* right lkey, wrong rkey */
	cr_assert_eq(ferry_rdma_map_release(map, &bad, 1), -ENOENT);
	bad = seg[0];
	bad.addr += PG; /* past the region */
	cr_assert_eq(ferry_rdma_map_release(map, &bad, 1), -ENOENT);
	bad = seg[0];
	bad.len = PG + 1;
	cr_assert_eq(ferry_rdma_map_release(map, &bad, 1), -ENOENT);
	/* All or nothing: a good segment with a bad one is not released. */
	struct ferry_rdma_seg mix[2] = {seg[0], seg[0]};
	mix[1].lkey = 0xdeadbeef;
	cr_assert_eq(ferry_rdma_map_release(map, mix, 2), -ENOENT);
	cr_assert_eq(stats().held, 1);
	/* The same segment twice while held once: refused, still held. */
	mix[1] = seg[0];
	cr_assert_eq(ferry_rdma_map_release(map, mix, 2), -EINVAL);
	cr_assert(strstr(ferry_last_error(), "not held"), "%s", ferry_last_error());
	cr_assert_eq(stats().held, 1);
	cr_assert_eq(ferry_rdma_map_release(map, seg, 1), 0);
	cr_assert_eq(ferry_rdma_map_release(map, seg, 1), -EINVAL, "released twice");
	cr_assert_eq(stats().held, 0);
	/* Segments of a pinned region: accepted, not counted. */
	n = 2;
	cr_assert_eq(map1(NULL, (uintptr_t)pool + 16, 100, NULL, RR, seg, &n), 0);
	cr_assert_eq(ferry_rdma_map_release(map, seg, n), 0);
	cr_assert_eq(ferry_rdma_map_release(map, seg, n), 0);
	/* Arguments. */
	cr_assert_eq(ferry_rdma_map_release(NULL, seg, 1), -EINVAL);
	cr_assert_eq(ferry_rdma_map_release(map, NULL, 1), -EINVAL);
	cr_assert_eq(ferry_rdma_map_release(map, NULL, 0), 0);
}
