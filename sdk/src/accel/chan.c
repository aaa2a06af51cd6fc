/*
 * Accel channels: creation on a device's engine (or software only), the per-channel object
 * pools (sequences, tasks, virtual buffers), the virtual buffer API, the plan hook, and the
 * poller that reaps the engine, domains and queues and delivers completions.
 */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "accel_internal.h"

#define COMP ACCEL_COMP

#define DEF_MAX_SEQS 256u
#define DEF_MAX_TASKS 1024u
#define DEF_MAX_VBUFS 1024u
#define LIMIT_OBJS (1u << 20)

static void chan_free(struct ferry_accel_chan *ch)
{
	free(ch->task_mem);
	free(ch->seq_mem);
	free(ch->vbuf_mem);
	for (int c = 0; c < POOL_CLASSES; c++)
		free(ch->cache[c]);
	free(ch->domw);
	free(ch);
}

static int chan_opts(const struct ferry_accel_chan_opts *opts, struct ferry_accel_chan_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->size = sizeof(*o);
	if (opts) {
		if (OPTS_SIZE_CHECK(COMP, "chan_create", opts, struct ferry_accel_chan_opts))
			return -EINVAL;
		*o = *opts;
		o->size = sizeof(*o);
	}
	if (o->disabled_passes & ~(FERRY_ACCEL_PASS_ELIDE | FERRY_ACCEL_PASS_FUSE)) {
		FERRY_ERR(COMP, "chan_create: unknown pass bits 0x%x", o->disabled_passes);
		return -EINVAL;
	}
	if (o->max_seqs > LIMIT_OBJS || o->max_tasks > LIMIT_OBJS || o->max_vbufs > LIMIT_OBJS) {
		FERRY_ERR(COMP, "chan_create: max_seqs/max_tasks/max_vbufs are limited to %u",
			  LIMIT_OBJS);
		return -EINVAL;
	}
	if (!o->max_seqs)
		o->max_seqs = DEF_MAX_SEQS;
	if (!o->max_tasks)
		o->max_tasks = DEF_MAX_TASKS;
	if (!o->max_vbufs)
		o->max_vbufs = DEF_MAX_VBUFS;
	return 0;
}

static int chan_hw_open(struct ferry_accel_chan *ch, struct ferry_device *dev)
{
	const struct ferry_hal_dma_ops *dma = dev->backend->dma;
	if (!dma || !dma->accel)
		return 0; /* software engine only */
	const struct ferry_hal_accel_ops *hw = dma->accel;
	if (hw->abi_version != FERRY_HAL_ACCEL_ABI_VERSION) {
		FERRY_ERR(COMP,
			  "device %s: accel ABI version %u, this library speaks %u; using "
			  "the software engine",
			  dev->name, hw->abi_version, FERRY_HAL_ACCEL_ABI_VERSION);
		return 0;
	}
	if (!hw->submit || !hw->poll || (hw->nchains && !hw->chains)) {
		FERRY_ERR(COMP,
			  "device %s: accel ops lack submit/poll/chains; using the software "
			  "engine",
			  dev->name);
		return 0;
	}
	struct ferry_dma_chan_opts dopts = {.size = sizeof(dopts), .ring_size = ch->opts.ring_size};
	int rc = dma->chan_create(dev, &dopts, &ch->hwchan);
	if (rc) {
		FERRY_ERR(COMP, "device %s: cannot open a DMA channel (%s)", dev->name,
			  ferry_strerror(rc));
		return rc > 0 ? -EIO : rc;
	}
	dev->open_chans++;
	ch->dev = dev;
	ch->dma = dma;
	ch->hw = hw;
	return 0;
}

/* Thread the free lists of tasks, sequences and virtual buffers through their arrays. */
static void chan_lists_init(struct ferry_accel_chan *ch)
{
	const struct ferry_accel_chan_opts *o = &ch->opts;
	for (uint32_t i = o->max_tasks; i-- > 0;) {
		ch->task_mem[i].next = ch->free_tasks;
		ch->free_tasks = &ch->task_mem[i];
	}
	ch->tasks_free = o->max_tasks;
	for (uint32_t i = o->max_seqs; i-- > 0;) {
		ch->seq_mem[i].state = SEQ_FREE;
		ch->seq_mem[i].next = ch->free_seqs;
		ch->free_seqs = &ch->seq_mem[i];
	}
	ch->seqs_free = o->max_seqs;
	for (uint32_t i = o->max_vbufs; i-- > 0;) {
		struct accel_vbuf *v = &ch->vbuf_mem[i];
		v->chan = ch;
		v->idx = i;
		v->base = ACCEL_VA_BASE + (uint64_t)i * ACCEL_VA_STRIDE;
		v->next = ch->free_vbufs;
		ch->free_vbufs = v;
	}
}

FERRY_API int ferry_accel_chan_create(struct ferry_device *dev,
				      const struct ferry_accel_chan_opts *opts,
				      struct ferry_accel_chan **out)
{
	if (!out) {
		FERRY_ERR(COMP, "chan_create: NULL out");
		return -EINVAL;
	}
	struct ferry_accel_chan_opts o;
	int rc = chan_opts(opts, &o);
	if (rc)
		return rc;
	rc = accel_module_ensure();
	if (rc)
		return rc;
	struct ferry_accel_chan *ch = calloc(1, sizeof(*ch));
	if (!ch)
		return -ENOMEM;
	ch->opts = o;
	ch->task_mem = calloc(o.max_tasks, sizeof(*ch->task_mem));
	ch->seq_mem = calloc(o.max_seqs, sizeof(*ch->seq_mem));
	ch->vbuf_mem = calloc(o.max_vbufs, sizeof(*ch->vbuf_mem));
	uint32_t csz = accel_cache_size();
	for (int c = 0; c < POOL_CLASSES; c++)
		ch->cache[c] = calloc(csz ? csz : 1, sizeof(void *));
	if (!ch->task_mem || !ch->seq_mem || !ch->vbuf_mem || !ch->cache[0] || !ch->cache[1]) {
		FERRY_ERR(COMP, "chan_create: out of memory for %u tasks / %u sequences",
			  o.max_tasks, o.max_seqs);
		rc = -ENOMEM;
		goto err_free;
	}
	chan_lists_init(ch);
	if (dev) {
		rc = chan_hw_open(ch, dev);
		if (rc)
			goto err_free;
	}
	accel_module_chan_add(ch);
	*out = ch;
	return 0;

err_free:
	chan_free(ch); /* whatever of the arrays and the engine channel was taken */
	return rc;
}

/*
 * Destroy waits for sequences in flight, but not forever: an engine or a domain that makes no
 * progress (no completion at all) for DESTROY_STALL_NS is stuck. Its sequences then get their
 * callbacks with -ECANCELED, and the channel's memory (tasks, bounce and pool buffers the
 * stuck work may still write, and the channel the late completions point to) is leaked on
 * purpose rather than freed under a writer.
 */
#define DESTROY_STALL_NS 5000000000ull

/* Channels abandoned by a stuck destroy, never freed (see above). */
static pthread_mutex_t abandoned_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ferry_accel_chan *abandoned_chans;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void cancel_stuck(struct ferry_accel_chan *ch)
{
	FERRY_ERR(COMP,
		  "chan_destroy: %u sequence(s) still in flight after %llu s without progress "
		  "(%u on the engine, %u pulls/pushes in domains); cancelling them and leaking the "
		  "channel's memory",
		  ch->inflight, DESTROY_STALL_NS / 1000000000ull, ch->hw_inflight, ch->dom_pending);
	for (uint32_t i = 0; i < ch->opts.max_seqs; i++) {
		struct ferry_seq *s = &ch->seq_mem[i];
		if (s->state != SEQ_RUNNING)
			continue;
		ferry_seq_cb cb = s->cb;
		void *arg = s->cb_arg;
		accel_seq_cancel_stuck(s);
		cnt_add(&ch->cnt, CNT_SEQS_COMPLETED, 1);
		cnt_add(&ch->cnt, CNT_ERRORS, 1);
		ch->inflight--;
		cb(arg, -ECANCELED);
	}
}

FERRY_API void ferry_accel_chan_destroy(struct ferry_accel_chan *ch)
{
	if (!ch)
		return;
	/* Abort what was never finished (or whose finish failed). */
	for (uint32_t i = 0; i < ch->opts.max_seqs; i++) {
		struct ferry_seq *s = &ch->seq_mem[i];
		if (s->state == SEQ_BUILDING || s->state == SEQ_PLANNED)
			ferry_seq_abort(s);
	}
	/* Drive sequences in flight to completion, as long as something progresses. */
	uint64_t seen = ch->events, last = now_ns();
	uint32_t left = ch->inflight;
	while (ch->inflight) {
		ferry_accel_chan_poll(ch, UINT32_MAX);
		if (ch->events != seen || ch->inflight != left) {
			seen = ch->events;
			left = ch->inflight;
			last = now_ns();
			continue;
		}
		if (now_ns() - last > DESTROY_STALL_NS) {
			cancel_stuck(ch);
			break;
		}
		sched_yield();
	}
	bool leak = ch->inflight || ch->hw_inflight || ch->dom_pending;
	for (uint32_t i = 0; i < ch->opts.max_vbufs; i++)
		ch->vbuf_mem[i].in_use = 0;
	if (ch->hw && !ch->hw_inflight) {
		ch->dma->chan_destroy(ch->hwchan);
		ch->dev->open_chans--;
	}
	accel_pool_cache_flush(ch);
	accel_module_chan_del(ch);
	if (!leak) {
		chan_free(ch);
		return;
	}
	/* Kept reachable on purpose: a stuck writer may still use it, and a leak checker must
	 * not report what was abandoned deliberately (and logged above). */
	pthread_mutex_lock(&abandoned_lock);
	ch->abandoned_next = abandoned_chans;
	abandoned_chans = ch;
	pthread_mutex_unlock(&abandoned_lock);
}

FERRY_API int ferry_accel_chan_set_plan_hook(struct ferry_accel_chan *chan,
					     enum ferry_seq_dump_fmt fmt, ferry_accel_plan_cb cb,
					     void *cb_arg)
{
	if (!chan || (fmt != FERRY_SEQ_DUMP_TEXT && fmt != FERRY_SEQ_DUMP_JSON)) {
		FERRY_ERR(COMP, "set_plan_hook: %s", !chan ? "NULL channel" : "unknown format");
		return -EINVAL;
	}
	chan->plan_cb = cb;
	chan->plan_arg = cb_arg;
	chan->plan_fmt = fmt;
	return 0;
}

void accel_plan_hook(struct ferry_seq *seq, const char *stage)
{
	struct ferry_accel_chan *ch = seq->chan;
	if (!ch->plan_cb)
		return;
	char small[2048];
	int n = accel_dump(seq, ch->plan_fmt, small, sizeof(small));
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		ch->plan_cb(ch->plan_arg, seq, stage, small);
		return;
	}
	char *big = malloc((size_t)n + 1);
	if (!big) {
		ch->plan_cb(ch->plan_arg, seq, stage, small); /* truncated rather than nothing */
		return;
	}
	accel_dump(seq, ch->plan_fmt, big, (size_t)n + 1);
	ch->plan_cb(ch->plan_arg, seq, stage, big);
	free(big);
}

struct accel_task *accel_task_get(struct ferry_accel_chan *ch)
{
	struct accel_task *t = ch->free_tasks;
	if (!t)
		return NULL;
	ch->free_tasks = t->next;
	ch->tasks_free--;
	memset(t, 0, sizeof(*t));
	t->chain = -1;
	t->group_len = 1;
	return t;
}

void accel_task_put(struct ferry_accel_chan *ch, struct accel_task *t)
{
	t->seq = NULL;
	t->next = ch->free_tasks;
	ch->free_tasks = t;
	ch->tasks_free++;
}

struct accel_vbuf *accel_vbuf_of(struct ferry_accel_chan *ch, void *ctx)
{
	uintptr_t p = (uintptr_t)ctx, b = (uintptr_t)ch->vbuf_mem;
	if (p < b || p >= b + (uintptr_t)ch->opts.max_vbufs * sizeof(struct accel_vbuf) ||
	    (p - b) % sizeof(struct accel_vbuf))
		return NULL;
	struct accel_vbuf *v = ctx;
	return v->in_use ? v : NULL;
}

FERRY_API int ferry_accel_get_buf(struct ferry_accel_chan *chan, size_t len, void **buf,
				  struct ferry_memdomain **domain, void **domain_ctx)
{
	if (!chan || !buf || !domain || !domain_ctx) {
		FERRY_ERR(COMP, "get_buf: NULL argument");
		return -EINVAL;
	}
	if (len == 0 || len > accel_large_size()) {
		FERRY_ERR(COMP, "get_buf: length %zu outside 1..%zu (the pool's large buffer size)",
			  len, accel_large_size());
		return -EINVAL;
	}
	struct accel_vbuf *v = chan->free_vbufs;
	if (!v) {
		FERRY_ERR(COMP, "get_buf: all %u virtual buffers of the channel are in use",
			  chan->opts.max_vbufs);
		return -ENOMEM;
	}
	chan->free_vbufs = v->next;
	v->next = NULL;
	v->in_use = 1;
	v->len = len;
	v->real = NULL;
	v->bound_seq = NULL;
	v->owner = NULL;
	*buf = (void *)(uintptr_t)v->base;
	*domain = accel_domain();
	*domain_ctx = v;
	return 0;
}

FERRY_API void ferry_accel_put_buf(struct ferry_accel_chan *chan, void *buf,
				   struct ferry_memdomain *domain, void *domain_ctx)
{
	if (!chan) {
		FERRY_ERR(COMP, "put_buf: NULL channel");
		return;
	}
	struct accel_vbuf *v = accel_vbuf_of(chan, domain_ctx);
	if (!v || domain != accel_domain() || (uint64_t)(uintptr_t)buf < v->base ||
	    (uint64_t)(uintptr_t)buf >= v->base + v->len) {
		FERRY_ERR(COMP, "put_buf: %p is not a live virtual buffer of this channel", buf);
		return;
	}
	struct ferry_seq *o = v->bound_seq ? v->bound_seq : vbuf_owner(v);
	if (o) {
		FERRY_ERR(COMP, "put_buf: virtual buffer %u is used by sequence %u, still alive",
			  v->idx, o->id);
		return;
	}
	v->in_use = 0;
	v->next = chan->free_vbufs;
	chan->free_vbufs = v;
}

void accel_seq_ready(struct ferry_seq *seq)
{
	struct ferry_accel_chan *ch = seq->chan;
	if (seq->queued)
		return;
	seq->queued = 1;
	seq->next = NULL;
	if (ch->ready_tail)
		ch->ready_tail->next = seq;
	else
		ch->ready_head = seq;
	ch->ready_tail = seq;
}

/*
 * The domains a channel polls. No fixed table: a domain with a pull or push in flight that
 * the poller skipped would never complete it, and destroy would wait forever. Slots are
 * freed in place (a domain's poll may complete work and so call accel_dom_wait_del() while
 * the poller walks the table) and reused by the next add.
 */
int accel_dom_wait_add(struct ferry_accel_chan *ch, struct ferry_memdomain *d)
{
	uint32_t freei = UINT32_MAX;
	for (uint32_t i = 0; i < ch->ndomw; i++) {
		if (ch->domw[i].domain == d) {
			ch->domw[i].pending++;
			ch->dom_pending++;
			return 0;
		}
		if (!ch->domw[i].domain && freei == UINT32_MAX)
			freei = i;
	}
	if (freei == UINT32_MAX) {
		if (ch->ndomw == ch->domw_cap) {
			uint32_t cap = ch->domw_cap ? ch->domw_cap * 2 : 8;
			struct accel_dom_wait *w = realloc(ch->domw, cap * sizeof(*w));
			if (!w) {
				FERRY_ERR(COMP, "out of memory for the table of %u domains waited on",
					  cap);
				return -ENOMEM;
			}
			ch->domw = w;
			ch->domw_cap = cap;
		}
		freei = ch->ndomw++;
	}
	ch->domw[freei].domain = d;
	ch->domw[freei].pending = 1;
	ch->dom_pending++;
	return 0;
}

void accel_dom_wait_del(struct ferry_accel_chan *ch, struct ferry_memdomain *d)
{
	for (uint32_t i = 0; i < ch->ndomw; i++) {
		if (ch->domw[i].domain == d) {
			if (--ch->domw[i].pending == 0)
				ch->domw[i].domain = NULL;
			ch->dom_pending--;
			ch->events++;
			break;
		}
	}
	while (ch->ndomw && !ch->domw[ch->ndomw - 1].domain)
		ch->ndomw--;
}

static void poll_hw(struct ferry_accel_chan *ch)
{
	struct ferry_hal_accel_desc *done[32];
	while (ch->hw_inflight) {
		int n = ch->hw->poll(ch->hwchan, done, 32);
		if (n <= 0) {
			if (n < 0)
				FERRY_ERR(COMP, "engine poll failed: %s", ferry_strerror(n));
			return;
		}
		ch->events += (uint64_t)n;
		for (int i = 0; i < n; i++) {
			ch->hw_inflight--;
			accel_hw_complete(done[i]);
		}
		if (n < 32)
			return;
	}
}

FERRY_API int ferry_accel_chan_poll(struct ferry_accel_chan *ch, uint32_t max)
{
	if (!ch) {
		FERRY_ERR(COMP, "chan_poll: NULL channel");
		return -EINVAL;
	}
	if (ch->polling)
		return 0; /* called from a callback: the outer poll continues */
	ch->polling = 1;
	if (ch->hw)
		poll_hw(ch);
	/* Every domain with work in flight; the table may shrink while we walk it. */
	for (uint32_t i = 0; ch->dom_pending && i < ch->ndomw; i++)
		if (ch->domw[i].domain)
			ferry_memdomain_poll(ch->domw[i].domain, 64);
	/* Sequences waiting for ring space try again. */
	struct ferry_seq *s = ch->submit_head;
	ch->submit_head = ch->submit_tail = NULL;
	while (s) {
		struct ferry_seq *nx = s->next;
		s->wait = WAIT_NONE;
		accel_seq_ready(s);
		s = nx;
	}
	while (ch->ready_head) {
		s = ch->ready_head;
		ch->ready_head = s->next;
		if (!ch->ready_head)
			ch->ready_tail = NULL;
		s->queued = 0;
		s->next = NULL;
		accel_seq_run(s);
	}
	uint32_t delivered = 0;
	while (ch->done_head && delivered < max) {
		s = ch->done_head;
		ch->done_head = s->next;
		if (!ch->done_head)
			ch->done_tail = NULL;
		accel_plan_hook(s, "complete");
		ferry_seq_cb cb = s->cb;
		void *arg = s->cb_arg;
		int status = s->status;
		cnt_add(&ch->cnt, CNT_SEQS_COMPLETED, 1);
		if (status)
			cnt_add(&ch->cnt, CNT_ERRORS, 1);
		ch->inflight--;
		if (status) /* the reason, on the thread that gets the callback (exec.c) */
			ferry_set_last_error(COMP, "%s", s->errmsg);
		accel_seq_free(s);
		delivered++;
		cb(arg, status);
	}
	ch->polling = 0;
	return (int)delivered;
}
