/*
 * Transport plugin registry (register/unregister/find/enumerate) and transport instances
 * (create/destroy/listen/poll, per-instance context).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ferry/nvmf_spec.h>
#include <ferry/transport.h>
#include <ferry/module/transport.h>
#include "core_internal.h"
#include "target_internal.h"

#define COMP "transport"
#define MAX_TRANSPORTS 32

struct ferry_transport_pg {
	struct ferry_transport *transport;
	void *ctx; /* the plugin's state of the group */
	struct ferry_transport_pg *next;
};

struct ferry_transport {
	const struct ferry_transport_ops *ops;
	struct ferry_device *device;
	void *ctx;
	void *user_ctx;
	pthread_mutex_t pg_lock;       /* the list of poll-group handles */
	struct ferry_transport_pg *pgs; /* handles not destroyed yet (freed with the instance) */
};

static pthread_mutex_t tr_lock = PTHREAD_MUTEX_INITIALIZER;
static const struct ferry_transport_ops *tr_table[MAX_TRANSPORTS];
static unsigned int tr_instances[MAX_TRANSPORTS];
static unsigned int tr_count;

/*
 * Built-in plugins: the BUILTIN_TRANSPORT() entries of their own files (pcie.c...), gathered
 * by the linker (target_internal.h). The first call of any registry function registers them,
 * in ascending order, before whatever that call does: a built-in name therefore always
 * belongs to the built-in, a vendor plugin registered under it gets -EEXIST (whenever it
 * registers), and built-ins cannot be unregistered. Weak: a build without any built-in
 * leaves the section, and so both symbols, undefined (NULL).
 */
extern const struct builtin_transport __start_ferry_builtin_transports[] __attribute__((weak));
extern const struct builtin_transport __stop_ferry_builtin_transports[] __attribute__((weak));
#define TR_BUILTINS_BEGIN __start_ferry_builtin_transports
#define TR_BUILTINS_END __stop_ferry_builtin_transports
static pthread_once_t tr_builtin_once = PTHREAD_ONCE_INIT;

static int do_register(const struct ferry_transport_ops *ops);

static void tr_builtin_register(void)
{
	/* The section is in link order: pick by ascending order (a handful of entries). */
	unsigned int next = 0;
	for (;;) {
		const struct builtin_transport *best = NULL;
		for (const struct builtin_transport *b = TR_BUILTINS_BEGIN; b < TR_BUILTINS_END; b++)
			if (b->order >= next && (!best || b->order < best->order))
				best = b;
		if (!best)
			return;
		int rc = do_register(best->ops);
		if (rc) /* cannot happen with an empty registry: a bug in a built-in */
			FERRY_ERR(COMP, "built-in transport '%s' not registered: %s",
				  best->ops->name, ferry_strerror(rc));
		next = best->order + 1;
	}
}

static void tr_builtin_init(void)
{
	pthread_once(&tr_builtin_once, tr_builtin_register);
}

static int is_builtin(const struct ferry_transport_ops *ops)
{
	for (const struct builtin_transport *b = TR_BUILTINS_BEGIN; b < TR_BUILTINS_END; b++)
		if (b->ops == ops)
			return 1;
	return 0;
}

static int find_locked(const char *name)
{
	for (unsigned int i = 0; i < tr_count; i++)
		if (strcmp(tr_table[i]->name, name) == 0)
			return (int)i;
	return -1;
}

FERRY_API int ferry_transport_register(const struct ferry_transport_ops *ops)
{
	tr_builtin_init();
	return do_register(ops);
}

static int do_register(const struct ferry_transport_ops *ops)
{
	if (!ops) {
		FERRY_ERR(COMP, "register: NULL ops");
		return -EINVAL;
	}
	if (ops->abi_version != FERRY_TRANSPORT_OPS_ABI) {
		FERRY_ERR(COMP, "register '%s': ops ABI version %u, this library speaks %u",
			  ops->name ? ops->name : "?", ops->abi_version, FERRY_TRANSPORT_OPS_ABI);
		return -EPROTO;
	}
	size_t nlen = ops->name ? strlen(ops->name) : 0;
	if (nlen == 0 || nlen >= FERRY_TRANSPORT_NAME_MAX) {
		FERRY_ERR(COMP, "register: name must have 1..%d characters (got %zu)",
			  FERRY_TRANSPORT_NAME_MAX - 1, nlen);
		return -EINVAL;
	}
	if (ops->kind != FERRY_TRANSPORT_MEMORY && ops->kind != FERRY_TRANSPORT_MESSAGE) {
		FERRY_ERR(COMP, "register '%s': kind %d is neither memory- nor message-based",
			  ops->name, (int)ops->kind);
		return -EINVAL;
	}
	if (ops->kind == FERRY_TRANSPORT_MESSAGE && !ops->send_completion) {
		FERRY_ERR(COMP, "register '%s': a message-based transport needs send_completion",
			  ops->name);
		return -EINVAL;
	}
	pthread_mutex_lock(&tr_lock);
	int i = find_locked(ops->name);
	if (i >= 0) {
		/* both read under the lock: an unregister may move the table's entries */
		int same = tr_table[i] == ops, builtin = is_builtin(tr_table[i]);
		pthread_mutex_unlock(&tr_lock);
		if (same)
			return 0;
		FERRY_ERR(COMP, "register: another transport is named '%s'%s", ops->name,
			  builtin ? " (a built-in: choose another name)" : "");
		return -EEXIST;
	}
	if (tr_count == MAX_TRANSPORTS) {
		pthread_mutex_unlock(&tr_lock);
		FERRY_ERR(COMP, "register '%s': registry full (%d)", ops->name, MAX_TRANSPORTS);
		return -ENOSPC;
	}
	tr_instances[tr_count] = 0;
	tr_table[tr_count++] = ops;
	pthread_mutex_unlock(&tr_lock);
	return 0;
}

FERRY_API int ferry_transport_unregister(const struct ferry_transport_ops *ops)
{
	tr_builtin_init();
	if (!ops) {
		FERRY_ERR(COMP, "unregister: NULL ops");
		return -EINVAL;
	}
	if (is_builtin(ops)) {
		FERRY_ERR(COMP, "unregister '%s': built-in transports stay registered", ops->name);
		return -EPERM;
	}
	pthread_mutex_lock(&tr_lock);
	for (unsigned int i = 0; i < tr_count; i++) {
		if (tr_table[i] != ops)
			continue;
		if (tr_instances[i]) {
			unsigned int n = tr_instances[i]; /* read under the lock */
			pthread_mutex_unlock(&tr_lock);
			FERRY_ERR(COMP, "unregister '%s': %u instance(s) still exist", ops->name,
				  n);
			return -EBUSY;
		}
		for (unsigned int j = i + 1; j < tr_count; j++) {
			tr_table[j - 1] = tr_table[j];
			tr_instances[j - 1] = tr_instances[j];
		}
		tr_count--;
		pthread_mutex_unlock(&tr_lock);
		return 0;
	}
	pthread_mutex_unlock(&tr_lock);
	return -ENOENT;
}

FERRY_API const struct ferry_transport_ops *ferry_transport_find(const char *name)
{
	tr_builtin_init();
	if (!name)
		return NULL;
	pthread_mutex_lock(&tr_lock);
	int i = find_locked(name);
	const struct ferry_transport_ops *ops = i >= 0 ? tr_table[i] : NULL;
	pthread_mutex_unlock(&tr_lock);
	return ops;
}

FERRY_API const struct ferry_transport_ops *ferry_transport_get(unsigned int index)
{
	tr_builtin_init();
	pthread_mutex_lock(&tr_lock);
	const struct ferry_transport_ops *ops = index < tr_count ? tr_table[index] : NULL;
	pthread_mutex_unlock(&tr_lock);
	return ops;
}

/* Finds @p name and counts one instance of it under one lock hold, so that an unregister
 * cannot slip in between (which left an instance of an unregistered plugin, and a count that
 * went below zero at its destroy once the plugin was registered again). */
static const struct ferry_transport_ops *find_and_count(const char *name)
{
	tr_builtin_init();
	pthread_mutex_lock(&tr_lock);
	int i = find_locked(name);
	const struct ferry_transport_ops *ops = i >= 0 ? tr_table[i] : NULL;
	if (ops)
		tr_instances[i]++;
	pthread_mutex_unlock(&tr_lock);
	return ops;
}

static void count_instance(const struct ferry_transport_ops *ops, int delta)
{
	pthread_mutex_lock(&tr_lock);
	for (unsigned int i = 0; i < tr_count; i++)
		if (tr_table[i] == ops)
			tr_instances[i] += (unsigned int)delta;
	pthread_mutex_unlock(&tr_lock);
}

FERRY_API int ferry_transport_create(const char *name, const struct ferry_transport_opts *opts,
				     struct ferry_transport **out)
{
	if (!name || !out) {
		FERRY_ERR(COMP, "create: NULL %s", !name ? "name" : "out");
		return -EINVAL;
	}
	if (opts && OPTS_SIZE_CHECK(COMP, "create", opts, struct ferry_transport_opts))
		return -EINVAL;
	const struct ferry_transport_ops *ops = find_and_count(name);
	if (!ops) {
		FERRY_ERR(COMP, "create: no transport named '%s' is registered", name);
		return -ENOENT;
	}
	struct ferry_transport *t = calloc(1, sizeof(*t));
	if (!t) {
		count_instance(ops, -1);
		return -ENOMEM;
	}
	struct ferry_transport_opts def = {.size = sizeof(def), .args = ""};
	if (!opts)
		opts = &def;
	t->ops = ops;
	pthread_mutex_init(&t->pg_lock, NULL);
	t->device = opts->device;
	t->user_ctx = opts->user_ctx;
	if (ops->create) {
		struct ferry_transport_opts o = *opts;
		if (!o.args)
			o.args = "";
		int rc = ops->create(t, &o);
		if (rc) {
			FERRY_ERR(COMP, "create '%s': the plugin failed: %s", name, ferry_strerror(rc));
			count_instance(ops, -1);
			pthread_mutex_destroy(&t->pg_lock);
			free(t);
			return rc;
		}
	}
	*out = t;
	return 0;
}

FERRY_API void ferry_transport_destroy(struct ferry_transport *t)
{
	if (!t)
		return;
	if (t->ops->destroy)
		t->ops->destroy(t); /* also the poll groups still alive */
	count_instance(t->ops, -1);
	while (t->pgs) {
		struct ferry_transport_pg *pg = t->pgs;
		t->pgs = pg->next;
		free(pg);
	}
	pthread_mutex_destroy(&t->pg_lock);
	free(t);
}

FERRY_API int ferry_transport_listen(struct ferry_transport *t, struct ferry_nvme_subsystem *subsys,
				     const char *address)
{
	if (!t || !subsys || !address) {
		FERRY_ERR(COMP, "listen: NULL %s", !t ? "transport" : !subsys ? "subsystem" : "address");
		return -EINVAL;
	}
	if (!t->ops->listen) {
		FERRY_ERR(COMP, "listen: transport '%s' cannot listen", t->ops->name);
		return -ENOTSUP;
	}
	return t->ops->listen(t, subsys, address);
}

FERRY_API int ferry_transport_poll(struct ferry_transport *t, uint32_t max)
{
	if (!t)
		return -EINVAL;
	return t->ops->poll ? t->ops->poll(t, max) : 0;
}

FERRY_API const struct ferry_transport_ops *ferry_transport_get_ops(const struct ferry_transport *t)
{
	return t ? t->ops : NULL;
}

FERRY_API enum ferry_transport_kind ferry_transport_get_kind(const struct ferry_transport *t)
{
	return t ? t->ops->kind : (enum ferry_transport_kind)0;
}

FERRY_API void *ferry_transport_get_ctx(const struct ferry_transport *t)
{
	return t ? t->ctx : NULL;
}

FERRY_API void ferry_transport_set_ctx(struct ferry_transport *t, void *ctx)
{
	if (t)
		t->ctx = ctx;
}

FERRY_API void *ferry_transport_get_user_ctx(const struct ferry_transport *t)
{
	return t ? t->user_ctx : NULL;
}

FERRY_API struct ferry_device *ferry_transport_get_device(const struct ferry_transport *t)
{
	return t ? t->device : NULL;
}

/* ---- poll groups ------------------------------------------------------------------------ */


FERRY_API int ferry_transport_pg_create(struct ferry_transport *t, struct ferry_transport_pg **out)
{
	if (!t || !out) {
		FERRY_ERR(COMP, "pg_create: NULL %s", !t ? "transport" : "out");
		return -EINVAL;
	}
	if (!t->ops->pg_create || !t->ops->pg_poll || !t->ops->pg_destroy) {
		FERRY_ERR(COMP, "pg_create: transport '%s' has no poll groups", t->ops->name);
		return -ENOTSUP;
	}
	struct ferry_transport_pg *pg = calloc(1, sizeof(*pg));
	if (!pg)
		return -ENOMEM;
	pg->transport = t;
	int rc = t->ops->pg_create(t, &pg->ctx);
	if (rc) {
		free(pg);
		return rc;
	}
	pthread_mutex_lock(&t->pg_lock);
	pg->next = t->pgs;
	t->pgs = pg;
	pthread_mutex_unlock(&t->pg_lock);
	*out = pg;
	return 0;
}

FERRY_API int ferry_transport_pg_poll(struct ferry_transport_pg *pg, uint32_t max)
{
	if (!pg)
		return -EINVAL;
	return pg->transport->ops->pg_poll(pg->transport, pg->ctx, max);
}

FERRY_API int ferry_transport_pg_destroy(struct ferry_transport_pg *pg)
{
	if (!pg)
		return 0;
	struct ferry_transport *t = pg->transport;
	int rc = t->ops->pg_destroy(t, pg->ctx);
	if (rc)
		return rc;
	pthread_mutex_lock(&t->pg_lock);
	struct ferry_transport_pg **pp = &t->pgs;
	while (*pp && *pp != pg)
		pp = &(*pp)->next;
	if (*pp)
		*pp = pg->next;
	pthread_mutex_unlock(&t->pg_lock);
	free(pg);
	return 0;
}

FERRY_API struct ferry_transport *
ferry_transport_pg_get_transport(const struct ferry_transport_pg *pg)
{
	return pg ? pg->transport : NULL;
}

int transport_arg_u32(const char *comp, const char *args, const char *key, uint32_t lo,
		      uint32_t hi, uint32_t *val)
{
	char buf[32];
	int rc = ferry_hal_arg_get(args ? args : "", key, buf, sizeof(buf));
	if (rc == -ENOENT)
		return 0;
	char *end = NULL;
	unsigned long long v = rc ? 0 : strtoull(buf, &end, 0);
	/* strtoull takes signs and blanks: only a digit may start the number */
	if (rc || buf[0] < '0' || buf[0] > '9' || !end || *end || v < lo || v > hi) {
		FERRY_ERR(comp, "argument %s='%s': must be a number in %u..%u", key,
			  rc ? "?" : buf, lo, hi);
		return -EINVAL;
	}
	*val = (uint32_t)v;
	return 0;
}

/* "a.b.c.d:port" / "[v6]:port" → address and port strings; adrfam. */
int transport_split_addr(const char *a, char *addr, size_t alen, char *port, size_t plen,
			 uint8_t *adrfam)
{
	const char *colon = strrchr(a, ':');
	if (!colon || colon == a || !colon[1])
		return -EINVAL;
	const char *s = a, *e = colon;
	*adrfam = FERRY_NVMF_ADRFAM_IPV4;
	if (*s == '[') {
		if (e[-1] != ']')
			return -EINVAL;
		s++;
		e--;
		*adrfam = FERRY_NVMF_ADRFAM_IPV6;
	}
	if ((size_t)(e - s) >= alen || strlen(colon + 1) >= plen)
		return -EINVAL;
	memcpy(addr, s, (size_t)(e - s));
	addr[e - s] = 0;
	snprintf(port, plen, "%s", colon + 1);
	return 0;
}
