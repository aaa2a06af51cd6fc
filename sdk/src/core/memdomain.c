/*
 * Memory domains: the registry (create/destroy/enumerate/lookup), the system domain, and the
 * wrappers that validate arguments and dispatch to a domain's ops table.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <ferry/memdomain.h>
#include <ferry/module/memdomain.h>
#include "core_internal.h"

#define COMP "memdomain"

struct ferry_memdomain {
	enum ferry_memdomain_type type;
	char name[FERRY_MEMDOMAIN_NAME_MAX];
	const struct ferry_memdomain_ops *ops;
	void *user_ctx;
	uint32_t flags;               /* FERRY_MEMDOMAIN_F_* */
	struct ferry_memdomain *next; /* registry list, creation order */
};

static int system_pull(struct ferry_memdomain *d, void *ctx, const struct iovec *src, uint32_t sc,
		       const struct iovec *dst, uint32_t dc, ferry_memdomain_cb cb, void *arg)
{
	ferry_iov_copy(dst, dc, src, sc);
	cb(arg, 0);
	return 0;
}

static int system_push(struct ferry_memdomain *d, void *ctx, const struct iovec *dst, uint32_t dc,
		       const struct iovec *src, uint32_t sc, ferry_memdomain_cb cb, void *arg)
{
	ferry_iov_copy(dst, dc, src, sc);
	cb(arg, 0);
	return 0;
}

static int system_memzero(struct ferry_memdomain *d, void *ctx, const struct iovec *iov,
			  uint32_t cnt, ferry_memdomain_cb cb, void *arg)
{
	for (uint32_t i = 0; i < cnt; i++)
		memset(iov[i].iov_base, 0, iov[i].iov_len);
	cb(arg, 0);
	return 0;
}

static const struct ferry_memdomain_ops system_ops = {
	.abi_version = FERRY_MEMDOMAIN_OPS_ABI,
	.pull = system_pull,
	.push = system_push,
	.memzero = system_memzero,
};

static struct ferry_memdomain system_domain = {
	.type = FERRY_MEMDOMAIN_SYSTEM,
	.name = "system",
	.ops = &system_ops,
	.flags = FERRY_MEMDOMAIN_F_NO_ALIAS, /* one virtual address space, one mapping per byte */
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ferry_memdomain *reg_head = &system_domain;

static inline struct ferry_memdomain *resolve(const struct ferry_memdomain *d)
{
	return d ? (struct ferry_memdomain *)d : &system_domain;
}

static int valid_type(enum ferry_memdomain_type t)
{
	return t == FERRY_MEMDOMAIN_PCIE || t == FERRY_MEMDOMAIN_RDMA ||
	       t == FERRY_MEMDOMAIN_ACCEL ||
	       (t >= FERRY_MEMDOMAIN_VENDOR_FIRST && t <= FERRY_MEMDOMAIN_VENDOR_LAST);
}

FERRY_API int ferry_memdomain_create(const struct ferry_memdomain_opts *opts,
				     struct ferry_memdomain **out)
{
	if (!opts || !out) {
		FERRY_ERR(COMP, "create: NULL %s", !opts ? "opts" : "out");
		return -EINVAL;
	}
	if (OPTS_SIZE_CHECK(COMP, "create", opts, struct ferry_memdomain_opts))
		return -EINVAL;
	if (!valid_type(opts->type)) {
		FERRY_ERR(COMP, "create: type %d is not creatable", (int)opts->type);
		return -EINVAL;
	}
	size_t nlen = opts->name ? strlen(opts->name) : 0;
	if (nlen == 0 || nlen >= FERRY_MEMDOMAIN_NAME_MAX) {
		FERRY_ERR(COMP, "create: name must have 1..%d characters (got %zu)",
			  FERRY_MEMDOMAIN_NAME_MAX - 1, nlen);
		return -EINVAL;
	}
	if (!opts->ops) {
		FERRY_ERR(COMP, "create '%s': NULL ops table", opts->name);
		return -EINVAL;
	}
	if (opts->ops->abi_version != FERRY_MEMDOMAIN_OPS_ABI) {
		FERRY_ERR(COMP, "create '%s': ops ABI version %u, this library speaks %u",
			  opts->name, opts->ops->abi_version, FERRY_MEMDOMAIN_OPS_ABI);
		return -EPROTO;
	}
	struct ferry_memdomain *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->type = opts->type;
	memcpy(d->name, opts->name, nlen + 1);
	d->ops = opts->ops;
	d->user_ctx = opts->user_ctx;
	d->flags = opts->flags;

	pthread_mutex_lock(&reg_lock);
	struct ferry_memdomain **pp = &reg_head;
	for (; *pp; pp = &(*pp)->next) {
		if (strcmp((*pp)->name, d->name) == 0) {
			pthread_mutex_unlock(&reg_lock);
			FERRY_ERR(COMP, "create: a domain named '%s' exists", d->name);
			free(d);
			return -EEXIST;
		}
	}
	*pp = d;
	pthread_mutex_unlock(&reg_lock);
	*out = d;
	return 0;
}

FERRY_API void ferry_memdomain_destroy(struct ferry_memdomain *d)
{
	if (!d || d == &system_domain)
		return;
	pthread_mutex_lock(&reg_lock);
	for (struct ferry_memdomain **pp = &reg_head; *pp; pp = &(*pp)->next) {
		if (*pp == d) {
			*pp = d->next;
			break;
		}
	}
	pthread_mutex_unlock(&reg_lock);
	if (d->ops->destroy)
		d->ops->destroy(d);
	free(d);
}

FERRY_API struct ferry_memdomain *ferry_memdomain_system(void)
{
	return &system_domain;
}

static struct ferry_memdomain *next_match(struct ferry_memdomain *d, enum ferry_memdomain_type t)
{
	for (; d; d = d->next)
		if (t == FERRY_MEMDOMAIN_ANY || d->type == t)
			return d;
	return NULL;
}

FERRY_API struct ferry_memdomain *ferry_memdomain_first(enum ferry_memdomain_type type)
{
	pthread_mutex_lock(&reg_lock);
	struct ferry_memdomain *d = next_match(reg_head, type);
	pthread_mutex_unlock(&reg_lock);
	return d;
}

FERRY_API struct ferry_memdomain *ferry_memdomain_next(struct ferry_memdomain *prev,
						       enum ferry_memdomain_type type)
{
	if (!prev)
		return NULL;
	pthread_mutex_lock(&reg_lock);
	struct ferry_memdomain *d = next_match(prev->next, type);
	pthread_mutex_unlock(&reg_lock);
	return d;
}

FERRY_API struct ferry_memdomain *ferry_memdomain_lookup(const char *name)
{
	struct ferry_memdomain *d;
	if (!name)
		return NULL;
	pthread_mutex_lock(&reg_lock);
	for (d = reg_head; d; d = d->next)
		if (strcmp(d->name, name) == 0)
			break;
	pthread_mutex_unlock(&reg_lock);
	return d;
}

FERRY_API enum ferry_memdomain_type ferry_memdomain_get_type(const struct ferry_memdomain *d)
{
	return resolve(d)->type;
}

FERRY_API const char *ferry_memdomain_get_name(const struct ferry_memdomain *d)
{
	return resolve(d)->name;
}

FERRY_API void *ferry_memdomain_get_ctx(const struct ferry_memdomain *d)
{
	return resolve(d)->user_ctx;
}

FERRY_API size_t ferry_iov_length(const struct iovec *iov, uint32_t iovcnt)
{
	size_t n = 0;
	for (uint32_t i = 0; iov && i < iovcnt; i++)
		n += iov[i].iov_len;
	return n;
}

FERRY_API size_t ferry_iov_copy(const struct iovec *dst, uint32_t dst_cnt, const struct iovec *src,
				uint32_t src_cnt)
{
	uint32_t di = 0, si = 0;
	size_t doff = 0, soff = 0, total = 0;
	while (di < dst_cnt && si < src_cnt) {
		size_t dlen = dst[di].iov_len - doff, slen = src[si].iov_len - soff;
		size_t n = dlen < slen ? dlen : slen;
		if (n)
			memcpy((char *)dst[di].iov_base + doff, (const char *)src[si].iov_base + soff, n);
		total += n;
		doff += n;
		soff += n;
		if (doff == dst[di].iov_len) {
			di++;
			doff = 0;
		}
		if (soff == src[si].iov_len) {
			si++;
			soff = 0;
		}
	}
	return total;
}

static int check_mem(const char *op, const struct ferry_mem *m, const char *which)
{
	if (!m) {
		FERRY_ERR(COMP, "%s: NULL %s descriptor", op, which);
		return -EINVAL;
	}
	if (m->iovcnt == 0 || !m->iov) {
		FERRY_ERR(COMP, "%s: %s descriptor has no segments", op, which);
		return -EINVAL;
	}
	return 0;
}

static int check_pair(const char *op, const struct ferry_mem *remote, const struct ferry_mem *local,
		      ferry_memdomain_cb cb)
{
	int rc = check_mem(op, remote, "remote");
	if (rc == 0)
		rc = check_mem(op, local, "local");
	if (rc)
		return rc;
	if (!cb) {
		FERRY_ERR(COMP, "%s: NULL completion callback", op);
		return -EINVAL;
	}
	if (resolve(local->domain) != &system_domain) {
		FERRY_ERR(COMP, "%s: local side is in domain '%s', not the system domain", op,
			  resolve(local->domain)->name);
		return -EINVAL;
	}
	size_t rl = ferry_iov_length(remote->iov, remote->iovcnt);
	size_t ll = ferry_iov_length(local->iov, local->iovcnt);
	if (rl != ll) {
		FERRY_ERR(COMP, "%s: lengths differ (%s side %zu bytes, local side %zu bytes)", op,
			  resolve(remote->domain)->name, rl, ll);
		return -EINVAL;
	}
	return 0;
}

FERRY_API int ferry_memdomain_pull(const struct ferry_mem *src, const struct ferry_mem *dst,
				   ferry_memdomain_cb cb, void *cb_arg)
{
	int rc = check_pair("pull", src, dst, cb);
	if (rc)
		return rc;
	struct ferry_memdomain *d = resolve(src->domain);
	if (!d->ops->pull) {
		FERRY_ERR(COMP, "pull: domain '%s' does not support pull", d->name);
		return -ENOTSUP;
	}
	return d->ops->pull(d, src->domain_ctx, src->iov, src->iovcnt, dst->iov, dst->iovcnt, cb,
			    cb_arg);
}

FERRY_API int ferry_memdomain_push(const struct ferry_mem *dst, const struct ferry_mem *src,
				   ferry_memdomain_cb cb, void *cb_arg)
{
	int rc = check_pair("push", dst, src, cb);
	if (rc)
		return rc;
	struct ferry_memdomain *d = resolve(dst->domain);
	if (!d->ops->push) {
		FERRY_ERR(COMP, "push: domain '%s' does not support push", d->name);
		return -ENOTSUP;
	}
	return d->ops->push(d, dst->domain_ctx, dst->iov, dst->iovcnt, src->iov, src->iovcnt, cb,
			    cb_arg);
}

FERRY_API int ferry_memdomain_memzero(const struct ferry_mem *mem, ferry_memdomain_cb cb,
				      void *cb_arg)
{
	int rc = check_mem("memzero", mem, "target");
	if (rc)
		return rc;
	if (!cb) {
		FERRY_ERR(COMP, "memzero: NULL completion callback");
		return -EINVAL;
	}
	struct ferry_memdomain *d = resolve(mem->domain);
	if (!d->ops->memzero) {
		FERRY_ERR(COMP, "memzero: domain '%s' does not support memzero", d->name);
		return -ENOTSUP;
	}
	return d->ops->memzero(d, mem->domain_ctx, mem->iov, mem->iovcnt, cb, cb_arg);
}

FERRY_API int ferry_memdomain_translate(const struct ferry_mem *src, struct ferry_memdomain *target,
					struct ferry_mem *out)
{
	int rc = check_mem("translate", src, "source");
	if (rc)
		return rc;
	if (!out || !out->iov) {
		FERRY_ERR(COMP, "translate: output descriptor needs an iovec array");
		return -EINVAL;
	}
	struct ferry_memdomain *d = resolve(src->domain), *t = resolve(target);
	if (d == t) {
		if (out->iovcnt < src->iovcnt) {
			out->iovcnt = src->iovcnt;
			return -ENOBUFS;
		}
		memcpy(out->iov, src->iov, sizeof(*src->iov) * src->iovcnt);
		out->iovcnt = src->iovcnt;
		out->domain = target;
		out->domain_ctx = src->domain_ctx;
		return 0;
	}
	if (!d->ops->translate) {
		FERRY_ERR(COMP, "translate: domain '%s' does not support translate", d->name);
		return -ENOTSUP;
	}
	return d->ops->translate(d, src->domain_ctx, src->iov, src->iovcnt, t, out);
}

FERRY_API int ferry_memdomain_invalidate(const struct ferry_mem *mem)
{
	int rc = check_mem("invalidate", mem, "target");
	if (rc)
		return rc;
	struct ferry_memdomain *d = resolve(mem->domain);
	if (!d->ops->invalidate) {
		FERRY_ERR(COMP, "invalidate: domain '%s' does not support invalidate", d->name);
		return -ENOTSUP;
	}
	return d->ops->invalidate(d, mem->domain_ctx, mem->iov, mem->iovcnt);
}

FERRY_API uint32_t ferry_memdomain_get_flags(const struct ferry_memdomain *domain)
{
	return resolve(domain)->flags;
}

FERRY_API int ferry_memdomain_poll(struct ferry_memdomain *domain, uint32_t max)
{
	struct ferry_memdomain *d = resolve(domain);
	if (!d->ops->poll)
		return 0;
	return d->ops->poll(d, max);
}

FERRY_API int ferry_memdomain_export_local(const struct ferry_mem *mem, uint32_t flags,
					   struct ferry_mem_backing *out, uint32_t *n)
{
	int rc = check_mem("export_local", mem, "source");
	if (rc)
		return rc;
	if (!out || !n) {
		FERRY_ERR(COMP, "export_local: NULL output");
		return -EINVAL;
	}
	struct ferry_memdomain *d = resolve(mem->domain);
	if (d == &system_domain) {
		if (*n < mem->iovcnt) {
			*n = mem->iovcnt;
			return -ENOBUFS;
		}
		for (uint32_t i = 0; i < mem->iovcnt; i++) {
			out[i].local = mem->iov[i].iov_base;
			out[i].len = mem->iov[i].iov_len;
			out[i].fd = -1;
			out[i].fd_off = 0;
		}
		*n = mem->iovcnt;
		return 0;
	}
	if (!d->ops->export_local) {
		FERRY_ERR(COMP, "export_local: domain '%s' has no local backing to export", d->name);
		return -ENOTSUP;
	}
	return d->ops->export_local(d, mem->domain_ctx, mem->iov, mem->iovcnt, flags, out, n);
}

FERRY_API uint64_t ferry_memdomain_map_gen(struct ferry_memdomain *domain)
{
	struct ferry_memdomain *d = resolve(domain);
	return d->ops && d->ops->map_gen ? d->ops->map_gen(d) : 0;
}
