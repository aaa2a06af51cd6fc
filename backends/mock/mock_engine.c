/*
 * The mock DMA engine: one thread per device that executes every channel's ring in order
 * (round robin between channels) and the extension work queue; channel rings (submit, reap,
 * close) and the execution of one transfer (fence, injection, address checks, copy).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "mock_internal.h"

uint64_t mock_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t mock_latency_ns(struct mock_dev *dev)
{
	return atomic_load_explicit(&dev->latency_ns, memory_order_relaxed);
}

/* Scatter-gather move between local arrays of equal totals (regions may overlap: memmove). */
static void sg_move(const struct iovec *dst, uint32_t dc, const struct iovec *src, uint32_t sc)
{
	struct ferry_hal_iov_cur d, s;
	ferry_hal_iov_cur_init(&d, dst, dc);
	ferry_hal_iov_cur_init(&s, src, sc);
	for (;;) {
		size_t n = ferry_hal_iov_cur_avail(&d), ns = ferry_hal_iov_cur_avail(&s);
		if (ns < n)
			n = ns;
		if (!n)
			return;
		memmove(ferry_hal_iov_cur_ptr(&d), ferry_hal_iov_cur_ptr(&s), n);
		ferry_hal_iov_cur_advance(&d, n);
		ferry_hal_iov_cur_advance(&s, n);
	}
}

/* mock_resolve into a scratch array grown on demand. */
static int resolve_scratch(struct mock_dev *dev, const struct ferry_mem *m, uint64_t len, int write,
			   struct iovec **buf, uint32_t *cap, uint32_t *cnt)
{
	for (;;) {
		*cnt = *cap;
		int st = mock_resolve(dev, m, len, write, *buf, cnt);
		if (st != -ENOBUFS)
			return st;
		struct iovec *nb = realloc(*buf, sizeof(**buf) * *cnt);
		if (!nb) {
			MOCK_ERR("%s: out of memory for %u segments", dev->name, *cnt);
			return write ? FERRY_XFER_BUS_WRITE_ERROR : FERRY_XFER_BUS_READ_ERROR;
		}
		*buf = nb;
		*cap = *cnt;
	}
}

/* Runs one transfer on the engine thread (no lock held). */
static enum ferry_xfer_status exec_slot(struct mock_dev *dev, struct mock_slot *s)
{
	const struct ferry_xfer *x = s->x;
	uint32_t sc = 0, dc = 0;
	if (s->status)
		return (enum ferry_xfer_status)s->status; /* decided at the head (fence) */
	if (s->inject)
		return (enum ferry_xfer_status)s->inject;
	if (!s->zero) {
		int st = resolve_scratch(dev, &x->src, x->len, 0, &dev->sbuf, &dev->scap, &sc);
		if (st)
			return (enum ferry_xfer_status)st;
	}
	int st = resolve_scratch(dev, &x->dst, x->len, 1, &dev->dbuf, &dev->dcap, &dc);
	if (st)
		return (enum ferry_xfer_status)st;
	if (s->zero) {
		for (uint32_t i = 0; i < dc; i++)
			memset(dev->dbuf[i].iov_base, 0, dev->dbuf[i].iov_len);
	} else {
		sg_move(dev->dbuf, dc, dev->sbuf, sc);
	}
	return FERRY_XFER_SUCCESS;
}

static void count(struct mock_dev *dev, const struct mock_slot *s, enum ferry_xfer_status st)
{
	atomic_fetch_add_explicit(&dev->st_xfers, 1, memory_order_relaxed);
	if (st == FERRY_XFER_SUCCESS) {
		atomic_fetch_add_explicit(&dev->st_bytes, s->x->len, memory_order_relaxed);
		return;
	}
	atomic_fetch_add_explicit(&dev->st_errors, 1, memory_order_relaxed);
	if (s->inject && st == s->inject)
		atomic_fetch_add_explicit(&dev->st_injected, 1, memory_order_relaxed);
	else if (st == FERRY_XFER_PAGE_FAULT)
		atomic_fetch_add_explicit(&dev->st_page_faults, 1, memory_order_relaxed);
	else if (st == FERRY_XFER_NOT_ATTEMPTED)
		atomic_fetch_add_explicit(&dev->st_not_attempted, 1, memory_order_relaxed);
}

/* Moves @p ch to the end of the service list (round robin). Lock held. */
static void requeue_last(struct mock_dev *dev, struct mock_chan *ch)
{
	struct mock_chan **pp = &dev->chans;
	while (*pp && *pp != ch)
		pp = &(*pp)->next;
	if (!*pp)
		return;
	*pp = ch->next;
	ch->next = NULL;
	while (*pp)
		pp = &(*pp)->next;
	*pp = ch;
}

/* Runs the first work item if it is due. Lock held on entry and exit. */
static int serve_work(struct mock_dev *dev, uint64_t now, uint64_t *next)
{
	struct mock_work *w = dev->work_head;
	if (!w)
		return 0;
	if (w->due_ns > now) {
		if (w->due_ns < *next)
			*next = w->due_ns;
		return 0;
	}
	dev->work_head = w->next;
	if (!dev->work_head)
		dev->work_tail = NULL;
	dev->active_work = w;
	pthread_mutex_unlock(&dev->lock);
	w->run(w);
	pthread_mutex_lock(&dev->lock);
	dev->active_work = NULL;
	pthread_cond_broadcast(&dev->idle);
	return 1;
}

/* Executes the head transfer of the first channel that has a due one. Lock held. */
static int serve_chan(struct mock_dev *dev, uint64_t now, uint64_t *next)
{
	for (struct mock_chan *ch = dev->chans; ch; ch = ch->next) {
		uint64_t idx = atomic_load_explicit(&ch->done, memory_order_relaxed);
		if (idx == atomic_load_explicit(&ch->tail, memory_order_acquire))
			continue;
		struct mock_slot *s = &ch->ring[idx % ch->size];
		if (!s->started) {
			/* Every earlier entry is complete: this is when a fence takes effect. */
			s->started = 1;
			if (s->x->flags & FERRY_XFER_F_FENCE) {
				if (ch->last_fail > s->fence_dep) {
					s->status = FERRY_XFER_NOT_ATTEMPTED;
					s->due_ns = now;
				} else if (now + mock_latency_ns(dev) > s->due_ns) {
					s->due_ns = now + mock_latency_ns(dev);
				}
			}
		}
		if (s->due_ns > now) {
			if (s->due_ns < *next)
				*next = s->due_ns;
			continue;
		}
		dev->active = ch;
		pthread_mutex_unlock(&dev->lock);
		enum ferry_xfer_status st = exec_slot(dev, s);
		count(dev, s, st);
		pthread_mutex_lock(&dev->lock);
		s->status = (uint8_t)st;
		if (st != FERRY_XFER_SUCCESS)
			ch->last_fail = idx + 1;
		atomic_store_explicit(&ch->done, idx + 1, memory_order_release);
		dev->active = NULL;
		if (!ch->dying)
			requeue_last(dev, ch);
		pthread_cond_broadcast(&dev->idle);
		return 1;
	}
	return 0;
}

static void *engine_main(void *arg)
{
	struct mock_dev *dev = arg;
	int work_turn = 0; /* alternate work items and transfers so neither starves */
	pthread_mutex_lock(&dev->lock);
	while (!dev->stop) {
		uint64_t now = mock_now_ns(), next = UINT64_MAX;
		int ran = work_turn ? serve_work(dev, now, &next) || serve_chan(dev, now, &next)
				    : serve_chan(dev, now, &next) || serve_work(dev, now, &next);
		work_turn = !work_turn;
		if (ran)
			continue;
		if (next == UINT64_MAX) {
			pthread_cond_wait(&dev->wake, &dev->lock);
		} else {
			struct timespec ts = {.tv_sec = (time_t)(next / 1000000000ull),
					      .tv_nsec = (long)(next % 1000000000ull)};
			pthread_cond_timedwait(&dev->wake, &dev->lock, &ts);
		}
	}
	pthread_mutex_unlock(&dev->lock);
	return NULL;
}
int mock_engine_start(struct mock_dev *dev)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&dev->lock, NULL);
	pthread_cond_init(&dev->wake, &ca);
	pthread_cond_init(&dev->idle, NULL);
	pthread_condattr_destroy(&ca);
	dev->engine_init = 1;
	int rc = pthread_create(&dev->thread, NULL, engine_main, dev);
	if (rc) {
		MOCK_ERR("%s: cannot start the engine thread: %s", dev->name, strerror(rc));
		return -rc;
	}
	dev->thread_started = 1;
	return 0;
}

void mock_engine_stop(struct mock_dev *dev)
{
	if (!dev->thread_started)
		return;
	pthread_mutex_lock(&dev->lock);
	dev->stop = 1;
	pthread_cond_signal(&dev->wake);
	pthread_mutex_unlock(&dev->lock);
	pthread_join(dev->thread, NULL);
	dev->thread_started = 0;
	free(dev->sbuf);
	free(dev->dbuf);
	dev->sbuf = dev->dbuf = NULL;
	dev->scap = dev->dcap = 0;
}

void mock_engine_kick(struct mock_dev *dev)
{
	pthread_mutex_lock(&dev->lock);
	pthread_cond_signal(&dev->wake);
	pthread_mutex_unlock(&dev->lock);
}

int mock_chan_open(struct mock_dev *dev, uint32_t id, uint32_t ring, int user,
		   struct mock_chan **out)
{
	struct mock_chan *ch = calloc(1, sizeof(*ch));
	if (!ch)
		return -ENOMEM;
	ch->ring = calloc(ring, sizeof(*ch->ring));
	if (!ch->ring) {
		free(ch);
		return -ENOMEM;
	}
	ch->dev = dev;
	ch->id = id;
	ch->size = ring;
	ch->user = user;
	atomic_init(&ch->tail, 0);
	atomic_init(&ch->done, 0);
	pthread_mutex_lock(&dev->lock);
	ch->next = dev->chans;
	dev->chans = ch;
	pthread_mutex_unlock(&dev->lock);
	*out = ch;
	return 0;
}

void mock_chan_detach(struct mock_chan *ch)
{
	struct mock_dev *dev = ch->dev;
	if (!dev || ch->dying)
		return;
	pthread_mutex_lock(&dev->lock);
	ch->dying = 1;
	for (struct mock_chan **pp = &dev->chans; *pp; pp = &(*pp)->next) {
		if (*pp == ch) {
			*pp = ch->next;
			break;
		}
	}
	/* Once the engine is out of this channel nothing in flight is touched again. */
	while (dev->active == ch)
		pthread_cond_wait(&dev->idle, &dev->lock);
	pthread_mutex_unlock(&dev->lock);
}

void mock_chan_close(struct mock_chan *ch)
{
	mock_chan_detach(ch);
	free(ch->ring);
	free(ch);
}

int mock_chan_push(struct mock_chan *ch, struct ferry_xfer *x, int zero)
{
	uint64_t tail = atomic_load_explicit(&ch->tail, memory_order_relaxed);
	if (tail - ch->head >= ch->size)
		return 0;
	struct mock_slot *s = &ch->ring[tail % ch->size];
	s->x = x;
	s->zero = (uint8_t)(zero != 0);
	s->status = 0;
	s->started = 0;
	s->fence_dep = ch->head;
	s->inject = (uint8_t)mock_inject_take(ch->dev, ch);
	s->due_ns = mock_now_ns() + mock_latency_ns(ch->dev);
	atomic_store_explicit(&ch->tail, tail + 1, memory_order_release);
	return 1;
}

uint32_t mock_chan_reap(struct mock_chan *ch, struct ferry_xfer **done, uint32_t max)
{
	uint64_t d = atomic_load_explicit(&ch->done, memory_order_acquire);
	uint32_t n = 0;
	while (ch->head < d && n < max) {
		struct mock_slot *s = &ch->ring[ch->head % ch->size];
		s->x->status = (enum ferry_xfer_status)s->status;
		done[n++] = s->x;
		ch->head++;
	}
	return n;
}

void mock_engine_queue(struct mock_dev *dev, struct mock_work *w)
{
	pthread_mutex_lock(&dev->lock);
	w->next = NULL;
	if (dev->work_tail)
		dev->work_tail->next = w;
	else
		dev->work_head = w;
	dev->work_tail = w;
	pthread_cond_signal(&dev->wake);
	pthread_mutex_unlock(&dev->lock);
}

int mock_engine_cancel(struct mock_dev *dev, struct mock_work *w)
{
	int removed = 0;
	pthread_mutex_lock(&dev->lock);
	struct mock_work *prev = NULL;
	for (struct mock_work *it = dev->work_head; it; prev = it, it = it->next) {
		if (it != w)
			continue;
		if (prev)
			prev->next = it->next;
		else
			dev->work_head = it->next;
		if (dev->work_tail == it)
			dev->work_tail = prev;
		removed = 1;
		break;
	}
	while (!removed && dev->active_work == w)
		pthread_cond_wait(&dev->idle, &dev->lock);
	pthread_mutex_unlock(&dev->lock);
	return removed;
}

struct mock_work *mock_engine_cancel_if(struct mock_dev *dev,
					int (*match)(const struct mock_work *work, void *arg),
					void *arg)
{
	struct mock_work *out = NULL, **out_tail = &out;
	pthread_mutex_lock(&dev->lock);
	struct mock_work *prev = NULL, *it = dev->work_head;
	while (it) {
		struct mock_work *nx = it->next;
		if (match(it, arg)) {
			if (prev)
				prev->next = nx;
			else
				dev->work_head = nx;
			if (dev->work_tail == it)
				dev->work_tail = prev;
			it->next = NULL;
			*out_tail = it;
			out_tail = &it->next;
		} else {
			prev = it;
		}
		it = nx;
	}
	while (dev->active_work && match(dev->active_work, arg))
		pthread_cond_wait(&dev->idle, &dev->lock);
	pthread_mutex_unlock(&dev->lock);
	return out;
}
