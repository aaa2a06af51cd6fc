/*
 * Block device core: the registry (create/destroy/lookup/enumerate), claims, getters, and the
 * submit/complete wrappers that validate every I/O before a module sees it and keep counters.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ferry/accel.h>
#include <ferry/bdev.h>
#include <ferry/module/bdev.h>
#include "core_internal.h"

#define COMP "bdev"

/* I/O counters: written on the thread that completes the bdev's I/O, read by
 * ferry_bdev_get_stats() on any thread (e.g. a status display): relaxed atomics. */
struct bdev_counters {
	_Atomic uint64_t ios[FERRY_BDEV_IO_TYPE_COUNT];
	_Atomic uint64_t bytes_read, bytes_written, errors;
};

static void cnt_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

struct ferry_bdev {
	char name[FERRY_BDEV_NAME_MAX];
	char module[32];
	char claim[FERRY_BDEV_NAME_MAX + 32];
	int claimed;
	uint32_t block_size;
	uint32_t md_size;
	uint32_t md_flags;
	uint32_t dif_type;
	uint32_t flags;
	uint64_t num_blocks;
	const struct ferry_bdev_ops *ops;
	void *ctx;
	struct bdev_counters stats;
	struct ferry_bdev *next;
};

static pthread_mutex_t bdev_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ferry_bdev *bdev_head;

static const char *const type_names[FERRY_BDEV_IO_TYPE_COUNT] = {
	"read", "write", "flush", "write_zeroes", "unmap", "compare",
};

/* The geometry, metadata layout and ops table of a new bdev; the name's length. */
static int check_opts(const struct ferry_bdev_opts *opts)
{
	size_t nlen = opts->name ? strlen(opts->name) : 0;
	if (nlen == 0 || nlen >= FERRY_BDEV_NAME_MAX) {
		FERRY_ERR(COMP, "create: name must have 1..%d characters (got %zu)",
			  FERRY_BDEV_NAME_MAX - 1, nlen);
		return -EINVAL;
	}
	if (opts->block_size == 0 || opts->num_blocks == 0) {
		FERRY_ERR(COMP, "create '%s': block_size %u and num_blocks %llu must be non-zero",
			  opts->name, opts->block_size, (unsigned long long)opts->num_blocks);
		return -EINVAL;
	}
	if ((opts->md_flags & FERRY_BDEV_MD_INTERLEAVE) && opts->md_size >= opts->block_size) {
		FERRY_ERR(COMP, "create '%s': interleaved md_size %u leaves no data in a %u-byte block",
			  opts->name, opts->md_size, opts->block_size);
		return -EINVAL;
	}
	if (opts->md_flags & ~FERRY_BDEV_MD_INTERLEAVE) {
		FERRY_ERR(COMP, "create '%s': unknown md_flags 0x%x", opts->name, opts->md_flags);
		return -EINVAL;
	}
	if (opts->dif_type > 3 || (opts->dif_type && opts->md_size < 8)) {
		FERRY_ERR(COMP, "create '%s': dif_type %u needs 8 metadata bytes (md_size %u)",
			  opts->name, opts->dif_type, opts->md_size);
		return -EINVAL;
	}
	if (opts->num_blocks > UINT64_MAX / opts->block_size) {
		FERRY_ERR(COMP, "create '%s': %llu blocks of %u bytes overflow 64 bits", opts->name,
			  (unsigned long long)opts->num_blocks, opts->block_size);
		return -EINVAL;
	}
	if (!opts->ops) {
		FERRY_ERR(COMP, "create '%s': NULL ops table", opts->name);
		return -EINVAL;
	}
	if (opts->ops->abi_version != FERRY_BDEV_OPS_ABI) {
		FERRY_ERR(COMP, "create '%s': ops ABI version %u, this library speaks %u", opts->name,
			  opts->ops->abi_version, FERRY_BDEV_OPS_ABI);
		return -EPROTO;
	}
	return 0;
}

/* Appends b to the registry unless its name is taken. */
static int bdev_register(struct ferry_bdev *b)
{
	pthread_mutex_lock(&bdev_lock);
	struct ferry_bdev **pp = &bdev_head;
	for (; *pp; pp = &(*pp)->next) {
		if (strcmp((*pp)->name, b->name) == 0) {
			pthread_mutex_unlock(&bdev_lock);
			FERRY_ERR(COMP, "create: a bdev named '%s' exists", b->name);
			return -EEXIST;
		}
	}
	*pp = b;
	pthread_mutex_unlock(&bdev_lock);
	return 0;
}

FERRY_API int ferry_bdev_create(const struct ferry_bdev_opts *opts, struct ferry_bdev **out)
{
	if (!opts || !out) {
		FERRY_ERR(COMP, "create: NULL %s", !opts ? "opts" : "out");
		return -EINVAL;
	}
	if (OPTS_SIZE_CHECK(COMP, "create", opts, struct ferry_bdev_opts))
		return -EINVAL;
	int rc = check_opts(opts);
	if (rc)
		return rc;
	struct ferry_bdev *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	snprintf(b->name, sizeof(b->name), "%s", opts->name);
	if (opts->module)
		snprintf(b->module, sizeof(b->module), "%s", opts->module);
	b->block_size = opts->block_size;
	b->num_blocks = opts->num_blocks;
	b->md_size = opts->md_size;
	b->md_flags = opts->md_flags;
	b->dif_type = opts->dif_type;
	b->flags = opts->flags;
	b->ops = opts->ops;
	b->ctx = opts->ctx;
	rc = bdev_register(b);
	if (rc) {
		free(b);
		return rc;
	}
	*out = b;
	return 0;
}

FERRY_API int ferry_bdev_destroy(struct ferry_bdev *b)
{
	if (!b)
		return 0;
	pthread_mutex_lock(&bdev_lock);
	if (b->claimed) {
		char by[sizeof(b->claim)]; /* another thread may release and re-claim at once */
		memcpy(by, b->claim, sizeof(by));
		pthread_mutex_unlock(&bdev_lock);
		FERRY_ERR(COMP, "destroy '%s': claimed by %s", b->name, by);
		return -EBUSY;
	}
	for (struct ferry_bdev **pp = &bdev_head; *pp; pp = &(*pp)->next) {
		if (*pp == b) {
			*pp = b->next;
			break;
		}
	}
	pthread_mutex_unlock(&bdev_lock);
	if (b->ops->destroy)
		b->ops->destroy(b);
	free(b);
	return 0;
}

FERRY_API struct ferry_bdev *ferry_bdev_lookup(const char *name)
{
	struct ferry_bdev *b;
	if (!name)
		return NULL;
	pthread_mutex_lock(&bdev_lock);
	for (b = bdev_head; b; b = b->next)
		if (strcmp(b->name, name) == 0)
			break;
	pthread_mutex_unlock(&bdev_lock);
	return b;
}

FERRY_API struct ferry_bdev *ferry_bdev_first(void)
{
	pthread_mutex_lock(&bdev_lock);
	struct ferry_bdev *b = bdev_head;
	pthread_mutex_unlock(&bdev_lock);
	return b;
}

FERRY_API struct ferry_bdev *ferry_bdev_next(struct ferry_bdev *prev)
{
	if (!prev)
		return NULL;
	pthread_mutex_lock(&bdev_lock);
	struct ferry_bdev *b = prev->next;
	pthread_mutex_unlock(&bdev_lock);
	return b;
}

FERRY_API const char *ferry_bdev_get_name(const struct ferry_bdev *b)
{
	return b ? b->name : "";
}

FERRY_API const char *ferry_bdev_get_module(const struct ferry_bdev *b)
{
	return b ? b->module : "";
}

FERRY_API uint32_t ferry_bdev_get_block_size(const struct ferry_bdev *b)
{
	return b ? b->block_size : 0;
}

FERRY_API uint32_t ferry_bdev_get_data_block_size(const struct ferry_bdev *b)
{
	if (!b)
		return 0;
	return (b->md_flags & FERRY_BDEV_MD_INTERLEAVE) ? b->block_size - b->md_size : b->block_size;
}

FERRY_API uint64_t ferry_bdev_get_num_blocks(const struct ferry_bdev *b)
{
	return b ? b->num_blocks : 0;
}

FERRY_API uint32_t ferry_bdev_get_md_size(const struct ferry_bdev *b)
{
	return b ? b->md_size : 0;
}

FERRY_API uint32_t ferry_bdev_get_md_flags(const struct ferry_bdev *b)
{
	return b ? b->md_flags : 0;
}

FERRY_API uint32_t ferry_bdev_get_dif_type(const struct ferry_bdev *b)
{
	return b ? b->dif_type : 0;
}

FERRY_API uint32_t ferry_bdev_get_flags(const struct ferry_bdev *b)
{
	return b ? b->flags : 0;
}

FERRY_API void *ferry_bdev_get_ctx(const struct ferry_bdev *b)
{
	return b ? b->ctx : NULL;
}

_Static_assert(sizeof(struct ferry_bdev_module_state) <= sizeof(((struct ferry_bdev_io *)0)->module_state),
	       "FERRY_BDEV_IO_MODULE_WORDS too small for struct ferry_bdev_module_state");
_Static_assert(_Alignof(struct ferry_bdev_module_state) <= _Alignof(uint64_t),
	       "module_state alignment");

FERRY_API struct ferry_bdev_module_state *ferry_bdev_io_module(struct ferry_bdev_io *io)
{
	/* The area is a uint64_t array inside the I/O: aligned for the pointers it holds. */
	return io ? (struct ferry_bdev_module_state *)(void *)io->module_state : NULL;
}

typedef int (*bdev_handler)(struct ferry_bdev *, struct ferry_bdev_io *);

static bdev_handler handler(const struct ferry_bdev *b, enum ferry_bdev_io_type t)
{
	switch (t) {
	case FERRY_BDEV_IO_READ:
		return b->ops->read;
	case FERRY_BDEV_IO_WRITE:
		return b->ops->write;
	case FERRY_BDEV_IO_FLUSH:
		return b->ops->flush;
	case FERRY_BDEV_IO_WRITE_ZEROES:
		return b->ops->write_zeroes;
	case FERRY_BDEV_IO_UNMAP:
		return b->ops->unmap;
	case FERRY_BDEV_IO_COMPARE:
		return b->ops->compare;
	default:
		return NULL;
	}
}

FERRY_API int ferry_bdev_io_type_supported(const struct ferry_bdev *b, enum ferry_bdev_io_type t)
{
	if (!b || (unsigned)t >= FERRY_BDEV_IO_TYPE_COUNT)
		return 0;
	return handler(b, t) != NULL;
}

FERRY_API int ferry_bdev_claim(struct ferry_bdev *b, const char *owner)
{
	if (!b || !owner) {
		FERRY_ERR(COMP, "claim: NULL %s", !b ? "bdev" : "owner");
		return -EINVAL;
	}
	pthread_mutex_lock(&bdev_lock);
	if (b->claimed) {
		char by[sizeof(b->claim)]; /* another thread may release and re-claim at once */
		memcpy(by, b->claim, sizeof(by));
		pthread_mutex_unlock(&bdev_lock);
		FERRY_ERR(COMP, "claim '%s' for %s: already claimed by %s", b->name, owner, by);
		return -EBUSY;
	}
	b->claimed = 1;
	snprintf(b->claim, sizeof(b->claim), "%s", owner);
	pthread_mutex_unlock(&bdev_lock);
	return 0;
}

FERRY_API void ferry_bdev_release(struct ferry_bdev *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&bdev_lock);
	b->claimed = 0;
	b->claim[0] = '\0';
	pthread_mutex_unlock(&bdev_lock);
}

FERRY_API const char *ferry_bdev_get_claim(const struct ferry_bdev *b)
{
	if (!b)
		return NULL;
	pthread_mutex_lock(&bdev_lock); /* claim/release run on any thread */
	const char *owner = b->claimed ? b->claim : NULL;
	pthread_mutex_unlock(&bdev_lock);
	return owner;
}

static int is_data_type(enum ferry_bdev_io_type t)
{
	return t == FERRY_BDEV_IO_READ || t == FERRY_BDEV_IO_WRITE || t == FERRY_BDEV_IO_COMPARE;
}

FERRY_API int ferry_bdev_submit(struct ferry_bdev *b, struct ferry_bdev_io *io)
{
	if (!b || !io) {
		FERRY_ERR(COMP, "submit: NULL %s", !b ? "bdev" : "io");
		return -EINVAL;
	}
	if ((unsigned)io->type >= FERRY_BDEV_IO_TYPE_COUNT) {
		FERRY_ERR(COMP, "submit '%s': bad I/O type %d", b->name, (int)io->type);
		return -EINVAL;
	}
	if (!io->cb) {
		FERRY_ERR(COMP, "submit '%s': %s without completion callback", b->name,
			  type_names[io->type]);
		return -EINVAL;
	}
	bdev_handler h = handler(b, io->type);
	if (!h) {
		FERRY_ERR(COMP, "submit '%s': module '%s' does not support %s", b->name, b->module,
			  type_names[io->type]);
		return -ENOTSUP;
	}
	if (io->num_blocks == 0 && io->type != FERRY_BDEV_IO_FLUSH) {
		FERRY_ERR(COMP, "submit '%s': %s of 0 blocks", b->name, type_names[io->type]);
		return -EINVAL;
	}
	if (io->offset_blocks > b->num_blocks || io->num_blocks > b->num_blocks - io->offset_blocks) {
		FERRY_ERR(COMP, "submit '%s': %s of blocks %llu+%llu beyond the end (%llu blocks)",
			  b->name, type_names[io->type], (unsigned long long)io->offset_blocks,
			  (unsigned long long)io->num_blocks, (unsigned long long)b->num_blocks);
		return -ERANGE;
	}
	if (is_data_type(io->type)) {
		uint64_t want = io->num_blocks * b->block_size; /* cannot overflow: checked at create */
		uint64_t have = 0;
		int wraps = 0;
		/* Summed with an overflow check: lengths that add up to @want only modulo 2^64
		 * would describe far more memory than the I/O moves. */
		for (uint32_t i = 0; io->mem.iov && i < io->mem.iovcnt && !wraps; i++) {
			wraps = io->mem.iov[i].iov_len > UINT64_MAX - have;
			have += io->mem.iov[i].iov_len;
		}
		if (wraps) {
			FERRY_ERR(COMP,
				  "submit '%s': %s: the segment lengths of mem overflow 64 bits",
				  b->name, type_names[io->type]);
			return -EINVAL;
		}
		if (have != want) {
			FERRY_ERR(COMP, "submit '%s': %s of %llu blocks needs %llu bytes, mem has %llu",
				  b->name, type_names[io->type], (unsigned long long)io->num_blocks,
				  (unsigned long long)want, (unsigned long long)have);
			return -EINVAL;
		}
	}
	io->bdev = b;
	io->status = 0;
	io->error = FERRY_BDEV_ERR_NONE;
	io->error_block = 0;
	/* Read now: finishing the sequence frees it, possibly before h() returns. */
	io->poll_chan = io->seq ? ferry_seq_get_chan(io->seq) : NULL;
	io->poll_domain = io->mem.domain;
	io->poll_bdev = b;
	ferry_bdev_io_module(io)->ctx = NULL;
	int rc = h(b, io);
	if (rc) {
		io->poll_chan = NULL;
		io->poll_domain = NULL;
		io->poll_bdev = NULL;
	}
	return rc;
}

/* Completions run per call of each poll: enough to make progress, bounded for latency. */
#define IO_POLL_MAX 64

FERRY_API int ferry_bdev_poll(struct ferry_bdev *bdev, uint32_t max)
{
	if (!bdev)
		return -EINVAL;
	return bdev->ops->poll ? bdev->ops->poll(bdev, max) : 0;
}

FERRY_API int ferry_bdev_io_poll(struct ferry_bdev_io *io)
{
	if (!io)
		return -EINVAL;
	/* Both read before polling: the callback may run (and reuse or free @io) in either. */
	struct ferry_accel_chan *chan = io->poll_chan;
	struct ferry_memdomain *dom = io->poll_domain;
	struct ferry_bdev *pb = io->poll_bdev;
	int done = 0, rc;
	if (pb) {
		rc = ferry_bdev_poll(pb, IO_POLL_MAX);
		if (rc < 0)
			return rc;
		done += rc;
	}
	if (dom) {
		rc = ferry_memdomain_poll(dom, IO_POLL_MAX);
		if (rc < 0)
			return rc;
		done += rc;
	}
	if (chan) {
		rc = ferry_accel_chan_poll(chan, IO_POLL_MAX);
		if (rc < 0)
			return rc;
		done += rc;
	}
	return done;
}

FERRY_API void ferry_bdev_io_complete(struct ferry_bdev_io *io, int status)
{
	struct ferry_bdev *b = io->bdev;
	io->status = status;
	if (b) {
		uint64_t bytes = io->num_blocks * b->block_size;
		if (status)
			cnt_add(&b->stats.errors, 1);
		else
			cnt_add(&b->stats.ios[io->type], 1);
		if (!status && io->type == FERRY_BDEV_IO_READ)
			cnt_add(&b->stats.bytes_read, bytes);
		else if (!status && io->type == FERRY_BDEV_IO_WRITE)
			cnt_add(&b->stats.bytes_written, bytes);
	}
	/* Before the callback, which may resubmit @io (setting them again) or free it. */
	io->poll_chan = NULL;
	io->poll_domain = NULL;
	io->poll_bdev = NULL;
	io->cb(io, io->cb_arg);
}

FERRY_API int ferry_bdev_get_stats(const struct ferry_bdev *b, struct ferry_bdev_stats *stats)
{
	if (!b || !stats) {
		FERRY_ERR(COMP, "get_stats: NULL argument");
		return -EINVAL;
	}
	if (OPTS_SIZE_CHECK(COMP, "get_stats", stats, struct ferry_bdev_stats))
		return -EINVAL;
	memset(stats, 0, sizeof(*stats));
	stats->size = sizeof(*stats);
	for (int i = 0; i < FERRY_BDEV_IO_TYPE_COUNT; i++)
		stats->ios[i] = atomic_load_explicit(&b->stats.ios[i], memory_order_relaxed);
	stats->bytes_read = atomic_load_explicit(&b->stats.bytes_read, memory_order_relaxed);
	stats->bytes_written = atomic_load_explicit(&b->stats.bytes_written, memory_order_relaxed);
	stats->errors = atomic_load_explicit(&b->stats.errors, memory_order_relaxed);
	return 0;
}
