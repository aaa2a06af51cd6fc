/*
 * The log rate limit of core_internal.h: fixed one-second windows per call site, a burst of
 * LOG_RATELIMIT_BURST messages in each, the rest counted and reported when a window opens.
 */
#include <stdatomic.h>
#include <time.h>
#include "core_internal.h"

static unsigned long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

int log_ratelimit(struct log_ratelimit *rl, unsigned int *suppressed)
{
	if (suppressed)
		*suppressed = 0;
	unsigned long long now = now_ns();
	unsigned long long start = atomic_load_explicit(&rl->window_start_ns, memory_order_relaxed);
	/* Whoever moves the window start wins the new window and reports the drops; the others
	 * see the new start and count themselves into it. */
	if (start == 0 || now - start >= LOG_RATELIMIT_WINDOW_NS) {
		if (atomic_compare_exchange_strong(&rl->window_start_ns, &start, now)) {
			atomic_store(&rl->in_window, 1);
			unsigned int dropped = atomic_exchange(&rl->suppressed, 0);
			if (suppressed)
				*suppressed = dropped;
			return 1;
		}
	}
	if (atomic_fetch_add(&rl->in_window, 1) < LOG_RATELIMIT_BURST)
		return 1;
	atomic_fetch_add(&rl->suppressed, 1);
	return 0;
}
