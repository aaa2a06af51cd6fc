/*
 * The registration map: a memory descriptor in any domain expressed as registered segments
 * (address, length, lkey, rkey) of one RDMA device.
 *
 * Registrations live in two lists: the pinned regions of ferry_rdma_map_register() (the map's
 * life) and a cache of the registrations ferry_rdma_map_mem() made, most recently used first,
 * dropped from the tail past max_regions. A cached registration is in one of two key spaces:
 * - MEM: [start, start + len) of a domain the NIC reaches directly (mr_reg_mem);
 * - LOCAL: SoC-local addresses (mr_reg): system memory (src NULL), or the backing some
 *   domain's range was exported to (src = that domain, src_addr = the range's address there,
 *   for the revalidation).
 * A segment is served by a registration of its key space that contains it whole and has the
 * access asked for; otherwise exactly that segment is registered. Translation and export are
 * redone by every call (they are the domain's view now); only their results are cached.
 *
 * Revalidation: a LOCAL registration made from a domain's export holds the memory the export
 * named at the time. When that domain's mapping generation changes, the host may have unmapped
 * the pages: each such registration's source range is exported again, and one that no longer
 * exports to exactly the same local range is deregistered (its keys stop working) before the
 * map hands out anything. MEM registrations need no revalidation: the NIC checks every access
 * against the domain's own permissions (<ferry/hal/rdma.h>, mr_reg_mem()).
 *
 * Lifetime: every segment of a cached registration that ferry_rdma_map_mem() hands out holds
 * a reference on it (refs) until ferry_rdma_map_release() drops it: the keys may be on the
 * wire until the I/O's completion. Eviction (least recently used first, past max_regions)
 * skips held registrations; the cache then stays above max_regions until they are released
 * (counted: over_limit). Pinned regions are not counted (they live as long as the map).
 * Revalidation does not wait for holders: a held registration whose range is gone is
 * deregistered at once (the host's unmap wins) and its record stays, dead, in the key index
 * (a "zombie", off the cache) until its last reference is released, so that the release is
 * still recognised. No live registration shares keys with a zombie (reg_new() registers again
 * on a clash), so a release names exactly one record.
 * Every record is in the key index (hashed by lkey): a release is found without a walk.
 * A domain whose memory the map registered must outlive the map (its generation is read at
 * every call): destroy the map before the domain.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ferry/module/memdomain.h>
#include <ferry/module/rdma.h>
#include <ferry/hal/backend.h>
#include <ferry/hal/nic.h>
#include <ferry/hal/rdma.h>
#include "core_internal.h"
#include "rdma_internal.h"

#define MAP_DEFAULT_REGIONS 1024u
#define MAP_STACK_SEGS 16u
/* Segments handed out are at most this long (::ferry_rdma_seg::len is 32 bits). */
#define MAP_SEG_MAX (1ull << 31)

enum reg_kind { REG_LOCAL = 0, REG_MEM = 1 };

struct map_reg {
	struct map_reg *prev, *next;
	struct ferry_hal_rdma_mr *mr;
	struct ferry_hal_rdma_mr_keys keys;
	enum reg_kind kind;
	struct ferry_memdomain *dom; /* MEM: the NIC domain; LOCAL: the exporting domain or NULL */
	void *src_ctx;               /* LOCAL from an export: the domain context exported with */
	uint64_t src_addr;           /* LOCAL from an export: the range's address in dom */
	uint64_t start, len;         /* in the key space */
	uint32_t access;
	uint64_t used;               /* the call that last used it (eviction guard) */
	uint32_t refs;               /* segments handed out and not released (cached only) */
	uint8_t pinned;              /* ferry_rdma_map_register(): never counted nor evicted */
	uint8_t dead;                /* a zombie: deregistered while held (mr NULL) */
	struct map_reg *hnext;       /* key index chain */
};

/* A domain whose exports were registered, and the generation they were valid for. */
struct map_gen_ent {
	struct ferry_memdomain *dom;
	uint64_t gen;
};

struct ferry_rdma_map {
	pthread_mutex_t lock;
	struct ferry_device *dev;
	const struct ferry_hal_rdma_ops *ops;
	struct ferry_hal_rdma_info info;
	uint32_t max_regions;
	struct map_reg pinned; /* list heads (sentinels) */
	struct map_reg cache;  /* most recently used first */
	uint32_t ncached;
	struct map_reg **hash; /* key index: every record (pinned, cached, zombie) by lkey */
	uint32_t nhash, nbuckets;
	struct map_gen_ent *gens;
	uint32_t ngens, capgens;
	uint64_t call;
	struct ferry_rdma_map_stats st;
};

/* One piece of the memory to express, in its key space. */
struct piece {
	enum reg_kind kind;
	struct ferry_memdomain *dom;
	void *src_ctx;
	uint64_t src_addr;
	uint64_t addr, len;
	struct map_reg *reg; /* map_mem: the registration serving it */
};

static void list_init(struct map_reg *h)
{
	h->prev = h->next = h;
}

static void list_del(struct map_reg *r)
{
	r->prev->next = r->next;
	r->next->prev = r->prev;
	r->prev = r->next = r;
}

static void list_add_head(struct map_reg *h, struct map_reg *r)
{
	r->next = h->next;
	r->prev = h;
	h->next->prev = r;
	h->next = r;
}

static int is_system(const struct ferry_memdomain *d)
{
	return !d || d == ferry_memdomain_system();
}

static int is_nic_domain(const struct ferry_rdma_map *m, const struct ferry_memdomain *d)
{
	if (!m->ops->mr_reg_mem) /* optional: without it no domain is registered directly */
		return 0;
	for (uint32_t i = 0; i < m->info.ndomains && i < FERRY_HAL_RDMA_DOMAINS_MAX; i++)
		if (m->info.domains[i] && m->info.domains[i] == d)
			return 1;
	return 0;
}

/* ---- key index -------------------------------------------------------------------------- */

static uint32_t key_hash(const struct ferry_rdma_map *m, uint32_t lkey)
{
	return (uint32_t)((lkey * 0x9e3779b1u) >> 8) & (m->nbuckets - 1);
}

static int hash_grow(struct ferry_rdma_map *m)
{
	uint32_t nb = m->nbuckets ? 2 * m->nbuckets : 64;
	struct map_reg **h = calloc(nb, sizeof(*h));
	if (!h)
		return -ENOMEM;
	uint32_t old = m->nbuckets;
	struct map_reg **oh = m->hash;
	m->hash = h;
	m->nbuckets = nb;
	for (uint32_t i = 0; i < old; i++)
		for (struct map_reg *r = oh[i], *nx; r; r = nx) {
			nx = r->hnext;
			uint32_t b = key_hash(m, r->keys.lkey);
			r->hnext = h[b];
			h[b] = r;
		}
	free(oh);
	return 0;
}

/* A record with @p keys' lkey and rkey (live or zombie), or NULL. */
static struct map_reg *hash_find(const struct ferry_rdma_map *m, uint32_t lkey, uint32_t rkey)
{
	if (!m->nbuckets)
		return NULL;
	for (struct map_reg *r = m->hash[key_hash(m, lkey)]; r; r = r->hnext)
		if (r->keys.lkey == lkey && r->keys.rkey == rkey)
			return r;
	return NULL;
}

static void hash_add(struct ferry_rdma_map *m, struct map_reg *r)
{
	uint32_t b = key_hash(m, r->keys.lkey);
	r->hnext = m->hash[b];
	m->hash[b] = r;
	m->nhash++;
}

static void hash_del(struct ferry_rdma_map *m, struct map_reg *r)
{
	for (struct map_reg **pp = &m->hash[key_hash(m, r->keys.lkey)]; *pp; pp = &(*pp)->hnext)
		if (*pp == r) {
			*pp = r->hnext;
			m->nhash--;
			return;
		}
}

/* Deregister @p r (its keys stop working) and take it off its list; the record is freed, or
 * kept as a zombie while segments of it are held. */
static void reg_free(struct ferry_rdma_map *m, struct map_reg *r)
{
	list_del(r);
	if (!r->dead) {
		m->ops->mr_dereg(r->mr);
		r->mr = NULL;
		m->st.regions--;
		m->st.invalidations++;
	}
	if (r->refs) {
		r->dead = 1;
		return;
	}
	hash_del(m, r);
	free(r);
}

static void cache_drop(struct ferry_rdma_map *m, struct map_reg *r)
{
	reg_free(m, r);
	m->ncached--;
}

/* ---- revalidation --------------------------------------------------------------------- */

static int gen_track(struct ferry_rdma_map *m, struct ferry_memdomain *d, uint64_t gen)
{
	for (uint32_t i = 0; i < m->ngens; i++)
		if (m->gens[i].dom == d)
			return 0;
	if (m->ngens == m->capgens) {
		uint32_t cap = m->capgens ? 2 * m->capgens : 4;
		struct map_gen_ent *g = realloc(m->gens, cap * sizeof(*g));
		if (!g)
			return -ENOMEM;
		m->gens = g;
		m->capgens = cap;
	}
	m->gens[m->ngens++] = (struct map_gen_ent){.dom = d, .gen = gen};
	return 0;
}

static uint32_t export_write(uint32_t access)
{
	return (access & (FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE | FERRY_HAL_RDMA_ACCESS_REMOTE_WRITE))
		       ? FERRY_MEM_EXPORT_F_WRITE
		       : 0;
}

/* Does @p r's source range still export to exactly the local range it registered? */
static int reg_still_exported(const struct map_reg *r)
{
	struct iovec iov = {.iov_base = (void *)(uintptr_t)r->src_addr, .iov_len = r->len};
	struct ferry_mem mem = {.domain = r->dom, .domain_ctx = r->src_ctx, .iov = &iov,
				.iovcnt = 1};
	struct ferry_mem_backing b;
	uint32_t n = 1;
	if (ferry_memdomain_export_local(&mem, export_write(r->access) | FERRY_MEM_EXPORT_F_PROBE,
					 &b, &n) ||
	    n != 1)
		return 0;
	return (uint64_t)(uintptr_t)b.local == r->start && b.len == r->len;
}

/* Revalidate the registrations of every domain whose generation moved; returns how many
 * were invalidated. */
static int map_revalidate(struct ferry_rdma_map *m)
{
	int dropped = 0;
	for (uint32_t i = 0; i < m->ngens; i++) {
		struct map_gen_ent *g = &m->gens[i];
		uint64_t now = ferry_memdomain_map_gen(g->dom);
		if (now == g->gen)
			continue;
		/* Record first: a change during the walk is seen by the next check. */
		g->gen = now;
		for (struct map_reg *r = m->cache.next, *nx; r != &m->cache; r = nx) {
			nx = r->next;
			if (r->kind != REG_LOCAL || r->dom != g->dom || reg_still_exported(r))
				continue;
			FERRY_DBG(RDMA_COMP,
				  "map: [0x%" PRIx64 ", +%" PRIu64 ") of domain '%s' is no longer "
				  "mapped: registration invalidated%s",
				  r->src_addr, r->len, ferry_memdomain_get_name(g->dom),
				  r->refs ? " while held (its I/O fails on the wire)" : "");
			if (r->refs)
				m->st.held_invalidated++;
			cache_drop(m, r);
			dropped++;
		}
	}
	return dropped;
}

/* ---- create / destroy / register ------------------------------------------------------- */

int ferry_rdma_map_create(const struct ferry_rdma_map_opts *opts, struct ferry_rdma_map **out)
{
	if (!opts || !out) {
		FERRY_ERR(RDMA_COMP, "map create: NULL %s", !opts ? "opts" : "out");
		return -EINVAL;
	}
	*out = NULL;
	int rc = OPTS_SIZE_CHECK(RDMA_COMP, "map create", opts, struct ferry_rdma_map_opts);
	if (rc)
		return rc;
	if (!opts->dev) {
		FERRY_ERR(RDMA_COMP, "map create: opts->dev is NULL");
		return -EINVAL;
	}
	const struct ferry_hal_backend *b = ferry_hal_dev_get_backend(opts->dev);
	if (!b || !b->nic || !b->nic->rdma) {
		FERRY_ERR(RDMA_COMP, "map create: device '%s' has no RDMA part",
			  ferry_device_get_name(opts->dev));
		return -ENODEV;
	}
	struct ferry_rdma_map *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->dev = opts->dev;
	m->ops = b->nic->rdma;
	rc = m->ops->query(opts->dev, &m->info);
	if (rc) {
		FERRY_ERR(RDMA_COMP, "map create: RDMA query of '%s' failed: %d",
			  ferry_device_get_name(opts->dev), rc);
		free(m);
		return rc;
	}
	if (m->info.ndomains > FERRY_HAL_RDMA_DOMAINS_MAX)
		m->info.ndomains = FERRY_HAL_RDMA_DOMAINS_MAX;
	m->max_regions = opts->max_regions ? opts->max_regions : MAP_DEFAULT_REGIONS;
	list_init(&m->pinned);
	list_init(&m->cache);
	if (hash_grow(m)) {
		free(m);
		return -ENOMEM;
	}
	pthread_mutex_init(&m->lock, NULL);
	*out = m;
	return 0;
}

void ferry_rdma_map_destroy(struct ferry_rdma_map *map)
{
	if (!map)
		return;
	while (map->cache.next != &map->cache)
		cache_drop(map, map->cache.next);
	while (map->pinned.next != &map->pinned)
		reg_free(map, map->pinned.next);
	/* Zombies and held records (references not released: the caller's leak, freed here). */
	for (uint32_t i = 0; i < map->nbuckets; i++)
		for (struct map_reg *r = map->hash[i], *nx; r; r = nx) {
			nx = r->hnext;
			free(r);
		}
	free(map->hash);
	pthread_mutex_destroy(&map->lock);
	free(map->gens);
	free(map);
}

static int reg_call(struct ferry_rdma_map *m, const struct piece *p, uint32_t access,
		    struct ferry_hal_rdma_mr **mr)
{
	return p->kind == REG_MEM
		       ? m->ops->mr_reg_mem(m->dev, p->dom, p->addr, (size_t)p->len, access, mr)
		       : m->ops->mr_reg(m->dev, (void *)(uintptr_t)p->addr, (size_t)p->len, access,
					mr);
}

/* Register a piece; the new registration is in the key index, not yet in a list. */
static int reg_new(struct ferry_rdma_map *m, const struct piece *p, uint32_t access,
		   struct map_reg **out)
{
	if (m->nhash >= 2 * m->nbuckets && hash_grow(m))
		return -ENOMEM;
	struct map_reg *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	int rc = reg_call(m, p, access, &r->mr);
	if (rc) {
		free(r);
		return rc;
	}
	m->ops->mr_keys(r->mr, &r->keys);
	/* Keys a zombie still has (a held registration invalidated; the device reused them):
	 * register again while holding the clashing region, so that the keys differ. */
	struct ferry_hal_rdma_mr *clash[5];
	uint32_t nclash = 0;
	while (hash_find(m, r->keys.lkey, r->keys.rkey) && nclash < 4) {
		clash[nclash++] = r->mr;
		rc = reg_call(m, p, access, &r->mr);
		if (rc)
			break;
		m->ops->mr_keys(r->mr, &r->keys);
	}
	if (!rc && hash_find(m, r->keys.lkey, r->keys.rkey)) {
		clash[nclash++] = r->mr;
		rc = -EAGAIN;
	}
	for (uint32_t i = 0; i < nclash; i++)
		m->ops->mr_dereg(clash[i]);
	if (rc) {
		FERRY_ERR(RDMA_COMP, "map on '%s': the device keeps handing out keys still held",
			  ferry_device_get_name(m->dev));
		free(r);
		return rc;
	}
	r->kind = p->kind;
	r->dom = p->dom;
	r->src_ctx = p->src_ctx;
	r->src_addr = p->src_addr;
	r->start = p->addr;
	r->len = p->len;
	r->access = access;
	list_init(r);
	hash_add(m, r);
	m->st.regions++;
	m->st.registrations++;
	*out = r;
	return 0;
}

int ferry_rdma_map_register(struct ferry_rdma_map *map, void *addr, size_t len, uint32_t access)
{
	if (!map || !addr || !len || (uintptr_t)addr + len < (uintptr_t)addr) {
		FERRY_ERR(RDMA_COMP, "map register: %s", !map ? "NULL map" : "empty or wrapping range");
		return -EINVAL;
	}
	struct piece p = {.kind = REG_LOCAL, .addr = (uintptr_t)addr, .len = len};
	struct map_reg *r;
	pthread_mutex_lock(&map->lock);
	int rc = reg_new(map, &p, access, &r);
	if (!rc) {
		r->pinned = 1;
		list_add_head(&map->pinned, r);
	}
	pthread_mutex_unlock(&map->lock);
	if (rc)
		FERRY_ERR(RDMA_COMP, "map register: [%p, +%zu) of '%s': mr_reg failed: %d", addr, len,
			  ferry_device_get_name(map->dev), rc);
	return rc;
}

/* ---- map_mem ------------------------------------------------------------------------------- */

/* A growable array with a stack-backed start. */
struct pieces {
	struct piece *v;
	uint32_t n, cap;
	struct piece stack[MAP_STACK_SEGS];
};

static int pieces_add(struct pieces *ps, const struct piece *p)
{
	if (ps->n == ps->cap) {
		uint32_t cap = 2 * ps->cap;
		struct piece *v = malloc(cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		memcpy(v, ps->v, ps->n * sizeof(*v));
		if (ps->v != ps->stack)
			free(ps->v);
		ps->v = v;
		ps->cap = cap;
	}
	ps->v[ps->n++] = *p;
	return 0;
}

static int refuse(struct ferry_rdma_map *m, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int refuse(struct ferry_rdma_map *m, int rc, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	m->st.refused++;
	ferry_set_last_error(RDMA_COMP, "map on '%s': %s", ferry_device_get_name(m->dev), msg);
	FERRY_DBG(RDMA_COMP, "map on '%s': %s", ferry_device_get_name(m->dev), msg);
	return rc;
}

/* Add the pieces of a range, split to the device's region size and MAP_SEG_MAX. */
static int add_range(struct ferry_rdma_map *m, struct pieces *ps, struct piece p)
{
	uint64_t cap = MAP_SEG_MAX;
	if (m->info.max_mr_size && m->info.max_mr_size < cap)
		cap = m->info.max_mr_size;
	uint64_t left = p.len;
	while (left) {
		struct piece q = p;
		q.len = left < cap ? left : cap;
		int rc = pieces_add(ps, &q);
		if (rc)
			return rc;
		p.addr += q.len;
		p.src_addr += q.len;
		left -= q.len;
	}
	return 0;
}

static int check_iov(struct ferry_rdma_map *m, const struct ferry_mem *mem)
{
	for (uint32_t i = 0; i < mem->iovcnt; i++) {
		uint64_t a = (uintptr_t)mem->iov[i].iov_base, l = mem->iov[i].iov_len;
		if (l > UINT64_MAX - a)
			return refuse(m, -EFAULT,
				      "segment %u [0x%" PRIx64 ", +%" PRIu64 ") of domain '%s' wraps "
				      "the address space",
				      i, a, l, ferry_memdomain_get_name(mem->domain));
	}
	return 0;
}

/* Pieces of memory given as is in a key space (system memory, a NIC domain). */
static int pieces_direct(struct ferry_rdma_map *m, struct pieces *ps, const struct ferry_mem *mem,
			 enum reg_kind kind, struct ferry_memdomain *dom)
{
	int rc = check_iov(m, mem);
	for (uint32_t i = 0; !rc && i < mem->iovcnt; i++) {
		struct piece p = {.kind = kind,
				  .dom = dom,
				  .addr = (uintptr_t)mem->iov[i].iov_base,
				  .len = mem->iov[i].iov_len};
		rc = add_range(m, ps, p);
	}
	return rc;
}

/* Pieces of @p mem's SoC-local backing (mem->domain is not the system domain). */
static int pieces_export(struct ferry_rdma_map *m, struct pieces *ps, const struct ferry_mem *mem,
			 uint32_t access)
{
	int rc = check_iov(m, mem);
	if (rc)
		return rc;
	const char *dname = ferry_memdomain_get_name(mem->domain);
	/* Watch the generation from before the export: a change after it is seen later. */
	rc = gen_track(m, mem->domain, ferry_memdomain_map_gen(mem->domain));
	if (rc)
		return rc;
	/* One source segment at a time, so each backing segment has one source address. */
	for (uint32_t i = 0; i < mem->iovcnt; i++) {
		if (!mem->iov[i].iov_len)
			continue;
		struct ferry_mem one = {.domain = mem->domain, .domain_ctx = mem->domain_ctx,
					.iov = &mem->iov[i], .iovcnt = 1};
		struct ferry_mem_backing sb[MAP_STACK_SEGS], *b = sb;
		uint32_t n = MAP_STACK_SEGS;
		rc = ferry_memdomain_export_local(&one, export_write(access), b, &n);
		if (rc == -ENOBUFS && n > MAP_STACK_SEGS) {
			b = malloc(n * sizeof(*b));
			if (!b)
				return -ENOMEM;
			rc = ferry_memdomain_export_local(&one, export_write(access), b, &n);
		}
		uint64_t a = (uintptr_t)mem->iov[i].iov_base, l = mem->iov[i].iov_len;
		if (rc == -ENOTSUP)
			rc = refuse(m, -EXDEV,
				    "domain '%s' is not reachable by the NIC and has no local backing "
				    "to register ([0x%" PRIx64 ", +%" PRIu64 "))",
				    dname, a, l);
		else if (rc == -EFAULT)
			rc = refuse(m, -EFAULT,
				    "[0x%" PRIx64 ", +%" PRIu64 ") of domain '%s' is not mapped%s",
				    a, l, dname, export_write(access) ? " (writable)" : "");
		else if (rc == -ENOBUFS)
			rc = -EIO; /* the domain asked for more room twice */
		uint64_t off = 0, total = 0;
		for (uint32_t k = 0; !rc && k < n; k++)
			total += b[k].len;
		if (!rc && total != l)
			rc = refuse(m, -EFAULT,
				    "domain '%s' exported %" PRIu64 " bytes for [0x%" PRIx64
				    ", +%" PRIu64 ")",
				    dname, total, a, l);
		for (uint32_t k = 0; !rc && k < n; k++) {
			uint64_t la = (uintptr_t)b[k].local;
			if (b[k].len > UINT64_MAX - la) {
				rc = refuse(m, -EFAULT, "domain '%s' exported a wrapping range", dname);
				break;
			}
			struct piece p = {.kind = REG_LOCAL,
					  .dom = mem->domain,
					  .src_ctx = mem->domain_ctx,
					  .src_addr = a + off,
					  .addr = la,
					  .len = b[k].len};
			rc = add_range(m, ps, p);
			off += b[k].len;
		}
		if (b != sb)
			free(b);
		if (rc)
			return rc;
	}
	return 0;
}

/* Translate @p mem into @p via; @p tr gets an allocated iovec array (free it). */
static int translate_into(struct ferry_rdma_map *m, const struct ferry_mem *mem,
			  struct ferry_memdomain *via, struct ferry_mem *tr)
{
	uint32_t cap = mem->iovcnt * 2 + 2;
	for (int tries = 0; tries < 3; tries++) {
		struct iovec *iov = calloc(cap, sizeof(*iov));
		if (!iov)
			return -ENOMEM;
		*tr = (struct ferry_mem){.domain = via, .iov = iov, .iovcnt = cap};
		int rc = ferry_memdomain_translate(mem, via, tr);
		if (!rc)
			return 0;
		free(iov);
		tr->iov = NULL;
		if (rc == -ENOBUFS && tr->iovcnt > cap) {
			cap = tr->iovcnt; /* how many it needs */
			continue;
		}
		const char *dn = ferry_memdomain_get_name(mem->domain);
		const char *vn = ferry_memdomain_get_name(via);
		if (rc == -EFAULT) {
			uint64_t a = mem->iovcnt ? (uintptr_t)mem->iov[0].iov_base : 0;
			return refuse(m, -EFAULT,
				      "memory of domain '%s' (first segment at 0x%" PRIx64
				      ", %u segments) is not mapped in '%s'",
				      dn, a, mem->iovcnt, vn);
		}
		if (rc == -EXDEV || rc == -ENOTSUP)
			return refuse(m, -EXDEV, "domain '%s' cannot be translated into '%s' (%d)",
				      dn, vn, rc);
		return rc;
	}
	return -EIO;
}

/* The registration serving @p p with @p access, or NULL. */
static struct map_reg *lookup(struct ferry_rdma_map *m, const struct piece *p, uint32_t access)
{
	if (p->kind == REG_LOCAL && !p->dom) {
		for (struct map_reg *r = m->pinned.next; r != &m->pinned; r = r->next)
			if ((r->access & access) == access && p->addr >= r->start &&
			    p->addr - r->start <= r->len && p->len <= r->len - (p->addr - r->start))
				return r;
	}
	for (struct map_reg *r = m->cache.next; r != &m->cache; r = r->next)
		if (r->kind == p->kind && r->dom == p->dom && (r->access & access) == access &&
		    p->addr >= r->start && p->addr - r->start <= r->len &&
		    p->len <= r->len - (p->addr - r->start) &&
		    (p->kind != REG_LOCAL || !p->dom || r->src_addr + (p->addr - r->start) ==
							      p->src_addr))
			return r;
	return NULL;
}

/* Move this call's cached registrations to the front (most recently used first), keeping
 * their order: one pass from the tail over the entries that were there before any move. */
static void mru_front(struct ferry_rdma_map *m)
{
	struct map_reg *r = m->cache.prev;
	for (uint32_t left = m->ncached; left; left--) {
		struct map_reg *pv = r->prev;
		if (r->used == m->call) {
			list_del(r);
			list_add_head(&m->cache, r);
		}
		r = pv;
	}
}

/* Evict least recently used registrations past max_regions: never a held one nor one of this
 * call. Held ones are passed over; if they keep the cache above the limit, it is counted. */
static void evict(struct ferry_rdma_map *m)
{
	struct map_reg *r = m->cache.prev;
	while (m->ncached > m->max_regions && r != &m->cache) {
		struct map_reg *pv = r->prev;
		if (!r->refs && r->used != m->call)
			cache_drop(m, r);
		r = pv;
	}
	if (m->ncached > m->max_regions)
		m->st.over_limit++;
}

static void seg_refs_drop(struct pieces *ps, uint32_t k)
{
	for (uint32_t i = 0; i < k; i++)
		if (!ps->v[i].reg->pinned)
			ps->v[i].reg->refs--;
}

static int map_mem_locked(struct ferry_rdma_map *m, const struct ferry_mem *mem,
			  struct ferry_memdomain *via, uint32_t access, struct ferry_rdma_seg *out,
			  uint32_t *n)
{
	struct pieces ps = {.n = 0, .cap = MAP_STACK_SEGS};
	ps.v = ps.stack;
	struct ferry_mem tr = {0};
	struct ferry_memdomain *dom = is_system(mem->domain) ? NULL : mem->domain;
	uint32_t k = 0; /* segments handed out (held) so far */
	int rc;

	map_revalidate(m);
	m->call++;
	if (!dom) {
		rc = pieces_direct(m, &ps, mem, REG_LOCAL, NULL);
	} else if (is_nic_domain(m, dom)) {
		rc = pieces_direct(m, &ps, mem, REG_MEM, dom);
	} else if (via && via != dom) {
		rc = translate_into(m, mem, via, &tr);
		if (!rc) {
			if (is_system(via))
				rc = pieces_direct(m, &ps, &tr, REG_LOCAL, NULL);
			else if (is_nic_domain(m, via))
				rc = pieces_direct(m, &ps, &tr, REG_MEM, via);
			else
				rc = pieces_export(m, &ps, &tr, access);
		}
	} else {
		rc = pieces_export(m, &ps, mem, access);
	}
	if (rc)
		goto done;

	if (ps.n > *n) {
		*n = ps.n;
		rc = -ENOBUFS;
		goto done;
	}
	for (uint32_t i = 0; i < ps.n; i++) {
		const struct piece *p = &ps.v[i];
		struct map_reg *r = lookup(m, p, access);
		if (r) {
			m->st.hits++;
		} else {
			m->st.misses++;
			rc = reg_new(m, p, access, &r);
			if (rc == -EFAULT || rc == -EXDEV) {
				rc = refuse(m, rc,
					    "%s [0x%" PRIx64 ", +%" PRIu64 ") of domain '%s' could not "
					    "be registered (%s)",
					    p->kind == REG_MEM ? "NIC-domain range" : "local range",
					    p->addr, p->len,
					    ferry_memdomain_get_name(p->kind == REG_MEM ? p->dom : NULL),
					    rc == -EFAULT ? "not mapped" : "not a domain of the NIC");
				goto done;
			}
			if (rc)
				goto done;
			list_add_head(&m->cache, r);
			m->ncached++;
		}
		r->used = m->call;
		if (!r->pinned && r->refs == UINT32_MAX) {
			/* a caller that never releases: refused rather than wrapped */
			FERRY_ERR(RDMA_COMP,
				  "map on '%s': registration [0x%" PRIx64 ", +%" PRIu64 ") is held "
				  "%u times (segments never released?)",
				  ferry_device_get_name(m->dev), r->start, r->len, r->refs);
			rc = -EOVERFLOW;
			goto done;
		}
		if (!r->pinned)
			r->refs++; /* held until ferry_rdma_map_release() */
		ps.v[i].reg = r;
		out[k++] = (struct ferry_rdma_seg){.addr = r->keys.addr + (p->addr - r->start),
						   .len = (uint32_t)p->len,
						   .lkey = r->keys.lkey,
						   .rkey = r->keys.rkey};
	}
	*n = k;
	rc = 0;
done:
	if (rc)
		seg_refs_drop(&ps, k); /* nothing is held after a failure */
	mru_front(m);
	evict(m);
	free(tr.iov);
	if (ps.v != ps.stack)
		free(ps.v);
	return rc;
}

int ferry_rdma_map_mem(struct ferry_rdma_map *map, const struct ferry_mem *mem,
		       struct ferry_memdomain *via, uint32_t access, struct ferry_rdma_seg *out,
		       uint32_t *n)
{
	if (!map || !mem || !n || (!out && *n) || (!mem->iov && mem->iovcnt)) {
		FERRY_ERR(RDMA_COMP, "map_mem: NULL argument");
		return -EINVAL;
	}
	pthread_mutex_lock(&map->lock);
	int rc = map_mem_locked(map, mem, via, access, out, n);
	pthread_mutex_unlock(&map->lock);
	return rc;
}

/* The record a handed-out segment names: its keys, and its range inside the registration. */
static struct map_reg *seg_owner(const struct ferry_rdma_map *m, const struct ferry_rdma_seg *s)
{
	struct map_reg *r = hash_find(m, s->lkey, s->rkey);
	if (!r || s->addr < r->keys.addr || s->addr - r->keys.addr > r->len ||
	    s->len > r->len - (s->addr - r->keys.addr))
		return NULL;
	return r;
}

int ferry_rdma_map_release(struct ferry_rdma_map *map, const struct ferry_rdma_seg *segs,
			   uint32_t n)
{
	if (!map || (!segs && n)) {
		FERRY_ERR(RDMA_COMP, "map release: NULL %s", !map ? "map" : "segments");
		return -EINVAL;
	}
	pthread_mutex_lock(&map->lock);
	/* All or nothing: every segment is checked before any reference is dropped (the same
	 * registration may be named by several of them). */
	int rc = 0;
	for (uint32_t i = 0; i < n && !rc; i++) {
		struct map_reg *r = seg_owner(map, &segs[i]);
		if (!r) {
			FERRY_ERR(RDMA_COMP,
				  "map release on '%s': segment %u (0x%" PRIx64 " +%u, lkey 0x%x rkey "
				  "0x%x) was not handed out by this map",
				  ferry_device_get_name(map->dev), i, segs[i].addr, segs[i].len,
				  segs[i].lkey, segs[i].rkey);
			rc = -ENOENT;
			break;
		}
		if (r->pinned)
			continue;
		uint32_t want = 0;
		for (uint32_t j = 0; j <= i; j++)
			if (seg_owner(map, &segs[j]) == r)
				want++;
		if (want > r->refs) {
			FERRY_ERR(RDMA_COMP,
				  "map release on '%s': segment %u (0x%" PRIx64 " +%u, lkey 0x%x) "
				  "is not held (released more often than handed out)",
				  ferry_device_get_name(map->dev), i, segs[i].addr, segs[i].len,
				  segs[i].lkey);
			rc = -EINVAL;
		}
	}
	for (uint32_t i = 0; i < n && !rc; i++) {
		struct map_reg *r = seg_owner(map, &segs[i]);
		if (r->pinned || --r->refs)
			continue;
		if (r->dead) {
			hash_del(map, r); /* the last holder of a zombie: the record goes */
			free(r);
		}
	}
	if (!rc)
		evict(map);
	pthread_mutex_unlock(&map->lock);
	return rc;
}

int ferry_rdma_map_poll(struct ferry_rdma_map *map)
{
	if (!map)
		return 0;
	pthread_mutex_lock(&map->lock);
	int n = map_revalidate(map);
	pthread_mutex_unlock(&map->lock);
	return n;
}

int ferry_rdma_map_get_stats(struct ferry_rdma_map *map, struct ferry_rdma_map_stats *stats)
{
	if (!map || !stats)
		return -EINVAL;
	pthread_mutex_lock(&map->lock);
	*stats = map->st;
	stats->held = 0;
	stats->zombies = 0;
	for (uint32_t i = 0; i < map->nbuckets; i++)
		for (const struct map_reg *r = map->hash[i]; r; r = r->hnext) {
			stats->held += r->refs != 0;
			stats->zombies += r->dead;
		}
	stats->cached = map->ncached;
	pthread_mutex_unlock(&map->lock);
	return 0;
}
