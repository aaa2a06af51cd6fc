/*
 * The accel module: initialisation, the accel virtual memory domain, the fixed-size buffer
 * pool (two size classes, a per-channel cache in front), the list of channels and the global
 * counters, and the operation names.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "accel_internal.h"
#include <ferry/module/memdomain.h>

#define COMP ACCEL_COMP

const struct ferry_hal_accel_op_info accel_inserted_opinfo[ACCEL_OP_MAX - FERRY_ACCEL_OP_COUNT] = {
	[ACCEL_OP_PULL - FERRY_ACCEL_OP_COUNT] = {"pull", OPND_BIT(OPND_SRC), OPND_BIT(OPND_DST)},
	[ACCEL_OP_PUSH - FERRY_ACCEL_OP_COUNT] = {"push", OPND_BIT(OPND_SRC), OPND_BIT(OPND_DST)},
};

struct pool_class {
	size_t size;   /* bytes handed out */
	size_t stride; /* bytes between buffers (page multiple) */
	uint32_t count;
	char *mem;
	void **stack;
	uint32_t top;
};

static struct {
	pthread_mutex_t lock; /* pool stacks, channel list, retired counters */
	int inited;
	struct ferry_memdomain *domain;
	struct ferry_accel_opts opts;
	struct pool_class cls[POOL_CLASSES];
	struct ferry_accel_chan *chans;
	uint64_t retired[CNT_COUNT]; /* counters of destroyed channels */
	_Atomic uint64_t in_use;
	_Atomic uint64_t peak;
} mod = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The accel domain has no memory behind it: no pull, push, memzero or translate. */
static const struct ferry_memdomain_ops accel_domain_ops = {
	.abi_version = FERRY_MEMDOMAIN_OPS_ABI,
};

FERRY_API const char *ferry_accel_opcode_name(enum ferry_accel_opcode op)
{
	if ((unsigned)op >= FERRY_ACCEL_OP_COUNT)
		return "unknown";
	return accel_op_info(op)->name;
}

FERRY_API int ferry_accel_get_default_opts(struct ferry_accel_opts *opts)
{
	if (!opts) {
		FERRY_ERR(COMP, "get_default_opts: NULL opts");
		return -EINVAL;
	}
	if (OPTS_SIZE_CHECK(COMP, "get_default_opts", opts, struct ferry_accel_opts))
		return -EINVAL;
	size_t sz = opts->size;
	memset(opts, 0, sizeof(*opts));
	opts->size = sz;
	opts->small_buf_size = 8192;
	opts->small_buf_count = 256;
	opts->large_buf_size = 135168;
	opts->large_buf_count = 64;
	opts->cache_size = 4;
	return 0;
}

static int check_opts(const struct ferry_accel_opts *o)
{
	if (opts_size_check(COMP, "init", "opts->size", o->size, "struct ferry_accel_opts",
			    sizeof(*o)))
		return -EINVAL;
	if (o->small_buf_size == 0 || o->large_buf_size == 0 ||
	    o->small_buf_size > o->large_buf_size || o->large_buf_size > ACCEL_BUF_SIZE_MAX) {
		FERRY_ERR(COMP,
			  "init: buffer sizes must be 0 < small (%u) <= large (%u) <= %u bytes",
			  o->small_buf_size, o->large_buf_size, ACCEL_BUF_SIZE_MAX);
		return -EINVAL;
	}
	if (o->small_buf_count > ACCEL_BUF_COUNT_MAX || o->large_buf_count > ACCEL_BUF_COUNT_MAX ||
	    o->cache_size > ACCEL_BUF_COUNT_MAX) {
		FERRY_ERR(COMP, "init: buffer and cache counts are limited to %u",
			  ACCEL_BUF_COUNT_MAX);
		return -EINVAL;
	}
	return 0;
}

static void pool_free(void)
{
	for (int c = 0; c < POOL_CLASSES; c++) {
		free(mod.cls[c].mem);
		free(mod.cls[c].stack);
		memset(&mod.cls[c], 0, sizeof(mod.cls[c]));
	}
}

static int pool_alloc(void)
{
	uint32_t sizes[POOL_CLASSES] = {mod.opts.small_buf_size, mod.opts.large_buf_size};
	uint32_t counts[POOL_CLASSES] = {mod.opts.small_buf_count, mod.opts.large_buf_count};
	for (int c = 0; c < POOL_CLASSES; c++) {
		struct pool_class *pc = &mod.cls[c];
		pc->size = sizes[c];
		pc->stride = (sizes[c] + 4095u) & ~(size_t)4095u;
		pc->count = counts[c];
		if (!pc->count)
			continue;
		void *mem = NULL;
		if (posix_memalign(&mem, 4096, pc->stride * pc->count) != 0) {
			FERRY_ERR(COMP, "init: cannot allocate %u buffers of %zu bytes", pc->count,
				  pc->size);
			pool_free();
			return -ENOMEM;
		}
		pc->mem = mem;
		pc->stack = calloc(pc->count, sizeof(void *));
		if (!pc->stack) {
			pool_free();
			return -ENOMEM;
		}
		for (uint32_t i = 0; i < pc->count; i++)
			pc->stack[i] = pc->mem + (size_t)(pc->count - 1 - i) * pc->stride;
		pc->top = pc->count;
	}
	return 0;
}

FERRY_API int ferry_accel_init(const struct ferry_accel_opts *opts)
{
	struct ferry_accel_opts o = {.size = sizeof(o)};
	ferry_accel_get_default_opts(&o);
	if (opts) {
		int rc = check_opts(opts);
		if (rc)
			return rc;
		o = *opts;
		o.size = sizeof(o);
	}
	pthread_mutex_lock(&mod.lock);
	if (mod.inited) {
		pthread_mutex_unlock(&mod.lock);
		FERRY_ERR(COMP, "init: already initialised (call ferry_accel_fini() first)");
		return -EALREADY;
	}
	mod.opts = o;
	int rc = pool_alloc();
	if (rc == 0) {
		struct ferry_memdomain_opts dopts = {.size = sizeof(dopts),
						     .type = FERRY_MEMDOMAIN_ACCEL,
						     .name = "accel",
						     .ops = &accel_domain_ops,
						     /* every virtual buffer has its own range */
						     .flags = FERRY_MEMDOMAIN_F_NO_ALIAS};
		rc = ferry_memdomain_create(&dopts, &mod.domain);
		if (rc)
			pool_free();
	}
	if (rc == 0) {
		memset(mod.retired, 0, sizeof(mod.retired));
		atomic_store(&mod.in_use, 0);
		atomic_store(&mod.peak, 0);
		mod.inited = 1;
	}
	pthread_mutex_unlock(&mod.lock);
	return rc;
}

FERRY_API void ferry_accel_fini(void)
{
	pthread_mutex_lock(&mod.lock);
	if (!mod.inited) {
		pthread_mutex_unlock(&mod.lock);
		return;
	}
	if (mod.chans) {
		pthread_mutex_unlock(&mod.lock);
		FERRY_ERR(COMP, "fini: channels are still open (destroy them first); nothing done");
		return;
	}
	ferry_memdomain_destroy(mod.domain);
	mod.domain = NULL;
	pool_free();
	memset(&mod.opts, 0, sizeof(mod.opts)); /* ferry_accel_get_buf_max() is 0 again */
	mod.inited = 0;
	pthread_mutex_unlock(&mod.lock);
}

int accel_module_ensure(void)
{
	pthread_mutex_lock(&mod.lock);
	int inited = mod.inited;
	pthread_mutex_unlock(&mod.lock);
	if (inited)
		return 0;
	int rc = ferry_accel_init(NULL);
	return rc == -EALREADY ? 0 : rc;
}

/* The public getters may run on any thread, also while another one's first channel
 * initialises the module lazily: read under the lock. The internal ones below are called
 * on a channel's thread, after accel_module_ensure() (which took the lock) returned. */
FERRY_API struct ferry_memdomain *ferry_accel_get_domain(void)
{
	pthread_mutex_lock(&mod.lock);
	struct ferry_memdomain *d = mod.domain;
	pthread_mutex_unlock(&mod.lock);
	return d;
}

FERRY_API size_t ferry_accel_get_buf_max(void)
{
	pthread_mutex_lock(&mod.lock);
	size_t n = mod.opts.large_buf_size;
	pthread_mutex_unlock(&mod.lock);
	return n;
}

struct ferry_memdomain *accel_domain(void)
{
	return mod.domain;
}

uint32_t accel_cache_size(void)
{
	return mod.opts.cache_size;
}

size_t accel_large_size(void)
{
	return mod.opts.large_buf_size;
}

void accel_module_chan_add(struct ferry_accel_chan *ch)
{
	pthread_mutex_lock(&mod.lock);
	ch->gnext = mod.chans;
	mod.chans = ch;
	pthread_mutex_unlock(&mod.lock);
}

void accel_module_chan_del(struct ferry_accel_chan *ch)
{
	pthread_mutex_lock(&mod.lock);
	for (struct ferry_accel_chan **pp = &mod.chans; *pp; pp = &(*pp)->gnext) {
		if (*pp == ch) {
			*pp = ch->gnext;
			break;
		}
	}
	for (int i = 0; i < CNT_COUNT; i++)
		mod.retired[i] += atomic_load_explicit(&ch->cnt.v[i], memory_order_relaxed);
	pthread_mutex_unlock(&mod.lock);
}

static void note_take(struct ferry_accel_chan *ch)
{
	uint64_t n = atomic_fetch_add(&mod.in_use, 1) + 1;
	uint64_t p = atomic_load(&mod.peak);
	while (n > p && !atomic_compare_exchange_weak(&mod.peak, &p, n))
		;
	cnt_add(&ch->cnt, CNT_BUFS_TAKEN, 1);
	uint64_t c = atomic_load_explicit(&ch->cnt.bufs_in_use, memory_order_relaxed) + 1;
	atomic_store_explicit(&ch->cnt.bufs_in_use, c, memory_order_relaxed);
	if (c > atomic_load_explicit(&ch->cnt.bufs_peak, memory_order_relaxed))
		atomic_store_explicit(&ch->cnt.bufs_peak, c, memory_order_relaxed);
}

void *accel_pool_get(struct ferry_accel_chan *ch, size_t len, uint8_t *cls)
{
	int c;
	if (len <= mod.cls[POOL_SMALL].size && mod.cls[POOL_SMALL].count)
		c = POOL_SMALL;
	else if (len <= mod.cls[POOL_LARGE].size)
		c = POOL_LARGE;
	else
		return NULL;
	void *b = NULL;
	if (ch->ncache[c]) {
		b = ch->cache[c][--ch->ncache[c]];
	} else {
		pthread_mutex_lock(&mod.lock);
		if (mod.cls[c].top)
			b = mod.cls[c].stack[--mod.cls[c].top];
		pthread_mutex_unlock(&mod.lock);
	}
	if (!b && c == POOL_SMALL) {
		/* A small request may use a large buffer rather than fail. */
		return accel_pool_get(ch, mod.cls[POOL_LARGE].size, cls);
	}
	if (!b)
		return NULL;
	*cls = (uint8_t)c;
	note_take(ch);
	return b;
}

void accel_pool_put(struct ferry_accel_chan *ch, void *buf, uint8_t cls)
{
	atomic_fetch_sub(&mod.in_use, 1);
	uint64_t c = atomic_load_explicit(&ch->cnt.bufs_in_use, memory_order_relaxed);
	atomic_store_explicit(&ch->cnt.bufs_in_use, c - 1, memory_order_relaxed);
	if (ch->ncache[cls] < mod.opts.cache_size) {
		ch->cache[cls][ch->ncache[cls]++] = buf;
		return;
	}
	pthread_mutex_lock(&mod.lock);
	mod.cls[cls].stack[mod.cls[cls].top++] = buf;
	pthread_mutex_unlock(&mod.lock);
}

void accel_pool_cache_flush(struct ferry_accel_chan *ch)
{
	pthread_mutex_lock(&mod.lock);
	for (int c = 0; c < POOL_CLASSES; c++) {
		while (ch->ncache[c])
			mod.cls[c].stack[mod.cls[c].top++] = ch->cache[c][--ch->ncache[c]];
	}
	pthread_mutex_unlock(&mod.lock);
}

static void fill_stats(struct ferry_accel_stats *out, const uint64_t *v)
{
	for (int i = 0; i < FERRY_ACCEL_OP_COUNT; i++) {
		out->ops_hw[i] = v[CNT_OPS_HW + i];
		out->ops_sw[i] = v[CNT_OPS_SW + i];
	}
	out->bytes_hw = v[CNT_BYTES_HW];
	out->bytes_sw = v[CNT_BYTES_SW];
	out->seqs_finished = v[CNT_SEQS_FINISHED];
	out->seqs_completed = v[CNT_SEQS_COMPLETED];
	out->seqs_aborted = v[CNT_SEQS_ABORTED];
	out->copies_elided = v[CNT_COPIES_ELIDED];
	out->fusions = v[CNT_FUSIONS];
	out->fused_ops = v[CNT_FUSED_OPS];
	out->bufs_taken = v[CNT_BUFS_TAKEN];
	out->bounces = v[CNT_BOUNCES];
	out->sw_fallbacks = v[CNT_SW_FALLBACKS];
	out->errors = v[CNT_ERRORS];
	out->nomem = v[CNT_NOMEM];
	out->nomem_retries = v[CNT_NOMEM_RETRIES];
	out->bytes_copied = v[CNT_BYTES_COPIED];
	out->bytes_bounced = v[CNT_BYTES_BOUNCED];
	out->bytes_out_hw = v[CNT_BYTES_OUT_HW];
	out->bytes_out_sw = v[CNT_BYTES_OUT_SW];
	out->bytes_out_fused = v[CNT_BYTES_OUT_FUSED];
}

FERRY_API int ferry_accel_get_stats(struct ferry_accel_chan *chan, struct ferry_accel_stats *out)
{
	if (!out) {
		FERRY_ERR(COMP, "get_stats: NULL out");
		return -EINVAL;
	}
	if (opts_size_check(COMP, "get_stats", "stats->size", out->size,
			    "struct ferry_accel_stats", sizeof(*out)))
		return -EINVAL;
	uint64_t v[CNT_COUNT];
	struct ferry_accel_stats all;
	memset(&all, 0, sizeof(all));
	if (chan) {
		for (int i = 0; i < CNT_COUNT; i++)
			v[i] = atomic_load_explicit(&chan->cnt.v[i], memory_order_relaxed);
		fill_stats(&all, v);
		all.bufs_in_use = atomic_load_explicit(&chan->cnt.bufs_in_use,
						       memory_order_relaxed);
		all.bufs_peak = atomic_load_explicit(&chan->cnt.bufs_peak, memory_order_relaxed);
	} else {
		pthread_mutex_lock(&mod.lock);
		memcpy(v, mod.retired, sizeof(v));
		for (struct ferry_accel_chan *ch = mod.chans; ch; ch = ch->gnext)
			for (int i = 0; i < CNT_COUNT; i++)
				v[i] += atomic_load_explicit(&ch->cnt.v[i], memory_order_relaxed);
		pthread_mutex_unlock(&mod.lock);
		fill_stats(&all, v);
		all.bufs_in_use = atomic_load(&mod.in_use);
		all.bufs_peak = atomic_load(&mod.peak);
	}
	size_t sz = out->size;
	all.size = sz;
	memcpy(out, &all, sz < sizeof(all) ? sz : sizeof(all));
	return 0;
}
